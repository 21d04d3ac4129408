#!/bin/bash
# A destination that refuses some messages (a per-message size limit): each
# refusal is reported with folder, UID and the server's reply, everything
# else is copied, the exit status says "partial", and a re-run tries the
# refused ones again without duplicating the rest.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_init rejects
. "$IT_LIBDIR/common.sh"
it_pair -- MAX_MSG_KB=500
src() { it_imaptool --port "$SRC_IMAPS_PORT" --tls implicit --ca "$IT_CA" --tls-name "$IT_TLS_NAME" --user "$U" "$@"; }
src append --folder INBOX --count 20 --seed 31 >&2
src append --folder INBOX --count 2 --seed 32 --size-kb 900 >&2
src append --folder INBOX --count 5 --seed 33 >&2
src append --folder Archivio --count 1 --seed 34 --size-kb 700 >&2
src append --folder Archivio --count 3 --seed 35 >&2

tr_migrate
tr_expect_rc 1
tr_expect_out '28 copied, 0 already present, 3 failed'
tr_expect_out 'INBOX: UID 21 \([0-9]+ bytes\) refused: .*server said NO: \[LIMIT\]'
tr_expect_out 'INBOX: UID 22 \([0-9]+ bytes\) refused'
tr_expect_out 'Archivio: UID 1 \([0-9]+ bytes\) refused'
tr_expect_out 'folder "INBOX": 2 message\(s\) not copied'

out=$IT_DIR/cmp
it_imaptool --port "$SRC_IMAPS_PORT" --tls implicit --ca "$IT_CA" --tls-name "$IT_TLS_NAME" \
    --user "$U" compare --dst-port "$DST_IMAPS_PORT" --dst-tls implicit --dst-ca "$IT_CA" \
    --dst-tls-name "$IT_TLS_NAME" --dst-user "$U" > "$out" 2>&1 || true
grep -q 'missing=3 extra=0 flags=0 dates=0' "$out" || { cat "$out" >&2; it_fail "expected exactly the 3 refused messages missing"; }

# Again: the refused ones are tried again (and refused again), nothing else moves.
tr_migrate
tr_expect_rc 1
tr_expect_out ' 0 copied, 28 already present, 3 failed'
it_imaptool --port "$SRC_IMAPS_PORT" --tls implicit --ca "$IT_CA" --tls-name "$IT_TLS_NAME" \
    --user "$U" compare --dst-port "$DST_IMAPS_PORT" --dst-tls implicit --dst-ca "$IT_CA" \
    --dst-tls-name "$IT_TLS_NAME" --dst-user "$U" > "$out" 2>&1 || true
grep -q 'missing=3 extra=0' "$out" || { cat "$out" >&2; it_fail "a re-run changed the destination"; }

# The provider raises the limit: the next run completes the copy.
it_dovecot_stop dst
it_dovecot_start dst "USERS=$U:$(printf '%s' "$PW" | sed 's/%/%25/g; s/ /%20/g')"
tr_migrate
tr_expect_rc 0
tr_expect_out ' 3 copied'
tr_compare
it_pass
