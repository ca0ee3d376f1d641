"""The page of `wsharp serve` in headless Chromium, for its cookie: opens a WebSocket to /Echo
twice from the page and prints, as JSON, document.cookie after each."""

import asyncio
import json
import sys

from cdp import Browser

OPEN_AND_CLOSE = """
new Promise((done, failed) => {
  const ws = new WebSocket(location.origin.replace(/^http/, 'ws') + '/Echo');
  ws.onopen = () => ws.close(1000);
  ws.onclose = () => done(document.cookie);
  ws.onerror = () => failed('no connection');
})
"""


async def main(chromium, url):
    async with Browser(chromium) as browser:
        page = await browser.new_page(url)
        await page.wait_for("document.title")
        first = await page.evaluate(OPEN_AND_CLOSE)
        second = await page.evaluate(OPEN_AND_CLOSE)
    print(json.dumps({"first": first, "second": second}))


asyncio.run(main(sys.argv[1], sys.argv[2]))
