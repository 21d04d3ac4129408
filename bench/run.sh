#!/bin/bash
# bench/run.sh: trasloco's performance benchmark (issue 6), in one command.
#
# usage: bench/run.sh                      the full benchmark (about 10 minutes with the peers)
#        BENCH_FULLS=3 bench/run.sh        each full copy 3 times, median (15-20 minutes)
#        BENCH_QUICK=1 bench/run.sh        a smoke test with a small corpus (1-2 minutes)
#        BENCH_SCENARIOS="b c" BENCH_PEERS=0 bench/run.sh     a subset, trasloco only
#
# What it does, on this machine only (everything on 127.0.0.1, in a temporary directory):
#  1. tests/deps.sh (installs the Debian packages the tests need when missing; nothing else
#     is installed), then builds trasloco with -O2 in $TMPDIR/trasloco-bench-build.N (one
#     per checkout; incremental: make only rebuilds what changed; ./autogen.sh first in a
#     fresh clone) unless TRASLOCO=path is given.
#  2. starts two Dovecots with tests/integration/lib.sh ("src" and "dst",
#     mail_max_userip_connections = 10; dst with Dovecot's default mail_fsync = optimized
#     instead of the tests' never), writes a seeded corpus straight into src's Maildirs
#     with bench/gen_corpus.py (4 accounts x 300 realistic messages, ~507 MB, 11 folders;
#     plus one account of 2,000 and one of 20,000 small messages) and reads the whole
#     source once with bench/verify.py (its digests are kept: the source never changes,
#     so every later check reads only the destination).
#  3. starts bench/delayproxy.py (RTT BENCH_RTT_MS, default 20 ms) in front of both servers.
#  4. runs each scenario: the destination is emptied (dst stopped, its Maildirs removed,
#     restarted), trasloco copies everything ("full"), then runs again with nothing new
#     ("rerun", repeated: median); each run is timed (/usr/bin/time -v, or bench/timeit.py
#     when the `time` package is missing: wall, user+sys CPU, peak RSS), the servers' CPU
#     is read from their masters (/proc/PID/stat utime+stime+cutime+cstime, reaped imap
#     and imap-login children included), the CPU of every other process is noted (a
#     disturbed run is measured again), the proxy counts commands and waits per
#     connection, and bench/verify.py compares dst with src byte for byte.  With peers,
#     doveadm (dsync over imapc) and mbsync do the same runs right after trasloco's
#     (bench/peers.sh), on the same servers, corpus and latency.
#        a  0 ms RTT, one account at a time (4 accounts, 1200 messages)
#        b  20 ms RTT, one account at a time       (its rerun is the issue's "d")
#        c  20 ms RTT, 4 accounts at once
#        e  0 ms RTT, 4 accounts at once
#        f  implicit TLS at 0 ms, one account at a time (certificates verified)
#        s2000, s20000  one account of N small messages in 11 folders: full copy at 0 ms,
#                       rerun at 20 ms (how cost grows with mailbox size)
#  5. prints the table (bench/table.py): per run messages/s, MB/s, wall, CPU, peak RSS,
#     servers' CPU, verification, rerun time; ratios trasloco/peer; the issue's targets;
#     commands and waits per message.  Results stay in $BENCH_OUT.
#
# Environment knobs:
#   TRASLOCO=path          use this binary (no build)
#   BENCH_BUILD_DIR=dir    where to build (default: ${TMPDIR:-/tmp}/trasloco-bench-build.N)
#   BENCH_QUICK=1          small corpus: 4 x 40 messages, attachments <= 3 MB, scale 200/1000
#   BENCH_SCENARIOS="a b c e f scale"   which scenarios (scale = the s<N> ones)
#   BENCH_PEERS=auto|1|0   run doveadm and mbsync too: auto = those installed (default),
#                          1 = both required, 0 = trasloco only
#   BENCH_PEER_TOOLS="doveadm mbsync"
#   BENCH_RTT_MS=20        the delayed scenarios' RTT
#   BENCH_USERS=4 BENCH_MESSAGES=300 BENCH_SEED=1 BENCH_MAX_ATTACH_MB=0 (0: no cap)
#   BENCH_SCALE="2000 20000"   sizes of the small-message accounts ("" for none)
#   BENCH_MAX_CONN=10      the servers' mail_max_userip_connections
#   BENCH_DST_FSYNC=optimized   the destination's mail_fsync (Dovecot's default, as in the
#                          issue's figures; never = what the tests use: no disk flushes)
#   BENCH_VERIFY=1         0 skips the verification (faster, proves nothing)
#   BENCH_QUIET=1          before each run, wait (BENCH_QUIET_WAIT=120 s at most) until
#                          other processes use < 0.2 core; BENCH_RETRIES=2: a full copy
#                          during which they used > 0.2 core is measured again (up to
#                          2 more times; the last measurement is the one shown)
#   BENCH_FULLS=1          repetitions of each full copy (each on an emptied destination,
#                          each verified; the table shows the median and the range):
#                          3 on a machine shared with other work
#   BENCH_RERUNS=3         repetitions of each rerun (while they take < 10 s in all): the
#                          table shows the median; the first one is verified
#   BENCH_OUT=dir          results (default /tmp/trasloco-bench-DATE): results.csv,
#                          table.md, corpus-*.json, proxy-stats.jsonl, runs/ (each run's
#                          output, /usr/bin/time -v, verification, trasloco's logs)
#   BENCH_KEEP=1           keep the servers' directory (corpus, dst, state) after the run
#   TRASLOCO_ARGS="..."    extra options for every trasloco run (e.g. --batch-size 8)
#   TRASLOCO_WRAP="..."    a command prefix for every trasloco run, "{}" standing for
#                          $BENCH_OUT/runs/trasloco-SCEN-MODE, e.g.
#                          TRASLOCO_WRAP='strace -f -c -o {}.strace' or
#                          TRASLOCO_WRAP='perf record -g -o {}.perf --' (it distorts the
#                          timings, and its CPU and RSS are counted with trasloco's)
# Exit status: 0 when every run finished (look at the verify column), 1 on a set-up error.
# A benchmark, not a test: nothing here is part of `make check`, and numbers move with
# whatever else runs on the machine (2 cores are shared by the tool, both Dovecots and
# the proxy).
set -euo pipefail
BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$BENCH_DIR/.." && pwd)

