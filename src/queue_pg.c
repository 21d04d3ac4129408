/* queue_pg: the queue in PostgreSQL, shared by many workers on many hosts
 * (the backend "postgresql" of queue.h; what it keeps: queue_backend.h). */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "account.h"
#include "log.h"
#include "pg.h"
#include "pg_schema.h"
#include "queue.h"
#include "queue_backend.h"
#include "queue_status.h"
#include "report.h"
#include "secret.h"
#include "text.h"
#include "verify.h"

/* Accounts per INSERT at submit, and per UPDATE at rekey: one round trip
 * per batch, not per account (20,000 accounts over a WAN link). */
#define BATCH_ROWS 500

struct qpg {
	struct pg *pg;
	const struct seal_keys *keys;
};

static int oom(struct tr_error *err)
{
	tr_error_set(err, TR_ERR_LOCAL, "out of memory");
	return -1;
}

/* ---- helpers ------------------------------------------------------------------ */

static char *hex_of(const unsigned char *p, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	char *s = malloc(2 * n + 1);
	size_t i;

	if (s == NULL)
		return NULL;
	for (i = 0; i < n; i++) {
		s[2 * i] = digits[p[i] >> 4];
		s[2 * i + 1] = digits[p[i] & 15];
	}
	s[2 * n] = '\0';
	return s;
}

/* A bytea field (text format) as bytes; *v NULL for SQL NULL.  Returns -1
 * when out of memory. */
static int bytea_get(const PGresult *r, int row, int col, unsigned char **v, size_t *len)
{
	unsigned char *u, *copy;
	size_t n;

	*v = NULL;
	*len = 0;
	if (PQgetisnull(r, row, col))
		return 0;
	u = PQunescapeBytea((const unsigned char *)PQgetvalue(r, row, col), &n);
	if (u == NULL)
		return -1;
	/* ours to free with free(), and one byte more for a NUL */
	copy = malloc(n + 1);
	if (copy != NULL) {
		memcpy(copy, u, n);
		copy[n] = '\0';
	}
	PQfreemem(u);
	if (copy == NULL)
		return -1;
	*v = copy;
	*len = n;
	return 0;
}

/* A bytea field that holds text (an address, a login): NUL-terminated,
 * NULL for SQL NULL; *bad set when out of memory. */
static char *bytea_str(const PGresult *r, int row, int col, bool *bad)
{
	unsigned char *v;
	size_t n;

	if (bytea_get(r, row, col, &v, &n) < 0) {
		*bad = true;
		return NULL;
	}
	return (char *)v;
}

/* Seal plain for its place, as hex for a JSON batch; NULL plain gives a
 * JSON null. */
static json_t *sealed_hex(const struct seal_keys *k, const char *aad, const char *plain,
			  struct tr_error *err)
{
	unsigned char *s;
	size_t n;
	char *h;
	json_t *j;

	if (plain == NULL)
		return json_null();
	if (seal(k, aad, plain, &s, &n, err) < 0)
		return NULL;
	h = hex_of(s, n);
	free(s);
	if (h == NULL) {
		oom(err);
		return NULL;
	}
	j = json_string(h);
	free(h);
	if (j == NULL)
		oom(err);
	return j;
}

static json_t *bytes_hex(const char *s)
{
	char *h;
	json_t *j;

	if (s == NULL)
		return json_null();
	h = hex_of((const unsigned char *)s, strlen(s));
	if (h == NULL)
		return NULL;
	j = json_string(h);
	free(h);
	return j;
}

static void id_text(char *buf, size_t len, int64_t id)
{
	snprintf(buf, len, "%" PRId64, id);
}

/* SQL: the row's claim verifies (its copy's counters and error stay). */
#define VERIFYING "(a.pass IN ('verify', 'final-verify'))"

/* ---- open --------------------------------------------------------------------- */

static void qpg_close(void *h);

static int qpg_open(const char *dsn, const struct seal_keys *keys, void **h_r,
		    struct tr_error *err)
{
	struct qpg *q = calloc(1, sizeof(*q));

	*h_r = NULL;
	if (q == NULL)
		return oom(err);
	if (pg_connect(dsn, &q->pg, err) < 0 || pg_schema_check(q->pg, err) < 0) {
		qpg_close(q);
		return -1;
	}
	q->keys = keys;
	*h_r = q;
	return 0;
}

static void qpg_close(void *h)
{
	struct qpg *q = h;

	if (q == NULL)
		return;
	pg_close(q->pg);
	free(q);
}

static const char *qpg_where(void *h)
{
	const struct qpg *q = h;

	return pg_where(q->pg);
}

/* `queue init`: the tables of the whole database (pg_schema.c: the
 * state's and the caps' too). */
static int qpg_init(const char *dsn, int *from_r, int *version_r, struct tr_error *err)
{
	struct pg *pg = NULL;
	int r;

	*version_r = pg_schema_version();
	r = pg_connect(dsn, &pg, err) < 0 || pg_schema_init(pg, from_r, err) < 0 ? -1 : 0;
	pg_close(pg);
	return r;
}

static int need_keys(const struct qpg *q, struct tr_error *err)
{
	if (q->keys != NULL)
		return 0;
	tr_error_set(err, TR_ERR_LOCAL, "the queue was opened without a key file");
	return -1;
}

static int qpg_outstanding(void *h, int64_t *n_r, struct tr_error *err)
{
	struct qpg *q = h;
	PGresult *r = pg_exec(q->pg, "SELECT count(*) FROM q_accounts a JOIN q_jobs j "
			      "ON j.id = a.job_id WHERE j.cancelled IS NULL AND "
			      "(a.state = 'running' OR (a.state = 'pending' AND "
			      "(a.not_before IS NULL OR a.not_before <= now() + "
			      "make_interval(secs => " QUEUE_DRAIN_HORIZON_TEXT "))))", 0, NULL, err);

	*n_r = 0;
	if (r == NULL)
		return -1;
	*n_r = pg_int(r, 0, 0);
	PQclear(r);
	return 0;
}

static int qpg_job_id(void *h, const char *job, int64_t *id_r, struct tr_error *err)
{
	struct qpg *q = h;
	const char *p[1] = { job };
	PGresult *r;
	int64_t n;

	*id_r = 0;
	if (queue_job_number(job, &n)) {
		r = pg_exec(q->pg, "SELECT id FROM q_jobs WHERE id = $1::bigint", 1, p, err);
		if (r == NULL)
			return -1;
		if (PQntuples(r) == 1)
			*id_r = pg_int(r, 0, 0);
		PQclear(r);
		if (*id_r > 0)
			return 0;
	}
	r = pg_exec(q->pg, "SELECT id FROM q_jobs WHERE name = $1 ORDER BY id DESC LIMIT 1", 1, p,
		    err);
	if (r == NULL)
		return -1;
	if (PQntuples(r) == 1)
		*id_r = pg_int(r, 0, 0);
	PQclear(r);
	if (*id_r > 0)
		return 0;
	return queue_no_job(job, pg_where(q->pg), err);
}

/* ---- submit ------------------------------------------------------------------- */

/* Accounts [from, to) of ja as one INSERT (their passwords sealed). */
static int insert_accounts(struct qpg *q, int64_t job, const struct job_accounts *ja,
			   size_t from, size_t to, struct tr_error *err)
{
	json_t *rows = json_array();
	char idbuf[32], aad[1400], *doc = NULL;
	const char *p[2];
	bool ok = rows != NULL;
	size_t i;
	int r = -1;

	id_text(idbuf, sizeof(idbuf), job);
	for (i = from; ok && i < to; i++) {
		const struct job_account *a = &ja->v[i];
		json_t *o = json_object(), *pw, *dpw;

		queue_aad(aad, sizeof(aad), job, a->email, "password");
		pw = sealed_hex(q->keys, aad, a->password, err);
		queue_aad(aad, sizeof(aad), job, a->email, "dst_password");
		dpw = pw != NULL ? sealed_hex(q->keys, aad, a->dst_password, err) : NULL;
		if (pw == NULL || dpw == NULL) {
			json_decref(pw);
			json_decref(o);
			json_decref(rows);
			return -1;
		}
		report_json_set(o, "l", json_integer(a->line), &ok);
		report_json_set(o, "e", bytes_hex(a->email), &ok);
		report_json_set(o, "su", bytes_hex(a->src_user), &ok);
		report_json_set(o, "du", bytes_hex(a->dst_user), &ok);
		report_json_set(o, "p", pw, &ok);
		report_json_set(o, "dp", dpw, &ok);
		report_json_append(rows, o, &ok);
	}
	if (ok)
		doc = json_dumps(rows, JSON_COMPACT);
	json_decref(rows);
	if (doc == NULL)
		return oom(err);
	p[0] = idbuf;
	p[1] = doc;
	r = pg_run(q->pg,
		   "INSERT INTO q_accounts (job_id, line, email, src_user, dst_user, password, "
		   "dst_password) SELECT $1::bigint, x.l, decode(x.e, 'hex'), decode(x.su, 'hex'), "
		   "decode(x.du, 'hex'), decode(x.p, 'hex'), decode(x.dp, 'hex') "
		   "FROM json_to_recordset($2::json) AS x(l integer, e text, su text, du text, "
		   "p text, dp text) ORDER BY x.l",
		   2, p, err);
	free(doc);
	return r;
}

