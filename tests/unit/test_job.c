/* Unit tests for the accounts CSV and the job file (src/job.c).
 *
 * The CSV cases are one table: each gives the text, the accounts that must
 * come out (byte-exact passwords, the line each row starts on) and the rows
 * that must be reported.  Every password in the table, accepted or not, is
 * then looked for in every message any case produced.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "job.h"
#include "secret.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MAXA 6
#define MAXB 6

/* UTF-8 spelled out so the expectations do not depend on an editor. */
#define PW_UTF8 "p\xc3\xa4sswort-\xe6\x97\xa5\xe6\x9c\xac"      /* pässwort-日本 */

struct want_acc {
	const char *email, *password, *src_user, *dst_user, *dst_password;
	unsigned line;
};

struct want_bad {
	unsigned line;
	const char *what;       /* a prefix of the message */
};

struct csv_case {
	const char *label;
	const char *text;
	size_t len;             /* 0: strlen(text) */
	int ret;
	bool header;
	const char *err;        /* with ret -1: a part of the error message */
	struct want_acc acc[MAXA];      /* up to email == NULL */
	struct want_bad bad[MAXB];      /* up to what == NULL */
	const char *secrets[4]; /* passwords of rows that are refused */
};

#define NUL_TEXT "a@example.com,pw-Nul\0One\nb@example.com,pw-Bravo2\nc\0@example.com,pw-Nul2\n"

static const char bad_quote[] = "bad quoting: a '\"' inside an unquoted field";

