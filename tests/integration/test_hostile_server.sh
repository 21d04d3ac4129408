#!/bin/bash
# Hostile servers: fakeimap.py (a scripted IMAP server of the tests' own, plain
# TCP on 127.0.0.1) as the SOURCE, a real Dovecot as the destination -- and two
# scenarios the other way round (a Dovecot source into a fake destination that
# announces UIDPLUS and then sends no APPENDUID, or a wrong one).  Scenarios
# (fakeimap.py --list): a greeting that never comes, '* BYE' as greeting, NO
# [UNAVAILABLE] to LOGIN, a {4000000000} literal followed by EOF or by silence,
# truncated and malformed responses, a tagged reply with an unknown status,
# unsolicited EXISTS / RECENT / FETCH without UID / FETCH of an unknown UID /
# ALERT in the middle of every FETCH, an unsolicited flag update carrying the UID
# of the message just sent, '* BYE' in the middle of a FETCH (once, and
# always), CONDSTORE and LITERAL+ announced and not honoured, a strict server
# that refuses 8-bit characters in quoted strings (with a non-ASCII password:
# RFC 3501 wants a literal there), a 511-character
# header field name, 4294967295 EXISTS, odd LIST entries, a message silently left
# out of a FETCH, BINARY announced and then refused / answered with junk / answered
# with a ~{4000000000} literal8 and EOF (a message with a stray 0x80 makes
# trasloco ask for BINARY[]: a refusal, junk or a broken session must leave the
# BODY[] copy exact, with a warning), BAD to a FETCH in an empty folder,
# LOGINDISABLED without AUTH=PLAIN (no password may be sent: a TLS-kind error, exit
# 4), bytes injected after the OK to STARTTLS (refused before any TLS, exit 4), a
# folder name holding CR LF and a command (it must travel as a literal, with
# LITERAL+ or synchronizing: nothing injected, the folder copied), a LIST with a
# 300 MB literal (refused when announced, memory stays small) and a LIST of
# 130 MB of lines (refused at 16 MB), and a metadata FETCH response carrying a 100 MB
# ENVELOPE literal for one message (refused when announced: that message is
# reported, the others copied).
#
# For every scenario: no crash (no signal, no core file, no sanitizer report), no
# hang (done well within the bound set by --timeout 3 --retries 2), and either
#   exit 0 and an exact copy (rawmail.py verify against an honest fake serving the
#   same corpus), or
#   exit 1 and every message not copied reported with its UID and reason, the rest
#   exact, or
#   exit 2-6 with an error that names the server (127.0.0.1:PORT), and nothing
#   wrong on the destination (no extra, altered or half-copied message).
# Some scenarios allow less: "ok", "unsolicited" and "unsolicited-uid" must copy (RFC 3501 says a
# client must accept unsolicited responses), so must "strict-quoted" (a
# non-ASCII password is legal) and "dst-no-appenduid" (UIDPLUS is an
# optimisation: without APPENDUID the copy still works); NO [UNAVAILABLE] is not a wrong
# password (not exit 3), the huge-literal scenarios must not make trasloco's
# memory follow the announced size (peak RSS < HOSTILE_SERVER_MAX_RSS_KB, default
# 100000, and, under strace, no single mmap/mremap above 512 MB: an untouched
# 4 GB allocation does not show in the RSS).  The table's rss_kB column shows
# "RSS/largest mapping in MB" for those.
# The scenarios run in parallel; HOSTILE_SCENARIOS="a b" runs only those.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_init hostile-server
: "${TRASLOCO:?TRASLOCO must point to the trasloco binary (make check sets it)}"
[[ -x /usr/bin/time ]] || it_skip "/usr/bin/time (Debian package time) is not installed"
MAX_RSS_KB=${HOSTILE_SERVER_MAX_RSS_KB:-100000}
# AddressSanitizer's shadow memory and quarantine make the RSS meaningless
# (grep without -q: it reads all of ldd's output; with -q, ldd could die of SIGPIPE
# and pipefail would then say "no ASan")
if ldd "$TRASLOCO" 2>/dev/null | grep libasan >/dev/null; then
    it_log "trasloco is built with AddressSanitizer: no RSS limit"
    MAX_RSS_KB=999999999
