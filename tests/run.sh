#!/bin/sh
# The whole test suite from a clean checkout: installs missing Debian
# packages (as root), builds with -Werror in build/, runs `make check`
# (unit tests and integration tests against real Dovecot servers).
#   tests/run.sh                 normal build
#   SANITIZE=1 tests/run.sh      the same under AddressSanitizer + UBSan
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/tests/deps.sh"
cd "$top"
[ -x configure ] || ./autogen.sh
build=${BUILD_DIR:-$top/build}
flags="--enable-werror"
if [ "${SANITIZE:-0}" = 1 ]; then
    flags="$flags --enable-sanitizers"
    LSAN_OPTIONS="suppressions=$top/tests/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
    export LSAN_OPTIONS
fi
mkdir -p "$build"
cd "$build"
"$top/configure" $flags >/dev/null
make -j"$(nproc)"
if ! make -j"$(nproc)" check; then
    cat test-suite.log 2>/dev/null | tail -200
    exit 1
fi