static const struct csv_case csv_cases[] = {
	{ .label = "unquoted",
	  .text = "a@example.com,pw-Alpha1\nb@example.com,pw-Bravo2\n",
	  .acc = { { "a@example.com", "pw-Alpha1", .line = 1 },
		   { "b@example.com", "pw-Bravo2", .line = 2 } } },
	{ .label = "quoted",
	  .text = "\"a@example.com\",\"pw-Alpha1\"\n\"b@example.com\",pw-Bravo2",
	  .acc = { { "a@example.com", "pw-Alpha1", .line = 1 },
		   { "b@example.com", "pw-Bravo2", .line = 2 } } },
	{ .label = "comma and quote in a password",
	  .text = "a@example.com,\"pw,Comma\"\nb@example.com,\"pw\"\"Quote\"\"\"\n"
		  "c@example.com,\"\"\"pw,both\"\"\"\n",
	  .acc = { { "a@example.com", "pw,Comma", .line = 1 },
		   { "b@example.com", "pw\"Quote\"", .line = 2 },
		   { "c@example.com", "\"pw,both\"", .line = 3 } } },
	{ .label = "newlines in a password, bad row after it",
	  .text = "a@example.com,\"pw-Multi\nline-2\r\nline-3\"\n"
		  "b@example.com,\"pw-x\"Trail\n"
		  "c@example.com,pw-Charlie3\n",
	  .acc = { { "a@example.com", "pw-Multi\nline-2\r\nline-3", .line = 1 },
		   { "c@example.com", "pw-Charlie3", .line = 5 } },
	  .bad = { { 4, "line 4: bad quoting" } },
	  .secrets = { "pw-x\"Trail", "pw-xTrail" } },
	{ .label = "bad quoting inside a multi-line field",
	  .text = "a@example.com,\"pw-Spans\nlines\"oops\nb@example.com,pw-Bravo2\n",
	  .acc = { { "b@example.com", "pw-Bravo2", .line = 3 } },
	  .bad = { { 1, "line 1: bad quoting" } },
	  .secrets = { "pw-Spans", "lines\"oops" } },
	{ .label = "spaces and tabs kept in passwords",
	  .text = "a@example.com,  pw-Spaced  \nb@example.com,\tpw-Tab\t\n"
		  "c@example.com,\" pw-Quoted \"\n d@example.com ,pw-Email-Trimmed\n"
		  "e@example.com,pw inner\ttab\n",
	  .acc = { { "a@example.com", "  pw-Spaced  ", .line = 1 },
		   { "b@example.com", "\tpw-Tab\t", .line = 2 },
		   { "c@example.com", " pw-Quoted ", .line = 3 },
		   { "d@example.com", "pw-Email-Trimmed", .line = 4 },
		   { "e@example.com", "pw inner\ttab", .line = 5 } } },
	{ .label = "UTF-8 password",
	  .text = "a@example.com," PW_UTF8 "\n",
	  .acc = { { "a@example.com", PW_UTF8, .line = 1 } } },
	{ .label = "BOM",
	  .text = "\xef\xbb\xbf" "a@example.com,pw-Alpha1\n",
	  .acc = { { "a@example.com", "pw-Alpha1", .line = 1 } } },
	{ .label = "BOM and header",
	  .text = "\xef\xbb\xbf" "Email,Password\r\na@example.com,pw-Alpha1\r\n",
	  .header = true,
	  .acc = { { "a@example.com", "pw-Alpha1", .line = 2 } } },
	{ .label = "blank lines",
	  .text = "\n\na@example.com,pw-Alpha1\n\n   \n\t\nb@example.com,pw-Bravo2\n\n",
	  .acc = { { "a@example.com", "pw-Alpha1", .line = 3 },
		   { "b@example.com", "pw-Bravo2", .line = 7 } } },
	{ .label = "CRLF",
	  .text = "a@example.com,pw-Alpha1\r\n\r\nb@example.com,\"pw-Bravo2\"\r\n",
	  .acc = { { "a@example.com", "pw-Alpha1", .line = 1 },
		   { "b@example.com", "pw-Bravo2", .line = 3 } } },
	{ .label = "mixed line ends, no final newline",
	  .text = "a@example.com,pw-Alpha1\r\nb@example.com,pw-Bravo2\n\r\n"
		  "c@example.com,\"pw-Charlie3\"\nd@example.com,pw-Delta4",
	  .acc = { { "a@example.com", "pw-Alpha1", .line = 1 },
		   { "b@example.com", "pw-Bravo2", .line = 2 },
		   { "c@example.com", "pw-Charlie3", .line = 4 },
		   { "d@example.com", "pw-Delta4", .line = 5 } } },
	{ .label = "lone CR ends a row, not a line",
	  .text = "a@example.com,pw-Alpha1\rb@example.com,pw-Bravo2\r\nc@example.com,pw-Charlie3\n",
	  .acc = { { "a@example.com", "pw-Alpha1", .line = 1 },
		   { "b@example.com", "pw-Bravo2", .line = 1 },
		   { "c@example.com", "pw-Charlie3", .line = 2 } } },
	{ .label = "header, all columns in another order",
	  .text = "EMAIL,dst-password,Dst User,src_user,Passwd\n"
		  "a@example.com,pw-Dst-A1,new-a@example.net,old-a,pw-Alpha1\n"
		  "b@example.com,,,,pw-Bravo2\n",
	  .header = true,
	  .acc = { { "a@example.com", "pw-Alpha1", "old-a", "new-a@example.net", "pw-Dst-A1", 2 },
		   { "b@example.com", "pw-Bravo2", NULL, NULL, NULL, 3 } } },
	{ .label = "header starting with the password column",
	  .text = "password,login,dst_user\npw-Alpha1,a@example.com,x@example.net\n",
	  .header = true,
	  .acc = { { "a@example.com", "pw-Alpha1", NULL, "x@example.net", NULL, 2 } } },
	{ .label = "header without optional columns, spaces around names",
	  .text = "Username, Pass \n\na@example.com, pw-Alpha1\n",
	  .header = true,
	  .acc = { { "a@example.com", " pw-Alpha1", .line = 3 } } },
	{ .label = "only a header",
	  .text = "email,password\n",
	  .header = true },
	{ .label = "empty file",
	  .text = "" },
	{ .label = "only blank lines",
	  .text = "\r\n\n  \n" },
	{ .label = "wrong number of fields",
	  .text = "a@example.com\nb@example.com,pw-Bravo2,extra\nc@example.com,pw-Charlie3\n"
		  "d@example.com,pw-Delta4,\n",
	  .acc = { { "c@example.com", "pw-Charlie3", .line = 3 } },
	  .bad = { { 1, "line 1: expected 2 fields (email,password), found 1" },
		   { 2, "line 2: expected 2 fields (email,password), found 3" },
		   { 4, "line 4: expected 2 fields (email,password), found 3" } },
	  .secrets = { "pw-Bravo2", "pw-Delta4" } },
	{ .label = "wrong number of fields with a header",
	  .text = "email,password,dst_user\na@example.com,pw-Alpha1\n"
		  "b@example.com,pw-Bravo2,b@example.net\n",
	  .header = true,
	  .acc = { { "b@example.com", "pw-Bravo2", NULL, "b@example.net", NULL, 3 } },
	  .bad = { { 2, "line 2: expected 3 fields (email,password,dst_user), found 2" } },
	  .secrets = { "pw-Alpha1" } },
	{ .label = "duplicates",
	  .text = "a@example.com,pw-Alpha1\nb@example.com,pw-Bravo2\n\n"
		  "A@Example.COM,pw-Again3\nb@example.com,pw-Again4\n",
	  .acc = { { "a@example.com", "pw-Alpha1", .line = 1 },
		   { "b@example.com", "pw-Bravo2", .line = 2 } },
	  .bad = { { 4, "line 4: duplicate account A@Example.COM (first on line 1)" },
		   { 5, "line 5: duplicate account b@example.com (first on line 2)" } },
	  .secrets = { "pw-Again3", "pw-Again4" } },
	{ .label = "empty password",
	  .text = "a@example.com,\nb@example.com,\"\"\nc@example.com,pw-Charlie3\n",
	  .acc = { { "c@example.com", "pw-Charlie3", .line = 3 } },
	  .bad = { { 1, "line 1: empty password for a@example.com" },
		   { 2, "line 2: empty password for b@example.com" } } },
	{ .label = "invalid emails",
	  .text = "not-an-email,pw-Inval1\nuser@nodot,pw-Inval2\n,pw-Inval3\n"
		  "a@@example.com,pw-Inval4\npw-Swapped5,c@example.com\n"
		  "sp ace@example.com,pw-Inval6\nok@example.com,pw-Fine7\n",
	  .acc = { { "ok@example.com", "pw-Fine7", .line = 7 } },
	  .bad = { { 1, "line 1: first field is not an email address" },
		   { 2, "line 2: invalid email address in field 1 (not shown" },
		   { 3, "line 3: empty email address" },
		   { 4, "line 4: invalid email address in field 1 (not shown" },
		   { 5, "line 5: field 2 is an email address: are the columns swapped?" },
		   { 6, "line 6: invalid email address in field 1 (not shown" } },
	  .secrets = { "pw-Inval1", "pw-Inval2", "pw-Inval3", "pw-Swapped5" } },
	/* Passwords with an '@' in a file without a header whose columns are
	 * swapped: none may be quoted, and none may become an account's name
	 * (the last one is a valid address by itself). */
	{ .label = "swapped columns, passwords with '@'",
	  .text = "pw@ss-Secret1,a@example.com\n\"p@ss,Secret2\",b@example.com\n"
		  "Summer@home.de,c@example.com\nok@example.com,pw-Fine1\n",
	  .acc = { { "ok@example.com", "pw-Fine1", .line = 4 } },
	  .bad = { { 1, "line 1: field 2 is an email address: are the columns swapped?" },
		   { 2, "line 2: field 2 is an email address: are the columns swapped?" },
		   { 3, "line 3: field 2 is an email address: are the columns swapped?" } },
	  .secrets = { "pw@ss-Secret1", "p@ss,Secret2", "Summer@home.de" } },
	/* Swapped and not refused as such (the second field is no address
	 * either): the '@' field is still not quoted. */
	{ .label = "password with '@' in the email field, no header",
	  .text = "pw@ss-Secret3,not-an-address\n",
	  .bad = { { 1, "line 1: invalid email address in field 1 (not shown: without a header "
		       "row it may be a password)" } },
	  .secrets = { "pw@ss-Secret3" } },
	/* A header row says which column holds addresses: an invalid one is
	 * quoted there, to help find it. */
	{ .label = "invalid email under a header",
	  .text = "email,password\nuser@nodot,pw-Inval7\n",
	  .header = true,
	  .bad = { { 2, "line 2: invalid email address \"user@nodot\"" } },
	  .secrets = { "pw-Inval7" } },
	{ .label = "quote inside an unquoted field, and spaces before a quote",
	  .text = "a@example.com,pw\"Bad1\nb@example.com, \"pw-Bad2\"\nc@example.com,pw-Charlie3\n",
	  .acc = { { "c@example.com", "pw-Charlie3", .line = 3 } },
	  .bad = { { 1, "line 1: bad quoting" }, { 2, "line 2: bad quoting" } },
	  .secrets = { "pw\"Bad1", "pw-Bad2" } },
	{ .label = "unterminated quote at EOF",
	  .text = "a@example.com,pw-Alpha1\n\nb@example.com,\"pw-Open1",
	  .acc = { { "a@example.com", "pw-Alpha1", .line = 1 } },
	  .bad = { { 3, "line 3: unterminated quoted field" } },
	  .secrets = { "pw-Open1" } },
	{ .label = "unterminated quote swallowing rows",
	  .text = "a@example.com,\"pw-Open2\nb@example.com,pw-Bravo2\r\n\nc@example.com,pw-Charlie3\n",
	  .acc = { { "b@example.com", "pw-Bravo2", .line = 2 },
		   { "c@example.com", "pw-Charlie3", .line = 4 } },
	  .bad = { { 1, "line 1: unterminated quoted field" } },
	  .secrets = { "pw-Open2" } },
	{ .label = "NUL bytes",
	  .text = NUL_TEXT, .len = sizeof(NUL_TEXT) - 1,
	  .acc = { { "b@example.com", "pw-Bravo2", .line = 2 } },
	  .bad = { { 1, "line 1: NUL byte" }, { 3, "line 3: NUL byte" } },
	  .secrets = { "pw-Nul" } },
	{ .label = "unknown header column",
	  .text = "email,password,colour\na@example.com,pw-Alpha1,red\n",
	  .ret = -1, .err = "accounts.csv: line 1: unknown column \"colour\"" },
	{ .label = "no header: first address looks like a column name",
	  .text = "user,hunter2Secret\na@example.com,pw-Alpha1\n",
	  .ret = -1, .err = "line 1: column 2 of the header row is not a known column name",
	  .secrets = { "hunter2Secret" } },
	{ .label = "header without password column",
	  .text = "email,dst_user\n",
	  .ret = -1, .err = "line 1: the header row has no password column" },
	{ .label = "header column twice",
	  .text = "\nemail,password,pass\n",
	  .ret = -1, .err = "line 2: column password appears twice in the header row" },
	{ .label = "bad quoting in the header",
	  .text = "email,pass\"word\na@example.com,pw-Alpha1\n",
	  .ret = -1, .err = "line 1: bad quoting" },
};

