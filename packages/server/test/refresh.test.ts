/**
 * POST /auth/refresh (docs/security.md "Tokens"; docs/protocol.md "Lifetimes", "Cookies") against a real server on
 * loopback with a real lowdb store: one rotation for N concurrent callers of one token, the grace pair (sealed on
 * disk, forgotten when the grace period ends), reuse revoking the whole session and closing its sockets, the
 * decision order, sliding and absolute expiry, per-session serialization, nothing left behind after 10,000
 * sessions, and the cookie flavour of refresh with its Origin check.
 *
 * Tests assert order and outcomes only; where a grace period or a lifetime must pass, they wait for it (configured
 * to a second or two) and poll with a bounded number of tries.
 */
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { internals } from '../src/server.js';
import type { WriteOp } from '../src/store/store.js';
import {
  eventually,
  expectOk,
  httpRequest,
  issueSession,
  loginWithPassword,
  post,
  startTestServer,
  TestClient,
  type Closed,
  type TestServer,
} from '../src/testing/index.js';
import { SessionStore } from '../src/actors/session-store.js';
import { UserStore } from '../src/actors/user-store.js';
import { storeOnDisk, storeTextOnDisk } from './helpers.js';

type Doc = Record<string, Record<string, any>>;

// Enough keep-alive sockets that 200 requests are in flight at once.
const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });

const refresh = (server: TestServer, refreshToken: string) => post(server, '/auth/refresh', { refreshToken }, { agent });

/** The store file as it is on disk at this instant. */
function diskText(server: TestServer): string {
  return storeTextOnDisk(server.dataDir);
}
function disk(server: TestServer): Doc {
  return storeOnDisk(server.dataDir) as Doc;
}
const sessionOnDisk = (server: TestServer, sid: string) => disk(server).sessions![sid];

/** A stored session once it has ended: the same record without its token state (one expiry, no longer sliding). */
function withoutTokenState(record: Record<string, any>): Record<string, any> {
  const { refreshHash: _h, generation: _g, previousHash: _p, rotatedAt: _r, graceSealed: _s, absoluteExpiresAt, ...kept } = record;
  return { ...kept, expiresAt: Math.min(kept.expiresAt, absoluteExpiresAt), ended: true };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits until every grace pair of this server has been forgotten: pendingGrace is 0 only once none is left on disk. */
const graceForgotten = (server: TestServer) =>
  eventually(() => internals(server).refresh.pendingGrace === 0, { what: 'the grace pairs to be forgotten', timeoutMs: 10_000, intervalMs: 25 });

/** Opens `count` keep-alive sockets in the agent's pool, so a burst of requests does not wait on TCP handshakes. */
async function warmUp(server: TestServer, count: number): Promise<void> {
  await Promise.all(Array.from({ length: count }, () => httpRequest(server, '/healthz', { agent })));
}

/** Replaces the MAC (the 4th part) of a refresh token. */
function withPart(token: string, index: number, value: string): string {
  const parts = token.split('.');
  parts[index] = value;
  return parts.join('.');
}

const clients: TestClient[] = [];
const track = (c: TestClient) => (clients.push(c), c);

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  agent.destroy();
});

