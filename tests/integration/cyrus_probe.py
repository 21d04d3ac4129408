#!/usr/bin/python3
"""cyrus_probe.py: records how an IMAP server answers what trasloco does as a migration
destination (stdlib only; run by cyrus_probe.sh, which starts the Cyrus it talks to).

Usage: cyrus_probe.py --host H --port N --imaps-port N --ca FILE --tls-name NAME
                      --user U --quota-user U2 --admin A
       passwords in the environment: PROBE_PW (user and quota user), PROBE_ADMIN_PW

Speaks raw IMAP over a socket (not imaplib) so that names and messages go out byte for
byte (quoted strings, LITERAL+ literals, literal8) and replies are printed verbatim:
bytes outside printable ASCII as \\xNN, CR LF as \\r\\n only where they are not the end
of a line, the command tag as "T".  Each finding is one line:
    >>> what was sent
    <<< server lines (untagged and tagged)
    ::: what the probe concluded (comparisons of what was stored with what was sent)
The probe writes only in the mailboxes of the users given; it leaves its folders there.
"""

import argparse
import difflib
import os
import re
import socket
import ssl
import sys

CRLF = b"\r\n"


def show(b):
    """Bytes -> one printable line (\\xNN for anything outside printable ASCII)."""
    out = []
    for c in b:
        if c == 0x5C:
            out.append("\\\\")
        elif 0x20 <= c < 0x7F:
            out.append(chr(c))
        elif c == 0x0D:
            out.append("\\r")
        elif c == 0x0A:
            out.append("\\n")
        elif c == 0x09:
            out.append("\\t")
        else:
            out.append("\\x%02x" % c)
    return "".join(out)


class Conn:
    def __init__(self, host, port, tls_ctx=None, server_name=None):
        self.sock = socket.create_connection((host, port), timeout=30)
        if tls_ctx is not None:
            self.sock = tls_ctx.wrap_socket(self.sock, server_hostname=server_name)
        self.buf = b""
        self.n = 0
        self.greeting = self.readline()

    def starttls(self, ctx, name):
        lines = self.cmd(b"STARTTLS")
        self.sock = ctx.wrap_socket(self.sock, server_hostname=name)
        return lines

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("connection closed by the server")
        self.buf += data

    def readline(self):
        while CRLF not in self.buf:
            self._fill()
        i = self.buf.index(CRLF) + 2
        line, self.buf = self.buf[:i], self.buf[i:]
        return line

    def readn(self, n):
        while len(self.buf) < n:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def read_item(self):
        """One response line with its literals inline: (line_without_literals, literals)."""
        line = self.readline()
        whole, lits = line, []
        while True:
            m = re.search(rb"~?\{(\d+)\}\r\n$", line)
            if not m:
                break
            lit = self.readn(int(m.group(1)))
            lits.append(lit)
            line = self.readline()
            whole += lit + line
        return whole, lits

    def send(self, data):
        self.sock.sendall(data)

    def cmd(self, *parts, wait=True):
        """parts: bytes are sent as they are; ("lit", b) as a {n+} literal, ("lit8", b)
        as ~{n+}; ("synclit", b) as a synchronizing {n} literal.  Returns the reply items
        (whole bytes, literals), the tagged one last."""
        self.n += 1
        tag = b"T%d" % self.n
        out = tag + b" "
        for p in parts:
            if isinstance(p, tuple):
                kind, data = p
                if kind == "lit":
                    out += b"{%d+}\r\n" % len(data) + data
                elif kind == "lit8":
                    out += b"~{%d+}\r\n" % len(data) + data
                elif kind == "synclit":
                    out += b"{%d}\r\n" % len(data)
                    self.send(out)
                    out = b""
                    cont = self.readline()
                    if not cont.startswith(b"+"):
                        # refused before the literal: that is the reply
                        return [(cont, [])]
                    out = data
            else:
                out += p
        self.send(out + CRLF)
        items = []
        while True:
            whole, lits = self.read_item()
            items.append((whole, lits))
            if whole.startswith(tag + b" "):
                break
        self.tag = tag
        return items

    def close(self):
        try:
            self.cmd(b"LOGOUT")
        except Exception:
            pass
        self.sock.close()


def printable_reply(conn, items, max_line=400):
    out = []
    for whole, _ in items:
        s = whole
        if s.startswith(conn.tag + b" "):
            s = b"T " + s[len(conn.tag) + 1:]
        t = show(s[:-2] if s.endswith(CRLF) else s)
        if len(t) > max_line:
            t = t[:max_line] + "...(%d bytes)" % len(s)
        out.append(t)
    return out


