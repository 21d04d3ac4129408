#!/bin/bash
# Passes of a queued job, by real workers against two Dovecots and a throwaway
# PostgreSQL.  The destination refuses messages over 500 KB (as test_rejects).
#   - the first run: u1 partial (its one big message refused), u2 ok; the
#     account detail of u1 lists that message (folder, source UID, the
#     server's reply) and its folders;
#   - mail added at the source, a delta pass: exactly the new messages are
#     copied (the detail's counters; the destination compared with the source
#     message by message: nothing missing but the refused one, nothing
#     doubled);
#   - a verify pass: u2 exact, u1 not (the refused message missing, by folder
#     and UID), their states unchanged;
#   - passes every 2 s, started by the workers' heartbeat (no other daemon):
#     mail added meanwhile is copied by a scheduled pass;
#   - a final pass: a last delta, then a verify, then the job is finished and
#     nothing more is scheduled;
#   - no password in any output, nor in the database.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pg.sh"
it_init passes
: "${TRASLOCO:?}"
it_pg_start

declare -A PW
PW[u1@passes.test]='pw-one "q" 1'
PW[u2@passes.test]='pw-two, 2'
accounts=(u1@passes.test u2@passes.test)
users=""
for u in "${accounts[@]}"; do
    users+="$u:$(printf '%s' "${PW[$u]}" | sed 's/%/%25/g; s/ /%20/g') "
done
it_dovecot_start src "USERS=$users"
it_dovecot_start dst "USERS=$users" MAX_MSG_KB=500

src() { # src USER ARGS...
    local u=$1
    shift
    IMAP_PASSWORD=${PW[$u]} it_imaptool --port "$SRC_IMAPS_PORT" --tls implicit --ca "$IT_CA" \
        --tls-name "$IT_TLS_NAME" --user "$u" "$@" >/dev/null
}
# compare USER: prints imaptool's summary line (source against destination)
compare() {
    local u=$1
    IMAP_PASSWORD=${PW[$u]} it_imaptool --port "$SRC_IMAPS_PORT" --tls implicit --ca "$IT_CA" \
        --tls-name "$IT_TLS_NAME" --user "$u" compare --dst-port "$DST_IMAPS_PORT" \
        --dst-tls implicit --dst-ca "$IT_CA" --dst-tls-name "$IT_TLS_NAME" --dst-user "$u" \
        >"$IT_DIR/compare.$u" 2>&1 || true
    grep '^compare:' "$IT_DIR/compare.$u" || { cat "$IT_DIR/compare.$u" >&2; it_fail "compare of $u printed no summary"; }
}
expect_compare() { # expect_compare USER MISSING
    local line
    line=$(compare "$1")
    [[ $line == *" missing=$2 extra=0 flags=0 dates=0 "* ]] ||
        { cat "$IT_DIR/compare.$1" >&2; it_fail "$1: expected missing=$2 and nothing else: $line"; }
}

for u in "${accounts[@]}"; do
    src "$u" populate --seed 21 --profile small
done
src u1@passes.test append --folder Grandi --count 1 --seed 5 --size-kb 700   # UID 1, refused

csv=$IT_DIR/accounts.csv
{
    printf 'email,password\n'
    for u in "${accounts[@]}"; do printf '"%s","%s"\n' "$u" "${PW[$u]//\"/\"\"}"; done
} >"$csv"
chmod 600 "$csv"
cat >"$IT_DIR/mig.job" <<EOF
src = $IT_HOST:$SRC_IMAPS_PORT
src-tls = implicit
src-tls-name = $IT_TLS_NAME
dst = $IT_HOST:$DST_IMAPS_PORT
dst-tls = implicit
dst-tls-name = $IT_TLS_NAME
ca-file = $IT_CA
accounts = accounts.csv
timeout = 20
EOF
KEY=$IT_DIR/queue.key
OUT=$IT_DIR/out
mkdir -p "$OUT"
n=0
tq() { # tq NAME ARGS...: trasloco, output in $OUT/NAME.{out,err}, must succeed
    local name=$1
    shift
    n=$((n + 1))
    "$TRASLOCO" "$@" >"$OUT/$name.out" 2>"$OUT/$name.err" ||
        it_fail "trasloco $1 $2 ($name) failed: $(cat "$OUT/$name.err")"
}
drain() { # drain NAME: one worker until nothing is pending or running
    tq "$1" worker "$IT_PG_DSN" --key-file "$KEY" --parallel-accounts 2 --lease 6 --drain
}
# check NAME PYTHON: the detail of both accounts and the job's status as d1, d2, job
check() {
    tq "$1-u1" queue account "$IT_PG_DSN" mig u1@passes.test
    tq "$1-u2" queue account "$IT_PG_DSN" mig u2@passes.test
    tq "$1-status" queue status "$IT_PG_DSN" mig --json
    "$IT_PYTHON" - "$OUT/$1-u1.out" "$OUT/$1-u2.out" "$OUT/$1-status.out" <<EOF ||
import json, sys
d1, d2 = (json.load(open(f)) for f in sys.argv[1:3])
job = json.load(open(sys.argv[3]))["jobs"][0]
$2
EOF
        it_fail "$1: $(cat "$OUT/$1-u1.out" "$OUT/$1-u2.out" "$OUT/$1-status.out")"
}

