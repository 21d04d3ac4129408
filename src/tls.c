/* tls: see include/tls.h */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <libetpan/libetpan.h>

#include "net.h"
#include "tls.h"

struct tls_ctx {
	SSL_CTX *ssl_ctx;
	bool insecure;
};

/* The data behind every mailstream_low we make. */
struct stream_data {
	int fd;               /* -1 once released or closed */
	SSL *ssl;             /* NULL for a plain stream */
	int timeout_s;
	bool timed_out;
	char error[256];
	struct budget budget; /* what the server may still send (budget.h) */
};

static void openssl_error(char *buf, size_t len, const char *what)
{
	unsigned long e = ERR_get_error();

	if (e != 0)
		snprintf(buf, len, "%s: %s", what, ERR_reason_error_string(e));
	else
		snprintf(buf, len, "%s", what);
	ERR_clear_error();
}

int tls_ctx_new(const char *ca_file, bool insecure, struct tls_ctx **ctx_r, struct tr_error *err)
{
	struct tls_ctx *ctx;
	char why[256];

	ctx = calloc(1, sizeof(*ctx));
	if (ctx == NULL) {
		tr_error_set(err, TR_ERR_LOCAL, "out of memory");
		return -1;
	}
	ctx->insecure = insecure;
	ctx->ssl_ctx = SSL_CTX_new(TLS_client_method());
	if (ctx->ssl_ctx == NULL) {
		openssl_error(why, sizeof(why), "cannot create TLS context");
		goto fail;
	}
	if (SSL_CTX_set_min_proto_version(ctx->ssl_ctx, TLS1_2_VERSION) != 1) {
		openssl_error(why, sizeof(why), "cannot require TLS 1.2");
		goto fail;
	}
	/* Keep the write buffer of a partial SSL_write valid across retries;
	 * libetpan may hand us a different pointer for the same bytes. */
	SSL_CTX_set_mode(ctx->ssl_ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
			 SSL_MODE_ENABLE_PARTIAL_WRITE);
	SSL_CTX_set_verify(ctx->ssl_ctx, insecure ? SSL_VERIFY_NONE : SSL_VERIFY_PEER, NULL);
	if (ca_file != NULL) {
		if (SSL_CTX_load_verify_locations(ctx->ssl_ctx, ca_file, NULL) != 1) {
			char what[300];

			snprintf(what, sizeof(what), "cannot load CA file %s", ca_file);
			openssl_error(why, sizeof(why), what);
			goto fail;
		}
	} else if (SSL_CTX_set_default_verify_paths(ctx->ssl_ctx) != 1) {
		openssl_error(why, sizeof(why), "cannot load the system CA store");
		goto fail;
	}
	*ctx_r = ctx;
	return 0;
fail:
	tr_error_set(err, TR_ERR_TLS, "%s", why);
	tls_ctx_free(ctx);
	return -1;
}

void tls_ctx_free(struct tls_ctx *ctx)
{
	if (ctx == NULL)
		return;
	SSL_CTX_free(ctx->ssl_ctx);
	free(ctx);
}

bool tls_ctx_insecure(const struct tls_ctx *ctx)
{
	return ctx->insecure;
}

/* ---- the mailstream_low driver -------------------------------------- */

static struct stream_data *sdata(mailstream_low *low)
{
	return low->data;
}

static bool wait_io(struct stream_data *d, short events)
{
	int r = net_wait(d->fd, events, d->timeout_s * 1000);

	if (r > 0)
		return true;
	if (r == 0) {
		d->timed_out = true;
		snprintf(d->error, sizeof(d->error), "no answer for %d s (timeout)", d->timeout_s);
	} else if (errno == ECANCELED) {
		snprintf(d->error, sizeof(d->error), "stopped");
	} else {
		snprintf(d->error, sizeof(d->error), "poll: %s", strerror(errno));
	}
	return false;
}

/* Returns true to retry after waiting, false on a hard failure (error set). */
static bool ssl_retry(struct stream_data *d, int ret, const char *op)
{
	int e = SSL_get_error(d->ssl, ret);

	switch (e) {
	case SSL_ERROR_WANT_READ:
		return wait_io(d, POLLIN);
	case SSL_ERROR_WANT_WRITE:
		return wait_io(d, POLLOUT);
	case SSL_ERROR_ZERO_RETURN:
		snprintf(d->error, sizeof(d->error), "connection closed by server (TLS close)");
		return false;
	case SSL_ERROR_SYSCALL:
		if (ERR_peek_error() == 0) {
			if (errno == 0 || ret == 0)
				snprintf(d->error, sizeof(d->error), "connection closed by server");
			else
				snprintf(d->error, sizeof(d->error), "%s: %s", op, strerror(errno));
			ERR_clear_error();
			return false;
		}
		/* fall through */
	default: {
		char what[64];

		snprintf(what, sizeof(what), "TLS %s failed", op);
		openssl_error(d->error, sizeof(d->error), what);
		return false;
	}
	}
}

