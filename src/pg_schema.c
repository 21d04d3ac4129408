/* pg_schema: trasloco's tables in PostgreSQL; see pg_schema.h. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>

#include "pg_schema.h"

/* Version 1.  Names, logins and folder names are bytea where a server or a
 * CSV may hand us bytes that are not UTF-8 (the database's text must be);
 * the rest is text.  Times are the database's (now()): leases are judged
 * by one clock, whatever the workers' clocks say. */
static const char schema_v1[] =
	/* ---- state (state_pg.c): the logical schema of state.h ---- */
	"CREATE TABLE st_accounts ("
	"  id bigserial PRIMARY KEY,"
	"  key bytea NOT NULL UNIQUE,"
	"  status text NOT NULL DEFAULT 'new',"
	"  error text,"
	"  updated timestamptz NOT NULL DEFAULT now());"
	/* one holder per account at a time, for `until`: renewed by its
	 * holder's heartbeat; an expired lease is anyone's to take */
	"CREATE TABLE st_locks ("
	"  account_id bigint PRIMARY KEY REFERENCES st_accounts(id) ON DELETE CASCADE,"
	"  holder text NOT NULL,"
	"  until timestamptz NOT NULL);"
	"CREATE TABLE st_folders ("
	"  id bigserial PRIMARY KEY,"
	"  account_id bigint NOT NULL REFERENCES st_accounts(id) ON DELETE CASCADE,"
	"  src_name bytea NOT NULL,"
	"  dst_name bytea NOT NULL,"
	"  src_uidvalidity bigint NOT NULL DEFAULT 0,"
	"  dst_uidvalidity bigint NOT NULL DEFAULT 0,"
	"  src_uidnext bigint NOT NULL DEFAULT 0,"
	"  src_modseq bigint NOT NULL DEFAULT 0,"
	"  src_messages bigint NOT NULL DEFAULT 0,"
	"  UNIQUE (account_id, src_name));"
	"CREATE TABLE st_messages ("
	"  folder_id bigint NOT NULL REFERENCES st_folders(id) ON DELETE CASCADE,"
	"  src_uid bigint NOT NULL,"
	"  dst_uid bigint NOT NULL DEFAULT 0,"
	"  state smallint NOT NULL,"
	"  fp bytea,"
	"  dst_uidnext bigint NOT NULL DEFAULT 0,"
	"  flags text NOT NULL DEFAULT '',"
	"  error text,"
	"  PRIMARY KEY (folder_id, src_uid));"
	"CREATE INDEX st_messages_unsettled ON st_messages (folder_id) WHERE state <> 1;"

	/* ---- queue (queue.c) ---- */
	/* a job: its settings as job-file text (jobconf_text: no password,
	 * only where they were read from), the destination admin's password
	 * sealed (seal.h) */
	"CREATE TABLE q_jobs ("
	"  id bigserial PRIMARY KEY,"
	"  name text NOT NULL,"
	"  config text NOT NULL,"
	"  src text NOT NULL,"
	"  dst text NOT NULL,"
	"  admin_password bytea,"
	"  skipped text NOT NULL DEFAULT '[]',"
	"  created timestamptz NOT NULL DEFAULT now(),"
	"  cancelled timestamptz);"
	/* one row per account of a job; passwords sealed.  state:
	 *   pending  waiting for a worker (not before not_before);
	 *   running  claimed by worker until lease_until (an expired lease
	 *            makes it claimable again);
	 *   ok / partial / failed  the last run's outcome;
	 *   cancelled  the job was cancelled before it ran. */
	"CREATE TABLE q_accounts ("
	"  id bigserial PRIMARY KEY,"
	"  job_id bigint NOT NULL REFERENCES q_jobs(id) ON DELETE CASCADE,"
	"  line integer NOT NULL DEFAULT 0,"
	"  email bytea NOT NULL,"
	"  src_user bytea,"
	"  dst_user bytea,"
	"  password bytea,"
	"  dst_password bytea,"
	"  state text NOT NULL DEFAULT 'pending' CHECK (state IN"
	"    ('pending', 'running', 'ok', 'partial', 'failed', 'cancelled')),"
	"  worker text,"
	"  lease_until timestamptz,"
	"  not_before timestamptz,"
	"  attempts integer NOT NULL DEFAULT 0,"
	"  takeovers integer NOT NULL DEFAULT 0,"
	"  error text,"
	"  copied bigint NOT NULL DEFAULT 0,"
	"  present bigint NOT NULL DEFAULT 0,"
	"  failed_msgs bigint NOT NULL DEFAULT 0,"
	"  bytes bigint NOT NULL DEFAULT 0,"
	"  folders_done integer NOT NULL DEFAULT 0,"
	"  folders_total integer NOT NULL DEFAULT 0,"
	"  started timestamptz,"
	"  finished timestamptz,"
	"  seconds double precision NOT NULL DEFAULT 0,"
	"  UNIQUE (job_id, email));"
	/* claims walk this in order; the heartbeat finds a worker's accounts
	 * by the second */
	"CREATE INDEX q_accounts_todo ON q_accounts (job_id, id)"
	"  WHERE state IN ('pending', 'running');"
	"CREATE INDEX q_accounts_worker ON q_accounts (worker) WHERE state = 'running';"
	/* the workers that ever ran, with their last heartbeat */
	"CREATE TABLE q_workers ("
	"  id text PRIMARY KEY,"
	"  host text NOT NULL,"
	"  pid integer NOT NULL,"
	"  egress text NOT NULL DEFAULT '',"
	"  parallel integer NOT NULL DEFAULT 1,"
	"  started timestamptz NOT NULL DEFAULT now(),"
	"  seen timestamptz NOT NULL DEFAULT now(),"
	"  stopped timestamptz);"

	/* ---- cluster-wide session caps (caps_pg.c) ---- */
	/* per job and side ('src', 'dst'): the caps as submitted, max_total
	 * lowered by refusals; per_egress: the per-account cap counts the
	 * sessions of one egress (workers' --egress), else of all workers */
	"CREATE TABLE q_caps ("
	"  job_id bigint NOT NULL REFERENCES q_jobs(id) ON DELETE CASCADE,"
	"  side text NOT NULL CHECK (side IN ('src', 'dst')),"
	"  max_per_account integer NOT NULL,"
	"  max_total integer NOT NULL,"
	"  per_egress boolean NOT NULL DEFAULT false,"
	"  PRIMARY KEY (job_id, side));"
	/* a login's cap lowered by a refusal (per egress when per_egress) */
	"CREATE TABLE q_cap_logins ("
	"  job_id bigint NOT NULL,"
	"  side text NOT NULL,"
	"  login bytea NOT NULL,"
	"  egress text NOT NULL DEFAULT '',"
	"  cap integer NOT NULL,"
	"  PRIMARY KEY (job_id, side, login, egress),"
	"  FOREIGN KEY (job_id, side) REFERENCES q_caps ON DELETE CASCADE);"
	/* a session open (or being opened) now: counted while until > now(),
	 * renewed by its worker's heartbeat, deleted when it closes */
	"CREATE TABLE q_sessions ("
	"  id bigserial PRIMARY KEY,"
	"  job_id bigint NOT NULL,"
	"  side text NOT NULL,"
	"  login bytea NOT NULL,"
	"  egress text NOT NULL DEFAULT '',"
	"  worker text NOT NULL,"
	"  until timestamptz NOT NULL,"
	"  FOREIGN KEY (job_id, side) REFERENCES q_caps ON DELETE CASCADE);"
	"CREATE INDEX q_sessions_login ON q_sessions (job_id, side, login);"
	"CREATE INDEX q_sessions_worker ON q_sessions (worker);";

