/* jobjson: the HTTP API's request bodies: a job as JSON (POST /v1/jobs)
 * into a job configuration and its accounts, and a pass (POST
 * /v1/jobs/ID/passes).
 *
 * The object's keys are the job-file keys (jobconf.h) with values as JSON
 * strings, numbers or booleans as fits (a flag: true sets it, false leaves
 * it off), arrays for the keys that repeat (folder, exclude, map; map also
 * as an object {"OLD": "NEW"}), plus:
 *   accounts_csv         the accounts CSV's text (required)
 *   dst-admin-password   the admin's password, when dst-admin is set
 * Settings a queued job does not keep (queue_setting_kept: accounts, state,
 * report, report-csv, log-dir, dst-admin-password-file) and the logins of
 * `migrate` are refused, as are unknown keys, nulls and nesting: every
 * refusal is TR_ERR_USAGE with the key named.  A path given to a setting
 * (ca-file, spool-dir) must be absolute: the service's working directory
 * means nothing to the panel that submits.
 *
 * Passwords (in accounts_csv and dst-admin-password) end up only in ja
 * and *admin_pw_r, wiped by their free functions; the parsed JSON document
 * is wiped before it is freed; no message quotes a value of those keys.
 *
 * Ownership: the caller's structs (cfg initialised by jobjson_parse, to be
 * freed with jobconf_free; ja with job_accounts_free; *admin_pw_r and
 * *name_r with secret_free and free) in every case.  Threading: none.
 */
#ifndef TRASLOCO_JOBJSON_H
#define TRASLOCO_JOBJSON_H

#include <stddef.h>

#include "error.h"
#include "job.h"
#include "jobconf.h"

/* The largest body accepted (bytes): 64 MiB holds a CSV of a few hundred
 * thousand accounts. */
#define JOBJSON_MAX_BODY (64u * 1024u * 1024u)

/* Parse len bytes of JSON into a finished configuration (kind JOB_RUN),
 * its accounts (bad rows in ja->bad, as `run` collects them), the admin
 * password (NULL: none) and the job's name (NULL: none given).  Returns 0,
 * or -1 with err (TR_ERR_USAGE for anything the caller sent wrong, also
 * "no usable account"; TR_ERR_LOCAL: memory). */
int jobjson_parse(const char *body, size_t len, struct job_config *cfg, struct job_accounts *ja,
		  char **admin_pw_r, char **name_r, struct tr_error *err);

/* {"kind": "delta"|"verify"|"final"} or {"every": "6h"} (with "kind"
 * "delta" or none): *kind_r static ("delta" when only every is given),
 * *every_s_r 0 when not scheduled.  An interval as queue_every_parse reads
 * it (1 s to 366 days).  TR_ERR_USAGE naming what is wrong. */
int jobjson_pass(const char *body, size_t len, const char **kind_r, int *every_s_r,
		 struct tr_error *err);

#endif
