/* Unit tests for provisioning (src/provision.c): the template, the
 * passwd-file built-in (existing lines untouched, no duplicate, the lock,
 * owner and mode kept, the hash), the command (password on stdin only, a
 * clean environment, stderr in the error, the timeout), and the accounts
 * parser's JOB_ACCOUNTS_NO_PASSWORD (src/job.c).
 */
#include "config.h"

#include <crypt.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "job.h"
#include "provision.h"

static char dir[256];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "%s/tr-provision-XXXXXX",
		 getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp");
	return mkdtemp(dir) == NULL ? -1 : 0;
}

static int teardown(void **state)
{
	char cmd[512];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	if (f == NULL)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = calloc(1, (size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	if (len != NULL)
		*len = (size_t)n;
	return buf;
}

static void put_file(const char *path, const char *text, mode_t mode)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	assert_int_equal(chmod(path, mode), 0);
}

static void test_expand(void **state)
{
	struct tr_error err;
	char out[128];

	(void)state;
	assert_int_equal(provision_expand(":5000:5000::/var/vmail/%d/%n::", "mario.rossi@azienda.it",
					  out, sizeof(out), &err), 0);
	assert_string_equal(out, ":5000:5000::/var/vmail/azienda.it/mario.rossi::");
	assert_int_equal(provision_expand("%u|%n|%d|%%", "a@b.c", out, sizeof(out), &err), 0);
	assert_string_equal(out, "a@b.c|a|b.c|%");
	/* no domain: %n is the whole user, %d empty */
	assert_int_equal(provision_expand("%n/%d", "plain", out, sizeof(out), &err), 0);
	assert_string_equal(out, "plain/");
	/* the last '@' splits */
	assert_int_equal(provision_expand("%n", "\"a@b\"@c.d", out, sizeof(out), &err), 0);
	assert_string_equal(out, "\"a@b\"");
	assert_int_equal(provision_expand("", "a@b.c", out, sizeof(out), &err), 0);
	assert_string_equal(out, "");
	/* unknown sequences, a trailing '%', too long */
	assert_int_equal(provision_expand("%x", "a@b.c", out, sizeof(out), &err), -1);
	assert_int_equal(err.kind, TR_ERR_USAGE);
	assert_int_equal(provision_expand("abc%", "a@b.c", out, sizeof(out), &err), -1);
	assert_int_equal(provision_expand("%u%u%u", "a@b.c", out, 10, &err), -1);
	assert_int_equal(provision_expand("\n%u", "a@b.c", out, sizeof(out), &err), -1);
}

/* The line of user in text (NULL when none), newly allocated. */
static char *line_of(const char *text, const char *user)
{
	size_t ulen = strlen(user);
	const char *p = text;

	while (*p != '\0') {
		const char *nl = strchr(p, '\n');
		size_t len = nl != NULL ? (size_t)(nl - p) : strlen(p);

		if (len > ulen && strncmp(p, user, ulen) == 0 && p[ulen] == ':')
			return strndup(p, len);
		p += len + (nl != NULL);
	}
	return NULL;
}

static void test_passwd_add(void **state)
{
	static const char old[] =
		"# the provider's own lines\n"
		"old@example.test:{PLAIN}x:1:1::/home/old::userdb_quota_rule=*:storage=1G\n"
		"Case@Example.test:{PLAIN}y\n"
		"weird line without colon\n"
		"last@example.test:{PLAIN}z";        /* no final newline */
	char path[400], *text, *line, *hash;
	struct tr_error err;
	struct stat st;
	size_t len;

	(void)state;
	snprintf(path, sizeof(path), "%s/users.passwd", dir);
	put_file(path, old, 0640);

	assert_int_equal(provision_passwd_add(path, "new@example.test", "s3cret:with colon",
					      ":1000:1000::/var/vmail/%d/%n::", &err), 1);
	text = slurp(path, &len);
	/* everything that was there, byte for byte, then a newline and the user */
	assert_memory_equal(text, old, sizeof(old) - 1);
	assert_int_equal(text[sizeof(old) - 1], '\n');
	line = line_of(text, "new@example.test");
	assert_non_null(line);
	assert_true(strncmp(line, "new@example.test:{SHA512-CRYPT}$6$", 34) == 0);
	assert_non_null(strstr(line, ":1000:1000::/var/vmail/example.test/new::"));
	assert_null(strstr(text, "s3cret"));
	/* the hash checks out against the password, and not another */
	hash = strndup(line + strlen("new@example.test:{SHA512-CRYPT}"),
		       (size_t)(strstr(line, ":1000") - line) - strlen("new@example.test:{SHA512-CRYPT}"));
	{
		struct crypt_data cd;

		memset(&cd, 0, sizeof(cd));
		assert_string_equal(crypt_r("s3cret:with colon", hash, &cd), hash);
		assert_string_not_equal(crypt_r("s3cret", hash, &cd), hash);
	}
	free(hash);
	free(line);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0640);

	/* already there (any case): nothing written, not even the same bytes */
	assert_int_equal(chmod(path, 0604), 0);
	{
		struct stat before;

		assert_int_equal(stat(path, &before), 0);
		assert_int_equal(provision_passwd_add(path, "new@example.test", "other", NULL, &err),
				 0);
		assert_int_equal(provision_passwd_add(path, "case@example.TEST", "other", NULL, &err),
				 0);
		assert_int_equal(provision_passwd_add(path, "OLD@example.test", "other", NULL, &err),
				 0);
		assert_int_equal(stat(path, &st), 0);
		assert_int_equal(st.st_ino, before.st_ino);
		free(text);
		text = slurp(path, &len);
		assert_null(strstr(text, "other"));
	}
	/* a second user: the mode kept from the file as it is now, no fields */
	assert_int_equal(provision_passwd_add(path, "two@example.test", "pw2", "", &err), 1);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0604);
	free(text);
	text = slurp(path, &len);
	assert_memory_equal(text, old, sizeof(old) - 1);
	line = line_of(text, "two@example.test");
	assert_non_null(line);
	/* user, scheme, hash: nothing after it */
	assert_null(strchr(line + strlen("two@example.test:{SHA512-CRYPT}"), ':'));
	free(line);
	/* each user once */
	assert_non_null(strstr(text, "\nnew@example.test:"));
	assert_null(strstr(strstr(text, "\nnew@example.test:") + 1, "\nnew@example.test:"));
	free(text);

	/* refused: a user that cannot be a passwd-file's, no password, fields
	 * not starting with ':', a missing file, a symbolic link */
	assert_int_equal(provision_passwd_add(path, "a:b@example.test", "pw", NULL, &err), -1);
	assert_int_equal(provision_passwd_add(path, "a b@example.test", "pw", NULL, &err), -1);
	assert_int_equal(provision_passwd_add(path, "x@example.test", NULL, NULL, &err), -1);
	assert_int_equal(provision_passwd_add(path, "x@example.test", "", NULL, &err), -1);
	assert_int_equal(provision_passwd_add(path, "x@example.test", "pw", "1000", &err), -1);
	{
		char missing[400], link[400];

		snprintf(missing, sizeof(missing), "%s/none.passwd", dir);
		assert_int_equal(provision_passwd_add(missing, "x@example.test", "pw", NULL, &err),
				 -1);
		snprintf(link, sizeof(link), "%s/link.passwd", dir);
		assert_int_equal(symlink(path, link), 0);
		assert_int_equal(provision_passwd_add(link, "x@example.test", "pw", NULL, &err), -1);
		assert_non_null(strstr(err.msg, "symbolic link"));
	}
	text = slurp(path, NULL);
	assert_null(strstr(text, "x@example.test"));
	free(text);
}

