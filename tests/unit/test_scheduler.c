/* Units of the scheduler: the connection limiter (never above a cap, even
 * with many threads; adaptive on refusals; with a shared cap of other
 * processes on top) and the pool; and net.h's scopes, which stop the
 * waits of one piece of work apart from the rest of the process. */
#include "config.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>

#include <cmocka.h>

#include "net.h"
#include "scheduler.h"
#include "tls.h"

static void test_caps(void **state)
{
	struct limiter *l = limiter_new("test", 2, 3);

	(void)state;
	assert_non_null(l);
	assert_int_equal(limiter_acquire(l, "a", false), 0);
	assert_int_equal(limiter_acquire(l, "a", false), 0);
	/* per account */
	assert_int_equal(limiter_acquire(l, "a", false), -1);
	assert_int_equal(limiter_in_use(l, "a"), 2);
	assert_int_equal(limiter_acquire(l, "b", false), 0);
	/* per server */
	assert_int_equal(limiter_acquire(l, "b", false), -1);
	assert_int_equal(limiter_acquire(l, "c", false), -1);
	assert_int_equal(limiter_in_use(l, NULL), 3);
	limiter_release(l, "a");
	assert_int_equal(limiter_acquire(l, "c", false), 0);
	assert_int_equal(limiter_in_use(l, NULL), 3);
	assert_int_equal(limiter_peak(l, NULL), 3);
	assert_int_equal(limiter_peak(l, "a"), 2);
	/* releasing what was never taken changes nothing */
	limiter_release(l, "zzz");
	assert_int_equal(limiter_in_use(l, NULL), 3);
	limiter_free(l);
}

static void test_refused(void **state)
{
	struct limiter *l = limiter_new("test", 4, 10);

	(void)state;
	/* Third session of "a" refused by the server: a keeps 2 at most. */
	assert_int_equal(limiter_acquire(l, "a", false), 0);
	assert_int_equal(limiter_acquire(l, "a", false), 0);
	assert_int_equal(limiter_acquire(l, "a", false), 0);
	limiter_refused(l, "a");
	limiter_release(l, "a");
	assert_int_equal(limiter_cap(l, "a"), 2);
	assert_int_equal(limiter_acquire(l, "a", false), -1);
	/* Other accounts keep their own cap. */
	assert_int_equal(limiter_cap(l, "b"), 4);
	/* An account refused while holding nothing else: the server's cap. */
	assert_int_equal(limiter_acquire(l, "b", false), 0);
	assert_int_equal(limiter_acquire(l, "c", false), 0);
	limiter_refused(l, "c");
	limiter_release(l, "c");
	assert_int_equal(limiter_cap(l, NULL), 3);
	assert_int_equal(limiter_acquire(l, "d", false), -1);
	/* Never below 1: a refusal with nothing else open lowers nothing. */
	limiter_release(l, "a");
	limiter_release(l, "a");
	limiter_release(l, "b");
	assert_int_equal(limiter_acquire(l, "e", false), 0);
	limiter_refused(l, "e");
	limiter_release(l, "e");
	assert_int_equal(limiter_cap(l, NULL), 3);
	assert_int_equal(limiter_cap(l, "e"), 4);
	limiter_free(l);
}

/* 100,000 distinct logins, as a big CSV brings them: the limiter keeps only
 * the active ones (it used to keep every login ever seen, found by a linear
 * scan: 10.9 s for `check` of 60,000 accounts). */
