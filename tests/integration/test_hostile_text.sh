#!/bin/bash
# Server and CSV text reaches nobody raw.  fakeimap.py's hostile-text scenario as
# the source and as the destination (plain TCP on 127.0.0.1): LOGIN and
# AUTHENTICATE PLAIN of "echo*" users answered NO [AUTHENTICATIONFAILED] you sent:
# <the line received> (the password, IMAP-quoted or inside the SASL PLAIN token);
# of "esc*" users NO with ESC sequences (clear screen, window title, colours), C1
# and DEL controls and invalid UTF-8; and, for a user that logs in, EXAMINE of
# Archivio and the APPEND of one message answered NO with that text and the
# user's password in every form.  The accounts CSV adds an email that is not
# UTF-8 (Latin-1), one with a C1 control, and a login with ESC sequences.
#
# `trasloco migrate` for each kind of user, then `run` (with --report,
# --report-csv, per-account logs), `check --report` and `verify --report` of the
# CSV.  Everything trasloco printed or wrote (stdout, stderr, logs, the JSON and
# CSV reports, every file of the state directories, state.db included) must
# hold no password in any form (as is, IMAP-quoted, base64 alone or in a SASL
# PLAIN token), no ESC byte; printed and written text must be valid UTF-8
# without control characters (but newlines), the error and message texts in
# state.db too.  The JSON reports must parse and keep every account's "email"
# and "error" keys; the hostile text must still be there, escaped ("\x1B[2J"),
# and the passwords replaced by "[password]".
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_init hostile-text
: "${TRASLOCO:?TRASLOCO must point to the trasloco binary (make check sets it)}"

PW_LOGIN='Hx-pw "q7" \b z'       # ASCII with a quote and a backslash: LOGIN, quoted
PW_PLAIN='Hx-pässwörd "8" \k'     # not ASCII: AUTHENTICATE PLAIN
PW_GOOD='Hx-good-pw "9" \v'
PW_ESC='Hx-esc-pw-Q4'
IN=$IT_DIR/in    # what the test writes
TR=$IT_DIR/tr    # what trasloco writes, nothing else
mkdir -p "$IN" "$TR"
chmod 0700 "$IN"

start_fake() { # NAME ROLE
    FAKEIMAP_PASSWORD=unused "$IT_PYTHON" "$IT_LIBDIR/fakeimap.py" --scenario hostile-text \
        --role "$2" --port-file "$IT_DIR/fake.$1.port" --log "$IT_DIR/fake.$1.log" \
        </dev/null >"$IT_DIR/fake.$1.out" 2>&1 &
    it_at_exit "kill $! 2>/dev/null || true"
}
wait_fake() {
    local i
    for ((i = 0; i < 200; i++)); do
        [[ -s $IT_DIR/fake.$1.port ]] && { cat "$IT_DIR/fake.$1.port"; return 0; }
        sleep 0.05
    done
    it_fail "fakeimap $1 did not start: $(cat "$IT_DIR/fake.$1.out")"
}
start_fake src src
start_fake dst dst
SRC_PORT=$(wait_fake src)
DST_PORT=$(wait_fake dst)
common=(--src "$IT_HOST:$SRC_PORT" --src-tls none --dst "$IT_HOST:$DST_PORT" --dst-tls none
    --timeout 5 --retries 1 --no-progress)

problems=()
problem() { problems+=("$*"); it_log "PROBLEM: $*"; }
N=0
# run_tr CMD ARGS...: trasloco, its stdout in $IT_DIR/out.N, stderr in err.N; exit in $RC
run_tr() {
    N=$((N + 1))
    set +e
    timeout -k 5 60 "$TRASLOCO" "$@" > "$IT_DIR/out.$N" 2> "$IT_DIR/err.$N"
    RC=$?
    set -e
    it_log "trasloco $1 ... -> exit $RC"
    cat -v "$IT_DIR/out.$N" "$IT_DIR/err.$N" | sed 's/^/    | /' >&2
}

# ---- migrate: one account of each kind
(umask 077
 printf '%s\n' "$PW_LOGIN" > "$IN/login.pw"
 printf '%s\n' "$PW_PLAIN" > "$IN/plain.pw"
 printf '%s\n' "$PW_GOOD" > "$IN/good.pw"
 printf '%s\n' "$PW_ESC" > "$IN/esc.pw")
