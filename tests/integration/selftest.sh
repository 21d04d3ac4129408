#!/bin/bash
# tests/integration/selftest.sh: checks the integration harness itself (lib.sh and
# imaptool.py) against real Dovecot instances.  No trasloco binary involved.
# Exit 0 pass, 1 fail, 77 skip (automake).  IT_KEEP=1 keeps the temp dir.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

it_init selftest
start=$SECONDS

# step NAME: log how long the previous step took, then start timing NAME
step_name="start-up"
step_t0=${EPOCHREALTIME/./}
step() {
    local now=${EPOCHREALTIME/./} ms
    ms=$(((now - step_t0) / 1000))
    it_log "$(printf '%-14s %3d.%03d s' "$step_name" $((ms / 1000)) $((ms % 1000)))"
    step_name=$1
    step_t0=$now
}

# A password with a space, a double quote, a comma and a colon: USERS percent-encodes the
# space; the rest goes through as is (see lib.sh).
U1=user1@example.test
U2=user2@example.test
export PW1='p@ss w"o,r:d' PW2=pw-user2 ADMIN_PW=adminpw BAD_PW=nope
USERS="$U1:p@ss%20w\"o,r:d $U2:pw-user2"

it_dovecot_start src USERS="$USERS"
it_dovecot_start dst USERS="$USERS" SPECIAL_USE=yes MASTER="admin:$ADMIN_PW"
it_dovecot_start wrong USERS="$USERS" CERT=wrong
it_dovecot_start courier USERS="$USERS" NS=courier MAX_CONN=2
it_dovecot_start quota USERS="$USERS" QUOTA_MB=1 MAX_MSG_KB=64

# common connection options
tls_src=(--host "$IT_HOST" --port "$SRC_IMAPS_PORT" --tls implicit --ca "$IT_CA"
    --tls-name "$IT_TLS_NAME" --user "$U1" --password-env PW1)
tool() { it_imaptool "$@"; }

# expect_line TEXT REGEX: some line of TEXT matches the extended REGEX
expect_line() {
    grep -Eq -- "$2" <<<"$1" || it_fail "no line matching /$2/ in:
$1"
}

# expect_compare WANT_RC RC WANT OUTPUT: compare exited RC (must be WANT_RC) and its
# summary line (the last one) starts with "compare: WANT"
expect_compare() {
    local want_rc=$1 rc=$2 want=$3 out=$4
    [[ $rc == "$want_rc" && $(tail -n 1 <<<"$out") == "compare: $want"* ]] ||
        it_fail "compare exited $rc (want $want_rc), summary should start 'compare: $want':
$out"
}

# --- populate the source over implicit TLS, verifying mail.test while dialling 127.0.0.1
step populate
out=$(tool populate "${tls_src[@]}" --seed 1 --profile standard) || it_fail "populate: $out"
it_log "$out"
[[ $out =~ messages=([0-9]+)\ bytes=([0-9]+) ]] || it_fail "populate summary: $out"
nmsg=${BASH_REMATCH[1]}
nbytes=${BASH_REMATCH[2]}
((nmsg >= 150 && nmsg <= 300)) || it_fail "standard profile has $nmsg messages"
((nbytes >= 10000000 && nbytes <= 30000000)) || it_fail "standard profile has $nbytes bytes"

list=$(tool list "${tls_src[@]}") || it_fail "list failed"
expect_line "$list" $'^Località\traw=Localit&AOA-\tdelimiter=/\t.*\tsubscribed=yes\tmessages=[1-9]'
expect_line "$list" $'^Clienti/Rossi & Figli\traw=Clienti/Rossi &- Figli\t'
expect_line "$list" $'^日本語\traw=&ZeVnLIqe-\t'
expect_line "$list" $'^Ελληνικά\traw=&A5UDuwO7A7cDvQO5A7oDrA-\t.*subscribed=no'
expect_line "$list" $'^Posta inviata\t.*subscribed=no\tmessages=[1-9]'
expect_line "$list" $'^Progetti/2024/Q1\t.*messages=[1-9]'
expect_line "$list" $'^Progetti/2024\t.*\\\\Noselect'
expect_line "$list" $'^Archive/2023\t.*messages=[1-9]'
expect_line "$list" $'^Vuota\t.*messages=0$'
expect_line "$list" $'^Junk\t.*subscribed=no'
expect_line "$list" $'^INBOX\t.*subscribed=yes'

# --- compare: source against itself (destination side over STARTTLS) must be identical
step compare-same
rc=0
out=$(tool compare "${tls_src[@]}" --dst-port "$SRC_IMAP_PORT" --dst-tls starttls \
    --check-subscriptions) || rc=$?
