/* queue: migration jobs run by workers, in a queue that is a place of its
 * own: PostgreSQL, shared by many workers on many hosts (the fleet), or
 * SQLite, one directory of one host (a service or workers of that host).
 *
 * A location names the queue: "postgresql://..." or "postgres://..."
 * (libpq's URI, or its key=value form: queue_pg.c), "sqlite:DIR" or a
 * plain directory path (DIR/queue.sqlite: queue_sqlite.c); what every
 * backend keeps is in queue_backend.h.
 *
 * A job is stored whole when submitted: its settings as job-file text
 * (jobconf_text: no password in it), its accounts (one row each, their
 * passwords sealed, seal.h) and its caps.  Workers claim accounts one
 * transaction at a time and hold each under a lease (lease_until: the
 * database's clock for PostgreSQL, this host's for SQLite) renewed by
 * their heartbeat; an account whose lease expired (its worker was killed,
 * its host lost, its network cut) is claimable again, and the claim counts
 * a takeover.  A worker writes an outcome only while the account is still
 * its own.
 *
 * An account's state: pending -> running -> ok | partial | failed, or
 * cancelled (the job was cancelled before it ran); retry puts accounts back
 * to pending.  A job's state is derived: cancelled; queued (nothing started);
 * running; done (all ok); failed (all failed); partial (otherwise, all
 * finished).
 *
 * Passes (queue_pass, queue_schedule): after the first run ("run"), a
 * delta pass runs every finished account again (the engine is
 * incremental: it copies what arrived since), a verify pass verifies them
 * (verify.h) without changing their state unless the verify itself fails,
 * and a final pass runs one last delta then a verify of every account, and
 * ends the job: no pass is scheduled after it.  Delta passes may be
 * scheduled every N seconds; a scheduled pass starts once N seconds have
 * passed since the previous pass began and none of the job's accounts is
 * pending or running.  Each account row says what its claim does
 * (enum queue_pass_kind); one row is claimed by one worker at a time, so
 * an account never runs two passes at once.
 *
 * What an account's last copy did (per folder, the messages it could not
 * copy) and its last verify are kept with it (queue_account_detail).
 *
 * JOB arguments are a job's id ("7") or its name (the newest job of that
 * name).
 *
 * Tables: pg_schema.c, queue_sqlite.c.  Passwords never appear in a table
 * in clear, in a status, a message or a log line; queue_delete removes a
 * job's rows, its sealed passwords with them.
 *
 * Ownership: a struct queue is its opener's; returned structs are freed
 * with the matching *_free.  Threading: one struct queue per thread (it
 * holds one connection); open several for several threads.
 */
#ifndef TRASLOCO_QUEUE_H
#define TRASLOCO_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "error.h"
#include "job.h"
#include "jobconf.h"
#include "seal.h"

struct queue;
struct account_result;          /* account.h */
struct verify_item;             /* verify.h */

/* Connect and check the schema (PostgreSQL: pg_schema_check; SQLite: the
 * file is made or upgraded).  keys may be NULL for callers that never seal
 * or unseal (status, cancel, retry); it stays the caller's.  An unknown
 * "SCHEME://..." is refused (TR_ERR_USAGE) naming the known ones. */
int queue_open(const char *dsn, const struct seal_keys *keys, struct queue **q_r,
	       struct tr_error *err);
void queue_close(struct queue *q);
const char *queue_where(const struct queue *q);
/* "postgresql" or "sqlite": which backend holds it. */
const char *queue_backend_name(const struct queue *q);
/* Make the queue's tables or bring them to this trasloco's schema, all or
 * none (`trasloco queue init`).  *from_r: the version found (0: none yet),
 * *version_r: this trasloco's; *q_r: the queue, open without keys. */
int queue_init(const char *location, int *from_r, int *version_r, struct queue **q_r,
	       struct tr_error *err);

/* Submit a finished job configuration (kind JOB_RUN) with its parsed
 * accounts; the admins' passwords (the destination's for dst-admin, the
 * source's for src-admin; NULL: none) are sealed too.  name NULL: the
 * job file's name without ".job" (cfg->name), else the accounts file's.
 * *id_r: the new job's id. */
int queue_submit(struct queue *q, const struct job_config *cfg, const struct job_accounts *ja,
		 const char *admin_password, const char *src_admin_password, const char *name,
		 int64_t *id_r, struct tr_error *err);

