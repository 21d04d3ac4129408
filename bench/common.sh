# shellcheck shell=bash disable=SC2153
# bench/common.sh: measuring one migration run (sourced by bench/run.sh and bench/peers.sh).
#
# Expects in the environment (bench/run.sh exports them): IT_DIR (the Dovecot pair of
# tests/integration/lib.sh), SRC_IMAP_PORT SRC_IMAPS_PORT DST_IMAP_PORT DST_IMAPS_PORT,
# IT_CA, BENCH_W (work directory), BENCH_OUT (results directory), BENCH_PY (python3),
# BENCH_DIR, PROXY_SRC PROXY_SRCS PROXY_DST PROXY_DSTS (delay proxy ports, when one runs),
# PROXY_PID, PROXY_STATS, BENCH_RTT_MS (the proxy's RTT), BENCH_VERIFY (0: skip).
#
# bench_ports RTT TLS       sets SP and DP: the ports a tool connects to (the proxy's
#                           when RTT > 0, the servers' own otherwise; TLS=tls: the
#                           implicit-TLS ones; BENCH_FRONT="src srcs dst dsts": these)
# bench_measure TOOL SCEN MODE RTT TLS PAR SET JOBFILE [VERIFY_ARGS...]
#                           runs `bash JOBFILE` under /usr/bin/time -v (or
#                           bench/timeit.py, the same wait4() figures), reads the Dovecot
#                           masters' CPU (own + reaped children) and the proxy's CPU
#                           before and after, the proxy's per-connection statistics,
#                           verifies dst against src (bench/verify.py, direct ports) and
#                           appends one line to $BENCH_OUT/results.csv.  Returns 0.
#                           BENCH_REPEAT=N: the Nth repetition (suffix of its files).

BENCH_CSV_HEADER="tool,scenario,mode,rtt_ms,tls,par,set,accounts,msgs,bytes,wall_s,cpu_s,maxrss_kb,src_cpu_s,dst_cpu_s,proxy_cpu_s,exit,verify,copied,src_conns,src_maxconc,src_cmds,src_waits,dst_conns,dst_maxconc,dst_cmds,dst_waits,fetch_cmds,append_cmds,append_msgs,repeat,box_cpu_s,kthread_cpu_s,note"

bench_log() { printf '[bench %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

# shellcheck disable=SC2034 # SP, DP: for the caller
bench_ports() {
    local rtt=$1 tls=$2 fs fss fd fds
    if [[ -n ${BENCH_FRONT:-} ]]; then
        # a rerun through the proxy that took over the servers' previous ports
        read -r fs fss fd fds <<<"$BENCH_FRONT"
        if [[ $tls == tls ]]; then SP=$fss DP=$fds; else SP=$fs DP=$fd; fi
    elif [[ $rtt != 0 ]]; then
        [[ $rtt == "${BENCH_RTT_MS:-}" && -n ${PROXY_SRC:-} ]] ||
            { echo "bench: no delay proxy for RTT $rtt" >&2; return 1; }
        if [[ $tls == tls ]]; then SP=$PROXY_SRCS DP=$PROXY_DSTS; else SP=$PROXY_SRC DP=$PROXY_DST; fi
    else
        if [[ $tls == tls ]]; then SP=$SRC_IMAPS_PORT DP=$DST_IMAPS_PORT; else SP=$SRC_IMAP_PORT DP=$DST_IMAP_PORT; fi
    fi
}

# CPU seconds (user+sys, own + reaped children) of a process, from /proc/PID/stat
_bench_proc_cpu() {
    local p=$1
    [[ -r /proc/$p/stat ]] || { echo 0; return; }
    # the comm field may contain spaces: cut after the last ')'
    sed 's/.*) //' "/proc/$p/stat" | awk -v hz="$(getconf CLK_TCK)" \
        '{ printf "%.2f", ($12 + $13 + $14 + $15) / hz }'
}

# CPU seconds all processes of the machine have used (all cores; /proc/stat user + nice +
# system: interrupt and softirq time, which this kernel accounts apart, are left out)
_bench_box_cpu() {
    awk -v hz="$(getconf CLK_TCK)" '$1 == "cpu" { printf "%.2f", ($2 + $3 + $4) / hz; exit }' /proc/stat
}

# snapshot of every process: "pid ppid cpu_ticks(utime+stime) comm" lines
_bench_snap() {
    "$BENCH_PY" -c '
import os
for p in os.listdir("/proc"):
    if not p.isdigit():
        continue
    try:
        st = open("/proc/%s/stat" % p).read()
    except OSError:
        continue
    comm = st[st.index("(") + 1:st.rindex(")")].replace(" ", "_")
    f = st[st.rindex(")") + 2:].split()
    print(p, f[1], int(f[11]) + int(f[12]), comm)'
}

# CPU seconds of kernel threads (children of kthreadd) between two snapshots, and the
# processes that used most CPU meanwhile (own utime+stime) into FILE
_bench_snap_diff() {
    awk -v hz="$(getconf CLK_TCK)" -v out="$3" '
        FNR == NR { before[$1] = $3; next }
        { d = $3 - ($1 in before ? before[$1] : 0)
          if ($2 == 2 || $1 == 2) k += d
          if (d > 0) printf "%.2f %s %s%s\n", d / hz, $1, $4, ($2 == 2 ? " [kernel thread]" : "") > out }
        END { printf "%.2f", k / hz }' "$1" "$2"
}

_bench_master() { cat "$IT_DIR/$1/run/master.pid" 2>/dev/null || echo 0; }

# wait (up to 5 s) until the masters have reaped every imap / imap-login child, so that
# their CPU is in cutime/cstime
_bench_settle() {
    local side p i
    for side in src dst; do
        p=$(_bench_master "$side")
        for ((i = 0; i < 100; i++)); do
            pgrep -P "$p" -x 'imap|imap-login' >/dev/null 2>&1 || break
            sleep 0.05
        done
    done
}

_bench_sub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a - b }'; }

