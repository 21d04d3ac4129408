/* Unit tests of metrics.h: the Prometheus text of a status document (as
 * queue_status writes it): errors by kind, limit refusals per side, the
 * last finished pass's seconds, and label values escaped. */
#include "config.h"
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "metrics.h"

static char *render(const char *doc)
{
	json_error_t je;
	json_t *st = json_loads(doc, 0, &je);
	char *text;

	assert_non_null(st);
	text = metrics_render(st);
	json_decref(st);
	assert_non_null(text);
	return text;
}

static void has_line(const char *text, const char *line)
{
	const char *p = text;
	size_t n = strlen(line);

	for (; (p = strstr(p, line)) != NULL; p += n)
		if ((p == text || p[-1] == '\n') && p[n] == '\n')
			return;
	fail_msg("no line \"%s\" in:\n%s", line, text);
}

static const char job7[] =
	"{\"jobs\": [{\"id\": 7, \"state\": \"partial\", \"src\": \"old:993\", \"dst\": \"new:993\","
	" \"accounts\": {\"ok\": 7, \"partial\": 1, \"failed\": 2},"
	" \"errors\": {\"auth\": 2, \"message\": 1},"
	" \"limit_refusals\": 5,"
	" \"sessions\": {\"src\": {\"in_use\": 0, \"cap\": 8, \"limit_refusals\": 3},"
	"                \"dst\": {\"in_use\": 1, \"cap\": 4, \"limit_refusals\": 2}},"
	" \"passes\": {\"current\": \"delta\", \"count\": 2, \"current_seconds\": 1.5,"
	"              \"last_pass_kind\": \"delta\", \"last_pass_seconds\": 12.25}},"
	" {\"id\": 8, \"state\": \"running\", \"src\": \"a\", \"dst\": \"b\", \"errors\": {},"
	"  \"sessions\": {}, \"passes\": {\"current\": \"run\", \"count\": 1,"
	"  \"current_seconds\": 3, \"last_pass_kind\": null, \"last_pass_seconds\": null}}],"
	" \"workers\": []}";

static void test_errors_by_kind(void **state)
{
	char *t = render(job7);

	(void)state;
	has_line(t, "# TYPE trasloco_account_errors gauge");
	has_line(t, "trasloco_account_errors{job=\"7\",kind=\"auth\"} 2");
	has_line(t, "trasloco_account_errors{job=\"7\",kind=\"message\"} 1");
	assert_null(strstr(t, "trasloco_account_errors{job=\"8\""));
	free(t);
}

static void test_limit_refusals(void **state)
{
	char *t = render(job7);

	(void)state;
	has_line(t, "# TYPE trasloco_limit_refusals_total counter");
	has_line(t, "trasloco_limit_refusals_total{job=\"7\",side=\"src\"} 3");
	has_line(t, "trasloco_limit_refusals_total{job=\"7\",side=\"dst\"} 2");
	/* a job with none yet still has its series (a counter from 0) */
	has_line(t, "trasloco_limit_refusals_total{job=\"8\",side=\"src\"} 0");
	has_line(t, "trasloco_limit_refusals_total{job=\"8\",side=\"dst\"} 0");
	free(t);
}

static void test_pass_seconds(void **state)
{
	char *t = render(job7);

	(void)state;
	has_line(t, "# TYPE trasloco_pass_seconds gauge");
	has_line(t, "trasloco_pass_seconds{job=\"7\",kind=\"delta\"} 12.250");
	/* no pass finished yet: no sample */
	assert_null(strstr(t, "trasloco_pass_seconds{job=\"8\""));
	free(t);
}

/* A kind (and a server name) with a quote, a backslash and a newline is
 * one escaped label value, never a broken line or a label of its own. */
static void test_label_escaping(void **state)
{
	char *t = render("{\"jobs\": [{\"id\": 9, \"src\": \"ev\\\"il\\\\\\n\", \"dst\": \"d\","
			 " \"errors\": {\"a\\\"b\\\\c\\nd\": 4},"
			 " \"passes\": {\"last_pass_kind\": \"x\\\"y\", \"last_pass_seconds\": 1}}]}");

	(void)state;
	has_line(t, "trasloco_account_errors{job=\"9\",kind=\"a\\\"b\\\\c\\nd\"} 4");
	has_line(t, "trasloco_pass_seconds{job=\"9\",kind=\"x\\\"y\"} 1.000");
	has_line(t, "trasloco_sessions_cap{job=\"9\",side=\"src\",server=\"ev\\\"il\\\\\\n\"} 0");
	free(t);
}

/* An empty queue: every family is declared, no sample is made up. */
static void test_empty(void **state)
{
	char *t = render("{\"jobs\": [], \"workers\": []}");

	(void)state;
	has_line(t, "# TYPE trasloco_account_errors gauge");
	has_line(t, "# TYPE trasloco_limit_refusals_total counter");
	has_line(t, "# TYPE trasloco_pass_seconds gauge");
	assert_null(strstr(t, "trasloco_pass_seconds{"));
	free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_errors_by_kind),
		cmocka_unit_test(test_limit_refusals),
		cmocka_unit_test(test_pass_seconds),
		cmocka_unit_test(test_label_escaping),
		cmocka_unit_test(test_empty),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
