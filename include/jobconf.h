/* jobconf: one job's configuration, and the one table of its settings.
 *
 * A job (migrate one mailbox, run / check / verify the accounts of a CSV)
 * is described by a struct job_config: servers and TLS, where the accounts
 * and their password files are, folder rules, caps, batches, where the
 * state and the reports go.  Whoever builds a job, the command line, a job
 * file, a spool job, the spool's operator settings (and later a service or
 * a queue), sets it key by key through jobconf_set: the key table below is
 * the only place a setting is declared (its name, which is both the long
 * option and the job-file key, its value, whether it is a path, whether a
 * spool job may set it), and jobconf_finish is the only place that applies
 * the defaults that depend on other settings and checks the combination.
 * Nothing goes through an argument list.
 *
 * Precedence is the order of the calls: a later setting replaces an
 * earlier one (lists such as folder and map grow).  The command line sets
 * after the job file it names; a spool job's settings come first, then the
 * spool's --config file, then the spool's command line.
 *
 * Where a setting comes from (struct jobconf_origin) decides how its
 * value is taken:
 *   JOBCONF_CALLER     the command line or a program: as given, relative
 *                      paths from the working directory;
 *   JOBCONF_JOB_FILE   a job file the user named: relative paths from dir,
 *                      the file's directory;
 *   JOBCONF_SPOOL_JOB  a job dropped in a spool (README, "Spool"): every
 *                      path stays in dir, the spool directory (an absolute
 *                      path only inside it, no "..", no symbolic link on the
 *                      way, a regular file where a file is read, not in the
 *                      spool's own pending/ running/ done/ failed/ or dot
 *                      files), and the operator's keys (TLS policy, the
 *                      admins, provisioning: a command to run, a file to
 *                      write) are refused;
 *   JOBCONF_OPERATOR   a spool's --config file: relative paths from dir;
 *                      accounts is refused (each job names its own).
 * Errors from a file name it and the line: "run.job:7: ...".
 *
 * A flag (insecure, keep-names, quiet...) is turned on by "yes" (also
 * true, on, 1, or no value at all) and left as it is by "no" (false, off,
 * 0): as on the command line, flags only turn on.
 *
 * The config owns every string in it; nothing in it is a password (only
 * where passwords are read from).  Not shared between threads while it is
 * being built; once finished the engine reads it from any thread.
 */
#ifndef TRASLOCO_JOBCONF_H
#define TRASLOCO_JOBCONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "folder.h"
#include "job.h"

/* What the job does (JOB_PROVISION: `trasloco provision`, only the
 * provisioning step of a run, provision.h). */
enum job_kind { JOB_MIGRATE = 0, JOB_RUN, JOB_CHECK, JOB_VERIFY, JOB_PROVISION };

enum jobconf_tls { JOBCONF_TLS_IMPLICIT = 0, JOBCONF_TLS_STARTTLS, JOBCONF_TLS_NONE };

enum jobconf_auth { JOBCONF_AUTH_PASSWORD = 0, JOBCONF_AUTH_XOAUTH2, JOBCONF_AUTH_OAUTHBEARER };

struct jobconf_server {
	char *host;             /* owned; NULL until set */
	int port;               /* 0 until set or finished (from the TLS mode) */
	enum jobconf_tls tls;   /* finished from the port unless tls_set */
	bool tls_set;
	char *tls_name;         /* owned; NULL: the host's name */
};

struct job_config {
	enum job_kind kind;
	char *name;                     /* the job file, for reports; NULL: the accounts file */

	/* servers and TLS */
	struct jobconf_server src, dst;
	char *ca_file;                  /* NULL: the system store */
	bool insecure;
	bool allow_plaintext;

	/* accounts, and where their passwords are read from (never the passwords) */
	char *accounts;                 /* run, check, verify: the CSV */
	char *user, *src_user, *dst_user;   /* migrate: the one account */
	char *src_password_file, *dst_password_file;
	char *dst_admin, *dst_admin_password_file;
	char dst_admin_separator;       /* '\0': SASL PLAIN */
	char *src_admin, *src_admin_password_file;
	char src_admin_separator;       /* '\0': SASL PLAIN */

	/* provisioning (provision.h): a command, or "dovecot-passwd-file:PATH" */
	char *provision_cmd, *provision, *provision_passwd_fields;
	/* how each side logs in: JOBCONF_AUTH_*; with OAuth2 the token comes
	 * from the token command (oauth.h), and no password is read */
	int src_auth, dst_auth;
	char *src_token_cmd, *dst_token_cmd;
	/* or a built-in flow (oauth.h): provider microsoft365 or google */
	struct jobconf_oauth {
		char *provider, *tenant, *client_id, *secret_file, *cert_file, *key_file,
		     *token_url;
	} src_oauth, dst_oauth;

	/* folders */
	char **folders, **excludes;
	size_t n_folders, n_excludes;
	struct folder_map_rule *maps;   /* from and to owned */
	size_t n_maps;
	bool keep_names;
	bool subscribe;                 /* copy subscriptions */
	/* the source's virtual views (\All, \Flagged, \Important) are left out
	 * when a preset says so (skip_virtual) unless copy_virtual */
	bool skip_virtual, copy_virtual;
	char *src_preset;               /* gmail, microsoft365: see jobconf.c's presets */

