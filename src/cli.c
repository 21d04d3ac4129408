/* cli: see include/cli.h */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "account.h"
#include "cli.h"
#include "log.h"
#include "net.h"
#include "report.h"
#include "scheduler.h"
#include "secret.h"
#include "state.h"
#include "tls.h"

#define DEFAULT_MAX_PER_ACCOUNT 4
#define DEFAULT_MAX_CONNECTIONS 40
#define DEFAULT_TIMEOUT_S 120
#define DEFAULT_RETRIES 5
#define DEFAULT_BATCH_BYTES (4u << 20)
#define DEFAULT_BATCH_COUNT 100

static const char usage_text[] =
	"usage: trasloco migrate --src HOST[:PORT] --dst HOST[:PORT] --user EMAIL [options]\n"
	"       trasloco help | version\n"
	"\n"
	"Copies every folder and message of one mailbox from the source IMAP server to the\n"
	"destination, keeping flags, keywords and dates.  Safe to run again: only what is\n"
	"new is copied.\n"
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
	"Accounts:\n"
	"  --user EMAIL                           the mailbox (login on both sides)\n"
	"  --src-user LOGIN, --dst-user LOGIN     when the logins differ\n"
	"  --src-password-file F, --dst-password-file F\n"
	"                                         else $TRASLOCO_SRC_PASSWORD /\n"
	"                                         $TRASLOCO_DST_PASSWORD, else a prompt; the\n"
	"                                         destination defaults to the source password\n"
	"  --dst-admin USER --dst-admin-password-file F\n"
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
	"  --src-max-per-account N, --dst-max-per-account N\n"
	"                                         sessions per account per server (default 4)\n"
	"  --src-max-connections N, --dst-max-connections N\n"
	"                                         sessions per server in all (default 40)\n"
	"  --timeout SECONDS                      network idle timeout (default 120)\n"
	"  --retries N                            attempts on transient errors (default 5)\n"
	"  --batch-size MB                        bytes per FETCH/APPEND batch (default 4)\n"
	"  --batch-count N                        messages per batch (default 100)\n"
	"  -q, --quiet | -v, --verbose | --debug | --no-progress\n"
	"\n"
	"Exit status: 0 all copied, 1 some messages or folders failed, 2 usage, 3 login\n"
	"refused, 4 server unreachable or TLS refused, 5 interrupted, 6 other failure.\n";

/* ---- option parsing -------------------------------------------------------- */

int cli_parse_server(const char *arg, struct cli_server *s, struct tr_error *err)
{
	const char *host = arg, *port = NULL, *end;
	size_t hlen;

	if (arg == NULL || arg[0] == '\0') {
		tr_error_set(err, TR_ERR_USAGE, "empty server");
		return -1;
	}
	if (arg[0] == '[') {
		end = strchr(arg, ']');
		if (end == NULL || (end[1] != '\0' && end[1] != ':')) {
			tr_error_set(err, TR_ERR_USAGE, "bad server \"%s\" (use [IPv6]:port)", arg);
			return -1;
		}
		host = arg + 1;
		hlen = (size_t)(end - host);
		if (end[1] == ':')
			port = end + 2;
	} else {
		end = strrchr(arg, ':');
		if (end != NULL && strchr(arg, ':') != end) {
			/* A bare IPv6 address: no port. */
			end = NULL;
		}
		hlen = end != NULL ? (size_t)(end - arg) : strlen(arg);
		if (end != NULL)
			port = end + 1;
	}
	if (hlen == 0) {
		tr_error_set(err, TR_ERR_USAGE, "bad server \"%s\": no host", arg);
		return -1;
	}
	s->port = 0;
	if (port != NULL) {
		char *e;
		long p = strtol(port, &e, 10);

		if (*port == '\0' || *e != '\0' || p < 1 || p > 65535) {
			tr_error_set(err, TR_ERR_USAGE, "bad port in \"%s\"", arg);
			return -1;
		}
		s->port = (int)p;
	}
	free(s->host);
	s->host = strndup(host, hlen);
	if (s->host == NULL) {
		tr_error_set(err, TR_ERR_LOCAL, "out of memory");
		return -1;
	}
	return 0;
}

