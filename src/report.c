/* report: see include/report.h */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include <csv.h>
#include <jansson.h>

#include "report.h"
#include "text.h"
#include "throttle.h"

/* Room for a cleaned tr_error text (each byte may become a 4-byte escape). */
#define SHOWN_MAX (4 * sizeof(((struct tr_error *)0)->msg) + 1)

/* Text of a server or a CSV as a report shows it (text.h). */
static const char *shown(const char *s, char *buf, size_t size)
{
	return text_clean_str(buf, size, s, NULL);
}

const char *report_bytes(uint64_t bytes, char *buf, size_t len)
{
	static const char *const units[] = { "B", "kB", "MB", "GB", "TB" };
	double v = (double)bytes;
	size_t u = 0;

	while (v >= 1000 && u + 1 < sizeof(units) / sizeof(units[0])) {
		v /= 1000;
		u++;
	}
	if (u == 0)
		snprintf(buf, len, "%" PRIu64 " B", bytes);
	else
		snprintf(buf, len, "%.1f %s", v, units[u]);
	return buf;
}

void report_summary(FILE *f, const char *label, const struct account_result *r)
{
	char b1[32], b2[32], t1[SHOWN_MAX], t2[SHOWN_MAX], t3[SHOWN_MAX];
	double secs = r->seconds > 0.001 ? r->seconds : 0.001;
	size_t i, renamed = 0;

	fprintf(f, "%s: %s\n", shown(label, t1, sizeof(t1)), account_status_name(r->status));
	if (r->status == ACCOUNT_FAILED)
		fprintf(f, "  error: %s\n", shown(r->err.msg, t1, sizeof(t1)));
	if (r->status == ACCOUNT_PAUSED)
		fprintf(f, "  paused: %s; run again from %s to go on\n", shown(r->err.msg, t1, sizeof(t1)),
			throttle_time_text((time_t)r->err.until, t2, sizeof(t2)));
	fprintf(f, "  folders:  %zu (%u failed)\n", r->n_folders, r->folders_failed);
	fprintf(f, "  messages: %u copied, %u already present, %u failed", r->total.copied,
		r->total.present, r->total.failed);
	if (r->total.flags_updated > 0)
		fprintf(f, ", %u flag updates", r->total.flags_updated);
	if (r->total.vanished > 0)
		fprintf(f, ", %u expunged on the source meanwhile", r->total.vanished);
	if (r->total.deferred > 0)
		fprintf(f, ", %u left for a later pass", r->total.deferred);
	fputc('\n', f);
	fprintf(f, "  copied:   %s in %.1f s (%.0f messages/s, %s/s)\n",
		report_bytes(r->total.bytes, b1, sizeof(b1)), r->seconds,
		r->total.copied / secs, report_bytes((uint64_t)(r->total.bytes / secs), b2, sizeof(b2)));
	for (i = 0; i < r->n_folders; i++)
		if (r->folders[i].renamed)
			renamed++;
	if (renamed > 0) {
		fprintf(f, "  renamed folders:\n");
		for (i = 0; i < r->n_folders; i++) {
			const struct folder_report *fr = &r->folders[i];

			if (fr->renamed)
				fprintf(f, "    \"%s\" -> \"%s\" (%s)\n",
					shown(fr->src_name, t1, sizeof(t1)),
					shown(fr->dst_name, t2, sizeof(t2)),
					shown(fr->why != NULL ? fr->why : "renamed", t3, sizeof(t3)));
		}
	}
	for (i = 0; i < r->n_folders; i++) {
		const struct folder_report *fr = &r->folders[i];

		if (fr->failed)
			fprintf(f, "  folder \"%s\" failed: %s\n", shown(fr->src_name, t1, sizeof(t1)),
				shown(fr->error, t2, sizeof(t2)));
		else if (fr->counts.failed > 0)
			fprintf(f, "  folder \"%s\": %u message(s) not copied (see the log: "
				"refused by the destination or unreadable on the source)\n",
				shown(fr->src_name, t1, sizeof(t1)), fr->counts.failed);
	}
	if (r->status != ACCOUNT_FAILED && r->total.copied == 0 && r->total.failed == 0 &&
	    r->total.flags_updated == 0 && r->total.deferred == 0)
		fprintf(f, "  nothing new: the destination was already up to date\n");
}

