# shellcheck shell=bash
# tests/integration/common.sh: what the trasloco integration tests share on top of
# lib.sh (which knows Dovecot, not trasloco).  Source after lib.sh and it_init.
#
# it_pair [SRC_OPTS...] -- [DST_OPTS...]
#     Start "src" and "dst" Dovecots with user $U / password $PW on both sides.
# tr_migrate [ARGS...]
#     Run $TRASLOCO migrate over implicit TLS by IP, verifying mail.test against the
#     test CA, with the password from a private file and state in $IT_DIR/state.
#     Output goes to $IT_DIR/out.N (stdout+stderr); TR_RC holds the exit code and
#     TR_OUT the output file.  Extra ARGS are appended (and may override).
# tr_compare [ARGS...]
#     imaptool compare of src and dst for $U; exits the test on a difference.
# tr_expect_rc N       fail unless the last tr_migrate exited with N.
# tr_expect_out REGEX  fail unless the last output matches (grep -E).
# tr_no_secret         fail if $PW appears in any file under $IT_DIR/state or in any
#                      output so far.

: "${TRASLOCO:?TRASLOCO must point to the trasloco binary (make check sets it)}"
U=${U:-mario.rossi@azienda.test}
# A password with a space, a comma and quotes: it must survive files and never leak.
PW=${PW:-'Pa ss, "w0rd"'}
TR_N=0

it_pair() {
    local src_opts=() dst_opts=() side=src enc
    for a in "$@"; do
        if [[ $a == -- ]]; then side=dst; continue; fi
        if [[ $side == src ]]; then src_opts+=("$a"); else dst_opts+=("$a"); fi
    done
    enc=$(printf '%s' "$PW" | sed 's/%/%25/g; s/ /%20/g')
    it_dovecot_start src "USERS=$U:$enc" "${src_opts[@]}"
    it_dovecot_start dst "USERS=$U:$enc" "${dst_opts[@]}"
    umask 077
    printf '%s\n' "$PW" > "$IT_DIR/pw"
    export IMAP_PASSWORD=$PW
}

tr_migrate() {
    TR_N=$((TR_N + 1))
    TR_OUT=$IT_DIR/out.$TR_N
    set +e
    "$TRASLOCO" migrate \
        --src "$IT_HOST:$SRC_IMAPS_PORT" --src-tls implicit --src-tls-name "$IT_TLS_NAME" \
        --dst "$IT_HOST:$DST_IMAPS_PORT" --dst-tls implicit --dst-tls-name "$IT_TLS_NAME" \
        --ca-file "$IT_CA" --user "$U" --src-password-file "$IT_DIR/pw" \
        --state "$IT_DIR/state" --timeout 20 "$@" > "$TR_OUT" 2>&1
    TR_RC=$?
    set -e
    it_log "trasloco migrate $* -> exit $TR_RC"
    sed 's/^/    | /' "$TR_OUT" >&2
}

tr_compare() {
    local out=$IT_DIR/compare.out
    if ! it_imaptool --port "$SRC_IMAPS_PORT" --tls implicit --ca "$IT_CA" \
        --tls-name "$IT_TLS_NAME" --user "$U" \
        compare --dst-port "$DST_IMAPS_PORT" --dst-tls implicit --dst-ca "$IT_CA" \
        --dst-tls-name "$IT_TLS_NAME" --dst-user "$U" -v "$@" > "$out" 2>&1; then
        cat "$out" >&2
        it_fail "source and destination differ"
    fi
    tail -n 1 "$out" >&2
}

tr_expect_rc() {
    [[ $TR_RC == "$1" ]] || it_fail "expected exit $1, got $TR_RC"
}

tr_expect_out() {
    grep -Eq -- "$1" "$TR_OUT" || it_fail "output does not match /$1/"
}

tr_no_secret() {
    if grep -rqF -- "$PW" "$IT_DIR"/state "$IT_DIR"/out.* 2>/dev/null; then
        it_fail "the password appears in trasloco's output or state"
    fi
}
