/* error: see include/error.h */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "error.h"

void tr_error_set(struct tr_error *err, enum tr_err_kind kind, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL)
		return;
	err->kind = kind;
	err->code[0] = '\0';
	err->wait_ms = 0;
	err->until = 0;
	err->throttled = false;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
}

void tr_error_prefix(struct tr_error *err, const char *fmt, ...)
{
	char ctx[256], old[sizeof(err->msg)];
	va_list ap;

	if (err == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(ctx, sizeof(ctx), fmt, ap);
	va_end(ap);
	memcpy(old, err->msg, sizeof(old));
	snprintf(err->msg, sizeof(err->msg), "%s: %s", ctx, old);
}

void tr_error_clear(struct tr_error *err)
{
	if (err == NULL)
		return;
	err->kind = TR_ERR_NONE;
	err->code[0] = '\0';
	err->msg[0] = '\0';
	err->wait_ms = 0;
	err->until = 0;
	err->throttled = false;
}

const char *tr_error_kind_name(enum tr_err_kind kind)
{
	switch (kind) {
	case TR_ERR_NONE: return "none";
	case TR_ERR_USAGE: return "usage";
	case TR_ERR_LOCAL: return "local";
	case TR_ERR_TEMP: return "temporary";
	case TR_ERR_WAIT: return "limit";
	case TR_ERR_AUTH: return "auth";
	case TR_ERR_TLS: return "tls";
	case TR_ERR_CONNECT: return "connect";
	case TR_ERR_PROTOCOL: return "protocol";
	case TR_ERR_MESSAGE: return "message";
	case TR_ERR_STOPPED: return "stopped";
	case TR_ERR_PAUSED: return "paused";
	}
	return "unknown";
}
