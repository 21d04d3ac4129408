/* state_mem: the state in plain memory (the backend "mem"; state.h says
 * what is kept, state_backend.h what every backend promises).
 *
 * For tests: a state that a simulated crash leaves as it was.
 * state_open_backend("mem", NAME) reaches a store of the process; every
 * open of NAME reaches the same store, so closing a handle and opening NAME
 * again is a restart with the saved state (the locks of the closed handle
 * released, as a dead process's are).  Nothing reaches a disk: the
 * process's end loses it all, which is why no location (--state) names it.
 *
 * Ownership: the store belongs to the list of named stores and to each of
 * its open handles; it is freed when state_mem_discard has taken it off
 * the list and its last handle is closed.  A lock handle is a small
 * allocation naming the account.
 *
 * Threading: one mutex per store makes every call on it one at a time;
 * one more guards the list of names.
 */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "state.h"
#include "state_backend.h"
#include "text.h"

struct mem_account {
	int64_t id;
	char *key;
	char *status;
	char *error;
};

struct mem_folder {
	int64_t id, account_id;
	char *src_name, *dst_name;
	struct state_folder f;      /* the saved fields; id and unsettled unused */
	struct state_msg *rows;     /* ordered by src_uid, strings owned */
	size_t n, cap;
};

/* A held account, and who is told when a test takes its hold away
 * (state_mem_lose_lock). */
struct mem_lock {
	int64_t account_id;
	void (*lost)(void *ctx);
	void *ctx;
};

struct mem_day {
	char *key;
	int64_t day;
	uint64_t bytes;
};

struct mem_store {
	char *path;                 /* "mem:NAME" */
	struct mem_store *next;     /* on the list of names */
	int refs;                   /* the list's (until discarded) and each handle's */
	pthread_mutex_t mu;
	struct mem_account *accounts;
	size_t n_accounts;
	struct mem_folder **folders;
	size_t n_folders;
	struct mem_lock *locked;    /* the accounts held */
	size_t n_locked;
	int64_t next_id;
	struct mem_day *days;       /* throttles' day counts */
	size_t n_days;
};

static pthread_mutex_t stores_mu = PTHREAD_MUTEX_INITIALIZER;
static struct mem_store *stores;

#define NAME(s) ((s)->path + 4)

static void free_rows(struct state_msg *rows, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free(rows[i].flags);
		free(rows[i].error);
	}
}

static void store_free(struct mem_store *s)
{
	size_t i;

	for (i = 0; i < s->n_accounts; i++) {
		free(s->accounts[i].key);
		free(s->accounts[i].status);
		free(s->accounts[i].error);
	}
	for (i = 0; i < s->n_folders; i++) {
		free_rows(s->folders[i]->rows, s->folders[i]->n);
		free(s->folders[i]->rows);
		free(s->folders[i]->src_name);
		free(s->folders[i]->dst_name);
		free(s->folders[i]);
	}
	free(s->accounts);
	for (i = 0; i < s->n_days; i++)
		free(s->days[i].key);
	free(s->days);
	free(s->folders);
	free(s->locked);
	pthread_mutex_destroy(&s->mu);
	free(s->path);
	free(s);
}

/* Drop one reference; the caller holds stores_mu. */
static void store_put(struct mem_store *s)
{
	if (--s->refs == 0)
		store_free(s);
}

static int oom(struct tr_error *err)
{
	tr_error_set(err, TR_ERR_LOCAL, "out of memory");
	return -1;
}

static int mem_open(const char *where, void **h_r, struct tr_error *err)
{
	struct mem_store *s;
	size_t len = strlen(where) + sizeof("mem:");

	*h_r = NULL;
	pthread_mutex_lock(&stores_mu);
	for (s = stores; s != NULL; s = s->next)
		if (strcmp(NAME(s), where) == 0)
			break;
	if (s == NULL) {
		s = calloc(1, sizeof(*s));
		if (s == NULL || (s->path = malloc(len)) == NULL) {
			free(s);
			pthread_mutex_unlock(&stores_mu);
			return oom(err);
		}
		snprintf(s->path, len, "mem:%s", where);
		pthread_mutex_init(&s->mu, NULL);
		s->next_id = 1;
		s->refs = 1;
		s->next = stores;
		stores = s;
	}
	s->refs++;
	pthread_mutex_unlock(&stores_mu);
	*h_r = s;
	return 0;
}

