/* queue_sqlite: the queue in one SQLite database, DIR/queue.sqlite (the
 * backend "sqlite", and what a plain directory means; queue.h says what a
 * queue does, queue_backend.h what every backend keeps).
 *
 * For one host: `trasloco serve` running jobs itself, or a few `trasloco
 * worker DIR` processes of that host sharing DIR (their state is DIR's
 * too: state_sqlite.c's DIR/state.db and DIR/locks/).  The SQL follows
 * queue_pg.c's statement by statement, with the same tables and columns,
 * so the two read side by side.
 *
 * The database is a private file (0600) in a private directory (privdir.h):
 * it holds logins, and the passwords sealed (seal.h).  WAL (readers never
 * wait for the writer), synchronous=FULL (a claim or an outcome committed
 * is on disk), a busy timeout (writers of other threads and processes
 * take turns; one still busy after it is TR_ERR_TEMP).
 *
 * Times are seconds since the epoch by this host's clock (NOW), and so are
 * the leases.  Every write of more than one statement is one BEGIN
 * IMMEDIATE transaction, which takes the write lock before it reads: a
 * claim (find the first claimable account, make it the worker's) is
 * atomic across threads and processes.
 *
 * Passes (queue_pass, queue_schedule) take the write lock as every write
 * does: two callers never change one job's passes at once, and a
 * scheduled pass another caller just started is seen (its accounts
 * pending), so each starts once.
 *
 * A handle of this process never closes a descriptor of the file (SQLite
 * alone holds them): the close() of any would drop every fcntl lock the
 * process holds on it (privdir_file_check).
 *
 * A worker's lease outlives its process: after a crash, its accounts are
 * claimable again once their leases expire.  A worker that registers ends
 * that wait for the workers of this host whose process is gone (kill(pid,
 * 0)): their running accounts' leases are expired at once, so a service
 * restarted after a crash takes its accounts back (as takeovers) without
 * waiting out their leases.
 *
 * The schema has a version (meta.schema): opening makes a new database or
 * upgrades an older one in one transaction, step by step (upgrades[]), and
 * refuses one written by a newer trasloco.
 *
 * Ownership and threading: a handle owns its connection and is used by
 * one thread at a time (queue.h); threads open their own.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include <sqlite3.h>

#include "account.h"
#include "log.h"
#include "privdir.h"
#include "queue.h"
#include "queue_backend.h"
#include "queue_status.h"
#include "secret.h"
#include "text.h"
#include "verify.h"

#define QUEUE_FILE "queue.sqlite"
/* How long a writer waits for another's transaction (ms). */
#define BUSY_MS 10000

/* Now, in seconds since the epoch (to the millisecond), by this host's
 * clock: PostgreSQL's now().  One value within a statement. */
#define NOW "((julianday('now') - 2440587.5) * 86400.0)"
/* A time as ISO 8601 UTC, PostgreSQL's to_char(x, 'YYYY-MM-DD"T"HH24:MI:SS"Z"'). */
#define ISO(x) "strftime('%Y-%m-%dT%H:%M:%SZ', " x ", 'unixepoch')"
/* The row's claim verifies (its copy's counters and error stay). */
#define VERIFYING "(pass IN ('verify', 'final-verify'))"

/* Serialises the file's check: a thread that just made the file closes its
 * descriptor before another thread of the process may open a connection
 * (and take locks) on it (privdir.h, privdir_file_check). */
static pthread_mutex_t file_check_mu = PTHREAD_MUTEX_INITIALIZER;

struct qsq {
	sqlite3 *db;
	char *path;
	const struct seal_keys *keys;
};

/* Version 1: the tables of queue_pg.c's (pg_schema.c, versions 1 and 2)
 * but q_sessions and q_cap_logins: the caps are held in each worker's
 * process.  AUTOINCREMENT: an id is never used again, as a sequence's.
 * The columns' meaning: pg_schema.c. */
static const char schema_v1[] =
	"CREATE TABLE IF NOT EXISTS meta ("
	"  key TEXT PRIMARY KEY, value TEXT NOT NULL);"
	"CREATE TABLE q_jobs ("
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  name TEXT NOT NULL,"
	"  config TEXT NOT NULL,"
	"  src TEXT NOT NULL,"
	"  dst TEXT NOT NULL,"
	"  admin_password BLOB,"
	"  skipped TEXT NOT NULL DEFAULT '[]',"
	"  created REAL NOT NULL,"
	"  cancelled REAL,"
	"  pass_kind TEXT NOT NULL DEFAULT 'run' CHECK (pass_kind IN"
	"    ('run', 'delta', 'verify', 'final')),"
	"  pass_count INTEGER NOT NULL DEFAULT 1,"
	"  pass_started REAL,"
	"  pass_every INTEGER CHECK (pass_every > 0),"
	"  final INTEGER NOT NULL DEFAULT 0,"
	"  last_pass_kind TEXT,"
	"  last_pass_seconds REAL);"
	"CREATE INDEX q_jobs_name ON q_jobs (name);"
	"CREATE INDEX q_jobs_scheduled ON q_jobs (id) WHERE pass_every IS NOT NULL"
	"  AND NOT final;"
	"CREATE TABLE q_accounts ("
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  job_id INTEGER NOT NULL REFERENCES q_jobs(id) ON DELETE CASCADE,"
	"  line INTEGER NOT NULL DEFAULT 0,"
	"  email BLOB NOT NULL,"
	"  src_user BLOB,"
	"  dst_user BLOB,"
	"  password BLOB,"
	"  dst_password BLOB,"
	"  state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN"
	"    ('pending', 'running', 'ok', 'partial', 'failed', 'cancelled')),"
	"  worker TEXT,"
	"  lease_until REAL,"
	"  not_before REAL,"
	"  attempts INTEGER NOT NULL DEFAULT 0,"
	"  takeovers INTEGER NOT NULL DEFAULT 0,"
	"  error TEXT,"
	"  copied INTEGER NOT NULL DEFAULT 0,"
	"  present INTEGER NOT NULL DEFAULT 0,"
	"  failed_msgs INTEGER NOT NULL DEFAULT 0,"
	"  bytes INTEGER NOT NULL DEFAULT 0,"
	"  folders_done INTEGER NOT NULL DEFAULT 0,"
	"  folders_total INTEGER NOT NULL DEFAULT 0,"
	"  started REAL,"
	"  finished REAL,"
	"  seconds REAL NOT NULL DEFAULT 0,"
	"  pass TEXT NOT NULL DEFAULT 'run' CHECK (pass IN"
	"    ('run', 'delta', 'verify', 'final', 'final-verify')),"
	"  outcome TEXT CHECK (outcome IN ('ok', 'partial', 'failed')),"
	"  outcome_error TEXT,"
	"  failures_more INTEGER NOT NULL DEFAULT 0,"
	"  verify_at REAL,"
	"  verify_exact INTEGER,"
	"  verify TEXT,"
	"  error_kind TEXT,"
	"  outcome_kind TEXT,"
	"  refused_src INTEGER NOT NULL DEFAULT 0,"
	"  refused_dst INTEGER NOT NULL DEFAULT 0,"
	"  UNIQUE (job_id, email));"
	"CREATE INDEX q_accounts_todo ON q_accounts (job_id, id)"
	"  WHERE state IN ('pending', 'running');"
	"CREATE INDEX q_accounts_worker ON q_accounts (worker) WHERE state = 'running';"
	"CREATE TABLE q_workers ("
	"  id TEXT PRIMARY KEY,"
	"  host TEXT NOT NULL,"
	"  pid INTEGER NOT NULL,"
	"  egress TEXT NOT NULL DEFAULT '',"
	"  parallel INTEGER NOT NULL DEFAULT 1,"
	"  started REAL NOT NULL,"
	"  seen REAL NOT NULL,"
	"  stopped REAL);"
	/* the caps as submitted (each worker holds them in its limiters) */
	"CREATE TABLE q_caps ("
	"  job_id INTEGER NOT NULL REFERENCES q_jobs(id) ON DELETE CASCADE,"
	"  side TEXT NOT NULL CHECK (side IN ('src', 'dst')),"
	"  max_per_account INTEGER NOT NULL,"
	"  max_total INTEGER NOT NULL,"
	"  per_egress INTEGER NOT NULL DEFAULT 0,"
	"  PRIMARY KEY (job_id, side));"
	"CREATE TABLE q_folders ("
	"  account_id INTEGER NOT NULL REFERENCES q_accounts(id) ON DELETE CASCADE,"
	"  idx INTEGER NOT NULL,"
	"  src_name BLOB NOT NULL,"
	"  dst_name BLOB NOT NULL,"
	"  status TEXT NOT NULL CHECK (status IN ('ok', 'failed')),"
	"  copied INTEGER NOT NULL DEFAULT 0,"
	"  present INTEGER NOT NULL DEFAULT 0,"
	"  failed_msgs INTEGER NOT NULL DEFAULT 0,"
	"  bytes INTEGER NOT NULL DEFAULT 0,"
	"  error TEXT,"
	"  PRIMARY KEY (account_id, idx));"
	"CREATE TABLE q_failures ("
	"  account_id INTEGER NOT NULL REFERENCES q_accounts(id) ON DELETE CASCADE,"
	"  n INTEGER NOT NULL,"
	"  folder BLOB NOT NULL,"
	"  uid INTEGER NOT NULL,"
	"  reply TEXT NOT NULL,"
	"  PRIMARY KEY (account_id, n));";

/* upgrades[i] takes a database from version i to i + 1, in the
 * transaction that records the new version; append a step, never edit a
 * released one. */
static const char schema_v2[] =
	/* the source admin's password (src-admin), sealed as the destination's */
	"ALTER TABLE q_jobs ADD COLUMN src_admin_password BLOB;";

static const char *const upgrades[] = {
	schema_v1,
	schema_v2,
};

#define SCHEMA_VERSION ((int)(sizeof(upgrades) / sizeof(upgrades[0])))

static int oom(struct tr_error *err)
{
	tr_error_set(err, TR_ERR_LOCAL, "out of memory");
	return -1;
}

/* The connection's last error: busy too long is for later (TR_ERR_TEMP),
 * anything else local. */
static int db_fail(struct qsq *q, const char *what, struct tr_error *err)
{
	int code = sqlite3_errcode(q->db);

	if (code == SQLITE_BUSY || code == SQLITE_LOCKED)
		tr_error_set(err, TR_ERR_TEMP, "queue %s: %s: busy for more than %d s (%s)",
			     q->path, what, BUSY_MS / 1000, sqlite3_errmsg(q->db));
	else
		tr_error_set(err, TR_ERR_LOCAL, "queue %s: %s: %s", q->path, what,
			     sqlite3_errmsg(q->db));
	return -1;
}

