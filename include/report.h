/* report: what a run did, for humans (summary) and for programs (JSON).
 *
 * Reports name accounts, folders and servers' replies; they never contain
 * a password.
 */
#ifndef TRASLOCO_REPORT_H
#define TRASLOCO_REPORT_H

#include <stdint.h>
#include <stdio.h>

#include "account.h"

/* "15.2 MB" into buf. */
const char *report_bytes(uint64_t bytes, char *buf, size_t len);

/* The human summary of one account. */
void report_summary(FILE *f, const char *label, const struct account_result *r);

#endif
