/**
 * A node cut off from Redis (SPEC §8 Faults), its link to Redis going through a TcpProxy the test cuts — silently
 * (connections held unanswered, as behind a dropped route) or loudly (reset):
 * - it turns unready (`/readyz` 503, `/healthz` still 200); its logins, refreshes and upgrades answer 503
 *   `UNAVAILABLE` with Retry-After, its asks that need the store `UNAVAILABLE`;
 * - the other node goes on serving, and a logout there answers without waiting for the node it cannot reach;
 * - once its lease has run out it closes its sockets with 1013 `retry-after=N` (fail closed: it could not see that
 *   logout);
 * - when Redis is reachable again it serves again without a restart, and sees what changed meanwhile.
 *
 * Node A (0) reaches Redis directly, node B (1) through the proxy. The lease is the default, 10 s.
 */
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { eventually, expectError, expectOk, httpRequest, post, refusedUpgrade, TestClient } from '@greenroom/server/testing';
import { adminSocket, createUser, describeNodes, login, nodesFor, within, type User } from './cluster.js';
import { REDIS_URL } from './redis.js';
import { TcpProxy } from './tcp-proxy.js';

const A = 0;
const B = 1;
/** Generous: how soon a node notices is the Redis client's business; the test asserts what it does then. */
const NOTICE_MS = 60_000;

describeNodes('a node cut off from Redis', () => {
  let redisLink: TcpProxy;
  beforeAll(async () => {
    redisLink = await TcpProxy.start(Number(new URL(REDIS_URL).port || 6379));
  });
  const nodes = nodesFor(2, (i): Record<string, string> => (i === B ? { GREENROOM_REDIS_URL: `redis://127.0.0.1:${redisLink.port}` } : {}));
  let admin: TestClient;
  let user: User;
  const open: TestClient[] = [];

  beforeAll(async () => {
    admin = await adminSocket(nodes().url(A));
    open.push(admin);
    user = await createUser(admin);
  });
  afterAll(async () => {
    await Promise.all(open.map((s) => s.close()));
    await redisLink?.close();
  });

  const connect = async (i: number, token: string) => {
    const socket = await TestClient.connect(nodes().url(i), token);
    open.push(socket);
    return socket;
  };
  const retryAfter = (headers: Record<string, unknown>) => String(headers['retry-after']);

  it.each(['blackhole', 'refuse'] as const)('cut off (%s): unready, 503 with Retry-After, 1013 after the lease; back without a restart', async (mode) => {
    const staying = await login(nodes().url(A), { ...user, deviceId: `staying-${mode}` });
    const ending = await login(nodes().url(A), { ...user, deviceId: `ending-${mode}` });
    const onA = await connect(A, staying.accessToken);
    const onB = await connect(B, staying.accessToken);
    const endingOnB = await connect(B, ending.accessToken);

    redisLink.cut(mode);

    await eventually(async () => expect((await httpRequest(nodes().url(B), '/readyz')).status).toBe(503), { timeoutMs: NOTICE_MS, intervalMs: 100, what: 'B unready' });
    expect((await httpRequest(nodes().url(B), '/healthz')).status).toBe(200);
    const refusals = [
      await post(nodes().url(B), '/auth/login', { username: user.username, password: user.password }),
      await post(nodes().url(B), '/auth/refresh', { refreshToken: staying.refreshToken }),
      await refusedUpgrade(nodes().url(B), staying.accessToken),
    ];
    for (const answer of refusals) {
      await expectError(answer, 'UNAVAILABLE', { status: 503 });
      expect(retryAfter(answer.headers)).toMatch(/^[1-9]\d*$/);
    }
    await expectError(onB.ask('UserStore', 'GetOwn'), 'UNAVAILABLE');

    // A goes on: asks, and a logout that B cannot confirm answers all the same.
    expect(await expectOk(onA.ask('UserStore', 'GetOwn'))).toMatchObject({ uid: user.uid });
    const logout = await post(nodes().url(A), '/auth/logout', undefined, { headers: { Authorization: `Bearer ${ending.accessToken}` } });
    expect(logout.status).toBe(204);

    // Past its lease B closes what it holds: it cannot tell a live session from one ended meanwhile.
    const closes = await within(NOTICE_MS, "B's sockets closed", Promise.all([onB.closed, endingOnB.closed]));
    for (const c of closes) {
      expect(c.code).toBe(1013);
      expect(c.reason).toMatch(/^retry-after=[1-9]\d*$/);
    }
    expect(await expectOk(onA.ask('UserStore', 'GetOwn'))).toMatchObject({ uid: user.uid });

    redisLink.restore();

    await eventually(async () => expect((await httpRequest(nodes().url(B), '/readyz')).status).toBe(200), { timeoutMs: NOTICE_MS, intervalMs: 100, what: 'B ready again' });
    const back = await connect(B, staying.accessToken);
    expect(await expectOk(back.ask('UserStore', 'GetOwn'))).toMatchObject({ uid: user.uid });
    expect((await post(nodes().url(B), '/auth/refresh', { refreshToken: staying.refreshToken })).status).toBe(200);
    // The logout made on A while B was cut off holds on B.
    await expect(TestClient.connect(nodes().url(B), ending.accessToken)).rejects.toMatchObject({ status: 401 });
    await expectError(post(nodes().url(B), '/auth/refresh', { refreshToken: ending.refreshToken }), 'SESSION_REVOKED', { status: 401 });
  }, 240_000);
});
