#!/bin/bash
# A real migration on this machine, from nothing: installs what is missing
# (Debian 12, as root), builds trasloco, starts two throwaway Dovecot servers
# on 127.0.0.1 (TLS with a private CA, certificate for "mail.test"), fills the
# source with sample mail, migrates it over verified TLS by IP, compares both
# sides message by message, then adds mail and migrates again.
# Everything lives in a temporary directory that is removed at the end
# (DEMO_KEEP=1 keeps it).  TRASLOCO_BIN=/usr/bin/trasloco runs an installed
# trasloco (the Debian package's) instead of building one.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/tests/deps.sh"
if [[ -n ${TRASLOCO_BIN:-} ]]; then
    [[ -x $TRASLOCO_BIN ]] || { echo "demo: TRASLOCO_BIN=$TRASLOCO_BIN is not a program" >&2; exit 2; }
    export TRASLOCO=$TRASLOCO_BIN
else
    build=${BUILD_DIR:-$top/build}
    if [[ ! -x $build/src/trasloco ]]; then
        echo "== building trasloco in $build"
        (cd "$top" && { [[ -x configure ]] || ./autogen.sh >/dev/null; })
        mkdir -p "$build"
        (cd "$build" && "$top/configure" >/dev/null && make -j"$(nproc)" src/trasloco >/dev/null)
    fi
    export TRASLOCO=$build/src/trasloco
fi
echo "== using $TRASLOCO ($("$TRASLOCO" --version | head -n 1))"
export IT_KEEP=${DEMO_KEEP:-0}

. "$top/tests/integration/lib.sh"
it_init demo
. "$top/tests/integration/common.sh"
echo "== starting two Dovecot servers (source and destination) on $IT_HOST"
it_pair -- SPECIAL_USE=yes
src_tool() {
    it_imaptool --port "$SRC_IMAPS_PORT" --tls implicit --ca "$IT_CA" \
        --tls-name "$IT_TLS_NAME" --user "$U" "$@"
}
echo "== filling the source mailbox $U"
src_tool populate --seed 1 --profile standard
src_tool list

run() {
    echo "\$ trasloco migrate --src $IT_HOST:$SRC_IMAPS_PORT --src-tls implicit --src-tls-name $IT_TLS_NAME \\"
    echo "      --dst $IT_HOST:$DST_IMAPS_PORT --dst-tls implicit --dst-tls-name $IT_TLS_NAME \\"
    echo "      --ca-file ca.pem --user $U --src-password-file pw --state state/ $*"
    "$TRASLOCO" migrate "$@" \
        --src "$IT_HOST:$SRC_IMAPS_PORT" --src-tls implicit --src-tls-name "$IT_TLS_NAME" \
        --dst "$IT_HOST:$DST_IMAPS_PORT" --dst-tls implicit --dst-tls-name "$IT_TLS_NAME" \
        --ca-file "$IT_CA" --user "$U" --src-password-file "$IT_DIR/pw" \
        --state "$IT_DIR/state"
}
echo
echo "== the plan before the copy: where every folder goes, read only on both servers"
run --dry-run
echo
echo "== migrating"
run
echo
echo "== comparing source and destination message by message"
tr_compare
echo
echo "== new mail arrives at the old server; migrating again copies only that"
src_tool append --folder INBOX --count 3 --seed 42
run
tr_compare
echo
echo "== after the last run, trasloco itself checks that nothing was left behind"
printf '"%s","%s"\n' "$U" "$(sed 's/"/""/g' "$IT_DIR/pw")" > "$IT_DIR/accounts.csv"
chmod 600 "$IT_DIR/accounts.csv"
echo "\$ trasloco verify accounts.csv --src ... --dst ... (the same server options)"
"$TRASLOCO" verify "$IT_DIR/accounts.csv" --no-progress -q \
    --src "$IT_HOST:$SRC_IMAPS_PORT" --src-tls implicit --src-tls-name "$IT_TLS_NAME" \
    --dst "$IT_HOST:$DST_IMAPS_PORT" --dst-tls implicit --dst-tls-name "$IT_TLS_NAME" \
    --ca-file "$IT_CA"
echo
echo "demo done (servers stopped, files removed)"
