/* cli: option parsing (see include/cli.h).  The commands are in cli.c. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "job.h"
#include "net.h"

#define DEFAULT_MAX_PER_ACCOUNT 4
#define DEFAULT_MAX_CONNECTIONS 40
#define DEFAULT_TIMEOUT_S 120
#define DEFAULT_RETRIES 5
#define DEFAULT_BATCH_BYTES (16u << 20)
#define DEFAULT_BATCH_COUNT 100
#define DEFAULT_PARALLEL_ACCOUNTS 4

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
	OPT_STATE, OPT_FOLDER, OPT_EXCLUDE, OPT_MAP, OPT_KEEP_NAMES, OPT_NO_SUBS, OPT_CONTENT,
	OPT_SRC_MAX, OPT_DST_MAX, OPT_TIMEOUT, OPT_RETRIES, OPT_BATCH, OPT_DEBUG, OPT_NO_PROGRESS,
	OPT_SPOOL_DIR, OPT_PASSWORD_ON_CLI, OPT_BATCH_COUNT, OPT_SRC_MAXCONN, OPT_DST_MAXCONN,
	OPT_PARALLEL, OPT_REPORT, OPT_REPORT_CSV, OPT_LOG_DIR,
};

static const struct option long_options[] = {
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
	{ "content", no_argument, NULL, OPT_CONTENT },
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
	{ "parallel-accounts", required_argument, NULL, OPT_PARALLEL },
	{ "report", required_argument, NULL, OPT_REPORT },
	{ "report-csv", required_argument, NULL, OPT_REPORT_CSV },
	{ "log-dir", required_argument, NULL, OPT_LOG_DIR },
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
	o->parallel_accounts = DEFAULT_PARALLEL_ACCOUNTS;
	o->progress = true;
}

/* One pass of getopt over argv.  Positional arguments are collected in
 * o->args.  Returns 0, 1 for --help, -1 on error. */
static int parse_args(int argc, char **argv, struct cli_opts *o, struct tr_error *err)
{
	long v;
	int c, r = 0;

	optind = 1;
	opterr = 0;
	while (r == 0 && (c = getopt_long(argc, argv, ":qvh", long_options, NULL)) != -1) {
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
		case OPT_CONTENT: o->content = true; break;
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
		case OPT_PARALLEL:
			r = parse_int("--parallel-accounts", optarg, 1, 1000, &v, err);
			o->parallel_accounts = (int)v;
			break;
		case OPT_REPORT: r = set_str(&o->report, optarg, err); break;
		case OPT_REPORT_CSV: r = set_str(&o->report_csv, optarg, err); break;
		case OPT_LOG_DIR: r = set_str(&o->log_dir, optarg, err); break;
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
		default: {
			/* "--src-pass=s3cret": never echo what follows the '='. */
			const char *arg = argv[optind - 1], *eq = strchr(arg, '=');

			tr_error_set(err, TR_ERR_USAGE, "unknown option %.*s",
				     eq != NULL ? (int)(eq - arg) : (int)strlen(arg), arg);
			r = -1;
			break;
		}
		}
	}
	for (; r == 0 && optind < argc; optind++)
		r = push_str(&o->args, &o->n_args, argv[optind], err);
	return r;
}

static bool truthy(const char *v, bool *ok)
{
	*ok = true;
	if (strcasecmp(v, "yes") == 0 || strcasecmp(v, "true") == 0 || strcmp(v, "1") == 0 ||
	    strcasecmp(v, "on") == 0 || v[0] == '\0')
		return true;
	if (strcasecmp(v, "no") == 0 || strcasecmp(v, "false") == 0 || strcmp(v, "0") == 0 ||
	    strcasecmp(v, "off") == 0)
		return false;
	*ok = false;
	return false;
}

/* What a setting's value is, for the spool's rules. */
enum path_kind { NOT_A_PATH, PATH_READ, PATH_WRITE, PATH_DIR };