static int exec(struct qsq *q, const char *sql, const char *what, struct tr_error *err)
{
	if (sqlite3_exec(q->db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return db_fail(q, what, err);
	return 0;
}

static sqlite3_stmt *prep(struct qsq *q, const char *sql, const char *what,
			  struct tr_error *err)
{
	sqlite3_stmt *st = NULL;

	if (sqlite3_prepare_v2(q->db, sql, -1, &st, NULL) != SQLITE_OK) {
		db_fail(q, what, err);
		sqlite3_finalize(st);
		return NULL;
	}
	return st;
}

/* Step once: 1 a row, 0 done, -1 an error (the caller finalizes st). */
static int step(struct qsq *q, sqlite3_stmt *st, const char *what, struct tr_error *err)
{
	int rc = sqlite3_step(st);

	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE)
		return 0;
	return db_fail(q, what, err);
}

/* Step a statement to its end (its rows, if any, not wanted) and
 * finalize it.  Returns the rows it changed, or -1. */
static int done(struct qsq *q, sqlite3_stmt *st, const char *what, struct tr_error *err)
{
	int rc = sqlite3_step(st);

	while (rc == SQLITE_ROW)
		rc = sqlite3_step(st);
	if (rc != SQLITE_DONE) {
		db_fail(q, what, err);
		sqlite3_finalize(st);
		return -1;
	}
	sqlite3_finalize(st);
	return sqlite3_changes(q->db);
}

static int begin(struct qsq *q, struct tr_error *err)
{
	return exec(q, "BEGIN IMMEDIATE", "begin", err);
}

static int commit(struct qsq *q, struct tr_error *err)
{
	return exec(q, "COMMIT", "commit", err);
}

static void rollback(struct qsq *q)
{
	if (!sqlite3_get_autocommit(q->db))
		(void)sqlite3_exec(q->db, "ROLLBACK", NULL, NULL, NULL);
}

static void bind_str(sqlite3_stmt *st, int i, const char *s)
{
	if (s == NULL)
		sqlite3_bind_null(st, i);
	else
		sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
}

/* Addresses and logins as bytes (PostgreSQL's bytea): whatever the CSV
 * held, never reinterpreted. */
static void bind_bytes(sqlite3_stmt *st, int i, const char *s)
{
	if (s == NULL)
		sqlite3_bind_null(st, i);
	else
		sqlite3_bind_blob(st, i, s, (int)strlen(s), SQLITE_STATIC);
}

/* A column as an owned NUL-terminated string (text or bytes); NULL for SQL
 * NULL; *ok false when out of memory. */
static char *col_str(sqlite3_stmt *st, int i, bool *ok)
{
	const void *v;
	int n;
	char *s;

	if (sqlite3_column_type(st, i) == SQLITE_NULL)
		return NULL;
	v = sqlite3_column_blob(st, i);
	n = sqlite3_column_bytes(st, i);
	if ((s = malloc((size_t)n + 1)) == NULL) {
		*ok = false;
		return NULL;
	}
	if (n > 0)
		memcpy(s, v, (size_t)n);
	s[n] = '\0';
	return s;
}

/* The sealed value in column i opened for its place (*out NULL for SQL
 * NULL). */
static int open_pw(struct qsq *q, sqlite3_stmt *st, int i, int64_t job, const char *email,
		   const char *what, char **out, struct tr_error *err)
{
	char aad[1400];

	*out = NULL;
	if (sqlite3_column_type(st, i) == SQLITE_NULL)
		return 0;
	queue_aad(aad, sizeof(aad), job, email, what);
	return unseal(q->keys, aad, sqlite3_column_blob(st, i),
		      (size_t)sqlite3_column_bytes(st, i), out, err);
}

/* Seal plain (NULL: bind NULL) for its place into parameter i. */
static int bind_sealed(struct qsq *q, sqlite3_stmt *st, int i, int64_t job, const char *email,
		       const char *what, const char *plain, struct tr_error *err)
{
	unsigned char *s;
	size_t n;
	char aad[1400];

	if (plain == NULL) {
		sqlite3_bind_null(st, i);
		return 0;
	}
	queue_aad(aad, sizeof(aad), job, email, what);
	if (seal(q->keys, aad, plain, &s, &n, err) < 0)
		return -1;
	sqlite3_bind_blob(st, i, s, (int)n, free);
	return 0;
}

static int on_job(struct qsq *q, const char *sql, int64_t id, const char *what,
		  struct tr_error *err);

static int need_keys(const struct qsq *q, struct tr_error *err)
{
	if (q->keys != NULL)
		return 0;
	tr_error_set(err, TR_ERR_LOCAL, "the queue was opened without a key file");
	return -1;
}

/* ---- open ------------------------------------------------------------------------ */

/* The version the database is at (0: new). */
static int schema_version(struct qsq *q, int *v_r, struct tr_error *err)
{
	sqlite3_stmt *st;
	int rc, tables;

	*v_r = 0;
	if ((st = prep(q, "SELECT count(*), count(*) FILTER (WHERE name = 'meta') FROM "
		       "sqlite_master WHERE type = 'table'", "read the schema", err)) == NULL)
		return -1;
	if (sqlite3_step(st) != SQLITE_ROW) {
		db_fail(q, "read the schema", err);
		sqlite3_finalize(st);
		return -1;
	}
	tables = sqlite3_column_int(st, 0);
	rc = sqlite3_column_int(st, 1);
	sqlite3_finalize(st);
	if (rc == 0) {
		if (tables > 0) {
			tr_error_set(err, TR_ERR_LOCAL, "%s is not a trasloco queue (it has tables "
				     "but no schema version): give another directory", q->path);
			return -1;
		}
		return 0;
	}
	if ((st = prep(q, "SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'schema'",
		       "read the schema version", err)) == NULL)
		return -1;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*v_r = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW || *v_r < 1) {
		tr_error_set(err, TR_ERR_LOCAL, "queue %s: no readable schema version", q->path);
		return -1;
	}
	return 0;
}

static int refuse_newer(struct qsq *q, int v, struct tr_error *err)
{
	tr_error_set(err, TR_ERR_LOCAL, "queue %s has schema version %d, and this trasloco knows "
		     "versions up to %d: a newer trasloco wrote it; upgrade trasloco to use this "
		     "queue", q->path, v, SCHEMA_VERSION);
	return -1;
}

/* Bring the database to SCHEMA_VERSION, all or none (read again under the
 * write lock: another process may be doing it right now). */
static int schema_upgrade(struct qsq *q, int *from_r, struct tr_error *err)
{
	char sql[96];
	int v, i;

	if (begin(q, err) < 0)
		return -1;
	if (schema_version(q, &v, err) < 0)
		goto rollback;
	*from_r = v;
	if (v > SCHEMA_VERSION) {
		refuse_newer(q, v, err);
		goto rollback;
	}
	for (i = v; i < SCHEMA_VERSION; i++)
		if (exec(q, upgrades[i], "upgrade the schema", err) < 0) {
			tr_error_prefix(err, "upgrading the queue from schema version %d to %d", i,
					i + 1);
			goto rollback;
		}
	snprintf(sql, sizeof(sql), "INSERT OR REPLACE INTO meta (key, value) VALUES "
		 "('schema', '%d')", SCHEMA_VERSION);
	if (exec(q, sql, "record the schema version", err) < 0 || commit(q, err) < 0)
		goto rollback;
	if (v > 0 && v < SCHEMA_VERSION)
		log_info(NULL, "queue %s upgraded from schema version %d to %d", q->path, v,
			 SCHEMA_VERSION);
	return 0;
rollback:
	rollback(q);
	return -1;
}

static void qsq_close(void *h)
{
	struct qsq *q = h;

	if (q == NULL)
		return;
	if (q->db != NULL)
		sqlite3_close(q->db);
	free(q->path);
	free(q);
}

/* Open DIR's queue, made or upgraded as needed.  *from_r: the version it
 * was at (0: new). */
static int open_dir(const char *dir, const struct seal_keys *keys, struct qsq **q_r,
		    int *from_r, struct tr_error *err)
{
	struct qsq *q = calloc(1, sizeof(*q));
	size_t len = strlen(dir) + sizeof("/" QUEUE_FILE);
	int dirfd, r, v;

	*q_r = NULL;
	if (q == NULL || (q->path = malloc(len)) == NULL) {
		free(q);
		return oom(err);
	}
	q->keys = keys;
	snprintf(q->path, len, "%s/" QUEUE_FILE, dir);
	dirfd = privdir_open(dir, "queue directory", err);
	if (dirfd < 0) {
		qsq_close(q);
		return -1;
	}
	/* made here, so that it is private from its first byte (SQLite gives
	 * the -wal and -shm files its mode); checked without a descriptor of
	 * its own: other connections of this process may hold locks on it */
	pthread_mutex_lock(&file_check_mu);
	r = privdir_file_check(dirfd, dir, QUEUE_FILE, err);
	pthread_mutex_unlock(&file_check_mu);
	close(dirfd);
	if (r < 0) {
		qsq_close(q);
		return -1;
	}
	r = sqlite3_open_v2(q->path, &q->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX |
			    SQLITE_OPEN_NOFOLLOW, NULL);
	if (r != SQLITE_OK) {
		tr_error_set(err, TR_ERR_LOCAL, "cannot open the queue %s: %s", q->path,
			     sqlite3_errstr(r));
		qsq_close(q);
		return -1;
	}
	sqlite3_busy_timeout(q->db, BUSY_MS);
	/* one of a newer trasloco is refused before anything here writes */
	if (schema_version(q, &v, err) < 0 || (v > SCHEMA_VERSION && refuse_newer(q, v, err) < 0) ||
	    exec(q, "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; "
		 "PRAGMA foreign_keys = ON;", "set it up", err) < 0) {
		qsq_close(q);
		return -1;
	}
	*from_r = v;
	if (v < SCHEMA_VERSION && schema_upgrade(q, from_r, err) < 0) {
		qsq_close(q);
		return -1;
	}
	*q_r = q;
	return 0;
}

static int qsq_open(const char *dir, const struct seal_keys *keys, void **h_r,
		    struct tr_error *err)
{
	struct qsq *q;
	int from;

	*h_r = NULL;
	if (open_dir(dir, keys, &q, &from, err) < 0)
		return -1;
	*h_r = q;
	return 0;
}

static int qsq_init(const char *dir, int *from_r, int *version_r, struct tr_error *err)
{
	struct qsq *q;

	*version_r = SCHEMA_VERSION;
	if (open_dir(dir, NULL, &q, from_r, err) < 0)
		return -1;
	qsq_close(q);
	return 0;
}

static const char *qsq_where(void *h)
{
	const struct qsq *q = h;

	return q->path;
}

