/* store_mem: see include/store_mem.h */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fingerprint.h"
#include "flags.h"
#include "net.h"
#include "store_mem.h"

/* The internal date of a message delivered or appended without one: a
 * fixed date keeps the tests reproducible. */
#define DEFAULT_DATE "01-Jan-2024 00:00:00 +0000"
/* The first UIDVALIDITY a world hands out (then one more per folder made). */
#define FIRST_UIDVALIDITY 1000

struct mmsg {
	uint32_t uid;
	char *flags;              /* canonical */
	char date[32];
	char *data;
	size_t len;
	uint64_t modseq;
};

struct mfolder {
	char *raw;
	enum folder_role role;
	bool subscribed;
	uint32_t uidvalidity, uidnext;
	uint64_t modseq;          /* the highest given in this folder */
	struct mmsg *v;           /* by UID */
	size_t n, cap;
};

struct mem_world {
	pthread_mutex_t lock;
	char *prefix;
	char delim;
	struct mfolder **f;
	size_t n, cap;
	uint32_t next_uidvalidity;
	struct mem_opts opts;
	uint64_t appended;
};

/* ---- the world ------------------------------------------------------------ */

static bool is_inbox(const char *raw)
{
	return strcasecmp(raw, "INBOX") == 0;
}

/* The folder called raw (INBOX in any case), or NULL.  Under the lock. */
static struct mfolder *find(struct mem_world *w, const char *raw)
{
	for (size_t i = 0; i < w->n; i++)
		if (strcmp(w->f[i]->raw, raw) == 0 || (is_inbox(raw) && is_inbox(w->f[i]->raw)))
			return w->f[i];
	return NULL;
}

static void msg_free(struct mmsg *m)
{
	free(m->flags);
	free(m->data);
}

static void folder_free(struct mfolder *f)
{
	if (f == NULL)
		return;
	for (size_t i = 0; i < f->n; i++)
		msg_free(&f->v[i]);
	free(f->v);
	free(f->raw);
	free(f);
}

/* A new empty folder.  Under the lock. */
static struct mfolder *folder_new(struct mem_world *w, const char *raw, enum folder_role role,
				  bool subscribed)
{
	struct mfolder *f;

	if (w->n == w->cap) {
		size_t cap = w->cap ? 2 * w->cap : 8;
		struct mfolder **nf = realloc(w->f, cap * sizeof(*nf));

		if (nf == NULL)
			return NULL;
		w->f = nf;
		w->cap = cap;
	}
	f = calloc(1, sizeof(*f));
	if (f == NULL || (f->raw = strdup(raw)) == NULL) {
		free(f);
		return NULL;
	}
	f->role = role;
	f->subscribed = subscribed;
	f->uidvalidity = w->next_uidvalidity++;
	f->uidnext = 1;
	f->modseq = 1;
	w->f[w->n++] = f;
	return f;
}

struct mem_world *mem_world_new(const char *prefix, char delim)
{
	struct mem_world *w = calloc(1, sizeof(*w));

	if (w == NULL)
		return NULL;
	pthread_mutex_init(&w->lock, NULL);
	w->delim = delim;
	w->next_uidvalidity = FIRST_UIDVALIDITY;
	w->prefix = strdup(prefix != NULL ? prefix : "");
	if (w->prefix == NULL || folder_new(w, "INBOX", ROLE_NONE, true) == NULL) {
		mem_world_free(w);
		return NULL;
	}
	return w;
}

void mem_world_free(struct mem_world *w)
{
	if (w == NULL)
		return;
	for (size_t i = 0; i < w->n; i++)
		folder_free(w->f[i]);
	free(w->f);
	free(w->prefix);
	pthread_mutex_destroy(&w->lock);
	free(w);
}

void mem_world_set_opts(struct mem_world *w, const struct mem_opts *o)
{
	pthread_mutex_lock(&w->lock);
	w->opts = *o;
	pthread_mutex_unlock(&w->lock);
}

int mem_folder_add(struct mem_world *w, const char *raw, enum folder_role role, bool subscribed)
{
	int r = -1;

	pthread_mutex_lock(&w->lock);
	if (find(w, raw) == NULL && folder_new(w, raw, role, subscribed) != NULL)
		r = 0;
	pthread_mutex_unlock(&w->lock);
	return r;
}