expect_compare 0 "$rc" "folders=15 messages=$nmsg missing=0 extra=0 flags=0 dates=0 \
missing_folders=0 extra_folders=0 subscriptions=0 result=identical" "$out"
it_log "$out"

# --- compare: source against an empty destination must fail
step compare-empty
rc=0
out=$(tool compare "${tls_src[@]}" --dst-port "$DST_IMAP_PORT" --dst-tls none) || rc=$?
expect_compare 1 "$rc" "folders=15 messages=$nmsg missing=$nmsg extra=0 flags=0 dates=0 \
missing_folders=14 extra_folders=0 result=DIFFERENT" "$out"

# --- certificate checks: wrong name refused, right name accepted, IP alone refused
step certificates
rc=0
err=$(tool login --port "$WRONG_IMAPS_PORT" --tls implicit --ca "$IT_CA" \
    --tls-name "$IT_TLS_NAME" --user "$U1" --password-env PW1 2>&1) || rc=$?
((rc == 3)) || it_fail "wrong-name certificate: exit $rc, expected 3: $err"
[[ $err == *"certificate verification failed"*"mismatch"* ]] || it_fail "wrong cert: $err"
rc=0
err=$(tool login --port "$WRONG_IMAP_PORT" --tls starttls --ca "$IT_CA" \
    --tls-name "$IT_TLS_NAME" --user "$U1" --password-env PW1 2>&1) || rc=$?
((rc == 3)) || it_fail "wrong-name certificate over STARTTLS: exit $rc: $err"
tool login --port "$WRONG_IMAPS_PORT" --tls implicit --ca "$IT_CA" --tls-name "$IT_WRONG_NAME" \
    --user "$U1" --password-env PW1 >/dev/null || it_fail "wrong.test cert under its own name"
rc=0
err=$(tool login --port "$SRC_IMAPS_PORT" --tls implicit --ca "$IT_CA" \
    --user "$U1" --password-env PW1 2>&1) || rc=$?
((rc == 3)) || it_fail "certificate accepted for bare 127.0.0.1 (IP SAN?): exit $rc"
rc=0
err=$(tool login --port "$SRC_IMAPS_PORT" --tls implicit --tls-name "$IT_TLS_NAME" \
    --user "$U1" --password-env PW1 2>&1) || rc=$?
((rc == 3)) || it_fail "throwaway CA trusted without --ca: exit $rc"

# --- master user on dst: LOGIN user*admin and SASL PLAIN authzid=user authcid=admin
step master-user
dst=(--port "$DST_IMAP_PORT")
tool login "${dst[@]}" --user "$U1*admin" --password-env ADMIN_PW >/dev/null ||
    it_fail "master LOGIN user*admin"
tool append "${dst[@]}" --user "$U1*admin" --password-env ADMIN_PW --folder INBOX \
    --count 1 --seed 5 >/dev/null || it_fail "append as master user"
tool append "${dst[@]}" --user admin --auth plain --authzid "$U1" --password-env ADMIN_PW \
    --folder INBOX --count 2 --seed 6 >/dev/null || it_fail "append via SASL PLAIN authzid"
n=$(tool count "${dst[@]}" --user "$U1" --password-env PW1 --folder INBOX)
[[ $n == 3 ]] || it_fail "master-user appends did not land in $U1's INBOX (count $n)"
rc=0
tool login "${dst[@]}" --user "$U1*admin" --password-env BAD_PW >/dev/null 2>&1 || rc=$?
((rc == 3)) || it_fail "master login with a wrong password: exit $rc"
list=$(tool list "${dst[@]}" --user "$U2" --password-env PW2)
expect_line "$list" $'^INBOX\t'

# --- courier layout (INBOX. prefix, '.' separator) against the same corpus on dst
step courier
tool populate --port "$COURIER_IMAP_PORT" --user "$U1" --password-env PW1 \
    --seed 7 --profile small >/dev/null || it_fail "populate courier"
list=$(tool list --port "$COURIER_IMAP_PORT" --user "$U1" --password-env PW1)
expect_line "$list" $'^Località\traw=INBOX\\.Localit&AOA-\tdelimiter=\\.\t'
expect_line "$list" $'^Archive/2023\traw=INBOX\\.Archive\\.2023\t'
expect_line "$list" $'^Clienti/Rossi & Figli\traw=INBOX\\.Clienti\\.Rossi &- Figli\t'
expect_line "$list" $'^INBOX\traw=INBOX\t'
tool populate "${dst[@]}" --user "$U2" --password-env PW2 --seed 7 --profile small \
    >/dev/null || it_fail "populate dst user2"
