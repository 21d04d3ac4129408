/* Unit tests for what the command layer does to the process (src/cli.c). */
#include "config.h"

#include <limits.h>
#include <setjmp.h>
#include <stdbool.h>
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
#include "jobconf.h"
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
	/* realpath() writes up to PATH_MAX: _FORTIFY_SOURCE (the package build) aborts on less */
	char tmpl[] = "/tmp/test_cli_spool_XXXXXX", want[1024], real[PATH_MAX];
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

/* What `trasloco ARGV...` writes to stdout, and its exit code in *code
 * (malloc'd, NUL-terminated). */
static char *stdout_of(int argc, char **argv, int *code)
{
	char path[] = "/tmp/trasloco-test-cli-XXXXXX", *buf;
	int fd = mkstemp(path), saved;
	long len;
	FILE *f;

	assert_true(fd >= 0);
	unlink(path);
	fflush(stdout);
	saved = dup(STDOUT_FILENO);
	assert_true(saved >= 0);
	assert_true(dup2(fd, STDOUT_FILENO) >= 0);
	*code = cli_main(argc, argv);
	fflush(stdout);
	assert_true(dup2(saved, STDOUT_FILENO) >= 0);
	close(saved);
	f = fdopen(fd, "r");
	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	rewind(f);
	buf = calloc(1, (size_t)len + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)len, f), (size_t)len);
	fclose(f);
	return buf;
}

/* An option named in a help text ("--src", not "--srcx"). */
static bool names_option(const char *text, const char *name)
{
	size_t len = strlen(name);
	const char *p;

	for (p = text; (p = strstr(p, "--")) != NULL; p += 2)
		if (strncmp(p + 2, name, len) == 0 &&
		    strchr("abcdefghijklmnopqrstuvwxyz-", p[2 + len]) == NULL)
			return true;
	return false;
}

struct help_case {
	const char *cmd;
	const char *own;        /* options its help must name, space-separated */
	const char *foreign;    /* options of other commands it must not name */
};

#define SERVERS "src dst src-tls dst-tls src-tls-name dst-tls-name ca-file insecure " \
	"allow-plaintext "
#define ADMIN "dst-admin dst-admin-password-file dst-admin-separator " \
	"src-admin src-admin-password-file src-admin-separator "
#define PROVISION "provision-cmd provision provision-passwd-fields "
#define FOLDERS "folder exclude map keep-names "
#define ENGINE "state src-max-per-account dst-max-per-account timeout retries batch-size " \
	"batch-count spool-dir quiet verbose debug no-progress "
#define BATCH "parallel-accounts src-max-connections dst-max-connections report "

/* `trasloco CMD --help` (and `trasloco help CMD`) shows CMD's synopsis and
 * its own options, each a key of the table, and not the other commands'. */
static void test_command_help(void **state)
{
	static const struct help_case cases[] = {
		{ "migrate", SERVERS "user src-user dst-user src-password-file dst-password-file "
		  ADMIN PROVISION FOLDERS "no-subscriptions " ENGINE "dry-run report",
		  "parallel-accounts src-max-connections report-csv log-dir content "
		  "caps-per-egress folders" },
		{ "run", SERVERS ADMIN PROVISION FOLDERS "no-subscriptions " ENGINE BATCH
		  "report-csv log-dir",
		  "user src-user src-password-file dst-password-file content caps-per-egress "
		  "folders dry-run" },
		{ "check", SERVERS ADMIN FOLDERS "src-max-per-account timeout quiet " BATCH "folders",
		  "user src-password-file report-csv log-dir content retries batch-size "
		  "no-subscriptions spool-dir caps-per-egress dry-run " PROVISION },
		{ "verify", SERVERS ADMIN FOLDERS "src-max-per-account timeout " BATCH "content",
		  "user src-password-file report-csv log-dir retries batch-size "
		  "no-subscriptions caps-per-egress folders dry-run " PROVISION },
		{ "spool", "config " SERVERS ADMIN PROVISION FOLDERS "no-subscriptions " ENGINE BATCH
		  "report-csv log-dir",
		  "user src-password-file content caps-per-egress folders dry-run" },
		{ "provision", PROVISION "timeout quiet",
		  "user src-password-file content caps-per-egress folders dry-run report-csv "
		  "log-dir batch-size" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct help_case *c = &cases[i];
		char *argv[] = { (char *)"trasloco", (char *)c->cmd, (char *)"--help", NULL };
		char *argv2[] = { (char *)"trasloco", (char *)"help", (char *)c->cmd, NULL };
		char synopsis[64], list[1024], *tok, *save, *text, *text2;
		const char *p;
		int code;

		text = stdout_of(3, argv, &code);
		assert_int_equal(code, EXIT_OK);
		snprintf(synopsis, sizeof(synopsis), "usage: trasloco %s ", c->cmd);
		if (strncmp(text, synopsis, strlen(synopsis)) != 0)
			fail_msg("%s --help does not start with its synopsis: %.80s", c->cmd, text);
		snprintf(list, sizeof(list), "%s", c->own);
		for (tok = strtok_r(list, " ", &save); tok != NULL; tok = strtok_r(NULL, " ", &save))
			if (!names_option(text, tok))
				fail_msg("%s --help does not name --%s", c->cmd, tok);
		snprintf(list, sizeof(list), "%s", c->foreign);
		for (tok = strtok_r(list, " ", &save); tok != NULL; tok = strtok_r(NULL, " ", &save))
			if (names_option(text, tok))
				fail_msg("%s --help names --%s, not an option of %s", c->cmd, tok,
					 c->cmd);
		/* every option it names is one (the table's, or the spool's --config) */
		for (p = text; (p = strstr(p, "--")) != NULL; p += 2) {
			size_t len = strspn(p + 2, "abcdefghijklmnopqrstuvwxyz-");
			char name[64];
			const struct jobconf_key *k;

			if (len == 0 || len >= sizeof(name))
				continue;
			snprintf(name, sizeof(name), "%.*s", (int)len, p + 2);
			if (strcmp(name, "config") == 0 && strcmp(c->cmd, "spool") == 0)
				continue;
			k = jobconf_key(name);
			if (k == NULL || !k->option)
				fail_msg("%s --help names --%s, which is no option", c->cmd, name);
		}
		text2 = stdout_of(3, argv2, &code);
		assert_int_equal(code, EXIT_OK);
		assert_string_equal(text, text2);
		free(text);
		free(text2);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_no_core_dumps),
		cmocka_unit_test(test_spool_job_paths),
		cmocka_unit_test(test_command_help),
	};

	return cmocka_run_group_tests_name("cli", tests, NULL, NULL);
}