/* A job checked and made ready by queue_submit (queue.c). */
static int qpg_submit(void *h, const struct queue_new_job *nj, int64_t *id_r,
		      struct tr_error *err)
{
	struct qpg *q = h;
	const struct job_config *cfg = nj->cfg;
	const struct job_accounts *ja = nj->ja;
	const char *config = nj->config, *jname = nj->name, *src = nj->src, *dst = nj->dst,
		   *skipped = nj->skipped, *admin_password = nj->admin_password;
	char idbuf[32], aad[64], n1[16], n2[16];
	PGresult *r;
	int64_t id = 0;
	size_t i;

	*id_r = 0;
	if (pg_begin(q->pg, err) < 0)
		return -1;
	{
		const char *p[5] = { jname, config, src, dst, skipped };

		r = pg_exec(q->pg, "INSERT INTO q_jobs (name, config, src, dst, skipped) "
			    "VALUES ($1, $2, $3, $4, $5) RETURNING id", 5, p, err);
		if (r == NULL)
			goto fail;
		id = pg_int(r, 0, 0);
		PQclear(r);
	}
	id_text(idbuf, sizeof(idbuf), id);
	for (int k = 0; k < 2; k++) {
		const char *pw = k == 0 ? admin_password : nj->src_admin_password;
		unsigned char *s;
		size_t n;
		const char *p[2] = { idbuf, NULL };
		int lens[2] = { 0, 0 };
		char sql[96];

		if (pw == NULL)
			continue;
		queue_aad(aad, sizeof(aad), id, NULL, queue_admin_cols[k].aad);
		if (seal(q->keys, aad, pw, &s, &n, err) < 0)
			goto fail;
		p[1] = (const char *)s;
		lens[1] = (int)n;
		snprintf(sql, sizeof(sql), "UPDATE q_jobs SET %s = $2 WHERE id = $1::bigint",
			 queue_admin_cols[k].col);
		r = pg_execb(q->pg, sql, 2, p, lens, err);
		free(s);
		if (r == NULL)
			goto fail;
		PQclear(r);
	}
	for (i = 0; i < ja->n; i += BATCH_ROWS)
		if (insert_accounts(q, id, ja, i, i + BATCH_ROWS < ja->n ? i + BATCH_ROWS : ja->n,
				    err) < 0)
			goto fail;
	{
		const char *p[6] = { idbuf, n1, n2, NULL, NULL, cfg->caps_per_egress ? "t" : "f" };
		char n3[16], n4[16];

		snprintf(n1, sizeof(n1), "%d", cfg->src_max_per_account);
		snprintf(n2, sizeof(n2), "%d", cfg->src_max_connections);
		snprintf(n3, sizeof(n3), "%d", cfg->dst_max_per_account);
		snprintf(n4, sizeof(n4), "%d", cfg->dst_max_connections);
		p[3] = n3;
		p[4] = n4;
		if (pg_run(q->pg, "INSERT INTO q_caps (job_id, side, max_per_account, max_total, "
			   "per_egress) VALUES ($1::bigint, 'src', $2::int, $3::int, $6::boolean), "
			   "($1::bigint, 'dst', $4::int, $5::int, $6::boolean)", 6, p, err) < 0)
			goto fail;
	}
	if (pg_commit(q->pg, err) < 0)
		goto fail;
	*id_r = id;
	return 0;
fail:
	pg_rollback(q->pg);
	return -1;
}

/* ---- claims ------------------------------------------------------------------- */

/* Open the sealed password in column col of row 0 for its place. */
static int open_pw(struct qpg *q, const PGresult *r, int col, int64_t job, const char *email,
		   const char *what, char **out, struct tr_error *err)
{
	unsigned char *v;
	size_t n;
	char aad[1400];
	int rc;

	*out = NULL;
	if (bytea_get(r, 0, col, &v, &n) < 0)
		return oom(err);
	if (v == NULL)
		return 0;
	queue_aad(aad, sizeof(aad), job, email, what);
	rc = unseal(q->keys, aad, v, n, out, err);
	free(v);
	return rc;
}

static int qpg_claim(void *h, const char *worker, int lease_s, struct queue_claim *c,
		struct tr_error *err)
{
	struct qpg *q = h;
	char lease[16];
	const char *p[2] = { worker, lease };
	PGresult *r;
	bool bad = false;
	char *label;

	memset(c, 0, sizeof(*c));
	if (need_keys(q, err) < 0)
		return -1;
	snprintf(lease, sizeof(lease), "%d", lease_s > 0 ? lease_s : 1);
	/* in a transaction: the row stays locked (and others skip it) until
	 * its passwords opened; a worker whose key file cannot open them
	 * leaves it as it was */
	/* no sort: the planner, misled by the statistics of a table that
	 * just got 20,000 pending rows, would sort them all for every claim
	 * (30 ms) instead of walking q_accounts_todo to the first fit */
	if (pg_begin(q->pg, err) < 0 ||
	    pg_run(q->pg, "SET LOCAL enable_sort = off", 0, NULL, err) < 0)
		goto fail;
	r = pg_exec(q->pg,
		    "UPDATE q_accounts a SET state = 'running', worker = $1, "
		    "  lease_until = now() + make_interval(secs => $2::int), "
		    "  attempts = a.attempts + 1, "
		    "  takeovers = a.takeovers + CASE WHEN a.state = 'running' THEN 1 ELSE 0 END, "
		    "  started = now(), finished = NULL, not_before = NULL, "
		    /* a verify keeps what the last copy says until it ends */
		    "  error = CASE WHEN " VERIFYING " THEN a.error END, "
		    "  copied = CASE WHEN " VERIFYING " THEN a.copied ELSE 0 END, "
		    "  present = CASE WHEN " VERIFYING " THEN a.present ELSE 0 END, "
		    "  failed_msgs = CASE WHEN " VERIFYING " THEN a.failed_msgs ELSE 0 END, "
		    "  bytes = CASE WHEN " VERIFYING " THEN a.bytes ELSE 0 END, "
		    "  folders_done = CASE WHEN " VERIFYING " THEN a.folders_done ELSE 0 END, "
		    "  folders_total = CASE WHEN " VERIFYING " THEN a.folders_total ELSE 0 END, "
		    "  seconds = CASE WHEN " VERIFYING " THEN a.seconds ELSE 0 END "
		    /* the partial index q_accounts_todo in its order, stopping
		     * at the first row that fits; the cancelled jobs as a
		     * hashed list, not a join */
		    "FROM (SELECT c.id, c.state AS was FROM q_accounts c "
		    "      WHERE c.state IN ('pending', 'running') "
		    "        AND ((c.state = 'pending' AND (c.not_before IS NULL OR "
		    "              c.not_before <= now())) "
		    "          OR (c.state = 'running' AND c.lease_until < now())) "
		    "        AND c.job_id NOT IN (SELECT j.id FROM q_jobs j "
		    "                             WHERE j.cancelled IS NOT NULL) "
		    "      ORDER BY c.job_id, c.id FOR UPDATE OF c SKIP LOCKED LIMIT 1) s "
		    "WHERE a.id = s.id "
		    "RETURNING a.id, a.job_id, a.line, a.email, a.src_user, a.dst_user, a.password, "
		    "  a.dst_password, a.attempts, s.was = 'running', a.pass",
		    2, p, err);
	if (r == NULL)
		goto fail;
	if (PQntuples(r) == 0) {
		PQclear(r);
		pg_rollback(q->pg);
		return 0;
	}
	c->row = pg_int(r, 0, 0);
	c->job_id = pg_int(r, 0, 1);
	c->line = (unsigned)pg_int(r, 0, 2);
	c->email = bytea_str(r, 0, 3, &bad);
	c->src_user = bytea_str(r, 0, 4, &bad);
	c->dst_user = bytea_str(r, 0, 5, &bad);
	c->attempts = (int)pg_int(r, 0, 8);
	c->takeover = pg_str(r, 0, 9) != NULL && pg_str(r, 0, 9)[0] == 't';
	c->pass = queue_pass_of(pg_str(r, 0, 10));
	if (bad || c->email == NULL) {
		PQclear(r);
		oom(err);
		goto fail;
	}
	if (open_pw(q, r, 6, c->job_id, c->email, "password", &c->password, err) < 0 ||
	    open_pw(q, r, 7, c->job_id, c->email, "dst_password", &c->dst_password, err) < 0) {
		PQclear(r);
		label = text_clean_dup(c->email, NULL);
		tr_error_prefix(err, "job %" PRId64 ", %s", c->job_id, label ? label : "?");
		free(label);
		goto fail;
	}
	PQclear(r);
	/* a job whose logins take no CSV password (OAuth2, admins) stores its
	 * accounts without one: the account gets "", which no server takes
	 * should a side still want a password */
	if (c->password == NULL && (c->password = strdup("")) == NULL) {
		oom(err);
		goto fail;
	}
	if (pg_commit(q->pg, err) < 0)
		goto fail;
	return 1;
fail:
	pg_rollback(q->pg);
	queue_claim_free(c);
	return -1;
}