describe('200 concurrent refreshes presenting one token', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ config: { refreshGraceS: 1 } });
  });
  afterAll(async () => {
    await server?.close();
  });

  it('make one rotation and give all 200 callers the same pair, 5 rounds; a retry in the grace period gets that pair; after it, the old token is a reuse that revokes the session and closes its socket 4001 revoked', async () => {
    const ROUNDS = 5;
    const N = 200;
    const rounds: Array<{ sid: string; old: string; pair: any; socket: TestClient }> = [];

    for (let round = 0; round < ROUNDS; round++) {
      const s = await issueSession(server);
      expect(sessionOnDisk(server, s.sid)).toMatchObject({ generation: 0, revokedAt: null });
      await warmUp(server, N);
      const before = internals(server).refresh.rotations;

      const answers = await Promise.all(Array.from({ length: N }, () => refresh(server, s.refreshToken)));

      expect(answers.map((a) => a.status)).toEqual(Array(N).fill(200));
      const pair = answers[0]!.body;
      expect(pair).toMatchObject({ uid: s.uid, sid: s.sid, role: 'user', accessToken: expect.any(String), refreshToken: expect.any(String) });
      expect(pair.refreshToken).not.toBe(s.refreshToken);
      expect(pair.accessToken).not.toBe(s.accessToken);
      for (const a of answers) expect(a.body).toEqual(pair);
      expect(new Set(answers.map((a) => a.body.refreshToken)).size).toBe(1);
      expect(new Set(answers.map((a) => a.body.accessToken)).size).toBe(1);
      expect(internals(server).refresh.rotations - before).toBe(1);
      expect(sessionOnDisk(server, s.sid)).toMatchObject({ generation: 1, revokedAt: null, revokeReason: null });

      // A retry after a lost response, within the grace period: the very same pair, still one rotation.
      const retry = await refresh(server, s.refreshToken);
      expect(retry.status).toBe(200);
      expect(retry.body).toEqual(pair);
      expect(internals(server).refresh.rotations - before).toBe(1);

      // The new pair is live: its access token opens a socket that answers.
      const socket = track(await TestClient.connect(server, pair.accessToken));
      expect((await expectOk(socket.ask('UserStore', 'GetOwn'))).uid).toBe(s.uid);
      rounds.push({ sid: s.sid, old: s.refreshToken, pair, socket });
    }

    // Past the grace period (1 s): every pair is forgotten, and the replaced token is now a reuse.
    await graceForgotten(server);
    for (const r of rounds) expect(sessionOnDisk(server, r.sid)).toMatchObject({ graceSealed: null, revokedAt: null });

    for (const r of rounds) {
      const reuse = await refresh(server, r.old);
      expect(reuse.status).toBe(401);
      expect(reuse.body.error.code).toBe('REFRESH_REUSED');
      await expect(r.socket.closed).resolves.toEqual({ code: 4001, reason: 'revoked' } satisfies Closed);
      expect(sessionOnDisk(server, r.sid)).toMatchObject({ revokedAt: expect.any(Number), revokeReason: 'revoked', ended: true });
      expect(sessionOnDisk(server, r.sid)).not.toHaveProperty('graceSealed');
      // The whole family is revoked: the current token is refused too, and so is a new socket.
      const current = await refresh(server, r.pair.refreshToken);
      expect(current.status).toBe(401);
      expect(current.body.error.code).toBe('SESSION_REVOKED');
      await expect(TestClient.connect(server, r.pair.accessToken)).rejects.toMatchObject({ status: 401 });
    }
  });
});

