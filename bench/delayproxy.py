#!/usr/bin/python3
"""bench/delayproxy.py: a TCP relay on loopback that adds a round-trip time (netem stand-in).

usage: delayproxy.py --rtt-ms MS [--host 127.0.0.1] [--ports-file F] [--stats F]
                     [NAME=]TARGET_PORT[/tls][@LISTEN_PORT] ...

For every TARGET_PORT it listens on LISTEN_PORT of HOST, or a free one (printed, and written to
--ports-file as "NAME LISTEN_PORT TARGET_PORT" lines once all listeners are up) and relays
each accepted connection to HOST:TARGET_PORT.  Each direction of a connection is a FIFO:
a chunk read at time t is written at t + RTT/2, in order, so one command/response
exchange costs RTT while pipelined commands and streamed data overlap as on a real link
(no bandwidth limit, loss or slow start is modelled).  At most 32 MiB wait per direction
(the reader pauses beyond that).  Binds and connects to loopback addresses only.

Statistics (plain IMAP only; "/tls" targets are relayed opaquely and only counted in bytes):
the relay follows the IMAP stream in both directions (lines, {N} and {N+} literals) and
counts, per connection, the commands the client sent by name (UID FETCH, APPEND, ...),
the messages inside APPEND commands (one per literal: MULTIAPPEND counts each), and
"waits": the times the client had to wait for the server before it could go on -- a
command started while no earlier command was still unanswered (measured when the
replies were delivered to the client, i.e. after the delay), plus every synchronizing
literal ({N} without '+', which needs the server's "+" first).  A client that pipelines
perfectly pays one wait per burst; one that sends a command, waits for its reply and
then sends the next pays one per command.  With --stats F, one JSON line per closed
connection is appended to F: {"name", "target", "opened", "closed", "c2s", "s2c",
"concurrent" (connections open on this listener when it opened), "user" (from LOGIN or
AUTHENTICATE PLAIN), "user_concurrent" (sessions of that user open on that server when
it logged in, this one included; a session ends when either side closes),
"commands": {...}, "append_messages", "waits", "sync_literals"}, written as each connection closes (and for
those still open when SIGTERM/SIGINT stops the relay).  Standard library only.
"""
import argparse
import asyncio
import base64
import binascii
import collections
import ipaddress
import json
import os
import re
import signal
import socket
import sys
import time

CHUNK = 256 * 1024
MAX_QUEUED = 32 << 20
LITERAL = re.compile(rb"\{(\d+)(\+?)\}\r?\n$")


class Stream:
    """Follows IMAP lines and literals in one direction; calls on_line(line, continued)
    for each line outside literals (continued: the line goes on after a literal)."""

    def __init__(self, on_line, on_literal=None):
        self.on_line, self.on_literal = on_line, on_literal
        self.lit = 0
        self.cont = False
        self.buf = b""

    def feed(self, data):
        i, n = 0, len(data)
        while i < n:
            if self.lit:
                take = min(self.lit, n - i)
                self.lit -= take
                i += take
                continue
            j = data.find(b"\n", i)
            if j < 0:
                self.buf = (self.buf + data[i:])[-65536:]
                return
            line = self.buf + data[i:j + 1] if self.buf else data[i:j + 1]
            self.buf = b""
            i = j + 1
            self.on_line(line, self.cont)
            m = LITERAL.search(line)
            if m:
                self.lit = int(m.group(1))
                self.cont = True
                if self.on_literal:
                    self.on_literal(m.group(2) == b"+")
            else:
                self.cont = False


def sasl_plain_user(b64):
    try:
        authz, authc, _ = base64.b64decode(b64).split(b"\0", 2)
    except (ValueError, binascii.Error):
        return None
    return (authz or authc).decode("utf-8", "replace")


