/* queue_status: a queue's status as text or JSON, from any backend's rows
 * (see include/queue_status.h). */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "queue_status.h"
#include "report.h"
#include "text.h"

static const char *const a_names[QUEUE_A_N] = { "pending", "running", "ok", "partial",
						"failed", "cancelled" };

void queue_rows_free(struct queue_rows *r)
{
	size_t i;

	if (r == NULL)
		return;
	for (i = 0; i < r->n_jobs; i++) {
		free(r->jobs[i].name);
		free(r->jobs[i].src);
		free(r->jobs[i].dst);
		free(r->jobs[i].created);
		free(r->jobs[i].skipped);
		free(r->jobs[i].pass);
		free(r->jobs[i].next_at);
		free(r->jobs[i].last_pass);
		free(r->jobs[i].errors);
	}
	for (i = 0; i < r->n_accounts; i++) {
		free(r->accounts[i].email);
		free(r->accounts[i].state);
		free(r->accounts[i].worker);
		free(r->accounts[i].error);
		free(r->accounts[i].pass);
		free(r->accounts[i].error_kind);
	}
	for (i = 0; i < r->n_workers; i++) {
		free(r->workers[i].id);
		free(r->workers[i].host);
		free(r->workers[i].egress);
	}
	free(r->jobs);
	free(r->accounts);
	free(r->workers);
	memset(r, 0, sizeof(*r));
}

/* What a job row implies: its pace and what is left. */
struct job_pace {
	double rate, bytes_rate;        /* per second */
	long long eta;                  /* -1: not known yet */
};

static void job_pace(const struct queue_job_row *j, struct job_pace *p)
{
	long long left = j->acc[QUEUE_A_PENDING] + j->acc[QUEUE_A_RUNNING],
		  done = j->acc[QUEUE_A_OK] + j->acc[QUEUE_A_PARTIAL] + j->acc[QUEUE_A_FAILED];

	memset(p, 0, sizeof(*p));
	if (j->seconds > 0) {
		p->rate = (double)j->copied / j->seconds;
		p->bytes_rate = (double)j->bytes / j->seconds;
	}
	/* from the pace at which accounts finished so far: crude while the
	 * first ones run, better as more of them end */
	if (left == 0 || j->cancelled)
		p->eta = 0;
	else if (done == 0 || j->seconds <= 0)
		p->eta = -1;
	else
		p->eta = (long long)(j->seconds * (double)left / (double)done + 0.5);
}

static long long total_of(const struct queue_job_row *j)
{
	long long t = 0;
	int k;

	for (k = 0; k < QUEUE_A_N; k++)
		t += j->acc[k];
	return t;
}

/* A final pass was asked and every account has done it. */
static bool finished(const struct queue_job_row *j)
{
	return j->final && !j->cancelled && j->acc[QUEUE_A_PENDING] + j->acc[QUEUE_A_RUNNING] == 0;
}

/* The latest pass is over: none of the job's accounts is left to do
 * (a cancelled job's pass ends with it). */
static bool pass_ended(const struct queue_job_row *j)
{
	return j->acc[QUEUE_A_PENDING] + j->acc[QUEUE_A_RUNNING] == 0 && total_of(j) > 0;
}

static const char *job_state(const struct queue_job_row *j)
{
	long long finished = j->acc[QUEUE_A_OK] + j->acc[QUEUE_A_PARTIAL] + j->acc[QUEUE_A_FAILED];

	if (j->cancelled)
		return "cancelled";
	if (j->acc[QUEUE_A_RUNNING] == 0 && finished == 0)
		return j->acc[QUEUE_A_PENDING] > 0 ? "queued" : "cancelled";
	if (j->acc[QUEUE_A_RUNNING] > 0 || j->acc[QUEUE_A_PENDING] > 0)
		return "running";
	if (j->acc[QUEUE_A_OK] == total_of(j))
		return "done";
	if (j->acc[QUEUE_A_FAILED] == total_of(j))
		return "failed";
	return "partial";
}

