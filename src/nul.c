/* nul: see include/nul.h.  This half only looks at bytes: where a NUL may
 * hide, and whether BINARY[] lines up (src/nul_fetch.c asks the server). */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libetpan/libetpan.h>

#include "nul.h"

/* Deeper MIME nesting than this is not walked (its 0x80s stay unchecked). */
#define MAX_DEPTH 32

static const char WHY_HEADERS[] = "a 0x80 outside the parts BINARY[] can return (in headers or "
				  "in a transfer-encoded part) cannot be told from a NUL";
static const char WHY_MIME[] = "its MIME structure could not be followed";
static const char WHY_SHAPE[] = "its MIME structure is nested too deep, or has too many parts or "
				"header fields, to be followed safely";

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

/* ---- the shape of a message, before libetpan parses it ----------------- */

/* Why these are upper bounds (libetpan 1.9.4, mailmime_content.c, mailimf.c):
 *  - Header fields start at a line start (offset 0 or after LF): a field
 *    ends with its CRLF, a part's data starts after its delimiter line, a
 *    message's body after its header.  A field is a name (any bytes over
 *    32 but ':'), then CFWS (blanks, a comment, a fold) and ':'.
 *  - A level recurses only from a multipart (its Content-Type says
 *    "multipart", with a boundary) or a message (its Content-Type says
 *    "message", or it is a part of a multipart/digest without one).  Each
 *    such Content-Type is its own field; a digest's part is parsed as a
 *    message, whose own body needs a Content-Type to go deeper.  So the
 *    levels are at most 2 per Content-Type field mentioning multipart or
 *    message, plus the top message and its body.
 *  - Each part of a multipart follows a delimiter line, which starts with
 *    "--", and no line delimits two parts; but the last part of a multipart
 *    may have none (libetpan takes the rest of the data when no delimiter
 *    comes): one more per multipart.
 *  - When the message's own header (which ends at its first empty line, if
 *    not before) has no such Content-Type, libetpan parses that header and
 *    nothing more. */

/* As libetpan has it: 8-bit bytes too. */
static bool is_ftext(unsigned char c)
{
	return c >= 33 && c != ':';
}

static bool is_blank(unsigned char c)
{
	return c == ' ' || c == '\t';
}

/* The length of the field name if the line at p (its LF at e, or e ==
 * end) can start a header field, else 0. */
static size_t field_name(const unsigned char *p, const unsigned char *e,
			 const unsigned char *end)
{
	const unsigned char *q = p;
	size_t n;

	while (q < e && is_ftext(*q))
		q++;
	n = (size_t)(q - p);
	if (n == 0)
		return 0;
	while (q < e && is_blank(*q))
		q++;
	if (q < e && *q == '\r' && q + 1 == e)
		q++;
	if (q < e)
		return *q == ':' || *q == '(' ? n : 0;
	/* The name ends its line: the colon may follow a fold. */
	return e + 1 < end && is_blank(e[1]) ? n : 0;
}

static bool has_word(const unsigned char *p, size_t n, const char *w)
{
	size_t k = strlen(w), i, j;

	for (i = 0; i + k <= n; i++) {
		for (j = 0; j < k && (p[i + j] | 0x20) == w[j]; j++)
			;
		if (j == k)
			return true;
	}
	return false;
}

/* Does the field at p (through its folded lines) mention a composite type? */
static bool composite_field(const unsigned char *p, const unsigned char *end)
{
	const unsigned char *e = p;

	for (;;) {
		e = memchr(e, '\n', (size_t)(end - e));
		if (e == NULL || e + 1 >= end || !is_blank(e[1])) {
			e = e == NULL ? end : e;
			break;
		}
		e++;
	}
	return has_word(p, (size_t)(e - p), "multipart") || has_word(p, (size_t)(e - p), "message");
}

void nul_mime_shape(const char *msg, size_t len, struct nul_shape *sh)
{
	const unsigned char *p = (const unsigned char *)msg, *end = p + len;
	size_t composite = 0, fields = 0, delims = 0, top_fields = 0, name;
	bool top = true, top_composite = false;

	while (p < end) {
		const unsigned char *nl = memchr(p, '\n', (size_t)(end - p));
		const unsigned char *e = nl != NULL ? nl : end;

		if (top && (e == p || (e == p + 1 && *p == '\r'))) {
			top = false;   /* the end of the message's own header */
		} else {
			if (e - p >= 2 && p[0] == '-' && p[1] == '-')
				delims++;
			name = field_name(p, e, end);
			if (name > 0) {
				fields++;
				top_fields += top;
				if (name == 12 && strncasecmp((const char *)p, "content-type", 12) == 0 &&
				    composite_field(p, end)) {
					composite++;
					top_composite = top_composite || top;
				}
			}
		}
		p = nl != NULL ? nl + 1 : end;
	}
	if (!top_composite) {
		sh->depth = 2;
		sh->parts = 0;
		sh->fields = top_fields;
		return;
	}
	sh->depth = composite < (SIZE_MAX - 2) / 2 ? 2 * composite + 2 : SIZE_MAX;
	sh->parts = delims + composite;
	sh->fields = fields;
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
	struct nul_shape sh;
	size_t idx = 0, i, k = 0, at = 0;

	memset(plan, 0, sizeof(*plan));
	nul_mime_shape(msg, len, &sh);
	if (sh.depth > NUL_MAX_MIME_DEPTH || sh.parts > NUL_MAX_MIME_PARTS ||
	    sh.fields > NUL_MAX_MIME_FIELDS) {
		plan->unchecked = WHY_SHAPE;
		return 0;
	}
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
