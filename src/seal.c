/* seal: passwords encrypted at rest; see seal.h. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "log.h"
#include "seal.h"
#include "secret.h"

#define KEY_LEN 32
#define NONCE_LEN 12
#define TAG_LEN 16
#define ID_MAX 16
#define MAGIC "TS1"
#define MAGIC_LEN 3
/* a key file of a few keys and comments is a few hundred bytes */
#define FILE_MAX 65536

struct seal_key {
	char id[ID_MAX + 1];
	unsigned char key[KEY_LEN];
};

struct seal_keys {
	struct seal_key *v;
	size_t n;
};

static int oom(struct tr_error *err)
{
	tr_error_set(err, TR_ERR_LOCAL, "out of memory");
	return -1;
}

static bool id_char(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '-';
}

static bool id_valid(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || n > ID_MAX)
		return false;
	for (i = 0; i < n; i++)
		if (!id_char((unsigned char)s[i]))
			return false;
	return true;
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

/* ---- key files ------------------------------------------------------------- */

int seal_key_create(const char *path, struct tr_error *err)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char key[KEY_LEN], rnd[2];
	char line[256], id[ID_MAX + 1];
	struct tm tm;
	time_t now = time(NULL);
	size_t i, len, off = 0;
	int fd, n;

	if (RAND_bytes(key, sizeof(key)) != 1 || RAND_bytes(rnd, sizeof(rnd)) != 1) {
		tr_error_set(err, TR_ERR_LOCAL, "no random bytes from OpenSSL for a new key");
		return -1;
	}
	/* an id that tells keys apart when rotating: the day it was made */
	gmtime_r(&now, &tm);
	snprintf(id, sizeof(id), "k%04d%02d%02d-%02x%02x", tm.tm_year + 1900, tm.tm_mon + 1,
		 tm.tm_mday, rnd[0], rnd[1]);
	n = snprintf(line, sizeof(line),
		     "# trasloco queue key file: \"ID HEX\" lines, the first one seals (seal.h)\n"
		     "%s ", id);
	len = (size_t)n;
	for (i = 0; i < KEY_LEN; i++) {
		line[len++] = hex[key[i] >> 4];
		line[len++] = hex[key[i] & 15];
	}
	line[len++] = '\n';
	OPENSSL_cleanse(key, sizeof(key));
	/* O_EXCL: never replace a key, whatever is at path (a link included) */
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		OPENSSL_cleanse(line, sizeof(line));
		tr_error_set(err, errno == EEXIST ? TR_ERR_USAGE : TR_ERR_LOCAL,
			     "cannot create the key file %s: %s", path, strerror(errno));
		return -1;
	}
	while (off < len) {
		ssize_t w = write(fd, line + off, len - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		off += (size_t)w;
	}
	OPENSSL_cleanse(line, sizeof(line));
	if (off < len || fsync(fd) < 0) {
		tr_error_set(err, TR_ERR_LOCAL, "cannot write the key file %s: %s", path,
			     strerror(errno));
		close(fd);
		unlink(path);
		return -1;
	}
	if (close(fd) < 0) {
		tr_error_set(err, TR_ERR_LOCAL, "cannot write the key file %s: %s", path,
			     strerror(errno));
		unlink(path);
		return -1;
	}
	return 0;
}

void seal_keys_free(struct seal_keys *k)
{
	if (k == NULL)
		return;
	if (k->v != NULL)
		OPENSSL_cleanse(k->v, k->n * sizeof(*k->v));
	free(k->v);
	free(k);
}

/* One line (NUL-terminated, without its newline) into k. */
static int parse_line(struct seal_keys *k, const char *path, unsigned lineno, char *s,
		      struct tr_error *err)
{
	char *id, *hex, *end;
	struct seal_key *nv;
	size_t idlen, i;