static const char *duration(long long s, char *buf, size_t len)
{
	if (s < 0)
		snprintf(buf, len, "unknown yet");
	else if (s >= 3600)
		snprintf(buf, len, "%lldh %02lldm", s / 3600, s / 60 % 60);
	else if (s >= 60)
		snprintf(buf, len, "%lldm %02llds", s / 60, s % 60);
	else
		snprintf(buf, len, "%llds", s);
	return buf;
}

/* ---- JSON ---------------------------------------------------------------------- */

static json_t *side_json(const struct queue_job_row *j, int side, bool *ok)
{
	json_t *o = json_object();

	report_json_set(o, "in_use", json_integer(j->in_use[side]), ok);
	report_json_set(o, "cap", json_integer(j->cap[side]), ok);
	report_json_set(o, "per_account", json_integer(j->per_account[side]), ok);
	report_json_set(o, "limit_refusals", json_integer(j->refused[side]), ok);
	return o;
}

static json_t *account_json(const struct queue_account_row *a, bool *ok)
{
	json_t *o = json_object();

	report_json_set(o, "email", report_json_text(a->email), ok);
	report_json_set(o, "state", json_string(a->state), ok);
	report_json_set(o, "worker", report_json_text(a->worker), ok);
	report_json_set(o, "error", report_json_text(a->error), ok);
	report_json_set(o, "copied", json_integer(a->copied), ok);
	report_json_set(o, "present", json_integer(a->present), ok);
	report_json_set(o, "failed", json_integer(a->failed), ok);
	report_json_set(o, "bytes", json_integer(a->bytes), ok);
	report_json_set(o, "folders_done", json_integer(a->folders_done), ok);
	report_json_set(o, "folders_total", json_integer(a->folders_total), ok);
	report_json_set(o, "attempts", json_integer(a->attempts), ok);
	report_json_set(o, "takeovers", json_integer(a->takeovers), ok);
	report_json_set(o, "seconds", json_real(a->seconds), ok);
	report_json_set(o, "line", json_integer(a->line), ok);
	report_json_set(o, "pass", json_string(a->pass != NULL ? a->pass : "run"), ok);
	report_json_set(o, "verify_exact", a->verify_exact < 0 ? json_null() :
			json_boolean(a->verify_exact > 0), ok);
	report_json_set(o, "error_kind", a->error_kind != NULL ? json_string(a->error_kind) :
			json_null(), ok);
	report_json_set(o, "limit_refusals", json_integer(a->refused), ok);
	return o;
}

