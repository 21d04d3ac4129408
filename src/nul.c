/* nul: see include/nul.h.  This half only looks at bytes: where a NUL may
 * hide, and whether BINARY[] lines up (src/nul_fetch.c asks the server). */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libetpan/libetpan.h>

#include "nul.h"

/* Deeper MIME nesting than this is not walked (its 0x80s stay unchecked). */
#define MAX_DEPTH 32

static const char WHY_HEADERS[] = "a 0x80 outside the parts BINARY[] can return (in headers or "
				  "in a transfer-encoded part) cannot be told from a NUL";
static const char WHY_MIME[] = "its MIME structure could not be followed";

/* Is the 0x80 at p[i] inside a well-formed UTF-8 sequence?  Its nearest
 * byte before that is not a continuation must be a lead byte whose sequence
 * reaches it.  This is the verdict of a forward UTF-8 state machine (a
 * lead always starts a sequence; a continuation beyond one is stray), found
 * from at most 3 bytes back, so the scan can jump from 0x80 to 0x80 with
 * memchr: messages are mostly base64 and ASCII, which have none. */
static bool in_utf8(const struct nul_scan *sc, const unsigned char *p, size_t i)
{
	size_t k;

	for (k = 1; k <= 3; k++) {
		unsigned char b;
		size_t len;

		if (k <= i)
			b = p[i - k];
		else if (k - i <= sc->n_last)
			b = sc->last[sizeof(sc->last) - (k - i)];
		else
			return false;           /* the message starts here */
		if ((b & 0xC0) == 0x80)
			continue;
		if (b < 0xC2 || b > 0xF4)
			return false;
		len = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : 2;
		return len > k;
	}
	return false;                           /* more continuations than any sequence has */
}

bool nul_scan(struct nul_scan *sc, const char *data, size_t len)
{
	const unsigned char *p = (const unsigned char *)data, *q = p, *end = p + len;
	size_t keep, i;

	while (q < end && (q = memchr(q, 0x80, (size_t)(end - q))) != NULL) {
		if (!in_utf8(sc, p, (size_t)(q - p)))
			return true;
		q++;
	}
	/* The last bytes, for a 0x80 at the start of the next chunk. */
	keep = len < sizeof(sc->last) ? len : sizeof(sc->last);
	memmove(sc->last, sc->last + keep, sizeof(sc->last) - keep);
	for (i = 0; i < keep; i++)
		sc->last[sizeof(sc->last) - keep + i] = p[len - keep + i];
	sc->n_last = sc->n_last + keep > sizeof(sc->last) ? sizeof(sc->last) : sc->n_last + keep;
	return false;
}

bool nul_stray(const char *data, size_t len)
{
	struct nul_scan sc = { 0 };

	return nul_scan(&sc, data, len);
}

/* ---- the plan: which parts to ask BINARY[n] for ------------------------ */

struct walk {
	struct nul_plan *plan;
	const char *msg;
	size_t len, cap;
	bool oom;
};

static void add_part(struct walk *w, const char *section, size_t off, size_t len)
{
	struct nul_plan *p = w->plan;

	if (p->n == w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 8;
		struct nul_part *nv = realloc(p->v, cap * sizeof(*nv));

		if (nv == NULL) {
			w->oom = true;
			return;
		}
		p->v = nv;
		w->cap = cap;
	}
	snprintf(p->v[p->n].section, sizeof(p->v[p->n].section), "%s", section);
	p->v[p->n].off = off;
	p->v[p->n].len = len;
	p->n++;
}

static bool plain_encoding(int enc)
{
	return enc == MAILMIME_MECHANISM_7BIT || enc == MAILMIME_MECHANISM_8BIT ||
	       enc == MAILMIME_MECHANISM_BINARY;
}

/* Collect every identity-encoded leaf under mime, numbered as IMAP does
 * (RFC 3501 6.4.5): the parts of a multipart are prefix.1, prefix.2...; the
 * body of a message/rfc822 part is prefix.1 unless it is a multipart. */
