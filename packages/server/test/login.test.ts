/**
 * POST /auth/login and the plain HTTP routes, against a real server on loopback with a real lowdb store.
 * Password hashing stays real here (docs/protocol.md: only tests at scale skip it).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { request } from 'node:http';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeJwt } from 'jose';
import { internals } from '../src/server.js';
import { expectError, httpRequest, loginWithPassword, post, startTestServer, type TestServer } from '../src/testing/index.js';
import { UserStore } from '../src/actors/user-store.js';
import { storeOnDisk } from './helpers.js';

/** The store file as it is on disk right now. */
async function disk(server: TestServer): Promise<Record<string, Record<string, any>>> {
  return storeOnDisk(server.dataDir);
}

async function counts(server: TestServer) {
  const store = internals(server).store;
  return { users: await store.count('users'), sessions: await store.count('sessions'), fingerprints: await store.count('fingerprints') };
}

// Many failed logins come from 127.0.0.1 in this file; the login limiter is tested elsewhere.
const config = { loginMaxFailures: 10_000 };

describe('POST /auth/login', () => {
  let server: TestServer;
  const password = 'a correct password';
  let alice: { uid: string; username: string };

  beforeAll(async () => {
    server = await startTestServer({ config });
    const user = await server.ask(UserStore.Create, { username: 'alice', password, role: 'user' });
    alice = user;
  });
  afterAll(async () => {
    await server?.close();
  });

  it('answers 200 with {uid, role, sid, accessToken, refreshToken, accessExpiresAt, refreshExpiresAt} in epoch ms', async () => {
    const before = Date.now();
    const res = await loginWithPassword(server, { username: 'alice', password, deviceId: 'dev-shape' });
    const after = Date.now();
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(Object.keys(res.body).sort()).toEqual(['accessExpiresAt', 'accessToken', 'deviceId', 'refreshExpiresAt', 'refreshToken', 'role', 'sid', 'uid']);
    const b = res.body;
    // 'dev-shape' was not issued by the server: it is replaced by a server-issued device id.
    expect(b.deviceId).toMatch(/^dv_[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
    expect(b.uid).toBe(alice.uid);
    expect(b.role).toBe('user');
    expect(b.sid).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(typeof b.accessToken).toBe('string');
    expect(typeof b.refreshToken).toBe('string');
    expect(b.refreshToken).not.toBe(b.accessToken);
    for (const t of [b.accessExpiresAt, b.refreshExpiresAt]) {
      expect(typeof t).toBe('number');
      expect(Number.isInteger(t)).toBe(true);
      // Epoch milliseconds, not seconds, and in the future.
      expect(t).toBeGreaterThan(before);
    }
    // 15 minutes (the token's exp has whole seconds) and 30 days.
    expect(b.accessExpiresAt).toBeGreaterThanOrEqual(before + 15 * 60_000 - 1000);
    expect(b.accessExpiresAt).toBeLessThanOrEqual(after + 15 * 60_000);
    expect(b.refreshExpiresAt).toBeGreaterThanOrEqual(before + 30 * 86_400_000);
    expect(b.refreshExpiresAt).toBeLessThanOrEqual(after + 30 * 86_400_000);
    // The access token is a JWT for this user and session.
    const claims = decodeJwt(b.accessToken);
    expect(claims.sub).toBe(alice.uid);
    expect(claims.sid).toBe(b.sid);
    expect(claims.role).toBe('user');
    expect(claims.exp! * 1000).toBe(b.accessExpiresAt);
    // Nothing secret in the answer.
    expect(res.text).not.toMatch(/passwordHash|scrypt/);
    expect(res.text).not.toContain(password);
  });

  it('a username differing only in case logs into the same user', async () => {
    const res = await loginWithPassword(server, { username: 'ALICE', password });
    expect(res.status).toBe(200);
    expect(res.body.uid).toBe(alice.uid);
  });

  it('an unknown user and a wrong password give the same 401 INVALID_CREDENTIALS status and body', async () => {
    const unknown = await loginWithPassword(server, { username: 'nobody-here', password });
    const wrong = await loginWithPassword(server, { username: 'alice', password: 'not the password' });
    expect(unknown.status).toBe(401);
    expect(wrong.status).toBe(401);
    expect(unknown.body).toEqual({ error: { code: 'INVALID_CREDENTIALS', message: expect.any(String) } });
    expect(wrong.text).toBe(unknown.text);
    expect(wrong.headers['content-type']).toBe(unknown.headers['content-type']);
  });

  it('a user without a password (provisioned or guest) cannot log in with any password: same 401', async () => {
    await server.ask(UserStore.Provision, { username: 'nopass', role: 'user' });
    const res = await loginWithPassword(server, { username: 'nopass', password: 'whatever-at-all' });
    const unknown = await loginWithPassword(server, { username: 'nobody-here', password: 'whatever-at-all' });
    expect(res.status).toBe(401);
    expect(res.text).toBe(unknown.text);
  });

  it('failed logins create no session, no fingerprint and no user', async () => {
    const before = await counts(server);
    await loginWithPassword(server, { username: 'nobody-here', password, deviceId: 'dev-fail-1' });
    await loginWithPassword(server, { username: 'alice', password: 'wrong-wrong', deviceId: 'dev-fail-2' });
    expect(await counts(server)).toEqual(before);
  });

  describe('bad bodies answer 400/413 with the error shape and write nothing', () => {
    // Every row has three entries: jest passes a `done` callback in place of a missing trailing argument.
    const json = { 'Content-Type': 'application/json' };
    const cases: Array<[string, string, Record<string, string>]> = [
      ['not JSON', '{"username":"alice",', json],
      ['plain text', 'username=alice&password=x', json],
      ['a JSON array', '[]', json],
      ['a JSON string', '"alice"', json],
      ['a JSON number', '1', json],
      ['JSON null', 'null', json],
      ['an empty object', '{}', json],
      ['missing password', JSON.stringify({ username: 'alice' }), json],
      ['missing username', JSON.stringify({ password }), json],
      ['a numeric username', JSON.stringify({ username: 1, password }), json],
      ['a numeric password', JSON.stringify({ username: 'alice', password: 12345678 }), json],
      ['an object password', JSON.stringify({ username: 'alice', password: { $ne: '' } }), json],
      ['an empty username', JSON.stringify({ username: '', password }), json],
      ['an empty password', JSON.stringify({ username: 'alice', password: '' }), json],
      ['a numeric deviceId', JSON.stringify({ username: 'alice', password, deviceId: 5 }), json],
      ['an empty deviceId', JSON.stringify({ username: 'alice', password, deviceId: '' }), json],
      ['a deviceId of 129 characters', JSON.stringify({ username: 'alice', password, deviceId: 'd'.repeat(129) }), json],
      ['a username of 257 characters', JSON.stringify({ username: 'a'.repeat(257), password }), json],
      ['a password of 1025 characters', JSON.stringify({ username: 'alice', password: 'p'.repeat(1025) }), json],
      ['a JSON body sent as text/plain', JSON.stringify({ username: 'alice', password }), { 'Content-Type': 'text/plain' }],
      ['no body at all', '', json],
    ];

    it.each(cases)('%s → 400 BAD_REQUEST', async (_name, text, headers) => {
      const before = await counts(server);
      const res = await post(server, '/auth/login', undefined, { rawBody: text, headers });
      expect(res.status).toBe(400);
      await expectError(res, 'BAD_REQUEST');
      expect(await counts(server)).toEqual(before);
    });

    it('a body over 16 KiB (valid JSON, right credentials) → 413 PAYLOAD_TOO_LARGE', async () => {
      const before = await counts(server);
      const text = JSON.stringify({ username: 'alice', password, deviceId: 'dev-big', pad: 'x'.repeat(16 * 1024) });
      expect(Buffer.byteLength(text)).toBeGreaterThan(16 * 1024);
      const res = await post(server, '/auth/login', undefined, { rawBody: text });
      expect(res.status).toBe(413);
      await expectError(res, 'PAYLOAD_TOO_LARGE');
      expect(await counts(server)).toEqual(before);
    });

    it('a chunked body over 16 KiB (no Content-Length) → 413 PAYLOAD_TOO_LARGE', async () => {
      const before = await counts(server);
      const { status, body } = await new Promise<{ status: number; body: any }>((resolve, reject) => {
        const req = request(`${server.url}/auth/login`, { method: 'POST', headers: { 'Content-Type': 'application/json' } }, (res) => {
          let text = '';
          res.on('data', (c: Buffer) => (text += c.toString()));
          res.on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(text) }));
          res.on('error', reject);
        });
        // The server may answer and close before it has read everything we send.
        req.on('error', () => undefined);
        req.write(`{"username":"alice","password":"${password}","pad":"`);
        for (let i = 0; i < 5; i++) req.write('y'.repeat(4096));
        req.end('"}');
      });
      expect(status).toBe(413);
      await expectError({ status, body }, 'PAYLOAD_TOO_LARGE', { status: 413 });
      expect(await counts(server)).toEqual(before);
    });

    it('a body of exactly 16 KiB is still read', async () => {
      const base = JSON.stringify({ username: 'alice', password, deviceId: 'dev-16k', pad: '' });
      const text = JSON.stringify({ username: 'alice', password, deviceId: 'dev-16k', pad: 'z'.repeat(16 * 1024 - Buffer.byteLength(base)) });
      expect(Buffer.byteLength(text)).toBe(16 * 1024);
      const res = await post(server, '/auth/login', undefined, { rawBody: text });
      expect(res.status).toBe(200);
    });
  });

  it('one login creates exactly one session and one fingerprint; the same device again bumps that fingerprint to count 2', async () => {
    const user = await server.ask(UserStore.Create, { username: 'counter', password, role: 'user' });
    const before = await counts(server);

    const first = await loginWithPassword(server, { username: 'counter', password });
    expect(first.status).toBe(200);
    expect(await counts(server)).toEqual({ ...before, sessions: before.sessions + 1, fingerprints: before.fingerprints + 1 });

    let doc = await disk(server);
    const mine = () => Object.values(doc.fingerprints ?? {}).filter((f: any) => f.uid === user.uid);
    expect(mine()).toHaveLength(1);
    const fp = mine()[0];
    expect(fp).toEqual({ fingerprint: expect.stringMatching(/^fp_/), uid: user.uid, device: expect.stringMatching(/^dk_/), firstSeen: expect.any(Number), lastSeen: expect.any(Number), count: 1, blocked: false });
    expect(fp.fingerprint).not.toBe(user.uid);
    // The device id itself is never stored (only a keyed hash of it).
    expect(JSON.stringify(doc)).not.toContain(first.body.deviceId);
    const s1 = doc.sessions![first.body.sid];
    expect(s1).toMatchObject({ sid: first.body.sid, uid: user.uid, fingerprint: fp.fingerprint, revokedAt: null });
    // The refresh token is stored only as a hash.
    expect(JSON.stringify(doc)).not.toContain(first.body.refreshToken);
    expect(doc.users![user.uid].lastLogin).toEqual(expect.any(Number));

    const second = await loginWithPassword(server, { username: 'counter', password, deviceId: first.body.deviceId });
    expect(second.status).toBe(200);
    expect(second.body.sid).not.toBe(first.body.sid);
    expect(await counts(server)).toEqual({ ...before, sessions: before.sessions + 2, fingerprints: before.fingerprints + 1 });
    doc = await disk(server);
    expect(mine()).toHaveLength(1);
    expect(mine()[0]).toMatchObject({ fingerprint: fp.fingerprint, count: 2, firstSeen: fp.firstSeen });
    expect(mine()[0].lastSeen).toBeGreaterThanOrEqual(fp.lastSeen);
    expect(doc.sessions![second.body.sid].fingerprint).toBe(fp.fingerprint);

    // Another device is another fingerprint.
    const third = await loginWithPassword(server, { username: 'counter', password, deviceId: 'device-B' });
    expect(third.status).toBe(200);
    doc = await disk(server);
    expect(mine()).toHaveLength(2);
  });
});

