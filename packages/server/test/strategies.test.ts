/**
 * Choosing an authentication strategy (docs/protocol.md "Choosing a strategy", "Cookies"): `Authorization: Bearer`,
 * then `?ticket=`, then the `gr_access` cookie. The first credential present decides; an invalid, spent or expired
 * one is 401 and never falls through. Cookie authentication needs an allowed Origin (403 BAD_ORIGIN otherwise,
 * no Origin included); bearer and ticket are not Origin-bound. Authenticating writes nothing and sets no cookie.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import WebSocket from 'ws';
import {
  eventually,
  expectError,
  issueSession,
  post,
  rawUpgrade,
  refusedUpgrade,
  startTestServer,
  TestClient,
  type HttpAnswer,
  type TestServer,
  type UpgradeAnswer,
} from '../src/testing/index.js';
import { storeContents, storeFileBytes } from './helpers.js';
import { SessionStore } from '../src/actors/session-store.js';

type Issued = Awaited<ReturnType<typeof issueSession>>;

const ALLOWED = 'https://app.example.test';
const FOREIGN = 'https://evil.example.test';

type Answer = HttpAnswer | UpgradeAnswer;

/** Destroys the connection of an upgrade that was accepted (the server unregisters it); the answer as it was. */
function hangUp(answer: UpgradeAnswer): UpgradeAnswer {
  answer.socket?.destroy();
  return answer;
}

const bearer = (token: string) => ({ Authorization: `Bearer ${token}` });
const cookie = (s: Issued) => ({ Cookie: `gr_access=${s.accessToken}` });

/** Whose socket this is: the uid (UserStore.GetOwn) and the session marked current (SessionStore.GetOwn). */
async function whoIs(client: TestClient): Promise<{ uid: string; sid: string }> {
  const user = await client.ask('UserStore', 'GetOwn');
  const sessions = await client.ask('SessionStore', 'GetOwn');
  if (!user.ok || !sessions.ok) throw new Error('GetOwn failed');
  const current = (sessions.result.items as Array<{ sid: string; current: boolean }>).filter((s) => s.current);
  expect(current).toHaveLength(1);
  return { uid: user.result.uid, sid: current[0]!.sid };
}

