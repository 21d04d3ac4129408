/* queue: the backend picked by the queue's location, and every call passed
 * to it (see include/queue.h; the backends: include/queue_backend.h), with
 * a job made ready to be stored; what the backends themselves share is
 * queue_base.c's (they never call this file: no loop). */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "pg.h"
#include "queue.h"
#include "queue_backend.h"
#include "queue_status.h"
#include "report.h"
#include "secret.h"
#include "text.h"
#include "verify.h"

static const struct queue_backend *const backends[] = {
	&queue_backend_sqlite,      /* the first: a plain directory means it */
	&queue_backend_pg,
};

#define N_BACKENDS (sizeof(backends) / sizeof(backends[0]))

struct queue {
	const struct queue_backend *be;
	void *h;
	const struct seal_keys *keys;
};

static int oom(struct tr_error *err)
{
	tr_error_set(err, TR_ERR_LOCAL, "out of memory");
	return -1;
}

/* ---- the location ------------------------------------------------------------- */

static void unknown(const char *name, size_t len, struct tr_error *err)
{
	char known[256];
	size_t i, o = 0;

	known[0] = '\0';
	for (i = 0; i < N_BACKENDS && o < sizeof(known); i++) {
		int k = snprintf(known + o, sizeof(known) - o, "%s%s:%s", o > 0 ? ", " : "",
				 backends[i]->name, backends[i]->where);

		if (k < 0)
			break;
		o += (size_t)k;
	}
	tr_error_set(err, TR_ERR_USAGE, "unknown queue location \"%.*s://...\": the known ones "
		     "are %s; a plain directory means %s:%s", (int)(len > 64 ? 64 : len), name,
		     known, backends[0]->name, backends[0]->where);
}

/* The backend of location and what it is given (*where_r).  A libpq DSN
 * is PostgreSQL's whole (its URI, or its key=value form); "NAME:WHERE"
 * names a backend; "SCHEME://..." of no backend is a mistake, not a
 * directory; anything else is a directory (a directory called "x:y" stays
 * one), as a state location is (state.c). */
static const struct queue_backend *pick(const char *location, const char **where_r,
					struct tr_error *err)
{
	size_t n, i;

	*where_r = NULL;
	if (location == NULL || *location == '\0') {
		tr_error_set(err, TR_ERR_USAGE, "no queue location given");
		return NULL;
	}
	if (pg_is_dsn(location) || pg_is_conninfo(location)) {
		*where_r = location;
		return &queue_backend_pg;
	}
	n = strspn(location, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+-.");
	if (n > 0 && location[n] == ':') {
		for (i = 0; i < N_BACKENDS; i++)
			if (strlen(backends[i]->name) == n &&
			    strncmp(backends[i]->name, location, n) == 0 &&
			    backends[i] != &queue_backend_pg) {
				*where_r = location + n + 1;
				return backends[i];
			}
		if (strncmp(location + n + 1, "//", 2) == 0) {
			unknown(location, n, err);
			return NULL;
		}
	}
	*where_r = location;
	return backends[0];
}

int queue_open(const char *dsn, const struct seal_keys *keys, struct queue **q_r,
	       struct tr_error *err)
{
	const struct queue_backend *be;
	const char *where;
	struct queue *q;

	*q_r = NULL;
	if ((be = pick(dsn, &where, err)) == NULL)
		return -1;
	if (*where == '\0') {
		tr_error_set(err, TR_ERR_USAGE, "the %s queue needs a %s (%s:%s)", be->name,
			     be->where, be->name, be->where);
		return -1;
	}
	if ((q = calloc(1, sizeof(*q))) == NULL)
		return oom(err);
	q->be = be;
	q->keys = keys;
	if (be->open(where, keys, &q->h, err) < 0) {
		free(q);
		return -1;
	}
	*q_r = q;
	return 0;
}

int queue_init(const char *location, int *from_r, int *version_r, struct queue **q_r,
	       struct tr_error *err)
{
	const struct queue_backend *be;
	const char *where;