static json_t *job_json(const struct queue_job_row *j, const struct queue_rows *r, bool *ok)
{
	json_t *o = json_object(), *acc = json_object(), *ses = json_object(), *sk;
	struct job_pace p;
	int k;

	job_pace(j, &p);
	report_json_set(o, "id", json_integer(j->id), ok);
	report_json_set(o, "name", report_json_text(j->name), ok);
	report_json_set(o, "state", json_string(job_state(j)), ok);
	report_json_set(o, "created", json_string(j->created), ok);
	report_json_set(o, "src", report_json_text(j->src), ok);
	report_json_set(o, "dst", report_json_text(j->dst), ok);
	for (k = 0; k < QUEUE_A_N; k++)
		report_json_set(acc, a_names[k], json_integer(j->acc[k]), ok);
	report_json_set(acc, "total", json_integer(total_of(j)), ok);
	report_json_set(o, "accounts", acc, ok);
	report_json_set(o, "messages", json_integer((json_int_t)j->copied), ok);
	report_json_set(o, "messages_present", json_integer((json_int_t)j->present), ok);
	report_json_set(o, "messages_failed", json_integer((json_int_t)j->failed), ok);
	report_json_set(o, "bytes", json_integer((json_int_t)j->bytes), ok);
	report_json_set(o, "seconds", json_real(j->seconds), ok);
	report_json_set(o, "rate", json_real(p.rate), ok);
	report_json_set(o, "bytes_per_second", json_real(p.bytes_rate), ok);
	report_json_set(o, "eta_seconds", p.eta < 0 ? json_null() : json_integer(p.eta), ok);
	report_json_set(ses, "src", side_json(j, 0, ok), ok);
	report_json_set(ses, "dst", side_json(j, 1, ok), ok);
	report_json_set(o, "sessions", ses, ok);
	report_json_set(o, "caps_per_egress", json_boolean(j->per_egress), ok);
	{
		json_t *ps = json_object();

		report_json_set(ps, "current", json_string(j->pass != NULL ? j->pass : "run"), ok);
		report_json_set(ps, "count", json_integer(j->passes), ok);
		report_json_set(ps, "every_seconds", j->every > 0 ? json_integer(j->every) :
				json_null(), ok);
		report_json_set(ps, "next_at", j->next_at != NULL ? json_string(j->next_at) :
				json_null(), ok);
		report_json_set(ps, "final", json_boolean(j->final), ok);
		report_json_set(ps, "finished", json_boolean(finished(j)), ok);
		report_json_set(ps, "current_seconds", json_real(j->pass_seconds), ok);
		if (pass_ended(j)) {
			report_json_set(ps, "last_pass_kind", json_string(j->pass != NULL ?
									  j->pass : "run"), ok);
			report_json_set(ps, "last_pass_seconds", json_real(j->pass_seconds), ok);
		} else {
			report_json_set(ps, "last_pass_kind", j->last_pass != NULL ?
					json_string(j->last_pass) : json_null(), ok);
			report_json_set(ps, "last_pass_seconds", j->last_pass != NULL ?
					json_real(j->last_pass_seconds) : json_null(), ok);
		}
		report_json_set(o, "passes", ps, ok);
	}
	{
		json_t *e = j->errors != NULL ? json_loads(j->errors, 0, NULL) : NULL;

		if (!json_is_object(e)) {
			json_decref(e);
			e = json_object();
		}
		report_json_set(o, "errors", e, ok);
	}
	report_json_set(o, "limit_refusals", json_integer(j->refused[0] + j->refused[1]), ok);
	sk = json_loads(j->skipped != NULL ? j->skipped : "[]", 0, NULL);
	report_json_set(o, "skipped", sk != NULL ? sk : json_array(), ok);
	if (r->with_accounts) {
		json_t *list = json_array();
		size_t i;

		for (i = 0; i < r->n_accounts; i++)
			report_json_append(list, account_json(&r->accounts[i], ok), ok);
		report_json_set(o, "account_list", list, ok);
	}
	return o;
}

static json_t *workers_json(const struct queue_rows *r, bool *ok)
{
	json_t *list = json_array();
	size_t i;

	for (i = 0; i < r->n_workers; i++) {
		const struct queue_worker_row *w = &r->workers[i];
		json_t *o = json_object();

		report_json_set(o, "id", report_json_text(w->id), ok);
		report_json_set(o, "host", report_json_text(w->host), ok);
		report_json_set(o, "pid", json_integer(w->pid), ok);
		report_json_set(o, "egress", report_json_text(w->egress), ok);
		report_json_set(o, "parallel", json_integer(w->parallel), ok);
		report_json_set(o, "seen_seconds_ago", json_integer(w->seen_ago), ok);
		report_json_set(o, "running", json_integer(w->running), ok);
		report_json_append(list, o, ok);
	}
	return list;
}

/* ---- text ---------------------------------------------------------------------- */

static void print_text(FILE *f, const char *s)
{
	char *c = text_clean_dup(s != NULL ? s : "-", NULL);

	fputs(c != NULL ? c : "?", f);
	free(c);
}

