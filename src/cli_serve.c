/* cli_serve: `trasloco serve`, the HTTP API, status page and metrics
 * (api.h, http.h), with workers of its own when asked (worker.h). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "cli.h"
#include "privdir.h"
#include "queue.h"
#include "http.h"
#include "log.h"
#include "net.h"
#include "seal.h"
#include "secret.h"
#include "worker.h"

const char cli_serve_usage[] =
	"usage: trasloco serve --state DIR --token-file F [options]\n"
	"       trasloco serve --queue QUEUE --token-file F [options]\n"
	"\n"
	"Serve the HTTP API an onboarding panel talks to (submit a job, watch every\n"
	"account, passes, retry, cancel, delete), a live status page at /, and\n"
	"Prometheus metrics at /metrics.\n"
	"\n"
	"  --state DIR                 run the jobs on this host: the queue and the state\n"
	"                              in DIR (SQLite; made, with its key DIR/queue.key,\n"
	"                              when missing), 4 accounts at once unless --workers\n"
	"  --queue QUEUE               the jobs of a queue (trasloco queue): PostgreSQL,\n"
	"                              postgresql://USER@HOST[:PORT]/DB with no password in\n"
	"                              it, shared with workers on any host; or a directory\n"
	"                              (else --queue-file F, else $TRASLOCO_QUEUE)\n"
	"  --queue-file F              read the queue's location from F (private file)\n"
	"  --key-file F                the queue's key (as trasloco queue; with --state:\n"
	"                              DIR/queue.key by default)\n"
	"  --token-file F              the API's bearer token: the file's first line, at\n"
	"                              least 16 characters (private file)\n"
	"  --listen HOST:PORT          default 127.0.0.1:8025; an address that is not\n"
	"                              loopback needs TLS\n"
	"  --tls-cert F --tls-key F    serve HTTPS (PEM files)\n"
	"  --metrics-open              /metrics without the token\n"
	"  --max-body BYTES            the largest request body (default 64 MiB)\n"
	"  --access-log F              a line of JSON per request (method, path, status,\n"
	"                              whether a token came and was accepted)\n"
	"  --workers N                 run up to N accounts in this process (default 0;\n"
	"                              with --state 4)\n"
	"  --egress NAME --lease S --log-dir DIR\n"
	"                              for those workers, as trasloco worker\n"
	"  -q, --quiet | -v, --verbose | --debug\n"
	"\n"
	"Exit status: 0 stopped by SIGTERM/SIGINT, 2 usage, 6 could not start.\n";

struct serve_worker {
	struct worker_opts o;
	struct worker_stats st;
	struct tr_error err;
	int r;
};

/* The service's own workers.  A database away when they start (or lost
 * for good) must not leave the service answering with nobody working: they
 * start again with back-off until the service stops, unless what failed is
 * a setting (usage) that no retry mends. */
static void *worker_main(void *arg)
{
	struct serve_worker *w = arg;
	unsigned delay = 1;

	while (!net_cancelled()) {
		tr_error_clear(&w->err);
		w->r = worker_run(&w->o, &w->st, &w->err);
		if (w->r == 0 || net_cancelled())
			break;
		if (w->err.kind == TR_ERR_USAGE) {
			log_error(NULL, "serve: the workers cannot run: %s", w->err.msg);
			break;
		}
		log_warn(NULL, "serve: the workers stopped (%s); starting them again in %u s",
			 w->err.msg, delay);
		for (unsigned i = 0; i < delay * 5 && !net_cancelled(); i++)
			usleep(200 * 1000);
		delay = delay < 30 ? delay * 2 : 30;
	}
	return NULL;
}

/* Loopback names and addresses: serving plain HTTP there is fine. */
static bool listen_local(const char *listen)
{
	return strncmp(listen, "127.", 4) == 0 || strncmp(listen, "[::1]:", 6) == 0 ||
	       strncmp(listen, "localhost:", 10) == 0;
}

static int num_arg(const char *opt, const char *v, long lo, long hi, long *out)
{
	char *end;

	*out = strtol(v, &end, 10);
	if (*v == '\0' || *end != '\0' || *out < lo || *out > hi) {
		fprintf(stderr, "trasloco serve: --%s wants %ld to %ld, not \"%s\"\n", opt, lo, hi,
			v);
		return -1;
	}
	return 0;
}

/* --state DIR: the queue (and the workers' state) in DIR, made on the first
 * start, with its key (DIR/queue.key unless another is named) made too:
 * one host needs nothing prepared but the token. */