struct adder {
	const char *path;
	int r;
	struct tr_error err;
};

static void *add_main(void *arg)
{
	struct adder *a = arg;

	a->r = provision_passwd_add(a->path, "locked@example.test", "pw", NULL, &a->err);
	return NULL;
}

/* A writer holding PATH.lock keeps provisioning out until it lets go. */
static void test_passwd_lock(void **state)
{
	char path[400], lock[420], *text;
	struct adder a;
	pthread_t t;
	int fd;

	(void)state;
	snprintf(path, sizeof(path), "%s/locked.passwd", dir);
	snprintf(lock, sizeof(lock), "%s.lock", path);
	put_file(path, "a@example.test:{PLAIN}a\n", 0600);
	fd = open(lock, O_RDWR | O_CREAT, 0600);
	assert_true(fd >= 0);
	assert_int_equal(flock(fd, LOCK_EX), 0);
	memset(&a, 0, sizeof(a));
	a.path = path;
	assert_int_equal(pthread_create(&t, NULL, add_main, &a), 0);
	usleep(300000);
	/* whatever the thread has done so far, the file is as it was */
	text = slurp(path, NULL);
	assert_string_equal(text, "a@example.test:{PLAIN}a\n");
	free(text);
	assert_int_equal(flock(fd, LOCK_UN), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	close(fd);
	assert_int_equal(a.r, 1);
	text = slurp(path, NULL);
	assert_non_null(strstr(text, "\nlocked@example.test:{SHA512-CRYPT}$6$"));
	free(text);
}

/* Threads adding the same users at once: each user once. */
static void *race_main(void *arg)
{
	struct adder *a = arg;
	char user[64];
	int i;

	for (i = 0; i < 10; i++) {
		snprintf(user, sizeof(user), "u%d@example.test", i);
		if (provision_passwd_add(a->path, user, "pw", NULL, &a->err) < 0)
			a->r = -1;
	}
	return NULL;
}

static void test_passwd_race(void **state)
{
	char path[400], *text, user[64];
	struct adder a[4];
	pthread_t t[4];
	int i;

	(void)state;
	snprintf(path, sizeof(path), "%s/race.passwd", dir);
	put_file(path, "", 0600);
	for (i = 0; i < 4; i++) {
		memset(&a[i], 0, sizeof(a[i]));
		a[i].path = path;
		assert_int_equal(pthread_create(&t[i], NULL, race_main, &a[i]), 0);
	}
	for (i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(t[i], NULL), 0);
		assert_int_equal(a[i].r, 0);
	}
	text = slurp(path, NULL);
	for (i = 0; i < 10; i++) {
		const char *p;

		snprintf(user, sizeof(user), "u%d@example.test:", i);
		p = strstr(text, user);
		assert_non_null(p);
		assert_null(strstr(p + 1, user));
	}
	free(text);
}

