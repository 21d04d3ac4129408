/* Unit tests of the queue's SQLite backend (src/queue_sqlite.c): first the
 * contract every backend keeps (queue_contract.c), each test in a queue
 * directory of its own, then what only this one has: the location's forms,
 * a private file in a private directory, its schema version, the state in
 * the same directory, the leases of this host's workers that died, and
 * many handles of one process seen by the others. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "job.h"
#include "jobconf.h"
#include "queue.h"
#include "queue_contract.h"
#include "seal.h"
#include "state.h"

#define NOW "((julianday('now') - 2440587.5) * 86400.0)"

static char top[64];            /* every queue of this run, and the key files */
static int n_queues;
static struct queue_case sqcase = {
	.backend = "sqlite",
	.now = NOW,
	.ago_fmt = NOW " - %d",
};

/* The test's own connection to the queue's file, for one statement. */
static sqlite3 *look(const struct queue_case *c)
{
	char path[700];
	sqlite3 *db = NULL;

	snprintf(path, sizeof(path), "%s/queue.sqlite", c->where);
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK)
		fail_msg("%s: %s", path, sqlite3_errmsg(db));
	sqlite3_busy_timeout(db, 10000);
	return db;
}

static sqlite3_stmt *one_row(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st = NULL;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW)
		fail_msg("%s: %s", sql, sqlite3_errmsg(db));
	return st;
}

