#!/bin/bash
# One message the parser cannot read must not stop a folder: a source whose
# responses about two messages are broken (a proxy mangles every FETCH
# response for their UIDs, whatever was asked).  trasloco must reconnect,
# halve the UID range until each bad message is alone, report it by folder
# and UID, copy everything else, and exit 1; a re-run does the same and adds
# nothing twice.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_init unparseable
. "$IT_LIBDIR/common.sh"
it_pair
src() { it_imaptool --port "$SRC_IMAPS_PORT" --tls implicit --ca "$IT_CA" --tls-name "$IT_TLS_NAME" --user "$U" "$@"; }
src append --folder INBOX --count 40 --seed 71 >&2
src append --folder Lavoro --count 9 --seed 72 >&2

"$IT_PYTHON" "$IT_LIBDIR/mangleproxy.py" "$SRC_IMAP_PORT" "$IT_DIR/proxy.port" 17 5 &
proxy=$!
it_at_exit "kill $proxy 2>/dev/null || true"
for _ in $(seq 50); do [[ -s $IT_DIR/proxy.port ]] && break; sleep 0.1; done
pport=$(cat "$IT_DIR/proxy.port")

mig() {
    tr_migrate --src "$IT_HOST:$pport" --src-tls none --batch-count 8 --src-max-per-account 1 "$@"
}
mig
tr_expect_rc 1
tr_expect_out 'INBOX: UID 17 not copied: the source server.s response to FETCH'
tr_expect_out 'INBOX: UID 5 not copied'
tr_expect_out 'Lavoro: UID 5 not copied'
tr_expect_out '46 copied, 0 already present, 3 failed'

out=$IT_DIR/cmp
src compare --dst-port "$DST_IMAPS_PORT" --dst-tls implicit --dst-ca "$IT_CA" \
    --dst-tls-name "$IT_TLS_NAME" --dst-user "$U" > "$out" 2>&1 || true
grep -q 'missing=3 extra=0 flags=0 dates=0' "$out" || { cat "$out" >&2; it_fail "expected exactly the 3 bad messages missing"; }

# Again: the same three are tried (and fail) again, nothing else moves.
mig
tr_expect_rc 1
tr_expect_out ' 0 copied, 46 already present, 3 failed'
src compare --dst-port "$DST_IMAPS_PORT" --dst-tls implicit --dst-ca "$IT_CA" \
    --dst-tls-name "$IT_TLS_NAME" --dst-user "$U" > "$out" 2>&1 || true
grep -q 'missing=3 extra=0' "$out" || { cat "$out" >&2; it_fail "a re-run changed the destination"; }

# Straight to the server (the "fixed" source): the three arrive, once.
tr_migrate
tr_expect_rc 0
tr_expect_out ' 3 copied'
tr_compare
it_pass
