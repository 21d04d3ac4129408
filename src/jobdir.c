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

static const char *const subdirs[] = { "pending", "running", "done", "failed" };

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

int jobdir_run(const char *dir, jobdir_runner *run, void *ctx, int *ran, int *failed,
	       struct tr_error *err)
{
	char path[4096], report[4096];
	char **jobs;
	size_t i, n;
	int lock, r = -1;

	*ran = *failed = 0;
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		tr_error_set(err, TR_ERR_LOCAL, "cannot create %s: %s", dir, strerror(errno));
		return -1;
	}
	for (i = 0; i < sizeof(subdirs) / sizeof(subdirs[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, subdirs[i]);
		if (mkdir(path, 0700) < 0 && errno != EEXIST) {
			tr_error_set(err, TR_ERR_LOCAL, "cannot create %s: %s", path, strerror(errno));
			return -1;
		}
	}
	snprintf(path, sizeof(path), "%s/.lock", dir);
	lock = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (lock < 0) {
		tr_error_set(err, TR_ERR_LOCAL, "cannot open %s: %s", path, strerror(errno));
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
		char rname[4096];
		int code;

		if (move(dir, "pending", "running", jobs[i]) < 0) {
			/* Gone meanwhile (a panel took it back): not ours. */
			continue;
		}
		snprintf(path, sizeof(path), "%s/running/%s", dir, jobs[i]);
		snprintf(rname, sizeof(rname), "%.*s.json", (int)(strlen(jobs[i]) - 4), jobs[i]);
		snprintf(report, sizeof(report), "%s/running/%s", dir, rname);
		log_info(NULL, "spool %s: running %s", dir, jobs[i]);
		code = run(path, report, dir, ctx);
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
