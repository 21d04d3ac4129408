/* oauth: tokens per account, fetched from a command; see oauth.h. */
#define _GNU_SOURCE
#include "oauth.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "log.h"

extern char **environ;

/* A token is fetched again this long before it expires: a session that
 * logs in with it must not race its end.  A quarter of a short life. */
#define OAUTH_MARGIN_S 300
/* What a command may print (a JSON answer with an id_token is a few KB). */
#define OUT_MAX (64 * 1024)
#define ERR_MAX 512

struct oauth_account {
	struct oauth_account *next;
	struct oauth_pool *pool;
	char *email, *user;
	pthread_mutex_t lock;
	char *token;              /* OAUTH_TOKEN_MAX bytes, wiped when dropped */
	bool have;
	double refresh_at;        /* monotonic seconds */
	uint64_t gen;
	unsigned fetches;
};

struct oauth_pool {
	struct oauth_conf conf;
	pthread_mutex_t lock;
	struct oauth_account *list;
	struct oauth_account *dropped;   /* kept until the pool goes: a session may hold one */
};

static double mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void account_free(struct oauth_account *a)
{
	if (a == NULL)
		return;
	if (a->token != NULL) {
		explicit_bzero(a->token, OAUTH_TOKEN_MAX);
		free(a->token);
	}
	pthread_mutex_destroy(&a->lock);
	free(a->email);
	free(a->user);
	free(a);
}

struct oauth_pool *oauth_pool_new(const struct oauth_conf *conf)
{
	struct oauth_pool *p = calloc(1, sizeof(*p));

	if (p == NULL)
		return NULL;
	p->conf = *conf;
	pthread_mutex_init(&p->lock, NULL);
	return p;
}

void oauth_pool_free(struct oauth_pool *p)
{
	struct oauth_account *a, *next;

	if (p == NULL)
		return;
	for (a = p->list; a != NULL; a = next) {
		next = a->next;
		account_free(a);
	}
	for (a = p->dropped; a != NULL; a = next) {
		next = a->next;
		account_free(a);
	}
	pthread_mutex_destroy(&p->lock);
	free(p);
}

struct oauth_account *oauth_pool_get(struct oauth_pool *p, const char *email, const char *user)
{
	struct oauth_account *a;

	pthread_mutex_lock(&p->lock);
	for (a = p->list; a != NULL; a = a->next)
		if (strcmp(a->email, email) == 0 && strcmp(a->user, user) == 0)
			break;
	if (a == NULL) {
		a = calloc(1, sizeof(*a));
		if (a != NULL) {
			a->email = strdup(email);
			a->user = strdup(user);
			a->token = malloc(OAUTH_TOKEN_MAX);
			a->pool = p;
			pthread_mutex_init(&a->lock, NULL);
			if (a->email == NULL || a->user == NULL || a->token == NULL) {
				account_free(a);
				a = NULL;
			} else {
				a->next = p->list;
				p->list = a;
			}
		}
	}
	pthread_mutex_unlock(&p->lock);
	return a;
}

void oauth_pool_drop(struct oauth_pool *p, const char *email)
{
	struct oauth_account **pp, *a;

	if (p == NULL)
		return;
	pthread_mutex_lock(&p->lock);
	for (pp = &p->list; (a = *pp) != NULL;) {
		if (strcmp(a->email, email) != 0) {
			pp = &a->next;
			continue;
		}
		*pp = a->next;
		/* Wiped now; the entry itself stays until the pool goes, since
		 * a straggling session of the account may still hold it. */
		pthread_mutex_lock(&a->lock);
		explicit_bzero(a->token, OAUTH_TOKEN_MAX);
		a->have = false;
		pthread_mutex_unlock(&a->lock);
		a->next = p->dropped;
		p->dropped = a;
	}
	pthread_mutex_unlock(&p->lock);
}

/* ---- the command ---------------------------------------------------------- */

static bool secret_name(const char *entry)
{
	static const char *const words[] = { "PASSWORD", "PASSWD", "SECRET", "TOKEN" };
	const char *eq = strchr(entry, '=');
	size_t n = eq != NULL ? (size_t)(eq - entry) : strlen(entry), i, w;

	for (w = 0; w < sizeof(words) / sizeof(words[0]); w++) {
		size_t wl = strlen(words[w]);

		for (i = 0; i + wl <= n; i++)
			if (strncasecmp(entry + i, words[w], wl) == 0)
				return true;
	}
	return strncmp(entry, "TRASLOCO_EMAIL=", 15) == 0 || strncmp(entry, "TRASLOCO_USER=", 14) == 0;
}

/* The command's environment: ours without anything that names a secret,
 * plus the account. */
