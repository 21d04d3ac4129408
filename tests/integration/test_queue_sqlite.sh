#!/bin/bash
# A queue in a directory (SQLite) on one host, no PostgreSQL: `trasloco queue
# init DIR`, `queue submit DIR job.job` (10 accounts), then two `trasloco
# worker DIR --drain` processes on the same DIR at once against two real
# Dovecots (the source behind faultproxy.py at 3 MB/s per session, so that
# an account takes a few seconds); the job's caps: 1 session per account.
# Mid-job the second
# worker is SIGKILLed while it copies an account: the first takes it over
# once its lease expires (--lease 5) and finishes the job.  Then:
#   - the job is done, every account ok and exact on the destination;
#   - no account ran twice at once: the servers' own counts (doveadm who,
#     sampled all along) never saw two sessions of one account, and the
#     state's account lock (DIR/locks) never turned a worker away;
#   - at least one account was taken over;
#   - DIR/queue.sqlite is private (0600) and no password is in any file of
#     DIR (the queue, its write-ahead log, the state) or any output.
# Bounded: every wait ends within 300 s.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_init queue-sqlite
: "${TRASLOCO:?}"
LEASE=5
Q=$IT_DIR/queue           # made by queue init

declare -A PW
users=""
accounts=()
for i in $(seq -w 1 10); do
    u=s$i@one.test
    accounts+=("$u")
    PW[$u]="pw-$i, \"sq\" $i"
    users+="$u:$(printf '%s' "${PW[$u]}" | sed 's/%/%25/g; s/ /%20/g') "
done
it_dovecot_start src "USERS=$users" MAX_CONN=2
it_dovecot_start dst "USERS=$users" MAX_CONN=2
for u in "${accounts[@]}"; do
    profile=small
    [[ $u == s0[1-3]* ]] && profile=standard    # s01..s03: 200 messages each, the rest 20
    IMAP_PASSWORD=${PW[$u]} it_imaptool --port "$SRC_IMAPS_PORT" --tls implicit \
        --ca "$IT_CA" --tls-name "$IT_TLS_NAME" --user "$u" populate --seed 17 \
        --profile "$profile" >/dev/null &
done
wait

# the source, slowed: the second worker is caught copying
"$IT_PYTHON" "$IT_LIBDIR/faultproxy.py" --upstream-port "$SRC_IMAPS_PORT" --raw \
    --fault 'on=connect,do=trickle,rate=3000000,times=always' --log "$IT_DIR/fp.log" \
    --port-file "$IT_DIR/fp.port" >/dev/null 2>&1 &
it_at_exit "kill $! 2>/dev/null || true"
for _ in $(seq 1 100); do [[ -s $IT_DIR/fp.port ]] && break; sleep 0.05; done
[[ -s $IT_DIR/fp.port ]] || it_fail "faultproxy did not start"
SLOW_SRC_PORT=$(cat "$IT_DIR/fp.port")

csv=$IT_DIR/accounts.csv
{
    printf 'email,password\n'
    for u in "${accounts[@]}"; do printf '"%s","%s"\n' "$u" "${PW[$u]//\"/\"\"}"; done
} >"$csv"
chmod 600 "$csv"
cat >"$IT_DIR/one.job" <<EOF
src = $IT_HOST:$SLOW_SRC_PORT
src-tls = implicit
src-tls-name = $IT_TLS_NAME
dst = $IT_HOST:$DST_IMAPS_PORT
dst-tls = implicit
dst-tls-name = $IT_TLS_NAME
ca-file = $IT_CA
accounts = accounts.csv
src-max-per-account = 1
dst-max-per-account = 1
batch-count = 5
timeout = 20
EOF

KEY=$IT_DIR/queue.key
"$TRASLOCO" queue init "$Q" --key-file "$KEY" >"$IT_DIR/init.out" 2>&1 ||
    it_fail "queue init failed: $(cat "$IT_DIR/init.out")"
grep -q 'tables created' "$IT_DIR/init.out" || it_fail "queue init: $(cat "$IT_DIR/init.out")"
[[ $(stat -c %a "$Q") == 700 && $(stat -c %a "$Q/queue.sqlite") == 600 ]] ||
    it_fail "the queue is not private: $(stat -c '%a %n' "$Q" "$Q/queue.sqlite")"
[[ $(stat -c %a "$KEY") == 600 ]] || it_fail "the key file is not private"
# an unknown kind of location is refused, naming the known ones
rc=0
"$TRASLOCO" queue status "mysql://db/q" >"$IT_DIR/unknown.out" 2>&1 || rc=$?
((rc == 2)) && grep -q 'sqlite:DIR' "$IT_DIR/unknown.out" ||
    it_fail "mysql:// was not refused as it should: $rc $(cat "$IT_DIR/unknown.out")"
"$TRASLOCO" queue submit "$Q" "$IT_DIR/one.job" --key-file "$KEY" \
    >"$IT_DIR/submit.out" 2>&1 || it_fail "queue submit failed: $(cat "$IT_DIR/submit.out")"
grep -q '10 account(s) queued' "$IT_DIR/submit.out" || it_fail "submit: $(cat "$IT_DIR/submit.out")"

# the servers' own counts, all along
samples=$IT_DIR/samples
sampler() {
    while :; do
        for side in src dst; do
            it_doveadm "$side" who -1 2>/dev/null | awk -v s="$side" \
                'NR > 1 && $2 == "imap" { n[$1]++ } END { for (u in n) print s, u, n[u] }'
        done >>"$samples"
        sleep 0.1
    done
}
: >"$samples"
sampler &
sampler_pid=$!
it_at_exit "kill $sampler_pid 2>/dev/null || true"

