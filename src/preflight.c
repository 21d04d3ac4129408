/* preflight: see include/preflight.h */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "log.h"
#include "preflight.h"
#include "report.h"
#include "store.h"
#include "text.h"

struct pf {
	const struct run_env *env;
	const struct run_account *acc;
	struct preflight_item *items;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int add_size(const struct store_msg *m, void *ctx)
{
	struct preflight_item *it = ctx;

	it->messages++;
	it->bytes += m->size;
	return 0;
}

static int count_source(const struct run_env *env, struct store *src,
			struct preflight_item *it, struct tr_error *err)
{
	struct store_set all = store_set_from(1);
	struct folder_list l;
	size_t i;
	int r = 0;

	if (store_list(src, &l, err) < 0) {
		folder_list_free(&l);
		return -1;
	}
	for (i = 0; i < l.n && r == 0; i++) {
		const struct folder *f = &l.v[i];
		struct store_status st;

		if (f->noselect || !folder_filter_match(&env->map.filter, f->name ? f->name : f->raw))
			continue;
		it->folders++;
		r = store_open_folder(src, f->raw, true, &st, err);
		if (r == 0 && st.messages > 0)
			r = store_fetch_meta(src, &all, STORE_FETCH_META, 0, add_size, it, err);
	}
	folder_list_free(&l);
	return r;
}

/* The destination's session, and what a refused login says of the
 * account: through the admin, a refusal means that no such user exists
 * (the admin's password being right is what the other accounts show);
 * with the user's own password the server does not tell the two apart. */
static int open_dst(const struct run_env *env, const struct run_account *acc,
		    struct preflight_item *it, struct store **dst)
{
	if (run_open(env, acc, false, dst, &it->err) == 0) {
		it->dst_account = PREFLIGHT_DST_EXISTS;
		return 0;
	}
	if (it->err.kind == TR_ERR_AUTH) {
		/* Dovecot answers a master login for a missing user with
		 * [AUTHORIZATIONFAILED], one with a wrong master password with
		 * [AUTHENTICATIONFAILED]: only the first says the user is missing
		 * (other servers may say either: the second stays undecided) */
		bool wrong_pw = strcmp(it->err.code, "AUTHENTICATIONFAILED") == 0;

		if (env->dst_admin != NULL && !wrong_pw) {
			it->dst_account = PREFLIGHT_DST_MISSING;
			tr_error_prefix(&it->err, "not on the destination yet (the admin's login as "
					"this user was refused)");
		} else {
			it->dst_account = PREFLIGHT_DST_NO_LOGIN;
			tr_error_prefix(&it->err, "%s", env->dst_admin != NULL ?
					"cannot log in to the destination: no such user, or the "
					"admin's password is wrong" :
					"cannot log in to the destination: missing or wrong password");
		}
	}
	return -1;
}

static void check_one(size_t i, void *ctx)
{
	struct pf *pf = ctx;
	const struct run_env *env = pf->env;
	const struct run_account *acc = &pf->acc[i];
	struct preflight_item *it = &pf->items[i];
	struct store *src = NULL, *dst = NULL;
	double t0 = now_s();
	int q;

	it->acc = acc;
	if (env->cfg != NULL && (env->cfg->show_folders || env->cfg->dry_run)) {
		/* the plan needs both sides' folders at once */
		if (run_open(env, acc, true, &src, &it->err) < 0 ||
		    open_dst(env, acc, it, &dst) < 0)
			goto out;
		it->have_plan = true;
		if (preview_account(env, src, dst, &it->plan, &it->err) < 0)
			goto out;
		it->folders = it->plan.folders;
		it->messages = (uint32_t)it->plan.messages;
		it->bytes = it->plan.bytes;
		run_close(env, acc, true, &src);
	} else {
		if (run_open(env, acc, true, &src, &it->err) < 0 ||
		    count_source(env, src, it, &it->err) < 0)
			goto out;
		run_close(env, acc, true, &src);
		if (open_dst(env, acc, it, &dst) < 0)
			goto out;
	}
	q = store_quota(dst, &it->quota_used, &it->quota_limit, &it->err);
	if (q < 0)
		goto out;
	it->quota_known = q > 0;
	it->quota_used *= 1024;
	it->quota_limit *= 1024;
	it->fits = !it->quota_known || it->quota_limit == 0 ||
		   it->quota_used + it->bytes <= it->quota_limit;
	it->ok = it->fits;
out:
	run_close(env, acc, true, &src);
	run_close(env, acc, false, &dst);
	it->seconds = now_s() - t0;
	run_redact(env, acc, it->err.msg, sizeof(it->err.msg));
	if (it->err.kind != TR_ERR_NONE)
		log_error(acc->label, "%s", it->err.msg);
	else
		log_info(acc->label, "%u folders, %u messages, %" PRIu64 " bytes%s", it->folders,
			 it->messages, it->bytes, it->fits ? "" : ": will not fit");
}

int preflight_run(const struct run_env *env, const struct run_account *acc, size_t n,
		  struct preflight_item **items_r)
{
	struct pf pf = { .env = env, .acc = acc };
	size_t i;
	int ok = 0;

