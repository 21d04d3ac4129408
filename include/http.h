/* http: `trasloco serve`'s HTTP server, libmicrohttpd carrying api.h.
 *
 * libmicrohttpd parses HTTP (nothing here does), runs a thread per
 * connection (a status request never waits behind an event stream) up to
 * a limit of connections, and speaks TLS when a certificate and key are
 * given (GnuTLS inside libmicrohttpd).  This module collects a request's
 * body up to the API's limit (a Content-Length above it is answered 413
 * before the body is read), tells the API whether the request is secure
 * (TLS, or a loopback client), turns replies into responses with headers
 * that keep browsers from sniffing or caching them, serves the status
 * page's files (page.h) at / with a content security policy that allows
 * nothing but the page's own files, and streams /v1/events as server-sent
 * events: api_snapshot every second, sent when it changed, a comment every
 * 15 s to keep proxies from closing the stream.  An access log, when asked
 * for, gets a line of JSON per request: method, path, query, status, whether
 * an Authorization header came and whether it was accepted (never its
 * value, nor any other header or body).
 *
 * Ownership: a struct http is its starter's; the api is borrowed and must
 * outlive http_stop.  Threading: libmicrohttpd's threads call api.h;
 * http_start and http_stop from one thread.
 */
#ifndef TRASLOCO_HTTP_H
#define TRASLOCO_HTTP_H

#include <stdint.h>

#include "api.h"
#include "error.h"

struct http_conf {
	const char *listen;             /* "HOST:PORT", "[V6]:PORT" */
	const char *tls_cert, *tls_key; /* PEM files; both or neither */
	unsigned max_connections;       /* 0: 256 */
	const char *access_log;         /* a file (appended, 0600), or NULL: none */
	struct api *api;
};

struct http;

/* Listen (TLS when configured) and serve from libmicrohttpd's threads.
 * TR_ERR_USAGE for a bad address or TLS files, TR_ERR_LOCAL when the
 * address cannot be bound. */
int http_start(const struct http_conf *c, struct http **h_r, struct tr_error *err);
/* The port listened on. */
uint16_t http_port(const struct http *h);
/* End the event streams, close every connection, stop. */
void http_stop(struct http *h);

#endif