bool mem_folder_exists(struct mem_world *w, const char *raw)
{
	bool r;

	pthread_mutex_lock(&w->lock);
	r = find(w, raw) != NULL;
	pthread_mutex_unlock(&w->lock);
	return r;
}

/* Under the lock. */
static struct store_status status_of(const struct mem_world *w, const struct mfolder *f)
{
	struct store_status s;

	memset(&s, 0, sizeof(s));
	if (f == NULL)
		return s;
	s.uidvalidity = f->uidvalidity;
	s.uidnext = f->uidnext;
	s.messages = (uint32_t)f->n;
	s.highestmodseq = w->opts.no_modseq ? 0 : f->modseq;
	return s;
}

struct store_status mem_folder_status(struct mem_world *w, const char *raw)
{
	struct store_status s;

	pthread_mutex_lock(&w->lock);
	s = status_of(w, find(w, raw));
	pthread_mutex_unlock(&w->lock);
	return s;
}

int mem_folder_recreate(struct mem_world *w, const char *raw, bool keep_messages)
{
	struct mfolder *f;
	int r = -1;

	pthread_mutex_lock(&w->lock);
	f = find(w, raw);
	if (f != NULL) {
		if (!keep_messages) {
			for (size_t i = 0; i < f->n; i++)
				msg_free(&f->v[i]);
			f->n = 0;
		}
		f->uidvalidity = w->next_uidvalidity++;
		f->uidnext = 1;
		for (size_t i = 0; i < f->n; i++) {
			f->v[i].uid = f->uidnext++;
			f->v[i].modseq = ++f->modseq;
		}
		f->modseq++;
		r = 0;
	}
	pthread_mutex_unlock(&w->lock);
	return r;
}

/* Add a message of len bytes at data (taken: freed on failure) to f.
 * Under the lock. */
static int folder_put(struct mfolder *f, char *data, size_t len, const char *flags,
		      const char *date, uint32_t *uid_r)
{
	struct mmsg *m;
	char *fl = flags_canon(flags);

	if (fl == NULL)
		goto nomem;
	if (f->n == f->cap) {
		size_t cap = f->cap ? 2 * f->cap : 16;
		struct mmsg *nv = realloc(f->v, cap * sizeof(*nv));

		if (nv == NULL)
			goto nomem;
		f->v = nv;
		f->cap = cap;
	}
	m = &f->v[f->n++];
	memset(m, 0, sizeof(*m));
	m->uid = f->uidnext++;
	m->flags = fl;
	snprintf(m->date, sizeof(m->date), "%s", date != NULL && date[0] ? date : DEFAULT_DATE);
	m->data = data;
	m->len = len;
	m->modseq = ++f->modseq;
	if (uid_r != NULL)
		*uid_r = m->uid;
	return 0;
nomem:
	free(fl);
	free(data);
	return -1;
}

int mem_msg_add(struct mem_world *w, const char *raw, const void *data, size_t len,
		const char *flags, const char *date, uint32_t *uid_r)
{
	char *copy = malloc(len + 1);
	struct mfolder *f;
	int r = -1;

	if (copy == NULL)
		return -1;
	memcpy(copy, data, len);
	copy[len] = '\0';
	pthread_mutex_lock(&w->lock);
	f = find(w, raw);
	if (f != NULL)
		r = folder_put(f, copy, len, flags, date, uid_r);
	else
		free(copy);
	pthread_mutex_unlock(&w->lock);
	return r;
}

/* Message uid of f, or NULL.  Under the lock. */
static struct mmsg *msg_find(struct mfolder *f, uint32_t uid)
{
	size_t lo = 0, hi = f->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (f->v[mid].uid == uid)
			return &f->v[mid];
		if (f->v[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

int mem_msg_expunge(struct mem_world *w, const char *raw, uint32_t uid)
{
	struct mfolder *f;
	struct mmsg *m;
	int r = -1;

	pthread_mutex_lock(&w->lock);
	f = find(w, raw);
	if (f != NULL && (m = msg_find(f, uid)) != NULL) {
		size_t i = (size_t)(m - f->v);

		msg_free(m);
		memmove(&f->v[i], &f->v[i + 1], (f->n - i - 1) * sizeof(*m));
		f->n--;
		f->modseq++;
		r = 0;
	}
	pthread_mutex_unlock(&w->lock);
	return r;
}

/* Replace m's flags; a new modseq when they change.  Under the lock. */
static int msg_set_flags(struct mfolder *f, struct mmsg *m, const char *flags)
{
	char *fl = flags_canon(flags);

	if (fl == NULL)
		return -1;
	if (flags_equal(fl, m->flags)) {
		free(fl);
		return 0;
	}
	free(m->flags);
	m->flags = fl;
	m->modseq = ++f->modseq;
	return 0;
}

int mem_msg_set_flags(struct mem_world *w, const char *raw, uint32_t uid, const char *flags)
{
	struct mfolder *f;
	struct mmsg *m;
	int r = -1;

	pthread_mutex_lock(&w->lock);
	f = find(w, raw);
	if (f != NULL && (m = msg_find(f, uid)) != NULL)
		r = msg_set_flags(f, m, flags);
	pthread_mutex_unlock(&w->lock);
	return r;
}

void mem_msgs_free(struct mem_msg_copy *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].flags);
		free(v[i].data);
	}
	free(v);
}

