/**
 * The auth state several nodes share through Redis (SPEC §8): tickets, the attempt windows of the login, guest and
 * exchange limiters, and the cleanup lease. Each test plays two nodes: two instances of a piece on two connections
 * to the real Redis at 127.0.0.1:6379, and holds them to what one node does. Every test writes under its own random
 * key prefix and deletes its keys afterwards.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { Redis } from 'ioredis';
import { LoginLimiter } from '../src/auth/login-limiter.js';
import { Lease } from '../src/cluster/lease.js';
import { connectRedis, type RedisClient } from '../src/cluster/redis.js';
import { SharedAttempts } from '../src/cluster/shared-attempts.js';
import { SharedTickets } from '../src/cluster/shared-tickets.js';
import { GreenroomError } from '../src/errors.js';
import { MemoryStore } from '../src/store/memory-store.js';
import { issueSession, loginWithPassword, post, refusedUpgrade, signInAsGuest, startTestServer, type TestServer } from '../src/testing/index.js';

const URL = 'redis://127.0.0.1:6379';
/** Nothing listens here: Redis cannot be reached. */
const DOWN = 'redis://127.0.0.1:1';

let admin: Redis;
let prefix: string;
/** The two nodes' connections. */
let a: RedisClient;
let b: RedisClient;
const opened: RedisClient[] = [];
const servers: TestServer[] = [];

function connect(name: string, url = URL): RedisClient {
  const redis = connectRedis({ urls: [url], cluster: false, prefix }, name);
  opened.push(redis);
  return redis;
}

/** Every key under `p`, and its value where it is a string or a hash. */
async function keysUnder(p: string): Promise<Array<{ key: string; value: string }>> {
  const out: Array<{ key: string; value: string }> = [];
  let cursor = '0';
  do {
    const [next, keys] = await admin.scan(cursor, 'MATCH', `${p}*`, 'COUNT', 1000);
    for (const key of keys) {
      const type = await admin.type(key);
      const value =
        type === 'string' ? ((await admin.get(key)) ?? '') : type === 'hash' ? JSON.stringify(await admin.hgetall(key)) : JSON.stringify(await admin.zrange(key, 0, -1));
      out.push({ key, value });
    }
    cursor = next;
  } while (cursor !== '0');
  return out;
}

async function deleteUnder(p: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await admin.scan(cursor, 'MATCH', `${p}*`, 'COUNT', 1000);
    if (keys.length > 0) await admin.unlink(...keys);
    cursor = next;
  } while (cursor !== '0');
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Alternately node a's and node b's instance. */
const either = <T>(pair: readonly [T, T], i: number): T => pair[i % 2]!;

beforeAll(() => {
  admin = new Redis(URL);
});

afterAll(async () => {
  await admin.quit();
});

beforeEach(() => {
  prefix = `t:${randomBytes(6).toString('hex')}:`;
  a = connect('test-a');
  b = connect('test-b');
});

afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
  for (const redis of opened.splice(0)) redis.disconnect();
  await deleteUnder(prefix);
});

