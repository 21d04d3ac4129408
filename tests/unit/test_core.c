/* Units of the small core modules: flags, fingerprint, error
 * classification, UID sets, stage, option parsing. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "budget.h"
#include "cli.h"
#include "fingerprint.h"
#include "flags.h"
#include "imap.h"
#include "meta.h"
#include "nul.h"
#include "stage.h"
#include "sync.h"
#include "throttle.h"
#include <time.h>

static void test_flags_canon(void **state)
{
	static const struct { const char *in, *out; } cases[] = {
		{ "", "" },
		{ NULL, "" },
		{ "\\Seen", "\\Seen" },
		{ "\\seen \\FLAGGED", "\\Seen \\Flagged" },
		{ "\\Deleted \\Draft \\Flagged \\Answered \\Seen",
		  "\\Seen \\Answered \\Flagged \\Draft \\Deleted" },
		{ "\\Recent \\Seen", "\\Seen" },
		{ "$Label1 NonJunk $Forwarded \\Seen", "\\Seen $Forwarded $Label1 NonJunk" },
		{ "foo FOO Foo", "foo" },
		{ "  \\Seen   $x  ", "\\Seen $x" },
		{ "\\Unknown bad(kw ok", "ok" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *c = flags_canon(cases[i].in);

		assert_non_null(c);
		assert_string_equal(c, cases[i].out);
		free(c);
	}
	assert_true(flags_equal("", NULL));
	assert_false(flags_equal("\\Seen", ""));
}

static void fp_of(const char *hdr, uint32_t size, unsigned char out[FP_LEN])
{
	fp_compute(hdr, strlen(hdr), size, out);
}

static void test_fingerprint(void **state)
{
	unsigned char a[FP_LEN], b[FP_LEN];
	char hex[FP_HEX_LEN + 1];

	(void)state;
	/* Line endings, folding, white space runs and name case do not matter. */
	fp_of("Message-ID: <1@x>\r\nSubject: hello  world\r\n\r\n", 100, a);
	fp_of("message-id: <1@x>\nSubject: hello\r\n world\n\n", 100, b);
	assert_memory_equal(a, b, FP_LEN);
	/* The size does. */
	fp_of("Message-ID: <1@x>\r\nSubject: hello world\r\n\r\n", 101, b);
	assert_memory_not_equal(a, b, FP_LEN);
	/* The same Message-ID with another body (another MIME boundary). */
	fp_of("Message-ID: <1@x>\r\nContent-Type: multipart/mixed; boundary=\"a\"\r\n", 100, a);
	fp_of("Message-ID: <1@x>\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n", 100, b);
	assert_memory_not_equal(a, b, FP_LEN);
	/* No header fields at all: only the size. */
	fp_compute("", 0, 5, a);
	fp_compute("\r\n", 2, 5, b);
	assert_memory_equal(a, b, FP_LEN);
	/* Field names and values longer than any internal buffer (a hostile
	 * server's 511-byte name once overflowed the stack). */
	{
		static const size_t name_lens[] = { 510, 511, 512, 513, 1023, 1024, 5000 };
		size_t k;

		for (k = 0; k < sizeof(name_lens) / sizeof(name_lens[0]); k++) {
			size_t nl = name_lens[k], len = nl + 1 + 10000 + 2, j;
			char *h = malloc(len + 1);

			assert_non_null(h);
			memset(h, 'N', nl);
			h[nl] = ':';
			for (j = nl + 1; j < nl + 1 + 10000; j++)
				h[j] = (j % 7 == 0) ? ' ' : 'v';
			memcpy(h + nl + 1 + 10000, "\r\n", 3);
			fp_compute(h, len, 42, a);
			fp_compute(h, len, 42, b);
			assert_memory_equal(a, b, FP_LEN);
			free(h);
		}
	}
	/* Hex round trip. */
	fp_to_hex(a, hex);
	assert_int_equal(strlen(hex), FP_HEX_LEN);
	assert_int_equal(fp_from_hex(hex, b), 0);
	assert_memory_equal(a, b, FP_LEN);
	assert_int_equal(fp_from_hex("xyz", b), -1);
	assert_int_equal(fp_from_hex(NULL, b), -1);
}

static void test_classify(void **state)
{
	static const struct {
		const char *code, *text;
		enum tr_err_kind want;
	} cases[] = {
		{ "AUTHENTICATIONFAILED", "Authentication failed.", TR_ERR_AUTH },
		{ "LIMIT", "Maximum number of connections from user+IP exceeded", TR_ERR_WAIT },
		{ "UNAVAILABLE", "Try later", TR_ERR_WAIT },
		{ "", "Maximum number of connections from user+IP exceeded", TR_ERR_WAIT },
		{ "", "Too many connections for this user", TR_ERR_WAIT },
		{ "", "Login failed", TR_ERR_AUTH },
		{ "OVERQUOTA", "Quota exceeded", TR_ERR_MESSAGE },
		{ "TOOBIG", "Message too large", TR_ERR_MESSAGE },
		{ "PRIVACYREQUIRED", "TLS needed", TR_ERR_TLS },
		{ "EXPIRED", "Password expired", TR_ERR_AUTH },
		{ "", "Mailbox doesn't exist", TR_ERR_PROTOCOL },
		/* throttling, whatever the code (issue 15) */
		{ "THROTTLED", "Slow down", TR_ERR_WAIT },
		{ "", "Request is throttled. Suggested Backoff Time: 299961 milliseconds",
		  TR_ERR_WAIT },
		{ "OVERQUOTA", "Account exceeded command or bandwidth limits", TR_ERR_WAIT },
		{ "", "Session limit reached", TR_ERR_WAIT },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		enum tr_err_kind dflt = strcmp(cases[i].text, "Login failed") == 0 ? TR_ERR_AUTH
										   : TR_ERR_PROTOCOL;

		assert_int_equal(imap_classify_no(cases[i].code, cases[i].text, dflt), cases[i].want);
	}
}

