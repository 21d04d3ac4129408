/* throttle: how fast, and how much a day, trasloco may take from a server.
 *
 * One throttle per server of a job (source and destination), shared by
 * every account thread of the job in this process.  Three limits, each
 * optional (0: none):
 *  - bytes per second and messages per second: a token bucket in its
 *    "virtual time" form (GCRA): every taker advances the time at which
 *    the server is next free by n/rate and sleeps until that time less a
 *    tolerance of THROTTLE_BURST_S, so that the rate is smooth: what goes
 *    ahead of the schedule is at most the tolerance's worth plus the one
 *    chunk or message being taken.  The imap module takes bytes as a body
 *    literal arrives (fetch) or is written (append), in chunks of at most
 *    64 kB, and one message token before each message.
 *    When the state is one that several processes share (PostgreSQL: a
 *    fleet's workers, or runs on several hosts), the schedule is the
 *    state's (state_rate_take), under the throttle's key, so the rate holds
 *    for all of them together: each process takes slices of
 *    THROTTLE_SLICE_S of the rate from it and spends them locally; what
 *    goes ahead of the schedule is then at most a slice and the tolerance
 *    per process.  Jobs with the same server share its schedule, each
 *    taking at its own rate.  While the state is out of reach the process
 *    keeps the schedule alone (asking the state again every 5 s; a warning
 *    a minute says so).
 *  - bytes per UTC day: reserved per batch by the sync before it fetches,
 *    from the exact sizes the source announced; a batch that does not fit
 *    is cut to the messages that do, and when none fits the account
 *    pauses until the next UTC midnight (TR_ERR_PAUSED).  The day's count
 *    is kept in the state (state_day_bytes_add) under the throttle's key,
 *    so another run the same day, or another worker of a fleet, knows
 *    what is left; a reservation that finds others spent the remainder
 *    between its read and its add gives back what no longer fits.  A
 *    reservation counts even when the fetch then fails: the budget errs
 *    on the server's side.
 * Units: decimal, as network rates are (k = 1000, M = 10^6, G = 10^9).
 *
 * The parsers of its texts (option values, servers' hints) are in
 * throttle_parse.c, which depends on nothing.
 *
 * A NULL throttle is a valid one with no limits: callers need not check.
 * Threading: thread-safe, one mutex per throttle, never held while
 * sleeping; a day reservation calls the state under it, so that two
 * reservations of one process never both spend the same remainder.
 * Ownership: throttle_new's result is the caller's
 * (throttle_free); the state given to throttle_set_state is borrowed and
 * must outlive the throttle's use.
 */
#ifndef TRASLOCO_THROTTLE_H
#define TRASLOCO_THROTTLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "error.h"

struct state;

/* The tolerance of the rate limits, in seconds of the rate. */
#define THROTTLE_BURST_S 0.02
/* A process sharing a rate with others takes it in slices of this many
 * seconds of the rate (a round trip to the state each). */
#define THROTTLE_SLICE_S 0.05

struct throttle_limits {
	uint64_t bytes_per_second;   /* 0: none */
	uint64_t messages_per_second;
	uint64_t bytes_per_day;
};

struct throttle;

/* NULL when lim has no limit at all (then nothing to free) or out of
 * memory (*oom set).  key names the server in the state's day counts
 * ("src 192.0.2.1:993"), label in messages ("the source"). */
struct throttle *throttle_new(const char *key, const char *label,
			      const struct throttle_limits *lim, bool *oom);
void throttle_free(struct throttle *t);
/* Keep the day's count in st (NULL: in memory only). */
void throttle_set_state(struct throttle *t, struct state *st);

/* Wait until n more bytes may go (bytes per second).  Returns 0, or -1
 * when the run or the caller's scope was stopped meanwhile (net.h). */
int throttle_bytes(struct throttle *t, uint64_t n);
/* Wait until one more message may go (messages per second). */
int throttle_message(struct throttle *t);

/* A socket to the throttled server: its receive buffer bounded so that
 * what the kernel takes ahead of the throttle is no burst at the server
 * (left alone, Linux grows it to megabytes): about a sixteenth of a
 * second of the byte rate for the process, split among the sockets open
 * when each is tuned (at least 32 kB each), so that sessions starting
 * together do not each fill a buffer of their own at once.  That is a TCP
 * window of rate/16 or less: over a path with a round trip longer than
 * about 60 ms, the sessions together get less than the rate.  Nothing
 * without a byte rate.  throttle_socket_closed gives a tuned socket's
 * share back when it closes. */
void throttle_tune_socket(struct throttle *t, int fd);
void throttle_socket_closed(struct throttle *t);

/* The message rate, 0 when none: a batch of small messages arrives whole
 * in the kernel's buffers, before any waits, so the sync keeps its
 * batches to a fifth of a second's worth of messages. */
uint64_t throttle_messages_per_second(const struct throttle *t);

/* Reserve the day's bytes for messages of sizes[0..n): *fit_r is how many
 * of them, from the first, fit in what is left of today's budget (all
 * when there is no day budget).  When not all fit, *resume_r is when the
 * budget is new again (the next UTC midnight).  Returns 0, or -1 with err
 * when the state could not be read or written. */
int throttle_day_reserve(struct throttle *t, const uint64_t *sizes, size_t n, size_t *fit_r,
			 time_t *resume_r, struct tr_error *err);

/* "2000000", "2M", "500k", "1.5G" (decimal units, an optional trailing
 * "B"): *v_r bytes.  Returns 0, or -1 when the text is not such a count,
 * is 0, or is over 10^15. */
int throttle_parse_bytes(const char *s, uint64_t *v_r);

/* How long a server's text asks us to back off, in milliseconds: Office
 * 365's "Suggested Backoff Time: N milliseconds" (or "N seconds"); 0 when
 * it says nothing of the kind, or more than a day. */
long long throttle_hint_ms(const char *text);

/* "2026-12-06 00:00:00 UTC" into buf. */
const char *throttle_time_text(time_t t, char *buf, size_t size);

#endif
