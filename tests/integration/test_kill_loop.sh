#!/bin/bash
# SIGKILL at random moments, 20 times: each iteration starts a full copy of
# the same source into a fresh destination mailbox, kills trasloco with
# SIGKILL after a seeded random delay (landing in FETCHes, APPENDs, ledger
# writes, logins), then resumes it to the end and compares: every iteration
# must end identical, nothing lost, nothing twice.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_init kill-loop
. "$IT_LIBDIR/common.sh"
N=${KILL_LOOP:-20}
users="$U:$(printf '%s' "$PW" | sed 's/%/%25/g; s/ /%20/g')"
dusers=""
for i in $(seq 1 "$N"); do dusers+="k$i@azienda.test:$(printf '%s' "$PW" | sed 's/%/%25/g; s/ /%20/g') "; done
it_dovecot_start src "USERS=$users"
it_dovecot_start dst "USERS=$dusers"
umask 077
printf '%s\n' "$PW" > "$IT_DIR/pw"
export IMAP_PASSWORD=$PW
it_imaptool --port "$SRC_IMAPS_PORT" --tls implicit --ca "$IT_CA" --tls-name "$IT_TLS_NAME" \
    --user "$U" populate --seed 31 --profile standard >/dev/null

RANDOM=2026
landed=0
for i in $(seq 1 "$N"); do
    dst_user=k$i@azienda.test
    # trasloco itself must be the background job (not a subshell running
    # it), or the SIGKILL would miss it.
    args=(migrate --src "$IT_HOST:$SRC_IMAPS_PORT" --src-tls implicit
        --src-tls-name "$IT_TLS_NAME" --dst "$IT_HOST:$DST_IMAPS_PORT" --dst-tls implicit
        --dst-tls-name "$IT_TLS_NAME" --ca-file "$IT_CA" --user "$U" --dst-user "$dst_user"
        --src-password-file "$IT_DIR/pw" --state "$IT_DIR/state" --batch-size 1
        --batch-count 7 --timeout 20 --no-progress)
    "$TRASLOCO" "${args[@]}" > "$IT_DIR/kill.$i" 2>&1 &
    pid=$!
    delay=$(printf '0.%03d' $((RANDOM % 280 + 10)))
    sleep "$delay"
    if kill -KILL "$pid" 2>/dev/null; then
        landed=$((landed + 1))
    fi
    wait "$pid" 2>/dev/null || true
    rc=0
    "$TRASLOCO" "${args[@]}" > "$IT_DIR/resume.$i" 2>&1 || rc=$?
    [[ $rc == 0 ]] || { cat "$IT_DIR/resume.$i" >&2; it_fail "iteration $i: resume exited $rc"; }
    settled=$({ grep -o 'settled [0-9]* interrupted' "$IT_DIR/resume.$i" || true; } |
        awk '{ s += $2 } END { print s + 0 }')
    it_imaptool --port "$SRC_IMAPS_PORT" --tls implicit --ca "$IT_CA" --tls-name "$IT_TLS_NAME" \
        --user "$U" compare --dst-port "$DST_IMAPS_PORT" --dst-tls implicit --dst-ca "$IT_CA" \
        --dst-tls-name "$IT_TLS_NAME" --dst-user "$dst_user" > "$IT_DIR/cmp.$i" 2>&1 ||
        { cat "$IT_DIR/cmp.$i" >&2; it_fail "iteration $i (killed after ${delay}s): source and destination differ"; }
    it_log "iteration $i: killed after ${delay}s, $settled interrupted append(s) settled, identical"
done
((landed >= N * 3 / 5)) || it_fail "only $landed of $N kills landed while trasloco ran"
it_pass "$landed of $N runs killed mid-way, all resumed identical"
