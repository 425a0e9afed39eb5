/**
 * The Redis store against real Redis servers: the store contract on the machine's Redis (a key prefix per test) and
 * on a three-master cluster this file starts; one user's keys in one slot; batches that cannot be stored leave
 * nothing; two stores ("nodes") on one Redis see each other's writes and keep the ids and indexes right when they
 * write at once; and a store whose Redis is not there yet reports STORE_UNAVAILABLE, then serves once it is.
 * And the server on it: GREENROOM_STORE picks it (an unknown value stops start-up), a login lands in Redis and not in
 * the data dir, and a node whose Redis is down starts, is not ready, answers 503 UNAVAILABLE with Retry-After, and
 * serves once Redis is up, without a restart.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cluster, Redis } from 'ioredis';
import type { RedisClient, RedisSettings } from '../src/cluster/redis.js';
import { ConfigError } from '../src/errors.js';
import { createLogger } from '../src/log.js';
import { openStore } from '../src/store/open-store.js';
import { RedisStore } from '../src/store/redis-store.js';
import { eventually, httpRequest, loginWithPassword, startTestServer, type TestServer } from '../src/testing/index.js';
import { rejection } from './helpers.js';
import { storeContract } from './store.contract.js';
import { dropPrefix, MACHINE_REDIS_URL, redisAvailable, redisPrefix, redisServerFound, startCluster, startRedis, type RedisCluster, type RedisServer } from './redis.js';

const found = redisServerFound();
const describeRedis = found ? describe : describe.skip;
const skipped = found ? '' : ' (skipped: redis-server is not installed; scripts/ensure-redis.mjs installs it)';

/** The machine's Redis, or (if it is not running) one this file starts. */
let standalone: { url: string; server: RedisServer | null } = { url: MACHINE_REDIS_URL, server: null };

beforeAll(async () => {
  if (found && !(await redisAvailable())) {
    const server = await startRedis();
    standalone = { url: server.url, server };
  }
}, 30_000);
afterAll(async () => {
  await standalone.server?.stop();
});

/** A plain client of the same Redis, to look at keys. */
function adminClient({ urls, cluster }: RedisSettings): RedisClient {
  if (!cluster) return new Redis(urls[0]!);
  return new Cluster(urls.map((u) => ({ host: new URL(u).hostname, port: Number(new URL(u).port) })));
}

/** Stores on `urls` under one fresh prefix (several: several nodes); cleanup closes them and drops the prefix's keys. */
async function openStores(urls: string[], cluster = false, count = 1) {
  const settings: RedisSettings = { urls, cluster, prefix: redisPrefix() };
  const stores = await Promise.all(Array.from({ length: count }, () => RedisStore.open(settings)));
  const admin = adminClient(settings);
  return {
    stores,
    store: stores[0]!,
    settings,
    admin,
    cleanup: async () => {
      for (const store of stores) await store.close();
      try {
        await dropPrefix(admin, settings.prefix);
      } finally {
        admin.disconnect();
      }
    },
  };
}

/** Every key under the prefix, as text. */
async function keysUnder(admin: RedisClient, prefix: string): Promise<string[]> {
  const nodes = admin instanceof Cluster ? admin.nodes('master') : [admin];
  const found: string[] = [];
  for (const node of nodes) found.push(...(await node.keys(`${prefix}*`)));
  return found.sort();
}

