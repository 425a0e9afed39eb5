/**
 * POST /auth/exchange: identity from the app's identity provider (docs/embedding.md), against a JWKS served by this test on
 * 127.0.0.1 (its fetches counted), and through an app-supplied verify function. And GREENROOM_PASSWORDS=false.
 *
 * - A good token gives a pair, as login does, that opens a socket; (issuer, subject) is one stable uid.
 * - Every refused token (wrong issuer or audience, expired, unknown kid, `alg: none`, HS256, another key's signature,
 *   a role that is not accepted) answers its error and writes nothing.
 * - Keys rotate by kid; made-up kids cannot make the server fetch the key set again within the cooldown, and refused
 *   exchanges from one address are limited before any verifying.
 * - Every session rule holds: block by uid (4003, then 403 BLOCKED), refresh, logout.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import type { UserView } from '../src/actors/records.js';
import { UserStore } from '../src/actors/user-store.js';
import type { ExternalIdentity } from '../src/auth/identity.js';
import { internals } from '../src/server.js';
import { expectError, loginWithPassword, post, startTestServer, TestClient, type HttpAnswer, type TestServer } from '../src/testing/index.js';
import { greenroom, storeContents } from './helpers.js';

const ISSUER = 'https://id.example.test/';
const OTHER_ISSUER = 'https://other-id.example.test/';
const AUDIENCE = 'greenroom-app';
/** What an exchange may write; compared before and after each refusal. */
const WRITTEN = ['users', 'sessions', 'fingerprints', 'identities'];

interface Jwks {
  url: string;
  fetches: number;
  keys: JWK[];
  /** While true, the key server answers 500 (the provider is down). */
  failing?: boolean;
  close(): Promise<void>;
}

/** A key set served on 127.0.0.1 that counts how often it is fetched; `keys` may be changed (rotation). */
async function serveJwks(keys: JWK[]): Promise<Jwks> {
  const state: Jwks = { url: '', fetches: 0, keys, close: async () => {} };
  const server = http.createServer((req, res) => {
    state.fetches++;
    if (state.failing) return void res.writeHead(500).end();
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ keys: state.keys }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  state.url = `http://127.0.0.1:${(server.address() as { port: number }).port}/.well-known/jwks.json`;
  state.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return state;
}

interface Key {
  kid: string;
  privateKey: CryptoKey;
  jwk: JWK;
}

async function makeKey(kid: string, alg: 'ES256' | 'RS256' | 'EdDSA' = 'ES256'): Promise<Key> {
  const { privateKey, publicKey } = await generateKeyPair(alg, alg === 'EdDSA' ? { crv: 'Ed25519' } : {});
  return { kid, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } };
}

interface TokenOptions {
  sub?: string;
  iss?: string;
  aud?: string;
  /** Seconds from now (negative: already expired). */
  expIn?: number | null;
  claims?: Record<string, unknown>;
  kid?: string;
  alg?: string;
  typ?: string;
  /** Seconds ago the token was issued (default 5). */
  iatAgo?: number;
}

async function sign(key: Key, o: TokenOptions = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  let jwt = new SignJWT({ ...o.claims })
    .setProtectedHeader({ alg: o.alg ?? (key.jwk.alg as string), kid: o.kid ?? key.kid, typ: o.typ ?? 'JWT' })
    .setIssuer(o.iss ?? ISSUER)
    .setAudience(o.aud ?? AUDIENCE)
    .setSubject(o.sub ?? `sub-${randomUUID()}`)
    .setIssuedAt(now - (o.iatAgo ?? 5));
  if (o.expIn !== null) jwt = jwt.setExpirationTime(now + (o.expIn ?? 300));
  return jwt.sign(key.privateKey);
}

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');

const exchange = (server: TestServer, token: string, headers: Record<string, string> = {}) => post(server, '/auth/exchange', { token }, { headers });

function expectPair(a: HttpAnswer): void {
  expect(a.status).toBe(200);
  expect(a.body).toEqual({
    uid: expect.any(String),
    role: expect.any(String),
    sid: expect.any(String),
    accessToken: expect.any(String),
    refreshToken: expect.any(String),
    accessExpiresAt: expect.any(Number),
    refreshExpiresAt: expect.any(Number),
    deviceId: expect.stringMatching(/^dv_/),
  });
}

