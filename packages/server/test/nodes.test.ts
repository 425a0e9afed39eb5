/**
 * Several nodes in one process, sharing the machine's Redis (a fresh key prefix per test): the effects of SPEC §8
 * that must reach sockets held by another node before the causing call answers. The same behaviours across real
 * processes are in packages/e2e/test/nodes.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { Redis } from 'ioredis';
import WebSocket from 'ws';
import { SessionStore } from '../src/actors/session-store.js';
import { UserStore } from '../src/actors/user-store.js';
import { RedisStore } from '../src/store/redis-store.js';
import { expectOk, issueSession, post, startTestServer, TestClient, type TestServer } from '../src/testing/index.js';

const REDIS = 'redis://127.0.0.1:6379';
// Enough keep-alive sockets that 200 requests are in flight at once.
const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });

let prefix = '';
const servers: TestServer[] = [];
const clients: TestClient[] = [];

/** `n` nodes on one Redis prefix and one secret. */
async function startNodes(n: number): Promise<TestServer[]> {
  prefix = `t:${randomBytes(6).toString('hex')}:`;
  const secret = randomBytes(32).toString('hex');
  for (let i = 0; i < n; i++) {
    const store = await RedisStore.open({ urls: [REDIS], cluster: false, prefix });
    servers.push(await startTestServer({ store, config: { store: 'redis', secret, redisPrefix: prefix, redisUrls: [REDIS], nodeLeaseS: 3, loginMaxFailures: 10_000 } }));
  }
  return [...servers];
}

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await Promise.all(servers.splice(0).map((s) => s.close()));
  const redis = new Redis(REDIS);
  for (let cursor = '0'; ; ) {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    if (keys.length > 0) await redis.unlink(...keys);
    if ((cursor = next) === '0') break;
  }
  redis.disconnect();
});

describe('several nodes on one Redis', () => {
  it('a session made on A connects on B; Block on A closes the socket on B with 4003 before Block answers', async () => {
    const [a, b] = await startNodes(2);
    for (let round = 0; round < 5; round++) {
      const user = await issueSession(a!, { role: 'user' });
      const admin = await issueSession(a!, { role: 'admin' });
      const onB = await TestClient.connect(b!, user.accessToken);
      clients.push(onB);
      expectOk(await onB.ask('UserStore', 'GetOwn'));
      const adminOnA = await TestClient.connect(a!, admin.accessToken);
      clients.push(adminOnA);
      const answer = await adminOnA.ask('UserStore', 'Block', { uid: user.uid });
      // Read as the answer arrives: B wrote the close frame (the socket is closing) before A answered.
      expect(onB.ws.readyState).not.toBe(WebSocket.OPEN);
      expectOk(answer);
      const closed = await onB.closed;
      expect(closed.code).toBe(4003);
    }
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
