// Echo server on Node's `ws` with permessage-deflate, a peer of the wsharp benchmark suite.
// Usage: node echo.js HOST:PORT. Defaults of ws, except that every message is compressed
// (threshold 0), as wsharp and Python websockets do.
const { WebSocketServer } = require('ws');

const [host, port] = process.argv[2].split(/:(?=\d+$)/);
const server = new WebSocketServer({
  host,
  port: Number(port),
  perMessageDeflate: { threshold: 0 },
  maxPayload: 64 * 1024 * 1024,
});
server.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
});