BENCH_QUICK=${BENCH_QUICK:-0}
if [[ $BENCH_QUICK == 1 ]]; then
    : "${BENCH_MESSAGES:=40}" "${BENCH_MAX_ATTACH_MB:=3}" "${BENCH_SCALE=200 1000}"
fi
BENCH_USERS=${BENCH_USERS:-4}
BENCH_MESSAGES=${BENCH_MESSAGES:-300}
BENCH_SEED=${BENCH_SEED:-1}
BENCH_MAX_ATTACH_MB=${BENCH_MAX_ATTACH_MB:-0}
BENCH_SCALE=${BENCH_SCALE-2000 20000}
BENCH_SCENARIOS=${BENCH_SCENARIOS:-a b c e f scale}
BENCH_PEERS=${BENCH_PEERS:-auto}
BENCH_PEER_TOOLS=${BENCH_PEER_TOOLS:-doveadm mbsync}
BENCH_RTT_MS=${BENCH_RTT_MS:-20}
BENCH_MAX_CONN=${BENCH_MAX_CONN:-10}
BENCH_DST_FSYNC=${BENCH_DST_FSYNC:-optimized}
BENCH_VERIFY=${BENCH_VERIFY:-1}
BENCH_RERUNS=${BENCH_RERUNS:-3}
BENCH_FULLS=${BENCH_FULLS:-1}
BENCH_QUIET=${BENCH_QUIET:-1}
BENCH_RETRIES=${BENCH_RETRIES:-2}
export BENCH_QUIET
BENCH_OUT=${BENCH_OUT:-${TMPDIR:-/tmp}/trasloco-bench-$(date +%Y%m%d-%H%M%S)}
TRASLOCO_ARGS=${TRASLOCO_ARGS:-}
TRASLOCO_WRAP=${TRASLOCO_WRAP:-}
BENCH_PY=${BENCH_PY:-/usr/bin/python3}
[[ -x $BENCH_PY ]] || BENCH_PY=python3
IT_PYTHON=$BENCH_PY
export BENCH_DIR BENCH_OUT BENCH_PY BENCH_RTT_MS BENCH_VERIFY IT_PYTHON

die() { echo "bench/run.sh: $*" >&2; exit 1; }

