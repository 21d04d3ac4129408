#!/bin/bash
# --src-preset gmail (issue 16): a source that announces Gmail's views with
# SPECIAL-USE ("[Gmail]/All Mail" \All, "[Gmail]/Starred" \Flagged,
# "[Gmail]/Important" \Important, each holding copies of other folders' mail):
#  1. with the preset they are not copied (each named in a warning), every
#     other folder is exact (its session cap: test_jobconf's test_presets);
#  2. with --copy-virtual-folders as well, they are copied too: all exact.
# The preset's xoauth2 is overridden by a later --src-auth password (later
# settings win), so that this test needs no token service (test_oauth has one).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_init gmail-preset
. "$IT_LIBDIR/common.sh"

it_pair
# the views, as Gmail announces them (real folders here: Dovecot's virtual
# plugin is not needed to announce the attributes)
"$IT_PYTHON" - "$SRC_CONF" <<'EOF'
import sys
p = sys.argv[1]
s = open(p).read()
anchor = "    # nothing special: Dovecot's defaults\n  }\n"
views = "".join('  mailbox "[Gmail]/%s" {\n    special_use = \\%s\n    auto = create\n  }\n' % v
                for v in (("All Mail", "All"), ("Starred", "Flagged"), ("Important", "Important")))
assert anchor in s
open(p, "w").write(s.replace(anchor, anchor + views, 1))
EOF
it_dovecot_restart src
tool() { it_imaptool --port "$SRC_IMAPS_PORT" --tls implicit --ca "$IT_CA" --tls-name "$IT_TLS_NAME" --user "$U" "$@"; }
tool populate --seed 7 --profile small >/dev/null
for v in "All Mail" Starred Important; do
    tool append --folder "[Gmail]/$v" --count 4 --seed 11 >/dev/null
done
tool list > "$IT_DIR/src.list"
grep -q 'All Mail.*\\All' "$IT_DIR/src.list" || it_fail "the source does not announce \\All: $(cat "$IT_DIR/src.list")"
grep -q 'Starred.*\\Flagged' "$IT_DIR/src.list" || it_fail "the source does not announce \\Flagged"

# 1. the preset: views left out
tr_migrate --src-preset gmail --src-auth password
tr_expect_rc 0
for v in "All Mail" Starred Important; do
    grep -q "\[Gmail\]/$v: not copied: a virtual view" "$TR_OUT" || it_fail "[Gmail]/$v: no warning"
done
it_imaptool --port "$DST_IMAPS_PORT" --tls implicit --ca "$IT_CA" --tls-name "$IT_TLS_NAME" \
    --user "$U" list > "$IT_DIR/dst.list"
grep -q 'All Mail\|Starred\|Important' "$IT_DIR/dst.list" && it_fail "a view was copied: $(cat "$IT_DIR/dst.list")"
# everything on the destination is exactly the source's (the source's views aside)
it_imaptool --port "$DST_IMAPS_PORT" --tls implicit --ca "$IT_CA" --tls-name "$IT_TLS_NAME" \
    --user "$U" compare --dst-port "$SRC_IMAPS_PORT" --dst-tls implicit --dst-ca "$IT_CA" \
    --dst-tls-name "$IT_TLS_NAME" --ignore-extra-folders > "$IT_DIR/cmp1" 2>&1 ||
    { cat "$IT_DIR/cmp1" >&2; it_fail "the copied folders differ"; }
n_src=$(grep -vc 'Gmail' "$IT_DIR/src.list" || true)
n_dst=$(grep -c . "$IT_DIR/dst.list" || true)
[[ $n_src == "$n_dst" ]] || it_fail "source has $n_src folders besides the views, destination $n_dst"

# 2. reversed: --copy-virtual-folders
tr_migrate --src-preset gmail --src-auth password --copy-virtual-folders
tr_expect_rc 0
grep -q 'not copied: a virtual view' "$TR_OUT" && it_fail "a view was left out with --copy-virtual-folders"
tr_compare
tr_no_secret
it_pass