int mem_folder_read(struct mem_world *w, const char *raw, struct mem_msg_copy **v, size_t *n)
{
	struct mfolder *f;
	struct mem_msg_copy *out = NULL;
	size_t i = 0;
	int r = -1;

	*v = NULL;
	*n = 0;
	pthread_mutex_lock(&w->lock);
	f = find(w, raw);
	if (f == NULL || (out = calloc(f->n + 1, sizeof(*out))) == NULL)
		goto out;
	for (i = 0; i < f->n; i++) {
		const struct mmsg *m = &f->v[i];

		out[i].uid = m->uid;
		out[i].len = m->len;
		out[i].modseq = m->modseq;
		memcpy(out[i].date, m->date, sizeof(out[i].date));
		out[i].flags = strdup(m->flags);
		out[i].data = malloc(m->len + 1);
		if (out[i].flags == NULL || out[i].data == NULL) {
			i++;
			goto out;
		}
		memcpy(out[i].data, m->data, m->len);
		out[i].data[m->len] = '\0';
	}
	*v = out;
	*n = f->n;
	out = NULL;
	r = 0;
out:
	pthread_mutex_unlock(&w->lock);
	if (out != NULL)
		mem_msgs_free(out, i);
	return r;
}

uint64_t mem_world_appended(struct mem_world *w)
{
	uint64_t n;

	pthread_mutex_lock(&w->lock);
	n = w->appended;
	pthread_mutex_unlock(&w->lock);
	return n;
}

/* ---- what a destination does to what it stores ------------------------------ */

/* Where the header of in[0..len) ends: the offset of the empty line that
 * ends it (len when there is none). */
static size_t header_end(const char *in, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (i == 0 && (in[0] == '\n' || (len > 1 && in[0] == '\r' && in[1] == '\n')))
			return 0;
		if (in[i] != '\n')
			continue;
		if (i + 1 < len && in[i + 1] == '\n')
			return i + 1;
		if (i + 2 < len && in[i + 1] == '\r' && in[i + 2] == '\n')
			return i + 1;
	}
	return len;
}

int mem_rewrite(unsigned mask, const char *in, size_t len, char **out, size_t *out_len)
{
	static const char received[] = "Received: from client.mem.test by mem.test; "
				       "Mon, 1 Jan 2024 00:00:00 +0000";
	size_t cap = 2 * len + sizeof(received) + 4, n = 0, hdr = header_end(in, len);
	char *o = malloc(cap);

	if (o == NULL)
		return -1;
	if (mask & MEM_REWRITE_RECEIVED) {
		bool crlf = (mask & MEM_REWRITE_CRLF) || memchr(in, '\r', hdr) != NULL;

		memcpy(o, received, sizeof(received) - 1);
		n = sizeof(received) - 1;
		if (crlf)
			o[n++] = '\r';
		o[n++] = '\n';
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];

		if ((mask & MEM_REWRITE_MUNGE8BIT) && i < hdr && c >= 0x80)
			c = 'X';
		if ((mask & MEM_REWRITE_CRLF) && c == '\n' && (i == 0 || in[i - 1] != '\r'))
			o[n++] = '\r';
		o[n++] = (char)c;
	}
	o[n] = '\0';
	*out = o;
	*out_len = n;
	return 0;
}

/* ---- the store -------------------------------------------------------------- */

struct mstore {
	struct store base;
	struct mem_world *w;
	struct store_caps caps;
	char where[96];
	char *folder;             /* the open folder, owned, or NULL */
	uint32_t folder_uv;       /* its UIDVALIDITY when opened */
	bool readonly;
	bool broken;
};