/* Count what was read against the budget: past it, the line at fault is
 * not delivered (libetpan would allocate what a literal announces), only
 * what came before it, and every later read fails.  Returns how many bytes
 * to hand on, -1 for none. */
static ssize_t within_budget(struct stream_data *d, const void *buf, size_t n)
{
	if (budget_feed(&d->budget, buf, n) == BUDGET_OK)
		return (ssize_t)n;
	snprintf(d->error, sizeof(d->error), "the server sent more than %llu MB",
		 (unsigned long long)(budget_bound(&d->budget) >> 20));
	return budget_keep(&d->budget) > 0 ? (ssize_t)budget_keep(&d->budget) : -1;
}

static ssize_t drv_read(mailstream_low *low, void *buf, size_t count)
{
	struct stream_data *d = sdata(low);

	/* Once a read or write has timed out, fail at once: libetpan's
	 * mailstream_read() turns a failure after a partial copy into a
	 * short count and calls us again, which waited a second --timeout. */
	if (d->fd < 0 || d->timed_out || d->budget.over != BUDGET_OK)
		return -1;
	for (;;) {
		if (d->ssl != NULL) {
			int n;

			errno = 0;
			n = SSL_read(d->ssl, buf, count > INT32_MAX ? INT32_MAX : (int)count);
			if (n > 0)
				return within_budget(d, buf, (size_t)n);
			if (!ssl_retry(d, n, "read"))
				return -1;
		} else {
			ssize_t n = recv(d->fd, buf, count, 0);

			if (n > 0)
				return within_budget(d, buf, (size_t)n);
			if (n == 0) {
				/* -1, not 0: libetpan 1.9.4 loops forever on 0 inside a literal. */
				snprintf(d->error, sizeof(d->error), "connection closed by server");
				return -1;
			}
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK) {
				snprintf(d->error, sizeof(d->error), "read: %s", strerror(errno));
				return -1;
			}
			if (!wait_io(d, POLLIN))
				return -1;
		}
	}
}

static ssize_t drv_write(mailstream_low *low, const void *buf, size_t count)
{
	struct stream_data *d = sdata(low);

	/* Once a read or write has timed out, fail at once: libetpan's
	 * mailstream_read() turns a failure after a partial copy into a
	 * short count and calls us again, which waited a second --timeout. */
	if (d->fd < 0 || d->timed_out)
		return -1;
	if (count == 0)
		return 0;
	for (;;) {
		if (d->ssl != NULL) {
			int n;

			errno = 0;
			n = SSL_write(d->ssl, buf, count > INT32_MAX ? INT32_MAX : (int)count);
			if (n > 0)
				return n;
			if (!ssl_retry(d, n, "write"))
				return -1;
		} else {
			/* MSG_NOSIGNAL as well as SIG_IGN: a library must not rely on the
			 * program's signal setup to survive a server hanging up. */
			ssize_t n = send(d->fd, buf, count, MSG_NOSIGNAL);

			if (n >= 0)
				return n;
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK) {
				snprintf(d->error, sizeof(d->error), "write: %s", strerror(errno));
				return -1;
			}
			if (!wait_io(d, POLLOUT))
				return -1;
		}
	}
}

static int drv_close(mailstream_low *low)
{
	struct stream_data *d = sdata(low);

	if (d->fd < 0)
		return 0;
	if (d->ssl != NULL) {
		/* One non-blocking close_notify; never wait for the peer's. */
		SSL_shutdown(d->ssl);
		ERR_clear_error();
	}
	close(d->fd);
	d->fd = -1;
	return 0;
}

static int drv_get_fd(mailstream_low *low)
{
	return sdata(low)->fd;
}

static void drv_free(mailstream_low *low)
{
	struct stream_data *d = sdata(low);

	/* mailstream_low_free() leaves both the data and the low to us. */
	if (d->ssl != NULL)
		SSL_free(d->ssl);
	free(d);
	free(low);
}

static mailstream_low_driver stream_driver = {
	.mailstream_read = drv_read,
	.mailstream_write = drv_write,
	.mailstream_close = drv_close,
	.mailstream_get_fd = drv_get_fd,
	.mailstream_free = drv_free,
};

static mailstream_low *low_new(int fd, SSL *ssl, int timeout_s)
{
	struct stream_data *d;
	mailstream_low *low;

	d = calloc(1, sizeof(*d));
	if (d == NULL)
		return NULL;
	d->fd = fd;
	d->ssl = ssl;
	d->timeout_s = timeout_s;
	budget_init(&d->budget);
	low = mailstream_low_new(d, &stream_driver);
	if (low == NULL) {
		free(d);
		return NULL;
	}
	low->timeout = (unsigned long)timeout_s;
	return low;
}

mailstream_low *tls_low_plain(int fd, int timeout_s)
{
	return low_new(fd, NULL, timeout_s);
}

void tls_low_set_timeout(mailstream_low *low, int timeout_s)
{
	if (low != NULL && low->driver == &stream_driver)
		sdata(low)->timeout_s = timeout_s;
}

