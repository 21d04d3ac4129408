/* jobconf: see include/jobconf.h */
#include "config.h"

#include <arpa/inet.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "jobconf.h"
#include "net.h"
#include "pg.h"
#include "throttle.h"

#define DEFAULT_MAX_PER_ACCOUNT 4
#define DEFAULT_MAX_CONNECTIONS 40
#define DEFAULT_TIMEOUT_S 120
#define DEFAULT_RETRIES 5
#define DEFAULT_BATCH_BYTES (16u << 20)
#define DEFAULT_BATCH_COUNT 100
#define DEFAULT_PARALLEL_ACCOUNTS 4

/* How a key's value is stored (struct jobconf_key.type). */
enum {
	T_SERVER,       /* struct jobconf_server at off: HOST[:PORT] */
	T_TLS,          /* struct jobconf_server at off: its TLS mode */
	T_TEXT,         /* char * at off */
	T_FLAG,         /* bool at off, turned to lo != 0 */
	T_LEVEL,        /* int at off, turned to lo */
	T_INT,          /* int at off, lo..hi */
	T_COUNT,        /* uint32_t at off, lo..hi */
	T_MB,           /* uint64_t bytes at off, lo..hi megabytes */
	T_BYTES,        /* uint64_t bytes at off: N, Nk, NM, NG (throttle_parse_bytes) */
	T_CHAR,         /* char at off: one character */
	T_DATE,         /* uint32_t YYYYMMDD at off, from "YYYY-MM-DD" */
	T_LIST,         /* char ** at off, size_t count at off2 */
	T_MAP,          /* the folder map rules: OLD=NEW */
	T_AUTH,         /* int at off: enum jobconf_auth by name */
	T_PRESET,       /* char * at off: a preset's name, whose settings are applied */
};

#define AT(field) offsetof(struct job_config, field)
/* Rows: name, takes_value, option, operator_only, repeats, path, help,
 * type, off, off2, lo, hi. */
#define VAL(n, t, off, h) { n, true, true, false, false, JOBCONF_NOT_PATH, h, t, off, 0, 0, 0 }
#define NUM(n, t, off, lo, hi, h) { n, true, true, false, false, JOBCONF_NOT_PATH, h, t, off, 0, lo, hi }
#define FLAG(n, off, on, h) { n, false, true, false, false, JOBCONF_NOT_PATH, h, T_FLAG, off, 0, on, 0 }
#define LEVEL(n, v, h) { n, false, true, false, false, JOBCONF_NOT_PATH, h, T_LEVEL, AT(verbosity), 0, v, 0 }
#define PATH(n, kind, off, h) { n, true, true, false, false, kind, h, T_TEXT, off, 0, 0, 0 }
#define LIST(n, t, off, off2, h) { n, true, true, false, true, JOBCONF_NOT_PATH, h, t, off, off2, 0, 0 }
/* TLS policy and the admin login are the operator's, not a spool job's */
#define OP_FLAG(n, off, h) { n, false, true, true, false, JOBCONF_NOT_PATH, h, T_FLAG, off, 0, 1, 0 }
#define OP_TEXT(n, kind, off, h) { n, true, true, true, false, kind, h, T_TEXT, off, 0, 0, 0 }