def tagged(items):
    return items[-1][0]


def ok(items):
    return re.match(rb"T\d+ OK", tagged(items)) is not None


def qstr(b):
    return b'"' + b.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def astring(b):
    """A quoted string when the bytes allow one, else a literal."""
    if any(c in b for c in b"\r\n\x00") or any(c >= 0x80 for c in b):
        return ("lit", b)
    return qstr(b)


class Probe:
    def __init__(self, a):
        self.a = a
        self.ctx = ssl.create_default_context(cafile=a.ca)
        self.pw = os.environ["PROBE_PW"].encode()

    def p(self, *lines):
        for line in lines:
            print(line)
        sys.stdout.flush()

    def report(self, what, conn, items, conclusion=None, max_line=400):
        self.p(">>> " + what)
        for line in printable_reply(conn, items, max_line):
            self.p("<<< " + line)
        if conclusion:
            self.p("::: " + conclusion)

    def login(self, user=None, tls="starttls"):
        if tls == "implicit":
            c = Conn(self.a.host, self.a.imaps_port, self.ctx, self.a.tls_name)
        else:
            c = Conn(self.a.host, self.a.port)
            if tls == "starttls":
                c.starttls(self.ctx, self.a.tls_name)
        items = c.cmd(b"LOGIN ", qstr((user or self.a.user).encode()), b" ", qstr(self.pw))
        if not ok(items):
            raise SystemExit("login refused: %r" % items)
        return c

    # ---------------------------------------------------------------- capabilities
    def capabilities(self):
        self.p("", "== CAPABILITY, NAMESPACE, delimiter")
        def caps(items):
            for w, _ in items:
                if w.startswith(b"* CAPABILITY "):
                    return set(w[13:].split())
            return set()

        c = Conn(self.a.host, self.a.port)
        self.p("greeting (plain port): " + show(c.greeting[:-2]))
        items = c.cmd(b"CAPABILITY")
        plain = caps(items)
        self.report("CAPABILITY (plain port, before STARTTLS)", c, items, max_line=4000)
        self.report("STARTTLS", c, c.starttls(self.ctx, self.a.tls_name))
        items = c.cmd(b"CAPABILITY")
        pre = caps(items)
        self.report("CAPABILITY (after STARTTLS, before login)", c, items, max_line=4000)
        self.report("LOGIN wrong password", c,
                    c.cmd(b"LOGIN ", qstr(self.a.user.encode()), b' "wrong-password"'))
        self.report("LOGIN (right password)", c,
                    c.cmd(b"LOGIN ", qstr(self.a.user.encode()), b" ", qstr(self.pw)),
                    max_line=4000)
        items = c.cmd(b"CAPABILITY")
        post = caps(items)
        self.report("CAPABILITY (after login)", c, items, max_line=4000)
        j = lambda xs: " ".join(x.decode() for x in sorted(xs)) or "-"
        self.p("::: before STARTTLS only: %s; after STARTTLS only: %s" % (
            j(plain - pre), j(pre - plain)))
        self.p("::: before login only: %s; after login only: %s" % (j(pre - post), j(post - pre)))
        items = c.cmd(b"NAMESPACE")
        self.report("NAMESPACE", c, items)
        m = re.search(rb'\(\("([^"]*)" "(.)"\)', items[0][0])
        self.prefix, self.sep = m.group(1), m.group(2)
        self.report('LIST "" ""', c, c.cmd(b'LIST "" ""'))
        self.report("ENABLE CONDSTORE QRESYNC", c, c.cmd(b"ENABLE CONDSTORE QRESYNC"))
        self.report('GETQUOTAROOT "INBOX"', c, c.cmd(b'GETQUOTAROOT "INBOX"'))
        c.close()
        c = Conn(self.a.host, self.a.imaps_port, self.ctx, self.a.tls_name)
        self.p("greeting (implicit TLS port): " + show(c.greeting[:-2]))
        self.report("AUTHENTICATE PLAIN (SASL-IR, implicit TLS)", c,
                    c.cmd(b"AUTHENTICATE PLAIN ", _b64(b"\0" + self.a.user.encode() + b"\0" +
                                                      self.pw)))
        c.close()
        self.p("::: personal namespace prefix %r, hierarchy delimiter %r"
               % (self.prefix.decode(), self.sep.decode()))

    # ---------------------------------------------------------------- CREATE
    def listing(self, c):
        items = c.cmd(b'LIST "" ', qstr(self.prefix + b"*"))
        return [w[:-2] for w, _ in items[:-1] if w.startswith(b"* LIST")]

    def create_one(self, c, label, name, how="auto"):
        """CREATE prefix+name; when it succeeds, show what LIST gained (the folder as
        Cyrus names it, and any intermediate level), then delete all of that."""
        full = self.prefix + name
        if how == "lit":
            arg = ("lit", full)
        elif how == "quoted":
            arg = qstr(full)
        else:
            arg = astring(full)
        before = set(self.listing(c))
        items = c.cmd(b"CREATE ", arg)
        stray = [w for w, _ in items[:-1]]
        extra = ""
        if ok(items):
            new = [x for x in self.listing(c) if x not in before]
            extra = "; LIST gained " + (" | ".join(show(x) for x in new) if new else "nothing")
            for x in sorted(new, key=len, reverse=True):
                m = re.match(rb'\* LIST \([^)]*\) (?:"[^"]*"|NIL) (.*)$', x)
                if m:
                    c.cmd(b"DELETE ", m.group(1))
        if stray:
            extra += "; untagged: " + " | ".join(show(w[:-2]) for w in stray)
        t = re.sub(r"^T\d+ ", "T ", show(tagged(items)[:-2]))
        self.p("CREATE %-28s -> %s%s" % (label, t, extra))
        return ok(items), t

    def creates(self):
        self.p("", "== CREATE of names (under the personal prefix %r; each created one is "
               "listed and deleted again)" % self.prefix.decode())
        c = self.login()
        chars = "% * ? & # ~ ^ \\ \" ' : ; ! $ { } [ ] , + = @ ( ) < > | ` / .".split(" ")
        for ch in chars:
            self.create_one(c, "a%sb" % ch, b"a" + ch.encode() + b"b")
        for ch in ("%", "*", "?", "&"):
            self.create_one(c, "%s alone" % ch, ch.encode())
        cases = [
            ("leading space", b" lead"),
            ("trailing space", b"trail "),
            ("only spaces", b"   "),
            ("leading '.'", b".dot"),
            ("trailing '.'", b"dot."),
            ("'..' inside", b"a..b"),
            ("leading '/'", b"/slash"),
            ("trailing '/'", b"slash/"),
            ("'//' inside", b"a//b"),
            ("'~' leading", b"~tilde"),
            ("DEL 0x7f (literal)", b"a\x7fb"),
            ("TAB (literal)", b"a\tb"),
            ("0x01 (literal)", b"a\x01b"),
            ("0x1f (literal)", b"a\x1fb"),
            ("CR (literal)", b"a\rb"),
            ("LF (literal)", b"a\nb"),
            ("NUL (literal)", b"a\x00b"),
            ("8-bit UTF-8 raw", "Località".encode()),
            ("8-bit Latin-1 raw", "Localit\xe0".encode("latin-1")),
            ("mUTF-7 Localit&AOA-", b"Localit&AOA-"),
            ("mUTF-7 &ZeVnLIqe-", b"&ZeVnLIqe-"),
            ("mUTF-7 &- (literal &)", b"R&-D"),
            ("bad mUTF-7 '&' alone", b"R&D"),
            ("bad mUTF-7 unterminated", b"&AOA"),
            ("bad mUTF-7 ASCII inside", b"&AGE-"),
            ("bad mUTF-7 empty &-&-", b"&-&-"),
            ("user.x", b"user.x"),
            ("user", b"user"),
            ("INBOX", b"INBOX"),
            ("inbox.x", b"inbox.x"),
            ("Trash", b"Trash"),
            ("DELETED.x", b"DELETED.x"),
        ]
        for label, name in cases:
            self.create_one(c, label, name)
        # names outside the personal namespace
        for label, full in (("top-level Foo", b"Foo"), ('"user.other@example.test.x"',
                            b"user.other@example.test.x"), ("INBOX (exists)", b"INBOX")):
            items = c.cmd(b"CREATE ", qstr(full))
            self.p("CREATE %-28s -> %s (no prefix)" % (label, re.sub(
                r"^T\d+ ", "T ", show(tagged(items)[:-2]))))
        # an existing folder
        c.cmd(b"CREATE ", qstr(self.prefix + b"Exists"))
        items = c.cmd(b"CREATE ", qstr(self.prefix + b"Exists"))
        self.p("CREATE %-28s -> %s" % ("existing folder", re.sub(
            r"^T\d+ ", "T ", show(tagged(items)[:-2]))))
        # intermediate levels
        items = c.cmd(b"CREATE ", qstr(self.prefix + b"Par" + self.sep + b"Child"))
        lst = c.cmd(b'LIST "" ', qstr(self.prefix + b"Par*"))
        self.p("CREATE %-28s -> %s; LIST shows %s" % (
            "Par%sChild (no Par)" % self.sep.decode(),
            re.sub(r"^T\d+ ", "T ", show(tagged(items)[:-2])),
            " | ".join(show(w[:-2]) for w, _ in lst[:-1])))
        # the length limit: longest single component, and longest name of components
        self.p("", "== the name length limit")
        lo, hi = 1, 2000
        if not ok(c.cmd(b"CREATE ", qstr(self.prefix + b"L" * lo))):
            self.p("::: even a 1-byte name is refused")
        else:
            while lo < hi:
                mid = (lo + hi + 1) // 2
                items = c.cmd(b"CREATE ", qstr(self.prefix + b"L" * mid))
                if ok(items):
                    c.cmd(b"DELETE ", qstr(self.prefix + b"L" * mid))
                    lo = mid
                else:
                    hi = mid - 1
                    last_no = show(tagged(items)[:-2])
            c.cmd(b"DELETE ", qstr(self.prefix + b"L"))
            self.p("::: one component: %d bytes accepted (%d with the prefix %r); %d refused "
                   "with: %s" % (lo, lo + len(self.prefix), self.prefix.decode(), lo + 1,
                                 re.sub(r"^T\d+ ", "T ", last_no)))
        # many short components
        comp = b"b" * 50
        name = b""
        n = 0
        while n < 40:
            cand = name + (self.sep if name else b"") + comp
            items = c.cmd(b"CREATE ", qstr(self.prefix + cand))
            if not ok(items):
                self.p("::: nested components of 50 bytes: %d levels accepted (name %d bytes"
                       " with the prefix), the next one refused with: %s"
                       % (n, len(self.prefix) + len(name),
                          re.sub(r"^T\d+ ", "T ", show(tagged(items)[:-2]))))
                break
            name = cand
            n += 1
        else:
            self.p("::: 40 nested components of 50 bytes accepted")
        while name:
            c.cmd(b"DELETE ", qstr(self.prefix + name))
            name = name.rpartition(self.sep)[0]
        c.close()

    # ---------------------------------------------------------------- SUBSCRIBE etc.
    def misc(self):
        self.p("", "== SUBSCRIBE, SELECT, STATUS, APPEND to what does not exist")
        c = self.login()
        nx = self.prefix + b"NoSuchFolder"
        self.report("SUBSCRIBE nonexistent %s" % nx.decode(), c, c.cmd(b"SUBSCRIBE ", qstr(nx)))
        self.report('LSUB "" "*"', c, c.cmd(b'LSUB "" "*"'))
        self.report('LIST (SUBSCRIBED) "" "*"', c, c.cmd(b'LIST (SUBSCRIBED) "" "*"'))
        self.report("UNSUBSCRIBE it", c, c.cmd(b"UNSUBSCRIBE ", qstr(nx)))
        self.report("SELECT nonexistent", c, c.cmd(b"SELECT ", qstr(nx)))
        self.report("STATUS nonexistent", c, c.cmd(b"STATUS ", qstr(nx), b" (MESSAGES)"))
        self.report("APPEND to nonexistent", c,
                    c.cmd(b"APPEND ", qstr(nx), b" ", ("lit", b"Subject: x\r\n\r\nx\r\n")))
        self.report('LIST "" "*" RETURN (SPECIAL-USE STATUS (MESSAGES UIDNEXT))', c,
                    c.cmd(b'LIST "" "*" RETURN (SPECIAL-USE STATUS (MESSAGES UIDNEXT))'))
        self.report("CREATE Sent (USE (\\Sent))", c,
                    c.cmd(b"CREATE ", qstr(self.prefix + b"SentSU"), b" (USE (\\Sent))"))
        self.report('LIST (SPECIAL-USE) "" "*"', c, c.cmd(b'LIST (SPECIAL-USE) "" "*"'))
        c.close()

    # ---------------------------------------------------------------- APPEND
    def appends(self):
        self.p("", "== APPEND and what is stored")
        c = self.login()
        folder = self.prefix + b"Probe"
        self.report("CREATE", c, c.cmd(b"CREATE ", qstr(folder)))
        self.report("SELECT (empty)", c, c.cmd(b"SELECT ", qstr(folder), b" (CONDSTORE)"))
        self.report("STATUS (empty)", c, c.cmd(
            b"STATUS ", qstr(folder),
            b" (MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN HIGHESTMODSEQ SIZE)"))
        c.cmd(b"UNSELECT")

        utf8_subject = "Oggetto: perché è già così – 📎 ünïcödé".encode()
        msgs = []

        def msg(label, data, flags=b"(\\Seen $Label1 NonJunk)",
                date=b'"14-Feb-2021 15:16:17 +0100"', kind="lit"):
            msgs.append((label, data, flags, date, kind))

        base_hdr = (b"From: \xc3\x80ngela Bianchi <angela@example.test>\r\n"
                    b"To: Mario <mario@example.test>\r\n"
                    b"Subject: " + utf8_subject + b"\r\n"
                    b"Date: Sun, 14 Feb 2021 15:16:17 +0100\r\n"
                    b"Message-ID: <probe-1@example.test>\r\n"
                    b"MIME-Version: 1.0\r\n"
                    b"Content-Type: text/plain; charset=utf-8\r\n"
                    b"Content-Transfer-Encoding: 8bit\r\n")
        body8 = "Corpo con accenti: àèìòù, €, 日本語.\r\n".encode()
        msg("8-bit UTF-8 in Subject and From, 8-bit body, CRLF", base_hdr + b"\r\n" + body8)
        msg("8-bit Latin-1 byte in Subject",
            b"From: a@example.test\r\nSubject: caff\xe8 latin1\r\n"
            b"Message-ID: <probe-2@example.test>\r\n\r\nbody\r\n")
        msg("8-bit in a folded Subject continuation and in X-Custom",
            b"From: a@example.test\r\nSubject: first line\r\n second \xc3\xa8 line\r\n"
            b"X-Custom: \xe2\x82\xac 10\r\nMessage-ID: <probe-3@example.test>\r\n\r\nbody\r\n")
        msg("8-bit in a MIME part header (filename) and part body",
            b"From: a@example.test\r\nSubject: mime\r\nMessage-ID: <probe-4@example.test>\r\n"
            b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"XX\"\r\n\r\n"
            b"--XX\r\nContent-Type: text/plain; charset=utf-8\r\n"
            b"Content-Disposition: attachment; filename=\"f\xc3\xa0ttura.txt\"\r\n\r\n"
            b"\xc3\xa0 part body\r\n--XX--\r\n")
        msg("RFC 2047 encoded Subject (no 8-bit)",
            b"From: a@example.test\r\nSubject: =?UTF-8?Q?perch=C3=A9?=\r\n"
            b"Message-ID: <probe-5@example.test>\r\n\r\nbody\r\n")
        msg("bare LF line endings throughout",
            b"From: a@example.test\nSubject: bare LF\nMessage-ID: <probe-6@example.test>\n\n"
            b"line one\nline two\n")
        msg("bare LF in the body only",
            b"From: a@example.test\r\nSubject: LF body\r\nMessage-ID: <probe-7@example.test>"
            b"\r\n\r\nline one\nline two\r\n")
        msg("bare CR in the body",
            b"From: a@example.test\r\nSubject: CR\r\nMessage-ID: <probe-8@example.test>\r\n\r\n"
            b"one\rtwo\r\n")
        msg("NUL byte in the body ({n+} literal)",
            b"From: a@example.test\r\nSubject: NUL body\r\nMessage-ID: <probe-9@example.test>"
            b"\r\n\r\nbefore\x00after\r\n")
        msg("NUL byte in the body (~{n+} literal8, BINARY)",
            b"From: a@example.test\r\nSubject: NUL literal8\r\nMessage-ID: <probe-10@example.test>"
            b"\r\n\r\nbefore\x00after\r\n", kind="lit8")
        msg("NUL byte in a header ({n+})",
            b"From: a@example.test\r\nSubject: NUL\x00hdr\r\nMessage-ID: <probe-11@example.test>"
            b"\r\n\r\nbody\r\n")
        msg("8-bit body ~{n+} literal8 (no NUL)",
            b"From: a@example.test\r\nSubject: lit8 \xc3\xa8\r\nMessage-ID: <probe-12@example.test>"
            b"\r\n\r\nbody \xc3\xa8\r\n", kind="lit8")
        msg("no header/body separator (headers only)",
            b"From: a@example.test\r\nSubject: no body\r\nMessage-ID: <probe-13@example.test>\r\n")
        msg("no headers at all (body text only)", b"just a body line\r\nand another\r\n")
        msg("a header line without a colon",
            b"From: a@example.test\r\nThis is not a header\r\nSubject: bad hdr\r\n\r\nbody\r\n")
        msg("header name with a space before the colon",
            b"From: a@example.test\r\nSubject : spaced\r\n\r\nbody\r\n")
        msg("8-bit byte in a header NAME",
            b"From: a@example.test\r\nX-\xc3\xa8: v\r\nSubject: 8bit name\r\n\r\nbody\r\n")
        msg("mbox 'From ' line first",
            b"From someone@example.test Sun Feb 14 15:16:17 2021\r\nFrom: a@example.test\r\n"
            b"Subject: mbox\r\n\r\nbody\r\n")
        msg("empty message (0 bytes)", b"")
        msg("a 2000-byte header line",
            b"From: a@example.test\r\nSubject: " + b"s" * 2000 + b"\r\n\r\nbody\r\n")
        msg("a 5000-byte body line",
            b"From: a@example.test\r\nSubject: long body line\r\n\r\n" + b"b" * 5000 + b"\r\n")
        msg("no trailing CRLF at the end",
            b"From: a@example.test\r\nSubject: no final newline\r\n\r\nbody")
        msg("date -0500", b"From: a@example.test\r\nSubject: minus five\r\n\r\nx\r\n",
            date=b'"01-Jul-2015 08:00:00 -0500"')
        msg("date +0530", b"From: a@example.test\r\nSubject: plus 0530\r\n\r\nx\r\n",
            date=b'"31-Dec-1999 23:59:59 +0530"')
        msg("date 1960", b"From: a@example.test\r\nSubject: 1960\r\n\r\nx\r\n",
            date=b'"01-Jan-1960 00:00:00 +0000"')
        msg("date 2100", b"From: a@example.test\r\nSubject: 2100\r\n\r\nx\r\n",
            date=b'"01-Jan-2100 00:00:00 +0000"')
        msg("no date, no flags", b"From: a@example.test\r\nSubject: nodate\r\n\r\nx\r\n",
            flags=None, date=None)
        msg("flags: all system flags + keywords",
            b"From: a@example.test\r\nSubject: flags\r\n\r\nx\r\n",
            flags=b"(\\Seen \\Answered \\Flagged \\Draft \\Deleted $Label1 $label2 NonJunk "
                  b"$Forwarded $MDNSent Junk $Junk $NotJunk)")
        msg("flag \\Recent", b"From: a@example.test\r\nSubject: recent\r\n\r\nx\r\n",
            flags=b"(\\Recent)")
        msg("unknown system flag \\Foo", b"From: a@example.test\r\nSubject: foo\r\n\r\nx\r\n",
            flags=b"(\\Foo)")

        for label, data, flags, date, kind in msgs:
            parts = [b"APPEND ", qstr(folder)]
            if flags is not None:
                parts += [b" ", flags]
            if date is not None:
                parts += [b" ", date]
            parts += [b" ", (kind, data)]
            items = c.cmd(*parts)
            self.p("")
            self.report("APPEND %s (%d bytes, flags %s, date %s, %s)" % (
                label, len(data), show(flags or b"none"), show(date or b"none"),
                "{n+}" if kind == "lit" else "~{n+}"), c, items)
            if not ok(items):
                # did the server read the whole literal, or take some of it as commands?
                self.report("NOOP (after the refusal)", c, c.cmd(b"NOOP"))
                continue
            m = re.search(rb"\[APPENDUID (\d+) (\d+)\]", tagged(items))
            if not m:
                self.p("::: no APPENDUID")
                continue
            uid = m.group(2)
            c.cmd(b"EXAMINE ", qstr(folder))
            f = c.cmd(b"UID FETCH ", uid, b" (RFC822.SIZE INTERNALDATE FLAGS "
                      b"BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)])")
            self.report("UID FETCH %s (RFC822.SIZE INTERNALDATE FLAGS BODY.PEEK[HEADER.FIELDS "
                        "(SUBJECT FROM)])" % uid.decode(), c, f)
            body = c.cmd(b"UID FETCH ", uid, b" BODY.PEEK[]")
            lits = [lit for _, ls in body[:-1] for lit in ls]
            if not lits:
                self.report("UID FETCH BODY.PEEK[]", c, body)
                continue
            got = lits[0]
            marker = re.search(rb"BODY\[\] (~?\{\d+\})", body[0][0])
            self.p("::: BODY[] (as %s) %s" % (show(marker.group(1)) if marker else "?",
                                               compare(data, got)))
            if b"\x00" in data:
                b2 = c.cmd(b"UID FETCH ", uid, b" BINARY.PEEK[]")
                l2 = [lit for _, ls in b2[:-1] for lit in ls]
                self.p("::: BINARY[] " + (compare(data, l2[0]) if l2 else
                                           "; ".join(printable_reply(c, b2))))
            c.cmd(b"UNSELECT")

        self.p("", "== MULTIAPPEND")
        good = b"From: a@example.test\r\nSubject: multi\r\n\r\nx\r\n"
        self.report("MULTIAPPEND of 3 good messages", c, c.cmd(
            b"APPEND ", qstr(folder), b" (\\Seen) ", ("lit", good), b" ", ("lit", good),
            b" () ", ("lit", good)))
        c.cmd(b"EXAMINE ", qstr(folder))
        before = [w for w, _ in c.cmd(b"NOOP") if b"EXISTS" in w]
        st = c.cmd(b"STATUS ", qstr(folder), b" (MESSAGES)")
        c.cmd(b"UNSELECT")
        self.report("MULTIAPPEND of good, NUL-containing, good", c, c.cmd(
            b"APPEND ", qstr(folder), b" ", ("lit", good), b" ",
            ("lit", b"Subject: nul\r\n\r\na\x00b\r\n"), b" ", ("lit", good)))
        st2 = c.cmd(b"STATUS ", qstr(folder), b" (MESSAGES)")
        self.p("::: messages before %s, after %s" % (
            show(st[0][0][:-2]), show(st2[0][0][:-2])))
        del before

        inj = self.prefix + b"Injected"
        trap = (b"From: a@example.test\r\nSubject: trap\r\n\r\n"
                b"X1 CREATE " + qstr(inj) + b"\r\n")
        items = c.cmd(b"APPEND ", qstr(folder), b" ", ("lit", good), b" ", ("lit", b""),
                      b" ", ("lit", trap))
        self.report("MULTIAPPEND of good, EMPTY (0 bytes), a message whose body line is "
                    "'X1 CREATE %s'" % inj.decode(), c, items)
        self.report("NOOP (after it)", c, c.cmd(b"NOOP"))
        lst = c.cmd(b'LIST "" ', qstr(inj))
        self.p("::: %s %s" % (inj.decode(), "EXISTS: the message body was run as a command"
                              if any(b"* LIST" in w for w, _ in lst[:-1]) else
                              "does not exist"))
        st3 = c.cmd(b"STATUS ", qstr(folder), b" (MESSAGES)")
        self.p("::: messages now %s" % show(st3[0][0][:-2]))
        items = c.cmd(b"APPEND ", qstr(folder), b" ", ("lit", b""))
        self.report("APPEND of one EMPTY message alone", c, items)
        self.report("NOOP (after it)", c, c.cmd(b"NOOP"))

        self.p("", "== keywords: how many distinct ones a folder takes")
        kwf = self.prefix + b"Keywords"
        c.cmd(b"CREATE ", qstr(kwf))
        n = 0
        last = None
        for i in range(0, 300, 10):
            kws = b" ".join(b"kw%03d" % j for j in range(i, i + 10))
            items = c.cmd(b"APPEND ", qstr(kwf), b" (" + kws + b") ",
                          ("lit", b"Subject: kw\r\n\r\nx\r\n"))
            if not ok(items):
                last = items
                break
            n = i + 10
        if last is None:
            self.p("::: 300 distinct keywords accepted")
        else:
            self.p("::: %d distinct keywords accepted in one folder; APPEND with 10 more: %s"
                   % (n, "; ".join(printable_reply(c, last))))
            # the exact limit, one keyword at a time
            k = n
            while True:
                items = c.cmd(b"APPEND ", qstr(kwf), b" (kx%03d) " % k,
                              ("lit", b"Subject: kw\r\n\r\nx\r\n"))
                if not ok(items):
                    self.p("::: exactly %d distinct keywords; the next APPEND: %s" % (
                        k, "; ".join(printable_reply(c, items))))
                    break
                k += 1
        self.report("SELECT of that folder (FLAGS, PERMANENTFLAGS)", c,
                    c.cmd(b"SELECT ", qstr(kwf)))
        items = c.cmd(b"UID STORE 1 +FLAGS (brandnewkeyword)")
        self.report("UID STORE 1 +FLAGS (brandnewkeyword) when the folder is full", c, items)
        c.cmd(b"UNSELECT")

        self.p("", "== SELECT / STATUS of the filled folder")
        self.report("SELECT (CONDSTORE)", c, c.cmd(b"SELECT ", qstr(folder), b" (CONDSTORE)"))
        c.cmd(b"UNSELECT")
        self.report("STATUS", c, c.cmd(
            b"STATUS ", qstr(folder),
            b" (MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN HIGHESTMODSEQ SIZE)"))
        c.close()

    def quota(self):
        self.p("", "== quota: APPEND beyond the quota (%s, STORAGE 1 KB set by the admin)"
               % self.a.quota_user)
        ad = Conn(self.a.host, self.a.port)
        ad.starttls(self.ctx, self.a.tls_name)
        items = ad.cmd(b"LOGIN ", qstr(self.a.admin.encode()), b" ",
                       qstr(os.environ["PROBE_ADMIN_PW"].encode()))
        if not ok(items):
            self.p("::: admin login refused: " + "; ".join(printable_reply(ad, items)))
            return
        root = b"user" + self.sep + self.a.quota_user.encode()
        self.report("SETQUOTA %s (STORAGE 1)" % root.decode(), ad,
                    ad.cmd(b"SETQUOTA ", qstr(root), b" (STORAGE 1)"))
        ad.close()
        c = self.login(self.a.quota_user)
        self.report("GETQUOTAROOT INBOX", c, c.cmd(b'GETQUOTAROOT "INBOX"'))
        big = b"Subject: big\r\n\r\n" + b"x" * 3000 + b"\r\n"
        self.report("APPEND 3 KB to INBOX", c, c.cmd(b'APPEND "INBOX" ', ("lit", big)))
        self.report("APPEND 3 KB as a synchronizing literal", c,
                    c.cmd(b'APPEND "INBOX" ', ("synclit", big)))
        c.close()


