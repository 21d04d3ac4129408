/* run: see include/run.h */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "net.h"
#include "privdir.h"
#include "provision.h"
#include "report.h"
#include "run.h"
#include "text.h"
#include "throttle.h"

struct job_run {
	const struct run_env *env;
	const struct run_account *acc;
	struct run_result *res;
	const char *log_dir;            /* env->log_dir once checked, or NULL */
	struct account_progress prog;   /* summed over all accounts */
	atomic_uint_fast32_t running, done, failed;
	size_t n;
};


/* The driver of a side: IMAP unless the caller chose another. */
static const struct store_driver *driver_of(const struct store_driver *d)
{
	return d != NULL ? d : store_driver_find("imap");
}
static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* How long what one account learnt holds for the others: long enough for
 * a batch's accounts, which then fail within seconds; short enough that a
 * worker (whose env lives as long as the job) asks the server again when
 * the job is retried after the server was changed. */
#define SHARED_TTL_S 60

struct run_shared {
	pthread_mutex_t lock;
	bool tls_mode_wrong;
	double learnt;                  /* monotonic seconds */
	struct tr_error tls_mode_err;
};

/* The error every account of env would meet, if one met it: 1 and *err. */
static int shared_failure(const struct run_env *env, struct tr_error *err)
{
	int r = 0;

	if (env->shared == NULL)
		return 0;
	pthread_mutex_lock(&env->shared->lock);
	if (env->shared->tls_mode_wrong && now_s() - env->shared->learnt < SHARED_TTL_S) {
		*err = env->shared->tls_mode_err;
		r = 1;
	}
	pthread_mutex_unlock(&env->shared->lock);
	return r;
}

static void shared_learn(const struct run_env *env, const struct tr_error *err)
{
	if (env->shared == NULL || strcmp(err->code, STORE_CODE_TLS_MODE) != 0)
		return;
	pthread_mutex_lock(&env->shared->lock);
	env->shared->tls_mode_wrong = true;
	env->shared->learnt = now_s();
	env->shared->tls_mode_err = *err;
	pthread_mutex_unlock(&env->shared->lock);
}

/* "mario.rossi@azienda.it" -> a file name that cannot escape log_dir. */
static void log_file_name(const char *label, char *buf, size_t len)
{
	size_t i, n = 0;

	for (i = 0; label[i] != '\0' && n + 5 < len; i++) {
		unsigned char c = (unsigned char)label[i];

		buf[n++] = (isalnum(c) || c == '@' || c == '.' || c == '-' || c == '_' || c == '+') &&
			   !(i == 0 && c == '.') ? (char)c : '_';
	}
	snprintf(buf + n, len - n, ".log");
}

static int account_secrets(const struct run_env *env, const struct run_account *acc,
			   struct text_secrets *ts)
{
	text_secrets_init(ts);
	if (text_secrets_add(ts, acc->src_password) < 0 ||
	    text_secrets_add(ts, acc->dst_password) < 0 ||
	    text_secrets_add(ts, env->dst_admin_password) < 0 ||
	    text_secrets_add(ts, env->src_admin_password) < 0) {
		text_secrets_wipe(ts);
		return -1;
	}
	return 0;
}

void run_redact(const struct run_env *env, const struct run_account *acc, char *text,
		size_t size)
{
	struct text_secrets ts;

	if (account_secrets(env, acc, &ts) < 0) {
		text_clean_str(text, size, "(error text withheld: out of memory)", NULL);
		return;
	}
	text_clean_inplace(text, size, &ts);
	text_secrets_wipe(&ts);
}

/* *text (owned, may be NULL) cleaned of ts's passwords; emptied when out
 * of memory. */
static void redact_dup(char **text, const struct text_secrets *ts)
{
	char *c;

	if (*text == NULL)
		return;
	c = text_clean_dup(*text, ts);
	if (c == NULL) {
		(*text)[0] = '\0';
		return;
	}
	free(*text);
	*text = c;
}

/* run_redact for everything an account's result says: its error, its
 * folders' errors and the replies to the messages not copied. */
static void redact_result(const struct run_env *env, const struct run_account *acc,
			  struct account_result *res)
{
	struct text_secrets ts;
	size_t i, k;

