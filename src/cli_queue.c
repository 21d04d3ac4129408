/* cli: `trasloco queue ...`, the jobs of a queue: the fleet's in
 * PostgreSQL, or one host's in a directory (see cli.h, queue.h). */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "cli.h"
#include "job.h"
#include "jobconf.h"
#include "pg.h"
#include "queue.h"
#include "seal.h"
#include "secret.h"

const char cli_queue_usage_text[] =
	"usage: trasloco queue init QUEUE [--key-file F]\n"
	"       trasloco queue submit QUEUE JOB.job [--name NAME] [--key-file F]\n"
	"       trasloco queue status QUEUE [JOB] [--json]\n"
	"       trasloco queue retry QUEUE JOB [--failed]\n"
	"       trasloco queue cancel QUEUE JOB\n"
	"       trasloco queue delete QUEUE JOB\n"
	"       trasloco queue rekey QUEUE [--key-file F]\n"
	"       trasloco queue pass QUEUE JOB --kind delta|verify|final | --every INTERVAL|off\n"
	"       trasloco queue account QUEUE JOB EMAIL\n"
	"\n"
	"A queue is a PostgreSQL database that many `trasloco worker`s on many hosts\n"
	"share, or a directory of one host (SQLite) for its `trasloco serve` or its\n"
	"workers.  init creates or upgrades its tables and creates the key file (mode\n"
	"0600) that seals the passwords stored in it: copy that file to every host that\n"
	"submits or works.\n"
	"submit stores a job file's job whole (its settings, its accounts and their\n"
	"passwords, sealed) and prints its id; its name is the file's without .job.\n"
	"status shows every job (or JOB's accounts, one line each); retry puts a job's\n"
	"accounts back to pending (--failed: those failed or partial only); cancel stops\n"
	"a job (running accounts stop at their worker's next heartbeat); delete removes\n"
	"a job and its passwords; rekey seals every password again with the first key of\n"
	"the key file (rotation: put a new key first, rekey, remove the old line).\n"
	"pass asks a pass of a job: delta (the finished accounts copy what arrived since),\n"
	"verify (they are verified; the result is kept), final (a last delta, then a\n"
	"verify, then the job is finished); --every schedules delta passes (the workers\n"
	"start them) until the final pass.  account shows one account as JSON: its\n"
	"folders, the messages it could not copy (UID, server reply), its last verify.\n"
	"JOB is a job's id or name (the newest job of that name).\n"
	"\n"
	"  QUEUE                  postgresql://USER@HOST[:PORT]/DB, or sqlite:DIR (a path\n"
	"                         with a '/' is a directory too), else --queue-file F (its\n"
	"                         first line; chmod 600), else $TRASLOCO_QUEUE.  Never a\n"
	"                         password on the command line: libpq's PGPASSFILE\n"
	"                         (~/.pgpass) or a service file, or put the DSN in F\n"
	"  --key-file F           else $TRASLOCO_QUEUE_KEY_FILE, else /etc/trasloco/queue.key\n"
	"                         (root) or $XDG_CONFIG_HOME/trasloco/queue.key\n"
	"  --name NAME            submit: the job's name\n"
	"  --json                 status: JSON for programs\n"
	"  --failed               retry: only the accounts that failed or were partial\n"
	"  --kind delta|verify|final\n"
	"                         pass: which pass\n"
	"  --every INTERVAL       pass: delta passes every 90, 30s, 15m, 6h, 1d, 2h30m (from\n"
	"                         the start of the previous pass, once every account has\n"
	"                         finished); off: none more\n"
	"\n"
	"Exit status: 0 done, 2 usage, 6 failure (database, key file).\n";

/* ---- the DSN and the key file ------------------------------------------------ */