const char *report_pass_name(const struct job_config *cfg, char *buf, size_t len)
{
	size_t n = 0;

	buf[0] = '\0';
	if (cfg == NULL || (!cfg->final && !cfg->since_day && !cfg->before_day && !cfg->trial)) {
		snprintf(buf, len, "full");
		return buf;
	}
	if (cfg->final)
		snprintf(buf, len, "final");
	if (cfg->since_day && n < len)
		n += (size_t)snprintf(buf + n, len - n, "%ssince %04u-%02u-%02u", n ? ", " : "",
				      cfg->since_day / 10000, cfg->since_day / 100 % 100,
				      cfg->since_day % 100);
	if (cfg->before_day && n < len)
		n += (size_t)snprintf(buf + n, len - n, "%sbefore %04u-%02u-%02u", n ? ", " : "",
				      cfg->before_day / 10000, cfg->before_day / 100 % 100,
				      cfg->before_day % 100);
	if (cfg->trial && n < len)
		snprintf(buf + n, len - n, "%strial (%u per folder)", n ? ", " : "", cfg->trial);
	return buf;
}

static const char *final_name(enum run_final f)
{
	switch (f) {
	case RUN_FINAL_FINISHED: return "finished";
	case RUN_FINAL_INCOMPLETE: return "incomplete";
	case RUN_FINAL_UNVERIFIED: return "unverified";
	case RUN_FINAL_NONE: break;
	}
	return NULL;
}

static void final_line(FILE *f, const struct run_item *it, const char *indent)
{
	switch (it->final) {
	case RUN_FINAL_FINISHED:
		fprintf(f, "%sfinal: verified complete, marked finished\n", indent);
		break;
	case RUN_FINAL_INCOMPLETE:
		fprintf(f, "%sfinal: %u source message(s) not on the destination: not finished "
			"(run it again)\n", indent, it->final_missing);
		break;
	case RUN_FINAL_UNVERIFIED:
		fprintf(f, "%sfinal: not verified (the copy did not end ok): not finished\n",
			indent);
		break;
	case RUN_FINAL_NONE:
		break;
	}
}

void report_final(FILE *f, const struct run_item *it)
{
	final_line(f, it, "  ");
}

/* ---- batch reports --------------------------------------------------------- */

static const char *item_status(const struct run_item *it)
{
	return it->started ? account_status_name(it->res.status) : "skipped";
}

void report_table(FILE *f, const struct run_result *r)
{
	uint64_t bytes = 0;
	uint32_t copied = 0, present = 0, failed = 0, deferred = 0, finished = 0;
	bool final = false;
	char b[32], t[SHOWN_MAX];
	size_t i;

	fprintf(f, "%-40s %-8s %8s %8s %7s %10s %8s\n", "account", "status", "copied", "present",
		"failed", "bytes", "seconds");
	for (i = 0; i < r->n; i++) {
		const struct run_item *it = &r->v[i];
		const struct account_result *a = &it->res;

		fprintf(f, "%-40s %-8s %8u %8u %7u %10s %8.1f\n", shown(it->acc->label, t, sizeof(t)),
			item_status(it), a->total.copied, a->total.present, a->total.failed,
			report_bytes(a->total.bytes, b, sizeof(b)), a->seconds);
		if (it->started && a->status == ACCOUNT_FAILED)
			fprintf(f, "    error: %s\n", shown(a->err.msg, t, sizeof(t)));
		if (it->started && a->status == ACCOUNT_PAUSED)
			fprintf(f, "    paused: %s\n", shown(a->err.msg, t, sizeof(t)));
		if (a->total.deferred > 0)
			fprintf(f, "    %u message(s) left for a later pass\n", a->total.deferred);
		final_line(f, it, "    ");
		final = final || it->final != RUN_FINAL_NONE;
		finished += it->final == RUN_FINAL_FINISHED;
		deferred += a->total.deferred;
		copied += a->total.copied;
		present += a->total.present;
		failed += a->total.failed;
		bytes += a->total.bytes;
	}
	fprintf(f, "%zu account(s): %u ok, %u partial, %u failed, %u paused, %u not started; "
		"%u messages copied, %u already present, %u failed, %s in %.1f s\n",
		r->n, r->ok, r->partial, r->failed, r->paused, r->skipped, copied, present, failed,
		report_bytes(bytes, b, sizeof(b)), r->seconds);
	if (deferred > 0)
		fprintf(f, "%u message(s) left for a later pass (a pass without --since, --before "
			"or --trial copies them)\n", deferred);
	if (final)
		fprintf(f, "final pass: %u of %zu account(s) verified complete and marked "
			"finished\n", finished, r->n);
}

/* ---- JSON ------------------------------------------------------------------ */

json_t *report_json_text(const char *s)
{
	char *c;
	json_t *j;

	if (s == NULL)
		return json_null();
	c = text_clean_dup(s, NULL);
	if (c == NULL)
		return NULL;
	j = json_string(c);
	free(c);
	return j;
}

