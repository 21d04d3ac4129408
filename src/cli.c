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
#include "job.h"
#include "jobdir.h"
#include "log.h"
#include "net.h"
#include "preflight.h"
#include "report.h"
#include "run.h"
#include "scheduler.h"
#include "secret.h"
#include "state.h"
#include "tls.h"
#include "verify.h"

const char cli_usage_text[] =
	"usage: trasloco migrate --src HOST[:PORT] --dst HOST[:PORT] --user EMAIL [options]\n"
	"       trasloco run ACCOUNTS.csv|JOB.job [options]\n"
	"       trasloco check ACCOUNTS.csv|JOB.job [options]\n"
	"       trasloco verify ACCOUNTS.csv|JOB.job [options]\n"
	"       trasloco spool DIR [--config FILE] [options]\n"
	"       trasloco help | version\n"
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
	"Engine:\n"
	"  --state DIR                            default $XDG_STATE_HOME/trasloco\n"
	"  --parallel-accounts N                  accounts at once (run, check, verify; default 4)\n"
	"  --src-max-per-account N, --dst-max-per-account N\n"
	"                                         sessions per account per server (default 4)\n"
	"  --src-max-connections N, --dst-max-connections N\n"
	"                                         sessions per server in all (default 40)\n"
	"  --report FILE, --report-csv FILE       JSON / CSV report (run; JSON: check, verify)\n"
	"  --content                              verify: compare whole contents (SHA-256),\n"
	"                                         downloading every message from both sides\n"
	"  --log-dir DIR                          a log per account (run; default STATE/logs)\n"
	"  --timeout SECONDS                      network idle timeout (default 120)\n"
	"  --retries N                            attempts on transient errors (default 5)\n"
	"  --batch-size MB                        bytes per FETCH/APPEND batch (default 16)\n"
	"  --batch-count N                        messages per batch (default 100)\n"
	"  -q, --quiet | -v, --verbose | --debug | --no-progress\n"
	"\n"
	"Exit status of migrate: 0 all copied, 1 some messages or folders failed, 2 usage,\n"
	"3 login refused, 4 server unreachable or TLS refused, 5 interrupted, 6 other.\n"
	"Of run, check, verify and spool: 0 every account ok (verify: complete), 1 some\n"
	"accounts not, 2 usage,\n"
	"5 interrupted, 6 the job could not run.\n";

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
	struct cli_opts o;
	struct run_env env;
	struct tls_ctx *tls;
	struct state *state;
	char *admin_pw;
	char *log_dir;
	char started[32];
};

static void set_verbosity(const struct cli_opts *o)
{
	log_set_level(o->verbosity < 0 ? LOG_WARN : o->verbosity <= 1 ? LOG_INFO : LOG_DEBUG);
	log_set_progress_enabled(o->progress && o->verbosity >= 0 && isatty(STDERR_FILENO));
}

