/* bench_state: what synchronous=FULL costs the state's write pattern.
 *
 * usage: bench_state [DIR [MESSAGES]]     (defaults: $TMPDIR or /tmp, 20000;
 *                                          at most 1,000 batches per size)
 *
 * A migration writes the ledger per APPEND batch: one transaction puts the
 * batch's rows as pending before the APPEND, one marks them done after it
 * (sync.c).  This replays that pattern for MESSAGES messages in batches of
 * 1, 10 and 100 (the default --batch-count; big messages make smaller
 * batches) on a fresh state database in DIR, once with synchronous=NORMAL
 * (what trasloco used) and once with FULL (what it uses), through the same
 * SQL on one connection, and prints the wall time, the time per transaction
 * and the ratio; then the same FULL pattern through the state module itself
 * (state_msgs_put), to show the replay is what trasloco does.  DIR must be
 * on the disk the state lives on: on tmpfs an fsync costs nothing.  A
 * benchmark, not a test: no threshold.
 *
 * usage: bench_state --pg DSN [MESSAGES [DIR]]
 *
 * The same pattern through the state module against SQLite (in DIR) and
 * against PostgreSQL (DSN: a database `trasloco queue init` made, or an
 * empty one, whose tables this makes; each run on an account of its own),
 * one line per batch size: ledger transactions and rows per second of
 * each, and the ratio.  Without locks (no fence): the engine's writes
 * under a lock add one lease-row lookup to the same statement. */
#include "config.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "pg.h"
#include "pg_schema.h"
#include "state.h"

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, const char *msg)
{
	fprintf(stderr, "bench_state: %s: %s\n", what, msg);
	exit(1);
}

static void exec(sqlite3 *db, const char *sql)
{
	char *msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
		die(sql, msg != NULL ? msg : "error");
}

/* A fresh state made by trasloco's own code; returns the folder's id. */
static int64_t fresh_state(const char *dir)
{
	struct tr_error err;
	struct state *st;
	struct state_folder f;
	int64_t acct;
	char cmd[4200];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		die("rm", dir);
	if (state_open(dir, &st, &err) < 0 ||
	    state_account(st, "bench@src:993 -> bench@dst:993", &acct, &err) < 0 ||
	    state_folder_load(st, acct, "INBOX", "INBOX", &f, &err) < 0)
		die("state", err.msg);
	state_close(st);
	return f.id;
}

/* One row as sync.c's fill_row makes it (fingerprint, flags, UIDNEXT). */
static void bind_row(sqlite3_stmt *q, int64_t folder, uint32_t uid, int state)
{
	char fp[65];

	snprintf(fp, sizeof(fp), "%064x", uid);
	sqlite3_bind_int64(q, 1, folder);
	sqlite3_bind_int64(q, 2, uid);
	sqlite3_bind_int64(q, 3, state == 1 ? uid : 0);
	sqlite3_bind_int(q, 4, state);
	sqlite3_bind_text(q, 5, fp, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(q, 6, 1000);
	sqlite3_bind_text(q, 7, "\\Seen", -1, SQLITE_STATIC);
}

static double replay(const char *dir, const char *sync, size_t n, size_t batch, size_t *txns)
{
	char path[4200], pragma[64];
	int64_t folder = fresh_state(dir);
	sqlite3_stmt *q;
	sqlite3 *db;
	size_t i, j;
	double t0;

	snprintf(path, sizeof(path), "%s/state.db", dir);
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK)
		die(path, sqlite3_errmsg(db));
	snprintf(pragma, sizeof(pragma), "PRAGMA synchronous = %s;", sync);
	exec(db, "PRAGMA journal_mode = WAL;");
	exec(db, pragma);
	exec(db, "PRAGMA foreign_keys = ON;");
	*txns = 0;
	t0 = now_s();
	for (i = 0; i < n; i += batch) {
		size_t m = n - i < batch ? n - i : batch;
		int pass;

		for (pass = 0; pass < 2; pass++) {   /* pending, then done */
			exec(db, "BEGIN IMMEDIATE");
			if (sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO messages (folder_id, "
					       "src_uid, dst_uid, state, fp, dst_uidnext, flags, error) "
					       "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)", -1, &q,
					       NULL) != SQLITE_OK)
				die("prepare", sqlite3_errmsg(db));
			for (j = 0; j < m; j++) {
				sqlite3_reset(q);
				sqlite3_clear_bindings(q);
				bind_row(q, folder, (uint32_t)(i + j + 1), pass);
				if (sqlite3_step(q) != SQLITE_DONE)
					die("insert", sqlite3_errmsg(db));
			}
			sqlite3_finalize(q);
			exec(db, "COMMIT");
			(*txns)++;
		}
	}
	t0 = now_s() - t0;
	sqlite3_close(db);
	return t0;
}

