/* cli: the commands (see include/cli.h); options are parsed in cli_opts.c. */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "final.h"
#include "job.h"
#include "jobdir.h"
#include "log.h"
#include "net.h"
#include "pg.h"
#include "preflight.h"
#include "report.h"
#include "run.h"
#include "scheduler.h"
#include "secret.h"
#include "state.h"
#include "text.h"
#include "tls.h"
#include "verify.h"

const char cli_usage_text[] =
	"usage: trasloco migrate --src HOST[:PORT] --dst HOST[:PORT] --user EMAIL [options]\n"
	"       trasloco run ACCOUNTS.csv|JOB.job [options]\n"
	"       trasloco check ACCOUNTS.csv|JOB.job [options]\n"
	"       trasloco verify ACCOUNTS.csv|JOB.job [options]\n"
	"       trasloco provision ACCOUNTS.csv|JOB.job [options]\n"
	"       trasloco spool DIR [--config FILE] [options]\n"
	"       trasloco queue init|submit|status|retry|cancel|delete|rekey DSN ...\n"
	"                                (PostgreSQL, for many hosts: trasloco queue help)\n"
	"       trasloco worker [DSN] [--parallel-accounts N] ...\n"
	"                                run queued accounts (trasloco worker --help)\n"
	"       trasloco serve ...           the HTTP API, status page and metrics\n"
	"                                (trasloco serve --help)\n"
	"       trasloco help [COMMAND] | version   (trasloco COMMAND --help: its options)\n"
	"\n"
	"migrate copies every folder and message of one mailbox from the source IMAP server\n"
	"to the destination, keeping flags, keywords and dates; run does it for every\n"
	"account of a CSV (\"email\",\"password\"), several at once; check logs in and counts\n"
	"without copying; verify, after the last run, lists every source message that is not\n"
	"on the destination (read only); spool runs the job files dropped in DIR/pending\n"
	"(regular files of the spool's owner; their paths stay in DIR; TLS and admin settings\n"
	"come from the spool's options or its --config FILE, owned by root).\n"
	"Every run is incremental: only what is new is copied.\n"
	"\n"
	"Servers and TLS (verified by default):\n"
	"  --src HOST[:PORT], --dst HOST[:PORT]   port 993 means implicit TLS, else STARTTLS\n"
	"  --src-tls, --dst-tls MODE              implicit | starttls | none\n"
	"  --src-tls-name NAME, --dst-tls-name NAME\n"
	"                                         verify the certificate as NAME (and send it\n"
	"                                         as SNI) while connecting to HOST, e.g. an IP\n"
	"  --ca-file FILE                         trust these CAs (default: the system store)\n"
	"  --insecure                             do not verify certificates (dangerous)\n"
	"  --allow-plaintext                      allow --*-tls none to a non-loopback host\n"
	"Accounts (migrate):\n"
	"  --user EMAIL                           the mailbox (login on both sides)\n"
	"  --src-user LOGIN, --dst-user LOGIN     when the logins differ\n"
	"  --src-password-file F, --dst-password-file F\n"
	"                                         else $TRASLOCO_SRC_PASSWORD /\n"
	"                                         $TRASLOCO_DST_PASSWORD, else a prompt; the\n"
	"                                         destination defaults to the source password\n"
	"Source admin (platform migrations; the CSV may then hold emails alone):\n"
	"  --src-admin USER --src-admin-password-file F (or $TRASLOCO_SRC_ADMIN_PASSWORD)\n"
	"  --src-admin-separator C                as --dst-admin-separator, for the source\n"
	"Provisioning (run, migrate, spool, queue; or alone: trasloco provision):\n"
	"  --provision-cmd CMD                    before the copy, CMD by /bin/sh per account:\n"
	"                                         $TRASLOCO_EMAIL, the password on stdin;\n"
	"                                         exit 0 = the account exists or was created\n"
	"  --provision dovecot-passwd-file:PATH   add missing users to that passwd-file\n"
	"                                         ({SHA512-CRYPT}, locked, atomic)\n"
	"  --provision-passwd-fields TEMPLATE     fields after the password (%u %n %d)\n"
	"OAuth2 (Gmail, Microsoft 365; the CSV then needs no passwords):\n"
	"  --src-auth M, --dst-auth M             password (default), xoauth2 or oauthbearer\n"
	"  --src-token-cmd CMD, --dst-token-cmd CMD\n"
	"                                         CMD (by /bin/sh) prints the account's token or\n"
	"                                         JSON {access_token, expires_in}; it gets\n"
	"                                         $TRASLOCO_EMAIL and $TRASLOCO_USER; run again\n"
	"                                         before expiry (default 45 min) and when refused\n"
	"  --src-oauth-provider P, --dst-oauth-provider P\n"
	"                                         built in instead: microsoft365 (app-only\n"
	"                                         client credentials) or google (domain-wide\n"
	"                                         delegation)\n"
	"  --src-oauth-tenant T, --dst-oauth-tenant T, --src-oauth-client-id ID,\n"
	"  --dst-oauth-client-id ID               microsoft365: the tenant and the app\n"
	"  --src-oauth-secret-file F, --dst-oauth-secret-file F\n"
	"                                         microsoft365: the client secret; google: the\n"
	"                                         service account's JSON key\n"
	"  --src-oauth-cert-file F, --dst-oauth-cert-file F, --src-oauth-key-file F,\n"
	"  --dst-oauth-key-file F                 microsoft365: a certificate and its key\n"
	"  --src-oauth-token-url URL, --dst-oauth-token-url URL\n"
	"                                         another token endpoint (https, --ca-file)\n"
	"Provider presets (first on the line: later settings win):\n"
	"  --src-preset gmail|microsoft365        gmail: 15 sessions per account, xoauth2,\n"
	"                                         All Mail/Starred/Important not copied;\n"
	"                                         microsoft365: 8 sessions, xoauth2\n"
	"  --copy-virtual-folders                 copy \\All, \\Flagged, \\Important views too\n"
	"Destination admin (all commands):\n"
	"  --dst-admin USER --dst-admin-password-file F (or $TRASLOCO_DST_ADMIN_PASSWORD)\n"
	"                                         log in to the destination as an admin (SASL\n"
	"                                         PLAIN authorization identity)\n"
	"  --dst-admin-separator C                use the LOGIN \"user<C>admin\" form instead\n"
	"Folders:\n"
	"  --folder PATTERN, --exclude PATTERN    choose folders ('/' hierarchy, shell globs)\n"
	"  --map 'OLD=NEW'                        rename a folder (repeatable)\n"
	"  --keep-names                           no special-use mapping\n"
	"  --no-subscriptions                     do not copy subscriptions\n"
	"Passes (run, migrate; README \"A migration, step by step\"):\n"
	"  --since DATE, --before DATE            only messages received on or after / before\n"
	"                                         DATE (YYYY-MM-DD, by INTERNALDATE): a pre-stage;\n"
	"                                         a later pass without them copies the rest\n"
	"  --trial N                              copy at most N messages per folder\n"
	"  --final                                a last pass, then a verify: the accounts\n"
	"                                         found complete are marked finished\n"
	"Engine:\n"
	"  --state DIR                            default $XDG_STATE_HOME/trasloco\n"
	"  --parallel-accounts N                  accounts at once (run, check, verify; default 4)\n"
	"  --src-max-per-account N, --dst-max-per-account N\n"
	"                                         sessions per account per server (default 4)\n"
	"  --src-max-connections N, --dst-max-connections N\n"
	"                                         sessions per server in all (default 40)\n"
	"  --caps-per-egress                      queue: per-account caps count per egress of\n"
	"                                         the workers (default: one cap for all of them)\n"
	"  --report FILE, --report-csv FILE       JSON / CSV report (run; JSON: check, verify)\n"
	"  --content                              verify: compare whole contents (SHA-256),\n"
	"                                         downloading every message from both sides\n"
	"  --folders                              check: where every folder goes, and why\n"
	"  --dry-run                              migrate: that plan, and nothing copied\n"
	"  --log-dir DIR                          a log per account (run; default STATE/logs)\n"
	"  --timeout SECONDS                      network idle timeout (default 120)\n"
	"  --retries N                            attempts on transient errors (default 5)\n"
	"  --batch-size MB                        bytes per FETCH/APPEND batch (default 16)\n"
	"  --batch-count N                        messages per batch (default 100)\n"
	"  --spool-dir DIR                        where fetched messages wait (default $TMPDIR)\n"
	"  --src-max-bytes-per-second B, --dst-max-bytes-per-second B\n"
	"  --src-max-messages-per-second N, --dst-max-messages-per-second N\n"
	"  --src-max-bytes-per-day B, --dst-max-bytes-per-day B\n"
	"                                         throttles per server, all accounts together\n"
	"                                         (B: N, Nk, NM, NG = 10^3, 10^6, 10^9 bytes); a\n"
	"                                         spent day budget pauses until 00:00 UTC\n"
	"  --src-max-account-bytes-per-day B, --dst-max-account-bytes-per-day B\n"
	"                                         each account's own day budget on a server\n"
	"  -q, --quiet | -v, --verbose | --debug | --no-progress\n"
	"\n"
	"Exit status of migrate: 0 all copied, 1 some messages or folders failed, 2 usage,\n"
	"3 login refused, 4 server unreachable or TLS refused, 5 interrupted, 6 other.\n"
	"Of run, check, verify, provision and spool: 0 every account ok (verify:\n"
	"complete), 1 some accounts not, 2 usage, 5 interrupted, 6 the job could not run.\n";