/* False for the settings a queued job does not keep (accounts, state,
 * report, report-csv, log-dir, dst-admin-password-file,
 * src-admin-password-file): its accounts and admin passwords are stored in
 * the queue, its state is the queue's
 * database, its outcome is queue_status, a worker's logs are the worker's.
 * queue_submit leaves them out of the stored text and stores every path
 * absolute (relative ones from the working directory). */
bool queue_setting_kept(const char *key);

/* What a claim asks of the worker: copy (run: the first run or a retry;
 * delta; final: a final pass's copy, followed by its verify) or verify
 * (verify; final_verify: the last step of a final pass). */
enum queue_pass_kind {
	QUEUE_PASS_RUN = 0,
	QUEUE_PASS_DELTA,
	QUEUE_PASS_VERIFY,
	QUEUE_PASS_FINAL,
	QUEUE_PASS_FINAL_VERIFY,
};
/* "run", "delta", "verify", "final", "final-verify" (as stored). */
const char *queue_pass_name(enum queue_pass_kind k);
/* True for the kinds that copy (run, delta, final); false for verifies. */
bool queue_pass_copies(enum queue_pass_kind k);

/* One claimed account, every string owned (passwords wiped by
 * queue_claim_free). */
struct queue_claim {
	int64_t row;            /* q_accounts.id */
	int64_t job_id;
	unsigned line;
	char *email, *src_user, *dst_user;   /* src_user, dst_user: NULL = email */
	char *password, *dst_password;       /* dst_password NULL: the source's; password "" when
						 * the CSV had none (OAuth2, admins) */
	int attempts;           /* this one included */
	bool takeover;          /* the lease of another worker had expired */
	enum queue_pass_kind pass;   /* what to do with it */
};
void queue_claim_free(struct queue_claim *c);

/* Claim the next account of any job that is not cancelled, for worker,
 * for lease_s seconds.  Returns 1 with *c filled, 0 when there is nothing
 * to do now, -1 on error. */
int queue_claim(struct queue *q, const char *worker, int lease_s, struct queue_claim *c,
		struct tr_error *err);

/* A job's stored settings (*config_r: job-file text) and its admins'
 * passwords (*admin_pw_r the destination's, *src_admin_pw_r the source's:
 * NULL when none; secret_free). */
int queue_job_config(struct queue *q, int64_t job_id, char **config_r, char **admin_pw_r,
		     char **src_admin_pw_r, struct tr_error *err);

/* Extend the leases of the accounts in `held` that are still worker's, and
 * its q_workers row (seen); a running row of worker's that is not in held
 * (one it failed to give back) is left to expire.  *lost_r (owned, n_lost_r) gets the rows among `held` that are no
 * longer its own (taken over after its lease expired, or their job was
 * cancelled): the worker stops those at once. */
int queue_renew(struct queue *q, const char *worker, int lease_s, const int64_t *held,
		size_t n_held, int64_t **lost_r, size_t *n_lost_r, struct tr_error *err);

/* Live counters of a running account (written by the heartbeat; not
 * while it verifies: they stay its last copy's). */
struct queue_counts {
	uint64_t copied, present, failed, bytes;
	uint32_t folders_done, folders_total;
	/* sessions a server refused for a limit ([0] source, [1] destination)
	 * since the last progress or finish of this claim: added to the
	 * account's counts, which only grow (also written while it verifies) */
	uint32_t refused[2];
};
int queue_progress(struct queue *q, const char *worker, int64_t row,
		   const struct queue_counts *n, struct tr_error *err);

/* Failed messages kept per account (q_failures), the first ones in folder
 * order; the rest are counted (failures_more). */
#define QUEUE_FAILURES_KEPT 1000
/* Messages a verify found missing, kept per account in its last verify. */
#define QUEUE_MISSING_KEPT 1000

/* The outcome of a copy ("ok", "partial", "failed"; error NULL when ok;
 * error_kind: its tr_error_kind_name, NULL when ok),
 * written only while the row is still worker's: returns 1 written, 0 when
 * it was not (taken over, cancelled), -1 on error.  res (borrowed; NULL:
 * nothing known, e.g. the job's settings did not load) gives the folders
 * and the messages not copied, which replace those of the account's last
 * copy, in the same transaction; its texts must be cleaned already
 * (run_account does: run_redact).  When the claim was a final pass's copy
 * (and did not fail) the account goes on to pending for its verify
 * (QUEUE_PASS_FINAL_VERIFY); when the job got a final pass while this ran,
 * to pending for that final pass. */
