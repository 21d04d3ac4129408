#!/bin/bash
# Passes of one account against two real Dovecots (issue 15):
#   - --trial 5: at most 5 messages per folder, the most recent by UID;
#   - a pre-stage --since DATE: only messages whose INTERNALDATE is on or
#     after DATE are copied (the destination's new messages all are), the
#     rest counted as left for a later pass in the report;
#   - new mail, then a full pass: exactly what the earlier passes left out
#     and the new mail; the destination is the source message by message
#     (nothing doubled);
#   - --final: a last pass, a verify, the account marked finished in the
#     state and the report; a final pass that cannot log in leaves the
#     account unverified (exit 3);
#   - the options' combinations that make no sense are refused.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_init prestage
. "$IT_LIBDIR/common.sh"
it_pair

SINCE=2022-01-01
csv=$IT_DIR/accounts.csv
(umask 077; printf 'email,password\n"%s","%s"\n' "$U" "${PW//\"/\"\"}" > "$csv")
# tr_run [ARGS...]: `trasloco run` of the account, as tr_migrate does `migrate`
tr_run() {
    TR_N=$((TR_N + 1))
    TR_OUT=$IT_DIR/out.$TR_N
    set +e
    "$TRASLOCO" run "$csv" \
        --src "$IT_HOST:$SRC_IMAPS_PORT" --src-tls implicit --src-tls-name "$IT_TLS_NAME" \
        --dst "$IT_HOST:$DST_IMAPS_PORT" --dst-tls implicit --dst-tls-name "$IT_TLS_NAME" \
        --ca-file "$IT_CA" --state "$IT_DIR/state" --timeout 20 --no-progress "$@" > "$TR_OUT" 2>&1
    TR_RC=$?
    set -e
    it_log "trasloco run $* -> exit $TR_RC"
    sed 's/^/    | /' "$TR_OUT" >&2
}
src_tool() {
    it_imaptool --port "$SRC_IMAPS_PORT" --tls implicit --ca "$IT_CA" --tls-name "$IT_TLS_NAME" \
        --user "$U" "$@"
}
dst_tool() {
    it_imaptool --port "$DST_IMAPS_PORT" --tls implicit --ca "$IT_CA" --tls-name "$IT_TLS_NAME" \
        --user "$U" "$@"
}
json() { # json FILE PYTHON-EXPRESSION-OF-r
    python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}

src_tool populate --seed 11 --profile small --messages 80 >&2
src_tool dates > "$IT_DIR/src.dates"
total=$(wc -l < "$IT_DIR/src.dates")
recent=$(awk -F'\t' -v d="$SINCE" '$2 >= d' "$IT_DIR/src.dates" | wc -l)
it_log "source: $total messages, $recent on or after $SINCE"
((recent > 5 && recent < total - 5)) || it_fail "the corpus does not straddle $SINCE ($recent of $total)"

# Combinations refused before anything runs.
tr_migrate --final --trial 5
tr_expect_rc 2
tr_expect_out 'does not go with'
tr_migrate --since 2026-12-01 --before 2026-11-01
tr_expect_rc 2
tr_migrate --since 2026-02-30
tr_expect_rc 2
tr_expect_out 'wants a date YYYY-MM-DD'
set +e
"$TRASLOCO" check /dev/null --since 2026-01-01 --src x --dst y >"$IT_DIR/check.out" 2>&1
rc=$?
set -e
[[ $rc == 2 ]] && grep -q 'options of run and migrate' "$IT_DIR/check.out" ||
    it_fail "check --since was not refused as usage (exit $rc)"

# A trial: 5 per folder at most.
tr_run --trial 5 --report "$IT_DIR/trial.json"
tr_expect_rc 0
tr_expect_out 'left for a later pass'
dst_tool dates > "$IT_DIR/dst.1"
python3 - "$IT_DIR/src.dates" "$IT_DIR/dst.1" <<'EOF' || it_fail "the trial did not copy min(5, n) per folder"
import collections, sys
src = collections.Counter(l.split("\t")[0] for l in open(sys.argv[1]))
dst = collections.Counter(l.split("\t")[0] for l in open(sys.argv[2]))
bad = {f: (n, dst.get(f, 0)) for f, n in src.items() if dst.get(f, 0) != min(5, n)}
print("trial per folder (source, destination):", {f: (n, dst.get(f, 0)) for f, n in src.items()},
      file=sys.stderr)
