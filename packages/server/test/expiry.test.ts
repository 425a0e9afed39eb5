/**
 * Socket lifetimes (docs/security.md and docs/protocol.md "Close reasons"): access-token expiry alone never closes a socket; an expired
 * session closes its sockets 4001 `expired` at the latest on the next ask or heartbeat; a revocation closes them
 * before the revoking call answers. Lifetimes are configured short; tests wait beyond them and assert outcomes.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import WebSocket from 'ws';
import { internals } from '../src/server.js';
import { expectError, issueSession, post, refusedUpgrade, startTestServer, TestClient, type Closed, type TestServer } from '../src/testing/index.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Sends a frame without waiting for an answer (an ask on an expired session gets none: the socket closes). */
function sendAsk(client: TestClient, id: string): void {
  client.ws.send(JSON.stringify({ id, to: 'UserStore', type: 'GetOwn', payload: {} }));
}

/** Records every frame a client receives, so a test can tell that an ask was never answered. */
function frames(client: TestClient): string[] {
  const seen: string[] = [];
  client.ws.on('message', (data) => seen.push(data.toString()));
  return seen;
}

describe('access-token expiry does not close a socket (accessTtlS: 1)', () => {
  let server: TestServer;
  let client: TestClient;
  beforeAll(async () => {
    server = await startTestServer({ config: { accessTtlS: 1, heartbeatMs: 200 } });
  });
  afterAll(async () => {
    await client?.close();
    await server?.close();
  });

  it('the socket stays open 2 s past the access token’s expiry, heartbeats included, and still answers asks', async () => {
    const s = await issueSession(server, { role: 'user' });
    expect(s.accessExpiresAt - Date.now()).toBeLessThanOrEqual(1000);
    client = await TestClient.connect(server, s.accessToken);
    let closed: Closed | null = null;
    void client.closed.then((c) => (closed = c));
    await sleep(2000);
    expect(Date.now()).toBeGreaterThan(s.accessExpiresAt);
    expect(closed).toBeNull();
    expect(client.ws.readyState).toBe(WebSocket.OPEN);
    expect(await client.ask('UserStore', 'GetOwn')).toMatchObject({ ok: true, result: { uid: s.uid } });
    expect(await client.ask('SessionStore', 'GetOwn')).toMatchObject({ ok: true });
    // The expired access token itself can no longer open a socket.
    const refused = await TestClient.connect(server, s.accessToken).then(
      (c) => (void c.close(), null),
      (err: { status?: number }) => err.status,
    );
    expect(refused).toBe(401);
  });
});

describe('an expired session closes its socket 4001 expired on the next ask (refreshTtlS: 1, slow heartbeat)', () => {
  let server: TestServer;
  const clients: TestClient[] = [];
  beforeAll(async () => {
    // The heartbeat is far off: only the ask can notice the expiry.
    server = await startTestServer({ config: { refreshTtlS: 1, heartbeatMs: 60_000 } });
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await server?.close();
  });

  it('the socket stays open until the session is past expiry and an ask arrives; that ask closes it (no answer)', async () => {
    const s = await issueSession(server, { role: 'user' });
    const client = await TestClient.connect(server, s.accessToken);
    clients.push(client);
    const seen = frames(client);
    // Live for now.
    expect(await client.ask('UserStore', 'GetOwn')).toMatchObject({ ok: true });
    const answered = seen.length;

    await sleep(1500);
    expect(Date.now()).toBeGreaterThan(s.refreshExpiresAt);
    // Nothing has closed it yet: no ask, no heartbeat.
    expect(client.ws.readyState).toBe(WebSocket.OPEN);

    sendAsk(client, 'after-expiry');
    expect(await client.closed).toEqual({ code: 4001, reason: 'expired' });
    expect(seen).toHaveLength(answered);

    // The session is over: no new socket, no refresh.
    expect((await refusedUpgrade(server, s.accessToken)).status).toBe(401);
    await expectError(post(server, '/auth/refresh', { refreshToken: s.refreshToken }), 'SESSION_EXPIRED', { status: 401 });
  });
});