let jwks: Jwks;
let k1: Key;
let k2: Key;
let stranger: Key;
let server: TestServer;

beforeAll(async () => {
  [k1, k2, stranger] = await Promise.all([makeKey('k1'), makeKey('k2', 'RS256'), makeKey('k1')]);
  jwks = await serveJwks([k1.jwk]);
  server = await startTestServer({
    config: {
      jwksUrl: jwks.url,
      jwtIssuer: [ISSUER, OTHER_ISSUER],
      jwtAudience: AUDIENCE,
      jwtRoleClaim: 'app.role',
      jwtRoles: ['user', 'editor'],
      // Every unknown kid may refetch here (rotation); the cooldown has its own server below.
      jwksCooldownS: 0,
      exchangeMaxFailures: 10_000,
      allowedOrigins: ['https://app.example.test'],
    },
  });
});

afterAll(async () => {
  await server?.close();
  await jwks?.close();
});

describe('POST /auth/exchange with a JWKS', () => {
  it('answers a pair as login does, which opens a socket that asks; cookies only for an allowed browser origin', async () => {
    const sub = `alice-${randomUUID()}`;
    const a = await exchange(server, await sign(k1, { sub, claims: { name: 'Alice Example', preferred_username: 'alice' } }));
    expectPair(a);
    expect(a.body.role).toBe('user');
    expect(a.cookies).toEqual([]);
    const client = await TestClient.connect(server, a.body.accessToken);
    const own = await client.ask(UserStore.name, 'GetOwn');
    expect(own).toMatchObject({ ok: true, result: { uid: a.body.uid, displayName: 'Alice Example', role: 'user', blocked: false } });
    expect((own as { result: UserView }).result.username).toMatch(/^alice/);
    await client.close();

    const browser = await exchange(server, await sign(k1, { sub }), { Origin: 'https://app.example.test' });
    expectPair(browser);
    expect(browser.cookies.map((c) => c.split('=')[0]).sort()).toEqual(['gr_access', 'gr_refresh']);
  });

  it('maps the same (issuer, subject) to the same uid, and the same subject from another issuer to another uid', async () => {
    const sub = `same-${randomUUID()}`;
    const first = await exchange(server, await sign(k1, { sub }));
    const again = await exchange(server, await sign(k1, { sub }));
    const elsewhere = await exchange(server, await sign(k1, { sub, iss: OTHER_ISSUER }));
    expectPair(first);
    expectPair(again);
    expectPair(elsewhere);
    expect(again.body.uid).toBe(first.body.uid);
    expect(again.body.sid).not.toBe(first.body.sid);
    expect(elsewhere.body.uid).not.toBe(first.body.uid);
  });

  it('never takes over an existing user by its username: a clashing hint gets a unique username of its own', async () => {
    const existing = await server.ask(UserStore.Provision, { username: 'carol', role: 'admin' });
    const a = await exchange(server, await sign(k1, { claims: { preferred_username: 'carol', name: '\u202Eevil' } }));
    expectPair(a);
    expect(a.body.uid).not.toBe(existing.uid);
    expect(a.body.role).toBe('user');
    const made = await server.ask(UserStore.Get, { uid: a.body.uid });
    expect(made.username).toMatch(/^carol-/);
    // An unreadable name is not kept: the username is shown instead.
    expect(made.displayName).toBe(made.username);
  });

  it('refuses each bad token with 401 INVALID_TOKEN and writes nothing', async () => {
    const hs = new TextEncoder().encode('a-shared-secret-a-shared-secret-!!');
    const now = Math.floor(Date.now() / 1000);
    const claims = { iss: ISSUER, aud: AUDIENCE, sub: 'mallory', iat: now, exp: now + 300 };
    const bad: Record<string, string> = {
      'wrong issuer': await sign(k1, { sub: 'mallory', iss: 'https://evil.example.test/' }),
      'wrong audience': await sign(k1, { sub: 'mallory', aud: 'someone-else' }),
      expired: await sign(k1, { sub: 'mallory', expIn: -120 }),
      'no exp': await sign(k1, { sub: 'mallory', expIn: null }),
      'unknown kid': await sign(stranger, { sub: 'mallory', kid: 'nobody-has-this-kid' }),
      'alg none': `${b64({ alg: 'none', kid: 'k1', typ: 'JWT' })}.${b64(claims)}.`,
      HS256: await new SignJWT(claims).setProtectedHeader({ alg: 'HS256', kid: 'k1' }).sign(hs),
      'another key, same kid': await sign(stranger, { sub: 'mallory' }),
      'a signature of another token': (await sign(k1, { sub: 'someone' })).replace(/^[^.]+\.[^.]+/, `${b64({ alg: 'ES256', kid: 'k1' })}.${b64(claims)}`),
      junk: 'not.a.token',
    };
    const before = await storeContents(server, WRITTEN);
    for (const [name, token] of Object.entries(bad)) {
      const a = await exchange(server, token);
      expect({ name, status: a.status, code: a.body?.error?.code, cookies: a.cookies }).toEqual({ name, status: 401, code: 'INVALID_TOKEN', cookies: [] });
    }
    expect(await storeContents(server, WRITTEN)).toEqual(before);
  });

  it('picks up a rotated key: a new kid served by the key set verifies after one more fetch', async () => {
    const k3 = await makeKey('k3', 'EdDSA');
    const early = await exchange(server, await sign(k3));
    await expectError(early, 'INVALID_TOKEN', { status: 401 });
    jwks.keys = [k1.jwk, k2.jwk, k3.jwk];
    const fetched = jwks.fetches;
    const rotated = await exchange(server, await sign(k3));
    expectPair(rotated);
    expect(jwks.fetches).toBe(fetched + 1);
    // The RS256 key of the same set works too, from the cache.
    expectPair(await exchange(server, await sign(k2)));
    expect(jwks.fetches).toBe(fetched + 1);
  });

  it('maps the role claim: absent is user, an accepted value is that role (and follows the provider), any other is 403 FORBIDDEN writing nothing', async () => {
    const sub = `role-${randomUUID()}`;
    const editor = await exchange(server, await sign(k1, { sub, claims: { app: { role: 'editor' } } }));
    expectPair(editor);
    expect(editor.body.role).toBe('editor');
    // The next exchange with another accepted role changes it, live sockets included.
    const client = await TestClient.connect(server, editor.body.accessToken);
    const user = await exchange(server, await sign(k1, { sub, claims: {} }));
    expect(user.body).toMatchObject({ uid: editor.body.uid, role: 'user' });
    expect(await client.ask(UserStore.name, 'GetOwn')).toMatchObject({ ok: true, result: { role: 'user' } });
    await client.close();

    const before = await storeContents(server, WRITTEN);
    for (const role of ['admin', 'guest', 'Editor', ['editor'], 7]) {
      const a = await exchange(server, await sign(k1, { claims: { app: { role } } }));
      expect({ role, status: a.status, code: a.body?.error?.code }).toEqual({ role, status: 403, code: 'FORBIDDEN' });
    }
    // An admin claim for a known user changes nothing either.
    await expectError(exchange(server, await sign(k1, { sub, claims: { app: { role: 'admin' } } })), 'FORBIDDEN', { status: 403 });
    expect(await storeContents(server, WRITTEN)).toEqual(before);
  });

  it('never lets an exchanged user be made a guest (cleanup deletes idle guests, which would break its stable uid)', async () => {
    const a = await exchange(server, await sign(k1, {}));
    await expect(server.ask(UserStore.Update, { uid: a.body.uid, role: 'guest' })).rejects.toMatchObject({ code: 'CONFLICT' });
    expect((await server.ask(UserStore.Get, { uid: a.body.uid })).role).toBe('user');
  });

  it('takes only tokens of the configured typ and age (so an ID token with the same audience is not exchangeable)', async () => {
    const other = await startTestServer({
      config: { jwksUrl: jwks.url, jwtIssuer: [ISSUER], jwtAudience: AUDIENCE, jwtTyp: 'at+jwt', jwtMaxAgeS: 60, jwksCooldownS: 0 },
    });
    try {
      const before = await storeContents(other, WRITTEN);
      await expectError(exchange(other, await sign(k1, { typ: 'JWT' })), 'INVALID_TOKEN', { status: 401 });
      await expectError(exchange(other, await sign(k1, { typ: 'at+jwt', iatAgo: 600, expIn: 300 })), 'INVALID_TOKEN', { status: 401 });
      expect(await storeContents(other, WRITTEN)).toEqual(before);
      expectPair(await exchange(other, await sign(k1, { typ: 'at+jwt' })));
    } finally {
      await other.close();
    }
  });

  it('while the key set cannot be fetched answers 503 and fetches at most once per back-off, whatever the callers send', async () => {
    const down = await serveJwks([k1.jwk]);
    down.failing = true;
    const other = await startTestServer({ config: { jwksUrl: down.url, jwtIssuer: [ISSUER], jwtAudience: AUDIENCE, jwksCooldownS: 0, exchangeMaxFailures: 3 } });
    try {
      for (let i = 0; i < 20; i++) {
        const a = await exchange(other, await sign(k1, { kid: `k-${i}` }));
        expect({ i, status: a.status, code: a.body?.error?.code }).toEqual({ i, status: 503, code: 'UNAVAILABLE' });
      }
      expect(down.fetches).toBe(1);
      // Not held against the callers: once the provider is back (and the back-off over), they exchange.
      down.failing = false;
      await new Promise((r) => setTimeout(r, 5_100));
      expectPair(await exchange(other, await sign(k1)));
    } finally {
      await other.close();
      await down.close();
    }
  });

  it('reads a namespaced role claim whose name holds dots (https://example.test/role) as one claim', async () => {
    const other = await startTestServer({
      config: { jwksUrl: jwks.url, jwtIssuer: [ISSUER], jwtAudience: AUDIENCE, jwtRoleClaim: 'https://example.test/role', jwtRoles: ['user', 'editor'], jwksCooldownS: 0 },
    });
    try {
      const a = await exchange(other, await sign(k1, { claims: { 'https://example.test/role': 'editor' } }));
      expectPair(a);
      expect(a.body.role).toBe('editor');
    } finally {
      await other.close();
    }
  });

  it('never gives an exchanged user the bare name its token suggests: the username carries a mark of its identity', async () => {
    const a = await exchange(server, await sign(k1, { claims: { preferred_username: 'dana' } }));
    const b = await exchange(server, await sign(k1, { claims: { email: 'dana@elsewhere.test' } }));
    const names = await Promise.all([a, b].map(async (x) => (await server.ask(UserStore.Get, { uid: x.body.uid })).username));
    expect(names.every((n) => /^dana-[A-Za-z0-9_-]{8,}$/.test(n))).toBe(true);
    expect(names[0]).not.toBe(names[1]);
  });

  it('blocking the uid closes its sockets 4003 and refuses the next exchange with 403 BLOCKED, writing nothing', async () => {
    const sub = `blocked-${randomUUID()}`;
    const a = await exchange(server, await sign(k1, { sub }));
    expectPair(a);
    const client = await TestClient.connect(server, a.body.accessToken);
    await server.ask(UserStore.Block, { uid: a.body.uid });
    expect(await client.closed).toEqual({ code: 4003, reason: 'blocked' });
    const before = await storeContents(server, WRITTEN);
    await expectError(exchange(server, await sign(k1, { sub })), 'BLOCKED', { status: 403 });
    expect(await storeContents(server, WRITTEN)).toEqual(before);
    await expectError(post(server, '/auth/refresh', { refreshToken: a.body.refreshToken }), 'SESSION_REVOKED', { status: 401 });
    // Unblocked, the same identity signs in again as the same uid.
    await server.ask(UserStore.Unblock, { uid: a.body.uid });
    const back = await exchange(server, await sign(k1, { sub }));
    expect(back.body.uid).toBe(a.body.uid);
  });

  it('refresh rotates and logout revokes an exchanged session; its socket closes 4001 logout', async () => {
    const a = await exchange(server, await sign(k1));
    expectPair(a);
    const refreshed = await post(server, '/auth/refresh', { refreshToken: a.body.refreshToken });
    expectPair({ ...refreshed, body: { ...refreshed.body, deviceId: 'dv_' } });
    expect(refreshed.body.sid).toBe(a.body.sid);
    expect(refreshed.body.refreshToken).not.toBe(a.body.refreshToken);
    const client = await TestClient.connect(server, refreshed.body.accessToken);
    const out = await post(server, '/auth/logout', undefined, { headers: { Authorization: `Bearer ${refreshed.body.accessToken}` } });
    expect(out.status).toBe(204);
    expect(await client.closed).toEqual({ code: 4001, reason: 'logout' });
    await expectError(post(server, '/auth/refresh', { refreshToken: refreshed.body.refreshToken }), 'SESSION_REVOKED', { status: 401 });
  });

  it('refuses a body without a token, and a token too long to be real, before verifying', async () => {
    const fetched = jwks.fetches;
    expect((await post(server, '/auth/exchange', {})).status).toBe(400);
    expect((await exchange(server, 'x'.repeat(9000))).status).toBe(400);
    expect(jwks.fetches).toBe(fetched);
  });
});

