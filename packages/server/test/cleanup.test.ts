/**
 * The periodic cleanup (docs/security.md: expired sessions and abandoned guests are removed inside the server), run on
 * demand with server.cleanup(). The store is seeded directly with records of chosen ages, then one run must delete
 * exactly the doomed ones and keep the rest, batch boundaries included, leaving the store consistent (counts,
 * scans, findBy indexes and the file on disk agree).
 *
 * Configured: sessionRetentionS 3600 (an ended session is kept one hour), guestIdleS 86400 (a guest unused for a
 * day is abandoned).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomBytes, randomUUID } from 'node:crypto';
import { join } from 'node:path';
import type { FingerprintRecord, LiveSessionRecord, SessionEndReason, SessionRecord, UserRecord } from '../src/actors/records.js';
import { internals } from '../src/server.js';
import { DEFAULT_STORE_FILE, readStoreFiles } from '../src/store/lowdb-store.js';
import type { WriteOp } from '../src/store/store.js';
import { issueSession, startTestServer, TestClient, type TestServer } from '../src/testing/index.js';

const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;
const RETENTION_S = 3600;
const GUEST_IDLE_S = 86_400;
const config = { sessionRetentionS: RETENTION_S, guestIdleS: GUEST_IDLE_S };

const NOW = Date.now();

function user(o: Partial<UserRecord> & { role: string }): UserRecord {
  const uid = o.uid ?? randomUUID();
  const username = o.username ?? `${o.role}-${uid.slice(0, 8)}`;
  return {
    uid,
    username,
    usernameKey: username.toLowerCase(),
    displayName: username,
    blocked: false,
    created: NOW - 10 * DAY,
    lastLogin: null,
    passwordHash: null,
    ...o,
  };
}

/**
 * A session record with its token state whatever its end: what a live session holds, and what an ended one held
 * when written by a version that kept it (the rows below seed ended sessions this way, as such stores hold them).
 */
type FullSessionRecord = Omit<LiveSessionRecord, 'revokedAt' | 'revokeReason'> & { revokedAt: number | null; revokeReason: SessionEndReason | null };

/** What a session over but within retention is kept as after a run: no token state. */
function slim(s: FullSessionRecord): Record<string, unknown> {
  const { sid, uid, fingerprint, created, lastUsed, revokedAt, revokeReason } = s;
  return { ended: true, sid, uid, fingerprint, created, lastUsed, expiresAt: Math.min(s.expiresAt, s.absoluteExpiresAt), revokedAt, revokeReason };
}
const over = (s: FullSessionRecord) => s.revokedAt !== null || Math.min(s.expiresAt, s.absoluteExpiresAt) <= NOW;

function session(uid: string, o: Partial<FullSessionRecord> = {}): FullSessionRecord {
  return {
    sid: randomUUID(),
    uid,
    fingerprint: `fp_${randomBytes(12).toString('base64url')}`,
    created: NOW - 10 * DAY,
    lastUsed: NOW - 10 * DAY,
    expiresAt: NOW + 20 * DAY,
    absoluteExpiresAt: NOW + 80 * DAY,
    revokedAt: null,
    revokeReason: null,
    refreshHash: randomBytes(32).toString('base64url'),
    generation: 0,
    previousHash: null,
    rotatedAt: null,
    graceSealed: null,
    ...o,
  };
}

function device(uid: string, o: Partial<FingerprintRecord> = {}): FingerprintRecord {
  return { fingerprint: `fp_${randomBytes(12).toString('base64url')}`, uid, firstSeen: NOW - 10 * DAY, lastSeen: NOW - 10 * DAY, count: 1, blocked: false, ...o };
}

/** A row of the table: records to seed, and which of them one cleanup run must delete. */
interface Row {
  name: string;
  users?: UserRecord[];
  sessions?: FullSessionRecord[];
  fingerprints?: FingerprintRecord[];
  /** Deleted by the run (everything else of the row is kept, unchanged but for ended sessions, kept slim). */
  deleted: { users?: string[]; sessions?: string[]; fingerprints?: string[] };
}

