/* cli: the command line.  Subcommands, options, passwords, exit codes.
 *
 * Options are the keys of jobconf's table: the command line, a job file
 * and a spool build the same struct job_config, and the commands run it.
 * The only module that may end the process; library code returns errors.
 */
#ifndef TRASLOCO_CLI_H
#define TRASLOCO_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "error.h"
#include "job.h"
#include "jobconf.h"

/* Exit codes (documented in the README). */
enum {
	EXIT_OK = 0,          /* everything copied */
	EXIT_PARTIAL = 1,     /* some messages or folders (or accounts) failed */
	EXIT_USAGE = 2,       /* bad command line or job file */
	EXIT_AUTH = 3,        /* a login was refused */
	EXIT_CONNECT = 4,     /* a server could not be reached or verified (TLS) */
	EXIT_STOPPED = 5,     /* interrupted by SIGINT/SIGTERM; state saved, run again */
	EXIT_FAILED = 6,      /* anything else: local error, server refusing a command */
	EXIT_PAUSED = 7,      /* a day budget is spent: accounts paused, run again later */
};

/* A command line's options as settings, in order (settings.path NULL,
 * lines 0, value NULL for a flag), and its other arguments.  Passwords
 * given as options (--password...) are refused and wiped, never kept. */
struct cli_args {
	struct job_file settings;
	char **args;                         /* owned */
	size_t n_args;
};
/* getopt over argv (argv[0] is the command's name) with the long options
 * of the key table (jobconf.h) and -q, -v.  Returns 0, 1 for --help, -1
 * on error (a free with cli_args_free is due in every case). */
int cli_read_args(int argc, char **argv, struct cli_args *a, struct tr_error *err);
void cli_args_free(struct cli_args *a);

/* A command's job (argv[0] is the command's name): for run, check and
 * verify a job file (*.job) among the arguments is read first and the
 * command line's options set after it, so that they win; the other
 * argument is the accounts CSV.  Finished (jobconf_finish).  Returns 0, 1
 * for --help, -1 on error (cfg must be freed with jobconf_free in every
 * case). */
int cli_parse(enum job_kind kind, int argc, char **argv, struct job_config *cfg,
	      struct tr_error *err);
int cli_parse_migrate(int argc, char **argv, struct job_config *cfg, struct tr_error *err);

/* The usage text. */
extern const char cli_usage_text[];
/* A command's own help (migrate, run, check, verify, spool: `trasloco CMD
 * --help`, `trasloco help CMD`): its synopsis and the options it takes,
 * grouped as in the README.  -1 for another name (cli_help.c). */
int cli_command_help(FILE *f, const char *cmd);

/* `trasloco queue SUBCOMMAND ...` (argv[0] is "queue"): the exit code. */
int cli_queue(int argc, char **argv);
/* `trasloco worker [DSN] [options]` (argv[0] is "worker"): the exit code. */
int cli_worker_main(int argc, char **argv);
extern const char cli_worker_usage[];
/* `trasloco serve [options]` (argv[0] is "serve"): the exit code. */
int cli_serve_main(int argc, char **argv);
extern const char cli_serve_usage[];
extern const char cli_queue_usage_text[];
/* The queue's connection string, for every command that opens the queue:
 * arg (a DSN given on the command line, postgresql://...; NULL if none),
 * else the first line of queue_file (refused when group or others may
 * read it), else $TRASLOCO_QUEUE (removed from the environment once read).
 * A DSN with a password in it on the command line is refused
 * (TR_ERR_USAGE): others see argv in ps.  *dsn_r is the caller's, to free
 * with secret_free (from a file or the environment it may hold a
 * password). */
int cli_queue_dsn(const char *arg, const char *queue_file, char **dsn_r, struct tr_error *err);
/* The key file's path (malloc'd): opt, else $TRASLOCO_QUEUE_KEY_FILE, else
 * /etc/trasloco/queue.key for root, else $XDG_CONFIG_HOME/trasloco/queue.key
 * (~/.config/...).  NULL with err when there is none (or out of memory). */
char *cli_queue_key_file(const char *opt, struct tr_error *err);

/* `trasloco --version`: the version, the git commit it was built from
 * (cli_build_commit, generated at build time by gitcommit.sh: "unknown"
 * without git) and the versions of the libraries it runs with, one per
 * line.  -1 on a write error (cli_version.c). */
int cli_version(FILE *f);
extern const char cli_build_commit[];

/* The program: returns the exit code.  First of all it makes the process
 * non-dumpable with no core files (RLIMIT_CORE 0): passwords in memory
 * must not end up in a core dump. */
int cli_main(int argc, char **argv);

#endif
