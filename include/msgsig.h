/* msgsig: recognise a message that a destination server changed while
 * storing it, the ways servers are known to change what they store.
 *
 * The fingerprint (fingerprint.h) pairs messages exactly: same size, same
 * header fields.  Some destinations store a message altered: Cyrus replaces
 * 8-bit bytes in header fields with 'X' (munge8bit), servers turn bare LF
 * into CR LF, add trace or status fields (Return-Path, Received, X-Spam-*)
 * or drop status fields (Status, X-UID).  Such a copy has another size and
 * fingerprint, and a run without a usable ledger would copy it again.  Two
 * keys, computed over the whole message as it streams by, tolerate exactly
 * those changes and nothing else:
 *   strict: every header field in order, the name lower-cased, the value
 *           unfolded with runs of white space as one space, and every run
 *           of 8-bit bytes or 'X' as one 'X' (in names: 'x'); then the
 *           body, byte for byte but with CR LF read as LF;
 *   loose:  the same without the trace and status fields servers add or
 *           drop on their own (msgsig_server_field).
 * Pairing (sync.c) tries strict before loose, so that two source messages
 * that differ only in such fields (one mail delivered twice by two routes)
 * each find their own copy first.  INTERNALDATE plays no part, so a
 * destination that shows it in another zone changes nothing.
 *
 * Pure computation, no I/O; a context belongs to one thread.
 */
#ifndef TRASLOCO_MSGSIG_H
#define TRASLOCO_MSGSIG_H

#include <stdbool.h>
#include <stddef.h>

#include "fingerprint.h"

struct msgsig {
	unsigned char strict[FP_LEN];
	unsigned char loose[FP_LEN];
};

struct msgsig_ctx;

/* NULL on ENOMEM. */
struct msgsig_ctx *msgsig_new(void);
/* Feed the next len bytes of the message (any chunking gives the same keys). */
void msgsig_update(struct msgsig_ctx *c, const void *data, size_t len);
/* The keys; frees the context. */
void msgsig_final(struct msgsig_ctx *c, struct msgsig *out);

/* True for a header field name (any case) that servers add to or drop
 * from a message they store: left out of the loose key. */
bool msgsig_server_field(const char *name, size_t len);

#endif
