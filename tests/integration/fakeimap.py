#!/usr/bin/python3
"""fakeimap.py: a scripted, misbehaving IMAP server for trasloco's hostile-server tests
(stdlib only, plain TCP on 127.0.0.1).

Usage: fakeimap.py --scenario NAME --port-file FILE [--log FILE] [--user U]
                   [--password-env VAR] [--role src|dst]
       fakeimap.py --list

It listens on an ephemeral port of 127.0.0.1 (written to --port-file once it accepts
connections) and serves every connection until killed.  Underneath every scenario is
a small but honest IMAP4rev1 server: LOGIN / AUTHENTICATE PLAIN, CAPABILITY,
NAMESPACE, LIST / LSUB (RETURN options ignored), STATUS, SELECT / EXAMINE (CONDSTORE
parameter), FETCH / UID FETCH (UID FLAGS INTERNALDATE RFC822.SIZE MODSEQ BODY[...]
BODY.PEEK[...] with HEADER.FIELDS, HEADER, TEXT, BINARY[], CHANGEDSINCE), UID SEARCH,
ID, ENABLE, NOOP, CHECK, CLOSE, UNSELECT, LOGOUT; and, for --role dst, CREATE,
SUBSCRIBE, APPEND (MULTIAPPEND, synchronizing and LITERAL+ literals, APPENDUID) and
(UID) STORE.  As a source it serves a fixed corpus: INBOX (3 messages) and Archivio (2);
as a destination it starts empty and keeps what is appended (in memory, for the life of
the process, across connections), so imaptool.py compare can check it.

A scenario changes what some of those answers are: see SCENARIOS below (--list prints
them).  Each connection and its traffic are logged to --log (C: client, S: server,
truncated lines).

The password of --user is read from the environment variable --password-env
(default FAKEIMAP_PASSWORD); no password ever goes on argv.
"""

import argparse
import asyncio
import base64
import os
import re
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from imaptool import Atom, parse_values  # noqa: E402

UIDVALIDITY = 1234567
BASE_CAPS = "IMAP4rev1 LITERAL+ SASL-IR ID ENABLE NAMESPACE UIDPLUS MULTIAPPEND CONDSTORE " \
            "AUTH=PLAIN"


def _msg(n, subject, body, extra=b""):
    return (b"Return-Path: <sender%d@example.test>\r\n"
            b"From: Sender %d <sender%d@example.test>\r\n"
            b"To: Mario Rossi <mario@example.test>\r\n"
            b"Subject: " % (n, n, n) + subject + b"\r\n"
            b"Date: Mon, 1 Feb 2021 10:0%d:00 +0100\r\n"
            b"Message-ID: <fake-%d@example.test>\r\n" % (n, n) + extra +
            b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + body)


def source_corpus():
    """{folder: [dict uid flags date data modseq]}"""
    return {
        "INBOX": [
            {"uid": 1, "flags": ["\\Seen"], "date": "01-Feb-2021 10:00:00 +0100",
             "data": _msg(1, b"first", b"Hello one.\r\n")},
            {"uid": 2, "flags": [], "date": "02-Feb-2021 11:00:00 +0000",
             "data": _msg(2, b"second", b"Hello two.\r\n" + b"x" * 3000 + b"\r\n")},
            {"uid": 5, "flags": ["\\Flagged", "$Label1"], "date": "03-Mar-2021 12:30:00 -0500",
             "data": _msg(5, "terzo \u00e8".encode(), "Ciao tre, caff\u00e8.\r\n".encode())},
        ],
        "Vuota": [],
        "Archivio": [
            {"uid": 7, "flags": ["\\Seen", "\\Answered"], "date": "04-Apr-2020 08:00:00 +0200",
             "data": _msg(7, b"archived", b"Old.\r\n")},
            {"uid": 9, "flags": [], "date": "05-May-2019 09:15:00 +0000",
             "data": _msg(9, b"archived too", b"Older, 5 \x80 (cp1252 euro).\r\n")},
        ],
    }


class Hangup(Exception):
    """close the connection now"""


