/* Units of the in-memory store (store_mem.h) and the fault wrapper
 * (store_fault.h): each operation of store.h with the IMAP store's
 * semantics, and each rule of a fault plan. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "engine_fixture.h"
#include "fingerprint.h"
#include "meta.h"
#include "store_fault.h"
#include "store_mem.h"

static struct store *open_mem(struct mem_world *w)
{
	struct store_endpoint ep = { .label = "test" };
	struct store_conf c = { &ep, NULL, w };
	struct store *st;
	struct tr_error err;

	if (store_open(&store_mem_driver, &c, &st, &err) < 0)
		fail_msg("open: %s", err.msg);
	return st;
}

/* Fill sp with one message per text, tagged 1, 2, ... */
static void stage_texts(struct stage *sp, const char *const *texts, const size_t *lens, size_t n)
{
	struct tr_error err;

	stage_reset(sp);
	for (size_t i = 0; i < n; i++) {
		stage_begin(sp);
		assert_int_equal(stage_write(sp, texts[i], lens != NULL ? lens[i] : strlen(texts[i]),
					     &err), 0);
		assert_int_equal(stage_end(sp, (uint32_t)(i + 1), &err), 0);
	}
}

static void test_list_roles_subscriptions(void **state)
{
	struct fx *fx = *state;
	struct folder_list l;
	struct tr_error err;
	struct store *st;
	const struct folder *f;

	fx_worlds(fx, "INBOX.", '.', "", '/');
	assert_int_equal(mem_folder_add(fx->src, "INBOX.Sent", ROLE_SENT, true), 0);
	assert_int_equal(mem_folder_add(fx->src, "INBOX.Work.2024", ROLE_NONE, false), 0);
	assert_int_equal(mem_folder_add(fx->src, "INBOX.Sent", ROLE_NONE, false), -1);
	st = open_mem(fx->src);
	assert_int_equal(store_list(st, &l, &err), 0);
	assert_string_equal(l.prefix, "INBOX.");
	assert_int_equal(l.delim, '.');
	assert_true(l.has_roles);
	assert_int_equal(l.n, 3);
	f = folder_list_find_raw(&l, "INBOX.Sent");
	assert_non_null(f);
	assert_string_equal(f->name, "Sent");
	assert_int_equal(f->role, ROLE_SENT);
	assert_true(f->subscribed);
	f = folder_list_find_raw(&l, "INBOX.Work.2024");
	assert_non_null(f);
	assert_string_equal(f->name, "Work/2024");
	assert_false(f->subscribed);
	assert_true(folder_list_find_raw(&l, "INBOX")->subscribed);
	folder_list_free(&l);
	store_close(st);
}

static void test_status_and_open(void **state)
{
	struct fx *fx = *state;
	const char *names[] = { "INBOX", "Nope", "inbox" };
	struct store_status stv[3], s;
	struct tr_error err;
	struct store *st;

	fx_add(fx->src, "INBOX", "a@x", "a", "one", "\\Seen");
	fx_add(fx->src, "INBOX", "b@x", "b", "two", "");
	st = open_mem(fx->src);
	assert_int_equal(store_status_many(st, names, 3, stv, &err), 0);
	assert_int_equal(stv[0].messages, 2);
	assert_int_equal(stv[0].uidnext, 3);
	assert_true(stv[0].uidvalidity != 0);
	assert_true(stv[0].highestmodseq > 0);
	assert_int_equal(stv[1].uidvalidity, 0);     /* no such folder: not a failure */
	assert_int_equal(stv[2].uidvalidity, stv[0].uidvalidity);   /* INBOX in any case */
	assert_int_equal(store_open_folder(st, "Nope", false, &s, &err), -1);
	assert_int_equal(err.kind, TR_ERR_PROTOCOL);
	assert_false(store_broken(st));
	/* a failed open leaves no folder open */
	assert_int_equal(store_fetch_meta(st, &(struct store_set){ NULL, 0, 1, 0 },
					  STORE_FETCH_FLAGS, 0, meta_collect,
					  &(struct meta_vec){ 0 }, &err), -1);
	assert_int_equal(store_open_folder(st, "INBOX", true, &s, &err), 0);
	assert_int_equal(s.uidvalidity, stv[0].uidvalidity);
	assert_int_equal(s.messages, 2);
	store_close(st);
}

