#!/usr/bin/python3
"""faultproxy.py: a fault-injecting TCP proxy for trasloco's integration tests.

Listens on 127.0.0.1, forwards every connection to an upstream 127.0.0.1:PORT (a
Dovecot of lib.sh), and breaks connections on demand.  Stdlib only (asyncio).

    faultproxy.py --upstream-port PORT [--listen-port 0] [--port-file F]
                  [--control F] [--fault RULE ...] [--log F] [--raw] [--record DIR]

On start it prints the listening port on stdout (one line, flushed) and writes it
to --port-file if given (atomically: the file appears complete).  It runs until
SIGTERM/SIGINT.

Rules
-----
A rule is a comma-separated list of key=value:

    on=TRIGGER,do=ACTION[,conn=SPEC][,times=N|always][,skip=N][,...parameters]

Triggers (where, in a connection's byte streams, the action happens):
  connect        as soon as the client connected (before any byte).
  greeting       right after the server's first line (the greeting) was forwarded.
  fetch-literal  server->client: after k=BYTES (default 0) bytes of a message literal
                 of a FETCH response (BODY[] / BODY[]<origin> / BINARY[] / RFC822,
                 announced as "{n}"), at least min=BYTES (default 1) long, went to the
                 client.  k is capped at n-1, so the literal is never complete.
                 pos=N: only the N-th or a later message literal of the response
                 to one command (default: any), e.g. pos=2 for a message that is
                 not the first of its FETCH response.
  append-literal client->server: after k=BYTES (default 0) bytes of a message literal
                 of an APPEND command ("{n}" or "{n+}"; every message of a
                 MULTIAPPEND counts) went to the server; min= and pos= (the
                 message's place in its MULTIAPPEND) as above.
  append-sent    client->server: right after a whole APPEND command (its last
                 literal and final CRLF) was forwarded to the server.  Dropping here
                 leaves it to the server whether the message is stored.
  append-reply   server->client: the server's tagged reply to an APPEND arrived at
                 the proxy; it is NOT forwarded (the action runs instead).  With
                 do=drop the message IS stored (when the reply was OK) and the client
                 never learns it.  reply=ok (default) only fires on an OK reply,
                 reply=any on any.
  s2c-bytes      after n=BYTES bytes from the server went to the client (counted
                 from the connection's start: works on TLS streams too).
  c2s-bytes      after n=BYTES bytes from the client went to the server.
  command        client->server: right after a command line whose command (after the
                 tag, and after "UID ") is verb=WORD (case-insensitive, e.g.
                 verb=SELECT, verb=FETCH, verb=APPEND) was forwarded.

Actions:
  drop      close both sides (FIN); rst=1 closes with a TCP RST instead.
  stall     stop forwarding in both directions for secs=S seconds (default 10), then
            go on (if both sides are still there; a side that closed meanwhile
            closes the other).  Bytes that arrived meanwhile are held, not lost.
            A new rule set (the control file written again) ends every stall at
            once: with a long secs=, a test holds a connection at a known point
            for as long as it needs and then lets it go.
  hidecap   from then on remove the capabilities cap=NAME[/NAME...] from every
            CAPABILITY list the server sends (greeting, response codes, untagged
            CAPABILITY): e.g. on=connect,do=hidecap,cap=MULTIAPPEND,times=always
            makes a client use its APPEND paths for servers without MULTIAPPEND.
  trickle   from then on forward server->client at rate=BYTES per second (default
            1000), in slices every 0.1 s, for secs=S seconds (default: for the rest
            of the connection); the log says "trickle ended" when it is over.

Selection:
  conn=SPEC  which connections: "*" (default), "N", "N-M", "N-", or a list
             "1,3" written as "1+3" (commas separate keys).  Connections are
             numbered from 1 in the order they were accepted since the rule set was
             loaded (a new rule set restarts the numbering).
  skip=N     let the first N opportunities (matching trigger points on matching
             connections) pass untouched (default 0).
  times=N    fire at most N times in all (default 1); times=always (or 0): every time.
A trigger point is checked against the rules in order; the first one that fires
wins for that point.

Control file
------------
--control FILE holds rules, one per line ('#' starts a comment, blank lines are
ignored); the proxy re-reads it (every 50 ms) whenever it is written again (new
contents, inode or mtime, even with the same rules), replacing the whole rule set:
counters and connection numbering start again, so rewriting a file re-arms its
rules.  An empty file means pure forwarding; until the file exists, the --fault rules
apply.  Write the file atomically (to a temporary name, then mv).

Forwarding
----------
Without faults the proxy is transparent, and it keeps the server's segmentation:
what one read brought from one side goes out to the other in one write (a FETCH
line and the start of its literal arrive together, as from the server itself),
except where an action cuts it.  Lines are held until their CRLF (to be parsed);
literals flow through as they come.

--raw: never parse the streams (implicit TLS upstreams); only connect, s2c-bytes,
c2s-bytes apply.  Without it, the parser turns itself off after a STARTTLS that the
server accepted.

Log
---
--log FILE (default stderr) gets one line per event, with milliseconds, e.g.
    12:00:01.250 rule set 2: on=fetch-literal,k=20000,do=drop
    12:00:01.300 conn 3 open (#1 of rule set 2)
    12:00:01.420 conn 3 FIRED fetch-literal/drop k=20000 (after 20000 of 123456 literal
                 bytes, message 1: * 2 FETCH (UID 7 BODY[] {123456})
    12:00:01.421 conn 3 closed: c2s 1234 bytes, s2c 45678 bytes
and "client EOF" / "server EOF" (also "... during the stall"), "stall released by
the new rule set", "trickle ended: full speed again".  Tests grep " FIRED " to
prove a fault actually happened, and compare the times of FIRED and "client EOF"
to see how long the client took to give up.

--record DIR: every byte forwarded, per connection and direction, in
DIR/conn-N.c2s and DIR/conn-N.s2c (N as in the log; both files are created when
the connection opens, so a client that sent nothing leaves an empty .c2s).

--check: only parse the --fault rules, print them and exit (2 on a bad rule).
"""

