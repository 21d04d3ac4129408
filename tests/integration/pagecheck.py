#!/usr/bin/env python3
"""pagecheck.py: checks a DOM that headless chromium dumped (--dump-dom) from the
status page (page/), for tests/integration/test_page.sh.  Standard library only.

  pagecheck.py shown DOM --base URL --token-file F [--final JOB]... [--show S]
      The page shows the jobs: #state is "ok", the token form is hidden, every job
      the API lists (GET BASE/v1/jobs, asked now) is a [data-job-id] element, and
      every job whose <details> is open lists every account of GET BASE/v1/jobs/ID
      as a tr[data-email][data-status] whose td.status says the same.  The page
      showed an earlier moment than the API answers now, so a status may lag
      (pending, then running, then final) but never disagree with a final one.
      A --final JOB must be finished and exactly as the API says, folders too.
      --show S: the page was opened with #show=S: exactly the rows of those
      statuses are visible (default all: no row hidden).
  pagecheck.py refused DOM
      The page refused the token: #state starts "error: 401", the form is shown
      with a message naming the 401, no job and no account is shown.
  pagecheck.py notoken DOM
      No token at all: the form is shown, with no message, and nothing else.
In every mode: no element with id="injected" (server text turned into markup).
Prints a one-line summary per job; exit status 1 with the reason on a mismatch.
"""
import argparse
import json
import sys
import urllib.parse
import urllib.request
from html.parser import HTMLParser

RANK = {"pending": 0, "queued": 0, "running": 1}  # anything else is final
SHOW = {"problems": ("failed", "partial")}  # the page's "show" choices that name several


def rank(status):
    return RANK.get(status, 2)


class Dom(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.state = None
        self.login_hidden = None
        self.login_msg = None
        self.login_msg_hidden = None
        self.jobs = {}        # id -> {"state", "open", "rows": [...]}
        self.order = []
        self.injected = 0
        self._job = None
        self._row = None
        self._cap = None      # (tag, setter) while text is being collected
        self._buf = []

    def _capture(self, tag, setter):
        self._cap = (tag, setter)
        self._buf = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        cls = (a.get("class") or "").split()
        if a.get("id") == "injected":
            self.injected += 1
        if a.get("id") == "state":
            self._capture(tag, lambda t: setattr(self, "state", t))
        elif tag == "form" and a.get("id") == "login":
            self.login_hidden = "hidden" in a
        elif a.get("id") == "login-msg":
            self.login_msg_hidden = "hidden" in a
            self._capture(tag, lambda t: setattr(self, "login_msg", t))
        elif "data-job-id" in a:
            jid = a["data-job-id"]
            self._job = {"state": a.get("data-state"), "open": None, "rows": []}
            self.jobs[jid] = self._job
            self.order.append(jid)
            self._row = None
        elif tag == "details" and self._job is not None and self._job["open"] is None:
            self._job["open"] = "open" in a
        elif tag == "tr" and "data-email" in a:
            self._row = {"email": a["data-email"], "status": a.get("data-status"),
                         "cell": None, "folders": None, "hidden": "hidden" in a}
            if self._job is None:
                raise SystemExit("pagecheck: account row %r outside any job" % a["data-email"])
            self._job["rows"].append(self._row)
        elif tag == "td" and "status" in cls and self._row is not None:
            row = self._row
            self._capture(tag, lambda t: row.__setitem__("cell", t))
        elif tag == "span" and "ft" in cls and self._row is not None:
            row = self._row
            self._capture(tag, lambda t: row.__setitem__("folders", t))

    def handle_endtag(self, tag):
        if self._cap is not None and tag == self._cap[0]:
            self._cap[1]("".join(self._buf))
            self._cap = None

    def handle_data(self, data):
        if self._cap is not None:
            self._buf.append(data)


def fail(msg):
    print("pagecheck: " + msg, file=sys.stderr)
    sys.exit(1)


def parse(path):
    d = Dom()
    with open(path, encoding="utf-8") as f:
        d.feed(f.read())
    d.close()
    if d.injected:
        fail("%d element(s) with id=\"injected\": server text became markup" % d.injected)
    if d.state is None:
        fail("no #state element in the DOM (did the page load?)")
    return d


def api(base, token, path):
    req = urllib.request.Request(urllib.parse.urljoin(base, path),
                                 headers={"Authorization": "Bearer " + token})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r)