describe('the key set cooldown and the per-address limit', () => {
  let cool: TestServer;
  let set: Jwks;
  beforeAll(async () => {
    set = await serveJwks([k1.jwk]);
    cool = await startTestServer({ config: { jwksUrl: set.url, jwtIssuer: [ISSUER], jwtAudience: AUDIENCE, exchangeMaxFailures: 5 } });
  });
  afterAll(async () => {
    await cool?.close();
    await set?.close();
  });

  it('made-up kids refetch nothing within the cooldown; past the failure limit even a good token gets 429 before any verifying', async () => {
    expectPair(await exchange(cool, await sign(k1)));
    expect(set.fetches).toBe(1);
    for (let i = 0; i < 5; i++) {
      await expectError(exchange(cool, await sign(stranger, { kid: `random-${randomUUID()}` })), 'INVALID_TOKEN', { status: 401 });
    }
    expect(set.fetches).toBe(1);
    const limited = await exchange(cool, await sign(k1));
    await expectError(limited, 'RATE_LIMITED', { status: 429 });
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
  });
});

describe('POST /auth/exchange with an app-supplied verify function', () => {
  let hooked: TestServer;
  const seen: string[] = [];
  beforeAll(async () => {
    hooked = await startTestServer({
      config: { exchangeMaxFailures: 10_000 },
      identity: {
        verify: async (token: string): Promise<ExternalIdentity> => {
          seen.push(token);
          const m = /^app:([a-z-]+):([a-z0-9-]+)(?::([a-z]+))?$/.exec(token);
          if (!m) throw new Error('not ours');
          return { issuer: `https://${m[1]}.example.test`, subject: m[2]!, displayName: `Person ${m[2]}`, ...(m[3] ? { role: m[3] } : {}) };
        },
      },
    });
  });
  afterAll(async () => {
    await hooked?.close();
  });

  it('uses the function: a stable uid per (issuer, subject), its role as given, refusals as 401 writing nothing', async () => {
    const a = await exchange(hooked, 'app:alpha:u-1');
    expectPair(a);
    expect(a.body.role).toBe('user');
    expect((await exchange(hooked, 'app:alpha:u-1')).body.uid).toBe(a.body.uid);
    const other = await exchange(hooked, 'app:beta:u-1');
    expect(other.body.uid).not.toBe(a.body.uid);
    const admin = await exchange(hooked, 'app:alpha:u-2:admin');
    expect(admin.body.role).toBe('admin');
    const client = await TestClient.connect(hooked, admin.body.accessToken);
    expect(await client.ask(UserStore.name, 'GetOwn')).toMatchObject({ ok: true, result: { displayName: 'Person u-2', role: 'admin' } });
    await client.close();

    const before = await storeContents(hooked, WRITTEN);
    await expectError(exchange(hooked, 'something else'), 'INVALID_TOKEN', { status: 401 });
    await expectError(exchange(hooked, 'app:alpha:u-3:guest'), 'FORBIDDEN', { status: 403 });
    expect(await storeContents(hooked, WRITTEN)).toEqual(before);
    expect(seen).toContain('something else');
  });
});

