/* account: migrate one mailbox, every folder, with a few sessions at once.
 *
 * Logs in on both sides, lists and maps the folders (folder.h), asks the
 * source for the STATUS of every folder in one round trip, and hands the
 * folders that changed to up to `max_sessions` workers, each with its own
 * source and destination session.  A worker whose folder fails on a
 * transient error (timeout, dropped connection, server limit) reconnects,
 * backs off and syncs the folder again: the state ledger makes that safe.
 *
 * A refused login fails the account at once, naming the account, the
 * server and its reply.  A refusal of an additional session while the
 * first one is open is taken as a connection limit, not a bad password:
 * that worker simply stops and the others carry on.
 *
 * Threads (started in one place, net_thread_start from account.c; account_run
 * returns only when all have ended): the second side's first login and
 * listing, the destination's preparation (creating folders, subscribing)
 * while the source answers STATUS, and workers 2..max_sessions (worker 1
 * is the caller's thread).  The account's state is shared under its lock;
 * each worker owns its stores and stages.
 */
#ifndef TRASLOCO_ACCOUNT_H
#define TRASLOCO_ACCOUNT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "error.h"
#include "folder.h"
#include "jobconf.h"
#include "scheduler.h"
#include "state.h"
#include "store.h"
#include "sync.h"

/* Live counters another thread may read for progress (summed over the
 * accounts that share them).  The horizon: msgs_total is what this run
 * copies, msgs_done how much of it is done with (copied, or refused,
 * vanished); until a folder's plan says how many of its messages are new,
 * it counts for STATUS's count less what the last complete sync left of
 * it (msgs_unknown sums those), then exactly.  bytes_known is the bytes of
 * the folders planned so far (copied and to copy), msgs_known their
 * messages: the bytes of the others are estimated at that average. */
struct account_progress {
	atomic_uint_fast64_t copied;
	atomic_uint_fast64_t bytes;
	atomic_uint_fast32_t folders_done;
	atomic_uint_fast32_t folders_total;
	atomic_uint_fast64_t msgs_total, msgs_done;
	atomic_uint_fast64_t msgs_known, msgs_unknown, bytes_known;
	/* sessions a server refused for a limit ([0] source, [1] destination):
	 * only grows (a reader may take them with atomic_exchange) */
	atomic_uint_fast32_t refused[2];
};

/* Everything borrowed; kept alive by the caller during account_run. */
struct account_opts {
	const struct job_config *cfg;       /* the job's settings: retries, spool_dir, subscribe... */
	const char *label;                  /* for log lines: the email */
	const struct store_driver *src_drv, *dst_drv;  /* store drivers (store.h) */
	const struct store_endpoint *src_ep, *dst_ep;
	struct store_creds src_cr, dst_cr;
	void *src_arg, *dst_arg;            /* the drivers' own (store_conf.arg) */
	const struct folder_map_opts *map;
	struct state *state;
	struct limiter *src_lim, *dst_lim;  /* session slots per server (scheduler.h) */
	const struct sync_limits *limits;
	int max_sessions;                   /* sessions per side for this account */
	struct account_progress *progress;  /* NULL: none */
};

/* PAUSED: a server's day budget is spent (throttle.h); err says until when
 * (err.until), and a later run goes on where this one stopped. */
enum account_status { ACCOUNT_OK = 0, ACCOUNT_PARTIAL, ACCOUNT_FAILED, ACCOUNT_PAUSED };

struct folder_report {
	char *src_name, *dst_name;          /* owned */
	bool renamed;
	const char *why;                    /* static, when renamed */
	struct sync_counts counts;
	struct sync_failures failures;      /* owned: the messages not copied (the first
					     * SYNC_FAILURES_KEPT; counts.failed counts all) */
	bool failed;
	char *error;                        /* owned, when failed */
	enum tr_err_kind error_kind;        /* when failed */
};

struct account_result {
	enum account_status status;
	struct tr_error err;                /* the reason when FAILED or PAUSED */
	struct folder_report *folders;      /* owned, plan order */
	size_t n_folders;
	uint32_t folders_failed;
	struct sync_counts total;
	double seconds;
	/* sessions the servers refused for a limit, [0] source, [1] destination
	 * (each lowered a cap: limiter_refused) */
	uint32_t refused[2];
};

/* Run the account; res is always filled (free with account_result_free).
 * Returns 0 when status is ACCOUNT_OK. */
int account_run(const struct account_opts *o, struct account_result *res);
void account_result_free(struct account_result *res);
const char *account_status_name(enum account_status s);
/* The state's name of the account o migrates ("user@src:993 -> user@dst:993"),
 * into buf: the key of state_account. */
void account_state_key(const struct account_opts *o, char *buf, size_t len);

#endif
