#!/bin/bash
# trasloco verify: after the last run, is every source message on the
# destination?  Before any copy everything is missing; after a copy it is
# complete; then mail arrives at the old server, a message is deleted on the
# new one, one is read there and one delivered only there: verify lists the
# three missing messages by folder and UID (exit 1, JSON report), counts the
# others without calling them faults, and changes nothing on either server.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_init verify
. "$IT_LIBDIR/common.sh"
it_pair
conn=(--port "$SRC_IMAPS_PORT" --tls implicit --ca "$IT_CA" --tls-name "$IT_TLS_NAME" --user "$U")
dconn=(--port "$DST_IMAPS_PORT" --tls implicit --ca "$IT_CA" --tls-name "$IT_TLS_NAME" --user "$U")
it_imaptool "${conn[@]}" populate --seed 11 --profile small >&2

csv=$IT_DIR/accounts.csv
printf '"%s","%s"\n' "$U" "$(printf '%s' "$PW" | sed 's/"/""/g')" > "$csv"
chmod 600 "$csv"
VN=0
tr_verify() {
    VN=$((VN + 1))
    TR_OUT=$IT_DIR/verify.$VN
    set +e
    "$TRASLOCO" verify "$csv" \
        --src "$IT_HOST:$SRC_IMAPS_PORT" --src-tls implicit --src-tls-name "$IT_TLS_NAME" \
        --dst "$IT_HOST:$DST_IMAPS_PORT" --dst-tls implicit --dst-tls-name "$IT_TLS_NAME" \
        --ca-file "$IT_CA" --timeout 20 --no-progress "$@" > "$TR_OUT" 2>&1
    TR_RC=$?
    set -e
    it_log "trasloco verify $* -> exit $TR_RC"
    sed 's/^/    | /' "$TR_OUT" >&2
}
# "account status folders source found missing only-on-dst flags-differ"
row() { awk -v u="$U" '$1 == u { print $2, $3, $4, $5, $6, $7, $8 }' "$TR_OUT"; }
nsrc=$(it_doveadm src mailbox status -u "$U" messages '*' | awk -F= '{ n += $NF } END { print n }')

# Nothing copied yet: every message is missing.
tr_verify
tr_expect_rc 1
read -r st _ src found missing _ _ <<<"$(row)"
[[ $st == incomplete && $src == "$nsrc" && $found == 0 && $missing == "$nsrc" ]] ||
    it_fail "before any copy: expected $nsrc of $nsrc missing, got: $(row)"
tr_expect_out 'folder\(s\) with messages are not on the destination'

tr_migrate
tr_expect_rc 0
tr_verify
tr_expect_rc 0
read -r st _ src found missing donly fdiff <<<"$(row)"
[[ $st == complete && $found == "$nsrc" && $missing == 0 && $donly == 0 && $fdiff == 0 ]] ||
    it_fail "after the copy: expected complete, got: $(row)"

# The world moves on: 2 new messages on the source, 1 deleted on the
# destination, 1 read there, 1 delivered there only.
it_imaptool "${conn[@]}" append --folder INBOX --count 2 --seed 77 >&2
it_imaptool "${dconn[@]}" expunge --folder Sent --count 1 --seed 3 | tee "$IT_DIR/expunged" >&2
gone=$(sed -n 's/.*uids=\([0-9]*\).*/\1/p' "$IT_DIR/expunged")
it_imaptool "${dconn[@]}" setflags --folder INBOX --count 1 --seed 5 >&2
it_imaptool "${dconn[@]}" append --folder INBOX --count 1 --seed 78 >&2
before=$(it_doveadm dst mailbox status -u "$U" 'messages unseen highestmodseq' '*'; \
         it_doveadm src mailbox status -u "$U" 'messages unseen highestmodseq' '*')

tr_verify --report "$IT_DIR/verify.json"
tr_expect_rc 1
read -r st _ src found missing donly fdiff <<<"$(row)"
[[ $st == incomplete && $src == $((nsrc + 2)) && $missing == 3 && $donly == 1 && $fdiff -ge 1 ]] ||
    it_fail "expected 3 missing, 1 only on the destination, flags differing: got $(row)"
