#!/bin/bash
# The built-in OAuth2 flows (issue 16) against fake token endpoints of the
# test's own over TLS (tokensvc.py serve --tls-port-file: a certificate of the
# tests' CA for 127.0.0.1), which check everything they receive, and a source
# Dovecot that takes only the tokens they issue (passdb oauth2):
#  1. Microsoft 365 app-only with a client secret: the client-credentials form
#     (grant_type, client_id, scope https://outlook.office365.com/.default,
#     client_secret): exact copy;
#  2. the same with a certificate: the client assertion JWT (alg RS256, x5t =
#     the certificate's thumbprint, aud = the token URL, iss = sub = client id,
#     jti, exp; signature verified with the certificate's key): exact;
#  3. Google Workspace domain-wide delegation with a service-account JSON key:
#     the JWT (alg RS256, iss = client_email, sub = the account, scope
#     https://mail.google.com/, aud = token_uri, iat, exp; signature verified
#     with the service account's public key): exact;
#  4. a wrong client secret: exit 3 with the endpoint's error and description;
#  5. the endpoint's certificate not matching the URL's host (localhost): the
#     token is never asked for (TLS verified against --ca-file);
#  no secret, key, assertion or token in any output or file of trasloco.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_init oauth-flows
: "${TRASLOCO:?}"
U=mario.rossi@azienda.test
TOOLPW=tools-pw-1

# a certificate for https://127.0.0.1 from the tests' CA
ssl=$IT_DIR/ssl
(
    cd "$ssl"
    openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
        -subj "/O=trasloco tests/CN=127.0.0.1" -keyout ip.key -out ip.csr
    printf '%s\n' "basicConstraints=critical,CA:FALSE" "extendedKeyUsage=serverAuth" \
        "subjectAltName=IP:127.0.0.1" > ip.ext
    openssl x509 -req -in ip.csr -CA ca.pem -CAkey ca.key -set_serial 0x77 -days 30 \
        -sha256 -extfile ip.ext -out ip.pem
    # the Microsoft app's certificate, and the Google service account's key
    openssl req -x509 -new -nodes -newkey rsa:2048 -days 30 -subj "/CN=trasloco-app" \
        -keyout app.key -out app.pem
    openssl genrsa -out sa.key 2048
    openssl rsa -in sa.key -pubout -out sa.pub
) > "$IT_DIR/openssl.log" 2>&1 || it_fail "openssl: $(cat "$IT_DIR/openssl.log")"
CLIENT_ID=5b1f7c0e-trasloco-test
SECRET='Sekr3t~client.secret-9Qx'
umask 077
printf '%s\n' "$SECRET" > "$IT_DIR/client.secret"

"$IT_PYTHON" "$IT_LIBDIR/tokensvc.py" serve --port-file "$IT_DIR/http.port" \
    --log "$IT_DIR/tokensvc.log" --tls-port-file "$IT_DIR/https.port" \
    --cert "$ssl/ip.pem" --key "$ssl/ip.key" --app-user "$U" --ms-client-id "$CLIENT_ID" \
    --ms-secret-file "$IT_DIR/client.secret" --ms-cert "$ssl/app.pem" \
    --google-pubkey "$ssl/sa.pub" 2>"$IT_DIR/tokensvc.err" &
SVC=$!
it_at_exit 'kill $SVC 2>/dev/null || true'
for _ in $(seq 100); do [[ -s $IT_DIR/http.port ]] && break; sleep 0.05; done
[[ -s $IT_DIR/http.port ]] || it_fail "the token service did not start: $(cat "$IT_DIR/tokensvc.err")"
HTTPS=https://127.0.0.1:$(cat "$IT_DIR/https.port")

it_dovecot_start src "USERS=$U:$TOOLPW" "OAUTH2=http://127.0.0.1:$(cat "$IT_DIR/http.port")/introspect"
it_dovecot_start dst "USERS=$U:dst-pw"
printf 'dst-pw\n' > "$IT_DIR/dst.pw"
"$IT_PYTHON" - "$ssl/sa.key" "$HTTPS/google/token" > "$IT_DIR/sa.json" <<'EOF'
import json, sys
print(json.dumps({"type": "service_account", "project_id": "trasloco-test",
                  "private_key_id": "0123abcd", "private_key": open(sys.argv[1]).read(),
                  "client_email": "migrator@trasloco-test.iam.gserviceaccount.com",
                  "client_id": "1234567890", "token_uri": sys.argv[2]}))
EOF

