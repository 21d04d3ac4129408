/* bench_limiter: the connection limiter with many distinct logins, as
 * `trasloco check` or `run` of a large CSV drives it: every account takes a
 * slot on the source's and on the destination's limiter, opens, closes.
 *
 * usage: bench_limiter [LOGINS [THREADS]]    (defaults: 60000 8)
 *        bench_limiter --caps-pg DSN [ROUNDS [THREADS]]   (defaults: 2000 4)
 *        bench_limiter --rate-pg DSN [ROUNDS]             (default: 2000)
 *
 * Prints, for one thread and for THREADS threads (accounts taken in order,
 * as the pool does), the wall time of LOGINS accounts, nanoseconds per
 * acquire+release and the process's peak RSS.  Only the public API is used,
 * so the same file measures any version of scheduler.c.  A benchmark, not a
 * test: no threshold.
 *
 * --caps-pg: the cost of the cluster-wide caps (caps_pg.h) a worker pays
 * per session: ROUNDS acquire+release round trips of a PostgreSQL-held
 * slot (caps far from binding, so nothing waits), by one thread, then by
 * THREADS threads sharing the worker's one connection.  One line: round
 * trips per second and microseconds each.  The DSN's database gets the
 * schema (pg_schema_init) and a throwaway job, deleted at the end.
 *
 * --rate-pg: the cost of a throttle shared through a PostgreSQL state
 * (state_rate_take): ROUNDS takes of a slice (1 ns each: nothing waits),
 * one round trip each; a process pays one per 50 ms slice per server, so
 * this says how much of a slice's time goes to the database. */
#include "config.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "caps_pg.h"
#include "log.h"
#include "pg.h"
#include "pg_schema.h"
#include "scheduler.h"
#include "state.h"
#include "throttle.h"

