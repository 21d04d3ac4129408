#!/usr/bin/env bash
# The unit tests that need a real PostgreSQL (pg, the state's PostgreSQL
# backend, the queue's claims and leases, the cluster caps): one throwaway
# server for all of them, a fresh database per program.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pg.sh"
it_init pg-units
it_pg_start

: "${TRASLOCO:?TRASLOCO must point to the trasloco binary (make check sets it)}"
units=$(dirname "$TRASLOCO")/../tests/unit
n=0
# PG_UNITS_WRAP: a command to run each program under (tests/valgrind.sh: valgrind)
# shellcheck disable=SC2206 # words on purpose
wrap=(${PG_UNITS_WRAP:-})
for t in ${PG_UNITS:-test_pg test_state_pg test_queue_pg test_caps_pg}; do
    [[ -x $units/$t ]] || it_fail "$units/$t is not built"
    db=u_$t
    _it_pg_as "$IT_PG_BIN/psql" -X -q -h "$IT_PG_DIR/sock" -p "$IT_PG_PORT" -U postgres \
        -d postgres -v ON_ERROR_STOP=1 -c "CREATE DATABASE $db OWNER trasloco" >/dev/null
    printf '127.0.0.1:%s:%s:trasloco:%s\n' "$IT_PG_PORT" "$db" "$IT_PG_PASSWORD" >>"$PGPASSFILE"
    rc=0
    TRASLOCO_TEST_PG="postgresql://trasloco@127.0.0.1:$IT_PG_PORT/$db" \
        TRASLOCO_TEST_PG_DIR=$IT_PG_DIR "${wrap[@]}" "$units/$t" >"$IT_DIR/$t.out" 2>&1 || rc=$?
    cat "$IT_DIR/$t.out" >&2
    ((rc == 0)) || it_fail "$t failed (exit $rc)"
    n=$((n + 1))
done
it_pass "$n program(s) against PostgreSQL"
