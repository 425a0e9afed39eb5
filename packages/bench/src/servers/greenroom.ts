/**
 * The Greenroom server process of the bench: the real server (lowdb store in a data dir, bearer auth, the green room)
 * with one trivial app actor, `Echo.Echo`, that answers its payload. Started by run.ts with --expose-gc; it seeds
 * sessions and reports its memory on request (over IPC), and stops gracefully on SIGTERM, as `greenroom serve` does.
 */
import { z } from 'zod';
import { defineActor, Greenroom, type LowdbStore } from '@greenroom/server';
import { internals, seedSessions, type SeedOptions } from '@greenroom/server/testing';
import { childOptions, emit, serve } from '../ipc.js';

export interface GreenroomServerOptions {
  port: number;
  dataDir: string;
  secret: string;
  maxConnections: number;
  askRate: number;
  askBurst: number;
}

const Echo = defineActor({
  name: 'Echo',
  state: () => ({}),
  messages: (message) => ({
    Echo: message({ allow: 'any', payload: z.looseObject({}), handle: (p) => p }),
  }),
});

const opts = childOptions<GreenroomServerOptions>();

const server = await Greenroom.start({
  env: {},
  config: {
    host: '127.0.0.1',
    port: opts.port,
    dataDir: opts.dataDir,
    secret: opts.secret,
    maxConnections: opts.maxConnections,
    askRate: opts.askRate,
    askBurst: opts.askBurst,
    // The idle and reconnect phases share a few sessions across thousands of sockets: quotas are not measured here.
    maxConnectionsPerSession: opts.maxConnections,
    maxConnectionsPerUser: opts.maxConnections,
    logLevel: 'silent',
  },
  actors: [Echo],
});

let stopping: Promise<void> | null = null;
function stop(): Promise<void> {
  stopping ??= server.stop();
  return stopping;
}
process.on('SIGTERM', () => void stop().then(() => process.exit(0), () => process.exit(1)));

serve({
  // Straight into the store in batches: issuing 20,000 sessions one by one would take minutes (docs/benchmarks.md).
  seed: async (req: SeedOptions) => seedSessions(server, req),
  mem: async () => {
    const gc = (globalThis as { gc?: () => void }).gc;
    for (let i = 0; i < 3; i++) {
      gc?.();
      await new Promise((r) => setTimeout(r, 50));
    }
    return { ...process.memoryUsage(), connections: internals(server).connections.size };
  },
  stats: () => ({
    rotations: internals(server).refresh.rotations,
    flushes: (internals(server).store as LowdbStore).flushCount,
    connections: internals(server).connections.size,
    asks: internals(server).connections.asks,
  }),
  /** The monotonic clock in µs, the one V8's CPU profiles use (for cutting a profile to a measured window). */
  mark: () => Number(process.hrtime.bigint() / 1000n),
  stop: async () => {
    await stop();
    setImmediate(() => process.exit(0));
    return { stopped: true };
  },
});
emit('ready', { port: server.port, url: server.url, startMs: performance.now() });