run_tr migrate "${common[@]}" --user echo-login@example.test --src-password-file "$IN/login.pw" \
    --state "$TR/state-m1"
[[ $RC == 3 ]] || problem "migrate, a LOGIN echoed in the NO: exit $RC, expected 3 (login refused)"
run_tr migrate "${common[@]}" --user echo-plain@example.test --src-password-file "$IN/plain.pw" \
    --state "$TR/state-m2"
[[ $RC == 3 ]] || problem "migrate, an AUTHENTICATE PLAIN echoed in the NO: exit $RC, expected 3"
run_tr migrate "${common[@]}" --user esc@example.test --src-password-file "$IN/esc.pw" \
    --state "$TR/state-m3"
[[ $RC == 3 ]] || problem "migrate, a NO with escape sequences: exit $RC, expected 3"
grep -qF '\x1B[2J' "$IT_DIR/err.$N" "$IT_DIR/out.$N" ||
    problem "migrate: the server's reply is not shown (escaped) any more"
run_tr migrate "${common[@]}" --user mario@example.test --src-password-file "$IN/good.pw" \
    --state "$TR/state-m4"
[[ $RC == 1 ]] || problem "migrate, a folder and a message refused with hostile text: exit $RC, expected 1"
grep -qF '[password]' "$IT_DIR/out.$N" "$IT_DIR/err.$N" ||
    problem "migrate: no [password] where the server sent the password back"

