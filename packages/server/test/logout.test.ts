/**
 * POST /auth/logout (docs/protocol.md): with an access token (bearer or cookie) or a refresh token, 204; the session
 * is revoked, its sockets close 4001 `logout`, and nothing of it works afterwards (refresh, upgrade). Cookies from an
 * allowed origin are cleared; a cookie from a foreign origin is refused. Real server on loopback, real lowdb store.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expectError, issueSession, post, refusedUpgrade, startTestServer, TestClient, type TestServer } from '../src/testing/index.js';
import { storeOnDisk } from './helpers.js';

const bearer = (token: string) => ({ Authorization: `Bearer ${token}` });

function sessionOnDisk(server: TestServer, sid: string): Record<string, any> {
  return storeOnDisk(server.dataDir).sessions![sid]!;
}

describe('POST /auth/logout', () => {
  let server: TestServer;
  const clients: TestClient[] = [];
  const track = (c: TestClient) => (clients.push(c), c);

  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await server?.close();
  });

  /** A session with two open sockets, and another session of the same user with one (which must stay open). */
  async function sessionWithSockets() {
    const s = await issueSession(server);
    const other = await issueSession(server, { uid: s.uid });
    const sockets = [track(await TestClient.connect(server, s.accessToken)), track(await TestClient.connect(server, s.accessToken))];
    const bystander = track(await TestClient.connect(server, other.accessToken));
    for (const c of [...sockets, bystander]) expect((await c.ask('UserStore', 'GetOwn')).ok).toBe(true);
    return { s, other, sockets, bystander };
  }

  /** Everything that must hold once a session is logged out. */
  async function expectLoggedOut(s: { sid: string; accessToken: string; refreshToken: string }, sockets: TestClient[], bystander: TestClient) {
    for (const c of sockets) await expect(c.closed).resolves.toEqual({ code: 4001, reason: 'logout' });
    // Ended: kept for the lists, without its token state (no grace pair, no token hashes).
    expect(sessionOnDisk(server, s.sid)).toMatchObject({ revokedAt: expect.any(Number), revokeReason: 'logout', ended: true });
    for (const field of ['graceSealed', 'refreshHash', 'previousHash']) expect(sessionOnDisk(server, s.sid)).not.toHaveProperty(field);

    const refreshed = await post(server, '/auth/refresh', { refreshToken: s.refreshToken });
    expect(refreshed.status).toBe(401);
    expect(refreshed.body).toEqual({ error: { code: 'SESSION_REVOKED', message: expect.any(String) } });

    await expectError(refusedUpgrade(server, s.accessToken), 'SESSION_REVOKED', { status: 401 });

    // Only this session: the user's other session is untouched.
    expect((await bystander.ask('UserStore', 'GetOwn')).ok).toBe(true);
  }

  it('with a bearer access token → 204; its sockets close 4001 logout; its refresh token then gets 401 SESSION_REVOKED and an upgrade with the old access token 401 SESSION_REVOKED', async () => {
    const { s, sockets, bystander } = await sessionWithSockets();
    const answer = await post(server, '/auth/logout', undefined, { headers: bearer(s.accessToken) });
    expect(answer.status).toBe(204);
    expect(answer.body).toBeUndefined();
    expect(answer.cookies).toEqual([]); // not a cookie request: no cookies to clear
    await expectLoggedOut(s, sockets, bystander);
  });

  it('with a refresh token in the body → 204, and the same', async () => {
    const { s, sockets, bystander } = await sessionWithSockets();
    const answer = await post(server, '/auth/logout', { refreshToken: s.refreshToken });
    expect(answer.status).toBe(204);
    expect(answer.cookies).toEqual([]);
    await expectLoggedOut(s, sockets, bystander);
  });

  it('with a refresh token already rotated (the old one) still ends that session', async () => {
    const { s, sockets, bystander } = await sessionWithSockets();
    const rotated = await post(server, '/auth/refresh', { refreshToken: s.refreshToken });
    expect(rotated.status).toBe(200);
    const answer = await post(server, '/auth/logout', { refreshToken: s.refreshToken });
    expect(answer.status).toBe(204);
    await expectLoggedOut({ ...s, refreshToken: rotated.body.refreshToken }, sockets, bystander);
  });

  it('with cookies from the own origin → 204, clears both cookies (Max-Age=0), and the same', async () => {
    const { s, sockets, bystander } = await sessionWithSockets();
    const answer = await post(server, '/auth/logout', undefined, {
      headers: { Cookie: `gr_access=${s.accessToken}; gr_refresh=${s.refreshToken}`, Origin: server.url },
    });
    expect(answer.status).toBe(204);
    expectCleared(answer.cookies);
    await expectLoggedOut(s, sockets, bystander);
  });

  it('with only the refresh cookie (the access cookie gone) from the own origin → 204, clears both cookies, and the same', async () => {
    const { s, sockets, bystander } = await sessionWithSockets();
    const answer = await post(server, '/auth/logout', undefined, { headers: { Cookie: `gr_refresh=${s.refreshToken}`, Origin: server.url } });
    expect(answer.status).toBe(204);
    expectCleared(answer.cookies);
    await expectLoggedOut(s, sockets, bystander);
  });

  it('with cookies from a foreign origin, or with no Origin → 403 BAD_ORIGIN, and the session stays live', async () => {
    const { s, sockets } = await sessionWithSockets();
    const before = sessionOnDisk(server, s.sid);
    const refusals: Array<Record<string, string>> = [
      { Cookie: `gr_access=${s.accessToken}; gr_refresh=${s.refreshToken}`, Origin: 'http://evil.example' },
      { Cookie: `gr_access=${s.accessToken}; gr_refresh=${s.refreshToken}` },
      { Cookie: `gr_refresh=${s.refreshToken}`, Origin: 'http://evil.example' },
      { Cookie: `gr_refresh=${s.refreshToken}` },
    ];
    for (const headers of refusals) {
      const answer = await post(server, '/auth/logout', undefined, { headers });
      expect(answer.status).toBe(403);
      expect(answer.body).toEqual({ error: { code: 'BAD_ORIGIN', message: expect.any(String) } });
      expect(answer.cookies).toEqual([]);
    }
    expect(sessionOnDisk(server, s.sid)).toEqual(before);
    for (const c of sockets) expect((await c.ask('UserStore', 'GetOwn')).ok).toBe(true);
  });

  it('with no credential → 401 UNAUTHENTICATED; with a junk bearer or junk refresh token → 401 INVALID_TOKEN; nothing is revoked', async () => {
    const { s, sockets } = await sessionWithSockets();
    const before = sessionOnDisk(server, s.sid);

    const none = await post(server, '/auth/logout');
    expect(none.status).toBe(401);
    expect(none.body).toEqual({ error: { code: 'UNAUTHENTICATED', message: expect.any(String) } });

    const emptyBody = await post(server, '/auth/logout', {});
    expect(emptyBody.status).toBe(401);
    expect(emptyBody.body.error.code).toBe('UNAUTHENTICATED');

    const junkBearer = await post(server, '/auth/logout', undefined, { headers: bearer('not.a.jwt') });
    expect(junkBearer.status).toBe(401);
    expect(junkBearer.body.error.code).toBe('INVALID_TOKEN');

    // A bad bearer never falls through to the (valid) refresh token in the body.
    const badBearerGoodBody = await post(server, '/auth/logout', { refreshToken: s.refreshToken }, { headers: bearer('not.a.jwt') });
    expect(badBearerGoodBody.status).toBe(401);
    expect(badBearerGoodBody.body.error.code).toBe('INVALID_TOKEN');

    const forged = `${s.refreshToken.split('.').slice(0, 3).join('.')}.${'A'.repeat(43)}`;
    const junkRefresh = await post(server, '/auth/logout', { refreshToken: forged });
    expect(junkRefresh.status).toBe(401);
    expect(junkRefresh.body.error.code).toBe('INVALID_TOKEN');

    expect(sessionOnDisk(server, s.sid)).toEqual(before);
    for (const c of sockets) expect((await c.ask('UserStore', 'GetOwn')).ok).toBe(true);
  });

  it('twice → 204 both times (bearer, then refresh token, then cookies), and the session was ended once', async () => {
    const { s, sockets, bystander } = await sessionWithSockets();
    const first = await post(server, '/auth/logout', undefined, { headers: bearer(s.accessToken) });
    expect(first.status).toBe(204);
    const revokedAt = sessionOnDisk(server, s.sid).revokedAt;
    expect(revokedAt).toEqual(expect.any(Number));

    expect((await post(server, '/auth/logout', undefined, { headers: bearer(s.accessToken) })).status).toBe(204);
    expect((await post(server, '/auth/logout', { refreshToken: s.refreshToken })).status).toBe(204);
    const viaCookie = await post(server, '/auth/logout', undefined, { headers: { Cookie: `gr_access=${s.accessToken}`, Origin: server.url } });
    expect(viaCookie.status).toBe(204);
    expectCleared(viaCookie.cookies);

    // The first logout's record stands: the later ones changed nothing.
    expect(sessionOnDisk(server, s.sid)).toMatchObject({ revokedAt, revokeReason: 'logout' });
    await expectLoggedOut(s, sockets, bystander);
  });
});

function expectCleared(cookies: string[]): void {
  expect(cookies).toHaveLength(2);
  const access = cookies.find((c) => c.startsWith('gr_access='));
  const refresh = cookies.find((c) => c.startsWith('gr_refresh='));
  const attrs = (c: string | undefined) => (c ?? '').split(';').map((p) => p.trim());
  expect(attrs(access)).toEqual(expect.arrayContaining(['gr_access=', 'Path=/', 'Max-Age=0', 'HttpOnly', 'SameSite=Strict']));
  expect(attrs(refresh)).toEqual(expect.arrayContaining(['gr_refresh=', 'Path=/auth', 'Max-Age=0', 'HttpOnly', 'SameSite=Strict']));
}
