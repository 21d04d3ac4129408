/* account: see include/account.h */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "account.h"
#include "log.h"
#include "net.h"
#include "scheduler.h"

/* Spool: messages up to this size stay in memory. */
#define STAGE_MEM_LIMIT (128 * 1024)
/* Back-off between attempts: 1 s, 2 s, 4 s ... capped, with jitter. */
#define BACKOFF_MAX_S 30
/* A server's own hint ("Suggested Backoff Time") is followed up to this:
 * Office 365 asks for about 5 minutes. */
#define BACKOFF_HINT_MAX_S 900

struct worker;

/* One folder's part of the progress horizon (account_progress): its
 * messages and bytes counted in the totals, and done so far; planned once
 * its sync said what it copies. */
struct horizon {
	uint64_t msgs, bytes, msgs_done, bytes_done;
	bool planned;
};

struct acct {
	const struct account_opts *o;
	struct account_result *res;
	int64_t account_id;
	struct folder_list src_l, dst_l;
	struct folder_plan plan;
	struct store_status *status;   /* source STATUS per plan entry */
	bool *have_status;
	bool *dst_listed;             /* per plan entry: listed on the destination before prepare */
	struct horizon *hz;           /* per plan entry, under lock */

	pthread_mutex_t lock;
	size_t *order;                /* plan indexes of folders with work, biggest first */
	size_t n_work;
	size_t next;
	size_t *returned;             /* folders a worker gave back */
	size_t n_returned;
	size_t active;                /* folders being worked on right now */
	bool prepared;                /* the folder plan is ready: workers may start */
	pthread_cond_t changed;       /* a folder was finished or given back */
	bool abort;                   /* fatal for the account: stop handing out work */
	struct tr_error abort_err;
	atomic_uint refused[2];       /* account_result's, from every worker */
};

struct worker {
	struct acct *a;
	int idx;
	pthread_t thread;
	struct store *src, *dst;
	struct stage stage, stage2;
	unsigned int seed;
	bool eager;               /* started before the plan: log in at once */
};

const char *account_status_name(enum account_status s)
{
	switch (s) {
	case ACCOUNT_OK: return "ok";
	case ACCOUNT_PARTIAL: return "partial";
	case ACCOUNT_FAILED: return "failed";
	case ACCOUNT_PAUSED: return "paused";
	}
	return "?";
}


static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Sleep for attempt's back-off after err, waking early on a stop request:
 * the time the server asked for when it said one (never less, a little
 * more so that workers told together do not return together), else
 * exponential with jitter. */
static void backoff(int attempt, unsigned int *seed, const struct tr_error *err)
{
	double s = 1;
	int i;

	if (err != NULL && err->kind == TR_ERR_WAIT && err->wait_ms > 0) {
		s = (double)err->wait_ms / 1000;
		if (s > BACKOFF_HINT_MAX_S)
			s = BACKOFF_HINT_MAX_S;
		s *= 1 + 0.1 * (double)rand_r(seed) / RAND_MAX;
	} else {
		for (i = 0; i < attempt && s < BACKOFF_MAX_S; i++)
			s *= 2;
		if (s > BACKOFF_MAX_S)
			s = BACKOFF_MAX_S;
		/* Jitter, so that workers refused together do not return together. */
		s = s * (0.5 + (double)rand_r(seed) / RAND_MAX);
	}
	for (double left = s; left > 0 && !net_cancelled(); left -= 0.2)
		usleep(left >= 0.2 ? 200000 : (useconds_t)(left * 1e6));
}

static bool transient(enum tr_err_kind k)
{
	return k == TR_ERR_TEMP || k == TR_ERR_WAIT || k == TR_ERR_CONNECT;
}

static struct limiter *side_limiter(struct acct *a, bool src)
{
	return src ? a->o->src_lim : a->o->dst_lim;
}

static const char *side_login(struct acct *a, bool src)
{
	return src ? a->o->src_cr.user : a->o->dst_cr.user;
}

/* Close a session and give its slot back. */
static void close_session(struct acct *a, bool src, struct store **s)
{
	if (*s == NULL)
		return;
	store_close(*s);
	*s = NULL;
	limiter_release(side_limiter(a, src), side_login(a, src));
}

/* Open one session within the limiter's caps.  An `extra` session (a
 * second worker's) neither waits for a slot nor insists when refused: the
 * account makes do with the sessions it has.  When this account already
 * holds a session on that server, a refused login is a connection limit
 * in disguise (the same password just worked), not a bad password. */
static int open_session(struct acct *a, bool src, bool extra, unsigned int *seed,
			struct store **s_r, struct tr_error *err)
{
	const struct account_opts *o = a->o;
	struct limiter *lim = side_limiter(a, src);
	const char *login = side_login(a, src);
	int attempt;

