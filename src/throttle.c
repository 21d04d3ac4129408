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

struct rate {
	double per_s;              /* 0: no limit */
	double tat;                /* when the server is next free (monotonic s) */
};

struct throttle {
	pthread_mutex_t lock;
	char *key, *label;
	struct rate bytes, msgs;
	uint64_t per_day;          /* 0: no limit */
	struct state *state;       /* borrowed, or NULL */
	int64_t day;               /* of mem_used, when no state */
	uint64_t mem_used;
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
	if (t == NULL || (t->key = strdup(key)) == NULL || (t->label = strdup(label)) == NULL) {
		if (t != NULL)
			free(t->key);
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
	free(t->key);
	free(t->label);
	free(t);
}

void throttle_set_state(struct throttle *t, struct state *st)
{
	if (t != NULL)
		t->state = st;
}

/* Take n units of r and wait for them (GCRA: the virtual finishing time
 * advances by n/rate; the caller may be ahead of it by the tolerance). */
static int take(struct throttle *t, struct rate *r, double n)
{
	double now, wake;

	if (r->per_s <= 0)
		return 0;
	pthread_mutex_lock(&t->lock);
	now = mono_s();
	if (r->tat < now)
		r->tat = now;
	r->tat += n / r->per_s;
	wake = r->tat - THROTTLE_BURST_S;
	pthread_mutex_unlock(&t->lock);
	/* Short naps, so that a stop request is seen within 200 ms. */
	while ((now = mono_s()) < wake) {
		if (net_cancelled())
			return -1;
		double left = wake - now;

		usleep(left > 0.2 ? 200000 : (useconds_t)(left * 1e6) + 1);
	}
	return net_cancelled() ? -1 : 0;
}

int throttle_bytes(struct throttle *t, uint64_t n)
{
	return t == NULL || n == 0 ? 0 : take(t, &t->bytes, (double)n);
}

void throttle_tune_socket(struct throttle *t, int fd)
{
	int size;

	if (t == NULL || t->bytes.per_s <= 0)
		return;
	/* the kernel doubles what it is given (bookkeeping) */
	size = t->bytes.per_s / 32 < 16384 ? 16384 :
	       t->bytes.per_s / 32 > (1 << 23) ? (1 << 23) : (int)(t->bytes.per_s / 32);
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
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
