#!/bin/bash
# Crash hygiene: a running trasloco holds customers' passwords in memory, so
# it must never write a core file and must not be dumpable.  Looked at from
# outside, on a trasloco that waits (in open()) for its password FIFO:
# /proc/PID/limits shows a core size limit of 0 (soft and hard), and, run as
# `nobody`, its /proc/PID files belong to root (the kernel's mark of a
# process that is not dumpable: other processes of the same user cannot
# ptrace it or read its memory).  Run as root (as in CI) for the second
# part; it is skipped otherwise.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_init crash-hygiene
: "${TRASLOCO:?TRASLOCO must point to the trasloco binary (make check sets it)}"

d=$IT_DIR/run
mkdir -p "$d"
chmod 0777 "$d"
mkfifo -m 0666 "$d/pw"
started=()
stop_all() {
    local p
    for p in "${started[@]}"; do
        kill -KILL "$p" 2>/dev/null && { wait "$p" 2>/dev/null || true; }
    done
}
it_at_exit stop_all

# Starts trasloco (as the user given, or as ourselves) waiting on the FIFO;
# sets PID.
start() {
    local -a as=()
    [[ -n $1 ]] && as=(setpriv --reuid="$1" --regid="$(id -g "$1")" --clear-groups --)
    ( ulimit -c unlimited 2>/dev/null || ulimit -c 1000000 2>/dev/null || true
      exec "${as[@]}" "$TRASLOCO" migrate --src 127.0.0.1:1 --src-tls none \
        --dst 127.0.0.1:1 --dst-tls none --user u@example.test \
        --src-password-file "$d/pw" --state "$d/state" ) > "$d/out" 2>&1 &
    PID=$!
    started+=("$PID")
    # up and past cli_main's first lines: blocked in open() on the FIFO
    # (wchan says so where the kernel shows it; else: asleep, running our binary)
    local i
    for ((i = 0; i < 100; i++)); do
        [[ $(cat "/proc/$PID/wchan" 2>/dev/null) == fifo_open ]] && return 0
        if ((i > 40)) && grep -q '^State:.*(sleeping)' "/proc/$PID/status" 2>/dev/null &&
            [[ $(readlink "/proc/$PID/exe" 2>/dev/null) == "$(readlink -f "$TRASLOCO")" ]]; then
            return 0
        fi
        sleep 0.05
    done
    it_fail "trasloco did not start: $(cat "$d/out")"
}

core_limit() { awk '/^Max core file size/ { print $5 "/" $6 }' "/proc/$1/limits"; }

start ""
lim=$(core_limit "$PID")
it_log "as $(id -un): core file size limit (soft/hard) $lim"
[[ $lim == 0/0 ]] || it_fail "a running trasloco may write a core file: RLIMIT_CORE is $lim, want 0/0"
kill -KILL "$PID"; wait "$PID" 2>/dev/null || true

if [[ $(id -u) != 0 ]]; then
    it_pass "(not root: the dumpable check as nobody was skipped)"
fi
id nobody >/dev/null 2>&1 || it_skip "no user nobody"
setpriv --reuid=nobody --regid="$(id -g nobody)" --clear-groups -- test -x "$TRASLOCO" ||
    it_skip "nobody cannot run $TRASLOCO (a parent directory is private)"
start nobody
uid=$(awk '/^Uid:/ { print $2 }' "/proc/$PID/status")
owner=$(stat -c %u "/proc/$PID/status")
it_log "as nobody: process uid $uid, /proc/PID/status owned by uid $owner, core limit $(core_limit "$PID")"
[[ $uid == "$(id -u nobody)" ]] || it_fail "trasloco is not running as nobody (uid $uid)"
[[ $owner == 0 ]] || it_fail "trasloco is dumpable: its /proc files belong to uid $owner, not root"
[[ $(core_limit "$PID") == 0/0 ]] || it_fail "RLIMIT_CORE not 0/0 for the nobody run"
it_pass
