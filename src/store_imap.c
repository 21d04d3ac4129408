/* store_imap: the IMAP store (store.h) over one imap.c session.
 *
 * Everything IMAP that the engine must not see lives here: ids as UID sets
 * in IMAP syntax ("5:*", "3,7:9"), which capabilities mean what, UID STORE
 * lines of bounded length, isolating the one message whose response
 * libetpan cannot parse (the session dies of it: reconnect, open the folder
 * again, halve the set until the message is alone, report it unreadable),
 * and the NUL bytes BODY[] hides (nul.h: BINARY[] of the parts that may
 * hide them, the outcome left in each stage_msg for the engine to report).
 *
 * A reconnection replaces the session in place: one session at a time, so
 * the caller's session slot (scheduler.h) still counts it right.
 * Threading: one thread at a time per store, as the session.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fingerprint.h"
#include "imap.h"
#include "meta.h"
#include "nul.h"
#include "store_imap.h"

/* At most this many UIDs in one UID STORE command line. */
#define STORE_CHUNK 500
/* A server whose every answer is broken is not a few odd messages: one
 * operation gives up after isolating this many. */
#define MAX_UNREADABLE 20

static const char WHY_BINARY_OFF[] = "the source server breaks the connection on FETCH BINARY[]";

struct istore {
	struct store base;
	const struct store_endpoint *ep;
	const struct store_creds *cr;
	struct imap_session *s;       /* NULL after a failed reconnection */
	struct store_caps caps;
	char *folder;                 /* the open folder's wire name, owned, or NULL */
	bool readonly;
	struct store_status st;       /* of the open folder */
	bool binary_off;              /* BINARY[] broke the session once: not asked again */
	unsigned unreadable;          /* isolated during the current operation */
};

static struct istore *is_of(struct store *st)
{
	return (struct istore *)st;
}

static void set_caps(struct istore *is)
{
	const struct imap_caps *c = imap_caps(is->s);

	memset(&is->caps, 0, sizeof(is->caps));
	is->caps.dst_ids = c->uidplus;
	is->caps.modseq = c->condstore;
	is->caps.binary = c->binary;
	is->caps.append_limit = c->appendlimit;
}

static int i_open(const struct store_conf *c, struct store **st_r, struct tr_error *err)
{
	struct istore *is = calloc(1, sizeof(*is));

	*st_r = NULL;
	if (is == NULL) {
		tr_error_set(err, TR_ERR_LOCAL, "out of memory");
		return -1;
	}
	is->base.drv = &store_imap_driver;
	is->ep = c->ep;
	is->cr = c->cr;
	if (imap_open(c->ep, c->cr, &is->s, err) < 0) {
		free(is);
		return -1;
	}
	set_caps(is);
	*st_r = &is->base;
	return 0;
}

static void i_close(struct store *st)
{
	struct istore *is = is_of(st);

	if (is == NULL)
		return;
	imap_close(is->s);
	free(is->folder);
	free(is);
}

static bool i_broken(const struct store *st)
{
	const struct istore *is = (const struct istore *)st;

	return is->s == NULL || imap_broken(is->s);
}

static const struct store_caps *i_caps(const struct store *st)
{
	return &((const struct istore *)st)->caps;
}

static const char *i_where(const struct store *st)
{
	const struct istore *is = (const struct istore *)st;

	return is->s != NULL ? imap_where(is->s) : is->ep->label;
}

static const char *i_transport(struct store *st, char *buf, size_t len)
{
	struct istore *is = is_of(st);

	if (is->s == NULL) {
		snprintf(buf, len, "closed");
		return buf;
	}
	return imap_transport(is->s, buf, len);
}

/* A new session in place of a dead one, with the same folder open. */
static int reconnect(struct istore *is, struct tr_error *err)
{
	struct store_status st;

	imap_close(is->s);
	is->s = NULL;
	if (imap_open(is->ep, is->cr, &is->s, err) < 0) {
		is->s = NULL;
		return -1;
	}
	set_caps(is);
	if (is->folder != NULL && imap_open_folder(is->s, is->folder, is->readonly, &st, err) < 0)
		return -1;
	return 0;
}

