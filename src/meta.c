/* meta: see include/meta.h */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "meta.h"
#include "sync.h"

void meta_vec_free(struct meta_vec *mv)
{
	size_t i;

	for (i = 0; i < mv->n; i++)
		free(mv->v[i].flags);
	free(mv->v);
	memset(mv, 0, sizeof(*mv));
}

int meta_collect(const struct imap_msg *m, void *ctx)
{
	struct meta_vec *mv = ctx;
	struct meta *d;

	if (m->uid < mv->min_uid)
		return 0;
	if (mv->n == mv->cap) {
		size_t cap = mv->cap ? mv->cap * 2 : 256;
		struct meta *nv = realloc(mv->v, cap * sizeof(*nv));

		if (nv == NULL)
			return -1;
		mv->v = nv;
		mv->cap = cap;
	}
	d = &mv->v[mv->n];
	memset(d, 0, sizeof(*d));
	d->uid = m->uid;
	d->size = m->size;
	d->flags = strdup(m->flags);
	if (d->flags == NULL)
		return -1;
	memcpy(d->date, m->date, sizeof(d->date));
	memcpy(d->fp, m->fp, FP_LEN);
	memcpy(d->bucket, m->bucket, FP_LEN);
	d->has_fp = m->has_fp;
	mv->n++;
	return 0;
}

int meta_cmp_uid(const void *a, const void *b)
{
	const struct meta *x = a, *y = b;

	return x->uid < y->uid ? -1 : x->uid > y->uid;
}

static int cmp_meta_uid_seq(const void *a, const void *b)
{
	const struct meta *x = a, *y = b;

	if (x->uid != y->uid)
		return x->uid < y->uid ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Sort by UID and keep one entry per UID: a server may describe a message
 * twice in one response (a flag change reported as it happens); the later
 * report is the newer. */
void meta_vec_sort_unique(struct meta_vec *mv)
{
	size_t i, k = 0;

	if (mv->n < 2)
		return;
	/* qsort is not stable: order equal UIDs by arrival explicitly. */
	for (i = 0; i < mv->n; i++)
		mv->v[i].seq = (uint32_t)i;
	qsort(mv->v, mv->n, sizeof(*mv->v), cmp_meta_uid_seq);
	for (i = 0; i < mv->n; i++) {
		if (i + 1 < mv->n && mv->v[i + 1].uid == mv->v[i].uid) {
			free(mv->v[i].flags);
			continue;
		}
		mv->v[k++] = mv->v[i];
	}
	mv->n = k;
}

/* Fetch the listed messages' bodies in batches of about batch_bytes and
 * hand each to fn with its entry in mv. */
static int each_content(struct imap_session *s, struct spool *sp, uint64_t batch_bytes,
			struct meta_vec *mv, const uint32_t *uids, size_t n,
			int (*fn)(const struct spool *sp, const struct spool_msg *sm,
				  struct meta *m, struct tr_error *err),
			struct tr_error *err)
{
	size_t i = 0;

	while (i < n) {
		size_t start = i, k;
		uint64_t bytes = 0;
		char *set;
		int w;

		while (i < n && (i == start || bytes < batch_bytes)) {
			struct meta key = { .uid = uids[i] }, *m =
				bsearch(&key, mv->v, mv->n, sizeof(*mv->v), meta_cmp_uid);

			bytes += m != NULL ? m->size : 0;
			i++;
		}
		set = sync_uidset(uids + start, i - start);
		if (set == NULL) {
			tr_error_set(err, TR_ERR_LOCAL, "out of memory");
			return -1;
		}
		spool_reset(sp);
		w = imap_fetch_bodies(s, set, sp, err);
		free(set);
		if (w < 0)
			return -1;
		for (k = 0; k < sp->n; k++) {
			struct meta key = { .uid = sp->v[k].uid }, *m =
				bsearch(&key, mv->v, mv->n, sizeof(*mv->v), meta_cmp_uid);

			if (m != NULL && fn(sp, &sp->v[k], m, err) < 0) {
				spool_reset(sp);
				return -1;
			}
		}
	}
	spool_reset(sp);
	return 0;
}

static int hash_one(const struct spool *sp, const struct spool_msg *sm, struct meta *m,
		    struct tr_error *err)
{
	if (spool_hash(sp, sm, m->key, err) < 0)
		return -1;
	m->hashed = true;
	return 0;
}

int meta_hash_contents(struct imap_session *s, struct spool *sp, uint64_t batch_bytes,
		       struct meta_vec *mv, const uint32_t *uids, size_t n, struct tr_error *err)
{
	return each_content(s, sp, batch_bytes, mv, uids, n, hash_one, err);
}

static int sign_one(const struct spool *sp, const struct spool_msg *sm, struct meta *m,
		    struct tr_error *err)
{
	struct msgsig_ctx *c = msgsig_new();
	char buf[65536];
	uint64_t off = 0;

	if (c == NULL) {
		tr_error_set(err, TR_ERR_LOCAL, "out of memory");
		return -1;
	}
	while (off < sm->len) {
		size_t chunk = sm->len - off > sizeof(buf) ? sizeof(buf) : (size_t)(sm->len - off);

		if (spool_read(sp, sm, off, buf, chunk, err) < 0) {
			msgsig_final(c, &m->sig);
			return -1;
		}
		msgsig_update(c, buf, chunk);
		off += chunk;
	}
	msgsig_final(c, &m->sig);
	m->sig_done = true;
	return 0;
}

int meta_sign_contents(struct imap_session *s, struct spool *sp, uint64_t batch_bytes,
		       struct meta_vec *mv, const uint32_t *uids, size_t n, struct tr_error *err)
{
	return each_content(s, sp, batch_bytes, mv, uids, n, sign_one, err);
}
