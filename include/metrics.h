/* metrics: the queue's status (queue_status's JSON, as api.c reads it) as
 * Prometheus text (exposition format 0.0.4), for GET /metrics.
 *
 * Gauges of now (jobs by state, accounts by status per job, sessions in
 * use and their caps per job and side, live workers) and counters that
 * only grow while a job exists (messages copied, already present, failed;
 * bytes; sessions refused for a limit), accounts failed or partial by
 * error kind, and the seconds of each job's last finished pass.  Label
 * values are escaped as the
 * format says; a job's name is not a label (a panel's names may be
 * anything): the job's id is.
 *
 * Ownership: the caller's document; the text is the caller's to free.
 * Threading: none.
 */
#ifndef TRASLOCO_METRICS_H
#define TRASLOCO_METRICS_H

#include <jansson.h>

/* NULL when out of memory. */
char *metrics_render(const json_t *status);

#endif
