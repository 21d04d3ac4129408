/* caps_pg: a job's session caps across its workers; see caps_pg.h. */
#include "config.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "caps_pg.h"
#include "log.h"
#include "net.h"
#include "pg.h"
#include "pg_schema.h"

/* One side of one job: the ctx of a struct limiter_shared. */
struct caps_side {
	struct caps_pg *c;
	int64_t job_id;
	char job[24];              /* job_id in text, for parameters */
	char side[4];              /* "src", "dst" */
};

/* A q_sessions row this worker holds: release deletes it by id (a delete
 * whose reply was lost can then be sent again without taking another
 * session's row), renew extends exactly these. */
struct held {
	struct caps_side *side;
	char *login;
	int64_t id;
};

struct caps_pg {
	pthread_mutex_t lock;      /* the connection and everything below */
	struct pg *pg;
	char *worker, *egress;
	char lease[16];            /* seconds, in text */
	struct caps_side **sides;
	size_t n_sides;
	struct held *held;
	size_t n_held, cap_held;
	int64_t *orphans;          /* released rows whose delete failed: retried */
	size_t n_orphans, cap_orphans;
};

/* Back-off of a wait for a slot: 50 ms doubling to 1 s. */
#define WAIT_MIN_MS 50
#define WAIT_MAX_MS 1000
/* Rows expired this long ago are anybody's to delete (killed workers'). */
#define EXPIRED_PURGE "10 minutes"

static const char *side_name(const struct caps_side *s)
{
	return strcmp(s->side, "src") == 0 ? "the source" : "the destination";
}

int caps_pg_open(const char *dsn, const char *worker, const char *egress, int lease_s,
		 struct caps_pg **c_r, struct tr_error *err)
{
	struct caps_pg *c;

	*c_r = NULL;
	if (worker == NULL || worker[0] == '\0' || lease_s < 1) {
		tr_error_set(err, TR_ERR_USAGE, "caps: a worker name and a lease of at least 1 s "
			     "are needed");
		return -1;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL || (c->worker = strdup(worker)) == NULL ||
	    (c->egress = strdup(egress != NULL ? egress : "")) == NULL) {
		if (c != NULL)
			free(c->worker);
		free(c);
		tr_error_set(err, TR_ERR_LOCAL, "out of memory");
		return -1;
	}
	snprintf(c->lease, sizeof(c->lease), "%d", lease_s);
	pthread_mutex_init(&c->lock, NULL);
	if (pg_connect(dsn, &c->pg, err) < 0 || pg_schema_check(c->pg, err) < 0) {
		caps_pg_close(c);
		return -1;
	}
	*c_r = c;
	return 0;
}

static int push_orphan(struct caps_pg *c, int64_t id)
{
	if (c->n_orphans == c->cap_orphans) {
		size_t n = c->cap_orphans ? c->cap_orphans * 2 : 8;
		int64_t *v = realloc(c->orphans, n * sizeof(*v));

		if (v == NULL)
			return -1;
		c->orphans = v;
		c->cap_orphans = n;
	}
	c->orphans[c->n_orphans++] = id;
	return 0;
}

/* Caller holds the lock.  Delete the rows whose release failed; those that
 * fail again stay for the next try (unrenewed, they expire meanwhile). */
static void flush_orphans(struct caps_pg *c)
{
	size_t i, k = 0;

	for (i = 0; i < c->n_orphans; i++) {
		char id[24];
		const char *p[1] = { id };
		struct tr_error err;

		snprintf(id, sizeof(id), "%" PRId64, c->orphans[i]);
		if (pg_run(c->pg, "DELETE FROM q_sessions WHERE id = $1::bigint", 1, p, &err) < 0)
			c->orphans[k++] = c->orphans[i];
	}
	c->n_orphans = k;
}