// One regular user owns the plain session rows.
const owner = user({ role: 'user', username: 'session-owner', lastLogin: NOW - 100 * DAY });

function sessionRow(name: string, o: Partial<FullSessionRecord>, deleted: boolean): Row {
  const s = session(owner.uid, o);
  return { name, sessions: [s], deleted: deleted ? { sessions: [s.sid] } : {} };
}

/**
 * A guest with one device and the given sessions (built from its uid). `deleted`: 'all' (the guest goes, with its
 * device and sessions), 'none', or 'ended-sessions' (the guest and device stay; its sessions ended past retention
 * go, like anyone's).
 */
function guestRow(
  name: string,
  o: Partial<UserRecord>,
  sessions: Array<Partial<FullSessionRecord>>,
  deviceOptions: Partial<FingerprintRecord>,
  deleted: 'all' | 'none' | 'ended-sessions',
): Row {
  const g = user({ role: 'guest', ...o });
  const d = device(g.uid, deviceOptions);
  const ss = sessions.map((s) => session(g.uid, { fingerprint: d.fingerprint, ...s }));
  return {
    name,
    users: [g],
    sessions: ss,
    fingerprints: [d],
    deleted:
      deleted === 'all'
        ? { users: [g.uid], sessions: ss.map((s) => s.sid), fingerprints: [d.fingerprint] }
        : deleted === 'ended-sessions'
          ? { sessions: ss.filter((s) => (s.revokedAt ?? Math.min(s.expiresAt, s.absoluteExpiresAt)) < NOW - RETENTION_S * 1000).map((s) => s.sid) }
          : {},
  };
}

const stale = { created: NOW - 5 * DAY, lastLogin: NOW - 2 * DAY };
const staleEnded = { lastUsed: NOW - 2 * DAY, expiresAt: NOW - DAY };

const rows: Row[] = [
  sessionRow('an expired session past retention is deleted', { lastUsed: NOW - 40 * DAY, expiresAt: NOW - 2 * HOUR }, true),
  sessionRow('a session past its absolute expiry, beyond retention, is deleted', { expiresAt: NOW + DAY, absoluteExpiresAt: NOW - 2 * HOUR }, true),
  sessionRow('an expired session within retention is kept', { expiresAt: NOW - 30 * MIN }, false),
  sessionRow('a revoked session past retention is deleted', { revokedAt: NOW - 2 * HOUR, revokeReason: 'revoked' }, true),
  sessionRow('an evicted session past retention is deleted', { revokedAt: NOW - 3 * DAY, revokeReason: 'evicted' }, true),
  sessionRow('a revoked session within retention is kept', { revokedAt: NOW - 10 * MIN, revokeReason: 'logout' }, false),
  sessionRow('a revoked session within retention is kept though long expired', { revokedAt: NOW - 10 * MIN, revokeReason: 'revoked', expiresAt: NOW - 30 * DAY }, false),
  sessionRow('a live session is kept', { lastUsed: NOW - 20 * DAY }, false),
  sessionRow('a live session unused for long is kept', { lastUsed: NOW - 60 * DAY, expiresAt: NOW + HOUR }, false),
  guestRow('a stale guest is deleted with its device and sessions (even one ended within retention)', stale, [staleEnded, { lastUsed: NOW - 2 * DAY, revokedAt: NOW - 10 * MIN, revokeReason: 'revoked' }], {}, 'all'),
  guestRow('a stale guest without sessions is deleted with its device', { created: NOW - 3 * DAY, lastLogin: null }, [], {}, 'all'),
  guestRow('a fresh guest (logged in within the idle time) is kept', { created: NOW - 2 * HOUR, lastLogin: NOW - 2 * HOUR }, [{ lastUsed: NOW - 2 * HOUR }], {}, 'none'),
  guestRow('a guest created recently, never logged in, is kept', { created: NOW - HOUR, lastLogin: null }, [], {}, 'none'),
  guestRow('a stale guest with a live session is kept', stale, [{ lastUsed: NOW - 2 * DAY }], {}, 'none'),
  guestRow('a stale guest whose session (ended within retention) was used within the idle time is kept', stale, [{ lastUsed: NOW - 2 * HOUR, revokedAt: NOW - 10 * MIN, revokeReason: 'logout' }], {}, 'none'),
  guestRow('a blocked stale guest is kept (its long-ended session goes like anyone’s)', { ...stale, blocked: true }, [staleEnded, { revokedAt: NOW - 10 * MIN, revokeReason: 'blocked' }], { blocked: true }, 'ended-sessions'),
  guestRow('a blocked stale guest whose device is not blocked is kept', { ...stale, blocked: true }, [], {}, 'none'),
  guestRow('a stale guest whose fingerprint is blocked is kept (its long-ended session goes like anyone’s)', stale, [staleEnded], { blocked: true }, 'ended-sessions'),
  { name: 'a non-guest user unused for long is kept', users: [user({ role: 'user', created: NOW - 400 * DAY, lastLogin: NOW - 300 * DAY })], deleted: {} },
  { name: 'an admin never logged in is kept', users: [user({ role: 'admin', created: NOW - 400 * DAY })], deleted: {} },
  { name: 'an app role unused for long is kept, with its device', ...(() => {
    const u = user({ role: 'kiosk', created: NOW - 400 * DAY, lastLogin: NOW - 300 * DAY });
    return { users: [u], fingerprints: [device(u.uid)] };
  })(), deleted: {} },
];
// `sessions` in the result counts what the session sweep deleted; the sessions of deleted guests go with the guest.

