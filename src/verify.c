/* verify: see include/verify.h */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "folder.h"
#include "log.h"
#include "meta.h"
#include "report.h"
#include "scheduler.h"
#include "stage.h"
#include "store.h"
#include "text.h"
#include "verify.h"

/* Per message held in memory while hashing (--content); bigger ones go to
 * the stage's file. */
#define VERIFY_STAGE_MEM (128 * 1024)

/* Key (fingerprint or content hash) and size. */
static int cmp_key(const struct meta *x, const struct meta *y)
{
	int c = memcmp(x->key, y->key, sizeof(x->key));

	if (c != 0)
		return c;
	return x->size < y->size ? -1 : x->size > y->size;
}

/* Key, then UID: equal messages pair up oldest first. */
static int cmp_key_uid(const void *a, const void *b)
{
	const struct meta *x = a, *y = b;
	int c = cmp_key(x, y);

	return c != 0 ? c : x->uid < y->uid ? -1 : x->uid > y->uid;
}

/* --content: key every message by a hash of its whole content; one that
 * vanished meanwhile (expunged) leaves the comparison. */
static int hash_all(struct store *s, struct stage *sp, uint64_t batch_bytes,
		    struct meta_vec *mv, struct tr_error *err)
{
	uint32_t *uids = malloc((mv->n + 1) * sizeof(*uids));
	size_t i, n = 0;
	int r;

	if (uids == NULL) {
		tr_error_set(err, TR_ERR_LOCAL, "out of memory");
		return -1;
	}
	for (i = 0; i < mv->n; i++)
		uids[i] = mv->v[i].uid;
	r = meta_hash_contents(s, sp, batch_bytes, mv, uids, mv->n, err);
	free(uids);
	if (r < 0)
		return -1;
	for (i = 0; i < mv->n; i++) {
		if (mv->v[i].hashed)
			mv->v[n++] = mv->v[i];
		else
			free(mv->v[i].flags);
	}
	mv->n = n;
	return 0;
}

/* Every message of a folder, from a session: EXAMINE and the metadata
 * FETCH in one round trip (and with sp, every message's content). */
static int read_folder(struct store *s, const char *raw, struct stage *sp,
		       uint64_t batch_bytes, struct meta_vec *out, struct tr_error *err)
{
	struct store_status st;
	bool examined;
	size_t i;

	struct store_set all = store_set_from(1);

	if (store_open_fetch(s, raw, &st, &examined, &all, STORE_FETCH_FP, meta_collect, out,
			       err) < 0) {
		if (err->kind == TR_ERR_LOCAL && err->msg[0] == '\0')
			tr_error_set(err, TR_ERR_LOCAL, "out of memory");
		return -1;
	}
	/* "1:*" in an empty folder may still name a message: trust EXISTS. */
	if (st.messages == 0)
		meta_vec_free(out);
	meta_vec_sort_unique(out);
	for (i = 0; i < out->n; i++)
		memcpy(out->v[i].key, out->v[i].fp, sizeof(out->v[i].key));
	if (sp != NULL && out->n > 0 && hash_all(s, sp, batch_bytes, out, err) < 0)
		return -1;
	if (out->n > 1)
		qsort(out->v, out->n, sizeof(*out->v), cmp_key_uid);
	return 0;
}

static int add_missing(struct verify_item *it, const char *folder, const struct meta *m)
{
	struct verify_missing *nv, *d;

	it->missing++;
	log_warn(it->acc->label, "%s: UID %u (%u bytes, %s) is not on the destination", folder,
		 m->uid, m->size, m->date);
	if (it->n >= VERIFY_MAX_LISTED)
		return 0;
	nv = realloc(it->v, (it->n + 1) * sizeof(*nv));
	if (nv == NULL)
		return -1;
	it->v = nv;
	d = &it->v[it->n];
	memset(d, 0, sizeof(*d));
	d->folder = strdup(folder);
	if (d->folder == NULL)
		return -1;
	d->uid = m->uid;
	d->size = m->size;
	memcpy(d->date, m->date, sizeof(d->date));
	it->n++;
	return 0;
}

