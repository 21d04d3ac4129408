#!/usr/bin/python3
"""tokensvc.py: a small OAuth2 token service for trasloco's integration tests.

    tokensvc.py serve --port-file F --log F
        HTTP on 127.0.0.1 (a free port, written to F).  Tokens live in memory.
        POST /mint        form user=U ttl=S [claim=C]: a new token for U that the
                          service takes as live for S seconds; answers the JSON a
                          token command prints: {"access_token": T, "expires_in": C}
                          (C defaults to S; C > S makes a source that says its
                          tokens live longer than they do; claim=none leaves
                          expires_in out)
        POST /introspect  form token=T (what Dovecot's passdb oauth2 sends):
                          {"active": true, "username": U} for a live token, else
                          {"active": false}
        Every request is a line in the log: "mint USER", "introspect ok USER",
        "introspect expired USER" or "introspect unknown" (never a token).

    tokensvc.py serve ... --tls-port-file F --cert PEM --key PEM [--app-user U]
            [--ms-client-id ID] [--ms-secret-file F] [--ms-cert PEM] [--google-pubkey PEM]
        Also HTTPS (another free port, written to F): the fake token endpoints of the
        built-in flows, which check everything they receive and answer 400 with
        {"error": ..., "error_description": WHAT FAILED} (and "reject WHAT" in the log):
        POST /ms/token      Microsoft identity platform, client credentials: form
                            grant_type=client_credentials, client_id, scope
                            https://outlook.office365.com/.default, and client_secret
                            (equal to the file's first line; else 401 invalid_client) or
                            client_assertion_type jwt-bearer + client_assertion: a JWT
                            with header alg RS256, typ JWT, x5t = SHA-1 thumbprint of
                            --ms-cert; claims aud = this URL, iss = sub = client_id, jti,
                            exp in the future; signature checked with the certificate's
                            key.  The token is valid for --app-user (app-only tokens
                            name no user).  Log: "ms ok secret" / "ms ok assertion".
        POST /google/token  Google OAuth2, grant_type
                            urn:ietf:params:oauth:grant-type:jwt-bearer, assertion: a JWT
                            with header alg RS256; claims iss (any service account),
                            sub (the mailbox: the token is for it), scope
                            https://mail.google.com/, aud = this URL, exp in the future,
                            iat; signature checked with --google-pubkey.  Log:
                            "google ok sub=USER".

    tokensvc.py mint --url URL --ttl S [--claim C]
        The client side, for a test's token command: mints a token for
        $TRASLOCO_USER and prints the JSON answer.

Stdlib only.
"""
import argparse
import base64
import hashlib
import json
import ssl
import subprocess
import tempfile
import os
import secrets
import sys
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOKENS = {}
LOCK = threading.Lock()
LOG = None
ARGS = None


class Reject(Exception):
    pass


