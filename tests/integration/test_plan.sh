#!/bin/bash
# A plan before the copy: `check --folders` and `migrate --dry-run` show, per
# folder, where it goes and why (same name, special-use role, --map,
# excluded), its messages and bytes on the source and what the destination
# folder holds already, also as JSON (--report); and they are read only on
# both servers: every command they send (recorded by a proxy, in clear on
# loopback) is one that reads, and both servers' folders, subscriptions and
# message counts are the same after as before.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_init plan
. "$IT_LIBDIR/common.sh"
it_pair -- SPECIAL_USE=yes

src() { it_imaptool --port "$SRC_IMAPS_PORT" --tls implicit --ca "$IT_CA" --tls-name "$IT_TLS_NAME" --user "$U" "$@"; }
dst() { it_imaptool --port "$DST_IMAPS_PORT" --tls implicit --ca "$IT_CA" --tls-name "$IT_TLS_NAME" --user "$U" "$@"; }

# The new provider made the account with its standard folders; one message
# is in its Trash already.
for f in Sent Drafts Trash Junk; do dst append --folder "$f" --count 0 --seed 1 >&2; done
dst append --folder Trash --count 1 --seed 2 >&2
n=0
for spec in INBOX:3 "Posta inviata:2" Cestino:2 "Spam vecchio:1" Vecchi:2 "Clienti/Rossi:1"; do
    n=$((n + 1))
    src append --folder "${spec%:*}" --count "${spec##*:}" --seed "$n" >&2
done
src subscribe "Posta inviata" Vecchi "Clienti/Rossi" >&2
dst subscribe Sent >&2

FAULTPROXY=$IT_LIBDIR/faultproxy.py
proxy_start() {
    local name=$1 up=$2
    mkdir -p "$IT_DIR/$name.rec"
    "$IT_PYTHON" "$FAULTPROXY" --upstream-port "$up" --record "$IT_DIR/$name.rec" \
        --log "$IT_DIR/$name.log" --port-file "$IT_DIR/$name.port" > /dev/null &
    it_at_exit "kill $! 2>/dev/null || true"
    for _ in $(seq 1 100); do
        [[ -s $IT_DIR/$name.port ]] && break
        sleep 0.05
    done
    [[ -s $IT_DIR/$name.port ]] || it_fail "faultproxy $name did not start"
    printf -v "${name^^}_PORT" '%s' "$(cat "$IT_DIR/$name.port")"
}
proxy_start psrc "$SRC_IMAP_PORT"
proxy_start pdst "$DST_IMAP_PORT"

