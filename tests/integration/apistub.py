#!/usr/bin/env python3
"""apistub.py: a stand-in for `trasloco serve` while the status page is tested.

Serves the status page's files from the source tree (page/) at /, /index.html,
/page.css and /page.js, and canned JSON following the API contract the page
reads (GET /v1/jobs, GET /v1/jobs/ID), checking `Authorization: Bearer TOKEN`
(401 {"error": ...} otherwise).  Python 3 standard library only; 127.0.0.1 only.

The jobs (newest first on the page):
  8 globex   running, never finishes: 1 ok, 1 partial, 1 failed, 2 running (one's
             folders advance), 2 pending
  7 acme     12 accounts that move on by one step at each GET /v1/jobs/7: all
             pending or running at first, finished after 5 fetches: 9 ok,
             2 failed (one with markup in its error text), 1 partial; job state
             "partial"; one skipped CSV row
  6 initech  done long ago: 3 ok
Every request is appended to --log as one JSON line (method, path, whether an
Authorization header came, and whether it was right), so that a test can check
what the browser sent.

Usage: apistub.py --port P --token-file F --page-dir DIR --log FILE
"""
import argparse
import hmac
import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FILES = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/index.html": ("index.html", "text/html; charset=utf-8"),
    "/page.css": ("page.css", "text/css; charset=utf-8"),
    "/page.js": ("page.js", "text/javascript; charset=utf-8"),
}

# What the page must never turn into markup: the test looks for id="injected".
HOSTILE_ERROR = ('<img id="injected" src="x"> <b id="injected">bold</b> NO '
                 '[AUTHENTICATIONFAILED] Authentication failed.')

ACME = ["a%02d@acme.test" % i for i in range(1, 13)]
ACME_FINAL = {
    "a03@acme.test": ("failed", HOSTILE_ERROR),
    "a07@acme.test": ("failed", "connect 10.0.0.1:993: Connection refused"),
    "a10@acme.test": ("partial", "3 messages refused: NO [TOOBIG] Message too large"),
}
GLOBEX = ["g%d@globex.test" % i for i in range(1, 8)]


def account(email, status, error=None, done=0, total=11, copied=0, present=0, failed=0,
            seconds=0.0, attempts=1, worker=None):
    return {
        "email": email, "status": status, "error": error,
        "folders_done": done, "folders_total": total,
        "messages_copied": copied, "messages_present": present, "messages_failed": failed,
        "bytes": copied * 48213, "seconds": seconds, "attempts": attempts, "worker": worker,
    }


def tally(accounts):
    c = {"total": len(accounts), "pending": 0, "running": 0, "ok": 0, "partial": 0,
         "failed": 0, "cancelled": 0}
    for a in accounts:
        c[a["status"]] += 1
    return c


def job(jid, name, state, created, accounts, rate, eta, skipped=()):
    copied = sum(a["messages_copied"] for a in accounts)
    seconds = max([a["seconds"] for a in accounts] + [0.0])
    return {
        "id": jid, "name": name, "state": state, "created": created,
        "src": "10.0.0.1:993", "dst": "127.0.0.1:143",
        "accounts": tally(accounts),
        "messages_copied": copied,
        "messages_present": sum(a["messages_present"] for a in accounts),
        "messages_failed": sum(a["messages_failed"] for a in accounts),
        "bytes": sum(a["bytes"] for a in accounts),
        "seconds": seconds, "rate": rate,
        "bytes_per_second": rate * 48213.0,
        "eta_seconds": eta,
        "sessions": {"src": {"in_use": tally(accounts)["running"] * 4, "cap": 40, "per_account": 4},
                     "dst": {"in_use": tally(accounts)["running"] * 4, "cap": 40, "per_account": 4}},
        "skipped": list(skipped),
        "account_list": accounts,
    }