static int qsq_outstanding(void *h, int64_t *n_r, struct tr_error *err)
{
	struct qsq *q = h;
	sqlite3_stmt *st = prep(q, "SELECT count(*) FROM q_accounts a JOIN q_jobs j "
				"ON j.id = a.job_id WHERE j.cancelled IS NULL AND "
				"(a.state = 'running' OR (a.state = 'pending' AND "
				"(a.not_before IS NULL OR a.not_before <= " NOW " + "
				QUEUE_DRAIN_HORIZON_TEXT ")))", "count the accounts to do", err);

	*n_r = 0;
	if (st == NULL)
		return -1;
	if (step(q, st, "count the accounts to do", err) != 1) {
		sqlite3_finalize(st);
		return -1;
	}
	*n_r = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return 0;
}

/* The first column of the first row of st (finalized), 0 when none. */
static int first_id(struct qsq *q, sqlite3_stmt *st, int64_t *id_r, struct tr_error *err)
{
	int rc = step(q, st, "find the job", err);

	*id_r = rc == 1 ? sqlite3_column_int64(st, 0) : 0;
	sqlite3_finalize(st);
	return rc < 0 ? -1 : 0;
}

static int qsq_job_id(void *h, const char *job, int64_t *id_r, struct tr_error *err)
{
	struct qsq *q = h;
	sqlite3_stmt *st;
	int64_t n;

	*id_r = 0;
	if (queue_job_number(job, &n)) {
		if ((st = prep(q, "SELECT id FROM q_jobs WHERE id = ?1", "find the job", err)) == NULL)
			return -1;
		sqlite3_bind_int64(st, 1, n);
		if (first_id(q, st, id_r, err) < 0)
			return -1;
		if (*id_r > 0)
			return 0;
	}
	if ((st = prep(q, "SELECT id FROM q_jobs WHERE name = ?1 ORDER BY id DESC LIMIT 1",
		       "find the job", err)) == NULL)
		return -1;
	bind_str(st, 1, job);
	if (first_id(q, st, id_r, err) < 0)
		return -1;
	if (*id_r > 0)
		return 0;
	return queue_no_job(job, q->path, err);
}

/* ---- submit ------------------------------------------------------------------- */

static int insert_accounts(struct qsq *q, int64_t job, const struct job_accounts *ja,
			   struct tr_error *err)
{
	sqlite3_stmt *st = prep(q, "INSERT INTO q_accounts (job_id, line, email, src_user, "
				"dst_user, password, dst_password) VALUES (?1, ?2, ?3, ?4, ?5, ?6, "
				"?7)", "add the accounts", err);
	size_t i;

	if (st == NULL)
		return -1;
	for (i = 0; i < ja->n; i++) {
		const struct job_account *a = &ja->v[i];

		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
		sqlite3_bind_int64(st, 1, job);
		sqlite3_bind_int64(st, 2, a->line);
		bind_bytes(st, 3, a->email);
		bind_bytes(st, 4, a->src_user);
		bind_bytes(st, 5, a->dst_user);
		if (bind_sealed(q, st, 6, job, a->email, "password", a->password, err) < 0 ||
		    bind_sealed(q, st, 7, job, a->email, "dst_password", a->dst_password,
				err) < 0) {
			sqlite3_finalize(st);
			return -1;
		}
		if (sqlite3_step(st) != SQLITE_DONE) {
			db_fail(q, "add the accounts", err);
			sqlite3_finalize(st);
			return -1;
		}
	}
	sqlite3_finalize(st);
	return 0;
}

static int qsq_submit(void *h, const struct queue_new_job *nj, int64_t *id_r,
		      struct tr_error *err)
{
	struct qsq *q = h;
	const struct job_config *cfg = nj->cfg;
	sqlite3_stmt *st;
	int64_t id = 0;

	*id_r = 0;
	if (begin(q, err) < 0)
		return -1;
	if ((st = prep(q, "INSERT INTO q_jobs (name, config, src, dst, skipped, created) "
		       "VALUES (?1, ?2, ?3, ?4, ?5, " NOW ") RETURNING id", "add the job",
		       err)) == NULL)
		goto fail;
	bind_str(st, 1, nj->name);
	bind_str(st, 2, nj->config);
	bind_str(st, 3, nj->src);
	bind_str(st, 4, nj->dst);
	bind_str(st, 5, nj->skipped);
	if (step(q, st, "add the job", err) != 1) {
		sqlite3_finalize(st);
		goto fail;
	}
	id = sqlite3_column_int64(st, 0);
	if (done(q, st, "add the job", err) < 0)
		goto fail;
	for (int k = 0; k < 2; k++) {
		const char *pw = k == 0 ? nj->admin_password : nj->src_admin_password;
		char sql[96];

		if (pw == NULL)
			continue;
		snprintf(sql, sizeof(sql), "UPDATE q_jobs SET %s = ?2 WHERE id = ?1",
			 queue_admin_cols[k].col);
		if ((st = prep(q, sql, "keep the admin password", err)) == NULL)
			goto fail;
		sqlite3_bind_int64(st, 1, id);
		if (bind_sealed(q, st, 2, id, NULL, queue_admin_cols[k].aad, pw, err) < 0) {
			sqlite3_finalize(st);
			goto fail;
		}
		if (done(q, st, "keep the admin password", err) < 0)
			goto fail;
	}
	if (insert_accounts(q, id, nj->ja, err) < 0)
		goto fail;
	if ((st = prep(q, "INSERT INTO q_caps (job_id, side, max_per_account, max_total, "
		       "per_egress) VALUES (?1, 'src', ?2, ?3, ?6), (?1, 'dst', ?4, ?5, ?6)",
		       "keep the caps", err)) == NULL)
		goto fail;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int(st, 2, cfg->src_max_per_account);
	sqlite3_bind_int(st, 3, cfg->src_max_connections);
	sqlite3_bind_int(st, 4, cfg->dst_max_per_account);
	sqlite3_bind_int(st, 5, cfg->dst_max_connections);
	sqlite3_bind_int(st, 6, cfg->caps_per_egress ? 1 : 0);
	if (done(q, st, "keep the caps", err) < 0 || commit(q, err) < 0)
		goto fail;
	*id_r = id;
	return 0;
fail:
	rollback(q);
	return -1;
}

/* ---- claims ------------------------------------------------------------------- */

static int qsq_claim(void *h, const char *worker, int lease_s, struct queue_claim *c,
		     struct tr_error *err)
{
	struct qsq *q = h;
	sqlite3_stmt *st;
	int64_t row = 0;
	bool was_running = false, ok = true;
	char *label;
	int rc;

	memset(c, 0, sizeof(*c));
	if (need_keys(q, err) < 0)
		return -1;
	/* one write transaction: the row is found and made this worker's
	 * before any other claim reads, and stays as it was when its
	 * passwords do not open with this worker's key file */
	if (begin(q, err) < 0)
		return -1;
	/* the first claimable in q_accounts_todo's order */
	if ((st = prep(q, "SELECT c.id, c.state = 'running' FROM q_accounts c "
		       "WHERE c.state IN ('pending', 'running') "
		       "  AND ((c.state = 'pending' AND (c.not_before IS NULL OR "
		       "        c.not_before <= " NOW ")) "
		       "    OR (c.state = 'running' AND c.lease_until < " NOW ")) "
		       "  AND c.job_id NOT IN (SELECT j.id FROM q_jobs j "
		       "                       WHERE j.cancelled IS NOT NULL) "
		       "ORDER BY c.job_id, c.id LIMIT 1", "find an account to claim", err)) == NULL)
		goto fail;
	rc = step(q, st, "find an account to claim", err);
	if (rc == 1) {
		row = sqlite3_column_int64(st, 0);
		was_running = sqlite3_column_int(st, 1) != 0;
	}
	sqlite3_finalize(st);
	if (rc < 0)
		goto fail;
	if (row == 0) {
		rollback(q);
		return 0;
	}
	if ((st = prep(q, "UPDATE q_accounts SET state = 'running', worker = ?2, "
		       "  lease_until = " NOW " + ?3, "
		       "  attempts = attempts + 1, "
		       "  takeovers = takeovers + CASE WHEN state = 'running' THEN 1 ELSE 0 END, "
		       "  started = " NOW ", finished = NULL, not_before = NULL, "
		       /* a verify keeps what the last copy says until it ends */
		       "  error = CASE WHEN " VERIFYING " THEN error END, "
		       "  copied = CASE WHEN " VERIFYING " THEN copied ELSE 0 END, "
		       "  present = CASE WHEN " VERIFYING " THEN present ELSE 0 END, "
		       "  failed_msgs = CASE WHEN " VERIFYING " THEN failed_msgs ELSE 0 END, "
		       "  bytes = CASE WHEN " VERIFYING " THEN bytes ELSE 0 END, "
		       "  folders_done = CASE WHEN " VERIFYING " THEN folders_done ELSE 0 END, "
		       "  folders_total = CASE WHEN " VERIFYING " THEN folders_total ELSE 0 END, "
		       "  seconds = CASE WHEN " VERIFYING " THEN seconds ELSE 0 END "
		       "WHERE id = ?1 "
		       "RETURNING id, job_id, line, email, src_user, dst_user, password, "
		       "  dst_password, attempts, pass", "claim an account", err)) == NULL)
		goto fail;
	sqlite3_bind_int64(st, 1, row);
	bind_str(st, 2, worker);
	sqlite3_bind_int(st, 3, lease_s > 0 ? lease_s : 1);
	if (step(q, st, "claim an account", err) != 1) {
		if (err->kind == TR_ERR_NONE)
			tr_error_set(err, TR_ERR_LOCAL, "queue %s: the account to claim vanished",
				     q->path);
		sqlite3_finalize(st);
		goto fail;
	}
	c->row = sqlite3_column_int64(st, 0);
	c->job_id = sqlite3_column_int64(st, 1);
	c->line = (unsigned)sqlite3_column_int64(st, 2);
	c->email = col_str(st, 3, &ok);
	c->src_user = col_str(st, 4, &ok);
	c->dst_user = col_str(st, 5, &ok);
	c->attempts = sqlite3_column_int(st, 8);
	c->takeover = was_running;
	c->pass = queue_pass_of((const char *)sqlite3_column_text(st, 9));
	if (!ok || c->email == NULL) {
		sqlite3_finalize(st);
		oom(err);
		goto fail;
	}
	if (open_pw(q, st, 6, c->job_id, c->email, "password", &c->password, err) < 0 ||
	    open_pw(q, st, 7, c->job_id, c->email, "dst_password", &c->dst_password, err) < 0) {
		sqlite3_finalize(st);
		label = text_clean_dup(c->email, NULL);
		tr_error_prefix(err, "job %" PRId64 ", %s", c->job_id, label ? label : "?");
		free(label);
		goto fail;
	}
	if (done(q, st, "claim an account", err) < 0)
		goto fail;
	/* a job whose logins take no CSV password (OAuth2, admins) stores its
	 * accounts without one: the account gets "", which no server takes
	 * should a side still want a password */
	if (c->password == NULL && (c->password = strdup("")) == NULL) {
		oom(err);
		goto fail;
	}
	if (commit(q, err) < 0)
		goto fail;
	return 1;
fail:
	rollback(q);
	queue_claim_free(c);
	return -1;
}

