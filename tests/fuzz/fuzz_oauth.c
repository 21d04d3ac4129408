/* libFuzzer target for oauth.c's parsers: a token command's output
 * (oauth_parse_token) and a server's SASL failure challenge
 * (oauth_explain_failure).  Built and run by tests/fuzz/run.sh.
 *
 * Checks besides crashes and leaks: a token taken is non-empty, fits, and
 * holds only token characters; an error text never holds the input when
 * the input is a token-like word of 12 or more bytes (it may be a
 * token); the failure sentence is printable ASCII and fits. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "oauth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char tok[256], why[200];
	struct tr_error err;
	long ttl;
	size_t i;

	if (oauth_parse_token((const char *)data, size, tok, sizeof(tok), &ttl, &err) == 0) {
		if (tok[0] == '\0' || strlen(tok) >= sizeof(tok))
			abort();
		for (i = 0; tok[i] != '\0'; i++)
			if ((unsigned char)tok[i] <= ' ' || (unsigned char)tok[i] >= 0x7f)
				abort();
		if (ttl < 0)
			abort();
	} else if (size >= 12 && size < sizeof(err.msg)) {
		char *copy = malloc(size + 1);

		memcpy(copy, data, size);
		copy[size] = '\0';
		if (strlen(copy) == size && strspn(copy, "abcdefghijklmnopqrstuvwxyz0123456789") == size &&
		    strstr(err.msg, copy) != NULL)
			abort();
		free(copy);
	}
	oauth_explain_failure((const char *)data, size, why, sizeof(why));
	if (strlen(why) >= sizeof(why))
		abort();
	for (i = 0; why[i] != '\0'; i++)
		if ((unsigned char)why[i] < 0x20 || (unsigned char)why[i] >= 0x7f)
			abort();
	return 0;
}