describe('a refresh extends the life of the session’s open sockets (refreshTtlS: 2, slow heartbeat)', () => {
  let server: TestServer;
  let client: TestClient;
  beforeAll(async () => {
    server = await startTestServer({ config: { refreshTtlS: 2, heartbeatMs: 60_000 } });
  });
  afterAll(async () => {
    await client?.close();
    await server?.close();
  });

  it('after a refresh, the same socket still answers past the first expiry', async () => {
    const s = await issueSession(server, { role: 'user' });
    client = await TestClient.connect(server, s.accessToken);
    await sleep(1000);
    const refresh = await post(server, '/auth/refresh', { refreshToken: s.refreshToken });
    expect(refresh.status).toBe(200);
    const pair = refresh.body as { refreshExpiresAt: number };
    expect(pair.refreshExpiresAt).toBeGreaterThan(s.refreshExpiresAt);
    // Past the first expiry (and before the new one: the scenario holds).
    await sleep(Math.max(0, s.refreshExpiresAt - Date.now()) + 150);
    expect(Date.now()).toBeGreaterThan(s.refreshExpiresAt);
    expect(Date.now()).toBeLessThan(pair.refreshExpiresAt);
    expect(await client.ask('UserStore', 'GetOwn')).toMatchObject({ ok: true, result: { uid: s.uid } });
    expect(client.ws.readyState).toBe(WebSocket.OPEN);
  });
});

describe('an expired session closes its socket 4001 expired on the heartbeat, without any ask (refreshTtlS: 1, heartbeatMs: 200)', () => {
  let server: TestServer;
  let client: TestClient;
  beforeAll(async () => {
    server = await startTestServer({ config: { refreshTtlS: 1, heartbeatMs: 200 } });
  });
  afterAll(async () => {
    await client?.close();
    await server?.close();
  });

  it('closes 4001 expired with no ask sent', async () => {
    const s = await issueSession(server, { role: 'user' });
    client = await TestClient.connect(server, s.accessToken);
    const seen = frames(client);
    const closed = await client.closed;
    expect(closed).toEqual({ code: 4001, reason: 'expired' });
    // It closed only once the session was over, and nothing was sent to it before.
    expect(Date.now()).toBeGreaterThanOrEqual(s.refreshExpiresAt);
    expect(seen).toEqual([]);
  });
});

describe('revocation closes the socket before the revoking ask answers', () => {
  let server: TestServer;
  const clients: TestClient[] = [];
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await server?.close();
  });

  it('SessionStore.Revoke by an admin: the victim’s close frame has arrived when the answer arrives; 4001 revoked', async () => {
    const victimSession = await issueSession(server, { role: 'user' });
    const victim = await TestClient.connect(server, victimSession.accessToken);
    const bystander = await TestClient.connect(server, (await issueSession(server, { role: 'user' })).accessToken);
    const admin = await TestClient.connect(server, (await issueSession(server, { role: 'admin' })).accessToken);
    clients.push(victim, bystander, admin);
    expect((await victim.ask('UserStore', 'GetOwn')).ok).toBe(true);

    // Synchronously in the 'message' event carrying the answer, read the victim's state: a socket that has read
    // the server's close frame is no longer OPEN (ws starts its closing handshake at once). The server wrote the
    // close frame before the answer, and this process reads ready sockets in the order their data arrived.
    const { reply, victimOpen } = await new Promise<{ reply: any; victimOpen: boolean }>((resolve) => {
      const on = (data: WebSocket.RawData) => {
        const frame = JSON.parse(data.toString());
        if (frame.id !== 'revoke-1') return;
        admin.ws.off('message', on);
        resolve({ reply: frame, victimOpen: victim.ws.readyState === WebSocket.OPEN });
      };
      admin.ws.on('message', on);
      admin.ws.send(JSON.stringify({ id: 'revoke-1', to: 'SessionStore', type: 'Revoke', payload: { sid: victimSession.sid } }));
    });
    expect(reply).toMatchObject({ ok: true, result: { revoked: 1 } });
    expect(victimOpen).toBe(false);
    expect(await victim.closed).toEqual({ code: 4001, reason: 'revoked' });

    // Durable, and no new socket for it; the bystander is untouched.
    expect(await internals(server).store.get('sessions', victimSession.sid)).toMatchObject({ revokedAt: expect.any(Number), revokeReason: 'revoked' });
    expect(await TestClient.connect(server, victimSession.accessToken).then(() => null, (err: { status?: number }) => err.status)).toBe(401);
    expect(bystander.ws.readyState).toBe(WebSocket.OPEN);
    expect((await bystander.ask('UserStore', 'GetOwn')).ok).toBe(true);
  });
});
