/* state_sqlite: the state in one SQLite database, DIR/state.db (the
 * backend "sqlite", and what a plain directory means; state.h says what is
 * kept, state_backend.h what every backend promises).
 *
 * The database lives in a private directory as a private file (0600): it
 * holds logins and folder names, never a password.  The directory is
 * created 0700; an existing one must be a real directory owned by the user
 * running trasloco and not writable by group or others (privdir.h), and
 * state.db a regular file of that user, else opening refuses it.
 *
 * Every commit reaches the disk before it returns (WAL, synchronous=FULL),
 * so what the ledger says survives a power cut, not just a crash.
 *
 * The schema has a version (meta.schema): opening upgrades an older
 * database in one transaction, step by step, and refuses one written by a
 * newer trasloco (it would misread it).
 *
 * An account's lock is an flock on DIR/locks/account-ID.lock, held by an
 * open file description: another process, or another lock in this one,
 * fails to take it; the end of the process releases it.
 *
 * Ownership: the handle owns the connection, the directory's descriptor
 * and its texts; a lock handle owns its file descriptor.
 *
 * Threading: one connection, shared by all threads of the process behind
 * one mutex, so there is exactly one writer.  This file alone calls
 * SQLite.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "log.h"
#include "privdir.h"
#include "folder.h"
#include "state.h"
#include "state_backend.h"
#include "text.h"

struct sq {
	sqlite3 *db;
	pthread_mutex_t lock;
	char *path;
	char *dir;
	int dirfd;                  /* the checked state directory */
	bool day_table;             /* day_bytes made by this handle (under lock) */
};

/* Version 1, as the first trasloco wrote it (meta.schema = '1').  It may
 * meet a half-made version-1 database (the first releases created it
 * statement by statement and recorded the version last): IF NOT EXISTS. */
static const char schema_v1[] =
	"CREATE TABLE IF NOT EXISTS meta ("
	"  key TEXT PRIMARY KEY, value TEXT NOT NULL);"
	"CREATE TABLE IF NOT EXISTS accounts ("
	"  id INTEGER PRIMARY KEY,"
	"  key TEXT NOT NULL UNIQUE,"
	"  status TEXT NOT NULL DEFAULT 'new',"
	"  error TEXT,"
	"  updated INTEGER NOT NULL DEFAULT 0);"
	"CREATE TABLE IF NOT EXISTS folders ("
	"  id INTEGER PRIMARY KEY,"
	"  account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,"
	"  src_name TEXT NOT NULL,"
	"  dst_name TEXT NOT NULL,"
	"  src_uidvalidity INTEGER NOT NULL DEFAULT 0,"
	"  dst_uidvalidity INTEGER NOT NULL DEFAULT 0,"
	"  src_uidnext INTEGER NOT NULL DEFAULT 0,"
	"  src_modseq INTEGER NOT NULL DEFAULT 0,"
	"  src_messages INTEGER NOT NULL DEFAULT 0,"
	"  UNIQUE (account_id, src_name));"
	"CREATE TABLE IF NOT EXISTS messages ("
	"  folder_id INTEGER NOT NULL REFERENCES folders(id) ON DELETE CASCADE,"
	"  src_uid INTEGER NOT NULL,"
	"  dst_uid INTEGER NOT NULL DEFAULT 0,"
	"  state INTEGER NOT NULL,"
	"  fp TEXT,"
	"  dst_uidnext INTEGER NOT NULL DEFAULT 0,"
	"  flags TEXT NOT NULL DEFAULT '',"
	"  error TEXT,"
	"  PRIMARY KEY (folder_id, src_uid)) WITHOUT ROWID;";

/* The schema's history: upgrades[i] takes a database from version i to
 * version i + 1.  sq_open runs the missing steps in order, in one
 * transaction that also records the new version (meta.schema), so a
 * database is at one version or the next, never between.  A new database
 * goes through every step.  To change the schema, append a step (SQL,
 * and/or a function for what SQL cannot do); never edit a released step:
 * databases out there were made by it. */
struct upgrade {
	const char *sql;                                    /* NULL: none */
	int (*fn)(struct sq *st, struct tr_error *err);  /* NULL: none; runs after sql */
};

static int rename_folders_v3(struct sq *st, struct tr_error *err);

static const struct upgrade upgrades[] = {
	/* 0 -> 1: the tables. */
	{ schema_v1, NULL },
	/* 1 -> 2: the rows not yet done, per folder, without reading the whole
	 * ledger: a re-run checks every folder for them and must not grow with
	 * the mailbox.  Added to version 1 before versions were checked, so
	 * some version-1 databases have it already. */
	{ "CREATE INDEX IF NOT EXISTS messages_unsettled ON messages (folder_id)"
	  "  WHERE state != 1;", NULL },
	/* 2 -> 3: folder names in the form users see (folder.h): "%percent",
	 * not "%25percent"; a '/' inside a name "\/", not "%2F". */
	{ NULL, rename_folders_v3 },
};

