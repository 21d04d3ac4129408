#!/bin/bash
# A wrong TLS mode: a port that speaks implicit TLS asked for a greeting in
# plain text (no --src-tls on a port other than 993), and a plain/STARTTLS
# port asked for implicit TLS.  Either way trasloco stops within seconds with
# exit 4 and the option to add, never retries it, never sends a password
# before TLS is up (every byte it sent is recorded by a proxy), and a batch
# stops asking the server once one account has learnt it.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_init tls-mode
. "$IT_LIBDIR/common.sh"
it_pair
it_imaptool --port "$SRC_IMAPS_PORT" --tls implicit --ca "$IT_CA" --tls-name "$IT_TLS_NAME" \
    --user "$U" populate --seed 5 --profile small >&2

FAULTPROXY=$IT_LIBDIR/faultproxy.py
# proxy_start NAME UPSTREAM_PORT: a transparent proxy recording every byte in
# $IT_DIR/NAME.rec/conn-N.{c2s,s2c}; its port goes into NAME_PORT.
proxy_start() {
    local name=$1 up=$2
    mkdir -p "$IT_DIR/$name.rec"
    "$IT_PYTHON" "$FAULTPROXY" --upstream-port "$up" --raw --record "$IT_DIR/$name.rec" \
        --log "$IT_DIR/$name.log" --port-file "$IT_DIR/$name.port" > /dev/null &
    it_at_exit "kill $! 2>/dev/null || true"
    for _ in $(seq 1 100); do
        [[ -s $IT_DIR/$name.port ]] && break
        sleep 0.05
    done
    [[ -s $IT_DIR/$name.port ]] || it_fail "faultproxy $name did not start"
    printf -v "${name^^}_PORT" '%s' "$(cat "$IT_DIR/$name.port")"
}
proxy_start tls "$SRC_IMAPS_PORT"      # implicit TLS behind it
proxy_start plain "$SRC_IMAP_PORT"     # plain IMAP with STARTTLS behind it

# run_tr COMMAND ARGS...: trasloco with the test's CA, password and state, at
# most 30 s (timeout's 124 means it hung); TR_RC, TR_OUT as tr_migrate's.
run_tr() {
    local cmd=$1
    shift
    TR_N=$((TR_N + 1))
    TR_OUT=$IT_DIR/out.$TR_N
    set +e
    timeout 30 "$TRASLOCO" "$cmd" --ca-file "$IT_CA" --src-tls-name "$IT_TLS_NAME" \
        --dst-tls-name "$IT_TLS_NAME" --state "$IT_DIR/state" --timeout 20 "$@" \
        > "$TR_OUT" 2>&1
    TR_RC=$?
    set -e
    it_log "trasloco $cmd $* -> exit $TR_RC"
    sed 's/^/    | /' "$TR_OUT" >&2
}
logins() { grep -c "imap-login: Login: user=<$U>" "$SRC_DIR/dovecot.log" || true; }
# No byte trasloco sent through proxy NAME carries a password or a login.
no_plain_login() {
    local f
    for f in "$IT_DIR/$1".rec/*.c2s; do
        if grep -aqF -- "$PW" "$f" || grep -aqiE 'LOGIN |AUTHENTICATE' "$f"; then
            it_fail "$f: a login went out in plain text"
        fi
    done
}

# 1. Plain text (the default for a port other than 993) to an implicit-TLS port.
before=$(logins)
run_tr migrate --src "$IT_HOST:$TLS_PORT" --dst "$IT_HOST:$DST_IMAPS_PORT" --dst-tls implicit \
    --user "$U" --src-password-file "$IT_DIR/pw"
[[ $TR_RC != 124 ]] || it_fail "a plain connection to an implicit-TLS port hung"
tr_expect_rc 4
tr_expect_out "is port $TLS_PORT implicit TLS\? then add --src-tls implicit"
tr_expect_out 'answers a TLS handshake \(certificate verified as mail.test\)'
grep -q 'retrying' "$TR_OUT" && it_fail "a wrong TLS mode was retried"
# the plain connection waited for a greeting and sent nothing at all
[[ -f $IT_DIR/tls.rec/conn-1.c2s && ! -s $IT_DIR/tls.rec/conn-1.c2s ]] ||
    it_fail "trasloco sent bytes on the plain connection to the implicit-TLS port"
no_plain_login tls
[[ $(logins) == "$before" ]] || it_fail "the source saw a login"

# ... the same on the destination's side names --dst-tls.
run_tr migrate --src "$IT_HOST:$SRC_IMAPS_PORT" --src-tls implicit \
    --dst "$IT_HOST:$DST_IMAPS_PORT" --user "$U" --src-password-file "$IT_DIR/pw"
[[ $TR_RC != 124 ]] || it_fail "a plain connection to an implicit-TLS port hung"
tr_expect_rc 4
tr_expect_out "is port $DST_IMAPS_PORT implicit TLS\? then add --dst-tls implicit"

# 2. Implicit TLS asked of a plain port that offers STARTTLS.
before=$(logins)
run_tr migrate --src "$IT_HOST:$PLAIN_PORT" --src-tls implicit \
    --dst "$IT_HOST:$DST_IMAPS_PORT" --dst-tls implicit --user "$U" \
    --src-password-file "$IT_DIR/pw"
[[ $TR_RC != 124 ]] || it_fail "implicit TLS to a plain port hung"
tr_expect_rc 4
tr_expect_out "speaks plain IMAP and offers STARTTLS: is port $PLAIN_PORT STARTTLS\? then add --src-tls starttls"
grep -q 'retrying' "$TR_OUT" && it_fail "a wrong TLS mode was retried"
no_plain_login plain
[[ $(logins) == "$before" ]] || it_fail "the source saw a login"

# 3. A batch: the first account learns it, the others fail with it without
# asking the server again (the proxy sees only the first account's two
# connections: the plain one and the handshake).
printf 'email,password\n%s,%s\nb@example.test,pw-of-b-1\nc@example.test,pw-of-c-2\n' "$U" 'pw-of-a-0' \
    > "$IT_DIR/accounts.csv"
chmod 600 "$IT_DIR/accounts.csv"
n0=$(grep -c ' open (' "$IT_DIR/tls.log")
run_tr check "$IT_DIR/accounts.csv" --src "$IT_HOST:$TLS_PORT" \
    --dst "$IT_HOST:$DST_IMAPS_PORT" --dst-tls implicit --parallel-accounts 1
[[ $TR_RC != 124 ]] || it_fail "check against the wrong TLS mode hung"
tr_expect_rc 1
[[ $(grep -c 'then add --src-tls implicit' "$TR_OUT") -ge 3 ]] ||
    it_fail "not every account got the hint"
n1=$(grep -c ' open (' "$IT_DIR/tls.log")
[[ $((n1 - n0)) == 2 ]] || it_fail "the batch connected $((n1 - n0)) times, not 2"
no_plain_login tls

# 4. With the right modes, through the same proxies, it works.
run_tr migrate --src "$IT_HOST:$TLS_PORT" --src-tls implicit \
    --dst "$IT_HOST:$DST_IMAP_PORT" --user "$U" --src-password-file "$IT_DIR/pw"
tr_expect_rc 0
tr_compare
run_tr migrate --src "$IT_HOST:$PLAIN_PORT" \
    --dst "$IT_HOST:$DST_IMAP_PORT" --dst-tls starttls --user "$U" \
    --src-password-file "$IT_DIR/pw"
tr_expect_rc 0

tr_no_secret
it_pass
