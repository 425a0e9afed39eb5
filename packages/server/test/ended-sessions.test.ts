/**
 * Ended sessions cost little (docs/security.md, Sessions): however a session ends (logout, revoke, eviction, block,
 * refresh-token reuse, password change), the write that ends it keeps only what the session lists and the refresh
 * answers need, and drops its token state (token hashes, generation, the sealed grace pair). Everything seen from
 * outside stays as it was: the refresh answers, the lists and pushes, the lifecycle hooks, cleanup after retention.
 * A session found expired (by a refresh or by cleanup) is slimmed too, and records written by a version that kept the
 * token state of ended sessions read as ended. Real server on loopback, real lowdb store.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { defineActor } from '../src/actors/define.js';
import { getSession } from '../src/actors/records.js';
import { SessionStore } from '../src/actors/session-store.js';
import { UserStore } from '../src/actors/user-store.js';
import { DEFAULT_STORE_FILE } from '../src/store/lowdb-store.js';
import { eventually, expectOk, internals, issueSession, post, startTestServer, TestClient, type TestServer } from '../src/testing/index.js';
import { storeOnDisk } from './helpers.js';

/** Every field an ended session keeps, and nothing else. */
const ENDED_FIELDS = ['created', 'ended', 'expiresAt', 'fingerprint', 'lastUsed', 'revokeReason', 'revokedAt', 'sid', 'uid'];
/** The fields of a session's wire view that come from its record. */
const VIEW_FIELDS = ['sid', 'uid', 'fingerprint', 'created', 'lastUsed', 'expiresAt', 'revokedAt', 'revokeReason'] as const;

type Issued = Awaited<ReturnType<typeof issueSession>>;

/** Records what the sessionEnded hook hears. */
const heard: Array<{ uid: string; sid: string; reason: string }> = [];
const Recorder = defineActor({
  name: 'EndedRecorder',
  state: () => ({}),
  hooks: { sessionEnded: (info) => void heard.push(info) },
  messages: (message) => ({ Ping: message({ allow: 'any', payload: z.object({}), handle: () => 'pong' }) }),
});
const endings = (sid: string) => heard.filter((h) => h.sid === sid);

function sessionOnDisk(server: TestServer, sid: string): Record<string, any> | undefined {
  return storeOnDisk(server.dataDir).sessions?.[sid];
}

const refresh = (server: TestServer, refreshToken: string) => post(server, '/auth/refresh', { refreshToken });
async function rotate(server: TestServer, refreshToken: string): Promise<{ accessToken: string; refreshToken: string }> {
  const answer = await refresh(server, refreshToken);
  expect(answer.status).toBe(200);
  return answer.body;
}

/** A record as written by a version that kept the token state of ended sessions (and of expired ones). */
async function rewrite(server: TestServer, sid: string, change: Record<string, unknown>): Promise<Record<string, unknown>> {
  return internals(server).sessionLocks.run(sid, async () => {
    const record = { ...(await internals(server).store.get<Record<string, unknown>>('sessions', sid))!, ...change };
    await internals(server).store.put('sessions', sid, record);
    return record;
  });
}

async function viewOf(admin: TestClient, sid: string): Promise<Record<string, unknown> | undefined> {
  const all = await expectOk(admin.ask('SessionStore', 'GetAll', { limit: 500 }));
  return all.items.find((v: { sid: string }) => v.sid === sid);
}

