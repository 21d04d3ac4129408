/* jobjson: a job as JSON into a job configuration (jobjson.h). */
#include "config.h"

#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobjson.h"
#include "queue.h"
#include "secret.h"
#include "text.h"

/* The JSON keys that are not job-file keys. */
#define K_CSV "accounts_csv"
#define K_ADMIN_PW "dst-admin-password"
#define K_NAME "name"

/* Keys a job names its accounts' logins with: `migrate`'s, not a job's. */
static bool migrate_only(const char *key)
{
	static const char *const v[] = { "user", "src-user", "dst-user", "src-password-file",
					 "dst-password-file" };
	size_t i;

	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		if (strcmp(v[i], key) == 0)
			return true;
	return false;
}

/* A key as it may be quoted in a message: cleaned, cut short. */
static void key_text(const char *key, char *buf, size_t len)
{
	char *c = text_clean_dup(key, NULL);

	snprintf(buf, len, "%.60s%s", c != NULL ? c : "?", c != NULL && strlen(c) > 60 ? "..." : "");
	free(c);
}

static int set_one(struct job_config *cfg, const struct jobconf_key *k, const char *value,
		   struct tr_error *err)
{
	static const struct jobconf_origin origin = { .from = JOBCONF_JOB_FILE, .dir = "/" };

	if (k->path != JOBCONF_NOT_PATH && value != NULL && value[0] != '/') {
		tr_error_set(err, TR_ERR_USAGE, "\"%s\": give an absolute path (the service's "
			     "working directory is not the caller's)", k->name);
		return -1;
	}
	if (jobconf_set(cfg, k->name, value, &origin, err) < 0) {
		if (err->kind != TR_ERR_LOCAL && strstr(err->msg, k->name) == NULL)
			tr_error_prefix(err, "\"%s\"", k->name);
		return -1;
	}
	return 0;
}

/* One value of key k: a string as it is, a number as its decimal text, a
 * boolean for a flag. */
static int set_value(struct job_config *cfg, const struct jobconf_key *k, json_t *v,
		     struct tr_error *err)
{
	char num[32];

	if (!k->takes_value) {
		if (!json_is_boolean(v)) {
			tr_error_set(err, TR_ERR_USAGE, "\"%s\" is a flag: give true or false",
				     k->name);
			return -1;
		}
		return json_is_true(v) ? set_one(cfg, k, NULL, err) : 0;
	}
	if (json_is_string(v)) {
		if (strlen(json_string_value(v)) != json_string_length(v)) {
			tr_error_set(err, TR_ERR_USAGE, "\"%s\": the value holds a NUL character",
				     k->name);
			return -1;
		}
		return set_one(cfg, k, json_string_value(v), err);
	}
	if (json_is_integer(v)) {
		snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		return set_one(cfg, k, num, err);
	}
	tr_error_set(err, TR_ERR_USAGE, "\"%s\" wants %s", k->name,
		     json_is_real(v) ? "a whole number or a string" : "a string or a number");
	return -1;
}

static int set_key(struct job_config *cfg, const char *key, json_t *v, struct tr_error *err)
{
	const struct jobconf_key *k = jobconf_key(key);
	char kt[80];
	size_t i;

	key_text(key, kt, sizeof(kt));
	if (k == NULL) {
		tr_error_set(err, TR_ERR_USAGE, "unknown key \"%s\" (the keys are those of a job "
			     "file, plus " K_CSV ", " K_ADMIN_PW " and " K_NAME ")", kt);
		return -1;
	}
	if (!queue_setting_kept(k->name) || migrate_only(k->name)) {
		tr_error_set(err, TR_ERR_USAGE, "\"%s\" is not taken by the API%s", k->name,
			     strcmp(k->name, "accounts") == 0 ? ": send the CSV's text as " K_CSV :
			     strcmp(k->name, "dst-admin-password-file") == 0 ?
			     ": send " K_ADMIN_PW :
			     migrate_only(k->name) ? ": logins and passwords come from " K_CSV :
			     " (a job's state, reports and logs are the service's)");
		return -1;
	}
	/* a command to run, a file to write on the workers' hosts: the
	 * operator's, never an API client's */
	if (strncmp(k->name, "provision", 9) == 0) {
		tr_error_set(err, TR_ERR_USAGE, "\"%s\" is not taken by the API (provisioning runs "
			     "commands and writes files on the workers' hosts: the operator's to "
			     "set, with trasloco queue submit)", k->name);
		return -1;
	}
	if (json_is_null(v)) {
		tr_error_set(err, TR_ERR_USAGE, "\"%s\": null is not a value (leave the key out)",
			     k->name);
		return -1;
	}
	if (k->repeats) {
		if (json_is_array(v)) {
			for (i = 0; i < json_array_size(v); i++) {
				json_t *e = json_array_get(v, i);

				if (!json_is_string(e)) {
					tr_error_set(err, TR_ERR_USAGE, "\"%s\": every element is "
						     "a string", k->name);
					return -1;
				}
				if (set_value(cfg, k, e, err) < 0)
					return -1;
			}
			return 0;
		}
		if (json_is_object(v) && strcmp(k->name, "map") == 0) {
			const char *from;
			json_t *to;

			json_object_foreach(v, from, to) {
				char *rule;
				int r;

				if (!json_is_string(to)) {
					tr_error_set(err, TR_ERR_USAGE, "\"map\": every new name is "
						     "a string");
					return -1;
				}
				if (asprintf(&rule, "%s=%s", from, json_string_value(to)) < 0) {
					tr_error_set(err, TR_ERR_LOCAL, "out of memory");
					return -1;
				}
				r = set_one(cfg, k, rule, err);
				free(rule);
				if (r < 0)
					return -1;
			}
			return 0;
		}
		if (!json_is_string(v)) {
			tr_error_set(err, TR_ERR_USAGE, "\"%s\" wants an array of strings%s", k->name,
				     strcmp(k->name, "map") == 0 ? " or an object" : "");
			return -1;
		}
	} else if (json_is_array(v) || json_is_object(v)) {
		tr_error_set(err, TR_ERR_USAGE, "\"%s\" takes one value, not %s", k->name,
			     json_is_array(v) ? "an array" : "an object");
		return -1;
	}
	return set_value(cfg, k, v, err);
}

