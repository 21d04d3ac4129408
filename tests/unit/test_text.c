/* Units of the text module: escaping of control bytes and invalid UTF-8,
 * bounded output, redaction of passwords in every form they travel in. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "log.h"
#include "report.h"
#include "text.h"

static const char *clean_n(const char *src, size_t len, const struct text_secrets *ts)
{
	static char buf[4096];

	text_clean(buf, sizeof(buf), src, len, ts);
	assert_true(text_is_clean(buf, strlen(buf)));
	return buf;
}

static const char *clean(const char *src, const struct text_secrets *ts)
{
	return clean_n(src, strlen(src), ts);
}

static void b64(const unsigned char *in, size_t n, char *out)
{
	static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t i, o = 0;

	for (i = 0; i + 2 < n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];

		out[o++] = a[v >> 18];
		out[o++] = a[(v >> 12) & 63];
		out[o++] = a[(v >> 6) & 63];
		out[o++] = a[v & 63];
	}
	if (n - i == 1) {
		uint32_t v = (uint32_t)in[i] << 16;

		out[o++] = a[v >> 18];
		out[o++] = a[(v >> 12) & 63];
		out[o++] = '=';
		out[o++] = '=';
	} else if (n - i == 2) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;

		out[o++] = a[v >> 18];
		out[o++] = a[(v >> 12) & 63];
		out[o++] = a[(v >> 6) & 63];
		out[o++] = '=';
	}
	out[o] = '\0';
}

/* base64 of authzid NUL authcid NUL password */
static void plain_blob(const char *authz, const char *authc, const char *pw, char *out)
{
	unsigned char blob[512];
	size_t n = 0;

	memcpy(blob + n, authz, strlen(authz));
	n += strlen(authz);
	blob[n++] = '\0';
	memcpy(blob + n, authc, strlen(authc));
	n += strlen(authc);
	blob[n++] = '\0';
	memcpy(blob + n, pw, strlen(pw));
	n += strlen(pw);
	b64(blob, n, out);
}

static void test_clean_text_unchanged(void **state)
{
	static const char *const same[] = {
		"", "plain ASCII: NO [AUTHENTICATIONFAILED] Authentication failed.",
		"caff\xc3\xa8 \xc3\xbc \xe2\x82\xac \xf0\x9d\x84\x9e \xef\xbf\xbf \xc2\xa0",
		"backslashes stay: \\Seen \\x1B \\\\",
		"\xed\x9f\xbf \xee\x80\x80 \xf4\x8f\xbf\xbf",   /* U+D7FF, U+E000, U+10FFFF */
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(same) / sizeof(same[0]); i++) {
		assert_string_equal(clean(same[i], NULL), same[i]);
		assert_true(text_is_clean(same[i], strlen(same[i])));
	}
}

static void test_clean_controls(void **state)
{
	(void)state;
	assert_string_equal(clean("\x1b[2J\x1b]0;pwned\x07 red", NULL),
			    "\\x1B[2J\\x1B]0;pwned\\x07 red");
	assert_string_equal(clean("tab\there\r\nnext", NULL), "tab\\x09here\\x0D\\x0Anext");
	assert_string_equal(clean("del\x7f", NULL), "del\\x7F");
	assert_string_equal(clean_n("nul\0byte", 8, NULL), "nul\\x00byte");
	/* C1 controls, as UTF-8 (U+009B CSI) and as a bare 8-bit byte */
	assert_string_equal(clean("\xc2\x9b" "2J \xc2\x85", NULL), "\\xC2\\x9B2J \\xC2\\x85");
	assert_string_equal(clean("\x9b" "2J", NULL), "\\x9B2J");
	assert_false(text_is_clean("\x1b", 1));
	assert_false(text_is_clean("\xc2\x80", 2));
	assert_true(text_is_clean("\xc2\xa0", 2));
}