# ---- 1. packages and the binary ------------------------------------------------------
"$TOP/tests/deps.sh"
if [[ -z ${TRASLOCO:-} ]]; then
    # outside the tree (one per checkout): the benchmark leaves the repository as it was
    BENCH_BUILD_DIR=${BENCH_BUILD_DIR:-${TMPDIR:-/tmp}/trasloco-bench-build.$(printf '%s' "$TOP" | cksum | cut -d' ' -f1)}
    (cd "$TOP" && { [[ -x configure ]] || ./autogen.sh; })
    mkdir -p "$BENCH_BUILD_DIR"
    (
        cd "$BENCH_BUILD_DIR"
        [[ -f Makefile ]] || "$TOP/configure" CFLAGS="-O2 -g" >configure.out 2>&1 ||
            { cat configure.out >&2; exit 1; }
        make -j"$(nproc)" src/trasloco >make.out 2>&1 || { tail -40 make.out >&2; exit 1; }
    ) || die "build failed"
    TRASLOCO=$BENCH_BUILD_DIR/src/trasloco
fi
[[ -x $TRASLOCO ]] || die "TRASLOCO=$TRASLOCO is not executable"
TRASLOCO=$(cd "$(dirname "$TRASLOCO")" && pwd)/$(basename "$TRASLOCO")

PEERS=""
case $BENCH_PEERS in
0 | no) ;;
1 | yes | auto)
    for t in $BENCH_PEER_TOOLS; do
        if command -v "$t" >/dev/null; then
            PEERS="$PEERS $t"
        elif [[ $BENCH_PEERS != auto ]]; then
            die "peer $t not installed (apt-get install -y isync dovecot-core)"
        fi
    done ;;
*) die "BENCH_PEERS must be auto, 1 or 0" ;;
esac

mkdir -p "$BENCH_OUT"
BENCH_OUT=$(cd "$BENCH_OUT" && pwd)
echo "bench: results in $BENCH_OUT" >&2

# ---- 2. servers and corpus -----------------------------------------------------------
IT_KEEP=${BENCH_KEEP:-0}
export IT_KEEP
# shellcheck source=tests/integration/lib.sh
. "$TOP/tests/integration/lib.sh"
# shellcheck source=bench/common.sh
. "$BENCH_DIR/common.sh"
it_init bench
BENCH_W=$IT_DIR/bench
mkdir -p "$BENCH_W"
chmod 700 "$BENCH_W"
export BENCH_W

# The test certificate names DNS:mail.test only.  trasloco connects to 127.0.0.1 and
# verifies "mail.test" (--src-tls-name); doveadm's imapc can only verify the address it
# connects to, so the bench re-issues the server certificate (same throwaway CA) with
# IP:127.0.0.1 added.
(
    cd "$IT_DIR/ssl"
    printf '%s\n' "basicConstraints=critical,CA:FALSE" \
        "keyUsage=critical,digitalSignature,keyEncipherment" "extendedKeyUsage=serverAuth" \
        "subjectAltName=DNS:$IT_TLS_NAME,IP:127.0.0.1" "subjectKeyIdentifier=hash" \
        "authorityKeyIdentifier=keyid,issuer" >bench.ext
    openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
        -subj "/O=trasloco bench/CN=$IT_TLS_NAME" -keyout "$IT_TLS_NAME.key" -out bench.csr
    openssl x509 -req -in bench.csr -CA ca.pem -CAkey ca.key -days 30 -sha256 \
        -set_serial "0x$(openssl rand -hex 12)" -extfile bench.ext -out "$IT_TLS_NAME.pem"
    chmod 600 "$IT_TLS_NAME.key"
) >"$BENCH_W/openssl.log" 2>&1 || die "certificate: $(cat "$BENCH_W/openssl.log")"

# accounts: set "main" (BENCH_USERS realistic) and one set per BENCH_SCALE size
declare -A SET_USERS
SETS=(main)
SET_USERS[main]=$(seq -f 'bench%g@example.test' 1 "$BENCH_USERS" | tr '\n' ' ')
for n in $BENCH_SCALE; do
    SETS+=("s$n")
    SET_USERS[s$n]="small$n@example.test"
done
users_arg=""
for s in "${SETS[@]}"; do
    : >"$BENCH_W/accounts-$s.csv"
    chmod 600 "$BENCH_W/accounts-$s.csv"
    for u in ${SET_USERS[$s]}; do
        pw="pw-${u%%@*}"
        printf '"%s","%s"\n' "$u" "$pw" >>"$BENCH_W/accounts-$s.csv"
        users_arg="$users_arg $u:$pw"
    done
