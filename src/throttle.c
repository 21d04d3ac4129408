/* throttle: see include/throttle.h */
#include "config.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#include "log.h"
#include "net.h"
#include "state.h"
#include "throttle.h"

#define SECONDS_PER_DAY 86400
/* After a shared take failed, the process keeps the rate alone this long
 * before it asks the state again. */
#define THROTTLE_ALONE_S 5.0

struct rate {
	double per_s;              /* 0: no limit */
	double tat;                /* when the server is next free (monotonic s) */
	char *shared_key;          /* its schedule's name in a shared state */
	double prepaid;            /* units taken from the shared schedule, not yet spent */
};

struct throttle {
	pthread_mutex_t lock;
	char *key, *label;
	struct rate bytes, msgs;
	uint64_t per_day;          /* 0: no limit */
	struct state *state;       /* borrowed, or NULL */
	int64_t day;               /* of mem_used, when no state */
	uint64_t mem_used;
	double warned_at;          /* the last warning of a shared schedule out of reach */
	double alone_until;        /* after a failed take: the process's own schedule till then */
	int sockets;               /* tuned and not yet closed (throttle_tune_socket) */
};

static double mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct throttle *throttle_new(const char *key, const char *label,
			      const struct throttle_limits *lim, bool *oom)
{
	struct throttle *t;

	*oom = false;
	if (lim->bytes_per_second == 0 && lim->messages_per_second == 0 && lim->bytes_per_day == 0)
		return NULL;
	t = calloc(1, sizeof(*t));
	if (t == NULL || (t->key = strdup(key)) == NULL || (t->label = strdup(label)) == NULL ||
	    asprintf(&t->bytes.shared_key, "%s bytes/s", key) < 0 ||
	    asprintf(&t->msgs.shared_key, "%s messages/s", key) < 0) {
		if (t != NULL) {
			free(t->key);
			free(t->label);
			free(t->bytes.shared_key);
		}
		free(t);
		*oom = true;
		return NULL;
	}
	pthread_mutex_init(&t->lock, NULL);
	t->bytes.per_s = (double)lim->bytes_per_second;
	t->msgs.per_s = (double)lim->messages_per_second;
	t->per_day = lim->bytes_per_day;
	t->day = -1;
	return t;
}

void throttle_free(struct throttle *t)
{
	if (t == NULL)
		return;
	pthread_mutex_destroy(&t->lock);
	free(t->bytes.shared_key);
	free(t->msgs.shared_key);
	free(t->key);
	free(t->label);
	free(t);
}

void throttle_set_state(struct throttle *t, struct state *st)
{
	if (t != NULL)
		t->state = st;
}

/* Sleep until wake (monotonic s), in short naps so that a stop request is
 * seen within 200 ms. */
static int nap_until(double wake)
{
	double now;

	while ((now = mono_s()) < wake) {
		if (net_cancelled())
			return -1;
		double left = wake - now;

		usleep(left > 0.2 ? 200000 : (useconds_t)(left * 1e6) + 1);
	}
	return net_cancelled() ? -1 : 0;
}

/* Take n units of r from the schedule the state shares with other
 * processes.  A round trip per chunk would be too many (at 100 MB/s,
 * 1500 a second), so the process takes slices of THROTTLE_SLICE_S of the
 * rate and spends them here: it waits until its slice's end on the shared
 * schedule, less the tolerance, and what the chunk did not use is spent
 * by the next takers without a wait.  What goes ahead of the schedule is
 * thus at most a slice and the tolerance.  Returns 0, -1 when stopped, 1
 * when the state could not be reached (the caller falls back to the
 * process's own schedule). */
static int take_shared(struct throttle *t, struct rate *r, double n)
{
	struct tr_error err;
	double need, slice, wait;

	pthread_mutex_lock(&t->lock);
	if (r->prepaid >= n) {
		r->prepaid -= n;
		pthread_mutex_unlock(&t->lock);
		return net_cancelled() ? -1 : 0;
	}
	need = n - r->prepaid;
	r->prepaid = 0;
	slice = r->per_s * THROTTLE_SLICE_S;
	if (slice < need)
		slice = need;
	pthread_mutex_unlock(&t->lock);
	tr_error_clear(&err);
	if (state_rate_take(t->state, r->shared_key, slice / r->per_s, &wait, &err) < 0) {
		double now = mono_s();

		pthread_mutex_lock(&t->lock);
		bool say = t->warned_at == 0 || now - t->warned_at >= 60;

		if (say)
			t->warned_at = now;
		/* not a failing round trip (or a connect time-out) per chunk */
		t->alone_until = now + THROTTLE_ALONE_S;
		pthread_mutex_unlock(&t->lock);
		if (say)
			log_warn(NULL, "%s: the rate shared with other processes is out of reach; "
				 "this process keeps the rate alone meanwhile: %s", t->label, err.msg);
		return 1;
	}
	if (nap_until(mono_s() + wait - THROTTLE_BURST_S) < 0)
		return -1;
	pthread_mutex_lock(&t->lock);
	r->prepaid += slice - need;
	pthread_mutex_unlock(&t->lock);
	return 0;
}

