/* Unit tests of the queue's PostgreSQL backend (src/queue_pg.c) against a
 * real PostgreSQL: TRASLOCO_TEST_PG holds its DSN
 * (tests/integration/test_pg_units.sh starts one and runs this); without
 * it the program skips (77).  First the contract every backend keeps
 * (queue_contract.c), then what only this one has: the fleet's sessions in
 * the status and gone with a deleted job, a database not yet made by
 * `queue init`, the upgrade of a database from version 1. */
#include "config.h"

#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "job.h"
#include "jobconf.h"
#include "pg.h"
#include "pg_schema.h"
#include "queue.h"
#include "queue_contract.h"
#include "seal.h"

static struct pg *pg;           /* the test's own look at the tables */
static struct queue_case pgcase = {
	.backend = "postgresql",
	.now = "now()",
	.ago_fmt = "now() - make_interval(secs => %d)",
};

static PGresult *query(const char *sql)
{
	struct tr_error err;
	PGresult *r = pg_exec(pg, sql, 0, NULL, &err);

	if (r == NULL)
		fail_msg("%s: %s", sql, err.msg);
	return r;
}

static long long pg_one(struct queue_case *c, const char *sql)
{
	PGresult *r = query(sql);
	long long v;

	(void)c;
	assert_int_equal(PQntuples(r), 1);
	v = pg_int(r, 0, 0);
	PQclear(r);
	return v;
}

static char *pg_one_str(struct queue_case *c, const char *sql)
{
	PGresult *r = query(sql);
	char *v;

	(void)c;
	assert_int_equal(PQntuples(r), 1);
	v = strdup(pg_str(r, 0, 0) != NULL ? pg_str(r, 0, 0) : "");
	PQclear(r);
	return v;
}

static void pg_do(struct queue_case *c, const char *sql)
{
	(void)c;
	PQclear(query(sql));
}

/* Every row of every table, as text (bytea as hex). */
static char *pg_dump(struct queue_case *c, size_t *len)
{
	PGresult *t = query("SELECT table_name FROM information_schema.tables "
			    "WHERE table_schema = 'public' ORDER BY 1");
	char *all = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&all, &n);
	int i;

	assert_true(PQntuples(t) >= 8);
	for (i = 0; i < PQntuples(t); i++) {
		char sql[256], *rows;

		snprintf(sql, sizeof(sql), "SELECT coalesce(string_agg(t::text, ' '), '') FROM "
			 "\"%s\" t", pg_str(t, i, 0));
		rows = pg_one_str(c, sql);
		fprintf(f, "%s: %s\n", pg_str(t, i, 0), rows);
		free(rows);
	}
	PQclear(t);
	fclose(f);
	*len = n;
	return all;
}

/* A session of the job held by a worker: it goes with the job. */
static void pg_before_delete(struct queue_case *c, int64_t job)
{
	char sql[256];

	snprintf(sql, sizeof(sql), "INSERT INTO q_sessions (job_id, side, login, worker, until) "
		 "VALUES (%" PRId64 ", 'src', 'a@x.it', 'A', now() + interval '1 minute')", job);
	pg_do(c, sql);
}

static void pg_after_delete(struct queue_case *c, int64_t job)
{
	(void)job;
	assert_int_equal(pg_one(c, "SELECT count(*) FROM q_sessions"), 0);
}

/* Another caller of queue_schedule holding every job: their rows locked
 * by a connection of its own. */
static void pg_hold_jobs(struct queue_case *c, bool hold)
{
	static struct pg *other;
	struct tr_error err;

	if (hold) {
		if (pg_connect(c->where, &other, &err) < 0 || pg_begin(other, &err) < 0 ||
		    pg_run(other, "SELECT id FROM q_jobs FOR UPDATE", 0, NULL, &err) < 0)
			fail_msg("%s", err.msg);
	} else {
		pg_rollback(other);
		pg_close(other);
		other = NULL;
	}
}

static int group_setup(void **unused)
{
	struct tr_error err;
	int from;

	(void)unused;
	snprintf(pgcase.dir, sizeof(pgcase.dir), "/tmp/test_queue_pg.XXXXXX");
	if (mkdtemp(pgcase.dir) == NULL)
		return -1;
	snprintf(pgcase.keyfile, sizeof(pgcase.keyfile), "%s/queue.key", pgcase.dir);
	if (seal_key_create(pgcase.keyfile, &err) < 0 ||
	    seal_keys_load(pgcase.keyfile, &pgcase.keys, &err) < 0 ||
	    pg_connect(pgcase.where, &pg, &err) < 0 || pg_schema_init(pg, &from, &err) < 0) {
		fprintf(stderr, "setup: %s\n", err.msg);
		return -1;
	}
	return 0;
}

