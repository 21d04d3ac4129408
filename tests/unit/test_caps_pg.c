/* Unit tests of the cluster-wide session caps (src/caps_pg.c) against a
 * real PostgreSQL: TRASLOCO_TEST_PG holds its DSN (test_pg_units.sh starts
 * one and runs this; alone the program skips, 77).  Several struct caps_pg
 * in one process stand for several workers: each has its own connection
 * and its own name, as workers on other hosts have.  A job's caps are rows
 * the test inserts itself (queue_submit's, in the program). */
#include "config.h"

#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "caps_pg.h"
#include "log.h"
#include "net.h"
#include "pg.h"
#include "pg_schema.h"
#include "scheduler.h"

static const char *dsn;
static struct pg *db;       /* the test's own connection */

static void sql(const char *q)
{
	struct tr_error err;

	tr_error_clear(&err);
	if (pg_run(db, q, 0, NULL, &err) < 0)
		fail_msg("%s: %s", q, err.msg);
}

static int64_t sql_int(const char *q)
{
	struct tr_error err;
	PGresult *r = pg_exec(db, q, 0, NULL, &err);
	int64_t v;

	if (r == NULL)
		fail_msg("%s: %s", q, err.msg);
	assert_int_equal(PQntuples(r), 1);
	v = pg_int(r, 0, 0);
	PQclear(r);
	return v;
}

/* A job with the same caps on both sides. */
static int64_t new_job(int per_account, int total, bool per_egress)
{
	char q[512];
	int64_t id = sql_int("INSERT INTO q_jobs (name, config, src, dst) "
			     "VALUES ('t', '', 'src.example', 'dst.example') RETURNING id");

	snprintf(q, sizeof(q), "INSERT INTO q_caps (job_id, side, max_per_account, max_total, "
		 "per_egress) VALUES (%" PRId64 ", 'src', %d, %d, %s), (%" PRId64 ", 'dst', "
		 "%d, %d, %s)", id, per_account, total, per_egress ? "true" : "false", id,
		 per_account, total, per_egress ? "true" : "false");
	sql(q);
	return id;
}

static int64_t live(int64_t job, const char *login)
{
	char q[512];

	if (login == NULL)
		snprintf(q, sizeof(q), "SELECT count(*) FROM q_sessions WHERE job_id = %" PRId64
			 " AND side = 'src' AND until > now()", job);
	else
		snprintf(q, sizeof(q), "SELECT count(*) FROM q_sessions WHERE job_id = %" PRId64
			 " AND side = 'src' AND until > now() AND login = '%s'::bytea", job, login);
	return sql_int(q);
}

static struct caps_pg *worker(const char *name, const char *egress, int lease_s)
{
	struct caps_pg *c = NULL;
	struct tr_error err;

	tr_error_clear(&err);
	if (caps_pg_open(dsn, name, egress, lease_s, &c, &err) < 0)
		fail_msg("caps_pg_open: %s", err.msg);
	return c;
}

static struct limiter_shared side(struct caps_pg *c, int64_t job)
{
	struct limiter_shared sh;
	struct tr_error err;

	tr_error_clear(&err);
	if (caps_pg_side(c, job, "src", &sh, &err) < 0)
		fail_msg("caps_pg_side: %s", err.msg);
	return sh;
}

static int take(const struct limiter_shared *sh, const char *login)
{
	return sh->acquire(sh->ctx, login, false);
}

static void give(const struct limiter_shared *sh, const char *login)
{
	sh->release(sh->ctx, login);
}

/* A wait for a slot that a test bounds: in a thread, in a scope that is
 * cancelled after `seconds` (the acquire then gives up, and the test fails
 * instead of hanging). */
struct bounded {
	const struct limiter_shared *sh;
	const char *login;
	struct net_scope scope;
	atomic_int done;
	int r;
};

static void *bounded_main(void *arg)
{
	struct bounded *b = arg;

	net_scope_enter(&b->scope);
	b->r = b->sh->acquire(b->sh->ctx, b->login, true);
	net_scope_enter(NULL);
	atomic_store(&b->done, 1);
	return NULL;
}

