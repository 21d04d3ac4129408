/* stage: where fetched message bodies wait for their APPEND.
 *
 * A batch of messages is streamed in from the source chunk by chunk.  Small
 * messages stay in memory; once one grows past the per-message limit it
 * moves to a private, already-unlinked temporary file, so a 40 MB
 * attachment costs page cache, not resident memory, and nothing is left
 * behind if the process dies.  stage_reset() empties the stage for the next
 * batch and keeps the file for reuse.
 *
 * A stage belongs to one worker; it is not locked.
 */
#ifndef TRASLOCO_STAGE_H
#define TRASLOCO_STAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "error.h"

/* All the messages of one batch held in memory together stay under this:
 * the rest goes to the file, so memory does not follow the batch size. */
#define STAGE_MEM_TOTAL (4u << 20)

struct stage_msg {
	uint32_t uid;
	bool literal8;            /* holds NUL bytes: APPEND it as a literal8 (BINARY) */
	/* what the store's check for NUL bytes that BODY[] hides found (nul.h) */
	bool stray;               /* it shows a stray 0x80 */
	unsigned nul_asked;       /* BINARY[] fetches it took */
	long nul_restored;        /* NUL bytes put back */
	const char *unchecked;    /* static: why a 0x80 was left as it is, or NULL */
	uint64_t len;
	char *mem;                /* data when in memory (owned by the stage), else NULL */
	uint64_t off;             /* offset in the stage file when mem == NULL */
};

struct stage {
	struct stage_msg *v;      /* messages of the current batch, owned */
	size_t n, cap;
	char *dir;                /* where the temporary file goes, owned */
	size_t mem_limit;         /* per message: larger ones go to the file */
	size_t mem_used;          /* bytes of the batch's messages held in memory */
	int fd;                   /* -1 until a message needs the file */
	uint64_t file_len;
	/* the message being received */
	bool open;
	char *buf;
	size_t buf_len, buf_cap;
	bool cur_in_file;
	uint64_t cur_off, cur_len;
};

/* dir: NULL for $TMPDIR or /tmp.  mem_limit: bytes per message kept in memory. */
int stage_init(struct stage *sp, const char *dir, size_t mem_limit, struct tr_error *err);
void stage_free(struct stage *sp);
/* Drop all messages (memory freed, file truncated). */
void stage_reset(struct stage *sp);

/* Receive one message: begin, any number of writes, end with its UID.
 * A begin while a message is open discards the open one. */
void stage_begin(struct stage *sp);
int stage_write(struct stage *sp, const void *data, size_t len, struct tr_error *err);
int stage_end(struct stage *sp, uint32_t uid, struct tr_error *err);
/* Drop the message being received (a fetch failed half way). */
void stage_abort(struct stage *sp);

struct stage_msg *stage_find(const struct stage *sp, uint32_t uid);

/* Copy len bytes at offset off of message m into buf. */
int stage_read(const struct stage *sp, const struct stage_msg *m, uint64_t off, void *buf,
	       size_t len, struct tr_error *err);
/* The SHA-256 content digest of message m (fp_content, fingerprint.h). */
int stage_hash(const struct stage *sp, const struct stage_msg *m, unsigned char *out,
	       struct tr_error *err);
/* Replace the len bytes at offset off of message m with data (its length
 * does not change). */
int stage_overwrite(struct stage *sp, const struct stage_msg *m, uint64_t off, const void *data,
		    size_t len, struct tr_error *err);

#endif