static struct mstore *ms_of(struct store *st)
{
	return (struct mstore *)st;
}

static int nomem(struct tr_error *err)
{
	tr_error_set(err, TR_ERR_LOCAL, "out of memory");
	return -1;
}

static int m_open(const struct store_conf *c, struct store **st_r, struct tr_error *err)
{
	struct mstore *ms;

	*st_r = NULL;
	if (c->arg == NULL) {
		tr_error_set(err, TR_ERR_USAGE, "the mem store needs a world");
		return -1;
	}
	if (net_cancelled()) {
		tr_error_set(err, TR_ERR_STOPPED, "stopped before connecting");
		return -1;
	}
	ms = calloc(1, sizeof(*ms));
	if (ms == NULL)
		return nomem(err);
	ms->base.drv = &store_mem_driver;
	ms->w = c->arg;
	snprintf(ms->where, sizeof(ms->where), "%s (mem)",
		 c->ep != NULL && c->ep->label != NULL ? c->ep->label : "store");
	pthread_mutex_lock(&ms->w->lock);
	ms->caps.dst_ids = !ms->w->opts.no_dst_ids;
	ms->caps.modseq = !ms->w->opts.no_modseq;
	ms->caps.binary = !ms->w->opts.no_binary;
	ms->caps.append_limit = ms->w->opts.append_limit;
	pthread_mutex_unlock(&ms->w->lock);
	*st_r = &ms->base;
	return 0;
}

static void m_close(struct store *st)
{
	struct mstore *ms = ms_of(st);

	if (ms == NULL)
		return;
	free(ms->folder);
	free(ms);
}

static bool m_broken(const struct store *st)
{
	return ((const struct mstore *)st)->broken;
}

static const struct store_caps *m_caps(const struct store *st)
{
	return &((const struct mstore *)st)->caps;
}

static const char *m_where(const struct store *st)
{
	return ((const struct mstore *)st)->where;
}

static const char *m_transport(struct store *st, char *buf, size_t len)
{
	(void)st;
	snprintf(buf, len, "memory");
	return buf;
}

/* A store used after it broke: as a dead session answers. */
static int dead(struct mstore *ms, struct tr_error *err)
{
	tr_error_set(err, TR_ERR_TEMP, "%s: the connection is closed", ms->where);
	return -1;
}

/* A stopped run or scope (net.h) ends the session's next operation, as
 * the IMAP store's next wait would (store_imap.c, through net_wait). */
static bool gone(struct mstore *ms, struct tr_error *err)
{
	if (!ms->broken && net_cancelled()) {
		ms->broken = true;
		tr_error_set(err, TR_ERR_STOPPED, "%s: stopped", ms->where);
		return true;
	}
	if (ms->broken) {
		dead(ms, err);
		return true;
	}
	return false;
}

static int m_list(struct store *st, struct folder_list *l, struct tr_error *err)
{
	struct mstore *ms = ms_of(st);
	struct mem_world *w = ms->w;
	int r = 0;

	folder_list_init(l);
	if (gone(ms, err))
		return -1;
	pthread_mutex_lock(&w->lock);
	if (folder_list_set_namespace(l, w->prefix, w->delim) < 0)
		r = -1;
	for (size_t i = 0; i < w->n && r == 0; i++) {
		const struct mfolder *f = w->f[i];

		if (folder_list_add(l, f->raw, w->delim, f->role, false) < 0)
			r = -1;
		else if (f->subscribed)
			folder_list_subscribe(l, f->raw);
	}
	pthread_mutex_unlock(&w->lock);
	return r < 0 ? nomem(err) : 0;
}

static int m_status_many(struct store *st, const char *const *names, size_t n,
			 struct store_status *stv, struct tr_error *err)
{
	struct mstore *ms = ms_of(st);

	if (gone(ms, err))
		return -1;
	pthread_mutex_lock(&ms->w->lock);
	for (size_t i = 0; i < n; i++)
		stv[i] = status_of(ms->w, find(ms->w, names[i]));
	pthread_mutex_unlock(&ms->w->lock);
	return 0;
}

/* The first character of name the world refuses, or 0.  Under the lock. */
static char refused_char(const struct mem_world *w, const char *name)
{
	const char *bad = w->opts.refuse_chars;

	for (const char *p = name; bad != NULL && *p != '\0'; p++)
		if (strchr(bad, *p) != NULL)
			return *p;
	return 0;
}