static bool unparseable(const struct tr_error *err)
{
	return strcmp(err->code, IMAP_CODE_UNPARSEABLE) == 0;
}

static int too_many(struct istore *is, const char *what, struct tr_error *err)
{
	tr_error_set(err, TR_ERR_PROTOCOL, "%s: more than %d messages whose %s response the "
		     "server sends broken: giving up on this folder", i_where(&is->base),
		     MAX_UNREADABLE, what);
	return -1;
}

/* ---- sets ------------------------------------------------------------------- */

/* Part of a set while isolating: the ids uids[0, n), or (uids NULL) every
 * id in lo..hi. */
struct span {
	const uint32_t *uids;
	size_t n;
	uint32_t lo, hi;
};

static char *span_str(const struct span *sp)
{
	char *s;

	if (sp->uids != NULL)
		return meta_uidset(sp->uids, sp->n);
	s = malloc(32);
	if (s != NULL) {
		if (sp->hi == UINT32_MAX)
			snprintf(s, 32, "%u:*", sp->lo);
		else if (sp->lo == sp->hi)
			snprintf(s, 32, "%u", sp->lo);
		else
			snprintf(s, 32, "%u:%u", sp->lo, sp->hi);
	}
	return s;
}

static struct span span_of(const struct store_set *set)
{
	struct span sp = { set->uids, set->n, set->from ? set->from : 1,
			   set->to ? set->to : UINT32_MAX };

	return sp;
}

/* One message alone: 1 and *uid. */
static int span_single(const struct span *sp, uint32_t *uid)
{
	if (sp->uids != NULL ? sp->n == 1 : sp->lo == sp->hi) {
		*uid = sp->uids != NULL ? sp->uids[0] : sp->lo;
		return 1;
	}
	return 0;
}

static void span_halves(const struct span *sp, struct span *a, struct span *b)
{
	*a = *b = *sp;
	if (sp->uids != NULL) {
		a->n = sp->n / 2;
		b->uids = sp->uids + a->n;
		b->n = sp->n - a->n;
	} else {
		a->hi = sp->lo + (sp->hi - sp->lo) / 2;
		b->lo = a->hi + 1;
	}
}

static int nomem(struct tr_error *err)
{
	tr_error_set(err, TR_ERR_LOCAL, "out of memory");
	return -1;
}

/* ---- folders ----------------------------------------------------------------- */

static int list_personal(void *ctx, const char *prefix, char delim)
{
	return folder_list_set_namespace(ctx, prefix, delim);
}

static int list_entry(void *ctx, const struct imap_list_entry *e)
{
	struct folder_list *l = ctx;
	enum folder_role role = ROLE_NONE;

	if (e->from_lsub) {
		folder_list_subscribe(l, e->raw);
		return 0;
	}
	for (size_t i = 0; i < e->n_attrs && role == ROLE_NONE; i++)
		role = folder_role_from_attr(e->attrs[i]);
	/* A NAMESPACE without a personal delimiter: the first one LIST shows. */
	if (l->delim == 0 && e->delim != 0 && l->prefix != NULL && l->prefix[0] == '\0' &&
	    folder_list_set_namespace(l, "", e->delim) < 0)
		return -1;
	if (folder_list_add(l, e->raw, e->delim, role, e->noselect) < 0)
		return -1;
	if (e->subscribed)
		folder_list_subscribe(l, e->raw);
	return 0;
}

static int i_list(struct store *st, struct folder_list *l, struct tr_error *err)
{
	struct imap_list_sink sink = { list_personal, list_entry, l };

	folder_list_init(l);
	if (imap_list(is_of(st)->s, &sink, err) < 0) {
		if (err->kind == TR_ERR_NONE)
			nomem(err);
		return -1;
	}
	return 0;
}