	*s_r = NULL;
	for (attempt = 0;; attempt++) {
		bool others = limiter_in_use(lim, login) > 0;

		if (limiter_acquire(lim, login, !extra) < 0) {
			if (net_cancelled())
				tr_error_set(err, TR_ERR_STOPPED, "stopped");
			else
				tr_error_set(err, TR_ERR_WAIT, "no free session slot on the %s",
					     src ? "source" : "destination");
			return -1;
		}
		struct store_conf conf = { src ? o->src_ep : o->dst_ep,
					   src ? &o->src_cr : &o->dst_cr, src ? o->src_arg : o->dst_arg };

		if (store_open(src ? o->src_drv : o->dst_drv, &conf, s_r, err) == 0)
			return 0;
		if (err->kind == TR_ERR_AUTH && others) {
			char msg[sizeof(err->msg)];

			memcpy(msg, err->msg, sizeof(msg));
			tr_error_set(err, TR_ERR_WAIT, "%s (while other sessions of this account "
				     "are open: taken as a connection limit)", msg);
		}
		if (err->kind == TR_ERR_WAIT) {
			limiter_refused(lim, login);
			atomic_fetch_add(&a->refused[src ? 0 : 1], 1);
			if (o->progress != NULL)
				atomic_fetch_add(&o->progress->refused[src ? 0 : 1], 1);
		}
		limiter_release(lim, login);
		if (extra || !transient(err->kind) || attempt + 1 >= o->cfg->retries ||
		    net_cancelled())
			return -1;
		log_warn(o->label, "%s; retrying (%d/%d)", err->msg, attempt + 1, o->cfg->retries - 1);
		backoff(attempt, seed, err);
	}
}

static void set_abort(struct acct *a, const struct tr_error *err)
{
	pthread_mutex_lock(&a->lock);
	if (!a->abort) {
		a->abort = true;
		a->abort_err = *err;
	}
	pthread_cond_broadcast(&a->changed);
	pthread_mutex_unlock(&a->lock);
}

/* Next folder to sync, or -1 when there is none (or the account aborted).
 * While another worker still holds a folder it may give it back (when its
 * extra sessions are refused), so wait for that rather than leave it
 * behind with nobody to take it. */
static long take_folder(struct acct *a)
{
	long i = -1;

	pthread_mutex_lock(&a->lock);
	while (!a->abort) {
		if (!a->prepared) {
			pthread_cond_wait(&a->changed, &a->lock);
			continue;
		}
		if (a->n_returned > 0) {
			i = (long)a->returned[--a->n_returned];
			break;
		}
		if (a->next < a->n_work) {
			i = (long)a->order[a->next++];
			break;
		}
		if (a->active == 0)
			break;
		pthread_cond_wait(&a->changed, &a->lock);
	}
	if (i >= 0)
		a->active++;
	pthread_mutex_unlock(&a->lock);
	return i;
}

/* The worker is done with its folder: finished, or given back. */
static void folder_done(struct acct *a, long given_back)
{
	pthread_mutex_lock(&a->lock);
	if (given_back >= 0)
		a->returned[a->n_returned++] = (size_t)given_back;
	a->active--;
	pthread_cond_broadcast(&a->changed);
	pthread_mutex_unlock(&a->lock);
}

/* What the progress callbacks of one folder's sync get. */
struct folder_progress {
	struct acct *a;
	size_t i;
};

static void progress_cb(void *ctx, uint32_t copied, uint32_t other, uint64_t bytes)
{
	struct folder_progress *fp = ctx;
	struct account_progress *p = fp->a->o->progress;
	struct horizon *h = &fp->a->hz[fp->i];

	if (p == NULL)
		return;
	pthread_mutex_lock(&fp->a->lock);
	h->msgs_done += (uint64_t)copied + other;
	h->bytes_done += bytes;
	pthread_mutex_unlock(&fp->a->lock);
	atomic_fetch_add(&p->copied, copied);
	atomic_fetch_add(&p->bytes, bytes);
	atomic_fetch_add(&p->msgs_done, (uint64_t)copied + other);
}

/* The folder's horizon is what it has done plus to_copy messages of
 * `bytes` more (on unsigned counters, adding new - old modulo 2^64 is
 * the signed change). */
static void horizon_set(struct acct *a, size_t i, uint64_t to_copy, uint64_t bytes)
{
	struct account_progress *p = a->o->progress;
	struct horizon *h = &a->hz[i];
	uint64_t msgs, b;

	if (p == NULL)
		return;
	pthread_mutex_lock(&a->lock);
	msgs = h->msgs_done + to_copy;
	b = h->bytes_done + bytes;
	atomic_fetch_add(&p->msgs_total, msgs - h->msgs);
	if (!h->planned) {
		atomic_fetch_add(&p->msgs_unknown, 0 - h->msgs);
		atomic_fetch_add(&p->msgs_known, msgs);
		atomic_fetch_add(&p->bytes_known, b);
		h->planned = true;
	} else {
		atomic_fetch_add(&p->msgs_known, msgs - h->msgs);
		atomic_fetch_add(&p->bytes_known, b - h->bytes);
	}
	h->msgs = msgs;
	h->bytes = b;
	pthread_mutex_unlock(&a->lock);
}

static void planned_cb(void *ctx, uint32_t to_copy, uint64_t bytes)
{
	struct folder_progress *fp = ctx;

	horizon_set(fp->a, fp->i, to_copy, bytes);
}

static void drop_broken(struct acct *a, bool src, struct store **s)
{
	if (*s != NULL && store_broken(*s))
		close_session(a, src, s);
}

/* Make sure the worker has two healthy sessions.  Returns 0, or -1 with err. */
static int ensure_sessions(struct worker *w, struct tr_error *err)
{
	bool extra = w->idx > 0;

	drop_broken(w->a, true, &w->src);
	drop_broken(w->a, false, &w->dst);
	if (w->src == NULL && open_session(w->a, true, extra, &w->seed, &w->src, err) < 0)
		return -1;
	if (w->dst == NULL && open_session(w->a, false, extra, &w->seed, &w->dst, err) < 0)
		return -1;
	return 0;
}