static void mem_close(void *h)
{
	pthread_mutex_lock(&stores_mu);
	store_put(h);
	pthread_mutex_unlock(&stores_mu);
}

void state_mem_discard(const char *name)
{
	struct mem_store **p, *s;

	pthread_mutex_lock(&stores_mu);
	for (p = &stores; (s = *p) != NULL; p = &s->next) {
		if (strcmp(NAME(s), name) == 0) {
			*p = s->next;
			store_put(s);
			break;
		}
	}
	pthread_mutex_unlock(&stores_mu);
}

static const char *mem_path(void *h)
{
	const struct mem_store *s = h;

	return s->path;
}

/* The caller holds s->mu (for every helper below). */
static struct mem_account *account_of(struct mem_store *s, int64_t id)
{
	size_t i;

	for (i = 0; i < s->n_accounts; i++)
		if (s->accounts[i].id == id)
			return &s->accounts[i];
	return NULL;
}

static struct mem_folder *folder_of(struct mem_store *s, int64_t id)
{
	size_t i;

	for (i = 0; i < s->n_folders; i++)
		if (s->folders[i]->id == id)
			return s->folders[i];
	return NULL;
}

static struct mem_folder *folder_named(struct mem_store *s, int64_t account_id,
				       const char *src_name)
{
	size_t i;

	for (i = 0; i < s->n_folders; i++)
		if (s->folders[i]->account_id == account_id &&
		    strcmp(s->folders[i]->src_name, src_name) == 0)
			return s->folders[i];
	return NULL;
}