static void test_backoff_hint(void **state)
{
	(void)state;
	/* a throttle, not a message too big (Dovecot's APPEND says [LIMIT]) */
	assert_true(imap_throttled("THROTTLED", "Slow down"));
	assert_true(imap_throttled("", "Request is throttled. Suggested Backoff Time: 5 milliseconds"));
	assert_true(imap_throttled("OVERQUOTA", "Account exceeded command or bandwidth limits"));
	assert_false(imap_throttled("LIMIT", "Mail size is larger than the maximum size allowed"));
	assert_false(imap_throttled("UNAVAILABLE", "Try later"));
	assert_int_equal(throttle_hint_ms("Request is throttled. Suggested Backoff Time: "
					      "299961 milliseconds"), 299961);
	assert_int_equal(throttle_hint_ms("suggested backoff time:2000 milliseconds"), 2000);
	assert_int_equal(throttle_hint_ms("Suggested Backoff Time: 3 seconds"), 3000);
	assert_int_equal(throttle_hint_ms("Suggested Backoff Time: 5s"), 5000);
	assert_int_equal(throttle_hint_ms("Suggested Backoff Time: 1500"), 1500);
	assert_int_equal(throttle_hint_ms("Suggested Backoff Time: soon"), 0);
	assert_int_equal(throttle_hint_ms("Suggested Backoff Time: -5 milliseconds"), 0);
	assert_int_equal(throttle_hint_ms("Suggested Backoff Time: 99999999999999999999999"), 0);
	assert_int_equal(throttle_hint_ms("Try again later"), 0);
	/* more than a day, in seconds (fuzz_throttle) */
	assert_int_equal(throttle_hint_ms("suggested backoff time:1111111s"), 0);
	assert_int_equal(throttle_hint_ms("Suggested Backoff Time: 86400 seconds"), 86400000);
	assert_int_equal(throttle_hint_ms(""), 0);
}

/* The byte counts of --src-max-bytes-per-second and friends: decimal units. */
static void test_throttle_parse(void **state)
{
	static const struct {
		const char *in;
		uint64_t want;         /* 0: refused */
	} cases[] = {
		{ "2000000", 2000000 }, { "2M", 2000000 }, { "2m", 2000000 }, { "500k", 500000 },
		{ "500K", 500000 }, { "1.5G", 1500000000 }, { "2500MB", 2500000000ULL },
		{ "1", 1 }, { "1000000000000000", 1000000000000000ULL }, { "0.5k", 500 },
		{ "0", 0 }, { "", 0 }, { "M", 0 }, { "-1", 0 }, { "2 M", 0 }, { "2MM", 0 },
		{ "2T", 0 }, { "1e6", 0 }, { "0x10", 0 }, { "inf", 0 }, { "nan", 0 },
		{ "1.2.3", 0 }, { ".5M", 0 }, { "0.0001", 0 }, { "1000000000000001", 0 },
		{ "2Mi", 0 }, { "2M ", 0 }, { "99999999999999999999999999", 0 },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t v = 12345;
		int r = throttle_parse_bytes(cases[i].in, &v);

		if (cases[i].want == 0) {
			if (r != -1)
				fail_msg("\"%s\" taken as %llu", cases[i].in, (unsigned long long)v);
			assert_int_equal(v, 12345);
		} else {
			if (r != 0)
				fail_msg("\"%s\" refused", cases[i].in);
			assert_int_equal(v, cases[i].want);
		}
	}
	assert_int_equal(throttle_parse_bytes(NULL, NULL), -1);
}

static double mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The bucket: no throttle without limits; a rate holds over a second
 * (bounded below by the schedule, not asserted above: a loaded machine
 * may be slower); a day budget cuts a batch to what fits and says when
 * it is new again. */