static void refuse(struct store_refusal *why, enum store_refusal_kind kind, char bad,
		   enum tr_err_kind ek, const char *fmt, const char *where, const char *verb,
		   const char *name)
{
	if (why == NULL)
		return;
	memset(why, 0, sizeof(*why));
	why->kind = kind;
	why->bad = bad;
	tr_error_set(&why->err, ek, "%s: %s %s: %s", where, verb, name, fmt);
}

static int m_command_many(struct store *st, enum store_cmd cmd, const char *const *names,
			  size_t n, bool *ok, struct store_refusal *why, struct tr_error *err)
{
	struct mstore *ms = ms_of(st);
	struct mem_world *w = ms->w;
	const char *verb = cmd == STORE_CREATE ? "CREATE" : "SUBSCRIBE";
	int r = 0;

	if (gone(ms, err))
		return -1;
	pthread_mutex_lock(&w->lock);
	for (size_t i = 0; i < n; i++) {
		struct store_refusal *y = why != NULL ? &why[i] : NULL;
		struct mfolder *f = find(w, names[i]);
		char bad;

		ok[i] = false;
		if (y != NULL)
			memset(y, 0, sizeof(*y));
		if (cmd == STORE_SUBSCRIBE) {
			if (f == NULL) {
				refuse(y, STORE_REFUSED, 0, TR_ERR_PROTOCOL, "[NONEXISTENT] no such folder",
				       ms->where, verb, names[i]);
				continue;
			}
			f->subscribed = true;
			ok[i] = true;
			continue;
		}
		if (f != NULL) {
			refuse(y, STORE_REFUSED_EXISTS, 0, TR_ERR_PROTOCOL,
			       "[ALREADYEXISTS] the folder exists", ms->where, verb, names[i]);
			continue;
		}
		if ((bad = refused_char(w, names[i])) != 0) {
			char msg[80];

			snprintf(msg, sizeof(msg), "Invalid mailbox name (character not allowed: '%c')",
				 bad);
			refuse(y, STORE_REFUSED_NAME, w->opts.name_char_untold ? 0 : bad,
			       TR_ERR_PROTOCOL, msg, ms->where, verb, names[i]);
			continue;
		}
		if (names[i][0] == '\0') {
			refuse(y, STORE_REFUSED_NAME, 0, TR_ERR_PROTOCOL, "Invalid mailbox name",
			       ms->where, verb, names[i]);
			continue;
		}
		if (folder_new(w, names[i], ROLE_NONE, false) == NULL) {
			r = -1;
			break;
		}
		ok[i] = true;
	}
	pthread_mutex_unlock(&w->lock);
	return r < 0 ? nomem(err) : 0;
}

static int m_open_folder(struct store *st, const char *name, bool readonly,
			 struct store_status *s, struct tr_error *err)
{
	struct mstore *ms = ms_of(st);
	struct mfolder *f;
	char *copy;

	if (gone(ms, err))
		return -1;
	/* As in IMAP: a failed SELECT leaves no folder open. */
	free(ms->folder);
	ms->folder = NULL;
	if ((copy = strdup(name)) == NULL)
		return nomem(err);
	pthread_mutex_lock(&ms->w->lock);
	f = find(ms->w, name);
	if (f != NULL) {
		*s = status_of(ms->w, f);
		ms->folder_uv = f->uidvalidity;
	}
	pthread_mutex_unlock(&ms->w->lock);
	if (f == NULL) {
		free(copy);
		tr_error_set(err, TR_ERR_PROTOCOL, "%s: %s %s: [NONEXISTENT] no such folder",
			     ms->where, readonly ? "EXAMINE" : "SELECT", name);
		return -1;
	}
	ms->folder = copy;
	ms->readonly = readonly;
	return 0;
}

/* The open folder, under the lock (taken here, on success only).  A folder
 * deleted or re-created since it was opened ends the session, as a server
 * ends it with BYE. */
static struct mfolder *lock_open_folder(struct mstore *ms, const char *what, struct tr_error *err)
{
	struct mfolder *f;

