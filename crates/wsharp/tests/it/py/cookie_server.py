"""Python websockets server that sets a cookie in its 101 and reports, as its first message,
the Cookie header each upgrade request carried. Prints its port, then serves until killed."""

import asyncio

from websockets.asyncio.server import serve


def set_cookie(connection, request, response):
    response.headers["Set-Cookie"] = "visit=py-1; Path=/; HttpOnly"
    return response


async def handler(ws):
    await ws.send("cookie " + ws.request.headers.get("Cookie", "<none>"))
    await ws.wait_closed()


async def main():
    async with serve(handler, "127.0.0.1", 0, process_response=set_cookie) as server:
        print(server.sockets[0].getsockname()[1], flush=True)
        await asyncio.Future()


asyncio.run(main())
