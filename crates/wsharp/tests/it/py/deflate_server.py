"""Python websockets echo servers with permessage-deflate, one per server-side setting.
Prints 'name port' lines, then 'ready', then serves until killed."""

import asyncio

from websockets.asyncio.server import serve
from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory

SETTINGS = {
    "default": {},
    "server_no_context_takeover": {"server_no_context_takeover": True},
    "client_no_context_takeover": {"client_no_context_takeover": True},
    "windows_10_11": {"server_max_window_bits": 10, "client_max_window_bits": 11},
}


async def echo(ws):
    async for message in ws:
        await ws.send(message)


async def main():
    servers = []
    for name, params in SETTINGS.items():
        factory = ServerPerMessageDeflateFactory(**params)
        server = await serve(echo, "127.0.0.1", 0, extensions=[factory], compression=None, max_size=None).__aenter__()
        servers.append(server)
        print(name, server.sockets[0].getsockname()[1], flush=True)
    print("ready", flush=True)
    await asyncio.Future()


asyncio.run(main())
