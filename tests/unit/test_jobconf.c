/* Unit tests for the job configuration (src/jobconf.c) and the ways it is
 * built: the command line (src/cli_opts.c), job files, spool jobs and the
 * spool's operator settings (src/jobdir.c), and key by key as a service
 * would. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "cli.h"
#include "job.h"
#include "jobconf.h"
#include "jobdir.h"

/* A value for every key, as it is written in a job file and on the
 * command line (NULL: a flag).  A key missing here fails test_every_key. */
static const struct {
	const char *key, *value;
} samples[] = {
	{ "src", "imap.old.example:143" },
	{ "since", "2026-11-01" },
	{ "before", "2026-12-01" },
	{ "trial", "5" },
	{ "final", NULL },
	{ "src-tls", "starttls" },
	{ "src-tls-name", "imap.old.example" },
	{ "dst", "[2001:db8::1]:993" },
	{ "dst-tls", "none" },
	{ "dst-tls-name", "mail.new.example" },
	{ "ca-file", "/etc/trasloco/ca.pem" },
	{ "insecure", NULL },
	{ "allow-plaintext", NULL },
	{ "accounts", "/srv/acme/accounts.csv" },
	{ "user", "mario.rossi@azienda.it" },
	{ "src-user", "mrossi" },
	{ "dst-user", "mario" },
	{ "src-password-file", "/srv/acme/src.pw" },
	{ "dst-password-file", "/srv/acme/dst.pw" },
	{ "dst-admin", "admin@new.example" },
	{ "dst-admin-password-file", "/srv/acme/admin.pw" },
	{ "dst-admin-separator", "*" },
	{ "src-admin", "master@old.example" },
	{ "src-admin-password-file", "/srv/acme/src-admin.pw" },
	{ "src-admin-separator", "*" },
	{ "provision-cmd", "/usr/local/sbin/mkuser --quota 2G" },
	{ "provision", "dovecot-passwd-file:/etc/dovecot/users" },
	{ "provision-passwd-fields", ":5000:5000::/var/vmail/%d/%n::" },
	{ "src-auth", "xoauth2" },
	{ "src-preset", "gmail" },
	{ "copy-virtual-folders", NULL },
	{ "dst-auth", "oauthbearer" },
	{ "src-token-cmd", "/usr/local/bin/token --for src" },
	{ "dst-token-cmd", "/usr/local/bin/token --for dst" },
	{ "src-oauth-provider", "microsoft365" },
	{ "src-oauth-tenant", "contoso.onmicrosoft.com" },
	{ "src-oauth-client-id", "0b8e-4c1f" },
	{ "src-oauth-secret-file", "src-secret" },
	{ "src-oauth-cert-file", "src-cert.pem" },
	{ "src-oauth-key-file", "src-key.pem" },
	{ "src-oauth-token-url", "https://127.0.0.1:8443/token" },
	{ "dst-oauth-provider", "microsoft365" },
	{ "dst-oauth-tenant", "contoso.onmicrosoft.com" },
	{ "dst-oauth-client-id", "0b8e-4c1f" },
	{ "dst-oauth-secret-file", "dst-secret" },
	{ "dst-oauth-cert-file", "dst-cert.pem" },
	{ "dst-oauth-key-file", "dst-key.pem" },
	{ "dst-oauth-token-url", "https://127.0.0.1:8443/token" },
	{ "state", "/var/lib/trasloco/acme" },
	{ "folder", "Archivio/*" },
	{ "exclude", "Posta indesiderata" },
	{ "map", "Posta inviata=Sent" },
	{ "keep-names", NULL },
	{ "no-subscriptions", NULL },
	{ "content", NULL },
	{ "folders", NULL },
	{ "dry-run", NULL },
	{ "src-max-per-account", "2" },
	{ "dst-max-per-account", "3" },
	{ "src-max-connections", "8" },
	{ "dst-max-connections", "16" },
	{ "caps-per-egress", NULL },
	{ "parallel-accounts", "7" },
	{ "timeout", "30" },
	{ "retries", "2" },
	{ "batch-size", "8" },
	{ "batch-count", "50" },
	{ "src-max-bytes-per-second", "2M" },
	{ "src-max-messages-per-second", "20" },
	{ "src-max-bytes-per-day", "2500M" },
	{ "src-max-account-bytes-per-day", "2500M" },
	{ "dst-max-account-bytes-per-day", "1G" },
	{ "dst-max-bytes-per-second", "1500001" },
	{ "dst-max-messages-per-second", "50" },
	{ "dst-max-bytes-per-day", "3G" },
	{ "spool-dir", "/var/tmp/trasloco" },
	{ "report", "/srv/acme/report.json" },
	{ "report-csv", "/srv/acme/report.csv" },
	{ "log-dir", "/srv/acme/logs" },
	{ "quiet", NULL },
	{ "verbose", NULL },
	{ "debug", NULL },
	{ "no-progress", NULL },
};
#define N_SAMPLES (sizeof(samples) / sizeof(samples[0]))

static char *text_of(const struct job_config *cfg)
{
	char *t = jobconf_text(cfg);

	assert_non_null(t);
	return t;
}

static void assert_same(const struct job_config *a, const struct job_config *b)
{
	char *ta = text_of(a), *tb = text_of(b);

	if (strcmp(ta, tb) != 0)
		fail_msg("configurations differ:\n%s---\n%s", ta, tb);
	free(ta);
	free(tb);
}

/* The settings of job-file text applied with origin (a job file of dir by
 * default). */
