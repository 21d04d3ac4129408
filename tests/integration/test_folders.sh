#!/bin/bash
# Folder names between different layouts: a Courier-style source (prefix
# "INBOX.", separator ".") with Italian special folders into a destination
# that announces SPECIAL-USE ("Posta inviata" -> "Sent", ...), accented,
# '&' and non-Latin names; then a '/' source whose names contain '.' into a
# '.' destination.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_init folders
. "$IT_LIBDIR/common.sh"
it_pair NS=courier -- SPECIAL_USE=yes

src() { it_imaptool --port "$SRC_IMAPS_PORT" --tls implicit --ca "$IT_CA" --tls-name "$IT_TLS_NAME" --user "$U" "$@"; }
dst() { it_imaptool --port "$DST_IMAPS_PORT" --tls implicit --ca "$IT_CA" --tls-name "$IT_TLS_NAME" --user "$U" "$@"; }

# The new provider created the account with its standard folders.
for f in Sent Drafts Trash Junk; do dst append --folder "$f" --count 0 --seed 1 >&2; done
n=0
for f in INBOX "Posta inviata" Bozze Cestino "Posta indesiderata" "Località" \
    "Clienti/Rossi & Figli" "Clienti" "日本語/子" "Ελληνικά"; do
    n=$((n + 1))
    src append --folder "$f" --count 2 --seed "$n" >&2
done

tr_migrate
tr_expect_rc 0
tr_expect_out '"Posta inviata" -> "Sent" \(special-use\)'
tr_expect_out '"Bozze" -> "Drafts" \(special-use\)'
tr_expect_out '"Cestino" -> "Trash" \(special-use\)'
tr_expect_out '"Posta indesiderata" -> "Junk" \(special-use\)'
tr_compare --map 'Posta inviata=Sent' --map 'Bozze=Drafts' --map 'Cestino=Trash' \
    --map 'Posta indesiderata=Junk'
listing=$(dst list)
printf '%s\n' "$listing" >&2
grep -q '^Località' <<<"$listing" || it_fail "Località missing on the destination"
grep -q '^Posta inviata' <<<"$listing" && it_fail "Posta inviata should have gone to Sent"

# Run again: still nothing to do, names resolved the same way.
tr_migrate
tr_expect_rc 0
tr_expect_out 'nothing new'

# --map wins over the special-use rule, and a new destination for a folder
# starts its ledger afresh without duplicating what is already there.
tr_migrate --map 'Bozze=Archivio/Bozze vecchie'
tr_expect_rc 0
tr_compare --map 'Posta inviata=Sent' --map 'Bozze=Archivio/Bozze vecchie' --map 'Cestino=Trash' \
    --map 'Posta indesiderata=Junk' --ignore-extra-folders

# A '/' source whose names contain '.', into a '.' destination.
it_dovecot_start src2 "USERS=$U:$(printf '%s' "$PW" | sed 's/%/%25/g; s/ /%20/g')" LAYOUT=fs
it_dovecot_start dst2 "USERS=$U:$(printf '%s' "$PW" | sed 's/%/%25/g; s/ /%20/g')" NS=courier
it_imaptool --port "$SRC2_IMAPS_PORT" --tls implicit --ca "$IT_CA" --tls-name "$IT_TLS_NAME" \
    --user "$U" append --folder "Progetti/v1.2" --count 2 --seed 50 >&2
it_imaptool --port "$SRC2_IMAPS_PORT" --tls implicit --ca "$IT_CA" --tls-name "$IT_TLS_NAME" \
    --user "$U" append --folder "INBOX/Sotto" --count 1 --seed 51 >&2
SRC_IMAPS_PORT=$SRC2_IMAPS_PORT DST_IMAPS_PORT=$DST2_IMAPS_PORT tr_migrate --state "$IT_DIR/state2"
tr_expect_rc 0
tr_expect_out '"Progetti/v1.2" -> "Progetti/v1_2"'
# On a Courier server every folder lives under INBOX: INBOX/Sotto is INBOX.Sotto there.
tr_expect_out '"INBOX/Sotto" -> "Sotto"'
SRC_IMAPS_PORT=$SRC2_IMAPS_PORT DST_IMAPS_PORT=$DST2_IMAPS_PORT \
    tr_compare --map 'Progetti/v1.2=Progetti/v1_2' --map 'INBOX/Sotto=Sotto'

it_pass
