/* libFuzzer target for the accounts CSV and job file parsers (src/job.c)
 * and for what a job file's settings make of a job configuration
 * (src/jobconf.c).  Not built by make; see the build command below.
 *
 *   cd /work/main && clang -g -O1 -fsanitize=fuzzer,address,undefined \
 *       -I include -I /path/to/builddir tests/fuzz/fuzz_job.c src/job.c src/jobconf.c \
 *       src/net.c src/error.c -lcsv -o /tmp/fuzz_job
 *   /tmp/fuzz_job -max_total_time=120 tests/fuzz/corpus/job
 *
 * Besides crashes and leaks it checks what job.h promises of a result, and
 * that a configuration's text (jobconf_text) read back as a job file gives
 * the same configuration. */
#include "config.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "job.h"
#include "jobconf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_accounts(const struct job_accounts *a)
{
	size_t i, j;

	for (i = 0; i < a->n; i++) {
		const struct job_account *acc = &a->v[i];

		if (!job_email_valid(acc->email) || acc->password == NULL ||
		    acc->password[0] == '\0' || acc->line == 0)
			abort();
		/* no field past the limit; without a header, no password that
		 * is itself an address (swapped columns) */
		if (strlen(acc->password) > JOB_MAX_FIELD ||
		    (acc->dst_password != NULL && strlen(acc->dst_password) > JOB_MAX_FIELD) ||
		    (acc->src_user != NULL && strlen(acc->src_user) > JOB_MAX_FIELD) ||
		    (acc->dst_user != NULL && strlen(acc->dst_user) > JOB_MAX_FIELD))
			abort();
		if (!a->had_header && job_email_valid(acc->password))
			abort();
		if (i > 0 && acc->line < a->v[i - 1].line)
			abort();
		/* a duplicate check that does not trust the hash table */
		if (a->n < 200)
			for (j = 0; j < i; j++)
				if (strcasecmp(a->v[j].email, acc->email) == 0)
					abort();
	}
	for (i = 0; i < a->n_bad; i++)
		if (a->bad[i].what == NULL || a->bad[i].line == 0)
			abort();
}

/* A bracket in a host name has no way back through "[v6]:port". */
static bool odd_host(const struct job_config *cfg)
{
	const char *h[] = { cfg->src.host, cfg->dst.host };
	size_t i;

	for (i = 0; i < 2; i++)
		if (h[i] != NULL && strpbrk(h[i], "[]") != NULL)
			return true;
	return false;
}

/* The settings of f as a job file and as a spool job: either an error with
 * a kind and a text, or a configuration whose text reads back the same. */
static void check_config(const struct job_file *f, enum jobconf_from from)
{
	struct jobconf_origin o = { .from = from, .dir = "/nonexistent-fuzz",
				    .dir_real = "/nonexistent-fuzz" };
	struct job_config cfg, back;
	struct job_file jf;
	struct tr_error err;
	char *text, *again;

	jobconf_init(&cfg, JOB_RUN);
	tr_error_clear(&err);
	if (jobconf_apply(&cfg, f, &o, &err) < 0) {
		if (err.kind == TR_ERR_NONE || err.msg[0] == '\0')
			abort();
		jobconf_free(&cfg);
		return;
	}
	/* no password option is a key; operator keys never from a spool job */
	if (from == JOBCONF_SPOOL_JOB && (cfg.insecure || cfg.allow_plaintext ||
					  cfg.ca_file != NULL || cfg.dst_admin != NULL ||
					  cfg.dst_admin_password_file != NULL))
		abort();
	text = jobconf_text(&cfg);
	if (text == NULL)
		abort();
	if (job_file_parse("text.job", text, strlen(text), &jf, &err) < 0)
		abort();
	jobconf_init(&back, JOB_RUN);
	o.from = JOBCONF_JOB_FILE;
	if (jobconf_apply(&back, &jf, &o, &err) < 0) {
		if (!odd_host(&cfg))
			abort();
	} else {
		again = jobconf_text(&back);
		if (again == NULL || (strcmp(again, text) != 0 && !odd_host(&cfg)))
			abort();
		free(again);
	}
	(void)jobconf_finish(&back, &err);
	job_file_free(&jf);
	jobconf_free(&back);
	free(text);
	jobconf_free(&cfg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct job_accounts a;
	struct job_file f;
	struct tr_error err;
	size_t i;

	if (job_accounts_parse("fuzz.csv", (const char *)data, size, &a, &err) == 0)
		check_accounts(&a);
	else if (a.n != 0 || a.n_bad != 0 || err.kind == TR_ERR_NONE)
		abort();
	job_accounts_free(&a);

	if (job_file_parse("fuzz.job", (const char *)data, size, &f, &err) == 0) {
		for (i = 0; i < f.n; i++)
			if (f.v[i].key[0] == '\0' || f.v[i].line == 0 ||
			    strlen(f.v[i].value) > JOB_MAX_LINE)
				abort();
		check_config(&f, JOBCONF_JOB_FILE);
		check_config(&f, JOBCONF_SPOOL_JOB);
	} else if (f.n != 0 || err.kind == TR_ERR_NONE) {
		abort();
	}
	job_file_free(&f);
	return 0;
}
