/* queue: migration jobs run by workers, in a queue that is a place of its
 * own: PostgreSQL, shared by many workers on many hosts (the fleet), or
 * SQLite, one directory of one host (a service or workers of that host).
 *
 * A location names the queue: "postgresql://..." or "postgres://..." (a
 * libpq URI: queue_pg.c), "sqlite:DIR" or a plain directory path
 * (DIR/queue.sqlite: queue_sqlite.c); what every backend keeps is in
 * queue_backend.h.
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

#include "error.h"
#include "job.h"
#include "jobconf.h"
#include "seal.h"

struct queue;

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
 * accounts; the admin password (NULL: none) is sealed too.  name NULL: the
 * job file's name without ".job" (cfg->name), else the accounts file's.
 * *id_r: the new job's id. */
int queue_submit(struct queue *q, const struct job_config *cfg, const struct job_accounts *ja,
		 const char *admin_password, const char *name, int64_t *id_r,
		 struct tr_error *err);

/* False for the settings a queued job does not keep (accounts, state,
 * report, report-csv, log-dir, dst-admin-password-file): its accounts and
 * admin password are stored in the queue, its state is the queue's
 * database, its outcome is queue_status, a worker's logs are the worker's.
 * queue_submit leaves them out of the stored text and stores every path
 * absolute (relative ones from the working directory). */
bool queue_setting_kept(const char *key);

/* One claimed account, every string owned (passwords wiped by
 * queue_claim_free). */
struct queue_claim {
	int64_t row;            /* q_accounts.id */
	int64_t job_id;
	unsigned line;
	char *email, *src_user, *dst_user;   /* src_user, dst_user: NULL = email */
	char *password, *dst_password;       /* dst_password NULL: the source's */
	int attempts;           /* this one included */
	bool takeover;          /* the lease of another worker had expired */
};
void queue_claim_free(struct queue_claim *c);

/* Claim the next account of any job that is not cancelled, for worker,
 * for lease_s seconds.  Returns 1 with *c filled, 0 when there is nothing
 * to do now, -1 on error. */
int queue_claim(struct queue *q, const char *worker, int lease_s, struct queue_claim *c,
		struct tr_error *err);

/* A job's stored settings (*config_r: job-file text) and its admin
 * password (*admin_pw_r: NULL when none; secret_free). */
int queue_job_config(struct queue *q, int64_t job_id, char **config_r, char **admin_pw_r,
		     struct tr_error *err);

/* Extend the leases of the accounts in `held` that are still worker's, and
 * its q_workers row (seen); a running row of worker's that is not in held
 * (one it failed to give back) is left to expire.  *lost_r (owned, n_lost_r) gets the rows among `held` that are no
 * longer its own (taken over after its lease expired, or their job was
 * cancelled): the worker stops those at once. */
int queue_renew(struct queue *q, const char *worker, int lease_s, const int64_t *held,
		size_t n_held, int64_t **lost_r, size_t *n_lost_r, struct tr_error *err);

/* Live counters of a running account (written by the heartbeat). */
struct queue_counts {
	uint64_t copied, present, failed, bytes;
	uint32_t folders_done, folders_total;
};
int queue_progress(struct queue *q, const char *worker, int64_t row,
		   const struct queue_counts *n, struct tr_error *err);

/* The outcome of a run ("ok", "partial", "failed"; error NULL when ok),
 * written only while the row is still worker's: returns 1 written, 0 when
 * it was not (taken over, cancelled), -1 on error. */
int queue_finish(struct queue *q, const char *worker, int64_t row, const char *status,
		 const char *error, const struct queue_counts *n, double seconds,
		 struct tr_error *err);
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
 * "eta_seconds", "sessions": {"src": {"in_use", "cap"}, "dst": ...},
 * "account_list": [{"email", "state", "worker", "error", "copied", ...}]}],
 * "workers": [{"id", "host", "egress", "parallel", "running", ...}]}
 * (account_list only for one job, workers only for all)).  rate: messages
 * copied per second since the job's first account started; eta_seconds:
 * from the pace at which its accounts finished so far (null until one
 * has). */
int queue_status(struct queue *q, const char *job, bool json, FILE *out, struct tr_error *err);
/* Accounts back to pending: failed_only: those failed or partial; else
 * every account that is not running.  *n_r: how many. */
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
/* How many accounts of jobs not cancelled are pending or running (a
 * worker started with --drain ends when none is). */
int queue_outstanding(struct queue *q, int64_t *n_r, struct tr_error *err);
/* The id of JOB (id or name), for callers. */
int queue_job_id(struct queue *q, const char *job, int64_t *id_r, struct tr_error *err);

#endif
