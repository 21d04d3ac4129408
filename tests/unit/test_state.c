/* Units of the state: its schema versions (a state reopens, one from a newer
 * trasloco is refused untouched, an older one is upgraded keeping its rows)
 * and its private directories (privdir: no symbolic links, no directory of
 * another user or writable by others; the per-account log files likewise);
 * then the interface itself, the suite of state_contract.c run against
 * sqlite and mem (test_state_pg runs it against postgresql), and how a
 * location picks a backend. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <pthread.h>
#include <sqlite3.h>

#include "jobconf.h"
#include "log.h"
#include "privdir.h"
#include "state.h"
#include "state_contract.h"
#include "text.h"

static char tmp[256];

static int setup(void **state)
{
	const char *t = getenv("TMPDIR");

	(void)state;
	snprintf(tmp, sizeof(tmp), "%s/test_state.XXXXXX", t != NULL && *t ? t : "/tmp");
	return mkdtemp(tmp) == NULL ? -1 : 0;
}

static int teardown(void **state)
{
	char cmd[300];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
	return system(cmd) == 0 ? 0 : -1;
}

static const char *at(const char *name)
{
	static char buf[4][512];
	static int k;

	k = (k + 1) % 4;
	snprintf(buf[k], sizeof(buf[k]), "%s/%s", tmp, name);
	return buf[k];
}

/* Raw SQL on a state database, as another program (or an older trasloco). */
static void raw(const char *db, const char *sql)
{
	sqlite3 *h;
	char *msg = NULL;

	assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
	if (sqlite3_exec(h, sql, NULL, NULL, &msg) != SQLITE_OK)
		fail_msg("%s: %s", sql, msg);
	sqlite3_close(h);
}

static int64_t raw_int(const char *db, const char *sql)
{
	sqlite3 *h;
	sqlite3_stmt *q;
	int64_t v = -1;

	assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(h, sql, -1, &q, NULL), SQLITE_OK);
	if (sqlite3_step(q) == SQLITE_ROW)
		v = sqlite3_column_int64(q, 0);
	sqlite3_finalize(q);
	sqlite3_close(h);
	return v;
}

static int64_t schema_of(const char *db)
{
	return raw_int(db, "SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'schema'");
}

static void put_rows(struct state *st, int64_t *acct_r, int64_t *folder_r)
{
	struct tr_error err;
	struct state_folder f;
	struct state_msg rows[2];

	assert_int_equal(state_account(st, "u@src:993 -> u@dst:993", acct_r, &err), 0);
	assert_int_equal(state_folder_load(st, *acct_r, "INBOX", "INBOX", &f, &err), 0);
	f.src_uidvalidity = 77;
	f.dst_uidvalidity = 88;
	f.src_uidnext = 3;
	assert_int_equal(state_folder_save(st, &f, &err), 0);
	memset(rows, 0, sizeof(rows));
	rows[0].src_uid = 1;
	rows[0].dst_uid = 10;
	rows[0].state = MSG_DONE;
	rows[0].flags = (char *)"\\Seen";
	rows[1].src_uid = 2;
	rows[1].state = MSG_PENDING;
	rows[1].dst_uidnext = 11;
	assert_int_equal(state_msgs_put(st, f.id, rows, 2, &err), 0);
	*folder_r = f.id;
}

