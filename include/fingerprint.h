/* fingerprint: a short digest that recognises a message on another server
 * without downloading it.
 *
 * Computed from the message size and a fixed set of header fields
 * (FP_HEADER_FIELDS, fetched with BODY.PEEK[HEADER.FIELDS (...)]), after
 * normalising what servers legitimately change: line endings, folding,
 * runs of white space, case of field names.  Content-Type carries the MIME
 * boundary, so two messages that reuse one Message-ID with different
 * bodies still differ.  Used to match messages when the UID ledger cannot
 * be trusted (first run onto a non-empty folder, UIDVALIDITY changed) and
 * to settle appends whose reply never came.
 */
#ifndef TRASLOCO_FINGERPRINT_H
#define TRASLOCO_FINGERPRINT_H

#include <stddef.h>
#include <stdint.h>

#define FP_LEN 16
#define FP_HEX_LEN (FP_LEN * 2)
/* Field names as sent in the FETCH (upper case, in this order). */
#define FP_HEADER_FIELDS "MESSAGE-ID DATE FROM TO CC SUBJECT CONTENT-TYPE IN-REPLY-TO"

/* hdr/len: the raw HEADER.FIELDS section (may be empty).  size: RFC822.SIZE. */
void fp_compute(const char *hdr, size_t len, uint32_t size, unsigned char out[FP_LEN]);

/* The bucket of a message whose copy a destination may have altered
 * (msgsig.h): from the same header section, only Date, From and Subject,
 * each run of 8-bit bytes or 'X' as one 'X', and no size.  Messages in one
 * bucket are candidates to be compared by content, nothing more. */
void fp_bucket(const char *hdr, size_t len, unsigned char out[FP_LEN]);

/* SHA-256 of a whole message, streamed: tells apart messages whose
 * fingerprints agree but whose bodies differ.  new returns NULL on ENOMEM;
 * final frees the context. */
struct fp_content;
struct fp_content *fp_content_new(void);
void fp_content_update(struct fp_content *c, const void *data, size_t len);
void fp_content_final(struct fp_content *c, unsigned char out[FP_LEN]);

/* Lower-case hex into out (FP_HEX_LEN + 1 bytes). */
void fp_to_hex(const unsigned char fp[FP_LEN], char *out);
/* Parse FP_HEX_LEN hex digits; -1 if malformed. */
int fp_from_hex(const char *hex, unsigned char fp[FP_LEN]);

#endif
