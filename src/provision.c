/* provision: see include/provision.h */
#include "config.h"

#include <crypt.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "provision.h"
#include "text.h"

extern char **environ;

int provision_wanted(const struct job_config *cfg)
{
	return cfg->provision_cmd != NULL || cfg->provision != NULL;
}

/* ---- the template -------------------------------------------------------------- */

static int put_str(char *out, size_t size, size_t *n, const char *s, size_t len)
{
	if (*n + len >= size)
		return -1;
	memcpy(out + *n, s, len);
	*n += len;
	out[*n] = '\0';
	return 0;
}

int provision_expand(const char *tmpl, const char *user, char *out, size_t size,
		     struct tr_error *err)
{
	const char *at = strrchr(user, '@');
	size_t n = 0, i;

	if (size == 0)
		return -1;
	out[0] = '\0';
	for (i = 0; tmpl[i] != '\0'; i++) {
		const char *s = tmpl + i;
		size_t len = 1;

		if (tmpl[i] == '%') {
			switch (tmpl[i + 1]) {
			case 'u': s = user; len = strlen(user); break;
			case 'n': s = user; len = at != NULL ? (size_t)(at - user) : strlen(user); break;
			case 'd': s = at != NULL ? at + 1 : ""; len = strlen(s); break;
			case '%': s = "%"; len = 1; break;
			default:
				tr_error_set(err, TR_ERR_USAGE, "provision-passwd-fields: \"%%%c\" is "
					     "not one of %%u, %%n, %%d, %%%%",
					     tmpl[i + 1] != '\0' ? tmpl[i + 1] : ' ');
				return -1;
			}
			i++;
		}
		if (put_str(out, size, &n, s, len) < 0) {
			tr_error_set(err, TR_ERR_USAGE, "provision-passwd-fields: the fields of %s "
				     "are too long", user);
			return -1;
		}
	}
	for (i = 0; i < n; i++)
		if ((unsigned char)out[i] < 0x20 || out[i] == 0x7f) {
			tr_error_set(err, TR_ERR_USAGE, "provision-passwd-fields: a control "
				     "character in the fields of %s", user);
			return -1;
		}
	return 0;
}

/* ---- the command ------------------------------------------------------------------ */

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* "NAME=value" of ours into env[*n], when set. */
static int env_keep(char **env, size_t *n, const char *name)
{
	const char *v = getenv(name);
	size_t len;

	if (v == NULL)
		return 0;
	len = strlen(name) + strlen(v) + 2;
	env[*n] = malloc(len);
	if (env[*n] == NULL)
		return -1;
	snprintf(env[*n], len, "%s=%s", name, v);
	(*n)++;
	return 0;
}

static int env_set(char **env, size_t *n, const char *name, const char *v)
{
	size_t len = strlen(name) + strlen(v) + 2;

	env[*n] = malloc(len);
	if (env[*n] == NULL)
		return -1;
	snprintf(env[*n], len, "%s=%s", name, v);
	(*n)++;
	return 0;
}

static void env_free(char **env, size_t n)
{
	while (n > 0)
		free(env[--n]);
}

/* Write the password and its newline; the pipe holds far more than
 * SECRET_MAX bytes, so this never waits on a child that does not read.
 * A command that exits without reading makes the write fail with EPIPE
 * and raise SIGPIPE, which would end a host process that does not ignore
 * it (trasloco's command layer does; a library must not count on it): the
 * signal is blocked in this thread while writing, and one the writes
 * raised is taken off before the mask is restored. */