fi
HANG_S=30   # --timeout 3, --retries 2: anything longer is a hang

src_scenarios=(ok no-greeting bye-greeting login-unavailable huge-literal-body
    huge-literal-header huge-literal-stall truncated malformed malformed-tagged unsolicited unsolicited-uid
    bye-mid-fetch bye-always fake-condstore fake-literal-plus strict-quoted long-header-name huge-exists
    bad-list body-missing binary-refused binary-garbage binary-huge empty-bad
    logindisabled starttls-inject list-crlf list-crlf-sync huge-list-literal huge-list-lines
    huge-fetch-envelope)
dst_scenarios=(dst-no-appenduid dst-bad-appenduid)
if [[ -n ${HOSTILE_SCENARIOS:-} ]]; then
    read -r -a want <<<"$HOSTILE_SCENARIOS"
    keep() { local s w; for s in "$@"; do for w in "${want[@]}"; do [[ $s == "$w" ]] && echo "$s"; done; done; }
    mapfile -t src_scenarios < <(keep "${src_scenarios[@]}")
    mapfile -t dst_scenarios < <(keep "${dst_scenarios[@]}")
fi

PW_ASCII='hostile-Pw.1'
PW_UTF8='pässwörd-ü'   # sent as a literal: LITERAL+ matters
pw_of() { [[ $1 == fake-literal-plus || $1 == strict-quoted ]] && printf '%s' "$PW_UTF8" || printf '%s' "$PW_ASCII"; }
users=""
for s in "${src_scenarios[@]}" "${dst_scenarios[@]}" verify; do
    users+="$s@example.test:$(pw_of "$s") "
