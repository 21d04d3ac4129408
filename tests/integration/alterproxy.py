#!/usr/bin/python3
"""A TCP proxy on 127.0.0.1 in front of a destination IMAP server that stores
every APPENDed message altered, the ways real servers do.

  alterproxy.py UPSTREAM_PORT PORT_FILE [--munge8bit] [--add-header LINE] [--crlf]

Forwards plain IMAP to 127.0.0.1:UPSTREAM_PORT.  Each literal of an APPEND
command (synchronizing, LITERAL+, or literal8) is read whole from the client,
changed, and sent on as a LITERAL+ literal of its new length (the proxy
answers a synchronizing literal's continuation itself; the upstream server
must offer LITERAL+, and a mailbox name sent as a literal would be changed
too: trasloco sends ordinary names quoted):
  --munge8bit       every byte >= 0x80 in the header section becomes 'X' (Cyrus'
                    munge8bit)
  --add-header L    the header field line L is put first (a server's trace field)
  --crlf            every bare LF becomes CR LF
Writes the port it listens on to PORT_FILE.  Runs until killed.
"""
import argparse
import asyncio
import re

ap = argparse.ArgumentParser()
ap.add_argument("upstream", type=int)
ap.add_argument("port_file")
ap.add_argument("--munge8bit", action="store_true")
ap.add_argument("--add-header", action="append", default=[])
ap.add_argument("--crlf", action="store_true")
ARGS = ap.parse_args()

LITERAL = re.compile(rb"(~?)\{(\d+)(\+?)\}\r\n$")


def alter(msg):
    if ARGS.crlf:
        msg = re.sub(rb"(?<!\r)\n", b"\r\n", msg)
    m = re.search(rb"\r?\n\r?\n", msg)
    head, body = (msg[:m.end()], msg[m.end():]) if m else (msg, b"")
    if ARGS.munge8bit:
        head = bytes(b if b < 0x80 else ord("X") for b in head)
    for line in reversed(ARGS.add_header):
        head = line.encode() + b"\r\n" + head
    return head + body


async def pump_client(creader, cwriter, swriter):
    """client -> server: APPEND literals altered, everything else as is."""
    in_append = False
    try:
        while True:
            line = await creader.readline()
            if not line:
                break
            if not in_append:
                parts = line.split(b" ", 2)
                in_append = len(parts) > 2 and parts[1].upper() == b"APPEND"
            lit = LITERAL.search(line)
            if not lit:
                swriter.write(line)
                await swriter.drain()
                in_append = False       # the command ends with this line
                continue
            n = int(lit.group(2))
            if not in_append:
                swriter.write(line)
                await swriter.drain()
                data = await creader.readexactly(n)
                swriter.write(data)
                await swriter.drain()
                continue
            if not lit.group(3):
                cwriter.write(b"+ go ahead\r\n")      # we take it, not the server
                await cwriter.drain()
            data = alter(await creader.readexactly(n))
            swriter.write(line[:lit.start()] + b"%s{%d+}\r\n" % (lit.group(1), len(data)) + data)
            await swriter.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        swriter.close()


async def pump_server(sreader, cwriter):
    """server -> client, as is (a LITERAL+ literal gets no continuation)."""
    try:
        while True:
            data = await sreader.read(65536)
            if not data:
                break
            cwriter.write(data)
            await cwriter.drain()
    except ConnectionError:
        pass
    finally:
        cwriter.close()


async def handle(creader, cwriter):
    try:
        sreader, swriter = await asyncio.open_connection("127.0.0.1", ARGS.upstream,
                                                         limit=1 << 24)
    except OSError:
        cwriter.close()
        return
    await asyncio.gather(pump_client(creader, cwriter, swriter), pump_server(sreader, cwriter))


async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", 0, limit=1 << 24)
    with open(ARGS.port_file, "w") as f:
        f.write("%d\n" % server.sockets[0].getsockname()[1])
    async with server:
        await server.serve_forever()


asyncio.run(main())
