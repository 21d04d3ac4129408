/* api: the HTTP API of `trasloco serve`, without the HTTP (http.h carries it).
 *
 * A request comes in as method, path, the `job` query argument, the
 * Authorization header and the body; a reply goes out as a status, a
 * content type and a body (JSON, or Prometheus text for /metrics).  The
 * routes, their bodies and their statuses are those of doc/openapi.json
 * (tests/integration/test_serve.sh holds the two to each other):
 *
 *   GET    /healthz                        no token
 *   GET    /metrics                        token unless metrics_open
 *   POST   /v1/jobs                        201 {"id", "accounts", "skipped"}
 *   GET    /v1/jobs                        {"jobs": [...], "workers": [...]}
 *   GET    /v1/jobs/ID                     a job with its account_list
 *   DELETE /v1/jobs/ID                     204; its passwords go with it
 *   GET    /v1/jobs/ID/accounts/EMAIL      one account, per folder
 *   POST   /v1/jobs/ID/passes              {"kind": "delta"|"verify"|"final"} or {"every": "6h"}
 *   POST   /v1/jobs/ID/retry               accounts failed or partial back to pending
 *   POST   /v1/jobs/ID/cancel
 *   GET    /v1/events?job=ID               server-sent events (http.c streams api_snapshot)
 *
 * Every /v1 route and /metrics want "Authorization: Bearer TOKEN", compared
 * in constant time (401 otherwise, with WWW-Authenticate).  A job's body
 * carries passwords: it is refused (403) unless the request came over TLS
 * or from loopback.  No reply holds a password: the queue keeps them
 * sealed and never returns them.
 *
 * The jobs live in the queue (queue.h, PostgreSQL).  The API keeps a pool
 * of queue connections, one per request at a time, opened on demand.
 *
 * Ownership: a struct api is its opener's; the conf's strings are copied.
 * Threading: api_handle and api_snapshot may be called from many threads
 * at once (libmicrohttpd's connection threads).
 */
#ifndef TRASLOCO_API_H
#define TRASLOCO_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "seal.h"

struct api_conf {
	const char *dsn;                /* the queue */
	const struct seal_keys *keys;   /* borrowed: to seal submitted passwords */
	const char *token;              /* the bearer token */
	bool metrics_open;              /* /metrics without a token */
	size_t max_body;                /* bytes; 0: JOBJSON_MAX_BODY */
};

struct api;

int api_open(const struct api_conf *c, struct api **a_r, struct tr_error *err);
void api_close(struct api *a);
size_t api_max_body(const struct api *a);

struct api_request {
	const char *method;
	const char *path;               /* decoded, without the query */
	const char *job;                /* ?job=, or NULL */
	const char *authorization;      /* the header, or NULL */
	const char *body;
	size_t body_len;
	bool body_over;                 /* more than api_max_body bytes were sent */
	bool secure;                    /* over TLS, or from a loopback address */
};

struct api_reply {
	int status;
	const char *type;               /* static */
	char *body;                     /* owned; NULL for an empty body */
	size_t body_len;
	const char *allow;              /* static: the Allow header of a 405 */
	char location[64];              /* the Location header of a 201, or "" */
	bool events;                    /* 200 to /v1/events: stream api_snapshot */
	int64_t events_job;             /* 0: every job */
};

/* Answer one request.  Never fails: a failure is a 5xx reply. */
void api_handle(struct api *a, const struct api_request *rq, struct api_reply *rp);
void api_reply_free(struct api_reply *rp);

/* The JSON document /v1/events sends when it changes: GET /v1/jobs/ID's
 * for a job, GET /v1/jobs's for 0.  *gone_r: the job was deleted (the
 * stream ends).  Returns 0, or -1 when the queue could not answer now
 * (the stream tries again). */
int api_snapshot(struct api *a, int64_t job, char **json_r, bool *gone_r);

/* Start the scheduled passes that are due (queue_schedule): serve calls it
 * every few seconds, so that passes run on time with no worker of its own
 * (workers' heartbeats start them too; each pass starts once). */
int api_tick(struct api *a, int *n_started, struct tr_error *err);

#endif
