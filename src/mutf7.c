/* mutf7: see include/mutf7.h
 *
 * Strictness is the point of this file: a folder name is only worth
 * decoding if encoding the result gives back the very bytes the server
 * sent, otherwise a migration could create a second folder next to the
 * first one.  So every input a canonical encoder would not write is
 * refused, even when its meaning is obvious, and the encoder writes the
 * one canonical form (printable ASCII direct, everything else in as few
 * shifted runs as possible, each run as short as possible).
 */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mutf7.h"

/* RFC 3501 modified BASE64: ',' instead of '/' so names can use '/'. */
static const char b64chars[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

static int b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == ',')
		return 63;
	return -1;
}

static bool is_direct(uint32_t c)
{
	return c >= 0x20 && c <= 0x7e;
}

static char *put_utf8(char *o, uint32_t cp)
{
	if (cp < 0x80) {
		*o++ = (char)cp;
	} else if (cp < 0x800) {
		*o++ = (char)(0xc0 | (cp >> 6));
		*o++ = (char)(0x80 | (cp & 0x3f));
	} else if (cp < 0x10000) {
		*o++ = (char)(0xe0 | (cp >> 12));
		*o++ = (char)(0x80 | ((cp >> 6) & 0x3f));
		*o++ = (char)(0x80 | (cp & 0x3f));
	} else {
		*o++ = (char)(0xf0 | (cp >> 18));
		*o++ = (char)(0x80 | ((cp >> 12) & 0x3f));
		*o++ = (char)(0x80 | ((cp >> 6) & 0x3f));
		*o++ = (char)(0x80 | (cp & 0x3f));
	}
	return o;
}

/* Strict UTF-8: no overlongs, no encoded surrogates, nothing past
 * U+10FFFF, no truncated sequence (the terminating NUL is not a
 * continuation byte, so truncation is caught like any bad byte). */
