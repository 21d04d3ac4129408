/* queue_backend: what a place to keep the queue implements (queue.h is what
 * callers see; queue.c picks a backend by the queue's location and
 * dispatches; queue_status.c writes the status from the rows a backend
 * reads).
 *
 * One struct of operations per backend, each with the meaning queue.h
 * gives the public function of the same name, and the same arguments but
 * the handle.  A backend is one file (queue_pg.c, queue_sqlite.c), listed
 * in queue.c's table; a new one is a new file and a line there.
 *
 * The contract every backend keeps:
 *  - open(where, keys) returns its own handle (void *), which it alone
 *    reads; close frees it.  where_text() names the queue in messages
 *    (never a password), valid until close.  keys stay the caller's
 *    (NULL: this handle never seals or opens a password; what needs them
 *    fails with TR_ERR_LOCAL).  A handle is used by one thread at a time;
 *    several handles (threads, processes, hosts as the backend allows) may
 *    work on one queue at once.
 *  - The schema has a version: init makes the store or upgrades it, all
 *    or none; open refuses a store of a newer version (and a backend that
 *    cannot upgrade on open, one it must not: PostgreSQL, shared by a
 *    fleet, says to run `trasloco queue init`).
 *  - Passwords are stored sealed (seal.h) with queue_aad's associated
 *    data, in no table in clear; submit and rekey are all or none.
 *  - Ids (jobs, accounts) are positive and never reused, not even after a
 *    delete (the HTTP API answers 404 for a deleted job's id).
 *  - A claim is atomic: two claimers never get the same account; a claimed
 *    account is "running", the claimer's, under a lease of lease_s
 *    seconds by the backend's clock (PostgreSQL: the database's; SQLite:
 *    this host's), renewed by renew; once it expired, the next claim may
 *    take the account over (takeover).  progress, finish and release
 *    change the row only while it is "running" and the caller's.
 *  - Status and an account's detail: one consistent snapshot into struct
 *    queue_rows or queue_detail (queue_status.h); queue.c writes them.  Sessions in use are the
 *    backend's to know (PostgreSQL: the fleet's q_sessions; SQLite: 0,
 *    the caps being held in each worker's process).
 *  - Passes: a row's pass says what its claim does; queue_pass and
 *    queue_schedule change a job's rows in one transaction that no other
 *    pass or schedule of that job runs beside (PostgreSQL: the job's row
 *    locked; SQLite: the one writer), so a scheduled pass starts once
 *    whatever the callers.
 *  - Errors: TR_ERR_USAGE for a job that does not exist or a request that
 *    cannot be (as queue.h says); TR_ERR_TEMP for a store out of reach or
 *    busy for too long (try again later); TR_ERR_LOCAL otherwise, with
 *    where_text() in the message.
 */
#ifndef TRASLOCO_QUEUE_BACKEND_H
#define TRASLOCO_QUEUE_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "job.h"
#include "jobconf.h"
#include "queue.h"
#include "queue_status.h"
#include "seal.h"

struct account_result;          /* account.h */
struct verify_item;             /* verify.h */

/* A job checked and prepared by queue_submit (queue.c), for a backend to
 * store as it is. */
struct queue_new_job {
	const char *name;
	const char *config;             /* job-file text, only the settings kept */
	const char *src, *dst;          /* "host:port", for the status */
	const char *skipped;            /* JSON array of the CSV rows skipped */
	const char *admin_password;     /* the destination admin's; NULL: none */
	const char *src_admin_password; /* the source admin's; NULL: none */
	const struct job_config *cfg;   /* its caps */
	const struct job_accounts *ja;  /* at least one */
};

struct queue_backend {
	const char *name;               /* "postgresql", "sqlite" */
	const char *where;              /* what a location names, for usage texts */
	int (*init)(const char *where, int *from_r, int *version_r, struct tr_error *err);
	int (*open)(const char *where, const struct seal_keys *keys, void **h_r,
		    struct tr_error *err);
	void (*close)(void *h);
	const char *(*where_text)(void *h);

