/* cli: the command line.  Subcommands, options, passwords, exit codes.
 *
 * The only module that may end the process; library code returns errors.
 */
#ifndef TRASLOCO_CLI_H
#define TRASLOCO_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "folder.h"
#include "store.h"

/* Exit codes (documented in the README). */
enum {
	EXIT_OK = 0,          /* everything copied */
	EXIT_PARTIAL = 1,     /* some messages or folders (or accounts) failed */
	EXIT_USAGE = 2,       /* bad command line or job file */
	EXIT_AUTH = 3,        /* a login was refused */
	EXIT_CONNECT = 4,     /* a server could not be reached or verified (TLS) */
	EXIT_STOPPED = 5,     /* interrupted by SIGINT/SIGTERM; state saved, run again */
	EXIT_FAILED = 6,      /* anything else: local error, server refusing a command */
};

/* One server as given on the command line. */
struct cli_server {
	char *host;           /* owned */
	int port;             /* 0 until resolved with the TLS mode */
	enum tls_mode tls;
	bool tls_set;         /* --*-tls given */
	char *tls_name;       /* owned, NULL = host */
};

enum cli_cmd { CMD_MIGRATE = 0, CMD_RUN, CMD_CHECK, CMD_VERIFY };

struct cli_opts {
	enum cli_cmd cmd;
	struct cli_server src, dst;
	char *ca_file;
	bool insecure;
	bool allow_plaintext;
	char *user, *src_user, *dst_user;
	char *src_password_file, *dst_password_file;
	char *dst_admin, *dst_admin_password_file;
	char dst_admin_separator;
	char *state_dir;
	char **folders, **excludes;          /* owned arrays of owned strings */
	size_t n_folders, n_excludes;
	struct folder_map_rule *maps;        /* owned, from/to owned */
	size_t n_maps;
	bool keep_names;
	bool content;             /* verify: compare whole contents */
	bool no_subscriptions;
	int src_max_per_account, dst_max_per_account;
	int src_max_connections, dst_max_connections;
	int timeout_s;
	int retries;
	uint64_t batch_bytes;
	uint32_t batch_count;
	char *spool_dir;
	int parallel_accounts;
	char *accounts;                      /* run/check: the CSV, owned */
	char *job;                           /* run/check: the job file, owned */
	char *report, *report_csv, *log_dir; /* owned */
	char **args;                         /* positional arguments, owned */
	size_t n_args;
	int verbosity;                       /* -1 quiet, 0 normal, 1 verbose, 2 debug */
	bool progress;                       /* --no-progress clears it */
};

/* "host", "host:port", "[v6]:port" into a server (port 0 if absent). */
int cli_parse_server(const char *arg, struct cli_server *s, struct tr_error *err);
/* Fill defaults that depend on other options (ports from TLS modes and
 * back, logins, state directory) and check the combination. */
int cli_finish_opts(struct cli_opts *o, struct tr_error *err);
/* Parse the options of a command (argv[0] is the command's name).  For
 * run and check, a job file (*.job) among the arguments is read first and
 * the command line's options override its settings.  Returns 0, 1 for
 * --help, -1 on error (o must be freed in every case). */
int cli_parse(enum cli_cmd cmd, int argc, char **argv, struct cli_opts *o, struct tr_error *err);
int cli_parse_migrate(int argc, char **argv, struct cli_opts *o, struct tr_error *err);
/* A job run by `trasloco spool` (README, "Spool"): the job file was opened
 * and checked by jobdir and is read from there, never again by path; its
 * relative paths start at the spool directory, every path it names must
 * stay in that directory (an absolute path inside it, no "..", no symbolic
 * link on the way, no FIFO or device at the end; not in the spool's own
 * pending/ running/ done/ failed/), and it may not set insecure,
 * allow-plaintext, ca-file, dst-admin or dst-admin-password-file. */
struct job_file;
struct cli_spool_job {
	const char *dir;            /* the spool directory, as given */
	const char *dir_real;       /* its realpath(), for absolute paths in jobs */
	const struct job_file *jf;  /* the job's settings */
};
/* cli_parse reads the job file through sj from now on; NULL: by path again. */
void cli_set_spool_job(const struct cli_spool_job *sj);
/* The spool's --config file (job-file syntax, any setting but accounts;
 * relative paths start at its directory, no confinement): it must be a
 * regular file (not a link) owned by root and writable by no one else.
 * *args gets its settings as options ("--key", "value", ...) to come after
 * a job's, so that they win; free them with cli_spool_config_free. */
int cli_spool_config(const char *path, char ***args, int *n, struct tr_error *err);
void cli_spool_config_free(char **args, int n);
/* Check the options the spool gives every job (argv[0] is a name): valid
 * options, no positional argument, and --dst-admin only with --dst. */
int cli_spool_check(int argc, char **argv, struct tr_error *err);
void cli_opts_free(struct cli_opts *o);

/* The usage text. */
extern const char cli_usage_text[];

/* The program: returns the exit code.  First of all it makes the process
 * non-dumpable with no core files (RLIMIT_CORE 0): passwords in memory
 * must not end up in a core dump. */
int cli_main(int argc, char **argv);

#endif