# expect_plan FILE: the table every plan here must show (any order of rows).
expect_plan() {
    local f=$1 row
    for row in \
        '^  INBOX +INBOX +same name +3 +[0-9.]+ k?B +0$' \
        '^  Posta inviata +Sent +special-use \\Sent +2 +[0-9.]+ k?B +0$' \
        '^  Cestino +Trash +special-use \\Trash +2 +[0-9.]+ k?B +1$' \
        '^  Spam vecchio +- +excluded +1 +- +-$' \
        '^  Vecchi +Archivio/Vecchi +--map +2 +[0-9.]+ k?B +new$' \
        '^  Clienti/Rossi +Clienti/Rossi +same name +1 +[0-9.]+ k?B +new$' \
        "^$U: 5 folder\\(s\\) to copy \\(2 new on the destination\\), 1 excluded; 10 message\\(s\\), [0-9.]+ k?B on the source, 1 in those folders of the destination$"; do
        grep -qE -- "$row" "$f" || it_fail "the plan has no line /$row/"
    done
}
# read_only NAME: every command recorded by proxy NAME reads.
read_only() {
    local verbs
    verbs=$(cat "$IT_DIR/$1".rec/*.c2s | tr -d '\r' |
        sed -nE 's/^[A-Za-z0-9.]+ (UID )?([A-Za-z]+).*/\2/p' | tr a-z A-Z | sort -u)
    it_log "$1: commands sent: $(echo $verbs)"
    for v in $verbs; do
        case $v in
            CAPABILITY|LOGIN|AUTHENTICATE|ID|ENABLE|NAMESPACE|LIST|LSUB|STATUS|EXAMINE|FETCH|GETQUOTAROOT|NOOP|LOGOUT) ;;
            *) it_fail "$1: $v was sent: not read only" ;;
        esac
    done
    grep -qaE '^[A-Za-z0-9.]+ EXAMINE' "$IT_DIR/$1".rec/*.c2s ||
        [[ $1 == pdst ]] || it_fail "$1: no EXAMINE: the sizes were not read"
}
# Folders, subscriptions and message counts (not \Marked and \UnMarked: Dovecot
# computes them from its own index as folders are looked at).
listing() {
    "$1" list --json | "$IT_PYTHON" -c '
import json, sys
rows = json.load(sys.stdin)
for r in rows:
    r["attributes"] = [a for a in r["attributes"] if a.lower() not in ("\\marked", "\\unmarked")]
json.dump(rows, sys.stdout, ensure_ascii=False, indent=1)'
}
unchanged() {
    listing src > "$IT_DIR/src.after"
    listing dst > "$IT_DIR/dst.after"
    cmp -s "$IT_DIR/src.before" "$IT_DIR/src.after" ||
        { diff "$IT_DIR/src.before" "$IT_DIR/src.after" >&2; it_fail "the source changed"; }
    cmp -s "$IT_DIR/dst.before" "$IT_DIR/dst.after" ||
        { diff "$IT_DIR/dst.before" "$IT_DIR/dst.after" >&2; it_fail "the destination changed"; }
}

listing src > "$IT_DIR/src.before"
listing dst > "$IT_DIR/dst.before"
grep -q '"subscribed": true' "$IT_DIR/src.before" || it_fail "no subscription to compare"

# 1. check --folders, as JSON too, through the recording proxies.
q=${PW//\"/\"\"}
printf 'email,password\n%s,"%s"\n' "$U" "$q" > "$IT_DIR/accounts.csv"
chmod 600 "$IT_DIR/accounts.csv"
TR_N=$((TR_N + 1))
TR_OUT=$IT_DIR/out.$TR_N
set +e
"$TRASLOCO" check "$IT_DIR/accounts.csv" --folders --exclude 'Spam*' \
    --map 'Vecchi=Archivio/Vecchi' --src "$IT_HOST:$PSRC_PORT" --src-tls none \
    --dst "$IT_HOST:$PDST_PORT" --dst-tls none --report "$IT_DIR/plan.json" > "$TR_OUT" 2>&1
TR_RC=$?
set -e
sed 's/^/    | /' "$TR_OUT" >&2
tr_expect_rc 0
expect_plan "$TR_OUT"
tr_expect_out "^$U +ok +5 +10 "
read_only psrc
read_only pdst
unchanged
"$IT_PYTHON" - "$IT_DIR/plan.json" <<'EOF' || it_fail "the JSON plan is not the expected one"
import json, sys
acc = json.load(open(sys.argv[1]))["accounts"][0]
rows = {r["source"]: r for r in acc["folders_plan"]}
want = {
    "INBOX": ("INBOX", "same", None, 3, 0, True),
    "Posta inviata": ("Sent", "special-use", "Sent", 2, 0, True),
    "Cestino": ("Trash", "special-use", "Trash", 2, 1, True),
    "Spam vecchio": (None, "excluded", None, 1, 0, False),
    "Vecchi": ("Archivio/Vecchi", "map", None, 2, 0, False),
    "Clienti/Rossi": ("Clienti/Rossi", "same", None, 1, 0, False),
}
assert set(rows) == set(want), sorted(rows)
for name, (d, why, role, msgs, dmsgs, exists) in want.items():
    r = rows[name]
    got = (r["destination"], r["why"], r["role"], r["messages"], r["destination_messages"],
           r["destination_exists"])
    assert got == (d, why, role, msgs, dmsgs, exists), (name, got)
    assert (r["bytes"] is None) == (why == "excluded"), (name, r["bytes"])
assert acc["folders"] == 5 and acc["messages"] == 10 and acc["excluded"] == 1
assert acc["destination_messages"] == 1
EOF

# 2. migrate --dry-run: the same plan, nothing copied, no state written.
tr_migrate --dry-run --exclude 'Spam*' --map 'Vecchi=Archivio/Vecchi'
tr_expect_rc 0
expect_plan "$TR_OUT"
[[ ! -e $IT_DIR/state ]] || it_fail "migrate --dry-run wrote a state"
unchanged

# 3. After the copy, the plan shows what the destination holds.
tr_migrate --exclude 'Spam*' --map 'Vecchi=Archivio/Vecchi'
tr_expect_rc 0
tr_migrate --dry-run --exclude 'Spam*' --map 'Vecchi=Archivio/Vecchi'
tr_expect_rc 0
tr_expect_out '^  Cestino +Trash +special-use \\Trash +2 +[0-9.]+ k?B +3$'
tr_expect_out '^  Vecchi +Archivio/Vecchi +--map +2 +[0-9.]+ k?B +2$'
tr_expect_out "0 new on the destination"

# --folders is check's, --dry-run migrate's.
tr_migrate --folders
tr_expect_rc 2
tr_no_secret
it_pass