describe('refresh decision order (docs/security.md)', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ config: { refreshGraceS: 1 } });
  });
  afterAll(async () => {
    await server?.close();
  });

  type Issued = Awaited<ReturnType<typeof issueSession>>;

  const blockDirectly = async (uid: string) => {
    // Not UserStore.Block: that also revokes every session (so the answer would be SESSION_REVOKED).
    const u = await internals(server).store.get<Record<string, unknown>>('users', uid);
    await internals(server).store.put('users', uid, { ...u!, blocked: true });
  };
  const expireDirectly = (sid: string) =>
    internals(server).sessionLocks.run(sid, async () => {
      const s = await internals(server).store.get<Record<string, unknown>>('sessions', sid);
      await internals(server).store.put('sessions', sid, { ...s!, expiresAt: Date.now() - 1000 });
    });
  const revoke = (sid: string) => server.ask(SessionStore.Revoke, { sid });
  const rotateOk = async (token: string) => {
    const a = await refresh(server, token);
    if (a.status !== 200) throw new Error(`refresh failed: ${a.status} ${JSON.stringify(a.body)}`);
    return a.body as { accessToken: string; refreshToken: string };
  };

  interface Row {
    name: string;
    /** Prepares the session and returns the token to present. */
    token: (s: Issued) => Promise<string>;
    status: number;
    code: string;
    /** Whether this refresh itself revokes the session. */
    revokes: boolean;
    /** Whether it finds the session expired, and so drops its token state (nothing else of it changes). */
    expires?: boolean;
  }

  const rows: Row[] = [
    { name: 'junk → INVALID_TOKEN', token: async () => 'not-a-refresh-token', status: 401, code: 'INVALID_TOKEN', revokes: false },
    { name: 'empty-looking parts → INVALID_TOKEN', token: async () => '...', status: 401, code: 'INVALID_TOKEN', revokes: false },
    {
      name: "the session's token with a bad MAC → INVALID_TOKEN",
      token: async (s) => withPart(s.refreshToken, 3, 'A'.repeat(43)),
      status: 401,
      code: 'INVALID_TOKEN',
      revokes: false,
    },
    {
      name: "the session's token with another generation (MAC no longer matches) → INVALID_TOKEN",
      token: async (s) => withPart(s.refreshToken, 1, '7'),
      status: 401,
      code: 'INVALID_TOKEN',
      revokes: false,
    },
    {
      name: 'a well-formed token for an unknown sid (valid MAC) → INVALID_TOKEN',
      token: async () => internals(server).tokens.newRefreshToken(randomUUID(), 0),
      status: 401,
      code: 'INVALID_TOKEN',
      revokes: false,
    },
    {
      name: 'junk for a revoked session → INVALID_TOKEN (unknown is decided first)',
      token: async (s) => (await revoke(s.sid), withPart(s.refreshToken, 3, 'B'.repeat(43))),
      status: 401,
      code: 'INVALID_TOKEN',
      revokes: false,
    },
    { name: 'revoked session → SESSION_REVOKED', token: async (s) => (await revoke(s.sid), s.refreshToken), status: 401, code: 'SESSION_REVOKED', revokes: false },
    {
      name: 'revoked and expired session → SESSION_REVOKED (revoked before expired)',
      token: async (s) => (await revoke(s.sid), await expireDirectly(s.sid), s.refreshToken),
      status: 401,
      code: 'SESSION_REVOKED',
      revokes: false,
    },
    {
      name: 'blocked by UserStore.Block (which revokes the sessions) → SESSION_REVOKED',
      token: async (s) => (await server.ask(UserStore.Block, { uid: s.uid }), s.refreshToken),
      status: 401,
      code: 'SESSION_REVOKED',
      revokes: false,
    },
    {
      name: 'expired and blocked → SESSION_EXPIRED (expired before blocked)',
      token: async (s) => (await expireDirectly(s.sid), await blockDirectly(s.uid), s.refreshToken),
      status: 401,
      code: 'SESSION_EXPIRED',
      revokes: false,
      expires: true,
    },
    { name: 'blocked user, live session → 403 BLOCKED', token: async (s) => (await blockDirectly(s.uid), s.refreshToken), status: 403, code: 'BLOCKED', revokes: false },
    {
      name: 'blocked user presenting a reused token → 403 BLOCKED, nothing revoked (blocked before reuse)',
      token: async (s) => {
        const first = await rotateOk(s.refreshToken);
        await rotateOk(first.refreshToken);
        await blockDirectly(s.uid);
        return s.refreshToken;
      },
      status: 403,
      code: 'BLOCKED',
      revokes: false,
    },
    {
      name: 'a token two rotations back → REFRESH_REUSED, the session revoked',
      token: async (s) => {
        const first = await rotateOk(s.refreshToken);
        await rotateOk(first.refreshToken);
        return s.refreshToken;
      },
      status: 401,
      code: 'REFRESH_REUSED',
      revokes: true,
    },
    {
      name: 'a server-minted token of this session with a generation never issued → REFRESH_REUSED, the session revoked',
      token: async (s) => internals(server).tokens.newRefreshToken(s.sid, 0),
      status: 401,
      code: 'REFRESH_REUSED',
      revokes: true,
    },
  ];

  it.each(rows)('$name', async (row: Row) => {
    const s = await issueSession(server);
    const socket = track(await TestClient.connect(server, s.accessToken));
    const token = await row.token(s);
    const before = sessionOnDisk(server, s.sid);
    const rotations = internals(server).refresh.rotations;

    const answer = await refresh(server, token);

    expect(answer.status).toBe(row.status);
    expect(answer.body).toEqual({ error: { code: row.code, message: expect.any(String) } });
    expect(internals(server).refresh.rotations).toBe(rotations);
    const after = sessionOnDisk(server, s.sid);
    if (row.revokes) {
      expect(after).toMatchObject({ revokedAt: expect.any(Number), revokeReason: 'revoked' });
      await expect(socket.closed).resolves.toEqual({ code: 4001, reason: 'revoked' });
      const next = await refresh(server, s.refreshToken);
      expect(next.body.error.code).toBe('SESSION_REVOKED');
    } else {
      // Nothing was written (but the token state of a session found expired): the record is what it was.
      expect(after).toEqual(row.expires ? withoutTokenState(before) : before);
    }
    await socket.close();
  });

  it('refuses nothing else for INVALID_TOKEN: the session stays live and its socket open', async () => {
    const s = await issueSession(server);
    const socket = track(await TestClient.connect(server, s.accessToken));
    const before = sessionOnDisk(server, s.sid);
    for (const token of ['x', withPart(s.refreshToken, 3, 'C'.repeat(43)), withPart(s.refreshToken, 0, randomUUID()), internals(server).tokens.newRefreshToken(randomUUID(), 3)]) {
      expect((await refresh(server, token)).body.error.code).toBe('INVALID_TOKEN');
    }
    expect(sessionOnDisk(server, s.sid)).toEqual(before);
    expect((await expectOk(socket.ask('UserStore', 'GetOwn'))).uid).toBe(s.uid);
    const ok = await refresh(server, s.refreshToken);
    expect(ok.status).toBe(200);
    expect(sessionOnDisk(server, s.sid).generation).toBe(1);
  });

  it('the current token rotates; the token just replaced, within the grace period, yields the same pair', async () => {
    const s = await issueSession(server);
    const first = await refresh(server, s.refreshToken);
    expect(first.status).toBe(200);
    expect(first.body).toEqual({
      uid: s.uid,
      role: 'user',
      sid: s.sid,
      accessToken: expect.any(String),
      refreshToken: expect.stringMatching(new RegExp(`^${s.sid}\\.1\\.`)),
      accessExpiresAt: expect.any(Number),
      refreshExpiresAt: expect.any(Number),
    });
    const again = await refresh(server, s.refreshToken);
    expect(again.status).toBe(200);
    expect(again.body).toEqual(first.body);
    expect(sessionOnDisk(server, s.sid)).toMatchObject({ generation: 1, revokedAt: null });
  });

  it('an expired session (refreshTtlS: 1, waited out) → 401 SESSION_EXPIRED, and nothing is revoked', async () => {
    const short = await startTestServer({ config: { refreshTtlS: 1, refreshGraceS: 1 } });
    try {
      const s = await issueSession(short);
      const record = sessionOnDisk(short, s.sid);
      await eventually(() => Date.now() > record.expiresAt + 50, { what: 'the session to expire', intervalMs: 25 });
      const answer = await refresh(short, s.refreshToken);
      expect(answer.status).toBe(401);
      expect(answer.body.error.code).toBe('SESSION_EXPIRED');
      // Not revoked: only the token state is gone, in the write that found it expired.
      expect(sessionOnDisk(short, s.sid)).toEqual(withoutTokenState(record));
      expect((await refresh(short, s.refreshToken)).body.error.code).toBe('SESSION_EXPIRED');
      await expect(TestClient.connect(short, s.accessToken)).rejects.toMatchObject({ status: 401 });
    } finally {
      await short.close();
    }
  });
});