done
# lib.sh writes mail_fsync = never (fast tests); a real destination fsyncs what it
# stores, and the issue's figures were taken with Dovecot's default (optimized): the
# destination gets BENCH_DST_FSYNC (its config is edited and the server restarted)
start_servers() {
    it_dovecot_start src USERS="$users_arg" MAX_CONN="$BENCH_MAX_CONN"
    it_dovecot_start dst USERS="$users_arg" MAX_CONN="$BENCH_MAX_CONN"
    if [[ $BENCH_DST_FSYNC != never ]]; then
        sed -i "s/^mail_fsync = never\$/mail_fsync = $BENCH_DST_FSYNC/" "$DST_CONF"
        grep -q "^mail_fsync = $BENCH_DST_FSYNC\$" "$DST_CONF" || die "could not set mail_fsync in $DST_CONF"
        it_dovecot_restart dst
    fi
}
stop_servers() {   # both at once: a Dovecot takes 1-3 s to stop
    local p1 p2
    it_dovecot_stop src &
    p1=$!
    it_dovecot_stop dst &
    p2=$!
    wait "$p1" "$p2"
}
start_servers
export DST_CONF SRC_CONF IT_CA

bench_log "generating the corpus (seed $BENCH_SEED)"
# shellcheck disable=SC2086 # SET_USERS: one word per account
"$BENCH_PY" "$BENCH_DIR/gen_corpus.py" --home-root "$SRC_DIR/home" --uid "$IT_MAIL_UID" \
    --gid "$IT_MAIL_GID" --doveadm-conf "$SRC_CONF" --seed "$BENCH_SEED" --profile realistic \
    --messages "$BENCH_MESSAGES" --max-attach-mb "$BENCH_MAX_ATTACH_MB" \
    --summary "$BENCH_W/corpus-main.json" ${SET_USERS[main]}
for n in $BENCH_SCALE; do
    # shellcheck disable=SC2086
    "$BENCH_PY" "$BENCH_DIR/gen_corpus.py" --home-root "$SRC_DIR/home" --uid "$IT_MAIL_UID" \
        --gid "$IT_MAIL_GID" --doveadm-conf "$SRC_CONF" --seed "$BENCH_SEED" --profile small \
        --messages "$n" --summary "$BENCH_W/corpus-s$n.json" ${SET_USERS[s$n]}
done
cp "$BENCH_W"/corpus-*.json "$BENCH_OUT/"
bench_log "reading the source once (digests for the verifier; warms the page cache)"
for s in "${SETS[@]}"; do
    "$BENCH_PY" "$BENCH_DIR/verify.py" --accounts "$BENCH_W/accounts-$s.csv" \
        --src-port "$SRC_IMAP_PORT" --dst-port "$DST_IMAP_PORT" \
        --src-cache "$BENCH_W/src-digests-$s.json" --src-only >&2
done

# ---- 3. the delay proxy ----------------------------------------------------------------
PROXY_STATS=$BENCH_OUT/proxy-stats.jsonl
: >"$PROXY_STATS"
: >"$BENCH_W/proxy.pids"
# shellcheck disable=SC2016 # expanded when the trap runs
it_at_exit 'while read -r p; do kill "$p" 2>/dev/null; done <"$BENCH_W/proxy.pids"'

# start_proxy NAME RTT SPEC...: a delay proxy; sets PROXY_PORTS_<name> lines in
# $BENCH_W/NAME.ports and prints its pid
start_proxy() {
    local name=$1 rtt=$2 pid i
    shift 2
    rm -f "$BENCH_W/$name.ports"
    "$BENCH_PY" "$BENCH_DIR/delayproxy.py" --rtt-ms "$rtt" --ports-file "$BENCH_W/$name.ports" \
        --stats "$PROXY_STATS" "$@" </dev/null >"$BENCH_W/$name.log" 2>&1 &
    pid=$!
    echo "$pid" >>"$BENCH_W/proxy.pids"
    for ((i = 0; i < 100; i++)); do
        [[ -s $BENCH_W/$name.ports ]] && break
        kill -0 "$pid" 2>/dev/null || die "delay proxy $name died: $(cat "$BENCH_W/$name.log")"
        sleep 0.05
    done
    [[ -s $BENCH_W/$name.ports ]] || die "delay proxy $name did not start"
    echo "$pid"
}