pids=()
for w in 1 2; do
    "$TRASLOCO" worker "sqlite:$Q" --key-file "$KEY" --parallel-accounts 2 --lease "$LEASE" \
        --drain >"$IT_DIR/worker$w.out" 2>&1 &
    pids+=("$!")
done
it_at_exit "kill ${pids[*]} 2>/dev/null || true"

# running_of PID MIN: the accounts worker PID runs now with at least MIN
# messages copied (from the queue's own status, read while both write)
running_of() {
    "$TRASLOCO" queue status "$Q" one --json 2>"$IT_DIR/poll.err" | tee "$IT_DIR/poll.json" |
        "$IT_PYTHON" -c '
import json, sys
pid, least = sys.argv[1], int(sys.argv[2])
try:
    s = json.load(sys.stdin)
except ValueError:
    sys.exit(0)
for a in s["jobs"][0]["account_list"]:
    if a["state"] == "running" and (":%s:" % pid) in (a["worker"] or "") and a["copied"] >= least:
        print(a["email"])' "$1" "$2"
}
w2=${pids[1]}
held=""
for ((i = 0; i < 1000; i++)); do
    held=$(running_of "$w2" 1)
    [[ -n $held ]] && break
    kill -0 "$w2" 2>/dev/null || break
    sleep 0.3
done
[[ -n $held ]] || it_fail "worker 2 never copied an account (no mid-job kill possible): $(cat "$IT_DIR/poll.err" "$IT_DIR/poll.json")"
kill -9 "$w2"
# what it held when it died (its rows stay running until their leases end)
held=$(running_of "$w2" 0)
[[ -n $held ]] || it_fail "worker 2 finished its accounts just before the kill: nothing to take over"
it_log "SIGKILLed worker 2 (pid $w2) while it copied: $(echo $held)"

for ((i = 0; i < 3000; i++)); do
    kill -0 "${pids[0]}" 2>/dev/null || break
    sleep 0.1
done
if kill -0 "${pids[0]}" 2>/dev/null; then
    "$TRASLOCO" queue status "$Q" one >&2 || true
    sed 's/^/    w1 | /' "$IT_DIR/worker1.out" | grep -v ' info ' >&2 || true
    it_fail "worker 1 did not finish the job within 300 s"
fi
rc1=0
wait "${pids[0]}" || rc1=$?
wait "$w2" 2>/dev/null || true
kill "$sampler_pid" 2>/dev/null || true
wait "$sampler_pid" 2>/dev/null || true
for w in 1 2; do sed "s/^/    w$w | /" "$IT_DIR/worker$w.out" | grep -v ' info ' >&2 || true; done
((rc1 == 0)) || it_fail "worker 1 exited $rc1"

"$TRASLOCO" queue status "$Q" one >"$IT_DIR/status.out" 2>&1 ||
    it_fail "queue status failed: $(cat "$IT_DIR/status.out")"
"$TRASLOCO" queue status "$Q" one --json >"$IT_DIR/status.json" 2>"$IT_DIR/status.err" ||
    it_fail "queue status --json failed: $(cat "$IT_DIR/status.err")"
sed 's/^/    | /' "$IT_DIR/status.out" >&2
"$IT_PYTHON" - "$IT_DIR/status.json" "$(echo $held)" <<'PY' || it_fail "the job is not as it should be: $(cat "$IT_DIR/status.json")"
import json, sys
j = json.load(open(sys.argv[1]))["jobs"][0]
held = sys.argv[2].split()
assert j["state"] == "done", j["state"]
assert j["accounts"]["ok"] == 10, j["accounts"]
acc = {a["email"]: a for a in j["account_list"]}
took = [e for e, a in acc.items() if a["takeovers"] > 0]
assert took, "no account was taken over"
for e in held:
    assert acc[e]["takeovers"] >= 1 and acc[e]["attempts"] >= 2, acc[e]
print("taken over: %s" % " ".join(sorted(took)), file=sys.stderr)
PY

# no account ran twice at once
max_user=$(awk '$3 > m { m = $3 } END { print m + 0 }' "$samples")
it_log "sessions per account seen by the servers: at most $max_user (cap 1), $(wc -l <"$samples") samples"
((max_user <= 1)) || it_fail "an account had $max_user sessions at once on a server"
((max_user >= 1)) || it_fail "the sampler never saw a session: it proves nothing"
if grep -h 'another trasloco run is migrating this account' "$IT_DIR"/worker*.out; then
    it_fail "an account was handed to a worker while another ran it"
fi

# every account exact: nothing missing, nothing doubled, flags and dates
for u in "${accounts[@]}"; do
    IMAP_PASSWORD=${PW[$u]} it_imaptool --port "$SRC_IMAPS_PORT" --tls implicit --ca "$IT_CA" \
        --tls-name "$IT_TLS_NAME" --user "$u" compare --dst-port "$DST_IMAPS_PORT" \
        --dst-tls implicit --dst-ca "$IT_CA" --dst-tls-name "$IT_TLS_NAME" --dst-user "$u" \
        >"$IT_DIR/compare.$u" 2>&1 || { cat "$IT_DIR/compare.$u" >&2; it_fail "$u differs"; }
done

# the state lives beside the queue, and no password is in any of it
[[ -f $Q/state.db && -f $Q/queue.sqlite ]] || it_fail "the state is not beside the queue: $(ls "$Q")"
for u in "${accounts[@]}"; do
    p=${PW[$u]}
    for f in "$Q"/* "$IT_DIR"/worker*.out "$IT_DIR"/status.* "$IT_DIR"/submit.out \
        "$IT_DIR"/init.out; do
        [[ -f $f ]] || continue
        if grep -qaF -- "$p" "$f"; then
            it_fail "the password of $u appears in $f"
        fi
    done
done
it_pass "10 accounts exact by two workers on one queue directory (one killed, its account taken over); at most $max_user session per account"
