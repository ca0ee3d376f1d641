"""Python websockets client for interop tests against a wsharp echo server.
Usage: client.py ws://127.0.0.1:PORT  -- exits 0 and prints OK when every check passed."""

import asyncio
import os
import sys

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

CODES = [1000, 1001, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4999]


class CheckFailed(Exception):
    """A check of this script failed (explicit, so that `python -O` cannot strip it)."""


def check(ok, what):
    if not ok:
        raise CheckFailed(what)


async def main(url):
    async with connect(url, max_size=None) as ws:
        await ws.send("héllo ✓")
        check(await ws.recv() == "héllo ✓", "text")
        await ws.send(b"\x00\x01\xfe\xff")
        check(await ws.recv() == b"\x00\x01\xfe\xff", "binary")
        await ws.send(["frag", "mented ", "téxt"])
        check(await ws.recv() == "fragmented téxt", "fragmented text")
        await ws.send([b"a" * 1000, b"b" * 3000])
        check(await ws.recv() == b"a" * 1000 + b"b" * 3000, "fragmented binary")
        big = os.urandom(16 << 20)
        await ws.send(big)
        check(await ws.recv() == big, "16 MiB")
        pong = await ws.ping(b"ping-payload")
        await asyncio.wait_for(pong, 5)
    for code in CODES:
        async with connect(url) as ws:
            await ws.close(code, f"reason {code}")
            check(ws.close_code == code, f"close {code}: server answered {ws.close_code}")
    print("OK")


asyncio.run(main(sys.argv[1]))
