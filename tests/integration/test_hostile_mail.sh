#!/bin/bash
# Hostile and odd messages on a real Dovecot source: bare LF line endings, mixed
# endings, NUL bytes (in the body and in a header), raw 8-bit and invalid UTF-8
# headers, malformed headers, 10 kB header lines, a 200 kB body line, messages
# without a body or without headers, a zero-byte message (it can exist in a
# Maildir, Dovecot refuses to APPEND it), a 40 MB message, messages sharing a
# Message-ID (and even size and every fingerprinted header) with different
# bodies, byte-identical duplicates.
#
# Each message must be copied faithfully (same BODY[] and, both servers having
# BINARY, same BINARY[]: a NUL must stay a NUL; same flags, same INTERNALDATE)
# or, where the destination refuses it, be reported with folder, UID and the
# server's reason, with exit 1: rawmail.py verify checks which of the two
# happened to every message and that nothing else differs.  Only the zero-byte
# message may be refused (Dovecot takes everything else).
#
# Peak RSS of trasloco while it copies the 40 MB message (/usr/bin/time -v)
# must stay under HOSTILE_MAX_RSS_KB (default 40960): big messages are spooled
# to a file, not held in memory.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_init hostile-mail
. "$IT_LIBDIR/common.sh"
it_pair
MAX_RSS_KB=${HOSTILE_MAX_RSS_KB:-40960}
[[ -x /usr/bin/time ]] || it_skip "/usr/bin/time (Debian package time) is not installed"
# AddressSanitizer's shadow memory and quarantine make the RSS meaningless
# (grep without -q: it reads all of ldd's output; with -q, ldd could die of SIGPIPE
# and pipefail would then say "no ASan")
if ldd "$TRASLOCO" 2>/dev/null | grep libasan >/dev/null; then
    it_log "trasloco is built with AddressSanitizer: no RSS limit"
    MAX_RSS_KB=999999999
fi

REAL_TRASLOCO=$TRASLOCO
# every run bounded in time and measured
wrapper=$IT_DIR/trasloco-wrapper
cat > "$wrapper" <<EOF
#!/bin/sh
exec timeout -k 5 50 /usr/bin/time -v -o "$IT_DIR/time.\$\$" "$REAL_TRASLOCO" "\$@"
EOF
chmod +x "$wrapper"
TRASLOCO=$wrapper

conn=(--port "$SRC_IMAPS_PORT" --tls implicit --ca "$IT_CA" --tls-name "$IT_TLS_NAME" --user "$U")
dconn=(--port "$DST_IMAPS_PORT" --tls implicit --ca "$IT_CA" --tls-name "$IT_TLS_NAME" --user "$U")
raw() { "$IT_PYTHON" "$IT_LIBDIR/rawmail.py" "$@"; }
verify() {
    local out=$IT_DIR/verify.out
    raw verify "${conn[@]}" --dst-port "$DST_IMAPS_PORT" --dst-tls implicit --dst-ca "$IT_CA" \
        --dst-tls-name "$IT_TLS_NAME" --trasloco-output "$TR_OUT" "$@" > "$out" 2>&1 || true
    sed 's/^/    verify| /' "$out" >&2
    VERIFY_OUT=$out
}
peak_rss() { # of the last run: "Maximum resident set size (kbytes): N"
    local f
    f=$(ls -t "$IT_DIR"/time.* | head -n 1)
    awk -F': ' '/Maximum resident set size/ { print $2 }' "$f"
}

# ---- the messages
msgs=$IT_DIR/msgs
mkdir -p "$msgs"
"$IT_PYTHON" - "$msgs" <<'PY'
import os, sys
d = sys.argv[1]
def w(name, data):
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)
H = b"From: Mario Rossi <mario@example.test>\r\nTo: x@example.test\r\nDate: Mon, 1 Feb 2021 10:00:00 +0100\r\n"
w("01-bare-lf.eml", b"From: a@example.test\nTo: b@example.test\nSubject: bare LF\nMessage-ID: <lf@h>\n\nline 1\nline 2\n\n.\nFrom the start\n")
w("02-nul-body.eml", H + b"Subject: NUL in the body\r\nMessage-ID: <nul@h>\r\n\r\nbefore\x00after\r\n\x00\x00\r\n")
w("03-8bit-headers.eml", b"From: \xe0\xe8\xec <latin1@example.test>\r\nSubject: caf\xe9 \xff\xfe invalid UTF-8\r\n"
  b"To: =?utf-8?B?broken\r\nX-No-Colon header without a colon\r\nMessage-ID: <8bit-\xe9@h>\r\n\r\nb\xe9dy \xf0\x28\x8c\x28\r\n")