# Wait (up to BENCH_QUIET_WAIT s, default 120) until the machine is quiet: the other
# processes use less than a fifth of a core over half a second.
bench_wait_quiet() {
    local max=$((${BENCH_QUIET_WAIT:-120} * 2)) i b0 b1
    for ((i = 0; i < max; i++)); do
        b0=$(_bench_box_cpu)
        sleep 0.5
        b1=$(_bench_box_cpu)
        awk -v a="$b0" -v b="$b1" 'BEGIN { exit !(b - a < 0.1) }' && return 0
        ((i % 20 == 1)) && bench_log "waiting for a quiet machine (others busy: $(_bench_sub "$b1" "$b0") CPU s in 0.5 s)"
    done
    bench_log "the machine stayed busy for ${BENCH_QUIET_WAIT:-120} s: measuring anyway"
}

# bench_disturbed TOOL SCEN MODE: status 0 when the last such run in results.csv was
# disturbed: the other processes used more than a fifth of a core (+ 0.25 s) meanwhile
bench_disturbed() {
    awk -F, -v t="$1" -v s="$2" -v m="$3" '
        NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
        $col["tool"] == t && $col["scenario"] == s && $col["mode"] == m { last = $0 }
        END {
            if (last == "") exit 1
            n = split(last, f, ",")
            other = f[col["box_cpu_s"]] - f[col["kthread_cpu_s"]] - f[col["cpu_s"]] - f[col["src_cpu_s"]] - f[col["dst_cpu_s"]] - f[col["proxy_cpu_s"]]
            exit !(other > 0.2 * f[col["wall_s"]] + 0.25)
        }' "$BENCH_OUT/results.csv"
}

