/* The exhaustive crash test: a small mailbox (4 folders, up to 20 messages
 * with genuine duplicates and one without Message-ID, batches of 2)
 * migrated by account_run() from one in-memory store to another.  A clean
 * run counts the store operations of each side and the appends; then, for
 * every operation N of each side, a run dies at N (store_fault.h: N and
 * everything after it fail, nothing is done), the source changes flags
 * meanwhile, the state is reopened, runs without faults go on until one
 * ends well, and the destination must hold exactly the source's multiset
 * of messages (content, flags, date) in every folder, and a last run copy
 * nothing.  The same for every append whose reply is lost, and (not
 * counted as crashes) for a connection dropped at every operation, the
 * run going on with new sessions.  Scenarios: onto an empty destination,
 * onto one holding some of the messages already (match mode), onto one
 * without UIDPLUS nor CONDSTORE that alters what it stores (munge8bit,
 * Received); and the same two after a complete first run, with news on
 * the source (new messages, a new folder, flag changes): the ledger's
 * pending rows. */
#include "config.h"

#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "engine_fixture.h"

static const char *const folders[] = { "INBOX", "Sent", "Archive/2023", "Projects" };
#define N_FOLDERS (sizeof(folders) / sizeof(folders[0]))

static unsigned crash_points, drop_points;

enum scenario { EMPTY_DST, PARTIAL_DST, ALTERING_DST, INCREMENTAL, INCREMENTAL_ALTERING };

static void source(struct fx *fx)
{
	assert_int_equal(mem_folder_add(fx->src, "Sent", ROLE_SENT, true), 0);
	assert_int_equal(mem_folder_add(fx->src, "Archive", ROLE_NONE, false), 0);
	assert_int_equal(mem_folder_add(fx->src, "Archive/2023", ROLE_NONE, true), 0);
	fx_add(fx->src, "INBOX", "a@src", "hello", "body a", "\\Seen");
	fx_add(fx->src, "INBOX", "a@src", "hello", "body a", "\\Seen");           /* duplicate */
	fx_add(fx->src, "INBOX", "b@src", "caf\xc3\xa9", "body b", "\\Flagged $Work");
	fx_add(fx->src, "INBOX", NULL, "no id", "body c", "");
	fx_add(fx->src, "INBOX", "d@src", "re: hello", "body d", "\\Answered \\Seen");
	fx_add(fx->src, "Sent", "s1@src", "sent one", "body s1", "\\Seen");
	fx_add(fx->src, "Sent", "s2@src", "sent two", "body s2", "\\Seen");
	fx_add(fx->src, "Sent", "s2@src", "sent two", "body s2", "");               /* other flags */
	fx_add(fx->src, "Sent", "s3@src", "sent three", "body s3", "\\Seen \\Draft");
	fx_add(fx->src, "Archive/2023", "o1@src", "old one", "body o1", "\\Seen");
	fx_add(fx->src, "Archive/2023", "o2@src", "old two", "body o2", "\\Deleted");
	fx_add(fx->src, "Archive/2023", "o1@src", "old one", "body o1", "\\Seen");  /* duplicate */
}

/* What the source gets between two runs: new messages (one a genuine
 * duplicate of a message copied before), a new folder, and flag changes
 * (not for a destination without UIDPLUS: the engine does not know which
 * copy to change, see sync.c's plan_ledger). */
static void news(struct fx *fx, bool flags)
{
	fx_add(fx->src, "INBOX", "a@src", "hello", "body a", "\\Seen");
	fx_add(fx->src, "INBOX", "e@src", "news", "body e", "");
	fx_add(fx->src, "INBOX", "f@src", "more news", "body f", "$Later");
	if (flags) {
		assert_int_equal(mem_msg_set_flags(fx->src, "INBOX", 3, "\\Seen"), 0);
		assert_int_equal(mem_msg_set_flags(fx->src, "Sent", 2, "\\Seen \\Flagged"), 0);
	}
	fx_add(fx->src, "Archive/2023", "o3@src", "old three", "body o3", "");
	assert_int_equal(mem_folder_add(fx->src, "Projects", ROLE_NONE, true), 0);
	fx_add(fx->src, "Projects", "p1@src", "plan", "body p1", "");
	fx_add(fx->src, "Projects", "p2@src", "plan b", "body p2", "\\Seen");
}

