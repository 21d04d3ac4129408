/* sync: see include/sync.h */
#include "config.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flags.h"
#include "log.h"
#include "meta.h"
#include "net.h"
#include "sync.h"
#include "throttle.h"



static int cmp_meta_key(const void *a, const void *b)
{
	const struct meta *x = a, *y = b;
	int c = memcmp(x->key, y->key, FP_LEN);

	if (c != 0)
		return c;
	return x->uid < y->uid ? -1 : x->uid > y->uid;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* Find the ledger row of src_uid in rows sorted by src_uid. */
static struct state_msg *ledger_find(struct state_msg *rows, size_t n, uint32_t src_uid)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (rows[mid].src_uid == src_uid)
			return &rows[mid];
		if (rows[mid].src_uid < src_uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* ---- flag updates --------------------------------------------------------- */

struct flag_update {
	uint32_t dst_uid;
	const char *flags;        /* borrowed */
};

struct flag_queue {
	struct flag_update *v;
	size_t n, cap;
};

static int flag_queue_add(struct flag_queue *q, uint32_t dst_uid, const char *flags)
{
	if (q->n == q->cap) {
		size_t cap = q->cap ? q->cap * 2 : 64;
		struct flag_update *nv = realloc(q->v, cap * sizeof(*nv));

		if (nv == NULL)
			return -1;
		q->v = nv;
		q->cap = cap;
	}
	q->v[q->n].dst_uid = dst_uid;
	q->v[q->n].flags = flags;
	q->n++;
	return 0;
}

static int cmp_update(const void *a, const void *b)
{
	const struct flag_update *x = a, *y = b;
	int c = strcmp(x->flags, y->flags);

	if (c != 0)
		return c;
	return x->dst_uid < y->dst_uid ? -1 : x->dst_uid > y->dst_uid;
}

/* One flag change per distinct flag set. */
static int flag_queue_apply(const struct sync_folder_job *job, struct flag_queue *q,
			    struct tr_error *err)
{
	uint32_t *uids;
	size_t i = 0;

	if (q->n == 0)
		return 0;
	uids = malloc(q->n * sizeof(*uids));
	if (uids == NULL) {
		tr_error_set(err, TR_ERR_LOCAL, "out of memory");
		return -1;
	}
	qsort(q->v, q->n, sizeof(*q->v), cmp_update);
	while (i < q->n) {
		size_t k = 0;
		const char *flags = q->v[i].flags;
		struct store_set set;

		while (i < q->n && strcmp(q->v[i].flags, flags) == 0)
			uids[k++] = q->v[i++].dst_uid;
		set = store_set_uids(uids, k);
		if (store_set_flags(job->dst, &set, flags, err) < 0) {
			free(uids);
			return -1;
		}
	}
	free(uids);
	return 0;
}

/* ---- the folder sync ---------------------------------------------------- */

struct run {
	const struct sync_folder_job *job;
	struct store *src;         /* job->src */
	struct sync_counts *counts;
	struct state_folder f;
	struct store_status S, D;
	struct state_msg *ledger;
	size_t n_ledger;
	struct meta_vec copy;     /* source messages to append, by UID */
	struct flag_queue flagq;
	struct state_msg *rows;   /* scratch rows for ledger writes */
	size_t rows_cap;
	/* what the source side fetched while the destination side selected */
	struct meta_vec pre_fresh, pre_retry, pre_changed;
	uint32_t pre_lo;
	bool pre_done;
	uint32_t unreadable;      /* source messages recorded as unreadable */
	/* what the store could not deliver while fetching bodies (the fetcher
	 * thread adds, the appender records) */
	pthread_mutex_t bad_lock;
	uint32_t *bad;
	size_t n_bad, cap_bad;
	uint32_t *again;          /* pending rows settled as "not on the destination" */
	size_t n_again;
	uint32_t deferred_lo;     /* the lowest UID the pass left out; 0: none */
};

static int rows_reserve(struct run *r, size_t n, struct tr_error *err)
{
	struct state_msg *nr;

	if (n <= r->rows_cap)
		return 0;
	nr = realloc(r->rows, n * sizeof(*nr));
	if (nr == NULL) {
		tr_error_set(err, TR_ERR_LOCAL, "out of memory");
		return -1;
	}
	r->rows = nr;
	r->rows_cap = n;
	return 0;
}

void sync_failures_free(struct sync_failures *f)
{
	size_t i;

	if (f == NULL)
		return;
	for (i = 0; i < f->n; i++)
		free(f->v[i].reply);
	free(f->v);
	memset(f, 0, sizeof(*f));
}

/* A message not copied, kept for the reports while there is room (the
 * count, counts->failed, is the caller's).  Out of memory the list is only
 * shorter: the count still says how many failed. */
static void note_failure(const struct run *r, uint32_t uid, const char *reply)
{
	struct sync_failures *f = r->job->failures;
	char *copy;

	if (f == NULL || f->n >= SYNC_FAILURES_KEPT)
		return;
	if (f->n == f->cap) {
		size_t cap = f->cap ? 2 * f->cap : 8;
		struct sync_failure *nv;

		if (cap > SYNC_FAILURES_KEPT)
			cap = SYNC_FAILURES_KEPT;
		nv = realloc(f->v, cap * sizeof(*nv));
		if (nv == NULL)
			return;
		f->v = nv;
		f->cap = cap;
	}
	copy = strdup(reply != NULL ? reply : "");
	if (copy == NULL)
		return;
	f->v[f->n].uid = uid;
	f->v[f->n].reply = copy;
	f->n++;
}

/* A source message the store cannot describe or deliver: recorded as
 * failed (tried again on the next run), reported by folder and UID, and
 * the rest goes on. */
#define MAX_UNREADABLE 20

static int record_unreadable(struct run *r, uint32_t uid, const char *what, struct tr_error *err)
{
	struct state_msg row;
	char why[200];

	/* A server whose every answer is broken is not a few odd messages:
	 * give up on the folder rather than report each UID it might have. */
	if (r->unreadable >= MAX_UNREADABLE) {
		tr_error_set(err, TR_ERR_PROTOCOL, "%s: more than %d messages whose %s response "
			     "the source server sends broken: giving up on this folder",
			     r->job->src_name, MAX_UNREADABLE, what);
		return -1;
	}
	snprintf(why, sizeof(why), "the source server's response to %s for this message could "
		 "not be parsed", what);
	memset(&row, 0, sizeof(row));
	row.src_uid = uid;
	row.state = MSG_FAILED;
	row.flags = (char *)"";
	row.error = why;
	log_error(r->job->ctx, "%s: UID %u not copied: %s", r->job->src_name, uid, why);
	r->counts->failed++;
	note_failure(r, uid, why);
	r->unreadable++;
	return state_msgs_put(r->job->state, r->f.id, &row, 1, err);
}

static int fetch_meta(struct store *s, const struct store_set *set, int what, uint64_t since,
		      uint32_t min_uid, struct meta_vec *out, struct tr_error *err)
{
	out->min_uid = min_uid;
	if (store_fetch_meta(s, set, what, since, meta_collect, out, err) < 0) {
		if (err->kind == TR_ERR_LOCAL && err->msg[0] == '\0')
			tr_error_set(err, TR_ERR_LOCAL, "out of memory");
		return -1;
	}
	meta_vec_sort_unique(out);
	return 0;
}

/* What the store could not describe, recorded (see record_unreadable). */
static int take_bad(struct run *r, struct meta_vec *mv, struct tr_error *err)
{
	for (size_t i = 0; i < mv->n_bad; i++)
		if (record_unreadable(r, mv->bad[i], "FETCH", err) < 0)
			return -1;
	mv->n_bad = 0;
	return 0;
}

/* fetch_meta on the source: a message it cannot describe is recorded. */
static int src_fetch_meta(struct run *r, const struct store_set *set, int what, uint64_t since,
			  uint32_t min_uid, struct meta_vec *out, struct tr_error *err)
{
	if (fetch_meta(r->src, set, what, since, min_uid, out, err) < 0)
		return -1;
	return take_bad(r, out, err);
}

static long pair_altered(struct run *r, struct meta_vec *src, const size_t *si, size_t ns,
			 struct meta_vec *dst, const uint32_t *min_dst_uid, size_t *partner,
			 struct tr_error *err);

/* Pending rows the fingerprint did not find (gone[0..*n_gone)): compared
 * by content with the unclaimed destination messages above their UIDNEXT.
 * Those found become done rows in r->rows[*n_found..]; gone keeps the
 * rest.  Returns the number found, or -1. */
static long settle_altered(struct run *r, struct meta_vec *dst, uint32_t *gone, size_t *n_gone,
			   size_t *n_found, struct tr_error *err)
{
	struct meta_vec src = { 0 };
	size_t i, k, *si = NULL, *partner = NULL, left = 0;
	uint32_t *min_uid = NULL;
	struct store_set set = store_set_uids(gone, *n_gone);
	long found = -1;

	for (i = 0; i < dst->n && left == 0; i++)
		if (!dst->v[i].used)
			left++;
	if (left == 0)
		return 0;
	si = malloc((*n_gone + 1) * sizeof(*si));
	partner = malloc((*n_gone + 1) * sizeof(*partner));
	min_uid = malloc((*n_gone + 1) * sizeof(*min_uid));
	if (si == NULL || partner == NULL || min_uid == NULL) {
		tr_error_set(err, TR_ERR_LOCAL, "out of memory");
		goto out;
	}
	if (src_fetch_meta(r, &set, STORE_FETCH_FP, 0, 1, &src, err) < 0)
		goto out;
	for (k = 0; k < src.n; k++) {
		const struct state_msg *p = ledger_find(r->ledger, r->n_ledger, src.v[k].uid);

		si[k] = k;
		min_uid[k] = p != NULL ? p->dst_uidnext : UINT32_MAX;
	}
	found = pair_altered(r, &src, si, src.n, dst, min_uid, partner, err);
	if (found <= 0)
		goto out;
	for (k = 0; k < src.n; k++) {
		struct state_msg *p;

		if (partner[k] == SIZE_MAX ||
		    (p = ledger_find(r->ledger, r->n_ledger, src.v[k].uid)) == NULL)
			continue;
		p->state = MSG_DONE;
		p->dst_uid = dst->v[partner[k]].uid;
		r->rows[(*n_found)++] = *p;
		for (i = 0; i < *n_gone; i++) {
			if (gone[i] == p->src_uid) {
				gone[i] = gone[--*n_gone];
				break;
			}
		}
	}
	if (*n_gone > 1)
		qsort(gone, *n_gone, sizeof(*gone), cmp_u32);
out:
	free(si);
	free(partner);
	free(min_uid);
	meta_vec_free(&src);
	return found;
}

/* Settle pending rows: an APPEND whose reply we never saw may or may not
 * have stored the message.  Look for each fingerprint among destination
 * messages at or above the UIDNEXT saved with the row, and not already
 * claimed by the ledger. */
static int settle_pending(struct run *r, struct tr_error *err)
{
	const struct sync_folder_job *job = r->job;
	struct meta_vec dst = { 0 };
	uint32_t lo = UINT32_MAX, *claimed = NULL, *gone = NULL;
	size_t i, n_claimed = 0, n_pending = 0, n_gone = 0, n_found = 0;
	struct store_set set;
	int ret = -1;

	for (i = 0; i < r->n_ledger; i++) {
		if (r->ledger[i].state != MSG_PENDING)
			continue;
		n_pending++;
		if (r->ledger[i].dst_uidnext < lo)
			lo = r->ledger[i].dst_uidnext;
	}
	if (n_pending == 0)
		return 0;
	if (lo == 0)
		lo = 1;
	set = store_set_from(lo);
	if (fetch_meta(job->dst, &set, STORE_FETCH_FP, 0, lo, &dst, err) < 0)
		goto out;
	claimed = malloc((r->n_ledger + 1) * sizeof(*claimed));
	gone = malloc((n_pending + 1) * sizeof(*gone));
	if (claimed == NULL || gone == NULL) {
		tr_error_set(err, TR_ERR_LOCAL, "out of memory");
		goto out;
	}
	for (i = 0; i < r->n_ledger; i++)
		if (r->ledger[i].state == MSG_DONE && r->ledger[i].dst_uid != 0)
			claimed[n_claimed++] = r->ledger[i].dst_uid;
	if (n_claimed > 1)
		qsort(claimed, n_claimed, sizeof(*claimed), cmp_u32);
	for (i = 0; i < dst.n; i++)
		if (bsearch(&dst.v[i].uid, claimed, n_claimed, sizeof(*claimed), cmp_u32) != NULL)
			dst.v[i].used = true;

	if (rows_reserve(r, n_pending, err) < 0)
		goto out;
	for (i = 0; i < r->n_ledger; i++) {
		struct state_msg *p = &r->ledger[i];
		size_t j;

		if (p->state != MSG_PENDING)
			continue;
		for (j = 0; j < dst.n; j++) {
			struct meta *d = &dst.v[j];

			if (!d->used && d->has_fp && p->has_fp && d->uid >= p->dst_uidnext &&
			    memcmp(d->fp, p->fp, FP_LEN) == 0)
				break;
		}
		if (j < dst.n) {
			dst.v[j].used = true;
			p->state = MSG_DONE;
			p->dst_uid = dst.v[j].uid;
			r->rows[n_found++] = *p;
		} else {
			gone[n_gone++] = p->src_uid;
		}
	}
	/* The destination may have stored some altered (msgsig.h): look at
	 * their contents before copying them again. */
	if (n_gone > 0) {
		long k = settle_altered(r, &dst, gone, &n_gone, &n_found, err);

		if (k < 0)
			goto out;
	}
	for (i = 0; i < n_gone; i++) {
		struct state_msg *p = ledger_find(r->ledger, r->n_ledger, gone[i]);

		if (p != NULL)
			p->state = MSG_FAILED;   /* not on the destination: copy again */
	}
	if (n_gone > 0) {
		r->again = malloc(n_gone * sizeof(*r->again));
		if (r->again == NULL) {
			tr_error_set(err, TR_ERR_LOCAL, "out of memory");
			goto out;
		}
		memcpy(r->again, gone, n_gone * sizeof(*gone));
		r->n_again = n_gone;
	}
	if (state_msgs_put(job->state, r->f.id, r->rows, n_found, err) < 0 ||
	    state_msgs_delete(job->state, r->f.id, gone, n_gone, err) < 0)
		goto out;
	log_info(job->ctx, "%s: settled %zu interrupted append(s): %zu found on the destination, "
		 "%zu to copy again", job->src_name, n_pending, n_found, n_gone);
	ret = 0;
out:
	free(claimed);
	free(gone);
	meta_vec_free(&dst);
	return ret;
}

/* Move m (by value, taking its flags) into the copy list. */
static int copy_add(struct run *r, struct meta *m)
{
	if (r->copy.n == r->copy.cap) {
		size_t cap = r->copy.cap ? r->copy.cap * 2 : 256;
		struct meta *nv = realloc(r->copy.v, cap * sizeof(*nv));

		if (nv == NULL)
			return -1;
		r->copy.v = nv;
		r->copy.cap = cap;
	}
	r->copy.v[r->copy.n++] = *m;
	m->flags = NULL;
	return 0;
}

static void prefetch_free(struct run *r)
{
	meta_vec_free(&r->pre_fresh);
	meta_vec_free(&r->pre_retry);
	meta_vec_free(&r->pre_changed);
	r->pre_done = false;
}

static int hash_contents(struct run *r, struct store *s, struct meta_vec *mv,
			 const uint32_t *uids, size_t n, struct tr_error *err)
{
	return meta_hash_contents(s, r->job->stage, r->job->limits->batch_bytes, mv, uids, n,
				  err);
}

/* Pairing keys for match mode.  The fingerprint, except where it cannot
 * decide: when a fingerprint stands for more than one message on either
 * side (same size and headers: exact duplicates, or one Message-ID reused
 * with another body of the same size), those messages on both sides are
 * keyed by a hash of their whole content, so that a copy of one is never
 * taken for the other. */
static int set_keys(struct run *r, struct meta_vec *src, struct meta_vec *dst,
		    struct tr_error *err)
{
	struct meta_vec *side[2] = { src, dst };
	uint32_t *amb[2] = { NULL, NULL };
	size_t n_amb[2] = { 0, 0 }, i, j, t;
	int ret = -1;

	for (t = 0; t < 2; t++)
		for (i = 0; i < side[t]->n; i++)
			memcpy(side[t]->v[i].key, side[t]->v[i].fp, FP_LEN);
	/* Count each fingerprint on both sides: sort copies by key. */
	for (t = 0; t < 2; t++) {
		amb[t] = malloc((side[t]->n + 1) * sizeof(*amb[t]));
		if (amb[t] == NULL) {
			tr_error_set(err, TR_ERR_LOCAL, "out of memory");
			goto out;
		}
	}
	if (dst->n > 1)
		qsort(dst->v, dst->n, sizeof(*dst->v), cmp_meta_key);
	if (src->n > 1)
		qsort(src->v, src->n, sizeof(*src->v), cmp_meta_key);
	for (i = 0, j = 0; i < src->n; ) {
		size_t ie = i, je;

		while (ie < src->n && memcmp(src->v[ie].key, src->v[i].key, FP_LEN) == 0)
			ie++;
		while (j < dst->n && memcmp(dst->v[j].key, src->v[i].key, FP_LEN) < 0)
			j++;
		je = j;
		while (je < dst->n && memcmp(dst->v[je].key, src->v[i].key, FP_LEN) == 0)
			je++;
		if (je > j && (ie - i > 1 || je - j > 1)) {
			size_t k;

			for (k = i; k < ie; k++)
				amb[0][n_amb[0]++] = src->v[k].uid;
			for (k = j; k < je; k++)
				amb[1][n_amb[1]++] = dst->v[k].uid;
		}
		i = ie;
	}
	/* Back to UID order for the bsearch in hash_contents and the caller. */
	if (src->n > 1)
		qsort(src->v, src->n, sizeof(*src->v), meta_cmp_uid);
	if (dst->n > 1)
		qsort(dst->v, dst->n, sizeof(*dst->v), meta_cmp_uid);
	if (n_amb[0] + n_amb[1] > 0) {
		qsort(amb[0], n_amb[0], sizeof(*amb[0]), cmp_u32);
		qsort(amb[1], n_amb[1], sizeof(*amb[1]), cmp_u32);
		log_info(r->job->ctx, "%s: %zu source and %zu destination message(s) share "
			 "fingerprints: comparing their contents", r->job->src_name, n_amb[0],
			 n_amb[1]);
		if (hash_contents(r, r->src, src, amb[0], n_amb[0], err) < 0 ||
		    hash_contents(r, r->job->dst, dst, amb[1], n_amb[1], err) < 0)
			goto out;
	}
	ret = 0;
out:
	free(amb[0]);
	free(amb[1]);
	return ret;
}

/* ---- messages a destination altered (msgsig.h) ------------------------ */

/* meta_pair_altered for the folder of run r, with the log line. */
static long pair_altered(struct run *r, struct meta_vec *src, const size_t *si, size_t ns,
			 struct meta_vec *dst, const uint32_t *min_dst_uid, size_t *partner,
			 struct tr_error *err)
{
	size_t n_src = 0, n_dst = 0;
	long pairs;

	pairs = meta_pair_altered(r->src, r->job->dst, r->job->stage, r->job->limits->batch_bytes,
				  src, si, ns, dst, min_dst_uid, partner, &n_src, &n_dst, err);
	if (n_src > 0)
		log_info(r->job->ctx, "%s: %zu source and %zu destination message(s) differ only in "
			 "what a server may change: compared their contents", r->job->src_name,
			 n_src, n_dst);
	return pairs;
}

/* Source message s is on the destination as d: a done ledger row (into
 * r->rows[*n_rows]), and its flags made the same. */
static int record_pair(struct run *r, struct meta *s, struct meta *d, size_t *n_rows,
		       struct tr_error *err)
{
	struct state_msg *row = &r->rows[(*n_rows)++];

	d->used = true;
	r->counts->present++;
	if (!flags_equal(d->flags, s->flags)) {
		if (flag_queue_add(&r->flagq, d->uid, s->flags) < 0) {
			tr_error_set(err, TR_ERR_LOCAL, "out of memory");
			return -1;
		}
		r->counts->flags_updated++;
	}
	memset(row, 0, sizeof(*row));
	row->src_uid = s->uid;
	row->dst_uid = d->uid;
	row->state = MSG_DONE;
	memcpy(row->fp, s->fp, FP_LEN);
	row->has_fp = true;
	row->flags = s->flags;
	return 0;
}

/* Match mode: pair source and destination messages by fingerprint as
 * multisets, then what the destination may have altered by content;
 * unpaired source messages are copied. */
static int plan_match(struct run *r, struct tr_error *err)
{
	const struct sync_folder_job *job = r->job;
	struct meta_vec src = { 0 }, dst = { 0 };
	struct store_set all = store_set_from(1);
	size_t i, n_rows = 0, n_un = 0, *un = NULL, *partner = NULL;
	long altered = 0;
	int ret = -1;

	if (r->pre_done && r->pre_lo == 1) {
		/* The source side already fetched everything ("1:*"). */
		src = r->pre_fresh;
		memset(&r->pre_fresh, 0, sizeof(r->pre_fresh));
	} else if (src_fetch_meta(r, &all, STORE_FETCH_FP, 0, 1, &src, err) < 0) {
		goto out;
	}
	prefetch_free(r);
	if (fetch_meta(job->dst, &all, STORE_FETCH_FP, 0, 1, &dst, err) < 0)
		goto out;
	if (set_keys(r, &src, &dst, err) < 0)
		goto out;
	if (dst.n > 1)
		qsort(dst.v, dst.n, sizeof(*dst.v), cmp_meta_key);
	un = malloc((src.n + 1) * sizeof(*un));
	partner = malloc((src.n + 1) * sizeof(*partner));
	if (un == NULL || partner == NULL || rows_reserve(r, src.n + 1, err) < 0) {
		tr_error_set(err, TR_ERR_LOCAL, "out of memory");
		goto out;
	}
	for (i = 0; i < src.n; i++) {
		struct meta *s = &src.v[i], key, *d;
		size_t lo = 0, hi = dst.n;

		/* lower bound of s->key among dst (sorted by key, uid) */
		memcpy(key.key, s->key, FP_LEN);
		key.uid = 0;
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;

			if (cmp_meta_key(&dst.v[mid], &key) < 0)
				lo = mid + 1;
			else
				hi = mid;
		}
		d = NULL;
		for (; lo < dst.n && memcmp(dst.v[lo].key, s->key, FP_LEN) == 0; lo++) {
			if (!dst.v[lo].used) {
				d = &dst.v[lo];
				break;
			}
		}
		if (d == NULL)
			un[n_un++] = i;
		else if (record_pair(r, s, d, &n_rows, err) < 0)
			goto out;
	}
	if (dst.n > 1)
		qsort(dst.v, dst.n, sizeof(*dst.v), meta_cmp_uid);
	if (n_un > 0 && n_rows < dst.n) {
		altered = pair_altered(r, &src, un, n_un, &dst, NULL, partner, err);
		if (altered < 0)
			goto out;
	}
	for (i = 0; i < n_un; i++) {
		struct meta *s = &src.v[un[i]];

		if (altered > 0 && partner[i] != SIZE_MAX) {
			if (record_pair(r, s, &dst.v[partner[i]], &n_rows, err) < 0)
				goto out;
		} else if (copy_add(r, s) < 0) {
			tr_error_set(err, TR_ERR_LOCAL, "out of memory");
			goto out;
		}
	}
	/* Flags first, then the ledger: if we die in between, the next run
	 * compares again and finds nothing to do. */
	if (flag_queue_apply(job, &r->flagq, err) < 0)
		goto out;
	r->flagq.n = 0;
	if (state_msgs_put(job->state, r->f.id, r->rows, n_rows, err) < 0)
		goto out;
	if (src.n > 0)
		r->f.src_uidnext = src.v[src.n - 1].uid + 1;
	if (n_rows > 0)
		log_info(job->ctx, "%s: %zu message(s) already on the destination, matched by "
			 "fingerprint%s", job->src_name, n_rows, altered > 0 ? " or content" : "");
	if (altered > 0)
		log_info(job->ctx, "%s: %ld of them stored altered by the destination (8-bit header "
			 "bytes, line ends or header fields it adds): matched by content",
			 job->src_name, altered);
	ret = 0;
out:
	free(un);
	free(partner);
	meta_vec_free(&src);
	meta_vec_free(&dst);
	return ret;
}

/* The source's side of the ledger plan, which needs nothing from the
 * destination: new messages (UID >= lo, with fingerprints), messages to
 * retry, flag changes of older ones.  Into r->pre_*. */
static int src_prefetch(struct run *r, bool have_fresh, struct tr_error *err)
{
	struct meta_vec *fresh = &r->pre_fresh, *retry = &r->pre_retry, *changed = &r->pre_changed;
	uint32_t lo = r->f.src_uidnext ? r->f.src_uidnext : 1, *uids = NULL;
	size_t i, n_retry = 0;
	struct store_set set;
	int ret = -1;

	if (!have_fresh)
		prefetch_free(r);
	/* New messages (unless they came with the EXAMINE: see src_open). */
	if (!have_fresh && (r->S.uidnext == 0 || r->S.uidnext > lo)) {
		set = store_set_from(lo);
		if (src_fetch_meta(r, &set, STORE_FETCH_FP, 0, lo, fresh, err) < 0)
			goto out;
	}
	/* Messages the destination refused before: try again. */
	uids = malloc((r->n_ledger + 1) * sizeof(*uids));
	if (uids == NULL) {
		tr_error_set(err, TR_ERR_LOCAL, "out of memory");
		goto out;
	}
	for (i = 0; i < r->n_ledger; i++)
		if (r->ledger[i].state == MSG_FAILED && r->ledger[i].src_uid < lo)
			uids[n_retry++] = r->ledger[i].src_uid;
	if (n_retry > 0) {
		set = store_set_uids(uids, n_retry);
		if (src_fetch_meta(r, &set, STORE_FETCH_FP, 0, 1, retry, err) < 0)
			goto out;
	}
	/* Flag changes of messages copied before. */
	if (lo > 1 && r->n_ledger > 0) {
		bool cs = store_caps(r->src)->modseq && r->f.src_modseq > 0 &&
			  r->S.highestmodseq > 0;

		if (!cs || r->S.highestmodseq != r->f.src_modseq) {
			set = store_set_range(1, lo - 1);
			if (src_fetch_meta(r, &set, STORE_FETCH_FLAGS, cs ? r->f.src_modseq : 0, 1,
				       changed, err) < 0)
				goto out;
		}
	}
	r->pre_lo = lo;
	r->pre_done = true;
	ret = 0;
out:
	free(uids);
	return ret;
}

static bool meta_has_uid(const struct meta_vec *mv, uint32_t uid)
{
	size_t lo = 0, hi = mv->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (mv->v[mid].uid == uid)
			return true;
		if (mv->v[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

/* Pending rows settled as "copy again" below lo, which the prefetch (run
 * before the settling) did not cover. */
static int retry_missing(struct run *r, uint32_t lo, struct tr_error *err)
{
	uint32_t *uids = malloc((r->n_again + 1) * sizeof(*uids));
	struct meta_vec more = { 0 };
	struct store_set set;
	size_t i, n = 0;
	int w;

	if (uids == NULL) {
		tr_error_set(err, TR_ERR_LOCAL, "out of memory");
		return -1;
	}
	for (i = 0; i < r->n_again; i++)
		if (r->again[i] < lo && !meta_has_uid(&r->pre_retry, r->again[i]))
			uids[n++] = r->again[i];
	if (n == 0) {
		free(uids);
		return 0;
	}
	set = store_set_uids(uids, n);
	w = src_fetch_meta(r, &set, STORE_FETCH_FP, 0, 1, &more, err);
	free(uids);
	for (i = 0; w == 0 && i < more.n; i++) {
		if (copy_add(r, &more.v[i]) < 0) {
			tr_error_set(err, TR_ERR_LOCAL, "out of memory");
			w = -1;
		}
	}
	meta_vec_free(&more);
	return w;
}

/* Source message m (its flags as the source has them now) has a done
 * ledger row: queue a flag change when the flags written differ. */
static int flag_change(struct run *r, struct meta *m, struct tr_error *err)
{
	struct state_msg *row = ledger_find(r->ledger, r->n_ledger, m->uid);

	if (row == NULL || row->state != MSG_DONE || flags_equal(row->flags, m->flags))
		return 0;
	if (row->dst_uid == 0) {
		log_debug(r->job->ctx, "%s: UID %u: flags changed but its destination UID is "
			  "unknown (no UIDPLUS)", r->job->src_name, row->src_uid);
		return 0;
	}
	free(row->flags);
	row->flags = m->flags;
	m->flags = NULL;
	if (flag_queue_add(&r->flagq, row->dst_uid, row->flags) < 0) {
		tr_error_set(err, TR_ERR_LOCAL, "out of memory");
		return -1;
	}
	if (rows_reserve(r, r->flagq.n, err) < 0)
		return -1;
	r->rows[r->flagq.n - 1] = *row;
	r->counts->flags_updated++;
	return 0;
}

/* Ledger mode: new source UIDs, retries of refused messages, flag changes. */
static int plan_ledger(struct run *r, struct tr_error *err)
{
	const struct sync_folder_job *job = r->job;
	struct meta_vec *fresh = &r->pre_fresh, *retry = &r->pre_retry, *changed = &r->pre_changed;
	uint32_t lo = r->f.src_uidnext ? r->f.src_uidnext : 1;
	size_t i;
	int ret = -1;

	if ((!r->pre_done || r->pre_lo != lo) && src_prefetch(r, false, err) < 0)
		return -1;
	/* Settling pending rows (after the prefetch) may have turned some into
	 * "copy again": fetch those too. */
	if (retry_missing(r, lo, err) < 0)
		goto out;
	for (i = 0; i < changed->n; i++)
		if (changed->v[i].uid < lo && flag_change(r, &changed->v[i], err) < 0)
			goto out;
	/* New messages a run that died before saving the folder copied (done
	 * rows at or above lo): their flags may have changed since. */
	for (i = 0; i < fresh->n; i++)
		if (flag_change(r, &fresh->v[i], err) < 0)
			goto out;
	if (r->flagq.n > 0) {
		size_t n = r->flagq.n;

		if (flag_queue_apply(job, &r->flagq, err) < 0 ||
		    state_msgs_put(job->state, r->f.id, r->rows, n, err) < 0)
			goto out;
		r->flagq.n = 0;
	}

	/* The copy list: retries, then new messages not already done (a run
	 * that died before saving the folder left done rows above lo). */
	for (i = 0; i < retry->n; i++)
		if (copy_add(r, &retry->v[i]) < 0)
			goto nomem;
	for (i = 0; i < fresh->n; i++) {
		struct state_msg *row = ledger_find(r->ledger, r->n_ledger, fresh->v[i].uid);

		if (row != NULL && row->state == MSG_DONE)
			continue;
		if (copy_add(r, &fresh->v[i]) < 0)
			goto nomem;
	}
	if (r->copy.n > 1)
		qsort(r->copy.v, r->copy.n, sizeof(*r->copy.v), meta_cmp_uid);
	if (fresh->n > 0 && fresh->v[fresh->n - 1].uid + 1 > r->f.src_uidnext)
		r->f.src_uidnext = fresh->v[fresh->n - 1].uid + 1;
	/* What is on the source and needs nothing.  With the whole folder
	 * listed (lo == 1) count it; else trust EXISTS, but never beyond what
	 * the ledger has seen copied (a server's count can be nonsense). */
	if (lo == 1) {
		size_t listed = fresh->n + retry->n;

		r->counts->present = listed > r->copy.n ? (uint32_t)(listed - r->copy.n) : 0;
	} else if (r->S.messages > r->copy.n + r->unreadable) {
		uint32_t done = 0;

		for (i = 0; i < r->n_ledger; i++)
			if (r->ledger[i].state == MSG_DONE)
				done++;
		r->counts->present = r->S.messages - (uint32_t)r->copy.n - r->unreadable;
		if (r->counts->present > done)
			r->counts->present = done;
	}
	ret = 0;
	goto out;
nomem:
	tr_error_set(err, TR_ERR_LOCAL, "out of memory");
out:
	prefetch_free(r);
	return ret;
}

static void fill_row(struct state_msg *row, const struct meta *m, enum state_msg_state state,
		     uint32_t dst_uidnext)
{
	memset(row, 0, sizeof(*row));
	row->src_uid = m->uid;
	row->state = state;
	memcpy(row->fp, m->fp, FP_LEN);
	row->has_fp = m->has_fp;
	row->dst_uidnext = dst_uidnext;
	row->flags = m->flags;
}

/* Messages larger than the destination's APPENDLIMIT are refused before a
 * byte moves: recorded as failed and left out of the copy list. */
static int drop_too_big(struct run *r, struct tr_error *err)
{
	const struct sync_folder_job *job = r->job;
	uint64_t limit = store_caps(job->dst)->append_limit;
	size_t i, k = 0, n_rows = 0;
	int w;

	if (limit == 0)
		return 0;
	if (rows_reserve(r, r->copy.n + 1, err) < 0)
		return -1;
	for (i = 0; i < r->copy.n; i++) {
		struct meta *m = &r->copy.v[i];
		char why[160];

		if (m->size <= limit) {
			r->copy.v[k++] = *m;
			continue;
		}
		snprintf(why, sizeof(why), "larger (%u bytes) than the destination's APPENDLIMIT "
			 "(%" PRIu64 ")", m->size, limit);
		log_error(job->ctx, "%s: UID %u not copied: %s", job->src_name, m->uid, why);
		fill_row(&r->rows[n_rows], m, MSG_FAILED, 0);
		r->rows[n_rows].error = strdup(why);
		n_rows++;       /* the row now owns m->flags: freed below */
		r->counts->failed++;
		note_failure(r, m->uid, why);
	}
	w = state_msgs_put(job->state, r->f.id, r->rows, n_rows, err);
	for (i = 0; i < n_rows; i++) {
		free(r->rows[i].error);
		free(r->rows[i].flags);
	}
	r->copy.n = k;
	return w;
}

/* What the store's NUL check found (stage.h), said once per message. */
static void report_nul(struct run *r, const struct stage *sp)
{
	for (size_t k = 0; k < sp->n; k++) {
		const struct stage_msg *m = &sp->v[k];

		if (!m->stray)
			continue;
		log_debug(r->job->ctx, "%s: UID %u shows a stray 0x80: %u BINARY[] fetch(es), "
			  "%ld NUL byte(s) restored", r->job->src_name, m->uid, m->nul_asked,
			  m->nul_restored);
		if (m->unchecked != NULL)
			log_warn(r->job->ctx, "%s: UID %u shows 0x80 bytes that may stand for NUL "
				 "bytes; copied as the source's BODY[] shows it: %s",
				 r->job->src_name, m->uid, m->unchecked);
	}
}

/* The store's unreadable callback: noted for the appender (the fetcher
 * may run in its own thread). */
static void note_bad(void *ctx, uint32_t uid, const char *why)
{
	struct run *r = ctx;

	(void)why;
	pthread_mutex_lock(&r->bad_lock);
	if (r->n_bad == r->cap_bad) {
		size_t cap = r->cap_bad ? 2 * r->cap_bad : 16;
		uint32_t *nb = realloc(r->bad, cap * sizeof(*nb));

		if (nb != NULL) {
			r->bad = nb;
			r->cap_bad = cap;
		}
	}
	/* out of memory: the message is left out of this run without a
	 * ledger row, and tried again on the next */
	if (r->n_bad < r->cap_bad)
		r->bad[r->n_bad++] = uid;
	pthread_mutex_unlock(&r->bad_lock);
}

/* Record what note_bad collected.  On the appender's side. */
static int record_bad(struct run *r, struct tr_error *err)
{
	int ret = 0;

	pthread_mutex_lock(&r->bad_lock);
	for (size_t i = 0; i < r->n_bad && ret == 0; i++)
		ret = record_unreadable(r, r->bad[i], "FETCH BODY[]", err);
	r->n_bad = 0;
	pthread_mutex_unlock(&r->bad_lock);
	return ret;
}

/* Reserve the day budgets of both servers for r->copy[from, *to): *to is
 * cut to the messages that fit both.  Returns 0 when all fit, 1 when only
 * some do (err says the account pauses, for after they are copied), -1
 * with err when none does (TR_ERR_PAUSED) or the state failed. */
static int reserve_day(struct run *r, size_t from, size_t *to, struct tr_error *err)
{
	const struct sync_limits *lim = r->job->limits;
	/* in the order the bytes go: each is asked only for what the one
	 * before gives */
	struct throttle *t[4] = { lim->src_throttle, lim->src_account_throttle,
				  lim->dst_account_throttle, lim->dst_throttle };
	static const char *const whose[4] = {
		"source", "account on the source", "account on the destination", "destination",
	};
	uint64_t *sizes;
	size_t n = *to - from, fit = n, k, cut = 4;
	time_t resume = 0;

	if (t[0] == NULL && t[1] == NULL && t[2] == NULL && t[3] == NULL)
		return 0;
	sizes = malloc((n + 1) * sizeof(*sizes));
	if (sizes == NULL) {
		tr_error_set(err, TR_ERR_LOCAL, "out of memory");
		return -1;
	}
	for (k = 0; k < n; k++)
		sizes[k] = r->copy.v[from + k].size;
	for (k = 0; k < 4; k++) {
		size_t got;

		if (t[k] == NULL)
			continue;
		if (throttle_day_reserve(t[k], sizes, fit, &got, &resume, err) < 0) {
			free(sizes);
			return -1;
		}
		if (got < fit && cut == 4)
			cut = k;
		fit = got;
	}
	free(sizes);
	/* When a later budget takes fewer than an earlier one gave, the
	 * earlier reservation of the rest stays counted: budgets err on the
	 * servers' side. */
	if (fit == n)
		return 0;
	{
		char when[64];

		tr_error_set(err, TR_ERR_PAUSED, "%s: the day's byte budget of the %s is spent: "
			     "paused until %s", r->job->src_name, whose[cut],
			     throttle_time_text(resume, when, sizeof(when)));
		err->until = (long long)resume;
	}
	*to = from + fit;
	return fit > 0 ? 1 : -1;
}

/* Fetch the bodies of r->copy[from, *to) into sp, after reserving the day
 * budgets for them: returns 0, or 1 when *to was cut to what the budgets
 * allow today (err: paused, for after these are appended), or -1. */
static int fetch_batch(struct run *r, struct stage *sp, size_t from, size_t *to_r,
		       struct tr_error *err)
{
	uint32_t *uids;
	struct store_set set;
	size_t i, to;
	int ret, cut;

	cut = reserve_day(r, from, to_r, err);
	if (cut < 0)
		return -1;
	to = *to_r;
	uids = malloc((to - from + 1) * sizeof(*uids));
	if (uids == NULL) {
		tr_error_set(err, TR_ERR_LOCAL, "out of memory");
		return -1;
	}
	for (i = from; i < to; i++)
		uids[i - from] = r->copy.v[i].uid;
	set = store_set_uids(uids, to - from);
	stage_reset(sp);
	{
		struct tr_error paused = *err;

		ret = store_fetch_bodies(r->src, &set, sp, note_bad, r, err);
		if (ret < 0)
			tr_error_prefix(err, "%s", r->job->src_name);
		else
			report_nul(r, sp);
		if (ret == 0 && cut > 0) {
			*err = paused;
			ret = 1;
		}
	}
	free(uids);
	return ret;
}

/* Append what sp holds of r->copy[from, to): record pending, append,
 * record the outcome.  Runs on the destination session only. */
static int append_batch(struct run *r, struct stage *sp, size_t from, size_t to,
			struct tr_error *err)
{
	const struct sync_folder_job *job = r->job;
	struct store_append_item *items;
	struct meta **of_item;
	size_t i, n_items = 0;
	uint64_t bytes = 0;
	uint32_t copied = 0, uv = 0;
	struct tr_error wait;
	int ret = -1;

	tr_error_clear(&wait);
	if (record_bad(r, err) < 0)
		return -1;
	items = calloc(to - from + 1, sizeof(*items));
	of_item = calloc(to - from + 1, sizeof(*of_item));
	if (items == NULL || of_item == NULL || rows_reserve(r, to - from, err) < 0) {
		tr_error_set(err, TR_ERR_LOCAL, "out of memory");
		goto out;
	}
	for (i = from; i < to; i++) {
		struct meta *m = &r->copy.v[i];
		const struct stage_msg *sm = stage_find(sp, m->uid);

		if (sm == NULL) {
			/* Expunged on the source since we listed it. */
			r->counts->vanished++;
			if (r->counts->present > 0)
				r->counts->present--;
			continue;
		}
		if (sm->literal8 && !store_caps(job->dst)->binary) {
			/* Copying BODY[] would turn its NUL bytes into 0x80: say so. */
			struct state_msg row;
			static const char why[] = "it contains NUL bytes and the destination "
						  "offers no BINARY extension to store them";

			fill_row(&row, m, MSG_FAILED, 0);
			row.error = (char *)why;
			if (state_msgs_put(job->state, r->f.id, &row, 1, err) < 0)
				goto out;
			log_error(job->ctx, "%s: UID %u not copied: %s", job->src_name, m->uid, why);
			r->counts->failed++;
			note_failure(r, m->uid, why);
			continue;
		}
		items[n_items].flags = m->flags;
		items[n_items].date = m->date[0] ? m->date : NULL;
		items[n_items].msg = sm;
		of_item[n_items] = m;
		fill_row(&r->rows[n_items], m, MSG_PENDING, r->D.uidnext);
		n_items++;
	}
	/* The promise comes before the act: a crash from here on leaves pending
	 * rows that the next run settles against the destination. */
	if (state_msgs_put(job->state, r->f.id, r->rows, n_items, err) < 0)
		goto out;
	if (store_append(job->dst, job->dst_raw, sp, items, n_items, &uv, err) < 0) {
		tr_error_prefix(err, "%s", job->dst_name);
		goto out;
	}
	for (i = 0; i < n_items; i++) {
		struct state_msg *row = &r->rows[i];

		if (items[i].failed && items[i].err.kind == TR_ERR_WAIT && items[i].err.throttled) {
			/* A server throttling us ([THROTTLED], a suggested back-off)
			 * did not refuse the message: its row stays pending, settled
			 * and copied again when the folder is retried after the wait. */
			if (wait.kind == TR_ERR_NONE)
				wait = items[i].err;
			continue;
		}
		if (items[i].failed) {
			row->state = MSG_FAILED;
			row->error = items[i].err.msg;
			r->counts->failed++;
			note_failure(r, of_item[i]->uid, items[i].err.msg);
			log_error(job->ctx, "%s: UID %u (%" PRIu64 " bytes) refused: %s",
				  job->src_name, of_item[i]->uid, items[i].msg->len, items[i].err.msg);
			continue;
		}
		row->state = MSG_DONE;
		row->dst_uid = items[i].dst_uid;
		copied++;
		bytes += items[i].msg->len;
	}
	if (state_msgs_put(job->state, r->f.id, r->rows, n_items, err) < 0)
		goto out;
	r->counts->copied += copied;
	r->counts->bytes += bytes;
	if (job->progress != NULL)
		/* every message of the batch is done with: copied, or not (refused,
		 * vanished, unreadable) */
		job->progress(job->progress_ctx, copied, wait.kind != TR_ERR_NONE ? 0 :
			      (uint32_t)(to - from) - copied, bytes);
	if (wait.kind != TR_ERR_NONE) {
		*err = wait;
		tr_error_prefix(err, "%s", job->dst_name);
		goto out;
	}
	ret = 0;
out:
	free(items);
	free(of_item);
	return ret;
}

/* Batch boundaries: bounded by bytes first (one big message is a batch
 * of its own), then by count.  Returns the number of batches; ends[k] is
 * the end of batch k. */
static size_t plan_batches(const struct run *r, size_t *ends)
{
	const struct sync_limits *lim = r->job->limits;
	uint64_t rate[2] = { throttle_messages_per_second(lim->src_throttle),
			     throttle_messages_per_second(lim->dst_throttle) };
	uint32_t count = lim->batch_count;
	size_t i = 0, n = 0;

	/* A message rate: batches of a fifth of a second's worth (see
	 * throttle.h), so that the server is not asked for more at once. */
	for (int k = 0; k < 2; k++) {
		uint64_t cap = rate[k] / 5 > 0 ? rate[k] / 5 : 1;

		if (rate[k] > 0 && cap < count)
			count = (uint32_t)cap;
	}
	while (i < r->copy.n) {
		size_t start = i;
		uint64_t bytes = 0;

		do {
			bytes += r->copy.v[i].size;
			i++;
		} while (i < r->copy.n && i - start < count &&
			 bytes + r->copy.v[i].size <= lim->batch_bytes);
		ends[n++] = i;
	}
	return n;
}

/* The fetch side of the pipeline: while the destination session appends
 * batch k, the source session already fetches batch k+1 into the other
 * stage, so each batch costs the slower of the two, not their sum. */
struct pipeline {
	struct run *r;
	const size_t *ends;
	size_t n;
	struct stage *sp[2];
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool filled[2];            /* stage i holds fetched batch waiting for append */
	size_t end[2];             /* the end of the batch stage i holds (a day budget
				    * may cut it short) */
	size_t fetched;            /* batches fetched so far */
	bool stop;                 /* the appender failed: fetch no more */
	bool failed;               /* the fetcher failed (err) */
	struct tr_error err;
};

static void *fetcher_main(void *arg)
{
	struct pipeline *p = arg;
	size_t k;

	for (k = 0; k < p->n; k++) {
		size_t from = k ? p->ends[k - 1] : 0;
		struct tr_error err;
		int w;

		pthread_mutex_lock(&p->lock);
		while (p->filled[k % 2] && !p->stop)
			pthread_cond_wait(&p->cond, &p->lock);
		if (p->stop) {
			pthread_mutex_unlock(&p->lock);
			break;
		}
		pthread_mutex_unlock(&p->lock);
		size_t to = p->ends[k];

		tr_error_clear(&err);
		w = fetch_batch(p->r, p->sp[k % 2], from, &to, &err);
		pthread_mutex_lock(&p->lock);
		if (w >= 0) {
			p->filled[k % 2] = true;
			p->end[k % 2] = to;
			p->fetched = k + 1;
		}
		if (w != 0) {
			/* cut short (paused): the appender takes this one, then stops */
			p->failed = true;
			p->err = err;
		}
		pthread_cond_broadcast(&p->cond);
		pthread_mutex_unlock(&p->lock);
		if (w != 0)
			break;
	}
	return NULL;
}

/* Returns 0, or -1 with err; *done_r counts the batches appended. */
static int copy_pipelined(struct run *r, const size_t *ends, size_t n, size_t *done_r,
			  struct tr_error *err)
{
	struct pipeline p;
	pthread_t t;
	size_t k;
	int ret = 0;

	*done_r = 0;
	memset(&p, 0, sizeof(p));
	p.r = r;
	p.ends = ends;
	p.n = n;
	p.sp[0] = r->job->stage;
	p.sp[1] = r->job->stage2;
	pthread_mutex_init(&p.lock, NULL);
	pthread_cond_init(&p.cond, NULL);
	if (net_thread_start(&t, fetcher_main, &p) != 0) {
		pthread_cond_destroy(&p.cond);
		pthread_mutex_destroy(&p.lock);
		tr_error_set(err, TR_ERR_LOCAL, "cannot start a thread");
		return -1;
	}
	for (k = 0; k < n && ret == 0; k++) {
		size_t from = k ? ends[k - 1] : 0;

		pthread_mutex_lock(&p.lock);
		while (!p.filled[k % 2] && !p.failed)
			pthread_cond_wait(&p.cond, &p.lock);
		if (!p.filled[k % 2]) {
			*err = p.err;
			pthread_mutex_unlock(&p.lock);
			ret = -1;
			break;
		}
		size_t to = p.end[k % 2];

		pthread_mutex_unlock(&p.lock);
		ret = append_batch(r, p.sp[k % 2], from, to, err);
		if (ret == 0 && to < ends[k]) {
			/* the day budget cut it: nothing more today */
			pthread_mutex_lock(&p.lock);
			*err = p.err;
			pthread_mutex_unlock(&p.lock);
			ret = -1;
		}
		if (ret == 0)
			*done_r = k + 1;
		pthread_mutex_lock(&p.lock);
		p.filled[k % 2] = false;
		if (ret < 0)
			p.stop = true;
		pthread_cond_broadcast(&p.cond);
		pthread_mutex_unlock(&p.lock);
	}
	pthread_join(t, NULL);
	stage_reset(p.sp[0]);
	stage_reset(p.sp[1]);
	pthread_cond_destroy(&p.cond);
	pthread_mutex_destroy(&p.lock);
	return ret;
}

static int copy_all(struct run *r, struct tr_error *err)
{
	size_t *ends, n, k = 0;
	int ret = 0;

	if (drop_too_big(r, err) < 0)
		return -1;
	if (r->job->planned != NULL) {
		uint64_t bytes = 0;

		for (size_t i = 0; i < r->copy.n; i++)
			bytes += r->copy.v[i].size;
		r->job->planned(r->job->progress_ctx, (uint32_t)r->copy.n, bytes);
	}
	if (r->copy.n == 0)
		return 0;
	ends = malloc(r->copy.n * sizeof(*ends));
	if (ends == NULL) {
		tr_error_set(err, TR_ERR_LOCAL, "out of memory");
		return -1;
	}
	n = plan_batches(r, ends);
	if (n > 1 && r->job->stage2 != NULL) {
		ret = copy_pipelined(r, ends, n, &k, err);
		k = n;
	}
	for (; k < n && ret == 0; k++) {
		size_t from = k ? ends[k - 1] : 0;

		size_t to = ends[k];
		struct tr_error paused;

		ret = fetch_batch(r, r->job->stage, from, &to, err);
		if (ret > 0) {
			/* cut short by a day budget: append what came, then pause */
			paused = *err;
			ret = append_batch(r, r->job->stage, from, to, err);
			if (ret == 0) {
				*err = paused;
				ret = -1;
			}
		} else if (ret == 0) {
			ret = append_batch(r, r->job->stage, from, to, err);
		}
	}
	/* what the last fetch could not deliver */
	if (ret == 0)
		ret = record_bad(r, err);
	stage_reset(r->job->stage);
	free(ends);
	return ret;
}

uint32_t sync_pass_day(const char *d)
{
	static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	unsigned day, year;
	char mon[4];
	const char *m;
	int n = 0;

	if (d == NULL || sscanf(d, " %2u-%3c-%4u%n", &day, mon, &year, &n) != 3 || n == 0 ||
	    day < 1 || day > 31 || year < 1900 || year > 9999)
		return 0;
	mon[3] = '\0';
	m = strstr(months, mon);
	if (m == NULL || (m - months) % 3 != 0)
		return 0;
	return year * 10000 + (uint32_t)((m - months) / 3 + 1) * 100 + day;
}

static void defer(struct run *r, struct meta *m)
{
	free(m->flags);
	m->flags = NULL;
	r->counts->deferred++;
	if (r->deferred_lo == 0 || m->uid < r->deferred_lo)
		r->deferred_lo = m->uid;
}

/* Leave out of the copy list what this pass does not copy (sync_pass). */
static void pass_filter(struct run *r)
{
	const struct sync_pass *p = r->job->pass;
	size_t i, k = 0;

	if (p == NULL || (p->since_day == 0 && p->before_day == 0 && p->trial == 0))
		return;
	for (i = 0; i < r->copy.n; i++) {
		struct meta *m = &r->copy.v[i];
		uint32_t day = sync_pass_day(m->date);

		if (day != 0 && ((p->since_day != 0 && day < p->since_day) ||
				 (p->before_day != 0 && day >= p->before_day)))
			defer(r, m);
		else
			r->copy.v[k++] = *m;
	}
	r->copy.n = k;
	if (p->trial != 0 && r->copy.n > p->trial) {
		size_t drop = r->copy.n - p->trial;

		/* the most recent mail is what a user looks for first */
		if (r->copy.n > 1)
			qsort(r->copy.v, r->copy.n, sizeof(*r->copy.v), meta_cmp_uid);
		for (i = 0; i < drop; i++)
			defer(r, &r->copy.v[i]);
		memmove(r->copy.v, r->copy.v + drop, p->trial * sizeof(*r->copy.v));
		r->copy.n = p->trial;
	}
	if (r->counts->deferred > 0)
		log_info(r->job->ctx, "%s: %u message(s) left for a later pass", r->job->src_name,
			 r->counts->deferred);
}

/* What STATUS st says of a folder, against the state saved after its last
 * complete sync. */
static int classify(const struct store_status *st, bool dst_exists, const struct state_folder *f)
{
	if (st == NULL || !dst_exists || f->src_uidvalidity == 0 || f->unsettled != 0 ||
	    st->uidvalidity != f->src_uidvalidity || st->uidnext != f->src_uidnext ||
	    st->messages != f->src_messages)
		return SYNC_CHANGED;
	/* Without HIGHESTMODSEQ a flag change is invisible in STATUS: never skip. */
	if (st->highestmodseq == 0 || f->src_modseq == 0)
		return SYNC_FLAGS_UNKNOWN;
	return st->highestmodseq == f->src_modseq ? SYNC_UNCHANGED : SYNC_CHANGED;
}

static bool unchanged(const struct store_status *st, bool dst_exists, const struct state_folder *f)
{
	return classify(st, dst_exists, f) == SYNC_UNCHANGED;
}

int sync_folder_unchanged(struct state *state, int64_t account_id, const char *src_name,
			  const char *dst_name, const struct store_status *st, bool dst_exists,
			  uint32_t *present, struct tr_error *err)
{
	struct state_folder f;
	int c;

	*present = 0;
	if (state_folder_load(state, account_id, src_name, dst_name, &f, err) < 0)
		return -1;
	c = classify(st, dst_exists, &f);
	if (st != NULL && dst_exists && f.unsettled == 0 && st->uidvalidity == f.src_uidvalidity)
		*present = f.src_messages;
	if (c != SYNC_UNCHANGED) {
		log_debug(NULL, "%s: changed: status %u/%u/%u/%llu, saved %u/%u/%u/%llu, unsettled %u, "
			  "dst %s", src_name, st ? st->uidvalidity : 0, st ? st->uidnext : 0,
			  st ? st->messages : 0, st ? (unsigned long long)st->highestmodseq : 0ULL,
			  f.src_uidvalidity, f.src_uidnext, f.src_messages,
			  (unsigned long long)f.src_modseq, f.unsettled, dst_exists ? "exists" : "missing");
		return c;
	}
	return c;
}

/* The destination's side of opening a folder, run in its own thread so
 * that its round trips overlap the source's. */
struct dst_side {
	struct run *r;
	int ret;
	struct tr_error err;
};

static void *dst_side_main(void *arg)
{
	struct dst_side *d = arg;
	const struct sync_folder_job *job = d->r->job;

	struct store_refusal why;
	bool ok = true;

	tr_error_clear(&d->err);
	if (!job->dst_exists &&
	    store_command_many(job->dst, STORE_CREATE, &job->dst_raw, 1, &ok, &why, &d->err) < 0) {
		d->ret = -1;
		return NULL;
	}
	/* Refused: someone may have made it meanwhile; opening it will tell. */
	d->ret = store_open_folder(job->dst, job->dst_raw, false, &d->r->D, &d->err);
	/* Then "does not exist" would hide the real reason. */
	if (d->ret < 0 && !ok && why.kind != STORE_REFUSED_EXISTS &&
	    d->err.kind == TR_ERR_PROTOCOL)
		d->err = why.err;
	return NULL;
}

/* EXAMINE the source with, in the same round trip, the new messages'
 * metadata (UID >= the saved UIDNEXT), then the rest of what the ledger
 * plan needs from the source. */
static int src_open(struct run *r, struct tr_error *err)
{
	const struct sync_folder_job *job = r->job;
	uint32_t lo = r->f.src_uidnext ? r->f.src_uidnext : 1;
	struct store_set set = store_set_from(lo);
	bool opened;

	prefetch_free(r);
	r->pre_fresh.min_uid = lo;
	if (store_open_fetch(r->src, job->src_raw, &r->S, &opened, &set, STORE_FETCH_FP,
			     meta_collect, &r->pre_fresh, err) < 0) {
		if (err->kind == TR_ERR_LOCAL && err->msg[0] == '\0')
			tr_error_set(err, TR_ERR_LOCAL, "out of memory");
		return -1;
	}
	meta_vec_sort_unique(&r->pre_fresh);
	if (take_bad(r, &r->pre_fresh, err) < 0)
		return -1;
	/* Worth going on only when the ledger can be used: the same UIDVALIDITY. */
	if (r->f.src_uidvalidity == 0 || r->f.src_uidvalidity == r->S.uidvalidity)
		return src_prefetch(r, true, err);
	prefetch_free(r);
	return 0;
}

/* Open the source folder (src_open) while the destination folder is
 * created and selected. */
static int open_both(struct run *r, struct tr_error *err)
{
	struct dst_side d = { .r = r };
	pthread_t t;
	bool threaded = net_thread_start(&t, dst_side_main, &d) == 0;
	int ret;

	ret = src_open(r, err);
	if (threaded)
		pthread_join(t, NULL);
	else
		dst_side_main(&d);
	if (ret < 0)
		return -1;
	if (d.ret < 0) {
		*err = d.err;
		return -1;
	}
	return 0;
}

/* A UIDVALIDITY changed: the ledger says nothing any more. */
static int forget(struct run *r, struct tr_error *err)
{
	if (state_folder_reset(r->job->state, &r->f, err) < 0)
		return -1;
	state_msgs_free(r->ledger, r->n_ledger);
	r->ledger = NULL;
	r->n_ledger = 0;
	/* What was prefetched above the old scan position is not enough now. */
	if (r->pre_lo != 1)
		prefetch_free(r);
	return 0;
}

int sync_folder(const struct sync_folder_job *job, struct sync_counts *counts,
		struct tr_error *err)
{
	struct run r;
	bool match;
	int ret = -1;

	memset(counts, 0, sizeof(*counts));
	sync_failures_free(job->failures);
	memset(&r, 0, sizeof(r));
	r.job = job;
	r.src = job->src;
	r.counts = counts;
	pthread_mutex_init(&r.bad_lock, NULL);
	if (state_folder_load(job->state, job->account_id, job->src_name, job->dst_name, &r.f,
			      err) < 0)
		return -1;
	if (unchanged(job->src_status, job->dst_listed, &r.f)) {
		counts->present = r.f.src_messages;
		return 0;
	}
	if (state_msgs_load(job->state, r.f.id, &r.ledger, &r.n_ledger, err) < 0)
		goto out;
	if (open_both(&r, err) < 0)
		goto out;
	if (r.f.src_uidvalidity != 0 && r.f.src_uidvalidity != r.S.uidvalidity) {
		log_warn(job->ctx, "%s: the source folder's UIDVALIDITY changed (%u to %u): "
			 "matching messages by fingerprint", job->src_name, r.f.src_uidvalidity,
			 r.S.uidvalidity);
		if (forget(&r, err) < 0)
			goto out;
	} else if (r.f.dst_uidvalidity != 0 && r.f.dst_uidvalidity != r.D.uidvalidity) {
		log_warn(job->ctx, "%s: the destination folder %s was recreated (UIDVALIDITY %u to "
			 "%u): matching messages by fingerprint", job->src_name, job->dst_name,
			 r.f.dst_uidvalidity, r.D.uidvalidity);
		if (forget(&r, err) < 0)
			goto out;
	} else if (settle_pending(&r, err) < 0) {
		goto out;
	}
	match = r.f.src_uidvalidity == 0 && r.D.messages > 0;
	if ((match ? plan_match(&r, err) : plan_ledger(&r, err)) < 0)
		goto out;
	pass_filter(&r);
	if (r.copy.n > 0)
		log_debug(job->ctx, "%s: %zu message(s) to copy to %s", job->src_name, r.copy.n,
			  job->dst_name);
	if (copy_all(&r, err) < 0)
		goto out;
	r.f.src_uidvalidity = r.S.uidvalidity;
	r.f.dst_uidvalidity = r.D.uidvalidity;
	if (r.S.uidnext > r.f.src_uidnext)
		r.f.src_uidnext = r.S.uidnext;
	/* what the pass left out is looked at again by the next one */
	if (r.deferred_lo != 0 && r.deferred_lo < r.f.src_uidnext)
		r.f.src_uidnext = r.deferred_lo;
	r.f.src_modseq = r.S.highestmodseq;
	r.f.src_messages = r.S.messages;
	if (state_folder_save(job->state, &r.f, err) < 0)
		goto out;
	ret = 0;
out:
	if (ret < 0 && err->kind == TR_ERR_NONE)
		tr_error_set(err, TR_ERR_LOCAL, "%s: failed", job->src_name);
	state_msgs_free(r.ledger, r.n_ledger);
	free(r.again);
	prefetch_free(&r);
	meta_vec_free(&r.copy);
	free(r.flagq.v);
	free(r.rows);
	free(r.bad);
	pthread_mutex_destroy(&r.bad_lock);
	return ret;
}
