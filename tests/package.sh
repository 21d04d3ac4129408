#!/bin/bash
# The Debian package, end to end, on Debian 12 as root (CI runs it after the
# test suite; it runs alone too):
#   1. installs what packaging needs (debhelper, lintian, ...) and the
#      package's Build-Depends (apt-get build-dep on debian/control);
#   2. builds it with dpkg-buildpackage -us -uc -b from a copy of the tracked
#      files (so the clone's parent gets no .deb), naming the clone's commit
#      (TRASLOCO_COMMIT); DEB_BUILD_OPTIONS is passed through (CI: nocheck,
#      the suite ran already; without it the unit tests run in the build);
#   3. lintian: its whole output is shown; an error fails;
#   4. dpkg -i (+ apt-get -f install), then trasloco --version, man -w, the
#      user, the private directories, no unit enabled, and samples/demo.sh
#      against /usr/bin/trasloco;
#   5. dpkg --purge, and nothing named *trasloco* is left on the system that
#      was not there before, but the trasloco user (Debian keeps system users).
# PACKAGE_OUT=DIR keeps the .deb, .buildinfo, .changes and lintian's output
# there; PACKAGE_DEMO=0 skips the demo.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
say() { printf '== package: %s\n' "$*"; }
fail() { printf 'FAIL: package: %s\n' "$*" >&2; exit 1; }
[[ $(id -u) == 0 ]] || fail "run as root (apt-get, dpkg -i)"
export DEBIAN_FRONTEND=noninteractive
t0=$(date +%s)

say "installing the packaging tools and the Build-Depends"
apt-get install -y -q --no-install-recommends build-essential debhelper dpkg-dev lintian \
    fakeroot mandoc man-db bash-completion git >/dev/null
apt-get build-dep -y -q --no-install-recommends "$top" >/dev/null

work=$(mktemp -d /tmp/trasloco-package.XXXXXX)
trap 'rm -rf "$work"' EXIT
version=$(dpkg-parsechangelog -l "$top/debian/changelog" -S Version)
src=$work/trasloco-$version
mkdir -p "$src"
# the tracked files as they are in the clone (edits included)
(cd "$top" && git -c safe.directory='*' ls-files -z | tar --null -T - -cf -) | tar -xf - -C "$src"
export TRASLOCO_COMMIT=${TRASLOCO_COMMIT:-$("$top/gitcommit.sh" "$top")}

say "dpkg-buildpackage -us -uc -b (DEB_BUILD_OPTIONS=${DEB_BUILD_OPTIONS:-}, commit $TRASLOCO_COMMIT)"
tb=$(date +%s)
if ! (cd "$src" && dpkg-buildpackage -us -uc -b >"$work/build.log" 2>&1); then
    tail -n 80 "$work/build.log" >&2
    fail "dpkg-buildpackage failed"
fi
build_s=$(($(date +%s) - tb))
deb=$(ls "$work"/trasloco_"$version"_*.deb)
changes=$(ls "$work"/trasloco_"$version"_*.changes)
say "built $(basename "$deb") in ${build_s}s"
dpkg-deb -c "$deb" | awk '{print $1, $2, $6}'

say "lintian"
lintian --fail-on none --display-info "$changes" >"$work/lintian.txt" 2>&1 || true
cat "$work/lintian.txt"
if [[ -n ${PACKAGE_OUT:-} ]]; then
    mkdir -p "$PACKAGE_OUT"
    cp "$work"/trasloco_"$version"_* "$work/lintian.txt" "$work/build.log" "$PACKAGE_OUT"/
fi
if grep -q '^E: ' "$work/lintian.txt"; then
    fail "lintian reports errors"
fi

# what is named *trasloco* before the package (the clone, the tests' Cyrus...)
scan() {
    find /etc /usr /lib /var /opt /srv -xdev \( -path /var/cache/apt -o -path /var/lib/apt \
        -o -path "$top" -o -path "$work" \) -prune -o -name '*trasloco*' -print 2>/dev/null | sort
}
before=$(scan)

say "dpkg -i"
# man pages even where a dpkg.cfg.d path-exclude drops /usr/share/man (Docker images)
if ! dpkg --path-include='/usr/share/man/*' -i "$deb"; then
    apt-get -f install -y -q
fi
dpkg-query -W -f='${Status}\n' trasloco | grep -q "install ok installed" || fail "not installed"

say "trasloco --version"
out=$(/usr/bin/trasloco --version) || fail "trasloco --version exited $?"
printf '%s\n' "$out"
grep -qx "trasloco ${version%%-*}" <<<"$out" || fail "--version does not say ${version%%-*}"
grep -qx "commit $TRASLOCO_COMMIT" <<<"$out" || fail "--version does not name commit $TRASLOCO_COMMIT"
for lib in libetpan OpenSSL SQLite; do
    grep -q "^$lib [0-9]" <<<"$out" || fail "--version does not name $lib's version"
done

say "man -w"
man -w trasloco || fail "man -w trasloco finds nothing"
man -w 5 trasloco-job || fail "man -w 5 trasloco-job finds nothing"

say "the user, the directories, the units"
getent passwd trasloco >/dev/null || fail "no user trasloco"
for d in /var/lib/trasloco /var/spool/trasloco; do
    st=$(stat -c '%a %U %G' "$d") || fail "$d missing"
    [[ $st == "700 trasloco trasloco" ]] || fail "$d is $st, not 700 trasloco trasloco"
done
for u in trasloco-spool.service trasloco-spool.timer trasloco-worker.service trasloco-serve.service; do
    [[ -f /lib/systemd/system/$u ]] || fail "no /lib/systemd/system/$u"
done
if enabled=$(find /etc/systemd/system -name 'trasloco*' 2>/dev/null | grep .); then
    fail "units enabled by the package: $enabled"
fi
[[ -f /usr/share/bash-completion/completions/trasloco ]] || fail "no bash completion"
[[ -f /usr/share/doc/trasloco/examples/example.job ]] || fail "no example job"

if [[ ${PACKAGE_DEMO:-1} != 0 ]]; then
    say "samples/demo.sh against /usr/bin/trasloco"
    td=$(date +%s)
    TRASLOCO_BIN=/usr/bin/trasloco "$top/samples/demo.sh" >"$work/demo.log" 2>&1 ||
        { tail -n 60 "$work/demo.log" >&2; fail "the demo failed against the package"; }
    grep -F "== using /usr/bin/trasloco" "$work/demo.log" || fail "the demo did not use the package"
    tail -n 3 "$work/demo.log"
    say "demo took $(($(date +%s) - td))s"
fi

say "dpkg --purge"
dpkg --purge trasloco
st=$(dpkg-query -W -f='${Status}' trasloco 2>/dev/null || true)
[[ -z $st || $st == "unknown ok not-installed" || $st == "purge ok not-installed" ]] ||
    fail "dpkg still knows trasloco after the purge: $st"
for d in /var/lib/trasloco /var/spool/trasloco /usr/share/doc/trasloco; do
    [[ ! -e $d ]] || fail "$d is left after the purge"
done
after=$(scan)
left=$(comm -13 <(printf '%s\n' "$before") <(printf '%s\n' "$after") | grep . || true)
[[ -z $left ]] || fail "left behind by the purge: $left"
if getent passwd trasloco >/dev/null; then
    say "kept, as Debian policy does: the system user trasloco (and its group)"
fi
say "done in $(($(date +%s) - t0))s (dpkg-buildpackage ${build_s}s)"
