/* worker: run the accounts of queued jobs (queue.h), one of many workers
 * on many hosts sharing one PostgreSQL database, or of one host sharing a
 * queue directory (SQLite).
 *
 * A worker claims accounts of any job that is not cancelled, up to
 * `parallel` at once, and runs each exactly as `trasloco run` runs one
 * (run_account): its state is where the queue is (state_open of the same
 * location: state_pg in the same database, state_sqlite in the same
 * directory; the UID ledger with its pending rows, so an account taken
 * over resumes where its last worker stopped, as a re-run does).  Its
 * sessions are counted against the job's caps by this worker's limiters,
 * one per side and job, shared by its slots, and on a PostgreSQL queue by
 * every worker together too (caps_pg.h).  On a SQLite queue each worker
 * process holds the caps alone: run one per directory to keep them.
 *
 * Leases: every claimed account, every session slot and every state lock
 * is a lease of lease_s seconds (default 30) that one heartbeat thread
 * renews every lease_s / 6 seconds.  An account whose lease this worker
 * lost (another worker took it over, its job was cancelled) is stopped at
 * once: its threads work in their own net scope (net.h), cancelled, so its
 * sessions end before anyone else may take the account (the takeover
 * needs the lease to have expired; the worker gives up after lease_s / 2
 * without a renewal).  A lost database: the worker stops claiming, stops
 * the accounts it can no longer prove its own (their writes are refused by
 * the state's fencing anyway: nothing is doubled), and reconnects with
 * back-off (pg.h: lazily, statement by statement); accounts cut short by
 * it go back to pending, not failed.  An account that fails on a temporary
 * error (a timeout, a server's limit, the database away) goes back to
 * pending too, after 10 s times its attempts, until its third attempt,
 * whose failure is recorded.
 *
 * Passes (queue.h): a claim says what to do.  A copy (the first run, a
 * delta pass, a final pass's copy) is run_account, its outcome written
 * with its folders and the messages it could not copy; a verify (a verify
 * pass, a final pass's last step) is verify.h's comparison of the
 * account, written as its last verify.  The heartbeat also starts the
 * scheduled passes that are due (queue_schedule, about once a lease), so
 * they need no daemon of their own.
 *
 * SIGTERM/SIGINT (net_cancel_all): running accounts stop, go back to
 * pending for another worker (no delay), and worker_run returns.
 *
 * Threads: `parallel` account slots (each with its own queue connection)
 * and the heartbeat, all started and joined by worker_run; each account
 * starts its own (account.h).
 */
#ifndef TRASLOCO_WORKER_H
#define TRASLOCO_WORKER_H

#include <stdbool.h>
#include <stdint.h>

#include "error.h"
#include "seal.h"

struct worker_opts {
	const char *dsn;                /* the queue's location (also the state's) */
	const struct seal_keys *keys;   /* to open the passwords */
	int parallel;                   /* accounts at once, >= 1 */
	const char *egress;             /* "" or NULL: none (caps_pg.h) */
	int lease_s;                    /* 0: 30 */
	bool drain;                     /* return once no account is pending or running */
	const char *log_dir;            /* NULL: no per-account log files */
};

struct worker_stats {
	uint32_t accounts;              /* runs finished here (any outcome) */
	uint32_t released;              /* given back unfinished */
	uint32_t lost;                  /* stopped because their lease was lost */
	uint32_t takeovers;             /* claims of an account whose lease had expired */
};

/* Run until stopped (or drained).  Returns 0, or -1 with err when the
 * worker could not start (database, schema, TLS settings of no job). */
int worker_run(const struct worker_opts *o, struct worker_stats *st, struct tr_error *err);

#endif
