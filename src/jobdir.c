/* jobdir: see include/jobdir.h */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "jobdir.h"
#include "log.h"
#include "net.h"

static const char *const subdirs[] = { "pending", "running", "done", "failed", "state" };

static bool is_job(const char *name)
{
	size_t n = strlen(name);

	return name[0] != '.' && n > 4 && strcmp(name + n - 4, ".job") == 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The *.job names in dir, sorted (names give the order: date prefixes work). */
static char **list_jobs(const char *dir, size_t *n, struct tr_error *err)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char **v = NULL;

	*n = 0;
	if (d == NULL) {
		tr_error_set(err, TR_ERR_LOCAL, "cannot read %s: %s", dir, strerror(errno));
		return NULL;
	}
	while ((e = readdir(d)) != NULL) {
		char **nv;

		if (!is_job(e->d_name))
			continue;
		nv = realloc(v, (*n + 2) * sizeof(*v));
		if (nv == NULL)
			break;
		v = nv;
		v[*n] = strdup(e->d_name);
		if (v[*n] == NULL)
			break;
		(*n)++;
		v[*n] = NULL;
	}
	closedir(d);
	if (v == NULL) {
		v = calloc(1, sizeof(*v));
		if (v == NULL)
			tr_error_set(err, TR_ERR_LOCAL, "out of memory");
		return v;
	}
	qsort(v, *n, sizeof(*v), cmp_str);
	return v;
}

static void free_list(char **v, size_t n)
{
	size_t i;

	for (i = 0; v != NULL && i < n; i++)
		free(v[i]);
	free(v);
}

static int move(const char *dir, const char *from, const char *to, const char *name)
{
	char a[4096], b[4096];

	snprintf(a, sizeof(a), "%s/%s/%s", dir, from, name);
	snprintf(b, sizeof(b), "%s/%s/%s", dir, to, name);
	return rename(a, b);
}

/* path must be a real directory (not a link) of uid, not writable by
 * group or others; created (0700) when missing. */