int mutf7_utf8_next(const unsigned char **pp, uint32_t *cp)
{
	const unsigned char *p = *pp;
	uint32_t c = *p++, min;
	int more;

	if (c < 0x80) {
		*cp = c;
		*pp = p;
		return 0;
	}
	if (c >= 0xc2 && c <= 0xdf) {
		more = 1;
		min = 0x80;
		c &= 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		more = 2;
		min = 0x800;
		c &= 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		more = 3;
		min = 0x10000;
		c &= 0x07;
	} else {
		return -1;
	}
	while (more-- > 0) {
		if ((*p & 0xc0) != 0x80)
			return -1;
		c = (c << 6) | (*p++ & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return -1;
	*cp = c;
	*pp = p;
	return 0;
}

struct run_decoder {
	uint32_t bits;      /* base64 bits not yet part of a UTF-16 unit */
	int nbits;
	uint32_t high;      /* pending high surrogate, 0 if none */
};

/* Take one UTF-16 unit out of a shifted run; write its character, if
 * complete, at *o.  Printable ASCII and U+0000 are refused: the first has
 * a direct form, the second cannot live in a C string. */
static int run_unit(struct run_decoder *rd, uint32_t unit, char **o)
{
	uint32_t cp;

	if (rd->high != 0) {
		if (unit < 0xdc00 || unit > 0xdfff)
			return -1;
		cp = 0x10000 + ((rd->high - 0xd800) << 10) + (unit - 0xdc00);
		rd->high = 0;
	} else if (unit >= 0xd800 && unit <= 0xdbff) {
		rd->high = unit;
		return 0;
	} else if (unit >= 0xdc00 && unit <= 0xdfff) {
		return -1;
	} else if (unit == 0 || is_direct(unit)) {
		return -1;
	} else {
		cp = unit;
	}
	*o = put_utf8(*o, cp);
	return 0;
}

/* Decode the shifted run starting after '&' (and known not to be "&-");
 * on success *pp points past its closing '-'. */
static int decode_run(const unsigned char **pp, char **o)
{
	const unsigned char *p = *pp;
	struct run_decoder rd = { 0, 0, 0 };
	int v;

	for (; *p != '-'; p++) {
		v = b64_value(*p);
		if (v < 0)
			return -1;      /* also the NUL of an unterminated run */
		rd.bits = (rd.bits << 6) | (uint32_t)v;
		rd.nbits += 6;
		if (rd.nbits >= 16) {
			rd.nbits -= 16;
			if (run_unit(&rd, (rd.bits >> rd.nbits) & 0xffff, o) < 0)
				return -1;
			rd.bits &= (1u << rd.nbits) - 1;
		}
	}
	/* A canonical encoder pads with the fewest zero bits: six or more
	 * left over means a needless character or a partial UTF-16 unit. */
	if (rd.nbits >= 6 || rd.bits != 0 || rd.high != 0)
		return -1;
	*pp = p + 1;
	return 0;
}

char *mutf7_decode(const char *mutf7)
{
	const unsigned char *p = (const unsigned char *)mutf7;
	bool after_run = false;
	size_t len;
	char *out, *o;

	if (mutf7 == NULL) {
		errno = EINVAL;
		return NULL;
	}
	len = strlen(mutf7);
	/* Eight base64 characters give at most nine UTF-8 bytes, and '&'
	 * plus '-' cost two more input bytes, so twice the input is ample. */
	if (len > (SIZE_MAX - 1) / 2) {
		errno = ENOMEM;
		return NULL;
	}
	out = malloc(2 * len + 1);
	if (out == NULL)
		return NULL;
	o = out;
	while (*p != '\0') {
		if (!is_direct(*p))
			goto invalid;
		if (*p != '&') {
			*o++ = (char)*p++;
			after_run = false;
			continue;
		}
		p++;
		if (*p == '-') {
			*o++ = '&';
			p++;
			after_run = false;
			continue;
		}
		/* Two adjacent runs would have been written as one. */
		if (after_run || decode_run(&p, &o) < 0)
			goto invalid;
		after_run = true;
	}
	*o = '\0';
	return out;

invalid:
	free(out);
	errno = EINVAL;
	return NULL;
}

struct run_encoder {
	char *o;
	uint32_t bits;
	int nbits;
	bool open;
};

static void run_put_unit(struct run_encoder *re, uint32_t unit)
{
	if (!re->open) {
		*re->o++ = '&';
		re->open = true;
	}
	re->bits = (re->bits << 16) | unit;
	re->nbits += 16;
	while (re->nbits >= 6) {
		re->nbits -= 6;
		*re->o++ = b64chars[(re->bits >> re->nbits) & 0x3f];
	}
	re->bits &= (1u << re->nbits) - 1;
}

static void run_close(struct run_encoder *re)
{
	if (!re->open)
		return;
	if (re->nbits > 0)
		*re->o++ = b64chars[(re->bits << (6 - re->nbits)) & 0x3f];
	*re->o++ = '-';
	re->bits = 0;
	re->nbits = 0;
	re->open = false;
}

char *mutf7_encode(const char *utf8)
{
	const unsigned char *p = (const unsigned char *)utf8;
	struct run_encoder re = { NULL, 0, 0, false };
	uint32_t cp;
	size_t len;
	char *out;

	if (utf8 == NULL) {
		errno = EINVAL;
		return NULL;
	}
	len = strlen(utf8);
	/* Worst case is a lone control character between ASCII: one byte
	 * becomes "&AAk-", five. */
	if (len > (SIZE_MAX - 1) / 5) {
		errno = ENOMEM;
		return NULL;
	}
	out = malloc(5 * len + 1);
	if (out == NULL)
		return NULL;
	re.o = out;
	while (*p != '\0') {
		if (mutf7_utf8_next(&p, &cp) < 0) {
			free(out);
			errno = EINVAL;
			return NULL;
		}
		if (is_direct(cp)) {
			run_close(&re);
			*re.o++ = (char)cp;
			if (cp == '&')
				*re.o++ = '-';
		} else if (cp >= 0x10000) {
			cp -= 0x10000;
			run_put_unit(&re, 0xd800 | (cp >> 10));
			run_put_unit(&re, 0xdc00 | (cp & 0x3ff));
		} else {
			run_put_unit(&re, cp);
		}
	}
	run_close(&re);
	*re.o = '\0';
	return out;
}