describe('rotation chain', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ config: { refreshGraceS: 1 } });
  });
  afterAll(async () => {
    await server?.close();
  });

  it('each new refresh token works for the next rotation (5 in a row); each pair opens a socket; the generation increments', async () => {
    const s = await issueSession(server);
    let token = s.refreshToken;
    const seen = new Set([s.refreshToken]);
    for (let gen = 1; gen <= 5; gen++) {
      const answer = await refresh(server, token);
      expect(answer.status).toBe(200);
      const pair = answer.body;
      expect(pair.sid).toBe(s.sid);
      expect(pair.refreshToken.split('.').slice(0, 2)).toEqual([s.sid, String(gen)]);
      expect(seen.has(pair.refreshToken)).toBe(false);
      seen.add(pair.refreshToken);
      expect(sessionOnDisk(server, s.sid)).toMatchObject({ generation: gen, revokedAt: null });
      const socket = track(await TestClient.connect(server, pair.accessToken));
      const own = await expectOk(socket.ask('SessionStore', 'GetOwn'));
      expect(own.items.find((i: any) => i.current)?.sid).toBe(s.sid);
      await socket.close();
      token = pair.refreshToken;
    }
  });
});

describe('sliding expiry (refreshTtlS: 2, refreshMaxTtlS: 3)', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ config: { refreshTtlS: 2, refreshMaxTtlS: 3 } });
  });
  afterAll(async () => {
    await server?.close();
  });

  it('moves refreshExpiresAt forward on each refresh, never past login + refreshMaxTtlS; past that the session is expired', async () => {
    const s = await issueSession(server);
    const login = sessionOnDisk(server, s.sid);
    const absolute = login.created + 3000;
    expect(login.absoluteExpiresAt).toBe(absolute);
    expect(s.refreshExpiresAt).toBe(login.created + 2000);

    let token = s.refreshToken;
    let previous = s.refreshExpiresAt;
    const seen: number[] = [];
    // Refresh every 250 ms until the absolute limit is near: the first ones slide, the later ones hit the cap.
    while (Date.now() < absolute - 400) {
      await sleep(250);
      const answer = await refresh(server, token);
      expect(answer.status).toBe(200);
      const at: number = answer.body.refreshExpiresAt;
      expect(at).toBeLessThanOrEqual(absolute);
      expect(at).toBeGreaterThanOrEqual(previous);
      if (previous < absolute) expect(at).toBeGreaterThan(previous);
      expect(sessionOnDisk(server, s.sid).expiresAt).toBe(at);
      seen.push(at);
      previous = at;
      token = answer.body.refreshToken;
    }
    expect(seen.some((at) => at < absolute)).toBe(true); // slid
    expect(seen.at(-1)).toBe(absolute); // capped

    await eventually(() => Date.now() > absolute + 50, { what: 'the absolute limit to pass', intervalMs: 25 });
    const late = await refresh(server, token);
    expect(late.status).toBe(401);
    expect(late.body.error.code).toBe('SESSION_EXPIRED');
  });
});

