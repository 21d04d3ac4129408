#!/usr/bin/env python3
"""The API's side of tests/integration/test_serve.sh: a client of `trasloco serve`.

python3 serve_client.py BASE TOKEN SCENARIO [args...]; every response body is
appended to $IT_DIR/responses.log (the test looks for passwords in it).
Scenarios print what the shell part needs on stdout and exit non-zero with a
message when the server did not answer as openapi.json says.
"""
import http.client
import json
import os
import socket
import ssl
import statistics
import sys
import threading
import time
import urllib.parse

BASE, TOKEN = sys.argv[1], sys.argv[2]
U = urllib.parse.urlsplit(BASE)
LOG = os.path.join(os.environ.get("IT_DIR", "."), "responses.log")
EXCHANGES = os.path.join(os.environ.get("IT_DIR", "."), "exchanges.jsonl")


def log_exchange(method, path, status, ctype, data):
    """Every exchange, for openapi_check.py (and, raw, for the password grep)."""
    with open(LOG, "ab") as f:
        f.write(("%s %s -> %d\n" % (method, path, status)).encode() + data + b"\n")
    with open(EXCHANGES, "a") as f:
        f.write(json.dumps({"method": method, "path": path, "status": status,
                            "type": ctype, "body": data.decode("utf-8", "replace")}) + "\n")


def fail(msg):
    sys.stderr.write("serve_client: %s\n" % msg)
    sys.exit(1)


class VerifiedHTTPS(http.client.HTTPSConnection):
    """HTTPS to an address, the certificate checked against the tests' CA
    and name ($IT_CA, $IT_TLS_NAME): the service's certificate carries a
    DNS name only."""

    def connect(self):
        ctx = ssl.create_default_context(cafile=os.environ["IT_CA"])
        raw = socket.create_connection((self.host, self.port), self.timeout)
        self.sock = ctx.wrap_socket(raw, server_hostname=os.environ["IT_TLS_NAME"])


def connection(timeout=60):
    if U.scheme == "https":
        return VerifiedHTTPS(U.hostname, U.port, timeout=timeout)
    return http.client.HTTPConnection(U.hostname, U.port, timeout=timeout)


def request(method, path, body=None, token=TOKEN, headers=None, raw=False):
    c = connection()
    h = {}
    if token is not None:
        h["Authorization"] = "Bearer " + token
    if body is not None and not isinstance(body, (bytes, str)):
        body = json.dumps(body)
        h["Content-Type"] = "application/json"
    h.update(headers or {})
    c.request(method, path, body=body, headers=h)
    r = c.getresponse()
    data = r.read()
    c.close()
    log_exchange(method, path, r.status, r.getheader("Content-Type"), data)
    if raw:
        return r, data
    doc = None
    if data and r.getheader("Content-Type", "").startswith("application/json"):
        doc = json.loads(data)
    return r.status, doc, r


def expect(status, got, what, doc=None):
    if got != status:
        fail("%s: HTTP %d, not %d (%s)" % (what, got, status, doc))


def job_count():
    st, doc, _ = request("GET", "/v1/jobs")
    expect(200, st, "GET /v1/jobs", doc)
    return len(doc["jobs"])


