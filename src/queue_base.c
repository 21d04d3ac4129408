/* queue_base: what the queue's front (queue.c) and its backends
 * (queue_pg.c, queue_sqlite.c) share that is not SQL: the associated data
 * of sealed values, job numbers and the "no such job" error, the names of
 * passes and the reading of intervals, the stored verify document, and a
 * claim's release.  Declared in queue.h (the public ones) and
 * queue_backend.h (the backends'); a file of its own so that the backends
 * never call back into the front that calls them (no loop). */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "queue.h"
#include "queue_backend.h"
#include "report.h"
#include "secret.h"
#include "text.h"
#include "verify.h"

/* ---- shared by the backends ----------------------------------------------------- */

const struct queue_admin_col queue_admin_cols[2] = {
	{ "admin_password", "admin" },
	{ "src_admin_password", "src_admin" },
};

void queue_aad(char *buf, size_t len, int64_t job, const char *email, const char *what)
{
	if (email == NULL)
		snprintf(buf, len, "job %" PRId64 " %s", job, what);
	else
		snprintf(buf, len, "job %" PRId64 " account %s %s", job, email, what);
}

int queue_job_number(const char *job, int64_t *id_r)
{
	size_t i;

	*id_r = 0;
	if (job == NULL || job[0] == '\0' || strlen(job) >= 19)
		return 0;
	for (i = 0; job[i] != '\0'; i++)
		if (job[i] < '0' || job[i] > '9')
			return 0;
	*id_r = strtoll(job, NULL, 10);
	return 1;
}

int queue_no_job(const char *job, const char *where, struct tr_error *err)
{
	char *c = text_clean_dup(job != NULL ? job : "", NULL);

	tr_error_set(err, TR_ERR_USAGE, "no job \"%s\" in the queue (%s)", c ? c : "?", where);
	free(c);
	return -1;
}

/* ---- pass kinds ----------------------------------------------------------------- */

static const char *const pass_names[] = { "run", "delta", "verify", "final", "final-verify" };

const char *queue_pass_name(enum queue_pass_kind k)
{
	return (size_t)k < sizeof(pass_names) / sizeof(pass_names[0]) ? pass_names[k] : "?";
}

bool queue_pass_copies(enum queue_pass_kind k)
{
	return k == QUEUE_PASS_RUN || k == QUEUE_PASS_DELTA || k == QUEUE_PASS_FINAL;
}

enum queue_pass_kind queue_pass_of(const char *s)
{
	size_t i;

	for (i = 0; s != NULL && i < sizeof(pass_names) / sizeof(pass_names[0]); i++)
		if (strcmp(s, pass_names[i]) == 0)
			return (enum queue_pass_kind)i;
	return QUEUE_PASS_RUN;
}

int queue_every_parse(const char *text, int *seconds_r, struct tr_error *err)
{
	const char *s = text;
	long long total = 0;
	bool any = false;

	*seconds_r = 0;
	while (s != NULL && *s != '\0') {
		long long v = 0, unit = 1;
		const char *d = s;

		while (*s >= '0' && *s <= '9' && v <= 100000000LL)
			v = v * 10 + (*s++ - '0');
		if (s == d || v > 100000000LL)
			break;
		switch (*s) {
		case 's': unit = 1; s++; break;
		case 'm': unit = 60; s++; break;
		case 'h': unit = 3600; s++; break;
		case 'd': unit = 86400; s++; break;
		case '\0': if (any) goto bad; break;   /* a bare number: seconds, alone */
		default: goto bad;
		}
		total += v * unit;
		any = true;
		if (total > 366LL * 86400)
			break;
	}
	if (s == NULL || *s != '\0' || !any || total < 1 || total > 366LL * 86400)
		goto bad;
	*seconds_r = (int)total;
	return 0;
bad:
	{
		char *c = text_clean_dup(text != NULL ? text : "", NULL);

		tr_error_set(err, TR_ERR_USAGE, "\"%s\" is not an interval: write it as 90, 30s, "
			     "15m, 6h, 1d or 2h30m (1 s to 366 days)", c != NULL ? c : "?");
		free(c);
	}
	return -1;
}

char *queue_verify_doc(const struct verify_item *it)
{
	json_t *o = json_object(), *mv = json_array();
	bool ok = o != NULL && mv != NULL, failed = it->err.kind != TR_ERR_NONE;
	size_t k;
	char *doc = NULL;

	report_json_set(o, "error", failed ? report_json_text(it->err.msg) : json_null(), &ok);
	report_json_set(o, "folders", json_integer(it->folders), &ok);
	report_json_set(o, "folders_missing", json_integer(it->folders_missing), &ok);
	report_json_set(o, "source_messages", json_integer(it->src_messages), &ok);
	report_json_set(o, "found", json_integer(it->found), &ok);
	report_json_set(o, "missing", json_integer(it->missing), &ok);
	report_json_set(o, "destination_only", json_integer(it->dst_only), &ok);
	report_json_set(o, "flags_differ", json_integer(it->flags_differ), &ok);
	report_json_set(o, "altered_by_destination", json_integer(it->altered), &ok);
	for (k = 0; ok && k < it->n && k < QUEUE_MISSING_KEPT; k++) {
		json_t *m = json_object();

		report_json_set(m, "folder", report_json_text(it->v[k].folder), &ok);
		report_json_set(m, "uid", json_integer(it->v[k].uid), &ok);
		report_json_set(m, "size", json_integer(it->v[k].size), &ok);
		report_json_set(m, "internaldate", report_json_text(it->v[k].date), &ok);
		report_json_append(mv, m, &ok);
	}
	report_json_set(o, "missing_messages", mv, &ok);
	report_json_set(o, "missing_more", json_integer(it->missing > k ? it->missing - k : 0), &ok);
	report_json_set(o, "seconds", json_real(it->seconds), &ok);
	if (ok)
		doc = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return doc;
}

/* ---- submit ------------------------------------------------------------------- */

/* Settings a queued job does not keep: its accounts and the admin
 * password are in the queue itself, its state is the queue's database
 * (the worker's DSN), its outcome is `queue status`, and a worker writes
 * its logs where it is told.  (The command layer says so to the user.) */
void queue_claim_free(struct queue_claim *c)
{
	if (c == NULL)
		return;
	free(c->email);
	free(c->src_user);
	free(c->dst_user);
	secret_free(c->password);
	secret_free(c->dst_password);
	memset(c, 0, sizeof(*c));
}