static int apply_text(struct job_config *cfg, const char *name, const char *text,
		      const struct jobconf_origin *origin, struct tr_error *err)
{
	struct jobconf_origin o = { .from = JOBCONF_JOB_FILE, .dir = "." };
	struct job_file jf;
	int r;

	assert_int_equal(job_file_parse(name, text, strlen(text), &jf, err), 0);
	r = jobconf_apply(cfg, &jf, origin != NULL ? origin : &o, err);
	job_file_free(&jf);
	return r;
}

/* The command line's options (argv[0] is the command) applied. */
static int apply_argv(struct job_config *cfg, struct tr_error *err, ...)
{
	char *argv[32];
	int argc = 0, r;
	struct cli_args a;
	va_list ap;
	const char *s;

	argv[argc++] = strdup("run");
	va_start(ap, err);
	while ((s = va_arg(ap, const char *)) != NULL)
		argv[argc++] = strdup(s);
	va_end(ap);
	argv[argc] = NULL;
	r = cli_read_args(argc, argv, &a, err);
	if (r == 0)
		r = jobconf_apply(cfg, &a.settings, NULL, err);
	cli_args_free(&a);
	while (argc > 0)
		free(argv[--argc]);
	return r;
}

/* Every option of `trasloco run --help` is a key of the table, and every
 * key that is an option is in the help: they cannot drift apart. */
static void test_keys_are_the_help(void **state)
{
	const struct jobconf_key *keys;
	const char *p;
	size_t n, i, seen = 0;

	(void)state;
	keys = jobconf_keys(&n);
	assert_true(n >= 40);
	for (p = cli_usage_text; (p = strstr(p, "--")) != NULL; p += 2) {
		char name[64];
		size_t len = strspn(p + 2, "abcdefghijklmnopqrstuvwxyz-");
		const struct jobconf_key *k;

		if (len == 0 || len >= sizeof(name))
			continue;
		snprintf(name, sizeof(name), "%.*s", (int)len, p + 2);
		if (strcmp(name, "config") == 0 || strcmp(name, "help") == 0)
			continue;       /* the spool's own; usage */
		k = jobconf_key(name);
		if (k == NULL || !k->option)
			fail_msg("--%s is in the help but not an option of the key table", name);
		seen++;
	}
	assert_true(seen >= n - 1);
	for (i = 0; i < n; i++) {
		char opt[80];

		snprintf(opt, sizeof(opt), "--%s", keys[i].name);
		if (keys[i].option && strstr(cli_usage_text, opt) == NULL)
			fail_msg("%s is an option but not in the help", opt);
		/* one declaration each */
		assert_ptr_equal(jobconf_key(keys[i].name), &keys[i]);
	}
	/* accounts is the command line's argument, not an option */
	assert_non_null(jobconf_key("accounts"));
	assert_false(jobconf_key("accounts")->option);
	assert_null(jobconf_key("password"));
	assert_null(jobconf_key("help"));
}

/* Every key, from the command line, from a job file and from a (key,
 * value) pair: the same configuration, which differs from the default
 * by exactly that setting. */
static void test_every_key(void **state)
{
	const struct jobconf_key *keys;
	struct tr_error err;
	size_t n, i, j;

	(void)state;
	keys = jobconf_keys(&n);
	for (i = 0; i < n; i++) {
		struct job_config a, b, c;
		char line[256], *t;

		for (j = 0; j < N_SAMPLES; j++)
			if (strcmp(samples[j].key, keys[i].name) == 0)
				break;
		if (j == N_SAMPLES)
			fail_msg("no sample value for the key %s", keys[i].name);
		assert_int_equal(samples[j].value != NULL, keys[i].takes_value);

		jobconf_init(&a, JOB_RUN);
		jobconf_init(&b, JOB_RUN);
		jobconf_init(&c, JOB_RUN);
		if (keys[i].option) {
			char opt[80];

			snprintf(opt, sizeof(opt), "--%s", keys[i].name);
			if (apply_argv(&a, &err, opt, samples[j].value, NULL) != 0)
				fail_msg("%s: %s", opt, err.msg);
		} else {
			assert_int_equal(jobconf_set(&a, keys[i].name, samples[j].value, NULL,
						     &err), 0);
		}
		snprintf(line, sizeof(line), "%s = %s\n", keys[i].name,
			 samples[j].value != NULL ? samples[j].value : "yes");
		if (apply_text(&b, "t.job", line, NULL, &err) != 0)
			fail_msg("%s: %s", line, err.msg);
		if (jobconf_set(&c, keys[i].name, samples[j].value != NULL ? samples[j].value :
				"yes", NULL, &err) != 0)
			fail_msg("%s: %s", keys[i].name, err.msg);
		assert_same(&a, &b);
		assert_same(&a, &c);
		t = text_of(&a);
		if (strcmp(t, line) != 0)
			fail_msg("%s gave \"%s\"", line, t);
		free(t);
		jobconf_free(&a);
		jobconf_free(&b);
		jobconf_free(&c);
	}
}

