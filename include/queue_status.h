/* queue_status: the status of queued jobs for people (text) or programs
 * (JSON), written from rows a queue backend read (queue_backend.h), so
 * that every backend's status has the same words and the same shape
 * (queue.h, queue_status, says what is in it).
 *
 * A backend reads one snapshot (the totals and the lists agree) into a
 * struct queue_rows; queue.c hands it to queue_status_write.  What is
 * derived (the job's state, rate, ETA) is computed here, never in SQL.
 *
 * Ownership: every string of the rows is owned by them (malloc), freed
 * with queue_rows_free.  No shared state: safe from any thread.
 */
#ifndef TRASLOCO_QUEUE_STATUS_H
#define TRASLOCO_QUEUE_STATUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "error.h"

/* An account's state, as stored ("pending", ...). */
enum queue_account_state {
	QUEUE_A_PENDING, QUEUE_A_RUNNING, QUEUE_A_OK, QUEUE_A_PARTIAL, QUEUE_A_FAILED,
	QUEUE_A_CANCELLED, QUEUE_A_N
};

/* One job with its totals.  Sides: [0] source, [1] destination. */
struct queue_job_row {
	int64_t id;
	char *name, *src, *dst;
	char *created;                  /* ISO 8601 UTC, "2024-05-01T10:00:00Z" */
	char *skipped;                  /* JSON array of {"line", "what"} */
	bool cancelled, per_egress;
	long long acc[QUEUE_A_N];       /* accounts per state */
	uint64_t copied, present, failed, bytes;
	double seconds;                 /* since its first account started: to now, or
					 * to the last finish once none is left */
	long long in_use[2];            /* sessions open now (0: not known) */
	long long cap[2], per_account[2];
	char *pass;                     /* the latest pass's kind */
	long long passes;               /* passes so far, the first run included */
	long long every;                /* delta passes every N s; 0: none scheduled */
	char *next_at;                  /* ISO 8601 UTC; NULL: none scheduled */
	bool final;                     /* a final pass was asked */
	/* the latest pass: seconds from its start (pass_started, or the job's
	 * submission for the first run) to now, or to its last account's
	 * finish once no account is pending or running */
	double pass_seconds;
	/* the pass before it that finished (kept when the latest began):
	 * last_pass NULL when none */
	char *last_pass;
	double last_pass_seconds;
	char *errors;                   /* JSON object: accounts failed or partial by
					 * error kind ("{}" or NULL: none) */
	long long refused[2];           /* sessions refused for a limit, per side, every
					 * account, every attempt */
};

/* One account of a job (the list of one job's status). */
struct queue_account_row {
	char *email, *state, *worker, *error;   /* worker, error: NULL when none */
	long long copied, present, failed, bytes, folders_done, folders_total;
	long long attempts, takeovers, line;
	double seconds;
	char *pass;                     /* what its claim does (queue_pass_name) */
	int verify_exact;               /* its last verify: 1 exact, 0 not, -1 none */
	char *error_kind;               /* failed or partial: tr_error_kind_name; else NULL */
	long long refused;              /* sessions refused for a limit, both sides */
};

/* A worker heard from lately and not stopped. */
struct queue_worker_row {
	char *id, *host, *egress;
	long long pid, parallel, seen_ago, running;
};

struct queue_rows {
	struct queue_job_row *jobs;
	size_t n_jobs;
	struct queue_account_row *accounts;     /* with_accounts: one job's */
	size_t n_accounts;
	bool with_accounts;
	struct queue_worker_row *workers;       /* with_workers: every job's status */
	size_t n_workers;
	bool with_workers;
};

void queue_rows_free(struct queue_rows *r);

/* One account as queue_account_detail gives it: its row, the folders and
 * the failed messages of its last copy, its last verify. */
struct queue_folder_row {
	char *src, *dst, *status, *error;       /* error: NULL when none */
	long long copied, present, failed, bytes;
};

struct queue_failure_row {
	char *folder, *reply;
	long long uid;
};

struct queue_detail {
	int64_t job;
	char *email, *status, *pass, *error, *worker;   /* error, worker: NULL when none */
	char *started, *finished;       /* ISO 8601 UTC, NULL when none */
	long long folders_done, folders_total, copied, present, failed, bytes;
	long long attempts, takeovers, failures_more;
	double seconds;
	struct queue_folder_row *folders;
	size_t n_folders;
	struct queue_failure_row *failures;
	size_t n_failures;
	char *verify;                   /* the stored verify document; NULL: never verified */
	char *verify_at;
	bool verify_exact;
};

void queue_detail_free(struct queue_detail *d);
/* queue.h's JSON of queue_account_detail; NULL when out of memory. */
json_t *queue_detail_json(const struct queue_detail *d);

/* The status's JSON document as queue.h's queue_status describes it; NULL
 * when out of memory. */
json_t *queue_status_doc(const struct queue_rows *r);
/* The status as queue.h's queue_status describes it, to out. */
int queue_status_write(const struct queue_rows *r, bool json, FILE *out, struct tr_error *err);

#endif