static int i_status_many(struct store *st, const char *const *names, size_t n,
			 struct store_status *stv, struct tr_error *err)
{
	return imap_status_many(is_of(st)->s, names, n, stv, err);
}

static int i_command_many(struct store *st, enum store_cmd cmd, const char *const *names,
			  size_t n, bool *ok, struct store_refusal *why, struct tr_error *err)
{
	struct tr_error *e = NULL;
	int r;

	if (why != NULL && (e = calloc(n + 1, sizeof(*e))) == NULL)
		return nomem(err);
	r = imap_command_many(is_of(st)->s, cmd == STORE_CREATE ? "CREATE" : "SUBSCRIBE", names,
			      n, ok, e, err);
	for (size_t i = 0; r == 0 && why != NULL && i < n; i++) {
		memset(&why[i], 0, sizeof(why[i]));
		if (ok[i])
			continue;
		why[i].err = e[i];
		if (strcmp(e[i].code, "ALREADYEXISTS") == 0) {
			why[i].kind = STORE_REFUSED_EXISTS;
		} else if (strcmp(e[i].code, IMAP_CODE_BAD_NAME) == 0) {
			why[i].kind = STORE_REFUSED_NAME;
			imap_bad_name_char(&e[i], &why[i].bad);
		}
	}
	free(e);
	return r;
}

static int remember_folder(struct istore *is, const char *name, bool readonly,
			   const struct store_status *s, struct tr_error *err)
{
	char *f = strdup(name);

	if (f == NULL)
		return nomem(err);
	free(is->folder);
	is->folder = f;
	is->readonly = readonly;
	is->st = *s;
	return 0;
}

static int i_open_folder(struct store *st, const char *name, bool readonly,
			 struct store_status *s, struct tr_error *err)
{
	struct istore *is = is_of(st);

	free(is->folder);
	is->folder = NULL;
	if (imap_open_folder(is->s, name, readonly, s, err) < 0)
		return -1;
	return remember_folder(is, name, readonly, s, err);
}

/* ---- metadata ---------------------------------------------------------------- */

/* STORE_FETCH_* as IMAP asks for it: a fingerprint needs its header fields. */
static int imap_what(int what)
{
	return ((what & STORE_FETCH_FLAGS) ? IMAP_META_FLAGS : 0) |
	       ((what & STORE_FETCH_META) ? IMAP_META_DATE_SIZE : 0) |
	       ((what & STORE_FETCH_FP) ? IMAP_META_HEADER : 0);
}

/* The caller's callback, behind a filter: ids below the set's start ("n:*"
 * names the last message even when it is below n) and ids already given
 * (a fetch tried again after a broken response) are not passed on. */
struct meta_pass {
	store_msg_cb *cb;
	void *ctx;
	uint32_t from;
	uint32_t *seen;
	size_t n_seen, cap_seen;
	bool failed;
};

static bool seen_has(const struct meta_pass *mp, uint32_t uid)
{
	for (size_t i = 0; i < mp->n_seen; i++)
		if (mp->seen[i] == uid)
			return true;
	return false;
}

/* What a FETCH said of a message, in the engine's terms: the fingerprint
 * is computed here from the header fields asked for. */
static void to_store_msg(const struct imap_fetched *f, struct store_msg *m)
{
	memset(m, 0, sizeof(*m));
	m->uid = f->uid;
	m->size = f->size;
	m->flags = (char *)f->flags;
	memcpy(m->date, f->date, sizeof(m->date));
	if (f->has_hdr) {
		fp_compute(f->hdr, f->hdr_len, f->size, m->fp);
		fp_bucket(f->hdr, f->hdr_len, m->bucket);
		m->has_fp = true;
	}
}