describe('a session that ends keeps only what the lists and refresh answers need', () => {
  let server: TestServer;
  let admin: TestClient;
  const clients: TestClient[] = [];
  const track = (c: TestClient) => (clients.push(c), c);

  beforeAll(async () => {
    server = await startTestServer({ actors: [Recorder], config: { maxSessionsPerUser: 3 } });
    admin = track(await TestClient.connect(server, (await issueSession(server, { role: 'admin' })).accessToken));
    await expectOk(admin.ask('SessionStore', 'Subscribe'));
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await server?.close();
  });

  interface Row {
    name: string;
    reason: string;
    /** Ends the session (its tokens given: the first issued, and one rotation later); returns every token of it to present. */
    end: (s: Issued, rotated: { accessToken: string; refreshToken: string }) => Promise<string[]>;
  }

  const rows: Row[] = [
    {
      name: 'logout',
      reason: 'logout',
      end: async (s, r) => {
        expect((await post(server, '/auth/logout', undefined, { headers: { Authorization: `Bearer ${r.accessToken}` } })).status).toBe(204);
        return [s.refreshToken, r.refreshToken];
      },
    },
    {
      name: 'revoke (by an admin)',
      reason: 'revoked',
      end: async (s, r) => {
        await expectOk(admin.ask('SessionStore', 'Revoke', { sid: s.sid }));
        return [s.refreshToken, r.refreshToken];
      },
    },
    {
      name: 'eviction past the per-user cap',
      reason: 'evicted',
      end: async (s, r) => {
        // The cap is 3: three more sessions of the user evict the least recently used, this one.
        for (let i = 0; i < 3; i += 1) await issueSession(server, { uid: s.uid });
        return [s.refreshToken, r.refreshToken];
      },
    },
    {
      name: 'block',
      reason: 'blocked',
      end: async (s, r) => {
        await server.ask(UserStore.Block, { uid: s.uid });
        return [s.refreshToken, r.refreshToken];
      },
    },
    {
      name: 'refresh-token reuse',
      reason: 'revoked',
      end: async (s, r) => {
        const latest = await rotate(server, r.refreshToken);
        // Two rotations back: a reuse, which revokes the session.
        const reuse = await refresh(server, s.refreshToken);
        expect(reuse.body).toEqual({ error: { code: 'REFRESH_REUSED', message: expect.any(String) } });
        return [s.refreshToken, r.refreshToken, latest.refreshToken];
      },
    },
    {
      name: 'password change',
      reason: 'revoked',
      end: async (s, r) => {
        await server.ask(UserStore.Update, { uid: s.uid, password: 'a new password, long enough' });
        return [s.refreshToken, r.refreshToken];
      },
    },
  ];

  it.each(rows)('$name: the stored record has no token state; its tokens get SESSION_REVOKED; lists, pushes and hooks as before', async (row: Row) => {
    const s = await issueSession(server);
    const socket = track(await TestClient.connect(server, s.accessToken));
    // One rotation first, so the session holds a previous hash and a sealed grace pair when it ends.
    const rotated = await rotate(server, s.refreshToken);
    const live = sessionOnDisk(server, s.sid)!;
    expect(live.graceSealed).toEqual(expect.any(String));
    const pushesBefore = admin.pushes.length;

    const tokens = await row.end(s, rotated);

    await expect(socket.closed).resolves.toMatchObject({ code: row.reason === 'blocked' ? 4003 : 4001 });
    const stored = sessionOnDisk(server, s.sid)!;
    expect(Object.keys(stored).sort()).toEqual(ENDED_FIELDS);
    expect(stored).toEqual({
      ended: true,
      sid: s.sid,
      uid: s.uid,
      fingerprint: live.fingerprint,
      created: live.created,
      lastUsed: expect.any(Number),
      expiresAt: expect.any(Number),
      revokedAt: expect.any(Number),
      revokeReason: row.reason,
    });

    // Every token the session ever had gets the answer a revoked session always got, and changes nothing.
    for (const token of tokens) expect((await refresh(server, token)).body).toEqual({ error: { code: 'SESSION_REVOKED', message: expect.any(String) } });
    expect(sessionOnDisk(server, s.sid)).toEqual(stored);

    // The admin list shows it with its end time and reason; the push that announced it said the same.
    const shown = { ...Object.fromEntries(VIEW_FIELDS.map((f) => [f, stored[f]])), connections: 0 };
    expect(await viewOf(admin, s.sid)).toEqual(shown);
    await admin.waitForPush('SessionChanged', pushesBefore + 1);
    const revoked = admin.pushes.slice(pushesBefore).filter((p) => p.event === 'SessionChanged' && (p.payload as any).change === 'revoked');
    // (It is sent as the sockets are told to close: they may not have gone yet.)
    expect(revoked.map((p) => p.payload)).toContainEqual({ change: 'revoked', session: { ...shown, connections: expect.any(Number) } });
    await eventually(() => expect(endings(s.sid)).toEqual([{ uid: s.uid, sid: s.sid, reason: row.reason }]));
  });

  it('a session found expired by a refresh loses its token state, stays unrevoked, and keeps answering SESSION_EXPIRED', async () => {
    const s = await issueSession(server);
    const expired = await rewrite(server, s.sid, { expiresAt: Date.now() - 1000 });
    const before = await viewOf(admin, s.sid);
    expect(before).toMatchObject({ revokedAt: null, revokeReason: null });

    expect((await refresh(server, s.refreshToken)).body).toEqual({ error: { code: 'SESSION_EXPIRED', message: expect.any(String) } });
    const stored = sessionOnDisk(server, s.sid)!;
    expect(Object.keys(stored).sort()).toEqual(ENDED_FIELDS);
    expect(stored).toMatchObject({ ended: true, revokedAt: null, revokeReason: null, expiresAt: expired.expiresAt, lastUsed: expired.lastUsed });
    expect(await viewOf(admin, s.sid)).toEqual(before);
    expect((await refresh(server, s.refreshToken)).body.error.code).toBe('SESSION_EXPIRED');
    // An expiry is announced when cleanup deletes the session, as before: not here.
    expect(endings(s.sid)).toEqual([]);
    // Revoking it afterwards still marks it revoked, as it did an expired session before.
    expect(await server.ask(SessionStore.Revoke, { sid: s.sid })).toEqual({ revoked: 1 });
    expect(sessionOnDisk(server, s.sid)).toMatchObject({ ended: true, revokedAt: expect.any(Number), revokeReason: 'revoked' });
  });

  it('a revoked session written with its token state (an older store) reads as ended: refresh, lists and revoke as before, and cleanup slims it', async () => {
    const s = await issueSession(server);
    const rotated = await rotate(server, s.refreshToken);
    // What the previous version wrote when it revoked a session: the whole record, grace pair erased.
    const old = await rewrite(server, s.sid, { revokedAt: Date.now(), revokeReason: 'logout', graceSealed: null });
    expect(old).toHaveProperty('refreshHash');
    expect(old).toHaveProperty('previousHash');
    const asEnded = { ended: true, ...Object.fromEntries(ENDED_FIELDS.filter((f) => f !== 'ended').map((f) => [f, old[f]])) };
    // The server reads it as ended: its token state is not there for any code to use.
    expect(await getSession(internals(server).store, s.sid)).toEqual(asEnded);

    // The current token and the one just replaced (within its grace period) would have rotated or replayed if the
    // token state were read: both get SESSION_REVOKED.
    for (const token of [rotated.refreshToken, s.refreshToken]) expect((await refresh(server, token)).body.error.code).toBe('SESSION_REVOKED');
    const shown = { ...Object.fromEntries(VIEW_FIELDS.map((f) => [f, old[f]])), connections: 0 };
    expect(await viewOf(admin, s.sid)).toEqual(shown);
    expect(await server.ask(SessionStore.Revoke, { sid: s.sid })).toEqual({ revoked: 1 });
    expect(endings(s.sid)).toEqual([]); // it was announced when it was revoked; not again
    expect(sessionOnDisk(server, s.sid)).toEqual(JSON.parse(JSON.stringify(old)));

    // Within retention: cleanup keeps it, without its token state; nothing seen from outside changes.
    await server.cleanup();
    const stored = sessionOnDisk(server, s.sid)!;
    expect(Object.keys(stored).sort()).toEqual(ENDED_FIELDS);
    expect(stored).toEqual(asEnded);
    expect(await viewOf(admin, s.sid)).toEqual(shown);
    expect((await refresh(server, rotated.refreshToken)).body.error.code).toBe('SESSION_REVOKED');
  });

  it('an expired session written with its token state is slimmed by cleanup within retention, still unrevoked and unannounced', async () => {
    const s = await issueSession(server);
    await rewrite(server, s.sid, { expiresAt: Date.now() - 1000 });
    const before = await viewOf(admin, s.sid);
    await server.cleanup();
    const stored = sessionOnDisk(server, s.sid)!;
    expect(Object.keys(stored).sort()).toEqual(ENDED_FIELDS);
    expect(stored).toMatchObject({ revokedAt: null, revokeReason: null });
    expect(await viewOf(admin, s.sid)).toEqual(before);
    expect(endings(s.sid)).toEqual([]);
    expect((await refresh(server, s.refreshToken)).body.error.code).toBe('SESSION_EXPIRED');
  });

  it('live sessions keep their token state through cleanup, and the owner’s own list still shows only live ones', async () => {
    const s = await issueSession(server);
    const ended = await issueSession(server, { uid: s.uid });
    await server.ask(SessionStore.Revoke, { sid: ended.sid });
    const live = sessionOnDisk(server, s.sid);
    await server.cleanup();
    expect(sessionOnDisk(server, s.sid)).toEqual(live);
    const owner = track(await TestClient.connect(server, s.accessToken));
    const own = await expectOk(owner.ask('SessionStore', 'GetOwn'));
    expect(own.items.map((v: { sid: string }) => v.sid)).toEqual([s.sid]);
    expect((await refresh(server, s.refreshToken)).status).toBe(200);
  });
});

