/* caps_pg: a job's session caps held across all its workers, in PostgreSQL.
 *
 * Every session a worker opens to a job's source or destination is a row
 * of q_sessions (pg_schema.c) taken before the session opens and deleted
 * when it closes; a row counts while its lease (`until`, the database's
 * clock) runs, and the worker's heartbeat (caps_pg_renew) extends its rows,
 * so a killed worker's sessions stop counting once their lease expires
 * (the server has dropped them by then: its TCP connections died with the
 * worker).  A slot is granted in a transaction that locks the job's side
 * (q_caps row, FOR UPDATE) and counts the live rows: for the login (of the
 * worker's egress when the job's caps are per egress) against the
 * per-account cap (lowered per login by refusals, q_cap_logins) and for
 * the side against max_total.  Waiting is polling with back-off (50 ms to
 * 1 s) that a stop or the caller's scope ends.  A refusal of the server
 * seen by one worker lowers the cap for all: the login's to the sessions
 * it holds now across the cluster (at least 1), or the side's when the
 * login held nothing else.
 *
 * Caps per egress: providers count sessions per user and client IP.  A
 * worker declares its egress (--egress NAME); a job submitted with
 * caps-per-egress counts the per-account cap per egress; the side's total
 * always counts every worker.  By default one cap for all (safe).
 *
 * The worker keeps the ids of the rows it holds: release deletes by id (a
 * delete that failed is tried again at the next acquire or renew; the
 * row, no longer renewed, expires meanwhile), renew extends exactly those
 * rows (rows of an earlier life under the same worker name expire), and
 * purges rows that expired more than 10 minutes ago (killed workers').  A
 * grant whose COMMIT reply was lost is not held: its row expires.
 * Database errors in an acquire are logged and the slot is refused (the
 * session is not opened); the next call reconnects (pg.h).  Costs: a
 * grant is 4 round trips and one commit, a release 1 (bench_limiter
 * --caps-pg measures them).
 *
 * Ownership: a struct caps_pg is its opener's; caps_pg_close deletes the
 * worker's remaining rows.  Threading: every function may be called from
 * any thread at once (one connection under a mutex, never held while
 * waiting).
 */
#ifndef TRASLOCO_CAPS_PG_H
#define TRASLOCO_CAPS_PG_H

#include <stdint.h>

#include "error.h"
#include "scheduler.h"

struct caps_pg;

int caps_pg_open(const char *dsn, const char *worker, const char *egress, int lease_s,
		 struct caps_pg **c_r, struct tr_error *err);
void caps_pg_close(struct caps_pg *c);
/* The shared side ("src" or "dst") of job_id's caps, to give to
 * limiter_set_shared; valid until caps_pg_close. */
int caps_pg_side(struct caps_pg *c, int64_t job_id, const char *side,
		 struct limiter_shared *out, struct tr_error *err);
/* Extend the leases of this worker's sessions (the heartbeat: call it well
 * within lease_s, e.g. every lease_s / 3). */
int caps_pg_renew(struct caps_pg *c, struct tr_error *err);
/* For status and tests: live sessions of a side (login NULL: all) and the
 * cap that applies to it (login NULL: the side's total). */
int caps_pg_count(struct caps_pg *c, int64_t job_id, const char *side, const char *login,
		  int *in_use_r, int *cap_r, struct tr_error *err);

#endif