/* Sync plan entry i, retrying transient failures.  Returns 0 when the
 * folder is finished (done or failed), 1 when the worker gives it back
 * (its extra sessions were refused) and stops, -1 when the account
 * aborted. */
static int do_folder(struct worker *w, size_t i)
{
	struct acct *a = w->a;
	const struct account_opts *o = a->o;
	const struct folder_plan_entry *pe = &a->plan.v[i];
	const struct folder *sf = &a->src_l.v[pe->src_index];
	struct folder_report *fr = &a->res->folders[i];
	struct sync_folder_job job;
	struct sync_pass pass = {
		.since_day = o->cfg->since_day, .before_day = o->cfg->before_day,
		.trial = o->cfg->trial,
	};
	struct folder_progress fp = { a, i };
	struct tr_error err;
	double t0;
	int attempt;

	memset(&job, 0, sizeof(job));
	job.ctx = o->label;
	job.state = o->state;
	job.account_id = a->account_id;
	job.stage = &w->stage;
	job.stage2 = &w->stage2;
	job.limits = o->limits;
	job.progress = progress_cb;
	job.planned = planned_cb;
	job.progress_ctx = &fp;
	job.failures = &fr->failures;
	job.pass = &pass;
	job.src_raw = sf->raw;
	job.src_name = fr->src_name;
	job.dst_raw = pe->dst_raw;
	job.dst_name = pe->dst_name;
	job.dst_exists = pe->dst_exists;
	job.dst_listed = a->dst_listed[i];
	job.src_status = a->have_status[i] ? &a->status[i] : NULL;

	for (attempt = 0;; attempt++) {
		tr_error_clear(&err);
		if (ensure_sessions(w, &err) < 0) {
			if (err.kind == TR_ERR_WAIT && w->idx > 0) {
				/* The server will not give us another session: leave the
				 * folder to the workers that have one. */
				log_info(o->label, "worker %d stops: %s", w->idx + 1, err.msg);
				close_session(a, true, &w->src);
				close_session(a, false, &w->dst);
				return 1;
			}
			if (!transient(err.kind) || attempt + 1 >= o->cfg->retries) {
				if (err.kind == TR_ERR_AUTH || err.kind == TR_ERR_TLS ||
				    err.kind == TR_ERR_STOPPED || err.kind == TR_ERR_CONNECT) {
					set_abort(a, &err);
					return -1;
				}
				break;
			}
			backoff(attempt, &w->seed, &err);
			continue;
		}
		job.src = w->src;
		job.dst = w->dst;
		t0 = now_s();
		if (sync_folder(&job, &fr->counts, &err) == 0) {
			log_debug(o->label, "%s: %u copied, %u present in %.3f s (worker %d)",
				  fr->src_name, fr->counts.copied, fr->counts.present, now_s() - t0,
				  w->idx + 1);
			fr->failed = false;
			/* what it did is all it does (messages too big, vanished) */
			horizon_set(a, i, 0, 0);
			if (o->progress != NULL)
				atomic_fetch_add(&o->progress->folders_done, 1);
			return 0;
		}
		job.dst_exists = true;
		if (err.kind == TR_ERR_STOPPED || err.kind == TR_ERR_LOCAL ||
		    err.kind == TR_ERR_PAUSED) {
			set_abort(a, &err);
			return -1;
		}
		if (err.kind == TR_ERR_WAIT && err.throttled && w->idx > 0 && !net_cancelled()) {
			/* A server throttling us mid-session wants fewer of our
			 * sessions: this worker leaves its folder to the first,
			 * which backs off and carries on (as when a server refuses
			 * an extra session). */
			log_info(o->label, "worker %d stops: %s", w->idx + 1, err.msg);
			close_session(a, true, &w->src);
			close_session(a, false, &w->dst);
			pthread_mutex_lock(&a->lock);
			a->plan.v[i].dst_exists = true;   /* this attempt may have made it */
			pthread_mutex_unlock(&a->lock);
			return 1;
		}
		if (!transient(err.kind) || attempt + 1 >= o->cfg->retries || net_cancelled())
			break;
		log_warn(o->label, "%s; retrying the folder (%d/%d)%s", err.msg, attempt + 1,
			 o->cfg->retries - 1, err.kind == TR_ERR_WAIT && err.wait_ms > 0 ?
			 " after the time the server asked for" : "");
		drop_broken(a, true, &w->src);
		drop_broken(a, false, &w->dst);
		backoff(attempt, &w->seed, &err);
	}
	log_error(o->label, "folder %s failed: %s", fr->src_name, err.msg);
	fr->failed = true;
	fr->error = strdup(err.msg);
	fr->error_kind = err.kind;
	{
		/* Whatever the source holds that this run did not place is failed,
		 * not silently absent from the totals. */
		const struct sync_counts *c = &fr->counts;
		uint32_t placed = c->copied + c->present + c->failed + c->vanished;

		if (job.src_status != NULL && job.src_status->messages > placed)
			fr->counts.failed += job.src_status->messages - placed;
	}
	horizon_set(a, i, 0, 0);
	if (o->progress != NULL)
		atomic_fetch_add(&o->progress->folders_done, 1);
	return 0;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct tr_error err;
	long i;

	/* A worker started before the plan logs in meanwhile; if the server
	 * refuses, it simply waits for nothing and leaves. */
	if (w->eager && ensure_sessions(w, &err) < 0)
		log_debug(w->a->o->label, "worker %d: %s", w->idx + 1, err.msg);

	if (stage_init(&w->stage, w->a->o->cfg->spool_dir, STAGE_MEM_LIMIT, &err) < 0 ||
	    stage_init(&w->stage2, w->a->o->cfg->spool_dir, STAGE_MEM_LIMIT, &err) < 0) {
		set_abort(w->a, &err);
		stage_free(&w->stage);
		return NULL;
	}
	while ((i = take_folder(w->a)) >= 0) {
		int r = do_folder(w, (size_t)i);

		folder_done(w->a, r == 1 ? i : -1);
		if (r != 0)
			break;
	}
	stage_free(&w->stage);
	stage_free(&w->stage2);
	return NULL;
}

