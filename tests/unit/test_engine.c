/* Units of the engine without a server: the planner and the copy of
 * sync_folder() (and account_run() where folders and plans matter) from an
 * in-memory store to another (store_mem.h).  Ledger mode, match mode,
 * genuine duplicates, messages without Message-ID, UIDVALIDITY changes on
 * either side, what a destination can and cannot do, destinations that
 * alter what they store, appends whose reply was lost, refused names. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "engine_fixture.h"
#include "net.h"

/* Five messages in INBOX of the source, with assorted flags. */
static void five(struct fx *fx)
{
	fx_add(fx->src, "INBOX", "1@src", "one", "first body", "\\Seen");
	fx_add(fx->src, "INBOX", "2@src", "two", "second body", "");
	fx_add(fx->src, "INBOX", "3@src", "three", "third body", "\\Flagged $Work");
	fx_add(fx->src, "INBOX", "4@src", "four", "fourth body", "\\Seen \\Answered");
	fx_add(fx->src, "INBOX", "5@src", "five", "fifth body", "\\Draft");
}

/* ---- ledger mode --------------------------------------------------------- */

static void test_ledger_second_run_copies_nothing(void **state)
{
	struct fx *fx = *state;
	struct sync_counts c;
	struct fault_run run;

	five(fx);
	c = fx_sync_ok(fx, "INBOX", "INBOX");
	assert_int_equal(c.copied, 5);
	assert_int_equal(c.failed, 0);
	fx_assert_same(fx, "INBOX", "INBOX", 0);
	/* Unchanged, with modseqs: STATUS alone tells, no other operation. */
	fault_run_init(&run, FAULT_NONE, 0);
	fx->fault = &run;
	c = fx_sync_ok(fx, "INBOX", "INBOX");
	fx->fault = NULL;
	assert_int_equal(c.copied, 0);
	assert_int_equal(c.present, 5);
	assert_int_equal(fault_run_ops(&run), 3);     /* open, open, status */
	fault_run_destroy(&run);
	assert_int_equal(mem_world_appended(fx->dst), 5);
	fx_assert_same(fx, "INBOX", "INBOX", 0);
}

static void test_ledger_copies_only_new(void **state)
{
	struct fx *fx = *state;
	struct sync_counts c;

	five(fx);
	fx_sync_ok(fx, "INBOX", "INBOX");
	fx_add(fx->src, "INBOX", "6@src", "six", "sixth body", "");
	fx_add(fx->src, "INBOX", "1@src", "one", "first body", "\\Seen");   /* a duplicate */
	c = fx_sync_ok(fx, "INBOX", "INBOX");
	assert_int_equal(c.copied, 2);
	assert_int_equal(c.present, 5);
	assert_int_equal(mem_world_appended(fx->dst), 7);
	fx_assert_same(fx, "INBOX", "INBOX", 0);
}

static void flags_propagate(struct fx *fx, bool modseq)
{
	struct mem_opts o = { .no_modseq = !modseq };
	struct sync_counts c;

	mem_world_set_opts(fx->src, &o);
	mem_world_set_opts(fx->dst, &o);
	five(fx);
	fx_sync_ok(fx, "INBOX", "INBOX");
	assert_int_equal(mem_msg_set_flags(fx->src, "INBOX", 2, "\\Seen $Later"), 0);
	assert_int_equal(mem_msg_set_flags(fx->src, "INBOX", 3, ""), 0);
	c = fx_sync_ok(fx, "INBOX", "INBOX");
	assert_int_equal(c.copied, 0);
	assert_int_equal(c.flags_updated, 2);
	fx_assert_same(fx, "INBOX", "INBOX", 0);
	c = fx_sync_ok(fx, "INBOX", "INBOX");
	assert_int_equal(c.flags_updated, 0);
	assert_int_equal(mem_world_appended(fx->dst), 5);
}

static void test_ledger_flags_propagate(void **state)
{
	flags_propagate(*state, true);
}

static void test_ledger_flags_propagate_without_modseqs(void **state)
{
	flags_propagate(*state, false);
}

static void test_ledger_expunged_on_source_stays(void **state)
{
	struct fx *fx = *state;
	struct sync_counts c;

	five(fx);
	fx_sync_ok(fx, "INBOX", "INBOX");
	assert_int_equal(mem_msg_expunge(fx->src, "INBOX", 2), 0);
	fx_add(fx->src, "INBOX", "6@src", "six", "sixth body", "");
	c = fx_sync_ok(fx, "INBOX", "INBOX");
	assert_int_equal(c.copied, 1);
	/* nothing is ever deleted on the destination */
	assert_int_equal(fx_count(fx->dst, "INBOX"), 6);
}

static void test_ledger_batches_pipelined(void **state)
{
	struct fx *fx = *state;
	struct sync_counts c;
	char id[32], subj[32];

	fx->lim.batch_count = 2;
	fx->pipeline = true;
	for (int i = 0; i < 9; i++) {
		snprintf(id, sizeof(id), "%d@batch", i);
		snprintf(subj, sizeof(subj), "batch %d", i);
		fx_add(fx->src, "INBOX", id, subj, "a body", i % 2 ? "\\Seen" : "");
	}
	c = fx_sync_ok(fx, "INBOX", "INBOX");
	assert_int_equal(c.copied, 9);
	fx_assert_same(fx, "INBOX", "INBOX", 0);
}

/* ---- match mode ---------------------------------------------------------- */

static void test_match_onto_nonempty_destination(void **state)
{
	struct fx *fx = *state;
	struct sync_counts c;
	uint32_t other;

	five(fx);
	/* three of them there already (one with other flags), and one of its own */
	fx_add(fx->dst, "INBOX", "1@src", "one", "first body", "\\Seen");
	fx_add(fx->dst, "INBOX", "3@src", "three", "third body", "");
	fx_add(fx->dst, "INBOX", "4@src", "four", "fourth body", "\\Seen \\Answered");
	other = fx_add(fx->dst, "INBOX", "own@dst", "its own", "not from the source", "");
	c = fx_sync_ok(fx, "INBOX", "INBOX");
	assert_int_equal(c.copied, 2);
	assert_int_equal(c.present, 3);
	assert_int_equal(c.flags_updated, 1);
	assert_int_equal(fx_count(fx->dst, "INBOX"), 6);
	assert_int_equal(mem_msg_expunge(fx->dst, "INBOX", other), 0);
	fx_assert_same(fx, "INBOX", "INBOX", 0);
	/* and then the ledger */
	c = fx_sync_ok(fx, "INBOX", "INBOX");
	assert_int_equal(c.copied, 0);
}

