/* worker: see include/worker.h */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "caps_pg.h"
#include "job.h"
#include "jobconf.h"
#include "log.h"
#include "net.h"
#include "queue.h"
#include "run.h"
#include "secret.h"
#include "state.h"
#include "tls.h"
#include "verify.h"
#include "worker.h"

/* What the accounts of one job share in this worker, made at the first
 * claim of the job and kept until the worker ends (a worker meets few
 * jobs; their limiters must outlive every account that used them). */
struct job_env {
	int64_t id;
	struct job_config cfg;
	bool cfg_set;
	struct tls_ctx *tls;
	char *admin_pw;
	char *src_admin_pw;
	struct run_env env;
	bool env_set;
	struct job_env *next;
};

/* Attempts of an account failing on a temporary error (timeouts, a
 * server's limits, the database away) before the failure is recorded. */
#define WORKER_TEMP_ATTEMPTS 3

struct worker;

struct slot {
	struct worker *w;
	pthread_t th;
	bool started;
	struct queue *q;
	pthread_mutex_t mu;             /* row, for the heartbeat */
	int64_t row;                    /* the account running here, 0: none */
	struct net_scope scope;         /* the running account's threads */
	atomic_bool lost;
	struct account_progress prog;
};

struct worker {
	const struct worker_opts *o;
	char id[160];
	int lease_s;
	struct state *state;
	struct caps_pg *caps;           /* NULL: the queue is not a fleet's */
	pthread_mutex_t mu;             /* jobs, st */
	struct job_env *jobs;
	struct worker_stats st;
	struct slot *slots;
	int n_slots;
	atomic_bool stop;               /* drained, or a fatal error */
	atomic_bool db_down;            /* the heartbeat cannot reach the database */
	atomic_uint db_trouble;         /* failed heartbeats so far */
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static bool stopping(const struct worker *w)
{
	return atomic_load(&w->stop) || net_cancelled();
}

/* Sleep ms, in slices, ending early when the worker stops. */
static void nap(const struct worker *w, int ms)
{
	while (ms > 0 && !stopping(w)) {
		int k = ms < 100 ? ms : 100;
		struct timespec ts = { 0, (long)k * 1000000L };

		nanosleep(&ts, NULL);
		ms -= k;
	}
}

/* ---- jobs ------------------------------------------------------------------ */

static void job_env_free(struct job_env *je)
{
	if (je->env_set)
		run_env_free(&je->env);
	if (je->cfg_set)
		jobconf_free(&je->cfg);
	tls_ctx_free(je->tls);
	secret_free(je->admin_pw);
	secret_free(je->src_admin_pw);
	free(je);
}

/* The job's settings as stored (job-file text, paths absolute), finished
 * as a run's. */
static int job_config_of(const char *text, int64_t id, struct job_config *cfg,
			 struct tr_error *err)
{
	struct job_file jf;
	struct jobconf_origin origin = { .from = JOBCONF_CALLER };
	char name[64];
	int r;

	snprintf(name, sizeof(name), "queued job %" PRId64, id);
	memset(&jf, 0, sizeof(jf));
	if (job_file_parse(name, text, strlen(text), &jf, err) < 0)
		return -1;
	origin.file = name;
	r = jobconf_apply(cfg, &jf, &origin, err);
	job_file_free(&jf);
	if (r < 0)
		return -1;
	/* the accounts come from the queue, not from a file of this host */
	if (cfg->accounts == NULL && jobconf_set(cfg, "accounts", "(queue)", NULL, err) < 0)
		return -1;
	return jobconf_finish(cfg, err);
}

static struct job_env *job_env_make(struct worker *w, struct queue *q, int64_t id,
				    struct tr_error *err)
{
	struct job_env *je = calloc(1, sizeof(*je));
	struct limiter_shared sh;
	char *text = NULL;

