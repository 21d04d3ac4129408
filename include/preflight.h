/* preflight: `trasloco check`, before anything is copied.
 *
 * For every account, under the same session limits as a run: log in on
 * both sides, count the folders, messages and bytes to copy on the source
 * (the folders the run would take), read the destination's quota where the
 * server offers QUOTA, and say which accounts will fail (login refused,
 * server unreachable) or will not fit, and which accounts do not exist yet
 * on the destination (enum preflight_dst: listed after the table, and
 * "destination_account" in the report).  Nothing is written anywhere but the
 * report.  With --folders (job_config.show_folders) it also shows where
 * every folder goes (preview.h), the counts then being the plan's.
 */
#ifndef TRASLOCO_PREFLIGHT_H
#define TRASLOCO_PREFLIGHT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "error.h"
#include "preview.h"
#include "run.h"

/* What the destination's login said of the account. */
enum preflight_dst {
	PREFLIGHT_DST_UNKNOWN = 0,    /* not tried (the source failed first, or no answer) */
	PREFLIGHT_DST_EXISTS,         /* logged in */
	PREFLIGHT_DST_MISSING,        /* the admin's login as the user was refused */
	PREFLIGHT_DST_NO_LOGIN,       /* the user's own login was refused: missing or
				       * wrong password, the server does not say which */
};

struct preflight_item {
	const struct run_account *acc;
	bool ok;                  /* both logins worked and it fits */
	enum preflight_dst dst_account;
	struct tr_error err;      /* why not, when a login or listing failed */
	uint32_t folders;
	uint32_t messages;
	uint64_t bytes;           /* RFC822.SIZE sum on the source */
	bool quota_known;
	uint64_t quota_used, quota_limit;   /* destination, bytes */
	bool fits;                /* no quota, or used + bytes <= limit */
	double seconds;
	bool have_plan;           /* show_folders: the plan, owned */
	struct preview plan;
};

/* items_r: one per account, in order; free with preflight_items_free.
 * Returns 0 when every account is ok. */
int preflight_run(const struct run_env *env, const struct run_account *acc, size_t n,
		  struct preflight_item **items_r);
void preflight_items_free(struct preflight_item *items, size_t n);
/* Each account's plan (when shown), then one line per account. */
void preflight_print(FILE *f, const struct preflight_item *items, size_t n);
/* {"accounts": [{"email", "status": "ok"|"failed"|"will_not_fit", "error",
 * "destination_account": "exists"|"missing"|"missing_or_wrong_password"|null,
 * "folders", "messages", "bytes", "quota_used", "quota_limit", and with
 * --folders "excluded", "destination_messages", "folders_plan":
 * preview_json's}]} */
int preflight_json(const char *path, const struct preflight_item *items, size_t n,
		   struct tr_error *err);

#endif
