/* Unit tests of the PostgreSQL connection (src/pg.c) and the schema
 * (src/pg_schema.c), against a real server: TRASLOCO_TEST_PG holds its DSN
 * (tests/integration/test_pg_units.sh starts one and runs this).  Without
 * it the program skips (77): these are not tests a mock could stand in for. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pg.h"
#include "pg_schema.h"

static const char *dsn;

static void test_dsn_password(void **unused)
{
	(void)unused;
	assert_false(pg_dsn_has_password("postgresql://trasloco@db.internal/migrations"));
	assert_true(pg_dsn_has_password("postgresql://trasloco:s3cret@db.internal/migrations"));
	assert_true(pg_dsn_has_password("host=db user=t password=s3cret dbname=m"));
	assert_false(pg_dsn_has_password("host=db user=t dbname=m"));
	assert_true(pg_dsn_has_password("postgresql://db/m?password=x"));
	assert_true(pg_is_dsn("postgresql://x/y"));
	assert_true(pg_is_dsn("postgres://x/y"));
	assert_false(pg_is_dsn("/var/lib/trasloco"));
	assert_false(pg_is_dsn("sqlite:/x"));
}

static void test_connect_errors(void **unused)
{
	struct tr_error err;
	struct pg *pg = NULL;

	(void)unused;
	tr_error_clear(&err);
	/* nothing listens on port 1 of loopback: temporary, named */
	assert_int_equal(pg_connect("postgresql://nobody@127.0.0.1:1/x", &pg, &err), -1);
	assert_null(pg);
	assert_int_equal(err.kind, TR_ERR_TEMP);
	assert_non_null(strstr(err.msg, "cannot connect to PostgreSQL"));
	tr_error_clear(&err);
	assert_int_equal(pg_connect("host=127.0.0.1 no_such_option=1", &pg, &err), -1);
	assert_int_equal(err.kind, TR_ERR_USAGE);
}

static void test_schema(void **unused)
{
	struct tr_error err;
	struct pg *pg;
	int from = -1;
	PGresult *r;

	(void)unused;
	tr_error_clear(&err);
	assert_int_equal(pg_connect(dsn, &pg, &err), 0);
	assert_non_null(strstr(pg_where(pg), "@127.0.0.1:"));
	assert_null(strstr(pg_where(pg), "password"));
	/* a fresh database is refused, with the command to run */
	assert_int_equal(pg_run(pg, "DROP TABLE IF EXISTS trasloco_meta", 0, NULL, &err), 0);
	assert_int_equal(pg_schema_check(pg, &err), -1);
	assert_int_equal(err.kind, TR_ERR_USAGE);
	assert_non_null(strstr(err.msg, "trasloco queue init"));
	assert_int_equal(pg_schema_init(pg, &from, &err), 0);
	assert_int_equal(from, 0);
	assert_int_equal(pg_schema_check(pg, &err), 0);
	/* again: nothing to do, nothing broken */
	assert_int_equal(pg_schema_init(pg, &from, &err), 0);
	assert_int_equal(from, pg_schema_version());
	/* a newer database is refused by both */
	assert_int_equal(pg_run(pg, "UPDATE trasloco_meta SET value = '999' WHERE key = 'schema'",
				0, NULL, &err), 0);
	assert_int_equal(pg_schema_check(pg, &err), -1);
	assert_non_null(strstr(err.msg, "newer"));
	assert_int_equal(pg_schema_init(pg, &from, &err), -1);
	r = pg_exec(pg, "SELECT value FROM trasloco_meta WHERE key = 'schema'", 0, NULL, &err);
	assert_non_null(r);
	assert_string_equal(pg_str(r, 0, 0), "999");
	PQclear(r);
	{
		char cur[16];

		snprintf(cur, sizeof(cur), "%d", pg_schema_version());
		assert_int_equal(pg_run(pg, "UPDATE trasloco_meta SET value = $1 WHERE key = "
					"'schema'", 1, (const char *[]){ cur }, &err), 0);
	}
	assert_int_equal(pg_schema_check(pg, &err), 0);
	/* an SQL error: local, with the SQLSTATE */
	assert_int_equal(pg_run(pg, "SELECT * FROM no_such_table", 0, NULL, &err), -1);
	assert_int_equal(err.kind, TR_ERR_LOCAL);
	assert_string_equal(pg_sqlstate(pg), "42P01");
	assert_non_null(strstr(err.msg, "SQLSTATE 42P01"));
	pg_close(pg);
}

/* The server ends our session (a restart, a failover): the next statement
 * connects again; inside a transaction it fails instead. */
static void test_reconnect(void **unused)
{
	struct tr_error err;
	struct pg *a, *b;
	PGresult *r;
	char pid[32];

	(void)unused;
	tr_error_clear(&err);
	assert_int_equal(pg_connect(dsn, &a, &err), 0);
	assert_int_equal(pg_connect(dsn, &b, &err), 0);
	r = pg_exec(a, "SELECT pg_backend_pid()", 0, NULL, &err);
	assert_non_null(r);
	snprintf(pid, sizeof(pid), "%s", pg_str(r, 0, 0));
	PQclear(r);
	assert_int_equal(pg_run(b, "SELECT pg_terminate_backend($1::int)", 1,
				(const char *[]){ pid }, &err), 0);
	/* the statement that meets the dead session fails, temporary */
	assert_int_equal(pg_run(a, "SELECT 1", 0, NULL, &err), -1);
	assert_int_equal(err.kind, TR_ERR_TEMP);
	/* the next one reconnects */
	assert_int_equal(pg_run(a, "SELECT 1", 0, NULL, &err), 0);

	/* inside a transaction: no silent reconnect */
	assert_int_equal(pg_begin(a, &err), 0);
	r = pg_exec(a, "SELECT pg_backend_pid()", 0, NULL, &err);
	assert_non_null(r);
	snprintf(pid, sizeof(pid), "%s", pg_str(r, 0, 0));
	PQclear(r);
	assert_int_equal(pg_run(b, "SELECT pg_terminate_backend($1::int)", 1,
				(const char *[]){ pid }, &err), 0);
	assert_int_equal(pg_run(a, "SELECT 1", 0, NULL, &err), -1);
	assert_int_equal(pg_run(a, "SELECT 1", 0, NULL, &err), -1);
	assert_int_equal(err.kind, TR_ERR_TEMP);
	assert_non_null(strstr(err.msg, "inside a transaction"));
	pg_rollback(a);
	assert_int_equal(pg_run(a, "SELECT 1", 0, NULL, &err), 0);
	pg_close(a);
	pg_close(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dsn_password),
		cmocka_unit_test(test_connect_errors),
		cmocka_unit_test(test_schema),
		cmocka_unit_test(test_reconnect),
	};

	dsn = getenv("TRASLOCO_TEST_PG");
	if (dsn == NULL || dsn[0] == '\0') {
		fprintf(stderr, "TRASLOCO_TEST_PG is not set: run tests/integration/test_pg_units.sh\n");
		return 77;
	}
	return cmocka_run_group_tests_name("pg", tests, NULL, NULL);
}
