#!/bin/bash
# Hostile MIME nesting on the NUL path: a message that shows a stray 0x80 is
# parsed with libetpan's recursive MIME parser (to find the parts BINARY[] can
# return), which recursed once per level: 100,000 nested message/rfc822 parts
# (3 MB, anyone can mail them) overflowed a worker's stack (SIGSEGV on every
# run), 5,000 nested multiparts cost seconds of CPU.  Such messages are now
# measured first (nul_mime_shape) and copied as BODY[] shows them, with a
# warning naming the message; a message nested within the bounds still gets its
# NUL bytes back.  Every run is bounded in time.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_init nul-deep
. "$IT_LIBDIR/common.sh"
it_pair
raw() { "$IT_PYTHON" "$IT_LIBDIR/rawmail.py" "$@"; }
conn=(--port "$SRC_IMAPS_PORT" --tls implicit --ca "$IT_CA" --tls-name "$IT_TLS_NAME" --user "$U")
msgs=$IT_DIR/msgs
mkdir -p "$msgs"
"$IT_PYTHON" - "$msgs" <<'EOF'
import os, sys
d = sys.argv[1]
head = b"From: a@example.test\r\nMIME-Version: 1.0\r\n"
def put(name, data):
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)
# 1: 100,000 message/rfc822 levels around a cp1252 euro sign
put("1-chain.eml", head + b"Subject: chain\r\nMessage-ID: <chain@t>\r\n" +
    b"Content-Type: message/rfc822\r\n\r\n" * 100000 + b"Subject: inner\r\n\r\n5 \x80\r\n")
# 2: 5,000 nested multiparts, the same euro sign innermost
out = [head + b"Subject: nest\r\nMessage-ID: <nest@t>\r\n"]
for i in range(5000):
    out.append(b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (i, i))
out.append(b"Content-Type: text/plain\r\n\r\n5 \x80\r\n")
out += [b"--b%d--\r\n" % i for i in reversed(range(5000))]
put("2-nest.eml", b"".join(out))
# 3: 20 nested multiparts around a NUL byte: within the bounds, restored
out = [head + b"Subject: shallow\r\nMessage-ID: <shallow@t>\r\n"]
for i in range(20):
    out.append(b'Content-Type: multipart/mixed; boundary="s%d"\r\n\r\n--s%d\r\n' % (i, i))
out.append(b"Content-Type: text/plain\r\n\r\nbefore\0after\r\n")
out += [b"--s%d--\r\n" % i for i in reversed(range(20))]
put("3-shallow.eml", b"".join(out))
EOF
raw append "${conn[@]}" --folder INBOX --flags '\Seen' --date '01-Jan-2001 00:00:00 +0000' \
    "$msgs/1-chain.eml" "$msgs/2-nest.eml" "$msgs/3-shallow.eml" >&2

t0=$(date +%s)
# every run bounded in time: on main the parser crashed, and could have spun
TRASLOCO_REAL=$TRASLOCO
TRASLOCO=$IT_DIR/bounded
printf '#!/bin/sh\nexec timeout -k 5 120 "%s" "$@"\n' "$TRASLOCO_REAL" > "$TRASLOCO"
chmod +x "$TRASLOCO"
tr_migrate --debug
el=$(($(date +%s) - t0))
((TR_RC < 124)) || it_fail "trasloco died or hung (exit $TR_RC): the MIME parser's recursion"
tr_expect_rc 0
tr_expect_out ' 3 copied'
tr_expect_out 'UID 1 shows 0x80 bytes that may stand for NUL bytes; copied as the source.s BODY\[\] shows it: its MIME structure is nested too deep'
tr_expect_out 'UID 2 shows 0x80 bytes that may stand for NUL bytes; copied as the source.s BODY\[\] shows it: its MIME structure is nested too deep'
tr_expect_out 'UID 3 shows a stray 0x80: 1 BINARY\[\] fetch\(es\), 1 NUL byte\(s\) restored'
raw verify "${conn[@]}" --dst-port "$DST_IMAPS_PORT" --dst-tls implicit --dst-ca "$IT_CA" \
    --dst-tls-name "$IT_TLS_NAME" --trasloco-output "$TR_OUT" > "$IT_DIR/verify.out" 2>&1 || true
sed 's/^/    verify| /' "$IT_DIR/verify.out" >&2
grep -q 'altered=0' "$IT_DIR/verify.out" && grep -q 'result=ok' "$IT_DIR/verify.out" ||
    it_fail "the copies differ from the source"
it_pass "in ${el} s"
