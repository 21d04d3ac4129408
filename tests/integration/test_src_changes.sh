#!/bin/bash
# The source changes under trasloco: a folder deleted and another renamed
# while the job runs (held half-way by a proxy), messages expunged between
# runs.  The job reports the
# folder it could not finish and goes on; a re-run copies what remains to be
# copied; nothing is ever deleted on the destination.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_init src-changes
. "$IT_LIBDIR/common.sh"
it_pair
src() { it_imaptool --port "$SRC_IMAPS_PORT" --tls implicit --ca "$IT_CA" --tls-name "$IT_TLS_NAME" --user "$U" "$@"; }
for f in INBOX Alfa Beta; do
    src append --folder "$f" --count 30 --seed "${#f}" --size-kb 20 >/dev/null
done
src append --folder Gamma --count 3 --seed 7 >/dev/null
src append --folder Delta --count 2 --seed 8 >/dev/null

# Delete Gamma and rename Delta while the copy runs: the source goes through
# faultproxy.py, which holds the first message body it sends (a stall) until
# the source has changed; one session, so Gamma and Delta (the smallest) come
# after INBOX.
: > "$IT_DIR/control"
echo "on=fetch-literal,k=100,do=stall,secs=30,times=1" > "$IT_DIR/control"
"$IT_PYTHON" "$IT_LIBDIR/faultproxy.py" --upstream-port "$SRC_IMAP_PORT" \
    --port-file "$IT_DIR/proxy.port" --control "$IT_DIR/control" --log "$IT_DIR/proxy.log" \
    > /dev/null 2>&1 &
proxy=$!
it_at_exit "kill $proxy 2>/dev/null || true"
for _ in $(seq 50); do [[ -s $IT_DIR/proxy.port ]] && break; sleep 0.1; done
"$TRASLOCO" migrate --src "$IT_HOST:$(cat "$IT_DIR/proxy.port")" --src-tls none \
    --dst "$IT_HOST:$DST_IMAPS_PORT" --dst-tls implicit --dst-tls-name "$IT_TLS_NAME" \
    --ca-file "$IT_CA" --user "$U" --src-password-file "$IT_DIR/pw" --state "$IT_DIR/state" \
    --src-max-per-account 1 --timeout 40 --no-progress > "$IT_DIR/run1" 2>&1 &
job=$!
for _ in $(seq 100); do grep -q 'FIRED' "$IT_DIR/proxy.log" 2>/dev/null && break; sleep 0.1; done
grep -q 'FIRED' "$IT_DIR/proxy.log" || it_fail "the proxy never held the copy"
kill -0 "$job" 2>/dev/null || it_fail "the first run ended before the source changed"
src delete-folder Gamma >&2
src rename-folder Delta "Delta rinominata" >&2
echo "" > "$IT_DIR/control"     # a new (empty) rule set ends the stall
rc=0
wait "$job" || rc=$?
grep -v ' info ' "$IT_DIR/run1" >&2 || true
[[ $rc == 1 ]] || it_fail "first run: expected exit 1 (two folders gone), got $rc"
grep -q 'folder "Gamma" failed' "$IT_DIR/run1" || it_fail "Gamma's failure is not reported"
grep -q 'folder "Delta" failed' "$IT_DIR/run1" || it_fail "Delta's failure is not reported"
grep -q 'messages: 90 copied' "$IT_DIR/run1" || it_fail "the other folders should have gone on"

# Again: everything the source has now is on the destination, once.
tr_migrate
tr_expect_rc 0
tr_compare --ignore-extra-folders

# Messages expunged on the source between runs stay on the destination.
src expunge --folder Alfa --count 3 --seed 5 >&2
src append --folder Beta --count 2 --seed 99 >/dev/null
tr_migrate
tr_expect_rc 0
tr_expect_out ' 2 copied'
tr_expect_out ' 0 failed'
out=$IT_DIR/cmp
src compare --dst-port "$DST_IMAPS_PORT" --dst-tls implicit --dst-ca "$IT_CA" \
    --dst-tls-name "$IT_TLS_NAME" --dst-user "$U" --ignore-extra-folders > "$out" 2>&1 || true
grep -q 'missing=0 extra=3 ' "$out" || { cat "$out" >&2; it_fail "expected the 3 expunged messages kept on the destination, nothing else different"; }
it_pass
