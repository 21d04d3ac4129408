#!/bin/bash
# Idempotence the hard way: the process killed with SIGKILL at random
# moments and started again, until it finishes; the state thrown away; a
# UIDVALIDITY changed on either side.  Every time the destination must end
# with exactly the source's messages: nothing lost, nothing twice.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_init resume
. "$IT_LIBDIR/common.sh"
it_pair
src() { it_imaptool --port "$SRC_IMAPS_PORT" --tls implicit --ca "$IT_CA" --tls-name "$IT_TLS_NAME" --user "$U" "$@"; }
src populate --seed 21 --profile standard >&2
src append --folder INBOX --count 300 --seed 22 >&2

# Small batches and one session so that a kill lands in the middle of
# FETCHes, APPENDs and ledger writes.
slow=(--batch-size 1 --batch-count 2 --src-max-per-account 1 --no-progress)
RANDOM=4242
kills=0
for i in $(seq 1 30); do
    "$TRASLOCO" migrate \
        --src "$IT_HOST:$SRC_IMAPS_PORT" --src-tls implicit --src-tls-name "$IT_TLS_NAME" \
        --dst "$IT_HOST:$DST_IMAPS_PORT" --dst-tls implicit --dst-tls-name "$IT_TLS_NAME" \
        --ca-file "$IT_CA" --user "$U" --src-password-file "$IT_DIR/pw" \
        --state "$IT_DIR/state" "${slow[@]}" > "$IT_DIR/run.$i" 2>&1 &
    pid=$!
    delay=$(printf '0.%03d' $((RANDOM % 200 + 10)))
    sleep "$delay"
    if kill -KILL "$pid" 2>/dev/null; then
        wait "$pid" || true
        kills=$((kills + 1))
        it_log "run $i killed after ${delay}s"
        continue
    fi
    rc=0
    wait "$pid" || rc=$?
    [[ $rc == 0 ]] || { cat "$IT_DIR/run.$i" >&2; it_fail "run $i exited $rc"; }
    it_log "run $i finished by itself after $kills kill(s)"
    break
done
((kills >= 3)) || it_fail "only $kills kill(s) landed: the loop proves nothing"
# One more run finishes what the last killed one left (if every run was
# killed), then the copy must be exact and a further run find nothing new.
tr_migrate
tr_expect_rc 0
tr_compare
tr_migrate
tr_expect_rc 0
tr_expect_out 'nothing new'

# The state is gone (a new machine, a deleted directory): messages are
# matched by fingerprint, duplicates included, and nothing is copied twice.
rm -rf "$IT_DIR/state"
tr_migrate
tr_expect_rc 0
tr_expect_out ' 0 copied'
tr_expect_out 'matched by fingerprint'
tr_compare

# UIDVALIDITY changes on the source (a rebuilt server) and on the destination.
# (A destination change is noticed when the source folder has news: an
# unchanged source folder costs no look at the destination at all.)
src append --folder INBOX --count 3 --seed 23 >&2
src append --folder Sent --count 1 --seed 24 >&2
it_doveadm src mailbox update -u "$U" --uid-validity 12345 INBOX
it_doveadm dst mailbox update -u "$U" --uid-validity 54321 Sent
tr_migrate
tr_expect_rc 0
tr_expect_out "INBOX: the source folder's UIDVALIDITY changed"
tr_expect_out "Sent: the destination folder Sent was recreated"
tr_expect_out ' 4 copied'
tr_compare
tr_migrate
tr_expect_rc 0
tr_expect_out 'nothing new'
tr_no_secret
it_pass