static int qpg_job_config(void *h, int64_t job_id, char **config_r, char **admin_pw_r,
			  char **src_admin_pw_r, struct tr_error *err)
{
	struct qpg *q = h;
	char idbuf[32];
	const char *p[1] = { idbuf };
	char **out[2] = { admin_pw_r, src_admin_pw_r };
	PGresult *r;
	int rc = 0;

	*config_r = NULL;
	*admin_pw_r = NULL;
	*src_admin_pw_r = NULL;
	id_text(idbuf, sizeof(idbuf), job_id);
	r = pg_exec(q->pg, "SELECT config, admin_password, src_admin_password FROM q_jobs "
		    "WHERE id = $1::bigint", 1, p, err);
	if (r == NULL)
		return -1;
	if (PQntuples(r) != 1) {
		PQclear(r);
		tr_error_set(err, TR_ERR_LOCAL, "job %" PRId64 " is no longer in the queue", job_id);
		return -1;
	}
	for (int k = 0; rc == 0 && k < 2; k++) {
		if (PQgetisnull(r, 0, 1 + k))
			continue;
		rc = need_keys(q, err);
		if (rc == 0)
			rc = open_pw(q, r, 1 + k, job_id, NULL, queue_admin_cols[k].aad, out[k], err);
	}
	if (rc == 0 && (*config_r = strdup(pg_str(r, 0, 0))) == NULL)
		rc = oom(err);
	if (rc < 0) {
		secret_free(*admin_pw_r);
		secret_free(*src_admin_pw_r);
		*admin_pw_r = *src_admin_pw_r = NULL;
		tr_error_prefix(err, "job %" PRId64, job_id);
	}
	PQclear(r);
	return rc;
}

/* {1,2,3} */
static char *id_array(const int64_t *v, size_t n)
{
	char *s = malloc(n * 21 + 3), *o;
	size_t i;

	if (s == NULL)
		return NULL;
	o = s;
	*o++ = '{';
	for (i = 0; i < n; i++)
		o += sprintf(o, "%s%" PRId64, i > 0 ? "," : "", v[i]);
	*o++ = '}';
	*o = '\0';
	return s;
}

static int qpg_renew(void *h, const char *worker, int lease_s, const int64_t *held,
		size_t n_held, int64_t **lost_r, size_t *n_lost_r, struct tr_error *err)
{
	struct qpg *q = h;
	char lease[16], *arr = id_array(held, n_held);
	const char *p[3] = { worker, lease, arr };
	PGresult *r;
	int i, n;

	*lost_r = NULL;
	*n_lost_r = 0;
	if (arr == NULL)
		return oom(err);
	snprintf(lease, sizeof(lease), "%d", lease_s > 0 ? lease_s : 1);
	/* one statement, one round trip per heartbeat: the worker's row, its
	 * accounts of cancelled jobs (cancelled now: it stops them), the
	 * leases of the others it still runs (held: a row it could not give
	 * back while the database was away is no longer renewed, and expires
	 * for another claim), and what of held is no longer its own */
	r = pg_exec(q->pg,
		    "WITH w AS (UPDATE q_workers SET seen = now() WHERE id = $1), "
		    "c AS (UPDATE q_accounts a SET state = 'cancelled', lease_until = NULL, "
		    "        finished = now() FROM q_jobs j "
		    "      WHERE j.id = a.job_id AND j.cancelled IS NOT NULL AND a.worker = $1 "
		    "        AND a.state = 'running' RETURNING a.id), "
		    "r AS (UPDATE q_accounts a SET lease_until = now() + make_interval(secs => $2::int) "
		    "      WHERE a.worker = $1 AND a.state = 'running' AND a.id = ANY($3::bigint[]) "
		    "        AND NOT EXISTS (SELECT 1 "
		    "        FROM q_jobs j WHERE j.id = a.job_id AND j.cancelled IS NOT NULL) "
		    "      RETURNING a.id) "
		    "SELECT h FROM unnest($3::bigint[]) AS h WHERE h NOT IN (SELECT id FROM r)",
		    3, p, err);
	free(arr);
	if (r == NULL)
		return -1;
	n = PQntuples(r);
	if (n > 0) {
		*lost_r = calloc((size_t)n, sizeof(**lost_r));
		if (*lost_r == NULL) {
			PQclear(r);
			return oom(err);
		}
		for (i = 0; i < n; i++)
			(*lost_r)[i] = pg_int(r, i, 0);
		*n_lost_r = (size_t)n;
	}
	PQclear(r);
	return 0;
}

static void counts_text(const struct queue_counts *n, char v[8][24])
{
	snprintf(v[6], 24, "%" PRIu32, n->refused[0]);
	snprintf(v[7], 24, "%" PRIu32, n->refused[1]);
	snprintf(v[0], 24, "%" PRIu64, n->copied);
	snprintf(v[1], 24, "%" PRIu64, n->present);
	snprintf(v[2], 24, "%" PRIu64, n->failed);
	snprintf(v[3], 24, "%" PRIu64, n->bytes);
	snprintf(v[4], 24, "%" PRIu32, n->folders_done);
	snprintf(v[5], 24, "%" PRIu32, n->folders_total);
}

static int qpg_progress(void *h, const char *worker, int64_t row,
		   const struct queue_counts *n, struct tr_error *err)
{
	struct qpg *q = h;
	char idbuf[32], v[8][24];
	const char *p[10] = { idbuf, worker, v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7] };

	id_text(idbuf, sizeof(idbuf), row);
	counts_text(n, v);
	/* the refusals count while it verifies too; the counters are its
	 * last copy's then */
	if ((n->refused[0] > 0 || n->refused[1] > 0) &&
	    pg_run(q->pg, "UPDATE q_accounts SET refused_src = refused_src + $3::bigint, "
		   "refused_dst = refused_dst + $4::bigint WHERE id = $1::bigint AND worker = $2 "
		   "AND state = 'running'", 4, (const char *[]){ idbuf, worker, v[6], v[7] },
		   err) < 0)
		return -1;
	return pg_run(q->pg, "UPDATE q_accounts SET copied = $3::bigint, present = $4::bigint, "
		      "failed_msgs = $5::bigint, bytes = $6::bigint, folders_done = $7::int, "
		      "folders_total = $8::int WHERE id = $1::bigint AND worker = $2 "
		      "AND state = 'running' AND pass NOT IN ('verify', 'final-verify')", 8, p, err);
}

/* 1 when the statement changed a row, 0 when not, -1 on error. */
static int changed(struct qpg *q, const char *sql, int n, const char *const *p,
		   struct tr_error *err)
{
	PGresult *r = pg_exec(q->pg, sql, n, p, err);
	int rows;

	if (r == NULL)
		return -1;
	rows = atoi(PQcmdTuples(r));
	PQclear(r);
	return rows > 0 ? 1 : 0;
}

/* The folders (JSON for json_to_recordset) and the failed messages (the
 * first QUEUE_FAILURES_KEPT) of res, and how many failed messages are not
 * listed.  res NULL: none.  Returns 0, or -1 out of memory. */
static int detail_docs(const struct account_result *res, char **folders_r, char **failures_r,
		       uint64_t *more_r)
{
	json_t *fl = json_array(), *fa = json_array();
	bool ok = fl != NULL && fa != NULL;
	size_t i, k, kept = 0;

	*folders_r = *failures_r = NULL;
	*more_r = 0;
	for (i = 0; ok && res != NULL && i < res->n_folders; i++) {
		const struct folder_report *fr = &res->folders[i];
		json_t *o = json_object();

		report_json_set(o, "i", json_integer((json_int_t)i), &ok);
		report_json_set(o, "s", bytes_hex(fr->src_name != NULL ? fr->src_name : ""), &ok);
		report_json_set(o, "d", bytes_hex(fr->dst_name != NULL ? fr->dst_name : ""), &ok);
		report_json_set(o, "st", json_string(fr->failed ? "failed" : "ok"), &ok);
		report_json_set(o, "c", json_integer(fr->counts.copied), &ok);
		report_json_set(o, "p", json_integer(fr->counts.present), &ok);
		report_json_set(o, "f", json_integer(fr->counts.failed), &ok);
		report_json_set(o, "b", json_integer((json_int_t)fr->counts.bytes), &ok);
		report_json_set(o, "e", fr->failed ? report_json_text(fr->error != NULL ?
								      fr->error : "") : json_null(), &ok);
		report_json_append(fl, o, &ok);
		for (k = 0; ok && k < fr->failures.n && kept < QUEUE_FAILURES_KEPT; k++, kept++) {
			json_t *m = json_object();

			report_json_set(m, "n", json_integer((json_int_t)kept), &ok);
			report_json_set(m, "f", bytes_hex(fr->src_name != NULL ? fr->src_name : ""),
					&ok);
			report_json_set(m, "u", json_integer(fr->failures.v[k].uid), &ok);
			report_json_set(m, "r", report_json_text(fr->failures.v[k].reply), &ok);
			report_json_append(fa, m, &ok);
		}
	}
	if (ok && res != NULL && res->total.failed > kept)
		*more_r = res->total.failed - kept;
	if (ok) {
		*folders_r = json_dumps(fl, JSON_COMPACT);
		*failures_r = json_dumps(fa, JSON_COMPACT);
	}
	json_decref(fl);
	json_decref(fa);
	if (*folders_r == NULL || *failures_r == NULL) {
		free(*folders_r);
		free(*failures_r);
		*folders_r = *failures_r = NULL;
		return -1;
	}
	return 0;
}

