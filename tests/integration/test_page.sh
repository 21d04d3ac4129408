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
# Everything that knows which server runs is in this block.  For now it is
# tests/integration/apistub.py (canned jobs: see its docstring).  To test the
# real `trasloco serve` instead:
#   - server_start: start
#       "$TRASLOCO" serve --listen "$IT_HOST:$PORT" --token-file "$TOKEN_FILE" \
#           --state "$IT_DIR/state" >"$IT_DIR/server.log" 2>&1 &
#     then submit a job (POST "${BASE_URL}v1/jobs") against Dovecots started
#     with it_dovecot_start, big enough to be still running when the browser
#     loads the page;
#   - FINAL_JOBS: the ids of jobs sure to be finished before the browser
#     starts (or none: the others are checked without being exact);
#   - server_requests: print nothing (the checks of the request log are then
#     skipped), or the server's access log as JSON lines
#     {"method", "path", "authorization": bool, "authorized": bool|null}.
FINAL_JOBS=(7)   # apistub's job 7 finishes after the page's 5th fetch of it
server_start() {
    : >"$IT_DIR/requests.log"
    "$IT_PYTHON" "$IT_LIBDIR/apistub.py" --port "$PORT" --token-file "$TOKEN_FILE" \
        --page-dir "$SRCDIR/page" --log "$IT_DIR/requests.log" \
        </dev/null >"$IT_DIR/server.log" 2>&1 &
    SERVER_PID=$!
}
server_requests() { cat "$IT_DIR/requests.log"; }
# ---- end of the server block -------------------------------------------------

server_start
it_at_exit 'kill "$SERVER_PID" 2>/dev/null; wait "$SERVER_PID" 2>/dev/null'
for ((i = 0; ; i++)); do
    (exec 3<>"/dev/tcp/$IT_HOST/$PORT") 2>/dev/null && break
    kill -0 "$SERVER_PID" 2>/dev/null || it_fail "the server exited: $(cat "$IT_DIR/server.log")"
    ((i < 200)) || it_fail "nothing listens on $IT_HOST:$PORT after 10 s"
    sleep 0.05
done

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
    server_requests | tail -n "+$1" | TOKEN=$TOKEN "$IT_PYTHON" -c '
import json, os, sys, urllib.parse
tok = os.environ["TOKEN"]
n = {"api": 0, "authless": 0, "refused": 0, "tokenleak": 0, "detail7": 0}
lines = sys.stdin.read().splitlines()
for line in lines:
    r = json.loads(line)
    p = r["path"]
    if tok in p or urllib.parse.quote(tok, safe="") in p or tok in urllib.parse.unquote(p):
        n["tokenleak"] += 1
    if p.startswith("/v1/"):
        n["api"] += 1
        n["authless"] += not r["authorization"]
        n["refused"] += r["authorized"] is False
        n["detail7"] += p == "/v1/jobs/7"
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
    # the page kept polling: job 7 went through all its steps (5 fetches at least)
    (($(field detail7 "$r") >= 5)) || it_fail "the page did not keep polling: $r"
fi

# ---- the filter, from the fragment: only failed and partial accounts visible -----
# (jobs that finished before the page came are shown closed: the running ones count)
browse filtered "${BASE_URL}#show=problems&token=$TOKEN"
out=$("$IT_PYTHON" "$IT_LIBDIR/pagecheck.py" shown "$IT_DIR/filtered.html" --base "$BASE_URL" \
    --token-file "$TOKEN_FILE" --show problems 2>&1) ||
    it_fail "filtered: $out"
printf '%s\n' "$out" | sed 's/^/    /' >&2

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
