#!/bin/bash
# trasloco serve --state DIR: one host, no database server, the jobs run by
# the service itself (SQLite queue and state in DIR), driven only through
# the HTTP API (serve_client.py) against two real Dovecots:
#   - the first start makes DIR's queue and key (private files);
#   - a job of 10 accounts (2 wrong passwords, a bad CSV row skipped): 8 ok
#     and exact message by message, 2 failed with the authentication error;
#   - the service SIGKILLed while a second job runs: started again, it takes
#     its accounts back at once and the job ends exact, nothing doubled;
#   - a delta pass copies exactly the mail that arrived since; an account's
#     detail; retry, cancel, delete (204, then 404);
#   - every exchange matches doc/openapi.json;
#   - no password in any response, the service's log, any file of DIR, its
#     argv or environment.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_init serve-local
: "${TRASLOCO:?}"
CLIENT=$IT_LIBDIR/serve_client.py

declare -A PW
users=""
accounts=()
for i in $(seq -w 1 10); do
    u=l$i@local.test
    accounts+=("$u")
    PW[$u]="pw-$i \"local\" $i"
    users+="$u:$(printf '%s' "${PW[$u]}" | sed 's/%/%25/g; s/ /%20/g') "
done
it_dovecot_start src "USERS=$users"
it_dovecot_start dst "USERS=$users"
for u in "${accounts[@]}"; do
    profile=small
    [[ $u == l0[1-4]@* ]] && profile=standard
    IMAP_PASSWORD=${PW[$u]} it_imaptool --port "$SRC_IMAPS_PORT" --tls implicit \
        --ca "$IT_CA" --tls-name "$IT_TLS_NAME" --user "$u" populate --seed 31 \
        --profile "$profile" >/dev/null &
done
wait

WRONG="wrong-password-of-the-panel"
csv='"email","password"'$'\n'
for u in "${accounts[@]}"; do
    p=${PW[$u]}
    [[ $u == l09@* || $u == l10@* ]] && p=$WRONG
    csv+="\"$u\",\"${p//\"/\"\"}\""$'\n'
done
csv+='"not an address","x"'$'\n'
"$IT_PYTHON" - "$IT_DIR/job.json" "$IT_HOST" "$SRC_IMAPS_PORT" "$DST_IMAPS_PORT" \
    "$IT_TLS_NAME" "$IT_CA" "$csv" <<'PY'
import json, sys
out, host, sport, dport, name, ca, csv = sys.argv[1:8]
json.dump({"name": "acme-local", "src": "%s:%s" % (host, sport), "src-tls": "implicit",
           "src-tls-name": name, "dst": "%s:%s" % (host, dport), "dst-tls": "implicit",
           "dst-tls-name": name, "ca-file": ca, "src-max-per-account": 2,
           "dst-max-per-account": 2, "batch-count": 5, "timeout": 20,
           "accounts_csv": csv}, open(out, "w"))
PY
chmod 600 "$IT_DIR/job.json"

STATE=$IT_DIR/state
TOKEN=$("$IT_PYTHON" -c 'import secrets; print(secrets.token_hex(24))')
(umask 077; printf '%s\n' "$TOKEN" >"$IT_DIR/api.token")
PORT=$(_it_alloc_port)
BASE=http://$IT_HOST:$PORT
client() { "$IT_PYTHON" "$CLIENT" "$BASE" "$TOKEN" "$@"; }
start_serve() {
    "$TRASLOCO" serve --state "$STATE" --token-file "$IT_DIR/api.token" \
        --listen "$IT_HOST:$PORT" --lease 10 >>"$IT_DIR/serve.out" 2>&1 &
    serve_pid=$!
    it_at_exit "kill $serve_pid 2>/dev/null || true"
    for ((i = 0; i < 100; i++)); do
        "$IT_PYTHON" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' \
            "$BASE/healthz" >/dev/null 2>&1 && return 0
        kill -0 "$serve_pid" 2>/dev/null || it_fail "serve exited: $(cat "$IT_DIR/serve.out")"
        sleep 0.1
    done
    it_fail "serve --state did not answer"
}
compare() {
    local u=$1
    IMAP_PASSWORD=${PW[$u]} it_imaptool --port "$SRC_IMAPS_PORT" --tls implicit --ca "$IT_CA" \
        --tls-name "$IT_TLS_NAME" --user "$u" compare --dst-port "$DST_IMAPS_PORT" \
        --dst-tls implicit --dst-ca "$IT_CA" --dst-tls-name "$IT_TLS_NAME" --dst-user "$u" \
        >"$IT_DIR/compare.$u" 2>&1 || { cat "$IT_DIR/compare.$u" >&2; it_fail "$u differs${2:+ $2}"; }
}

start_serve
[[ -f $STATE/queue.sqlite && -f $STATE/queue.key ]] || it_fail "the first start made no queue or key in $STATE"
[[ $(stat -c %a "$STATE") == 700 && $(stat -c %a "$STATE/queue.key") == 600 &&
   $(stat -c %a "$STATE/queue.sqlite") == 600 ]] || it_fail "the queue's files are not private"

sub=$(client submit "$IT_DIR/job.json") || it_fail "submit failed"
job=$("$IT_PYTHON" -c 'import json,sys; d=json.loads(sys.argv[1]); assert d["accounts"] == 10 and len(d["skipped"]) == 1, d; print(d["id"])' "$sub") ||
    it_fail "submit's reply: $sub"