describe('cleanup deletes ended sessions after retention, as before', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ actors: [Recorder], config: { sessionRetentionS: 1 } });
  });
  afterAll(async () => {
    await server?.close();
  });

  it('slim ended, slim expired and old full ended records all go; only the expiry is announced, once', async () => {
    const loggedOut = await issueSession(server);
    expect((await post(server, '/auth/logout', undefined, { headers: { Authorization: `Bearer ${loggedOut.accessToken}` } })).status).toBe(204);
    const expired = await issueSession(server);
    await rewrite(server, expired.sid, { expiresAt: Date.now() - 10 });
    expect((await refresh(server, expired.refreshToken)).body.error.code).toBe('SESSION_EXPIRED');
    const old = await issueSession(server);
    await rewrite(server, old.sid, { revokedAt: Date.now(), revokeReason: 'revoked' });
    const kept = await issueSession(server);
    for (const s of [loggedOut, expired]) expect(sessionOnDisk(server, s.sid)).toMatchObject({ ended: true });
    expect(endings(loggedOut.sid)).toHaveLength(1);

    const ends = [loggedOut, expired, old].map((s) => sessionOnDisk(server, s.sid)!).map((r) => r.revokedAt ?? r.expiresAt);
    await eventually(() => Date.now() > Math.max(...ends) + 1000 + 50, { what: 'the retention to pass', intervalMs: 50 });
    expect(await server.cleanup()).toEqual({ sessions: 3, guests: 0 });

    for (const s of [loggedOut, expired, old]) expect(sessionOnDisk(server, s.sid)).toBeUndefined();
    expect(sessionOnDisk(server, kept.sid)).toHaveProperty('refreshHash');
    expect(endings(loggedOut.sid)).toHaveLength(1);
    expect(endings(old.sid)).toEqual([]);
    await eventually(() => expect(endings(expired.sid)).toEqual([{ uid: expired.uid, sid: expired.sid, reason: 'expired' }]));
    expect(await server.cleanup()).toEqual({ sessions: 0, guests: 0 });
  });
});
