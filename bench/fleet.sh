#!/bin/bash
# bench/fleet.sh: the fleet's coordination cost (issue 13), in one command.
#
# usage: bench/fleet.sh                 (as root, on Debian 12, from a clone)
#        FLEET_USERS=8 FLEET_MESSAGES=300 FLEET_REPEAT=3 bench/fleet.sh
#
# One job of the seeded corpus (bench/gen_corpus.py, realistic profile: FLEET_USERS
# accounts x FLEET_MESSAGES messages) copied from one private Dovecot to another on
# 127.0.0.1 (no TLS, no added latency: the engine's own cost shows), five ways:
#   sqlite   `trasloco run JOB --state DIR`: one process, the embedded state (baseline)
#   pg-run   `trasloco run JOB --state postgresql://...`: one process, the state in
#            PostgreSQL, no queue (the state backend's cost alone)
#   w1 w2 w3 `trasloco queue submit` then 1, 2 or 3 `trasloco worker --drain` processes:
#            the queue, its leases and the cluster-wide caps (the whole fleet's cost)
# Every run starts from an empty destination and an empty state, and is verified byte
# for byte (bench/verify.py).  Each worker and the run use FLEET_PARALLEL accounts at
# once (default 4); the job's caps (per account 4, per server 40) are not reached.
# Prints per run: wall time, messages/s, the ratio to sqlite, PostgreSQL transactions
# (pg_stat_database.xact_commit) in all and per 100 messages, and the lease renewals
# the workers' heartbeats made.  The median of FLEET_REPEAT runs (default 1).
# A benchmark, not a test: nothing fails on a slow result.  On a 2-core machine every
# process (trasloco, both Dovecots, PostgreSQL) shares the same cores: more workers
# cannot add CPU, they show the coordination overhead, not a speed-up.
set -euo pipefail
BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$BENCH_DIR/.." && pwd)
FLEET_USERS=${FLEET_USERS:-8}
FLEET_MESSAGES=${FLEET_MESSAGES:-300}
FLEET_PARALLEL=${FLEET_PARALLEL:-4}
FLEET_REPEAT=${FLEET_REPEAT:-1}
FLEET_MODES=${FLEET_MODES:-sqlite pg-run w1 w2 w3}
BENCH_PY=${BENCH_PY:-/usr/bin/python3}
IT_PYTHON=$BENCH_PY
export IT_PYTHON
die() { echo "bench/fleet.sh: $*" >&2; exit 1; }
log() { printf '[fleet %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

"$TOP/tests/deps.sh"
if [[ -z ${TRASLOCO:-} ]]; then
    BUILD=${TMPDIR:-/tmp}/trasloco-bench-build.$(printf '%s' "$TOP" | cksum | cut -d' ' -f1)
    (cd "$TOP" && { [[ -x configure ]] || ./autogen.sh; })
    mkdir -p "$BUILD"
    (
        cd "$BUILD"
        [[ -f Makefile ]] || "$TOP/configure" CFLAGS="-O2 -g" >configure.out 2>&1 ||
            { cat configure.out >&2; exit 1; }
        make -j"$(nproc)" src/trasloco >make.out 2>&1 || { tail -40 make.out >&2; exit 1; }
    ) || die "build failed"
    TRASLOCO=$BUILD/src/trasloco
fi

# shellcheck source=tests/integration/lib.sh
. "$TOP/tests/integration/lib.sh"
# shellcheck source=tests/integration/pg.sh
. "$TOP/tests/integration/pg.sh"
it_init bench-fleet
W=$IT_DIR/w
mkdir -p "$W"
chmod 700 "$W"
it_pg_start
users=$(seq -f 'fleet%g@example.test' 1 "$FLEET_USERS" | tr '\n' ' ')
csv=$W/accounts.csv
users_arg=""
for u in $users; do
    printf '"%s","pw-%s"\n' "$u" "${u%%@*}" >>"$csv"
    users_arg="$users_arg $u:pw-${u%%@*}"
done
chmod 600 "$csv"
it_dovecot_start src USERS="$users_arg" MAX_CONN=50
it_dovecot_start dst USERS="$users_arg" MAX_CONN=50
log "corpus: $FLEET_USERS x $FLEET_MESSAGES realistic messages"
# shellcheck disable=SC2086
"$BENCH_PY" "$BENCH_DIR/gen_corpus.py" --home-root "$SRC_DIR/home" --uid "$IT_MAIL_UID" \
    --gid "$IT_MAIL_GID" --doveadm-conf "$SRC_CONF" --seed 1 --profile realistic \
    --messages "$FLEET_MESSAGES" --max-attach-mb 2 --summary "$W/corpus.json" $users >&2
"$BENCH_PY" "$BENCH_DIR/verify.py" --accounts "$csv" --src-port "$SRC_IMAP_PORT" \
    --dst-port "$DST_IMAP_PORT" --src-cache "$W/src-digests.json" --src-only >&2
total=$("$BENCH_PY" -c 'import json,sys; print(sum(a["messages"] for a in json.load(open(sys.argv[1]))["accounts"]))' "$W/corpus.json" 2>/dev/null || echo $((FLEET_USERS * FLEET_MESSAGES)))

cat >"$W/job.job" <<EOF
src = 127.0.0.1:$SRC_IMAP_PORT
src-tls = none
dst = 127.0.0.1:$DST_IMAP_PORT
dst-tls = none
accounts = accounts.csv
parallel-accounts = $FLEET_PARALLEL
EOF
KEY=$W/queue.key
"$TRASLOCO" queue init "$IT_PG_DSN" --key-file "$KEY" >&2

wipe() {
    it_dovecot_stop dst
    rm -rf "$DST_DIR"/home/*/Maildir
    it_dovecot_restart dst
    rm -rf "$W/state"
    it_pg_psql "TRUNCATE st_accounts, q_jobs, q_workers CASCADE" >/dev/null
}
commits() { it_pg_psql "SELECT xact_commit FROM pg_stat_database WHERE datname = 'trasloco'"; }
now() { date +%s.%N; }

results=$W/results
: >"$results"
one() {
    local mode=$1 t0 t1 ts c0 c1 n pids=() p workers=0 v
    wipe
    sleep 1   # pg_stat_database lags by up to 500 ms
    c0=$(commits)
    t0=$(now)
    case $mode in
    sqlite) "$TRASLOCO" run "$W/job.job" --state "$W/state" --no-progress -q >"$W/$mode.out" 2>&1 ;;
    pg-run) "$TRASLOCO" run "$W/job.job" --state "$IT_PG_DSN" --no-progress -q >"$W/$mode.out" 2>&1 ;;
    w[0-9])
        workers=${mode#w}
        "$TRASLOCO" queue submit "$IT_PG_DSN" "$W/job.job" --key-file "$KEY" >"$W/$mode.out" 2>&1
        ts=$(now)
        for ((p = 0; p < workers; p++)); do
            "$TRASLOCO" worker "$IT_PG_DSN" --key-file "$KEY" --parallel-accounts "$FLEET_PARALLEL" \
                --drain -q >>"$W/$mode.out" 2>&1 &
            pids+=("$!")
        done
        wait "${pids[@]}" ;;
    esac
    t1=$(now)
    [[ -n ${ts:-} ]] || ts=$t0
    sleep 1
    c1=$(commits)
    v=ok
    "$BENCH_PY" "$BENCH_DIR/verify.py" --accounts "$csv" --src-port "$SRC_IMAP_PORT" \
        --dst-port "$DST_IMAP_PORT" --src-cache "$W/src-digests.json" >"$W/$mode.verify" 2>&1 ||
        v=DIFF
    n=$((c1 - c0))
    printf '%s %s %s %s %s\n' "$mode" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')" \
        "$n" "$v" "$(awk -v a="$t0" -v b="$ts" 'BEGIN { printf "%.2f", b - a }')" >>"$results"
    log "$mode: $(tail -n 1 "$results")"
}
# the fixed cost of a worker: start (its connections: SCRAM each), find nothing, stop
fixed=()
for ((r = 0; r < 3; r++)); do
    t0=$(now)
    "$TRASLOCO" worker "$IT_PG_DSN" --key-file "$KEY" --drain -q >/dev/null 2>&1
    fixed+=("$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }')")
done
for ((r = 0; r < FLEET_REPEAT; r++)); do
    for m in $FLEET_MODES; do one "$m"; done
done

echo
echo "fleet: $FLEET_USERS accounts, $total messages, $FLEET_PARALLEL accounts at once per process, $(nproc) cores"
echo "a worker's fixed cost (start, connect, find nothing, stop): ${fixed[*]} s"
"$BENCH_PY" - "$results" "$total" <<'PY'
import sys, statistics
rows = [l.split() for l in open(sys.argv[1])]
total = int(sys.argv[2])
modes = []
for r in rows:
    if r[0] not in modes:
        modes.append(r[0])
med = {m: statistics.median(float(r[1]) for r in rows if r[0] == m) for m in modes}
sub = {m: statistics.median(float(r[4]) for r in rows if r[0] == m) for m in modes}
com = {m: statistics.median(int(r[2]) for r in rows if r[0] == m) for m in modes}
ver = {m: ",".join(sorted(set(r[3] for r in rows if r[0] == m))) for m in modes}
base = med.get("sqlite")
print("| run | wall s | of which submit s | messages/s | wall / sqlite | PG transactions | per 100 msgs | verify |")
print("|---|---|---|---|---|---|---|---|")
for m in modes:
    ratio = "%.2f" % (med[m] / base) if base else "-"
    pg = "-" if m == "sqlite" else "%d" % com[m]
    per = "-" if m == "sqlite" else "%.1f" % (100.0 * com[m] / total)
    sb = "%.2f" % sub[m] if m.startswith("w") else "-"
    print("| %s | %.2f | %s | %.0f | %s | %s | %s | %s |" % (m, med[m], sb, total / med[m], ratio, pg, per, ver[m]))
PY