def imap_string(tok):
    """the value of an IMAP atom or quoted string (None for a literal)"""
    if tok.startswith(b"{"):
        return None
    if tok.startswith(b'"'):
        m = re.match(rb'"((?:[^"\\]|\\.)*)"', tok)
        return re.sub(rb"\\(.)", rb"\1", m.group(1)).decode("utf-8", "replace") if m else None
    return tok.split()[0].decode("utf-8", "replace") if tok.split() else None


class ConnStats:
    def __init__(self, name, target, concurrent, parse, on_login):
        self.rec = {"name": name, "target": target, "opened": time.time(), "closed": None,
                    "c2s": 0, "s2c": 0, "concurrent": concurrent}
        self.commands = collections.Counter()
        self.append_messages = 0
        self.waits = 0
        self.sync_literals = 0
        self.outstanding = 0
        self.cur_verb = None
        self.in_auth = False   # AUTHENTICATE / IDLE: client lines are continuation data
        self.auth_plain = False
        self.user = None
        self.on_login = on_login
        self.parse = parse
        self.c2s = Stream(self._client_line, self._client_literal) if parse else None
        self.s2c = Stream(self._server_line) if parse else None

    def _client_line(self, line, cont):
        if cont:
            return
        if self.in_auth:
            if self.auth_plain and self.user is None:
                self._logged_in(sasl_plain_user(line.strip()))
            self.auth_plain = False
            return
        parts = line.split(None, 3)
        if len(parts) < 2:
            return
        verb = parts[1].upper().decode("ascii", "replace")
        if verb == "UID" and len(parts) > 2:
            verb = "UID " + parts[2].upper().decode("ascii", "replace")
        verb = verb.rstrip("\r\n")
        self.commands[verb] += 1
        self.cur_verb = verb
        if self.outstanding == 0:
            self.waits += 1
        self.outstanding += 1
        if verb in ("AUTHENTICATE", "IDLE"):
            self.in_auth = True
        if verb == "LOGIN" and len(parts) > 2:
            self._logged_in(imap_string(line.split(None, 2)[2]))
        elif verb == "AUTHENTICATE" and len(parts) > 2 and parts[2].upper() == b"PLAIN":
            ir = parts[3].strip() if len(parts) > 3 else b""
            if ir and ir != b"=":
                self._logged_in(sasl_plain_user(ir))
            else:
                self.auth_plain = True

    def _logged_in(self, user):
        if user and self.user is None:
            self.user = user
            self.rec["user"] = user
            self.rec["user_concurrent"] = self.on_login(self, True)

    def _client_literal(self, nonsync):
        if self.cur_verb == "APPEND":
            self.append_messages += 1
        if not nonsync:
            self.sync_literals += 1
            self.waits += 1

    def _server_line(self, line, cont):
        if cont or not line:
            return
        c = line[:1]
        if c == b"*" or c == b"+":
            return
        # a tagged completion
        if self.outstanding:
            self.outstanding -= 1
        self.in_auth = False

    def record(self):
        r = dict(self.rec)
        r["closed"] = r["closed"] or time.time()
        if self.parse:
            r.update(commands=dict(self.commands), append_messages=self.append_messages,
                     waits=self.waits, sync_literals=self.sync_literals)
        return r


class Listener:
    def __init__(self, proxy, name, target, tls):
        self.proxy, self.name, self.target, self.tls = proxy, name, target, tls
        self.open = 0
        self.port = None