static int local_queue(const char *dir, const char *key_opt, char **loc_r, char **key_r,
		       struct tr_error *err)
{
	struct queue *q = NULL;
	struct stat st;
	int fd, from, version;

	*loc_r = NULL;
	*key_r = NULL;
	if ((fd = privdir_open(dir, "state directory", err)) < 0)
		return -1;
	close(fd);
	if (queue_init(dir, &from, &version, &q, err) < 0)
		return -1;
	if (from == 0)
		log_info(NULL, "serve: a new queue in %s", queue_where(q));
	else if (from < version)
		log_info(NULL, "serve: the queue in %s upgraded from version %d to %d",
			 queue_where(q), from, version);
	queue_close(q);
	if (key_opt != NULL || getenv("TRASLOCO_QUEUE_KEY_FILE") != NULL)
		*key_r = cli_queue_key_file(key_opt, err);
	else if (asprintf(key_r, "%s/queue.key", dir) < 0)
		*key_r = NULL;
	if (*key_r == NULL || (*loc_r = strdup(dir)) == NULL) {
		if (err->kind == TR_ERR_NONE)
			tr_error_set(err, TR_ERR_LOCAL, "out of memory");
		return -1;
	}
	if (lstat(*key_r, &st) < 0 && errno == ENOENT) {
		if (seal_key_create(*key_r, err) < 0)
			return -1;
		log_info(NULL, "serve: key file %s created (mode 0600): the passwords of the "
			 "queued jobs are sealed with it; keep a copy safe", *key_r);
	}
	return 0;
}

