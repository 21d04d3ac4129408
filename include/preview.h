/* preview: where every folder of an account will go, before the copy
 * (`trasloco check --folders`, `trasloco migrate --dry-run`).
 *
 * The plan a run would make (folder.h's mapping, the same --folder,
 * --exclude and --map), with for each source folder its destination name,
 * why (same name, special-use role, --map, renamed because the destination
 * refused the name on an earlier run, excluded, ...), its messages and
 * bytes on the source and the messages already in the destination folder.
 * Read only on both servers: LIST (and LSUB, NAMESPACE), STATUS, EXAMINE
 * and a FETCH of the sizes; nothing is created, subscribed, appended or
 * marked seen.  A name the destination would refuse shows only once a run
 * has met the refusal (CREATE is the only way to ask).
 *
 * The sessions are the caller's (one thread per account); the result is
 * owned by the caller (preview_free).
 */
#ifndef TRASLOCO_PREVIEW_H
#define TRASLOCO_PREVIEW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "error.h"
#include "run.h"
#include "store.h"

struct preview_folder {
	char *src_name;           /* '/' form, owned */
	char *dst_name;           /* '/' form, owned; NULL when excluded */
	/* static: "same", "special-use", "map", "refused", "delimiter", "clash",
	 * "undecodable", "renamed", "excluded" */
	const char *why;
	const char *role;         /* static, for "special-use": "Sent", ...; else NULL */
	bool dst_exists;          /* the destination has the folder already */
	bool have_messages;       /* the source answered STATUS */
	uint32_t messages;        /* on the source */
	bool have_bytes;          /* read (not for excluded folders) */
	uint64_t bytes;           /* RFC822.SIZE summed, on the source */
	uint32_t dst_messages;    /* in the destination folder now (0 when new) */
};

struct preview {
	struct preview_folder *v; /* owned: INBOX, then the others by name */
	size_t n;
	uint32_t folders, excluded;               /* to copy, left out */
	uint64_t messages, bytes, dst_messages;   /* of the folders to copy */
};

/* The plan of one account over its two open sessions (env: the job's folder
 * rules).  0, or -1 with err (the session's failure, or TR_ERR_USAGE for an
 * impossible --map); p is filled as far as it got and freed by the caller
 * either way. */
int preview_account(const struct run_env *env, struct store *src, struct store *dst,
		    struct preview *p, struct tr_error *err);
void preview_free(struct preview *p);

/* A table: one line per folder under a line naming the account. */
void preview_print(FILE *f, const char *label, const struct preview *p);
/* [{"source", "destination" (null when excluded), "why", "role",
 * "destination_exists", "messages", "bytes", "destination_messages"}];
 * NULL when out of memory. */
json_t *preview_json(const struct preview *p);

#endif
