/* budget: see include/budget.h */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "budget.h"

/* lit_state: where the end of a line is in "{digits}\r\n" */
enum { LIT_NONE, LIT_OPEN, LIT_DIGITS, LIT_CLOSED, LIT_CR };

void budget_init(struct budget *b)
{
	memset(b, 0, sizeof(*b));
	b->fetch = -1;
}

void budget_arm(struct budget *b, const struct budget_limits *lim)
{
	b->lim = *lim;
	b->used = 0;
	b->next_tag[0] = '\0';
}

void budget_arm_next(struct budget *b, const char *tag, const struct budget_limits *next)
{
	snprintf(b->next_tag, sizeof(b->next_tag), "%s", tag);
	b->next = *next;
}

/* The response that just ended was the tagged line b->next_tag was waiting for. */
static void maybe_next(struct budget *b)
{
	size_t n = strlen(b->next_tag);

	if (n == 0 || b->head_len <= n || memcmp(b->head, b->next_tag, n) != 0 || b->head[n] != ' ')
		return;
	b->lim = b->next;
	b->used = 0;
	b->next_tag[0] = '\0';
}

uint64_t budget_bound(const struct budget *b)
{
	switch (b->over) {
	case BUDGET_OVER_TOTAL: return b->lim.total;
	case BUDGET_OVER_FETCH: return b->lim.fetch_one;
	default: return 0;
	}
}

const char *budget_response(const struct budget *b, char *buf, size_t size)
{
	const unsigned char *p = b->head, *end = b->head + b->head_len;
	size_t n = 0;

	if (size == 0)
		return "";
	buf[0] = '\0';
	if (p == end)
		return buf;
	if (*p == '+') {
		snprintf(buf, size, "continuation");
		return buf;
	}
	if (*p != '*') {
		snprintf(buf, size, "tagged");
		return buf;
	}
	for (p++; p < end && *p == ' '; p++)
		;
	while (p < end && *p >= '0' && *p <= '9')
		p++;
	for (; p < end && *p == ' '; p++)
		;
	while (p < end && n + 1 < size &&
	       ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || *p == '-' || *p == '.'))
		buf[n++] = (char)*p++;
	buf[n] = '\0';
	return buf;
}

/* Does head (n bytes) start "* 123 FETCH " (RFC 3501 message-data), the
 * only responses whose literals may be bodies?  1 yes, 0 no, -1 cannot
 * tell yet. */
static int match_fetch(const unsigned char *p, size_t n)
{
	static const char word[] = " FETCH";
	size_t i, j;

	if (n < 1)
		return -1;
	if (p[0] != '*')
		return 0;
	if (n < 2)
		return -1;
	if (p[1] != ' ')
		return 0;
	for (i = 2; i < n && p[i] >= '0' && p[i] <= '9'; i++)
		;
	if (i == n)
		return -1;
	if (i == 2)
		return 0;
	for (j = 0; j < sizeof(word) - 1; j++, i++) {
		if (i == n)
			return -1;
		if ((p[i] & ~0x20) != (word[j] & ~0x20))
			return 0;
	}
	if (i == n)
		return -1;
	return p[i] == ' ' || p[i] == '(';
}

/* Is the current response a FETCH?  final: its first line is complete, so
 * what cannot be told by now is no (a head full of leading zeros included). */
static bool is_fetch(struct budget *b, bool final)
{
	int m;

	if (b->fetch >= 0)
		return b->fetch;
	m = match_fetch(b->head, b->head_len);
	if (m < 0 && !final && b->head_len < sizeof(b->head))
		return false;
	b->fetch = m > 0;
	return b->fetch;
}

static bool literal_free(struct budget *b)
{
	return b->lim.fetch_literals_free && is_fetch(b, true);
}

