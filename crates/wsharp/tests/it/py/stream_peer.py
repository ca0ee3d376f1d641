"""Python websockets peer for the streamed-message tests, with permessage-deflate on.

server                       prints its port, then serves:
  /digest                    answers each message with "LEN SHA256HEX" (text)
  /big?n=N&frag=F            sends N pseudo-random bytes (in fragments of F bytes when F > 0),
                             then "LEN SHA256HEX" of them, then waits for the client to close
client URL                   receives one message, sends back "LEN SHA256HEX", prints it, and
                             waits for the server to close
"""

import asyncio
import hashlib
import os
import sys
from urllib.parse import parse_qs, urlparse

from websockets.asyncio.client import connect
from websockets.asyncio.server import serve


def digest(data):
    raw = data.encode() if isinstance(data, str) else data
    return f"{len(raw)} {hashlib.sha256(raw).hexdigest()}"


async def handler(ws):
    url = urlparse(ws.request.path)
    if url.path == "/digest":
        async for message in ws:
            await ws.send(digest(message))
    elif url.path == "/big":
        query = parse_qs(url.query)
        n = int(query["n"][0])
        frag = int(query.get("frag", ["0"])[0])
        data = os.urandom(n)
        if frag > 0:
            await ws.send([data[i : i + frag] for i in range(0, n, frag)])
        else:
            await ws.send(data)
        await ws.send(digest(data))
        await ws.wait_closed()


async def server():
    async with serve(handler, "127.0.0.1", 0, max_size=None) as s:
        print(s.sockets[0].getsockname()[1], flush=True)
        await asyncio.Future()


async def client(url):
    async with connect(url, max_size=None) as ws:
        message = await ws.recv()
        line = digest(message)
        await ws.send(line)
        print(line, flush=True)
        await ws.wait_closed()


if sys.argv[1] == "server":
    asyncio.run(server())
else:
    asyncio.run(client(sys.argv[2]))