describe('the grace pair at rest', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ config: { refreshGraceS: 1 } });
  });
  afterAll(async () => {
    await server?.close();
  });

  it('is never in plain text on disk, and is forgotten (graceSealed null) once the grace period has passed', async () => {
    const s = await issueSession(server);
    const answer = await refresh(server, s.refreshToken);
    expect(answer.status).toBe(200);
    const pair = answer.body;

    const text = diskText(server);
    for (const secret of [pair.refreshToken, pair.refreshToken.split('.')[2], pair.accessToken, pair.accessToken.split('.')[2], s.refreshToken, s.refreshToken.split('.')[2]]) {
      expect(text.includes(secret)).toBe(false);
    }
    const record = sessionOnDisk(server, s.sid);
    expect(record.graceSealed).toEqual(expect.any(String));
    expect(record.graceSealed.length).toBeGreaterThan(0);
    expect(record.previousHash).toEqual(expect.any(String));
    expect(internals(server).refresh.pendingGrace).toBeGreaterThan(0);

    await graceForgotten(server);
    expect(sessionOnDisk(server, s.sid)).toMatchObject({ graceSealed: null, previousHash: null, generation: 1, revokedAt: null });
    // The current token still rotates.
    expect((await refresh(server, pair.refreshToken)).status).toBe(200);
  });
});

