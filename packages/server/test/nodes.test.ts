/**
 * Several nodes in one process, sharing the machine's Redis (a fresh key prefix per test): the effects of SPEC §8
 * that must reach sockets held by another node before the causing call answers. The same behaviours across real
 * processes are in packages/e2e/test/nodes.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import WebSocket from 'ws';
import { SessionStore } from '../src/actors/session-store.js';
import { UserStore } from '../src/actors/user-store.js';
import { RedisStore } from '../src/store/redis-store.js';
import { dropPrefix, MACHINE_REDIS_URL, redisPrefix, startCluster, startRedis, type RedisCluster, type RedisServer } from './redis.js';
import { eventually, expectOk, httpRequest, issueSession, post, startTestServer, TestClient, type TestServer } from '../src/testing/index.js';

// Enough keep-alive sockets that 200 requests are in flight at once.
const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });

let prefix = '';
let redisUrls = [MACHINE_REDIS_URL];
let cluster = false;
const servers: TestServer[] = [];
const clients: TestClient[] = [];

/** `n` nodes on one Redis (the machine's, unless a test started its own), one key prefix and one secret. */
async function startNodes(n: number): Promise<TestServer[]> {
  prefix = redisPrefix();
  const secret = randomBytes(32).toString('hex');
  for (let i = 0; i < n; i++) {
    const store = await RedisStore.open({ urls: redisUrls, cluster, prefix });
    servers.push(
      await startTestServer({ store, config: { store: 'redis', secret, redisPrefix: prefix, redisUrls, redisCluster: cluster, nodeLeaseS: 3, loginMaxFailures: 10_000 } }),
    );
  }
  return [...servers];
}

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await Promise.all(servers.splice(0).map((s) => s.close()));
  if (!cluster) await dropPrefix(redisUrls[0]!, prefix).catch(() => undefined);
});

/** Block on A closes the user's socket on B with 4003 before A's Block answers. */
async function blockClosesOnTheOtherNode(a: TestServer, b: TestServer): Promise<void> {
  const user = await issueSession(a, { role: 'user' });
  const admin = await issueSession(a, { role: 'admin' });
  const onB = await TestClient.connect(b, user.accessToken);
  clients.push(onB);
  expectOk(await onB.ask('UserStore', 'GetOwn'));
  const adminOnA = await TestClient.connect(a, admin.accessToken);
  clients.push(adminOnA);
  const answer = await adminOnA.ask('UserStore', 'Block', { uid: user.uid });
  // Read as the answer arrives: B wrote the close frame (the socket is closing) before A answered.
  expect(onB.ws.readyState).not.toBe(WebSocket.OPEN);
  expectOk(answer);
  expect((await onB.closed).code).toBe(4003);
}

