# shellcheck shell=bash
# tests/integration/pg.sh: a throwaway PostgreSQL for the fleet's tests.
#
# Source it after lib.sh and it_init:
#     . "$(dirname "$0")/lib.sh"; . "$(dirname "$0")/pg.sh"
#     it_init my-test
#     it_pg_start            # initdb + start; exports IT_PG_DSN, IT_PG_PORT, PGPASSFILE
#     ...
#
# Functions
# ---------
# it_pg_start
#     initdb into a private directory (as the system user postgres when run as root:
#     PostgreSQL refuses to run as root; that directory is then postgres's, 0700),
#     listening on 127.0.0.1 on a reserved high port only (no unix socket but one in
#     that directory), SCRAM password authentication for TCP, fsync on.  Creates the
#     role trasloco (a random password, written into a private PGPASSFILE that is
#     exported: the DSN holds no password, as trasloco wants) and its database
#     trasloco.  Exports IT_PG_DSN (postgresql://trasloco@127.0.0.1:PORT/trasloco),
#     IT_PG_PORT, IT_PG_PASSWORD, PGPASSFILE.  Stopped (immediate) at exit.
#     Skips (77) when PostgreSQL's server binaries are not installed.
# it_pg_stop [MODE]       pg_ctl stop -m MODE (default fast)
# it_pg_restart [MODE]    stop (default fast) and start again on the same port
# it_pg_psql SQL          run SQL as trasloco in its database; prints unaligned rows
# it_pg_dump              pg_dump of the database (data only, plain), to stdout

_it_pg_bin() {
    local d
    for d in /usr/lib/postgresql/*/bin; do
        [[ -x $d/initdb ]] && { printf '%s\n' "$d"; return 0; }
    done
    return 1
}

_it_pg_as() {
    if [[ $IT_UID == 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

it_pg_start() {
    local bin pw
    bin=$(_it_pg_bin) || it_skip "PostgreSQL server binaries not installed (Debian's postgresql-15)"
    IT_PG_BIN=$bin
    if [[ $IT_UID == 0 ]]; then
        id postgres >/dev/null 2>&1 || it_skip "no system user postgres"
    fi
    # its own directory next to IT_DIR: postgres must own it, and IT_DIR is root's
    IT_PG_DIR=$(mktemp -d "${IT_DIR%/*}/trasloco-pg.XXXXXX") || it_fail "mktemp -d failed"
    it_at_exit "_it_pg_cleanup"
    [[ $IT_UID == 0 ]] && chown postgres: "$IT_PG_DIR"
    chmod 0700 "$IT_PG_DIR"
    IT_PG_PORT=$(_it_alloc_port)
    pw=$("$IT_PYTHON" -c 'import secrets; print(secrets.token_urlsafe(18))')
    IT_PG_PASSWORD=$pw
    _it_pg_as "$bin/initdb" -D "$IT_PG_DIR/data" -U postgres -A trust --auth-host=scram-sha-256 \
        -E UTF8 --locale=C.UTF-8 >"$IT_DIR/pg-initdb.log" 2>&1 ||
        it_fail "initdb failed: $(tail -n 5 "$IT_DIR/pg-initdb.log")"
    _it_pg_as mkdir -p "$IT_PG_DIR/sock"
    {
        printf "listen_addresses = '127.0.0.1'\n"
        printf "port = %s\n" "$IT_PG_PORT"
        printf "unix_socket_directories = '%s'\n" "$IT_PG_DIR/sock"
        printf "max_connections = 200\n"
        printf "shared_buffers = 32MB\n"
        printf "logging_collector = off\n"
        printf "log_min_messages = warning\n"
    } | _it_pg_as tee -a "$IT_PG_DIR/data/postgresql.conf" >/dev/null
    # local (socket): trust for the test's own psql; TCP: passwords only
    printf 'local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n' |
        _it_pg_as tee "$IT_PG_DIR/data/pg_hba.conf" >/dev/null
    _it_pg_startonly
    _it_pg_as "$bin/psql" -X -q -h "$IT_PG_DIR/sock" -p "$IT_PG_PORT" -U postgres -d postgres \
        -v ON_ERROR_STOP=1 -c "CREATE ROLE trasloco LOGIN PASSWORD '$pw'" \
        -c "CREATE DATABASE trasloco OWNER trasloco" >"$IT_DIR/pg-setup.log" 2>&1 ||
        it_fail "creating the role and database failed: $(cat "$IT_DIR/pg-setup.log")"
    PGPASSFILE=$IT_DIR/pgpass
    (umask 077; printf '127.0.0.1:%s:trasloco:trasloco:%s\n' "$IT_PG_PORT" "$pw" >"$PGPASSFILE")
    IT_PG_DSN="postgresql://trasloco@127.0.0.1:$IT_PG_PORT/trasloco"
    export IT_PG_DSN IT_PG_PORT IT_PG_PASSWORD PGPASSFILE
}

_it_pg_startonly() {
    _it_pg_as "$IT_PG_BIN/pg_ctl" -D "$IT_PG_DIR/data" -l "$IT_PG_DIR/postgres.log" -w -t 60 \
        start >"$IT_DIR/pg-ctl.log" 2>&1 ||
        it_fail "PostgreSQL did not start: $(tail -n 5 "$IT_PG_DIR/postgres.log" 2>/dev/null)"
}

it_pg_stop() {
    _it_pg_as "$IT_PG_BIN/pg_ctl" -D "$IT_PG_DIR/data" -m "${1:-fast}" -w -t 60 stop \
        >>"$IT_DIR/pg-ctl.log" 2>&1 || true
}

it_pg_restart() {
    it_pg_stop "${1:-fast}"
    _it_pg_startonly
}

it_pg_psql() {
    _it_pg_as "$IT_PG_BIN/psql" -X -q -A -t -h "$IT_PG_DIR/sock" -p "$IT_PG_PORT" -U trasloco \
        -d trasloco -v ON_ERROR_STOP=1 -c "$1"
}

it_pg_dump() {
    _it_pg_as "$IT_PG_BIN/pg_dump" -h "$IT_PG_DIR/sock" -p "$IT_PG_PORT" -U trasloco \
        -d trasloco --data-only --inserts
}

_it_pg_cleanup() {
    [[ -n ${IT_PG_DIR:-} && -d $IT_PG_DIR ]] || return 0
    if [[ -f $IT_PG_DIR/data/postmaster.pid ]]; then
        _it_pg_as "$IT_PG_BIN/pg_ctl" -D "$IT_PG_DIR/data" -m immediate -w -t 30 stop \
            >/dev/null 2>&1
    fi
    if [[ -s $IT_PG_DIR/postgres.log && ${IT_KEEP:-0} != 1 ]]; then
        printf -- '--- last lines of postgres.log ---\n' >&2
        tail -n 5 "$IT_PG_DIR/postgres.log" >&2
    fi
    if [[ ${IT_KEEP:-0} == 1 ]]; then
        printf '%s: kept %s\n' "$IT_NAME" "$IT_PG_DIR" >&2
    else
        rm -rf "$IT_PG_DIR"
    fi
}
