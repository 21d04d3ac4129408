/* Units of msgsig (messages a destination stored altered) and of the
 * fingerprint's bucket: what each key tolerates, and what it never does. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fingerprint.h"
#include "msgsig.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* The keys of msg fed in chunks of `chunk` bytes (0: all at once). */
static struct msgsig sig_of(const char *msg, size_t chunk)
{
	struct msgsig_ctx *c = msgsig_new();
	struct msgsig out;
	size_t len = strlen(msg), off = 0;

	assert_non_null(c);
	if (chunk == 0)
		chunk = len ? len : 1;
	while (off < len) {
		size_t n = len - off < chunk ? len - off : chunk;

		msgsig_update(c, msg + off, n);
		off += n;
	}
	msgsig_final(c, &out);
	return out;
}

static bool strict_eq(const char *a, const char *b)
{
	struct msgsig x = sig_of(a, 0), y = sig_of(b, 0);

	return memcmp(x.strict, y.strict, FP_LEN) == 0;
}

static bool loose_eq(const char *a, const char *b)
{
	struct msgsig x = sig_of(a, 0), y = sig_of(b, 0);

	return memcmp(x.loose, y.loose, FP_LEN) == 0;
}

#define BASE "From: Mario <m@x.it>\r\nSubject: Caff\xc3\xa8 e t\xc3\xa8\r\n" \
	     "Date: Mon, 1 Jan 2024 10:00:00 +0100\r\n\r\nbody line 1\r\nline 2\r\n"

/* What a destination does to a message: each is the same message. */
static void test_tolerated(void **state)
{
	static const char *const same[] = {
		/* Cyrus munge8bit: one X per 8-bit byte */
		"From: Mario <m@x.it>\r\nSubject: CaffXX e tXX\r\n"
		"Date: Mon, 1 Jan 2024 10:00:00 +0100\r\n\r\nbody line 1\r\nline 2\r\n",
		/* ... or one per character */
		"From: Mario <m@x.it>\r\nSubject: CaffX e tX\r\n"
		"Date: Mon, 1 Jan 2024 10:00:00 +0100\r\n\r\nbody line 1\r\nline 2\r\n",
		/* bare LF everywhere */
		"From: Mario <m@x.it>\nSubject: Caff\xc3\xa8 e t\xc3\xa8\n"
		"Date: Mon, 1 Jan 2024 10:00:00 +0100\n\nbody line 1\nline 2\n",
		/* refolded, other white space */
		"From:   Mario\r\n\t<m@x.it>\r\nSubject: Caff\xc3\xa8  e t\xc3\xa8 \r\n"
		"Date: Mon, 1 Jan 2024 10:00:00 +0100\r\n\r\nbody line 1\r\nline 2\r\n",
		/* field names in another case */
		"FROM: Mario <m@x.it>\r\nsubject: Caff\xc3\xa8 e t\xc3\xa8\r\n"
		"DATE: Mon, 1 Jan 2024 10:00:00 +0100\r\n\r\nbody line 1\r\nline 2\r\n",
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(same); i++) {
		if (!strict_eq(BASE, same[i]))
			fail_msg("strict key: variant %zu differs", i);
		if (!loose_eq(BASE, same[i]))
			fail_msg("loose key: variant %zu differs", i);
	}
}

/* Fields a server adds or drops: only the loose key tolerates them. */
static void test_server_fields(void **state)
{
	static const char *const added[] = {
		"Return-Path: <m@x.it>\r\n" BASE,
		"Received: from a by b; Mon, 1 Jan 2024\r\n\tmore\r\n" BASE,
		"X-Spam-Score: 0.1\r\nStatus: RO\r\nX-UID: 7\r\n" BASE,
		"From: Mario <m@x.it>\r\nX-Cyrus-Session: 1\r\nSubject: Caff\xc3\xa8 e t\xc3\xa8\r\n"
		"Date: Mon, 1 Jan 2024 10:00:00 +0100\r\n\r\nbody line 1\r\nline 2\r\n",
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(added); i++) {
		assert_false(strict_eq(BASE, added[i]));
		if (!loose_eq(BASE, added[i]))
			fail_msg("loose key: added field %zu not tolerated", i);
	}
	assert_true(msgsig_server_field("RECEIVED", 8));
	assert_true(msgsig_server_field("x-spam-flag", 11));
	assert_false(msgsig_server_field("x-spam-", 7));
	assert_false(msgsig_server_field("X-Priority", 10));
	assert_false(msgsig_server_field("Subject", 7));
}