static void test_create_subscribe_refusals(void **state)
{
	struct fx *fx = *state;
	const char *names[] = { "New", "INBOX", "50%off", "" };
	struct store_refusal why[4];
	struct mem_opts o = { .refuse_chars = "%*" };
	struct folder_list l;
	struct tr_error err;
	struct store *st;
	bool ok[4];

	mem_world_set_opts(fx->dst, &o);
	st = open_mem(fx->dst);
	assert_int_equal(store_command_many(st, STORE_CREATE, names, 4, ok, why, &err), 0);
	assert_true(ok[0]);
	assert_false(ok[1]);
	assert_int_equal(why[1].kind, STORE_REFUSED_EXISTS);
	assert_false(ok[2]);
	assert_int_equal(why[2].kind, STORE_REFUSED_NAME);
	assert_int_equal(why[2].bad, '%');
	assert_non_null(strstr(why[2].err.msg, "50%off"));
	assert_false(ok[3]);
	assert_true(mem_folder_exists(fx->dst, "New"));
	assert_false(mem_folder_exists(fx->dst, "50%off"));
	/* a server that does not say which character */
	o.name_char_untold = true;
	mem_world_set_opts(fx->dst, &o);
	assert_int_equal(store_command_many(st, STORE_CREATE, &names[2], 1, ok, why, &err), 0);
	assert_int_equal(why[0].kind, STORE_REFUSED_NAME);
	assert_int_equal(why[0].bad, 0);
	/* why may be NULL */
	assert_int_equal(store_command_many(st, STORE_CREATE, names, 1, ok, NULL, &err), 0);
	assert_false(ok[0]);
	/* subscriptions: to what exists only */
	names[1] = "Missing";
	assert_int_equal(store_command_many(st, STORE_SUBSCRIBE, names, 2, ok, why, &err), 0);
	assert_true(ok[0]);
	assert_false(ok[1]);
	assert_int_equal(why[1].kind, STORE_REFUSED);
	assert_int_equal(store_list(st, &l, &err), 0);
	assert_true(folder_list_find_raw(&l, "New")->subscribed);
	folder_list_free(&l);
	store_close(st);
}

static int first_msg(const struct store_msg *m, void *ctx)
{
	struct store_msg *out = ctx;

	if (out->uid == 0) {
		*out = *m;
		out->flags = strdup(m->flags);
	}
	return 0;
}

/* The fingerprint is the IMAP store's: fp_compute and fp_bucket over what
 * BODY.PEEK[HEADER.FIELDS (FP_HEADER_FIELDS)] returns (the listed fields
 * in message order, folded lines and all, then an empty line), and the
 * size. */
static void test_fetch_meta_fingerprint(void **state)
{
	struct fx *fx = *state;
	const char *msg = "Received: from a by b\r\nSubject: a folded\r\n\tsubject line\r\n"
			  "X-Spam: no\r\nfrom: Alice <a@x>\r\nMessage-Id: <m1@x>\r\n"
			  "DATE: Tue, 2 Jan 2024 10:00:00 +0000\r\nContent-Type: text/plain\r\n"
			  "\r\nTo: not-a-header@x\r\nbody\r\n";
	const char *want = "Subject: a folded\r\n\tsubject line\r\nfrom: Alice <a@x>\r\n"
			   "Message-Id: <m1@x>\r\nDATE: Tue, 2 Jan 2024 10:00:00 +0000\r\n"
			   "Content-Type: text/plain\r\n\r\n";
	unsigned char fp[FP_LEN], bucket[FP_LEN];
	struct store_set all = store_set_from(1);
	struct store_msg m;
	struct store_status s;
	struct tr_error err;
	struct store *st;
	bool opened;

	assert_int_equal(mem_msg_add(fx->src, "INBOX", msg, strlen(msg), "\\Flagged $Work \\Seen",
				     "03-Jan-2024 11:00:00 +0100", NULL), 0);
	fp_compute(want, strlen(want), (uint32_t)strlen(msg), fp);
	fp_bucket(want, strlen(want), bucket);
	st = open_mem(fx->src);
	memset(&m, 0, sizeof(m));
	assert_int_equal(store_open_fetch(st, "INBOX", &s, &opened, &all, STORE_FETCH_FP, first_msg,
					  &m, &err), 0);
	assert_true(opened);
	assert_int_equal(m.uid, 1);
	assert_int_equal(m.size, strlen(msg));
	assert_string_equal(m.flags, "\\Seen \\Flagged $Work");
	assert_string_equal(m.date, "03-Jan-2024 11:00:00 +0100");
	assert_true(m.has_fp);
	assert_memory_equal(m.fp, fp, FP_LEN);
	assert_memory_equal(m.bucket, bucket, FP_LEN);
	free(m.flags);
	/* flags only: no size, no date, no fingerprint */
	memset(&m, 0, sizeof(m));
	assert_int_equal(store_fetch_meta(st, &all, STORE_FETCH_FLAGS, 0, first_msg, &m, &err), 0);
	assert_int_equal(m.uid, 1);
	assert_int_equal(m.size, 0);
	assert_false(m.has_fp);
	free(m.flags);
	store_close(st);
}

