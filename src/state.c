/* state: the backend picked by name, and every call passed to it (see
 * include/state.h; the backends: include/state_backend.h). */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg.h"
#include "state.h"
#include "state_backend.h"

static const struct state_backend *const backends[] = {
	&state_backend_sqlite,      /* the first: a plain DIR means it */
	&state_backend_pg,
	&state_backend_mem,
};

#define N_BACKENDS (sizeof(backends) / sizeof(backends[0]))

struct state {
	const struct state_backend *be;
	void *h;
	pthread_mutex_t mu;         /* guards locks */
	struct state_lock *locks;   /* held through this handle, released on close */
};

struct state_lock {
	struct state *st;
	void *h;
	struct state_lock *prev, *next;
};

static const struct state_backend *lookup(const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < N_BACKENDS; i++)
		if (strlen(backends[i]->name) == len && strncmp(backends[i]->name, name, len) == 0)
			return backends[i];
	return NULL;
}

/* durable_only: the ones a location may name (state_open). */
static void unknown(const char *name, size_t len, bool durable_only, struct tr_error *err)
{
	char known[256];
	size_t i, o = 0;

	known[0] = '\0';
	for (i = 0; i < N_BACKENDS && o < sizeof(known); i++) {
		int k;

		if (durable_only && !backends[i]->durable)
			continue;
		k = snprintf(known + o, sizeof(known) - o, "%s%s (%s:%s)", o > 0 ? ", " : "",
			     backends[i]->name, backends[i]->name, backends[i]->where);
		if (k < 0)
			break;
		o += (size_t)k;
	}
	tr_error_set(err, TR_ERR_USAGE, "unknown state backend \"%.*s\": the known ones are %s; "
		     "a plain directory means %s", (int)(len > 64 ? 64 : len), name, known,
		     backends[0]->name);
}

int state_open_backend(const char *backend, const char *where, struct state **st_r,
		       struct tr_error *err)
{
	const struct state_backend *be = lookup(backend, strlen(backend));
	struct state *st;

	*st_r = NULL;
	if (be == NULL) {
		unknown(backend, strlen(backend), false, err);
		return -1;
	}
	if (where == NULL || *where == '\0') {
		tr_error_set(err, TR_ERR_USAGE, "the %s state needs a %s (%s:%s)", be->name,
			     be->where, be->name, be->where);
		return -1;
	}
	st = calloc(1, sizeof(*st));
	if (st == NULL) {
		tr_error_set(err, TR_ERR_LOCAL, "out of memory");
		return -1;
	}
	st->be = be;
	if (be->open(where, &st->h, err) < 0) {
		free(st);
		return -1;
	}
	pthread_mutex_init(&st->mu, NULL);
	*st_r = st;
	return 0;
}

/* "NAME:WHERE" when NAME is a durable backend's; "SCHEME://..." of no such
 * backend is a mistake, not a directory; anything else is a directory, as
 * it always was (a directory called "x:y" stays one). */