def b64url_dec(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def check_jwt(jwt, pubkey_pem, want_aud):
    """The JWT's header and claims, after its RS256 signature was verified."""
    parts = jwt.split(".")
    if len(parts) != 3:
        raise Reject("the assertion is not a JWT")
    try:
        header = json.loads(b64url_dec(parts[0]))
        claims = json.loads(b64url_dec(parts[1]))
        sig = b64url_dec(parts[2])
    except Exception:
        raise Reject("the JWT does not decode")
    if header.get("alg") != "RS256" or header.get("typ") != "JWT":
        raise Reject("header %r" % header)
    with tempfile.TemporaryDirectory() as d:
        with open(d + "/pub.pem", "w") as f:
            f.write(pubkey_pem)
        with open(d + "/sig", "wb") as f:
            f.write(sig)
        r = subprocess.run(["openssl", "dgst", "-sha256", "-verify", d + "/pub.pem",
                            "-signature", d + "/sig"], input=(parts[0] + "." + parts[1]).encode(),
                           capture_output=True)
        if r.returncode != 0:
            raise Reject("bad signature")
    if claims.get("aud") != want_aud:
        raise Reject("aud %r, not %r" % (claims.get("aud"), want_aud))
    if not isinstance(claims.get("exp"), int) or claims["exp"] <= time.time():
        raise Reject("exp missing or past")
    if claims["exp"] > time.time() + 3700:
        raise Reject("exp more than an hour away")
    return header, claims


def log(line):
    with LOCK:
        with open(LOG, "a") as f:
            f.write(line + "\n")


class Handler(BaseHTTPRequestHandler):
    def log_message(self, fmt, *args):
        pass

    def answer(self, code, obj):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def issue(self, user, what):
        tok = "tok-" + secrets.token_urlsafe(24)
        with LOCK:
            TOKENS[tok] = (user, time.monotonic() + 600)
        log(what)
        return self.answer(200, {"access_token": tok, "token_type": "Bearer",
                                 "expires_in": 3599})

    def ms_token(self, get):
        url = "https://127.0.0.1:%d/ms/token" % self.server.server_address[1]
        if get("grant_type") != "client_credentials":
            raise Reject("grant_type %r" % get("grant_type"))
        if get("client_id") != ARGS.ms_client_id:
            raise Reject("client_id %r" % get("client_id"))
        if get("scope") != "https://outlook.office365.com/.default":
            raise Reject("scope %r" % get("scope"))
        if get("client_secret") is not None:
            with open(ARGS.ms_secret_file) as f:
                want = f.readline().rstrip("\r\n")
            if get("client_secret") != want:
                log("reject wrong client secret")
                return self.answer(401, {"error": "invalid_client", "error_description":
                                         "AADSTS7000215: Invalid client secret provided."})
            return self.issue(ARGS.app_user, "ms ok secret")
        if get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer":
            raise Reject("no client_secret and client_assertion_type %r"
                         % get("client_assertion_type"))
        with open(ARGS.ms_cert) as f:
            cert_pem = f.read()
        pub = subprocess.run(["openssl", "x509", "-pubkey", "-noout"], input=cert_pem.encode(),
                             capture_output=True, check=True).stdout.decode()
        header, claims = check_jwt(get("client_assertion", ""), pub, url)
        x5t = base64.urlsafe_b64encode(hashlib.sha1(ssl.PEM_cert_to_DER_cert(cert_pem))
                                       .digest()).decode().rstrip("=")
        if header.get("x5t") != x5t:
            raise Reject("x5t %r, not %r" % (header.get("x5t"), x5t))
        if claims.get("iss") != ARGS.ms_client_id or claims.get("sub") != ARGS.ms_client_id:
            raise Reject("iss/sub %r/%r" % (claims.get("iss"), claims.get("sub")))
        if not claims.get("jti"):
            raise Reject("no jti")
        return self.issue(ARGS.app_user, "ms ok assertion")

    def google_token(self, get):
        url = "https://127.0.0.1:%d/google/token" % self.server.server_address[1]
        if get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            raise Reject("grant_type %r" % get("grant_type"))
        with open(ARGS.google_pubkey) as f:
            pub = f.read()
        header, claims = check_jwt(get("assertion", ""), pub, url)
        if claims.get("scope") != "https://mail.google.com/":
            raise Reject("scope %r" % claims.get("scope"))
        if not claims.get("iss", "").endswith(".iam.gserviceaccount.com"):
            raise Reject("iss %r" % claims.get("iss"))
        if not isinstance(claims.get("iat"), int):
            raise Reject("no iat")
        if not claims.get("sub"):
            raise Reject("no sub")
        return self.issue(claims["sub"], "google ok sub=%s" % claims["sub"])

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        form = urllib.parse.parse_qs(self.rfile.read(n).decode(), keep_blank_values=True)
        get = lambda k, d=None: form.get(k, [d])[0]
        if self.path in ("/ms/token", "/google/token"):
            if not getattr(self.server, "tls", False):
                return self.answer(403, {"error": "https only"})
            try:
                if self.path == "/ms/token":
                    return self.ms_token(get)
                return self.google_token(get)
            except Reject as e:
                log("reject %s" % e)
                return self.answer(400, {"error": "invalid_request",
                                         "error_description": str(e)})
        if self.path == "/mint":
            user, ttl = get("user"), float(get("ttl", "60"))
            claim = get("claim", str(int(ttl)))
            tok = "tok-" + secrets.token_urlsafe(24)
            with LOCK:
                TOKENS[tok] = (user, time.monotonic() + ttl)
            log("mint %s" % user)
            out = {"access_token": tok, "token_type": "Bearer"}
            if claim != "none":
                out["expires_in"] = int(claim)
            return self.answer(200, out)
        if self.path == "/introspect":
            tok = get("token", "")
            with LOCK:
                ent = TOKENS.get(tok)
            if ent is None:
                log("introspect unknown")
                return self.answer(200, {"active": False})
            user, exp = ent
            if time.monotonic() >= exp:
                log("introspect expired %s" % user)
                return self.answer(200, {"active": False})
            log("introspect ok %s" % user)
            return self.answer(200, {"active": True, "username": user, "scope": "mail"})
        self.answer(404, {"error": "not found"})


def write_port(path, port):
    with open(path + ".tmp", "w") as f:
        f.write("%d\n" % port)
    os.rename(path + ".tmp", path)


def serve(args):
    global LOG, ARGS
    LOG, ARGS = args.log, args
    open(LOG, "a").close()
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    if args.tls_port_file:
        tls = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.cert, args.key)
        tls.socket = ctx.wrap_socket(tls.socket, server_side=True)
        tls.tls = True
        threading.Thread(target=tls.serve_forever, daemon=True).start()
        write_port(args.tls_port_file, tls.server_address[1])
    write_port(args.port_file, srv.server_address[1])
    srv.serve_forever()


def mint(args):
    user = os.environ.get("TRASLOCO_USER")
    if not user:
        sys.stderr.write("tokensvc mint: no TRASLOCO_USER\n")
        return 1
    form = {"user": user, "ttl": str(args.ttl)}
    if args.claim is not None:
        form["claim"] = args.claim
    data = urllib.parse.urlencode(form).encode()
    with urllib.request.urlopen(args.url + "/mint", data, timeout=10) as r:
        sys.stdout.write(r.read().decode() + "\n")
    return 0


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--port-file", required=True)
    s.add_argument("--log", required=True)
    s.add_argument("--tls-port-file")
    s.add_argument("--cert")
    s.add_argument("--key")
    s.add_argument("--app-user")
    s.add_argument("--ms-client-id")
    s.add_argument("--ms-secret-file")
    s.add_argument("--ms-cert")
    s.add_argument("--google-pubkey")
    m = sub.add_parser("mint")
    m.add_argument("--url", required=True)
    m.add_argument("--ttl", type=float, required=True)
    m.add_argument("--claim")
    args = p.parse_args()
    if args.cmd == "serve":
        serve(args)
        return 0
    return mint(args)


if __name__ == "__main__":
    sys.exit(main())