int cli_queue_dsn(const char *arg, const char *queue_file, char **dsn_r, struct tr_error *err)
{
	int r;

	*dsn_r = NULL;
	if (arg != NULL) {
		/* it is in ps, /proc/PID/cmdline and the shell's history already;
		 * refusing it teaches the way that keeps it out */
		if ((pg_is_dsn(arg) || pg_is_conninfo(arg)) && pg_dsn_has_password(arg)) {
			tr_error_set(err, TR_ERR_USAGE, "the DSN on the command line holds a password "
				     "(others see it in ps): keep the password in PGPASSFILE "
				     "(~/.pgpass) or a service file, or give the DSN with --queue-file "
				     "F or $TRASLOCO_QUEUE");
			return -1;
		}
		if ((*dsn_r = strdup(arg)) == NULL) {
			tr_error_set(err, TR_ERR_LOCAL, "out of memory");
			return -1;
		}
		return 0;
	}
	if (queue_file != NULL) {
		if (secret_file_exposed(queue_file)) {
			tr_error_set(err, TR_ERR_USAGE, "--queue-file %s is readable by other users: "
				     "chmod 600 it (a DSN may hold a password)", queue_file);
			return -1;
		}
		if (secret_from_file(queue_file, dsn_r, err) < 0) {
			tr_error_prefix(err, "--queue-file");
			return -1;
		}
		return 0;
	}
	r = secret_from_env("TRASLOCO_QUEUE", dsn_r, err);
	if (r < 0)
		return -1;
	if (r == 0) {
		tr_error_set(err, TR_ERR_USAGE, "no queue: give its location (postgresql://USER@HOST/DB "
			     "or sqlite:DIR), --queue-file F or $TRASLOCO_QUEUE");
		return -1;
	}
	return 0;
}

char *cli_queue_key_file(const char *opt, struct tr_error *err)
{
	const char *env = getenv("TRASLOCO_QUEUE_KEY_FILE"), *xdg, *home;
	char buf[4096];

	if (opt != NULL)
		return strdup(opt);
	if (env != NULL && env[0] != '\0')
		return strdup(env);
	if (geteuid() == 0)
		return strdup("/etc/trasloco/queue.key");
	xdg = getenv("XDG_CONFIG_HOME");
	home = getenv("HOME");
	if (xdg != NULL && xdg[0] == '/')
		snprintf(buf, sizeof(buf), "%s/trasloco/queue.key", xdg);
	else if (home != NULL && home[0] == '/')
		snprintf(buf, sizeof(buf), "%s/.config/trasloco/queue.key", home);
	else {
		tr_error_set(err, TR_ERR_USAGE, "no $HOME or $XDG_CONFIG_HOME: give --key-file F");
		return NULL;
	}
	return strdup(buf);
}

/* ---- arguments ----------------------------------------------------------------- */

struct qargs {
	const char *pos[3];             /* positional arguments but the queue */
	int n_pos;
	const char *dsn_arg, *queue_file, *key_file, *name, *kind, *every;
	bool json, failed, help;
};

/* The most arguments cmd takes after its queue. */
static int jobs_wanted(const char *cmd)
{
	if (strcmp(cmd, "init") == 0 || strcmp(cmd, "rekey") == 0)
		return 0;
	if (strcmp(cmd, "account") == 0)
		return 2;
	return 1;
}

/* A path, not a job's name: it has a '/', or is a directory here. */
static bool names_dir(const char *s)
{
	struct stat st;

	return strchr(s, '/') != NULL || (stat(s, &st) == 0 && S_ISDIR(st.st_mode));
}