/* After an outcome (copy or verify) of row, inside its transaction: the
 * next step of a final pass.  A final pass's copy that did not fail goes
 * on to its verify; an account that ran something else while the job got
 * its final pass goes on to that pass. */
static int final_next(struct qpg *q, const char *idbuf, struct tr_error *err)
{
	const char *p[1] = { idbuf };

	return pg_run(q->pg, "UPDATE q_accounts a SET state = 'pending', worker = NULL, "
		      "not_before = NULL, attempts = 0, "
		      "pass = CASE WHEN a.pass = 'final' THEN 'final-verify' ELSE 'final' END "
		      "FROM q_jobs j WHERE a.id = $1::bigint AND j.id = a.job_id AND j.final "
		      "AND j.cancelled IS NULL AND (a.pass IN ('run', 'delta', 'verify') OR "
		      "(a.pass = 'final' AND a.state <> 'failed'))", 1, p, err);
}

static int qpg_finish(void *h, const char *worker, int64_t row, const char *status,
		 const char *error, const char *error_kind, const struct queue_counts *n,
		 double seconds, const struct account_result *res, struct tr_error *err)
{
	struct qpg *q = h;
	char idbuf[32], v[8][24], secs[32], more[24], *folders = NULL, *failures = NULL;
	const char *p[15] = { idbuf, worker, status, error, v[0], v[1], v[2], v[3], v[4], v[5],
			      secs, more, error_kind, v[6], v[7] };
	const char *pd[2] = { idbuf, NULL };
	uint64_t n_more;
	int r;

	if (status == NULL || (strcmp(status, "ok") != 0 && strcmp(status, "partial") != 0 &&
			       strcmp(status, "failed") != 0)) {
		tr_error_set(err, TR_ERR_LOCAL, "queue_finish: not an outcome: %s",
			     status != NULL ? status : "(null)");
		return -1;
	}
	if (detail_docs(res, &folders, &failures, &n_more) < 0)
		return oom(err);
	id_text(idbuf, sizeof(idbuf), row);
	counts_text(n, v);
	snprintf(secs, sizeof(secs), "%.3f", seconds >= 0 ? seconds : 0);
	snprintf(more, sizeof(more), "%" PRIu64, n_more);
	if (pg_begin(q->pg, err) < 0)
		goto fail;
	/* the lease may have run out: the outcome still counts while nobody
	 * took the account over (it is still running, as this worker's) */
	r = changed(q, "UPDATE q_accounts SET state = $3, error = $4, outcome = $3, "
		    "outcome_error = $4, copied = $5::bigint, "
		    "present = $6::bigint, failed_msgs = $7::bigint, bytes = $8::bigint, "
		    "folders_done = $9::int, folders_total = $10::int, "
		    "seconds = $11::double precision, failures_more = $12::bigint, "
		    "error_kind = $13, outcome_kind = $13, "
		    "refused_src = refused_src + $14::bigint, refused_dst = refused_dst + $15::bigint, "
		    "finished = now(), lease_until = NULL "
		    "WHERE id = $1::bigint AND worker = $2 AND state = 'running'", 15, p, err);
	if (r <= 0) {
		pg_rollback(q->pg);
		free(folders);
		free(failures);
		return r;
	}
	/* this copy's folders and failures replace the last copy's */
	if (pg_run(q->pg, "DELETE FROM q_folders WHERE account_id = $1::bigint", 1, pd, err) < 0 ||
	    pg_run(q->pg, "DELETE FROM q_failures WHERE account_id = $1::bigint", 1, pd, err) < 0)
		goto fail;
	pd[1] = folders;
	if (strcmp(folders, "[]") != 0 &&
	    pg_run(q->pg, "INSERT INTO q_folders (account_id, idx, src_name, dst_name, status, "
		   "copied, present, failed_msgs, bytes, error) SELECT $1::bigint, x.i, "
		   "decode(x.s, 'hex'), decode(x.d, 'hex'), x.st, x.c, x.p, x.f, x.b, x.e "
		   "FROM json_to_recordset($2::json) AS x(i integer, s text, d text, st text, "
		   "c bigint, p bigint, f bigint, b bigint, e text)", 2, pd, err) < 0)
		goto fail;
	pd[1] = failures;
	if (strcmp(failures, "[]") != 0 &&
	    pg_run(q->pg, "INSERT INTO q_failures (account_id, n, folder, uid, reply) "
		   "SELECT $1::bigint, x.n, decode(x.f, 'hex'), x.u, x.r "
		   "FROM json_to_recordset($2::json) AS x(n integer, f text, u bigint, r text)",
		   2, pd, err) < 0)
		goto fail;
	if (final_next(q, idbuf, err) < 0 || pg_commit(q->pg, err) < 0)
		goto fail;
	free(folders);
	free(failures);
	return 1;
fail:
	pg_rollback(q->pg);
	free(folders);
	free(failures);
	return -1;
}

static int qpg_verify_finish(void *h, const char *worker, int64_t row,
			const struct verify_item *it, struct tr_error *err)
{
	struct qpg *q = h;
	bool failed = it->err.kind != TR_ERR_NONE;
	char idbuf[32], why[sizeof(it->err.msg) + 16], *doc = queue_verify_doc(it), *clean;
	const char *p[7] = { idbuf, worker, !failed && it->missing == 0 ? "t" : "f", doc,
			     failed ? "t" : "f", NULL, tr_error_kind_name(it->err.kind) };
	int r;

	if (doc == NULL)
		return oom(err);
	clean = failed ? text_clean_dup(it->err.msg, NULL) : NULL;
	if (failed) {
		snprintf(why, sizeof(why), "verify: %s", clean != NULL ? clean : "failed");
		p[5] = why;
	}
	free(clean);
	id_text(idbuf, sizeof(idbuf), row);
	if (pg_begin(q->pg, err) < 0) {
		free(doc);
		return -1;
	}
	/* the state the last copy left, unless the verify could not be done */
	r = changed(q, "UPDATE q_accounts a SET verify_at = now(), verify_exact = $3::boolean, "
		    "verify = $4, "
		    "state = CASE WHEN $5::boolean THEN 'failed' ELSE coalesce(a.outcome, 'ok') END, "
		    "error = CASE WHEN $5::boolean THEN $6 ELSE a.outcome_error END, "
		    "error_kind = CASE WHEN $5::boolean THEN $7 ELSE a.outcome_kind END, "
		    "finished = now(), lease_until = NULL "
		    "WHERE a.id = $1::bigint AND a.worker = $2 AND a.state = 'running'", 7, p, err);
	free(doc);
	if (r > 0 && (final_next(q, idbuf, err) < 0 || pg_commit(q->pg, err) < 0))
		r = -1;
	pg_rollback(q->pg);
	return r;
}

static int qpg_release(void *h, const char *worker, int64_t row, int delay_s,
		  struct tr_error *err)
{
	struct qpg *q = h;
	char idbuf[32], delay[16];
	const char *p[3] = { idbuf, worker, delay };

	id_text(idbuf, sizeof(idbuf), row);
	snprintf(delay, sizeof(delay), "%d", delay_s > 0 ? delay_s : 0);
	return changed(q, "UPDATE q_accounts SET state = 'pending', worker = NULL, "
		       "lease_until = NULL, not_before = now() + make_interval(secs => $3::int) "
		       "WHERE id = $1::bigint AND worker = $2 AND state = 'running'", 3, p,
		       err) < 0 ? -1 : 0;
}

static int qpg_worker_register(void *h, const char *worker, const char *host, int pid,
			  const char *egress, int parallel, struct tr_error *err)
{
	struct qpg *q = h;
	char pidbuf[16], par[16];
	const char *p[5] = { worker, host, pidbuf, egress != NULL ? egress : "", par };

	snprintf(pidbuf, sizeof(pidbuf), "%d", pid);
	snprintf(par, sizeof(par), "%d", parallel);
	return pg_run(q->pg, "INSERT INTO q_workers (id, host, pid, egress, parallel) "
		      "VALUES ($1, $2, $3::int, $4, $5::int) ON CONFLICT (id) DO UPDATE SET "
		      "host = $2, pid = $3::int, egress = $4, parallel = $5::int, seen = now(), "
		      "stopped = NULL", 5, p, err);
}

