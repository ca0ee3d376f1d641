"""A small driver for headless Chromium over the DevTools protocol, built on the websockets
library: start the browser, open pages, evaluate JavaScript in them."""

import asyncio
import itertools
import json
import re
import shutil
import subprocess
import tempfile
import urllib.request

from websockets.asyncio.client import connect

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--remote-debugging-port=0"]


class Page:
    def __init__(self, ws):
        self.ws = ws
        self.ids = itertools.count(1)

    async def call(self, method, **params):
        msg_id = next(self.ids)
        await self.ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        while True:
            reply = json.loads(await asyncio.wait_for(self.ws.recv(), 60))
            if reply.get("id") == msg_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]

    async def evaluate(self, expression):
        """Evaluates an expression (awaiting a promise) and returns its JSON value."""
        result = await self.call("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"page script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def wait_for(self, expression, timeout=20):
        """Polls until the expression is truthy; returns its value."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            value = await self.evaluate(expression)
            if value:
                return value
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"timed out waiting for {expression}")
            await asyncio.sleep(0.05)


class Browser:
    def __init__(self, chromium, extra_flags=()):
        self.chromium = chromium
        self.extra_flags = list(extra_flags)

    async def __aenter__(self):
        self.profile = tempfile.TemporaryDirectory(ignore_cleanup_errors=True)
        self.proc = subprocess.Popen([self.chromium, *FLAGS, *self.extra_flags,
                                      f"--user-data-dir={self.profile.name}", "about:blank"],
                                     stderr=subprocess.PIPE, text=True)
        for line in self.proc.stderr:
            m = re.search(r"DevTools listening on (ws://127\.0\.0\.1:(\d+)/\S+)", line)
            if m:
                self.port = m.group(2)
                self.browser = await connect(m.group(1), max_size=None)
                self.control = Page(self.browser)
                self.sockets = []
                return self
        raise SystemExit("chromium did not start its DevTools endpoint")

    async def new_page(self, url):
        target = await self.control.call("Target.createTarget", url=url)
        targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{self.port}/json/list"))
        ws_url = next(t["webSocketDebuggerUrl"] for t in targets if t["id"] == target["targetId"])
        ws = await connect(ws_url, max_size=None)
        self.sockets.append(ws)
        page = Page(ws)
        await page.wait_for("document.readyState === 'complete'")
        return page

    async def __aexit__(self, *exc):
        for ws in self.sockets:
            await ws.close()
        await self.browser.close()
        self.proc.terminate()
        self.proc.wait(10)
        # Chromium's helper processes may still write into the profile for a moment after the
        # browser process has exited; the profile is scratch space, so retry and then let it be.
        for _ in range(20):
            try:
                shutil.rmtree(self.profile.name)
                break
            except FileNotFoundError:
                break
            except OSError:
                await asyncio.sleep(0.1)
        shutil.rmtree(self.profile.name, ignore_errors=True)
