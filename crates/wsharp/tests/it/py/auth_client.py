"""Python websockets client: connects to URI (credentials in its user-info, sent as Basic by
websockets), prints the first message, or 'status N' when the upgrade is refused."""

import asyncio
import sys

from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus


async def main(uri):
    try:
        async with connect(uri, open_timeout=10) as ws:
            await ws.send("hello")
            print(await ws.recv(), flush=True)
    except InvalidStatus as e:
        print("status", e.response.status_code, flush=True)


asyncio.run(main(sys.argv[1]))
