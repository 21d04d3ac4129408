/* throttle_parse: the texts of throttle.h, apart from the bucket so that
 * jobconf (and the fuzz targets) need nothing else of it. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "throttle.h"

long long throttle_hint_ms(const char *text)
{
	static const char key[] = "suggested backoff time:";
	const char *p = text != NULL ? strcasestr(text, key) : NULL;
	char *end;
	unsigned long long v;

	if (p == NULL)
		return 0;
	p += sizeof(key) - 1;
	while (*p == ' ')
		p++;
	if (!isdigit((unsigned char)*p))
		return 0;
	errno = 0;
	v = strtoull(p, &end, 10);
	if (errno != 0 || v > 86400000ULL)
		return 0;
	while (*end == ' ')
		end++;
	/* the unit is said; milliseconds when it is not */
	if (strncasecmp(end, "second", 6) == 0 || (end[0] == 's' && !isalpha((unsigned char)end[1])))
		v *= 1000;
	if (v > 86400000ULL)
		return 0;
	return (long long)v;
}

int throttle_parse_bytes(const char *s, uint64_t *v_r)
{
	char *end;
	double v, mult = 1;

	size_t digits;
	const char *dot;

	/* Digits with at most one '.' in them: strtod alone would also take
	 * "0x1p3", "1e9" and "inf". */
	if (s == NULL || !isdigit((unsigned char)s[0]))
		return -1;
	digits = strspn(s, "0123456789.");
	dot = memchr(s, '.', digits);
	if (dot != NULL && memchr(dot + 1, '.', digits - (size_t)(dot + 1 - s)) != NULL)
		return -1;
	if (isalnum((unsigned char)s[digits]) && strchr("kKmMgGbB", s[digits]) == NULL)
		return -1;
	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || end != s + digits)
		return -1;
	switch (*end) {
	case 'k': case 'K': mult = 1e3; end++; break;
	case 'm': case 'M': mult = 1e6; end++; break;
	case 'g': case 'G': mult = 1e9; end++; break;
	default: break;
	}
	if (*end == 'B' || *end == 'b')
		end++;
	if (*end != '\0')
		return -1;
	v *= mult;
	if (!(v >= 1) || v > 1e15)
		return -1;
	*v_r = (uint64_t)(v + 0.5);
	return 0;
}

const char *throttle_time_text(time_t t, char *buf, size_t size)
{
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL || strftime(buf, size, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
		snprintf(buf, size, "%lld", (long long)t);
	return buf;
}
