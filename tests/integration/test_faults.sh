#!/bin/bash
# Network faults and interruptions, injected by faultproxy.py (a TCP proxy of
# the tests' own, between trasloco and a real Dovecot) and by the test itself.
# Scenarios (the proxy's rules are in each function below):
#   fetch-drop       the source connection drops inside a BODY[] literal (FIN, and
#                    later RST one byte into another literal)
#   append-drop      the destination connection drops inside an APPEND literal
#   append-noreply   the whole APPEND reached the destination and was stored; its
#                    tagged OK is held back and the connection dropped (3 times)
#   append-sent      the connection drops right after a whole APPEND was sent (the
#                    server may or may not have stored it)
#   nomulti-drop, nomulti-noreply
#                    the same on a destination without MULTIAPPEND (the proxy hides
#                    it): pipelined LITERAL+ APPENDs, a batch can end up half stored
#   sync-drop, sync-noreply
#                    the same without MULTIAPPEND and LITERAL+: one APPEND at a time,
#                    synchronizing literals
#   stall            both directions stop for 20 s inside a FETCH literal: trasloco
#                    must give the connection up within --timeout and retry
#   stall-append     the same inside an APPEND literal
#   trickle          the source sends at 4000 bytes/s for 6 s (> --timeout): slow
#                    is not dead, nothing may time out
#   greeting         the first two connections close right after the greeting
#   truncate         an implicit-TLS source stream cut at a byte count (inside a
#                    TLS record), twice
#   starttls-strip   a man in the middle removes STARTTLS from the capabilities:
#                    trasloco must refuse (exit 4) without sending the password
#   dst-restart, src-restart
#                    a Dovecot goes down under the job (its sessions end, its ports
#                    refuse connections for 2 s) and comes back on the same ports
#   sigterm, sigint  trasloco interrupted while an APPEND / a FETCH literal is half
#                    through: exit 5 within 2 s, then a re-run finishes the job
#                    without copying again what the first run had copied
# Every scenario copies the same seeded source mailbox (208 messages, 16
# folders, 17 MB) to a destination account of its own and must end with exit 0
# and tr_compare identical: nothing lost, nothing twice.  --timeout 3 --retries 6
# --batch-size 1 --batch-count 5, so that faults land mid-batch; each scenario
# checks in the proxy's log that its fault really fired.  Scenarios run one
# after the other, each in a subshell: a failing one is reported (FAIL: lines)
# and the others still run; the test fails if any failed.
#
# FAULTS_ONLY="stall trickle" runs only those scenarios.
# shellcheck disable=SC2317  # the scenario functions are called as sc_$name
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_init faults
. "$IT_LIBDIR/common.sh"

SCENARIOS=(fetch-drop append-drop append-noreply append-sent nomulti-drop nomulti-noreply
    sync-drop sync-noreply stall stall-append trickle greeting truncate starttls-strip
    dst-restart src-restart sigterm sigint)
TIMEOUT=3          # trasloco's --timeout (the restart scenarios use 10)
FAULTPROXY=$IT_LIBDIR/faultproxy.py
T0=$SECONDS

for s in ${FAULTS_ONLY:-}; do
    [[ " ${SCENARIOS[*]} " == *" $s "* ]] || it_fail "FAULTS_ONLY: no scenario '$s'"
done

enc=$(printf '%s' "$PW" | sed 's/%/%25/g; s/ /%20/g')
dst_users="$U:$enc"
for s in "${SCENARIOS[@]}"; do dst_users+=" $s@azienda.test:$enc"; done
it_dovecot_start src "USERS=$U:$enc"
it_dovecot_start dst "USERS=$dst_users"
umask 077
printf '%s\n' "$PW" > "$IT_DIR/pw"
export IMAP_PASSWORD=$PW

src() {
    it_imaptool --port "$SRC_IMAPS_PORT" --tls implicit --ca "$IT_CA" \
        --tls-name "$IT_TLS_NAME" --user "$U" "$@"
}
# The standard corpus (200 messages, 15 folders, attachments of 1-3 MB) and a
# folder of 200 kB messages: long literals to cut in the middle.
src populate --seed 31 --profile standard >&2
src append --folder Grandi --count 8 --seed 32 --size-kb 200 >&2