describe('tickets shared by two nodes', () => {
  const alice = { uid: 'u-alice', sid: 's-alice', role: 'user' };
  const pair = (max = 20, ttlMs = 30_000) => [new SharedTickets(a, prefix, ttlMs, max), new SharedTickets(b, prefix, ttlMs, max)] as const;

  it('a ticket issued on one node is spent exactly once when 20 spends race over both', async () => {
    const nodes = pair();
    for (let round = 0; round < 10; round++) {
      const { ticket } = await either(nodes, round).issue(alice);
      const spent = await Promise.all(Array.from({ length: 20 }, (_, i) => either(nodes, i).spend(ticket)));
      const winners = spent.filter((e) => e !== null);
      expect(winners).toEqual([{ ...alice, expiresAt: expect.any(Number) }]);
      expect(await nodes[0].spend(ticket)).toBeNull();
      expect(await nodes[1].spend(ticket)).toBeNull();
    }
  });

  it('the per-user cap holds across nodes: a new ticket on either withdraws the oldest outstanding', async () => {
    const nodes = pair(3);
    const issued: string[] = [];
    for (let i = 0; i < 5; i++) issued.push((await either(nodes, i).issue(alice)).ticket);
    const bob = await nodes[1].issue({ uid: 'u-bob', sid: 's-bob', role: 'user' });
    // The two oldest of alice's are withdrawn; the newest three, and bob's, are good once each.
    const spent = await Promise.all(issued.map((t, i) => either(nodes, i + 1).spend(t)));
    expect(spent.map((e) => e !== null)).toEqual([false, false, true, true, true]);
    expect(await nodes[0].spend(bob.ticket)).toMatchObject({ uid: 'u-bob' });

    // A spent ticket no longer counts: with one spent, the next issue withdraws nothing (as on one node).
    const [t1, t2, t3] = [await nodes[0].issue(alice), await nodes[1].issue(alice), await nodes[0].issue(alice)];
    expect(await nodes[1].spend(t3.ticket)).not.toBeNull();
    const t4 = await nodes[1].issue(alice);
    expect((await Promise.all([t1, t2, t4].map((t, i) => either(nodes, i).spend(t.ticket)))).every((e) => e !== null)).toBe(true);
  });

  it('tickets issued at once on both nodes leave the user at most the cap', async () => {
    const nodes = pair(3);
    for (let round = 0; round < 3; round++) {
      const issued = await Promise.all(Array.from({ length: 12 }, (_, i) => either(nodes, i).issue(alice)));
      const spent = await Promise.all(issued.map((t, i) => either(nodes, i).spend(t.ticket)));
      expect(spent.filter((e) => e !== null)).toHaveLength(3);
    }
  });

  it('an expired ticket opens nothing', async () => {
    const nodes = pair(20, 300);
    const { ticket } = await nodes[0].issue(alice);
    await sleep(400);
    expect(await nodes[1].spend(ticket)).toBeNull();
  });

  it('Redis holds a digest of the ticket, never the ticket, and a user key with the user hash tag', async () => {
    const nodes = pair();
    const { ticket } = await nodes[0].issue(alice);
    const stored = await keysUnder(prefix);
    expect(stored.length).toBeGreaterThan(0);
    for (const { key, value } of stored) expect(key + value).not.toContain(ticket);
    expect(stored.map((s) => s.key)).toContain(`${prefix}{u:u-alice}:tickets`);
    // Expiring: nothing outlives the ticket's lifetime.
    for (const { key } of stored) expect(await admin.pttl(key)).toBeGreaterThan(0);
  });
});

