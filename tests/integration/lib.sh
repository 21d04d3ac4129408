# shellcheck shell=bash
# tests/integration/lib.sh: private Dovecot instances for trasloco's integration tests.
#
# Source it from a test script (which should itself `set -euo pipefail`):
#     . "$(dirname "$0")/lib.sh"
#     it_init my-test
#     it_dovecot_start src USERS="user1@example.test:pw1"
#     ...
#     it_pass
#
# Exit codes follow automake: 0 pass, 1 fail, 77 skip.
#
# Functions
# ---------
# it_init NAME
#     Creates the private directory $IT_DIR (mktemp -d under ${TMPDIR:-/tmp}, named after
#     NAME), the test certificates, and an EXIT trap that stops every Dovecot started by
#     this script (only the pid in each instance's master.pid, checked to be a dovecot
#     process running our config), releases the reserved ports and removes $IT_DIR unless
#     IT_KEEP=1 (the Dovecots are stopped either way).  Exits 77 when dovecot, doveadm,
#     openssl or Python 3 is missing, or when not root and IT_NONROOT=0.
#     Exports: IT_NAME IT_DIR IT_HOST(127.0.0.1) IT_CA IT_TLS_NAME(mail.test) IT_WRONG_NAME
#     (wrong.test) IMAPTOOL (path of imaptool.py) IT_PYTHON IT_LIBDIR.
#     Certificates in $IT_DIR/ssl: ca.pem (throwaway CA), mail.test.{pem,key} (SAN
#     DNS:mail.test only, no IP SAN: connecting to 127.0.0.1 must verify against the name
#     given with --tls-name), wrong.test.{pem,key} (same CA, SAN DNS:wrong.test).
#
# it_dovecot_start SIDE [KEY=VALUE ...]
#     Writes $IT_DIR/SIDE/dovecot.conf and starts that instance; SIDE is any name made
#     of [A-Za-z0-9_-] (usually src or dst).  Options:
#       USERS="u1@example.test:pw1 u2@example.test:pw2"   (default "user1@example.test:pw1")
#           Entries are separated by whitespace, or by newlines when the value contains a
#           newline (then passwords may contain spaces).  Each entry is USER:PASSWORD split
#           at the FIRST ':', so the password may contain ':' too.  In the password, %XX is
#           percent-decoded (write %25 for a literal '%', %20 for a space in the
#           whitespace-separated form).  Quotes, commas, backslashes, ':' and UTF-8 are all
#           fine: the passwd-file stores {PLAIN.B64}base64(password), so Dovecot's ':'
#           field separator never meets the password.  User names may contain neither
#           ':' nor whitespace.
#       MAX_CONN=N        mail_max_userip_connections (default 20)
#       NS=courier        personal namespace prefix "INBOX." with separator "."
#                         (default: separator "/", no prefix)
#       SPECIAL_USE=yes   mailbox blocks Sent Drafts Trash Junk Archive with the matching
#                         special_use flag, auto = no (default no)
#       CERT=wrong        serve the wrong.test certificate (default: mail.test)
#       QUOTA_MB=N        quota plugin, "maildir:User quota", quota_rule = *:storage=NM
#       MAX_MSG_KB=N      quota plugin's quota_max_mail_size = NK: bigger APPENDs get
#                         "NO [LIMIT]" (works with or without QUOTA_MB)
#       MASTER=admin:pw   master passdb (master = yes, pass = yes) and
#                         auth_master_user_separator = *: LOGIN "user*admin" pw, or SASL
#                         PLAIN with authzid=user authcid=admin
#       USERS=none        no user at all (an empty passwd-file, for tests that
#                         provision the users): SIDE's home/ then belongs to the
#                         mail uid, so that Dovecot can create the users' homes
#       OAUTH2=URL        also SASL XOAUTH2 and OAUTHBEARER, checked by a passdb oauth2
#                         that asks the token introspection endpoint URL (POST
#                         token=...; it must answer {"active": true, "username": USER});
#                         PLAIN and LOGIN stay for the test's own tools
#       NO_CONDSTORE=yes  announce no CONDSTORE/QRESYNC (imap_capability set to Dovecot's
#                         list without them): STATUS then has no HIGHESTMODSEQ for clients
#       LAYOUT=fs         Maildir with the "fs" layout: folder names may contain '.'
#                         (the default Maildir++ layout refuses them)
#       AUTH_DELAY=yes    keep Dovecot's delay after a failed login (2 s, growing to 15 s
#                         per further failure from 127.0.0.1).  Default no:
#                         auth_failure_delay = 0 and the auth penalty switched off, so
#                         that wrong-password tests are fast and independent.
#     Exports (SIDE upper-cased, '-' -> '_'): SIDE_IMAP_PORT (plain, STARTTLS offered),
#     SIDE_IMAPS_PORT (implicit TLS), SIDE_DIR, SIDE_CONF.  Returns once both ports
#     accept connections.  Ports are random free ports below the ephemeral range, reserved with a
#     lock directory so that tests running in parallel (make -j) never share one.
#     Maildirs: $IT_DIR/SIDE/home/USER/Maildir; log: $IT_DIR/SIDE/dovecot.log.
#     Starting a side again after it_dovecot_stop rewrites its config with the new
#     options and new ports; its mail stays.  Fixed settings: listen = 127.0.0.1,
#     ssl = yes, ssl_min_protocol = TLSv1.2, disable_plaintext_auth = no,
#     auth_mechanisms = plain login, maildir:~/Maildir, mail_fsync = never (speed),
#     auth_verbose = yes, auth_cache_size = 0, imap_capability left at Dovecot's default
#     (CONDSTORE, QRESYNC, UIDPLUS, MULTIAPPEND, LITERAL+, LIST-STATUS, SPECIAL-USE, MOVE,
#     ...), mail_plugins only quota/imap_quota when QUOTA_MB or MAX_MSG_KB is given.
#
# it_dovecot_stop SIDE       SIGTERM to the master (SIGKILL after 10 s); no-op if stopped.
#                            Dovecot's own shutdown takes 1-3 s (it waits for children).
# it_dovecot_restart SIDE    stop, then start again with the same config, ports and mail.
# it_dovecot_running SIDE    status 0 when that instance's master is alive.
# it_dovecot_log SIDE        print that instance's log.
# it_doveadm SIDE ARGS...    run doveadm in that instance's config context
#                            (e.g. it_doveadm src mailbox status -u U messages INBOX).
# it_sessions SIDE USER      print how many IMAP sessions of USER are logged in right now
#                            (from `doveadm who -1`, i.e. the instance's anvil).
# it_wait_sessions SIDE USER N [TIMEOUT_S]
#                            wait until it_sessions prints N (default timeout 10 s);
#                            status 1 on timeout.  Anvil learns of a logout a moment
#                            after the client has gone, so tests should poll.
# it_imaptool ARGS...        "$IT_PYTHON" "$IMAPTOOL" ARGS... (in the foreground: to run it
#                            in the background use "$IT_PYTHON" "$IMAPTOOL" ... & so
#                            that $! is the tool's own pid)
# it_at_exit 'COMMAND'       run COMMAND (eval'd) from the EXIT trap, before the Dovecots
#                            are stopped; do not install your own EXIT trap.
# it_log MSG...              message to stderr, prefixed with the test name.
# it_fail MSG...             print "FAIL: NAME: MSG" and the tail of every instance's log
#                            to stderr, exit 1.
# it_skip MSG...             print "SKIP: NAME: MSG", exit 77.
# it_pass [MSG...]           print "PASS: NAME", exit 0.
#
# Shell variables set by it_init (not exported): IT_UID, IT_MAIL_UID and IT_MAIL_GID (the
# uid/gid the mail files belong to), IT_PORT_LOCKS.
#
# Environment: IT_KEEP=1 keeps $IT_DIR after the test; TMPDIR chooses where it goes
# (falls back to /tmp, with a message, when it is too long for unix socket paths or, as
# root, when the dovecot user cannot traverse it);
# IT_NONROOT=0 skips instead of trying the non-root set-up; IT_PYTHON picks the Python
# (default /usr/bin/python3, Debian's, stdlib only: a python3 earlier in PATH, e.g.
# pyenv's, may start several times slower).
#
# Root and non-root
# -----------------
# As root the masters run as root, auth/internal processes as `dovecot`, login processes
# as `dovenull`; mail processes may not run as root, so every user gets the uid/gid of
# `dovecot` (first_valid_uid = last_valid_uid = that uid), the homes are owned by it and
# the passwd files are root:dovecot 0640 (auth runs as dovecot and must read them).
# As another user everything (master, auth, login, mail) runs as that user, and chroots
# are switched off (chroot needs root).  Both ways are exercised by selftest.sh
# (e.g. `runuser -u nobody -- tests/integration/selftest.sh`).