/* The typed fields behind some keys. */
static void test_values(void **state)
{
	struct job_config cfg;
	struct tr_error err;

	(void)state;
	jobconf_init(&cfg, JOB_RUN);
	assert_true(cfg.subscribe);
	assert_true(cfg.progress);
	assert_int_equal(cfg.batch_bytes, 16u << 20);
	assert_int_equal(apply_text(&cfg, "t.job", "batch-size = 8\nno-subscriptions = yes\n"
				    "dst-tls = starttls\nquiet = on\nmap = A=B=C\n"
				    "dst-admin-separator = *\n", NULL, &err), 0);
	assert_int_equal(cfg.batch_bytes, 8u << 20);
	assert_false(cfg.subscribe);
	assert_int_equal(cfg.dst.tls, JOBCONF_TLS_STARTTLS);
	assert_true(cfg.dst.tls_set);
	assert_int_equal(cfg.verbosity, -1);
	assert_int_equal(cfg.n_maps, 1);
	assert_string_equal(cfg.maps[0].from, "A");
	assert_string_equal(cfg.maps[0].to, "B=C");
	assert_int_equal(cfg.dst_admin_separator, '*');
	/* "no" leaves a flag as it was: flags only turn on */
	assert_int_equal(apply_text(&cfg, "t.job", "no-subscriptions = no\nquiet = off\n", NULL,
				    &err), 0);
	assert_false(cfg.subscribe);
	assert_int_equal(cfg.verbosity, -1);
	jobconf_free(&cfg);
}

/* Errors name the file, the line and the key; the command line's name the
 * option. */
static void test_errors(void **state)
{
	static const struct {
		const char *text, *msg;
	} bad[] = {
		{ "bogus = 1", "t.job:2: unknown setting \"bogus\"" },
		{ "password = s3cret", "t.job:2: unknown setting \"password\"" },
		{ "help = yes", "t.job:2: unknown setting \"help\"" },
		{ "timeout = 0", "t.job:2: timeout wants a number from 1 to 86400, not \"0\"" },
		{ "timeout = 9x", "t.job:2: timeout wants a number from 1 to 86400" },
		{ "batch-size = 2048", "t.job:2: batch-size wants a number from 1 to 1024" },
		{ "batch-count = 251", "t.job:2: batch-count wants a number from 1 to 250" },
		{ "insecure = maybe", "t.job:2: insecure wants yes or no" },
		{ "src-tls = maybe", "t.job:2: bad TLS mode \"maybe\"" },
		{ "src = host:0", "t.job:2: bad port in \"host:0\"" },
		{ "map = x", "t.job:2: map wants 'OLD=NEW', not \"x\"" },
		{ "dst-admin-separator = ab", "t.job:2: dst-admin-separator wants one character" },
		{ "src-auth = plain", "t.job:2: src-auth wants password, xoauth2 or oauthbearer" },
	};
	struct job_config cfg;
	struct tr_error err;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char text[256];

		jobconf_init(&cfg, JOB_RUN);
		snprintf(text, sizeof(text), "# a job\n%s\n", bad[i].text);
		if (apply_text(&cfg, "t.job", text, NULL, &err) != -1)
			fail_msg("\"%s\" was taken", bad[i].text);
		if (strstr(err.msg, bad[i].msg) != err.msg)
			fail_msg("\"%s\": \"%s\", want \"%s\"", bad[i].text, err.msg, bad[i].msg);
		assert_int_equal(err.kind, TR_ERR_USAGE);
		jobconf_free(&cfg);
	}
	jobconf_init(&cfg, JOB_RUN);
	assert_int_equal(apply_argv(&cfg, &err, "--timeout", "0", NULL), -1);
	assert_string_equal(err.msg, "--timeout wants a number from 1 to 86400, not \"0\"");
	assert_int_equal(jobconf_set(&cfg, "bogus", "1", NULL, &err), -1);
	assert_string_equal(err.msg, "unknown setting \"bogus\"");
	assert_int_equal(jobconf_set(&cfg, "timeout", NULL, NULL, &err), -1);
	assert_string_equal(err.msg, "--timeout needs a value");
	/* a flag without a value is on */
	assert_int_equal(jobconf_set(&cfg, "keep-names", NULL, NULL, &err), 0);
	assert_true(cfg.keep_names);
	jobconf_free(&cfg);
}

/* Relative paths: from a job file's directory, from an operator config's,
 * as given on the command line; other values are never paths. */
/* A setting whose value, made absolute, would not fit a job-file line is
 * refused: jobconf_text's lines must read back (a queued job is stored so). */
static void test_value_fits_a_line(void **state)
{
	struct jobconf_origin o = { .from = JOBCONF_JOB_FILE, .file = "t.job", .line = 2,
				    .dir = "/srv/acme" };
	struct job_config cfg;
	struct tr_error err;
	struct job_file jf;
	char *v = malloc(JOB_MAX_LINE), *text;

	(void)state;
	assert_non_null(v);
	memset(v, 'a', JOB_MAX_LINE - 20);
	v[JOB_MAX_LINE - 20] = '\0';
	jobconf_init(&cfg, JOB_RUN);
	tr_error_clear(&err);
	/* fits as given; not once /srv/acme/ is put before it */
	assert_int_equal(jobconf_set(&cfg, "accounts", v, &o, &err), -1);
	assert_int_equal(err.kind, TR_ERR_USAGE);
	assert_non_null(strstr(err.msg, "too long"));
	assert_non_null(strstr(err.msg, "t.job:2"));
	v[JOB_MAX_LINE - 60] = '\0';
	assert_int_equal(jobconf_set(&cfg, "accounts", v, &o, &err), 0);
	text = jobconf_text(&cfg);
	assert_non_null(text);
	assert_int_equal(job_file_parse("back.job", text, strlen(text), &jf, &err), 0);
	job_file_free(&jf);
	free(text);
	jobconf_free(&cfg);
	free(v);
}

