/* report: what a run did, for humans (summary) and for programs (JSON).
 *
 * Reports name accounts, folders and servers' replies; they never contain
 * a password.
 */
#ifndef TRASLOCO_REPORT_H
#define TRASLOCO_REPORT_H

#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "account.h"
#include "error.h"
#include "run.h"

/* "15.2 MB" into buf. */
const char *report_bytes(uint64_t bytes, char *buf, size_t len);

/* The human summary of one account. */
void report_summary(FILE *f, const char *label, const struct account_result *r);

/* One line per account and the totals: the end of `trasloco run`. */
void report_table(FILE *f, const struct run_result *r);

/* What the report says about the job itself. */
struct report_job {
	const char *name;           /* job file or CSV path */
	const char *src, *dst;      /* "host:port" */
	const char *started;        /* ISO 8601 UTC */
	const char **bad_rows;      /* CSV rows that were skipped, as messages */
	size_t n_bad_rows;
};

/* JSON report (jansson), written to path atomically with mode 0600:
 * {"job": {...}, "accounts": [{"email", "status", "error", "folders",
 * "messages_copied", "messages_present", "messages_failed", "bytes",
 * "seconds", ...}], "totals": {...}}. */
int report_json(const char *path, const struct report_job *job, const struct run_result *r,
		struct tr_error *err);
/* Write a JSON document to path atomically, mode 0600 (root is borrowed). */
int report_write_json(const char *path, json_t *root, struct tr_error *err);
/* The same accounts as CSV, one row each, with a header row. */
int report_csv(const char *path, const struct run_result *r, struct tr_error *err);

#endif