async function seed(server: TestServer, records: { users?: UserRecord[]; sessions?: FullSessionRecord[]; fingerprints?: FingerprintRecord[] }): Promise<void> {
  const ops: WriteOp[] = [
    ...(records.users ?? []).map((u) => ({ op: 'put' as const, collection: 'users', id: u.uid, value: u })),
    ...(records.sessions ?? []).map((s) => ({ op: 'put' as const, collection: 'sessions', id: s.sid, value: s })),
    ...(records.fingerprints ?? []).map((f) => ({ op: 'put' as const, collection: 'fingerprints', id: f.fingerprint, value: f })),
  ];
  await internals(server).store.write(ops);
}

async function all<T>(server: TestServer, collection: string): Promise<Map<string, T>> {
  const out = new Map<string, T>();
  let after: string | undefined;
  do {
    const page = await internals(server).store.scan<any>(collection, { after, limit: 500 });
    for (const i of page.items) out.set(i.id, i.value as T);
    after = page.next ?? undefined;
  } while (after);
  return out;
}

/** Counts, scans, findBy indexes and the file on disk all tell the same story. */
async function expectConsistent(server: TestServer): Promise<void> {
  const store = internals(server).store;
  const users = await all<UserRecord>(server, 'users');
  const sessions = await all<SessionRecord>(server, 'sessions');
  const fingerprints = await all<FingerprintRecord>(server, 'fingerprints');
  expect(await store.count('users')).toBe(users.size);
  expect(await store.count('sessions')).toBe(sessions.size);
  expect(await store.count('fingerprints')).toBe(fingerprints.size);

  // Per user: findBy returns exactly the records that are there.
  const uids = new Set([...users.keys(), ...[...sessions.values()].map((s) => s.uid), ...[...fingerprints.values()].map((f) => f.uid)]);
  for (const uid of uids) {
    const bySessions = (await store.findBy<SessionRecord>('sessions', 'uid', uid)).map((r) => r.id).sort();
    expect(bySessions).toEqual([...sessions.values()].filter((s) => s.uid === uid).map((s) => s.sid).sort());
    const byDevices = (await store.findBy<FingerprintRecord>('fingerprints', 'uid', uid)).map((r) => r.id).sort();
    expect(byDevices).toEqual([...fingerprints.values()].filter((f) => f.uid === uid).map((f) => f.fingerprint).sort());
  }
  const guests = (await store.findBy<UserRecord>('users', 'role', 'guest')).map((r) => r.id).sort();
  expect(guests).toEqual([...users.values()].filter((u) => u.role === 'guest').map((u) => u.uid).sort());
  // No orphan: every remaining session and device belongs to a remaining user.
  for (const s of sessions.values()) expect(users.has(s.uid)).toBe(true);
  for (const f of fingerprints.values()) expect(users.has(f.uid)).toBe(true);

  // The file on disk holds the same records.
  const durable = (await readStoreFiles(join(server.dataDir, DEFAULT_STORE_FILE))) ?? new Map();
  const disk = Object.fromEntries([...durable].map(([name, records]) => [name, Object.fromEntries(records)]));
  expect(Object.keys(disk.users ?? {}).sort()).toEqual([...users.keys()].sort());
  expect(Object.keys(disk.sessions ?? {}).sort()).toEqual([...sessions.keys()].sort());
  expect(Object.keys(disk.fingerprints ?? {}).sort()).toEqual([...fingerprints.keys()].sort());
}

