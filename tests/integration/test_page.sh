#!/bin/bash
# The status page (page/) in a real browser: Debian's chromium, headless, loads
# http://127.0.0.1:PORT/#token=TOKEN while a job runs, lets the page poll for
# 30 s of virtual time (--virtual-time-budget: a few seconds of real time) and
# dumps the DOM; tests/integration/pagecheck.py then checks that
#   - the page shows every job the API lists, and every account of each open
#     job (all running ones) with its status (tr[data-email][data-status],
#     td.status), consistent with what the API says afterwards;
#   - a job that finished while the page watched is shown finished, exactly;
#   - markup in an error text stayed text (no id="injected" element);
#   - the console shows no script error and no Content-Security-Policy refusal;
# and, from the server's request log, that the page polled, sent the token in
# every API request's Authorization header and never in a URL.  A wrong token
# shows the form with the 401 message after one request; no token shows the
# form and asks nothing.  Opened with #show=problems, the page shows only the
# failed and partial accounts.  Screenshots are kept among the test artefacts:
# $TRASLOCO_ARTEFACTS/status-page.png if set, else
# BUILDDIR/tests/artefacts/status-page.png (and status-page-401.png).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_init page
CHROMIUM=${CHROMIUM:-chromium}
command -v "$CHROMIUM" >/dev/null 2>&1 || it_skip "$CHROMIUM not installed (Debian's chromium)"
command -v timeout >/dev/null 2>&1 || it_skip "timeout (coreutils) not installed"
SRCDIR=${TOP_SRCDIR:-$(cd "$IT_LIBDIR/../.." && pwd)}
if [[ -n ${TRASLOCO_ARTEFACTS:-} ]]; then
    ARTEFACTS=$TRASLOCO_ARTEFACTS
elif [[ -n ${TRASLOCO:-} ]]; then
    ARTEFACTS=$(dirname "$(dirname "$TRASLOCO")")/tests/artefacts   # the build dir's
else
    ARTEFACTS=$SRCDIR/build/tests/artefacts
fi
mkdir -p "$ARTEFACTS" || it_fail "cannot make the artefacts directory $ARTEFACTS"

TOKEN_FILE=$IT_DIR/api.token
(umask 077 && "$IT_PYTHON" -c 'import secrets; print(secrets.token_urlsafe(24))' >"$TOKEN_FILE")
TOKEN=$(cat "$TOKEN_FILE")
PORT=$(_it_alloc_port)
BASE_URL=http://$IT_HOST:$PORT/

# ---- the server the page talks to ------------------------------------------
# The real `trasloco serve --state DIR` (the jobs run by the service itself,
# its queue and state in SQLite), two real Dovecots.  Job 1 (3 accounts, one with a wrong
# password: a failed row for the filter; its name holds markup that must stay
# text) runs to its end before the browser comes; job 2 (8 accounts of 200
# messages, one account at a time) is still running while the page watches.
declare -A PW
users=""
for i in 1 2 3 4 5 6 7 8 9 10 11; do
    u=p$i@page.test
    PW[$u]="pw-$i page"
    users+="$u:$(printf '%s' "${PW[$u]}" | sed 's/ /%20/g') "
done
it_dovecot_start src "USERS=$users"
it_dovecot_start dst "USERS=$users"
for i in 1 2 3 4 5 6 7 8 9 10 11; do
    u=p$i@page.test
    profile=small
    ((i > 3)) && profile=standard
    IMAP_PASSWORD=${PW[$u]} it_imaptool --port "$SRC_IMAPS_PORT" --tls implicit \
        --ca "$IT_CA" --tls-name "$IT_TLS_NAME" --user "$u" populate --seed 5 \
        --profile "$profile" >/dev/null &