static void test_match_genuine_duplicates(void **state)
{
	struct fx *fx = *state;
	struct sync_counts c;

	for (int i = 0; i < 3; i++)
		fx_add(fx->src, "INBOX", "a@dup", "A", "same body", "\\Seen");
	for (int i = 0; i < 2; i++)
		fx_add(fx->src, "INBOX", "b@dup", "B", "same body", "");
	fx_add(fx->src, "INBOX", "c@dup", "C", "same body", "");
	fx_add(fx->dst, "INBOX", "a@dup", "A", "same body", "\\Seen");
	fx_add(fx->dst, "INBOX", "b@dup", "B", "same body", "");
	fx_add(fx->dst, "INBOX", "b@dup", "B", "same body", "");
	c = fx_sync_ok(fx, "INBOX", "INBOX");
	assert_int_equal(c.copied, 3);
	assert_int_equal(c.present, 3);
	fx_assert_same(fx, "INBOX", "INBOX", 0);
	/* a new state: the same multiset, nothing more */
	fx_new_state(fx);
	c = fx_sync_ok(fx, "INBOX", "INBOX");
	assert_int_equal(c.copied, 0);
	assert_int_equal(c.present, 6);
	fx_assert_same(fx, "INBOX", "INBOX", 0);
}

static void test_match_without_message_id(void **state)
{
	struct fx *fx = *state;
	struct sync_counts c;

	/* Same headers and size, different bodies: the fingerprint cannot tell. */
	fx_add(fx->src, "INBOX", NULL, "note", "body-1", "");
	fx_add(fx->src, "INBOX", NULL, "note", "body-2", "");
	fx_add(fx->src, "INBOX", NULL, "note", "body-2", "");
	fx_add(fx->src, "INBOX", NULL, "other note", "a body", "");
	fx_add(fx->dst, "INBOX", NULL, "note", "body-2", "");
	c = fx_sync_ok(fx, "INBOX", "INBOX");
	assert_int_equal(c.copied, 3);
	assert_int_equal(c.present, 1);
	fx_assert_same(fx, "INBOX", "INBOX", 0);
	fx_new_state(fx);
	c = fx_sync_ok(fx, "INBOX", "INBOX");
	assert_int_equal(c.copied, 0);
	fx_assert_same(fx, "INBOX", "INBOX", 0);
}

static void test_match_same_headers_different_bodies(void **state)
{
	struct fx *fx = *state;
	struct sync_counts c;

	/* one Message-ID reused with two bodies of one size */
	fx_add(fx->src, "INBOX", "re@used", "same", "body AAAA", "\\Seen");
	fx_add(fx->src, "INBOX", "re@used", "same", "body BBBB", "\\Seen");
	fx_add(fx->dst, "INBOX", "re@used", "same", "body BBBB", "\\Seen");
	c = fx_sync_ok(fx, "INBOX", "INBOX");
	assert_int_equal(c.copied, 1);
	fx_assert_same(fx, "INBOX", "INBOX", 0);
}

/* ---- UIDVALIDITY changes ------------------------------------------------- */

static void test_uidvalidity_changed_on_source(void **state)
{
	struct fx *fx = *state;
	struct sync_counts c;

	five(fx);
	fx_sync_ok(fx, "INBOX", "INBOX");
	assert_int_equal(mem_folder_recreate(fx->src, "INBOX", true), 0);
	fx_add(fx->src, "INBOX", "6@src", "six", "sixth body", "");
	assert_int_equal(mem_msg_set_flags(fx->src, "INBOX", 1, "\\Seen \\Flagged"), 0);
	c = fx_sync_ok(fx, "INBOX", "INBOX");
	assert_int_equal(c.copied, 1);
	assert_int_equal(c.present, 5);
	assert_int_equal(c.flags_updated, 1);
	fx_assert_same(fx, "INBOX", "INBOX", 0);
	/* the ledger holds the new UIDs */
	fx_add(fx->src, "INBOX", "7@src", "seven", "seventh body", "");
	c = fx_sync_ok(fx, "INBOX", "INBOX");
	assert_int_equal(c.copied, 1);
	fx_assert_same(fx, "INBOX", "INBOX", 0);
}

static void test_uidvalidity_changed_on_destination(void **state)
{
	struct fx *fx = *state;
	struct sync_counts c;

	five(fx);
	fx_sync_ok(fx, "INBOX", "INBOX");
	assert_int_equal(mem_folder_recreate(fx->dst, "INBOX", true), 0);
	fx_add(fx->src, "INBOX", "6@src", "six", "sixth body", "");
	c = fx_sync_ok(fx, "INBOX", "INBOX");
	assert_int_equal(c.copied, 1);
	assert_int_equal(c.present, 5);
	fx_assert_same(fx, "INBOX", "INBOX", 0);
	/* Re-created empty: everything again.  (Noticed when the source folder
	 * has news: an unchanged source folder costs no look at the
	 * destination, as test_resume.sh says.) */
	assert_int_equal(mem_folder_recreate(fx->dst, "INBOX", false), 0);
	fx_add(fx->src, "INBOX", "7@src", "seven", "seventh body", "");
	c = fx_sync_ok(fx, "INBOX", "INBOX");
	assert_int_equal(c.copied, 7);
	fx_assert_same(fx, "INBOX", "INBOX", 0);
}

/* ---- what the destination can do ----------------------------------------- */

static void test_destination_without_dst_ids(void **state)
{
	struct fx *fx = *state;
	struct mem_opts o = { .no_dst_ids = true };
	struct sync_counts c;

	mem_world_set_opts(fx->dst, &o);
	five(fx);
	c = fx_sync_ok(fx, "INBOX", "INBOX");
	assert_int_equal(c.copied, 5);
	fx_add(fx->src, "INBOX", "6@src", "six", "sixth body", "");
	c = fx_sync_ok(fx, "INBOX", "INBOX");
	assert_int_equal(c.copied, 1);
	c = fx_sync_ok(fx, "INBOX", "INBOX");
	assert_int_equal(c.copied, 0);
	fx_assert_same(fx, "INBOX", "INBOX", 0);
}

static void test_destination_without_modseqs(void **state)
{
	struct fx *fx = *state;
	struct mem_opts o = { .no_modseq = true };
	struct sync_counts c;

	mem_world_set_opts(fx->dst, &o);
	five(fx);
	fx_sync_ok(fx, "INBOX", "INBOX");
	assert_int_equal(mem_msg_set_flags(fx->src, "INBOX", 5, ""), 0);
	fx_add(fx->src, "INBOX", "6@src", "six", "sixth body", "\\Seen");
	c = fx_sync_ok(fx, "INBOX", "INBOX");
	assert_int_equal(c.copied, 1);
	assert_int_equal(c.flags_updated, 1);
	fx_assert_same(fx, "INBOX", "INBOX", 0);
}

