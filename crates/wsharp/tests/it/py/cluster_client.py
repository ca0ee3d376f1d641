"""Python websockets client for the cluster tests: prints "ready", then each text message it
receives on a line of its own, until it has received COUNT, then closes.
Usage: cluster_client.py URL COUNT"""

import asyncio
import sys

from websockets.asyncio.client import connect


async def main(url, count):
    async with connect(url) as ws:
        print("ready", flush=True)
        for _ in range(count):
            print(await ws.recv(), flush=True)


asyncio.run(main(sys.argv[1], int(sys.argv[2])))