# ---- run, check, verify of a CSV
csvq() { printf '"%s"' "$(printf '%s' "$1" | sed 's/"/""/g')"; }
EMAIL_LATIN1=$(printf 'esc-m\xe0rio@example.test')     # not UTF-8
EMAIL_C1=$(printf 'c1-\xc2\x9bx@example.test')          # U+009B, a C1 control (CSI)
LOGIN_ESC=$(printf 'esc\x1b[2J\x1b]0;t\x07@example.test')
{
    printf 'Email,Password,src_user\r\n'
    printf '%s,%s,\r\n' echo-login@example.test "$(csvq "$PW_LOGIN")"
    printf '%s,%s,\r\n' echo-plain@example.test "$(csvq "$PW_PLAIN")"
    printf '%s,%s,\r\n' "$EMAIL_LATIN1" "$(csvq "$PW_ESC")"
    printf '%s,%s,%s\r\n' "$EMAIL_C1" "$(csvq "$PW_ESC")" "$(csvq "$LOGIN_ESC")"
    printf '%s,%s,\r\n' mario@example.test "$(csvq "$PW_GOOD")"
} > "$IN/accounts.csv"
chmod 0600 "$IN/accounts.csv"
run_tr run "$IN/accounts.csv" "${common[@]}" --state "$TR/state-run" --log-dir "$TR/logs" \
    --report "$TR/run.json" --report-csv "$TR/run.csv"
[[ $RC == 1 ]] || problem "run: exit $RC, expected 1 (accounts failed)"
run_tr check "$IN/accounts.csv" "${common[@]}" --state "$TR/state-run" --report "$TR/check.json"
run_tr verify "$IN/accounts.csv" "${common[@]}" --state "$TR/state-run" --report "$TR/verify.json"

# ---- what trasloco printed and wrote
"$IT_PYTHON" - "$TR" "$IT_DIR" "$PW_LOGIN" "$PW_PLAIN" "$PW_GOOD" "$PW_ESC" > "$IT_DIR/findings" <<'PY' || true
import base64, csv, io, json, os, re, sqlite3, sys
tr, itdir, pws = sys.argv[1], sys.argv[2], sys.argv[3:]
users = [b"echo-login@example.test", b"echo-plain@example.test", b"mario@example.test",
         b"esc@example.test", b""]
forms = {}
for p in pws:
    b = p.encode()
    forms[b] = "as is"
    forms[b.replace(b"\\", b"\\\\").replace(b'"', b'\\"')] = "IMAP-quoted"
    forms[base64.b64encode(b)] = "base64"
    for u in users:
        for authz in (b"", u):
            forms[base64.b64encode(authz + b"\0" + u + b"\0" + b)] = "in a SASL PLAIN token"
files = []
for root, dirs, names in os.walk(tr):
    files += [os.path.join(root, n) for n in names]
outs = sorted(os.path.join(itdir, n) for n in os.listdir(itdir) if re.match(r"(out|err)\.\d+$", n))
files += outs
bad_text = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")
for f in sorted(files):
    data = open(f, "rb").read()
    for form, how in forms.items():
        if form in data:
            print("LEAK %s: a password %s" % (f, how))
    if os.path.basename(f).startswith("state.db"):
        continue   # SQLite's own bytes may be anything: its texts are read below
    if b"\x1b" in data:
        print("ESC %s: a raw ESC byte" % f)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        print("NOT-UTF8 %s: %s" % (f, e))
        continue
    m = bad_text.search(text)
    if m:
        print("CONTROL %s: %r near %r" % (f, m.group(0), text[max(0, m.start() - 30):m.end() + 10]))
# state.db: the texts it keeps
for root, dirs, names in os.walk(tr):
    for n in names:
        if n != "state.db":
            continue
        db = sqlite3.connect(os.path.join(root, n))
        db.text_factory = bytes
        for table in ("accounts", "messages"):
            for (err,) in db.execute("SELECT error FROM %s WHERE error IS NOT NULL" % table):
                try:
                    t = err.decode("utf-8")
                except UnicodeDecodeError:
                    print("NOT-UTF8 %s/%s: %s.error %r" % (root, n, table, err))
                    continue
                if bad_text.search(t):
                    print("CONTROL %s/%s: %s.error %r" % (root, n, table, t))
                print("STORED %s.error %s" % (table, t))
# the JSON reports: parse, every account has its email and error keys
want = {"echo-login@example.test", "echo-plain@example.test", "esc-m\\xE0rio@example.test",
        "c1-\\xC2\\x9Bx@example.test", "mario@example.test"}
for name in ("run.json", "check.json", "verify.json"):
    path = os.path.join(tr, name)
    try:
        doc = json.load(open(path, encoding="utf-8"))
    except (OSError, ValueError) as e:
        print("JSON %s: %s" % (name, e))
        continue
    accs = doc.get("accounts", [])
    seen = set()
    for a in accs:
        for k in ("email", "error", "status"):
            if k not in a:
                print("JSON %s: an account without its %r key: %r" % (name, k, a))
        seen.add(a.get("email"))
        if a.get("status") == "failed" and not a.get("error"):
            print("JSON %s: account %r failed without an error text" % (name, a.get("email")))
        print("REPORTED %s %r %r" % (name, a.get("email"), a.get("error")))
    if seen != want:
        print("JSON %s: accounts %r, expected %r" % (name, sorted(map(str, seen)), sorted(want)))
    if name == "run.json":
        text = json.dumps(doc, ensure_ascii=False)
        if "\\x1B[2J" not in text:
            print("JSON %s: the servers' replies are gone (no escaped \\x1B[2J)" % name)
        if "[password]" not in text:
            print("JSON %s: no [password] where the servers sent passwords back" % name)
# the CSV report
try:
    rows = list(csv.DictReader(io.StringIO(open(os.path.join(tr, "run.csv"), encoding="utf-8").read())))
    if {r["email"] for r in rows} != want:
        print("CSV run.csv: accounts %r" % sorted(r["email"] for r in rows))
except (OSError, ValueError, KeyError) as e:
    print("CSV run.csv: %s" % e)
print("checked %d files" % len(files))
PY
sed 's/^/    findings| /' "$IT_DIR/findings" >&2
while IFS= read -r line; do problem "$line"; done < <(grep -E '^(LEAK|ESC|NOT-UTF8|CONTROL|JSON|CSV)' "$IT_DIR/findings")
if grep -El 'AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|runtime error:' "$IT_DIR"/out.* "$IT_DIR"/err.* >/dev/null; then
    problem "a sanitizer report: $(grep -Ehm 3 'Sanitizer|runtime error:' "$IT_DIR"/out.* "$IT_DIR"/err.* | tr '\n' ' ')"
fi
grep -q '^checked [1-9]' "$IT_DIR/findings" || problem "the output checker did not finish: $(tail -n 3 "$IT_DIR/findings")"
grep -q '^STORED accounts.error .*\[password\]' "$IT_DIR/findings" ||
    problem "state.db keeps no account error with [password] in it (the test looked at too little)"
grep -q '^STORED messages.error .*\\x1B\[2J' "$IT_DIR/findings" ||
    problem "state.db keeps no refused message's error with the escaped server text (the test looked at too little)"

if ((${#problems[@]})); then
    printf '  - %s\n' "${problems[@]}" >&2
    it_fail "${#problems[@]} problem(s), listed above"
fi
it_pass