describe('the login limiter shared by two nodes', () => {
  const MAX = 5;
  const known = async () => false;
  const pair = (max = MAX, windowMs = 60_000) =>
    [new LoginLimiter(new SharedAttempts(a, prefix, 'login', max, windowMs)), new LoginLimiter(new SharedAttempts(b, prefix, 'login', max, windowMs))] as const;
  /** Tries, fails and reports each attempt in turn: what it named, or 'limited'. */
  const failures = async (limiter: (i: number) => LoginLimiter, n: number, username = 'alice', address = '10.0.0.1') => {
    const out: Array<string[] | 'limited'> = [];
    for (let i = 0; i < n; i++) {
      try {
        out.push(await (await limiter(i).begin(username, address, known)).failed());
      } catch (err) {
        expect(err).toMatchObject({ code: 'RATE_LIMITED', details: { retryAfterSeconds: expect.any(Number) } });
        out.push('limited');
      }
    }
    return out;
  };

  it('failures spread alternately over both trip it at exactly the count of one node, naming the burst once', async () => {
    const one = new LoginLimiter(MAX, 60_000);
    const nodes = pair();
    try {
      const alone = await failures(() => one, MAX + 3);
      const spread = await failures((i) => either(nodes, i), MAX + 3);
      expect(spread).toEqual(alone);
      expect(spread).toEqual([[], [], [], [], ['address', 'username-address', 'username'], 'limited', 'limited', 'limited']);
    } finally {
      one.stop();
    }
  });

  it('50 parallel attempts spread over both at max-1 let exactly one through', async () => {
    const nodes = pair();
    for (let round = 0; round < 5; round++) {
      const [username, address] = [`user${round}`, `10.0.1.${round}`];
      await failures((i) => either(nodes, i), MAX - 1, username, address);
      const results = await Promise.allSettled(Array.from({ length: 50 }, (_, i) => either(nodes, i).begin(username, address, known)));
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      for (const r of results) if (r.status === 'rejected') expect(r.reason).toMatchObject({ code: 'RATE_LIMITED' });
    }
  });

  it('a refund on one node is seen by the other', async () => {
    const nodes = pair(3);
    await (await nodes[0].begin('alice', '10.0.0.2', known)).failed();
    await (await nodes[1].begin('alice', '10.0.0.2', known)).failed();
    // The right password on a: its attempt is taken back, so b still has one try before the limit.
    await (await nodes[0].begin('alice', '10.0.0.2', known)).succeeded();
    expect(await (await nodes[1].begin('alice', '10.0.0.2', known)).failed()).toEqual(['address', 'username-address', 'username']);
    await expect(nodes[0].begin('alice', '10.0.0.2', known)).rejects.toMatchObject({ code: 'RATE_LIMITED' });
  });

  it('a burst failing at once on both nodes is named by exactly one failure', async () => {
    const nodes = pair(3);
    for (let round = 0; round < 5; round++) {
      const address = `10.0.2.${round}`;
      const attempts = await Promise.all(Array.from({ length: 3 }, (_, i) => either(nodes, i).begin(`user${round}`, address, known)));
      const named = await Promise.all(attempts.map((at) => at.failed()));
      expect(named.filter((n) => n.length > 0)).toEqual([['address', 'username-address', 'username']]);
    }
  });

  it('a username locked across addresses still lets a known device in, on either node', async () => {
    const nodes = pair(3);
    for (let i = 0; i < 3; i++) await (await either(nodes, i).begin('admin', `10.0.3.${i}`, known)).failed();
    await expect(nodes[0].begin('admin', '10.0.3.9', known)).rejects.toMatchObject({ code: 'RATE_LIMITED' });
    const device = await nodes[1].begin('admin', '10.0.3.9', async () => true, 'device-key');
    await device.succeeded();
  });

  it('windows expire: after the window the count starts over', async () => {
    const nodes = pair(2, 1000);
    expect(await failures((i) => either(nodes, i), 3)).toEqual([[], ['address', 'username-address', 'username'], 'limited']);
    await sleep(1100);
    expect(await failures((i) => either(nodes, i + 1), 3)).toEqual([[], ['address', 'username-address', 'username'], 'limited']);
    // And nothing is left in Redis once the windows have passed.
    await sleep(1100);
    expect(await keysUnder(prefix)).toEqual([]);
  });

  it('a refund or a report from a window that has passed leaves the new window alone', async () => {
    const [wa, wb] = [new SharedAttempts(a, prefix, 'guest', 2, 1000), new SharedAttempts(b, prefix, 'guest', 2, 1000)];
    const old = await wa.take(['a:10.0.4.1']);
    expect(old.ok).toBe(true);
    await sleep(1100);
    expect((await wb.take(['a:10.0.4.1'])).ok).toBe(true);
    expect((await wb.take(['a:10.0.4.1'])).ok).toBe(true);
    if (!old.ok) throw new Error('unreachable');
    await wa.refund(old.counted);
    expect(await wa.newlyAtLimit(old.counted)).toEqual([]);
    expect(await wb.take(['a:10.0.4.1'])).toEqual({ ok: false, retryAfter: 1 });
  });

  it('Redis holds no username or address, only digests under the limiter hash tag, each expiring', async () => {
    const nodes = pair();
    await (await nodes[0].begin('my secret password', '192.0.2.77', known, 'dv-key')).failed();
    const stored = await keysUnder(prefix);
    expect(stored).toHaveLength(4);
    for (const { key, value } of stored) {
      expect(key.startsWith(`${prefix}{login}:`)).toBe(true);
      expect(key + value).not.toMatch(/secret|192\.0\.2\.77|dv-key/);
      expect(await admin.pttl(key)).toBeGreaterThan(0);
    }
  });
});

describe('the cleanup lease', () => {
  it('is held by one of two contenders at a time, and passes on when the holder gives it back', async () => {
    for (let round = 0; round < 5; round++) {
      const [la, lb] = [new Lease(a, prefix, `cleanup${round}`, 10_000), new Lease(b, prefix, `cleanup${round}`, 10_000)];
      const taken = await Promise.all([la.acquire(), lb.acquire()]);
      expect(taken.filter(Boolean)).toHaveLength(1);
      const [holder, other] = taken[0] ? [la, lb] : [lb, la];
      expect(await other.acquire()).toBe(false);
      expect(await holder.renew()).toBe(true);
      await holder.release();
      expect(await other.acquire()).toBe(true);
      expect(await holder.acquire()).toBe(false);
      await other.release();
    }
  });

  it('passes on when its TTL runs out, and the old holder can neither renew nor end the new holder', async () => {
    const [la, lb] = [new Lease(a, prefix, 'cleanup', 300), new Lease(b, prefix, 'cleanup', 300)];
    expect(await la.acquire()).toBe(true);
    expect(await lb.acquire()).toBe(false);
    await sleep(400);
    expect(await lb.acquire()).toBe(true);
    expect(await la.renew()).toBe(false);
    expect(la.held).toBe(false);
    await la.release();
    expect(await la.acquire()).toBe(false);
    expect(lb.held).toBe(true);
  });

  it('run: one node runs at a time, the lease is renewed while it runs, and given back after', async () => {
    const [la, lb] = [new Lease(a, prefix, 'cleanup', 600), new Lease(b, prefix, 'cleanup', 600)];
    let running = 0;
    let most = 0;
    const job = async () => {
      running += 1;
      most = Math.max(most, running);
      // Longer than the TTL: only renewal keeps the other out.
      for (let i = 0; i < 6; i++) {
        await sleep(250);
        expect(await lb.acquire()).toBe(false);
      }
      running -= 1;
      return 'done';
    };
    const [ra, rb] = await Promise.all([la.run(job), sleep(50).then(() => lb.run(job))]);
    expect([ra, rb]).toEqual(['done', undefined]);
    expect(most).toBe(1);
    expect(await lb.acquire()).toBe(true);
  });
});