int state_open(const char *location, struct state **st_r, struct tr_error *err)
{
	const struct state_backend *be;
	size_t n;

	*st_r = NULL;
	if (location == NULL || *location == '\0') {
		tr_error_set(err, TR_ERR_USAGE, "no state location given");
		return -1;
	}
	/* a DSN is libpq's whole ("postgres://" too, or its key=value form),
	 * not "NAME:WHERE" */
	if (pg_is_dsn(location) || pg_is_conninfo(location))
		return state_open_backend(state_backend_pg.name, location, st_r, err);
	n = strspn(location, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+-.");
	if (n > 0 && location[n] == ':') {
		be = lookup(location, n);
		if (be != NULL && be->durable)
			return state_open_backend(be->name, location + n + 1, st_r, err);
		if (strncmp(location + n + 1, "//", 2) == 0) {
			unknown(location, n, true, err);
			return -1;
		}
	}
	return state_open_backend(backends[0]->name, location, st_r, err);
}

void state_close(struct state *st)
{
	struct state_lock *l, *next;

	if (st == NULL)
		return;
	for (l = st->locks; l != NULL; l = next) {
		next = l->next;
		st->be->account_unlock(st->h, l->h);
		free(l);
	}
	st->be->close(st->h);
	pthread_mutex_destroy(&st->mu);
	free(st);
}

const char *state_path(const struct state *st)
{
	return st->be->path(st->h);
}

const char *state_backend_name(const struct state *st)
{
	return st->be->name;
}

int state_schema_version(void)
{
	return STATE_SCHEMA_VERSION;
}

int state_account(struct state *st, const char *key, int64_t *id_r, struct tr_error *err)
{
	return st->be->account(st->h, key, id_r, err);
}

struct state_lock *state_account_lock(struct state *st, int64_t account_id,
				      struct tr_error *err)
{
	struct state_lock *l = calloc(1, sizeof(*l));

	if (l == NULL) {
		tr_error_set(err, TR_ERR_LOCAL, "out of memory");
		return NULL;
	}
	if (st->be->account_lock(st->h, account_id, &l->h, err) < 0) {
		free(l);
		return NULL;
	}
	l->st = st;
	pthread_mutex_lock(&st->mu);
	l->next = st->locks;
	if (st->locks != NULL)
		st->locks->prev = l;
	st->locks = l;
	pthread_mutex_unlock(&st->mu);
	return l;
}

void state_lock_watch(struct state_lock *l, void (*lost)(void *ctx), void *ctx)
{
	if (l != NULL && l->st->be->lock_watch != NULL)
		l->st->be->lock_watch(l->st->h, l->h, lost, ctx);
}

void state_account_unlock(struct state_lock *l)
{
	struct state *st;

	if (l == NULL)
		return;
	st = l->st;
	pthread_mutex_lock(&st->mu);
	if (l->prev != NULL)
		l->prev->next = l->next;
	else
		st->locks = l->next;
	if (l->next != NULL)
		l->next->prev = l->prev;
	pthread_mutex_unlock(&st->mu);
	st->be->account_unlock(st->h, l->h);
	free(l);
}

int state_account_get_status(struct state *st, int64_t account_id, char *buf, size_t len,
			     struct tr_error *err)
{
	return st->be->account_get_status(st->h, account_id, buf, len, err);
}

int state_account_set_status(struct state *st, int64_t account_id, const char *status,
			     const char *error, struct tr_error *err)
{
	return st->be->account_set_status(st->h, account_id, status, error, err);
}

int state_folder_load(struct state *st, int64_t account_id, const char *src_name,
		      const char *dst_name, struct state_folder *f, struct tr_error *err)
{
	return st->be->folder_load(st->h, account_id, src_name, dst_name, f, err);
}

int state_folder_saved_dst(struct state *st, int64_t account_id, const char *src_name,
			   char **dst_name_r, struct tr_error *err)
{
	return st->be->folder_saved_dst(st->h, account_id, src_name, dst_name_r, err);
}

int state_folder_reset(struct state *st, struct state_folder *f, struct tr_error *err)
{
	return st->be->folder_reset(st->h, f, err);
}

int state_folder_save(struct state *st, const struct state_folder *f, struct tr_error *err)
{
	return st->be->folder_save(st->h, f, err);
}

int state_msgs_load(struct state *st, int64_t folder_id, struct state_msg **rows_r,
		    size_t *n_r, struct tr_error *err)
{
	return st->be->msgs_load(st->h, folder_id, rows_r, n_r, err);
}

void state_msgs_free(struct state_msg *rows, size_t n)
{
	state_rows_free(rows, n);
}

int state_msgs_put(struct state *st, int64_t folder_id, const struct state_msg *rows, size_t n,
		   struct tr_error *err)
{
	if (n == 0)
		return 0;
	return st->be->msgs_put(st->h, folder_id, rows, n, err);
}

int state_day_bytes_add(struct state *st, const char *key, int64_t day, int64_t delta,
			uint64_t *total_r, struct tr_error *err)
{
	return st->be->day_bytes_add(st->h, key, day, delta, total_r, err);
}

bool state_rate_shared(const struct state *st)
{
	return st != NULL && st->be->rate_take != NULL;
}

int state_rate_take(struct state *st, const char *key, double cost_s, double *wait_r,
		    struct tr_error *err)
{
	if (!state_rate_shared(st)) {
		tr_error_set(err, TR_ERR_LOCAL, "state %s: keeps no shared rates", state_path(st));
		return -1;
	}
	return st->be->rate_take(st->h, key, cost_s, wait_r, err);
}

int state_msgs_delete(struct state *st, int64_t folder_id, const uint32_t *src_uids, size_t n,
		      struct tr_error *err)
{
	if (n == 0)
		return 0;
	return st->be->msgs_delete(st->h, folder_id, src_uids, n, err);
}
