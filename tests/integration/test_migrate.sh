#!/bin/bash
# One account over verified TLS by IP: a full copy compared message by message
# (content hash, flags, INTERNALDATE), a re-run that copies nothing, then new
# mail and flag changes on the source picked up by a third run.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_init migrate
. "$IT_LIBDIR/common.sh"
it_pair -- SPECIAL_USE=yes

it_imaptool --port "$SRC_IMAPS_PORT" --tls implicit --ca "$IT_CA" --tls-name "$IT_TLS_NAME" \
    --user "$U" populate --seed 7 --profile standard >&2

tr_migrate
tr_expect_rc 0
tr_expect_out 'copied, 0 already present, 0 failed'
tr_compare --check-subscriptions
[[ $(stat -c %a "$IT_DIR/state") == 700 ]] || it_fail "state directory is not private"
[[ $(stat -c %a "$IT_DIR/state/state.db") == 600 ]] || it_fail "state database is not private"

# Nothing changed: nothing copied, and the run says so.  The source's own
# log proves the cost: one session, no message fetched, nothing appended.
src_log_lines=$(wc -l < "$SRC_DIR/dovecot.log")
dst_log_lines=$(wc -l < "$DST_DIR/dovecot.log")
tr_migrate
tr_expect_rc 0
tr_expect_out ' 0 copied, [0-9]+ already present, 0 failed'
tr_expect_out 'nothing new'
tr_expect_out '0 of 15 folder\(s\) changed since the last run'
sleep 0.5   # Dovecot logs a disconnect a moment after it happens
new_src=$(tail -n +"$((src_log_lines + 1))" "$SRC_DIR/dovecot.log")
new_dst=$(tail -n +"$((dst_log_lines + 1))" "$DST_DIR/dovecot.log")
[[ $(grep -c "Login: user=<$U>" <<<"$new_src") == 1 ]] || it_fail "re-run opened more than one source session"
[[ $(grep -c "Login: user=<$U>" <<<"$new_dst") == 1 ]] || it_fail "re-run opened more than one destination session"
grep -q 'body_count=[1-9]' <<<"$new_src" && it_fail "re-run fetched message bodies"
grep -Eq 'in=[0-9]{5,}' <<<"$new_dst" && it_fail "re-run sent data to the destination"
tr_compare

# Mail keeps arriving at the old server, and the user keeps reading it.
src_tool() {
    it_imaptool --port "$SRC_IMAPS_PORT" --tls implicit --ca "$IT_CA" \
        --tls-name "$IT_TLS_NAME" --user "$U" "$@"
}
src_tool append --folder INBOX --count 5 --seed 101 >&2
src_tool append --folder "Località" --count 2 --seed 102 >&2
src_tool setflags --folder INBOX --count 6 --seed 103 >&2
src_tool setflags --folder "Archive/2023" --count 3 --seed 104 >&2
tr_migrate
tr_expect_rc 0
tr_expect_out ' 7 copied'
tr_expect_out 'flag updates'
tr_compare

# Someone deletes a copied folder on the new server (nothing changed on the
# old one): the next run creates it again and fills it, although the
# source's STATUS says the folder is unchanged.
n=$(it_doveadm dst mailbox status -u "$U" messages "Archive/2023" | sed 's/.*messages=//')
((n > 0)) || it_fail "Archive/2023 is empty on the destination: nothing to test"
it_doveadm dst mailbox delete -u "$U" "Archive/2023"
tr_migrate
tr_expect_rc 0
tr_expect_out "Archive/2023: the destination folder Archive/2023 was recreated|$n copied"
tr_compare

tr_no_secret
it_pass