/* argv[0] is the subcommand.  Returns 0 or -1 with err. */
static int read_qargs(int argc, char **argv, struct qargs *a, struct tr_error *err)
{
	static const char *const with_value[] = { "--queue-file", "--key-file", "--name",
						  "--kind", "--every" };
	int i;
	size_t k;

	memset(a, 0, sizeof(*a));
	for (i = 1; i < argc; i++) {
		const char *s = argv[i], *value = NULL;

		if (strcmp(s, "--help") == 0 || strcmp(s, "-h") == 0) {
			a->help = true;
			continue;
		}
		if (strcmp(s, "--json") == 0) {
			a->json = true;
			continue;
		}
		if (strcmp(s, "--failed") == 0) {
			a->failed = true;
			continue;
		}
		for (k = 0; k < sizeof(with_value) / sizeof(with_value[0]); k++) {
			size_t len = strlen(with_value[k]);

			if (strcmp(s, with_value[k]) == 0) {
				if (i + 1 >= argc) {
					tr_error_set(err, TR_ERR_USAGE, "%s needs a value", s);
					return -1;
				}
				value = argv[++i];
				break;
			}
			if (strncmp(s, with_value[k], len) == 0 && s[len] == '=') {
				value = s + len + 1;
				break;
			}
		}
		if (k < sizeof(with_value) / sizeof(with_value[0])) {
			if (k == 0)
				a->queue_file = value;
			else if (k == 1)
				a->key_file = value;
			else if (k == 2)
				a->name = value;
			else if (k == 3)
				a->kind = value;
			else
				a->every = value;
			continue;
		}
		if (s[0] == '-' && s[1] != '\0') {
			tr_error_set(err, TR_ERR_USAGE, "unknown option %.*s", (int)strcspn(s, "="), s);
			return -1;
		}
		if (a->dsn_arg == NULL && a->n_pos == 0 &&
		    (pg_is_dsn(s) || strncmp(s, "sqlite:", 7) == 0)) {
			a->dsn_arg = s;
			continue;
		}
		if (pg_is_dsn(s) && pg_dsn_has_password(s)) {
			tr_error_set(err, TR_ERR_USAGE, "the DSN on the command line holds a password");
			return -1;
		}
		if (a->n_pos == (int)(sizeof(a->pos) / sizeof(a->pos[0]))) {
			tr_error_set(err, TR_ERR_USAGE, "too many arguments");
			return -1;
		}
		a->pos[a->n_pos++] = s;
	}
	/* a queue directory given plainly: the argument before those the
	 * command wants, or status's only one when it names a directory */
	if (a->dsn_arg == NULL && a->n_pos > 0 &&
	    (a->n_pos > jobs_wanted(argv[0]) ||
	     (strcmp(argv[0], "status") == 0 && names_dir(a->pos[0])))) {
		a->dsn_arg = a->pos[0];
		memmove(a->pos, a->pos + 1, (size_t)--a->n_pos * sizeof(a->pos[0]));
	}
	return 0;
}

static int exit_for(const struct tr_error *err)
{
	return err->kind == TR_ERR_USAGE ? EXIT_USAGE : EXIT_FAILED;
}

static int fail(const char *cmd, const struct tr_error *err)
{
	fprintf(stderr, "trasloco queue %s: %s\n", cmd, err->msg);
	return exit_for(err);
}

/* ---- the commands -------------------------------------------------------------- */

/* mkdir -p of path's directory, new directories 0700. */
static int make_parent(const char *path, struct tr_error *err)
{
	char *d = strdup(path), *p;

	if (d == NULL) {
		tr_error_set(err, TR_ERR_LOCAL, "out of memory");
		return -1;
	}
	p = strrchr(d, '/');
	if (p == NULL || p == d) {
		free(d);
		return 0;
	}
	*p = '\0';
	for (p = d + 1; ; p++) {
		if (*p == '/' || *p == '\0') {
			char c = *p;

			*p = '\0';
			if (mkdir(d, 0700) < 0 && errno != EEXIST) {
				tr_error_set(err, TR_ERR_LOCAL, "cannot create %s: %s", d,
					     strerror(errno));
				free(d);
				return -1;
			}
			*p = c;
			if (c == '\0')
				break;
		}
	}
	free(d);
	return 0;
}