/* Walk both sorted lists: each destination message answers for at most
 * one source message with the same fingerprint.  Without --content, what
 * is left is compared once more as sync does (meta_pair_altered): a copy
 * the destination stored altered (8-bit header bytes, line ends, fields
 * it adds) is found, and counted as such. */
static int compare(struct verify_item *it, const char *folder, struct meta_vec *src,
		   struct meta_vec *dst, struct store *ss, struct store *ds,
		   struct stage *sp, uint64_t batch_bytes, bool content, struct tr_error *err)
{
	size_t i = 0, j = 0, n_un = 0, *un = NULL, *partner = NULL, n_src, n_dst, paired = 0;
	long altered = 0;
	int r = -1;

	it->src_messages += (uint32_t)src->n;
	for (i = 0; i < src->n; i++)
		src->v[i].used = false;
	for (j = 0; j < dst->n; j++)
		dst->v[j].used = false;
	i = j = 0;
	while (i < src->n || j < dst->n) {
		int c = i == src->n ? 1 : j == dst->n ? -1 : cmp_key(&src->v[i], &dst->v[j]);

		if (c < 0) {
			i++;
		} else if (c > 0) {
			j++;
		} else {
			it->found++;
			if (strcmp(src->v[i].flags, dst->v[j].flags) != 0)
				it->flags_differ++;
			src->v[i].used = dst->v[j].used = true;
			paired++;
			i++;
			j++;
		}
	}
	if (src->n > 1)
		qsort(src->v, src->n, sizeof(*src->v), meta_cmp_uid);
	if (dst->n > 1)
		qsort(dst->v, dst->n, sizeof(*dst->v), meta_cmp_uid);
	un = malloc((src->n + 1) * sizeof(*un));
	partner = malloc((src->n + 1) * sizeof(*partner));
	if (un == NULL || partner == NULL) {
		tr_error_set(err, TR_ERR_LOCAL, "out of memory");
		goto out;
	}
	for (i = 0; i < src->n; i++)
		if (!src->v[i].used)
			un[n_un++] = i;
	if (!content && n_un > 0 && ds != NULL && paired < dst->n) {
		altered = meta_pair_altered(ss, ds, sp, batch_bytes, src, un, n_un, dst, NULL,
					    partner, &n_src, &n_dst, err);
		if (altered < 0)
			goto out;
	}
	for (i = 0; i < n_un; i++) {
		const struct meta *m = &src->v[un[i]];

		if (altered > 0 && partner[i] != SIZE_MAX) {
			it->found++;
			it->altered++;
			if (strcmp(m->flags, dst->v[partner[i]].flags) != 0)
				it->flags_differ++;
		} else if (add_missing(it, folder, m) < 0) {
			tr_error_set(err, TR_ERR_LOCAL, "out of memory");
			goto out;
		}
	}
	for (j = 0; j < dst->n; j++)
		if (!dst->v[j].used)
			it->dst_only++;
	if (altered > 0)
		log_info(it->acc->label, "%s: %ld message(s) found stored altered by the destination "
			 "(8-bit header bytes, line ends or header fields it adds)", folder, altered);
	r = 0;
out:
	free(un);
	free(partner);
	return r;
}

static int verify_folders(const struct run_env *env, struct store *src,
			  struct store *dst, struct stage *sp, bool content,
			  struct verify_item *it, struct tr_error *err)
{
	uint64_t bb = env->limits.batch_bytes;
	struct folder_list sl, dl;
	struct folder_plan plan;
	size_t i;
	int r = -1;