static int qpg_worker_stopped(void *h, const char *worker, struct tr_error *err)
{
	struct qpg *q = h;
	const char *p[1] = { worker };

	return pg_run(q->pg, "UPDATE q_workers SET stopped = now(), seen = now() WHERE id = $1",
		      1, p, err);
}

/* ---- operators ---------------------------------------------------------------- */

static int qpg_retry(void *h, const char *job, bool failed_only, int *n_r,
		struct tr_error *err)
{
	struct qpg *q = h;
	char idbuf[32];
	const char *p[1] = { idbuf };
	int64_t id;
	PGresult *r;

	*n_r = 0;
	if (qpg_job_id(q, job, &id, err) < 0)
		return -1;
	id_text(idbuf, sizeof(idbuf), id);
	if (pg_begin(q->pg, err) < 0)
		return -1;
	/* a retried job is not cancelled any more: its accounts run again */
	if (pg_run(q->pg, "UPDATE q_jobs SET cancelled = NULL WHERE id = $1::bigint", 1, p,
		   err) < 0)
		goto fail;
	/* each repeats what failed: a verify that could not be done, else a
	 * copy (a final pass's, with its verify, once the job had one) */
#define RETRY_SET \
	"UPDATE q_accounts SET state = 'pending', worker = NULL, lease_until = NULL, " \
	"not_before = NULL, pass = CASE " \
	"  WHEN pass IN ('verify', 'final-verify') AND state = 'failed' " \
	"    AND outcome IS DISTINCT FROM 'failed' THEN pass " \
	"  WHEN pass IN ('final', 'final-verify') THEN 'final' " \
	"  WHEN pass = 'verify' THEN 'delta' ELSE pass END "
	r = pg_exec(q->pg, failed_only ?
		    RETRY_SET "WHERE job_id = $1::bigint AND state IN ('failed', 'partial')" :
		    RETRY_SET "WHERE job_id = $1::bigint AND state <> 'running'", 1, p, err);
#undef RETRY_SET
	if (r == NULL)
		goto fail;
	*n_r = atoi(PQcmdTuples(r));
	PQclear(r);
	if (pg_commit(q->pg, err) < 0)
		goto fail;
	return 0;
fail:
	pg_rollback(q->pg);
	return -1;
}

/* ---- passes ------------------------------------------------------------------- */

/* Start a pass of kind (delta, verify or final) of job idbuf, inside the
 * caller's transaction, the job's row locked.  *n_r: accounts covered. */
static int start_pass(struct qpg *q, const char *idbuf, const char *kind, int *n_r,
		      struct tr_error *err)
{
	const char *p[2] = { idbuf, kind };
	PGresult *r;

	*n_r = 0;
	/* the latest pass, when it is over, becomes the last finished one
	 * (before its accounts' finish times are lost) */
	if (pg_run(q->pg, "UPDATE q_jobs j SET last_pass_kind = j.pass_kind, "
		   "last_pass_seconds = greatest(extract(epoch FROM x.fin - "
		   "coalesce(j.pass_started, j.created)), 0) "
		   "FROM (SELECT max(finished) AS fin FROM q_accounts WHERE job_id = $1::bigint "
		   "HAVING count(*) FILTER (WHERE state IN ('pending', 'running')) = 0) x "
		   "WHERE j.id = $1::bigint AND x.fin IS NOT NULL", 1, p, err) < 0)
		return -1;
	if (strcmp(kind, "final") == 0) {
		/* every account: the finished ones now, the pending ones by
		 * their coming claim, the running ones when their run ends
		 * (final_next) */
		if (pg_run(q->pg, "UPDATE q_accounts SET pass = 'final' WHERE job_id = $1::bigint "
			   "AND state = 'pending' AND pass IN ('run', 'delta', 'verify')", 1, p,
			   err) < 0 ||
		    pg_run(q->pg, "UPDATE q_accounts SET state = 'pending', pass = 'final', "
			   "worker = NULL, lease_until = NULL, not_before = NULL, attempts = 0 "
			   "WHERE job_id = $1::bigint AND state IN ('ok', 'partial', 'failed')", 1, p,
			   err) < 0)
			return -1;
		r = pg_exec(q->pg, "SELECT count(*) FROM q_accounts WHERE job_id = $1::bigint AND "
			    "state <> 'cancelled'", 1, p, err);
	} else {
		r = pg_exec(q->pg, "UPDATE q_accounts SET state = 'pending', pass = $2, "
			    "worker = NULL, lease_until = NULL, not_before = NULL, attempts = 0 "
			    "WHERE job_id = $1::bigint AND state IN ('ok', 'partial', 'failed')", 2, p,
			    err);
	}
	if (r == NULL)
		return -1;
	*n_r = PQresultStatus(r) == PGRES_TUPLES_OK ? (int)pg_int(r, 0, 0) : atoi(PQcmdTuples(r));
	PQclear(r);
	/* a delta or verify that found nothing finished is no pass */
	if (*n_r == 0 && strcmp(kind, "final") != 0)
		return 0;
	return pg_run(q->pg, "UPDATE q_jobs SET pass_kind = $2, pass_count = pass_count + 1, "
		      "pass_started = now(), final = final OR $2 = 'final' WHERE id = $1::bigint",
		      2, p, err);
}

static int qpg_pass(void *h, const char *job, const char *kind, int every_s, int *n_r,
	       struct tr_error *err)
{
	struct qpg *q = h;
	char idbuf[32], every[16];
	const char *p[2] = { idbuf, every };
	int64_t id;
	PGresult *r;
	bool cancelled, final;

	*n_r = 0;
	if (qpg_job_id(q, job, &id, err) < 0)
		return -1;
	id_text(idbuf, sizeof(idbuf), id);
	if (pg_begin(q->pg, err) < 0)
		return -1;
	/* the job's row locked: passes asked at once (and queue_schedule)
	 * take turns */
	r = pg_exec(q->pg, "SELECT cancelled IS NOT NULL, final FROM q_jobs WHERE id = $1::bigint "
		    "FOR UPDATE", 1, p, err);
	if (r == NULL)
		goto fail;
	if (PQntuples(r) != 1) {
		PQclear(r);
		tr_error_set(err, TR_ERR_USAGE, "job %s is no longer in the queue", idbuf);
		goto fail;
	}
	cancelled = pg_str(r, 0, 0)[0] == 't';
	final = pg_str(r, 0, 1)[0] == 't';
	PQclear(r);
	if (cancelled) {
		tr_error_set(err, TR_ERR_USAGE, "job %s is cancelled: `queue retry` it first", idbuf);
		goto fail;
	}
	if (final && (every_s != 0 || (kind != NULL && strcmp(kind, "verify") != 0))) {
		tr_error_set(err, TR_ERR_USAGE, "job %s had its final pass: only a verify pass may "
			     "follow", idbuf);
		goto fail;
	}
	if (every_s != 0) {
		snprintf(every, sizeof(every), "%d", every_s);
		if (pg_run(q->pg, every_s > 0 ?
			   "UPDATE q_jobs SET pass_every = $2::int WHERE id = $1::bigint" :
			   "UPDATE q_jobs SET pass_every = NULL WHERE id = $1::bigint",
			   every_s > 0 ? 2 : 1, p, err) < 0)
			goto fail;
	}
	if (kind != NULL && start_pass(q, idbuf, kind, n_r, err) < 0)
		goto fail;
	if (pg_commit(q->pg, err) < 0)
		goto fail;
	return 0;
fail:
	pg_rollback(q->pg);
	*n_r = 0;
	return -1;
}

/* Due by its own columns (the accounts are looked at once it is locked). */
#define SCHEDULE_DUE \
	"j.pass_every IS NOT NULL AND NOT j.final AND j.cancelled IS NULL AND " \
	"coalesce(j.pass_started, j.created) + make_interval(secs => j.pass_every) <= now()"

static int qpg_schedule(void *h, int *n_started, struct tr_error *err)
{
	struct qpg *q = h;
	PGresult *r;
	int i, n;

	*n_started = 0;
	if (pg_begin(q->pg, err) < 0)
		return -1;
	/* a job another caller holds is that caller's to start (SKIP LOCKED);
	 * once we hold one, the next statement sees everything committed
	 * before: a pass another caller started since is pending accounts */
	r = pg_exec(q->pg, "SELECT j.id FROM q_jobs j WHERE " SCHEDULE_DUE " ORDER BY j.id "
		    "FOR UPDATE SKIP LOCKED", 0, NULL, err);
	if (r == NULL)
		goto fail;
	n = PQntuples(r);
	for (i = 0; i < n; i++) {
		const char *p[1] = { pg_str(r, i, 0) };
		PGresult *d = pg_exec(q->pg, "SELECT 1 FROM q_jobs j WHERE j.id = $1::bigint AND "
				      SCHEDULE_DUE " AND NOT EXISTS (SELECT 1 FROM q_accounts a "
				      "WHERE a.job_id = j.id AND a.state IN ('pending', 'running'))",
				      1, p, err);
		int covered;

		if (d == NULL) {
			PQclear(r);
			goto fail;
		}
		covered = PQntuples(d);
		PQclear(d);
		if (covered == 0)
			continue;
		if (start_pass(q, p[0], "delta", &covered, err) < 0) {
			PQclear(r);
			goto fail;
		}
		if (covered > 0) {
			(*n_started)++;
			log_info(NULL, "job %s: scheduled delta pass started (%d account(s))", p[0],
				 covered);
		}
	}
	PQclear(r);
	if (pg_commit(q->pg, err) < 0)
		goto fail;
	return 0;
fail:
	pg_rollback(q->pg);
	*n_started = 0;
	return -1;
}