# ---- the proxies ------------------------------------------------------------------
# proxy_start NAME UPSTREAM_PORT [--raw]: a faultproxy whose rules are in
# $IT_DIR/NAME.rules (empty: plain forwarding) and whose log is $IT_DIR/NAME.log;
# its port goes into NAME_PORT (NAME upper-cased).
proxy_start() {
    local name=$1 up=$2 pidv portv
    shift 2
    : > "$IT_DIR/$name.rules"
    rm -f "$IT_DIR/$name.port"
    "$IT_PYTHON" "$FAULTPROXY" --upstream-port "$up" --control "$IT_DIR/$name.rules" \
        --log "$IT_DIR/$name.log" --port-file "$IT_DIR/$name.port" "$@" > /dev/null &
    pidv=${name^^}_PID
    printf -v "$pidv" '%s' "$!"
    it_at_exit "kill ${!pidv} 2>/dev/null || true"
    for _ in $(seq 1 100); do
        [[ -s $IT_DIR/$name.port ]] && break
        kill -0 "${!pidv}" 2>/dev/null || it_fail "faultproxy $name did not start"
        sleep 0.05
    done
    [[ -s $IT_DIR/$name.port ]] || it_fail "faultproxy $name did not write its port"
    portv=${name^^}_PORT
    printf -v "$portv" '%s' "$(cat "$IT_DIR/$name.port")"
}
# proxy_rules NAME [RULE...]: replace the proxy's rule set (no rule: plain
# forwarding; a new rule set also ends any stall in progress); returns once the
# proxy has loaded it.
proxy_rules() {
    local name=$1 f=$IT_DIR/$1.rules n
    shift
    n=$(grep -Ec '^[0-9:.]+ rule set ' "$IT_DIR/$name.log" || true)
    printf '%s\n' "$@" > "$f.tmp"
    mv "$f.tmp" "$f"
    for _ in $(seq 1 100); do
        (($(grep -Ec '^[0-9:.]+ rule set ' "$IT_DIR/$name.log") > n)) && return 0
        sleep 0.02
    done
    it_fail "faultproxy $name did not load its new rules"
}
# fired NAME [WHAT]: how many faults (of kind WHAT, e.g. fetch-literal/drop) fired
# on that proxy since its last proxy_rules
fired() {
    awk -v what=" FIRED ${2:-}" '/^[0-9:.]+ rule set /{n=0} index($0, what){n++} END{print n+0}' \
        "$IT_DIR/$1.log"
}
# wait_fired NAME [TIMEOUT_S]: wait until a fault fired on that proxy
wait_fired() {
    for _ in $(seq 1 $((${2:-20} * 20))); do
        (($(fired "$1") > 0)) && return 0
        sleep 0.05
    done
    it_fail "$SCEN: no fault fired on $1 within ${2:-20} s"
}
# proxy_events NAME: the proxy's rules and faults since its last proxy_rules
proxy_events() {
    awk '/^[0-9:.]+ rule set /{buf=""} {buf=buf $0 "\n"} END{printf "%s", buf}' "$IT_DIR/$1.log" |
        grep -E '^[0-9:.]+ rule set | FIRED |trickle|stall' | grep -v 'FIRED connect/hidecap' |
        sed "s/^/    $1: /" >&2 || true
}

proxy_start psrc "$SRC_IMAP_PORT"              # plain IMAP: FETCH literals visible
proxy_start pdst "$DST_IMAP_PORT"              # plain IMAP: APPEND literals visible
proxy_start psrctls "$SRC_IMAPS_PORT" --raw    # implicit TLS: bytes only