static void feed_password(int fd, const char *password)
{
	size_t len = password != NULL ? strlen(password) : 0, off = 0;
	sigset_t pipe_set, old;
	bool broken = false;

	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
	while (off < len) {
		ssize_t w = write(fd, password + off, len - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			broken = w < 0 && errno == EPIPE;
			break;      /* the command closed its input: its exit says the rest */
		}
		off += (size_t)w;
	}
	if (len > 0 && off == len) {
		ssize_t w;

		while ((w = write(fd, "\n", 1)) < 0 && errno == EINTR)
			;
		broken = w < 0 && errno == EPIPE;
	}
	if (broken) {
		const struct timespec now = { 0, 0 };

		while (sigtimedwait(&pipe_set, NULL, &now) == SIGPIPE)
			;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

int provision_cmd_run(const char *cmd, const char *email, const char *user,
		      const char *password, int timeout_s, struct tr_error *err)
{
	static const char *const kept[] = { "PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR" };
	char *env[16], *argv[4];
	char errbuf[PROVISION_STDERR_MAX + 1], clean[PROVISION_STDERR_MAX * 4 + 1];
	size_t n_env = 0, n_err = 0, i;
	int in[2] = { -1, -1 }, ep[2] = { -1, -1 }, status = 0, r, rc = -1;
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	bool fa_set = false, attr_set = false, timed_out = false, reaped = false;
	double deadline = now_s() + timeout_s;
	pid_t pid = -1;

	for (i = 0; i < sizeof(kept) / sizeof(kept[0]); i++)
		if (env_keep(env, &n_env, kept[i]) < 0)
			goto oom;
	if (getenv("PATH") == NULL && env_set(env, &n_env, "PATH", "/usr/bin:/bin") < 0)
		goto oom;
	if (env_set(env, &n_env, "TRASLOCO_EMAIL", email) < 0 ||
	    env_set(env, &n_env, "TRASLOCO_USER", user) < 0)
		goto oom;
	env[n_env] = NULL;
	argv[0] = (char *)"sh";
	argv[1] = (char *)"-c";
	argv[2] = (char *)cmd;
	argv[3] = NULL;

	if (pipe2(in, O_CLOEXEC) < 0 || pipe2(ep, O_CLOEXEC) < 0) {
		tr_error_set(err, TR_ERR_LOCAL, "provision-cmd: pipe: %s", strerror(errno));
		goto out;
	}
	if (posix_spawn_file_actions_init(&fa) != 0)
		goto oom;
	fa_set = true;
	if (posix_spawnattr_init(&attr) != 0)
		goto oom;
	attr_set = true;
	if (posix_spawn_file_actions_adddup2(&fa, in[0], 0) != 0 ||
	    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0) != 0 ||
	    posix_spawn_file_actions_adddup2(&fa, ep[1], 2) != 0 ||
	    /* the sessions and databases of the other accounts are not the
	     * command's to hold */
	    posix_spawn_file_actions_addclosefrom_np(&fa, 3) != 0 ||
	    /* its own process group: a timeout kills whatever it started */
	    posix_spawnattr_setpgroup(&attr, 0) != 0 ||
	    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP) != 0)
		goto oom;
	r = posix_spawn(&pid, "/bin/sh", &fa, &attr, argv, env);
	if (r != 0) {
		pid = -1;
		tr_error_set(err, TR_ERR_LOCAL, "provision-cmd: cannot start /bin/sh: %s",
			     strerror(r));
		goto out;
	}
	close(in[0]);
	close(ep[1]);
	in[0] = ep[1] = -1;
	feed_password(in[1], password);
	close(in[1]);
	in[1] = -1;

	/* its standard error until it closes it (the first bytes kept, the
	 * rest read and dropped so that it never blocks on a full pipe) */
	for (;;) {
		struct pollfd p = { .fd = ep[0], .events = POLLIN };
		double left = deadline - now_s();
		char buf[4096];
		ssize_t got;

		if (left <= 0) {
			timed_out = true;
			break;
		}
		r = poll(&p, 1, left > 1 ? 1000 : (int)(left * 1000) + 1);
		if (r < 0 && errno != EINTR)
			break;
		if (r <= 0)
			continue;
		got = read(ep[0], buf, sizeof(buf));
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			break;
		if (n_err < PROVISION_STDERR_MAX) {
			size_t take = (size_t)got < PROVISION_STDERR_MAX - n_err ?
				      (size_t)got : PROVISION_STDERR_MAX - n_err;

			memcpy(errbuf + n_err, buf, take);
			n_err += take;
		}
	}
	/* it closed its standard error: it ends soon, or it is killed */
	while (!timed_out) {
		pid_t w = waitpid(pid, &status, WNOHANG);

		if (w == pid) {
			reaped = true;
			break;
		}
		if (w < 0 && errno != EINTR)
			break;
		if (now_s() >= deadline) {
			timed_out = true;
			break;
		}
		usleep(20000);
	}
	if (!reaped) {
		kill(-pid, SIGKILL);
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
	}
	errbuf[n_err] = '\0';
	/* the text as one line: trailing newlines off, control bytes escaped */
	while (n_err > 0 && (errbuf[n_err - 1] == '\n' || errbuf[n_err - 1] == '\r'))
		errbuf[--n_err] = '\0';
	text_clean(clean, sizeof(clean), errbuf, n_err, NULL);
	if (timed_out) {
		tr_error_set(err, TR_ERR_TEMP, "provision-cmd for %s did not end within %d s "
			     "(killed)%s%s", email, timeout_s, n_err > 0 ? ": " : "", clean);
		goto out;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		rc = 1;
		goto out;
	}
	if (WIFEXITED(status))
		tr_error_set(err, TR_ERR_AUTH, "provision-cmd for %s failed (exit %d)%s%s", email,
			     WEXITSTATUS(status), n_err > 0 ? ": " : "", clean);
	else
		tr_error_set(err, TR_ERR_AUTH, "provision-cmd for %s killed by signal %d%s%s", email,
			     WIFSIGNALED(status) ? WTERMSIG(status) : 0, n_err > 0 ? ": " : "",
			     clean);
	goto out;
oom:
	tr_error_set(err, TR_ERR_LOCAL, "out of memory");
out:
	explicit_bzero(errbuf, sizeof(errbuf));
	if (fa_set)
		posix_spawn_file_actions_destroy(&fa);
	if (attr_set)
		posix_spawnattr_destroy(&attr);
	for (i = 0; i < 2; i++) {
		if (in[i] >= 0)
			close(in[i]);
		if (ep[i] >= 0)
			close(ep[i]);
	}
	env_free(env, n_env);
	return rc;
}