static int meta_pass_cb(const struct imap_fetched *f, void *ctx)
{
	struct meta_pass *mp = ctx;
	struct store_msg msg, *m = &msg;

	if (f->uid < mp->from)
		return 0;
	to_store_msg(f, m);
	if (mp->n_seen == mp->cap_seen) {
		size_t cap = mp->cap_seen ? 2 * mp->cap_seen : 256;
		uint32_t *nv = realloc(mp->seen, cap * sizeof(*nv));

		if (nv == NULL) {
			mp->failed = true;
			return -1;
		}
		mp->seen = nv;
		mp->cap_seen = cap;
	}
	mp->seen[mp->n_seen++] = m->uid;
	if (mp->cb(m, mp->ctx) < 0) {
		mp->failed = true;
		return -1;
	}
	return 0;
}

/* After a broken fetch, only ids not seen yet are passed on (a quadratic
 * check, but only while isolating, over one batch). */
static int meta_again_cb(const struct imap_fetched *f, void *ctx)
{
	struct meta_pass *mp = ctx;

	if (f->uid < mp->from || seen_has(mp, f->uid))
		return 0;
	return meta_pass_cb(f, ctx);
}

static int report_unreadable(struct istore *is, struct meta_pass *mp, uint32_t uid,
			     struct tr_error *err)
{
	struct store_msg m;

	if (++is->unreadable > MAX_UNREADABLE)
		return too_many(is, "FETCH", err);
	memset(&m, 0, sizeof(m));
	m.uid = uid;
	m.unreadable = true;
	m.flags = (char *)"";
	if (mp->cb(&m, mp->ctx) < 0) {
		mp->failed = true;
		return nomem(err);
	}
	return 0;
}

/* FETCH a span again after a broken response, halving it until the one
 * message that breaks the parser is alone. */
static int meta_isolate(struct istore *is, const struct span *sp, int what, uint64_t since,
			struct meta_pass *mp, struct tr_error *err)
{
	struct span a, b;
	uint32_t uid;
	char *set;
	int r;

	if (i_broken(&is->base) && reconnect(is, err) < 0)
		return -1;
	set = span_str(sp);
	if (set == NULL)
		return nomem(err);
	r = imap_fetch_meta(is->s, set, imap_what(what), FP_HEADER_FIELDS, since, meta_again_cb,
			    mp, err);
	free(set);
	if (r == 0)
		return 0;
	if (mp->failed || !unparseable(err))
		return -1;
	if (span_single(sp, &uid)) {
		bool exists;

		/* only a message whose description is wanted is worth a report */
		if (!(what & STORE_FETCH_FP))
			return 0;
		/* halving works on numbers: make sure this one is a message */
		if (reconnect(is, err) < 0 || imap_uid_exists(is->s, uid, &exists, err) < 0)
			return -1;
		return exists ? report_unreadable(is, mp, uid, err) : 0;
	}
	span_halves(sp, &a, &b);
	if (meta_isolate(is, &a, what, since, mp, err) < 0)
		return -1;
	return meta_isolate(is, &b, what, since, mp, err);
}

/* A metadata fetch whose first try failed with err: isolate when one
 * message broke the response. */
static int meta_recover(struct istore *is, const struct store_set *set, int what, uint64_t since,
			struct meta_pass *mp, struct tr_error *err)
{
	struct span sp;

	if (mp->failed) {
		if (err->kind == TR_ERR_NONE || (err->kind == TR_ERR_LOCAL && err->msg[0] == '\0'))
			nomem(err);
		return -1;
	}
	if (!unparseable(err))
		return -1;
	sp = span_of(set);
	if (sp.uids == NULL && sp.hi == UINT32_MAX)
		sp.hi = is->st.uidnext > sp.lo ? is->st.uidnext - 1 : sp.lo;
	if (sp.uids == NULL && sp.hi < sp.lo)
		return 0;
	return meta_isolate(is, &sp, what, since, mp, err);
}

