/* Unit tests for the modified UTF-7 codec (src/mutf7.c).
 *
 * The cases follow the kinds Dovecot's and isync's suites check (the RFC
 * example, "&" handling, split runs, stray bits), plus the folder names
 * trasloco is most likely to meet in Italian and other mailboxes.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "mutf7.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Both directions hold: encode(utf8) == mutf7 and decode(mutf7) == utf8. */
static const struct {
	const char *utf8;
	const char *mutf7;
} pairs[] = {
	{ "", "" },
	{ "INBOX", "INBOX" },
	{ "Posta inviata", "Posta inviata" },
	{ "Localit\xc3\xa0", "Localit&AOA-" },
	{ "Clienti/Rossi & Figli", "Clienti/Rossi &- Figli" },
	{ "&", "&-" },
	{ "&&x&&", "&-&-x&-&-" },
	{ "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e", "&ZeVnLIqe-" },                 /* 日本語 */
	{ "\xce\x95\xce\xbb\xce\xbb\xce\xb7\xce\xbd\xce\xb9\xce\xba\xce\xac",      /* Ελληνικά */
	  "&A5UDuwO7A7cDvQO5A7oDrA-" },
	{ "\xd0\x9e\xd1\x82\xd0\xbf\xd1\x80\xd0\xb0\xd0\xb2\xd0\xbb\xd0\xb5"      /* Отправленные */
	  "\xd0\xbd\xd0\xbd\xd1\x8b\xd0\xb5",
	  "&BB4EQgQ,BEAEMAQyBDsENQQ9BD0ESwQ1-" },
	{ "Wys\xc5\x82""ane", "Wys&AUI-ane" },
	{ "Entw\xc3\xbc""rfe", "Entw&APw-rfe" },
	{ "\xc3\x89l\xc3\xa9ments envoy\xc3\xa9s", "&AMk-l&AOk-ments envoy&AOk-s" },
	{ "tiet\xc3\xa4j\xc3\xa4", "tiet&AOQ-j&AOQ-" },
	{ "\xf0\x9f\x98\x80", "&2D3eAA-" },                                     /* U+1F600 */
	{ "a\xf0\x9f\x98\x80""b\xe6\x97\xa5\xe6\x9c\xac", "a&2D3eAA-b&ZeVnLA-" },
	{ "~peter/mail/\xe5\x8f\xb0\xe5\x8c\x97/\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e",
	  "~peter/mail/&U,BTFw-/&ZeVnLIqe-" },
	/* not printable: encoded, never direct */
	{ "\t", "&AAk-" },
	{ "m\x7f""ll", "m&AH8-ll" },
	/* "&-" between runs keeps them two runs */
	{ "\xc3\xa0&\xc3\xa0", "&AOA-&-&AOA-" },
	{ "\t&\t", "&AAk-&-&AAk-" },
	{ "&\t&", "&-&AAk-&-" },
};

/* Refused by mutf7_decode with EINVAL. */
static const char *const bad_mutf7[] = {
	"&",                    /* unterminated shift */
	"&Jjo",
	"&AOA",
	"&-&",
	"&Jjo!",                /* '!' is not base64 */
	"&A*k-",
	"&&-",
	"&=-",
	"&U,BTFw-&ZeVnLIqe-",   /* two adjacent runs: must be one */
	"&AOA-&AOA-",
	"&AGE-",                /* a run encoding only printable ASCII ("a") */
	"&ACYAJg-",             /* "&&" */
	"&ACA-",                /* " " */
	"&AH4-",                /* "~" */
	"&AGEA4A-",             /* printable ASCII inside a run ("aà") */
	"&AOB-",                /* non-zero padding bits */
	"&AOD-",
	"&ZeVnLB-",
	"&AA-",                 /* partial UTF-16 unit */
	"&A-",
	"&AOAA-",               /* a needless extra character */
	"&AOAA4-",
	"&2D0-",                /* lone high surrogate */
	"&3gA-",                /* lone low surrogate */
	"&2D0A4A-",             /* high surrogate followed by a non-surrogate */
	"&3gDYPQ-",             /* pair in the wrong order */
	"&2D3YPQ-",             /* two high surrogates */
	"&AAA-",                /* U+0000 */
	"Localit\xc3\xa0",      /* raw 8-bit */
	"\xff",
	"a\tb",                 /* raw control characters */
	"a\nb",
	"a\x7f",                /* raw DEL */
};

/* Refused by mutf7_encode with EINVAL. */
static const char *const bad_utf8[] = {
	"p\xe4\xe4",            /* Latin-1, not UTF-8 */
	"\x80",                 /* lone continuation byte */
	"\xc3",                 /* truncated */
	"a\xc3",
	"\xe6\x97",
	"\xf0\x9f\x98",
	"\xc3\x28",             /* bad continuation */
	"\xc0\xaf",             /* overlongs */
	"\xc1\xbf",
	"\xe0\x80\xaf",
	"\xe0\x9f\xbf",
	"\xf0\x80\x80\xaf",
	"\xf0\x8f\xbf\xbf",
	"\xed\xa0\x80",         /* UTF-16 surrogates written as UTF-8 */
	"\xed\xbf\xbf",
	"\xed\xa0\xbd\xed\xb8\x80",
	"\xf4\x90\x80\x80",     /* > U+10FFFF */
	"\xf5\x80\x80\x80",
	"\xf8\x88\x80\x80\x80", /* five- and six-byte forms */
	"\xfc\x84\x80\x80\x80\x80",
	"\xfe",
	"\xff",
};

