/* error: the one error type every module returns.
 *
 * Functions return 0 on success and -1 on failure, and fill a caller-owned
 * struct tr_error.  The kind decides what the caller does next (retry, wait,
 * give up on the account, skip one message); the text carries the context
 * (account, folder, UID, server reply) a human needs.  The struct holds no
 * pointers, so there is nothing to free and it may be copied freely.
 *
 * Never put a password into an error text.
 */
#ifndef TRASLOCO_ERROR_H
#define TRASLOCO_ERROR_H

#include <stdarg.h>
#include <stdbool.h>

enum tr_err_kind {
	TR_ERR_NONE = 0,
	TR_ERR_USAGE,    /* bad option or input: fix the command line or job */
	TR_ERR_LOCAL,    /* local failure: memory, disk, state database */
	TR_ERR_TEMP,     /* timeout, reset, parse error: reconnect and retry */
	TR_ERR_WAIT,     /* server limit ([LIMIT], [UNAVAILABLE], too many sessions): back off */
	TR_ERR_AUTH,     /* credentials refused ([AUTHENTICATIONFAILED]): final for the account */
	TR_ERR_TLS,      /* certificate or TLS policy failure: final for the server */
	TR_ERR_CONNECT,  /* cannot reach the server (DNS, refused): final after retries */
	TR_ERR_PROTOCOL, /* server said NO/BAD to something we need (not per message) */
	TR_ERR_MESSAGE,  /* one message refused ([TOOBIG], [OVERQUOTA], NO on APPEND) */
	TR_ERR_STOPPED,  /* the user asked us to stop (SIGINT/SIGTERM) */
	TR_ERR_PAUSED,   /* a day budget is spent (throttle.h): stop, resume at `until` */
};

struct tr_error {
	enum tr_err_kind kind;
	char code[32];   /* RFC 5530 response code from the server ("LIMIT"), or "" */
	char msg[768];
	long long wait_ms; /* TR_ERR_WAIT: how long the server asked us to back off, 0: not said */
	long long until;   /* TR_ERR_PAUSED: the Unix time to resume at */
	bool throttled;    /* TR_ERR_WAIT: the server said it throttles us ([THROTTLED], a
			    * back-off time, "bandwidth limit"), not that a message is too
			    * big ([LIMIT] on APPEND) or that it has no room for a session */
};

/* Set kind and text (printf-style); clears code, wait_ms, until and throttled. */
void tr_error_set(struct tr_error *err, enum tr_err_kind kind, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Prepend context to an existing message: "ctx: old message". */
void tr_error_prefix(struct tr_error *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

void tr_error_clear(struct tr_error *err);

/* Short lowercase name of a kind, for logs and reports ("auth", "temp", ...). */
const char *tr_error_kind_name(enum tr_err_kind kind);

#endif