done
wait
# job JSON: name, then "email password" pairs
job_json() {
    "$IT_PYTHON" - "$@" <<'PY'
import json, os, sys
name, rows = sys.argv[1], sys.argv[2:]
csv = "email,password\n" + "".join('"%s","%s"\n' % (rows[i], rows[i + 1])
                                   for i in range(0, len(rows), 2))
e = os.environ
print(json.dumps({"name": name, "src": "%s:%s" % (e["IT_HOST"], e["SRC_IMAPS_PORT"]),
                  "src-tls": "implicit", "src-tls-name": e["IT_TLS_NAME"],
                  "dst": "%s:%s" % (e["IT_HOST"], e["DST_IMAPS_PORT"]), "dst-tls": "implicit",
                  "dst-tls-name": e["IT_TLS_NAME"], "ca-file": e["IT_CA"],
                  "src-max-per-account": 1, "dst-max-per-account": 1, "batch-count": 5,
                  "parallel-accounts": 1, "accounts_csv": csv}))
PY
}
submit() {
    "$IT_PYTHON" -c '
import json, sys, urllib.request
req = urllib.request.Request(sys.argv[1] + "v1/jobs", data=sys.stdin.buffer.read(), method="POST",
    headers={"Authorization": "Bearer " + sys.argv[2], "Content-Type": "application/json"})
print(json.load(urllib.request.urlopen(req, timeout=30))["id"])' "$BASE_URL" "$TOKEN"
}
job_state() {
    "$IT_PYTHON" -c '
import json, sys, urllib.request
req = urllib.request.Request(sys.argv[1] + "v1/jobs/" + sys.argv[3],
    headers={"Authorization": "Bearer " + sys.argv[2]})
print(json.load(urllib.request.urlopen(req, timeout=30))["state"])' "$BASE_URL" "$TOKEN" "$1"
}
export SRC_IMAPS_PORT DST_IMAPS_PORT
server_start() {
    "$TRASLOCO" serve --state "$IT_DIR/state" --listen "$IT_HOST:$PORT" \
        --token-file "$TOKEN_FILE" --workers 1 \
        --access-log "$IT_DIR/access.log" </dev/null >"$IT_DIR/server.log" 2>&1 &
    SERVER_PID=$!
}
server_jobs() {
    local j1 j2 i
    j1=$(job_json '<img id="injected" src="x">acme' p1@page.test "${PW[p1@page.test]}" \
        p2@page.test "${PW[p2@page.test]}" | submit) || it_fail "submitting job 1 failed"
    for ((i = 0; i < 600; i++)); do
        [[ $(job_state "$j1") == done ]] && break
        sleep 0.1
    done
    [[ $(job_state "$j1") == done ]] || it_fail "job 1 did not end done"
    args=(p3@page.test wrong-password)
    for i in 4 5 6 7 8 9 10 11; do args+=("p$i@page.test" "${PW[p$i@page.test]}"); done
    j2=$(job_json big "${args[@]}" | submit) || it_fail "submitting job 2 failed"
    # the page watches job 2 run; once it has ended, a last look must show it
    # exactly as the API does (FINAL_JOBS then)
    FINAL_JOBS=()
    WATCHED_JOB=$j2
}
wait_watched_job() {
    local i st
    for ((i = 0; i < 1200; i++)); do
        st=$(job_state "$WATCHED_JOB")
        [[ $st == partial || $st == done || $st == failed ]] && break
        sleep 0.1
    done
    [[ $st == partial ]] || it_fail "job $WATCHED_JOB ended $st, not partial"
    FINAL_JOBS=("$WATCHED_JOB")
}
server_requests() { cat "$IT_DIR/access.log" 2>/dev/null || true; }
# ---- end of the server block -------------------------------------------------

server_start
it_at_exit 'kill "$SERVER_PID" 2>/dev/null; wait "$SERVER_PID" 2>/dev/null'
for ((i = 0; ; i++)); do
    (exec 3<>"/dev/tcp/$IT_HOST/$PORT") 2>/dev/null && break
    kill -0 "$SERVER_PID" 2>/dev/null || it_fail "the server exited: $(cat "$IT_DIR/server.log")"
    ((i < 200)) || it_fail "nothing listens on $IT_HOST:$PORT after 10 s"
    sleep 0.05
done
server_jobs

# browse NAME URL: one headless chromium, its own HOME and profile under
# $IT_DIR/NAME, bounded by timeout (which ends the whole process group);
# the DOM in $IT_DIR/NAME.html, a screenshot in $IT_DIR/NAME.png.
browse() {
    local name=$1 url=$2 d=$IT_DIR/$1 rc=0
    mkdir -p "$d/home" "$d/profile"
    HOME=$d/home XDG_CONFIG_HOME=$d/home/.config XDG_CACHE_HOME=$d/home/.cache \
        timeout -k 5 90 "$CHROMIUM" --headless --no-sandbox --disable-gpu \
        --user-data-dir="$d/profile" --no-first-run --no-default-browser-check \
        --disable-extensions --disable-background-networking --disable-component-update \
        --disable-sync --disable-default-apps --no-proxy-server --mute-audio \
        --hide-scrollbars --window-size=1280,900 --virtual-time-budget=30000 \
        --enable-logging=stderr --v=0 \
        --screenshot="$IT_DIR/$name.png" --dump-dom "$url" \
        </dev/null >"$IT_DIR/$name.html" 2>"$d/chromium.log" || rc=$?
    ((rc == 0)) || it_fail "$name: chromium exited with $rc: $(grep -v -i dbus "$d/chromium.log" | tail -5)"
    [[ -s $IT_DIR/$name.html ]] || it_fail "$name: chromium dumped no DOM"
    [[ -s $IT_DIR/$name.png ]] || it_fail "$name: chromium wrote no screenshot"
    # the page's console (--enable-logging): a script error or a blocked
    # Content-Security-Policy violation is a failure
    if grep -E 'CONSOLE.*(Uncaught|Content Security Policy)' "$d/chromium.log" >"$d/console.err"; then
        it_fail "$name: the page's console: $(head -c 600 "$d/console.err")"
    fi
}

