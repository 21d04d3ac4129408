/* cli: the command line's options (see include/cli.h).  They are the keys
 * of jobconf's table; the commands are in cli.c. */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* getopt's values: keys are OPT_KEY + their index in the table. */
enum { OPT_PASSWORD_ON_CLI = 200, OPT_KEY = 256 };

/* The long options: every key of the table that is an option, and the
 * password options, refused on purpose (see cli_read_args). */
static struct option *long_options(void)
{
	static const char *const refused[] = { "password", "src-password", "dst-password" };
	const struct jobconf_key *keys;
	struct option *v;
	size_t n, i, k = 0, j;

	keys = jobconf_keys(&n);
	v = calloc(n + sizeof(refused) / sizeof(refused[0]) + 2, sizeof(*v));
	if (v == NULL)
		return NULL;
	for (i = 0; i < n; i++) {
		if (!keys[i].option)
			continue;
		v[k].name = keys[i].name;
		v[k].has_arg = keys[i].takes_value ? required_argument : no_argument;
		v[k].val = OPT_KEY + (int)i;
		k++;
	}
	for (j = 0; j < sizeof(refused) / sizeof(refused[0]); j++, k++) {
		v[k].name = refused[j];
		v[k].has_arg = required_argument;
		v[k].val = OPT_PASSWORD_ON_CLI;
	}
	v[k].name = "help";
	v[k].val = 'h';
	return v;
}

static int add(struct job_file *s, const char *key, const char *value, struct tr_error *err)
{
	struct job_setting *nv = realloc(s->v, (s->n + 1) * sizeof(*nv));

	if (nv == NULL)
		goto oom;
	s->v = nv;
	nv[s->n].line = 0;
	nv[s->n].key = strdup(key);
	nv[s->n].value = value != NULL ? strdup(value) : NULL;
	if (nv[s->n].key == NULL || (value != NULL && nv[s->n].value == NULL)) {
		free(nv[s->n].key);
		free(nv[s->n].value);
		goto oom;
	}
	s->n++;
	return 0;
oom:
	tr_error_set(err, TR_ERR_LOCAL, "out of memory");
	return -1;
}

static int add_arg(struct cli_args *a, const char *arg, struct tr_error *err)
{
	char **nv = realloc(a->args, (a->n_args + 1) * sizeof(*nv));

	if (nv == NULL || (nv[a->n_args] = strdup(arg)) == NULL) {
		if (nv != NULL)
			a->args = nv;
		tr_error_set(err, TR_ERR_LOCAL, "out of memory");
		return -1;
	}
	a->args = nv;
	a->n_args++;
	return 0;
}

int cli_read_args(int argc, char **argv, struct cli_args *a, struct tr_error *err)
{
	const struct jobconf_key *keys;
	struct option *opts = long_options();
	size_t n_keys;
	int c, r = 0;

	memset(a, 0, sizeof(*a));
	keys = jobconf_keys(&n_keys);
	if (opts == NULL) {
		tr_error_set(err, TR_ERR_LOCAL, "out of memory");
		return -1;
	}
	optind = 1;
	opterr = 0;
	while (r == 0 && (c = getopt_long(argc, argv, ":qvh", opts, NULL)) != -1) {
		switch (c) {
		case 'q': r = add(&a->settings, "quiet", NULL, err); break;
		case 'v': r = add(&a->settings, "verbose", NULL, err); break;
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
			r = 1;
			break;
		case ':':
			tr_error_set(err, TR_ERR_USAGE, "option %s needs a value", argv[optind - 1]);
			r = -1;
			break;
		default:
			if (c >= OPT_KEY && (size_t)(c - OPT_KEY) < n_keys) {
				r = add(&a->settings, keys[c - OPT_KEY].name,
					keys[c - OPT_KEY].takes_value ? optarg : NULL, err);
			} else {
				/* "--src-pass=s3cret": never echo what follows the '='. */
				const char *arg = argv[optind - 1], *eq = strchr(arg, '=');

				tr_error_set(err, TR_ERR_USAGE, "unknown option %.*s",
					     eq != NULL ? (int)(eq - arg) : (int)strlen(arg), arg);
				r = -1;
			}
			break;
		}
	}
	for (; r == 0 && optind < argc; optind++)
		r = add_arg(a, argv[optind], err);
	free(opts);
	return r;
}

void cli_args_free(struct cli_args *a)
{
	size_t i;

	job_file_free(&a->settings);
	for (i = 0; i < a->n_args; i++)
		free(a->args[i]);
	free(a->args);
	memset(a, 0, sizeof(*a));
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);

	return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* The arguments of run, check and verify: a job file (already applied)
 * and an accounts file, which wins over the job's. */
static int take_args(const struct cli_args *a, struct job_config *cfg, struct tr_error *err)
{
	size_t i;

	for (i = 0; i < a->n_args; i++) {
		if (cfg->name != NULL && strcmp(a->args[i], cfg->name) == 0)
			continue;
		if (cfg->accounts != NULL && cfg->name == NULL) {
			tr_error_set(err, TR_ERR_USAGE, "one accounts file or job file, please");
			return -1;
		}
		if (jobconf_set(cfg, "accounts", a->args[i], NULL, err) < 0)
			return -1;
	}
	return 0;
}

int cli_parse(enum job_kind kind, int argc, char **argv, struct job_config *cfg,
	      struct tr_error *err)
{
	struct cli_args a;
	size_t i;
	int r;

	jobconf_init(cfg, kind);
	r = cli_read_args(argc, argv, &a, err);
	if (r != 0)
		goto out;
	r = -1;
	if (kind != JOB_MIGRATE) {
		/* A job file named on the command line is read first. */
		for (i = 0; i < a.n_args; i++) {
			if (!ends_with(a.args[i], ".job"))
				continue;
			cfg->name = strdup(a.args[i]);
			if (cfg->name == NULL) {
				tr_error_set(err, TR_ERR_LOCAL, "out of memory");
				goto out;
			}
			if (jobconf_load(cfg, a.args[i], err) < 0)
				goto out;
			break;
		}
	}
	if (jobconf_apply(cfg, &a.settings, NULL, err) < 0)
		goto out;
	if (kind == JOB_MIGRATE && a.n_args > 0) {
		tr_error_set(err, TR_ERR_USAGE, "unexpected argument \"%s\"", a.args[0]);
		goto out;
	}
	if (kind != JOB_MIGRATE && take_args(&a, cfg, err) < 0)
		goto out;
	r = jobconf_finish(cfg, err);
out:
	cli_args_free(&a);
	return r;
}

int cli_parse_migrate(int argc, char **argv, struct job_config *cfg, struct tr_error *err)
{
	return cli_parse(JOB_MIGRATE, argc, argv, cfg, err);
}
