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
    if valgrind -q --error-exitcode=99 --leak-check=full \
        --show-leak-kinds=definite,indirect,possible --errors-for-leak-kinds=definite,indirect,possible \
        "$t" >"$t.valgrind.log" 2>&1; then
        echo "valgrind: $t clean"
    else
        echo "valgrind: $t FAILED" >&2
        tail -40 "$t.valgrind.log" >&2
        status=1
    fi
done
exit $status
