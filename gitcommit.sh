#!/bin/sh
# Prints the git commit trasloco is built from, for `trasloco --version`:
#   $TRASLOCO_COMMIT when set (a packager who knows better),
#   else the commit of the clone SRCDIR is the top of (12 hex digits, "-dirty"
#   when tracked files differ from it),
#   else SRCDIR/.commit (written into a release tarball by `make dist`),
#   else "unknown".
# Usage: gitcommit.sh SRCDIR
srcdir=${1:-.}
if [ -n "${TRASLOCO_COMMIT:-}" ]; then
    printf '%s\n' "$TRASLOCO_COMMIT"
    exit 0
fi
# safe.directory: a clone owned by another user (root building a user's
# checkout, dpkg-buildpackage under fakeroot) is still ours to read.
# No index refresh is written (--no-optional-locks): the tree may not be ours.
g() { git --no-optional-locks -c safe.directory='*' -C "$srcdir" "$@" 2>/dev/null; }
if command -v git >/dev/null 2>&1 && [ "$(g rev-parse --show-prefix)" = "" ] &&
    c=$(g rev-parse --short=12 HEAD) && [ -n "$c" ]; then
    if ! g diff --quiet HEAD --; then
        c="$c-dirty"
    fi
    printf '%s\n' "$c"
    exit 0
fi
if [ -s "$srcdir/.commit" ]; then
    head -n 1 "$srcdir/.commit"
    exit 0
fi
echo unknown