	memset(&sl, 0, sizeof(sl));
	memset(&dl, 0, sizeof(dl));
	memset(&plan, 0, sizeof(plan));
	if (store_list(src, &sl, err) < 0 || store_list(dst, &dl, err) < 0 ||
	    folder_plan_make(&sl, &dl, &env->map, &plan, err) < 0)
		goto out;
	/* Where a run put a folder whose name the destination refused. */
	for (i = 0; i < plan.n; i++)
		if (!plan.v[i].dst_exists && (plan.v[i].why == NULL ||
					      strcmp(plan.v[i].why, "map") != 0) &&
		    folder_plan_find_renamed(&plan, &dl, i, err) < 0)
			goto out;
	for (i = 0; i < plan.n; i++) {
		const struct folder_plan_entry *pe = &plan.v[i];
		const struct folder *sf = &sl.v[pe->src_index];
		const char *name = sf->name != NULL ? sf->name : sf->raw;
		struct meta_vec sv = { 0 }, dv = { 0 };
		int w;

		it->folders++;
		w = read_folder(src, sf->raw, content ? sp : NULL, bb, &sv, err);
		if (w == 0 && pe->dst_exists)
			w = read_folder(dst, pe->dst_raw, content ? sp : NULL, bb, &dv, err);
		if (w == 0 && !pe->dst_exists && sv.n > 0) {
			it->folders_missing++;
			log_warn(it->acc->label, "%s: no folder %s on the destination", name,
				 pe->dst_name);
		}
		if (w == 0)
			w = compare(it, name, &sv, &dv, src, pe->dst_exists ? dst : NULL, sp, bb,
				    content, err);
		meta_vec_free(&sv);
		meta_vec_free(&dv);
		if (w < 0) {
			tr_error_prefix(err, "%s", name);
			goto out;
		}
	}
	r = 0;
out:
	folder_plan_free(&plan);
	folder_list_free(&sl);
	folder_list_free(&dl);
	return r;
}

struct vctx {
	const struct run_env *env;
	const struct run_account *acc;
	struct verify_item *items;
	bool content;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void verify_one(size_t i, void *ctx)
{
	struct vctx *vc = ctx;
	const struct run_account *acc = &vc->acc[i];
	struct verify_item *it = &vc->items[i];
	struct store *src = NULL, *dst = NULL;
	struct stage sp, *spp = NULL;
	double t0 = now_s();

	/* --content reads every message; without, only those whose copy the
	 * destination may have altered. */
	if (stage_init(&sp, vc->env->cfg->spool_dir, VERIFY_STAGE_MEM, &it->err) < 0)
		goto out;
	spp = &sp;
	if (run_open(vc->env, acc, true, &src, &it->err) == 0 &&
	    run_open(vc->env, acc, false, &dst, &it->err) == 0 &&
	    verify_folders(vc->env, src, dst, spp, vc->content, it, &it->err) < 0 &&
	    it->err.kind == TR_ERR_NONE)
		tr_error_set(&it->err, TR_ERR_LOCAL, "out of memory");
	run_close(vc->env, acc, true, &src);
	run_close(vc->env, acc, false, &dst);
	if (spp != NULL)
		stage_free(spp);
out:
	it->seconds = now_s() - t0;
	run_redact(vc->env, acc, it->err.msg, sizeof(it->err.msg));
	if (it->err.kind != TR_ERR_NONE)
		log_error(acc->label, "%s", it->err.msg);
	else
		log_info(acc->label, "%u folders: %u of %u source messages on the destination, "
			 "%u missing", it->folders, it->found, it->src_messages, it->missing);
}

int verify_run(const struct run_env *env, const struct run_account *acc, size_t n,
	       bool content, struct verify_item **items_r)
{
	struct vctx vc = { .env = env, .acc = acc, .content = content };
	size_t i;
	int ret = 0;

	vc.items = calloc(n + 1, sizeof(*vc.items));
	*items_r = vc.items;
	if (vc.items == NULL)
		return -1;
	for (i = 0; i < n; i++)
		vc.items[i].acc = &acc[i];
	sched_run(n, env->parallel_accounts, verify_one, &vc, NULL);
	for (i = 0; i < n; i++)
		if (vc.items[i].err.kind != TR_ERR_NONE || vc.items[i].missing > 0)
			ret = -1;
	return ret;
}

void verify_items_free(struct verify_item *items, size_t n)
{
	size_t i, k;

	if (items == NULL)
		return;
	for (i = 0; i < n; i++) {
		for (k = 0; k < items[i].n; k++)
			free(items[i].v[k].folder);
		free(items[i].v);
	}
	free(items);
}

static const char *item_status(const struct verify_item *it)
{
	if (it->err.kind != TR_ERR_NONE)
		return "failed";
	return it->missing > 0 ? "incomplete" : "complete";
}

void verify_print(FILE *f, const struct verify_item *items, size_t n)
{
	uint32_t complete = 0, incomplete = 0, failed = 0, missing = 0;
	char t[4 * sizeof(items->err.msg) + 1];
	size_t i;

	fprintf(f, "%-40s %-11s %8s %9s %9s %8s %12s %13s\n", "account", "status", "folders",
		"source", "found", "missing", "only on dst", "flags differ");
	for (i = 0; i < n; i++) {
		const struct verify_item *it = &items[i];

		fprintf(f, "%-40s %-11s %8u %9u %9u %8u %12u %13u\n",
			text_clean_str(t, sizeof(t), it->acc->label, NULL), item_status(it),
			it->folders, it->src_messages, it->found, it->missing, it->dst_only,
			it->flags_differ);
		if (it->err.kind != TR_ERR_NONE)
			fprintf(f, "    error: %s\n", text_clean_str(t, sizeof(t), it->err.msg, NULL));
		if (it->folders_missing > 0)
			fprintf(f, "    %u folder(s) with messages are not on the destination\n",
				it->folders_missing);
		if (it->altered > 0)
			fprintf(f, "    %u of the messages found were stored altered by the "
				"destination (8-bit header bytes, line ends, fields it adds)\n",
				it->altered);
		missing += it->missing;
		if (it->err.kind != TR_ERR_NONE)
			failed++;
		else if (it->missing > 0)
			incomplete++;
		else
			complete++;
	}
	fprintf(f, "%zu account(s): %u complete, %u incomplete (%u messages missing), %u could "
		"not be verified\n", n, complete, incomplete, missing, failed);
}

int verify_json(const char *path, const struct verify_item *items, size_t n,
		struct tr_error *err)
{
	json_t *root = json_object(), *arr = json_array();
	bool ok = true;
	size_t i, k;
	int r;

