/* text: see include/text.h */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "text.h"

/* An echo cut short is redacted from this many bytes of a password on:
 * fewer would take out too much innocent text. */
#define PARTIAL_MIN 4

/* ---- UTF-8 ------------------------------------------------------------- */

/* Length of the well-formed UTF-8 character at p (Unicode table 3-7), or 0
 * when the bytes there are not one. */
static size_t utf8_char(const unsigned char *p, size_t n, uint32_t *cp)
{
	unsigned char c = p[0], lo = 0x80, hi = 0xBF;
	size_t len, k;
	uint32_t v;

	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if (c >= 0xC2 && c <= 0xDF) {
		len = 2;
		v = c & 0x1F;
	} else if (c >= 0xE0 && c <= 0xEF) {
		len = 3;
		v = c & 0x0F;
		if (c == 0xE0)
			lo = 0xA0;          /* overlong */
		else if (c == 0xED)
			hi = 0x9F;          /* surrogates */
	} else if (c >= 0xF0 && c <= 0xF4) {
		len = 4;
		v = c & 0x07;
		if (c == 0xF0)
			lo = 0x90;          /* overlong */
		else if (c == 0xF4)
			hi = 0x8F;          /* above U+10FFFF */
	} else {
		return 0;               /* continuation byte, C0, C1, F5-FF */
	}
	if (n < len || p[1] < lo || p[1] > hi)
		return 0;
	v = (v << 6) | (p[1] & 0x3F);
	for (k = 2; k < len; k++) {
		if (p[k] < 0x80 || p[k] > 0xBF)
			return 0;
		v = (v << 6) | (p[k] & 0x3F);
	}
	*cp = v;
	return len;
}

static bool is_control(uint32_t cp)
{
	return cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp <= 0x9F);
}

bool text_is_clean(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, k;
	uint32_t cp;

	while (i < len) {
		k = utf8_char(p + i, len - i, &cp);
		if (k == 0 || is_control(cp))
			return false;
		i += k;
	}
	return true;
}

/* ---- output ------------------------------------------------------------ */

struct out {
	char *d;
	size_t size, n;
	bool full;
};

/* Append k bytes whole, or nothing (and nothing more after) when they do
 * not fit: the result is never cut inside a character or an escape. */
static void put(struct out *o, const void *b, size_t k)
{
	if (o->full || o->n + k + 1 > o->size) {
		o->full = true;
		return;
	}
	memcpy(o->d + o->n, b, k);
	o->n += k;
}

static void put_escaped(struct out *o, unsigned char c)
{
	static const char hex[] = "0123456789ABCDEF";
	char e[4] = { '\\', 'x', hex[c >> 4], hex[c & 15] };

	put(o, e, sizeof(e));
}

/* ---- redaction ----------------------------------------------------------- */

static bool is_b64(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '+' || c == '/' || c == '=';
}

static int b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	return c == '+' ? 62 : c == '/' ? 63 : -1;
}

/* Does hay hold a password, or (at_end) end with PARTIAL_MIN or more of
 * its first bytes? */
static bool holds_password(const unsigned char *hay, size_t n, const struct text_secrets *ts,
			   bool at_end)
{
	size_t i, k, want;

	for (i = 0; i < ts->n_pw; i++) {
		const unsigned char *pw = (const unsigned char *)ts->pw[i];
		size_t pl = ts->pw_len[i];

		if (pl <= n && memmem(hay, n, pw, pl) != NULL)
			return true;
		if (!at_end)
			continue;
		for (want = PARTIAL_MIN; want < pl && want <= n; want++) {
			k = n - want;
			if (memcmp(hay + k, pw, want) == 0)
				return true;
		}
	}
	return false;
}

/* Does the base64 run s[0..n) decode, from any of its first four
 * characters, to bytes that hold a password, or end with its beginning (a
 * token cut short)? */