static char **child_env(const char *email, const char *user)
{
	size_t n = 0, k = 0, i;
	char **env;

	while (environ != NULL && environ[n] != NULL)
		n++;
	env = calloc(n + 3, sizeof(*env));
	if (env == NULL)
		return NULL;
	for (i = 0; i < n; i++)
		if (!secret_name(environ[i]))
			env[k++] = environ[i];
	if (asprintf(&env[k++], "TRASLOCO_EMAIL=%s", email) < 0) {
		free(env);
		return NULL;
	}
	if (asprintf(&env[k], "TRASLOCO_USER=%s", user) < 0) {
		free(env[k - 1]);
		free(env);
		return NULL;
	}
	return env;
}

static void child_env_free(char **env)
{
	size_t i;

	for (i = 0; env[i] != NULL; i++)
		if (strncmp(env[i], "TRASLOCO_EMAIL=", 15) == 0 ||
		    strncmp(env[i], "TRASLOCO_USER=", 14) == 0)
			free(env[i]);
	free(env);
}

/* The last line of what the command wrote to stderr, cleaned for a message. */
static void err_tail(const char *e, size_t len, char *buf, size_t size)
{
	size_t a, b = len, o = 0;

	while (b > 0 && isspace((unsigned char)e[b - 1]))
		b--;
	a = b;
	while (a > 0 && e[a - 1] != '\n')
		a--;
	for (; a < b && o + 1 < size; a++)
		buf[o++] = (e[a] >= 0x20 && e[a] < 0x7f) ? e[a] : '?';
	buf[o] = '\0';
}

/* Run the command; its stdout into out (wiped by the caller).  -1 with err. */
static int run_cmd(const struct oauth_account *a, char *out, size_t *out_len,
		   struct tr_error *err)
{
	const struct oauth_conf *c = &a->pool->conf;
	int op[2] = { -1, -1 }, ep[2] = { -1, -1 }, status = 0, r;
	posix_spawn_file_actions_t fa;
	char *argv[] = { "/bin/sh", "-c", (char *)c->cmd, NULL };
	char **env, errbuf[ERR_MAX], tail[200];
	size_t elen = 0;
	pid_t pid;
	double deadline;
	bool timed_out = false, too_much = false;

	*out_len = 0;
	env = child_env(a->email, a->user);
	if (env == NULL || pipe2(op, O_CLOEXEC) < 0 || pipe2(ep, O_CLOEXEC) < 0) {
		tr_error_set(err, TR_ERR_LOCAL, "%s token for %s: %s", c->side, a->email,
			     env == NULL ? "out of memory" : strerror(errno));
		goto fail;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, op[1], 1);
	posix_spawn_file_actions_adddup2(&fa, ep[1], 2);
	r = posix_spawn(&pid, "/bin/sh", &fa, NULL, argv, env);
	posix_spawn_file_actions_destroy(&fa);
	child_env_free(env);
	env = NULL;
	close(op[1]);
	close(ep[1]);
	op[1] = ep[1] = -1;
	if (r != 0) {
		tr_error_set(err, TR_ERR_LOCAL, "%s token for %s: cannot run /bin/sh: %s", c->side,
			     a->email, strerror(r));
		goto fail;
	}
	deadline = mono_now() + (c->timeout_s > 0 ? c->timeout_s : 60);
	while (op[0] >= 0 || ep[0] >= 0) {
		struct pollfd pf[2] = { { op[0], POLLIN, 0 }, { ep[0], POLLIN, 0 } };
		double left = deadline - mono_now();
		char sink[4096];
		ssize_t got;

		if (left <= 0) {
			timed_out = true;
			break;
		}
		if (poll(pf, 2, (int)(left * 1000) + 1) < 0 && errno != EINTR)
			break;
		if (op[0] >= 0 && (pf[0].revents & (POLLIN | POLLHUP | POLLERR))) {
			if (*out_len + 1 < OUT_MAX) {
				got = read(op[0], out + *out_len, OUT_MAX - 1 - *out_len);
				if (got > 0)
					*out_len += (size_t)got;
			} else {
				got = read(op[0], sink, sizeof(sink));
				if (got > 0)
					too_much = true;
			}
			if (got <= 0 && !(got < 0 && errno == EINTR)) {
				close(op[0]);
				op[0] = -1;
			}
		}
		if (ep[0] >= 0 && (pf[1].revents & (POLLIN | POLLHUP | POLLERR))) {
			got = read(ep[0], sink, sizeof(sink));
			if (got > 0) {
				size_t take = (size_t)got;

				/* keep the end: the last line says why */
				if (take >= sizeof(errbuf)) {
					memcpy(errbuf, sink + take - sizeof(errbuf), sizeof(errbuf));
					elen = sizeof(errbuf);
				} else {
					if (elen + take > sizeof(errbuf)) {
						size_t drop = elen + take - sizeof(errbuf);

						memmove(errbuf, errbuf + drop, elen - drop);
						elen -= drop;
					}
					memcpy(errbuf + elen, sink, take);
					elen += take;
				}
			} else if (!(got < 0 && errno == EINTR)) {
				close(ep[0]);
				ep[0] = -1;
			}
		}
	}
	if (timed_out)
		kill(pid, SIGKILL);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	err_tail(errbuf, elen, tail, sizeof(tail));
	/* A command that hung, was killed or says "try again later" (75,
	 * sysexits' EX_TEMPFAIL, as mail programs do) failed for now: the
	 * account's retries try again after their back-off.  Any other exit
	 * is the command's answer (no consent, no such user): final. */
	if (timed_out) {
		tr_error_set(err, TR_ERR_TEMP, "%s token for %s: the token command did not finish "
			     "within %d s", c->side, a->email, c->timeout_s > 0 ? c->timeout_s : 60);
		goto fail;
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		if (WIFEXITED(status))
			tr_error_set(err, WEXITSTATUS(status) == OAUTH_CMD_TEMPFAIL ? TR_ERR_TEMP :
				     TR_ERR_AUTH, "%s token for %s: the token command exited "
				     "with %d%s%s%s", c->side, a->email, WEXITSTATUS(status),
				     WEXITSTATUS(status) == OAUTH_CMD_TEMPFAIL ? " (try again later)" :
				     "", tail[0] ? ": " : "", tail);
		else
			tr_error_set(err, TR_ERR_TEMP, "%s token for %s: the token command was "
				     "killed by signal %d", c->side, a->email, WTERMSIG(status));
		goto fail;
	}
	if (too_much) {
		tr_error_set(err, TR_ERR_AUTH, "%s token for %s: the token command printed more "
			     "than %d bytes", c->side, a->email, OUT_MAX);
		goto fail;
	}
	out[*out_len] = '\0';
	explicit_bzero(errbuf, sizeof(errbuf));
	return 0;
fail:
	explicit_bzero(errbuf, sizeof(errbuf));
	if (env != NULL)
		child_env_free(env);
	for (r = 0; r < 2; r++) {
		if (op[r] >= 0)
			close(op[r]);
		if (ep[r] >= 0)
			close(ep[r]);
	}
	return -1;
}