static void walk(struct walk *w, struct mailmime *mime, const char *prefix, int depth)
{
	char sub[sizeof(((struct nul_part *)0)->section)];
	struct mailmime_data *d;
	const char *text;
	size_t tlen;
	clistiter *it;
	int i = 1, n;

	if (mime == NULL || w->oom)
		return;
	if (depth > MAX_DEPTH) {
		w->plan->unchecked = WHY_MIME;
		return;
	}
	switch (mime->mm_type) {
	case MAILMIME_SINGLE:
		d = mime->mm_data.mm_single;
		if (d == NULL || d->dt_type != MAILMIME_DATA_TEXT || !plain_encoding(d->dt_encoding))
			return;
		text = d->dt_data.dt_text.dt_data;
		tlen = d->dt_data.dt_text.dt_length;
		if (text < w->msg || tlen > w->len || (size_t)(text - w->msg) > w->len - tlen) {
			w->plan->unchecked = WHY_MIME;
			return;
		}
		add_part(w, prefix, (size_t)(text - w->msg), tlen);
		return;
	case MAILMIME_MULTIPLE:
		for (it = clist_begin(mime->mm_data.mm_multipart.mm_mp_list); it != NULL;
		     it = clist_next(it), i++) {
			n = snprintf(sub, sizeof(sub), "%s%s%d", prefix, prefix[0] ? "." : "", i);
			if (n < 0 || (size_t)n >= sizeof(sub)) {
				w->plan->unchecked = WHY_MIME;
				return;
			}
			walk(w, clist_content(it), sub, depth + 1);
		}
		return;
	case MAILMIME_MESSAGE:
		mime = mime->mm_data.mm_message.mm_msg_mime;
		if (mime != NULL && mime->mm_type == MAILMIME_MULTIPLE) {
			walk(w, mime, prefix, depth + 1);
			return;
		}
		n = snprintf(sub, sizeof(sub), "%s%s1", prefix, prefix[0] ? "." : "");
		if (n < 0 || (size_t)n >= sizeof(sub)) {
			w->plan->unchecked = WHY_MIME;
			return;
		}
		walk(w, mime, sub, depth + 1);
		return;
	default:
		return;
	}
}

int nul_plan(const char *msg, size_t len, struct nul_plan *plan, struct tr_error *err)
{
	struct mailmime *mime = NULL, *body;
	struct walk w = { .plan = plan, .msg = msg, .len = len };
	size_t idx = 0, i, k = 0, at = 0;

	memset(plan, 0, sizeof(*plan));
	if (mailmime_parse(msg, len, &idx, &mime) != MAILIMF_NO_ERROR || mime == NULL) {
		plan->unchecked = WHY_MIME;
		return 0;
	}
	body = mime->mm_type == MAILMIME_MESSAGE ? mime->mm_data.mm_message.mm_msg_mime : NULL;
	if (body != NULL && body->mm_type == MAILMIME_SINGLE && body->mm_data.mm_single != NULL &&
	    body->mm_data.mm_single->dt_type == MAILMIME_DATA_TEXT &&
	    plain_encoding(body->mm_data.mm_single->dt_encoding)) {
		/* One identity-encoded body: BINARY[] is the whole message,
		 * headers included. */
		add_part(&w, "", 0, len);
	} else {
		walk(&w, mime, "", 0);
	}
	mailmime_free(mime);
	if (w.oom) {
		nul_plan_free(plan);
		tr_error_set(err, TR_ERR_LOCAL, "out of memory");
		return -1;
	}
	/* A stray 0x80 between those parts cannot be checked; parts without
	 * one need no BINARY[]. */
	for (i = 0; i < plan->n; i++) {
		struct nul_part *p = &plan->v[i];

		if (p->off < at) {
			plan->unchecked = WHY_MIME;   /* parts out of order: do not guess */
			break;
		}
		if (nul_stray(msg + at, p->off - at))
			plan->unchecked = WHY_HEADERS;
		at = p->off + p->len;
		if (nul_stray(msg + p->off, p->len))
			plan->v[k++] = *p;
	}
	if (i == plan->n && nul_stray(msg + at, len - at))
		plan->unchecked = WHY_HEADERS;
	plan->n = k;
	return 0;
}

void nul_plan_free(struct nul_plan *plan)
{
	free(plan->v);
	plan->v = NULL;
	plan->n = 0;
}

static bool only_crlf(const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (p[i] != '\r' && p[i] != '\n')
			return false;
	return true;
}

long nul_patch(char *body, size_t body_len, const char *bin, size_t bin_len)
{
	size_t n = body_len < bin_len ? body_len : bin_len, i;
	long nuls = 0;

	/* Where a part ends (before its boundary's CRLF) is a matter of
	 * taste between MIME parsers: allow that much, nothing else. */
	if (body_len - n > 2 || bin_len - n > 2 || !only_crlf(body + n, body_len - n) ||
	    !only_crlf(bin + n, bin_len - n))
		return -1;
	for (i = 0; i < n; i++) {
		if (body[i] == bin[i])
			continue;
		if ((unsigned char)body[i] != 0x80 || bin[i] != '\0')
			return -1;
		nuls++;
	}
	for (i = 0; i < n && nuls > 0; i++)
		if (body[i] != bin[i])
			body[i] = '\0';
	return nuls;
}