/* Every setting of a job.  The order is the text's (jobconf_text). */
static const struct jobconf_key keys[] = {
	VAL("src", T_SERVER, AT(src), "source server HOST[:PORT] (993: implicit TLS, else STARTTLS)"),
	VAL("src-tls", T_TLS, AT(src), "source TLS: implicit, starttls or none"),
	VAL("src-tls-name", T_TEXT, AT(src.tls_name), "name the source certificate must carry (and SNI)"),
	VAL("dst", T_SERVER, AT(dst), "destination server HOST[:PORT]"),
	VAL("dst-tls", T_TLS, AT(dst), "destination TLS: implicit, starttls or none"),
	VAL("dst-tls-name", T_TEXT, AT(dst.tls_name), "name the destination certificate must carry"),
	OP_TEXT("ca-file", JOBCONF_PATH_READ, AT(ca_file), "trust these CAs (default: the system store)"),
	OP_FLAG("insecure", AT(insecure), "do not verify certificates"),
	OP_FLAG("allow-plaintext", AT(allow_plaintext), "allow TLS none to a host that is not loopback"),
	/* on the command line it is the argument, not an option */
	{ "accounts", true, false, false, false, JOBCONF_PATH_READ, "the accounts CSV (run, check, verify)",
	  T_TEXT, AT(accounts), 0, 0, 0 },
	VAL("user", T_TEXT, AT(user), "migrate: the mailbox (login on both sides)"),
	VAL("src-user", T_TEXT, AT(src_user), "migrate: the login on the source"),
	VAL("dst-user", T_TEXT, AT(dst_user), "migrate: the login on the destination"),
	PATH("src-password-file", JOBCONF_PATH_READ, AT(src_password_file),
	     "migrate: the source password's file"),
	PATH("dst-password-file", JOBCONF_PATH_READ, AT(dst_password_file),
	     "migrate: the destination password's file"),
	OP_TEXT("dst-admin", JOBCONF_NOT_PATH, AT(dst_admin),
		"log in to the destination as this admin for each account"),
	OP_TEXT("dst-admin-password-file", JOBCONF_PATH_READ, AT(dst_admin_password_file),
		"the destination admin password's file"),
	VAL("dst-admin-separator", T_CHAR, AT(dst_admin_separator),
	    "log in as \"user<C>admin\" instead of SASL PLAIN"),
	OP_TEXT("src-admin", JOBCONF_NOT_PATH, AT(src_admin),
		"log in to the source as this admin for each account"),
	OP_TEXT("src-admin-password-file", JOBCONF_PATH_READ, AT(src_admin_password_file),
		"the source admin password's file"),
	VAL("src-admin-separator", T_CHAR, AT(src_admin_separator),
	    "log in to the source as \"user<C>admin\" instead of SASL PLAIN"),
	/* they run commands and write files as the operator: never a spool job's */
	OP_TEXT("provision-cmd", JOBCONF_NOT_PATH, AT(provision_cmd),
		"before the copy, run CMD for each account (TRASLOCO_EMAIL, password on stdin)"),
	OP_TEXT("provision", JOBCONF_NOT_PATH, AT(provision),
		"before the copy, add missing users to dovecot-passwd-file:/PATH"),
	OP_TEXT("provision-passwd-fields", JOBCONF_NOT_PATH, AT(provision_passwd_fields),
		"the passwd-file's fields after the password (%u, %n, %d)"),
	VAL("src-auth", T_AUTH, AT(src_auth), "source login: password, xoauth2 or oauthbearer"),
	VAL("dst-auth", T_AUTH, AT(dst_auth), "destination login: password, xoauth2 or oauthbearer"),
	/* a command is the operator's: a spool job may not run one */
	OP_TEXT("src-token-cmd", JOBCONF_NOT_PATH, AT(src_token_cmd),
		"command printing an account's source OAuth2 token (or JSON)"),
	OP_TEXT("dst-token-cmd", JOBCONF_NOT_PATH, AT(dst_token_cmd),
		"command printing an account's destination OAuth2 token (or JSON)"),
	OP_TEXT("src-oauth-provider", JOBCONF_NOT_PATH, AT(src_oauth.provider),
		"built-in source token flow: microsoft365 or google"),
	OP_TEXT("src-oauth-tenant", JOBCONF_NOT_PATH, AT(src_oauth.tenant),
		"microsoft365: the tenant (id or domain)"),
	OP_TEXT("src-oauth-client-id", JOBCONF_NOT_PATH, AT(src_oauth.client_id),
		"microsoft365: the application (client) id"),
	OP_TEXT("src-oauth-secret-file", JOBCONF_PATH_READ, AT(src_oauth.secret_file),
		"microsoft365: the client secret's file; google: the service account key"),
	OP_TEXT("src-oauth-cert-file", JOBCONF_PATH_READ, AT(src_oauth.cert_file),
		"microsoft365: the app's certificate (PEM), instead of a secret"),
	OP_TEXT("src-oauth-key-file", JOBCONF_PATH_READ, AT(src_oauth.key_file),
		"microsoft365: the certificate's private key (PEM)"),
	OP_TEXT("src-oauth-token-url", JOBCONF_NOT_PATH, AT(src_oauth.token_url),
		"the token endpoint, instead of the provider's"),
	OP_TEXT("dst-oauth-provider", JOBCONF_NOT_PATH, AT(dst_oauth.provider),
		"built-in destination token flow: microsoft365 or google"),
	OP_TEXT("dst-oauth-tenant", JOBCONF_NOT_PATH, AT(dst_oauth.tenant),
		"microsoft365: the tenant (id or domain)"),
	OP_TEXT("dst-oauth-client-id", JOBCONF_NOT_PATH, AT(dst_oauth.client_id),
		"microsoft365: the application (client) id"),
	OP_TEXT("dst-oauth-secret-file", JOBCONF_PATH_READ, AT(dst_oauth.secret_file),
		"microsoft365: the client secret's file; google: the service account key"),
	OP_TEXT("dst-oauth-cert-file", JOBCONF_PATH_READ, AT(dst_oauth.cert_file),
		"microsoft365: the app's certificate (PEM), instead of a secret"),
	OP_TEXT("dst-oauth-key-file", JOBCONF_PATH_READ, AT(dst_oauth.key_file),
		"microsoft365: the certificate's private key (PEM)"),
	OP_TEXT("dst-oauth-token-url", JOBCONF_NOT_PATH, AT(dst_oauth.token_url),
		"the token endpoint, instead of the provider's"),
	/* a path, or a PostgreSQL DSN taken as it is (jobconf_set) */
	PATH("state", JOBCONF_PATH_DIR, AT(state_dir),
	     "what is known between runs: DIR, or postgresql://USER@HOST:PORT/DB"),
	LIST("folder", T_LIST, AT(folders), AT(n_folders), "copy the folders matching PATTERN"),
	LIST("exclude", T_LIST, AT(excludes), AT(n_excludes), "leave out the folders matching PATTERN"),
	LIST("map", T_MAP, 0, 0, "rename a folder: OLD=NEW"),
	FLAG("keep-names", AT(keep_names), 1, "no special-use mapping"),
	{ "src-preset", true, true, false, false, JOBCONF_NOT_PATH,
	  "source provider's settings: gmail or microsoft365 (later settings win)", T_PRESET,
	  AT(src_preset), 0, 0, 0 },
	FLAG("copy-virtual-folders", AT(copy_virtual), 1,
	     "copy \\All, \\Flagged, \\Important views that a preset leaves out"),
	FLAG("no-subscriptions", AT(subscribe), 0, "do not copy subscriptions"),
	FLAG("content", AT(content), 1, "verify: compare whole contents"),
	FLAG("folders", AT(show_folders), 1, "check: the plan of every folder"),
	FLAG("dry-run", AT(dry_run), 1, "migrate: the plan of every folder, nothing copied"),
	VAL("since", T_DATE, AT(since_day),
	    "run, migrate: only messages received on or after DATE (YYYY-MM-DD)"),
	VAL("before", T_DATE, AT(before_day),
	    "run, migrate: only messages received before DATE (YYYY-MM-DD)"),
	NUM("trial", T_COUNT, AT(trial), 1, 1000000,
	    "run, migrate: copy at most N messages per folder"),
	FLAG("final", AT(final), 1, "run, migrate: a last pass, then verify; mark finished"),
	NUM("src-max-per-account", T_INT, AT(src_max_per_account), 1, 100,
	    "sessions per account on the source"),
	NUM("dst-max-per-account", T_INT, AT(dst_max_per_account), 1, 100,
	    "sessions per account on the destination"),
	NUM("src-max-connections", T_INT, AT(src_max_connections), 1, 10000,
	    "sessions on the source in all"),
	NUM("dst-max-connections", T_INT, AT(dst_max_connections), 1, 10000,
	    "sessions on the destination in all"),
	FLAG("caps-per-egress", AT(caps_per_egress), 1,
	     "queue: per-account caps count per worker --egress"),
	NUM("parallel-accounts", T_INT, AT(parallel_accounts), 1, 1000, "accounts at once"),
	NUM("timeout", T_INT, AT(timeout_s), 1, 86400, "network idle timeout, seconds"),
	NUM("retries", T_INT, AT(retries), 1, 100, "attempts on transient errors"),
	NUM("batch-size", T_MB, AT(batch_bytes), 1, 1024, "megabytes per FETCH/APPEND batch"),
	NUM("batch-count", T_COUNT, AT(batch_count), 1, 250, "messages per batch"),
	NUM("src-max-bytes-per-second", T_BYTES, AT(src_bytes_per_second), 0, 0,
	    "bytes per second from the source in all (k, M, G: 1000, 10^6, 10^9)"),
	NUM("src-max-messages-per-second", T_COUNT, AT(src_messages_per_second), 1, 1000000,
	    "messages per second from the source in all"),
	NUM("src-max-bytes-per-day", T_BYTES, AT(src_bytes_per_day), 0, 0,
	    "bytes per UTC day from the source in all, then the accounts pause"),
	NUM("src-max-account-bytes-per-day", T_BYTES, AT(src_account_bytes_per_day), 0, 0,
	    "bytes per UTC day from the source for each account, then it pauses"),
	NUM("dst-max-bytes-per-second", T_BYTES, AT(dst_bytes_per_second), 0, 0,
	    "bytes per second to the destination in all"),
	NUM("dst-max-messages-per-second", T_COUNT, AT(dst_messages_per_second), 1, 1000000,
	    "messages per second to the destination in all"),
	NUM("dst-max-bytes-per-day", T_BYTES, AT(dst_bytes_per_day), 0, 0,
	    "bytes per UTC day to the destination in all, then the accounts pause"),
	NUM("dst-max-account-bytes-per-day", T_BYTES, AT(dst_account_bytes_per_day), 0, 0,
	    "bytes per UTC day to the destination for each account, then it pauses"),
	PATH("spool-dir", JOBCONF_PATH_DIR, AT(spool_dir), "where fetched messages wait"),
	PATH("report", JOBCONF_PATH_WRITE, AT(report), "JSON report"),
	PATH("report-csv", JOBCONF_PATH_WRITE, AT(report_csv), "CSV report (run)"),
	PATH("log-dir", JOBCONF_PATH_DIR, AT(log_dir), "a log per account (run)"),
	LEVEL("quiet", -1, "warnings and errors only"),
	LEVEL("verbose", 1, "more log lines"),
	LEVEL("debug", 2, "every log line"),
	FLAG("no-progress", AT(progress), 0, "no progress line"),
};