describe('GREENROOM_ADMIN bootstrap', () => {
  let dir: string;
  let server: TestServer | undefined;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'greenroom-login-admin-'));
  });
  afterAll(async () => {
    await server?.close();
    await rm(dir, { recursive: true, force: true });
  });

  const users = async (s: TestServer) => Object.values((await disk(s)).users ?? {}) as any[];

  it('creates the admin on an empty store; login as it works with role admin; restarts do not create a second admin', async () => {
    const admin = { username: 'root', password: 'correct horse' };
    server = await startTestServer({ keepDataDir: dir, config: { ...config, admin } });
    const first = await users(server);
    expect(first).toHaveLength(1);
    expect(first[0]).toMatchObject({ username: 'root', role: 'admin', blocked: false });
    expect(first[0].passwordHash).not.toContain('correct horse');
    const rootUid = first[0].uid;

    const res = await loginWithPassword(server, { username: 'root', password: 'correct horse' });
    expect(res.status).toBe(200);
    expect(res.body.role).toBe('admin');
    expect(res.body.uid).toBe(rootUid);
    const wrong = await loginWithPassword(server, { username: 'root', password: 'wrong horse' });
    expect(wrong.status).toBe(401);
    await server.close();
    server = undefined;

    // Same data dir, same admin setting: still one admin, the same uid.
    server = await startTestServer({ keepDataDir: dir, config: { ...config, admin } });
    const second = await users(server);
    expect(second).toHaveLength(1);
    expect(second[0].uid).toBe(rootUid);
    expect((await loginWithPassword(server, { username: 'root', password: 'correct horse' })).body.uid).toBe(rootUid);
    await server.close();
    server = undefined;

    // A different admin setting on a store that is no longer empty creates nothing, and does not reset root.
    server = await startTestServer({ keepDataDir: dir, config: { ...config, admin: { username: 'root2', password: 'another horse' } } });
    const third = await users(server);
    expect(third.map((u) => u.username)).toEqual(['root']);
    expect((await loginWithPassword(server, { username: 'root2', password: 'another horse' })).status).toBe(401);
    expect((await loginWithPassword(server, { username: 'root', password: 'correct horse' })).status).toBe(200);
  });
});

