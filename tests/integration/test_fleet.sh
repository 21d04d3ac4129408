#!/bin/bash
# The fleet: one job of 30 accounts run by three worker processes sharing a
# real PostgreSQL, against two Dovecots that allow 3 sessions per user and
# address (mail_max_userip_connections).  The job's caps: 2 sessions per
# account, 6 per server, held by all workers together.  Mid-job one worker
# is SIGKILLed (the others take its accounts over once their leases
# expire) and PostgreSQL is restarted.  Then:
#   - the servers' own session counts (doveadm who, sampled all along) never
#     passed the caps, and no server refused a session;
#   - every account is ok and exact on the destination (content, flags,
#     dates; nothing missing, nothing doubled);
#   - the database, the outputs and every file written hold no password.
# Prints the session peaks, the takeover time and the job's timings (for the
# closing note; never a pass/fail on time).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pg.sh"
it_init fleet
: "${TRASLOCO:?}"
it_pg_start
LEASE=6

declare -A PW
users=""
accounts=()
for i in $(seq -w 1 30); do
    u=u$i@fleet.test
    accounts+=("$u")
    PW[$u]="pw-$i, \"q\" $i"
    users+="$u:$(printf '%s' "${PW[$u]}" | sed 's/%/%25/g; s/ /%20/g') "
done
it_dovecot_start src "USERS=$users" MAX_CONN=3
it_dovecot_start dst "USERS=$users" MAX_CONN=3
for u in "${accounts[@]}"; do
    profile=small
    [[ $u == u0* ]] && profile=standard     # u01..u09: 200 messages each, the rest 20
    IMAP_PASSWORD=${PW[$u]} it_imaptool --port "$SRC_IMAPS_PORT" --tls implicit \
        --ca "$IT_CA" --tls-name "$IT_TLS_NAME" --user "$u" populate --seed 13 \
        --profile "$profile" >/dev/null &
done
wait

csv=$IT_DIR/accounts.csv
{
    printf 'email,password\n'
    for u in "${accounts[@]}"; do printf '"%s","%s"\n' "$u" "${PW[$u]//\"/\"\"}"; done
} >"$csv"
chmod 600 "$csv"
cat >"$IT_DIR/acme.job" <<EOF
src = $IT_HOST:$SRC_IMAPS_PORT
src-tls = implicit
src-tls-name = $IT_TLS_NAME
dst = $IT_HOST:$DST_IMAPS_PORT
dst-tls = implicit
dst-tls-name = $IT_TLS_NAME
ca-file = $IT_CA
accounts = accounts.csv
src-max-per-account = 2
dst-max-per-account = 2
src-max-connections = 6
dst-max-connections = 6
batch-count = 5
timeout = 20
EOF

KEY=$IT_DIR/queue.key
# a DSN holding a password never goes on a command line: refused, not echoed
rc=0
"$TRASLOCO" worker "postgresql://trasloco:Sekret-42@127.0.0.1:$IT_PG_PORT/trasloco" \
    --key-file "$KEY" --drain >"$IT_DIR/pwdsn.out" 2>&1 || rc=$?
((rc == 2)) || it_fail "a worker with a password in its DSN exited $rc, not 2"
grep -q 'Sekret-42' "$IT_DIR/pwdsn.out" && it_fail "the worker echoed the DSN's password"
"$TRASLOCO" queue init "$IT_PG_DSN" --key-file "$KEY" >"$IT_DIR/init.out" 2>&1 ||
    it_fail "queue init failed: $(cat "$IT_DIR/init.out")"
[[ $(stat -c %a "$KEY") == 600 ]] || it_fail "the key file is not private"
"$TRASLOCO" queue submit "$IT_PG_DSN" "$IT_DIR/acme.job" --key-file "$KEY" \
    >"$IT_DIR/submit.out" 2>&1 || it_fail "queue submit failed: $(cat "$IT_DIR/submit.out")"
job=acme