/* The index of src_uid in the ledger, or where it would go (*found false). */
static size_t row_at(const struct mem_folder *mf, uint32_t src_uid, bool *found)
{
	size_t lo = 0, hi = mf->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (mf->rows[mid].src_uid < src_uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = lo < mf->n && mf->rows[lo].src_uid == src_uid;
	return lo;
}

static int mem_account(void *h, const char *key, int64_t *id_r, struct tr_error *err)
{
	struct mem_store *s = h;
	struct mem_account *a, *na;
	size_t i;
	int r = -1;

	pthread_mutex_lock(&s->mu);
	for (i = 0; i < s->n_accounts; i++) {
		if (strcmp(s->accounts[i].key, key) == 0) {
			*id_r = s->accounts[i].id;
			r = 0;
			goto out;
		}
	}
	na = realloc(s->accounts, (s->n_accounts + 1) * sizeof(*na));
	if (na == NULL) {
		oom(err);
		goto out;
	}
	s->accounts = na;
	a = &na[s->n_accounts];
	memset(a, 0, sizeof(*a));
	a->key = strdup(key);
	a->status = strdup("new");
	if (a->key == NULL || a->status == NULL) {
		free(a->key);
		free(a->status);
		oom(err);
		goto out;
	}
	a->id = s->next_id++;
	s->n_accounts++;
	*id_r = a->id;
	r = 0;
out:
	pthread_mutex_unlock(&s->mu);
	return r;
}

static int mem_account_lock(void *h, int64_t account_id, void **lock_r, struct tr_error *err)
{
	struct mem_store *s = h;
	int64_t *l;
	struct mem_lock *nl;
	size_t i;
	int r = -1;

	*lock_r = NULL;
	l = malloc(sizeof(*l));
	if (l == NULL)
		return oom(err);
	*l = account_id;
	pthread_mutex_lock(&s->mu);
	for (i = 0; i < s->n_locked; i++) {
		if (s->locked[i].account_id == account_id) {
			tr_error_set(err, TR_ERR_LOCAL, "another trasloco run is migrating this "
				     "account with the same state right now (%s, account %lld)",
				     s->path, (long long)account_id);
			snprintf(err->code, sizeof(err->code), "INUSE");
			goto out;
		}
	}
	nl = realloc(s->locked, (s->n_locked + 1) * sizeof(*nl));
	if (nl == NULL) {
		oom(err);
		goto out;
	}
	s->locked = nl;
	s->locked[s->n_locked++] = (struct mem_lock){ account_id, NULL, NULL };
	*lock_r = l;
	l = NULL;
	r = 0;
out:
	pthread_mutex_unlock(&s->mu);
	free(l);
	return r;
}

static void mem_account_unlock(void *h, void *lock)
{
	struct mem_store *s = h;
	int64_t *l = lock;
	size_t i;

	pthread_mutex_lock(&s->mu);
	for (i = 0; i < s->n_locked; i++) {
		if (s->locked[i].account_id == *l) {
			s->locked[i] = s->locked[--s->n_locked];
			break;
		}
	}
	pthread_mutex_unlock(&s->mu);
	free(l);
}

static void mem_lock_watch(void *h, void *lock, void (*lost)(void *ctx), void *ctx)
{
	struct mem_store *s = h;
	int64_t *l = lock;
	size_t i;

	pthread_mutex_lock(&s->mu);
	for (i = 0; i < s->n_locked; i++) {
		if (s->locked[i].account_id == *l) {
			s->locked[i].lost = lost;
			s->locked[i].ctx = ctx;
		}
	}
	pthread_mutex_unlock(&s->mu);
}

int state_mem_lose_lock(const char *name, int64_t account_id)
{
	struct mem_store *s;
	size_t i;
	int told = 0;

	pthread_mutex_lock(&stores_mu);
	for (s = stores; s != NULL; s = s->next)
		if (strcmp(NAME(s), name) == 0)
			break;
	if (s == NULL) {
		pthread_mutex_unlock(&stores_mu);
		return 0;
	}
	s->refs++;
	pthread_mutex_unlock(&stores_mu);
	/* under the store's lock: an unlock (after which ctx may be gone)
	 * waits for the call to end */
	pthread_mutex_lock(&s->mu);
	for (i = 0; i < s->n_locked; i++) {
		if (s->locked[i].account_id == account_id && s->locked[i].lost != NULL) {
			s->locked[i].lost(s->locked[i].ctx);
			s->locked[i].lost = NULL;   /* once */
			told = 1;
		}
	}
	pthread_mutex_unlock(&s->mu);
	pthread_mutex_lock(&stores_mu);
	store_put(s);
	pthread_mutex_unlock(&stores_mu);
	return told;
}

static int mem_account_get_status(void *h, int64_t account_id, char *buf, size_t len,
				  struct tr_error *err)
{
	struct mem_store *s = h;
	struct mem_account *a;
	int r = -1;

	pthread_mutex_lock(&s->mu);
	a = account_of(s, account_id);
	if (a == NULL) {
		tr_error_set(err, TR_ERR_LOCAL, "state %s: read account: no account %lld",
			     s->path, (long long)account_id);
	} else {
		snprintf(buf, len, "%s", a->status);
		r = 0;
	}
	pthread_mutex_unlock(&s->mu);
	return r;
}

static int mem_account_set_status(void *h, int64_t account_id, const char *status,
				  const char *error, struct tr_error *err)
{
	struct mem_store *s = h;
	struct mem_account *a;
	char *st = NULL, *er = NULL;
	int r = -1;

	pthread_mutex_lock(&s->mu);
	a = account_of(s, account_id);
	if (a == NULL) {
		/* as an UPDATE of no row */
		r = 0;
		goto out;
	}
	st = strdup(status);
	if (st == NULL || (error != NULL && (er = text_clean_dup(error, NULL)) == NULL)) {
		free(st);
		oom(err);
		goto out;
	}
	free(a->status);
	free(a->error);
	a->status = st;
	a->error = er;
	r = 0;
out:
	pthread_mutex_unlock(&s->mu);
	return r;
}

static void reset_locked(struct mem_folder *mf)
{
	free_rows(mf->rows, mf->n);
	mf->n = 0;
	memset(&mf->f, 0, sizeof(mf->f));
}

static int mem_folder_load(void *h, int64_t account_id, const char *src_name,
			   const char *dst_name, struct state_folder *f, struct tr_error *err)
{
	struct mem_store *s = h;
	struct mem_folder *mf, **nf;
	size_t i;
	int r = -1;

	memset(f, 0, sizeof(*f));
	pthread_mutex_lock(&s->mu);
	if (account_of(s, account_id) == NULL) {
		tr_error_set(err, TR_ERR_LOCAL, "state %s: add folder: no account %lld", s->path,
			     (long long)account_id);
		goto out;
	}
	mf = folder_named(s, account_id, src_name);
	if (mf == NULL) {
		nf = realloc(s->folders, (s->n_folders + 1) * sizeof(*nf));
		if (nf == NULL) {
			oom(err);
			goto out;
		}
		s->folders = nf;
		mf = calloc(1, sizeof(*mf));
		if (mf == NULL || (mf->src_name = strdup(src_name)) == NULL ||
		    (mf->dst_name = strdup(dst_name)) == NULL) {
			if (mf != NULL)
				free(mf->src_name);
			free(mf);
			oom(err);
			goto out;
		}
		mf->id = s->next_id++;
		mf->account_id = account_id;
		s->folders[s->n_folders++] = mf;
	} else if (strcmp(mf->dst_name, dst_name) != 0) {
		/* The folder now goes elsewhere (a new --map): the old ledger says
		 * nothing about the new destination. */
		char *d = strdup(dst_name);

		if (d == NULL) {
			oom(err);
			goto out;
		}
		reset_locked(mf);
		free(mf->dst_name);
		mf->dst_name = d;
	}
	*f = mf->f;
	f->id = mf->id;
	f->unsettled = 0;
	for (i = 0; i < mf->n; i++)
		if (mf->rows[i].state != MSG_DONE)
			f->unsettled++;
	r = 0;
out:
	pthread_mutex_unlock(&s->mu);
	return r;
}

static int mem_folder_saved_dst(void *h, int64_t account_id, const char *src_name,
				char **dst_name_r, struct tr_error *err)
{
	struct mem_store *s = h;
	struct mem_folder *mf;
	int r = 0;

	*dst_name_r = NULL;
	pthread_mutex_lock(&s->mu);
	mf = folder_named(s, account_id, src_name);
	if (mf != NULL) {
		*dst_name_r = strdup(mf->dst_name);
		r = *dst_name_r != NULL ? 1 : oom(err);
	}
	pthread_mutex_unlock(&s->mu);
	return r;
}

static int mem_folder_reset(void *h, struct state_folder *f, struct tr_error *err)
{
	struct mem_store *s = h;
	struct mem_folder *mf;

	(void)err;
	pthread_mutex_lock(&s->mu);
	mf = folder_of(s, f->id);
	if (mf != NULL)
		reset_locked(mf);
	pthread_mutex_unlock(&s->mu);
	f->src_uidvalidity = f->dst_uidvalidity = f->src_uidnext = f->src_messages = 0;
	f->src_modseq = 0;
	f->unsettled = 0;
	return 0;
}

static int mem_folder_save(void *h, const struct state_folder *f, struct tr_error *err)
{
	struct mem_store *s = h;
	struct mem_folder *mf;

	(void)err;
	pthread_mutex_lock(&s->mu);
	mf = folder_of(s, f->id);
	if (mf != NULL) {
		mf->f = *f;
		mf->f.id = 0;
		mf->f.unsettled = 0;
	}
	pthread_mutex_unlock(&s->mu);
	return 0;
}

/* A copy of a row with its own strings: flags never NULL, error cleaned. */
static int copy_row(struct state_msg *to, const struct state_msg *from, bool clean)
{
	*to = *from;
	to->flags = strdup(from->flags != NULL ? from->flags : "");
	to->error = NULL;
	if (from->error != NULL)
		to->error = clean ? text_clean_dup(from->error, NULL) : strdup(from->error);
	if (to->flags == NULL || (from->error != NULL && to->error == NULL)) {
		free(to->flags);
		free(to->error);
		to->flags = to->error = NULL;
		return -1;
	}
	return 0;
}

static int mem_msgs_load(void *h, int64_t folder_id, struct state_msg **rows_r, size_t *n_r,
			 struct tr_error *err)
{
	struct mem_store *s = h;
	struct mem_folder *mf;
	struct state_msg *rows = NULL;
	size_t i = 0;
	int r = -1;

	*rows_r = NULL;
	*n_r = 0;
	pthread_mutex_lock(&s->mu);
	mf = folder_of(s, folder_id);
	if (mf == NULL || mf->n == 0) {
		r = 0;
		goto out;
	}
	rows = calloc(mf->n, sizeof(*rows));
	if (rows == NULL) {
		oom(err);
		goto out;
	}
	for (i = 0; i < mf->n; i++) {
		if (copy_row(&rows[i], &mf->rows[i], false) < 0) {
			oom(err);
			goto out;
		}
	}
	*rows_r = rows;
	*n_r = mf->n;
	rows = NULL;
	r = 0;
out:
	pthread_mutex_unlock(&s->mu);
	if (rows != NULL)
		state_rows_free(rows, i);
	return r;
}

static int mem_msgs_put(void *h, int64_t folder_id, const struct state_msg *rows, size_t n,
			struct tr_error *err)
{
	struct mem_store *s = h;
	struct mem_folder *mf;
	struct state_msg *copies;
	size_t i, k = 0;
	int r = -1;

	/* Everything that can fail happens before the ledger changes: all or
	 * none. */
	copies = calloc(n, sizeof(*copies));
	if (copies == NULL)
		return oom(err);
	for (k = 0; k < n; k++)
		if (copy_row(&copies[k], &rows[k], true) < 0) {
			oom(err);
			goto out;
		}
	pthread_mutex_lock(&s->mu);
	mf = folder_of(s, folder_id);
	if (mf == NULL) {
		tr_error_set(err, TR_ERR_LOCAL, "state %s: write ledger: no folder %lld", s->path,
			     (long long)folder_id);
		pthread_mutex_unlock(&s->mu);
		goto out;
	}
	if (mf->n + n > mf->cap) {
		size_t nc = mf->cap ? mf->cap : 64;
		struct state_msg *nr;

		while (nc < mf->n + n)
			nc *= 2;
		nr = realloc(mf->rows, nc * sizeof(*nr));
		if (nr == NULL) {
			pthread_mutex_unlock(&s->mu);
			oom(err);
			goto out;
		}
		mf->rows = nr;
		mf->cap = nc;
	}
	for (i = 0; i < n; i++) {
		bool found;
		size_t at = row_at(mf, copies[i].src_uid, &found);

		if (found) {
			free_rows(&mf->rows[at], 1);
		} else {
			memmove(&mf->rows[at + 1], &mf->rows[at], (mf->n - at) * sizeof(*mf->rows));
			mf->n++;
		}
		mf->rows[at] = copies[i];
	}
	pthread_mutex_unlock(&s->mu);
	k = 0;          /* the copies are the ledger's now */
	r = 0;
out:
	free_rows(copies, k);
	free(copies);
	return r;
}

static int mem_msgs_delete(void *h, int64_t folder_id, const uint32_t *src_uids, size_t n,
			   struct tr_error *err)
{
	struct mem_store *s = h;
	struct mem_folder *mf;
	size_t i;

	(void)err;
	pthread_mutex_lock(&s->mu);
	mf = folder_of(s, folder_id);
	for (i = 0; mf != NULL && i < n; i++) {
		bool found;
		size_t at = row_at(mf, src_uids[i], &found);

		if (found) {
			free_rows(&mf->rows[at], 1);
			memmove(&mf->rows[at], &mf->rows[at + 1],
				(mf->n - at - 1) * sizeof(*mf->rows));
			mf->n--;
		}
	}
	pthread_mutex_unlock(&s->mu);
	return 0;
}

static int mem_day_bytes_add(void *h, const char *key, int64_t day, int64_t delta,
			     uint64_t *total_r, struct tr_error *err)
{
	struct mem_store *s = h;
	struct mem_day *d = NULL;
	size_t i;
	int r = 0;

	pthread_mutex_lock(&s->mu);
	for (i = 0; i < s->n_days && d == NULL; i++)
		if (s->days[i].day == day && strcmp(s->days[i].key, key) == 0)
			d = &s->days[i];
	if (d == NULL) {
		struct mem_day *v = realloc(s->days, (s->n_days + 1) * sizeof(*v));
		char *k = strdup(key);

		if (v != NULL)
			s->days = v;
		if (v == NULL || k == NULL) {
			free(k);
			tr_error_set(err, TR_ERR_LOCAL, "out of memory");
			r = -1;
			goto out;
		}
		d = &s->days[s->n_days++];
		d->key = k;
		d->day = day;
		d->bytes = 0;
	}
	if (delta < 0 && (uint64_t)-delta > d->bytes)
		d->bytes = 0;
	else
		d->bytes += (uint64_t)delta;
	*total_r = d->bytes;
out:
	pthread_mutex_unlock(&s->mu);
	return r;
}

const struct state_backend state_backend_mem = {
	.name = "mem",
	.where = "NAME",
	.durable = false,
	.open = mem_open,
	.close = mem_close,
	.path = mem_path,
	.account = mem_account,
	.account_lock = mem_account_lock,
	.account_unlock = mem_account_unlock,
	.lock_watch = mem_lock_watch,
	.account_get_status = mem_account_get_status,
	.account_set_status = mem_account_set_status,
	.folder_load = mem_folder_load,
	.folder_saved_dst = mem_folder_saved_dst,
	.folder_reset = mem_folder_reset,
	.folder_save = mem_folder_save,
	.msgs_load = mem_msgs_load,
	.msgs_put = mem_msgs_put,
	.msgs_delete = mem_msgs_delete,
	.day_bytes_add = mem_day_bytes_add,
};