/* Any string in the document wiped (the CSV and the admin password are
 * among them) before it is freed. */
static void wipe_strings(json_t *j)
{
	const char *key;
	json_t *v;
	size_t i;

	if (json_is_string(j)) {
		explicit_bzero((void *)json_string_value(j), json_string_length(j));
	} else if (json_is_object(j)) {
		json_object_foreach(j, key, v)
			wipe_strings(v);
	} else if (json_is_array(j)) {
		json_array_foreach(j, i, v)
			wipe_strings(v);
	}
}

static int take_string(json_t *doc, const char *key, char **out, struct tr_error *err)
{
	json_t *v = json_object_get(doc, key);

	*out = NULL;
	if (v == NULL)
		return 0;
	if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v)) {
		tr_error_set(err, TR_ERR_USAGE, "\"%s\" wants a string (without NUL characters)",
			     key);
		return -1;
	}
	if ((*out = strdup(json_string_value(v))) == NULL) {
		tr_error_set(err, TR_ERR_LOCAL, "out of memory");
		return -1;
	}
	return 0;
}

int jobjson_parse(const char *body, size_t len, struct job_config *cfg, struct job_accounts *ja,
		  char **admin_pw_r, char **name_r, struct tr_error *err)
{
	json_error_t je;
	json_t *doc, *v, *csv;
	const char *key;
	int r = -1;

	jobconf_init(cfg, JOB_RUN);
	memset(ja, 0, sizeof(*ja));
	*admin_pw_r = NULL;
	*name_r = NULL;
	if (len > JOBJSON_MAX_BODY) {
		tr_error_set(err, TR_ERR_USAGE, "the job is over %u bytes", JOBJSON_MAX_BODY);
		return -1;
	}
	/* JSON_ALLOW_NUL: a NUL inside a string is then refused by name below
	 * rather than as a parse error at some column */
	doc = json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &je);
	if (doc == NULL) {
		char *t = text_clean_dup(je.text, NULL);

		tr_error_set(err, TR_ERR_USAGE, "invalid JSON at line %d, column %d: %s", je.line,
			     je.column, t != NULL ? t : "?");
		free(t);
		return -1;
	}
	if (!json_is_object(doc)) {
		tr_error_set(err, TR_ERR_USAGE, "a job is a JSON object");
		goto out;
	}
	csv = json_object_get(doc, K_CSV);
	if (csv == NULL || !json_is_string(csv)) {
		tr_error_set(err, TR_ERR_USAGE, "\"" K_CSV "\" (the accounts CSV's text, a string) "
			     "is missing");
		goto out;
	}
	if (take_string(doc, K_ADMIN_PW, admin_pw_r, err) < 0 ||
	    take_string(doc, K_NAME, name_r, err) < 0)
		goto out;
	/* all digits would read as another job's id wherever a job is named
	 * (`queue status JOB`) */
	if (*name_r != NULL && ((*name_r)[0] == '\0' || strlen(*name_r) > 200 ||
				!text_is_clean(*name_r, strlen(*name_r)) ||
				strspn(*name_r, "0123456789") == strlen(*name_r))) {
		tr_error_set(err, TR_ERR_USAGE, "\"" K_NAME "\": 1 to 200 printable characters, "
			     "not all digits");
		goto out;
	}
	json_object_foreach(doc, key, v) {
		if (strcmp(key, K_CSV) == 0 || strcmp(key, K_ADMIN_PW) == 0 ||
		    strcmp(key, K_NAME) == 0)
			continue;
		if (set_key(cfg, key, v, err) < 0)
			goto out;
	}
	if (cfg->src.host == NULL || cfg->dst.host == NULL) {
		tr_error_set(err, TR_ERR_USAGE, "\"%s\" is missing", cfg->src.host == NULL ?
			     "src" : "dst");
		goto out;
	}
	if (cfg->dst_admin != NULL && *admin_pw_r == NULL) {
		tr_error_set(err, TR_ERR_USAGE, "dst-admin needs \"" K_ADMIN_PW "\"");
		goto out;
	}
	if (cfg->dst_admin == NULL && *admin_pw_r != NULL) {
		tr_error_set(err, TR_ERR_USAGE, "\"" K_ADMIN_PW "\" without dst-admin");
		goto out;
	}
	/* the accounts come from the body: a name for finish's check */
	if ((cfg->accounts = strdup(K_CSV)) == NULL) {
		tr_error_set(err, TR_ERR_LOCAL, "out of memory");
		goto out;
	}
	if (jobconf_finish(cfg, err) < 0)
		goto out;
	if (job_accounts_parse(K_CSV, json_string_value(csv), json_string_length(csv), ja,
			       err) < 0)
		goto out;
	if (ja->n == 0) {
		tr_error_set(err, TR_ERR_USAGE, "no usable account in " K_CSV "%s",
			     ja->n_bad > 0 ? " (every row was skipped)" : "");
		goto out;
	}
	r = 0;