static int i_fetch_meta(struct store *st, const struct store_set *set, int what,
			uint64_t changedsince, store_msg_cb *cb, void *ctx, struct tr_error *err)
{
	struct istore *is = is_of(st);
	struct meta_pass mp = { .cb = cb, .ctx = ctx, .from = set->uids == NULL ? set->from : 0 };
	struct span sp = span_of(set);
	char *str;
	int r;

	if (set->uids != NULL ? set->n == 0 : set->to != 0 && set->to < set->from)
		return 0;       /* no id at all */
	str = span_str(&sp);
	if (str == NULL)
		return nomem(err);
	is->unreadable = 0;
	r = imap_fetch_meta(is->s, str, imap_what(what), FP_HEADER_FIELDS, changedsince,
			    meta_pass_cb, &mp, err);
	free(str);
	if (r < 0)
		r = meta_recover(is, set, what, changedsince, &mp, err);
	free(mp.seen);
	return r;
}

static int i_open_fetch(struct store *st, const char *name, struct store_status *s,
			bool *opened, const struct store_set *set, int what, store_msg_cb *cb,
			void *ctx, struct tr_error *err)
{
	struct istore *is = is_of(st);
	struct meta_pass mp = { .cb = cb, .ctx = ctx, .from = set->uids == NULL ? set->from : 0 };
	struct span sp = span_of(set);
	char *str = span_str(&sp);
	int r;

	free(is->folder);
	is->folder = NULL;
	if (str == NULL)
		return nomem(err);
	is->unreadable = 0;
	r = imap_examine_fetch(is->s, name, s, opened, str, imap_what(what), FP_HEADER_FIELDS,
			       meta_pass_cb, &mp, err);
	free(str);
	if (*opened && remember_folder(is, name, true, s, err) < 0)
		r = -1;
	else if (r < 0 && *opened)
		r = meta_recover(is, set, what, 0, &mp, err);
	free(mp.seen);
	return r;
}

/* ---- bodies ------------------------------------------------------------------ */

/* Put back the NUL bytes BODY[] may hide (nul.h) in the messages of sp
 * from index first on; what was found stays in each stage_msg. */
static int recover_nul(struct istore *is, struct stage *sp, size_t first, struct tr_error *err)
{
	if (!imap_caps(is->s)->binary)
		return 0;
	for (size_t k = first; k < sp->n; k++) {
		struct stage_msg *m = &sp->v[k];
		struct nul_result res = { 0 };

		if (is->binary_off) {
			int stray = nul_suspect(sp, m, err);

			if (stray < 0)
				return -1;
			res.stray = stray > 0;
			res.unchecked = stray > 0 ? WHY_BINARY_OFF : NULL;
		} else if (nul_recover(is->s, sp, m, &res, err) < 0) {
			if (!imap_broken(is->s))
				return -1;
			/* The session died of BINARY[]: a new one, and this message
			 * and the rest as BODY[] shows them. */
			is->binary_off = true;
			if (reconnect(is, err) < 0)
				return -1;
			k--;
			continue;
		}
		m->stray = res.stray;
		m->nul_asked = res.asked;
		m->nul_restored = res.restored;
		m->unchecked = res.unchecked;
	}
	return 0;
}

struct body_fetch {
	struct istore *is;
	struct stage *sp;
	store_unreadable_cb *bad;
	void *ctx;
};