static int cmp_desc_messages(const void *x, const void *y, void *ctx)
{
	const struct acct *a = ctx;
	size_t i = *(const size_t *)x, j = *(const size_t *)y;
	uint32_t mi = a->have_status[i] ? a->status[i].messages : 0;
	uint32_t mj = a->have_status[j] ? a->status[j].messages : 0;

	if (mi != mj)
		return mi > mj ? -1 : 1;
	return i < j ? -1 : i > j;
}

/* Subscribe on the destination to what the source subscribes to, in one
 * round trip; never to a folder the destination does not have. */
static void copy_subscriptions(struct acct *a, struct store *dst)
{
	const char **names = calloc(a->plan.n + 1, sizeof(*names));
	bool *ok = calloc(a->plan.n + 1, sizeof(*ok));
	struct tr_error err;
	size_t i, n = 0;

	if (names == NULL || ok == NULL)
		goto out;
	for (i = 0; i < a->plan.n; i++) {
		const struct folder_plan_entry *pe = &a->plan.v[i];
		const struct folder *sf = &a->src_l.v[pe->src_index];
		const struct folder *df = folder_list_find_raw(&a->dst_l, pe->dst_raw);

		if (sf->subscribed && pe->dst_exists && (df == NULL || !df->subscribed) &&
		    !a->res->folders[i].failed)
			names[n++] = pe->dst_raw;
	}
	if (store_command_many(dst, STORE_SUBSCRIBE, names, n, ok, NULL, &err) < 0) {
		log_warn(a->o->label, "cannot copy subscriptions: %s", err.msg);
		goto out;
	}
	for (i = 0; i < n; i++)
		if (!ok[i])
			log_warn(a->o->label, "the destination refused to subscribe to %s", names[i]);
out:
	free(names);
	free(ok);
}

/* A folder that cannot be copied at all, before any worker sees it. */
static int fail_folder(struct acct *a, size_t i, const char *fmt, const char *what,
		       const char *reply)
{
	struct folder_report *fr = &a->res->folders[i];
	char msg[sizeof(((struct tr_error *)0)->msg) + 256];

	snprintf(msg, sizeof(msg), fmt, what, reply);
	free(fr->error);
	fr->error = strdup(msg);
	fr->error_kind = TR_ERR_PROTOCOL;
	fr->failed = true;
	log_error(a->o->label, "folder %s failed: %s", fr->src_name, msg);
	return fr->error != NULL ? 0 : -1;
}

/* The report follows a folder the plan sent elsewhere. */
static int report_rename(struct acct *a, size_t i)
{
	const struct folder_plan_entry *pe = &a->plan.v[i];
	struct folder_report *fr = &a->res->folders[i];
	char *name = strdup(pe->dst_name);

	if (name == NULL)
		return -1;
	free(fr->dst_name);
	fr->dst_name = name;
	fr->renamed = pe->renamed;
	fr->why = pe->why;
	log_info(a->o->label, "folder \"%s\" goes to \"%s\" (refused: the destination does not "
		 "accept the name \"%s\")", fr->src_name, fr->dst_name, pe->refused_name);
	return 0;
}

static int cmp_refused_order(const void *x, const void *y, void *ctx)
{
	const struct acct *a = ctx;
	const struct folder_plan_entry *p = &a->plan.v[*(const size_t *)x];
	const struct folder_plan_entry *q = &a->plan.v[*(const size_t *)y];

	/* parents before their subfolders */
	return strcmp(p->refused_name != NULL ? p->refused_name : p->dst_name,
		      q->refused_name != NULL ? q->refused_name : q->dst_name);
}

/* A name refused by the destination: the next legal name by folder.h's
 * rule.  Returns 1 when there is one to try, 0 when the rule has no more,
 * -1 on error. */
static int next_legal(struct acct *a, size_t i, int *level, char bad, struct tr_error *err)
{
	while (*level < FOLDER_LEGAL_LEVELS) {
		int r = folder_plan_legalize(&a->plan, &a->dst_l, i, ++*level, bad, err);

		if (r != 0)
			return r;
	}
	return 0;
}

/* Create the missing destination folders that have work, all in one round
 * trip (parents first, though Dovecot and most servers make them anyway).
 * A name the destination refuses as invalid is replaced with a legal one
 * (folder.h's rule, level by level: one more round trip per level for all
 * such folders); any other refusal fails that folder with CREATE's own
 * reply, and nothing is subscribed or copied for it. */
