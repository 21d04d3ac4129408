#!/bin/bash
# OAuth2 on both sides (issue 16): Dovecots that check XOAUTH2 and OAUTHBEARER
# tokens with a passdb oauth2 against a token service of the test's own
# (tokensvc.py: short-lived tokens, introspection), and trasloco taking each
# account's tokens from a token command, with a CSV of addresses only.
#  1. three accounts, XOAUTH2 on both sides: exact; the command ran with
#     TRASLOCO_EMAIL/TRASLOCO_USER and without any *PASSWORD*/*SECRET*/*TOKEN*
#     variable of trasloco's own environment; no token in any output or file;
#  2. a long copy (connections dropped every few hundred KB by faultproxy, so
#     sessions are opened again and again) with tokens that die after 2 s
#     while the command claims an hour: every refused token is fetched again,
#     exact, no failed account;
#  3. the same with tokens whose expires_in is true (3 s): fetched ahead of
#     expiry, exact;
#  4. an invalid token: the account fails with the decoded reason, exit 3;
#  5. OAUTHBEARER on both sides: exact; an invalid token told the same way.
#  6. the same CSV of addresses queued (a SQLite queue, `queue submit` of a job
#     file with the token commands) and run by a worker: every account ok and
#     exact, no token in the queue's files.
#  7. a token command that says "try again later" (exit 75) twice for one account:
#     retried after the back-off, that account ok; one that exits 1 for another:
#     that account fails at once with the command's stderr, not retried.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_init oauth
: "${TRASLOCO:?}"

# the token service
"$IT_PYTHON" "$IT_LIBDIR/tokensvc.py" serve --port-file "$IT_DIR/tokensvc.port" \
    --log "$IT_DIR/tokensvc.log" 2>"$IT_DIR/tokensvc.err" &
TOKSVC=$!
it_at_exit 'kill $TOKSVC 2>/dev/null || true'
for _ in $(seq 100); do [[ -s $IT_DIR/tokensvc.port ]] && break; sleep 0.05; done
[[ -s $IT_DIR/tokensvc.port ]] || it_fail "the token service did not start"
URL=http://127.0.0.1:$(cat "$IT_DIR/tokensvc.port")

accounts=(anna@azienda.test bruno@azienda.test carla@azienda.test)
users=""
for i in 0 1 2; do users+="${accounts[$i]}:tools-pw-$i "; done
it_dovecot_start src "USERS=$users" "OAUTH2=$URL/introspect"
it_dovecot_start dst "USERS=$users" "OAUTH2=$URL/introspect"
for i in 0 1 2; do
    IMAP_PASSWORD=tools-pw-$i it_imaptool --port "$SRC_IMAPS_PORT" --tls implicit --ca "$IT_CA" \
        --tls-name "$IT_TLS_NAME" --user "${accounts[$i]}" populate --seed "$((i + 3))" \
        --profile small --messages 40 >/dev/null
done
# trasloco's destination is always this proxy (the state knows a destination by
# its address), faults only while rules are in $IT_DIR/rules.
: > "$IT_DIR/rules"
# every destination connection is cut after 60 KB (a batch of 5 small messages is
# far less), and waits 1 s before its greeting: new sessions all along the copy
"$IT_PYTHON" "$IT_LIBDIR/faultproxy.py" --upstream-port "$DST_IMAPS_PORT" \
    --port-file "$IT_DIR/proxy.port" --raw \
    --control "$IT_DIR/rules" >/dev/null 2>"$IT_DIR/proxy.err" &
PROXY=$!
it_at_exit 'kill $PROXY 2>/dev/null || true'
for _ in $(seq 100); do [[ -s $IT_DIR/proxy.port ]] && break; sleep 0.05; done
PPORT=$(cat "$IT_DIR/proxy.port")
csv=$IT_DIR/accounts.csv
printf 'email\n%s\n%s\n%s\n' "${accounts[@]}" > "$csv"
chmod 600 "$csv"

