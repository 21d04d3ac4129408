/* sync: bring one destination folder up to date with one source folder.
 *
 * The engine decides, from the state ledger and what the servers say, which
 * source messages to copy and which flags to update, and does it in
 * batches bounded by bytes: one UID FETCH streams a batch into the stage,
 * one APPEND (MULTIAPPEND) writes it, and the ledger records each message
 * as pending before the APPEND and done (with its APPENDUID) after it.
 *
 *  - Ledger mode (both UIDVALIDITYs as saved): only source UIDs at or
 *    above the saved UIDNEXT are new; flags of older messages are compared
 *    through CONDSTORE (CHANGEDSINCE) when offered, else by fetching FLAGS.
 *    A folder whose STATUS is what was saved costs nothing more.
 *  - Match mode (first run onto a non-empty folder, a changed UIDVALIDITY,
 *    a new destination for the folder): both sides' fingerprints are
 *    matched as multisets; what the source has more of is copied.
 *  - Pending rows from an interrupted run are settled first, by looking
 *    for their fingerprints on the destination above the UIDNEXT saved
 *    with them.
 *
 * Nothing is ever deleted on the destination.
 *
 * Threads (started in one place, net_thread_start from sync.c; sync_folder
 * returns only when they have ended): the destination's opening of the
 * folder while the source's is read, and the pipeline's fetcher (batch
 * k+1 from the source while batch k is appended).  Each uses only its own
 * side's store; what the fetcher learns is handed over under a lock.
 */
#ifndef TRASLOCO_SYNC_H
#define TRASLOCO_SYNC_H

#include <stdbool.h>
#include <stdint.h>

#include "error.h"
#include "stage.h"
#include "state.h"
#include "store.h"

struct sync_limits {
	uint64_t batch_bytes;     /* a FETCH/APPEND batch stops growing past this */
	uint32_t batch_count;     /* ... or at this many messages */
	/* the servers' day budgets (throttle.h), reserved per batch before
	 * its fetch; NULL: none */
	struct throttle *src_throttle, *dst_throttle;
	/* this account's own day budgets on each server (a provider's limit
	 * per mailbox, as Gmail's download a day); NULL: none */
	struct throttle *src_account_throttle, *dst_account_throttle;
};

/* Counters of one folder (or, summed, of an account). */
struct sync_counts {
	uint32_t copied;          /* appended this run */
	uint32_t present;         /* already on the destination */
	uint32_t failed;          /* refused by the destination (see the log) */
	uint32_t flags_updated;
	uint32_t vanished;        /* expunged on the source while we worked */
	uint32_t deferred;        /* left for a later pass (struct sync_pass) */
	uint64_t bytes;           /* bytes appended */
};

/* One source message of a folder that was not copied (refused by the
 * destination, unreadable on the source, too big, NUL bytes without
 * BINARY), for reports and the queue's account detail. */
struct sync_failure {
	uint32_t uid;             /* the source's UID */
	char *reply;              /* owned: the destination's reply, else why (as logged) */
};

/* The failures of one folder's last sync: the first SYNC_FAILURES_KEPT, in
 * the order they happened; the rest are only counted (sync_counts.failed).
 * Owned by whoever holds it (account.h: a folder_report's), emptied by
 * sync_folder at its start as the counts are, freed by sync_failures_free.
 * Written by one thread at a time (the folder's appender). */
#define SYNC_FAILURES_KEPT 1000
struct sync_failures {
	struct sync_failure *v;
	size_t n, cap;
};
void sync_failures_free(struct sync_failures *f);

/* Progress callback, called after each batch with what it added: messages
 * appended, the batch's other messages (refused, vanished, unreadable:
 * done with all the same), and the bytes appended. */
typedef void sync_progress_fn(void *ctx, uint32_t copied, uint32_t other, uint64_t bytes);
/* Called once the folder's work is known (planned, before the copy):
 * the messages to copy and their bytes (RFC822.SIZE). */
typedef void sync_planned_fn(void *ctx, uint32_t to_copy, uint64_t bytes);

/* Which of the messages a sync would copy this pass copies (--since,
 * --before, --trial: a pre-stage of recent mail, a trial).  What it leaves
 * out is counted as deferred and the folder's scan position is kept below
 * the first of them, so that a later pass, filtered or not, looks at them
 * again and copies exactly those (the ledger's done rows say what was
 * copied): nothing doubled, nothing forgotten. */
struct sync_pass {
	uint32_t since_day;       /* YYYYMMDD: INTERNALDATE's day on or after; 0: any */
	uint32_t before_day;      /* YYYYMMDD: INTERNALDATE's day before; 0: any */
	uint32_t trial;           /* copy at most this many (the highest UIDs); 0: all */
};

/* The day of an INTERNALDATE ("05-Dec-2026 12:34:56 +0100") as YYYYMMDD,
 * in the date's own zone, as IMAP's SEARCH SINCE/BEFORE take it; 0 when it
 * cannot be read (such a message is never deferred by date). */
uint32_t sync_pass_day(const char *internaldate);

/* What to do, and with what.  Stores are borrowed; the sync may leave
 * them broken (store_broken) on a TR_ERR_TEMP failure. */
struct sync_folder_job {
	const char *ctx;          /* "user@example.com" for log lines */
	struct store *src, *dst;
	struct state *state;
	int64_t account_id;
	struct stage *stage;
	struct stage *stage2;     /* a second stage: fetch the next batch while appending
				   * this one (source and destination stores then run
				   * in two threads); NULL: one batch at a time */
	const struct sync_limits *limits;
	sync_progress_fn *progress;
	sync_planned_fn *planned;          /* NULL: not told */
	void *progress_ctx;               /* of both */
	struct sync_failures *failures;   /* NULL: not kept; else emptied, then filled */
	const struct sync_pass *pass;     /* NULL: every message */

	const char *src_raw, *src_name;   /* wire name and '/' form on the source */
	const char *dst_raw, *dst_name;
	bool dst_exists;          /* exists on the destination (listed, or created by this run) */
	bool dst_listed;          /* listed before this run: a folder re-created empty is
				   * never "unchanged", whatever the source's STATUS says */
	/* STATUS of the source folder read just before, or NULL. */
	const struct store_status *src_status;
};

/* Sync one folder.  Returns 0 when the folder is done (individual messages
 * may have failed: see counts->failed), -1 with err when the folder could
 * not be finished (retry it with fresh sessions when err->kind is
 * TR_ERR_TEMP or TR_ERR_WAIT). */
int sync_folder(const struct sync_folder_job *job, struct sync_counts *counts,
		struct tr_error *err);

/* Does the folder need no work at all?  From its STATUS (st, read just
 * now) against what the state saved after the last complete sync:
 * SYNC_UNCHANGED (and *present) when nothing changed, SYNC_FLAGS_UNKNOWN
 * when nothing but flags could have changed and STATUS cannot tell (no
 * HIGHESTMODSEQ: the flags must be compared), SYNC_CHANGED when there is
 * work; -1 on a state error.  For every outcome *present is what the last
 * complete sync left of the folder (0 when its UIDVALIDITY changed since,
 * or it was never synced): a changed folder's new messages are about
 * STATUS's count minus that. */
enum { SYNC_CHANGED = 0, SYNC_UNCHANGED = 1, SYNC_FLAGS_UNKNOWN = 2 };
int sync_folder_unchanged(struct state *state, int64_t account_id, const char *src_name,
			  const char *dst_name, const struct store_status *st, bool dst_exists,
			  uint32_t *present, struct tr_error *err);


#endif