	if (account_secrets(env, acc, &ts) < 0) {
		text_clean_str(res->err.msg, sizeof(res->err.msg),
			       "(error text withheld: out of memory)", NULL);
		for (i = 0; i < res->n_folders; i++) {
			struct sync_failures *f = &res->folders[i].failures;

			if (res->folders[i].error != NULL)
				res->folders[i].error[0] = '\0';
			for (k = 0; k < f->n; k++)
				f->v[k].reply[0] = '\0';
		}
		return;
	}
	text_clean_inplace(res->err.msg, sizeof(res->err.msg), &ts);
	for (i = 0; i < res->n_folders; i++) {
		struct sync_failures *f = &res->folders[i].failures;

		redact_dup(&res->folders[i].error, &ts);
		for (k = 0; k < f->n; k++)
			redact_dup(&f->v[k].reply, &ts);
	}
	text_secrets_wipe(&ts);
}

static enum tls_mode tls_mode_of(enum jobconf_tls t)
{
	switch (t) {
	case JOBCONF_TLS_IMPLICIT: return TLS_MODE_IMPLICIT;
	case JOBCONF_TLS_STARTTLS: return TLS_MODE_STARTTLS;
	case JOBCONF_TLS_NONE: break;
	}
	return TLS_MODE_NONE;
}

int run_env_init(struct run_env *env, const struct job_config *cfg, struct tls_ctx *tls,
		 struct state *state, const char *admin_pw, struct tr_error *err)
{
	memset(env, 0, sizeof(*env));
	env->cfg = cfg;
	env->src_ep.label = "source";
	env->src_ep.host = cfg->src.host;
	env->src_ep.port = cfg->src.port;
	env->src_ep.tls = tls_mode_of(cfg->src.tls);
	env->src_ep.tls_name = cfg->src.tls_name;
	env->src_ep.tls_ctx = tls;
	env->src_ep.timeout_s = cfg->timeout_s;
	env->dst_ep = env->src_ep;
	env->dst_ep.label = "destination";
	env->dst_ep.host = cfg->dst.host;
	env->dst_ep.port = cfg->dst.port;
	env->dst_ep.tls = tls_mode_of(cfg->dst.tls);
	env->dst_ep.tls_name = cfg->dst.tls_name;
	env->state = state;
	env->src_lim = limiter_new("the source", cfg->src_max_per_account,
				   cfg->src_max_connections);
	env->dst_lim = limiter_new("the destination", cfg->dst_max_per_account,
				   cfg->dst_max_connections);
	env->shared = calloc(1, sizeof(*env->shared));
	if (env->src_lim == NULL || env->dst_lim == NULL || env->shared == NULL) {
		tr_error_set(err, TR_ERR_LOCAL, "out of memory");
		return -1;
	}
	pthread_mutex_init(&env->shared->lock, NULL);
	env->map.keep_names = cfg->keep_names;
	env->map.skip_views = cfg->skip_virtual && !cfg->copy_virtual;
	env->map.rules = cfg->maps;
	env->map.n_rules = cfg->n_maps;
	env->map.filter.include = (const char **)cfg->folders;
	env->map.filter.n_include = cfg->n_folders;
	env->map.filter.exclude = (const char **)cfg->excludes;
	env->map.filter.n_exclude = cfg->n_excludes;
	env->limits.batch_bytes = cfg->batch_bytes;
	env->limits.batch_count = cfg->batch_count;
	{
		struct throttle_limits sl = { cfg->src_bytes_per_second, cfg->src_messages_per_second,
					      cfg->src_bytes_per_day };
		struct throttle_limits dl = { cfg->dst_bytes_per_second, cfg->dst_messages_per_second,
					      cfg->dst_bytes_per_day };
		char key[300];
		bool oom1, oom2;

		snprintf(key, sizeof(key), "src %s:%d", cfg->src.host != NULL ? cfg->src.host : "",
			 cfg->src.port);
		env->src_throttle = throttle_new(key, "the source", &sl, &oom1);
		snprintf(key, sizeof(key), "dst %s:%d", cfg->dst.host != NULL ? cfg->dst.host : "",
			 cfg->dst.port);
		env->dst_throttle = throttle_new(key, "the destination", &dl, &oom2);
		if (oom1 || oom2) {
			tr_error_set(err, TR_ERR_LOCAL, "out of memory");
			return -1;
		}
		throttle_set_state(env->src_throttle, state);
		throttle_set_state(env->dst_throttle, state);
		env->src_ep.throttle = env->src_throttle;
		env->dst_ep.throttle = env->dst_throttle;
		env->limits.src_throttle = env->src_throttle;
		env->limits.dst_throttle = env->dst_throttle;
	}
	env->dst_admin = cfg->dst_admin;
	env->dst_admin_password = admin_pw;
	env->dst_admin_separator = cfg->dst_admin_separator;
	env->src_admin = cfg->src_admin;
	env->src_admin_separator = cfg->src_admin_separator;
	env->max_sessions = cfg->src_max_per_account < cfg->dst_max_per_account ?
			    cfg->src_max_per_account : cfg->dst_max_per_account;
	env->parallel_accounts = cfg->kind == JOB_MIGRATE ? 1 : cfg->parallel_accounts;
	for (int side = 0; side < 2; side++) {
		const char *cmd = side == 0 ? cfg->src_token_cmd : cfg->dst_token_cmd;
		const struct jobconf_oauth *o = side == 0 ? &cfg->src_oauth : &cfg->dst_oauth;
		int auth = side == 0 ? cfg->src_auth : cfg->dst_auth;
		struct oauth_conf *oc = &env->oauth_conf[side];

		if (auth == JOBCONF_AUTH_PASSWORD || (cmd == NULL && o->provider == NULL))
			continue;
		oc->side = side == 0 ? "source" : "destination";
		oc->cmd = cmd;
		oc->timeout_s = cfg->timeout_s;
		if (o->provider != NULL)
			oc->provider = strcmp(o->provider, "google") == 0 ? OAUTH_PROVIDER_GOOGLE :
									    OAUTH_PROVIDER_MS365;
		oc->tenant = o->tenant;
		oc->client_id = o->client_id;
		oc->secret_file = o->secret_file;
		oc->cert_file = o->cert_file;
		oc->key_file = o->key_file;
		oc->token_url = o->token_url;
		oc->ca_file = cfg->insecure ? NULL : cfg->ca_file;
		env->oauth[side] = oauth_pool_new(&env->oauth_conf[side]);
		if (env->oauth[side] == NULL) {
			tr_error_set(err, TR_ERR_LOCAL, "out of memory");
			return -1;
		}
	}
	return 0;
}