static void test_clean_invalid_utf8(void **state)
{
	(void)state;
	assert_string_equal(clean("\xff\xfe", NULL), "\\xFF\\xFE");
	assert_string_equal(clean("stray \x80 cont", NULL), "stray \\x80 cont");
	/* overlong forms */
	assert_string_equal(clean("\xc0\xaf", NULL), "\\xC0\\xAF");
	assert_string_equal(clean("\xc1\xbf", NULL), "\\xC1\\xBF");
	assert_string_equal(clean("\xe0\x80\xaf", NULL), "\\xE0\\x80\\xAF");
	assert_string_equal(clean("\xf0\x80\x80\xaf", NULL), "\\xF0\\x80\\x80\\xAF");
	/* surrogates, above U+10FFFF, F5-FF */
	assert_string_equal(clean("\xed\xa0\x80", NULL), "\\xED\\xA0\\x80");
	assert_string_equal(clean("\xed\xbf\xbf", NULL), "\\xED\\xBF\\xBF");
	assert_string_equal(clean("\xf4\x90\x80\x80", NULL), "\\xF4\\x90\\x80\\x80");
	assert_string_equal(clean("\xf5\x80\x80\x80", NULL), "\\xF5\\x80\\x80\\x80");
	/* sequences cut short, at the end and in the middle; a good character
	 * right after a bad lead byte is kept */
	assert_string_equal(clean("abc\xe2\x82", NULL), "abc\\xE2\\x82");
	assert_string_equal(clean("abc\xf0\x9d\x84", NULL), "abc\\xF0\\x9D\\x84");
	assert_string_equal(clean("\xe2\x82x", NULL), "\\xE2\\x82x");
	assert_string_equal(clean("\xe2\xc3\xa8", NULL), "\\xE2\xc3\xa8");
	assert_string_equal(clean("\xc3", NULL), "\\xC3");
	/* idempotent */
	{
		char once[256], twice[256];

		text_clean_str(once, sizeof(once), "\x1b[0m\xff\xc3\xa8\xe2\x82", NULL);
		text_clean_str(twice, sizeof(twice), once, NULL);
		assert_string_equal(once, twice);
	}
}

static void test_clean_bounded(void **state)
{
	char buf[8];
	size_t n;

	(void)state;
	/* never cut inside an escape or a UTF-8 character */
	n = text_clean(buf, sizeof(buf), "abcd\x1b", 5, NULL);
	assert_int_equal(n, 4);
	assert_string_equal(buf, "abcd");
	n = text_clean(buf, sizeof(buf), "abcdef\xe2\x82\xac", 9, NULL);
	assert_string_equal(buf, "abcdef");
	n = text_clean(buf, sizeof(buf), "abcd\xe2\x82\xac", 7, NULL);
	assert_string_equal(buf, "abcd\xe2\x82\xac");
	assert_int_equal(n, 7);
	n = text_clean(buf, 1, "abc", 3, NULL);
	assert_int_equal(n, 0);
	assert_string_equal(buf, "");
	/* in place, into the same bounded buffer */
	{
		char msg[16] = "ab\x1b[2J\xff";

		text_clean_inplace(msg, sizeof(msg), NULL);
		assert_string_equal(msg, "ab\\x1B[2J\\xFF");
		strcpy(msg, "\x1b\x1b\x1b\x1b\x1b");
		text_clean_inplace(msg, sizeof(msg), NULL);
		assert_string_equal(msg, "\\x1B\\x1B\\x1B");
	}
}

static void test_redact_forms(void **state)
{
	struct text_secrets ts = { 0 };
	const char *pw = "Se\"cr\\et 9";
	char in[1024], blob[512];

	(void)state;
	assert_int_equal(text_secrets_add(&ts, pw), 0);
	/* as is */
	snprintf(in, sizeof(in), "NO you sent: %s.", pw);
	assert_string_equal(clean(in, &ts), "NO you sent: [password].");
	/* in a LOGIN line, IMAP-quoted */
	assert_string_equal(clean("NO you sent: a1 LOGIN mario \"Se\\\"cr\\\\et 9\"", &ts),
			    "NO you sent: a1 LOGIN mario \"[password]\"");
	/* SASL PLAIN blobs: with and without authzid, an admin's authcid */
	plain_blob("", "mario@example.test", pw, blob);
	snprintf(in, sizeof(in), "NO you sent: %s", blob);
	assert_string_equal(clean(in, &ts), "NO you sent: [password]");
	plain_blob("mario@example.test", "admin", pw, blob);
	snprintf(in, sizeof(in), "NO [AUTHENTICATIONFAILED] got %s (bad)", blob);
	assert_string_equal(clean(in, &ts), "NO [AUTHENTICATIONFAILED] got [password] (bad)");
	/* misaligned: the token glued to a word */
	plain_blob("", "u", pw, blob);
	snprintf(in, sizeof(in), "NO sentX%s", blob);
	assert_string_equal(clean(in, &ts), "NO [password]");
	/* the base64 of the password alone (AUTHENTICATE LOGIN) */
	b64((const unsigned char *)pw, strlen(pw), blob);
	snprintf(in, sizeof(in), "NO %s", blob);
	assert_string_equal(clean(in, &ts), "NO [password]");
	/* a base64 run that is something else stays */
	assert_string_equal(clean("NO AGZvbwBiYXIAYmF6 and dGVzdA==", &ts),
			    "NO AGZvbwBiYXIAYmF6 and dGVzdA==");
	text_secrets_wipe(&ts);
	assert_int_equal(ts.n, 0);
	assert_int_equal(ts.n_pw, 0);
}

