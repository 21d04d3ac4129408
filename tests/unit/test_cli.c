/* Unit tests for what the command layer does to the process (src/cli.c). */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "cli.h"
#include "job.h"
#include "jobdir.h"

/* Whatever command runs, a crash must not leave a core file holding
 * passwords: cli_main makes the process non-dumpable, with RLIMIT_CORE 0. */
static void test_no_core_dumps(void **state)
{
	char *argv[] = { (char *)"trasloco", (char *)"version", NULL };
	struct rlimit rl = { RLIM_INFINITY, RLIM_INFINITY };

	(void)state;
	/* as a shell with `ulimit -c unlimited` would start it */
	(void)setrlimit(RLIMIT_CORE, &rl);
	assert_int_equal(prctl(PR_SET_DUMPABLE, 1, 0, 0, 0), 0);
	assert_int_equal(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), 1);

	assert_int_equal(cli_main(2, argv), EXIT_OK);
	assert_int_equal(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), 0);
	assert_int_equal(getrlimit(RLIMIT_CORE, &rl), 0);
	assert_int_equal(rl.rlim_cur, 0);
	assert_int_equal(rl.rlim_max, 0);
}

/* A spool job's settings as the spool takes them (jobdir_job_config): 0
 * with *o filled, or -1 with the error in err. */
static int parse_spool_job(const char *dir, const char *dir_real, const char *text,
			   struct job_config *o, struct tr_error *err)
{
	char job[512], full[2048];
	struct job_file jf;
	int r;

	snprintf(job, sizeof(job), "%s/running/t.job", dir);
	snprintf(full, sizeof(full), "src = a.example\ndst = b.example\n%s\n", text);
	assert_int_equal(job_file_parse(job, full, strlen(full), &jf, err), 0);
	r = jobdir_job_config(dir, dir_real, &jf, NULL, NULL, 0, o, err);
	job_file_free(&jf);
	return r;
}

/* The spool's rules for the paths and settings of a job. */
static void test_spool_job_paths(void **state)
{
	char tmpl[] = "/tmp/test_cli_spool_XXXXXX", want[1024], real[1024];
	const char *dir;
	struct job_config o;
	struct tr_error err;
	static const struct {
		const char *line, *err;
	} refused[] = {
		{ "accounts = /etc/passwd", "t.job:4: accounts = \"/etc/passwd\": outside the spool "
		  "directory" },
		{ "accounts = ../x.csv", "\"..\" is not allowed" },
		{ "accounts = csv/../../x.csv", "\"..\" is not allowed" },
		{ "report-csv = .", "the spool directory itself" },
		{ "report-csv = ./", "the spool directory itself" },
		{ "state = pending/x", "inside the spool's own pending/" },
		{ "log-dir = ./running", "inside the spool's own running/" },
		{ "report = .lock", "inside the spool's own .lock" },
		{ "accounts = link/x.csv", "/link is a symbolic link" },
		{ "accounts = fifo.csv", "/fifo.csv is not a regular file" },
		{ "accounts = csv", "/csv is not a regular file" },
		{ "state = csv/a.csv", "/csv/a.csv is not a directory" },
		{ "accounts = csv/a.csv/x", "/csv/a.csv is not a directory" },
		{ "accounts =", "an empty path" },
		{ "insecure = no", "\"insecure\" is not taken from a spool job" },
		{ "allow-plaintext = yes", "\"allow-plaintext\" is not taken" },
		{ "ca-file = csv/a.csv", "\"ca-file\" is not taken" },
		{ "dst-admin = admin", "\"dst-admin\" is not taken" },
		{ "dst-admin-password-file = csv/a.csv", "\"dst-admin-password-file\" is not taken" },
	};
	FILE *f;

	(void)state;
	dir = mkdtemp(tmpl);
	assert_non_null(dir);
	assert_non_null(realpath(dir, real));
	snprintf(want, sizeof(want), "%s/csv", dir);
	assert_int_equal(mkdir(want, 0700), 0);
	snprintf(want, sizeof(want), "%s/csv/a.csv", dir);
	f = fopen(want, "w");
	assert_non_null(f);
	fclose(f);
	snprintf(want, sizeof(want), "%s/fifo.csv", dir);
	assert_int_equal(mkfifo(want, 0600), 0);
	snprintf(want, sizeof(want), "%s/link", dir);
	assert_int_equal(symlink("/tmp", want), 0);

	/* relative, normalised; absolute inside the spool; not there yet */
	assert_int_equal(parse_spool_job(dir, real, "accounts = ./csv//a.csv\n"
					 "report-csv = reports/new/r.csv", &o, &err), 0);
	snprintf(want, sizeof(want), "%s/csv/a.csv", dir);
	assert_string_equal(o.accounts, want);
	snprintf(want, sizeof(want), "%s/reports/new/r.csv", dir);
	assert_string_equal(o.report_csv, want);
	jobconf_free(&o);
	snprintf(want, sizeof(want), "accounts = %s/csv/a.csv\nstate = %s/state/x", dir, real);
	assert_int_equal(parse_spool_job(dir, real, want, &o, &err), 0);
	snprintf(want, sizeof(want), "%s/csv/a.csv", dir);
	assert_string_equal(o.accounts, want);
	snprintf(want, sizeof(want), "%s/state/x", dir);
	assert_string_equal(o.state_dir, want);
	jobconf_free(&o);
	/* a prefix of the spool's name is not the spool */
	snprintf(want, sizeof(want), "accounts = %sx/a.csv", dir);
	assert_int_equal(parse_spool_job(dir, real, want, &o, &err), -1);
	assert_non_null(strstr(err.msg, "outside the spool directory"));
	jobconf_free(&o);

	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		char text[256];

		snprintf(text, sizeof(text), "accounts = csv/a.csv\n%s", refused[i].line);
		if (parse_spool_job(dir, real, text, &o, &err) != -1)
			fail_msg("\"%s\" was taken", refused[i].line);
		if (strstr(err.msg, refused[i].err) == NULL)
			fail_msg("\"%s\": error \"%s\", want \"%s\"", refused[i].line, err.msg,
				 refused[i].err);
		assert_int_equal(err.kind, TR_ERR_USAGE);
		jobconf_free(&o);
	}
	/* clean up */
	snprintf(want, sizeof(want), "%s/csv/a.csv", dir);
	unlink(want);
	snprintf(want, sizeof(want), "%s/fifo.csv", dir);
	unlink(want);
	snprintf(want, sizeof(want), "%s/link", dir);
	unlink(want);
	snprintf(want, sizeof(want), "%s/csv", dir);
	rmdir(want);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_no_core_dumps),
		cmocka_unit_test(test_spool_job_paths),
	};

	return cmocka_run_group_tests_name("cli", tests, NULL, NULL);
}
