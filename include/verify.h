/* verify: `trasloco verify`, after the last run: is anything left behind?
 *
 * Mail keeps arriving at the old server while MX records move; once they
 * have, the admin wants to know that every message of the old server is on
 * the new one.  For every account, in the folders a run would take and
 * under the same folder mapping and session limits, every source message
 * is looked for in its destination folder by fingerprint (RFC822.SIZE and
 * the main header fields; each destination message answers for one source
 * message).  What is not found is listed by folder and UID.  Messages only
 * on the destination (delivered there after the move) are counted, not a
 * fault; so are flags that differ (users go on reading on the new server).
 * With content, messages are compared by a SHA-256 of their whole content
 * instead (every message downloaded from both sides): a copy that differs
 * in any byte shows as missing.
 * Read only: EXAMINE and BODY.PEEK on both sides, no state written.
 */
#ifndef TRASLOCO_VERIFY_H
#define TRASLOCO_VERIFY_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "error.h"
#include "run.h"

/* One source message not found on the destination. */
struct verify_missing {
	char *folder;             /* source folder ('/' form), owned */
	uint32_t uid;
	uint32_t size;
	char date[32];            /* INTERNALDATE */
};

struct verify_item {
	const struct run_account *acc;
	struct tr_error err;      /* why the account could not be verified */
	uint32_t folders;         /* compared */
	uint32_t folders_missing; /* absent on the destination */
	uint32_t src_messages, found, missing, dst_only, flags_differ;
	uint32_t altered;         /* of found: stored altered by the destination (msgsig.h) */
	struct verify_missing *v; /* the missing ones, owned (at most VERIFY_MAX_LISTED) */
	size_t n;
	double seconds;
};

#define VERIFY_MAX_LISTED 10000

/* items_r: one per account, in order; free with verify_items_free.
 * Returns 0 when every account is complete. */
int verify_run(const struct run_env *env, const struct run_account *acc, size_t n,
	       bool content, struct verify_item **items_r);
void verify_items_free(struct verify_item *items, size_t n);
void verify_print(FILE *f, const struct verify_item *items, size_t n);
/* {"accounts": [{"email", "status": "complete"|"incomplete"|"failed", "error",
 * "folders", "folders_missing", "source_messages", "found", "missing",
 * "destination_only", "flags_differ", "altered_by_destination", "missing_messages":
 * [{"folder", "uid",
 * "size", "internaldate"}]}]} */
int verify_json(const char *path, const struct verify_item *items, size_t n,
		struct tr_error *err);

#endif