N=0
mig() {  # ARGS...: migrate U, source by OAuth2, destination by password
    N=$((N + 1))
    OUT=$IT_DIR/out.$N
    set +e
    "$TRASLOCO" migrate --user "$U" \
        --src "$IT_HOST:$SRC_IMAPS_PORT" --src-tls implicit --src-tls-name "$IT_TLS_NAME" \
        --dst "$IT_HOST:$DST_IMAPS_PORT" --dst-tls implicit --dst-tls-name "$IT_TLS_NAME" \
        --ca-file "$IT_CA" --dst-password-file "$IT_DIR/dst.pw" --state "$IT_DIR/state" \
        --timeout 20 --no-progress --src-auth xoauth2 "$@" > "$OUT" 2>&1 </dev/null
    RC=$?
    set -e
    it_log "migrate $N -> exit $RC"
    sed 's/^/    | /' "$OUT" >&2
}
populate() {
    IMAP_PASSWORD=$TOOLPW it_imaptool --port "$SRC_IMAPS_PORT" --tls implicit --ca "$IT_CA" \
        --tls-name "$IT_TLS_NAME" --user "$U" populate --seed "$1" --profile small \
        --messages 15 >/dev/null
}
compare() {
    IMAP_PASSWORD=$TOOLPW DST_PW=dst-pw it_imaptool --port "$SRC_IMAPS_PORT" --tls implicit \
        --ca "$IT_CA" --tls-name "$IT_TLS_NAME" --user "$U" compare \
        --dst-port "$DST_IMAPS_PORT" --dst-tls implicit --dst-ca "$IT_CA" \
        --dst-tls-name "$IT_TLS_NAME" --dst-user "$U" --dst-password-env DST_PW > "$IT_DIR/cmp" 2>&1 ||
        { cat "$IT_DIR/cmp" >&2; it_fail "source and destination differ: $1"; }
}
ms=(--src-oauth-provider microsoft365 --src-oauth-tenant contoso.onmicrosoft.com
    --src-oauth-client-id "$CLIENT_ID" --src-oauth-token-url "$HTTPS/ms/token")

# 1. Microsoft 365, client secret
populate 1
mig "${ms[@]}" --src-oauth-secret-file "$IT_DIR/client.secret"
[[ $RC == 0 ]] || it_fail "Microsoft 365 with a secret: exit $RC"
grep -q '^ms ok secret' "$IT_DIR/tokensvc.log" || it_fail "the secret flow was not seen"
compare "Microsoft 365 with a secret"

# 2. Microsoft 365, certificate
populate 2
mig "${ms[@]}" --src-oauth-cert-file "$ssl/app.pem" --src-oauth-key-file "$ssl/app.key"
[[ $RC == 0 ]] || it_fail "Microsoft 365 with a certificate: exit $RC"
grep -q '^ms ok assertion' "$IT_DIR/tokensvc.log" || it_fail "the assertion flow was not seen"
compare "Microsoft 365 with a certificate"

# 3. Google, domain-wide delegation
populate 3
mig --src-oauth-provider google --src-oauth-secret-file "$IT_DIR/sa.json"
[[ $RC == 0 ]] || it_fail "Google: exit $RC"
grep -q "^google ok sub=$U" "$IT_DIR/tokensvc.log" || it_fail "the Google flow was not seen"
compare "Google"
grep -q '^reject' "$IT_DIR/tokensvc.log" && it_fail "the endpoint rejected a request: $(grep '^reject' "$IT_DIR/tokensvc.log")"

# 4. a wrong secret
printf 'not-the-secret\n' > "$IT_DIR/wrong.secret"
mig "${ms[@]}" --src-oauth-secret-file "$IT_DIR/wrong.secret"
[[ $RC == 3 ]] || it_fail "a wrong client secret: exit $RC, not 3"
grep -q 'answered 401: invalid_client: AADSTS7000215' "$OUT" ||
    it_fail "the endpoint's error was not told"

# 5. a certificate that does not match the URL's host
lines=$(wc -l < "$IT_DIR/tokensvc.log")
mig --src-oauth-provider microsoft365 --src-oauth-tenant t --src-oauth-client-id "$CLIENT_ID" \
    --src-oauth-token-url "https://localhost:$(cat "$IT_DIR/https.port")/ms/token" \
    --src-oauth-secret-file "$IT_DIR/client.secret"
[[ $RC != 0 ]] || it_fail "a token endpoint with the wrong certificate was trusted"
[[ $(wc -l < "$IT_DIR/tokensvc.log") == "$lines" ]] || it_fail "the secret went to an unverified endpoint"
grep -qi 'certificate\|SSL' "$OUT" || it_fail "the TLS failure was not told"

# nothing secret anywhere
for f in "$IT_DIR"/out.* $(find "$IT_DIR/state" -type f); do
    grep -qF -- "$SECRET" "$f" && it_fail "the client secret is in $f"
    grep -q 'tok-\|eyJ\|BEGIN .*PRIVATE' "$f" && it_fail "a token, an assertion or a key is in $f"
done
it_pass