static long long sq_one(struct queue_case *c, const char *sql)
{
	sqlite3 *db = look(c);
	sqlite3_stmt *st = one_row(db, sql);
	long long v = sqlite3_column_int64(st, 0);

	assert_int_equal(sqlite3_step(st), SQLITE_DONE);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

static char *sq_one_str(struct queue_case *c, const char *sql)
{
	sqlite3 *db = look(c);
	sqlite3_stmt *st = one_row(db, sql);
	const char *t = (const char *)sqlite3_column_text(st, 0);
	char *v = strdup(t != NULL ? t : "");

	assert_int_equal(sqlite3_step(st), SQLITE_DONE);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

static void sq_run(struct queue_case *c, const char *sql)
{
	sqlite3 *db = look(c);
	char *msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
		fail_msg("%s: %s", sql, msg);
	sqlite3_close(db);
}

static void append_file(FILE *out, const char *path)
{
	char buf[8192];
	size_t n;
	FILE *f = fopen(path, "rb");

	if (f == NULL)
		return;
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		fwrite(buf, 1, n, out);
	fclose(f);
}

/* The files themselves, every byte: the live rows, the free pages, the
 * write-ahead log. */
static char *sq_dump(struct queue_case *c, size_t *len)
{
	static const char *const files[] = { "queue.sqlite", "queue.sqlite-wal",
					     "queue.sqlite-journal" };
	char *all = NULL, path[700];
	FILE *f = open_memstream(&all, len);
	size_t i;

	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", c->where, files[i]);
		append_file(f, path);
	}
	fclose(f);
	return all;
}

static int group_setup(void **unused)
{
	struct tr_error err;

	(void)unused;
	snprintf(top, sizeof(top), "/tmp/test_queue_sqlite.XXXXXX");
	if (mkdtemp(top) == NULL)
		return -1;
	snprintf(sqcase.dir, sizeof(sqcase.dir), "%s", top);
	snprintf(sqcase.keyfile, sizeof(sqcase.keyfile), "%s/queue.key", top);
	if (seal_key_create(sqcase.keyfile, &err) < 0 ||
	    seal_keys_load(sqcase.keyfile, &sqcase.keys, &err) < 0) {
		fprintf(stderr, "setup: %s\n", err.msg);
		return -1;
	}
	return 0;
}

static int group_teardown(void **unused)
{
	char cmd[128];

	(void)unused;
	seal_keys_free(sqcase.keys);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", top);
	return system(cmd) == 0 ? 0 : -1;
}

/* Every test in a new queue directory (made by the queue itself). */
static int fresh(void **state)
{
	snprintf(sqcase.where, sizeof(sqcase.where), "%s/q%d", top, ++n_queues);
	if (*state != NULL)
		queue_contract_case(state);
	return 0;
}

/* ---- what only SQLite has ----------------------------------------------------------- */

static struct queue *open_at(const char *where)
{
	struct tr_error err;
	struct queue *q;

	if (queue_open(where, sqcase.keys, &q, &err) < 0)
		fail_msg("%s: %s", where, err.msg);
	assert_string_equal(queue_backend_name(q), "sqlite");
	return q;
}

static int64_t submit_one(struct queue *q)
{
	struct tr_error err;
	struct job_config cfg;
	struct job_accounts ja;
	static const char csv[] = "email,password\na@x.it,Pw-1\nb@x.it,Pw-2\n";
	int64_t id;

	memset(&ja, 0, sizeof(ja));
	jobconf_init(&cfg, JOB_RUN);
	if (job_accounts_parse("accounts.csv", csv, strlen(csv), &ja, &err) < 0 ||
	    jobconf_set(&cfg, "src", "imap.old.example:993", NULL, &err) < 0 ||
	    jobconf_set(&cfg, "dst", "mail.new.example", NULL, &err) < 0 ||
	    jobconf_set(&cfg, "accounts", "acme.csv", NULL, &err) < 0 ||
	    jobconf_finish(&cfg, &err) < 0 ||
	    queue_submit(q, &cfg, &ja, NULL, NULL, NULL, &id, &err) < 0)
		fail_msg("%s", err.msg);
	jobconf_free(&cfg);
	job_accounts_free(&ja);
	return id;
}

/* "sqlite:DIR" and DIR are the same queue; "SCHEME://" of no backend is
 * refused, naming those there are; init says what it found. */
static void test_location(void **unused)
{
	struct tr_error err;
	struct queue *q;
	char prefixed[700];
	int from, version;
	int64_t id, got;

	(void)unused;
	assert_int_equal(queue_init(sqcase.where, &from, &version, &q, &err), 0);
	assert_int_equal(from, 0);
	assert_true(version >= 1);
	assert_non_null(strstr(queue_where(q), "/queue.sqlite"));
	queue_close(q);
	assert_int_equal(queue_init(sqcase.where, &from, &version, &q, &err), 0);
	assert_int_equal(from, version);
	queue_close(q);
	q = open_at(sqcase.where);
	id = submit_one(q);
	queue_close(q);
	snprintf(prefixed, sizeof(prefixed), "sqlite:%s", sqcase.where);
	q = open_at(prefixed);
	assert_int_equal(queue_job_id(q, "acme", &got, &err), 0);
	assert_int_equal(got, id);
	queue_close(q);
	assert_int_equal(queue_open("mysql://db/queue", NULL, &q, &err), -1);
	assert_int_equal(err.kind, TR_ERR_USAGE);
	assert_non_null(strstr(err.msg, "mysql"));
	assert_non_null(strstr(err.msg, "sqlite:DIR"));
	assert_non_null(strstr(err.msg, "postgresql:"));
	assert_int_equal(queue_open("", NULL, &q, &err), -1);
	assert_int_equal(err.kind, TR_ERR_USAGE);
	assert_int_equal(queue_open("sqlite:", NULL, &q, &err), -1);
	assert_int_equal(err.kind, TR_ERR_USAGE);
	/* libpq's key=value form is PostgreSQL's, for the queue and the state
	 * (here one that is not there): never a directory of that name */
	{
		static const char conninfo[] = "host=/nonexistent-trasloco dbname=q";
		struct state *st;

		assert_int_equal(queue_open(conninfo, NULL, &q, &err), -1);
		assert_int_equal(err.kind, TR_ERR_TEMP);
		assert_int_equal(state_open(conninfo, &st, &err), -1);
		assert_int_equal(access(conninfo, F_OK), -1);
	}
}

/* The file is the user's alone, in a directory that is too; a directory
 * others may write into is refused, never fixed. */
static void test_private(void **unused)
{
	struct tr_error err;
	struct queue *q;
	struct stat st;
	char path[700], bad[700];

	(void)unused;
	q = open_at(sqcase.where);
	submit_one(q);
	queue_close(q);
	assert_int_equal(stat(sqcase.where, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	snprintf(path, sizeof(path), "%s/queue.sqlite", sqcase.where);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	snprintf(path, sizeof(path), "%s/queue.sqlite-wal", sqcase.where);
	if (stat(path, &st) == 0)
		assert_int_equal(st.st_mode & 0077, 0);
	snprintf(bad, sizeof(bad), "%s/shared", top);
	assert_int_equal(mkdir(bad, 0700), 0);
	assert_int_equal(chmod(bad, 0770), 0);
	assert_int_equal(queue_open(bad, NULL, &q, &err), -1);
	assert_non_null(strstr(err.msg, "writable"));
	snprintf(path, sizeof(path), "%s/queue.sqlite", bad);
	assert_int_equal(access(path, F_OK), -1);
	/* a link where the file should be is not followed */
	assert_int_equal(chmod(bad, 0700), 0);
	assert_int_equal(symlink("/tmp/elsewhere.sqlite", path), 0);
	assert_int_equal(queue_open(bad, NULL, &q, &err), -1);
	assert_int_equal(access("/tmp/elsewhere.sqlite", F_OK), -1);
}

/* A queue of an older trasloco is upgraded on open; one of a newer
 * trasloco is refused as it is; a database that is not a queue too. */
static void test_schema(void **unused)
{
	struct tr_error err;
	struct queue *q;
	char other[700], path[760];
	sqlite3 *db;

	(void)unused;
	q = open_at(sqcase.where);
	queue_close(q);
	assert_int_equal(sqcase.one(&sqcase, "SELECT value FROM meta WHERE key = 'schema'"), 2);
	/* a queue of version 1 (no source admin password) is brought to 2 */
	sqcase.run(&sqcase, "ALTER TABLE q_jobs DROP COLUMN src_admin_password");
	sqcase.run(&sqcase, "UPDATE meta SET value = '1' WHERE key = 'schema'");
	q = open_at(sqcase.where);
	queue_close(q);
	assert_int_equal(sqcase.one(&sqcase, "SELECT value FROM meta WHERE key = 'schema'"), 2);
	assert_int_equal(sqcase.one(&sqcase, "SELECT count(*) FROM pragma_table_info('q_jobs') "
				    "WHERE name = 'src_admin_password'"), 1);
	sqcase.run(&sqcase, "UPDATE meta SET value = '99' WHERE key = 'schema'");
	assert_int_equal(queue_open(sqcase.where, NULL, &q, &err), -1);
	assert_non_null(strstr(err.msg, "newer trasloco"));
	assert_int_equal(sqcase.one(&sqcase, "SELECT value FROM meta WHERE key = 'schema'"), 99);
	snprintf(other, sizeof(other), "%s/other", top);
	assert_int_equal(mkdir(other, 0700), 0);
	snprintf(path, sizeof(path), "%s/queue.sqlite", other);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "CREATE TABLE t (x)", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(chmod(path, 0600), 0);
	assert_int_equal(queue_open(other, NULL, &q, &err), -1);
	assert_non_null(strstr(err.msg, "not a trasloco queue"));
}

/* The state in the same directory: files apart, both usable at once. */
static void test_state_beside(void **unused)
{
	struct tr_error err;
	struct queue *q = open_at(sqcase.where);
	struct state *st;
	int64_t a;
	char path[700];

	(void)unused;
	if (state_open(sqcase.where, &st, &err) < 0)
		fail_msg("%s", err.msg);
	assert_string_equal(state_backend_name(st), "sqlite");
	assert_int_equal(state_account(st, "a@x.it", &a, &err), 0);
	submit_one(q);
	snprintf(path, sizeof(path), "%s/state.db", sqcase.where);
	assert_int_equal(access(path, F_OK), 0);
	snprintf(path, sizeof(path), "%s/queue.sqlite", sqcase.where);
	assert_int_equal(access(path, F_OK), 0);
	assert_string_not_equal(state_path(st), queue_where(q));
	state_close(st);
	queue_close(q);
}

/* A pid that was this process's child and is gone now. */
static int dead_pid(void)
{
	pid_t p = fork();

	if (p == 0) {
		/* not _exit: under valgrind, this copy of the test would be
		 * checked for leaks of the parent's open connections */
		execl("/bin/true", "true", (char *)NULL);
		_exit(0);
	}
	assert_true(p > 0);
	assert_int_equal(waitpid(p, NULL, 0), p);
	return (int)p;
}

/* The service crashed (its process is gone) holding an account under a
 * long lease: the next worker of this host takes it back at once, as a
 * takeover; a worker whose process lives keeps its lease. */
static void test_dead_worker(void **unused)
{
	struct tr_error err;
	struct queue *q = open_at(sqcase.where);
	struct queue_claim c;
	int64_t held;

	(void)unused;
	submit_one(q);
	assert_int_equal(queue_worker_register(q, "h:dead:1", "h", dead_pid(), "", 1, &err), 0);
	assert_int_equal(queue_claim(q, "h:dead:1", 3600, &c, &err), 1);
	held = c.row;
	queue_claim_free(&c);
	assert_int_equal(queue_worker_register(q, "h:live:2", "h", (int)getpid(), "", 1, &err), 0);
	assert_int_equal(queue_claim(q, "h:live:2", 3600, &c, &err), 1);
	assert_int_equal(c.row, held);
	assert_true(c.takeover);
	assert_int_equal(c.attempts, 2);
	queue_claim_free(&c);
	assert_int_equal(sqcase.one(&sqcase, "SELECT count(*) FROM q_workers WHERE id = "
				    "'h:dead:1' AND stopped IS NOT NULL"), 1);
	/* the live one's account (and another host's) stay theirs */
	assert_int_equal(queue_worker_register(q, "h2:x:3", "h2", dead_pid(), "", 1, &err), 0);
	assert_int_equal(queue_claim(q, "h2:x:3", 3600, &c, &err), 1);
	queue_claim_free(&c);
	assert_int_equal(queue_worker_register(q, "h:new:4", "h", (int)getpid(), "", 1, &err), 0);
	assert_int_equal(queue_claim(q, "h:new:4", 3600, &c, &err), 0);
	assert_int_equal(sqcase.one(&sqcase, "SELECT count(*) FROM q_accounts WHERE "
				    "state = 'running' AND worker IN ('h:live:2', 'h2:x:3')"), 2);
	queue_close(q);
}

static char self[4096];         /* this program, run again as another process */

/* The number of jobs in the queue file at path, from a process of its own
 * (not a fork of this one: SQLite's state of a process must not cross a
 * fork), as the exit status. */
static int count_jobs(const char *path)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int n = -1;

	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK &&
	    sqlite3_prepare_v2(db, "SELECT count(*) FROM q_jobs", -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return n >= 0 && n < 100 ? n : 100;
}

/* Another process's view of the queue: how many jobs it sees, or -1. */
static int jobs_seen_elsewhere(void)
{
	char path[700];
	pid_t p;
	int status = 0;

	snprintf(path, sizeof(path), "%s/queue.sqlite", sqcase.where);
	p = fork();
	if (p == 0) {
		execl(self, self, "--count-jobs", path, (char *)NULL);
		_exit(101);
	}
	assert_true(p > 0);
	assert_int_equal(waitpid(p, &status, 0), p);
	return WIFEXITED(status) && WEXITSTATUS(status) < 100 ? WEXITSTATUS(status) : -1;
}

/* Many handles in one process (a worker's slots and heartbeat, the API's
 * pool): opening one must not undo the locks of the others, or a process
 * that closes the database last would fold the write-ahead log away under
 * them, and what they commit after would be seen by no one else. */
static void test_handles_keep_locks(void **unused)
{
	struct queue *a = open_at(sqcase.where), *b;

	(void)unused;
	submit_one(a);
	b = open_at(sqcase.where);
	assert_int_equal(jobs_seen_elsewhere(), 1);
	submit_one(a);
	submit_one(b);
	assert_int_equal(jobs_seen_elsewhere(), 3);
	queue_close(b);
	submit_one(a);
	assert_int_equal(jobs_seen_elsewhere(), 4);
	queue_close(a);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		QUEUE_CONTRACT("sqlite", fresh, NULL, &sqcase),
		cmocka_unit_test_setup(test_location, fresh),
		cmocka_unit_test_setup(test_private, fresh),
		cmocka_unit_test_setup(test_schema, fresh),
		cmocka_unit_test_setup(test_state_beside, fresh),
		cmocka_unit_test_setup(test_dead_worker, fresh),
		cmocka_unit_test_setup(test_handles_keep_locks, fresh),
	};

	if (argc == 3 && strcmp(argv[1], "--count-jobs") == 0)
		return count_jobs(argv[2]);
	if (realpath(argv[0], self) == NULL)
		snprintf(self, sizeof(self), "%s", argv[0]);
	sqcase.one = sq_one;
	sqcase.one_str = sq_one_str;
	sqcase.run = sq_run;
	sqcase.dump = sq_dump;
	return cmocka_run_group_tests_name("queue_sqlite", tests, group_setup, group_teardown);
}