static void test_throttle_bucket(void **state)
{
	struct throttle_limits none = { 0, 0, 0 }, lim = { 1000000, 50, 0 }, day = { 0, 0, 1000 };
	struct throttle *t;
	struct tr_error err;
	uint64_t sizes[] = { 400, 400, 400 };
	size_t fit = 99;
	time_t resume = 0;
	double t0, dt;
	bool oom = true;
	int i;

	(void)state;
	assert_null(throttle_new("k", "the source", &none, &oom));
	assert_false(oom);
	assert_int_equal(throttle_bytes(NULL, 100), 0);
	assert_int_equal(throttle_message(NULL), 0);
	assert_int_equal(throttle_day_reserve(NULL, sizes, 3, &fit, &resume, &err), 0);
	assert_int_equal(fit, 3);

	t = throttle_new("k", "the source", &lim, &oom);
	assert_non_null(t);
	t0 = mono();
	/* 1.5 MB at 1 MB/s in 64 kB chunks: at least 1.5 s less the tolerance */
	for (i = 0; i < 24; i++)
		assert_int_equal(throttle_bytes(t, 65536), 0);
	dt = mono() - t0;
	assert_true(dt >= 1.5 - THROTTLE_BURST_S - 0.05);
	t0 = mono();
	for (i = 0; i < 30; i++)
		assert_int_equal(throttle_message(t), 0);
	dt = mono() - t0;
	assert_true(dt >= 0.6 - THROTTLE_BURST_S - 0.05);
	throttle_free(t);

	t = throttle_new("k", "the source", &day, &oom);
	assert_int_equal(throttle_day_reserve(t, sizes, 3, &fit, &resume, &err), 0);
	assert_int_equal(fit, 2);
	assert_int_equal(resume % 86400, 0);
	assert_true(resume > time(NULL) && resume <= time(NULL) + 86400);
	assert_int_equal(throttle_day_reserve(t, sizes, 3, &fit, &resume, &err), 0);
	assert_int_equal(fit, 0);
	throttle_free(t);
}

static void test_uidset(void **state)
{
	static const uint32_t u1[] = { 1, 2, 3, 5, 7, 8, 10 };
	static const uint32_t u2[] = { 42 };
	char *s;

	(void)state;
	s = meta_uidset(u1, 7);
	assert_string_equal(s, "1:3,5,7:8,10");
	free(s);
	s = meta_uidset(u2, 1);
	assert_string_equal(s, "42");
	free(s);
	s = meta_uidset(NULL, 0);
	assert_string_equal(s, "");
	free(s);
}

static void test_stage(void **state)
{
	struct stage sp;
	struct tr_error err;
	char big[10000], out[10000];
	const struct stage_msg *m;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(big); i++)
		big[i] = (char)('a' + i % 26);
	assert_int_equal(stage_init(&sp, NULL, 4096, &err), 0);
	/* A small message stays in memory. */
	stage_begin(&sp);
	assert_int_equal(stage_write(&sp, "hello ", 6, &err), 0);
	assert_int_equal(stage_write(&sp, "world", 5, &err), 0);
	assert_int_equal(stage_end(&sp, 7, &err), 0);
	/* A big one, written in chunks, moves to the file. */
	stage_begin(&sp);
	for (i = 0; i < sizeof(big); i += 1000)
		assert_int_equal(stage_write(&sp, big + i, 1000, &err), 0);
	assert_int_equal(stage_end(&sp, 9, &err), 0);
	/* An empty body is still a message. */
	assert_int_equal(stage_end(&sp, 11, &err), 0);

	m = stage_find(&sp, 7);
	assert_non_null(m);
	assert_non_null(m->mem);
	assert_int_equal(stage_read(&sp, m, 0, out, 11, &err), 0);
	assert_memory_equal(out, "hello world", 11);
	m = stage_find(&sp, 9);
	assert_non_null(m);
	assert_null(m->mem);
	assert_int_equal(m->len, sizeof(big));
	assert_int_equal(stage_read(&sp, m, 0, out, sizeof(big), &err), 0);
	assert_memory_equal(out, big, sizeof(big));
	assert_int_equal(stage_read(&sp, m, 9990, out, 10, &err), 0);
	assert_memory_equal(out, big + 9990, 10);
	assert_int_equal(stage_read(&sp, m, 9995, out, 10, &err), -1);
	m = stage_find(&sp, 11);
	assert_non_null(m);
	assert_int_equal(m->len, 0);
	assert_null(stage_find(&sp, 8));
	/* An aborted message leaves nothing. */
	stage_begin(&sp);
	assert_int_equal(stage_write(&sp, "x", 1, &err), 0);
	stage_abort(&sp);
	assert_int_equal(sp.n, 3);
	stage_reset(&sp);
	assert_int_equal(sp.n, 0);
	assert_null(stage_find(&sp, 7));
	stage_free(&sp);
}

/* Small messages stay in memory only up to STAGE_MEM_TOTAL per batch. */
static void test_stage_total(void **state)
{
	struct stage sp;
	struct tr_error err;
	static char msg[100000];
	size_t i, n = STAGE_MEM_TOTAL / sizeof(msg) + 5, in_mem = 0;
	char out[16];

	(void)state;
	memset(msg, 'm', sizeof(msg));
	assert_int_equal(stage_init(&sp, NULL, 128 * 1024, &err), 0);
	for (i = 0; i < n; i++) {
		msg[0] = (char)('A' + i % 26);
		stage_begin(&sp);
		assert_int_equal(stage_write(&sp, msg, sizeof(msg), &err), 0);
		assert_int_equal(stage_end(&sp, (uint32_t)i + 1, &err), 0);
	}
	for (i = 0; i < n; i++) {
		const struct stage_msg *m = stage_find(&sp, (uint32_t)i + 1);

		assert_non_null(m);
		in_mem += m->mem != NULL;
		assert_int_equal(stage_read(&sp, m, 0, out, 2, &err), 0);
		assert_int_equal(out[0], 'A' + i % 26);
		assert_int_equal(out[1], 'm');
	}
	assert_int_equal(in_mem, STAGE_MEM_TOTAL / sizeof(msg));
	assert_true(sp.mem_used <= STAGE_MEM_TOTAL);
	stage_reset(&sp);
	assert_int_equal(sp.mem_used, 0);
	stage_free(&sp);
}