void tls_low_set_budget(mailstream_low *low, const struct budget_limits *lim)
{
	if (low != NULL && low->driver == &stream_driver)
		budget_arm(&sdata(low)->budget, lim);
}

void tls_low_set_budget_next(mailstream_low *low, const char *tag,
			     const struct budget_limits *next)
{
	if (low != NULL && low->driver == &stream_driver)
		budget_arm_next(&sdata(low)->budget, tag, next);
}

enum budget_over tls_low_over_budget(mailstream_low *low, uint64_t *bound, char *what,
				     size_t what_size)
{
	*bound = 0;
	if (what_size > 0)
		what[0] = '\0';
	if (low == NULL || low->driver != &stream_driver)
		return BUDGET_OK;
	*bound = budget_bound(&sdata(low)->budget);
	budget_response(&sdata(low)->budget, what, what_size);
	return sdata(low)->budget.over;
}

void tls_low_release_fd(mailstream_low *low)
{
	sdata(low)->fd = -1;
}

const char *tls_low_error(mailstream_low *low)
{
	if (low == NULL || low->driver != &stream_driver)
		return "";
	return sdata(low)->error;
}

bool tls_low_timed_out(mailstream_low *low)
{
	if (low == NULL || low->driver != &stream_driver)
		return false;
	return sdata(low)->timed_out;
}

const char *tls_low_describe(mailstream_low *low, char *buf, size_t len)
{
	struct stream_data *d;

	if (low == NULL || low->driver != &stream_driver || sdata(low)->ssl == NULL) {
		snprintf(buf, len, "plain");
		return buf;
	}
	d = sdata(low);
	snprintf(buf, len, "%s %s", SSL_get_version(d->ssl),
		 SSL_CIPHER_get_name(SSL_get_current_cipher(d->ssl)));
	return buf;
}

int tls_low_start(struct tls_ctx *ctx, int fd, const char *name, int timeout_s,
		  mailstream_low **low_r, struct tr_error *err)
{
	struct stream_data probe = { .fd = fd, .timeout_s = timeout_s };
	mailstream_low *low;
	SSL *ssl;
	int r;

	ssl = SSL_new(ctx->ssl_ctx);
	if (ssl == NULL || SSL_set_fd(ssl, fd) != 1) {
		openssl_error(probe.error, sizeof(probe.error), "cannot start TLS");
		tr_error_set(err, TR_ERR_LOCAL, "%s", probe.error);
		SSL_free(ssl);
		return -1;
	}
	if (net_is_ip_literal(name)) {
		/* An IP is verified against the certificate's IP addresses, and
		 * SNI may not carry an IP (RFC 6066). */
		if (!ctx->insecure &&
		    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name) != 1) {
			tr_error_set(err, TR_ERR_USAGE, "bad IP address for TLS verification: %s", name);
			SSL_free(ssl);
			return -1;
		}
	} else {
		SSL_set_tlsext_host_name(ssl, name);
		if (!ctx->insecure) {
			SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
			if (SSL_set1_host(ssl, name) != 1) {
				tr_error_set(err, TR_ERR_USAGE, "bad TLS name: %s", name);
				SSL_free(ssl);
				return -1;
			}
		}
	}

	probe.ssl = ssl;
	for (;;) {
		errno = 0;
		r = SSL_connect(ssl);
		if (r == 1)
			break;
		if (!ssl_retry(&probe, r, "handshake")) {
			long vr = SSL_get_verify_result(ssl);

			/* a stop (of the run, or of this account's scope) is no
			 * TLS failure of the server's */
			if (net_cancelled())
				tr_error_set(err, TR_ERR_STOPPED, "TLS handshake with %s: stopped",
					     name);
			else if (vr != X509_V_OK) {
				tr_error_set(err, TR_ERR_TLS,
					     "TLS certificate of %s refused: %s", name,
					     X509_verify_cert_error_string(vr));
				snprintf(err->code, sizeof(err->code), "%s", TLS_CODE_CERT);
			}
			else
				tr_error_set(err, probe.timed_out ? TR_ERR_TEMP : TR_ERR_TLS,
					     "TLS handshake with %s failed: %s", name, probe.error);
			SSL_free(ssl);
			return -1;
		}
	}
	low = low_new(fd, ssl, timeout_s);
	if (low == NULL) {
		tr_error_set(err, TR_ERR_LOCAL, "out of memory");
		SSL_free(ssl);
		return -1;
	}
	*low_r = low;
	return 0;
}

int tls_probe(struct tls_ctx *ctx, const char *host, int port, const char *name, int timeout_s,
	      struct tr_error *why)
{
	mailstream_low *low;
	int fd;

	tr_error_clear(why);
	if (ctx == NULL || net_connect(host, port, timeout_s, &fd, why) < 0)
		return -1;
	if (tls_low_start(ctx, fd, name, timeout_s, &low, why) < 0) {
		close(fd);
		return strcmp(why->code, TLS_CODE_CERT) == 0 ? 0 : -1;
	}
	mailstream_low_close(low);
	mailstream_low_free(low);
	return 1;
}
