/* imap: one IMAP session on one server, as the sync engine needs it.
 *
 * Wraps a libetpan `mailimap` running over our own stream (tls.h): connect,
 * STARTTLS, log in, read capabilities, list folders, open a folder, fetch
 * message metadata and bodies (streamed, never a whole batch in memory),
 * append (LITERAL+ and MULTIAPPEND when offered), store flags.
 *
 * A session belongs to one thread at a time.  Every failure fills a
 * tr_error naming the server and the command, with the server's reply and
 * RFC 5530 code, and classified (tr_err_kind) so that callers can decide to
 * retry, wait or give up.  After a TR_ERR_TEMP failure the session is
 * broken (imap_broken): close it and open a new one.
 *
 * Credentials are read only during imap_open and never logged: libetpan's
 * debug stream stays off, and no transcript is kept.  Server text in an
 * error (reply, response code, the command's folder name or login) is
 * cleaned (text.h): control bytes and invalid UTF-8 escaped, and the
 * session's password taken out in every form a server could send it back
 * in (an echo of the LOGIN line or of the SASL PLAIN token); for that the
 * session keeps a private copy of the password, wiped by imap_close.  No
 * password is sent to a server that announces LOGINDISABLED (a TR_ERR_TLS
 * failure), and a STARTTLS answer followed by anything before the handshake
 * is refused.
 *
 * A wrong TLS mode is told in seconds: when a plain connection's greeting
 * does not come within 10 s (not the idle timeout), or an implicit TLS
 * handshake fails, the other mode is tried on a connection of its own (a
 * verifying handshake; or a plain greeting and CAPABILITY, nothing else),
 * and when it answers imap_open fails with TR_ERR_TLS, code
 * STORE_CODE_TLS_MODE, naming the option to add.  It never switches by
 * itself.
 *
 * What a server sends is held to byte bounds (budget.h; the numbers are in
 * imap.c): past one, the session is broken with TR_ERR_PROTOCOL, or for
 * one message's FETCH response, TR_ERR_TEMP with IMAP_CODE_UNPARSEABLE so
 * that the message can be isolated.  Mailbox names that a quoted string
 * cannot carry (CR, LF, 8-bit) are sent as literals, never quoted.
 */
#ifndef TRASLOCO_IMAP_H
#define TRASLOCO_IMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "stage.h"
#include "store.h"
#include "tls.h"

/* tr_error.code of a failure to parse the server's response (TR_ERR_TEMP,
 * session broken): one odd message can cause it, see sync.c. */
#define IMAP_CODE_UNPARSEABLE "UNPARSEABLE"

/* Capabilities we use, read after login (and after STARTTLS). */
struct imap_caps {
	bool uidplus, literal_plus, literal_minus, multiappend, condstore, list_status,
	     special_use, namespace_, quota, list_extended, move, binary;
	uint64_t appendlimit;     /* 0: none announced */
};

struct imap_session;

int imap_open(const struct store_endpoint *ep, const struct store_creds *cr,
	      struct imap_session **s_r, struct tr_error *err);
/* LOGOUT when the session is healthy (short timeout), then free.  NULL ok. */
void imap_close(struct imap_session *s);
bool imap_broken(const struct imap_session *s);
const struct imap_caps *imap_caps(const struct imap_session *s);
/* "source 127.0.0.1:993 (mail.test)": for messages */
const char *imap_where(const struct imap_session *s);
/* "TLSv1.3 TLS_AES_256_GCM_SHA384" or "plain" */
const char *imap_transport(struct imap_session *s, char *buf, size_t len);

/* One entry of a LIST or LSUB response; valid during the callback. */
struct imap_list_entry {
	const char *raw;          /* the name on the wire */
	char delim;               /* its hierarchy delimiter, 0 for NIL */
	const char *const *attrs; /* its other attributes, without backslash ("Sent") */
	size_t n_attrs;
	bool noselect;            /* \Noselect or \NonExistent */
	bool subscribed;          /* \Subscribed, or listed by LSUB */
	bool from_lsub;           /* an LSUB entry: says only that raw is subscribed */
};

/* Where imap_list delivers what it reads; a callback returning -1 (out
 * of memory) stops it. */
struct imap_list_sink {
	/* the personal namespace (called only when the server has NAMESPACE) */
	int (*personal)(void *ctx, const char *prefix, char delim);
	int (*entry)(void *ctx, const struct imap_list_entry *e);
	void *ctx;
};

/* NAMESPACE, LIST (with SPECIAL-USE attributes) and LSUB in one round trip. */
int imap_list(struct imap_session *s, const struct imap_list_sink *sink, struct tr_error *err);

/* STATUS of n folders in one round trip (pipelined).  A folder the server
 * refuses gets st[i].uidvalidity = 0 and the error is not fatal; the call
 * fails only when the session does. */
int imap_status_many(struct imap_session *s, const char *const *raw_names, size_t n,
		     struct store_status *st, struct tr_error *err);

/* tr_error.code of a refused command whose reply says the mailbox name
 * itself is not acceptable to the server ("Invalid mailbox name"). */
#define IMAP_CODE_BAD_NAME "BADNAME"

/* "CREATE" or "SUBSCRIBE" (verb) for n folders in one round trip;
 * ok[i] says whether folder i got OK (a NO is not a failure of the call).
 * why (NULL, or n entries) gets the reply of each refused one, with code
 * ALREADYEXISTS when the server says the folder exists, IMAP_CODE_BAD_NAME
 * when it refuses the name itself, else the server's own code. */
