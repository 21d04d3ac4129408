/* api: the HTTP API's routes over the queue (api.h). */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "job.h"
#include "jobconf.h"
#include "jobjson.h"
#include "log.h"
#include "metrics.h"
#include "queue.h"
#include "report.h"
#include "secret.h"
#include "text.h"

#define TYPE_JSON "application/json"
#define TYPE_METRICS "text/plain; version=0.0.4; charset=utf-8"

/* Connections to the queue at most: requests beyond wait for one (the
 * database does the work; more connections would only share its cores). */
#define POOL_MAX 8
/* How long a status document is served again before it is asked anew: a
 * panel's many viewers (or 50 requests at once) cost one query. */
#define CACHE_MS 500
#define CACHE_N 16

struct cached {
	int64_t job;                    /* 0: every job */
	char *text;                     /* NULL: none yet */
	bool missing;                   /* no such job */
	double at;                      /* monotonic seconds */
	bool busy;                      /* being asked: wait for it */
};

struct api {
	char *dsn;
	const struct seal_keys *keys;
	unsigned char token_sha[SHA256_DIGEST_LENGTH];
	bool metrics_open;
	size_t max_body;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct queue *pool[POOL_MAX];
	size_t n_pool;                  /* idle in pool[] */
	size_t n_open;                  /* idle and taken */
	struct cached cache[CACHE_N];
};

int api_open(const struct api_conf *c, struct api **a_r, struct tr_error *err)
{
	struct api *a;

	*a_r = NULL;
	if (c->token == NULL || strlen(c->token) < 16) {
		tr_error_set(err, TR_ERR_USAGE, "the API token is shorter than 16 characters");
		return -1;
	}
	if ((a = calloc(1, sizeof(*a))) == NULL || (a->dsn = strdup(c->dsn)) == NULL) {
		free(a);
		tr_error_set(err, TR_ERR_LOCAL, "out of memory");
		return -1;
	}
	a->keys = c->keys;
	SHA256((const unsigned char *)c->token, strlen(c->token), a->token_sha);
	a->metrics_open = c->metrics_open;
	a->max_body = c->max_body > 0 ? c->max_body : JOBJSON_MAX_BODY;
	pthread_mutex_init(&a->mu, NULL);
	pthread_cond_init(&a->cv, NULL);
	*a_r = a;
	return 0;
}

void api_close(struct api *a)
{
	size_t i;

	if (a == NULL)
		return;
	for (i = 0; i < a->n_pool; i++)
		queue_close(a->pool[i]);
	for (i = 0; i < CACHE_N; i++)
		free(a->cache[i].text);
	pthread_cond_destroy(&a->cv);
	pthread_mutex_destroy(&a->mu);
	secret_free(a->dsn);
	OPENSSL_cleanse(a->token_sha, sizeof(a->token_sha));
	free(a);
}

size_t api_max_body(const struct api *a)
{
	return a->max_body;
}

void api_reply_free(struct api_reply *rp)
{
	free(rp->body);
	rp->body = NULL;
}

/* ---- queue connections -------------------------------------------------- */

static struct queue *take(struct api *a, struct tr_error *err)
{
	struct queue *q = NULL;

	pthread_mutex_lock(&a->mu);
	while (a->n_pool == 0 && a->n_open >= POOL_MAX)
		pthread_cond_wait(&a->cv, &a->mu);
	if (a->n_pool > 0)
		q = a->pool[--a->n_pool];
	else
		a->n_open++;
	pthread_mutex_unlock(&a->mu);
	if (q == NULL && queue_open(a->dsn, a->keys, &q, err) < 0) {
		pthread_mutex_lock(&a->mu);
		a->n_open--;
		pthread_cond_broadcast(&a->cv);
		pthread_mutex_unlock(&a->mu);
		return NULL;
	}
	return q;
}

static void give(struct api *a, struct queue *q)
{
	if (q == NULL)
		return;
	pthread_mutex_lock(&a->mu);
	a->pool[a->n_pool++] = q;
	pthread_cond_broadcast(&a->cv);
	pthread_mutex_unlock(&a->mu);
}