void report_json_set(json_t *obj, const char *key, json_t *value, bool *ok)
{
	/* jansson takes value (and drops it on failure) even when obj is NULL. */
	if (json_object_set_new(obj, key, value) != 0)
		*ok = false;
}

void report_json_append(json_t *arr, json_t *value, bool *ok)
{
	if (json_array_append_new(arr, value) != 0)
		*ok = false;
}

static json_t *account_json(const struct run_item *it, bool *ok)
{
	const struct account_result *a = &it->res;
	bool failed = it->started && a->status == ACCOUNT_FAILED;
	json_t *o = json_object(), *renamed = json_array(), *ffail = json_array();
	size_t i;

	report_json_set(o, "email", report_json_text(it->acc->label), ok);
	report_json_set(o, "status", json_string(item_status(it)), ok);
	report_json_set(o, "error", failed ? report_json_text(a->err.msg) : json_null(), ok);
	report_json_set(o, "error_kind", failed ? json_string(tr_error_kind_name(a->err.kind))
					       : json_null(), ok);
	if (it->started && a->status == ACCOUNT_PAUSED) {
		char when[64];
		struct tm tm;
		time_t t = (time_t)a->err.until;

		if (gmtime_r(&t, &tm) == NULL || strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ",
							    &tm) == 0)
			when[0] = '\0';
		report_json_set(o, "paused", report_json_text(a->err.msg), ok);
		report_json_set(o, "resumes_at", json_string(when), ok);
	} else {
		report_json_set(o, "paused", json_null(), ok);
		report_json_set(o, "resumes_at", json_null(), ok);
	}
	report_json_set(o, "folders", json_integer((json_int_t)a->n_folders), ok);
	report_json_set(o, "folders_failed", json_integer(a->folders_failed), ok);
	report_json_set(o, "messages_copied", json_integer(a->total.copied), ok);
	report_json_set(o, "messages_present", json_integer(a->total.present), ok);
	report_json_set(o, "messages_failed", json_integer(a->total.failed), ok);
	report_json_set(o, "flags_updated", json_integer(a->total.flags_updated), ok);
	report_json_set(o, "messages_deferred", json_integer(a->total.deferred), ok);
	if (it->final != RUN_FINAL_NONE) {
		json_t *x = json_object();

		report_json_set(x, "status", json_string(final_name(it->final)), ok);
		report_json_set(x, "missing", json_integer(it->final_missing), ok);
		report_json_set(o, "final", x, ok);
	}
	report_json_set(o, "bytes", json_integer((json_int_t)a->total.bytes), ok);
	report_json_set(o, "seconds", json_real(a->seconds), ok);
	for (i = 0; i < a->n_folders; i++) {
		const struct folder_report *fr = &a->folders[i];
		json_t *x;

		if (fr->renamed) {
			x = json_object();
			report_json_set(x, "from", report_json_text(fr->src_name), ok);
			report_json_set(x, "to", report_json_text(fr->dst_name), ok);
			report_json_set(x, "why", report_json_text(fr->why != NULL ? fr->why
										  : "renamed"), ok);
			report_json_append(renamed, x, ok);
		}
		if (fr->failed || fr->counts.failed > 0) {
			x = json_object();
			report_json_set(x, "folder", report_json_text(fr->src_name), ok);
			report_json_set(x, "error", report_json_text(fr->error), ok);
			report_json_set(x, "messages_failed", json_integer(fr->counts.failed), ok);
			report_json_append(ffail, x, ok);
		}
	}
	report_json_set(o, "renamed_folders", renamed, ok);
	report_json_set(o, "folder_problems", ffail, ok);
	return o;
}

/* Write through a private temporary file and rename it into place, so a
 * reader (a provider's panel) never sees half a report. */
static int write_atomic(const char *path, int (*writer)(FILE *f, const void *ctx),
			const void *ctx, struct tr_error *err)
{
	char tmp[4096];
	FILE *f;
	int fd;

	snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", path);
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		tr_error_set(err, TR_ERR_LOCAL, "cannot write report %s: %s", path, strerror(errno));
		return -1;
	}
	fchmod(fd, 0600);
	f = fdopen(fd, "w");
	if (f == NULL || writer(f, ctx) < 0 || fflush(f) != 0 || fsync(fd) != 0) {
		tr_error_set(err, TR_ERR_LOCAL, "cannot write report %s: %s", path, strerror(errno));
		if (f != NULL)
			fclose(f);
		else
			close(fd);
		unlink(tmp);
		return -1;
	}
	fclose(f);
	if (rename(tmp, path) < 0) {
		tr_error_set(err, TR_ERR_LOCAL, "cannot write report %s: %s", path, strerror(errno));
		unlink(tmp);
		return -1;
	}
	return 0;
}