describe('refreshes of different sessions do not wait on each other', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ config: { refreshGraceS: 1 } });
  });
  afterAll(async () => {
    await server?.close();
  });

  it("a refresh of session A held in A's queue does not delay session B: answers arrive in the order [B, A]", async () => {
    const a = await issueSession(server);
    const b = await issueSession(server);
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const holding = internals(server).sessionLocks.run(a.sid, () => held);

    const runs = jest.spyOn(internals(server).sessionLocks, 'run');
    const order: string[] = [];
    try {
      const aAnswer = refresh(server, a.refreshToken).then((r) => (order.push('A'), r));
      // A's refresh has reached the server and is queued behind the held task.
      await eventually(() => runs.mock.calls.some(([key]) => key === a.sid), { what: "A's refresh to queue", intervalMs: 25 });
      const bAnswer = await refresh(server, b.refreshToken).then((r) => (order.push('B'), r));
      expect(bAnswer.status).toBe(200);
      expect(order).toEqual(['B']);
      expect(sessionOnDisk(server, a.sid).generation).toBe(0);

      release();
      await holding;
      const aDone = await aAnswer;
      expect(aDone.status).toBe(200);
      expect(order).toEqual(['B', 'A']);
      expect(sessionOnDisk(server, a.sid).generation).toBe(1);
    } finally {
      release();
      runs.mockRestore();
    }
  });
});

describe('nothing is left behind after 10,000 sessions have refreshed', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ config: { refreshGraceS: 1 } });
  });
  afterAll(async () => {
    await server?.close();
  });

  it('sessionLocks is empty right after, and pendingGrace returns to 0 after the grace period', async () => {
    const TOTAL = 10_000;
    const ISSUED = 100;
    const BATCH = 250;
    // issueSession goes through UserStore, FingerprintStore and SessionStore, whose mailboxes each wait for their
    // own durable write, so with a lowdb store creating sessions one by one costs one whole-file flush each (3,000
    // took about a minute here, and it grows with the file). So: 100 sessions issued for real, and the rest made
    // as copies of those records (new sid, new refresh token, its hash), written in a few group writes.
    const issued = await Promise.all(Array.from({ length: ISSUED }, () => issueSession(server)));
    const sessions: Array<{ sid: string; refreshToken: string }> = issued.map((s) => ({ sid: s.sid, refreshToken: s.refreshToken }));
    const templates = issued.map((s) => sessionOnDisk(server, s.sid));
    const ops: WriteOp[] = [];
    for (let i = ISSUED; i < TOTAL; i++) {
      const sid = randomUUID();
      const refreshToken = internals(server).tokens.newRefreshToken(sid, 0);
      ops.push({ op: 'put', collection: 'sessions', id: sid, value: { ...templates[i % ISSUED], sid, refreshHash: internals(server).tokens.hash(refreshToken) } });
      sessions.push({ sid, refreshToken });
    }
    for (let i = 0; i < ops.length; i += 2_000) await internals(server).store.write(ops.slice(i, i + 2_000));
    expect(Object.keys(disk(server).sessions!)).toHaveLength(TOTAL);

    const rotations = internals(server).refresh.rotations;
    await warmUp(server, BATCH);
    for (let i = 0; i < TOTAL; i += BATCH) {
      const answers = await Promise.all(sessions.slice(i, i + BATCH).map((s) => refresh(server, s.refreshToken)));
      for (const a of answers) expect(a.status).toBe(200);
    }
    expect(internals(server).refresh.rotations - rotations).toBe(TOTAL);

    // Right after: no refresh left a queue behind. The only tasks a session queue may still hold are the grace
    // sweeper's (a timer, every second, erasing the pairs that came due), each counted in pendingGrace until done;
    // so the map is empty, or empties as soon as the sweep in flight has written.
    expect(internals(server).sessionLocks.size).toBeLessThanOrEqual(internals(server).refresh.pendingGrace);
    await eventually(() => internals(server).sessionLocks.size === 0, { what: 'the session queues to empty', timeoutMs: 1_000, intervalMs: 5 });
    expect(internals(server).refresh.pendingGrace).toBeGreaterThan(0);

    await graceForgotten(server);
    expect(internals(server).refresh.pendingGrace).toBe(0);
    expect(internals(server).sessionLocks.size).toBe(0);
    const doc = disk(server);
    const sample = sessions.filter((_, i) => i % 97 === 0);
    for (const s of sample) expect(doc.sessions![s.sid]).toMatchObject({ generation: 1, graceSealed: null, revokedAt: null });
    expect(Object.values(doc.sessions!).filter((r: any) => r.graceSealed !== null)).toHaveLength(0);
  }, 180_000);
});