/* Settings whose value is a file or directory: relative to the job file. */
static enum path_kind path_key(const char *k)
{
	static const struct {
		const char *key;
		enum path_kind kind;
	} keys[] = {
		{ "accounts", PATH_READ }, { "state", PATH_DIR }, { "report", PATH_WRITE },
		{ "report-csv", PATH_WRITE }, { "ca-file", PATH_READ }, { "log-dir", PATH_DIR },
		{ "spool-dir", PATH_DIR }, { "src-password-file", PATH_READ },
		{ "dst-password-file", PATH_READ }, { "dst-admin-password-file", PATH_READ },
	};
	size_t i;

	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (strcmp(k, keys[i].key) == 0)
			return keys[i].kind;
	return NOT_A_PATH;
}

/* Settings a spool job may not make: TLS policy and the destination's
 * admin login belong to whoever runs the spool (its command line or its
 * --config file), not to whoever drops a job in it. */
static bool operator_only(const char *k)
{
	static const char *const keys[] = {
		"insecure", "allow-plaintext", "ca-file", "dst-admin", "dst-admin-password-file",
	};
	size_t i;

	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (strcmp(k, keys[i]) == 0)
			return true;
	return false;
}

static char *resolve(const char *dir, const char *path)
{
	char *out;
	size_t len;

	if (path[0] == '/' || dir == NULL || strcmp(dir, ".") == 0)
		return strdup(path);
	len = strlen(dir) + strlen(path) + 2;
	out = malloc(len);
	if (out != NULL)
		snprintf(out, len, "%s/%s", dir, path);
	return out;
}

/* The spool job being parsed, or NULL. */
static const struct cli_spool_job *spool_job;

void cli_set_spool_job(const struct cli_spool_job *sj)
{
	spool_job = sj;
}

/* The part of absolute path p below directory d ("" for d itself), or NULL. */
static const char *below(const char *d, const char *p)
{
	size_t n;

	if (d == NULL || d[0] != '/')
		return NULL;
	n = strlen(d);
	while (n > 1 && d[n - 1] == '/')
		n--;
	if (strncmp(p, d, n) != 0 || (p[n] != '/' && p[n] != '\0' && n > 1))
		return NULL;
	return p + n;
}

/* A path named by a spool job, confined to the spool directory: an
 * absolute path must lie in it, ".." is refused, and no part of the path
 * that exists may be a symbolic link (checked with lstat, component by
 * component from the spool directory down).  The spool's own queue
 * (pending/ running/ done/ failed/ and dot files) is not job data.
 * Returns the path to use, or NULL with why (a static string or buf). */
static char *confine(const struct cli_spool_job *sj, const char *value, enum path_kind kind,
		     char *buf, size_t cap, const char **why)
{
	static const char *const queue[] = { "pending", "running", "done", "failed" };
	const char *rel = value, *p;
	char *out, *o;
	size_t len, i, first_len = 0;
	struct stat st;

	*why = NULL;
	if (value[0] == '\0') {
		*why = "an empty path";
		return NULL;
	}
	if (value[0] == '/') {
		rel = below(sj->dir, value);
		if (rel == NULL)
			rel = below(sj->dir_real, value);
		if (rel == NULL) {
			*why = "outside the spool directory (a spool job's paths stay in it)";
			return NULL;
		}
	}
	len = strlen(sj->dir) + strlen(rel) + 2;
	out = malloc(len);
	if (out == NULL) {
		*why = "out of memory";
		return NULL;
	}
	o = out + snprintf(out, len, "%s", sj->dir);
	/* component by component: "." and empty ones dropped */
	for (p = rel; *p != '\0';) {
		size_t n = strcspn(p, "/");

		if (n == 0 || (n == 1 && p[0] == '.')) {
			p += n + (p[n] == '/');
			continue;
		}
		if (n == 2 && p[0] == '.' && p[1] == '.') {
			*why = "\"..\" is not allowed (a spool job's paths stay in the spool directory)";
			goto fail;
		}
		if (first_len == 0) {
			first_len = n;
			for (i = 0; i < sizeof(queue) / sizeof(queue[0]); i++)
				if (strlen(queue[i]) == n && strncmp(p, queue[i], n) == 0)
					break;
			if (i < sizeof(queue) / sizeof(queue[0]) || p[0] == '.') {
				snprintf(buf, cap, "inside the spool's own %.*s%s, which is not for "
					 "job data", (int)n, p, p[0] == '.' ? "" : "/");
				*why = buf;
				goto fail;
			}
		}
		*o++ = '/';
		memcpy(o, p, n);
		o += n;
		*o = '\0';
		p += n + (p[n] == '/');
		if (lstat(out, &st) < 0) {
			if (errno == ENOENT)
				continue;       /* created later; nothing to follow */
			snprintf(buf, cap, "%s: %s", out, strerror(errno));
			*why = buf;
			goto fail;
		}
		if (S_ISLNK(st.st_mode)) {
			snprintf(buf, cap, "%s is a symbolic link (a spool job's paths are not "
				 "followed through links)", out);
			*why = buf;
			goto fail;
		}
		if (*p != '\0' && !S_ISDIR(st.st_mode)) {
			snprintf(buf, cap, "%s is not a directory", out);
			*why = buf;
			goto fail;
		}
		if (*p == '\0' && kind == PATH_DIR && !S_ISDIR(st.st_mode)) {
			snprintf(buf, cap, "%s is not a directory", out);
			*why = buf;
			goto fail;
		}
		/* a FIFO or a device would block or worse when opened */
		if (*p == '\0' && kind != PATH_DIR && !S_ISREG(st.st_mode)) {
			snprintf(buf, cap, "%s is not a regular file", out);
			*why = buf;
			goto fail;
		}
	}
	if (first_len == 0) {
		*why = "the spool directory itself";
		goto fail;
	}
	return out;
fail:
	free(out);
	return NULL;
}