# The token command: what it was given goes to a file (names of the
# variables, and the two it must have), the token to stdout.
cmd=$IT_DIR/tokcmd.sh
cat > "$cmd" <<EOF
#!/bin/sh
{ echo "email=\$TRASLOCO_EMAIL user=\$TRASLOCO_USER"; env | cut -d= -f1 | sort | tr '\n' ' '; echo; } >> "$IT_DIR/tokcmd.env"
[ -f "$IT_DIR/bogus" ] && grep -qx "\$TRASLOCO_USER" "$IT_DIR/bogus" && { echo not-a-token-from-us; exit 0; }
[ -f "$IT_DIR/permfail" ] && grep -qx "\$TRASLOCO_USER" "$IT_DIR/permfail" && { echo "no consent for this user" >&2; exit 1; }
if [ -f "$IT_DIR/tempfail" ] && grep -qx "\$TRASLOCO_USER" "$IT_DIR/tempfail"; then
    n=\$(cat "$IT_DIR/tempfail.count" 2>/dev/null || echo 0)
    echo \$((n + 1)) > "$IT_DIR/tempfail.count"
    [ "\$n" -lt 2 ] && { echo "token service busy" >&2; exit 75; }
fi
exec "$IT_PYTHON" "$IT_LIBDIR/tokensvc.py" mint --url "$URL" --ttl "\$(cat $IT_DIR/ttl)" \$(cat $IT_DIR/claim)
EOF
chmod 700 "$cmd"
echo 600 > "$IT_DIR/ttl"
: > "$IT_DIR/claim"

N=0
tr_run() {  # MECH CSV [ARGS...]: run the job; RC, OUT
    local mech=$1 file=$2
    shift 2
    N=$((N + 1))
    OUT=$IT_DIR/run.$N
    set +e
    TRASLOCO_SRC_PASSWORD=canary-pw-1 MY_SECRET=canary-pw-2 API_TOKEN=canary-pw-3 \
        "$TRASLOCO" run "$file" \
        --src "$IT_HOST:$SRC_IMAPS_PORT" --src-tls implicit --src-tls-name "$IT_TLS_NAME" \
        --dst "$IT_HOST:$PPORT" --dst-tls implicit --dst-tls-name "$IT_TLS_NAME" \
        --ca-file "$IT_CA" --state "$IT_DIR/state" --timeout 20 --no-progress \
        --src-auth "$mech" --src-token-cmd "$cmd" --dst-auth "$mech" --dst-token-cmd "$cmd" \
        --report "$IT_DIR/report.$N.json" "$@" > "$OUT" 2>&1
    RC=$?
    set -e
    it_log "run $N ($mech $*) -> exit $RC"
    grep -v ' info ' "$OUT" | sed 's/^/    | /' >&2 || true
}

compare_all() {
    local i
    for i in 0 1 2; do
        IMAP_PASSWORD=tools-pw-$i DST_PW=tools-pw-$i it_imaptool --port "$SRC_IMAPS_PORT" \
            --tls implicit --ca "$IT_CA" --tls-name "$IT_TLS_NAME" --user "${accounts[$i]}" \
            compare --dst-port "${1:-$DST_IMAPS_PORT}" --dst-tls implicit --dst-ca "$IT_CA" \
            --dst-tls-name "$IT_TLS_NAME" --dst-user "${accounts[$i]}" > "$IT_DIR/cmp" 2>&1 ||
            { cat "$IT_DIR/cmp" >&2; it_fail "${accounts[$i]} differs: $2"; }
    done
}

no_token_anywhere() {
    local t
    # every token the service minted appears in its answers only: look for the prefix
    if grep -rl 'tok-' "$IT_DIR"/state "$IT_DIR"/run.* "$IT_DIR"/report.* 2>/dev/null; then
        it_fail "a token appears in trasloco's output, report or state"
    fi
    grep -q 'canary-pw' "$IT_DIR/tokcmd.env" && it_fail "a secret value reached the token command"
    for t in TRASLOCO_SRC_PASSWORD MY_SECRET API_TOKEN; do
        grep -qw "$t" "$IT_DIR/tokcmd.env" && it_fail "the token command got \$$t"
    done
    return 0
}