const struct jobconf_key *jobconf_keys(size_t *n)
{
	*n = sizeof(keys) / sizeof(keys[0]);
	return keys;
}

const struct jobconf_key *jobconf_key(const char *name)
{
	size_t i;

	for (i = 0; name != NULL && i < sizeof(keys) / sizeof(keys[0]); i++)
		if (strcmp(keys[i].name, name) == 0)
			return &keys[i];
	return NULL;
}

void jobconf_init(struct job_config *cfg, enum job_kind kind)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->kind = kind;
	cfg->src_max_per_account = DEFAULT_MAX_PER_ACCOUNT;
	cfg->dst_max_per_account = DEFAULT_MAX_PER_ACCOUNT;
	cfg->src_max_connections = DEFAULT_MAX_CONNECTIONS;
	cfg->dst_max_connections = DEFAULT_MAX_CONNECTIONS;
	cfg->timeout_s = DEFAULT_TIMEOUT_S;
	cfg->retries = DEFAULT_RETRIES;
	cfg->batch_bytes = DEFAULT_BATCH_BYTES;
	cfg->batch_count = DEFAULT_BATCH_COUNT;
	cfg->parallel_accounts = DEFAULT_PARALLEL_ACCOUNTS;
	cfg->subscribe = true;
	cfg->progress = true;
}