describeRedis(`RedisStore on standalone Redis${skipped}`, () => {
  storeContract('RedisStore (standalone)', () => openStores([standalone.url]));

  it('leaves nothing in Redis from a batch holding a value that is not JSON, and rejects it STORE_INVALID_OPTION', async () => {
    const { store, admin, settings, cleanup } = await openStores([standalone.url]);
    try {
      const cyclic: Record<string, unknown> = { name: 'loop' };
      cyclic.self = cyclic;
      const err = await rejection(
        store.write([
          { op: 'put', collection: 'users', id: 'u1', value: { uid: 'u1', usernameKey: 'ann' } },
          { op: 'put', collection: 'sessions', id: 's1', value: { uid: 'u1' } },
          { op: 'put', collection: 'sessions', id: 's2', value: cyclic },
        ]),
      );
      expect(err.code).toBe('STORE_INVALID_OPTION');
      expect(await keysUnder(admin, settings.prefix)).toEqual([]);
    } finally {
      await cleanup();
    }
  });

  it('writes a record, its owner pointer, the ids ZSET and the index under the layout it documents', async () => {
    const { store, admin, settings, cleanup } = await openStores([standalone.url]);
    const p = settings.prefix;
    try {
      await store.put('users', 'u1', { uid: 'u1', usernameKey: 'ann', role: 'user' });
      await store.put('sessions', 's1', { sid: 's1', uid: 'u1' });
      await store.put('app:chat-room', 'r/1', { topic: 'tea' });
      expect(await keysUnder(admin, p)).toEqual(
        [
          `${p}{u:u1}:r:users:u1`,
          `${p}{c:users}:ids`,
          `${p}{i:users:usernameKey:ann}:i:users:usernameKey:ann`,
          `${p}{i:users:role:user}:i:users:role:user`,
          `${p}{o:sessions:s1}`,
          `${p}{u:u1}:r:sessions:s1`,
          `${p}{c:sessions}:ids`,
          `${p}{u:u1}:i:sessions:uid:u1`,
          `${p}{app%3Achat-room:r/1}:r:app%3Achat-room:r/1`,
          `${p}{c:app%3Achat-room}:ids`,
        ].sort(),
      );
      const plain = admin as Redis;
      expect(await plain.get(`${p}{o:sessions:s1}`)).toBe('u:u1');
      expect(JSON.parse((await plain.get(`${p}{u:u1}:r:sessions:s1`))!)).toEqual({ sid: 's1', uid: 'u1' });
      // Deleting takes every one of them away again.
      await store.write([
        { op: 'delete', collection: 'users', id: 'u1' },
        { op: 'delete', collection: 'sessions', id: 's1' },
        { op: 'delete', collection: 'app:chat-room', id: 'r/1' },
      ]);
      expect(await keysUnder(admin, p)).toEqual([]);
    } finally {
      await cleanup();
    }
  });

  it('finds by a field it does not index, by reading the collection', async () => {
    const { store, cleanup } = await openStores([standalone.url]);
    try {
      await store.write(Array.from({ length: 600 }, (_, i) => ({ op: 'put' as const, collection: 'app:rooms', id: `r${i}`, value: { owner: `o${i % 7}` } })));
      const rows = await store.findBy('app:rooms', 'owner', 'o3');
      expect(rows.map((r) => r.id).sort()).toEqual(Array.from({ length: 600 }, (_, i) => i).filter((i) => i % 7 === 3).map((i) => `r${i}`).sort());
    } finally {
      await cleanup();
    }
  });

  twoNodes(() => [standalone.url], false);

  describe('a Redis that is not there', () => {
    it('rejects ping with STORE_UNAVAILABLE, then serves once a Redis starts on that port, without reopening', async () => {
      const server = await startRedis();
      const port = server.port;
      await server.stop(); // a port nothing listens on, and that was free a moment ago
      const store = await RedisStore.open({ urls: [`redis://127.0.0.1:${port}`], cluster: false, prefix: redisPrefix() });
      let started: RedisServer | null = null;
      try {
        const err = await rejection(store.ping());
        expect(err.code).toBe('STORE_UNAVAILABLE');
        expect(err.message).not.toContain(String(port));
        expect((await rejection(store.put('users', 'u1', {}))).code).toBe('STORE_UNAVAILABLE');
        expect((await rejection(store.get('users', 'u1'))).code).toBe('STORE_UNAVAILABLE');
        started = await startRedis({ port });
        await eventually(() => store.ping(), { timeoutMs: 10_000 });
        await store.put('users', 'u1', { v: 1 });
        expect(await store.get('users', 'u1')).toEqual({ v: 1 });
      } finally {
        await store.close();
        await started?.stop();
      }
    });

    it('opens at once, and a close while unreachable does not hang', async () => {
      const server = await startRedis();
      await server.stop();
      const began = Date.now();
      const store = await RedisStore.open({ urls: [server.url], cluster: false, prefix: redisPrefix() });
      expect(Date.now() - began).toBeLessThan(500);
      await store.close();
      expect((await rejection(store.ping())).code).toBe('STORE_CLOSED');
    });
  });
});