# ---- running trasloco ------------------------------------------------------------
# run_args: the options of every run of the current scenario ($SCEN): its own
# destination account and state; SRC_VIA / DST_VIA (direct, proxy, proxytls)
# choose the paths.
run_args() {
    local src=(--src "$IT_HOST:$SRC_IMAPS_PORT" --src-tls implicit)
    local dst=(--dst "$IT_HOST:$DST_IMAPS_PORT" --dst-tls implicit)
    case ${SRC_VIA:-direct} in
        proxy) src=(--src "$IT_HOST:$PSRC_PORT" --src-tls none) ;;
        proxytls) src=(--src "$IT_HOST:$PSRCTLS_PORT" --src-tls implicit) ;;
        proxystarttls) src=(--src "$IT_HOST:$PSRC_PORT" --src-tls starttls) ;;
    esac
    [[ ${DST_VIA:-direct} == proxy ]] && dst=(--dst "$IT_HOST:$PDST_PORT" --dst-tls none)
    RUN_ARGS=("${src[@]}" "${dst[@]}" --dst-user "$SCEN@azienda.test"
        --state "$IT_DIR/state.$SCEN" --timeout "$TIMEOUT" --retries 6
        --batch-size 1 --batch-count 5 --no-progress)
}
# mig [ARGS...]: tr_migrate with the scenario's options (ARGS override them)
mig() {
    local t=$SECONDS
    run_args
    tr_migrate "${RUN_ARGS[@]}" "$@"
    it_log "  ($((SECONDS - t)) s)"
}
# mig_bg [ARGS...]: the same in the background: BG_PID, BG_OUT
mig_bg() {
    run_args
    TR_N=$((TR_N + 1))
    BG_OUT=$IT_DIR/out.$TR_N
    "$TRASLOCO" migrate --src-tls-name "$IT_TLS_NAME" --dst-tls-name "$IT_TLS_NAME" \
        --ca-file "$IT_CA" --user "$U" --src-password-file "$IT_DIR/pw" \
        "${RUN_ARGS[@]}" "$@" > "$BG_OUT" 2>&1 &
    BG_PID=$!
}
# bg_wait: wait for the background run: TR_RC, TR_OUT
bg_wait() {
    TR_RC=0
    wait "$BG_PID" || TR_RC=$?
    BG_PID=
    TR_OUT=$BG_OUT
    it_log "trasloco migrate (background) -> exit $TR_RC"
    sed 's/^/    | /' "$TR_OUT" >&2
}
# identical: the scenario's destination equals the source: nothing missing,
# nothing twice, same flags and dates
identical() {
    tr_compare --dst-user "$SCEN@azienda.test"
    grep -q 'missing=0 extra=0 .*result=identical' "$IT_DIR/compare.out" ||
        it_fail "$SCEN: compare did not report identical"
}
# expect_fired PROXY N WHAT: at least N faults of kind WHAT fired on PROXY
expect_fired() {
    local n
    n=$(fired "$1" "$3")
    proxy_events "$1"
    ((n >= $2)) || it_fail "$SCEN: $3 fired $n time(s) on $1, not $2: the scenario proves nothing"
}
# expect_retry REGEX: trasloco noticed the fault (and logged its retry)
expect_retry() {
    grep -Eq -- "$1" "$TR_OUT" || it_fail "$SCEN: trasloco did not report the fault (/$1/)"
}
# copied_count: A in the last run's summary line "messages: A copied, B already
# present, C failed"
copied_count() {
    sed -nE 's/.*messages: ([0-9]+) copied.*/\1/p' "$TR_OUT" | tail -n 1
}

# ---- the scenarios -------------------------------------------------------------------

sc_fetch_drop() {
    # The 3rd literal of 150 kB or more is cut 50000 bytes in (FIN); later the
    # 41st literal of 1 kB or more one byte in (RST).
    proxy_rules psrc 'on=fetch-literal,min=150000,k=50000,skip=2,do=drop' \
        'on=fetch-literal,min=1000,k=1,skip=40,do=drop,rst=1'
    SRC_VIA=proxy mig
    expect_fired psrc 2 fetch-literal/drop
    tr_expect_rc 0
    expect_retry 'UID FETCH .*connection lost.*retrying'
    identical
}

# append_drop [HIDE]: drops inside APPEND literals (HIDE: a hidecap rule)
append_drop() {
    proxy_rules pdst "$@" 'on=append-literal,min=150000,k=60000,skip=1,do=drop' \
        'on=append-literal,min=1000,k=10,skip=30,do=drop,rst=1'
    DST_VIA=proxy mig
    expect_fired pdst 2 append-literal/drop
    tr_expect_rc 0
    expect_retry 'APPEND.*connection lost.*retrying'
    identical
}