class Proxy:
    def __init__(self, args):
        self.args = args
        self.delay = args.rtt_ms / 2000.0
        self.stats_fh = open(args.stats, "a", buffering=1) if args.stats else None
        self.live = set()
        self.sessions = collections.Counter()

    def write_stats(self, st):
        if self.stats_fh:
            self.stats_fh.write(json.dumps(st.record(), sort_keys=True) + "\n")

    def session(self, st, opening):
        """sessions of st.user open on st's server (src or dst, plain or TLS listener)"""
        key = (st.rec["name"][:3], st.user)
        self.sessions[key] += 1 if opening else -1
        return self.sessions[key]

    async def pump(self, reader, writer, parse_on_read, parse_on_write, on_eof):
        loop = asyncio.get_running_loop()
        q = collections.deque()
        queued = [0]
        more = asyncio.Event()
        room = asyncio.Event()
        room.set()
        eof = [False]

        async def feed():
            try:
                while True:
                    if queued[0] > MAX_QUEUED:
                        room.clear()
                        await room.wait()
                    data = await reader.read(CHUNK)
                    if parse_on_read:
                        parse_on_read(data)
                    q.append((loop.time() + self.delay, data))
                    queued[0] += len(data)
                    more.set()
                    if not data:
                        on_eof()
                        return
            except (ConnectionError, OSError):
                on_eof()
                q.append((loop.time(), b""))
                more.set()

        feeder = asyncio.create_task(feed())
        try:
            while True:
                while not q:
                    more.clear()
                    await more.wait()
                due, data = q.popleft()
                queued[0] -= len(data)
                if queued[0] <= MAX_QUEUED:
                    room.set()
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                if not data:
                    eof[0] = True
                    if writer.can_write_eof():
                        writer.write_eof()
                    return
                if parse_on_write:
                    parse_on_write(data)
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            feeder.cancel()

    async def relay(self, lst, cr, cw):
        host = self.args.host
        lst.open += 1
        st = ConnStats(lst.name, lst.target, lst.open, not lst.tls, self.session)
        self.live.add(st)
        ended = [False]

        def end():
            # the session is over when either side closes (the teardown through the
            # delays takes another RTT, during which the client may already open the next)
            if not ended[0]:
                ended[0] = True
                if st.user is not None:
                    self.session(st, False)
        try:
            try:
                sr, sw = await asyncio.open_connection(host, lst.target)
            except OSError:
                cw.close()
                return
            for w in (cw, sw):
                s = w.get_extra_info("socket")
                if s is not None:
                    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def up(data):
                st.rec["c2s"] += len(data)
                if st.c2s:
                    st.c2s.feed(data)

            def down(data):
                st.rec["s2c"] += len(data)
                if st.s2c:
                    st.s2c.feed(data)
            # client commands are parsed when the client sent them, server replies when
            # they reach the client: "waits" then counts what the client really waited for
            await asyncio.gather(self.pump(cr, sw, up, None, end),
                                 self.pump(sr, cw, None, down, end), return_exceptions=True)
            for w in (cw, sw):
                w.close()
        finally:
            end()
            lst.open -= 1
            st.rec["closed"] = time.time()
            self.live.discard(st)
            self.write_stats(st)

    async def main(self):
        listeners = []
        for spec in self.args.targets:
            name, _, rest = spec.rpartition("=")
            rest, _, listen = rest.partition("@")
            tls = rest.endswith("/tls")
            target = int(rest[:-4] if tls else rest)
            lst = Listener(self, name or str(target), target, tls)
            srv = await asyncio.start_server(
                lambda r, w, lst=lst: self.relay(lst, r, w), self.args.host,
                int(listen) if listen else 0)
            lst.port = srv.sockets[0].getsockname()[1]
            listeners.append((lst, srv))
        lines = "".join("%s %d %d\n" % (l.name, l.port, l.target) for l, _ in listeners)
        if self.args.ports_file:
            tmp = self.args.ports_file + ".tmp"
            with open(tmp, "w") as fh:
                fh.write(lines)
            os.replace(tmp, self.args.ports_file)
        sys.stdout.write(lines)
        sys.stdout.flush()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        for _, srv in listeners:
            srv.close()
        for st in list(self.live):
            self.write_stats(st)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rtt-ms", type=float, required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--ports-file")
    ap.add_argument("--stats")
    ap.add_argument("targets", nargs="+", metavar="[NAME=]PORT[/tls][@LISTEN]")
    args = ap.parse_args()
    if not ipaddress.ip_address(args.host).is_loopback:
        ap.error("--host must be a loopback address")
    asyncio.run(Proxy(args).main())


if __name__ == "__main__":
    main()
