#!/bin/bash
# tests/integration/selftest_cyrus.sh: checks the Cyrus harness (cyrus.sh) and imaptool.py
# against real Cyrus IMAP 3.6 instances, next to a Dovecot of lib.sh.  No trasloco binary
# involved.  Exit 0 pass, 1 fail, 77 skip (Cyrus not installed: tests/deps.sh installs it).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/cyrus.sh"

it_init selftest-cyrus

U1=user1@example.test
U2=user2@example.test
# a password with a space, a quote, a comma and a colon (the space percent-encoded)
export PW1='p@ss w"o,r:d' PW2=pw-user2 BAD_PW=nope
USERS="$U1:p@ss%20w\"o,r:d $U2:pw-user2"
tool() { it_imaptool "$@"; }
expect_line() {
    grep -Eq -- "$2" <<<"$1" || it_fail "no line matching /$2/ in:
$1"
}

it_dovecot_start src USERS="$USERS"
it_cyrus_start dot USERS="$USERS" ADMIN="boss:boss-pw" QUOTA_KB=100
it_cyrus_start slash USERS="$USERS" SEP=/ ALTNS=yes SET=munge8bit:no CERT=wrong
[[ $DOT_SEP == . && $SLASH_SEP == / && $DOT_ADMIN == boss ]] || it_fail "exported SEP/ADMIN"
[[ $(head -n 1 "$DOT_ADMIN_PWFILE") == boss-pw ]] || it_fail "admin password file"
# listening on 127.0.0.1 only: the same port on 127.0.0.2 (loopback too) refuses
for p in "$DOT_IMAP_PORT" "$DOT_IMAPS_PORT"; do
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || it_fail "nothing on 127.0.0.1:$p"
    ! (exec 3<>"/dev/tcp/127.0.0.2/$p") 2>/dev/null || it_fail "port $p not 127.0.0.1 only"
done

# --- logins: LOGIN and AUTHENTICATE PLAIN, plain, STARTTLS and implicit TLS
tls=(--ca "$IT_CA" --tls-name "$IT_TLS_NAME")
for mode in "--port $DOT_IMAP_PORT --tls none" "--port $DOT_IMAP_PORT --tls starttls" \
    "--port $DOT_IMAPS_PORT --tls implicit"; do
    for auth in login plain; do
        # shellcheck disable=SC2086 # $mode is a list of options
        out=$(tool login $mode "${tls[@]}" --user "$U1" --password-env PW1 --auth "$auth") ||
            it_fail "login $mode --auth $auth: $out"
    done
done
expect_line "$out" "caps=.*UIDPLUS"
expect_line "$out" "namespace: prefix='INBOX\\.' separator='\\.'"
rc=0
tool login --port "$DOT_IMAP_PORT" --user "$U1" --password-env BAD_PW >/dev/null 2>&1 || rc=$?
((rc == 3)) || it_fail "wrong password: exit $rc, expected 3"
# CERT=wrong: refused as mail.test, accepted as wrong.test
rc=0
tool login --port "$SLASH_IMAPS_PORT" --tls implicit "${tls[@]}" --user "$U1" \
    --password-env PW1 >/dev/null 2>&1 || rc=$?
((rc == 3)) || it_fail "wrong certificate accepted (exit $rc)"
out=$(tool login --port "$SLASH_IMAPS_PORT" --tls implicit --ca "$IT_CA" \
    --tls-name "$IT_WRONG_NAME" --user "$U2" --password-env PW2) || it_fail "slash login: $out"
expect_line "$out" "namespace: prefix='' separator='/'"

# --- the admin: SASL PLAIN with authzid (trasloco's --dst-admin), quota on every INBOX
export ADMIN_PW=boss-pw
tool append --port "$DOT_IMAP_PORT" --user boss --auth plain --authzid "$U2" \
    --password-env ADMIN_PW --folder INBOX --count 2 --seed 6 >/dev/null ||
    it_fail "append via SASL PLAIN authzid"
[[ $(tool count --port "$DOT_IMAP_PORT" --user "$U2" --password-env PW2 --folder INBOX) == 2 ]] ||
    it_fail "admin appends did not land in $U2's INBOX"
