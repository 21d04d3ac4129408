#!/bin/bash
# A destination over quota: the account that does not fit is reported as
# partial, with each refused message named (folder, UID, [OVERQUOTA] reply),
# and the other accounts of the job go on to the end.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_init quota
: "${TRASLOCO:?}"
users="piccolo@azienda.test:pw-p grande@azienda.test:pw-g"
it_dovecot_start src "USERS=$users"
it_dovecot_start dst "USERS=$users" QUOTA_MB=2
IMAP_PASSWORD=pw-p it_imaptool --port "$SRC_IMAPS_PORT" --tls implicit --ca "$IT_CA" \
    --tls-name "$IT_TLS_NAME" --user piccolo@azienda.test append --folder INBOX --count 20 \
    --seed 1 >/dev/null
IMAP_PASSWORD=pw-g it_imaptool --port "$SRC_IMAPS_PORT" --tls implicit --ca "$IT_CA" \
    --tls-name "$IT_TLS_NAME" --user grande@azienda.test append --folder INBOX --count 4 \
    --seed 2 --size-kb 700 >/dev/null
printf 'piccolo@azienda.test,pw-p\ngrande@azienda.test,pw-g\n' > "$IT_DIR/acc.csv"
chmod 600 "$IT_DIR/acc.csv"
set +e
"$TRASLOCO" run "$IT_DIR/acc.csv" --src "$IT_HOST:$SRC_IMAPS_PORT" --src-tls implicit \
    --src-tls-name "$IT_TLS_NAME" --dst "$IT_HOST:$DST_IMAPS_PORT" --dst-tls implicit \
    --dst-tls-name "$IT_TLS_NAME" --ca-file "$IT_CA" --state "$IT_DIR/state" \
    --report "$IT_DIR/r.json" --no-progress > "$IT_DIR/out" 2>&1
rc=$?
set -e
grep -v ' info ' "$IT_DIR/out" >&2 || true
[[ $rc == 1 ]] || it_fail "expected exit 1, got $rc"
grep -Eq 'grande@azienda.test\] INBOX: UID [0-9]+ \([0-9]+ bytes\) refused: .*OVERQUOTA' "$IT_DIR/out" ||
    it_fail "the refused messages are not named with the server's reply"
/usr/bin/python3 - "$IT_DIR/r.json" <<'PY' || it_fail "report.json is wrong"
import json, sys
acc = {a["email"]: a for a in json.load(open(sys.argv[1]))["accounts"]}
p, g = acc["piccolo@azienda.test"], acc["grande@azienda.test"]
assert p["status"] == "ok" and p["messages_copied"] == 20, p
assert g["status"] == "partial" and g["messages_failed"] >= 1, g
assert g["messages_copied"] + g["messages_failed"] == 4, g
PY
it_pass