/* A literal of n bytes is announced: can it come? */
static bool announce(struct budget *b, uint64_t n)
{
	bool fetch = is_fetch(b, true);

	if (b->lim.fetch_one != 0 && fetch &&
	    (b->resp > b->lim.fetch_one || n > b->lim.fetch_one - b->resp)) {
		b->over = BUDGET_OVER_FETCH;
		return false;
	}
	if (b->lim.total != 0 && !(b->lim.fetch_literals_free && fetch) &&
	    (b->used > b->lim.total || n > b->lim.total - b->used)) {
		b->over = BUDGET_OVER_TOTAL;
		return false;
	}
	b->lit_left = n;
	return true;
}

/* One byte of a line; returns false when over. */
static bool line_byte(struct budget *b, unsigned char c)
{
	if (!b->in_resp) {
		b->in_resp = true;
		b->resp = 0;
		b->head_len = 0;
		b->fetch = -1;
		b->lit_state = LIT_NONE;
	}
	if (b->head_len < sizeof(b->head))
		b->head[b->head_len++] = c;
	b->resp++;
	b->used++;
	if (c == '{') {
		b->lit_state = LIT_OPEN;
		b->lit_n = 0;
		return true;
	}
	if (c == '\n') {
		bool literal = b->lit_state == LIT_CLOSED || b->lit_state == LIT_CR;

		b->lit_state = LIT_NONE;
		if (!literal) {
			b->in_resp = false;   /* the response ends here */
			if (b->lim.fetch_one != 0 && b->resp > b->lim.fetch_one && is_fetch(b, true)) {
				b->over = BUDGET_OVER_FETCH;
				return false;
			}
			if (b->lim.total != 0 && b->used > b->lim.total) {
				b->over = BUDGET_OVER_TOTAL;
				return false;
			}
			maybe_next(b);
			return true;
		}
		/* The response goes on after the literal (even an empty one). */
		return announce(b, b->lit_n);
	}
	switch (b->lit_state) {
	case LIT_OPEN:
	case LIT_DIGITS:
		if (c >= '0' && c <= '9') {
			/* Saturate: libetpan wraps the number, we only need "too big". */
			uint64_t d = (uint64_t)(c - '0');

			b->lit_n = b->lit_n > (UINT64_MAX - d) / 10 ? UINT64_MAX : b->lit_n * 10 + d;
			b->lit_state = LIT_DIGITS;
			return true;
		}
		b->lit_state = c == '}' && b->lit_state == LIT_DIGITS ? LIT_CLOSED : LIT_NONE;
		return true;
	case LIT_CLOSED:
		b->lit_state = c == '\r' ? LIT_CR : LIT_NONE;
		return true;
	default:
		b->lit_state = LIT_NONE;
		return true;
	}
}

size_t budget_keep(const struct budget *b)
{
	return b->keep;
}

enum budget_over budget_feed(struct budget *b, const char *data, size_t len)
{
	const unsigned char *start = (const unsigned char *)data, *p = start, *end = p + len;
	/* Where the line being read started in data (0 also when before it). */
	size_t line_at = 0;

	b->keep = 0;
	if (b->over != BUDGET_OK)
		return b->over;
	while (p < end) {
		if (b->lit_left > 0) {
			size_t k = (uint64_t)(end - p) < b->lit_left ? (size_t)(end - p)
								     : (size_t)b->lit_left;

			b->lit_left -= k;
			b->resp += k;
			if (!literal_free(b))
				b->used += k;
			p += k;
			line_at = (size_t)(p - start);
			continue;
		}
		if (!line_byte(b, *p))
			break;
		if (*p++ == '\n')
			line_at = (size_t)(p - start);
	}
	if (b->over == BUDGET_OK) {
		if (b->lim.total != 0 && b->used > b->lim.total)
			b->over = BUDGET_OVER_TOTAL;
		else if (b->lim.fetch_one != 0 && b->in_resp && b->resp > b->lim.fetch_one &&
			 is_fetch(b, false))
			b->over = BUDGET_OVER_FETCH;
	}
	b->keep = b->over == BUDGET_OK ? len : line_at;
	return b->over;
}
