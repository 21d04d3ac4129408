#!/bin/bash
# trasloco run over a CSV of 22 accounts: several accounts at once under caps
# that the servers' own session counts must never see exceeded
# (mail_max_userip_connections is set just above the per-account cap, and
# sessions are sampled while the job runs); two wrong passwords fail those
# accounts alone; a bad CSV row is reported with its line; JSON/CSV reports,
# a log per account, private files, and no password anywhere.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_init batch
: "${TRASLOCO:?}"

# 22 accounts: 20 that must go through and 2 whose CSV password is wrong.
# Passwords with a comma, quotes and spaces at both ends (CSV-quoted).
declare -A PW=(
    [anna@azienda.test]='anna, "pw"'
    [bruno@azienda.test]=' bruno pw '
)
for i in $(seq -w 1 18); do PW[u$i@azienda.test]="pw-$i;x"; done
PW[elena@azienda.test]='elena-pw'
PW[fabio@azienda.test]='fabio-pw'
users=""
for u in "${!PW[@]}"; do
    users+="$u:$(printf '%s' "${PW[$u]}" | sed 's/%/%25/g; s/ /%20/g') "
done
it_dovecot_start src "USERS=$users" MAX_CONN=3
it_dovecot_start dst "USERS=$users" MAX_CONN=3 SPECIAL_USE=yes

good=(anna@azienda.test bruno@azienda.test)
for i in $(seq -w 1 18); do good+=("u$i@azienda.test"); done
for u in "${!PW[@]}"; do
    profile=small
    [[ $u == anna@* || $u == bruno@* ]] && profile=standard
    IMAP_PASSWORD=${PW[$u]} it_imaptool --port "$SRC_IMAPS_PORT" --tls implicit \
        --ca "$IT_CA" --tls-name "$IT_TLS_NAME" --user "$u" populate --seed 5 \
        --profile "$profile" >/dev/null
done

