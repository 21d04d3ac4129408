#!/bin/bash
# The spool does not trust what is dropped in it (`trasloco spool DIR`).
# Hostile jobs next to a good one, in one bounded spool run (`timeout`: a
# FIFO job used to hang the spool forever under its lock):
#   - pending/ entries that are a FIFO, a symbolic link, or a file of another
#     user (`nobody`, as root) are never opened for reading: moved to failed/
#     with a log line saying why;
#   - a job naming a path outside the spool (report-csv, log-dir, state,
#     accounts: absolute, with "..", or through a symbolic link in the
#     spool), or inside the spool's own queue, is refused naming the key and
#     the line;
#   - a job setting insecure, allow-plaintext, ca-file or dst-admin is
#     refused (those come from the spool's command line or its --config file,
#     here the CA);
# nothing is written outside the spool, and the good job still runs to done/.
# Then the spool directory itself: a symbolic link or a directory writable by
# others is refused, and so is a --config file that is a link, not root's, or
# writable by others, and a --config with dst-admin but no dst.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_init spool-trust
. "$IT_LIBDIR/common.sh"
it_pair
src() { it_imaptool --port "$SRC_IMAPS_PORT" --tls implicit --ca "$IT_CA" --tls-name "$IT_TLS_NAME" --user "$U" "$@"; }
src append --folder INBOX --count 5 --seed 71 >&2

