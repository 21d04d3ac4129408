#!/bin/bash
# tests/integration/cyrus_probe.sh: records how Debian 12's Cyrus IMAP 3.6 answers what
# trasloco does as a migration destination (CAPABILITY, NAMESPACE, CREATE of awkward
# names, APPEND of awkward messages and what is stored, SELECT/STATUS, SUBSCRIBE,
# keywords, quota).  Not part of make check: a record for people, re-run after a Cyrus
# upgrade or a change of its settings.
#
#     tests/integration/cyrus_probe.sh [CYRUS_OPTION ...] > probe.txt
#
# CYRUS_OPTIONs go to it_cyrus_start (cyrus.sh): SEP=/ ALTNS=yes SET=munge8bit:no ...
# The report goes to stdout; the spool files of the APPEND folder are inspected at the
# end (on disk, as Cyrus stored them).  Exit 77 when Cyrus is not installed.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/cyrus.sh"

it_init cyrus-probe
U=probe@example.test
UQ=quota@example.test
export PROBE_PW=probe-pw
it_cyrus_start probe USERS="$U:$PROBE_PW $UQ:$PROBE_PW" "$@"
PROBE_ADMIN_PW=$(head -n 1 "$PROBE_ADMIN_PWFILE")
export PROBE_ADMIN_PW

echo "cyrus_probe: $(basename "$(_it_cyrus_imapd)") of cyrus-common $(dpkg-query -W -f='${Version}' cyrus-common 2>/dev/null || echo '?'), options: ${*:-(none)}"
echo "imapd.conf (without comments):"
grep -v -E '^\s*(#|$)' "$PROBE_CONF" | sed "s#$IT_DIR#\$IT_DIR#g; s/^/    /"
echo "TZ of the server processes: ${TZ:-unset} ($(date +%Z%z))"

"$IT_PYTHON" "$IT_LIBDIR/cyrus_probe.py" --host "$IT_HOST" --port "$PROBE_IMAP_PORT" \
    --imaps-port "$PROBE_IMAPS_PORT" --ca "$IT_CA" --tls-name "$IT_TLS_NAME" \
    --user "$U" --quota-user "$UQ" --admin "$PROBE_ADMIN" ${PROBE_ONLY:+--only "$PROBE_ONLY"}

# on disk: is the munging stored, or only in what FETCH shows?
echo
echo "== on disk"
probe_folder="user$PROBE_SEP${U%@*}${PROBE_SEP}Probe@${U##*@}"
dir=$(it_cyrus_cmd probe mbpath "$probe_folder" 2>&1) || dir=""
if [[ -d $dir ]]; then
    f=$(grep -l -a 'Message-ID: <probe-1@example.test>' "$dir"/[0-9]*. 2>/dev/null | head -n 1)
    if [[ -n $f ]]; then
        printf 'spool file %s, Subject line as stored: ' "${f#"$IT_DIR"/}"
        grep -a -m1 '^Subject:' "$f" | "$IT_PYTHON" -c 'import sys; print(repr(sys.stdin.buffer.read()))'
    fi
else
    echo "mbpath $probe_folder: $dir"
fi
it_log "done"
