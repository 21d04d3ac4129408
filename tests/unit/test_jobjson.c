/* Unit tests of the API's request bodies (jobjson.h). */
#include "config.h"
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "job.h"
#include "jobconf.h"
#include "jobjson.h"
#include "secret.h"

struct parsed {
	struct job_config cfg;
	struct job_accounts ja;
	char *admin, *name;
	struct tr_error err;
	int r;
};

static void parse(struct parsed *p, const char *body)
{
	tr_error_clear(&p->err);
	p->r = jobjson_parse(body, strlen(body), &p->cfg, &p->ja, &p->admin, &p->name, &p->err);
}

static void done(struct parsed *p)
{
	secret_free(p->admin);
	free(p->name);
	job_accounts_free(&p->ja);
	jobconf_free(&p->cfg);
}

#define CSV "\"accounts_csv\": \"email,password\\na@b.test,pw1\\nnot-an-address,x\\nc@d.test,\\\"p,w\\\"\\n\""

static void test_job(void **state)
{
	struct parsed p;

	(void)state;
	parse(&p, "{\"name\": \"acme\", \"src\": \"10.0.0.1:993\", \"dst\": \"127.0.0.1\", "
		  "\"dst-tls\": \"starttls\", \"folder\": [\"INBOX\", \"Sent*\"], "
		  "\"map\": {\"Posta inviata\": \"Sent\"}, \"no-subscriptions\": true, "
		  "\"keep-names\": false, \"timeout\": 30, \"src-max-per-account\": 3, " CSV "}");
	assert_int_equal(p.r, 0);
	assert_string_equal(p.cfg.src.host, "10.0.0.1");
	assert_int_equal(p.cfg.src.port, 993);
	assert_string_equal(p.cfg.dst.host, "127.0.0.1");
	assert_int_equal(p.cfg.n_folders, 2);
	assert_int_equal(p.cfg.n_maps, 1);
	assert_string_equal(p.cfg.maps[0].from, "Posta inviata");
	assert_false(p.cfg.subscribe);
	assert_false(p.cfg.keep_names);
	assert_int_equal(p.cfg.timeout_s, 30);
	assert_int_equal(p.cfg.src_max_per_account, 3);
	assert_string_equal(p.name, "acme");
	assert_null(p.admin);
	/* the bad row skipped and named, as run does */
	assert_int_equal(p.ja.n, 2);
	assert_int_equal(p.ja.n_bad, 1);
	assert_int_equal(p.ja.bad[0].line, 3);
	assert_string_equal(p.ja.v[1].password, "p,w");
	done(&p);

	parse(&p, "{\"src\": \"a.test\", \"dst\": \"b.test\", \"dst-admin\": \"admin\", "
		  "\"dst-admin-password\": \"s3cret\", " CSV "}");
	assert_int_equal(p.r, 0);
	assert_string_equal(p.admin, "s3cret");
	done(&p);
}