int imap_command_many(struct imap_session *s, const char *verb, const char *const *raw_names,
		      size_t n, bool *ok, struct tr_error *why, struct tr_error *err);
/* The one character a refusal with IMAP_CODE_BAD_NAME names as not allowed
 * ("Character not allowed in mailbox name: '.'"): 1 and *c, else 0. */
int imap_bad_name_char(const struct tr_error *why, char *c);

/* EXAMINE (read-only) or SELECT a folder; fills st. */
int imap_open_folder(struct imap_session *s, const char *raw, bool readonly,
		     struct store_status *st, struct tr_error *err);
int imap_create(struct imap_session *s, const char *raw, struct tr_error *err);
int imap_subscribe(struct imap_session *s, const char *raw, struct tr_error *err);

/* What a metadata FETCH asks for (imap_fetch_meta's what). */
enum imap_meta_what {
	IMAP_META_FLAGS = 1,      /* UID FLAGS */
	IMAP_META_DATE_SIZE = 2,  /* + INTERNALDATE RFC822.SIZE */
	IMAP_META_HEADER = 4,     /* + INTERNALDATE RFC822.SIZE BODY.PEEK[HEADER.FIELDS (fields)] */
};

/* One message of a metadata FETCH, as the server described it; valid
 * during the callback only. */
struct imap_fetched {
	uint32_t uid;
	uint32_t size;            /* RFC822.SIZE */
	const char *flags;        /* canonical flag string (flags.h) */
	char date[32];            /* INTERNALDATE as the server gave it */
	const char *hdr;          /* the header fields asked for (at most 256 KB) */
	size_t hdr_len;
	bool has_hdr;
};

/* Return 0 to go on, -1 to abort (the session is then broken). */
typedef int imap_fetched_cb(const struct imap_fetched *m, void *ctx);

/* UID FETCH of the UIDs in `uidset` ("1:*", "5,7:9") from the selected
 * folder; fields (upper-case names, space-separated) are the header fields
 * of IMAP_META_HEADER.  changedsince > 0 adds (CHANGEDSINCE n) (CONDSTORE). */
int imap_fetch_meta(struct imap_session *s, const char *uidset, int what, const char *fields,
		    uint64_t changedsince, imap_fetched_cb *cb, void *ctx, struct tr_error *err);

/* EXAMINE raw and UID FETCH uidset (as imap_fetch_meta) in one round trip.
 * *examined tells whether the EXAMINE succeeded (st is then filled), even
 * when the call fails because of the FETCH. */
int imap_examine_fetch(struct imap_session *s, const char *raw, struct store_status *st,
		       bool *examined, const char *uidset, int what, const char *fields,
		       imap_fetched_cb *cb, void *ctx, struct tr_error *err);

/* UID FETCH BODY.PEEK[] of `uidset`, each body streamed into sp (one
 * stage_msg per message, tagged with its UID). */
int imap_fetch_bodies(struct imap_session *s, const char *uidset, struct stage *sp,
		      struct tr_error *err);

/* UID FETCH uid (BINARY.PEEK[section]) (RFC 3516): section "" is the whole
 * message, "2.1" a part.  libetpan 1.9.4 cannot parse a literal8, so this
 * reads the response itself.  On success *data (malloc'd, NUL-terminated
 * for convenience, the caller frees it) holds *len bytes.  A server that
 * refuses, or answers without the item, gives TR_ERR_PROTOCOL with the
 * session intact; a literal over max bytes, or a broken stream, leaves the
 * session broken (imap_broken). */
int imap_fetch_binary(struct imap_session *s, uint32_t uid, const char *section, size_t max,
		      char **data, size_t *len, struct tr_error *err);

/* Append items to raw: one MULTIAPPEND command when offered (and, if the
 * server refuses that batch, which it does as a whole, again one by one to
 * find the culprit), else pipelined single APPENDs with LITERAL+, else one
 * synchronizing APPEND at a time.  A refused message is marked in its item
 * (failed, err); the call fails only when the session does.
 * *uidvalidity_r gets the APPENDUID validity (0 if unknown). */
int imap_append(struct imap_session *s, const char *raw, const struct stage *sp,
		struct store_append_item *items, size_t n, uint32_t *uidvalidity_r,
		struct tr_error *err);

/* UID SEARCH UID uid in the selected folder: *exists tells whether the
 * message is there. */
int imap_uid_exists(struct imap_session *s, uint32_t uid, bool *exists, struct tr_error *err);

/* GETQUOTAROOT INBOX: the STORAGE resource in KiB.  Returns 1 with
 * used/limit when the server reports one, 0 when it has no quota (or no
 * QUOTA extension), -1 on failure. */
int imap_quota(struct imap_session *s, uint64_t *used_kib, uint64_t *limit_kib,
	       struct tr_error *err);

/* UID STORE uidset FLAGS (flags): replace the flags of messages. */
int imap_store_flags(struct imap_session *s, const char *uidset, const char *flags,
		     struct tr_error *err);

/* What a tagged NO (or BYE) means, from its RFC 5530 code first and its
 * text second (servers that predate RFC 5530 say "Maximum number of
 * connections" in plain words); dflt when neither tells. */
enum tr_err_kind imap_classify_no(const char *code, const char *text, enum tr_err_kind dflt);
/* Whether a NO or BYE says the server throttles us: [THROTTLED], a
 * suggested back-off time, "throttled", "bandwidth limit", "rate limit"
 * (a [LIMIT] alone may be a message too big: Dovecot's APPEND says so). */
bool imap_throttled(const char *code, const char *text);

#endif