/* Version 2: what an account's last run did per folder, the messages it
 * could not copy, its last verify, and passes (README "Fleet": delta,
 * verify and final passes of a queued job, delta passes on a schedule). */
static const char schema_v2[] =
	/* a job's passes: the kind of the latest one (the first run is 'run'),
	 * how many so far (the first run included), when it began (NULL: the
	 * job's creation), delta passes every pass_every seconds (NULL: none)
	 * until a final pass was asked (final) */
	"ALTER TABLE q_jobs"
	"  ADD COLUMN pass_kind text NOT NULL DEFAULT 'run' CHECK (pass_kind IN"
	"    ('run', 'delta', 'verify', 'final')),"
	"  ADD COLUMN pass_count integer NOT NULL DEFAULT 1,"
	"  ADD COLUMN pass_started timestamptz,"
	"  ADD COLUMN pass_every integer CHECK (pass_every > 0),"
	"  ADD COLUMN final boolean NOT NULL DEFAULT false,"
	/* the pass before the latest, once it had finished (every account
	 * done): its kind and seconds from its start to its last finish */
	"  ADD COLUMN last_pass_kind text,"
	"  ADD COLUMN last_pass_seconds double precision;"
	/* per account: what its pending or running (else its last) claim does:
	 * copy ('run', 'delta', 'final': a final pass's copy) or verify
	 * ('verify', 'final-verify'); the last copy's outcome and error (a
	 * verify leaves them; the state shows them again after it); messages
	 * not copied beyond those listed in q_failures; the last verify */
	"ALTER TABLE q_accounts"
	"  ADD COLUMN pass text NOT NULL DEFAULT 'run' CHECK (pass IN"
	"    ('run', 'delta', 'verify', 'final', 'final-verify')),"
	"  ADD COLUMN outcome text CHECK (outcome IN ('ok', 'partial', 'failed')),"
	"  ADD COLUMN outcome_error text,"
	"  ADD COLUMN failures_more bigint NOT NULL DEFAULT 0,"
	"  ADD COLUMN verify_at timestamptz,"
	"  ADD COLUMN verify_exact boolean,"
	"  ADD COLUMN verify text,"
	/* the kind (tr_error_kind_name) of error and of outcome_error; the
	 * sessions the servers refused for a limit (all attempts, all
	 * passes: they only grow) */
	"  ADD COLUMN error_kind text,"
	"  ADD COLUMN outcome_kind text,"
	"  ADD COLUMN refused_src bigint NOT NULL DEFAULT 0,"
	"  ADD COLUMN refused_dst bigint NOT NULL DEFAULT 0;"
	"UPDATE q_accounts SET outcome = state, outcome_error = error"
	"  WHERE state IN ('ok', 'partial', 'failed');"
	/* the folders of an account's last copy, in plan order; names as
	 * shown (the '/' form), bytes as a server may send them */
	"CREATE TABLE q_folders ("
	"  account_id bigint NOT NULL REFERENCES q_accounts(id) ON DELETE CASCADE,"
	"  idx integer NOT NULL,"
	"  src_name bytea NOT NULL,"
	"  dst_name bytea NOT NULL,"
	"  status text NOT NULL CHECK (status IN ('ok', 'failed')),"
	"  copied bigint NOT NULL DEFAULT 0,"
	"  present bigint NOT NULL DEFAULT 0,"
	"  failed_msgs bigint NOT NULL DEFAULT 0,"
	"  bytes bigint NOT NULL DEFAULT 0,"
	"  error text,"
	"  PRIMARY KEY (account_id, idx));"
	/* the messages that copy could not copy: the first ones (queue.h
	 * QUEUE_FAILURES_KEPT per account), folder order then as they failed */
	"CREATE TABLE q_failures ("
	"  account_id bigint NOT NULL REFERENCES q_accounts(id) ON DELETE CASCADE,"
	"  n integer NOT NULL,"
	"  folder bytea NOT NULL,"
	"  uid bigint NOT NULL,"
	"  reply text NOT NULL,"
	"  PRIMARY KEY (account_id, n));"
	/* queue_schedule looks only at jobs with passes on a schedule */
	"CREATE INDEX q_jobs_scheduled ON q_jobs (id) WHERE pass_every IS NOT NULL"
	"  AND NOT final;";