static int qpg_cancel(void *h, const char *job, struct tr_error *err)
{
	struct qpg *q = h;
	char idbuf[32];
	const char *p[1] = { idbuf };
	int64_t id;

	if (qpg_job_id(q, job, &id, err) < 0)
		return -1;
	id_text(idbuf, sizeof(idbuf), id);
	if (pg_begin(q->pg, err) < 0)
		return -1;
	/* running accounts are their workers' to stop (queue_renew); those
	 * whose worker is gone (lease out) are cancelled here */
	if (pg_run(q->pg, "UPDATE q_jobs SET cancelled = now() WHERE id = $1::bigint "
		   "AND cancelled IS NULL", 1, p, err) < 0 ||
	    pg_run(q->pg, "UPDATE q_accounts SET state = 'cancelled', lease_until = NULL, "
		   "not_before = NULL WHERE job_id = $1::bigint AND (state = 'pending' OR "
		   "(state = 'running' AND lease_until < now()))", 1, p, err) < 0 ||
	    pg_commit(q->pg, err) < 0) {
		pg_rollback(q->pg);
		return -1;
	}
	return 0;
}

static int qpg_delete(void *h, const char *job, struct tr_error *err)
{
	struct qpg *q = h;
	char idbuf[32];
	const char *p[1] = { idbuf };
	int64_t id;

	if (qpg_job_id(q, job, &id, err) < 0)
		return -1;
	id_text(idbuf, sizeof(idbuf), id);
	/* its accounts, caps and sessions go with it (ON DELETE CASCADE) */
	return pg_run(q->pg, "DELETE FROM q_jobs WHERE id = $1::bigint", 1, p, err);
}

/* Seal one stored value again: JSON hex of the new value into *out (NULL
 * for SQL NULL). */
static int reseal(struct qpg *q, const PGresult *r, int row, int col, const char *aad,
		  json_t **out, struct tr_error *err)
{
	unsigned char *v;
	size_t n;
	char *plain = NULL;

	*out = NULL;
	if (bytea_get(r, row, col, &v, &n) < 0)
		return oom(err);
	if (v == NULL) {
		*out = json_null();
		return 0;
	}
	if (unseal(q->keys, aad, v, n, &plain, err) < 0) {
		free(v);
		return -1;
	}
	free(v);
	*out = sealed_hex(q->keys, aad, plain, err);
	secret_free(plain);
	return *out != NULL ? 0 : -1;
}

static int rekey_accounts(struct qpg *q, int *n_r, struct tr_error *err)
{
	PGresult *r = pg_exec(q->pg, "SELECT id, job_id, email, password, dst_password "
			      "FROM q_accounts WHERE password IS NOT NULL OR dst_password IS NOT "
			      "NULL ORDER BY id FOR UPDATE", 0, NULL, err);
	int i, n, done = 0, rc = 0;
	json_t *rows = NULL;

	if (r == NULL)
		return -1;
	n = PQntuples(r);
	for (i = 0; rc == 0 && i < n; i++) {
		int64_t job = pg_int(r, i, 1);
		bool bad = false, ok = true;
		char *email = bytea_str(r, i, 2, &bad), aad[1400], *label;
		json_t *o, *pw = NULL, *dpw = NULL;

		if (bad || email == NULL) {
			rc = oom(err);
			break;
		}
		queue_aad(aad, sizeof(aad), job, email, "password");
		if (reseal(q, r, i, 3, aad, &pw, err) == 0) {
			queue_aad(aad, sizeof(aad), job, email, "dst_password");
			if (reseal(q, r, i, 4, aad, &dpw, err) < 0)
				rc = -1;
		} else {
			rc = -1;
		}
		if (rc < 0) {
			label = text_clean_dup(email, NULL);
			tr_error_prefix(err, "job %" PRId64 ", %s", job, label ? label : "?");
			free(label);
			free(email);
			json_decref(pw);
			break;
		}
		free(email);
		if (rows == NULL && (rows = json_array()) == NULL) {
			json_decref(pw);
			json_decref(dpw);
			rc = oom(err);
			break;
		}
		done += (json_is_null(pw) ? 0 : 1) + (json_is_null(dpw) ? 0 : 1);
		o = json_object();
		report_json_set(o, "id", json_integer(pg_int(r, i, 0)), &ok);
		report_json_set(o, "p", pw, &ok);
		report_json_set(o, "d", dpw, &ok);
		report_json_append(rows, o, &ok);
		if (!ok) {
			rc = oom(err);
			break;
		}
		if (json_array_size(rows) == BATCH_ROWS || i == n - 1) {
			char *doc = json_dumps(rows, JSON_COMPACT);
			const char *p[1] = { doc };

			json_decref(rows);
			rows = NULL;
			if (doc == NULL) {
				rc = oom(err);
				break;
			}
			rc = pg_run(q->pg, "UPDATE q_accounts a SET password = decode(x.p, 'hex'), "
				    "dst_password = decode(x.d, 'hex') FROM json_to_recordset($1::json) "
				    "AS x(id bigint, p text, d text) WHERE a.id = x.id", 1, p, err);
			free(doc);
		}
	}
	json_decref(rows);
	PQclear(r);
	*n_r += done;
	return rc;
}

static int rekey_jobs_col(struct qpg *q, int k, int *n_r, struct tr_error *err)
{
	char sql[160];
	PGresult *r;
	int i, n, rc = 0;

	snprintf(sql, sizeof(sql), "SELECT id, %s FROM q_jobs WHERE %s IS NOT NULL ORDER BY id "
		 "FOR UPDATE", queue_admin_cols[k].col, queue_admin_cols[k].col);
	r = pg_exec(q->pg, sql, 0, NULL, err);
	if (r == NULL)
		return -1;
	n = PQntuples(r);
	for (i = 0; rc == 0 && i < n; i++) {
		int64_t job = pg_int(r, i, 0);
		char aad[64], *plain = NULL, idbuf[32];
		unsigned char *v, *s;
		size_t len, slen;

		queue_aad(aad, sizeof(aad), job, NULL, queue_admin_cols[k].aad);
		if (bytea_get(r, i, 1, &v, &len) < 0) {
			rc = oom(err);
			break;
		}
		rc = unseal(q->keys, aad, v, len, &plain, err);
		free(v);
		if (rc == 0) {
			rc = seal(q->keys, aad, plain, &s, &slen, err);
			secret_free(plain);
		}
		if (rc == 0) {
			const char *p[2] = { idbuf, (const char *)s };
			int lens[2] = { 0, (int)slen };
			PGresult *u;

			id_text(idbuf, sizeof(idbuf), job);
			snprintf(sql, sizeof(sql), "UPDATE q_jobs SET %s = $2 WHERE id = $1::bigint",
				 queue_admin_cols[k].col);
			u = pg_execb(q->pg, sql, 2, p, lens, err);
			free(s);
			if (u == NULL)
				rc = -1;
			PQclear(u);
		}
		if (rc < 0)
			tr_error_prefix(err, "job %" PRId64 ", the %s admin password", job,
					k == 0 ? "destination" : "source");
		else
			(*n_r)++;
	}
	PQclear(r);
	return rc;
}

static int rekey_jobs(struct qpg *q, int *n_r, struct tr_error *err)
{
	return rekey_jobs_col(q, 0, n_r, err) < 0 || rekey_jobs_col(q, 1, n_r, err) < 0 ? -1 : 0;
}

static int qpg_rekey(void *h, int *n_r, struct tr_error *err)
{
	struct qpg *q = h;
	*n_r = 0;
	if (need_keys(q, err) < 0)
		return -1;
	/* all or nothing: a value that does not open (its key already gone
	 * from the file) leaves every value as it was */
	if (pg_begin(q->pg, err) < 0)
		return -1;
	if (rekey_jobs(q, n_r, err) < 0 || rekey_accounts(q, n_r, err) < 0 ||
	    pg_commit(q->pg, err) < 0) {
		pg_rollback(q->pg);
		*n_r = 0;
		return -1;
	}
	return 0;
}

/* ---- status --------------------------------------------------------------------- */

/* An account whose worker vanished after its job was cancelled is
 * cancelled, whatever its row still says. */
