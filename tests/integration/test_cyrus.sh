#!/bin/bash
# Dovecot to a real Cyrus IMAP 3.6 with Debian's settings (issue 11, items 1
# and 2): Cyrus refuses some folder names ("NO Invalid mailbox name": '%',
# '\', ';' ...) and stores 8-bit header bytes as 'X' (munge8bit).
#  - refused names are made legal level by level ("%percent" -> "_percent",
#    "semi;colon" needs level 2), listed as renamed, everything is copied,
#    exit 0;
#  - a run with a new state directory finds every folder and every message
#    again (matched by content where Cyrus altered them): nothing copied twice;
#  - an APPEND that Cyrus stored but whose reply never came is settled, not
#    copied again;
#  - verify finds every message.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/cyrus.sh"
it_init cyrus
. "$IT_LIBDIR/common.sh"

# Cyrus with '.' hides the folders of a user with '.' in its name (a Cyrus
# bug, see cyrus.sh): a plain one.
U=mario@example.test
U2=luigi@example.test
enc=$(printf '%s' "$PW" | sed 's/%/%25/g; s/ /%20/g')
it_dovecot_start src "USERS=$U:$enc $U2:$enc"
it_cyrus_start dst "USERS=$U:$enc $U2:$enc"
umask 077
printf '%s\n' "$PW" > "$IT_DIR/pw"
export IMAP_PASSWORD=$PW

# The source: 8-bit header bytes (as many mailers send them), and names
# Cyrus refuses.
"$IT_PYTHON" - "$SRC_IMAP_PORT" "$U" "$U2" <<'PY' >&2
import imaplib, os, sys
msgs = {
    "INBOX": [
        "From: Jos\u00e9 <jose@example.test>\r\nTo: mario@example.test\r\n"
        "Subject: Fattura n\u00b0 12 \u2013 scadenza\r\nDate: Mon, 1 Feb 2021 10:00:00 +0100\r\n"
        "Message-ID: <f12@example.test>\r\n\r\nIn allegato la fattura.\r\n",
        "From: Jos\u00e9 <jose@example.test>\r\nTo: mario@example.test\r\n"
        "Subject: Caff\u00e8 alle 10\r\nDate: Tue, 2 Feb 2021 09:00:00 +0100\r\n"
        "Message-ID: <c10@example.test>\r\n\r\nCi vediamo al bar.\r\n",
        "From: Anna <anna@example.test>\r\nTo: mario@example.test\r\n"
        "Subject: plain ASCII\r\nDate: Wed, 3 Feb 2021 08:00:00 +0100\r\n"
        "Message-ID: <a1@example.test>\r\n\r\nNothing special.\r\n",
        "From: Jos\u00e9 <jose@example.test>\r\nTo: mario@example.test\r\n"
        "Subject: Caff\u00e8 alle 11\r\nDate: Tue, 2 Feb 2021 10:00:00 +0100\r\n"
        "Message-ID: <c11@example.test>\r\n\r\nUn altro caff\u00e8.\r\n",
    ],
    "%percent": ["From: a@example.test\r\nSubject: sconto 50%%\r\n\r\nbody %d\r\n" % i
                 for i in range(2)],
    "semi;colon": ["From: b@example.test\r\nSubject: s\u00ec\r\n\r\nbody\r\n"],
    "back\\slash": ["From: c@example.test\r\nSubject: b\r\n\r\nbody\r\n"],
    "R&D": ["From: d@example.test\r\nSubject: r\r\n\r\nbody\r\n"],
}
for user in sys.argv[2:]:
    m = imaplib.IMAP4("127.0.0.1", int(sys.argv[1]))
    m.login(user, os.environ["IMAP_PASSWORD"])
    for folder, items in msgs.items():
        box = '"' + folder.replace("\\", "\\\\").replace("&", "&-") + '"'
        if folder != "INBOX":
            print(folder, m.create(box))
        for text in items:
            typ, _ = m.append(box, "(\\Seen)", None, text.encode("utf-8"))
            assert typ == "OK", (folder, typ)
    m.logout()
PY

