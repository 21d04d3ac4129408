#!/bin/bash
# trasloco serve over a real PostgreSQL queue, two real Dovecots, its own
# in-process workers (--workers), driven only through the HTTP API
# (serve_client.py):
#   - every refusal has its documented status and creates nothing: 401
#     without or with a wrong token, 400 for malformed JSON, unknown keys,
#     missing src/dst/CSV, a CSV without a usable row, 413 over --max-body, 400
#     for a path with "..", 404 for jobs that do not exist, 405;
#   - a job of 10 accounts (2 with wrong passwords, plus a bad CSV row that is
#     skipped and named) submitted as JSON: 8 ok and exact on the destination
#     message by message, 2 failed with the authentication error;
#   - 50 status requests at once while it runs all answer (latency printed);
#   - the event stream sends the job's document; /metrics parses as
#     Prometheus text (python3-prometheus-client's parser);
#   - an account's detail (folders, failures, last verify); passes: delta
#     (new mail at the source copied, exact), verify (exact), every 2 s
#     (started with no request), final (the job finished, 409 after it);
#   - retry puts the 2 failed accounts back (they fail again), cancel and
#     delete behave as written (204, then 404);
#   - every exchange matches doc/openapi.json (openapi_check.py) and every
#     documented operation was exercised;
#   - no password in any response, the service's log, the database, or the
#     service's argv and environment.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pg.sh"
it_init serve
: "${TRASLOCO:?}"
"$IT_PYTHON" -c 'import prometheus_client' 2>/dev/null ||
    it_skip "python3-prometheus-client not installed"
it_pg_start
CLIENT=$IT_LIBDIR/serve_client.py

declare -A PW
users=""
accounts=()
for i in $(seq -w 1 10); do
    u=s$i@serve.test
    accounts+=("$u")
    PW[$u]="pw-$i \"serve\" $i"
    users+="$u:$(printf '%s' "${PW[$u]}" | sed 's/%/%25/g; s/ /%20/g') "
done
it_dovecot_start src "USERS=$users"
it_dovecot_start dst "USERS=$users"
for u in "${accounts[@]}"; do
    IMAP_PASSWORD=${PW[$u]} it_imaptool --port "$SRC_IMAPS_PORT" --tls implicit \
        --ca "$IT_CA" --tls-name "$IT_TLS_NAME" --user "$u" populate --seed 21 \
        --profile small >/dev/null &
done
wait

# the job as a panel sends it: s09 and s10 with wrong passwords, one bad row
WRONG="wrong-password-of-the-panel"
"$IT_PYTHON" - "$IT_DIR/job.json" "$IT_HOST" "$SRC_IMAPS_PORT" "$DST_IMAPS_PORT" \
    "$IT_TLS_NAME" "$IT_CA" <<'PY'
import json, sys
out, host, sport, dport, name, ca = sys.argv[1:7]
job = {"name": "acme-api", "src": "%s:%s" % (host, sport), "src-tls": "implicit",
       "src-tls-name": name, "dst": "%s:%s" % (host, dport), "dst-tls": "implicit",
       "dst-tls-name": name, "ca-file": ca, "src-max-per-account": 2,
       "dst-max-per-account": 2, "batch-count": 5, "timeout": 20, "no-subscriptions": False,
       "folder": ["*"], "accounts_csv": ""}
json.dump(job, open(out, "w"))
PY
csv=""
csv+='"email","password"'$'\n'
for u in "${accounts[@]}"; do
    p=${PW[$u]}
    [[ $u == s09@* || $u == s10@* ]] && p=$WRONG
    csv+="\"$u\",\"${p//\"/\"\"}\""$'\n'
done
csv+='"not an address","x"'$'\n'
"$IT_PYTHON" - "$IT_DIR/job.json" "$csv" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
j["accounts_csv"] = sys.argv[2]
json.dump(j, open(sys.argv[1], "w"))
PY
chmod 600 "$IT_DIR/job.json"