csv=$IT_DIR/accounts.csv
csvq() { printf '"%s"' "$(printf '%s' "$1" | sed 's/"/""/g')"; }
{
    printf '\xef\xbb\xbfEmail,Password\r\n'                       # line 1
    for u in "${good[@]}"; do                                    # lines 2-21
        printf '%s,%s\r\n' "$(csvq "$u")" "$(csvq "${PW[$u]}")"
    done
    printf 'elena@azienda.test,not-her-password\r\n'             # line 22
    printf 'not-an-email,whatever\r\n'                           # line 23
    printf '"u07@azienda.test","pw-07;x"\r\n'                    # line 24
    printf '\r\n'                                                 # line 25
    printf 'fabio@azienda.test,"not his, either"\r\n'            # line 26
} > "$csv"
chmod 600 "$csv"

# Sample the servers' own session counts while the job runs.
samples=$IT_DIR/samples
sampler() {
    while :; do
        for side in src dst; do
            it_doveadm "$side" who -1 2>/dev/null | awk -v s="$side" \
                'NR > 1 && $2 == "imap" { n[$1]++; t++ }
                 END { for (u in n) print s, u, n[u]; print s, "TOTAL", t + 0 }'
        done >> "$samples"
        sleep 0.05
    done
}
sampler &
sampler_pid=$!
it_at_exit "kill $sampler_pid 2>/dev/null || true"

run() {
    set +e
    "$TRASLOCO" run "$csv" \
        --src "$IT_HOST:$SRC_IMAPS_PORT" --src-tls implicit --src-tls-name "$IT_TLS_NAME" \
        --dst "$IT_HOST:$DST_IMAPS_PORT" --dst-tls implicit --dst-tls-name "$IT_TLS_NAME" \
        --ca-file "$IT_CA" --state "$IT_DIR/state" --parallel-accounts 4 \
        --src-max-per-account 2 --dst-max-per-account 2 --src-max-connections 7 \
        --dst-max-connections 7 --batch-count 20 --timeout 20 \
        --report "$IT_DIR/report.json" --report-csv "$IT_DIR/report.csv" "$@" \
        > "$IT_DIR/run.out" 2>&1
    RC=$?
    set -e
    sed 's/^/    | /' "$IT_DIR/run.out" >&2
}
run
kill "$sampler_pid" 2>/dev/null || true
wait "$sampler_pid" 2>/dev/null || true
[[ $RC == 1 ]] || it_fail "expected exit 1 (two accounts failed, bad rows), got $RC"

# Never above the caps, by the servers' own count.
max_user=$(awk '$2 != "TOTAL" && $3 > m { m = $3 } END { print m + 0 }' "$samples")
max_src=$(awk '$1 == "src" && $2 == "TOTAL" && $3 > m { m = $3 } END { print m + 0 }' "$samples")
max_dst=$(awk '$1 == "dst" && $2 == "TOTAL" && $3 > m { m = $3 } END { print m + 0 }' "$samples")
it_log "sessions seen: per account at most $max_user, source total $max_src, destination total $max_dst ($(wc -l < "$samples") samples)"
((max_user <= 2)) || it_fail "an account had $max_user sessions (cap 2)"
((max_src <= 7 && max_dst <= 7)) || it_fail "more than 7 sessions on a server"
((max_src >= 4)) || it_fail "the sampler saw few parallel sessions: it proves little"
((max_src >= 2)) || it_fail "the sampler saw no parallel sessions: it proves nothing"
if grep -q 'Maximum number of connections' "$SRC_DIR/dovecot.log" "$DST_DIR/dovecot.log"; then
    it_fail "a server refused a session for too many connections"
fi

# The report says what happened to each account.
/usr/bin/python3 - "$IT_DIR/report.json" "${good[@]}" <<'PY' || it_fail "report.json is not what it should be"
import json, sys
r = json.load(open(sys.argv[1]))
good = sys.argv[2:]
acc = {a["email"]: a for a in r["accounts"]}
assert sorted(acc) == sorted(good + ["elena@azienda.test", "fabio@azienda.test"]), sorted(acc)
for u in good:
    a = acc[u]
    assert a["status"] == "ok" and a["error"] is None, a
    assert a["messages_copied"] > 0 and a["messages_failed"] == 0, a
    for k in ("folders", "messages_present", "bytes", "seconds"):
        assert k in a, k
for u in ("elena@azienda.test", "fabio@azienda.test"):
    e = acc[u]
    assert e["status"] == "failed" and e["error_kind"] == "auth", e
    assert "AUTHENTICATIONFAILED" in e["error"] and u in e["error"], e
bad = r["job"]["skipped_rows"]
assert any(s.startswith("line 23:") for s in bad), bad
assert any(s.startswith("line 24:") and "duplicate" in s for s in bad), bad
assert len(bad) == 2, bad
assert r["totals"]["ok"] == 20 and r["totals"]["failed"] == 2, r["totals"]
PY
head -1 "$IT_DIR/report.csv" | grep -q '^email,status,error,folders,messages_copied' ||
    it_fail "report.csv has no header"
[[ $(grep -c '"ok"' "$IT_DIR/report.csv") == 20 ]] || it_fail "report.csv: expected 20 ok rows"

for u in "${good[@]}"; do
    IMAP_PASSWORD=${PW[$u]} it_imaptool --port "$SRC_IMAPS_PORT" --tls implicit --ca "$IT_CA" \
        --tls-name "$IT_TLS_NAME" --user "$u" compare --dst-port "$DST_IMAPS_PORT" \
        --dst-tls implicit --dst-ca "$IT_CA" --dst-tls-name "$IT_TLS_NAME" --dst-user "$u" \
        --check-subscriptions >&2 || it_fail "$u differs"
    log=$IT_DIR/state/logs/$u.log
    [[ -s $log ]] || it_fail "no log for $u"
done
grep -q 'AUTHENTICATIONFAILED' "$IT_DIR/state/logs/elena@azienda.test.log" ||
    it_fail "elena's log does not say why"

# Private files, and no password in any of them or in the output.
for f in "$IT_DIR/state/state.db" "$IT_DIR/report.json" "$IT_DIR/report.csv" \
    "$IT_DIR"/state/logs/*.log; do
    [[ $(stat -c %a "$f") == 600 ]] || it_fail "$f is not private"
done
for u in "${!PW[@]}"; do
    p=${PW[$u]}
    if grep -rqF -- "$p" "$IT_DIR/state" "$IT_DIR/report.json" "$IT_DIR/report.csv" \
        "$IT_DIR/run.out"; then
        it_fail "the password of $u appears in trasloco's files or output"
    fi
done
grep -q 'not-her-password\|not his, either' "$IT_DIR/run.out" "$IT_DIR/report.json" &&
    it_fail "a wrong password leaked"

# Again: nothing new for the twenty, the same failures for the two.
run
[[ $RC == 1 ]] || it_fail "second run: expected exit 1, got $RC"
[[ $(grep -c '0 of [0-9]* folder(s) changed' "$IT_DIR/run.out") == 20 ]] ||
    it_fail "second run should find nothing to do for the twenty accounts"
grep -q '20 ok, 0 partial, 2 failed' "$IT_DIR/run.out" || it_fail "second run: wrong totals"
it_pass
