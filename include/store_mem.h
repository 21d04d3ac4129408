/* store_mem: a mail store in memory, one of store.h's drivers ("mem").
 *
 * A real store, not a mock: a mem_world is a server's mailboxes (folders
 * with a name, a delimiter, a role, a subscription, UIDVALIDITY, UIDNEXT
 * and HIGHESTMODSEQ; messages with a UID, canonical flags (flags.h), an
 * internal date, their bytes and a modseq), and every store opened on it
 * (store_conf.arg is the world) does what the IMAP store does against a
 * server, with the same semantics (store_imap.c): the list as LIST, LSUB
 * and NAMESPACE give it, statuses, CREATE and SUBSCRIBE with typed
 * refusals, metadata with fingerprints computed as imap.c does (fp_compute
 * and fp_bucket over the FP_HEADER_FIELDS fields in message order, as
 * BODY.PEEK[HEADER.FIELDS] returns them), CHANGEDSINCE by each message's
 * modseq, bodies into the stage, APPEND (new UIDs, APPENDUID), flag
 * changes (a new modseq for each message changed), quota.  It lets the
 * engine be tested without a server: the planner, the copy, crashes.
 *
 * What a test sets (mem_opts) makes the world look like a given server:
 * no APPENDUID (UIDPLUS), no modseqs (CONDSTORE), no BINARY, an APPENDLIMIT,
 * characters refused in folder names, and a rewrite of what is appended (a
 * destination that alters the messages it stores: Cyrus' munge8bit, a
 * Received field it adds, bare LF stored as CR LF).
 *
 * A stop (net.h: of the process, or of the calling thread's scope) fails
 * a store's next operation with TR_ERR_STOPPED and leaves it broken, as
 * the IMAP store's next wait would.
 *
 * Threading: a world is guarded by one lock, so several stores (workers,
 * the engine's fetch and append threads, the test itself) may use one world
 * at once; a store belongs to one thread at a time, as store.h says.
 * Ownership: the world owns its folders and messages; what the read-back
 * helpers return belongs to the caller (mem_msgs_free).  The world must
 * outlive every store opened on it.
 */
#ifndef TRASLOCO_STORE_MEM_H
#define TRASLOCO_STORE_MEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "folder.h"
#include "store.h"

extern const struct store_driver store_mem_driver;

/* What a destination may do to a message it stores (mem_opts.rewrite). */
enum {
	MEM_REWRITE_MUNGE8BIT = 1,    /* 8-bit bytes of the header become 'X' (Cyrus) */
	MEM_REWRITE_RECEIVED = 2,     /* a Received field is put on top */
	MEM_REWRITE_CRLF = 4,         /* a bare LF is stored as CR LF */
};

/* A rewrite of a test's own: *out (malloc'd, *out_len bytes) replaces the
 * message in[0..len).  Returns 0, or -1 when out of memory. */
typedef int mem_rewrite_fn(void *ctx, const char *in, size_t len, char **out,
			   size_t *out_len);

struct mem_opts {
	bool no_dst_ids;          /* an append tells no ids (no UIDPLUS) */
	bool no_modseq;           /* no modseqs (no CONDSTORE): statuses say 0 */
	bool no_binary;           /* a message with NUL bytes is refused (no BINARY) */
	uint64_t append_limit;    /* larger messages are refused; 0: none */
	uint64_t refuse_larger;   /* larger messages are refused by APPEND with no
				   * APPENDLIMIT announced ([OVERQUOTA]); 0: none */
	const char *refuse_chars; /* a CREATE of a name with one of these is refused
				   * as STORE_REFUSED_NAME; NULL: none */
	bool name_char_untold;    /* such a refusal does not name the character */
	unsigned rewrite;         /* MEM_REWRITE_*, applied to what is appended */
	mem_rewrite_fn *rewrite_fn;   /* then this, when set */
	void *rewrite_ctx;
	uint64_t quota_kib;       /* 0: no quota */
};

struct mem_world;

/* A server whose personal namespace has prefix ("" or "INBOX.") and
 * delimiter delim, with an empty INBOX.  NULL when out of memory. */
struct mem_world *mem_world_new(const char *prefix, char delim);
void mem_world_free(struct mem_world *w);
/* Replace the options (copied; refuse_chars and rewrite_ctx are borrowed).
 * Stores opened afterwards see the new capabilities. */
void mem_world_set_opts(struct mem_world *w, const struct mem_opts *o);

/* Add folder raw (its wire name) with a role and subscription.  -1 when it
 * exists already or out of memory. */
int mem_folder_add(struct mem_world *w, const char *raw, enum folder_role role,
		   bool subscribed);
bool mem_folder_exists(struct mem_world *w, const char *raw);
/* The folder's status (uidvalidity 0 when there is no such folder). */
struct store_status mem_folder_status(struct mem_world *w, const char *raw);
/* A new UIDVALIDITY for folder raw, as a server that rebuilt or re-created
 * it gives: its messages (kept, in order, or dropped) get new UIDs from 1.
 * -1 when there is no such folder. */
int mem_folder_recreate(struct mem_world *w, const char *raw, bool keep_messages);

/* Deliver a message to folder raw: its bytes as they are, flags in any
 * order (made canonical), date NULL for the world's default.  *uid_r (may
 * be NULL) gets its UID.  -1 when there is no such folder or no memory. */
int mem_msg_add(struct mem_world *w, const char *raw, const void *data, size_t len,
		const char *flags, const char *date, uint32_t *uid_r);
/* Expunge, or replace the flags of, message uid of folder raw (a new
 * modseq).  -1 when there is no such message. */
int mem_msg_expunge(struct mem_world *w, const char *raw, uint32_t uid);
int mem_msg_set_flags(struct mem_world *w, const char *raw, uint32_t uid, const char *flags);

/* A folder's messages read back, in UID order. */
struct mem_msg_copy {
	uint32_t uid;
	char *flags;              /* canonical, owned */
	char date[32];
	char *data;               /* owned, NUL-terminated for convenience */
	size_t len;
	uint64_t modseq;
};
/* The messages of folder raw into *v (the caller frees with mem_msgs_free);
 * -1 when there is no such folder or no memory. */
int mem_folder_read(struct mem_world *w, const char *raw, struct mem_msg_copy **v, size_t *n);
void mem_msgs_free(struct mem_msg_copy *v, size_t n);

/* How many messages the stores of this world have appended, over its life. */
uint64_t mem_world_appended(struct mem_world *w);

/* The rewrite a MEM_REWRITE_* mask makes of a message (also what the
 * tests compare a destination with).  Returns 0 with *out (malloc'd), -1
 * when out of memory. */
int mem_rewrite(unsigned mask, const char *in, size_t len, char **out, size_t *out_len);

#endif
