/* The state's PostgreSQL backend (src/state_pg.c) against a real server:
 * TRASLOCO_TEST_PG holds the DSN of an empty database
 * (tests/integration/test_pg_units.sh starts the server and runs this;
 * without it the program skips, 77).
 *
 * First the contract every backend keeps (state_contract.c, the suite
 * test_state runs for sqlite and mem), each test on emptied tables; then
 * what only leases have: a second holder is refused while the first
 * renews; a holder that freezes (SIGSTOP: a stalled host, a partition) is
 * taken over once its lease expires, and when it wakes its writes are
 * refused (fencing) and its lost callback runs; a renewal that cannot
 * get through declares the lock lost in time; the server dropping every
 * session (a restart) fails one call as temporary and the next works.
 * With "--init-schema" it only makes the tables (see main). */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "log.h"
#include "pg.h"
#include "pg_schema.h"
#include "net.h"
#include "state.h"
#include "state_contract.h"
#include "throttle.h"

static const char *dsn;
static struct pg *admin;        /* the test's own connection, as another program */
static struct state_case pg_case = { .backend = "postgresql" };

static void sql(const char *q)
{
	struct tr_error err;

	if (pg_run(admin, q, 0, NULL, &err) < 0)
		fail_msg("%s: %s", q, err.msg);
}

static int64_t sql_int(const char *q)
{
	struct tr_error err;
	PGresult *r = pg_exec(admin, q, 0, NULL, &err);
	int64_t v;

	if (r == NULL)
		fail_msg("%s: %s", q, err.msg);
	v = PQntuples(r) > 0 ? pg_int(r, 0, 0) : -1;
	PQclear(r);
	return v;
}

/* Every test starts from empty tables (the contract's with its case). */
static int setup_empty(void **state)
{
	struct state_case *c = *state;

	sql("TRUNCATE st_accounts, st_locks, st_folders, st_messages RESTART IDENTITY CASCADE");
	if (c != NULL)
		snprintf(c->where, sizeof(c->where), "%s", dsn);
	unsetenv("TRASLOCO_LEASE_SECONDS");
	return 0;
}

