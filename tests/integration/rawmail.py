#!/usr/bin/python3
"""rawmail.py: raw-byte fixtures and a strict per-message check for trasloco's
hostile-input tests (stdlib only; connection handling borrowed from imaptool.py).

Usage: rawmail.py SUBCOMMAND [connection options] [subcommand options]

The connection options are imaptool.py's (--host --port --user --password-env --tls
--ca --tls-name --auth --authzid --timeout); folder names are logical as there ('/'
separated, UTF-8, without the namespace prefix).

Subcommands:
  append --folder F [--flags 'F1 F2'] [--date 'dd-Mon-yyyy hh:mm:ss +zzzz'] FILE...
      APPEND each FILE's bytes exactly as they are (no line-ending conversion, NUL
      bytes and 8-bit kept) to F (created when missing).  Prints "APPENDED FILE UID"
      per file, or "REFUSED FILE: reply" when the server says NO (exit 1).
  fill --names FILE [--count K]
      For every line of FILE (a logical folder name, UTF-8, taken as it is: spaces,
      quotes and '&' included), create the folder and APPEND K (default 1) small
      messages naming the folder (so that two folders never hold the same message).
  verify --dst-port N [--dst-* as imaptool compare] [--map 'Src=Dst' ...]
         [--folder F ...] --trasloco-output FILE [-v]
      Message by message, for every selectable source folder (or only the --folder
      ones): the copies are paired by (sha256 of BODY.PEEK[], sha256 of BINARY.PEEK[]
      when both servers announce BINARY and BODY[] has a 0x80 byte -- Dovecot shows a
      NUL as 0x80 in BODY[] --, flags without \\Recent, INTERNALDATE as an instant), as
      multisets, so duplicates count.  Every source message without an
      exact copy must be named in trasloco's output by a line "FOLDER: UID N ...
      refused: REASON" or "FOLDER: UID N not copied: REASON", or be in a folder the
      summary lists as 'folder "FOLDER" failed: REASON' (the reason is printed),
      and for each content, as many source UIDs must be reported as copies are
      missing.  Printed, one per line:
        refused FOLDER UID N SIZE: REASON             (accepted: missing and reported)
        MISSING FOLDER UID N SIZE (not reported)      (failure)
        EXTRA FOLDER dst UID N SIZE                   (failure: duplicate or foreign)
        FLAGS / DATE FOLDER UID N src=... dst=...     (failure)
        ALTERED FOLDER UID N: BODY[] equal, BINARY[] differs (failure: e.g. NUL bytes
                                                      turned into 0x80)
        ALTERED FOLDER UID N: content differs from every destination copy (a paired
                                                      guess by size, failure)
        FALSE-REPORT FOLDER UID N (reported but its copy exists) (failure)
        MISSING-FOLDER FOLDER -> TARGET (failure)
      then one summary line:
        verify: folders=N messages=M copied=C refused=R missing=a extra=b flags=c
                dates=d altered=e false_reports=f missing_folders=g result=ok|FAIL
      Exit 0 when result=ok, 1 otherwise, 2 usage, 3 connection/login failure.
"""

import argparse
import hashlib
import os
import re
import sys
from collections import Counter, defaultdict

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import imaptool  # noqa: E402  (same directory)
from imaptool import (EXIT_DIFF, EXIT_OK, EXIT_USAGE, Endpoint, Session,  # noqa: E402
                      ToolError, as_text, imap_quote, norm_flags, parse_internaldate)

BATCH_BYTES = 8 << 20
BATCH_MESSAGES = 100
_UID = re.compile(rb"UID (\d+)")


def cmd_append(args, s):
    if not s.exists(args.folder) and args.folder.upper() != "INBOX":
        s.create(args.folder)
    flag_arg = "(" + args.flags + ")" if args.flags else None
    date_arg = '"' + args.date + '"' if args.date else None
    rc = EXIT_OK
    for path in args.files:
        with open(path, "rb") as f:
            data = f.read()
        typ, resp = s.m.append(imap_quote(s.to_raw(args.folder)), flag_arg, date_arg, data)
        text = as_text(resp[-1]) if resp and resp[-1] else ""
        if typ != "OK":
            print("REFUSED %s: %s" % (path, text))
            rc = EXIT_DIFF
            continue
        m = re.search(r"APPENDUID \d+ (\d+)", text)
        print("APPENDED %s %s" % (path, m.group(1) if m else "?"))
    return rc