describeRedis(`RedisStore on a three-master Redis Cluster${skipped}`, () => {
  let cluster: RedisCluster;
  beforeAll(async () => {
    cluster = await startCluster();
  }, 60_000);
  afterAll(async () => {
    await cluster?.stop();
  });

  storeContract('RedisStore (cluster)', () => openStores(cluster.urls, true));
  twoNodes(() => cluster.urls, true);

  it("keeps a user's record, its sessions' records and its sessions-by-uid index in one slot", async () => {
    const { store, admin, cleanup } = await openStores(cluster.urls, true);
    try {
      await store.write([
        { op: 'put', collection: 'users', id: 'u-1', value: { uid: 'u-1', usernameKey: 'ann' } },
        { op: 'put', collection: 'sessions', id: 's-1', value: { sid: 's-1', uid: 'u-1' } },
        { op: 'put', collection: 'sessions', id: 's-2', value: { sid: 's-2', uid: 'u-1' } },
      ]);
      const keys = store.keys;
      const sessionKey = (sid: string) => keys.record('sessions', sid, keys.tagOf('sessions', sid, { uid: 'u-1' }));
      const userKeys = [keys.record('users', 'u-1', keys.tagOf('users', 'u-1', {})), sessionKey('s-1'), sessionKey('s-2'), keys.index('sessions', 'uid', 'u-1').key];
      const slots = await Promise.all(userKeys.map((key) => (admin as Cluster).cluster('KEYSLOT', key)));
      expect(new Set(slots).size).toBe(1);
      // And those keys hold what the layout says: the JSON, and the ids.
      expect(JSON.parse((await admin.get(sessionKey('s-1')))!)).toEqual({ sid: 's-1', uid: 'u-1' });
      expect((await admin.smembers(keys.index('sessions', 'uid', 'u-1').key)).sort()).toEqual(['s-1', 's-2']);
      expect((await store.findBy('sessions', 'uid', 'u-1')).map((r) => r.id)).toEqual(['s-1', 's-2']);
    } finally {
      await cleanup();
    }
  });

  it('skips what a batch interrupted part-way leaves behind: ids and index entries without a record', async () => {
    const { store, admin, cleanup } = await openStores(cluster.urls, true);
    try {
      await store.put('users', 'u1', { uid: 'u1', usernameKey: 'ann' });
      const keys = store.keys;
      // What the first steps of a put of u2 leave if the node dies before the record is written.
      await admin.zadd(keys.ids('users'), 0, 'u2');
      await admin.sadd(keys.index('users', 'usernameKey', 'bob').key, 'u2');
      await admin.sadd(keys.index('users', 'usernameKey', 'ann').key, 'u0');
      expect((await store.scan('users')).items.map((i) => i.id)).toEqual(['u1']);
      expect(await store.scan('users', { limit: 1 })).toEqual({ items: [{ id: 'u1', value: { uid: 'u1', usernameKey: 'ann' } }], next: null });
      expect(await store.findBy('users', 'usernameKey', 'bob')).toEqual([]);
      expect((await store.findBy('users', 'usernameKey', 'ann')).map((r) => r.id)).toEqual(['u1']);
      // The next write of that id sets it right.
      await store.delete('users', 'u2');
      expect(await admin.zrange(keys.ids('users'), 0, -1)).toEqual(['u1']);
    } finally {
      await cleanup();
    }
  });
});