static void test_many_logins_memory_flat(void **state)
{
	struct limiter *l = limiter_new("test", 2, 8);
	char name[64], held[4][64];
	int i, k;

	(void)state;
	for (i = 0; i < 100000; i++) {
		snprintf(name, sizeof(name), "user%06d@example.test", i);
		assert_int_equal(limiter_acquire(l, name, false), 0);
		assert_int_equal(limiter_acquire(l, name, false), 0);
		assert_int_equal(limiter_in_use(l, name), 2);
		limiter_release(l, name);
		limiter_release(l, name);
		assert_int_equal(limiter_entries(l), 0);
	}
	/* Some held while others come and go. */
	for (k = 0; k < 4; k++) {
		snprintf(held[k], sizeof(held[k]), "held%d@example.test", k);
		assert_int_equal(limiter_acquire(l, held[k], false), 0);
	}
	for (i = 0; i < 100000; i++) {
		snprintf(name, sizeof(name), "other%06d@example.test", i);
		assert_int_equal(limiter_acquire(l, name, true), 0);
		assert_int_equal(limiter_entries(l), 5);
		limiter_release(l, name);
	}
	assert_int_equal(limiter_entries(l), 4);
	for (k = 0; k < 4; k++) {
		assert_int_equal(limiter_in_use(l, held[k]), 1);
		limiter_release(l, held[k]);
	}
	assert_int_equal(limiter_entries(l), 0);
	assert_int_equal(limiter_in_use(l, NULL), 0);
	assert_int_equal(limiter_peak(l, NULL), 5);
	/* A refused attempt (no slot taken) leaves nothing behind either. */
	for (k = 0; k < 8; k++) {
		snprintf(name, sizeof(name), "full%d", k);
		assert_int_equal(limiter_acquire(l, name, false), 0);
	}
	assert_int_equal(limiter_acquire(l, "late", false), -1);
	assert_int_equal(limiter_entries(l), 8);
	for (k = 0; k < 8; k++) {
		snprintf(name, sizeof(name), "full%d", k);
		limiter_release(l, name);
	}
	assert_int_equal(limiter_entries(l), 0);
	limiter_free(l);
}

/* What an idle login keeps: its lowered cap, for the rest of the run (the
 * account's next session must not be refused again); nothing else. */
static void test_lowered_cap_outlives_idle(void **state)
{
	struct limiter *l = limiter_new("test", 4, 10000);
	char name[32];
	int i;

	(void)state;
	assert_int_equal(limiter_acquire(l, "a", false), 0);
	assert_int_equal(limiter_acquire(l, "a", false), 0);
	limiter_refused(l, "a");
	limiter_release(l, "a");
	limiter_release(l, "a");
	assert_int_equal(limiter_in_use(l, "a"), 0);
	assert_int_equal(limiter_entries(l), 1);
	/* Many others at once meanwhile: the table grows around it. */
	for (i = 0; i < 5000; i++) {
		snprintf(name, sizeof(name), "x%d", i);
		assert_int_equal(limiter_acquire(l, name, false), 0);
	}
	assert_int_equal(limiter_entries(l), 5001);
	for (i = 0; i < 5000; i++) {
		snprintf(name, sizeof(name), "x%d", i);
		limiter_release(l, name);
	}
	assert_int_equal(limiter_entries(l), 1);
	assert_int_equal(limiter_cap(l, "a"), 1);
	assert_int_equal(limiter_acquire(l, "a", false), 0);
	assert_int_equal(limiter_acquire(l, "a", false), -1);
	limiter_release(l, "a");
	assert_int_equal(limiter_entries(l), 1);
	/* A refusal that lowered the server's cap keeps no login entry. */
	assert_int_equal(limiter_acquire(l, "b", false), 0);
	assert_int_equal(limiter_acquire(l, "c", false), 0);
	limiter_refused(l, "c");
	limiter_release(l, "c");
	limiter_release(l, "b");
	assert_int_equal(limiter_cap(l, NULL), 1);
	assert_int_equal(limiter_cap(l, "c"), 4);
	assert_int_equal(limiter_entries(l), 1);
	limiter_free(l);
}

struct stress {
	struct limiter *l;
	atomic_int per[5];
	atomic_int total;
	atomic_int violations;
	int seed;
};

static void *stress_main(void *arg)
{
	struct stress *st = arg;
	unsigned int seed = (unsigned int)atomic_fetch_add(&st->total, 0) ^ (unsigned int)(uintptr_t)&seed;
	int i;

	for (i = 0; i < 2000; i++) {
		int k = (int)(rand_r(&seed) % 5);
		char name[8] = { 'a', (char)('0' + k), 0 };

		if (limiter_acquire(st->l, name, rand_r(&seed) % 2 == 0) < 0)
			continue;
		if (atomic_fetch_add(&st->per[k], 1) + 1 > 3)
			atomic_fetch_add(&st->violations, 1);
		if (atomic_fetch_add(&st->total, 1) + 1 > 7)
			atomic_fetch_add(&st->violations, 1);
		if (rand_r(&seed) % 4 == 0)
			usleep(10);
		atomic_fetch_sub(&st->per[k], 1);
		atomic_fetch_sub(&st->total, 1);
		limiter_release(st->l, name);
	}
	return NULL;
}

