/* pg: one connection to PostgreSQL; see pg.h. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "pg.h"

/* Statements with parameters are prepared once per connection: PostgreSQL
 * then plans them once, not at every call (about 0.4 ms of a ledger
 * write's 0.8 ms).  Keyed by the text itself (callers may build it). */
#define PG_PREPARED_MAX 96

struct pg_prepared {
	uint64_t hash;
	char *sql;
};

struct pg {
	PGconn *conn;
	char *dsn;          /* kept to connect again; never shown */
	bool in_tx;
	char where[256];
	char sqlstate[6];
	struct pg_prepared prep[PG_PREPARED_MAX];   /* of this connection */
	int n_prep;
};

static void forget_prepared(struct pg *pg)
{
	for (int i = 0; i < pg->n_prep; i++)
		free(pg->prep[i].sql);
	pg->n_prep = 0;
}

static uint64_t fnv1a(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

bool pg_is_dsn(const char *location)
{
	return location != NULL && (strncmp(location, "postgresql://", 13) == 0 ||
				    strncmp(location, "postgres://", 11) == 0);
}

bool pg_is_conninfo(const char *location)
{
	PQconninfoOption *opts;
	char *msg = NULL;

	if (location == NULL || strchr(location, '=') == NULL || pg_is_dsn(location))
		return false;
	opts = PQconninfoParse(location, &msg);
	PQfreemem(msg);
	if (opts == NULL)
		return false;
	PQconninfoFree(opts);
	return true;
}

bool pg_dsn_has_password(const char *dsn)
{
	PQconninfoOption *opts, *o;
	char *msg = NULL;
	bool has = false;

	if (dsn == NULL)
		return false;
	opts = PQconninfoParse(dsn, &msg);
	if (opts == NULL) {
		/* unparseable: look for the obvious forms, to be safe */
		PQfreemem(msg);
		return strstr(dsn, "password") != NULL || strchr(dsn, '@') != NULL;
	}
	for (o = opts; o->keyword != NULL; o++)
		if (strcmp(o->keyword, "password") == 0 && o->val != NULL && o->val[0] != '\0')
			has = true;
	PQconninfoFree(opts);
	return has;
}

static void set_where(struct pg *pg)
{
	const char *u = PQuser(pg->conn), *h = PQhost(pg->conn), *p = PQport(pg->conn),
		   *d = PQdb(pg->conn);

	snprintf(pg->where, sizeof(pg->where), "PostgreSQL %s@%s:%s/%s", u ? u : "?",
		 h ? h : "?", p ? p : "?", d ? d : "?");
}

/* libpq's message, one line, without a trailing newline. */
static void conn_msg(PGconn *c, char *buf, size_t len)
{
	const char *m = c != NULL ? PQerrorMessage(c) : "out of memory";
	size_t i, k = 0;

	for (i = 0; m[i] != '\0' && k + 1 < len; i++)
		buf[k++] = m[i] == '\n' || m[i] == '\r' ? ' ' : m[i];
	while (k > 0 && buf[k - 1] == ' ')
		k--;
	buf[k] = '\0';
}

/* The server's notices (NOTICE, WARNING) go to the debug log, never to
 * stderr as libpq would print them: only the command layer prints. */
static void on_notice(void *arg, const char *message)
{
	(void)arg;
	log_debug(NULL, "PostgreSQL: %.*s", (int)strcspn(message, "\n"), message);
}

static int open_conn(struct pg *pg, struct tr_error *err)
{
	/* our defaults first, the DSN last: libpq keeps the last value of a
	 * keyword, so whatever the DSN says wins */
	const char *keys[] = { "application_name", "connect_timeout", "keepalives",
			       "keepalives_idle", "keepalives_interval", "keepalives_count",
			       "dbname", NULL };
	const char *vals[] = { "trasloco", "10", "1", "30", "10", "3", pg->dsn, NULL };
	char msg[512];

	if (pg->conn != NULL)
		PQfinish(pg->conn);
	forget_prepared(pg);
	pg->conn = PQconnectdbParams(keys, vals, 1);
	if (pg->conn == NULL || PQstatus(pg->conn) != CONNECTION_OK) {
		conn_msg(pg->conn, msg, sizeof(msg));
		tr_error_set(err, strstr(msg, "invalid") != NULL && strstr(msg, "option") != NULL ?
			     TR_ERR_USAGE : TR_ERR_TEMP,
			     "cannot connect to PostgreSQL: %s", msg);
		if (pg->conn != NULL) {
			if (PQhost(pg->conn) != NULL)
				set_where(pg);
			PQfinish(pg->conn);
		}
		pg->conn = NULL;
		return -1;
	}
	set_where(pg);
	PQsetNoticeProcessor(pg->conn, on_notice, NULL);
	/* a lock wait is ours to bound, never the server's to make endless */
	{
		PGresult *r = PQexec(pg->conn, "SET lock_timeout = '30s'; SET TIME ZONE 'UTC'");

		PQclear(r);
	}
	return 0;
}

int pg_connect(const char *dsn, struct pg **pg_r, struct tr_error *err)
{
	struct pg *pg = calloc(1, sizeof(*pg));
	char *msg = NULL;
	PQconninfoOption *opts;

	*pg_r = NULL;
	if (pg == NULL || (pg->dsn = strdup(dsn)) == NULL) {
		free(pg);
		tr_error_set(err, TR_ERR_LOCAL, "out of memory");
		return -1;
	}
	opts = PQconninfoParse(dsn, &msg);
	if (opts == NULL) {
		tr_error_set(err, TR_ERR_USAGE, "not a PostgreSQL connection string: %s",
			     msg != NULL ? msg : "out of memory");
		PQfreemem(msg);
		pg_close(pg);
		return -1;
	}
	PQconninfoFree(opts);
	snprintf(pg->where, sizeof(pg->where), "PostgreSQL");
	if (open_conn(pg, err) < 0) {
		pg_close(pg);
		return -1;
	}
	*pg_r = pg;
	return 0;
}

void pg_close(struct pg *pg)
{
	if (pg == NULL)
		return;
	if (pg->conn != NULL)
		PQfinish(pg->conn);
	forget_prepared(pg);
	if (pg->dsn != NULL) {
		memset(pg->dsn, 0, strlen(pg->dsn));
		free(pg->dsn);
	}
	free(pg);
}

const char *pg_where(const struct pg *pg)
{
	return pg->where;
}

bool pg_connected(const struct pg *pg)
{
	return pg->conn != NULL && PQstatus(pg->conn) == CONNECTION_OK;
}

const char *pg_sqlstate(const struct pg *pg)
{
	return pg->sqlstate;
}

static int ensure_conn(struct pg *pg, struct tr_error *err)
{
	if (pg_connected(pg))
		return 0;
	if (pg->in_tx) {
		tr_error_set(err, TR_ERR_TEMP, "%s: the connection broke inside a transaction",
			     pg->where);
		return -1;
	}
	return open_conn(pg, err);
}

static PGresult *finish(struct pg *pg, PGresult *r, struct tr_error *err)
{
	ExecStatusType s = r != NULL ? PQresultStatus(r) : PGRES_FATAL_ERROR;
	char msg[512];
	const char *st;

	pg->sqlstate[0] = '\0';
	if (s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK)
		return r;
	st = r != NULL ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	if (st != NULL)
		snprintf(pg->sqlstate, sizeof(pg->sqlstate), "%s", st);
	if (r != NULL && PQresultErrorMessage(r)[0] != '\0') {
		const char *m = PQresultErrorMessage(r);
		size_t i, k = 0;

		for (i = 0; m[i] != '\0' && k + 1 < sizeof(msg); i++)
			msg[k++] = m[i] == '\n' || m[i] == '\r' ? ' ' : m[i];
		while (k > 0 && msg[k - 1] == ' ')
			k--;
		msg[k] = '\0';
	} else {
		conn_msg(pg->conn, msg, sizeof(msg));
	}
	/* a broken connection (or a server shutting down: class 57, 08) is
	 * temporary; anything else the server refused is ours to report */
	tr_error_set(err, !pg_connected(pg) || strncmp(pg->sqlstate, "08", 2) == 0 ||
			  strncmp(pg->sqlstate, "57", 2) == 0 ? TR_ERR_TEMP : TR_ERR_LOCAL,
		     "%s: %s%s%s", pg->where, msg, pg->sqlstate[0] ? " (SQLSTATE " : "",
		     pg->sqlstate[0] ? pg->sqlstate : "");
	if (pg->sqlstate[0])
		strncat(err->msg, ")", sizeof(err->msg) - strlen(err->msg) - 1);
	PQclear(r);
	return NULL;
}

PGresult *pg_execb(struct pg *pg, const char *sql, int n, const char *const *params,
		   const int *lens, struct tr_error *err)
{
	int formats[16];
	int i;

	if (n > 16) {
		tr_error_set(err, TR_ERR_LOCAL, "pg_execb: too many parameters");
		return NULL;
	}
	for (i = 0; i < n; i++)
		formats[i] = lens != NULL && lens[i] > 0 ? 1 : 0;
	if (ensure_conn(pg, err) < 0)
		return NULL;
	/* without parameters, PQexec: it takes several statements at once
	 * (schema steps) */
	if (n == 0)
		return finish(pg, PQexec(pg->conn, sql), err);
	{
		uint64_t h = fnv1a(sql);
		char name[24];
		int k;

		for (k = 0; k < pg->n_prep; k++)
			if (pg->prep[k].hash == h && strcmp(pg->prep[k].sql, sql) == 0)
				break;
		if (k == pg->n_prep && pg->n_prep < PG_PREPARED_MAX) {
			PGresult *r;

			pg->prep[k].sql = strdup(sql);
			if (pg->prep[k].sql != NULL) {
				snprintf(name, sizeof(name), "tr%d", k);
				r = finish(pg, PQprepare(pg->conn, name, sql, n, NULL), err);
				if (r == NULL) {
					free(pg->prep[k].sql);
					return NULL;
				}
				PQclear(r);
				pg->prep[k].hash = h;
				pg->n_prep++;
			}
		}
		if (k < pg->n_prep) {
			snprintf(name, sizeof(name), "tr%d", k);
			return finish(pg, PQexecPrepared(pg->conn, name, n, params, lens, formats, 0),
				      err);
		}
	}
	/* more distinct statements than the cache holds: unprepared */
	return finish(pg, PQexecParams(pg->conn, sql, n, NULL, params, lens, formats, 0), err);
}

PGresult *pg_exec(struct pg *pg, const char *sql, int n, const char *const *params,
		  struct tr_error *err)
{
	return pg_execb(pg, sql, n, params, NULL, err);
}

int pg_run(struct pg *pg, const char *sql, int n, const char *const *params,
	   struct tr_error *err)
{
	PGresult *r = pg_exec(pg, sql, n, params, err);

	if (r == NULL)
		return -1;
	PQclear(r);
	return 0;
}

int pg_begin(struct pg *pg, struct tr_error *err)
{
	if (pg_run(pg, "BEGIN", 0, NULL, err) < 0)
		return -1;
	pg->in_tx = true;
	return 0;
}

int pg_commit(struct pg *pg, struct tr_error *err)
{
	int r = pg_run(pg, "COMMIT", 0, NULL, err);

	pg->in_tx = false;
	return r;
}

void pg_rollback(struct pg *pg)
{
	if (!pg->in_tx)
		return;
	pg->in_tx = false;
	if (pg_connected(pg))
		PQclear(PQexec(pg->conn, "ROLLBACK"));
}

int64_t pg_int(const PGresult *r, int row, int col)
{
	if (PQgetisnull(r, row, col))
		return 0;
	return strtoll(PQgetvalue(r, row, col), NULL, 10);
}

const char *pg_str(const PGresult *r, int row, int col)
{
	if (PQgetisnull(r, row, col))
		return NULL;
	return PQgetvalue(r, row, col);
}
