#!/bin/bash
# A 20-account job that is killed with SIGKILL twice and resumed, and whose
# source lowers its per-user connection limit below trasloco's cap in the
# middle of the last run (a limit storm): the job must recover and end with
# every account identical on both sides, nothing lost, nothing twice.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_init batch-faults
: "${TRASLOCO:?}"

accounts=()
users=""
for i in $(seq -w 1 20); do
    accounts+=("u$i@azienda.test")
    users+="u$i@azienda.test:pw-$i "
done
it_dovecot_start src "USERS=$users" MAX_CONN=4
it_dovecot_start dst "USERS=$users" MAX_CONN=4
csv=$IT_DIR/accounts.csv
for i in $(seq -w 1 20); do
    IMAP_PASSWORD=pw-$i it_imaptool --port "$SRC_IMAPS_PORT" --tls implicit --ca "$IT_CA" \
        --tls-name "$IT_TLS_NAME" --user "u$i@azienda.test" populate --seed "$i" \
        --profile small --messages 60 >/dev/null
    printf 'u%s@azienda.test,pw-%s\n' "$i" "$i" >> "$csv"
done
chmod 600 "$csv"

start_job() {
    "$TRASLOCO" run "$csv" \
        --src "$IT_HOST:$SRC_IMAPS_PORT" --src-tls implicit --src-tls-name "$IT_TLS_NAME" \
        --dst "$IT_HOST:$DST_IMAPS_PORT" --dst-tls implicit --dst-tls-name "$IT_TLS_NAME" \
        --ca-file "$IT_CA" --state "$IT_DIR/state" --parallel-accounts 4 \
        --src-max-per-account 3 --dst-max-per-account 3 --batch-count 3 --timeout 20 \
        --retries 8 --no-progress --report "$IT_DIR/report.json" > "$IT_DIR/run.$1" 2>&1 &
    JOB=$!
}

# Two runs killed without warning part way through.
for k in 1 2; do
    start_job "$k"
    sleep 0.6
    kill -KILL "$JOB" 2>/dev/null || it_fail "run $k finished before the kill: make the job bigger"
    wait "$JOB" 2>/dev/null || true
    it_log "run $k killed: $(grep -c 'ok: ' "$IT_DIR/run.$k") account(s) had finished"
done

# The resumed run, during which the source lowers its limit to 2 (below
# trasloco's 3) and reloads: new sessions get refused from then on.
start_job 3
sleep 0.3
sed -i 's/mail_max_userip_connections = .*/mail_max_userip_connections = 2/' "$SRC_CONF"
it_doveadm src reload
rc=0
wait "$JOB" || rc=$?
sed 's/^/    | /' "$IT_DIR/run.3" | grep -v ' info ' >&2 || true
[[ $rc == 0 ]] || it_fail "the resumed run exited $rc"
grep -q 'refused session' "$IT_DIR/run.3" || it_fail "no session was refused: the storm proves nothing"
grep -q 'AUTHENTICATIONFAILED' "$IT_DIR/run.3" && it_fail "a limit was taken for a bad password"
grep -q '20 ok, 0 partial, 0 failed' "$IT_DIR/run.3" || it_fail "not every account ok"

for i in $(seq -w 1 20); do
    IMAP_PASSWORD=pw-$i DST_PW=pw-$i it_imaptool --port "$SRC_IMAPS_PORT" --tls implicit \
        --ca "$IT_CA" --tls-name "$IT_TLS_NAME" --user "u$i@azienda.test" compare \
        --dst-port "$DST_IMAPS_PORT" --dst-tls implicit --dst-ca "$IT_CA" \
        --dst-tls-name "$IT_TLS_NAME" --dst-user "u$i@azienda.test" > "$IT_DIR/cmp" 2>&1 ||
        { cat "$IT_DIR/cmp" >&2; it_fail "u$i differs after the kills and the storm"; }
done
it_log "all 20 accounts identical"
it_pass