static int group_teardown(void **unused)
{
	char cmd[700];

	(void)unused;
	seal_keys_free(pgcase.keys);
	pg_close(pg);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", pgcase.dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* Every test from an empty queue. */
static int clean(void **state)
{
	struct tr_error err;

	queue_contract_case(state);
	return pg_run(pg, "TRUNCATE q_jobs, q_workers CASCADE", 0, NULL, &err);
}

/* ---- what only PostgreSQL has ------------------------------------------------------ */

static struct queue *open_q(void)
{
	struct tr_error err;
	struct queue *q;

	if (queue_open(pgcase.where, pgcase.keys, &q, &err) < 0)
		fail_msg("%s", err.msg);
	assert_string_equal(queue_backend_name(q), "postgresql");
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
	    jobconf_set(&cfg, "src-max-connections", "6", NULL, &err) < 0 ||
	    jobconf_finish(&cfg, &err) < 0 ||
	    queue_submit(q, &cfg, &ja, NULL, NULL, NULL, &id, &err) < 0)
		fail_msg("%s", err.msg);
	jobconf_free(&cfg);
	job_accounts_free(&ja);
	return id;
}

/* The sessions in use are the fleet's: q_sessions rows whose lease runs. */
static void test_status_sessions(void **unused)
{
	struct queue *q = open_q();
	struct tr_error err;
	char sql[512], *buf = NULL;
	size_t len = 0;
	FILE *f;
	int64_t id;
	json_t *root, *job;

	(void)unused;
	id = submit_one(q);
	snprintf(sql, sizeof(sql), "INSERT INTO q_sessions (job_id, side, login, worker, until) "
		 "VALUES (%" PRId64 ", 'src', 'a', 'A', now() + interval '1 minute'), "
		 "(%" PRId64 ", 'src', 'b', 'A', now() + interval '1 minute'), "
		 "(%" PRId64 ", 'dst', 'b', 'A', now() - interval '1 minute')", id, id, id);
	if (pg_run(pg, sql, 0, NULL, &err) < 0)
		fail_msg("%s", err.msg);
	f = open_memstream(&buf, &len);
	if (queue_status(q, NULL, true, f, &err) < 0)
		fail_msg("%s", err.msg);
	fclose(f);
	root = json_loads(buf, 0, NULL);
	free(buf);
	job = json_array_get(json_object_get(root, "jobs"), 0);
	job = json_object_get(json_object_get(job, "sessions"), "src");
	assert_int_equal(json_integer_value(json_object_get(job, "in_use")), 2);
	assert_int_equal(json_integer_value(json_object_get(job, "cap")), 6);
	job = json_array_get(json_object_get(root, "jobs"), 0);
	job = json_object_get(json_object_get(job, "sessions"), "dst");
	assert_int_equal(json_integer_value(json_object_get(job, "in_use")), 0);
	json_decref(root);
	buf = NULL;
	f = open_memstream(&buf, &len);
	if (queue_status(q, "acme", false, f, &err) < 0)
		fail_msg("%s", err.msg);
	fclose(f);
	assert_non_null(strstr(buf, "source 2 of 6"));
	free(buf);
	queue_close(q);
}

/* A database `queue init` did not make (or of an older version): refused,
 * naming the command. */
static void test_not_initialised(void **unused)
{
	struct tr_error err;
	struct queue *q;
	char cur[16];

	(void)unused;
	if (pg_run(pg, "UPDATE trasloco_meta SET value = '0' WHERE key = 'schema'", 0, NULL,
		   &err) < 0)
		fail_msg("%s", err.msg);
	assert_int_equal(queue_open(pgcase.where, pgcase.keys, &q, &err), -1);
	assert_non_null(strstr(err.msg, "queue init"));
	snprintf(cur, sizeof(cur), "%d", pg_schema_version());
	if (pg_run(pg, "UPDATE trasloco_meta SET value = $1 WHERE key = 'schema'", 1,
		   (const char *[]){ cur }, &err) < 0)
		fail_msg("%s", err.msg);
}

static void must(int r, const struct tr_error *err)
{
	if (r < 0)
		fail_msg("%s", err->msg);
}

static long long one(const char *sql)
{
	return pg_one(&pgcase, sql);
}

static char *one_str(const char *sql)
{
	return pg_one_str(&pgcase, sql);
}

static const char drop_all[] =
	"DROP TABLE IF EXISTS trasloco_meta, q_failures, q_folders, q_sessions, q_cap_logins, "
	"q_caps, q_workers, q_accounts, q_jobs, st_messages, st_locks, st_folders, st_accounts "
	"CASCADE";

/* A database of version 1 with a job in it is brought to the latest
 * version (3) by one init, in one transaction: its rows kept, the outcome of its finished
 * accounts known, the queue usable on it.  A step that fails leaves the
 * database as it was. */
