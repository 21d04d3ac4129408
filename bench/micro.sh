#!/bin/bash
# bench/micro.sh: the micro-benchmarks, in seconds rather than minutes, no servers.
#
# usage: bench/micro.sh [BUILD_DIR]       (default: ./build, configured already)
#
#   bench_limiter  the connection limiter with BENCH_LOGINS (60000) distinct logins, as
#                  `trasloco check` or `run` of a large CSV drives it: wall time, ns per
#                  acquire+release, peak RSS; one thread, then 8.
#   bench_state    the state's write pattern (per APPEND batch, one transaction for the
#                  pending rows and one for the done rows) with synchronous=NORMAL and
#                  FULL side by side, in batches of 1, 10 and 100, up to BENCH_MESSAGES
#                  (20000) messages; in BENCH_STATE_DIR (default ${TMPDIR:-/tmp}), which
#                  must be on the disk the state lives on (an fsync on tmpfs is free).
#   check          `trasloco check` of BENCH_LOGINS accounts whose servers refuse the
#                  connection (127.0.0.1 port 1): the per-account local work end to end
#                  (CSV, limiter, report) without IMAP.
# Numbers, not verdicts: nothing fails on a slow result.  Compare two versions by
# running this in a build of each (bench_limiter uses only the limiter's public API).
set -euo pipefail
build=${1:-build}
dir=${BENCH_STATE_DIR:-${TMPDIR:-/tmp}}
make -C "$build" src/trasloco bench/bench_limiter bench/bench_state >/dev/null
echo "== limiter ($(nproc) CPUs)"
"$build/bench/bench_limiter" "${BENCH_LOGINS:-60000}" 8
echo "== state ($(df -T "$dir" | awk 'NR == 2 { print $1 " " $2 }') at $dir)"
"$build/bench/bench_state" "$dir" "${BENCH_MESSAGES:-20000}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
n=${BENCH_LOGINS:-60000}
awk -v n="$n" 'BEGIN { for (i = 0; i < n; i++) printf "user%06d@customer.example,pw%d\n", i, i }' \
    > "$tmp/accounts.csv"
chmod 600 "$tmp/accounts.csv"
echo "== check of $n accounts, servers refusing the connection"
TIMEFORMAT="check  accounts=$n  wall %R s  user %U s  sys %S s"
time "$build/src/trasloco" check "$tmp/accounts.csv" --src 127.0.0.1:1 --src-tls none \
    --dst 127.0.0.1:1 --dst-tls none --state "$tmp/state" --parallel-accounts 8 \
    --no-progress > "$tmp/out" 2>&1 || true
tail -n 1 "$tmp/out"