static bool b64_holds(const unsigned char *s, size_t n, const struct text_secrets *ts)
{
	unsigned char *dec = malloc(n / 4 * 3 + 3);
	size_t off, i, m;
	bool hit = false;

	if (dec == NULL)
		return true;    /* cannot tell: never show it */
	for (off = 0; off < 4 && off < n && !hit; off++) {
		uint32_t acc = 0;
		int bits = 0, v;

		m = 0;
		for (i = off; i < n && (v = b64_value(s[i])) >= 0; i++) {
			acc = (acc << 6) | (uint32_t)v;
			bits += 6;
			if (bits >= 8) {
				bits -= 8;
				dec[m++] = (unsigned char)(acc >> bits);
				acc &= (1u << bits) - 1;
			}
		}
		hit = holds_password(dec, m, ts, true);
	}
	explicit_bzero(dec, n / 4 * 3 + 3);
	free(dec);
	return hit;
}

/* Length of the redactable text that starts at s[i], or 0. */
static size_t match_at(const unsigned char *s, size_t len, size_t i,
		       const struct text_secrets *ts)
{
	size_t f, best = 0, rest = len - i;

	if (is_b64(s[i]) && (i == 0 || !is_b64(s[i - 1]))) {
		size_t j = i;

		while (j < len && is_b64(s[j]))
			j++;
		if (j - i >= 4 && b64_holds(s + i, j - i, ts))
			best = j - i;
	}
	for (f = 0; f < ts->n; f++) {
		size_t fl = ts->len[f];

		if (fl <= rest) {
			if (fl > best && memcmp(s + i, ts->form[f], fl) == 0)
				best = fl;
		} else if (rest >= PARTIAL_MIN && rest > best && memcmp(s + i, ts->form[f], rest) == 0) {
			best = rest;    /* the text ends inside a password */
		}
	}
	return best;
}

/* ---- cleaning ----------------------------------------------------------- */

size_t text_clean(char *dst, size_t size, const char *src, size_t len,
		  const struct text_secrets *ts)
{
	const unsigned char *s = (const unsigned char *)src;
	struct out o = { dst, size, 0, false };
	bool redact = ts != NULL && ts->n > 0;
	size_t i = 0, k, m;
	uint32_t cp;

	if (size == 0)
		return 0;
	while (i < len && !o.full) {
		if (redact && (m = match_at(s, len, i, ts)) > 0) {
			size_t end = i + m;

			/* Overlapping and touching occurrences go as one. */
			for (k = i + 1; k <= end && k < len; k++) {
				m = match_at(s, len, k, ts);
				if (k + m > end)
					end = k + m;
			}
			put(&o, TEXT_REDACTED, sizeof(TEXT_REDACTED) - 1);
			i = end;
			continue;
		}
		k = utf8_char(s + i, len - i, &cp);
		/* A password may begin inside a character (with a continuation
		 * byte): then the character's bytes go one by one, escaped. */
		for (m = 1; redact && m < k; m++)
			if (match_at(s, len, i + m, ts) > 0)
				k = 0;
		if (k == 0) {
			put_escaped(&o, s[i]);
			i++;
		} else if (is_control(cp)) {
			for (m = 0; m < k; m++)
				put_escaped(&o, s[i + m]);
			i += k;
		} else {
			put(&o, s + i, k);
			i += k;
		}
	}
	dst[o.n] = '\0';
	return o.n;
}

const char *text_clean_str(char *dst, size_t size, const char *src,
			   const struct text_secrets *ts)
{
	if (src == NULL)
		src = "";
	text_clean(dst, size, src, strlen(src), ts);
	return dst;
}

/* Each source byte becomes at most this many: an escape is 4, a one-byte
 * password the marker. */
#define GROWTH (sizeof(TEXT_REDACTED) - 1 > 4 ? sizeof(TEXT_REDACTED) - 1 : 4)

char *text_clean_dup(const char *src, const struct text_secrets *ts)
{
	size_t len = src != NULL ? strlen(src) : 0, size;
	char *d;

	if (len > (SIZE_MAX - 1) / GROWTH)
		return NULL;
	size = len * GROWTH + 1;
	d = malloc(size);
	if (d == NULL)
		return NULL;
	text_clean(d, size, src != NULL ? src : "", len, ts);
	return d;
}