	for (i = 0; i < n; i++) {
		const struct verify_item *it = &items[i];
		json_t *o = json_object(), *mv = json_array();

		report_json_set(o, "email", report_json_text(it->acc->label), &ok);
		report_json_set(o, "status", json_string(item_status(it)), &ok);
		report_json_set(o, "error", it->err.kind != TR_ERR_NONE
				? report_json_text(it->err.msg) : json_null(), &ok);
		report_json_set(o, "folders", json_integer(it->folders), &ok);
		report_json_set(o, "folders_missing", json_integer(it->folders_missing), &ok);
		report_json_set(o, "source_messages", json_integer(it->src_messages), &ok);
		report_json_set(o, "found", json_integer(it->found), &ok);
		report_json_set(o, "missing", json_integer(it->missing), &ok);
		report_json_set(o, "destination_only", json_integer(it->dst_only), &ok);
		report_json_set(o, "flags_differ", json_integer(it->flags_differ), &ok);
		report_json_set(o, "altered_by_destination", json_integer(it->altered), &ok);
		for (k = 0; k < it->n; k++) {
			json_t *m = json_object();

			report_json_set(m, "folder", report_json_text(it->v[k].folder), &ok);
			report_json_set(m, "uid", json_integer(it->v[k].uid), &ok);
			report_json_set(m, "size", json_integer(it->v[k].size), &ok);
			report_json_set(m, "internaldate", report_json_text(it->v[k].date), &ok);
			report_json_append(mv, m, &ok);
		}
		report_json_set(o, "missing_messages", mv, &ok);
		report_json_append(arr, o, &ok);
	}
	report_json_set(root, "accounts", arr, &ok);
	r = report_write_json(path, root, ok, err);
	json_decref(root);
	return r;
}