/** Two stores (two nodes) on one Redis or one cluster. */
function twoNodes(urls: () => string[], cluster: boolean): void {
  describe('two nodes on one Redis', () => {
    it("see each other's writes: records, scans, counts and index lookups", async () => {
      const { stores, cleanup } = await openStores(urls(), cluster, 2);
      const [a, b] = stores as [RedisStore, RedisStore];
      try {
        await a.put('users', 'u1', { uid: 'u1', usernameKey: 'ann' });
        await a.put('sessions', 's1', { uid: 'u1' });
        expect(await b.get('users', 'u1')).toEqual({ uid: 'u1', usernameKey: 'ann' });
        expect((await b.findBy('users', 'usernameKey', 'ann')).map((r) => r.id)).toEqual(['u1']);
        await b.put('sessions', 's2', { uid: 'u1' });
        await b.delete('sessions', 's1');
        expect((await a.findBy('sessions', 'uid', 'u1')).map((r) => r.id)).toEqual(['s2']);
        expect(await a.count('sessions')).toBe(1);
        expect((await a.scan('sessions')).items).toEqual([{ id: 's2', value: { uid: 'u1' } }]);
      } finally {
        await cleanup();
      }
    });

    it('lose none of 200 concurrent increments of one record made through both (update), run 3 times', async () => {
      const { stores, cleanup } = await openStores(urls(), cluster, 2);
      try {
        for (let round = 0; round < 3; round++) {
          const id = `c${round}`;
          await Promise.all(Array.from({ length: 200 }, (_, i) => stores[i % 2]!.update<{ n: number }>('app:counter', id, (c) => ({ n: (c?.n ?? 0) + 1 }))));
          expect(await stores[0]!.get('app:counter', id)).toEqual({ n: 200 });
        }
      } finally {
        await cleanup();
      }
    });

    it('keep the ids ZSET and the indexes exact under concurrent puts, moves and deletes of the same records', async () => {
      const { stores, admin, settings, cleanup } = await openStores(urls(), cluster, 2);
      try {
        const sids = Array.from({ length: 20 }, (_, i) => `s${i}`);
        const uids = ['u1', 'u2', 'u3'];
        // Each node writes every session many times, moving it between users, and deletes some.
        const writes = stores.flatMap((store, node) =>
          Array.from({ length: 200 }, (_, n) => {
            const sid = sids[(n * 7 + node * 3) % sids.length]!;
            if (n % 11 === node) return store.delete('sessions', sid);
            return store.put('sessions', sid, { sid, uid: uids[(n + node) % uids.length]!, n, node });
          }),
        );
        await Promise.all(writes);
        // What the records say is exactly what the ZSET and the indexes say.
        const records = new Map<string, string>();
        for (const sid of sids) {
          const record = await stores[0]!.get<{ uid: string }>('sessions', sid);
          if (record) records.set(sid, record.uid);
        }
        const keys = stores[0]!.keys;
                const zset = (await admin.zrange(keys.ids('sessions'), 0, -1)).sort();
        expect(zset).toEqual([...records.keys()].sort());
        for (const uid of uids) {
          const expected = [...records].filter(([, u]) => u === uid).map(([sid]) => sid).sort();
          expect([uid, (await admin.smembers(keys.index('sessions', 'uid', uid).key)).sort()]).toEqual([uid, expected]);
          expect([uid, (await stores[1]!.findBy('sessions', 'uid', uid)).map((r) => r.id)]).toEqual([uid, expected]);
        }
        // One record key per live session (none left behind by a move), one pointer each.
        const recordKeys = (await keysUnder(admin, settings.prefix)).filter((k) => k.includes(':r:sessions:'));
        expect(recordKeys).toHaveLength(records.size);
        expect(await stores[1]!.count('sessions')).toBe(records.size);
      } finally {
        await cleanup();
      }
    });
  });
}

