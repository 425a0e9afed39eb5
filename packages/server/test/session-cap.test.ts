/**
 * At most N live sessions per user (docs/security.md; 20 by default, `maxSessionsPerUser`): opening one more evicts the
 * least recently used — revoked with revokeReason `evicted`, its live sockets closed 4001 `evicted` — and the
 * others stay open. A refresh makes a session recently used. Logins here are real POST /auth/login with a password.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import WebSocket from 'ws';
import type { SessionRecord } from '../src/actors/records.js';
import { internals } from '../src/server.js';
import { expectError, loginWithPassword, post, startTestServer, TestClient, type TestServer } from '../src/testing/index.js';
import { UserStore } from '../src/actors/user-store.js';

interface Login {
  uid: string;
  sid: string;
  accessToken: string;
  refreshToken: string;
}

const PASSWORD = 'a correct horse battery';

/** A password login from this device that must succeed: its tokens. */
async function loggedIn(server: TestServer, username: string, deviceId: string): Promise<Login> {
  const res = await loginWithPassword(server, { username, password: PASSWORD, deviceId });
  if (res.status !== 200) throw new Error(`login failed: ${res.status} ${res.text}`);
  return res.body as Login;
}

async function sessionsOf(server: TestServer, uid: string): Promise<Map<string, SessionRecord>> {
  const rows = await internals(server).store.findBy<SessionRecord>('sessions', 'uid', uid);
  return new Map(rows.map((r) => [r.id, r.value]));
}

/** Revoked (with the reason) or live, per sid, from the store. */
async function states(server: TestServer, uid: string, sids: string[]): Promise<string[]> {
  const all = await sessionsOf(server, uid);
  return sids.map((sid) => {
    const s = all.get(sid);
    if (!s) return 'missing';
    return s.revokedAt === null ? 'live' : `revoked:${s.revokeReason}`;
  });
}

/**
 * `cap + extra` logins of one user, each with its socket open; then a refresh of the oldest live session and one
 * more login, which must evict the second-oldest instead.
 */