	if (gone(ms, err))
		return NULL;
	if (ms->folder == NULL) {
		tr_error_set(err, TR_ERR_PROTOCOL, "%s: %s: no folder is open", ms->where, what);
		return NULL;
	}
	pthread_mutex_lock(&ms->w->lock);
	f = find(ms->w, ms->folder);
	if (f == NULL || f->uidvalidity != ms->folder_uv) {
		pthread_mutex_unlock(&ms->w->lock);
		ms->broken = true;
		tr_error_set(err, TR_ERR_TEMP, "%s: %s: the folder %s was deleted or re-created",
			     ms->where, what, ms->folder);
		return NULL;
	}
	return f;
}

static bool set_has(const struct store_set *set, uint32_t uid)
{
	size_t lo = 0, hi = set->n;

	if (set->uids == NULL)
		return uid >= (set->from ? set->from : 1) && (set->to == 0 || uid <= set->to);
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (set->uids[mid] == uid)
			return true;
		if (set->uids[mid] < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

/* The header fields of the fingerprint as BODY.PEEK[HEADER.FIELDS (...)]
 * returns them: the fields of the list in message order, each with its
 * folded lines, then an empty line.  Into a new buffer (*len bytes). */
static char *fp_fields(const char *data, size_t len, size_t *out_len)
{
	static const char *const names[] = { "MESSAGE-ID", "DATE", "FROM", "TO", "CC", "SUBJECT",
					     "CONTENT-TYPE", "IN-REPLY-TO" };
	size_t hdr = header_end(data, len), i = 0, n = 0;
	char *o = malloc(hdr + 3);

	if (o == NULL)
		return NULL;
	while (i < hdr) {
		size_t start = i, name_len = 0;
		bool want = false;

		/* one field: its first line and the folded lines after it */
		while (i < hdr) {
			if (data[i++] == '\n' && (i >= hdr || (data[i] != ' ' && data[i] != '\t')))
				break;
		}
		while (start + name_len < i && data[start + name_len] != ':' &&
		       data[start + name_len] != '\n')
			name_len++;
		if (start + name_len < i && data[start + name_len] == ':') {
			while (name_len > 0 && (data[start + name_len - 1] == ' ' ||
						data[start + name_len - 1] == '\t'))
				name_len--;
			for (size_t k = 0; k < sizeof(names) / sizeof(names[0]) && !want; k++)
				want = strlen(names[k]) == name_len &&
				       strncasecmp(names[k], data + start, name_len) == 0;
		}
		if (want) {
			memcpy(o + n, data + start, i - start);
			n += i - start;
		}
	}
	o[n++] = '\r';
	o[n++] = '\n';
	o[n] = '\0';
	*out_len = n;
	return o;
}

static void msgs_free(struct store_msg *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i].flags);
	free(v);
}

/* What `what` says of the messages of f in set (modseq above since),
 * described under the lock into *v; the callbacks come after it. */
static int describe(const struct mfolder *f, const struct store_set *set, int what,
		    uint64_t since, struct store_msg **v, size_t *n)
{
	struct store_msg *out = calloc(f->n + 1, sizeof(*out));
	size_t k = 0;

	*v = NULL;
	*n = 0;
	if (out == NULL)
		return -1;
	for (size_t i = 0; i < f->n; i++) {
		const struct mmsg *m = &f->v[i];
		struct store_msg *o = &out[k];

		if (!set_has(set, m->uid) || (since > 0 && m->modseq <= since))
			continue;
		o->uid = m->uid;
		if ((o->flags = strdup(m->flags)) == NULL) {
			msgs_free(out, k);
			return -1;
		}
		k++;
		if (!(what & (STORE_FETCH_META | STORE_FETCH_FP)))
			continue;
		o->size = (uint32_t)m->len;
		memcpy(o->date, m->date, sizeof(o->date));
		if (what & STORE_FETCH_FP) {
			size_t hl;
			char *h = fp_fields(m->data, m->len, &hl);

			if (h == NULL) {
				msgs_free(out, k);
				return -1;
			}
			fp_compute(h, hl, o->size, o->fp);
			fp_bucket(h, hl, o->bucket);
			o->has_fp = true;
			free(h);
		}
	}
	*v = out;
	*n = k;
	return 0;
}

static int fetch_locked(struct mstore *ms, struct mfolder *f, const struct store_set *set,
			int what, uint64_t since, store_msg_cb *cb, void *ctx, struct tr_error *err)
{
	struct store_msg *v;
	size_t n;
	int r;

	if (since > 0 && ms->w->opts.no_modseq) {
		pthread_mutex_unlock(&ms->w->lock);
		tr_error_set(err, TR_ERR_PROTOCOL, "%s: UID FETCH (CHANGEDSINCE): the server has "
			     "no CONDSTORE", ms->where);
		return -1;
	}
	r = describe(f, set, what, since, &v, &n);
	pthread_mutex_unlock(&ms->w->lock);
	if (r < 0)
		return nomem(err);
	for (size_t i = 0; i < n && r == 0; i++)
		if (cb(&v[i], ctx) < 0)
			r = nomem(err);
	msgs_free(v, n);
	return r;
}

