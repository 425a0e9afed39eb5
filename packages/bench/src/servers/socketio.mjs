// The Socket.IO 4 peer: a Socket.IO server on node:http, run by `node` alone, WebSocket transport only (no
// long-polling, no upgrade dance), no auth, with one event, `ask`, answered through its acknowledgement with
// `{"ok": true, "result": payload}` (the shape of a Greenroom reply; Socket.IO's packet framing and ack ids do the
// rest). Same frame limit and no compression, like Greenroom; Socket.IO's own heartbeat (25 s) is left as it is
// (Greenroom pings every 30 s). On SIGTERM it closes every socket and exits, like raw.mjs. Options: `{ port }`.
import { createServer } from 'node:http';
import { Server } from 'socket.io';
import { childOptions, common, emit, memoryAfterGc, serve } from './child.mjs';

const opts = childOptions();

const http = createServer((_req, res) => {
  res.writeHead(404);
  res.end();
});
const io = new Server(http, { transports: ['websocket'], maxHttpBufferSize: 64 * 1024, perMessageDeflate: false, httpCompression: false, serveClient: false });

io.on('connection', (socket) => {
  socket.on('ask', (payload, ack) => {
    if (typeof ack === 'function') ack({ ok: true, result: payload ?? {} });
  });
});

await new Promise((resolve) => http.listen(opts.port ?? 0, '127.0.0.1', resolve));
const port = http.address().port;

let stopping = null;
function stop() {
  // io.close() disconnects every socket and closes the HTTP server.
  stopping ??= new Promise((resolve) => {
    io.close(() => resolve());
    http.closeAllConnections();
  });
  return stopping;
}
process.on('SIGTERM', () => void stop().then(() => process.exit(0)));

serve({
  ...common,
  mem: () => memoryAfterGc(() => io.engine.clientsCount),
  stop: async () => {
    await stop();
    setImmediate(() => process.exit(0));
    return { stopped: true };
  },
});
emit('ready', { port, url: `http://127.0.0.1:${port}`, startMs: performance.now() });