static int create_missing(struct acct *a, struct store *dst, struct tr_error *err)
{
	size_t n = a->plan.n + 1, i, k;
	const char **names = calloc(n, sizeof(*names));
	size_t *which = calloc(n, sizeof(*which)), *order = calloc(n, sizeof(*order));
	bool *ok = calloc(n, sizeof(*ok)), *need = calloc(n, sizeof(*need));
	struct store_refusal *why = calloc(n, sizeof(*why));
	struct tr_error *first = calloc(n, sizeof(*first));
	int *level = calloc(n, sizeof(*level));
	char *bad = calloc(n, sizeof(*bad));
	int r = -1;

	if (names == NULL || which == NULL || order == NULL || ok == NULL || need == NULL ||
	    why == NULL || first == NULL || level == NULL || bad == NULL) {
		tr_error_set(err, TR_ERR_LOCAL, "out of memory");
		goto out;
	}
	/* Every planned folder the destination lacks: a folder can be
	 * unchanged only when it exists there, so these all have work. */
	for (i = 0; i < a->plan.n; i++) {
		order[i] = i;
		need[i] = !a->plan.v[i].dst_exists && !a->res->folders[i].failed;
	}
	for (;;) {
		for (i = 0, k = 0; i < a->plan.n; i++) {
			if (need[order[i]]) {
				which[k] = order[i];
				names[k++] = a->plan.v[order[i]].dst_raw;
			}
		}
		if (k == 0)
			break;
		if (store_command_many(dst, STORE_CREATE, names, k, ok, why, err) < 0)
			goto out;
		for (i = 0; i < k; i++) {
			size_t j = which[i];
			struct folder_plan_entry *pe = &a->plan.v[j];
			int t;

			if (ok[i] || why[i].kind == STORE_REFUSED_EXISTS) {
				need[j] = false;
				pe->dst_exists = true;
				if (pe->refused_name != NULL && report_rename(a, j) < 0)
					goto nomem;
				continue;
			}
			if (why[i].kind != STORE_REFUSED_NAME) {
				need[j] = false;
				if (fail_folder(a, j, "the destination refused to create \"%s\": %s",
						a->res->folders[j].dst_name, why[i].err.msg) < 0)
					goto nomem;
				continue;
			}
			if (level[j] == 0) {
				first[j] = why[i].err;
				bad[j] = why[i].bad;
				/* parents first, from now on */
				qsort_r(order, a->plan.n, sizeof(*order), cmp_refused_order, a);
			}
			t = next_legal(a, j, &level[j], bad[j], err);
			if (t < 0)
				goto out;
			if (t > 0 && pe->dst_exists) {
				/* the copy an earlier run made under that name */
				need[j] = false;
				if (report_rename(a, j) < 0)
					goto nomem;
				continue;
			}
			if (t == 0) {
				need[j] = false;
				if (fail_folder(a, j, "the destination refuses the name \"%s\", and every "
						"legal variant of it: %s", pe->refused_name != NULL ?
						pe->refused_name : pe->dst_name, first[j].msg) < 0)
					goto nomem;
			}
		}
	}
	r = 0;
	goto out;
nomem:
	tr_error_set(err, TR_ERR_LOCAL, "out of memory");
out:
	free(names);
	free(which);
	free(order);
	free(ok);
	free(need);
	free(why);
	free(first);
	free(level);
	free(bad);
	return r;
}

/* A folder renamed because the destination refused its name goes to the
 * same place on every later run: the state remembers where. */
static int renames_from_state(struct acct *a, struct tr_error *err)
{
	for (size_t i = 0; i < a->plan.n; i++) {
		struct folder_plan_entry *pe = &a->plan.v[i];
		const struct folder *df;
		char *saved = NULL;
		int r;

		if (pe->dst_exists || (pe->why != NULL && strcmp(pe->why, "map") == 0))
			continue;
		r = state_folder_saved_dst(a->o->state, a->account_id, a->res->folders[i].src_name,
					   &saved, err);
		if (r < 0)
			return -1;
		df = r > 0 ? folder_list_find_name(&a->dst_l, saved) : NULL;
		if (df != NULL && !df->noselect && strcmp(saved, pe->dst_name) != 0 &&
		    folder_legal_variant(pe->dst_name, saved)) {
			bool taken = false;

			for (size_t j = 0; j < a->plan.n && !taken; j++)
				taken = j != i && strcmp(a->plan.v[j].dst_name, saved) == 0;
			if (!taken && (folder_plan_rename(&a->plan, &a->dst_l, i, saved, "refused",
							  err) < 0 || report_rename(a, i) < 0)) {
				free(saved);
				if (err->kind == TR_ERR_NONE)
					tr_error_set(err, TR_ERR_LOCAL, "out of memory");
				return -1;
			}
		}
		free(saved);
	}
	return 0;
}

/* The destination's part of the preparation, while the source answers
 * STATUS: create the missing folders, copy subscriptions. */
struct dst_prep {
	struct acct *a;
	struct store *dst;
	struct tr_error err;
	int r;
};

static void *dst_prep_main(void *arg)
{
	struct dst_prep *p = arg;

	tr_error_clear(&p->err);
	p->r = create_missing(p->a, p->dst, &p->err);
	if (p->r == 0 && p->a->o->cfg->subscribe)
		copy_subscriptions(p->a, p->dst);
	return NULL;
}

static int prepare(struct acct *a, struct store *src, struct store *dst,
		   struct tr_error *err)
{
	const struct account_opts *o = a->o;
	struct account_result *res = a->res;
	struct dst_prep dp = { .a = a, .dst = dst };
	const char **names;
	bool *listed, threaded;
	pthread_t t;
	size_t i, n_flags = 0;
	int r;