static bool str_eq_or_null(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

/* Every password the table knows, to look for in messages. */
static size_t all_secrets(const char **v, size_t cap)
{
	size_t n = 0, i, j;

	for (i = 0; i < ARRAY_SIZE(csv_cases); i++) {
		const struct csv_case *c = &csv_cases[i];

		for (j = 0; j < MAXA && c->acc[j].email != NULL; j++) {
			if (c->acc[j].password != NULL && n < cap)
				v[n++] = c->acc[j].password;
			if (c->acc[j].dst_password != NULL && n < cap)
				v[n++] = c->acc[j].dst_password;
		}
		for (j = 0; j < ARRAY_SIZE(c->secrets) && c->secrets[j] != NULL; j++)
			if (n < cap)
				v[n++] = c->secrets[j];
	}
	assert_true(n < cap);
	return n;
}

static void assert_no_secret(const char *label, const char *msg)
{
	const char *secrets[256];
	size_t n = all_secrets(secrets, ARRAY_SIZE(secrets)), i;

	for (i = 0; i < n; i++)
		if (strstr(msg, secrets[i]) != NULL)
			fail_msg("%s: message \"%s\" holds the password \"%s\"", label, msg,
				 secrets[i]);
}

static void check_csv_case(const struct csv_case *c)
{
	struct job_accounts a;
	struct tr_error err;
	size_t len = c->len ? c->len : strlen(c->text), i, n;
	int r;

	tr_error_clear(&err);
	r = job_accounts_parse("accounts.csv", c->text, len, &a, &err);
	if (r != c->ret)
		fail_msg("%s: returned %d, want %d (%s)", c->label, r, c->ret, err.msg);
	if (r < 0) {
		assert_int_equal(err.kind, c->err != NULL && strstr(c->err, "memory") ?
				 TR_ERR_LOCAL : TR_ERR_USAGE);
		if (c->err != NULL && strstr(err.msg, c->err) == NULL)
			fail_msg("%s: error \"%s\", want \"%s\"", c->label, err.msg, c->err);
		assert_no_secret(c->label, err.msg);
		assert_int_equal(a.n, 0);
		assert_int_equal(a.n_bad, 0);
		job_accounts_free(&a);
		return;
	}
	if (a.had_header != c->header)
		fail_msg("%s: had_header %d, want %d", c->label, a.had_header, c->header);

	for (n = 0; n < MAXA && c->acc[n].email != NULL; n++)
		;
	if (a.n != n)
		fail_msg("%s: %zu accounts, want %zu (first problem: %s)", c->label, a.n, n,
			 a.n_bad ? a.bad[0].what : "none");
	for (i = 0; i < n; i++) {
		const struct want_acc *w = &c->acc[i];
		const struct job_account *g = &a.v[i];

		if (strcmp(g->email, w->email) != 0 || strcmp(g->password, w->password) != 0 ||
		    !str_eq_or_null(g->src_user, w->src_user) ||
		    !str_eq_or_null(g->dst_user, w->dst_user) ||
		    !str_eq_or_null(g->dst_password, w->dst_password) || g->line != w->line)
			fail_msg("%s: account %zu: %s line %u (src_user %s, dst_user %s), "
				 "want %s line %u", c->label, i, g->email, g->line,
				 g->src_user ? g->src_user : "-", g->dst_user ? g->dst_user : "-",
				 w->email, w->line);
	}

	for (n = 0; n < MAXB && c->bad[n].what != NULL; n++)
		;
	if (a.n_bad != n)
		fail_msg("%s: %zu problems, want %zu (first: %s)", c->label, a.n_bad, n,
			 a.n_bad ? a.bad[0].what : "none");
	for (i = 0; i < n; i++) {
		const struct want_bad *w = &c->bad[i];

		if (a.bad[i].line != w->line || strncmp(a.bad[i].what, w->what, strlen(w->what)) != 0)
			fail_msg("%s: problem %zu: line %u \"%s\", want line %u \"%s\"", c->label, i,
				 a.bad[i].line, a.bad[i].what, w->line, w->what);
	}
	for (i = 0; i < a.n_bad; i++)
		assert_no_secret(c->label, a.bad[i].what);
	job_accounts_free(&a);
	assert_null(a.v);
	assert_int_equal(a.n, 0);
}

static void test_csv_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(csv_cases); i++)
		check_csv_case(&csv_cases[i]);
}

