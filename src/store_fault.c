/* store_fault: see include/store_fault.h */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "store_fault.h"

struct fstore {
	struct store base;
	struct store *in;
	struct fault_run *run;
	const char *tag;          /* the plan's */
	bool broken;              /* a fault broke it */
};

static struct fstore *fs_of(struct store *st)
{
	return (struct fstore *)st;
}

void fault_run_init(struct fault_run *r, enum fault_rule rule, uint64_t n)
{
	pthread_mutex_init(&r->lock, NULL);
	r->rule = rule;
	r->n = n;
	r->only = NULL;
	r->ops = r->appends = r->counted = r->counted_appends = 0;
	r->fired = r->stopped = false;
}

void fault_run_only(struct fault_run *r, const char *tag)
{
	pthread_mutex_lock(&r->lock);
	r->only = tag;
	pthread_mutex_unlock(&r->lock);
}

void fault_run_destroy(struct fault_run *r)
{
	pthread_mutex_destroy(&r->lock);
}

uint64_t fault_run_ops(struct fault_run *r)
{
	uint64_t n;

	pthread_mutex_lock(&r->lock);
	n = r->only != NULL ? r->counted : r->ops;
	pthread_mutex_unlock(&r->lock);
	return n;
}

uint64_t fault_run_appends(struct fault_run *r)
{
	uint64_t n;

	pthread_mutex_lock(&r->lock);
	n = r->only != NULL ? r->counted_appends : r->appends;
	pthread_mutex_unlock(&r->lock);
	return n;
}

bool fault_run_fired(struct fault_run *r)
{
	bool f;

	pthread_mutex_lock(&r->lock);
	f = r->fired;
	pthread_mutex_unlock(&r->lock);
	return f;
}

enum verdict { GO, GO_LOSE_REPLY, STOP, DROP };

/* Count one operation of a store tagged tag and say what becomes of it. */
static enum verdict count(struct fault_run *r, const char *tag, bool append)
{
	enum verdict v = GO;
	bool mine;

	pthread_mutex_lock(&r->lock);
	mine = r->only == NULL || (tag != NULL && strcmp(tag, r->only) == 0);
	r->ops++;
	if (append)
		r->appends++;
	if (mine) {
		r->counted++;
		if (append)
			r->counted_appends++;
	}
	if (r->stopped) {
		v = STOP;
	} else if (!mine) {
		v = GO;
	} else if (r->rule == FAULT_STOP_AT && r->counted >= r->n) {
		r->stopped = r->fired = true;
		v = STOP;
	} else if (r->rule == FAULT_DROP_AT && r->counted == r->n) {
		r->fired = true;
		v = DROP;
	} else if (r->rule == FAULT_LOSE_APPEND && append && r->counted_appends == r->n) {
		r->fired = true;
		v = GO_LOSE_REPLY;
	}
	pthread_mutex_unlock(&r->lock);
	return v;
}

static int failed(struct fstore *fs, enum verdict v, const char *op, struct tr_error *err)
{
	if (fs != NULL)
		fs->broken = true;
	if (v == STOP)
		tr_error_set(err, TR_ERR_STOPPED, "stopped before %s (fault injected)", op);
	else
		tr_error_set(err, TR_ERR_TEMP, "%s: the connection dropped (fault injected)", op);
	return -1;
}

/* The gate in front of every operation but open and append. */
static int gate(struct fstore *fs, const char *op, struct tr_error *err)
{
	enum verdict v = count(fs->run, fs->tag, false);

	return v == GO ? 0 : failed(fs, v, op, err);
}

static int f_open(const struct store_conf *c, struct store **st_r, struct tr_error *err)
{
	const struct fault_plan *p = c->arg;
	struct store_conf inner;
	struct fstore *fs;
	enum verdict v;

	*st_r = NULL;
	if (p == NULL || p->inner_drv == NULL || p->run == NULL) {
		tr_error_set(err, TR_ERR_USAGE, "the fault store needs a plan");
		return -1;
	}
	v = count(p->run, p->tag, false);
	if (v != GO)
		return failed(NULL, v, "open", err);
	inner = p->inner;
	if (inner.ep == NULL)
		inner.ep = c->ep;
	if (inner.cr == NULL)
		inner.cr = c->cr;
	fs = calloc(1, sizeof(*fs));
	if (fs == NULL) {
		tr_error_set(err, TR_ERR_LOCAL, "out of memory");
		return -1;
	}
	fs->base.drv = &store_fault_driver;
	fs->run = p->run;
	fs->tag = p->tag;
	/* the inner driver's own open: store.c picks drivers, it is not called */
	if (p->inner_drv->open(&inner, &fs->in, err) < 0) {
		free(fs);
		return -1;
	}
	*st_r = &fs->base;
	return 0;
}

static void f_close(struct store *st)
{
	struct fstore *fs = fs_of(st);

	if (fs == NULL)
		return;
	store_close(fs->in);
	free(fs);
}