struct ctx {
	struct limiter *src, *dst;
	size_t n;
	atomic_size_t next;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long peak_rss_kb(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss;
}

static void one(struct ctx *c, size_t i)
{
	char login[64];

	snprintf(login, sizeof(login), "user%06zu@customer-domain.example", i);
	if (limiter_acquire(c->src, login, true) < 0 || limiter_acquire(c->dst, login, true) < 0) {
		fprintf(stderr, "bench_limiter: slot refused for %s\n", login);
		exit(1);
	}
	limiter_release(c->src, login);
	limiter_release(c->dst, login);
}

static void *worker(void *arg)
{
	struct ctx *c = arg;
	size_t i;

	while ((i = atomic_fetch_add(&c->next, 1)) < c->n)
		one(c, i);
	return NULL;
}

static void run(size_t n, int threads)
{
	struct ctx c = { .n = n };
	pthread_t t[64];
	double t0, dt;
	int i;

	/* The program's defaults: 4 per account, 100 per server. */
	c.src = limiter_new("the source", 4, 100);
	c.dst = limiter_new("the destination", 4, 100);
	atomic_init(&c.next, 0);
	t0 = now_s();
	for (i = 1; i < threads; i++)
		pthread_create(&t[i], NULL, worker, &c);
	worker(&c);
	for (i = 1; i < threads; i++)
		pthread_join(t[i], NULL);
	dt = now_s() - t0;
	printf("limiter  logins=%zu threads=%d  wall %.3f s  %.0f ns per acquire+release  "
	       "peak RSS %ld kB\n", n, threads, dt, dt * 1e9 / (2.0 * (double)n), peak_rss_kb());
	limiter_free(c.src);
	limiter_free(c.dst);
}

/* ---- --caps-pg --------------------------------------------------------- */

struct pg_ctx {
	struct limiter_shared sh;
	size_t n;
	atomic_size_t next;
};

static void *pg_worker(void *arg)
{
	struct pg_ctx *c = arg;
	size_t i;

	while ((i = atomic_fetch_add(&c->next, 1)) < c->n) {
		char login[64];

		snprintf(login, sizeof(login), "user%06zu@customer-domain.example", i % 500);
		if (c->sh.acquire(c->sh.ctx, login, true) < 0) {
			fprintf(stderr, "bench_limiter: caps_pg refused a slot for %s\n", login);
			exit(1);
		}
		c->sh.release(c->sh.ctx, login);
	}
	return NULL;
}

static double pg_run_rounds(struct limiter_shared *sh, size_t n, int threads)
{
	struct pg_ctx c = { .sh = *sh, .n = n };
	pthread_t t[64];
	double t0;
	int i;

	atomic_init(&c.next, 0);
	t0 = now_s();
	for (i = 1; i < threads; i++)
		pthread_create(&t[i], NULL, pg_worker, &c);
	pg_worker(&c);
	for (i = 1; i < threads; i++)
		pthread_join(t[i], NULL);
	return now_s() - t0;
}

static int bench_caps_pg(const char *dsn, size_t n, int threads)
{
	struct tr_error err;
	struct pg *pg = NULL;
	struct caps_pg *c = NULL;
	struct limiter_shared sh;
	char job[24], q[256];
	PGresult *r;
	double d1, dn;
	int from;

	log_set_level(LOG_ERROR);
	tr_error_clear(&err);
	if (pg_connect(dsn, &pg, &err) < 0 || pg_schema_init(pg, &from, &err) < 0)
		goto fail;
	r = pg_exec(pg, "INSERT INTO q_jobs (name, config, src, dst) VALUES "
		    "('bench_limiter', '', '', '') RETURNING id", 0, NULL, &err);
	if (r == NULL)
		goto fail;
	snprintf(job, sizeof(job), "%s", pg_str(r, 0, 0));
	PQclear(r);
	snprintf(q, sizeof(q), "INSERT INTO q_caps (job_id, side, max_per_account, max_total) "
		 "VALUES (%s, 'src', 1000, 100000)", job);
	if (pg_run(pg, q, 0, NULL, &err) < 0 ||
	    caps_pg_open(dsn, "bench_limiter", "", 60, &c, &err) < 0 ||
	    caps_pg_side(c, strtoll(job, NULL, 10), "src", &sh, &err) < 0)
		goto fail;
	d1 = pg_run_rounds(&sh, n, 1);
	dn = pg_run_rounds(&sh, n, threads);
	printf("caps_pg  rounds=%zu  1 thread: %.0f acquire+release/s (%.0f us each)  "
	       "%d threads, one connection: %.0f/s (%.0f us each)\n", n, (double)n / d1,
	       d1 * 1e6 / (double)n, threads, (double)n / dn, dn * 1e6 / (double)n);
	caps_pg_close(c);
	snprintf(q, sizeof(q), "DELETE FROM q_jobs WHERE id = %s", job);
	pg_run(pg, q, 0, NULL, &err);
	pg_close(pg);
	return 0;
fail:
	fprintf(stderr, "bench_limiter: %s\n", err.msg);
	caps_pg_close(c);
	pg_close(pg);
	return 1;
}

static int bench_rate_pg(const char *dsn, size_t n)
{
	struct tr_error err;
	struct pg *pg = NULL;
	struct state *st = NULL;
	double t0, d, wait;
	char key[64];
	int from;
	size_t i;

	log_set_level(LOG_ERROR);
	tr_error_clear(&err);
	snprintf(key, sizeof(key), "bench_limiter %d bytes/s", (int)getpid());
	if (pg_connect(dsn, &pg, &err) < 0 || pg_schema_init(pg, &from, &err) < 0 ||
	    state_open(dsn, &st, &err) < 0)
		goto fail;
	if (state_rate_take(st, key, 1e-9, &wait, &err) < 0)    /* makes the table */
		goto fail;
	t0 = now_s();
	for (i = 0; i < n; i++)
		if (state_rate_take(st, key, 1e-9, &wait, &err) < 0)
			goto fail;
	d = now_s() - t0;
	printf("rate_pg  rounds=%zu  %.0f takes/s (%.0f us each: %.2f %% of a %.0f ms slice)\n",
	       n, (double)n / d, d * 1e6 / (double)n, 100.0 * d / (double)n / THROTTLE_SLICE_S,
	       THROTTLE_SLICE_S * 1000);
	{
		char q[160];

		snprintf(q, sizeof(q), "DELETE FROM st_rates WHERE key = '%s'", key);
		pg_run(pg, q, 0, NULL, &err);
	}
	state_close(st);
	pg_close(pg);
	return 0;
fail:
	fprintf(stderr, "bench_limiter: %s\n", err.msg);
	state_close(st);
	pg_close(pg);
	return 1;
}

int main(int argc, char **argv)
{
	if (argc > 2 && strcmp(argv[1], "--rate-pg") == 0) {
		size_t rounds = argc > 3 ? strtoul(argv[3], NULL, 10) : 2000;

		return bench_rate_pg(argv[2], rounds > 0 ? rounds : 2000);
	}
	if (argc > 2 && strcmp(argv[1], "--caps-pg") == 0) {
		size_t rounds = argc > 3 ? strtoul(argv[3], NULL, 10) : 2000;
		int th = argc > 4 ? atoi(argv[4]) : 4;

		if (th < 1 || th > 64)
			th = 4;
		return bench_caps_pg(argv[2], rounds > 0 ? rounds : 2000, th);
	}
	size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 60000;
	int threads = argc > 2 ? atoi(argv[2]) : 8;

	if (threads < 1 || threads > 64)
		threads = 8;
	run(n, 1);
	run(n, threads);
	return 0;
}