/* The messages of a few rows, exactly. */
static void test_csv_messages(void **state)
{
	static const char text[] = "a@example.com,\"pw-Spans\nlines\"oops\n"
		"b@example.com,pw-B\"\n"
		"c@example.com,\"pw-Open\n";
	struct job_accounts a;
	struct tr_error err;

	(void)state;
	assert_int_equal(job_accounts_parse(NULL, text, strlen(text), &a, &err), 0);
	assert_int_equal(a.n, 0);
	assert_int_equal(a.n_bad, 3);
	assert_string_equal(a.bad[0].what,
			    "line 1: bad quoting: a '\"' inside an unquoted field, or text after a "
			    "closing '\"' (quote the whole field, with no spaces around it, and "
			    "write a '\"' in it as '\"\"') (on line 2)");
	assert_int_equal(a.bad[1].line, 3);
	assert_int_equal(strncmp(a.bad[1].what, "line 3: ", 8), 0);
	assert_non_null(strstr(a.bad[1].what, bad_quote));
	assert_string_equal(a.bad[2].what,
			    "line 4: unterminated quoted field (a '\"' with no closing '\"')");
	job_accounts_free(&a);
}

/* Many rows: duplicate detection goes through its hash table's growth. */
static void test_csv_many(void **state)
{
	size_t n = 5000, i, len = 0, cap = n * 48 + 64;
	char *text = malloc(cap);
	struct job_accounts a;
	struct tr_error err;

	(void)state;
	assert_non_null(text);
	len += (size_t)snprintf(text + len, cap - len, "email,password\n");
	for (i = 0; i < n; i++)
		len += (size_t)snprintf(text + len, cap - len, "user%zu@example.com,pw-%zu\n", i, i);
	len += (size_t)snprintf(text + len, cap - len, "USER4321@example.com,pw-again\n");
	assert_int_equal(job_accounts_parse("many.csv", text, len, &a, &err), 0);
	assert_int_equal(a.n, n);
	assert_int_equal(a.v[n - 1].line, n + 1);
	assert_int_equal(a.n_bad, 1);
	assert_string_equal(a.bad[0].what,
			    "line 5002: duplicate account USER4321@example.com (first on line 4323)");
	job_accounts_free(&a);
	free(text);
}