import argparse
import asyncio
import os
import re
import signal
import socket
import struct
import sys
import time

LINE_MAX = 1 << 20  # longest line held while parsing (IMAP lines are short)

TRIGGERS = {"connect", "greeting", "fetch-literal", "append-literal", "append-sent",
            "append-reply", "s2c-bytes", "c2s-bytes", "command"}
ACTIONS = {"drop", "stall", "trickle", "hidecap"}

LITERAL_RE = re.compile(rb"\{(\d+)(\+?)\}\r?\n$")
FETCH_BODY_RE = re.compile(rb"(BODY\[\]|BINARY\[\]|RFC822)(<\d+>)? ~?\{\d+\}\r?\n$", re.I)
TAG_CMD_RE = re.compile(rb"^(\S+) (?:UID )?([A-Za-z]+)", re.I)
APPEND_MBOX_LITERAL_RE = re.compile(rb"^\S+ APPEND ~?\{\d+\+?\}\r?\n$", re.I)


TCP_CLOSE, TCP_CLOSE_WAIT = 7, 8   # tcpi_state values (linux/tcp_states.h)


def peer_gone(writer):
    """Has the peer closed (FIN or RST) the socket under writer?  Asked of the
    kernel (TCP_INFO), so that it works even when nothing is being read."""
    try:
        sock = writer.get_extra_info("socket")
        state = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0]
    except (OSError, AttributeError, TypeError, IndexError):
        return False
    return state in (TCP_CLOSE, TCP_CLOSE_WAIT)


class RuleError(Exception):
    pass