static void test_append_limit(void **state)
{
	struct fx *fx = *state;
	struct mem_opts o = { .append_limit = 400 };
	char big[1000];
	struct sync_counts c;

	mem_world_set_opts(fx->dst, &o);
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	five(fx);
	fx_add(fx->src, "INBOX", "big@src", "big", big, "");
	c = fx_sync_ok(fx, "INBOX", "INBOX");
	assert_int_equal(c.copied, 5);
	assert_int_equal(c.failed, 1);
	assert_int_equal(fx_count(fx->dst, "INBOX"), 5);
	/* tried again, reported again, never copied */
	c = fx_sync_ok(fx, "INBOX", "INBOX");
	assert_int_equal(c.copied, 0);
	assert_int_equal(c.failed, 1);
	assert_int_equal(mem_world_appended(fx->dst), 5);
	/* the limit goes: it is copied */
	o.append_limit = 0;
	mem_world_set_opts(fx->dst, &o);
	c = fx_sync_ok(fx, "INBOX", "INBOX");
	assert_int_equal(c.copied, 1);
	assert_int_equal(c.failed, 0);
	fx_assert_same(fx, "INBOX", "INBOX", 0);
}

static void test_nul_bytes_and_binary(void **state)
{
	struct fx *fx = *state;
	static const char nul_msg[] = "Message-ID: <nul@src>\r\nSubject: nul\r\n\r\na\0b\r\n";
	struct mem_opts o = { .no_binary = true };
	struct sync_counts c;

	mem_world_set_opts(fx->dst, &o);
	fx_add(fx->src, "INBOX", "1@src", "one", "first body", "");
	assert_int_equal(mem_msg_add(fx->src, "INBOX", nul_msg, sizeof(nul_msg) - 1, "", NULL,
				     NULL), 0);
	c = fx_sync_ok(fx, "INBOX", "INBOX");
	assert_int_equal(c.copied, 1);
	assert_int_equal(c.failed, 1);
	/* a destination with BINARY takes it, byte for byte */
	o.no_binary = false;
	mem_world_set_opts(fx->dst, &o);
	c = fx_sync_ok(fx, "INBOX", "INBOX");
	assert_int_equal(c.copied, 1);
	assert_int_equal(c.failed, 0);
	{
		struct mem_msg_copy *v;
		size_t n;

		assert_int_equal(mem_folder_read(fx->dst, "INBOX", &v, &n), 0);
		assert_int_equal(n, 2);
		assert_int_equal(v[1].len, sizeof(nul_msg) - 1);
		assert_memory_equal(v[1].data, nul_msg, sizeof(nul_msg) - 1);
		mem_msgs_free(v, n);
	}
}

/* ---- destinations that alter what they store (msgsig.h) ------------------- */

static void altering_destination(struct fx *fx, unsigned rewrite)
{
	static const char lf_msg[] = "Message-ID: <lf@src>\nSubject: bare LF\nFrom: a@src\n\n"
				     "line one\nline two\n";
	struct mem_opts o = { .rewrite = rewrite };
	struct sync_counts c;

	mem_world_set_opts(fx->dst, &o);
	five(fx);
	fx_add(fx->src, "INBOX", "8bit@src", "caf\xc3\xa9 cr\xc3\xa8me", "8-bit subject", "\\Seen");
	fx_add(fx->src, "INBOX", "8bit@src", "caf\xc3\xa9 cr\xc3\xa8me", "8-bit subject", "\\Seen");
	fx_add(fx->src, "INBOX", NULL, "\xe2\x82\xac no id", "8-bit, no Message-ID", "");
	assert_int_equal(mem_msg_add(fx->src, "INBOX", lf_msg, sizeof(lf_msg) - 1, "", NULL, NULL),
			 0);
	c = fx_sync_ok(fx, "INBOX", "INBOX");
	assert_int_equal(c.copied, 9);
	fx_assert_same(fx, "INBOX", "INBOX", rewrite);
	/* a new state: the altered copies are found by content, nothing twice,
	 * and their flags follow the source's */
	assert_int_equal(mem_msg_set_flags(fx->src, "INBOX", 6, "\\Seen $Cafe"), 0);
	assert_int_equal(mem_msg_set_flags(fx->src, "INBOX", 9, "\\Flagged"), 0);
	fx_new_state(fx);
	c = fx_sync_ok(fx, "INBOX", "INBOX");
	assert_int_equal(c.copied, 0);
	assert_int_equal(c.present, 9);
	assert_int_equal(c.flags_updated, 2);
	assert_int_equal(mem_world_appended(fx->dst), 9);
	fx_assert_same(fx, "INBOX", "INBOX", rewrite);
	/* and the ledger it made holds */
	fx_add(fx->src, "INBOX", "new@src", "new", "a new one", "");
	c = fx_sync_ok(fx, "INBOX", "INBOX");
	assert_int_equal(c.copied, 1);
	fx_assert_same(fx, "INBOX", "INBOX", rewrite);
}

static void test_altering_destination_munge8bit(void **state)
{
	altering_destination(*state, MEM_REWRITE_MUNGE8BIT);
}

static void test_altering_destination_received(void **state)
{
	altering_destination(*state, MEM_REWRITE_RECEIVED);
}

static void test_altering_destination_crlf(void **state)
{
	altering_destination(*state, MEM_REWRITE_CRLF);
}

static void test_altering_destination_all(void **state)
{
	altering_destination(*state, MEM_REWRITE_MUNGE8BIT | MEM_REWRITE_RECEIVED |
			     MEM_REWRITE_CRLF);
}

/* ---- appends whose reply never came ---------------------------------------- */

/* A run after a complete one (so the ledger is in use) loses the reply of
 * its first append: the next run settles the pending rows by looking at the
 * destination, copying again only what is not there. */
static void lost_reply(struct fx *fx, const struct mem_opts *o, unsigned rewrite)
{
	struct fault_run run;
	struct sync_counts c;
	struct tr_error err;

	mem_world_set_opts(fx->dst, o);
	fx->lim.batch_count = 2;
	five(fx);
	fx_sync_ok(fx, "INBOX", "INBOX");
	fx_add(fx->src, "INBOX", "8bit@src", "\xc3\xa9t\xc3\xa9", "8-bit subject", "");
	fx_add(fx->src, "INBOX", "1@src", "one", "first body", "\\Seen");   /* a duplicate */
	fx_add(fx->src, "INBOX", "7@src", "seven", "seventh body", "");
	fx_add(fx->src, "INBOX", "8@src", "eight", "eighth body", "");
	fault_run_init(&run, FAULT_LOSE_APPEND, 1);
	fx->fault = &run;
	assert_int_equal(fx_sync(fx, "INBOX", "INBOX", &c, &err), -1);
	assert_int_equal(err.kind, TR_ERR_TEMP);
	assert_true(fault_run_fired(&run));
	fx->fault = NULL;
	fault_run_destroy(&run);
	assert_int_equal(fx_count(fx->dst, "INBOX"), 7);
	fx_reopen_state(fx);
	c = fx_sync_ok(fx, "INBOX", "INBOX");
	assert_int_equal(c.copied, 2);
	assert_int_equal(mem_world_appended(fx->dst), 9);
	fx_assert_same(fx, "INBOX", "INBOX", rewrite);
}

