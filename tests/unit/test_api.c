/* Unit tests of the API's routing and refusals (api.h) that need no
 * database: the queue's DSN points nowhere, and every case here must be
 * answered before the queue is asked (test_serve.sh covers the rest
 * against a real PostgreSQL). */
#include "config.h"
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "api.h"

#define TOKEN "0123456789abcdef-token"

static struct api *open_api(bool metrics_open)
{
	struct api_conf c = { .dsn = "postgresql://nobody@127.0.0.1:1/none", .token = TOKEN,
			      .metrics_open = metrics_open, .max_body = 1000 };
	struct tr_error err;
	struct api *a;

	assert_int_equal(api_open(&c, &a, &err), 0);
	return a;
}

static int status(struct api *a, const char *method, const char *path, const char *auth,
		  const char *body, bool secure, bool over, struct api_reply *rp)
{
	struct api_request rq = { .method = method, .path = path, .authorization = auth,
				  .body = body, .body_len = body != NULL ? strlen(body) : 0,
				  .body_over = over, .secure = secure };

	api_handle(a, &rq, rp);
	return rp->status;
}

static void test_refusals(void **state)
{
	static const struct {
		const char *method, *path, *auth;
		bool secure, over;
		int status;
		const char *says;
	} cases[] = {
		{ "GET", "/healthz", NULL, true, false, 200, "ok" },
		{ "POST", "/healthz", NULL, true, false, 405, "not allowed" },
		{ "GET", "/v1/jobs", NULL, true, false, 401, "bearer" },
		{ "GET", "/v1/jobs", "Bearer " TOKEN "x", true, false, 401, "bearer" },
		{ "GET", "/v1/jobs", "Bearer 0123456789abcdef-toke", true, false, 401, "bearer" },
		{ "GET", "/v1/jobs", "Basic " TOKEN, true, false, 401, "bearer" },
		{ "GET", "/v1/jobs", "", true, false, 401, "bearer" },
		{ "GET", "/metrics", NULL, true, false, 401, "bearer" },
		{ "GET", "/v1/../metrics", "Bearer " TOKEN, true, false, 400, ".." },
		{ "GET", "/v1/jobs/1/..", "Bearer " TOKEN, true, false, 400, ".." },
		{ "GET", "/v1//jobs", "Bearer " TOKEN, true, false, 400, "//" },
		{ "GET", "/etc/passwd", "Bearer " TOKEN, true, false, 404, "no such route" },
		{ "GET", "/v1/jobs/abc", "Bearer " TOKEN, true, false, 404, "no such job" },
		{ "GET", "/v1/jobs/007", "Bearer " TOKEN, true, false, 404, "no such job" },
		{ "GET", "/v1/jobs/99999999999999999999", "Bearer " TOKEN, true, false, 404, "no such job" },
		{ "GET", "/v1/jobs/1/frob", "Bearer " TOKEN, true, false, 404, "no such route" },
		{ "PUT", "/v1/jobs", "Bearer " TOKEN, true, false, 405, "allowed: GET, POST" },
		{ "GET", "/v1/jobs/1/retry", "Bearer " TOKEN, true, false, 405, "POST" },
		{ "PATCH", "/v1/jobs/1", "Bearer " TOKEN, true, false, 405, "GET, DELETE" },
		{ "POST", "/v1/events", "Bearer " TOKEN, true, false, 405, "GET" },
		{ "POST", "/v1/jobs", "Bearer " TOKEN, false, false, 403, "TLS" },
		{ "POST", "/v1/jobs", "Bearer " TOKEN, true, true, 413, "1000 bytes" },
		/* the token before the size: a stranger learns nothing of the limit */
		{ "POST", "/v1/jobs", NULL, true, true, 401, "bearer" },
	};
	struct api *a = open_api(false);
	struct api_reply rp;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int st = status(a, cases[i].method, cases[i].path, cases[i].auth, "{}",
				cases[i].secure, cases[i].over, &rp);

		if (st != cases[i].status || rp.body == NULL || strstr(rp.body, cases[i].says) == NULL)
			fail_msg("case %zu: %s %s: %d %s", i, cases[i].method, cases[i].path, st,
				 rp.body != NULL ? rp.body : "(no body)");
		assert_string_equal(rp.type, "application/json");
		if (st == 405)
			assert_non_null(rp.allow);
		api_reply_free(&rp);
	}
	api_close(a);
}

/* A short token is refused at the start. */
static void test_token_length(void **state)
{
	struct api_conf c = { .dsn = "postgresql://x@127.0.0.1:1/x", .token = "short" };
	struct tr_error err;
	struct api *a;

	(void)state;
	assert_int_equal(api_open(&c, &a, &err), -1);
	assert_int_equal(err.kind, TR_ERR_USAGE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_token_length),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