# the servers' own counts, all along
samples=$IT_DIR/samples
sampler() {
    while :; do
        for side in src dst; do
            it_doveadm "$side" who -1 2>/dev/null | awk -v s="$side" \
                'NR > 1 && $2 == "imap" { n[$1]++; t++ }
                 END { for (u in n) print s, u, n[u]; print s, "TOTAL", t + 0 }'
        done >>"$samples"
        sleep 0.05
    done
}
sampler &
sampler_pid=$!
it_at_exit "kill $sampler_pid 2>/dev/null || true"

pids=()
t_start=$(date +%s.%N)
for w in 1 2 3; do
    "$TRASLOCO" worker "$IT_PG_DSN" --key-file "$KEY" --parallel-accounts 3 --lease "$LEASE" \
        --drain >"$IT_DIR/worker$w.out" 2>&1 &
    pids+=("$!")
done
it_at_exit "kill ${pids[*]} 2>/dev/null || true"

q() { it_pg_psql "$1" 2>/dev/null || true; }
# SIGKILL worker 2 once it is copying an account
w2=${pids[1]}
killed_at=""
for ((i = 0; i < 600; i++)); do
    n=$(q "SELECT count(*) FROM q_accounts WHERE state = 'running' AND worker LIKE '%:$w2:%' AND copied > 0")
    if [[ ${n:-0} -gt 0 ]]; then
        kill -9 "$w2"
        killed_at=$(date +%s.%N)
        break
    fi
    sleep 0.1
done
[[ -n $killed_at ]] || it_fail "worker 2 never ran an account (no mid-job kill possible)"
held=$(q "SELECT string_agg(convert_from(email, 'UTF8'), ' ') FROM q_accounts WHERE state = 'running' AND worker LIKE '%:$w2:%'")
it_log "SIGKILLed worker 2 (pid $w2) holding: $held"

# restart PostgreSQL once, while the job runs
for ((i = 0; i < 600; i++)); do
    n=$(q "SELECT count(*) FROM q_accounts WHERE state = 'ok'")
    [[ ${n:-0} -ge 8 ]] && break
    sleep 0.1
done
left=$(q "SELECT count(*) FROM q_accounts WHERE state IN ('pending', 'running')")
it_log "restarting PostgreSQL with ${left:-?} account(s) still to do"
((${left:-0} > 0)) || it_fail "the job ended before PostgreSQL could be restarted mid-job"
it_pg_restart fast

rc1=0 rc3=0
for ((i = 0; i < 3000; i++)); do
    kill -0 "${pids[0]}" 2>/dev/null || kill -0 "${pids[2]}" 2>/dev/null || break
    sleep 0.1
done
show_workers() {
    local w
    for w in 1 2 3; do sed "s/^/    w$w | /" "$IT_DIR/worker$w.out" | grep -v ' info ' >&2 || true; done
}
if kill -0 "${pids[0]}" 2>/dev/null || kill -0 "${pids[2]}" 2>/dev/null; then
    show_workers
    q "SELECT id, convert_from(email, 'UTF8'), state, worker, lease_until, not_before, attempts, takeovers, error FROM q_accounts WHERE state <> 'ok' ORDER BY id" >&2
    it_fail "workers 1 and 3 did not both finish within 300 s"
fi
wait "${pids[0]}" || rc1=$?
wait "${pids[2]}" || rc3=$?
t_end=$(date +%s.%N)
wait "$w2" 2>/dev/null || true
kill "$sampler_pid" 2>/dev/null || true
wait "$sampler_pid" 2>/dev/null || true
show_workers
((rc1 == 0 && rc3 == 0)) || it_fail "workers exited $rc1 and $rc3"

"$TRASLOCO" queue status "$IT_PG_DSN" "$job" >"$IT_DIR/status.out" 2>&1 ||
    it_fail "queue status failed: $(cat "$IT_DIR/status.out")"
"$TRASLOCO" queue status "$IT_PG_DSN" --json >"$IT_DIR/status.json" 2>"$IT_DIR/status.err" ||
    it_fail "queue status --json failed: $(cat "$IT_DIR/status.err")"