# requests FROM: the server's requests from line FROM on, summed up as
# "api=N authless=N refused=N tokenleak=N detail7=N" (nothing if the server keeps no log)
requests() {
    server_requests | tail -n "+$1" | TOKEN=$TOKEN WATCHED=$WATCHED_JOB "$IT_PYTHON" -c '
import json, os, sys, urllib.parse
tok = os.environ["TOKEN"]
n = {"api": 0, "authless": 0, "refused": 0, "tokenleak": 0, "detail7": 0}
lines = sys.stdin.read().splitlines()
for line in lines:
    r = json.loads(line)
    p = r["path"] + ("?" + r["query"] if r.get("query") else "")
    if tok in p or urllib.parse.quote(tok, safe="") in p or tok in urllib.parse.unquote(p):
        n["tokenleak"] += 1
    if p.startswith("/v1/"):
        n["api"] += 1
        n["authless"] += not r["authorization"]
        n["refused"] += r["authorized"] is False
        n["detail7"] += p == "/v1/jobs/" + os.environ["WATCHED"]
if lines:
    print(" ".join("%s=%d" % kv for kv in n.items()))'
}
req_count() { server_requests | wc -l; }
field() { [[ " $2" =~ \ $1=([0-9]+) ]] && printf '%s\n' "${BASH_REMATCH[1]}"; }

# ---- a good token in the fragment: the jobs, live --------------------------------
from=$(($(req_count) + 1))
browse shown "${BASE_URL}#token=$TOKEN"
final_args=()
for j in "${FINAL_JOBS[@]}"; do final_args+=(--final "$j"); done
out=$("$IT_PYTHON" "$IT_LIBDIR/pagecheck.py" shown "$IT_DIR/shown.html" --base "$BASE_URL" \
    --token-file "$TOKEN_FILE" "${final_args[@]}" 2>&1) || it_fail "good token: $out"
printf '%s\n' "$out" | sed 's/^/    /' >&2
cp "$IT_DIR/shown.png" "$ARTEFACTS/status-page.png"
it_log "screenshot: $ARTEFACTS/status-page.png"
r=$(requests "$from")
if [[ -n $r ]]; then
    it_log "requests: $r"
    [[ $(field tokenleak "$r") == 0 ]] || it_fail "the token appeared in a request's URL: $r"
    [[ $(field authless "$r") == 0 ]] || it_fail "an API request came without Authorization: $r"
    [[ $(field refused "$r") == 0 ]] || it_fail "an API request was refused: $r"
    # the page kept polling the running job (5 fetches at least)
    (($(field detail7 "$r") >= 5)) || it_fail "the page did not keep polling: $r"
fi

# ---- the filter, from the fragment: only failed and partial accounts visible -----
# (jobs that finished before the page came are shown closed: the running ones count)
browse filtered "${BASE_URL}#show=problems&token=$TOKEN"
out=$("$IT_PYTHON" "$IT_LIBDIR/pagecheck.py" shown "$IT_DIR/filtered.html" --base "$BASE_URL" \
    --token-file "$TOKEN_FILE" --show problems 2>&1) ||
    it_fail "filtered: $out"
printf '%s\n' "$out" | sed 's/^/    /' >&2

# ---- the watched job ended: shown finished, exactly as the API says --------------
wait_watched_job
browse ended "${BASE_URL}#token=$TOKEN"
final_args=()
for j in "${FINAL_JOBS[@]}"; do final_args+=(--final "$j"); done
out=$("$IT_PYTHON" "$IT_LIBDIR/pagecheck.py" shown "$IT_DIR/ended.html" --base "$BASE_URL" \
    --token-file "$TOKEN_FILE" "${final_args[@]}" 2>&1) || it_fail "ended: $out"
printf '%s\n' "$out" | sed 's/^/    /' >&2
cp "$IT_DIR/ended.png" "$ARTEFACTS/status-page-ended.png"

# ---- a wrong token: the form, with the 401, and no more requests -----------------
from=$(($(req_count) + 1))
browse refused "${BASE_URL}#token=wrong-$TOKEN"
out=$("$IT_PYTHON" "$IT_LIBDIR/pagecheck.py" refused "$IT_DIR/refused.html" 2>&1) ||
    it_fail "wrong token: $out"
printf '%s\n' "$out" | sed 's/^/    /' >&2
cp "$IT_DIR/refused.png" "$ARTEFACTS/status-page-401.png"
r=$(requests "$from")
if [[ -n $r ]]; then
    it_log "requests: $r"
    [[ $(field tokenleak "$r") == 0 ]] || it_fail "the token appeared in a request's URL: $r"
    [[ $(field api "$r") == 1 && $(field refused "$r") == 1 ]] ||
        it_fail "a refused token should make exactly one API request, refused: $r"
fi

# ---- no token: the form, and not one API request ---------------------------------
from=$(($(req_count) + 1))
browse notoken "$BASE_URL"
out=$("$IT_PYTHON" "$IT_LIBDIR/pagecheck.py" notoken "$IT_DIR/notoken.html" 2>&1) ||
    it_fail "no token: $out"
printf '%s\n' "$out" | sed 's/^/    /' >&2
r=$(requests "$from")
if [[ -n $r ]]; then
    [[ $(field api "$r") == 0 ]] || it_fail "API requests with no token: $r"
fi

it_pass "screenshots in $ARTEFACTS"