/* ---- the passwd-file built-in ---------------------------------------------------- */

/* The file whole (at most 64 MiB: a passwd-file of a million users). */
static int read_all(int fd, char **text, size_t *len, const char *path, struct tr_error *err)
{
	size_t cap = 8192, n = 0;
	char *buf = malloc(cap);

	if (buf == NULL)
		goto oom;
	for (;;) {
		ssize_t got;

		if (n == cap) {
			char *nb;

			if (cap >= (64u << 20)) {
				free(buf);
				tr_error_set(err, TR_ERR_LOCAL, "%s: larger than 64 MiB", path);
				return -1;
			}
			nb = realloc(buf, cap * 2);
			if (nb == NULL)
				goto oom;
			buf = nb;
			cap *= 2;
		}
		got = read(fd, buf + n, cap - n);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			tr_error_set(err, TR_ERR_LOCAL, "%s: %s", path, strerror(errno));
			free(buf);
			return -1;
		}
		if (got == 0)
			break;
		n += (size_t)got;
	}
	*text = buf;
	*len = n;
	return 0;
oom:
	free(buf);
	tr_error_set(err, TR_ERR_LOCAL, "out of memory");
	return -1;
}

/* Whether a line of text names user (its first field, case aside). */
static bool has_user(const char *text, size_t len, const char *user)
{
	size_t ulen = strlen(user), i = 0;

	while (i < len) {
		const char *line = text + i, *nl = memchr(line, '\n', len - i);
		size_t llen = nl != NULL ? (size_t)(nl - line) : len - i;

		if (llen > ulen && line[ulen] == ':' && strncasecmp(line, user, ulen) == 0)
			return true;
		i += llen + 1;
	}
	return false;
}

static int write_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t w = write(fd, p, len);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

/* "{SHA512-CRYPT}$6$salt$hash" of password into out. */
static int hash_password(const char *password, char *out, size_t size, struct tr_error *err)
{
	struct crypt_data *cd = calloc(1, sizeof(*cd));
	char salt[CRYPT_GENSALT_OUTPUT_SIZE];
	const char *h;
	int rc = -1;

	if (cd == NULL) {
		tr_error_set(err, TR_ERR_LOCAL, "out of memory");
		return -1;
	}
	/* NULL random bytes: libcrypt takes them from the kernel */
	if (crypt_gensalt_rn("$6$", 0, NULL, 0, salt, sizeof(salt)) == NULL) {
		tr_error_set(err, TR_ERR_LOCAL, "crypt_gensalt: %s", strerror(errno));
		goto out;
	}
	h = crypt_r(password, salt, cd);
	if (h == NULL || strncmp(h, "$6$", 3) != 0 ||
	    (size_t)snprintf(out, size, "{SHA512-CRYPT}%s", h) >= size) {
		tr_error_set(err, TR_ERR_LOCAL, "SHA512-CRYPT hashing failed");
		goto out;
	}
	rc = 0;
out:
	explicit_bzero(cd, sizeof(*cd));
	free(cd);
	return rc;
}