# ---- 1. three accounts, XOAUTH2 both sides, addresses only ----
tr_run xoauth2 "$csv"
[[ $RC == 0 ]] || it_fail "the XOAUTH2 job exited $RC"
grep -q '3 ok, 0 partial, 0 failed' "$OUT" || it_fail "not every account ok"
compare_all "" "after the XOAUTH2 job"
grep -q "email=bruno@azienda.test user=bruno@azienda.test" "$IT_DIR/tokcmd.env" ||
    it_fail "the token command did not get TRASLOCO_EMAIL/TRASLOCO_USER"
grep -q "introspect ok" "$IT_DIR/tokensvc.log" || it_fail "Dovecot never asked the token service"
no_token_anywhere
# one token per account and side for the whole job
mints=$(grep -c '^mint ' "$IT_DIR/tokensvc.log")
it_log "1: $mints token(s) minted for 3 accounts x 2 sides"
((mints == 6)) || it_fail "expected 6 tokens (one per account and side), minted $mints"

# ---- 2. tokens die after 2 s but are said to live an hour ----
for i in 0 1 2; do
    IMAP_PASSWORD=tools-pw-$i it_imaptool --port "$SRC_IMAPS_PORT" --tls implicit --ca "$IT_CA" \
        --tls-name "$IT_TLS_NAME" --user "${accounts[$i]}" populate --seed "$((i + 20))" \
        --profile small --messages 300 >/dev/null
done
# every destination connection is cut after 60 KB (a batch of 5 small messages is
# far less), and waits 1 s before its greeting: new sessions all along the copy
printf '%s\n' 'on=c2s-bytes,n=60000,do=drop,times=always' 'on=connect,do=stall,secs=1,times=always' \
    > "$IT_DIR/rules.tmp"
mv "$IT_DIR/rules.tmp" "$IT_DIR/rules"
sleep 1
echo 2 > "$IT_DIR/ttl"
echo "--claim 3600" > "$IT_DIR/claim"
: > "$IT_DIR/tokensvc.log"
tr_run xoauth2 "$csv" --retries 100 --batch-count 5 \
    --parallel-accounts 3
[[ $RC == 0 ]] || it_fail "the job with expiring tokens exited $RC"
grep -q '3 ok, 0 partial, 0 failed' "$OUT" || it_fail "not every account ok with expiring tokens"
compare_all "" "after the job with expiring tokens"
expired=$(grep -c 'introspect expired' "$IT_DIR/tokensvc.log" || true)
mints=$(grep -c '^mint ' "$IT_DIR/tokensvc.log")
it_log "2: $mints tokens minted, $expired logins with an expired token refused and retried"
((expired > 0)) || it_fail "no token expired during the copy: the test proves nothing"
((mints > 6)) || it_fail "no token was fetched again"
no_token_anywhere

# ---- 3. tokens whose expires_in is true: fetched ahead of expiry ----
for i in 0 1 2; do
    IMAP_PASSWORD=tools-pw-$i it_imaptool --port "$SRC_IMAPS_PORT" --tls implicit --ca "$IT_CA" \
        --tls-name "$IT_TLS_NAME" --user "${accounts[$i]}" populate --seed "$((i + 40))" \
        --profile small --messages 300 >/dev/null
done
echo 3 > "$IT_DIR/ttl"
: > "$IT_DIR/claim"
: > "$IT_DIR/tokensvc.log"
tr_run xoauth2 "$csv" --retries 100 --batch-count 5 \
    --parallel-accounts 3
[[ $RC == 0 ]] || it_fail "the job with short-lived tokens exited $RC"
grep -q '3 ok, 0 partial, 0 failed' "$OUT" || it_fail "not every account ok with short tokens"
compare_all "" "after the job with short-lived tokens"
expired=$(grep -c 'introspect expired' "$IT_DIR/tokensvc.log" || true)
mints=$(grep -c '^mint ' "$IT_DIR/tokensvc.log")
it_log "3: $mints tokens minted, $expired refused as expired (ahead-of-expiry refresh)"
((mints > 6)) || it_fail "no token was fetched ahead of its expiry"
: > "$IT_DIR/rules.tmp"
mv "$IT_DIR/rules.tmp" "$IT_DIR/rules"
sleep 1

