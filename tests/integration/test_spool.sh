#!/bin/bash
# Jobs for cron and panels: `trasloco spool DIR` runs the job files in
# DIR/pending once, under a lock (two overlapping runs never run one job
# twice), moves them to done/ or failed/ with their report, and puts back a
# job left in running/ by a run that died.  Also `trasloco check`: logins,
# counts and the destination's quota, before anything is copied.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_init spool
. "$IT_LIBDIR/common.sh"
it_pair -- QUOTA_MB=5
src() { it_imaptool --port "$SRC_IMAPS_PORT" --tls implicit --ca "$IT_CA" --tls-name "$IT_TLS_NAME" --user "$U" "$@"; }
src append --folder INBOX --count 30 --seed 61 >&2
src append --folder Archivio --count 5 --seed 62 >&2

spool=$IT_DIR/spool
mkdir -p "$spool/pending" "$spool/csv"
printf '"%s","%s"\n' "$U" "$(printf '%s' "$PW" | sed 's/"/""/g')" > "$spool/csv/acme.csv"
chmod 600 "$spool/csv/acme.csv"
# A job for the spool: TLS settings (the CA) are not taken from spool jobs
# but from the spool's --config file (root's; or, not as root, from its
# command line).  `job ca` adds the CA for `trasloco check`, which runs the
# job file directly.
job() {
    cat <<JOB
# customer acme
accounts = csv/acme.csv
src = $IT_HOST:$SRC_IMAPS_PORT
src-tls = implicit
src-tls-name = $IT_TLS_NAME
dst = $IT_HOST:$DST_IMAPS_PORT
dst-tls = implicit
dst-tls-name = $IT_TLS_NAME
parallel-accounts = 2
timeout = 20
JOB
    [[ ${1:-} == ca ]] && printf 'ca-file = %s\n' "$IT_CA"
    return 0
}
printf 'ca-file = %s\n' "$IT_CA" > "$IT_DIR/spool.conf"
chmod 0644 "$IT_DIR/spool.conf"
if [[ $(id -u) == 0 ]]; then op=(--config "$IT_DIR/spool.conf"); else op=(--ca-file "$IT_CA"); fi

# Preflight: the account logs in on both sides and fits in its 5 MB.
job ca > "$spool/check.job"
set +e
"$TRASLOCO" check "$spool/check.job" --report "$IT_DIR/check.json" > "$IT_DIR/check.out" 2>&1
rc=$?
set -e
cat "$IT_DIR/check.out" >&2
[[ $rc == 0 ]] || it_fail "check: expected exit 0, got $rc"
grep -Eq "^$U +ok +2 +35 " "$IT_DIR/check.out" || it_fail "check: wrong counts"
grep -q 'used of 5.2 MB' "$IT_DIR/check.out" || it_fail "check: no quota shown"
rm "$spool/check.job"
# ... and one that would not fit.
src append --folder Grossi --count 3 --seed 63 --size-kb 2000 >&2
job ca > "$spool/check.job"
set +e
"$TRASLOCO" check "$spool/check.job" --report "$IT_DIR/check.json" > "$IT_DIR/check.out" 2>&1
rc=$?
set -e
cat "$IT_DIR/check.out" >&2
[[ $rc == 1 ]] || it_fail "check: expected exit 1 for an account that does not fit, got $rc"
grep -Eq "^$U +will_not_fit" "$IT_DIR/check.out" || it_fail "check: should say will_not_fit"
grep -q '"status": "will_not_fit"' "$IT_DIR/check.json" || it_fail "check.json: no will_not_fit"
rm "$spool/check.job"
src delete-folder Grossi >&2

# Two spool runs at once: one runs the job, the other leaves it alone.
job > "$spool/pending/2026-11-23-acme.job"
set +e
"$TRASLOCO" spool "$spool" "${op[@]}" > "$IT_DIR/spool1.out" 2>&1 &
p1=$!
"$TRASLOCO" spool "$spool" "${op[@]}" > "$IT_DIR/spool2.out" 2>&1 &
p2=$!
wait $p1; r1=$?
wait $p2; r2=$?
set -e
cat "$IT_DIR/spool1.out" "$IT_DIR/spool2.out" >&2
[[ $r1 == 0 && $r2 == 0 ]] || it_fail "spool runs exited $r1 and $r2"
[[ $(cat "$IT_DIR/spool1.out" "$IT_DIR/spool2.out" | grep -c 'running 2026-11-23-acme.job') == 1 ]] ||
    it_fail "the job did not run exactly once"
grep -q 'another run holds the lock' "$IT_DIR/spool1.out" "$IT_DIR/spool2.out" ||
    it_fail "the second run did not notice the lock"
[[ -f $spool/done/2026-11-23-acme.job && -f $spool/done/2026-11-23-acme.json ]] ||
    it_fail "the job and its report are not in done/"
[[ -z $(find "$spool/pending" "$spool/running" -type f) ]] || it_fail "pending/ or running/ not empty"
grep -q '"status": "ok"' "$spool/done/2026-11-23-acme.json" || it_fail "report does not say ok"
[[ $(stat -c %a "$spool/done/2026-11-23-acme.json") == 600 ]] || it_fail "report not private"
tr_compare

# Nothing pending: a no-op.
"$TRASLOCO" spool "$spool" "${op[@]}" > "$IT_DIR/spool3.out" 2>&1 || it_fail "idle spool run failed"
grep -q 'running' "$IT_DIR/spool3.out" && it_fail "an idle spool run ran something"

# A job left in running/ (the machine rebooted mid-job) runs again; new
# mail arrived meanwhile and is the only thing copied.
src append --folder INBOX --count 2 --seed 64 >&2
mv "$spool/done/2026-11-23-acme.job" "$spool/running/"
"$TRASLOCO" spool "$spool" "${op[@]}" > "$IT_DIR/spool4.out" 2>&1 || it_fail "recovering spool run failed"
cat "$IT_DIR/spool4.out" >&2
grep -q 'was interrupted; running it again' "$IT_DIR/spool4.out" || it_fail "no recovery"
grep -Eq '"messages_copied": 2,' "$spool/done/2026-11-23-acme.json" || it_fail "expected 2 copied"
tr_compare

# A job with an account that fails goes to failed/.  Its CSV also has a
# row with swapped columns whose password holds an '@': skipped, and
# nowhere quoted (it was, in the warning and in the report's skipped_rows).
SWAPPED_PW='p@ss-Swapped9'
printf '"%s","wrong"\n"%s","other@azienda.test"\n' "$U" "$SWAPPED_PW" > "$spool/csv/bad.csv"
chmod 600 "$spool/csv/bad.csv"
job | sed 's#csv/acme.csv#csv/bad.csv#' > "$spool/pending/bad.job"
set +e
"$TRASLOCO" spool "$spool" "${op[@]}" > "$IT_DIR/spool5.out" 2>&1
rc=$?
set -e
cat "$IT_DIR/spool5.out" >&2
[[ $rc == 1 ]] || it_fail "spool with a failed job: expected exit 1, got $rc"
[[ -f $spool/failed/bad.job && -f $spool/failed/bad.json ]] || it_fail "bad.job not in failed/"
grep -q 'line 2: field 2 is an email address: are the columns swapped' "$spool/failed/bad.json" ||
    it_fail "the report does not list the swapped row"
grep -rqF -- "$PW" "$spool/done" "$spool/failed" "$spool/state" && it_fail "a password leaked"
grep -rqF -- "$SWAPPED_PW" "$spool/done" "$spool/failed" "$spool/state" "$IT_DIR/spool5.out" &&
    it_fail "the password of the swapped row leaked into the log or the report"
it_pass
