"""Python websockets echo server demanding HTTP Basic authentication (its own basic_auth).
Usage: basic_auth_server.py USER PASSWORD. Prints its port, then serves until killed."""

import asyncio
import sys

from websockets.asyncio.server import basic_auth, serve


async def handler(ws):
    # Tells the client who it logged in as, then echoes.
    await ws.send("user " + ws.username)
    async for message in ws:
        await ws.send(message)


async def main(user, password):
    check = basic_auth(realm="py-realm", credentials=(user, password))
    async with serve(handler, "127.0.0.1", 0, process_request=check) as server:
        print(server.sockets[0].getsockname()[1], flush=True)
        await asyncio.Future()


asyncio.run(main(sys.argv[1], sys.argv[2]))
