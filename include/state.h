/* state: what trasloco knows between runs, behind one interface.
 *
 * Per account and source folder: the UIDVALIDITY of both folders, how far
 * the source has been scanned (UIDNEXT), HIGHESTMODSEQ, and the UID ledger:
 * for every source message handled, the destination UID it became (from
 * APPENDUID), its fingerprint, the flags last written, and its state:
 *   pending: an APPEND is about to be sent or its reply never came; on the
 *            next run it is settled by looking for its fingerprint on the
 *            destination (found: done; not found: copied again);
 *   done:    on the destination;
 *   failed:  the destination refused it; retried on every run.
 * A pending row is committed before its APPEND is sent, so a crash at any
 * point neither loses nor duplicates a message.
 *
 * Where it is kept is a backend's business (state_backend.h), picked by
 * name:
 *   sqlite      one SQLite database, DIR/state.db, in a private directory
 *               (state_sqlite.c: private files, schema versions and their
 *               upgrades, every commit on disk before it returns);
 *   postgresql  the st_* tables of a PostgreSQL database that `trasloco
 *               queue init` made, shared by many hosts (state_pg.c:
 *               account locks are leases renewed by a heartbeat, taken
 *               over once expired, and every write about a locked account
 *               checks its lease: fencing);
 *   mem         plain memory, for tests: NAME's data outlives its handles
 *               (close and open again is a restart after a crash) until
 *               state_mem_discard(NAME) or the end of the process
 *               (state_mem.c).
 * A location (what --state and job files give) is "DIR" or "sqlite:DIR",
 * or a PostgreSQL DSN "postgresql://USER@HOST:PORT/DB?..." (also
 * "postgres://", or libpq's key=value form "host=... dbname=...", as a
 * queue's location may be), which is libpq's whole, password-free
 * (PGPASSFILE or a service file hold the password; jobconf refuses a DSN
 * with one);
 * another "SCHEME://..." is refused (TR_ERR_USAGE, listing the known
 * ones).  Only a backend that outlives the process is reached through a
 * location: "mem:x" stays a directory, as it always was; tests name mem
 * with state_open_backend.  The state holds logins and folder names,
 * never a password; error texts (servers' replies) are stored cleaned
 * (text.h).
 *
 * Errors are TR_ERR_LOCAL; a backend whose store is reached over the
 * network also returns TR_ERR_TEMP when it cannot reach it (try again
 * later: the store reconnects by itself) and when a write is refused
 * because the account's lease was lost (stop the account).
 *
 * Ownership: state_open returns a handle the caller closes; what a function
 * returns through a pointer argument is the caller's (freed as said there);
 * what the caller passes in stays the caller's.
 *
 * Threading: one handle may be used by every thread of the process at once;
 * the backend makes the calls one at a time (one writer).
 */
#ifndef TRASLOCO_STATE_H
#define TRASLOCO_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "fingerprint.h"

struct state;
struct state_lock;

/* Open (creating if needed) the state at a location (see above).  The
 * caller closes it.  postgresql: refused (TR_ERR_USAGE) when the database
 * lacks trasloco's tables, naming `trasloco queue init`; its account
 * leases last TRASLOCO_LEASE_SECONDS (2..3600, default 30), read here. */
int state_open(const char *location, struct state **st_r, struct tr_error *err);
/* The same with the backend named apart ("sqlite", "postgresql", "mem")
 * and where, in that backend's terms (a directory, a DSN, a name); any
 * backend. */
int state_open_backend(const char *backend, const char *where, struct state **st_r,
		       struct tr_error *err);
/* Close the handle; locks still held through it are released first, as the
 * end of the process would release them (a lock handle is not used after). */
void state_close(struct state *st);
/* Where the state is, for messages ("DIR/state.db", "mem:NAME",
 * "PostgreSQL USER@HOST:PORT/DB": never a password). */
const char *state_path(const struct state *st);
/* The backend's name ("sqlite", "postgresql", "mem"). */
const char *state_backend_name(const struct state *st);
/* The schema version this trasloco writes: every backend brings its store
 * to it on open, and refuses a store of a newer version. */
int state_schema_version(void);

/* The row of an account, made on first use.  key names both ends
 * ("user@src-host:993 -> user@dst-host:993"). */
int state_account(struct state *st, const char *key, int64_t *id_r, struct tr_error *err);
/* Hold the account: a second run migrating the same account with the same
 * state at the same time (an overlapping cron job) would copy the same
 * messages twice.  Returns a handle to pass to state_account_unlock, or NULL
 * (TR_ERR_LOCAL) when another holder has it: another process, or another
 * lock of this one (postgresql: the text names the holder and until when;
 * TR_ERR_TEMP when the database is out of reach); err->code is then
 * "INUSE" (RFC 5530's word), so that a caller may tell a busy account from
 * a failing store. */
struct state_lock *state_account_lock(struct state *st, int64_t account_id,
				      struct tr_error *err);