class Rule:
    def __init__(self, text):
        self.text = text.strip()
        kv = {}
        for part in self.text.split(","):
            part = part.strip()
            if not part:
                continue
            if "=" not in part:
                raise RuleError("%r: expected key=value in %r" % (part, self.text))
            k, v = part.split("=", 1)
            kv[k.strip().lower()] = v.strip()
        self.on = kv.pop("on", None)
        self.do = kv.pop("do", None)
        if self.on not in TRIGGERS:
            raise RuleError("unknown or missing on= in %r" % self.text)
        if self.do not in ACTIONS:
            raise RuleError("unknown or missing do= in %r" % self.text)
        self.conn = self._conn_spec(kv.pop("conn", "*"))
        times = kv.pop("times", "1")
        self.times = 0 if times in ("always", "0") else self._int(times, "times")
        self.skip = self._int(kv.pop("skip", "0"), "skip")
        self.k = self._int(kv.pop("k", "0"), "k")
        self.min = self._int(kv.pop("min", "1"), "min")
        self.n = self._int(kv.pop("n", "0"), "n")
        self.pos = self._int(kv.pop("pos", "0"), "pos")
        secs = kv.pop("secs", None)
        try:
            self.secs = float(secs) if secs is not None else (10.0 if self.do == "stall" else 0.0)
        except ValueError:
            raise RuleError("secs=%r is not a number" % secs)
        if self.secs < 0:
            raise RuleError("secs must be >= 0")
        self.rate = self._int(kv.pop("rate", "1000"), "rate")
        self.rst = kv.pop("rst", "0") not in ("0", "no", "false")
        self.verb = kv.pop("verb", "").upper().encode()
        self.reply = kv.pop("reply", "ok").lower()
        self.caps = [c.upper().encode() for c in kv.pop("cap", "").split("/") if c]
        if self.do == "hidecap" and not self.caps:
            raise RuleError("do=hidecap needs cap=NAME[/NAME...] in %r" % self.text)
        if self.on == "command" and not self.verb:
            raise RuleError("on=command needs verb= in %r" % self.text)
        if self.on in ("s2c-bytes", "c2s-bytes") and self.n <= 0:
            raise RuleError("%s needs n=BYTES > 0 in %r" % (self.on, self.text))
        if self.rate <= 0:
            raise RuleError("rate must be > 0 in %r" % self.text)
        if kv:
            raise RuleError("unknown key(s) %s in %r" % (", ".join(sorted(kv)), self.text))
        self.seen = 0   # opportunities met
        self.fired = 0

    @staticmethod
    def _int(v, name):
        try:
            i = int(v)
        except ValueError:
            raise RuleError("%s=%r is not an integer" % (name, v))
        if i < 0:
            raise RuleError("%s must be >= 0" % name)
        return i

    @staticmethod
    def _conn_spec(spec):
        if spec == "*":
            return None
        ranges = []
        for p in spec.split("+"):
            m = re.fullmatch(r"(\d+)(?:-(\d*))?", p)
            if not m:
                raise RuleError("bad conn=%r" % spec)
            lo = int(m.group(1))
            if m.group(2) is None and not p.endswith("-"):
                hi = lo
            elif m.group(2):
                hi = int(m.group(2))
            else:
                hi = None
            ranges.append((lo, hi))
        return ranges

    def matches_conn(self, n):
        if self.conn is None:
            return True
        return any(lo <= n and (hi is None or n <= hi) for lo, hi in self.conn)

    def exhausted(self):
        return self.times and self.fired >= self.times

    def opportunity(self):
        """One matching trigger point: fire or not."""
        if self.exhausted():
            return False
        self.seen += 1
        if self.seen <= self.skip:
            return False
        self.fired += 1
        return True


class Proxy:
    def __init__(self, args):
        self.args = args
        self.upstream = (args.upstream_host, args.upstream_port)
        self.logf = open(args.log, "a", buffering=1) if args.log else sys.stderr
        self.rules = [Rule(t) for t in args.fault]
        self.ruleset = 1
        self.conn_rel = 0       # connections since the rule set was loaded
        self.conn_abs = 0
        self.control_sig = None
        self.conns = set()

    def log(self, msg):
        t = time.time()
        self.logf.write("%s.%03d %s\n" % (time.strftime("%H:%M:%S", time.localtime(t)),
                                         int(t * 1000) % 1000, msg))
        self.logf.flush()

    def load_control(self):
        path = self.args.control
        try:
            st = os.stat(path)
            with open(path, "rb") as f:
                data = f.read()
            sig = (st.st_ino, st.st_mtime_ns, data)
        except FileNotFoundError:
            data = b""
            sig = None
        if sig == self.control_sig:
            return
        rules = []
        for line in data.decode("utf-8", "replace").splitlines():
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            try:
                rules.append(Rule(line))
            except RuleError as e:
                self.log("control: ignoring bad rule: %s" % e)
        self.control_sig = sig
        self.rules = rules
        self.ruleset += 1
        self.conn_rel = 0
        self.log("rule set %d: %s" % (self.ruleset, "; ".join(r.text for r in rules) or
                                       "(none: plain forwarding)"))
        for c in self.conns:
            if c.resume_at > time.monotonic():
                c.log("stall released by the new rule set")
            c.resume_at = 0.0

    async def watch_control(self):
        while True:
            try:
                self.load_control()
            except Exception as e:  # never let the watcher die
                self.log("control: %s" % e)
            await asyncio.sleep(0.05)

    def find(self, conn, trigger, pred=None):
        """The first rule that fires at this trigger point of conn, or None."""
        for r in self.rules:
            if r.on != trigger or not r.matches_conn(conn.rel) or r.exhausted():
                continue
            if pred is not None and not pred(r):
                continue
            if r.opportunity():
                return r
        return None

    async def handle(self, creader, cwriter):
        self.conn_abs += 1
        self.conn_rel += 1
        conn = Conn(self, self.conn_abs, self.conn_rel, creader, cwriter)
        self.conns.add(conn)
        try:
            await conn.run()
        finally:
            self.conns.discard(conn)