def refusals(job_json_path):
    """Every refusal the issue names: its status, a message, and nothing created."""
    job = json.load(open(job_json_path))
    before = job_count()
    checks = []
    # no token, a wrong one, a wrong scheme
    st, doc, r = request("GET", "/v1/jobs", token=None)
    expect(401, st, "no token", doc)
    if "Bearer" not in (r.getheader("WWW-Authenticate") or ""):
        fail("401 without WWW-Authenticate: Bearer")
    st, doc, _ = request("GET", "/v1/jobs", token=TOKEN + "x")
    expect(401, st, "a wrong token", doc)
    st, doc, _ = request("POST", "/v1/jobs", body=job, token="wrong-token-0123456789")
    expect(401, st, "a job with a wrong token", doc)
    st, doc, _ = request("GET", "/v1/jobs", headers={"Authorization": "Basic " + TOKEN})
    expect(401, st, "Basic instead of Bearer", doc)
    checks.append("401 x4")
    # malformed JSON, not an object, unknown key, missing src, bad types
    for body, what, word in [
        ('{"src": "x", ', "malformed JSON", "invalid JSON"),
        ('[1, 2]', "an array", "object"),
        (dict(job, **{"frobnicate": 1}), "an unknown key", "unknown key"),
        ({k: v for k, v in job.items() if k != "src"}, "no src", "src"),
        ({k: v for k, v in job.items() if k != "dst"}, "no dst", "dst"),
        ({k: v for k, v in job.items() if k != "accounts_csv"}, "no CSV", "accounts_csv"),
        (dict(job, **{"state": "/tmp/x"}), "a state dir", "not taken"),
        (dict(job, **{"accounts": "/etc/passwd"}), "an accounts path", "accounts_csv"),
        (dict(job, **{"timeout": "soon"}), "a bad number", "timeout"),
        (dict(job, **{"folder": [1]}), "a folder list of numbers", "folder"),
        (dict(job, **{"ca-file": "relative.pem"}), "a relative path", "absolute"),
        (dict(job, **{"accounts_csv": "email,password\nnot-an-address,x\n"}),
         "no usable account", "no usable account"),
    ]:
        st, doc, _ = request("POST", "/v1/jobs", body=body)
        expect(400, st, what, doc)
        if not doc or word not in doc.get("error", ""):
            fail("%s: the message does not say %r: %s" % (what, word, doc))
    checks.append("400 x12")
    # a body over the limit (serve runs with --max-body 65536)
    big = dict(job, accounts_csv=job["accounts_csv"] + "x" * 70000)
    st, doc, _ = request("POST", "/v1/jobs", body=big)
    expect(413, st, "an oversize body", doc)
    checks.append("413")
    # paths with .. segments, unknown routes, jobs that do not exist
    for path, code in [("/v1/jobs/../jobs", 400), ("/v1/jobs/1/../../metrics", 400),
                       ("/v1/nothing", 404), ("/v1/jobs/999999", 404), ("/v1/jobs/abc", 404),
                       ("/v1/jobs/999999/accounts/a@b.test", 404)]:
        c = connection(30)
        c.putrequest("GET", path, skip_accept_encoding=True)
        c.putheader("Authorization", "Bearer " + TOKEN)
        c.endheaders()
        r = c.getresponse()
        log_exchange("GET", path, r.status, r.getheader("Content-Type"), r.read())
        c.close()
        if r.status != code:
            fail("GET %s: HTTP %d, not %d" % (path, r.status, code))
    for method, path in [("POST", "/v1/jobs/999999/retry"), ("POST", "/v1/jobs/999999/cancel"),
                         ("DELETE", "/v1/jobs/999999"),
                         ("POST", "/v1/jobs/999999/passes")]:
        st, doc, _ = request(method, path, body={"kind": "delta"} if "passes" in path else None)
        expect(404, st, "%s %s" % (method, path), doc)
    st, doc, r = request("PUT", "/v1/jobs")
    expect(405, st, "PUT /v1/jobs", doc)
    if "POST" not in (r.getheader("Allow") or ""):
        fail("405 without Allow")
    checks.append("400/404/405 paths")
    if job_count() != before:
        fail("a refused request created a job")
    st, doc, _ = request("GET", "/healthz", token=None)
    expect(200, st, "healthz without token", doc)
    print(" ".join(checks))


def submit(job_json_path):
    job = json.load(open(job_json_path))
    st, doc, r = request("POST", "/v1/jobs", body=job)
    expect(201, st, "POST /v1/jobs", doc)
    if r.getheader("Location") != "/v1/jobs/%d" % doc["id"]:
        fail("Location is %r" % r.getheader("Location"))
    print(json.dumps(doc))


