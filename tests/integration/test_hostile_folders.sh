#!/bin/bash
# Odd folder names from a '/' source whose Maildir "fs" layout allows '.' in
# names, into a Courier-style destination (prefix "INBOX.", separator '.'):
# a hierarchy 12 levels deep, names containing the destination's separator
# (including ones that only differ from another folder by '.' vs '_', and
# leading, trailing or doubled dots), '&' and strings that look like modified
# UTF-7, non-Latin scripts and a character outside the BMP, names that differ
# only in case, INBOX children next to a top-level folder of the same name
# (both are INBOX.Sotto on a Courier server), LIST wildcards, quotes,
# backslashes and spaces at either end.
#
# Every source folder must arrive with all its messages, in a folder of its own:
# renamed folders are listed (trasloco run's JSON report: renamed_folders, and
# the text summary of migrate), no two source folders share a destination
# folder, and imaptool compare --map (the renames) finds the two sides identical.
# A second run finds nothing to do and renames the same way.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_init hostile-folders
. "$IT_LIBDIR/common.sh"
it_pair LAYOUT=fs -- NS=courier

conn=(--port "$SRC_IMAPS_PORT" --tls implicit --ca "$IT_CA" --tls-name "$IT_TLS_NAME" --user "$U")
names=$IT_DIR/names
deep=Deep
for i in $(seq 2 12); do deep+="/L$i"; done
{
    echo INBOX
    echo "$deep"                       # 12 levels
    echo "${deep%/L*/L*/L*/L*/L*/L*}"  # and level 6 holds mail too
    printf '%s\n' 'a.b' 'a_b' 'a..b' '.hidden' 'dot.' 'Progetti/v1.2' 'Progetti/v1_2' \
        'Progetti/v1.2/sub.x' '中文.文件夹'
    printf '%s\n' 'R&D' '&Jjo-' '&' '&-' 'Rossi & Figli/2024' '&AOA-' 'x&y&z'
    printf '%s\n' '日本語/子' 'Ελληνικά' 'Русский' 'עברית' '한국어' 'emoji 📁' 'Località'
    printf '%s\n' 'Archive' 'ARCHIVE' 'archive' 'Clienti/Rossi' 'clienti/rossi'
    printf '%s\n' 'INBOX/Sotto' 'INBOX/Sotto/Deeper' 'Sotto' 'INBOX/INBOX'
    printf '%s\n' '100%' 'a*b' ' lead' 'trail ' 'say "hi"' 'back\slash' 'semi;colon' "it's"
} > "$names"
"$IT_PYTHON" "$IT_LIBDIR/rawmail.py" fill "${conn[@]}" --names "$names" --count 2 >&2 ||
    it_fail "could not create the source folders"
it_imaptool "${conn[@]}" list >&2

# Run 1: trasloco run (one account), for the JSON report's unambiguous renames.
csv=$IT_DIR/accounts.csv
printf '"%s","%s"\n' "$U" "$(printf '%s' "$PW" | sed 's/"/""/g')" > "$csv"
chmod 600 "$csv"
set +e
timeout -k 5 50 "$TRASLOCO" run "$csv" \
    --src "$IT_HOST:$SRC_IMAPS_PORT" --src-tls implicit --src-tls-name "$IT_TLS_NAME" \
    --dst "$IT_HOST:$DST_IMAPS_PORT" --dst-tls implicit --dst-tls-name "$IT_TLS_NAME" \
    --ca-file "$IT_CA" --state "$IT_DIR/state" --timeout 20 \
    --report "$IT_DIR/report.json" > "$IT_DIR/run.out" 2>&1
rc=$?
set -e
sed 's/^/    | /' "$IT_DIR/run.out" >&2
[[ $rc == 0 ]] || it_fail "trasloco run: exit $rc, expected 0"