sed 's/^/    | /' "$IT_DIR/status.out" >&2
"$IT_PYTHON" - "$IT_DIR/status.json" <<'PY' || it_fail "the job is not done: $(cat "$IT_DIR/status.json")"
import json, sys
s = json.load(open(sys.argv[1]))
j = [j for j in s["jobs"] if j["name"] == "acme"]
assert len(j) == 1, s
j = j[0]
assert j["state"] == "done", j
assert j["accounts"]["ok"] == 30, j["accounts"]
PY

# takeovers: worker 2's accounts were finished by the others
takeovers=$(q "SELECT coalesce(sum(takeovers), 0) FROM q_accounts")
((takeovers >= 1)) || it_fail "no account was taken over after worker 2 was killed"
took=$(q "SELECT round(extract(epoch FROM min(started)))::bigint FROM q_accounts WHERE takeovers > 0")
t_take=$(awk -v a="$took" -v b="$killed_at" 'BEGIN { printf "%.1f", a - b }')

# never above the caps, by the servers' own count
max_user=$(awk '$2 != "TOTAL" && $3 > m { m = $3 } END { print m + 0 }' "$samples")
max_src=$(awk '$1 == "src" && $2 == "TOTAL" && $3 > m { m = $3 } END { print m + 0 }' "$samples")
max_dst=$(awk '$1 == "dst" && $2 == "TOTAL" && $3 > m { m = $3 } END { print m + 0 }' "$samples")
it_log "sessions seen by the servers: per account at most $max_user (cap 2), source total $max_src, destination total $max_dst (cap 6), $(wc -l <"$samples") samples"
it_log "takeover: $takeovers account(s), first taken over ~${t_take} s after the SIGKILL (lease $LEASE s)"
it_log "job: 30 accounts in $(awk -v a="$t_start" -v b="$t_end" 'BEGIN { printf "%.1f", b - a }') s by 3 workers (one killed), PostgreSQL restarted once"
((max_user <= 2)) || it_fail "an account had $max_user sessions at once (cap 2)"
((max_src <= 6 && max_dst <= 6)) || it_fail "more than 6 sessions on a server (src $max_src, dst $max_dst)"
((max_src >= 3)) || it_fail "the sampler saw few parallel sessions ($max_src): it proves little"
if grep -q 'Maximum number of connections' "$SRC_DIR/dovecot.log" "$DST_DIR/dovecot.log"; then
    it_fail "a server refused a session for too many connections"
fi

# every account exact: nothing missing, nothing doubled, flags and dates
for u in "${accounts[@]}"; do
    IMAP_PASSWORD=${PW[$u]} it_imaptool --port "$SRC_IMAPS_PORT" --tls implicit --ca "$IT_CA" \
        --tls-name "$IT_TLS_NAME" --user "$u" compare --dst-port "$DST_IMAPS_PORT" \
        --dst-tls implicit --dst-ca "$IT_CA" --dst-tls-name "$IT_TLS_NAME" --dst-user "$u" \
        >"$IT_DIR/compare.$u" 2>&1 || { cat "$IT_DIR/compare.$u" >&2; it_fail "$u differs"; }
done

# no password in the database, the outputs or any file written
it_pg_dump >"$IT_DIR/dump.sql"
[[ -s $IT_DIR/dump.sql ]] || it_fail "pg_dump printed nothing"
for u in "${accounts[@]}"; do
    p=${PW[$u]}
    for f in "$IT_DIR"/dump.sql "$IT_DIR"/worker*.out "$IT_DIR"/status.* "$IT_DIR"/submit.out \
        "$IT_DIR"/init.out "$IT_PG_DIR"/postgres.log; do
        if grep -qF -- "$p" "$f"; then
            it_fail "the password of $u appears in $f"
        fi
    done
done
it_pass "30 accounts exact; peaks $max_user/account, $max_src+$max_dst/server; takeover ~${t_take} s"
