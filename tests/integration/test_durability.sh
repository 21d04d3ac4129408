#!/bin/bash
# The ledger is on disk before the APPEND it promises goes out.  A batch's rows are
# committed as pending before its APPEND is sent; with the state's WAL at
# synchronous=NORMAL that commit could still be in the page cache when the APPEND
# reached the server, and a power cut then lost the row: the next run copied the
# batch again.  Under strace (trace of fsync/fdatasync with paths, and of what is
# written to the plain-text destination socket), every APPEND command must be
# preceded by a sync of state.db-wal since the previous APPEND, and the WAL must be
# synced at least twice per batch (pending, done).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_init durability
. "$(dirname "$0")/common.sh"
command -v strace >/dev/null || it_skip "strace is not installed"
it_pair
it_imaptool --port "$SRC_IMAPS_PORT" --tls implicit --ca "$IT_CA" --tls-name "$IT_TLS_NAME" \
    --user "$U" append --folder INBOX --count 40 --seed 5 >/dev/null

TRACE=$IT_DIR/strace
OUT=$IT_DIR/out
set +e
(
    # LeakSanitizer cannot work under ptrace: off (a no-op without ASan)
    export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0
    # the destination in plain text (loopback) so that its APPENDs can be seen
    exec timeout -k 5 60 strace -f -qq -y -s 200 -o "$TRACE" \
        -e trace=fsync,fdatasync,write,writev,sendto,sendmsg \
        "$TRASLOCO" migrate --user "$U" --src-password-file "$IT_DIR/pw" \
        --src "$IT_HOST:$SRC_IMAPS_PORT" --src-tls implicit --src-tls-name "$IT_TLS_NAME" \
        --ca-file "$IT_CA" --dst "$IT_HOST:$DST_IMAP_PORT" --dst-tls none \
        --state "$IT_DIR/state" --timeout 20 --batch-count 8 --no-progress
) > "$OUT" 2>&1
rc=$?
set -e
sed 's/^/    | /' "$OUT" | tail -n 6 >&2
[[ $rc == 0 ]] || it_fail "trasloco exited $rc"
tr_compare

# One line per event, in the order strace saw them: S (the WAL synced), A (an APPEND sent).
# A sync counts from its first line (it may be "<unfinished ...>" when another thread
# interleaves): the pending commit, sync included, returns before the same thread sends.
events=$(awk '
    /(fsync|fdatasync)\([0-9]+<[^>]*state\.db-wal>/ { print "S"; next }
    /(write|writev|sendto|sendmsg)\([0-9]+<socket:/ && /"[A-Za-z0-9.]+ APPEND / { print "A" }' "$TRACE" |
    tr -d '\n')
it_log "events (S: WAL synced, A: APPEND sent): $events"
appends=$(tr -cd A <<<"$events" | wc -c)
syncs=$(tr -cd S <<<"$events" | wc -c)
((appends >= 5)) || it_fail "only $appends APPEND commands seen in the trace: the test proves nothing"
# every A has at least one S since the previous A (or the start)
[[ ! $events =~ (^|A)A ]] || it_fail "an APPEND went out with no sync of the ledger before it"
((syncs >= 2 * appends)) || it_fail "$syncs syncs of the WAL for $appends batches (want >= 2 each)"
it_pass
