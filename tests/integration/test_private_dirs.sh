#!/bin/bash
# The state and log directories are private, and the state's schema has a version.
# A state directory that is a symbolic link, is writable by its group or others, or
# belongs to another user (as root only) is refused with a message saying what to
# change, and nothing is written into it; so is a state.db that is a symbolic link
# (its target is left intact).  A log directory that is a symbolic link draws a
# warning, the run goes on and no log is written through the link.  A state written
# by a newer trasloco (higher schema version) is refused untouched; one of schema
# version 1 (as releases before versions were checked wrote it) is upgraded and the
# re-run copies nothing twice.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_init private_dirs
. "$(dirname "$0")/common.sh"
it_pair
it_imaptool --port "$SRC_IMAPS_PORT" --tls implicit --ca "$IT_CA" --tls-name "$IT_TLS_NAME" \
    --user "$U" append --folder INBOX --count 5 --seed 3 >/dev/null

# A directory trasloco refuses: exit 6, the reason in the output, nothing written.
refused() {  # DIR REGEX
    tr_migrate --state "$1"
    tr_expect_rc 6
    tr_expect_out "$2"
}

# ---- the state directory
mkdir -m 0700 "$IT_DIR/real"
ln -s real "$IT_DIR/link"
refused "$IT_DIR/link" "state directory $IT_DIR/link is a symbolic link"
[[ -z $(ls -A "$IT_DIR/real") ]] || it_fail "trasloco wrote through the link"

mkdir "$IT_DIR/shared"
chmod 0775 "$IT_DIR/shared"
refused "$IT_DIR/shared" "is writable by its group \(mode 0775\).*chmod 700 $IT_DIR/shared"
[[ -z $(ls -A "$IT_DIR/shared") ]] || it_fail "trasloco wrote into a group-writable directory"
[[ $(stat -c %a "$IT_DIR/shared") == 775 ]] || it_fail "the directory's mode was changed"

if [[ $(id -u) == 0 ]]; then
    mkdir -m 0700 "$IT_DIR/theirs"
    chown 65534:65534 "$IT_DIR/theirs"
    refused "$IT_DIR/theirs" "belongs to uid 65534, not to the user running trasloco \(uid 0\)"
fi

mkdir -m 0700 "$IT_DIR/dbl"
printf 'precious\n' > "$IT_DIR/victim"
ln -s ../victim "$IT_DIR/dbl/state.db"
refused "$IT_DIR/dbl" "dbl/state.db is a symbolic link"
[[ $(cat "$IT_DIR/victim") == precious ]] || it_fail "the link's target was changed"

# ---- a good one, then the schema versions
tr_migrate
tr_expect_rc 0
tr_compare
db=$IT_DIR/state/state.db
[[ $(stat -c %a "$IT_DIR/state") == 700 && $(stat -c %a "$db") == 600 ]] ||
    it_fail "the state is not private"
sql() { "$IT_PYTHON" -c 'import sqlite3, sys
c = sqlite3.connect(sys.argv[1]); r = c.execute(sys.argv[2]).fetchall(); c.commit()
print("\n".join(str(x[0]) for x in r))' "$db" "$1"; }
current=$(sql "SELECT value FROM meta WHERE key = 'schema'")
[[ $current -ge 2 ]] || it_fail "schema version $current written"

sql "UPDATE meta SET value = '99' WHERE key = 'schema'" >/dev/null
refused "$IT_DIR/state" "has schema version 99, and this trasloco knows versions up to $current.*upgrade trasloco"
[[ $(sql "SELECT value FROM meta WHERE key = 'schema'") == 99 ]] || it_fail "a newer state was changed"

# What a release before versions were checked left: version 1, maybe without the index.
sql "UPDATE meta SET value = '1' WHERE key = 'schema'" >/dev/null
sql "DROP INDEX messages_unsettled" >/dev/null
tr_migrate
tr_expect_rc 0
tr_expect_out "upgraded from schema version 1 to $current"
tr_expect_out "0 copied"
[[ $(sql "SELECT value FROM meta WHERE key = 'schema'") == "$current" ]] || it_fail "not upgraded"
[[ $(sql "SELECT count(*) FROM sqlite_master WHERE name = 'messages_unsettled'") == 1 ]] ||
    it_fail "the upgrade did not add the index"
tr_compare

# ---- the log directory
printf '%s,"%s"\n' "$U" "${PW//\"/\"\"}" > "$IT_DIR/acc.csv"
mkdir -m 0700 "$IT_DIR/reallogs"
ln -s reallogs "$IT_DIR/loglink"
TR_N=$((TR_N + 1))
TR_OUT=$IT_DIR/out.$TR_N
set +e
"$TRASLOCO" run "$IT_DIR/acc.csv" --src "$IT_HOST:$SRC_IMAPS_PORT" --src-tls implicit \
    --src-tls-name "$IT_TLS_NAME" --dst "$IT_HOST:$DST_IMAPS_PORT" --dst-tls implicit \
    --dst-tls-name "$IT_TLS_NAME" --ca-file "$IT_CA" --state "$IT_DIR/state" \
    --log-dir "$IT_DIR/loglink" --no-progress > "$TR_OUT" 2>&1
TR_RC=$?
set -e
sed 's/^/    | /' "$TR_OUT" >&2
tr_expect_rc 0
tr_expect_out "log directory $IT_DIR/loglink is a symbolic link.*no per-account logs"
[[ -z $(ls -A "$IT_DIR/reallogs") ]] || it_fail "a log was written through the link"
tr_compare
it_pass