IT_LIBDIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
IMAPTOOL=$IT_LIBDIR/imaptool.py
IT_HOST=127.0.0.1
IT_TLS_NAME=mail.test
IT_WRONG_NAME=wrong.test
IT_NAME=${IT_NAME:-$(basename "$0" .sh)}
if [[ -z ${IT_PYTHON:-} ]]; then
    IT_PYTHON=/usr/bin/python3
    [[ -x $IT_PYTHON ]] || IT_PYTHON=python3
fi
export IT_LIBDIR IMAPTOOL IT_HOST IT_TLS_NAME IT_WRONG_NAME IT_PYTHON

_IT_AT_EXIT=()

it_log() { printf '%s: %s\n' "$IT_NAME" "$*" >&2; }

it_fail() {
    printf 'FAIL: %s: %s\n' "$IT_NAME" "$*" >&2
    _it_dump_logs
    exit 1
}

it_skip() {
    printf 'SKIP: %s: %s\n' "$IT_NAME" "$*" >&2
    exit 77
}

it_pass() {
    printf 'PASS: %s%s\n' "$IT_NAME" "${1:+: $*}"
    exit 0
}

it_at_exit() { _IT_AT_EXIT+=("$1"); }

it_imaptool() { "$IT_PYTHON" "$IMAPTOOL" "$@"; }