static int m_fetch_meta(struct store *st, const struct store_set *set, int what,
			uint64_t changedsince, store_msg_cb *cb, void *ctx, struct tr_error *err)
{
	struct mstore *ms = ms_of(st);
	struct mfolder *f = lock_open_folder(ms, "UID FETCH", err);

	if (f == NULL)
		return -1;
	return fetch_locked(ms, f, set, what, changedsince, cb, ctx, err);
}

static int m_open_fetch(struct store *st, const char *name, struct store_status *s,
			bool *opened, const struct store_set *set, int what, store_msg_cb *cb,
			void *ctx, struct tr_error *err)
{
	*opened = false;
	if (m_open_folder(st, name, true, s, err) < 0)
		return -1;
	*opened = true;
	return m_fetch_meta(st, set, what, 0, cb, ctx, err);
}

static int m_fetch_bodies(struct store *st, const struct store_set *set, struct stage *sp,
			  store_unreadable_cb *bad, void *ctx, struct tr_error *err)
{
	struct mstore *ms = ms_of(st);
	struct mfolder *f = lock_open_folder(ms, "UID FETCH BODY.PEEK[]", err);
	int r = 0;

	(void)bad;
	(void)ctx;
	if (f == NULL)
		return -1;
	for (size_t i = 0; i < f->n && r == 0; i++) {
		const struct mmsg *m = &f->v[i];
		struct stage_msg *sm;

		if (!set_has(set, m->uid))
			continue;
		stage_begin(sp);
		if (stage_write(sp, m->data, m->len, err) < 0 || stage_end(sp, m->uid, err) < 0) {
			stage_abort(sp);
			r = -1;
			break;
		}
		/* What the IMAP store's NUL recovery says of such a message. */
		sm = stage_find(sp, m->uid);
		if (sm != NULL && memchr(m->data, '\0', m->len) != NULL)
			sm->literal8 = true;
	}
	pthread_mutex_unlock(&ms->w->lock);
	return r;
}

/* The content of an item, as the destination stores it (rewritten). */
static int item_content(const struct stage *sp, const struct store_append_item *it,
			const struct mem_opts *o, char **out, size_t *out_len, struct tr_error *err)
{
	size_t len = (size_t)it->msg->len;
	char *buf = malloc(len + 1), *b2;
	size_t l2;

	if (buf == NULL)
		return nomem(err);
	if (stage_read(sp, it->msg, 0, buf, len, err) < 0) {
		free(buf);
		return -1;
	}
	buf[len] = '\0';
	if (o->rewrite != 0) {
		if (mem_rewrite(o->rewrite, buf, len, &b2, &l2) < 0) {
			free(buf);
			return nomem(err);
		}
		free(buf);
		buf = b2;
		len = l2;
	}
	if (o->rewrite_fn != NULL) {
		if (o->rewrite_fn(o->rewrite_ctx, buf, len, &b2, &l2) < 0) {
			free(buf);
			return nomem(err);
		}
		free(buf);
		buf = b2;
		len = l2;
	}
	*out = buf;
	*out_len = len;
	return 0;
}

static void item_refused(struct mstore *ms, struct store_append_item *it, const char *name,
			 const char *why)
{
	it->failed = true;
	tr_error_set(&it->err, TR_ERR_MESSAGE, "%s: APPEND to %s of source UID %u: %s", ms->where,
		     name, it->msg->uid, why);
}

static int m_append(struct store *st, const char *name, const struct stage *sp,
		    struct store_append_item *items, size_t n, uint32_t *uidvalidity_r,
		    struct tr_error *err)
{
	struct mstore *ms = ms_of(st);
	struct mem_world *w = ms->w;
	struct mem_opts o;
	char **data = NULL;
	size_t *len = NULL, i;
	struct mfolder *f;
	int r = 0;