root=0
[[ $(id -u) == 0 ]] && root=1
spool=$IT_DIR/spool
outside=$IT_DIR/outside
mkdir -p "$spool/pending" "$spool/csv" "$outside" "$IT_DIR/etc"
chmod 0700 "$spool"
csv_line=$(printf '"%s","%s"' "$U" "$(printf '%s' "$PW" | sed 's/"/""/g')")
printf '%s\n' "$csv_line" > "$spool/csv/acme.csv"
printf '%s\n' "$csv_line" > "$outside/other-customer.csv"
printf 'precious\n' > "$outside/victim.csv"
cp "$IT_CA" "$spool/csv/evil-ca.pem"
ln -s "$outside" "$spool/csv/out"
chmod 600 "$spool/csv/acme.csv" "$outside/other-customer.csv"

# The operator's settings: the CA comes from a root-owned config file (or,
# not as root, from the spool's command line).
conf=$IT_DIR/etc/spool.conf
printf 'ca-file = %s\ntimeout = 20\n' "$IT_CA" > "$conf"
chmod 0644 "$conf"
if ((root)); then op=(--config "$conf"); else op=(--ca-file "$IT_CA" --timeout 20); fi

job() {   # job [ACCOUNTS] [EXTRA LINE]
    cat <<JOB
accounts = ${1:-csv/acme.csv}
src = $IT_HOST:$SRC_IMAPS_PORT
src-tls = implicit
src-tls-name = $IT_TLS_NAME
dst = $IT_HOST:$DST_IMAPS_PORT
dst-tls = implicit
dst-tls-name = $IT_TLS_NAME
JOB
    [[ -n ${2:-} ]] && printf '%s\n' "$2"
    return 0
}
# name|accounts|extra line|message the refusal must carry
cases=(
    "report-abs||report-csv = $outside/victim.csv|report-csv = \"$outside/victim.csv\": outside the spool directory"
    "report-dotdot||report-csv = ../outside/escape.csv|report-csv = \"../outside/escape.csv\": \"..\" is not allowed"
    "log-dir||log-dir = $outside/logs|log-dir = \"$outside/logs\": outside the spool directory"
    "state||state = $outside/state|state = \"$outside/state\": outside the spool directory"
    "state-dotdot||state = csv/../../outside/state|\"..\" is not allowed"
    "accounts-abs|$outside/other-customer.csv||accounts = \"$outside/other-customer.csv\": outside the spool directory"
    "accounts-link|csv/out/other-customer.csv||$spool/csv/out is a symbolic link"
    "queue||report-csv = done/z-good.json|inside the spool's own done/"
    "insecure||insecure = yes|\"insecure\" is not taken from a spool job"
    "plaintext||allow-plaintext = yes|\"allow-plaintext\" is not taken from a spool job"
    "ca-file||ca-file = csv/evil-ca.pem|\"ca-file\" is not taken from a spool job"
    "dst-admin||dst-admin = admin@azienda.test|\"dst-admin\" is not taken from a spool job"
)
for c in "${cases[@]}"; do
    IFS='|' read -r name acc extra msg <<< "$c"
    job "$acc" "$extra" > "$spool/pending/h-$name.job"
done
# Not regular files of the spool's owner: a FIFO, a link to a job outside
# the spool, a job file of another user.
mkfifo "$spool/pending/h-fifo.job"
job > "$outside/linked.job"
ln -s "$outside/linked.job" "$spool/pending/h-link.job"
if ((root)); then
    job > "$spool/pending/h-nobody.job"
    chown nobody "$spool/pending/h-nobody.job"
fi
job > "$spool/pending/z-good.job"
snapshot() { find "$outside" -printf '%p %y %s %T@\n' | sort; }
before=$(snapshot)

set +e
timeout -k 10 120 "$TRASLOCO" spool "$spool" "${op[@]}" > "$IT_DIR/spool.out" 2>&1
rc=$?
set -e
sed 's/^/    | /' "$IT_DIR/spool.out" >&2
[[ $rc != 124 && $rc != 137 ]] || it_fail "the spool hung (killed by timeout after 120 s)"
[[ $rc == 1 ]] || it_fail "spool with refused jobs: expected exit 1, got $rc"
problems=()
for c in "${cases[@]}"; do
    IFS='|' read -r name acc extra msg <<< "$c"
    [[ -f $spool/failed/h-$name.job ]] || problems+=("h-$name.job is not in failed/")
    grep -F -- "h-$name.job:" "$IT_DIR/spool.out" | grep -qF -- "$msg" ||
        problems+=("h-$name.job: no message with its line and \"$msg\"")
    [[ -e $spool/failed/h-$name.json ]] && grep -q '"accounts": \[ *{' "$spool/failed/h-$name.json" &&
        problems+=("h-$name.job ran")
done
grep -q "h-fifo.job refused: not a regular file (a FIFO); moved to failed/" "$IT_DIR/spool.out" ||
    problems+=("no refusal of the FIFO job")
[[ -p $spool/failed/h-fifo.job ]] || problems+=("the FIFO job is not in failed/")
grep -q "h-link.job refused: a symbolic link" "$IT_DIR/spool.out" ||
    problems+=("no refusal of the symlinked job")
[[ -L $spool/failed/h-link.job ]] || problems+=("the symlinked job is not in failed/")
if ((root)); then
    grep -q "h-nobody.job refused: owned by uid $(id -u nobody), not by the spool's owner (uid 0)" \
        "$IT_DIR/spool.out" || problems+=("no refusal of nobody's job")
    [[ -f $spool/failed/h-nobody.job ]] || problems+=("nobody's job is not in failed/")
else
    it_log "not root: the job of another user is not tried"
fi
grep -Eq 'running h-(fifo|link|nobody)\.job' "$IT_DIR/spool.out" && problems+=("a refused job was run")
[[ -f $spool/done/z-good.job ]] || problems+=("the good job is not in done/")
grep -q '"status": "ok"' "$spool/done/z-good.json" 2>/dev/null || problems+=("the good job's report is not ok")
after=$(snapshot)
if [[ $before != "$after" ]]; then
    diff <(printf '%s\n' "$before") <(printf '%s\n' "$after") >&2 || true
    problems+=("something was written outside the spool")
fi
[[ $(cat "$outside/victim.csv") == precious ]] || problems+=("victim.csv was replaced")
[[ -z $(find "$spool/pending" "$spool/running" -mindepth 1) ]] || problems+=("pending/ or running/ not empty")
if ((${#problems[@]})); then
    printf '    problem: %s\n' "${problems[@]}" >&2
    it_fail "${#problems[@]} problem(s) with hostile jobs"
fi
tr_compare

# ---- the spool directory and its configuration --------------------------------
expect() {   # expect RC MESSAGE -- ARGS...
    local want=$1 msg=$2 rc
    shift 3
    set +e
    timeout -k 5 60 "$TRASLOCO" spool "$@" > "$IT_DIR/dir.out" 2>&1
    rc=$?
    set -e
    sed 's/^/    | /' "$IT_DIR/dir.out" >&2
    [[ $rc == "$want" ]] || it_fail "spool $*: expected exit $want, got $rc"
    grep -qF -- "$msg" "$IT_DIR/dir.out" || it_fail "spool $*: no message \"$msg\""
    grep -q 'running ' "$IT_DIR/dir.out" && it_fail "spool $*: a job ran"
    return 0
}
job > "$spool/pending/again.job"
ln -s "$spool" "$IT_DIR/spool-link"
expect 6 "spool: $IT_DIR/spool-link is a symbolic link" -- "$IT_DIR/spool-link" "${op[@]}"
expect 6 "spool: $IT_DIR/spool-link is a symbolic link" -- "$IT_DIR/spool-link/" "${op[@]}"
chmod 0770 "$spool"
expect 6 "spool: $spool is writable by group or others (mode 0770)" -- "$spool" "${op[@]}"
chmod 0700 "$spool"
chmod 0777 "$spool/pending"
expect 6 "spool: $spool/pending is writable by group or others (mode 0777)" -- "$spool" "${op[@]}"
chmod 0700 "$spool/pending"
if ((root)); then
    chmod 0664 "$conf"
    expect 2 "must belong to root and be writable by no one else (it is uid 0, mode 0664)" -- \
        "$spool" --config "$conf"
    chmod 0644 "$conf"
    cp -p "$conf" "$IT_DIR/etc/nobody.conf"
    chown nobody "$IT_DIR/etc/nobody.conf"
    expect 2 "must belong to root and be writable by no one else (it is uid $(id -u nobody)" -- \
        "$spool" --config "$IT_DIR/etc/nobody.conf"
    ln -s "$conf" "$IT_DIR/etc/link.conf"
    expect 2 "spool configuration $IT_DIR/etc/link.conf: a symbolic link" -- \
        "$spool" --config "$IT_DIR/etc/link.conf"
    printf 'ca-file = %s\ndst-admin = admin@azienda.test\n' "$IT_CA" > "$IT_DIR/etc/admin.conf"
    expect 2 "a spool with --dst-admin needs --dst" -- "$spool" --config "$IT_DIR/etc/admin.conf"
    # a spool owned by another user is not run by root
    chown -R nobody "$spool"
    expect 6 "spool: $spool belongs to uid $(id -u nobody), not to uid 0 who runs the spool" -- \
        "$spool" "${op[@]}"
    chown -R root "$spool"
fi
[[ -f $spool/pending/again.job ]] || it_fail "a refused spool run touched pending/"
it_pass