list=$(tool list "${dst[@]}" --user "$U2" --password-env PW2)
expect_line "$list" $'^Sent\t.*\\\\Sent'   # SPECIAL_USE=yes
out=$(tool compare --port "$COURIER_IMAP_PORT" --user "$U1" --password-env PW1 \
    --dst-port "$DST_IMAP_PORT" --dst-user "$U2" --dst-password-env PW2 \
    --check-subscriptions) || it_fail "courier vs default layout, same corpus: $out"
it_log "courier vs dst: $out"

# --- compare reports exactly what the mutating subcommands did to dst's copy
step mutations
c2d=(--port "$COURIER_IMAP_PORT" --user "$U1" --password-env PW1
    --dst-port "$DST_IMAP_PORT" --dst-user "$U2" --dst-password-env PW2)
d2=("${dst[@]}" --user "$U2" --password-env PW2)
n_loc=$(tool count "${d2[@]}" --folder Località)
tool setflags "${d2[@]}" --folder INBOX --seed 3 --count 2 >/dev/null || it_fail "setflags"
tool expunge "${d2[@]}" --folder Sent --count 1 >/dev/null || it_fail "expunge"
tool append "${d2[@]}" --folder Archive/2023 --count 2 --seed 9 >/dev/null || it_fail "append"
tool rename-folder "${d2[@]}" Località Luoghi >/dev/null || it_fail "rename-folder"
tool delete-folder "${d2[@]}" Vuota >/dev/null || it_fail "delete-folder"
# Località's messages count as missing; Luoghi is an extra folder; Vuota is missing
rc=0
out=$(tool compare "${c2d[@]}" -v) || rc=$?
expect_compare 1 "$rc" "folders=8 messages=20 missing=$((n_loc + 1)) extra=2 flags=2 dates=0 \
missing_folders=2 extra_folders=1 result=DIFFERENT" "$out"
rc=0
out=$(tool compare "${c2d[@]}" --map 'Località=Luoghi') || rc=$?
expect_compare 1 "$rc" "folders=8 messages=20 missing=1 extra=2 flags=2 dates=0 \
missing_folders=1 extra_folders=0 result=DIFFERENT" "$out"

# --- sessions and MAX_CONN (courier has MAX_CONN=2)
step sessions
[[ $(it_sessions src "$U2") == 0 ]] || it_fail "sessions before hold"
# run the tool itself in the background (not the tool() function: $! would be a subshell)
"$IT_PYTHON" "$IMAPTOOL" hold --port "$SRC_IMAP_PORT" --user "$U2" --password-env PW2 \
    --connections 3 --seconds 60 >/dev/null &
hold_pid=$!
it_at_exit "kill $hold_pid 2>/dev/null"
it_wait_sessions src "$U2" 3 || it_fail "it_sessions never saw 3 sessions"
kill "$hold_pid"
wait "$hold_pid" || true
it_wait_sessions src "$U2" 0 || it_fail "sessions did not drop to 0"
rc=0
tool hold --port "$COURIER_IMAP_PORT" --user "$U2" --password-env PW2 --connections 3 \
    --seconds 0 >/dev/null 2>&1 || rc=$?
((rc == 3)) || it_fail "MAX_CONN=2 allowed a third session (exit $rc)"

# --- quota instance: 64 KB per message, 1 MB in all
step quota
q=(--port "$QUOTA_IMAP_PORT" --user "$U1" --password-env PW1)
rc=0
err=$(tool append "${q[@]}" --folder INBOX --count 1 --seed 1 --size-kb 100 2>&1) || rc=$?
((rc == 1)) || it_fail "100 KB message accepted with MAX_MSG_KB=64 (exit $rc)"
[[ $err == *LIMIT* || $err == *"too large"* ]] || it_fail "size refusal: $err"
tool append "${q[@]}" --folder INBOX --count 2 --seed 2 --size-kb 40 >/dev/null ||
    it_fail "40 KB messages refused"
rc=0
err=$(tool append "${q[@]}" --folder INBOX --count 40 --seed 3 --size-kb 50 2>&1) || rc=$?
if ((rc != 1)) || [[ $err != *"uota"* ]]; then
    it_fail "1 MB quota not enforced (exit $rc): $err"
fi

# --- restart keeps config, ports and mail
step restart
it_dovecot_restart src
n=$(tool count "${tls_src[@]}" --folder Vuota)
[[ $n == 0 ]] || it_fail "after restart: Vuota has $n"
n=$(tool count "${tls_src[@]}" --folder 'Clienti/Rossi & Figli')
((n > 0)) || it_fail "after restart: Clienti/Rossi & Figli is empty"
log=$(it_dovecot_log src)
[[ $log == *"Login: user=<$U1>"* ]] || it_fail "src log has no login of $U1"

step end
it_pass "$((SECONDS - start)) s"