# ---- 4. an invalid token fails that account, with the reason ----
echo bruno@azienda.test > "$IT_DIR/bogus"
echo 600 > "$IT_DIR/ttl"
N=$((N + 1))
OUT=$IT_DIR/run.$N
set +e
"$TRASLOCO" migrate --user bruno@azienda.test \
    --src "$IT_HOST:$SRC_IMAPS_PORT" --src-tls implicit --src-tls-name "$IT_TLS_NAME" \
    --dst "$IT_HOST:$PPORT" --dst-tls implicit --dst-tls-name "$IT_TLS_NAME" \
    --ca-file "$IT_CA" --state "$IT_DIR/state" --timeout 20 --no-progress \
    --src-auth xoauth2 --src-token-cmd "$cmd" --dst-auth xoauth2 --dst-token-cmd "$cmd" \
    > "$OUT" 2>&1 </dev/null
RC=$?
set -e
sed 's/^/    | /' "$OUT" >&2
[[ $RC == 3 ]] || it_fail "an invalid token: exit $RC, not 3 (authentication)"
grep -q 'the token is invalid or has expired' "$OUT" ||
    it_fail "the server's refusal was not decoded"
tr_run xoauth2 "$csv"
[[ $RC != 0 ]] || it_fail "the job with one invalid token exited 0"
grep -q '2 ok, 0 partial, 1 failed' "$OUT" || it_fail "not exactly bruno failed"
grep -q 'bruno@azienda.test.*token is invalid' "$OUT" || it_fail "bruno's reason not told"
rm -f "$IT_DIR/bogus"

# ---- 5. OAUTHBEARER ----
for i in 0 1 2; do
    IMAP_PASSWORD=tools-pw-$i it_imaptool --port "$SRC_IMAPS_PORT" --tls implicit --ca "$IT_CA" \
        --tls-name "$IT_TLS_NAME" --user "${accounts[$i]}" populate --seed "$((i + 60))" \
        --profile small --messages 20 >/dev/null
done
: > "$IT_DIR/tokensvc.log"
tr_run oauthbearer "$csv"
[[ $RC == 0 ]] || it_fail "the OAUTHBEARER job exited $RC"
grep -q '3 ok, 0 partial, 0 failed' "$OUT" || it_fail "not every account ok with OAUTHBEARER"
compare_all "" "after the OAUTHBEARER job"
grep -q 'introspect ok' "$IT_DIR/tokensvc.log" || it_fail "OAUTHBEARER never reached the service"
# an invalid token with OAUTHBEARER: bruno fails, with the reason
echo bruno@azienda.test > "$IT_DIR/bogus"
tr_run oauthbearer "$csv"
grep -q '2 ok, 0 partial, 1 failed' "$OUT" || it_fail "OAUTHBEARER: not exactly bruno failed"
grep -q 'bruno@azienda.test.*token is invalid.*AUTHENTICATE OAUTHBEARER' "$OUT" ||
    it_fail "OAUTHBEARER: bruno's reason not told"
rm -f "$IT_DIR/bogus"
no_token_anywhere

# ---- 6. queued: a job of addresses only, run by a worker ----
for i in 0 1 2; do
    IMAP_PASSWORD=tools-pw-$i it_imaptool --port "$SRC_IMAPS_PORT" --tls implicit --ca "$IT_CA" \
        --tls-name "$IT_TLS_NAME" --user "${accounts[$i]}" populate --seed "$((i + 80))" \
        --profile small --messages 20 >/dev/null