static void test_changedsince_and_flags(void **state)
{
	struct fx *fx = *state;
	struct store_set all = store_set_from(1), range = store_set_range(2, 3);
	uint32_t two = 2;
	struct store_set just2 = store_set_uids(&two, 1);
	struct meta_vec mv = { 0 };
	struct store_status s, s2;
	struct mem_opts o = { .no_modseq = true };
	struct tr_error err;
	struct store *st;

	for (int i = 0; i < 4; i++)
		fx_add(fx->dst, "INBOX", NULL, "m", "body", "");
	st = open_mem(fx->dst);
	assert_true(store_caps(st)->modseq);
	assert_int_equal(store_open_folder(st, "INBOX", false, &s, &err), 0);
	assert_int_equal(store_set_flags(st, &just2, "\\Answered \\Seen", &err), 0);
	assert_int_equal(store_open_folder(st, "INBOX", false, &s2, &err), 0);
	assert_true(s2.highestmodseq > s.highestmodseq);
	assert_int_equal(store_fetch_meta(st, &all, STORE_FETCH_FLAGS, s.highestmodseq,
					  meta_collect, &mv, &err), 0);
	assert_int_equal(mv.n, 1);
	assert_int_equal(mv.v[0].uid, 2);
	assert_string_equal(mv.v[0].flags, "\\Seen \\Answered");
	meta_vec_free(&mv);
	/* the same flags again change nothing, and no modseq */
	assert_int_equal(store_set_flags(st, &just2, "\\Seen \\Answered", &err), 0);
	assert_int_equal(store_open_folder(st, "INBOX", false, &s, &err), 0);
	assert_int_equal(s.highestmodseq, s2.highestmodseq);
	/* a range */
	assert_int_equal(store_fetch_meta(st, &range, STORE_FETCH_META, 0, meta_collect, &mv, &err),
			 0);
	assert_int_equal(mv.n, 2);
	assert_int_equal(mv.v[0].uid, 2);
	assert_int_equal(mv.v[1].uid, 3);
	assert_true(mv.v[1].size > 0);
	meta_vec_free(&mv);
	/* read-only: no flag changes */
	assert_int_equal(store_open_folder(st, "INBOX", true, &s, &err), 0);
	assert_int_equal(store_set_flags(st, &just2, "", &err), -1);
	store_close(st);
	/* no CONDSTORE: no modseqs, and CHANGEDSINCE is an error */
	mem_world_set_opts(fx->dst, &o);
	st = open_mem(fx->dst);
	assert_false(store_caps(st)->modseq);
	assert_int_equal(store_open_folder(st, "INBOX", false, &s, &err), 0);
	assert_int_equal(s.highestmodseq, 0);
	assert_int_equal(store_fetch_meta(st, &all, STORE_FETCH_FLAGS, 5, meta_collect, &mv, &err),
			 -1);
	meta_vec_free(&mv);
	store_close(st);
}

