#!/bin/bash
# The source changes under trasloco: a folder deleted and another renamed
# while the job runs, messages expunged between runs.  The job reports the
# folder it could not finish and goes on; a re-run copies what remains to be
# copied; nothing is ever deleted on the destination.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_init src-changes
. "$IT_LIBDIR/common.sh"
it_pair
src() { it_imaptool --port "$SRC_IMAPS_PORT" --tls implicit --ca "$IT_CA" --tls-name "$IT_TLS_NAME" --user "$U" "$@"; }
for f in INBOX Alfa Beta Gamma Delta; do
    src append --folder "$f" --count 40 --seed "${#f}" --size-kb 150 >/dev/null
done

# Delete Gamma and rename Delta while the copy runs (one session, small
# batches: the job takes a few seconds).
slow=(--src-max-per-account 1 --batch-size 1 --batch-count 2 --no-progress)
"$TRASLOCO" migrate --src "$IT_HOST:$SRC_IMAPS_PORT" --src-tls implicit \
    --src-tls-name "$IT_TLS_NAME" --dst "$IT_HOST:$DST_IMAPS_PORT" --dst-tls implicit \
    --dst-tls-name "$IT_TLS_NAME" --ca-file "$IT_CA" --user "$U" \
    --src-password-file "$IT_DIR/pw" --state "$IT_DIR/state" "${slow[@]}" > "$IT_DIR/run1" 2>&1 &
job=$!
sleep 0.2
kill -0 "$job" 2>/dev/null || it_fail "the first run ended before the source changed: make it bigger"
src delete-folder Gamma >&2
src rename-folder Delta "Delta rinominata" >&2
rc=0
wait "$job" || rc=$?
grep -v ' info ' "$IT_DIR/run1" >&2 || true
# Gamma (and Delta under its old name) may have been copied before the
# change, or fail now: either is fine, as long as it is said.
[[ $rc == 0 || $rc == 1 ]] || it_fail "first run: exit $rc"
if [[ $rc == 1 ]]; then
    grep -Eq 'folder "(Gamma|Delta)" failed' "$IT_DIR/run1" || it_fail "exit 1 without naming the folder"
fi

# Again: everything the source has now is on the destination, once.
tr_migrate
tr_expect_rc 0
tr_compare --ignore-extra-folders

# Messages expunged on the source between runs stay on the destination.
src expunge --folder Alfa --count 3 --seed 5 >&2
src append --folder Beta --count 2 --seed 99 >/dev/null
tr_migrate
tr_expect_rc 0
tr_expect_out ' 2 copied'
tr_expect_out ' 0 failed'
out=$IT_DIR/cmp
src compare --dst-port "$DST_IMAPS_PORT" --dst-tls implicit --dst-ca "$IT_CA" \
    --dst-tls-name "$IT_TLS_NAME" --dst-user "$U" --ignore-extra-folders > "$out" 2>&1 || true
grep -q 'missing=0 extra=3 ' "$out" || { cat "$out" >&2; it_fail "expected the 3 expunged messages kept on the destination, nothing else different"; }
it_pass