done
cat > "$IT_DIR/oauth.job" <<EOF
src = $IT_HOST:$SRC_IMAPS_PORT
src-tls = implicit
src-tls-name = $IT_TLS_NAME
dst = $IT_HOST:$PPORT
dst-tls = implicit
dst-tls-name = $IT_TLS_NAME
ca-file = $IT_CA
accounts = accounts.csv
src-auth = xoauth2
src-token-cmd = $cmd
dst-auth = xoauth2
dst-token-cmd = $cmd
timeout = 20
EOF
Q=$IT_DIR/queue
"$TRASLOCO" queue init "$Q" --key-file "$IT_DIR/queue.key" > "$IT_DIR/qinit.out" 2>&1 ||
    it_fail "queue init: $(cat "$IT_DIR/qinit.out")"
"$TRASLOCO" queue submit "$Q" "$IT_DIR/oauth.job" --key-file "$IT_DIR/queue.key" \
    > "$IT_DIR/qsubmit.out" 2>&1 ||
    it_fail "queue submit of a CSV without passwords: $(cat "$IT_DIR/qsubmit.out")"
grep -q '3 account(s) queued' "$IT_DIR/qsubmit.out" ||
    it_fail "not 3 accounts queued: $(cat "$IT_DIR/qsubmit.out")"
: > "$IT_DIR/tokensvc.log"
rc=0
TRASLOCO_SRC_PASSWORD=canary-pw-1 MY_SECRET=canary-pw-2 API_TOKEN=canary-pw-3 \
    "$TRASLOCO" worker "$Q" --key-file "$IT_DIR/queue.key" --drain > "$IT_DIR/run.worker" 2>&1 ||
    rc=$?
grep -v ' info ' "$IT_DIR/run.worker" | sed 's/^/    | /' >&2 || true
((rc == 0)) || it_fail "the worker exited $rc"
"$TRASLOCO" queue status "$Q" oauth --json > "$IT_DIR/qstatus.json" 2>&1 ||
    it_fail "queue status: $(cat "$IT_DIR/qstatus.json")"
"$IT_PYTHON" - "$IT_DIR/qstatus.json" <<'PY' ||
import json, sys
s = json.load(open(sys.argv[1]))
j = [j for j in s["jobs"] if j["name"] == "oauth"][0]
assert j["accounts"]["ok"] == 3, j["accounts"]
PY
    it_fail "the queued OAuth2 job is not all ok: $(cat "$IT_DIR/qstatus.json")"
compare_all "" "after the queued job"
it_log "6: 3 queued accounts of a CSV without passwords ok and exact by a worker, $(grep -c '^mint ' "$IT_DIR/tokensvc.log") token(s) minted"
grep -q 'introspect ok' "$IT_DIR/tokensvc.log" || it_fail "the worker's logins never reached the service"
if grep -rl 'tok-' "$Q" "$IT_DIR/run.worker" 2>/dev/null; then
    it_fail "a token appears in the queue or the worker's output"
fi
no_token_anywhere

# ---- 7. a command failing for now is retried; one failing for good is not ----
echo carla@azienda.test > "$IT_DIR/tempfail"
echo bruno@azienda.test > "$IT_DIR/permfail"
tr_run xoauth2 "$csv"
rm -f "$IT_DIR/tempfail" "$IT_DIR/permfail"
[[ $RC == 1 ]] || it_fail "a token command failing for good: exit $RC, not 1 (an account failed)"
grep -q '2 ok, 0 partial, 1 failed' "$OUT" || it_fail "not exactly bruno failed"
grep -q 'bruno@azienda.test.*token command exited with 1: no consent for this user' "$OUT" ||
    it_fail "bruno's command's answer not told"
grep 'retrying' "$OUT" | grep -q 'bruno' && it_fail "a token command's final answer was retried"
grep -q 'carla@azienda.test.*exited with 75 (try again later).*retrying' "$OUT" ||
    it_fail "carla's 'try again later' was not retried"
[[ $(cat "$IT_DIR/tempfail.count") -ge 3 ]] || it_fail "carla's command ran $(cat "$IT_DIR/tempfail.count") time(s)"
it_log "7: a command exiting 75 retried ($(cat "$IT_DIR/tempfail.count") runs), one exiting 1 final"
it_pass
