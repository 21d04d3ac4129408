/* store: the engine's view of a mail store, an account on a server.
 *
 * The engine (account, sync, meta, verify, preflight) speaks only this; a
 * driver implements it, one struct of operations per store type as isync's
 * driver.h has it: "imap" (store_imap.c, over imap.c), "mem" (an in-memory
 * store: a real store, for the planner's unit tests), "fault" (wraps any
 * other store and fails, drops or loses the reply of its Nth operation).
 * Drivers are picked by name (store_driver_find).  What is IMAP (UID-set
 * syntax, capabilities, pipelining, isolating the one message a server
 * cannot describe, NUL bytes through BINARY[]) lives behind this interface.
 *
 * Words: a store holds folders; a folder is opened (selected) before its
 * messages are read or written, and one folder is open at a time.  A
 * message is named by its id (a UID) within the folder's id validity
 * (UIDVALIDITY): ids grow, and a new validity means every id changed.
 *
 * Ownership, once for all operations: arguments are borrowed for the call;
 * what an operation fills (a folder list, statuses, a stage, out arrays)
 * belongs to the caller; a store_msg given to a callback is valid during
 * the call only.  Threading: a store belongs to one thread at a time;
 * different stores may be used by different threads at once.
 *
 * Errors: every operation returns 0, or -1 with a tr_error naming the
 * server and what it refused.  After TR_ERR_TEMP the store is broken
 * (store_broken): close it and open another.  A message the server cannot
 * describe or deliver is not an error of the operation: it is reported as
 * unreadable (store_msg.unreadable, or the unreadable callback) and the
 * operation goes on with the others.
 */
#ifndef TRASLOCO_STORE_H
#define TRASLOCO_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "fingerprint.h"
#include "folder.h"
#include "stage.h"

struct oauth_account;   /* oauth.h: one account's tokens */
struct tls_ctx;   /* tls.h: TLS policy shared by a job's connections */
struct throttle;  /* throttle.h: a server's limits shared by a job's accounts */

enum tls_mode { TLS_MODE_IMPLICIT = 0, TLS_MODE_STARTTLS, TLS_MODE_NONE };

/* tr_error.code of a store that could not be opened because its port
 * speaks the other TLS mode (TR_ERR_TLS): a setting to change, the same
 * for every account of the endpoint, never worth a retry. */
#define STORE_CODE_TLS_MODE "TLSMODE"

/* Where a server is and how to reach it.  Pointers are borrowed: the caller
 * keeps them alive while stores use the endpoint. */
struct store_endpoint {
	const char *label;        /* "source" or "destination", for messages */
	const char *host;         /* name or IP to connect to */
	int port;
	enum tls_mode tls;
	const char *tls_name;     /* name to verify and send as SNI; NULL = host */
	struct tls_ctx *tls_ctx;  /* required unless tls == TLS_MODE_NONE */
	int timeout_s;            /* idle timeout of every network wait */
	struct throttle *throttle; /* the server's rate limits (throttle.h), NULL: none */
};

enum store_auth { STORE_AUTH_AUTO = 0, STORE_AUTH_LOGIN, STORE_AUTH_PLAIN };

/* Who logs in.  Borrowed. */
struct store_creds {
	const char *user;         /* the mailbox to open */
	const char *password;     /* user's password, or admin's when admin is set */
	const char *admin;        /* NULL, or an admin/master login acting as user */
	char admin_separator;     /* 0: SASL PLAIN authzid; else LOGIN "user<sep>admin" */
	enum store_auth auth;
	/* SASL XOAUTH2 or OAUTHBEARER with a token of oauth (oauth.h) instead
	 * of a password: oauth_mech is an enum oauth_mech, 0 for none */
	int oauth_mech;
	struct oauth_account *oauth;
};

/* What opening a store needs.  arg is the driver's own (the mem driver's
 * world, the fault driver's plan); the imap driver needs none. */
struct store_conf {
	const struct store_endpoint *ep;
	const struct store_creds *cr;
	void *arg;
};

/* What a store can do (after opening). */
struct store_caps {
	bool dst_ids;             /* an append tells the new messages' ids (UIDPLUS) */
	bool modseq;              /* statuses carry a modification sequence (CONDSTORE) */
	bool binary;              /* messages with NUL bytes can be appended (BINARY) */
	uint64_t append_limit;    /* largest message it takes; 0: none announced */
};

struct store_status {
	uint32_t uidvalidity;     /* 0: the folder could not be asked */
	uint32_t uidnext;
	uint32_t messages;
	uint64_t highestmodseq;   /* 0 when the store has no modseqs */
};

