#!/bin/bash
# A destination that stores messages altered (issue 11, item 2): without a
# usable ledger (a new state directory, as after a lost state or a changed
# UIDVALIDITY) and when settling an APPEND whose reply never came, trasloco
# must recognise the copies it made and copy nothing twice.
#   source:      fakeimap.py "bare-lf": 5 messages whose lines end in bare LF,
#                one with 8-bit bytes in its Subject
#   destination: a real Dovecot (it serves every stored LF as CR LF) behind
#                alterproxy.py, which stores every APPEND with its header
#                section's 8-bit bytes made 'X' (Cyrus' munge8bit) and a
#                Received field added
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_init altered-dst
. "$IT_LIBDIR/common.sh"

enc=$(printf '%s' "$PW" | sed 's/%/%25/g; s/ /%20/g')
it_dovecot_start dst "USERS=$U:$enc u2@azienda.test:$enc"
umask 077
printf '%s\n' "$PW" > "$IT_DIR/pw"
export IMAP_PASSWORD=$PW

FAKEIMAP_PASSWORD=$PW "$IT_PYTHON" "$IT_LIBDIR/fakeimap.py" --scenario bare-lf --role src \
    --user "$U" --port-file "$IT_DIR/src.port" --log "$IT_DIR/src.log" </dev/null \
    >"$IT_DIR/src.out" 2>&1 &
it_at_exit "kill $! 2>/dev/null || true"
"$IT_PYTHON" "$IT_LIBDIR/alterproxy.py" "$DST_IMAP_PORT" "$IT_DIR/alter.port" --munge8bit \
    --add-header "Received: from alterproxy by dst.test; Sat, 5 Dec 2026 10:00:00 +0000" \
    </dev/null >"$IT_DIR/alter.out" 2>&1 &
it_at_exit "kill $! 2>/dev/null || true"
for f in src alter; do
    for _ in $(seq 1 100); do [[ -s $IT_DIR/$f.port ]] && break; sleep 0.05; done
    [[ -s $IT_DIR/$f.port ]] || it_fail "$f did not start: $(cat "$IT_DIR/$f.out")"
done
SRC_PORT=$(cat "$IT_DIR/src.port")
ALTER_PORT=$(cat "$IT_DIR/alter.port")

run() { # STATE [ARGS...]
    local state=$1
    shift
    TR_N=$((TR_N + 1))
    TR_OUT=$IT_DIR/out.$TR_N
    set +e
    "$TRASLOCO" migrate --src "$IT_HOST:$SRC_PORT" --src-tls none \
        --dst "$IT_HOST:${DST_VIA:-$ALTER_PORT}" --dst-tls none --user "$U" \
        --src-password-file "$IT_DIR/pw" --state "$IT_DIR/$state" --timeout 10 \
        --no-progress "$@" > "$TR_OUT" 2>&1
    TR_RC=$?
    set -e
    it_log "trasloco migrate ($state) $* -> exit $TR_RC"
    sed 's/^/    | /' "$TR_OUT" >&2
}
count() { # USER FOLDER
    it_imaptool --port "$DST_IMAP_PORT" --tls none --user "$1" count --folder "$2"
}
counts() { echo "$(count "$1" INBOX) $(count "$1" Archivio)"; }

# 1. The copy: 3 + 2 messages, stored altered.
run state-a
tr_expect_rc 0
tr_expect_out 'messages: 5 copied'
[[ $(counts "$U") == "3 2" ]] || it_fail "destination holds $(counts "$U"), not 3 2"
# the destination really stored them altered
"$IT_PYTHON" - "$DST_IMAP_PORT" "$U" <<'PY' > "$IT_DIR/headers" || it_fail "cannot read the copies"
import imaplib, os, sys
m = imaplib.IMAP4("127.0.0.1", int(sys.argv[1]))
m.login(sys.argv[2], os.environ["IMAP_PASSWORD"])
m.select("INBOX", readonly=True)
typ, data = m.uid("FETCH", "1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT RECEIVED)])")
for item in data:
    if isinstance(item, tuple):
        sys.stdout.write(item[1].decode("latin-1"))
PY
grep -q 'Subject: terzo XX' "$IT_DIR/headers" || it_fail "no munged Subject: $(cat "$IT_DIR/headers")"
grep -q 'Received: from alterproxy' "$IT_DIR/headers" || it_fail "no added Received field"

# verify finds every message, 5 of them stored altered
csv=$IT_DIR/accounts.csv
printf '"%s","%s"\n' "$U" "$(printf '%s' "$PW" | sed 's/"/""/g')" > "$csv"
set +e
"$TRASLOCO" verify "$csv" --src "$IT_HOST:$SRC_PORT" --src-tls none \
    --dst "$IT_HOST:$ALTER_PORT" --dst-tls none --state "$IT_DIR/state-v" --timeout 10 \
    --report "$IT_DIR/verify.json" > "$IT_DIR/verify.out" 2>&1
rc=$?
set -e
sed 's/^/    | /' "$IT_DIR/verify.out" >&2
[[ $rc == 0 ]] || it_fail "verify: exit $rc, expected 0 (every message found)"
grep -q '"altered_by_destination": 5' "$IT_DIR/verify.json" ||
    it_fail "verify did not count the 5 altered copies"

# 2. A new state directory: no ledger, every message matched again, by content.
run state-b
tr_expect_rc 0
tr_expect_out 'messages: 0 copied, 5 already present'
tr_expect_out 'stored altered by the destination'
[[ $(counts "$U") == "3 2" ]] || it_fail "a re-run without state duplicated: $(counts "$U")"
# ... and the ledger it wrote is used from now on
run state-b
tr_expect_rc 0
tr_expect_out 'nothing new'
[[ $(counts "$U") == "3 2" ]] || it_fail "duplicated: $(counts "$U")"

# 3. An APPEND stored (altered) whose reply never comes: settled, not copied again.
FAULTPROXY=$IT_LIBDIR/faultproxy.py
: > "$IT_DIR/fp.rules"
"$IT_PYTHON" "$FAULTPROXY" --upstream-port "$ALTER_PORT" --control "$IT_DIR/fp.rules" \
    --log "$IT_DIR/fp.log" --port-file "$IT_DIR/fp.port" > /dev/null 2>&1 &
it_at_exit "kill $! 2>/dev/null || true"
for _ in $(seq 1 100); do [[ -s $IT_DIR/fp.port ]] && break; sleep 0.05; done
echo 'on=append-reply,skip=1,do=drop' > "$IT_DIR/fp.rules"
for _ in $(seq 1 100); do grep -q 'rule set' "$IT_DIR/fp.log" 2>/dev/null && break; sleep 0.05; done
DST_VIA=$(cat "$IT_DIR/fp.port") run state-c --dst-user u2@azienda.test --batch-count 1 --retries 4
grep -q 'FIRED append-reply/drop' "$IT_DIR/fp.log" || it_fail "the fault did not fire"
tr_expect_rc 0
tr_expect_out 'settled 1 interrupted append\(s\): 1 found on the destination, 0 to copy again'
[[ $(counts u2@azienda.test) == "3 2" ]] || it_fail "settling duplicated: $(counts u2@azienda.test)"

# 4. And once more from nothing: still exactly 5, nothing copied.
run state-d
tr_expect_rc 0
tr_expect_out 'messages: 0 copied, 5 already present'
tr_no_secret
it_pass