#define ACCOUNT_STATE \
	"CASE WHEN a.state = 'running' AND a.lease_until < now() AND j.cancelled IS NOT NULL " \
	"THEN 'cancelled' ELSE a.state END"

static const char jobs_sql[] =
	"SELECT j.id, j.name, j.src, j.dst, j.cancelled IS NOT NULL, "
	"  to_char(j.created, 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), j.skipped, "
	"  count(a.id) FILTER (WHERE a.st = 'pending'), "
	"  count(a.id) FILTER (WHERE a.st = 'running'), "
	"  count(a.id) FILTER (WHERE a.st = 'ok'), "
	"  count(a.id) FILTER (WHERE a.st = 'partial'), "
	"  count(a.id) FILTER (WHERE a.st = 'failed'), "
	"  count(a.id) FILTER (WHERE a.st = 'cancelled'), "
	"  coalesce(sum(a.copied), 0), coalesce(sum(a.present), 0), "
	"  coalesce(sum(a.failed_msgs), 0), coalesce(sum(a.bytes), 0), "
	"  coalesce(extract(epoch FROM (CASE WHEN count(a.id) FILTER (WHERE a.st IN "
	"    ('pending', 'running')) = 0 THEN max(a.finished) ELSE now() END) - "
	"    min(a.started)), 0), "
	"  (SELECT count(*) FROM q_sessions s WHERE s.job_id = j.id AND s.side = 'src' "
	"    AND s.until > now()), "
	"  (SELECT count(*) FROM q_sessions s WHERE s.job_id = j.id AND s.side = 'dst' "
	"    AND s.until > now()), "
	"  coalesce(cs.max_total, 0), coalesce(cs.max_per_account, 0), "
	"  coalesce(cd.max_total, 0), coalesce(cd.max_per_account, 0), "
	"  coalesce(cs.per_egress, false), "
	"  j.pass_kind, j.pass_count, j.pass_every, "
	"  CASE WHEN j.pass_every IS NOT NULL AND NOT j.final THEN to_char(coalesce(j.pass_started, "
	"    j.created) + make_interval(secs => j.pass_every), 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') END, "
	"  j.final, "
	"  extract(epoch FROM (CASE WHEN count(a.id) FILTER (WHERE a.st IN "
	"    ('pending', 'running')) = 0 THEN greatest(max(a.finished), "
	"    coalesce(j.pass_started, j.created)) ELSE now() END) - "
	"    coalesce(j.pass_started, j.created)), "
	"  j.last_pass_kind, j.last_pass_seconds, "
	"  (SELECT json_object_agg(x.k, x.n ORDER BY x.k)::text FROM (SELECT e.error_kind AS k, "
	"    count(*) AS n FROM q_accounts e WHERE e.job_id = j.id AND e.state IN "
	"    ('failed', 'partial') AND e.error_kind IS NOT NULL GROUP BY e.error_kind) x), "
	"  coalesce(sum(a.refused_src), 0), coalesce(sum(a.refused_dst), 0) "
	"FROM q_jobs j "
	"LEFT JOIN q_caps cs ON cs.job_id = j.id AND cs.side = 'src' "
	"LEFT JOIN q_caps cd ON cd.job_id = j.id AND cd.side = 'dst' "
	"LEFT JOIN (SELECT a.*, " ACCOUNT_STATE " AS st FROM q_accounts a "
	"  JOIN q_jobs j ON j.id = a.job_id) a ON a.job_id = j.id "
	"WHERE $1::bigint IS NULL OR j.id = $1::bigint "
	"GROUP BY j.id, cs.max_total, cs.max_per_account, cd.max_total, cd.max_per_account, "
	"  cs.per_egress "
	"ORDER BY j.id";

static const char accounts_sql[] =
	"SELECT a.email, " ACCOUNT_STATE ", a.worker, a.error, a.copied, a.present, "
	"  a.failed_msgs, a.bytes, a.folders_done, a.folders_total, a.attempts, a.takeovers, "
	"  a.seconds, a.line, a.pass, a.verify_exact, "
	"  CASE WHEN a.state IN ('failed', 'partial') THEN a.error_kind END, "
	"  a.refused_src + a.refused_dst "
	"FROM q_accounts a JOIN q_jobs j ON j.id = a.job_id "
	"WHERE a.job_id = $1::bigint ORDER BY a.id";

/* Workers not stopped and heard from in the last ten minutes. */
static const char workers_sql[] =
	"SELECT w.id, w.host, w.pid, w.egress, w.parallel, "
	"  extract(epoch FROM now() - w.seen)::bigint, "
	"  (SELECT count(*) FROM q_accounts a WHERE a.worker = w.id AND a.state = 'running') "
	"FROM q_workers w WHERE w.stopped IS NULL AND w.seen > now() - interval '10 minutes' "
	"ORDER BY w.id";

static uint64_t u64(const PGresult *r, int row, int col)
{
	const char *s = pg_str(r, row, col);

	return s != NULL ? strtoull(s, NULL, 10) : 0;
}

/* A text field, owned; NULL for SQL NULL.  *ok false when out of memory. */
static char *dup_str(const PGresult *r, int row, int col, bool *ok)
{
	const char *v = pg_str(r, row, col);
	char *d;

	if (v == NULL)
		return NULL;
	if ((d = strdup(v)) == NULL)
		*ok = false;
	return d;
}

static void job_row_read(const PGresult *r, int i, struct queue_job_row *j, bool *ok)
{
	int k;

	memset(j, 0, sizeof(*j));
	j->id = pg_int(r, i, 0);
	j->name = dup_str(r, i, 1, ok);
	j->src = dup_str(r, i, 2, ok);
	j->dst = dup_str(r, i, 3, ok);
	j->cancelled = pg_str(r, i, 4)[0] == 't';
	j->created = dup_str(r, i, 5, ok);
	j->skipped = dup_str(r, i, 6, ok);
	for (k = 0; k < QUEUE_A_N; k++)
		j->acc[k] = pg_int(r, i, 7 + k);
	j->copied = u64(r, i, 13);
	j->present = u64(r, i, 14);
	j->failed = u64(r, i, 15);
	j->bytes = u64(r, i, 16);
	j->seconds = strtod(pg_str(r, i, 17), NULL);
	j->in_use[0] = pg_int(r, i, 18);
	j->in_use[1] = pg_int(r, i, 19);
	j->cap[0] = pg_int(r, i, 20);
	j->per_account[0] = pg_int(r, i, 21);
	j->cap[1] = pg_int(r, i, 22);
	j->per_account[1] = pg_int(r, i, 23);
	j->per_egress = pg_str(r, i, 24)[0] == 't';
	j->pass = dup_str(r, i, 25, ok);
	j->passes = pg_int(r, i, 26);
	j->every = pg_str(r, i, 27) != NULL ? pg_int(r, i, 27) : 0;
	j->next_at = dup_str(r, i, 28, ok);
	j->final = pg_str(r, i, 29)[0] == 't';
	j->pass_seconds = pg_str(r, i, 30) != NULL ? strtod(pg_str(r, i, 30), NULL) : 0;
	j->last_pass = dup_str(r, i, 31, ok);
	j->last_pass_seconds = pg_str(r, i, 32) != NULL ? strtod(pg_str(r, i, 32), NULL) : 0;
	j->errors = dup_str(r, i, 33, ok);
	j->refused[0] = pg_int(r, i, 34);
	j->refused[1] = pg_int(r, i, 35);
}

static void account_row_read(const PGresult *r, int i, struct queue_account_row *a, bool *ok)
{
	bool bad = false;

	memset(a, 0, sizeof(*a));
	a->email = bytea_str(r, i, 0, &bad);
	if (bad || a->email == NULL)
		*ok = false;
	a->state = dup_str(r, i, 1, ok);
	a->worker = dup_str(r, i, 2, ok);
	a->error = dup_str(r, i, 3, ok);
	a->copied = pg_int(r, i, 4);
	a->present = pg_int(r, i, 5);
	a->failed = pg_int(r, i, 6);
	a->bytes = pg_int(r, i, 7);
	a->folders_done = pg_int(r, i, 8);
	a->folders_total = pg_int(r, i, 9);
	a->attempts = pg_int(r, i, 10);
	a->takeovers = pg_int(r, i, 11);
	a->seconds = strtod(pg_str(r, i, 12), NULL);
	a->line = pg_int(r, i, 13);
	a->pass = dup_str(r, i, 14, ok);
	a->verify_exact = pg_str(r, i, 15) == NULL ? -1 : pg_str(r, i, 15)[0] == 't';
	a->error_kind = dup_str(r, i, 16, ok);
	a->refused = pg_int(r, i, 17);
}

static void worker_row_read(const PGresult *r, int i, struct queue_worker_row *w, bool *ok)
{
	memset(w, 0, sizeof(*w));
	w->id = dup_str(r, i, 0, ok);
	w->host = dup_str(r, i, 1, ok);
	w->pid = pg_int(r, i, 2);
	w->egress = dup_str(r, i, 3, ok);
	w->parallel = pg_int(r, i, 4);
	w->seen_ago = pg_int(r, i, 5);
	w->running = pg_int(r, i, 6);
}