	*q_r = NULL;
	*from_r = *version_r = 0;
	if ((be = pick(location, &where, err)) == NULL)
		return -1;
	if (*where == '\0') {
		tr_error_set(err, TR_ERR_USAGE, "the %s queue needs a %s (%s:%s)", be->name,
			     be->where, be->name, be->where);
		return -1;
	}
	if (be->init(where, from_r, version_r, err) < 0)
		return -1;
	return queue_open(location, NULL, q_r, err);
}

void queue_close(struct queue *q)
{
	if (q == NULL)
		return;
	q->be->close(q->h);
	free(q);
}

const char *queue_where(const struct queue *q)
{
	return q->be->where_text(q->h);
}

const char *queue_backend_name(const struct queue *q)
{
	return q->be->name;
}

static int need_keys(const struct queue *q, struct tr_error *err)
{
	if (q->keys != NULL)
		return 0;
	tr_error_set(err, TR_ERR_LOCAL, "the queue was opened without a key file");
	return -1;
}

static const char *const not_kept[] = {
	"accounts", "state", "report", "report-csv", "log-dir", "dst-admin-password-file",
	"src-admin-password-file",
};

bool queue_setting_kept(const char *key)
{
	size_t i;

	for (i = 0; i < sizeof(not_kept) / sizeof(not_kept[0]); i++)
		if (strcmp(key, not_kept[i]) == 0)
			return false;
	return true;
}

/* The job's settings as stored: jobconf_text of cfg without the settings
 * a queued job does not keep, and every path made absolute (from the
 * working directory, as cfg's relative paths are), so that a worker on
 * another host reads the same files. */
static char *stored_config(const struct job_config *cfg, struct tr_error *err)
{
	struct jobconf_origin o = { .from = JOBCONF_JOB_FILE };
	struct job_config n;
	struct job_file jf;
	char *text = jobconf_text(cfg), *out = NULL, cwd[4096];
	size_t i;

	memset(&jf, 0, sizeof(jf));
	if (text == NULL) {
		oom(err);
		return NULL;
	}
	if (getcwd(cwd, sizeof(cwd)) == NULL) {
		tr_error_set(err, TR_ERR_LOCAL, "cannot tell the working directory: %s",
			     strerror(errno));
		free(text);
		return NULL;
	}
	o.dir = cwd;
	jobconf_init(&n, JOB_RUN);
	if (job_file_parse("the job's settings", text, strlen(text), &jf, err) < 0)
		goto out;
	for (i = 0; i < jf.n; i++) {
		if (!queue_setting_kept(jf.v[i].key))
			continue;
		if (jobconf_set(&n, jf.v[i].key, jf.v[i].value, &o, err) < 0)
			goto out;
	}
	out = jobconf_text(&n);
	if (out == NULL)
		oom(err);
out:
	job_file_free(&jf);
	jobconf_free(&n);
	free(text);
	return out;
}

/* The default name: the job file's (or else the accounts file's) base
 * name without ".job" (".csv"). */
static char *default_name(const struct job_config *cfg)
{
	const char *path = cfg->name != NULL ? cfg->name : cfg->accounts, *base, *ext;
	size_t len;

	if (path == NULL)
		return strdup("job");
	base = strrchr(path, '/');
	base = base != NULL ? base + 1 : path;
	len = strlen(base);
	ext = cfg->name != NULL ? ".job" : ".csv";
	if (len > 4 && strcmp(base + len - 4, ext) == 0)
		len -= 4;
	if (len == 0)
		return strdup("job");
	return strndup(base, len);
}

static char *server_text(const struct jobconf_server *s)
{
	size_t len = strlen(s->host) + 16;
	char *t = malloc(len);

	if (t != NULL)
		snprintf(t, len, strchr(s->host, ':') != NULL ? "[%s]:%d" : "%s:%d", s->host,
			 s->port);
	return t;
}

static json_t *skipped_json(const struct job_accounts *ja)
{
	json_t *a = json_array();
	bool ok = a != NULL;
	size_t i;

	for (i = 0; ok && i < ja->n_bad; i++) {
		json_t *o;

		if (ja->bad[i].line == 0)
			continue;
		o = json_object();
		report_json_set(o, "line", json_integer(ja->bad[i].line), &ok);
		report_json_set(o, "what", report_json_text(ja->bad[i].what), &ok);
		report_json_append(a, o, &ok);
	}
	if (!ok) {
		json_decref(a);
		return NULL;
	}
	return a;
}

int queue_submit(struct queue *q, const struct job_config *cfg, const struct job_accounts *ja,
		 const char *admin_password, const char *src_admin_password, const char *name,
		 int64_t *id_r, struct tr_error *err)
{
	struct queue_new_job nj;
	char *config = NULL, *jname = NULL, *src = NULL, *dst = NULL, *skipped = NULL;
	json_t *sk;
	int rc = -1;

	*id_r = 0;
	if (need_keys(q, err) < 0)
		return -1;
	if (cfg->kind != JOB_RUN || cfg->src.host == NULL || cfg->dst.host == NULL) {
		tr_error_set(err, TR_ERR_USAGE, "only a finished job of `trasloco run` is queued");
		return -1;
	}
	if (ja->n == 0) {
		tr_error_set(err, TR_ERR_USAGE, "%s: no account to migrate",
			     cfg->accounts != NULL ? cfg->accounts : "the accounts file");
		return -1;
	}
	if (cfg->final) {
		tr_error_set(err, TR_ERR_USAGE, "a queued job's last pass is asked when it is due: "
			     "`trasloco queue pass QUEUE JOB --kind final` (POST "
			     "/v1/jobs/ID/passes), not final in the job");
		return -1;
	}
	if (cfg->dst_admin != NULL && admin_password == NULL) {
		tr_error_set(err, TR_ERR_USAGE, "dst-admin needs its password");
		return -1;
	}
	if (cfg->src_admin != NULL && src_admin_password == NULL) {
		tr_error_set(err, TR_ERR_USAGE, "src-admin needs its password");
		return -1;
	}
	config = stored_config(cfg, err);
	if (config == NULL)
		return -1;
	jname = name != NULL ? strdup(name) : default_name(cfg);
	src = server_text(&cfg->src);
	dst = server_text(&cfg->dst);
	sk = skipped_json(ja);
	skipped = sk != NULL ? json_dumps(sk, JSON_COMPACT) : NULL;
	json_decref(sk);
	if (jname == NULL || src == NULL || dst == NULL || skipped == NULL) {
		oom(err);
		goto out;
	}
	nj = (struct queue_new_job){ .name = jname, .config = config, .src = src, .dst = dst,
				     .skipped = skipped, .admin_password = admin_password,
				     .src_admin_password = cfg->src_admin != NULL ?
							   src_admin_password : NULL,
				     .cfg = cfg, .ja = ja };
	rc = q->be->submit(q->h, &nj, id_r, err);
out:
	free(config);
	free(jname);
	free(src);
	free(dst);
	free(skipped);
	return rc;
}

/* ---- claims and the rest: the backend's ------------------------------------------ */

int queue_claim(struct queue *q, const char *worker, int lease_s, struct queue_claim *c,
		struct tr_error *err)
{
	memset(c, 0, sizeof(*c));
	if (need_keys(q, err) < 0)
		return -1;
	return q->be->claim(q->h, worker, lease_s, c, err);
}

int queue_job_config(struct queue *q, int64_t job_id, char **config_r, char **admin_pw_r,
		     char **src_admin_pw_r, struct tr_error *err)
{
	return q->be->job_config(q->h, job_id, config_r, admin_pw_r, src_admin_pw_r, err);
}

int queue_renew(struct queue *q, const char *worker, int lease_s, const int64_t *held,
		size_t n_held, int64_t **lost_r, size_t *n_lost_r, struct tr_error *err)
{
	return q->be->renew(q->h, worker, lease_s, held, n_held, lost_r, n_lost_r, err);
}

int queue_progress(struct queue *q, const char *worker, int64_t row,
		   const struct queue_counts *n, struct tr_error *err)
{
	return q->be->progress(q->h, worker, row, n, err);
}

int queue_finish(struct queue *q, const char *worker, int64_t row, const char *status,
		 const char *error, const char *error_kind, const struct queue_counts *n,
		 double seconds,
		 const struct account_result *res, struct tr_error *err)
{
	if (status == NULL || (strcmp(status, "ok") != 0 && strcmp(status, "partial") != 0 &&
			       strcmp(status, "failed") != 0)) {
		tr_error_set(err, TR_ERR_LOCAL, "queue_finish: not an outcome: %s",
			     status != NULL ? status : "(null)");
		return -1;
	}
	return q->be->finish(q->h, worker, row, status, error,
			     strcmp(status, "ok") == 0 ? NULL : error_kind, n, seconds, res, err);
}

int queue_verify_finish(struct queue *q, const char *worker, int64_t row,
			const struct verify_item *it, struct tr_error *err)
{
	return q->be->verify_finish(q->h, worker, row, it, err);
}

int queue_release(struct queue *q, const char *worker, int64_t row, int delay_s,
		  struct tr_error *err)
{
	return q->be->release(q->h, worker, row, delay_s, err);
}

int queue_worker_register(struct queue *q, const char *worker, const char *host, int pid,
			  const char *egress, int parallel, struct tr_error *err)
{
	return q->be->worker_register(q->h, worker, host, pid, egress, parallel, err);
}

int queue_worker_stopped(struct queue *q, const char *worker, struct tr_error *err)
{
	return q->be->worker_stopped(q->h, worker, err);
}

int queue_status(struct queue *q, const char *job, bool json, FILE *out, struct tr_error *err)
{
	struct queue_rows rows;
	int r;

	memset(&rows, 0, sizeof(rows));
	if (q->be->status_rows(q->h, job, &rows, err) < 0) {
		queue_rows_free(&rows);
		return -1;
	}
	r = queue_status_write(&rows, json, out, err);
	queue_rows_free(&rows);
	return r;
}

json_t *queue_status_json(struct queue *q, const char *job, struct tr_error *err)
{
	struct queue_rows rows;
	json_t *doc;

	memset(&rows, 0, sizeof(rows));
	if (q->be->status_rows(q->h, job, &rows, err) < 0) {
		queue_rows_free(&rows);
		return NULL;
	}
	if ((doc = queue_status_doc(&rows)) == NULL)
		tr_error_set(err, TR_ERR_LOCAL, "out of memory");
	queue_rows_free(&rows);
	return doc;
}

int queue_retry(struct queue *q, const char *job, bool failed_only, int *n_r,
		struct tr_error *err)
{
	*n_r = 0;
	return q->be->retry(q->h, job, failed_only, n_r, err);
}

int queue_cancel(struct queue *q, const char *job, struct tr_error *err)
{
	return q->be->cancel(q->h, job, err);
}

int queue_delete(struct queue *q, const char *job, struct tr_error *err)
{
	return q->be->delete_job(q->h, job, err);
}

int queue_rekey(struct queue *q, int *n_r, struct tr_error *err)
{
	*n_r = 0;
	if (need_keys(q, err) < 0)
		return -1;
	return q->be->rekey(q->h, n_r, err);
}

int queue_outstanding(struct queue *q, int64_t *n_r, struct tr_error *err)
{
	*n_r = 0;
	return q->be->outstanding(q->h, n_r, err);
}

int queue_job_id(struct queue *q, const char *job, int64_t *id_r, struct tr_error *err)
{
	*id_r = 0;
	return q->be->job_id(q->h, job, id_r, err);
}

/* ---- passes and an account's detail ----------------------------------------------- */

int queue_pass(struct queue *q, const char *job, const char *kind, int every_s, int *n_r,
	       struct tr_error *err)
{
	*n_r = 0;
	if (kind != NULL && kind[0] == '\0')
		kind = NULL;
	if (kind != NULL && strcmp(kind, "delta") != 0 && strcmp(kind, "verify") != 0 &&
	    strcmp(kind, "final") != 0) {
		char *c = text_clean_dup(kind, NULL);

		tr_error_set(err, TR_ERR_USAGE, "no pass of kind \"%s\": delta, verify or final",
			     c != NULL ? c : "?");
		free(c);
		return -1;
	}
	if (kind == NULL && every_s == 0) {
		tr_error_set(err, TR_ERR_USAGE, "a pass needs a kind (delta, verify, final) or an "
			     "interval for delta passes");
		return -1;
	}
	if ((every_s > 0 && kind != NULL && strcmp(kind, "delta") != 0) ||
	    (every_s < 0 && kind != NULL)) {
		tr_error_set(err, TR_ERR_USAGE, "an interval schedules delta passes: it goes with "
			     "no kind or with delta, not with %s", kind);
		return -1;
	}
	return q->be->pass(q->h, job, kind, every_s, n_r, err);
}

int queue_schedule(struct queue *q, int *n_started, struct tr_error *err)
{
	*n_started = 0;
	return q->be->schedule(q->h, n_started, err);
}

int queue_account_detail(struct queue *q, const char *job, const char *email, json_t **out,
			 struct tr_error *err)
{
	struct queue_detail d;
	int r;

	*out = NULL;
	if (email == NULL || email[0] == '\0') {
		tr_error_set(err, TR_ERR_USAGE, "which account? (an email)");
		return 1;
	}
	memset(&d, 0, sizeof(d));
	r = q->be->account_detail(q->h, job, email, &d, err);
	if (r == 0 && (*out = queue_detail_json(&d)) == NULL)
		r = oom(err);
	queue_detail_free(&d);
	return r;
}