[[ $(grep -c 'INBOX: UID [0-9]* (.*) is not on the destination' "$TR_OUT") == 2 ]] ||
    it_fail "the two new source messages are not listed"
grep -q 'Sent: UID [0-9]* (.*) is not on the destination' "$TR_OUT" ||
    it_fail "the message deleted on the destination is not listed (destination UID $gone)"
"$IT_PYTHON" - "$IT_DIR/verify.json" "$U" <<'EOF' || it_fail "the JSON report is not what the run said"
import json, sys
acc = json.load(open(sys.argv[1]))["accounts"][0]
assert acc["email"] == sys.argv[2] and acc["status"] == "incomplete", acc
assert acc["missing"] == 3 and len(acc["missing_messages"]) == 3, acc
assert sorted(m["folder"] for m in acc["missing_messages"]) == ["INBOX", "INBOX", "Sent"], acc
assert all(m["uid"] > 0 and m["size"] > 0 and m["internaldate"] for m in acc["missing_messages"])
assert acc["destination_only"] == 1 and acc["flags_differ"] >= 1, acc
EOF
[[ $(stat -c %a "$IT_DIR/verify.json") == 600 ]] || it_fail "the report is not private"
after=$(it_doveadm dst mailbox status -u "$U" 'messages unseen highestmodseq' '*'; \
        it_doveadm src mailbox status -u "$U" 'messages unseen highestmodseq' '*')
[[ $before == "$after" ]] || it_fail "verify changed something on a server"

# A run picks up the new mail; the message deleted on the new server stays
# deleted (the user's choice), and verify keeps saying so.
tr_migrate
tr_expect_rc 0
tr_verify
tr_expect_rc 1
read -r st _ src found missing _ _ <<<"$(row)"
[[ $missing == 1 ]] || it_fail "after the last run: expected the deleted message alone, got: $(row)"

# A copy altered in one byte of its body keeps its size and headers: the
# fingerprint cannot see it, --content (SHA-256 of every message) does.
"$IT_PYTHON" - "$IT_HOST" "$DST_IMAPS_PORT" "$IT_CA" "$U" <<'PY' >&2 || it_fail "could not alter a message"
import imaplib, os, re, ssl, sys
host, port, ca, user = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
ctx = ssl.create_default_context(cafile=ca)
ctx.check_hostname = False       # loopback test server, certificate for mail.test
m = imaplib.IMAP4_SSL(host, port, ssl_context=ctx)
m.login(user, os.environ["IMAP_PASSWORD"])
m.select("INBOX")
typ, data = m.uid("FETCH", "1", "(FLAGS INTERNALDATE BODY.PEEK[])")
meta, body = data[0][0].decode(), bytearray(data[0][1])
flags = re.search(r"FLAGS \(([^)]*)\)", meta).group(1)
date = re.search(r'INTERNALDATE "([^"]*)"', meta).group(1)
i = body.rfind(b"\r\n", 0, len(body) - 2) + 2     # a byte of the last body line
body[i] = ord("X") if body[i] != ord("X") else ord("Y")
flags = " ".join(f for f in flags.split() if f != "\\Recent")
print(m.append("INBOX", "(%s)" % flags, '"%s"' % date, bytes(body)))
m.uid("STORE", "1", "+FLAGS.SILENT", "(\\Deleted)")
m.uid("EXPUNGE", "1")      # UIDPLUS: only that one (others may carry \Deleted)
m.logout()
PY
tr_verify
tr_expect_rc 1
read -r st _ src found missing _ _ <<<"$(row)"
[[ $missing == 1 ]] || it_fail "fingerprints: expected only the deleted message missing, got: $(row)"
tr_verify --content --batch-size 1
tr_expect_rc 1
read -r st _ src found missing donly _ <<<"$(row)"
[[ $missing == 2 && $donly == 2 ]] ||
    it_fail "--content: expected the deleted and the altered message missing, got: $(row)"
tr_expect_out 'INBOX: UID [0-9]+ \(.*\) is not on the destination'
tr_no_secret
grep -rqF -- "$PW" "$IT_DIR"/verify.* && it_fail "the password appears in verify's output"
it_pass
