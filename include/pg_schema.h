/* pg_schema: the tables trasloco keeps in PostgreSQL, and their versions.
 *
 * One database holds everything the fleet shares (README "Fleet"): the
 * state (st_*: accounts, folders, the UID ledger, the account leases; see
 * state_pg.c), the queue (q_jobs, q_accounts, q_workers, and since version
 * 2 q_folders and q_failures, what an account's last copy did; queue.c)
 * and the cluster-wide session caps (q_caps, q_cap_logins, q_sessions;
 * caps_pg.c).
 * The DDL of every version is here, in one place, so that one transaction
 * takes a database from any older version to this one.
 *
 * `trasloco queue init` creates or upgrades (pg_schema_init); every other
 * user checks the version on connect (pg_schema_check) and refuses a
 * database of another version with the command to run.
 *
 * Threading: as pg.h (one connection, one thread at a time).
 */
#ifndef TRASLOCO_PG_SCHEMA_H
#define TRASLOCO_PG_SCHEMA_H

#include "error.h"
#include "pg.h"

/* The version this trasloco reads and writes. */
int pg_schema_version(void);
/* Create the tables or bring them to pg_schema_version(), all or none,
 * under a lock that makes concurrent inits wait for each other.
 * *from_r: the version found (0: an empty database). */
int pg_schema_init(struct pg *pg, int *from_r, struct tr_error *err);
/* The same up to version target (1..pg_schema_version()) only: for the
 * tests of upgrades, which need a database of an older version. */
int pg_schema_init_to(struct pg *pg, int target, int *from_r, struct tr_error *err);
/* 0 when the database is at pg_schema_version(); else -1 with err
 * (TR_ERR_USAGE) naming `trasloco queue init`. */
int pg_schema_check(struct pg *pg, struct tr_error *err);

#endif
