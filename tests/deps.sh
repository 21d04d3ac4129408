#!/bin/sh
# Installs what building and testing trasloco needs, from Debian 12's
# packages, when something is missing.  Needs root for apt-get.
set -eu
PKGS="build-essential autoconf automake pkg-config libetpan-dev libssl-dev libcsv-dev
libcmocka-dev libsqlite3-dev libjansson-dev libsasl2-modules dovecot-imapd dovecot-core
openssl python3 procps valgrind clang libclang-rt-14-dev"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
        missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
    echo "tests/deps.sh: missing Debian packages:$missing (run as root to install them)" >&2
    exit 1
fi
echo "tests/deps.sh: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing
# Debian starts the system Dovecot on install; the tests run their own.
if command -v systemctl >/dev/null 2>&1; then
    systemctl disable --now dovecot.service >/dev/null 2>&1 || true
fi