static void test_parse_server(void **state)
{
	static const struct { const char *in, *host; int port; } ok[] = {
		{ "mail.example.com", "mail.example.com", 0 },
		{ "mail.example.com:993", "mail.example.com", 993 },
		{ "203.0.113.10:143", "203.0.113.10", 143 },
		{ "[2001:db8::1]:993", "2001:db8::1", 993 },
		{ "[::1]", "::1", 0 },
		{ "2001:db8::1", "2001:db8::1", 0 },
	};
	static const char *const bad[] = { "", ":993", "host:", "host:0", "host:65536",
					   "host:99x", "[::1", "[::1]x" };
	struct jobconf_server s;
	struct tr_error err;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		memset(&s, 0, sizeof(s));
		assert_int_equal(jobconf_parse_server(ok[i].in, &s, &err), 0);
		assert_string_equal(s.host, ok[i].host);
		assert_int_equal(s.port, ok[i].port);
		free(s.host);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&s, 0, sizeof(s));
		assert_int_equal(jobconf_parse_server(bad[i], &s, &err), -1);
		assert_int_equal(err.kind, TR_ERR_USAGE);
		free(s.host);
	}
}

static int parse(struct job_config *o, struct tr_error *err, ...)
{
	char *argv[64];
	int argc = 0, r;
	va_list ap;
	const char *a;

	argv[argc++] = (char *)"migrate";
	va_start(ap, err);
	while ((a = va_arg(ap, const char *)) != NULL)
		argv[argc++] = strdup(a);
	va_end(ap);
	argv[argc] = NULL;
	r = cli_parse_migrate(argc, argv, o, err);
	for (int i = 1; i < argc; i++)
		free(argv[i]);
	return r;
}

static void test_parse_migrate(void **state)
{
	struct job_config o;
	struct tr_error err;

	(void)state;
	/* Ports follow TLS modes and back. */
	assert_int_equal(parse(&o, &err, "--src", "203.0.113.10", "--src-tls-name", "imap.old.example",
			       "--dst", "mail.new.example:143", "--user", "mario.rossi@azienda.it",
			       "--state", "/tmp/x", NULL), 0);
	assert_string_equal(o.src.host, "203.0.113.10");
	assert_int_equal(o.src.port, 993);
	assert_int_equal(o.src.tls, JOBCONF_TLS_IMPLICIT);
	assert_string_equal(o.src.tls_name, "imap.old.example");
	assert_int_equal(o.dst.port, 143);
	assert_int_equal(o.dst.tls, JOBCONF_TLS_STARTTLS);
	assert_string_equal(o.src_user, "mario.rossi@azienda.it");
	assert_string_equal(o.dst_user, "mario.rossi@azienda.it");
	assert_int_equal(o.src_max_per_account, 4);
	jobconf_free(&o);

	assert_int_equal(parse(&o, &err, "--src", "a", "--src-tls", "starttls", "--dst", "b:10993",
			       "--dst-tls", "implicit", "--user", "u@x", "--src-user", "olduser",
			       "--folder", "INBOX", "--folder", "Archive*", "--exclude", "Trash",
			       "--map", "Posta inviata=Sent", "--keep-names", "--state", "/tmp/x",
			       "--src-max-per-account", "2", NULL), 0);
	assert_int_equal(o.src.port, 143);
	assert_int_equal(o.dst.port, 10993);
	assert_int_equal(o.dst.tls, JOBCONF_TLS_IMPLICIT);
	assert_string_equal(o.src_user, "olduser");
	assert_string_equal(o.dst_user, "u@x");
	assert_int_equal(o.n_folders, 2);
	assert_int_equal(o.n_excludes, 1);
	assert_int_equal(o.n_maps, 1);
	assert_string_equal(o.maps[0].from, "Posta inviata");
	assert_string_equal(o.maps[0].to, "Sent");
	assert_true(o.keep_names);
	assert_int_equal(o.src_max_per_account, 2);
	jobconf_free(&o);

	/* Plaintext to a remote host needs a second, explicit option. */
	assert_int_equal(parse(&o, &err, "--src", "203.0.113.10", "--src-tls", "none", "--dst", "b",
			       "--user", "u@x", "--state", "/tmp/x", NULL), -1);
	assert_int_equal(err.kind, TR_ERR_USAGE);
	jobconf_free(&o);
	assert_int_equal(parse(&o, &err, "--src", "203.0.113.10", "--src-tls", "none",
			       "--allow-plaintext", "--dst", "b", "--user", "u@x", "--state", "/tmp/x",
			       NULL), 0);
	jobconf_free(&o);
	assert_int_equal(parse(&o, &err, "--src", "127.0.0.1:11143", "--src-tls", "none", "--dst",
			       "b", "--user", "u@x", "--state", "/tmp/x", NULL), 0);
	jobconf_free(&o);

	/* Never a password on the command line. */
	assert_int_equal(parse(&o, &err, "--src", "a", "--dst", "b", "--user", "u@x",
			       "--password", "s3cret", NULL), -1);
	assert_int_equal(err.kind, TR_ERR_USAGE);
	assert_null(strstr(err.msg, "s3cret"));
	jobconf_free(&o);

	/* Required options and bad values. */
	assert_int_equal(parse(&o, &err, "--dst", "b", "--user", "u@x", NULL), -1);
	assert_non_null(strstr(err.msg, "--src"));
	jobconf_free(&o);
	assert_int_equal(parse(&o, &err, "--src", "a", "--dst", "b", NULL), -1);
	assert_non_null(strstr(err.msg, "--user"));
	jobconf_free(&o);
	assert_int_equal(parse(&o, &err, "--src", "a", "--dst", "b", "--user", "u", "--src-tls",
			       "maybe", NULL), -1);
	jobconf_free(&o);
	assert_int_equal(parse(&o, &err, "--src", "a", "--dst", "b", "--user", "u", "--map", "x",
			       NULL), -1);
	jobconf_free(&o);
	assert_int_equal(parse(&o, &err, "--src", "a", "--dst", "b", "--user", "u", "--timeout",
			       "-3", NULL), -1);
	jobconf_free(&o);
	assert_int_equal(parse(&o, &err, "--src", "a", "--dst", "b", "--user", "u", "--bogus",
			       NULL), -1);
	jobconf_free(&o);
	assert_int_equal(parse(&o, &err, "--src", "a", "--dst", "b", "--user", "u",
			       "--dst-admin-password-file", "f", NULL), -1);
	jobconf_free(&o);
}

