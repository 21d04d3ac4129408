#!/usr/bin/python3
"""A TCP proxy on 127.0.0.1 that breaks one message's FETCH responses.

  mangleproxy.py UPSTREAM_PORT PORT_FILE UID [UID ...]

Forwards plain IMAP to 127.0.0.1:UPSTREAM_PORT.  Every server line that
starts a FETCH response for one of the given UIDs ("* N FETCH (UID u ...")
gets a stray parenthesis, which no IMAP parser accepts: the client's
session dies on it, whichever command asked.  Writes the port it listens
on to PORT_FILE.  Runs until killed.
"""
import asyncio
import re
import sys

UPSTREAM = int(sys.argv[1])
BAD = {int(u) for u in sys.argv[3:]}
START = re.compile(rb"^\* \d+ FETCH \(UID (\d+)")


async def pump_server(reader, writer):
    """server -> client, line by line (literals pass through as data)."""
    literal = 0
    try:
        while True:
            if literal > 0:
                chunk = await reader.read(min(literal, 65536))
                if not chunk:
                    break
                literal -= len(chunk)
                writer.write(chunk)
                await writer.drain()
                continue
            line = await reader.readline()
            if not line:
                break
            m = START.match(line)
            if m and int(m.group(1)) in BAD:
                line = line.replace(b"FETCH (", b"FETCH ((", 1)
            lit = re.search(rb"\{(\d+)\}\r\n$", line)
            if lit:
                literal = int(lit.group(1))
            writer.write(line)
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


async def pump(reader, writer):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


async def handle(creader, cwriter):
    try:
        sreader, swriter = await asyncio.open_connection("127.0.0.1", UPSTREAM, limit=1 << 24)
    except OSError:
        cwriter.close()
        return
    await asyncio.gather(pump(creader, swriter), pump_server(sreader, cwriter))


async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", 0, limit=1 << 24)
    with open(sys.argv[2], "w") as f:
        f.write("%d\n" % server.sockets[0].getsockname()[1])
    async with server:
        await server.serve_forever()


asyncio.run(main())