class Jobs:
    """The canned jobs; acme's and globex's progress is counted in fetches of
    their detail, not in time, so that the browser's virtual time and the test's
    outcome do not depend on how fast this machine is."""

    def __init__(self):
        self.lock = threading.Lock()
        self.steps = {7: 0, 8: 0}

    def acme(self, step):
        accs = []
        for i, e in enumerate(ACME):
            start = i // 4
            if step < start:
                accs.append(account(e, "pending", total=0, attempts=0))
            elif step < start + 2:
                done = 4 + 3 * (step - start)
                accs.append(account(e, "running", done=done, copied=40 * done,
                                    seconds=8.0 * (step - start + 1), worker="host1:4242:%d" % i))
            else:
                status, err = ACME_FINAL.get(e, ("ok", None))
                if status == "failed" and "AUTHENTICATIONFAILED" in err:
                    accs.append(account(e, status, err, done=0, total=0, seconds=0.4,
                                        attempts=1))
                elif status == "failed":
                    accs.append(account(e, status, err, done=0, total=0, seconds=30.2,
                                        attempts=3))
                elif status == "partial":
                    accs.append(account(e, status, err, done=11, copied=437, present=2,
                                        failed=3, seconds=95.0))
                else:
                    accs.append(account(e, status, None, done=11, copied=440 + i,
                                        present=i % 3, seconds=60.0 + i))
        finished = step >= 11 // 4 + 2
        state = "partial" if finished else "running"
        return job(7, "acme", state, "2026-12-05T09:00:00Z", accs,
                   0.0 if finished else 20.1, None if finished else 120 - 20 * step,
                   skipped=[{"line": 4, "reason": "no password"}])

    def globex(self, step):
        accs = [
            account(GLOBEX[0], "ok", done=7, total=7, copied=812, seconds=140.0),
            account(GLOBEX[1], "partial", "1 message refused: NO [OVERQUOTA] Quota exceeded",
                    done=9, total=9, copied=1021, present=4, failed=1, seconds=171.5),
            account(GLOBEX[2], "failed", "LOGIN: NO [AUTHENTICATIONFAILED] Authentication failed.",
                    total=0, seconds=0.3),
            account(GLOBEX[3], "running", done=min(2 + step, 10), total=14,
                    copied=300 + 25 * min(step, 8), seconds=64.0, worker="host1:4242:1"),
            account(GLOBEX[4], "running", done=0, total=0, seconds=2.0, worker="host1:4242:2"),
            account(GLOBEX[5], "pending", total=0, attempts=0),
            account(GLOBEX[6], "pending", total=0, attempts=0),
        ]
        return job(8, "globex", "running", "2026-12-05T10:30:00Z", accs, 12.5, 340)

    @staticmethod
    def initech():
        accs = [account("i%d@initech.test" % i, "ok", done=5, total=5, copied=120 * i,
                        seconds=30.0 * i) for i in range(1, 4)]
        return job(6, "initech", "done", "2026-12-04T17:12:00Z", accs, 0.0, None)

    def get(self, jid, advance):
        with self.lock:
            step = self.steps.get(jid, 0)
            if advance and jid in self.steps:
                self.steps[jid] = step = step + 1
        if jid == 6:
            return self.initech()
        if jid == 7:
            return self.acme(step)
        if jid == 8:
            return self.globex(step)
        return None

    def summaries(self):
        out = []
        for jid in (6, 7, 8):
            j = self.get(jid, False)
            del j["account_list"]
            out.append(j)
        return out


class Handler(BaseHTTPRequestHandler):
    server_version = "apistub"
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # the request log below says what matters
        pass

    def record(self, authorized):
        line = json.dumps({"method": self.command, "path": self.path,
                           "authorization": "Authorization" in self.headers,
                           "authorized": authorized})
        with self.server.log_lock, open(self.server.log_path, "a", encoding="utf-8") as f:
            f.write(line + "\n")

    def send(self, code, body, ctype, extra=()):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def send_json(self, code, obj, extra=()):
        self.send(code, json.dumps(obj).encode(), "application/json", extra)

    def authorized(self):
        got = self.headers.get("Authorization", "")
        want = "Bearer " + self.server.token
        return hmac.compare_digest(got.encode(), want.encode())

    def do_GET(self):
        path = self.path.split("?", 1)[0]
        if path in FILES:
            self.record(None)
            name, ctype = FILES[path]
            with open(os.path.join(self.server.page_dir, name), "rb") as f:
                self.send(200, f.read(), ctype)
            return
        if not path.startswith("/v1/"):
            self.record(None)
            self.send_json(404, {"error": "not found"})
            return
        ok = self.authorized()
        self.record(ok)
        if not ok:
            self.send_json(401, {"error": "missing or wrong token"},
                           [("WWW-Authenticate", 'Bearer realm="trasloco"')])
            return
        if path == "/v1/jobs":
            self.send_json(200, {"jobs": self.server.jobs.summaries()})
            return
        parts = path.split("/")
        if len(parts) == 4 and parts[3].isdigit():
            j = self.server.jobs.get(int(parts[3]), True)
            if j is not None:
                self.send_json(200, j)
                return
        self.send_json(404, {"error": "no such job"})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--token-file", required=True)
    ap.add_argument("--page-dir", required=True)
    ap.add_argument("--log", required=True)
    a = ap.parse_args()
    with open(a.token_file, encoding="utf-8") as f:
        token = f.read().strip()
    if not token:
        sys.exit("apistub: empty token file")
    srv = ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    srv.daemon_threads = True
    srv.token = token
    srv.page_dir = a.page_dir
    srv.log_path = a.log
    srv.log_lock = threading.Lock()
    srv.jobs = Jobs()
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
