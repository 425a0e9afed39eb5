/**
 * Guest sign-in (docs/protocol.md): POST /auth/guest {deviceId?} opens a session for a new `guest` user tied to the
 * device's fingerprint (device id plus stable request headers, hashed); 403 BLOCKED for a blocked fingerprint,
 * and nothing is created then. Guests may be disabled (`guests: false`): 403, nothing created.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import WebSocket from 'ws';
import type { FingerprintRecord, SessionRecord, UserRecord } from '../src/actors/records.js';
import { internals } from '../src/server.js';
import { issueSession, post, signInAsGuest, startTestServer, TestClient, type TestServer } from '../src/testing/index.js';
import { storeContents } from './helpers.js';

/** The headers that, with the device id, make up a fingerprint. */
const DEVICE_HEADERS = { 'User-Agent': 'GuestTest/1.0 (X11; Linux x86_64)', 'Accept-Language': 'en-GB,en;q=0.8' };

/** Sent from the one device of these tests. */
const fromDevice = { headers: DEVICE_HEADERS };

/** Every record of the three collections, and their counts. */
const snapshot = (server: TestServer) => storeContents(server, ['users', 'sessions', 'fingerprints']);

describe('POST /auth/guest', () => {
  let server: TestServer;
  let admin: TestClient;
  const clients: TestClient[] = [];

  beforeAll(async () => {
    server = await startTestServer();
    admin = await TestClient.connect(server, (await issueSession(server, { role: 'admin' })).accessToken);
    clients.push(admin);
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await server?.close();
  });

  let first: { uid: string; sid: string; accessToken: string; refreshToken: string; fingerprint: string; deviceId: string };

  it('opens a session for a new user with role guest, and records a fingerprint pointing at that user', async () => {
    const usersBefore = await internals(server).store.count('users');
    // A device id the server did not issue is ignored: the answer carries a fresh, server-issued one.
    const res = await signInAsGuest(server, { deviceId: 'device-guest-1' }, fromDevice);
    expect(res.status).toBe(200);
    expect(Object.keys(res.body).sort()).toEqual(['accessExpiresAt', 'accessToken', 'deviceId', 'refreshExpiresAt', 'refreshToken', 'role', 'sid', 'uid']);
    expect(res.body.deviceId).toMatch(/^dv_/);
    expect(res.body.role).toBe('guest');
    expect(await internals(server).store.count('users')).toBe(usersBefore + 1);

    const user = await internals(server).store.get<UserRecord>('users', res.body.uid);
    expect(user).toMatchObject({ uid: res.body.uid, role: 'guest', blocked: false, passwordHash: null });

    const session = await internals(server).store.get<SessionRecord>('sessions', res.body.sid);
    expect(session).toMatchObject({ sid: res.body.sid, uid: res.body.uid, revokedAt: null });

    const devices = (await internals(server).store.findBy<FingerprintRecord>('fingerprints', 'uid', res.body.uid)).map((r) => r.value);
    expect(devices).toHaveLength(1);
    expect(devices[0]).toMatchObject({ fingerprint: session!.fingerprint, uid: res.body.uid, count: 1, blocked: false });
    expect(devices[0]!.fingerprint).toMatch(/^fp_/);
    // The raw device id is never stored.
    expect(JSON.stringify(devices[0])).not.toContain(res.body.deviceId);
    // Not a browser page (no Origin): no cookies.
    expect(res.cookies).toEqual([]);
    first = { ...res.body, fingerprint: devices[0]!.fingerprint };
  });

  it('every guest sign-in is a new user, even from the same device', async () => {
    const again = await signInAsGuest(server, { deviceId: first.deviceId }, fromDevice);
    expect(again.status).toBe(200);
    expect(again.body.uid).not.toBe(first.uid);
    expect(again.body.role).toBe('guest');
    expect(again.body.deviceId).toBe(first.deviceId);
    const second = await internals(server).store.get<SessionRecord>('sessions', again.body.sid);
    // Same device, same fingerprint; one row per (device, user): the first guest's row is untouched.
    expect(second!.fingerprint).toBe(first.fingerprint);
    const rows = (await internals(server).store.findBy<FingerprintRecord>('fingerprints', 'fingerprint', first.fingerprint)).map((r) => r.value);
    expect(rows.map((r) => [r.uid, r.count]).sort()).toEqual([[first.uid, 1], [again.body.uid, 1]].sort());
    first = { ...again.body, fingerprint: first.fingerprint };
  });

  it('a guest can open a socket and ask UserStore.GetOwn', async () => {
    const socket = await TestClient.connect(server, first.accessToken);
    clients.push(socket);
    const own = await socket.ask('UserStore', 'GetOwn');
    expect(own).toMatchObject({ ok: true, result: { uid: first.uid, role: 'guest', blocked: false } });
    // And is a guest there: admin-only asks are refused.
    expect(await socket.ask('UserStore', 'GetAll')).toMatchObject({ ok: false, error: { code: 'FORBIDDEN' } });
  });

  it('after an admin blocks the guest’s fingerprint, POST /auth/guest from the same device is 403 BLOCKED and creates nothing', async () => {
    const socket = clients[clients.length - 1]!;
    // The device has two rows (two guests): the admin names the row, by its uid.
    expect(await admin.ask('FingerprintStore', 'Block', { fingerprint: first.fingerprint })).toMatchObject({ ok: false, error: { code: 'CONFLICT' } });
    const blocked = await admin.ask('FingerprintStore', 'Block', { fingerprint: first.fingerprint, uid: first.uid });
    expect(blocked).toMatchObject({ ok: true, result: { uid: first.uid, blocked: true } });
    expect(await socket.closed).toEqual({ code: 4003, reason: 'blocked' });

    const before = await snapshot(server);
    for (const deviceId of [first.deviceId, first.deviceId]) {
      const res = await signInAsGuest(server, { deviceId }, fromDevice);
      expect(res.status).toBe(403);
      expect(res.body).toEqual({ error: { code: 'BLOCKED', message: expect.any(String) } });
      expect(res.cookies).toEqual([]);
    }
    expect(await snapshot(server)).toEqual(before);
  });

  it('the block is per device: another device id (or other headers) still gets a guest session', async () => {
    const other = await signInAsGuest(server, {}, fromDevice);
    expect(other.status).toBe(200);
    expect(other.body.role).toBe('guest');
    expect(other.body.deviceId).not.toBe(first.deviceId);
    const otherHeaders = await signInAsGuest(server, { deviceId: first.deviceId }, { headers: { ...DEVICE_HEADERS, 'User-Agent': 'SomethingElse/2.0' } });
    expect(otherHeaders.status).toBe(200);
    const socket = await TestClient.connect(server, other.body.accessToken);
    clients.push(socket);
    expect(socket.ws.readyState).toBe(WebSocket.OPEN);
    expect((await socket.ask('UserStore', 'GetOwn')).ok).toBe(true);
  });

  it('without a deviceId each sign-in gets a device of its own: same headers, different fingerprints', async () => {
    const a = await signInAsGuest(server, {}, fromDevice);
    const b = await signInAsGuest(server, {}, fromDevice);
    expect([a.status, b.status]).toEqual([200, 200]);
    expect(a.body.deviceId).not.toBe(b.body.deviceId);
    const fa = (await internals(server).store.get<SessionRecord>('sessions', a.body.sid))!.fingerprint;
    const fb = (await internals(server).store.get<SessionRecord>('sessions', b.body.sid))!.fingerprint;
    expect(fa).not.toBe(fb);
    expect((await internals(server).store.findBy<FingerprintRecord>('fingerprints', 'fingerprint', fa)).map((r) => r.value.uid)).toEqual([a.body.uid]);
  });

  it('a bad body is 400 and creates nothing', async () => {
    const before = await snapshot(server);
    for (const body of [{ deviceId: '' }, { deviceId: 'x'.repeat(129) }, { deviceId: 7 }]) {
      const res = await post(server, '/auth/guest', body, fromDevice);
      expect(res.status).toBe(400);
    }
    expect(await snapshot(server)).toEqual(before);
  });
});

describe('POST /auth/guest with guests disabled (guests: false)', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ config: { guests: false } });
    await issueSession(server, { role: 'admin' });
  });
  afterAll(async () => {
    await server?.close();
  });

  it('is 403 and creates nothing', async () => {
    const before = await snapshot(server);
    for (const body of [{ deviceId: 'device-1' }, {}]) {
      const res = await post(server, '/auth/guest', body, fromDevice);
      expect(res.status).toBe(403);
      expect(res.body).toEqual({ error: { code: expect.any(String), message: expect.any(String) } });
      expect(res.cookies).toEqual([]);
    }
    expect(await snapshot(server)).toEqual(before);
  });
});