describe('authentication strategies on a WebSocket upgrade and on POST /auth/ticket', () => {
  let server: TestServer;
  let a: Issued;
  let b: Issued;
  const clients: TestClient[] = [];
  const track = (c: TestClient) => (clients.push(c), c);
  const own = () => server.url; // http://127.0.0.1:PORT, the server's own origin

  beforeAll(async () => {
    server = await startTestServer({ config: { allowedOrigins: [ALLOWED] } });
    a = await issueSession(server, { role: 'user' });
    b = await issueSession(server, { role: 'user' });
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await server?.close();
  });

  async function ticketFor(s: Issued): Promise<string> {
    const res = await post(server, '/auth/ticket', undefined, { headers: bearer(s.accessToken) });
    expect(res.status).toBe(200);
    return res.body.ticket;
  }

  describe('bearer first', () => {
    it('bearer for A and cookie for B (from an allowed origin) on one upgrade: the socket is A’s', async () => {
      const client = track(await TestClient.connect(server, a.accessToken, { headers: { ...cookie(b), Origin: own() } }));
      expect(await whoIs(client)).toEqual({ uid: a.uid, sid: a.sid });
    });

    it('bearer for A and cookie for B from a foreign origin: still A’s socket (the cookie is never consulted, bearer is not Origin-bound)', async () => {
      const client = track(await TestClient.connect(server, a.accessToken, { headers: { ...cookie(b), Origin: FOREIGN } }));
      expect(await whoIs(client)).toEqual({ uid: a.uid, sid: a.sid });
    });

    it('an invalid bearer beside a valid cookie from the own origin is 401: no fall-through to the cookie', async () => {
      await expectError(refusedUpgrade(server, 'not.a.jwt', { headers: { ...cookie(b), Origin: own() } }), 'INVALID_TOKEN', { status: 401 });
      await expectError(
        refusedUpgrade(server, undefined, { headers: { Authorization: 'Basic Zm9vOmJhcg==', ...cookie(b), Origin: own() } }),
        'INVALID_TOKEN',
        { status: 401 },
      );
      // An empty Authorization header is still a present bearer credential.
      await expectError(refusedUpgrade(server, undefined, { headers: { Authorization: '', ...cookie(b), Origin: own() } }), 'INVALID_TOKEN', { status: 401 });
    });

    it('bearer for A beside a valid ticket for B: A’s socket, and B’s ticket is not spent (only the strategy that applies has an effect)', async () => {
      const ticket = await ticketFor(b);
      const client = track(await TestClient.connect(server, a.accessToken, { query: `?ticket=${ticket}` }));
      expect(await whoIs(client)).toEqual({ uid: a.uid, sid: a.sid });
      const viaTicket = track(await TestClient.connect(server, undefined, { query: `?ticket=${ticket}` }));
      expect(await whoIs(viaTicket)).toEqual({ uid: b.uid, sid: b.sid });
    });

    it('an invalid bearer beside a valid ticket is 401, and the ticket stays unspent', async () => {
      const ticket = await ticketFor(b);
      await expectError(refusedUpgrade(server, 'junk', { query: `?ticket=${ticket}` }), 'INVALID_TOKEN', { status: 401 });
      const viaTicket = track(await TestClient.connect(server, undefined, { query: `?ticket=${ticket}` }));
      expect(await whoIs(viaTicket)).toEqual({ uid: b.uid, sid: b.sid });
    });
  });

  describe('tickets', () => {
    it('POST /auth/ticket with a bearer answers 200 {ticket, expiresAt} (30 s ahead, epoch ms) and sets no cookie', async () => {
      const before = Date.now();
      const res = await post(server, '/auth/ticket', undefined, { headers: bearer(a.accessToken) });
      const after = Date.now();
      expect(res.status).toBe(200);
      expect(Object.keys(res.body).sort()).toEqual(['expiresAt', 'ticket']);
      expect(typeof res.body.ticket).toBe('string');
      expect(res.body.ticket.length).toBeGreaterThanOrEqual(32);
      expect(res.body.expiresAt).toBeGreaterThanOrEqual(before + 30_000);
      expect(res.body.expiresAt).toBeLessThanOrEqual(after + 30_000);
      expect(res.headers['set-cookie']).toBeUndefined();
      // Two tickets are never the same.
      expect((await post(server, '/auth/ticket', undefined, { headers: bearer(a.accessToken) })).body.ticket).not.toBe(res.body.ticket);
    });

    it('POST /auth/ticket without a credential is 401 UNAUTHENTICATED, with a bad bearer 401 INVALID_TOKEN', async () => {
      await expectError(post(server, '/auth/ticket'), 'UNAUTHENTICATED', { status: 401 });
      await expectError(post(server, '/auth/ticket', undefined, { headers: bearer('junk') }), 'INVALID_TOKEN', { status: 401 });
    });

    it('an upgrade with ?ticket= answers 101 and the socket belongs to the ticket’s session; the same ticket again is 401', async () => {
      const ticket = await ticketFor(a);
      const raw = hangUp(await rawUpgrade(server, undefined, { query: `?ticket=${encodeURIComponent(ticket)}` }));
      expect(raw.status).toBe(101);
      expect(raw.headers['set-cookie']).toBeUndefined();
      await expectError(refusedUpgrade(server, undefined, { query: `?ticket=${encodeURIComponent(ticket)}` }), 'INVALID_TOKEN', { status: 401 });

      const second = await ticketFor(b);
      const client = track(await TestClient.connect(server, undefined, { query: `?ticket=${second}` }));
      expect(await whoIs(client)).toEqual({ uid: b.uid, sid: b.sid });
      await expectError(refusedUpgrade(server, undefined, { query: `?ticket=${second}` }), 'INVALID_TOKEN', { status: 401 });
    });

    it('a ticket is not Origin-bound: a foreign Origin (or none) does not matter', async () => {
      const client = track(await TestClient.connect(server, undefined, { query: `?ticket=${await ticketFor(a)}`, headers: { Origin: FOREIGN } }));
      expect(await whoIs(client)).toEqual({ uid: a.uid, sid: a.sid });
    });

    it('a ticket beside a cookie for another user from a foreign origin: the ticket decides (101, the ticket’s session)', async () => {
      const client = track(await TestClient.connect(server, undefined, { query: `?ticket=${await ticketFor(a)}`, headers: { ...cookie(b), Origin: FOREIGN } }));
      expect(await whoIs(client)).toEqual({ uid: a.uid, sid: a.sid });
    });

    it('a junk ?ticket= beside a valid cookie from the own origin is 401 (no fall-through to the cookie)', async () => {
      await expectError(
        refusedUpgrade(server, undefined, { query: '?ticket=junk', headers: { ...cookie(a), Origin: own() } }),
        'INVALID_TOKEN',
        { status: 401 },
      );
      await expectError(refusedUpgrade(server, undefined, { query: '?ticket=', headers: { ...cookie(a), Origin: own() } }), 'INVALID_TOKEN', { status: 401 });
    });

    it('a spent ticket beside a valid cookie is 401 as well', async () => {
      const ticket = await ticketFor(a);
      track(await TestClient.connect(server, undefined, { query: `?ticket=${ticket}` }));
      await expectError(
        refusedUpgrade(server, undefined, { query: `?ticket=${ticket}`, headers: { ...cookie(a), Origin: own() } }),
        'INVALID_TOKEN',
        { status: 401 },
      );
    });
  });

  describe('cookies and Origin', () => {
    it('a cookie upgrade from a foreign Origin is 403 BAD_ORIGIN (no 101)', async () => {
      await expectError(refusedUpgrade(server, undefined, { headers: { ...cookie(a), Origin: FOREIGN } }), 'BAD_ORIGIN', { status: 403 });
      // Same host, other scheme or port: foreign too.
      await expectError(
        refusedUpgrade(server, undefined, { headers: { ...cookie(a), Origin: own().replace('http:', 'https:') } }),
        'BAD_ORIGIN',
        { status: 403 },
      );
      const otherPort = `http://127.0.0.1:${server.port === 1 ? 2 : 1}`;
      await expectError(refusedUpgrade(server, undefined, { headers: { ...cookie(a), Origin: otherPort } }), 'BAD_ORIGIN', { status: 403 });
      await expectError(refusedUpgrade(server, undefined, { headers: { ...cookie(a), Origin: 'null' } }), 'BAD_ORIGIN', { status: 403 });
    });

    it('a cookie upgrade with no Origin header is 403 BAD_ORIGIN', async () => {
      await expectError(refusedUpgrade(server, undefined, { headers: cookie(a) }), 'BAD_ORIGIN', { status: 403 });
    });

    it('a cookie upgrade from the server’s own origin (http://127.0.0.1:PORT) answers 101 and the socket is the cookie’s session', async () => {
      const raw = hangUp(await rawUpgrade(server, undefined, { headers: { ...cookie(a), Origin: own() } }));
      expect(raw.status).toBe(101);
      expect(raw.headers['set-cookie']).toBeUndefined();
      const client = track(await TestClient.connect(server, undefined, { headers: { ...cookie(b), Origin: own() } }));
      expect(await whoIs(client)).toEqual({ uid: b.uid, sid: b.sid });
    });

    it('a cookie upgrade from an origin in allowedOrigins answers 101', async () => {
      expect(hangUp(await rawUpgrade(server, undefined, { headers: { ...cookie(a), Origin: ALLOWED } })).status).toBe(101);
      const client = track(await TestClient.connect(server, undefined, { headers: { ...cookie(a), Origin: ALLOWED } }));
      expect(await whoIs(client)).toEqual({ uid: a.uid, sid: a.sid });
    });

    it('the cookie is read among others, and a junk gr_access from an allowed origin is 401', async () => {
      const client = track(await TestClient.connect(server, undefined, { headers: { Cookie: `theme=dark; gr_access=${a.accessToken}; x=1`, Origin: own() } }));
      expect(await whoIs(client)).toEqual({ uid: a.uid, sid: a.sid });
      await expectError(refusedUpgrade(server, undefined, { headers: { Cookie: 'gr_access=junk', Origin: own() } }), 'INVALID_TOKEN', { status: 401 });
    });

    it('POST /auth/ticket by cookie: the own origin → 200; foreign or missing Origin → 403 BAD_ORIGIN', async () => {
      const ok = await post(server, '/auth/ticket', undefined, { headers: { ...cookie(a), Origin: own() } });
      expect(ok.status).toBe(200);
      expect(ok.headers['set-cookie']).toBeUndefined();
      await expectError(post(server, '/auth/ticket', undefined, { headers: { ...cookie(a), Origin: FOREIGN } }), 'BAD_ORIGIN', { status: 403 });
      await expectError(post(server, '/auth/ticket', undefined, { headers: cookie(a) }), 'BAD_ORIGIN', { status: 403 });
    });
  });

  describe('authenticating writes nothing', () => {
    /** Every record of every collection, the counts, and the store file's bytes. */
    async function snapshot() {
      return { records: await storeContents(server), file: (await storeFileBytes(server)).toString('base64') };
    }

    const liveConnections = async () => (await server.ask(SessionStore.Stats)).connections;

    /** Runs `n` requests, `batch` at a time (every socket is closed before the next batch). */
    async function inBatches(n: number, batch: number, one: (i: number) => Promise<Answer>): Promise<Answer[]> {
      const out: Answer[] = [];
      for (let i = 0; i < n; i += batch) {
        out.push(...(await Promise.all(Array.from({ length: Math.min(batch, n - i) }, (_, j) => one(i + j)))));
      }
      return out;
    }

    it('1,000 bearer-authenticated requests and 1,000 failed ones change no session, user or fingerprint, and set no cookie', async () => {
      // More sessions, one of them revoked, so the store has something to lose.
      const users = [a, b, ...(await Promise.all([1, 2, 3].map(() => issueSession(server, { role: 'user' }))))];
      const revoked = await issueSession(server, { role: 'user' });
      await server.ask(SessionStore.Revoke, { sid: revoked.sid });
      const spent = await ticketFor(a);
      expect(hangUp(await rawUpgrade(server, undefined, { query: `?ticket=${spent}` })).status).toBe(101);
      for (const c of clients.splice(0)) await c.close();
      await eventually(async () => (await liveConnections()) === 0);

      const before = await snapshot();
      expect(before.records.sessions!.count).toBeGreaterThanOrEqual(6);

      // 1,000 that succeed: bearer upgrades and POST /auth/ticket, alternating.
      const ok = await inBatches(1000, 50, (i) => {
        const s = users[i % users.length]!;
        return i % 2 === 0 ? rawUpgrade(server, s.accessToken).then(hangUp) : post(server, '/auth/ticket', undefined, { headers: bearer(s.accessToken) });
      });
      expect(ok.map((r, i) => (i % 2 === 0 ? r.status === 101 : r.status === 200 && typeof r.body.ticket === 'string'))).toEqual(ok.map(() => true));

      // 1,000 that fail, every way there is.
      const failures: Array<{ status: number; code: string; send: () => Promise<Answer> }> = [
        { status: 401, code: 'INVALID_TOKEN', send: () => refusedUpgrade(server, undefined, { headers: bearer('junk.junk.junk') }) },
        { status: 401, code: 'INVALID_TOKEN', send: () => refusedUpgrade(server, undefined, { headers: bearer(`${a.accessToken.slice(0, -3)}AAA`) }) },
        { status: 401, code: 'SESSION_REVOKED', send: () => refusedUpgrade(server, undefined, { headers: bearer(revoked.accessToken) }) },
        { status: 401, code: 'INVALID_TOKEN', send: () => refusedUpgrade(server, undefined, { query: `?ticket=${randomBytes(32).toString('base64url')}` }) },
        { status: 401, code: 'INVALID_TOKEN', send: () => refusedUpgrade(server, undefined, { query: `?ticket=${spent}`, headers: { ...cookie(a), Origin: own() } }) },
        { status: 401, code: 'INVALID_TOKEN', send: () => refusedUpgrade(server, undefined, { headers: { Cookie: 'gr_access=junk', Origin: own() } }) },
        { status: 403, code: 'BAD_ORIGIN', send: () => refusedUpgrade(server, undefined, { headers: { ...cookie(a), Origin: FOREIGN } }) },
        { status: 403, code: 'BAD_ORIGIN', send: () => refusedUpgrade(server, undefined, { headers: cookie(b) }) },
        { status: 401, code: 'INVALID_TOKEN', send: () => post(server, '/auth/ticket', undefined, { headers: bearer('junk') }) },
        { status: 401, code: 'INVALID_TOKEN', send: () => post(server, '/auth/ticket?ticket=junk') },
        { status: 403, code: 'BAD_ORIGIN', send: () => post(server, '/auth/ticket', undefined, { headers: { ...cookie(a), Origin: FOREIGN } }) },
        { status: 401, code: 'INVALID_TOKEN', send: () => post(server, '/auth/ticket', undefined, { headers: { Cookie: 'gr_access=junk', Origin: own() } }) },
      ];
      const failed = await inBatches(1000, 50, (i) => failures[i % failures.length]!.send());
      expect(failed.map((r) => `${r.status} ${r.body?.error?.code}`)).toEqual(failed.map((_, i) => `${failures[i % failures.length]!.status} ${failures[i % failures.length]!.code}`));

      // No answer carried a cookie.
      expect([...ok, ...failed].filter((r) => r.headers['set-cookie'] !== undefined)).toEqual([]);

      // Every upgraded socket is gone again; then nothing in the store differs, record for record and byte for byte.
      await eventually(async () => (await liveConnections()) === 0);
      const after = await snapshot();
      expect(after.records).toEqual(before.records);
      expect(after.file).toBe(before.file);
    });
  });
});

describe('an expired ticket', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ config: { ticketTtlS: 1 } });
  });
  afterAll(async () => {
    await server?.close();
  });

  it('is 401 once its lifetime (ticketTtlS: 1) has passed, unused', async () => {
    const s = await issueSession(server, { role: 'user' });
    const res = await post(server, '/auth/ticket', undefined, { headers: bearer(s.accessToken) });
    expect(res.status).toBe(200);
    expect(res.body.expiresAt - Date.now()).toBeLessThanOrEqual(1000);
    await new Promise((r) => setTimeout(r, 1500));
    await expectError(refusedUpgrade(server, undefined, { query: `?ticket=${res.body.ticket}` }), 'INVALID_TOKEN', { status: 401 });
    // A fresh one still works.
    const fresh = await post(server, '/auth/ticket', undefined, { headers: bearer(s.accessToken) });
    const client = await TestClient.connect(server, undefined, { query: `?ticket=${fresh.body.ticket}` });
    expect(client.ws.readyState).toBe(WebSocket.OPEN);
    expect((await client.ask('UserStore', 'GetOwn')).ok).toBe(true);
    await client.close();
  });
});
