/* Units of the scheduler: the connection limiter (never above a cap, even
 * with many threads; adaptive on refusals) and the pool. */
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

#include <cmocka.h>

#include "scheduler.h"

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
	};

	return cmocka_run_group_tests_name("scheduler", tests, NULL, NULL);
}
