/* The state interface's contract (state.h, state_backend.h), one suite run
 * against every backend: the engine's view must not depend on which one is
 * behind it.  test_state runs it for sqlite and mem, test_state_pg for
 * postgresql (against a real server).  Each test opens its backend through
 * contract_open and starts from an empty store (the runner's setup). */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>

#include "state.h"
#include "state_contract.h"
#include "text.h"

struct state *contract_open(void **state)
{
	struct state_case *c = *state;
	struct tr_error err;
	struct state *st = NULL;

	if (state_open_backend(c->backend, c->where, &st, &err) < 0)
		fail_msg("state_open_backend(%s, %s): %s", c->backend, c->where, err.msg);
	assert_string_equal(state_backend_name(st), c->backend);
	return st;
}

void test_if_accounts(void **state)
{
	struct tr_error err;
	struct state *st = contract_open(state);
	int64_t a, b, a2;
	char status[8];

	assert_int_equal(state_account(st, "a@s:993 -> a@d:993", &a, &err), 0);
	assert_int_equal(state_account(st, "b@s:993 -> b@d:993", &b, &err), 0);
	assert_int_equal(state_account(st, "a@s:993 -> a@d:993", &a2, &err), 0);
	assert_true(a > 0 && b > 0);
	assert_int_not_equal(a, b);
	assert_int_equal(a2, a);
	assert_int_equal(state_account_get_status(st, a, status, sizeof(status), &err), 0);
	assert_string_equal(status, "new");
	assert_int_equal(state_account_set_status(st, a, "failed", "NO \x1b[31mdenied", &err), 0);
	assert_int_equal(state_account_set_status(st, b, "ok", NULL, &err), 0);
	assert_int_equal(state_account_get_status(st, a, status, sizeof(status), &err), 0);
	assert_string_equal(status, "failed");
	/* cut to the buffer, never past it */
	assert_int_equal(state_account_get_status(st, b, status, 2, &err), 0);
	assert_string_equal(status, "o");
	/* an account no one made */
	assert_int_equal(state_account_get_status(st, a + b + 100, status, sizeof(status), &err),
			 -1);
	assert_int_equal(err.kind, TR_ERR_LOCAL);
	assert_non_null(strstr(err.msg, state_path(st)));
	state_close(st);
}

