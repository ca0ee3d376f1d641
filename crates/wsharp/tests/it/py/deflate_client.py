"""Python websockets client with permessage-deflate against a wsharp echo server: every
combination of the four parameters, 1000 messages each (half of them fragmented), compared
byte for byte. Usage: deflate_client.py ws://127.0.0.1:PORT  -- prints OK on success."""

import asyncio
import itertools
import random
import sys

from websockets.asyncio.client import connect
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory

WINDOWS = [None, 9, 12, 15]


class CheckFailed(Exception):
    """A check of this script failed (explicit, so that `python -O` cannot strip it)."""


def check(ok, what):
    if not ok:
        raise CheckFailed(what)


def messages(seed):
    rng = random.Random(seed)
    words = ["alpha", "beta", "gamma", "délta", "ε", "🙂", "websocket", "deflate"]
    for i in range(1000):
        size = rng.choice([0, 1, 10, 100, 1000, 5000, 20000])
        if i % 3 == 0:
            yield rng.randbytes(min(size, 2000))
        elif i % 3 == 1:
            yield " ".join(rng.choice(words) for _ in range(size // 6 + 1))
        else:
            yield (b"abcabcabd" * (size // 9 + 1))[:size]


def split(message, parts):
    step = max(1, len(message) // parts)
    chunks = [message[i:i + step] for i in range(0, len(message), step)] or [message[:0]]
    return chunks


async def run(url, params):
    factory = ClientPerMessageDeflateFactory(**params)
    async with connect(url, extensions=[factory], compression=None, max_size=None) as ws:
        ext = ws.response.headers.get("Sec-WebSocket-Extensions", "")
        check(ext.startswith("permessage-deflate"), f"{params}: not negotiated: {ext!r}")
        for i, message in enumerate(messages(str(params))):
            if i % 2:
                await ws.send(split(message, 3))
            else:
                await ws.send(message)
            echo = await ws.recv()
            check(echo == message, f"{params}: message {i} differs")
    return ext


async def main(url):
    combos = 0
    for snct, cnct, smwb, cmwb in itertools.product([False, True], [False, True], WINDOWS, WINDOWS + [True]):
        params = {"server_no_context_takeover": snct, "client_no_context_takeover": cnct,
                  "server_max_window_bits": smwb, "client_max_window_bits": cmwb}
        await run(url, params)
        combos += 1
    print(f"OK {combos} combinations")


asyncio.run(main(sys.argv[1]))
