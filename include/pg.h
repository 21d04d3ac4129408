/* pg: one connection to PostgreSQL (libpq), for the modules that keep their
 * data there (state_pg.c, queue.c, caps_pg.c).  Nothing else includes
 * libpq.
 *
 * A DSN is libpq's: "postgresql://user@host:port/db?param=..." or
 * "host=... dbname=...".  Every connection names itself
 * application_name=trasloco, waits at most 10 s to connect and turns TCP
 * keepalives on (a dead peer is noticed in about a minute, not in the
 * kernel's two hours).
 *
 * Reconnection is lazy and safe: when the connection has broken, the next
 * pg_exec first connects again (once; an error if that fails), but never
 * inside a transaction (pg_begin .. pg_commit/pg_rollback): a statement
 * that would run outside the transaction its caller opened fails instead.
 * A statement whose reply was lost is never sent again: the caller does
 * not know whether it ran, and decides.
 *
 * Errors: TR_ERR_TEMP when the server cannot be reached or the connection
 * broke (try again later), TR_ERR_LOCAL for anything the server refused
 * (the SQLSTATE and the server's text in the message, with pg_where()).
 * Messages never hold a password: libpq's own texts do not, and the DSN is
 * shown only as pg_where() (user@host:port/db).
 *
 * Ownership: a struct pg is its creator's; a PGresult returned is the
 * caller's (PQclear).  Threading: a struct pg is used by one thread at a
 * time (its owner serialises); distinct connections are independent.
 */
#ifndef TRASLOCO_PG_H
#define TRASLOCO_PG_H

#include <stdbool.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "error.h"

struct pg;

/* True when location names PostgreSQL ("postgresql://", "postgres://"). */
bool pg_is_dsn(const char *location);
/* True when location is libpq's key=value form ("host=... dbname=...",
 * "service=fleet"): every keyword one libpq knows. */
bool pg_is_conninfo(const char *location);
/* True when the DSN carries a password in itself ("user:pw@", "password=").
 * Such a DSN must not be given on a command line (ps shows it). */
bool pg_dsn_has_password(const char *dsn);

/* Connect.  Returns 0, or -1 with err (TR_ERR_TEMP: unreachable;
 * TR_ERR_USAGE: a DSN libpq cannot parse; TR_ERR_LOCAL: refused). */
int pg_connect(const char *dsn, struct pg **pg_r, struct tr_error *err);
void pg_close(struct pg *pg);
/* "user@host:port/db", for messages. */
const char *pg_where(const struct pg *pg);

/* Run sql with text parameters ($1...; NULL is SQL NULL).  Returns the
 * result (PGRES_COMMAND_OK or PGRES_TUPLES_OK) for the caller to PQclear,
 * or NULL with err. */
PGresult *pg_exec(struct pg *pg, const char *sql, int n, const char *const *params,
		  struct tr_error *err);
/* The same with binary parameters where lens[i] > 0 (bytea), text where 0;
 * results in text. */
PGresult *pg_execb(struct pg *pg, const char *sql, int n, const char *const *params,
		   const int *lens, struct tr_error *err);
/* pg_exec for statements whose result is not needed: 0 or -1. */
int pg_run(struct pg *pg, const char *sql, int n, const char *const *params,
	   struct tr_error *err);

/* Transactions.  pg_rollback never fails (a broken connection has rolled
 * back already) and is a no-op outside a transaction. */
int pg_begin(struct pg *pg, struct tr_error *err);
int pg_commit(struct pg *pg, struct tr_error *err);
void pg_rollback(struct pg *pg);

/* The SQLSTATE of the last error ("40001"), "" when none: callers retry
 * serialization failures and deadlocks ("40001", "40P01"). */
const char *pg_sqlstate(const struct pg *pg);
/* True when the connection is up (as far as libpq knows). */
bool pg_connected(const struct pg *pg);

/* Parse helpers for result fields (text format). */
int64_t pg_int(const PGresult *r, int row, int col);
/* NULL for SQL NULL; else the value, valid until PQclear. */
const char *pg_str(const PGresult *r, int row, int col);

#endif
