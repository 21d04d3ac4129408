/* flags: see include/flags.h */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "flags.h"

static const char *const system_flags[] = {
	"\\Seen", "\\Answered", "\\Flagged", "\\Draft", "\\Deleted",
};
#define N_SYSTEM (sizeof(system_flags) / sizeof(system_flags[0]))

/* RFC 3501 atom-specials, plus '\' which only starts a system flag. */
static bool valid_keyword(const char *s, size_t len)
{
	size_t i;

	if (len == 0)
		return false;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c <= 0x20 || c >= 0x7f || strchr("(){%*\"\\]", c) != NULL)
			return false;
	}
	return true;
}

static int cmp_ci(const void *a, const void *b)
{
	return strcasecmp(*(char *const *)a, *(char *const *)b);
}

char *flags_canon(const char *flags)
{
	bool sys[N_SYSTEM] = { false };
	char **kw = NULL, *out, *p;
	size_t nkw = 0, total = 1, i;
	const char *s = flags != NULL ? flags : "";

	while (*s != '\0') {
		const char *start;
		size_t len;

		while (*s == ' ')
			s++;
		start = s;
		while (*s != '\0' && *s != ' ')
			s++;
		len = (size_t)(s - start);
		if (len == 0)
			continue;
		if (start[0] == '\\') {
			for (i = 0; i < N_SYSTEM; i++)
				if (strlen(system_flags[i]) == len &&
				    strncasecmp(system_flags[i], start, len) == 0)
					sys[i] = true;
			continue;   /* \Recent and unknown system flags are dropped */
		}
		if (!valid_keyword(start, len))
			continue;
		{
			char **nk = realloc(kw, (nkw + 1) * sizeof(*kw));

			if (nk == NULL)
				goto nomem;
			kw = nk;
			kw[nkw] = strndup(start, len);
			if (kw[nkw] == NULL)
				goto nomem;
			nkw++;
		}
	}
	if (nkw > 1)
		qsort(kw, nkw, sizeof(*kw), cmp_ci);
	for (i = 0; i < N_SYSTEM; i++)
		if (sys[i])
			total += strlen(system_flags[i]) + 1;
	for (i = 0; i < nkw; i++)
		total += strlen(kw[i]) + 1;
	out = malloc(total);
	if (out == NULL)
		goto nomem;
	p = out;
	for (i = 0; i < N_SYSTEM; i++) {
		if (!sys[i])
			continue;
		if (p != out)
			*p++ = ' ';
		p = stpcpy(p, system_flags[i]);
	}
	for (i = 0; i < nkw; i++) {
		if (i > 0 && strcasecmp(kw[i], kw[i - 1]) == 0)
			continue;
		if (p != out)
			*p++ = ' ';
		p = stpcpy(p, kw[i]);
	}
	*p = '\0';
	for (i = 0; i < nkw; i++)
		free(kw[i]);
	free(kw);
	return out;
nomem:
	for (i = 0; i < nkw; i++)
		free(kw[i]);
	free(kw);
	return NULL;
}

bool flags_equal(const char *a, const char *b)
{
	return strcmp(a != NULL ? a : "", b != NULL ? b : "") == 0;
}
