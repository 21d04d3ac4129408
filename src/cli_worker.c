/* cli_worker: `trasloco worker`, the command of a queue worker (worker.h). */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "log.h"
#include "net.h"
#include "seal.h"
#include "secret.h"
#include "worker.h"

const char cli_worker_usage[] =
	"usage: trasloco worker [QUEUE] [options]\n"
	"\n"
	"Take accounts of the jobs in a queue (trasloco queue submit) and migrate them,\n"
	"several at once, until stopped (SIGTERM: the running accounts go back to the\n"
	"queue).  A PostgreSQL queue: one worker per host, as many hosts as wanted; the\n"
	"jobs' session caps hold across all of them.  A queue directory (SQLite): the\n"
	"workers of one host, the state kept in the same directory; each worker holds\n"
	"the caps alone (one worker per directory keeps them).  An account whose worker\n"
	"died is taken over by another once its lease expires.\n"
	"\n"
	"  QUEUE                       postgresql://USER@HOST[:PORT]/DB, no password in it\n"
	"                              (libpq's PGPASSFILE, PGPASSWORD or a service file),\n"
	"                              or sqlite:DIR or DIR; else --queue-file F (its first\n"
	"                              line), else $TRASLOCO_QUEUE\n"
	"  --queue-file F              read the DSN from F (private file)\n"
	"  --key-file F                the queue's key (default: $TRASLOCO_QUEUE_KEY_FILE,\n"
	"                              else /etc/trasloco/queue.key as root, else\n"
	"                              $XDG_CONFIG_HOME/trasloco/queue.key)\n"
	"  --parallel-accounts N       accounts at once (default 4)\n"
	"  --egress NAME               this host's egress identity (default\n"
	"                              $TRASLOCO_EGRESS): jobs submitted with\n"
	"                              caps-per-egress count per-account caps per egress\n"
	"  --lease SECONDS             leases of accounts, sessions and state locks\n"
	"                              (default 30; takeover after a crash takes this long)\n"
	"  --drain                     stop once no account is pending or running\n"
	"  --log-dir DIR               a log per account\n"
	"  -q, --quiet | -v, --verbose | --debug | --no-progress\n"
	"\n"
	"Exit status: 0 drained, 2 usage, 5 stopped by SIGTERM/SIGINT, 6 could not start.\n";

int cli_worker_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "queue-file", required_argument, NULL, 'Q' },
		{ "key-file", required_argument, NULL, 'K' },
		{ "parallel-accounts", required_argument, NULL, 'P' },
		{ "egress", required_argument, NULL, 'E' },
		{ "lease", required_argument, NULL, 'L' },
		{ "drain", no_argument, NULL, 'D' },
		{ "log-dir", required_argument, NULL, 'O' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "debug", no_argument, NULL, 'd' },
		{ "no-progress", no_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *queue_file = NULL, *key_file = NULL, *egress = getenv("TRASLOCO_EGRESS");
	struct worker_opts wo;
	struct worker_stats st;
	struct seal_keys *keys = NULL;
	struct tr_error err;
	char *dsn = NULL, *key_path = NULL, *end;
	int c, code = EXIT_FAILED;
	long v;

	memset(&wo, 0, sizeof(wo));
	wo.parallel = 4;
	wo.lease_s = 30;
	log_set_level(LOG_INFO);
	tr_error_clear(&err);
	optind = 1;
	while ((c = getopt_long(argc, argv, "qvh", opts, NULL)) != -1) {
		switch (c) {
		case 'Q': queue_file = optarg; break;
		case 'K': key_file = optarg; break;
		case 'E': egress = optarg; break;
		case 'D': wo.drain = true; break;
		case 'O': wo.log_dir = optarg; break;
		case 'q': log_set_level(LOG_WARN); break;
		case 'v': log_set_level(LOG_INFO); break;
		case 'd': log_set_level(LOG_DEBUG); break;
		case 'n': break;
		case 'h': fputs(cli_worker_usage, stdout); return EXIT_OK;
		case 'P':
		case 'L':
			v = strtol(optarg, &end, 10);
			if (*optarg == '\0' || *end != '\0' || v < (c == 'P' ? 1 : 5) ||
			    v > (c == 'P' ? 1000 : 3600)) {
				fprintf(stderr, "trasloco worker: --%s wants %s, not \"%s\"\n",
					c == 'P' ? "parallel-accounts" : "lease",
					c == 'P' ? "1 to 1000" : "5 to 3600 seconds", optarg);
				return EXIT_USAGE;
			}
			if (c == 'P')
				wo.parallel = (int)v;
			else
				wo.lease_s = (int)v;
			break;
		default:
			fputs("(see trasloco worker --help)\n", stderr);
			return EXIT_USAGE;
		}
	}
	if (argc - optind > 1) {
		fprintf(stderr, "trasloco worker: one queue at most\n(see trasloco worker --help)\n");
		return EXIT_USAGE;
	}
	if (cli_queue_dsn(optind < argc ? argv[optind] : NULL, queue_file, &dsn, &err) < 0 ||
	    (key_path = cli_queue_key_file(key_file, &err)) == NULL ||
	    seal_keys_load(key_path, &keys, &err) < 0) {
		fprintf(stderr, "trasloco worker: %s\n", err.msg);
		code = err.kind == TR_ERR_USAGE ? EXIT_USAGE : EXIT_FAILED;
		goto out;
	}
	wo.dsn = dsn;
	wo.keys = keys;
	wo.egress = egress;
	if (worker_run(&wo, &st, &err) < 0) {
		log_error(NULL, "worker: %s", err.msg);
		code = err.kind == TR_ERR_USAGE ? EXIT_USAGE : EXIT_FAILED;
		goto out;
	}
	log_info(NULL, "worker: %u account(s) run, %u given back, %u stopped (lease lost), %u "
		 "taken over", st.accounts, st.released, st.lost, st.takeovers);
	code = net_cancelled() ? EXIT_STOPPED : EXIT_OK;
out:
	seal_keys_free(keys);
	free(key_path);
	secret_free(dsn);
	return code;
}
