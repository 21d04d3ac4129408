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
 */
#ifndef TRASLOCO_JOBDIR_H
#define TRASLOCO_JOBDIR_H

#include <stdbool.h>

#include "error.h"

/* Run one job: job is its path (in running/), report the path its JSON
 * report must be written to.  Returns a process exit code (0 = done). */
typedef int jobdir_runner(const char *job, const char *report, const char *spool_dir,
			  void *ctx);

/* Returns 0 when the spool was processed (or is being processed by another
 * run), -1 with err when it could not be (bad directory). *ran counts the
 * jobs run, *failed those that went to failed/. */
int jobdir_run(const char *dir, jobdir_runner *run, void *ctx, int *ran, int *failed,
	       struct tr_error *err);

#endif
