#!/bin/bash
# Two runs of the same account with the same state at once (cron jobs that
# overlap, an admin starting it again by hand): the second must refuse to
# touch the account rather than copy the same messages twice.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_init concurrent
. "$IT_LIBDIR/common.sh"
it_pair
it_imaptool --port "$SRC_IMAPS_PORT" --tls implicit --ca "$IT_CA" --tls-name "$IT_TLS_NAME" \
    --user "$U" populate --seed 41 --profile standard >/dev/null
args=(migrate --src "$IT_HOST:$SRC_IMAPS_PORT" --src-tls implicit --src-tls-name "$IT_TLS_NAME"
    --dst "$IT_HOST:$DST_IMAPS_PORT" --dst-tls implicit --dst-tls-name "$IT_TLS_NAME"
    --ca-file "$IT_CA" --user "$U" --src-password-file "$IT_DIR/pw" --state "$IT_DIR/state"
    --batch-size 1 --batch-count 5 --no-progress)
"$TRASLOCO" "${args[@]}" > "$IT_DIR/a.out" 2>&1 &
a=$!
sleep 0.15
set +e
"$TRASLOCO" "${args[@]}" > "$IT_DIR/b.out" 2>&1
rb=$?
wait "$a"
ra=$?
set -e
cat "$IT_DIR/a.out" "$IT_DIR/b.out" | grep -v ' info ' >&2 || true
[[ $ra == 0 ]] || it_fail "the first run exited $ra"
[[ $rb == 6 ]] || it_fail "the second run should refuse (exit 6), got $rb"
grep -q 'another trasloco run is migrating this account' "$IT_DIR/b.out" ||
    it_fail "the second run does not say why"
tr_compare
it_pass