/* Every refusal names what is wrong, never a password. */
static void test_refused(void **state)
{
	static const struct {
		const char *body, *says;
	} cases[] = {
		{ "{\"src\": ", "invalid JSON" },
		{ "[]", "JSON object" },
		{ "{\"src\": \"a.test\", \"dst\": \"b.test\"}", "accounts_csv" },
		{ "{\"dst\": \"b.test\", " CSV "}", "\"src\" is missing" },
		{ "{\"src\": \"a.test\", " CSV "}", "\"dst\" is missing" },
		{ "{\"src\": \"a.test\", \"dst\": \"b.test\", \"frob\": 1, " CSV "}", "unknown key \"frob\"" },
		{ "{\"src\": \"a.test\", \"dst\": \"b.test\", \"state\": \"/x\", " CSV "}", "not taken" },
		{ "{\"src\": \"a.test\", \"dst\": \"b.test\", \"accounts\": \"/x\", " CSV "}", "accounts_csv" },
		{ "{\"src\": \"a.test\", \"dst\": \"b.test\", \"user\": \"u\", " CSV "}", "accounts_csv" },
		{ "{\"src\": \"a.test\", \"dst\": \"b.test\", \"report\": \"/r\", " CSV "}", "not taken" },
		/* a command or a file of the workers' hosts: the operator's */
		{ "{\"src\": \"a.test\", \"dst\": \"b.test\", \"provision-cmd\": \"id\", " CSV "}",
		  "provisioning runs commands" },
		{ "{\"src\": \"a.test\", \"dst\": \"b.test\", \"provision\": "
		  "\"dovecot-passwd-file:/etc/passwd\", " CSV "}", "provisioning runs commands" },
		{ "{\"src\": \"a.test\", \"dst\": \"b.test\", \"provision-passwd-fields\": \":1\", "
		  CSV "}", "provisioning runs commands" },
		{ "{\"src\": \"a.test\", \"dst\": \"b.test\", \"timeout\": 1.5, " CSV "}", "whole number" },
		{ "{\"src\": \"a.test\", \"dst\": \"b.test\", \"timeout\": null, " CSV "}", "null" },
		{ "{\"src\": \"a.test\", \"dst\": \"b.test\", \"timeout\": \"x\", " CSV "}", "timeout" },
		{ "{\"src\": \"a.test\", \"dst\": \"b.test\", \"insecure\": \"yes\", " CSV "}", "flag" },
		{ "{\"src\": \"a.test\", \"dst\": \"b.test\", \"folder\": [1], " CSV "}", "string" },
		{ "{\"src\": \"a.test\", \"dst\": \"b.test\", \"src-tls\": [\"implicit\"], " CSV "}", "one value" },
		{ "{\"src\": \"a.test\", \"dst\": \"b.test\", \"ca-file\": \"ca.pem\", " CSV "}", "absolute" },
		{ "{\"src\": \"a.test\", \"dst\": \"b\\u007f.test\", " CSV "}", "control character" },
		{ "{\"src\": \"a.test\", \"dst\": \"10S.].0.2:.0.2:1\", " CSV "}", "bad server" },
		{ "{\"src\": \"a.test\", \"dst\": \"b.test:1:2\", " CSV "}", "IPv6" },
		{ "{\"src\": \"a.test\", \"dst\": \"b.test\", \"dst-admin\": \"adm\", " CSV "}", "dst-admin-password" },
		{ "{\"src\": \"a.test\", \"dst\": \"b.test\", \"dst-admin-password\": \"zz-secret\", " CSV "}", "without dst-admin" },
		{ "{\"src\": \"a.test\", \"dst\": \"b.test\", \"name\": \"\", " CSV "}", "name" },
		{ "{\"src\": \"a.test\", \"dst\": \"b.test\", \"name\": \"42\", " CSV "}", "not all digits" },
		{ "{\"src\": \"a.test\", \"dst\": \"b.test\", \"src\": \"c.test\", " CSV "}", "duplicate" },
		{ "{\"src\": \"a.test\", \"dst\": \"b.test\", \"accounts_csv\": \"email,password\\nx,y\\n\"}", "no usable account" },
		{ "{\"src\": \"a.test\", \"dst\": \"b.test\", \"accounts_csv\": \"\"}", "no usable account" },
	};
	struct parsed p;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		parse(&p, cases[i].body);
		if (p.r != -1 || strstr(p.err.msg, cases[i].says) == NULL)
			fail_msg("case %zu: r %d, \"%s\" does not say \"%s\"", i, p.r, p.err.msg,
				 cases[i].says);
		assert_int_equal(p.err.kind, TR_ERR_USAGE);
		assert_null(strstr(p.err.msg, "zz-secret"));
		assert_null(strstr(p.err.msg, "pw1"));
		assert_null(p.admin);
		assert_null(p.name);
		assert_int_equal(p.ja.n, 0);
		done(&p);
	}
}

static void test_pass(void **state)
{
	static const struct {
		const char *body, *kind;
		int every;
	} ok[] = {
		{ "{\"kind\": \"delta\"}", "delta", 0 },
		{ "{\"kind\": \"verify\"}", "verify", 0 },
		{ "{\"kind\": \"final\"}", "final", 0 },
		{ "{\"every\": \"6h\"}", "delta", 21600 },
		{ "{\"kind\": \"delta\", \"every\": \"30m\"}", "delta", 1800 },
		{ "{\"every\": \"1d\"}", "delta", 86400 },
		{ "{\"every\": \"2h30m\"}", "delta", 9000 },
		{ "{\"every\": \"2s\"}", "delta", 2 },
	};
	static const char *const bad[] = {
		"", "[]", "{}", "{\"kind\": \"full\"}", "{\"kind\": 1}", "{\"every\": \"6x\"}",
		"{\"every\": \"0s\"}", "{\"every\": \"367d\"}", "{\"every\": 6}",
		"{\"kind\": \"final\", \"every\": \"6h\"}", "{\"kind\": \"delta\", \"when\": 1}",
	};
	struct tr_error err;
	const char *kind;
	int every;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		assert_int_equal(jobjson_pass(ok[i].body, strlen(ok[i].body), &kind, &every, &err), 0);
		assert_string_equal(kind, ok[i].kind);
		assert_int_equal(every, ok[i].every);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		tr_error_clear(&err);
		if (jobjson_pass(bad[i], strlen(bad[i]), &kind, &every, &err) != -1 || kind != NULL ||
		    err.kind != TR_ERR_USAGE)
			fail_msg("pass body \"%s\" was taken", bad[i]);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_job),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_pass),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
