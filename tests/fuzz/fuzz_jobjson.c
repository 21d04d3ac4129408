/* libFuzzer target for the HTTP API's request bodies (src/jobjson.c): a
 * job as JSON and a pass.  Not built by make; tests/fuzz/run.sh builds it.
 *
 * The first byte picks the parser (even: a job, odd: a pass), the rest is
 * the body.  Besides crashes and leaks it checks what jobjson.h promises:
 * a job accepted has a source, a destination and an account, its settings'
 * text (jobconf_text) reads back to the same text, and nothing is set that
 * a queued job does not keep; a pass accepted is one of the three kinds,
 * scheduled only as delta, within 1 s to 366 days. */
#include "config.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "account.h"
#include "job.h"
#include "jobconf.h"
#include "jobjson.h"
#include "secret.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* report.c (linked for queue.c's JSON helpers) names an account's status
 * through account.c, which would bring the whole engine in: never reached
 * from a request body's parsing, so reaching it is a finding. */
const char *account_status_name(enum account_status s);
const char *account_status_name(enum account_status s)
{
	(void)s;
	abort();
}

static void check_job(const struct job_config *cfg, const struct job_accounts *ja)
{
	struct job_config again;
	struct job_file jf;
	struct tr_error err;
	char *text, *text2;

	if (cfg->src.host == NULL || cfg->dst.host == NULL || ja->n == 0 || cfg->kind != JOB_RUN)
		abort();
	if (cfg->state_dir == NULL || cfg->report != NULL || cfg->log_dir != NULL ||
	    cfg->dst_admin_password_file != NULL || cfg->user != NULL)
		abort();
	text = jobconf_text(cfg);
	if (text == NULL)
		abort();
	memset(&jf, 0, sizeof(jf));
	jobconf_init(&again, JOB_RUN);
	if (job_file_parse("text", text, strlen(text), &jf, &err) < 0 ||
	    jobconf_apply(&again, &jf, NULL, &err) < 0)
		abort();
	text2 = jobconf_text(&again);
	if (text2 == NULL || strcmp(text, text2) != 0)
		abort();
	free(text);
	free(text2);
	job_file_free(&jf);
	jobconf_free(&again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tr_error err;

	if (size < 1)
		return 0;
	tr_error_clear(&err);
	if (data[0] % 2 == 0) {
		struct job_config cfg;
		struct job_accounts ja;
		char *admin, *name;

		if (jobjson_parse((const char *)data + 1, size - 1, &cfg, &ja, &admin, &name,
				  &err) == 0) {
			check_job(&cfg, &ja);
			if (cfg.dst_admin != NULL && admin == NULL)
				abort();
		} else if (err.msg[0] == '\0' || admin != NULL || name != NULL || ja.n != 0) {
			abort();
		}
		secret_free(admin);
		free(name);
		job_accounts_free(&ja);
		jobconf_free(&cfg);
	} else {
		const char *kind;
		int every;

		if (jobjson_pass((const char *)data + 1, size - 1, &kind, &every, &err) == 0) {
			if (kind == NULL || (strcmp(kind, "delta") != 0 && strcmp(kind, "verify") != 0 &&
					     strcmp(kind, "final") != 0))
				abort();
			if (every != 0 && (strcmp(kind, "delta") != 0 || every < 1 ||
					   every > 366 * 86400))
				abort();
		} else if (kind != NULL || err.msg[0] == '\0') {
			abort();
		}
	}
	return 0;
}
