"""Python websockets echo server for interop tests. Prints its port, then serves until killed.
A text message 'close CODE REASON' makes it close with that code and reason."""

import asyncio
import sys

from websockets.asyncio.server import serve


async def handler(ws):
    async for message in ws:
        if isinstance(message, str) and message.startswith("close "):
            _, code, reason = message.split(" ", 2)
            await ws.close(int(code), reason)
            return
        await ws.send(message)


async def main():
    async with serve(handler, "127.0.0.1", 0, max_size=None, compression=None) as server:
        port = server.sockets[0].getsockname()[1]
        print(port, flush=True)
        await asyncio.Future()


asyncio.run(main())