KEY=$IT_DIR/queue.key
TOKEN=$("$IT_PYTHON" -c 'import secrets; print(secrets.token_hex(24))')
(umask 077; printf '%s\n' "$TOKEN" >"$IT_DIR/api.token")
"$TRASLOCO" queue init "$IT_PG_DSN" --key-file "$KEY" >"$IT_DIR/init.out" 2>&1 ||
    it_fail "queue init failed: $(cat "$IT_DIR/init.out")"
PORT=$(_it_alloc_port)
BASE=http://$IT_HOST:$PORT
# the DSN through the environment, as a unit file would give it
TRASLOCO_QUEUE=$IT_PG_DSN "$TRASLOCO" serve --token-file "$IT_DIR/api.token" \
    --key-file "$KEY" --listen "$IT_HOST:$PORT" --workers 4 --lease 10 --max-body 65536 \
    >"$IT_DIR/serve.out" 2>&1 &
serve_pid=$!
it_at_exit "kill $serve_pid 2>/dev/null || true"
for ((i = 0; i < 100; i++)); do
    "$IT_PYTHON" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' \
        "$BASE/healthz" >/dev/null 2>&1 && break
    kill -0 "$serve_pid" 2>/dev/null || it_fail "serve exited: $(cat "$IT_DIR/serve.out")"
    sleep 0.1
done
client() { "$IT_PYTHON" "$CLIENT" "$BASE" "$TOKEN" "$@"; }

# serving plain HTTP beyond loopback is refused; so is a missing token file
rc=0
"$TRASLOCO" serve --queue "$IT_PG_DSN" --token-file "$IT_DIR/api.token" --key-file "$KEY" \
    --listen 0.0.0.0:1 >"$IT_DIR/open.out" 2>&1 || rc=$?
((rc == 2)) || it_fail "serve on 0.0.0.0 without TLS exited $rc, not 2"

r=$(client refusals "$IT_DIR/job.json") || it_fail "refusals"
it_log "refusals: $r"

sub=$(client submit "$IT_DIR/job.json") || it_fail "submit failed"
job=$("$IT_PYTHON" -c 'import json,sys; d=json.loads(sys.argv[1]); assert d["accounts"] == 10, d; assert len(d["skipped"]) == 1 and d["skipped"][0]["line"] == 12, d; print(d["id"])' "$sub") ||
    it_fail "submit's reply: $sub"
it_log "job $job submitted: $sub"
lat=$(client concurrent "$job" 50) || it_fail "concurrent status requests"
it_log "$lat"
r=$(client events "$job") || it_fail "the event stream"
it_log "$r"
done_doc=$(client wait "$job" 300) || it_fail "the job did not finish: $(tail -n 20 "$IT_DIR/serve.out")"
"$IT_PYTHON" - "$done_doc" <<'PY' || it_fail "the job's outcome: $done_doc"
import json, sys
j = json.loads(sys.argv[1])
assert j["state"] == "partial", j["state"]
acc = {a["email"]: a for a in j["account_list"]}
assert len(acc) == 10, acc.keys()
for e, a in acc.items():
    bad = e.startswith("s09@") or e.startswith("s10@")
    assert a["status"] == ("failed" if bad else "ok"), a
    if bad:
        assert "authentication" in (a["error"] or "").lower() or \
               "AUTHENTICATIONFAILED" in (a["error"] or ""), a
        assert a["error_kind"] == "auth", a
    else:
        assert a["messages_copied"] > 0 and a["folders_done"] == a["folders_total"], a
        assert a["error_kind"] is None, a
assert j["errors"] == {"auth": 2}, j["errors"]
assert j["passes"]["last_pass_kind"] == "run", j["passes"]
assert j["passes"]["last_pass_seconds"] > 0, j["passes"]
PY
r=$(client metrics) || it_fail "/metrics"
it_log "$r"
case $r in *"auth errors 2"*) ;; *) it_fail "/metrics: not 2 accounts failed on auth: $r" ;; esac

