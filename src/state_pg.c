/* state_pg: the state in PostgreSQL (the backend "postgresql"; state.h
 * says what is kept, state_backend.h what every backend promises), for
 * the fleet: many hosts, one database (README "Fleet").
 *
 * The tables are st_accounts, st_folders, st_messages and st_locks
 * (pg_schema.c; made by `trasloco queue init`: a database without them
 * is refused on open, with that command in the message).  Names and keys
 * are bytea, kept as the bytes they are.  Every write is one statement
 * (one round trip, its own transaction), all or none; a ledger batch is
 * one INSERT .. SELECT FROM unnest(arrays) ON CONFLICT DO UPDATE, so
 * its cost does not grow with round trips per row.
 *
 * Account locks are leases: a row of st_locks names its holder (this
 * handle: "host:pid:random") and until when (the database's clock, the
 * one clock every host shares).  A lock is taken when there is no row or
 * its lease has expired (another holder's expired lease is taken over,
 * and logged); a live lease of another holder refuses it.  The handle's
 * heartbeat thread, on its own connection, renews all its leases every
 * lease/6 s; its watchdog thread declares a lock lost when no renewal has
 * succeeded for lease/2 s (the database down, the network cut: the
 * renewal itself may hang, which is why the watchdog is another thread)
 * or when a renewal finds the row no longer ours, and then calls the
 * holder's state_lock_watch callback once.  The lease lasts
 * TRASLOCO_LEASE_SECONDS (2..3600, default 30): tests shorten it.
 *
 * Fencing: every write about an account this handle has locked (ledger
 * rows, folder rows, the status) checks in its own statement that the
 * lease is ours and unexpired, and holds the lease row (FOR SHARE) until
 * it commits, so a takeover waits for it and then sees it; a write about
 * a lock declared lost, or whose lease is gone, is refused (TR_ERR_TEMP,
 * "the lease on this account was lost").  A holder that froze (a stopped
 * process, a partition) and wakes after another took the account over
 * thus writes nothing into the other's ledger.  Accounts this handle has
 * not locked are written as by the other backends.
 *
 * Errors: TR_ERR_TEMP when the database cannot be reached or the
 * connection broke (the text says so, with the database's place), else
 * TR_ERR_LOCAL; a broken connection is made again by the next call
 * (pg.h).  A statement whose reply was lost may have run: every write
 * here is idempotent, so the caller's retry is safe.
 *
 * Ownership: the handle owns its two connections, its threads and its
 * lock records; a lock record is freed by unlock (or close).
 *
 * Threading: the main connection serves one call at a time (a mutex); the
 * lock records are guarded by another mutex shared with the heartbeat and
 * the watchdog, which never hold it across a database call or a callback.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "pg.h"
#include "pg_schema.h"
#include "state.h"
#include "state_backend.h"
#include "text.h"

#define LEASE_DEFAULT_S 30
#define LEASE_MIN_S 2
#define LEASE_MAX_S 3600

enum lock_phase { L_TAKING, L_HELD, L_RELEASING };

struct pgs_lock {
	struct pgs *h;
	int64_t account_id;
	uint64_t round;             /* the heartbeat's last round that renewed it */
	enum lock_phase phase;
	double renewed;             /* monotonic time a successful renewal was sent */
	bool lost;
	char why[160];
	void (*cb)(void *ctx);
	void *cb_ctx;
	bool notified, calling;
	struct pgs_lock *next;
};

struct pgs {
	struct pg *pg;              /* the calls' connection */
	pthread_mutex_t mu;         /* one call at a time on pg */
	atomic_bool day_table;      /* st_day_bytes made by this handle */
	atomic_bool rate_table;     /* st_rates made by this handle */
	char *dsn;                  /* for the heartbeat's connection; wiped on close */
	char path[300];             /* "PostgreSQL user@host:port/db" */
	char holder[128];
	int lease_s;

	pthread_mutex_t lmu;        /* guards everything below */
	pthread_cond_t lcond;       /* changes, the stop */
	struct pgs_lock *locks;
	bool threads, stopping;
	pthread_t hb, wd;
};

static double mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int oom(struct tr_error *err)
{
	tr_error_set(err, TR_ERR_LOCAL, "out of memory");
	return -1;
}

/* err (from pg.c) restated as the state's: what failed, where, and for a
 * TR_ERR_TEMP that the database is out of reach. */
static int db_fail(const struct pgs *h, struct tr_error *err, const char *what)
{
	char old[sizeof(err->msg)];
	const char *m = old;
	size_t pl = strlen(h->path);

	memcpy(old, err->msg, sizeof(old));
	if (strncmp(m, h->path, pl) == 0 && m[pl] == ':')
		m += pl + 1 + (m[pl + 1] == ' ');
	if (err->kind == TR_ERR_TEMP)
		snprintf(err->msg, sizeof(err->msg), "state %s: %s: the database is unreachable "
			 "(try again later): %s", h->path, what, m);
	else
		snprintf(err->msg, sizeof(err->msg), "state %s: %s: %s", h->path, what, m);
	return -1;
}

static int lease_lost(const struct pgs *h, int64_t account_id, struct tr_error *err)
{
	tr_error_set(err, TR_ERR_TEMP, "state %s: account %lld: the lease on this account was "
		     "lost (another holder may have taken it over): write refused", h->path,
		     (long long)account_id);
	return -1;
}

/* ---- growing text, for array literals ------------------------------------ */

struct buf {
	char *p;
	size_t len, cap;
	bool failed;
};