void test_if_folders(void **state)
{
	struct tr_error err;
	struct state *st = contract_open(state);
	struct state_folder f, g, h;
	struct state_msg row;
	int64_t a, b;
	char *dst;

	assert_int_equal(state_account(st, "a", &a, &err), 0);
	assert_int_equal(state_account(st, "b", &b, &err), 0);
	assert_int_equal(state_folder_saved_dst(st, a, "INBOX", &dst, &err), 0);
	assert_null(dst);
	assert_int_equal(state_folder_load(st, a, "INBOX", "INBOX", &f, &err), 0);
	assert_true(f.id > 0);
	assert_int_equal(f.src_uidvalidity, 0);
	assert_int_equal(f.src_uidnext, 0);
	assert_int_equal(f.unsettled, 0);
	/* the same name in another account is another folder */
	assert_int_equal(state_folder_load(st, b, "INBOX", "INBOX", &g, &err), 0);
	assert_int_not_equal(g.id, f.id);

	f.src_uidvalidity = UINT32_MAX;
	f.dst_uidvalidity = 7;
	f.src_uidnext = 42;
	f.src_modseq = (UINT64_C(1) << 62) + 5;
	f.src_messages = 41;
	assert_int_equal(state_folder_save(st, &f, &err), 0);
	memset(&row, 0, sizeof(row));
	row.src_uid = 3;
	row.state = MSG_FAILED;
	assert_int_equal(state_msgs_put(st, f.id, &row, 1, &err), 0);
	assert_int_equal(state_folder_load(st, a, "INBOX", "INBOX", &h, &err), 0);
	assert_int_equal(h.id, f.id);
	assert_int_equal(h.src_uidvalidity, UINT32_MAX);
	assert_int_equal(h.dst_uidvalidity, 7);
	assert_int_equal(h.src_uidnext, 42);
	assert_true(h.src_modseq == (UINT64_C(1) << 62) + 5);
	assert_int_equal(h.src_messages, 41);
	assert_int_equal(h.unsettled, 1);
	/* the other account's folder untouched */
	assert_int_equal(state_folder_load(st, b, "INBOX", "INBOX", &g, &err), 0);
	assert_int_equal(g.src_uidnext, 0);

	assert_int_equal(state_folder_saved_dst(st, a, "INBOX", &dst, &err), 1);
	assert_string_equal(dst, "INBOX");
	free(dst);
	/* another destination: the ledger and the scan position forgotten */
	assert_int_equal(state_folder_load(st, a, "INBOX", "Archive/INBOX", &h, &err), 0);
	assert_int_equal(h.id, f.id);
	assert_int_equal(h.src_uidvalidity, 0);
	assert_int_equal(h.src_uidnext, 0);
	assert_int_equal(h.unsettled, 0);
	assert_int_equal(state_folder_saved_dst(st, a, "INBOX", &dst, &err), 1);
	assert_string_equal(dst, "Archive/INBOX");
	free(dst);
	assert_int_equal(state_folder_load(st, a, "INBOX", "Archive/INBOX", &h, &err), 0);
	assert_int_equal(h.src_uidnext, 0);

	/* reset */
	h.src_uidvalidity = 9;
	h.src_uidnext = 5;
	assert_int_equal(state_folder_save(st, &h, &err), 0);
	assert_int_equal(state_msgs_put(st, h.id, &row, 1, &err), 0);
	assert_int_equal(state_folder_reset(st, &h, &err), 0);
	assert_int_equal(h.src_uidvalidity, 0);
	assert_int_equal(h.src_uidnext, 0);
	assert_int_equal(state_folder_load(st, a, "INBOX", "Archive/INBOX", &h, &err), 0);
	assert_int_equal(h.src_uidvalidity, 0);
	assert_int_equal(h.unsettled, 0);
	/* a folder of an account no one made */
	assert_int_equal(state_folder_load(st, a + b + 100, "X", "X", &h, &err), -1);
	assert_int_equal(err.kind, TR_ERR_LOCAL);
	state_close(st);
}