	while (*s == ' ' || *s == '\t' || *s == '\r')
		s++;
	end = s + strlen(s);
	while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
		*--end = '\0';
	if (*s == '\0' || *s == '#')
		return 0;
	id = s;
	idlen = strcspn(s, " \t");
	hex = s + idlen;
	while (*hex == ' ' || *hex == '\t')
		hex++;
	/* the line is never quoted: it may be a key */
	if (!id_valid(id, idlen)) {
		tr_error_set(err, TR_ERR_USAGE, "key file %s:%u: not \"ID HEX\" (ID: 1 to %d of "
			     "A-Z a-z 0-9 _ -)", path, lineno, ID_MAX);
		return -1;
	}
	if (strlen(hex) != 2 * KEY_LEN) {
		tr_error_set(err, TR_ERR_USAGE, "key file %s:%u: the key is not %d hex digits",
			     path, lineno, 2 * KEY_LEN);
		return -1;
	}
	for (i = 0; i < k->n; i++)
		if (strlen(k->v[i].id) == idlen && memcmp(k->v[i].id, id, idlen) == 0) {
			tr_error_set(err, TR_ERR_USAGE, "key file %s:%u: key id %.*s twice", path,
				     lineno, (int)idlen, id);
			return -1;
		}
	nv = calloc(k->n + 1, sizeof(*nv));
	if (nv == NULL)
		return oom(err);
	/* no realloc: the old array is wiped, not left to the allocator */
	if (k->n > 0) {
		memcpy(nv, k->v, k->n * sizeof(*nv));
		OPENSSL_cleanse(k->v, k->n * sizeof(*k->v));
	}
	free(k->v);
	k->v = nv;
	memcpy(nv[k->n].id, id, idlen);
	nv[k->n].id[idlen] = '\0';
	for (i = 0; i < KEY_LEN; i++) {
		int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);

		if (hi < 0 || lo < 0) {
			OPENSSL_cleanse(&nv[k->n], sizeof(nv[k->n]));
			tr_error_set(err, TR_ERR_USAGE, "key file %s:%u: the key is not %d hex digits",
				     path, lineno, 2 * KEY_LEN);
			return -1;
		}
		nv[k->n].key[i] = (unsigned char)(hi << 4 | lo);
	}
	k->n++;
	return 0;
}

