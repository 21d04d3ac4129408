#!/bin/bash
# A server whose per-user limit is below what trasloco was told it may use,
# with the user's own phone holding one of the allowed sessions: the refusals
# ([LIMIT] "Maximum number of connections") must lower trasloco's
# concurrency, never be taken for a wrong password, and the copy must finish.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_init limits
. "$IT_LIBDIR/common.sh"
it_pair MAX_CONN=2 -- MAX_CONN=2
src() { it_imaptool --port "$SRC_IMAPS_PORT" --tls implicit --ca "$IT_CA" --tls-name "$IT_TLS_NAME" --user "$U" "$@"; }
src populate --seed 9 --profile standard >&2

# The phone: one IMAP session open on the source for the whole run.
"$IT_PYTHON" "$IMAPTOOL" --port "$SRC_IMAPS_PORT" --tls implicit --ca "$IT_CA" \
    --tls-name "$IT_TLS_NAME" --user "$U" hold --connections 1 --seconds 60 >/dev/null 2>&1 &
phone=$!
it_at_exit "kill $phone 2>/dev/null || true"
it_wait_sessions src "$U" 1 10 || it_fail "the phone's session did not show up"

tr_migrate --src-max-per-account 4 --dst-max-per-account 4
tr_expect_rc 0
tr_expect_out 'refused session [0-9]+ of this account: at most [0-9]+ from now on'
grep -q 'AUTHENTICATIONFAILED\|wrong password' "$TR_OUT" && it_fail "a limit was taken for a bad password"
grep -q 'Maximum number of connections' "$SRC_DIR/dovecot.log" ||
    it_fail "the source never refused a session: the test proves nothing"
tr_compare
kill "$phone" 2>/dev/null || true

# With the phone gone and the limit known, a re-run is quiet and complete.
tr_migrate --src-max-per-account 2 --dst-max-per-account 2
tr_expect_rc 0
tr_expect_out 'nothing new'
it_pass