/* The rows of queue_status, from one snapshot: the totals and the list
 * agree. */
static int qpg_status_rows(void *h, const char *job, struct queue_rows *rows,
			   struct tr_error *err)
{
	struct qpg *q = h;
	char idbuf[32];
	const char *p[1] = { NULL };
	PGresult *jobs = NULL, *accounts = NULL, *workers = NULL;
	bool ok = true;
	int64_t id;
	int i, rc = -1;

	if (job != NULL) {
		if (qpg_job_id(q, job, &id, err) < 0)
			return -1;
		id_text(idbuf, sizeof(idbuf), id);
		p[0] = idbuf;
	}
	if (pg_begin(q->pg, err) < 0 ||
	    pg_run(q->pg, "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY", 0, NULL,
		   err) < 0)
		goto out;
	jobs = pg_exec(q->pg, jobs_sql, 1, p, err);
	if (jobs == NULL)
		goto out;
	if (job != NULL && (accounts = pg_exec(q->pg, accounts_sql, 1, p, err)) == NULL)
		goto out;
	if (job == NULL && (workers = pg_exec(q->pg, workers_sql, 0, NULL, err)) == NULL)
		goto out;
	if (pg_commit(q->pg, err) < 0)
		goto out;
	rows->jobs = calloc((size_t)PQntuples(jobs) + 1, sizeof(*rows->jobs));
	ok = rows->jobs != NULL;
	for (i = 0; ok && i < PQntuples(jobs); i++, rows->n_jobs++)
		job_row_read(jobs, i, &rows->jobs[i], &ok);
	if (accounts != NULL && ok) {
		rows->with_accounts = true;
		rows->accounts = calloc((size_t)PQntuples(accounts) + 1, sizeof(*rows->accounts));
		ok = rows->accounts != NULL;
		for (i = 0; ok && i < PQntuples(accounts); i++, rows->n_accounts++)
			account_row_read(accounts, i, &rows->accounts[i], &ok);
	}
	if (workers != NULL && ok) {
		rows->with_workers = true;
		rows->workers = calloc((size_t)PQntuples(workers) + 1, sizeof(*rows->workers));
		ok = rows->workers != NULL;
		for (i = 0; ok && i < PQntuples(workers); i++, rows->n_workers++)
			worker_row_read(workers, i, &rows->workers[i], &ok);
	}
	rc = ok ? 0 : oom(err);
out:
	pg_rollback(q->pg);
	PQclear(jobs);
	PQclear(accounts);
	PQclear(workers);
	return rc;
}

/* ---- one account -------------------------------------------------------------- */

#define ISO(x) "to_char(" x ", 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

static const char detail_sql[] =
	"SELECT " ACCOUNT_STATE ", a.pass, a.error, a.folders_done, a.folders_total, a.copied, "
	"  a.present, a.failed_msgs, a.bytes, a.seconds, a.attempts, a.takeovers, a.worker, "
	"  " ISO("a.started") ", " ISO("a.finished") ", a.failures_more, " ISO("a.verify_at") ", "
	"  a.verify_exact, a.verify, a.id, a.email "
	"FROM q_accounts a JOIN q_jobs j ON j.id = a.job_id "
	"WHERE a.job_id = $1::bigint AND a.email = $2";

static void detail_read(int64_t job, const PGresult *a, const PGresult *folders,
			const PGresult *failures, struct queue_detail *d, bool *ok)
{
	bool bad = false;
	int i;

	d->job = job;
	d->email = bytea_str(a, 0, 20, &bad);
	d->status = dup_str(a, 0, 0, ok);
	d->pass = dup_str(a, 0, 1, ok);
	d->error = dup_str(a, 0, 2, ok);
	d->folders_done = pg_int(a, 0, 3);
	d->folders_total = pg_int(a, 0, 4);
	d->copied = pg_int(a, 0, 5);
	d->present = pg_int(a, 0, 6);
	d->failed = pg_int(a, 0, 7);
	d->bytes = pg_int(a, 0, 8);
	d->seconds = strtod(pg_str(a, 0, 9), NULL);
	d->attempts = pg_int(a, 0, 10);
	d->takeovers = pg_int(a, 0, 11);
	d->worker = dup_str(a, 0, 12, ok);
	d->started = dup_str(a, 0, 13, ok);
	d->finished = dup_str(a, 0, 14, ok);
	d->failures_more = pg_int(a, 0, 15);
	d->verify_at = dup_str(a, 0, 16, ok);
	d->verify_exact = pg_str(a, 0, 17) != NULL && pg_str(a, 0, 17)[0] == 't';
	d->verify = dup_str(a, 0, 18, ok);
	d->folders = calloc((size_t)PQntuples(folders) + 1, sizeof(*d->folders));
	d->failures = calloc((size_t)PQntuples(failures) + 1, sizeof(*d->failures));
	if (d->folders == NULL || d->failures == NULL)
		bad = true;
	for (i = 0; !bad && i < PQntuples(folders); i++, d->n_folders++) {
		struct queue_folder_row *f = &d->folders[i];

		f->src = bytea_str(folders, i, 0, &bad);
		f->dst = bytea_str(folders, i, 1, &bad);
		f->status = dup_str(folders, i, 2, ok);
		f->copied = pg_int(folders, i, 3);
		f->present = pg_int(folders, i, 4);
		f->failed = pg_int(folders, i, 5);
		f->bytes = pg_int(folders, i, 6);
		f->error = dup_str(folders, i, 7, ok);
	}
	for (i = 0; !bad && i < PQntuples(failures); i++, d->n_failures++) {
		struct queue_failure_row *f = &d->failures[i];

		f->folder = bytea_str(failures, i, 0, &bad);
		f->uid = pg_int(failures, i, 1);
		f->reply = dup_str(failures, i, 2, ok);
	}
	if (bad)
		*ok = false;
}

static int qpg_account_detail(void *h, const char *job, const char *email,
			      struct queue_detail *d, struct tr_error *err)
{
	struct qpg *q = h;
	char idbuf[32];
	const char *p[2] = { idbuf, email };
	const char *pa[1] = { NULL };
	int lens[2] = { 0, (int)strlen(email) };
	PGresult *a = NULL, *folders = NULL, *failures = NULL;
	int64_t id;
	bool ok = true;
	int rc = -1;

	if (qpg_job_id(q, job, &id, err) < 0)
		return err->kind == TR_ERR_USAGE ? 1 : -1;
	id_text(idbuf, sizeof(idbuf), id);
	/* one snapshot: the account, its folders and its failures agree */
	if (pg_begin(q->pg, err) < 0 ||
	    pg_run(q->pg, "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY", 0, NULL,
		   err) < 0)
		goto out;
	a = pg_execb(q->pg, detail_sql, 2, p, lens, err);
	if (a == NULL)
		goto out;
	if (PQntuples(a) != 1) {
		char *c = text_clean_dup(email, NULL);

		tr_error_set(err, TR_ERR_USAGE, "job %s has no account \"%s\"", idbuf,
			     c != NULL ? c : "?");
		free(c);
		rc = 1;
		goto out;
	}
	pa[0] = pg_str(a, 0, 19);
	folders = pg_exec(q->pg, "SELECT src_name, dst_name, status, copied, present, failed_msgs, "
			  "bytes, error FROM q_folders WHERE account_id = $1::bigint ORDER BY idx",
			  1, pa, err);
	if (folders == NULL)
		goto out;
	failures = pg_exec(q->pg, "SELECT folder, uid, reply FROM q_failures WHERE account_id = "
			   "$1::bigint ORDER BY n", 1, pa, err);
	if (failures == NULL || pg_commit(q->pg, err) < 0)
		goto out;
	detail_read(id, a, folders, failures, d, &ok);
	rc = ok ? 0 : oom(err);
out:
	pg_rollback(q->pg);
	PQclear(a);
	PQclear(folders);
	PQclear(failures);
	return rc;
}

const struct queue_backend queue_backend_pg = {
	.name = "postgresql",
	.where = "//USER@HOST[:PORT]/DB",
	.init = qpg_init,
	.open = qpg_open,
	.close = qpg_close,
	.where_text = qpg_where,
	.submit = qpg_submit,
	.claim = qpg_claim,
	.job_config = qpg_job_config,
	.renew = qpg_renew,
	.progress = qpg_progress,
	.finish = qpg_finish,
	.verify_finish = qpg_verify_finish,
	.release = qpg_release,
	.worker_register = qpg_worker_register,
	.worker_stopped = qpg_worker_stopped,
	.status_rows = qpg_status_rows,
	.retry = qpg_retry,
	.cancel = qpg_cancel,
	.delete_job = qpg_delete,
	.rekey = qpg_rekey,
	.outstanding = qpg_outstanding,
	.job_id = qpg_job_id,
	.pass = qpg_pass,
	.schedule = qpg_schedule,
	.account_detail = qpg_account_detail,
};
