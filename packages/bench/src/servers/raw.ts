/**
 * The baseline server process: plain `ws` on node:http, no auth, no actors. Modes:
 *   echo — sends every message back as it came;
 *   json — parses it and answers `{"id", "ok": true, "result": payload}` (the shape of a Greenroom reply).
 * Same frame limit and no compression, like Greenroom. On SIGTERM it stops listening, closes every socket with
 * 1001, waits for them (at most 2 s) and exits, like Greenroom's shutdown minus the store.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { childOptions, emit, serve } from '../ipc.js';

export interface RawServerOptions {
  port: number;
  mode: 'echo' | 'json';
}

const opts = childOptions<RawServerOptions>();

const http = createServer((_req, res) => {
  res.writeHead(404);
  res.end();
});
const wss = new WebSocketServer({ server: http, path: '/ws', maxPayload: 64 * 1024, perMessageDeflate: false });

wss.on('connection', (ws: WebSocket) => {
  ws.on('error', () => undefined);
  if (opts.mode === 'json') {
    ws.on('message', (data) => {
      let frame: { id?: unknown; payload?: unknown };
      try {
        frame = JSON.parse(data.toString()) as { id?: unknown; payload?: unknown };
      } catch {
        ws.send(JSON.stringify({ id: null, ok: false, error: { code: 'BAD_FRAME', message: 'not JSON' } }));
        return;
      }
      ws.send(JSON.stringify({ id: frame.id ?? null, ok: true, result: frame.payload ?? {} }));
    });
  } else {
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  }
});

await new Promise<void>((resolve) => http.listen(opts.port, '127.0.0.1', resolve));

let stopping: Promise<void> | null = null;
function stop(): Promise<void> {
  stopping ??= (async () => {
    const closed = new Promise<void>((r) => http.close(() => r()));
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
  mem: async () => {
    const gc = (globalThis as { gc?: () => void }).gc;
    for (let i = 0; i < 3; i++) {
      gc?.();
      await new Promise((r) => setTimeout(r, 50));
    }
    return { ...process.memoryUsage(), connections: wss.clients.size };
  },
  cpu: () => process.cpuUsage(),
  mark: () => Number(process.hrtime.bigint() / 1000n),
  stop: async () => {
    await stop();
    setImmediate(() => process.exit(0));
    return { stopped: true };
  },
});
emit('ready', { port: (http.address() as AddressInfo).port, url: `http://127.0.0.1:${(http.address() as AddressInfo).port}`, startMs: performance.now() });