	if (je == NULL) {
		tr_error_set(err, TR_ERR_LOCAL, "out of memory");
		return NULL;
	}
	je->id = id;
	jobconf_init(&je->cfg, JOB_RUN);
	je->cfg_set = true;
	if (queue_job_config(q, id, &text, &je->admin_pw, &je->src_admin_pw, err) < 0)
		goto fail;
	if (job_config_of(text, id, &je->cfg, err) < 0)
		goto fail;
	if (je->cfg.dst_admin != NULL && je->admin_pw == NULL) {
		tr_error_set(err, TR_ERR_USAGE, "the job names a destination admin but the queue "
			     "holds no password for it");
		goto fail;
	}
	if (je->cfg.src_admin != NULL && je->src_admin_pw == NULL) {
		tr_error_set(err, TR_ERR_USAGE, "the job names a source admin but the queue "
			     "holds no password for it");
		goto fail;
	}
	if (tls_ctx_new(je->cfg.ca_file, je->cfg.insecure, &je->tls, err) < 0)
		goto fail;
	if (run_env_init(&je->env, &je->cfg, je->tls, w->state, je->admin_pw, err) < 0)
		goto fail;
	je->env.src_admin_password = je->src_admin_pw;
	je->env_set = true;
	/* the job's limiters (run_env_init's, shared by every slot here) also
	 * ask the fleet's caps, when there is a fleet */
	if (w->caps != NULL) {
		if (caps_pg_side(w->caps, id, "src", &sh, err) < 0)
			goto fail;
		limiter_set_shared(je->env.src_lim, &sh);
		if (caps_pg_side(w->caps, id, "dst", &sh, err) < 0)
			goto fail;
		limiter_set_shared(je->env.dst_lim, &sh);
	}
	free(text);
	log_info(NULL, "job %" PRId64 ": from %s:%d to %s:%d, caps per account %d/%d, per server "
		 "%d/%d (source/destination, held %s)", id, je->cfg.src.host,
		 je->cfg.src.port, je->cfg.dst.host, je->cfg.dst.port,
		 je->cfg.src_max_per_account, je->cfg.dst_max_per_account,
		 je->cfg.src_max_connections, je->cfg.dst_max_connections,
		 w->caps != NULL ? "with every worker" : "by this worker");
	return je;
fail:
	tr_error_prefix(err, "job %" PRId64, id);
	free(text);
	job_env_free(je);
	return NULL;
}

/* The job's environment, made on first use.  A job that cannot be set up
 * is not cached: its accounts fail with the reason, and a fixed job (or a
 * database back) works on the next claim. */
static struct job_env *job_env_get(struct worker *w, struct queue *q, int64_t id,
				   struct tr_error *err)
{
	struct job_env *je;