stop_proxy() {
    kill "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

# the proxy of the delayed scenarios, in front of the servers' current ports
start_main_proxy() {
    PROXY_PID=$(start_proxy main "$BENCH_RTT_MS" "src=$SRC_IMAP_PORT" "srcs=$SRC_IMAPS_PORT/tls" \
        "dst=$DST_IMAP_PORT" "dsts=$DST_IMAPS_PORT/tls")
    while read -r name port _; do
        case $name in
        src) PROXY_SRC=$port ;; srcs) PROXY_SRCS=$port ;;
        dst) PROXY_DST=$port ;; dsts) PROXY_DSTS=$port ;;
        esac
    done <"$BENCH_W/main.ports"
    export PROXY_PID PROXY_STATS PROXY_SRC PROXY_SRCS PROXY_DST PROXY_DSTS
}
start_main_proxy

# A rerun at another RTT than its full copy (the scale scenarios: copy at 0 ms, rerun at
# 20 ms) must reach the servers at the same addresses as the copy did: a real rerun does,
# and trasloco's state is keyed by host:port (another port would be another migration).
# So both Dovecots move to new ports (mail, indexes and page cache stay), a proxy with
# the rerun's RTT takes their old ports, and the main proxy is restarted in front of the
# new ones.
move_servers_behind_proxy() {
    local rtt=$1 o_src=$SRC_IMAP_PORT o_srcs=$SRC_IMAPS_PORT o_dst=$DST_IMAP_PORT o_dsts=$DST_IMAPS_PORT
    stop_proxy "$PROXY_PID"
    stop_servers
    start_servers
    start_main_proxy
    FRONT_PID=$(start_proxy front "$rtt" "src=$SRC_IMAP_PORT@$o_src" "srcs=$SRC_IMAPS_PORT/tls@$o_srcs" \
        "dst=$DST_IMAP_PORT@$o_dst" "dsts=$DST_IMAPS_PORT/tls@$o_dsts")
    FRONT_SRC=$o_src FRONT_SRCS=$o_srcs FRONT_DST=$o_dst FRONT_DSTS=$o_dsts
}

{
    echo "date: $(date -u +%FT%TZ)"
    echo "host: $(uname -srm), $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GB", $2 / 1048576 }' /proc/meminfo)"
    echo "trasloco: $TRASLOCO ($(git -C "$TOP" log -1 --format='%h %s' 2>/dev/null | cut -c1-100))"
    echo "dovecot: $(dovecot --version)"
    command -v mbsync >/dev/null && echo "mbsync: $(mbsync --version 2>&1 | head -1)"
    echo "corpus: seed $BENCH_SEED, ${BENCH_USERS} x ${BENCH_MESSAGES} realistic, scale: ${BENCH_SCALE:-none}"
    echo "RTT: $BENCH_RTT_MS ms (bench/delayproxy.py); mail_max_userip_connections = $BENCH_MAX_CONN; dst mail_fsync = $BENCH_DST_FSYNC"
    echo "peers:${PEERS:- none}"
    echo "TRASLOCO_ARGS: $TRASLOCO_ARGS${TRASLOCO_WRAP:+  TRASLOCO_WRAP: $TRASLOCO_WRAP}"
} >"$BENCH_OUT/env.txt"
cat "$BENCH_OUT/env.txt" >&2