/* steps[i] takes a database from version i to i + 1; never edit a
 * released step, append one. */
static const char schema_v3[] =
	/* the source admin's password (src-admin), sealed as the destination's
	 * (admin_password) */
	"ALTER TABLE q_jobs ADD COLUMN src_admin_password bytea;";

static const char *const steps[] = {
	schema_v1,
	schema_v2,
	schema_v3,
};

#define SCHEMA_VERSION ((int)(sizeof(steps) / sizeof(steps[0])))

int pg_schema_version(void)
{
	return SCHEMA_VERSION;
}

/* The version recorded, 0 when there is none. */
static int read_version(struct pg *pg, int *v, struct tr_error *err)
{
	PGresult *r = pg_exec(pg, "SELECT to_regclass('trasloco_meta') IS NOT NULL", 0, NULL,
			      err);
	bool exists;

	if (r == NULL)
		return -1;
	exists = pg_str(r, 0, 0) != NULL && pg_str(r, 0, 0)[0] == 't';
	PQclear(r);
	*v = 0;
	if (!exists)
		return 0;
	r = pg_exec(pg, "SELECT value FROM trasloco_meta WHERE key = 'schema'", 0, NULL, err);
	if (r == NULL)
		return -1;
	if (PQntuples(r) == 1 && pg_str(r, 0, 0) != NULL)
		*v = atoi(pg_str(r, 0, 0));
	PQclear(r);
	return 0;
}