static int take_waiting(const struct limiter_shared *sh, const char *login, int seconds)
{
	struct bounded b = { .sh = sh, .login = login };
	pthread_t t;
	int i;

	assert_int_equal(pthread_create(&t, NULL, bounded_main, &b), 0);
	for (i = 0; i < seconds * 100 && !atomic_load(&b.done); i++)
		usleep(10000);
	net_scope_cancel(&b.scope);
	pthread_join(t, NULL);
	return b.r;
}

/* ---- never above the caps, whatever the workers and threads do ----------- */

#define HAMMER_WORKERS 3
#define HAMMER_THREADS 4    /* per worker */
#define HAMMER_LOOPS 30
#define HAMMER_LOGINS 4

struct hammer {
	int64_t job;
	struct limiter *lim[HAMMER_WORKERS];
	atomic_int per[HAMMER_LOGINS];
	atomic_int total;
	atomic_int peak;
	atomic_int violations;
	atomic_int granted;
	atomic_int running;
	/* the sampler's */
	int samples, db_peak, db_violations;
};

struct hammer_thread {
	struct hammer *h;
	int w;
	unsigned int seed;
};

static void *hammer_main(void *arg)
{
	struct hammer_thread *ht = arg;
	struct hammer *h = ht->h;
	int i;

	for (i = 0; i < HAMMER_LOOPS; i++) {
		int k = (int)(rand_r(&ht->seed) % HAMMER_LOGINS);
		char login[32];
		int n;

		snprintf(login, sizeof(login), "user%d@customer.example", k);
		if (limiter_acquire(h->lim[ht->w], login, rand_r(&ht->seed) % 4 != 0) < 0)
			continue;
		atomic_fetch_add(&h->granted, 1);
		if (atomic_fetch_add(&h->per[k], 1) + 1 > 2)
			atomic_fetch_add(&h->violations, 1);
		n = atomic_fetch_add(&h->total, 1) + 1;
		if (n > 6)
			atomic_fetch_add(&h->violations, 1);
		for (int p = atomic_load(&h->peak); n > p &&
		     !atomic_compare_exchange_weak(&h->peak, &p, n);)
			;
		usleep(5000 + rand_r(&ht->seed) % 15000);
		atomic_fetch_sub(&h->per[k], 1);
		atomic_fetch_sub(&h->total, 1);
		limiter_release(h->lim[ht->w], login);
	}
	return NULL;
}

/* What the database says, continuously: the most sessions of one login,
 * and of the side, live at one instant (one statement, one snapshot). */
static void *sampler_main(void *arg)
{
	struct hammer *h = arg;
	struct pg *pg;
	struct tr_error err;
	char job[24];
	const char *p[1] = { job };

	snprintf(job, sizeof(job), "%" PRId64, h->job);
	if (pg_connect(dsn, &pg, &err) < 0) {
		h->db_violations = -1000;
		return NULL;
	}
	while (atomic_load(&h->running)) {
		PGresult *r = pg_exec(pg, "SELECT coalesce(max(n), 0), coalesce(sum(n), 0) FROM "
				      "(SELECT count(*) AS n FROM q_sessions WHERE job_id = "
				      "$1::bigint AND side = 'src' AND until > now() GROUP BY login) x",
				      1, p, &err);

		if (r == NULL) {
			h->db_violations++;
			continue;
		}
		if (pg_int(r, 0, 0) > 2 || pg_int(r, 0, 1) > 6)
			h->db_violations++;
		if (pg_int(r, 0, 1) > h->db_peak)
			h->db_peak = (int)pg_int(r, 0, 1);
		h->samples++;
		PQclear(r);
	}
	pg_close(pg);
	return NULL;
}