/* What is known of one message before copying it. */
struct store_msg {
	uint32_t uid;
	uint32_t size;            /* RFC822.SIZE */
	char *flags;              /* canonical flag string (flags.h) */
	char date[32];            /* internal date, "02-Jan-2024 10:00:00 +0100" */
	unsigned char fp[FP_LEN];     /* fingerprint, when asked for */
	unsigned char bucket[FP_LEN]; /* fp_bucket, with the fingerprint */
	bool has_fp;
	bool unreadable;          /* the store cannot describe it: only uid is set */
};

/* Called once per message; m is valid during the call only.  Return 0 to
 * go on, -1 to abort the operation (the store may then be broken). */
typedef int store_msg_cb(const struct store_msg *m, void *ctx);
/* A message a fetch of bodies could not deliver (why: static text). */
typedef void store_unreadable_cb(void *ctx, uint32_t uid, const char *why);

enum store_fetch_what {
	STORE_FETCH_FLAGS = 1,    /* id, flags */
	STORE_FETCH_META = 2,     /* + internal date, size */
	STORE_FETCH_FP = 4,       /* + the header fields of the fingerprint */
};

/* A set of message ids: the n sorted ids of uids, or (uids NULL) every id
 * from `from` to `to` (0: no end). */
struct store_set {
	const uint32_t *uids;
	size_t n;
	uint32_t from, to;
};

static inline struct store_set store_set_from(uint32_t from)
{
	struct store_set s = { NULL, 0, from ? from : 1, 0 };

	return s;
}

static inline struct store_set store_set_range(uint32_t from, uint32_t to)
{
	struct store_set s = { NULL, 0, from ? from : 1, to };

	return s;
}

static inline struct store_set store_set_uids(const uint32_t *uids, size_t n)
{
	struct store_set s = { uids, n, 0, 0 };

	return s;
}

/* One message to append. */
struct store_append_item {
	const char *flags;        /* canonical flag string */
	const char *date;         /* internal date, or NULL */
	const struct stage_msg *msg;
	uint32_t dst_uid;         /* out: its id, 0 if the store does not tell */
	bool failed;              /* out: the store refused this message */
	struct tr_error err;      /* out: why, when failed */
};

enum store_cmd { STORE_CREATE, STORE_SUBSCRIBE };

/* Why a folder command was refused. */
enum store_refusal_kind {
	STORE_REFUSED = 0,        /* for a reason of its own (err says which) */
	STORE_REFUSED_EXISTS,     /* the folder exists already */
	STORE_REFUSED_NAME,       /* the name itself is not acceptable to the store */
};

struct store_refusal {
	enum store_refusal_kind kind;
	char bad;                 /* REFUSED_NAME: a punctuation character the store
				   * named as not allowed, or 0 */
	struct tr_error err;      /* the store's reply */
};

struct store;

struct store_driver {
	const char *name;
	int (*open)(const struct store_conf *c, struct store **st_r, struct tr_error *err);
	/* Say goodbye when healthy (briefly), then free.  NULL is fine. */
	void (*close)(struct store *st);
	bool (*broken)(const struct store *st);
	const struct store_caps *(*caps)(const struct store *st);
	/* "source 127.0.0.1:993 (mail.test)": for messages */
	const char *(*where)(const struct store *st);
	/* "TLSv1.3 TLS_AES_256_GCM_SHA384", "plain" */
	const char *(*transport)(struct store *st, char *buf, size_t len);