void caps_pg_close(struct caps_pg *c)
{
	size_t i;

	if (c == NULL)
		return;
	if (c->pg != NULL) {
		const char *p[1] = { c->worker };
		struct tr_error err;

		if (pg_run(c->pg, "DELETE FROM q_sessions WHERE worker = $1", 1, p, &err) < 0)
			log_warn(NULL, "caps: the sessions of worker %s stay counted until their "
				 "leases expire: %s", c->worker, err.msg);
		pg_close(c->pg);
	}
	for (i = 0; i < c->n_held; i++)
		free(c->held[i].login);
	free(c->held);
	for (i = 0; i < c->n_sides; i++)
		free(c->sides[i]);
	free(c->sides);
	free(c->orphans);
	free(c->worker);
	free(c->egress);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

/* Caller holds the lock.  Lock the side's q_caps row for the rest of the
 * transaction (every grant and refusal of that side goes one at a time
 * through it) and read it.  1 found, 0 no such row, -1 error. */
static int lock_caps(struct caps_pg *c, const struct caps_side *s, int *per_account,
		     int *total, bool *per_egress, struct tr_error *err)
{
	const char *p[2] = { s->job, s->side };
	PGresult *r = pg_exec(c->pg, "SELECT max_per_account, max_total, per_egress FROM q_caps "
			      "WHERE job_id = $1::bigint AND side = $2 FOR UPDATE", 2, p, err);

	if (r == NULL)
		return -1;
	if (PQntuples(r) != 1) {
		PQclear(r);
		tr_error_set(err, TR_ERR_LOCAL, "%s: job %s has no session caps for %s (was it "
			     "deleted?)", pg_where(c->pg), s->job, side_name(s));
		return -1;
	}
	*per_account = (int)pg_int(r, 0, 0);
	*total = (int)pg_int(r, 0, 1);
	*per_egress = pg_str(r, 0, 2) != NULL && pg_str(r, 0, 2)[0] == 't';
	PQclear(r);
	return 1;
}

static int hold(struct caps_pg *c, struct caps_side *s, const char *login, int64_t id)
{
	struct held *h;

	if (c->n_held == c->cap_held) {
		size_t n = c->cap_held ? c->cap_held * 2 : 16;
		struct held *v = realloc(c->held, n * sizeof(*v));

		if (v == NULL)
			return -1;
		c->held = v;
		c->cap_held = n;
	}
	h = &c->held[c->n_held];
	if ((h->login = strdup(login)) == NULL)
		return -1;
	h->side = s;
	h->id = id;
	c->n_held++;
	return 0;
}

/* Caller holds the lock.  One try: 1 granted (the row is held), 0 no room,
 * -1 error. */
static int try_grant(struct caps_pg *c, struct caps_side *s, const char *login,
		     struct tr_error *err)
{
	int per_account, total, ret;
	bool per_egress;
	char pa[16], tot[16];
	const char *p[10];
	int lens[10] = { 0 };
	PGresult *r;
	int64_t id;

	if (pg_begin(c->pg, err) < 0)
		return -1;
	if (lock_caps(c, s, &per_account, &total, &per_egress, err) < 0)
		goto fail;
	snprintf(pa, sizeof(pa), "%d", per_account);
	snprintf(tot, sizeof(tot), "%d", total);
	p[0] = s->job;
	p[1] = s->side;
	p[2] = login;
	lens[2] = (int)strlen(login);   /* bytea, sent as it is (0: '') */
	p[3] = c->egress;
	p[4] = per_egress ? "t" : "f";
	p[5] = pa;
	p[6] = tot;
	p[7] = c->worker;
	p[8] = c->lease;
	p[9] = per_egress ? c->egress : "";
	/* A statement of its own after the lock: in READ COMMITTED its
	 * snapshot is taken now, so it counts every grant committed before
	 * ours got the lock. */
	r = pg_execb(c->pg,
		     "WITH n AS ("
		     "  SELECT count(*) FILTER (WHERE login = $3::bytea"
		     "                          AND (NOT $5::boolean OR egress = $4)) AS nl,"
		     "         count(*) AS nt"
		     "  FROM q_sessions WHERE job_id = $1::bigint AND side = $2 AND until > now()),"
		     " c AS (SELECT coalesce((SELECT cap FROM q_cap_logins WHERE job_id = $1::bigint"
		     "         AND side = $2 AND login = $3::bytea AND egress = $10), $6::int) AS cap),"
		     " ins AS ("
		     "  INSERT INTO q_sessions (job_id, side, login, egress, worker, until)"
		     "  SELECT $1::bigint, $2, $3::bytea, $4, $8,"
		     "         now() + make_interval(secs => $9::int)"
		     "  FROM n, c WHERE n.nl < c.cap AND n.nt < $7::int RETURNING id)"
		     "SELECT (SELECT id FROM ins) FROM n, c",
		     10, p, lens, err);
	if (r == NULL)
		goto fail;
	id = PQntuples(r) == 1 ? pg_int(r, 0, 0) : 0;
	PQclear(r);
	if (pg_commit(c->pg, err) < 0) {
		/* granted or not, we cannot tell: unheld, a granted row expires */
		pg_rollback(c->pg);
		return -1;
	}
	if (id == 0)
		return 0;
	ret = 1;
	if (hold(c, s, login, id) < 0) {
		/* not kept: gone again, the session is not opened */
		push_orphan(c, id);
		flush_orphans(c);
		tr_error_set(err, TR_ERR_LOCAL, "out of memory");
		ret = -1;
	}
	return ret;
fail:
	pg_rollback(c->pg);
	return -1;
}

/* Sleep ms, in slices, ending early on a stop (of the process or of the
 * calling thread's scope). */
static void nap(int ms)
{
	while (ms > 0 && !net_cancelled()) {
		int d = ms > WAIT_MIN_MS ? WAIT_MIN_MS : ms;

		usleep((useconds_t)d * 1000);
		ms -= d;
	}
}

static int side_acquire(void *ctx, const char *login, bool wait)
{
	struct caps_side *s = ctx;
	struct caps_pg *c = s->c;
	unsigned int seed = (unsigned int)time(NULL) ^ (unsigned int)(uintptr_t)&seed;
	int delay = WAIT_MIN_MS;
	bool told = false;

	for (;;) {
		struct tr_error err;
		int r;

		if (net_cancelled())
			return -1;
		tr_error_clear(&err);
		pthread_mutex_lock(&c->lock);
		if (c->n_orphans > 0)
			flush_orphans(c);
		r = try_grant(c, s, login, &err);
		pthread_mutex_unlock(&c->lock);
		if (r > 0)
			return 0;
		/* A database out of reach (a restart, a failover) is waited for
		 * like a full cap, by a caller who waits: the worker's heartbeat
		 * stops the account (its scope) if it stays away too long. */
		if (r < 0 && wait && err.kind == TR_ERR_TEMP) {
			if (!told)
				log_warn(login, "no session slot on %s yet (cluster caps of job %s): "
					 "%s; waiting for the database", side_name(s), s->job,
					 err.msg);
			told = true;
		} else if (r < 0) {
			log_error(login, "no session slot on %s (cluster caps of job %s): %s",
				  side_name(s), s->job, err.msg);
			return -1;
		}
		if (!wait)
			return -1;
		/* polling: jitter, so that workers waiting together do not ask
		 * together */
		nap(delay / 2 + (int)(rand_r(&seed) % (unsigned int)delay));
		delay = delay * 2 > WAIT_MAX_MS ? WAIT_MAX_MS : delay * 2;
	}
}

static void side_release(void *ctx, const char *login)
{
	struct caps_side *s = ctx;
	struct caps_pg *c = s->c;
	struct tr_error err;
	char id[24];
	const char *p[1] = { id };
	int64_t row = 0;
	size_t i;

	pthread_mutex_lock(&c->lock);
	for (i = c->n_held; i-- > 0;) {
		if (c->held[i].side == s && strcmp(c->held[i].login, login) == 0) {
			row = c->held[i].id;
			free(c->held[i].login);
			c->held[i] = c->held[--c->n_held];
			break;
		}
	}
	if (row != 0) {
		snprintf(id, sizeof(id), "%" PRId64, row);
		if (pg_run(c->pg, "DELETE FROM q_sessions WHERE id = $1::bigint", 1, p, &err) < 0) {
			log_warn(login, "caps: a closed session of %s stays counted until it is "
				 "deleted or its lease expires: %s", side_name(s), err.msg);
			push_orphan(c, row);
		}
	}
	pthread_mutex_unlock(&c->lock);
}

/* Caller holds the lock, in the side's transaction.  p: job, side, login
 * (bytea, lens), egress key, cap. */
static int lower_login_cap(struct caps_pg *c, const char *const *p, const int *lens,
			   struct tr_error *err)
{
	PGresult *r = pg_execb(c->pg,
			       "INSERT INTO q_cap_logins (job_id, side, login, egress, cap)"
			       " VALUES ($1::bigint, $2, $3::bytea, $4, $5::int)"
			       " ON CONFLICT (job_id, side, login, egress)"
			       " DO UPDATE SET cap = least(q_cap_logins.cap, EXCLUDED.cap)",
			       5, p, lens, err);

	if (r == NULL)
		return -1;
	PQclear(r);
	return 0;
}

static void side_refused(void *ctx, const char *login)
{
	struct caps_side *s = ctx;
	struct caps_pg *c = s->c;
	int per_account, total;
	bool per_egress;
	struct tr_error err;
	char pa[16];
	const char *p[6];
	int lens[6] = { 0 };
	PGresult *r = NULL;
	int nl, nt, cap;

	tr_error_clear(&err);
	pthread_mutex_lock(&c->lock);
	if (pg_begin(c->pg, &err) < 0)
		goto out;
	if (lock_caps(c, s, &per_account, &total, &per_egress, &err) < 0)
		goto fail;
	snprintf(pa, sizeof(pa), "%d", per_account);
	p[0] = s->job;
	p[1] = s->side;
	p[2] = login;
	lens[2] = (int)strlen(login);
	p[3] = c->egress;
	p[4] = per_egress ? "t" : "f";
	p[5] = pa;
	/* the refused session's own row is still there: counted */
	r = pg_execb(c->pg,
		     "SELECT count(*) FILTER (WHERE login = $3::bytea"
		     "                        AND (NOT $5::boolean OR egress = $4)),"
		     "       count(*),"
		     "       coalesce((SELECT cap FROM q_cap_logins WHERE job_id = $1::bigint"
		     "         AND side = $2 AND login = $3::bytea"
		     "         AND egress = CASE WHEN $5::boolean THEN $4 ELSE '' END), $6::int)"
		     "FROM q_sessions WHERE job_id = $1::bigint AND side = $2 AND until > now()",
		     6, p, lens, &err);
	if (r == NULL)
		goto fail;
	nl = (int)pg_int(r, 0, 0);
	nt = (int)pg_int(r, 0, 1);
	cap = (int)pg_int(r, 0, 2);
	PQclear(r);
	if (nl > 1) {
		char nc[16];
		const char *q[5] = { s->job, s->side, login, per_egress ? c->egress : "", nc };

		if (nl - 1 >= cap)
			goto commit;
		snprintf(nc, sizeof(nc), "%d", nl - 1);
		if (lower_login_cap(c, q, lens, &err) < 0)
			goto fail;
		if (per_egress)
			log_warn(login, "%s refused session %d of this account from egress '%s' "
				 "(job %s): at most %d per egress from now on, for every worker",
				 side_name(s), nl, c->egress, s->job, nl - 1);
		else
			log_warn(login, "%s refused session %d of this account across the cluster "
				 "(job %s): at most %d from now on, for every worker",
				 side_name(s), nl, s->job, nl - 1);
	} else {
		int ncap = nt - 1 > 1 ? nt - 1 : 1;
		char nc[16];
		const char *q[3] = { s->job, s->side, nc };

		if (ncap >= total)
			goto commit;
		snprintf(nc, sizeof(nc), "%d", ncap);
		if (pg_run(c->pg, "UPDATE q_caps SET max_total = $3::int WHERE job_id = $1::bigint "
			   "AND side = $2", 3, q, &err) < 0)
			goto fail;
		log_warn(login, "%s refused a session with %d open in all across the cluster "
			 "(job %s): at most %d from now on, for every worker", side_name(s), nt,
			 s->job, ncap);
	}
commit:
	if (pg_commit(c->pg, &err) == 0)
		goto out;
fail:
	pg_rollback(c->pg);
	log_warn(login, "caps: the refusal by %s could not lower the cluster's caps: %s",
		 side_name(s), err.msg);
out:
	pthread_mutex_unlock(&c->lock);
}

int caps_pg_side(struct caps_pg *c, int64_t job_id, const char *side,
		 struct limiter_shared *out, struct tr_error *err)
{
	struct caps_side *s = NULL, **v;
	char job[24];
	const char *p[2] = { job, side };
	PGresult *r;
	size_t i;
	int found;

	if (side == NULL || (strcmp(side, "src") != 0 && strcmp(side, "dst") != 0)) {
		tr_error_set(err, TR_ERR_USAGE, "caps: side must be src or dst");
		return -1;
	}
	snprintf(job, sizeof(job), "%" PRId64, job_id);
	pthread_mutex_lock(&c->lock);
	r = pg_exec(c->pg, "SELECT 1 FROM q_caps WHERE job_id = $1::bigint AND side = $2", 2, p,
		    err);
	if (r == NULL)
		goto fail;
	found = PQntuples(r);
	PQclear(r);
	if (found != 1) {
		tr_error_set(err, TR_ERR_USAGE, "%s: job %s has no session caps for side %s",
			     pg_where(c->pg), job, side);
		goto fail;
	}
	for (i = 0; i < c->n_sides; i++)
		if (c->sides[i]->job_id == job_id && strcmp(c->sides[i]->side, side) == 0)
			s = c->sides[i];
	if (s == NULL) {
		v = realloc(c->sides, (c->n_sides + 1) * sizeof(*v));
		if (v != NULL)
			c->sides = v;
		if (v == NULL || (s = calloc(1, sizeof(*s))) == NULL) {
			tr_error_set(err, TR_ERR_LOCAL, "out of memory");
			goto fail;
		}
		s->c = c;
		s->job_id = job_id;
		snprintf(s->job, sizeof(s->job), "%s", job);
		snprintf(s->side, sizeof(s->side), "%s", side);
		c->sides[c->n_sides++] = s;
	}
	pthread_mutex_unlock(&c->lock);
	*out = (struct limiter_shared){ side_acquire, side_release, side_refused, s };
	return 0;
fail:
	pthread_mutex_unlock(&c->lock);
	return -1;
}

int caps_pg_renew(struct caps_pg *c, struct tr_error *err)
{
	char *ids = NULL;
	size_t i, len = 0, size = 0;
	int ret = 0;

	pthread_mutex_lock(&c->lock);
	if (c->n_orphans > 0)
		flush_orphans(c);
	if (c->n_held > 0) {
		size = c->n_held * 24 + 3;
		ids = malloc(size);
		if (ids == NULL) {
			tr_error_set(err, TR_ERR_LOCAL, "out of memory");
			ret = -1;
			goto out;
		}
		ids[len++] = '{';
		for (i = 0; i < c->n_held; i++)
			len += (size_t)snprintf(ids + len, size - len, "%s%" PRId64, i ? "," : "",
						c->held[i].id);
		ids[len++] = '}';
		ids[len] = '\0';
		{
			const char *p[3] = { c->worker, c->lease, ids };
			PGresult *r = pg_exec(c->pg, "UPDATE q_sessions SET until = now() + "
					      "make_interval(secs => $2::int) WHERE worker = $1 "
					      "AND id = ANY($3::bigint[])", 3, p, err);

			if (r == NULL) {
				ret = -1;
				goto out;
			}
			if (strtoul(PQcmdTuples(r), NULL, 10) < c->n_held)
				log_warn(NULL, "caps: %zu session(s) of worker %s were no longer "
					 "counted (their job deleted, or their rows taken as expired)",
					 c->n_held - strtoul(PQcmdTuples(r), NULL, 10), c->worker);
			PQclear(r);
		}
	}
	/* what killed workers left: long expired, counted by nobody */
	if (pg_run(c->pg, "DELETE FROM q_sessions WHERE until < now() - interval '"
		   EXPIRED_PURGE "'", 0, NULL, err) < 0)
		ret = -1;
out:
	pthread_mutex_unlock(&c->lock);
	free(ids);
	return ret;
}

int caps_pg_count(struct caps_pg *c, int64_t job_id, const char *side, const char *login,
		  int *in_use_r, int *cap_r, struct tr_error *err)
{
	char job[24];
	const char *p[4] = { job, side, login, c->egress };
	int lens[4] = { 0, 0, login != NULL ? (int)strlen(login) : 0, 0 };
	PGresult *r;
	int ret = 0;

	snprintf(job, sizeof(job), "%" PRId64, job_id);
	pthread_mutex_lock(&c->lock);
	if (login == NULL)
		r = pg_exec(c->pg, "SELECT (SELECT count(*) FROM q_sessions WHERE job_id = $1::bigint"
			    " AND side = $2 AND until > now()), max_total FROM q_caps"
			    " WHERE job_id = $1::bigint AND side = $2", 2, p, err);
	else
		r = pg_execb(c->pg,
			     "SELECT (SELECT count(*) FROM q_sessions WHERE job_id = $1::bigint"
			     "         AND side = $2 AND login = $3::bytea AND until > now()"
			     "         AND (NOT k.per_egress OR egress = $4)),"
			     "       coalesce((SELECT cap FROM q_cap_logins WHERE job_id = $1::bigint"
			     "         AND side = $2 AND login = $3::bytea"
			     "         AND egress = CASE WHEN k.per_egress THEN $4 ELSE '' END),"
			     "         k.max_per_account)"
			     " FROM q_caps k WHERE k.job_id = $1::bigint AND k.side = $2",
			     4, p, lens, err);
	if (r == NULL) {
		ret = -1;
	} else if (PQntuples(r) != 1) {
		tr_error_set(err, TR_ERR_USAGE, "%s: job %s has no session caps for side %s",
			     pg_where(c->pg), job, side);
		ret = -1;
	} else {
		*in_use_r = (int)pg_int(r, 0, 0);
		*cap_r = (int)pg_int(r, 0, 1);
	}
	PQclear(r);
	pthread_mutex_unlock(&c->lock);
	return ret;
}
