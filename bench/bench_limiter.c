/* bench_limiter: the connection limiter with many distinct logins, as
 * `trasloco check` or `run` of a large CSV drives it: every account takes a
 * slot on the source's and on the destination's limiter, opens, closes.
 *
 * usage: bench_limiter [LOGINS [THREADS]]    (defaults: 60000 8)
 *
 * Prints, for one thread and for THREADS threads (accounts taken in order,
 * as the pool does), the wall time of LOGINS accounts, nanoseconds per
 * acquire+release and the process's peak RSS.  Only the public API is used,
 * so the same file measures any version of scheduler.c.  A benchmark, not a
 * test: no threshold. */
#include "config.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

#include "scheduler.h"

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

int main(int argc, char **argv)
{
	size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 60000;
	int threads = argc > 2 ? atoi(argv[2]) : 8;

	if (threads < 1 || threads > 64)
		threads = 8;
	run(n, 1);
	run(n, threads);
	return 0;
}