static int fetch(struct oauth_account *a, struct tr_error *err)
{
	char *out = malloc(OUT_MAX);
	size_t len = 0;
	long ttl = 0;
	double margin;
	int r;

	if (out == NULL) {
		tr_error_set(err, TR_ERR_LOCAL, "out of memory");
		return -1;
	}
	if (a->pool->conf.provider != OAUTH_PROVIDER_CMD) {
		r = oauth_flow_fetch(&a->pool->conf, a->email, a->user, a->token, OAUTH_TOKEN_MAX,
				     &ttl, err);
		len = 0;
	} else if ((r = run_cmd(a, out, &len, err)) == 0) {
		r = oauth_parse_token(out, len, a->token, OAUTH_TOKEN_MAX, &ttl, err);
		if (r < 0)
			tr_error_prefix(err, "%s token for %s: the token command's output",
					a->pool->conf.side, a->email);
	}
	explicit_bzero(out, OUT_MAX);
	free(out);
	if (r < 0)
		return -1;
	if (ttl <= 0)
		ttl = OAUTH_DEFAULT_TTL_S;
	margin = ttl / 4.0 < OAUTH_MARGIN_S ? ttl / 4.0 : OAUTH_MARGIN_S;
	a->refresh_at = mono_now() + (double)ttl - margin;
	a->have = true;
	a->gen++;
	a->fetches++;
	log_debug(a->email, "%s: new token (fetch %u, good for %ld s)", a->pool->conf.side,
		  a->fetches, ttl);
	return 0;
}

int oauth_token(struct oauth_account *a, char *buf, size_t size, uint64_t *gen, bool *fresh,
		struct tr_error *err)
{
	int r = 0;

	*fresh = false;
	pthread_mutex_lock(&a->lock);
	if (!a->have || mono_now() >= a->refresh_at) {
		r = fetch(a, err);
		*fresh = r == 0;
	}
	if (r == 0) {
		size_t n = strlen(a->token);

		if (n + 1 > size) {
			tr_error_set(err, TR_ERR_AUTH, "%s token for %s: longer than %zu bytes",
				     a->pool->conf.side, a->email, size - 1);
			r = -1;
		} else {
			memcpy(buf, a->token, n + 1);
			*gen = a->gen;
		}
	}
	pthread_mutex_unlock(&a->lock);
	return r;
}

void oauth_refused(struct oauth_account *a, uint64_t gen)
{
	pthread_mutex_lock(&a->lock);
	if (a->gen == gen && a->have) {
		explicit_bzero(a->token, OAUTH_TOKEN_MAX);
		a->have = false;
	}
	pthread_mutex_unlock(&a->lock);
}

unsigned oauth_fetches(struct oauth_account *a)
{
	unsigned n;

	pthread_mutex_lock(&a->lock);
	n = a->fetches;
	pthread_mutex_unlock(&a->lock);
	return n;
}
