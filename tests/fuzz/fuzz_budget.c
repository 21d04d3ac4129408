/* libFuzzer target for the byte budget (src/budget.c): the scan of a
 * server's byte stream for responses and literal announcements.  Built and
 * run by tests/fuzz/run.sh, not by make.
 *
 * Input: two bytes choosing the bounds, then the stream.  Besides crashes
 * it checks the promises: the stream fed whole, in two pieces or byte by
 * byte gives the same verdict, the byte-by-byte run stops at a byte inside
 * every other run's failing piece, a piece is handed on whole unless it
 * fails, and a stream under no bound is never refused. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "budget.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Feed in pieces of `step` bytes: the offset of the piece that failed, or size. */
static size_t run(const struct budget_limits *lim, const char *s, size_t size, size_t step,
		  enum budget_over *over)
{
	struct budget b;
	size_t i;

	budget_init(&b);
	budget_arm(&b, lim);
	*over = BUDGET_OK;
	for (i = 0; i < size; i += step) {
		size_t n = size - i < step ? size - i : step;

		*over = budget_feed(&b, s + i, n);
		if (budget_keep(&b) > n || (*over == BUDGET_OK && budget_keep(&b) != n))
			abort();
		if (*over != BUDGET_OK)
			return i;
	}
	return size;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct budget_limits none = { 0, 0, false };
	struct budget_limits lim;
	enum budget_over o1, o2, ow, on;
	size_t at1, at2, atw, half;
	const char *s;

	if (size < 2)
		return 0;
	lim.total = (uint64_t)data[0] * 4;
	lim.fetch_one = (uint64_t)(data[1] & 0x7f) * 4;
	lim.fetch_literals_free = data[1] & 0x80;
	s = (const char *)data + 2;
	size -= 2;
	half = size / 2 + 1;
	at1 = run(&lim, s, size, 1, &o1);
	at2 = run(&lim, s, size, half, &o2);
	atw = run(&lim, s, size, size > 0 ? size : 1, &ow);
	if (run(&none, s, size, 1, &on) != size || on != BUDGET_OK)
		abort();
	/* Within a piece, the verdict may come only at its end (line bytes are
	 * counted as a whole), so pieces may fail later, never earlier. */
	if ((o1 == BUDGET_OK) != (ow == BUDGET_OK) || (o1 == BUDGET_OK) != (o2 == BUDGET_OK))
		abort();
	if (o1 != BUDGET_OK && (atw != 0 || at2 > at1 || at1 >= at2 + half))
		abort();
	return 0;
}