	if (folder_plan_make(&a->src_l, &a->dst_l, o->map, &a->plan, err) < 0)
		return -1;
	for (i = 0; i < a->plan.n_unused; i++)
		log_warn(o->label, "%s", a->plan.unused[i]);
	if (a->plan.n == 0) {
		tr_error_set(err, TR_ERR_USAGE, "no folder of the source is selected (%s%s)",
			     a->plan.n_unused > 0 ? a->plan.unused[0] : "the source lists no "
			     "selectable folder", a->plan.n_unused > 1 ? ", ..." : "");
		return -1;
	}
	res->n_folders = a->plan.n;
	res->folders = calloc(a->plan.n + 1, sizeof(*res->folders));
	a->status = calloc(a->plan.n + 1, sizeof(*a->status));
	a->have_status = calloc(a->plan.n + 1, sizeof(*a->have_status));
	a->order = calloc(a->plan.n + 1, sizeof(*a->order));
	a->hz = calloc(a->plan.n + 1, sizeof(*a->hz));
	a->returned = calloc(a->plan.n + 1, sizeof(*a->returned));
	names = calloc(a->plan.n + 1, sizeof(*names));
	if (res->folders == NULL || a->status == NULL || a->have_status == NULL ||
	    a->order == NULL || a->returned == NULL || a->hz == NULL || names == NULL) {
		free(names);
		tr_error_set(err, TR_ERR_LOCAL, "out of memory");
		return -1;
	}
	for (i = 0; i < a->plan.n; i++) {
		const struct folder_plan_entry *pe = &a->plan.v[i];
		const struct folder *sf = &a->src_l.v[pe->src_index];
		struct folder_report *fr = &res->folders[i];

		fr->src_name = strdup(sf->name != NULL ? sf->name : sf->raw);
		fr->dst_name = strdup(pe->dst_name);
		fr->renamed = pe->renamed;
		fr->why = pe->why;
		if (fr->src_name == NULL || fr->dst_name == NULL) {
			free(names);
			tr_error_set(err, TR_ERR_LOCAL, "out of memory");
			return -1;
		}
		if (pe->renamed)
			log_info(o->label, "folder \"%s\" goes to \"%s\" (%s)", fr->src_name,
				 fr->dst_name, pe->why != NULL ? pe->why : "renamed");
		names[i] = sf->raw;
	}
	if (renames_from_state(a, err) < 0) {
		free(names);
		return -1;
	}
	/* Whether each folder was listed on the destination, before dst_prep
	 * creates the missing ones: a folder re-created empty must not look
	 * unchanged below. */
	listed = a->dst_listed = calloc(a->plan.n + 1, sizeof(*listed));
	if (listed == NULL) {
		free(names);
		tr_error_set(err, TR_ERR_LOCAL, "out of memory");
		return -1;
	}
	for (i = 0; i < a->plan.n; i++)
		listed[i] = a->plan.v[i].dst_exists;
	threaded = net_thread_start(&t, dst_prep_main, &dp) == 0;
	/* One round trip tells which folders changed since the last run. */
	r = store_status_many(src, names, a->plan.n, a->status, err);
	if (threaded)
		pthread_join(t, NULL);
	else
		dst_prep_main(&dp);
	free(names);
	if (r == 0 && dp.r < 0) {
		*err = dp.err;
		r = -1;
	}
	if (r < 0)
		return -1;
	/* Folders whose STATUS matches the state need no session at all. */
	a->n_work = 0;
	for (i = 0; i < a->plan.n; i++) {
		const struct folder_plan_entry *pe = &a->plan.v[i];
		struct folder_report *fr = &res->folders[i];
		uint32_t present = 0;
		int u;

		a->have_status[i] = a->status[i].uidvalidity != 0;
		if (fr->failed) {
			/* Refused before a worker saw it: all its messages are left behind. */
			fr->counts.failed = a->have_status[i] ? a->status[i].messages : 0;
			if (o->progress != NULL)
				atomic_fetch_add(&o->progress->folders_done, 1);
			continue;
		}
		u = sync_folder_unchanged(o->state, a->account_id, fr->src_name, pe->dst_name,
					  a->have_status[i] ? &a->status[i] : NULL, listed[i],
					  &present, err);
		if (u < 0)
			return -1;
		if (u == SYNC_UNCHANGED) {
			fr->counts.present = present;
			if (o->progress != NULL)
				atomic_fetch_add(&o->progress->folders_done, 1);
			continue;
		}
		if (u == SYNC_FLAGS_UNKNOWN)
			n_flags++;
		a->order[a->n_work++] = i;
		/* until its plan says: what STATUS counts beyond the last sync's */
		if (a->have_status[i] && a->status[i].messages > present)
			a->hz[i].msgs = a->status[i].messages - present;
		if (o->progress != NULL) {
			atomic_fetch_add(&o->progress->msgs_total, a->hz[i].msgs);
			atomic_fetch_add(&o->progress->msgs_unknown, a->hz[i].msgs);
		}
	}
	if (a->n_work > 1)
		qsort_r(a->order, a->n_work, sizeof(*a->order), cmp_desc_messages, a);
	if (n_flags == 0)
		log_info(o->label, "%zu of %zu folder(s) changed since the last run", a->n_work,
			 a->plan.n);
	else
		/* Without CONDSTORE a STATUS cannot show a flag change: say what
		 * will really be looked at rather than "changed". */
		log_info(o->label, "%zu of %zu folder(s) changed since the last run, %zu more to "
			 "compare flags with (the source has no CONDSTORE: STATUS cannot show a "
			 "flag change)", a->n_work - n_flags, a->plan.n, n_flags);
	if (o->progress != NULL)
		atomic_store(&o->progress->folders_total, (uint32_t)a->plan.n);
	return 0;
}