static bool user_fits(const char *user)
{
	const unsigned char *p = (const unsigned char *)user;

	if (*p == '\0')
		return false;
	for (; *p != '\0'; p++)
		if (*p <= 0x20 || *p == 0x7f || *p == ':')
			return false;
	return true;
}

/* The new file: the old bytes, a newline if its last line had none, line. */
static int replace_file(const char *path, const struct stat *st, const char *old, size_t old_len,
			const char *line, struct tr_error *err)
{
	size_t plen = strlen(path);
	char *tmp = malloc(plen + 32), *dir = NULL, *slash;
	int fd = -1, rc = -1, dfd;

	if (tmp == NULL) {
		tr_error_set(err, TR_ERR_LOCAL, "out of memory");
		return -1;
	}
	snprintf(tmp, plen + 32, "%s.trasloco-XXXXXX", path);
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		tr_error_set(err, TR_ERR_LOCAL, "%s: cannot create a file next to it: %s", path,
			     strerror(errno));
		free(tmp);
		return -1;
	}
	/* owner and group first, then the mode (a chown may clear set-id bits) */
	if (fchown(fd, st->st_uid, st->st_gid) < 0 && (st->st_uid != geteuid() ||
						       fchown(fd, (uid_t)-1, st->st_gid) < 0)) {
		tr_error_set(err, TR_ERR_LOCAL, "%s: cannot keep its owner %u:%u: %s", path,
			     (unsigned)st->st_uid, (unsigned)st->st_gid, strerror(errno));
		goto out;
	}
	if (fchmod(fd, st->st_mode & 07777) < 0) {
		tr_error_set(err, TR_ERR_LOCAL, "%s: cannot keep its mode: %s", path,
			     strerror(errno));
		goto out;
	}
	if (write_all(fd, old, old_len) < 0 ||
	    (old_len > 0 && old[old_len - 1] != '\n' && write_all(fd, "\n", 1) < 0) ||
	    write_all(fd, line, strlen(line)) < 0 || fsync(fd) < 0) {
		tr_error_set(err, TR_ERR_LOCAL, "%s: writing %s: %s", path, tmp, strerror(errno));
		goto out;
	}
	if (close(fd) < 0) {
		fd = -1;
		tr_error_set(err, TR_ERR_LOCAL, "%s: writing %s: %s", path, tmp, strerror(errno));
		goto out;
	}
	fd = -1;
	if (rename(tmp, path) < 0) {
		tr_error_set(err, TR_ERR_LOCAL, "%s: cannot replace it: %s", path, strerror(errno));
		goto out;
	}
	free(tmp);
	tmp = NULL;
	/* the rename itself on disk */
	dir = strdup(path);
	if (dir != NULL) {
		slash = strrchr(dir, '/');
		if (slash == NULL)
			strcpy(dir, ".");
		else if (slash == dir)
			slash[1] = '\0';
		else
			*slash = '\0';
		dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd >= 0) {
			fsync(dfd);
			close(dfd);
		}
	}
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	if (tmp != NULL) {
		unlink(tmp);
		free(tmp);
	}
	free(dir);
	return rc;
}

static void next_second(void)
{
	struct timespec now, d;

	clock_gettime(CLOCK_REALTIME, &now);
	d.tv_sec = 0;
	d.tv_nsec = 1000000000L - now.tv_nsec + 50000000L;     /* and 50 ms of slack */
	if (d.tv_nsec >= 1000000000L) {
		d.tv_sec = 1;
		d.tv_nsec -= 1000000000L;
	}
	while (nanosleep(&d, &d) < 0 && errno == EINTR)
		;
}

