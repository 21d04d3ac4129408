/* libFuzzer target for the passwd-file fields' template (src/provision.c,
 * provision_expand).  Built and run by tests/fuzz/run.sh, not by make.
 *
 * Input: the template, a NUL, the user.  Besides crashes it checks the
 * promises: a result fits its buffer and holds no control character, and a
 * template without '%' comes out as it went in. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "provision.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size + 2), out[256];
	const char *tmpl, *user;
	struct tr_error err;
	size_t i, tlen;

	if (buf == NULL)
		return 0;
	memcpy(buf, data, size);
	buf[size] = buf[size + 1] = '\0';
	tmpl = buf;
	tlen = strlen(tmpl);
	user = tlen < size ? buf + tlen + 1 : "";
	memset(out, 'X', sizeof(out));
	if (provision_expand(tmpl, user, out, sizeof(out), &err) == 0) {
		size_t len = strnlen(out, sizeof(out));

		if (len == sizeof(out))
			abort();
		for (i = 0; i < len; i++)
			if ((unsigned char)out[i] < 0x20 || out[i] == 0x7f)
				abort();
		if (strchr(tmpl, '%') == NULL && strcmp(out, tmpl) != 0)
			abort();
	} else if (err.kind != TR_ERR_USAGE) {
		abort();
	}
	free(buf);
	return 0;
}