describe('cookie refresh (browser)', () => {
  let server: TestServer;
  let username: string;
  const password = 'a long enough password';
  beforeAll(async () => {
    server = await startTestServer({ config: { refreshGraceS: 1 } });
    username = `cookie${randomUUID().slice(0, 8)}`;
    await server.ask(UserStore.Create, { username, password, role: 'user' });
  });
  afterAll(async () => {
    await server?.close();
  });

  const cookieValue = (cookies: string[], name: string) => cookies.find((c) => c.startsWith(`${name}=`))?.split(';')[0]!.slice(name.length + 1);

  function expectSessionCookies(cookies: string[], pair: { accessToken: string; refreshToken: string }) {
    expect(cookies).toHaveLength(2);
    const access = cookies.find((c) => c.startsWith('gr_access='))!;
    const refreshCookie = cookies.find((c) => c.startsWith('gr_refresh='))!;
    expect(access).toBeDefined();
    expect(refreshCookie).toBeDefined();
    const attrs = (c: string) => c.split(';').slice(1).map((p) => p.trim());
    expect(attrs(access)).toEqual(expect.arrayContaining(['Path=/', 'HttpOnly', 'SameSite=Strict']));
    expect(attrs(refreshCookie)).toEqual(expect.arrayContaining(['Path=/auth', 'HttpOnly', 'SameSite=Strict']));
    expect(attrs(access)).not.toContain('Secure'); // plain http on loopback
    expect(cookieValue(cookies, 'gr_access')).toBe(pair.accessToken);
    expect(cookieValue(cookies, 'gr_refresh')).toBe(pair.refreshToken);
  }

  it('login from the own origin sets gr_access (Path=/) and gr_refresh (Path=/auth), HttpOnly, SameSite=Strict; the refresh cookie alone with that Origin rotates and sets new cookies; a foreign or missing Origin → 403 BAD_ORIGIN and no rotation', async () => {
    const origin = server.url; // the server's own scheme://host:port
    const login = await loginWithPassword(server, { username, password }, { headers: { Origin: origin }, agent });
    expect(login.status).toBe(200);
    expectSessionCookies(login.cookies, login.body);
    const sid: string = login.body.sid;
    const refreshCookie = `gr_refresh=${cookieValue(login.cookies, 'gr_refresh')}`;

    // Foreign Origin, then no Origin: refused before anything happens.
    const rotations = internals(server).refresh.rotations;
    const before = sessionOnDisk(server, sid);
    const refusals: Array<Record<string, string>> = [{ Cookie: refreshCookie, Origin: 'http://evil.example' }, { Cookie: refreshCookie }, { Cookie: refreshCookie, Origin: 'null' }];
    for (const headers of refusals) {
      const refused = await post(server, '/auth/refresh', undefined, { headers, agent });
      expect(refused.status).toBe(403);
      expect(refused.body.error.code).toBe('BAD_ORIGIN');
      expect(refused.cookies).toEqual([]);
    }
    expect(internals(server).refresh.rotations).toBe(rotations);
    expect(sessionOnDisk(server, sid)).toEqual(before);

    // The own Origin: rotates, answers the new pair and sets it as cookies.
    const rotated = await post(server, '/auth/refresh', undefined, { headers: { Cookie: refreshCookie, Origin: origin }, agent });
    expect(rotated.status).toBe(200);
    expect(rotated.body.sid).toBe(sid);
    expect(rotated.body.refreshToken).not.toBe(login.body.refreshToken);
    expectSessionCookies(rotated.cookies, rotated.body);
    expect(internals(server).refresh.rotations - rotations).toBe(1);
    expect(sessionOnDisk(server, sid).generation).toBe(1);

    // The new cookie works for the next rotation.
    const next = await post(server, '/auth/refresh', undefined, { headers: { Cookie: `gr_refresh=${rotated.body.refreshToken}`, Origin: origin }, agent });
    expect(next.status).toBe(200);
    expectSessionCookies(next.cookies, next.body);
    expect(sessionOnDisk(server, sid).generation).toBe(2);
  });

  it('a login without an Origin (not a browser) gets no cookies', async () => {
    const login = await loginWithPassword(server, { username, password }, { agent });
    expect(login.status).toBe(200);
    expect(login.cookies).toEqual([]);
  });
});