	pthread_mutex_lock(&w->mu);
	for (je = w->jobs; je != NULL; je = je->next)
		if (je->id == id)
			break;
	if (je == NULL) {
		je = job_env_make(w, q, id, err);
		if (je != NULL) {
			je->next = w->jobs;
			w->jobs = je;
		}
	}
	pthread_mutex_unlock(&w->mu);
	return je;
}

/* ---- accounts ---------------------------------------------------------------- */

static void counts_of(const struct account_result *res, struct queue_counts *n)
{
	memset(n, 0, sizeof(*n));
	n->copied = res->total.copied;
	n->present = res->total.present;
	n->failed = res->total.failed;
	n->bytes = res->total.bytes;
	n->folders_total = (uint32_t)res->n_folders;
	n->folders_done = (uint32_t)res->n_folders - res->folders_failed;
}

/* The first error the result holds, for the queue's row. */
static const char *error_of(const struct account_result *res)
{
	size_t i;

	if (res->status == ACCOUNT_OK)
		return NULL;
	if (res->err.msg[0] != '\0')
		return res->err.msg;
	for (i = 0; i < res->n_folders; i++)
		if (res->folders[i].failed && res->folders[i].error != NULL)
			return res->folders[i].error;
	return res->total.failed > 0 ? "some messages were refused by the destination" : NULL;
}

/* The kind of error_of's error (tr_error_kind_name): a folder's own, or
 * "message" for messages the destination refused. */
static const char *error_kind_of(const struct account_result *res)
{
	size_t i;

	if (res->status == ACCOUNT_OK)
		return NULL;
	if (res->err.msg[0] != '\0')
		return tr_error_kind_name(res->err.kind);
	for (i = 0; i < res->n_folders; i++)
		if (res->folders[i].failed && res->folders[i].error != NULL)
			return tr_error_kind_name(res->folders[i].error_kind);
	return tr_error_kind_name(TR_ERR_MESSAGE);
}

/* The limit refusals of the slot's account not written yet (taken: the
 * caller writes them, or they are lost with a write that failed). */
static void refused_take(struct slot *s, struct queue_counts *n)
{
	n->refused[0] = (uint32_t)atomic_exchange(&s->prog.refused[0], 0);
	n->refused[1] = (uint32_t)atomic_exchange(&s->prog.refused[1], 0);
}

/* The database may be restarting: an outcome or a give-back is tried
 * again for up to half a lease (after that the lease may have gone to
 * another worker, and the row's expiry does the rest). */
static bool again(const struct worker *w, const struct tr_error *err, double t0)
{
	if (err->kind != TR_ERR_TEMP || stopping(w) || now_s() - t0 > w->lease_s / 2.0)
		return false;
	nap(w, 1000);
	return true;
}

static int finish_row(struct slot *s, int64_t row, const char *status, const char *error,
		      const char *kind, struct queue_counts *n, double seconds,
		      const struct account_result *res, struct tr_error *err)
{
	double t0 = now_s();
	int r;

	refused_take(s, n);
	do {
		tr_error_clear(err);
		r = queue_finish(s->q, s->w->id, row, status, error, kind, n, seconds, res, err);
	} while (r < 0 && again(s->w, err, t0));
	return r;
}

static int verify_row(struct slot *s, int64_t row, const struct verify_item *it,
		      struct tr_error *err)
{
	double t0 = now_s();
	int r;

