#!/bin/sh
# Installs what building and testing trasloco needs, from Debian 12's
# packages, when something is missing.  Needs root for apt-get.
#
# No service is started: while apt-get runs, /usr/sbin/policy-rc.d answers
# 101 (an existing one is put aside and restored afterwards), so neither the
# system Dovecot nor the system Cyrus (both would listen on 0.0.0.0:143/993)
# nor the MTA that cyrus-common pulls in ever runs; the tests start their own
# instances on 127.0.0.1.
#
# Cyrus IMAP (tests/integration/cyrus.sh): Debian's cyrus-imapd declares a
# Conflicts with dovecot-imapd (both provide imap-server), so it cannot be
# installed next to Dovecot.  cyrus-common (master, tools, the libraries) is
# installed normally; the package cyrus-imapd of the same version (it holds only
# the imapd binary the tests need) is fetched with apt-get download and unpacked,
# without dpkg registering it, into $CYRUS_IMAPD_ROOT.
set -eu
PKGS="build-essential autoconf automake pkg-config libetpan-dev libssl-dev libcsv-dev libcrypt-dev
libcmocka-dev libsqlite3-dev libjansson-dev libcurl4-gnutls-dev libsasl2-modules dovecot-imapd dovecot-core
openssl python3 procps valgrind strace clang libclang-rt-14-dev cyrus-common sasl2-bin
libpq-dev postgresql-15 libmicrohttpd-dev python3-prometheus-client chromium mandoc"
# keep in step with tests/integration/cyrus.sh
CYRUS_IMAPD_ROOT=/usr/local/lib/trasloco-it/cyrus-imapd

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
cyrus_version() { dpkg-query -W -f='${Version}' cyrus-common 2>/dev/null; }
# the unpacked imapd is current when it was unpacked from cyrus-common's version
imapd_current() {
    [ -x "$CYRUS_IMAPD_ROOT/usr/lib/cyrus/bin/imapd" ] &&
        [ "$(cat "$CYRUS_IMAPD_ROOT/.version" 2>/dev/null)" = "$(cyrus_version)" ]
}

missing=""
for p in $PKGS; do
    installed "$p" || missing="$missing $p"
done
if [ -z "$missing" ] && imapd_current; then
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    if [ -n "$missing" ]; then
        echo "tests/deps.sh: missing Debian packages:$missing (run as root to install them)" >&2
    else
        echo "tests/deps.sh: $CYRUS_IMAPD_ROOT is missing or outdated (run as root)" >&2
    fi
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive

policy=/usr/sbin/policy-rc.d
saved=$policy.trasloco-saved
restore_policy() {
    rm -f "$policy"
    if [ -e "$saved" ] || [ -L "$saved" ]; then
        mv -f "$saved" "$policy"
    fi
}
# a run killed before restoring left $saved beside our own policy-rc.d: keep $saved
if { [ -e "$policy" ] || [ -L "$policy" ]; } && ! { [ -e "$saved" ] || [ -L "$saved" ]; }; then
    mv "$policy" "$saved"
fi
printf '#!/bin/sh\n# written by trasloco tests/deps.sh while it installs packages\nexit 101\n' >"$policy"
chmod 0755 "$policy"
tmp=""
trap 'restore_policy; [ -z "$tmp" ] || rm -rf "$tmp"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [ -n "$missing" ]; then
    echo "tests/deps.sh: installing$missing"
    apt-get update -q
    # shellcheck disable=SC2086
    apt-get install -y -q --no-install-recommends $missing
fi

if ! imapd_current; then
    version=$(cyrus_version)
    echo "tests/deps.sh: unpacking cyrus-imapd $version into $CYRUS_IMAPD_ROOT"
    tmp=$(mktemp -d)
    # apt-get download writes as the _apt user
    if id _apt >/dev/null 2>&1; then
        chown _apt "$tmp"
    fi
    if ! (cd "$tmp" && apt-get download -q "cyrus-imapd=$version"); then
        # the lists no longer have that version (or there are none yet): refresh
        # them and bring cyrus-common to the version they offer
        apt-get update -q
        apt-get install -y -q --no-install-recommends cyrus-common
        version=$(cyrus_version)
        (cd "$tmp" && apt-get download -q "cyrus-imapd=$version")
    fi
    rm -rf "$CYRUS_IMAPD_ROOT"
    mkdir -p "$CYRUS_IMAPD_ROOT"
    dpkg-deb -x "$tmp"/cyrus-imapd_*.deb "$CYRUS_IMAPD_ROOT"
    printf '%s\n' "$version" >"$CYRUS_IMAPD_ROOT/.version"
fi

# Nothing of the system's own services is wanted at boot either, where an init
# system would start them.
if command -v systemctl >/dev/null 2>&1; then
    for s in dovecot cyrus-imapd exim4 saslauthd; do
        systemctl disable --now "$s.service" >/dev/null 2>&1 || true
    done
fi
for s in dovecot cyrus-imapd exim4 saslauthd; do
    if [ -x "/etc/init.d/$s" ]; then
        update-rc.d "$s" disable >/dev/null 2>&1 || true
    fi
done