/* Take n units of r and wait for them (GCRA: the virtual finishing time
 * advances by n/rate; the caller may be ahead of it by the tolerance). */
static int take(struct throttle *t, struct rate *r, double n)
{
	double now, wake;

	if (r->per_s <= 0)
		return 0;
	if (state_rate_shared(t->state)) {
		bool alone;

		pthread_mutex_lock(&t->lock);
		alone = mono_s() < t->alone_until;
		pthread_mutex_unlock(&t->lock);
		int rc = alone ? 1 : take_shared(t, r, n);

		if (rc <= 0)
			return rc;
	}
	pthread_mutex_lock(&t->lock);
	now = mono_s();
	if (r->tat < now)
		r->tat = now;
	r->tat += n / r->per_s;
	wake = r->tat - THROTTLE_BURST_S;
	pthread_mutex_unlock(&t->lock);
	return nap_until(wake);
}

int throttle_bytes(struct throttle *t, uint64_t n)
{
	return t == NULL || n == 0 ? 0 : take(t, &t->bytes, (double)n);
}

void throttle_tune_socket(struct throttle *t, int fd)
{
	double share;
	int size, n;

	if (t == NULL || t->bytes.per_s <= 0)
		return;
	pthread_mutex_lock(&t->lock);
	n = ++t->sockets;
	pthread_mutex_unlock(&t->lock);
	/* rate/16 for the process, split among the sockets open now; the
	 * kernel doubles what it is given (bookkeeping) */
	share = t->bytes.per_s / 32 / n;
	size = share < 16384 ? 16384 : share > (1 << 23) ? (1 << 23) : (int)share;
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
}

void throttle_socket_closed(struct throttle *t)
{
	if (t == NULL || t->bytes.per_s <= 0)
		return;
	pthread_mutex_lock(&t->lock);
	if (t->sockets > 0)
		t->sockets--;
	pthread_mutex_unlock(&t->lock);
}

uint64_t throttle_messages_per_second(const struct throttle *t)
{
	return t == NULL ? 0 : (uint64_t)t->msgs.per_s;
}

int throttle_message(struct throttle *t)
{
	return t == NULL ? 0 : take(t, &t->msgs, 1);
}

static int day_add(struct throttle *t, int64_t day, int64_t delta, uint64_t *total_r,
		   struct tr_error *err)
{
	if (t->state != NULL) {
		if (state_day_bytes_add(t->state, t->key, day, delta, total_r, err) < 0) {
			tr_error_prefix(err, "%s's day budget", t->label);
			return -1;
		}
		return 0;
	}
	if (t->day != day) {
		t->day = day;
		t->mem_used = 0;
	}
	t->mem_used += (uint64_t)delta;
	*total_r = t->mem_used;
	return 0;
}

int throttle_day_reserve(struct throttle *t, const uint64_t *sizes, size_t n, size_t *fit_r,
			 time_t *resume_r, struct tr_error *err)
{
	uint64_t used, sum = 0;
	int64_t day;
	size_t fit = 0;
	int r = 0;

	*fit_r = n;
	if (t == NULL || t->per_day == 0 || n == 0)
		return 0;
	day = (int64_t)(time(NULL) / SECONDS_PER_DAY);
	pthread_mutex_lock(&t->lock);
	/* Read first: other processes sharing the state spend it too. */
	if (day_add(t, day, 0, &used, err) < 0) {
		r = -1;
		goto out;
	}
	while (fit < n && used + sum + sizes[fit] <= t->per_day)
		sum += sizes[fit++];
	if (sum > 0 && day_add(t, day, (int64_t)sum, &used, err) < 0) {
		r = -1;
		goto out;
	}
	if (sum > 0 && used > t->per_day) {
		/* Another process spent some of the remainder between the read
		 * and the add (the add is one statement: used - sum is exactly
		 * what was counted before ours): fit again in what was left
		 * then, and give the rest back.  Two processes doing so at once
		 * may both give back too much: the budget errs on the server's
		 * side, never over it. */
		uint64_t before = used - sum, kept = 0;
		size_t fit2 = 0;

		while (fit2 < fit && before + kept + sizes[fit2] <= t->per_day)
			kept += sizes[fit2++];
		if (day_add(t, day, -(int64_t)(sum - kept), &used, err) < 0) {
			r = -1;
			goto out;
		}
		log_debug(NULL, "%s: other processes spent the day's budget meanwhile: %zu of %zu "
			  "messages fit", t->label, fit2, fit);
		fit = fit2;
	}
	*fit_r = fit;
	if (fit < n) {
		*resume_r = (time_t)((day + 1) * SECONDS_PER_DAY);
		log_debug(NULL, "%s: %" PRIu64 " of %" PRIu64 " bytes of today's budget used; "
			  "%zu of %zu messages fit", t->label, used, t->per_day, fit, n);
	}
out:
	pthread_mutex_unlock(&t->lock);
	return r;
}
