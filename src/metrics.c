/* metrics: the queue's status as Prometheus text (metrics.h). */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

static const char *const job_states[] = { "queued", "running", "done", "partial", "failed",
					   "cancelled" };
static const char *const acc_states[] = { "pending", "running", "ok", "partial", "failed",
					  "cancelled" };

/* A label value: \ " and newline escaped, as the format wants. */
static void label(FILE *f, const char *s)
{
	fputc('"', f);
	for (; s != NULL && *s != '\0'; s++) {
		if (*s == '\\' || *s == '"')
			fprintf(f, "\\%c", *s);
		else if (*s == '\n')
			fputs("\\n", f);
		else
			fputc(*s, f);
	}
	fputc('"', f);
}

static json_int_t num(const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key);

	return json_is_integer(v) ? json_integer_value(v) :
	       json_is_real(v) ? (json_int_t)json_real_value(v) : 0;
}

static void head(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* One line per job of a number of the job (key in the job object). */
static void per_job(FILE *f, const json_t *jobs, const char *name, const char *type,
		    const char *help, const char *key)
{
	const json_t *j;
	size_t i;

	head(f, name, type, help);
	json_array_foreach(jobs, i, j)
		fprintf(f, "%s{job=\"%" JSON_INTEGER_FORMAT "\"} %" JSON_INTEGER_FORMAT "\n", name,
			num(j, "id"), num(j, key));
}

char *metrics_render(const json_t *status)
{
	const json_t *jobs = json_object_get(status, "jobs"), *workers, *j, *w;
	char *buf = NULL;
	size_t len = 0, i, k;
	FILE *f = open_memstream(&buf, &len);

	if (f == NULL)
		return NULL;
	head(f, "trasloco_jobs", "gauge", "Jobs in the queue by state.");
	for (k = 0; k < sizeof(job_states) / sizeof(job_states[0]); k++) {
		json_int_t n = 0;

		json_array_foreach(jobs, i, j) {
			const char *st = json_string_value(json_object_get(j, "state"));

			if (st != NULL && strcmp(st, job_states[k]) == 0)
				n++;
		}
		fprintf(f, "trasloco_jobs{state=\"%s\"} %" JSON_INTEGER_FORMAT "\n", job_states[k],
			n);
	}
	head(f, "trasloco_accounts", "gauge", "Accounts of a job by status.");
	json_array_foreach(jobs, i, j) {
		const json_t *acc = json_object_get(j, "accounts");

		for (k = 0; k < sizeof(acc_states) / sizeof(acc_states[0]); k++)
			fprintf(f, "trasloco_accounts{job=\"%" JSON_INTEGER_FORMAT "\",status=\"%s\"} %"
				JSON_INTEGER_FORMAT "\n", num(j, "id"), acc_states[k],
				num(acc, acc_states[k]));
	}
	per_job(f, jobs, "trasloco_messages_copied_total", "counter",
		"Messages copied to the destination.", "messages_copied");
	per_job(f, jobs, "trasloco_messages_present_total", "counter",
		"Messages found already on the destination.", "messages_present");
	per_job(f, jobs, "trasloco_messages_failed_total", "counter",
		"Messages that could not be copied.", "messages_failed");
	per_job(f, jobs, "trasloco_bytes_copied_total", "counter",
		"Bytes of the messages copied.", "bytes");
	head(f, "trasloco_sessions_in_use", "gauge",
	     "Sessions open to a job's server, by side (src, dst), against trasloco_sessions_cap.");
	json_array_foreach(jobs, i, j) {
		const json_t *ses = json_object_get(j, "sessions");

		for (k = 0; k < 2; k++) {
			const char *side = k == 0 ? "src" : "dst";

			fprintf(f, "trasloco_sessions_in_use{job=\"%" JSON_INTEGER_FORMAT
				"\",side=\"%s\",server=", num(j, "id"), side);
			label(f, json_string_value(json_object_get(j, side)));
			fprintf(f, "} %" JSON_INTEGER_FORMAT "\n",
				num(json_object_get(ses, side), "in_use"));
		}
	}
	head(f, "trasloco_sessions_cap", "gauge", "The cap of sessions to a job's server, by side.");
	json_array_foreach(jobs, i, j) {
		const json_t *ses = json_object_get(j, "sessions");

		for (k = 0; k < 2; k++) {
			const char *side = k == 0 ? "src" : "dst";

			fprintf(f, "trasloco_sessions_cap{job=\"%" JSON_INTEGER_FORMAT
				"\",side=\"%s\",server=", num(j, "id"), side);
			label(f, json_string_value(json_object_get(j, side)));
			fprintf(f, "} %" JSON_INTEGER_FORMAT "\n",
				num(json_object_get(ses, side), "cap"));
		}
	}
	head(f, "trasloco_account_errors", "gauge",
	     "Accounts of a job whose last outcome failed or was partial, by error kind.");
	json_array_foreach(jobs, i, j) {
		const json_t *v;
		const char *kind;

		json_object_foreach((json_t *)json_object_get(j, "errors"), kind, v) {
			fprintf(f, "trasloco_account_errors{job=\"%" JSON_INTEGER_FORMAT "\",kind=",
				num(j, "id"));
			label(f, kind);
			fprintf(f, "} %" JSON_INTEGER_FORMAT "\n",
				json_is_integer(v) ? json_integer_value(v) : 0);
		}
	}
	head(f, "trasloco_limit_refusals_total", "counter",
	     "Sessions a job's server refused for a limit (each lowered a cap), by side.");
	json_array_foreach(jobs, i, j) {
		const json_t *ses = json_object_get(j, "sessions");

		for (k = 0; k < 2; k++) {
			const char *side = k == 0 ? "src" : "dst";

			fprintf(f, "trasloco_limit_refusals_total{job=\"%" JSON_INTEGER_FORMAT
				"\",side=\"%s\"} %" JSON_INTEGER_FORMAT "\n", num(j, "id"), side,
				num(json_object_get(ses, side), "limit_refusals"));
		}
	}
	head(f, "trasloco_pass_seconds", "gauge",
	     "Seconds the last finished pass of a job took, by its kind.");
	json_array_foreach(jobs, i, j) {
		const json_t *ps = json_object_get(j, "passes");
		const char *kind = json_string_value(json_object_get(ps, "last_pass_kind"));
		const json_t *secs = json_object_get(ps, "last_pass_seconds");

		if (kind == NULL || !json_is_number(secs))
			continue;
		fprintf(f, "trasloco_pass_seconds{job=\"%" JSON_INTEGER_FORMAT "\",kind=",
			num(j, "id"));
		label(f, kind);
		fprintf(f, "} %.3f\n", json_number_value(secs));
	}
	workers = json_object_get(status, "workers");
	head(f, "trasloco_workers", "gauge", "Workers heard from in the last ten minutes.");
	fprintf(f, "trasloco_workers %zu\n", json_array_size(workers));
	head(f, "trasloco_worker_accounts_running", "gauge", "Accounts a worker runs now.");
	json_array_foreach(workers, i, w) {
		fputs("trasloco_worker_accounts_running{worker=", f);
		label(f, json_string_value(json_object_get(w, "id")));
		fprintf(f, "} %" JSON_INTEGER_FORMAT "\n", num(w, "running"));
	}
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}