/* A file of nothing but bad rows lists the first thousand. */
static void test_csv_many_bad(void **state)
{
	size_t n = 1500, i, len = 0, cap = n * 32 + 64;
	char *text = malloc(cap);
	struct job_accounts a;
	struct tr_error err;

	(void)state;
	assert_non_null(text);
	for (i = 0; i < n; i++)
		len += (size_t)snprintf(text + len, cap - len, "user%zu@example.com\n", i);
	len += (size_t)snprintf(text + len, cap - len, "ok@example.com,pw-Last\n");
	assert_int_equal(job_accounts_parse("bad.csv", text, len, &a, &err), 0);
	assert_int_equal(a.n, 1);
	assert_int_equal(a.v[0].line, 1501);
	assert_int_equal(a.n_bad, 1001);
	assert_int_equal(a.bad[999].line, 1000);
	assert_int_equal(a.bad[1000].line, 1001);
	assert_string_equal(a.bad[1000].what,
			    "line 1001: 500 more bad rows from here on are not listed");
	job_accounts_free(&a);
	free(text);
}

/* ---- field lengths -------------------------------------------------------- */

/* Text of n bytes of c (n + 1 allocated, NUL-terminated). */
static char *repeat(char c, size_t n)
{
	char *s = malloc(n + 1);

	assert_non_null(s);
	memset(s, c, n);
	s[n] = '\0';
	return s;
}

static void assert_no_run(const struct job_accounts *a, char c, size_t n)
{
	char *run = repeat(c, n);

	for (size_t i = 0; i < a->n_bad; i++)
		if (strstr(a->bad[i].what, run) != NULL)
			fail_msg("message \"%.80s...\" quotes the field", a->bad[i].what);
	free(run);
}

/* JOB_MAX_FIELD bytes pass, one more makes the row bad; the message says
 * which field and never what it holds. */
static void test_csv_field_limit(void **state)
{
	char *pw = repeat('P', JOB_MAX_FIELD + 1), *email = repeat('e', 2000), *text;
	struct job_accounts a;
	struct tr_error err;
	size_t cap = 3 * JOB_MAX_FIELD + 4096;
	int len;

	(void)state;
	text = malloc(cap);
	assert_non_null(text);
	len = snprintf(text, cap, "a@example.com,%.*s\nb@example.com,%s\n\"%s@x.com\",pw-C\n"
		       "d@example.com,\"%.*s\nsecond line\"\nok@example.com,pw-Fine\n",
		       JOB_MAX_FIELD, pw, pw, email, JOB_MAX_FIELD - 11, pw);
	assert_int_equal(job_accounts_parse("long.csv", text, (size_t)len, &a, &err), 0);
	assert_int_equal(a.n, 2);
	assert_string_equal(a.v[0].email, "a@example.com");
	assert_int_equal(strlen(a.v[0].password), JOB_MAX_FIELD);
	assert_string_equal(a.v[1].email, "ok@example.com");
	assert_int_equal(a.v[1].line, 6);
	assert_int_equal(a.n_bad, 3);
	assert_string_equal(a.bad[0].what, "line 2: field 2 is longer than 1024 bytes");
	assert_string_equal(a.bad[1].what, "line 3: field 1 is longer than 1024 bytes");
	/* the password, with its newline, is 1025 bytes: counted on the row's line */
	assert_string_equal(a.bad[2].what, "line 4: field 2 is longer than 1024 bytes");
	assert_no_run(&a, 'P', 16);
	assert_no_run(&a, 'e', 16);
	job_accounts_free(&a);

	/* in the header row, nothing after it can be read */
	len = snprintf(text, cap, "email,%s\na@example.com,pw\n", pw);
	assert_int_equal(job_accounts_parse("long.csv", text, (size_t)len, &a, &err), -1);
	assert_string_equal(err.msg, "long.csv: line 1: field 2 is longer than 1024 bytes in the "
			    "header row");
	free(text);
	free(pw);
	free(email);
}

/* Quoted fields that outgrow the parser's buffer at every possible point
 * (inside a pair of quotes too): the quoting stays in step, so rows
 * written inside such a field never become accounts. */
static void test_csv_field_overflow(void **state)
{
	size_t cap = 64 * 1024, pad;
	char *text = malloc(cap);

	(void)state;
	assert_non_null(text);
	for (pad = 0; pad < 12; pad++) {
		struct job_accounts a;
		struct tr_error err;
		size_t len = 0, k;

		len += (size_t)snprintf(text + len, cap - len, "a@example.com,\"");
		for (k = 0; k < pad; k++)
			text[len++] = 'x';
		/* 9000 bytes of `y""` and a fake row on a line of its own */
		for (k = 0; k < 3000; k++) {
			memcpy(text + len, "y\"\"", 3);
			len += 3;
			if (k == 1500)
				len += (size_t)snprintf(text + len, cap - len,
							"\nfake@example.com,pw-Fake\n");
		}
		len += (size_t)snprintf(text + len, cap - len,
					"\"\nok@example.com,pw-Fine\nok2@example.com,\"pw-2\"\n");
		if (job_accounts_parse("q.csv", text, len, &a, &err) != 0)
			fail_msg("pad %zu: %s", pad, err.msg);
		if (a.n != 2 || strcmp(a.v[0].email, "ok@example.com") != 0 || a.v[0].line != 4 ||
		    strcmp(a.v[1].password, "pw-2") != 0)
			fail_msg("pad %zu: %zu accounts, first %s line %u", pad, a.n,
				 a.n ? a.v[0].email : "-", a.n ? a.v[0].line : 0);
		assert_int_equal(a.n_bad, 1);
		assert_string_equal(a.bad[0].what, "line 1: field 2 is longer than 1024 bytes");
		job_accounts_free(&a);
	}
	free(text);
}