static void test_redact_twice_overlap(void **state)
{
	struct text_secrets ts = { 0 };

	(void)state;
	assert_int_equal(text_secrets_add(&ts, "hunter2"), 0);
	assert_string_equal(clean("hunter2 and again hunter2!", &ts),
			    "[password] and again [password]!");
	assert_string_equal(clean("hunter2hunter2", &ts), "[password]");
	text_secrets_wipe(&ts);

	/* occurrences that overlap: no piece of either may stay */
	assert_int_equal(text_secrets_add(&ts, "abab"), 0);
	assert_string_equal(clean("x ababab y", &ts), "x [password] y");
	assert_string_equal(clean("x abababab y", &ts), "x [password] y");
	text_secrets_wipe(&ts);

	/* two passwords that overlap each other */
	assert_int_equal(text_secrets_add(&ts, "pass-one"), 0);
	assert_int_equal(text_secrets_add(&ts, "one-two"), 0);
	assert_string_equal(clean("[pass-one-two]", &ts), "[[password]]");
	text_secrets_wipe(&ts);
}

static void test_redact_empty_and_limits(void **state)
{
	struct text_secrets ts = { 0 };
	char pw[16];
	int i;

	(void)state;
	/* an empty password redacts nothing */
	assert_int_equal(text_secrets_add(&ts, ""), 0);
	assert_int_equal(text_secrets_add(&ts, NULL), 0);
	assert_int_equal(ts.n, 0);
	assert_string_equal(clean("NO nothing to hide", &ts), "NO nothing to hide");
	/* the same password twice is held once */
	assert_int_equal(text_secrets_add(&ts, "dup-pw"), 0);
	assert_int_equal(text_secrets_add(&ts, "dup-pw"), 0);
	assert_int_equal(ts.n_pw, 1);
	for (i = 1; i < TEXT_SECRETS_MAX; i++) {
		snprintf(pw, sizeof(pw), "pw-%d", i);
		assert_int_equal(text_secrets_add(&ts, pw), 0);
	}
	assert_int_equal(text_secrets_add(&ts, "one-too-many"), -1);
	assert_string_equal(clean("dup-pw pw-1 pw-3", &ts), "[password] [password] [password]");
	text_secrets_wipe(&ts);
}

static void test_redact_cut_short(void **state)
{
	struct text_secrets ts = { 0 };
	char in[256], blob[256], out[64];
	size_t i;

	(void)state;
	assert_int_equal(text_secrets_add(&ts, "Sekr3t-Pw\"x"), 0);
	/* the server cut its echo inside the password: 4+ bytes at the end go */
	assert_string_equal(clean("you sent: LOGIN u Sekr3t-", &ts), "you sent: LOGIN u [password]");
	assert_string_equal(clean("you sent: LOGIN u \"Sekr3t-Pw\\\"", &ts),
			    "you sent: LOGIN u \"[password]");
	/* fewer than 4 bytes stay (a price of not redacting every short word) */
	assert_string_equal(clean("you sent: Sek", &ts), "you sent: Sek");
	/* a base64 token cut inside the password */
	plain_blob("", "mario", "Sekr3t-Pw\"x", blob);
	blob[strlen(blob) - 4] = '\0';
	snprintf(in, sizeof(in), "you sent: %s (truncated)", blob);
	assert_string_equal(clean(in, &ts), "you sent: [password] (truncated)");
	/* our own cut: redaction looks at the whole source first, so no prefix
	 * of the password is left wherever the output ends */
	for (i = 1; i < sizeof(out); i++) {
		text_clean(out, i, "0123456789 NO you sent: Sekr3t-Pw\"x then more text", 50, &ts);
		assert_null(strstr(out, "Sekr"));
		assert_true(text_is_clean(out, strlen(out)));
	}
	text_secrets_wipe(&ts);
}