static int cmd_init(const char *dsn, const struct qargs *a)
{
	struct tr_error err;
	struct queue *q = NULL;
	struct seal_keys *k = NULL;
	char *key_file = NULL;
	struct stat st;
	int from, version, code = EXIT_OK;

	tr_error_clear(&err);
	key_file = cli_queue_key_file(a->key_file, &err);
	if (key_file == NULL) {
		if (err.kind == TR_ERR_NONE)
			tr_error_set(&err, TR_ERR_LOCAL, "out of memory");
		return fail("init", &err);
	}
	if (queue_init(dsn, &from, &version, &q, &err) < 0) {
		code = fail("init", &err);
		goto out;
	}
	if (from == 0)
		printf("%s: tables created (schema version %d)\n", queue_where(q), version);
	else if (from < version)
		printf("%s: schema upgraded from version %d to %d\n", queue_where(q), from,
		       version);
	else
		printf("%s: schema version %d already, nothing to do\n", queue_where(q), from);
	if (lstat(key_file, &st) < 0 && errno == ENOENT) {
		if (make_parent(key_file, &err) < 0 || seal_key_create(key_file, &err) < 0) {
			code = fail("init", &err);
			goto out;
		}
		printf("key file %s created (mode 0600): copy it to every host that submits jobs "
		       "or runs workers, and keep a copy safe; without it the queue's passwords "
		       "cannot be read\n", key_file);
	} else if (seal_keys_load(key_file, &k, &err) < 0) {
		code = fail("init", &err);
		goto out;
	} else {
		printf("key file %s: there already, kept\n", key_file);
	}
out:
	fflush(stdout);
	seal_keys_free(k);
	queue_close(q);
	free(key_file);
	return code;
}

/* The job file's settings that a queued job does not keep, said once. */
static void say_not_kept(const struct job_config *cfg)
{
	static const struct {
		const char *key;
		size_t off;
	} paths[] = {
		{ "state", offsetof(struct job_config, state_dir) },
		{ "report", offsetof(struct job_config, report) },
		{ "report-csv", offsetof(struct job_config, report_csv) },
		{ "log-dir", offsetof(struct job_config, log_dir) },
	};
	size_t i;

	for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
		if (*(char *const *)((const char *)cfg + paths[i].off) != NULL)
			fprintf(stderr, "trasloco queue submit: note: %s is not kept in the queue (a "
				"queued job's state is the queue's database, its report `trasloco "
				"queue status`, its logs the workers')\n", paths[i].key);
}

