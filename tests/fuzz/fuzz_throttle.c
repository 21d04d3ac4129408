/* libFuzzer target for the texts of the throttles (src/throttle_parse.c):
 * byte counts of the options ("2M", "1.5G") and servers' back-off hints
 * ("Suggested Backoff Time: 2000 milliseconds").  Built and run by
 * tests/fuzz/run.sh, not by make.
 *
 * Besides crashes it checks the promises: a count taken is 1..10^15 and
 * reads back the same once written in its plain digits; a hint is 0..one
 * day of milliseconds. */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "throttle.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	uint64_t v = 0, w = 0;
	long long ms;

	if (s == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	if (throttle_parse_bytes(s, &v) == 0) {
		char back[32];

		if (v < 1 || v > 1000000000000000ULL)
			abort();
		snprintf(back, sizeof(back), "%llu", (unsigned long long)v);
		if (throttle_parse_bytes(back, &w) != 0 || w != v)
			abort();
	}
	ms = throttle_hint_ms(s);
	if (ms < 0 || ms > 86400000LL)
		abort();
	free(s);
	return 0;
}