/* ---- replies ------------------------------------------------------------ */

static void reply_json(struct api_reply *rp, int status, json_t *doc)
{
	rp->status = status;
	rp->type = TYPE_JSON;
	rp->body = doc != NULL ? json_dumps(doc, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
	json_decref(doc);
	if (rp->body == NULL) {
		rp->status = 500;
		rp->body = strdup("{\"error\":\"out of memory\"}");
	}
	rp->body_len = rp->body != NULL ? strlen(rp->body) : 0;
}

/* {"error": text}; the text cleaned (it may quote what the caller sent). */
static void reply_error(struct api_reply *rp, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void reply_error(struct api_reply *rp, int status, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	json_t *o;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	o = json_object();
	json_object_set_new(o, "error", report_json_text(msg));
	reply_json(rp, status, o);
}

/* A queue error as a reply: the caller's mistake (usage) or ours. */
static void reply_queue_error(struct api_reply *rp, const struct tr_error *err)
{
	if (err->kind == TR_ERR_USAGE)
		reply_error(rp, 400, "%s", err->msg);
	else if (err->kind == TR_ERR_TEMP)
		reply_error(rp, 503, "the queue's database cannot be reached now: %s", err->msg);
	else
		reply_error(rp, 500, "%s", err->msg);
}

/* ---- status documents --------------------------------------------------- */

static void rename_key(json_t *o, const char *from, const char *to)
{
	json_t *v = json_object_get(o, from);

	if (v == NULL)
		return;
	json_incref(v);
	json_object_del(o, from);
	json_object_set_new(o, to, v);
}

/* queue_status's JSON into the API's words (openapi.json): accounts have a
 * status and messages_* counters, skipped rows a reason. */
static void shape_job(json_t *j)
{
	json_t *list, *sk, *e;
	size_t i;

	rename_key(j, "messages", "messages_copied");
	sk = json_object_get(j, "skipped");
	json_array_foreach(sk, i, e)
		rename_key(e, "what", "reason");
	list = json_object_get(j, "account_list");
	json_array_foreach(list, i, e) {
		rename_key(e, "state", "status");
		rename_key(e, "copied", "messages_copied");
		rename_key(e, "present", "messages_present");
		rename_key(e, "failed", "messages_failed");
	}
}

/* queue_status's document in the API's words.  job NULL: every job. */
static json_t *status_doc(struct queue *q, const char *job, struct tr_error *err)
{
	json_t *doc = queue_status_json(q, job, err), *jobs, *j;
	size_t i;

	jobs = json_object_get(doc, "jobs");
	json_array_foreach(jobs, i, j)
		shape_job(j);
	return doc;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Forget every cached document: a request changed the queue. */
static void cache_drop(struct api *a)
{
	size_t i;

	pthread_mutex_lock(&a->mu);
	for (i = 0; i < CACHE_N; i++)
		if (!a->cache[i].busy)
			a->cache[i].at = 0;
	pthread_mutex_unlock(&a->mu);
}

/* The status document of job (0: every job; for one job the job's object)
 * as JSON text, *text_r the caller's; served from the cache while it is
 * younger than CACHE_MS, asked once for all concurrent callers otherwise.
 * *missing_r: there is no such job (then *text_r is NULL). */
static int status_text(struct api *a, int64_t job, char **text_r, bool *missing_r,
		       struct tr_error *err)
{
	struct cached *c = NULL;
	struct queue *q;
	json_t *doc = NULL, *out;
	char idbuf[24], *text = NULL;
	bool missing = false;
	size_t i;
	int r = 0;

	*text_r = NULL;
	*missing_r = false;
	pthread_mutex_lock(&a->mu);
	for (;;) {
		for (i = 0, c = NULL; i < CACHE_N && c == NULL; i++)
			if (a->cache[i].at > 0 || a->cache[i].busy)
				if (a->cache[i].job == job)
					c = &a->cache[i];
		if (c == NULL || !c->busy)
			break;
		pthread_cond_wait(&a->cv, &a->mu);
	}
	if (c != NULL && now_s() - c->at < CACHE_MS / 1000.0) {
		*missing_r = c->missing;
		if (!c->missing && (*text_r = strdup(c->text)) == NULL)
			r = -1;
		pthread_mutex_unlock(&a->mu);
		if (r < 0)
			tr_error_set(err, TR_ERR_LOCAL, "out of memory");
		return r;
	}
	if (c == NULL) {
		/* the oldest entry goes */
		for (i = 0; i < CACHE_N; i++)
			if (!a->cache[i].busy && (c == NULL || a->cache[i].at < c->at))
				c = &a->cache[i];
	}
	if (c == NULL) {
		pthread_mutex_unlock(&a->mu);
		tr_error_set(err, TR_ERR_TEMP, "too many status requests at once");
		return -1;
	}
	c->job = job;
	c->busy = true;
	c->at = 0;
	pthread_mutex_unlock(&a->mu);

	snprintf(idbuf, sizeof(idbuf), "%" PRId64, job);
	if ((q = take(a, err)) == NULL) {
		r = -1;
	} else {
		doc = status_doc(q, job > 0 ? idbuf : NULL, err);
		give(a, q);
		if (doc == NULL && err->kind == TR_ERR_USAGE) {
			missing = true;
		} else if (doc == NULL) {
			r = -1;
		} else {
			out = job > 0 ? json_array_get(json_object_get(doc, "jobs"), 0) : doc;
			if (out == NULL)
				missing = true;
			else if ((text = json_dumps(out, JSON_COMPACT | JSON_ENSURE_ASCII)) == NULL)
				r = -1;
			json_decref(doc);
			if (r < 0)
				tr_error_set(err, TR_ERR_LOCAL, "out of memory");
		}
	}
	pthread_mutex_lock(&a->mu);
	c->busy = false;
	free(c->text);
	c->text = NULL;
	if (r == 0 && (missing || (c->text = strdup(text)) != NULL)) {
		c->missing = missing;
		c->at = now_s();
	}
	pthread_cond_broadcast(&a->cv);
	pthread_mutex_unlock(&a->mu);
	*text_r = text;
	*missing_r = missing;
	return r;
}

/* ---- routes ------------------------------------------------------------- */

static bool authorized(const struct api *a, const char *header)
{
	unsigned char sha[SHA256_DIGEST_LENGTH];
	const char *t;
	bool ok;

	if (header == NULL || strncasecmp(header, "Bearer ", 7) != 0)
		return false;
	for (t = header + 7; *t == ' '; t++)
		;
	/* digests of equal length: the comparison's time says nothing of the
	 * token, not even its length */
	SHA256((const unsigned char *)t, strlen(t), sha);
	ok = CRYPTO_memcmp(sha, a->token_sha, sizeof(sha)) == 0;
	OPENSSL_cleanse(sha, sizeof(sha));
	return ok;
}

/* "123" -> 123; anything else 0. */
static int64_t parse_id(const char *s, size_t len)
{
	int64_t v = 0;
	size_t i;

	if (len == 0 || len > 18 || s[0] == '0')
		return 0;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return 0;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

static bool method_is(const struct api_request *rq, const char *m)
{
	return strcmp(rq->method, m) == 0;
}

static void not_allowed(struct api_reply *rp, const char *allow)
{
	rp->allow = allow;
	reply_error(rp, 405, "method not allowed here (allowed: %s)", allow);
}

/* The job named by id exists: 1; 0 (rp filled with a 404 or an error). */
static int job_exists(struct queue *q, int64_t id, struct api_reply *rp)
{
	struct tr_error err;
	char idbuf[24];
	int64_t got;

	tr_error_clear(&err);
	snprintf(idbuf, sizeof(idbuf), "%" PRId64, id);
	if (queue_job_id(q, idbuf, &got, &err) == 0 && got == id)
		return 1;
	if (err.kind == TR_ERR_USAGE || err.kind == TR_ERR_NONE)
		reply_error(rp, 404, "no job %" PRId64, id);
	else
		reply_queue_error(rp, &err);
	return 0;
}

static void post_job(struct queue *q, const struct api_request *rq,
		     struct api_reply *rp)
{
	struct tr_error err;
	struct job_config cfg;
	struct job_accounts ja;
	char *admin = NULL, *name = NULL;
	int64_t id;
	json_t *o, *sk;
	size_t i;

	tr_error_clear(&err);
	if (jobjson_parse(rq->body != NULL ? rq->body : "", rq->body_len, &cfg, &ja, &admin, &name,
			  &err) < 0) {
		if (err.kind == TR_ERR_USAGE)
			reply_error(rp, 400, "%s", err.msg);
		else
			reply_error(rp, 500, "%s", err.msg);
		jobconf_free(&cfg);
		return;
	}
	if (queue_submit(q, &cfg, &ja, admin, NULL, name != NULL ? name : "api", &id, &err) < 0) {
		reply_queue_error(rp, &err);
		goto out;
	}
	log_info(NULL, "serve: job %" PRId64 " submitted: %zu account(s), %zu row(s) skipped", id,
		 ja.n, ja.n_bad);
	o = json_object();
	sk = json_array();
	for (i = 0; i < ja.n_bad; i++) {
		json_t *e = json_object();

		json_object_set_new(e, "line", json_integer(ja.bad[i].line));
		json_object_set_new(e, "reason", report_json_text(ja.bad[i].what));
		json_array_append_new(sk, e);
	}
	json_object_set_new(o, "id", json_integer(id));
	json_object_set_new(o, "accounts", json_integer((json_int_t)ja.n));
	json_object_set_new(o, "skipped", sk);
	snprintf(rp->location, sizeof(rp->location), "/v1/jobs/%" PRId64, id);
	reply_json(rp, 201, o);
out:
	secret_free(admin);
	free(name);
	job_accounts_free(&ja);
	jobconf_free(&cfg);
}

/* A status document as the reply: 200, 404 when missing. */
static void reply_status(struct api *a, int64_t job, struct api_reply *rp)
{
	struct tr_error err;
	char *text;
	bool missing;

	tr_error_clear(&err);
	if (status_text(a, job, &text, &missing, &err) < 0) {
		reply_queue_error(rp, &err);
		return;
	}
	if (missing) {
		reply_error(rp, 404, "no job %" PRId64, job);
		return;
	}
	rp->status = 200;
	rp->type = TYPE_JSON;
	rp->body = text;
	rp->body_len = strlen(text);
}

static void job_action(struct queue *q, int64_t id, const char *what, struct api_reply *rp)
{
	struct tr_error err;
	char idbuf[24];
	json_t *o;
	int n = 0, r;

	tr_error_clear(&err);
	snprintf(idbuf, sizeof(idbuf), "%" PRId64, id);
	if (strcmp(what, "retry") == 0)
		r = queue_retry(q, idbuf, true, &n, &err);
	else if (strcmp(what, "cancel") == 0)
		r = queue_cancel(q, idbuf, &err);
	else
		r = queue_delete(q, idbuf, &err);
	if (r < 0) {
		reply_queue_error(rp, &err);
		return;
	}
	log_info(NULL, "serve: job %" PRId64 ": %s%s", id, what,
		 strcmp(what, "delete") == 0 ? "d, its passwords with it" : "");
	if (strcmp(what, "delete") == 0) {
		rp->status = 204;
		return;
	}
	o = json_object();
	json_object_set_new(o, "id", json_integer(id));
	if (strcmp(what, "retry") == 0)
		json_object_set_new(o, "retried", json_integer(n));
	else
		json_object_set_new(o, "state", json_string("cancelled"));
	reply_json(rp, 200, o);
}

static void get_metrics(struct api *a, struct api_reply *rp)
{
	struct tr_error err;
	json_t *doc;
	char *text;
	bool missing;

	tr_error_clear(&err);
	if (status_text(a, 0, &text, &missing, &err) < 0) {
		reply_queue_error(rp, &err);
		return;
	}
	doc = json_loads(text, 0, NULL);
	free(text);
	text = doc != NULL ? metrics_render(doc) : NULL;
	json_decref(doc);
	if (text == NULL) {
		reply_error(rp, 500, "out of memory");
		return;
	}
	rp->status = 200;
	rp->type = TYPE_METRICS;
	rp->body = text;
	rp->body_len = strlen(text);
}

static void post_pass(struct queue *q, int64_t id, const struct api_request *rq,
		      struct api_reply *rp)
{
	struct tr_error err;
	const char *kind;
	char idbuf[24];
	int every = 0, n = 0;
	json_t *o;

	tr_error_clear(&err);
	if (jobjson_pass(rq->body != NULL ? rq->body : "", rq->body_len, &kind, &every, &err) < 0) {
		reply_error(rp, 400, "%s", err.msg);
		return;
	}
	snprintf(idbuf, sizeof(idbuf), "%" PRId64, id);
	if (queue_pass(q, idbuf, kind, every, &n, &err) < 0) {
		/* the body was read already: what the queue refuses is the job's
		 * state (cancelled, finished by a final pass) */
		if (err.kind == TR_ERR_USAGE)
			reply_error(rp, 409, "%s", err.msg);
		else
			reply_queue_error(rp, &err);
		return;
	}
	log_info(NULL, "serve: job %" PRId64 ": %s pass%s, %d account(s)", id, kind,
		 every > 0 ? " scheduled" : "", n);
	o = json_object();
	json_object_set_new(o, "id", json_integer(id));
	json_object_set_new(o, "kind", json_string(kind));
	json_object_set_new(o, "accounts", json_integer(n));
	json_object_set_new(o, "every_seconds", every > 0 ? json_integer(every) : json_null());
	reply_json(rp, 200, o);
}

static void get_account(struct queue *q, int64_t id, const char *email, struct api_reply *rp)
{
	struct tr_error err;
	char idbuf[24];
	json_t *doc = NULL;
	int r;

	tr_error_clear(&err);
	snprintf(idbuf, sizeof(idbuf), "%" PRId64, id);
	r = queue_account_detail(q, idbuf, email, &doc, &err);
	if (r == 1) {
		reply_error(rp, 404, "%s", err.msg);
		return;
	}
	if (r < 0) {
		reply_queue_error(rp, &err);
		return;
	}
	reply_json(rp, 200, doc);
}

/* /v1/jobs/ID[/REST]: the routes of one job.  Those that change the
 * queue take a connection (q) and drop the cached documents. */
static void job_routes(struct api *a, const struct api_request *rq, const char *rest,
		       struct api_reply *rp)
{
	const char *slash = strchr(rest, '/');
	size_t idlen = slash != NULL ? (size_t)(slash - rest) : strlen(rest);
	int64_t id = parse_id(rest, idlen);
	const char *sub = slash != NULL ? slash + 1 : NULL, *action = NULL;
	struct tr_error err;
	struct queue *q;

	tr_error_clear(&err);
	if (id <= 0) {
		reply_error(rp, 404, "no such job (a job's id is a number)");
		return;
	}
	if (sub == NULL) {
		if (method_is(rq, "GET") || method_is(rq, "HEAD")) {
			reply_status(a, id, rp);
			return;
		}
		if (!method_is(rq, "DELETE")) {
			not_allowed(rp, "GET, DELETE");
			return;
		}
		action = "delete";
	} else if (strcmp(sub, "retry") == 0 || strcmp(sub, "cancel") == 0 ||
		   strcmp(sub, "passes") == 0) {
		if (!method_is(rq, "POST")) {
			not_allowed(rp, "POST");
			return;
		}
		action = sub;
	} else if (strncmp(sub, "accounts/", 9) == 0 && sub[9] != '\0' &&
		   strchr(sub + 9, '/') == NULL) {
		if (!method_is(rq, "GET") && !method_is(rq, "HEAD")) {
			not_allowed(rp, "GET");
			return;
		}
		if ((q = take(a, &err)) == NULL) {
			reply_queue_error(rp, &err);
			return;
		}
		get_account(q, id, sub + 9, rp);
		give(a, q);
		return;
	} else {
		reply_error(rp, 404, "no such route");
		return;
	}
	if ((q = take(a, &err)) == NULL) {
		reply_queue_error(rp, &err);
		return;
	}
	if (job_exists(q, id, rp)) {
		if (strcmp(action, "passes") == 0)
			post_pass(q, id, rq, rp);
		else
			job_action(q, id, action, rp);
	}
	give(a, q);
	cache_drop(a);
}

void api_handle(struct api *a, const struct api_request *rq, struct api_reply *rp)
{
	struct tr_error err;
	struct queue *q;
	const char *p = rq->path;

	memset(rp, 0, sizeof(*rp));
	tr_error_clear(&err);
	/* ".." segments would mean nothing here; refused so that nothing
	 * ever resolves them */
	if (strstr(p, "/../") != NULL || strstr(p, "/./") != NULL ||
	    (strlen(p) >= 3 && strcmp(p + strlen(p) - 3, "/..") == 0) || strstr(p, "//") != NULL) {
		reply_error(rp, 400, "a path with \".\" or \"..\" segments or \"//\"");
		return;
	}
	if (strcmp(p, "/healthz") == 0) {
		json_t *o = json_object();

		if (!method_is(rq, "GET") && !method_is(rq, "HEAD")) {
			json_decref(o);
			not_allowed(rp, "GET");
			return;
		}
		json_object_set_new(o, "ok", json_true());
		reply_json(rp, 200, o);
		return;
	}
	if (strcmp(p, "/metrics") != 0 && strncmp(p, "/v1/", 4) != 0) {
		reply_error(rp, 404, "no such route");
		return;
	}
	if (!(strcmp(p, "/metrics") == 0 && a->metrics_open) && !authorized(a, rq->authorization)) {
		reply_error(rp, 401, "a bearer token is wanted (Authorization: Bearer TOKEN)");
		return;
	}
	if (rq->body_over) {
		reply_error(rp, 413, "the body is over %zu bytes", a->max_body);
		return;
	}
	if (strcmp(p, "/v1/events") == 0) {
		int64_t job = 0;
		char *text = NULL;
		bool missing = false;

		if (!method_is(rq, "GET")) {
			not_allowed(rp, "GET");
			return;
		}
		if (rq->job != NULL && (job = parse_id(rq->job, strlen(rq->job))) <= 0) {
			reply_error(rp, 400, "job= wants a job's id");
			return;
		}
		if (job > 0 && status_text(a, job, &text, &missing, &err) < 0) {
			reply_queue_error(rp, &err);
			return;
		}
		free(text);
		if (missing) {
			reply_error(rp, 404, "no job %" PRId64, job);
			return;
		}
		rp->status = 200;
		rp->type = "text/event-stream";
		rp->events = true;
		rp->events_job = job;
		return;
	}
	if (strcmp(p, "/metrics") == 0) {
		if (method_is(rq, "GET"))
			get_metrics(a, rp);
		else
			not_allowed(rp, "GET");
	} else if (strcmp(p, "/v1/jobs") == 0) {
		if (method_is(rq, "GET") || method_is(rq, "HEAD")) {
			reply_status(a, 0, rp);
		} else if (method_is(rq, "POST")) {
			if (!rq->secure) {
				reply_error(rp, 403, "a job carries passwords: submit it over TLS "
					    "(serve --tls-cert) or from this host");
				return;
			}
			if ((q = take(a, &err)) == NULL) {
				reply_queue_error(rp, &err);
				return;
			}
			post_job(q, rq, rp);
			give(a, q);
			cache_drop(a);
		} else {
			not_allowed(rp, "GET, POST");
		}
	} else if (strncmp(p, "/v1/jobs/", 9) == 0) {
		job_routes(a, rq, p + 9, rp);
	} else {
		reply_error(rp, 404, "no such route");
	}
}

int api_snapshot(struct api *a, int64_t job, char **json_r, bool *gone_r)
{
	struct tr_error err;

	tr_error_clear(&err);
	return status_text(a, job, json_r, gone_r, &err);
}

int api_tick(struct api *a, int *n_started, struct tr_error *err)
{
	struct queue *q;
	int r;

	*n_started = 0;
	if ((q = take(a, err)) == NULL)
		return -1;
	r = queue_schedule(q, n_started, err);
	give(a, q);
	if (r == 0 && *n_started > 0)
		cache_drop(a);
	return r;
}