static void workers_print(FILE *f, const struct queue_rows *r)
{
	size_t i;

	fprintf(f, "workers: %zu live\n", r->n_workers);
	for (i = 0; i < r->n_workers; i++) {
		const struct queue_worker_row *w = &r->workers[i];

		fputs("  ", f);
		print_text(f, w->id);
		if (w->egress != NULL && w->egress[0] != '\0') {
			fputs(" (egress ", f);
			print_text(f, w->egress);
			fputc(')', f);
		}
		fprintf(f, ": %lld running of %lld, seen %llds ago\n", w->running, w->parallel,
			w->seen_ago);
	}
}

static void job_print(FILE *f, const struct queue_job_row *j, const struct queue_rows *r)
{
	char b1[32], b2[32], d1[32], d2[32];
	struct job_pace p;
	size_t i;
	int k;

	job_pace(j, &p);
	fprintf(f, "job %" PRId64 " \"", j->id);
	print_text(f, j->name);
	fprintf(f, "\": %s (submitted %s), from ", job_state(j), j->created);
	print_text(f, j->src);
	fputs(" to ", f);
	print_text(f, j->dst);
	fprintf(f, "\n  accounts %lld:", total_of(j));
	for (k = 0; k < QUEUE_A_N; k++)
		if (j->acc[k] > 0 || k <= QUEUE_A_FAILED)
			fprintf(f, "%s %lld %s", k > 0 ? "," : "", j->acc[k], a_names[k]);
	fprintf(f, "\n  messages %" PRIu64 " copied, %" PRIu64 " already there, %" PRIu64
		" failed; %s in %s; %.1f messages/s, %s/s; ETA %s\n", j->copied, j->present,
		j->failed, report_bytes(j->bytes, b1, sizeof(b1)),
		duration((long long)j->seconds, d1, sizeof(d1)), p.rate,
		report_bytes((uint64_t)p.bytes_rate, b2, sizeof(b2)),
		p.eta == 0 && (j->cancelled ||
			       j->acc[QUEUE_A_PENDING] + j->acc[QUEUE_A_RUNNING] == 0) ? "-" :
		duration(p.eta, d2, sizeof(d2)));
	fprintf(f, "  sessions: source %lld of %lld (%lld per account%s), destination %lld of "
		"%lld (%lld per account%s)\n", j->in_use[0], j->cap[0], j->per_account[0],
		j->per_egress ? " and egress" : "", j->in_use[1], j->cap[1], j->per_account[1],
		j->per_egress ? " and egress" : "");
	fprintf(f, "  passes: %lld so far, the latest %s", j->passes,
		j->pass != NULL ? j->pass : "run");
	if (finished(j))
		fputs("; finished (final pass done)\n", f);
	else if (j->final)
		fputs("; final pass under way\n", f);
	else if (j->every > 0)
		fprintf(f, "; delta every %s, next at %s (once every account has finished)\n",
			duration(j->every, d1, sizeof(d1)), j->next_at != NULL ? j->next_at : "?");
	else
		fputs("; none scheduled\n", f);
	{
		json_t *e = j->errors != NULL ? json_loads(j->errors, 0, NULL) : NULL, *v;
		const char *kind;
		bool first = true;

		json_object_foreach(e, kind, v) {
			fprintf(f, "%s%s %" JSON_INTEGER_FORMAT, first ? "  errors by kind: " : ", ",
				kind, json_integer_value(v));
			first = false;
		}
		if (!first)
			fputc('\n', f);
		json_decref(e);
	}
	if (pass_ended(j))
		fprintf(f, "  the latest pass took %s\n",
			duration((long long)(j->pass_seconds + 0.5), d1, sizeof(d1)));
	else if (j->last_pass != NULL)
		fprintf(f, "  the latest pass has run %s so far; the last finished one (%s) took "
			"%s\n", duration((long long)(j->pass_seconds + 0.5), d1, sizeof(d1)),
			j->last_pass, duration((long long)(j->last_pass_seconds + 0.5), d2,
					       sizeof(d2)));
	else
		fprintf(f, "  the latest pass has run %s so far\n",
			duration((long long)(j->pass_seconds + 0.5), d1, sizeof(d1)));
	if (j->refused[0] + j->refused[1] > 0)
		fprintf(f, "  sessions refused for a limit: %lld by the source, %lld by the "
			"destination\n", j->refused[0], j->refused[1]);
	{
		json_t *sk = json_loads(j->skipped != NULL ? j->skipped : "[]", 0, NULL);
		size_t n = json_array_size(sk);

		if (n > 0 && !r->with_accounts)
			fprintf(f, "  %zu row(s) of the CSV skipped (`queue status JOB` lists them)\n",
				n);
		for (i = 0; r->with_accounts && i < n; i++) {
			json_t *e = json_array_get(sk, i);

			fputs("  skipped ", f);
			print_text(f, json_string_value(json_object_get(e, "what")));
			fputc('\n', f);
		}
		json_decref(sk);
	}
	for (i = 0; r->with_accounts && i < r->n_accounts; i++) {
		const struct queue_account_row *a = &r->accounts[i];

		fputs("  ", f);
		print_text(f, a->email);
		fprintf(f, "  %s", a->state);
		if (a->worker != NULL) {
			fputs(strcmp(a->state, "running") == 0 ? " on " : " by ", f);
			print_text(f, a->worker);
		}
		if (a->pass != NULL && strcmp(a->pass, "run") != 0)
			fprintf(f, " (%s)", a->pass);
		fprintf(f, "  copied %lld, present %lld, failed %lld, %s, folders %lld/%lld, "
			"attempt %lld", a->copied, a->present, a->failed,
			report_bytes((uint64_t)a->bytes, b1, sizeof(b1)), a->folders_done,
			a->folders_total, a->attempts);
		if (a->takeovers > 0)
			fprintf(f, " (%lld takeover(s))", a->takeovers);
		if (a->verify_exact >= 0)
			fputs(a->verify_exact > 0 ? ", verified exact" : ", verified: not exact", f);
		if (a->error != NULL) {
			fputs(": ", f);
			print_text(f, a->error);
		}
		fputc('\n', f);
	}
}

