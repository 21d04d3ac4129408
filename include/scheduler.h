/* scheduler: the connection limiter and the pool of account workers.
 *
 * A limiter counts the sessions we hold on one server: per account (login)
 * and in all.  Every session is opened only after a slot was granted, and
 * its slot is given back when it closes, so the caps are never exceeded,
 * whatever the number of threads.  When the server refuses a session for
 * lack of room ([LIMIT], "Maximum number of connections", a login refused
 * while the same account has other sessions open), limiter_refused lowers
 * the cap that was hit: the account's cap to what it holds now, or the
 * server's when the account held nothing.  Caps never go below 1 and are
 * not raised again during a run: a provider's limit does not change under
 * us, and guessing upwards is what gets accounts locked.
 *
 * Per-login entries live in a hash table and are freed as soon as the login
 * holds no slot, has no thread waiting for one and its cap was not lowered:
 * a run over any number of accounts keeps only the active ones, plus one
 * small entry per login whose cap a refusal lowered (kept until
 * limiter_free, so the lowered cap holds for the rest of the run).
 * Thread-safe: one lock per limiter.
 *
 * The pool runs account jobs on N threads; see sched_run.
 */
#ifndef TRASLOCO_SCHEDULER_H
#define TRASLOCO_SCHEDULER_H

#include <stdbool.h>
#include <stddef.h>

struct limiter;

/* max_per_account, max_total >= 1.  Free with limiter_free. */
struct limiter *limiter_new(const char *label, int max_per_account, int max_total);
void limiter_free(struct limiter *l);

/* Take a slot for account.  wait: block until one is free (or the run or
 * the caller's scope is stopped, see net.h: noticed within 200 ms); else
 * return at once.  Returns 0 granted, -1 not granted. */
int limiter_acquire(struct limiter *l, const char *account, bool wait);
void limiter_release(struct limiter *l, const char *account);
/* The server refused a session of account that held a slot from
 * limiter_acquire (still held): lower the cap that was hit. */
void limiter_refused(struct limiter *l, const char *account);

/* A cap shared with other processes (caps_pg.h: every worker of a job
 * on every host).  Once set, a slot is granted only when both the local
 * limiter and the shared one grant it (local first: threads of this
 * process queue here, not in the database); release and refused are
 * passed on.  acquire returns 0 granted, -1 not (wait false and no room,
 * the run or the caller's scope stopped, or the shared store failing: a
 * session is never opened without its slot; the local slot is then given
 * back).  The shared acquire runs without the limiter's lock held (it may
 * wait), so other threads release and count meanwhile.  Set it before the
 * limiter's first acquire (NULL: none).  The struct is copied; ctx stays
 * the caller's and must outlive the limiter's use. */
struct limiter_shared {
	int (*acquire)(void *ctx, const char *account, bool wait);
	void (*release)(void *ctx, const char *account);
	void (*refused)(void *ctx, const char *account);
	void *ctx;
};
void limiter_set_shared(struct limiter *l, const struct limiter_shared *sh);

/* Current numbers, for tests and logs.  A login's peak is forgotten with its
 * entry (once it is idle): it is the peak since the login last held nothing. */
int limiter_in_use(struct limiter *l, const char *account);   /* NULL: total */
int limiter_cap(struct limiter *l, const char *account);      /* NULL: the server's cap */
int limiter_peak(struct limiter *l, const char *account);     /* NULL: total peak */
/* Per-login entries alive (for tests: memory must not grow with logins). */
size_t limiter_entries(struct limiter *l);

/* Run fn(i, ctx) for i in [0, n) on `threads` threads, in order of i,
 * each index exactly once; returns when all are done.  A stop request
 * (net_cancel_all) makes the remaining indexes be skipped: skipped[i] is
 * set for them (skipped may be NULL). */
void sched_run(size_t n, int threads, void (*fn)(size_t i, void *ctx), void *ctx, bool *skipped);

#endif
