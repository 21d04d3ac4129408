/* scheduler: see include/scheduler.h */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "net.h"
#include "scheduler.h"

struct acct_slot {
	char *account;
	int in_use, cap, peak;
};

struct limiter {
	pthread_mutex_t lock;
	pthread_cond_t freed;
	char *label;
	int max_per_account;
	int total, cap, peak;
	struct acct_slot *v;
	size_t n, alloc;
};

struct limiter *limiter_new(const char *label, int max_per_account, int max_total)
{
	struct limiter *l = calloc(1, sizeof(*l));

	if (l == NULL)
		return NULL;
	l->label = strdup(label != NULL ? label : "server");
	if (l->label == NULL) {
		free(l);
		return NULL;
	}
	pthread_mutex_init(&l->lock, NULL);
	pthread_cond_init(&l->freed, NULL);
	l->max_per_account = max_per_account > 0 ? max_per_account : 1;
	l->cap = max_total > 0 ? max_total : 1;
	return l;
}

void limiter_free(struct limiter *l)
{
	size_t i;

	if (l == NULL)
		return;
	for (i = 0; i < l->n; i++)
		free(l->v[i].account);
	free(l->v);
	free(l->label);
	pthread_cond_destroy(&l->freed);
	pthread_mutex_destroy(&l->lock);
	free(l);
}

/* Caller holds the lock.  Accounts are few per run: a linear search is fine. */
static struct acct_slot *slot(struct limiter *l, const char *account, bool create)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		if (strcmp(l->v[i].account, account) == 0)
			return &l->v[i];
	if (!create)
		return NULL;
	if (l->n == l->alloc) {
		size_t na = l->alloc ? l->alloc * 2 : 16;
		struct acct_slot *nv = realloc(l->v, na * sizeof(*nv));

		if (nv == NULL)
			return NULL;
		l->v = nv;
		l->alloc = na;
	}
	l->v[l->n].account = strdup(account);
	if (l->v[l->n].account == NULL)
		return NULL;
	l->v[l->n].in_use = 0;
	l->v[l->n].peak = 0;
	l->v[l->n].cap = l->max_per_account;
	return &l->v[l->n++];
}

int limiter_acquire(struct limiter *l, const char *account, bool wait)
{
	struct acct_slot *a;
	int r = -1;

	pthread_mutex_lock(&l->lock);
	a = slot(l, account, true);
	while (a != NULL) {
		if (a->in_use < a->cap && l->total < l->cap) {
			a->in_use++;
			l->total++;
			if (a->in_use > a->peak)
				a->peak = a->in_use;
			if (l->total > l->peak)
				l->peak = l->total;
			r = 0;
			break;
		}
		if (!wait || net_cancelled())
			break;
		/* Wake up now and then to notice a stop request. */
		{
			struct timespec until;

			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_sec += 1;
			pthread_cond_timedwait(&l->freed, &l->lock, &until);
		}
		a = slot(l, account, false);
	}
	pthread_mutex_unlock(&l->lock);
	return r;
}

void limiter_release(struct limiter *l, const char *account)
{
	struct acct_slot *a;

	pthread_mutex_lock(&l->lock);
	a = slot(l, account, false);
	if (a != NULL && a->in_use > 0) {
		a->in_use--;
		l->total--;
	}
	pthread_cond_broadcast(&l->freed);
	pthread_mutex_unlock(&l->lock);
}

void limiter_refused(struct limiter *l, const char *account)
{
	struct acct_slot *a;

	pthread_mutex_lock(&l->lock);
	a = slot(l, account, false);
	if (a != NULL && a->in_use > 1) {
		/* The slot being refused is counted in in_use: the server took
		 * in_use - 1 sessions of this account and no more. */
		int cap = a->in_use - 1;

		if (cap < a->cap) {
			log_warn(account, "%s refused session %d of this account: at most %d from now on",
				 l->label, a->in_use, cap);
			a->cap = cap;
		}
	} else if (l->total > 1) {
		int cap = l->total - 1;

		if (cap < l->cap) {
			log_warn(account, "%s refused a session with %d open in all: at most %d from "
				 "now on", l->label, l->total - 1, cap);
			l->cap = cap;
		}
	}
	pthread_mutex_unlock(&l->lock);
}

static int get(struct limiter *l, const char *account, int what)
{
	struct acct_slot *a;
	int v;

	pthread_mutex_lock(&l->lock);
	if (account == NULL) {
		v = what == 0 ? l->total : what == 1 ? l->cap : l->peak;
	} else {
		a = slot(l, account, false);
		v = a == NULL ? (what == 1 ? l->max_per_account : 0)
			      : what == 0 ? a->in_use : what == 1 ? a->cap : a->peak;
	}
	pthread_mutex_unlock(&l->lock);
	return v;
}

int limiter_in_use(struct limiter *l, const char *account)
{
	return get(l, account, 0);
}

int limiter_cap(struct limiter *l, const char *account)
{
	return get(l, account, 1);
}

int limiter_peak(struct limiter *l, const char *account)
{
	return get(l, account, 2);
}

/* ---- the pool ----------------------------------------------------------- */

struct pool {
	pthread_mutex_t lock;
	size_t next, n;
	void (*fn)(size_t i, void *ctx);
	void *ctx;
	bool *skipped;
};

static void *pool_main(void *arg)
{
	struct pool *p = arg;

	for (;;) {
		size_t i;
		bool skip;

		pthread_mutex_lock(&p->lock);
		if (p->next >= p->n) {
			pthread_mutex_unlock(&p->lock);
			return NULL;
		}
		i = p->next++;
		skip = net_cancelled();
		pthread_mutex_unlock(&p->lock);
		if (skip) {
			if (p->skipped != NULL)
				p->skipped[i] = true;
			continue;
		}
		p->fn(i, p->ctx);
	}
}

void sched_run(size_t n, int threads, void (*fn)(size_t i, void *ctx), void *ctx, bool *skipped)
{
	struct pool p = { .n = n, .fn = fn, .ctx = ctx, .skipped = skipped };
	pthread_t *t;
	int i, started = 0;

	if (threads < 1)
		threads = 1;
	if ((size_t)threads > n)
		threads = n > 0 ? (int)n : 1;
	pthread_mutex_init(&p.lock, NULL);
	t = calloc((size_t)threads, sizeof(*t));
	for (i = 1; t != NULL && i < threads; i++) {
		if (pthread_create(&t[i], NULL, pool_main, &p) != 0)
			break;
		started = i;
	}
	pool_main(&p);
	for (i = 1; i <= started; i++)
		pthread_join(t[i], NULL);
	free(t);
	pthread_mutex_destroy(&p.lock);
}