# ---- 4. the runs -----------------------------------------------------------------------
wipe_dst() {
    it_dovecot_stop dst
    rm -rf "$DST_DIR"/home/*/Maildir
    it_dovecot_restart dst
}

trasloco_case() {
    local scen=$1 mode=$2 rtt=$3 tls=$4 par=$5 set=$6
    local st=$BENCH_W/state/trasloco-$scen job=$BENCH_W/job-trasloco.sh
    local -a t=(--src-tls none --dst-tls none)
    [[ $mode == full ]] && rm -rf "$st"
    mkdir -p "$st"
    bench_ports "$rtt" "$tls"
    [[ $tls == tls ]] && t=(--src-tls implicit --dst-tls implicit --src-tls-name "$IT_TLS_NAME"
        --dst-tls-name "$IT_TLS_NAME" --ca-file "$IT_CA")
    rm -f "$BENCH_W/report.json"
    mkdir -p "$BENCH_OUT/runs/trasloco-$scen-$mode.logs"
    local wrap=${TRASLOCO_WRAP//\{\}/$BENCH_OUT/runs/trasloco-$scen-$mode}
    # shellcheck disable=SC2086 # TRASLOCO_ARGS, wrap: several words on purpose
    {
        echo '#!/bin/bash'
        printf '%q ' exec $wrap "$TRASLOCO" run "$BENCH_W/accounts-$set.csv" --src "127.0.0.1:$SP" \
            --dst "127.0.0.1:$DP" "${t[@]}" --parallel-accounts "$par" --state "$st" \
            --report "$BENCH_W/report.json" --log-dir "$BENCH_OUT/runs/trasloco-$scen-$mode.logs" \
            --no-progress $TRASLOCO_ARGS
        echo
    } >"$job"
    bench_measure trasloco "$scen" "$mode" "$rtt" "$tls" "$par" "$set" "$job"
    cp "$BENCH_W/report.json" "$BENCH_OUT/runs/trasloco-$scen-$mode.report.json" 2>/dev/null || true
}

run_tool() {
    local tool=$1
    shift
    if [[ $tool == trasloco ]]; then
        trasloco_case "$@"
    else
        "$BENCH_DIR/peers.sh" "$tool" "$@" || bench_log "peers.sh $tool $* failed"
    fi
}

# scenario: name set rtt tls par rerun-rtt
declare -A SCEN_SPEC=(
    [a]="main 0 plain 1 0"
    [b]="main $BENCH_RTT_MS plain 1 $BENCH_RTT_MS"
    [c]="main $BENCH_RTT_MS plain 4 $BENCH_RTT_MS"
    [e]="main 0 plain 4 0"
    [f]="main 0 tls 1 0"
)
order=()
for s in $BENCH_SCENARIOS; do
    if [[ $s == scale ]]; then
        for n in $BENCH_SCALE; do order+=("s$n"); done
    elif [[ $s == s[0-9]* ]]; then
        order+=("$s")
    elif [[ -n ${SCEN_SPEC[$s]:-} ]]; then
        order+=("$s")
    else
        die "unknown scenario $s (a b c e f scale)"
    fi
done
for n in $BENCH_SCALE; do SCEN_SPEC[s$n]="s$n 0 plain 1 $BENCH_RTT_MS"; done

# Reruns last a fraction of a second: they are repeated (BENCH_RERUNS times, while their
# wall times add up to less than 10 s) and the table shows the median; only the first
# one is verified.
reruns() {
    local i spent=0
    for ((i = 1; i <= BENCH_RERUNS; i++)); do
        ((i == 1 || spent < 10000)) || break
        if ((i == 1)); then
            run_tool "$@"
        else
            BENCH_REPEAT=$i BENCH_VERIFY=0 run_tool "$@"
        fi
        # the wall time of the run just measured (the last line of results.csv), in ms
        spent=$((spent + $(tail -n 1 "$BENCH_OUT/results.csv" | awk -F, '{ printf "%d", $11 * 1000 }')))
    done
}

for scen in "${order[@]}"; do
    [[ -n ${SCEN_SPEC[$scen]:-} ]] || die "scenario $scen: no such account set (BENCH_SCALE)"
    read -r set rtt tls par rrtt <<<"${SCEN_SPEC[$scen]}"
    for tool in trasloco $PEERS; do
        for ((rep = 1; rep <= BENCH_FULLS; rep++)); do
            for ((attempt = 1; ; attempt++)); do
                wipe_dst
                if ((rep == 1)); then
                    run_tool "$tool" "$scen" full "$rtt" "$tls" "$par" "$set"
                else
                    BENCH_REPEAT=$rep run_tool "$tool" "$scen" full "$rtt" "$tls" "$par" "$set"
                fi
                if ((attempt > BENCH_RETRIES)) || ! bench_disturbed "$tool" "$scen" full; then
                    break
                fi
                bench_log "$tool $scen: other processes were busy during the copy: measuring again"
            done
        done
        if [[ $rrtt == "$rtt" ]]; then
            reruns "$tool" "$scen" rerun "$rrtt" "$tls" "$par" "$set"
        else
            move_servers_behind_proxy "$rrtt"
            # the tools connect to the old addresses; bench_ports and the CPU reading follow
            BENCH_FRONT="$FRONT_SRC $FRONT_SRCS $FRONT_DST $FRONT_DSTS" PROXY_PID=$FRONT_PID \
                reruns "$tool" "$scen" rerun "$rrtt" "$tls" "$par" "$set"
            stop_proxy "$FRONT_PID"
        fi
    done
done

# ---- 5. the table ----------------------------------------------------------------------
"$BENCH_PY" "$BENCH_DIR/table.py" "$BENCH_OUT" | tee "$BENCH_OUT/table.md"
echo "bench: results in $BENCH_OUT" >&2