int queue_finish(struct queue *q, const char *worker, int64_t row, const char *status,
		 const char *error, const char *error_kind, const struct queue_counts *n,
		 double seconds,
		 const struct account_result *res, struct tr_error *err);
/* The outcome of a verify claim (it: borrowed, its texts cleaned), kept as
 * the account's last verify: exact when it could verify and found every
 * source message on the destination.  The account's state goes back to
 * its last copy's outcome, or to failed (with the verify's error) when
 * the verify could not be done (a refused login, a server out of reach).
 * Returns as queue_finish. */
int queue_verify_finish(struct queue *q, const char *worker, int64_t row,
			const struct verify_item *it, struct tr_error *err);
/* Give a claimed account back (pending again, claimable after delay_s
 * seconds) without an outcome: the worker stops, lost its database, or
 * found the account held elsewhere.  Only while the row is worker's. */
int queue_release(struct queue *q, const char *worker, int64_t row, int delay_s,
		  struct tr_error *err);

/* Workers: one row each (id "host:pid:random"), seen by queue_renew. */
int queue_worker_register(struct queue *q, const char *worker, const char *host, int pid,
			  const char *egress, int parallel, struct tr_error *err);
int queue_worker_stopped(struct queue *q, const char *worker, struct tr_error *err);

/* Status of one job (job NULL: every job) as text for people or JSON
 * ({"jobs": [{"id", "name", "state", "accounts": {"pending", "running",
 * "ok", "partial", "failed", "cancelled"}, "messages", "bytes", "rate",
 * "eta_seconds", "sessions": {"src": {"in_use", "cap", "per_account",
 * "limit_refusals"}, "dst": ...}, "errors": {KIND: N} (accounts failed or
 * partial by the kind of their error, tr_error_kind_name), "limit_refusals"
 * (sessions the servers refused for a limit, both sides, every attempt and
 * pass: only grows),
 * "passes": {"current" (the latest pass's kind: run|delta|verify|final),
 * "count" (passes so far, the first run included), "every_seconds" (null:
 * none scheduled), "next_at" (ISO 8601 UTC, null when none is scheduled;
 * it starts then or once every account has finished), "final" (a final
 * pass was asked), "finished" (and every account has done it; the job is
 * not cancelled), "current_seconds" (the latest pass from its start, to
 * now or to its last account's finish once none is pending or running;
 * the first run starts at the job's submission), "last_pass_kind",
 * "last_pass_seconds" (the last finished pass: the latest once it is
 * over, else the one before it, recorded when the latest began; null
 * when none)},
 * "account_list": [{"email", "state", "worker", "error", "copied", ...,
 * "pass", "verify_exact" (null: never verified), "error_kind" (null unless
 * failed or partial), "limit_refusals"}]}],
 * "workers": [{"id", "host", "egress", "parallel", "running", ...}]}
 * (account_list only for one job, workers only for all)).  rate: messages
 * copied per second since the job's first account started; eta_seconds:
 * from the pace at which its accounts finished so far (null until one
 * has). */
int queue_status(struct queue *q, const char *job, bool json, FILE *out, struct tr_error *err);
/* The same JSON document as a value (the caller's, json_decref), for
 * callers that reshape it (the HTTP API): NULL with err. */
json_t *queue_status_json(struct queue *q, const char *job, struct tr_error *err);
/* Accounts back to pending: failed_only: those failed or partial; else
 * every account that is not running.  *n_r: how many.  Each repeats what
 * failed: a verify that could not be done is done again; otherwise a copy
 * (a final pass's copy, then its verify, once the job had a final pass). */
int queue_retry(struct queue *q, const char *job, bool failed_only, int *n_r,
		struct tr_error *err);
/* Cancel: pending accounts become cancelled; running ones are stopped by
 * their workers at the next heartbeat (queue_renew reports them lost). */
int queue_cancel(struct queue *q, const char *job, struct tr_error *err);
/* Remove a job and everything of it (its passwords with it). */
int queue_delete(struct queue *q, const char *job, struct tr_error *err);
/* Seal every stored password again with the first key of keys. *n_r:
 * values re-sealed. */
int queue_rekey(struct queue *q, int *n_r, struct tr_error *err);
/* How many accounts of jobs not cancelled are running, or pending to be
 * taken within QUEUE_DRAIN_HORIZON_S seconds (a worker started with
 * --drain ends when none is: an account paused by a day budget until the
 * next UTC midnight does not keep it, a retry a few seconds away does). */
