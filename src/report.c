/* report: see include/report.h */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <csv.h>
#include <jansson.h>

#include "report.h"

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
	char b1[32], b2[32];
	double secs = r->seconds > 0.001 ? r->seconds : 0.001;
	size_t i, renamed = 0;

	fprintf(f, "%s: %s\n", label, account_status_name(r->status));
	if (r->status == ACCOUNT_FAILED)
		fprintf(f, "  error: %s\n", r->err.msg);
	fprintf(f, "  folders:  %zu (%u failed)\n", r->n_folders, r->folders_failed);
	fprintf(f, "  messages: %u copied, %u already present, %u failed", r->total.copied,
		r->total.present, r->total.failed);
	if (r->total.flags_updated > 0)
		fprintf(f, ", %u flag updates", r->total.flags_updated);
	if (r->total.vanished > 0)
		fprintf(f, ", %u expunged on the source meanwhile", r->total.vanished);
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
				fprintf(f, "    \"%s\" -> \"%s\" (%s)\n", fr->src_name, fr->dst_name,
					fr->why != NULL ? fr->why : "renamed");
		}
	}
	for (i = 0; i < r->n_folders; i++) {
		const struct folder_report *fr = &r->folders[i];

		if (fr->failed)
			fprintf(f, "  folder \"%s\" failed: %s\n", fr->src_name, fr->error);
		else if (fr->counts.failed > 0)
			fprintf(f, "  folder \"%s\": %u message(s) not copied (see the log: "
				"refused by the destination or unreadable on the source)\n",
				fr->src_name, fr->counts.failed);
	}
	if (r->status != ACCOUNT_FAILED && r->total.copied == 0 && r->total.failed == 0 &&
	    r->total.flags_updated == 0)
		fprintf(f, "  nothing new: the destination was already up to date\n");
}

/* ---- batch reports --------------------------------------------------------- */

static const char *item_status(const struct run_item *it)
{
	return it->started ? account_status_name(it->res.status) : "skipped";
}

void report_table(FILE *f, const struct run_result *r)
{
	uint64_t bytes = 0;
	uint32_t copied = 0, present = 0, failed = 0;
	char b[32];
	size_t i;

	fprintf(f, "%-40s %-8s %8s %8s %7s %10s %8s\n", "account", "status", "copied", "present",
		"failed", "bytes", "seconds");
	for (i = 0; i < r->n; i++) {
		const struct run_item *it = &r->v[i];
		const struct account_result *a = &it->res;

		fprintf(f, "%-40s %-8s %8u %8u %7u %10s %8.1f\n", it->acc->label, item_status(it),
			a->total.copied, a->total.present, a->total.failed,
			report_bytes(a->total.bytes, b, sizeof(b)), a->seconds);
		if (it->started && a->status == ACCOUNT_FAILED)
			fprintf(f, "    error: %s\n", a->err.msg);
		copied += a->total.copied;
		present += a->total.present;
		failed += a->total.failed;
		bytes += a->total.bytes;
	}
	fprintf(f, "%zu account(s): %u ok, %u partial, %u failed, %u not started; "
		"%u messages copied, %u already present, %u failed, %s in %.1f s\n",
		r->n, r->ok, r->partial, r->failed, r->skipped, copied, present, failed,
		report_bytes(bytes, b, sizeof(b)), r->seconds);
}