/* A job file's settings as options ("--key", "value"; argv[0] is "job").
 * Relative paths start at dir.  sj: a spool job, under the spool's rules.
 * accounts (NULL: the setting is refused) gets the accounts file. */
static int job_to_args(const struct job_file *jf, const char *dir,
		       const struct cli_spool_job *sj, char **accounts, char ***out, int *out_n,
		       struct tr_error *err)
{
	const char *path = jf->path != NULL ? jf->path : "job file";
	char **argv = calloc(2 * jf->n + 2, sizeof(*argv));
	int argc = 0;
	size_t i;

	*out = NULL;
	*out_n = 0;
	if (argv == NULL) {
		tr_error_set(err, TR_ERR_LOCAL, "out of memory");
		return -1;
	}
	argv[argc++] = strdup("job");
	for (i = 0; i < jf->n; i++) {
		const struct job_setting *js = &jf->v[i];
		const struct option *opt;
		enum path_kind kind = path_key(js->key);
		char *value = NULL;
		bool ok;

		for (opt = long_options; opt->name != NULL; opt++)
			if (strcmp(opt->name, js->key) == 0)
				break;
		if (strcmp(js->key, "accounts") != 0 &&
		    (opt->name == NULL || opt->val == OPT_PASSWORD_ON_CLI || opt->val == 'h')) {
			tr_error_set(err, TR_ERR_USAGE, "%s:%u: unknown setting \"%s\"", path,
				     js->line, js->key);
			goto fail;
		}
		if (strcmp(js->key, "accounts") == 0 && accounts == NULL) {
			tr_error_set(err, TR_ERR_USAGE, "%s:%u: accounts is set by each job, not "
				     "here", path, js->line);
			goto fail;
		}
		if (sj != NULL && operator_only(js->key)) {
			tr_error_set(err, TR_ERR_USAGE, "%s:%u: \"%s\" is not taken from a spool job "
				     "(TLS and admin settings are the operator's: give it on the "
				     "spool's command line or in its --config file)", path, js->line,
				     js->key);
			goto fail;
		}
		if (kind != NOT_A_PATH && sj != NULL) {
			char why_buf[4200];
			const char *why;

			value = confine(sj, js->value, kind, why_buf, sizeof(why_buf), &why);
			if (value == NULL) {
				tr_error_set(err, strcmp(why, "out of memory") == 0 ? TR_ERR_LOCAL
						  : TR_ERR_USAGE, "%s:%u: %s = \"%s\": %s", path,
					     js->line, js->key, js->value, why);
				goto fail;
			}
		} else if (kind != NOT_A_PATH) {
			value = resolve(dir, js->value);
			if (value == NULL) {
				tr_error_set(err, TR_ERR_LOCAL, "out of memory");
				goto fail;
			}
		}
		if (strcmp(js->key, "accounts") == 0) {
			free(*accounts);
			*accounts = value;
			continue;
		}
		if (opt->has_arg == no_argument) {
			bool on = truthy(js->value, &ok);

			free(value);
			if (!ok) {
				tr_error_set(err, TR_ERR_USAGE, "%s:%u: %s wants yes or no", path,
					     js->line, js->key);
				goto fail;
			}
			if (!on)
				continue;
			argv[argc] = malloc(strlen(js->key) + 3);
			if (argv[argc] != NULL)
				sprintf(argv[argc], "--%s", js->key);
			argc++;
			continue;
		}
		argv[argc] = malloc(strlen(js->key) + 3);
		if (argv[argc] != NULL)
			sprintf(argv[argc], "--%s", js->key);
		argc++;
		argv[argc++] = value != NULL ? value : strdup(js->value);
	}
	for (i = 0; i < (size_t)argc; i++) {
		if (argv[i] == NULL) {
			tr_error_set(err, TR_ERR_LOCAL, "out of memory");
			goto fail;
		}
	}
	*out = argv;
	*out_n = argc;
	return 0;
fail:
	for (i = 0; i < (size_t)argc; i++)
		free(argv[i]);
	free(argv);
	return -1;
}

