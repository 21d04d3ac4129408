#!/bin/bash
# Credentials and safety.  Distinctive passwords (with a quote, a backslash, a
# space and non-ASCII), given through TRASLOCO_SRC_PASSWORD/TRASLOCO_DST_PASSWORD,
# through password files, and through a CSV (with a dst_password column), must
# never appear -- as they are, IMAP-quoted, or inside a base64 SASL PLAIN token --
# in trasloco's output (also with --debug), in any file under its state
# directories, in its reports or per-account logs; nor in /proc/PID/cmdline or
# /proc/PID/environ of a running, logged-in trasloco (the environment block is
# wiped, not just unset).  Every file trasloco writes is 0600 and every
# directory it creates 0700, even under umask 022.  A CSV or password file
# readable by others draws a warning naming it.  --password and its variants
# (--password=X, --src-pass=X, ...) are refused (exit 2) without echoing the
# value.  --src-tls none / --dst-tls none to a non-loopback address (192.0.2.1,
# TEST-NET-1) is a usage error (exit 2) found before any connection is tried
# (strace: no connect()), on the command line and in a job file; with
# --allow-plaintext the connection is tried.
#
# Not a failure unless SECRETS_STRICT_MEMORY=1: copies of the passwords left in
# the memory of the logged-in process (read from /proc/PID/mem) are counted and
# shown.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_init secrets
: "${TRASLOCO:?TRASLOCO must point to the trasloco binary (make check sets it)}"
command -v strace >/dev/null || it_skip "strace is not installed"

U=mario.rossi@azienda.test
SRC_PW='Sekr3t "src" \Q7 è'
DST_PW='Sekr3t-dst-K2vp4'
FAKE_PW='Sekr3t-fake-Z8tu1'   # the logged-in process looked at through /proc
CSV_U=(anna@azienda.test bruno@azienda.test)
CSV_PW=('Sekr3t,csv;"anna" 1' 'Sekr3t-csv-bruno-2')
CSV_DST_PW=('Sekr3t-csvdst-anna-3' '')  # bruno: the destination password is the same
ALL_PW=("$SRC_PW" "$DST_PW" "$FAKE_PW" "${CSV_PW[@]}" "${CSV_DST_PW[0]}")
enc() { printf '%s' "$1" | sed 's/%/%25/g; s/ /%20/g'; }
it_dovecot_start src "USERS=$U:$(enc "$SRC_PW") ${CSV_U[0]}:$(enc "${CSV_PW[0]}") ${CSV_U[1]}:$(enc "${CSV_PW[1]}")"
it_dovecot_start dst "USERS=$U:$(enc "$DST_PW") ${CSV_U[0]}:$(enc "${CSV_DST_PW[0]}") ${CSV_U[1]}:$(enc "${CSV_PW[1]}")"
IMAP_PASSWORD=$SRC_PW it_imaptool --port "$SRC_IMAPS_PORT" --tls implicit --ca "$IT_CA" \
    --tls-name "$IT_TLS_NAME" --user "$U" populate --seed 4 --profile small >&2
for i in 0 1; do
    IMAP_PASSWORD=${CSV_PW[$i]} it_imaptool --port "$SRC_IMAPS_PORT" --tls implicit --ca "$IT_CA" \
        --tls-name "$IT_TLS_NAME" --user "${CSV_U[$i]}" populate --seed $((5 + i)) --profile small >&2
done

IN=$IT_DIR/in    # what the test writes
TR=$IT_DIR/tr    # what trasloco writes (state, logs, reports), nothing else
mkdir -p "$IN" "$TR"
chmod 0700 "$IN"
problems=()
problem() { problems+=("$*"); it_log "PROBLEM: $*"; }
N=0
common=(--src "$IT_HOST:$SRC_IMAPS_PORT" --src-tls implicit --src-tls-name "$IT_TLS_NAME"
    --dst "$IT_HOST:$DST_IMAPS_PORT" --dst-tls implicit --dst-tls-name "$IT_TLS_NAME"
    --ca-file "$IT_CA" --timeout 20)
