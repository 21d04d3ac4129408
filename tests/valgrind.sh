#!/bin/sh
# Every unit test under valgrind: zero errors, zero leaks (definite, indirect
# or possible), or the run fails.  Uses the build in build/ (tests/run.sh).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$top/build}
cd "$build"
make -j"$(nproc)" check TESTS= >/dev/null   # builds the test programs only
status=0
for t in tests/unit/test_*; do
    case $t in *.o|*.log|*.trs) continue ;; esac
    [ -x "$t" ] || continue
    rc=0
    valgrind -q --error-exitcode=99 --leak-check=full \
        --show-leak-kinds=definite,indirect,possible --errors-for-leak-kinds=definite,indirect,possible \
        "$t" >"$t.valgrind.log" 2>&1 || rc=$?
    if [ "$rc" = 0 ]; then
        echo "valgrind: $t clean"
    elif [ "$rc" = 77 ]; then
        # the units that need a PostgreSQL skip alone: they run below with one
        echo "valgrind: $t needs PostgreSQL (below)"
    else
        echo "valgrind: $t FAILED" >&2
        tail -40 "$t.valgrind.log" >&2
        status=1
    fi
done
# The PostgreSQL units, each under valgrind against a throwaway server
# (test_pg_units.sh starts it and runs them through PG_UNITS_WRAP).
rc=0
TRASLOCO=$build/src/trasloco PG_UNITS_WRAP="valgrind -q --error-exitcode=99 --leak-check=full \
--show-leak-kinds=definite,indirect,possible --errors-for-leak-kinds=definite,indirect,possible" \
    bash "$top/tests/integration/test_pg_units.sh" >"$build/pg-units.valgrind.log" 2>&1 || rc=$?
if [ "$rc" = 0 ]; then
    echo "valgrind: the PostgreSQL units clean"
elif [ "$rc" = 77 ]; then
    echo "valgrind: the PostgreSQL units skipped (no PostgreSQL server binaries)"
else
    echo "valgrind: the PostgreSQL units FAILED" >&2
    tail -60 "$build/pg-units.valgrind.log" >&2
    status=1
fi
exit $status