for u in "${accounts[@]:0:8}"; do
    IMAP_PASSWORD=${PW[$u]} it_imaptool --port "$SRC_IMAPS_PORT" --tls implicit --ca "$IT_CA" \
        --tls-name "$IT_TLS_NAME" --user "$u" compare --dst-port "$DST_IMAPS_PORT" \
        --dst-tls implicit --dst-ca "$IT_CA" --dst-tls-name "$IT_TLS_NAME" --dst-user "$u" \
        >"$IT_DIR/compare.$u" 2>&1 || { cat "$IT_DIR/compare.$u" >&2; it_fail "$u differs"; }
done

# one account's detail: its folders, nothing failed, no verify yet; 404s
d=$(client call GET "/v1/jobs/$job/accounts/s01@serve.test" 200) || it_fail "account detail"
"$IT_PYTHON" -c '
import json, sys
d = json.loads(sys.argv[1])
assert d["email"] == "s01@serve.test" and d["status"] == "ok", d
assert d["folders"] and all(f["status"] == "ok" for f in d["folders"]), d["folders"]
assert sum(f["messages_copied"] for f in d["folders"]) == d["messages_copied"] > 0, d
assert d["failures"] == [] and d["verify"] is None, d' "$d" || it_fail "account detail: $d"
client call GET "/v1/jobs/$job/accounts/nobody@serve.test" 404 >/dev/null ||
    it_fail "an account that is not in the job"
for body in '{"kind": "full"}' '{}' '{"every": "6x"}' '{"kind": "final", "every": "1h"}' '[1'; do
    client call POST "/v1/jobs/$job/passes" 400 "$body" >/dev/null ||
        it_fail "pass body $body not refused"
done

# new mail at the old server; a delta pass copies exactly it
for u in "${accounts[@]:0:8}"; do
    IMAP_PASSWORD=${PW[$u]} it_imaptool --port "$SRC_IMAPS_PORT" --tls implicit \
        --ca "$IT_CA" --tls-name "$IT_TLS_NAME" --user "$u" append --folder INBOX \
        --count 3 --seed 77 >/dev/null || it_fail "append for $u"
done
r=$(client call POST "/v1/jobs/$job/passes" 200 '{"kind": "delta"}') || it_fail "delta pass"
[[ $r == *'"accounts": 10'* ]] || it_fail "the delta pass: $r"
after=$(client wait_passes "$job" 2 300) || it_fail "the delta pass did not end"
"$IT_PYTHON" -c '
import json, sys
j = json.loads(sys.argv[1])
assert j["passes"]["count"] == 2, j["passes"]
ok = [a for a in j["account_list"] if a["status"] == "ok"]
assert len(ok) == 8 and all(a["messages_copied"] == 3 for a in ok), j["account_list"]' "$after" ||
    it_fail "after the delta pass: $after"
for u in "${accounts[@]:0:8}"; do
    IMAP_PASSWORD=${PW[$u]} it_imaptool --port "$SRC_IMAPS_PORT" --tls implicit --ca "$IT_CA" \
        --tls-name "$IT_TLS_NAME" --user "$u" compare --dst-port "$DST_IMAPS_PORT" \
        --dst-tls implicit --dst-ca "$IT_CA" --dst-tls-name "$IT_TLS_NAME" --dst-user "$u" \
        >"$IT_DIR/compare2.$u" 2>&1 || { cat "$IT_DIR/compare2.$u" >&2; it_fail "$u differs after the delta"; }
done

# a verify pass: the account's last verify, exact
client call POST "/v1/jobs/$job/passes" 200 '{"kind": "verify"}' >/dev/null || it_fail "verify pass"
client wait_passes "$job" 3 300 >/dev/null || it_fail "the verify pass did not end"
d=$(client call GET "/v1/jobs/$job/accounts/s02@serve.test" 200) || it_fail "account detail"
[[ $d == *'"exact": true'* ]] || it_fail "s02's verify: $d"