/* The first session of one side, and its folder list. */
struct opener {
	struct acct *a;
	bool src;
	unsigned int seed;
	struct store *s;
	struct tr_error err;
	int r;
};

static void *opener_main(void *arg)
{
	struct opener *op = arg;
	struct folder_list *l = op->src ? &op->a->src_l : &op->a->dst_l;

	tr_error_clear(&op->err);
	op->r = open_session(op->a, op->src, false, &op->seed, &op->s, &op->err);
	if (op->r == 0) {
		folder_list_free(l);
		op->r = store_list(op->s, l, &op->err);
	}
	return NULL;
}

/* Log in and list on both servers at the same time: the round trips of
 * the two sides overlap. */
static int open_both(struct acct *a, unsigned int *seed, struct store **src,
		     struct store **dst, struct tr_error *err)
{
	struct opener so = { .a = a, .src = true, .seed = *seed };
	struct opener d = { .a = a, .src = false, .seed = *seed + 1 };
	pthread_t t;
	bool threaded = net_thread_start(&t, opener_main, &d) == 0;

	opener_main(&so);
	if (threaded)
		pthread_join(t, NULL);
	else
		opener_main(&d);
	*src = so.s;
	*dst = d.s;
	if (so.r == 0 && d.r == 0)
		return 0;
	*err = so.r < 0 ? so.err : d.err;
	return -1;
}

/* Make n workers (at least 1) and start 2..n in threads; worker 1 is the
 * caller's.  *n_r gets the number really started. */
static int start_workers(struct acct *a, struct worker **workers_r, size_t n, unsigned int seed,
			 bool eager, size_t *n_r)
{
	struct worker *w;
	size_t i;

	if (n < 1)
		n = 1;
	w = calloc(n, sizeof(*w));
	if (w == NULL)
		return -1;
	for (i = 0; i < n; i++) {
		w[i].a = a;
		w[i].idx = (int)i;
		w[i].seed = seed + (unsigned int)i * 7919u;
		w[i].eager = eager && i > 0;
	}
	*workers_r = w;
	*n_r = n;
	for (i = 1; i < n; i++) {
		if (net_thread_start(&w[i].thread, worker_main, &w[i]) != 0) {
			*n_r = i;
			break;
		}
	}
	return 0;
}

/* Wait for workers 2..n, close every worker's sessions, free them. */
static void finish_workers(struct acct *a, struct worker *w, size_t n)
{
	size_t i;

	for (i = 1; i < n; i++)
		pthread_join(w[i].thread, NULL);
	for (i = 0; i < n; i++) {
		close_session(a, true, &w[i].src);
		close_session(a, false, &w[i].dst);
	}
	free(w);
}

/* What the state's lock watcher needs (state_lock_watch): the scope the
 * account runs in, captured when the lock was taken. */
struct lease_watch {
	const char *label;
	struct net_scope *scope;
	atomic_bool lost;
};

/* From the state backend's thread: the account's lease is gone and another
 * worker may take the account over, so its sessions stop now (an APPEND
 * finishing after the takeover could be doubled).  Only this account's:
 * the process's other accounts hold their leases. */
static void lease_lost(void *ctx)
{
	struct lease_watch *w = ctx;

	atomic_store(&w->lost, true);
	if (w->scope == NULL) {
		log_warn(w->label, "the hold on this account was lost (its lease expired), but the "
			 "account runs in no scope of its own: its sessions cannot be stopped apart "
			 "(stopping the whole process is not the right tool)");
		return;
	}
	log_warn(w->label, "the hold on this account was lost (its lease expired): stopping its "
		 "sessions");
	net_scope_cancel(w->scope);
}

void account_state_key(const struct account_opts *o, char *buf, size_t len)
{
	snprintf(buf, len, "%s@%s:%d -> %s@%s:%d", o->src_cr.user, o->src_ep->host,
		 o->src_ep->port, o->dst_cr.user, o->dst_ep->host, o->dst_ep->port);
}