/* ---- budget --------------------------------------------------------------- */

static enum budget_over feed_str(struct budget *b, const char *s)
{
	return budget_feed(b, s, strlen(s));
}

/* Fed in one piece, in pieces of three, or byte by byte: the same verdict
 * after the same byte. */
static size_t over_at(const struct budget_limits *lim, const char *data, size_t len, size_t step)
{
	struct budget b;
	size_t i;

	budget_init(&b);
	budget_arm(&b, lim);
	for (i = 0; i < len; i += step)
		if (budget_feed(&b, data + i, len - i < step ? len - i : step) != BUDGET_OK)
			return i;
	return len;
}

static void test_budget(void **state)
{
	const struct budget_limits reply = { 64u << 20, 0, false };
	const struct budget_limits meta = { 4096, 1u << 20, true };
	const struct budget_limits body = { 4096, 0, true };
	static const char stream[] =
		"* LIST () \"/\" INBOX\r\n* LIST () \"/\" {5}\r\na\r\nbc\r\n"
		"* OK [ALERT] {9 not a literal\r\n* 7 FETCH (UID 9 BODY[] {10}\r\n0123456789)\r\n"
		"1 OK done\r\n";
	struct budget b;
	char *big;
	char what[24];
	size_t i;

	(void)state;
	/* a literal over the bound is refused when announced, before any of it */
	budget_init(&b);
	budget_arm(&b, &reply);
	assert_int_equal(feed_str(&b, "* LIST () \"/\" {314572800}\r\n"), BUDGET_OVER_TOTAL);
	assert_int_equal(budget_bound(&b), 64u << 20);
	assert_string_equal(budget_response(&b, what, sizeof(what)), "LIST");
	assert_int_equal(feed_str(&b, "x"), BUDGET_OVER_TOTAL);   /* and stays over */
	/* digits past 64 bits, leading zeros: still a number, still too big */
	budget_init(&b);
	budget_arm(&b, &reply);
	assert_int_equal(feed_str(&b, "* STATUS {99999999999999999999999999}\r\n"), BUDGET_OVER_TOTAL);
	budget_init(&b);
	budget_arm(&b, &reply);
	assert_int_equal(feed_str(&b, "* LIST () NIL ~{00000000000000000000300000000}\r\n"),
			 BUDGET_OVER_TOTAL);
	/* small literals and lines pass; a '{' inside a line announces nothing */
	budget_init(&b);
	budget_arm(&b, &reply);
	assert_int_equal(feed_str(&b, stream), BUDGET_OK);
	/* lines add up: 5000 lines of 1 kB against a 4 MB bound */
	big = malloc(1024);
	assert_non_null(big);
	memset(big, 'x', 1022);
	memcpy(big + 1022, "\r\n", 2);
	budget_init(&b);
	budget_arm(&b, &(struct budget_limits){ 4u << 20, 0, false });
	for (i = 0; i < 5000 && budget_feed(&b, big, 1024) == BUDGET_OK; i++)
		;
	assert_int_equal(i, 4096);
	free(big);
	/* a FETCH's literals (streamed) do not count toward the total; other
	 * responses' do; one FETCH response has a bound of its own */
	budget_init(&b);
	budget_arm(&b, &body);
	assert_int_equal(feed_str(&b, "* 3 FETCH (UID 4 BODY[] {100000}\r\n"), BUDGET_OK);
	big = calloc(1, 100000);
	assert_non_null(big);
	assert_int_equal(budget_feed(&b, big, 100000), BUDGET_OK);
	assert_int_equal(feed_str(&b, ")\r\n"), BUDGET_OK);
	assert_int_equal(feed_str(&b, "* LIST () \"/\" {5000}\r\n"), BUDGET_OVER_TOTAL);
	budget_init(&b);
	budget_arm(&b, &meta);
	assert_int_equal(feed_str(&b, "* 3 FETCH (UID 4 BODY[HEADER.FIELDS (TO)] {100000}\r\n"),
			 BUDGET_OK);
	assert_int_equal(budget_feed(&b, big, 100000), BUDGET_OK);
	assert_int_equal(feed_str(&b, " ENVELOPE {2000000}\r\n"), BUDGET_OVER_FETCH);
	assert_string_equal(budget_response(&b, what, sizeof(what)), "FETCH");
	free(big);
	/* a response that starts like a FETCH but is not one */
	budget_init(&b);
	budget_arm(&b, &body);
	assert_int_equal(feed_str(&b, "* 3 FETCHED {5000}\r\n"), BUDGET_OVER_TOTAL);
	/* the verdict does not depend on how the bytes arrive */
	for (i = 1; i <= 7; i++) {
		const struct budget_limits tight = { 100, 0, false };
		size_t at1 = over_at(&tight, stream, strlen(stream), 1);
		size_t at = over_at(&tight, stream, strlen(stream), i);

		assert_int_equal(over_at(&reply, stream, strlen(stream), i), strlen(stream));
		assert_true(at1 < strlen(stream));
		assert_true(at <= at1 && at1 < at + i);
	}
	/* pipelined EXAMINE and FETCH: the FETCH's start, read with the
	 * EXAMINE's tagged line, is judged by the FETCH's bounds, and what
	 * came before the line at fault is still handed on */
	{
		static const char both[] = "* 3 EXISTS\r\n7 OK [READ-ONLY] done\r\n"
					   "* 1 FETCH (UID 1 BODY[HEADER.FIELDS (TO)] {70}\r\n";
		static const char env[] = "* 2 FETCH (ENVELOPE (NIL {70000000}\r\n";
		const struct budget_limits fetch = { 16u << 20, 64u << 20, true };
		char buf[200];

		budget_init(&b);
		budget_arm(&b, &reply);
		budget_arm_next(&b, "7", &fetch);
		assert_int_equal(feed_str(&b, both), BUDGET_OK);
		assert_int_equal(budget_keep(&b), strlen(both));
		big = calloc(1, 70);
		assert_non_null(big);
		assert_int_equal(budget_feed(&b, big, 70), BUDGET_OK);
		free(big);
		snprintf(buf, sizeof(buf), ")\r\n%s", env);
		assert_int_equal(feed_str(&b, buf), BUDGET_OVER_FETCH);
		assert_int_equal(budget_keep(&b), 3);
		/* the same under the EXAMINE's bounds alone: over them too */
		budget_init(&b);
		budget_arm(&b, &reply);
		snprintf(buf, sizeof(buf), "7 OK done\r\n%s", env);
		assert_int_equal(feed_str(&b, buf), BUDGET_OVER_TOTAL);
		assert_int_equal(budget_keep(&b), 11);
	}
	budget_init(&b);
	assert_string_equal(budget_response(&b, what, sizeof(what)), "");
	feed_str(&b, "12 OK d");
	assert_string_equal(budget_response(&b, what, sizeof(what)), "tagged");
}

