#!/usr/bin/python3
"""bench/verify.py: byte-exact comparison of migrated mailboxes, over IMAP (stdlib only).

usage: verify.py --accounts CSV --src-port P --dst-port Q [--host 127.0.0.1]
                 [--src-cache FILE [--src-only]] [--strip-header NAME] [--jobs N] [-v]

CSV: "email","password" per line (the accounts file given to `trasloco run`); the same
login and password on both servers.  For every account and every selectable folder of
the source (LIST "" "*", \\Noselect skipped, names decoded from modified UTF-7), the
destination must hold the folder under the same name with the same multiset of
(sha256 of BODY.PEEK[], FLAGS without \\Recent, INTERNALDATE as an instant).  Each
folder is read with one EXAMINE and one pipelined-by-the-server `UID FETCH 1:* (UID
FLAGS INTERNALDATE BODY.PEEK[])`, accounts in parallel (--jobs, default 4 connections
per side), so 500 MB take a few seconds.

--src-cache FILE keeps the source's digests: read when it exists (and covers the
accounts asked for), written after a scan otherwise; with --src-only nothing else is done.  The benchmark's source never
changes, so it is scanned once (which also warms the page cache) and every later check
reads only the destination.
--strip-header NAME removes header NAME (with its continuation lines) from destination
copies before hashing (mbsync adds X-TUID to every message it copies).

Prints one line per account and folder that differs (-v: also per message) and always
one summary line:
  verify: accounts=A folders=F messages=M missing=a extra=b flags=c kw_only=d dates=e
          missing_folders=f extra_folders=g result=identical|DIFFERENT
missing: source copies without a destination copy; extra: destination copies beyond the
source's count (duplicates); flags / dates: paired copies whose flags / date differ
(kw_only: of those flag differences, the ones where only keywords differ).
Exit status: 0 identical, 1 different, 3 connection or protocol error.
"""
import argparse
import base64
import calendar
import collections
import concurrent.futures
import csv
import hashlib
import json
import os
import re
import socket
import sys
import time

