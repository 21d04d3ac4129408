#!/bin/bash
# make install DESTDIR=... in the build directory the tested binary comes
# from: the exact list of files (program, manual pages, units, examples,
# README, bash completion), the units run the installed program, the
# completion completes commands and options from it, man finds the pages;
# then make uninstall leaves no file behind.
set -euo pipefail
name=install
fail() { printf 'FAIL: %s: %s\n' "$name" "$*" >&2; exit 1; }
skip() { printf 'SKIP: %s: %s\n' "$name" "$*" >&2; exit 77; }
TRASLOCO=${TRASLOCO:?set TRASLOCO to the binary}
build=${BUILD_DIR:-$(cd "$(dirname "$TRASLOCO")/.." && pwd)}
[[ -f $build/Makefile ]] || skip "no Makefile in $build"
MAKE=${MAKE:-make}
dest=$(mktemp -d "${TMPDIR:-/tmp}/trasloco-install.XXXXXX")
trap 'rm -rf "$dest"' EXIT
# a make of its own: not the jobs of the make check that runs this test
unset MAKEFLAGS MFLAGS MAKELEVEL

# the directories, as the Makefile has them
dirs=$(printf 'print:\n\t@echo "$(bindir)|$(mandir)|$(docdir)|$(systemdsystemunitdir)|$(bashcompletiondir)"\n' |
    $MAKE -s -C "$build" -f Makefile -f - print) || fail "cannot read the Makefile's directories"
IFS='|' read -r bindir mandir docdir unitdir compdir <<<"$dirs"
[[ $bindir == /* && $mandir == /* && $docdir == /* ]] || fail "odd directories: $dirs"

$MAKE -s -C "$build" install DESTDIR="$dest" >"$dest.log" 2>&1 || { cat "$dest.log" >&2; rm -f "$dest.log"; fail "make install failed"; }
rm -f "$dest.log"

want=$(
    echo "$bindir/trasloco"
    echo "$mandir/man1/trasloco.1"
    echo "$mandir/man5/trasloco-job.5"
    echo "$docdir/README"
    for f in example.job example-accounts.csv trasloco.crontab; do echo "$docdir/examples/$f"; done
    if [[ $unitdir != no && -n $unitdir ]]; then
        for u in trasloco-spool.service trasloco-spool.timer trasloco-worker.service \
            trasloco-serve.service; do echo "$unitdir/$u"; done
    fi
    if [[ $compdir != no && -n $compdir ]]; then echo "$compdir/trasloco"; fi
)
got=$(cd "$dest" && find . -type f -o -type l | sed 's|^\.||')
if [[ $(sort <<<"$want") != $(sort <<<"$got") ]]; then
    diff <(sort <<<"$want") <(sort <<<"$got") >&2 || true
    fail "make install put other files than expected (- wanted, + installed)"
fi
[[ -x $dest$bindir/trasloco ]] || fail "the program is not executable"
"$dest$bindir/trasloco" --version >/dev/null || fail "the installed program does not run"

# every unit's ExecStart runs the installed program
if [[ $unitdir != no && -n $unitdir ]]; then
    for u in "$dest$unitdir"/*.service; do
        grep -q "^ExecStart=$bindir/trasloco " "$u" || fail "$(basename "$u") does not run $bindir/trasloco"
    done
    if command -v systemd-analyze >/dev/null 2>&1; then
        # unknown users and missing paths are the host's business, not syntax
        if out=$(systemd-analyze verify --man=no "$dest$unitdir"/trasloco-* 2>&1 |
            grep -Ei 'unknown (key|section)|invalid|failed to parse'); then
            fail "systemd-analyze: $out"
        fi
    fi
fi

# man finds the pages of this tree
if command -v man >/dev/null 2>&1; then
    p=$(MANPATH= man -M "$dest$mandir" -w trasloco 2>/dev/null) || fail "man -w does not find trasloco(1)"
    [[ $p == "$dest$mandir/man1/trasloco.1"* ]] || fail "man -w found $p"
    MANPATH= man -M "$dest$mandir" -w 5 trasloco-job >/dev/null 2>&1 || fail "man -w does not find trasloco-job(5)"
fi

# the completion, with bash-completion's helpers, against the installed program
if [[ $compdir != no && -n $compdir ]] && [[ -f /usr/share/bash-completion/bash_completion ]]; then
    out=$(PATH="$dest$bindir:$PATH" bash -c '
        . /usr/share/bash-completion/bash_completion
        . "$1"
        t() { COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
              COMPREPLY=(); _trasloco; echo "${COMPREPLY[*]}"; }
        t trasloco mig; t trasloco migrate --dry-r; t trasloco queue su; t trasloco worker --dra
        t trasloco run --src-tls st' _ "$dest$compdir/trasloco") || fail "the completion does not load"
    expect=$'migrate\n--dry-run\nsubmit\n--drain\nstarttls'
    [[ $out == "$expect" ]] || fail "the completion answered: $(tr '\n' '|' <<<"$out")"
fi

$MAKE -s -C "$build" uninstall DESTDIR="$dest" >/dev/null 2>&1 || fail "make uninstall failed"
left=$(cd "$dest" && find . -type f -o -type l)
[[ -z $left ]] || fail "make uninstall left: $left"
echo "PASS: $name ($(wc -l <<<"$want") files installed and removed)"