def cmd_fill(args, s):
    with open(args.names, encoding="utf-8") as f:
        names = [line.rstrip("\n") for line in f if line.rstrip("\n")]
    for n, name in enumerate(names):
        raw = s.to_raw(name)
        if name.upper() != "INBOX":
            typ, data = s.m.create(imap_quote(raw))
            if typ != "OK" and b"ALREADYEXISTS" not in (data[-1] or b""):
                raise ToolError("CREATE %r (%s) refused: %s" % (name, raw, as_text(data[-1])))
        for k in range(args.count):
            msg = ("From: fill@example.test\r\nTo: mario@example.test\r\n"
                   "Subject: folder %s message %d\r\nMessage-ID: <fill-%d-%d@example.test>\r\n"
                   "Date: Mon, 1 Feb 2021 10:00:00 +0100\r\nMIME-Version: 1.0\r\n"
                   "Content-Type: text/plain; charset=utf-8\r\n\r\n"
                   "This message lives in the folder \"%s\".\r\n"
                   % (name, k, n, k, name)).encode("utf-8")
            typ, data = s.m.append(imap_quote(raw), "(\\Seen)" if k % 2 else None,
                                   '"01-Feb-2021 10:00:00 +0100"', msg)
            if typ != "OK":
                raise ToolError("APPEND to %r refused: %s" % (name, as_text(data[-1])))
    print("fill: %d folder(s), %d message(s) each" % (len(names), args.count))
    return EXIT_OK


def fetch_hashes(s, uids, item):
    """UID FETCH uids (UID item) -> {uid: (sha256 hex, contains 0x80)}; None when refused"""
    typ, data = s.m.uid("FETCH", imaptool.uid_set(uids), "(UID %s)" % item)
    if typ != "OK":
        return None
    out = {}
    for d in data:
        if isinstance(d, tuple):
            m = _UID.search(d[0])
            if m:
                out[int(m.group(1))] = (hashlib.sha256(d[1]).hexdigest(), b"\x80" in d[1])
    return out


def scan(s, raw, binary):
    """-> list of dicts uid size flags date body bin.  BINARY.PEEK[] (RFC 3516) is
    fetched only for messages whose BODY[] has a 0x80 byte: that is how Dovecot shows
    a NUL in BODY[]; BINARY[] has the real byte.  (BINARY[] also decodes a single-part
    message's Content-Transfer-Encoding and fails on a broken one, so it is not used
    for every message.)"""
    if s.select(raw=raw, readonly=True) == 0:
        return []
    meta = s.fetch("1:*", "(UID FLAGS INTERNALDATE RFC822.SIZE)")
    msgs = []
    batch, nbytes = [], 0

    def flush():
        if not batch:
            return
        body = fetch_hashes(s, batch, "BODY.PEEK[]")
        if body is None:
            raise ToolError("%s: UID FETCH BODY.PEEK[] refused" % raw)
        for u in batch:
            if u not in body:
                raise ToolError("%s: no BODY[] for UID %d" % (raw, u))
            binh = None
            if binary and body[u][1]:
                got = fetch_hashes(s, [u], "BINARY.PEEK[]")
                binh = got[u][0] if got and u in got else "refused"
            m = meta[u]
            msgs.append({"uid": u, "size": int(m.get("RFC822.SIZE", 0)),
                         "flags": norm_flags(m.get("FLAGS", [])),
                         "date": parse_internaldate(as_text(m["INTERNALDATE"])),
                         "body": body[u][0], "bin": binh})
        batch.clear()

    for u in sorted(meta):
        batch.append(u)
        nbytes += int(meta[u].get("RFC822.SIZE", 0))
        if nbytes >= BATCH_BYTES or len(batch) >= BATCH_MESSAGES:
            flush()
            nbytes = 0
    flush()
    return msgs