static int cmd_submit(const char *dsn, const struct qargs *a)
{
	struct tr_error err;
	struct job_config cfg;
	struct job_accounts ja;
	struct seal_keys *k = NULL;
	struct queue *q = NULL;
	char *key_file = NULL, *admin = NULL, *src_admin = NULL;
	int64_t id;
	size_t i, skipped = 0;
	int code = EXIT_FAILED;

	tr_error_clear(&err);
	memset(&ja, 0, sizeof(ja));
	jobconf_init(&cfg, JOB_RUN);
	if (a->n_pos != 1) {
		fprintf(stderr, "usage: trasloco queue submit QUEUE JOB.job [--name NAME] "
			"[--key-file F]\n");
		code = EXIT_USAGE;
		goto out;
	}
	if ((cfg.name = strdup(a->pos[0])) == NULL) {
		tr_error_set(&err, TR_ERR_LOCAL, "out of memory");
		code = fail("submit", &err);
		goto out;
	}
	if (jobconf_load(&cfg, a->pos[0], &err) < 0) {
		code = fail("submit", &err);
		goto out;
	}
	say_not_kept(&cfg);
	if (jobconf_finish(&cfg, &err) < 0) {
		tr_error_prefix(&err, "%s", a->pos[0]);
		code = fail("submit", &err);
		goto out;
	}
	if (job_accounts_load_opt(cfg.accounts, jobconf_csv_needs_passwords(&cfg) ? 0 :
				  JOB_ACCOUNTS_NO_PASSWORD, &ja, &err) < 0) {
		code = fail("submit", &err);
		goto out;
	}
	for (i = 0; i < ja.n_bad; i++) {
		if (ja.bad[i].line == 0)
			fprintf(stderr, "trasloco queue submit: warning: %s\n", ja.bad[i].what);
		else
			skipped++;
	}
	for (int side = 0; side < 2; side++) {
		const char *who = side == 0 ? cfg.dst_admin : cfg.src_admin;
		const char *file = side == 0 ? cfg.dst_admin_password_file :
				   cfg.src_admin_password_file;
		const char *var = side == 0 ? "TRASLOCO_DST_ADMIN_PASSWORD" :
				  "TRASLOCO_SRC_ADMIN_PASSWORD";
		char **pw = side == 0 ? &admin : &src_admin;
		int r;

		if (who == NULL)
			continue;
		r = file != NULL ? secret_from_file(file, pw, &err) : secret_from_env(var, pw, &err);
		if (r == 0 && *pw == NULL)
			tr_error_set(&err, TR_ERR_USAGE, "%s-admin needs %s-admin-password-file or $%s",
				     side == 0 ? "dst" : "src", side == 0 ? "dst" : "src", var);
		if (r < 0 || *pw == NULL) {
			code = fail("submit", &err);
			goto out;
		}
	}
	key_file = cli_queue_key_file(a->key_file, &err);
	if (key_file == NULL || seal_keys_load(key_file, &k, &err) < 0 ||
	    queue_open(dsn, k, &q, &err) < 0 ||
	    queue_submit(q, &cfg, &ja, admin, src_admin, a->name, &id, &err) < 0) {
		if (err.kind == TR_ERR_NONE)
			tr_error_set(&err, TR_ERR_LOCAL, "out of memory");
		code = fail("submit", &err);
		goto out;
	}
	printf("job %" PRId64 ": %zu account(s) queued in %s\n", id, ja.n, queue_where(q));
	for (i = 0; i < ja.n_bad; i++)
		if (ja.bad[i].line > 0)
			printf("  skipped %s\n", ja.bad[i].what);
	if (skipped > 0)
		printf("%zu row(s) of %s skipped\n", skipped, cfg.accounts);
	code = EXIT_OK;
out:
	fflush(stdout);
	queue_close(q);
	seal_keys_free(k);
	secret_free(admin);
	secret_free(src_admin);
	free(key_file);
	job_accounts_free(&ja);
	jobconf_free(&cfg);
	return code;
}

/* The commands that need no key: status, retry, cancel, delete. */
static int cmd_plain(const char *cmd, const char *dsn, const struct qargs *a)
{
	struct tr_error err;
	struct queue *q = NULL;
	const char *job = a->n_pos > 0 ? a->pos[0] : NULL;
	bool is_status = strcmp(cmd, "status") == 0;
	char idbuf[32];
	int64_t id;
	int code = EXIT_OK, n;

	tr_error_clear(&err);
	if ((is_status && a->n_pos > 1) || (!is_status && a->n_pos != 1) ||
	    (a->json && !is_status) || (a->failed && strcmp(cmd, "retry") != 0)) {
		fprintf(stderr, "trasloco queue %s: bad arguments\n%s", cmd, cli_queue_usage_text);
		return EXIT_USAGE;
	}
	if (queue_open(dsn, NULL, &q, &err) < 0)
		return fail(cmd, &err);
	if (is_status) {
		if (queue_status(q, job, a->json, stdout, &err) < 0)
			code = fail(cmd, &err);
		goto out;
	}
	/* by its id from here on: the name of a newer job submitted meanwhile
	 * does not move the next step to another job */
	if (queue_job_id(q, job, &id, &err) < 0) {
		code = fail(cmd, &err);
		goto out;
	}
	snprintf(idbuf, sizeof(idbuf), "%" PRId64, id);
	if (strcmp(cmd, "retry") == 0) {
		if (queue_retry(q, idbuf, a->failed, &n, &err) < 0)
			code = fail(cmd, &err);
		else
			printf("job %s: %d account(s) pending again\n", idbuf, n);
	} else if (strcmp(cmd, "cancel") == 0) {
		if (queue_cancel(q, idbuf, &err) < 0)
			code = fail(cmd, &err);
		else
			printf("job %s cancelled: its pending accounts will not run, running ones "
			       "stop at their worker's next heartbeat\n", idbuf);
	} else {
		if (queue_delete(q, idbuf, &err) < 0)
			code = fail(cmd, &err);
		else
			printf("job %s deleted, with its accounts and their passwords\n", idbuf);
	}
out:
	fflush(stdout);
	queue_close(q);
	return code;
}

