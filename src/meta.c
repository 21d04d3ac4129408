/* meta: see include/meta.h */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "meta.h"

char *meta_uidset(const uint32_t *uids, size_t n)
{
	size_t cap = 32 + n * 12, len = 0, i = 0;
	char *out = malloc(cap);

	if (out == NULL)
		return NULL;
	out[0] = '\0';
	while (i < n) {
		size_t j = i;

		while (j + 1 < n && uids[j + 1] == uids[j] + 1)
			j++;
		if (j > i)
			len += (size_t)snprintf(out + len, cap - len, "%s%u:%u", len ? "," : "",
						uids[i], uids[j]);
		else
			len += (size_t)snprintf(out + len, cap - len, "%s%u", len ? "," : "", uids[i]);
		i = j + 1;
	}
	return out;
}

void meta_vec_free(struct meta_vec *mv)
{
	size_t i;

	for (i = 0; i < mv->n; i++)
		free(mv->v[i].flags);
	free(mv->v);
	free(mv->bad);
	memset(mv, 0, sizeof(*mv));
}

int meta_collect(const struct store_msg *m, void *ctx)
{
	struct meta_vec *mv = ctx;
	struct meta *d;

	if (m->uid < mv->min_uid)
		return 0;
	if (m->unreadable) {
		if (mv->n_bad == mv->cap_bad) {
			size_t cap = mv->cap_bad ? mv->cap_bad * 2 : 16;
			uint32_t *nb = realloc(mv->bad, cap * sizeof(*nb));

			if (nb == NULL)
				return -1;
			mv->bad = nb;
			mv->cap_bad = cap;
		}
		mv->bad[mv->n_bad++] = m->uid;
		return 0;
	}
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
static int each_content(struct store *s, struct stage *sp, uint64_t batch_bytes,
			struct meta_vec *mv, const uint32_t *uids, size_t n,
			int (*fn)(const struct stage *sp, const struct stage_msg *sm,
				  struct meta *m, struct tr_error *err),
			struct tr_error *err)
{
	size_t i = 0;

	while (i < n) {
		size_t start = i, k;
		uint64_t bytes = 0;
		struct store_set set;
		int w;

		while (i < n && (i == start || bytes < batch_bytes)) {
			struct meta key = { .uid = uids[i] }, *m =
				bsearch(&key, mv->v, mv->n, sizeof(*mv->v), meta_cmp_uid);

			bytes += m != NULL ? m->size : 0;
			i++;
		}
		set = store_set_uids(uids + start, i - start);
		stage_reset(sp);
		w = store_fetch_bodies(s, &set, sp, NULL, NULL, err);
		if (w < 0)
			return -1;
		for (k = 0; k < sp->n; k++) {
			struct meta key = { .uid = sp->v[k].uid }, *m =
				bsearch(&key, mv->v, mv->n, sizeof(*mv->v), meta_cmp_uid);

			if (m != NULL && fn(sp, &sp->v[k], m, err) < 0) {
				stage_reset(sp);
				return -1;
			}
		}
	}
	stage_reset(sp);
	return 0;
}

static int hash_one(const struct stage *sp, const struct stage_msg *sm, struct meta *m,
		    struct tr_error *err)
{
	if (stage_hash(sp, sm, m->key, err) < 0)
		return -1;
	m->hashed = true;
	return 0;
}

int meta_hash_contents(struct store *s, struct stage *sp, uint64_t batch_bytes,
		       struct meta_vec *mv, const uint32_t *uids, size_t n, struct tr_error *err)
{
	return each_content(s, sp, batch_bytes, mv, uids, n, hash_one, err);
}

static int sign_one(const struct stage *sp, const struct stage_msg *sm, struct meta *m,
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

		if (stage_read(sp, sm, off, buf, chunk, err) < 0) {
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

int meta_sign_contents(struct store *s, struct stage *sp, uint64_t batch_bytes,
		       struct meta_vec *mv, const uint32_t *uids, size_t n, struct tr_error *err)
{
	return each_content(s, sp, batch_bytes, mv, uids, n, sign_one, err);
}

/* ---- messages a destination altered (msgsig.h) ------------------------ */

static int cmp_bucket(const void *a, const void *b)
{
	return memcmp(a, b, FP_LEN);
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

long meta_pair_altered(struct store *s, struct store *d, struct stage *sp,
		       uint64_t batch_bytes, struct meta_vec *src, const size_t *si, size_t ns,
		       struct meta_vec *dst, const uint32_t *min_dst_uid, size_t *partner,
		       size_t *n_src, size_t *n_dst, struct tr_error *err)
{
	unsigned char (*b)[FP_LEN] = NULL;
	uint32_t *su = NULL, *du = NULL;
	size_t nb = 0, nsu = 0, ndu = 0, i, k;
	long pairs = -1;
	int pass;

	*n_src = *n_dst = 0;
	for (k = 0; k < ns; k++)
		partner[k] = SIZE_MAX;
	/* the buckets of one side, then of the other */
	b = malloc(((dst->n > ns ? dst->n : ns) + 1) * sizeof(*b));
	su = malloc((ns + 1) * sizeof(*su));
	du = malloc((dst->n + 1) * sizeof(*du));
	if (b == NULL || su == NULL || du == NULL) {
		tr_error_set(err, TR_ERR_LOCAL, "out of memory");
		goto out;
	}
	for (i = 0; i < dst->n; i++)
		if (!dst->v[i].used && dst->v[i].has_fp)
			memcpy(b[nb++], dst->v[i].bucket, FP_LEN);
	qsort(b, nb, FP_LEN, cmp_bucket);
	for (k = 0; k < ns; k++) {
		const struct meta *m = &src->v[si[k]];

		if (m->has_fp && bsearch(m->bucket, b, nb, FP_LEN, cmp_bucket) != NULL)
			su[nsu++] = m->uid;
	}
	pairs = 0;
	if (nsu == 0)
		goto out;
	/* The destination side of the buckets the source side has. */
	nb = 0;
	for (k = 0; k < ns; k++)
		if (src->v[si[k]].has_fp)
			memcpy(b[nb++], src->v[si[k]].bucket, FP_LEN);
	qsort(b, nb, FP_LEN, cmp_bucket);
	for (i = 0; i < dst->n; i++)
		if (!dst->v[i].used && dst->v[i].has_fp &&
		    bsearch(dst->v[i].bucket, b, nb, FP_LEN, cmp_bucket) != NULL)
			du[ndu++] = dst->v[i].uid;
	qsort(su, nsu, sizeof(*su), cmp_u32);
	*n_src = nsu;
	*n_dst = ndu;
	if (meta_sign_contents(s, sp, batch_bytes, src, su, nsu, err) < 0 ||
	    meta_sign_contents(d, sp, batch_bytes, dst, du, ndu, err) < 0) {
		pairs = -1;
		goto out;
	}
	/* strict first: a message keeps its own copy when another differs
	 * from it only in fields a server adds */
	for (pass = 0; pass < 2; pass++) {
		for (k = 0; k < ns; k++) {
			const struct meta *m = &src->v[si[k]];
			const unsigned char *key = pass == 0 ? m->sig.strict : m->sig.loose;

			if (partner[k] != SIZE_MAX || !m->sig_done)
				continue;
			for (i = 0; i < dst->n; i++) {
				struct meta *o = &dst->v[i];

				if (o->used || !o->sig_done ||
				    (min_dst_uid != NULL && o->uid < min_dst_uid[k]) ||
				    memcmp(key, pass == 0 ? o->sig.strict : o->sig.loose, FP_LEN) != 0)
					continue;
				o->used = true;
				partner[k] = i;
				pairs++;
				break;
			}
		}
	}
out:
	free(b);
	free(su);
	free(du);
	return pairs;
}
