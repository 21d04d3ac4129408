#!/bin/bash
# Throttles held by a fleet: two worker processes sharing a real PostgreSQL
# keep a job's rates and day budgets together, not each its own.
#   1. A queued job of 4 accounts (about 40 MB) with src-max-bytes-per-second
#      2M, its source behind rateproxy.py, run by two workers of 2 accounts
#      each: the bytes the proxy forwarded, over every full 5-second window,
#      are never more than 10 % over 2,000,000 bytes/s (each worker keeping
#      the rate alone would make about twice that); the copy is exact.
#   2. A queued job of 4 accounts (about 8 MB) with src-max-bytes-per-day 5M,
#      two workers: what the source gave (the proxy's count) stays within the
#      budget and its protocol's share; the accounts the budget stopped are
#      paused (pending, not before the next 00:00 UTC) and do not hold the
#      draining workers (exit 0, no account failed).  Then "the next day" (the
#      day's count and the not-before times cleared in the database: the clock
#      cannot be moved): two workers finish the job, exact, nothing doubled.
# The numbers measured are printed; no assertion on speed.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pg.sh"
it_init throttle-fleet
. "$IT_LIBDIR/common.sh"
. "$IT_LIBDIR/rate.sh"
it_pg_start

R=(r1@fleetrate.test r2@fleetrate.test r3@fleetrate.test r4@fleetrate.test)
D=(d1@fleetrate.test d2@fleetrate.test d3@fleetrate.test d4@fleetrate.test)
enc=$(printf '%s' "$PW" | sed 's/%/%25/g; s/ /%20/g')
users=""
for u in "${R[@]}" "${D[@]}"; do users+="$u:$enc "; done
umask 077
export IMAP_PASSWORD=$PW
it_dovecot_start src "USERS=$users"
it_dovecot_start dst "USERS=$users"

n=0
for u in "${R[@]}"; do   # 40 messages of about 250 kB each: 10 MB an account
    n=$((n + 1))
    src_tool --user "$u" append --folder INBOX --count 20 --seed "$n" --size-kb 250 >/dev/null &
    src_tool --user "$u" append --folder Archive --count 20 --seed "$((n + 10))" --size-kb 250 \
        >/dev/null &
done
for u in "${D[@]}"; do   # 20 messages of about 100 kB: 2 MB an account
    n=$((n + 1))
    src_tool --user "$u" append --folder INBOX --count 20 --seed "$((n + 20))" --size-kb 100 \
        >/dev/null &
done
wait

KEY=$IT_DIR/queue.key
"$TRASLOCO" queue init "$IT_PG_DSN" --key-file "$KEY" >"$IT_DIR/init.out" 2>&1 ||
    it_fail "queue init failed: $(cat "$IT_DIR/init.out")"
csv() { # FILE USERS...
    local f=$1 u
    shift
    { printf 'email,password\n'; for u in "$@"; do printf '"%s","%s"\n' "$u" "${PW//\"/\"\"}"; done; } >"$f"
}
submit() { # NAME PROXY-PORT EXTRA-KEY-LINE
    cat >"$IT_DIR/$1.job" <<EOF
src = $IT_HOST:$2
src-tls = none
dst = $IT_HOST:$DST_IMAP_PORT
dst-tls = none
accounts = $1.csv
parallel-accounts = 2
timeout = 30
$3
EOF
    "$TRASLOCO" queue submit "$IT_PG_DSN" "$IT_DIR/$1.job" --key-file "$KEY" \
        >"$IT_DIR/submit.$1.out" 2>&1 || it_fail "queue submit $1 failed: $(cat "$IT_DIR/submit.$1.out")"
}
# workers NAME: two draining workers of 2 accounts each, to their end (at most 300 s)
workers() {
    local pids=() w i rc
    for w in 1 2; do
        "$TRASLOCO" worker "$IT_PG_DSN" --key-file "$KEY" --parallel-accounts 2 --drain \
            >"$IT_DIR/$1.worker$w.out" 2>&1 &
        pids+=("$!")
    done
    it_at_exit "kill ${pids[*]} 2>/dev/null || true"
    for ((i = 0; i < 3000; i++)); do
        kill -0 "${pids[0]}" 2>/dev/null || kill -0 "${pids[1]}" 2>/dev/null || break
        sleep 0.1
    done
    for w in 1 2; do
        if kill -0 "${pids[w - 1]}" 2>/dev/null; then
            grep -v ' info ' "$IT_DIR/$1.worker$w.out" | sed "s/^/    w$w | /" >&2 || true
            it_fail "$1: worker $w did not end within 300 s"
        fi
        rc=0
        wait "${pids[w - 1]}" || rc=$?
        grep -E ' (warning|error) ' "$IT_DIR/$1.worker$w.out" | sed "s/^/    w$w | /" >&2 || true
        ((rc == 0)) || it_fail "$1: worker $w exited $rc"
    done
}
q() { it_pg_psql "$1"; }