/* ---- signals --------------------------------------------------------------- */

static volatile sig_atomic_t stop_signals;

static void on_stop_signal(int sig)
{
	/* First signal: stop cleanly (every wait gives up, the ledger is
	 * consistent at every point).  Second: the default action. */
	if (stop_signals++ > 0) {
		signal(sig, SIG_DFL);
		raise(sig);
		return;
	}
	net_cancel_all();
}

static void setup_signals(void)
{
	struct sigaction sa;

	/* A server hanging up (Dovecot after [LIMIT]) must not kill us. */
	signal(SIGPIPE, SIG_IGN);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

/* ---- passwords ------------------------------------------------------------ */

/* file, else environment variable, else (if prompt) the terminal; else NULL. */
static int get_secret(const char *file, const char *env, const char *prompt, char **out,
		      struct tr_error *err)
{
	int r;

	*out = NULL;
	if (file != NULL)
		return secret_from_file(file, out, err);
	r = secret_from_env(env, out, err);
	if (r != 0)
		return r < 0 ? -1 : 0;
	if (prompt == NULL)
		return 0;
	return secret_from_tty(prompt, out, err);
}

/* ---- what every command sets up -------------------------------------------- */

struct setup {
	const struct job_config *cfg;
	struct run_env env;
	struct tls_ctx *tls;
	struct state *state;
	char *admin_pw, *src_admin_pw;
	char *log_dir;
	char started[32];
};

static void set_verbosity(const struct job_config *cfg)
{
	log_set_level(cfg->verbosity < 0 ? LOG_WARN : cfg->verbosity <= 1 ? LOG_INFO : LOG_DEBUG);
	log_set_progress_enabled(cfg->progress && cfg->verbosity >= 0 && isatty(STDERR_FILENO));
}

/* TLS context, state, limiters and the shared run environment. */
static int setup_env(struct setup *su, bool want_state, struct tr_error *err)
{
	const struct job_config *cfg = su->cfg;
	struct run_env *env = &su->env;
	time_t now = time(NULL);
	struct tm tm;

	gmtime_r(&now, &tm);
	strftime(su->started, sizeof(su->started), "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (cfg->dst_admin != NULL &&
	    get_secret(cfg->dst_admin_password_file, "TRASLOCO_DST_ADMIN_PASSWORD",
		       cfg->kind == JOB_MIGRATE ? "destination admin password" : NULL,
		       &su->admin_pw, err) < 0)
		return -1;
	if (cfg->dst_admin != NULL && su->admin_pw == NULL) {
		tr_error_set(err, TR_ERR_USAGE, "--dst-admin needs --dst-admin-password-file or "
			     "$TRASLOCO_DST_ADMIN_PASSWORD");
		return -1;
	}
	if (cfg->src_admin != NULL &&
	    get_secret(cfg->src_admin_password_file, "TRASLOCO_SRC_ADMIN_PASSWORD",
		       cfg->kind == JOB_MIGRATE ? "source admin password" : NULL,
		       &su->src_admin_pw, err) < 0)
		return -1;
	if (cfg->src_admin != NULL && su->src_admin_pw == NULL) {
		tr_error_set(err, TR_ERR_USAGE, "--src-admin needs --src-admin-password-file or "
			     "$TRASLOCO_SRC_ADMIN_PASSWORD");
		return -1;
	}
	if (cfg->insecure)
		log_warn(NULL, "--insecure: server certificates are NOT verified; anyone on the "
			 "path can read these passwords and this mail");
	if (cfg->src.tls == JOBCONF_TLS_NONE || cfg->dst.tls == JOBCONF_TLS_NONE)
		log_warn(NULL, "TLS is off for the %s: passwords and mail travel in clear",
			 cfg->src.tls == JOBCONF_TLS_NONE ? (cfg->dst.tls == JOBCONF_TLS_NONE ?
			 "source and destination" : "source") : "destination");
	if (tls_ctx_new(cfg->ca_file, cfg->insecure, &su->tls, err) < 0)
		return -1;
	if (want_state && state_open(cfg->state_dir, &su->state, err) < 0)
		return -1;

	if (run_env_init(env, cfg, su->tls, su->state, su->admin_pw, err) < 0)
		return -1;
	env->src_admin_password = su->src_admin_pw;
	env->progress_tty = log_progress_enabled();
	env->progress_log = !env->progress_tty && cfg->verbosity >= 0;
	if (cfg->kind == JOB_RUN) {
		if (cfg->log_dir != NULL) {
			su->log_dir = strdup(cfg->log_dir);
		} else if (cfg->state_dir != NULL && !pg_is_dsn(cfg->state_dir)) {
			/* the state's own directory: "sqlite:DIR" is DIR (a database
			 * state has none: no per-account logs unless --log-dir) */
			const char *dir = strncmp(cfg->state_dir, "sqlite:", 7) == 0 ?
					  cfg->state_dir + 7 : cfg->state_dir;
			size_t len = strlen(dir) + sizeof("/logs");

			su->log_dir = malloc(len);
			if (su->log_dir != NULL)
				snprintf(su->log_dir, len, "%s/logs", dir);
		}
		if (su->log_dir != NULL && mkdir(su->log_dir, 0700) < 0 && errno != EEXIST)
			log_warn(NULL, "cannot create the log directory %s: %s", su->log_dir,
				 strerror(errno));
		env->log_dir = su->log_dir;
	}
	return 0;
}

static void setup_free(struct setup *su)
{
	run_env_free(&su->env);
	state_close(su->state);
	tls_ctx_free(su->tls);
	secret_free(su->admin_pw);
	secret_free(su->src_admin_pw);
	free(su->log_dir);
}

/* Parse; prints usage or the error.  Returns -1 to go on, else an exit code
 * (cfg is to be freed in both cases). */
static int parse_or_exit(enum job_kind kind, const char *name, int argc, char **argv,
			 struct job_config *cfg)
{
	struct tr_error err;
	int r;

	tr_error_clear(&err);
	r = cli_parse(kind, argc, argv, cfg, &err);
	if (r > 0) {
		cli_command_help(stdout, name);
		return EXIT_OK;
	}
	if (r < 0) {
		fprintf(stderr, "trasloco %s: %s\n(see trasloco help)\n", name, err.msg);
		return err.kind == TR_ERR_LOCAL ? EXIT_FAILED : EXIT_USAGE;
	}
	return -1;
}

/* ---- migrate ------------------------------------------------------------- */

static int exit_code_for_kind(enum tr_err_kind kind)
{
	switch (kind) {
	case TR_ERR_AUTH: return EXIT_AUTH;
	case TR_ERR_TLS:
	case TR_ERR_CONNECT:
	case TR_ERR_TEMP:
	case TR_ERR_WAIT: return EXIT_CONNECT;
	case TR_ERR_STOPPED: return EXIT_STOPPED;
	case TR_ERR_USAGE: return EXIT_USAGE;
	default: return EXIT_FAILED;
	}
}

static int exit_code_for(const struct account_result *r)
{
	switch (r->status) {
	case ACCOUNT_OK: return EXIT_OK;
	case ACCOUNT_PARTIAL: return EXIT_PARTIAL;
	case ACCOUNT_PAUSED: return EXIT_PAUSED;
	case ACCOUNT_FAILED: break;
	}
	return exit_code_for_kind(r->err.kind);
}

/* migrate --dry-run: the account's plan (check --folders for one account),
 * nothing copied, no state written.  The exit code. */
static int migrate_plan(const struct setup *su, const struct run_account *acc)
{
	struct preflight_item *items = NULL;
	struct tr_error err;
	int code;

	tr_error_clear(&err);
	preflight_run(&su->env, acc, 1, &items);
	if (items == NULL) {
		log_error(acc->label, "out of memory");
		return EXIT_FAILED;
	}
	preflight_print(stdout, items, 1);
	fflush(stdout);
	if (su->cfg->report != NULL && preflight_json(su->cfg->report, items, 1, &err) < 0)
		log_error(NULL, "%s", err.msg);
	if (net_cancelled())
		code = EXIT_STOPPED;
	else if (items[0].err.kind != TR_ERR_NONE)
		code = exit_code_for_kind(items[0].err.kind);
	else
		code = items[0].fits ? EXIT_OK : EXIT_PARTIAL;
	preflight_items_free(items, 1);
	return code;
}

static int cmd_migrate(int argc, char **argv)
{
	struct job_config cfg;
	struct setup su;
	struct tr_error err;
	struct run_account acc;
	struct run_result res;
	char *src_pw = NULL, *dst_pw = NULL;
	int code;

	memset(&su, 0, sizeof(su));
	code = parse_or_exit(JOB_MIGRATE, "migrate", argc, argv, &cfg);
	if (code >= 0) {
		jobconf_free(&cfg);
		return code;
	}
	su.cfg = &cfg;
	set_verbosity(&cfg);
	tr_error_clear(&err);
	/* Passwords first: a prompt must come before any other output. */
	if ((cfg.src_admin == NULL && cfg.src_auth == JOBCONF_AUTH_PASSWORD &&
	     get_secret(cfg.src_password_file, "TRASLOCO_SRC_PASSWORD", "source password",
			&src_pw, &err) < 0) ||
	    (cfg.dst_admin == NULL && cfg.dst_auth == JOBCONF_AUTH_PASSWORD &&
	     get_secret(cfg.dst_password_file, "TRASLOCO_DST_PASSWORD", NULL, &dst_pw, &err) < 0)) {
		fprintf(stderr, "trasloco migrate: %s\n", err.msg);
		code = err.kind == TR_ERR_LOCAL ? EXIT_FAILED : EXIT_USAGE;
		goto out;
	}
	if (cfg.src_admin != NULL && cfg.dst_admin == NULL && dst_pw == NULL) {
		fprintf(stderr, "trasloco migrate: with --src-admin the destination needs "
			"--dst-password-file (or $TRASLOCO_DST_PASSWORD) or --dst-admin\n");
		code = EXIT_USAGE;
		goto out;
	}
	if (setup_env(&su, !cfg.dry_run, &err) < 0) {
		log_error(cfg.user, "%s", err.msg);
		code = err.kind == TR_ERR_TLS ? EXIT_CONNECT : err.kind == TR_ERR_USAGE ? EXIT_USAGE
											  : EXIT_FAILED;
		goto out;
	}
	memset(&acc, 0, sizeof(acc));
	acc.label = cfg.user;
	acc.src_user = cfg.src_user;
	acc.src_password = src_pw;
	acc.dst_user = cfg.dst_user;
	acc.dst_password = dst_pw;
	if (cfg.dry_run) {
		code = migrate_plan(&su, &acc);
		goto out;
	}
	log_info(cfg.user, "state in %s", state_path(su.state));
	if ((cfg.final ? final_run(&su.env, &acc, 1, &res) : run_accounts(&su.env, &acc, 1, &res)) < 0 &&
	    res.v == NULL) {
		log_error(cfg.user, "out of memory");
		code = EXIT_FAILED;
		goto out;
	}
	report_summary(stdout, cfg.user, &res.v[0].res);
	report_final(stdout, &res.v[0]);
	fflush(stdout);
	code = res.v[0].started ? exit_code_for(&res.v[0].res) : EXIT_STOPPED;
	/* copied, but not verified complete: not done */
	if (code == EXIT_OK && cfg.final && res.v[0].final != RUN_FINAL_FINISHED)
		code = EXIT_PARTIAL;
	run_result_free(&res);
out:
	secret_free(src_pw);
	secret_free(dst_pw);
	setup_free(&su);
	jobconf_free(&cfg);
	return code;
}

/* ---- run and check ----------------------------------------------------------- */

/* The CSV's accounts as run_accounts (borrowing its strings). */
static struct run_account *accounts_from(const struct job_accounts *ja)
{
	struct run_account *v = calloc(ja->n + 1, sizeof(*v));
	size_t i;

	if (v == NULL)
		return NULL;
	for (i = 0; i < ja->n; i++) {
		const struct job_account *a = &ja->v[i];

		v[i].label = a->email;
		v[i].src_user = a->src_user != NULL ? a->src_user : a->email;
		v[i].src_password = a->password;
		v[i].dst_user = a->dst_user != NULL ? a->dst_user : a->email;
		v[i].dst_password = a->dst_password;
	}
	return v;
}

/* Load and check the accounts file; prints the rows it skips. */
/* *bad gets the skipped rows (problems with a line number); problems
 * without one are warnings about the whole file (e.g. its permissions). */
static int load_accounts(const struct job_config *cfg, struct job_accounts *ja,
			 const char ***bad, size_t *n_bad, struct tr_error *err)
{
	bool no_pw = !jobconf_csv_needs_passwords(cfg);
	size_t i;

	*n_bad = 0;
	if (job_accounts_load_opt(cfg->accounts, no_pw ? JOB_ACCOUNTS_NO_PASSWORD : 0, ja,
				  err) < 0)
		return -1;
	*bad = calloc(ja->n_bad + 1, sizeof(**bad));
	for (i = 0; i < ja->n_bad; i++) {
		if (ja->bad[i].line == 0) {
			log_warn(NULL, "%s", ja->bad[i].what);
			continue;
		}
		log_warn(NULL, "%s: skipped %s", cfg->accounts, ja->bad[i].what);
		if (*bad != NULL)
			(*bad)[(*n_bad)++] = ja->bad[i].what;
	}
	if (ja->n == 0) {
		tr_error_set(err, TR_ERR_USAGE, "%s: no account to migrate", cfg->accounts);
		return -1;
	}
	return 0;
}

/* `trasloco provision`: each account in turn (a command of the provider's
 * or a file under a lock: nothing gained by running them at once).  One
 * line per account on stdout; the exit code. */
static int provision_batch(const struct run_env *env, const struct run_account *accs, size_t n,
			   size_t n_bad)
{
	char t[4 * JOB_MAX_FIELD + 1], m[4 * sizeof(((struct tr_error *)0)->msg) + 1];
	size_t i, failed = 0, added = 0, present = 0;

	for (i = 0; i < n && !net_cancelled(); i++) {
		struct tr_error err;
		int r;

		tr_error_clear(&err);
		r = run_provision(env, &accs[i], &err);
		if (r < 0) {
			failed++;
			log_error(accs[i].label, "%s", err.msg);
			printf("%-40s failed: %s\n", text_clean_str(t, sizeof(t), accs[i].label, NULL),
			       text_clean_str(m, sizeof(m), err.msg, NULL));
		} else {
			if (r > 0)
				added++;
			else
				present++;
			printf("%-40s %s\n", text_clean_str(t, sizeof(t), accs[i].label, NULL),
			       r > 0 ? (env->cfg->provision_cmd != NULL ? "ok" : "added")
				     : "already there");
		}
	}
	printf("%zu account(s): %zu %s, %zu already there, %zu failed%s\n", n, added,
	       env->cfg->provision_cmd != NULL ? "ok" : "added", present, failed,
	       i < n ? ", the rest not done (interrupted)" : "");
	fflush(stdout);
	if (net_cancelled())
		return EXIT_STOPPED;
	return failed == 0 && n_bad == 0 ? EXIT_OK : EXIT_PARTIAL;
}

/* Run, check or verify the accounts of a finished configuration; returns
 * the exit code. */
static int run_batch(const struct job_config *cfg)
{
	const char *name = cfg->kind == JOB_RUN ? "run" : cfg->kind == JOB_CHECK ? "check" :
			   cfg->kind == JOB_PROVISION ? "provision" : "verify";
	struct setup su;
	struct tr_error err;
	struct job_accounts ja;
	struct run_account *accs = NULL;
	const char **bad = NULL;
	size_t n_bad = 0;
	char src[300], dst[300];
	int code;

	memset(&ja, 0, sizeof(ja));
	memset(&su, 0, sizeof(su));
	su.cfg = cfg;
	set_verbosity(cfg);
	tr_error_clear(&err);
	if (load_accounts(cfg, &ja, &bad, &n_bad, &err) < 0) {
		log_error(NULL, "%s", err.msg);
		code = err.kind == TR_ERR_USAGE ? EXIT_USAGE : EXIT_FAILED;
		goto out;
	}
	accs = accounts_from(&ja);
	if (accs == NULL || setup_env(&su, cfg->kind == JOB_RUN, &err) < 0) {
		log_error(NULL, "%s", accs == NULL ? "out of memory" : err.msg);
		code = err.kind == TR_ERR_USAGE ? EXIT_USAGE : EXIT_FAILED;
		goto out;
	}
	snprintf(src, sizeof(src), "%s:%d", cfg->src.host, cfg->src.port);
	snprintf(dst, sizeof(dst), "%s:%d", cfg->dst.host, cfg->dst.port);
	log_info(NULL, "%s: %zu account(s) from %s to %s, %d at a time%s%s", name, ja.n, src, dst,
		 su.env.parallel_accounts, su.state ? ", state in " : "",
		 su.state ? state_path(su.state) : "");
	if (cfg->kind == JOB_PROVISION) {
		code = provision_batch(&su.env, accs, ja.n, n_bad);
	} else if (cfg->kind == JOB_RUN) {
		struct run_result res;
		struct report_job rj = {
			.name = cfg->name != NULL ? cfg->name : cfg->accounts,
			.src = src, .dst = dst, .started = su.started,
			.bad_rows = bad, .n_bad_rows = n_bad, .cfg = cfg,
		};
		int fr = 0;

		if (cfg->final)
			fr = final_run(&su.env, accs, ja.n, &res);
		else
			run_accounts(&su.env, accs, ja.n, &res);
		if (res.v == NULL) {
			code = EXIT_FAILED;
			goto out;
		}
		report_table(stdout, &res);
		fflush(stdout);
		if (cfg->report != NULL && report_json(cfg->report, &rj, &res, &err) < 0)
			log_error(NULL, "%s", err.msg);
		if (cfg->report_csv != NULL && report_csv(cfg->report_csv, &res, &err) < 0)
			log_error(NULL, "%s", err.msg);
		code = net_cancelled() ? EXIT_STOPPED :
		       res.ok == res.n && n_bad == 0 && fr == 0 ? EXIT_OK :
		       res.paused > 0 && res.ok + res.paused == res.n && n_bad == 0 && fr == 0 ?
		       EXIT_PAUSED : EXIT_PARTIAL;
		run_result_free(&res);
	} else if (cfg->kind == JOB_VERIFY) {
		struct verify_item *items = NULL;
		int r = verify_run(&su.env, accs, ja.n, cfg->content, &items);

		if (items == NULL) {
			code = EXIT_FAILED;
			goto out;
		}
		verify_print(stdout, items, ja.n);
		fflush(stdout);
		if (cfg->report != NULL && verify_json(cfg->report, items, ja.n, &err) < 0)
			log_error(NULL, "%s", err.msg);
		code = net_cancelled() ? EXIT_STOPPED : r == 0 && n_bad == 0 ? EXIT_OK : EXIT_PARTIAL;
		verify_items_free(items, ja.n);
	} else {
		struct preflight_item *items = NULL;
		int r = preflight_run(&su.env, accs, ja.n, &items);

		if (items == NULL) {
			code = EXIT_FAILED;
			goto out;
		}
		preflight_print(stdout, items, ja.n);
		fflush(stdout);
		if (cfg->report != NULL && preflight_json(cfg->report, items, ja.n, &err) < 0)
			log_error(NULL, "%s", err.msg);
		code = net_cancelled() ? EXIT_STOPPED : r == 0 && n_bad == 0 ? EXIT_OK : EXIT_PARTIAL;
		preflight_items_free(items, ja.n);
	}
out:
	free(accs);
	free(bad);
	job_accounts_free(&ja);
	setup_free(&su);
	return code;
}

static int cmd_run_or_check(enum job_kind kind, int argc, char **argv)
{
	const char *name = kind == JOB_RUN ? "run" : kind == JOB_CHECK ? "check" :
			   kind == JOB_PROVISION ? "provision" : "verify";
	struct job_config cfg;
	int code = parse_or_exit(kind, name, argc, argv, &cfg);

	if (code < 0)
		code = run_batch(&cfg);
	jobconf_free(&cfg);
	return code;
}

/* ---- spool ------------------------------------------------------------------- */

_Static_assert(EXIT_PAUSED == JOBDIR_LATER, "a paused spool job goes back to pending");

static int run_spooled(const struct job_config *cfg, void *ctx)
{
	(void)ctx;
	return run_batch(cfg);
}

static int cmd_spool(int argc, char **argv)
{
	struct tr_error err;
	struct job_file conf;
	struct cli_args args;
	struct jobdir_op op[2];
	const char *config = NULL;
	char **opts = NULL, dir[4096], *conf_dir = NULL;
	int n_opts = 0, ran, failed, i, r, code = EXIT_USAGE;
	size_t len, n_op = 0;

	memset(&conf, 0, sizeof(conf));
	memset(&args, 0, sizeof(args));
	tr_error_clear(&err);
	if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		cli_command_help(stdout, "spool");
		return EXIT_OK;
	}
	if (argc < 2 || argv[1][0] == '-') {
		fprintf(stderr, "usage: trasloco spool DIR [--config FILE] [options for every job]\n"
			"(see trasloco spool --help)\n");
		return EXIT_USAGE;
	}
	/* without trailing slashes: "DIR/" would make lstat follow a link */
	len = strlen(argv[1]);
	while (len > 1 && argv[1][len - 1] == '/')
		len--;
	if (len >= sizeof(dir)) {
		fprintf(stderr, "trasloco spool: directory name too long\n");
		return EXIT_USAGE;
	}
	snprintf(dir, sizeof(dir), "%.*s", (int)len, argv[1]);
	opts = calloc((size_t)argc + 1, sizeof(*opts));
	if (opts == NULL)
		return EXIT_FAILED;
	opts[n_opts++] = (char *)"spool";
	for (i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
			config = argv[++i];
			continue;
		}
		if (strncmp(argv[i], "--config=", 9) == 0) {
			config = argv[i] + 9;
			continue;
		}
		if (strcmp(argv[i], "--config") == 0) {
			fprintf(stderr, "trasloco spool: option --config needs a value\n");
			goto out;
		}
		opts[n_opts++] = argv[i];
	}
	if (config != NULL) {
		if (jobdir_config_read(config, &conf, &err) < 0 ||
		    (conf_dir = job_file_dir(config)) == NULL) {
			if (conf_dir == NULL && err.kind == TR_ERR_NONE)
				tr_error_set(&err, TR_ERR_LOCAL, "out of memory");
			fprintf(stderr, "trasloco spool: %s\n", err.msg);
			code = err.kind == TR_ERR_LOCAL ? EXIT_FAILED : EXIT_USAGE;
			goto out;
		}
		/* the config's settings first: the command line's win */
		op[n_op].settings = &conf;
		op[n_op].origin = (struct jobconf_origin){ .from = JOBCONF_OPERATOR, .dir = conf_dir };
		n_op++;
	}
	r = cli_read_args(n_opts, opts, &args, &err);
	if (r > 0) {
		cli_command_help(stdout, "spool");
		code = EXIT_OK;
		goto out;
	} else if (r == 0 && args.n_args > 0) {
		tr_error_set(&err, TR_ERR_USAGE, "unexpected argument \"%s\"", args.args[0]);
		r = -1;
	}
	if (r < 0) {
		fprintf(stderr, "trasloco spool: %s\n(see trasloco help)\n", err.msg);
		code = err.kind == TR_ERR_LOCAL ? EXIT_FAILED : EXIT_USAGE;
		goto out;
	}
	op[n_op].settings = &args.settings;
	op[n_op].origin = (struct jobconf_origin){ .from = JOBCONF_CALLER };
	n_op++;
	tr_error_clear(&err);
	if (jobdir_run(dir, op, n_op, run_spooled, NULL, &ran, &failed, &err) < 0) {
		if (err.kind == TR_ERR_USAGE) {
			fprintf(stderr, "trasloco spool: %s\n(see trasloco help)\n", err.msg);
			code = EXIT_USAGE;
		} else {
			log_error(NULL, "%s", err.msg);
			code = EXIT_FAILED;
		}
		goto out;
	}
	if (net_cancelled())
		code = EXIT_STOPPED;
	else
		code = failed > 0 ? EXIT_PARTIAL : EXIT_OK;
