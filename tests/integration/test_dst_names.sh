#!/bin/bash
# Folder names as users see them, and names a destination refuses (issue 11,
# items 1, 3, 4 and 5).  The destination is a Dovecot whose Maildir++ layout
# refuses '.' in a name ("[CANNOT] Character not allowed in mailbox name:
# '.'") and names too long for one directory; the source (fs layout) has
# both, and '%' in a name.
#  - a refused name is made legal ('.' -> '_'), its subfolder follows it, the
#    summary lists the rename, everything is copied, exit 0; a re-run finds
#    the same folder again (no "_2" copy, nothing new);
#  - a refusal of another kind fails that folder with CREATE's own reply (not
#    SELECT's "does not exist"), counts its messages as failed, and never
#    subscribes to it;
#  - '%percent' is shown, selected (--folder) and mapped (--map) as typed;
#    options that select nothing are warned about, or fail the run when
#    nothing at all is selected;
#  - without CONDSTORE on the source a re-run says what it checks;
#  - migrate --dry-run shows the renamed folders where the run put them.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_init dst-names
. "$IT_LIBDIR/common.sh"
it_pair LAYOUT=fs NO_CONDSTORE=yes --

src() { it_imaptool --port "$SRC_IMAPS_PORT" --tls implicit --ca "$IT_CA" --tls-name "$IT_TLS_NAME" --user "$U" "$@"; }
dst() { it_imaptool --port "$DST_IMAPS_PORT" --tls implicit --ca "$IT_CA" --tls-name "$IT_TLS_NAME" --user "$U" "$@"; }
long="$(printf 'L%.0s' $(seq 1 200))/$(printf 'M%.0s' $(seq 1 100))"

src append --folder INBOX --count 2 --seed 1 >&2
src append --folder "Progetti/v1.2" --count 3 --seed 2 >&2
src append --folder "Progetti/v1.2/sub.x" --count 2 --seed 3 >&2
src append --folder "%percent" --count 2 --seed 4 >&2
src append --folder "$long" --count 4 --seed 5 >&2
"$IT_PYTHON" - "$SRC_IMAP_PORT" "$U" <<'PY' >&2
import imaplib, os, sys
m = imaplib.IMAP4("127.0.0.1", int(sys.argv[1]))
m.login(sys.argv[2], os.environ["IMAP_PASSWORD"])
for f in ["Progetti/v1.2", "%percent"]:
    print("SUBSCRIBE", f, m.subscribe('"%s"' % f))
print("SUBSCRIBE long", m.subscribe('"' + ("L" * 200) + "/" + ("M" * 100) + '"'))
m.logout()
PY

# 1. The long folder fails (with CREATE's reply), the rest is copied.
tr_migrate
tr_expect_rc 1
tr_expect_out '"Progetti/v1.2" -> "Progetti/v1_2" \(refused\)'
tr_expect_out '"Progetti/v1.2/sub.x" -> "Progetti/v1_2/sub_x" \(refused\)'
tr_expect_out "folder \"L+/M+\" failed: the destination refused to create \"L+/M+\".*CREATE"
if grep -q 'does not exist' "$TR_OUT"; then it_fail "SELECT's reply hides CREATE's"; fi
# item 3: its 4 messages are counted as failed
tr_expect_out 'messages: 9 copied, 0 already present, 4 failed'
if grep -q '%25' "$TR_OUT"; then it_fail "a name is shown in its escaped form"; fi
maps=(--map 'Progetti/v1.2=Progetti/v1_2' --map 'Progetti/v1.2/sub.x=Progetti/v1_2/sub_x')
tr_compare "${maps[@]}" --skip "$long"
listing=$(dst list)
printf '%s\n' "$listing" >&2
grep -q '^Progetti/v1_2	.*subscribed=yes' <<<"$listing" || it_fail "the renamed folder lost its subscription"
grep -q '^L' <<<"$listing" && it_fail "a folder the destination refused is listed (subscribed?)"

# 2. Again: the same renames, nothing new, no second copy ("v1_2_2").
tr_migrate
tr_expect_rc 1
tr_expect_out '"Progetti/v1.2" -> "Progetti/v1_2" \(refused\)'
tr_expect_out 'messages: 0 copied, 9 already present, 4 failed'
# item 5: the source has no CONDSTORE: say what is checked
tr_expect_out '0 of 5 folder\(s\) changed since the last run, 4 more to compare flags with \(the source has no CONDSTORE'
grep -q 'v1_2_2' <<<"$(dst list)" && it_fail "a renamed folder was created twice"
tr_compare "${maps[@]}" --skip "$long"

# The plan (read only) shows where the refused names went, as a run found them.
tr_migrate --dry-run --exclude 'L*'
tr_expect_rc 0
tr_expect_out '^  Progetti/v1\.2 +Progetti/v1_2 +name refused \(renamed\) +3 +[0-9.]+ k?B +3$'
tr_expect_out '^  Progetti/v1\.2/sub\.x +Progetti/v1_2/sub_x +name refused \(renamed\) +2 +[0-9.]+ k?B +2$'
tr_expect_out '^  L+/M+ +- +excluded'

# ... and with a new state directory (state lost): the same folders, matched,
#    nothing copied again
tr_migrate --state "$IT_DIR/state-lost" --exclude 'L*'
tr_expect_rc 0
tr_expect_out '"Progetti/v1.2" -> "Progetti/v1_2" \(refused\)'
tr_expect_out 'messages: 0 copied, 9 already present, 0 failed'
grep -q 'v1_2_2' <<<"$(dst list)" && it_fail "a run without state made a second copy"

# 3. Without the long folder: exit 0.
tr_migrate --exclude 'L*'
tr_expect_rc 0

# 4. Names as typed: --folder '%percent' selects that folder only, --map
#    renames it; patterns that match nothing are warned about.
tr_migrate --folder '%percent' --map '%percent=percento' --folder 'Nothing*' \
    --state "$IT_DIR/state-b"
tr_expect_rc 0
tr_expect_out '"%percent" -> "percento" \(map\)'
tr_expect_out "--folder 'Nothing\*' matches no folder of the source"
tr_expect_out 'messages: 2 copied'
[[ $(dst count --folder percento) == 2 ]] || it_fail "percento should hold 2 messages"
tr_migrate --folder '%percent' --map '%25percent=x' --state "$IT_DIR/state-b"
tr_expect_out "--map '%25percent=x': no selected folder of the source has that name"
# nothing selected at all: a usage error
tr_migrate --folder '%25percent' --state "$IT_DIR/state-b"
tr_expect_rc 2
tr_expect_out "no folder of the source is selected"
tr_no_secret
it_pass