static long max_rss_kb(void)
{
	struct rusage ru;

	assert_int_equal(getrusage(RUSAGE_SELF, &ru), 0);
	return ru.ru_maxrss;
}

/* A 32 MB password field (60 MB ones were taken) is not held in memory
 * while it is parsed: the peak grows by far less than the field. */
static void test_csv_huge_field(void **state)
{
	size_t big = (size_t)32 << 20, len;
	char *text = malloc(big + 128);
	struct job_accounts a;
	struct tr_error err;
	long before, after;

	(void)state;
	assert_non_null(text);
	len = (size_t)sprintf(text, "a@example.com,");
	memset(text + len, 'H', big);
	len += big;
	len += (size_t)sprintf(text + len, "\nok@example.com,pw-Fine\n");
	before = max_rss_kb();
	assert_int_equal(job_accounts_parse("huge.csv", text, len, &a, &err), 0);
	after = max_rss_kb();
	if (after - before > 8 * 1024)
		fail_msg("parsing a 32 MB field raised the peak by %ld KB", after - before);
	assert_int_equal(a.n, 1);
	assert_int_equal(a.v[0].line, 2);
	assert_int_equal(a.n_bad, 1);
	assert_string_equal(a.bad[0].what, "line 1: field 2 is longer than 1024 bytes");
	job_accounts_free(&a);
	free(text);
}

/* Password files: the first line, at most 1024 bytes; a longer one is an
 * error that does not show it (it was cut at 4096 bytes without a word). */
static void test_secret_file_limit(void **state)
{
	char *pw = repeat('S', 1024), *path, *out = NULL;
	char long_pw[1100];
	struct tr_error err;
	int fd;

	(void)state;
	path = strdup("/tmp/test_job_pw_XXXXXX");
	assert_non_null(path);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, pw, 1024), 1024);
	assert_int_equal(write(fd, "\r\nsecond\n", 9), 9);
	close(fd);
	assert_int_equal(secret_from_file(path, &out, &err), 0);
	assert_string_equal(out, pw);
	secret_free(out);

	/* 1025 bytes, without a newline and with one */
	snprintf(long_pw, sizeof(long_pw), "%sT", pw);
	for (int nl = 0; nl < 2; nl++) {
		fd = open(path, O_WRONLY | O_TRUNC);
		assert_true(fd >= 0);
		assert_int_equal(write(fd, long_pw, 1025), 1025);
		if (nl)
			assert_int_equal(write(fd, "\n", 1), 1);
		close(fd);
		out = NULL;
		assert_int_equal(secret_from_file(path, &out, &err), -1);
		assert_null(out);
		assert_int_equal(err.kind, TR_ERR_USAGE);
		assert_non_null(strstr(err.msg, "longer than 1024 bytes"));
		assert_null(strstr(err.msg, "SSSS"));
	}
	unlink(path);
	free(path);
	free(pw);
}

/* Job-file lines have a limit too. */
static void test_job_file_line_limit(void **state)
{
	char *v = repeat('v', JOB_MAX_LINE), *text;
	struct job_file f;
	struct tr_error err;
	int len;

	(void)state;
	text = malloc(JOB_MAX_LINE + 64);
	assert_non_null(text);
	len = snprintf(text, JOB_MAX_LINE + 64, "src = a\nfolder = %.*s\n", JOB_MAX_LINE - 9, v);
	assert_int_equal(job_file_parse("run.job", text, (size_t)len, &f, &err), 0);
	job_file_free(&f);
	len = snprintf(text, JOB_MAX_LINE + 64, "src = a\nfolder = %.*s\n", JOB_MAX_LINE - 8, v);
	assert_int_equal(job_file_parse("run.job", text, (size_t)len, &f, &err), -1);
	assert_string_equal(err.msg, "run.job:2: line longer than 4096 bytes");
	free(text);
	free(v);
}

static char *write_temp(const char *text, size_t len, mode_t mode)
{
	char *path = strdup("/tmp/test_job_XXXXXX");
	int fd;

	assert_non_null(path);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
	return path;
}

static void test_accounts_load(void **state)
{
	static const char text[] = "email,password\na@example.com,pw-Alpha1\nbad,pw-Bad1\n";
	struct job_accounts a;
	struct tr_error err;
	char *path, want[128];

	(void)state;
	path = write_temp(text, strlen(text), 0600);
	assert_int_equal(job_accounts_load(path, &a, &err), 0);
	assert_int_equal(a.n, 1);
	assert_string_equal(a.v[0].password, "pw-Alpha1");
	assert_int_equal(a.n_bad, 1);
	assert_int_equal(a.bad[0].line, 3);
	job_accounts_free(&a);

	assert_int_equal(chmod(path, 0644), 0);
	assert_int_equal(job_accounts_load(path, &a, &err), 0);
	assert_int_equal(a.n, 1);
	assert_int_equal(a.n_bad, 2);
	snprintf(want, sizeof(want),
		 "%s is readable by other users: it holds passwords; chmod 600 it", path);
	assert_int_equal(a.bad[0].line, 0);
	assert_string_equal(a.bad[0].what, want);
	assert_int_equal(a.bad[1].line, 3);
	job_accounts_free(&a);

	assert_int_equal(chmod(path, 0640), 0);
	assert_int_equal(job_accounts_load(path, &a, &err), 0);
	assert_int_equal(a.n_bad, 2);
	job_accounts_free(&a);

	/* too large: a sparse file just over the limit */
	assert_int_equal(truncate(path, ((off_t)64 << 20) + 1), 0);
	assert_int_equal(job_accounts_load(path, &a, &err), -1);
	assert_int_equal(err.kind, TR_ERR_USAGE);
	assert_non_null(strstr(err.msg, "larger than 64 MiB"));
	unlink(path);

	assert_int_equal(job_accounts_load(path, &a, &err), -1);
	assert_int_equal(err.kind, TR_ERR_USAGE);
	assert_non_null(strstr(err.msg, "cannot open"));
	assert_int_equal(a.n, 0);
	assert_int_equal(job_accounts_load("/tmp", &a, &err), -1);
	assert_non_null(strstr(err.msg, "not a regular file"));
	free(path);
}