static void test_cmd(void **state)
{
	char cmd[1024], out[400], *text;
	struct tr_error err;

	(void)state;
	snprintf(out, sizeof(out), "%s/cmd", dir);
	setenv("TRASLOCO_SRC_PASSWORD", "leaked-env", 1);
	/* the password on stdin (and a newline), nothing of it in env or argv */
	snprintf(cmd, sizeof(cmd), "cat > '%s.stdin'; env > '%s.env'; "
		 "tr '\\0' ' ' < /proc/$$/cmdline > '%s.argv'", out, out, out);
	assert_int_equal(provision_cmd_run(cmd, "m@example.test", "login-m", "pa ss\"w", 10, &err),
			 1);
	unsetenv("TRASLOCO_SRC_PASSWORD");
	snprintf(cmd, sizeof(cmd), "%s.stdin", out);
	text = slurp(cmd, NULL);
	assert_string_equal(text, "pa ss\"w\n");
	free(text);
	snprintf(cmd, sizeof(cmd), "%s.env", out);
	text = slurp(cmd, NULL);
	assert_non_null(strstr(text, "TRASLOCO_EMAIL=m@example.test\n"));
	assert_non_null(strstr(text, "TRASLOCO_USER=login-m\n"));
	assert_null(strstr(text, "pa ss"));
	assert_null(strstr(text, "leaked-env"));
	free(text);
	snprintf(cmd, sizeof(cmd), "%s.argv", out);
	text = slurp(cmd, NULL);
	assert_null(strstr(text, "pa ss"));
	free(text);

	/* a failure: its exit status and stderr, control bytes escaped */
	assert_int_equal(provision_cmd_run("echo 'no quota \033[2J left' >&2; exit 3",
					   "m@example.test", "m", "pw", 10, &err), -1);
	assert_int_equal(err.kind, TR_ERR_AUTH);
	assert_non_null(strstr(err.msg, "exit 3"));
	assert_non_null(strstr(err.msg, "no quota \\x1B[2J left"));
	/* commands that exit without reading the password: the write fails
	 * (EPIPE) and the SIGPIPE it raises does not end this process, which,
	 * as any host of the library may, leaves SIGPIPE at its default */
	signal(SIGPIPE, SIG_DFL);
	for (int i = 0; i < 30; i++)
		assert_int_equal(provision_cmd_run("exec 0<&-; exit 3", "m@example.test", "m",
						   "pw", 10, &err), -1);
	/* a flood of stderr is cut, and does not block the command */
	assert_int_equal(provision_cmd_run("head -c 1000000 /dev/zero | tr '\\0' x >&2; exit 1",
					   "m@example.test", "m", "pw", 30, &err), -1);
	assert_true(strlen(err.msg) < PROVISION_STDERR_MAX + 200);
	/* a hang: killed at the timeout, with what it said */
	assert_int_equal(provision_cmd_run("echo waiting >&2; sleep 30", "m@example.test", "m",
					   "pw", 1, &err), -1);
	assert_non_null(strstr(err.msg, "did not end within 1 s"));
	assert_non_null(strstr(err.msg, "waiting"));
	/* no password at all: empty stdin */
	snprintf(cmd, sizeof(cmd), "test \"$(cat | wc -c)\" = 0");
	assert_int_equal(provision_cmd_run(cmd, "m@example.test", "m", NULL, 10, &err), 1);
}