function capScenario(cap: number, extra: number): void {
  const total = cap + extra;
  let server: TestServer;
  let uid: string;
  let username: string;
  const logins: Login[] = [];
  const sockets: TestClient[] = [];
  const closes: Array<{ index: number; code: number; reason: string }> = [];

  beforeAll(async () => {
    // Many real logins from 127.0.0.1: the limiter is tested elsewhere. Cap 20 is the default.
    server = await startTestServer({ config: { loginMaxFailures: 10_000, ...(cap === 20 ? {} : { maxSessionsPerUser: cap }) } });
    expect(server.config.maxSessionsPerUser).toBe(cap);
    username = `capped${cap}`;
    uid = (await server.ask(UserStore.Create, { username, password: PASSWORD, role: 'user' })).uid;
  });
  afterAll(async () => {
    await Promise.all(sockets.map((c) => c.close()));
    await server?.close();
  });

  it(`${total} logins, each with its socket open: after each login past ${cap}, exactly the least recently used session has been evicted`, async () => {
    for (let i = 0; i < total; i += 1) {
      const l = await loggedIn(server, username, `device-${i}`);
      expect(l.uid).toBe(uid);
      logins.push(l);
      const socket = await TestClient.connect(server, l.accessToken);
      const index = i;
      void socket.closed.then((c) => closes.push({ index, ...c }));
      sockets.push(socket);
      // When this login answers, the sessions older than the newest `cap` are revoked (evicted), the rest live.
      const expected = logins.map((_, j) => (j <= i - cap ? 'revoked:evicted' : 'live'));
      expect(await states(server, uid, logins.map((x) => x.sid))).toEqual(expected);
    }
  });

  it(`${cap} live sessions remain; the ${extra} oldest are revoked with revokeReason 'evicted'`, async () => {
    const all = await sessionsOf(server, uid);
    expect(all.size).toBe(total);
    const evicted = logins.slice(0, extra).map((l) => all.get(l.sid)!);
    for (const s of evicted) expect(s).toMatchObject({ revokedAt: expect.any(Number), revokeReason: 'evicted' });
    const live = logins.slice(extra).map((l) => all.get(l.sid)!);
    for (const s of live) expect(s).toMatchObject({ revokedAt: null, revokeReason: null });

    // The user's own view (SessionStore.GetOwn lists live sessions) agrees.
    const own = await sockets[total - 1]!.ask('SessionStore', 'GetOwn');
    expect(own.ok).toBe(true);
    if (!own.ok) return;
    expect(own.result.items.map((s: { sid: string }) => s.sid).sort()).toEqual(logins.slice(extra).map((l) => l.sid).sort());
    expect(own.result.items.every((s: { connections: number }) => s.connections === 1)).toBe(true);
  });

  it(`the sockets of the ${extra} evicted sessions got 4001 'evicted'; the ${cap} newest stay open and answer`, async () => {
    const closed = await Promise.all(sockets.slice(0, extra).map((s) => s.closed));
    expect(closed).toEqual(sockets.slice(0, extra).map(() => ({ code: 4001, reason: 'evicted' })));
    expect(sockets.slice(extra).map((s) => s.ws.readyState)).toEqual(sockets.slice(extra).map(() => WebSocket.OPEN));
    const replies = await Promise.all(sockets.slice(extra).map((s) => s.ask('UserStore', 'GetOwn')));
    expect(replies.map((r) => r.ok && r.result.uid)).toEqual(replies.map(() => uid));
    expect(closes.map((c) => c.index).sort((x, y) => x - y)).toEqual(Array.from({ length: extra }, (_, i) => i));
    // An evicted session can neither connect nor refresh.
    const refused = await TestClient.connect(server, logins[0]!.accessToken).then(
      () => null,
      (err: { status?: number }) => err.status,
    );
    expect(refused).toBe(401);
    await expectError(post(server, '/auth/refresh', { refreshToken: logins[0]!.refreshToken }), 'SESSION_REVOKED', { status: 401 });
  });

  it('a refresh makes the oldest live session recently used: the next login evicts the second-oldest instead', async () => {
    const oldest = extra;
    const secondOldest = extra + 1;
    const refreshed = await post(server, '/auth/refresh', { refreshToken: logins[oldest]!.refreshToken });
    expect(refreshed.status).toBe(200);
    expect(refreshed.body.sid).toBe(logins[oldest]!.sid);

    const next = await loggedIn(server, username, 'device-after-refresh');
    const sids = [...logins.map((l) => l.sid), next.sid];
    const expected = sids.map((_, j) => (j < extra || j === secondOldest ? 'revoked:evicted' : 'live'));
    expect(await states(server, uid, sids)).toEqual(expected);

    expect(await sockets[secondOldest]!.closed).toEqual({ code: 4001, reason: 'evicted' });
    expect(sockets[oldest]!.ws.readyState).toBe(WebSocket.OPEN);
    expect((await sockets[oldest]!.ask('UserStore', 'GetOwn')).ok).toBe(true);
    for (const s of sockets.slice(secondOldest + 1)) expect(s.ws.readyState).toBe(WebSocket.OPEN);

    // Still exactly `cap` live sessions.
    const live = [...(await sessionsOf(server, uid)).values()].filter((s) => s.revokedAt === null);
    expect(live).toHaveLength(cap);
  });

  it('other users are not affected by this user’s cap', async () => {
    await server.ask(UserStore.Create, { username: `${username}-other`, password: PASSWORD, role: 'user' });
    const other = await loggedIn(server, `${username}-other`, 'device-other');
    const all = await sessionsOf(server, uid);
    expect([...all.values()].filter((s) => s.revokedAt === null)).toHaveLength(cap);
    const socket = await TestClient.connect(server, other.accessToken);
    sockets.push(socket);
    expect((await socket.ask('UserStore', 'GetOwn')).ok).toBe(true);
  });
}

describe('the default cap: 20 live sessions per user', () => {
  capScenario(20, 5);
});

describe('a configured cap: maxSessionsPerUser 3', () => {
  capScenario(3, 2);
});