/* The ids of span not in the stage yet. */
static uint32_t *still_missing(const struct stage *sp, const uint32_t *uids, size_t n, size_t *k)
{
	uint32_t *left = malloc((n + 1) * sizeof(*left));

	*k = 0;
	if (left == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (stage_find(sp, uids[i]) == NULL)
			left[(*k)++] = uids[i];
	return left;
}

static int bodies_isolate(struct body_fetch *bf, const struct span *sp, struct tr_error *err);

/* Fetch span into the stage; on a broken response, isolate. */
static int bodies_span(struct body_fetch *bf, const struct span *sp, struct tr_error *err)
{
	char *set = span_str(sp);
	int r;

	if (set == NULL)
		return nomem(err);
	r = imap_fetch_bodies(bf->is->s, set, bf->sp, err);
	free(set);
	if (r == 0)
		return 0;
	if (!unparseable(err))
		return -1;
	return bodies_isolate(bf, sp, err);
}

static int bodies_isolate(struct body_fetch *bf, const struct span *sp, struct tr_error *err)
{
	struct istore *is = bf->is;
	struct span rest, a, b;
	uint32_t *left = NULL, uid;
	size_t n_left;
	int r;

	if (reconnect(is, err) < 0)
		return -1;
	if (sp->uids == NULL) {
		/* bodies are asked for by list; a range is taken whole */
		return -1;
	}
	left = still_missing(bf->sp, sp->uids, sp->n, &n_left);
	if (left == NULL)
		return nomem(err);
	rest = (struct span){ left, n_left, 0, 0 };
	r = 0;
	if (n_left == 0) {
		r = 0;
	} else if (span_single(&rest, &uid)) {
		if (++is->unreadable > MAX_UNREADABLE)
			r = too_many(is, "FETCH BODY[]", err);
		else if (bf->bad != NULL)
			bf->bad(bf->ctx, uid, "the source server's response to FETCH BODY[] for it "
				"could not be parsed");
	} else {
		span_halves(&rest, &a, &b);
		r = bodies_span(bf, &a, err);
		if (r == 0)
			r = bodies_span(bf, &b, err);
	}
	free(left);
	return r;
}

static int i_fetch_bodies(struct store *st, const struct store_set *set, struct stage *sp,
			  store_unreadable_cb *bad, void *ctx, struct tr_error *err)
{
	struct body_fetch bf = { is_of(st), sp, bad, ctx };
	struct span s = span_of(set);
	size_t first = sp->n;

	if (set->uids != NULL ? set->n == 0 : set->to != 0 && set->to < set->from)
		return 0;
	bf.is->unreadable = 0;
	if (bodies_span(&bf, &s, err) < 0)
		return -1;
	return recover_nul(bf.is, sp, first, err);
}

/* ---- writing ----------------------------------------------------------------- */

static int i_append(struct store *st, const char *name, const struct stage *sp,
		    struct store_append_item *items, size_t n, uint32_t *uidvalidity_r,
		    struct tr_error *err)
{
	return imap_append(is_of(st)->s, name, sp, items, n, uidvalidity_r, err);
}

static int i_set_flags(struct store *st, const struct store_set *set, const char *flags,
		       struct tr_error *err)
{
	struct istore *is = is_of(st);
	struct span sp = span_of(set);
	size_t i = 0;

	if (sp.uids == NULL) {
		char *str = span_str(&sp);
		int r;

		if (str == NULL)
			return nomem(err);
		r = imap_store_flags(is->s, str, flags, err);
		free(str);
		return r;
	}
	/* command lines of bounded length */
	while (i < set->n) {
		size_t k = set->n - i < STORE_CHUNK ? set->n - i : STORE_CHUNK;
		char *str = meta_uidset(set->uids + i, k);
		int r;

		if (str == NULL)
			return nomem(err);
		r = imap_store_flags(is->s, str, flags, err);
		free(str);
		if (r < 0)
			return -1;
		i += k;
	}
	return 0;
}

static int i_quota(struct store *st, uint64_t *used_kib, uint64_t *limit_kib,
		   struct tr_error *err)
{
	return imap_quota(is_of(st)->s, used_kib, limit_kib, err);
}

const struct store_driver store_imap_driver = {
	.name = "imap",
	.open = i_open,
	.close = i_close,
	.broken = i_broken,
	.caps = i_caps,
	.where = i_where,
	.transport = i_transport,
	.list = i_list,
	.status_many = i_status_many,
	.command_many = i_command_many,
	.open_folder = i_open_folder,
	.open_fetch = i_open_fetch,
	.fetch_meta = i_fetch_meta,
	.fetch_bodies = i_fetch_bodies,
	.append = i_append,
	.set_flags = i_set_flags,
	.quota = i_quota,
};