#define SCHEMA_VERSION ((int)(sizeof(upgrades) / sizeof(upgrades[0])))

_Static_assert(SCHEMA_VERSION == STATE_SCHEMA_VERSION,
	       "a schema change: append its step here and raise STATE_SCHEMA_VERSION");

static int db_fail(struct sq *st, struct tr_error *err, const char *what)
{
	tr_error_set(err, TR_ERR_LOCAL, "state database %s: %s: %s", st->path, what,
		     sqlite3_errmsg(st->db));
	return -1;
}

/* Every stored folder name from the old form into today's. */
static int rename_folders_v3(struct sq *st, struct tr_error *err)
{
	sqlite3_stmt *q = NULL, *u = NULL;
	int rc, r = -1;

	if (sqlite3_prepare_v2(st->db, "SELECT id, src_name, dst_name FROM folders", -1, &q,
			       NULL) != SQLITE_OK ||
	    /* OR IGNORE: should two old names ever meet, the second keeps its old
	     * name and is matched afresh by fingerprint, never merged */
	    sqlite3_prepare_v2(st->db, "UPDATE OR IGNORE folders SET src_name = ?2, dst_name = ?3"
			       " WHERE id = ?1", -1, &u, NULL) != SQLITE_OK) {
		db_fail(st, err, "rename folders");
		goto out;
	}
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		char *src = folder_name_from_v1((const char *)sqlite3_column_text(q, 1));
		char *dst = folder_name_from_v1((const char *)sqlite3_column_text(q, 2));
		bool same = src != NULL && dst != NULL &&
			    strcmp(src, (const char *)sqlite3_column_text(q, 1)) == 0 &&
			    strcmp(dst, (const char *)sqlite3_column_text(q, 2)) == 0;

		if (src == NULL || dst == NULL) {
			free(src);
			free(dst);
			tr_error_set(err, TR_ERR_LOCAL, "out of memory");
			goto out;
		}
		if (!same) {
			sqlite3_bind_int64(u, 1, sqlite3_column_int64(q, 0));
			sqlite3_bind_text(u, 2, src, -1, SQLITE_TRANSIENT);
			sqlite3_bind_text(u, 3, dst, -1, SQLITE_TRANSIENT);
			rc = sqlite3_step(u);
			sqlite3_reset(u);
		}
		free(src);
		free(dst);
		if (!same && rc != SQLITE_DONE) {
			db_fail(st, err, "rename folder");
			goto out;
		}
	}
	if (rc != SQLITE_DONE) {
		db_fail(st, err, "read folders");
		goto out;
	}
	r = 0;
out:
	sqlite3_finalize(q);
	sqlite3_finalize(u);
	return r;
}

