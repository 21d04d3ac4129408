# shellcheck shell=bash
# tests/integration/cyrus.sh: private Cyrus IMAP instances (Debian 12's cyrus-imapd 3.6) for
# trasloco's integration tests, next to lib.sh's Dovecots.
#
# Source it after lib.sh and it_init (the test should itself `set -euo pipefail`):
#     . "$(dirname "$0")/lib.sh"
#     . "$(dirname "$0")/cyrus.sh"
#     it_init my-test
#     it_cyrus_start dst USERS="user1@example.test:pw1"
#     ...
#     it_pass
#
# Installation (tests/deps.sh): Debian's package cyrus-imapd conflicts with dovecot-imapd,
# so deps.sh installs cyrus-common (master, tools, libraries) and sasl2-bin with apt and
# unpacks cyrus-imapd's imapd under /usr/local/lib/trasloco-it/cyrus-imapd without
# registering the package.  An installed cyrus-imapd (/usr/lib/cyrus/bin/imapd) is used
# when present; CYRUS_IMAPD=PATH picks another imapd.  it_cyrus_start skips the test
# (exit 77) when Cyrus or saslpasswd2 is missing.
#
# Functions
# ---------
# it_cyrus_start SIDE [KEY=VALUE ...]
#     Writes $IT_DIR/SIDE/imapd.conf and cyrus.conf and starts that instance's master;
#     SIDE is any name made of [A-Za-z0-9_-] not used by a Dovecot of the same test.
#     Options:
#       USERS="u1@example.test:pw1 ..."   (default "user1@example.test:pw1") same syntax
#           as lib.sh's (whitespace- or newline-separated USER:PASSWORD, split at the first
#           ':', %XX percent-decoded in the password).  Users log in as written
#           (virtdomains: userid): "user1@example.test" is user1 of domain example.test,
#           its INBOX is the Cyrus mailbox user.user1@example.test as the admin sees it
#           (user/user1@example.test with SEP=/; a '.' of the name is written '^' with
#           SEP=.); a user without '@' belongs to no domain.  Each user's INBOX is
#           created at start (by the admin, see ADMIN), nothing else.  Passwords may
#           not contain a newline (saslpasswd2 reads one line).
#       SEP=.             hierarchy separator: "." (default: unixhierarchysep: no, what
#                         Debian's /etc/imapd.conf ships and what trasloco was first tried
#                         against) or "/" (unixhierarchysep: yes, Cyrus 3's built-in
#                         default).  With "." a folder name cannot contain a '.' (it
#                         makes a level), and a user whose name has a '.' before the '@'
#                         (mario.rossi@...) can log in, SELECT and APPEND, but LIST shows
#                         it nothing at all, not even INBOX: a Cyrus 3.6 bug (upstream
#                         issues 1875, 1600 describe the family); it_cyrus_start warns.
#                         Use SEP=/ or a user name without '.' with Cyrus.
#       ALTNS=no          altnamespace: no (default, Debian's: personal folders are
#                         "INBOX.x", NAMESPACE (("INBOX." ".")) ...) or yes (Cyrus's
#                         built-in default: personal folders at the top level beside
#                         INBOX).
#       ADMIN=NAME:PW     the Cyrus admin (imapd.conf admins:, no domain; default "admin"
#                         with a random password).  It may log in as any user with SASL
#                         PLAIN authzid=USER authcid=NAME (trasloco's --dst-admin).
#       CERT=wrong        serve the wrong.test certificate (default: mail.test)
#       QUOTA_KB=N        SETQUOTA STORAGE N on every user's INBOX (its whole tree)
#       SET=KEY:VALUE     any further imapd.conf line, repeatable (later lines win):
#                         SET=munge8bit:no, SET=reject8bit:yes, SET=allowplaintext:no
#                         (LOGINDISABLED before STARTTLS), SET=maxmessagesize:N ...
#       TELEMETRY=yes     Cyrus's protocol telemetry for every user: everything after the
#                         login, both directions, in $IT_DIR/SIDE/conf/log/USER/
#     Exports (SIDE upper-cased, '-' -> '_'): SIDE_IMAP_PORT (plain, STARTTLS offered),
#     SIDE_IMAPS_PORT (implicit TLS), SIDE_DIR, SIDE_CONF (imapd.conf), SIDE_SEP,
#     SIDE_ADMIN (admin name), SIDE_ADMIN_PWFILE (a 0600 file holding the admin password
#     on its first line).  Ports are reserved with lib.sh's _it_alloc_port.  Returns once
#     both ports accept connections and every INBOX exists; the instance is stopped by
#     the EXIT trap (it_at_exit).  Starting a side again after it_cyrus_stop rewrites
#     the configuration and the sasldb from the new options, with new ports; the mail
#     stays.
#     Fixed settings: listen 127.0.0.1 only, servername mail.test, virtdomains: userid,
#     sasl_pwcheck_method: auxprop with a private sasldb ($IT_DIR/SIDE/sasldb2),
#     sasl_mech_list: PLAIN LOGIN, allowplaintext: yes, tls_versions: tls1_2 tls1_3, the
#     rest of Debian's /etc/imapd.conf that is not a path (hashimapspool: true,
#     autocreate_quota: 0, umask: 077, ...), everything else Cyrus's defaults
#     (munge8bit: 1, reject8bit: 0, delete_mode and expunge_mode delayed, ...).
#     Configuration, spool, sasldb, proc, lock and socket directories are all under
#     $IT_DIR/SIDE; nothing of /etc/imapd.conf, /var/lib/cyrus or /run/cyrus is used.
#
# it_cyrus_stop SIDE       SIGTERM to the master (SIGKILL after 10 s), then to any imapd
#                          of this instance still alive; no-op if stopped.
# it_cyrus_restart SIDE    stop, then start again with the same config, ports and mail.
# it_cyrus_running SIDE    status 0 when that instance's master is alive.
# it_cyrus_log SIDE        print the instance's master log ($IT_DIR/SIDE/cyrus.log).
# it_cyrus_cmd SIDE TOOL ARGS...
#                          run /usr/lib/cyrus/bin/TOOL -C imapd.conf ARGS... as the
#                          instance's user (e.g. it_cyrus_cmd dst mbexamine
#                          user.user1@example.test; quota; reconstruct -r ...).
#
# Logging: Cyrus logs through syslog(3) only.  There is no syslog daemon here (no
# /dev/log) and the tests install none, so those messages are lost; cyrus.log holds what
# the master writes to stderr (start-up errors), and TELEMETRY=yes records the protocol.
#
# Root and non-root: as root the master binds the ports and becomes the system user
# `cyrus` (created by cyrus-common), which owns $IT_DIR/SIDE; the TLS key is copied
# there for it.  As another user everything runs as that user (imapd.conf cyrus_user).