/* ---- nul ---------------------------------------------------------------- */

static void test_nul_stray(void **state)
{
	(void)state;
	assert_false(nul_stray("plain ascii", 11));
	assert_false(nul_stray("\xe2\x80\x98quoted\xe2\x80\x99 \xc3\x80", 14));   /* UTF-8 */
	assert_true(nul_stray("price 5 \x80", 9));                               /* cp1252 euro */
	assert_true(nul_stray("\x80", 1));
	assert_true(nul_stray("a\xc3" "b\x80", 4));        /* lead byte, then not a continuation */
	assert_true(nul_stray("\xe2\x80\x98\x80", 4));     /* one continuation too many */
	assert_false(nul_stray("", 0));
	assert_false(nul_stray("\xf0\x90\x80\x80", 4));     /* a 4-byte sequence */
	assert_true(nul_stray("\xf0\x90\x80\x80\x80", 5));
	assert_true(nul_stray("\xc0\x80", 2));                /* C0 leads nothing */
}

/* A sequence split across chunks is judged as if it were whole. */
static void test_nul_scan_chunks(void **state)
{
	struct nul_scan sc;

	(void)state;
	memset(&sc, 0, sizeof(sc));
	assert_false(nul_scan(&sc, "a\xe2", 2));
	assert_false(nul_scan(&sc, "\x80\x98 ok", 5));
	memset(&sc, 0, sizeof(sc));
	assert_false(nul_scan(&sc, "\xc3", 1));
	assert_true(nul_scan(&sc, "\x80\x80", 2));
	memset(&sc, 0, sizeof(sc));
	assert_false(nul_scan(&sc, "\xf0", 1));
	assert_false(nul_scan(&sc, "\x90", 1));
	assert_false(nul_scan(&sc, "\x80", 1));
	assert_false(nul_scan(&sc, "\x80", 1));
	assert_true(nul_scan(&sc, "\x80", 1));
	memset(&sc, 0, sizeof(sc));
	assert_true(nul_scan(&sc, "\x80", 1));                 /* nothing before it */
}