def _b64(b):
    import base64
    return base64.b64encode(b)


def compare(sent, got):
    """What the server did to a message: unchanged, or the differences."""
    if sent == got:
        return "identical to what was sent (%d bytes)" % len(sent)
    notes = ["%d bytes sent, %d returned" % (len(sent), len(got))]
    if len(sent) == len(got):
        diffs = [i for i in range(len(sent)) if sent[i] != got[i]]
        runs = []
        for i in diffs:
            if runs and runs[-1][1] == i - 1:
                runs[-1][1] = i
            else:
                runs.append([i, i])
        desc = ["@%d: %s -> %s" % (a, show(sent[a:b + 1]), show(got[a:b + 1]))
                for a, b in runs[:12]]
        notes.append("same length, %d byte(s) replaced: %s%s" % (
            len(diffs), ", ".join(desc), " ..." if len(runs) > 12 else ""))
    else:
        sl = sent.splitlines(keepends=True)
        gl = got.splitlines(keepends=True)
        d = [show(x) for x in difflib.diff_bytes(difflib.unified_diff, sl, gl, b"sent",
                                                   b"stored", n=0, lineterm=b"") if x]
        notes.append("diff: " + " | ".join(d[2:30]) + (" ..." if len(d) > 30 else ""))
    return "; ".join(notes)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--imaps-port", type=int, required=True)
    ap.add_argument("--ca", required=True)
    ap.add_argument("--tls-name", required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--quota-user", required=True)
    ap.add_argument("--admin", required=True)
    ap.add_argument("--only", default="caps,create,misc,append,quota")
    a = ap.parse_args()
    p = Probe(a)
    steps = a.only.split(",")
    p.capabilities()
    if "create" in steps:
        p.creates()
    if "misc" in steps:
        p.misc()
    if "append" in steps:
        p.appends()
    if "quota" in steps:
        p.quota()


if __name__ == "__main__":
    main()