#define QUEUE_DRAIN_HORIZON_S 600
#define QUEUE_DRAIN_HORIZON_TEXT "600"
int queue_outstanding(struct queue *q, int64_t *n_r, struct tr_error *err);
_Static_assert(QUEUE_DRAIN_HORIZON_S == 600, "QUEUE_DRAIN_HORIZON_TEXT says 600");
/* The id of JOB (id or name), for callers. */
int queue_job_id(struct queue *q, const char *job, int64_t *id_r, struct tr_error *err);

/* ---- passes and account detail (README "Fleet"; the HTTP API's) ---- */

/* Ask a pass of JOB.  kind: "delta" (every finished account, ok, partial
 * or failed, back to pending for an incremental copy), "verify" (every
 * finished account verified; its state unchanged unless the verify fails),
 * "final" (every account not cancelled: one last copy that starts after
 * now, then a verify; the job ends finished and nothing more is
 * scheduled; accounts running now get it when their run ends), or NULL.
 * every_s > 0 (kind NULL or "delta"): delta passes every every_s seconds
 * from the start of the latest pass (queue_schedule starts them) until a
 * final pass; every_s < 0 (kind NULL): no more scheduled passes; 0: the
 * schedule as it was.  Pending and running accounts are left as they are
 * by delta and verify: their coming or current run is their pass.
 * *n_r: the accounts the pass covers (0 for delta and verify when no
 * account was finished: then no pass is counted).  Refused (TR_ERR_USAGE):
 * an unknown kind, kind and every_s that do not go together, a cancelled
 * job (retry it first), a delta, final or schedule after a final pass (a
 * verify is fine), no such job. */
int queue_pass(struct queue *q, const char *job, const char *kind, int every_s, int *n_r,
	       struct tr_error *err);
/* Start the scheduled delta passes that are due (every job with passes
 * every N seconds, no final pass, not cancelled, N seconds since its
 * latest pass began, none of its accounts pending or running).  Any number
 * of callers at once start each due pass exactly once (one transaction;
 * the job rows locked, SKIP LOCKED: a job another caller is busy with is
 * left to it).  Workers call it from their heartbeat; so may a server.
 * *n_started: passes started. */
int queue_schedule(struct queue *q, int *n_started, struct tr_error *err);
/* "90", "30s", "15m", "6h", "1d" (and "2h30m": parts add up) as seconds,
 * 1 s to 366 days; -1 with err (TR_ERR_USAGE) otherwise. */
int queue_every_parse(const char *text, int *seconds_r, struct tr_error *err);

/* One account of JOB (id or name) by its email as submitted, as JSON
 * (*out, the caller's: json_decref):
 *   {"job": ID, "email", "status" (pending|running|ok|partial|failed|
 *    cancelled), "pass" (what its current or last claim does: run|delta|
 *    verify|final|final-verify), "error", "folders_done", "folders_total",
 *    "messages_copied", "messages_present", "messages_failed", "bytes",
 *    "seconds", "attempts", "takeovers", "worker", "started", "finished",
 *    "folders": [{"src", "dst", "status" (ok|failed), "messages_copied",
 *      "messages_present", "messages_failed", "bytes", "error"}],
 *    "failures": [{"folder", "uid", "reply"}], "failures_more": N,
 *    "verify": null | {"at", "exact", "error", "folders",
 *      "folders_missing", "source_messages", "found", "missing",
 *      "destination_only", "flags_differ", "altered_by_destination",
 *      "missing_messages": [{"folder", "uid", "size", "internaldate"}],
 *      "missing_more", "seconds"}}
 * Counters, folders and failures are those of the account's last copy
 * (while a copy runs, the counters are live and the folders and failures
 * still the previous copy's: they are written when it ends).  failures:
 * the first QUEUE_FAILURES_KEPT; failures_more: messages_failed not
 * listed (beyond that, or in a folder that failed as a whole).  Times are
 * ISO 8601 UTC ("2024-05-01T10:00:00Z") or null.  Texts are cleaned (no
 * password, valid UTF-8).  Returns 0 with *out; 1 when JOB or the account
 * does not exist (*out NULL, err says which, TR_ERR_USAGE); -1 on error. */
int queue_account_detail(struct queue *q, const char *job, const char *email, json_t **out,
			 struct tr_error *err);

#endif
