/* fingerprint: see include/fingerprint.h */
#include "config.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "fingerprint.h"

/* A small write buffer in front of the digest. */
struct feeder {
	EVP_MD_CTX *md;
	char buf[512];
	size_t n;
	char last;            /* the last byte emitted, 0 for none */
};

static void emit(struct feeder *f, char c)
{
	if (f->n == sizeof(f->buf)) {
		EVP_DigestUpdate(f->md, f->buf, f->n);
		f->n = 0;
	}
	f->buf[f->n++] = c;
	f->last = c;
}

/* Feed one normalised header field: lower-case name, ':', value with
 * folding removed and white space runs squeezed to one space, trimmed.
 * tolerant: every run of 8-bit bytes or 'X' is one 'X' (msgsig.h). */
static void feed_field(struct feeder *f, const char *p, size_t len, bool tolerant)
{
	bool space = false, x = false;
	size_t i = 0;

	f->last = 0;
	for (; i < len && p[i] != ':'; i++)
		if (!isspace((unsigned char)p[i]))
			emit(f, (char)tolower((unsigned char)p[i]));
	emit(f, ':');
	if (i < len)
		i++;
	for (; i < len; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c == '\r' || c == '\n' || c == ' ' || c == '\t') {
			space = true;
			continue;
		}
		if (tolerant && (c >= 0x80 || c == 'X')) {
			if (x && !space)
				continue;
			c = 'X';
			x = true;
		} else {
			x = false;
		}
		if (space && f->last != ':')
			emit(f, ' ');
		space = false;
		emit(f, (char)c);
	}
	emit(f, '\n');
}

/* Is the field at p one of the bucket's (Date, From, Subject)? */
static bool bucket_field(const char *p, size_t len)
{
	static const char *const names[] = { "date", "from", "subject" };
	size_t n = 0;

	while (n < len && p[n] != ':')
		n++;
	while (n > 0 && isspace((unsigned char)p[n - 1]))
		n--;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strlen(names[i]) == n && strncasecmp(p, names[i], n) == 0)
			return true;
	return false;
}

static void digest(const char *hdr, size_t len, const char *prefix, bool bucket,
		   unsigned char out[FP_LEN])
{
	unsigned char full[EVP_MAX_MD_SIZE];
	unsigned int full_len = 0;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	struct feeder f = { .md = md };
	size_t i = 0;

	if (md == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
		/* Cannot happen short of ENOMEM; a zero digest matches nothing real. */
		memset(out, 0, FP_LEN);
		EVP_MD_CTX_free(md);
		return;
	}
	EVP_DigestUpdate(md, prefix, strlen(prefix));
	/* Split into fields: a field ends at a line break not followed by
	 * white space (folding).  The empty line ending the section is skipped. */
	while (i < len) {
		size_t start = i, end;

		while (i < len) {
			if (hdr[i] == '\n' && (i + 1 >= len || (hdr[i + 1] != ' ' && hdr[i + 1] != '\t'))) {
				i++;
				break;
			}
			i++;
		}
		end = i;
		while (end > start && (hdr[end - 1] == '\r' || hdr[end - 1] == '\n'))
			end--;
		if (end > start && (!bucket || bucket_field(hdr + start, end - start)))
			feed_field(&f, hdr + start, end - start, bucket);
	}
	if (f.n > 0)
		EVP_DigestUpdate(md, f.buf, f.n);
	EVP_DigestFinal_ex(md, full, &full_len);
	EVP_MD_CTX_free(md);
	memcpy(out, full, FP_LEN);
}

void fp_compute(const char *hdr, size_t len, uint32_t size, unsigned char out[FP_LEN])
{
	char sizebuf[24];

	snprintf(sizebuf, sizeof(sizebuf), "%u\n", size);
	digest(hdr, len, sizebuf, false, out);
}

void fp_bucket(const char *hdr, size_t len, unsigned char out[FP_LEN])
{
	digest(hdr, len, "bucket\n", true, out);
}

struct fp_content *fp_content_new(void)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();

	if (md != NULL && EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(md);
		md = NULL;
	}
	return (struct fp_content *)md;
}

void fp_content_update(struct fp_content *c, const void *data, size_t len)
{
	EVP_DigestUpdate((EVP_MD_CTX *)c, data, len);
}

void fp_content_final(struct fp_content *c, unsigned char out[FP_LEN])
{
	unsigned char full[EVP_MAX_MD_SIZE];
	unsigned int full_len = 0;

	EVP_DigestFinal_ex((EVP_MD_CTX *)c, full, &full_len);
	EVP_MD_CTX_free((EVP_MD_CTX *)c);
	memcpy(out, full, FP_LEN);
}

void fp_to_hex(const unsigned char fp[FP_LEN], char *out)
{
	static const char hex[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < FP_LEN; i++) {
		out[2 * i] = hex[fp[i] >> 4];
		out[2 * i + 1] = hex[fp[i] & 15];
	}
	out[FP_HEX_LEN] = '\0';
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int fp_from_hex(const char *hex, unsigned char fp[FP_LEN])
{
	size_t i;

	if (hex == NULL || strlen(hex) != FP_HEX_LEN)
		return -1;
	for (i = 0; i < FP_LEN; i++) {
		int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -1;
		fp[i] = (unsigned char)(hi << 4 | lo);
	}
	return 0;
}
