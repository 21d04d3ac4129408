#!/usr/bin/python3
"""rateproxy.py: a counting TCP proxy for trasloco's throttle tests (stdlib only).

    rateproxy.py --upstream-port PORT --port-file F --out F

Listens on 127.0.0.1 (an ephemeral port, written to --port-file once it accepts
connections), forwards every connection to 127.0.0.1:PORT (a plain IMAP port), and
counts, per 100 ms since its start, the bytes it forwarded each way and the message
literals of FETCH responses (lines "* N FETCH (... BODY[] {n}") it forwarded to the
client and of APPENDs (a literal announced by a line starting "TAG APPEND" or, for
MULTIAPPEND, any further literal of that command) it forwarded to the server.  The
counts are written to --out as JSON on SIGTERM (and, the proxy going on, on SIGUSR1):
{"tick": 0.1, "down": [...], "up": [...], "fetched": [...], "appended": [...]} (lists
indexed by tick).

Its sockets toward trasloco keep small buffers (none of asyncio's, 16 kB of the
kernel's), so that what it counts as forwarded is what trasloco took, not what it
queued for it.
"""

import argparse
import asyncio
import json
import os
import re
import signal
import socket
import sys
import time

sys.dont_write_bytecode = True

TICK = 0.1
FETCH_RE = re.compile(rb"\* \d+ FETCH \([^\r\n]*BODY\[\] \{\d+\}\r\n")
LITERAL_RE = re.compile(rb"\{(\d+)\+?\}\r\n")


class Counts:
    def __init__(self):
        self.t0 = time.monotonic()
        self.v = {"down": [], "up": [], "fetched": [], "appended": []}

    def add(self, key, n):
        i = int((time.monotonic() - self.t0) / TICK)
        a = self.v[key]
        while len(a) <= i:
            a.append(0)
        a[i] += n


class LineScanner:
    """Finds the patterns in a byte stream cut anywhere, skipping literal data."""

    def __init__(self, counts, key, up):
        self.c, self.key, self.up = counts, key, up
        self.buf = b""
        self.skip = 0          # literal bytes still to pass
        self.in_append = False  # client->server: inside an APPEND command

    def feed(self, data):
        self.buf += data
        while True:
            if self.skip:
                n = min(self.skip, len(self.buf))
                self.buf = self.buf[n:]
                self.skip -= n
                if self.skip:
                    return
            nl = self.buf.find(b"\n")
            if nl < 0:
                if len(self.buf) > 1 << 20:
                    self.buf = self.buf[-4096:]
                return
            line, self.buf = self.buf[:nl + 1], self.buf[nl + 1:]
            lit = LITERAL_RE.search(line)
            if self.up:
                parts = line.split(b" ", 2)
                if len(parts) > 1 and parts[1].upper() == b"APPEND":
                    self.in_append = True
                if self.in_append and lit:
                    self.c.add(self.key, 1)
                if not lit:
                    self.in_append = False
            elif FETCH_RE.search(line):
                self.c.add(self.key, 1)
            if lit:
                self.skip = int(lit.group(1))


async def pipe(reader, writer, counts, key, scanner):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
            counts.add(key, len(data))
            scanner.feed(data)
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        try:
            writer.close()
        except Exception:  # noqa: BLE001
            pass


def small_buffers(writer):
    """count what trasloco took: drain() returns once asyncio's own buffer is empty
    and the kernel's (16 kB, doubled by Linux) is full"""
    writer.transport.set_write_buffer_limits(high=0)
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16384)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)


async def main_async(args):
    counts = Counts()

    async def handle(creader, cwriter):
        small_buffers(cwriter)
        try:
            ureader, uwriter = await asyncio.open_connection("127.0.0.1", args.upstream_port)
        except OSError:
            cwriter.close()
            return
        await asyncio.gather(
            pipe(ureader, cwriter, counts, "down", LineScanner(counts, "fetched", False)),
            pipe(creader, uwriter, counts, "up", LineScanner(counts, "appended", True)))

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    with open(args.port_file + ".tmp", "w") as f:
        f.write("%d\n" % port)
    os.rename(args.port_file + ".tmp", args.port_file)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGUSR1, lambda: write_counts(counts, args.out))
    await stop.wait()
    write_counts(counts, args.out)


def write_counts(counts, path):
    with open(path + ".tmp", "w") as f:
        json.dump(dict(counts.v, tick=TICK), f)
    os.rename(path + ".tmp", path)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--upstream-port", type=int, required=True)
    p.add_argument("--port-file", required=True)
    p.add_argument("--out", required=True)
    asyncio.run(main_async(p.parse_args()))


if __name__ == "__main__":
    main()