def pair(src, dst, keyf):
    """remove from src/dst (lists) the messages paired by keyf; return the pairs"""
    by = defaultdict(list)
    for d in dst:
        by[keyf(d)].append(d)
    pairs, rest = [], []
    for m in src:
        lst = by.get(keyf(m))
        if lst:
            pairs.append((m, lst.pop(0)))
        else:
            rest.append(m)
    used = {id(d) for _, d in pairs}
    return pairs, rest, [d for d in dst if id(d) not in used]


def reported_uids(path, names):
    """({uid: reason}, folder reason or None) from the lines of trasloco's output naming
    one of names: "NAME: UID N (S bytes) refused: R", "NAME: UID N not copied: R", and
    the summary's 'folder "NAME" failed: R' (every message of the folder reported)"""
    out, folder = {}, None
    with open(path, "rb") as f:
        text = f.read().decode("utf-8", "replace")
    for line in text.splitlines():
        for name in names:
            m = re.search(re.escape(name) + r"\"?: UID (\d+) (\([0-9]+ bytes\) refused|not copied): (.+)$",
                          line)
            if m:
                out[int(m.group(1))] = m.group(3).strip()
            m = re.search(r'folder "' + re.escape(name) + r'" failed: (.+)$', line)
            if m:
                folder = "folder failed: " + m.group(1).strip()
    return out, folder


def cmd_verify(args, src):
    mapping = {}
    for m in args.map:
        if "=" not in m:
            raise ToolError("--map wants 'Src=Dst', got %r" % m, EXIT_USAGE)
        a, b = m.split("=", 1)
        mapping[a.strip("/")] = b.strip("/")
    dst = Session(Endpoint(args.dst_host or args.host, args.dst_port,
                           args.dst_user or args.user, args.dst_password_env or args.password_env,
                           args.dst_tls or args.tls, args.dst_ca or args.ca,
                           args.dst_tls_name or args.tls_name, args.dst_auth or args.auth,
                           None, args.timeout))
    binary = "BINARY" in src.caps and "BINARY" in dst.caps
    total = Counter()
    try:
        src_sel = {f["logical"]: f["raw"] for f in src.folders() if f["selectable"]}
        dst_sel = {f["logical"]: f["raw"] for f in dst.folders() if f["selectable"]}
        names = sorted(src_sel, key=lambda n: (n != "INBOX", n))
        if args.folder:
            names = [n for n in names if n in args.folder]
            for f in args.folder:
                if f not in src_sel:
                    raise ToolError("no source folder %r" % f, EXIT_USAGE)
        for name in names:
            total["folders"] += 1
            target = imaptool.apply_map(name, mapping)
            s_msgs = scan(src, src_sel[name], binary)
            total["messages"] += len(s_msgs)
            if target not in dst_sel:
                print("MISSING-FOLDER %s -> %s (%d messages)" % (name, target, len(s_msgs)))
                total["missing_folders"] += 1
                total["missing"] += len(s_msgs)
                continue
            d_msgs = scan(dst, dst_sel[target], binary)
            full = lambda m: (m["body"], m["bin"], m["flags"], m["date"])  # noqa: E731
            content = lambda m: (m["body"], m["bin"])  # noqa: E731
            ok, s_rest, d_rest = pair(s_msgs, d_msgs, full)
            total["copied"] += len(ok)
            meta_diff, s_rest, d_rest = pair(s_rest, d_rest, content)
            for a, b in meta_diff:
                if a["flags"] != b["flags"]:
                    total["flags"] += 1
                    print("FLAGS %s UID %d src=(%s) dst=(%s)" % (
                        name, a["uid"], " ".join(sorted(a["flags"])), " ".join(sorted(b["flags"]))))
                if a["date"] != b["date"]:
                    total["dates"] += 1
                    print("DATE %s UID %d src=%d dst=%d" % (name, a["uid"], a["date"], b["date"]))
            altered, s_rest, d_rest = pair(s_rest, d_rest, lambda m: m["body"])
            for a, b in altered:
                total["altered"] += 1
                print("ALTERED %s UID %d (%d bytes): BODY[] equal, BINARY[] differs on the "
                      "destination (dst UID %d): bytes changed, e.g. NUL turned into 0x80"
                      % (name, a["uid"], a["size"], b["uid"]))
            # what is left on the source: missing; must be reported, per content
            rep, folder_failed = reported_uids(args.trasloco_output,
                                               sorted({name, src_sel[name],
                                                       name.replace("/", src.delim)}))
            if folder_failed:
                for a in s_rest:
                    rep.setdefault(a["uid"], folder_failed)
            missing_by, src_by = defaultdict(list), defaultdict(list)
            for a in s_rest:
                missing_by[content(a)].append(a)
            for a in s_msgs:
                src_by[content(a)].append(a)
            for key, lst in src_by.items():
                miss = missing_by.get(key, [])
                reps = [a for a in lst if a["uid"] in rep]
                for r in reps[:len(miss)]:
                    total["refused"] += 1
                    print("refused %s UID %d %d: %s" % (name, r["uid"], r["size"], rep[r["uid"]]))
                for r in reps[len(miss):]:
                    total["false_reports"] += 1
                    print("FALSE-REPORT %s UID %d: reported (%s) but its copy exists"
                          % (name, r["uid"], rep[r["uid"]]))
                unrep = [a for a in miss if a["uid"] not in rep] or miss
                for a in unrep[:max(0, len(miss) - len(reps))]:
                    total["missing"] += 1
                    guess = next((d for d in d_rest if d["size"] == a["size"]), None)
                    print("MISSING %s UID %d %d (not reported)%s" % (
                        name, a["uid"], a["size"],
                        " -- a destination copy of the same size has other content: dst UID %d"
                        % guess["uid"] if guess else ""))
            for d in d_rest:
                total["extra"] += 1
                print("EXTRA %s dst UID %d %d bytes" % (target, d["uid"], d["size"]))
            if args.verbose:
                print("folder %s%s: src=%d dst=%d copied=%d" % (
                    name, "" if target == name else " -> " + target, len(s_msgs), len(d_msgs),
                    len(ok)))
    finally:
        dst.close()
    bad = ["missing", "extra", "flags", "dates", "altered", "false_reports", "missing_folders"]
    ok = not any(total[k] for k in bad)
    print("verify: folders=%d messages=%d copied=%d refused=%d missing=%d extra=%d flags=%d "
          "dates=%d altered=%d false_reports=%d missing_folders=%d binary=%s result=%s" % (
              total["folders"], total["messages"], total["copied"], total["refused"],
              total["missing"], total["extra"], total["flags"], total["dates"],
              total["altered"], total["false_reports"], total["missing_folders"],
              "yes" if binary else "no", "ok" if ok else "FAIL"))
    return EXIT_OK if ok else EXIT_DIFF