static void test_encode(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(pairs); i++) {
		char *s = mutf7_encode(pairs[i].utf8);

		assert_non_null(s);
		assert_string_equal(s, pairs[i].mutf7);
		free(s);
	}
}

static void test_decode(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(pairs); i++) {
		char *s = mutf7_decode(pairs[i].mutf7);

		assert_non_null(s);
		assert_string_equal(s, pairs[i].utf8);
		free(s);
	}
}

static void test_decode_invalid(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(bad_mutf7); i++) {
		char *s;

		errno = 0;
		s = mutf7_decode(bad_mutf7[i]);
		if (s != NULL)
			fail_msg("decoded invalid \"%s\" to \"%s\"", bad_mutf7[i], s);
		assert_int_equal(errno, EINVAL);
	}
}

static void test_encode_invalid(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(bad_utf8); i++) {
		char *s;

		errno = 0;
		s = mutf7_encode(bad_utf8[i]);
		if (s != NULL)
			fail_msg("encoded invalid UTF-8 #%zu to \"%s\"", i, s);
		assert_int_equal(errno, EINVAL);
	}
}

static void test_null(void **state)
{
	(void)state;
	errno = 0;
	assert_null(mutf7_decode(NULL));
	assert_int_equal(errno, EINVAL);
	errno = 0;
	assert_null(mutf7_encode(NULL));
	assert_int_equal(errno, EINVAL);
}

/* Every printable ASCII character stands for itself, '&' excepted. */
static void test_printable_ascii(void **state)
{
	char in[2] = { 0, 0 };

	(void)state;
	for (int c = 0x20; c <= 0x7e; c++) {
		char *e, *d;

		in[0] = (char)c;
		e = mutf7_encode(in);
		assert_non_null(e);
		assert_string_equal(e, c == '&' ? "&-" : in);
		d = mutf7_decode(e);
		assert_non_null(d);
		assert_string_equal(d, in);
		free(e);
		free(d);
	}
}

/* xorshift32: a fixed seed keeps failures reproducible. */
static uint32_t rnd_next(uint32_t *s)
{
	uint32_t x = *s;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	*s = x;
	return x;
}

/* A code point from a mix of classes, so that runs start, end, merge and
 * carry surrogate pairs at every bit offset. */
static uint32_t rnd_code_point(uint32_t *s)
{
	uint32_t cp;

	switch (rnd_next(s) % 6) {
	case 0:
		return 0x20 + rnd_next(s) % 0x5f;               /* printable ASCII */
	case 1:
		return 1 + rnd_next(s) % 0x1f;                  /* control */
	case 2:
		return 0x80 + rnd_next(s) % 0x780;              /* two UTF-8 bytes */
	case 3:
		do
			cp = 0x800 + rnd_next(s) % (0x10000 - 0x800);
		while (cp >= 0xd800 && cp <= 0xdfff);
		return cp;
	case 4:
		return 0x10000 + rnd_next(s) % 0x100000;        /* astral */
	default:
		return "&-/."[rnd_next(s) % 4];
	}
}

static size_t put_utf8(char *o, uint32_t cp)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xc0 | (cp >> 6));
		o[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xe0 | (cp >> 12));
		o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		o[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (char)(0xf0 | (cp >> 18));
	o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	o[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

static void test_round_trip_random(void **state)
{
	uint32_t seed = 0x7a5c0de1u;
	char buf[4 * 40 + 1];

	(void)state;
	for (int n = 0; n < 5000; n++) {
		size_t len = 0, count = rnd_next(&seed) % 40;
		char *e, *d, *e2;

		for (size_t i = 0; i < count; i++)
			len += put_utf8(buf + len, rnd_code_point(&seed));
		buf[len] = '\0';

		e = mutf7_encode(buf);
		assert_non_null(e);
		for (const char *p = e; *p != '\0'; p++)
			assert_true(*p >= 0x20 && *p <= 0x7e);
		d = mutf7_decode(e);
		if (d == NULL)
			fail_msg("own encoding \"%s\" refused", e);
		assert_string_equal(d, buf);
		e2 = mutf7_encode(d);
		assert_non_null(e2);
		assert_string_equal(e2, e);
		free(e);
		free(d);
		free(e2);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_encode),
		cmocka_unit_test(test_decode),
		cmocka_unit_test(test_decode_invalid),
		cmocka_unit_test(test_encode_invalid),
		cmocka_unit_test(test_null),
		cmocka_unit_test(test_printable_ascii),
		cmocka_unit_test(test_round_trip_random),
	};

	return cmocka_run_group_tests_name("mutf7", tests, NULL, NULL);
}
