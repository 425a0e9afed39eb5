/**
 * The Greenroom server process of the bench: the real server (lowdb store in a data dir, or Redis when its `env` says
 * so; bearer auth, the green room) with one trivial app actor, `Echo.Echo`, that answers its payload, and a minimal
 * chat room, `BenchRoom.Post`, for the rooms phase. Started by run.ts with --expose-gc; it seeds sessions and reports
 * its memory on request (over IPC), and stops gracefully on SIGTERM, as `greenroom serve` does.
 */
import { z } from 'zod';
import { defineActor, Greenroom } from '@greenroom/server';
import { internals, seedSessions, type SeedOptions } from '@greenroom/server/testing';
import { childOptions, emit, serve } from '../ipc.js';
import { writeSeedStore, type SeedMinting, type SeedStoreOptions } from '../seed-store.js';

/** The fields of a stored session the bench reads (packages/server/src/actors/records.ts); an ended one has fewer. */
interface SessionRecord {
  [key: string]: unknown;
  ended?: boolean;
  generation?: number;
  revokedAt: number | null;
  expiresAt: number;
  absoluteExpiresAt?: number;
}

export interface GreenroomServerOptions {
  port: number;
  dataDir: string;
  secret: string;
  maxConnections: number;
  askRate: number;
  askBurst: number;
  /** Guest sign-ins per address per window (the default, 20 per 10 minutes, would refuse a load of them). */
  guestMaxPerWindow?: number;
  /** `GREENROOM_` variables read as an operator's environment would be (the store: lowdb or Redis). */
  env?: Record<string, string>;
}

const Echo = defineActor({
  name: 'Echo',
  state: () => ({}),
  messages: (message) => ({
    Echo: message({ allow: 'any', payload: z.looseObject({}), handle: (p) => p }),
  }),
});

const MESSAGES = 'bench-messages';

/** Message ids: a counter of this process, zero-padded so the store's id order is the posting order. */
let posted = 0;

/**
 * A chat room as small as the rooms phase needs: one keyed instance per room (posts to one room one at a time, rooms
 * concurrently); a post is stored durably, then pushed to the room's topic. Anyone may join any room's topic:
 * membership is not what the phase measures (packages/example-chat's ChatRoom checks it).
 */
const BenchRoom = defineActor({
  name: 'BenchRoom',
  key: (p: { room?: string }) => p.room,
  state: () => ({}),
  events: { Posted: z.object({ id: z.string(), room: z.string(), text: z.string(), at: z.number() }) },
  mayJoin: () => true,
  messages: (message) => ({
    Post: message({
      allow: 'any',
      payload: z.object({ room: z.string().min(1).max(48), text: z.string().min(1).max(2000) }),
      handle: async (p, ctx) => {
        const m = { id: String(++posted).padStart(12, '0'), room: p.room, text: p.text, at: Date.now() };
        await ctx.store.put(MESSAGES, `${p.room}/${m.id}`, m);
        ctx.publish('Posted', m, { topic: p.room });
        return m;
      },
    }),
  }),
});

const opts = childOptions<GreenroomServerOptions>();

const server = await Greenroom.start({
  env: opts.env ?? {},
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
    ...(opts.guestMaxPerWindow ? { guestMaxPerWindow: opts.guestMaxPerWindow } : {}),
    logLevel: 'silent',
  },
  actors: [Echo, BenchRoom],
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
  /** A seeded store: a file for another data dir, this server's own store, or both (opened later by servers with this one's secret). */
  writeSeedStore: async (req: SeedStoreOptions) => {
    const { tokens, config, store } = internals(server);
    const mint: SeedMinting = {
      newRefreshToken: (sid, generation) => tokens.newRefreshToken(sid, generation),
      hash: (token) => tokens.hash(token),
      signAccess: async (claims, now) => (await tokens.signAccess(claims, now)).token,
      refreshTtlS: config.refreshTtlS,
      refreshMaxTtlS: config.refreshMaxTtlS,
    };
    return writeSeedStore(req, mint, req.store ? store : undefined);
  },
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
    // A store without a flush counter (one behind another seam) reports null.
    flushes: (internals(server).store as { flushCount?: number }).flushCount ?? null,
    connections: internals(server).connections.size,
    asks: internals(server).connections.asks,
  }),
  /** One session as the store holds it now (the bench learns the store's content from the server, never its files). */
  session: async (req: { sid: string }) => {
    const s = await internals(server).store.get<SessionRecord>('sessions', req.sid);
    return s ? { generation: s.generation ?? null, revokedAt: s.revokedAt } : null;
  },
  /** Live and ended sessions, with the JSON bytes each kind takes (`"<sid>":<record>`, as a snapshot line holds it). */
  sessions: async () => {
    const store = internals(server).store;
    const now = Date.now();
    const out = { live: 0, ended: 0, liveBytes: 0, endedBytes: 0, users: await store.count('users') };
    for (let after: string | undefined; ; ) {
      const page = await store.scan<SessionRecord>('sessions', { limit: 1_000, ...(after === undefined ? {} : { after }) });
      for (const { id, value } of page.items) {
        const bytes = Buffer.byteLength(`${JSON.stringify(id)}:${JSON.stringify(value)}`);
        const live = value.ended !== true && value.revokedAt === null && value.expiresAt > now && (value.absoluteExpiresAt ?? Infinity) > now;
        if (live) {
          out.live += 1;
          out.liveBytes += bytes;
        } else {
          out.ended += 1;
          out.endedBytes += bytes;
        }
      }
      if (page.next === null) break;
      after = page.next;
    }
    return out;
  },
  cpu: () => process.cpuUsage(),
  /** BenchRoom's stored messages: how many, and (`clear`) deleted in one write, so each round starts on an empty room. */
  messages: async (req: { clear?: boolean }) => {
    const store = internals(server).store;
    const ids: string[] = [];
    for (let after: string | undefined; ; ) {
      const page = await store.scan(MESSAGES, { limit: 1_000, ...(after === undefined ? {} : { after }) });
      ids.push(...page.items.map((i) => i.id));
      if (page.next === null) break;
      after = page.next;
    }
    if (req.clear && ids.length > 0) await store.write(ids.map((id) => ({ op: 'delete' as const, collection: MESSAGES, id })));
    return { stored: ids.length };
  },
  /** The monotonic clock in µs, the one V8's CPU profiles use (for cutting a profile to a measured window). */
  mark: () => Number(process.hrtime.bigint() / 1000n),
  stop: async () => {
    await stop();
    setImmediate(() => process.exit(0));
    return { stopped: true };
  },
});
emit('ready', { port: server.port, url: server.url, startMs: performance.now() });
