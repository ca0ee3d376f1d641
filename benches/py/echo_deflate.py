"""Echo server on the Python websockets library with its defaults (permessage-deflate on), a
peer of the wsharp benchmark suite. Usage: echo_deflate.py HOST:PORT"""

import asyncio
import sys

from websockets.asyncio.server import serve


async def echo(ws):
    async for message in ws:
        await ws.send(message)


async def main(addr):
    host, port = addr.rsplit(":", 1)
    async with serve(echo, host, int(port), max_size=None):
        await asyncio.Future()


asyncio.run(main(sys.argv[1]))