static int parse_tls_mode(const char *arg, struct cli_server *s, struct tr_error *err)
{
	if (strcmp(arg, "implicit") == 0 || strcmp(arg, "ssl") == 0 || strcmp(arg, "tls") == 0)
		s->tls = TLS_MODE_IMPLICIT;
	else if (strcmp(arg, "starttls") == 0)
		s->tls = TLS_MODE_STARTTLS;
	else if (strcmp(arg, "none") == 0 || strcmp(arg, "plain") == 0)
		s->tls = TLS_MODE_NONE;
	else {
		tr_error_set(err, TR_ERR_USAGE, "bad TLS mode \"%s\": implicit, starttls or none", arg);
		return -1;
	}
	s->tls_set = true;
	return 0;
}

static int parse_int(const char *opt, const char *arg, long lo, long hi, long *v,
		     struct tr_error *err)
{
	char *e;

	errno = 0;
	*v = strtol(arg, &e, 10);
	if (*arg == '\0' || *e != '\0' || errno != 0 || *v < lo || *v > hi) {
		tr_error_set(err, TR_ERR_USAGE, "%s wants a number from %ld to %ld, not \"%s\"", opt,
			     lo, hi, arg);
		return -1;
	}
	return 0;
}

static int push_str(char ***v, size_t *n, const char *s, struct tr_error *err)
{
	char **nv = realloc(*v, (*n + 1) * sizeof(**v));

	if (nv == NULL || (nv[*n] = strdup(s)) == NULL) {
		if (nv != NULL)
			*v = nv;
		tr_error_set(err, TR_ERR_LOCAL, "out of memory");
		return -1;
	}
	*v = nv;
	(*n)++;
	return 0;
}

static int push_map(struct cli_opts *o, const char *arg, struct tr_error *err)
{
	const char *eq = strchr(arg, '=');
	struct folder_map_rule *nv;

	if (eq == NULL || eq == arg || eq[1] == '\0') {
		tr_error_set(err, TR_ERR_USAGE, "--map wants 'OLD=NEW', not \"%s\"", arg);
		return -1;
	}
	nv = realloc(o->maps, (o->n_maps + 1) * sizeof(*nv));
	if (nv == NULL) {
		tr_error_set(err, TR_ERR_LOCAL, "out of memory");
		return -1;
	}
	o->maps = nv;
	nv[o->n_maps].from = strndup(arg, (size_t)(eq - arg));
	nv[o->n_maps].to = strdup(eq + 1);
	o->n_maps++;
	if (nv[o->n_maps - 1].from == NULL || nv[o->n_maps - 1].to == NULL) {
		tr_error_set(err, TR_ERR_LOCAL, "out of memory");
		return -1;
	}
	return 0;
}

static int set_str(char **dst, const char *v, struct tr_error *err)
{
	free(*dst);
	*dst = strdup(v);
	if (*dst == NULL) {
		tr_error_set(err, TR_ERR_LOCAL, "out of memory");
		return -1;
	}
	return 0;
}

enum {
	OPT_SRC = 256, OPT_DST, OPT_SRC_TLS, OPT_DST_TLS, OPT_SRC_TLS_NAME, OPT_DST_TLS_NAME,
	OPT_CA_FILE, OPT_INSECURE, OPT_ALLOW_PLAINTEXT, OPT_USER, OPT_SRC_USER, OPT_DST_USER,
	OPT_SRC_PW_FILE, OPT_DST_PW_FILE, OPT_DST_ADMIN, OPT_DST_ADMIN_PW_FILE, OPT_DST_ADMIN_SEP,
	OPT_STATE, OPT_FOLDER, OPT_EXCLUDE, OPT_MAP, OPT_KEEP_NAMES, OPT_NO_SUBS,
	OPT_SRC_MAX, OPT_DST_MAX, OPT_TIMEOUT, OPT_RETRIES, OPT_BATCH, OPT_DEBUG, OPT_NO_PROGRESS,
	OPT_SPOOL_DIR, OPT_PASSWORD_ON_CLI, OPT_BATCH_COUNT, OPT_SRC_MAXCONN, OPT_DST_MAXCONN,
};