static int qsq_job_config(void *h, int64_t job_id, char **config_r, char **admin_pw_r,
			  char **src_admin_pw_r, struct tr_error *err)
{
	struct qsq *q = h;
	sqlite3_stmt *st;
	bool ok = true;
	int rc = 0;

	*config_r = NULL;
	*admin_pw_r = NULL;
	*src_admin_pw_r = NULL;
	if ((st = prep(q, "SELECT config, admin_password, src_admin_password FROM q_jobs "
		       "WHERE id = ?1", "read the job", err)) == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, job_id);
	if ((rc = step(q, st, "read the job", err)) != 1) {
		if (rc == 0)
			tr_error_set(err, TR_ERR_LOCAL, "job %" PRId64 " is no longer in the queue",
				     job_id);
		sqlite3_finalize(st);
		return -1;
	}
	rc = 0;
	for (int k = 0; rc == 0 && k < 2; k++) {
		if (sqlite3_column_type(st, 1 + k) == SQLITE_NULL)
			continue;
		rc = need_keys(q, err);
		if (rc == 0)
			rc = open_pw(q, st, 1 + k, job_id, NULL, queue_admin_cols[k].aad,
				     k == 0 ? admin_pw_r : src_admin_pw_r, err);
	}
	if (rc == 0 && ((*config_r = col_str(st, 0, &ok)) == NULL || !ok))
		rc = oom(err);
	if (rc < 0) {
		secret_free(*admin_pw_r);
		secret_free(*src_admin_pw_r);
		*admin_pw_r = *src_admin_pw_r = NULL;
		free(*config_r);
		*config_r = NULL;
		tr_error_prefix(err, "job %" PRId64, job_id);
	}
	sqlite3_finalize(st);
	return rc;
}

/* [1,2,3] (json_each reads it: SQLite has no arrays) */
static char *id_array(const int64_t *v, size_t n)
{
	char *s = malloc(n * 21 + 3), *o;
	size_t i;

	if (s == NULL)
		return NULL;
	o = s;
	*o++ = '[';
	for (i = 0; i < n; i++)
		o += sprintf(o, "%s%" PRId64, i > 0 ? "," : "", v[i]);
	*o++ = ']';
	*o = '\0';
	return s;
}

static int qsq_renew(void *h, const char *worker, int lease_s, const int64_t *held,
		     size_t n_held, int64_t **lost_r, size_t *n_lost_r, struct tr_error *err)
{
	struct qsq *q = h;
	char *arr = id_array(held, n_held);
	sqlite3_stmt *st;
	bool *kept = NULL;
	size_t i, n = 0;
	int rc;

	*lost_r = NULL;
	*n_lost_r = 0;
	if (arr == NULL || (kept = calloc(n_held + 1, sizeof(*kept))) == NULL) {
		free(arr);
		return oom(err);
	}
	/* one transaction per heartbeat: the worker's row, its accounts of
	 * cancelled jobs (cancelled now: it stops them), the leases of the
	 * others it still runs (held: a row it could not give back is no
	 * longer renewed, and expires for another claim), and what of held is
	 * no longer its own */
	if (begin(q, err) < 0)
		goto fail;
	if ((st = prep(q, "UPDATE q_workers SET seen = " NOW " WHERE id = ?1",
		       "renew the worker", err)) == NULL)
		goto fail;
	bind_str(st, 1, worker);
	if (done(q, st, "renew the worker", err) < 0)
		goto fail;
	if ((st = prep(q, "UPDATE q_accounts SET state = 'cancelled', lease_until = NULL, "
		       "  finished = " NOW " "
		       "WHERE job_id IN (SELECT j.id FROM q_jobs j WHERE j.cancelled IS NOT NULL) "
		       "  AND worker = ?1 AND state = 'running'", "cancel the accounts", err)) == NULL)
		goto fail;
	bind_str(st, 1, worker);
	if (done(q, st, "cancel the accounts", err) < 0)
		goto fail;
	if ((st = prep(q, "UPDATE q_accounts SET lease_until = " NOW " + ?2 "
		       "WHERE worker = ?1 AND state = 'running' "
		       "  AND id IN (SELECT value FROM json_each(?3)) "
		       "  AND job_id NOT IN (SELECT j.id FROM q_jobs j "
		       "                     WHERE j.cancelled IS NOT NULL) "
		       "RETURNING id", "renew the leases", err)) == NULL)
		goto fail;
	bind_str(st, 1, worker);
	sqlite3_bind_int(st, 2, lease_s > 0 ? lease_s : 1);
	bind_str(st, 3, arr);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t id = sqlite3_column_int64(st, 0);

		for (i = 0; i < n_held; i++)
			if (held[i] == id)
				kept[i] = true;
	}
	if (rc != SQLITE_DONE) {
		db_fail(q, "renew the leases", err);
		sqlite3_finalize(st);
		goto fail;
	}
	sqlite3_finalize(st);
	if (commit(q, err) < 0)
		goto fail;
	for (i = 0; i < n_held; i++)
		if (!kept[i])
			n++;
	if (n > 0) {
		if ((*lost_r = calloc(n, sizeof(**lost_r))) == NULL) {
			free(arr);
			free(kept);
			return oom(err);
		}
		for (i = 0; i < n_held; i++)
			if (!kept[i])
				(*lost_r)[(*n_lost_r)++] = held[i];
	}
	free(arr);
	free(kept);
	return 0;
fail:
	rollback(q);
	free(arr);
	free(kept);
	return -1;
}

static void bind_counts(sqlite3_stmt *st, int from, const struct queue_counts *n)
{
	sqlite3_bind_int64(st, from, (sqlite3_int64)n->copied);
	sqlite3_bind_int64(st, from + 1, (sqlite3_int64)n->present);
	sqlite3_bind_int64(st, from + 2, (sqlite3_int64)n->failed);
	sqlite3_bind_int64(st, from + 3, (sqlite3_int64)n->bytes);
	sqlite3_bind_int64(st, from + 4, n->folders_done);
	sqlite3_bind_int64(st, from + 5, n->folders_total);
}

static int qsq_progress(void *h, const char *worker, int64_t row,
			const struct queue_counts *n, struct tr_error *err)
{
	struct qsq *q = h;
	sqlite3_stmt *st;

	/* the refusals count while it verifies too; the counters are its
	 * last copy's then */
	if (n->refused[0] > 0 || n->refused[1] > 0) {
		if ((st = prep(q, "UPDATE q_accounts SET refused_src = refused_src + ?3, "
			       "refused_dst = refused_dst + ?4 WHERE id = ?1 AND worker = ?2 "
			       "AND state = 'running'", "write the progress", err)) == NULL)
			return -1;
		sqlite3_bind_int64(st, 1, row);
		bind_str(st, 2, worker);
		sqlite3_bind_int64(st, 3, n->refused[0]);
		sqlite3_bind_int64(st, 4, n->refused[1]);
		if (done(q, st, "write the progress", err) < 0)
			return -1;
	}
	st = prep(q, "UPDATE q_accounts SET copied = ?3, present = ?4, "
		  "failed_msgs = ?5, bytes = ?6, folders_done = ?7, "
		  "folders_total = ?8 WHERE id = ?1 AND worker = ?2 "
		  "AND state = 'running' AND pass NOT IN ('verify', 'final-verify')",
		  "write the progress", err);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, row);
	bind_str(st, 2, worker);
	bind_counts(st, 3, n);
	return done(q, st, "write the progress", err) < 0 ? -1 : 0;
}

/* After an outcome (copy or verify) of row, inside its transaction: the
 * next step of a final pass.  A final pass's copy that did not fail goes
 * on to its verify; an account that ran something else while the job got
 * its final pass goes on to that pass. */
static int final_next(struct qsq *q, int64_t row, struct tr_error *err)
{
	sqlite3_stmt *st = prep(q, "UPDATE q_accounts SET state = 'pending', worker = NULL, "
				"not_before = NULL, attempts = 0, "
				"pass = CASE WHEN pass = 'final' THEN 'final-verify' ELSE 'final' END "
				"WHERE id = ?1 AND job_id IN (SELECT j.id FROM q_jobs j WHERE j.final "
				"  AND j.cancelled IS NULL) AND (pass IN ('run', 'delta', 'verify') OR "
				"(pass = 'final' AND state <> 'failed'))", "the final pass's next step",
				err);

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, row);
	return done(q, st, "the final pass's next step", err) < 0 ? -1 : 0;
}

/* Error texts and replies quote servers: stored cleaned (text.h), as
 * PostgreSQL's text columns get them. */
static void bind_clean(sqlite3_stmt *st, int i, const char *text)
{
	char *c = text != NULL ? text_clean_dup(text, NULL) : NULL;

	if (text == NULL)
		sqlite3_bind_null(st, i);
	else if (c != NULL)
		sqlite3_bind_text(st, i, c, -1, free);
	else
		sqlite3_bind_text(st, i, "(text lost: out of memory)", -1, SQLITE_STATIC);
}

/* The failed messages of res that are not listed (beyond the first
 * QUEUE_FAILURES_KEPT, or in a folder that failed as a whole). */
static uint64_t failures_more(const struct account_result *res)
{
	size_t i, kept = 0;

	for (i = 0; res != NULL && i < res->n_folders; i++)
		kept += res->folders[i].failures.n;
	if (kept > QUEUE_FAILURES_KEPT)
		kept = QUEUE_FAILURES_KEPT;
	return res != NULL && res->total.failed > kept ? res->total.failed - kept : 0;
}

/* This copy's folders and the messages it could not copy (the first
 * QUEUE_FAILURES_KEPT) in place of the last copy's. */
static int keep_detail(struct qsq *q, int64_t row, const struct account_result *res,
		       struct tr_error *err)
{
	sqlite3_stmt *f = NULL, *m = NULL;
	size_t i, k, kept = 0;
	int rc = -1;