static void test_new_and_reopen(void **state)
{
	struct tr_error err;
	struct state *st;
	struct state_folder f;
	struct state_msg *rows;
	struct stat sb;
	int64_t acct, acct2, folder;
	size_t n;

	(void)state;
	assert_int_equal(state_open(at("a/b/state"), &st, &err), 0);
	put_rows(st, &acct, &folder);
	state_close(st);
	assert_int_equal(stat(at("a/b/state"), &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0700);
	assert_int_equal(stat(at("a/b/state/state.db"), &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	assert_int_equal(schema_of(at("a/b/state/state.db")), state_schema_version());

	assert_int_equal(state_open(at("a/b/state/"), &st, &err), 0);
	assert_int_equal(state_account(st, "u@src:993 -> u@dst:993", &acct2, &err), 0);
	assert_int_equal(acct2, acct);
	assert_int_equal(state_folder_load(st, acct, "INBOX", "INBOX", &f, &err), 0);
	assert_int_equal(f.id, folder);
	assert_int_equal(f.src_uidvalidity, 77);
	assert_int_equal(f.unsettled, 1);
	assert_int_equal(state_msgs_load(st, folder, &rows, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_int_equal(rows[0].dst_uid, 10);
	assert_string_equal(rows[0].flags, "\\Seen");
	assert_int_equal(rows[1].state, MSG_PENDING);
	state_msgs_free(rows, n);
	state_close(st);
	assert_int_equal(schema_of(at("a/b/state/state.db")), state_schema_version());
}

static void test_newer_refused(void **state)
{
	struct tr_error err;
	struct state *st;
	int64_t acct, folder;
	char sql[128], want[128];
	const char *db = at("s/state.db");

	(void)state;
	assert_int_equal(state_open(at("s"), &st, &err), 0);
	put_rows(st, &acct, &folder);
	state_close(st);
	snprintf(sql, sizeof(sql), "UPDATE meta SET value = '%d' WHERE key = 'schema'",
		 state_schema_version() + 1);
	raw(db, sql);

	assert_int_equal(state_open(at("s"), &st, &err), -1);
	assert_null(st);
	assert_int_equal(err.kind, TR_ERR_LOCAL);
	snprintf(want, sizeof(want), "schema version %d", state_schema_version() + 1);
	assert_non_null(strstr(err.msg, want));
	snprintf(want, sizeof(want), "knows versions up to %d", state_schema_version());
	assert_non_null(strstr(err.msg, want));
	assert_non_null(strstr(err.msg, "upgrade trasloco"));
	assert_non_null(strstr(err.msg, db));
	/* untouched */
	assert_int_equal(schema_of(db), state_schema_version() + 1);
	assert_int_equal(raw_int(db, "SELECT count(*) FROM messages"), 2);

	raw(db, "UPDATE meta SET value = 'x2' WHERE key = 'schema'");
	assert_int_equal(state_open(at("s"), &st, &err), -1);
	assert_non_null(strstr(err.msg, "unreadable schema version"));
}

/* Version 1 exactly as trasloco wrote it before versions were checked
 * (with or without the index a later version-1 release added). */
static const char v1_schema[] =
	"PRAGMA foreign_keys = ON;"
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
	"  PRIMARY KEY (folder_id, src_uid)) WITHOUT ROWID;"
	"INSERT OR IGNORE INTO meta (key, value) VALUES ('schema', '1');"
	"INSERT INTO accounts (id, key, status, updated) VALUES (5, 'old@src:993 -> old@dst:993', "
	"  'partial', 1700000000);"
	"INSERT INTO folders (id, account_id, src_name, dst_name, src_uidvalidity, dst_uidvalidity,"
	"  src_uidnext, src_modseq, src_messages) VALUES (9, 5, 'Sent', 'Sent', 111, 222, 4, 0, 3);"
	"INSERT INTO folders (id, account_id, src_name, dst_name, src_uidvalidity, dst_uidvalidity,"
	"  src_uidnext, src_modseq, src_messages) VALUES"
	"  (10, 5, '%25percent', 'a%2Fb/c', 7, 8, 3, 0, 2),"
	"  (11, 5, 'Caf%E9', 'Caf%E9', 7, 8, 3, 0, 2);"
	"INSERT INTO messages (folder_id, src_uid, dst_uid, state, fp, dst_uidnext, flags, error)"
	"  VALUES (10, 1, 1, 1, NULL, 0, '', NULL), (10, 2, 2, 1, NULL, 0, '', NULL);"
	"INSERT INTO messages (folder_id, src_uid, dst_uid, state, fp, dst_uidnext, flags, error)"
	"  VALUES (9, 1, 1, 1, NULL, 0, '\\Seen', NULL),"
	"         (9, 2, 0, 0, NULL, 2, '', NULL),"
	"         (9, 3, 0, 2, NULL, 0, '', 'NO [OVERQUOTA] full');";

static void check_v1_upgraded(const char *dir)
{
	struct tr_error err;
	struct state *st;
	struct state_folder f;
	struct state_msg *rows;
	char status[32], db[512];
	int64_t acct;
	size_t n;

	snprintf(db, sizeof(db), "%s/state.db", dir);
	assert_int_equal(state_open(dir, &st, &err), 0);
	assert_int_equal(schema_of(db), state_schema_version());
	assert_int_equal(raw_int(db, "SELECT count(*) FROM sqlite_master WHERE type = 'index' "
				 "AND name = 'messages_unsettled'"), 1);
	assert_int_equal(state_account(st, "old@src:993 -> old@dst:993", &acct, &err), 0);
	assert_int_equal(acct, 5);
	assert_int_equal(state_account_get_status(st, acct, status, sizeof(status), &err), 0);
	assert_string_equal(status, "partial");
	assert_int_equal(state_folder_load(st, acct, "Sent", "Sent", &f, &err), 0);
	assert_int_equal(f.id, 9);
	assert_int_equal(f.src_uidvalidity, 111);
	assert_int_equal(f.dst_uidvalidity, 222);
	assert_int_equal(f.src_uidnext, 4);
	assert_int_equal(f.src_messages, 3);
	assert_int_equal(f.unsettled, 2);
	assert_int_equal(state_msgs_load(st, f.id, &rows, &n, &err), 0);
	assert_int_equal(n, 3);
	assert_int_equal(rows[0].state, MSG_DONE);
	assert_string_equal(rows[0].flags, "\\Seen");
	assert_int_equal(rows[1].state, MSG_PENDING);
	assert_int_equal(rows[1].dst_uidnext, 2);
	assert_int_equal(rows[2].state, MSG_FAILED);
	assert_string_equal(rows[2].error, "NO [OVERQUOTA] full");
	state_msgs_free(rows, n);
	/* 2 -> 3: folder names as users see them, the ledger kept with them */
	assert_int_equal(state_folder_load(st, acct, "%percent", "a\\/b/c", &f, &err), 0);
	assert_int_equal(f.id, 10);
	assert_int_equal(f.src_uidnext, 3);
	assert_int_equal(f.unsettled, 0);
	assert_int_equal(state_folder_load(st, acct, "Caf\\xE9", "Caf\\xE9", &f, &err), 0);
	assert_int_equal(f.id, 11);
	assert_int_equal(f.src_uidvalidity, 7);
	state_close(st);
	/* and again: nothing left to do */
	assert_int_equal(state_open(dir, &st, &err), 0);
	state_close(st);
	assert_int_equal(raw_int(db, "SELECT count(*) FROM messages"), 5);
}

static void test_v1_upgraded(void **state)
{
	char sql[sizeof(v1_schema) + 128];

	(void)state;
	assert_int_equal(mkdir(at("v1"), 0700), 0);
	raw(at("v1/state.db"), v1_schema);
	check_v1_upgraded(at("v1"));

	/* version 1 with the index (what the last unversioned releases wrote) */
	assert_int_equal(mkdir(at("v1i"), 0700), 0);
	snprintf(sql, sizeof(sql), "%sCREATE INDEX IF NOT EXISTS messages_unsettled ON messages "
		 "(folder_id) WHERE state != 1;", v1_schema);
	raw(at("v1i/state.db"), sql);
	check_v1_upgraded(at("v1i"));
}

static void test_not_a_state(void **state)
{
	struct tr_error err;
	struct state *st;

	(void)state;
	/* tables of something else: refused, not mixed with ours */
	assert_int_equal(mkdir(at("other"), 0700), 0);
	raw(at("other/state.db"), "CREATE TABLE foo (x);");
	assert_int_equal(state_open(at("other"), &st, &err), -1);
	assert_non_null(strstr(err.msg, "not a trasloco state database"));
	/* a version-1 creation cut short before it wrote its version: completed */
	assert_int_equal(mkdir(at("cut"), 0700), 0);
	raw(at("cut/state.db"), "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
	    "CREATE TABLE accounts (id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE,"
	    " status TEXT NOT NULL DEFAULT 'new', error TEXT, updated INTEGER NOT NULL DEFAULT 0);");
	assert_int_equal(state_open(at("cut"), &st, &err), 0);
	state_close(st);
	assert_int_equal(schema_of(at("cut/state.db")), state_schema_version());
}

static void expect_refused(const char *dir, const char *why)
{
	struct tr_error err;
	struct state *st = NULL;

	memset(&err, 0, sizeof(err));
	assert_int_equal(state_open(dir, &st, &err), -1);
	assert_null(st);
	assert_int_equal(err.kind, TR_ERR_LOCAL);
	if (strstr(err.msg, why) == NULL)
		fail_msg("state_open(%s): \"%s\" lacks \"%s\"", dir, err.msg, why);
}

static void test_dir_checks(void **state)
{
	struct tr_error err;
	struct state *st;
	struct state_lock *lock;
	struct stat sb;
	int64_t acct;
	int fd;

	(void)state;
	/* a good private directory, reached through a symbolic link */
	assert_int_equal(mkdir(at("real"), 0700), 0);
	assert_int_equal(symlink(at("real"), at("link")), 0);
	expect_refused(at("link"), "is a symbolic link");
	expect_refused(at("link/"), "is a symbolic link");
	assert_int_equal(access(at("real/state.db"), F_OK), -1);

	/* writable by the group, by others: refused and left as it is */
	assert_int_equal(mkdir(at("grp"), 0700), 0);
	assert_int_equal(chmod(at("grp"), 0770), 0);
	expect_refused(at("grp"), "writable by its group (mode 0770)");
	assert_int_equal(mkdir(at("oth"), 0700), 0);
	assert_int_equal(chmod(at("oth"), 01777), 0);
	expect_refused(at("oth"), "writable by its group and by others");
	assert_int_equal(stat(at("grp"), &sb), 0);
	assert_int_equal(sb.st_mode & 07777, 0770);
	assert_int_equal(access(at("grp/state.db"), F_OK), -1);
	/* readable is fine: the files in it are 0600 */
	assert_int_equal(mkdir(at("rd"), 0755), 0);
	assert_int_equal(chmod(at("rd"), 0755), 0);
	assert_int_equal(state_open(at("rd"), &st, &err), 0);
	state_close(st);

	/* state.db a symbolic link (to a file we may write), a FIFO, a directory */
	assert_int_equal(mkdir(at("dbl"), 0700), 0);
	fd = open(at("victim"), O_WRONLY | O_CREAT, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "keep", 4), 4);
	close(fd);
	assert_int_equal(symlink(at("victim"), at("dbl/state.db")), 0);
	expect_refused(at("dbl"), "state.db is a symbolic link");
	assert_int_equal(stat(at("victim"), &sb), 0);
	assert_int_equal(sb.st_size, 4);
	assert_int_equal(mkdir(at("fifo"), 0700), 0);
	assert_int_equal(mkfifo(at("fifo/state.db"), 0600), 0);
	expect_refused(at("fifo"), "state.db is not a regular file");

	/* a state.db others may read (made by hand): made private */
	assert_int_equal(mkdir(at("open"), 0700), 0);
	fd = open(at("open/state.db"), O_WRONLY | O_CREAT, 0644);
	assert_true(fd >= 0);
	assert_int_equal(fchmod(fd, 0644), 0);
	close(fd);
	assert_int_equal(state_open(at("open"), &st, &err), 0);
	assert_int_equal(state_account(st, "k", &acct, &err), 0);
	lock = state_account_lock(st, acct, &err);
	assert_non_null(lock);
	state_account_unlock(lock);
	state_close(st);
	assert_int_equal(stat(at("open/state.db"), &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	assert_int_equal(stat(at("open/locks"), &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0700);

	/* another user's directory or file (needs root to set up) */
	if (geteuid() != 0)
		return;
	assert_int_equal(mkdir(at("nobody"), 0700), 0);
	assert_int_equal(chown(at("nobody"), 65534, 65534), 0);
	expect_refused(at("nobody"), "belongs to uid 65534, not to the user running trasloco");
	assert_int_equal(mkdir(at("nbdb"), 0700), 0);
	fd = open(at("nbdb/state.db"), O_WRONLY | O_CREAT, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(chown(at("nbdb/state.db"), 65534, 65534), 0);
	expect_refused(at("nbdb"), "state.db belongs to uid 65534");
}

static void test_log_dir_and_files(void **state)
{
	struct tr_error err;
	struct stat sb;
	int fd;

	(void)state;
	/* the log directory: the same rules */
	fd = privdir_open(at("logs/x"), "log directory", &err);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(stat(at("logs/x"), &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0700);
	assert_int_equal(symlink(at("logs/x"), at("loglink")), 0);
	assert_int_equal(privdir_open(at("loglink"), "log directory", &err), -1);
	assert_non_null(strstr(err.msg, "the log directory"));
	assert_non_null(strstr(err.msg, "is a symbolic link"));

	/* an account's log file replaced by a link: not followed */
	fd = open(at("target"), O_WRONLY | O_CREAT, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(symlink(at("target"), at("logs/x/a.log")), 0);
	errno = 0;
	assert_int_equal(log_attach("a", at("logs/x/a.log")), -1);
	assert_int_equal(errno, ELOOP);
	log_msg(LOG_ERROR, "a", "must not reach the target");
	assert_int_equal(stat(at("target"), &sb), 0);
	assert_int_equal(sb.st_size, 0);
	/* a FIFO: refused at once, no hang */
	assert_int_equal(mkfifo(at("logs/x/f.log"), 0600), 0);
	assert_int_equal(log_attach("f", at("logs/x/f.log")), -1);
	/* a regular file: fine */
	assert_int_equal(log_attach("b", at("logs/x/b.log")), 0);
	log_msg(LOG_ERROR, "b", "a line");
	log_detach("b");
	assert_int_equal(stat(at("logs/x/b.log"), &sb), 0);
	assert_true(sb.st_size > 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
}

/* ---- the interface, against every backend (state_contract.c) -------- */

static struct state_case sqlite_case = { .backend = "sqlite" };
static struct state_case mem_case = { .backend = "mem" };

static int setup_if(void **state)
{
	struct state_case *c = *state;
	static unsigned int seq;

	if (setup(state) < 0)
		return -1;
	*state = c;
	if (strcmp(c->backend, "mem") == 0)
		snprintf(c->where, sizeof(c->where), "test-%ld-%u", (long)getpid(), ++seq);
	else
		snprintf(c->where, sizeof(c->where), "%s/st", tmp);
	return 0;
}

static int teardown_if(void **state)
{
	struct state_case *c = *state;

	if (strcmp(c->backend, "mem") == 0)
		state_mem_discard(c->where);
	return teardown(state);
}

/* ---- picking a backend ------------------------------------------------ */

static void expect_usage(const char *location, const char *want)
{
	struct tr_error err;
	struct state *st = (struct state *)&err;

	memset(&err, 0, sizeof(err));
	assert_int_equal(state_open(location, &st, &err), -1);
	assert_null(st);
	assert_int_equal(err.kind, TR_ERR_USAGE);
	if (strstr(err.msg, want) == NULL)
		fail_msg("state_open(%s): \"%s\" lacks \"%s\"", location, err.msg, want);
}

static void test_backend_by_name(void **state)
{
	struct tr_error err;
	struct state *st;
	char cwd[4096], *dst;
	struct stat sb;

	(void)state;
	/* an unknown backend: refused, naming it and the known ones */
	expect_usage("mysql://trasloco@db.example/state", "\"mysql\"");
	expect_usage("mysql://trasloco@db.example/state", "sqlite (sqlite:DIR), postgresql "
		     "(postgresql://USER@HOST:PORT/DB)");
	expect_usage("mysql://trasloco@db.example/state", "a plain directory means sqlite");
	/* a DSN is PostgreSQL's, whole ("postgres://" too): nothing listens on
	 * port 1, so it is out of reach, for now, and says so */
	memset(&err, 0, sizeof(err));
	assert_int_equal(state_open("postgresql://nobody:s3cret@127.0.0.1:1/x", &st, &err), -1);
	assert_null(st);
	assert_int_equal(err.kind, TR_ERR_TEMP);
	assert_non_null(strstr(err.msg, "the database is unreachable"));
	assert_non_null(strstr(err.msg, "PostgreSQL"));
	assert_null(strstr(err.msg, "s3cret"));
	memset(&err, 0, sizeof(err));
	assert_int_equal(state_open("postgres://nobody@127.0.0.1:1/x", &st, &err), -1);
	assert_int_equal(err.kind, TR_ERR_TEMP);
	assert_non_null(strstr(err.msg, "PostgreSQL"));
	memset(&err, 0, sizeof(err));
	assert_int_equal(state_open_backend("oracle", "x", &st, &err), -1);
	assert_null(st);
	assert_int_equal(err.kind, TR_ERR_USAGE);
	assert_non_null(strstr(err.msg, "unknown state backend \"oracle\""));
	assert_non_null(strstr(err.msg, "sqlite (sqlite:DIR)"));
	assert_non_null(strstr(err.msg, "mem (mem:NAME)"));
	/* mem keeps nothing past the process: no location names it */
	expect_usage("mem://x", "the known ones are sqlite (sqlite:DIR), postgresql "
		     "(postgresql://USER@HOST:PORT/DB);");
	/* a backend without its where */
	expect_usage("sqlite:", "needs a DIR");
	assert_int_equal(state_open_backend("mem", "", &st, &err), -1);
	assert_int_equal(err.kind, TR_ERR_USAGE);
	assert_non_null(strstr(err.msg, "needs a NAME"));
	expect_usage("", "no state location");

	/* a plain directory, whatever its name, is the SQLite state in it */
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(chdir(tmp), 0);
	assert_int_equal(state_open("old:dir", &st, &err), 0);
	assert_string_equal(state_backend_name(st), "sqlite");
	assert_string_equal(state_path(st), "old:dir/state.db");
	state_close(st);
	assert_int_equal(stat("old:dir/state.db", &sb), 0);
	assert_int_equal(state_open("sqlite:named", &st, &err), 0);
	assert_string_equal(state_path(st), "named/state.db");
	state_close(st);
	assert_int_equal(stat("named/state.db", &sb), 0);
	assert_int_equal(state_open_backend("sqlite", "apart", &st, &err), 0);
	state_close(st);
	assert_int_equal(stat("apart/state.db", &sb), 0);
	assert_int_equal(state_open("mem:dir", &st, &err), 0);
	assert_string_equal(state_backend_name(st), "sqlite");
	state_close(st);
	assert_int_equal(stat("mem:dir/state.db", &sb), 0);
	assert_int_equal(chdir(cwd), 0);

	/* mem: a name, no file anywhere */
	assert_int_equal(state_open_backend("mem", "by-name", &st, &err), 0);
	assert_string_equal(state_backend_name(st), "mem");
	assert_string_equal(state_path(st), "mem:by-name");
	assert_int_equal(state_folder_saved_dst(st, 1, "INBOX", &dst, &err), 0);
	state_close(st);
	state_mem_discard("by-name");
}

/* The state setting (jobconf): a PostgreSQL DSN is taken as it is from
 * anywhere but a spool job, never as a path, and never with a password. */
static void test_state_setting(void **state)
{
	static const struct jobconf_origin job = { .from = JOBCONF_JOB_FILE, .file = "a.job",
						   .line = 3, .dir = "/jobs" };
	static const struct jobconf_origin spool = { .from = JOBCONF_SPOOL_JOB, .file = "s.job",
						     .dir = "/spool", .dir_real = "/spool" };
	static const char *const secret[] = {
		"postgresql://trasloco:s3cret@db.internal/migrations",
		"postgres://trasloco@db.internal/migrations?password=s3cret",
	};
	struct job_config cfg;
	struct tr_error err;
	size_t i;

	(void)state;
	jobconf_init(&cfg, JOB_RUN);
	assert_int_equal(jobconf_set(&cfg, "state", "postgresql://trasloco@db.internal:5433/m",
				     NULL, &err), 0);
	assert_string_equal(cfg.state_dir, "postgresql://trasloco@db.internal:5433/m");
	/* a job file's relative paths are from its directory; a DSN is no path */
	assert_int_equal(jobconf_set(&cfg, "state", "postgres://trasloco@db/m?sslmode=require",
				     &job, &err), 0);
	assert_string_equal(cfg.state_dir, "postgres://trasloco@db/m?sslmode=require");
	assert_int_equal(jobconf_set(&cfg, "state", "st", &job, &err), 0);
	assert_string_equal(cfg.state_dir, "/jobs/st");
	for (i = 0; i < sizeof(secret) / sizeof(secret[0]); i++) {
		memset(&err, 0, sizeof(err));
		assert_int_equal(jobconf_set(&cfg, "state", secret[i], NULL, &err), -1);
		assert_int_equal(err.kind, TR_ERR_USAGE);
		assert_non_null(strstr(err.msg, "--state"));
		assert_non_null(strstr(err.msg, "PGPASSFILE"));
		assert_null(strstr(err.msg, "s3cret"));
		assert_int_equal(jobconf_set(&cfg, "state", secret[i], &job, &err), -1);
		assert_non_null(strstr(err.msg, "a.job:3: "));
		assert_null(strstr(err.msg, "s3cret"));
	}
	assert_string_equal(cfg.state_dir, "/jobs/st");
	/* a spool job names no database */
	assert_int_equal(jobconf_set(&cfg, "state", "postgresql://trasloco@db/m", &spool, &err),
			 -1);
	assert_int_equal(err.kind, TR_ERR_USAGE);
	assert_non_null(strstr(err.msg, "the operator's"));
	jobconf_free(&cfg);
}

/* mem: the data outlives its handles until discarded, also while a handle
 * is open (the handle keeps the old data, a new open starts afresh). */
static void test_mem_discard(void **state)
{
	struct tr_error err;
	struct state *st, *old;
	struct state_folder f;
	int64_t a, b;
	char *dst;

	(void)state;
	assert_int_equal(state_open_backend("mem", "d", &st, &err), 0);
	assert_int_equal(state_account(st, "a", &a, &err), 0);
	assert_int_equal(state_folder_load(st, a, "INBOX", "X", &f, &err), 0);
	state_close(st);
	assert_int_equal(state_open_backend("mem", "d", &old, &err), 0);
	assert_int_equal(state_folder_saved_dst(old, a, "INBOX", &dst, &err), 1);
	assert_string_equal(dst, "X");
	free(dst);
	state_mem_discard("d");
	state_mem_discard("never-made");
	assert_int_equal(state_folder_saved_dst(old, a, "INBOX", &dst, &err), 1);
	free(dst);
	assert_int_equal(state_open_backend("mem", "d", &st, &err), 0);
	assert_int_equal(state_folder_saved_dst(st, a, "INBOX", &dst, &err), 0);
	assert_int_equal(state_account(st, "b", &b, &err), 0);
	state_close(st);
	state_close(old);
	state_mem_discard("d");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_new_and_reopen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_newer_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_v1_upgraded, setup, teardown),
		cmocka_unit_test_setup_teardown(test_not_a_state, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dir_checks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_log_dir_and_files, setup, teardown),
		cmocka_unit_test_setup_teardown(test_backend_by_name, setup, teardown),
		cmocka_unit_test(test_mem_discard),
		cmocka_unit_test(test_state_setting),
		STATE_CONTRACT("sqlite", setup_if, teardown_if, &sqlite_case),
		STATE_CONTRACT("mem", setup_if, teardown_if, &mem_case),
	};

	log_set_stream(stderr);
	return cmocka_run_group_tests_name("state", tests, NULL, NULL);
}