static void test_schema_upgrade(void **unused)
{
	struct tr_error err;
	struct queue *q;
	json_t *d;
	int from;
	char *s;

	(void)unused;
	must(pg_run(pg, drop_all, 0, NULL, &err), &err);
	must(pg_schema_init_to(pg, 1, &from, &err), &err);
	assert_int_equal(from, 0);
	assert_int_equal(one("SELECT value::int FROM trasloco_meta WHERE key = 'schema'"), 1);
	/* queue_open refuses it, naming the command */
	assert_int_equal(queue_open(pgcase.where, pgcase.keys, &q, &err), -1);
	assert_non_null(strstr(err.msg, "trasloco queue init"));
	must(pg_run(pg, "INSERT INTO q_jobs (id, name, config, src, dst) VALUES (7, 'old', "
		    "'src = a:993\\n', 'a:993', 'b:993');"
		    "INSERT INTO q_accounts (job_id, email, state, error, copied, present) VALUES "
		    "(7, 'ok@x.it', 'ok', NULL, 5, 1), (7, 'part@x.it', 'partial', 'a folder failed', "
		    "3, 0), (7, 'new@x.it', 'pending', NULL, 0, 0)", 0, NULL, &err), &err);
	/* a table in the way of step 2: nothing of it stays */
	must(pg_run(pg, "CREATE TABLE q_failures (x int)", 0, NULL, &err), &err);
	assert_int_equal(pg_schema_init(pg, &from, &err), -1);
	assert_non_null(strstr(err.msg, "schema step 1 -> 2"));
	assert_int_equal(one("SELECT value::int FROM trasloco_meta WHERE key = 'schema'"), 1);
	assert_int_equal(one("SELECT count(*) FROM information_schema.columns WHERE "
			     "table_name = 'q_jobs' AND column_name = 'pass_kind'"), 0);
	assert_int_equal(one("SELECT count(*) FROM information_schema.tables WHERE "
			     "table_name = 'q_folders'"), 0);
	must(pg_run(pg, "DROP TABLE q_failures", 0, NULL, &err), &err);
	/* now it goes through */
	must(pg_schema_init(pg, &from, &err), &err);
	assert_int_equal(from, 1);
	assert_int_equal(pg_schema_version(), 3);
	assert_int_equal(one("SELECT value::int FROM trasloco_meta WHERE key = 'schema'"), 3);
	assert_int_equal(one("SELECT count(*) FROM information_schema.columns WHERE "
			     "table_name = 'q_jobs' AND column_name = 'src_admin_password'"), 1);
	must(pg_schema_check(pg, &err), &err);
	assert_int_equal(one("SELECT count(*) FROM q_accounts"), 3);
	assert_int_equal(one("SELECT count(*) FROM q_accounts WHERE pass = 'run'"), 3);
	s = one_str("SELECT string_agg(coalesce(outcome, '-') || ':' || coalesce(outcome_error, "
		    "'-'), ',' ORDER BY id) FROM q_accounts");
	assert_string_equal(s, "ok:-,partial:a folder failed,-:-");
	free(s);
	s = one_str("SELECT pass_kind || pass_count || coalesce(pass_every::text, '-') || final "
		    "FROM q_jobs");
	assert_string_equal(s, "run1-false");
	free(s);
	/* the queue works on it */
	q = open_q();
	assert_int_equal(queue_account_detail(q, "old", "part@x.it", &d, &err), 0);
	assert_string_equal(json_string_value(json_object_get(d, "status")), "partial");
	assert_string_equal(json_string_value(json_object_get(d, "error")), "a folder failed");
	assert_int_equal(json_array_size(json_object_get(d, "folders")), 0);
	assert_true(json_is_null(json_object_get(d, "verify")));
	json_decref(d);
	queue_close(q);
	/* and again: nothing to do */
	must(pg_schema_init(pg, &from, &err), &err);
	assert_int_equal(from, 3);
	/* as the other tests found it */
	must(pg_run(pg, "TRUNCATE q_jobs, q_workers CASCADE", 0, NULL, &err), &err);
}


int main(void)
{
	const struct CMUnitTest tests[] = {
		QUEUE_CONTRACT("postgresql", clean, NULL, &pgcase),
		cmocka_unit_test_setup(test_status_sessions, clean),
		cmocka_unit_test_setup(test_not_initialised, clean),
		cmocka_unit_test_setup(test_schema_upgrade, clean),
	};
	const char *dsn = getenv("TRASLOCO_TEST_PG");

	if (dsn == NULL || dsn[0] == '\0') {
		fprintf(stderr, "TRASLOCO_TEST_PG is not set: run tests/integration/test_pg_units.sh\n");
		return 77;
	}
	snprintf(pgcase.where, sizeof(pgcase.where), "%s", dsn);
	pgcase.one = pg_one;
	pgcase.one_str = pg_one_str;
	pgcase.run = pg_do;
	pgcase.dump = pg_dump;
	pgcase.before_delete = pg_before_delete;
	pgcase.after_delete = pg_after_delete;
	pgcase.hold_jobs = pg_hold_jobs;
	return cmocka_run_group_tests_name("queue_pg", tests, group_setup, group_teardown);
}
