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

#include "log.h"
#include "privdir.h"
#include "queue.h"
#include "queue_backend.h"
#include "queue_status.h"
#include "secret.h"
#include "text.h"

#define QUEUE_FILE "queue.sqlite"
/* How long a writer waits for another's transaction (ms). */
#define BUSY_MS 10000

/* Now, in seconds since the epoch (to the millisecond), by this host's
 * clock: PostgreSQL's now().  One value within a statement. */
#define NOW "((julianday('now') - 2440587.5) * 86400.0)"

/* Serialises the file's check: a thread that just made the file closes its
 * descriptor before another thread of the process may open a connection
 * (and take locks) on it (privdir.h, privdir_file_check). */
static pthread_mutex_t file_check_mu = PTHREAD_MUTEX_INITIALIZER;

struct qsq {
	sqlite3 *db;
	char *path;
	const struct seal_keys *keys;
};

/* Version 1: the tables of queue_pg.c's (pg_schema.c, version 1) but
 * q_sessions and q_cap_logins: the caps are held in each worker's
 * process.  AUTOINCREMENT: an id is never used again, as a sequence's. */
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
	"  cancelled REAL);"
	"CREATE INDEX q_jobs_name ON q_jobs (name);"
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
	"  PRIMARY KEY (job_id, side));";

/* upgrades[i] takes a database from version i to i + 1, in the
 * transaction that records the new version; append a step, never edit a
 * released one. */
static const char *const upgrades[] = {
	schema_v1,
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
				"a.state IN ('pending', 'running')", "count the accounts to do", err);

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
	if (nj->admin_password != NULL) {
		if ((st = prep(q, "UPDATE q_jobs SET admin_password = ?2 WHERE id = ?1",
			       "keep the admin password", err)) == NULL)
			goto fail;
		sqlite3_bind_int64(st, 1, id);
		if (bind_sealed(q, st, 2, id, NULL, "admin", nj->admin_password, err) < 0) {
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
		       "  started = " NOW ", finished = NULL, not_before = NULL, error = NULL, "
		       "  copied = 0, present = 0, failed_msgs = 0, bytes = 0, folders_done = 0, "
		       "  folders_total = 0, seconds = 0 "
		       "WHERE id = ?1 "
		       "RETURNING id, job_id, line, email, src_user, dst_user, password, "
		       "  dst_password, attempts", "claim an account", err)) == NULL)
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
	if (c->password == NULL) {
		tr_error_set(err, TR_ERR_LOCAL, "job %" PRId64 ": an account without a password",
			     c->job_id);
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
			  struct tr_error *err)
{
	struct qsq *q = h;
	sqlite3_stmt *st;
	bool ok = true;
	int rc = 0;

	*config_r = NULL;
	*admin_pw_r = NULL;
	if ((st = prep(q, "SELECT config, admin_password FROM q_jobs WHERE id = ?1",
		       "read the job", err)) == NULL)
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
	if (sqlite3_column_type(st, 1) != SQLITE_NULL) {
		if (need_keys(q, err) < 0) {
			sqlite3_finalize(st);
			return -1;
		}
		rc = open_pw(q, st, 1, job_id, NULL, "admin", admin_pw_r, err);
	}
	if (rc == 0 && ((*config_r = col_str(st, 0, &ok)) == NULL || !ok)) {
		secret_free(*admin_pw_r);
		*admin_pw_r = NULL;
		rc = oom(err);
	}
	if (rc < 0)
		tr_error_prefix(err, "job %" PRId64, job_id);
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
	sqlite3_stmt *st = prep(q, "UPDATE q_accounts SET copied = ?3, present = ?4, "
				"failed_msgs = ?5, bytes = ?6, folders_done = ?7, "
				"folders_total = ?8 WHERE id = ?1 AND worker = ?2 "
				"AND state = 'running'", "write the progress", err);

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, row);
	bind_str(st, 2, worker);
	bind_counts(st, 3, n);
	return done(q, st, "write the progress", err) < 0 ? -1 : 0;
}

static int qsq_finish(void *h, const char *worker, int64_t row, const char *status,
		      const char *error, const struct queue_counts *n, double seconds,
		      struct tr_error *err)
{
	struct qsq *q = h;
	sqlite3_stmt *st;
	int r;

	/* the lease may have run out: the outcome still counts while nobody
	 * took the account over (it is still running, as this worker's) */
	if ((st = prep(q, "UPDATE q_accounts SET state = ?3, error = ?4, copied = ?5, "
		       "present = ?6, failed_msgs = ?7, bytes = ?8, "
		       "folders_done = ?9, folders_total = ?10, "
		       "seconds = ?11, finished = " NOW ", lease_until = NULL "
		       "WHERE id = ?1 AND worker = ?2 AND state = 'running'",
		       "write the outcome", err)) == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, row);
	bind_str(st, 2, worker);
	bind_str(st, 3, status);
	bind_str(st, 4, error);
	bind_counts(st, 5, n);
	sqlite3_bind_double(st, 11, seconds >= 0 ? seconds : 0);
	r = done(q, st, "write the outcome", err);
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
	n = on_job(q, failed_only ?
		   "UPDATE q_accounts SET state = 'pending', worker = NULL, lease_until = NULL, "
		   "not_before = NULL WHERE job_id = ?1 AND state IN ('failed', 'partial')" :
		   "UPDATE q_accounts SET state = 'pending', worker = NULL, lease_until = NULL, "
		   "not_before = NULL WHERE job_id = ?1 AND state <> 'running'", id, "retry", err);
	if (n < 0 || commit(q, err) < 0)
		goto fail;
	*n_r = n;
	return 0;
fail:
	rollback(q);
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

static int rekey_jobs(struct qsq *q, int *n_r, struct tr_error *err)
{
	sqlite3_stmt *st = prep(q, "SELECT id, admin_password FROM q_jobs WHERE admin_password "
				"IS NOT NULL ORDER BY id", "read the jobs", err), *up;
	int rc;

	if (st == NULL)
		return -1;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t job = sqlite3_column_int64(st, 0);

		if ((up = prep(q, "UPDATE q_jobs SET admin_password = ?2 WHERE id = ?1",
			       "seal again", err)) == NULL)
			break;
		sqlite3_bind_int64(up, 1, job);
		if (reseal(q, st, 1, up, 2, job, NULL, "admin", n_r, err) < 0) {
			sqlite3_finalize(up);
			tr_error_prefix(err, "job %" PRId64 ", the admin password", job);
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
	"  strftime('%Y-%m-%dT%H:%M:%SZ', j.created, 'unixepoch'), j.skipped, "
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
	"  coalesce(cs.per_egress, 0) "
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
	"  a.seconds, a.line "
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
};