/* The pattern through state_msgs_put into folder of the state at location. */
static double through_location(const char *location, int64_t folder, size_t n, size_t batch,
			       size_t *txns)
{
	struct state_msg *rows = calloc(batch, sizeof(*rows));
	struct tr_error err;
	struct state *st;
	size_t i, j;
	double t0;

	if (rows == NULL || state_open(location, &st, &err) < 0)
		die("state", rows == NULL ? "out of memory" : err.msg);
	*txns = 0;
	t0 = now_s();
	for (i = 0; i < n; i += batch) {
		size_t m = n - i < batch ? n - i : batch;

		for (j = 0; j < m; j++) {
			memset(&rows[j], 0, sizeof(rows[j]));
			rows[j].src_uid = (uint32_t)(i + j + 1);
			rows[j].state = MSG_PENDING;
			rows[j].has_fp = true;
			memset(rows[j].fp, (int)(i + j), FP_LEN);
			rows[j].dst_uidnext = 1000;
			rows[j].flags = (char *)"\\Seen";
		}
		if (state_msgs_put(st, folder, rows, m, &err) < 0)
			die("put", err.msg);
		for (j = 0; j < m; j++) {
			rows[j].state = MSG_DONE;
			rows[j].dst_uid = rows[j].src_uid;
		}
		if (state_msgs_put(st, folder, rows, m, &err) < 0)
			die("put", err.msg);
		*txns += 2;
	}
	t0 = now_s() - t0;
	state_close(st);
	free(rows);
	return t0;
}

static double through_state(const char *dir, size_t n, size_t batch, size_t *txns)
{
	return through_location(dir, fresh_state(dir), n, batch, txns);
}

/* A folder of an account of its own in the PostgreSQL state at dsn. */
static int64_t fresh_pg_folder(const char *dsn, size_t batch)
{
	static unsigned int seq;
	struct tr_error err;
	struct state *st;
	struct state_folder f;
	int64_t acct;
	char key[128];

	snprintf(key, sizeof(key), "bench-%ld-%zu-%u@src:993 -> bench@dst:993", (long)getpid(),
		 batch, ++seq);
	if (state_open(dsn, &st, &err) < 0 || state_account(st, key, &acct, &err) < 0 ||
	    state_folder_load(st, acct, "INBOX", "INBOX", &f, &err) < 0)
		die("postgresql state", err.msg);
	state_close(st);
	return f.id;
}

/* --pg DSN [MESSAGES [DIR]]: SQLite against PostgreSQL, through the module. */
static int compare_pg(const char *dsn, size_t n, const char *base)
{
	static const size_t batches[] = { 1, 10, 100 };
	struct tr_error err;
	struct pg *pg;
	char dir[4096], cmd[4200];
	int from;
	size_t b;

	if (pg_connect(dsn, &pg, &err) < 0 || pg_schema_init(pg, &from, &err) < 0)
		die("postgresql", err.msg);
	printf("ledger writes through the state module: 2 transactions per batch (pending, done);"
	       " sqlite in %s, %s\n", base, pg_where(pg));
	pg_close(pg);
	snprintf(dir, sizeof(dir), "%s/bench_state.%ld", base, (long)getpid());
	for (b = 0; b < sizeof(batches) / sizeof(batches[0]); b++) {
		size_t batch = batches[b], ts, tp;
		size_t msgs = n < 1000 * batch ? n : 1000 * batch;
		double sq = through_state(dir, msgs, batch, &ts);
		double pq = through_location(dsn, fresh_pg_folder(dsn, batch), msgs, batch, &tp);

		printf("batch %3zu: %6zu messages %5zu transactions  sqlite %7.3f s (%7.0f tx/s "
		       "%8.0f rows/s)  postgresql %7.3f s (%7.0f tx/s %8.0f rows/s)  "
		       "postgresql/sqlite time %5.2fx\n", batch, msgs, ts, sq, (double)ts / sq,
		       2.0 * (double)msgs / sq, pq, (double)tp / pq, 2.0 * (double)msgs / pq, pq / sq);
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
	const char *base = argc > 1 ? argv[1] : getenv("TMPDIR");
	size_t n = argc > 2 ? strtoul(argv[2], NULL, 10) : 20000;
	static const size_t batches[] = { 1, 10, 100 };
	char dir[4096], cmd[4200];
	size_t b;

	if (argc > 2 && strcmp(argv[1], "--pg") == 0) {
		base = argc > 4 ? argv[4] : getenv("TMPDIR");
		if (base == NULL || *base == '\0')
			base = "/tmp";
		return compare_pg(argv[2], argc > 3 ? strtoul(argv[3], NULL, 10) : 20000, base);
	}
	if (base == NULL || *base == '\0')
		base = "/tmp";
	snprintf(dir, sizeof(dir), "%s/bench_state.%ld", base, (long)getpid());
	printf("state write pattern: 2 transactions per batch (pending, done), in %s\n", dir);
	for (b = 0; b < sizeof(batches) / sizeof(batches[0]); b++) {
		size_t batch = batches[b], tn, tf, ts;
		/* at most 2,000 transactions a line: batches of 1 are slow with FULL */
		size_t msgs = n < 1000 * batch ? n : 1000 * batch;
		/* NORMAL after FULL too: the first run of a mode warms the disk */
		double normal = replay(dir, "NORMAL", msgs, batch, &tn);
		double full = replay(dir, "FULL", msgs, batch, &tf);
		double normal2 = replay(dir, "NORMAL", msgs, batch, &tn);
		double state = through_state(dir, msgs, batch, &ts);

		if (normal2 < normal)
			normal = normal2;
		printf("batch %3zu: %6zu messages %5zu transactions  NORMAL %7.3f s (%6.3f ms each)  "
		       "FULL %7.3f s (%6.3f ms each)  FULL/NORMAL %5.1fx  "
		       "+%.3f ms per transaction  state module (FULL) %7.3f s\n",
		       batch, msgs, tf, normal, normal * 1e3 / (double)tn, full,
		       full * 1e3 / (double)tf, full / normal, (full - normal) * 1e3 / (double)tf,
		       state);
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : 1;
}