int seal_keys_load(const char *path, struct seal_keys **k_r, struct tr_error *err)
{
	struct seal_keys *k;
	struct stat st;
	char *buf, *p;
	size_t len = 0;
	unsigned lineno = 0;
	int fd, r = 0;

	*k_r = NULL;
	/* links are followed: a Kubernetes Secret volume is made of them */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		tr_error_set(err, TR_ERR_USAGE, "cannot read the key file %s: %s%s", path,
			     strerror(errno), errno == ENOENT ? " (`trasloco queue init` creates "
			     "one; --key-file or $TRASLOCO_QUEUE_KEY_FILE name another)" : "");
		return -1;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		tr_error_set(err, TR_ERR_USAGE, "key file %s: not a regular file", path);
		close(fd);
		return -1;
	}
	if ((st.st_mode & (S_IROTH | S_IWGRP | S_IWOTH)) != 0) {
		tr_error_set(err, TR_ERR_USAGE, "key file %s is open to other users (mode %03o): "
			     "chmod 600 it, and make a new key if others may have read it", path,
			     (unsigned)(st.st_mode & 0777));
		close(fd);
		return -1;
	}
	/* Group read only: Kubernetes makes a Secret volume's files readable by
	 * the pod's fsGroup (mode 0440 at least), and without an fsGroup they
	 * are root's, unreadable by a worker that is not root.  Told, not
	 * refused; others and writers are refused above. */
	if ((st.st_mode & S_IRGRP) != 0)
		log_warn(NULL, "key file %s is readable by its group (gid %u, mode %03o): fine for a "
			 "Kubernetes Secret volume, else chmod 600 it", path, (unsigned)st.st_gid,
			 (unsigned)(st.st_mode & 0777));
	if (st.st_size > FILE_MAX) {
		tr_error_set(err, TR_ERR_USAGE, "key file %s: larger than %d bytes", path, FILE_MAX);
		close(fd);
		return -1;
	}
	buf = malloc(FILE_MAX + 1);
	if (buf == NULL) {
		close(fd);
		return oom(err);
	}
	while (len < FILE_MAX) {
		ssize_t n = read(fd, buf + len, FILE_MAX - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			tr_error_set(err, TR_ERR_LOCAL, "cannot read the key file %s: %s", path,
				     strerror(errno));
			r = -1;
			break;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	buf[len] = '\0';
	k = calloc(1, sizeof(*k));
	if (k == NULL && r == 0)
		r = oom(err);
	if (r == 0 && memchr(buf, '\0', len) != NULL) {
		tr_error_set(err, TR_ERR_USAGE, "key file %s: a NUL byte in it", path);
		r = -1;
	}
	for (p = buf; r == 0 && p < buf + len;) {
		char *nl = strchr(p, '\n');

		if (nl != NULL)
			*nl = '\0';
		r = parse_line(k, path, ++lineno, p, err);
		p = nl != NULL ? nl + 1 : buf + len;
	}
	OPENSSL_cleanse(buf, FILE_MAX + 1);
	free(buf);
	if (r == 0 && k->n == 0) {
		tr_error_set(err, TR_ERR_USAGE, "key file %s holds no key", path);
		r = -1;
	}
	if (r < 0) {
		seal_keys_free(k);
		return -1;
	}
	*k_r = k;
	return 0;
}

/* ---- sealing ------------------------------------------------------------------- */

int seal(const struct seal_keys *k, const char *aad, const char *plain, unsigned char **out,
	 size_t *out_len, struct tr_error *err)
{
	const struct seal_key *key;
	size_t plen = strlen(plain), idlen, hdr, total;
	unsigned char *buf;
	EVP_CIPHER_CTX *ctx;
	int n, n2, ok;

	*out = NULL;
	*out_len = 0;
	if (k == NULL || k->n == 0) {
		tr_error_set(err, TR_ERR_LOCAL, "no key to seal with");
		return -1;
	}
	if (plen > (size_t)SECRET_MAX * 16) {
		tr_error_set(err, TR_ERR_LOCAL, "a secret too long to seal");
		return -1;
	}
	key = &k->v[0];
	idlen = strlen(key->id);
	hdr = MAGIC_LEN + 1 + idlen;
	total = hdr + NONCE_LEN + plen + TAG_LEN;
	buf = malloc(total);
	if (buf == NULL)
		return oom(err);
	memcpy(buf, MAGIC, MAGIC_LEN);
	buf[MAGIC_LEN] = (unsigned char)idlen;
	memcpy(buf + MAGIC_LEN + 1, key->id, idlen);
	/* a random nonce per value: 2^32 values per key keep GCM's bound far off */
	if (RAND_bytes(buf + hdr, NONCE_LEN) != 1) {
		free(buf);
		tr_error_set(err, TR_ERR_LOCAL, "no random bytes from OpenSSL for a nonce");
		return -1;
	}
	ctx = EVP_CIPHER_CTX_new();
	ok = ctx != NULL &&
	     EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) == 1 &&
	     EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, NONCE_LEN, NULL) == 1 &&
	     EVP_EncryptInit_ex(ctx, NULL, NULL, key->key, buf + hdr) == 1 &&
	     EVP_EncryptUpdate(ctx, NULL, &n, (const unsigned char *)aad, (int)strlen(aad)) == 1 &&
	     EVP_EncryptUpdate(ctx, buf + hdr + NONCE_LEN, &n, (const unsigned char *)plain,
			       (int)plen) == 1 &&
	     EVP_EncryptFinal_ex(ctx, buf + hdr + NONCE_LEN + n, &n2) == 1 &&
	     EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG_LEN,
				 buf + hdr + NONCE_LEN + plen) == 1;
	EVP_CIPHER_CTX_free(ctx);
	if (!ok) {
		free(buf);
		tr_error_set(err, TR_ERR_LOCAL, "AES-256-GCM failed (OpenSSL)");
		return -1;
	}
	*out = buf;
	*out_len = total;
	return 0;
}