# The renames: from the report.  Each source folder in a destination folder of
# its own (never the destination's INBOX unless it is the source's INBOX), no
# '.' left in a target name (the destination's separator), and the hierarchy
# kept: the child of a renamed folder follows its parent.
maps=$IT_DIR/maps
problems=()
if ! "$IT_PYTHON" - "$IT_DIR/report.json" "$names" "$maps" > "$IT_DIR/renames.out" 2>&1 <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
names = [l.rstrip("\n") for l in open(sys.argv[2], encoding="utf-8") if l.rstrip("\n")]
bad = []
acc = r["accounts"]
if len(acc) != 1 or acc[0]["status"] != "ok":
    bad.append("account not ok: %r" % acc)
ren = acc[0].get("renamed_folders") or []
m = {}
for e in ren:
    if e["from"] in m:
        bad.append("renamed twice: %r" % e)
    m[e["from"]] = e["to"]
    print("renamed: %r -> %r (%s)" % (e["from"], e["to"], e.get("why")))
for f in m:
    if f not in names:
        bad.append("a rename of a folder that was not asked for: %r" % f)
target = {}
for n in names:
    t = m.get(n, n)
    if "." in t:
        bad.append("%r goes to %r, but '.' is the destination's separator" % (n, t))
    if t in target:
        bad.append("%r and %r both go to %r: merged" % (target[t], n, t))
    if t.upper() == "INBOX" and n.upper() != "INBOX":
        bad.append("%r goes to the destination's INBOX: merged into it" % n)
    target[t] = n
for n in names:
    if "/" not in n:
        continue
    parent = n.rsplit("/", 1)[0]
    if parent not in names:
        continue
    tp, tc = m.get(parent, parent), m.get(n, n)
    if not tc.startswith(tp + "/") and not (parent.upper() == "INBOX" and "/" not in tc):
        bad.append("%r is a child of %r, but goes to %r, not below %r: the hierarchy is broken"
                   % (n, parent, tc, tp))
with open(sys.argv[3], "w", encoding="utf-8") as f:
    for a, b in m.items():
        f.write("%s=%s\n" % (a, b))
for b in bad:
    print("PROBLEM: " + b)
sys.exit(1 if bad else 0)
PY
then
    while IFS= read -r line; do problems+=("${line#PROBLEM: }"); done < <(grep '^PROBLEM: ' "$IT_DIR/renames.out")
    [[ ${#problems[@]} -gt 0 ]] || problems+=("the rename check failed: $(tail -n 3 "$IT_DIR/renames.out")")
fi
sed 's/^/    renames| /' "$IT_DIR/renames.out" >&2

cmp_args=()
while IFS= read -r line; do cmp_args+=(--map "$line"); done < "$maps"
compare() {
    local out=$IT_DIR/compare.out
    if ! it_imaptool "${conn[@]}" compare --dst-port "$DST_IMAPS_PORT" --dst-tls implicit \
        --dst-ca "$IT_CA" --dst-tls-name "$IT_TLS_NAME" --dst-user "$U" "${cmp_args[@]}" \
        > "$out" 2>&1; then
        problems+=("$1: source and destination differ: $(grep -v '^compare:' "$out" | tr '\n' ';') $(tail -n 1 "$out")")
    fi
    sed "s/^/    compare| /" "$out" >&2
    grep -q "folders=$(grep -c . "$names")" "$out" ||
        problems+=("$1: compare did not see every source folder: $(tail -n 1 "$out")")
}
compare "first run"

# Run 2 (migrate, same state): nothing new, the same renames in the text summary.
tr_migrate
[[ $TR_RC == 0 ]] || problems+=("second run: exit $TR_RC, expected 0")
grep -q ' 0 copied' "$TR_OUT" || problems+=("second run: copied something again")
"$IT_PYTHON" - "$maps" "$TR_OUT" <<'PY' || problems+=("second run: renamed differently (or did not list the renames)")
import sys
out = open(sys.argv[2], encoding="utf-8", errors="replace").read()
for line in open(sys.argv[1], encoding="utf-8"):
    a, b = line.rstrip("\n").split("=", 1)
    assert '"%s" -> "%s"' % (a, b) in out, "not in the summary: %r -> %r" % (a, b)
PY
compare "second run"
tr_no_secret
if ((${#problems[@]})); then
    printf '  - %s\n' "${problems[@]}" >&2
    it_fail "${#problems[@]} problem(s), listed above"
fi
it_pass