void run_env_free(struct run_env *env)
{
	limiter_free(env->src_lim);
	limiter_free(env->dst_lim);
	throttle_free(env->src_throttle);
	throttle_free(env->dst_throttle);
	env->src_throttle = env->dst_throttle = NULL;
	env->src_lim = env->dst_lim = NULL;
	oauth_pool_free(env->oauth[0]);
	oauth_pool_free(env->oauth[1]);
	env->oauth[0] = env->oauth[1] = NULL;
	if (env->shared != NULL) {
		pthread_mutex_destroy(&env->shared->lock);
		free(env->shared);
		env->shared = NULL;
	}
}

int run_set_status(const struct run_env *env, const struct run_account *acc, const char *status,
		   struct tr_error *err)
{
	struct account_opts ao;
	char key[1024];
	int64_t id;

	if (env->state == NULL) {
		tr_error_set(err, TR_ERR_LOCAL, "%s: no state to mark the account %s", acc->label,
			     status);
		return -1;
	}
	memset(&ao, 0, sizeof(ao));
	ao.src_ep = &env->src_ep;
	ao.dst_ep = &env->dst_ep;
	run_creds(env, acc, true, &ao.src_cr);
	run_creds(env, acc, false, &ao.dst_cr);
	account_state_key(&ao, key, sizeof(key));
	if (state_account(env->state, key, &id, err) < 0 ||
	    state_account_set_status(env->state, id, status, NULL, err) < 0)
		return -1;
	return 0;
}

/* The account's own day budgets (cfg's *-max-account-bytes-per-day), in
 * lim: kept in the state under the server and the account's login. */
static int account_throttles(const struct run_env *env, const struct run_account *acc,
			     struct sync_limits *lim, struct tr_error *err)
{
	const struct job_config *cfg = env->cfg;
	char key[1200];
	bool oom = false;