# Tail of each instance's log, so that a failure in CI explains itself.
_it_dump_logs() {
    local f
    [[ -n ${IT_DIR:-} && -d ${IT_DIR:-/nonexistent} ]] || return 0
    for f in "$IT_DIR"/*/dovecot.log "$IT_DIR"/*/cyrus.log; do
        [[ -s $f ]] || continue
        printf -- '--- last lines of %s ---\n' "$f" >&2
        tail -n 15 "$f" >&2
    done
}

it_init() {
    IT_NAME=${1:?usage: it_init NAME}
    local tool safe base
    for tool in dovecot doveadm openssl "$IT_PYTHON"; do
        command -v "$tool" >/dev/null 2>&1 || it_skip "$tool not installed"
    done
    IT_UID=$(id -u)
    if [[ $IT_UID != 0 && ${IT_NONROOT:-1} == 0 ]]; then
        it_skip "not root and IT_NONROOT=0"
    fi
    if [[ $IT_UID == 0 ]]; then
        id dovecot >/dev/null 2>&1 || it_skip "no system user dovecot"
        id dovenull >/dev/null 2>&1 || it_skip "no system user dovenull"
        IT_INTERNAL_USER=dovecot
        IT_INTERNAL_GROUP=dovecot
        IT_LOGIN_USER=dovenull
        IT_MAIL_UID=$(id -u dovecot)
        IT_MAIL_GID=$(id -g dovecot)
    else
        IT_INTERNAL_USER=$(id -un)
        IT_INTERNAL_GROUP=$(id -gn)
        IT_LOGIN_USER=$IT_INTERNAL_USER
        IT_MAIL_UID=$IT_UID
        IT_MAIL_GID=$(id -g)
    fi

    safe=${IT_NAME//[^A-Za-z0-9_-]/_}
    safe=${safe:0:20}
    base=${TMPDIR:-/tmp}
    base=${base%/}
    # Dovecot puts unix sockets under base_dir ($IT_DIR/SIDE/run/...); sun_path holds
    # 107 characters and the deepest socket adds 30 + length(SIDE) to $IT_DIR (itself
    # TMPDIR + NAME + 20): a long TMPDIR would make Dovecot fail with an obscure bind
    # error.  As root, the dovecot user must also be able to traverse it (mail
    # processes reach their homes, auth its passwd files).
    if ((${#base} + ${#safe} > 40)); then
        it_log "TMPDIR=$base is too long for Dovecot's unix sockets: using /tmp"
        base=/tmp
    elif [[ $IT_UID == 0 ]] && ! runuser -u dovecot -- test -x "$base" 2>/dev/null; then
        it_log "user dovecot cannot traverse TMPDIR=$base: using /tmp"
        base=/tmp
    fi
    IT_DIR=$(mktemp -d "$base/trasloco-it.$safe.XXXXXX") || it_fail "mktemp -d failed"
    trap _it_on_exit EXIT
    trap 'exit 129' HUP
    trap 'exit 130' INT
    trap 'exit 143' TERM
    # 0711: others may traverse (dovecot, see above) but not list
    chmod 0711 "$IT_DIR"
    IT_PORT_LOCKS=$base/trasloco-it-ports.$IT_UID
    mkdir -p "$IT_PORT_LOCKS"
    : >"$IT_DIR/.ports"

    _it_make_certs
    IT_CA=$IT_DIR/ssl/ca.pem
    export IT_NAME IT_DIR IT_CA
}

_it_on_exit() {
    local rc=$? cmd conf port owner
    local -a pids
    set +e
    trap - EXIT HUP INT TERM
    for cmd in "${_IT_AT_EXIT[@]}"; do
        eval "$cmd"
    done
    if [[ -n ${IT_DIR:-} && -d $IT_DIR ]]; then
        # (a test may start no Dovecot at all: these files may not exist yet)
        : >>"$IT_DIR/.stopping"
        : >>"$IT_DIR/.ports"
        # signal every master first, then wait for them together: a master takes
        # 1-3 s to shut down, one after the other that adds up
        : >"$IT_DIR/.stopping"
        for conf in "$IT_DIR"/*/dovecot.conf; do
            [[ -f $conf ]] || continue
            _it_master_pid "$(basename "$(dirname "$conf")")" >>"$IT_DIR/.stopping"
        done
        : >>"$IT_DIR/.stopping"   # none started: nothing to stop
        mapfile -t pids <"$IT_DIR/.stopping"
        ((${#pids[@]} == 0)) || _it_stop_pids "${pids[@]}"
        # release our port reservations (only those still marked as ours)
        while read -r port; do
            [[ -n $port ]] || continue
            owner=$(cat "$IT_PORT_LOCKS/$port/owner" 2>/dev/null)
            [[ $owner == "$$" ]] && rm -rf "${IT_PORT_LOCKS:?}/$port"
        done <"$IT_DIR/.ports"
        if [[ ${IT_KEEP:-0} == 1 ]]; then
            printf '%s: kept %s\n' "$IT_NAME" "$IT_DIR" >&2
        else
            rm -rf "$IT_DIR"
        fi
    fi
    exit "$rc"
}

# A throwaway CA and two server certificates it signs.  EC P-256 keys: generating three
# RSA-2048 keys costs ~0.7 s per test, EC is instant and every TLS stack takes it.
_it_make_certs() {
    local d=$IT_DIR/ssl name
    mkdir -p "$d"
    (
        set -e
        cd "$d"
        openssl req -x509 -new -nodes -days 3650 -sha256 \
            -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
            -subj "/O=trasloco tests/CN=trasloco throwaway test CA" \
            -addext "basicConstraints=critical,CA:TRUE" \
            -addext "keyUsage=critical,keyCertSign,cRLSign" \
            -keyout ca.key -out ca.pem
        for name in "$IT_TLS_NAME" "$IT_WRONG_NAME"; do
            openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
                -subj "/O=trasloco tests/CN=$name" -keyout "$name.key" -out "$name.csr"
            # SAN is the DNS name only: no IP:127.0.0.1 on purpose
            printf '%s\n' "basicConstraints=critical,CA:FALSE" \
                "keyUsage=critical,digitalSignature,keyEncipherment" \
                "extendedKeyUsage=serverAuth" "subjectAltName=DNS:$name" \
                "subjectKeyIdentifier=hash" "authorityKeyIdentifier=keyid,issuer" >"$name.ext"
            openssl x509 -req -in "$name.csr" -CA ca.pem -CAkey ca.key \
                -set_serial "0x$(openssl rand -hex 12)" -days 3650 -sha256 \
                -extfile "$name.ext" -out "$name.pem"
        done
        chmod 0600 ./*.key
    ) >"$d/openssl.log" 2>&1 || it_fail "certificate generation failed: $(cat "$d/openssl.log")"
}

# Prints a free TCP port on 127.0.0.1 and keeps it reserved for this test: mkdir of
# $IT_PORT_LOCKS/PORT is atomic, so two tests never pick the same port even if neither
# has bound it yet; the bind test then rules out ports used by anything else.
# Reservations whose owner process is gone are removed (not reused in the same pass).
# The port is taken below the kernel's ephemeral range (ip_local_port_range, 32768-60999
# by default): a port in that range can become the local end of any outgoing connection
# between the bind test and the server's listen, and a connected socket without
# SO_REUSEADDR makes that listen fail with "Address already in use" (seen in CI).
_it_alloc_port() {
    local port tries owner lo=20000 hi=32767 eph_lo eph_hi
    if read -r eph_lo eph_hi </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null; then
        if ((eph_lo > lo + 2000)); then
            hi=$((eph_lo - 1))
        elif ((eph_hi < 63000)); then
            lo=$((eph_hi + 1)) hi=65000   # an unusual range: use the ports above it
        fi
    fi
    for ((tries = 0; tries < 200; tries++)); do
        # SRANDOM (bash >= 5.1) differs between processes started at the same time
        port=$((lo + ${SRANDOM:-$((RANDOM * 32768 + RANDOM))} % (hi - lo + 1)))
        if ! mkdir "$IT_PORT_LOCKS/$port" 2>/dev/null; then
            owner=$(cat "$IT_PORT_LOCKS/$port/owner" 2>/dev/null) || continue
            if [[ -n $owner ]] && ! kill -0 "$owner" 2>/dev/null; then
                rm -rf "${IT_PORT_LOCKS:?}/$port"
            fi
            continue
        fi
        printf '%s\n' "$$" >"$IT_PORT_LOCKS/$port/owner"
        printf '%s\n' "$port" >>"$IT_DIR/.ports"
        if "$IT_PYTHON" -c 'import socket, sys
s = socket.socket()
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)' "$port"; then
            printf '%s\n' "$port"
            return 0
        fi
    done
    it_fail "no free TCP port found"
}

# SIDE -> SIDE as a shell variable prefix (src -> SRC, my-dst -> MY_DST)
_it_var() {
    local v=${1^^}
    printf '%s\n' "${v//-/_}"
}

# Percent-decode $1 to stdout (no trailing newline; %0A survives).
_it_pct_decode() {
    local s=$1
    while [[ $s =~ ^([^%]*)%([0-9A-Fa-f]{2})(.*)$ ]]; do
        printf '%s%b' "${BASH_REMATCH[1]}" "\\x${BASH_REMATCH[2]}"
        s=${BASH_REMATCH[3]}
    done
    printf '%s' "$s"
}

# One passwd-file line for USER with PASSWORD (percent-encoded as in USERS).
_it_passwd_line() {
    local user=$1 pw=$2 home=$3 b64
    [[ -n $user && $user != *:* ]] || it_fail "bad user name in USERS: '$user'"
    b64=$(_it_pct_decode "$pw" | base64 -w0)
    printf '%s:{PLAIN.B64}%s:%s:%s::%s::\n' "$user" "$b64" "$IT_MAIL_UID" "$IT_MAIL_GID" "$home"
}

_it_conf() { printf '%s\n' "$IT_DIR/$1/dovecot.conf"; }

# Pid of SIDE's master if it is a live dovecot process running our config.
_it_master_pid() {
    local f=$IT_DIR/$1/run/master.pid p cmdline
    [[ -s $f ]] || return 1
    p=$(<"$f")
    [[ $p =~ ^[0-9]+$ ]] || return 1
    [[ $(cat "/proc/$p/comm" 2>/dev/null) == dovecot ]] || return 1
    cmdline=$(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null) || return 1
    [[ $cmdline == *"$(_it_conf "$1")"* ]] || return 1
    printf '%s\n' "$p"
}

it_dovecot_running() { _it_master_pid "$1" >/dev/null; }

it_dovecot_start() {
    local side=${1:?usage: it_dovecot_start SIDE [KEY=VALUE ...]}
    shift
    [[ -n ${IT_DIR:-} ]] || it_fail "it_dovecot_start before it_init"
    [[ $side =~ ^[A-Za-z0-9_-]+$ ]] || it_fail "bad side name '$side'"
    # longest socket: $IT_DIR/SIDE/run/token-login/imap-urlauth (see it_init)
    ((${#IT_DIR} + ${#side} + 30 <= 107)) ||
        it_fail "side name '$side' too long for unix socket paths under $IT_DIR"
    it_dovecot_running "$side" && it_fail "$side: already running"

    local users="user1@example.test:pw1" max_conn=20 ns=default special_use=no cert=mail
    local quota_mb="" max_msg_kb="" master="" auth_delay=no layout="" no_condstore=no arg
    local oauth2=""
    for arg in "$@"; do
        case $arg in
        USERS=*) users=${arg#USERS=} ;;
        MAX_CONN=*) max_conn=${arg#MAX_CONN=} ;;
        NS=*) ns=${arg#NS=} ;;
        SPECIAL_USE=*) special_use=${arg#SPECIAL_USE=} ;;
        CERT=*) cert=${arg#CERT=} ;;
        QUOTA_MB=*) quota_mb=${arg#QUOTA_MB=} ;;
        MAX_MSG_KB=*) max_msg_kb=${arg#MAX_MSG_KB=} ;;
        MASTER=*) master=${arg#MASTER=} ;;
        AUTH_DELAY=*) auth_delay=${arg#AUTH_DELAY=} ;;
        LAYOUT=*) layout=${arg#LAYOUT=} ;;
        NO_CONDSTORE=*) no_condstore=${arg#NO_CONDSTORE=} ;;
        OAUTH2=*) oauth2=${arg#OAUTH2=} ;;
        *) it_fail "it_dovecot_start $side: unknown option '$arg'" ;;
        esac
    done
    [[ $max_conn =~ ^[0-9]+$ ]] || it_fail "MAX_CONN must be a number"
    [[ -z $quota_mb || $quota_mb =~ ^[0-9]+$ ]] || it_fail "QUOTA_MB must be a number"
    [[ -z $max_msg_kb || $max_msg_kb =~ ^[0-9]+$ ]] || it_fail "MAX_MSG_KB must be a number"
    [[ $ns == default || $ns == courier ]] || it_fail "NS must be courier or default"
    [[ $special_use == yes || $special_use == no ]] || it_fail "SPECIAL_USE must be yes or no"
    [[ $auth_delay == yes || $auth_delay == no ]] || it_fail "AUTH_DELAY must be yes or no"
    case $cert in
    wrong) cert=$IT_WRONG_NAME ;;
    mail | "$IT_TLS_NAME") cert=$IT_TLS_NAME ;;
    *) it_fail "CERT must be wrong (or mail)" ;;
    esac
    if [[ -n $master && $master != *:* ]]; then
        it_fail "MASTER must be NAME:PASSWORD"
    fi

    local d=$IT_DIR/$side entry user pw
    local -a entries
    mkdir -p "$d/run" "$d/state" "$d/home"
    chmod 0711 "$d" "$d/home"
    if [[ $users == *$'\n'* ]]; then
        mapfile -t entries <<<"$users"
    else
        read -r -a entries <<<"$users"
    fi
    : >"$d/users.passwd"
    if [[ $users == none ]]; then
        entries=()
        chown "$IT_MAIL_UID:$IT_MAIL_GID" "$d/home"
    fi
    for entry in "${entries[@]}"; do
        [[ -n $entry ]] || continue
        [[ $entry == *:* ]] || it_fail "USERS entry without ':' (USER:PASSWORD)"
        user=${entry%%:*}
        pw=${entry#*:}
        mkdir -p "$d/home/$user"
        chown "$IT_MAIL_UID:$IT_MAIL_GID" "$d/home/$user"
        _it_passwd_line "$user" "$pw" "$d/home/$user" >>"$d/users.passwd"
    done
    [[ -s $d/users.passwd || $users == none ]] || it_fail "USERS is empty"
    local files=("$d/users.passwd")
    if [[ -n $master ]]; then
        printf '%s:{PLAIN.B64}%s\n' "${master%%:*}" \
            "$(_it_pct_decode "${master#*:}" | base64 -w0)" >"$d/master.passwd"
        files+=("$d/master.passwd")
    fi
    chmod 0640 "${files[@]}"
    if [[ $IT_UID == 0 ]]; then
        chgrp dovecot "${files[@]}"
    fi

    local port sport var
    port=$(_it_alloc_port)
    sport=$(_it_alloc_port)
    printf '%s %s\n' "$port" "$sport" >"$d/ports"
    _it_write_conf "$side" "$port" "$sport" "$max_conn" "$ns" "$special_use" "$cert" \
        "$quota_mb" "$max_msg_kb" "$master" "$auth_delay" "$layout" "$oauth2" \
        >"$(_it_conf "$side")"

    var=$(_it_var "$side")
    printf -v "${var}_IMAP_PORT" '%s' "$port"
    printf -v "${var}_IMAPS_PORT" '%s' "$sport"
    printf -v "${var}_DIR" '%s' "$d"
    printf -v "${var}_CONF" '%s' "$(_it_conf "$side")"
    # shellcheck disable=SC2163 # exporting the variables named by these strings
    export "${var}_IMAP_PORT" "${var}_IMAPS_PORT" "${var}_DIR" "${var}_CONF"

    _it_launch "$side" "$port" "$sport"
}

# Writes the dovecot.conf of one instance to stdout.
_it_write_conf() {
    local side=$1 port=$2 sport=$3 max_conn=$4 ns=$5 special_use=$6 cert=$7
    local quota_mb=$8 max_msg_kb=$9 master=${10} auth_delay=${11} layout=${12} oauth2=${13:-}
    local d=$IT_DIR/$side mb quota=no
    [[ -n $quota_mb || -n $max_msg_kb ]] && quota=yes

    cat <<EOF
# Generated by tests/integration/lib.sh: test $IT_NAME, instance $side.
# Fully independent of the system's /etc/dovecot: own base_dir, state_dir, log.
instance_name = trasloco-it-${IT_DIR##*.}-$side
base_dir = $d/run
state_dir = $d/state
log_path = $d/dovecot.log
protocols = imap
listen = $IT_HOST
default_internal_user = $IT_INTERNAL_USER
default_internal_group = $IT_INTERNAL_GROUP
default_login_user = $IT_LOGIN_USER
# mail processes run as this uid (never root)
first_valid_uid = $IT_MAIL_UID
last_valid_uid = $IT_MAIL_UID
verbose_proctitle = yes
shutdown_clients = yes

ssl = yes
ssl_cert = <$IT_DIR/ssl/$cert.pem
ssl_key = <$IT_DIR/ssl/$cert.key
ssl_min_protocol = TLSv1.2
EOF
    if [[ -r /usr/share/dovecot/dh.pem ]]; then
        echo "ssl_dh = </usr/share/dovecot/dh.pem"
    fi
    cat <<EOF

disable_plaintext_auth = no
auth_mechanisms = plain login
auth_verbose = yes
# a test may change a password between two logins
auth_cache_size = 0
EOF
    if [[ $auth_delay == no ]]; then
        # Failed logins answer at once and add no per-IP penalty: Dovecot otherwise
        # waits 2 s, then 4, 8, 15 s for each further failure from 127.0.0.1, which
        # makes wrong-password tests slow and order-dependent.  auth finds no
        # penalty socket under the usual name (ENOENT) and switches the penalty off.
        cat <<EOF
auth_failure_delay = 0
service anvil {
  unix_listener anvil-auth-penalty {
    path = no-auth-penalty
  }
}
EOF
    fi
    cat <<EOF

mail_location = maildir:~/Maildir${layout:+:LAYOUT=$layout}
# test data is throwaway: skip fsync for speed
mail_fsync = never
EOF
    if [[ $no_condstore == yes ]]; then
        # Dovecot 2.3's post-login list, less CONDSTORE and QRESYNC
        echo "imap_capability = IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE SORT" \
            "SORT=DISPLAY THREAD=REFERENCES THREAD=REFS THREAD=ORDEREDSUBJECT MULTIAPPEND" \
            "URL-PARTIAL CATENATE UNSELECT CHILDREN NAMESPACE UIDPLUS LIST-EXTENDED" \
            "I18NLEVEL=1 ESEARCH ESORT SEARCHRES WITHIN CONTEXT=SEARCH LIST-STATUS BINARY" \
            "MOVE SNIPPET=FUZZY PREVIEW=FUZZY PREVIEW STATUS=SIZE SAVEDATE LITERAL+ NOTIFY" \
            "SPECIAL-USE"
    fi
    if [[ $quota == yes ]]; then
        echo "mail_plugins = \$mail_plugins quota"
    fi
    if [[ -n $master ]]; then
        cat <<EOF

auth_master_user_separator = *
passdb {
  driver = passwd-file
  args = $d/master.passwd
  master = yes
  # the target user must exist in the normal passdb too
  pass = yes
}
EOF
    fi
    if [[ -n $oauth2 ]]; then
        cat >"$d/oauth2.conf.ext" <<EOF
introspection_mode = post
introspection_url = $oauth2
username_attribute = username
active_attribute = active
active_value = true
EOF
        cat <<EOF

auth_mechanisms = plain login xoauth2 oauthbearer
passdb {
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = $d/oauth2.conf.ext
}
EOF
    fi
    cat <<EOF

passdb {
  driver = passwd-file
  args = $d/users.passwd${oauth2:+
  mechanisms = plain login}
}
userdb {
  driver = passwd-file
  args = $d/users.passwd
}

namespace inbox {
  inbox = yes
EOF
    if [[ $ns == courier ]]; then
        printf '  separator = .\n  prefix = INBOX.\n'
    else
        printf '  separator = /\n  prefix =\n'
    fi
    cat <<EOF
  mailbox INBOX {
    # nothing special: Dovecot's defaults
  }
EOF
    if [[ $special_use == yes ]]; then
        for mb in Sent Drafts Trash Junk Archive; do
            printf '  mailbox %s {\n    special_use = \\%s\n    auto = no\n  }\n' "$mb" "$mb"
        done
    fi
    echo "}"
    if [[ $quota == yes ]]; then
        echo
        echo "plugin {"
        echo "  quota = maildir:User quota"
        if [[ -n $quota_mb ]]; then
            echo "  quota_rule = *:storage=${quota_mb}M"
        fi
        if [[ -n $max_msg_kb ]]; then
            echo "  quota_max_mail_size = ${max_msg_kb}k"
        fi
        echo "}"
    fi
    cat <<EOF

protocol imap {
  mail_max_userip_connections = $max_conn
EOF
    if [[ $quota == yes ]]; then
        echo "  mail_plugins = \$mail_plugins imap_quota"
    fi
    cat <<EOF
}

service imap-login {
  inet_listener imap {
    address = $IT_HOST
    port = $port
  }
  inet_listener imaps {
    address = $IT_HOST
    port = $sport
    ssl = yes
  }
}
EOF
    if [[ $IT_UID != 0 ]]; then
        # chroot() needs root; without it these services stay in base_dir instead
        cat <<EOF

service imap-login {
  chroot =
}
service anvil {
  chroot =
}
service ipc {
  chroot =
}
EOF
    fi
}

# Start SIDE's master with its existing config and wait until both ports answer.
_it_launch() {
    local side=$1 port=$2 sport=$3 d=$IT_DIR/$1 p i
    # stdin/stdout/stderr away from the caller: a daemon holding the test's pipes
    # would keep `make` or a $(...) waiting forever
    if ! dovecot -c "$(_it_conf "$side")" </dev/null >"$d/start.log" 2>&1; then
        it_fail "$side: dovecot did not start: $(cat "$d/start.log")"
    fi
    for p in "$port" "$sport"; do
        for ((i = 0; ; i++)); do
            (exec 3<>"/dev/tcp/$IT_HOST/$p") 2>/dev/null && break
            ((i < 200)) || it_fail "$side: nothing listens on $IT_HOST:$p after 10 s"
            it_dovecot_running "$side" || it_fail "$side: dovecot exited during start-up"
            sleep 0.05
        done
    done
}

it_dovecot_stop() {
    local side=${1:?usage: it_dovecot_stop SIDE} p
    p=$(_it_master_pid "$side") || return 0
    _it_stop_pids "$p"
}

# SIGTERM to the given (already verified) dovecot master pids, SIGKILL to those still
# alive after 10 s.  Dovecot's master stops its own children (shutdown_clients = yes).
_it_stop_pids() {
    local p i alive st
    kill -TERM "$@" 2>/dev/null || true
    for ((i = 0; i < 200; i++)); do
        alive=()
        for p in "$@"; do
            # a zombie has exited: only its parent (here often a slow-reaping init)
            # still has to collect it
            st=""
            { read -r _ _ st _ <"/proc/$p/stat"; } 2>/dev/null || continue
            [[ $st == Z ]] || alive+=("$p")
        done
        ((${#alive[@]})) || return 0
        sleep 0.05
    done
    it_log "dovecot master(s) ${alive[*]} ignored SIGTERM for 10 s, sending SIGKILL"
    kill -KILL "${alive[@]}" 2>/dev/null || true
}

it_dovecot_restart() {
    local side=${1:?usage: it_dovecot_restart SIDE} port sport
    [[ -f $IT_DIR/$side/ports ]] || it_fail "$side: never started"
    read -r port sport <"$IT_DIR/$side/ports"
    it_dovecot_stop "$side"
    _it_launch "$side" "$port" "$sport"
}

it_dovecot_log() {
    local f=$IT_DIR/${1:?usage: it_dovecot_log SIDE}/dovecot.log
    [[ -f $f ]] && cat "$f"
    return 0
}

it_doveadm() {
    local side=${1:?usage: it_doveadm SIDE ARGS...}
    shift
    doveadm -c "$(_it_conf "$side")" "$@"
}

# `doveadm who -1` prints one line per connection: "username proto pid ip"
# (after a header line); count the lines of exactly USER.
it_sessions() {
    local side=${1:?usage: it_sessions SIDE USER} user=${2:?usage: it_sessions SIDE USER}
    local out
    out=$(it_doveadm "$side" who -1 "$user" 2>&1) || it_fail "$side: doveadm who failed: $out"
    awk -v u="$user" 'NR > 1 && $1 == u && $2 == "imap" { n++ } END { print n + 0 }' <<<"$out"
}

it_wait_sessions() {
    local side=$1 user=$2 want=$3 timeout=${4:-10} i n
    for ((i = 0; i < timeout * 10; i++)); do
        n=$(it_sessions "$side" "$user")
        [[ $n == "$want" ]] && return 0
        sleep 0.1
    done
    return 1
}