static const struct option migrate_options[] = {
	{ "src", required_argument, NULL, OPT_SRC },
	{ "dst", required_argument, NULL, OPT_DST },
	{ "src-tls", required_argument, NULL, OPT_SRC_TLS },
	{ "dst-tls", required_argument, NULL, OPT_DST_TLS },
	{ "src-tls-name", required_argument, NULL, OPT_SRC_TLS_NAME },
	{ "dst-tls-name", required_argument, NULL, OPT_DST_TLS_NAME },
	{ "ca-file", required_argument, NULL, OPT_CA_FILE },
	{ "insecure", no_argument, NULL, OPT_INSECURE },
	{ "allow-plaintext", no_argument, NULL, OPT_ALLOW_PLAINTEXT },
	{ "user", required_argument, NULL, OPT_USER },
	{ "src-user", required_argument, NULL, OPT_SRC_USER },
	{ "dst-user", required_argument, NULL, OPT_DST_USER },
	{ "src-password-file", required_argument, NULL, OPT_SRC_PW_FILE },
	{ "dst-password-file", required_argument, NULL, OPT_DST_PW_FILE },
	{ "dst-admin", required_argument, NULL, OPT_DST_ADMIN },
	{ "dst-admin-password-file", required_argument, NULL, OPT_DST_ADMIN_PW_FILE },
	{ "dst-admin-separator", required_argument, NULL, OPT_DST_ADMIN_SEP },
	{ "state", required_argument, NULL, OPT_STATE },
	{ "folder", required_argument, NULL, OPT_FOLDER },
	{ "exclude", required_argument, NULL, OPT_EXCLUDE },
	{ "map", required_argument, NULL, OPT_MAP },
	{ "keep-names", no_argument, NULL, OPT_KEEP_NAMES },
	{ "no-subscriptions", no_argument, NULL, OPT_NO_SUBS },
	{ "src-max-per-account", required_argument, NULL, OPT_SRC_MAX },
	{ "dst-max-per-account", required_argument, NULL, OPT_DST_MAX },
	{ "src-max-connections", required_argument, NULL, OPT_SRC_MAXCONN },
	{ "dst-max-connections", required_argument, NULL, OPT_DST_MAXCONN },
	{ "timeout", required_argument, NULL, OPT_TIMEOUT },
	{ "retries", required_argument, NULL, OPT_RETRIES },
	{ "batch-size", required_argument, NULL, OPT_BATCH },
	{ "batch-count", required_argument, NULL, OPT_BATCH_COUNT },
	{ "spool-dir", required_argument, NULL, OPT_SPOOL_DIR },
	{ "quiet", no_argument, NULL, 'q' },
	{ "verbose", no_argument, NULL, 'v' },
	{ "debug", no_argument, NULL, OPT_DEBUG },
	{ "no-progress", no_argument, NULL, OPT_NO_PROGRESS },
	/* Refused on purpose, with an explanation: see parse. */
	{ "password", required_argument, NULL, OPT_PASSWORD_ON_CLI },
	{ "src-password", required_argument, NULL, OPT_PASSWORD_ON_CLI },
	{ "dst-password", required_argument, NULL, OPT_PASSWORD_ON_CLI },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

static void opts_init(struct cli_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->src_max_per_account = DEFAULT_MAX_PER_ACCOUNT;
	o->dst_max_per_account = DEFAULT_MAX_PER_ACCOUNT;
	o->src_max_connections = DEFAULT_MAX_CONNECTIONS;
	o->dst_max_connections = DEFAULT_MAX_CONNECTIONS;
	o->timeout_s = DEFAULT_TIMEOUT_S;
	o->retries = DEFAULT_RETRIES;
	o->batch_bytes = DEFAULT_BATCH_BYTES;
	o->batch_count = DEFAULT_BATCH_COUNT;
	o->progress = true;
}

int cli_parse_migrate(int argc, char **argv, struct cli_opts *o, struct tr_error *err)
{
	long v;
	int c, r = 0;

	opts_init(o);
	optind = 1;
	opterr = 0;
	while (r == 0 && (c = getopt_long(argc, argv, ":qvh", migrate_options, NULL)) != -1) {
		switch (c) {
		case OPT_SRC: r = cli_parse_server(optarg, &o->src, err); break;
		case OPT_DST: r = cli_parse_server(optarg, &o->dst, err); break;
		case OPT_SRC_TLS: r = parse_tls_mode(optarg, &o->src, err); break;
		case OPT_DST_TLS: r = parse_tls_mode(optarg, &o->dst, err); break;
		case OPT_SRC_TLS_NAME: r = set_str(&o->src.tls_name, optarg, err); break;
		case OPT_DST_TLS_NAME: r = set_str(&o->dst.tls_name, optarg, err); break;
		case OPT_CA_FILE: r = set_str(&o->ca_file, optarg, err); break;
		case OPT_INSECURE: o->insecure = true; break;
		case OPT_ALLOW_PLAINTEXT: o->allow_plaintext = true; break;
		case OPT_USER: r = set_str(&o->user, optarg, err); break;
		case OPT_SRC_USER: r = set_str(&o->src_user, optarg, err); break;
		case OPT_DST_USER: r = set_str(&o->dst_user, optarg, err); break;
		case OPT_SRC_PW_FILE: r = set_str(&o->src_password_file, optarg, err); break;
		case OPT_DST_PW_FILE: r = set_str(&o->dst_password_file, optarg, err); break;
		case OPT_DST_ADMIN: r = set_str(&o->dst_admin, optarg, err); break;
		case OPT_DST_ADMIN_PW_FILE: r = set_str(&o->dst_admin_password_file, optarg, err); break;
		case OPT_DST_ADMIN_SEP:
			if (strlen(optarg) != 1) {
				tr_error_set(err, TR_ERR_USAGE, "--dst-admin-separator wants one character");
				r = -1;
			}
			o->dst_admin_separator = optarg[0];
			break;
		case OPT_STATE: r = set_str(&o->state_dir, optarg, err); break;
		case OPT_FOLDER: r = push_str(&o->folders, &o->n_folders, optarg, err); break;
		case OPT_EXCLUDE: r = push_str(&o->excludes, &o->n_excludes, optarg, err); break;
		case OPT_MAP: r = push_map(o, optarg, err); break;
		case OPT_KEEP_NAMES: o->keep_names = true; break;
		case OPT_NO_SUBS: o->no_subscriptions = true; break;
		case OPT_SRC_MAX:
			r = parse_int("--src-max-per-account", optarg, 1, 100, &v, err);
			o->src_max_per_account = (int)v;
			break;
		case OPT_DST_MAX:
			r = parse_int("--dst-max-per-account", optarg, 1, 100, &v, err);
			o->dst_max_per_account = (int)v;
			break;
		case OPT_SRC_MAXCONN:
			r = parse_int("--src-max-connections", optarg, 1, 10000, &v, err);
			o->src_max_connections = (int)v;
			break;
		case OPT_DST_MAXCONN:
			r = parse_int("--dst-max-connections", optarg, 1, 10000, &v, err);
			o->dst_max_connections = (int)v;
			break;
		case OPT_TIMEOUT:
			r = parse_int("--timeout", optarg, 1, 86400, &v, err);
			o->timeout_s = (int)v;
			break;
		case OPT_RETRIES:
			r = parse_int("--retries", optarg, 1, 100, &v, err);
			o->retries = (int)v;
			break;
		case OPT_BATCH:
			r = parse_int("--batch-size", optarg, 1, 1024, &v, err);
			o->batch_bytes = (uint64_t)v << 20;
			break;
		case OPT_BATCH_COUNT:
			r = parse_int("--batch-count", optarg, 1, 250, &v, err);
			o->batch_count = (uint32_t)v;
			break;
		case OPT_SPOOL_DIR: r = set_str(&o->spool_dir, optarg, err); break;
		case 'q': o->verbosity = -1; break;
		case 'v': o->verbosity = 1; break;
		case OPT_DEBUG: o->verbosity = 2; break;
		case OPT_NO_PROGRESS: o->progress = false; break;
		case OPT_PASSWORD_ON_CLI:
			/* Do not even keep it: any user can read a command line. */
			explicit_bzero(optarg, strlen(optarg));
			tr_error_set(err, TR_ERR_USAGE, "passwords are never taken on the command "
				     "line (other users can see it): use --src-password-file or "
				     "$TRASLOCO_SRC_PASSWORD");
			r = -1;
			break;
		case 'h':
			tr_error_set(err, TR_ERR_NONE, "help");
			return 1;
		case ':':
			tr_error_set(err, TR_ERR_USAGE, "option %s needs a value", argv[optind - 1]);
			r = -1;
			break;
		default:
			tr_error_set(err, TR_ERR_USAGE, "unknown option %s", argv[optind - 1]);
			r = -1;
			break;
		}
	}
	if (r == 0 && optind < argc) {
		tr_error_set(err, TR_ERR_USAGE, "unexpected argument \"%s\"", argv[optind]);
		r = -1;
	}
	if (r == 0)
		r = cli_finish_opts(o, err);
	return r;
}

static int finish_server(struct cli_server *s, const char *which, bool allow_plaintext,
			 struct tr_error *err)
{
	if (s->host == NULL) {
		tr_error_set(err, TR_ERR_USAGE, "--%s HOST[:PORT] is required", which);
		return -1;
	}
	if (!s->tls_set)
		s->tls = (s->port == 0 || s->port == 993) ? TLS_MODE_IMPLICIT : TLS_MODE_STARTTLS;
	if (s->port == 0)
		s->port = s->tls == TLS_MODE_IMPLICIT ? 993 : 143;
	if (s->tls == TLS_MODE_NONE && !net_is_loopback(s->host) && !allow_plaintext) {
		tr_error_set(err, TR_ERR_USAGE, "--%s-tls none would send passwords in clear to %s; "
			     "add --allow-plaintext if that network is really trusted", which,
			     s->host);
		return -1;
	}
	return 0;
}

int cli_finish_opts(struct cli_opts *o, struct tr_error *err)
{
	if (finish_server(&o->src, "src", o->allow_plaintext, err) < 0 ||
	    finish_server(&o->dst, "dst", o->allow_plaintext, err) < 0)
		return -1;
	if (o->user == NULL && (o->src_user == NULL || o->dst_user == NULL)) {
		tr_error_set(err, TR_ERR_USAGE, "--user EMAIL is required");
		return -1;
	}
	if (o->src_user == NULL && set_str(&o->src_user, o->user, err) < 0)
		return -1;
	if (o->dst_user == NULL && set_str(&o->dst_user, o->user, err) < 0)
		return -1;
	if (o->user == NULL && set_str(&o->user, o->src_user, err) < 0)
		return -1;
	if (o->dst_admin_password_file != NULL && o->dst_admin == NULL) {
		tr_error_set(err, TR_ERR_USAGE, "--dst-admin-password-file needs --dst-admin");
		return -1;
	}
	if (o->state_dir == NULL) {
		const char *xdg = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
		char buf[4096];

		if (xdg != NULL && xdg[0] == '/')
			snprintf(buf, sizeof(buf), "%s/trasloco", xdg);
		else if (home != NULL && home[0] == '/')
			snprintf(buf, sizeof(buf), "%s/.local/state/trasloco", home);
		else {
			tr_error_set(err, TR_ERR_USAGE, "no $HOME or $XDG_STATE_HOME: give --state DIR");
			return -1;
		}
		if (set_str(&o->state_dir, buf, err) < 0)
			return -1;
	}
	return 0;
}

void cli_opts_free(struct cli_opts *o)
{
	size_t i;

	free(o->src.host);
	free(o->src.tls_name);
	free(o->dst.host);
	free(o->dst.tls_name);
	free(o->ca_file);
	free(o->user);
	free(o->src_user);
	free(o->dst_user);
	free(o->src_password_file);
	free(o->dst_password_file);
	free(o->dst_admin);
	free(o->dst_admin_password_file);
	free(o->state_dir);
	free(o->spool_dir);
	for (i = 0; i < o->n_folders; i++)
		free(o->folders[i]);
	free(o->folders);
	for (i = 0; i < o->n_excludes; i++)
		free(o->excludes[i]);
	free(o->excludes);
	for (i = 0; i < o->n_maps; i++) {
		free((char *)o->maps[i].from);
		free((char *)o->maps[i].to);
	}
	free(o->maps);
	memset(o, 0, sizeof(*o));
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

/* ---- signals and progress -------------------------------------------------- */

static volatile sig_atomic_t stop_signals;

static void on_stop_signal(int sig)
{
	/* First signal: stop cleanly (every wait gives up, state is saved).
	 * Second: the default action. */
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

struct progress_thread {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stop;
	const char *label;
	struct account_progress *p;
	bool tty;
};

static void *progress_main(void *arg)
{
	struct progress_thread *pt = arg;
	struct timespec start, now, until;
	uint64_t last_log = 0;

	clock_gettime(CLOCK_MONOTONIC, &start);
	pthread_mutex_lock(&pt->lock);
	while (!pt->stop) {
		char b1[32], b2[32];
		uint64_t copied = atomic_load(&pt->p->copied), bytes = atomic_load(&pt->p->bytes);
		double el;

		clock_gettime(CLOCK_MONOTONIC, &now);
		el = (double)(now.tv_sec - start.tv_sec) + (double)(now.tv_nsec - start.tv_nsec) / 1e9;
		if (el < 0.1)
			el = 0.1;
		if (pt->tty) {
			log_progress("%s: folders %u/%u, %" PRIu64 " messages, %s (%s/s)", pt->label,
				     (unsigned)atomic_load(&pt->p->folders_done),
				     (unsigned)atomic_load(&pt->p->folders_total), copied,
				     report_bytes(bytes, b1, sizeof(b1)),
				     report_bytes((uint64_t)(bytes / el), b2, sizeof(b2)));
		} else if ((uint64_t)el >= last_log + 30) {
			last_log = (uint64_t)el;
			log_info(pt->label, "progress: folders %u/%u, %" PRIu64 " messages, %s",
				 (unsigned)atomic_load(&pt->p->folders_done),
				 (unsigned)atomic_load(&pt->p->folders_total), copied,
				 report_bytes(bytes, b1, sizeof(b1)));
		}
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += 500000000;
		if (until.tv_nsec >= 1000000000) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&pt->cond, &pt->lock, &until);
	}
	pthread_mutex_unlock(&pt->lock);
	log_progress_done();
	return NULL;
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
	struct cli_opts o;
	struct tr_error err;
	struct tls_ctx *tls = NULL;
	struct state *state = NULL;
	char *src_pw = NULL, *dst_pw = NULL, *admin_pw = NULL;
	struct imap_endpoint src_ep, dst_ep;
	struct folder_map_opts map;
	struct sync_limits limits;
	struct account_opts ao;
	struct account_result res;
	struct account_progress prog;
	struct progress_thread pt;
	struct limiter *src_lim = NULL, *dst_lim = NULL;
	bool progress_running = false;
	int r, code = EXIT_FAILED;

	tr_error_clear(&err);
	r = cli_parse_migrate(argc, argv, &o, &err);
	if (r != 0) {
		if (r > 0) {
			fputs(usage_text, stdout);
			cli_opts_free(&o);
			return EXIT_OK;
		}
		fprintf(stderr, "trasloco migrate: %s\n(see trasloco help)\n", err.msg);
		cli_opts_free(&o);
		return err.kind == TR_ERR_LOCAL ? EXIT_FAILED : EXIT_USAGE;
	}
	log_set_level(o.verbosity < 0 ? LOG_WARN : o.verbosity == 0 ? LOG_INFO :
		      o.verbosity == 1 ? LOG_INFO : LOG_DEBUG);
	log_set_progress_enabled(o.progress && o.verbosity >= 0 && isatty(STDERR_FILENO));

	/* Passwords first: a prompt must come before any other output. */
	if (get_secret(o.src_password_file, "TRASLOCO_SRC_PASSWORD", "source password", &src_pw,
		       &err) < 0)
		goto usage_fail;
	if (o.dst_admin != NULL) {
		if (get_secret(o.dst_admin_password_file, "TRASLOCO_DST_ADMIN_PASSWORD",
			       "destination admin password", &admin_pw, &err) < 0)
			goto usage_fail;
	} else if (get_secret(o.dst_password_file, "TRASLOCO_DST_PASSWORD", NULL, &dst_pw,
			      &err) < 0) {
		goto usage_fail;
	}

	if (o.insecure)
		log_warn(NULL, "--insecure: server certificates are NOT verified; anyone on the "
			 "path can read these passwords and this mail");
	if (o.src.tls == TLS_MODE_NONE || o.dst.tls == TLS_MODE_NONE)
		log_warn(NULL, "TLS is off for the %s: passwords and mail travel in clear",
			 o.src.tls == TLS_MODE_NONE ? (o.dst.tls == TLS_MODE_NONE ? "source and "
						       "destination" : "source") : "destination");
	if (tls_ctx_new(o.ca_file, o.insecure, &tls, &err) < 0)
		goto fail;
	if (state_open(o.state_dir, &state, &err) < 0)
		goto fail;
	src_lim = limiter_new("the source", o.src_max_per_account, o.src_max_connections);
	dst_lim = limiter_new("the destination", o.dst_max_per_account, o.dst_max_connections);
	if (src_lim == NULL || dst_lim == NULL) {
		tr_error_set(&err, TR_ERR_LOCAL, "out of memory");
		goto fail;
	}

	memset(&src_ep, 0, sizeof(src_ep));
	src_ep.label = "source";
	src_ep.host = o.src.host;
	src_ep.port = o.src.port;
	src_ep.tls = o.src.tls;
	src_ep.tls_name = o.src.tls_name;
	src_ep.tls_ctx = tls;
	src_ep.timeout_s = o.timeout_s;
	dst_ep = src_ep;
	dst_ep.label = "destination";
	dst_ep.host = o.dst.host;
	dst_ep.port = o.dst.port;
	dst_ep.tls = o.dst.tls;
	dst_ep.tls_name = o.dst.tls_name;

	memset(&map, 0, sizeof(map));
	map.keep_names = o.keep_names;
	map.rules = o.maps;
	map.n_rules = o.n_maps;
	map.filter.include = (const char **)o.folders;
	map.filter.n_include = o.n_folders;
	map.filter.exclude = (const char **)o.excludes;
	map.filter.n_exclude = o.n_excludes;
	limits.batch_bytes = o.batch_bytes;
	limits.batch_count = o.batch_count;

	memset(&ao, 0, sizeof(ao));
	ao.label = o.user;
	ao.src_ep = &src_ep;
	ao.dst_ep = &dst_ep;
	ao.src_cr.user = o.src_user;
	ao.src_cr.password = src_pw;
	ao.dst_cr.user = o.dst_user;
	ao.dst_cr.password = admin_pw != NULL ? admin_pw : dst_pw != NULL ? dst_pw : src_pw;
	ao.dst_cr.admin = o.dst_admin;
	ao.dst_cr.admin_separator = o.dst_admin_separator;
	ao.map = &map;
	ao.state = state;
	ao.src_lim = src_lim;
	ao.dst_lim = dst_lim;
	ao.limits = &limits;
	ao.max_sessions = o.src_max_per_account < o.dst_max_per_account ? o.src_max_per_account
									 : o.dst_max_per_account;
	ao.retries = o.retries;
	ao.spool_dir = o.spool_dir;
	ao.subscribe = !o.no_subscriptions;
	memset(&prog, 0, sizeof(prog));
	ao.progress = &prog;

	memset(&pt, 0, sizeof(pt));
	pt.label = o.user;
	pt.p = &prog;
	pt.tty = log_progress_enabled();
	pthread_mutex_init(&pt.lock, NULL);
	pthread_cond_init(&pt.cond, NULL);
	if (o.verbosity >= 0 && pthread_create(&pt.thread, NULL, progress_main, &pt) == 0)
		progress_running = true;

	log_info(o.user, "migrating from %s:%d to %s:%d (state in %s)", o.src.host, o.src.port,
		 o.dst.host, o.dst.port, state_path(state));
	account_run(&ao, &res);

	if (progress_running) {
		pthread_mutex_lock(&pt.lock);
		pt.stop = true;
		pthread_cond_signal(&pt.cond);
		pthread_mutex_unlock(&pt.lock);
		pthread_join(pt.thread, NULL);
	}
	pthread_cond_destroy(&pt.cond);
	pthread_mutex_destroy(&pt.lock);
	if (res.status == ACCOUNT_FAILED)
		log_error(o.user, "%s", res.err.msg);
	report_summary(stdout, o.user, &res);
	fflush(stdout);
	code = exit_code_for(&res);
	account_result_free(&res);
	goto out;

usage_fail:
	fprintf(stderr, "trasloco migrate: %s\n", err.msg);
	code = err.kind == TR_ERR_LOCAL ? EXIT_FAILED : EXIT_USAGE;
	goto out;
fail:
	log_error(o.user, "%s", err.msg);
	code = err.kind == TR_ERR_TLS ? EXIT_CONNECT : err.kind == TR_ERR_USAGE ? EXIT_USAGE
										 : EXIT_FAILED;
out:
	secret_free(src_pw);
	secret_free(dst_pw);
	secret_free(admin_pw);
	state_close(state);
	limiter_free(src_lim);
	limiter_free(dst_lim);
	tls_ctx_free(tls);
	cli_opts_free(&o);
	return code;
}

int cli_main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : NULL;

	setup_signals();
	if (cmd == NULL || strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 ||
	    strcmp(cmd, "-h") == 0) {
		fputs(usage_text, cmd == NULL ? stderr : stdout);
		return cmd == NULL ? EXIT_USAGE : EXIT_OK;
	}
	if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
		printf("trasloco %s\n", PACKAGE_VERSION);
		return EXIT_OK;
	}
	if (strcmp(cmd, "migrate") == 0)
		return cmd_migrate(argc - 1, argv + 1);
	fprintf(stderr, "trasloco: unknown command \"%s\"\n%s", cmd, usage_text);
	return EXIT_USAGE;
}
