/* libFuzzer target for msgsig, the keys that recognise a message a
 * destination stored altered (src/msgsig.c).  Built and run by
 * tests/fuzz/run.sh, not by make.
 *
 * Input: a message.  Besides crashes and leaks it checks msgsig's
 * promises: any chunking gives the same keys; the copy a munging server
 * would store (8-bit header bytes made 'X', every LF made CR LF, a
 * Received field added) has the same loose key, and the same strict key
 * but for the added field. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "msgsig.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void sig(const uint8_t *d, size_t n, size_t chunk, struct msgsig *out)
{
	struct msgsig_ctx *c = msgsig_new();
	size_t off = 0;

	if (c == NULL)
		abort();
	while (off < n) {
		size_t k = n - off < chunk ? n - off : chunk;

		msgsig_update(c, d + off, k);
		off += k;
	}
	msgsig_final(c, out);
}

/* What a munging server stores: header 8-bit bytes 'X', bare LF -> CR LF. */
static uint8_t *munge(const uint8_t *d, size_t n, const char *add, size_t *len)
{
	size_t alen = strlen(add), i, k = 0;
	uint8_t *o = malloc(alen + 2 * n + 1);
	int in_head = 1, nl = 0;

	if (o == NULL)
		return NULL;
	memcpy(o, add, alen);
	k = alen;
	for (i = 0; i < n; i++) {
		uint8_t c = d[i];

		if (c == '\n') {
			if (i == 0 || d[i - 1] != '\r')
				o[k++] = '\r';
			if (++nl == 2 && in_head)
				in_head = 0;
		} else if (c != '\r') {
			nl = 0;
		}
		o[k++] = in_head && c >= 0x80 ? 'X' : c;
	}
	*len = k;
	return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct msgsig a, b, c;
	uint8_t *m;
	size_t mlen;

	if (size > 65536)
		return 0;
	sig(data, size, size ? size : 1, &a);
	sig(data, size, 1, &b);
	sig(data, size, 7, &c);
	if (memcmp(&a, &b, sizeof(a)) != 0 || memcmp(&a, &c, sizeof(a)) != 0)
		abort();
	/* only for messages whose header section the munging keeps intact:
	 * a plain "Name: value" first line, no lone CR */
	if (size < 4 || memchr(data, '\r', size) != NULL || data[0] == ' ' || data[0] == '\t' ||
	    data[0] == '\n' || memchr(data, ':', size) == NULL)
		return 0;
	m = munge(data, size, "", &mlen);
	if (m == NULL)
		return 0;
	sig(m, mlen, 3, &b);
	free(m);
	if (memcmp(a.strict, b.strict, sizeof(a.strict)) != 0 ||
	    memcmp(a.loose, b.loose, sizeof(a.loose)) != 0)
		abort();
	m = munge(data, size, "Received: from x by y\r\n", &mlen);
	if (m == NULL)
		return 0;
	sig(m, mlen, 5, &b);
	free(m);
	if (memcmp(a.loose, b.loose, sizeof(a.loose)) != 0)
		abort();
	return 0;
}