sys.exit(1 if bad or set(dst) - set(src) else 0)
EOF
trial_copied=$(wc -l < "$IT_DIR/dst.1")
[[ $(json "$IT_DIR/trial.json" 'r["job"]["pass"]') == "trial (5 per folder)" ]] || it_fail "trial report: pass"
[[ $(json "$IT_DIR/trial.json" 'r["accounts"][0]["messages_copied"]') == "$trial_copied" ]] ||
    it_fail "trial report: copied"
[[ $(json "$IT_DIR/trial.json" 'r["accounts"][0]["messages_deferred"]') == "$((total - trial_copied))" ]] ||
    it_fail "trial report: deferred"

# The pre-stage: recent mail only.
tr_run --since "$SINCE" --report "$IT_DIR/since.json"
tr_expect_rc 0
dst_tool dates > "$IT_DIR/dst.2"
python3 - "$IT_DIR/dst.1" "$IT_DIR/dst.2" "$SINCE" <<'EOF' || it_fail "the pre-stage copied a message older than $SINCE"
import collections, sys
before = collections.Counter(open(sys.argv[1]).read().splitlines())
after = collections.Counter(open(sys.argv[2]).read().splitlines())
new = after - before
old = [l for l in new.elements() if l.split("\t")[1] < sys.argv[3]]
print("pre-stage copied %d, older than %s: %d" % (sum(new.values()), sys.argv[3], len(old)),
      file=sys.stderr)
sys.exit(1 if old or before - after else 0)
EOF
dst_recent=$(awk -F'\t' -v d="$SINCE" '$2 >= d' "$IT_DIR/dst.2" | wc -l)
[[ $dst_recent == "$recent" ]] || it_fail "after the pre-stage the destination has $dst_recent recent messages, the source $recent"
since_copied=$(($(wc -l < "$IT_DIR/dst.2") - trial_copied))
[[ $(json "$IT_DIR/since.json" 'r["accounts"][0]["messages_copied"]') == "$since_copied" ]] ||
    it_fail "pre-stage report: copied"
[[ $(json "$IT_DIR/since.json" 'r["job"]["pass"]') == "since $SINCE" ]] || it_fail "pre-stage report: pass"
left=$(json "$IT_DIR/since.json" 'r["accounts"][0]["messages_deferred"]')
[[ $left == "$((total - trial_copied - since_copied))" ]] || it_fail "pre-stage report: $left deferred"

# Mail keeps arriving; then the full pass fills in exactly the rest.
src_tool append --folder INBOX --count 3 --seed 4 >&2
tr_run --report "$IT_DIR/full.json"
tr_expect_rc 0
[[ $(json "$IT_DIR/full.json" 'r["accounts"][0]["messages_copied"]') == "$((left + 3))" ]] ||
    it_fail "the full pass did not copy exactly the $left left out and the 3 new"
[[ $(json "$IT_DIR/full.json" 'r["accounts"][0]["messages_deferred"]') == 0 ]] || it_fail "full: deferred"
[[ $(json "$IT_DIR/full.json" 'r["job"]["pass"]') == full ]] || it_fail "full report: pass"
tr_compare

# The final pass: a last copy, a verify, marked finished.
src_tool append --folder INBOX --count 1 --seed 5 >&2
tr_run --final --report "$IT_DIR/final.json"
tr_expect_rc 0
tr_expect_out 'final: verified complete, marked finished'
[[ $(json "$IT_DIR/final.json" 'r["accounts"][0]["final"]["status"]') == finished ]] || it_fail "final report"
[[ $(json "$IT_DIR/final.json" 'r["accounts"][0]["messages_copied"]') == 1 ]] || it_fail "final: copied"
status=$(python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("select status from accounts").fetchone()[0])' "$IT_DIR/state/state.db")
[[ $status == finished ]] || it_fail "the state says $status, not finished"
tr_compare

# A final pass that cannot log in: not verified, not finished.
printf 'wrong\n' > "$IT_DIR/pw.wrong"
tr_migrate --final --src-password-file "$IT_DIR/pw.wrong"
tr_expect_rc 3
tr_expect_out 'final: not verified'

tr_no_secret
it_pass