void test_if_ledger(void **state)
{
	struct tr_error err;
	struct state *st = contract_open(state);
	struct state_folder f;
	struct state_msg rows[4], *got;
	uint32_t del[3] = { 7, 999, 3 };
	int64_t a;
	size_t n, i;

	assert_int_equal(state_account(st, "a", &a, &err), 0);
	assert_int_equal(state_folder_load(st, a, "INBOX", "INBOX", &f, &err), 0);
	assert_int_equal(state_msgs_load(st, f.id, &got, &n, &err), 0);
	assert_int_equal(n, 0);
	state_msgs_free(got, n);
	/* nothing to do is no call at all */
	assert_int_equal(state_msgs_put(st, f.id, NULL, 0, &err), 0);
	assert_int_equal(state_msgs_delete(st, f.id, NULL, 0, &err), 0);

	memset(rows, 0, sizeof(rows));
	rows[0].src_uid = 7;
	rows[0].state = MSG_PENDING;
	rows[0].dst_uidnext = 100;
	rows[1].src_uid = UINT32_MAX;
	rows[1].dst_uid = UINT32_MAX - 1;
	rows[1].state = MSG_DONE;
	rows[1].flags = (char *)"\\Seen $Label1";
	for (i = 0; i < FP_LEN; i++)
		rows[1].fp[i] = (unsigned char)(i * 7 + 1);
	rows[1].has_fp = true;
	rows[2].src_uid = 3;
	rows[2].state = MSG_FAILED;
	rows[2].error = (char *)"NO [OVERQUOTA] \x1b[31mfull\x01";
	rows[3].src_uid = 5;
	rows[3].dst_uid = 50;
	rows[3].state = MSG_DONE;
	assert_int_equal(state_msgs_put(st, f.id, rows, 4, &err), 0);
	assert_int_equal(state_msgs_load(st, f.id, &got, &n, &err), 0);
	assert_int_equal(n, 4);
	/* ordered by src_uid, whatever order they were put in */
	assert_int_equal(got[0].src_uid, 3);
	assert_int_equal(got[1].src_uid, 5);
	assert_int_equal(got[2].src_uid, 7);
	assert_int_equal(got[3].src_uid, UINT32_MAX);
	assert_int_equal(got[0].state, MSG_FAILED);
	assert_non_null(got[0].error);
	assert_true(text_is_clean(got[0].error, strlen(got[0].error)));
	assert_non_null(strstr(got[0].error, "NO [OVERQUOTA]"));
	assert_non_null(strstr(got[0].error, "full"));
	assert_false(got[0].has_fp);
	/* flags NULL came back as "" */
	assert_non_null(got[1].flags);
	assert_string_equal(got[1].flags, "");
	assert_null(got[1].error);
	assert_int_equal(got[1].dst_uid, 50);
	assert_int_equal(got[2].state, MSG_PENDING);
	assert_int_equal(got[2].dst_uidnext, 100);
	assert_int_equal(got[3].dst_uid, UINT32_MAX - 1);
	assert_string_equal(got[3].flags, "\\Seen $Label1");
	assert_true(got[3].has_fp);
	assert_memory_equal(got[3].fp, rows[1].fp, FP_LEN);
	state_msgs_free(got, n);
	assert_int_equal(state_folder_load(st, a, "INBOX", "INBOX", &f, &err), 0);
	assert_int_equal(f.unsettled, 2);

	/* replaced, not added */
	rows[0].state = MSG_DONE;
	rows[0].dst_uid = 70;
	rows[0].flags = (char *)"\\Flagged";
	assert_int_equal(state_msgs_put(st, f.id, rows, 1, &err), 0);
	assert_int_equal(state_msgs_load(st, f.id, &got, &n, &err), 0);
	assert_int_equal(n, 4);
	assert_int_equal(got[2].src_uid, 7);
	assert_int_equal(got[2].state, MSG_DONE);
	assert_int_equal(got[2].dst_uid, 70);
	assert_string_equal(got[2].flags, "\\Flagged");
	state_msgs_free(got, n);

	/* deleted (an unknown uid is no error) */
	assert_int_equal(state_msgs_delete(st, f.id, del, 3, &err), 0);
	assert_int_equal(state_msgs_load(st, f.id, &got, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_int_equal(got[0].src_uid, 5);
	assert_int_equal(got[1].src_uid, UINT32_MAX);
	state_msgs_free(got, n);
	assert_int_equal(state_folder_load(st, a, "INBOX", "INBOX", &f, &err), 0);
	assert_int_equal(f.unsettled, 0);
	state_close(st);
}

void test_if_locks(void **state)
{
	struct state_case *c = *state;
	struct tr_error err;
	struct state *st = contract_open(state), *st2;
	struct state_lock *l1, *l2, *lb;
	int64_t a, b;

	assert_int_equal(state_account(st, "a", &a, &err), 0);
	assert_int_equal(state_account(st, "b", &b, &err), 0);
	l1 = state_account_lock(st, a, &err);
	assert_non_null(l1);
	/* a second lock of the same account fails, through this handle... */
	memset(&err, 0, sizeof(err));
	assert_null(state_account_lock(st, a, &err));
	assert_int_equal(err.kind, TR_ERR_LOCAL);
	assert_non_null(strstr(err.msg, "another trasloco run is migrating this account"));
	/* ...or another one on the same state */
	assert_int_equal(state_open_backend(c->backend, c->where, &st2, &err), 0);
	assert_null(state_account_lock(st2, a, &err));
	/* another account is free */
	lb = state_account_lock(st2, b, &err);
	assert_non_null(lb);
	/* unlocked, then locked again */
	state_account_unlock(l1);
	l2 = state_account_lock(st2, a, &err);
	assert_non_null(l2);
	assert_null(state_account_lock(st, a, &err));
	state_account_unlock(l2);
	state_account_unlock(NULL);
	/* a closed handle's locks go with it, as a dead process's would */
	assert_null(state_account_lock(st, b, &err));
	state_close(st2);
	lb = state_account_lock(st, b, &err);
	assert_non_null(lb);
	state_close(st);
	st = contract_open(state);
	lb = state_account_lock(st, b, &err);
	assert_non_null(lb);
	state_account_unlock(lb);
	state_close(st);
}

void test_if_reopen(void **state)
{
	struct tr_error err;
	struct state *st = contract_open(state);
	struct state_folder f, g;
	struct state_msg row, *got;
	int64_t a, a2;
	char status[16];
	size_t n;

	assert_int_equal(state_account(st, "a", &a, &err), 0);
	assert_int_equal(state_account_set_status(st, a, "partial", "cut", &err), 0);
	assert_int_equal(state_folder_load(st, a, "Sent", "Sent", &f, &err), 0);
	f.src_uidvalidity = 11;
	f.src_uidnext = 2;
	assert_int_equal(state_folder_save(st, &f, &err), 0);
	memset(&row, 0, sizeof(row));
	row.src_uid = 1;
	row.state = MSG_PENDING;
	row.dst_uidnext = 9;
	assert_int_equal(state_msgs_put(st, f.id, &row, 1, &err), 0);
	/* a crash: the handle dropped, not a byte more written */
	state_close(st);

	st = contract_open(state);
	assert_int_equal(state_account(st, "a", &a2, &err), 0);
	assert_int_equal(a2, a);
	assert_int_equal(state_account_get_status(st, a, status, sizeof(status), &err), 0);
	assert_string_equal(status, "partial");
	assert_int_equal(state_folder_load(st, a, "Sent", "Sent", &g, &err), 0);
	assert_int_equal(g.id, f.id);
	assert_int_equal(g.src_uidvalidity, 11);
	assert_int_equal(g.src_uidnext, 2);
	assert_int_equal(g.unsettled, 1);
	assert_int_equal(state_msgs_load(st, g.id, &got, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_int_equal(got[0].state, MSG_PENDING);
	assert_int_equal(got[0].dst_uidnext, 9);
	state_msgs_free(got, n);
	state_close(st);
}

#define THREADS 4
#define PUTS 20

struct put_job {
	struct state *st;
	int64_t folder_id;
	uint32_t base;
	int failed;
};

static void *put_many(void *arg)
{
	struct put_job *j = arg;
	struct tr_error err;
	struct state_msg rows[3];
	int k, i;

	memset(rows, 0, sizeof(rows));
	for (k = 0; k < PUTS; k++) {
		for (i = 0; i < 3; i++) {
			rows[i].src_uid = j->base + (uint32_t)(k * 3 + i) + 1;
			rows[i].state = MSG_DONE;
			rows[i].flags = (char *)"\\Seen";
		}
		if (state_msgs_put(j->st, j->folder_id, rows, 3, &err) < 0)
			j->failed++;
	}
	return NULL;
}

/* One handle, many threads: every row of every thread kept. */
void test_if_threads(void **state)
{
	struct tr_error err;
	struct state *st = contract_open(state);
	struct state_folder f;
	struct state_msg *got;
	struct put_job jobs[THREADS];
	pthread_t t[THREADS];
	int64_t a;
	size_t n, i;

	assert_int_equal(state_account(st, "a", &a, &err), 0);
	assert_int_equal(state_folder_load(st, a, "INBOX", "INBOX", &f, &err), 0);
	for (i = 0; i < THREADS; i++) {
		jobs[i] = (struct put_job){ .st = st, .folder_id = f.id,
					    .base = (uint32_t)(i * 1000) };
		assert_int_equal(pthread_create(&t[i], NULL, put_many, &jobs[i]), 0);
	}
	for (i = 0; i < THREADS; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(jobs[i].failed, 0);
	}
	assert_int_equal(state_msgs_load(st, f.id, &got, &n, &err), 0);
	assert_int_equal(n, THREADS * PUTS * 3);
	for (i = 1; i < n; i++)
		assert_true(got[i - 1].src_uid < got[i].src_uid);
	state_msgs_free(got, n);
	state_close(st);
}


/* Names are bytes as the servers gave them (not always UTF-8), texts hold
 * whatever a flag or a reply may: quotes, backslashes, braces, commas. */
void test_if_names(void **state)
{
	static const char *const names[] = {
		"Caf\xe9 \xff\xfe", "a\\b \"q\" 'x'", "{x,y}", "NULL", "",
		"Entw&APw-rfe", "\\x41",
	};
	struct tr_error err;
	struct state *st = contract_open(state);
	struct state_folder f, g;
	struct state_msg rows[3], *got;
	int64_t a, a2, ids[sizeof(names) / sizeof(names[0])];
	size_t i, j, n;
	char *dst;

	assert_int_equal(state_account(st, "\xe9t\xe9@s:993 -> x\\y@d:993", &a, &err), 0);
	assert_int_equal(state_account(st, "\xe9t\xe9@s:993 -> x\\y@d:993", &a2, &err), 0);
	assert_int_equal(a2, a);
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		assert_int_equal(state_folder_load(st, a, names[i], names[i], &f, &err), 0);
		ids[i] = f.id;
		for (j = 0; j < i; j++)
			assert_int_not_equal(ids[j], ids[i]);
	}
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		assert_int_equal(state_folder_saved_dst(st, a, names[i], &dst, &err), 1);
		assert_string_equal(dst, names[i]);
		free(dst);
		/* the same bytes: the same folder, its ledger kept */
		assert_int_equal(state_folder_load(st, a, names[i], names[i], &g, &err), 0);
		assert_int_equal(g.id, ids[i]);
	}

	memset(rows, 0, sizeof(rows));
	rows[0].src_uid = 1;
	rows[0].state = MSG_DONE;
	rows[0].flags = (char *)"\\Seen $a\"b {c,d} NULL \\\\";
	rows[1].src_uid = 2;
	rows[1].state = MSG_FAILED;
	rows[1].error = (char *)"NO \"quoted\" {brace} back\\slash, comma";
	/* the same uid twice in one batch: the last one wins, as a replace */
	rows[2].src_uid = 1;
	rows[2].state = MSG_DONE;
	rows[2].dst_uid = 9;
	rows[2].flags = (char *)"\\Answered";
	assert_int_equal(state_msgs_put(st, ids[0], rows, 3, &err), 0);
	assert_int_equal(state_msgs_load(st, ids[0], &got, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_int_equal(got[0].dst_uid, 9);
	assert_string_equal(got[0].flags, "\\Answered");
	assert_string_equal(got[1].error, "NO \"quoted\" {brace} back\\slash, comma");
	state_msgs_free(got, n);
	assert_int_equal(state_msgs_put(st, ids[1], rows, 1, &err), 0);
	assert_int_equal(state_msgs_load(st, ids[1], &got, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_string_equal(got[0].flags, "\\Seen $a\"b {c,d} NULL \\\\");
	state_msgs_free(got, n);
	state_close(st);
}

/* The day counts of throttles (throttle.h): per key and day, added up,
 * never below 0, kept across a reopen (a re-run the same day). */
void test_if_day_bytes(void **state)
{
	struct tr_error err;
	struct state *st = contract_open(state);
	uint64_t t = 99;

	assert_int_equal(state_day_bytes_add(st, "src 192.0.2.1:993", 20000, 0, &t, &err), 0);
	assert_int_equal(t, 0);
	assert_int_equal(state_day_bytes_add(st, "src 192.0.2.1:993", 20000, 1000, &t, &err), 0);
	assert_int_equal(t, 1000);
	assert_int_equal(state_day_bytes_add(st, "src 192.0.2.1:993", 20000, 234, &t, &err), 0);
	assert_int_equal(t, 1234);
	/* another day, another server: counted apart */
	assert_int_equal(state_day_bytes_add(st, "src 192.0.2.1:993", 20001, 5, &t, &err), 0);
	assert_int_equal(t, 5);
	assert_int_equal(state_day_bytes_add(st, "dst 192.0.2.2:993", 20000, 7, &t, &err), 0);
	assert_int_equal(t, 7);
	assert_int_equal(state_day_bytes_add(st, "dst 192.0.2.2:993", 20000, -100, &t, &err), 0);
	assert_int_equal(t, 0);
	state_close(st);
	st = contract_open(state);
	assert_int_equal(state_day_bytes_add(st, "src 192.0.2.1:993", 20000, 0, &t, &err), 0);
	assert_int_equal(t, 1234);
	state_close(st);
}