static void test_threads_never_exceed(void **state)
{
	struct stress st;
	pthread_t t[16];
	int i;

	(void)state;
	memset(&st, 0, sizeof(st));
	st.l = limiter_new("test", 3, 7);
	for (i = 0; i < 16; i++)
		assert_int_equal(pthread_create(&t[i], NULL, stress_main, &st), 0);
	for (i = 0; i < 16; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(atomic_load(&st.violations), 0);
	assert_int_equal(limiter_in_use(st.l, NULL), 0);
	assert_true(limiter_peak(st.l, NULL) <= 7);
	assert_int_equal(limiter_entries(st.l), 0);
	limiter_free(st.l);
}

struct waiter {
	struct limiter *l;
	atomic_int got;
};

static void *wait_main(void *arg)
{
	struct waiter *w = arg;

	if (limiter_acquire(w->l, "a", true) == 0)
		atomic_store(&w->got, 1);
	return NULL;
}

static void test_wait_wakes_on_release(void **state)
{
	struct waiter w = { .l = limiter_new("test", 1, 1) };
	pthread_t t;

	(void)state;
	assert_int_equal(limiter_acquire(w.l, "a", false), 0);
	assert_int_equal(pthread_create(&t, NULL, wait_main, &w), 0);
	usleep(50000);
	assert_int_equal(atomic_load(&w.got), 0);
	limiter_release(w.l, "a");
	pthread_join(t, NULL);
	assert_int_equal(atomic_load(&w.got), 1);
	limiter_release(w.l, "a");
	limiter_free(w.l);
}

struct waiter2 {
	struct limiter *l;
	atomic_int state;   /* 1: acquired, -1: gave up */
};

static void *wait_other_main(void *arg)
{
	struct waiter2 *w = arg;

	atomic_store(&w->state, limiter_acquire(w->l, "w", true) == 0 ? 1 : -1);
	return NULL;
}

/* A login waiting for room holds no slot, but its entry stays: it is freed
 * only once the waiter got its slot and gave it back. */
static void test_waiter_keeps_entry(void **state)
{
	struct waiter2 w = { .l = limiter_new("test", 2, 1) };
	pthread_t t;
	int i;

	(void)state;
	assert_int_equal(limiter_acquire(w.l, "a", false), 0);
	assert_int_equal(pthread_create(&t, NULL, wait_other_main, &w), 0);
	for (i = 0; i < 500 && limiter_entries(w.l) < 2; i++)
		usleep(10000);
	assert_int_equal(limiter_entries(w.l), 2);
	assert_int_equal(limiter_in_use(w.l, "w"), 0);
	/* "a" comes and goes: the waiter's entry must survive "a"'s frees. */
	limiter_release(w.l, "a");
	pthread_join(t, NULL);
	assert_int_equal(atomic_load(&w.state), 1);
	assert_int_equal(limiter_entries(w.l), 1);
	assert_int_equal(limiter_in_use(w.l, "w"), 1);
	limiter_release(w.l, "w");
	assert_int_equal(limiter_entries(w.l), 0);
	limiter_free(w.l);
}

/* ---- a shared cap on top (limiter_set_shared) ----------------------------- */

/* A stand-in for caps_pg: one counter with a cap of its own, waiting as the
 * database's does (polling, ended by a stop). */
struct fake_shared {
	pthread_mutex_t lock;
	pthread_cond_t freed;
	int cap, in_use, peak;
	int acquires, releases, refusals;
	bool fail;              /* the store is down: every acquire fails */
	struct limiter *l;      /* to prove the limiter's lock is not held */
};

static int fake_acquire(void *ctx, const char *account, bool wait)
{
	struct fake_shared *f = ctx;
	int r = -1;

	(void)account;
	/* would deadlock if the limiter called us with its lock held */
	(void)limiter_in_use(f->l, NULL);
	pthread_mutex_lock(&f->lock);
	f->acquires++;
	while (!f->fail) {
		if (f->in_use < f->cap) {
			if (++f->in_use > f->peak)
				f->peak = f->in_use;
			r = 0;
			break;
		}
		if (!wait || net_cancelled())
			break;
		{
			struct timespec until;

			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_nsec += 10 * 1000000L;
			if (until.tv_nsec >= 1000000000L) {
				until.tv_sec++;
				until.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&f->freed, &f->lock, &until);
		}
	}
	pthread_mutex_unlock(&f->lock);
	return r;
}

static void fake_release(void *ctx, const char *account)
{
	struct fake_shared *f = ctx;

	(void)account;
	(void)limiter_in_use(f->l, NULL);
	pthread_mutex_lock(&f->lock);
	f->releases++;
	f->in_use--;
	pthread_cond_broadcast(&f->freed);
	pthread_mutex_unlock(&f->lock);
}

static void fake_refused(void *ctx, const char *account)
{
	struct fake_shared *f = ctx;

	(void)account;
	(void)limiter_in_use(f->l, NULL);
	pthread_mutex_lock(&f->lock);
	f->refusals++;
	pthread_mutex_unlock(&f->lock);
}

static void fake_init(struct fake_shared *f, struct limiter *l, int cap)
{
	struct limiter_shared sh = { fake_acquire, fake_release, fake_refused, f };

	memset(f, 0, sizeof(*f));
	pthread_mutex_init(&f->lock, NULL);
	pthread_cond_init(&f->freed, NULL);
	f->cap = cap;
	f->l = l;
	limiter_set_shared(l, &sh);
}

static void fake_destroy(struct fake_shared *f)
{
	pthread_cond_destroy(&f->freed);
	pthread_mutex_destroy(&f->lock);
}

static void test_shared_both_caps(void **state)
{
	struct limiter *l = limiter_new("test", 2, 5);
	struct fake_shared f;

	(void)state;
	fake_init(&f, l, 3);
	assert_int_equal(limiter_acquire(l, "a", false), 0);
	assert_int_equal(limiter_acquire(l, "a", false), 0);
	assert_int_equal(limiter_acquire(l, "a", false), -1);   /* local: per account */
	assert_int_equal(f.acquires, 2);                        /* not asked */
	assert_int_equal(limiter_acquire(l, "b", false), 0);
	/* shared full: the local slot taken for it goes back */
	assert_int_equal(limiter_acquire(l, "c", false), -1);
	assert_int_equal(f.acquires, 4);
	assert_int_equal(limiter_in_use(l, NULL), 3);
	assert_int_equal(limiter_in_use(l, "c"), 0);
	assert_int_equal(limiter_entries(l), 2);
	/* refused and release are passed on */
	limiter_refused(l, "b");
	assert_int_equal(f.refusals, 1);
	limiter_release(l, "b");
	assert_int_equal(f.in_use, 2);
	assert_int_equal(limiter_cap(l, NULL), 2);             /* lowered here too */
	limiter_release(l, "a");
	assert_int_equal(limiter_acquire(l, "c", false), 0);
	limiter_release(l, "c");
	limiter_release(l, "a");
	assert_int_equal(f.in_use, 0);
	assert_int_equal(f.releases, 4);
	assert_int_equal(limiter_in_use(l, NULL), 0);
	/* a failing shared store: no slot, none kept locally */
	f.fail = true;
	assert_int_equal(limiter_acquire(l, "a", true), -1);
	assert_int_equal(limiter_in_use(l, NULL), 0);
	assert_int_equal(limiter_entries(l), 0);
	limiter_free(l);
	fake_destroy(&f);
}

struct shared_stress {
	struct limiter *l;
	atomic_int per[5];
	atomic_int total;
	atomic_int violations;
	atomic_int granted;
};

/* Local caps 3 per login and 7 in all; the shared cap 4 in all: the
 * sessions open never pass either, whatever the threads do. */
static void *shared_stress_main(void *arg)
{
	struct shared_stress *st = arg;
	unsigned int seed = (unsigned int)(uintptr_t)&seed;
	int i;

	for (i = 0; i < 1000; i++) {
		int k = (int)(rand_r(&seed) % 5);
		char name[8] = { 'a', (char)('0' + k), 0 };

		if (limiter_acquire(st->l, name, rand_r(&seed) % 2 == 0) < 0)
			continue;
		atomic_fetch_add(&st->granted, 1);
		if (atomic_fetch_add(&st->per[k], 1) + 1 > 3)
			atomic_fetch_add(&st->violations, 1);
		if (atomic_fetch_add(&st->total, 1) + 1 > 4)
			atomic_fetch_add(&st->violations, 1);
		if (rand_r(&seed) % 4 == 0)
			usleep(10);
		atomic_fetch_sub(&st->per[k], 1);
		atomic_fetch_sub(&st->total, 1);
		limiter_release(st->l, name);
	}
	return NULL;
}

static void test_shared_threads_never_exceed(void **state)
{
	struct shared_stress st;
	struct fake_shared f;
	pthread_t t[16];
	int i;

	(void)state;
	memset(&st, 0, sizeof(st));
	st.l = limiter_new("test", 3, 7);
	fake_init(&f, st.l, 4);
	for (i = 0; i < 16; i++)
		assert_int_equal(pthread_create(&t[i], NULL, shared_stress_main, &st), 0);
	for (i = 0; i < 16; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(atomic_load(&st.violations), 0);
	assert_true(atomic_load(&st.granted) > 0);
	assert_true(f.peak <= 4);
	assert_int_equal(f.in_use, 0);
	assert_int_equal(f.releases, atomic_load(&st.granted));
	assert_int_equal(limiter_in_use(st.l, NULL), 0);
	assert_true(limiter_peak(st.l, NULL) <= 7);
	assert_int_equal(limiter_entries(st.l), 0);
	limiter_free(st.l);
	fake_destroy(&f);
}

/* ---- scopes (net.h) -------------------------------------------------------- */

static double mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct scoped_wait {
	struct net_scope *scope;
	int fd;
	atomic_int in;          /* 1 once in its scope and about to wait */
	atomic_int done;        /* 1 once net_wait returned */
	int r, err;
	bool cancelled_after;
	double waited;
};

static void *scoped_wait_main(void *arg)
{
	struct scoped_wait *w = arg;
	double t0;

	net_scope_enter(w->scope);
	assert_true(net_scope_current() == w->scope);
	atomic_store(&w->in, 1);
	t0 = mono_s();
	/* a silent peer: only a stop ends this before a minute */
	w->r = net_wait(w->fd, POLLIN, 60000);
	w->err = errno;
	w->waited = mono_s() - t0;
	w->cancelled_after = net_cancelled();
	atomic_store(&w->done, 1);
	net_scope_enter(NULL);
	return NULL;
}

static void test_scope_cancel_wakes_net_wait(void **state)
{
	struct net_scope s1 = { 0 }, s2 = { 0 };
	struct scoped_wait w1 = { .scope = &s1 }, w2 = { .scope = &s2 };
	int sv[2], sv2[2];
	pthread_t t1, t2;

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv2), 0);
	w1.fd = sv[0];
	w2.fd = sv2[0];
	assert_null(net_scope_current());
	assert_int_equal(pthread_create(&t1, NULL, scoped_wait_main, &w1), 0);
	assert_int_equal(pthread_create(&t2, NULL, scoped_wait_main, &w2), 0);
	while (!atomic_load(&w1.in) || !atomic_load(&w2.in))
		usleep(1000);
	usleep(50000);
	net_scope_cancel(&s1);
	pthread_join(t1, NULL);
	assert_int_equal(w1.r, -1);
	assert_int_equal(w1.err, ECANCELED);
	assert_true(w1.cancelled_after);
	/* long before the wait's own minute: the slice is 200 ms */
	assert_true(w1.waited < 30.0);
	printf("scope cancel noticed by net_wait after %.0f ms\n", w1.waited * 1000);
	/* the other scope, and the process, go on */
	assert_false(net_cancelled());
	assert_int_equal(atomic_load(&w2.in), 1);
	usleep(300000);
	assert_int_equal(atomic_load(&w2.done), 0);
	net_scope_cancel(&s2);
	pthread_join(t2, NULL);
	assert_int_equal(w2.r, -1);
	assert_int_equal(w2.err, ECANCELED);
	assert_false(net_cancelled());
	/* a thread that never entered a scope: not stopped by any */
	assert_int_equal(net_wait(sv[0], POLLIN, 10), 0);
	close(sv[0]);
	close(sv[1]);
	close(sv2[0]);
	close(sv2[1]);
}