out:
	if (r < 0) {
		secret_free(*admin_pw_r);
		*admin_pw_r = NULL;
		free(*name_r);
		*name_r = NULL;
		job_accounts_free(ja);
		memset(ja, 0, sizeof(*ja));
	}
	wipe_strings(doc);
	json_decref(doc);
	return r;
}

int jobjson_pass(const char *body, size_t len, const char **kind_r, int *every_s_r,
		 struct tr_error *err)
{
	static const char *const kinds[] = { "delta", "verify", "final" };
	json_error_t je;
	json_t *doc, *kind, *every;
	const char *key;
	json_t *v;
	size_t i;
	long every_s = 0;
	int r = -1;

	*kind_r = NULL;
	*every_s_r = 0;
	doc = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
	if (doc == NULL) {
		char *t = text_clean_dup(je.text, NULL);

		tr_error_set(err, TR_ERR_USAGE, "invalid JSON at line %d, column %d: %s", je.line,
			     je.column, t != NULL ? t : "?");
		free(t);
		return -1;
	}
	if (!json_is_object(doc)) {
		tr_error_set(err, TR_ERR_USAGE, "a pass is a JSON object: {\"kind\": \"delta\"}");
		goto out;
	}
	json_object_foreach(doc, key, v) {
		if (strcmp(key, "kind") != 0 && strcmp(key, "every") != 0) {
			char kt[80];

			key_text(key, kt, sizeof(kt));
			tr_error_set(err, TR_ERR_USAGE, "unknown key \"%s\" (a pass has kind and "
				     "every)", kt);
			goto out;
		}
	}
	kind = json_object_get(doc, "kind");
	every = json_object_get(doc, "every");
	if (kind == NULL && every == NULL) {
		tr_error_set(err, TR_ERR_USAGE, "a pass wants \"kind\" (delta, verify, final) or "
			     "\"every\" (an interval such as 6h)");
		goto out;
	}
	if (kind != NULL) {
		for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
			if (json_is_string(kind) && strcmp(json_string_value(kind), kinds[i]) == 0)
				*kind_r = kinds[i];
		if (*kind_r == NULL) {
			tr_error_set(err, TR_ERR_USAGE, "\"kind\" is delta, verify or final");
			goto out;
		}
	}
	if (every != NULL) {
		int secs = 0;

		/* the queue's own reading of an interval, as `queue pass --every` */
		if (!json_is_string(every) ||
		    queue_every_parse(json_string_value(every), &secs, err) < 0) {
			tr_error_set(err, TR_ERR_USAGE, "\"every\" is an interval such as \"6h\", "
				     "\"30m\", \"1d\" or \"2h30m\" (1 s to 366 days)");
			goto out;
		}
		every_s = secs;
		if (*kind_r != NULL && strcmp(*kind_r, "delta") != 0) {
			tr_error_set(err, TR_ERR_USAGE, "\"every\" schedules delta passes: not with "
				     "kind %s", *kind_r);
			goto out;
		}
		*kind_r = kinds[0];
		*every_s_r = (int)every_s;
	}
	r = 0;
out:
	if (r < 0)
		*kind_r = NULL;
	json_decref(doc);
	return r;
}