done_doc=$(client wait "$job" 300) || it_fail "the job did not finish: $(tail -n 20 "$IT_DIR/serve.out")"
"$IT_PYTHON" - "$done_doc" <<'PY' || it_fail "the job's outcome: $done_doc"
import json, sys
j = json.loads(sys.argv[1])
assert j["state"] == "partial", j["state"]
acc = {a["email"]: a for a in j["account_list"]}
assert len(acc) == 10
for e, a in acc.items():
    bad = e.startswith("l09@") or e.startswith("l10@")
    assert a["status"] == ("failed" if bad else "ok"), a
    if bad:
        assert "AUTHENTICATIONFAILED" in (a["error"] or "") or \
               "authentication" in (a["error"] or "").lower(), a
PY
for u in "${accounts[@]:0:8}"; do compare "$u"; done
it_log "job $job: 8 ok and exact, 2 failed (authentication)"

# new mail, and a second job (the same accounts: a copy of what is new) during
# which the service is SIGKILLed: started again, it takes its accounts back
for u in "${accounts[@]:0:4}"; do
    IMAP_PASSWORD=${PW[$u]} it_imaptool --port "$SRC_IMAPS_PORT" --tls implicit \
        --ca "$IT_CA" --tls-name "$IT_TLS_NAME" --user "$u" append --folder INBOX \
        --count 40 --seed 91 --size-kb 64 >/dev/null || it_fail "append for $u"
done
r=$(client call POST "/v1/jobs/$job/passes" 200 '{"kind": "delta"}') || it_fail "delta pass"
for ((i = 0; i < 600; i++)); do
    st=$(client call GET "/v1/jobs/$job" 200) || it_fail "status"
    [[ $st == *'"running": '[1-9]* ]] && break
    sleep 0.05
done
[[ $st == *'"running": '[1-9]* ]] || it_fail "the delta pass never showed a running account"
kill -9 "$serve_pid"
wait "$serve_pid" 2>/dev/null || true
it_log "serve SIGKILLed during the delta pass"
start_serve
after=$(client wait_passes "$job" 2 300) || it_fail "the delta pass did not end after the restart: $(tail -n 20 "$IT_DIR/serve.out")"
"$IT_PYTHON" -c '
import json, sys
j = json.loads(sys.argv[1])
ok = [a for a in j["account_list"] if a["status"] == "ok"]
assert len(ok) == 8, j["account_list"]
assert sum(a["takeovers"] for a in j["account_list"]) >= 1, j["account_list"]' "$after" ||
    it_fail "after the restart (8 ok, an account taken back): $after"
for u in "${accounts[@]:0:8}"; do compare "$u" "after the restart"; done
it_log "restarted: the delta pass ended, every account exact, nothing doubled"

# an account's detail; retry; cancel and delete a second job
d=$(client call GET "/v1/jobs/$job/accounts/l01@local.test" 200) || it_fail "account detail"
[[ $d == *'"folders": [{'* ]] || it_fail "account detail: $d"
r=$(client call POST "/v1/jobs/$job/retry" 200) || it_fail "retry"
[[ $r == *'"retried": 2'* ]] || it_fail "retry: $r"
client wait "$job" 120 >/dev/null || it_fail "the retried job did not finish"
sub2=$(client submit "$IT_DIR/job.json") || it_fail "second submit"
job2=$("$IT_PYTHON" -c 'import json,sys; print(json.loads(sys.argv[1])["id"])' "$sub2")
client call POST "/v1/jobs/$job2/cancel" 200 >/dev/null || it_fail "cancel"
c=$(client wait "$job2" 120) || it_fail "the cancelled job did not end"
[[ $c == *'"state": "cancelled"'* ]] || it_fail "cancelled job: $c"
client call DELETE "/v1/jobs/$job2" 204 >/dev/null || it_fail "delete"
client call GET "/v1/jobs/$job2" 404 >/dev/null || it_fail "a deleted job still answers"

# no password anywhere: responses, the log, every file of DIR, argv/env
for u in "${accounts[@]}"; do
    for p in "${PW[$u]}" "$WRONG"; do
        grep -rqF -- "$p" "$IT_DIR/responses.log" "$IT_DIR/serve.out" "$STATE" &&
            it_fail "a password of $u appears in a response, the log or $STATE"
        tr '\0' '\n' <"/proc/$serve_pid/cmdline" | grep -qF -- "$p" &&
            it_fail "a password in serve's argv"
        tr '\0' '\n' <"/proc/$serve_pid/environ" | grep -qF -- "$p" &&
            it_fail "a password in serve's environment"
    done
done

"$IT_PYTHON" "$IT_LIBDIR/openapi_check.py" "${TOP_SRCDIR:-$IT_LIBDIR/../..}/doc/openapi.json" \
    "$IT_DIR/exchanges.jsonl" --partial >"$IT_DIR/openapi.out" 2>&1 ||
    it_fail "the API and doc/openapi.json disagree: $(cat "$IT_DIR/openapi.out")"
kill -TERM "$serve_pid"
rc=0
wait "$serve_pid" || rc=$?
((rc == 0)) || it_fail "serve exited $rc on SIGTERM: $(tail -n 5 "$IT_DIR/serve.out")"
it_pass "serve --state: 8 exact, 2 failed (auth); SIGKILL mid-pass, restarted, exact; $(cat "$IT_DIR/openapi.out")"