	lim->src_account_throttle = lim->dst_account_throttle = NULL;
	if (cfg == NULL)
		return 0;
	if (cfg->src_account_bytes_per_day > 0) {
		struct throttle_limits l = { 0, 0, cfg->src_account_bytes_per_day };

		snprintf(key, sizeof(key), "src %s:%d %s", env->src_ep.host, env->src_ep.port,
			 acc->src_user);
		lim->src_account_throttle = throttle_new(key, "this account on the source", &l,
							 &oom);
		throttle_set_state(lim->src_account_throttle, env->state);
	}
	if (!oom && cfg->dst_account_bytes_per_day > 0) {
		struct throttle_limits l = { 0, 0, cfg->dst_account_bytes_per_day };

		snprintf(key, sizeof(key), "dst %s:%d %s", env->dst_ep.host, env->dst_ep.port,
			 acc->dst_user);
		lim->dst_account_throttle = throttle_new(key, "this account on the destination",
							 &l, &oom);
		throttle_set_state(lim->dst_account_throttle, env->state);
	}
	if (oom) {
		throttle_free(lim->src_account_throttle);
		lim->src_account_throttle = NULL;
		tr_error_set(err, TR_ERR_LOCAL, "out of memory");
		return -1;
	}
	return 0;
}

void run_account(const struct run_env *env, const struct run_account *acc, const char *log_dir,
		 struct account_progress *prog, struct account_result *res)
{
	struct account_opts ao;
	struct sync_limits lim;
	bool attached = false;

	if (log_dir != NULL) {
		char name[300], path[4096];

		log_file_name(acc->label, name, sizeof(name));
		snprintf(path, sizeof(path), "%s/%s", log_dir, name);
		if (log_attach(acc->label, path) == 0)
			attached = true;
		else
			log_warn(acc->label, "cannot write the account's log %s: %s", path,
				 strerror(errno));
	}
	memset(&ao, 0, sizeof(ao));
	ao.label = acc->label;
	ao.src_drv = driver_of(env->src_drv);
	ao.dst_drv = driver_of(env->dst_drv);
	ao.src_arg = env->src_arg;
	ao.dst_arg = env->dst_arg;
	ao.src_ep = &env->src_ep;
	ao.dst_ep = &env->dst_ep;
	run_creds(env, acc, true, &ao.src_cr);
	run_creds(env, acc, false, &ao.dst_cr);
	ao.map = &env->map;
	ao.state = env->state;
	ao.src_lim = env->src_lim;
	ao.dst_lim = env->dst_lim;
	ao.cfg = env->cfg;
	ao.max_sessions = env->max_sessions;
	ao.progress = prog;
	lim = env->limits;
	if (account_throttles(env, acc, &lim, &res->err) < 0) {
		memset(res, 0, sizeof(*res));
		res->status = ACCOUNT_FAILED;
		tr_error_set(&res->err, TR_ERR_LOCAL, "out of memory");
		goto done;
	}
	ao.limits = &lim;

	log_info(acc->label, "migrating from %s:%d to %s:%d", env->src_ep.host, env->src_ep.port,
		 env->dst_ep.host, env->dst_ep.port);
	memset(res, 0, sizeof(*res));
	if (shared_failure(env, &res->err)) {
		res->status = ACCOUNT_FAILED;
		redact_result(env, acc, res);
	} else if (env->cfg != NULL && provision_wanted(env->cfg) &&
		   run_provision(env, acc, &res->err) < 0) {
		res->status = ACCOUNT_FAILED;
	} else {
		account_run(&ao, res);
		redact_result(env, acc, res);
		if (res->status == ACCOUNT_FAILED)
			shared_learn(env, &res->err);
	}
	if (res->status == ACCOUNT_FAILED)
		log_error(acc->label, "failed: %s", res->err.msg);
	else if (res->status == ACCOUNT_PAUSED)
		log_warn(acc->label, "%s (%u copied so far this run)", res->err.msg,
			 res->total.copied);
	else
		log_info(acc->label, "%s: %u copied, %u already present, %u failed in %.1f s",
			 account_status_name(res->status), res->total.copied,
			 res->total.present, res->total.failed, res->seconds);
done:
	throttle_free(lim.src_account_throttle);
	throttle_free(lim.dst_account_throttle);
	/* the account's tokens are of no more use */
	oauth_pool_drop(env->oauth[0], acc->label);
	oauth_pool_drop(env->oauth[1], acc->label);
	if (attached)
		log_detach(acc->label);
}