static void free_args(char **argv, int argc)
{
	int i;

	for (i = 0; argv != NULL && i < argc; i++)
		free(argv[i]);
	free(argv);
}

/* A job file's settings, as if they were options before the command
 * line's (which therefore win).  A spool job comes already read. */
static int apply_job_file(const char *path, struct cli_opts *o, struct tr_error *err)
{
	struct job_file own;
	const struct job_file *jf = &own;
	char **argv = NULL, *dir = NULL;
	int argc = 0, r = -1;

	memset(&own, 0, sizeof(own));
	if (spool_job != NULL)
		jf = spool_job->jf;
	else if (job_file_load(path, &own, err) < 0)
		return -1;
	dir = spool_job != NULL ? strdup(spool_job->dir) : job_file_dir(path);
	if (dir == NULL) {
		tr_error_set(err, TR_ERR_LOCAL, "out of memory");
		goto out;
	}
	if (job_to_args(jf, dir, spool_job, &o->accounts, &argv, &argc, err) < 0)
		goto out;
	r = parse_args(argc, argv, o, err);
	if (r > 0)
		r = 0;
	if (r < 0)
		tr_error_prefix(err, "%s", path);
	else if (o->n_args > 0) {
		tr_error_set(err, TR_ERR_USAGE, "%s: unexpected value \"%s\"", path, o->args[0]);
		r = -1;
	}
out:
	free_args(argv, argc);
	free(dir);
	job_file_free(&own);
	return r;
}

/* ---- the spool's operator settings ---------------------------------------- */