# append_noreply [HIDE]: the 2nd, 7th and 13th APPEND replies (of the whole
# run) are OK [APPENDUID ...]: the messages are stored, but the reply never
# reaches trasloco (the connection drops instead).  A re-run has nothing to do.
append_noreply() {
    proxy_rules pdst "$@" 'on=append-reply,skip=1,do=drop' 'on=append-reply,skip=6,do=drop' \
        'on=append-reply,skip=12,do=drop'
    DST_VIA=proxy mig
    expect_fired pdst 3 append-reply/drop
    tr_expect_rc 0
    identical
    mig
    tr_expect_rc 0
    tr_expect_out 'nothing new'
    identical
}

sc_append_drop() { append_drop; }
sc_append_noreply() { append_noreply; }

sc_append_sent() {
    # Right after the 3rd and the 9th whole APPEND commands went out.
    proxy_rules pdst 'on=append-sent,skip=2,do=drop' 'on=append-sent,skip=8,do=drop,rst=1'
    DST_VIA=proxy mig
    expect_fired pdst 2 append-sent/drop
    tr_expect_rc 0
    identical
}

NOMULTI='on=connect,do=hidecap,cap=MULTIAPPEND,times=always'
NOLITPLUS='on=connect,do=hidecap,cap=MULTIAPPEND/LITERAL+/LITERAL-,times=always'
sc_nomulti_drop() { append_drop "$NOMULTI"; }
sc_nomulti_noreply() { append_noreply "$NOMULTI"; }
sc_sync_drop() { append_drop "$NOLITPLUS"; }
sc_sync_noreply() { append_noreply "$NOLITPLUS"; }

