/* libFuzzer target for the text module (src/text.c): its UTF-8 decoder,
 * its base64 scan and its redaction.  Built and run by tests/fuzz/run.sh,
 * not by make.
 *
 * Input: up to the first NUL, a password (none when empty); after it, the
 * text to clean; the first byte of the text also picks the output size.
 * Besides crashes and leaks it checks the module's promises: the result is
 * valid UTF-8 without control characters and fits its buffer, cleaning it
 * again changes nothing, and the password (as is and IMAP-quoted) is in
 * none of the pieces of source text between its escapes and markers (an
 * escape or a marker next to text can spell a password by chance: "\x1B"
 * followed by "ab" holds "1Bab", though the source held ESC a b). */
#include "config.h"

#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "text.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* out with every escape and marker replaced by a 0x01 separator. */
static void pieces(const char *out, char *sep)
{
	size_t m = strlen(TEXT_REDACTED);

	while (*out != '\0') {
		if (strncmp(out, TEXT_REDACTED, m) == 0) {
			*sep++ = '\x01';
			out += m;
		} else if (out[0] == '\\' && out[1] == 'x' && isxdigit((unsigned char)out[2]) &&
			   isxdigit((unsigned char)out[3])) {
			*sep++ = '\x01';
			out += 4;
		} else {
			*sep++ = *out++;
		}
	}
	*sep = '\0';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nul = memchr(data, '\0', size);
	struct text_secrets ts = { 0 };
	char pw[256], quoted[520], *out, *again, *sep;
	size_t pwlen = 0, qlen = 0, i, room, n;
	const char *text;
	size_t tlen;

	if (nul != NULL && (size_t)(nul - data) < sizeof(pw)) {
		pwlen = (size_t)(nul - data);
		memcpy(pw, data, pwlen);
		text = (const char *)nul + 1;
		tlen = size - pwlen - 1;
	} else {
		text = (const char *)data;
		tlen = size;
	}
	pw[pwlen] = '\0';
	if (text_secrets_add(&ts, pw) < 0)
		abort();
	for (i = 0; i < pwlen; i++) {
		if (pw[i] == '"' || pw[i] == '\\')
			quoted[qlen++] = '\\';
		quoted[qlen++] = pw[i];
	}
	quoted[qlen] = '\0';

	room = tlen > 0 ? (unsigned char)text[0] * 8 + 1 : 1;
	out = malloc(room);
	again = malloc(room);
	sep = malloc(room);
	if (out == NULL || again == NULL || sep == NULL)
		abort();
	n = text_clean(out, room, text, tlen, &ts);
	if (n >= room || strlen(out) != n || !text_is_clean(out, n))
		abort();
	pieces(out, sep);
	if (pwlen > 0 && memchr(pw, '\x01', pwlen) == NULL &&
	    (strstr(sep, pw) != NULL || strstr(sep, quoted) != NULL))
		abort();
	text_clean(again, room, out, n, NULL);
	if (strcmp(out, again) != 0)
		abort();
	free(out);
	free(again);
	free(sep);
	text_secrets_wipe(&ts);
	return 0;
}