	/* caps, network, batches */
	int src_max_per_account, dst_max_per_account;
	int src_max_connections, dst_max_connections;
	bool caps_per_egress;           /* queue: per-account caps count per egress (caps_pg.h) */
	int parallel_accounts;
	int timeout_s;
	int retries;                    /* attempts per folder on transient errors */
	uint64_t batch_bytes;
	uint32_t batch_count;
	/* throttles per server, shared by the job's accounts (throttle.h);
	 * 0: none */
	uint64_t src_bytes_per_second, src_bytes_per_day, dst_bytes_per_second, dst_bytes_per_day;
	/* each account's own day budget on a server: 0 none */
	uint64_t src_account_bytes_per_day, dst_account_bytes_per_day;
	uint32_t src_messages_per_second, dst_messages_per_second;
	char *spool_dir;                /* where fetched messages wait; NULL: $TMPDIR */

	/* state and reports */
	char *state_dir;
	char *report, *report_csv, *log_dir;
	bool content;                   /* verify: compare whole contents */
	bool show_folders;              /* check: print every folder's plan */
	bool dry_run;                   /* migrate: print the plan, copy nothing */
	/* the pass (run, migrate): which messages this run copies; a later
	 * pass without them fills in exactly what they left out (sync.h) */
	uint32_t since_day;             /* YYYYMMDD: INTERNALDATE on or after; 0: any */
	uint32_t before_day;            /* YYYYMMDD: INTERNALDATE before; 0: any */
	uint32_t trial;                 /* at most this many messages per folder; 0: all */
	bool final;                     /* a last pass, then verify; mark finished */
	int verbosity;                  /* -1 quiet, 0 normal, 1 verbose, 2 debug */
	bool progress;
};

enum jobconf_from { JOBCONF_CALLER = 0, JOBCONF_JOB_FILE, JOBCONF_SPOOL_JOB, JOBCONF_OPERATOR };

struct jobconf_origin {
	enum jobconf_from from;
	const char *file;       /* for messages; NULL: the command line or a program */
	unsigned line;          /* of the setting in file, 0: none */
	const char *dir;        /* base of relative paths; the spool directory for SPOOL_JOB */
	const char *dir_real;   /* SPOOL_JOB: realpath(dir), for absolute paths in jobs */
};

/* What a setting's value is, for relative paths and the spool's rules. */
enum jobconf_path { JOBCONF_NOT_PATH = 0, JOBCONF_PATH_READ, JOBCONF_PATH_WRITE, JOBCONF_PATH_DIR };

/* One row of the key table.  The first fields are for every reader (the
 * command line builds its long options from them); the rest is jobconf.c's. */
struct jobconf_key {
	const char *name;       /* "src-tls-name": long option and job-file key */
	bool takes_value;       /* false: a flag (no value on the command line) */
	bool option;            /* false: not a command-line option (accounts: an argument) */
	bool operator_only;     /* refused in spool jobs */
	bool repeats;           /* every setting adds one (folder, exclude, map) */
	enum jobconf_path path;
	const char *help;       /* one line */
	/* jobconf.c's */
	int type;
	size_t off, off2;
	long lo, hi;
};

/* The table, in a stable order; *n gets its length. */
const struct jobconf_key *jobconf_keys(size_t *n);
/* NULL when there is no such key. */
const struct jobconf_key *jobconf_key(const char *name);

/* Defaults that depend on nothing else (caps 4 and 40, timeout 120,
 * retries 5, batches of 16 MB and 100 messages, 4 accounts at once,
 * subscriptions copied, progress shown). */
void jobconf_init(struct job_config *cfg, enum job_kind kind);
void jobconf_free(struct job_config *cfg);

/* Set key to value as origin says (NULL: JOBCONF_CALLER, as for every
 * function here).  value NULL: a flag given without a value.  Returns 0, or -1 with err (TR_ERR_USAGE: an unknown key, a bad
 * value, a path or key the origin may not set; TR_ERR_LOCAL: memory). */
int jobconf_set(struct job_config *cfg, const char *key, const char *value,
		const struct jobconf_origin *origin, struct tr_error *err);
/* Every setting of jf in order, each with its line (origin->file and
 * origin->line are taken from jf: a path NULL for settings that come from
 * no file, such as a command line's).  Stops at the first error. */
int jobconf_apply(struct job_config *cfg, const struct job_file *jf,
		  const struct jobconf_origin *origin, struct tr_error *err);
/* Read the job file at path (job_file_load) and apply it as
 * JOBCONF_JOB_FILE, relative paths from its directory. */
int jobconf_load(struct job_config *cfg, const char *path, struct tr_error *err);

/* "host", "host:port", "[v6]:port" into s (port 0 if absent). */
int jobconf_parse_server(const char *arg, struct jobconf_server *s, struct tr_error *err);

/* The defaults that depend on other settings, and the checks of the
 * combination, for cfg->kind: ports from TLS modes and back, no plaintext
 * to a remote host without allow-plaintext, the logins of migrate (user or
 * both src-user and dst-user) and no logins or password files for the
 * other kinds (they come from the CSV), accounts for them, dst-admin for
 * its password file (src-admin too), provision-cmd or provision (one of
 * them, the built-in's PATH absolute, the fields template only with it and
 * beginning with ':'; provision itself needs one and no server), content
 * only for verify, the state directory
 * ($XDG_STATE_HOME/trasloco, else ~/.local/state/trasloco).  Returns 0 or
 * -1 with err (TR_ERR_USAGE). */
int jobconf_finish(struct job_config *cfg, struct tr_error *err);

/* Whether the accounts CSV must carry passwords: only when a side logs in
 * with them (not with OAuth2 tokens, nor through an admin on that side).
 * When not, the CSV may hold addresses only (JOB_ACCOUNTS_NO_PASSWORD). */
bool jobconf_csv_needs_passwords(const struct job_config *cfg);

/* The settings as job-file lines ("key = value\n", table order, values
 * quoted when the syntax needs it), those still at their default left out:
 * what a job will do, and equal text means an equal configuration.  NULL
 * when out of memory; the caller frees it. */
char *jobconf_text(const struct job_config *cfg);

#endif