class Session:
    """One connection of the honest server; scenarios subclass it."""

    caps = BASE_CAPS
    #: sent on connect; None: never send anything
    greeting = b"* OK [CAPABILITY %s] fakeimap ready\r\n"

    def __init__(self, server, reader, writer, n):
        self.srv, self.r, self.w, self.n = server, reader, writer, n
        self.selected = None
        self.authed = False

    # ---- I/O

    def log(self, tag, data):
        if self.srv.log is None:
            return
        s = data if len(data) <= 400 else data[:300] + b"...(%d bytes)..." % len(data) + data[-60:]
        self.srv.log.write(b"[%d] %s %r\n" % (self.n, tag, s))
        self.srv.log.flush()

    async def send(self, data):
        self.log(b"S:", data)
        self.w.write(data)
        await self.w.drain()

    async def read_command(self):
        """-> (raw command bytes with literals inline) or None on EOF"""
        buf = b""
        while True:
            line = await self.r.readline()
            if not line:
                return None
            self.log(b"C:", line)
            buf += line
            m = re.search(rb"\{(\d+)(\+?)\}\r?\n$", line)
            if not m:
                return buf
            size = int(m.group(1))
            if not m.group(2):
                if not await self.on_sync_literal(size):
                    return buf  # refused: the command ends here
                await self.send(b"+ go ahead\r\n")
            elif not self.literal_plus_ok():
                return buf
            data = await self.r.readexactly(size)
            self.log(b"C:", data)
            buf += data

    def literal_plus_ok(self):
        return True

    async def on_sync_literal(self, size):
        return True

    # ---- main loop

    async def run(self):
        try:
            await self.on_connect()
            while True:
                raw = await self.read_command()
                if raw is None:
                    return
                await self.dispatch(raw)
        except (Hangup, ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            try:
                self.w.close()
            except Exception:  # noqa: BLE001
                pass

    async def on_connect(self):
        if self.greeting is None:
            await asyncio.sleep(3600)
            raise Hangup()
        g = self.greeting
        if b"%s" in g:
            g = g % self.caps.encode()
        await self.send(g)

    async def dispatch(self, raw):
        try:
            vals = parse_values(raw.rstrip(b"\r\n") + b"\r\n")
        except (ValueError, IndexError):
            await self.send(b"* BAD unparseable command\r\n")
            return
        if len(vals) < 2 or not isinstance(vals[0], str):
            await self.send(b"* BAD no tag\r\n")
            return
        tag = vals[0].encode()
        cmd = str(vals[1]).upper()
        args = vals[2:]
        if cmd == "UID" and args:
            cmd = "UID " + str(args[0]).upper()
            args = args[1:]
        fn = getattr(self, "cmd_" + cmd.replace(" ", "_"), None)
        if fn is None:
            await self.send(tag + b" BAD unknown command\r\n")
            return
        await fn(tag, args)

    # ---- helpers

    def folders(self):
        return self.srv.store

    def msgs(self):
        return self.srv.store.get(self.selected, [])

    @staticmethod
    def text(v):
        if isinstance(v, bytes):
            return v.decode("utf-8", "surrogateescape")
        return "" if v is None else str(v)

    def parse_set(self, spec, uid):
        msgs = self.msgs()
        if not msgs:
            return []
        top = msgs[-1]["uid"] if uid else len(msgs)
        want = set()
        for part in str(spec).split(","):
            if ":" in part:
                a, b = part.split(":", 1)
                a = top if a == "*" else int(a)
                b = top if b == "*" else int(b)
                lo, hi = min(a, b), max(a, b)
            else:
                lo = hi = top if part == "*" else int(part)
            want.add((lo, hi))
        out = []
        for i, m in enumerate(msgs):
            key = m["uid"] if uid else i + 1
            if any(lo <= key <= hi for lo, hi in want):
                out.append((i + 1, m))
        return out

    @staticmethod
    def quote(s):
        """a name as an IMAP string: quoted, or a literal when quoting cannot carry it"""
        b = s.encode("utf-8", "surrogateescape")
        if b"\r" in b or b"\n" in b or not b.isascii():
            return b"{%d}\r\n" % len(b) + b
        return b'"' + b.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'

    @staticmethod
    def header_fields(data, names):
        # line ends as the message has them: CR LF, or a bare LF (scenario bare-lf)
        eol = b"\r\n" if b"\r\n" in data else b"\n"
        head = data.split(eol + eol, 1)[0] + eol
        out, keep = [], False
        for line in head.split(eol)[:-1]:
            if line[:1] in (b" ", b"\t"):
                if keep:
                    out.append(line)
                continue
            name = line.split(b":", 1)[0].strip().decode("latin-1").upper()
            keep = name in names
            if keep:
                out.append(line)
        return b"".join(x + eol for x in out) + eol

    def fetch_item(self, seq, m, item):
        """one FETCH item -> bytes (name and value) or None to leave it out"""
        it = str(item)
        up = it.upper()
        if up == "UID":
            return b"UID %d" % m["uid"]
        if up == "FLAGS":
            return b"FLAGS (" + " ".join(m["flags"]).encode() + b")"
        if up == "INTERNALDATE":
            return b'INTERNALDATE "' + m["date"].encode() + b'"'
        if up == "RFC822.SIZE":
            return b"RFC822.SIZE %d" % len(m["data"])
        if up == "MODSEQ":
            return b"MODSEQ (%d)" % m.get("modseq", 1)
        mm = re.match(r"(BODY|BINARY)(\.PEEK)?\[(.*)\]$", it, re.I | re.S)
        if mm:
            kind, section = mm.group(1).upper(), mm.group(3)
            data = m["data"]
            su = section.upper()
            if su.startswith("HEADER.FIELDS"):
                names = set(re.findall(r"[^\s()]+", section[len("HEADER.FIELDS"):].upper()))
                names.discard(".NOT")
                data = self.header_fields(data, names)
            elif su == "HEADER":
                data = data.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n"
            elif su == "TEXT":
                data = data.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in data else b""
            return self.literal_item("%s[%s]" % (kind, section), data)
        return None

    def literal_item(self, name, data):
        return name.encode() + b" {%d}\r\n" % len(data) + data

    async def fetch_response(self, seq, m, items):
        parts = []
        for item in items:
            p = self.fetch_item(seq, m, item)
            if p is not None:
                parts.append(p)
        await self.send(b"* %d FETCH (" % seq + b" ".join(parts) + b")\r\n")

    # ---- commands

    async def cmd_CAPABILITY(self, tag, args):
        await self.send(b"* CAPABILITY " + self.caps.encode() + b"\r\n" + tag +
                        b" OK Capability completed\r\n")

    async def cmd_NOOP(self, tag, args):
        await self.send(tag + b" OK NOOP completed\r\n")

    cmd_CHECK = cmd_NOOP

    async def cmd_ID(self, tag, args):
        await self.send(b'* ID ("name" "fakeimap")\r\n' + tag + b" OK ID completed\r\n")

    async def cmd_ENABLE(self, tag, args):
        await self.send(b"* ENABLED " + " ".join(str(a) for a in args).encode() + b"\r\n" + tag +
                        b" OK Enabled\r\n")

    async def cmd_STARTTLS(self, tag, args):
        await self.send(tag + b" BAD no TLS here\r\n")

    def check_login(self, user, password):
        return user == self.srv.user and password == self.srv.password

    async def login_ok(self, tag):
        self.authed = True
        await self.send(tag + b" OK [CAPABILITY " + self.caps.encode() + b"] Logged in\r\n")

    async def cmd_LOGIN(self, tag, args):
        if len(args) != 2:
            await self.send(tag + b" BAD LOGIN wants two arguments\r\n")
            return
        if self.check_login(self.text(args[0]), self.text(args[1])):
            await self.login_ok(tag)
        else:
            await self.send(tag + b" NO [AUTHENTICATIONFAILED] Authentication failed.\r\n")

    async def cmd_AUTHENTICATE(self, tag, args):
        if not args or str(args[0]).upper() != "PLAIN":
            await self.send(tag + b" NO unsupported mechanism\r\n")
            return
        if len(args) > 1:
            token = self.text(args[1])
        else:
            await self.send(b"+ \r\n")
            line = await self.r.readline()
            self.log(b"C:", line)
            token = line.strip().decode()
        try:
            _authz, user, password = base64.b64decode(token).decode().split("\0")
        except ValueError:
            await self.send(tag + b" BAD bad PLAIN token\r\n")
            return
        if self.check_login(user, password):
            await self.login_ok(tag)
        else:
            await self.send(tag + b" NO [AUTHENTICATIONFAILED] Authentication failed.\r\n")

    async def cmd_LOGOUT(self, tag, args):
        await self.send(b"* BYE see you\r\n" + tag + b" OK Logout completed\r\n")
        raise Hangup()

    async def cmd_NAMESPACE(self, tag, args):
        await self.send(b'* NAMESPACE (("" "/")) NIL NIL\r\n' + tag + b" OK Namespace completed\r\n")

    def list_lines(self, cmd):
        out = b""
        for name in self.folders():
            attrs = "\\HasNoChildren"
            if cmd == "LIST":
                attrs += " \\Subscribed"
            out += b"* %s (%s) \"/\" %s\r\n" % (cmd.encode(), attrs.encode(), self.quote(name))
        return out

    async def cmd_LIST(self, tag, args):
        if len(args) >= 2 and self.text(args[1]) == "":
            await self.send(b'* LIST (\\Noselect) "/" ""\r\n' + tag + b" OK List completed\r\n")
            return
        await self.send(self.list_lines("LIST") + tag + b" OK List completed\r\n")

    async def cmd_LSUB(self, tag, args):
        await self.send(self.list_lines("LSUB") + tag + b" OK Lsub completed\r\n")

    def status_item(self, name, item):
        msgs = self.folders()[name]
        item = item.upper()
        if item == "MESSAGES":
            return b"MESSAGES %d" % len(msgs)
        if item == "UIDNEXT":
            return b"UIDNEXT %d" % ((msgs[-1]["uid"] if msgs else 0) + 1)
        if item == "UIDVALIDITY":
            return b"UIDVALIDITY %d" % UIDVALIDITY
        if item == "HIGHESTMODSEQ":
            return b"HIGHESTMODSEQ %d" % max([m.get("modseq", 1) for m in msgs] + [1])
        if item in ("UNSEEN", "RECENT"):
            return b"%s 0" % item.encode()
        if item == "SIZE":
            return b"SIZE %d" % sum(len(m["data"]) for m in msgs)
        return None

    async def cmd_STATUS(self, tag, args):
        name = self.text(args[0]) if args else ""
        if name not in self.folders():
            await self.send(tag + b" NO [NONEXISTENT] no such mailbox\r\n")
            return
        items = [self.status_item(name, str(i)) for i in (args[1] if len(args) > 1 else [])]
        if any(i is None for i in items):
            await self.send(tag + b" BAD unknown STATUS item\r\n")
            return
        await self.send(b"* STATUS " + self.quote(name) + b" (" + b" ".join(items) + b")\r\n" +
                        tag + b" OK Status completed\r\n")

    async def select(self, tag, args, readonly):
        name = self.text(args[0]) if args else ""
        if name.upper() == "INBOX":
            name = "INBOX"
        if name not in self.folders():
            self.selected = None
            await self.send(tag + b" NO [NONEXISTENT] no such mailbox\r\n")
            return
        self.selected = name
        msgs = self.msgs()
        await self.send(
            b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n"
            b"* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] ok\r\n"
            b"* %d EXISTS\r\n* 0 RECENT\r\n* OK [UIDVALIDITY %d] UIDs valid\r\n"
            b"* OK [UIDNEXT %d] next\r\n* OK [HIGHESTMODSEQ %d] modseq\r\n" % (
                len(msgs), UIDVALIDITY, (msgs[-1]["uid"] if msgs else 0) + 1,
                max([m.get("modseq", 1) for m in msgs] + [1])) +
            tag + (b" OK [READ-ONLY] Examine completed\r\n" if readonly
                   else b" OK [READ-WRITE] Select completed\r\n"))

    async def cmd_SELECT(self, tag, args):
        await self.select(tag, args, False)

    async def cmd_EXAMINE(self, tag, args):
        await self.select(tag, args, True)

    async def cmd_UNSELECT(self, tag, args):
        self.selected = None
        await self.send(tag + b" OK Unselect completed\r\n")

    cmd_CLOSE = cmd_UNSELECT

    async def fetch(self, tag, args, uid):
        if self.selected is None or len(args) < 2:
            await self.send(tag + b" BAD no mailbox selected or no items\r\n")
            return
        items = args[1] if isinstance(args[1], list) else [args[1]]
        if uid and not any(str(i).upper() == "UID" for i in items):
            items = [Atom("UID")] + list(items)
        since = None
        if len(args) > 2 and isinstance(args[2], list) and len(args[2]) == 2 and \
                str(args[2][0]).upper() == "CHANGEDSINCE":
            since = int(args[2][1])
        for seq, m in self.parse_set(args[0], uid):
            if since is not None and m.get("modseq", 1) <= since:
                continue
            await self.fetch_response(seq, m, items)
        await self.send(tag + b" OK Fetch completed\r\n")

    async def cmd_FETCH(self, tag, args):
        await self.fetch(tag, args, False)

    async def cmd_UID_FETCH(self, tag, args):
        await self.fetch(tag, args, True)

    async def cmd_UID_SEARCH(self, tag, args):
        uids = b" ".join(b"%d" % m["uid"] for m in self.msgs())
        await self.send(b"* SEARCH " + uids + b"\r\n" + tag + b" OK Search completed\r\n")

    # ---- destination role

    async def cmd_CREATE(self, tag, args):
        if self.srv.role != "dst":
            await self.send(tag + b" NO read-only server\r\n")
            return
        name = self.text(args[0]).rstrip("/")
        if name in self.folders() or name.upper() == "INBOX":
            await self.send(tag + b" NO [ALREADYEXISTS] Mailbox already exists\r\n")
            return
        self.folders()[name] = []
        await self.send(tag + b" OK Create completed\r\n")

    async def cmd_SUBSCRIBE(self, tag, args):
        await self.send(tag + b" OK Subscribe completed\r\n")

    def appenduid_code(self, uids):
        return b"[APPENDUID %d %s] " % (UIDVALIDITY, b",".join(b"%d" % u for u in uids))

    async def cmd_APPEND(self, tag, args):
        if self.srv.role != "dst" or not args:
            await self.send(tag + b" NO read-only server\r\n")
            return
        name = self.text(args[0])
        if name.upper() == "INBOX":
            name = "INBOX"
        if name not in self.folders():
            await self.send(tag + b" NO [TRYCREATE] no such mailbox\r\n")
            return
        rest, items = list(args[1:]), []
        while rest:
            flags, date = [], "01-Jan-2000 00:00:00 +0000"
            if isinstance(rest[0], list):
                flags = [str(f) for f in rest.pop(0)]
            if rest and isinstance(rest[0], str) and not isinstance(rest[0], Atom):
                date = rest.pop(0)
            if not rest or not isinstance(rest[0], bytes):
                await self.send(tag + b" BAD APPEND syntax\r\n")
                return
            items.append((flags, date, rest.pop(0)))
        box = self.folders()[name]
        uids = []
        for flags, date, data in items:
            uid = self.srv.next_uid.get(name, 1)
            self.srv.next_uid[name] = uid + 1
            box.append({"uid": uid, "flags": flags, "date": date, "data": data, "modseq": 1})
            uids.append(uid)
        await self.send(tag + b" OK " + self.appenduid_code(uids) + b"Append completed\r\n")

    async def store(self, tag, args, uid):
        if self.selected is None or len(args) < 3:
            await self.send(tag + b" BAD STORE syntax\r\n")
            return
        op = str(args[1]).upper()
        flags = [str(f) for f in (args[2] if isinstance(args[2], list) else [args[2]])]
        for seq, m in self.parse_set(args[0], uid):
            if op.startswith("+"):
                m["flags"] = sorted(set(m["flags"]) | set(flags))
            elif op.startswith("-"):
                m["flags"] = [f for f in m["flags"] if f not in flags]
            else:
                m["flags"] = flags
            m["modseq"] = m.get("modseq", 1) + 1
            if ".SILENT" not in op:
                await self.send(b"* %d FETCH (UID %d FLAGS (%s))\r\n" % (
                    seq, m["uid"], " ".join(m["flags"]).encode()))
        await self.send(tag + b" OK Store completed\r\n")

    async def cmd_STORE(self, tag, args):
        await self.store(tag, args, False)

    async def cmd_UID_STORE(self, tag, args):
        await self.store(tag, args, True)


# --------------------------------------------------------------------------------------
# scenarios: each a small change of the honest server's script


def is_body_fetch(items):
    return any(re.match(r"(BODY|BINARY)(\.PEEK)?\[\]$", str(i), re.I) for i in items)


def is_meta_fetch(items):
    return any(str(i).upper().startswith("BODY.PEEK[HEADER.FIELDS") for i in items)


class Ok(Session):
    """an honest server: the copy must be exact"""


class BareLf(Session):
    """an honest source whose messages end their lines with a bare LF (as some store them)"""

    @staticmethod
    def corpus(c):
        for msgs in c.values():
            for m in msgs:
                m["data"] = m["data"].replace(b"\r\n", b"\n")
        return c


class NoGreeting(Session):
    """accepts the connection, never says anything"""
    greeting = None


class ByeGreeting(Session):
    """'* BYE' instead of a greeting, then closes"""
    greeting = b"* BYE [UNAVAILABLE] Too many connections from your IP, go away\r\n"

    async def on_connect(self):
        await Session.on_connect(self)
        raise Hangup()


class LoginUnavailable(Session):
    """LOGIN answered NO [UNAVAILABLE] (a backend down: temporary, not a wrong password)"""

    async def cmd_LOGIN(self, tag, args):
        await self.send(tag + b" NO [UNAVAILABLE] Backend mail store is down, try later\r\n")

    async def cmd_AUTHENTICATE(self, tag, args):
        await self.cmd_LOGIN(tag, args)


class HugeLiteralBody(Session):
    """the body FETCH announces {4000000000}, sends 1000 bytes, then EOF"""

    async def fetch(self, tag, args, uid):
        if is_body_fetch(args[1] if len(args) > 1 and isinstance(args[1], list) else []):
            await self.send(b"* 1 FETCH (UID 1 BODY[] {4000000000}\r\n" + b"A" * 1000)
            raise Hangup()
        await Session.fetch(self, tag, args, uid)


class HugeLiteralHeader(Session):
    """the metadata FETCH announces a {4000000000} header literal, then EOF"""

    async def fetch(self, tag, args, uid):
        if is_meta_fetch(args[1] if len(args) > 1 and isinstance(args[1], list) else []):
            await self.send(b'* 1 FETCH (UID 1 FLAGS (\\Seen) INTERNALDATE "01-Feb-2021 10:00:00 '
                            b'+0100" RFC822.SIZE 200 BODY[HEADER.FIELDS (MESSAGE-ID)] '
                            b"{4000000000}\r\nMessage-ID: <x@y>\r\n")
            raise Hangup()
        await Session.fetch(self, tag, args, uid)


class HugeLiteralStall(Session):
    """the body FETCH announces {4000000000}, sends a little, then stalls (no EOF)"""

    async def fetch(self, tag, args, uid):
        if is_body_fetch(args[1] if len(args) > 1 and isinstance(args[1], list) else []):
            await self.send(b"* 1 FETCH (UID 1 BODY[] {4000000000}\r\n" + b"A" * 1000)
            await asyncio.sleep(3600)
            raise Hangup()
        await Session.fetch(self, tag, args, uid)


class Truncated(Session):
    """the metadata FETCH response is cut in the middle of a line, then EOF"""

    async def fetch(self, tag, args, uid):
        if is_meta_fetch(args[1] if len(args) > 1 and isinstance(args[1], list) else []):
            await self.send(b'* 1 FETCH (UID 1 FLAGS (\\Seen) INTERNALDATE "01-Feb-2')
            raise Hangup()
        await Session.fetch(self, tag, args, uid)


class Malformed(Session):
    """garbage where the metadata FETCH response should be, then a tagged OK"""

    async def fetch(self, tag, args, uid):
        if is_meta_fetch(args[1] if len(args) > 1 and isinstance(args[1], list) else []):
            await self.send(b'* 1 FETCH (UID one FLAGS ((( INTERNALDATE "yesterday" '
                            b"RFC822.SIZE -5)\r\n"
                            b"* 2 FETCH UID 2\r\n"
                            b'* 3 FETCH (UID 5 BODY[HEADER.FIELDS (MESSAGE-ID)] {9999}\r\nshort)\r\n'
                            b"\x00\x01\x02 binary junk \xff\xfe\r\n"
                            + tag + b" MAYBE Fetch completed\r\n")
            return
        await Session.fetch(self, tag, args, uid)


class MalformedTagged(Session):
    """an unknown tag and a tagged reply with an unknown status, to the body FETCH"""

    async def fetch(self, tag, args, uid):
        if is_body_fetch(args[1] if len(args) > 1 and isinstance(args[1], list) else []):
            await self.send(b"zzz999 OK not yours\r\n" + tag + b" WHATEVER done\r\n")
            return
        await Session.fetch(self, tag, args, uid)


class Unsolicited(Session):
    """unsolicited untagged responses in the middle of every FETCH: EXISTS, RECENT,
    EXPUNGE-free FETCH FLAGS without UID, a FETCH for a UID nobody asked about, ALERT"""

    async def fetch_response(self, seq, m, items):
        await self.send(b"* 42 EXISTS\r\n* 3 RECENT\r\n* %d FETCH (FLAGS (\\Seen))\r\n" % seq)
        await Session.fetch_response(self, seq, m, items)
        await self.send(b"* 1 FETCH (UID 999 FLAGS (\\Deleted))\r\n"
                        b"* OK [ALERT] System going down for maintenance in 5 minutes\r\n"
                        b"* 1 FETCH (MODSEQ (77))\r\n")


class UnsolicitedUid(Session):
    """after every FETCH response, an unsolicited flag update WITH the UID of the same
    message (what a server sends when another session changes its flags, e.g. Dovecot
    with QRESYNC): the message must still be copied once"""

    async def fetch_response(self, seq, m, items):
        await Session.fetch_response(self, seq, m, items)
        await self.send(b"* %d FETCH (UID %d FLAGS (%s))\r\n" % (
            seq, m["uid"], " ".join(m["flags"]).encode()))


class ByeMidFetch(Session):
    """the first body FETCH of the server's life gets '* BYE' in the middle, then EOF;
    later ones are honest (a retry must finish the copy, without duplicates)"""

    async def fetch(self, tag, args, uid):
        if is_body_fetch(args[1] if len(args) > 1 and isinstance(args[1], list) else []) and \
                not self.srv.flags.get("bye_done"):
            self.srv.flags["bye_done"] = True
            await self.send(b"* 1 FETCH (UID 1 BODY[] {20}\r\nFrom: a@b\r\nSubj")
            await self.send(b"* BYE Server shutting down\r\n")
            raise Hangup()
        await Session.fetch(self, tag, args, uid)


class ByeAlways(Session):
    """every body FETCH gets '* BYE' before any data, then EOF"""

    async def fetch(self, tag, args, uid):
        if is_body_fetch(args[1] if len(args) > 1 and isinstance(args[1], list) else []):
            await self.send(b"* BYE Server shutting down\r\n")
            raise Hangup()
        await Session.fetch(self, tag, args, uid)


class Throttled(Session):
    """throttles like Office 365 and Gmail, once per kind of command in the server's
    life: the first LOGIN gets NO [THROTTLED] with "Suggested Backoff Time: 2000
    milliseconds", the first SELECT/EXAMINE a plain NO "Request is throttled.
    Suggested Backoff Time: 2000 milliseconds" (no code), the first body FETCH (src)
    and the first APPEND (dst) NO [THROTTLED] with the same hint; then honest.  Each
    of those commands is logged as "MARK KIND throttled|served UNIXTIME" so that a
    test can check that the retry came at least 2 s after the refusal"""

    HINT = b"Request is throttled. Suggested Backoff Time: 2000 milliseconds"

    def mark(self, kind, what):
        if self.srv.log is not None:
            self.srv.log.write(b"[%d] MARK %s %s %.3f\n" % (self.n, kind, what, time.time()))
            self.srv.log.flush()

    async def throttle(self, tag, kind, code=b"[THROTTLED] "):
        """True when this command was refused (the first of its kind)"""
        if self.srv.flags.get(b"throttled " + kind):
            self.mark(kind, b"served")
            return False
        self.srv.flags[b"throttled " + kind] = True
        self.mark(kind, b"throttled")
        await self.send(tag + b" NO " + code + self.HINT + b"\r\n")
        return True

    async def cmd_LOGIN(self, tag, args):
        if not await self.throttle(tag, b"LOGIN"):
            await Session.cmd_LOGIN(self, tag, args)

    async def cmd_AUTHENTICATE(self, tag, args):
        if not await self.throttle(tag, b"LOGIN"):
            await Session.cmd_AUTHENTICATE(self, tag, args)

    async def select(self, tag, args, readonly):
        if not await self.throttle(tag, b"SELECT", code=b""):
            await Session.select(self, tag, args, readonly)

    async def fetch(self, tag, args, uid):
        if self.srv.role == "src" and \
                is_body_fetch(args[1] if len(args) > 1 and isinstance(args[1], list) else []):
            if await self.throttle(tag, b"FETCH"):
                return
        await Session.fetch(self, tag, args, uid)

    async def cmd_APPEND(self, tag, args):
        if self.srv.role == "dst" and await self.throttle(tag, b"APPEND"):
            return
        await Session.cmd_APPEND(self, tag, args)


class FakeCondstore(Session):
    """announces CONDSTORE and QRESYNC, then refuses everything about them"""
    caps = BASE_CAPS + " QRESYNC"

    def status_item(self, name, item):
        if item.upper() == "HIGHESTMODSEQ":
            return None
        return Session.status_item(self, name, item)

    async def select(self, tag, args, readonly):
        if len(args) > 1:
            await self.send(tag + b" BAD Unknown SELECT parameter\r\n")
            return
        await Session.select(self, tag, args, readonly)

    async def fetch(self, tag, args, uid):
        if len(args) > 2 or any(str(i).upper() == "MODSEQ" for i in
                                (args[1] if len(args) > 1 and isinstance(args[1], list) else [])):
            await self.send(tag + b" BAD Unknown FETCH modifier\r\n")
            return
        await Session.fetch(self, tag, args, uid)


class FakeLiteralPlus(Session):
    """announces LITERAL+ but treats a non-synchronizing literal as a syntax error
    (what a server without LITERAL+ does): the literal's bytes then arrive as a line"""

    def literal_plus_ok(self):
        return False

    async def dispatch(self, raw):
        if re.search(rb"\{\d+\+\}\r?\n$", raw):
            tag = raw.split(b" ", 1)[0]
            await self.send(tag + b" BAD Invalid literal size\r\n")
            return
        await Session.dispatch(self, raw)


class StrictQuoted(Session):
    """a strict RFC 3501 server: 8-bit characters in a quoted string are a syntax error
    (a non-ASCII password must come as a literal)"""

    async def dispatch(self, raw):
        try:
            vals = parse_values(raw.rstrip(b"\r\n") + b"\r\n")
        except (ValueError, IndexError):
            vals = []

        def eight_bit(v):
            if isinstance(v, list):
                return any(eight_bit(x) for x in v)
            return isinstance(v, str) and not isinstance(v, Atom) and not v.isascii()
        if any(eight_bit(v) for v in vals[2:]):
            await self.send(raw.split(b" ", 1)[0] + b" BAD 8-bit characters in a quoted string\r\n")
            return
        await Session.dispatch(self, raw)


class LongHeaderName(Session):
    """the HEADER.FIELDS literal holds a field whose name is 511 characters long,
    then a 10 kB value (the honest server never would)"""

    async def fetch_response(self, seq, m, items):
        if is_meta_fetch(items):
            m = dict(m)
            m["data"] = (b"Message-ID" + b"X" * 501 + b": " + b"v" * 10240 + b"\r\n" + m["data"])
        await Session.fetch_response(self, seq, m, items)

    @staticmethod
    def header_fields(data, names):
        head = data.split(b"\r\n\r\n", 1)[0]
        first = head.split(b"\r\n", 1)[0]
        return first + b"\r\n" + Session.header_fields(data, names)


class HugeExists(Session):
    """EXAMINE says 4294967295 EXISTS and STATUS MESSAGES 4294967295 (UIDNEXT too)"""

    def status_item(self, name, item):
        if item.upper() == "MESSAGES":
            return b"MESSAGES 4294967295"
        if item.upper() == "UIDNEXT":
            return b"UIDNEXT 4294967295"
        return Session.status_item(self, name, item)

    async def send(self, data):
        data = re.sub(rb"\* \d+ EXISTS", b"* 4294967295 EXISTS", data)
        await Session.send(self, data)


class BadList(Session):
    """LIST answers with odd entries: broken modified UTF-7, a NIL and a two-character
    delimiter, a literal name, an empty name, nested attributes"""

    async def cmd_LIST(self, tag, args):
        if len(args) >= 2 and self.text(args[1]) == "":
            await Session.cmd_LIST(self, tag, args)
            return
        await self.send(self.list_lines("LIST") +
                        b'* LIST () "/" "&Jjo"\r\n'
                        b'* LIST () "/" "bad&-&AGE"\r\n'
                        b"* LIST () NIL Flat\r\n"
                        b'* LIST () "//" Two\r\n'
                        b'* LIST () "/" {7}\r\nLit/Sub\r\n'
                        b'* LIST () "/" ""\r\n'
                        b'* LIST (\\Weird \\Attributes (nested)) "/" Nested\r\n'
                        + tag + b" OK List completed\r\n")


class BodyMissing(Session):
    """the body FETCH silently leaves out UID 2 (the message vanished), tagged OK"""

    async def fetch_response(self, seq, m, items):
        if is_body_fetch(items) and m["uid"] == 2:
            return
        await Session.fetch_response(self, seq, m, items)


def is_binary_fetch(items):
    return any(re.match(r"BINARY(\.PEEK)?\[\]$", str(i), re.I) for i in items)


class BinaryLies(Session):
    """announces BINARY; on_binary answers every BINARY[] FETCH (scenarios below)"""
    caps = BASE_CAPS + " BINARY"

    async def fetch(self, tag, args, uid):
        if is_binary_fetch(args[1] if len(args) > 1 and isinstance(args[1], list) else [args[1]]):
            await self.on_binary(tag)
            return
        await Session.fetch(self, tag, args, uid)


class BinaryRefused(BinaryLies):
    """announces BINARY, then answers NO to every BINARY[] FETCH"""

    async def on_binary(self, tag):
        await self.send(tag + b" NO [UNKNOWN-CTE] Cannot decode that\r\n")


class BinaryGarbage(BinaryLies):
    """announces BINARY, answers BINARY[] FETCHes with junk, a literal for another item, then OK"""

    async def on_binary(self, tag):
        await self.send(b"* 1 FETCH (UID 9 BINARY[] NIL)\r\n"
                        b"* 1 FETCH (UID 9 BODY[TEXT] {5}\r\nhello)\r\n"
                        b"* OK {bogus}\r\n* OK {-5}\r\n"
                        b"\x00\x01 junk \xff\r\n" + tag + b" OK Fetch completed\r\n")


class BinaryHuge(BinaryLies):
    """announces BINARY, answers BINARY[] with a ~{4000000000} literal, 1000 bytes, then EOF"""

    async def on_binary(self, tag):
        await self.send(b"* 1 FETCH (UID 9 BINARY[] ~{4000000000}\r\n" + b"A" * 1000)
        raise Hangup()


class EmptyBad(Session):
    """answers BAD to a FETCH in an empty folder ("*" names no message there)"""

    async def fetch(self, tag, args, uid):
        if self.selected is not None and not self.msgs():
            await self.send(tag + b" BAD Invalid messageset\r\n")
            return
        await Session.fetch(self, tag, args, uid)


class StallAfterLogin(Session):
    """logs in, then never answers anything again (for looking at a logged-in client)"""

    async def dispatch(self, raw):
        if self.authed:
            await asyncio.sleep(3600)
            raise Hangup()
        await Session.dispatch(self, raw)


class DstNoAppenduid(Session):
    """(--role dst) announces UIDPLUS but never sends APPENDUID"""

    def appenduid_code(self, uids):
        return b""


class DstBadAppenduid(Session):
    """(--role dst) APPENDUID with a wrong UIDVALIDITY and too few UIDs"""

    def appenduid_code(self, uids):
        return b"[APPENDUID 1 %d] " % uids[0]


#: what no operator's terminal, log, report or state should get raw: ESC sequences (clear
#: screen, window title, colours), C1 controls (as UTF-8 and as bare bytes), DEL, bytes
#: that are not UTF-8 (invalid, overlong, a surrogate), and a sequence cut short at the end
HOSTILE_TEXT = (b"\x1b[2J\x1b]0;pwned\x07\x1b[31mred\x1b[0m \xc2\x9b1m \x9b2J \x7f "
                b"\xff\xfe \xc0\xaf \xed\xa0\x80 \xe2\x82")


class HostileText(Session):
    """server text that must reach nobody raw: LOGIN and AUTHENTICATE PLAIN of a user whose
    name starts with "echo" are answered NO [AUTHENTICATIONFAILED] you sent: <the line
    received, password and all>; of a user starting with "esc" NO with ESC sequences, C1
    and DEL controls and invalid UTF-8; any other login succeeds, and then EXAMINE /
    SELECT of Archivio and (--role dst) APPEND of a message with "second" in it get a NO
    with that text and the password the client logged in with (as is, IMAP-quoted, as a
    SASL PLAIN token)"""

    raw = b""
    password = b""
    user = b""

    async def dispatch(self, raw):
        self.raw = raw
        await Session.dispatch(self, raw)

    def with_password(self):
        pw = self.password
        quoted = pw.replace(b"\\", b"\\\\").replace(b'"', b'\\"')
        token = base64.b64encode(b"\0" + self.user + b"\0" + pw)
        return HOSTILE_TEXT[:-2] + b" you logged in with " + pw + b" \"" + quoted + b"\" " + \
            token + b" " + HOSTILE_TEXT[-2:]

    async def login_as(self, tag, user, password, echo):
        name = user.decode("utf-8", "surrogateescape")
        if name.startswith("echo"):
            await self.send(tag + b" NO [AUTHENTICATIONFAILED] you sent: " + echo + b"\r\n")
        elif name.startswith("esc"):
            await self.send(tag + b" NO [AUTHENTICATIONFAILED] " + HOSTILE_TEXT + b"\r\n")
        else:
            self.user, self.password = user, password
            await self.login_ok(tag)

    async def cmd_LOGIN(self, tag, args):
        if len(args) != 2:
            await self.send(tag + b" BAD LOGIN wants two arguments\r\n")
            return
        enc = [a if isinstance(a, bytes) else self.text(a).encode("utf-8", "surrogateescape")
               for a in args]
        await self.login_as(tag, enc[0], enc[1], self.raw.rstrip(b"\r\n").replace(b"\r\n", b" "))

    async def cmd_AUTHENTICATE(self, tag, args):
        if not args or str(args[0]).upper() != "PLAIN":
            await self.send(tag + b" NO unsupported mechanism\r\n")
            return
        if len(args) > 1:
            token = self.text(args[1]).encode()
        else:
            await self.send(b"+ \r\n")
            line = await self.r.readline()
            self.log(b"C:", line)
            token = line.strip()
        try:
            _authz, user, password = base64.b64decode(token).split(b"\0")
        except ValueError:
            await self.send(tag + b" BAD bad PLAIN token\r\n")
            return
        await self.login_as(tag, user, password, token)

    async def select(self, tag, args, readonly):
        if args and self.text(args[0]) == "Archivio":
            await self.send(tag + b" NO [CANNOT] " + self.with_password() + b"\r\n")
            return
        await Session.select(self, tag, args, readonly)

    async def cmd_APPEND(self, tag, args):
        if any(isinstance(a, bytes) and b"Subject: second" in a for a in args):
            await self.send(tag + b" NO [CANNOT] " + self.with_password() + b"\r\n")
            return
        await Session.cmd_APPEND(self, tag, args)


class LoginDisabled(Session):
    """announces LOGINDISABLED and no AUTH=PLAIN (a plaintext port that wants TLS first), yet
    would accept LOGIN: no password may be sent"""
    caps = BASE_CAPS.replace(" AUTH=PLAIN", "") + " LOGINDISABLED STARTTLS"

    async def cmd_LOGIN(self, tag, args):
        self.log(b"!!", b"LOGIN received although LOGINDISABLED was announced")
        await Session.cmd_LOGIN(self, tag, args)

    async def cmd_AUTHENTICATE(self, tag, args):
        self.log(b"!!", b"AUTHENTICATE received although no AUTH= was announced")
        await Session.cmd_AUTHENTICATE(self, tag, args)


class StarttlsInject(Session):
    """announces STARTTLS; its OK is followed, in the same packet, by a forged
    '* CAPABILITY' and tagged OKs (what a man in the middle injects, CVE-2011-0411);
    then it never does TLS"""
    caps = BASE_CAPS + " STARTTLS"

    async def cmd_STARTTLS(self, tag, args):
        t = int(tag) if tag.isdigit() else 0
        await self.send(tag + b" OK Begin TLS negotiation now\r\n"
                        b"* CAPABILITY IMAP4rev1 AUTH=PLAIN LOGIN-REFERRALS\r\n" +
                        b"%d OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] injected\r\n" % (t + 1))
        await asyncio.sleep(3600)
        raise Hangup()


#: a folder whose name ends the command line that quotes it and starts another
EVIL_NAME = "Evil\r\nX1 CREATE Injected"


class ListCrlf(Session):
    """LIST (and LSUB) show a folder whose name, a literal, holds CR LF and then what
    looks like a command ("X1 CREATE Injected"); it holds one message.  A client
    that quotes the name sends that command: logged as INJECTED"""

    def __init__(self, server, reader, writer, n):
        Session.__init__(self, server, reader, writer, n)
        if EVIL_NAME not in server.store:
            server.store[EVIL_NAME] = [
                {"uid": 1, "flags": [], "date": "06-Jun-2021 10:00:00 +0000",
                 "data": _msg(11, b"evil folder", b"In a folder with CR LF in its name.\r\n")}]

    async def dispatch(self, raw):
        if raw.startswith(b"X1 "):
            self.log(b"!!", b"INJECTED command: " + raw)
        await Session.dispatch(self, raw)


class ListCrlfSync(ListCrlf):
    """list-crlf without LITERAL+: the name must go as a synchronizing literal"""
    caps = BASE_CAPS.replace("LITERAL+ ", "")


class HugeListLiteral(Session):
    """LIST shows a folder whose name is a 300 MB literal, streamed (then the tagged OK)"""

    async def cmd_LIST(self, tag, args):
        if len(args) >= 2 and self.text(args[1]) == "":
            await Session.cmd_LIST(self, tag, args)
            return
        size = 300 << 20
        self.log(b"S:", b"* LIST () \"/\" {%d} ...(streamed)" % size)
        self.w.write(self.list_lines("LIST") + b'* LIST () "/" {%d}\r\n' % size)
        chunk = b"A" * (1 << 20)
        for _ in range(size // len(chunk)):
            self.w.write(chunk)
            await self.w.drain()
        await self.send(b"\r\n" + tag + b" OK List completed\r\n")


class HugeListLines(Session):
    """LIST shows 1,000,000 folders of 100-byte names (about 130 MB), streamed"""

    async def cmd_LIST(self, tag, args):
        if len(args) >= 2 and self.text(args[1]) == "":
            await Session.cmd_LIST(self, tag, args)
            return
        self.w.write(self.list_lines("LIST"))
        for i in range(1000):
            self.w.write(b"".join(b'* LIST (\\HasNoChildren) "/" "f%096d"\r\n' % (i * 1000 + j)
                                  for j in range(1000)))
            await self.w.drain()
        await self.send(tag + b" OK List completed\r\n")


class HugeFetchEnvelope(Session):
    """the metadata FETCH response of UID 2 also carries an ENVELOPE whose subject is a
    100 MB literal, streamed (a client that parses it holds it whole)"""

    async def fetch_response(self, seq, m, items):
        if not is_meta_fetch(items) or m["uid"] != 2:
            await Session.fetch_response(self, seq, m, items)
            return
        parts = [p for p in (self.fetch_item(seq, m, i) for i in items) if p is not None]
        size = 100 << 20
        self.log(b"S:", b"* %d FETCH (ENVELOPE (NIL {%d} ...(streamed)" % (seq, size))
        self.w.write(b"* %d FETCH (ENVELOPE (NIL {%d}\r\n" % (seq, size))
        chunk = b"S" * (1 << 20)
        for _ in range(size // len(chunk)):
            self.w.write(chunk)
            await self.w.drain()
        await self.send(b" NIL NIL NIL NIL NIL NIL NIL NIL) " + b" ".join(parts) + b")\r\n")


SCENARIOS = {
    "ok": Ok, "bare-lf": BareLf, "no-greeting": NoGreeting, "bye-greeting": ByeGreeting,
    "login-unavailable": LoginUnavailable, "huge-literal-body": HugeLiteralBody,
    "huge-literal-header": HugeLiteralHeader, "huge-literal-stall": HugeLiteralStall,
    "truncated": Truncated, "malformed": Malformed, "malformed-tagged": MalformedTagged,
    "unsolicited": Unsolicited, "unsolicited-uid": UnsolicitedUid, "bye-mid-fetch": ByeMidFetch, "bye-always": ByeAlways,
    "fake-condstore": FakeCondstore, "fake-literal-plus": FakeLiteralPlus,
    "strict-quoted": StrictQuoted,
    "long-header-name": LongHeaderName, "huge-exists": HugeExists, "bad-list": BadList,
    "body-missing": BodyMissing, "stall-after-login": StallAfterLogin,
    "binary-refused": BinaryRefused, "binary-garbage": BinaryGarbage,
    "binary-huge": BinaryHuge, "empty-bad": EmptyBad,
    "logindisabled": LoginDisabled, "starttls-inject": StarttlsInject, "list-crlf": ListCrlf,
    "list-crlf-sync": ListCrlfSync, "huge-list-literal": HugeListLiteral,
    "huge-list-lines": HugeListLines, "huge-fetch-envelope": HugeFetchEnvelope,
    "dst-no-appenduid": DstNoAppenduid,
    "dst-bad-appenduid": DstBadAppenduid,
    "hostile-text": HostileText,
    "throttled": Throttled,
}


class Server:
    def __init__(self, args):
        self.scenario = SCENARIOS[args.scenario]
        self.role = args.role
        self.user = args.user
        self.password = os.environ.get(args.password_env, "")
        self.log = open(args.log, "ab") if args.log else None
        self.store = source_corpus() if self.role == "src" else {"INBOX": []}
        if self.role == "src" and hasattr(self.scenario, "corpus"):
            self.store = self.scenario.corpus(self.store)
        self.next_uid = {}
        self.flags = {}
        self.count = 0

    async def handle(self, reader, writer):
        self.count += 1
        n = self.count
        if self.log:
            self.log.write(b"[%d] connection\n" % n)
        await self.scenario(self, reader, writer, n).run()


async def main_async(args):
    srv = Server(args)
    server = await asyncio.start_server(srv.handle, "127.0.0.1", 0, limit=1 << 20)
    port = server.sockets[0].getsockname()[1]
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % port)
    os.rename(tmp, args.port_file)
    async with server:
        await server.serve_forever()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scenario", default="ok")
    p.add_argument("--port-file")
    p.add_argument("--log")
    p.add_argument("--user", default="user@example.test")
    p.add_argument("--password-env", default="FAKEIMAP_PASSWORD")
    p.add_argument("--role", choices=["src", "dst"], default="src")
    p.add_argument("--list", action="store_true")
    args = p.parse_args()
    if args.list:
        for name, cls in SCENARIOS.items():
            print("%-20s %s" % (name, " ".join((cls.__doc__ or "").split())))
        return 0
    if args.scenario not in SCENARIOS or not args.port_file:
        p.error("--scenario (one of --list) and --port-file are required")
    try:
        asyncio.run(main_async(args))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