static void plan_of(const char *msg, struct nul_plan *plan)
{
	struct tr_error err;

	tr_error_clear(&err);
	assert_int_equal(nul_plan(msg, strlen(msg), plan, &err), 0);
}

static void test_nul_plan(void **state)
{
	struct nul_plan plan;
	const char *single = "Subject: x\r\n\r\nbody \x80 here\r\n";
	const char *encoded = "Subject: x\r\nContent-Transfer-Encoding: quoted-printable\r\n"
			      "\r\nbody \x80 here\r\n";
	const char *multi = "Subject: m\r\nMIME-Version: 1.0\r\n"
			    "Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n"
			    "--b\r\nContent-Type: text/plain\r\n\r\nclean\r\n"
			    "--b\r\nContent-Transfer-Encoding: base64\r\n\r\nAAAA\r\n"
			    "--b\r\nContent-Type: message/rfc822\r\n\r\n"
			    "Subject: inner\r\nMIME-Version: 1.0\r\n"
			    "Content-Type: multipart/alternative; boundary=\"i\"\r\n\r\n"
			    "--i\r\nContent-Type: text/plain\r\n\r\nfirst\r\n"
			    "--i\r\nContent-Type: text/html\r\n\r\nsec\x80nd\r\n--i--\r\n"
			    "--b\r\nContent-Type: message/rfc822\r\n\r\n"
			    "Subject: single\r\n\r\nlone \x80\r\n"
			    "--b--\r\n";
	const char *hdr = "Subject: \x80\r\nMIME-Version: 1.0\r\n"
			  "Content-Type: multipart/mixed; boundary=\"h\"\r\n\r\n"
			  "--h\r\n\r\nhi\r\n--h--\r\n";
	const char *p;

	(void)state;
	/* one identity-encoded body: the whole message, headers included */
	plan_of(single, &plan);
	assert_int_equal(plan.n, 1);
	assert_string_equal(plan.v[0].section, "");
	assert_int_equal(plan.v[0].off, 0);
	assert_int_equal(plan.v[0].len, strlen(single));
	assert_null(plan.unchecked);
	nul_plan_free(&plan);

	/* BINARY[] would decode it: nothing to ask, and said so */
	plan_of(encoded, &plan);
	assert_int_equal(plan.n, 0);
	assert_non_null(plan.unchecked);
	nul_plan_free(&plan);

	/* only the parts with a stray 0x80, numbered as IMAP does */
	plan_of(multi, &plan);
	assert_null(plan.unchecked);
	assert_int_equal(plan.n, 2);
	assert_string_equal(plan.v[0].section, "3.2");
	p = strstr(multi, "sec\x80nd");
	assert_int_equal(plan.v[0].off, (size_t)(p - multi));
	assert_int_equal(plan.v[0].len, 6);   /* the CRLF before a boundary is the boundary's */
	assert_string_equal(plan.v[1].section, "4.1");
	p = strstr(multi, "lone \x80");
	assert_int_equal(plan.v[1].off, (size_t)(p - multi));
	nul_plan_free(&plan);

	/* a 0x80 in a multipart's header: no part to ask, and said so */
	plan_of(hdr, &plan);
	assert_int_equal(plan.n, 0);
	assert_non_null(plan.unchecked);
	nul_plan_free(&plan);
}

/* A message nested `levels` multiparts deep around a text part with a stray
 * 0x80 (what a hostile sender can mail to anyone). */
static char *nested(size_t levels, size_t *len)
{
	size_t cap = 200 + levels * 80, n = 0, i;
	char *m = malloc(cap);

	assert_non_null(m);
	n += (size_t)snprintf(m + n, cap - n, "Subject: deep\r\nMIME-Version: 1.0\r\n");
	for (i = 0; i < levels; i++)
		n += (size_t)snprintf(m + n, cap - n, "Content-Type: multipart/mixed; "
				      "boundary=\"b%zu\"\r\n\r\n--b%zu\r\n", i, i);
	n += (size_t)snprintf(m + n, cap - n, "Content-Type: text/plain\r\n\r\n5 \x80\r\n");
	for (i = levels; i-- > 0;)
		n += (size_t)snprintf(m + n, cap - n, "--b%zu--\r\n", i);
	*len = n;
	return m;
}