static void test_hammer_never_above_caps(void **unused)
{
	struct hammer h;
	struct caps_pg *c[HAMMER_WORKERS];
	struct hammer_thread ht[HAMMER_WORKERS * HAMMER_THREADS];
	pthread_t t[HAMMER_WORKERS * HAMMER_THREADS], sampler;
	int i;

	(void)unused;
	memset(&h, 0, sizeof(h));
	h.job = new_job(2, 6, false);
	for (i = 0; i < HAMMER_WORKERS; i++) {
		char name[32];
		struct limiter_shared sh;

		snprintf(name, sizeof(name), "hammer-%d", i);
		c[i] = worker(name, "", 60);
		sh = side(c[i], h.job);
		/* the local caps alone would let each worker use all 6 */
		h.lim[i] = limiter_new("the source", 2, 6);
		limiter_set_shared(h.lim[i], &sh);
	}
	atomic_store(&h.running, 1);
	assert_int_equal(pthread_create(&sampler, NULL, sampler_main, &h), 0);
	for (i = 0; i < HAMMER_WORKERS * HAMMER_THREADS; i++) {
		ht[i] = (struct hammer_thread){ &h, i % HAMMER_WORKERS, (unsigned int)i * 7919u };
		assert_int_equal(pthread_create(&t[i], NULL, hammer_main, &ht[i]), 0);
	}
	for (i = 0; i < HAMMER_WORKERS * HAMMER_THREADS; i++)
		pthread_join(t[i], NULL);
	atomic_store(&h.running, 0);
	pthread_join(sampler, NULL);
	printf("hammer: %d sessions granted, peak %d open (caps 2 per login, 6 in all); "
	       "%d samples of the database, peak %d live\n", atomic_load(&h.granted),
	       atomic_load(&h.peak), h.samples, h.db_peak);
	assert_int_equal(atomic_load(&h.violations), 0);
	assert_int_equal(h.db_violations, 0);
	assert_true(h.samples > 0);
	assert_true(atomic_load(&h.granted) > 0);
	assert_int_equal(live(h.job, NULL), 0);
	for (i = 0; i < HAMMER_WORKERS; i++) {
		assert_int_equal(limiter_in_use(h.lim[i], NULL), 0);
		limiter_free(h.lim[i]);
		caps_pg_close(c[i]);
	}
}

/* ---- two workers, one slot ------------------------------------------------ */

struct racer {
	const struct limiter_shared *sh;
	const char *login;
	pthread_barrier_t *go;
	int r;
};

static void *racer_main(void *arg)
{
	struct racer *rc = arg;

	pthread_barrier_wait(rc->go);
	rc->r = take(rc->sh, rc->login);
	return NULL;
}

static void test_race_for_last_slot(void **unused)
{
	int64_t job = new_job(2, 3, false);
	struct caps_pg *c1 = worker("race-1", "", 60), *c2 = worker("race-2", "", 60),
		       *c3 = worker("race-3", "", 60);
	struct limiter_shared s1 = side(c1, job), s2 = side(c2, job), s3 = side(c3, job);
	pthread_barrier_t go;
	int round;

	(void)unused;
	assert_int_equal(take(&s1, "a"), 0);
	assert_int_equal(take(&s1, "b"), 0);
	for (round = 0; round < 20; round++) {
		/* the same login, or two: the last slot of the side either way */
		struct racer r2 = { &s2, "c", &go, 9 };
		struct racer r3 = { &s3, round % 2 ? "c" : "d", &go, 9 };
		pthread_t t2, t3;

		pthread_barrier_init(&go, NULL, 2);
		assert_int_equal(pthread_create(&t2, NULL, racer_main, &r2), 0);
		assert_int_equal(pthread_create(&t3, NULL, racer_main, &r3), 0);
		pthread_join(t2, NULL);
		pthread_join(t3, NULL);
		pthread_barrier_destroy(&go);
		assert_true((r2.r == 0) != (r3.r == 0));
		assert_int_equal(live(job, NULL), 3);
		if (r2.r == 0)
			give(&s2, r2.login);
		else
			give(&s3, r3.login);
		assert_int_equal(live(job, NULL), 2);
	}
	caps_pg_close(c1);
	caps_pg_close(c2);
	caps_pg_close(c3);
	assert_int_equal(live(job, NULL), 0);
}

/* ---- leases ----------------------------------------------------------------- */

/* A worker that stops renewing (killed, cut off): its sessions stop
 * counting once their leases expire, and the others get the slots. */
