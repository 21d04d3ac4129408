/* state: what trasloco knows between runs, in one SQLite database.
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
 * The database lives in a private directory as a private file (0600): it
 * holds logins and folder names, never a password.  The directory is
 * created 0700; an existing one must be a real directory owned by the user
 * running trasloco and not writable by group or others (privdir.h), and
 * state.db a regular file of that user, else state_open refuses it.
 * Error texts (servers' replies) are stored cleaned (text.h).
 *
 * Every commit reaches the disk before it returns (WAL, synchronous=FULL),
 * so what the ledger says survives a power cut, not just a crash.
 *
 * The schema has a version (meta.schema): state_open upgrades an older
 * database in one transaction, step by step, and refuses one written by a
 * newer trasloco (it would misread it).
 *
 * One connection, shared by all threads of the process behind one lock, so
 * there is exactly one writer.
 */
#ifndef TRASLOCO_STATE_H
#define TRASLOCO_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "fingerprint.h"

struct state;

/* Open (creating if needed) dir/state.db, upgrading its schema.  The caller
 * closes it. */
int state_open(const char *dir, struct state **st_r, struct tr_error *err);
void state_close(struct state *st);
const char *state_path(const struct state *st);
/* The schema version this trasloco writes. */
int state_schema_version(void);

/* The row of an account, made on first use.  key names both ends
 * ("user@src-host:993 -> user@dst-host:993"). */
int state_account(struct state *st, const char *key, int64_t *id_r, struct tr_error *err);
/* Hold the account for this process: a second run migrating the same
 * account with the same state at the same time (an overlapping cron job)
 * would copy the same messages twice.  Returns an fd to pass to
 * state_account_unlock, or -1 (TR_ERR_LOCAL) when another process holds it. */
int state_account_lock(struct state *st, int64_t account_id, struct tr_error *err);
void state_account_unlock(int fd);
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
	char *flags;                /* canonical flags written to the destination */
	char *error;                /* failed: why (server reply) */
};

/* Every ledger row of a folder, ordered by src_uid, as an array the caller
 * frees with state_msgs_free. */
int state_msgs_load(struct state *st, int64_t folder_id, struct state_msg **rows_r,
		    size_t *n_r, struct tr_error *err);
void state_msgs_free(struct state_msg *rows, size_t n);
/* Insert or replace rows in one transaction (the caller keeps ownership). */
int state_msgs_put(struct state *st, int64_t folder_id, const struct state_msg *rows, size_t n,
		   struct tr_error *err);
int state_msgs_delete(struct state *st, int64_t folder_id, const uint32_t *src_uids, size_t n,
		      struct tr_error *err);

#endif