def check_shown(d, base, token, final, show):
    if d.state != "ok":
        fail("#state is %r, not \"ok\"" % d.state)
    if d.login_hidden is not True:
        fail("the token form is shown although the token is good")
    listed = api(base, token, "v1/jobs")["jobs"]
    if not listed:
        fail("the API lists no job: nothing to check")
    for f in final:
        if f not in [str(j["id"]) for j in listed]:
            fail("--final %s: the API has no such job" % f)
    for j in listed:
        jid = str(j["id"])
        dj = d.jobs.get(jid)
        if dj is None:
            fail("job %s (%s) is not on the page" % (jid, j["state"]))
        if dj["state"] is None or rank(dj["state"]) > rank(j["state"]) or \
                (rank(dj["state"]) == 2 and dj["state"] != j["state"]):
            fail("job %s shows state %r, the API says %r" % (jid, dj["state"], j["state"]))
        if j["state"] in ("queued", "running") and not dj["open"]:
            fail("job %s is %s but shown closed" % (jid, j["state"]))
        if not dj["open"]:
            if jid in final:
                fail("job %s: --final, but shown closed" % jid)
            if dj["rows"]:
                fail("job %s is closed but has account rows" % jid)
            print("job %s (%s): closed" % (jid, dj["state"]))
            continue
        detail = api(base, token, "v1/jobs/" + urllib.parse.quote(jid))
        want = detail["account_list"]
        rows = dj["rows"]
        if [r["email"] for r in rows] != [a["email"] for a in want]:
            fail("job %s: the page lists accounts %s, the API %s" %
                 (jid, [r["email"] for r in rows], [a["email"] for a in want]))
        exact = jid in final
        if exact and dj["state"] != detail["state"]:
            fail("job %s: shows %r, the API says %r (final)" % (jid, dj["state"], detail["state"]))
        counts = {}
        shown = 0
        for r, a in zip(rows, want):
            who = "job %s, %s" % (jid, a["email"])
            visible = show == "all" or r["status"] in SHOW.get(show, (show,))
            if r["hidden"] == visible:
                fail("%s: a %s row is %s with show=%s" % (
                    who, r["status"], "hidden" if r["hidden"] else "shown", show))
            if r["cell"] != r["status"]:
                fail("%s: data-status %r but the status cell says %r" % (who, r["status"], r["cell"]))
            s, w = r["status"], a["status"]
            if exact and s != w:
                fail("%s: shows %r, the API says %r" % (who, s, w))
            if rank(s) > rank(w) or (rank(s) == 2 and s != w):
                fail("%s: shows %r, the API says %r" % (who, s, w))
            if exact and a["folders_total"]:
                ft = "%d/%d" % (a["folders_done"], a["folders_total"])
                if (r["folders"] or "").replace(",", "") != ft:
                    fail("%s: folders %r, the API says %s" % (who, r["folders"], ft))
            counts[s] = counts.get(s, 0) + 1
            shown += not r["hidden"]
        print("job %s (%s): %d accounts listed, %d shown (show=%s): %s" % (
            jid, dj["state"], len(rows), shown, show,
            ", ".join("%d %s" % (n, s) for s, n in sorted(counts.items()))))


def check_form(d, refused):
    if d.login_hidden is not False:
        fail("the token form is not shown")
    if d.jobs:
        fail("jobs are shown without a good token: %s" % ", ".join(d.order))
    if refused:
        if not d.state.startswith("error: 401"):
            fail("#state is %r, not \"error: 401 ...\"" % d.state)
        if d.login_msg_hidden or "401" not in (d.login_msg or ""):
            fail("the form's message does not name the 401: %r" % d.login_msg)
        print("refused: #state %r; form shown: %r" % (d.state, d.login_msg))
    else:
        if not d.state.startswith("error: no token"):
            fail("#state is %r, not \"error: no token\"" % d.state)
        if not d.login_msg_hidden:
            fail("the form shows a message with no token given: %r" % d.login_msg)
        print("no token: #state %r; form shown" % d.state)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["shown", "refused", "notoken"])
    ap.add_argument("dom")
    ap.add_argument("--base")
    ap.add_argument("--token-file")
    ap.add_argument("--final", action="append", default=[])
    ap.add_argument("--show", default="all", help="the filter the page was opened with")
    a = ap.parse_args()
    d = parse(a.dom)
    if a.mode == "shown":
        if not a.base or not a.token_file:
            ap.error("shown needs --base and --token-file")
        with open(a.token_file, encoding="utf-8") as f:
            token = f.read().strip()
        check_shown(d, a.base, token, a.final, a.show)
    else:
        check_form(d, a.mode == "refused")


if __name__ == "__main__":
    main()