/* Different messages stay different under both keys. */
static void test_different(void **state)
{
	static const char *const other[] = {
		/* a body byte */
		"From: Mario <m@x.it>\r\nSubject: Caff\xc3\xa8 e t\xc3\xa8\r\n"
		"Date: Mon, 1 Jan 2024 10:00:00 +0100\r\n\r\nbody line 1\r\nline 3\r\n",
		/* a line break in the body moved */
		"From: Mario <m@x.it>\r\nSubject: Caff\xc3\xa8 e t\xc3\xa8\r\n"
		"Date: Mon, 1 Jan 2024 10:00:00 +0100\r\n\r\nbody line\r\n1 line 2\r\n",
		/* body white space is content */
		"From: Mario <m@x.it>\r\nSubject: Caff\xc3\xa8 e t\xc3\xa8\r\n"
		"Date: Mon, 1 Jan 2024 10:00:00 +0100\r\n\r\nbody  line 1\r\nline 2\r\n",
		/* an ASCII header byte */
		"From: Mario <m@x.it>\r\nSubject: Caffe e t\xc3\xa8\r\n"
		"Date: Mon, 1 Jan 2024 10:00:00 +0100\r\n\r\nbody line 1\r\nline 2\r\n",
		/* another field that is not a server's */
		"X-Priority: 1\r\n" BASE,
		/* fields in another order */
		"Subject: Caff\xc3\xa8 e t\xc3\xa8\r\nFrom: Mario <m@x.it>\r\n"
		"Date: Mon, 1 Jan 2024 10:00:00 +0100\r\n\r\nbody line 1\r\nline 2\r\n",
		/* a header line moved into the body */
		"From: Mario <m@x.it>\r\nSubject: Caff\xc3\xa8 e t\xc3\xa8\r\n\r\n"
		"Date: Mon, 1 Jan 2024 10:00:00 +0100\r\nbody line 1\r\nline 2\r\n",
		/* a lone CR in the body is not a line end */
		"From: Mario <m@x.it>\r\nSubject: Caff\xc3\xa8 e t\xc3\xa8\r\n"
		"Date: Mon, 1 Jan 2024 10:00:00 +0100\r\n\r\nbody line 1\rline 2\r\n",
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(other); i++) {
		if (strict_eq(BASE, other[i]))
			fail_msg("strict key: different message %zu taken for the same", i);
		if (loose_eq(BASE, other[i]))
			fail_msg("loose key: different message %zu taken for the same", i);
	}
}

/* Any chunking, down to one byte at a time, gives the same keys. */
static void test_chunking(void **state)
{
	static const char *const msgs[] = {
		BASE, "Received: x\r\n" BASE, "no header at all", "", "A: b\r\n", "\r\n\r\n\r",
		"From: a\r\n folded\r\n\tagain\r\n\r\nx\r\r\n\r",
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(msgs); i++) {
		struct msgsig whole = sig_of(msgs[i], 0);

		for (size_t chunk = 1; chunk < 8; chunk++) {
			struct msgsig part = sig_of(msgs[i], chunk);

			assert_memory_equal(whole.strict, part.strict, FP_LEN);
			assert_memory_equal(whole.loose, part.loose, FP_LEN);
		}
	}
}

/* The bucket: Date, From and Subject only, 8-bit tolerant, no size. */
static void test_bucket(void **state)
{
	static const char h1[] = "Message-ID: <1@x>\r\nDate: Mon, 1 Jan 2024\r\n"
				 "From: M <m@x.it>\r\nSubject: Caff\xc3\xa8\r\n\r\n";
	static const char h2[] = "Message-ID: <2@x>\r\nDate: Mon, 1 Jan 2024\r\n"
				 "From: M <m@x.it>\r\nSubject: CaffXX\r\n\r\n";
	static const char h3[] = "Date: Mon, 1 Jan 2024\r\nFrom: M <m@x.it>\r\n"
				 "Subject: Caffe\r\n\r\n";
	unsigned char a[FP_LEN], b[FP_LEN], c[FP_LEN], f1[FP_LEN], f2[FP_LEN];

	(void)state;
	fp_bucket(h1, strlen(h1), a);
	fp_bucket(h2, strlen(h2), b);
	fp_bucket(h3, strlen(h3), c);
	assert_memory_equal(a, b, FP_LEN);
	assert_memory_not_equal(a, c, FP_LEN);
	/* the fingerprint itself stays exact */
	fp_compute(h1, strlen(h1), 10, f1);
	fp_compute(h2, strlen(h2), 10, f2);
	assert_memory_not_equal(f1, f2, FP_LEN);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tolerated),
		cmocka_unit_test(test_server_fields),
		cmocka_unit_test(test_different),
		cmocka_unit_test(test_chunking),
		cmocka_unit_test(test_bucket),
	};

	return cmocka_run_group_tests_name("msgsig", tests, NULL, NULL);
}