static void test_redact_escaped_forms(void **state)
{
	struct text_secrets ts = { 0 };
	char once[256], twice[256];

	(void)state;
	/* a password with a control byte and invalid UTF-8: found raw, and in
	 * text that was cleaned before (a sink cleaning again) */
	assert_int_equal(text_secrets_add(&ts, "p\x01w\xff-longer"), 0);
	assert_string_equal(clean("NO p\x01w\xff-longer", &ts), "NO [password]");
	text_clean_str(once, sizeof(once), "NO p\x01w\xff-longer", NULL);
	assert_string_equal(once, "NO p\\x01w\\xFF-longer");
	text_clean_str(twice, sizeof(twice), once, &ts);
	assert_string_equal(twice, "NO [password]");
	/* a control byte next to a password is escaped, the password goes */
	assert_string_equal(clean("\x1b[2Jp\x01w\xff-longer\x1b", &ts), "\\x1B[2J[password]\\x1B");
	text_secrets_wipe(&ts);
	/* a password that begins inside a UTF-8 character (found by fuzzing):
	 * the character's first byte is escaped, the password goes */
	assert_int_equal(text_secrets_add(&ts, "\xa9-secret"), 0);
	assert_string_equal(clean("caf\xc3\xa9-secret caf\xc3\xa9", &ts), "caf\\xC3[password] caf\xc3\xa9");
	text_secrets_wipe(&ts);
}

static void test_clean_dup_and_random(void **state)
{
	struct text_secrets ts = { 0 };
	unsigned char raw[300];
	char out[1400], *d;
	unsigned seed = 12345;
	int round;
	size_t i;

	(void)state;
	d = text_clean_dup("\x1b\x1b\x1b", NULL);
	assert_non_null(d);
	assert_string_equal(d, "\\x1B\\x1B\\x1B");
	free(d);
	assert_int_equal(text_secrets_add(&ts, "k"), 0);
	d = text_clean_dup("kkk k", &ts);   /* the worst growth: a one-byte password */
	assert_string_equal(d, "[password] [password]");
	free(d);
	text_secrets_wipe(&ts);

	/* random bytes: always clean, never the password, never longer than room */
	assert_int_equal(text_secrets_add(&ts, "Zq9\"x"), 0);
	for (round = 0; round < 20000; round++) {
		size_t n = (size_t)(rand_r(&seed) % sizeof(raw));

		for (i = 0; i < n; i++) {
			unsigned r = (unsigned)rand_r(&seed);

			raw[i] = r % 3 == 0 ? (unsigned char)"Zq9\"x\\\x1b"[(r >> 8) % 7] : (unsigned char)(r >> 4);
		}
		if (n > 10 && round % 3 == 0)
			memcpy(raw + n / 2, "Zq9\"x", 5);
		text_clean(out, (size_t)(rand_r(&seed) % sizeof(out)) + 1, (const char *)raw, n, &ts);
		assert_true(text_is_clean(out, strlen(out)));
		assert_null(strstr(out, "Zq9\"x"));
		assert_null(strstr(out, "Zq9\\\"x"));
	}
	text_secrets_wipe(&ts);
}

/* The sinks clean what they are given, whoever forgot to. */
static void test_sinks(void **state)
{
	char *buf = NULL, *dump;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	json_t *j;

	(void)state;
	assert_non_null(f);
	log_set_stream(f);
	log_msg(LOG_ERROR, "c1-\xc2\x9bx@example.test", "NO \x1b[2J\x1b]0;t\x07 \xff end");
	log_set_stream(NULL);
	fclose(f);
	assert_non_null(strstr(buf, "[c1-\\xC2\\x9Bx@example.test] NO \\x1B[2J\\x1B]0;t\\x07 \\xFF end\n"));
	assert_null(strchr(buf, '\x1b'));
	assert_true(text_is_clean(buf, strlen(buf) - 1));
	free(buf);

	j = report_json_text("m\xe0rio \x1b[0m");
	assert_non_null(j);
	assert_string_equal(json_string_value(j), "m\\xE0rio \\x1B[0m");
	json_decref(j);
	j = report_json_text(NULL);
	assert_true(json_is_null(j));
	json_decref(j);
	/* a failed step is seen, not a key silently lost */
	{
		bool ok = true;
		json_t *o = json_object();

		report_json_set(o, "email", report_json_text("esc-m\xe0rio@example.test"), &ok);
		assert_true(ok);
		report_json_set(o, "bad", NULL, &ok);
		assert_false(ok);
		dump = json_dumps(o, JSON_COMPACT);
		assert_string_equal(dump, "{\"email\":\"esc-m\\\\xE0rio@example.test\"}");
		free(dump);
		json_decref(o);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_clean_text_unchanged),
		cmocka_unit_test(test_clean_controls),
		cmocka_unit_test(test_clean_invalid_utf8),
		cmocka_unit_test(test_clean_bounded),
		cmocka_unit_test(test_redact_forms),
		cmocka_unit_test(test_redact_twice_overlap),
		cmocka_unit_test(test_redact_empty_and_limits),
		cmocka_unit_test(test_redact_cut_short),
		cmocka_unit_test(test_redact_escaped_forms),
		cmocka_unit_test(test_clean_dup_and_random),
		cmocka_unit_test(test_sinks),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
