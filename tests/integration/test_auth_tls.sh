#!/bin/bash
# Logins and TLS: STARTTLS on a plain port, a master (admin) login on the
# destination, a certificate for the wrong name refused, a wrong password
# reported as such (naming account, server and reply), and the password
# never shown.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_init auth-tls
. "$IT_LIBDIR/common.sh"
it_pair -- MASTER=admin:adminpw
it_imaptool --port "$SRC_IMAPS_PORT" --tls implicit --ca "$IT_CA" --tls-name "$IT_TLS_NAME" \
    --user "$U" populate --seed 3 --profile small >&2

# STARTTLS on both sides (ports other than 993 default to it).
tr_migrate --src "$IT_HOST:$SRC_IMAP_PORT" --src-tls starttls \
    --dst "$IT_HOST:$DST_IMAP_PORT" --dst-tls starttls
tr_expect_rc 0
tr_compare

# The destination as an admin, SASL PLAIN with an authorization identity;
# the user's own destination password is not needed.
printf 'adminpw\n' > "$IT_DIR/admin.pw"
chmod 600 "$IT_DIR/admin.pw"
it_imaptool --port "$SRC_IMAPS_PORT" --tls implicit --ca "$IT_CA" --tls-name "$IT_TLS_NAME" \
    --user "$U" append --folder INBOX --count 2 --seed 11 >&2
tr_migrate --dst-admin admin --dst-admin-password-file "$IT_DIR/admin.pw"
tr_expect_rc 0
tr_expect_out ' 2 copied'
tr_compare
# ... and Dovecot's "user*admin" LOGIN form.
it_imaptool --port "$SRC_IMAPS_PORT" --tls implicit --ca "$IT_CA" --tls-name "$IT_TLS_NAME" \
    --user "$U" append --folder INBOX --count 1 --seed 12 >&2
tr_migrate --dst-admin admin --dst-admin-password-file "$IT_DIR/admin.pw" \
    --dst-admin-separator '*'
tr_expect_rc 0
tr_expect_out ' 1 copied'
tr_compare

# A wrong admin password is an authentication failure, not a crash or a retry loop.
printf 'nope\n' > "$IT_DIR/admin.bad"
chmod 600 "$IT_DIR/admin.bad"
tr_migrate --dst-admin admin --dst-admin-password-file "$IT_DIR/admin.bad"
tr_expect_rc 3

# Wrong password on the source: exit 3, and the message says who, where and what.
printf 'not the password\n' > "$IT_DIR/bad.pw"
chmod 600 "$IT_DIR/bad.pw"
tr_migrate --src-password-file "$IT_DIR/bad.pw"
tr_expect_rc 3
tr_expect_out "LOGIN $U"
tr_expect_out "source $IT_HOST:$SRC_IMAPS_PORT"
tr_expect_out 'AUTHENTICATIONFAILED'
grep -qF 'not the password' "$TR_OUT" && it_fail "the wrong password was printed"

# A certificate for another name is refused by default...
it_dovecot_stop dst
it_dovecot_start dst "USERS=$U:$(printf '%s' "$PW" | sed 's/%/%25/g; s/ /%20/g')" CERT=wrong
tr_migrate
tr_expect_rc 4
tr_expect_out 'TLS certificate of mail.test refused: hostname mismatch'
# ... and so is one that no trusted CA signed.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj /CN=other-ca -keyout "$IT_DIR/other.key" -out "$IT_DIR/other-ca.pem" 2>/dev/null
tr_migrate --ca-file "$IT_DIR/other-ca.pem"
tr_expect_rc 4
tr_expect_out 'refused: unable to get local issuer certificate'
# --insecure is the only way past it, and it says so loudly.
tr_migrate --insecure
tr_expect_rc 0
tr_expect_out 'NOT verified'

tr_no_secret
it_pass