def wait(job_id, timeout):
    """Poll until the job is finished; print it."""
    end = time.time() + float(timeout)
    while time.time() < end:
        st, doc, _ = request("GET", "/v1/jobs/%s" % job_id)
        expect(200, st, "GET /v1/jobs/%s" % job_id, doc)
        if doc["state"] not in ("queued", "running"):
            print(json.dumps(doc))
            return
        time.sleep(0.5)
    fail("job %s not finished within %s s: %s" % (job_id, timeout, doc))


def concurrent(job_id, n):
    """n status requests at once while the job runs: all 200; latencies."""
    n = int(n)
    lat, errs = [], []
    go = threading.Event()

    def one():
        go.wait()
        t = time.monotonic()
        try:
            st, doc, _ = request("GET", "/v1/jobs/%s" % job_id)
            if st != 200 or "account_list" not in doc:
                errs.append(st)
        except Exception as e:  # noqa: BLE001 - any failure counts
            errs.append(repr(e))
        lat.append(time.monotonic() - t)

    ts = [threading.Thread(target=one) for _ in range(n)]
    for t in ts:
        t.start()
    go.set()
    for t in ts:
        t.join()
    if errs or len(lat) != n:
        fail("concurrent status requests failed: %s" % errs[:5])
    lat.sort()
    print("%d concurrent GET /v1/jobs/%s: median %.1f ms, p95 %.1f ms, max %.1f ms" % (
        n, job_id, statistics.median(lat) * 1000, lat[int(0.95 * (n - 1))] * 1000,
        lat[-1] * 1000))


def events(job_id):
    """The first event of the stream is the job's document."""
    c = connection(30)
    c.request("GET", "/v1/events?job=%s" % job_id,
              headers={"Authorization": "Bearer " + TOKEN, "Accept": "text/event-stream"})
    r = c.getresponse()
    if r.status != 200 or not r.getheader("Content-Type", "").startswith("text/event-stream"):
        fail("events: HTTP %d %s" % (r.status, r.getheader("Content-Type")))
    log_exchange("GET", "/v1/events?job=%s" % job_id, r.status, r.getheader("Content-Type"), b"")
    lines = []
    while True:
        line = r.readline().decode()
        if line in ("\n", ""):
            break
        lines.append(line.rstrip("\n"))
    c.close()
    ev = dict(l.split(": ", 1) for l in lines if not l.startswith(":"))
    if ev.get("event") != "job":
        fail("events: first event %r" % lines)
    doc = json.loads(ev["data"])
    if doc["id"] != int(job_id):
        fail("events: a document of job %s" % doc["id"])
    print("event job %s %s" % (doc["id"], doc["state"]))


def read_event(r):
    lines = []
    while True:
        line = r.readline().decode()
        if line == "":
            return None
        if line == "\n":
            if lines:
                break
            continue
        if not line.startswith(":"):
            lines.append(line.rstrip("\n"))
    return dict(l.split(": ", 1) for l in lines)


def events_delete(job_id):
    """A stream open on a job sees it deleted: DELETE is 204, the stream says
    gone and ends; the stream of every job keeps going."""
    c = connection(30)
    c.request("GET", "/v1/events?job=%s" % job_id, headers={"Authorization": "Bearer " + TOKEN})
    r = c.getresponse()
    log_exchange("GET", "/v1/events?job=%s" % job_id, r.status, r.getheader("Content-Type"), b"")
    if r.status != 200:
        fail("events: HTTP %d" % r.status)
    ev = read_event(r)
    if ev is None or ev.get("event") != "job":
        fail("events: first event %r" % ev)
    call_all = connection(30)
    call_all.request("GET", "/v1/events", headers={"Authorization": "Bearer " + TOKEN})
    ra = call_all.getresponse()
    log_exchange("GET", "/v1/events", ra.status, ra.getheader("Content-Type"), b"")
    first_all = read_event(ra)
    if first_all is None or first_all.get("event") != "jobs":
        fail("events of every job: first event %r" % first_all)
    st, doc, _ = request("DELETE", "/v1/jobs/%s" % job_id)
    expect(204, st, "DELETE /v1/jobs/%s" % job_id, doc)
    seen = []
    while True:
        ev = read_event(r)
        if ev is None:
            break
        seen.append(ev.get("event"))
    if not seen or seen[-1] != "gone":
        fail("events after DELETE: %r" % seen)
    # the stream of every job tells of the deletion too (a new document)
    ev = read_event(ra)
    ids = [j["id"] for j in json.loads(ev["data"])["jobs"]] if ev else None
    if ev is None or ev.get("event") != "jobs" or int(job_id) in ids:
        fail("events of every job after DELETE: %r" % ev)
    c.close()
    call_all.close()
    print("events: %s, then gone; every job's stream updated" % " ".join(seen[:-1] or ["-"]))