	*uidvalidity_r = 0;
	if (gone(ms, err))
		return -1;
	for (i = 0; i < n; i++) {
		items[i].dst_uid = 0;
		items[i].failed = false;
		tr_error_clear(&items[i].err);
	}
	if (n == 0)
		return 0;
	pthread_mutex_lock(&w->lock);
	o = w->opts;
	pthread_mutex_unlock(&w->lock);
	data = calloc(n, sizeof(*data));
	len = calloc(n, sizeof(*len));
	if (data == NULL || len == NULL) {
		r = nomem(err);
		goto out;
	}
	/* Read and rewrite outside the lock; refusals of the message itself. */
	for (i = 0; i < n; i++) {
		struct store_append_item *it = &items[i];

		if (o.append_limit > 0 && it->msg->len > o.append_limit) {
			item_refused(ms, it, name, "[TOOBIG] larger than the APPENDLIMIT");
			continue;
		}
		if (o.refuse_larger > 0 && it->msg->len > o.refuse_larger) {
			item_refused(ms, it, name, "[OVERQUOTA] the message does not fit");
			continue;
		}
		if (item_content(sp, it, &o, &data[i], &len[i], err) < 0) {
			r = -1;
			goto out;
		}
		if (o.no_binary && memchr(data[i], '\0', len[i]) != NULL) {
			item_refused(ms, it, name, "NUL bytes in a message (no BINARY)");
			free(data[i]);
			data[i] = NULL;
		}
	}
	pthread_mutex_lock(&w->lock);
	f = find(w, name);
	for (i = 0; i < n && r == 0; i++) {
		struct store_append_item *it = &items[i];
		uint32_t uid;

		if (it->failed)
			continue;
		if (f == NULL) {
			item_refused(ms, it, name, "[TRYCREATE] no such folder");
			continue;
		}
		r = folder_put(f, data[i], len[i], it->flags, it->date, &uid);
		data[i] = NULL;
		if (r < 0)
			break;
		w->appended++;
		if (!o.no_dst_ids)
			it->dst_uid = uid;
	}
	if (f != NULL && !o.no_dst_ids)
		*uidvalidity_r = f->uidvalidity;
	pthread_mutex_unlock(&w->lock);
	if (r < 0)
		nomem(err);
out:
	for (i = 0; data != NULL && i < n; i++)
		free(data[i]);
	free(data);
	free(len);
	return r;
}

static int m_set_flags(struct store *st, const struct store_set *set, const char *flags,
		       struct tr_error *err)
{
	struct mstore *ms = ms_of(st);
	struct mfolder *f;
	int r = 0;

	if (ms->folder != NULL && ms->readonly && !ms->broken) {
		tr_error_set(err, TR_ERR_PROTOCOL, "%s: UID STORE: the folder %s is open read-only",
			     ms->where, ms->folder);
		return -1;
	}
	if ((f = lock_open_folder(ms, "UID STORE", err)) == NULL)
		return -1;
	for (size_t i = 0; i < f->n && r == 0; i++)
		if (set_has(set, f->v[i].uid))
			r = msg_set_flags(f, &f->v[i], flags);
	pthread_mutex_unlock(&ms->w->lock);
	return r < 0 ? nomem(err) : 0;
}

static int m_quota(struct store *st, uint64_t *used_kib, uint64_t *limit_kib,
		   struct tr_error *err)
{
	struct mstore *ms = ms_of(st);
	struct mem_world *w = ms->w;
	uint64_t bytes = 0;
	int r;

	if (gone(ms, err))
		return -1;
	pthread_mutex_lock(&w->lock);
	for (size_t i = 0; i < w->n; i++)
		for (size_t k = 0; k < w->f[i]->n; k++)
			bytes += w->f[i]->v[k].len;
	*used_kib = (bytes + 1023) / 1024;
	*limit_kib = w->opts.quota_kib;
	r = w->opts.quota_kib > 0 ? 1 : 0;
	pthread_mutex_unlock(&w->lock);
	return r;
}

const struct store_driver store_mem_driver = {
	.name = "mem",
	.open = m_open,
	.close = m_close,
	.broken = m_broken,
	.caps = m_caps,
	.where = m_where,
	.transport = m_transport,
	.list = m_list,
	.status_many = m_status_many,
	.command_many = m_command_many,
	.open_folder = m_open_folder,
	.open_fetch = m_open_fetch,
	.fetch_meta = m_fetch_meta,
	.fetch_bodies = m_fetch_bodies,
	.append = m_append,
	.set_flags = m_set_flags,
	.quota = m_quota,
};