static void test_expired_lease_frees_slots(void **unused)
{
	int64_t job = new_job(2, 2, false);
	struct caps_pg *dead = worker("dead", "", 60), *c2 = worker("alive", "", 60);
	struct limiter_shared sd = side(dead, job), s2 = side(c2, job);

	(void)unused;
	assert_int_equal(take(&sd, "a"), 0);
	assert_int_equal(take(&sd, "a"), 0);
	/* never renewed, never released from here on */
	assert_int_equal(take(&s2, "a"), -1);
	assert_int_equal(take(&s2, "b"), -1);
	/* the lease runs out (its last renewal a lease ago: no timing in
	 * this test's verdict) */
	sql("UPDATE q_sessions SET until = now() + interval '1 second' WHERE worker = 'dead'");
	assert_int_equal(take_waiting(&s2, "a", 60), 0);
	assert_int_equal(take_waiting(&s2, "b", 60), 0);
	assert_int_equal(live(job, NULL), 2);
	give(&s2, "a");
	give(&s2, "b");
	caps_pg_close(dead);
	caps_pg_close(c2);
}

/* The heartbeat extends exactly the worker's rows it holds. */
static void test_renew(void **unused)
{
	int64_t job = new_job(4, 8, false);
	struct caps_pg *c1 = worker("renew-1", "", 60), *c2 = worker("renew-2", "", 60);
	struct limiter_shared s1 = side(c1, job), s2 = side(c2, job);
	struct tr_error err;
	char q[256];

	(void)unused;
	assert_int_equal(take(&s1, "a"), 0);
	assert_int_equal(take(&s1, "b"), 0);
	assert_int_equal(take(&s2, "a"), 0);
	sql("UPDATE q_sessions SET until = now() + interval '2 seconds'");
	assert_int_equal(caps_pg_renew(c1, &err), 0);
	snprintf(q, sizeof(q), "SELECT count(*) FROM q_sessions WHERE job_id = %" PRId64
		 " AND until > now() + interval '30 seconds'", job);
	assert_int_equal(sql_int(q), 2);
	snprintf(q, sizeof(q), "SELECT count(*) FROM q_sessions WHERE job_id = %" PRId64
		 " AND worker = 'renew-1' AND until > now() + interval '30 seconds'", job);
	assert_int_equal(sql_int(q), 2);
	/* a row of this worker's name it does not hold (a previous life's) is
	 * left to expire */
	snprintf(q, sizeof(q), "INSERT INTO q_sessions (job_id, side, login, worker, until) "
		 "VALUES (%" PRId64 ", 'src', 'z', 'renew-1', now() + interval '2 seconds')", job);
	sql(q);
	assert_int_equal(caps_pg_renew(c1, &err), 0);
	snprintf(q, sizeof(q), "SELECT count(*) FROM q_sessions WHERE job_id = %" PRId64
		 " AND login = 'z' AND until < now() + interval '30 seconds'", job);
	assert_int_equal(sql_int(q), 1);
	/* long expired rows are purged by any heartbeat */
	sql("UPDATE q_sessions SET until = now() - interval '1 hour' WHERE login = 'z'");
	assert_int_equal(caps_pg_renew(c2, &err), 0);
	assert_int_equal(sql_int("SELECT count(*) FROM q_sessions WHERE login = 'z'"), 0);
	/* close deletes what the worker holds */
	caps_pg_close(c1);
	assert_int_equal(live(job, NULL), 1);
	caps_pg_close(c2);
	assert_int_equal(live(job, NULL), 0);
}

/* ---- refusals lower the cap for every worker -------------------------------- */