static void buf_add(struct buf *b, const char *s, size_t n)
{
	if (b->failed)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t nc = b->cap ? b->cap * 2 : 256;
		char *np;

		while (nc < b->len + n + 1)
			nc *= 2;
		np = realloc(b->p, nc);
		if (np == NULL) {
			b->failed = true;
			return;
		}
		b->p = np;
		b->cap = nc;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void buf_str(struct buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

static void buf_u64(struct buf *b, uint64_t v)
{
	char t[24];

	buf_add(b, t, (size_t)snprintf(t, sizeof(t), "%" PRIu64, v));
}

/* One element of a text[] literal: NULL, or quoted with \ before " and \. */
static void buf_elem(struct buf *b, const char *s)
{
	size_t n;

	if (s == NULL) {
		buf_str(b, "NULL");
		return;
	}
	buf_add(b, "\"", 1);
	while (*s != '\0') {
		n = strcspn(s, "\"\\");
		buf_add(b, s, n);
		s += n;
		if (*s != '\0') {
			buf_add(b, "\\", 1);
			buf_add(b, s, 1);
			s++;
		}
	}
	buf_add(b, "\"", 1);
}

/* The lease ids of this handle for the fence: live ("{1,2}") and lost. */
static int fence_arrays(struct pgs *h, struct buf *live, struct buf *lost)
{
	struct pgs_lock *l;
	bool fl = true, fd = true;

	buf_str(live, "{");
	buf_str(lost, "{");
	pthread_mutex_lock(&h->lmu);
	for (l = h->locks; l != NULL; l = l->next) {
		struct buf *b;
		bool *first;

		if (l->phase == L_TAKING)
			continue;
		b = l->lost ? lost : live;
		first = l->lost ? &fd : &fl;
		if (!*first)
			buf_add(b, ",", 1);
		*first = false;
		buf_u64(b, (uint64_t)l->account_id);
	}
	pthread_mutex_unlock(&h->lmu);
	buf_str(live, "}");
	buf_str(lost, "}");
	return live->failed || lost->failed ? -1 : 0;
}

/* 0: this handle holds no lock on the account, 1: a live one, 2: a lost one. */
static int lock_state(struct pgs *h, int64_t account_id)
{
	struct pgs_lock *l;
	int r = 0;

	pthread_mutex_lock(&h->lmu);
	for (l = h->locks; l != NULL; l = l->next)
		if (l->account_id == account_id && l->phase != L_TAKING)
			r = l->lost ? 2 : 1;
	pthread_mutex_unlock(&h->lmu);
	return r;
}

/* A bytea result field (text format, "\x..."): a NUL-terminated copy. */
static char *bytea_dup(const PGresult *r, int row, int col)
{
	const char *v = pg_str(r, row, col);
	unsigned char *raw;
	size_t n;
	char *s;

	if (v == NULL)
		return strdup("");
	raw = PQunescapeBytea((const unsigned char *)v, &n);
	if (raw == NULL)
		return NULL;
	s = malloc(n + 1);
	if (s != NULL) {
		memcpy(s, raw, n);
		s[n] = '\0';
	}
	PQfreemem(raw);
	return s;
}

/* pg_execb with bytea params marked (lens > 0), under the handle's mutex. */
static PGresult *run(struct pgs *h, const char *sql, int n, const char *const *params,
		     const int *lens, struct tr_error *err)
{
	PGresult *r;

	pthread_mutex_lock(&h->mu);
	r = pg_execb(h->pg, sql, n, params, lens, err);
	pthread_mutex_unlock(&h->mu);
	return r;
}

/* A bytea parameter's length: binary when it has bytes (text format would
 * read backslashes), "" as text (the empty bytea). */
static int blen(const char *s)
{
	return (int)strlen(s);
}

/* ---- open, close --------------------------------------------------------- */

static void pgs_close(void *vh);

static int lease_from_env(int *lease_r, struct tr_error *err)
{
	const char *v = getenv("TRASLOCO_LEASE_SECONDS");
	char *end;
	long n;

	*lease_r = LEASE_DEFAULT_S;
	if (v == NULL || *v == '\0')
		return 0;
	errno = 0;
	n = strtol(v, &end, 10);
	if (errno != 0 || *end != '\0' || n < LEASE_MIN_S || n > LEASE_MAX_S) {
		tr_error_set(err, TR_ERR_USAGE, "TRASLOCO_LEASE_SECONDS=\"%.20s\": give whole "
			     "seconds from %d to %d", v, LEASE_MIN_S, LEASE_MAX_S);
		return -1;
	}
	*lease_r = (int)n;
	return 0;
}

static void make_holder(char *buf, size_t len)
{
	char host[64];
	unsigned char rnd[6];
	size_t i;

	if (gethostname(host, sizeof(host)) < 0)
		snprintf(host, sizeof(host), "unknown");
	host[sizeof(host) - 1] = '\0';
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
		/* a distinct handle is what matters; the clock and the address
		 * of this buffer tell two handles of one process apart */
		uint64_t x = (uint64_t)mono_s() * 1000003u ^ (uint64_t)(uintptr_t)buf;

		for (i = 0; i < sizeof(rnd); i++)
			rnd[i] = (unsigned char)(x >> (8 * i));
	}
	snprintf(buf, len, "%s:%ld:%02x%02x%02x%02x%02x%02x", host, (long)getpid(), rnd[0],
		 rnd[1], rnd[2], rnd[3], rnd[4], rnd[5]);
}

static int pgs_open(const char *where, void **h_r, struct tr_error *err)
{
	struct pgs *h;
	pthread_condattr_t ca;

	*h_r = NULL;
	h = calloc(1, sizeof(*h));
	if (h == NULL)
		return oom(err);
	pthread_mutex_init(&h->mu, NULL);
	pthread_mutex_init(&h->lmu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&h->lcond, &ca);
	pthread_condattr_destroy(&ca);
	if (lease_from_env(&h->lease_s, err) < 0) {
		pgs_close(h);
		return -1;
	}
	/* "postgresql://..." whole, or what follows "postgresql:" */
	if (strncmp(where, "//", 2) == 0) {
		size_t len = strlen(where) + sizeof("postgresql:");

		h->dsn = malloc(len);
		if (h->dsn != NULL)
			snprintf(h->dsn, len, "postgresql:%s", where);
	} else {
		h->dsn = strdup(where);
	}
	if (h->dsn == NULL) {
		pgs_close(h);
		return oom(err);
	}
	make_holder(h->holder, sizeof(h->holder));
	if (pg_connect(h->dsn, &h->pg, err) < 0) {
		tr_error_prefix(err, err->kind == TR_ERR_TEMP ? "state: the database is unreachable "
				"(try again later)" : "state");
		pgs_close(h);
		return -1;
	}
	snprintf(h->path, sizeof(h->path), "%s", pg_where(h->pg));
	if (pg_schema_check(h->pg, err) < 0) {
		if (err->kind == TR_ERR_TEMP)
			db_fail(h, err, "read the schema version");
		pgs_close(h);
		return -1;
	}
	*h_r = h;
	return 0;
}

static void stop_threads(struct pgs *h)
{
	bool had;

	pthread_mutex_lock(&h->lmu);
	had = h->threads;
	h->stopping = true;
	pthread_cond_broadcast(&h->lcond);
	pthread_mutex_unlock(&h->lmu);
	if (had) {
		pthread_join(h->hb, NULL);
		pthread_join(h->wd, NULL);
	}
}

static void release_row(struct pgs *h, int64_t account_id);

static void pgs_close(void *vh)
{
	struct pgs *h = vh;
	struct pgs_lock *l, *next;

	if (h == NULL)
		return;
	stop_threads(h);
	/* state.c unlocks every lock before; whatever is left goes here */
	for (l = h->locks; l != NULL; l = next) {
		next = l->next;
		if (l->phase != L_TAKING && h->pg != NULL)
			release_row(h, l->account_id);
		free(l);
	}
	pg_close(h->pg);
	if (h->dsn != NULL) {
		memset(h->dsn, 0, strlen(h->dsn));
		free(h->dsn);
	}
	pthread_cond_destroy(&h->lcond);
	pthread_mutex_destroy(&h->lmu);
	pthread_mutex_destroy(&h->mu);
	free(h);
}

static const char *pgs_path(void *vh)
{
	const struct pgs *h = vh;

	return h->path;
}

/* ---- accounts ------------------------------------------------------------ */

static int pgs_account(void *vh, const char *key, int64_t *id_r, struct tr_error *err)
{
	struct pgs *h = vh;
	const char *p[1] = { key };
	int lens[1] = { blen(key) };
	int attempt;

	/* a lookup first: a re-run finds its account without spending an id */
	for (attempt = 0; attempt < 3; attempt++) {
		PGresult *r = run(h, attempt % 2 == 0 ?
				  "SELECT id FROM st_accounts WHERE key = $1" :
				  "INSERT INTO st_accounts (key) VALUES ($1) ON CONFLICT (key) "
				  "DO NOTHING RETURNING id", 1, p, lens, err);

		if (r == NULL)
			return db_fail(h, err, "add account");
		if (PQntuples(r) == 1) {
			*id_r = pg_int(r, 0, 0);
			PQclear(r);
			return 0;
		}
		PQclear(r);
	}
	tr_error_set(err, TR_ERR_LOCAL, "state %s: add account: the row vanished while it was "
		     "made", h->path);
	return -1;
}

static int pgs_account_get_status(void *vh, int64_t account_id, char *buf, size_t len,
				  struct tr_error *err)
{
	struct pgs *h = vh;
	char id[24];
	const char *p[1] = { id };
	PGresult *r;

	snprintf(id, sizeof(id), "%lld", (long long)account_id);
	r = run(h, "SELECT status FROM st_accounts WHERE id = $1", 1, p, NULL, err);
	if (r == NULL)
		return db_fail(h, err, "read account");
	if (PQntuples(r) != 1) {
		PQclear(r);
		tr_error_set(err, TR_ERR_LOCAL, "state %s: read account: no account %lld", h->path,
			     (long long)account_id);
		return -1;
	}
	snprintf(buf, len, "%s", pg_str(r, 0, 0));
	PQclear(r);
	return 0;
}

/* The fence of a statement about one account ($1 the account, $2 this
 * holder, $3 whether this handle holds a live lock on it): ok when not
 * locked here, or when the lease is still ours and unexpired, whose row
 * is then held until the statement commits. */
#define FENCE_ACCOUNT \
	"ok AS (SELECT NOT $3::boolean OR EXISTS (SELECT 1 FROM st_locks WHERE" \
	" account_id = $1 AND holder = $2 AND until > now() FOR SHARE) AS ok)"

static int pgs_account_set_status(void *vh, int64_t account_id, const char *status,
				  const char *error, struct tr_error *err)
{
	struct pgs *h = vh;
	char id[24], *clean = NULL;
	int ls = lock_state(h, account_id);
	const char *p[5] = { id, h->holder, ls == 1 ? "t" : "f", status, NULL };
	PGresult *r;
	bool ok;

	if (ls == 2)
		return lease_lost(h, account_id, err);
	snprintf(id, sizeof(id), "%lld", (long long)account_id);
	if (error != NULL) {
		clean = text_clean_dup(error, NULL);
		p[4] = clean != NULL ? clean : "(error text lost: out of memory)";
	}
	r = run(h, "WITH " FENCE_ACCOUNT ", u AS (UPDATE st_accounts SET status = $4,"
		" error = $5, updated = now() WHERE id = $1 AND (SELECT ok FROM ok))"
		" SELECT (SELECT ok FROM ok)", 5, p, NULL, err);
	free(clean);
	if (r == NULL)
		return db_fail(h, err, "update account");
	ok = pg_str(r, 0, 0) != NULL && pg_str(r, 0, 0)[0] == 't';
	PQclear(r);
	return ok ? 0 : lease_lost(h, account_id, err);
}

/* ---- leases -------------------------------------------------------------- */

static void *heartbeat_main(void *arg);
static void *watchdog_main(void *arg);

/* The caller holds lmu. */
static int start_threads(struct pgs *h, struct tr_error *err)
{
	int e;

	if (h->threads)
		return 0;
	e = pthread_create(&h->hb, NULL, heartbeat_main, h);
	if (e == 0) {
		e = pthread_create(&h->wd, NULL, watchdog_main, h);
		if (e != 0) {
			h->stopping = true;
			pthread_cond_broadcast(&h->lcond);
			pthread_mutex_unlock(&h->lmu);
			pthread_join(h->hb, NULL);
			pthread_mutex_lock(&h->lmu);
			h->stopping = false;
		}
	}
	if (e != 0) {
		tr_error_set(err, TR_ERR_LOCAL, "state %s: cannot start the lease heartbeat: %s",
			     h->path, strerror(e));
		return -1;
	}
	h->threads = true;
	return 0;
}

/* The caller holds lmu. */
static void unlink_lock(struct pgs *h, struct pgs_lock *l)
{
	struct pgs_lock **p;

	for (p = &h->locks; *p != NULL; p = &(*p)->next)
		if (*p == l) {
			*p = l->next;
			break;
		}
}

static int pgs_account_lock(void *vh, int64_t account_id, void **lock_r, struct tr_error *err)
{
	struct pgs *h = vh;
	struct pgs_lock *l, *o;
	char id[24], lease[16];
	const char *p[3] = { id, h->holder, lease };
	const char *old_holder, *old_until;
	PGresult *r;
	double t0;

	*lock_r = NULL;
	l = calloc(1, sizeof(*l));
	if (l == NULL)
		return oom(err);
	l->h = h;
	l->account_id = account_id;
	l->phase = L_TAKING;
	/* one lock per account and handle: a second is refused here, before
	 * the database would take it for a renewal of the first */
	pthread_mutex_lock(&h->lmu);
	for (o = h->locks; o != NULL; o = o->next)
		if (o->account_id == account_id)
			break;
	if (o != NULL) {
		pthread_mutex_unlock(&h->lmu);
		free(l);
		tr_error_set(err, TR_ERR_LOCAL, "another trasloco run is migrating this account "
			     "with the same state right now (another lock of this process holds "
			     "account %lld in %s)", (long long)account_id, h->path);
		snprintf(err->code, sizeof(err->code), "INUSE");
		return -1;
	}
	if (start_threads(h, err) < 0) {
		pthread_mutex_unlock(&h->lmu);
		free(l);
		return -1;
	}
	l->next = h->locks;
	h->locks = l;
	pthread_mutex_unlock(&h->lmu);

	snprintf(id, sizeof(id), "%lld", (long long)account_id);
	snprintf(lease, sizeof(lease), "%d", h->lease_s);
	/* the lease runs from the database's now(), which is after t0 */
	t0 = mono_s();
	r = run(h, "WITH old AS (SELECT holder, until FROM st_locks WHERE account_id = $1),"
		" up AS (INSERT INTO st_locks (account_id, holder, until)"
		"  VALUES ($1, $2, now() + make_interval(secs => $3::int))"
		"  ON CONFLICT (account_id) DO UPDATE SET holder = EXCLUDED.holder,"
		"  until = EXCLUDED.until"
		"  WHERE st_locks.until <= now() OR st_locks.holder = EXCLUDED.holder"
		"  RETURNING 1)"
		" SELECT (SELECT count(*) FROM up), (SELECT holder FROM old),"
		" to_char((SELECT until FROM old) AT TIME ZONE 'UTC',"
		" 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')", 3, p, NULL, err);
	if (r == NULL) {
		db_fail(h, err, "lock account");
		goto refused;
	}
	old_holder = pg_str(r, 0, 1);
	old_until = pg_str(r, 0, 2);
	if (pg_int(r, 0, 0) != 1) {
		tr_error_set(err, TR_ERR_LOCAL, "another trasloco run is migrating this account "
			     "with the same state right now (account %lld in %s is held by %s until "
			     "%s)", (long long)account_id, h->path,
			     old_holder != NULL ? old_holder : "another holder",
			     old_until != NULL ? old_until : "its lease ends");
		snprintf(err->code, sizeof(err->code), "INUSE");
		PQclear(r);
		goto refused;
	}
	if (old_holder != NULL && strcmp(old_holder, h->holder) != 0)
		log_info(NULL, "state %s: account %lld: took over the lease of %s, expired at %s",
			 h->path, (long long)account_id, old_holder,
			 old_until != NULL ? old_until : "?");
	PQclear(r);
	pthread_mutex_lock(&h->lmu);
	l->renewed = t0;
	l->phase = L_HELD;
	pthread_cond_broadcast(&h->lcond);
	pthread_mutex_unlock(&h->lmu);
	*lock_r = l;
	return 0;
refused:
	pthread_mutex_lock(&h->lmu);
	unlink_lock(h, l);
	pthread_mutex_unlock(&h->lmu);
	free(l);
	return -1;
}

/* Delete the lease row if it is still ours (another holder's stays). */
static void release_row(struct pgs *h, int64_t account_id)
{
	struct tr_error err;
	char id[24];
	const char *p[2] = { id, h->holder };

	snprintf(id, sizeof(id), "%lld", (long long)account_id);
	tr_error_clear(&err);
	pthread_mutex_lock(&h->mu);
	if (pg_run(h->pg, "DELETE FROM st_locks WHERE account_id = $1 AND holder = $2", 2, p,
		   &err) < 0) {
		db_fail(h, &err, "unlock account");
		log_warn(NULL, "%s (the lease ends by itself within %d s)", err.msg, h->lease_s);
	}
	pthread_mutex_unlock(&h->mu);
}

static void pgs_account_unlock(void *vh, void *lock)
{
	struct pgs *h = vh;
	struct pgs_lock *l = lock;

	pthread_mutex_lock(&h->lmu);
	/* the lost callback may be running: the call may come until unlock
	 * returns, never after (unless it is the callback that unlocks) */
	while (l->calling && !pthread_equal(pthread_self(), h->wd))
		pthread_cond_wait(&h->lcond, &h->lmu);
	l->phase = L_RELEASING;
	pthread_mutex_unlock(&h->lmu);
	/* still on the list while the row goes: a new lock of the account
	 * through this handle waits for the end (refused meanwhile) */
	release_row(h, l->account_id);
	pthread_mutex_lock(&h->lmu);
	unlink_lock(h, l);
	pthread_mutex_unlock(&h->lmu);
	free(l);
}

static void pgs_lock_watch(void *vh, void *lock, void (*lost)(void *ctx), void *ctx)
{
	struct pgs *h = vh;
	struct pgs_lock *l = lock;

	pthread_mutex_lock(&h->lmu);
	l->cb = lost;
	l->cb_ctx = ctx;
	/* lost already: the watchdog calls it on its next look */
	pthread_cond_broadcast(&h->lcond);
	pthread_mutex_unlock(&h->lmu);
}

/* The caller holds lmu. */
static void declare_lost(struct pgs *h, struct pgs_lock *l, const char *why)
{
	if (l->lost)
		return;
	l->lost = true;
	snprintf(l->why, sizeof(l->why), "%s", why);
	log_warn(NULL, "state %s: account %lld: the lease was lost (%s): the account's writes "
		 "are refused from now on", h->path, (long long)l->account_id, why);
	pthread_cond_broadcast(&h->lcond);
}

static void deadline_in(struct timespec *ts, double s)
{
	double t = mono_s() + s;

	ts->tv_sec = (time_t)t;
	ts->tv_nsec = (long)((t - (double)ts->tv_sec) * 1e9);
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

/* Every lease/6 s: renew all held leases in one statement on the
 * heartbeat's own connection (a call of the handle may be waiting for its
 * lease row meanwhile: the same connection would deadlock). */
static void *heartbeat_main(void *arg)
{
	struct pgs *h = arg;
	struct pg *pg = NULL;
	struct timespec ts;
	struct buf ids = { 0 };
	uint64_t round = 0;
	bool warned = false;

	pthread_mutex_lock(&h->lmu);
	while (!h->stopping) {
		struct pgs_lock *l;
		struct tr_error err;
		char lease[16];
		const char *p[3];
		PGresult *r = NULL;
		double t0;
		int n = 0, i;

		deadline_in(&ts, (double)h->lease_s / 6.0);
		while (!h->stopping && pthread_cond_timedwait(&h->lcond, &h->lmu, &ts) != ETIMEDOUT)
			;
		if (h->stopping)
			break;
		round++;
		ids.len = 0;
		ids.failed = false;
		buf_str(&ids, "{");
		for (l = h->locks; l != NULL; l = l->next) {
			if (l->phase != L_HELD || l->lost)
				continue;
			l->round = round;
			if (n++ > 0)
				buf_add(&ids, ",", 1);
			buf_u64(&ids, (uint64_t)l->account_id);
		}
		buf_str(&ids, "}");
		if (n == 0 || ids.failed)
			continue;
		pthread_mutex_unlock(&h->lmu);

		tr_error_clear(&err);
		snprintf(lease, sizeof(lease), "%d", h->lease_s);
		p[0] = h->holder;
		p[1] = ids.p;
		p[2] = lease;
		t0 = mono_s();
		if (pg == NULL && pg_connect(h->dsn, &pg, &err) < 0)
			pg = NULL;
		if (pg != NULL)
			r = pg_exec(pg, "UPDATE st_locks SET until = now() + make_interval(secs =>"
				    " $3::int) WHERE holder = $1 AND account_id = ANY($2::bigint[])"
				    " AND until > now() RETURNING account_id", 3, p, &err);
		if (r == NULL && !warned) {
			db_fail(h, &err, "renew the account leases");
			log_warn(NULL, "%s", err.msg);
			warned = true;
		}

		pthread_mutex_lock(&h->lmu);
		if (r == NULL)
			continue;       /* the watchdog judges the time without renewal */
		warned = false;
		for (l = h->locks; l != NULL; l = l->next) {
			bool found = false;

			/* only the ones this round asked for (a lock taken meanwhile
			 * was not in it) */
			if (l->round != round || l->phase != L_HELD || l->lost)
				continue;
			for (i = 0; i < PQntuples(r) && !found; i++)
				found = pg_int(r, i, 0) == l->account_id;
			if (found)
				l->renewed = t0;
			else
				declare_lost(h, l, "its row is no longer ours: expired or taken over");
		}
		PQclear(r);
		pthread_cond_broadcast(&h->lcond);
	}
	pthread_mutex_unlock(&h->lmu);
	pg_close(pg);
	free(ids.p);
	return NULL;
}

/* Judges time: a lease not renewed for lease/2 s is lost; calls each lost
 * lock's callback once, without lmu held. */
static void *watchdog_main(void *arg)
{
	struct pgs *h = arg;
	double half = (double)h->lease_s / 2.0, tick = (double)h->lease_s / 12.0;
	struct timespec ts;

	if (tick > 1.0)
		tick = 1.0;
	pthread_mutex_lock(&h->lmu);
	while (!h->stopping) {
		struct pgs_lock *l;
		double now = mono_s();

		for (l = h->locks; l != NULL; l = l->next) {
			char why[96];

			if (l->phase != L_HELD || l->lost || now - l->renewed < half)
				continue;
			snprintf(why, sizeof(why), "not renewed for %.1f s", now - l->renewed);
			declare_lost(h, l, why);
		}
again:
		for (l = h->locks; l != NULL; l = l->next) {
			void (*cb)(void *);
			void *ctx;

			if (!l->lost || l->cb == NULL || l->notified || l->phase != L_HELD)
				continue;
			l->notified = true;
			l->calling = true;
			cb = l->cb;
			ctx = l->cb_ctx;
			pthread_mutex_unlock(&h->lmu);
			cb(ctx);
			pthread_mutex_lock(&h->lmu);
			l->calling = false;
			pthread_cond_broadcast(&h->lcond);
			/* the list may have changed meanwhile */
			goto again;
		}
		deadline_in(&ts, tick);
		while (!h->stopping && pthread_cond_timedwait(&h->lcond, &h->lmu, &ts) != ETIMEDOUT)
			;
	}
	pthread_mutex_unlock(&h->lmu);
	return NULL;
}

/* ---- folders ------------------------------------------------------------- */

/* The fence of a statement about one folder ($1 the folder, $2 this
 * holder, $3 and $4 the accounts this handle holds live and lost leases
 * on): ok when the folder's account is not locked here, or its lease is
 * ours and unexpired (that row held until commit); folder: it exists. */
#define FENCE_FOLDER \
	"fo AS (SELECT account_id, account_id = ANY($3::bigint[]) AS live," \
	"  account_id = ANY($4::bigint[]) AS lost FROM st_folders WHERE id = $1)," \
	" ls AS (SELECT 1 FROM st_locks l JOIN fo ON l.account_id = fo.account_id" \
	"  WHERE fo.live AND l.holder = $2 AND l.until > now() FOR SHARE OF l)," \
	" ok AS (SELECT EXISTS (SELECT 1 FROM fo) AS folder," \
	"  EXISTS (SELECT 1 FROM fo WHERE NOT live AND NOT lost) OR EXISTS (SELECT 1 FROM ls)" \
	"  AS ok)"
#define FENCE_RESULT " SELECT (SELECT folder FROM ok), (SELECT ok FROM ok), (SELECT account_id FROM fo)"

/* Run a folder statement (FENCE_FOLDER .. FENCE_RESULT) whose $5.. are
 * extra (n of them, lens for bytea).  1: done; 0: no such folder; -1 with
 * err (the fence refused it: TR_ERR_TEMP). */
static int folder_stmt(struct pgs *h, int64_t folder_id, const char *sql, int n,
		       const char *const *extra, const int *extra_lens, const char *what,
		       struct tr_error *err)
{
	struct buf live = { 0 }, lost = { 0 };
	const char *p[16];
	int lens[16] = { 0 };
	char id[24];
	PGresult *r;
	int i, res;

	if (fence_arrays(h, &live, &lost) < 0) {
		free(live.p);
		free(lost.p);
		return oom(err);
	}
	snprintf(id, sizeof(id), "%lld", (long long)folder_id);
	p[0] = id;
	p[1] = h->holder;
	p[2] = live.p;
	p[3] = lost.p;
	for (i = 0; i < n; i++) {
		p[4 + i] = extra[i];
		lens[4 + i] = extra_lens != NULL ? extra_lens[i] : 0;
	}
	r = run(h, sql, 4 + n, p, lens, err);
	free(live.p);
	free(lost.p);
	if (r == NULL)
		return db_fail(h, err, what);
	if (pg_str(r, 0, 0) == NULL || pg_str(r, 0, 0)[0] != 't')
		res = 0;
	else if (pg_str(r, 0, 1) != NULL && pg_str(r, 0, 1)[0] == 't')
		res = 1;
	else
		res = lease_lost(h, pg_int(r, 0, 2), err);
	PQclear(r);
	return res;
}

static int reset_folder(struct pgs *h, struct state_folder *f, const char *new_dst,
			struct tr_error *err)
{
	const char *x[1] = { new_dst };
	int xl[1] = { new_dst != NULL ? blen(new_dst) : 0 };

	if (folder_stmt(h, f->id, "WITH " FENCE_FOLDER ","
			" d AS (DELETE FROM st_messages WHERE folder_id = $1 AND (SELECT ok FROM ok)),"
			" u AS (UPDATE st_folders SET src_uidvalidity = 0, dst_uidvalidity = 0,"
			"  src_uidnext = 0, src_modseq = 0, src_messages = 0,"
			"  dst_name = COALESCE($5::bytea, dst_name)"
			"  WHERE id = $1 AND (SELECT ok FROM ok))" FENCE_RESULT, 1, x, xl,
			new_dst != NULL ? "rename folder" : "reset folder", err) < 0)
		return -1;
	f->src_uidvalidity = f->dst_uidvalidity = f->src_uidnext = f->src_messages = 0;
	f->src_modseq = 0;
	f->unsettled = 0;
	return 0;
}

static int pgs_folder_load(void *vh, int64_t account_id, const char *src_name,
			   const char *dst_name, struct state_folder *f, struct tr_error *err)
{
	struct pgs *h = vh;
	char id[24];
	int ls = lock_state(h, account_id);
	const char *p[4] = { id, src_name, dst_name, NULL };
	int lens[4] = { 0, blen(src_name), blen(dst_name), 0 };
	int attempt;

	memset(f, 0, sizeof(*f));
	snprintf(id, sizeof(id), "%lld", (long long)account_id);
	for (attempt = 0; attempt < 3; attempt++) {
		PGresult *r = run(h, "SELECT id, dst_name = $3, src_uidvalidity, dst_uidvalidity,"
				  " src_uidnext, src_modseq, src_messages,"
				  " (SELECT count(*) FROM st_messages m WHERE m.folder_id = f.id"
				  "  AND m.state <> 1)"
				  " FROM st_folders f WHERE account_id = $1 AND src_name = $2",
				  3, p, lens, err);
		bool same;
		const char *q[5];
		int ql[5];

		if (r == NULL)
			return db_fail(h, err, "load folder");
		if (PQntuples(r) == 1) {
			f->id = pg_int(r, 0, 0);
			same = pg_str(r, 0, 1) != NULL && pg_str(r, 0, 1)[0] == 't';
			f->src_uidvalidity = (uint32_t)pg_int(r, 0, 2);
			f->dst_uidvalidity = (uint32_t)pg_int(r, 0, 3);
			f->src_uidnext = (uint32_t)pg_int(r, 0, 4);
			f->src_modseq = (uint64_t)pg_int(r, 0, 5);
			f->src_messages = (uint32_t)pg_int(r, 0, 6);
			f->unsettled = (uint32_t)pg_int(r, 0, 7);
			PQclear(r);
			/* The folder now goes elsewhere (a new --map): the old ledger
			 * says nothing about the new destination. */
			return same ? 0 : reset_folder(h, f, dst_name, err);
		}
		PQclear(r);
		if (ls == 2)
			return lease_lost(h, account_id, err);
		q[0] = id;
		q[1] = h->holder;
		q[2] = ls == 1 ? "t" : "f";
		q[3] = src_name;
		q[4] = dst_name;
		ql[0] = ql[1] = ql[2] = 0;
		ql[3] = blen(src_name);
		ql[4] = blen(dst_name);
		r = run(h, "WITH " FENCE_ACCOUNT ", i AS (INSERT INTO st_folders (account_id,"
			" src_name, dst_name) SELECT $1, $4, $5 WHERE (SELECT ok FROM ok)"
			" ON CONFLICT (account_id, src_name) DO NOTHING)"
			" SELECT (SELECT ok FROM ok)", 5, q, ql, err);
		if (r == NULL)
			return db_fail(h, err, "add folder");
		same = pg_str(r, 0, 0) != NULL && pg_str(r, 0, 0)[0] == 't';
		PQclear(r);
		if (!same)
			return lease_lost(h, account_id, err);
	}
	tr_error_set(err, TR_ERR_LOCAL, "state %s: add folder: the row vanished while it was "
		     "made", h->path);
	return -1;
}

static int pgs_folder_saved_dst(void *vh, int64_t account_id, const char *src_name,
				char **dst_name_r, struct tr_error *err)
{
	struct pgs *h = vh;
	char id[24];
	const char *p[2] = { id, src_name };
	int lens[2] = { 0, blen(src_name) };
	PGresult *r;
	int res = 0;

	*dst_name_r = NULL;
	snprintf(id, sizeof(id), "%lld", (long long)account_id);
	r = run(h, "SELECT dst_name FROM st_folders WHERE account_id = $1 AND src_name = $2", 2,
		p, lens, err);
	if (r == NULL)
		return db_fail(h, err, "load folder");
	if (PQntuples(r) == 1) {
		*dst_name_r = bytea_dup(r, 0, 0);
		res = *dst_name_r != NULL ? 1 : oom(err);
	}
	PQclear(r);
	return res;
}

static int pgs_folder_reset(void *vh, struct state_folder *f, struct tr_error *err)
{
	return reset_folder(vh, f, NULL, err);
}

static int pgs_folder_save(void *vh, const struct state_folder *f, struct tr_error *err)
{
	struct pgs *h = vh;
	char v[5][24];
	const char *x[5] = { v[0], v[1], v[2], v[3], v[4] };

	snprintf(v[0], sizeof(v[0]), "%" PRIu32, f->src_uidvalidity);
	snprintf(v[1], sizeof(v[1]), "%" PRIu32, f->dst_uidvalidity);
	snprintf(v[2], sizeof(v[2]), "%" PRIu32, f->src_uidnext);
	/* bigint holds HIGHESTMODSEQ's 63 bits; the cast keeps all 64 */
	snprintf(v[3], sizeof(v[3]), "%" PRId64, (int64_t)f->src_modseq);
	snprintf(v[4], sizeof(v[4]), "%" PRIu32, f->src_messages);
	return folder_stmt(h, f->id, "WITH " FENCE_FOLDER ", u AS (UPDATE st_folders SET"
			   " src_uidvalidity = $5, dst_uidvalidity = $6, src_uidnext = $7,"
			   " src_modseq = $8, src_messages = $9 WHERE id = $1 AND"
			   " (SELECT ok FROM ok))" FENCE_RESULT, 5, x, NULL, "save folder",
			   err) < 0 ? -1 : 0;
}

/* ---- the ledger ---------------------------------------------------------- */

static int pgs_msgs_load(void *vh, int64_t folder_id, struct state_msg **rows_r, size_t *n_r,
			 struct tr_error *err)
{
	struct pgs *h = vh;
	struct state_msg *rows;
	char id[24];
	const char *p[1] = { id };
	PGresult *r;
	size_t i, n;

	*rows_r = NULL;
	*n_r = 0;
	snprintf(id, sizeof(id), "%lld", (long long)folder_id);
	r = run(h, "SELECT src_uid, dst_uid, state, encode(fp, 'hex'), dst_uidnext, flags, error"
		" FROM st_messages WHERE folder_id = $1 ORDER BY src_uid", 1, p, NULL, err);
	if (r == NULL)
		return db_fail(h, err, "load ledger");
	n = (size_t)PQntuples(r);
	if (n == 0) {
		PQclear(r);
		return 0;
	}
	rows = calloc(n, sizeof(*rows));
	if (rows == NULL) {
		PQclear(r);
		return oom(err);
	}
	for (i = 0; i < n; i++) {
		struct state_msg *m = &rows[i];
		const char *e = pg_str(r, (int)i, 6);

		m->src_uid = (uint32_t)pg_int(r, (int)i, 0);
		m->dst_uid = (uint32_t)pg_int(r, (int)i, 1);
		m->state = (enum state_msg_state)pg_int(r, (int)i, 2);
		m->has_fp = fp_from_hex(pg_str(r, (int)i, 3), m->fp) == 0;
		m->dst_uidnext = (uint32_t)pg_int(r, (int)i, 4);
		m->flags = strdup(pg_str(r, (int)i, 5) != NULL ? pg_str(r, (int)i, 5) : "");
		m->error = e != NULL ? strdup(e) : NULL;
		if (m->flags == NULL || (e != NULL && m->error == NULL)) {
			PQclear(r);
			state_rows_free(rows, i + 1);
			return oom(err);
		}
	}
	PQclear(r);
	*rows_r = rows;
	*n_r = n;
	return 0;
}

static int pgs_msgs_put(void *vh, int64_t folder_id, const struct state_msg *rows, size_t n,
			struct tr_error *err)
{
	struct pgs *h = vh;
	struct buf a[7] = { { 0 } };
	const char *x[7];
	size_t i, k;
	int r;

	for (k = 0; k < 7; k++)
		buf_str(&a[k], "{");
	for (i = 0; i < n; i++) {
		const struct state_msg *m = &rows[i];
		char hex[FP_HEX_LEN + 1];

		if (i > 0)
			for (k = 0; k < 7; k++)
				buf_add(&a[k], ",", 1);
		buf_u64(&a[0], m->src_uid);
		buf_u64(&a[1], m->dst_uid);
		buf_u64(&a[2], (uint64_t)m->state);
		if (m->has_fp) {
			fp_to_hex(m->fp, hex);
			buf_str(&a[3], hex);
		} else {
			buf_str(&a[3], "NULL");
		}
		buf_u64(&a[4], m->dst_uidnext);
		buf_elem(&a[5], m->flags != NULL ? m->flags : "");
		if (m->error != NULL) {
			char *c = text_clean_dup(m->error, NULL);

			buf_elem(&a[6], c != NULL ? c : "(error text lost: out of memory)");
			free(c);
		} else {
			buf_elem(&a[6], NULL);
		}
	}
	for (k = 0; k < 7; k++) {
		buf_str(&a[k], "}");
		x[k] = a[k].p;
	}
	for (k = 0; k < 7 && !a[k].failed; k++)
		;
	if (k < 7) {
		r = oom(err);
	} else {
		/* the last of a src_uid given twice wins, as a replace would */
		r = folder_stmt(h, folder_id, "WITH " FENCE_FOLDER ","
				" i AS (INSERT INTO st_messages (folder_id, src_uid, dst_uid, state, fp,"
				"  dst_uidnext, flags, error)"
				"  SELECT DISTINCT ON (u.s) $1, u.s, u.d, u.st, decode(u.fp, 'hex'), u.nx,"
				"  u.fl, u.er FROM unnest($5::bigint[], $6::bigint[], $7::smallint[],"
				"  $8::text[], $9::bigint[], $10::text[], $11::text[]) WITH ORDINALITY"
				"  AS u(s, d, st, fp, nx, fl, er, ord)"
				"  WHERE (SELECT ok FROM ok) ORDER BY u.s, u.ord DESC"
				"  ON CONFLICT (folder_id, src_uid) DO UPDATE SET dst_uid = EXCLUDED.dst_uid,"
				"  state = EXCLUDED.state, fp = EXCLUDED.fp,"
				"  dst_uidnext = EXCLUDED.dst_uidnext, flags = EXCLUDED.flags,"
				"  error = EXCLUDED.error)" FENCE_RESULT, 7, x, NULL, "write ledger",
				err);
		if (r == 0) {
			tr_error_set(err, TR_ERR_LOCAL, "state %s: write ledger: no folder %lld",
				     h->path, (long long)folder_id);
			r = -1;
		}
	}
	for (k = 0; k < 7; k++)
		free(a[k].p);
	return r < 0 ? -1 : 0;
}

static int pgs_msgs_delete(void *vh, int64_t folder_id, const uint32_t *src_uids, size_t n,
			   struct tr_error *err)
{
	struct pgs *h = vh;
	struct buf a = { 0 };
	const char *x[1];
	size_t i;
	int r;

	buf_str(&a, "{");
	for (i = 0; i < n; i++) {
		if (i > 0)
			buf_add(&a, ",", 1);
		buf_u64(&a, src_uids[i]);
	}
	buf_str(&a, "}");
	if (a.failed) {
		free(a.p);
		return oom(err);
	}
	x[0] = a.p;
	r = folder_stmt(h, folder_id, "WITH " FENCE_FOLDER ", d AS (DELETE FROM st_messages"
			" WHERE folder_id = $1 AND src_uid = ANY($5::bigint[]) AND"
			" (SELECT ok FROM ok))" FENCE_RESULT, 1, x, NULL, "delete ledger rows", err);
	free(a.p);
	return r < 0 ? -1 : 0;
}

/* A table outside pg_schema.c's versions (counts an older trasloco
 * ignores), made once per handle, not a round trip per call.  Two
 * processes making it at the same moment can collide on the catalog's
 * unique index: the loser's second try finds the table there. */
static int ensure_table(struct pgs *h, atomic_bool *made, const char *sql, const char *what,
			struct tr_error *err)
{
	PGresult *r = NULL;

	if (atomic_load(made))
		return 0;
	for (int i = 0; i < 2 && r == NULL; i++)
		r = run(h, sql, 0, NULL, NULL, err);
	if (r == NULL)
		return db_fail(h, err, what);
	PQclear(r);
	atomic_store(made, true);
	return 0;
}

static int pgs_day_bytes_add(void *vh, const char *key, int64_t day, int64_t delta,
			     uint64_t *total_r, struct tr_error *err)
{
	struct pgs *h = vh;
	char d[24], n[24];
	const char *p[3] = { key, d, n };
	PGresult *r;

	snprintf(d, sizeof(d), "%lld", (long long)day);
	snprintf(n, sizeof(n), "%lld", (long long)delta);
	if (ensure_table(h, &h->day_table, "CREATE TABLE IF NOT EXISTS st_day_bytes (key text "
			 "NOT NULL, day bigint NOT NULL, bytes bigint NOT NULL, PRIMARY KEY (key, day))",
			 "count the day's bytes", err) < 0)
		return -1;
	r = run(h, "INSERT INTO st_day_bytes (key, day, bytes) VALUES ($1, $2, greatest($3::bigint, 0)) "
		"ON CONFLICT (key, day) DO UPDATE SET bytes = greatest(st_day_bytes.bytes + $3::bigint, 0) "
		"RETURNING bytes", 3, p, NULL, err);
	if (r == NULL)
		return db_fail(h, err, "count the day's bytes");
	if (PQntuples(r) != 1) {
		PQclear(r);
		tr_error_set(err, TR_ERR_LOCAL, "state %s: count the day's bytes: no row", h->path);
		return -1;
	}
	*total_r = strtoull(pg_str(r, 0, 0), NULL, 10);
	PQclear(r);
	return 0;
}

/* The schedule of a rate shared by every process using this database: one
 * statement, so that takers serialise on the row; the database's clock,
 * so that the hosts' clocks need not agree. */
static int pgs_rate_take(void *vh, const char *key, double cost_s, double *wait_r,
			 struct tr_error *err)
{
	struct pgs *h = vh;
	char c[40];
	const char *p[2] = { key, c };
	PGresult *r;

	snprintf(c, sizeof(c), "%.9f", cost_s);
	if (ensure_table(h, &h->rate_table, "CREATE TABLE IF NOT EXISTS st_rates (key text "
			 "PRIMARY KEY, tat double precision NOT NULL)", "take from a shared rate",
			 err) < 0)
		return -1;
	r = run(h, "INSERT INTO st_rates AS r (key, tat) VALUES ($1, "
		"extract(epoch FROM clock_timestamp())::float8 + $2::float8) "
		"ON CONFLICT (key) DO UPDATE SET tat = greatest(r.tat, "
		"extract(epoch FROM clock_timestamp())::float8) + $2::float8 "
		"RETURNING tat - extract(epoch FROM clock_timestamp())::float8", 2, p, NULL, err);
	if (r == NULL)
		return db_fail(h, err, "take from a shared rate");
	if (PQntuples(r) != 1) {
		PQclear(r);
		tr_error_set(err, TR_ERR_LOCAL, "state %s: take from a shared rate: no row", h->path);
		return -1;
	}
	*wait_r = strtod(pg_str(r, 0, 0), NULL);
	PQclear(r);
	return 0;
}

const struct state_backend state_backend_pg = {
	.name = "postgresql",
	.where = "//USER@HOST:PORT/DB",
	.durable = true,
	.open = pgs_open,
	.close = pgs_close,
	.path = pgs_path,
	.account = pgs_account,
	.account_lock = pgs_account_lock,
	.account_unlock = pgs_account_unlock,
	.lock_watch = pgs_lock_watch,
	.account_get_status = pgs_account_get_status,
	.account_set_status = pgs_account_set_status,
	.folder_load = pgs_folder_load,
	.folder_saved_dst = pgs_folder_saved_dst,
	.folder_reset = pgs_folder_reset,
	.folder_save = pgs_folder_save,
	.msgs_load = pgs_msgs_load,
	.msgs_put = pgs_msgs_put,
	.msgs_delete = pgs_msgs_delete,
	.day_bytes_add = pgs_day_bytes_add,
	.rate_take = pgs_rate_take,
};