bench_measure() {
    local tool=$1 scen=$2 mode=$3 rtt=$4 tls=$5 par=$6 set=$7 job=$8
    shift 8
    local tag="$tool-$scen-$mode${BENCH_REPEAT:+-$BENCH_REPEAT}" dir=$BENCH_OUT/runs
    mkdir -p "$dir"
    local timef=$dir/$tag.time statsf=$dir/$tag.conns.jsonl
    local s0 d0 p0 b0 s1 d1 p1 b1 t0 t1 rc lines0=0

    _bench_settle
    [[ ${BENCH_QUIET:-1} == 1 ]] && bench_wait_quiet
    s0=$(_bench_proc_cpu "$(_bench_master src)")
    d0=$(_bench_proc_cpu "$(_bench_master dst)")
    p0=$(_bench_proc_cpu "${PROXY_PID:-0}")
    _bench_snap >"$dir/$tag.snap0"
    b0=$(_bench_box_cpu)
    [[ -n ${PROXY_STATS:-} && -f $PROXY_STATS ]] && lines0=$(wc -l <"$PROXY_STATS")
    bench_log "$tool $scen $mode: RTT ${rtt} ms, ${tls}, $par at once, set $set"
    t0=$(date +%s.%N)
    set +e
    if [[ -x /usr/bin/time ]]; then
        /usr/bin/time -v -o "$timef" bash "$job" >"$dir/$tag.out" 2>&1
    else
        "$BENCH_PY" "$BENCH_DIR/timeit.py" -o "$timef" bash "$job" >"$dir/$tag.out" 2>&1
    fi
    rc=$?
    set -e
    t1=$(date +%s.%N)
    _bench_settle
    s1=$(_bench_proc_cpu "$(_bench_master src)")
    d1=$(_bench_proc_cpu "$(_bench_master dst)")
    p1=$(_bench_proc_cpu "${PROXY_PID:-0}")
    b1=$(_bench_box_cpu)
    _bench_snap >"$dir/$tag.snap1"
    local kcpu
    : >"$dir/$tag.procs.tmp"
    kcpu=$(_bench_snap_diff "$dir/$tag.snap0" "$dir/$tag.snap1" "$dir/$tag.procs.tmp")
    sort -rn "$dir/$tag.procs.tmp" | head -15 >"$dir/$tag.procs" || true
    rm -f "$dir/$tag.snap0" "$dir/$tag.snap1" "$dir/$tag.procs.tmp"
    # connections of this run: the proxy writes a line as each one closes
    sleep 0.2
    if [[ -n ${PROXY_STATS:-} && -f $PROXY_STATS ]]; then
        tail -n +"$((lines0 + 1))" "$PROXY_STATS" >"$statsf"
    else
        : >"$statsf"
    fi

    local wall cpu rss
    wall=$(_bench_sub "$t1" "$t0")
    cpu=$(awk -F': ' '/User time|System time/ { s += $2 } END { printf "%.2f", s }' "$timef")
    rss=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$timef")

    local verdict=skipped
    if [[ ${BENCH_VERIFY:-1} == 1 ]]; then
        set +e
        "$BENCH_PY" "$BENCH_DIR/verify.py" --accounts "$BENCH_W/accounts-$set.csv" \
            --src-port "$SRC_IMAP_PORT" --dst-port "$DST_IMAP_PORT" \
            --src-cache "$BENCH_W/src-digests-$set.json" "$@" >"$dir/$tag.verify" 2>&1
        set -e
        verdict=$("$BENCH_PY" - "$dir/$tag.verify" <<'EOF'
import re, sys
text = open(sys.argv[1]).read()
line = ([l for l in text.splitlines() if l.startswith("verify: accounts=")] or [""])[-1]
kv = dict(re.findall(r"(\w+)=(\d+)", line))
keys = ["missing", "extra", "flags", "kw_only", "dates", "missing_folders", "extra_folders"]
if "result=identical" in line:
    print("ok")
elif kv:
    print("differ " + " ".join("%s=%s" % (k, kv[k]) for k in keys if kv.get(k, "0") != "0"))
else:
    print("verify-error")
EOF
)
    fi

    # messages and bytes of the set (what was to be copied), copies reported by trasloco
    local fields
    fields=$("$BENCH_PY" - "$BENCH_W/corpus-$set.json" "$statsf" "$BENCH_W/report.json" "$tool" <<'EOF'
import json, os, sys, collections
corpus = json.load(open(sys.argv[1]))
out = [len(corpus["users"]), corpus["messages"], corpus["bytes"]]
copied = ""
if sys.argv[4] == "trasloco" and os.path.exists(sys.argv[3]):
    try:
        copied = json.load(open(sys.argv[3]))["totals"]["messages_copied"]
    except (ValueError, KeyError):
        copied = "?"
out.append(copied)
side = {"src": collections.Counter(), "dst": collections.Counter()}
cmds = collections.Counter()
for line in open(sys.argv[2]):
    r = json.loads(line)
    s = side["src" if r["name"].startswith("src") else "dst"]
    s["conns"] += 1
    # sessions of one account open at once on that server (the listener's count when the
    # login could not be read, e.g. TLS)
    s["maxconc"] = max(s["maxconc"], r.get("user_concurrent", r["concurrent"]))
    if "commands" in r:
        s["cmds"] += sum(r["commands"].values())
        s["waits"] += r["waits"]
        s["parsed"] += 1
        for k, v in r["commands"].items():
            cmds[k] += v
        cmds["#append_msgs"] += r.get("append_messages", 0)
for k in ("src", "dst"):
    s = side[k]
    out += [s["conns"] or "", s["maxconc"] or ""]
    out += [s["cmds"], s["waits"]] if s["parsed"] else ["", ""]
parsed = side["src"]["parsed"] or side["dst"]["parsed"]
out += [cmds["UID FETCH"] + cmds["FETCH"], cmds["APPEND"], cmds["#append_msgs"]] if parsed else ["", "", ""]
print(",".join(str(x) for x in out))
EOF
)
    [[ -s $BENCH_OUT/results.csv ]] || echo "$BENCH_CSV_HEADER" >"$BENCH_OUT/results.csv"
    local accounts msgs bytes rest
    IFS=, read -r accounts msgs bytes rest <<<"$fields"
    local line
    line="$tool,$scen,$mode,$rtt,$tls,$par,$set,$accounts,$msgs,$bytes,$wall,$cpu,$rss,$(_bench_sub "$s1" "$s0"),$(_bench_sub "$d1" "$d0"),$(_bench_sub "$p1" "$p0"),$rc,$verdict,$rest,${BENCH_REPEAT:-1},$(_bench_sub "$b1" "$b0"),$kcpu,${BENCH_NOTE:-}"
    echo "$line" >>"$BENCH_OUT/results.csv"
    bench_log "  wall ${wall} s, cpu ${cpu} s, rss $((rss / 1024)) MB, exit $rc, verify: $verdict"
    if [[ $rc != 0 ]]; then
        bench_log "  $tool exited with status $rc: see $dir/$tag.out"
    fi
    return 0
}