class Side:
    """One direction's parser state."""

    def __init__(self, name):
        self.name = name
        self.total = 0          # bytes forwarded
        self.line = b""         # the physical line being assembled
        self.literal_left = 0   # bytes of the current literal still to come
        self.literal_len = 0
        self.literal_done = 0
        self.literal_kind = None  # "fetch" / "append" / None
        self.literal_head = b""
        self.literal_pos = 0    # message literals of the current command/response
        self.logical = b""      # first physical line of the current logical line
        self.in_literal_cont = False
        self.pending = bytearray()  # parsed bytes not yet forwarded
        self.rest = b""         # unparsed bytes after the parser went off


class Conn:
    def __init__(self, proxy, abs_n, rel_n, creader, cwriter):
        self.p = proxy
        self.n = abs_n
        self.rel = rel_n
        self.cr, self.cw = creader, cwriter
        self.sr = self.sw = None
        self.c2s = Side("c2s")
        self.s2c = Side("s2c")
        self.raw = proxy.args.raw
        self.closed = False
        self.resume_at = 0.0    # stall: no forwarding before this monotonic time
        self.trickle = 0        # bytes/s server->client, 0 = full speed
        self.trickle_until = 0.0  # monotonic end of the trickle, 0 = never
        self.greeted = False
        self.append_tags = set()  # tags of APPENDs fully sent, awaiting a reply
        self.hidden_caps = set()
        self.starttls_tag = None
        self.cur_append_tag = None
        self.tasks = []
        self.record = {}
        if proxy.args.record:
            for name, side in (("c2s", self.c2s), ("s2c", self.s2c)):
                self.record[id(side)] = open(os.path.join(
                    proxy.args.record, "conn-%d.%s" % (abs_n, name)), "wb", buffering=0)

    def log(self, msg):
        self.p.log("conn %d %s" % (self.n, msg))

    async def run(self):
        self.log("open (#%d of rule set %d)" % (self.rel, self.p.ruleset))
        try:
            self.sr, self.sw = await asyncio.open_connection(*self.p.upstream)
        except OSError as e:
            self.log("upstream connect failed: %s" % e)
            self.close(rst=False)
            return
        try:
            r = self.p.find(self, "connect")
            if r is not None:
                await self.fire(r, "connect", "")
            if not self.closed:
                self.tasks = [asyncio.ensure_future(self.pump(self.cr, self.sw, self.c2s)),
                              asyncio.ensure_future(self.pump(self.sr, self.cw, self.s2c))]
                await asyncio.wait(self.tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self.close(rst=False)
            for t in self.tasks:
                t.cancel()
            self.log("closed: c2s %d bytes, s2c %d bytes" % (self.c2s.total, self.s2c.total))
            for f in self.record.values():
                f.close()

    def close(self, rst):
        if self.closed:
            return
        self.closed = True
        for w in (self.cw, self.sw):
            if w is None:
                continue
            try:
                if rst:
                    sock = w.get_extra_info("socket")
                    if sock is not None:
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                        struct.pack("ii", 1, 0))
                    w.transport.abort()
                else:
                    w.close()
            except Exception:
                pass

    async def fire(self, rule, trigger, detail):
        self.log("FIRED %s/%s%s%s" % (trigger, rule.do, self.params(rule),
                                       (" (" + detail + ")") if detail else ""))
        if rule.do == "drop":
            self.close(rst=rule.rst)
        elif rule.do == "stall":
            self.resume_at = max(self.resume_at, time.monotonic() + rule.secs)
        elif rule.do == "hidecap":
            self.hidden_caps.update(rule.caps)
        elif rule.do == "trickle":
            self.trickle = rule.rate
            self.trickle_until = time.monotonic() + rule.secs if rule.secs else 0.0

    @staticmethod
    def params(rule):
        out = []
        if rule.on in ("fetch-literal", "append-literal"):
            out.append("k=%d" % rule.k)
        if rule.n:
            out.append("n=%d" % rule.n)
        if rule.do == "stall" or (rule.do == "trickle" and rule.secs):
            out.append("secs=%g" % rule.secs)
        if rule.do == "trickle":
            out.append("rate=%d" % rule.rate)
        if rule.caps:
            out.append("cap=%s" % "/".join(c.decode() for c in rule.caps))
        if rule.rst:
            out.append("rst")
        return (" " + " ".join(out)) if out else ""

    async def wait_stall(self):
        while not self.closed:
            left = self.resume_at - time.monotonic()
            if left <= 0:
                return
            # A side that hung up during the stall ends the connection now (its
            # EOF is seen even though nothing is read), so that the log tells
            # when the client gave up.
            for name, r, w in (("client", self.cr, self.cw), ("server", self.sr, self.sw)):
                if r is not None and (getattr(r, "_eof", False) or peer_gone(w)):
                    self.log("%s EOF during the stall" % name)
                    self.close(rst=False)
                    return
            await asyncio.sleep(min(left, 0.05))

    def trickling(self):
        if self.trickle and self.trickle_until and time.monotonic() >= self.trickle_until:
            self.log("trickle ended: full speed again")
            self.trickle = 0
        return self.trickle

    async def send(self, writer, side, data):
        """Forward data (honouring stall and trickle); False when closed."""
        while data:
            await self.wait_stall()
            if self.closed:
                return False
            trickle = self.trickling() if side is self.s2c else 0
            if trickle:
                piece = max(1, trickle // 10)
                chunk, data = data[:piece], data[piece:]
                t0 = time.monotonic()
            else:
                chunk, data = data, b""
            try:
                writer.write(chunk)
                await writer.drain()
            except (ConnectionError, OSError):
                self.close(rst=False)
                return False
            side.total += len(chunk)
            if self.record:
                self.record[id(side)].write(chunk)
            if trickle:
                await asyncio.sleep(max(0.0, 0.1 - (time.monotonic() - t0)))
        return not self.closed

    async def pump(self, reader, writer, side):
        try:
            while not self.closed:
                await self.wait_stall()
                if self.closed:
                    break
                try:
                    data = await reader.read(65536)
                except (ConnectionError, OSError):
                    data = b""
                if not data:
                    if not self.closed:
                        self.log("%s EOF" % ("client" if side is self.c2s else "server"))
                        if side.line:   # a last partial line still goes through
                            self.emit(side, side.line)
                            side.line = b""
                        await self.flush(side, writer)
                    break
                if not await self.feed(side, writer, data):
                    break
        finally:
            self.close(rst=False)

    # --- the parser: forwards data, stopping at trigger points ---------------

    async def bytes_trigger(self, side, writer, data):
        """Forward raw data, honouring s2c-bytes / c2s-bytes rules."""
        trig = "s2c-bytes" if side is self.s2c else "c2s-bytes"
        while data:
            cut = None
            for r in self.p.rules:
                if (r.on == trig and r.matches_conn(self.rel) and not r.exhausted()
                        and side.total < r.n <= side.total + len(data)):
                    cut = r.n - side.total if cut is None else min(cut, r.n - side.total)
            if cut is None:
                return await self.send(writer, side, data)
            if not await self.send(writer, side, data[:cut]):
                return False
            data = data[cut:]
            r = self.p.find(self, trig, lambda r: r.n == side.total)
            if r is not None:
                await self.fire(r, trig, "")
                if self.closed:
                    return False
        return True

    # Bytes the parser let through wait in side.pending and go out together,
    # once per chunk read from the other side (or right before an action), so
    # that the client sees the server's segmentation (e.g. a FETCH line and the
    # start of its literal in one read), not one write per parsed piece.

    @staticmethod
    def emit(side, data):
        side.pending += data

    async def flush(self, side, writer):
        if not side.pending:
            return not self.closed
        data, side.pending = bytes(side.pending), bytearray()
        return await self.bytes_trigger(side, writer, data)

    async def fire_at(self, side, writer, rule, trigger, detail):
        """Forward what is pending, then run the rule's action."""
        if not await self.flush(side, writer):
            return False
        await self.fire(rule, trigger, detail)
        return not self.closed

    async def feed(self, side, writer, data):
        if self.raw:
            return await self.bytes_trigger(side, writer, data)
        if not await self.parse(side, writer, data):
            return False
        if self.raw and side.rest:
            # The parser went off (STARTTLS) in the middle of this chunk.
            self.emit(side, side.rest)
            side.rest = b""
        return await self.flush(side, writer)

    async def parse(self, side, writer, data):
        while data:
            if side.literal_left > 0:
                take = min(len(data), side.literal_left)
                rule = None
                if side.literal_kind is not None:
                    trig = "fetch-literal" if side.literal_kind == "fetch" else "append-literal"
                    # Where inside this chunk would a rule's k fall?
                    for r in self.p.rules:
                        if (r.on == trig and r.matches_conn(self.rel) and not r.exhausted()
                                and side.literal_len >= r.min
                                and (r.pos == 0 or side.literal_pos >= r.pos)):
                            k = min(r.k, side.literal_len - 1)
                            if side.literal_done <= k < side.literal_done + take:
                                take = k - side.literal_done
                                rule = (trig, r)
                                break
                self.emit(side, data[:take])
                side.literal_done += take
                side.literal_left -= take
                data = data[take:]
                if rule is not None:
                    trig, r = rule
                    # This literal is one opportunity for r (counted once).
                    if r.opportunity():
                        if not await self.fire_at(side, writer, r, trig,
                                                  "after %d of %d literal bytes, message %d: %s" % (
                                                      side.literal_done, side.literal_len,
                                                      side.literal_pos,
                                                      self.short(side.literal_head))):
                            return False
                    side.literal_kind = None  # a literal offers one chance only
                continue
            # Line mode: hold bytes until the end of the physical line.
            nl = data.find(b"\n")
            if nl < 0:
                side.line += data
                if len(side.line) > LINE_MAX:
                    # Not IMAP as we know it: stop parsing this connection.
                    self.log("line longer than %d bytes: parser off" % LINE_MAX)
                    self.raw = True
                    self.emit(side, side.line)
                    side.line = b""
                return True
            line = side.line + data[:nl + 1]
            side.line = b""
            data = data[nl + 1:]
            if not await self.on_line(side, writer, line):
                return False
            if self.raw:
                side.rest = data
                return True
        return True

    def hide_caps(self, line):
        end = len(line) - len(line.rstrip(b"\r\n"))
        body, eol = (line[:-end], line[-end:]) if end else (line, b"")
        out = []
        for word in body.split(b" "):
            bare = word.rstrip(b"]")
            if bare.upper() in self.hidden_caps and out:
                if len(bare) < len(word):       # "LAST]": keep the bracket
                    out[-1] += word[len(bare):]
                continue
            out.append(word)
        return b" ".join(out) + eol

    @staticmethod
    def short(b, n=80):
        s = b.rstrip(b"\r\n").decode("latin-1")
        return s if len(s) <= n else s[:n] + "..."

    async def on_line(self, side, writer, line):
        """A complete physical line: forward it and look at trigger points."""
        first = not side.in_literal_cont
        if first:
            side.logical = line
        if side is self.s2c and self.hidden_caps and b"CAPABILITY" in line.upper():
            line = self.hide_caps(line)
        m = LITERAL_RE.search(line)
        if side is self.s2c:
            if first and not self.greeted:
                self.greeted = True
                self.emit(side, line)
                r = self.p.find(self, "greeting")
                if r is not None:
                    return await self.fire_at(side, writer, r, "greeting", self.short(line))
                return True
            if first:
                tm = TAG_CMD_RE.match(line)
                tag = tm.group(1) if tm else None
                if tag is not None and tag not in (b"*", b"+"):
                    side.literal_pos = 0    # a tagged reply ends a command
                if tag is not None and tag in self.append_tags:
                    self.append_tags.discard(tag)
                    ok = line[len(tag) + 1:len(tag) + 3].upper() == b"OK"
                    r = self.p.find(self, "append-reply",
                                    lambda r: r.reply == "any" or ok)
                    if r is not None:
                        # The reply is held back: the client never sees it.
                        if not await self.fire_at(side, writer, r, "append-reply",
                                                  "held: " + self.short(line)):
                            return False
                if tag is not None and tag == self.starttls_tag:
                    self.starttls_tag = None
                    if line[len(tag) + 1:len(tag) + 3].upper() == b"OK":
                        self.emit(side, line)
                        self.log("STARTTLS accepted: parser off")
                        self.raw = True
                        return True
            self.emit(side, line)
            if m:
                side.literal_len = side.literal_left = int(m.group(1))
                side.literal_done = 0
                side.literal_kind = "fetch" if FETCH_BODY_RE.search(line) else None
                if side.literal_kind:
                    side.literal_pos += 1
                side.literal_head = side.logical if first else side.logical + b" ... " + line
                side.in_literal_cont = True
            else:
                side.in_literal_cont = False
            return True

        # client -> server
        if first:
            tm = TAG_CMD_RE.match(line)
            verb = tm.group(2).upper() if tm else b""
            self.cur_append_tag = tm.group(1) if (tm and verb == b"APPEND") else None
            if verb == b"STARTTLS":
                self.starttls_tag = tm.group(1)
        self.emit(side, line)
        if first:
            tm = TAG_CMD_RE.match(line)
            if tm:
                verb = tm.group(2).upper()
                r = self.p.find(self, "command", lambda r: r.verb == verb)
                if r is not None:
                    if not await self.fire_at(side, writer, r, "command", self.short(line)):
                        return False
        if m:
            side.literal_len = side.literal_left = int(m.group(1))
            side.literal_done = 0
            is_mbox = first and APPEND_MBOX_LITERAL_RE.match(line)
            side.literal_kind = ("append" if self.cur_append_tag is not None and not is_mbox
                                 else None)
            if first:
                side.literal_pos = 0
            if side.literal_kind:
                side.literal_pos += 1
            side.literal_head = side.logical if first else line
            side.in_literal_cont = True
        else:
            side.in_literal_cont = False
            if self.cur_append_tag is not None:
                tag, self.cur_append_tag = self.cur_append_tag, None
                self.append_tags.add(tag)
                r = self.p.find(self, "append-sent")
                if r is not None:
                    if not await self.fire_at(side, writer, r, "append-sent",
                                              "tag " + tag.decode("latin-1")):
                        return False
        return True


async def main_async(args):
    proxy = Proxy(args)
    if args.control:
        proxy.load_control()
    else:
        proxy.log("rules: %s" % ("; ".join(r.text for r in proxy.rules) or
                                 "(none: plain forwarding)"))
    server = await asyncio.start_server(proxy.handle, args.listen_host, args.listen_port,
                                        reuse_address=True)
    port = server.sockets[0].getsockname()[1]
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % port)
        os.replace(tmp, args.port_file)
    sys.stdout.write("%d\n" % port)
    sys.stdout.flush()
    proxy.log("listening on %s:%d, upstream %s:%d" % (args.listen_host, port,
                                                      *proxy.upstream))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    watcher = asyncio.ensure_future(proxy.watch_control()) if args.control else None
    await stop.wait()
    if watcher:
        watcher.cancel()
    server.close()
    for c in list(proxy.conns):
        c.close(rst=False)
    proxy.log("stopped")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="See the top of this file for the rule syntax.")
    ap.add_argument("--upstream-port", type=int, help="the server's port (required)")
    ap.add_argument("--upstream-host", default="127.0.0.1")
    ap.add_argument("--listen-host", default="127.0.0.1")
    ap.add_argument("--listen-port", type=int, default=0, help="default 0: any free port")
    ap.add_argument("--port-file", help="write the listening port there")
    ap.add_argument("--control", help="file of rules, re-read whenever it is written")
    ap.add_argument("--fault", action="append", default=[], metavar="RULE",
                    help="a rule (repeatable): the rules until a --control file exists")
    ap.add_argument("--log", help="event log (default stderr)")
    ap.add_argument("--raw", action="store_true",
                    help="do not parse the streams (TLS): byte-count triggers only")
    ap.add_argument("--record", metavar="DIR",
                    help="write every connection's bytes to DIR/conn-N.c2s and .s2c")
    ap.add_argument("--check", action="store_true",
                    help="only check the --fault rules and exit")
    args = ap.parse_args()
    try:
        rules = [Rule(t) for t in args.fault]
    except RuleError as e:
        ap.error(str(e))
    if args.check:
        for r in rules:
            print("ok: %s" % r.text)
        return 0
    if args.upstream_port is None:
        ap.error("--upstream-port is required")
    try:
        asyncio.run(main_async(args))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