static void run_one(size_t i, void *ctx)
{
	struct job_run *jr = ctx;
	struct run_item *item = &jr->res->v[i];

	item->started = true;
	atomic_fetch_add(&jr->running, 1);
	run_account(jr->env, &jr->acc[i], jr->log_dir, &jr->prog, &item->res);
	atomic_fetch_sub(&jr->running, 1);
	atomic_fetch_add(&jr->done, 1);
	if (item->res.status != ACCOUNT_OK)
		atomic_fetch_add(&jr->failed, 1);
}

/* ---- progress ------------------------------------------------------------- */

struct progress {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stop;
	struct job_run *jr;
};

/* "ETA 1h02m", "ETA 3m07s" into buf. */
static void eta_text(double s, char *buf, size_t len)
{
	long left = (long)(s + 0.5);

	if (left >= 3600)
		snprintf(buf, len, "ETA %ldh%02ldm", left / 3600, left % 3600 / 60);
	else
		snprintf(buf, len, "ETA %ldm%02lds", left / 60, left % 60);
}

/* One account's horizon (account_progress): "messages 451/2300, 193.3 MB
 * of ~1.2 GB" into buf, and ", ETA 0m14s" into eta when it can tell (else
 * "").  The bytes of the folders not planned yet are estimated at the
 * planned ones' average ("~" until every folder is planned); the ETA is
 * the longer of what the messages and the bytes left take at this run's
 * pace so far. */
static void horizon(struct account_progress *p, double elapsed, char *buf, size_t len,
		    char *eta, size_t eta_len)
{
	uint64_t total = atomic_load(&p->msgs_total), done = atomic_load(&p->msgs_done);
	uint64_t known = atomic_load(&p->msgs_known), unknown = atomic_load(&p->msgs_unknown);
	uint64_t bknown = atomic_load(&p->bytes_known), bytes = atomic_load(&p->bytes);
	uint64_t btotal = bknown;
	bool btotal_ok = known > 0 || unknown == 0;
	double left = -1;
	char b1[32], b2[32];

	if (done > total)
		total = done;
	if (known > 0 && unknown > 0)
		btotal += (uint64_t)((double)unknown * (double)bknown / (double)known);
	if (bytes > btotal)
		btotal = bytes;
	if (btotal_ok)
		snprintf(buf, len, "messages %" PRIu64 "/%" PRIu64 ", %s of %s%s", done, total,
			 report_bytes(bytes, b1, sizeof(b1)), unknown > 0 ? "~" : "",
			 report_bytes(btotal, b2, sizeof(b2)));
	else
		snprintf(buf, len, "messages %" PRIu64 "/%" PRIu64 ", %s", done, total,
			 report_bytes(bytes, b1, sizeof(b1)));
	if (done > 0 && done < total)
		left = elapsed * (double)(total - done) / (double)done;
	if (btotal_ok && bytes > 0 && bytes < btotal) {
		double bl = elapsed * (double)(btotal - bytes) / (double)bytes;

		if (bl > left)
			left = bl;
	}
	eta[0] = '\0';
	if (left >= 0) {
		char t[32];

		eta_text(left, t, sizeof(t));
		snprintf(eta, eta_len, ", %s", t);
	}
}

