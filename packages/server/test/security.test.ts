/**
 * Attacks from a security review, each performed against a real server (docs/security.md lists them with these
 * tests): parallel password guessing, locking a user (an admin) out from elsewhere, shared or made-up device ids,
 * a password reset that left the attacker connected, tickets for ended sessions and tickets bought with tickets,
 * guest sign-in floods, unreadable names, cheap password hashes, and /metrics open to anyone.
 *
 * Client addresses: every test connects from 127.0.0.1, so where addresses matter the server trusts a proxy and the
 * tests send `X-Forwarded-For` with documentation addresses (203.0.113.0/24); they are header values, not traffic.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import type { FingerprintRecord, SessionRecord, UserRecord } from '../src/actors/records.js';
import { internals } from '../src/server.js';
import {
  httpRequest,
  issueSession,
  loginWithPassword,
  post,
  refusedUpgrade,
  signInAsGuest,
  startTestServer,
  TestClient,
  type HttpAnswer,
  type TestServer,
} from '../src/testing/index.js';
import { limiterKey } from '../src/auth/client-address.js';
import type { TicketBook } from '../src/auth/tickets.js';
import { SessionStore } from '../src/actors/session-store.js';
import { UserStore } from '../src/actors/user-store.js';
import { SYSTEM_CALLER } from '../src/actors/define.js';

const PASSWORD = 'the right password';

const from = (address: string) => ({ 'X-Forwarded-For': address });
/** A password login sent through a proxy that says it came from `address`. */
const loginFrom = (server: TestServer, username: string, password: string, address: string, deviceId?: string) =>
  loginWithPassword(server, { username, password, ...(deviceId ? { deviceId } : {}) }, { headers: from(address) });

const servers: TestServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});
async function fresh(config: Parameters<typeof startTestServer>[0] = {}): Promise<TestServer> {
  const server = await startTestServer({ ...config, config: { trustProxy: true, ...config.config } });
  servers.push(server);
  return server;
}

