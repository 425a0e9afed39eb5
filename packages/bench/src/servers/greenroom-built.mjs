// The Greenroom server of the store-at-scale phase, from the build (packages/server/dist, what `npm start` runs):
// plain JavaScript started with `node` alone, so that its start-up and heap are the product's, without ts-node.
// Configured like servers/greenroom.ts (BENCH_OPTS), with the built-in actors only; answers mem, seed, stats, cpu,
// mark and stop over IPC. Started by run.ts with --expose-gc; on SIGTERM it stops gracefully, as `greenroom serve` does.
import { Greenroom } from '@greenroom/server';
import { internals, seedSessions } from '@greenroom/server/testing';
import { childOptions, common, emit, memoryAfterGc, serve } from './child.mjs';

const opts = childOptions();

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

serve({
  ...common,
  mem: () => memoryAfterGc(() => internals(server).connections.size),
  // Straight into the store in batches, as servers/greenroom.ts seeds (for the reconnect storm's sessions).
  seed: (req) => seedSessions(server, req),
  stats: () => ({ rotations: internals(server).refresh.rotations, flushes: internals(server).store.flushCount ?? null }),
  stop: async () => {
    await stop();
    setImmediate(() => process.exit(0));
    return { stopped: true };
  },
});
emit('ready', { port: server.port, url: server.url, startMs: performance.now() });