IT_CYRUS_BIN=${IT_CYRUS_BIN:-/usr/lib/cyrus/bin}
IT_CYRUS_SERVERNAME=$IT_TLS_NAME
_IT_CYRUS_TRAP=0

# imapd: $CYRUS_IMAPD, an installed cyrus-imapd, or the copy tests/deps.sh unpacked
_it_cyrus_imapd() {
    local p
    for p in "${CYRUS_IMAPD:-}" "$IT_CYRUS_BIN/imapd" \
        /usr/local/lib/trasloco-it/cyrus-imapd/usr/lib/cyrus/bin/imapd; do
        [[ -n $p && -x $p ]] && {
            printf '%s\n' "$p"
            return 0
        }
    done
    return 1
}

_it_cyrus_user() {
    if [[ $IT_UID == 0 ]]; then
        printf 'cyrus\n'
    else
        id -un
    fi
}

_it_cyrus_conf() { printf '%s\n' "$IT_DIR/$1/imapd.conf"; }

# Pid of SIDE's master if it is a live Cyrus master running our config.
_it_cyrus_pid() {
    local f=$IT_DIR/$1/run/master.pid p cmdline
    [[ -s $f ]] || return 1
    p=$(<"$f")
    [[ $p =~ ^[0-9]+$ ]] || return 1
    [[ $(cat "/proc/$p/comm" 2>/dev/null) == master ]] || return 1
    cmdline=$(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null) || return 1
    [[ $cmdline == *"$(_it_cyrus_conf "$1")"* ]] || return 1
    printf '%s\n' "$p"
}

