/**
 * The Socket.IO 4 peer: a Socket.IO server on node:http, WebSocket transport only (no long-polling, no upgrade
 * dance), no auth, with one event, `ask`, answered through its acknowledgement with `{"ok": true, "result": payload}`
 * (the shape of a Greenroom reply; Socket.IO's own packet framing and ack ids do the rest). Same frame limit and no
 * compression, like Greenroom. On SIGTERM it closes every socket and exits, like servers/raw.ts.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Server } from 'socket.io';
import { childOptions, emit, serve } from '../ipc.js';

export interface SocketIoServerOptions {
  port: number;
}

const opts = childOptions<SocketIoServerOptions>();

const http = createServer((_req, res) => {
  res.writeHead(404);
  res.end();
});
const io = new Server(http, {
  transports: ['websocket'],
  maxHttpBufferSize: 64 * 1024,
  perMessageDeflate: false,
  httpCompression: false,
  serveClient: false,
  // Socket.IO's own heartbeat (25 s) stays as it is: Greenroom pings every 30 s.
});

io.on('connection', (socket) => {
  socket.on('ask', (payload: unknown, ack?: (reply: unknown) => void) => {
    if (typeof ack === 'function') ack({ ok: true, result: payload ?? {} });
  });
});

await new Promise<void>((resolve) => http.listen(opts.port, '127.0.0.1', resolve));
const port = (http.address() as AddressInfo).port;

let stopping: Promise<void> | null = null;
function stop(): Promise<void> {
  stopping ??= new Promise<void>((resolve) => {
    // io.close() disconnects every socket and closes the HTTP server.
    io.close(() => resolve());
    http.closeAllConnections();
  });
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
    return { ...process.memoryUsage(), connections: io.engine.clientsCount };
  },
  cpu: () => process.cpuUsage(),
  mark: () => Number(process.hrtime.bigint() / 1000n),
  stop: async () => {
    await stop();
    setImmediate(() => process.exit(0));
    return { stopped: true };
  },
});
emit('ready', { port, url: `http://127.0.0.1:${port}`, startMs: performance.now() });