describe('when Redis cannot be reached', () => {
  it('tickets, limiters and the lease answer UNAVAILABLE with a Retry-After, naming no secret', async () => {
    const down = connect('test-down', DOWN);
    const tickets = new SharedTickets(down, prefix, 30_000, 20);
    const limiter = new LoginLimiter(new SharedAttempts(down, prefix, 'login', 5, 60_000));
    const failures = await Promise.allSettled([
      tickets.issue({ uid: 'u', sid: 's', role: 'user' }),
      tickets.spend('a-ticket-value'),
      limiter.begin('alice', '10.0.0.1', async () => false),
      new Lease(down, prefix, 'cleanup', 1000).acquire(),
    ]);
    for (const f of failures) {
      expect(f.status).toBe('rejected');
      const err = (f as PromiseRejectedResult).reason as GreenroomError;
      expect(err).toBeInstanceOf(GreenroomError);
      expect(err).toMatchObject({ code: 'UNAVAILABLE', details: { retryAfterSeconds: 1 } });
      expect(err.message).not.toMatch(/a-ticket-value|alice|10\.0\.0\.1|127\.0\.0\.1/);
    }
  });
});

describe('a server with the Redis store', () => {
  const redisConfig = (url = URL) => ({ store: 'redis' as const, redisUrls: [url], redisPrefix: prefix, loginMaxFailures: 3, guestMaxPerWindow: 2 });

  it('counts login failures and guest sign-ins across two servers, and keeps its tickets in Redis', async () => {
    const nodes = [
      await startTestServer({ store: new MemoryStore(), config: redisConfig() }),
      await startTestServer({ store: new MemoryStore(), config: redisConfig() }),
    ] as const;
    servers.push(...nodes);
    const statuses = [];
    for (let i = 0; i < 5; i++) statuses.push((await loginWithPassword(either(nodes, i), { username: 'nobody', password: `wrong ${i}` })).status);
    expect(statuses).toEqual([401, 401, 401, 429, 429]);
    const guests = [];
    for (let i = 0; i < 3; i++) guests.push((await signInAsGuest(either(nodes, i))).status);
    expect(guests).toEqual([200, 200, 429]);

    const s = await issueSession(nodes[0]);
    const issued = await post(nodes[0], '/auth/ticket', {}, { headers: { Authorization: `Bearer ${s.accessToken}` } });
    expect(issued.status).toBe(200);
    expect((await keysUnder(`${prefix}tk:`)).length).toBe(1);
  });

  it('answers login, guest and a ticket upgrade with 503 UNAVAILABLE and Retry-After while Redis is down', async () => {
    // (Issuing a ticket needs a session, which cannot be made without Redis: SharedTickets.issue is held to the same
    // answer above.)
    const server = await startTestServer({ store: new MemoryStore(), config: redisConfig(DOWN) });
    servers.push(server);
    const answers = [await loginWithPassword(server, { username: 'alice', password: 'whatever' }), await signInAsGuest(server)];
    for (const answer of answers) {
      expect(answer.status).toBe(503);
      expect(answer.body).toEqual({ error: { code: 'UNAVAILABLE', message: expect.any(String) } });
      expect(answer.headers['retry-after']).toBe('1');
    }
    const upgrade = await refusedUpgrade(server, undefined, { query: '?ticket=some-ticket' });
    expect(upgrade.status).toBe(503);
    expect(upgrade.headers['retry-after']).toBe('1');
  });
});