static int teardown_env(void **state)
{
	(void)state;
	unsetenv("TRASLOCO_LEASE_SECONDS");
	return 0;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static struct state *open_pg(void)
{
	struct tr_error err;
	struct state *st = NULL;

	if (state_open(dsn, &st, &err) < 0)
		fail_msg("state_open(%s): %s", dsn, err.msg);
	assert_string_equal(state_backend_name(st), "postgresql");
	return st;
}

/* ---- opening ------------------------------------------------------------- */

static void test_open(void **state)
{
	struct tr_error err;
	struct state *st = NULL;
	char bare[700];

	(void)state;
	st = open_pg();
	assert_non_null(strstr(state_path(st), "PostgreSQL trasloco@127.0.0.1:"));
	state_close(st);
	/* "postgres://" and "postgresql:" + the rest name it too */
	assert_true(strncmp(dsn, "postgresql://", 13) == 0);
	snprintf(bare, sizeof(bare), "postgres://%s", dsn + 13);
	assert_int_equal(state_open(bare, &st, &err), 0);
	state_close(st);
	assert_int_equal(state_open_backend("postgresql", dsn + 11, &st, &err), 0);
	state_close(st);

	/* a database without trasloco's tables (here: a schema without them
	 * first on the search path) is refused, naming the command to run */
	sql("CREATE SCHEMA IF NOT EXISTS bare");
	snprintf(bare, sizeof(bare), "%s%soptions=-csearch_path%%3Dbare", dsn,
		 strchr(dsn, '?') != NULL ? "&" : "?");
	memset(&err, 0, sizeof(err));
	assert_int_equal(state_open(bare, &st, &err), -1);
	assert_null(st);
	assert_int_equal(err.kind, TR_ERR_USAGE);
	assert_non_null(strstr(err.msg, "trasloco queue init"));

	/* a lease out of range is a mistake, said as such */
	setenv("TRASLOCO_LEASE_SECONDS", "1", 1);
	assert_int_equal(state_open(dsn, &st, &err), -1);
	assert_int_equal(err.kind, TR_ERR_USAGE);
	assert_non_null(strstr(err.msg, "TRASLOCO_LEASE_SECONDS"));
	setenv("TRASLOCO_LEASE_SECONDS", "30s", 1);
	assert_int_equal(state_open(dsn, &st, &err), -1);
	unsetenv("TRASLOCO_LEASE_SECONDS");
}

/* ---- leases -------------------------------------------------------------- */

/* A second handle (another host) is refused while the first holds the
 * account, and told by whom; the holder's row names host:pid:random; the
 * first one's heartbeat keeps it past its lease time; unlock frees it. */
static void test_lease_held(void **state)
{
	struct tr_error err;
	struct state *a, *b;
	struct state_lock *la, *lb;
	int64_t acct, acct2;
	char want[64], q[256];

	(void)state;
	/* short enough to outlive, long enough for a busy machine to renew */
	setenv("TRASLOCO_LEASE_SECONDS", "6", 1);
	a = open_pg();
	b = open_pg();
	assert_int_equal(state_account(a, "u@s:993 -> u@d:993", &acct, &err), 0);
	assert_int_equal(state_account(b, "u@s:993 -> u@d:993", &acct2, &err), 0);
	assert_int_equal(acct2, acct);
	la = state_account_lock(a, acct, &err);
	assert_non_null(la);
	snprintf(q, sizeof(q), "SELECT count(*) FROM st_locks WHERE account_id = %lld AND holder "
		 "LIKE '%%:%ld:%%' AND until > now()", (long long)acct, (long)getpid());
	assert_int_equal(sql_int(q), 1);

	memset(&err, 0, sizeof(err));
	assert_null(state_account_lock(b, acct, &err));
	assert_int_equal(err.kind, TR_ERR_LOCAL);
	assert_non_null(strstr(err.msg, "another trasloco run is migrating this account"));
	snprintf(want, sizeof(want), ":%ld:", (long)getpid());
	assert_non_null(strstr(err.msg, "is held by "));
	assert_non_null(strstr(err.msg, want));
	assert_non_null(strstr(err.msg, " until "));

	/* past the lease time: renewed by the heartbeat, still held */
	sleep_ms(8000);
	assert_null(state_account_lock(b, acct, &err));
	assert_int_equal(err.kind, TR_ERR_LOCAL);
	/* and its writes pass the fence */
	assert_int_equal(state_account_set_status(a, acct, "running", NULL, &err), 0);

	state_account_unlock(la);
	assert_int_equal(sql_int("SELECT count(*) FROM st_locks"), 0);
	lb = state_account_lock(b, acct, &err);
	assert_non_null(lb);
	state_close(b);         /* releases it */
	assert_int_equal(sql_int("SELECT count(*) FROM st_locks"), 0);
	state_close(a);
}

static volatile sig_atomic_t lost_calls;

static void on_lost(void *ctx)
{
	(void)ctx;
	lost_calls++;
}

#define CHILD_CHECK(cond, code) \
	do { \
		if (!(cond)) { \
			fprintf(stderr, "child: line %d: %s (%s)\n", __LINE__, #cond, err.msg); \
			_exit(code); \
		} \
	} while (0)

static bool lease_refused(const struct tr_error *err)
{
	return err->kind == TR_ERR_TEMP && strstr(err->msg, "the lease on this account was lost");
}

/* The first holder, in a child process the parent freezes. */
static void frozen_holder(int ready_fd, int go_fd)
{
	struct tr_error err;
	struct state *st;
	struct state_lock *l;
	struct state_folder f;
	struct state_msg row;
	int64_t acct, other;
	char c = 'R';
	uint32_t uid = 1;
	int i;

	memset(&err, 0, sizeof(err));
	CHILD_CHECK(state_open(dsn, &st, &err) == 0, 10);
	CHILD_CHECK(state_account(st, "u@s:993 -> u@d:993", &acct, &err) == 0, 11);
	CHILD_CHECK(state_account(st, "other@s:993 -> other@d:993", &other, &err) == 0, 11);
	l = state_account_lock(st, acct, &err);
	CHILD_CHECK(l != NULL, 12);
	state_lock_watch(l, on_lost, NULL);
	CHILD_CHECK(state_folder_load(st, acct, "INBOX", "INBOX", &f, &err) == 0, 13);
	memset(&row, 0, sizeof(row));
	row.src_uid = 1;
	row.state = MSG_DONE;
	CHILD_CHECK(state_msgs_put(st, f.id, &row, 1, &err) == 0, 14);
	CHILD_CHECK(write(ready_fd, &c, 1) == 1, 15);
	/* here the parent stops this process, takes the account over, and
	 * lets it go on */
	CHILD_CHECK(read(go_fd, &c, 1) == 1, 16);

	/* every write about the account is refused, whatever the heartbeat
	 * has noticed yet */
	row.src_uid = 2;
	memset(&err, 0, sizeof(err));
	CHILD_CHECK(state_msgs_put(st, f.id, &row, 1, &err) == -1, 20);
	CHILD_CHECK(lease_refused(&err), 21);
	CHILD_CHECK(state_msgs_delete(st, f.id, &uid, 1, &err) == -1, 22);
	CHILD_CHECK(lease_refused(&err), 23);
	f.src_uidnext = 99;
	CHILD_CHECK(state_folder_save(st, &f, &err) == -1, 24);
	CHILD_CHECK(lease_refused(&err), 25);
	CHILD_CHECK(state_folder_reset(st, &f, &err) == -1, 26);
	CHILD_CHECK(lease_refused(&err), 27);
	CHILD_CHECK(state_account_set_status(st, acct, "ok", NULL, &err) == -1, 28);
	CHILD_CHECK(lease_refused(&err), 29);
	CHILD_CHECK(state_folder_load(st, acct, "Sent", "Sent", &f, &err) == -1, 30);
	CHILD_CHECK(lease_refused(&err), 31);
	/* the lost callback, once, from the handle's own thread */
	for (i = 0; i < 300 && lost_calls == 0; i++)
		sleep_ms(100);
	CHILD_CHECK(lost_calls == 1, 32);
	/* reads still work; accounts it does not hold are written as ever */
	CHILD_CHECK(state_folder_load(st, acct, "INBOX", "INBOX", &f, &err) == 0, 33);
	CHILD_CHECK(state_account_set_status(st, other, "ok", NULL, &err) == 0, 34);
	sleep_ms(500);
	CHILD_CHECK(lost_calls == 1, 35);
	/* unlock leaves the new holder's row alone */
	state_account_unlock(l);
	state_close(st);
	_exit(0);
}

static void test_lease_takeover(void **state)
{
	struct tr_error err;
	struct state *b, *c;
	struct state_lock *lb = NULL;
	struct state_folder f;
	struct state_msg row, *got;
	int ready[2], go[2], status, i;
	int64_t acct;
	char ch, status_s[16], *logbuf = NULL;
	size_t n, logsz = 0;
	FILE *logf;
	pid_t pid;

	(void)state;
	setenv("TRASLOCO_LEASE_SECONDS", "3", 1);
	assert_int_equal(pipe(ready), 0);
	assert_int_equal(pipe(go), 0);
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(ready[0]);
		close(go[1]);
		frozen_holder(ready[1], go[0]);
	}
	close(ready[1]);
	close(go[0]);
	assert_int_equal(read(ready[0], &ch, 1), 1);
	/* the first holder freezes: no heartbeat, no writes */
	assert_int_equal(kill(pid, SIGSTOP), 0);

	b = open_pg();
	assert_int_equal(state_account(b, "u@s:993 -> u@d:993", &acct, &err), 0);
	logf = open_memstream(&logbuf, &logsz);
	assert_non_null(logf);
	log_set_stream(logf);
	/* refused while the frozen holder's lease lasts, taken once it ends */
	for (i = 0; i < 300 && lb == NULL; i++) {
		lb = state_account_lock(b, acct, &err);
		if (lb == NULL) {
			assert_int_equal(err.kind, TR_ERR_LOCAL);
			sleep_ms(100);
		}
	}
	log_set_stream(stderr);
	fclose(logf);
	assert_non_null(lb);
	assert_non_null(strstr(logbuf, "took over the lease of "));
	free(logbuf);
	assert_int_equal(state_folder_load(b, acct, "INBOX", "INBOX", &f, &err), 0);
	memset(&row, 0, sizeof(row));
	row.src_uid = 100;
	row.state = MSG_PENDING;
	assert_int_equal(state_msgs_put(b, f.id, &row, 1, &err), 0);
	assert_int_equal(state_account_set_status(b, acct, "running", NULL, &err), 0);

	/* the first one wakes up: see frozen_holder */
	assert_int_equal(kill(pid, SIGCONT), 0);
	ch = 'G';
	assert_int_equal(write(go[1], &ch, 1), 1);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	close(ready[0]);
	close(go[1]);

	/* nothing of the old holder's late writes landed */
	assert_int_equal(state_msgs_load(b, f.id, &got, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_int_equal(got[0].src_uid, 1);
	assert_int_equal(got[1].src_uid, 100);
	state_msgs_free(got, n);
	assert_int_equal(state_folder_load(b, acct, "INBOX", "INBOX", &f, &err), 0);
	assert_int_equal(f.src_uidnext, 0);
	assert_int_equal(state_account_get_status(b, acct, status_s, sizeof(status_s), &err), 0);
	assert_string_equal(status_s, "running");
	assert_int_equal(sql_int("SELECT count(*) FROM st_folders WHERE src_name = 'Sent'"), 0);
	/* and the new holder still holds it */
	c = open_pg();
	assert_null(state_account_lock(c, acct, &err));
	state_close(c);
	state_account_unlock(lb);
	state_close(b);
}

/* A renewal that cannot get through (here: the lease row held by another
 * session, as a hung network would hold the call) loses the lock within
 * half the lease, calls back once, and refuses the account's writes. */
static void test_lease_not_renewed(void **state)
{
	struct tr_error err;
	struct state *a, *b;
	struct state_lock *la, *lb = NULL;
	struct state_folder f;
	struct state_msg row;
	int64_t acct;
	char q[160];
	int i;

	(void)state;
	setenv("TRASLOCO_LEASE_SECONDS", "2", 1);
	a = open_pg();
	assert_int_equal(state_account(a, "u@s:993 -> u@d:993", &acct, &err), 0);
	assert_int_equal(state_folder_load(a, acct, "INBOX", "INBOX", &f, &err), 0);
	lost_calls = 0;
	la = state_account_lock(a, acct, &err);
	assert_non_null(la);
	state_lock_watch(la, on_lost, NULL);
	assert_int_equal(pg_begin(admin, &err), 0);
	snprintf(q, sizeof(q), "SELECT 1 FROM st_locks WHERE account_id = %lld FOR UPDATE",
		 (long long)acct);
	sql(q);
	for (i = 0; i < 300 && lost_calls == 0; i++)
		sleep_ms(100);
	assert_int_equal(lost_calls, 1);
	pg_rollback(admin);

	memset(&row, 0, sizeof(row));
	row.src_uid = 5;
	row.state = MSG_DONE;
	assert_int_equal(state_msgs_put(a, f.id, &row, 1, &err), -1);
	assert_true(lease_refused(&err));
	assert_int_equal(state_account_set_status(a, acct, "ok", NULL, &err), -1);
	assert_true(lease_refused(&err));
	/* another holder gets it once the lease has run out */
	b = open_pg();
	for (i = 0; i < 300 && lb == NULL; i++) {
		lb = state_account_lock(b, acct, &err);
		if (lb == NULL)
			sleep_ms(100);
	}
	assert_non_null(lb);
	assert_int_equal(state_msgs_put(b, f.id, &row, 1, &err), 0);
	state_account_unlock(la);
	assert_int_equal(lost_calls, 1);
	state_close(a);
	state_account_unlock(lb);
	state_close(b);
}

/* The server ends every session (a restart, a failover): the call that
 * meets the dead session fails as temporary, saying the database is out
 * of reach; the next one connects again and, the lease intact, writes. */
static void test_sessions_dropped(void **state)
{
	struct tr_error err;
	struct state *a;
	struct state_lock *la;
	struct state_folder f;
	struct state_msg row, *got;
	int64_t acct;
	size_t n;

	(void)state;
	a = open_pg();
	assert_int_equal(state_account(a, "u@s:993 -> u@d:993", &acct, &err), 0);
	la = state_account_lock(a, acct, &err);
	assert_non_null(la);
	assert_int_equal(state_folder_load(a, acct, "INBOX", "INBOX", &f, &err), 0);
	memset(&row, 0, sizeof(row));
	row.src_uid = 1;
	row.state = MSG_PENDING;
	assert_int_equal(state_msgs_put(a, f.id, &row, 1, &err), 0);

	sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = "
	    "current_database() AND pid <> pg_backend_pid()");
	row.state = MSG_DONE;
	memset(&err, 0, sizeof(err));
	assert_int_equal(state_msgs_put(a, f.id, &row, 1, &err), -1);
	assert_int_equal(err.kind, TR_ERR_TEMP);
	assert_non_null(strstr(err.msg, "the database is unreachable"));
	assert_non_null(strstr(err.msg, state_path(a)));
	/* the retry: connected again, the lease still ours */
	assert_int_equal(state_msgs_put(a, f.id, &row, 1, &err), 0);
	assert_int_equal(state_msgs_load(a, f.id, &got, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_int_equal(got[0].state, MSG_DONE);
	state_msgs_free(got, n);
	state_account_unlock(la);
	assert_int_equal(sql_int("SELECT count(*) FROM st_locks"), 0);
	state_close(a);
}

/* A rate's schedule shared by two handles (two workers): each take moves
 * it on from where the other left it, on the database's clock, and a key
 * is a schedule of its own.  Costs of an hour, so that the milliseconds
 * between the calls do not matter. */
static void test_rate_shared(void **state)
{
	struct tr_error err;
	struct state *a, *b;
	double w1 = 0, w2 = 0, w3 = 0;

	(void)state;
	a = open_pg();
	b = open_pg();
	assert_true(state_rate_shared(a));
	assert_int_equal(state_rate_take(a, "src 192.0.2.1:993 bytes/s", 3600, &w1, &err), 0);
	assert_int_equal(state_rate_take(b, "src 192.0.2.1:993 bytes/s", 3600, &w2, &err), 0);
	assert_int_equal(state_rate_take(b, "src 192.0.2.9:993 bytes/s", 3600, &w3, &err), 0);
	assert_true(w1 > 3590 && w1 <= 3600.001);
	assert_true(w2 > 7190 && w2 <= 7200.001);
	assert_true(w3 > 3590 && w3 <= 3600.001);
	state_close(a);
	state_close(b);
}

struct taker {
	struct throttle *t;
	struct net_scope scope;
	volatile int done;
	int rc;
};

static void *taker_main(void *arg)
{
	struct taker *k = arg;

	net_scope_enter(&k->scope);
	k->rc = throttle_bytes(k->t, 1000);
	k->done = 1;
	return NULL;
}

/* A throttle on a PostgreSQL state keeps the rate with the other
 * processes: when another worker has taken the next hour of the server's
 * schedule, this one waits (until stopped), and what it took is added to
 * the schedule the other sees.  On a SQLite state the same throttle keeps
 * the rate alone and goes at once. */
static void test_throttle_shared(void **state)
{
	struct throttle_limits lim = { .bytes_per_second = 1000000 };
	struct tr_error err;
	struct state *a, *b, *sq;
	struct taker k;
	pthread_t th;
	double w = 0;
	bool oom;

	(void)state;
	a = open_pg();
	b = open_pg();
	assert_int_equal(state_rate_take(b, "src 198.51.100.7:993 bytes/s", 3600, &w, &err), 0);
	memset(&k, 0, sizeof(k));
	k.t = throttle_new("src 198.51.100.7:993", "the source", &lim, &oom);
	assert_non_null(k.t);
	throttle_set_state(k.t, a);
	assert_int_equal(pthread_create(&th, NULL, taker_main, &k), 0);
	sleep_ms(500);
	assert_int_equal(k.done, 0);            /* waiting for the other's hour */
	net_scope_cancel(&k.scope);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(k.rc, -1);
	/* a slice of 50 ms of the rate went on the schedule after the hour */
	assert_int_equal(state_rate_take(b, "src 198.51.100.7:993 bytes/s", 1, &w, &err), 0);
	assert_true(w > 3600 + THROTTLE_SLICE_S - 5 && w <= 3601 + THROTTLE_SLICE_S + 0.001);
	/* the database out of reach (every session ended): the process keeps
	 * the rate alone, at once, instead of waiting for the shared hour */
	sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = "
	    "current_database() AND pid <> pg_backend_pid()");
	memset(&k.scope, 0, sizeof(k.scope));
	k.done = 0;
	assert_int_equal(pthread_create(&th, NULL, taker_main, &k), 0);
	for (int i = 0; i < 100 && !k.done; i++)
		sleep_ms(100);
	assert_int_equal(k.done, 1);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(k.rc, 0);
	throttle_free(k.t);

	/* the same on a state of one process (memory, as SQLite): at once */
	assert_int_equal(state_open_backend("mem", "rate", &sq, &err), 0);
	assert_false(state_rate_shared(sq));
	k.t = throttle_new("src 198.51.100.7:993", "the source", &lim, &oom);
	throttle_set_state(k.t, sq);
	assert_int_equal(throttle_bytes(k.t, 1000), 0);
	throttle_free(k.t);
	state_close(sq);
	state_close(a);
	state_close(b);
}

/* argv[1] "--init-schema": only create the tables (what `trasloco queue
 * init` does), for tests/integration/test_state_pg.sh until that command
 * exists on this branch. */
int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		STATE_CONTRACT("postgresql", setup_empty, teardown_env, &pg_case),
		cmocka_unit_test_setup_teardown(test_open, setup_empty, teardown_env),
		cmocka_unit_test_setup_teardown(test_lease_held, setup_empty, teardown_env),
		cmocka_unit_test_setup_teardown(test_lease_takeover, setup_empty, teardown_env),
		cmocka_unit_test_setup_teardown(test_lease_not_renewed, setup_empty, teardown_env),
		cmocka_unit_test_setup_teardown(test_sessions_dropped, setup_empty, teardown_env),
		cmocka_unit_test_setup_teardown(test_rate_shared, setup_empty, teardown_env),
		cmocka_unit_test_setup_teardown(test_throttle_shared, setup_empty, teardown_env),
	};
	struct tr_error err;
	int from, r;

	dsn = getenv("TRASLOCO_TEST_PG");
	if (dsn == NULL || dsn[0] == '\0') {
		fprintf(stderr, "TRASLOCO_TEST_PG is not set: run tests/integration/test_pg_units.sh\n");
		return 77;
	}
	log_set_stream(stderr);
	/* what `trasloco queue init` does */
	if (pg_connect(dsn, &admin, &err) < 0 || pg_schema_init(admin, &from, &err) < 0) {
		fprintf(stderr, "test_state_pg: %s\n", err.msg);
		return 1;
	}
	if (argc > 1 && strcmp(argv[1], "--init-schema") == 0) {
		pg_close(admin);
		return 0;
	}
	r = cmocka_run_group_tests_name("state_pg", tests, NULL, NULL);
	pg_close(admin);
	return r;
}