void text_clean_inplace(char *buf, size_t size, const struct text_secrets *ts)
{
	char stack[1024], *tmp;
	size_t len;

	if (size == 0)
		return;
	len = strnlen(buf, size - 1);
	buf[len] = '\0';
	if ((ts == NULL || ts->n == 0) && text_is_clean(buf, len))
		return;
	tmp = len < sizeof(stack) ? stack : malloc(len + 1);
	if (tmp == NULL) {
		/* Never let the raw text through. */
		text_clean_str(buf, size, "(text withheld: out of memory)", NULL);
		return;
	}
	memcpy(tmp, buf, len + 1);
	text_clean(buf, size, tmp, len, ts);
	explicit_bzero(tmp, len + 1);
	if (tmp != stack)
		free(tmp);
}

/* ---- secrets ------------------------------------------------------------- */

void text_secrets_init(struct text_secrets *ts)
{
	memset(ts, 0, sizeof(*ts));
}

static void wipe_free(char *s, size_t len)
{
	if (s == NULL)
		return;
	explicit_bzero(s, len);
	free(s);
}

void text_secrets_wipe(struct text_secrets *ts)
{
	size_t i;

	for (i = 0; i < ts->n; i++)
		if (ts->owned[i])
			wipe_free(ts->form[i], ts->len[i]);
	for (i = 0; i < ts->n_pw; i++)
		wipe_free(ts->pw[i], ts->pw_len[i]);
	explicit_bzero(ts, sizeof(*ts));
}

/* Add form unless it is there already; an owned form is then ts's (or
 * freed), one that is not is a password of ts->pw itself. */
static void add_form(struct text_secrets *ts, char *form, size_t len, bool owned)
{
	size_t i;

	for (i = 0; i < ts->n; i++) {
		if (ts->len[i] == len && memcmp(ts->form[i], form, len) == 0) {
			if (owned)
				wipe_free(form, len);
			return;
		}
	}
	ts->form[ts->n] = form;
	ts->len[ts->n] = len;
	ts->owned[ts->n] = owned;
	ts->n++;
}

/* The content of an IMAP quoted string holding pw: \ and " escaped. */
static char *quoted(const char *pw, size_t len, size_t *out_len)
{
	char *q = malloc(2 * len + 1);
	size_t i, n = 0;

	if (q == NULL)
		return NULL;
	for (i = 0; i < len; i++) {
		if (pw[i] == '"' || pw[i] == '\\')
			q[n++] = '\\';
		q[n++] = pw[i];
	}
	q[n] = '\0';
	*out_len = n;
	return q;
}

int text_secrets_add(struct text_secrets *ts, const char *password)
{
	char *copy, *q, *e1 = NULL, *e2 = NULL;
	size_t len, qlen = 0, i;

	if (password == NULL || password[0] == '\0')
		return 0;
	len = strlen(password);
	for (i = 0; i < ts->n_pw; i++)
		if (ts->pw_len[i] == len && memcmp(ts->pw[i], password, len) == 0)
			return 0;
	if (ts->n_pw >= TEXT_SECRETS_MAX)
		return -1;
	copy = strdup(password);
	q = quoted(password, len, &qlen);
	if (q != NULL) {
		e1 = text_clean_dup(password, NULL);
		e2 = text_clean_dup(q, NULL);
	}
	if (copy == NULL || e1 == NULL || e2 == NULL) {
		wipe_free(copy, len);
		wipe_free(q, qlen);
		wipe_free(e1, e1 != NULL ? strlen(e1) : 0);
		wipe_free(e2, e2 != NULL ? strlen(e2) : 0);
		return -1;
	}
	ts->pw[ts->n_pw] = copy;
	ts->pw_len[ts->n_pw++] = len;
	/* Most passwords have one form only: then it is the one copy kept. */
	add_form(ts, copy, len, false);
	add_form(ts, q, qlen, true);
	add_form(ts, e1, strlen(e1), true);
	add_form(ts, e2, strlen(e2), true);
	return 0;
}
