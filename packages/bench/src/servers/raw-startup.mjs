// The start-up phase's baseline: the raw `ws` server of servers/raw.mjs (node:http + a WebSocketServer on /ws, echo)
// as a plain JavaScript program, run with `node` and nothing else (no ts-node, no IPC), so that its start-up is
// Node's and `ws`'s alone. Configured like `greenroom serve`: GREENROOM_PORT, GREENROOM_HOST. Answers
// `GET /healthz` with 200 once it listens, logs one JSON line with its URL, and on SIGTERM closes its sockets (1001)
// and exits.
import { createServer } from 'node:http';
import { WebSocketServer } from 'ws';

const port = Number(process.env.GREENROOM_PORT ?? 0);
const host = process.env.GREENROOM_HOST ?? '127.0.0.1';

const http = createServer((req, res) => {
  if (req.url === '/healthz' && (req.method === 'GET' || req.method === 'HEAD')) {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"status":"ok"}');
    return;
  }
  res.writeHead(404);
  res.end();
});
const wss = new WebSocketServer({ server: http, path: '/ws', maxPayload: 64 * 1024, perMessageDeflate: false });
wss.on('connection', (ws) => {
  ws.on('error', () => undefined);
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
});

http.listen(port, host, () => {
  const address = http.address();
  console.log(JSON.stringify({ msg: 'raw ws listening', url: `http://${host}:${address.port}` }));
});

process.on('SIGTERM', () => {
  for (const ws of wss.clients) ws.close(1001, 'shutdown');
  http.closeAllConnections();
  http.close(() => process.exit(0));
});