static void test_append(void **state)
{
	struct fx *fx = *state;
	const char *texts[] = { "Subject: one\r\n\r\nshort\r\n",
				"Subject: two\r\n\r\na longer body, too long for the limit\r\n" };
	struct store_append_item items[2] = {
		{ .flags = "\\Seen", .date = "05-Feb-2024 12:00:00 +0000" },
		{ .flags = "$Junk \\Flagged", .date = NULL },
	};
	struct mem_opts o = { .no_dst_ids = true, .append_limit = 40 };
	struct mem_msg_copy *v;
	struct tr_error err;
	struct store *st;
	uint32_t uv;
	size_t n;

	stage_texts(&fx->sp, texts, NULL, 2);
	items[0].msg = &fx->sp.v[0];
	items[1].msg = &fx->sp.v[1];
	st = open_mem(fx->dst);
	assert_true(store_caps(st)->dst_ids);
	assert_int_equal(store_append(st, "INBOX", &fx->sp, items, 2, &uv, &err), 0);
	assert_int_equal(uv, mem_folder_status(fx->dst, "INBOX").uidvalidity);
	assert_int_equal(items[0].dst_uid, 1);
	assert_int_equal(items[1].dst_uid, 2);
	assert_false(items[0].failed || items[1].failed);
	assert_int_equal(mem_folder_read(fx->dst, "INBOX", &v, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(v[0].data, texts[0]);
	assert_string_equal(v[0].flags, "\\Seen");
	assert_string_equal(v[0].date, "05-Feb-2024 12:00:00 +0000");
	assert_string_equal(v[1].flags, "\\Flagged $Junk");
	mem_msgs_free(v, n);
	/* to a folder that does not exist: each message refused */
	assert_int_equal(store_append(st, "Nope", &fx->sp, items, 2, &uv, &err), 0);
	assert_true(items[0].failed && items[1].failed);
	assert_int_equal(items[0].err.kind, TR_ERR_MESSAGE);
	store_close(st);
	/* no UIDPLUS, an APPENDLIMIT */
	mem_world_set_opts(fx->dst, &o);
	st = open_mem(fx->dst);
	assert_false(store_caps(st)->dst_ids);
	assert_int_equal(store_caps(st)->append_limit, 40);
	assert_int_equal(store_append(st, "INBOX", &fx->sp, items, 2, &uv, &err), 0);
	assert_int_equal(uv, 0);
	assert_int_equal(items[0].dst_uid, 0);
	assert_false(items[0].failed);
	assert_true(items[1].failed);
	assert_non_null(strstr(items[1].err.msg, "TOOBIG"));
	assert_int_equal(fx_count(fx->dst, "INBOX"), 3);
	assert_int_equal(mem_world_appended(fx->dst), 3);
	store_close(st);
}

static void test_rewrite_on_append(void **state)
{
	struct fx *fx = *state;
	const char *texts[] = { "Subject: caf\xc3\xa9\nFrom: a@x\n\nbody caf\xc3\xa9\n" };
	struct store_append_item it = { .flags = "" };
	struct mem_opts o = { .rewrite = MEM_REWRITE_MUNGE8BIT | MEM_REWRITE_RECEIVED |
					 MEM_REWRITE_CRLF };
	struct mem_msg_copy *v;
	struct tr_error err;
	struct store *st;
	uint32_t uv;
	size_t n;

	mem_world_set_opts(fx->dst, &o);
	stage_texts(&fx->sp, texts, NULL, 1);
	it.msg = &fx->sp.v[0];
	st = open_mem(fx->dst);
	assert_int_equal(store_append(st, "INBOX", &fx->sp, &it, 1, &uv, &err), 0);
	store_close(st);
	assert_int_equal(mem_folder_read(fx->dst, "INBOX", &v, &n), 0);
	assert_int_equal(n, 1);
	assert_non_null(strstr(v[0].data, "Received: "));
	assert_non_null(strstr(v[0].data, "Subject: cafXX\r\nFrom: a@x\r\n\r\nbody caf\xc3\xa9\r\n"));
	mem_msgs_free(v, n);
}

static void test_bodies_and_binary(void **state)
{
	struct fx *fx = *state;
	static const char nul_msg[] = "Subject: nul\r\n\r\na\0b\r\n";
	uint32_t uids[] = { 1, 3, 9 };
	struct store_set set = store_set_uids(uids, 3);
	struct store_append_item it = { .flags = "" };
	struct mem_opts o = { .no_binary = true };
	struct store_status s;
	struct tr_error err;
	struct store *st;
	char buf[64];
	uint32_t uv;

	fx_add(fx->src, "INBOX", "1@x", "one", "body one", "");
	fx_add(fx->src, "INBOX", "2@x", "two", "body two", "");
	assert_int_equal(mem_msg_add(fx->src, "INBOX", nul_msg, sizeof(nul_msg) - 1, "", NULL,
				     NULL), 0);
	st = open_mem(fx->src);
	assert_int_equal(store_open_folder(st, "INBOX", true, &s, &err), 0);
	stage_reset(&fx->sp);
	assert_int_equal(store_fetch_bodies(st, &set, &fx->sp, NULL, NULL, &err), 0);
	assert_int_equal(fx->sp.n, 2);                /* UID 9 does not exist */
	assert_int_equal(fx->sp.v[0].uid, 1);
	assert_false(fx->sp.v[0].literal8);
	assert_int_equal(fx->sp.v[1].uid, 3);
	assert_true(fx->sp.v[1].literal8);
	assert_int_equal(fx->sp.v[1].len, sizeof(nul_msg) - 1);
	assert_int_equal(stage_read(&fx->sp, &fx->sp.v[1], 0, buf, sizeof(nul_msg) - 1, &err), 0);
	assert_memory_equal(buf, nul_msg, sizeof(nul_msg) - 1);
	store_close(st);
	/* a destination without BINARY refuses it */
	mem_world_set_opts(fx->dst, &o);
	st = open_mem(fx->dst);
	assert_false(store_caps(st)->binary);
	it.msg = &fx->sp.v[1];
	assert_int_equal(store_append(st, "INBOX", &fx->sp, &it, 1, &uv, &err), 0);
	assert_true(it.failed);
	assert_int_equal(fx_count(fx->dst, "INBOX"), 0);
	store_close(st);
}

static void test_recreate_and_expunge(void **state)
{
	struct fx *fx = *state;
	struct store_set all = store_set_from(1);
	struct meta_vec mv = { 0 };
	struct store_status s, s2;
	struct tr_error err;
	struct store *st;

	fx_add(fx->src, "INBOX", "1@x", "one", "b", "");
	fx_add(fx->src, "INBOX", "2@x", "two", "b", "");
	fx_add(fx->src, "INBOX", "3@x", "three", "b", "");
	assert_int_equal(mem_msg_expunge(fx->src, "INBOX", 2), 0);
	assert_int_equal(mem_msg_expunge(fx->src, "INBOX", 2), -1);
	st = open_mem(fx->src);
	assert_int_equal(store_open_folder(st, "INBOX", true, &s, &err), 0);
	assert_int_equal(s.messages, 2);
	assert_int_equal(s.uidnext, 4);
	/* the folder is re-created under the open store: the session ends */
	assert_int_equal(mem_folder_recreate(fx->src, "INBOX", true), 0);
	assert_int_equal(store_fetch_meta(st, &all, STORE_FETCH_FLAGS, 0, meta_collect, &mv, &err),
			 -1);
	assert_int_equal(err.kind, TR_ERR_TEMP);
	assert_true(store_broken(st));
	store_close(st);
	st = open_mem(fx->src);
	assert_int_equal(store_open_folder(st, "INBOX", true, &s2, &err), 0);
	assert_true(s2.uidvalidity != s.uidvalidity);
	assert_int_equal(s2.uidnext, 3);
	assert_int_equal(store_fetch_meta(st, &all, STORE_FETCH_FP, 0, meta_collect, &mv, &err), 0);
	assert_int_equal(mv.n, 2);
	assert_int_equal(mv.v[0].uid, 1);
	assert_int_equal(mv.v[1].uid, 2);
	meta_vec_free(&mv);
	store_close(st);
	assert_int_equal(mem_folder_recreate(fx->src, "INBOX", false), 0);
	assert_int_equal(fx_count(fx->src, "INBOX"), 0);
}

static void test_quota(void **state)
{
	struct fx *fx = *state;
	struct mem_opts o = { .quota_kib = 100 };
	uint64_t used, limit;
	struct tr_error err;
	struct store *st = open_mem(fx->dst);
	char big[3000];

	assert_int_equal(store_quota(st, &used, &limit, &err), 0);
	store_close(st);
	memset(big, 'a', sizeof(big));
	assert_int_equal(mem_msg_add(fx->dst, "INBOX", big, sizeof(big), "", NULL, NULL), 0);
	mem_world_set_opts(fx->dst, &o);
	st = open_mem(fx->dst);
	assert_int_equal(store_quota(st, &used, &limit, &err), 1);
	assert_int_equal(used, 3);
	assert_int_equal(limit, 100);
	store_close(st);
}

/* ---- the fault wrapper --------------------------------------------------- */

static struct store *open_fault(struct fault_plan *p, struct tr_error *err)
{
	struct store_endpoint ep = { .label = "test" };
	struct store_conf c = { &ep, NULL, p };
	struct store *st = NULL;

	if (store_open(store_driver_find("fault"), &c, &st, err) < 0)
		return NULL;
	return st;
}

/* Five operations over two stores: open, open, status, open_folder, append. */
static int five_ops(struct fx *fx, struct fault_run *run, struct tr_error *err)
{
	struct fault_plan ps = { &store_mem_driver, { NULL, NULL, fx->src }, run, "source" };
	struct fault_plan pd = { store_driver_find("mem"), { NULL, NULL, fx->dst }, run,
				 "destination" };
	const char *texts[] = { "Subject: x\r\n\r\nx\r\n" };
	struct store_append_item it = { .flags = "" };
	const char *inbox = "INBOX";
	struct store *s = open_fault(&ps, err), *d = NULL;
	struct store_status st;
	uint32_t uv;
	int r = -1;

	if (s == NULL || (d = open_fault(&pd, err)) == NULL)
		goto out;
	if (store_status_many(s, &inbox, 1, &st, err) < 0 ||
	    store_open_folder(d, "INBOX", false, &st, err) < 0)
		goto out;
	stage_texts(&fx->sp, texts, NULL, 1);
	it.msg = &fx->sp.v[0];
	r = store_append(d, "INBOX", &fx->sp, &it, 1, &uv, err);
	if (r == 0)
		assert_int_equal(it.dst_uid, fx_count(fx->dst, "INBOX"));
	assert_true(store_caps(d)->dst_ids);
	assert_string_equal(store_where(d), "test (mem)");
out:
	if (r < 0 && d != NULL && err->kind == TR_ERR_TEMP)
		assert_true(store_broken(d));
	store_close(s);
	store_close(d);
	return r;
}

static void test_fault_counts_and_rules(void **state)
{
	struct fx *fx = *state;
	struct fault_run run;
	struct tr_error err;

	assert_non_null(store_driver_find("mem"));
	assert_non_null(store_driver_find("fault"));
	assert_null(store_driver_find("nope"));
	/* a clean run counts */
	fault_run_init(&run, FAULT_NONE, 0);
	assert_int_equal(five_ops(fx, &run, &err), 0);
	assert_int_equal(fault_run_ops(&run), 5);
	assert_int_equal(fault_run_appends(&run), 1);
	assert_false(fault_run_fired(&run));
	fault_run_destroy(&run);
	assert_int_equal(fx_count(fx->dst, "INBOX"), 1);
	/* stop at each operation: that one and every later one fail, doing nothing */
	for (uint64_t n = 1; n <= 5; n++) {
		fault_run_init(&run, FAULT_STOP_AT, n);
		assert_int_equal(five_ops(fx, &run, &err), -1);
		assert_int_equal(err.kind, TR_ERR_STOPPED);
		assert_true(fault_run_fired(&run));
		assert_int_equal(fault_run_ops(&run), n);
		fault_run_destroy(&run);
		assert_int_equal(fx_count(fx->dst, "INBOX"), 1);
	}
	/* drop the append: nothing done, the store broken */
	fault_run_init(&run, FAULT_DROP_AT, 5);
	assert_int_equal(five_ops(fx, &run, &err), -1);
	assert_int_equal(err.kind, TR_ERR_TEMP);
	fault_run_destroy(&run);
	assert_int_equal(fx_count(fx->dst, "INBOX"), 1);
	/* lose the append's reply: done, yet a failure */
	fault_run_init(&run, FAULT_LOSE_APPEND, 1);
	assert_int_equal(five_ops(fx, &run, &err), -1);
	assert_int_equal(err.kind, TR_ERR_TEMP);
	assert_true(fault_run_fired(&run));
	fault_run_destroy(&run);
	assert_int_equal(fx_count(fx->dst, "INBOX"), 2);
	/* one side's operations only: the destination's are open, open_folder, append */
	fault_run_init(&run, FAULT_NONE, 0);
	fault_run_only(&run, "destination");
	assert_int_equal(five_ops(fx, &run, &err), 0);
	assert_int_equal(fault_run_ops(&run), 3);
	assert_int_equal(fault_run_appends(&run), 1);
	fault_run_destroy(&run);
	fault_run_init(&run, FAULT_STOP_AT, 2);
	fault_run_only(&run, "destination");
	assert_int_equal(five_ops(fx, &run, &err), -1);
	assert_int_equal(err.kind, TR_ERR_STOPPED);
	assert_int_equal(fault_run_ops(&run), 2);       /* the destination's open, open_folder */
	assert_int_equal(run.ops, 4);                    /* and the source's open, status */
	fault_run_destroy(&run);
	assert_int_equal(fx_count(fx->dst, "INBOX"), 3);
	/* a plan is required */
	assert_null(open_fault(NULL, &err));
	assert_int_equal(err.kind, TR_ERR_USAGE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_list_roles_subscriptions, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_status_and_open, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_create_subscribe_refusals, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_fetch_meta_fingerprint, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_changedsince_and_flags, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_append, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_rewrite_on_append, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_bodies_and_binary, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_recreate_and_expunge, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_quota, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_fault_counts_and_rules, fx_setup, fx_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