/* TLS context, state, limiters and the shared run environment. */
static int setup_env(struct setup *su, bool want_state, struct tr_error *err)
{
	struct cli_opts *o = &su->o;
	struct run_env *env = &su->env;
	time_t now = time(NULL);
	struct tm tm;

	gmtime_r(&now, &tm);
	strftime(su->started, sizeof(su->started), "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (o->dst_admin != NULL &&
	    get_secret(o->dst_admin_password_file, "TRASLOCO_DST_ADMIN_PASSWORD",
		       o->cmd == CMD_MIGRATE ? "destination admin password" : NULL, &su->admin_pw,
		       err) < 0)
		return -1;
	if (o->dst_admin != NULL && su->admin_pw == NULL) {
		tr_error_set(err, TR_ERR_USAGE, "--dst-admin needs --dst-admin-password-file or "
			     "$TRASLOCO_DST_ADMIN_PASSWORD");
		return -1;
	}
	if (o->insecure)
		log_warn(NULL, "--insecure: server certificates are NOT verified; anyone on the "
			 "path can read these passwords and this mail");
	if (o->src.tls == TLS_MODE_NONE || o->dst.tls == TLS_MODE_NONE)
		log_warn(NULL, "TLS is off for the %s: passwords and mail travel in clear",
			 o->src.tls == TLS_MODE_NONE ? (o->dst.tls == TLS_MODE_NONE ? "source and "
						       "destination" : "source") : "destination");
	if (tls_ctx_new(o->ca_file, o->insecure, &su->tls, err) < 0)
		return -1;
	if (want_state && state_open(o->state_dir, &su->state, err) < 0)
		return -1;

	memset(env, 0, sizeof(*env));
	env->src_ep.label = "source";
	env->src_ep.host = o->src.host;
	env->src_ep.port = o->src.port;
	env->src_ep.tls = o->src.tls;
	env->src_ep.tls_name = o->src.tls_name;
	env->src_ep.tls_ctx = su->tls;
	env->src_ep.timeout_s = o->timeout_s;
	env->dst_ep = env->src_ep;
	env->dst_ep.label = "destination";
	env->dst_ep.host = o->dst.host;
	env->dst_ep.port = o->dst.port;
	env->dst_ep.tls = o->dst.tls;
	env->dst_ep.tls_name = o->dst.tls_name;
	env->state = su->state;
	env->src_lim = limiter_new("the source", o->src_max_per_account, o->src_max_connections);
	env->dst_lim = limiter_new("the destination", o->dst_max_per_account,
				   o->dst_max_connections);
	if (env->src_lim == NULL || env->dst_lim == NULL) {
		tr_error_set(err, TR_ERR_LOCAL, "out of memory");
		return -1;
	}
	env->map.keep_names = o->keep_names;
	env->map.rules = o->maps;
	env->map.n_rules = o->n_maps;
	env->map.filter.include = (const char **)o->folders;
	env->map.filter.n_include = o->n_folders;
	env->map.filter.exclude = (const char **)o->excludes;
	env->map.filter.n_exclude = o->n_excludes;
	env->limits.batch_bytes = o->batch_bytes;
	env->limits.batch_count = o->batch_count;
	env->dst_admin = o->dst_admin;
	env->dst_admin_password = su->admin_pw;
	env->dst_admin_separator = o->dst_admin_separator;
	env->max_sessions = o->src_max_per_account < o->dst_max_per_account ?
			    o->src_max_per_account : o->dst_max_per_account;
	env->retries = o->retries;
	env->spool_dir = o->spool_dir;
	env->subscribe = !o->no_subscriptions;
	env->parallel_accounts = o->cmd == CMD_MIGRATE ? 1 : o->parallel_accounts;
	env->progress_tty = log_progress_enabled();
	env->progress_log = !env->progress_tty && o->verbosity >= 0;
	if (o->cmd == CMD_RUN) {
		if (o->log_dir != NULL) {
			su->log_dir = strdup(o->log_dir);
		} else if (o->state_dir != NULL) {
			size_t len = strlen(o->state_dir) + sizeof("/logs");

			su->log_dir = malloc(len);
			if (su->log_dir != NULL)
				snprintf(su->log_dir, len, "%s/logs", o->state_dir);
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
	limiter_free(su->env.src_lim);
	limiter_free(su->env.dst_lim);
	state_close(su->state);
	tls_ctx_free(su->tls);
	secret_free(su->admin_pw);
	free(su->log_dir);
	cli_opts_free(&su->o);
}

/* Parse; prints usage or the error.  Returns -1 to go on, else an exit code. */
static int parse_or_exit(enum cli_cmd cmd, const char *name, int argc, char **argv,
			 struct setup *su)
{
	struct tr_error err;
	int r;

	memset(su, 0, sizeof(*su));
	tr_error_clear(&err);
	r = cli_parse(cmd, argc, argv, &su->o, &err);
	if (r > 0) {
		fputs(cli_usage_text, stdout);
		return EXIT_OK;
	}
	if (r < 0) {
		fprintf(stderr, "trasloco %s: %s\n(see trasloco help)\n", name, err.msg);
		return err.kind == TR_ERR_LOCAL ? EXIT_FAILED : EXIT_USAGE;
	}
	set_verbosity(&su->o);
	return -1;
}

/* ---- migrate ------------------------------------------------------------- */

static int exit_code_for(const struct account_result *r)
{
	switch (r->status) {
	case ACCOUNT_OK: return EXIT_OK;
	case ACCOUNT_PARTIAL: return EXIT_PARTIAL;
	case ACCOUNT_FAILED: break;
	}
	switch (r->err.kind) {
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

static int cmd_migrate(int argc, char **argv)
{
	struct setup su;
	struct tr_error err;
	struct run_account acc;
	struct run_result res;
	char *src_pw = NULL, *dst_pw = NULL;
	int code;

	code = parse_or_exit(CMD_MIGRATE, "migrate", argc, argv, &su);
	if (code >= 0) {
		cli_opts_free(&su.o);
		return code;
	}
	tr_error_clear(&err);
	/* Passwords first: a prompt must come before any other output. */
	if (get_secret(su.o.src_password_file, "TRASLOCO_SRC_PASSWORD", "source password",
		       &src_pw, &err) < 0 ||
	    (su.o.dst_admin == NULL &&
	     get_secret(su.o.dst_password_file, "TRASLOCO_DST_PASSWORD", NULL, &dst_pw, &err) < 0)) {
		fprintf(stderr, "trasloco migrate: %s\n", err.msg);
		code = err.kind == TR_ERR_LOCAL ? EXIT_FAILED : EXIT_USAGE;
		goto out;
	}
	if (setup_env(&su, true, &err) < 0) {
		log_error(su.o.user, "%s", err.msg);
		code = err.kind == TR_ERR_TLS ? EXIT_CONNECT : err.kind == TR_ERR_USAGE ? EXIT_USAGE
											  : EXIT_FAILED;
		goto out;
	}
	memset(&acc, 0, sizeof(acc));
	acc.label = su.o.user;
	acc.src_user = su.o.src_user;
	acc.src_password = src_pw;
	acc.dst_user = su.o.dst_user;
	acc.dst_password = dst_pw;
	log_info(su.o.user, "state in %s", state_path(su.state));
	if (run_accounts(&su.env, &acc, 1, &res) < 0 && res.v == NULL) {
		log_error(su.o.user, "out of memory");
		code = EXIT_FAILED;
		goto out;
	}
	report_summary(stdout, su.o.user, &res.v[0].res);
	fflush(stdout);
	code = res.v[0].started ? exit_code_for(&res.v[0].res) : EXIT_STOPPED;
	run_result_free(&res);
out:
	secret_free(src_pw);
	secret_free(dst_pw);
	setup_free(&su);
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
static int load_accounts(const struct cli_opts *o, struct job_accounts *ja, const char ***bad,
			 size_t *n_bad, struct tr_error *err)
{
	size_t i;

	*n_bad = 0;
	if (job_accounts_load(o->accounts, ja, err) < 0)
		return -1;
	*bad = calloc(ja->n_bad + 1, sizeof(**bad));
	for (i = 0; i < ja->n_bad; i++) {
		if (ja->bad[i].line == 0) {
			log_warn(NULL, "%s", ja->bad[i].what);
			continue;
		}
		log_warn(NULL, "%s: skipped %s", o->accounts, ja->bad[i].what);
		if (*bad != NULL)
			(*bad)[(*n_bad)++] = ja->bad[i].what;
	}
	if (ja->n == 0) {
		tr_error_set(err, TR_ERR_USAGE, "%s: no account to migrate", o->accounts);
		return -1;
	}
	return 0;
}

static int cmd_run_or_check(enum cli_cmd cmd, int argc, char **argv, const char *report_override)
{
	const char *name = cmd == CMD_RUN ? "run" : cmd == CMD_CHECK ? "check" : "verify";
	struct setup su;
	struct tr_error err;
	struct job_accounts ja;
	struct run_account *accs = NULL;
	const char **bad = NULL;
	size_t n_bad = 0;
	char src[300], dst[300];
	int code;

	memset(&ja, 0, sizeof(ja));
	code = parse_or_exit(cmd, name, argc, argv, &su);
	if (code >= 0) {
		cli_opts_free(&su.o);
		return code;
	}
	tr_error_clear(&err);
	if (report_override != NULL) {
		free(su.o.report);
		su.o.report = strdup(report_override);
	}
	if (load_accounts(&su.o, &ja, &bad, &n_bad, &err) < 0) {
		log_error(NULL, "%s", err.msg);
		code = err.kind == TR_ERR_USAGE ? EXIT_USAGE : EXIT_FAILED;
		goto out;
	}
	accs = accounts_from(&ja);
	if (accs == NULL || setup_env(&su, cmd == CMD_RUN, &err) < 0) {
		log_error(NULL, "%s", accs == NULL ? "out of memory" : err.msg);
		code = err.kind == TR_ERR_USAGE ? EXIT_USAGE : EXIT_FAILED;
		goto out;
	}
	snprintf(src, sizeof(src), "%s:%d", su.o.src.host, su.o.src.port);
	snprintf(dst, sizeof(dst), "%s:%d", su.o.dst.host, su.o.dst.port);
	log_info(NULL, "%s: %zu account(s) from %s to %s, %d at a time%s%s", name, ja.n, src, dst,
		 su.env.parallel_accounts, su.state ? ", state in " : "",
		 su.state ? state_path(su.state) : "");
	if (cmd == CMD_RUN) {
		struct run_result res;
		struct report_job rj = {
			.name = su.o.job != NULL ? su.o.job : su.o.accounts,
			.src = src, .dst = dst, .started = su.started,
			.bad_rows = bad, .n_bad_rows = n_bad,
		};

		run_accounts(&su.env, accs, ja.n, &res);
		if (res.v == NULL) {
			code = EXIT_FAILED;
			goto out;
		}
		report_table(stdout, &res);
		fflush(stdout);
		if (su.o.report != NULL && report_json(su.o.report, &rj, &res, &err) < 0)
			log_error(NULL, "%s", err.msg);
		if (su.o.report_csv != NULL && report_csv(su.o.report_csv, &res, &err) < 0)
			log_error(NULL, "%s", err.msg);
		code = net_cancelled() ? EXIT_STOPPED :
		       res.ok == res.n && n_bad == 0 ? EXIT_OK : EXIT_PARTIAL;
		run_result_free(&res);
	} else if (cmd == CMD_VERIFY) {
		struct verify_item *items = NULL;
		int r = verify_run(&su.env, accs, ja.n, su.o.content, &items);

		if (items == NULL) {
			code = EXIT_FAILED;
			goto out;
		}
		verify_print(stdout, items, ja.n);
		fflush(stdout);
		if (su.o.report != NULL && verify_json(su.o.report, items, ja.n, &err) < 0)
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
		if (su.o.report != NULL && preflight_json(su.o.report, items, ja.n, &err) < 0)
			log_error(NULL, "%s", err.msg);
		code = net_cancelled() ? EXIT_STOPPED : r == 0 && n_bad == 0 ? EXIT_OK : EXIT_PARTIAL;
		free(items);
	}
out:
	free(accs);
	free(bad);
	job_accounts_free(&ja);
	setup_free(&su);
	return code;
}

/* ---- spool ------------------------------------------------------------------- */

struct spool_ctx {
	char **opts;            /* the operator's options for every job: --config's, */
	int n_opts;             /* then the spool command line's (which win) */
	const char *dir_real;
};

static int run_spooled(int fd, const char *job, const char *report, const char *spool_dir,
		       void *ctx)
{
	struct spool_ctx *sc = ctx;
	struct cli_spool_job sj = { .dir = spool_dir, .dir_real = sc->dir_real };
	struct job_file jf;
	struct tr_error err;
	char state[4096], name[1024];
	char **argv;
	const char *base = strrchr(job, '/');
	bool has_state = false;
	int argc = 0, i, code;
	size_t k;

	tr_error_clear(&err);
	/* read once, from what jobdir checked; cli_parse uses this copy */
	if (job_file_read_fd(fd, job, &jf, &err) < 0) {
		log_error(NULL, "%s", err.msg);
		return err.kind == TR_ERR_LOCAL ? EXIT_FAILED : EXIT_USAGE;
	}
	argv = calloc((size_t)sc->n_opts + 6, sizeof(*argv));
	if (argv == NULL) {
		job_file_free(&jf);
		return EXIT_FAILED;
	}
	base = base != NULL ? base + 1 : job;
	snprintf(name, sizeof(name), "%.*s", (int)(strlen(base) - 4), base);
	argv[argc++] = (char *)"run";
	argv[argc++] = (char *)job;
	/* A job without its own state keeps it in the spool, by job name, so a
	 * re-run of the same job later resumes it.  cli_parse reads the job
	 * file first, then argv, so this goes in only when the job sets no
	 * state, and before the operator's options (which win). */
	for (k = 0; k < jf.n; k++)
		if (strcmp(jf.v[k].key, "state") == 0)
			has_state = true;
	if (!has_state) {
		snprintf(state, sizeof(state), "%s/state/%s", spool_dir, name);
		argv[argc++] = (char *)"--state";
		argv[argc++] = state;
	}
	for (i = 0; i < sc->n_opts; i++)
		argv[argc++] = sc->opts[i];
	sj.jf = &jf;
	cli_set_spool_job(&sj);
	code = cmd_run_or_check(CMD_RUN, argc, argv, report);
	cli_set_spool_job(NULL);
	job_file_free(&jf);
	free(argv);
	return code;
}

static int cmd_spool(int argc, char **argv)
{
	struct spool_ctx sc;
	struct tr_error err;
	const char *config = NULL;
	char **conf = NULL, **opts = NULL, dir[4096], *real = NULL;
	int n_conf = 0, ran, failed, i, code = EXIT_USAGE;
	size_t len;

	memset(&sc, 0, sizeof(sc));
	tr_error_clear(&err);
	if (argc < 2 || argv[1][0] == '-') {
		fprintf(stderr, "usage: trasloco spool DIR [--config FILE] [options for every job]\n");
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
	opts[sc.n_opts++] = (char *)"spool";
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
		opts[sc.n_opts++] = argv[i];
	}
	if (config != NULL) {
		char **all;

		if (cli_spool_config(config, &conf, &n_conf, &err) < 0) {
			fprintf(stderr, "trasloco spool: %s\n", err.msg);
			code = err.kind == TR_ERR_LOCAL ? EXIT_FAILED : EXIT_USAGE;
			goto out;
		}
		/* the config's settings first: the command line's win */
		all = calloc((size_t)(sc.n_opts + n_conf) + 1, sizeof(*all));
		if (all == NULL) {
			code = EXIT_FAILED;
			goto out;
		}
		all[0] = opts[0];
		memcpy(all + 1, conf, (size_t)n_conf * sizeof(*all));
		memcpy(all + 1 + n_conf, opts + 1, (size_t)(sc.n_opts - 1) * sizeof(*all));
		free(opts);
		opts = all;
		sc.n_opts += n_conf;
	}
	if (cli_spool_check(sc.n_opts, opts, &err) < 0) {
		fprintf(stderr, "trasloco spool: %s\n(see trasloco help)\n", err.msg);
		code = err.kind == TR_ERR_LOCAL ? EXIT_FAILED : EXIT_USAGE;
		goto out;
	}
	sc.opts = opts + 1;
	sc.n_opts--;
	tr_error_clear(&err);
	real = realpath(dir, NULL);
	sc.dir_real = real;
	if (jobdir_run(dir, run_spooled, &sc, &ran, &failed, &err) < 0) {
		log_error(NULL, "%s", err.msg);
		code = EXIT_FAILED;
		goto out;
	}
	if (net_cancelled())
		code = EXIT_STOPPED;
	else
		code = failed > 0 ? EXIT_PARTIAL : EXIT_OK;
out:
	free(real);
	free(opts);
	cli_spool_config_free(conf, n_conf);
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
	if (cmd == NULL || strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 ||
	    strcmp(cmd, "-h") == 0) {
		fputs(cli_usage_text, cmd == NULL ? stderr : stdout);
		return cmd == NULL ? EXIT_USAGE : EXIT_OK;
	}
	if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
		printf("trasloco %s\n", PACKAGE_VERSION);
		return EXIT_OK;
	}
	if (strcmp(cmd, "migrate") == 0)
		return cmd_migrate(argc - 1, argv + 1);
	if (strcmp(cmd, "run") == 0)
		return cmd_run_or_check(CMD_RUN, argc - 1, argv + 1, NULL);
	if (strcmp(cmd, "check") == 0)
		return cmd_run_or_check(CMD_CHECK, argc - 1, argv + 1, NULL);
	if (strcmp(cmd, "verify") == 0)
		return cmd_run_or_check(CMD_VERIFY, argc - 1, argv + 1, NULL);
	if (strcmp(cmd, "spool") == 0)
		return cmd_spool(argc - 1, argv + 1);
	fprintf(stderr, "trasloco: unknown command \"%s\"\n%s", cmd, cli_usage_text);
	return EXIT_USAGE;
}