describe('other HTTP routes', () => {
  let server: TestServer;
  beforeAll(async () => {
    // /metrics for anyone who can reach the port (GREENROOM_METRICS=public; the default, admin, is tested in security).
    server = await startTestServer({ config: { ...config, metrics: 'public' } });
  });
  afterAll(async () => {
    await server?.close();
  });

  it('GET /healthz → 200', async () => {
    const res = await httpRequest(server, '/healthz');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ status: 'ok' });
  });

  it('GET /readyz → 200 while the store is reachable', async () => {
    const res = await httpRequest(server, '/readyz');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ status: 'ready' });
  });

  it('GET /metrics → Prometheus text with greenroom_connections', async () => {
    const res = await httpRequest(server, '/metrics');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain/);
    expect(res.text).toMatch(/^# TYPE greenroom_connections gauge$/m);
    expect(res.text).toMatch(/^greenroom_connections \d+$/m);
    expect(res.text).toMatch(/^greenroom_mailbox_queued\{actor="UserStore"\} \d+$/m);
  });

  it.each(['/nope', '/auth', '/auth/login/extra', '/healthz/', '/HEALTHZ'])('GET %s → 404 NOT_FOUND as a JSON error', async (path) => {
    const res = await httpRequest(server, path);
    expect(res.status).toBe(404);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    await expectError(res, 'NOT_FOUND');
  });

  it('an unknown route under POST is 404 too', async () => {
    const res = await post(server, '/auth/nope', {});
    expect(res.status).toBe(404);
    await expectError(res, 'NOT_FOUND');
  });

  it.each([
    ['GET', '/auth/login'],
    ['PUT', '/auth/login'],
    ['DELETE', '/auth/login'],
    ['POST', '/healthz'],
    ['POST', '/metrics'],
    ['PATCH', '/readyz'],
  ])('%s %s → 405 METHOD_NOT_ALLOWED as a JSON error', async (method, path) => {
    const res = await httpRequest(server, path, { method });
    expect(res.status).toBe(405);
    await expectError(res, 'METHOD_NOT_ALLOWED');
  });

  it('the query string does not change the route', async () => {
    expect((await httpRequest(server, '/healthz?x=1')).status).toBe(200);
  });
});