int cli_serve_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "queue", required_argument, NULL, 'U' },
		{ "state", required_argument, NULL, 'S' },
		{ "queue-file", required_argument, NULL, 'Q' },
		{ "key-file", required_argument, NULL, 'K' },
		{ "token-file", required_argument, NULL, 'T' },
		{ "listen", required_argument, NULL, 'l' },
		{ "tls-cert", required_argument, NULL, 'C' },
		{ "tls-key", required_argument, NULL, 'k' },
		{ "metrics-open", no_argument, NULL, 'M' },
		{ "max-body", required_argument, NULL, 'B' },
		{ "access-log", required_argument, NULL, 'A' },
		{ "workers", required_argument, NULL, 'W' },
		{ "egress", required_argument, NULL, 'E' },
		{ "lease", required_argument, NULL, 'L' },
		{ "log-dir", required_argument, NULL, 'O' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "debug", no_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *queue = NULL, *queue_file = NULL, *key_file = NULL, *token_file = NULL;
	const char *state = NULL;
	bool workers_given = false;
	struct api_conf ac;
	struct http_conf hc;
	struct serve_worker w;
	struct seal_keys *keys = NULL;
	struct api *api = NULL;
	struct http *http = NULL;
	struct tr_error err;
	char *dsn = NULL, *key_path = NULL, *token = NULL;
	pthread_t wt;
	bool worker_started = false;
	int c, code = EXIT_FAILED;
	long v;

	memset(&ac, 0, sizeof(ac));
	memset(&hc, 0, sizeof(hc));
	memset(&w, 0, sizeof(w));
	hc.listen = "127.0.0.1:8025";
	w.o.lease_s = 30;
	w.o.egress = getenv("TRASLOCO_EGRESS");
	log_set_level(LOG_INFO);
	tr_error_clear(&err);
	optind = 1;
	while ((c = getopt_long(argc, argv, "qvh", opts, NULL)) != -1) {
		switch (c) {
		case 'U': queue = optarg; break;
		case 'S': state = optarg; break;
		case 'Q': queue_file = optarg; break;
		case 'K': key_file = optarg; break;
		case 'T': token_file = optarg; break;
		case 'l': hc.listen = optarg; break;
		case 'C': hc.tls_cert = optarg; break;
		case 'k': hc.tls_key = optarg; break;
		case 'M': ac.metrics_open = true; break;
		case 'A': hc.access_log = optarg; break;
		case 'E': w.o.egress = optarg; break;
		case 'O': w.o.log_dir = optarg; break;
		case 'q': log_set_level(LOG_WARN); break;
		case 'v': log_set_level(LOG_INFO); break;
		case 'd': log_set_level(LOG_DEBUG); break;
		case 'h': fputs(cli_serve_usage, stdout); return EXIT_OK;
		case 'B':
			if (num_arg("max-body", optarg, 1024, 1L << 30, &v) < 0)
				return EXIT_USAGE;
			ac.max_body = (size_t)v;
			break;
		case 'W':
			if (num_arg("workers", optarg, 0, 1000, &v) < 0)
				return EXIT_USAGE;
			w.o.parallel = (int)v;
			workers_given = true;
			break;
		case 'L':
			if (num_arg("lease", optarg, 5, 3600, &v) < 0)
				return EXIT_USAGE;
			w.o.lease_s = (int)v;
			break;
		default:
			fputs("(see trasloco serve --help)\n", stderr);
			return EXIT_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "trasloco serve: unexpected argument \"%s\"\n(see trasloco serve "
			"--help)\n", argv[optind]);
		return EXIT_USAGE;
	}
	if (token_file == NULL) {
		fprintf(stderr, "trasloco serve: --token-file F is wanted (make one: umask 077; "
			"openssl rand -hex 32 > F)\n");
		return EXIT_USAGE;
	}
	if (hc.tls_cert == NULL && !listen_local(hc.listen)) {
		fprintf(stderr, "trasloco serve: --listen %s is not a loopback address: the token "
			"and the customers' passwords would cross the network in clear; give "
			"--tls-cert and --tls-key (or listen on 127.0.0.1 behind a TLS proxy)\n",
			hc.listen);
		return EXIT_USAGE;
	}
	if (state != NULL && (queue != NULL || queue_file != NULL)) {
		fprintf(stderr, "trasloco serve: --state DIR or --queue QUEUE, not both\n");
		return EXIT_USAGE;
	}
	if (state != NULL) {
		if (!workers_given)
			w.o.parallel = 4;
		if (local_queue(state, key_file, &dsn, &key_path, &err) < 0) {
			fprintf(stderr, "trasloco serve: %s\n", err.msg);
			code = err.kind == TR_ERR_USAGE ? EXIT_USAGE : EXIT_FAILED;
			goto out;
		}
	} else if (cli_queue_dsn(queue, queue_file, &dsn, &err) < 0 ||
		   (key_path = cli_queue_key_file(key_file, &err)) == NULL) {
		fprintf(stderr, "trasloco serve: %s\n", err.msg);
		code = err.kind == TR_ERR_USAGE ? EXIT_USAGE : EXIT_FAILED;
		goto out;
	}
	if (seal_keys_load(key_path, &keys, &err) < 0 ||
	    secret_from_file(token_file, &token, &err) < 0) {
		fprintf(stderr, "trasloco serve: %s\n", err.msg);
		code = err.kind == TR_ERR_USAGE ? EXIT_USAGE : EXIT_FAILED;
		goto out;
	}
	ac.dsn = dsn;
	ac.keys = keys;
	ac.token = token;
	if (api_open(&ac, &api, &err) < 0) {
		fprintf(stderr, "trasloco serve: %s: %s\n", token_file, err.msg);
		code = EXIT_USAGE;
		goto out;
	}
	secret_free(token);
	token = NULL;
	hc.api = api;
	if (http_start(&hc, &http, &err) < 0) {
		fprintf(stderr, "trasloco serve: %s\n", err.msg);
		code = err.kind == TR_ERR_USAGE ? EXIT_USAGE : EXIT_FAILED;
		goto out;
	}
	log_info(NULL, "serve: listening on %s (%s), jobs in %s%s", hc.listen,
		 hc.tls_cert != NULL ? "https" : "http", state != NULL ? state : "the queue",
		 w.o.parallel > 0 ? ", with workers in this process" : "");
	if (w.o.parallel > 0) {
		w.o.dsn = dsn;
		w.o.keys = keys;
		if (net_thread_start(&wt, worker_main, &w) != 0) {
			log_error(NULL, "serve: cannot start the workers");
			goto out;
		}
		worker_started = true;
	}
	for (int tick = 0; !net_cancelled(); tick++) {
		usleep(200 * 1000);
		if (tick % 25 == 24) {
			int n = 0;

			if (api_tick(api, &n, &err) < 0)
				log_warn(NULL, "serve: scheduled passes: %s", err.msg);
			else if (n > 0)
				log_info(NULL, "serve: %d scheduled pass(es) started", n);
		}
	}
	log_info(NULL, "serve: stopping");
	code = EXIT_OK;
out:
	http_stop(http);
	if (worker_started)
		pthread_join(wt, NULL);
	api_close(api);
	seal_keys_free(keys);
	free(key_path);
	secret_free(token);
	secret_free(dsn);
	return code;
}
