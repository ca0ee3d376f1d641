// Node `ws` servers for wsharp's client, one per permessage-deflate setting. Each server first
// sends a text message "negotiated:<its Sec-WebSocket-Extensions response>", then echoes every
// message, whole or (with "fragment") in three fragments split at byte offsets.
//
// Usage: node deflate_server.js '[{"perMessageDeflate": {...}, "fragment": false}, ...]'
// Prints "ports P1 P2 ..." (in the order of the settings) once every server listens; exits
// when its standard input ends.
'use strict';

const { WebSocketServer } = require('ws');

const settings = JSON.parse(process.argv[2] || '[]');
if (settings.length === 0) {
  console.error("usage: node deflate_server.js '[{\"perMessageDeflate\": {}, \"fragment\": false}]'");
  process.exit(2);
}

function serve(setting) {
  return new Promise((resolve, reject) => {
    const wss = new WebSocketServer({
      host: '127.0.0.1',
      port: 0,
      perMessageDeflate: { ...setting.perMessageDeflate, threshold: 0 },
    });
    wss.on('headers', (headers, req) => {
      const line = headers.find((h) => h.toLowerCase().startsWith('sec-websocket-extensions:'));
      req.negotiated = line ? line.slice(line.indexOf(':') + 1).trim() : '';
    });
    wss.on('connection', (ws, req) => {
      ws.send(`negotiated:${req.negotiated}`);
      ws.on('message', (data, isBinary) => {
        if (!setting.fragment || data.length < 3) {
          ws.send(data, { binary: isBinary });
          return;
        }
        const step = Math.ceil(data.length / 3);
        for (let at = 0; at < data.length; at += step) {
          const end = Math.min(at + step, data.length);
          ws.send(data.subarray(at, end), { binary: isBinary, fin: end === data.length });
        }
      });
      ws.on('error', (e) => console.error(`server error: ${e.message}`));
    });
    wss.on('listening', () => resolve(wss.address().port));
    wss.on('error', reject);
  });
}

async function main() {
  const ports = [];
  for (const setting of settings) ports.push(await serve(setting));
  console.log(`ports ${ports.join(' ')}`);
}

process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
main().catch((e) => {
  console.error(e);
  process.exit(1);
});