static bool f_broken(const struct store *st)
{
	const struct fstore *fs = (const struct fstore *)st;

	return fs->broken || store_broken(fs->in);
}

static const struct store_caps *f_caps(const struct store *st)
{
	return store_caps(((const struct fstore *)st)->in);
}

static const char *f_where(const struct store *st)
{
	return store_where(((const struct fstore *)st)->in);
}

static const char *f_transport(struct store *st, char *buf, size_t len)
{
	return store_transport(fs_of(st)->in, buf, len);
}

static int f_list(struct store *st, struct folder_list *l, struct tr_error *err)
{
	struct fstore *fs = fs_of(st);

	folder_list_init(l);
	if (gate(fs, "list", err) < 0)
		return -1;
	return store_list(fs->in, l, err);
}

static int f_status_many(struct store *st, const char *const *names, size_t n,
			 struct store_status *stv, struct tr_error *err)
{
	struct fstore *fs = fs_of(st);

	if (gate(fs, "status", err) < 0)
		return -1;
	return store_status_many(fs->in, names, n, stv, err);
}

static int f_command_many(struct store *st, enum store_cmd cmd, const char *const *names,
			  size_t n, bool *ok, struct store_refusal *why, struct tr_error *err)
{
	struct fstore *fs = fs_of(st);

	if (gate(fs, cmd == STORE_CREATE ? "create" : "subscribe", err) < 0)
		return -1;
	return store_command_many(fs->in, cmd, names, n, ok, why, err);
}

static int f_open_folder(struct store *st, const char *name, bool readonly,
			 struct store_status *s, struct tr_error *err)
{
	struct fstore *fs = fs_of(st);

	if (gate(fs, "open_folder", err) < 0)
		return -1;
	return store_open_folder(fs->in, name, readonly, s, err);
}

static int f_open_fetch(struct store *st, const char *name, struct store_status *s,
			bool *opened, const struct store_set *set, int what, store_msg_cb *cb,
			void *ctx, struct tr_error *err)
{
	struct fstore *fs = fs_of(st);

	*opened = false;
	if (gate(fs, "open_fetch", err) < 0)
		return -1;
	return store_open_fetch(fs->in, name, s, opened, set, what, cb, ctx, err);
}

static int f_fetch_meta(struct store *st, const struct store_set *set, int what,
			uint64_t changedsince, store_msg_cb *cb, void *ctx, struct tr_error *err)
{
	struct fstore *fs = fs_of(st);

	if (gate(fs, "fetch_meta", err) < 0)
		return -1;
	return store_fetch_meta(fs->in, set, what, changedsince, cb, ctx, err);
}

static int f_fetch_bodies(struct store *st, const struct store_set *set, struct stage *sp,
			  store_unreadable_cb *bad, void *ctx, struct tr_error *err)
{
	struct fstore *fs = fs_of(st);

	if (gate(fs, "fetch_bodies", err) < 0)
		return -1;
	return store_fetch_bodies(fs->in, set, sp, bad, ctx, err);
}

static int f_append(struct store *st, const char *name, const struct stage *sp,
		    struct store_append_item *items, size_t n, uint32_t *uidvalidity_r,
		    struct tr_error *err)
{
	struct fstore *fs = fs_of(st);
	enum verdict v = count(fs->run, fs->tag, true);

	*uidvalidity_r = 0;
	if (v == STOP || v == DROP)
		return failed(fs, v, "append", err);
	if (store_append(fs->in, name, sp, items, n, uidvalidity_r, err) < 0)
		return -1;
	if (v == GO_LOSE_REPLY) {
		/* Done, but the caller never learns it: what it was told goes too. */
		for (size_t i = 0; i < n; i++)
			items[i].dst_uid = 0;
		*uidvalidity_r = 0;
		return failed(fs, DROP, "append (its reply lost)", err);
	}
	return 0;
}

static int f_set_flags(struct store *st, const struct store_set *set, const char *flags,
		       struct tr_error *err)
{
	struct fstore *fs = fs_of(st);

	if (gate(fs, "set_flags", err) < 0)
		return -1;
	return store_set_flags(fs->in, set, flags, err);
}

static int f_quota(struct store *st, uint64_t *used_kib, uint64_t *limit_kib,
		   struct tr_error *err)
{
	struct fstore *fs = fs_of(st);

	if (gate(fs, "quota", err) < 0)
		return -1;
	return store_quota(fs->in, used_kib, limit_kib, err);
}

const struct store_driver store_fault_driver = {
	.name = "fault",
	.open = f_open,
	.close = f_close,
	.broken = f_broken,
	.caps = f_caps,
	.where = f_where,
	.transport = f_transport,
	.list = f_list,
	.status_many = f_status_many,
	.command_many = f_command_many,
	.open_folder = f_open_folder,
	.open_fetch = f_open_fetch,
	.fetch_meta = f_fetch_meta,
	.fetch_bodies = f_fetch_bodies,
	.append = f_append,
	.set_flags = f_set_flags,
	.quota = f_quota,
};