static void draw(struct job_run *jr, double elapsed, bool tty)
{
	char b1[32], b2[32], eta[32] = "";
	uint64_t copied = atomic_load(&jr->prog.copied), bytes = atomic_load(&jr->prog.bytes);
	unsigned done = (unsigned)atomic_load(&jr->done);
	unsigned running = (unsigned)atomic_load(&jr->running);
	unsigned failed = (unsigned)atomic_load(&jr->failed);
	double rate = bytes / (elapsed > 0.1 ? elapsed : 0.1);

	/* ETA from the accounts finished so far: crude, but honest about what
	 * it knows (account sizes are learnt only when they start). */
	if (done > 0 && done < jr->n) {
		long left = (long)(elapsed / done * (double)(jr->n - done));

		snprintf(eta, sizeof(eta), ", ETA %ldm%02lds", left / 60, left % 60);
	}
	if (jr->n == 1) {
		const char *label = jr->acc[0].label;
		char h[160], left[48];

		if (atomic_load(&jr->prog.folders_total) == 0) {
			/* nothing to count before the folders are planned */
			if (tty)
				log_progress("%s: logging in, planning the folders", label);
			return;
		}
		horizon(&jr->prog, elapsed, h, sizeof(h), left, sizeof(left));
		if (tty)
			log_progress("%s: folders %u/%u, %s (%s/s)%s", label,
				     (unsigned)atomic_load(&jr->prog.folders_done),
				     (unsigned)atomic_load(&jr->prog.folders_total), h,
				     report_bytes((uint64_t)rate, b2, sizeof(b2)), left);
		else
			log_info(label, "progress: folders %u/%u, %s%s",
				 (unsigned)atomic_load(&jr->prog.folders_done),
				 (unsigned)atomic_load(&jr->prog.folders_total), h, left);
		return;
	}
	if (tty)
		log_progress("accounts %u/%zu done (%u running, %u not ok), %" PRIu64 " messages, %s, "
			     "%s/s%s", done, jr->n, running, failed, copied,
			     report_bytes(bytes, b1, sizeof(b1)), report_bytes((uint64_t)rate, b2, sizeof(b2)),
			     eta);
	else
		log_info(NULL, "progress: accounts %u/%zu done (%u running, %u not ok), %" PRIu64
			 " messages, %s, %s/s%s", done, jr->n, running, failed, copied,
			 report_bytes(bytes, b1, sizeof(b1)), report_bytes((uint64_t)rate, b2, sizeof(b2)),
			 eta);
}

static void *progress_main(void *arg)
{
	struct progress *p = arg;
	double start = now_s(), last_log = start;

	pthread_mutex_lock(&p->lock);
	while (!p->stop) {
		struct timespec until;
		double t = now_s();

		if (p->jr->env->progress_tty) {
			draw(p->jr, t - start, true);
		} else if (p->jr->env->progress_log && t - last_log >= 30) {
			last_log = t;
			draw(p->jr, t - start, false);
		}
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += 500000000;
		if (until.tv_nsec >= 1000000000) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&p->cond, &p->lock, &until);
	}
	pthread_mutex_unlock(&p->lock);
	if (p->jr->env->progress_tty)
		log_progress_done();
	return NULL;
}

int run_accounts(const struct run_env *env, const struct run_account *acc, size_t n,
		 struct run_result *res)
{
	struct job_run jr;
	struct progress p;
	bool *skipped, have_progress = false;
	double t0 = now_s();
	size_t i;

	memset(res, 0, sizeof(*res));
	res->v = calloc(n + 1, sizeof(*res->v));
	skipped = calloc(n + 1, sizeof(*skipped));
	if (res->v == NULL || skipped == NULL) {
		free(skipped);
		free(res->v);
		res->v = NULL;
		return -1;
	}
	res->n = n;
	for (i = 0; i < n; i++)
		res->v[i].acc = &acc[i];
	memset(&jr, 0, sizeof(jr));
	jr.env = env;
	jr.acc = acc;
	jr.res = res;
	jr.n = n;
	if (env->log_dir != NULL) {
		struct tr_error err;
		int fd = privdir_open(env->log_dir, "log directory", &err);

		/* Logs are not worth stopping the run for, but a directory
		 * others can write into gets none of them. */
		if (fd < 0)
			log_warn(NULL, "%s; no per-account logs this run", err.msg);
		else
			jr.log_dir = env->log_dir;
		if (fd >= 0)
			close(fd);
	}

	memset(&p, 0, sizeof(p));
	p.jr = &jr;
	pthread_mutex_init(&p.lock, NULL);
	pthread_cond_init(&p.cond, NULL);
	if ((env->progress_tty || env->progress_log) &&
	    pthread_create(&p.thread, NULL, progress_main, &p) == 0)
		have_progress = true;

	sched_run(n, env->parallel_accounts, run_one, &jr, skipped);

