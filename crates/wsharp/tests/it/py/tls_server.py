"""Python websockets echo server over TLS, for the wss interop tests.

Usage: tls_server.py CERT KEY [CLIENT_CA]. With CLIENT_CA, a client certificate signed by it
is required. Prints its port, then serves until killed. Each connection first gets one text
message naming the client certificate's subject CN (or "no client certificate"); then every
message is echoed, and a text message 'close CODE REASON' closes with that code and reason.
"""

import asyncio
import ssl
import sys

from websockets.asyncio.server import serve


def client_cn(ws):
    ssl_object = ws.transport.get_extra_info("ssl_object")
    cert = ssl_object.getpeercert() if ssl_object else None
    if not cert:
        return "no client certificate"
    for rdn in cert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return "client " + value
    return "client without CN"


async def handler(ws):
    await ws.send(client_cn(ws))
    async for message in ws:
        if isinstance(message, str) and message.startswith("close "):
            _, code, reason = message.split(" ", 2)
            await ws.close(int(code), reason)
            return
        await ws.send(message)


async def main():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(sys.argv[1], sys.argv[2])
    if len(sys.argv) > 3:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(sys.argv[3])
    async with serve(handler, "127.0.0.1", 0, ssl=ctx, max_size=None) as server:
        print(server.sockets[0].getsockname()[1], flush=True)
        await asyncio.Future()


asyncio.run(main())