int unseal(const struct seal_keys *k, const char *aad, const unsigned char *in, size_t len,
	   char **plain_r, struct tr_error *err)
{
	const struct seal_key *key = NULL;
	const unsigned char *nonce, *ct, *tag;
	size_t idlen, clen, i;
	unsigned char tagbuf[TAG_LEN];
	char *plain;
	EVP_CIPHER_CTX *ctx;
	int n, n2 = 0, ok;

	*plain_r = NULL;
	if (len < MAGIC_LEN + 1 || memcmp(in, MAGIC, MAGIC_LEN) != 0) {
		tr_error_set(err, TR_ERR_LOCAL, "not a sealed value");
		return -1;
	}
	idlen = in[MAGIC_LEN];
	if (idlen == 0 || idlen > ID_MAX || len < MAGIC_LEN + 1 + idlen + NONCE_LEN + TAG_LEN ||
	    !id_valid((const char *)in + MAGIC_LEN + 1, idlen)) {
		tr_error_set(err, TR_ERR_LOCAL, "not a sealed value (cut short or malformed)");
		return -1;
	}
	for (i = 0; k != NULL && i < k->n; i++)
		if (strlen(k->v[i].id) == idlen &&
		    memcmp(k->v[i].id, in + MAGIC_LEN + 1, idlen) == 0)
			key = &k->v[i];
	if (key == NULL) {
		tr_error_set(err, TR_ERR_LOCAL, "sealed with key %.*s, which is not in the key file",
			     (int)idlen, (const char *)in + MAGIC_LEN + 1);
		return -1;
	}
	nonce = in + MAGIC_LEN + 1 + idlen;
	ct = nonce + NONCE_LEN;
	clen = len - (size_t)(ct - in) - TAG_LEN;
	tag = ct + clen;
	if (clen > (size_t)SECRET_MAX * 16) {
		tr_error_set(err, TR_ERR_LOCAL, "not a sealed value (too long)");
		return -1;
	}
	plain = malloc(clen + 1);
	if (plain == NULL)
		return oom(err);
	memcpy(tagbuf, tag, TAG_LEN);
	ctx = EVP_CIPHER_CTX_new();
	ok = ctx != NULL &&
	     EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) == 1 &&
	     EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, NONCE_LEN, NULL) == 1 &&
	     EVP_DecryptInit_ex(ctx, NULL, NULL, key->key, nonce) == 1 &&
	     EVP_DecryptUpdate(ctx, NULL, &n, (const unsigned char *)aad, (int)strlen(aad)) == 1 &&
	     EVP_DecryptUpdate(ctx, (unsigned char *)plain, &n, ct, (int)clen) == 1 &&
	     EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG_LEN, tagbuf) == 1;
	/* the tag decides: nothing of plain is used unless it matches */
	if (ok && EVP_DecryptFinal_ex(ctx, (unsigned char *)plain + n, &n2) != 1) {
		EVP_CIPHER_CTX_free(ctx);
		OPENSSL_cleanse(plain, clen + 1);
		free(plain);
		tr_error_set(err, TR_ERR_LOCAL, "a sealed value does not open with key %s: altered "
			     "or sealed for another place", key->id);
		return -1;
	}
	EVP_CIPHER_CTX_free(ctx);
	if (!ok) {
		OPENSSL_cleanse(plain, clen + 1);
		free(plain);
		tr_error_set(err, TR_ERR_LOCAL, "AES-256-GCM failed (OpenSSL)");
		return -1;
	}
	plain[clen] = '\0';
	/* a NUL inside would hide the rest from secret_free's wipe */
	if (memchr(plain, '\0', clen) != NULL) {
		OPENSSL_cleanse(plain, clen + 1);
		free(plain);
		tr_error_set(err, TR_ERR_LOCAL, "a sealed value holds a NUL byte");
		return -1;
	}
	*plain_r = plain;
	return 0;
}