	do {
		tr_error_clear(err);
		r = queue_verify_finish(s->q, s->w->id, row, it, err);
	} while (r < 0 && again(s->w, err, t0));
	return r;
}

static void give_back(struct slot *s, int64_t row, int delay_s, const char *email,
		      const char *why)
{
	struct tr_error err;
	struct queue_counts n;
	double t0 = now_s();
	int r;

	/* the refusals of this attempt are kept (often why it is given back);
	 * the other counters as the heartbeat writes them */
	memset(&n, 0, sizeof(n));
	refused_take(s, &n);
	if (n.refused[0] > 0 || n.refused[1] > 0) {
		n.copied = atomic_load(&s->prog.copied);
		n.bytes = atomic_load(&s->prog.bytes);
		n.folders_done = (uint32_t)atomic_load(&s->prog.folders_done);
		n.folders_total = (uint32_t)atomic_load(&s->prog.folders_total);
		if (queue_progress(s->q, s->w->id, row, &n, &err) < 0)
			log_warn(email, "the limit refusals of this attempt are not counted: %s",
				 err.msg);
	}
	do {
		tr_error_clear(&err);
		r = queue_release(s->q, s->w->id, row, delay_s, &err);
	} while (r < 0 && again(s->w, &err, t0));
	if (r < 0)
		log_warn(email, "could not give the account back to the queue (%s): its lease "
			 "will expire and another worker will take it", err.msg);
	else
		log_info(email, "given back to the queue: %s", why);
	pthread_mutex_lock(&s->w->mu);
	s->w->st.released++;
	pthread_mutex_unlock(&s->w->mu);
}

/* A verify claim (a verify pass, or a final pass's last step): verify.h's
 * comparison of the account, kept as its last verify; its state stays
 * its last copy's unless the verify could not be done. */
static void verify_claim(struct slot *s, const struct queue_claim *c, struct job_env *je,
			 const struct run_account *acc)
{
	struct worker *w = s->w;
	struct verify_item *items = NULL;
	struct tr_error err;
	unsigned gen = atomic_load(&w->db_trouble);
	int r;

	log_info(c->email, "verifying (%s pass)", queue_pass_name(c->pass));
	net_scope_enter(&s->scope);
	/* one account: verify_run runs it on this thread, in this scope */
	(void)verify_run(&je->env, acc, 1, false, &items);
	net_scope_enter(NULL);

	pthread_mutex_lock(&s->mu);
	s->row = 0;
	pthread_mutex_unlock(&s->mu);

	if (items == NULL) {
		log_error(c->email, "verify: out of memory");
		give_back(s, c->row, 10, c->email, "out of memory");
	} else if (net_cancelled()) {
		give_back(s, c->row, 0, c->email, "this worker is stopping");
	} else if (atomic_load(&s->lost)) {
		log_warn(c->email, "stopped: this worker no longer holds the account (taken over, "
			 "its job cancelled, or the database out of reach too long)");
		pthread_mutex_lock(&w->mu);
		w->st.lost++;
		pthread_mutex_unlock(&w->mu);
		tr_error_clear(&err);
		(void)queue_release(s->q, w->id, c->row, 5, &err);
	} else if (items[0].err.kind != TR_ERR_NONE && atomic_load(&w->db_trouble) != gen) {
		give_back(s, c->row, 5, c->email, "cut short while the database was out of reach");
	} else if (items[0].err.kind != TR_ERR_NONE && c->attempts < WORKER_TEMP_ATTEMPTS &&
		   (items[0].err.kind == TR_ERR_TEMP || items[0].err.kind == TR_ERR_WAIT)) {
		give_back(s, c->row, 10 * c->attempts, c->email, items[0].err.msg);
	} else {
		r = verify_row(s, c->row, &items[0], &err);
		if (r < 0)
			log_warn(c->email, "could not record the verify (%s): its lease will expire "
				 "and another worker will verify it again", err.msg);
		else if (r == 0)
			log_warn(c->email, "the verify was not recorded: the account is no longer "
				 "this worker's");
		pthread_mutex_lock(&w->mu);
		w->st.accounts++;
		pthread_mutex_unlock(&w->mu);
	}
	verify_items_free(items, 1);
}

static void run_claim(struct slot *s, const struct queue_claim *c)
{
	struct worker *w = s->w;
	struct run_account acc;
	struct account_result res;
	struct queue_counts n;
	struct job_env *je;
	struct tr_error err;
	unsigned gen = atomic_load(&w->db_trouble);
	int r;

	tr_error_clear(&err);
	/* held from the claim on: the heartbeat renews only what slots hold */
	pthread_mutex_lock(&s->mu);
	memset(&s->scope, 0, sizeof(s->scope));
	atomic_store(&s->lost, false);
	atomic_store(&s->prog.copied, 0);
	atomic_store(&s->prog.bytes, 0);
	atomic_store(&s->prog.folders_done, 0);
	atomic_store(&s->prog.folders_total, 0);
	atomic_store(&s->prog.refused[0], 0);
	atomic_store(&s->prog.refused[1], 0);
	s->row = c->row;
	pthread_mutex_unlock(&s->mu);
	if (c->takeover) {
		log_warn(c->email, "taking the account over: the lease of its last worker expired "
			 "(attempt %d)", c->attempts);
		pthread_mutex_lock(&w->mu);
		w->st.takeovers++;
		pthread_mutex_unlock(&w->mu);
	}
	je = job_env_get(w, s->q, c->job_id, &err);
	if (je == NULL) {
		log_error(c->email, "%s", err.msg);
		memset(&n, 0, sizeof(n));
		if (err.kind == TR_ERR_TEMP) {
			give_back(s, c->row, 10, c->email, "the job's settings could not be read");
		} else if (!queue_pass_copies(c->pass)) {
			/* a verify that could not be done: the last copy's
			 * folders and failures stay */
			struct run_account acc0 = { .label = c->email };
			struct verify_item it;

			memset(&it, 0, sizeof(it));
			it.acc = &acc0;
			it.err = err;
			if (verify_row(s, c->row, &it, &err) < 0)
				log_warn(c->email, "could not record the outcome: %s", err.msg);
		} else if (finish_row(s, c->row, "failed", err.msg, tr_error_kind_name(err.kind), &n,
				      0, NULL, &err) < 0) {
			log_warn(c->email, "could not record the outcome: %s", err.msg);
		}
		pthread_mutex_lock(&s->mu);
		s->row = 0;
		pthread_mutex_unlock(&s->mu);
		return;
	}
	memset(&acc, 0, sizeof(acc));
	acc.label = c->email;
	acc.src_user = c->src_user != NULL ? c->src_user : c->email;
	acc.src_password = c->password;
	acc.dst_user = c->dst_user != NULL ? c->dst_user : c->email;
	acc.dst_password = c->dst_password;
	if (!queue_pass_copies(c->pass)) {
		verify_claim(s, c, je, &acc);
		return;
	}

	memset(&res, 0, sizeof(res));
	net_scope_enter(&s->scope);
	run_account(&je->env, &acc, w->o->log_dir, &s->prog, &res);
	net_scope_enter(NULL);

	pthread_mutex_lock(&s->mu);
	s->row = 0;
	pthread_mutex_unlock(&s->mu);

	counts_of(&res, &n);
	if (net_cancelled()) {
		give_back(s, c->row, 0, c->email, "this worker is stopping");
	} else if (atomic_load(&s->lost)) {
		log_warn(c->email, "stopped: this worker no longer holds the account (taken over, "
			 "its job cancelled, or the database out of reach too long)");
		pthread_mutex_lock(&w->mu);
		w->st.lost++;
		pthread_mutex_unlock(&w->mu);
		/* still ours only after an outage; then pending again */
		tr_error_clear(&err);
		(void)queue_release(s->q, w->id, c->row, 5, &err);
	} else if (res.status == ACCOUNT_FAILED && res.err.kind == TR_ERR_STOPPED) {
		/* the state's lease on the account was lost (account.c says so) */
		pthread_mutex_lock(&w->mu);
		w->st.lost++;
		pthread_mutex_unlock(&w->mu);
		give_back(s, c->row, 5, c->email, res.err.msg);
	} else if (res.status == ACCOUNT_PAUSED) {
		/* a day budget is spent: pending again, not before it is new */
		long long wait = res.err.until - (long long)time(NULL);

		give_back(s, c->row, wait < 1 ? 1 : wait > 2 * 86400 ? 2 * 86400 : (int)wait,
			  c->email, res.err.msg);
	} else if (res.status == ACCOUNT_FAILED && strcmp(res.err.code, "INUSE") == 0) {
		/* still held by another (a worker killed moments ago whose state
		 * lease has not run out yet): again once it has */
		give_back(s, c->row, w->lease_s, c->email, res.err.msg);
	} else if (res.status != ACCOUNT_OK && atomic_load(&w->db_trouble) != gen) {
		give_back(s, c->row, 5, c->email, "cut short while the database was out of reach");
	} else if (res.status == ACCOUNT_FAILED && c->attempts < WORKER_TEMP_ATTEMPTS &&
		   (res.err.kind == TR_ERR_TEMP || res.err.kind == TR_ERR_WAIT)) {
		/* a failure that may pass (the database restarting before the
		 * heartbeat saw it, a server's limit): again a little later, a
		 * few times, before it is recorded */
		give_back(s, c->row, 10 * c->attempts, c->email, res.err.msg);
	} else {
		r = finish_row(s, c->row, account_status_name(res.status), error_of(&res),
			       error_kind_of(&res), &n, res.seconds, &res, &err);
		if (r < 0)
			log_warn(c->email, "could not record the outcome (%s): its lease will expire "
				 "and another worker will run it again (nothing is copied twice)",
				 err.msg);
		else if (r == 0)
			log_warn(c->email, "the outcome was not recorded: the account is no longer "
				 "this worker's");
		pthread_mutex_lock(&w->mu);
		w->st.accounts++;
		pthread_mutex_unlock(&w->mu);
	}
	account_result_free(&res);
}

static void *slot_main(void *arg)
{
	struct slot *s = arg;
	struct worker *w = s->w;
	struct tr_error err;
	int backoff_s = 1;

	while (!stopping(w)) {
		struct queue_claim c;
		int r;

		tr_error_clear(&err);
		if (atomic_load(&w->db_down)) {
			nap(w, 1000);
			continue;
		}
		if (s->q == NULL && queue_open(w->o->dsn, w->o->keys, &s->q, &err) < 0) {
			log_warn(NULL, "worker: %s (again in %d s)", err.msg, backoff_s);
			nap(w, backoff_s * 1000);
			backoff_s = backoff_s < 30 ? backoff_s * 2 : 30;
			continue;
		}
		memset(&c, 0, sizeof(c));
		r = queue_claim(s->q, w->id, w->lease_s, &c, &err);
		if (r < 0) {
			log_warn(NULL, "worker: claiming an account: %s (again in %d s)", err.msg,
				 backoff_s);
			nap(w, backoff_s * 1000);
			backoff_s = backoff_s < 30 ? backoff_s * 2 : 30;
			continue;
		}
		backoff_s = 1;
		if (r == 0) {
			int64_t left = 1;

			if (w->o->drain && queue_outstanding(s->q, &left, &err) == 0 && left == 0) {
				atomic_store(&w->stop, true);
				break;
			}
			nap(w, 1000);
			continue;
		}
		run_claim(s, &c);
		queue_claim_free(&c);
	}
	return NULL;
}

/* ---- heartbeat ------------------------------------------------------------- */

struct heartbeat {
	struct worker *w;
	pthread_t th;
	atomic_bool end;
};

static void stop_all(struct worker *w, const char *why)
{
	int i;

	for (i = 0; i < w->n_slots; i++) {
		struct slot *s = &w->slots[i];

		pthread_mutex_lock(&s->mu);
		if (s->row != 0 && !atomic_load(&s->lost)) {
			atomic_store(&s->lost, true);
			net_scope_cancel(&s->scope);
			log_error(NULL, "worker: stopping the account of row %" PRId64 ": %s", s->row,
				  why);
		}
		pthread_mutex_unlock(&s->mu);
	}
}

static int beat(struct worker *w, struct queue *q, struct tr_error *err)
{
	int64_t *held = calloc((size_t)w->n_slots + 1, sizeof(*held));
	int64_t *lost = NULL;
	size_t n = 0, n_lost = 0, i;
	int k;

	for (k = 0; held != NULL && k < w->n_slots; k++) {
		pthread_mutex_lock(&w->slots[k].mu);
		if (w->slots[k].row != 0)
			held[n++] = w->slots[k].row;
		pthread_mutex_unlock(&w->slots[k].mu);
	}
	if (held == NULL) {
		tr_error_set(err, TR_ERR_LOCAL, "out of memory");
		return -1;
	}
	if (queue_renew(q, w->id, w->lease_s, held, n, &lost, &n_lost, err) < 0 ||
	    (w->caps != NULL && caps_pg_renew(w->caps, err) < 0)) {
		free(held);
		free(lost);
		return -1;
	}
	free(held);
	for (i = 0; i < n_lost; i++)
		for (k = 0; k < w->n_slots; k++) {
			struct slot *s = &w->slots[k];

			pthread_mutex_lock(&s->mu);
			if (s->row == lost[i] && !atomic_load(&s->lost)) {
				atomic_store(&s->lost, true);
				net_scope_cancel(&s->scope);
				log_warn(NULL, "worker: the account of row %" PRId64 " is no longer "
					 "this worker's (taken over or cancelled): stopping it",
					 lost[i]);
			}
			pthread_mutex_unlock(&s->mu);
		}
	free(lost);
	/* live counters for `queue status` (best effort: the outcome is exact) */
	for (k = 0; k < w->n_slots; k++) {
		struct slot *s = &w->slots[k];
		struct queue_counts c;
		struct tr_error e2;
		int64_t row;

		pthread_mutex_lock(&s->mu);
		row = s->row;
		memset(&c, 0, sizeof(c));
		c.copied = atomic_load(&s->prog.copied);
		c.bytes = atomic_load(&s->prog.bytes);
		c.folders_done = (uint32_t)atomic_load(&s->prog.folders_done);
		c.folders_total = (uint32_t)atomic_load(&s->prog.folders_total);
		/* taken while the row is the slot's: a refusal counted after the
		 * run ended goes with its finish (finish_row takes the rest) */
		if (row != 0)
			refused_take(s, &c);
		pthread_mutex_unlock(&s->mu);
		/* a verify's progress writes only its refusals (the backend
		 * keeps the last copy's counters) */
		if (row != 0 && (queue_progress(q, w->id, row, &c, &e2) < 0)) {
			/* not written: counted with the next write */
			atomic_fetch_add(&s->prog.refused[0], c.refused[0]);
			atomic_fetch_add(&s->prog.refused[1], c.refused[1]);
		}
	}
	return 0;
}

static void *heartbeat_main(void *arg)
{
	struct heartbeat *hb = arg;
	struct worker *w = hb->w;
	struct queue *q = NULL;
	struct tr_error err;
	double last_ok = now_s();
	int every_ms = w->lease_s * 1000 / 6;
	unsigned beats = 0;
	bool warned = false;

	while (!atomic_load(&hb->end)) {
		int r = -1;

		tr_error_clear(&err);
		if (q != NULL || queue_open(w->o->dsn, NULL, &q, &err) == 0)
			r = beat(w, q, &err);
		/* scheduled passes need no daemon of their own: any worker's
		 * heartbeat starts those due, about once a lease */
		if (r == 0 && beats++ % 6 == 0) {
			struct tr_error e2;
			int started;

			if (queue_schedule(q, &started, &e2) < 0)
				log_warn(NULL, "worker: scheduled passes: %s", e2.msg);
		}
		if (r == 0) {
			if (warned)
				log_info(NULL, "worker: the database answers again (%s)",
					 queue_where(q));
			warned = false;
			last_ok = now_s();
			atomic_store(&w->db_down, false);
		} else {
			atomic_fetch_add(&w->db_trouble, 1);
			atomic_store(&w->db_down, true);
			if (!warned)
				log_warn(NULL, "worker: cannot renew the leases: %s; no new account "
					 "is taken until the database answers", err.msg);
			warned = true;
			if (now_s() - last_ok >= w->lease_s / 2.0)
				stop_all(w, "its lease could not be renewed in time");
		}
		for (int ms = 0; ms < every_ms && !atomic_load(&hb->end); ms += 100) {
			struct timespec ts = { 0, 100 * 1000000L };

			nanosleep(&ts, NULL);
		}
	}
	queue_close(q);
	return NULL;
}

/* ---- the worker ---------------------------------------------------------------- */

int worker_run(const struct worker_opts *o, struct worker_stats *st, struct tr_error *err)
{
	struct worker w;
	struct heartbeat hb;
	struct queue *q = NULL;
	char host[128];
	unsigned char rnd[4];
	int i, rc = -1;
	bool hb_started = false;

	memset(&w, 0, sizeof(w));
	memset(&hb, 0, sizeof(hb));
	memset(st, 0, sizeof(*st));
	w.o = o;
	w.lease_s = o->lease_s > 0 ? o->lease_s : 30;
	pthread_mutex_init(&w.mu, NULL);
	if (gethostname(host, sizeof(host)) < 0)
		snprintf(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = '\0';
	{
		FILE *f = fopen("/dev/urandom", "rb");

		if (f == NULL || fread(rnd, 1, sizeof(rnd), f) != sizeof(rnd))
			memset(rnd, 0, sizeof(rnd));
		if (f != NULL)
			fclose(f);
	}
	snprintf(w.id, sizeof(w.id), "%s:%d:%02x%02x%02x%02x", host, (int)getpid(), rnd[0],
		 rnd[1], rnd[2], rnd[3]);

	if (queue_open(o->dsn, o->keys, &q, err) < 0)
		goto out;
	if (queue_worker_register(q, w.id, host, (int)getpid(), o->egress ? o->egress : "",
				  o->parallel, err) < 0)
		goto out;
	/* the state's account leases last as long as the queue's (before any
	 * thread exists: setenv is not thread-safe) */
	{
		char lease[16];

		snprintf(lease, sizeof(lease), "%d", w.lease_s);
		setenv("TRASLOCO_LEASE_SECONDS", lease, 1);
	}
	/* the state is where the queue is: the same database, or for a queue
	 * in a directory the state of that directory (state_sqlite) */
	if (state_open(o->dsn, &w.state, err) < 0)
		goto out;
	/* a queue of one host holds its jobs' caps in this process (the
	 * job's limiters), not across a fleet */
	if (strcmp(queue_backend_name(q), "postgresql") == 0 &&
	    caps_pg_open(o->dsn, w.id, o->egress ? o->egress : "", w.lease_s, &w.caps, err) < 0)
		goto out;
	w.n_slots = o->parallel > 0 ? o->parallel : 1;
	w.slots = calloc((size_t)w.n_slots, sizeof(*w.slots));
	if (w.slots == NULL) {
		tr_error_set(err, TR_ERR_LOCAL, "out of memory");
		goto out;
	}
	for (i = 0; i < w.n_slots; i++) {
		w.slots[i].w = &w;
		pthread_mutex_init(&w.slots[i].mu, NULL);
	}
	log_info(NULL, "worker %s: %d account(s) at once, leases of %d s, %s%s%s", w.id,
		 w.n_slots, w.lease_s, queue_where(q), o->egress && o->egress[0] ? ", egress " : "",
		 o->egress && o->egress[0] ? o->egress : "");
	hb.w = &w;
	if (pthread_create(&hb.th, NULL, heartbeat_main, &hb) != 0) {
		tr_error_set(err, TR_ERR_LOCAL, "cannot start the heartbeat thread");
		goto out;
	}
	hb_started = true;
	for (i = 0; i < w.n_slots; i++) {
		if (pthread_create(&w.slots[i].th, NULL, slot_main, &w.slots[i]) != 0) {
			log_error(NULL, "worker: cannot start slot %d: %s", i + 1, strerror(errno));
			break;
		}
		w.slots[i].started = true;
	}
	for (i = 0; i < w.n_slots; i++)
		if (w.slots[i].started)
			pthread_join(w.slots[i].th, NULL);
	rc = 0;
out:
	if (hb_started) {
		atomic_store(&hb.end, true);
		pthread_join(hb.th, NULL);
	}
	if (q != NULL) {
		struct tr_error e2;

		(void)queue_worker_stopped(q, w.id, &e2);
	}
	for (i = 0; w.slots != NULL && i < w.n_slots; i++) {
		queue_close(w.slots[i].q);
		pthread_mutex_destroy(&w.slots[i].mu);
	}
	free(w.slots);
	while (w.jobs != NULL) {
		struct job_env *je = w.jobs;

		w.jobs = je->next;
		job_env_free(je);
	}
	caps_pg_close(w.caps);
	state_close(w.state);
	queue_close(q);
	pthread_mutex_destroy(&w.mu);
	*st = w.st;
	return rc;
}