json_t *queue_status_doc(const struct queue_rows *r)
{
	json_t *root = json_object(), *list = json_array();
	bool ok = true;
	size_t i;

	for (i = 0; i < r->n_jobs; i++)
		report_json_append(list, job_json(&r->jobs[i], r, &ok), &ok);
	report_json_set(root, "jobs", list, &ok);
	if (r->with_workers)
		report_json_set(root, "workers", workers_json(r, &ok), &ok);
	if (!ok) {
		json_decref(root);
		return NULL;
	}
	return root;
}

int queue_status_write(const struct queue_rows *r, bool json, FILE *out, struct tr_error *err)
{
	size_t i;

	if (json) {
		json_t *root = queue_status_doc(r);
		char *doc;

		doc = root != NULL ? json_dumps(root, JSON_INDENT(2)) : NULL;
		json_decref(root);
		if (doc == NULL) {
			tr_error_set(err, TR_ERR_LOCAL, "out of memory");
			return -1;
		}
		fprintf(out, "%s\n", doc);
		free(doc);
	} else {
		for (i = 0; i < r->n_jobs; i++)
			job_print(out, &r->jobs[i], r);
		if (r->n_jobs == 0)
			fprintf(out, "no job in the queue\n");
		if (r->with_workers)
			workers_print(out, r);
	}
	if (fflush(out) != 0 || ferror(out)) {
		tr_error_set(err, TR_ERR_LOCAL, "cannot write the status: %s", strerror(errno));
		return -1;
	}
	return 0;
}

/* ---- one account ---------------------------------------------------------------- */

void queue_detail_free(struct queue_detail *d)
{
	size_t i;

	if (d == NULL)
		return;
	for (i = 0; i < d->n_folders; i++) {
		free(d->folders[i].src);
		free(d->folders[i].dst);
		free(d->folders[i].status);
		free(d->folders[i].error);
	}
	for (i = 0; i < d->n_failures; i++) {
		free(d->failures[i].folder);
		free(d->failures[i].reply);
	}
	free(d->folders);
	free(d->failures);
	free(d->email);
	free(d->status);
	free(d->pass);
	free(d->error);
	free(d->worker);
	free(d->started);
	free(d->finished);
	free(d->verify);
	free(d->verify_at);
	memset(d, 0, sizeof(*d));
}

