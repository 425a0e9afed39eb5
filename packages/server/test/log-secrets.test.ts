/**
 * Logs (docs/operations.md): one structured line per security event, and no secret in any line.
 *
 * A real server whose logger writes every line (level `trace`) to a buffer is driven over real HTTP and WebSocket
 * through a full run: logins with right and wrong passwords and a burst of wrong ones to the limit, refresh (body and
 * cookie), tickets, guest sign-in, WebSocket asks (bearer, ticket, cookie), role changes (by an admin, and by the
 * operator through the admin socket), a password change by an admin, block (through a device row) and unblock,
 * revoking one session and all of a user's, logout. Every token,
 * ticket, password, device id, cookie value and the server secret the run used or received is collected, and so are
 * the password hashes and refresh state the store held; no log line may contain any of them. Then the expected event
 * lines are there, once each, with who did it, the target and the client address.
 *
 * The client address comes from X-Forwarded-For (the server trusts its proxy here), so each actor of the run has its
 * own address and the limiter's burst stays with the address that sent it.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { createLogger } from '../src/log.js';
import {
  expectOk,
  loginWithPassword,
  post,
  signInAsGuest,
  startTestServer,
  TestClient,
  type HttpAnswer,
  type TestServer,
} from '../src/testing/index.js';
import { storeContents } from './helpers.js';

const ADMIN_AT = '198.51.100.10';
const ALICE_AT = '198.51.100.20';
const GUESSER_AT = '203.0.113.66';
const GUEST_AT = '198.51.100.30';
const MAX_FAILURES = 3;

const password = () => `pw-${randomBytes(12).toString('base64url')}`;
const from = (address: string) => ({ 'X-Forwarded-For': address });
const bearer = (token: string) => ({ Authorization: `Bearer ${token}` });

/** Every line the server logged, as written. */
const lines: string[] = [];
const sink = new Writable({
  write(chunk: Buffer | string, _encoding, done) {
    lines.push(...chunk.toString().split('\n').filter((l) => l.length > 0));
    done();
  },
});

/** Everything secret the run saw, by kind (for a failure message that says which kind leaked). */
const secrets = new Map<string, string>();
function secret(kind: string, value: unknown): void {
  if (typeof value === 'string' && value.length > 0) secrets.set(value, kind);
}
/** Collects the secrets of a login, guest or refresh answer (body and cookies). */
function collect(answer: HttpAnswer): void {
  const body = answer.body as Record<string, unknown> | undefined;
  secret('access token', body?.accessToken);
  secret('refresh token', body?.refreshToken);
  secret('device id', body?.deviceId);
  secret('ticket', body?.ticket);
  for (const c of answer.cookies) {
    const value = c.split(';', 1)[0]!.split('=').slice(1).join('=');
    secret('cookie', value);
    secret('cookie', decodeURIComponent(value));
  }
}

let server: TestServer;
const adminPassword = password();

beforeAll(async () => {
  secret('password', adminPassword);
  server = await startTestServer({
    logger: createLogger({ level: 'trace', destination: sink }),
    config: { admin: { username: 'root', password: adminPassword }, loginMaxFailures: MAX_FAILURES, trustProxy: true },
  });
  secret('server secret', server.config.secret);
});

afterAll(async () => {
  await server?.close();
});

/** A password login sent through a proxy that says it came from `address`; collects the secrets of its answer. */
async function loginAs(username: string, pw: string, address: string, extra: { deviceId?: string; origin?: boolean } = {}): Promise<HttpAnswer> {
  secret('password', pw);
  const answer = await loginWithPassword(
    server,
    { username, password: pw, ...(extra.deviceId ? { deviceId: extra.deviceId } : {}) },
    { headers: { ...from(address), ...(extra.origin ? { Origin: server.url } : {}) } },
  );
  collect(answer);
  return answer;
}

/** One ask through the admin socket (the operator on the server's machine); resolves with its answer line. */
function askAsOperator(to: string, type: string, payload: unknown): Promise<{ ok: boolean; result?: unknown; error?: unknown }> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(join(server.dataDir, 'greenroom.sock'));
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      text += chunk;
      const end = text.indexOf('\n');
      if (end >= 0) {
        socket.end();
        resolve(JSON.parse(text.slice(0, end)));
      }
    });
    socket.on('error', reject);
    socket.write(`${JSON.stringify({ id: 1, to, type, payload })}\n`);
  });
}

/** The password hashes and refresh state the store holds now. */
async function collectStoreSecrets(): Promise<void> {
  const contents = await storeContents(server, ['users', 'sessions']);
  for (const item of contents.users!.items as Array<{ value: { passwordHash: string | null } }>) {
    const hash = item.value.passwordHash;
    secret('password hash', hash);
    // Its salt and key, on their own too.
    for (const part of hash?.split('$') ?? []) if (part.length >= 16) secret('password hash part', part);
  }
  for (const item of contents.sessions!.items as Array<{ value: Record<string, unknown> }>) {
    secret('refresh hash', item.value.refreshHash);
    secret('previous refresh hash', item.value.previousHash);
    secret('sealed grace pair', item.value.graceSealed);
  }
}