int cli_spool_config(const char *path, char ***args, int *n, struct tr_error *err)
{
	struct job_file jf;
	struct stat st;
	char **argv = NULL, *dir;
	int fd, argc = 0, r = -1;

	*args = NULL;
	*n = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
	if (fd < 0) {
		tr_error_set(err, TR_ERR_USAGE, "spool configuration %s: %s", path,
			     errno == ELOOP ? "a symbolic link (give the file itself)" :
			     strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		tr_error_set(err, TR_ERR_USAGE, "spool configuration %s: not a regular file", path);
		close(fd);
		return -1;
	}
	/* it may turn certificate checks off for every job: only root may
	 * have written it */
	if (st.st_uid != 0 || (st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
		tr_error_set(err, TR_ERR_USAGE, "spool configuration %s must belong to root and be "
			     "writable by no one else (it is uid %u, mode %04o): chown root, chmod "
			     "go-w", path, (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777));
		close(fd);
		return -1;
	}
	r = job_file_read_fd(fd, path, &jf, err);
	close(fd);
	if (r < 0)
		return -1;
	dir = job_file_dir(path);
	if (dir == NULL) {
		tr_error_set(err, TR_ERR_LOCAL, "out of memory");
		r = -1;
	} else {
		r = job_to_args(&jf, dir, NULL, NULL, &argv, &argc, err);
	}
	free(dir);
	job_file_free(&jf);
	if (r < 0)
		return -1;
	/* without the "job" in front */
	free(argv[0]);
	memmove(argv, argv + 1, (size_t)(argc - 1) * sizeof(*argv));
	*args = argv;
	*n = argc - 1;
	return 0;
}

void cli_spool_config_free(char **args, int n)
{
	free_args(args, n);
}

int cli_spool_check(int argc, char **argv, struct tr_error *err)
{
	struct cli_opts o;
	int r;

	opts_init(&o);
	r = parse_args(argc, argv, &o, err);
	if (r > 0) {
		tr_error_set(err, TR_ERR_USAGE, "--help is not an option of the spool's jobs");
		r = -1;
	} else if (r == 0 && o.n_args > 0) {
		tr_error_set(err, TR_ERR_USAGE, "unexpected argument \"%s\"", o.args[0]);
		r = -1;
	} else if (r == 0 && o.dst_admin != NULL && o.dst.host == NULL) {
		/* else a job would choose where the admin password goes */
		tr_error_set(err, TR_ERR_USAGE, "a spool with --dst-admin needs --dst from its "
			     "command line or --config file too: the destination an admin "
			     "password is sent to is not a job's choice");
		r = -1;
	}
	cli_opts_free(&o);
	return r;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);

	return a >= b && strcmp(s + a - b, suffix) == 0;
}

int cli_parse(enum cli_cmd cmd, int argc, char **argv, struct cli_opts *o, struct tr_error *err)
{
	int r;

	opts_init(o);
	o->cmd = cmd;
	/* A job file named on the command line is read first. */
	if (cmd == CMD_RUN || cmd == CMD_CHECK || cmd == CMD_VERIFY) {
		int i;

		for (i = 1; i < argc; i++) {
			if (argv[i][0] == '-' && argv[i][1] != '\0') {
				/* skip an option's value */
				const struct option *opt;
				const char *name = argv[i] + 2;

				if (argv[i][1] != '-' || strchr(name, '=') != NULL)
					continue;
				for (opt = long_options; opt->name != NULL; opt++)
					if (strcmp(opt->name, name) == 0)
						break;
				if (opt->name != NULL && opt->has_arg == required_argument)
					i++;
				continue;
			}
			if (ends_with(argv[i], ".job")) {
				if (set_str(&o->job, argv[i], err) < 0 ||
				    apply_job_file(argv[i], o, err) < 0)
					return -1;
				break;
			}
		}
	}
	r = parse_args(argc, argv, o, err);
	if (r != 0)
		return r;
	if (o->content && cmd != CMD_VERIFY) {
		tr_error_set(err, TR_ERR_USAGE, "--content is an option of verify");
		return -1;
	}
	if (cmd == CMD_RUN || cmd == CMD_CHECK || cmd == CMD_VERIFY) {
		size_t i;

		for (i = 0; i < o->n_args; i++) {
			if (o->job != NULL && strcmp(o->args[i], o->job) == 0)
				continue;
			if (o->accounts != NULL && o->job == NULL) {
				tr_error_set(err, TR_ERR_USAGE, "one accounts file or job file, please");
				return -1;
			}
			if (set_str(&o->accounts, o->args[i], err) < 0)
				return -1;
		}
		if (o->accounts == NULL) {
			tr_error_set(err, TR_ERR_USAGE, "name an accounts CSV or a job file%s",
				     o->job != NULL ? " (or set accounts = in the job file)" : "");
			return -1;
		}
	} else if (o->n_args > 0) {
		tr_error_set(err, TR_ERR_USAGE, "unexpected argument \"%s\"", o->args[0]);
		return -1;
	}
	return cli_finish_opts(o, err);
}

int cli_parse_migrate(int argc, char **argv, struct cli_opts *o, struct tr_error *err)
{
	return cli_parse(CMD_MIGRATE, argc, argv, o, err);
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
	if (o->cmd == CMD_MIGRATE) {
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
	} else if (o->user != NULL || o->src_user != NULL || o->dst_user != NULL ||
		   o->src_password_file != NULL || o->dst_password_file != NULL) {
		tr_error_set(err, TR_ERR_USAGE, "accounts and their passwords come from the CSV "
			     "(--user and password files are for `trasloco migrate`)");
		return -1;
	}
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
	free(o->accounts);
	free(o->job);
	free(o->report);
	free(o->report_csv);
	free(o->log_dir);
	for (i = 0; i < o->n_args; i++)
		free(o->args[i]);
	free(o->args);
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

