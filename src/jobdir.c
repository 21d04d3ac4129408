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

int jobdir_run(const char *dir, jobdir_runner *run, void *ctx, int *ran, int *failed,
	       struct tr_error *err)
{
	char path[4096], report[4096];
	char **jobs;
	size_t i, n;
	uid_t uid = geteuid();
	struct stat st;
	int lock, r = -1;

	*ran = *failed = 0;
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
		code = run(fd, path, report, dir, ctx);
		close(fd);
		(*ran)++;
		if (net_cancelled()) {
			/* Stopped half way: back to pending for the next run. */
			move(dir, "running", "pending", jobs[i]);
			unlink(report);
			break;
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
	flock(lock, LOCK_UN);
	close(lock);
	return r;
}
