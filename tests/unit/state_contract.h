/* The state interface's contract tests (state_contract.c), shared by the
 * programs that run them against each backend.  A runner gives each test a
 * struct state_case as its cmocka state, naming a backend and a fresh,
 * empty store of it (its setup makes it; its teardown removes it). */
#ifndef TRASLOCO_TEST_STATE_CONTRACT_H
#define TRASLOCO_TEST_STATE_CONTRACT_H

#include "state.h"

struct state_case {
	const char *backend;    /* "sqlite", "mem", "postgresql" */
	char where[600];        /* its store (state_open_backend) */
};

/* Open the case's store (fails the test if it cannot). */
struct state *contract_open(void **state);

void test_if_accounts(void **state);
void test_if_folders(void **state);
void test_if_ledger(void **state);
void test_if_locks(void **state);
void test_if_reopen(void **state);
void test_if_threads(void **state);
void test_if_names(void **state);
void test_if_day_bytes(void **state);

/* The suite's rows for one backend: cmocka test entries, each named
 * "test [label]". */
#define STATE_CONTRACT(label, setup, teardown, casep) \
	{ "test_if_accounts [" label "]", test_if_accounts, setup, teardown, casep }, \
	{ "test_if_folders [" label "]", test_if_folders, setup, teardown, casep }, \
	{ "test_if_ledger [" label "]", test_if_ledger, setup, teardown, casep }, \
	{ "test_if_locks [" label "]", test_if_locks, setup, teardown, casep }, \
	{ "test_if_reopen [" label "]", test_if_reopen, setup, teardown, casep }, \
	{ "test_if_threads [" label "]", test_if_threads, setup, teardown, casep }, \
	{ "test_if_names [" label "]", test_if_names, setup, teardown, casep }, \
	{ "test_if_day_bytes [" label "]", test_if_day_bytes, setup, teardown, casep }

#endif