static void test_refused_lowers_for_all(void **unused)
{
	int64_t job = new_job(3, 10, false);
	struct caps_pg *c1 = worker("ref-1", "", 60), *c2 = worker("ref-2", "", 60),
		       *c3 = worker("ref-3", "", 60);
	struct limiter_shared s1 = side(c1, job), s2 = side(c2, job), s3 = side(c3, job);
	/* a login with bytes a bytea's text form would mangle */
	const char *odd = "o\\dd\xc3\xa9@x";
	struct tr_error err;
	int in_use, cap;

	(void)unused;
	assert_int_equal(take(&s1, odd), 0);
	assert_int_equal(take(&s1, odd), 0);
	assert_int_equal(take(&s2, odd), 0);
	assert_int_equal(caps_pg_count(c3, job, "src", odd, &in_use, &cap, &err), 0);
	assert_int_equal(in_use, 3);
	assert_int_equal(cap, 3);
	/* the server refused the third: two is the limit, for everybody */
	s2.refused(s2.ctx, odd);
	give(&s2, odd);
	assert_int_equal(caps_pg_count(c3, job, "src", odd, &in_use, &cap, &err), 0);
	assert_int_equal(in_use, 2);
	assert_int_equal(cap, 2);
	assert_int_equal(caps_pg_count(c1, job, "src", odd, &in_use, &cap, &err), 0);
	assert_int_equal(cap, 2);
	assert_int_equal(take(&s3, odd), -1);
	give(&s1, odd);
	assert_int_equal(take(&s3, odd), 0);
	assert_int_equal(take(&s2, odd), -1);
	/* other logins keep the job's cap */
	assert_int_equal(caps_pg_count(c3, job, "src", "b", &in_use, &cap, &err), 0);
	assert_int_equal(cap, 3);

	/* a login refused its only session: the side's total was hit */
	assert_int_equal(take(&s2, "b"), 0);
	assert_int_equal(live(job, NULL), 3);
	s2.refused(s2.ctx, "b");
	give(&s2, "b");
	assert_int_equal(caps_pg_count(c1, job, "src", NULL, &in_use, &cap, &err), 0);
	assert_int_equal(cap, 2);
	assert_int_equal(in_use, 2);
	assert_int_equal(take(&s1, "c"), -1);
	assert_int_equal(take(&s3, "c"), -1);
	/* the other side's caps are its own */
	{
		struct limiter_shared d;

		assert_int_equal(caps_pg_side(c1, job, "dst", &d, &err), 0);
		assert_int_equal(caps_pg_count(c1, job, "dst", NULL, &in_use, &cap, &err), 0);
		assert_int_equal(cap, 10);
	}
	/* a lowered cap is never raised by a later refusal */
	give(&s1, odd);
	assert_int_equal(take(&s1, "c"), 0);
	s1.refused(s1.ctx, "c");
	assert_int_equal(caps_pg_count(c1, job, "src", NULL, &in_use, &cap, &err), 0);
	assert_int_equal(cap, 1);
	give(&s1, "c");
	caps_pg_close(c1);
	caps_pg_close(c2);
	caps_pg_close(c3);
}

/* ---- caps per egress -------------------------------------------------------- */

static void test_per_egress(void **unused)
{
	int64_t job = new_job(2, 5, true), shared_job = new_job(2, 5, false);
	struct caps_pg *w1 = worker("eg-1", "e1", 60), *w2 = worker("eg-2", "e2", 60),
		       *w3 = worker("eg-3", "e1", 60);
	struct limiter_shared s1 = side(w1, job), s2 = side(w2, job), s3 = side(w3, job);
	struct limiter_shared t1 = side(w1, shared_job), t2 = side(w2, shared_job);
	struct tr_error err;
	int in_use, cap;

	(void)unused;
	assert_int_equal(take(&s1, "a"), 0);
	assert_int_equal(take(&s1, "a"), 0);
	assert_int_equal(take(&s3, "a"), -1);    /* egress e1 has its 2 */
	assert_int_equal(take(&s2, "a"), 0);     /* e2 has 2 of its own */
	assert_int_equal(take(&s2, "a"), 0);
	assert_int_equal(take(&s2, "a"), -1);
	assert_int_equal(take(&s3, "b"), 0);     /* 5 in all */
	assert_int_equal(take(&s2, "c"), -1);    /* the total counts every egress */
	assert_int_equal(caps_pg_count(w3, job, "src", "a", &in_use, &cap, &err), 0);
	assert_int_equal(in_use, 2);             /* e1's */
	/* a refusal seen from e2 lowers e2's cap only */
	s2.refused(s2.ctx, "a");
	give(&s2, "a");
	assert_int_equal(caps_pg_count(w2, job, "src", "a", &in_use, &cap, &err), 0);
	assert_int_equal(cap, 1);
	assert_int_equal(caps_pg_count(w1, job, "src", "a", &in_use, &cap, &err), 0);
	assert_int_equal(cap, 2);
	/* by default (no caps-per-egress): one cap for all egresses */
	assert_int_equal(take(&t1, "a"), 0);
	assert_int_equal(take(&t1, "a"), 0);
	assert_int_equal(take(&t2, "a"), -1);
	caps_pg_close(w1);
	caps_pg_close(w2);
	caps_pg_close(w3);
}

