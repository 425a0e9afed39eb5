// The baseline server process: plain `ws` on node:http, no auth, no actors, run by `node` alone. Modes:
//   echo — sends every message back as it came;
//   json — parses it and answers `{"id", "ok": true, "result": payload}` (the shape of a Greenroom reply).
// Same frame limit and no compression, like Greenroom. On SIGTERM it stops listening, closes every socket with
// 1001, waits for them (at most 2 s) and exits, like Greenroom's shutdown minus the store. Options (BENCH_OPTS):
// `{ port, mode }`.
import { createServer } from 'node:http';
import { WebSocketServer } from 'ws';
import { childOptions, common, emit, memoryAfterGc, serve } from './child.mjs';

const opts = childOptions();

const http = createServer((_req, res) => {
  res.writeHead(404);
  res.end();
});
const wss = new WebSocketServer({ server: http, path: '/ws', maxPayload: 64 * 1024, perMessageDeflate: false });

wss.on('connection', (ws) => {
  ws.on('error', () => undefined);
  if (opts.mode === 'json') {
    ws.on('message', (data) => {
      let frame;
      try {
        frame = JSON.parse(data.toString());
      } catch {
        ws.send(JSON.stringify({ id: null, ok: false, error: { code: 'BAD_FRAME', message: 'not JSON' } }));
        return;
      }
      ws.send(JSON.stringify({ id: frame?.id ?? null, ok: true, result: frame?.payload ?? {} }));
    });
  } else {
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  }
});

await new Promise((resolve) => http.listen(opts.port ?? 0, '127.0.0.1', resolve));
const port = http.address().port;

let stopping = null;
function stop() {
  stopping ??= (async () => {
    const closed = new Promise((r) => http.close(() => r()));
    for (const ws of wss.clients) ws.close(1001, 'shutdown');
    const deadline = Date.now() + 2000;
    while (wss.clients.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    for (const ws of wss.clients) ws.terminate();
    http.closeAllConnections();
    await closed;
  })();
  return stopping;
}
process.on('SIGTERM', () => void stop().then(() => process.exit(0)));

serve({
  ...common,
  mem: () => memoryAfterGc(() => wss.clients.size),
  stop: async () => {
    await stop();
    setImmediate(() => process.exit(0));
    return { stopped: true };
  },
});
emit('ready', { port, url: `http://127.0.0.1:${port}`, startMs: performance.now() });