struct scoped_acquire {
	struct net_scope *scope;
	struct limiter *l;
	atomic_int in;
	atomic_int r;
};

static void *scoped_acquire_main(void *arg)
{
	struct scoped_acquire *w = arg;

	net_scope_enter(w->scope);
	atomic_store(&w->in, 1);
	atomic_store(&w->r, limiter_acquire(w->l, "a", true));
	net_scope_enter(NULL);
	return NULL;
}

/* A session waiting for a slot (local, then shared) is stopped with its
 * scope, the other waiters are not. */
static void test_scope_cancel_ends_slot_waits(void **state)
{
	struct net_scope s1 = { 0 }, s2 = { 0 };
	struct limiter *l = limiter_new("test", 1, 1), *l2 = limiter_new("test2", 5, 5);
	struct scoped_acquire w1 = { .scope = &s1, .l = l }, w2 = { .scope = &s2, .l = l };
	struct scoped_acquire w3 = { .scope = &s1, .l = l2 };
	struct fake_shared f;
	pthread_t t1, t2, t3;

	(void)state;
	atomic_init(&w1.r, 9);
	atomic_init(&w2.r, 9);
	atomic_init(&w3.r, 9);
	fake_init(&f, l2, 1);
	assert_int_equal(limiter_acquire(l, "a", false), 0);
	assert_int_equal(limiter_acquire(l2, "a", false), 0);
	assert_int_equal(pthread_create(&t1, NULL, scoped_acquire_main, &w1), 0);
	assert_int_equal(pthread_create(&t2, NULL, scoped_acquire_main, &w2), 0);
	assert_int_equal(pthread_create(&t3, NULL, scoped_acquire_main, &w3), 0);
	while (!atomic_load(&w1.in) || !atomic_load(&w2.in) || !atomic_load(&w3.in))
		usleep(1000);
	usleep(50000);
	net_scope_cancel(&s1);
	pthread_join(t1, NULL);
	pthread_join(t3, NULL);
	assert_int_equal(atomic_load(&w1.r), -1);
	assert_int_equal(atomic_load(&w3.r), -1);     /* in the shared wait */
	assert_int_equal(limiter_in_use(l2, NULL), 1); /* its local slot went back */
	assert_int_equal(atomic_load(&w2.r), 9);      /* still waiting */
	limiter_release(l, "a");
	pthread_join(t2, NULL);
	assert_int_equal(atomic_load(&w2.r), 0);
	limiter_release(l, "a");
	limiter_release(l2, "a");
	assert_false(net_cancelled());
	limiter_free(l);
	limiter_free(l2);
	fake_destroy(&f);
}