dst_count() { # USER FOLDER (as Cyrus names it, '.'-separated under INBOX.)
    it_imaptool --port "$DST_IMAP_PORT" --tls none --user "$1" count --folder "$2"
}
counts() {
    local f out=""
    for f in INBOX _percent semi_colon back_slash "R&D"; do out+="$(dst_count "$1" "$f") "; done
    echo "$out"
}
WANT="4 2 1 1 1 "
run() { # STATE [ARGS...]: migrate to Cyrus over verified STARTTLS
    local state=$1
    shift
    TR_N=$((TR_N + 1))
    TR_OUT=$IT_DIR/out.$TR_N
    set +e
    "$TRASLOCO" migrate --src "$IT_HOST:$SRC_IMAPS_PORT" --src-tls implicit \
        --src-tls-name "$IT_TLS_NAME" --dst "$IT_HOST:${DST_PORT:-$DST_IMAP_PORT}" \
        --dst-tls "${DST_TLS:-starttls}" --dst-tls-name "$IT_TLS_NAME" --ca-file "$IT_CA" \
        --user "${USER_:-$U}" --src-password-file "$IT_DIR/pw" --state "$IT_DIR/$state" \
        --timeout 20 --no-progress "$@" > "$TR_OUT" 2>&1
    TR_RC=$?
    set -e
    it_log "trasloco migrate ($state) $* -> exit $TR_RC"
    sed 's/^/    | /' "$TR_OUT" >&2
}

# 1. The copy.
run state-a
tr_expect_rc 0
tr_expect_out '"%percent" -> "_percent" \(refused\)'
tr_expect_out '"semi;colon" -> "semi_colon" \(refused\)'
tr_expect_out '"back\\\\slash" -> "back_slash" \(refused\)'
tr_expect_out 'messages: 9 copied, 0 already present, 0 failed'
[[ $(counts "$U") == "$WANT" ]] || it_fail "Cyrus holds $(counts "$U"), want $WANT"
# Cyrus really stored the headers altered
it_imaptool --port "$DST_IMAP_PORT" --tls none --user "$U" list >&2

# 2. Again with the same state: nothing new.
run state-a
tr_expect_rc 0
tr_expect_out 'nothing new'

# 3. A new state directory (state lost): same folders, every message matched.
run state-b
tr_expect_rc 0
tr_expect_out 'messages: 0 copied, 9 already present, 0 failed'
tr_expect_out 'INBOX: 3 of them stored altered by the destination'
[[ $(counts "$U") == "$WANT" ]] || it_fail "a run without state duplicated: $(counts "$U")"
run state-b
tr_expect_rc 0
tr_expect_out 'nothing new'

# 4. verify: every source message is on Cyrus.
csv=$IT_DIR/accounts.csv
printf '"%s","%s"\n' "$U" "$(printf '%s' "$PW" | sed 's/"/""/g')" > "$csv"
set +e
"$TRASLOCO" verify "$csv" --src "$IT_HOST:$SRC_IMAPS_PORT" --src-tls implicit \
    --src-tls-name "$IT_TLS_NAME" --dst "$IT_HOST:$DST_IMAP_PORT" --dst-tls starttls \
    --dst-tls-name "$IT_TLS_NAME" --ca-file "$IT_CA" --state "$IT_DIR/state-v" --timeout 20 \
    --report "$IT_DIR/verify.json" > "$IT_DIR/verify.out" 2>&1
rc=$?
set -e
sed 's/^/    | /' "$IT_DIR/verify.out" >&2
[[ $rc == 0 ]] || it_fail "verify: exit $rc"
grep -q '"altered_by_destination": 4' "$IT_DIR/verify.json" ||
    it_fail "verify should count 4 copies Cyrus altered"

# 5. An APPEND Cyrus stored whose reply never came (faultproxy drops the
#    connection instead): settled by content, not copied again.
: > "$IT_DIR/fp.rules"
"$IT_PYTHON" "$IT_LIBDIR/faultproxy.py" --upstream-port "$DST_IMAP_PORT" \
    --control "$IT_DIR/fp.rules" --log "$IT_DIR/fp.log" --port-file "$IT_DIR/fp.port" \
    > /dev/null 2>&1 &
it_at_exit "kill $! 2>/dev/null || true"
for _ in $(seq 1 100); do [[ -s $IT_DIR/fp.port ]] && break; sleep 0.05; done
echo 'on=append-reply,skip=1,do=drop' > "$IT_DIR/fp.rules"
for _ in $(seq 1 100); do grep -q 'rule set' "$IT_DIR/fp.log" 2>/dev/null && break; sleep 0.05; done
USER_=$U2 DST_PORT=$(cat "$IT_DIR/fp.port") DST_TLS=none run state-c --folder INBOX \
    --batch-count 1 --retries 4
grep -q 'FIRED append-reply/drop' "$IT_DIR/fp.log" || it_fail "the fault did not fire"
tr_expect_rc 0
tr_expect_out 'settled 1 interrupted append\(s\): 1 found on the destination, 0 to copy again'
[[ $(dst_count "$U2" INBOX) == 4 ]] || it_fail "settling duplicated: $(dst_count "$U2" INBOX)"
tr_no_secret
it_pass
