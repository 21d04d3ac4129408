#!/bin/bash
# Limit refusals reach the queue's status (and so GET /metrics): a source
# whose per-user limit (mail_max_userip_connections = 2) is below the job's
# caps (4 sessions per account), with the user's phone holding one of the
# two; a queued job (SQLite queue, `trasloco worker --drain`) copies the
# account.  The sessions the source refused lower the caps (as in
# test_limits.sh) and are counted: the status JSON has limit_refusals > 0
# for the job, its source side and the account, none on the destination
# side, and the account ends ok (no error kind).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_init queue-limits
. "$IT_LIBDIR/common.sh"
it_pair MAX_CONN=2 -- MAX_CONN=20
src() { it_imaptool --port "$SRC_IMAPS_PORT" --tls implicit --ca "$IT_CA" --tls-name "$IT_TLS_NAME" --user "$U" "$@"; }
src populate --seed 9 --profile standard >&2

"$IT_PYTHON" "$IMAPTOOL" --port "$SRC_IMAPS_PORT" --tls implicit --ca "$IT_CA" \
    --tls-name "$IT_TLS_NAME" --user "$U" hold --connections 1 --seconds 120 >/dev/null 2>&1 &
phone=$!
it_at_exit "kill $phone 2>/dev/null || true"
it_wait_sessions src "$U" 1 10 || it_fail "the phone's session did not show up"

Q=$IT_DIR/queue
KEY=$IT_DIR/queue.key
{
    printf 'email,password\n'
    printf '"%s","%s"\n' "$U" "${PW//\"/\"\"}"
} >"$IT_DIR/accounts.csv"
cat >"$IT_DIR/lim.job" <<JOB
src = $IT_HOST:$SRC_IMAPS_PORT
src-tls = implicit
src-tls-name = $IT_TLS_NAME
dst = $IT_HOST:$DST_IMAPS_PORT
dst-tls = implicit
dst-tls-name = $IT_TLS_NAME
ca-file = $IT_CA
accounts = accounts.csv
src-max-per-account = 4
dst-max-per-account = 4
timeout = 20
JOB
"$TRASLOCO" queue init "$Q" --key-file "$KEY" >"$IT_DIR/init.out" 2>&1 ||
    it_fail "queue init: $(cat "$IT_DIR/init.out")"
"$TRASLOCO" queue submit "$Q" "$IT_DIR/lim.job" --key-file "$KEY" >"$IT_DIR/submit.out" 2>&1 ||
    it_fail "queue submit: $(cat "$IT_DIR/submit.out")"
rc=0
timeout 300 "$TRASLOCO" worker "sqlite:$Q" --key-file "$KEY" --parallel-accounts 1 --drain \
    >"$IT_DIR/worker.out" 2>&1 || rc=$?
sed 's/^/    | /' "$IT_DIR/worker.out" >&2
((rc == 0)) || it_fail "the worker exited $rc"
grep -q 'Maximum number of connections' "$SRC_DIR/dovecot.log" ||
    it_fail "the source never refused a session: the test proves nothing"
grep -Eq 'refused session [0-9]+ of this account' "$IT_DIR/worker.out" ||
    it_fail "the worker never lowered a cap"

"$TRASLOCO" queue status "$Q" lim --json >"$IT_DIR/status.json" 2>"$IT_DIR/status.err" ||
    it_fail "queue status: $(cat "$IT_DIR/status.err")"
"$IT_PYTHON" - "$IT_DIR/status.json" <<'PY' || it_fail "the status: $(cat "$IT_DIR/status.json")"
import json, sys
j = json.load(open(sys.argv[1]))["jobs"][0]
a = j["account_list"][0]
assert a["state"] == "ok", a
assert a["error_kind"] is None, a
assert j["errors"] == {}, j["errors"]
assert j["limit_refusals"] > 0, j
assert j["sessions"]["src"]["limit_refusals"] == j["limit_refusals"], j["sessions"]
assert j["sessions"]["dst"]["limit_refusals"] == 0, j["sessions"]
assert a["limit_refusals"] == j["limit_refusals"], a
assert j["passes"]["last_pass_kind"] == "run" and j["passes"]["last_pass_seconds"] > 0, j["passes"]
print("limit refusals: %d (source), first run %.1f s" % (j["limit_refusals"],
                                                          j["passes"]["last_pass_seconds"]))
PY
"$TRASLOCO" queue status "$Q" lim >"$IT_DIR/status.txt" 2>&1 || it_fail "queue status (text)"
grep -q 'sessions refused for a limit: [1-9][0-9]* by the source, 0 by the destination' \
    "$IT_DIR/status.txt" || it_fail "the text status: $(cat "$IT_DIR/status.txt")"
kill "$phone" 2>/dev/null || true
tr_compare
it_pass