static int cmd_pass(const char *dsn, const struct qargs *a)
{
	struct tr_error err;
	struct queue *q = NULL;
	char idbuf[32];
	int64_t id;
	int code = EXIT_OK, every = 0, n;

	tr_error_clear(&err);
	if (a->n_pos != 1 || (a->kind == NULL && a->every == NULL)) {
		fprintf(stderr, "usage: trasloco queue pass QUEUE JOB --kind delta|verify|final "
			"[--every INTERVAL]\n       trasloco queue pass QUEUE JOB --every "
			"INTERVAL|off\n");
		return EXIT_USAGE;
	}
	if (a->every != NULL && strcmp(a->every, "off") == 0)
		every = -1;
	else if (a->every != NULL && queue_every_parse(a->every, &every, &err) < 0)
		return fail("pass", &err);
	if (queue_open(dsn, NULL, &q, &err) < 0)
		return fail("pass", &err);
	if (queue_job_id(q, a->pos[0], &id, &err) < 0) {
		code = fail("pass", &err);
		goto out;
	}
	snprintf(idbuf, sizeof(idbuf), "%" PRId64, id);
	if (queue_pass(q, idbuf, a->kind, every, &n, &err) < 0) {
		code = fail("pass", &err);
		goto out;
	}
	if (a->kind != NULL && strcmp(a->kind, "final") == 0)
		printf("job %s: final pass asked for %d account(s): a last delta, then a verify; "
		       "no pass is scheduled after it\n", idbuf, n);
	else if (a->kind != NULL && n == 0)
		printf("job %s: no %s pass: no account has finished (those pending or running "
		       "run anyway)\n", idbuf, a->kind);
	else if (a->kind != NULL)
		printf("job %s: %s pass of %d account(s) queued\n", idbuf, a->kind, n);
	if (every > 0)
		printf("job %s: a delta pass every %s (from the start of the previous pass, once "
		       "every account has finished), until a final pass\n", idbuf, a->every);
	else if (every < 0)
		printf("job %s: no more scheduled passes\n", idbuf);
out:
	fflush(stdout);
	queue_close(q);
	return code;
}

static int cmd_account(const char *dsn, const struct qargs *a)
{
	struct tr_error err;
	struct queue *q = NULL;
	json_t *d = NULL;
	char *doc;
	int code = EXIT_OK, r;

	tr_error_clear(&err);
	if (a->n_pos != 2) {
		fprintf(stderr, "usage: trasloco queue account QUEUE JOB EMAIL\n");
		return EXIT_USAGE;
	}
	if (queue_open(dsn, NULL, &q, &err) < 0)
		return fail("account", &err);
	r = queue_account_detail(q, a->pos[0], a->pos[1], &d, &err);
	if (r != 0) {
		code = fail("account", &err);
		goto out;
	}
	doc = json_dumps(d, JSON_INDENT(2));
	if (doc == NULL) {
		tr_error_set(&err, TR_ERR_LOCAL, "out of memory");
		code = fail("account", &err);
		goto out;
	}
	printf("%s\n", doc);
	free(doc);
out:
	fflush(stdout);
	json_decref(d);
	queue_close(q);
	return code;
}

