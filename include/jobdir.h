/* jobdir: `trasloco spool DIR`, the way cron and panels hand jobs over.
 *
 * DIR/pending/NAME.job waits; a spool run takes the directory's lock
 * (flock on DIR/.lock: a second run at the same time leaves at once, so
 * overlapping cron runs never run one job twice), moves each pending job to
 * DIR/running/, runs it, and moves it with its report (NAME.json) to
 * DIR/done/ (every account ok) or DIR/failed/ (anything else).  A job
 * found in running/ belongs to a run that died: it goes back to pending/
 * and runs again, which the state store makes safe.  Safe to start every
 * few minutes.  A job that paused (JOBDIR_LATER) goes back to pending/ with
 * its modification time set to when it may run again.
 *
 * Trust.  The spool belongs to the user who runs it (root running the
 * spool of another user is refused: that user could swap a directory for
 * a link under a root process).  DIR and its subdirectories are checked
 * with lstat: real directories, not symbolic links, of that owner, not
 * writable by group or others.  A pending job is taken only when it is a
 * regular file of that owner: it is looked at with lstat and opened with
 * O_NOFOLLOW|O_NONBLOCK, so a FIFO, a device, a socket or a link is never
 * opened for reading (nothing can make the spool wait under its lock);
 * anything else is moved to failed/ with a log line saying why.  Its
 * settings are read from that descriptor, once, and held to the spool's
 * rules (jobconf.h, JOBCONF_SPOOL_JOB): a refused one fails the job with
 * its file, line and key.
 */
#ifndef TRASLOCO_JOBDIR_H
#define TRASLOCO_JOBDIR_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"
#include "job.h"
#include "jobconf.h"

/* Settings the operator gives every job, applied after the job's own, in
 * order (the spool's --config file, then its command line), so that they
 * win: origin JOBCONF_OPERATOR with the config file's directory, or
 * JOBCONF_CALLER. */
struct jobdir_op {
	const struct job_file *settings;
	struct jobconf_origin origin;
};

/* The spool's --config file (job-file syntax, any setting but accounts):
 * a regular file (not a link) owned by root and writable by no one else,
 * since it may turn certificate checks off for every job.  TR_ERR_USAGE
 * when refused. */
int jobdir_config_read(const char *path, struct job_file *out, struct tr_error *err);

/* A job's configuration (kind JOB_RUN), as every spooled job gets it: the
 * job file's settings as a JOBCONF_SPOOL_JOB of dir (dir_real its
 * realpath, for absolute paths), state DIR/state/NAME unless the job sets
 * one (a re-run of the job resumes it), the operator's settings, the
 * report at report (NULL: none set), named after job->path; finished.
 * Returns 0, or -1 with err naming the job file, line and key; cfg is to
 * be freed with jobconf_free in both cases. */
int jobdir_job_config(const char *dir, const char *dir_real, const struct job_file *job,
		      const char *report, const struct jobdir_op *op, size_t n_op,
		      struct job_config *cfg, struct tr_error *err);

/* Run one job (its configuration finished, see jobdir_job_config).
 * Returns a process exit code (0 = done). */
#define JOBDIR_REFUSED 2        /* a job whose file or settings were refused */
/* Returned by a runner when the job paused (a day budget is spent, the
 * command layer's exit 7): it goes back to pending/ dated the next 00:00
 * UTC, and the spool takes no pending job dated in the future. */
#define JOBDIR_LATER 7
typedef int jobdir_runner(const struct job_config *cfg, void *ctx);

/* Returns 0 when the spool was processed (or is being processed by another
 * run), -1 with err when it could not be: TR_ERR_USAGE for operator
 * settings that are refused (a bad value, or dst-admin without dst: the
 * destination an admin password goes to is not a job's choice), else a bad
 * or untrustworthy directory.  *ran counts the jobs run, *failed those that
 * went to failed/ (refused ones included).  DIR/state is created for the
 * jobs' state. */
int jobdir_run(const char *dir, const struct jobdir_op *op, size_t n_op, jobdir_runner *run,
	       void *ctx, int *ran, int *failed, struct tr_error *err);

#endif
