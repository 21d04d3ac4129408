/* msgsig: see include/msgsig.h
 *
 * One pass over the bytes, a byte at a time: the keys are only computed for
 * the few messages the fingerprint could not pair (sync.c), so clarity
 * wins over speed here.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "msgsig.h"

enum where { AT_LINE_START, IN_NAME, IN_VALUE, IN_BODY };

/* Header field names are compared on this many bytes at most. */
#define NAME_MAX_LEN 128

struct sink {
	EVP_MD_CTX *md;
	unsigned char buf[1024];
	size_t n;
};

struct msgsig_ctx {
	struct sink strict, loose;
	enum where at;
	bool field_open;
	bool server_field;        /* the open field is left out of the loose key */
	char name[NAME_MAX_LEN];
	size_t name_len;
	bool value_started, space_pending, last_x;
	bool cr_pending;          /* body: a CR whose next byte is not known yet */
};

static void sink_put(struct sink *s, unsigned char c)
{
	if (s->n == sizeof(s->buf)) {
		EVP_DigestUpdate(s->md, s->buf, s->n);
		s->n = 0;
	}
	s->buf[s->n++] = c;
}

static void sink_final(struct sink *s, unsigned char out[FP_LEN])
{
	unsigned char full[EVP_MAX_MD_SIZE];
	unsigned int len = 0;

	if (s->md == NULL) {
		memset(out, 0, FP_LEN);
		return;
	}
	if (s->n > 0)
		EVP_DigestUpdate(s->md, s->buf, s->n);
	EVP_DigestFinal_ex(s->md, full, &len);
	EVP_MD_CTX_free(s->md);
	s->md = NULL;
	memcpy(out, full, FP_LEN);
}

/* A byte of the header section: into both keys, or only the strict one. */
static void put(struct msgsig_ctx *c, unsigned char b)
{
	sink_put(&c->strict, b);
	if (!c->server_field)
		sink_put(&c->loose, b);
}

bool msgsig_server_field(const char *name, size_t len)
{
	static const char *const exact[] = {
		"return-path", "received", "delivered-to", "x-original-to", "x-delivered-to",
		"envelope-to", "x-envelope-to", "x-envelope-from", "status", "x-status",
		"x-keywords", "x-uid", "x-imap", "x-imapbase", "content-length", "lines",
		"x-mozilla-status", "x-mozilla-status2", "x-mozilla-keys",
	};
	static const char *const prefix[] = {
		"x-spam-", "x-virus-", "x-ms-exchange-", "x-microsoft-", "x-forefront-", "x-gm-",
		"x-google-", "x-cyrus-", "x-dovecot-", "x-zimbra-",
	};

	for (size_t i = 0; i < sizeof(exact) / sizeof(exact[0]); i++)
		if (strlen(exact[i]) == len && strncasecmp(name, exact[i], len) == 0)
			return true;
	for (size_t i = 0; i < sizeof(prefix) / sizeof(prefix[0]); i++) {
		size_t n = strlen(prefix[i]);

		if (len > n && strncasecmp(name, prefix[i], n) == 0)
			return true;
	}
	return false;
}

struct msgsig_ctx *msgsig_new(void)
{
	struct msgsig_ctx *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	c->strict.md = EVP_MD_CTX_new();
	c->loose.md = EVP_MD_CTX_new();
	if (c->strict.md == NULL || c->loose.md == NULL ||
	    EVP_DigestInit_ex(c->strict.md, EVP_sha256(), NULL) != 1 ||
	    EVP_DigestInit_ex(c->loose.md, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(c->strict.md);
		EVP_MD_CTX_free(c->loose.md);
		free(c);
		return NULL;
	}
	c->at = AT_LINE_START;
	return c;
}

static void end_field(struct msgsig_ctx *c)
{
	if (c->field_open)
		put(c, '\n');
	c->field_open = false;
	c->server_field = false;
}

/* The name is complete: decide where the field goes, write the name. */
static void end_name(struct msgsig_ctx *c)
{
	c->server_field = msgsig_server_field(c->name, c->name_len);
	for (size_t i = 0; i < c->name_len; i++)
		put(c, (unsigned char)c->name[i]);
	put(c, ':');
	c->value_started = c->space_pending = c->last_x = false;
}

static void value_byte(struct msgsig_ctx *c, unsigned char b)
{
	bool x = b >= 0x80 || b == 'X';

	if (b == ' ' || b == '\t') {
		c->space_pending = true;
		return;
	}
	if (x && c->last_x && !c->space_pending)
		return;             /* one 'X' for a run of 8-bit bytes and X */
	if (c->space_pending && c->value_started)
		put(c, ' ');
	put(c, x ? 'X' : b);
	c->last_x = x;
	c->value_started = true;
	c->space_pending = false;
}

static void body_byte(struct msgsig_ctx *c, unsigned char b)
{
	if (c->cr_pending && b != '\n') {
		sink_put(&c->strict, '\r');
		sink_put(&c->loose, '\r');
	}
	c->cr_pending = b == '\r';
	if (b == '\r')
		return;
	sink_put(&c->strict, b);
	sink_put(&c->loose, b);
}

static void header_byte(struct msgsig_ctx *c, unsigned char b)
{
	if (b == '\r')
		return;             /* CR LF and LF are one line end */
	switch (c->at) {
	case AT_LINE_START:
		if (b == '\n') {
			/* the empty line: the body follows */
			end_field(c);
			sink_put(&c->strict, '\n');
			sink_put(&c->loose, '\n');
			c->at = IN_BODY;
			return;
		}
		if ((b == ' ' || b == '\t') && c->field_open) {
			c->at = IN_VALUE;       /* a folded line goes on with the value */
			c->space_pending = true;
			return;
		}
		end_field(c);
		c->field_open = true;
		c->name_len = 0;
		c->at = IN_NAME;
		/* fall through */
	case IN_NAME:
		if (b == ':') {
			end_name(c);
			c->at = IN_VALUE;
		} else if (b == '\n') {
			end_name(c);    /* a line without a colon: all name */
			c->at = AT_LINE_START;
		} else if (b != ' ' && b != '\t' && c->name_len < NAME_MAX_LEN) {
			/* as in values: a run of 8-bit bytes or x is one x */
			char l = b >= 0x80 ? 'x' : (char)(b >= 'A' && b <= 'Z' ? b + 32 : b);

			if (l != 'x' || c->name_len == 0 || c->name[c->name_len - 1] != 'x')
				c->name[c->name_len++] = l;
		}
		return;
	case IN_VALUE:
		if (b == '\n')
			c->at = AT_LINE_START;
		else
			value_byte(c, b);
		return;
	case IN_BODY:
		return;
	}
}

void msgsig_update(struct msgsig_ctx *c, const void *data, size_t len)
{
	const unsigned char *p = data;

	for (size_t i = 0; i < len; i++) {
		if (c->at == IN_BODY)
			body_byte(c, p[i]);
		else
			header_byte(c, p[i]);
	}
}

void msgsig_final(struct msgsig_ctx *c, struct msgsig *out)
{
	if (c->at == IN_NAME)
		end_name(c);
	if (c->at != IN_BODY) {
		end_field(c);
	} else if (c->cr_pending) {
		sink_put(&c->strict, '\r');
		sink_put(&c->loose, '\r');
	}
	sink_final(&c->strict, out->strict);
	sink_final(&c->loose, out->loose);
	free(c);
}