static void free_list(char **v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

void jobconf_free(struct job_config *cfg)
{
	size_t i;

	free(cfg->name);
	free(cfg->src.host);
	free(cfg->src.tls_name);
	free(cfg->dst.host);
	free(cfg->dst.tls_name);
	free(cfg->ca_file);
	free(cfg->accounts);
	free(cfg->user);
	free(cfg->src_user);
	free(cfg->dst_user);
	free(cfg->src_password_file);
	free(cfg->dst_password_file);
	free(cfg->dst_admin);
	free(cfg->dst_admin_password_file);
	free(cfg->src_admin);
	free(cfg->src_admin_password_file);
	free(cfg->provision_cmd);
	free(cfg->provision);
	free(cfg->provision_passwd_fields);
	free(cfg->src_token_cmd);
	free(cfg->dst_token_cmd);
	free(cfg->src_preset);
	for (i = 0; i < 2; i++) {
		struct jobconf_oauth *o = i == 0 ? &cfg->src_oauth : &cfg->dst_oauth;

		free(o->provider);
		free(o->tenant);
		free(o->client_id);
		free(o->secret_file);
		free(o->cert_file);
		free(o->key_file);
		free(o->token_url);
	}
	free_list(cfg->folders, cfg->n_folders);
	free_list(cfg->excludes, cfg->n_excludes);
	for (i = 0; i < cfg->n_maps; i++) {
		free((char *)cfg->maps[i].from);
		free((char *)cfg->maps[i].to);
	}
	free(cfg->maps);
	free(cfg->spool_dir);
	free(cfg->state_dir);
	free(cfg->report);
	free(cfg->report_csv);
	free(cfg->log_dir);
	memset(cfg, 0, sizeof(*cfg));
}

/* ---- values ----------------------------------------------------------------- */

int jobconf_parse_server(const char *arg, struct jobconf_server *s, struct tr_error *err)
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
	/* a name or an address, nothing that would not read back the same from
	 * jobconf_text (which brackets a host with a colon): brackets, spaces
	 * and the like are refused, and a host with a colon must be IPv6 */
	for (size_t i = 0; i < hlen; i++) {
		unsigned char c = (unsigned char)host[i];

		if (c == '[' || c == ']' || c == '/' || c == '@' || c == '"' || c == '\\' ||
		    c <= ' ' || c == 0x7f) {
			tr_error_set(err, TR_ERR_USAGE, "bad server \"%s\": '%c' in the host", arg,
				     c > ' ' && c != 0x7f ? c : '?');
			return -1;
		}
	}
	if (memchr(host, ':', hlen) != NULL) {
		char a[INET6_ADDRSTRLEN];
		struct in6_addr in6;

		if (hlen >= sizeof(a) || (memcpy(a, host, hlen), a[hlen] = '\0',
					   inet_pton(AF_INET6, a, &in6) != 1)) {
			tr_error_set(err, TR_ERR_USAGE, "bad server \"%s\": not HOST:PORT nor an IPv6 "
				     "address (use [IPv6]:port)", arg);
			return -1;
		}
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

static const char *const tls_names[] = { "implicit", "starttls", "none" };

/* What a provider's preset sets, in order, as if each were given where
 * the preset is (settings after it win).  One line per setting. */
static const struct {
	const char *preset, *key, *value;
} presets[] = {
	/* Gmail: at most 15 IMAP sessions per account; All Mail, Starred and
	 * Important repeat the labels' mail */
	{ "gmail", "src-max-per-account", "15" },
	{ "gmail", "src-auth", "xoauth2" },
	/* and about 2500 MB of IMAP download per account a day */
	{ "gmail", "src-max-account-bytes-per-day", "2500M" },
	{ "gmail", "skip-virtual-folders", "yes" },
	/* Microsoft 365 throttles per mailbox beyond a few sessions */
	{ "microsoft365", "src-max-per-account", "8" },
	{ "microsoft365", "src-auth", "xoauth2" },
};

static int apply_preset(struct job_config *cfg, const char *name, const char *what,
			struct tr_error *err)
{
	bool known = false;
	size_t i;

	for (i = 0; i < sizeof(presets) / sizeof(presets[0]); i++) {
		if (strcmp(presets[i].preset, name) != 0)
			continue;
		known = true;
		if (strcmp(presets[i].key, "skip-virtual-folders") == 0) {
			cfg->skip_virtual = true;
			continue;
		}
		if (jobconf_set(cfg, presets[i].key, presets[i].value, NULL, err) < 0) {
			tr_error_prefix(err, "%s %s", what, name);
			return -1;
		}
	}
	if (!known) {
		tr_error_set(err, TR_ERR_USAGE, "%s wants gmail or microsoft365", what);
		return -1;
	}
	return 0;
}

static const char *const auth_names[] = { "password", "xoauth2", "oauthbearer" };

static int parse_auth(const char *what, const char *arg, int *out, struct tr_error *err)
{
	size_t i;

	for (i = 0; i < sizeof(auth_names) / sizeof(auth_names[0]); i++)
		if (strcasecmp(arg, auth_names[i]) == 0) {
			*out = (int)i;
			return 0;
		}
	tr_error_set(err, TR_ERR_USAGE, "%s wants password, xoauth2 or oauthbearer", what);
	return -1;
}

static int parse_tls(const char *arg, struct jobconf_server *s, struct tr_error *err)
{
	if (strcmp(arg, "implicit") == 0 || strcmp(arg, "ssl") == 0 || strcmp(arg, "tls") == 0)
		s->tls = JOBCONF_TLS_IMPLICIT;
	else if (strcmp(arg, "starttls") == 0)
		s->tls = JOBCONF_TLS_STARTTLS;
	else if (strcmp(arg, "none") == 0 || strcmp(arg, "plain") == 0)
		s->tls = JOBCONF_TLS_NONE;
	else {
		tr_error_set(err, TR_ERR_USAGE, "bad TLS mode \"%s\": implicit, starttls or none", arg);
		return -1;
	}
	s->tls_set = true;
	return 0;
}

static int parse_num(const char *what, const char *arg, long lo, long hi, long *v,
		     struct tr_error *err)
{
	char *e;

	errno = 0;
	*v = strtol(arg, &e, 10);
	if (*arg == '\0' || *e != '\0' || errno != 0 || *v < lo || *v > hi) {
		tr_error_set(err, TR_ERR_USAGE, "%s wants a number from %ld to %ld, not \"%s\"", what,
			     lo, hi, arg);
		return -1;
	}
	return 0;
}

/* A flag's value: NULL (given without one) and "" are yes. */
static bool truthy(const char *v, bool *ok)
{
	*ok = true;
	if (v == NULL || strcasecmp(v, "yes") == 0 || strcasecmp(v, "true") == 0 ||
	    strcmp(v, "1") == 0 || strcasecmp(v, "on") == 0 || v[0] == '\0')
		return true;
	if (strcasecmp(v, "no") == 0 || strcasecmp(v, "false") == 0 || strcmp(v, "0") == 0 ||
	    strcasecmp(v, "off") == 0)
		return false;
	*ok = false;
	return false;
}

static int oom(struct tr_error *err)
{
	tr_error_set(err, TR_ERR_LOCAL, "out of memory");
	return -1;
}

static int set_str(char **dst, const char *v, struct tr_error *err)
{
	char *copy = strdup(v);

	if (copy == NULL)
		return oom(err);
	free(*dst);
	*dst = copy;
	return 0;
}

static int push_str(char ***v, size_t *n, const char *s, struct tr_error *err)
{
	char **nv = realloc(*v, (*n + 1) * sizeof(**v));

	if (nv == NULL)
		return oom(err);
	*v = nv;
	if ((nv[*n] = strdup(s)) == NULL)
		return oom(err);
	(*n)++;
	return 0;
}

static int push_map(struct job_config *cfg, const char *what, const char *arg,
		    struct tr_error *err)
{
	const char *eq = strchr(arg, '=');
	struct folder_map_rule *nv;
	char *from, *to;

	if (eq == NULL || eq == arg || eq[1] == '\0') {
		tr_error_set(err, TR_ERR_USAGE, "%s wants 'OLD=NEW', not \"%s\"", what, arg);
		return -1;
	}
	nv = realloc(cfg->maps, (cfg->n_maps + 1) * sizeof(*nv));
	if (nv == NULL)
		return oom(err);
	cfg->maps = nv;
	from = strndup(arg, (size_t)(eq - arg));
	to = strdup(eq + 1);
	if (from == NULL || to == NULL) {
		free(from);
		free(to);
		return oom(err);
	}
	nv[cfg->n_maps].from = from;
	nv[cfg->n_maps].to = to;
	cfg->n_maps++;
	return 0;
}

/* "YYYY-MM-DD", a real day of the Gregorian calendar, as YYYYMMDD. */
static int parse_date(const char *what, const char *value, uint32_t *out, struct tr_error *err)
{
	static const int mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	unsigned y, m, d;
	int n = 0;

	if (strlen(value) != 10 || sscanf(value, "%4u-%2u-%2u%n", &y, &m, &d, &n) != 3 ||
	    n != 10 || value[4] != '-' || value[7] != '-' || strspn(value, "0123456789-") != 10 ||
	    y < 1900 || m < 1 || m > 12 || d < 1 || (int)d > mdays[m - 1] ||
	    (m == 2 && d == 29 && !(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)))) {
		tr_error_set(err, TR_ERR_USAGE, "%s wants a date YYYY-MM-DD, not \"%s\"", what,
			     value);
		return -1;
	}
	*out = y * 10000 + m * 100 + d;
	return 0;
}

/* Store value (already resolved if a path) into cfg as k says; what names
 * the setting in messages. */
static int store(struct job_config *cfg, const struct jobconf_key *k, const char *value,
		 const char *what, struct tr_error *err)
{
	char *base = (char *)cfg;
	long v;
	bool ok, on;

	switch (k->type) {
	case T_SERVER:
		return jobconf_parse_server(value, (struct jobconf_server *)(base + k->off), err);
	case T_TLS:
		return parse_tls(value, (struct jobconf_server *)(base + k->off), err);
	case T_TEXT:
		return set_str((char **)(base + k->off), value, err);
	case T_FLAG:
	case T_LEVEL:
		on = truthy(value, &ok);
		if (!ok) {
			tr_error_set(err, TR_ERR_USAGE, "%s wants yes or no", what);
			return -1;
		}
		if (on && k->type == T_FLAG)
			*(bool *)(base + k->off) = k->lo != 0;
		else if (on)
			*(int *)(base + k->off) = (int)k->lo;
		return 0;
	case T_INT:
	case T_COUNT:
	case T_MB:
		if (parse_num(what, value, k->lo, k->hi, &v, err) < 0)
			return -1;
		if (k->type == T_INT)
			*(int *)(base + k->off) = (int)v;
		else if (k->type == T_COUNT)
			*(uint32_t *)(base + k->off) = (uint32_t)v;
		else
			*(uint64_t *)(base + k->off) = (uint64_t)v << 20;
		return 0;
	case T_BYTES: {
		uint64_t b;

		if (throttle_parse_bytes(value, &b) < 0) {
			tr_error_set(err, TR_ERR_USAGE, "%s wants a number of bytes above 0, with k, "
				     "M or G for 10^3, 10^6, 10^9 (\"2M\")", what);
			return -1;
		}
		*(uint64_t *)(base + k->off) = b;
		return 0;
	}
	case T_CHAR:
		if (strlen(value) != 1) {
			tr_error_set(err, TR_ERR_USAGE, "%s wants one character", what);
			return -1;
		}
		*(base + k->off) = value[0];
		return 0;
	case T_DATE:
		return parse_date(what, value, (uint32_t *)(base + k->off), err);
	case T_LIST:
		return push_str((char ***)(base + k->off), (size_t *)(base + k->off2), value, err);
	case T_MAP:
		return push_map(cfg, what, value, err);
	case T_AUTH:
		return parse_auth(what, value, (int *)(base + k->off), err);
	case T_PRESET:
		if (apply_preset(cfg, value, what, err) < 0)
			return -1;
		return set_str((char **)(base + k->off), value, err);
	}
	tr_error_set(err, TR_ERR_LOCAL, "%s: no way to store it", what);
	return -1;
}

/* ---- paths ---------------------------------------------------------------- */

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
static char *confine(const char *dir, const char *dir_real, const char *value,
		     enum jobconf_path kind, char *buf, size_t cap, const char **why)
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
		rel = below(dir, value);
		if (rel == NULL)
			rel = below(dir_real, value);
		if (rel == NULL) {
			*why = "outside the spool directory (a spool job's paths stay in it)";
			return NULL;
		}
	}
	len = strlen(dir) + strlen(rel) + 2;
	out = malloc(len);
	if (out == NULL) {
		*why = "out of memory";
		return NULL;
	}
	o = out + snprintf(out, len, "%s", dir);
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
		if (*p == '\0' && kind == JOBCONF_PATH_DIR && !S_ISDIR(st.st_mode)) {
			snprintf(buf, cap, "%s is not a directory", out);
			*why = buf;
			goto fail;
		}
		/* a FIFO or a device would block or worse when opened */
		if (*p == '\0' && kind != JOBCONF_PATH_DIR && !S_ISREG(st.st_mode)) {
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

/* ---- setting -------------------------------------------------------------- */

/* err's text, prefixed with where the setting was written ("run.job:7: "). */
static int where(const struct jobconf_origin *o, struct tr_error *err)
{
	char msg[sizeof(err->msg)];

	if (o->file == NULL)
		return -1;
	memcpy(msg, err->msg, sizeof(msg));
	if (o->line > 0)
		snprintf(err->msg, sizeof(err->msg), "%s:%u: %s", o->file, o->line, msg);
	else
		snprintf(err->msg, sizeof(err->msg), "%s: %s", o->file, msg);
	return -1;
}

int jobconf_set(struct job_config *cfg, const char *key, const char *value,
		const struct jobconf_origin *origin, struct tr_error *err)
{
	static const struct jobconf_origin caller = { .from = JOBCONF_CALLER };
	const struct jobconf_key *k = jobconf_key(key);
	char what[64], *path = NULL;
	int r;

	if (origin == NULL)
		origin = &caller;
	if (k == NULL) {
		tr_error_set(err, TR_ERR_USAGE, "unknown setting \"%s\"", key);
		return where(origin, err);
	}
	snprintf(what, sizeof(what), "%s%s", origin->from == JOBCONF_CALLER ? "--" : "", k->name);
	if (strcmp(k->name, "accounts") == 0 && origin->from == JOBCONF_OPERATOR) {
		tr_error_set(err, TR_ERR_USAGE, "accounts is set by each job, not here");
		return where(origin, err);
	}
	if (k->operator_only && origin->from == JOBCONF_SPOOL_JOB) {
		tr_error_set(err, TR_ERR_USAGE, "\"%s\" is not taken from a spool job (TLS, admin and "
			     "provisioning settings are the operator's: give it on the spool's "
			     "command line or in its --config file)", k->name);
		return where(origin, err);
	}
	if (value == NULL && k->takes_value) {
		tr_error_set(err, TR_ERR_USAGE, "%s needs a value", what);
		return where(origin, err);
	}
	/* what a job file refuses (job.c) is refused from anywhere else too:
	 * every setting must read back from jobconf_text's lines */
	for (size_t i = 0; value != NULL && value[i] != '\0'; i++) {
		unsigned char c = (unsigned char)value[i];

		if ((c < 0x20 && c != '\t') || c == 0x7f) {
			tr_error_set(err, TR_ERR_USAGE, "%s: control character (0x%02x) in the value",
				     what, c);
			return where(origin, err);
		}
	}
	if (strcmp(k->name, "state") == 0 && pg_is_dsn(value)) {
		/* a database, not a path: as it is.  Its password would be on a
		 * command line (ps shows it to every user) or in a job file, and
		 * from there in the queue and in reports: never; libpq reads it
		 * from PGPASSFILE or a service file.  A spool job names no
		 * database: which one the operator's credentials reach is the
		 * operator's to say. */
		if (pg_dsn_has_password(value)) {
			tr_error_set(err, TR_ERR_USAGE, "%s: the PostgreSQL DSN holds a password: "
				     "leave it out (use PGPASSFILE or a service file)", what);
			return where(origin, err);
		}
		if (origin->from == JOBCONF_SPOOL_JOB) {
			tr_error_set(err, TR_ERR_USAGE, "state = a PostgreSQL database is the "
				     "operator's to set (on the spool's command line or in its "
				     "--config file), not a spool job's");
			return where(origin, err);
		}
		return store(cfg, k, value, what, err) < 0 ? where(origin, err) : 0;
	}
	if (k->path != JOBCONF_NOT_PATH && origin->from == JOBCONF_SPOOL_JOB) {
		char why_buf[4200];
		const char *why;

		path = confine(origin->dir, origin->dir_real, value, k->path, why_buf,
			       sizeof(why_buf), &why);
		if (path == NULL) {
			tr_error_set(err, strcmp(why, "out of memory") == 0 ? TR_ERR_LOCAL :
				     TR_ERR_USAGE, "%s = \"%s\": %s", k->name, value, why);
			return where(origin, err);
		}
	} else if (k->path != JOBCONF_NOT_PATH && origin->from != JOBCONF_CALLER) {
		path = resolve(origin->dir, value);
		if (path == NULL)
			return oom(err);
	}
	/* Every setting must read back from jobconf_text's job-file lines (a
	 * queued job is stored that way): "key = value", quotes included, within
	 * a line.  A relative path made absolute can grow past it. */
	if (value != NULL && strlen(k->name) + strlen(path != NULL ? path : value) + 8 >
			     JOB_MAX_LINE) {
		tr_error_set(err, TR_ERR_USAGE, "%s: the value is too long (%zu bytes%s; a setting "
			     "holds at most %d)", what, strlen(path != NULL ? path : value),
			     path != NULL ? " as an absolute path" : "",
			     JOB_MAX_LINE - (int)strlen(k->name) - 8);
		free(path);
		return where(origin, err);
	}
	r = store(cfg, k, path != NULL ? path : value, what, err);
	free(path);
	return r < 0 ? where(origin, err) : 0;
}

int jobconf_apply(struct job_config *cfg, const struct job_file *jf,
		  const struct jobconf_origin *origin, struct tr_error *err)
{
	struct jobconf_origin o = { .from = JOBCONF_CALLER };
	size_t i;

	if (origin != NULL)
		o = *origin;
	o.file = jf->path;
	for (i = 0; i < jf->n; i++) {
		o.line = jf->v[i].line;
		if (jobconf_set(cfg, jf->v[i].key, jf->v[i].value, &o, err) < 0)
			return -1;
	}
	return 0;
}

int jobconf_load(struct job_config *cfg, const char *path, struct tr_error *err)
{
	struct jobconf_origin o = { .from = JOBCONF_JOB_FILE };
	struct job_file jf;
	char *dir;
	int r;

	if (job_file_load(path, &jf, err) < 0)
		return -1;
	dir = job_file_dir(path);
	if (dir == NULL) {
		job_file_free(&jf);
		return oom(err);
	}
	o.dir = dir;
	r = jobconf_apply(cfg, &jf, &o, err);
	free(dir);
	job_file_free(&jf);
	return r;
}

/* ---- defaults and checks ------------------------------------------------------ */

static int finish_server(struct jobconf_server *s, const char *which, bool allow_plaintext,
			 struct tr_error *err)
{
	if (s->host == NULL) {
		tr_error_set(err, TR_ERR_USAGE, "--%s HOST[:PORT] is required", which);
		return -1;
	}
	if (!s->tls_set)
		s->tls = (s->port == 0 || s->port == 993) ? JOBCONF_TLS_IMPLICIT :
							     JOBCONF_TLS_STARTTLS;
	if (s->port == 0)
		s->port = s->tls == JOBCONF_TLS_IMPLICIT ? 993 : 143;
	if (s->tls == JOBCONF_TLS_NONE && !net_is_loopback(s->host) && !allow_plaintext) {
		tr_error_set(err, TR_ERR_USAGE, "--%s-tls none would send passwords in clear to %s; "
			     "add --allow-plaintext if that network is really trusted", which,
			     s->host);
		return -1;
	}
	return 0;
}

static bool provision_set(const struct job_config *cfg)
{
	return cfg->provision_cmd != NULL || cfg->provision != NULL;
}

static int finish_provision(const struct job_config *cfg, struct tr_error *err)
{
	static const char pf[] = "dovecot-passwd-file:";

	if (cfg->provision_cmd != NULL && cfg->provision != NULL) {
		tr_error_set(err, TR_ERR_USAGE, "--provision-cmd and --provision: one or the other");
		return -1;
	}
	if (cfg->provision_cmd != NULL && cfg->provision_cmd[0] == '\0') {
		tr_error_set(err, TR_ERR_USAGE, "--provision-cmd is empty");
		return -1;
	}
	if (cfg->provision != NULL &&
	    (strncmp(cfg->provision, pf, sizeof(pf) - 1) != 0 ||
	     cfg->provision[sizeof(pf) - 1] != '/')) {
		tr_error_set(err, TR_ERR_USAGE, "--provision takes %s/ABSOLUTE/PATH (the one "
			     "built-in; --provision-cmd runs a command of yours)", pf);
		return -1;
	}
	if (cfg->provision_passwd_fields != NULL && cfg->provision == NULL) {
		tr_error_set(err, TR_ERR_USAGE, "--provision-passwd-fields needs --provision %sPATH",
			     pf);
		return -1;
	}
	if (cfg->provision_passwd_fields != NULL && cfg->provision_passwd_fields[0] != '\0' &&
	    cfg->provision_passwd_fields[0] != ':') {
		tr_error_set(err, TR_ERR_USAGE, "--provision-passwd-fields begins with ':' (the "
			     "fields after the password, e.g. :5000:5000::/var/vmail/%%d/%%n::)");
		return -1;
	}
	if (cfg->kind == JOB_PROVISION && !provision_set(cfg)) {
		tr_error_set(err, TR_ERR_USAGE, "provision needs --provision-cmd CMD or --provision "
			     "%sPATH", pf);
		return -1;
	}
	return 0;
}

/* OAuth2 needs one token source, and then no password (nor admin) on that
 * side; a built-in flow, what it needs. */
static int finish_auth(const struct job_config *cfg, bool src, struct tr_error *err)
{
	const char *side = src ? "src" : "dst";
	int auth = src ? cfg->src_auth : cfg->dst_auth;
	const char *cmd = src ? cfg->src_token_cmd : cfg->dst_token_cmd;
	const char *pwf = src ? cfg->src_password_file : cfg->dst_password_file;
	const struct jobconf_oauth *o = src ? &cfg->src_oauth : &cfg->dst_oauth;
	bool flow_keys = o->tenant != NULL || o->client_id != NULL || o->secret_file != NULL ||
			 o->cert_file != NULL || o->key_file != NULL || o->token_url != NULL;

	if (auth == JOBCONF_AUTH_PASSWORD) {
		if (cmd != NULL || o->provider != NULL) {
			tr_error_set(err, TR_ERR_USAGE, "--%s-%s needs --%s-auth xoauth2 or "
				     "oauthbearer", side, cmd != NULL ? "token-cmd" : "oauth-provider",
				     side);
			return -1;
		}
		if (flow_keys) {
			tr_error_set(err, TR_ERR_USAGE, "the --%s-oauth-* settings need "
				     "--%s-oauth-provider", side, side);
			return -1;
		}
		return 0;
	}
	if ((cmd == NULL) == (o->provider == NULL)) {
		tr_error_set(err, TR_ERR_USAGE, "--%s-auth %s needs either --%s-token-cmd CMD or "
			     "--%s-oauth-provider microsoft365|google", side, auth_names[auth], side,
			     side);
		return -1;
	}
	if (o->provider == NULL && flow_keys) {
		tr_error_set(err, TR_ERR_USAGE, "the --%s-oauth-* settings need "
			     "--%s-oauth-provider", side, side);
		return -1;
	}
	if (o->provider != NULL && strcmp(o->provider, "microsoft365") == 0) {
		if (o->client_id == NULL || (o->tenant == NULL && o->token_url == NULL)) {
			tr_error_set(err, TR_ERR_USAGE, "--%s-oauth-provider microsoft365 needs "
				     "--%s-oauth-tenant and --%s-oauth-client-id", side, side, side);
			return -1;
		}
		if ((o->secret_file != NULL) == (o->cert_file != NULL) ||
		    (o->cert_file != NULL) != (o->key_file != NULL)) {
			tr_error_set(err, TR_ERR_USAGE, "--%s-oauth-provider microsoft365 needs "
				     "--%s-oauth-secret-file, or --%s-oauth-cert-file with "
				     "--%s-oauth-key-file", side, side, side, side);
			return -1;
		}
	} else if (o->provider != NULL && strcmp(o->provider, "google") == 0) {
		if (o->secret_file == NULL || o->tenant != NULL || o->client_id != NULL ||
		    o->cert_file != NULL || o->key_file != NULL) {
			tr_error_set(err, TR_ERR_USAGE, "--%s-oauth-provider google takes the service "
				     "account's JSON key as --%s-oauth-secret-file (and nothing else "
				     "but --%s-oauth-token-url)", side, side, side);
			return -1;
		}
	} else if (o->provider != NULL) {
		tr_error_set(err, TR_ERR_USAGE, "--%s-oauth-provider wants microsoft365 or google",
			     side);
		return -1;
	}
	if (o->token_url != NULL && strncmp(o->token_url, "https://", 8) != 0) {
		tr_error_set(err, TR_ERR_USAGE, "--%s-oauth-token-url must be https://", side);
		return -1;
	}
	if (pwf != NULL) {
		tr_error_set(err, TR_ERR_USAGE, "--%s-auth %s takes no --%s-password-file", side,
			     auth_names[auth], side);
		return -1;
	}
	if ((src ? cfg->src_admin : cfg->dst_admin) != NULL) {
		tr_error_set(err, TR_ERR_USAGE, "--%s-auth %s logs in with each account's token: "
			     "no --%s-admin", side, auth_names[auth], side);
		return -1;
	}
	return 0;
}

int jobconf_finish(struct job_config *cfg, struct tr_error *err)
{
	if (cfg->content && cfg->kind != JOB_VERIFY) {
		tr_error_set(err, TR_ERR_USAGE, "--content is an option of verify");
		return -1;
	}
	if (cfg->show_folders && cfg->kind != JOB_CHECK) {
		tr_error_set(err, TR_ERR_USAGE, "--folders is an option of check (migrate "
			     "--dry-run shows one account's plan)");
		return -1;
	}
	if (cfg->dry_run && cfg->kind != JOB_MIGRATE) {
		tr_error_set(err, TR_ERR_USAGE, "--dry-run is an option of migrate (check --folders "
			     "shows the plan of every account)");
		return -1;
	}
	if ((cfg->since_day || cfg->before_day || cfg->trial || cfg->final) &&
	    cfg->kind != JOB_RUN && cfg->kind != JOB_MIGRATE) {
		tr_error_set(err, TR_ERR_USAGE, "--since, --before, --trial and --final are options "
			     "of run and migrate (a pass copies)");
		return -1;
	}
	if (cfg->since_day && cfg->before_day && cfg->since_day >= cfg->before_day) {
		tr_error_set(err, TR_ERR_USAGE, "--since must be a day before --before: no message "
			     "would be copied");
		return -1;
	}
	if (cfg->final && (cfg->since_day || cfg->before_day || cfg->trial || cfg->dry_run)) {
		tr_error_set(err, TR_ERR_USAGE, "--final copies everything that is left, then "
			     "verifies: it does not go with --since, --before, --trial or --dry-run");
		return -1;
	}
	if (cfg->kind != JOB_MIGRATE && cfg->accounts == NULL) {
		tr_error_set(err, TR_ERR_USAGE, "name an accounts CSV or a job file%s",
			     cfg->name != NULL ? " (or set accounts = in the job file)" : "");
		return -1;
	}
	/* provision alone needs a server only for what it names */
	if ((cfg->kind != JOB_PROVISION || cfg->src.host != NULL) &&
	    finish_server(&cfg->src, "src", cfg->allow_plaintext, err) < 0)
		return -1;
	if ((cfg->kind != JOB_PROVISION || cfg->dst.host != NULL) &&
	    finish_server(&cfg->dst, "dst", cfg->allow_plaintext, err) < 0)
		return -1;
	if (cfg->kind == JOB_MIGRATE) {
		if (cfg->user == NULL && (cfg->src_user == NULL || cfg->dst_user == NULL)) {
			tr_error_set(err, TR_ERR_USAGE, "--user EMAIL is required");
			return -1;
		}
		if (cfg->src_user == NULL && set_str(&cfg->src_user, cfg->user, err) < 0)
			return -1;
		if (cfg->dst_user == NULL && set_str(&cfg->dst_user, cfg->user, err) < 0)
			return -1;
		if (cfg->user == NULL && set_str(&cfg->user, cfg->src_user, err) < 0)
			return -1;
	} else if (cfg->user != NULL || cfg->src_user != NULL || cfg->dst_user != NULL ||
		   cfg->src_password_file != NULL || cfg->dst_password_file != NULL) {
		tr_error_set(err, TR_ERR_USAGE, "accounts and their passwords come from the CSV "
			     "(--user and password files are for `trasloco migrate`)");
		return -1;
	}
	if (finish_auth(cfg, true, err) < 0 || finish_auth(cfg, false, err) < 0)
		return -1;
	if (cfg->dst_admin_password_file != NULL && cfg->dst_admin == NULL) {
		tr_error_set(err, TR_ERR_USAGE, "--dst-admin-password-file needs --dst-admin");
		return -1;
	}
	if (cfg->src_admin_password_file != NULL && cfg->src_admin == NULL) {
		tr_error_set(err, TR_ERR_USAGE, "--src-admin-password-file needs --src-admin");
		return -1;
	}
	if (finish_provision(cfg, err) < 0)
		return -1;
	if (cfg->state_dir == NULL) {
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
		if (set_str(&cfg->state_dir, buf, err) < 0)
			return -1;
	}
	return 0;
}

/* ---- as text ---------------------------------------------------------------- */

static void put(FILE *f, const char *key, const char *value)
{
	size_t len = strlen(value);
	bool quote = len == 0 || value[0] == '"' || value[0] == ' ' || value[0] == '\t' ||
		     value[len - 1] == ' ' || value[len - 1] == '\t';

	fprintf(f, "%s = ", key);
	if (!quote) {
		fprintf(f, "%s\n", value);
		return;
	}
	fputc('"', f);
	for (; *value != '\0'; value++) {
		if (*value == '"')
			fputc('"', f);
		fputc(*value, f);
	}
	fputs("\"\n", f);
}

/* Returns -1 when out of memory. */
static int put_key(FILE *f, const struct jobconf_key *k, const struct job_config *cfg,
		   const struct job_config *def)
{
	const char *base = (const char *)cfg, *dbase = (const char *)def;
	char buf[64];
	size_t i;

	switch (k->type) {
	case T_SERVER: {
		const struct jobconf_server *s = (const void *)(base + k->off);
		char *hp;
		size_t len;

		if (s->host == NULL)
			return 0;
		len = strlen(s->host) + 16;
		hp = malloc(len);
		if (hp == NULL)
			return -1;
		snprintf(hp, len, strchr(s->host, ':') != NULL ? "[%s]" : "%s", s->host);
		if (s->port != 0)
			snprintf(hp + strlen(hp), len - strlen(hp), ":%d", s->port);
		put(f, k->name, hp);
		free(hp);
		return 0;
	}
	case T_TLS: {
		const struct jobconf_server *s = (const void *)(base + k->off);

		if (s->tls_set)
			put(f, k->name, tls_names[s->tls]);
		return 0;
	}
	case T_TEXT:
		if (*(char *const *)(base + k->off) != NULL)
			put(f, k->name, *(char *const *)(base + k->off));
		return 0;
	case T_FLAG:
		if (*(const bool *)(base + k->off) == (k->lo != 0) &&
		    *(const bool *)(base + k->off) != *(const bool *)(dbase + k->off))
			put(f, k->name, "yes");
		return 0;
	case T_LEVEL:
		if (*(const int *)(base + k->off) == k->lo)
			put(f, k->name, "yes");
		return 0;
	case T_INT:
		if (*(const int *)(base + k->off) == *(const int *)(dbase + k->off))
			return 0;
		snprintf(buf, sizeof(buf), "%d", *(const int *)(base + k->off));
		break;
	case T_COUNT:
		if (*(const uint32_t *)(base + k->off) == *(const uint32_t *)(dbase + k->off))
			return 0;
		snprintf(buf, sizeof(buf), "%u", (unsigned)*(const uint32_t *)(base + k->off));
		break;
	case T_MB:
		if (*(const uint64_t *)(base + k->off) == *(const uint64_t *)(dbase + k->off))
			return 0;
		snprintf(buf, sizeof(buf), "%llu",
			 (unsigned long long)(*(const uint64_t *)(base + k->off) >> 20));
		break;
	case T_BYTES: {
		/* as it is most likely written: "2M", not "2000000" */
		unsigned long long v = *(const uint64_t *)(base + k->off);
		const char *unit = "";

		if (v == *(const uint64_t *)(dbase + k->off))
			return 0;
		if (v % 1000000000ULL == 0) {
			v /= 1000000000ULL;
			unit = "G";
		} else if (v % 1000000ULL == 0) {
			v /= 1000000ULL;
			unit = "M";
		} else if (v % 1000ULL == 0) {
			v /= 1000ULL;
			unit = "k";
		}
		snprintf(buf, sizeof(buf), "%llu%s", v, unit);
		break;
	}
	case T_CHAR:
		if (*(base + k->off) == '\0')
			return 0;
		buf[0] = *(base + k->off);
		buf[1] = '\0';
		break;
	case T_DATE: {
		uint32_t v = *(const uint32_t *)(base + k->off);

		if (v == 0)
			return 0;
		snprintf(buf, sizeof(buf), "%04u-%02u-%02u", v / 10000, v / 100 % 100, v % 100);
		break;
	}
	case T_LIST: {
		char *const *v = *(char **const *)(base + k->off);
		size_t n = *(const size_t *)(base + k->off2);

		for (i = 0; i < n; i++)
			put(f, k->name, v[i]);
		return 0;
	}
	case T_MAP:
		for (i = 0; i < cfg->n_maps; i++) {
			size_t len = strlen(cfg->maps[i].from) + strlen(cfg->maps[i].to) + 2;
			char *m = malloc(len);

			if (m == NULL)
				return -1;
			snprintf(m, len, "%s=%s", cfg->maps[i].from, cfg->maps[i].to);
			put(f, k->name, m);
			free(m);
		}
		return 0;
	case T_PRESET:
		/* first of all (jobconf_text), so that what follows still wins */
		return 0;
	case T_AUTH:
		if (*(const int *)(base + k->off) != *(const int *)(dbase + k->off))
			put(f, k->name, auth_names[*(const int *)(base + k->off)]);
		return 0;
	default:
		return 0;
	}
	put(f, k->name, buf);
	return 0;
}

bool jobconf_csv_needs_passwords(const struct job_config *cfg)
{
	return (cfg->src_auth == JOBCONF_AUTH_PASSWORD && cfg->src_admin == NULL) ||
	       (cfg->dst_auth == JOBCONF_AUTH_PASSWORD && cfg->dst_admin == NULL);
}

char *jobconf_text(const struct job_config *cfg)
{
	struct job_config def;
	char *text = NULL;
	size_t len = 0, i;
	bool bad = false;
	FILE *f = open_memstream(&text, &len);

	if (f == NULL)
		return NULL;
	jobconf_init(&def, cfg->kind);
	/* the preset first, then only what differs from what it sets */
	if (cfg->src_preset != NULL) {
		struct tr_error ignored;

		put(f, "src-preset", cfg->src_preset);
		apply_preset(&def, cfg->src_preset, "src-preset", &ignored);
	}
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (put_key(f, &keys[i], cfg, &def) < 0)
			bad = true;
	jobconf_free(&def);
	if (fclose(f) != 0 || bad) {
		free(text);
		return NULL;
	}
	return text;
}