	if (on_job(q, "DELETE FROM q_folders WHERE account_id = ?1", row, "forget the folders",
		   err) < 0 ||
	    on_job(q, "DELETE FROM q_failures WHERE account_id = ?1", row, "forget the failures",
		   err) < 0)
		return -1;
	if (res == NULL)
		return 0;
	if ((f = prep(q, "INSERT INTO q_folders (account_id, idx, src_name, dst_name, status, "
		      "copied, present, failed_msgs, bytes, error) VALUES (?1, ?2, ?3, ?4, ?5, ?6, "
		      "?7, ?8, ?9, ?10)", "keep the folders", err)) == NULL ||
	    (m = prep(q, "INSERT INTO q_failures (account_id, n, folder, uid, reply) "
		      "VALUES (?1, ?2, ?3, ?4, ?5)", "keep the failures", err)) == NULL)
		goto out;
	for (i = 0; i < res->n_folders; i++) {
		const struct folder_report *fr = &res->folders[i];
		const char *name = fr->src_name != NULL ? fr->src_name : "";

		sqlite3_reset(f);
		sqlite3_clear_bindings(f);
		sqlite3_bind_int64(f, 1, row);
		sqlite3_bind_int64(f, 2, (sqlite3_int64)i);
		bind_bytes(f, 3, name);
		bind_bytes(f, 4, fr->dst_name != NULL ? fr->dst_name : "");
		sqlite3_bind_text(f, 5, fr->failed ? "failed" : "ok", -1, SQLITE_STATIC);
		sqlite3_bind_int64(f, 6, fr->counts.copied);
		sqlite3_bind_int64(f, 7, fr->counts.present);
		sqlite3_bind_int64(f, 8, fr->counts.failed);
		sqlite3_bind_int64(f, 9, (sqlite3_int64)fr->counts.bytes);
		if (fr->failed)
			bind_clean(f, 10, fr->error != NULL ? fr->error : "");
		if (step(q, f, "keep the folders", err) < 0)
			goto out;
		for (k = 0; k < fr->failures.n && kept < QUEUE_FAILURES_KEPT; k++, kept++) {
			sqlite3_reset(m);
			sqlite3_clear_bindings(m);
			sqlite3_bind_int64(m, 1, row);
			sqlite3_bind_int64(m, 2, (sqlite3_int64)kept);
			bind_bytes(m, 3, name);
			sqlite3_bind_int64(m, 4, fr->failures.v[k].uid);
			bind_clean(m, 5, fr->failures.v[k].reply != NULL ? fr->failures.v[k].reply :
				   "");
			if (step(q, m, "keep the failures", err) < 0)
				goto out;
		}
	}
	rc = 0;
out:
	sqlite3_finalize(f);
	sqlite3_finalize(m);
	return rc;
}

static int qsq_finish(void *h, const char *worker, int64_t row, const char *status,
		      const char *error, const char *error_kind, const struct queue_counts *n,
		      double seconds, const struct account_result *res, struct tr_error *err)
{
	struct qsq *q = h;
	sqlite3_stmt *st;
	int r;

	if (begin(q, err) < 0)
		return -1;
	/* the lease may have run out: the outcome still counts while nobody
	 * took the account over (it is still running, as this worker's) */
	if ((st = prep(q, "UPDATE q_accounts SET state = ?3, error = ?4, outcome = ?3, "
		       "outcome_error = ?4, copied = ?5, "
		       "present = ?6, failed_msgs = ?7, bytes = ?8, "
		       "folders_done = ?9, folders_total = ?10, "
		       "seconds = ?11, failures_more = ?12, finished = " NOW ", "
		       "error_kind = ?13, outcome_kind = ?13, refused_src = refused_src + ?14, "
		       "refused_dst = refused_dst + ?15, lease_until = NULL "
		       "WHERE id = ?1 AND worker = ?2 AND state = 'running'",
		       "write the outcome", err)) == NULL)
		goto fail;
	sqlite3_bind_int64(st, 1, row);
	bind_str(st, 2, worker);
	bind_str(st, 3, status);
	bind_str(st, 4, error);
	bind_counts(st, 5, n);
	sqlite3_bind_double(st, 11, seconds >= 0 ? seconds : 0);
	sqlite3_bind_int64(st, 12, (sqlite3_int64)failures_more(res));
	bind_str(st, 13, error_kind);
	sqlite3_bind_int64(st, 14, n->refused[0]);
	sqlite3_bind_int64(st, 15, n->refused[1]);
	r = done(q, st, "write the outcome", err);
	if (r <= 0) {
		rollback(q);
		return r < 0 ? -1 : 0;
	}
	if (keep_detail(q, row, res, err) < 0)
		goto fail;
	if (final_next(q, row, err) < 0 || commit(q, err) < 0)
		goto fail;
	return 1;
fail:
	rollback(q);
	return -1;
}

static int qsq_verify_finish(void *h, const char *worker, int64_t row,
			     const struct verify_item *it, struct tr_error *err)
{
	struct qsq *q = h;
	bool failed = it->err.kind != TR_ERR_NONE;
	char why[sizeof(it->err.msg) + 16], *doc = queue_verify_doc(it), *clean;
	sqlite3_stmt *st;
	int r;

	if (doc == NULL)
		return oom(err);
	clean = failed ? text_clean_dup(it->err.msg, NULL) : NULL;
	snprintf(why, sizeof(why), "verify: %s", clean != NULL ? clean : "failed");
	free(clean);
	if (begin(q, err) < 0) {
		free(doc);
		return -1;
	}
	/* the state the last copy left, unless the verify could not be done */
	if ((st = prep(q, "UPDATE q_accounts SET verify_at = " NOW ", verify_exact = ?3, "
		       "verify = ?4, "
		       "state = CASE WHEN ?5 THEN 'failed' ELSE coalesce(outcome, 'ok') END, "
		       "error = CASE WHEN ?5 THEN ?6 ELSE outcome_error END, "
		       "error_kind = CASE WHEN ?5 THEN ?7 ELSE outcome_kind END, "
		       "finished = " NOW ", lease_until = NULL "
		       "WHERE id = ?1 AND worker = ?2 AND state = 'running'",
		       "write the verify", err)) == NULL) {
		free(doc);
		rollback(q);
		return -1;
	}
	sqlite3_bind_int64(st, 1, row);
	bind_str(st, 2, worker);
	sqlite3_bind_int(st, 3, !failed && it->missing == 0);
	bind_str(st, 4, doc);
	sqlite3_bind_int(st, 5, failed);
	bind_str(st, 6, failed ? why : NULL);
	bind_str(st, 7, tr_error_kind_name(it->err.kind));
	r = done(q, st, "write the verify", err);
	free(doc);
	if (r > 0 && (final_next(q, row, err) < 0 || commit(q, err) < 0))
		r = -1;
	rollback(q);
	return r < 0 ? -1 : r > 0 ? 1 : 0;
}

static int qsq_release(void *h, const char *worker, int64_t row, int delay_s,
		       struct tr_error *err)
{
	struct qsq *q = h;
	sqlite3_stmt *st = prep(q, "UPDATE q_accounts SET state = 'pending', worker = NULL, "
				"lease_until = NULL, not_before = " NOW " + ?3 "
				"WHERE id = ?1 AND worker = ?2 AND state = 'running'",
				"give the account back", err);

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, row);
	bind_str(st, 2, worker);
	sqlite3_bind_int(st, 3, delay_s > 0 ? delay_s : 0);
	return done(q, st, "give the account back", err) < 0 ? -1 : 0;
}

/* The running accounts of this host's workers whose process is gone:
 * their leases expire now (see the top of this file).  A pid alive is
 * left alone, even if it is another process now: its lease ends it. */
static int expire_dead(struct qsq *q, const char *worker, const char *host,
		       struct tr_error *err)
{
	sqlite3_stmt *st, *up;
	int rc, n;

	if ((st = prep(q, "SELECT w.id, w.pid FROM q_workers w WHERE w.host = ?1 AND w.id <> ?2 "
		       "  AND w.stopped IS NULL AND EXISTS (SELECT 1 FROM q_accounts a "
		       "  WHERE a.worker = w.id AND a.state = 'running')", "find stale workers",
		       err)) == NULL)
		return -1;
	bind_str(st, 1, host);
	bind_str(st, 2, worker);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *id = (const char *)sqlite3_column_text(st, 0);
		long long pid = sqlite3_column_int64(st, 1);

		if (pid <= 0 || (pid_t)pid != pid || kill((pid_t)pid, 0) == 0 || errno != ESRCH)
			continue;
		if ((up = prep(q, "UPDATE q_accounts SET lease_until = " NOW " - 1 "
			       "WHERE worker = ?1 AND state = 'running'", "expire stale leases",
			       err)) == NULL) {
			sqlite3_finalize(st);
			return -1;
		}
		bind_str(up, 1, id);
		if ((n = done(q, up, "expire stale leases", err)) < 0) {
			sqlite3_finalize(st);
			return -1;
		}
		if ((up = prep(q, "UPDATE q_workers SET stopped = " NOW " WHERE id = ?1",
			       "expire stale leases", err)) == NULL) {
			sqlite3_finalize(st);
			return -1;
		}
		bind_str(up, 1, id);
		if (done(q, up, "expire stale leases", err) < 0) {
			sqlite3_finalize(st);
			return -1;
		}
		log_info(NULL, "queue %s: worker %s (pid %lld) of this host is gone: its %d "
			 "account(s) may be taken over now", q->path, id, pid, n);
	}
	if (rc != SQLITE_DONE) {
		db_fail(q, "find stale workers", err);
		sqlite3_finalize(st);
		return -1;
	}
	sqlite3_finalize(st);
	return 0;
}

static int qsq_worker_register(void *h, const char *worker, const char *host, int pid,
			       const char *egress, int parallel, struct tr_error *err)
{
	struct qsq *q = h;
	sqlite3_stmt *st;

	if (begin(q, err) < 0)
		return -1;
	if ((st = prep(q, "INSERT INTO q_workers (id, host, pid, egress, parallel, started, seen) "
		       "VALUES (?1, ?2, ?3, ?4, ?5, " NOW ", " NOW ") ON CONFLICT (id) DO UPDATE SET "
		       "host = ?2, pid = ?3, egress = ?4, parallel = ?5, seen = " NOW ", "
		       "stopped = NULL", "register the worker", err)) == NULL)
		goto fail;
	bind_str(st, 1, worker);
	bind_str(st, 2, host);
	sqlite3_bind_int(st, 3, pid);
	bind_str(st, 4, egress != NULL ? egress : "");
	sqlite3_bind_int(st, 5, parallel);
	if (done(q, st, "register the worker", err) < 0 || expire_dead(q, worker, host, err) < 0 ||
	    commit(q, err) < 0)
		goto fail;
	return 0;
fail:
	rollback(q);
	return -1;
}

static int qsq_worker_stopped(void *h, const char *worker, struct tr_error *err)
{
	struct qsq *q = h;
	sqlite3_stmt *st = prep(q, "UPDATE q_workers SET stopped = " NOW ", seen = " NOW " "
				"WHERE id = ?1", "record the worker's stop", err);

	if (st == NULL)
		return -1;
	bind_str(st, 1, worker);
	return done(q, st, "record the worker's stop", err) < 0 ? -1 : 0;
}

