// The Greenroom server from the build (packages/server/dist, what `npm start` runs): plain JavaScript started with
// `node` alone, so that its start-up and heap are the product's, without ts-node. Configured like servers/greenroom.ts
// (BENCH_OPTS: the store from `env`, lowdb unless it names Redis), with the built-in actors and the trivial `Echo`;
// answers mem, seed, stats, cpu, mark and stop over IPC. Started by run.ts with --expose-gc; on SIGTERM it stops
// gracefully, as `greenroom serve` does.
import { z } from 'zod';
import { defineActor, Greenroom } from '@greenroom/server';
import { internals, seedSessions } from '@greenroom/server/testing';
import { childOptions, common, emit, memoryAfterGc, serve } from './child.mjs';

const opts = childOptions();

// servers/greenroom.ts's Echo, for the asks of the several-nodes phase.
const Echo = defineActor({
  name: 'Echo',
  state: () => ({}),
  messages: (message) => ({
    Echo: message({ allow: 'any', payload: z.looseObject({}), handle: (p) => p }),
  }),
});

const server = await Greenroom.start({
  env: opts.env ?? {},
  config: {
    host: '127.0.0.1',
    port: opts.port ?? 0,
    dataDir: opts.dataDir,
    secret: opts.secret,
    maxConnections: opts.maxConnections ?? 20_000,
    // Raised where a phase measures asks, not the per-connection limiter (docs/benchmarks.md).
    ...(opts.askRate ? { askRate: opts.askRate } : {}),
    ...(opts.askBurst ? { askBurst: opts.askBurst } : {}),
    logLevel: 'silent',
  },
  actors: [Echo],
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