static void test_email_valid(void **state)
{
	static const struct {
		const char *email;
		bool ok;
	} cases[] = {
		{ "a@example.com", true }, { "mario.rossi@azienda.it", true },
		{ "a+tag@sub.example.co.uk", true }, { "x@b.c", true },
		{ "\xc3\xa8@example.com", true },
		{ "", false }, { "@example.com", false }, { "a@", false },
		{ "a", false }, { "a@example", false }, { "a@@example.com", false },
		{ "a@b@example.com", false }, { "a@.example.com", false },
		{ "a@example.com.", false }, { "a@example..com", false },
		{ "a b@example.com", false }, { "a@exa mple.com", false },
		{ "a\t@example.com", false }, { "a@example.com\r", false },
		{ "a\x7f@example.com", false }, { " a@example.com", false },
	};
	char long_ok[256], long_bad[256];

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
		if (job_email_valid(cases[i].email) != cases[i].ok)
			fail_msg("\"%s\": %d, want %d", cases[i].email, !cases[i].ok, cases[i].ok);
	assert_false(job_email_valid(NULL));
	/* 254 characters is the most an address may have */
	memset(long_ok, 'a', sizeof(long_ok));
	memcpy(long_ok + 254 - 12, "@example.com", 13);
	assert_int_equal(strlen(long_ok), 254);
	assert_true(job_email_valid(long_ok));
	memset(long_bad, 'a', sizeof(long_bad));
	memcpy(long_bad + 255 - 12, "@example.com", 13);
	assert_false(job_email_valid(long_bad));
}

/* ---- job file ----------------------------------------------------------- */

struct want_setting {
	const char *key, *value;
	unsigned line;
};

static void check_job(const char *label, const char *text, const struct want_setting *w,
		      size_t n)
{
	struct job_file f;
	struct tr_error err;

	if (job_file_parse("run.job", text, strlen(text), &f, &err) != 0)
		fail_msg("%s: %s", label, err.msg);
	assert_string_equal(f.path, "run.job");
	if (f.n != n)
		fail_msg("%s: %zu settings, want %zu", label, f.n, n);
	for (size_t i = 0; i < n; i++)
		if (strcmp(f.v[i].key, w[i].key) != 0 || strcmp(f.v[i].value, w[i].value) != 0 ||
		    f.v[i].line != w[i].line)
			fail_msg("%s: setting %zu: %s=[%s] line %u, want %s=[%s] line %u", label, i,
				 f.v[i].key, f.v[i].value, f.v[i].line, w[i].key, w[i].value,
				 w[i].line);
	job_file_free(&f);
	assert_null(f.v);
}

static void test_job_file(void **state)
{
	static const struct want_setting w1[] = {
		{ "src", "203.0.113.10:993", 4 },
		{ "src-tls-name", "imap.old.example", 5 },
		{ "dst", "mail.new.example", 6 },
		{ "folder", "  Sent Items  ", 7 },
		{ "folder", "INBOX", 8 },
		{ "map", "Posta inviata=Sent", 9 },
		{ "map", "a\"b=c", 10 },
		{ "exclude", "Trash#old", 11 },
		{ "state", "", 12 },
		{ "report", "", 13 },
		{ "ca-file", "\"x\"", 14 },
	};
	static const struct want_setting w2[] = {
		{ "src", "a.example", 1 },
		{ "dst", "b.example", 2 },
		{ "parallel-accounts", "4", 4 },
	};
	static const struct want_setting w3[] = { { "accounts", "x.csv", 1 } };

	(void)state;
	check_job("comments, quotes, --keys, duplicates",
		  "# a job\n"
		  "\n"
		  "   # indented comment\n"
		  "src = 203.0.113.10:993\n"
		  "--src-tls-name=imap.old.example   \t\n"
		  "\tdst\t=\tmail.new.example\n"
		  "folder = \"  Sent Items  \"\n"
		  "folder = INBOX\n"
		  "map = Posta inviata=Sent\n"
		  "map = \"a\"\"b=c\"\n"
		  "exclude = Trash#old\n"
		  "state =\n"
		  "report = \"\"\n"
		  "--ca-file = \"\"\"x\"\"\"",
		  w1, ARRAY_SIZE(w1));
	check_job("CRLF", "src = a.example\r\ndst = b.example  \r\n\r\nparallel-accounts = 4\r\n",
		  w2, ARRAY_SIZE(w2));
	check_job("BOM", "\xef\xbb\xbf" "accounts = x.csv\n", w3, ARRAY_SIZE(w3));
	check_job("empty", "", NULL, 0);
	check_job("comments only", "# x\n\n#y = z\n", NULL, 0);
}