# run_tr CMD ARGS...: run trasloco, output in $IT_DIR/out.N ($OUT), exit status in $RC
run_tr() {
    N=$((N + 1))
    OUT=$IT_DIR/out.$N
    set +e
    timeout -k 5 50 "$TRASLOCO" "$@" > "$OUT" 2>&1
    RC=$?
    set -e
    it_log "trasloco $* -> exit $RC"
    sed 's/^/    | /' "$OUT" >&2
}

# the password files, private
umask 077
printf '%s\n' "$SRC_PW" > "$IN/src.pw"
printf '%s\n' "$DST_PW" > "$IN/dst.pw"
csvq() { printf '"%s"' "$(printf '%s' "$1" | sed 's/"/""/g')"; }
{
    printf 'Email,Password,dst_password\r\n'
    for i in 0 1; do
        printf '%s,%s,%s\r\n' "$(csvq "${CSV_U[$i]}")" "$(csvq "${CSV_PW[$i]}")" "$(csvq "${CSV_DST_PW[$i]}")"
    done
} > "$IN/accounts.csv"
# from here on trasloco must make its files private itself
umask 022

# ---- 1. passwords from the environment, --debug
TRASLOCO_SRC_PASSWORD=$SRC_PW TRASLOCO_DST_PASSWORD=$DST_PW \
    run_tr migrate "${common[@]}" --user "$U" --state "$TR/state-env" --debug
[[ $RC == 0 ]] || problem "migrate with passwords from the environment: exit $RC"
grep -q 'readable by other' "$OUT" && problem "a warning about readable files where there is none"

# ---- 2. passwords from private files
run_tr migrate "${common[@]}" --user "$U" --state "$TR/state-files" \
    --src-password-file "$IN/src.pw" --dst-password-file "$IN/dst.pw"
[[ $RC == 0 ]] || problem "migrate with password files: exit $RC"
grep -q 'readable by other' "$OUT" && problem "a warning about private password files"

# ---- 3. password files readable by others: a warning naming each
chmod 0644 "$IN/src.pw" "$IN/dst.pw"
run_tr migrate "${common[@]}" --user "$U" --state "$TR/state-files" \
    --src-password-file "$IN/src.pw" --dst-password-file "$IN/dst.pw"
[[ $RC == 0 ]] || problem "migrate with readable password files: exit $RC"
for f in src.pw dst.pw; do
    grep -q "$IN/$f.*readable by other\|readable by other.*$IN/$f" "$OUT" ||
        problem "no warning that $IN/$f is readable by other users"
done
chmod 0600 "$IN/src.pw" "$IN/dst.pw"

# ---- 4. a CSV, private: reports, per-account logs in a directory trasloco creates
run_tr run "$IN/accounts.csv" "${common[@]}" --state "$TR/state-csv" --log-dir "$TR/logs" \
    --report "$TR/report.json" --report-csv "$TR/report.csv" --debug
[[ $RC == 0 ]] || problem "run with a CSV: exit $RC"
grep -q 'readable by other' "$OUT" && problem "a warning about a private CSV"
for u in "${CSV_U[@]}"; do
    [[ -s $TR/logs/$u.log ]] || problem "no per-account log for $u in $TR/logs"
done
# ... readable by others: a warning naming it
chmod 0644 "$IN/accounts.csv"
run_tr run "$IN/accounts.csv" "${common[@]}" --state "$TR/state-csv" --log-dir "$TR/logs" \
    --report "$TR/report2.json"
grep -q "accounts.csv.*readable by other\|readable by other.*accounts.csv" "$OUT" ||
    problem "no warning that the CSV $IN/accounts.csv is readable by other users"
chmod 0600 "$IN/accounts.csv"

# ---- 5. a logged-in trasloco, seen from /proc: a fake source that logs in and
# then never answers, a real destination; passwords from the environment
FAKEIMAP_PASSWORD=$FAKE_PW "$IT_PYTHON" "$IT_LIBDIR/fakeimap.py" --scenario stall-after-login \
    --user "$U" --port-file "$IT_DIR/fake.port" --log "$IT_DIR/fake.log" \
    </dev/null >"$IT_DIR/fake.out" 2>&1 &
fake_pid=$!
it_at_exit "kill $fake_pid 2>/dev/null || true"
for ((i = 0; i < 200; i++)); do [[ -s $IT_DIR/fake.port ]] && break; sleep 0.05; done
fake_port=$(cat "$IT_DIR/fake.port")
N=$((N + 1))
OUT=$IT_DIR/out.$N
dst_log_lines=$(wc -l < "$DST_DIR/dovecot.log")
TRASLOCO_SRC_PASSWORD=$FAKE_PW TRASLOCO_DST_PASSWORD=$DST_PW "$TRASLOCO" migrate \
    --src "$IT_HOST:$fake_port" --src-tls none \
    --dst "$IT_HOST:$DST_IMAPS_PORT" --dst-tls implicit --dst-tls-name "$IT_TLS_NAME" \
    --ca-file "$IT_CA" --user "$U" --state "$TR/state-proc" --timeout 15 --retries 1 \
    > "$OUT" 2>&1 &
tpid=$!
it_at_exit "kill $tpid 2>/dev/null || true"
# logged in on both sides: the fake saw its LOGIN succeed, Dovecot logged the login
for ((i = 0; i < 200; i++)); do
    grep -q 'Logged in' "$IT_DIR/fake.log" 2>/dev/null &&
        tail -n +"$((dst_log_lines + 1))" "$DST_DIR/dovecot.log" | grep -q "Login: user=<$U>" && break
    sleep 0.05
done
((i < 200)) || problem "/proc check: trasloco did not log in on both sides within 10 s"
sleep 0.3
if [[ -d /proc/$tpid ]]; then
    tr '\0' ' ' < "/proc/$tpid/cmdline" > "$IT_DIR/proc.cmdline"
    cat "/proc/$tpid/environ" > "$IT_DIR/proc.environ"
    for f in /proc/"$tpid"/task/*/environ; do cat "$f"; done >> "$IT_DIR/proc.environ" 2>/dev/null || true
    for p in "$FAKE_PW" "$DST_PW"; do
        grep -qF -- "$p" "$IT_DIR/proc.cmdline" && problem "a password is in /proc/PID/cmdline"
        grep -qaF -- "$p" "$IT_DIR/proc.environ" &&
            problem "a password is still in /proc/PID/environ after trasloco read it (the environment block must be wiped, not just unset)"
    done
    grep -qa 'TRASLOCO_SRC_PASSWORD=' "$IT_DIR/proc.environ" &&
        it_log "note: /proc/PID/environ still shows the name TRASLOCO_SRC_PASSWORD= (value wiped)"
    # memory: every readable mapping of the process
    "$IT_PYTHON" - "$tpid" "$FAKE_PW" "$DST_PW" > "$IT_DIR/proc.mem" 2>&1 <<'PY' || true
import re, sys
pid, pws = sys.argv[1], [p.encode() for p in sys.argv[2:]]
hits = {p: [] for p in pws}
with open("/proc/%s/maps" % pid) as maps, open("/proc/%s/mem" % pid, "rb", 0) as mem:
    for line in maps:
        m = re.match(r"([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)", line)
        lo, hi, perms, name = int(m.group(1), 16), int(m.group(2), 16), m.group(3), m.group(4)
        # (mappings above 1 GB are AddressSanitizer's shadow memory: nothing of ours)
        if "r" not in perms or name in ("[vvar]", "[vsyscall]") or hi - lo > 1 << 30:
            continue
        tail, pos, step = b"", lo, 16 << 20
        while pos < hi:
            try:
                mem.seek(pos)
                chunk = mem.read(min(step, hi - pos))
            except (OSError, ValueError, OverflowError):
                break
            data = tail + chunk
            for p in pws:
                for k in re.finditer(re.escape(p), data):
                    hits[p].append("%x %s" % (pos - len(tail) + k.start(), name or "[anon]"))
            tail = chunk[-64:]
            pos += len(chunk)
for i, p in enumerate(pws):
    print("password %d: %d cop%s in memory%s" % (i, len(hits[p]), "y" if len(hits[p]) == 1 else "ies",
          (": " + ", ".join(hits[p][:8])) if hits[p] else ""))
PY
    sed 's/^/    memory| /' "$IT_DIR/proc.mem" >&2
    if [[ ${SECRETS_STRICT_MEMORY:-0} == 1 ]] && grep -q ' [1-9][0-9]* cop' "$IT_DIR/proc.mem"; then
        problem "passwords still in the memory of the logged-in process: $(tr '\n' ' ' < "$IT_DIR/proc.mem")"
    fi
else
    problem "/proc check: trasloco exited before it could be looked at: $(cat "$OUT")"
fi
kill -TERM "$tpid" 2>/dev/null || true
set +e
wait "$tpid"
rc=$?
set -e
it_log "logged-in trasloco stopped with SIGTERM -> exit $rc"
sed 's/^/    | /' "$OUT" >&2
[[ $rc == 5 ]] || problem "SIGTERM while waiting for the source: exit $rc, expected 5"

# ---- 6. no password anywhere trasloco wrote or printed, in any form
"$IT_PYTHON" - "$TR" "$IT_DIR" "$U" "${ALL_PW[@]}" > "$IT_DIR/leaks" <<'PY' || true
import base64, os, sys
tr, itdir, user, pws = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
users = [user, "anna@azienda.test", "bruno@azienda.test", ""]
forms = {}
for p in pws:
    if not p:
        continue
    b = p.encode()
    forms[b] = "as is"
    forms[b.replace(b"\\", b"\\\\").replace(b'"', b'\\"')] = "IMAP-quoted"
    for u in users:
        for authz in ("", u):
            tok = base64.b64encode(authz.encode() + b"\0" + u.encode() + b"\0" + b)
            forms[tok] = "in a SASL PLAIN token"
    forms[base64.b64encode(b)] = "base64"
files = []
for root, dirs, names in os.walk(tr):
    files += [os.path.join(root, n) for n in names]
files += [os.path.join(itdir, n) for n in os.listdir(itdir) if n.startswith(("out.", "proc."))]
for f in sorted(files):
    try:
        data = open(f, "rb").read()
    except OSError as e:
        print("unreadable %s: %s" % (f, e))
        continue
    for form, how in forms.items():
        if form in data:
            print("LEAK %s: a password %s" % (f, how))
PY
while IFS= read -r line; do problem "$line"; done < <(grep '^LEAK' "$IT_DIR/leaks")
grep -q '^unreadable' "$IT_DIR/leaks" && problem "$(grep '^unreadable' "$IT_DIR/leaks" | head -n 1)"

# ---- 7. private files: 0600, directories 0700 (umask was 022)
while IFS= read -r -d '' f; do
    mode=$(stat -c %a "$f")
    if [[ -d $f ]]; then
        [[ $mode == 700 ]] || problem "directory $f is mode $mode, not 700"
    else
        [[ $mode == 600 ]] || problem "file $f is mode $mode, not 600"
    fi
done < <(find "$TR" -mindepth 1 -print0)
nfiles=$(find "$TR" -type f | wc -l)
((nfiles >= 6)) || problem "only $nfiles files under $TR: the test looked at too little"
it_log "checked $nfiles files trasloco wrote: $(find "$TR" -type f -printf '%P ' | head -c 600)"

# ---- 8. passwords on the command line: refused, never echoed
V='Sekr3t-cli-V4lue'
for a in "--password $V" "--password=$V" "--src-password=$V" "--dst-password $V" \
    "--src-pass=$V" "--passw=$V" "--dst-passwd=$V"; do
    read -r -a argv <<<"$a"
    run_tr migrate --src "$IT_HOST:1" --dst "$IT_HOST:2" --user "$U" "${argv[@]}"
    [[ $RC == 2 ]] || problem "'$a': exit $RC, expected 2 (usage error)"
    grep -qF -- "$V" "$OUT" && problem "'$a': the value is echoed in the error message: $(head -n 1 "$OUT")"
done

# ---- 9. plaintext to a non-loopback host: usage error before any connection
TEST_NET=192.0.2.1
strace_run() { # NAME ARGS...: trasloco under strace -f -e connect; $RC, $OUT, $TRACE
    local name=$1
    shift
    TRACE=$IT_DIR/strace.$name
    N=$((N + 1))
    OUT=$IT_DIR/out.$N
    set +e
    # LeakSanitizer cannot work under ptrace: off for these runs (a no-op without ASan)
    ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 \
        TRASLOCO_SRC_PASSWORD=x timeout -k 2 10 strace -f -qq -e trace=connect -o "$TRACE" \
        "$TRASLOCO" "$@" > "$OUT" 2>&1
    RC=$?
    set -e
    it_log "strace trasloco $* -> exit $RC"
    sed 's/^/    | /' "$OUT" >&2
}
strace_run src-none migrate --src "$TEST_NET:143" --src-tls none --dst "$IT_HOST:$DST_IMAPS_PORT" \
    --user "$U" --state "$TR/state-none" --timeout 2
[[ $RC == 2 ]] || problem "--src-tls none to $TEST_NET: exit $RC, expected 2"
grep -q 'allow-plaintext' "$OUT" || problem "--src-tls none to $TEST_NET: the error does not say --allow-plaintext"
grep -q 'connect(' "$TRACE" && problem "--src-tls none to $TEST_NET: connect() called before the usage error: $(grep 'connect(' "$TRACE" | head -n 2 | tr '\n' ' ')"
strace_run dst-none migrate --src "$IT_HOST:$SRC_IMAPS_PORT" --dst "$TEST_NET" --dst-tls none \
    --user "$U" --state "$TR/state-none" --timeout 2
[[ $RC == 2 ]] || problem "--dst-tls none to $TEST_NET: exit $RC, expected 2"
grep -q 'connect(' "$TRACE" && problem "--dst-tls none to $TEST_NET: connect() called before the usage error"
cat > "$IN/plain.job" <<EOF
accounts = accounts.csv
src = $TEST_NET:143
src-tls = none
dst = $IT_HOST:$DST_IMAPS_PORT
state = $TR/state-none
EOF
strace_run job-none run "$IN/plain.job" --timeout 2
[[ $RC == 2 ]] || problem "a job file with src-tls = none to $TEST_NET: exit $RC, expected 2"
grep -q 'connect(' "$TRACE" && problem "a job file with src-tls = none to $TEST_NET: connect() called before the usage error"
# with --allow-plaintext the option check passes and a connection is tried
strace_run allowed migrate --src "$TEST_NET:143" --src-tls none --allow-plaintext \
    --dst "$IT_HOST:$DST_IMAPS_PORT" --user "$U" --state "$TR/state-none" --timeout 2 --retries 1
[[ $RC == 2 ]] && problem "--allow-plaintext did not lift the usage error: $(head -n 1 "$OUT")"
grep -q "connect(.*$TEST_NET" "$TRACE" || problem "--allow-plaintext: no connection to $TEST_NET was tried"
rm -rf "$TR/state-none"   # made (or not) by the runs above; not part of the mode check

if ((${#problems[@]})); then
    printf '  - %s\n' "${problems[@]}" >&2
    it_fail "${#problems[@]} problem(s), listed above"
fi
it_pass