def build_parser():
    head, _, rest = __doc__.partition("\n\n")
    parser = argparse.ArgumentParser(prog="rawmail.py", description=head, epilog=rest,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    imaptool.add_connection_options(parser, False)
    sub = parser.add_subparsers(dest="command", required=True, metavar="SUBCOMMAND")

    def new(name, func, helptext):
        p = sub.add_parser(name, help=helptext, description=helptext)
        imaptool.add_connection_options(p, True)
        p.set_defaults(func=func)
        return p

    p = new("append", cmd_append, "APPEND raw files")
    p.add_argument("--folder", required=True)
    p.add_argument("--flags")
    p.add_argument("--date")
    p.add_argument("files", nargs="+")
    p = new("fill", cmd_fill, "create folders from a list, a few messages in each")
    p.add_argument("--names", required=True)
    p.add_argument("--count", type=int, default=1)
    p = new("verify", cmd_verify, "per-message check of a migration against its output")
    p.add_argument("--dst-host")
    p.add_argument("--dst-port", type=int, required=True)
    p.add_argument("--dst-user")
    p.add_argument("--dst-password-env", metavar="VAR")
    p.add_argument("--dst-tls", choices=["implicit", "starttls", "none"])
    p.add_argument("--dst-ca", metavar="FILE")
    p.add_argument("--dst-tls-name", metavar="NAME")
    p.add_argument("--dst-auth", choices=["login", "plain"])
    p.add_argument("--map", action="append", default=[], metavar="SRC=DST")
    p.add_argument("--folder", action="append", default=[])
    p.add_argument("--trasloco-output", required=True, metavar="FILE")
    p.add_argument("-v", "--verbose", action="store_true")
    return parser


def main(argv=None):
    return imaptool.run_tool("rawmail.py", build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
