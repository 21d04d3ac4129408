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

    tokensvc.py mint --url URL --ttl S [--claim C]
        The client side, for a test's token command: mints a token for
        $TRASLOCO_USER and prints the JSON answer.

Stdlib only.
"""
import argparse
import json
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

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        form = urllib.parse.parse_qs(self.rfile.read(n).decode(), keep_blank_values=True)
        get = lambda k, d=None: form.get(k, [d])[0]
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


def serve(args):
    global LOG
    LOG = args.log
    open(LOG, "a").close()
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % srv.server_address[1])
    os.rename(tmp, args.port_file)
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