static json_t *account_json(const struct run_item *it)
{
	const struct account_result *a = &it->res;
	json_t *o = json_object(), *renamed = json_array(), *ffail = json_array();
	size_t i;

	json_object_set_new(o, "email", json_string(it->acc->label));
	json_object_set_new(o, "status", json_string(item_status(it)));
	json_object_set_new(o, "error", it->started && a->status == ACCOUNT_FAILED
					? json_string(a->err.msg) : json_null());
	json_object_set_new(o, "error_kind", it->started && a->status == ACCOUNT_FAILED
					     ? json_string(tr_error_kind_name(a->err.kind)) : json_null());
	json_object_set_new(o, "folders", json_integer((json_int_t)a->n_folders));
	json_object_set_new(o, "folders_failed", json_integer(a->folders_failed));
	json_object_set_new(o, "messages_copied", json_integer(a->total.copied));
	json_object_set_new(o, "messages_present", json_integer(a->total.present));
	json_object_set_new(o, "messages_failed", json_integer(a->total.failed));
	json_object_set_new(o, "flags_updated", json_integer(a->total.flags_updated));
	json_object_set_new(o, "bytes", json_integer((json_int_t)a->total.bytes));
	json_object_set_new(o, "seconds", json_real(a->seconds));
	for (i = 0; i < a->n_folders; i++) {
		const struct folder_report *fr = &a->folders[i];

		if (fr->renamed)
			json_array_append_new(renamed, json_pack("{s:s, s:s, s:s}", "from", fr->src_name,
								 "to", fr->dst_name, "why",
								 fr->why != NULL ? fr->why : "renamed"));
		if (fr->failed || fr->counts.failed > 0)
			json_array_append_new(ffail, json_pack("{s:s, s:s?, s:i}", "folder", fr->src_name,
							       "error", fr->error,
							       "messages_failed", (int)fr->counts.failed));
	}
	json_object_set_new(o, "renamed_folders", renamed);
	json_object_set_new(o, "folder_problems", ffail);
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

int report_write_json(const char *path, json_t *root, struct tr_error *err)
{
	return write_atomic(path, write_json, root, err);
}

int report_json(const char *path, const struct report_job *job, const struct run_result *r,
		struct tr_error *err)
{
	json_t *root = json_object(), *accounts = json_array(), *j = json_object(),
	       *totals = json_object(), *bad = json_array();
	uint64_t bytes = 0;
	uint32_t copied = 0, present = 0, failed = 0;
	size_t i;
	int ret;

	json_object_set_new(j, "name", job->name != NULL ? json_string(job->name) : json_null());
	json_object_set_new(j, "source", json_string(job->src));
	json_object_set_new(j, "destination", json_string(job->dst));
	json_object_set_new(j, "started", json_string(job->started));
	json_object_set_new(j, "seconds", json_real(r->seconds));
	for (i = 0; i < job->n_bad_rows; i++)
		json_array_append_new(bad, json_string(job->bad_rows[i]));
	json_object_set_new(j, "skipped_rows", bad);
	for (i = 0; i < r->n; i++) {
		const struct account_result *a = &r->v[i].res;

		json_array_append_new(accounts, account_json(&r->v[i]));
		copied += a->total.copied;
		present += a->total.present;
		failed += a->total.failed;
		bytes += a->total.bytes;
	}
	json_object_set_new(totals, "accounts", json_integer((json_int_t)r->n));
	json_object_set_new(totals, "ok", json_integer(r->ok));
	json_object_set_new(totals, "partial", json_integer(r->partial));
	json_object_set_new(totals, "failed", json_integer(r->failed));
	json_object_set_new(totals, "skipped", json_integer(r->skipped));
	json_object_set_new(totals, "messages_copied", json_integer(copied));
	json_object_set_new(totals, "messages_present", json_integer(present));
	json_object_set_new(totals, "messages_failed", json_integer(failed));
	json_object_set_new(totals, "bytes", json_integer((json_int_t)bytes));
	json_object_set_new(root, "job", j);
	json_object_set_new(root, "accounts", accounts);
	json_object_set_new(root, "totals", totals);
	ret = write_atomic(path, write_json, root, err);
	json_decref(root);
	return ret;
}

static void csv_field(FILE *f, const char *s, bool last)
{
	csv_fwrite(f, s, strlen(s));
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
		csv_field(f, it->started && a->status == ACCOUNT_FAILED ? a->err.msg : "", false);
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