	int (*submit)(void *h, const struct queue_new_job *nj, int64_t *id_r, struct tr_error *err);
	int (*claim)(void *h, const char *worker, int lease_s, struct queue_claim *c,
		     struct tr_error *err);
	int (*job_config)(void *h, int64_t job_id, char **config_r, char **admin_pw_r,
			  char **src_admin_pw_r, struct tr_error *err);
	int (*renew)(void *h, const char *worker, int lease_s, const int64_t *held, size_t n_held,
		     int64_t **lost_r, size_t *n_lost_r, struct tr_error *err);
	int (*progress)(void *h, const char *worker, int64_t row, const struct queue_counts *n,
			struct tr_error *err);
	int (*finish)(void *h, const char *worker, int64_t row, const char *status,
		      const char *error, const char *error_kind, const struct queue_counts *n,
		      double seconds,
		      const struct account_result *res, struct tr_error *err);
	int (*verify_finish)(void *h, const char *worker, int64_t row,
			     const struct verify_item *it, struct tr_error *err);
	int (*release)(void *h, const char *worker, int64_t row, int delay_s, struct tr_error *err);
	int (*worker_register)(void *h, const char *worker, const char *host, int pid,
			       const char *egress, int parallel, struct tr_error *err);
	int (*worker_stopped)(void *h, const char *worker, struct tr_error *err);

	/* job NULL: every job (and the workers); else that job and its
	 * accounts. */
	int (*status_rows)(void *h, const char *job, struct queue_rows *rows,
			   struct tr_error *err);
	int (*retry)(void *h, const char *job, bool failed_only, int *n_r, struct tr_error *err);
	int (*cancel)(void *h, const char *job, struct tr_error *err);
	int (*delete_job)(void *h, const char *job, struct tr_error *err);
	int (*rekey)(void *h, int *n_r, struct tr_error *err);
	int (*outstanding)(void *h, int64_t *n_r, struct tr_error *err);
	int (*job_id)(void *h, const char *job, int64_t *id_r, struct tr_error *err);

	/* kind and every_s checked already (queue.c): kind NULL or "delta",
	 * "verify", "final"; every_s with kind NULL or "delta" only. */
	int (*pass)(void *h, const char *job, const char *kind, int every_s, int *n_r,
		    struct tr_error *err);
	int (*schedule)(void *h, int *n_started, struct tr_error *err);
	/* *d filled (queue_detail_free), 0; 1 when JOB or the account is not
	 * there (err, TR_ERR_USAGE); -1 on error.  email is not NULL. */
	int (*account_detail)(void *h, const char *job, const char *email,
			      struct queue_detail *d, struct tr_error *err);
};

extern const struct queue_backend queue_backend_pg;
extern const struct queue_backend queue_backend_sqlite;

/* ---- shared by the backends (queue.c) ---- */

/* The associated data of a stored password: its job, account (email NULL:
 * the job's own, the admin password) and column, so that a value copied
 * to another row or column does not open. */
void queue_aad(char *buf, size_t len, int64_t job, const char *email, const char *what);
/* The admins' passwords of a job: their columns of q_jobs (the same in
 * every backend) and the names their sealed values are bound to
 * (queue_aad's what).  [0] the destination admin's, [1] the source's. */
struct queue_admin_col {
	const char *col, *aad;
};
extern const struct queue_admin_col queue_admin_cols[2];
/* JOB as a job's id when it is one's form (digits, not too many): 1 and
 * *id_r; else 0 (a name). */
int queue_job_number(const char *job, int64_t *id_r);
/* The error for a JOB no job has (TR_ERR_USAGE), -1. */
int queue_no_job(const char *job, const char *where, struct tr_error *err);
/* A stored pass name ("run", ...) as its kind (QUEUE_PASS_RUN for none). */
enum queue_pass_kind queue_pass_of(const char *name);
/* The stored form of a verify's result (JSON; its time and exactness are
 * columns of their own): malloc'd, NULL when out of memory. */
char *queue_verify_doc(const struct verify_item *it);

#endif
