/* scheduler: see include/scheduler.h */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "net.h"
#include "scheduler.h"

/* One login's entry.  It exists while the login holds a slot, waits for one,
 * or has a cap lowered by a refusal (kept for the rest of the run: the
 * server's limit for that login does not change under us, and forgetting it
 * would let the next session be refused again).  Any other entry is freed as
 * soon as it falls idle, so a run over 60,000 logins keeps only the few that
 * are active. */
struct acct_slot {
	struct acct_slot *next;     /* same bucket */
	uint64_t hash;
	int in_use, cap, peak, waiting;
	char account[];
};

struct limiter {
	pthread_mutex_t lock;
	pthread_cond_t freed;
	char *label;
	int max_per_account;
	int total, cap, peak;
	struct acct_slot **buckets; /* chained hash table keyed by login */
	size_t n_buckets;           /* a power of two */
	size_t n;                   /* live entries */
	struct limiter_shared shared;   /* acquire NULL: none */
};

#define MIN_BUCKETS 64

struct limiter *limiter_new(const char *label, int max_per_account, int max_total)
{
	struct limiter *l = calloc(1, sizeof(*l));

	if (l == NULL)
		return NULL;
	l->label = strdup(label != NULL ? label : "server");
	l->buckets = calloc(MIN_BUCKETS, sizeof(*l->buckets));
	if (l->label == NULL || l->buckets == NULL) {
		free(l->label);
		free(l->buckets);
		free(l);
		return NULL;
	}
	l->n_buckets = MIN_BUCKETS;
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
	for (i = 0; i < l->n_buckets; i++) {
		struct acct_slot *a = l->buckets[i], *next;

		for (; a != NULL; a = next) {
			next = a->next;
			free(a);
		}
	}
	free(l->buckets);
	free(l->label);
	pthread_cond_destroy(&l->freed);
	pthread_mutex_destroy(&l->lock);
	free(l);
}

/* FNV-1a.  Logins come from the operator's CSV, not from a peer, so a
 * keyed hash against chosen collisions buys nothing here. */
static uint64_t hash_login(const char *s)
{
	uint64_t h = 14695981039346656037u;

	for (; *s != '\0'; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211u;
	}
	return h;
}

/* Double the table when it gets full; on failure keep the longer chains. */
static void grow(struct limiter *l)
{
	size_t nb = l->n_buckets * 2, i;
	struct acct_slot **b = calloc(nb, sizeof(*b));

	if (b == NULL)
		return;
	for (i = 0; i < l->n_buckets; i++) {
		struct acct_slot *a = l->buckets[i], *next;

		for (; a != NULL; a = next) {
			next = a->next;
			a->next = b[a->hash & (nb - 1)];
			b[a->hash & (nb - 1)] = a;
		}
	}
	free(l->buckets);
	l->buckets = b;
	l->n_buckets = nb;
}

/* Caller holds the lock.  NULL when absent and !create, or out of memory. */
static struct acct_slot *slot(struct limiter *l, const char *account, bool create)
{
	uint64_t h = hash_login(account);
	struct acct_slot *a;
	size_t len;

	for (a = l->buckets[h & (l->n_buckets - 1)]; a != NULL; a = a->next)
		if (a->hash == h && strcmp(a->account, account) == 0)
			return a;
	if (!create)
		return NULL;
	len = strlen(account);
	a = malloc(sizeof(*a) + len + 1);
	if (a == NULL)
		return NULL;
	memcpy(a->account, account, len + 1);
	a->hash = h;
	a->in_use = a->peak = a->waiting = 0;
	a->cap = l->max_per_account;
	if (l->n >= l->n_buckets)
		grow(l);
	a->next = l->buckets[h & (l->n_buckets - 1)];
	l->buckets[h & (l->n_buckets - 1)] = a;
	l->n++;
	return a;
}

/* Caller holds the lock.  Free the entry when nothing in it needs keeping
 * (see struct acct_slot); its peak goes with it. */
static void slot_drop_idle(struct limiter *l, struct acct_slot *a)
{
	struct acct_slot **p;

	if (a->in_use > 0 || a->waiting > 0 || a->cap < l->max_per_account)
		return;
	for (p = &l->buckets[a->hash & (l->n_buckets - 1)]; *p != NULL; p = &(*p)->next) {
		if (*p == a) {
			*p = a->next;
			l->n--;
			free(a);
			return;
		}
	}
}

void limiter_set_shared(struct limiter *l, const struct limiter_shared *sh)
{
	pthread_mutex_lock(&l->lock);
	if (sh != NULL)
		l->shared = *sh;
	else
		memset(&l->shared, 0, sizeof(l->shared));
	pthread_mutex_unlock(&l->lock);
}

/* The local half of limiter_acquire; *sh_r: the shared cap to ask next. */
static int local_acquire(struct limiter *l, const char *account, bool wait,
			 struct limiter_shared *sh_r)
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
		/* Wake up now and then to notice a stop request (of the run, or
		 * of the caller's scope: net.h) within 200 ms.  A waiter keeps
		 * its entry alive, so a stays valid across the wait. */
		{
			struct timespec until;

			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_nsec += 200 * 1000000L;
			if (until.tv_nsec >= 1000000000L) {
				until.tv_sec++;
				until.tv_nsec -= 1000000000L;
			}
			a->waiting++;
			pthread_cond_timedwait(&l->freed, &l->lock, &until);
			a->waiting--;
		}
	}
	if (a != NULL)
		slot_drop_idle(l, a);
	*sh_r = l->shared;
	pthread_mutex_unlock(&l->lock);
	return r;
}

static void local_release(struct limiter *l, const char *account, struct limiter_shared *sh_r)
{
	struct acct_slot *a;

	pthread_mutex_lock(&l->lock);
	a = slot(l, account, false);
	if (a != NULL && a->in_use > 0) {
		a->in_use--;
		l->total--;
		slot_drop_idle(l, a);
	}
	*sh_r = l->shared;
	pthread_cond_broadcast(&l->freed);
	pthread_mutex_unlock(&l->lock);
}

/* The shared cap is asked outside the lock: it may wait seconds for a
 * slot (or the database), and the other threads must meanwhile be able to
 * release and count here. */
int limiter_acquire(struct limiter *l, const char *account, bool wait)
{
	struct limiter_shared sh;

	if (local_acquire(l, account, wait, &sh) < 0)
		return -1;
	if (sh.acquire != NULL && sh.acquire(sh.ctx, account, wait) < 0) {
		/* no session without both slots: the local one goes back */
		local_release(l, account, &sh);
		return -1;
	}
	return 0;
}

void limiter_release(struct limiter *l, const char *account)
{
	struct limiter_shared sh;

	pthread_mutex_lock(&l->lock);
	sh = l->shared;
	pthread_mutex_unlock(&l->lock);
	/* the shared slot first: a thread of ours woken by the local release
	 * then finds it free */
	if (sh.release != NULL)
		sh.release(sh.ctx, account);
	local_release(l, account, &sh);
}

void limiter_refused(struct limiter *l, const char *account)
{
	struct limiter_shared sh;
	struct acct_slot *a;

	pthread_mutex_lock(&l->lock);
	sh = l->shared;
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
	if (sh.refused != NULL)
		sh.refused(sh.ctx, account);
}

size_t limiter_entries(struct limiter *l)
{
	size_t n;

	pthread_mutex_lock(&l->lock);
	n = l->n;
	pthread_mutex_unlock(&l->lock);
	return n;
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
