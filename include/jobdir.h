/* jobdir: `trasloco spool DIR`, the way cron and panels hand jobs over.
 *
 * DIR/pending/NAME.job waits; a spool run takes the directory's lock
 * (flock on DIR/.lock: a second run at the same time leaves at once, so
 * overlapping cron runs never run one job twice), moves each pending job to
 * DIR/running/, runs it, and moves it with its report (NAME.json) to
 * DIR/done/ (every account ok) or DIR/failed/ (anything else).  A job
 * found in running/ belongs to a run that died: it goes back to pending/
 * and runs again, which the state store makes safe.  Safe to start every
 * few minutes.
 *
 * Trust.  The spool belongs to the user who runs it (root running the
 * spool of another user is refused: that user could swap a directory for
 * a link under a root process).  DIR and its subdirectories are checked
 * with lstat: real directories, not symbolic links, of that owner, not
 * writable by group or others.  A pending job is taken only when it is a
 * regular file of that owner: it is looked at with lstat and opened with
 * O_NOFOLLOW|O_NONBLOCK, so a FIFO, a device, a socket or a link is never
 * opened for reading (nothing can make the spool wait under its lock);
 * anything else is moved to failed/ with a log line saying why.
 */
#ifndef TRASLOCO_JOBDIR_H
#define TRASLOCO_JOBDIR_H

#include <stdbool.h>

#include "error.h"

/* Run one job: fd is the job file, opened and checked (read it from
 * there, not by path; jobdir closes it), job its path (in running/),
 * report the path its JSON report must be written to.  Returns a process
 * exit code (0 = done). */
typedef int jobdir_runner(int fd, const char *job, const char *report, const char *spool_dir,
			  void *ctx);

/* Returns 0 when the spool was processed (or is being processed by another
 * run), -1 with err when it could not be (bad or untrustworthy directory).
 * *ran counts the jobs run, *failed those that went to failed/ (refused
 * ones included).  DIR/state is created for the runner's use. */
int jobdir_run(const char *dir, jobdir_runner *run, void *ctx, int *ran, int *failed,
	       struct tr_error *err);

#endif