done
it_dovecot_start dst "USERS=$users" MAX_CONN=40
if ((${#dst_scenarios[@]})); then
    it_dovecot_start src "USERS=$users"
fi

# one fake server per scenario, plus an honest one to check the copies against
fakes=()
start_fake() { # NAME SCENARIO ROLE USER PASSWORD -> $IT_DIR/fake.NAME.port
    local name=$1 i
    FAKEIMAP_PASSWORD=$5 "$IT_PYTHON" "$IT_LIBDIR/fakeimap.py" --scenario "$2" --role "$3" \
        --user "$4" --port-file "$IT_DIR/fake.$name.port" --log "$IT_DIR/fake.$name.log" \
        </dev/null >"$IT_DIR/fake.$name.out" 2>&1 &
    fakes+=("$!")
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
start_fake honest ok src verify@example.test "$PW_ASCII"
for s in "${src_scenarios[@]}"; do start_fake "$s" "$s" src "$s@example.test" "$(pw_of "$s")"; done
for s in "${dst_scenarios[@]}"; do start_fake "$s" "$s" dst "$s@example.test" "$(pw_of "$s")"; done
HONEST_PORT=$(wait_fake honest)

for s in "${dst_scenarios[@]}"; do
    IMAP_PASSWORD=$(pw_of "$s") it_imaptool --port "$SRC_IMAPS_PORT" --tls implicit --ca "$IT_CA" \
        --tls-name "$IT_TLS_NAME" --user "$s@example.test" populate --seed 9 --profile small >&2
done

# run_one NAME SIDE-ARGS... : one trasloco run in $IT_DIR/sc/NAME (its cwd, for cores)
run_one() {
    local name=$1 d=$IT_DIR/sc/$1 t0 rc
    shift
    mkdir -p "$d"
    (umask 077; pw_of "$name" > "$d/pw")
    t0=$(date +%s%N)
    set +e
    (
        cd "$d"
        ulimit -c unlimited
        trace=()
        # memory asked of the kernel, whether touched (RSS) or not
        # (LeakSanitizer cannot work under ptrace: off for those runs, a no-op without ASan)
        if [[ $name == huge-* || $name == binary-huge ]] && command -v strace >/dev/null; then
            # shellcheck disable=SC2054 # commas belong to strace's -e argument
            trace=(strace -f -qq -o "$d/mmap.trace" -e trace=mmap,mremap)
            export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0
        fi
        # libetpan's leak of a "* BYE" greeting is suppressed by its frames
        # (tests/lsan.supp); libetpan keeps no frame pointers, so only the
        # slow unwinder sees them every time (a no-op without ASan)
        if [[ $name == bye-* ]]; then
            export LSAN_OPTIONS=${LSAN_OPTIONS:+$LSAN_OPTIONS:}fast_unwind_on_malloc=0
        fi
        exec timeout -k 5 50 /usr/bin/time -v -o "$d/time" "${trace[@]}" "$TRASLOCO" migrate "$@" \
            --user "$name@example.test" --src-password-file "$d/pw" --state "$d/state" \
            --timeout 3 --retries 2 --no-progress
    ) > "$d/out" 2>&1
    rc=$?
    set -e
    echo "$rc" > "$d/rc"
    echo "$((($(date +%s%N) - t0) / 1000000))" > "$d/elapsed"
}
dst_tls=(--dst "$IT_HOST:$DST_IMAPS_PORT" --dst-tls implicit --dst-tls-name "$IT_TLS_NAME"
    --ca-file "$IT_CA")
# At most HOSTILE_PARALLEL runs at once: 34 sanitized runs doing TLS with the real
# destination at the same time on a 2-core machine starved handshakes past
# --timeout 3 (a loaded machine, not a defect under test).
HOSTILE_PARALLEL=${HOSTILE_PARALLEL:-8}
pids=()
running=()
throttle() {
    local p alive
    while ((${#running[@]} >= HOSTILE_PARALLEL)); do
        wait -n "${running[@]}" || true
        alive=()
        for p in "${running[@]}"; do kill -0 "$p" 2>/dev/null && alive+=("$p"); done
        running=("${alive[@]}")
    done
}
for s in "${src_scenarios[@]}"; do
    throttle
    port=$(wait_fake "$s")
    src_tls=(--src-tls none)
    [[ $s == starttls-inject ]] && src_tls=(--src-tls starttls --src-tls-name "$IT_TLS_NAME")
    run_one "$s" --src "$IT_HOST:$port" "${src_tls[@]}" "${dst_tls[@]}" &
    pids+=("$!")
    running+=("$!")
done
for s in "${dst_scenarios[@]}"; do
    throttle
    port=$(wait_fake "$s")
    run_one "$s" --src "$IT_HOST:$SRC_IMAPS_PORT" --src-tls implicit --src-tls-name "$IT_TLS_NAME" \
        --ca-file "$IT_CA" --dst "$IT_HOST:$port" --dst-tls none &
    pids+=("$!")
    running+=("$!")
done
for p in "${pids[@]}"; do wait "$p" || true; done

# verify NAME OUT: rawmail verify of the scenario's copy (honest source -> its destination)
verify() {
    local s=$1 out=$2
    if [[ " ${dst_scenarios[*]} " == *" $s "* ]]; then
        IMAP_PASSWORD=$(pw_of "$s") "$IT_PYTHON" "$IT_LIBDIR/rawmail.py" verify \
            --port "$SRC_IMAPS_PORT" --tls implicit --ca "$IT_CA" --tls-name "$IT_TLS_NAME" \
            --user "$s@example.test" --dst-port "$(cat "$IT_DIR/fake.$s.port")" --dst-tls none \
            --trasloco-output "$IT_DIR/sc/$s/out" > "$out" 2>&1 || true
    else
        IMAP_PASSWORD=$PW_ASCII DST_PW=$(pw_of "$s") "$IT_PYTHON" "$IT_LIBDIR/rawmail.py" verify \
            --port "$HONEST_PORT" --user verify@example.test \
            --dst-port "$DST_IMAPS_PORT" --dst-tls implicit --dst-ca "$IT_CA" \
            --dst-tls-name "$IT_TLS_NAME" --dst-user "$s@example.test" --dst-password-env DST_PW \
            --trasloco-output "$IT_DIR/sc/$s/out" > "$out" 2>&1 || true
    fi
}

problems=()
problem() { problems+=("$1: $2"); }
table=$IT_DIR/table
printf '%-20s %4s %7s %12s  %s\n' scenario exit seconds rss_kB outcome > "$table"
for s in "${src_scenarios[@]}" "${dst_scenarios[@]}"; do
    d=$IT_DIR/sc/$s
    rc=$(cat "$d/rc")
    el_ms=$(cat "$d/elapsed")
    el=$((el_ms / 1000)).$((el_ms % 1000 / 100))
    rss=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$d/time" 2>/dev/null)
    rss=${rss:-0}
    port=$(cat "$IT_DIR/fake.$s.port")
    outcome=""
    sig=$(grep -o 'Command terminated by signal [0-9]*' "$d/time" 2>/dev/null || true)
    if [[ -n $sig ]] || ((rc >= 124)); then
        problem "$s" "trasloco died: exit $rc ${sig:+($sig)}$( ((rc == 124)) && echo ' (killed by timeout 50: a hang)')"
        outcome="CRASH/HANG"
    fi
    if compgen -G "$d/core*" >/dev/null; then
        problem "$s" "core dump: $(ls "$d"/core*)"
        outcome="CORE"
    fi
    if grep -Eq 'AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|runtime error:|stack smashing|\*\*\* .*terminated|double free|corrupted' "$d/out"; then
        problem "$s" "memory error: $(grep -Em 3 'AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|runtime error:|stack smashing|terminated|double free|corrupted' "$d/out" | tr '\n' ' ')"
        outcome="MEMORY-ERROR"
    fi
    if ((el_ms > HANG_S * 1000)); then
        problem "$s" "took ${el} s with --timeout 3 --retries 2: hangs beyond its timeout"
    fi
    if [[ -s $d/mmap.trace ]]; then
        big=$(grep -v MAP_NORESERVE "$d/mmap.trace" | awk '/ mmap\(/ { split($0, a, ", "); n = a[2] + 0 } / mremap\(/ { split($0, a, ", "); n = a[3] + 0 }
                   n > m { m = n } END { printf "%.0f\n", m }')
        if ((big > 512 * 1024 * 1024)); then
            problem "$s" "trasloco asked the kernel for $big bytes at once (mmap/mremap): it allocates what the server announces"
        fi
        rss="$rss/$((big / 1048576))M"
    fi
    limit=$MAX_RSS_KB
    # a reply of LIST lines up to the bound (16 MB) is parsed before it is refused:
    # libetpan's structures take several times its size
    [[ $s == huge-list-lines ]] && limit=$((MAX_RSS_KB * 2))
    if ((${rss%%/*} > limit)); then
        problem "$s" "peak RSS ${rss} kB (limit $limit kB): memory follows what the server announces"
    fi
    if [[ -z $outcome ]]; then
        verify "$s" "$d/verify"
        vsum=$(tail -n 1 "$d/verify")
        case $rc in
        0)
            outcome="copied"
            if [[ $s == body-missing ]]; then   # see below: UID 2 may be taken for expunged
                grep -q ' missing=1 extra=0 flags=0 dates=0 altered=0 false_reports=0 missing_folders=0' <<<"$vsum" &&
                    grep -q '^MISSING INBOX UID 2 ' "$d/verify" ||
                    problem "$s" "exit 0 and more than the left-out message differs: $(grep -v '^refused' "$d/verify" | tr '\n' ' ')"
            elif grep -q 'result=ok' <<<"$vsum" && grep -q ' refused=0 ' <<<"$vsum"; then
                :
            else
                problem "$s" "exit 0 but the copy is not exact: $(grep -v '^refused' "$d/verify" | tr '\n' ' ')"
            fi
            ;;
        1)
            outcome="partial, reported"
            grep -q 'result=ok' <<<"$vsum" ||
                problem "$s" "exit 1 but not every missing message is reported, or something differs: $(grep -v '^refused' "$d/verify" | tr '\n' ' ')"
            ;;
        [2-6])
            outcome="error"
            grep -q -- "$IT_HOST:$port" "$d/out" ||
                problem "$s" "exit $rc without naming the server $IT_HOST:$port"
            if grep -Eq '^(EXTRA|ALTERED|FLAGS|DATE|FALSE-REPORT|rawmail)' "$d/verify"; then
                problem "$s" "exit $rc and the destination holds wrong messages: $(grep -E '^(EXTRA|ALTERED|FLAGS|DATE|FALSE-REPORT|rawmail)' "$d/verify" | tr '\n' ' ')"
            fi
            ;;
        *) problem "$s" "exit status $rc is none of the documented ones" ;;
        esac
    fi
    # the summary's numbers must add up: copied + present + failed (+ expunged) is
    # the number of source messages (at most that when a whole folder failed)
    nsrc=$(grep -o 'verify: folders=[0-9]* messages=[0-9]*' "$d/verify" 2>/dev/null | sed 's/.*messages=//' || true)
    counts=$(grep -Eo 'messages: [0-9]+ copied, [0-9]+ already present, [0-9]+ failed(, [0-9]+ expunged)?' "$d/out" | tail -n 1 || true)
    [[ $s == list-crlf* && -n $nsrc ]] && nsrc=$((nsrc + 1))   # its own folder holds one more
    if [[ -n $nsrc && -n $counts ]]; then
        read -r c_cop c_pre c_fail c_exp < <(sed -E 's/messages: ([0-9]+) copied, ([0-9]+) already present, ([0-9]+) failed(, ([0-9]+) expunged)?/\1 \2 \3 \5/' <<<"$counts")
        sum=$((c_cop + c_pre + c_fail + ${c_exp:-0}))
        if ((sum > nsrc)) || { ((sum != nsrc)) && ! grep -q '^  folder ".*" failed:' "$d/out" && ((rc <= 1)); }; then
            problem "$s" "the summary does not add up: \"$counts\" for $nsrc source message(s)"
        fi
    fi
    # what each scenario allows beyond the general rule
    flog=$IT_DIR/fake.$s.log
    case $s in
    ok | unsolicited | unsolicited-uid | dst-no-appenduid | strict-quoted | binary-refused | binary-garbage | empty-bad)
        [[ $rc == 0 ]] || problem "$s" "must copy (exit 0), got exit $rc: $(grep -Ei 'error|fail' "$d/out" | head -n 3 | tr '\n' ' ')"
        ;;
    logindisabled)
        # RFC 3501 6.2.3: not LOGIN, not a PLAIN the server did not offer
        ! grep -q '!!' "$flog" || problem "$s" "a password was sent: $(grep '!!' "$flog" | head -n 1)"
        [[ $rc == 4 ]] && grep -q "127.0.0.1:$port announces LOGINDISABLED" "$d/out" ||
            problem "$s" "expected exit 4 and an error naming LOGINDISABLED and the server, got exit $rc"
        ;;
    starttls-inject)
        grep -Eq "C: b'[0-9]+ (LOGIN|AUTHENTICATE)" "$flog" &&
            problem "$s" "a login went to a server whose STARTTLS answer carried injected bytes"
        [[ $rc == 4 ]] && grep -q 'after its answer to STARTTLS, before the TLS handshake' "$d/out" ||
            problem "$s" "expected exit 4 and an error about the bytes after STARTTLS, got exit $rc: $(grep -i starttls "$d/out" | head -n 1)"
        ;;
    list-crlf | list-crlf-sync)
        [[ $rc == 0 ]] || problem "$s" "must copy (exit 0), got exit $rc: $(grep -Ei 'error|fail' "$d/out" | head -n 3 | tr '\n' ' ')"
        ! grep -q 'INJECTED' "$flog" ||
            problem "$s" "a folder name with CR LF was sent as a quoted string: $(grep -m 1 INJECTED "$flog")"
        grep -q "EXAMINE {" "$flog" || problem "$s" "the folder with CR LF in its name was not opened (as a literal)"
        ;;
    huge-list-literal | huge-list-lines)
        grep -q "127.0.0.1:$port: reply to [A-Z]*: the server's LIST response takes it over 16 MB" "$d/out" ||
            problem "$s" "no clear error for the LIST response over its bound (exit $rc)"
        ;;
    huge-fetch-envelope)
        [[ $rc == 1 ]] && grep -q 'INBOX: UID 2 not copied' "$d/out" ||
            problem "$s" "expected exit 1 with UID 2 reported (its FETCH response is over the bound), got exit $rc"
        ;;
    login-unavailable)
        [[ $rc != 3 ]] || problem "$s" "NO [UNAVAILABLE] taken for a wrong password (exit 3): it is a temporary failure (RFC 5530)"
        grep -q 'UNAVAILABLE' "$d/out" || problem "$s" "the server's reply (NO [UNAVAILABLE] ...) is not shown"
        ;;
    bye-greeting)
        grep -qi 'too many connections\|BYE' "$d/out" || problem "$s" "the server's BYE text is not shown"
        ;;
    binary-huge)
        # a session broken by FETCH BINARY[]: reconnect, copy as BODY[] shows it, say so
        [[ $rc == 0 ]] && grep -q 'UID 9 shows 0x80 bytes that may stand for NUL bytes; copied as' "$d/out" ||
            problem "$s" "a session broken by FETCH BINARY[]: expected the copy (exit 0) and a warning for UID 9, got exit $rc"
        ;;
    body-missing)
        # RFC 3501: a UID FETCH ignores UIDs that do not exist (any more): taking the
        # message for expunged is fair, as long as the summary says so
        if [[ $rc == 0 ]]; then
            grep -q ', 1 expunged on the source' "$d/out" ||
                problem "$s" "a message the server left out of the FETCH is neither reported nor counted as expunged"
        elif [[ $rc != 1 ]]; then
            problem "$s" "a message the server left out of the FETCH: exit $rc, expected 0 (expunged) or 1 (reported)"
        fi
        ;;
    esac
    printf '%-20s %4s %7s %12s  %s\n' "$s" "$rc" "$el" "$rss" "$outcome" >> "$table"
done

# Destination faults: a second run copies nothing more (no duplicate).
for s in "${dst_scenarios[@]}"; do
    [[ $(cat "$IT_DIR/sc/$s/rc") == 0 ]] || continue
    port=$(cat "$IT_DIR/fake.$s.port")
    mv "$IT_DIR/sc/$s/out" "$IT_DIR/sc/$s/out.1"
    run_one "$s" --src "$IT_HOST:$SRC_IMAPS_PORT" --src-tls implicit --src-tls-name "$IT_TLS_NAME" \
        --ca-file "$IT_CA" --dst "$IT_HOST:$port" --dst-tls none
    rc=$(cat "$IT_DIR/sc/$s/rc")
    [[ $rc == 0 ]] || problem "$s" "second run: exit $rc"
    grep -q ' 0 copied' "$IT_DIR/sc/$s/out" || problem "$s" "second run copied again: $(grep copied "$IT_DIR/sc/$s/out" | head -n 1)"
    verify "$s" "$IT_DIR/sc/$s/verify2"
    grep -q 'result=ok' "$IT_DIR/sc/$s/verify2" ||
        problem "$s" "second run: $(grep -v '^refused' "$IT_DIR/sc/$s/verify2" | tr '\n' ' ')"
done

cat "$table" >&2
for s in "${src_scenarios[@]}" "${dst_scenarios[@]}"; do
    printf -- '--- %s: exit %s ---\n' "$s" "$(cat "$IT_DIR/sc/$s/rc")" >&2
    grep -v '^\s*$' "$IT_DIR/sc/$s/out" | grep -Ev ' info ' | tail -n 6 | sed 's/^/    | /' >&2
done
if ((${#problems[@]})); then
    printf '  - %s\n' "${problems[@]}" >&2
    it_fail "${#problems[@]} problem(s), listed above"
fi
it_pass "${#src_scenarios[@]} source and ${#dst_scenarios[@]} destination scenarios"