def metrics():
    from prometheus_client.parser import text_string_to_metric_families
    r, data = request("GET", "/metrics", raw=True)
    if r.status != 200:
        fail("/metrics: HTTP %d" % r.status)
    names = {}
    for fam in text_string_to_metric_families(data.decode()):
        names[fam.name] = fam
    for want in ("trasloco_jobs", "trasloco_accounts", "trasloco_messages_copied",
                 "trasloco_sessions_in_use", "trasloco_sessions_cap", "trasloco_workers",
                 "trasloco_account_errors", "trasloco_limit_refusals",
                 "trasloco_pass_seconds"):
        if want not in names:
            fail("/metrics lacks %s (has %s)" % (want, sorted(names)))
    ok = sum(s.value for s in names["trasloco_accounts"].samples if s.labels["status"] == "ok")
    auth = sum(s.value for s in names["trasloco_account_errors"].samples
               if s.labels["kind"] == "auth")
    st, doc, _ = request("GET", "/metrics", token=None)
    expect(401, st, "/metrics without a token", doc)
    print("metrics %d families, accounts ok %d, auth errors %d" % (len(names), ok, auth))


def call(method, path, expect_status, body=None):
    """One request; a body that is not JSON is sent as it is."""
    if body:
        try:
            body = json.loads(body)
        except ValueError:
            pass
    st, doc, _ = request(method, path, body=body if body else None)
    expect(int(expect_status), st, "%s %s" % (method, path), doc)
    print(json.dumps(doc) if doc is not None else "")


def wait_passes(job_id, count, timeout):
    """Poll until the job has run `count` passes (the first run counts) and is
    finished; print it."""
    end = time.time() + float(timeout)
    doc = None
    while time.time() < end:
        st, doc, _ = request("GET", "/v1/jobs/%s" % job_id)
        expect(200, st, "GET /v1/jobs/%s" % job_id, doc)
        if doc["passes"]["count"] >= int(count) and doc["state"] not in ("queued", "running"):
            print(json.dumps(doc))
            return
        time.sleep(0.5)
    fail("job %s: not %s passes within %s s: %s" % (job_id, count, timeout,
                                                     doc and doc.get("passes")))


def tls():
    """Over HTTPS: the status answers; plain HTTP to the TLS port does not."""
    st, doc, _ = request("GET", "/v1/jobs")
    expect(200, st, "GET /v1/jobs over TLS", doc)
    c = http.client.HTTPConnection(U.hostname, U.port, timeout=10)
    try:
        c.request("GET", "/healthz")
        r = c.getresponse()
        fail("plain HTTP to the TLS port answered %d" % r.status)
    except (http.client.HTTPException, OSError):
        pass
    print("https ok, %d job(s)" % len(doc["jobs"]))


SCEN = {"tls": tls, "events_delete": events_delete, "wait_passes": wait_passes, "refusals": refusals, "submit": submit, "wait": wait, "concurrent": concurrent,
        "events": events, "metrics": metrics, "call": call}
try:
    SCEN[sys.argv[3]](*sys.argv[4:])
except (socket.error, http.client.HTTPException) as e:
    fail("%s: %r" % (sys.argv[3], e))
