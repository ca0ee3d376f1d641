"""The page of `wsharp serve` in headless Chromium: the echo test, a binary round trip, two
pages chatting through a broadcast, and the server's close code reaching the page when the
server stops. Usage: page_test.py CHROMIUM http(s)://127.0.0.1:PORT/ SERVER_PID [SPKI]
With SPKI (base64 SHA-256 of the server certificate's public key), Chromium trusts that
certificate for this run only (--ignore-certificate-errors-spki-list, which needs the
--user-data-dir the driver gives it). Prints one JSON object with what the pages showed."""

import asyncio
import json
import os
import signal
import sys

from cdp import Browser


async def main(chromium, url, server_pid, spki=None):
    out = {}
    flags = [f"--ignore-certificate-errors-spki-list={spki}"] if spki else []
    async with Browser(chromium, flags) as browser:
        a = await browser.new_page(url)
        out["title"] = await a.wait_for("document.title")
        out["onload"] = await a.evaluate("window.onloadEcho")
        out["echo"] = await a.evaluate("echoSend('héllo from the page')")
        out["echo_log"] = await a.evaluate("document.getElementById('echo-log').textContent")
        out["echo_status"] = await a.evaluate("document.getElementById('echo-status').textContent")
        out["binary"] = await a.evaluate("binaryTest(70000)")
        out["binary_text"] = await a.evaluate("document.getElementById('binary-result').textContent")
        b = await browser.new_page(url)
        await a.evaluate("chatJoin('alice')")
        await b.evaluate("chatJoin('bob')")
        await a.wait_for("document.getElementById('chat-log').textContent.includes('bob has logged in!')")
        await b.evaluate("chatSend('hello alice')")
        out["chat_a"] = await a.wait_for(
            "document.getElementById('chat-log').textContent.includes('bob: hello alice') && document.getElementById('chat-log').textContent")
        out["chat_b"] = await b.wait_for(
            "document.getElementById('chat-log').textContent.includes('bob: hello alice') && document.getElementById('chat-log').textContent")
        os.kill(server_pid, signal.SIGINT)
        out["close_echo"] = await a.wait_for(
            "document.getElementById('echo-status').textContent.startsWith('closed') && document.getElementById('echo-status').textContent")
        out["close_chat"] = await b.wait_for(
            "document.getElementById('chat-status').textContent.startsWith('closed') && document.getElementById('chat-status').textContent")
    print(json.dumps(out, ensure_ascii=False))


asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), *sys.argv[4:5]))