/* ---- operators ---------------------------------------------------------------- */

/* sql with ?1 the job's id; the rows it changed, or -1. */
static int on_job(struct qsq *q, const char *sql, int64_t id, const char *what,
		  struct tr_error *err)
{
	sqlite3_stmt *st = prep(q, sql, what, err);

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	return done(q, st, what, err);
}

static int qsq_retry(void *h, const char *job, bool failed_only, int *n_r,
		     struct tr_error *err)
{
	struct qsq *q = h;
	int64_t id;
	int n;

	*n_r = 0;
	if (qsq_job_id(q, job, &id, err) < 0 || begin(q, err) < 0)
		return -1;
	/* a retried job is not cancelled any more: its accounts run again */
	if (on_job(q, "UPDATE q_jobs SET cancelled = NULL WHERE id = ?1", id, "retry", err) < 0)
		goto fail;
	/* each repeats what failed: a verify that could not be done, else a
	 * copy (a final pass's, with its verify, once the job had one) */
#define RETRY_SET \
	"UPDATE q_accounts SET state = 'pending', worker = NULL, lease_until = NULL, " \
	"not_before = NULL, pass = CASE " \
	"  WHEN pass IN ('verify', 'final-verify') AND state = 'failed' " \
	"    AND outcome IS NOT 'failed' THEN pass " \
	"  WHEN pass IN ('final', 'final-verify') THEN 'final' " \
	"  WHEN pass = 'verify' THEN 'delta' ELSE pass END "
	n = on_job(q, failed_only ?
		   RETRY_SET "WHERE job_id = ?1 AND state IN ('failed', 'partial')" :
		   RETRY_SET "WHERE job_id = ?1 AND state <> 'running'", id, "retry", err);
#undef RETRY_SET
	if (n < 0 || commit(q, err) < 0)
		goto fail;
	*n_r = n;
	return 0;
fail:
	rollback(q);
	return -1;
}

/* ---- passes ------------------------------------------------------------------- */

/* Start a pass of kind (delta, verify or final) of job id, inside the
 * caller's write transaction.  *n_r: accounts covered. */
static int start_pass(struct qsq *q, int64_t id, const char *kind, int *n_r,
		      struct tr_error *err)
{
	sqlite3_stmt *st;
	int n;

	*n_r = 0;
	/* the latest pass, when it is over, becomes the last finished one
	 * (before its accounts' finish times are lost) */
	if (on_job(q, "UPDATE q_jobs SET last_pass_kind = pass_kind, "
		   "last_pass_seconds = max((SELECT max(finished) FROM q_accounts "
		   "WHERE job_id = ?1) - coalesce(pass_started, created), 0) "
		   "WHERE id = ?1 AND (SELECT max(finished) FROM q_accounts WHERE job_id = ?1) "
		   "IS NOT NULL AND NOT EXISTS (SELECT 1 FROM q_accounts WHERE job_id = ?1 AND "
		   "state IN ('pending', 'running'))", id, "start the pass", err) < 0)
		return -1;
	if (strcmp(kind, "final") == 0) {
		/* every account: the finished ones now, the pending ones by
		 * their coming claim, the running ones when their run ends
		 * (final_next) */
		if (on_job(q, "UPDATE q_accounts SET pass = 'final' WHERE job_id = ?1 "
			   "AND state = 'pending' AND pass IN ('run', 'delta', 'verify')", id,
			   "start the pass", err) < 0 ||
		    on_job(q, "UPDATE q_accounts SET state = 'pending', pass = 'final', "
			   "worker = NULL, lease_until = NULL, not_before = NULL, attempts = 0 "
			   "WHERE job_id = ?1 AND state IN ('ok', 'partial', 'failed')", id,
			   "start the pass", err) < 0)
			return -1;
		if ((st = prep(q, "SELECT count(*) FROM q_accounts WHERE job_id = ?1 AND "
			       "state <> 'cancelled'", "start the pass", err)) == NULL)
			return -1;
		sqlite3_bind_int64(st, 1, id);
		if (step(q, st, "start the pass", err) != 1) {
			sqlite3_finalize(st);
			return -1;
		}
		n = sqlite3_column_int(st, 0);
		sqlite3_finalize(st);
	} else {
		if ((st = prep(q, "UPDATE q_accounts SET state = 'pending', pass = ?2, "
			       "worker = NULL, lease_until = NULL, not_before = NULL, attempts = 0 "
			       "WHERE job_id = ?1 AND state IN ('ok', 'partial', 'failed')",
			       "start the pass", err)) == NULL)
			return -1;
		sqlite3_bind_int64(st, 1, id);
		bind_str(st, 2, kind);
		if ((n = done(q, st, "start the pass", err)) < 0)
			return -1;
	}
	*n_r = n;
	/* a delta or verify that found nothing finished is no pass */
	if (n == 0 && strcmp(kind, "final") != 0)
		return 0;
	if ((st = prep(q, "UPDATE q_jobs SET pass_kind = ?2, pass_count = pass_count + 1, "
		       "pass_started = " NOW ", final = final OR ?2 = 'final' WHERE id = ?1",
		       "start the pass", err)) == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	bind_str(st, 2, kind);
	return done(q, st, "start the pass", err) < 0 ? -1 : 0;
}

static int qsq_pass(void *h, const char *job, const char *kind, int every_s, int *n_r,
		    struct tr_error *err)
{
	struct qsq *q = h;
	sqlite3_stmt *st;
	int64_t id;
	bool cancelled, final;
	int r;

	*n_r = 0;
	if (qsq_job_id(q, job, &id, err) < 0)
		return -1;
	/* the one writer: passes asked at once (and queue_schedule) take turns */
	if (begin(q, err) < 0)
		return -1;
	if ((st = prep(q, "SELECT cancelled IS NOT NULL, final FROM q_jobs WHERE id = ?1",
		       "read the job", err)) == NULL)
		goto fail;
	sqlite3_bind_int64(st, 1, id);
	if ((r = step(q, st, "read the job", err)) != 1) {
		sqlite3_finalize(st);
		if (r == 0)
			tr_error_set(err, TR_ERR_USAGE, "job %" PRId64 " is no longer in the queue",
				     id);
		goto fail;
	}
	cancelled = sqlite3_column_int(st, 0) != 0;
	final = sqlite3_column_int(st, 1) != 0;
	sqlite3_finalize(st);
	if (cancelled) {
		tr_error_set(err, TR_ERR_USAGE, "job %" PRId64 " is cancelled: `queue retry` it first",
			     id);
		goto fail;
	}
	if (final && (every_s != 0 || (kind != NULL && strcmp(kind, "verify") != 0))) {
		tr_error_set(err, TR_ERR_USAGE, "job %" PRId64 " had its final pass: only a verify "
			     "pass may follow", id);
		goto fail;
	}
	if (every_s != 0) {
		if ((st = prep(q, "UPDATE q_jobs SET pass_every = ?2 WHERE id = ?1",
			       "schedule the passes", err)) == NULL)
			goto fail;
		sqlite3_bind_int64(st, 1, id);
		if (every_s > 0)
			sqlite3_bind_int(st, 2, every_s);
		if (done(q, st, "schedule the passes", err) < 0)
			goto fail;
	}
	if (kind != NULL && start_pass(q, id, kind, n_r, err) < 0)
		goto fail;
	if (commit(q, err) < 0)
		goto fail;
	return 0;
fail:
	rollback(q);
	*n_r = 0;
	return -1;
}

/* Due by its own columns (the accounts are looked at next). */
#define SCHEDULE_DUE \
	"j.pass_every IS NOT NULL AND NOT j.final AND j.cancelled IS NULL AND " \
	"coalesce(j.pass_started, j.created) + j.pass_every <= " NOW

static int qsq_schedule(void *h, int *n_started, struct tr_error *err)
{
	struct qsq *q = h;
	sqlite3_stmt *st;
	int64_t *due = NULL;
	size_t n = 0, cap = 0, i;
	int rc;

	*n_started = 0;
	/* one write transaction: callers at once take turns, and the second
	 * sees the pass the first started (its accounts pending): each due
	 * pass starts once */
	if (begin(q, err) < 0)
		return -1;
	if ((st = prep(q, "SELECT j.id FROM q_jobs j WHERE " SCHEDULE_DUE " AND NOT EXISTS "
		       "(SELECT 1 FROM q_accounts a WHERE a.job_id = j.id AND a.state IN "
		       "('pending', 'running')) ORDER BY j.id", "find the due passes",
		       err)) == NULL)
		goto fail;
	while ((rc = step(q, st, "find the due passes", err)) == 1) {
		if (n == cap) {
			int64_t *nd = realloc(due, (cap = cap ? 2 * cap : 8) * sizeof(*due));

			if (nd == NULL) {
				rc = oom(err);
				break;
			}
			due = nd;
		}
		due[n++] = sqlite3_column_int64(st, 0);
	}
	sqlite3_finalize(st);
	if (rc < 0)
		goto fail;
	for (i = 0; i < n; i++) {
		int covered;

		if (start_pass(q, due[i], "delta", &covered, err) < 0)
			goto fail;
		if (covered > 0) {
			(*n_started)++;
			log_info(NULL, "job %" PRId64 ": scheduled delta pass started (%d account(s))",
				 due[i], covered);
		}
	}
	if (commit(q, err) < 0)
		goto fail;
	free(due);
	return 0;
fail:
	rollback(q);
	free(due);
	*n_started = 0;
	return -1;
}

static int qsq_cancel(void *h, const char *job, struct tr_error *err)
{
	struct qsq *q = h;
	int64_t id;

	if (qsq_job_id(q, job, &id, err) < 0 || begin(q, err) < 0)
		return -1;
	/* running accounts are their workers' to stop (renew); those whose
	 * worker is gone (lease out) are cancelled here */
	if (on_job(q, "UPDATE q_jobs SET cancelled = " NOW " WHERE id = ?1 "
		   "AND cancelled IS NULL", id, "cancel", err) < 0 ||
	    on_job(q, "UPDATE q_accounts SET state = 'cancelled', lease_until = NULL, "
		   "not_before = NULL WHERE job_id = ?1 AND (state = 'pending' OR "
		   "(state = 'running' AND lease_until < " NOW "))", id, "cancel", err) < 0 ||
	    commit(q, err) < 0) {
		rollback(q);
		return -1;
	}
	return 0;
}

static int qsq_delete(void *h, const char *job, struct tr_error *err)
{
	struct qsq *q = h;
	int64_t id;

	if (qsq_job_id(q, job, &id, err) < 0)
		return -1;
	/* its accounts and caps go with it (ON DELETE CASCADE) */
	return on_job(q, "DELETE FROM q_jobs WHERE id = ?1", id, "delete the job", err) < 0 ?
	       -1 : 0;
}

/* Seal column col of st again for its place into parameter i of up. */
static int reseal(struct qsq *q, sqlite3_stmt *st, int col, sqlite3_stmt *up, int i,
		  int64_t job, const char *email, const char *what, int *n_r,
		  struct tr_error *err)
{
	char *plain = NULL;
	int r;