static int cmd_rekey(const char *dsn, const struct qargs *a)
{
	struct tr_error err;
	struct seal_keys *k = NULL;
	struct queue *q = NULL;
	char *key_file;
	int code = EXIT_OK, n;

	tr_error_clear(&err);
	if (a->n_pos != 0) {
		fprintf(stderr, "usage: trasloco queue rekey QUEUE [--key-file F]\n");
		return EXIT_USAGE;
	}
	key_file = cli_queue_key_file(a->key_file, &err);
	if (key_file == NULL || seal_keys_load(key_file, &k, &err) < 0 ||
	    queue_open(dsn, k, &q, &err) < 0 || queue_rekey(q, &n, &err) < 0) {
		if (err.kind == TR_ERR_NONE)
			tr_error_set(&err, TR_ERR_LOCAL, "out of memory");
		code = fail("rekey", &err);
	} else {
		printf("%d password(s) sealed again with the first key of %s: the other keys of "
		       "that file may go now\n", n, key_file);
	}
	fflush(stdout);
	queue_close(q);
	seal_keys_free(k);
	free(key_file);
	return code;
}

int cli_queue(int argc, char **argv)
{
	static const char *const cmds[] = { "init", "submit", "status", "retry", "cancel",
					    "delete", "rekey", "pass", "account" };
	struct tr_error err;
	struct qargs a;
	const char *cmd = argc > 1 ? argv[1] : NULL;
	char *dsn = NULL;
	size_t i;
	int code;

	tr_error_clear(&err);
	if (cmd == NULL || strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 ||
	    strcmp(cmd, "-h") == 0) {
		fputs(cli_queue_usage_text, cmd == NULL ? stderr : stdout);
		return cmd == NULL ? EXIT_USAGE : EXIT_OK;
	}
	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (strcmp(cmd, cmds[i]) == 0)
			break;
	if (i == sizeof(cmds) / sizeof(cmds[0])) {
		fprintf(stderr, "trasloco queue: unknown command \"%s\"\n%s", cmd,
			cli_queue_usage_text);
		return EXIT_USAGE;
	}
	if (read_qargs(argc - 1, argv + 1, &a, &err) < 0) {
		fprintf(stderr, "trasloco queue %s: %s\n(see trasloco queue help)\n", cmd, err.msg);
		return EXIT_USAGE;
	}
	if (a.help) {
		fputs(cli_queue_usage_text, stdout);
		return EXIT_OK;
	}
	if (cli_queue_dsn(a.dsn_arg, a.queue_file, &dsn, &err) < 0)
		return fail(cmd, &err);
	if ((a.kind != NULL || a.every != NULL) && strcmp(cmd, "pass") != 0)
		code = (fprintf(stderr, "trasloco queue %s: --kind and --every are for `queue "
				"pass`\n", cmd), EXIT_USAGE);
	else if (strcmp(cmd, "init") == 0)
		code = a.n_pos != 0 || a.json || a.failed || a.name != NULL ?
		       (fprintf(stderr, "usage: trasloco queue init QUEUE [--key-file F]\n"),
			EXIT_USAGE) : cmd_init(dsn, &a);
	else if (strcmp(cmd, "submit") == 0)
		code = a.json || a.failed ? (fprintf(stderr, "usage: trasloco queue submit QUEUE "
						     "JOB.job [--name NAME] [--key-file F]\n"),
					     EXIT_USAGE) : cmd_submit(dsn, &a);
	else if (strcmp(cmd, "rekey") == 0)
		code = cmd_rekey(dsn, &a);
	else if (strcmp(cmd, "pass") == 0)
		code = a.json || a.failed || a.name != NULL ?
		       (fprintf(stderr, "trasloco queue pass: bad arguments\n"), EXIT_USAGE) :
		       cmd_pass(dsn, &a);
	else if (strcmp(cmd, "account") == 0)
		code = a.failed || a.name != NULL ?
		       (fprintf(stderr, "trasloco queue account: bad arguments\n"), EXIT_USAGE) :
		       cmd_account(dsn, &a);
	else
		code = cmd_plain(cmd, dsn, &a);
	secret_free(dsn);
	return code;
}