describe('an app verify function that hangs or answers nonsense', () => {
  it('is given the ask timeout (then 503), and neither fault is held against the caller', async () => {
    const app = await startTestServer({
      config: { askTimeoutMs: 300, exchangeMaxFailures: 1 },
      identity: {
        verify: async (token: string) => {
          if (token === 'hang') return new Promise<never>(() => undefined);
          if (token === 'nobody') return { issuer: '', subject: '' };
          return { issuer: 'https://app.test', subject: token };
        },
      },
    });
    try {
      await expectError(exchange(app, 'hang'), 'UNAVAILABLE', { status: 503 });
      expect((await exchange(app, 'nobody')).status).toBe(500);
      // With one failure allowed per window, a counted fault would have made this a 429.
      expectPair(await exchange(app, 'someone'));
    } finally {
      await app.close();
    }
  });
});

describe('exchange settings checked at start', () => {
  it('refuses a JWKS without issuer or audience, a plain-http JWKS off loopback, an accepted guest role, and GREENROOM_ADMIN without passwords', async () => {
    const bad = [
      { jwksUrl: 'http://127.0.0.1:9/jwks.json', jwtAudience: AUDIENCE },
      { jwksUrl: 'http://127.0.0.1:9/jwks.json', jwtIssuer: [ISSUER] },
      { jwksUrl: 'http://id.example.test/jwks.json', jwtIssuer: [ISSUER], jwtAudience: AUDIENCE },
      { jwtRoles: ['user', 'guest'] },
      { passwords: false, admin: { username: 'root', password: 'root-password-1' } },
    ];
    for (const config of bad) {
      await expect(startTestServer({ config })).rejects.toMatchObject({ name: 'ConfigError' });
    }
  });
});