static void test_job_file_errors(void **state)
{
	static const struct {
		const char *text;
		const char *err;
	} cases[] = {
		{ "src = a\njust words\n", "run.job:2: expected \"key = value\"" },
		{ "\n\n = value\n", "run.job:3: empty key before '='" },
		{ "--= value\n", "run.job:1: empty key" },
		{ "folder = \"Sent\n", "run.job:1: unterminated quote" },
		{ "folder = \"Sent\"\"\n", "run.job:1: unterminated quote" },
		{ "map = \"Sent Items\"=\"Posta\"\n", "run.job:1: text after the closing quote" },
		{ "src = a\r\ndst\r\n", "run.job:2: expected" },
		{ "src = a\rdst = b\n", "run.job:1: control character (0x0d)" },
		{ "# ok \x1b\nfolder = a\x1b[2J\n", "run.job:2: control character (0x1b)" },
	};
	struct job_file f;
	struct tr_error err;

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		if (job_file_parse("run.job", cases[i].text, strlen(cases[i].text), &f, &err) != -1)
			fail_msg("\"%s\": parsed", cases[i].text);
		assert_int_equal(err.kind, TR_ERR_USAGE);
		if (strstr(err.msg, cases[i].err) == NULL)
			fail_msg("\"%s\": error \"%s\", want \"%s\"", cases[i].text, err.msg,
				 cases[i].err);
		assert_int_equal(f.n, 0);
		assert_null(f.path);
	}
	assert_int_equal(job_file_parse("run.job", "a = b\nc\0 = d\n", 12, &f, &err), -1);
	assert_string_equal(err.msg, "run.job:2: NUL byte");
}

static void test_job_file_load(void **state)
{
	static const char text[] = "accounts = accounts.csv\nparallel-accounts = 2\n";
	struct job_file f;
	struct tr_error err;
	char *path;

	(void)state;
	path = write_temp(text, strlen(text), 0644);
	assert_int_equal(job_file_load(path, &f, &err), 0);
	assert_string_equal(f.path, path);
	assert_int_equal(f.n, 2);
	assert_string_equal(f.v[1].key, "parallel-accounts");
	job_file_free(&f);
	unlink(path);
	assert_int_equal(job_file_load(path, &f, &err), -1);
	assert_int_equal(err.kind, TR_ERR_USAGE);
	free(path);
}

static void test_job_file_dir(void **state)
{
	static const struct {
		const char *path, *dir;
	} cases[] = {
		{ "jobs/run.job", "jobs" }, { "/etc/trasloco/run.job", "/etc/trasloco" },
		{ "run.job", "." }, { "/run.job", "/" }, { "./run.job", "." },
		{ "", "." }, { "a/b/", "a" }, { "a//b", "a" },
	};
	char *d;

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		d = job_file_dir(cases[i].path);
		assert_non_null(d);
		if (strcmp(d, cases[i].dir) != 0)
			fail_msg("\"%s\": \"%s\", want \"%s\"", cases[i].path, d, cases[i].dir);
		free(d);
	}
	d = job_file_dir(NULL);
	assert_string_equal(d, ".");
	free(d);
}

/* JOB_ACCOUNTS_NO_PASSWORD (OAuth2 on the sides that would need them):
 * addresses only, with or without a header; passwords given are kept. */
static void test_csv_no_password(void **state)
{
	const char *hdr = "email\nanna@x.test\nbruno@x.test\n";
	const char *bare = "anna@x.test\nbruno@x.test,pw2\n";
	struct job_accounts a;
	struct tr_error err;

	(void)state;
	assert_int_equal(job_accounts_parse("a.csv", hdr, strlen(hdr), &a, &err), -1);
	assert_non_null(strstr(err.msg, "no password column"));
	assert_int_equal(job_accounts_parse_opt("a.csv", hdr, strlen(hdr), JOB_ACCOUNTS_NO_PASSWORD,
						&a, &err), 0);
	assert_int_equal(a.n, 2);
	assert_int_equal(a.n_bad, 0);
	assert_null(a.v[0].password);
	assert_string_equal(a.v[1].email, "bruno@x.test");
	job_accounts_free(&a);
	assert_int_equal(job_accounts_parse("a.csv", bare, strlen(bare), &a, &err), 0);
	assert_int_equal(a.n, 1);          /* anna's row has no password */
	job_accounts_free(&a);
	assert_int_equal(job_accounts_parse_opt("a.csv", bare, strlen(bare),
						JOB_ACCOUNTS_NO_PASSWORD, &a, &err), 0);
	assert_int_equal(a.n, 2);
	assert_null(a.v[0].password);
	assert_string_equal(a.v[1].password, "pw2");
	job_accounts_free(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_csv_table),
		cmocka_unit_test(test_csv_no_password),
		cmocka_unit_test(test_csv_messages),
		cmocka_unit_test(test_csv_many),
		cmocka_unit_test(test_csv_many_bad),
		cmocka_unit_test(test_csv_field_limit),
		cmocka_unit_test(test_csv_field_overflow),
		cmocka_unit_test(test_csv_huge_field),
		cmocka_unit_test(test_secret_file_limit),
		cmocka_unit_test(test_job_file_line_limit),
		cmocka_unit_test(test_accounts_load),
		cmocka_unit_test(test_email_valid),
		cmocka_unit_test(test_job_file),
		cmocka_unit_test(test_job_file_errors),
		cmocka_unit_test(test_job_file_load),
		cmocka_unit_test(test_job_file_dir),
	};

	return cmocka_run_group_tests_name("job", tests, NULL, NULL);
}