static void test_csv_optional(void **state)
{
	struct job_accounts ja;
	struct tr_error err;

	(void)state;
	/* emails alone, without and with a header */
	assert_int_equal(job_accounts_parse_opt("a.csv", "a@x.test\nb@x.test\n", 18,
						JOB_ACCOUNTS_NO_PASSWORD, &ja, &err), 0);
	assert_int_equal(ja.n, 2);
	assert_int_equal(ja.n_bad, 0);
	assert_null(ja.v[0].password);
	job_accounts_free(&ja);
	assert_int_equal(job_accounts_parse_opt("a.csv", "email\na@x.test\n", 15,
						JOB_ACCOUNTS_NO_PASSWORD, &ja, &err), 0);
	assert_int_equal(ja.n, 1);
	job_accounts_free(&ja);
	/* a password column still works, an empty one too */
	assert_int_equal(job_accounts_parse_opt("a.csv", "a@x.test,pw\nb@x.test,\n", 22,
						JOB_ACCOUNTS_NO_PASSWORD, &ja, &err), 0);
	assert_int_equal(ja.n, 2);
	assert_string_equal(ja.v[0].password, "pw");
	assert_null(ja.v[1].password);
	job_accounts_free(&ja);
	/* without the option: as before */
	assert_int_equal(job_accounts_parse("a.csv", "a@x.test\n", 9, &ja, &err), 0);
	assert_int_equal(ja.n, 0);
	assert_int_equal(ja.n_bad, 1);
	job_accounts_free(&ja);
	assert_int_equal(job_accounts_parse("a.csv", "email\na@x.test\n", 15, &ja, &err), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_expand),
		cmocka_unit_test(test_passwd_add),
		cmocka_unit_test(test_passwd_lock),
		cmocka_unit_test(test_passwd_race),
		cmocka_unit_test(test_cmd),
		cmocka_unit_test(test_csv_optional),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