struct scoped_handshake {
	struct net_scope scope;
	struct tls_ctx *ctx;
	int fd;
	atomic_int in;
	int r;
	struct tr_error err;
};

static void *scoped_handshake_main(void *arg)
{
	struct scoped_handshake *h = arg;
	struct _mailstream_low *low = NULL;

	net_scope_enter(&h->scope);
	atomic_store(&h->in, 1);
	h->r = tls_low_start(h->ctx, h->fd, "imap.example", 60, &low, &h->err);
	net_scope_enter(NULL);
	return NULL;
}

/* A session stopped in its TLS handshake (a server that never answers) is
 * stopped, not failed by the server's TLS: the account is not blamed. */
static void test_scope_cancel_stops_tls_handshake(void **state)
{
	struct scoped_handshake h;
	int sv[2];
	pthread_t t;

	(void)state;
	memset(&h, 0, sizeof(h));
	tr_error_clear(&h.err);
	assert_int_equal(tls_ctx_new(NULL, true, &h.ctx, &h.err), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	h.fd = sv[0];
	assert_int_equal(pthread_create(&t, NULL, scoped_handshake_main, &h), 0);
	while (!atomic_load(&h.in))
		usleep(1000);
	usleep(100000);
	net_scope_cancel(&h.scope);
	pthread_join(t, NULL);
	assert_int_equal(h.r, -1);
	assert_int_equal(h.err.kind, TR_ERR_STOPPED);
	assert_false(net_cancelled());
	close(sv[0]);
	close(sv[1]);
	tls_ctx_free(h.ctx);
}

static atomic_int seen[1000];

static void count_one(size_t i, void *ctx)
{
	(void)ctx;
	atomic_fetch_add(&seen[i], 1);
}

static void test_pool(void **state)
{
	size_t i;

	(void)state;
	sched_run(1000, 7, count_one, NULL, NULL);
	for (i = 0; i < 1000; i++)
		assert_int_equal(atomic_load(&seen[i]), 1);
	sched_run(0, 4, count_one, NULL, NULL);
	sched_run(3, 1, count_one, NULL, NULL);
	assert_int_equal(atomic_load(&seen[0]), 2);
	assert_int_equal(atomic_load(&seen[3]), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_caps),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_many_logins_memory_flat),
		cmocka_unit_test(test_lowered_cap_outlives_idle),
		cmocka_unit_test(test_threads_never_exceed),
		cmocka_unit_test(test_waiter_keeps_entry),
		cmocka_unit_test(test_wait_wakes_on_release),
		cmocka_unit_test(test_pool),
		cmocka_unit_test(test_shared_both_caps),
		cmocka_unit_test(test_shared_threads_never_exceed),
		cmocka_unit_test(test_scope_cancel_wakes_net_wait),
		cmocka_unit_test(test_scope_cancel_ends_slot_waits),
		cmocka_unit_test(test_scope_cancel_stops_tls_handshake),
	};

	return cmocka_run_group_tests_name("scheduler", tests, NULL, NULL);
}
