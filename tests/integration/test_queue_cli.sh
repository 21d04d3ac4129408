#!/usr/bin/env bash
# `trasloco queue` through the real binary against a throwaway PostgreSQL:
# init (tables, a key file created 0600, again: nothing changed), submit (a job
# file and its CSV written here: paths stored absolute, report/state not kept,
# skipped rows shown), status for people and --json (checked with python3),
# retry (--failed and all), cancel, pass (kinds, intervals, after a final
# pass), account (one account as JSON), rekey with a rotated key file, delete
# (rows gone).  The DSN: positional, $TRASLOCO_QUEUE, --queue-file (refused when
# others may read it); one with a password on argv is refused without being
# echoed.  No password of the CSV, the admin's or the database's in any output,
# nor in pg_dump of the database.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pg.sh"
it_init queue-cli
it_pg_start
: "${TRASLOCO:?TRASLOCO must point to the trasloco binary (make check sets it)}"

PW=('Sekr3t-anna-Q1x' 'Sekr3t "bruno" 2\' 'Sekr3t-carla-3z')
DST_PW='Sekr3t-dst-bruno-4k'
ADMIN_PW='Sekr3t-admin-5m'
ALL_PW=("${PW[@]}" "$DST_PW" "$ADMIN_PW" "$IT_PG_PASSWORD")
OUT=$IT_DIR/out
mkdir -p "$OUT" "$IT_DIR/work/jobs"
K=$IT_DIR/keys/queue.key
n=0

# q NAME ARGS...: run trasloco, its output kept as $OUT/NAME.{out,err}, exit status in $rc
q() {
    local name=$1
    shift
    rc=0
    "$TRASLOCO" "$@" >"$OUT/$name.out" 2>"$OUT/$name.err" || rc=$?
    n=$((n + 1))
}
expect() { # expect RC NAME: the last q's status
    [[ $rc == "$1" ]] || it_fail "$2: exit $rc, not $1: $(cat "$OUT/$2.err" "$OUT/$2.out")"
}
has() { # has NAME.{out,err} TEXT
    grep -qF -- "$2" "$OUT/$1" || it_fail "$1 lacks \"$2\": $(cat "$OUT/$1")"
}
psql1() { it_pg_psql "$1"; }

cd "$IT_DIR/work"
cat >jobs/acme.job <<EOF
src = 127.0.0.1:1993
src-tls-name = mail.test
dst = 127.0.0.1:2993
ca-file = ca.pem
accounts = acme.csv
report = acme.json
src-max-per-account = 2
src-max-connections = 6
dst-admin = admin@new.test
dst-admin-password-file = admin.pw
EOF
{
    printf 'email,password,dst_password\n'
    printf 'anna@x.test,%s,\n' "${PW[0]}"
    printf 'bruno@x.test,"%s",%s\n' "${PW[1]//\"/\"\"}" "$DST_PW"
    printf 'carla@x.test,%s,\n' "${PW[2]}"
    printf 'not-an-address,whatever,\n'
} >jobs/acme.csv
printf '%s\n' "$ADMIN_PW" >jobs/admin.pw
chmod 600 jobs/acme.csv jobs/admin.pw

# ---- the DSN -------------------------------------------------------------------
with_pw="postgresql://trasloco:$IT_PG_PASSWORD@127.0.0.1:$IT_PG_PORT/trasloco"
q dsn-pw queue status "$with_pw"
expect 2 dsn-pw
has dsn-pw.err PGPASSFILE
q dsn-pw2 queue status "postgresql://127.0.0.1:$IT_PG_PORT/trasloco?password=$IT_PG_PASSWORD"
expect 2 dsn-pw2
rc=0
env -u TRASLOCO_QUEUE "$TRASLOCO" queue status >"$OUT/no-dsn.out" 2>"$OUT/no-dsn.err" || rc=$?
expect 2 no-dsn
has no-dsn.err TRASLOCO_QUEUE
q not-init queue status "$IT_PG_DSN"
expect 2 not-init
has not-init.err "queue init"
q bad-cmd queue frobnicate "$IT_PG_DSN"
expect 2 bad-cmd

# ---- init ----------------------------------------------------------------------
q init queue init "$IT_PG_DSN" --key-file "$K"
expect 0 init
has init.out "tables created"
has init.out "created (mode 0600)"
[[ $(stat -c %a "$K") == 600 ]] || it_fail "key file mode $(stat -c %a "$K")"
[[ $(stat -c %a "$(dirname "$K")") == 700 ]] || it_fail "key directory not 0700"
sum=$(sha256sum <"$K")
q init2 queue init "$IT_PG_DSN" --key-file "$K"
expect 0 init2
has init2.out "already"
has init2.out "kept"
[[ $(sha256sum <"$K") == "$sum" ]] || it_fail "a second init changed the key file"
export TRASLOCO_QUEUE_KEY_FILE=$K

# ---- submit --------------------------------------------------------------------
chmod 604 "$K"   # others may read it (group read alone is taken, see test_seal)
q open-key queue submit "$IT_PG_DSN" jobs/acme.job
expect 2 open-key
has open-key.err "chmod 600"
chmod 600 "$K"
q submit queue submit "$IT_PG_DSN" jobs/acme.job
expect 0 submit
has submit.out "job 1: 3 account(s) queued"
has submit.out "line 5"
has submit.err "report is not kept"
cfg=$(psql1 "SELECT config FROM q_jobs WHERE id = 1")
grep -qxF "ca-file = $IT_DIR/work/jobs/ca.pem" <<<"$cfg" || it_fail "ca-file not absolute: $cfg"
grep -qE '^(accounts|report|state|dst-admin-password-file) ' <<<"$cfg" &&
    it_fail "settings a queued job does not keep are stored: $cfg"
grep -qxF "dst-admin = admin@new.test" <<<"$cfg" || it_fail "dst-admin lost: $cfg"
[[ $(psql1 "SELECT name FROM q_jobs WHERE id = 1") == acme ]] || it_fail "name"
[[ $(psql1 "SELECT max_per_account || '/' || max_total FROM q_caps WHERE side = 'src'") == 2/6 ]] ||
    it_fail "caps not stored"
q submit2 queue submit "$IT_PG_DSN" jobs/acme.job --name other
expect 0 submit2
has submit2.out "job 2:"
it_pg_dump >"$OUT/dump-submitted.sql"

# ---- status, by every form of the DSN ---------------------------------------------
rc=0
TRASLOCO_QUEUE=$IT_PG_DSN "$TRASLOCO" queue status >"$OUT/status.out" 2>"$OUT/status.err" || rc=$?
expect 0 status
has status.out 'job 1 "acme": queued'
has status.out "3 pending, 0 running, 0 ok"
has status.out "source 0 of 6 (2 per account)"
has status.out 'job 2 "other": queued'
# a DSN holding a password is fine in the environment and in a file
rc=0
TRASLOCO_QUEUE=$with_pw "$TRASLOCO" queue status acme >"$OUT/status-env.out" \
    2>"$OUT/status-env.err" || rc=$?
expect 0 status-env
has status-env.out "anna@x.test  pending"
has status-env.out "skipped line 5"
printf '%s\n' "$with_pw" >"$IT_DIR/dsn"
chmod 644 "$IT_DIR/dsn"
q qfile-open queue status --queue-file "$IT_DIR/dsn"
expect 2 qfile-open
has qfile-open.err "chmod 600"
chmod 600 "$IT_DIR/dsn"
q status-json queue status --queue-file "$IT_DIR/dsn" --json
expect 0 status-json
"$IT_PYTHON" - "$OUT/status-json.out" <<'EOF' || it_fail "status --json: $(cat "$OUT/status-json.out")"
import json, sys
d = json.load(open(sys.argv[1]))
j = d["jobs"]
assert len(j) == 2, j
a = j[0]
assert (a["id"], a["name"], a["state"]) == (1, "acme", "queued"), a
assert a["accounts"] == {"pending": 3, "running": 0, "ok": 0, "partial": 0, "failed": 0,
                         "cancelled": 0, "total": 3}, a["accounts"]
assert a["sessions"]["src"] == {"in_use": 0, "cap": 6, "per_account": 2,
                                "limit_refusals": 0}, a["sessions"]
assert a["errors"] == {} and a["limit_refusals"] == 0, a
assert a["skipped"][0]["line"] == 5, a["skipped"]
assert "account_list" not in a
EOF

# ---- retry, cancel -------------------------------------------------------------------
psql1 "UPDATE q_accounts SET state = CASE email WHEN 'anna@x.test'::bytea THEN 'ok'
       WHEN 'bruno@x.test'::bytea THEN 'failed' ELSE 'partial' END, error = 'boom',
       worker = 'w1' WHERE job_id = 1"
q status-acme queue status "$IT_PG_DSN" 1 --json
expect 0 status-acme
"$IT_PYTHON" - "$OUT/status-acme.out" <<'EOF' || it_fail "status 1 --json: $(cat "$OUT/status-acme.out")"
import json, sys
j = json.load(open(sys.argv[1]))["jobs"]
assert len(j) == 1 and j[0]["state"] == "partial", j
acc = {a["email"]: a for a in j[0]["account_list"]}
assert acc["bruno@x.test"]["state"] == "failed" and acc["bruno@x.test"]["error"] == "boom", acc
assert acc["anna@x.test"]["worker"] == "w1", acc
EOF
q retry-failed queue retry "$IT_PG_DSN" acme --failed
expect 0 retry-failed
has retry-failed.out "job 1: 2 account(s) pending again"
[[ $(psql1 "SELECT count(*) FROM q_accounts WHERE job_id = 1 AND state = 'pending'") == 2 ]] ||
    it_fail "retry --failed"
q cancel queue cancel "$IT_PG_DSN" acme
expect 0 cancel
has cancel.out "job 1 cancelled"
q status-cancelled queue status "$IT_PG_DSN" --json
"$IT_PYTHON" - "$OUT/status-cancelled.out" <<'EOF' || it_fail "status after cancel: $(cat "$OUT/status-cancelled.out")"
import json, sys
j = json.load(open(sys.argv[1]))["jobs"][0]
assert j["state"] == "cancelled" and j["accounts"]["cancelled"] == 2, j
EOF
q retry-all queue retry "$IT_PG_DSN" 1
expect 0 retry-all
has retry-all.out "3 account(s) pending again"
q retry-none queue retry "$IT_PG_DSN" no-such-job
expect 2 retry-none
q retry-usage queue retry "$IT_PG_DSN"
expect 2 retry-usage

# ---- passes and one account's detail ------------------------------------------------
q pass-none queue pass "$IT_PG_DSN" other --kind delta
expect 0 pass-none
has pass-none.out "no delta pass: no account has finished"
q pass-every queue pass "$IT_PG_DSN" other --every 6h
expect 0 pass-every
has pass-every.out "a delta pass every 6h"
q pass-bad-every queue pass "$IT_PG_DSN" other --every 6x
expect 2 pass-bad-every
has pass-bad-every.err "not an interval"
q pass-bad-kind queue pass "$IT_PG_DSN" other --kind bogus
expect 2 pass-bad-kind
q pass-nothing queue pass "$IT_PG_DSN" other
expect 2 pass-nothing
q pass-verify-every queue pass "$IT_PG_DSN" other --kind verify --every 1h
expect 2 pass-verify-every
q kind-elsewhere queue retry "$IT_PG_DSN" other --kind delta
expect 2 kind-elsewhere
q status-passes queue status "$IT_PG_DSN" other
expect 0 status-passes
has status-passes.out "passes: 1 so far, the latest run; delta every 6h 00m, next at"
q status-passes-json queue status "$IT_PG_DSN" other --json
"$IT_PYTHON" - "$OUT/status-passes-json.out" <<'EOF' || it_fail "passes in status --json: $(cat "$OUT/status-passes-json.out")"
import json, sys
p = json.load(open(sys.argv[1]))["jobs"][0]["passes"]
assert p["current"] == "run" and p["count"] == 1 and p["every_seconds"] == 21600, p
assert p["next_at"].endswith("Z") and p["final"] is False and p["finished"] is False, p
EOF
q pass-final queue pass "$IT_PG_DSN" other --kind final
expect 0 pass-final
has pass-final.out "final pass asked for 3 account(s)"
q pass-after-final queue pass "$IT_PG_DSN" other --kind delta
expect 2 pass-after-final
has pass-after-final.err "had its final pass"
q account queue account "$IT_PG_DSN" other bruno@x.test
expect 0 account
"$IT_PYTHON" - "$OUT/account.out" <<'EOF' || it_fail "queue account: $(cat "$OUT/account.out")"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["email"] == "bruno@x.test" and d["status"] == "pending" and d["pass"] == "final", d
assert d["folders"] == [] and d["failures"] == [] and d["verify"] is None, d
EOF
q account-none queue account "$IT_PG_DSN" other nobody@x.test
expect 2 account-none
has account-none.err 'no account "nobody@x.test"'
q account-usage queue account "$IT_PG_DSN" other
expect 2 account-usage

# ---- rekey with a rotated key file ------------------------------------------------
old=$(grep -v '^#' "$K")
new="rot2 $("$IT_PYTHON" -c 'import secrets; print(secrets.token_hex(32))')"
printf '%s\n%s\n' "$new" "$old" >"$K"
q rekey queue rekey "$IT_PG_DSN"
expect 0 rekey
has rekey.out "10 password(s) sealed again"      # two jobs: 3 + 1 dst + 1 admin each
[[ $(psql1 "SELECT count(*) FROM q_accounts WHERE substring(password from 5 for 4) = 'rot2'::bytea") == 6 ]] ||
    it_fail "rekey did not seal with the new key"
printf '%s\n' "$new" >"$K"
q rekey2 queue rekey "$IT_PG_DSN"
expect 0 rekey2
printf '%s\n' "$old" >"$K"
q rekey-old queue rekey "$IT_PG_DSN"
expect 6 rekey-old
has rekey-old.err "not in the key file"

# ---- delete ------------------------------------------------------------------------
q delete queue delete "$IT_PG_DSN" acme
expect 0 delete
has delete.out "job 1 deleted"
[[ $(psql1 "SELECT count(*) FROM q_accounts WHERE job_id = 1") == 0 ]] || it_fail "accounts left"
[[ $(psql1 "SELECT count(*) FROM q_caps WHERE job_id = 1") == 0 ]] || it_fail "caps left"
[[ $(psql1 "SELECT count(*) FROM q_jobs") == 1 ]] || it_fail "the other job went too"
it_pg_dump >"$OUT/dump-end.sql"

# ---- no password anywhere ----------------------------------------------------------
hexof() { printf '%s' "$1" | od -An -tx1 | tr -d ' \n'; }
for pw in "${ALL_PW[@]}"; do
    for f in "$OUT"/*; do
        if grep -qF -- "$pw" "$f" || grep -qiF -- "$(hexof "$pw")" "$f"; then
            it_fail "a password in $(basename "$f")"
        fi
    done
done
it_pass "$n commands"