rc=0
err=$(tool append --port "$DOT_IMAP_PORT" --user "$U1" --password-env PW1 --folder INBOX \
    --count 1 --seed 1 --size-kb 200 2>&1) || rc=$?
if ((rc != 1)) || [[ $err != *"Over quota"* ]]; then
    it_fail "QUOTA_KB=100: a 200 KB APPEND: exit $rc: $err"
fi

# --- imaptool: populate, list, compare against Dovecot in both layouts
d=(--port "$DOT_IMAPS_PORT" --tls implicit "${tls[@]}" --user "$U1" --password-env PW1)
s=(--port "$SLASH_IMAP_PORT" --user "$U1" --password-env PW1)
tool populate --port "$SRC_IMAP_PORT" --user "$U1" --password-env PW1 --seed 3 \
    --profile small >/dev/null || it_fail "populate src"
tool populate "${s[@]}" --seed 3 --profile small >/dev/null || it_fail "populate slash"
list=$(tool list "${s[@]}") || it_fail "list slash"
expect_line "$list" $'^Località\traw=Localit&AOA-\tdelimiter=/\t.*subscribed=yes'
expect_line "$list" $'^Clienti/Rossi & Figli\traw=Clienti/Rossi &- Figli\t'
# munge8bit: no stores the raw UTF-8 headers as they are: identical to Dovecot's copy
out=$(tool compare --port "$SRC_IMAP_PORT" --user "$U1" --password-env PW1 \
    --dst-port "$SLASH_IMAP_PORT" --check-subscriptions) || it_fail "src vs slash: $out"
# default munge8bit: the messages with raw 8-bit header bytes differ (X for each byte)
tool populate "${d[@]}" --seed 3 --profile small >/dev/null || it_fail "populate dot"
list=$(tool list "${d[@]}") || it_fail "list dot"
expect_line "$list" $'^Archive/2023\traw=INBOX\\.Archive\\.2023\tdelimiter=\\.\t'
rc=0
out=$(tool compare --port "$SRC_IMAP_PORT" --user "$U1" --password-env PW1 \
    --dst-port "$DOT_IMAPS_PORT" --dst-tls implicit --dst-ca "$IT_CA" \
    --dst-tls-name "$IT_TLS_NAME" -v) || rc=$?
((rc == 1)) || it_fail "munge8bit: compare found no difference: $out"
expect_line "$out" "^compare: folders=8 messages=20 missing=([1-9]) extra=\\1 flags=0 dates=0 "
expect_line "$out" "extra x1: .*Subject: .*XX"
# the mutating subcommands
tool append "${d[@]}" --folder New/Sub --count 3 --seed 4 >/dev/null || it_fail "append"
tool setflags "${d[@]}" --folder New/Sub --count 2 --seed 4 >/dev/null || it_fail "setflags"
tool expunge "${d[@]}" --folder New/Sub --count 1 --seed 4 >/dev/null || it_fail "expunge"
tool rename-folder "${d[@]}" New/Sub New/Sub2 >/dev/null || it_fail "rename-folder"
[[ $(tool count "${d[@]}" --folder New/Sub2) == 2 ]] || it_fail "count after expunge"
tool delete-folder "${d[@]}" New/Sub2 >/dev/null || it_fail "delete-folder"

# --- the Cyrus refusal the lead's item 1 is about
rc=0
err=$(tool append "${d[@]}" --folder '%percent' --count 1 --seed 1 2>&1) || rc=$?
if ((rc != 1)) || [[ $err != *"Invalid mailbox name"* ]]; then
    it_fail "CREATE %percent: exit $rc: $err"
fi

# --- restart keeps mail; stop leaves no process of the instance
n=$(tool count "${d[@]}" --folder INBOX)
it_cyrus_restart dot
[[ $(tool count "${d[@]}" --folder INBOX) == "$n" ]] || it_fail "mail lost over a restart"
it_cyrus_stop dot
! it_cyrus_running dot || it_fail "still running after it_cyrus_stop"
[[ -z $(_it_cyrus_all_pids dot) ]] || it_fail "processes left: $(_it_cyrus_all_pids dot)"
it_cyrus_start dot USERS="$USERS"
[[ $(tool count --port "$DOT_IMAP_PORT" --user "$U1" --password-env PW1 --folder INBOX) == "$n" ]] ||
    it_fail "mail lost over stop/start"
it_pass