describe('GREENROOM_STORE', () => {
  it('stops start-up with a ConfigError naming GREENROOM_STORE for a store it does not know', async () => {
    const err = await startTestServer({ env: { GREENROOM_STORE: 'nosuch' } }).then(
      (server) => server.close().then(() => undefined),
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toContain('GREENROOM_STORE');
    // A config put together in code is refused the same way.
    const config = { store: 'nosuch' as 'lowdb', dataDir: '/nonexistent', redisUrls: [], redisCluster: false, redisPrefix: 'gr:' };
    await expect(openStore(config, createLogger({ level: 'silent' }))).rejects.toThrow(/GREENROOM_STORE/);
  });
});

describeRedis(`Greenroom with GREENROOM_STORE=redis${skipped}`, () => {
  const admin = { username: 'redis-admin', password: 'redis-admin-password-1' };
  /** The environment of a node on Redis at `url` under `prefix`. */
  const redisEnv = (url: string, prefix: string) => ({
    GREENROOM_STORE: 'redis',
    GREENROOM_REDIS_URL: url,
    GREENROOM_REDIS_PREFIX: prefix,
    GREENROOM_SECRET: 'a-shared-secret-of-at-least-32-characters',
    GREENROOM_ADMIN: `${admin.username}:${admin.password}`,
  });

  it('keeps what a login writes in Redis, under the prefix, and no store files in the data dir', async () => {
    const prefix = redisPrefix();
    const server = await startTestServer({ env: redisEnv(standalone.url, prefix) });
    try {
      const login = await loginWithPassword(server, admin);
      expect(login.status).toBe(200);
      const client = new Redis(standalone.url);
      try {
        const keys = await keysUnder(client, prefix);
        expect(keys.some((k) => k.includes(':r:users:'))).toBe(true);
        expect(keys.some((k) => k.includes(':r:sessions:'))).toBe(true);
      } finally {
        client.disconnect();
      }
      expect((await readdir(server.dataDir)).filter((name) => name.startsWith('greenroom.json'))).toEqual([]);
      expect((await httpRequest(server, '/readyz')).status).toBe(200);
    } finally {
      await server.close();
      await dropPrefix(standalone.url, prefix);
    }
  });

  it('makes a data dir that is not there yet (mode 0700) and opens the admin socket in it', async () => {
    const prefix = redisPrefix();
    const parent = await mkdtemp(join(tmpdir(), 'greenroom-redis-data-'));
    const dataDir = join(parent, 'node-a');
    const server = await startTestServer({ env: redisEnv(standalone.url, prefix), keepDataDir: dataDir });
    try {
      expect((await stat(dataDir)).mode & 0o777).toBe(0o700);
      expect((await stat(join(dataDir, 'greenroom.sock'))).isSocket()).toBe(true);
    } finally {
      await server.close();
      await rm(parent, { recursive: true, force: true });
      await dropPrefix(standalone.url, prefix);
    }
  });

  it('starts with Redis down, answers 503 UNAVAILABLE with Retry-After, and serves once Redis is up, without a restart', async () => {
    const stand = await startRedis();
    const port = stand.port;
    await stand.stop(); // nothing listens there now
    const prefix = redisPrefix();
    let redis: RedisServer | null = null;
    let server: TestServer | null = null;
    try {
      server = await startTestServer({ env: redisEnv(`redis://127.0.0.1:${port}`, prefix) });
      const ready = await httpRequest(server, '/readyz');
      expect(ready.status).toBe(503);
      expect(ready.body.error.code).toBe('UNAVAILABLE');
      const login = await loginWithPassword(server, admin);
      expect([login.status, login.body?.error?.code]).toEqual([503, 'UNAVAILABLE']);
      expect(login.headers['retry-after']).toBe('1');
      expect(login.text).not.toContain(String(port));

      redis = await startRedis({ port });
      const up = server;
      await eventually(async () => (await httpRequest(up, '/readyz')).status === 200, { timeoutMs: 15_000, what: '/readyz turns 200' });
      const again = await loginWithPassword(server, admin);
      expect(again.status).toBe(200);
    } finally {
      await server?.close();
      await redis?.stop();
    }
  });
});