out:
	free(opts);
	free(conf_dir);
	job_file_free(&conf);
	cli_args_free(&args);
	return code;
}

/* A core file of this process would hold every customer's password: no
 * core (RLIMIT_CORE 0, soft and hard, so no child can raise it again),
 * and not dumpable, which also keeps other processes of the same user
 * from attaching with ptrace or reading /proc/PID/mem and environ.  Done
 * before anything reads a password. */
static void harden_process(void)
{
	const struct rlimit none = { 0, 0 };

	if (setrlimit(RLIMIT_CORE, &none) < 0)
		fprintf(stderr, "trasloco: cannot disable core files: %s\n", strerror(errno));
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		fprintf(stderr, "trasloco: cannot make the process non-dumpable: %s\n",
			strerror(errno));
}

int cli_main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : NULL;

	harden_process();
	setup_signals();
	if (cmd != NULL && strcmp(cmd, "help") == 0 && argc > 2) {
		if (cli_command_help(stdout, argv[2]) == 0)
			return EXIT_OK;
		if (strcmp(argv[2], "queue") == 0) {
			fputs(cli_queue_usage_text, stdout);
			return EXIT_OK;
		}
		if (strcmp(argv[2], "worker") == 0) {
			fputs(cli_worker_usage, stdout);
			return EXIT_OK;
		}
		if (strcmp(argv[2], "serve") == 0) {
			fputs(cli_serve_usage, stdout);
			return EXIT_OK;
		}
	}
	if (cmd == NULL || strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 ||
	    strcmp(cmd, "-h") == 0) {
		fputs(cli_usage_text, cmd == NULL ? stderr : stdout);
		return cmd == NULL ? EXIT_USAGE : EXIT_OK;
	}
	if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
		return cli_version(stdout) == 0 ? EXIT_OK : EXIT_FAILED;
	}
	if (strcmp(cmd, "migrate") == 0)
		return cmd_migrate(argc - 1, argv + 1);
	if (strcmp(cmd, "run") == 0)
		return cmd_run_or_check(JOB_RUN, argc - 1, argv + 1);
	if (strcmp(cmd, "check") == 0)
		return cmd_run_or_check(JOB_CHECK, argc - 1, argv + 1);
	if (strcmp(cmd, "verify") == 0)
		return cmd_run_or_check(JOB_VERIFY, argc - 1, argv + 1);
	if (strcmp(cmd, "provision") == 0)
		return cmd_run_or_check(JOB_PROVISION, argc - 1, argv + 1);
	if (strcmp(cmd, "spool") == 0)
		return cmd_spool(argc - 1, argv + 1);
	if (strcmp(cmd, "worker") == 0)
		return cli_worker_main(argc - 1, argv + 1);
	if (strcmp(cmd, "queue") == 0)
		return cli_queue(argc - 1, argv + 1);
	if (strcmp(cmd, "serve") == 0)
		return cli_serve_main(argc - 1, argv + 1);
	fprintf(stderr, "trasloco: unknown command \"%s\"\n%s", cmd, cli_usage_text);
	return EXIT_USAGE;
}