static int write_json(FILE *f, const void *ctx)
{
	return json_dumpf((const json_t *)ctx, f, JSON_INDENT(2) | JSON_PRESERVE_ORDER) == 0 &&
	       fputc('\n', f) != EOF ? 0 : -1;
}

int report_write_json(const char *path, json_t *root, bool ok, struct tr_error *err)
{
	if (!ok || root == NULL) {
		/* A report that lost a key would lie: write none. */
		tr_error_set(err, TR_ERR_LOCAL, "cannot write report %s: out of memory", path);
		return -1;
	}
	return write_atomic(path, write_json, root, err);
}

int report_json(const char *path, const struct report_job *job, const struct run_result *r,
		struct tr_error *err)
{
	json_t *root = json_object(), *accounts = json_array(), *j = json_object(),
	       *totals = json_object(), *bad = json_array();
	uint64_t bytes = 0;
	uint32_t copied = 0, present = 0, failed = 0, deferred = 0;
	bool ok = true;
	char pass[160];
	size_t i;
	int ret;

	report_json_set(j, "name", report_json_text(job->name), &ok);
	report_json_set(j, "pass", report_json_text(report_pass_name(job->cfg, pass, sizeof(pass))),
			&ok);
	report_json_set(j, "source", report_json_text(job->src), &ok);
	report_json_set(j, "destination", report_json_text(job->dst), &ok);
	report_json_set(j, "started", report_json_text(job->started), &ok);
	report_json_set(j, "seconds", json_real(r->seconds), &ok);
	for (i = 0; i < job->n_bad_rows; i++)
		report_json_append(bad, report_json_text(job->bad_rows[i]), &ok);
	report_json_set(j, "skipped_rows", bad, &ok);
	for (i = 0; i < r->n; i++) {
		const struct account_result *a = &r->v[i].res;

		report_json_append(accounts, account_json(&r->v[i], &ok), &ok);
		copied += a->total.copied;
		present += a->total.present;
		failed += a->total.failed;
		deferred += a->total.deferred;
		bytes += a->total.bytes;
	}
	report_json_set(totals, "accounts", json_integer((json_int_t)r->n), &ok);
	report_json_set(totals, "ok", json_integer(r->ok), &ok);
	report_json_set(totals, "partial", json_integer(r->partial), &ok);
	report_json_set(totals, "failed", json_integer(r->failed), &ok);
	report_json_set(totals, "paused", json_integer(r->paused), &ok);
	report_json_set(totals, "skipped", json_integer(r->skipped), &ok);
	report_json_set(totals, "messages_copied", json_integer(copied), &ok);
	report_json_set(totals, "messages_present", json_integer(present), &ok);
	report_json_set(totals, "messages_failed", json_integer(failed), &ok);
	report_json_set(totals, "messages_deferred", json_integer(deferred), &ok);
	report_json_set(totals, "bytes", json_integer((json_int_t)bytes), &ok);
	report_json_set(root, "job", j, &ok);
	report_json_set(root, "accounts", accounts, &ok);
	report_json_set(root, "totals", totals, &ok);
	ret = report_write_json(path, root, ok, err);
	json_decref(root);
	return ret;
}

/* One field, cleaned (text.h): a CSV report is UTF-8 text without control
 * bytes, whatever a server or the accounts CSV said. */
static void csv_field(FILE *f, const char *s, bool last)
{
	char t[SHOWN_MAX];

	shown(s, t, sizeof(t));
	csv_fwrite(f, t, strlen(t));
	fputc(last ? '\n' : ',', f);
}

static int write_csv(FILE *f, const void *ctx)
{
	const struct run_result *r = ctx;
	char num[64];
	size_t i;

	fputs("email,status,error,folders,messages_copied,messages_present,messages_failed,"
	      "bytes,seconds\n", f);
	for (i = 0; i < r->n; i++) {
		const struct run_item *it = &r->v[i];
		const struct account_result *a = &it->res;

		csv_field(f, it->acc->label, false);
		csv_field(f, item_status(it), false);
		csv_field(f, it->started && (a->status == ACCOUNT_FAILED ||
					     a->status == ACCOUNT_PAUSED) ? a->err.msg : "", false);
		fprintf(f, "%zu,%u,%u,%u,%" PRIu64 ",", a->n_folders, a->total.copied,
			a->total.present, a->total.failed, a->total.bytes);
		snprintf(num, sizeof(num), "%.1f", a->seconds);
		csv_field(f, num, true);
	}
	return ferror(f) ? -1 : 0;
}

int report_csv(const char *path, const struct run_result *r, struct tr_error *err)
{
	return write_atomic(path, write_csv, r, err);
}