static void test_lost_reply_settled(void **state)
{
	struct mem_opts o = { 0 };

	lost_reply(*state, &o, 0);
}

static void test_lost_reply_settled_without_dst_ids(void **state)
{
	struct mem_opts o = { .no_dst_ids = true, .no_modseq = true };

	lost_reply(*state, &o, 0);
}

static void test_lost_reply_settled_altered(void **state)
{
	struct mem_opts o = { .rewrite = MEM_REWRITE_MUNGE8BIT | MEM_REWRITE_RECEIVED };

	lost_reply(*state, &o, o.rewrite);
}

/* A run dies after its first batch (done rows above the saved scan
 * position); before the next run the source changes the flags of the
 * messages that batch copied.  The next run must carry the change. */
static void test_flags_changed_after_crash(void **state)
{
	struct fx *fx = *state;
	struct fault_run run;
	struct sync_counts c;
	struct tr_error err;
	uint32_t a, b;

	fx->lim.batch_count = 2;
	five(fx);
	fx_sync_ok(fx, "INBOX", "INBOX");
	a = fx_add(fx->src, "INBOX", "6@src", "six", "sixth body", "");
	b = fx_add(fx->src, "INBOX", "7@src", "seven", "seventh body", "\\Seen");
	fx_add(fx->src, "INBOX", "8@src", "eight", "eighth body", "");
	/* destination operations: open, open_folder, append, append (stop) */
	fault_run_init(&run, FAULT_STOP_AT, 4);
	fault_run_only(&run, "destination");
	fx->fault = &run;
	assert_int_equal(fx_sync(fx, "INBOX", "INBOX", &c, &err), -1);
	assert_int_equal(err.kind, TR_ERR_STOPPED);
	fx->fault = NULL;
	fault_run_destroy(&run);
	assert_int_equal(fx_count(fx->dst, "INBOX"), 7);
	assert_int_equal(mem_msg_set_flags(fx->src, "INBOX", a, "\\Flagged"), 0);
	assert_int_equal(mem_msg_set_flags(fx->src, "INBOX", b, ""), 0);
	fx_reopen_state(fx);
	c = fx_sync_ok(fx, "INBOX", "INBOX");
	assert_int_equal(c.copied, 1);
	fx_assert_same(fx, "INBOX", "INBOX", 0);
}

/* After a lost reply, before the next run, the source folder gets a new
 * UIDVALIDITY (keep) or the destination folder does: the pending rows go
 * with the ledger, and matching by fingerprint finds what is there. */
static void lost_reply_then_new_uidvalidity(struct fx *fx, bool on_source)
{
	struct fault_run run;
	struct sync_counts c;
	struct tr_error err;

	fx->lim.batch_count = 2;
	five(fx);
	fx_sync_ok(fx, "INBOX", "INBOX");
	fx_add(fx->src, "INBOX", "6@src", "six", "sixth body", "");
	fx_add(fx->src, "INBOX", "1@src", "one", "first body", "\\Seen");   /* a duplicate */
	fx_add(fx->src, "INBOX", "7@src", "seven", "seventh body", "");
	fault_run_init(&run, FAULT_LOSE_APPEND, 1);
	fx->fault = &run;
	assert_int_equal(fx_sync(fx, "INBOX", "INBOX", &c, &err), -1);
	fx->fault = NULL;
	fault_run_destroy(&run);
	assert_int_equal(fx_count(fx->dst, "INBOX"), 7);
	assert_int_equal(mem_folder_recreate(on_source ? fx->src : fx->dst, "INBOX", true), 0);
	fx_reopen_state(fx);
	c = fx_sync_ok(fx, "INBOX", "INBOX");
	assert_int_equal(c.copied, 1);
	fx_assert_same(fx, "INBOX", "INBOX", 0);
}

static void test_lost_reply_then_source_uidvalidity(void **state)
{
	lost_reply_then_new_uidvalidity(*state, true);
}

static void test_lost_reply_then_destination_uidvalidity(void **state)
{
	lost_reply_then_new_uidvalidity(*state, false);
}

/* The source expunges a message the plan meant to copy, before its batch
 * is fetched (here: while the first batch is appended). */
struct vanish {
	struct mem_world *src;
	uint32_t uid;
	bool done;
};

static int expunge_on_append(void *ctx, const char *in, size_t len, char **out, size_t *out_len)
{
	struct vanish *v = ctx;

	if (!v->done) {
		v->done = true;
		assert_int_equal(mem_msg_expunge(v->src, "INBOX", v->uid), 0);
	}
	if ((*out = malloc(len + 1)) == NULL)
		return -1;
	memcpy(*out, in, len);
	*out_len = len;
	return 0;
}

static void test_vanished_while_copying(void **state)
{
	struct fx *fx = *state;
	struct vanish v = { fx->src, 5, false };
	struct mem_opts o = { .rewrite_fn = expunge_on_append, .rewrite_ctx = &v };
	struct sync_counts c;

	mem_world_set_opts(fx->dst, &o);
	fx->lim.batch_count = 2;
	five(fx);
	c = fx_sync_ok(fx, "INBOX", "INBOX");
	assert_true(v.done);
	assert_int_equal(c.copied, 4);
	assert_int_equal(c.vanished, 1);
	assert_int_equal(c.failed, 0);
	fx_assert_same(fx, "INBOX", "INBOX", 0);
	c = fx_sync_ok(fx, "INBOX", "INBOX");
	assert_int_equal(c.copied + c.failed + c.vanished, 0);
	fx_assert_same(fx, "INBOX", "INBOX", 0);
}

/* A destination that refuses a message without announcing why beforehand
 * ([OVERQUOTA]): reported, the rest copied, tried again on every run. */