# ---- 1. a byte rate held by two workers -------------------------------------
csv "$IT_DIR/rate.csv" "${R[@]}"
start_proxy rate "$SRC_IMAP_PORT"
submit rate "$PROXY_PORT" "src-max-bytes-per-second = 2M"
t0=$(date +%s)
workers rate
t1=$(date +%s)
stop_proxy rate
# both workers copied: otherwise one process kept the rate and this proves nothing
for w in 1 2; do
    grep -qE 'r[1-4]@fleetrate.test.*(ok|done)' "$IT_DIR/rate.worker$w.out" ||
        it_fail "worker $w copied no account: $(tail -n 5 "$IT_DIR/rate.worker$w.out")"
done
it_log "part 1: 4 accounts by 2 workers in $((t1 - t0)) s"
[[ $(q "SELECT count(*) FROM st_rates WHERE key = 'src $IT_HOST:$PROXY_PORT bytes/s'") == 1 ]] ||
    it_fail "no shared schedule in the state"
windows rate down 2000000 bytes >&2 ||
    it_fail "two workers together passed 2 MB/s + 10 % in a 5 s window"
[[ $(q "SELECT count(*) FROM q_accounts a JOIN q_jobs j ON j.id = a.job_id WHERE j.name = 'rate' AND a.state = 'ok'") == 4 ]] ||
    it_fail "not every account of the rate job is ok"
for u in "${R[@]}"; do compare "$u"; done

# ---- 2. a day budget held by two workers ------------------------------------
csv "$IT_DIR/day.csv" "${D[@]}"
start_proxy day "$SRC_IMAP_PORT"
submit day "$PROXY_PORT" "src-max-bytes-per-day = 5M"
workers day
proxy_counts day "$IT_DIR/day1.json"
jobq="FROM q_accounts a JOIN q_jobs j ON j.id = a.job_id WHERE j.name = 'day'"
down=$("$IT_PYTHON" -c 'import json, sys; print(sum(json.load(open(sys.argv[1]))["down"]))' "$IT_DIR/day1.json")
fetched=$("$IT_PYTHON" -c 'import json, sys; print(sum(json.load(open(sys.argv[1]))["fetched"]))' "$IT_DIR/day1.json")
counted=$(q "SELECT coalesce(sum(bytes), 0) FROM st_day_bytes WHERE key = 'src $IT_HOST:$PROXY_PORT'")
paused=$(q "SELECT count(*) $jobq AND a.state = 'pending' AND a.not_before >= date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' + interval '1 day' - interval '1 minute'")
failed=$(q "SELECT count(*) $jobq AND a.state NOT IN ('ok', 'pending')")
it_log "part 2: the source gave $down bytes ($fetched messages) against a budget of 5,000,000; the state counted $counted; $paused account(s) paused"
((counted <= 5000000)) || it_fail "the state counted $counted bytes, over the day's budget"
# the budget counts message bytes; the rest is the protocol (logins, lists, metadata)
((down <= 5400000)) || it_fail "the source gave $down bytes with a day budget of 5,000,000"
((paused >= 1)) || it_fail "no account paused (8 MB against a 5 MB budget)"
((failed == 0)) || it_fail "$failed account(s) of the day job failed: $(q "SELECT state, error $jobq")"
grep -h 'paused' "$IT_DIR"/day.worker?.out | head -n 2 | sed 's/^/    | /' >&2 || true

# "the next day"
q "DELETE FROM st_day_bytes WHERE key = 'src $IT_HOST:$PROXY_PORT'" >/dev/null
q "UPDATE q_accounts SET not_before = NULL WHERE not_before IS NOT NULL" >/dev/null
workers day2
stop_proxy day
[[ $(q "SELECT count(*) $jobq AND a.state = 'ok'") == 4 ]] ||
    it_fail "the day job did not finish the next day: $(q "SELECT a.state, a.error $jobq")"
for u in "${D[@]}"; do compare "$u"; done
it_pass "a rate and a day budget held by two workers together"
