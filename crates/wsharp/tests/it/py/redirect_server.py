"""Python websockets server that redirects upgrades, for the client's redirect tests.
Usage: redirect_server.py OTHER_PORT. Prints its port, then serves until killed.

  /to/CODE/PATH     CODE (301, 302, 303, 307, 308) to PATH on this server
  /other/PATH       307 to ws://localhost:OTHER_PORT/PATH (another origin)
  /chain/N          302 to /chain/N-1; /chain/0 is /record
  /loop             302 to /loop
  /nowhere          302 without a Location
  /record           accepts, and sends what the request carried:
                    'authorization=... cookie=... path=...' (and ' proxy-authorization=...'
                    if the request carried one)
"""

import asyncio
import sys
from http import HTTPStatus

from websockets.asyncio.server import serve

OTHER_PORT = int(sys.argv[1])


def redirect(connection, code, location):
    response = connection.respond(HTTPStatus(code), "")
    if location is not None:
        response.headers["Location"] = location
    return response


def process_request(connection, request):
    path = request.path
    if path.startswith("/to/"):
        _, _, code, rest = path.split("/", 3)
        return redirect(connection, int(code), "/" + rest)
    if path.startswith("/other/"):
        return redirect(connection, 307, f"ws://localhost:{OTHER_PORT}/" + path[len("/other/"):])
    if path.startswith("/chain/"):
        n = int(path[len("/chain/"):])
        return redirect(connection, 302, f"/chain/{n - 1}" if n > 0 else "/record")
    if path == "/loop":
        return redirect(connection, 302, "/loop")
    if path == "/nowhere":
        return redirect(connection, 302, None)
    return None


async def record(ws):
    h = ws.request.headers
    line = f"authorization={h.get('Authorization', '-')} cookie={h.get('Cookie', '-')} path={ws.request.path}"
    if "Proxy-Authorization" in h:
        line += " proxy-authorization=" + h["Proxy-Authorization"]
    await ws.send(line)
    await ws.wait_closed()


async def main():
    async with serve(record, "127.0.0.1", 0, process_request=process_request) as server:
        print(server.sockets[0].getsockname()[1], flush=True)
        await asyncio.Future()


asyncio.run(main())
