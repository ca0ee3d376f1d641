"""Drives headless Chromium over the DevTools protocol (with the websockets library): runs a
script in a page and prints what it returns. Usage: chromium.py CHROMIUM SCRIPT_FILE
The script is a JavaScript expression that evaluates to a promise of a string."""

import asyncio
import json
import re
import subprocess
import sys
import tempfile
import urllib.request

from websockets.asyncio.client import connect

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--remote-debugging-port=0"]


async def main(chromium, script_file):
    expression = open(script_file, encoding="utf-8").read()
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as profile:
        browser = subprocess.Popen([chromium, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
                                   stderr=subprocess.PIPE, text=True)
        try:
            port = None
            for line in browser.stderr:
                m = re.search(r"DevTools listening on ws://127\.0\.0\.1:(\d+)/", line)
                if m:
                    port = m.group(1)
                    break
            if port is None:
                raise SystemExit("chromium did not start its DevTools endpoint")
            targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list"))
            page = next(t for t in targets if t["type"] == "page")
            async with connect(page["webSocketDebuggerUrl"], max_size=None) as cdp:
                await cdp.send(json.dumps({"id": 1, "method": "Runtime.evaluate", "params": {
                    "expression": expression, "awaitPromise": True, "returnByValue": True}}))
                while True:
                    reply = json.loads(await asyncio.wait_for(cdp.recv(), 60))
                    if reply.get("id") == 1:
                        break
            result = reply["result"]
            if "exceptionDetails" in result:
                raise SystemExit(f"page script failed: {result['exceptionDetails']}")
            print(result["result"]["value"])
        finally:
            browser.terminate()
            browser.wait(10)


asyncio.run(main(sys.argv[1], sys.argv[2]))
