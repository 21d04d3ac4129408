/* store_fault: a store that wraps another and fails one of its operations,
 * one of store.h's drivers ("fault"), as isync's proxy driver wraps any
 * store.
 *
 * store_conf.arg is a fault_plan: the driver and conf of the store inside,
 * and the fault_run it belongs to.  A fault_run is shared by every store of
 * one run (source and destination, every worker): it counts their
 * operations (open, list, status_many, command_many, open_folder,
 * open_fetch, fetch_meta, fetch_bodies, append, set_flags, quota; not
 * close, nor what asks the store itself: broken, caps, where, transport)
 * in the order they start, and applies one rule:
 *   FAULT_STOP_AT n:  operation n and every later one fail with
 *                     TR_ERR_STOPPED and do nothing, as if the process
 *                     died just before operation n;
 *   FAULT_DROP_AT n:  operation n fails with TR_ERR_TEMP, doing nothing,
 *                     and leaves its store broken (a dropped connection);
 *   FAULT_LOSE_APPEND n: the nth append is done by the store inside, then
 *                     fails with TR_ERR_TEMP and leaves its store broken
 *                     (the connection dropped before the reply came).
 * A clean run (FAULT_NONE) tells how many operations and appends a run
 * makes, to enumerate the points to fail at.
 *
 * A rule may count the operations of one side only (fault_run_only: the
 * stores whose plan has that tag): the engine runs the source and the
 * destination in threads of their own (one opens a folder while the other
 * does; one fetches the next batch while the other appends), so the order
 * of two sides' operations varies from run to run, but each side's own
 * operations come one after another, always in the same order.
 * Threading: a fault_run is locked, so stores in several threads may share
 * it; the numbering of operations of two threads follows the order in
 * which they start.  Ownership: plans and runs are the caller's and must
 * outlive the stores that use them.
 */
#ifndef TRASLOCO_STORE_FAULT_H
#define TRASLOCO_STORE_FAULT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "store.h"

extern const struct store_driver store_fault_driver;

enum fault_rule { FAULT_NONE = 0, FAULT_STOP_AT, FAULT_DROP_AT, FAULT_LOSE_APPEND };

struct fault_run {
	pthread_mutex_t lock;
	enum fault_rule rule;
	uint64_t n;               /* the operation (or append) the rule names, from 1 */
	const char *only;         /* NULL, or the tag of the plans whose operations the
				   * rule counts (borrowed) */
	uint64_t ops;             /* operations of every store so far */
	uint64_t appends;         /* appends of every store so far */
	uint64_t counted;         /* operations the rule counts (all, or only's) */
	uint64_t counted_appends; /* appends the rule counts */
	bool fired;               /* the rule has failed an operation */
	bool stopped;             /* FAULT_STOP_AT fired: everything fails from now on */
};

/* What a fault store wraps.  inner.ep and inner.cr, when NULL, are the
 * fault store's own (store_conf.ep, .cr); inner.arg is the inner driver's. */
struct fault_plan {
	const struct store_driver *inner_drv;
	struct store_conf inner;
	struct fault_run *run;
	const char *tag;          /* for fault_run_only ("source", "destination"), or NULL */
};

void fault_run_init(struct fault_run *r, enum fault_rule rule, uint64_t n);
/* The rule counts the operations of the stores whose plan has this tag only
 * (borrowed; set before the run). */
void fault_run_only(struct fault_run *r, const char *tag);
void fault_run_destroy(struct fault_run *r);
/* What the run counted (every store's; with fault_run_only, the tagged
 * stores' only), and whether its rule fired. */
uint64_t fault_run_ops(struct fault_run *r);
uint64_t fault_run_appends(struct fault_run *r);
bool fault_run_fired(struct fault_run *r);

#endif