# delta passes every 2 s: started with no request (serve's tick, the workers'
# heartbeat); then a final pass ends the job, and nothing but a verify after it
r=$(client call POST "/v1/jobs/$job/passes" 200 '{"every": "2s"}') || it_fail "every"
[[ $r == *'"every_seconds": 2'* ]] || it_fail "every: $r"
client wait_passes "$job" 4 120 >/dev/null || it_fail "no scheduled pass started"
client call POST "/v1/jobs/$job/passes" 200 '{"kind": "final"}' >/dev/null || it_fail "final pass"
for ((i = 0; i < 600; i++)); do
    f=$(client call GET "/v1/jobs/$job" 200) || it_fail "status"
    [[ $f == *'"finished": true'* && $f != *'"state": "running"'* ]] && break
    sleep 0.5
done
[[ $f == *'"finished": true'* ]] || it_fail "the final pass did not finish the job: $f"
client call POST "/v1/jobs/$job/passes" 409 '{"kind": "delta"}' >/dev/null ||
    it_fail "a delta after the final pass was not refused with 409"
it_log "passes: delta exact, verify exact, scheduled every 2 s, final: finished"

# retry: the two failed accounts run again (and fail again: same passwords)
r=$(client call POST "/v1/jobs/$job/retry" 200) || it_fail "retry"
[[ $r == *'"retried": 2'* || $r == *'"retried":2'* ]] || it_fail "retry: $r"
client wait "$job" 120 >/dev/null || it_fail "the retried job did not finish"

# cancel a second job at once: what the workers have not finished stops
sub2=$(client submit "$IT_DIR/job.json") || it_fail "second submit"
job2=$("$IT_PYTHON" -c 'import json,sys; print(json.loads(sys.argv[1])["id"])' "$sub2")
r=$(client call POST "/v1/jobs/$job2/cancel" 200) || it_fail "cancel"
c=$(client wait "$job2" 120) || it_fail "the cancelled job did not end"
[[ $c == *'"state": "cancelled"'* ]] || it_fail "cancelled job: $c"

# delete: 204 (an event stream open on the job says gone), then 404; its
# rows (and sealed passwords) gone
r=$(client events_delete "$job2") || it_fail "delete with an event stream open"
it_log "$r"
client call GET "/v1/jobs/$job2" 404 >/dev/null || it_fail "a deleted job still answers"
n=$(it_pg_psql "SELECT count(*) FROM q_accounts WHERE job_id = $job2")
[[ $n == 0 ]] || it_fail "the deleted job's accounts are still in the database ($n)"

# no password anywhere: responses, the service's log, the database, argv/env
it_pg_dump >"$IT_DIR/dump.sql"
for u in "${accounts[@]}"; do
    for p in "${PW[$u]}" "$WRONG"; do
        for f in "$IT_DIR/responses.log" "$IT_DIR/serve.out" "$IT_DIR/dump.sql" \
            "$IT_PG_DIR/postgres.log"; do
            grep -qF -- "$p" "$f" && it_fail "a password of $u appears in $f"
        done
        tr '\0' '\n' <"/proc/$serve_pid/cmdline" | grep -qF -- "$p" &&
            it_fail "a password in serve's argv"
        tr '\0' '\n' <"/proc/$serve_pid/environ" | grep -qF -- "$p" &&
            it_fail "a password in serve's environment"
    done
done
tr '\0' '\n' <"/proc/$serve_pid/environ" | grep -qa '^TRASLOCO_QUEUE=[^[:cntrl:]]' &&
    it_fail "the DSN stayed in serve's environment"
grep -qF -- "$TOKEN" "$IT_DIR/serve.out" && it_fail "the token appears in serve's log"

# HTTPS: a second service with the tests' certificate (checked by the client
# against the throwaway CA), jobs submitted over it (TLS: allowed)
PORT2=$(_it_alloc_port)
TRASLOCO_QUEUE=$IT_PG_DSN "$TRASLOCO" serve --token-file "$IT_DIR/api.token" \
    --key-file "$KEY" --listen "$IT_HOST:$PORT2" --tls-cert "$IT_DIR/ssl/$IT_TLS_NAME.pem" \
    --tls-key "$IT_DIR/ssl/$IT_TLS_NAME.key" >"$IT_DIR/serve-tls.out" 2>&1 &
