// Node `ws` as a client of wsharp's echo servers, across every permessage-deflate setting
// `ws` offers: server/client_no_context_takeover, server_max_window_bits and
// client_max_window_bits (absent, bare, 8, 9, 12, 15). Each setting sends the same seeded mix
// of text and binary messages, whole and fragmented, many of them repeating earlier ones so
// the compressors refer back across messages, and compares every echo byte for byte.
//
// Usage: node deflate_matrix.js URL...   (each URL an echo server; every setting runs on each)
// Prints "combinations N messages M" and exits 0, or prints the failures and exits 1.
'use strict';

const WebSocket = require('ws');

const urls = process.argv.slice(2);
if (urls.length === 0) {
  console.error('usage: node deflate_matrix.js URL...');
  process.exit(2);
}
setTimeout(() => {
  console.error('deflate_matrix: timed out');
  process.exit(2);
}, 120000).unref();

// A small seeded PRNG (mulberry32), so every run sends the same messages.
function rng(seed) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SIZES = [0, 1, 50, 125, 126, 500, 1024, 4000, 16384, 65536];
const WORDS = ['wsharp', 'deflate', 'context', 'takeover', 'window', 'héllo', 'мир', '😀', 'frame'];

// The messages of one setting: [payload (Buffer), isBinary, fragments (1 = whole)].
function messages(count) {
  const next = rng(12345);
  const pick = (list) => list[Math.floor(next() * list.length)];
  const sent = [];
  const out = [];
  for (let i = 0; i < count; i++) {
    const size = pick(SIZES);
    const kind = next();
    let payload;
    let isBinary;
    if (kind < 0.4) {
      let text = '';
      while (Buffer.byteLength(text) < size) text += pick(WORDS) + ' ';
      payload = Buffer.from(text);
      isBinary = false;
    } else if (kind < 0.6) {
      payload = Buffer.alloc(size);
      for (let j = 0; j < size; j++) payload[j] = Math.floor(next() * 256);
      isBinary = true;
    } else if (sent.length > 0) {
      // An earlier message again, or two of one type glued: back-references into previous
      // messages.
      const a = pick(sent);
      const same = sent.filter((m) => m[1] === a[1]);
      payload = next() < 0.5 ? Buffer.concat([a[0], pick(same)[0]]) : a[0];
      isBinary = a[1];
    } else {
      payload = Buffer.alloc(size, 0x61);
      isBinary = true;
    }
    const fragments = next() < 0.3 && payload.length > 3 ? 2 + Math.floor(next() * 3) : 1;
    sent.push([payload, isBinary]);
    out.push([payload, isBinary, fragments]);
  }
  return out;
}

// Sends one message, fragmented at byte offsets (a text message is sent as buffers so the
// split may fall inside a UTF-8 sequence, which the receiver must accept).
function send(ws, payload, isBinary, fragments) {
  if (fragments === 1) {
    ws.send(isBinary ? payload : payload.toString(), { binary: isBinary });
    return;
  }
  const step = Math.ceil(payload.length / fragments);
  for (let at = 0; at < payload.length; at += step) {
    const end = Math.min(at + step, payload.length);
    ws.send(payload.subarray(at, end), { binary: isBinary, fin: end === payload.length });
  }
}

function expectedParams(o) {
  if (o.serverMaxWindowBits === 8) return null; // wsharp declines an 8-bit server window
  const want = ['permessage-deflate'];
  if (o.serverNoContextTakeover) want.push('server_no_context_takeover');
  if (o.clientNoContextTakeover) want.push('client_no_context_takeover');
  if (typeof o.serverMaxWindowBits === 'number') {
    want.push(`server_max_window_bits=${o.serverMaxWindowBits}`);
  }
  if (typeof o.clientMaxWindowBits === 'number') {
    want.push(`client_max_window_bits=${o.clientMaxWindowBits}`);
  }
  return want.join('; ');
}

function run(url, options, msgs) {
  return new Promise((resolve) => {
    const failures = [];
    const ws = new WebSocket(url, { perMessageDeflate: { ...options, threshold: 0 } });
    let negotiated;
    ws.on('upgrade', (res) => {
      negotiated = res.headers['sec-websocket-extensions'] || null;
    });
    let received = 0;
    ws.on('open', () => {
      const want = expectedParams(options);
      if (negotiated !== want) failures.push(`negotiated ${negotiated}, expected ${want}`);
      for (const [payload, isBinary, fragments] of msgs) send(ws, payload, isBinary, fragments);
    });
    ws.on('message', (data, isBinary) => {
      const [payload, wantBinary] = msgs[received];
      if (isBinary !== wantBinary || !Buffer.from(data).equals(payload)) {
        failures.push(
          `message ${received}: ${payload.length} bytes (binary ${wantBinary}) came back as ` +
            `${data.length} bytes (binary ${isBinary})`
        );
      }
      received += 1;
      if (received === msgs.length) ws.close(1000);
    });
    ws.on('error', (e) => failures.push(`error: ${e.message}`));
    ws.on('close', (code) => {
      if (received !== msgs.length) failures.push(`closed with ${code} after ${received} echoes`);
      resolve(failures);
    });
  });
}

async function main() {
  const msgs = messages(20);
  const settings = [];
  for (const serverNoContextTakeover of [false, true]) {
    for (const clientNoContextTakeover of [false, true]) {
      for (const serverMaxWindowBits of [undefined, 8, 9, 12, 15]) {
        for (const clientMaxWindowBits of [undefined, false, 8, 9, 12, 15]) {
          settings.push({
            serverNoContextTakeover,
            clientNoContextTakeover,
            serverMaxWindowBits,
            clientMaxWindowBits,
          });
        }
      }
    }
  }
  let combinations = 0;
  let count = 0;
  let failed = 0;
  for (const url of urls) {
    for (const options of settings) {
      const failures = await run(url, options, msgs);
      combinations += 1;
      count += msgs.length;
      if (failures.length > 0) {
        failed += 1;
        console.error(`${url} ${JSON.stringify(options)}:\n  ${failures.join('\n  ')}`);
      }
    }
  }
  console.log(`combinations ${combinations} messages ${count} failed ${failed}`);
  process.exit(failed === 0 ? 0 : 1);
}

main();