	if (have_progress) {
		pthread_mutex_lock(&p.lock);
		p.stop = true;
		pthread_cond_signal(&p.cond);
		pthread_mutex_unlock(&p.lock);
		pthread_join(p.thread, NULL);
	}
	pthread_cond_destroy(&p.cond);
	pthread_mutex_destroy(&p.lock);

	for (i = 0; i < n; i++) {
		struct run_item *it = &res->v[i];

		if (!it->started) {
			res->skipped++;
			continue;
		}
		switch (it->res.status) {
		case ACCOUNT_OK: res->ok++; break;
		case ACCOUNT_PARTIAL: res->partial++; break;
		case ACCOUNT_FAILED: res->failed++; break;
		case ACCOUNT_PAUSED: res->paused++; break;
		}
	}
	free(skipped);
	res->seconds = now_s() - t0;
	return res->ok == n ? 0 : -1;
}

void run_result_free(struct run_result *res)
{
	size_t i;

	for (i = 0; i < res->n; i++)
		if (res->v[i].started)
			account_result_free(&res->v[i].res);
	free(res->v);
	memset(res, 0, sizeof(*res));
}

int run_provision(const struct run_env *env, const struct run_account *acc,
		  struct tr_error *err)
{
	const char *pw = acc->dst_password != NULL ? acc->dst_password : acc->src_password;
	int r;

	r = provision_account(env->cfg, acc->label, acc->dst_user, pw, err);
	if (r < 0)
		run_redact(env, acc, err->msg, sizeof(err->msg));
	else if (r > 0)
		log_info(acc->label, "provisioned on the destination");
	return r;
}

void run_creds(const struct run_env *env, const struct run_account *acc, bool src,
	       struct store_creds *cr)
{
	memset(cr, 0, sizeof(*cr));
	if (env->oauth[src ? 0 : 1] != NULL) {
		int auth = src ? env->cfg->src_auth : env->cfg->dst_auth;

		cr->user = src ? acc->src_user : acc->dst_user;
		cr->oauth_mech = auth == JOBCONF_AUTH_OAUTHBEARER ? OAUTH_OAUTHBEARER : OAUTH_XOAUTH2;
		/* NULL (out of memory) is told by the login */
		cr->oauth = oauth_pool_get(env->oauth[src ? 0 : 1], acc->label, cr->user);
		return;
	}
	if (src) {
		cr->user = acc->src_user;
		if (env->src_admin != NULL) {
			cr->admin = env->src_admin;
			cr->password = env->src_admin_password;
			cr->admin_separator = env->src_admin_separator;
		} else {
			cr->password = acc->src_password;
		}
		return;
	}
	cr->user = acc->dst_user;
	if (env->dst_admin != NULL) {
		cr->admin = env->dst_admin;
		cr->password = env->dst_admin_password;
		cr->admin_separator = env->dst_admin_separator;
	} else {
		cr->password = acc->dst_password != NULL ? acc->dst_password : acc->src_password;
	}
}

int run_open(const struct run_env *env, const struct run_account *acc, bool src,
	     struct store **s, struct tr_error *err)
{
	struct limiter *lim = src ? env->src_lim : env->dst_lim;
	const char *login = src ? acc->src_user : acc->dst_user;
	struct store_creds cr;
	struct store_conf conf;

	*s = NULL;
	if (shared_failure(env, err))
		return -1;
	if (limiter_acquire(lim, login, true) < 0) {
		tr_error_set(err, TR_ERR_STOPPED, "stopped");
		return -1;
	}
	run_creds(env, acc, src, &cr);
	conf.ep = src ? &env->src_ep : &env->dst_ep;
	conf.cr = &cr;
	conf.arg = src ? env->src_arg : env->dst_arg;
	if (store_open(driver_of(src ? env->src_drv : env->dst_drv), &conf, s, err) == 0)
		return 0;
	shared_learn(env, err);
	if (err->kind == TR_ERR_WAIT)
		limiter_refused(lim, login);
	limiter_release(lim, login);
	return -1;
}

void run_close(const struct run_env *env, const struct run_account *acc, bool src,
	       struct store **s)
{
	if (*s == NULL)
		return;
	store_close(*s);
	*s = NULL;
	limiter_release(src ? env->src_lim : env->dst_lim, src ? acc->src_user : acc->dst_user);
}