w("04-malformed.eml", b" continuation before any header\r\nSubject : space before colon\r\nSubject: second subject\r\n"
  b"Message-ID: no-brackets@h\r\nMessage-ID: <second-id@h>\r\nDate: sometime yesterday-ish\r\nFrom:\r\n"
  b"Content-Type: multipart/mixed; boundary=\"never closed\"\r\nIn-Reply-To: <" + b"r" * 1000 + b"@h>\r\n\r\n"
  b"--never closed\r\nContent-Type: text/plain\r\n\r\npart\r\n")
w("05-10k-header.eml", H + b"Subject: long X header\r\nX-Long: " + b"x" * 10240 + b"\r\nMessage-ID: <long-x@h>\r\n\r\nbody\r\n")
w("06-10k-subject.eml", H + b"Subject: " + b"S" * 10240 + b"\r\nMessage-ID: <long-subject@h>\r\n\r\nbody\r\n")
w("07-no-body.eml", H + b"Subject: no body, no separator\r\nMessage-ID: <nobody@h>\r\n")
w("08-empty-body.eml", H + b"Subject: empty body\r\nMessage-ID: <emptybody@h>\r\n\r\n")
w("09-no-headers.eml", b"\r\nbody only, no header at all\r\n")
w("10-no-final-newline.eml", H + b"Subject: no final newline\r\n\r\nlast line")
w("11-just-crlf.eml", b"\r\n")
w("12-long-body-line.eml", H + b"Subject: 200 kB line\r\nMessage-ID: <longline@h>\r\n\r\n" + b"y" * 204800 + b"\r\n")
w("13-utf8-headers.eml", "From: Zoë <zoe@example.test>\r\nSubject: Größe 📎 日本語\r\nMessage-ID: <utf8-☕@h>\r\n\r\nciao ☕\r\n".encode())
w("14-bad-mime.eml", H + b"Subject: bad MIME\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=\"no-such-charset\r\n"
  b"Content-Transfer-Encoding: base64\r\n\r\n!!!! not base64 at all ====\r\n")
# identical Message-ID (and size, and every header trasloco fingerprints) but different bodies
same = H + b"Subject: same id\r\nMessage-ID: <same@h>\r\n\r\n"
w("20-same-a.eml", same + b"version A\r\n")
w("21-same-b.eml", same + b"version B\r\n")
w("22-same-c.eml", same + b"a longer version C\r\n")
w("23-same-d.eml", H.replace(b"10:00:00", b"11:00:00") + b"Subject: same id\r\nMessage-ID: <same@h>\r\n\r\nversion A\r\n")
w("30-dup.eml", H + b"Subject: exact duplicate\r\nMessage-ID: <dup@h>\r\n\r\nthe same bytes\r\n")
# written straight into the Maildir (what APPEND cannot produce)
w("m1-zero", b"")
w("m2-nul-header-lf", b"From: a@example.test\nSubject: NUL \x00 in a header\nMessage-ID: <nulhdr@h>\n\nx\x00y\n")
w("m3-mixed-endings", b"From: a@example.test\r\nSubject: mixed endings\nMessage-ID: <mixed@h>\r\n\nCRLF\r\nLF\nCRLF\r\n")
PY

D1='01-Jan-2001 00:00:00 +0000'
D2='15-Jun-2019 12:34:56 +0530'
app() { raw append "${conn[@]}" "$@" >&2 || it_fail "the source refused an APPEND: $*"; }
app --folder INBOX --flags '\Seen' --date "$D1" "$msgs"/0*.eml
app --folder INBOX --flags '\Flagged $Hostile' --date "$D2" "$msgs"/1*.eml
app --folder SameId --flags '\Seen' --date "$D1" "$msgs"/2*.eml
app --folder SameId2 --flags '\Seen' --date "$D1" "$msgs"/2*.eml
app --folder Dups --date "$D2" "$msgs"/30-dup.eml "$msgs"/30-dup.eml "$msgs"/30-dup.eml \
    "$msgs"/20-same-a.eml "$msgs"/21-same-b.eml
app --folder Dups --flags '\Answered' --date "$D2" "$msgs"/30-dup.eml
# The destination already holds version A in SameId, version B in SameId2: no
# ledger for those folders, so the copy is planned by fingerprint, and A and B
# share one (same size, same Message-ID, Date, From, To, Subject, no Content-Type).
raw append "${dconn[@]}" --folder SameId --flags '\Seen' --date "$D1" "$msgs"/20-same-a.eml >&2
raw append "${dconn[@]}" --folder SameId2 --flags '\Seen' --date "$D1" "$msgs"/21-same-b.eml >&2