int pg_schema_init(struct pg *pg, int *from_r, struct tr_error *err)
{
	return pg_schema_init_to(pg, SCHEMA_VERSION, from_r, err);
}

int pg_schema_init_to(struct pg *pg, int target, int *from_r, struct tr_error *err)
{
	char buf[16];
	const char *p[1] = { buf };
	int v, i;

	if (target < 1 || target > SCHEMA_VERSION) {
		tr_error_set(err, TR_ERR_LOCAL, "no schema version %d", target);
		return -1;
	}

	if (pg_begin(pg, err) < 0)
		return -1;
	/* concurrent inits (every pod of a Deployment at once) wait here */
	if (pg_run(pg, "SELECT pg_advisory_xact_lock(7346501)", 0, NULL, err) < 0 ||
	    read_version(pg, &v, err) < 0)
		goto fail;
	*from_r = v;
	if (v > SCHEMA_VERSION) {
		tr_error_set(err, TR_ERR_USAGE, "%s: the database is of schema version %d, newer "
			     "than this trasloco's %d: upgrade trasloco", pg_where(pg), v, SCHEMA_VERSION);
		goto fail;
	}
	if (v > target) {
		tr_error_set(err, TR_ERR_LOCAL, "%s: the database is of schema version %d already, "
			     "past %d", pg_where(pg), v, target);
		goto fail;
	}
	if (v == 0 && pg_run(pg, "CREATE TABLE trasloco_meta (key text PRIMARY KEY, "
			     "value text NOT NULL)", 0, NULL, err) < 0)
		goto fail;
	for (i = v; i < target; i++)
		if (pg_run(pg, steps[i], 0, NULL, err) < 0) {
			tr_error_prefix(err, "schema step %d -> %d", i, i + 1);
			goto fail;
		}
	snprintf(buf, sizeof(buf), "%d", target);
	if (pg_run(pg, "INSERT INTO trasloco_meta VALUES ('schema', $1) "
		   "ON CONFLICT (key) DO UPDATE SET value = $1", 1, p, err) < 0 ||
	    pg_commit(pg, err) < 0)
		goto fail;
	return 0;
fail:
	pg_rollback(pg);
	return -1;
}

int pg_schema_check(struct pg *pg, struct tr_error *err)
{
	int v;

	if (read_version(pg, &v, err) < 0)
		return -1;
	if (v == SCHEMA_VERSION)
		return 0;
	if (v == 0)
		tr_error_set(err, TR_ERR_USAGE, "%s holds no trasloco tables: run `trasloco queue "
			     "init` with this database first", pg_where(pg));
	else if (v < SCHEMA_VERSION)
		tr_error_set(err, TR_ERR_USAGE, "%s: the database is of schema version %d, this "
			     "trasloco needs %d: run `trasloco queue init` to upgrade it",
			     pg_where(pg), v, SCHEMA_VERSION);
	else
		tr_error_set(err, TR_ERR_USAGE, "%s: the database is of schema version %d, newer "
			     "than this trasloco's %d: upgrade trasloco", pg_where(pg), v, SCHEMA_VERSION);
	return -1;
}