describe('several nodes on one Redis', () => {
  it('a session made on A connects on B; Block on A closes the socket on B with 4003 before Block answers', async () => {
    const [a, b] = await startNodes(2);
    for (let round = 0; round < 5; round++) await blockClosesOnTheOtherNode(a!, b!);
  });

  it('a role change on A applies to the next ask on B', async () => {
    const [a, b] = await startNodes(2);
    const user = await issueSession(a!, { role: 'user' });
    const onB = await TestClient.connect(b!, user.accessToken);
    clients.push(onB);
    expect((await onB.ask('SessionStore', 'GetAll', {})).ok).toBe(false);
    await a!.ask(UserStore.Update, { uid: user.uid, role: 'admin' });
    expectOk(await onB.ask('SessionStore', 'GetAll', {}));
  });

  it('a revoke on B closes the session socket held by A before the revoke answers', async () => {
    const [a, b] = await startNodes(2);
    for (let round = 0; round < 5; round++) {
      const user = await issueSession(a!, { role: 'user' });
      const onA = await TestClient.connect(a!, user.accessToken);
      clients.push(onA);
      const adminOnB = await TestClient.connect(b!, (await issueSession(b!, { role: 'admin' })).accessToken);
      clients.push(adminOnB);
      expectOk(await adminOnB.ask('SessionStore', 'Revoke', { sid: user.sid }));
      expect(onA.ws.readyState).not.toBe(WebSocket.OPEN);
      expect((await onA.closed).code).toBe(4001);
    }
  });

  it('200 concurrent refreshes of one token over three nodes: one rotation, every caller the same pair', async () => {
    const nodes = await startNodes(3);
    for (let round = 0; round < 3; round++) {
      const user = await issueSession(nodes[0]!, { role: 'user' });
      const answers = await Promise.all(
        Array.from({ length: 200 }, (_, i) => post(nodes[i % 3]!, '/auth/refresh', { refreshToken: user.refreshToken }, { agent })),
      );
      expect(answers.map((a) => a.status)).toEqual(answers.map(() => 200));
      expect(new Set(answers.map((a) => a.body.refreshToken)).size).toBe(1);
      expect(new Set(answers.map((a) => a.body.accessToken)).size).toBe(1);
      expect(answers[0]!.body.refreshToken).not.toBe(user.refreshToken);
    }
  });

  it('25 concurrent logins of one user over two nodes: 20 live sessions, never more (run 3 times)', async () => {
    const [a, b] = await startNodes(2);
    for (let round = 0; round < 3; round++) {
      const first = await issueSession(a!, { role: 'user' });
      await Promise.all(Array.from({ length: 24 }, (_, i) => issueSession(i % 2 ? b! : a!, { uid: first.uid })));
      const mine = (await a!.ask(SessionStore.GetAll, { limit: 500 })).items.filter((s: { uid: string }) => s.uid === first.uid);
      expect(mine.filter((s: { revokedAt: number | null }) => s.revokedAt === null)).toHaveLength(20);
      // The least recently used went first: the session made before the others is among the evicted.
      expect(mine.find((s: { sid: string }) => s.sid === first.sid)?.revokedAt).not.toBeNull();
    }
  });

  it('an evicted session\'s socket on the other node closes 4001 before the login that evicted it answers', async () => {
    const [a, b] = await startNodes(2);
    const first = await issueSession(a!, { role: 'user' });
    const onB = await TestClient.connect(b!, first.accessToken);
    clients.push(onB);
    for (let i = 1; i < 20; i++) await issueSession(a!, { uid: first.uid });
    expect(onB.ws.readyState).toBe(WebSocket.OPEN);
    await issueSession(a!, { uid: first.uid });
    const closed = await onB.closed;
    expect(closed).toEqual({ code: 4001, reason: 'evicted' });
  });
});

describe('several nodes on a three-master Redis Cluster', () => {
  let redis: RedisCluster;
  beforeAll(async () => {
    redis = await startCluster();
    redisUrls = redis.urls;
    cluster = true;
  }, 60_000);
  afterAll(async () => {
    redisUrls = [MACHINE_REDIS_URL];
    cluster = false;
    await redis?.stop();
  });

  it('Block on A closes the socket on B with 4003 before Block answers (sharded pub/sub)', async () => {
    const [a, b] = await startNodes(2);
    for (let round = 0; round < 3; round++) await blockClosesOnTheOtherNode(a!, b!);
  });
});

describe('Redis killed with SIGKILL under write load (appendonly yes, appendfsync always)', () => {
  let redis: RedisServer;
  afterAll(async () => {
    redisUrls = [MACHINE_REDIS_URL];
    await redis?.stop();
  });

  it('loses no acknowledged write, and the nodes serve again by themselves once it is back', async () => {
    redis = await startRedis({ appendonly: true });
    redisUrls = [redis.url];
    const [a, b] = await startNodes(2);
    const acknowledged: Array<{ uid: string; sid: string }> = [];
    let writing = true;
    const writer = async (node: TestServer) => {
      while (writing) {
        try {
          const s = await issueSession(node, { role: 'user' });
          acknowledged.push({ uid: s.uid, sid: s.sid });
        } catch {
          // Refused while Redis is down: not acknowledged, so not counted.
        }
      }
    };
    const load = Promise.all([writer(a!), writer(b!), writer(a!), writer(b!)]);
    await eventually(() => acknowledged.length >= 40, { what: 'writes before the kill' });
    await redis.kill9();
    const before = acknowledged.length;
    await new Promise((r) => setTimeout(r, 500));
    redis = await startRedis({ appendonly: true, port: redis.port, dir: redis.dir });
    await eventually(() => acknowledged.length > before + 20, { what: 'writes after Redis came back', timeoutMs: 20_000 });
    writing = false;
    await load;
    const store = await RedisStore.open({ urls: redisUrls, cluster: false, prefix });
    try {
      for (const { uid, sid } of acknowledged) {
        expect((await store.get('users', uid))?.uid).toBe(uid);
        expect((await store.get('sessions', sid))?.uid).toBe(uid);
      }
    } finally {
      await store.close();
    }
    for (const node of [a!, b!]) await eventually(async () => (await httpRequest(node, '/readyz')).status === 200, { what: 'the node to be ready' });
  }, 90_000);
});