describe('server.cleanup(): a table of records, one run', () => {
  let server: TestServer;
  let result: { sessions: number; guests: number };
  let before: { users: Map<string, UserRecord>; sessions: Map<string, SessionRecord>; fingerprints: Map<string, FingerprintRecord> };
  let after: typeof before;

  beforeAll(async () => {
    server = await startTestServer({ config });
    // Findby indexes are built before the seed, so the run also proves they are kept up to date.
    await internals(server).store.findBy('sessions', 'uid', owner.uid);
    await internals(server).store.findBy('fingerprints', 'uid', owner.uid);
    await internals(server).store.findBy('users', 'role', 'guest');
    await seed(server, { users: [owner] });
    for (const row of rows) await seed(server, row);
    before = { users: await all(server, 'users'), sessions: await all(server, 'sessions'), fingerprints: await all(server, 'fingerprints') };
    result = await server.cleanup();
    after = { users: await all(server, 'users'), sessions: await all(server, 'sessions'), fingerprints: await all(server, 'fingerprints') };
  });
  afterAll(async () => {
    await server?.close();
  });

  for (const row of rows) {
    it(row.name, () => {
      for (const collection of ['users', 'sessions', 'fingerprints'] as const) {
        const seeded = (row[collection] ?? []) as Array<UserRecord | FullSessionRecord | FingerprintRecord>;
        const doomed = new Set(row.deleted[collection] ?? []);
        for (const record of seeded) {
          const id = collection === 'users' ? (record as UserRecord).uid : collection === 'sessions' ? (record as FullSessionRecord).sid : (record as FingerprintRecord).fingerprint;
          expect(before[collection].has(id)).toBe(true);
          // A session over but within retention is kept without its token state; anything else kept is unchanged.
          const kept = collection === 'sessions' && over(record as FullSessionRecord) ? slim(record as FullSessionRecord) : record;
          if (doomed.has(id)) expect({ collection, id, kept: after[collection].has(id) }).toEqual({ collection, id, kept: false });
          else expect({ collection, id, value: after[collection].get(id) }).toEqual({ collection, id, value: kept });
        }
      }
    });
  }

  it('reports what it deleted: sessions ended past retention, and stale guests', () => {
    const plainSessions = rows.filter((r) => !r.deleted.users?.length).flatMap((r) => r.deleted.sessions ?? []);
    const guests = rows.flatMap((r) => r.deleted.users ?? []);
    expect(result).toEqual({ sessions: plainSessions.length, guests: guests.length });
    const deletedIds = rows.flatMap((r) => [...(r.deleted.users ?? []), ...(r.deleted.sessions ?? []), ...(r.deleted.fingerprints ?? [])]);
    const total = (m: typeof before) => m.users.size + m.sessions.size + m.fingerprints.size;
    expect(total(before) - total(after)).toBe(deletedIds.length);
  });

  it('leaves the store consistent (counts, scans, findBy and the file on disk agree; no orphans)', async () => {
    await expectConsistent(server);
  });

  it('a second run deletes nothing', async () => {
    expect(await server.cleanup()).toEqual({ sessions: 0, guests: 0 });
    expect(await all(server, 'sessions')).toEqual(after.sessions);
    expect(await all(server, 'users')).toEqual(after.users);
  });
});

