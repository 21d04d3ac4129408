#!/bin/bash
# `trasloco --version` (and `trasloco version`): the version, the git commit
# the binary was built from (gitcommit.sh: the source tree's HEAD when it is
# a clone, "unknown" without git), and the runtime versions of libetpan,
# OpenSSL, SQLite, jansson, libmicrohttpd and libpq.
set -euo pipefail
name=version
fail() { printf 'FAIL: %s: %s\n' "$name" "$*" >&2; exit 1; }
TRASLOCO=${TRASLOCO:?set TRASLOCO to the binary}
SRCDIR=${TOP_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}

out=$("$TRASLOCO" --version) || fail "--version exited $?"
[[ $("$TRASLOCO" version) == "$out" ]] || fail "'version' and '--version' differ"
printf '%s\n' "$out"
line() { { grep -E "^$1 " <<<"$out" || true; } | head -n 1 | cut -d' ' -f2-; }

v=$(line trasloco)
[[ $v =~ ^[0-9]+\.[0-9]+\.[0-9]+ ]] || fail "no version on the first line: $out"
if [[ -f $SRCDIR/configure.ac ]]; then
    want=$(sed -n 's/^AC_INIT(\[trasloco\], \[\([^]]*\)\].*/\1/p' "$SRCDIR/configure.ac")
    [[ $v == "$want" ]] || fail "version $v, configure.ac says $want"
fi

commit=$(line commit)
[[ -n $commit ]] || fail "no commit line"
if [[ -n ${TRASLOCO_COMMIT:-} ]]; then
    [[ $commit == "$TRASLOCO_COMMIT" ]] || fail "commit $commit, TRASLOCO_COMMIT=$TRASLOCO_COMMIT"
elif head=$(git -c safe.directory='*' -C "$SRCDIR" rev-parse --short=12 HEAD 2>/dev/null) &&
    [[ -z $(git -c safe.directory='*' -C "$SRCDIR" rev-parse --show-prefix 2>/dev/null) ]]; then
    # built from this clone: its HEAD (make rebuilt it), maybe with -dirty
    [[ $commit == "$head" || $commit == "$head-dirty" ]] ||
        fail "commit $commit, the source tree's HEAD is $head"
else
    [[ $commit =~ ^([0-9a-f]{12}(-dirty)?|unknown)$ ]] || fail "odd commit: $commit"
fi

for lib in libetpan OpenSSL SQLite jansson libmicrohttpd libpq; do
    [[ $(line "$lib") =~ ^[0-9]+\.[0-9]+ ]] || fail "no runtime version of $lib"
done
# the SQLite loaded is the system's: Python's sqlite3 module loads the same one
if py=$(python3 -c 'import sqlite3; print(sqlite3.sqlite_version)' 2>/dev/null); then
    [[ $(line SQLite) == "$py" ]] || fail "SQLite $(line SQLite), the system's is $py"
fi
echo "PASS: $name"
