# shellcheck shell=bash
# tests/integration/rate.sh: what the throttle tests share (test_throttle.sh,
# test_throttle_fleet.sh): their measure, and the plain-port tools.  Source after
# lib.sh and it_init.
#
# src_tool ARGS...                 imaptool on the source's plain port
# compare USER                     source and destination of USER alike (plain
#                                  ports; the last line of the comparison printed)
# start_proxy NAME UPSTREAM-PORT   rateproxy.py in front of a plain IMAP port:
#                                  $PROXY_PORT, $PROXY_PID
# stop_proxy NAME                  SIGTERM it; its counts are in $IT_DIR/NAME.json
# proxy_counts NAME OUT            the counts so far into OUT (the proxy goes on)
# windows NAME KEY LIMIT UNIT      every full 5 s window of the counts against
#                                  LIMIT per second (below)

src_tool() { it_imaptool --port "$SRC_IMAP_PORT" --tls none "$@"; }
compare() { # USER
    local out=$IT_DIR/compare.$1.out
    if ! it_imaptool --port "$SRC_IMAP_PORT" --tls none --user "$1" \
        compare --dst-port "$DST_IMAP_PORT" --dst-tls none --dst-user "$1" -v > "$out" 2>&1; then
        cat "$out" >&2
        it_fail "$1: source and destination differ"
    fi
    tail -n 1 "$out" >&2
}
# start_proxy NAME UPSTREAM-PORT -> $PROXY_PORT, $PROXY_PID
start_proxy() {
    local i
    rm -f "$IT_DIR/$1.port" "$IT_DIR/$1.json"
    "$IT_PYTHON" "$IT_LIBDIR/rateproxy.py" --upstream-port "$2" --port-file "$IT_DIR/$1.port" \
        --out "$IT_DIR/$1.json" </dev/null >"$IT_DIR/$1.out" 2>&1 &
    PROXY_PID=$!
    it_at_exit "kill $PROXY_PID 2>/dev/null || true"
    for ((i = 0; i < 200; i++)); do
        [[ -s $IT_DIR/$1.port ]] && break
        sleep 0.05
    done
    [[ -s $IT_DIR/$1.port ]] || it_fail "rateproxy did not start: $(cat "$IT_DIR/$1.out")"
    # shellcheck disable=SC2034 # read by the tests that source this file
    PROXY_PORT=$(cat "$IT_DIR/$1.port")
}
stop_proxy() { # NAME
    local i
    kill -TERM "$PROXY_PID"
    for ((i = 0; i < 100; i++)); do
        [[ -s $IT_DIR/$1.json ]] && return 0
        sleep 0.05
    done
    it_fail "rateproxy wrote no counts"
}
# windows NAME KEY LIMIT UNIT: every full 5 s window of KEY's counts, from the first
# tick at or above a tenth of the limit's tick share (the copy has begun) to the last
# non-zero tick, printed against LIMIT per second; fails when one is over LIMIT by
# more than 10 % (under it by more is printed, not failed: that is speed)
windows() {
    "$IT_PYTHON" - "$IT_DIR/$1.json" "$2" "$3" "$4" <<'EOF'
import json, sys
counts = json.load(open(sys.argv[1]))
key, limit, unit = sys.argv[2], float(sys.argv[3]), sys.argv[4]
v = counts[key]
per_tick = limit * counts["tick"]
first = next(i for i, x in enumerate(v) if x >= per_tick / 10)
last = max(i for i, x in enumerate(v) if x > 0)
n = int(round(5 / counts["tick"]))
rates = []
for s in range(first, last + 1 - n + 1, n):
    rates.append(sum(v[s:s + n]) / 5.0)
total = sum(v[first:last + 1])
print("%s: %d full 5 s windows over %.1f s, %s %s in all" % (
    key, len(rates), (last + 1 - first) * counts["tick"], total, unit))
for i, r in enumerate(rates):
    print("  window %d: %.1f %s/s (%.1f %% of the limit)" % (i + 1, r, unit, 100 * r / limit))
if not rates:
    print("no full window: the copy was too short"); sys.exit(1)
lo, hi = min(rates), max(rates)
print("min %.1f %%, max %.1f %% of %.0f %s/s" % (100 * lo / limit, 100 * hi / limit, limit, unit))
# Over the limit is the throttle's failure; under it may be a loaded machine (a
# full make check on 2 cores once gave a 74 % window): said, not failed.
if lo < 0.9 * limit:
    print("NOTE: a window under 90 % of the limit (a slow or loaded machine?)")
sys.exit(0 if hi <= 1.1 * limit else 1)
EOF
}
proxy_counts() { # NAME OUT
    local i
    rm -f "$IT_DIR/$1.json"
    kill -USR1 "$PROXY_PID"
    for ((i = 0; i < 100; i++)); do
        [[ -s $IT_DIR/$1.json ]] && { mv "$IT_DIR/$1.json" "$2"; return 0; }
        sleep 0.05
    done
    it_fail "rateproxy wrote no counts"
}