describe('server.cleanup(): backlogs bigger than a batch (500)', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ config });
  });
  afterAll(async () => {
    await server?.close();
  });

  /** A user with `doomed` sessions ended past retention and `live` live ones, interleaved in id order. */
  async function backlog(doomed: number, live: number) {
    const u = user({ role: 'user' });
    const dead = Array.from({ length: doomed }, (_, i) =>
      i % 2 === 0 ? session(u.uid, { expiresAt: NOW - 2 * HOUR - i }) : session(u.uid, { revokedAt: NOW - 2 * HOUR - i, revokeReason: 'revoked' }),
    );
    const alive = Array.from({ length: live }, () => session(u.uid));
    await seed(server, { users: [u], sessions: [...dead, ...alive] });
    return { uid: u.uid, dead, alive };
  }

  for (const [doomed, live] of [
    [1201, 37],
    [500, 0],
    [500, 1],
    [501, 0],
  ] as const) {
    it(`${doomed} doomed sessions (beside ${live} live) are all cleared in one run`, async () => {
      const { uid, dead, alive } = await backlog(doomed, live);
      const total = await internals(server).store.count('sessions');
      expect(await server.cleanup()).toEqual({ sessions: doomed, guests: 0 });
      expect(await internals(server).store.count('sessions')).toBe(total - doomed);
      const left = (await internals(server).store.findBy<SessionRecord>('sessions', 'uid', uid)).map((r) => r.id).sort();
      expect(left).toEqual(alive.map((s) => s.sid).sort());
      for (const s of dead.slice(0, 5)) expect(await internals(server).store.get('sessions', s.sid)).toBeUndefined();
      await expectConsistent(server);
      expect(await server.cleanup()).toEqual({ sessions: 0, guests: 0 });
    });
  }

  it('a backlog of stale guests bigger than a batch (501) is cleared in one run, with their devices and sessions', async () => {
    const keep = user({ role: 'guest', created: NOW - HOUR, lastLogin: NOW - HOUR });
    const guests = Array.from({ length: 501 }, () => user({ role: 'guest', created: NOW - 5 * DAY, lastLogin: NOW - 3 * DAY }));
    const devices = guests.map((g) => device(g.uid));
    const sessions = guests.map((g, i) => session(g.uid, { fingerprint: devices[i]!.fingerprint, lastUsed: NOW - 3 * DAY, expiresAt: NOW - 2 * DAY }));
    await seed(server, { users: [keep, ...guests], sessions, fingerprints: devices });
    expect(await server.cleanup()).toEqual({ sessions: 0, guests: 501 });
    expect((await internals(server).store.findBy('users', 'role', 'guest')).map((r) => r.id)).toEqual([keep.uid]);
    for (const g of guests.slice(0, 5)) {
      expect(await internals(server).store.get('users', g.uid)).toBeUndefined();
      expect(await internals(server).store.findBy('sessions', 'uid', g.uid)).toEqual([]);
      expect(await internals(server).store.findBy('fingerprints', 'uid', g.uid)).toEqual([]);
    }
    await expectConsistent(server);
  });
});

describe('server.cleanup() with sockets open', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ config });
  });
  afterAll(async () => {
    await server?.close();
  });

  it('a live session’s socket is untouched by a run that deletes other sessions', async () => {
    const s = await issueSession(server, { role: 'user' });
    const client = await TestClient.connect(server, s.accessToken);
    await seed(server, { sessions: [session(s.uid, { revokedAt: NOW - 2 * HOUR, revokeReason: 'revoked' }), session(s.uid, { expiresAt: NOW - 2 * HOUR })] });
    expect(await server.cleanup()).toEqual({ sessions: 2, guests: 0 });
    expect(await client.ask('UserStore', 'GetOwn')).toMatchObject({ ok: true, result: { uid: s.uid } });
    expect((await internals(server).store.findBy('sessions', 'uid', s.uid)).map((r) => r.id)).toEqual([s.sid]);
    await client.close();
  });
});