static void test_nul_shape(void **state)
{
	struct nul_shape sh;
	struct nul_plan plan;
	struct tr_error err;
	const char *plain = "Subject: x\r\nFrom: a@b\r\n\r\nNote: not a header\r\n--\r\nsig\r\n";
	const char *folded = "Subject: f\r\nContent-Type:\r\n multipart/mixed;\r\n boundary=x\r\n"
			     "\r\n--x\r\nContent-Type : message/rfc822\r\n\r\nA (c): b\r\n\r\nt\r\n"
			     "--x--\r\n";
	size_t len;
	char *m;

	(void)state;
	/* no multipart or message type in the header: libetpan goes no deeper */
	nul_mime_shape(plain, strlen(plain), &sh);
	assert_int_equal(sh.depth, 2);
	assert_int_equal(sh.parts, 0);
	assert_int_equal(sh.fields, 2);
	/* folds, blanks and comments before the colon still make fields */
	nul_mime_shape(folded, strlen(folded), &sh);
	assert_int_equal(sh.depth, 6);
	assert_int_equal(sh.parts, 4);
	assert_int_equal(sh.fields, 4);
	/* nesting within the bound is parsed as before */
	m = nested(20, &len);
	nul_mime_shape(m, len, &sh);
	assert_int_equal(sh.depth, 42);
	tr_error_clear(&err);
	assert_int_equal(nul_plan(m, len, &plan, &err), 0);
	assert_int_equal(plan.n, 1);
	assert_null(plan.unchecked);
	nul_plan_free(&plan);
	free(m);
	/* 40,000 levels (3 MB) crashed the parser: now refused unparsed, at once */
	m = nested(40000, &len);
	nul_mime_shape(m, len, &sh);
	assert_true(sh.depth > NUL_MAX_MIME_DEPTH);
	assert_int_equal(nul_plan(m, len, &plan, &err), 0);
	assert_int_equal(plan.n, 0);
	assert_non_null(plan.unchecked);
	assert_non_null(strstr(plan.unchecked, "too deep"));
	free(m);
	/* many parts, many header fields: refused too */
	m = malloc(8 * 20001 + 100);
	assert_non_null(m);
	len = (size_t)sprintf(m, "Content-Type: multipart/mixed; boundary=b\r\n\r\n");
	for (size_t i = 0; i <= NUL_MAX_MIME_PARTS; i++)
		len += (size_t)sprintf(m + len, "--b\r\n\r\n");
	nul_mime_shape(m, len, &sh);
	assert_int_equal(sh.parts, NUL_MAX_MIME_PARTS + 2);
	assert_int_equal(nul_plan(m, len, &plan, &err), 0);
	assert_non_null(plan.unchecked);
	free(m);
	m = malloc(6 * (NUL_MAX_MIME_FIELDS + 1) + 20);
	assert_non_null(m);
	for (len = 0; len < 6 * (NUL_MAX_MIME_FIELDS + 1); len += 6)
		memcpy(m + len, "X: y\r\n", 6);
	memcpy(m + len, "\r\n\x80\r\n", 5);
	nul_mime_shape(m, len + 5, &sh);
	assert_int_equal(sh.fields, NUL_MAX_MIME_FIELDS + 1);
	assert_int_equal(nul_plan(m, len + 5, &plan, &err), 0);
	assert_non_null(plan.unchecked);
	free(m);
}

static void test_nul_patch(void **state)
{
	char body[32];

	(void)state;
	memcpy(body, "a\x80" "b\x80\r\n", 6);
	assert_int_equal(nul_patch(body, 6, "a\0b\0\r\n", 6), 2);
	assert_memory_equal(body, "a\0b\0\r\n", 6);
	/* identical: nothing to do */
	memcpy(body, "5 \x80", 3);
	assert_int_equal(nul_patch(body, 3, "5 \x80", 3), 0);
	/* a trailing CRLF either way is a matter of MIME parsers */
	memcpy(body, "x\x80\r\n", 4);
	assert_int_equal(nul_patch(body, 4, "x\0", 2), 1);
	assert_memory_equal(body, "x\0\r\n", 4);
	/* anything else that differs: untouched */
	memcpy(body, "x\x80y", 3);
	assert_int_equal(nul_patch(body, 3, "z\0y", 3), -1);
	assert_memory_equal(body, "x\x80y", 3);
	assert_int_equal(nul_patch(body, 3, "x\x01y", 3), -1);
	assert_int_equal(nul_patch(body, 3, "x\0yzzz", 6), -1);     /* longer, not CRLF */
	assert_int_equal(nul_patch(body, 3, "x\0", 2), -1);         /* shorter, not CRLF */
	assert_memory_equal(body, "x\x80y", 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_flags_canon),
		cmocka_unit_test(test_fingerprint),
		cmocka_unit_test(test_classify),
		cmocka_unit_test(test_backoff_hint),
		cmocka_unit_test(test_throttle_parse),
		cmocka_unit_test(test_throttle_bucket),
		cmocka_unit_test(test_uidset),
		cmocka_unit_test(test_stage),
		cmocka_unit_test(test_stage_total),
		cmocka_unit_test(test_budget),
		cmocka_unit_test(test_nul_stray),
		cmocka_unit_test(test_nul_scan_chunks),
		cmocka_unit_test(test_nul_plan),
		cmocka_unit_test(test_nul_shape),
		cmocka_unit_test(test_nul_patch),
		cmocka_unit_test(test_parse_server),
		cmocka_unit_test(test_parse_migrate),
	};

	return cmocka_run_group_tests_name("core", tests, NULL, NULL);
}
