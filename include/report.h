/* report: what a run did, for humans (summary) and for programs (JSON).
 *
 * Reports name accounts, folders and servers' replies; they never contain
 * a password.  Every text in them is cleaned (text.h): control bytes and
 * invalid UTF-8 escaped, so the JSON is valid and no key is lost, and a
 * terminal showing the summary gets no escape sequence of a server's.
 */
#ifndef TRASLOCO_REPORT_H
#define TRASLOCO_REPORT_H

#include <stdbool.h>
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
	const struct job_config *cfg;   /* the pass (--since, --before, --trial, --final);
					 * NULL: a full pass */
};

/* What a pass copies, for people: "full", "since 2026-11-01", "trial (5 per
 * folder)", "final"... into buf. */
const char *report_pass_name(const struct job_config *cfg, char *buf, size_t len);
/* migrate: the line of a final pass's outcome (nothing when it was none). */
void report_final(FILE *f, const struct run_item *it);

/* JSON report (jansson), written to path atomically with mode 0600:
 * {"job": {...}, "accounts": [{"email", "status", "error", "folders",
 * "messages_copied", "messages_present", "messages_failed", "bytes",
 * "seconds", ...}], "totals": {...}}. */
int report_json(const char *path, const struct report_job *job, const struct run_result *r,
		struct tr_error *err);
/* Building a JSON report without losing a key silently: a text value is
 * cleaned (text.h), NULL giving null; a step that fails (out of memory)
 * clears *ok.  set and append take value, as jansson's _new calls do. */
json_t *report_json_text(const char *s);
void report_json_set(json_t *obj, const char *key, json_t *value, bool *ok);
void report_json_append(json_t *arr, json_t *value, bool *ok);
/* Write a JSON document to path atomically, mode 0600 (root is borrowed);
 * refused (TR_ERR_LOCAL) when ok is false: something was lost building it. */
int report_write_json(const char *path, json_t *root, bool ok, struct tr_error *err);
/* The same accounts as CSV, one row each, with a header row. */
int report_csv(const char *path, const struct run_result *r, struct tr_error *err);

#endif