static int check_dir(const char *path, uid_t uid, struct tr_error *err)
{
	struct stat st;

	if (lstat(path, &st) < 0 && errno == ENOENT) {
		if (mkdir(path, 0700) < 0 && errno != EEXIST) {
			tr_error_set(err, TR_ERR_LOCAL, "cannot create %s: %s", path, strerror(errno));
			return -1;
		}
	}
	if (lstat(path, &st) < 0) {
		tr_error_set(err, TR_ERR_LOCAL, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (S_ISLNK(st.st_mode)) {
		tr_error_set(err, TR_ERR_LOCAL, "spool: %s is a symbolic link; give the real "
			     "directory (a spool is not followed through links)", path);
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		tr_error_set(err, TR_ERR_LOCAL, "spool: %s is not a directory", path);
		return -1;
	}
	if (st.st_uid != uid) {
		tr_error_set(err, TR_ERR_LOCAL, "spool: %s belongs to uid %u, not to uid %u who runs "
			     "the spool: run it as the spool's owner", path, (unsigned)st.st_uid,
			     (unsigned)uid);
		return -1;
	}
	if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
		tr_error_set(err, TR_ERR_LOCAL, "spool: %s is writable by group or others (mode "
			     "%04o): chmod go-w it", path, (unsigned)(st.st_mode & 07777));
		return -1;
	}
	return 0;
}

/* Open pending/name for reading if it may be run: a regular file of uid,
 * never through a link, never waiting (a FIFO would block open()).
 * Returns the descriptor; -1 with why set when refused, -1 with why NULL
 * when the file is gone. */
static int open_job(const char *path, uid_t uid, char *why, size_t cap)
{
	struct stat st;
	int fd;

	why[0] = '\0';
	if (lstat(path, &st) < 0) {
		if (errno == ENOENT)
			return -1;
		snprintf(why, cap, "%s", strerror(errno));
		return -1;
	}
	if (S_ISLNK(st.st_mode)) {
		snprintf(why, cap, "a symbolic link (jobs are regular files)");
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(why, cap, "not a regular file (%s)", S_ISFIFO(st.st_mode) ? "a FIFO" :
			 S_ISDIR(st.st_mode) ? "a directory" : S_ISSOCK(st.st_mode) ? "a socket" :
			 "a device");
		return -1;
	}
	/* again on the descriptor: it may have been swapped meanwhile */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
	if (fd < 0) {
		if (errno == ENOENT)
			return -1;
		snprintf(why, cap, "%s", errno == ELOOP ? "a symbolic link (jobs are regular files)"
			 : strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		snprintf(why, cap, "not a regular file");
		close(fd);
		return -1;
	}
	if (st.st_uid != uid) {
		snprintf(why, cap, "owned by uid %u, not by the spool's owner (uid %u)",
			 (unsigned)st.st_uid, (unsigned)uid);
		close(fd);
		return -1;
	}
	return fd;
}

int jobdir_config_read(const char *path, struct job_file *out, struct tr_error *err)
{
	struct stat st;
	int fd, r;

	memset(out, 0, sizeof(*out));
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
	r = job_file_read_fd(fd, path, out, err);
	close(fd);
	return r;
}

static int apply_op(struct job_config *cfg, const struct jobdir_op *op, size_t n_op,
		    struct tr_error *err)
{
	size_t i;

	for (i = 0; i < n_op; i++)
		if (jobconf_apply(cfg, op[i].settings, &op[i].origin, err) < 0)
			return -1;
	return 0;
}

/* The operator's settings, once, before any job: valid, and no admin
 * password sent where a job says. */
static int check_op(const struct jobdir_op *op, size_t n_op, struct tr_error *err)
{
	struct job_config cfg;
	int r;

	jobconf_init(&cfg, JOB_RUN);
	r = apply_op(&cfg, op, n_op, err);
	if (r == 0 && cfg.dst_admin != NULL && cfg.dst.host == NULL) {
		tr_error_set(err, TR_ERR_USAGE, "a spool with --dst-admin needs --dst from its "
			     "command line or --config file too: the destination an admin "
			     "password is sent to is not a job's choice");
		r = -1;
	}
	jobconf_free(&cfg);
	return r;
}

int jobdir_job_config(const char *dir, const char *dir_real, const struct job_file *job,
		      const char *report, const struct jobdir_op *op, size_t n_op,
		      struct job_config *cfg, struct tr_error *err)
{
	struct jobconf_origin spool = { .from = JOBCONF_SPOOL_JOB, .dir = dir,
					.dir_real = dir_real };
	const char *base = job->path != NULL ? strrchr(job->path, '/') : NULL;
	char state[4096];
	bool has_state = false;
	size_t i, len;

	jobconf_init(cfg, JOB_RUN);
	if (job->path != NULL && (cfg->name = strdup(job->path)) == NULL) {
		tr_error_set(err, TR_ERR_LOCAL, "out of memory");
		return -1;
	}
	if (jobconf_apply(cfg, job, &spool, err) < 0)
		return -1;
	for (i = 0; i < job->n; i++)
		if (strcmp(job->v[i].key, "state") == 0)
			has_state = true;
	if (!has_state) {
		/* by the job's name, so that a re-run of the same job resumes it;
		 * before the operator's settings, which win */
		base = base != NULL ? base + 1 : job->path != NULL ? job->path : "job";
		len = strlen(base);
		if (len > 4 && strcmp(base + len - 4, ".job") == 0)
			len -= 4;
		snprintf(state, sizeof(state), "%s/state/%.*s", dir, (int)len, base);
		if (jobconf_set(cfg, "state", state, NULL, err) < 0)
			return -1;
	}
	if (apply_op(cfg, op, n_op, err) < 0)
		return -1;
	if (report != NULL && jobconf_set(cfg, "report", report, NULL, err) < 0)
		return -1;
	return jobconf_finish(cfg, err);
}

/* Read, configure and run one job; returns its exit code. */
static int run_job(int fd, const char *path, const char *report, const char *dir,
		   const char *dir_real, const struct jobdir_op *op, size_t n_op,
		   jobdir_runner *run, void *ctx)
{
	struct job_file jf;
	struct job_config cfg;
	struct tr_error err;
	int code;

	tr_error_clear(&err);
	/* read once, from what open_job checked */
	if (job_file_read_fd(fd, path, &jf, &err) < 0) {
		log_error(NULL, "%s", err.msg);
		return JOBDIR_REFUSED;
	}
	if (jobdir_job_config(dir, dir_real, &jf, report, op, n_op, &cfg, &err) < 0) {
		log_error(NULL, "%s", err.msg);
		code = JOBDIR_REFUSED;
	} else {
		code = run(&cfg, ctx);
	}
	jobconf_free(&cfg);
	job_file_free(&jf);
	return code;
}

int jobdir_run(const char *dir, const struct jobdir_op *op, size_t n_op, jobdir_runner *run,
	       void *ctx, int *ran, int *failed, struct tr_error *err)
{
	char path[4096], report[4096];
	char **jobs;
	size_t i, n;
	uid_t uid = geteuid();
	struct stat st;
	char *real = NULL;
	int lock, r = -1;

	*ran = *failed = 0;
	if (check_op(op, n_op, err) < 0)
		return -1;
	if (check_dir(dir, uid, err) < 0)
		return -1;
	for (i = 0; i < sizeof(subdirs) / sizeof(subdirs[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, subdirs[i]);
		if (check_dir(path, uid, err) < 0)
			return -1;
	}
	snprintf(path, sizeof(path), "%s/.lock", dir);
	lock = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0600);
	if (lock < 0 || fstat(lock, &st) < 0 || !S_ISREG(st.st_mode)) {
		tr_error_set(err, TR_ERR_LOCAL, "cannot open %s: %s", path,
			     lock < 0 ? (errno == ELOOP ? "a symbolic link" : strerror(errno))
			     : "not a regular file");
		if (lock >= 0)
			close(lock);
		return -1;
	}
	if (flock(lock, LOCK_EX | LOCK_NB) < 0) {
		close(lock);
		if (errno == EWOULDBLOCK) {
			log_info(NULL, "spool %s: another run holds the lock; leaving it the work", dir);
			return 0;
		}
		tr_error_set(err, TR_ERR_LOCAL, "cannot lock %s: %s", path, strerror(errno));
		return -1;
	}
	real = realpath(dir, NULL);

	/* Whatever is in running/ was left by a run that died. */
	snprintf(path, sizeof(path), "%s/running", dir);
	jobs = list_jobs(path, &n, err);
	if (jobs == NULL)
		goto out;
	for (i = 0; i < n; i++) {
		log_warn(NULL, "spool %s: %s was interrupted; running it again", dir, jobs[i]);
		if (move(dir, "running", "pending", jobs[i]) < 0)
			log_error(NULL, "spool %s: cannot move %s back to pending: %s", dir, jobs[i],
				  strerror(errno));
	}
	free_list(jobs, n);

	snprintf(path, sizeof(path), "%s/pending", dir);
	jobs = list_jobs(path, &n, err);
	if (jobs == NULL)
		goto out;
	for (i = 0; i < n && !net_cancelled(); i++) {
		const char *dest;
		char rname[4096], why[160];
		int code, fd;

		snprintf(path, sizeof(path), "%s/pending/%s", dir, jobs[i]);
		{
			struct stat pst;

			/* a paused job waits for its day (see below) */
			if (lstat(path, &pst) == 0 && pst.st_mtime > time(NULL)) {
				log_debug(NULL, "spool %s: %s waits until its budget's day", dir,
					  jobs[i]);
				continue;
			}
		}
		fd = open_job(path, uid, why, sizeof(why));
		if (fd < 0 && why[0] == '\0')
			continue;       /* gone meanwhile (a panel took it back) */
		if (fd < 0) {
			(*failed)++;
			if (move(dir, "pending", "failed", jobs[i]) < 0)
				log_error(NULL, "spool %s: %s refused: %s; cannot move it to failed/: "
					  "%s", dir, jobs[i], why, strerror(errno));
			else
				log_error(NULL, "spool %s: %s refused: %s; moved to failed/", dir,
					  jobs[i], why);
			continue;
		}
		if (move(dir, "pending", "running", jobs[i]) < 0) {
			/* Gone meanwhile (a panel took it back): not ours. */
			close(fd);
			continue;
		}
		snprintf(path, sizeof(path), "%s/running/%s", dir, jobs[i]);
		snprintf(rname, sizeof(rname), "%.*s.json", (int)(strlen(jobs[i]) - 4), jobs[i]);
		snprintf(report, sizeof(report), "%s/running/%s", dir, rname);
		log_info(NULL, "spool %s: running %s", dir, jobs[i]);
		code = run_job(fd, path, report, dir, real, op, n_op, run, ctx);
		close(fd);
		(*ran)++;
		if (net_cancelled()) {
			/* Stopped half way: back to pending for the next run. */
			move(dir, "running", "pending", jobs[i]);
			unlink(report);
			break;
		}
		if (code == JOBDIR_LATER) {
			/* A day budget is spent: back to pending, not run again
			 * before the next 00:00 UTC (its mtime says when). */
			time_t next = time(NULL) / 86400 * 86400 + 86400;
			struct timespec ts[2] = { { next, 0 }, { next, 0 } };

			unlink(report);
			if (move(dir, "running", "pending", jobs[i]) < 0) {
				log_error(NULL, "spool %s: cannot move %s back to pending: %s", dir,
					  jobs[i], strerror(errno));
				continue;
			}
			snprintf(path, sizeof(path), "%s/pending/%s", dir, jobs[i]);
			if (utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW) < 0)
				log_warn(NULL, "spool %s: %s: cannot date it to its next day (%s): "
					 "the next spool run takes it again", dir, jobs[i],
					 strerror(errno));
			log_info(NULL, "spool %s: %s paused (a day budget is spent): back in "
				 "pending/ until 00:00 UTC", dir, jobs[i]);
			continue;
		}
		dest = code == 0 ? "done" : "failed";
		if (code != 0)
			(*failed)++;
		if (move(dir, "running", dest, jobs[i]) < 0)
			log_error(NULL, "spool %s: cannot move %s to %s: %s", dir, jobs[i], dest,
				  strerror(errno));
		move(dir, "running", dest, rname);
		log_info(NULL, "spool %s: %s %s (exit %d)", dir, jobs[i], dest, code);
	}
	free_list(jobs, n);
	r = 0;
out:
	free(real);
	flock(lock, LOCK_UN);
	close(lock);
	return r;
}
