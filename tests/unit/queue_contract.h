/* The queue's contract tests (queue_contract.c), shared by the programs
 * that run them against each backend.  A runner gives each test a struct
 * queue_case as its cmocka state, naming a backend and a fresh, empty
 * queue of it (its setup makes it and calls queue_contract_case; its
 * teardown removes it), and its own look at the tables. */
#ifndef TRASLOCO_TEST_QUEUE_CONTRACT_H
#define TRASLOCO_TEST_QUEUE_CONTRACT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "seal.h"

struct queue_case {
	const char *backend;            /* "postgresql", "sqlite" */
	char where[600];                /* the queue's location (queue_open) */
	char dir[600];                  /* a private directory for key files */
	char keyfile[700];              /* the key file keys came from, in dir */
	struct seal_keys *keys;
	/* the dialect's SQL for now, and for a time %d seconds ago */
	const char *now, *ago_fmt;
	/* The runner's look at the tables, in SQL both backends read alike:
	 * the first column of the only row (a number, or text: "" for NULL,
	 * the caller's to free); a statement.  A failure fails the test. */
	long long (*one)(struct queue_case *c, const char *sql);
	char *(*one_str)(struct queue_case *c, const char *sql);
	void (*run)(struct queue_case *c, const char *sql);
	/* Every byte the store keeps that a password could hide in (the
	 * caller's to free). */
	char *(*dump)(struct queue_case *c, size_t *len);
	/* NULL, or around a job's delete: what else the backend keeps of it
	 * (PostgreSQL: the fleet's sessions) put in, then checked gone. */
	void (*before_delete)(struct queue_case *c, int64_t job);
	void (*after_delete)(struct queue_case *c, int64_t job);
	/* NULL, or hold every job as another caller of queue_schedule would
	 * (PostgreSQL: their rows locked by another connection), then let go. */
	void (*hold_jobs)(struct queue_case *c, bool hold);
};

/* The runner's setup calls it with the case, before the test runs. */
void queue_contract_case(void **state);

void test_submit(void **state);
void test_race(void **state);
void test_takeover(void **state);
void test_release(void **state);
void test_cancel(void **state);
void test_retry(void **state);
void test_delete(void **state);
void test_status(void **state);
void test_status_shape(void **state);
void test_rekey(void **state);
void test_refusals(void **state);
void test_detail(void **state);
void test_passes(void **state);
void test_schedule(void **state);
void test_every_parse(void **state);
void test_outcome_metrics(void **state);

/* The suite's rows for one backend: cmocka test entries, each named
 * "test [label]". */
#define QUEUE_CONTRACT(label, setup, teardown, casep) \
	{ "test_submit [" label "]", test_submit, setup, teardown, casep }, \
	{ "test_race [" label "]", test_race, setup, teardown, casep }, \
	{ "test_takeover [" label "]", test_takeover, setup, teardown, casep }, \
	{ "test_release [" label "]", test_release, setup, teardown, casep }, \
	{ "test_cancel [" label "]", test_cancel, setup, teardown, casep }, \
	{ "test_retry [" label "]", test_retry, setup, teardown, casep }, \
	{ "test_delete [" label "]", test_delete, setup, teardown, casep }, \
	{ "test_status [" label "]", test_status, setup, teardown, casep }, \
	{ "test_status_shape [" label "]", test_status_shape, setup, teardown, casep }, \
	{ "test_rekey [" label "]", test_rekey, setup, teardown, casep }, \
	{ "test_refusals [" label "]", test_refusals, setup, teardown, casep }, \
	{ "test_detail [" label "]", test_detail, setup, teardown, casep }, \
	{ "test_passes [" label "]", test_passes, setup, teardown, casep }, \
	{ "test_schedule [" label "]", test_schedule, setup, teardown, casep }, \
	{ "test_every_parse [" label "]", test_every_parse, setup, teardown, casep }, \
	{ "test_outcome_metrics [" label "]", test_outcome_metrics, setup, teardown, casep }

#endif