static bool altering(enum scenario sc)
{
	return sc == ALTERING_DST || sc == INCREMENTAL_ALTERING;
}

/* A run that may be stopped by run (NULL: none); its account status. */
static enum account_status one_run(struct fx *fx, struct fault_run *run, uint32_t *copied)
{
	struct account_result res;
	enum account_status s;

	fx->fault = run;
	fx_account(fx, &res);
	fx->fault = NULL;
	s = res.status;
	if (copied != NULL)
		*copied = res.total.copied;
	account_result_free(&res);
	return s;
}

/* New worlds for the scenario, and a new state; for the incremental ones,
 * a first complete run before the news. */
static void reset(struct fx *fx, enum scenario sc)
{
	struct mem_opts o = { 0 };

	fx_worlds(fx, "", '/', "", '/');
	source(fx);
	if (sc == PARTIAL_DST) {
		assert_int_equal(mem_folder_add(fx->dst, "Sent", ROLE_SENT, false), 0);
		fx_add(fx->dst, "INBOX", "a@src", "hello", "body a", "");
		fx_add(fx->dst, "INBOX", NULL, "no id", "body c", "");
		fx_add(fx->dst, "Sent", "s2@src", "sent two", "body s2", "\\Seen");
	}
	if (altering(sc)) {
		o.no_dst_ids = o.no_modseq = true;
		o.rewrite = MEM_REWRITE_MUNGE8BIT | MEM_REWRITE_RECEIVED;
	}
	mem_world_set_opts(fx->dst, &o);
	fx_new_state(fx);
	if (sc == INCREMENTAL || sc == INCREMENTAL_ALTERING) {
		assert_int_equal(one_run(fx, NULL, NULL), ACCOUNT_OK);
		news(fx, !o.no_dst_ids);
	}
}

/* What the destination must hold: the source's multiset in each folder,
 * plus (PARTIAL_DST) what it held of its own beyond the source's. */
static bool check(struct fx *fx, enum scenario sc, char *why, size_t len)
{
	unsigned rewrite = altering(sc) ? MEM_REWRITE_MUNGE8BIT | MEM_REWRITE_RECEIVED : 0;

	for (size_t i = 0; i < N_FOLDERS; i++)
		if (mem_folder_exists(fx->src, folders[i]) &&
		    !fx_same(fx, folders[i], folders[i], rewrite, why, len))
			return false;
	return true;
}

/* While the migration is down, the source's user goes on reading: a
 * keyword on every other message (not with a destination without UIDPLUS:
 * see news). */
static void meanwhile(struct fx *fx, enum scenario sc)
{
	if (altering(sc))
		return;
	for (size_t i = 0; i < N_FOLDERS; i++) {
		struct mem_msg_copy *v;
		size_t n;
		char flags[256];

		if (mem_folder_read(fx->src, folders[i], &v, &n) < 0)
			continue;
		for (size_t k = 0; k < n; k += 2) {
			snprintf(flags, sizeof(flags), "%s $Meanwhile", v[k].flags);
			assert_int_equal(mem_msg_set_flags(fx->src, folders[i], v[k].uid, flags), 0);
		}
		mem_msgs_free(v, n);
	}
}

/* After a crash: the source changes, the state is reopened, runs finish,
 * and the destination is checked. */
static void recover(struct fx *fx, enum scenario sc, const char *what, uint64_t n)
{
	char why[512];
	uint32_t copied = 0;
	int runs = 0;

	meanwhile(fx, sc);
	/* after a dropped connection the process lives on with its state */
	if (strncmp(what, "drop", 4) != 0)
		fx_reopen_state(fx);
	while (one_run(fx, NULL, NULL) != ACCOUNT_OK)
		if (++runs == 3)
			fail_msg("scenario %d, %s %" PRIu64 ": no run ends well", sc, what, n);
	if (!check(fx, sc, why, sizeof(why)))
		fail_msg("scenario %d, %s %" PRIu64 ": %s", sc, what, n, why);
	if (one_run(fx, NULL, &copied) != ACCOUNT_OK || copied != 0)
		fail_msg("scenario %d, %s %" PRIu64 ": a last run copied %u", sc, what, n, copied);
	if (strncmp(what, "drop", 4) != 0)
		crash_points++;
	else
		drop_points++;
}