describe('the log of a full run', () => {
  const ids: Record<string, string> = {};

  beforeAll(async () => {
    // The admin logs in (a browser page: cookies too) and opens a socket from its own address.
    const admin = await loginAs('root', adminPassword, ADMIN_AT, { origin: true });
    expect(admin.status).toBe(200);
    ids.admin = admin.body.uid;
    const adminSocket = await TestClient.connect(server, admin.body.accessToken, { headers: from(ADMIN_AT) });

    // Users made by the admin over the socket.
    let alicePassword = password();
    secret('password', alicePassword);
    const bobPassword = password();
    secret('password', bobPassword);
    ids.alice = (await expectOk(adminSocket.ask('UserStore', 'Create', { username: 'alice', password: alicePassword }))).uid;
    ids.bob = (await expectOk(adminSocket.ask('UserStore', 'Create', { username: 'bob', password: bobPassword }))).uid;
    await collectStoreSecrets();

    // Alice: a wrong password once, then the right one from a browser page.
    expect((await loginAs('alice', password(), ALICE_AT)).status).toBe(401);
    const alice = await loginAs('alice', alicePassword, ALICE_AT, { origin: true });
    expect(alice.status).toBe(200);
    const aliceDevice = alice.body.deviceId as string;

    // Refresh with the token in the body, then with the cookie.
    const refreshed = await post(server, '/auth/refresh', { refreshToken: alice.body.refreshToken }, { headers: from(ALICE_AT) });
    collect(refreshed);
    expect(refreshed.status).toBe(200);
    await collectStoreSecrets();
    const refreshCookie = alice.cookies.find((c) => c.startsWith('gr_refresh='))!.split(';', 1)[0]!;
    const byCookie = await post(server, '/auth/refresh', undefined, { headers: { ...from(ALICE_AT), Origin: server.url, Cookie: refreshCookie } });
    collect(byCookie);
    // The cookie held the token the body refresh just replaced: within the grace period, the same pair again.
    expect(byCookie.status).toBe(200);
    await collectStoreSecrets();

    // A ticket, and a socket opened with it; a socket by cookie; asks on both.
    const ticket = await post(server, '/auth/ticket', undefined, { headers: { ...from(ALICE_AT), ...bearer(refreshed.body.accessToken) } });
    collect(ticket);
    expect(ticket.status).toBe(200);
    const byTicket = await TestClient.connect(server, undefined, { query: `?ticket=${encodeURIComponent(ticket.body.ticket)}`, headers: from(ALICE_AT) });
    await expectOk(byTicket.ask('UserStore', 'GetOwn'));
    const accessCookie = byCookie.cookies.find((c) => c.startsWith('gr_access='))!.split(';', 1)[0]!;
    const byCookieSocket = await TestClient.connect(server, undefined, { headers: { ...from(ALICE_AT), Origin: server.url, Cookie: accessCookie } });
    await expectOk(byCookieSocket.ask('SessionStore', 'GetOwn'));

    // A guest, without a device id and then with the one it was given.
    const guest = await signInAsGuest(server, {}, { headers: from(GUEST_AT) });
    collect(guest);
    expect(guest.status).toBe(200);
    const guestAgain = await signInAsGuest(server, { deviceId: guest.body.deviceId }, { headers: from(GUEST_AT) });
    collect(guestAgain);
    expect(guestAgain.status).toBe(200);

    // A burst of wrong passwords for bob from one address, sent at once, up to the limit; then more, refused.
    const burst = await Promise.all(Array.from({ length: MAX_FAILURES }, () => loginAs('bob', password(), GUESSER_AT)));
    expect(burst.map((a) => a.status)).toEqual(Array(MAX_FAILURES).fill(401));
    for (const pw of [password(), bobPassword]) expect((await loginAs('bob', pw, GUESSER_AT)).status).toBe(429);

    // The admin changes alice's role, then her password (her session ends); the operator changes bob's role.
    await expectOk(adminSocket.ask('UserStore', 'Update', { uid: ids.alice, role: 'editor' }));
    await expectOk(askAsOperator('UserStore', 'Update', { uid: ids.bob, role: 'editor' }));
    alicePassword = password();
    secret('password', alicePassword);
    await expectOk(adminSocket.ask('UserStore', 'Update', { uid: ids.alice, password: alicePassword }));
    await expect(byTicket.closed).resolves.toEqual({ code: 4001, reason: 'revoked' });
    await collectStoreSecrets();

    await expect(byCookieSocket.closed).resolves.toEqual({ code: 4001, reason: 'revoked' });

    // Alice logs in again on her device; the admin blocks her through that device's row, then unblocks her.
    const again = await loginAs('alice', alicePassword, ALICE_AT, { deviceId: aliceDevice });
    expect(again.status).toBe(200);
    const aliceSocket = await TestClient.connect(server, again.body.accessToken, { headers: from(ALICE_AT) });
    const rows = await expectOk<{ items: Array<{ fingerprint: string; uid: string }> }>(adminSocket.ask('FingerprintStore', 'GetMostRecent', {}));
    const row = rows.items.find((r) => r.uid === ids.alice)!;
    ids.fingerprint = row.fingerprint;
    await expectOk(adminSocket.ask('FingerprintStore', 'Block', { fingerprint: row.fingerprint, uid: ids.alice }));
    await expect(aliceSocket.closed).resolves.toEqual({ code: 4003, reason: 'blocked' });
    await expectOk(adminSocket.ask('UserStore', 'Unblock', { uid: ids.alice }));

    // Two sessions of alice: one revoked by the admin, then all of hers.
    const first = await loginAs('alice', alicePassword, ALICE_AT, { deviceId: aliceDevice });
    const second = await loginAs('alice', alicePassword, ALICE_AT, { deviceId: aliceDevice });
    expect([first.status, second.status]).toEqual([200, 200]);
    ids.revokedSid = first.body.sid;
    await expectOk(adminSocket.ask('SessionStore', 'Revoke', { sid: first.body.sid }));
    await expectOk(adminSocket.ask('SessionStore', 'RevokeAllForUser', { uid: ids.alice }));

    // The guest logs out with its refresh token; the same logout again changes nothing.
    ids.guest = guest.body.uid;
    ids.guestSid = guest.body.sid;
    expect((await post(server, '/auth/logout', { refreshToken: guest.body.refreshToken }, { headers: from(GUEST_AT) })).status).toBe(204);
    expect((await post(server, '/auth/logout', { refreshToken: guest.body.refreshToken }, { headers: from(GUEST_AT) })).status).toBe(204);

    await collectStoreSecrets();
    await adminSocket.close();
  }, 60_000);

  it('holds no token, ticket, password, password hash, cookie, device id, refresh state or secret', () => {
    expect(lines.length).toBeGreaterThan(0);
    const kinds = new Set(secrets.values());
    for (const kind of ['access token', 'refresh token', 'device id', 'ticket', 'cookie', 'password', 'password hash', 'refresh hash', 'previous refresh hash', 'sealed grace pair', 'server secret']) {
      expect(kinds).toContain(kind);
    }
    const leaks: string[] = [];
    for (const line of lines) {
      for (const [value, kind] of secrets) if (line.includes(value)) leaks.push(`${kind} in: ${line.slice(0, 200)}`);
    }
    expect(leaks).toEqual([]);
  });

  it('is JSON, one object a line', () => {
    for (const line of lines) expect(typeof JSON.parse(line)).toBe('object');
  });

  it('has one line per security event, each naming who did it, the target and the client address', () => {
    const events = lines.map((l) => JSON.parse(l) as Record<string, any>).filter((l) => typeof l.event === 'string');
    const only = (event: string, uid?: string) => {
      const found = events.filter((e) => e.event === event && (uid === undefined || e.target?.uid === uid));
      expect(found).toHaveLength(1);
      return found[0]!;
    };

    expect(only('login.failure-burst')).toMatchObject({
      level: 40,
      by: 'anonymous',
      target: { uid: ids.bob },
      from: GUESSER_AT,
      limits: ['address', 'username-address', 'username'],
      maxFailures: MAX_FAILURES,
    });
    expect(events.filter((e) => e.event === 'user.role-changed')).toHaveLength(2);
    expect(only('user.role-changed', ids.alice)).toMatchObject({ by: ids.admin, target: { uid: ids.alice }, from: ADMIN_AT, role: { from: 'user', to: 'editor' } });
    // The admin socket has no client address.
    const byOperator = only('user.role-changed', ids.bob);
    expect(byOperator).toMatchObject({ by: 'operator', target: { uid: ids.bob }, role: { from: 'user', to: 'editor' } });
    expect(byOperator).not.toHaveProperty('from');
    expect(only('user.password-changed')).toMatchObject({ by: ids.admin, target: { uid: ids.alice }, from: ADMIN_AT, sessionsEnded: 1 });
    // Asked of FingerprintStore and forwarded to UserStore: still the admin's act.
    expect(only('user.blocked')).toMatchObject({ by: ids.admin, target: { uid: ids.alice }, from: ADMIN_AT, fingerprint: ids.fingerprint, sessionsEnded: 1 });
    expect(only('user.unblocked')).toMatchObject({ by: ids.admin, target: { uid: ids.alice }, from: ADMIN_AT });
    expect(only('session.revoked')).toMatchObject({ by: ids.admin, target: { uid: ids.alice, sid: ids.revokedSid }, from: ADMIN_AT, ended: 1 });
    expect(only('user.sessions-revoked')).toMatchObject({ by: ids.admin, target: { uid: ids.alice }, from: ADMIN_AT, ended: 1 });
    expect(only('session.logout')).toMatchObject({ by: ids.guest, target: { uid: ids.guest, sid: ids.guestSid }, from: GUEST_AT, via: 'refresh' });

    // Nothing else is called a security event, and each names its event as its message.
    expect(new Set(events.map((e) => e.event))).toEqual(
      new Set(['login.failure-burst', 'user.role-changed', 'user.password-changed', 'user.blocked', 'user.unblocked', 'session.revoked', 'user.sessions-revoked', 'session.logout']),
    );
    for (const e of events) expect(e.msg).toBe(e.event);
  });
});
