(async () => {
  const ws = new WebSocket(globalThis.WSHARP_URL);
  ws.binaryType = "arraybuffer";
  await new Promise((resolve, reject) => { ws.onopen = resolve; ws.onerror = () => reject(new Error("connect failed")); });
  const queue = [];
  let waiting = null;
  ws.onmessage = (e) => { if (waiting) { const w = waiting; waiting = null; w(e.data); } else { queue.push(e.data); } };
  const next = () => queue.length ? Promise.resolve(queue.shift()) : new Promise((r) => { waiting = r; });
  const results = { extensions: ws.extensions, text: [], binary: [] };
  for (const n of [0, 10, 1000, 100000]) {
    const text = "héllo wsharp ✓ ".repeat(Math.ceil(n / 15)).slice(0, n);
    ws.send(text);
    results.text.push((await next()) === text);
    const bin = new Uint8Array(n).map((_, i) => (i * 31 + (i >> 8)) & 255);
    ws.send(bin);
    const got = new Uint8Array(await next());
    results.binary.push(got.length === n && got.every((v, i) => v === bin[i]));
  }
  const closed = new Promise((r) => { ws.onclose = (e) => r(e.code); });
  ws.close(1000, "done");
  results.close = await closed;
  return JSON.stringify(results);
})()