/* Release and free it (NULL: nothing). */
void state_account_unlock(struct state_lock *lock);
/* Be told when a lock is lost: a backend whose locks are leases
 * (postgresql: renewed by a heartbeat, taken by another holder once
 * expired) calls lost(ctx) once, from its own thread, when it could not
 * renew the lease in time; from then on the backend refuses that account's
 * writes, and the holder must stop its sessions at once (an APPEND still
 * in flight when another holder takes over could be doubled).  Backends
 * without leases never call it.  Set before the work starts; the call may
 * come until state_account_unlock returns. */
void state_lock_watch(struct state_lock *lock, void (*lost)(void *ctx), void *ctx);
/* The status saved by the last run ("new" when none finished), into buf. */
int state_account_get_status(struct state *st, int64_t account_id, char *buf, size_t len,
			     struct tr_error *err);
int state_account_set_status(struct state *st, int64_t account_id, const char *status,
			     const char *error, struct tr_error *err);

struct state_folder {
	int64_t id;
	uint32_t src_uidvalidity;   /* 0: never synced */
	uint32_t dst_uidvalidity;
	uint32_t src_uidnext;       /* every source UID below it has a ledger row */
	uint64_t src_modseq;        /* HIGHESTMODSEQ when src_uidnext was saved */
	uint32_t src_messages;
	uint32_t unsettled;         /* ledger rows pending or failed (read only) */
};

/* Load (or create) the folder of an account.  When the saved destination
 * name differs from dst_name the ledger is about another folder: it is
 * forgotten (as after a UIDVALIDITY change). */
int state_folder_load(struct state *st, int64_t account_id, const char *src_name,
		      const char *dst_name, struct state_folder *f, struct tr_error *err);
/* The destination folder the state last used for a source folder: 1 and
 * *dst_name_r (the caller frees it), 0 when the folder is unknown. */
int state_folder_saved_dst(struct state *st, int64_t account_id, const char *src_name,
			   char **dst_name_r, struct tr_error *err);
/* Forget the ledger and the scan position of a folder. */
int state_folder_reset(struct state *st, struct state_folder *f, struct tr_error *err);
int state_folder_save(struct state *st, const struct state_folder *f, struct tr_error *err);

enum state_msg_state { MSG_PENDING = 0, MSG_DONE = 1, MSG_FAILED = 2 };

struct state_msg {
	uint32_t src_uid;
	uint32_t dst_uid;           /* 0: unknown (no UIDPLUS) or not copied */
	enum state_msg_state state;
	unsigned char fp[FP_LEN];
	bool has_fp;
	uint32_t dst_uidnext;       /* pending: the destination UIDNEXT before the APPEND */
	char *flags;                /* canonical flags written to the destination ("" for
				     * NULL when put; never NULL when loaded) */
	char *error;                /* failed: why (server reply) */
};

/* Every ledger row of a folder, ordered by src_uid, as an array the caller
 * frees with state_msgs_free. */
int state_msgs_load(struct state *st, int64_t folder_id, struct state_msg **rows_r,
		    size_t *n_r, struct tr_error *err);
void state_msgs_free(struct state_msg *rows, size_t n);
/* Insert or replace rows, all or none (the caller keeps ownership). */
int state_msgs_put(struct state *st, int64_t folder_id, const struct state_msg *rows, size_t n,
		   struct tr_error *err);
/* Delete rows, all or none. */
int state_msgs_delete(struct state *st, int64_t folder_id, const uint32_t *src_uids, size_t n,
		      struct tr_error *err);

/* Bytes a server gave or took on one UTC day (throttle.h), counted under
 * key ("src 192.0.2.1:993"): add delta (0 to read; may be negative, the
 * count never goes below 0) and put the new count in *total_r.  One
 * statement, so that processes sharing the state add up. */
int state_day_bytes_add(struct state *st, const char *key, int64_t day, int64_t delta,
			uint64_t *total_r, struct tr_error *err);

/* The schedule of a rate (throttle.h) kept in the state, for processes
 * that share it (a PostgreSQL state: a fleet's workers): the time at
 * which key's server is next free (now when that is past) moves cost_s
 * seconds later, and *wait_r is how long from now it lies (about cost_s
 * when nobody else takes).  One statement on the database's clock.
 * Returns 0, or -1 with err (the database unreachable: TR_ERR_TEMP).
 * state_rate_shared says whether the state keeps such schedules at all
 * (only stores several processes use: not SQLite or memory). */
bool state_rate_shared(const struct state *st);
int state_rate_take(struct state *st, const char *key, double cost_s, double *wait_r,
		    struct tr_error *err);

/* The in-memory backend: forget NAME's data (it goes when its last open
 * handle closes).  Unknown names are ignored. */
void state_mem_discard(const char *name);
/* The in-memory backend, for tests: act as if NAME's hold on account_id
 * had been lost (a lease expired), calling its state_lock_watch watcher
 * once, with NAME's lock held (the watcher must not call the state).  The
 * writes are not refused.  Returns 1 when a watcher was told, else 0. */
int state_mem_lose_lock(const char *name, int64_t account_id);

#endif