	if (open_pw(q, st, col, job, email, what, &plain, err) < 0)
		return -1;
	r = bind_sealed(q, up, i, job, email, what, plain, err);
	if (r == 0 && plain != NULL)
		(*n_r)++;
	secret_free(plain);
	return r;
}

static int rekey_jobs_col(struct qsq *q, int k, int *n_r, struct tr_error *err)
{
	char sql[160];
	sqlite3_stmt *st, *up;
	int rc;

	snprintf(sql, sizeof(sql), "SELECT id, %s FROM q_jobs WHERE %s IS NOT NULL ORDER BY id",
		 queue_admin_cols[k].col, queue_admin_cols[k].col);
	if ((st = prep(q, sql, "read the jobs", err)) == NULL)
		return -1;
	snprintf(sql, sizeof(sql), "UPDATE q_jobs SET %s = ?2 WHERE id = ?1", queue_admin_cols[k].col);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t job = sqlite3_column_int64(st, 0);

		if ((up = prep(q, sql, "seal again", err)) == NULL)
			break;
		sqlite3_bind_int64(up, 1, job);
		if (reseal(q, st, 1, up, 2, job, NULL, queue_admin_cols[k].aad, n_r, err) < 0) {
			sqlite3_finalize(up);
			tr_error_prefix(err, "job %" PRId64 ", the %s admin password", job,
					k == 0 ? "destination" : "source");
			break;
		}
		if (done(q, up, "seal again", err) < 0)
			break;
	}
	if (rc == SQLITE_ROW) {
		sqlite3_finalize(st);
		return -1;
	}
	if (rc != SQLITE_DONE) {
		db_fail(q, "read the jobs", err);
		sqlite3_finalize(st);
		return -1;
	}
	sqlite3_finalize(st);
	return 0;
}

static int rekey_jobs(struct qsq *q, int *n_r, struct tr_error *err)
{
	return rekey_jobs_col(q, 0, n_r, err) < 0 || rekey_jobs_col(q, 1, n_r, err) < 0 ? -1 : 0;
}

static int rekey_accounts(struct qsq *q, int *n_r, struct tr_error *err)
{
	/* the rows change in place (no column read here is in an index), so
	 * the scan sees each once */
	sqlite3_stmt *st = prep(q, "SELECT id, job_id, email, password, dst_password "
				"FROM q_accounts WHERE password IS NOT NULL OR dst_password IS NOT "
				"NULL ORDER BY id", "read the accounts", err), *up;
	int rc;

	if (st == NULL)
		return -1;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t job = sqlite3_column_int64(st, 1);
		bool ok = true;
		char *email = col_str(st, 2, &ok), *label;

		if (!ok || email == NULL) {
			oom(err);
			break;
		}
		if ((up = prep(q, "UPDATE q_accounts SET password = ?2, dst_password = ?3 "
			       "WHERE id = ?1", "seal again", err)) == NULL) {
			free(email);
			break;
		}
		sqlite3_bind_int64(up, 1, sqlite3_column_int64(st, 0));
		if (reseal(q, st, 3, up, 2, job, email, "password", n_r, err) < 0 ||
		    reseal(q, st, 4, up, 3, job, email, "dst_password", n_r, err) < 0) {
			sqlite3_finalize(up);
			label = text_clean_dup(email, NULL);
			tr_error_prefix(err, "job %" PRId64 ", %s", job, label ? label : "?");
			free(label);
			free(email);
			break;
		}
		free(email);
		if (done(q, up, "seal again", err) < 0)
			break;
	}
	if (rc == SQLITE_ROW) {
		sqlite3_finalize(st);
		return -1;
	}
	if (rc != SQLITE_DONE) {
		db_fail(q, "read the accounts", err);
		sqlite3_finalize(st);
		return -1;
	}
	sqlite3_finalize(st);
	return 0;
}

static int qsq_rekey(void *h, int *n_r, struct tr_error *err)
{
	struct qsq *q = h;

	*n_r = 0;
	if (need_keys(q, err) < 0)
		return -1;
	/* all or nothing: a value that does not open (its key already gone
	 * from the file) leaves every value as it was */
	if (begin(q, err) < 0)
		return -1;
	if (rekey_jobs(q, n_r, err) < 0 || rekey_accounts(q, n_r, err) < 0 ||
	    commit(q, err) < 0) {
		rollback(q);
		*n_r = 0;
		return -1;
	}
	return 0;
}

/* ---- status --------------------------------------------------------------------- */

/* An account whose worker vanished after its job was cancelled is
 * cancelled, whatever its row still says. */
#define ACCOUNT_STATE \
	"CASE WHEN a.state = 'running' AND a.lease_until < " NOW " AND j.cancelled IS NOT NULL " \
	"THEN 'cancelled' ELSE a.state END"

static const char jobs_sql[] =
	"SELECT j.id, j.name, j.src, j.dst, j.cancelled IS NOT NULL, "
	"  " ISO("j.created") ", j.skipped, "
	"  count(a.id) FILTER (WHERE a.st = 'pending'), "
	"  count(a.id) FILTER (WHERE a.st = 'running'), "
	"  count(a.id) FILTER (WHERE a.st = 'ok'), "
	"  count(a.id) FILTER (WHERE a.st = 'partial'), "
	"  count(a.id) FILTER (WHERE a.st = 'failed'), "
	"  count(a.id) FILTER (WHERE a.st = 'cancelled'), "
	"  coalesce(sum(a.copied), 0), coalesce(sum(a.present), 0), "
	"  coalesce(sum(a.failed_msgs), 0), coalesce(sum(a.bytes), 0), "
	"  coalesce((CASE WHEN count(a.id) FILTER (WHERE a.st IN "
	"    ('pending', 'running')) = 0 THEN max(a.finished) ELSE " NOW " END) - "
	"    min(a.started), 0), "
	/* sessions in use: counted in each worker's process, not here */
	"  0, 0, "
	"  coalesce(cs.max_total, 0), coalesce(cs.max_per_account, 0), "
	"  coalesce(cd.max_total, 0), coalesce(cd.max_per_account, 0), "
	"  coalesce(cs.per_egress, 0), "
	"  j.pass_kind, j.pass_count, j.pass_every, "
	"  CASE WHEN j.pass_every IS NOT NULL AND NOT j.final THEN "
	"    " ISO("coalesce(j.pass_started, j.created) + j.pass_every") " END, "
	"  j.final, "
	"  (CASE WHEN count(a.id) FILTER (WHERE a.st IN ('pending', 'running')) = 0 THEN "
	"    max(coalesce(max(a.finished), 0), coalesce(j.pass_started, j.created)) "
	"    ELSE " NOW " END) - coalesce(j.pass_started, j.created), "
	"  j.last_pass_kind, j.last_pass_seconds, "
	"  (SELECT json_group_object(x.k, x.n) FROM (SELECT e.error_kind AS k, count(*) AS n "
	"    FROM q_accounts e WHERE e.job_id = j.id AND e.state IN ('failed', 'partial') "
	"    AND e.error_kind IS NOT NULL GROUP BY e.error_kind ORDER BY e.error_kind) x), "
	"  coalesce(sum(a.refused_src), 0), coalesce(sum(a.refused_dst), 0) "
	"FROM q_jobs j "
	"LEFT JOIN q_caps cs ON cs.job_id = j.id AND cs.side = 'src' "
	"LEFT JOIN q_caps cd ON cd.job_id = j.id AND cd.side = 'dst' "
	"LEFT JOIN (SELECT a.*, " ACCOUNT_STATE " AS st FROM q_accounts a "
	"  JOIN q_jobs j ON j.id = a.job_id) a ON a.job_id = j.id "
	"WHERE ?1 IS NULL OR j.id = ?1 "
	"GROUP BY j.id "
	"ORDER BY j.id";

static const char accounts_sql[] =
	"SELECT a.email, " ACCOUNT_STATE ", a.worker, a.error, a.copied, a.present, "
	"  a.failed_msgs, a.bytes, a.folders_done, a.folders_total, a.attempts, a.takeovers, "
	"  a.seconds, a.line, a.pass, a.verify_exact, "
	"  CASE WHEN a.state IN ('failed', 'partial') THEN a.error_kind END, "
	"  a.refused_src + a.refused_dst "
	"FROM q_accounts a JOIN q_jobs j ON j.id = a.job_id "
	"WHERE a.job_id = ?1 ORDER BY a.id";

/* Workers not stopped and heard from in the last ten minutes. */
static const char workers_sql[] =
	"SELECT w.id, w.host, w.pid, w.egress, w.parallel, "
	"  CAST(round(" NOW " - w.seen) AS INTEGER), "
	"  (SELECT count(*) FROM q_accounts a WHERE a.worker = w.id AND a.state = 'running') "
	"FROM q_workers w WHERE w.stopped IS NULL AND w.seen > " NOW " - 600 "
	"ORDER BY w.id";

static void job_row_read(sqlite3_stmt *st, struct queue_job_row *j, bool *ok)
{
	int k;

	memset(j, 0, sizeof(*j));
	j->id = sqlite3_column_int64(st, 0);
	j->name = col_str(st, 1, ok);
	j->src = col_str(st, 2, ok);
	j->dst = col_str(st, 3, ok);
	j->cancelled = sqlite3_column_int(st, 4) != 0;
	j->created = col_str(st, 5, ok);
	j->skipped = col_str(st, 6, ok);
	for (k = 0; k < QUEUE_A_N; k++)
		j->acc[k] = sqlite3_column_int64(st, 7 + k);
	j->copied = (uint64_t)sqlite3_column_int64(st, 13);
	j->present = (uint64_t)sqlite3_column_int64(st, 14);
	j->failed = (uint64_t)sqlite3_column_int64(st, 15);
	j->bytes = (uint64_t)sqlite3_column_int64(st, 16);
	j->seconds = sqlite3_column_double(st, 17);
	j->in_use[0] = sqlite3_column_int64(st, 18);
	j->in_use[1] = sqlite3_column_int64(st, 19);
	j->cap[0] = sqlite3_column_int64(st, 20);
	j->per_account[0] = sqlite3_column_int64(st, 21);
	j->cap[1] = sqlite3_column_int64(st, 22);
	j->per_account[1] = sqlite3_column_int64(st, 23);
	j->per_egress = sqlite3_column_int(st, 24) != 0;
	j->pass = col_str(st, 25, ok);
	j->passes = sqlite3_column_int64(st, 26);
	j->every = sqlite3_column_int64(st, 27);
	j->next_at = col_str(st, 28, ok);
	j->final = sqlite3_column_int(st, 29) != 0;
	j->pass_seconds = sqlite3_column_double(st, 30);
	j->last_pass = col_str(st, 31, ok);
	j->last_pass_seconds = sqlite3_column_double(st, 32);
	j->errors = col_str(st, 33, ok);
	j->refused[0] = sqlite3_column_int64(st, 34);
	j->refused[1] = sqlite3_column_int64(st, 35);
}

