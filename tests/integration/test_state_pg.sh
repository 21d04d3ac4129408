#!/bin/bash
# The state in PostgreSQL, end to end: `trasloco migrate --state
# postgresql://...` copies an account exactly, a re-run copies nothing, the
# lock is released after; PostgreSQL restarted in the middle of a run
# leaves nothing lost or doubled once a later run finishes; a DSN with a
# password on the command line is refused without echoing it; `trasloco
# run` with a DSN state makes no log directory out of the DSN; no password
# in the database or the output.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pg.sh"
it_init state-pg
. "$IT_LIBDIR/common.sh"
it_pg_start
it_pair

# The tables: `trasloco queue init` once it is merged; until then the
# unit program's init step (pg_schema_init, the same code).
units=$(dirname "$TRASLOCO")/../tests/unit
[[ -x $units/test_state_pg ]] || it_fail "$units/test_state_pg is not built"
TRASLOCO_TEST_PG=$IT_PG_DSN "$units/test_state_pg" --init-schema ||
    it_fail "creating the schema failed"

src() { it_imaptool --port "$SRC_IMAPS_PORT" --tls implicit --ca "$IT_CA" --tls-name "$IT_TLS_NAME" --user "$U" "$@"; }
src populate --seed 7 --profile standard >&2

tr_migrate --state "$IT_PG_DSN"
tr_expect_rc 0
tr_expect_out 'copied, 0 already present, 0 failed'
tr_expect_out "state in PostgreSQL trasloco@127.0.0.1:$IT_PG_PORT/trasloco"
tr_compare
[[ -e $IT_DIR/state ]] && it_fail "a state directory was made beside the database"
n=$(it_pg_psql "SELECT count(*) FROM st_messages WHERE state = 1")
((n > 0)) || it_fail "no ledger rows in st_messages"
[[ $(it_pg_psql "SELECT count(*) FROM st_locks") == 0 ]] || it_fail "the account lease was not released"
[[ $(it_pg_psql "SELECT status FROM st_accounts") == ok ]] || it_fail "the account's status is not ok"

tr_migrate --state "$IT_PG_DSN"
tr_expect_rc 0
tr_expect_out ' 0 copied'
tr_expect_out 'nothing new'
tr_compare

# "postgres://" is the same database
src append --folder INBOX --count 3 --seed 8 >&2
tr_migrate --state "postgres://trasloco@127.0.0.1:$IT_PG_PORT/trasloco"
tr_expect_rc 0
tr_expect_out ' 3 copied'
tr_compare

# A password in the DSN on the command line: refused, not echoed.  (Not
# through tr_migrate, which logs its arguments.)
rc=0
"$TRASLOCO" migrate --src "$IT_HOST:$SRC_IMAPS_PORT" --dst "$IT_HOST:$DST_IMAPS_PORT" \
    --user "$U" --src-password-file "$IT_DIR/pw" \
    --state "postgresql://trasloco:$IT_PG_PASSWORD@127.0.0.1:$IT_PG_PORT/trasloco" \
    > "$IT_DIR/out.pw" 2>&1 || rc=$?
sed 's/^/    | /' "$IT_DIR/out.pw" >&2
((rc == 2)) || it_fail "a DSN with a password: exit $rc, not 2 (usage)"
grep -q 'PGPASSFILE' "$IT_DIR/out.pw" || it_fail "the refusal does not say what to use"
grep -qF -- "$IT_PG_PASSWORD" "$IT_DIR/out.pw" && it_fail "the database password was echoed"

# PostgreSQL restarts in the middle of a run: the run is frozen (SIGSTOP)
# once its ledger has grown, the server restarted, the run let go on: its
# state calls meet dead sessions (temporary errors; it may give up on
# folders, or reconnect and go on); the next run finishes, and the copy is
# exact: nothing lost, nothing twice.
src append --folder INBOX --count 1000 --seed 9 --size-kb 1 >&2
base=$(it_pg_psql "SELECT count(*) FROM st_messages")
set +e
"$TRASLOCO" migrate \
    --src "$IT_HOST:$SRC_IMAPS_PORT" --src-tls implicit --src-tls-name "$IT_TLS_NAME" \
    --dst "$IT_HOST:$DST_IMAPS_PORT" --dst-tls implicit --dst-tls-name "$IT_TLS_NAME" \
    --ca-file "$IT_CA" --user "$U" --src-password-file "$IT_DIR/pw" --timeout 20 \
    --state "$IT_PG_DSN" --batch-count 1 --src-max-per-account 1 --dst-max-per-account 1 \
    --no-progress > "$IT_DIR/out.restart" 2>&1 &
pid=$!
set -e
for _ in $(seq 1 600); do
    n=$(it_pg_psql "SELECT count(*) FROM st_messages")
    ((n >= base + 50)) && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
done
if kill -STOP "$pid" 2>/dev/null; then
    it_log "run frozen with $((n - base)) new ledger rows; restarting PostgreSQL"
    it_pg_restart fast
    kill -CONT "$pid"
    restarted=1
else
    it_log "the run finished before it could be frozen: no restart in the middle"
    restarted=0
fi
rc=0
wait "$pid" || rc=$?
it_log "the run during the restart exited $rc"
sed 's/^/    | /' "$IT_DIR/out.restart" >&2
if ((restarted)) && ! grep -q 'the database is unreachable' "$IT_DIR/out.restart"; then
    it_log "(the run met no dead session: it had no state call left to make)"
fi
tr_migrate --state "$IT_PG_DSN"
tr_expect_rc 0
tr_compare
tr_migrate --state "$IT_PG_DSN"
tr_expect_rc 0
tr_expect_out 'nothing new'

# `trasloco run` with the state in the database: no per-account log
# directory unless --log-dir (a DSN is no directory to put one in).
csv=$IT_DIR/accounts.csv
printf '"%s","%s"\r\n' "$U" "$(printf '%s' "$PW" | sed 's/"/""/g')" > "$csv"
chmod 600 "$csv"
set +e
(cd "$IT_DIR" && "$TRASLOCO" run "$csv" \
    --src "$IT_HOST:$SRC_IMAPS_PORT" --src-tls implicit --src-tls-name "$IT_TLS_NAME" \
    --dst "$IT_HOST:$DST_IMAPS_PORT" --dst-tls implicit --dst-tls-name "$IT_TLS_NAME" \
    --ca-file "$IT_CA" --state "$IT_PG_DSN" --timeout 20 --no-progress) > "$IT_DIR/out.run" 2>&1
rc=$?
set -e
sed 's/^/    | /' "$IT_DIR/out.run" >&2
((rc == 0)) || it_fail "trasloco run exited $rc"
grep -q 'log directory' "$IT_DIR/out.run" && it_fail "trasloco run tried a log directory made of the DSN"
[[ -e $IT_DIR/postgresql: ]] && it_fail "trasloco run made a directory out of the DSN"

# No password anywhere: the output, the database.
tr_no_secret
grep -qF -- "$PW" "$IT_DIR/out.restart" "$IT_DIR/out.run" && it_fail "the password is in the output"
it_pg_dump > "$IT_DIR/dump.sql"
grep -qF -- "$PW" "$IT_DIR/dump.sql" && it_fail "the password is in the database"
it_pass