tq init queue init "$IT_PG_DSN" --key-file "$KEY"
tq submit queue submit "$IT_PG_DSN" "$IT_DIR/mig.job" --key-file "$KEY"

# ---- the first run -------------------------------------------------------------
drain run
check run '
assert d1["status"] == "partial" and d2["status"] == "ok", (d1["status"], d2["status"])
assert d1["pass"] == "run" and d1["messages_failed"] == 1, d1
f = d1["failures"]
assert len(f) == 1 and d1["failures_more"] == 0, f
assert f[0]["folder"] == "Grandi" and f[0]["uid"] == 1, f
assert "[LIMIT]" in f[0]["reply"], f
g = [x for x in d1["folders"] if x["src"] == "Grandi"]
assert len(g) == 1 and g[0]["messages_failed"] == 1 and g[0]["status"] == "ok", d1["folders"]
assert sum(x["messages_copied"] for x in d1["folders"]) == d1["messages_copied"], d1
assert any(x["src"] == "INBOX" for x in d2["folders"]) and d2["failures"] == [], d2
assert d1["verify"] is None and d2["verify"] is None
assert job["state"] == "partial" and job["passes"]["current"] == "run", job
'
expect_compare u1@passes.test 1
expect_compare u2@passes.test 0
copied_u2=$("$IT_PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))["messages_copied"])' "$OUT/run-u2.out")
((copied_u2 >= 20)) || it_fail "the first run of u2 copied only $copied_u2 messages"

# ---- new mail, a delta pass ------------------------------------------------------
for u in "${accounts[@]}"; do
    src "$u" append --folder INBOX --count 4 --seed 70
    src "$u" append --folder "Nuova cartella" --count 3 --seed 71
done
tq delta queue pass "$IT_PG_DSN" mig --kind delta
grep -q 'delta pass of 2 account(s) queued' "$OUT/delta.out" || it_fail "delta: $(cat "$OUT/delta.out")"
drain delta-run
check delta '
for d in (d1, d2):
    assert d["pass"] == "delta" and d["messages_copied"] == 7, (d["email"], d["messages_copied"])
    inbox = [x for x in d["folders"] if x["src"] == "INBOX"][0]
    new = [x for x in d["folders"] if x["src"] == "Nuova cartella"][0]
    assert inbox["messages_copied"] == 4 and new["messages_copied"] == 3, d["folders"]
assert d1["status"] == "partial" and d1["messages_failed"] == 1, d1
assert d1["failures"][0]["uid"] == 1, d1["failures"]
assert d2["status"] == "ok" and d2["messages_failed"] == 0, d2
assert job["passes"]["current"] == "delta" and job["passes"]["count"] == 2, job["passes"]
'
expect_compare u1@passes.test 1
expect_compare u2@passes.test 0

# ---- a verify pass ---------------------------------------------------------------
tq verify queue pass "$IT_PG_DSN" mig --kind verify
drain verify-run
check verify '
v1, v2 = d1["verify"], d2["verify"]
assert v2["exact"] is True and v2["missing"] == 0 and v2["error"] is None, v2
assert v2["found"] == v2["source_messages"] and v2["at"].endswith("Z"), v2
assert v1["exact"] is False and v1["missing"] == 1, v1
m = v1["missing_messages"]
assert len(m) == 1 and m[0]["folder"] == "Grandi" and m[0]["uid"] == 1, m
# a verify leaves the state and the counters of the last copy
assert d1["status"] == "partial" and d2["status"] == "ok", (d1["status"], d2["status"])
assert d1["messages_copied"] == 7 and d2["messages_copied"] == 7
assert d1["failures"][0]["uid"] == 1
assert job["passes"]["current"] == "verify" and job["passes"]["count"] == 3, job["passes"]
ls = {a["email"]: a for a in job["account_list"]}
assert ls["u2@passes.test"]["verify_exact"] is True and ls["u1@passes.test"]["verify_exact"] is False
'

# ---- passes on a schedule, started by a worker's heartbeat -----------------------------
tq every queue pass "$IT_PG_DSN" mig --every 2s
"$TRASLOCO" worker "$IT_PG_DSN" --key-file "$KEY" --parallel-accounts 2 --lease 6 \
    >"$OUT/sched-worker.out" 2>&1 &
wpid=$!
it_at_exit "kill $wpid 2>/dev/null || true"
passes() { it_pg_psql "SELECT pass_count FROM q_jobs" 2>/dev/null || echo 0; }
before=$(passes)
for ((i = 0; i < 600; i++)); do
    (($(passes) > before)) && break
    sleep 0.1
done
(($(passes) > before)) || it_fail "no scheduled pass started within 60 s: $(cat "$OUT/sched-worker.out")"
for u in "${accounts[@]}"; do src "$u" append --folder INBOX --count 2 --seed 72; done
copied_new() { # the messages of seed 72 are on both destinations
    local u
    for u in "${accounts[@]}"; do
        IMAP_PASSWORD=${PW[$u]} it_imaptool --port "$DST_IMAPS_PORT" --tls implicit --ca "$IT_CA" \
            --tls-name "$IT_TLS_NAME" --user "$u" count --folder INBOX 2>/dev/null |
            grep -q "^$1\$" || return 1
    done
}
inbox_src=$(IMAP_PASSWORD=${PW[u2@passes.test]} it_imaptool --port "$SRC_IMAPS_PORT" --tls implicit \
    --ca "$IT_CA" --tls-name "$IT_TLS_NAME" --user u2@passes.test count --folder INBOX)
for ((i = 0; i < 600; i++)); do
    copied_new "$inbox_src" && break
    sleep 0.1
done
copied_new "$inbox_src" || it_fail "mail added was not copied by a scheduled pass within 60 s"
tq every-off queue pass "$IT_PG_DSN" mig --every off
# let the passes under way end, then stop the worker (it gives back what it runs)
for ((i = 0; i < 600; i++)); do
    [[ $(it_pg_psql "SELECT count(*) FROM q_accounts WHERE state IN ('pending', 'running')") == 0 ]] && break
    sleep 0.1
done
kill -TERM "$wpid"
wait "$wpid" || true
grep -q 'scheduled delta pass started' "$OUT/sched-worker.out" ||
    it_fail "the worker did not say it started a scheduled pass"
scheduled=$(($(passes) - before))
expect_compare u1@passes.test 1
expect_compare u2@passes.test 0

# ---- the final pass -------------------------------------------------------------
for u in "${accounts[@]}"; do src "$u" append --folder INBOX --count 1 --seed 73; done
tq final queue pass "$IT_PG_DSN" mig --kind final
drain final-run
check final '
assert job["passes"]["current"] == "final" and job["passes"]["finished"] is True, job["passes"]
assert job["passes"]["next_at"] is None, job["passes"]
for d in (d1, d2):
    assert d["pass"] == "final-verify" and d["messages_copied"] == 1, (d["email"], d["pass"], d["messages_copied"])
assert d2["verify"]["exact"] is True and d1["verify"]["exact"] is False, (d1["verify"], d2["verify"])
assert d1["status"] == "partial" and d2["status"] == "ok"
'
expect_compare u1@passes.test 1
expect_compare u2@passes.test 0
rc=0
"$TRASLOCO" queue pass "$IT_PG_DSN" mig --kind delta >"$OUT/after-final.out" 2>&1 || rc=$?
((rc == 2)) || it_fail "a delta after the final pass: exit $rc"
tq status-text queue status "$IT_PG_DSN" mig
grep -q 'finished (final pass done)' "$OUT/status-text.out" ||
    it_fail "status: $(cat "$OUT/status-text.out")"

# ---- no password anywhere --------------------------------------------------------
it_pg_dump >"$OUT/dump.sql"
for u in "${accounts[@]}"; do
    for f in "$OUT"/* "$IT_PG_DIR"/postgres.log; do
        grep -qF -- "${PW[$u]}" "$f" && it_fail "the password of $u appears in $f"
    done
done
it_pass "$n commands; a delta pass copied exactly the new mail, verify exact where it should be, $scheduled scheduled pass(es), final pass finished the job"