tls_pid=$!
it_at_exit "kill $tls_pid 2>/dev/null || true"
for ((i = 0; i < 100; i++)); do
    IT_CA=$IT_CA "$IT_PYTHON" "$CLIENT" "https://$IT_HOST:$PORT2" "$TOKEN" tls \
        >"$IT_DIR/tls.out" 2>&1 && break
    kill -0 "$tls_pid" 2>/dev/null || it_fail "serve with TLS exited: $(cat "$IT_DIR/serve-tls.out")"
    sleep 0.1
done
grep -q '^https ok' "$IT_DIR/tls.out" || it_fail "HTTPS: $(cat "$IT_DIR/tls.out")"
it_log "$(cat "$IT_DIR/tls.out")"
kill -TERM "$tls_pid"
wait "$tls_pid" || it_fail "serve with TLS exited non-zero on SIGTERM"

# the database away when a service starts: it answers 503, and its workers
# start once the database is back (a job submitted then is run)
it_pg_stop fast
PORT3=$(_it_alloc_port)
TRASLOCO_QUEUE=$IT_PG_DSN "$TRASLOCO" serve --token-file "$IT_DIR/api.token" \
    --key-file "$KEY" --listen "$IT_HOST:$PORT3" --workers 2 --lease 10 \
    >"$IT_DIR/serve-nodb.out" 2>&1 &
nodb_pid=$!
it_at_exit "kill $nodb_pid 2>/dev/null || true"
for ((i = 0; i < 100; i++)); do
    "$IT_PYTHON" "$CLIENT" "http://$IT_HOST:$PORT3" "$TOKEN" call GET /v1/jobs 503 \
        >/dev/null 2>&1 && break
    kill -0 "$nodb_pid" 2>/dev/null || it_fail "serve without its database exited: $(cat "$IT_DIR/serve-nodb.out")"
    sleep 0.1
done
((i < 100)) || it_fail "serve without its database did not answer 503"
sleep 2
it_pg_restart fast
sub3=$("$IT_PYTHON" "$CLIENT" "http://$IT_HOST:$PORT3" "$TOKEN" submit "$IT_DIR/job.json") ||
    it_fail "submit once the database is back"
job3=$("$IT_PYTHON" -c 'import json,sys; print(json.loads(sys.argv[1])["id"])' "$sub3")
# the first service (its workers included) stops, so that this job is the new one's
kill -TERM "$serve_pid"; wait "$serve_pid" || it_fail "serve exited non-zero on SIGTERM"
"$IT_PYTHON" "$CLIENT" "http://$IT_HOST:$PORT3" "$TOKEN" wait "$job3" 120 >/dev/null ||
    it_fail "the workers of a service started without its database never ran: $(tail -n 5 "$IT_DIR/serve-nodb.out")"
grep -q 'starting them again' "$IT_DIR/serve-nodb.out" ||
    it_fail "the workers did not say they were started again"
it_log "database away at start: 503, then the workers started once it came back"
kill -TERM "$nodb_pid"; wait "$nodb_pid" || it_fail "serve exited non-zero on SIGTERM"

# every exchange above as doc/openapi.json says, every operation exercised
"$IT_PYTHON" "$IT_LIBDIR/openapi_check.py" "${TOP_SRCDIR:-$IT_LIBDIR/../..}/doc/openapi.json" \
    "$IT_DIR/exchanges.jsonl" >"$IT_DIR/openapi.out" 2>&1 ||
    it_fail "the API and doc/openapi.json disagree: $(cat "$IT_DIR/openapi.out")"
it_log "$(cat "$IT_DIR/openapi.out")"

it_pass "API: refusals as documented; 8 ok exact, 2 failed (auth); $lat"
