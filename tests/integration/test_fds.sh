#!/bin/bash
# File descriptors above 1024.  libetpan's own socket code waits with select(),
# whose fd_set holds descriptors 0-1023 only: above that it writes out of bounds
# (glibc's fortified FD_SET aborts: "*** buffer overflow detected ***").
# trasloco's own stream driver must wait with poll().  Proof: trasloco starts
# with 1100 descriptors already open (inherited from this script, ulimit -n
# raised), so every socket it opens is numbered above 1024; migrations over
# plain TCP, implicit TLS and STARTTLS, with 4 sessions per side, must succeed
# and compare identical, and strace must show sockets numbered > 1024 in use
# and no select()/pselect() call at all.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_init fds
. "$IT_LIBDIR/common.sh"
command -v strace >/dev/null || it_skip "strace is not installed"
hard=$(ulimit -Hn)
if [[ $hard != unlimited ]] && ((hard < 2048)); then
    it_skip "the hard limit of open files is $hard (< 2048)"
fi
it_pair
it_imaptool --port "$SRC_IMAPS_PORT" --tls implicit --ca "$IT_CA" --tls-name "$IT_TLS_NAME" \
    --user "$U" populate --seed 11 --profile small --messages 60 >&2

FIRST_FD=3
LAST_FD=1109
# run NAME TRASLOCO-ARGS...: trasloco migrate under strace, with fds 10-1109 open
run() {
    local name=$1
    shift
    TR_OUT=$IT_DIR/out.$name
    TRACE=$IT_DIR/strace.$name
    set +e
    (
        ulimit -n 4096
        for ((fd = FIRST_FD; fd <= LAST_FD; fd++)); do
            eval "exec $fd</dev/null"
        done
        # LeakSanitizer cannot work under ptrace: off (a no-op without ASan)
        export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0
        exec timeout -k 5 50 strace -f -qq -o "$TRACE" \
            -e trace=socket,connect,select,pselect6,poll,ppoll,epoll_wait,epoll_pwait \
            "$TRASLOCO" migrate --user "$U" --src-password-file "$IT_DIR/pw" \
            --state "$IT_DIR/state.$name" --timeout 20 --src-max-per-account 4 \
            --dst-max-per-account 4 --batch-count 5 "$@"
    ) > "$TR_OUT" 2>&1
    TR_RC=$?
    set -e
    it_log "$name: trasloco migrate $* -> exit $TR_RC"
    sed 's/^/    | /' "$TR_OUT" | tail -n 8 >&2
}
check() {
    local name=$1 maxfd nsel
    [[ $TR_RC == 0 ]] || it_fail "$name: exit $TR_RC with descriptors above 1024: $(grep -Ei 'error|overflow|terminated|fatal' "$TR_OUT" | head -n 3 | tr '\n' ' ')"
    # socket(...) = N: the descriptor numbers trasloco's sockets got
    maxfd=$(grep -Eo 'socket\(AF_INET6?, [^)]*\) = [0-9]+' "$TRACE" | awk '{ print $NF }' | sort -n | tail -n 1)
    minfd=$(grep -Eo 'socket\(AF_INET6?, [^)]*\) = [0-9]+' "$TRACE" | awk '{ print $NF }' | sort -n | head -n 1)
    [[ -n $maxfd ]] || it_fail "$name: strace saw no socket()"
    ((minfd > 1024)) || it_fail "$name: a socket got descriptor $minfd (<= 1024): the test proves nothing"
    nsel=$(grep -Ec '(^|[0-9] +)(select|pselect6)\(' "$TRACE" || true)
    ((nsel == 0)) || it_fail "$name: select()/pselect6() called $nsel time(s): $(grep -Em 2 '(select|pselect6)\(' "$TRACE" | tr '\n' ' ')"
    grep -Eq '(^|[0-9] +)(poll|ppoll)\(\[\{fd=1[0-9]{3}' "$TRACE" ||
        it_fail "$name: no poll() on a descriptor above 1024 seen"
    it_log "$name: sockets on descriptors $minfd-$maxfd, $(grep -Ec '(^|[0-9] +)(poll|ppoll)\(' "$TRACE") poll() calls, no select()"
}

t0=$SECONDS
run tls --src "$IT_HOST:$SRC_IMAPS_PORT" --src-tls implicit --src-tls-name "$IT_TLS_NAME" \
    --dst "$IT_HOST:$DST_IMAPS_PORT" --dst-tls implicit --dst-tls-name "$IT_TLS_NAME" \
    --ca-file "$IT_CA"
check tls
tr_compare

# plain TCP into a second, empty account on the same destination is not possible
# with it_pair's single user: start a fresh destination instead
it_dovecot_stop dst
rm -rf "$DST_DIR/home/$U/Maildir"
it_dovecot_start dst "USERS=$U:$(printf '%s' "$PW" | sed 's/%/%25/g; s/ /%20/g')"
run plain --src "$IT_HOST:$SRC_IMAP_PORT" --src-tls none --dst "$IT_HOST:$DST_IMAP_PORT" --dst-tls none
check plain
tr_compare

it_dovecot_stop dst
rm -rf "$DST_DIR/home/$U/Maildir"
it_dovecot_start dst "USERS=$U:$(printf '%s' "$PW" | sed 's/%/%25/g; s/ /%20/g')"
run starttls --src "$IT_HOST:$SRC_IMAP_PORT" --src-tls starttls --src-tls-name "$IT_TLS_NAME" \
    --dst "$IT_HOST:$DST_IMAP_PORT" --dst-tls starttls --dst-tls-name "$IT_TLS_NAME" \
    --ca-file "$IT_CA"
check starttls
tr_compare
tr_no_secret
it_pass "3 migrations with every socket above descriptor 1024, $((SECONDS - t0)) s"
