#!/bin/bash
# bench/peers.sh TOOL SCEN MODE RTT TLS PAR SET: one run of a peer migration tool, measured
# and verified exactly like trasloco's (bench/common.sh), on the same servers and corpus.
#
#   TOOL  doveadm   dsync over imapc: `doveadm backup -R -u USER imapc:` in the destination
#                   instance's config context (it writes dst's Maildir itself, not through
#                   dst's IMAP: its destination work shows in its own CPU, not in dst's)
#         mbsync    isync: one channel per account, Far = source, Near = destination,
#                   `Sync Pull`, `Create Near`, `CopyArrivalDate yes`
#   SCEN  scenario name (a, b, ... as bench/run.sh names them);  MODE full | rerun
#   RTT   0, or the RTT of the running delay proxy (the tool then connects through it)
#   TLS   plain | tls (implicit TLS, certificate checked)
#   PAR   accounts at once (one tool process per account, xargs -P PAR)
#   SET   which accounts: $BENCH_W/accounts-SET.csv
#
# Called by bench/run.sh (BENCH_PEERS=1 or auto), which empties the destination before a
# full run; MODE=full here only removes the tool's own state.  Needs doveadm
# (dovecot-core) and mbsync (isync): apt-get install -y dovecot-core isync.
#
# Known behaviour of the peers on this corpus (shown by the verifier, not hidden):
# - mbsync (isync 1.4) adds an X-TUID: header to every message it copies: verified with
#   --strip-header X-TUID; it keeps no keyword but $Forwarded (flags/kw_only > 0).
# - isync checks the host name against DNS names only: over TLS it is given the server's
#   certificate itself in CertificateFile (trusted as an exact host certificate).
# - doveadm -c FILE puts the configuration, passwords included, in its environment.
set -euo pipefail
BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/common.sh
. "$BENCH_DIR/common.sh"

if (($# != 7)); then
    sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
fi
TOOL=$1 SCEN=$2 MODE=$3 RTT=$4 TLS=$5 PAR=$6 SET=$7
case $TOOL in doveadm | mbsync) ;; *) echo "peers.sh: unknown tool $TOOL" >&2; exit 2 ;; esac
command -v "$TOOL" >/dev/null || { echo "peers.sh: $TOOL not installed" >&2; exit 2; }

W=$BENCH_W/peers/$TOOL-$SCEN
[[ $MODE == full ]] && rm -rf "$W"
mkdir -p "$W/state" "$W/logs"
bench_ports "$RTT" "$TLS"
ACC=$BENCH_W/accounts-$SET.csv
H=127.0.0.1

# "user","password" -> user<TAB>password (the bench's passwords hold no quote or tab)
users() { sed -e 's/^"\(.*\)","\(.*\)"$/\1\t\2/' "$ACC"; }

job=$W/job.sh
echo '#!/bin/bash' >"$job"
verify_args=()
case $TOOL in
doveadm)
    t="-o imapc_ssl=no"
    [[ $TLS == tls ]] && t="-o imapc_ssl=imaps -o ssl_client_ca_file=$IT_CA"
    : >"$W/users.jobs"
    while IFS=$'\t' read -r u p; do
        printf '%s\n' "doveadm -c '$DST_CONF' -o imapc_host=$H -o imapc_port=$SP $t -o imapc_user='$u' -o imapc_password='$p' -o 'imapc_features=rfc822.size fetch-headers' -o mail_prefetch_count=20 -o mail_shared_explicit_inbox=yes backup -R -u '$u' imapc: > '$W/logs/$MODE-$u.out' 2>&1" >>"$W/users.jobs"
    done < <(users)
    ;;
mbsync)
    if [[ $TLS == tls ]]; then
        cat "$IT_DIR/ssl/mail.test.pem" "$IT_CA" >"$W/certs.pem"
        t=$(printf 'SSLType IMAPS\nSystemCertificates no\nCertificateFile %s' "$W/certs.pem")
    else
        t="SSLType None"
    fi
    : >"$W/mbsyncrc"
    : >"$W/users.jobs"
    i=0
    while IFS=$'\t' read -r u p; do
        i=$((i + 1))
        for side in src dst; do
            port=$SP
            [[ $side == dst ]] && port=$DP
            cat >>"$W/mbsyncrc" <<EOF
IMAPAccount $side-$i
Host $H
Port $port
User $u
Pass $p
$t
AuthMechs LOGIN

IMAPStore $side-$i
Account $side-$i

EOF
        done
        cat >>"$W/mbsyncrc" <<EOF
Channel u$i
Far :src-$i:
Near :dst-$i:
Patterns *
Create Near
Sync Pull
Expunge None
Remove None
CopyArrivalDate yes
SyncState $W/state/u$i/

EOF
        mkdir -p "$W/state/u$i"
        printf '%s\n' "mbsync -c '$W/mbsyncrc' -q u$i > '$W/logs/$MODE-$u.out' 2>&1" >>"$W/users.jobs"
    done < <(users)
    chmod 600 "$W/mbsyncrc"
    verify_args=(--strip-header X-TUID)
    ;;
esac
# one process per account, PAR at once; the job fails if any of them failed
printf "tr '\\\\n' '\\\\0' < '%s' | xargs -0 -n 1 -P %s bash -c\n" "$W/users.jobs" "$PAR" >>"$job"

BENCH_NOTE=${BENCH_NOTE:-} bench_measure "$TOOL" "$SCEN" "$MODE" "$RTT" "$TLS" "$PAR" "$SET" \
    "$job" "${verify_args[@]}"