/* How many operations (and appends) of side a clean run makes. */
static void clean_run(struct fx *fx, enum scenario sc, const char *side, uint64_t *ops,
		      uint64_t *appends)
{
	struct fault_run run;
	char why[512];

	reset(fx, sc);
	fault_run_init(&run, FAULT_NONE, 0);
	fault_run_only(&run, side);
	assert_int_equal(one_run(fx, &run, NULL), ACCOUNT_OK);
	*ops = fault_run_ops(&run);
	*appends = fault_run_appends(&run);
	fault_run_destroy(&run);
	if (!check(fx, sc, why, sizeof(why)))
		fail_msg("scenario %d, clean run: %s", sc, why);
}

/* Every crash point of scenario sc: a stop at each operation of each side
 * (each side's operations come in a fixed order; see store_fault.h), then
 * a lost reply of each append. */
static void crash_everywhere(struct fx *fx, enum scenario sc)
{
	static const char *const sides[] = { "destination", "source" };
	struct fault_run run;
	uint64_t ops[2], appends, dummy, n;
	char what[64];

	fx->lim.batch_count = 2;
	clean_run(fx, sc, sides[0], &ops[0], &appends);
	clean_run(fx, sc, sides[1], &ops[1], &dummy);
	assert_true(appends >= 3);
	for (size_t s = 0; s < 2; s++) {
		snprintf(what, sizeof(what), "stop at %s operation", sides[s]);
		for (n = 1; n <= ops[s]; n++) {
			reset(fx, sc);
			fault_run_init(&run, FAULT_STOP_AT, n);
			fault_run_only(&run, sides[s]);
			assert_int_not_equal(one_run(fx, &run, NULL), ACCOUNT_OK);
			assert_true(fault_run_fired(&run));
			fault_run_destroy(&run);
			recover(fx, sc, what, n);
		}
	}
	/* A dropped connection: that operation fails, the run goes on with
	 * new sessions for the next folders, and the next run finishes. */
	for (size_t s = 0; s < 2; s++) {
		snprintf(what, sizeof(what), "drop at %s operation", sides[s]);
		for (n = 1; n <= ops[s]; n++) {
			reset(fx, sc);
			fault_run_init(&run, FAULT_DROP_AT, n);
			fault_run_only(&run, sides[s]);
			assert_int_not_equal(one_run(fx, &run, NULL), ACCOUNT_OK);
			assert_true(fault_run_fired(&run));
			fault_run_destroy(&run);
			recover(fx, sc, what, n);
		}
	}
	for (n = 1; n <= appends; n++) {
		reset(fx, sc);
		fault_run_init(&run, FAULT_LOSE_APPEND, n);
		one_run(fx, &run, NULL);
		assert_true(fault_run_fired(&run));
		fault_run_destroy(&run);
		recover(fx, sc, "lose the reply of append", n);
	}
	print_message("scenario %d: %" PRIu64 " destination and %" PRIu64 " source operations, "
		      "%" PRIu64 " appends in a clean run\n", sc, ops[0], ops[1], appends);
}

static void test_crash_empty_destination(void **state)
{
	crash_everywhere(*state, EMPTY_DST);
}

static void test_crash_partial_destination(void **state)
{
	crash_everywhere(*state, PARTIAL_DST);
}

static void test_crash_altering_destination(void **state)
{
	crash_everywhere(*state, ALTERING_DST);
}

static void test_crash_incremental(void **state)
{
	crash_everywhere(*state, INCREMENTAL);
}

static void test_crash_incremental_altering(void **state)
{
	crash_everywhere(*state, INCREMENTAL_ALTERING);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_crash_empty_destination, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_crash_partial_destination, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(test_crash_altering_destination, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(test_crash_incremental, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_crash_incremental_altering, fx_setup,
						fx_teardown),
	};
	int r = cmocka_run_group_tests(tests, NULL, NULL);

	print_message("%u crash points (and %u dropped connections)\n", crash_points, drop_points);
	return r;
}