static int exec(struct sq *st, const char *sql, struct tr_error *err)
{
	char *msg = NULL;

	if (sqlite3_exec(st->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		tr_error_set(err, TR_ERR_LOCAL, "state database %s: %s", st->path,
			     msg != NULL ? msg : "error");
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

static int count_tables(struct sq *st, const char *sql, int64_t *n_r, struct tr_error *err)
{
	sqlite3_stmt *q = NULL;
	int rc;

	if (sqlite3_prepare_v2(st->db, sql, -1, &q, NULL) != SQLITE_OK)
		return db_fail(st, err, "read the schema");
	rc = sqlite3_step(q);
	if (rc == SQLITE_ROW)
		*n_r = sqlite3_column_int64(q, 0);
	sqlite3_finalize(q);
	if (rc != SQLITE_ROW)
		return db_fail(st, err, "read the schema");
	return 0;
}

/* The version the database is at: 0 when it is new, or a version-1
 * database whose creation was cut short before it recorded its version. */
static int schema_version(struct sq *st, int *v_r, struct tr_error *err)
{
	sqlite3_stmt *q = NULL;
	const char *t;
	char *end;
	int64_t n;
	long v;
	int rc;

	if (count_tables(st, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND "
			 "name = 'meta'", &n, err) < 0)
		return -1;
	if (n == 0) {
		if (count_tables(st, "SELECT count(*) FROM sqlite_master", &n, err) < 0)
			return -1;
		if (n > 0) {
			tr_error_set(err, TR_ERR_LOCAL, "%s is not a trasloco state database (it "
				     "has tables but no schema version): give another state "
				     "directory", st->path);
			return -1;
		}
		*v_r = 0;
		return 0;
	}
	if (sqlite3_prepare_v2(st->db, "SELECT value FROM meta WHERE key = 'schema'", -1, &q,
			       NULL) != SQLITE_OK)
		return db_fail(st, err, "read the schema version");
	rc = sqlite3_step(q);
	if (rc == SQLITE_DONE) {
		sqlite3_finalize(q);
		*v_r = 0;
		return 0;
	}
	if (rc != SQLITE_ROW) {
		db_fail(st, err, "read the schema version");
		sqlite3_finalize(q);
		return -1;
	}
	t = (const char *)sqlite3_column_text(q, 0);
	errno = 0;
	v = t != NULL ? strtol(t, &end, 10) : 0;
	if (t == NULL || end == t || *end != '\0' || errno != 0 || v < 1 || v > 1000000) {
		tr_error_set(err, TR_ERR_LOCAL, "state database %s: unreadable schema version "
			     "\"%.40s\"", st->path, t != NULL ? t : "");
		sqlite3_finalize(q);
		return -1;
	}
	sqlite3_finalize(q);
	*v_r = (int)v;
	return 0;
}

static int refuse_newer(struct sq *st, int v, struct tr_error *err)
{
	tr_error_set(err, TR_ERR_LOCAL, "state database %s has schema version %d, and this "
		     "trasloco knows versions up to %d: a newer trasloco wrote it; upgrade "
		     "trasloco to use this state", st->path, v, SCHEMA_VERSION);
	return -1;
}

/* Bring the database to SCHEMA_VERSION from version v (read before, see
 * sq_open). */
static int schema_upgrade(struct sq *st, int v, struct tr_error *err)
{
	char sql[96];
	int from, i;

	if (v == SCHEMA_VERSION)
		return 0;
	/* Read again under the write lock: another process may be upgrading
	 * it right now. */
	if (exec(st, "BEGIN IMMEDIATE", err) < 0)
		return -1;
	if (schema_version(st, &v, err) < 0)
		goto rollback;
	if (v > SCHEMA_VERSION) {
		refuse_newer(st, v, err);
		goto rollback;
	}
	for (from = i = v; i < SCHEMA_VERSION; i++) {
		if ((upgrades[i].sql != NULL && exec(st, upgrades[i].sql, err) < 0) ||
		    (upgrades[i].fn != NULL && upgrades[i].fn(st, err) < 0)) {
			tr_error_prefix(err, "upgrading the state from schema version %d to %d", i,
					i + 1);
			goto rollback;
		}
	}
	snprintf(sql, sizeof(sql), "INSERT OR REPLACE INTO meta (key, value) VALUES "
		 "('schema', '%d')", SCHEMA_VERSION);
	if (exec(st, sql, err) < 0 || exec(st, "COMMIT", err) < 0)
		goto rollback;
	if (from > 0)
		log_info(NULL, "state database %s upgraded from schema version %d to %d", st->path,
			 from, SCHEMA_VERSION);
	return 0;
rollback:
	exec(st, "ROLLBACK", NULL);
	return -1;
}

static void sq_close(void *h);

static int sq_open(const char *dir, void **h_r, struct tr_error *err)
{
	struct sq *st;
	size_t len;
	int fd, r, v;

	*h_r = NULL;
	st = calloc(1, sizeof(*st));
	if (st == NULL) {
		tr_error_set(err, TR_ERR_LOCAL, "out of memory");
		return -1;
	}
	st->dirfd = -1;
	pthread_mutex_init(&st->lock, NULL);
	len = strlen(dir) + sizeof("/state.db");
	st->path = malloc(len);
	st->dir = strdup(dir);
	if (st->path == NULL || st->dir == NULL) {
		sq_close(st);
		tr_error_set(err, TR_ERR_LOCAL, "out of memory");
		return -1;
	}
	snprintf(st->path, len, "%s/state.db", dir);
	st->dirfd = privdir_open(dir, "state directory", err);
	if (st->dirfd < 0) {
		sq_close(st);
		return -1;
	}
	/* Create the file ourselves so it is private from its first byte;
	 * SQLite gives the -wal and -shm files the same mode. */
	fd = privdir_file(st->dirfd, dir, "state.db", O_RDWR | O_CREAT, err);
	if (fd < 0) {
		sq_close(st);
		return -1;
	}
	close(fd);
	r = sqlite3_open_v2(st->path, &st->db,
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX | SQLITE_OPEN_NOFOLLOW,
			    NULL);
	if (r != SQLITE_OK) {
		tr_error_set(err, TR_ERR_LOCAL, "cannot open state database %s: %s", st->path,
			     sqlite3_errstr(r));
		sq_close(st);
		return -1;
	}
	sqlite3_busy_timeout(st->db, 10000);
	/* A database from a newer trasloco is refused before anything here
	 * writes to it. */
	if (schema_version(st, &v, err) < 0 ||
	    (v > SCHEMA_VERSION && refuse_newer(st, v, err) < 0)) {
		sq_close(st);
		return -1;
	}
	/* WAL: readers never block the writer.  FULL: a commit is on disk
	 * before it returns (one fsync of the WAL per transaction), so a
	 * pending row whose APPEND went out survives a power cut too; with
	 * NORMAL the last commits could vanish and the next run would copy
	 * those messages again.  Its cost: bench/micro.sh. */
	if (exec(st, "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;"
		 " PRAGMA foreign_keys = ON;", err) < 0 ||
	    schema_upgrade(st, v, err) < 0) {
		sq_close(st);
		return -1;
	}
	*h_r = st;
	return 0;
}

static void sq_close(void *h)
{
	struct sq *st = h;

	if (st == NULL)
		return;
	if (st->db != NULL)
		sqlite3_close(st->db);
	if (st->dirfd >= 0)
		close(st->dirfd);
	pthread_mutex_destroy(&st->lock);
	free(st->dir);
	free(st->path);
	free(st);
}

static const char *sq_path(void *h)
{
	const struct sq *st = h;

	return st->path;
}

static int sq_account(void *h, const char *key, int64_t *id_r, struct tr_error *err)
{
	struct sq *st = h;
	sqlite3_stmt *q = NULL;
	int r = -1;

	pthread_mutex_lock(&st->lock);
	if (sqlite3_prepare_v2(st->db, "INSERT OR IGNORE INTO accounts (key) VALUES (?1)", -1, &q,
			       NULL) != SQLITE_OK) {
		db_fail(st, err, "add account");
		goto out;
	}
	sqlite3_bind_text(q, 1, key, -1, SQLITE_STATIC);
	if (sqlite3_step(q) != SQLITE_DONE) {
		db_fail(st, err, "add account");
		goto out;
	}
	sqlite3_finalize(q);
	q = NULL;
	if (sqlite3_prepare_v2(st->db, "SELECT id FROM accounts WHERE key = ?1", -1, &q, NULL) !=
	    SQLITE_OK) {
		db_fail(st, err, "find account");
		goto out;
	}
	sqlite3_bind_text(q, 1, key, -1, SQLITE_STATIC);
	if (sqlite3_step(q) != SQLITE_ROW) {
		db_fail(st, err, "find account");
		goto out;
	}
	*id_r = sqlite3_column_int64(q, 0);
	r = 0;
out:
	sqlite3_finalize(q);
	pthread_mutex_unlock(&st->lock);
	return r;
}

static int sq_account_lock(void *h, int64_t account_id, void **lock_r, struct tr_error *err)
{
	struct sq *st = h;
	char path[4200], name[64];
	int dfd, fd, *fdp;

	*lock_r = NULL;
	fdp = malloc(sizeof(*fdp));
	if (fdp == NULL) {
		tr_error_set(err, TR_ERR_LOCAL, "out of memory");
		return -1;
	}

	snprintf(path, sizeof(path), "%s/locks", st->dir);
	if (mkdirat(st->dirfd, "locks", 0700) < 0 && errno != EEXIST) {
		tr_error_set(err, TR_ERR_LOCAL, "cannot create %s: %s", path, strerror(errno));
		free(fdp);
		return -1;
	}
	dfd = openat(st->dirfd, "locks", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0) {
		tr_error_set(err, TR_ERR_LOCAL, "cannot open %s: %s", path, strerror(errno));
		free(fdp);
		return -1;
	}
	snprintf(name, sizeof(name), "account-%lld.lock", (long long)account_id);
	fd = privdir_file(dfd, path, name, O_RDWR | O_CREAT, err);
	close(dfd);
	if (fd < 0) {
		free(fdp);
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		tr_error_set(err, TR_ERR_LOCAL, "another trasloco run is migrating this account "
			     "with the same state right now (%s/%s)", path, name);
		snprintf(err->code, sizeof(err->code), "INUSE");
		close(fd);
		free(fdp);
		return -1;
	}
	*fdp = fd;
	*lock_r = fdp;
	return 0;
}

static void sq_account_unlock(void *h, void *lock)
{
	int *fdp = lock;

	(void)h;
	close(*fdp);
	free(fdp);
}

static int sq_account_get_status(void *h, int64_t account_id, char *buf, size_t len,
				 struct tr_error *err)
{
	struct sq *st = h;
	sqlite3_stmt *q = NULL;
	int r = -1;

	pthread_mutex_lock(&st->lock);
	if (sqlite3_prepare_v2(st->db, "SELECT status FROM accounts WHERE id = ?1", -1, &q,
			       NULL) != SQLITE_OK) {
		db_fail(st, err, "read account");
		goto out;
	}
	sqlite3_bind_int64(q, 1, account_id);
	if (sqlite3_step(q) != SQLITE_ROW) {
		db_fail(st, err, "read account");
		goto out;
	}
	snprintf(buf, len, "%s", (const char *)sqlite3_column_text(q, 0));
	r = 0;
out:
	sqlite3_finalize(q);
	pthread_mutex_unlock(&st->lock);
	return r;
}

/* Error texts quote servers: stored cleaned (text.h), valid UTF-8 without
 * control bytes, for whoever reads the database later. */
static void bind_clean(sqlite3_stmt *q, int col, const char *text)
{
	char *c = text_clean_dup(text, NULL);

	if (c != NULL)
		sqlite3_bind_text(q, col, c, -1, free);
	else
		sqlite3_bind_text(q, col, "(error text lost: out of memory)", -1, SQLITE_STATIC);
}

static int sq_account_set_status(void *h, int64_t account_id, const char *status,
				 const char *error, struct tr_error *err)
{
	struct sq *st = h;
	sqlite3_stmt *q = NULL;
	int r = -1;

	pthread_mutex_lock(&st->lock);
	if (sqlite3_prepare_v2(st->db,
			       "UPDATE accounts SET status = ?2, error = ?3, updated = ?4 WHERE id = ?1",
			       -1, &q, NULL) != SQLITE_OK) {
		db_fail(st, err, "update account");
		goto out;
	}
	sqlite3_bind_int64(q, 1, account_id);
	sqlite3_bind_text(q, 2, status, -1, SQLITE_STATIC);
	if (error != NULL)
		bind_clean(q, 3, error);
	sqlite3_bind_int64(q, 4, (sqlite3_int64)time(NULL));
	if (sqlite3_step(q) != SQLITE_DONE) {
		db_fail(st, err, "update account");
		goto out;
	}
	r = 0;
out:
	sqlite3_finalize(q);
	pthread_mutex_unlock(&st->lock);
	return r;
}

/* Caller holds the lock. */
static int folder_reset_locked(struct sq *st, struct state_folder *f, struct tr_error *err)
{
	sqlite3_stmt *q = NULL;
	int ok;

	if (exec(st, "BEGIN IMMEDIATE", err) < 0)
		return -1;
	ok = sqlite3_prepare_v2(st->db, "DELETE FROM messages WHERE folder_id = ?1", -1, &q,
				NULL) == SQLITE_OK;
	if (ok) {
		sqlite3_bind_int64(q, 1, f->id);
		ok = sqlite3_step(q) == SQLITE_DONE;
	}
	sqlite3_finalize(q);
	q = NULL;
	if (ok)
		ok = sqlite3_prepare_v2(st->db,
					"UPDATE folders SET src_uidvalidity = 0, dst_uidvalidity = 0,"
					" src_uidnext = 0, src_modseq = 0, src_messages = 0"
					" WHERE id = ?1", -1, &q, NULL) == SQLITE_OK;
	if (ok) {
		sqlite3_bind_int64(q, 1, f->id);
		ok = sqlite3_step(q) == SQLITE_DONE;
	}
	sqlite3_finalize(q);
	if (!ok) {
		db_fail(st, err, "reset folder");
		exec(st, "ROLLBACK", NULL);
		return -1;
	}
	if (exec(st, "COMMIT", err) < 0)
		return -1;
	f->src_uidvalidity = f->dst_uidvalidity = f->src_uidnext = f->src_messages = 0;
	f->src_modseq = 0;
	f->unsettled = 0;
	return 0;
}

static int sq_folder_saved_dst(void *h, int64_t account_id, const char *src_name,
			       char **dst_name_r, struct tr_error *err)
{
	struct sq *st = h;
	sqlite3_stmt *q = NULL;
	int r = -1, rc;

	*dst_name_r = NULL;
	pthread_mutex_lock(&st->lock);
	if (sqlite3_prepare_v2(st->db, "SELECT dst_name FROM folders"
			       " WHERE account_id = ?1 AND src_name = ?2", -1, &q, NULL) != SQLITE_OK) {
		db_fail(st, err, "load folder");
		goto out;
	}
	sqlite3_bind_int64(q, 1, account_id);
	sqlite3_bind_text(q, 2, src_name, -1, SQLITE_STATIC);
	rc = sqlite3_step(q);
	if (rc == SQLITE_DONE) {
		r = 0;
	} else if (rc != SQLITE_ROW) {
		db_fail(st, err, "load folder");
	} else if ((*dst_name_r = strdup((const char *)sqlite3_column_text(q, 0))) == NULL) {
		tr_error_set(err, TR_ERR_LOCAL, "out of memory");
	} else {
		r = 1;
	}
out:
	sqlite3_finalize(q);
	pthread_mutex_unlock(&st->lock);
	return r;
}

static int sq_folder_reset(void *h, struct state_folder *f, struct tr_error *err)
{
	struct sq *st = h;
	int r;

	pthread_mutex_lock(&st->lock);
	r = folder_reset_locked(st, f, err);
	pthread_mutex_unlock(&st->lock);
	return r;
}

static int sq_folder_load(void *h, int64_t account_id, const char *src_name,
			  const char *dst_name, struct state_folder *f, struct tr_error *err)
{
	struct sq *st = h;
	sqlite3_stmt *q = NULL;
	bool other_dst = false;
	int r = -1, rc;

	memset(f, 0, sizeof(*f));
	pthread_mutex_lock(&st->lock);
	if (sqlite3_prepare_v2(st->db,
			       "INSERT OR IGNORE INTO folders (account_id, src_name, dst_name)"
			       " VALUES (?1, ?2, ?3)", -1, &q, NULL) != SQLITE_OK) {
		db_fail(st, err, "add folder");
		goto out;
	}
	sqlite3_bind_int64(q, 1, account_id);
	sqlite3_bind_text(q, 2, src_name, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 3, dst_name, -1, SQLITE_STATIC);
	if (sqlite3_step(q) != SQLITE_DONE) {
		db_fail(st, err, "add folder");
		goto out;
	}
	sqlite3_finalize(q);
	q = NULL;
	if (sqlite3_prepare_v2(st->db,
			       "SELECT id, dst_name, src_uidvalidity, dst_uidvalidity, src_uidnext,"
			       " src_modseq, src_messages,"
			       " (SELECT count(*) FROM messages m WHERE m.folder_id = f.id"
			       "  AND m.state != 1)"
			       " FROM folders f WHERE account_id = ?1 AND src_name = ?2",
			       -1, &q, NULL) != SQLITE_OK) {
		db_fail(st, err, "load folder");
		goto out;
	}
	sqlite3_bind_int64(q, 1, account_id);
	sqlite3_bind_text(q, 2, src_name, -1, SQLITE_STATIC);
	rc = sqlite3_step(q);
	if (rc != SQLITE_ROW) {
		db_fail(st, err, "load folder");
		goto out;
	}
	f->id = sqlite3_column_int64(q, 0);
	other_dst = strcmp((const char *)sqlite3_column_text(q, 1), dst_name) != 0;
	f->src_uidvalidity = (uint32_t)sqlite3_column_int64(q, 2);
	f->dst_uidvalidity = (uint32_t)sqlite3_column_int64(q, 3);
	f->src_uidnext = (uint32_t)sqlite3_column_int64(q, 4);
	f->src_modseq = (uint64_t)sqlite3_column_int64(q, 5);
	f->src_messages = (uint32_t)sqlite3_column_int64(q, 6);
	f->unsettled = (uint32_t)sqlite3_column_int64(q, 7);
	sqlite3_finalize(q);
	q = NULL;
	if (other_dst) {
		/* The folder now goes elsewhere (a new --map): the old ledger says
		 * nothing about the new destination. */
		if (folder_reset_locked(st, f, err) < 0)
			goto out;
		if (sqlite3_prepare_v2(st->db, "UPDATE folders SET dst_name = ?2 WHERE id = ?1", -1,
				       &q, NULL) != SQLITE_OK) {
			db_fail(st, err, "rename folder");
			goto out;
		}
		sqlite3_bind_int64(q, 1, f->id);
		sqlite3_bind_text(q, 2, dst_name, -1, SQLITE_STATIC);
		if (sqlite3_step(q) != SQLITE_DONE) {
			db_fail(st, err, "rename folder");
			goto out;
		}
	}
	r = 0;
out:
	sqlite3_finalize(q);
	pthread_mutex_unlock(&st->lock);
	return r;
}

static int sq_folder_save(void *h, const struct state_folder *f, struct tr_error *err)
{
	struct sq *st = h;
	sqlite3_stmt *q = NULL;
	int r = -1;

	pthread_mutex_lock(&st->lock);
	if (sqlite3_prepare_v2(st->db,
			       "UPDATE folders SET src_uidvalidity = ?2, dst_uidvalidity = ?3,"
			       " src_uidnext = ?4, src_modseq = ?5, src_messages = ?6 WHERE id = ?1",
			       -1, &q, NULL) != SQLITE_OK) {
		db_fail(st, err, "save folder");
		goto out;
	}
	sqlite3_bind_int64(q, 1, f->id);
	sqlite3_bind_int64(q, 2, f->src_uidvalidity);
	sqlite3_bind_int64(q, 3, f->dst_uidvalidity);
	sqlite3_bind_int64(q, 4, f->src_uidnext);
	sqlite3_bind_int64(q, 5, (sqlite3_int64)f->src_modseq);
	sqlite3_bind_int64(q, 6, f->src_messages);
	if (sqlite3_step(q) != SQLITE_DONE) {
		db_fail(st, err, "save folder");
		goto out;
	}
	r = 0;
out:
	sqlite3_finalize(q);
	pthread_mutex_unlock(&st->lock);
	return r;
}

static char *dup_col(sqlite3_stmt *q, int col)
{
	const unsigned char *t = sqlite3_column_text(q, col);

	return t != NULL ? strdup((const char *)t) : NULL;
}

static int sq_msgs_load(void *h, int64_t folder_id, struct state_msg **rows_r,
			size_t *n_r, struct tr_error *err)
{
	struct sq *st = h;
	struct state_msg *rows = NULL;
	size_t n = 0, cap = 0;
	sqlite3_stmt *q = NULL;
	int rc, r = -1;

	*rows_r = NULL;
	*n_r = 0;
	pthread_mutex_lock(&st->lock);
	if (sqlite3_prepare_v2(st->db,
			       "SELECT src_uid, dst_uid, state, fp, dst_uidnext, flags, error"
			       " FROM messages WHERE folder_id = ?1 ORDER BY src_uid", -1, &q,
			       NULL) != SQLITE_OK) {
		db_fail(st, err, "load ledger");
		goto out;
	}
	sqlite3_bind_int64(q, 1, folder_id);
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		struct state_msg *m;

		if (n == cap) {
			size_t nc = cap ? cap * 2 : 256;
			struct state_msg *nr = realloc(rows, nc * sizeof(*nr));

			if (nr == NULL) {
				tr_error_set(err, TR_ERR_LOCAL, "out of memory");
				goto out;
			}
			rows = nr;
			cap = nc;
		}
		m = &rows[n];
		memset(m, 0, sizeof(*m));
		m->src_uid = (uint32_t)sqlite3_column_int64(q, 0);
		m->dst_uid = (uint32_t)sqlite3_column_int64(q, 1);
		m->state = (enum state_msg_state)sqlite3_column_int(q, 2);
		m->has_fp = fp_from_hex((const char *)sqlite3_column_text(q, 3), m->fp) == 0;
		m->dst_uidnext = (uint32_t)sqlite3_column_int64(q, 4);
		m->flags = dup_col(q, 5);
		m->error = dup_col(q, 6);
		n++;
		if (m->flags == NULL) {
			tr_error_set(err, TR_ERR_LOCAL, "out of memory");
			goto out;
		}
	}
	if (rc != SQLITE_DONE) {
		db_fail(st, err, "load ledger");
		goto out;
	}
	*rows_r = rows;
	*n_r = n;
	rows = NULL;
	n = 0;
	r = 0;
out:
	sqlite3_finalize(q);
	pthread_mutex_unlock(&st->lock);
	state_rows_free(rows, n);
	return r;
}

/* Run one statement for rows 0..n-1 in one transaction, bind(q, i, ctx)
 * filling the parameters of row i. */
static int batch_exec(struct sq *st, const char *sql, size_t n,
		      void (*bind)(sqlite3_stmt *q, size_t i, const void *ctx), const void *ctx,
		      const char *what, struct tr_error *err)
{
	sqlite3_stmt *q = NULL;
	size_t i;
	int r = -1;

	if (n == 0)
		return 0;
	pthread_mutex_lock(&st->lock);
	if (exec(st, "BEGIN IMMEDIATE", err) < 0)
		goto out;
	if (sqlite3_prepare_v2(st->db, sql, -1, &q, NULL) != SQLITE_OK) {
		db_fail(st, err, what);
		goto rollback;
	}
	for (i = 0; i < n; i++) {
		sqlite3_reset(q);
		sqlite3_clear_bindings(q);
		bind(q, i, ctx);
		if (sqlite3_step(q) != SQLITE_DONE) {
			db_fail(st, err, what);
			goto rollback;
		}
	}
	sqlite3_finalize(q);
	q = NULL;
	if (exec(st, "COMMIT", err) < 0)
		goto rollback;
	r = 0;
	goto out;
rollback:
	sqlite3_finalize(q);
	exec(st, "ROLLBACK", NULL);
out:
	pthread_mutex_unlock(&st->lock);
	return r;
}

struct rows_ctx {
	int64_t folder_id;
	const struct state_msg *rows;
	const uint32_t *uids;
};

static void bind_row(sqlite3_stmt *q, size_t i, const void *ctx)
{
	const struct rows_ctx *c = ctx;
	const struct state_msg *m = &c->rows[i];
	char hex[FP_HEX_LEN + 1];

	sqlite3_bind_int64(q, 1, c->folder_id);
	sqlite3_bind_int64(q, 2, m->src_uid);
	sqlite3_bind_int64(q, 3, m->dst_uid);
	sqlite3_bind_int(q, 4, m->state);
	if (m->has_fp) {
		fp_to_hex(m->fp, hex);
		sqlite3_bind_text(q, 5, hex, -1, SQLITE_TRANSIENT);
	}
	sqlite3_bind_int64(q, 6, m->dst_uidnext);
	sqlite3_bind_text(q, 7, m->flags != NULL ? m->flags : "", -1, SQLITE_STATIC);
	if (m->error != NULL)
		bind_clean(q, 8, m->error);
}

static void bind_uid(sqlite3_stmt *q, size_t i, const void *ctx)
{
	const struct rows_ctx *c = ctx;

	sqlite3_bind_int64(q, 1, c->folder_id);
	sqlite3_bind_int64(q, 2, c->uids[i]);
}

static int sq_msgs_put(void *h, int64_t folder_id, const struct state_msg *rows, size_t n,
		       struct tr_error *err)
{
	struct sq *st = h;
	struct rows_ctx c = { .folder_id = folder_id, .rows = rows };

	return batch_exec(st, "INSERT OR REPLACE INTO messages (folder_id, src_uid, dst_uid, "
			  "state, fp, dst_uidnext, flags, error) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
			  n, bind_row, &c, "write ledger", err);
}

static int sq_msgs_delete(void *h, int64_t folder_id, const uint32_t *src_uids, size_t n,
			  struct tr_error *err)
{
	struct sq *st = h;
	struct rows_ctx c = { .folder_id = folder_id, .uids = src_uids };

	return batch_exec(st, "DELETE FROM messages WHERE folder_id = ?1 AND src_uid = ?2", n,
			  bind_uid, &c, "delete ledger rows", err);
}

static int sq_day_bytes_add(void *h, const char *key, int64_t day, int64_t delta,
			    uint64_t *total_r, struct tr_error *err)
{
	struct sq *st = h;
	sqlite3_stmt *q = NULL;
	int r = -1;

	pthread_mutex_lock(&st->lock);
	/* made once per handle, not once per batch */
	if (!st->day_table) {
		if (sqlite3_exec(st->db, "CREATE TABLE IF NOT EXISTS day_bytes (key TEXT NOT NULL, "
				 "day INTEGER NOT NULL, bytes INTEGER NOT NULL, PRIMARY KEY (key, "
				 "day))", NULL, NULL, NULL) != SQLITE_OK) {
			db_fail(st, err, "count the day's bytes");
			goto out;
		}
		st->day_table = true;
	}
	if (sqlite3_prepare_v2(st->db, "INSERT INTO day_bytes (key, day, bytes) VALUES "
			       "(?1, ?2, max(?3, 0)) ON CONFLICT (key, day) DO UPDATE SET "
			       "bytes = max(bytes + ?3, 0) RETURNING bytes", -1, &q,
			       NULL) != SQLITE_OK) {
		db_fail(st, err, "count the day's bytes");
		goto out;
	}
	sqlite3_bind_text(q, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 2, day);
	sqlite3_bind_int64(q, 3, delta);
	if (sqlite3_step(q) != SQLITE_ROW) {
		db_fail(st, err, "count the day's bytes");
		goto out;
	}
	*total_r = (uint64_t)sqlite3_column_int64(q, 0);
	r = 0;
out:
	sqlite3_finalize(q);
	pthread_mutex_unlock(&st->lock);
	return r;
}

const struct state_backend state_backend_sqlite = {
	.name = "sqlite",
	.where = "DIR",
	.durable = true,
	.open = sq_open,
	.close = sq_close,
	.path = sq_path,
	.account = sq_account,
	.account_lock = sq_account_lock,
	.account_unlock = sq_account_unlock,
	.account_get_status = sq_account_get_status,
	.account_set_status = sq_account_set_status,
	.folder_load = sq_folder_load,
	.folder_saved_dst = sq_folder_saved_dst,
	.folder_reset = sq_folder_reset,
	.folder_save = sq_folder_save,
	.msgs_load = sq_msgs_load,
	.msgs_put = sq_msgs_put,
	.msgs_delete = sq_msgs_delete,
	.day_bytes_add = sq_day_bytes_add,
};