static void test_refused_by_destination_retried(void **state)
{
	struct fx *fx = *state;
	struct mem_opts o = { .refuse_larger = 400 };
	char big[600];
	struct sync_counts c;

	mem_world_set_opts(fx->dst, &o);
	memset(big, 'y', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	fx->lim.batch_count = 3;
	fx_add(fx->src, "INBOX", "1@src", "one", "first body", "");
	fx_add(fx->src, "INBOX", "big@src", "big", big, "\\Seen");
	fx_add(fx->src, "INBOX", "3@src", "three", "third body", "");
	c = fx_sync_ok(fx, "INBOX", "INBOX");
	assert_int_equal(c.copied, 2);
	assert_int_equal(c.failed, 1);
	fx_add(fx->src, "INBOX", "4@src", "four", "fourth body", "");
	c = fx_sync_ok(fx, "INBOX", "INBOX");
	assert_int_equal(c.copied, 1);
	assert_int_equal(c.failed, 1);
	o.refuse_larger = 0;
	mem_world_set_opts(fx->dst, &o);
	c = fx_sync_ok(fx, "INBOX", "INBOX");
	assert_int_equal(c.copied, 1);
	assert_int_equal(c.failed, 0);
	fx_assert_same(fx, "INBOX", "INBOX", 0);
	c = fx_sync_ok(fx, "INBOX", "INBOX");
	assert_int_equal(c.copied + c.failed, 0);
}

/* The messages a destination refused are kept with their folder's report:
 * source UID and the server's reply, in the order refused, per folder; a
 * later run that copies them lists them no more. */
static void test_account_lists_refused_messages(void **state)
{
	struct fx *fx = *state;
	struct mem_opts o = { .refuse_larger = 400 };
	struct account_result res;
	char big[600];
	uint32_t u2, u4, a1;
	size_t i, listed = 0;

	mem_world_set_opts(fx->dst, &o);
	memset(big, 'y', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(mem_folder_add(fx->src, "Archivio", ROLE_NONE, false), 0);
	fx_add(fx->src, "INBOX", "1@src", "one", "first body", "");
	u2 = fx_add(fx->src, "INBOX", "2@src", "two", big, "\\Seen");
	fx_add(fx->src, "INBOX", "3@src", "three", "third body", "");
	u4 = fx_add(fx->src, "INBOX", "4@src", "four", big, "");
	a1 = fx_add(fx->src, "Archivio", "a1@src", "arch", big, "");
	assert_int_equal(fx_account(fx, &res), -1);
	assert_int_equal(res.status, ACCOUNT_PARTIAL);
	assert_int_equal(res.total.failed, 3);
	for (i = 0; i < res.n_folders; i++) {
		const struct folder_report *fr = &res.folders[i];

		assert_int_equal(fr->failures.n, fr->counts.failed);
		listed += fr->failures.n;
		if (strcmp(fr->src_name, "INBOX") == 0) {
			assert_int_equal(fr->failures.n, 2);
			assert_int_equal(fr->failures.v[0].uid, u2);
			assert_int_equal(fr->failures.v[1].uid, u4);
			assert_non_null(strstr(fr->failures.v[0].reply, "[OVERQUOTA]"));
		} else if (strcmp(fr->src_name, "Archivio") == 0) {
			assert_int_equal(fr->failures.n, 1);
			assert_int_equal(fr->failures.v[0].uid, a1);
			assert_non_null(strstr(fr->failures.v[0].reply, "does not fit"));
		}
	}
	assert_int_equal(listed, 3);
	account_result_free(&res);
	o.refuse_larger = 0;
	mem_world_set_opts(fx->dst, &o);
	assert_int_equal(fx_account(fx, &res), 0);
	assert_int_equal(res.total.copied, 3);
	for (i = 0; i < res.n_folders; i++)
		assert_int_equal(res.folders[i].failures.n, 0);
	account_result_free(&res);
	fx_assert_same(fx, "INBOX", "INBOX", 0);
	fx_assert_same(fx, "Archivio", "Archivio", 0);
}

/* ---- accounts: folders and plans ------------------------------------------ */

static void test_account_refused_names(void **state)
{
	struct fx *fx = *state;
	struct mem_opts o = { .refuse_chars = "%" };
	struct account_result res;

	mem_world_set_opts(fx->dst, &o);
	assert_int_equal(mem_folder_add(fx->src, "50%off", ROLE_NONE, false), 0);
	assert_int_equal(mem_folder_add(fx->src, "50%off/sub", ROLE_NONE, false), 0);
	fx_add(fx->src, "50%off", "p1@src", "percent", "one", "");
	fx_add(fx->src, "50%off/sub", "p2@src", "percent below", "two", "");
	fx_add(fx->src, "INBOX", "i@src", "inbox", "three", "");
	assert_int_equal(fx_account(fx, &res), 0);
	assert_int_equal(res.total.copied, 3);
	for (size_t i = 0; i < res.n_folders; i++)
		if (strcmp(res.folders[i].src_name, "50%off") == 0)
			assert_string_equal(res.folders[i].dst_name, "50_off");
	account_result_free(&res);
	assert_false(mem_folder_exists(fx->dst, "50%off"));
	fx_assert_same(fx, "50%off", "50_off", 0);
	fx_assert_same(fx, "50%off/sub", "50_off/sub", 0);
	/* the next run goes to the same place */
	fx_add(fx->src, "50%off", "p3@src", "percent again", "four", "");
	assert_int_equal(fx_account(fx, &res), 0);
	assert_int_equal(res.total.copied, 1);
	account_result_free(&res);
	/* and so does a run with a new state, copying nothing twice */
	fx_new_state(fx);
	assert_int_equal(fx_account(fx, &res), 0);
	assert_int_equal(res.total.copied, 0);
	account_result_free(&res);
	assert_false(mem_folder_exists(fx->dst, "50_off_2"));
	fx_assert_same(fx, "50%off", "50_off", 0);
	fx_assert_same(fx, "50%off/sub", "50_off/sub", 0);
	fx_assert_same(fx, "INBOX", "INBOX", 0);
}

/* A refused name whose legal form another source folder has already: the
 * suffix, and the same folders again with a new state. */
static void test_account_refused_name_clash(void **state)
{
	struct fx *fx = *state;
	struct mem_opts o = { .refuse_chars = "%" };
	struct account_result res;

	mem_world_set_opts(fx->dst, &o);
	assert_int_equal(mem_folder_add(fx->src, "a%b", ROLE_NONE, false), 0);
	assert_int_equal(mem_folder_add(fx->src, "a_b", ROLE_NONE, false), 0);
	fx_add(fx->src, "a%b", "p@src", "percent", "one", "");
	fx_add(fx->src, "a_b", "u@src", "underscore", "two", "");
	assert_int_equal(fx_account(fx, &res), 0);
	assert_int_equal(res.total.copied, 2);
	account_result_free(&res);
	fx_assert_same(fx, "a_b", "a_b", 0);
	fx_assert_same(fx, "a%b", "a_b_2", 0);
	fx_new_state(fx);
	assert_int_equal(fx_account(fx, &res), 0);
	assert_int_equal(res.total.copied, 0);
	account_result_free(&res);
	fx_assert_same(fx, "a_b", "a_b", 0);
	fx_assert_same(fx, "a%b", "a_b_2", 0);
	assert_false(mem_folder_exists(fx->dst, "a_b_3"));
}

static void test_account_roles_and_subscriptions(void **state)
{
	struct fx *fx = *state;
	struct account_result res;
	struct fault_run run;

	fx->subscribe = true;
	assert_int_equal(mem_folder_add(fx->src, "Sent", ROLE_SENT, true), 0);
	assert_int_equal(mem_folder_add(fx->src, "Work", ROLE_NONE, true), 0);
	assert_int_equal(mem_folder_add(fx->dst, "Sent Items", ROLE_SENT, false), 0);
	fx_add(fx->src, "Sent", "s1@src", "sent", "a sent message", "\\Seen");
	fx_add(fx->src, "Work", "w1@src", "work", "a work message", "");
	assert_int_equal(fx_account(fx, &res), 0);
	assert_int_equal(res.total.copied, 2);
	account_result_free(&res);
	assert_false(mem_folder_exists(fx->dst, "Sent"));
	fx_assert_same(fx, "Sent", "Sent Items", 0);
	fx_assert_same(fx, "Work", "Work", 0);
	{
		struct store_conf c = { &fx->dst_ep, NULL, fx->dst };
		struct folder_list l;
		struct tr_error err;
		struct store *st;

		assert_int_equal(store_open(&store_mem_driver, &c, &st, &err), 0);
		assert_int_equal(store_list(st, &l, &err), 0);
		assert_true(folder_list_find_raw(&l, "Sent Items")->subscribed);
		assert_true(folder_list_find_raw(&l, "Work")->subscribed);
		folder_list_free(&l);
		store_close(st);
	}
	/* Nothing changed: the run lists, asks STATUS, and does nothing more. */
	fx->subscribe = false;
	fault_run_init(&run, FAULT_NONE, 0);
	fx->fault = &run;
	assert_int_equal(fx_account(fx, &res), 0);
	fx->fault = NULL;
	assert_int_equal(res.total.copied, 0);
	assert_int_equal(res.total.present, 2);
	account_result_free(&res);
	assert_int_equal(fault_run_ops(&run), 5);   /* 2 opens, 2 lists, 1 status */
	fault_run_destroy(&run);
}

static void test_account_namespaces(void **state)
{
	struct fx *fx = *state;
	struct account_result res;

	/* Cyrus-like source, Dovecot-like destination */
	fx_worlds(fx, "INBOX.", '.', "", '/');
	assert_int_equal(mem_folder_add(fx->src, "INBOX.Archive", ROLE_NONE, false), 0);
	assert_int_equal(mem_folder_add(fx->src, "INBOX.Archive.2023", ROLE_NONE, false), 0);
	fx_add(fx->src, "INBOX.Archive.2023", "old@src", "old", "an old one", "");
	fx_add(fx->src, "INBOX", "new@src", "new", "a new one", "");
	assert_int_equal(fx_account(fx, &res), 0);
	assert_int_equal(res.total.copied, 2);
	account_result_free(&res);
	assert_true(mem_folder_exists(fx->dst, "Archive"));
	fx_assert_same(fx, "INBOX.Archive.2023", "Archive/2023", 0);
	fx_assert_same(fx, "INBOX", "INBOX", 0);
}

/* ---- accounts in scopes (net.h) ------------------------------------------ */

static const char *const scoped_folders[] = { "INBOX", "F1", "F2", "F3" };
#define SCOPED_MSGS 30      /* per folder */

/* One account run in a scope of its own, as a worker runs each account it
 * claims, with worlds of its own. */
struct scoped_account {
	struct fx *fx;
	const char *user;
	struct mem_world *src, *dst;
	struct net_scope scope;
	struct account_result res;
	int r;
	atomic_int appends;       /* messages appended */
	atomic_int outside;       /* ... by a thread not in this account's scope */
	int pause_at;             /* at this append, wait until the scope is cancelled */
	atomic_int paused, resume;
	struct state *state;      /* NULL: the fixture's */
	bool no_scope;            /* run in no scope of its own */
};

/* The destination's rewrite hook: called in the thread that appends. */
static int scoped_rewrite(void *ctx, const char *in, size_t len, char **out, size_t *out_len)
{
	struct scoped_account *sa = ctx;
	int n = atomic_fetch_add(&sa->appends, 1) + 1;

	if (net_scope_current() != &sa->scope)
		atomic_fetch_add(&sa->outside, 1);
	if (n == sa->pause_at) {
		/* mid-account: let the test's thread (as a lease's watcher
		 * would) cancel this account's scope */
		atomic_store(&sa->paused, 1);
		while (!atomic_load(&sa->resume))
			usleep(1000);
	}
	*out = malloc(len > 0 ? len : 1);
	if (*out == NULL)
		return -1;
	memcpy(*out, in, len);
	*out_len = len;
	return 0;
}

static void *scoped_account_main(void *arg)
{
	struct scoped_account *sa = arg;
	struct fx *fx = sa->fx;
	struct account_opts o;
	struct job_config cfg;

	if (!sa->no_scope)
		net_scope_enter(&sa->scope);
	jobconf_init(&cfg, JOB_MIGRATE);
	cfg.retries = 1;
	cfg.spool_dir = fx->dir;
	memset(&o, 0, sizeof(o));
	o.cfg = &cfg;
	o.label = sa->user;
	o.src_ep = &fx->src_ep;
	o.dst_ep = &fx->dst_ep;
	o.src_cr.user = sa->user;
	o.dst_cr.user = sa->user;
	o.src_drv = o.dst_drv = &store_mem_driver;
	o.src_arg = sa->src;
	o.dst_arg = sa->dst;
	o.map = &fx->map;
	o.state = sa->state != NULL ? sa->state : fx->state;
	o.src_lim = fx->src_lim;
	o.dst_lim = fx->dst_lim;
	o.limits = &fx->lim;
	o.max_sessions = 3;      /* workers 2 and 3 are threads the account starts */
	sa->r = account_run(&o, &sa->res);
	cfg.spool_dir = NULL;
	jobconf_free(&cfg);
	net_scope_enter(NULL);
	return NULL;
}

static void scoped_setup(struct fx *fx, struct scoped_account *sa, const char *user, size_t i)
{
	struct mem_opts mo = { .rewrite_fn = scoped_rewrite, .rewrite_ctx = sa };
	size_t f;
	int k;

	sa->fx = fx;
	sa->user = user;
	sa->src = mem_world_new("", '/');
	sa->dst = mem_world_new("", '/');
	assert_non_null(sa->src);
	assert_non_null(sa->dst);
	mem_world_set_opts(sa->dst, &mo);
	for (f = 0; f < 4; f++) {
		if (f > 0)
			assert_int_equal(mem_folder_add(sa->src, scoped_folders[f], ROLE_NONE,
							false), 0);
		for (k = 0; k < SCOPED_MSGS; k++) {
			char id[64], body[64];

			snprintf(id, sizeof(id), "%zu.%zu.%d@src", i, f, k);
			snprintf(body, sizeof(body), "body %zu %zu %d", i, f, k);
			fx_add(sa->src, scoped_folders[f], id, "subject", body, "\\Seen");
		}
	}
}

/* Messages in the destination of an account, all folders. */
static size_t scoped_dst_msgs(struct scoped_account *sa)
{
	size_t f, n = 0;

	for (f = 0; f < 4; f++)
		if (mem_folder_exists(sa->dst, scoped_folders[f]))
			n += fx_count(sa->dst, scoped_folders[f]);
	return n;
}

static void scoped_assert_whole(struct scoped_account *sa)
{
	struct fx *fx = sa->fx;
	struct mem_world *src = fx->src, *dst = fx->dst;
	size_t f;

	assert_int_equal(sa->r, 0);
	assert_int_equal(sa->res.status, ACCOUNT_OK);
	assert_int_equal(sa->res.total.copied, 4 * SCOPED_MSGS);
	fx->src = sa->src;
	fx->dst = sa->dst;
	for (f = 0; f < 4; f++)
		fx_assert_same(fx, scoped_folders[f], scoped_folders[f], 0);
	fx->src = src;
	fx->dst = dst;
}

static void scoped_free(struct scoped_account *sa)
{
	account_result_free(&sa->res);
	mem_world_free(sa->src);
	mem_world_free(sa->dst);
}

/* A worker that lost one account's lease stops that account (its scope)
 * while it goes on with the others: the stopped account ends at once as
 * stopped, the others finish, whole, and the process is not stopping. */
static void test_account_scope_stops_one(void **state)
{
	struct fx *fx = *state;
	struct scoped_account acc[3];
	const char *users[3] = { "a@test", "b@test", "c@test" };
	pthread_t t[3];
	size_t i;

	fx->lim.batch_count = 5;
	memset(acc, 0, sizeof(acc));
	for (i = 0; i < 3; i++)
		scoped_setup(fx, &acc[i], users[i], i);
	acc[0].pause_at = 12;
	for (i = 0; i < 3; i++)
		assert_int_equal(pthread_create(&t[i], NULL, scoped_account_main, &acc[i]), 0);
	while (!atomic_load(&acc[0].paused))
		usleep(1000);
	net_scope_cancel(&acc[0].scope);
	atomic_store(&acc[0].resume, 1);
	for (i = 0; i < 3; i++)
		pthread_join(t[i], NULL);

	assert_false(net_cancelled());
	assert_int_equal(acc[0].r, -1);
	assert_int_equal(acc[0].res.status, ACCOUNT_FAILED);
	assert_int_equal(acc[0].res.err.kind, TR_ERR_STOPPED);
	/* the batch in flight went in, nothing after it */
	assert_true(scoped_dst_msgs(&acc[0]) < 4 * SCOPED_MSGS);
	assert_true(atomic_load(&acc[0].appends) < 4 * SCOPED_MSGS);
	for (i = 1; i < 3; i++)
		scoped_assert_whole(&acc[i]);
	/* every append, by whichever of its threads, ran in its account's scope */
	for (i = 0; i < 3; i++) {
		assert_int_equal(atomic_load(&acc[i].outside), 0);
		scoped_free(&acc[i]);
	}
}

/* The state's backend says an account's lease is lost (state_lock_watch):
 * account.c stops that account's scope, and says why; the other account
 * of the same state goes on.  Without a scope, the loss is only told (the
 * sessions go on), and the account still ends failed. */
static void lease_lost_run(struct fx *fx, bool scoped)
{
	struct scoped_account acc[2];
	const char *users[2] = { "a@test", "b@test" };
	char name[64], key[256];
	struct state *st;
	struct tr_error err;
	pthread_t t[2];
	int64_t id;
	size_t i;

	snprintf(name, sizeof(name), "lease-%d", scoped);
	tr_error_clear(&err);
	assert_int_equal(state_open_backend("mem", name, &st, &err), 0);
	fx->lim.batch_count = 5;
	memset(acc, 0, sizeof(acc));
	for (i = 0; i < 2; i++) {
		scoped_setup(fx, &acc[i], users[i], i);
		acc[i].state = st;
	}
	acc[0].pause_at = 12;
	acc[0].no_scope = !scoped;
	for (i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&t[i], NULL, scoped_account_main, &acc[i]), 0);
	while (!atomic_load(&acc[0].paused))
		usleep(1000);
	/* account.c's key of the account, to find its row */
	snprintf(key, sizeof(key), "%s@%s:%d -> %s@%s:%d", users[0], fx->src_ep.host,
		 fx->src_ep.port, users[0], fx->dst_ep.host, fx->dst_ep.port);
	assert_int_equal(state_account(st, key, &id, &err), 0);
	assert_int_equal(state_mem_lose_lock(name, id), 1);
	assert_int_equal(state_mem_lose_lock(name, id), 0);    /* told once */
	atomic_store(&acc[0].resume, 1);
	for (i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	assert_false(net_cancelled());
	/* either way the account is no longer this worker's: not ok */
	assert_int_equal(acc[0].res.status, ACCOUNT_FAILED);
	assert_int_equal(acc[0].res.err.kind, TR_ERR_STOPPED);
	assert_non_null(strstr(acc[0].res.err.msg, "lease expired"));
	if (scoped)
		assert_true(scoped_dst_msgs(&acc[0]) < 4 * SCOPED_MSGS);
	else    /* nothing could stop its sessions */
		assert_int_equal(scoped_dst_msgs(&acc[0]), 4 * SCOPED_MSGS);
	scoped_assert_whole(&acc[1]);
	for (i = 0; i < 2; i++)
		scoped_free(&acc[i]);
	state_close(st);
	state_mem_discard(name);
}

static void test_account_lease_lost_stops_it(void **state)
{
	lease_lost_run(*state, true);
}

static void test_account_lease_lost_without_scope(void **state)
{
	lease_lost_run(*state, false);
}


/* ---- passes: --since, --before, --trial ------------------------------------ */

static uint32_t add_dated(struct fx *fx, const char *raw, int i, const char *date,
			  const char *flags)
{
	char id[32], subj[32], body[64];
	char *m;
	uint32_t uid = 0;

	snprintf(id, sizeof(id), "%d@pass", i);
	snprintf(subj, sizeof(subj), "message %d", i);
	snprintf(body, sizeof(body), "body of message %d", i);
	m = fx_msg(id, subj, body);
	assert_non_null(m);
	assert_int_equal(mem_msg_add(fx->src, raw, m, strlen(m), flags, date, &uid), 0);
	free(m);
	return uid;
}

#define OLD "02-Jan-2024 10:00:00 +0100"
#define NEW "20-Nov-2026 23:30:00 -0800"

/* Old and new mail interleaved by UID, as a mailbox that was imported. */
static void mixed(struct fx *fx, int n)
{
	for (int i = 1; i <= n; i++)
		add_dated(fx, "INBOX", i, i % 2 ? OLD : NEW, i % 3 ? "" : "\\Seen");
}

static void test_pass_day(void **state)
{
	(void)state;
	assert_int_equal(sync_pass_day("05-Dec-2026 12:34:56 +0100"), 20261205);
	assert_int_equal(sync_pass_day(" 5-Dec-2026 00:00:00 -1200"), 20261205);
	assert_int_equal(sync_pass_day("31-Jan-1999 23:59:59 +0000"), 19990131);
	assert_int_equal(sync_pass_day(""), 0);
	assert_int_equal(sync_pass_day(NULL), 0);
	assert_int_equal(sync_pass_day("05-Dex-2026 12:34:56 +0100"), 0);
	assert_int_equal(sync_pass_day("05-anF-2026 12:34:56 +0100"), 0);
	assert_int_equal(sync_pass_day("05-Dec-26 12:34:56 +0100"), 0);
	assert_int_equal(sync_pass_day("45-Dec-2026 12:34:56 +0100"), 0);
}

/* A pre-stage of recent mail, then a full pass: exactly the rest, nothing
 * doubled, flags of the pre-staged messages kept up to date. */
static void test_pass_since_then_full(void **state)
{
	struct fx *fx = *state;
	struct sync_pass since = { .since_day = 20261101 };
	struct sync_counts c;

	mixed(fx, 9);             /* UIDs 1..9: odd old, even new */
	fx->pass = &since;
	c = fx_sync_ok(fx, "INBOX", "INBOX");
	assert_int_equal(c.copied, 4);
	assert_int_equal(c.deferred, 5);
	assert_int_equal(c.present, 0);
	assert_int_equal(mem_world_appended(fx->dst), 4);
	/* the same pre-stage again: nothing new, the old still deferred */
	c = fx_sync_ok(fx, "INBOX", "INBOX");
	assert_int_equal(c.copied, 0);
	assert_int_equal(c.deferred, 5);
	assert_int_equal(c.present, 4);
	/* meanwhile: a flag changes on a pre-staged message, new mail comes */
	assert_int_equal(mem_msg_set_flags(fx->src, "INBOX", 2, "\\Seen \\Flagged"), 0);
	add_dated(fx, "INBOX", 10, NEW, "");
	fx->pass = NULL;
	c = fx_sync_ok(fx, "INBOX", "INBOX");
	assert_int_equal(c.copied, 6);        /* the 5 old and the new one */
	assert_int_equal(c.deferred, 0);
	assert_int_equal(c.flags_updated, 1);
	assert_int_equal(mem_world_appended(fx->dst), 10);
	fx_assert_same(fx, "INBOX", "INBOX", 0);
	c = fx_sync_ok(fx, "INBOX", "INBOX");
	assert_int_equal(c.copied, 0);
	assert_int_equal(c.present, 10);
	assert_int_equal(mem_world_appended(fx->dst), 10);
}

/* --before, then --since the same day: the two halves, then nothing left. */
static void test_pass_before_then_since(void **state)
{
	struct fx *fx = *state;
	struct sync_pass before = { .before_day = 20261120 }, since = { .since_day = 20261120 };
	struct sync_counts c;

	mixed(fx, 8);
	fx->pass = &before;
	c = fx_sync_ok(fx, "INBOX", "INBOX");
	assert_int_equal(c.copied, 4);
	assert_int_equal(c.deferred, 4);
	fx->pass = &since;
	c = fx_sync_ok(fx, "INBOX", "INBOX");
	assert_int_equal(c.copied, 4);
	assert_int_equal(c.deferred, 0);
	fx_assert_same(fx, "INBOX", "INBOX", 0);
	fx->pass = NULL;
	c = fx_sync_ok(fx, "INBOX", "INBOX");
	assert_int_equal(c.copied, 0);
	assert_int_equal(mem_world_appended(fx->dst), 8);
}

/* --trial: the most recent N; another trial the next N; a full pass the rest. */
static void test_pass_trial(void **state)
{
	struct fx *fx = *state;
	struct sync_pass trial = { .trial = 3 };
	struct sync_counts c;

	fx->pipeline = true;
	fx->lim.batch_count = 2;
	mixed(fx, 10);
	fx->pass = &trial;
	c = fx_sync_ok(fx, "INBOX", "INBOX");
	assert_int_equal(c.copied, 3);
	assert_int_equal(c.deferred, 7);
	c = fx_sync_ok(fx, "INBOX", "INBOX");
	assert_int_equal(c.copied, 3);
	assert_int_equal(c.deferred, 4);
	fx->pass = NULL;
	c = fx_sync_ok(fx, "INBOX", "INBOX");
	assert_int_equal(c.copied, 4);
	assert_int_equal(mem_world_appended(fx->dst), 10);
	fx_assert_same(fx, "INBOX", "INBOX", 0);
}

/* A first pass onto a destination that holds some of the mail already
 * (match mode) with --since, then a full pass. */
static void test_pass_since_match_mode(void **state)
{
	struct fx *fx = *state;
	struct sync_pass since = { .since_day = 20261101 };
	struct sync_counts c;
	char *m = fx_msg("1@pass", "message 1", "body of message 1");

	mixed(fx, 7);
	assert_non_null(m);
	/* message 1 (old) is on the destination already */
	assert_int_equal(mem_msg_add(fx->dst, "INBOX", m, strlen(m), "", OLD, NULL), 0);
	free(m);
	fx->pass = &since;
	c = fx_sync_ok(fx, "INBOX", "INBOX");
	assert_int_equal(c.copied, 3);
	assert_int_equal(c.deferred, 3);      /* 3, 5, 7; 1 was matched */
	fx->pass = NULL;
	c = fx_sync_ok(fx, "INBOX", "INBOX");
	assert_int_equal(c.copied, 3);
	fx_assert_same(fx, "INBOX", "INBOX", 0);
	assert_int_equal(mem_world_appended(fx->dst), 6);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, fx_setup, fx_teardown)
		T(test_ledger_second_run_copies_nothing),
		T(test_pass_day),
		T(test_pass_since_then_full),
		T(test_pass_before_then_since),
		T(test_pass_trial),
		T(test_pass_since_match_mode),
		T(test_ledger_copies_only_new),
		T(test_ledger_flags_propagate),
		T(test_ledger_flags_propagate_without_modseqs),
		T(test_ledger_expunged_on_source_stays),
		T(test_ledger_batches_pipelined),
		T(test_match_onto_nonempty_destination),
		T(test_match_genuine_duplicates),
		T(test_match_without_message_id),
		T(test_match_same_headers_different_bodies),
		T(test_uidvalidity_changed_on_source),
		T(test_uidvalidity_changed_on_destination),
		T(test_destination_without_dst_ids),
		T(test_destination_without_modseqs),
		T(test_append_limit),
		T(test_nul_bytes_and_binary),
		T(test_altering_destination_munge8bit),
		T(test_altering_destination_received),
		T(test_altering_destination_crlf),
		T(test_altering_destination_all),
		T(test_lost_reply_settled),
		T(test_lost_reply_settled_without_dst_ids),
		T(test_lost_reply_settled_altered),
		T(test_flags_changed_after_crash),
		T(test_lost_reply_then_source_uidvalidity),
		T(test_lost_reply_then_destination_uidvalidity),
		T(test_vanished_while_copying),
		T(test_refused_by_destination_retried),
		T(test_account_lists_refused_messages),
		T(test_account_refused_names),
		T(test_account_refused_name_clash),
		T(test_account_roles_and_subscriptions),
		T(test_account_namespaces),
		T(test_account_scope_stops_one),
		T(test_account_lease_lost_stops_it),
		T(test_account_lease_lost_without_scope),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