# Pids of every process whose command line names SIDE's imapd.conf after -C (master,
# imapd, ctl_cyrusdb): only this instance's, whatever they are called.  Candidates are
# the processes of the instance's user; no fork per process (mapfile is a builtin).
_it_cyrus_all_pids() {
    local conf p i
    local -a argv
    conf=$(_it_cyrus_conf "$1")
    for p in $(pgrep -u "$(_it_cyrus_user)" 2>/dev/null); do
        mapfile -d '' -t argv 2>/dev/null <"/proc/$p/cmdline" || continue
        for ((i = 1; i < ${#argv[@]}; i++)); do
            if [[ ${argv[i - 1]} == -C && ${argv[i]} == "$conf" ]]; then
                printf '%s\n' "$p"
                break
            fi
        done
    done
    return 0
}

it_cyrus_running() { _it_cyrus_pid "$1" >/dev/null; }

it_cyrus_log() {
    local f=$IT_DIR/${1:?usage: it_cyrus_log SIDE}/cyrus.log
    [[ -f $f ]] && cat "$f"
    return 0
}

# Run a command as the instance's user (root: cyrus), stdin/stdout/stderr passed through.
_it_cyrus_as() {
    if [[ $IT_UID == 0 ]]; then
        runuser -u cyrus -- "$@"
    else
        "$@"
    fi
}

it_cyrus_cmd() {
    local side=${1:?usage: it_cyrus_cmd SIDE TOOL ARGS...} tool=${2:?usage: it_cyrus_cmd SIDE TOOL ARGS...}
    shift 2
    [[ $tool != */* && -x $IT_CYRUS_BIN/$tool ]] || it_fail "no Cyrus tool $IT_CYRUS_BIN/$tool"
    _it_cyrus_as "$IT_CYRUS_BIN/$tool" -C "$(_it_cyrus_conf "$side")" "$@"
}

it_cyrus_start() {
    local side=${1:?usage: it_cyrus_start SIDE [KEY=VALUE ...]}
    shift
    [[ -n ${IT_DIR:-} ]] || it_fail "it_cyrus_start before it_init"
    [[ $side =~ ^[A-Za-z0-9_-]+$ ]] || it_fail "bad side name '$side'"
    [[ -e $IT_DIR/$side/dovecot.conf ]] && it_fail "$side is a Dovecot instance"
    it_cyrus_running "$side" && it_fail "$side: already running"

    local imapd
    imapd=$(_it_cyrus_imapd) || it_skip "Cyrus imapd not installed (run tests/deps.sh)"
    [[ -x $IT_CYRUS_BIN/master ]] || it_skip "Cyrus master not installed (cyrus-common)"
    command -v saslpasswd2 >/dev/null 2>&1 || it_skip "saslpasswd2 not installed (sasl2-bin)"
    if [[ $IT_UID == 0 ]]; then
        id cyrus >/dev/null 2>&1 || it_skip "no system user cyrus"
        runuser -u cyrus -- test -x "$IT_DIR" 2>/dev/null ||
            it_fail "user cyrus cannot reach $IT_DIR (a TMPDIR others may not traverse?)"
    fi
    # the deepest socket: $IT_DIR/SIDE/conf/socket/idle.PID (imapd binds it there
    # whatever idlesocket says; sun_path holds 107 bytes)
    ((${#IT_DIR} + ${#side} + 30 <= 107)) ||
        it_fail "side name '$side' too long for unix socket paths under $IT_DIR"

    local users="user1@example.test:pw1" sep=. altns=no admin="" cert=mail quota_kb=""
    local telemetry=no arg
    local -a sets=()
    for arg in "$@"; do
        case $arg in
        USERS=*) users=${arg#USERS=} ;;
        SEP=*) sep=${arg#SEP=} ;;
        ALTNS=*) altns=${arg#ALTNS=} ;;
        ADMIN=*) admin=${arg#ADMIN=} ;;
        CERT=*) cert=${arg#CERT=} ;;
        QUOTA_KB=*) quota_kb=${arg#QUOTA_KB=} ;;
        SET=*) sets+=("${arg#SET=}") ;;
        TELEMETRY=*) telemetry=${arg#TELEMETRY=} ;;
        *) it_fail "it_cyrus_start $side: unknown option '$arg'" ;;
        esac
    done
    [[ $sep == . || $sep == / ]] || it_fail "SEP must be . or /"
    [[ $altns == yes || $altns == no ]] || it_fail "ALTNS must be yes or no"
    [[ $telemetry == yes || $telemetry == no ]] || it_fail "TELEMETRY must be yes or no"
    [[ -z $quota_kb || $quota_kb =~ ^[0-9]+$ ]] || it_fail "QUOTA_KB must be a number"
    case $cert in
    wrong) cert=$IT_WRONG_NAME ;;
    mail | "$IT_TLS_NAME") cert=$IT_TLS_NAME ;;
    *) it_fail "CERT must be wrong (or mail)" ;;
    esac
    if [[ -z $admin ]]; then
        admin="admin:$("$IT_PYTHON" -c 'import secrets; print(secrets.token_hex(12))')"
    fi
    [[ $admin == *:* && ${admin%%:*} =~ ^[A-Za-z0-9_-]+$ ]] ||
        it_fail "ADMIN must be NAME:PASSWORD with NAME made of [A-Za-z0-9_-]"
    for arg in "${sets[@]}"; do
        [[ $arg =~ ^[a-z0-9_-]+:[^$'\n']*$ ]] || it_fail "SET must be key:value, got '$arg'"
    done

    local d=$IT_DIR/$side cuser entry user pw umask_saved
    local -a entries mboxes=()
    cuser=$(_it_cyrus_user)
    mkdir -p "$d/conf/socket" "$d/spool" "$d/run/proc" "$d/run/lock" "$d/tls"
    cp "$IT_DIR/ssl/$cert.pem" "$d/tls/cert.pem"
    cp "$IT_DIR/ssl/$cert.key" "$d/tls/key.pem"
    chmod 0600 "$d/tls/key.pem"
    umask_saved=$(umask)
    umask 077
    printf '%s\n' "$(_it_pct_decode "${admin#*:}")" >"$d/admin.pw"
    umask "$umask_saved"

    if [[ $users == *$'\n'* ]]; then
        mapfile -t entries <<<"$users"
    else
        read -r -a entries <<<"$users"
    fi
    # sasldb: one entry per user, realm = the domain (servername for users without one),
    # the admin in servername's realm (it logs in without a domain)
    rm -f "$d/sasldb2"
    _it_cyrus_saslpasswd "$d" "${admin%%:*}" "$(_it_pct_decode "${admin#*:}")"
    for entry in "${entries[@]}"; do
        [[ -n $entry ]] || continue
        [[ $entry == *:* ]] || it_fail "USERS entry without ':' (USER:PASSWORD)"
        user=${entry%%:*}
        pw=${entry#*:}
        [[ -n $user && $user != *[[:space:]/]* ]] || it_fail "bad user name in USERS: '$user'"
        if [[ $sep == . && ${user%@*} == *.* ]]; then
            it_log "$side: user $user has a '.' and SEP=.: Cyrus 3.6 lists none of its folders (see cyrus.sh)"
        fi
        _it_cyrus_saslpasswd "$d" "$user" "$(_it_pct_decode "$pw")"
        mboxes+=("$user")
        if [[ $telemetry == yes ]]; then
            mkdir -p "$d/conf/log/$user"
        fi
    done
    ((${#mboxes[@]})) || it_fail "USERS is empty"
    if [[ $IT_UID == 0 ]]; then
        chown -R cyrus:mail "$d"
    fi
    chmod 0700 "$d"

    local port sport var
    port=$(_it_alloc_port)
    sport=$(_it_alloc_port)
    printf '%s %s\n' "$port" "$sport" >"$d/ports"
    _it_cyrus_write_imapd_conf "$side" "$sep" "$altns" "${admin%%:*}" "$cuser" \
        "${sets[@]}" >"$d/imapd.conf"
    _it_cyrus_write_cyrus_conf "$side" "$imapd" "$port" "$sport" >"$d/cyrus.conf"
    if [[ $IT_UID == 0 ]]; then
        chown cyrus:mail "$d/imapd.conf" "$d/cyrus.conf" "$d/admin.pw"
    fi

    var=$(_it_var "$side")
    printf -v "${var}_IMAP_PORT" '%s' "$port"
    printf -v "${var}_IMAPS_PORT" '%s' "$sport"
    printf -v "${var}_DIR" '%s' "$d"
    printf -v "${var}_CONF" '%s' "$d/imapd.conf"
    printf -v "${var}_SEP" '%s' "$sep"
    printf -v "${var}_ADMIN" '%s' "${admin%%:*}"
    printf -v "${var}_ADMIN_PWFILE" '%s' "$d/admin.pw"
    # shellcheck disable=SC2163 # exporting the variables named by these strings
    export "${var}_IMAP_PORT" "${var}_IMAPS_PORT" "${var}_DIR" "${var}_CONF" "${var}_SEP" \
        "${var}_ADMIN" "${var}_ADMIN_PWFILE"

    if ((_IT_CYRUS_TRAP == 0)); then
        it_at_exit _it_cyrus_stop_all
        _IT_CYRUS_TRAP=1
    fi
    _it_cyrus_launch "$side" "$port" "$sport"

    # every user's INBOX, created by the admin: user.NAME@DOMAIN, or user/NAME@DOMAIN;
    # with the '.' separator a '.' of NAME is written '^' (Cyrus's own convention)
    for ((arg = 0; arg < ${#mboxes[@]}; arg++)); do
        user=${mboxes[arg]}
        if [[ $sep == . ]]; then
            if [[ $user == *@* ]]; then
                user="${user%@*}"
                user="${user//./^}@${mboxes[arg]##*@}"
            else
                user=${user//./^}
            fi
        fi
        mboxes[arg]="user$sep$user"
    done
    _it_cyrus_admin "$side" "$port" "$quota_kb" "${mboxes[@]}"
}

# saslpasswd2 reads the password on stdin up to the end of the first line.
_it_cyrus_saslpasswd() {
    local d=$1 user=$2 pw=$3 realm=$IT_CYRUS_SERVERNAME name=$2
    [[ $pw != *$'\n'* ]] || it_fail "a Cyrus password may not contain a newline"
    if [[ $user == *@* ]]; then
        realm=${user##*@}
        name=${user%@*}
    fi
    printf '%s\n' "$pw" | saslpasswd2 -p -c -f "$d/sasldb2" -u "$realm" "$name" ||
        it_fail "saslpasswd2 failed for $user"
}

_it_cyrus_write_imapd_conf() {
    local side=$1 sep=$2 altns=$3 admin=$4 cuser=$5
    shift 5
    local d=$IT_DIR/$side kv unixhs=no
    [[ $sep == / ]] && unixhs=yes
    cat <<EOF
# Generated by tests/integration/cyrus.sh: test $IT_NAME, instance $side.
# Independent of /etc/imapd.conf: every path is under $d.
configdirectory: $d/conf
defaultpartition: default
partition-default: $d/spool
proc_path: $d/run/proc
mboxname_lockpath: $d/run/lock
idlesocket: $d/conf/socket/idle
notifysocket: $d/conf/socket/notify
lmtpsocket: $d/conf/socket/lmtp
sievedir: $d/sieve
cyrus_user: $cuser
servername: $IT_CYRUS_SERVERNAME
syslog_prefix: trasloco-it-$side

# Debian's /etc/imapd.conf, less its paths and services
altnamespace: $altns
unixhierarchysep: $unixhs
lmtp_downcase_rcpt: yes
allowanonymouslogin: no
autocreate_quota: 0
umask: 077
sieveusehomedir: false
hashimapspool: true
allowplaintext: yes
sasl_pwcheck_method: auxprop
sasl_auto_transition: no
tls_session_timeout: 1440

# the tests' own
virtdomains: userid
admins: $admin
sasl_auxprop_plugin: sasldb
sasl_sasldb_path: $d/sasldb2
sasl_mech_list: PLAIN LOGIN
tls_server_cert: $d/tls/cert.pem
tls_server_key: $d/tls/key.pem
tls_versions: tls1_2 tls1_3
EOF
    if (($#)); then
        echo
        echo "# SET= options of it_cyrus_start"
        for kv in "$@"; do
            printf '%s: %s\n' "${kv%%:*}" "${kv#*:}"
        done
    fi
}

_it_cyrus_write_cyrus_conf() {
    local side=$1 imapd=$2 port=$3 sport=$4 conf
    conf=$(_it_cyrus_conf "$side")
    # the master passes -C to nobody: every command names the instance's imapd.conf
    cat <<EOF
# Generated by tests/integration/cyrus.sh: test $IT_NAME, instance $side.
START {
  recover cmd="$IT_CYRUS_BIN/ctl_cyrusdb -C $conf -r"
}
SERVICES {
  imap  cmd="$imapd -C $conf" listen="$IT_HOST:$port" prefork=0
  imaps cmd="$imapd -C $conf -s" listen="$IT_HOST:$sport" prefork=0
}
EVENTS {
}
EOF
}

# Start SIDE's master with its existing config and wait until both ports answer.
_it_cyrus_launch() {
    local side=$1 port=$2 sport=$3 d=$IT_DIR/$1 p i
    rm -f "$d/run/master.pid"
    # stdin/stdout/stderr away from the caller (a daemon holding the test's pipes would
    # keep `make` or a $(...) waiting); -L keeps the master's own messages
    if ! "$IT_CYRUS_BIN/master" -C "$d/imapd.conf" -M "$d/cyrus.conf" \
        -p "$d/run/master.pid" -d -L "$d/cyrus.log" </dev/null >"$d/start.log" 2>&1; then
        it_fail "$side: the Cyrus master did not start: $(cat "$d/start.log")"
    fi
    for p in "$port" "$sport"; do
        for ((i = 0; ; i++)); do
            (exec 3<>"/dev/tcp/$IT_HOST/$p") 2>/dev/null && break
            ((i < 200)) || it_fail "$side: nothing listens on $IT_HOST:$p after 10 s"
            if ((i > 20)) && ! it_cyrus_running "$side"; then
                it_fail "$side: the Cyrus master exited during start-up: $(cat "$d/start.log" "$d/cyrus.log" 2>/dev/null)"
            fi
            sleep 0.05
        done
    done
}

# Log in as the admin (LOGIN over the plain port: loopback) and CREATE each mailbox
# given, then SETQUOTA when asked.  The password goes through the environment.
_it_cyrus_admin() {
    local side=$1 port=$2 quota_kb=$3 var out
    shift 3
    var=$(_it_var "$side")
    local admin_var=${var}_ADMIN
    out=$(IT_CYRUS_ADMIN_PW=$(head -n 1 "$IT_DIR/$side/admin.pw") "$IT_PYTHON" - \
        "$IT_HOST" "$port" "${!admin_var}" "$quota_kb" "$@" <<'EOF' 2>&1
import imaplib, os, sys
host, port, admin, quota = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
c = imaplib.IMAP4(host, port, timeout=30)
c.login(admin, os.environ["IT_CYRUS_ADMIN_PW"])
for mbox in sys.argv[5:]:
    q = '"' + mbox.replace("\\", "\\\\").replace('"', '\\"') + '"'
    typ, data = c.create(q)
    # a side started again keeps its mail
    if typ != "OK" and b"already exists" not in b" ".join(data):
        sys.exit("CREATE %s: %s %s" % (mbox, typ, data))
    if quota:
        typ, data = c.setquota(q, "(STORAGE %s)" % quota)
        if typ != "OK":
            sys.exit("SETQUOTA %s: %s %s" % (mbox, typ, data))
c.logout()
EOF
    ) || it_fail "$side: creating the users' mailboxes failed: $out"
}

it_cyrus_stop() {
    local side=${1:?usage: it_cyrus_stop SIDE} p
    local -a rest
    if p=$(_it_cyrus_pid "$side"); then
        _it_stop_pids "$p"
    fi
    # the master kills its children on SIGTERM; anything of this instance still alive
    # (an imapd the master did not reach) goes the same way
    mapfile -t rest < <(_it_cyrus_all_pids "$side")
    ((${#rest[@]} == 0)) || _it_stop_pids "${rest[@]}"
}

_it_cyrus_stop_all() {
    local conf side
    [[ -n ${IT_DIR:-} && -d $IT_DIR ]] || return 0
    for conf in "$IT_DIR"/*/cyrus.conf; do
        [[ -f $conf ]] || continue
        side=$(basename "$(dirname "$conf")")
        it_cyrus_stop "$side"
    done
}

it_cyrus_restart() {
    local side=${1:?usage: it_cyrus_restart SIDE} port sport
    [[ -f $IT_DIR/$side/ports && -f $IT_DIR/$side/cyrus.conf ]] || it_fail "$side: never started"
    read -r port sport <"$IT_DIR/$side/ports"
    it_cyrus_stop "$side"
    _it_cyrus_launch "$side" "$port" "$sport"
}