describe('the login limiter', () => {
  it('checks no more passwords for a burst of 40 parallel guesses than for 40 sent one by one: the right one (36th) is refused (3 rounds)', async () => {
    const server = await fresh({ config: { loginMaxFailures: 10 } });
    for (let round = 0; round < 3; round++) {
      const name = `victim${round}`;
      await server.ask(UserStore.Create, { username: name, password: PASSWORD, role: 'user' });
      const guesses = Array.from({ length: 40 }, (_, i) => (i === 35 ? PASSWORD : `wrong guess ${i}`));
      const answers = await Promise.all(guesses.map((g) => loginFrom(server, name, g, `203.0.113.${round + 1}`)));
      const checked = answers.filter((a) => a.status !== 429);
      expect(checked.length).toBeLessThanOrEqual(10);
      expect(checked.every((a) => a.status === 401)).toBe(true);
      expect(answers[35]!.status).toBe(429);
      expect(answers[35]!.body.error.code).toBe('RATE_LIMITED');
    }
  });

  it('counts the client address a trusted proxy appended, not what the client wrote before it', async () => {
    const server = await fresh({ config: { loginMaxFailures: 3 } });
    await server.ask(UserStore.Create, { username: 'carol', password: PASSWORD, role: 'user' });
    // A different made-up first hop each time: all of them are the one client 203.0.113.50.
    for (let i = 0; i < 3; i++) expect((await loginFrom(server, 'carol', 'nope', `198.51.100.${i}, 203.0.113.50`)).status).toBe(401);
    expect((await loginFrom(server, 'carol', PASSWORD, `198.51.100.99, 203.0.113.50`)).status).toBe(429);
  });

  it('counts an IPv6 client by its /64 and an IPv4-mapped address as its IPv4', async () => {
    expect(limiterKey('2001:db8:1:2::1')).toBe('2001:db8:1:2::/64');
    expect(limiterKey('2001:0db8:0001:0002:ffff:1:2:3')).toBe('2001:db8:1:2::/64');
    expect(limiterKey('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(limiterKey('::1')).toBe('0:0:0:0::/64');
    expect(limiterKey('fe80::1%eth0')).toBe('fe80:0:0:0::/64');
    expect(limiterKey('::ffff:203.0.113.7')).toBe('203.0.113.7');
    expect(limiterKey('203.0.113.7')).toBe('203.0.113.7');
    const server = await fresh({ config: { loginMaxFailures: 3 } });
    await server.ask(UserStore.Create, { username: 'ivy', password: PASSWORD, role: 'user' });
    // A new address of the same /64 for every guess: still one client.
    for (let i = 1; i <= 3; i++) expect((await loginFrom(server, `nobody${i}`, 'nope', `2001:db8:7:7::${i}`)).status).toBe(401);
    expect((await loginFrom(server, 'ivy', PASSWORD, '2001:db8:7:7:ffff::99')).status).toBe(429);
    expect((await loginFrom(server, 'ivy', PASSWORD, '2001:db8:7:8::1')).status).toBe(200);
  });

  it('never locks a user (an admin) out of a device they logged in from before; new devices and the attacker stay locked', async () => {
    const server = await fresh({ config: { loginMaxFailures: 5 } });
    const admin = await server.ask(UserStore.Create, { username: 'admin', password: PASSWORD, role: 'admin' });
    await server.ask(UserStore.Create, { username: 'alice', password: PASSWORD, role: 'user' });
    // The admin's browser and alice's laptop each got a device id at an earlier login.
    const browser = (await loginFrom(server, 'admin', PASSWORD, '203.0.113.10')).body.deviceId as string;
    const alicesLaptop = (await loginFrom(server, 'alice', PASSWORD, '203.0.113.11')).body.deviceId as string;
    expect(browser).toMatch(/^dv_/);

    // Five guesses for `admin` from three addresses: no address reaches its own limit, the username does.
    for (let i = 0; i < 5; i++) expect((await loginFrom(server, 'admin', `guess ${i}`, `203.0.113.${100 + (i >> 1)}`)).status).toBe(401);
    const attacker = await loginFrom(server, 'admin', PASSWORD, '203.0.113.200');
    expect(attacker.status).toBe(429);
    expect(attacker.headers['retry-after']).toMatch(/^[1-9]\d*$/);

    // The real admin, on the browser it used before, with the right password: in.
    const fromBrowser = await loginFrom(server, 'admin', PASSWORD, '203.0.113.10', browser);
    expect(fromBrowser.status).toBe(200);
    expect(fromBrowser.body.uid).toBe(admin.uid);
    expect(fromBrowser.body.deviceId).toBe(browser);
    // A new device (no id, a made-up id, a tampered id, or another user's device id) stays locked.
    for (const deviceId of [undefined, 'dv_made-up', `${browser.slice(0, -1)}${browser.endsWith('A') ? 'B' : 'A'}`, alicesLaptop]) {
      const answer = await loginFrom(server, 'admin', PASSWORD, '203.0.113.10', deviceId);
      expect({ deviceId, status: answer.status }).toEqual({ deviceId, status: 429 });
    }
    // The known device still pays for wrong passwords: they are refused, and counted for its address.
    expect((await loginFrom(server, 'admin', 'wrong', '203.0.113.10', browser)).status).toBe(401);
  });

  it('locks known and unknown usernames on the same attempt with the same body', async () => {
    const server = await fresh({ config: { loginMaxFailures: 3 } });
    await server.ask(UserStore.Create, { username: 'dave', password: PASSWORD, role: 'user' });
    const runs = await Promise.all(
      ['dave', 'nobody'].map(async (name, k) => {
        const statuses: number[] = [];
        let last: HttpAnswer | undefined;
        for (let i = 0; i < 5; i++) {
          last = await loginFrom(server, name, 'wrong', `203.0.113.${20 + k}`);
          statuses.push(last.status);
        }
        return { statuses, body: last!.body };
      }),
    );
    expect(runs[0]!.statuses).toEqual([401, 401, 401, 429, 429]);
    expect(runs[1]).toEqual(runs[0]);
  });
});

describe('the login limiter, continued', () => {
  it('limits a known device too: its id stops buying password checks for the locked username after the limit, from any address', async () => {
    const server = await fresh({ config: { loginMaxFailures: 3 } });
    await server.ask(UserStore.Create, { username: 'frank', password: PASSWORD, role: 'user' });
    const laptop = (await loginFrom(server, 'frank', PASSWORD, '203.0.113.40')).body.deviceId as string;
    // The username is locked from elsewhere …
    for (let i = 0; i < 3; i++) expect((await loginFrom(server, 'frank', `guess ${i}`, `203.0.113.${41 + i}`)).status).toBe(401);
    expect((await loginFrom(server, 'frank', PASSWORD, '203.0.113.50')).status).toBe(429);
    // … the laptop still gets its checks, but only up to the limit, whichever address it comes from.
    for (let i = 0; i < 3; i++) expect((await loginFrom(server, 'frank', `wrong ${i}`, `203.0.113.${60 + i}`, laptop)).status).toBe(401);
    expect((await loginFrom(server, 'frank', PASSWORD, '203.0.113.70', laptop)).status).toBe(429);
  });

  it('does not hold an attempt that failed for another reason than the password (a timeout) against the caller', async () => {
    const server = await fresh({ config: { loginMaxFailures: 1, askTimeoutMs: 100 } });
    const slowAsk = (username: string) => internals(server).registry.askAs(SYSTEM_CALLER, UserStore.Create, { username, password: PASSWORD, role: 'user' }, 10_000);
    await slowAsk('gina');
    // UserStore hashes a new user's password in its mailbox (a few hundred ms): a login behind it times out.
    const busy = slowAsk('busy');
    await new Promise((r) => setImmediate(r));
    const timedOut = await loginFrom(server, 'gina', PASSWORD, '203.0.113.80');
    expect(timedOut.status).toBe(504);
    await busy;
    // Refunded: the next login is checked (200), not refused (429). On a loaded machine it may time out again
    // (504, refunded too), so it is tried until it is not a timeout.
    let next = await loginFrom(server, 'gina', PASSWORD, '203.0.113.80');
    for (let i = 0; i < 5 && next.status === 504; i++) next = await loginFrom(server, 'gina', PASSWORD, '203.0.113.80');
    expect(next.status).toBe(200);
  });

  it('refuses a login that checked the old password while an admin changed it: no session of the old password outlives the change (5 rounds)', async () => {
    const server = await fresh({ config: { loginMaxFailures: 1000 } });
    const admin = await TestClient.connect(server, (await issueSession(server, { role: 'admin' })).accessToken);
    for (let round = 0; round < 5; round++) {
      const name = `hank${round}`;
      const user = await server.ask(UserStore.Create, { username: name, password: PASSWORD, role: 'user' });
      // The login reads the old hash first; the change is queued right behind it and lands while it verifies.
      const attempt = loginFrom(server, name, PASSWORD, '203.0.113.90');
      // 30 ms: the login has read the old hash and is verifying it when the change is queued. (Whatever the timing,
      // no session of the old password may be live once both have answered.)
      await new Promise((r) => setTimeout(r, 30));
      const change = admin.ask('UserStore', 'Update', { uid: user.uid, password: `new password ${round}` });
      const [answer, changed] = await Promise.all([attempt, change]);
      expect(changed.ok).toBe(true);
      const live = (await internals(server).store.findBy<SessionRecord>('sessions', 'uid', user.uid)).filter((r) => r.value.revokedAt === null);
      expect({ round, live: live.length }).toEqual({ round, live: 0 });
      expect([200, 401]).toContain(answer.status);
    }
    await admin.close();
  });
});

describe('a flood of password checks', () => {
  // The usernames are unknown: each still costs a real hash (so timing tells nothing), which is what fills the queue.
  it('is bounded: past the hashes waiting their turn logins get 503 with Retry-After, and a refresh (a store write) answers meanwhile', async () => {
    const server = await fresh({ config: { loginMaxFailures: 1000 } });
    const session = await issueSession(server);
    let lastLogin = 0;
    const flood = Array.from({ length: 60 }, (_, i) =>
      loginFrom(server, `nobody-${i}`, 'wrong', `203.0.113.${i % 200}`).then((a) => ((lastLogin = Date.now()), a)),
    );
    await new Promise((r) => setTimeout(r, 50));
    const refresh = await post(server, '/auth/refresh', { refreshToken: session.refreshToken });
    const refreshedAt = Date.now();
    const answers = await Promise.all(flood);
    expect(refresh.status).toBe(200);
    expect(refreshedAt).toBeLessThan(lastLogin); // answered while password checks were still queued
    const refused = answers.filter((a) => a.status === 503);
    expect(refused.length).toBeGreaterThan(0);
    expect(refused[0]!.body.error.code).toBe('UNAVAILABLE');
    expect(refused[0]!.headers['retry-after']).toBe('1');
    expect(answers.filter((a) => a.status !== 503).every((a) => a.status === 401)).toBe(true);
  });
});

describe('devices', () => {
  it('gives two clients without a device id different fingerprints; blocking one row blocks exactly that user', async () => {
    const server = await fresh({ config: { loginMaxFailures: 1000 } });
    const admin = await TestClient.connect(server, (await issueSession(server, { role: 'admin' })).accessToken);
    const alice = await server.ask(UserStore.Create, { username: 'alice', password: PASSWORD, role: 'user' });
    const headers = { 'User-Agent': 'Same/1.0', 'Accept-Language': 'en' };
    // A guest and alice, same headers, neither sending a device id.
    const guest = await signInAsGuest(server, {}, { headers });
    const a = await loginWithPassword(server, { username: 'alice', password: PASSWORD }, { headers });
    expect([guest.status, a.status]).toEqual([200, 200]);
    const fpOf = async (sid: string) => (await internals(server).store.get<SessionRecord>('sessions', sid))!.fingerprint;
    const guestFp = await fpOf(guest.body.sid);
    expect(await fpOf(a.body.sid)).not.toBe(guestFp);

    // Blocking the guest's device blocks the guest, not alice: her socket stays open and she logs in again.
    const aliceSocket = await TestClient.connect(server, a.body.accessToken);
    expect((await admin.ask('FingerprintStore', 'Block', { fingerprint: guestFp })).ok).toBe(true);
    expect((await internals(server).store.get<UserRecord>('users', guest.body.uid))!.blocked).toBe(true);
    expect((await internals(server).store.get<UserRecord>('users', alice.uid))!.blocked).toBe(false);
    expect((await aliceSocket.ask('UserStore', 'GetOwn')).ok).toBe(true);
    expect((await loginWithPassword(server, { username: 'alice', password: PASSWORD, deviceId: a.body.deviceId }, { headers })).status).toBe(200);

    // A device used by two users has a row each; a block names the row, and hits only that row's user.
    await server.ask(UserStore.Create, { username: 'bob', password: PASSWORD, role: 'user' });
    const b = await loginWithPassword(server, { username: 'bob', password: PASSWORD, deviceId: a.body.deviceId }, { headers });
    const shared = await fpOf(b.body.sid);
    expect(shared).toBe(await fpOf(a.body.sid));
    const rows = (await internals(server).store.findBy<FingerprintRecord>('fingerprints', 'fingerprint', shared)).map((r) => r.value.uid).sort();
    expect(rows).toEqual([alice.uid, b.body.uid].sort());
    expect(await admin.ask('FingerprintStore', 'Block', { fingerprint: shared })).toMatchObject({ ok: false, error: { code: 'CONFLICT' } });
    expect(await admin.ask('FingerprintStore', 'Block', { fingerprint: shared, uid: b.body.uid })).toMatchObject({ ok: true, result: { uid: b.body.uid, blocked: true } });
    expect((await internals(server).store.get<UserRecord>('users', alice.uid))!.blocked).toBe(false);
    expect((await loginWithPassword(server, { username: 'alice', password: PASSWORD, deviceId: a.body.deviceId }, { headers })).status).toBe(200);
    expect((await loginWithPassword(server, { username: 'bob', password: PASSWORD, deviceId: a.body.deviceId }, { headers })).status).toBe(403);
    // No new guest identity from a device with a blocked row.
    expect((await signInAsGuest(server, { deviceId: a.body.deviceId }, { headers })).status).toBe(403);
    await aliceSocket.close();
    await admin.close();
  });
});

describe('a password change', () => {
  it('closes the other sessions’ sockets (4001 revoked) before it answers, and their refresh tokens are refused', async () => {
    const server = await fresh();
    const victim = await issueSession(server);
    const attackerSocket = await TestClient.connect(server, victim.accessToken);
    const admin = await issueSession(server, { role: 'admin' });
    const adminSocket = await TestClient.connect(server, admin.accessToken);

    // The server side of the attacker's socket, read when the answer arrives.
    const serverSide = [...internals(server).connections].find((c) => c.caller.sid === victim.sid) as unknown as { ws: { readyState: number } };
    const reply = await adminSocket.ask('UserStore', 'Update', { uid: victim.uid, password: 'a brand new password' });
    expect(reply.ok).toBe(true);
    expect(serverSide.ws.readyState).not.toBe(1); // closing or closed before the answer was sent
    expect(await attackerSocket.closed).toEqual({ code: 4001, reason: 'revoked' });
    const refresh = await post(server, '/auth/refresh', { refreshToken: victim.refreshToken });
    expect(refresh).toMatchObject({ status: 401, body: { error: { code: 'SESSION_REVOKED' } } });
    expect((await loginWithPassword(server, { username: victim.username, password: 'a brand new password' })).status).toBe(200);

    // An admin changing its own password keeps the session it did it from.
    expect((await adminSocket.ask('UserStore', 'Update', { uid: admin.uid, password: 'admin changes its own' })).ok).toBe(true);
    expect((await adminSocket.ask('UserStore', 'GetOwn')).ok).toBe(true);
    await adminSocket.close();
  });
});

describe('tickets', () => {
  it('are refused for a session that ended, and for a ticket; a user holds a bounded number', async () => {
    const server = await fresh({ config: { maxTicketsPerUser: 3 } });
    const s = await issueSession(server);
    const bearer = { Authorization: `Bearer ${s.accessToken}` };

    const t1 = await post(server, '/auth/ticket', {}, { headers: bearer });
    expect(t1.status).toBe(200);
    // A ticket cannot buy a ticket (it would renew itself forever).
    const chained = await post(server, `/auth/ticket?ticket=${t1.body.ticket}`, {});
    expect(chained).toMatchObject({ status: 403, body: { error: { code: 'FORBIDDEN' } } });

    // The fourth outstanding ticket withdraws the oldest (t1 was spent above).
    const more = [];
    for (let i = 0; i < 4; i++) more.push((await post(server, '/auth/ticket', {}, { headers: bearer })).body.ticket as string);
    expect((internals(server).tickets as TicketBook).size).toBe(3);
    expect((await refusedUpgrade(server, undefined, { query: `?ticket=${encodeURIComponent(more[0]!)}` })).status).toBe(401);
    const opened = await TestClient.connect(server, undefined, { query: `?ticket=${encodeURIComponent(more[3]!)}` });
    expect((await opened.ask('UserStore', 'GetOwn')).ok).toBe(true);
    await opened.close();

    // After logout the (still unexpired) access token buys no ticket.
    expect((await post(server, '/auth/logout', {}, { headers: bearer })).status).toBe(204);
    expect(await post(server, '/auth/ticket', {}, { headers: bearer })).toMatchObject({ status: 401, body: { error: { code: 'SESSION_REVOKED' } } });
  });
});

describe('guest sign-in', () => {
  it('is limited per client address (429 with Retry-After, nothing created) while another address signs in', async () => {
    const server = await fresh({ config: { guestMaxPerWindow: 5, guestWindowS: 60 } });
    for (let i = 0; i < 5; i++) expect((await signInAsGuest(server, {}, { headers: from('203.0.113.30') })).status).toBe(200);
    const users = await internals(server).store.count('users');
    const sessions = await internals(server).store.count('sessions');
    for (let i = 0; i < 20; i++) {
      const flood = await signInAsGuest(server, {}, { headers: from('203.0.113.30') });
      expect(flood.status).toBe(429);
      expect(flood.body.error.code).toBe('RATE_LIMITED');
      expect(Number(flood.headers['retry-after'])).toBeGreaterThan(0);
    }
    expect(await internals(server).store.count('users')).toBe(users);
    expect(await internals(server).store.count('sessions')).toBe(sessions);
    expect((await signInAsGuest(server, {}, { headers: from('203.0.113.31') })).status).toBe(200);
  });
});

describe('names people read', () => {
  let server: TestServer;
  let client: TestClient;
  let uid: string;
  beforeAll(async () => {
    server = await startTestServer();
    const s = await issueSession(server, { role: 'admin' });
    uid = s.uid;
    client = await TestClient.connect(server, s.accessToken);
  });
  afterAll(async () => {
    await client.close();
    await server.close();
  });

  it.each([
    ['a control character', 'Bob\u0007'],
    ['a newline', 'Bob\nAdmin'],
    ['a right-to-left override', 'Bob\u202Egnp.exe'],
    ['a bidirectional isolate', '\u2066Bob\u2069'],
    ['a right-to-left mark', 'Bob\u200F'],
    ['a line separator', 'Bob\u2028'],
    ['an unpaired surrogate', 'Bob\uD800'],
    ['a lone low surrogate', '\uDC00Bob'],
    ['a zero-width space', 'Bo\u200Bb'],
    ['a byte-order mark', '\uFEFFBob'],
    ['a soft hyphen', 'Bo\u00ADb'],
    ['a private-use character', 'Bob\uE000'],
    ['an unassigned code point', 'Bob\u0378'],
    ['a Hangul filler', 'Bob\u3164'],
  ])('refuses a displayName with %s (BAD_PAYLOAD), over the wire, for Update and Create', async (_what, name) => {
    const before = await internals(server).store.get<UserRecord>('users', uid);
    expect(await client.ask('UserStore', 'Update', { uid, displayName: name })).toMatchObject({ ok: false, error: { code: 'BAD_PAYLOAD' } });
    expect(await client.ask('UserStore', 'Create', { username: `x${Date.now()}`, password: PASSWORD, displayName: name })).toMatchObject({ ok: false, error: { code: 'BAD_PAYLOAD' } });
    expect(await client.ask('UserStore', 'Create', { username: name, password: PASSWORD })).toMatchObject({ ok: false, error: { code: 'BAD_PAYLOAD' } });
    expect(await internals(server).store.get<UserRecord>('users', uid)).toEqual(before);
  });

  it('stores names NFC-normalized and bounded', async () => {
    const decomposed = 'Ame\u0301lie'; // e + combining acute
    const reply = await client.ask('UserStore', 'Update', { uid, displayName: decomposed });
    expect(reply).toMatchObject({ ok: true, result: { displayName: 'Am\u00e9lie' } });
    expect((await internals(server).store.get<UserRecord>('users', uid))!.displayName).toBe('Am\u00e9lie');
    expect(await client.ask('UserStore', 'Update', { uid, displayName: 'x'.repeat(101) })).toMatchObject({ ok: false, error: { code: 'BAD_PAYLOAD' } });
    // Emoji (surrogate pairs, joiners, tag sequences) and scripts that need a zero-width non-joiner are fine.
    for (const name of ['Team 👩\u200D💻', 'Flag \u{1F3F4}\u{E0067}\u{E0062}\u{E0065}\u{E006E}\u{E0067}\u{E007F}', 'می\u200Cخواهم']) {
      expect({ name, reply: await client.ask('UserStore', 'Update', { uid, displayName: name }) }).toMatchObject({ name, reply: { ok: true } });
    }
  });
});

describe('password hashes', () => {
  it('are scrypt N=2^17; an older, cheaper hash still logs in and is replaced at that login', async () => {
    const server = await fresh();
    const user = await server.ask(UserStore.Create, { username: 'erin', password: PASSWORD, role: 'user' });
    expect((await internals(server).store.get<UserRecord>('users', user.uid))!.passwordHash).toMatch(/^scrypt\$131072\$8\$1\$/);
    // A hash from before (N=2^14), of the same password.
    const { scrypt } = await import('node:crypto');
    const salt = Buffer.from('0123456789abcdef');
    const key = await new Promise<Buffer>((resolve, reject) => scrypt(PASSWORD.normalize('NFKC'), salt, 32, { N: 16384, r: 8, p: 1 }, (e, k) => (e ? reject(e) : resolve(k))));
    const old = ['scrypt', 16384, 8, 1, salt.toString('base64url'), key.toString('base64url')].join('$');
    const record = (await internals(server).store.get<UserRecord>('users', user.uid))!;
    await internals(server).store.put('users', user.uid, { ...record, passwordHash: old });

    expect((await loginWithPassword(server, { username: 'erin', password: PASSWORD })).status).toBe(200);
    const upgraded = (await internals(server).store.get<UserRecord>('users', user.uid))!.passwordHash!;
    expect(upgraded).toMatch(/^scrypt\$131072\$8\$1\$/);
    expect((await loginWithPassword(server, { username: 'erin', password: PASSWORD })).status).toBe(200);
    expect((await loginWithPassword(server, { username: 'erin', password: 'not it' })).status).toBe(401);
  });
});

describe('GET /metrics', () => {
  const get = async (server: TestServer, token?: string) =>
    (await httpRequest(server, '/metrics', { headers: token ? { Authorization: `Bearer ${token}` } : {} })).status;

  it('is for live admin sessions by default (GREENROOM_METRICS=admin)', async () => {
    const server = await fresh();
    expect(server.config.metrics).toBe('admin');
    const admin = await issueSession(server, { role: 'admin' });
    expect(await get(server)).toBe(401);
    expect(await get(server, (await issueSession(server)).accessToken)).toBe(403);
    expect(await get(server, admin.accessToken)).toBe(200);
    await server.ask(SessionStore.Revoke, { sid: admin.sid });
    expect(await get(server, admin.accessToken)).toBe(401);
  });

  it('is open with public and absent with off', async () => {
    expect(await get(await fresh({ config: { metrics: 'public' } }))).toBe(200);
    expect(await get(await fresh({ config: { metrics: 'off' } }))).toBe(404);
  });
});
