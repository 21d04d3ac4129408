/* state_backend: what a place to keep the state implements (state.h is
 * what the engine sees; state.c picks a backend by name and dispatches).
 *
 * One struct of operations per backend, every operation in the engine's
 * terms, with the meaning state.h gives the public function of the same
 * name.  A backend is one file (state_sqlite.c, state_pg.c, state_mem.c),
 * listed in state.c's table; a new one is a new file and a line there.
 *
 * The contract every backend keeps:
 *  - open(where) returns its own handle (void *), which it alone reads;
 *    close frees it.  path() is a text for messages, valid until close.
 *  - A write (put, delete, reset, a new folder's row) is all or none, and
 *    is kept before the call returns (for a durable backend: on disk, so
 *    the ledger survives a power cut; mem keeps it as long as the process).
 *  - Ids (accounts, folders) are positive, stable for the life of the
 *    store, never reused for another account or folder.
 *  - Error texts are stored cleaned (text_clean_dup); flags NULL are kept
 *    as ""; ledger rows come back ordered by src_uid.
 *  - A store of a newer schema version than STATE_SCHEMA_VERSION is refused
 *    on open (TR_ERR_LOCAL), an older one upgraded, all or none.
 *  - Calls on one handle may come from many threads at once: the backend
 *    serialises them.  A lock may be taken and released from any thread.
 *  - Errors are TR_ERR_LOCAL, with the store's path in the text; a store
 *    out of reach (a network database) is TR_ERR_TEMP, said so in the
 *    text, and so is a write refused because the account's lease was lost.
 *  - Locks that can be lost (leases) implement lock_watch; a lost lock's
 *    account is written no more through this handle.
 */
#ifndef TRASLOCO_STATE_BACKEND_H
#define TRASLOCO_STATE_BACKEND_H

#include <stdlib.h>

#include "state.h"

/* The logical schema (accounts, folders, ledger rows) every backend keeps.
 * SQLite's upgrade list has exactly this many steps (checked when it
 * compiles); a change of the schema raises it. */
#define STATE_SCHEMA_VERSION 3

struct state_backend {
	const char *name;           /* as in "NAME:WHERE" */
	const char *where;          /* what WHERE is, for usage texts ("DIR") */
	bool durable;               /* outlives the process: a location may name it */
	int (*open)(const char *where, void **h_r, struct tr_error *err);
	void (*close)(void *h);
	const char *(*path)(void *h);

	int (*account)(void *h, const char *key, int64_t *id_r, struct tr_error *err);
	/* *lock_r: the backend's own lock handle, passed back to unlock. */
	int (*account_lock)(void *h, int64_t account_id, void **lock_r, struct tr_error *err);
	void (*account_unlock)(void *h, void *lock);
	/* NULL for backends whose locks cannot be lost (state_lock_watch). */
	void (*lock_watch)(void *h, void *lock, void (*lost)(void *ctx), void *ctx);
	int (*account_get_status)(void *h, int64_t account_id, char *buf, size_t len,
				  struct tr_error *err);
	int (*account_set_status)(void *h, int64_t account_id, const char *status,
				  const char *error, struct tr_error *err);

	int (*folder_load)(void *h, int64_t account_id, const char *src_name,
			   const char *dst_name, struct state_folder *f, struct tr_error *err);
	int (*folder_saved_dst)(void *h, int64_t account_id, const char *src_name,
				char **dst_name_r, struct tr_error *err);
	int (*folder_reset)(void *h, struct state_folder *f, struct tr_error *err);
	int (*folder_save)(void *h, const struct state_folder *f, struct tr_error *err);

	int (*msgs_load)(void *h, int64_t folder_id, struct state_msg **rows_r, size_t *n_r,
			 struct tr_error *err);
	int (*msgs_put)(void *h, int64_t folder_id, const struct state_msg *rows, size_t n,
			struct tr_error *err);
	int (*msgs_delete)(void *h, int64_t folder_id, const uint32_t *src_uids, size_t n,
			   struct tr_error *err);

	/* The day counts of throttles: not part of the ledger's schema (an
	 * older trasloco ignores them), so a backend keeps them in a table it
	 * makes when first used. */
	int (*day_bytes_add)(void *h, const char *key, int64_t day, int64_t delta,
			     uint64_t *total_r, struct tr_error *err);
	/* A rate's schedule shared by the processes using the store (NULL for
	 * a store one process uses: the throttle keeps the schedule itself);
	 * a table made when first used, as day_bytes_add's. */
	int (*rate_take)(void *h, const char *key, double cost_s, double *wait_r,
			 struct tr_error *err);
};

extern const struct state_backend state_backend_sqlite;
extern const struct state_backend state_backend_mem;
extern const struct state_backend state_backend_pg;

/* Free n ledger rows and the array (state_msgs_free, for backends: they
 * call nothing of state.c, which calls them). */
static inline void state_rows_free(struct state_msg *rows, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(rows[i].flags);
		free(rows[i].error);
	}
	free(rows);
}

#endif