# stall_check PROXY: trasloco gave the stalled connection up (closed it) within
# --timeout, plus a second of slack, of the moment the stall began.
stall_check() {
    local t gave_up
    t=$(awk '/^[0-9:.]+ rule set /{f=""}
        / FIRED [a-z-]+\/stall/{f=$1; c=$3}
        f!="" && $3==c && / client EOF/ {print f, $1; exit}' "$IT_DIR/$1.log")
    [[ -n $t ]] || it_fail "$SCEN: trasloco never closed the stalled connection"
    # shellcheck disable=SC2086  # $t is two words
    gave_up=$("$IT_PYTHON" -c 'import sys
def s(t): h, m, x = t.split(":"); return int(h) * 3600 + int(m) * 60 + float(x)
print("%.2f" % (s(sys.argv[2]) - s(sys.argv[1])))' $t)
    it_log "$SCEN: trasloco closed the stalled connection after $gave_up s (--timeout $TIMEOUT)"
    "$IT_PYTHON" -c 'import sys; sys.exit(float(sys.argv[1]) > float(sys.argv[2]) + 1.0)' \
        "$gave_up" "$TIMEOUT" ||
        it_fail "$SCEN: a stalled connection was given up after $gave_up s, not within --timeout $TIMEOUT s"
}

sc_stall() {
    # 20 s of silence (longer than --timeout) 20 kB into a FETCH literal (one
    # that is not the first message of its response).  trasloco has part of
    # the literal buffered when the silence starts: a reader that reads again
    # after a failed read waits a second --timeout there.
    proxy_rules psrc 'on=fetch-literal,pos=2,min=50000,k=20000,do=stall,secs=20'
    SRC_VIA=proxy mig
    expect_fired psrc 1 fetch-literal/stall
    tr_expect_rc 0
    expect_retry "source.*no answer for $TIMEOUT s \(timeout\).*retrying"
    identical
    stall_check psrc
}

sc_stall_append() {
    # The destination stops taking data 30 kB into a big APPEND literal (not
    # the first message of its MULTIAPPEND).
    proxy_rules pdst 'on=append-literal,pos=2,min=150000,k=30000,do=stall,secs=20'
    DST_VIA=proxy mig
    expect_fired pdst 1 append-literal/stall
    tr_expect_rc 0
    expect_retry "destination.*timeout.*retrying"
    identical
    stall_check pdst
}

sc_trickle() {
    # From the start of a big literal, 4000 bytes/s for 6 s: slower than any
    # deadline for a whole command would allow, but never idle for a second.
    proxy_rules psrc 'on=fetch-literal,min=150000,k=0,do=trickle,rate=4000,secs=6'
    SRC_VIA=proxy mig
    expect_fired psrc 1 fetch-literal/trickle
    tr_expect_rc 0
    if grep -Eq 'retrying|timeout' "$TR_OUT"; then
        it_fail "$SCEN: a slow but live connection was given up"
    fi
    grep -q 'trickle ended' "$IT_DIR/psrc.log" ||
        it_fail "$SCEN: the trickle did not last its 6 s (the connection went away)"
    identical
}

sc_greeting() {
    # The first two connections (the login, and its retry) close right after
    # the server's greeting.
    proxy_rules psrc 'on=greeting,conn=1-2,times=2,do=drop'
    SRC_VIA=proxy mig
    expect_fired psrc 2 greeting/drop
    tr_expect_rc 0
    expect_retry 'source.*retrying'
    identical
}

sc_truncate() {
    # Implicit TLS, seen as bytes: the first source stream to pass 400000
    # bytes is cut there (inside a TLS record), then the 5th connection (a
    # reconnection) after 5000 bytes.
    proxy_rules psrctls 'on=s2c-bytes,n=400000,do=drop' 'on=s2c-bytes,n=5000,conn=5-,do=drop'
    SRC_VIA=proxytls mig
    expect_fired psrctls 2 s2c-bytes/drop
    tr_expect_rc 0
    expect_retry 'source.*TLS.*retrying'
    identical
}

sc_starttls_strip() {
    # --src-tls starttls through a proxy that hides STARTTLS (and would cut any
    # LOGIN or AUTHENTICATE sent in clear).  Nothing may be copied, no
    # credential may leave in clear.
    proxy_rules psrc 'on=connect,do=hidecap,cap=STARTTLS,times=always' \
        'on=command,verb=LOGIN,do=drop,times=always' \
        'on=command,verb=AUTHENTICATE,do=drop,times=always'
    SRC_VIA=proxystarttls mig
    expect_fired psrc 1 connect/hidecap
    (($(fired psrc command/) == 0)) || it_fail "$SCEN: credentials were sent without TLS"
    tr_expect_rc 4
    tr_expect_out 'does not offer STARTTLS'
    tr_expect_out ' 0 copied'
}

# server_down SIDE: what a restart does to the sessions: end that Dovecot's IMAP
# session processes (SIGTERM by pid: children of the test's own master, which
# it_dovecot_stop alone lets serve their clients on), then stop the master.
# Its ports refuse connections until it_dovecot_restart SIDE.
server_down() {
    local side=$1 m pids p
    m=$(_it_master_pid "$side") || it_fail "$side is not running"
    pids=$(ps -o pid=,comm= --ppid "$m" | awk '$2 == "imap" {print $1}')
    [[ -n $pids ]] || it_fail "$SCEN: $side has no IMAP session to end"
    # shellcheck disable=SC2086
    kill -TERM $pids 2>/dev/null || true
    it_dovecot_stop "$side"
    for p in $pids; do
        for _ in $(seq 1 100); do
            [[ -d /proc/$p ]] || break
            sleep 0.05
        done
    done
    it_log "$SCEN: $side down (sessions ${pids//$'\n'/ } ended)"
}
# restart_mid_job SIDE HOLDPROXY KIND RULE: the job is held at RULE (a stall of
# kind KIND) by HOLDPROXY (on
# the other side), SIDE goes down under it, the hold is let go, SIDE stays down
# for 2 s (trasloco's reconnections are refused) and comes back on the same
# ports.  One session per side, so that the held connection holds the whole
# job; --timeout 10 so that the hold itself is not taken for a dead server.
restart_mid_job() {
    local side=$1 hold=$2 kind=$3 rule=$4 name=source
    proxy_rules "$hold" "$rule"
    mig_bg --timeout 10 --src-max-per-account 1 --dst-max-per-account 1
    wait_fired "$hold"
    expect_fired "$hold" 1 "$kind"
    server_down "$side"
    proxy_rules "$hold"           # the held connection goes on
    sleep 2
    it_dovecot_restart "$side"
    it_log "$SCEN: $side up again"
    bg_wait
    tr_expect_rc 0
    [[ $side == src ]] || name=destination
    expect_retry "$name.*retrying"
    grep -qi 'refused' "$TR_OUT" ||
        it_fail "$SCEN: no connection was refused: the restart proves nothing"
    identical
}

sc_dst_restart() {
    SRC_VIA=proxy restart_mid_job dst psrc fetch-literal/stall \
        'on=fetch-literal,min=150000,k=10000,skip=1,do=stall,secs=60'
}

sc_src_restart() {
    DST_VIA=proxy restart_mid_job src pdst append-literal/stall \
        'on=append-literal,min=150000,k=10000,skip=1,do=stall,secs=60'
}

# signal_mid_job SIG HOLDPROXY KIND RULE: the job is held at RULE (a stall of
# kind KIND, a literal half through), SIG arrives: exit 5 within 2 s; the re-run finishes the job and
# copies only what the first run had not.
signal_mid_job() {
    local sig=$1 hold=$2 kind=$3 rule=$4 t copied1 copied2 total
    proxy_rules "$hold" "$rule"
    mig_bg
    wait_fired "$hold"
    expect_fired "$hold" 1 "$kind"
    t=$SECONDS
    kill -"$sig" "$BG_PID"
    bg_wait
    it_log "$SCEN: exit $TR_RC $((SECONDS - t)) s after SIG$sig"
    tr_expect_rc 5
    ((SECONDS - t <= 2)) || it_fail "$SCEN: took $((SECONDS - t)) s to stop after SIG$sig"
    copied1=$(copied_count)
    proxy_rules "$hold"
    SRC_VIA='' DST_VIA='' mig
    tr_expect_rc 0
    identical
    copied2=$(copied_count)
    total=$(sed -nE 's/.* messages=([0-9]+) .*/\1/p' "$IT_DIR/compare.out" | tail -n 1)
    it_log "$SCEN: the interrupted run copied ${copied1:-?}, the re-run ${copied2:-?}, of $total"
    [[ -n $copied1 && -n $copied2 ]] || it_fail "$SCEN: no summary line in the output"
    ((copied1 > 0)) || it_fail "$SCEN: the signal came before anything was copied: proves little"
    ((copied1 + copied2 <= total)) ||
        it_fail "$SCEN: $copied1 + $copied2 messages copied for $total on the source"
}

sc_sigterm() {
    # SIGTERM while an APPEND literal is half sent (the proxy holds it).
    DST_VIA=proxy signal_mid_job TERM pdst append-literal/stall \
        'on=append-literal,min=150000,k=40000,skip=1,do=stall,secs=60'
}

sc_sigint() {
    # SIGINT while a FETCH literal is half received.
    SRC_VIA=proxy signal_mid_job INT psrc fetch-literal/stall \
        'on=fetch-literal,min=150000,k=40000,skip=2,do=stall,secs=60'
}

# ---- the runner -------------------------------------------------------------------
passed=() failed=()
i=0
for SCEN in "${SCENARIOS[@]}"; do
    [[ -z ${FAULTS_ONLY:-} || " $FAULTS_ONLY " == *" $SCEN "* ]] || continue
    i=$((i + 1))
    # What a failed scenario may have left behind.
    for p in psrc pdst psrctls; do
        if [[ -s $IT_DIR/$p.rules ]]; then proxy_rules "$p"; fi
    done
    for side in src dst; do
        if ! it_dovecot_running "$side"; then it_dovecot_restart "$side"; fi
    done
    it_log "=== $SCEN"
    t=$SECONDS
    # A subshell of its own: it_fail ends the scenario, not the test.  Started
    # in the background and waited for, so that set -e stays on inside it.
    (
        TR_N=$((i * 100))
        BG_PID=
        trap '[[ -z ${BG_PID:-} ]] || kill -KILL "$BG_PID" 2>/dev/null || true' EXIT
        "sc_${SCEN//-/_}"
    ) &
    if wait $!; then
        passed+=("$SCEN")
        it_log "=== $SCEN: ok in $((SECONDS - t)) s"
    else
        failed+=("$SCEN")
        it_log "=== $SCEN: FAILED after $((SECONDS - t)) s"
    fi
done

tr_no_secret
it_log "passed: ${passed[*]:-none}; failed: ${failed[*]:-none} ($((SECONDS - T0)) s)"
((${#failed[@]} == 0)) || it_fail "${#failed[@]} scenario(s) failed: ${failed[*]}"
it_pass