	pf.items = calloc(n + 1, sizeof(*pf.items));
	*items_r = pf.items;
	if (pf.items == NULL)
		return -1;
	for (i = 0; i < n; i++)
		pf.items[i].acc = &acc[i];
	sched_run(n, env->parallel_accounts, check_one, &pf, NULL);
	for (i = 0; i < n; i++)
		if (pf.items[i].ok)
			ok++;
	return (size_t)ok == n ? 0 : -1;
}

void preflight_items_free(struct preflight_item *items, size_t n)
{
	size_t i;

	if (items == NULL)
		return;
	for (i = 0; i < n; i++)
		preview_free(&items[i].plan);
	free(items);
}

static const char *item_status(const struct preflight_item *it)
{
	if (it->err.kind != TR_ERR_NONE || it->acc == NULL)
		return "failed";
	return it->fits ? "ok" : "will_not_fit";
}

static const char *dst_account_name(enum preflight_dst d)
{
	switch (d) {
	case PREFLIGHT_DST_EXISTS: return "exists";
	case PREFLIGHT_DST_MISSING: return "missing";
	case PREFLIGHT_DST_NO_LOGIN: return "missing_or_wrong_password";
	case PREFLIGHT_DST_UNKNOWN: break;
	}
	return NULL;
}

/* "3 account(s) WHAT: a@x, b@x, c@x" when there are any. */
static void missing_list(FILE *f, const struct preflight_item *items, size_t n,
			 enum preflight_dst which, const char *what)
{
	char t[1024];
	size_t i, k = 0;

	for (i = 0; i < n; i++)
		if (items[i].dst_account == which)
			k++;
	if (k == 0)
		return;
	fprintf(f, "%zu account(s) %s:", k, what);
	for (i = 0; i < n; i++)
		if (items[i].dst_account == which)
			fprintf(f, " %s", text_clean_str(t, sizeof(t), items[i].acc->label, NULL));
	fputc('\n', f);
}

void preflight_print(FILE *f, const struct preflight_item *items, size_t n)
{
	char b1[32], b2[32], b3[32], t[4 * sizeof(items->err.msg) + 1];
	uint64_t bytes = 0;
	uint32_t msgs = 0, ok = 0, failed = 0, nofit = 0;
	size_t i;

	for (i = 0; i < n; i++)
		if (items[i].have_plan && items[i].err.kind == TR_ERR_NONE) {
			preview_print(f, items[i].acc->label, &items[i].plan);
			fputc('\n', f);
		}
	fprintf(f, "%-40s %-13s %8s %9s %10s  %s\n", "account", "status", "folders", "messages",
		"bytes", "destination quota");
	for (i = 0; i < n; i++) {
		const struct preflight_item *it = &items[i];
		char quota[96] = "-";

		if (it->quota_known)
			snprintf(quota, sizeof(quota), "%s used of %s",
				 report_bytes(it->quota_used, b2, sizeof(b2)),
				 report_bytes(it->quota_limit, b3, sizeof(b3)));
		fprintf(f, "%-40s %-13s %8u %9u %10s  %s\n",
			text_clean_str(t, sizeof(t), it->acc->label, NULL), item_status(it),
			it->folders, it->messages, report_bytes(it->bytes, b1, sizeof(b1)), quota);
		if (it->err.kind != TR_ERR_NONE)
			fprintf(f, "    error: %s\n", text_clean_str(t, sizeof(t), it->err.msg, NULL));
		bytes += it->bytes;
		msgs += it->messages;
		if (it->err.kind != TR_ERR_NONE)
			failed++;
		else if (!it->fits)
			nofit++;
		else
			ok++;
	}
	fprintf(f, "%zu account(s): %u ready, %u will fail, %u will not fit; %u messages, %s "
		"to copy\n", n, ok, failed, nofit, msgs, report_bytes(bytes, b1, sizeof(b1)));
	missing_list(f, items, n, PREFLIGHT_DST_MISSING,
		     "not on the destination yet (provision them first)");
	missing_list(f, items, n, PREFLIGHT_DST_NO_LOGIN,
		     "cannot log in to the destination: missing or wrong password");
}

int preflight_json(const char *path, const struct preflight_item *items, size_t n,
		   struct tr_error *err)
{
	json_t *root = json_object(), *arr = json_array();
	bool ok = true;
	size_t i;
	int r;

	for (i = 0; i < n; i++) {
		const struct preflight_item *it = &items[i];
		json_t *o = json_object();

		report_json_set(o, "email", report_json_text(it->acc->label), &ok);
		report_json_set(o, "status", json_string(item_status(it)), &ok);
		report_json_set(o, "error", it->err.kind != TR_ERR_NONE
				? report_json_text(it->err.msg) : json_null(), &ok);
		report_json_set(o, "destination_account",
				dst_account_name(it->dst_account) != NULL ?
				json_string(dst_account_name(it->dst_account)) : json_null(), &ok);
		report_json_set(o, "folders", json_integer(it->folders), &ok);
		report_json_set(o, "messages", json_integer(it->messages), &ok);
		report_json_set(o, "bytes", json_integer((json_int_t)it->bytes), &ok);
		report_json_set(o, "quota_used", it->quota_known
				? json_integer((json_int_t)it->quota_used) : json_null(), &ok);
		report_json_set(o, "quota_limit", it->quota_known
				? json_integer((json_int_t)it->quota_limit) : json_null(), &ok);
		if (it->have_plan) {
			json_t *plan = it->err.kind == TR_ERR_NONE ? preview_json(&it->plan)
								   : json_array();

			if (plan == NULL)
				ok = false;
			report_json_set(o, "excluded", json_integer(it->plan.excluded), &ok);
			report_json_set(o, "destination_messages",
					json_integer((json_int_t)it->plan.dst_messages), &ok);
			report_json_set(o, "folders_plan", plan, &ok);
		}
		report_json_append(arr, o, &ok);
	}
	report_json_set(root, "accounts", arr, &ok);
	r = report_write_json(path, root, ok, err);
	json_decref(root);
	return r;
}

