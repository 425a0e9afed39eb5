// The Greenroom server of the store-at-scale phase, from the build (packages/server/dist, what `npm start` runs):
// plain JavaScript started with `node` alone, so that its start-up and heap are the product's, without ts-node.
// Configured like servers/greenroom.ts (BENCH_OPTS), with the built-in actors only; it answers the orchestrator's
// calls on the IPC channel with the same message shape as ../ipc.ts (`{rpc, method, params}` → `{rpc, result|error}`):
// mem, cpu, mark, stop. Started by run.ts with --expose-gc; on SIGTERM it stops gracefully, as `greenroom serve` does.
import { Greenroom } from '@greenroom/server';
import { internals } from '@greenroom/server/testing';

const opts = JSON.parse(process.env.BENCH_OPTS ?? '{}');

const server = await Greenroom.start({
  env: {},
  config: {
    host: '127.0.0.1',
    port: opts.port ?? 0,
    dataDir: opts.dataDir,
    secret: opts.secret,
    maxConnections: opts.maxConnections ?? 20_000,
    logLevel: 'silent',
  },
});

let stopping = null;
function stop() {
  stopping ??= server.stop();
  return stopping;
}
process.on('SIGTERM', () => void stop().then(() => process.exit(0), () => process.exit(1)));

const handlers = {
  mem: async () => {
    for (let i = 0; i < 3; i++) {
      globalThis.gc?.();
      await new Promise((r) => setTimeout(r, 50));
    }
    return { ...process.memoryUsage(), connections: internals(server).connections.size };
  },
  stats: () => ({ rotations: internals(server).refresh.rotations, flushes: internals(server).store.flushCount ?? null }),
  cpu: () => process.cpuUsage(),
  mark: () => Number(process.hrtime.bigint() / 1000n),
  stop: async () => {
    await stop();
    setImmediate(() => process.exit(0));
    return { stopped: true };
  },
};

process.on('message', (msg) => {
  if (typeof msg !== 'object' || msg === null || typeof msg.rpc !== 'number') return;
  const handler = handlers[msg.method];
  Promise.resolve()
    .then(() => {
      if (!handler) throw new Error(`no method ${msg.method}`);
      return handler(msg.params);
    })
    .then(
      (result) => process.send?.({ rpc: msg.rpc, result: result ?? null }),
      (err) => process.send?.({ rpc: msg.rpc, error: err instanceof Error ? `${err.message}\n${err.stack ?? ''}` : String(err) }),
    );
});
process.on('disconnect', () => process.exit(0));
process.send?.({ event: 'ready', data: { port: server.port, url: server.url, startMs: performance.now() } });
