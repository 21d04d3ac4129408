/* engine_fixture: what the engine's units share (test_store_mem,
 * test_engine, test_crash): two in-memory worlds (store_mem.h), a state in
 * a temporary directory, stages, and ways to run the engine on them:
 * sync_folder() for one folder, account_run() for a whole mailbox, with or
 * without a fault plan (store_fault.h) in front of both stores.  Checks
 * compare a destination folder with its source as a multiset of messages
 * (content, flags, internal date).
 *
 * Temporary directories go under /dev/shm when it is there (the state
 * syncs every commit to disk, and the crash test makes thousands), else
 * $TMPDIR or /tmp.  Log lines go to /dev/null unless TEST_VERBOSE is set.
 */
#ifndef ENGINE_FIXTURE_H
#define ENGINE_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "account.h"
#include "state.h"
#include "store.h"
#include "store_fault.h"
#include "store_mem.h"
#include "sync.h"

struct fx {
	char dir[256];            /* the state's directory */
	struct state *state;
	int64_t account_id;       /* of the state's only account (sync_folder runs) */
	struct mem_world *src, *dst;
	struct stage sp, sp2;
	struct sync_limits lim;
	struct fault_run *fault;  /* when set, both stores go through it (plans
				   * tagged "source" and "destination") */
	struct fault_plan src_plan, dst_plan;
	struct folder_map_opts map;
	struct limiter *src_lim, *dst_lim;
	struct store_endpoint src_ep, dst_ep;
	bool pipeline;            /* sync_folder runs with a second stage */
	bool subscribe;           /* account runs copy subscriptions */
	const struct sync_pass *pass;   /* sync_folder runs: the pass (NULL: all) */
};

/* Worlds with prefix "" and delimiter '/' on both sides (change them with
 * fx_worlds).  Returns 0 or -1 (cmocka setup). */
int fx_setup(void **state);
int fx_teardown(void **state);
/* Replace the worlds: source and destination namespaces. */
void fx_worlds(struct fx *fx, const char *src_prefix, char src_delim, const char *dst_prefix,
	       char dst_delim);

/* Close and open the state again (as after a crash), or start a new one. */
void fx_reopen_state(struct fx *fx);
void fx_new_state(struct fx *fx);

/* A test message: headers (Message-ID <id> unless id is NULL, Date, From,
 * To, Subject), an empty line, body.  Into a new string (the caller frees). */
char *fx_msg(const char *id, const char *subject, const char *body);
/* Deliver fx_msg(...) to folder raw of world w with flags; its UID. */
uint32_t fx_add(struct mem_world *w, const char *raw, const char *id, const char *subject,
		const char *body, const char *flags);

/* sync_folder of source folder src_raw into destination folder dst_raw
 * (names in '/' form are the same as the raw ones: prefix "" and '/'), as
 * account.c runs it: STATUS of the source first, the destination folder
 * "listed" when it exists.  Returns sync_folder's result. */
int fx_sync(struct fx *fx, const char *src_raw, const char *dst_raw, struct sync_counts *c,
	    struct tr_error *err);
/* fx_sync, asserting success: the counts. */
struct sync_counts fx_sync_ok(struct fx *fx, const char *src_raw, const char *dst_raw);

/* account_run of the whole mailbox (max_sessions 1, retries 1); res is
 * freed by the caller (account_result_free).  Returns account_run's. */
int fx_account(struct fx *fx, struct account_result *res);

/* Assert that folder dst_raw of the destination holds exactly the messages
 * of src_raw of the source (content rewritten by the mask, flags, date),
 * as multisets. */
void fx_assert_same(struct fx *fx, const char *src_raw, const char *dst_raw, unsigned rewrite);
/* The same as a verdict, with the reason in why (for the crash test). */
bool fx_same(struct fx *fx, const char *src_raw, const char *dst_raw, unsigned rewrite,
	     char *why, size_t len);
/* Messages in folder raw of w. */
size_t fx_count(struct mem_world *w, const char *raw);

#endif