static void test_relative_paths(void **state)
{
	char tmpl[] = "/tmp/test_jobconf_XXXXXX", path[512], want[512];
	const char *dir;
	struct job_config cfg;
	struct tr_error err;
	struct jobconf_origin op;
	FILE *f;

	(void)state;
	dir = mkdtemp(tmpl);
	assert_non_null(dir);
	snprintf(path, sizeof(path), "%s/acme.job", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("accounts = csv/acme.csv\nreport = ../r.json\nstate = /var/lib/t\n"
	      "ca-file = ca.pem\nfolder = csv/x\nsrc-tls-name = a/b\nlog-dir = logs\n", f);
	fclose(f);
	jobconf_init(&cfg, JOB_RUN);
	assert_int_equal(jobconf_load(&cfg, path, &err), 0);
	snprintf(want, sizeof(want), "%s/csv/acme.csv", dir);
	assert_string_equal(cfg.accounts, want);
	snprintf(want, sizeof(want), "%s/../r.json", dir);
	assert_string_equal(cfg.report, want);
	assert_string_equal(cfg.state_dir, "/var/lib/t");
	snprintf(want, sizeof(want), "%s/ca.pem", dir);
	assert_string_equal(cfg.ca_file, want);
	snprintf(want, sizeof(want), "%s/logs", dir);
	assert_string_equal(cfg.log_dir, want);
	assert_string_equal(cfg.folders[0], "csv/x");
	assert_string_equal(cfg.src.tls_name, "a/b");
	/* the command line's are the working directory's */
	assert_int_equal(apply_argv(&cfg, &err, "--report", "out/r.json", NULL), 0);
	assert_string_equal(cfg.report, "out/r.json");
	/* an operator's config: its directory */
	op = (struct jobconf_origin){ .from = JOBCONF_OPERATOR, .file = "/etc/t/spool.conf",
				      .dir = "/etc/t" };
	assert_int_equal(jobconf_set(&cfg, "ca-file", "ca.pem", &op, &err), 0);
	assert_string_equal(cfg.ca_file, "/etc/t/ca.pem");
	jobconf_free(&cfg);
	unlink(path);
	rmdir(dir);
}

/* The spool's rules through the setter: the operator's keys are refused
 * in a spool job, accounts in the operator's config; a spool job's paths
 * are confined (test_cli has every case of confinement). */
static void test_spool_rules(void **state)
{
	const struct jobconf_key *keys;
	struct jobconf_origin job = { .from = JOBCONF_SPOOL_JOB, .file = "/sp/running/j.job",
				      .line = 4, .dir = "/sp", .dir_real = "/sp" };
	struct jobconf_origin op = { .from = JOBCONF_OPERATOR, .file = "/etc/spool.conf",
				     .line = 2, .dir = "/etc" };
	struct job_config cfg;
	struct tr_error err;
	size_t n, i, n_op = 0;

	(void)state;
	keys = jobconf_keys(&n);
	jobconf_init(&cfg, JOB_RUN);
	for (i = 0; i < n; i++) {
		char want[256];
		size_t j;

		for (j = 0; j < N_SAMPLES && strcmp(samples[j].key, keys[i].name) != 0; j++)
			;
		assert_true(j < N_SAMPLES);
		if (!keys[i].operator_only) {
			/* a path of the sample may not exist in /sp: only the
			 * refusal of the operator's keys is looked at here */
			if (keys[i].path == JOBCONF_NOT_PATH &&
			    jobconf_set(&cfg, keys[i].name, samples[j].value, &job, &err) != 0)
				fail_msg("%s refused in a spool job: %s", keys[i].name, err.msg);
			continue;
		}
		n_op++;
		assert_int_equal(jobconf_set(&cfg, keys[i].name, samples[j].value, &job, &err), -1);
		snprintf(want, sizeof(want), "/sp/running/j.job:4: \"%s\" is not taken from a spool "
			 "job", keys[i].name);
		if (strstr(err.msg, want) != err.msg)
			fail_msg("%s: \"%s\"", keys[i].name, err.msg);
		/* and taken from the operator */
		assert_int_equal(jobconf_set(&cfg, keys[i].name, samples[j].value, &op, &err), 0);
	}
	/* TLS (3), the admins (2 + 2), provisioning (3), the token commands and
	 * flows (2 + 14): a spool job may not run a command */
	assert_int_equal(n_op, 26);
	assert_true(cfg.insecure && cfg.allow_plaintext);
	assert_string_equal(cfg.dst_admin, "admin@new.example");
	assert_string_equal(cfg.provision_cmd, "/usr/local/sbin/mkuser --quota 2G");
	assert_int_equal(jobconf_set(&cfg, "accounts", "a.csv", &op, &err), -1);
	assert_string_equal(err.msg, "/etc/spool.conf:2: accounts is set by each job, not here");
	assert_int_equal(jobconf_set(&cfg, "report", "/elsewhere/r.json", &job, &err), -1);
	assert_string_equal(err.msg, "/sp/running/j.job:4: report = \"/elsewhere/r.json\": outside "
			    "the spool directory (a spool job's paths stay in it)");
	assert_int_equal(jobconf_set(&cfg, "report", "/sp/new/r.json", &job, &err), 0);
	assert_string_equal(cfg.report, "/sp/new/r.json");
	jobconf_free(&cfg);
}

/* argv (at most 15 strings, borrowed) from the arguments; returns argc. */
static int make_argv(char **argv, ...)
{
	va_list ap;
	const char *a;
	int argc = 0;

	va_start(ap, argv);
	while ((a = va_arg(ap, const char *)) != NULL && argc < 15)
		argv[argc++] = (char *)a;
	va_end(ap);
	argv[argc] = NULL;
	return argc;
}

static void parse(struct job_file *jf, const char *name, const char *text)
{
	struct tr_error err;

	assert_int_equal(job_file_parse(name, text, strlen(text), jf, &err), 0);
}

/* Precedence: command line > a spool's operator config > the job file;
 * lists grow in that order. */
static void test_precedence(void **state)
{
	char tmpl[] = "/tmp/test_jobconf_XXXXXX", path[512], want[600];
	const char *dir;
	char *argv[16];
	struct job_config cfg;
	struct tr_error err;
	struct job_file jf, conf;
	struct jobdir_op op[2];
	struct cli_args a;
	char *cmd[] = { (char *)"spool", (char *)"--retries", (char *)"7", (char *)"--folder",
			(char *)"C", NULL };
	FILE *f;
	int argc;

	(void)state;
	dir = mkdtemp(tmpl);
	assert_non_null(dir);
	snprintf(path, sizeof(path), "%s/acme.job", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("accounts = acme.csv\nsrc = a.example\ndst = b.example\ntimeout = 10\n"
	      "retries = 2\nfolder = A\nparallel-accounts = 2\n", f);
	fclose(f);

	/* the command line over the job file it names (getopt permutes
	 * argv: each call gets a fresh one) */
	argc = make_argv(argv, "run", "--timeout", "20", path, "--folder", "B", "--state",
			 "/tmp/x", NULL);
	assert_int_equal(cli_parse(JOB_RUN, argc, argv, &cfg, &err), 0);
	assert_int_equal(cfg.timeout_s, 20);
	assert_int_equal(cfg.retries, 2);
	assert_int_equal(cfg.n_folders, 2);
	assert_string_equal(cfg.folders[0], "A");
	assert_string_equal(cfg.folders[1], "B");
	assert_string_equal(cfg.name, path);
	snprintf(want, sizeof(want), "%s/acme.csv", dir);
	assert_string_equal(cfg.accounts, want);
	jobconf_free(&cfg);
	/* an accounts file named too wins over the job's */
	argc = make_argv(argv, "run", path, "other.csv", "--state", "/tmp/x", NULL);
	assert_int_equal(cli_parse(JOB_RUN, argc, argv, &cfg, &err), 0);
	assert_string_equal(cfg.accounts, "other.csv");
	jobconf_free(&cfg);
	/* but two accounts files are one too many */
	argc = make_argv(argv, "run", "first.csv", "other.csv", "--state", "/tmp/x", NULL);
	assert_int_equal(cli_parse(JOB_RUN, argc, argv, &cfg, &err), -1);
	assert_string_equal(err.msg, "one accounts file or job file, please");
	jobconf_free(&cfg);

	/* a spool job: the job, then the operator's config, then the spool's
	 * command line; the spool's report path last */
	parse(&jf, "/sp/running/2026-acme.job", "accounts = acme.csv\nsrc = a.example\n"
	      "dst = b.example\ntimeout = 10\nretries = 2\nfolder = A\nparallel-accounts = 2\n"
	      "report = r.json\n");
	parse(&conf, "/etc/spool.conf", "timeout = 30\nretries = 3\nfolder = B\nstate = st\n");
	op[0] = (struct jobdir_op){ .settings = &conf,
				    .origin = { .from = JOBCONF_OPERATOR, .dir = "/etc" } };
	assert_int_equal(cli_read_args(5, cmd, &a, &err), 0);
	op[1] = (struct jobdir_op){ .settings = &a.settings, .origin = { .from = JOBCONF_CALLER } };
	assert_int_equal(jobdir_job_config("/sp", "/sp", &jf, "/sp/running/2026-acme.json", op, 2,
					   &cfg, &err), 0);
	assert_int_equal(cfg.timeout_s, 30);            /* the operator's over the job's */
	assert_int_equal(cfg.retries, 7);               /* the command line's over both */
	assert_int_equal(cfg.parallel_accounts, 2);     /* the job's own */
	assert_int_equal(cfg.n_folders, 3);
	assert_string_equal(cfg.folders[0], "A");
	assert_string_equal(cfg.folders[1], "B");
	assert_string_equal(cfg.folders[2], "C");
	assert_string_equal(cfg.state_dir, "/etc/st");  /* the operator's, from its directory */
	assert_string_equal(cfg.report, "/sp/running/2026-acme.json");
	assert_string_equal(cfg.accounts, "/sp/acme.csv");
	assert_string_equal(cfg.name, "/sp/running/2026-acme.job");
	jobconf_free(&cfg);
	job_file_free(&jf);
	/* without state anywhere: the spool's, by the job's name */
	parse(&jf, "/sp/running/2026-acme.job", "accounts = acme.csv\nsrc = a.example\n"
	      "dst = b.example\n");
	assert_int_equal(jobdir_job_config("/sp", "/sp", &jf, NULL, op + 1, 1, &cfg, &err), 0);
	assert_string_equal(cfg.state_dir, "/sp/state/2026-acme");
	assert_null(cfg.report);
	jobconf_free(&cfg);
	job_file_free(&jf);
	/* a job without accounts is refused when finished */
	parse(&jf, "/sp/running/j.job", "src = a.example\ndst = b.example\n");
	assert_int_equal(jobdir_job_config("/sp", "/sp", &jf, NULL, op, 2, &cfg, &err), -1);
	assert_non_null(strstr(err.msg, "name an accounts CSV or a job file"));
	jobconf_free(&cfg);
	job_file_free(&jf);

	job_file_free(&conf);
	cli_args_free(&a);
	unlink(path);
	rmdir(dir);
}

/* A service builds a job from (key, value) pairs only: the same
 * configuration as the job file that says the same. */
static void test_pairs_equal_job_file(void **state)
{
	static const char *const pairs[][2] = {
		{ "accounts", "/srv/acme/accounts.csv" },
		{ "src", "203.0.113.10:993" }, { "src-tls", "implicit" },
		{ "src-tls-name", "imap.old.example.com" },
		{ "dst", "mail.new.example.com:143" }, { "dst-tls", "starttls" },
		{ "dst-tls-name", "mail.new.example.com" },
		{ "ca-file", "/etc/trasloco/private-ca.pem" },
		{ "dst-admin", "migration-admin@new.example.com" },
		{ "dst-admin-password-file", "/etc/trasloco/dst-admin.pw" },
		{ "parallel-accounts", "4" }, { "src-max-per-account", "2" },
		{ "dst-max-per-account", "4" }, { "src-max-connections", "8" },
		{ "dst-max-connections", "16" }, { "state", "/var/lib/trasloco" },
		{ "report", "/srv/acme/reports/example-report.json" },
		{ "report-csv", "/srv/acme/reports/example-report.csv" },
		{ "folder", "INBOX" }, { "folder", "Posta inviata" }, { "folder", "Archivio/*" },
		{ "exclude", "Archivio/2009*" }, { "exclude", "Trash" },
		{ "map", "Posta inviata=Sent" }, { "map", "Clienti \"VIP\"=Customers/VIP" },
		{ "no-subscriptions", "yes" }, { "timeout", "60" }, { "batch-size", "4" },
	};
	static const char job[] =
		"# as jobs/example.job, relative paths from the file's directory\n"
		"accounts = accounts.csv\n"
		"src = 203.0.113.10:993\nsrc-tls = implicit\nsrc-tls-name = imap.old.example.com\n"
		"--dst = mail.new.example.com:143\ndst-tls = starttls\n"
		"dst-tls-name = mail.new.example.com\n"
		"ca-file = /etc/trasloco/private-ca.pem\n"
		"dst-admin = migration-admin@new.example.com\n"
		"dst-admin-password-file = /etc/trasloco/dst-admin.pw\n"
		"parallel-accounts = 4\nsrc-max-per-account = 2\ndst-max-per-account = 4\n"
		"src-max-connections = 8\ndst-max-connections = 16\n"
		"state = /var/lib/trasloco\n"
		"report = reports/example-report.json\nreport-csv = reports/example-report.csv\n"
		"folder = INBOX\nfolder = \"Posta inviata\"\nfolder = Archivio/*\n"
		"exclude = Archivio/2009*\nexclude = Trash\n"
		"map = Posta inviata=Sent\nmap = \"Clienti \"\"VIP\"\"=Customers/VIP\"\n"
		"no-subscriptions = yes\ntimeout = 60\nbatch-size = 4\n";
	struct jobconf_origin file = { .from = JOBCONF_JOB_FILE, .dir = "/srv/acme" };
	struct job_config a, b, c;
	struct tr_error err;
	char *text;
	size_t i;

	(void)state;
	jobconf_init(&a, JOB_RUN);
	for (i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++)
		if (jobconf_set(&a, pairs[i][0], pairs[i][1], NULL, &err) != 0)
			fail_msg("%s: %s", pairs[i][0], err.msg);
	assert_int_equal(jobconf_finish(&a, &err), 0);
	jobconf_init(&b, JOB_RUN);
	assert_int_equal(apply_text(&b, "/srv/acme/acme.job", job, &file, &err), 0);
	assert_int_equal(jobconf_finish(&b, &err), 0);
	assert_same(&a, &b);
	assert_string_equal(b.maps[1].from, "Clienti \"VIP\"");
	assert_false(b.subscribe);
	assert_int_equal(b.batch_bytes, 4u << 20);

	/* and the text of a configuration is a job file that gives it back */
	text = text_of(&a);
	jobconf_init(&c, JOB_RUN);
	assert_int_equal(apply_text(&c, "x.job", text, NULL, &err), 0);
	assert_same(&a, &c);
	assert_non_null(strstr(text, "map = Clienti \"VIP\"=Customers/VIP\n"));
	free(text);
	jobconf_free(&a);
	jobconf_free(&b);
	jobconf_free(&c);

	/* values a job file must quote come back quoted */
	jobconf_init(&a, JOB_RUN);
	assert_int_equal(jobconf_set(&a, "folder", " Spazi ", NULL, &err), 0);
	assert_int_equal(jobconf_set(&a, "folder", "\"Virgolette\"", NULL, &err), 0);
	assert_int_equal(jobconf_set(&a, "exclude", "", NULL, &err), 0);
	text = text_of(&a);
	assert_string_equal(text, "folder = \" Spazi \"\nfolder = \"\"\"Virgolette\"\"\"\n"
			    "exclude = \"\"\n");
	jobconf_init(&c, JOB_RUN);
	assert_int_equal(apply_text(&c, "x.job", text, NULL, &err), 0);
	assert_same(&a, &c);
	assert_string_equal(c.folders[0], " Spazi ");
	free(text);
	jobconf_free(&a);
	jobconf_free(&c);
}

/* jobconf_finish: defaults that depend on other settings, and checks of
 * the combination. */
static void test_finish(void **state)
{
	static const struct {
		enum job_kind kind;
		const char *text, *msg;
	} bad[] = {
		{ JOB_MIGRATE, "dst = b\nuser = u@x\n", "--src HOST[:PORT] is required" },
		{ JOB_MIGRATE, "src = a\nuser = u@x\n", "--dst HOST[:PORT] is required" },
		{ JOB_MIGRATE, "src = a\ndst = b\n", "--user EMAIL is required" },
		{ JOB_MIGRATE, "src = a\ndst = b\nsrc-user = x\n", "--user EMAIL is required" },
		{ JOB_MIGRATE, "src = 192.0.2.1\nsrc-tls = none\ndst = b\nuser = u@x\n",
		  "--src-tls none would send passwords in clear to 192.0.2.1" },
		{ JOB_RUN, "src = a\ndst = b\n", "name an accounts CSV or a job file" },
		{ JOB_RUN, "accounts = a.csv\nsrc = a\ndst = b\nuser = u@x\n",
		  "accounts and their passwords come from the CSV" },
		{ JOB_CHECK, "accounts = a.csv\nsrc = a\ndst = b\nsrc-password-file = p\n",
		  "accounts and their passwords come from the CSV" },
		{ JOB_RUN, "accounts = a.csv\nsrc = a\ndst = b\ncontent = yes\n",
		  "--content is an option of verify" },
		{ JOB_RUN, "accounts = a.csv\nsrc = a\ndst = b\ndst-admin-password-file = f\n",
		  "--dst-admin-password-file needs --dst-admin" },
		{ JOB_RUN, "accounts = a.csv\nsrc = a\ndst = b\nsrc-admin-password-file = f\n",
		  "--src-admin-password-file needs --src-admin" },
		{ JOB_RUN, "accounts = a.csv\nsrc = a\ndst = b\nprovision-cmd = x\n"
		  "provision = dovecot-passwd-file:/p\n", "one or the other" },
		{ JOB_RUN, "accounts = a.csv\nsrc = a\ndst = b\nprovision = dovecot-passwd-file:p\n",
		  "ABSOLUTE/PATH" },
		{ JOB_RUN, "accounts = a.csv\nsrc = a\ndst = b\nprovision = ldap:/p\n",
		  "ABSOLUTE/PATH" },
		{ JOB_RUN, "accounts = a.csv\nsrc = a\ndst = b\nprovision-passwd-fields = :1\n",
		  "--provision-passwd-fields needs --provision" },
		{ JOB_RUN, "accounts = a.csv\nsrc = a\ndst = b\nprovision = dovecot-passwd-file:/p\n"
		  "provision-passwd-fields = 1:2\n", "begins with ':'" },
		{ JOB_PROVISION, "accounts = a.csv\n", "provision needs --provision-cmd" },
		{ JOB_RUN, "accounts = a.csv\nsrc = a\ndst = b\nsrc-auth = xoauth2\n",
		  "--src-auth xoauth2 needs either --src-token-cmd CMD or --src-oauth-provider" },
		{ JOB_RUN, "accounts = a.csv\nsrc = a\ndst = b\nsrc-auth = xoauth2\n"
		  "src-oauth-provider = microsoft365\nsrc-oauth-client-id = c\n"
		  "src-oauth-tenant = t\n", "--src-oauth-secret-file, or --src-oauth-cert-file" },
		{ JOB_RUN, "accounts = a.csv\nsrc = a\ndst = b\nsrc-auth = xoauth2\n"
		  "src-oauth-provider = yahoo\n", "wants microsoft365 or google" },
		{ JOB_RUN, "accounts = a.csv\nsrc = a\ndst = b\ndst-oauth-tenant = t\n",
		  "the --dst-oauth-* settings need --dst-oauth-provider" },
		{ JOB_RUN, "accounts = a.csv\nsrc = a\ndst = b\ndst-token-cmd = t\n",
		  "--dst-token-cmd needs --dst-auth xoauth2 or oauthbearer" },
		{ JOB_MIGRATE, "src = a\ndst = b\nuser = u@x\nsrc-auth = oauthbearer\n"
		  "src-token-cmd = t\nsrc-password-file = p\n",
		  "--src-auth oauthbearer takes no --src-password-file" },
		{ JOB_RUN, "accounts = a.csv\nsrc = a\ndst = b\ndst-auth = xoauth2\n"
		  "dst-token-cmd = t\ndst-admin = root\n", "no --dst-admin" },
		{ JOB_RUN, "accounts = a.csv\nsrc = a\ndst = b\nsrc-auth = xoauth2\n"
		  "src-token-cmd = t\nsrc-admin = root\n", "no --src-admin" },
	};
	struct job_config cfg;
	struct tr_error err;
	const char *home = getenv("HOME"), *xdg = getenv("XDG_STATE_HOME");
	char *saved_home = home != NULL ? strdup(home) : NULL;
	char *saved_xdg = xdg != NULL ? strdup(xdg) : NULL;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		jobconf_init(&cfg, bad[i].kind);
		assert_int_equal(apply_text(&cfg, "t.job", bad[i].text, NULL, &err), 0);
		if (jobconf_finish(&cfg, &err) != -1)
			fail_msg("\"%s\" was taken", bad[i].text);
		if (strstr(err.msg, bad[i].msg) == NULL)
			fail_msg("\"%s\": \"%s\", want \"%s\"", bad[i].text, err.msg, bad[i].msg);
		assert_int_equal(err.kind, TR_ERR_USAGE);
		jobconf_free(&cfg);
	}

	/* ports from TLS modes and back; logins; the state directory */
	setenv("XDG_STATE_HOME", "/xdg", 1);
	jobconf_init(&cfg, JOB_MIGRATE);
	assert_int_equal(apply_text(&cfg, "t.job", "src = a\ndst = b:10993\ndst-tls = implicit\n"
				    "src-user = old\ndst-user = new\n", NULL, &err), 0);
	assert_int_equal(jobconf_finish(&cfg, &err), 0);
	assert_int_equal(cfg.src.port, 993);
	assert_int_equal(cfg.src.tls, JOBCONF_TLS_IMPLICIT);
	assert_int_equal(cfg.dst.port, 10993);
	assert_string_equal(cfg.user, "old");
	assert_string_equal(cfg.state_dir, "/xdg/trasloco");
	jobconf_free(&cfg);
	unsetenv("XDG_STATE_HOME");
	setenv("HOME", "/home/u", 1);
	jobconf_init(&cfg, JOB_VERIFY);
	assert_int_equal(apply_text(&cfg, "t.job", "accounts = a.csv\nsrc = a:143\n"
				    "dst = 127.0.0.1\ndst-tls = none\ncontent = yes\n", NULL,
				    &err), 0);
	assert_int_equal(jobconf_finish(&cfg, &err), 0);
	assert_int_equal(cfg.src.tls, JOBCONF_TLS_STARTTLS);
	assert_int_equal(cfg.dst.port, 143);    /* plaintext to loopback: fine */
	assert_string_equal(cfg.state_dir, "/home/u/.local/state/trasloco");
	jobconf_free(&cfg);
	unsetenv("HOME");
	jobconf_init(&cfg, JOB_RUN);
	assert_int_equal(apply_text(&cfg, "t.job", "accounts = a.csv\nsrc = a\ndst = b\n", NULL,
				    &err), 0);
	assert_int_equal(jobconf_finish(&cfg, &err), -1);
	assert_non_null(strstr(err.msg, "give --state DIR"));
	jobconf_free(&cfg);
	if (saved_home != NULL)
		setenv("HOME", saved_home, 1);
	if (saved_xdg != NULL)
		setenv("XDG_STATE_HOME", saved_xdg, 1);
	free(saved_home);
	free(saved_xdg);
}

/* The command line: flags, short options, passwords refused and wiped,
 * --help, arguments. */
static void test_command_line(void **state)
{
	char pw[] = "--password=s3cret";
	char *argv[] = { (char *)"run", (char *)"-q", (char *)"--keep-names", (char *)"--keep",
			 (char *)"a.csv", (char *)"--src=x:1", NULL };
	char *argv_pw[] = { (char *)"run", pw, NULL };
	char *argv_help[] = { (char *)"run", (char *)"--help", NULL };
	struct cli_args a;
	struct tr_error err;

	(void)state;
	assert_int_equal(cli_read_args(6, argv, &a, &err), 0);
	assert_int_equal(a.settings.n, 4);
	assert_string_equal(a.settings.v[0].key, "quiet");
	assert_null(a.settings.v[0].value);
	assert_string_equal(a.settings.v[2].key, "keep-names");   /* an abbreviation */
	assert_string_equal(a.settings.v[3].key, "src");
	assert_string_equal(a.settings.v[3].value, "x:1");
	assert_int_equal(a.n_args, 1);
	assert_string_equal(a.args[0], "a.csv");
	cli_args_free(&a);
	assert_int_equal(cli_read_args(2, argv_pw, &a, &err), -1);
	assert_null(strstr(err.msg, "s3cret"));
	assert_null(strstr(pw, "s3cret"));
	cli_args_free(&a);
	assert_int_equal(cli_read_args(2, argv_help, &a, &err), 1);
	cli_args_free(&a);
}

/* Presets: their settings as if given where the preset is; later ones win;
 * the job's text says the preset and what differs from it. */
static void test_presets(void **state)
{
	struct job_config cfg, back;
	struct tr_error err;
	char *t;

	(void)state;
	jobconf_init(&cfg, JOB_RUN);
	assert_int_equal(jobconf_set(&cfg, "src-preset", "gmail", NULL, &err), 0);
	assert_int_equal(cfg.src_max_per_account, 15);
	assert_int_equal(cfg.src_auth, JOBCONF_AUTH_XOAUTH2);
	assert_true(cfg.skip_virtual);
	assert_false(cfg.copy_virtual);
	assert_int_equal(jobconf_set(&cfg, "src-max-per-account", "6", NULL, &err), 0);
	assert_int_equal(jobconf_set(&cfg, "copy-virtual-folders", NULL, NULL, &err), 0);
	t = jobconf_text(&cfg);
	assert_string_equal(t, "src-preset = gmail\ncopy-virtual-folders = yes\n"
			    "src-max-per-account = 6\n");
	jobconf_init(&back, JOB_RUN);
	assert_int_equal(apply_text(&back, "t.job", t, NULL, &err), 0);
	assert_int_equal(back.src_max_per_account, 6);
	assert_true(back.skip_virtual && back.copy_virtual);
	free(t);
	jobconf_free(&back);
	jobconf_free(&cfg);
	jobconf_init(&cfg, JOB_RUN);
	assert_int_equal(jobconf_set(&cfg, "src-preset", "microsoft365", NULL, &err), 0);
	assert_int_equal(cfg.src_max_per_account, 8);
	assert_false(cfg.skip_virtual);
	assert_int_equal(jobconf_set(&cfg, "src-preset", "yahoo", NULL, &err), -1);
	assert_non_null(strstr(err.msg, "wants gmail or microsoft365"));
	jobconf_free(&cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keys_are_the_help),
		cmocka_unit_test(test_every_key),
		cmocka_unit_test(test_presets),
		cmocka_unit_test(test_values),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_relative_paths),
		cmocka_unit_test(test_value_fits_a_line),
		cmocka_unit_test(test_spool_rules),
		cmocka_unit_test(test_precedence),
		cmocka_unit_test(test_pairs_equal_job_file),
		cmocka_unit_test(test_finish),
		cmocka_unit_test(test_command_line),
	};

	return cmocka_run_group_tests_name("jobconf", tests, NULL, NULL);
}