int account_run(const struct account_opts *o, struct account_result *res)
{
	struct worker *workers = NULL;
	struct store *src = NULL, *dst = NULL;
	struct acct a;
	struct tr_error err;
	char key[1024];
	double t0 = now_s();
	unsigned int seed = (unsigned int)time(NULL) ^ (unsigned int)(uintptr_t)&a;
	size_t i, n_workers = 0;
	bool early = false;
	struct state_lock *lock = NULL;
	/* lives until state_account_unlock has returned: the watcher may call
	 * until then */
	struct lease_watch watch = { .label = o->label };

	memset(res, 0, sizeof(*res));
	memset(&a, 0, sizeof(a));
	a.o = o;
	a.res = res;
	pthread_mutex_init(&a.lock, NULL);
	pthread_cond_init(&a.changed, NULL);
	folder_list_init(&a.src_l);
	folder_list_init(&a.dst_l);
	tr_error_clear(&err);

	account_state_key(o, key, sizeof(key));
	if (state_account(o->state, key, &a.account_id, &err) < 0)
		goto failed;
	lock = state_account_lock(o->state, a.account_id, &err);
	if (lock == NULL)
		goto failed;
	watch.scope = net_scope_current();
	state_lock_watch(lock, lease_lost, &watch);
	if (open_both(&a, &seed, &src, &dst, &err) < 0)
		goto failed;
	{
		char t1[96], t2[96];

		log_info(o->label, "connected: %s [%s], %s [%s]", store_where(src),
			 store_transport(src, t1, sizeof(t1)), store_where(dst),
			 store_transport(dst, t2, sizeof(t2)));
	}
	/* A first run (or one after a failure) surely has work: let the other
	 * workers log in while the first session lists and plans.  A re-run
	 * waits for the plan, which often says there is nothing to do. */
	{
		char status[32] = "";

		early = o->max_sessions > 1 &&
			state_account_get_status(o->state, a.account_id, status, sizeof(status),
						 &err) == 0 && strcmp(status, "ok") != 0 &&
			strcmp(status, "finished") != 0;
	}
	if (early && start_workers(&a, &workers, (size_t)o->max_sessions, seed, true,
				   &n_workers) < 0) {
		tr_error_set(&err, TR_ERR_LOCAL, "out of memory");
		goto failed;
	}
	if (prepare(&a, src, dst, &err) < 0) {
		set_abort(&a, &err);
		goto failed;
	}
	pthread_mutex_lock(&a.lock);
	a.prepared = true;
	pthread_cond_broadcast(&a.changed);
	pthread_mutex_unlock(&a.lock);
	/* Otherwise one worker per folder with work, up to the session cap. */
	if (!early && start_workers(&a, &workers, a.n_work < (size_t)o->max_sessions ?
				   a.n_work : (size_t)o->max_sessions, seed, false,
				   &n_workers) < 0) {
		tr_error_set(&err, TR_ERR_LOCAL, "out of memory");
		goto failed;
	}
	/* Worker 1 goes on with the sessions we have. */
	workers[0].src = src;
	workers[0].dst = dst;
	src = dst = NULL;
	worker_main(&workers[0]);
	finish_workers(&a, workers, n_workers);
	workers = NULL;

	for (i = 0; i < res->n_folders; i++) {
		struct sync_counts *c = &res->folders[i].counts;

		res->total.copied += c->copied;
		res->total.present += c->present;
		res->total.failed += c->failed;
		res->total.flags_updated += c->flags_updated;
		res->total.vanished += c->vanished;
		res->total.deferred += c->deferred;
		res->total.bytes += c->bytes;
		if (res->folders[i].failed)
			res->folders_failed++;
	}
	if (a.abort) {
		err = a.abort_err;
		goto failed;
	}
	/* Folders that failed on writes the state refused once the lease was
	 * lost are no partial result: the account is another worker's now. */
	if (atomic_load(&watch.lost))
		goto failed;
	/* A folder never handed out (all workers stopped on limits) is not done. */
	if (a.next < a.n_work || a.n_returned > 0) {
		tr_error_set(&err, TR_ERR_WAIT, "the servers refused the sessions needed to finish");
		goto failed;
	}
	res->status = (res->folders_failed > 0 || res->total.failed > 0) ? ACCOUNT_PARTIAL
									   : ACCOUNT_OK;
	goto done;
failed:
	if (workers != NULL) {
		/* Early workers waiting for a plan that will not come. */
		set_abort(&a, &err);
		finish_workers(&a, workers, n_workers);
	}
	close_session(&a, true, &src);
	close_session(&a, false, &dst);
	res->status = err.kind == TR_ERR_PAUSED ? ACCOUNT_PAUSED : ACCOUNT_FAILED;
	res->err = err;
	/* whatever failed after that (a stopped session, a state write the
	 * backend refused), the lost lease is the reason */
	if (atomic_load(&watch.lost)) {
		res->status = ACCOUNT_FAILED;
		tr_error_set(&res->err, TR_ERR_STOPPED, "stopped: the hold on this account was "
			     "lost (its lease expired); another worker may take it over");
	}
done:
	res->seconds = now_s() - t0;
	res->refused[0] = atomic_load(&a.refused[0]);
	res->refused[1] = atomic_load(&a.refused[1]);
	if (a.account_id != 0 && lock != NULL &&
	    state_account_set_status(o->state, a.account_id, account_status_name(res->status),
				     res->status == ACCOUNT_FAILED || res->status == ACCOUNT_PAUSED ?
				     res->err.msg : NULL, &err) < 0)
		log_warn(o->label, "%s", err.msg);
	state_account_unlock(lock);
	folder_plan_free(&a.plan);
	folder_list_free(&a.src_l);
	folder_list_free(&a.dst_l);
	free(a.status);
	free(a.have_status);
	free(a.dst_listed);
	free(a.hz);
	free(a.order);
	free(a.returned);
	pthread_cond_destroy(&a.changed);
	pthread_mutex_destroy(&a.lock);
	return res->status == ACCOUNT_OK ? 0 : -1;
}

void account_result_free(struct account_result *res)
{
	size_t i;

	for (i = 0; i < res->n_folders; i++) {
		free(res->folders[i].src_name);
		free(res->folders[i].dst_name);
		free(res->folders[i].error);
		sync_failures_free(&res->folders[i].failures);
	}
	free(res->folders);
	memset(res, 0, sizeof(*res));
}
