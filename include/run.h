/* run: migrate a list of accounts with a pool of workers.
 *
 * Used by `trasloco migrate` (one account) and `trasloco run` (a CSV or a
 * job file).  Accounts run `parallel_accounts` at a time; every session of
 * every account takes a slot from the source's and the destination's
 * limiter (scheduler.h), so the per-account and per-server caps hold across
 * the whole job.  A live progress line on a TTY (accounts done / running /
 * failed, messages, bytes, rate, ETA), a periodic log line otherwise, and a
 * log file per account when log_dir is set (a private directory, see
 * privdir.h: one that is a symbolic link, another user's or writable by
 * others gets a warning and no logs; the run goes on).
 *
 * Threads: run_accounts runs the accounts on the scheduler's pool
 * (sched_run, the one place job-level threads are started, plus the
 * progress thread run.c starts while a progress line or log is wanted);
 * each account starts its own (account.h).  All have ended when
 * run_accounts returns.
 */
#ifndef TRASLOCO_RUN_H
#define TRASLOCO_RUN_H

#include <stdbool.h>
#include <stddef.h>

#include "account.h"
#include "folder.h"
#include "jobconf.h"
#include "oauth.h"
#include "store.h"
#include "scheduler.h"
#include "state.h"
#include "sync.h"

/* One account of the job.  Strings are borrowed. */
struct run_account {
	const char *label;          /* the email: names the account everywhere */
	const char *src_user, *src_password;
	const char *dst_user;
	const char *dst_password;   /* NULL: the admin's, else the source password */
};
/* src_password may be NULL when the source is logged into as an admin
 * (run_env.src_admin). */

/* Everything the accounts share; filled by the caller, borrowed. */
struct run_env {
	const struct job_config *cfg;   /* the job's settings, read as they are */
	const struct store_driver *src_drv, *dst_drv;   /* NULL: "imap" */
	void *src_arg, *dst_arg;        /* the drivers' own (store_conf.arg) */
	struct store_endpoint src_ep, dst_ep;
	struct state *state;
	struct limiter *src_lim, *dst_lim;
	struct folder_map_opts map;
	struct sync_limits limits;
	const char *dst_admin;          /* NULL or admin login */
	const char *dst_admin_password;
	char dst_admin_separator;
	const char *src_admin;          /* NULL or admin login (from cfg) */
	const char *src_admin_password; /* set by the caller when src_admin is */
	char src_admin_separator;
	int max_sessions;               /* per account per side */
	int parallel_accounts;
	const char *log_dir;            /* NULL: no per-account log files */
	bool progress_tty;              /* redraw a progress line */
	bool progress_log;              /* a log line every 30 s */
	/* What one account learnt that holds for all of them (a port that
	 * speaks the other TLS mode): owned, made by run_env_init; NULL when
	 * the env was built by hand (nothing is shared then). */
	struct run_shared *shared;
	/* the servers' throttles (throttle.h), shared by the job's accounts:
	 * owned, made by run_env_init from the job's settings; NULL: none */
	struct throttle *src_throttle, *dst_throttle;
	/* OAuth2 tokens per account, [0] source, [1] destination (oauth.h);
	 * NULL for a side that logs in with passwords.  Owned, made by
	 * run_env_init; each account's are wiped when it ends. */
	struct oauth_pool *oauth[2];
	struct oauth_conf oauth_conf[2];
};

/* What a final pass (final.h) found of an account after its copy. */
enum run_final {
	RUN_FINAL_NONE = 0,             /* not a final pass */
	RUN_FINAL_FINISHED,             /* verified complete: marked finished */
	RUN_FINAL_INCOMPLETE,           /* the verify found messages missing */
	RUN_FINAL_UNVERIFIED,           /* the copy or the verify failed */
};

struct run_item {
	const struct run_account *acc;
	struct account_result res;
	bool started;                   /* false: skipped (stopped before its turn) */
	enum run_final final;
	uint32_t final_missing;         /* RUN_FINAL_INCOMPLETE: how many */
};

struct run_result {
	struct run_item *v;             /* owned, one per account, in input order */
	size_t n;
	double seconds;
	uint32_t ok, partial, failed, skipped, paused;
};

/* Fill env from a finished job configuration: endpoints, folder rules,
 * batches, caps (two new limiters, freed by run_env_free), with the TLS
 * context, state and admin password given (borrowed; state may be NULL for
 * check and verify).  The progress and log settings are left off. */
int run_env_init(struct run_env *env, const struct job_config *cfg, struct tls_ctx *tls,
		 struct state *state, const char *admin_pw, struct tr_error *err);
void run_env_free(struct run_env *env);

/* One account, on the caller's thread (the pool's, or a queue worker's):
 * its log file in log_dir (NULL: none), counters added to prog (NULL:
 * none), the result's texts cleaned of the account's passwords. */
void run_account(const struct run_env *env, const struct run_account *acc, const char *log_dir,
		 struct account_progress *prog, struct account_result *res);

/* Once an account failed because a server's port speaks the other TLS
 * mode (STORE_CODE_TLS_MODE), the accounts after it (for 60 s) fail with
 * the same error at once, without connecting: run_account and run_open. */

/* Provisioning (provision.h) of acc as env->cfg says, the error cleaned
 * of its passwords: 1 done, 0 found there, -1 err.  run_account calls it
 * before the account's first destination login when cfg asks for it. */
int run_provision(const struct run_env *env, const struct run_account *acc,
		  struct tr_error *err);

/* Run every account.  Returns 0 when all are ok. */
int run_accounts(const struct run_env *env, const struct run_account *acc, size_t n,
		 struct run_result *res);
void run_result_free(struct run_result *res);

/* For check and verify: the credentials of acc on one side (strings
 * borrowed from acc and env), and one session of acc on a side inside that
 * side's limiter; run_close gives the slot back (a NULL *s is fine). */
void run_creds(const struct run_env *env, const struct run_account *acc, bool src,
	       struct store_creds *cr);
/* Save an account's status in the state (as the end of its copy does:
 * "ok", "partial", "failed"; a final pass's "finished"). */
int run_set_status(const struct run_env *env, const struct run_account *acc, const char *status,
		   struct tr_error *err);
int run_open(const struct run_env *env, const struct run_account *acc, bool src,
	     struct store **s, struct tr_error *err);
void run_close(const struct run_env *env, const struct run_account *acc, bool src,
	       struct store **s);
/* The account's passwords (source, destination, the admin's) taken out of
 * an error text of it, and the text cleaned (text.h): each session already
 * takes out its own password, this catches one a server of the other side
 * sent.  Used on the texts that go into results and reports. */
void run_redact(const struct run_env *env, const struct run_account *acc, char *text,
		size_t size);

#endif