LIT = re.compile(rb"\{(\d+)\}\r\n$")
MONTHS = {m: i for i, m in enumerate(
    "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split(), 1)}


class ImapError(Exception):
    pass


def quote(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def mutf7_decode(s):
    out, i = [], 0
    while i < len(s):
        c = s[i]
        if c != "&":
            out.append(c)
            i += 1
            continue
        j = s.index("-", i)
        if j == i + 1:
            out.append("&")
        else:
            b = s[i + 1:j].replace(",", "/")
            out.append(base64.b64decode(b + "=" * (-len(b) % 4)).decode("utf-16-be"))
        i = j + 1
    return "".join(out)


def internaldate(s):
    # "17-Jul-1996 02:44:25 -0700"
    m = re.match(r"\s*(\d+)-(\w{3})-(\d{4}) (\d\d):(\d\d):(\d\d) ([-+])(\d\d)(\d\d)", s)
    if not m:
        raise ImapError("bad INTERNALDATE %r" % s)
    d, mon, y, hh, mm, ss, sign, th, tm = m.groups()
    t = calendar.timegm((int(y), MONTHS[mon], int(d), int(hh), int(mm), int(ss)))
    off = (int(th) * 60 + int(tm)) * 60
    return t - off if sign == "+" else t + off


def strip_header(raw, name):
    end = raw.find(b"\r\n\r\n")
    if end < 0:
        return raw
    head = raw[:end + 2].split(b"\r\n")
    key = name.lower().encode() + b":"
    out, skipping = [], False
    for line in head:
        if line[:1] in (b" ", b"\t") and skipping:
            continue
        skipping = line.lower().startswith(key)
        if not skipping:
            out.append(line)
    return b"\r\n".join(out) + raw[end + 2:]


class Imap:
    def __init__(self, host, port, user, password, timeout=600):
        self.sock = socket.create_connection((host, port), timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.f = self.sock.makefile("rb", buffering=1 << 20)
        self.n = 0
        greeting = self.f.readline()
        if not greeting.startswith(b"* OK"):
            raise ImapError("greeting: %r" % greeting[:200])
        self.command("LOGIN %s %s" % (quote(user), quote(password)))

    def send(self, cmd):
        self.n += 1
        tag = "v%d" % self.n
        self.sock.sendall(("%s %s\r\n" % (tag, cmd)).encode())
        return tag.encode()

    def response(self):
        """One response: (text with literals replaced by \\0N\\0, [literals])."""
        text, lits = [], []
        while True:
            line = self.f.readline()
            if not line:
                raise ImapError("connection closed")
            m = LIT.search(line)
            if not m:
                text.append(line)
                return b"".join(text), lits
            text.append(line[:m.start()] + b"\0%d\0" % len(lits))
            n = int(m.group(1))
            data = self.f.read(n)
            if len(data) != n:
                raise ImapError("connection closed in a literal")
            lits.append(data)

    def command(self, cmd, on_untagged=None):
        tag = self.send(cmd)
        while True:
            text, lits = self.response()
            if text.startswith(tag + b" "):
                if not text[len(tag) + 1:].startswith(b"OK"):
                    raise ImapError("%s: %s" % (cmd.split()[0], text.decode(errors="replace").strip()))
                return
            if on_untagged:
                on_untagged(text, lits)

    def close(self):
        try:
            self.send("LOGOUT")
            self.sock.close()
        except OSError:
            pass


def parse_list(text, lits):
    # * LIST (\HasNoChildren) "/" "name"   (the name may be an atom, quoted or a literal)
    m = re.match(rb"\* LIST \(([^)]*)\) (NIL|\"(?:[^\"\\]|\\.)*\") (.*)\r\n$", text, re.S)
    if not m:
        return None
    attrs = m.group(1).decode().lower().split()
    name = m.group(3)
    if name.startswith(b"\0"):
        name = lits[int(name.strip(b"\0"))]
    elif name.startswith(b'"'):
        name = re.sub(rb"\\(.)", rb"\1", name[1:-1])
    delim = m.group(2)
    delim = None if delim == b"NIL" else re.sub(rb"\\(.)", rb"\1", delim[1:-1]).decode()
    return attrs, delim, name.decode()


FETCH_UID = re.compile(rb"UID (\d+)")
FETCH_FLAGS = re.compile(rb"FLAGS \(([^)]*)\)")
FETCH_DATE = re.compile(rb'INTERNALDATE "([^"]+)"')
FETCH_BODY = re.compile(rb"BODY\[\] \x00(\d+)\x00")


def scan_account(host, port, user, password, strip=None):
    """{logical folder: [[sha256 hex, flags, internaldate epoch, uid, size], ...]}"""
    im = Imap(host, port, user, password)
    try:
        boxes = []
        im.command('LIST "" "*"', lambda t, l: boxes.append(parse_list(t, l)))
        result = {}
        for entry in boxes:
            if entry is None:
                continue
            attrs, delim, raw = entry
            if "\\noselect" in attrs or "\\nonexistent" in attrs:
                continue
            logical = mutf7_decode(raw)
            if delim and delim != "/":
                logical = logical.replace(delim, "/")
            exists = [0]

            def on_select(t, l):
                m = re.match(rb"\* (\d+) EXISTS", t)
                if m:
                    exists[0] = int(m.group(1))
            im.command("EXAMINE %s" % quote(raw), on_select)
            msgs = []
            result[logical] = msgs
            if not exists[0]:
                continue

            def on_fetch(t, l):
                if b" FETCH (" not in t[:40]:
                    return
                body = FETCH_BODY.search(t)
                if not body:
                    raise ImapError("FETCH without BODY[]: %r" % t[:200])
                data = l[int(body.group(1))]
                size = len(data)
                if strip:
                    data = strip_header(data, strip)
                flags = FETCH_FLAGS.search(t).group(1).decode().split()
                flags = " ".join(sorted(f for f in flags if f.lower() != "\\recent"))
                msgs.append([hashlib.sha256(data).hexdigest(), flags,
                             internaldate(FETCH_DATE.search(t).group(1).decode()),
                             int(FETCH_UID.search(t).group(1)), size])
            im.command("UID FETCH 1:* (UID FLAGS INTERNALDATE BODY.PEEK[])", on_fetch)
        return result
    finally:
        im.close()


def compare_folder(src, dst):
    """counts and per-message details for one folder"""
    c = collections.Counter()
    details = []
    bysha_s, bysha_d = collections.defaultdict(list), collections.defaultdict(list)
    for m in src:
        bysha_s[m[0]].append(m)
    for m in dst:
        bysha_d[m[0]].append(m)
    for sha in set(bysha_s) | set(bysha_d):
        s, d = bysha_s.get(sha, []), bysha_d.get(sha, [])
        if len(s) > len(d):
            c["missing"] += len(s) - len(d)
            details += ["missing src uid %d size %d" % (m[3], m[4]) for m in s[len(d):]]
        elif len(d) > len(s):
            c["extra"] += len(d) - len(s)
            details += ["extra dst uid %d size %d" % (m[3], m[4]) for m in d[len(s):]]
        # pair what is paired: exact (flags, date) matches first
        key = lambda m: (m[1], m[2])
        cs, cd = collections.Counter(map(key, s)), collections.Counter(map(key, d))
        rest_s = sorted((cs - cd).elements())
        rest_d = sorted((cd - cs).elements())
        for (fs, ts), (fd, td) in zip(rest_s, rest_d):
            if fs != fd:
                c["flags"] += 1
                sys_s = [f for f in fs.split() if f.startswith("\\")]
                sys_d = [f for f in fd.split() if f.startswith("\\")]
                if sys_s == sys_d:
                    c["kw_only"] += 1
                details.append("flags differ: src (%s) dst (%s)" % (fs, fd))
            if ts != td:
                c["dates"] += 1
                details.append("date differs: src %d dst %d" % (ts, td))
    return c, details


def load_accounts(path):
    out = []
    with open(path, newline="", encoding="utf-8-sig") as fh:
        for row in csv.reader(fh):
            if len(row) >= 2 and "@" in row[0]:
                out.append((row[0], row[1]))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--accounts", required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--src-port", type=int, required=True)
    ap.add_argument("--dst-port", type=int, required=True)
    ap.add_argument("--src-cache")
    ap.add_argument("--strip-header")
    ap.add_argument("--jobs", type=int, default=4)
    ap.add_argument("--src-only", action="store_true",
                    help="only scan the source into --src-cache (no destination)")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    accounts = load_accounts(args.accounts)
    if not accounts:
        ap.error("no accounts in %s" % args.accounts)
    t0 = time.time()
    cache = {}
    if args.src_cache and os.path.exists(args.src_cache):
        with open(args.src_cache) as fh:
            cache = json.load(fh)
    try:
        with concurrent.futures.ThreadPoolExecutor(max(1, args.jobs)) as ex:
            todo_src = {u: ex.submit(scan_account, args.host, args.src_port, u, p)
                        for u, p in accounts if u not in cache}
            todo_dst = {} if args.src_only else {
                u: ex.submit(scan_account, args.host, args.dst_port, u, p, args.strip_header)
                for u, p in accounts}
            src = {u: (cache[u] if u in cache else todo_src[u].result()) for u, _ in accounts}
            dst = {u: todo_dst[u].result() for u in todo_dst}
    except (ImapError, OSError) as e:
        print("verify: error: %s" % e, file=sys.stderr)
        return 3
    if args.src_cache and todo_src:
        cache.update({u: src[u] for u in todo_src})
        tmp = args.src_cache + ".tmp"
        with open(tmp, "w") as fh:
            json.dump(cache, fh)
        os.replace(tmp, args.src_cache)

    if args.src_only:
        print("verify: source scanned: accounts=%d messages=%d (%.1f s)" % (
            len(accounts), sum(len(m) for u, _ in accounts for m in src[u].values()),
            time.time() - t0))
        return 0
    total = collections.Counter()
    nfolders = nmsgs = 0
    for user, _ in accounts:
        s, d = src[user], dst[user]
        for folder in sorted(s):
            nfolders += 1
            nmsgs += len(s[folder])
            if folder not in d:
                total["missing_folders"] += 1
                total["missing"] += len(s[folder])
                print("%s %s: folder missing on the destination (%d messages)"
                      % (user, folder, len(s[folder])))
                continue
            c, details = compare_folder(s[folder], d[folder])
            total.update(c)
            if c or args.verbose:
                print("%s %s: src=%d dst=%d %s" % (user, folder, len(s[folder]), len(d[folder]),
                                                  " ".join("%s=%d" % kv for kv in sorted(c.items()))))
            if args.verbose:
                for line in details:
                    print("    " + line)
        for folder in sorted(set(d) - set(s)):
            total["extra_folders"] += 1
            print("%s %s: folder only on the destination (%d messages)"
                  % (user, folder, len(d[folder])))
    keys = ["missing", "extra", "flags", "kw_only", "dates", "missing_folders", "extra_folders"]
    same = all(total[k] == 0 for k in keys)
    print("verify: accounts=%d folders=%d messages=%d %s result=%s (%.1f s)"
          % (len(accounts), nfolders, nmsgs, " ".join("%s=%d" % (k, total[k]) for k in keys),
             "identical" if same else "DIFFERENT", time.time() - t0))
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