# Straight into the source's Maildir: a zero-byte message, a NUL in a header with
# LF endings, mixed CRLF/LF.  INTERNALDATE of a Maildir file is its mtime.
it_imaptool "${conn[@]}" append --folder Big --count 0 --seed 1 >&2
maildir=$SRC_DIR/home/$U/Maildir
[[ -d $maildir/cur && -d $maildir/.Big/cur ]] || it_fail "no Maildir at $maildir"
put() { # FILE DIR NAME FLAGS
    cp "$1" "$2/$3:2,$4"
    chown "$IT_MAIL_UID:$IT_MAIL_GID" "$2/$3:2,$4"
    chmod 0600 "$2/$3:2,$4"
    touch -d '2012-03-04 05:06:07 UTC' "$2/$3:2,$4"
}
put "$msgs/m1-zero" "$maildir/cur" 1330837567.M1P1.hostile S
put "$msgs/m2-nul-header-lf" "$maildir/cur" 1330837567.M2P1.hostile F
put "$msgs/m3-mixed-endings" "$maildir/cur" 1330837567.M3P1.hostile ""
# 40 MB (LF endings on disk, served with CRLF): a base64 attachment
"$IT_PYTHON" - "$msgs/m4-40mb" <<'PY'
import base64, random, sys
rng = random.Random(40)
with open(sys.argv[1], "wb") as f:
    f.write(b"From: big@example.test\nTo: x@example.test\nSubject: forty megabytes\n"
            b"Message-ID: <40mb@h>\nDate: Tue, 2 Mar 2021 08:00:00 +0000\nMIME-Version: 1.0\n"
            b"Content-Type: application/octet-stream; name=big.bin\n"
            b"Content-Transfer-Encoding: base64\n\n")
    for _ in range(133):  # 133 x 4096 lines of 76 + LF: 40 MiB
        f.write(base64.encodebytes(rng.randbytes(57 * 4096)))
PY
put "$msgs/m4-40mb" "$maildir/.Big/cur" 1330837567.M4P1.hostile S
it_log "source ready: $(it_doveadm src mailbox status -u "$U" messages '*' | tr '\n' ' ')"

# Problems are collected over all the runs and listed at the end, so that one
# failure does not hide the others.
problems=()
problem() { problems+=("$*"); it_log "PROBLEM: $*"; }
verify_ok() { # WHAT: every line of the verify output that is a failure becomes a problem
    local line
    grep -q 'result=ok' "$VERIFY_OUT" && return 0
    while IFS= read -r line; do
        problem "$1: $line"
    done < <(grep -E '^(MISSING|EXTRA|FLAGS|DATE|ALTERED|FALSE-REPORT|MISSING-FOLDER|rawmail)' "$VERIFY_OUT")
    problem "$1: $(tail -n 1 "$VERIFY_OUT")"
}
folders=(--folder INBOX --folder SameId --folder SameId2 --folder Dups)

# ---- run 1: the 40 MB message alone, peak RSS measured
t0=$SECONDS
tr_migrate --folder Big
[[ $TR_RC == 0 ]] || problem "40 MB message: exit $TR_RC, expected 0"
rss=$(peak_rss)
it_log "peak RSS copying the 40 MB message: ${rss} kB (limit $MAX_RSS_KB kB), $((SECONDS - t0)) s"
verify --folder Big
verify_ok "40 MB message"
((rss <= MAX_RSS_KB)) || problem "peak RSS ${rss} kB while copying a 40 MB message (limit $MAX_RSS_KB kB): big messages must be spooled to a file"

# ---- run 2: everything else; only the zero-byte message may be refused, and it
# must be, with the server's reason
tr_migrate --exclude Big
verify "${folders[@]}"
verify_ok "first run"
grep -Eq '^refused INBOX UID [0-9]+ 0: .*server said NO' "$VERIFY_OUT" ||
    problem "first run: the zero-byte message (the destination refuses it) was not reported as refused with the server's reply"
nref=$(grep -c '^refused ' "$VERIFY_OUT" || true)
((nref <= 1)) || problem "first run: $nref messages refused; the destination accepts all but the zero-byte one"
[[ $TR_RC == 1 ]] || problem "first run: exit status $TR_RC, expected 1 (one message refused)"
grep -q ' 1 failed' "$TR_OUT" || problem "first run: the summary does not count the refused message"

# ---- run 3: again, nothing more copied, no duplicate; the refused one is tried again
tr_migrate --exclude Big
[[ $TR_RC == 1 ]] || problem "re-run: expected exit 1 (the zero-byte message again), got $TR_RC"
grep -q ' 0 copied' "$TR_OUT" || problem "re-run: copied something again"
verify "${folders[@]}"
verify_ok "re-run"

# ---- run 4: the state is lost: everything matched by fingerprint, nothing copied twice
tr_migrate --exclude Big --state "$IT_DIR/state-lost"
[[ $TR_RC == 1 ]] || problem "run without state: expected exit 1, got $TR_RC"
grep -q ' 0 copied' "$TR_OUT" || problem "run without state: copied something again"
verify "${folders[@]}"
verify_ok "run without state"
tr_no_secret
if ((${#problems[@]})); then
    printf '  - %s\n' "${problems[@]}" >&2
    it_fail "${#problems[@]} problem(s), listed above"
fi
it_pass "peak RSS ${rss} kB on a 40 MB message"