/* ---- stops and errors -------------------------------------------------------- */

/* A session waiting for a slot is ended by its scope's stop (a lost
 * account lease), and leaves no row behind. */
static void test_wait_ends_with_scope(void **unused)
{
	int64_t job = new_job(1, 1, false);
	struct caps_pg *c1 = worker("scope-1", "", 60), *c2 = worker("scope-2", "", 60);
	struct limiter_shared s1 = side(c1, job), s2 = side(c2, job);
	struct bounded b = { .sh = &s2, .login = "a" };
	pthread_t t;

	(void)unused;
	assert_int_equal(take(&s1, "a"), 0);
	assert_int_equal(pthread_create(&t, NULL, bounded_main, &b), 0);
	usleep(300000);
	assert_int_equal(atomic_load(&b.done), 0);
	net_scope_cancel(&b.scope);
	pthread_join(t, NULL);
	assert_int_equal(b.r, -1);
	assert_false(net_cancelled());
	assert_int_equal(live(job, NULL), 1);
	caps_pg_close(c1);
	caps_pg_close(c2);
}

static void test_errors(void **unused)
{
	int64_t job = new_job(2, 2, false);
	struct caps_pg *c = worker("err-1", "", 60), *bad = NULL;
	struct limiter_shared sh;
	struct tr_error err;
	char q[128];

	(void)unused;
	tr_error_clear(&err);
	assert_int_equal(caps_pg_side(c, job + 1000, "src", &sh, &err), -1);
	assert_int_equal(err.kind, TR_ERR_USAGE);
	assert_int_equal(caps_pg_side(c, job, "both", &sh, &err), -1);
	assert_int_equal(caps_pg_open(dsn, "", "", 60, &bad, &err), -1);
	assert_null(bad);
	assert_int_equal(caps_pg_open("postgresql://nobody@127.0.0.1:1/x", "w", "", 60, &bad,
				      &err), -1);
	assert_int_equal(err.kind, TR_ERR_TEMP);
	/* the job is deleted under a worker: no slot (no session opens), no hang */
	sh = side(c, job);
	assert_int_equal(take(&sh, "a"), 0);
	snprintf(q, sizeof(q), "DELETE FROM q_jobs WHERE id = %" PRId64, job);
	sql(q);
	assert_int_equal(sh.acquire(sh.ctx, "a", true), -1);
	give(&sh, "a");
	assert_int_equal(caps_pg_renew(c, &err), 0);
	caps_pg_close(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_race_for_last_slot),
		cmocka_unit_test(test_hammer_never_above_caps),
		cmocka_unit_test(test_expired_lease_frees_slots),
		cmocka_unit_test(test_renew),
		cmocka_unit_test(test_refused_lowers_for_all),
		cmocka_unit_test(test_per_egress),
		cmocka_unit_test(test_wait_ends_with_scope),
		cmocka_unit_test(test_errors),
	};
	struct tr_error err;
	int from, r;

	dsn = getenv("TRASLOCO_TEST_PG");
	if (dsn == NULL || dsn[0] == '\0') {
		fprintf(stderr, "TRASLOCO_TEST_PG is not set: run tests/integration/test_pg_units.sh\n");
		return 77;
	}
	tr_error_clear(&err);
	if (pg_connect(dsn, &db, &err) < 0 || pg_schema_init(db, &from, &err) < 0) {
		fprintf(stderr, "%s\n", err.msg);
		return 1;
	}
	r = cmocka_run_group_tests_name("caps_pg", tests, NULL, NULL);
	pg_close(db);
	return r;
}
