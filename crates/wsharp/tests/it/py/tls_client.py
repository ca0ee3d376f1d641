"""Python websockets client over TLS against a wss echo server, for the interop tests.

Usage: tls_client.py URL CA [CERT KEY]. Trusts CA only (strict X.509 checks, as Python 3.13
does by default); presents CERT/KEY if given. Checks text, binary and a large message with
permessage-deflate, then closes with 4001 and reports what the server answered. Prints one
line per fact; a failed handshake prints 'refused: ERROR' and exits 3.
"""

import asyncio
import ssl
import sys

from websockets.asyncio.client import connect


async def main():
    url, ca = sys.argv[1], sys.argv[2]
    ctx = ssl.create_default_context(cafile=ca)
    ctx.verify_flags |= ssl.VERIFY_X509_STRICT
    if len(sys.argv) > 4:
        ctx.load_cert_chain(sys.argv[3], sys.argv[4])
    try:
        ws = await connect(url, ssl=ctx, proxy=None, compression="deflate", max_size=None)
    except Exception as e:  # noqa: BLE001 - the kind of failure is the test's output
        print(f"refused: {type(e).__name__}: {e}", flush=True)
        sys.exit(3)
    async with ws:
        ssl_object = ws.transport.get_extra_info("ssl_object")
        print("tls", ssl_object.version(), flush=True)
        print("alpn", ssl_object.selected_alpn_protocol(), flush=True)
        print("extensions", ws.response.headers.get("Sec-WebSocket-Extensions"), flush=True)
        for message in ["héllo ✓", b"\x00\x01\xfe\xff", "x" * 200_000]:
            await ws.send(message)
            echoed = await ws.recv()
            if echoed != message:
                print(f"mismatch: {len(echoed)} bytes back for {len(message)}", flush=True)
                sys.exit(1)
        print("echoed 3", flush=True)
        await ws.close(4001, "bye")
        print("closed", ws.close_code, ws.close_reason, flush=True)


asyncio.run(main())