static json_t *time_or_null(const char *t)
{
	return t != NULL ? json_string(t) : json_null();
}

json_t *queue_detail_json(const struct queue_detail *d)
{
	json_t *o = json_object(), *fl = json_array(), *fa = json_array(), *v;
	bool ok = o != NULL;
	size_t i;

	report_json_set(o, "job", json_integer(d->job), &ok);
	report_json_set(o, "email", report_json_text(d->email != NULL ? d->email : ""), &ok);
	report_json_set(o, "status", json_string(d->status), &ok);
	report_json_set(o, "pass", json_string(d->pass != NULL ? d->pass : "run"), &ok);
	report_json_set(o, "error", report_json_text(d->error), &ok);
	report_json_set(o, "folders_done", json_integer(d->folders_done), &ok);
	report_json_set(o, "folders_total", json_integer(d->folders_total), &ok);
	report_json_set(o, "messages_copied", json_integer(d->copied), &ok);
	report_json_set(o, "messages_present", json_integer(d->present), &ok);
	report_json_set(o, "messages_failed", json_integer(d->failed), &ok);
	report_json_set(o, "bytes", json_integer(d->bytes), &ok);
	report_json_set(o, "seconds", json_real(d->seconds), &ok);
	report_json_set(o, "attempts", json_integer(d->attempts), &ok);
	report_json_set(o, "takeovers", json_integer(d->takeovers), &ok);
	report_json_set(o, "worker", report_json_text(d->worker), &ok);
	report_json_set(o, "started", time_or_null(d->started), &ok);
	report_json_set(o, "finished", time_or_null(d->finished), &ok);
	for (i = 0; i < d->n_folders; i++) {
		const struct queue_folder_row *r = &d->folders[i];
		json_t *f = json_object();

		report_json_set(f, "src", report_json_text(r->src != NULL ? r->src : ""), &ok);
		report_json_set(f, "dst", report_json_text(r->dst != NULL ? r->dst : ""), &ok);
		report_json_set(f, "status", json_string(r->status), &ok);
		report_json_set(f, "messages_copied", json_integer(r->copied), &ok);
		report_json_set(f, "messages_present", json_integer(r->present), &ok);
		report_json_set(f, "messages_failed", json_integer(r->failed), &ok);
		report_json_set(f, "bytes", json_integer(r->bytes), &ok);
		report_json_set(f, "error", report_json_text(r->error), &ok);
		report_json_append(fl, f, &ok);
	}
	report_json_set(o, "folders", fl, &ok);
	for (i = 0; i < d->n_failures; i++) {
		const struct queue_failure_row *r = &d->failures[i];
		json_t *f = json_object();

		report_json_set(f, "folder", report_json_text(r->folder != NULL ? r->folder : ""),
				&ok);
		report_json_set(f, "uid", json_integer(r->uid), &ok);
		report_json_set(f, "reply", report_json_text(r->reply), &ok);
		report_json_append(fa, f, &ok);
	}
	report_json_set(o, "failures", fa, &ok);
	report_json_set(o, "failures_more", json_integer(d->failures_more), &ok);
	v = d->verify != NULL ? json_loads(d->verify, 0, NULL) : NULL;
	if (v != NULL && json_is_object(v)) {
		json_t *full = json_object();

		report_json_set(full, "at", time_or_null(d->verify_at), &ok);
		report_json_set(full, "exact", json_boolean(d->verify_exact), &ok);
		if (json_object_update(full, v) != 0)
			ok = false;
		report_json_set(o, "verify", full, &ok);
	} else {
		report_json_set(o, "verify", json_null(), &ok);
	}
	json_decref(v);
	if (!ok) {
		json_decref(o);
		return NULL;
	}
	return o;
}
