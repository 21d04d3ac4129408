#!/bin/bash
# NUL bytes: Dovecot serves a NUL as 0x80 in BODY[]; trasloco fetches such a
# message again with BINARY[] and appends it as a literal8, so the copy keeps
# its NUL.  A destination without BINARY cannot store it: the message is then
# reported (folder, UID, reason), never silently altered.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_init nul
. "$IT_LIBDIR/common.sh"
it_pair
raw() { "$IT_PYTHON" "$IT_LIBDIR/rawmail.py" "$@"; }
conn=(--port "$SRC_IMAPS_PORT" --tls implicit --ca "$IT_CA" --tls-name "$IT_TLS_NAME" --user "$U")
msgs=$IT_DIR/msgs
mkdir -p "$msgs"
printf 'From: a@example.test\r\nSubject: NUL\r\nMessage-ID: <nul@t>\r\n\r\nbefore\0after\r\n\0\0\r\n' > "$msgs/nul.eml"
# UTF-8 holds 0x80 as a continuation byte (U+2018 is E2 80 98): no second FETCH.
printf 'From: a@example.test\r\nSubject: plain\r\nMessage-ID: <plain@t>\r\n\r\nno nul \xc3\x80 \xe2\x80\x98here\xe2\x80\x99\r\n' > "$msgs/plain.eml"
# A real 0x80 outside UTF-8 (the euro sign in cp1252): fetched again, unchanged.
printf 'From: a@example.test\r\nSubject: cp1252\r\nMessage-ID: <euro@t>\r\n\r\nprice 5 \x80\r\n' > "$msgs/euro.eml"
# Multipart: BINARY[] of the whole message must not decode the base64 part,
# or the copy would be a different message.
printf 'From: a@example.test\r\nSubject: multi\r\nMessage-ID: <multi@t>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nwith\0nul\r\n--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nAAECAwQFBgcICQ==\r\n--b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\ncaf=C3=A9 =00\r\n--b--\r\n' > "$msgs/multi.eml"
# A NUL inside a forwarded message (part 2.1).
printf 'From: a@example.test\r\nSubject: fwd\r\nMessage-ID: <fwd@t>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="o"\r\n\r\n--o\r\nContent-Type: text/plain\r\n\r\nsee below\r\n--o\r\nContent-Type: message/rfc822\r\n\r\nFrom: b@example.test\r\nSubject: inner\r\n\r\ninner\0body \x80 too\r\n--o--\r\n' > "$msgs/fwd.eml"
# cp1252 text next to an attachment whose base64 decodes to NULs: checked,
# nothing to restore, copied as it is.
printf 'From: a@example.test\r\nSubject: cp1252+att\r\nMessage-ID: <att@t>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="c"\r\n\r\n--c\r\nContent-Type: text/plain; charset=windows-1252\r\nContent-Transfer-Encoding: 8bit\r\n\r\n5 \x80\r\n--c\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nAAAAAAAA\r\n--c--\r\n' > "$msgs/att.eml"
# A raw 0x80 in a multipart's header: nothing over IMAP can tell it from a
# NUL, so it is copied as BODY[] shows it, with a warning.
printf 'From: a@example.test\r\nSubject: 5 \x80\r\nMessage-ID: <hdr@t>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="h"\r\n\r\n--h\r\nContent-Type: text/plain\r\n\r\nhi\r\n--h--\r\n' > "$msgs/hdr.eml"
raw append "${conn[@]}" --folder INBOX --flags '\Seen' --date '01-Jan-2001 00:00:00 +0000' \
    "$msgs/nul.eml" "$msgs/plain.eml" "$msgs/euro.eml" "$msgs/multi.eml" "$msgs/fwd.eml" \
    "$msgs/att.eml" "$msgs/hdr.eml" >&2

verify() {
    raw verify "${conn[@]}" --dst-port "$DST_IMAPS_PORT" --dst-tls implicit --dst-ca "$IT_CA" \
        --dst-tls-name "$IT_TLS_NAME" --trasloco-output "$TR_OUT" > "$IT_DIR/verify.out" 2>&1 || true
    sed 's/^/    verify| /' "$IT_DIR/verify.out" >&2
}

# A destination that hides BINARY (through the fault proxy): reported.
"$IT_PYTHON" "$IT_LIBDIR/faultproxy.py" --upstream-port "$DST_IMAP_PORT" \
    --port-file "$IT_DIR/proxy.port" --fault "on=connect,do=hidecap,cap=BINARY,times=always" \
    > /dev/null 2>&1 &
proxy=$!
it_at_exit "kill $proxy 2>/dev/null || true"
for _ in $(seq 50); do [[ -s $IT_DIR/proxy.port ]] && break; sleep 0.1; done
tr_migrate --debug --dst "$IT_HOST:$(cat "$IT_DIR/proxy.port")" --dst-tls none
tr_expect_rc 1
tr_expect_out 'INBOX: UID 1 not copied: it contains NUL bytes and the destination offers no BINARY'
tr_expect_out 'INBOX: UID 4 not copied: it contains NUL bytes and the destination offers no BINARY'
tr_expect_out 'INBOX: UID 5 not copied: it contains NUL bytes and the destination offers no BINARY'
tr_expect_out '4 copied, 0 already present, 3 failed'
tr_expect_out 'UID 5 shows a stray 0x80: 1 BINARY\[\] fetch\(es\), 1 NUL byte\(s\) restored'
tr_expect_out 'UID 6 shows a stray 0x80: 1 BINARY\[\] fetch\(es\), 0 NUL byte\(s\) restored'
tr_expect_out 'UID 7 shows 0x80 bytes that may stand for NUL bytes; copied as the source.s BODY\[\] shows it: a 0x80 outside'
[[ $(grep -c 'copied as the source' "$TR_OUT") == 1 ]] || it_fail "only UID 7 has a 0x80 nothing can check"
tr_expect_out 'UID 3 shows a stray 0x80: 1 BINARY\[\] fetch\(es\), 0 NUL byte\(s\) restored'
tr_expect_out 'UID 4 shows a stray 0x80: 1 BINARY\[\] fetch\(es\), 1 NUL byte\(s\) restored'
grep -q 'UID 2 shows a stray 0x80' "$TR_OUT" && it_fail "UTF-8 text was fetched twice"
verify
grep -q 'result=ok' "$IT_DIR/verify.out" || it_fail "the report and the destination disagree"

# The real destination has BINARY: the message arrives with its NUL bytes.
tr_migrate --debug
tr_expect_rc 0
tr_expect_out ' 3 copied'
tr_expect_out 'UID 1 shows a stray 0x80: 1 BINARY\[\] fetch\(es\), 3 NUL byte\(s\) restored'
grep -q 'copied as the source' "$TR_OUT" && it_fail "a 0x80 was left unchecked"
verify
grep -q 'altered=0' "$IT_DIR/verify.out" && grep -q 'binary=yes' "$IT_DIR/verify.out" &&
    grep -q 'result=ok' "$IT_DIR/verify.out" || it_fail "the NUL bytes did not survive"
it_pass