int provision_passwd_add(const char *path, const char *user, const char *password,
			 const char *fields, struct tr_error *err)
{
	char expanded[2048], hash[256], *line = NULL, *text = NULL, *lockpath;
	size_t len = 0, llen;
	struct stat st;
	int lfd = -1, fd = -1, rc = -1;

	if (!user_fits(user)) {
		tr_error_set(err, TR_ERR_USAGE, "provision: the user \"%s\" cannot go into a "
			     "passwd-file (empty, or a ':', space or control character)", user);
		return -1;
	}
	if (password == NULL || password[0] == '\0') {
		tr_error_set(err, TR_ERR_USAGE, "provision: no password for %s to put in %s (the "
			     "accounts CSV has none)", user, path);
		return -1;
	}
	if (fields == NULL)
		fields = "";
	if (fields[0] != '\0' && fields[0] != ':') {
		tr_error_set(err, TR_ERR_USAGE, "provision-passwd-fields must begin with ':' (the "
			     "fields after the password)");
		return -1;
	}
	if (provision_expand(fields, user, expanded, sizeof(expanded), err) < 0)
		return -1;
	lockpath = malloc(strlen(path) + 6);
	if (lockpath == NULL) {
		tr_error_set(err, TR_ERR_LOCAL, "out of memory");
		return -1;
	}
	sprintf(lockpath, "%s.lock", path);
	lfd = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (lfd < 0) {
		tr_error_set(err, TR_ERR_LOCAL, "provision: cannot open the lock %s: %s", lockpath,
			     strerror(errno));
		goto out;
	}
	while (flock(lfd, LOCK_EX) < 0) {
		if (errno != EINTR) {
			tr_error_set(err, TR_ERR_LOCAL, "provision: cannot lock %s: %s", lockpath,
				     strerror(errno));
			goto out;
		}
	}
	/* a link would be replaced by a file: the caller names the target */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		tr_error_set(err, TR_ERR_LOCAL, "provision: %s: %s%s", path, strerror(errno),
			     errno == ELOOP ? " (a symbolic link: name the file itself)" :
			     errno == ENOENT ? " (create it, with the owner and mode Dovecot needs)" :
			     "");
		goto out;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		tr_error_set(err, TR_ERR_LOCAL, "provision: %s is not a regular file", path);
		goto out;
	}
	if (read_all(fd, &text, &len, path, err) < 0)
		goto out;
	if (memchr(text, '\0', len) != NULL) {
		tr_error_set(err, TR_ERR_LOCAL, "provision: %s holds NUL bytes: not a passwd-file",
			     path);
		goto out;
	}
	if (has_user(text, len, user)) {
		rc = 0;
		goto out;
	}
	if (hash_password(password, hash, sizeof(hash), err) < 0)
		goto out;
	llen = strlen(user) + strlen(hash) + strlen(expanded) + 3;
	line = malloc(llen);
	if (line == NULL) {
		tr_error_set(err, TR_ERR_LOCAL, "out of memory");
		goto out;
	}
	snprintf(line, llen, "%s:%s%s\n", user, hash, expanded);
	if (replace_file(path, &st, text, len, line, err) < 0)
		goto out;
	log_info(user, "provisioned in %s", path);
	rc = 1;
	/* Dovecot looks at a passwd-file at most once a second (it stats it
	 * only when the second has changed since it last did): a login in
	 * the second of the rename could still meet the old file. */
	next_second();
out:
	if (fd >= 0)
		close(fd);
	if (lfd >= 0)
		close(lfd);     /* and the lock with it */
	free(lockpath);
	free(text);
	free(line);
	explicit_bzero(hash, sizeof(hash));
	return rc;
}

int provision_account(const struct job_config *cfg, const char *email, const char *user,
		      const char *password, struct tr_error *err)
{
	if (cfg->provision_cmd != NULL)
		return provision_cmd_run(cfg->provision_cmd, email, user, password,
					 cfg->timeout_s > 0 ? cfg->timeout_s : 120, err);
	if (cfg->provision != NULL) {
		size_t plen = strlen(PROVISION_PASSWD_FILE);

		if (strncmp(cfg->provision, PROVISION_PASSWD_FILE, plen) != 0) {
			tr_error_set(err, TR_ERR_USAGE, "provision: \"%s\" is not %sPATH",
				     cfg->provision, PROVISION_PASSWD_FILE);
			return -1;
		}
		return provision_passwd_add(cfg->provision + plen, user, password,
					    cfg->provision_passwd_fields, err);
	}
	return 0;
}