describe('GREENROOM_PASSWORDS=false', () => {
  let closed: TestServer;
  beforeAll(async () => {
    closed = await startTestServer({ config: { passwords: false } });
  });
  afterAll(async () => {
    await closed?.close();
  });

  it('refuses /auth/login with 403 FORBIDDEN, and a password in UserStore.Create and Update', async () => {
    const login = await loginWithPassword(closed, { username: 'anyone', password: 'whatever-password' });
    await expectError(login, 'FORBIDDEN', { status: 403 });
    expect(login.body.error.message).toMatch(/exchange/);
    // Exchange is not configured here: it says so.
    await expectError(exchange(closed, 'anything'), 'FORBIDDEN', { status: 403 });
    await expect(closed.ask(UserStore.Create, { username: 'dora', password: 'dora-password-1', role: 'user' })).rejects.toMatchObject({ code: 'FORBIDDEN' });
    const u = await closed.ask(UserStore.Provision, { username: 'erin', role: 'user' });
    await expect(closed.ask(UserStore.Update, { uid: u.uid, password: 'erin-password-1' })).rejects.toMatchObject({ code: 'FORBIDDEN' });
    expect(await closed.ask(UserStore.Update, { uid: u.uid, displayName: 'Erin' })).toMatchObject({ displayName: 'Erin' });
    expect(await internals(closed).store.count('users')).toBe(1);
  });

  it('`greenroom user add` refuses with a clear error; the other user commands work', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'greenroom-nopw-'));
    try {
      const env = { GREENROOM_DATA: dataDir, GREENROOM_PASSWORDS: 'false' };
      const add = await greenroom(['user', 'add', 'bob'], { ...env, GREENROOM_USER_PASSWORD: 'bob-password-123' });
      expect(add.code).toBe(1);
      expect(add.stderr).toMatch(/GREENROOM_PASSWORDS=false/);
      const list = await greenroom(['user', 'list', '--json'], env);
      expect(list.code).toBe(0);
      expect(JSON.parse(list.stdout.trim())).toEqual([]);
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  it('a running server with passwords off refuses `user add` through its admin socket; block still works there', async () => {
    const env = { GREENROOM_DATA: closed.dataDir };
    const add = await greenroom(['user', 'add', 'bob'], { ...env, GREENROOM_USER_PASSWORD: 'bob-password-123' });
    expect(add.code).toBe(1);
    expect(add.stderr).toMatch(/FORBIDDEN/);
    const block = await greenroom(['user', 'block', 'erin'], env);
    expect(block.code).toBe(0);
    expect(JSON.parse(block.stdout.trim().split('\n').pop()!)).toMatchObject({ username: 'erin', blocked: true });
  });
});