static void account_row_read(sqlite3_stmt *st, struct queue_account_row *a, bool *ok)
{
	memset(a, 0, sizeof(*a));
	a->email = col_str(st, 0, ok);
	a->state = col_str(st, 1, ok);
	a->worker = col_str(st, 2, ok);
	a->error = col_str(st, 3, ok);
	a->copied = sqlite3_column_int64(st, 4);
	a->present = sqlite3_column_int64(st, 5);
	a->failed = sqlite3_column_int64(st, 6);
	a->bytes = sqlite3_column_int64(st, 7);
	a->folders_done = sqlite3_column_int64(st, 8);
	a->folders_total = sqlite3_column_int64(st, 9);
	a->attempts = sqlite3_column_int64(st, 10);
	a->takeovers = sqlite3_column_int64(st, 11);
	a->seconds = sqlite3_column_double(st, 12);
	a->line = sqlite3_column_int64(st, 13);
	a->pass = col_str(st, 14, ok);
	a->verify_exact = sqlite3_column_type(st, 15) == SQLITE_NULL ? -1 :
			  sqlite3_column_int(st, 15) != 0;
	a->error_kind = col_str(st, 16, ok);
	a->refused = sqlite3_column_int64(st, 17);
	if (a->email == NULL || a->state == NULL)
		*ok = false;
}

static void worker_row_read(sqlite3_stmt *st, struct queue_worker_row *w, bool *ok)
{
	memset(w, 0, sizeof(*w));
	w->id = col_str(st, 0, ok);
	w->host = col_str(st, 1, ok);
	w->pid = sqlite3_column_int64(st, 2);
	w->egress = col_str(st, 3, ok);
	w->parallel = sqlite3_column_int64(st, 4);
	w->seen_ago = sqlite3_column_int64(st, 5);
	w->running = sqlite3_column_int64(st, 6);
}

/* Every row of sql (?1: job id, or NULL) into a growing array of size
 * elem, read by read. */
static int read_all(struct qsq *q, const char *sql, int64_t job, void **v_r, size_t *n_r,
		    size_t elem, void (*read)(sqlite3_stmt *, void *, bool *),
		    struct tr_error *err)
{
	sqlite3_stmt *st = prep(q, sql, "read the status", err);
	size_t cap = 0;
	bool ok = true;
	int rc;

	if (st == NULL)
		return -1;
	if (job > 0)
		sqlite3_bind_int64(st, 1, job);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (*n_r == cap) {
			void *nv = realloc(*v_r, (cap = cap ? 2 * cap : 16) * elem);

			if (nv == NULL) {
				ok = false;
				break;
			}
			*v_r = nv;
		}
		read(st, (char *)*v_r + *n_r * elem, &ok);
		(*n_r)++;
		if (!ok)
			break;
	}
	if (ok && rc != SQLITE_DONE) {
		db_fail(q, "read the status", err);
		sqlite3_finalize(st);
		return -1;
	}
	sqlite3_finalize(st);
	return ok ? 0 : oom(err);
}

static void read_job(sqlite3_stmt *st, void *row, bool *ok)
{
	job_row_read(st, row, ok);
}

static void read_account(sqlite3_stmt *st, void *row, bool *ok)
{
	account_row_read(st, row, ok);
}

static void read_worker(sqlite3_stmt *st, void *row, bool *ok)
{
	worker_row_read(st, row, ok);
}

static int qsq_status_rows(void *h, const char *job, struct queue_rows *rows,
			   struct tr_error *err)
{
	struct qsq *q = h;
	int64_t id = 0;
	int rc = -1;

	if (job != NULL && qsq_job_id(q, job, &id, err) < 0)
		return -1;
	/* one snapshot (a read transaction, WAL) for the three: the totals
	 * and the lists agree */
	if (exec(q, "BEGIN", "read the status", err) < 0)
		return -1;
	if (read_all(q, jobs_sql, id, (void **)&rows->jobs, &rows->n_jobs, sizeof(*rows->jobs),
		     read_job, err) < 0)
		goto out;
	if (job != NULL) {
		rows->with_accounts = true;
		if (read_all(q, accounts_sql, id, (void **)&rows->accounts, &rows->n_accounts,
			     sizeof(*rows->accounts), read_account, err) < 0)
			goto out;
	} else {
		rows->with_workers = true;
		if (read_all(q, workers_sql, 0, (void **)&rows->workers, &rows->n_workers,
			     sizeof(*rows->workers), read_worker, err) < 0)
			goto out;
	}
	rc = 0;
out:
	rollback(q);
	return rc;
}

/* ---- one account -------------------------------------------------------------- */

static const char detail_sql[] =
	"SELECT " ACCOUNT_STATE ", a.pass, a.error, a.folders_done, a.folders_total, a.copied, "
	"  a.present, a.failed_msgs, a.bytes, a.seconds, a.attempts, a.takeovers, a.worker, "
	"  " ISO("a.started") ", " ISO("a.finished") ", a.failures_more, " ISO("a.verify_at") ", "
	"  a.verify_exact, a.verify, a.id, a.email "
	"FROM q_accounts a JOIN q_jobs j ON j.id = a.job_id "
	"WHERE a.job_id = ?1 AND a.email = ?2";

static void detail_row_read(sqlite3_stmt *st, struct queue_detail *d, bool *ok)
{
	d->status = col_str(st, 0, ok);
	d->pass = col_str(st, 1, ok);
	d->error = col_str(st, 2, ok);
	d->folders_done = sqlite3_column_int64(st, 3);
	d->folders_total = sqlite3_column_int64(st, 4);
	d->copied = sqlite3_column_int64(st, 5);
	d->present = sqlite3_column_int64(st, 6);
	d->failed = sqlite3_column_int64(st, 7);
	d->bytes = sqlite3_column_int64(st, 8);
	d->seconds = sqlite3_column_double(st, 9);
	d->attempts = sqlite3_column_int64(st, 10);
	d->takeovers = sqlite3_column_int64(st, 11);
	d->worker = col_str(st, 12, ok);
	d->started = col_str(st, 13, ok);
	d->finished = col_str(st, 14, ok);
	d->failures_more = sqlite3_column_int64(st, 15);
	d->verify_at = col_str(st, 16, ok);
	d->verify_exact = sqlite3_column_int(st, 17) != 0;
	d->verify = col_str(st, 18, ok);
	d->email = col_str(st, 20, ok);
}

static void read_folder(sqlite3_stmt *st, void *row, bool *ok)
{
	struct queue_folder_row *f = row;

	memset(f, 0, sizeof(*f));
	f->src = col_str(st, 0, ok);
	f->dst = col_str(st, 1, ok);
	f->status = col_str(st, 2, ok);
	f->copied = sqlite3_column_int64(st, 3);
	f->present = sqlite3_column_int64(st, 4);
	f->failed = sqlite3_column_int64(st, 5);
	f->bytes = sqlite3_column_int64(st, 6);
	f->error = col_str(st, 7, ok);
}

static void read_failure(sqlite3_stmt *st, void *row, bool *ok)
{
	struct queue_failure_row *f = row;

	memset(f, 0, sizeof(*f));
	f->folder = col_str(st, 0, ok);
	f->uid = sqlite3_column_int64(st, 1);
	f->reply = col_str(st, 2, ok);
}

static int qsq_account_detail(void *h, const char *job, const char *email,
			      struct queue_detail *d, struct tr_error *err)
{
	struct qsq *q = h;
	sqlite3_stmt *st = NULL;
	int64_t id, account = 0;
	bool ok = true;
	int rc = -1, r;

	if (qsq_job_id(q, job, &id, err) < 0)
		return err->kind == TR_ERR_USAGE ? 1 : -1;
	d->job = id;
	/* one snapshot: the account, its folders and its failures agree */
	if (exec(q, "BEGIN", "read the account", err) < 0)
		return -1;
	if ((st = prep(q, detail_sql, "read the account", err)) == NULL)
		goto out;
	sqlite3_bind_int64(st, 1, id);
	bind_bytes(st, 2, email);
	if ((r = step(q, st, "read the account", err)) != 1) {
		if (r == 0) {
			char *c = text_clean_dup(email, NULL);

			tr_error_set(err, TR_ERR_USAGE, "job %" PRId64 " has no account \"%s\"", id,
				     c != NULL ? c : "?");
			free(c);
			rc = 1;
		}
		goto out;
	}
	detail_row_read(st, d, &ok);
	account = sqlite3_column_int64(st, 19);
	sqlite3_finalize(st);
	st = NULL;
	if (!ok || read_all(q, "SELECT src_name, dst_name, status, copied, present, failed_msgs, "
			    "bytes, error FROM q_folders WHERE account_id = ?1 ORDER BY idx", account,
			    (void **)&d->folders, &d->n_folders, sizeof(*d->folders), read_folder,
			    err) < 0 ||
	    read_all(q, "SELECT folder, uid, reply FROM q_failures WHERE account_id = ?1 "
		     "ORDER BY n", account, (void **)&d->failures, &d->n_failures,
		     sizeof(*d->failures), read_failure, err) < 0) {
		if (!ok)
			oom(err);
		goto out;
	}
	rc = 0;
out:
	sqlite3_finalize(st);
	rollback(q);
	return rc;
}

const struct queue_backend queue_backend_sqlite = {
	.name = "sqlite",
	.where = "DIR",
	.init = qsq_init,
	.open = qsq_open,
	.close = qsq_close,
	.where_text = qsq_where,
	.submit = qsq_submit,
	.claim = qsq_claim,
	.job_config = qsq_job_config,
	.renew = qsq_renew,
	.progress = qsq_progress,
	.finish = qsq_finish,
	.verify_finish = qsq_verify_finish,
	.release = qsq_release,
	.worker_register = qsq_worker_register,
	.worker_stopped = qsq_worker_stopped,
	.status_rows = qsq_status_rows,
	.retry = qsq_retry,
	.cancel = qsq_cancel,
	.delete_job = qsq_delete,
	.rekey = qsq_rekey,
	.outstanding = qsq_outstanding,
	.job_id = qsq_job_id,
	.pass = qsq_pass,
	.schedule = qsq_schedule,
	.account_detail = qsq_account_detail,
};