	/* Every folder, its roles and subscriptions, into a fresh list. */
	int (*list)(struct store *st, struct folder_list *l, struct tr_error *err);
	/* The status of n folders (wire names); a folder it cannot tell about
	 * gets uidvalidity 0 (not a failure of the call). */
	int (*status_many)(struct store *st, const char *const *names, size_t n,
			   struct store_status *stv, struct tr_error *err);
	/* CREATE or SUBSCRIBE n folders; ok[i] whether folder i was done, why[i]
	 * (why may be NULL) why not. */
	int (*command_many)(struct store *st, enum store_cmd cmd, const char *const *names,
			    size_t n, bool *ok, struct store_refusal *why, struct tr_error *err);
	/* Open a folder (readonly: for reading only), its status into s. */
	int (*open_folder)(struct store *st, const char *name, bool readonly,
			   struct store_status *s, struct tr_error *err);
	/* open_folder (readonly) and fetch_meta of set, at the cost of one: when
	 * the fetch fails, *opened tells whether the folder is open (s set). */
	int (*open_fetch)(struct store *st, const char *name, struct store_status *s,
			  bool *opened, const struct store_set *set, int what, store_msg_cb *cb,
			  void *ctx, struct tr_error *err);
	/* What `what` says of the open folder's messages in set; changedsince
	 * > 0: only those whose modseq is above it. */
	int (*fetch_meta)(struct store *st, const struct store_set *set, int what,
			  uint64_t changedsince, store_msg_cb *cb, void *ctx,
			  struct tr_error *err);
	/* The whole content of the messages in set, one stage_msg each, tagged
	 * with its id; the stage is not reset first.  A message gone meanwhile
	 * is simply absent; one the store cannot deliver goes to bad (NULL: it
	 * is absent too). */
	int (*fetch_bodies)(struct store *st, const struct store_set *set, struct stage *sp,
			    store_unreadable_cb *bad, void *ctx, struct tr_error *err);
	/* Append items to folder name (not necessarily open); *uidvalidity_r the
	 * validity the new ids belong to (0 if unknown).  A refused message is
	 * marked in its item; the call fails only when the store does. */
	int (*append)(struct store *st, const char *name, const struct stage *sp,
		      struct store_append_item *items, size_t n, uint32_t *uidvalidity_r,
		      struct tr_error *err);
	/* Replace the flags of the open folder's messages in set. */
	int (*set_flags)(struct store *st, const struct store_set *set, const char *flags,
			 struct tr_error *err);
	/* Storage used and allowed in KiB: 1 when known, 0 when the store has no
	 * quota, -1 on failure. */
	int (*quota)(struct store *st, uint64_t *used_kib, uint64_t *limit_kib,
		     struct tr_error *err);
};

/* Every driver's store begins with this. */
struct store {
	const struct store_driver *drv;
};

/* The driver called name ("imap", "mem", "fault"), or NULL. */
const struct store_driver *store_driver_find(const char *name);
/* Open a store with driver drv. */
int store_open(const struct store_driver *drv, const struct store_conf *c, struct store **st_r,
	       struct tr_error *err);

/* The operations, through the store's driver. */
static inline void store_close(struct store *st)
{
	if (st != NULL)
		st->drv->close(st);
}
static inline bool store_broken(const struct store *st) { return st->drv->broken(st); }
static inline const struct store_caps *store_caps(const struct store *st)
{
	return st->drv->caps(st);
}
static inline const char *store_where(const struct store *st) { return st->drv->where(st); }
static inline const char *store_transport(struct store *st, char *buf, size_t len)
{
	return st->drv->transport(st, buf, len);
}
static inline int store_list(struct store *st, struct folder_list *l, struct tr_error *err)
{
	return st->drv->list(st, l, err);
}
static inline int store_status_many(struct store *st, const char *const *names, size_t n,
				    struct store_status *stv, struct tr_error *err)
{
	return st->drv->status_many(st, names, n, stv, err);
}
static inline int store_command_many(struct store *st, enum store_cmd cmd,
				     const char *const *names, size_t n, bool *ok,
				     struct store_refusal *why, struct tr_error *err)
{
	return st->drv->command_many(st, cmd, names, n, ok, why, err);
}
static inline int store_open_folder(struct store *st, const char *name, bool readonly,
				    struct store_status *s, struct tr_error *err)
{
	return st->drv->open_folder(st, name, readonly, s, err);
}
static inline int store_open_fetch(struct store *st, const char *name, struct store_status *s,
				   bool *opened, const struct store_set *set, int what,
				   store_msg_cb *cb, void *ctx, struct tr_error *err)
{
	return st->drv->open_fetch(st, name, s, opened, set, what, cb, ctx, err);
}
static inline int store_fetch_meta(struct store *st, const struct store_set *set, int what,
				   uint64_t changedsince, store_msg_cb *cb, void *ctx,
				   struct tr_error *err)
{
	return st->drv->fetch_meta(st, set, what, changedsince, cb, ctx, err);
}
static inline int store_fetch_bodies(struct store *st, const struct store_set *set,
				     struct stage *sp, store_unreadable_cb *bad, void *ctx,
				     struct tr_error *err)
{
	return st->drv->fetch_bodies(st, set, sp, bad, ctx, err);
}
static inline int store_append(struct store *st, const char *name, const struct stage *sp,
			       struct store_append_item *items, size_t n,
			       uint32_t *uidvalidity_r, struct tr_error *err)
{
	return st->drv->append(st, name, sp, items, n, uidvalidity_r, err);
}
static inline int store_set_flags(struct store *st, const struct store_set *set,
				  const char *flags, struct tr_error *err)
{
	return st->drv->set_flags(st, set, flags, err);
}
static inline int store_quota(struct store *st, uint64_t *used_kib, uint64_t *limit_kib,
			      struct tr_error *err)
{
	return st->drv->quota(st, used_kib, limit_kib, err);
}

#endif
