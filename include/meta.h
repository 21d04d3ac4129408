/* meta: what a metadata FETCH says of a folder's messages, as a vector.
 *
 * Shared by sync (ledger and match planning) and verify (comparing two
 * folders): collecting a FETCH's messages, one entry per UID, and keying
 * messages by a hash of their whole content when fingerprints cannot tell
 * them apart.  A meta_vec owns its entries and their flags strings
 * (meta_vec_free).
 */
#ifndef TRASLOCO_META_H
#define TRASLOCO_META_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "fingerprint.h"
#include "msgsig.h"
#include "stage.h"
#include "store.h"

/* One message as a FETCH described it. */
struct meta {
	uint32_t uid;
	uint32_t size;
	char *flags;
	char date[32];
	unsigned char fp[FP_LEN];
	unsigned char key[FP_LEN];   /* what pairs messages: fp, or the content's hash */
	unsigned char bucket[FP_LEN];  /* fp_bucket: candidates for msgsig pairing */
	struct msgsig sig;        /* when signed (meta_sign_contents) */
	bool hashed;              /* key holds the content's hash (meta_hash_contents) */
	bool sig_done;            /* sig is set */
	bool has_fp;
	bool used;                /* match mode: paired with a source message */
	uint32_t seq;             /* arrival order, to keep the latest of duplicates */
};

struct meta_vec {
	struct meta *v;
	size_t n, cap;
	uint32_t min_uid;         /* drop UIDs below this */
	uint32_t *bad;            /* messages the store reported unreadable, owned */
	size_t n_bad, cap_bad;
};

/* "3,5:9,12" for sorted UIDs; the caller frees (NULL on ENOMEM). */
char *meta_uidset(const uint32_t *uids, size_t n);

void meta_vec_free(struct meta_vec *mv);
/* An store_msg_cb adding each message at or above mv->min_uid to mv. */
int meta_collect(const struct store_msg *m, void *ctx);
/* qsort comparison by UID. */
int meta_cmp_uid(const void *a, const void *b);
/* Sort by UID and keep one entry per UID (the later report). */
void meta_vec_sort_unique(struct meta_vec *mv);
/* Set key (and hashed) of the messages of mv (sorted by UID) whose UIDs are
 * listed: a SHA-256 of their whole content, fetched from s in batches of
 * about batch_bytes through sp (reset before and after).  A message the
 * server does not return (expunged meanwhile) keeps hashed false. */
int meta_hash_contents(struct store *s, struct stage *sp, uint64_t batch_bytes,
		       struct meta_vec *mv, const uint32_t *uids, size_t n, struct tr_error *err);

/* Set sig (and sig_done) of the messages of mv (sorted by UID) whose UIDs
 * are listed, from their whole content fetched as meta_hash_contents does.
 * A message the server does not return keeps sig_done false. */
int meta_sign_contents(struct store *s, struct stage *sp, uint64_t batch_bytes,
		       struct meta_vec *mv, const uint32_t *uids, size_t n, struct tr_error *err);

/* Pairing beyond the fingerprint, for what it left: source messages
 * src->v[si[k]] (from session s) and every destination message of dst
 * (from session d) not yet used.  Where a source message's bucket
 * (fp_bucket) meets a destination one, both are downloaded (through sp)
 * and compared by msgsig's strict key, then by its loose key.  partner[k]
 * gets the index in dst of the message paired with si[k] (marked used), or
 * SIZE_MAX.  min_dst_uid (NULL: none) bounds the destination UIDs source
 * message k may pair with.  Both vectors sorted by UID.  *n_src, *n_dst:
 * how many messages were downloaded and compared.  Returns the number of
 * pairs, or -1. */
long meta_pair_altered(struct store *s, struct store *d, struct stage *sp,
		       uint64_t batch_bytes, struct meta_vec *src, const size_t *si, size_t ns,
		       struct meta_vec *dst, const uint32_t *min_dst_uid, size_t *partner,
		       size_t *n_src, size_t *n_dst, struct tr_error *err);

#endif
