/**
 * Access-token verification (auth/tokens.ts): the synchronous HS256 check, and the cache of tokens already verified.
 * A cached token skips the signature check only: it is never accepted at or past its `exp`, the cache holds a
 * bounded number of tokens, and an upgrade with a cached token still goes through SessionStore's checks (a revoked
 * session or a blocked user is refused, never given a 101).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import { deriveKeys } from '../src/auth/secret.js';
import { AUDIENCE, ISSUER, TokenService } from '../src/auth/tokens.js';
import { GreenroomError } from '../src/errors.js';
import { SessionStore } from '../src/actors/session-store.js';
import { UserStore } from '../src/actors/user-store.js';
import { internals } from '../src/server.js';
import { eventually, issueSession, rawUpgrade, startTestServer, type TestServer } from '../src/testing/index.js';

const keys = deriveKeys(randomBytes(32).toString('hex'));
const claims = { uid: randomUUID(), sid: randomUUID(), role: 'user' };

/** The error code a call throws (a GreenroomError), or 'none'. */
async function codeOf(fn: () => unknown): Promise<string> {
  try {
    await fn();
    return 'none';
  } catch (err) {
    return err instanceof GreenroomError ? err.code : `not a GreenroomError: ${String(err)}`;
  }
}

/** A compact JWS with any header and claims, signed HS256 with `key` (the server's unless given). */
function signed(header: Record<string, unknown>, payload: Record<string, unknown>, key: Uint8Array = keys.jwt): string {
  const part = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const input = `${part(header)}.${part(payload)}`;
  return `${input}.${createHmac('sha256', key).update(input).digest('base64url')}`;
}

function goodClaims(nowS = Math.floor(Date.now() / 1000)): Record<string, unknown> {
  return { sub: claims.uid, sid: claims.sid, role: claims.role, jti: randomUUID(), iss: ISSUER, aud: AUDIENCE, iat: nowS, exp: nowS + 600 };
}

describe('TokenService.verifyAccess', () => {
  it('accepts what signAccess issues, and jose-signed tokens of the same shape', async () => {
    const tokens = new TokenService(keys, 600);
    const { token } = await tokens.signAccess(claims);
    expect(await tokens.verifyAccess(token)).toMatchObject(claims);
    const viaJose = await new SignJWT({ sid: claims.sid, role: claims.role })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject(claims.uid)
      .setJti(randomUUID())
      .setIssuer(ISSUER)
      .setAudience([AUDIENCE, 'other'])
      .setExpirationTime('5m')
      .sign(keys.jwt);
    expect(await tokens.verifyAccess(viaJose)).toMatchObject(claims);
  });

  it.each([
    ['another algorithm in the header', () => signed({ alg: 'HS512', typ: 'JWT' }, goodClaims())],
    ['alg none', () => signed({ alg: 'none' }, goodClaims())],
    ['a crit header', () => signed({ alg: 'HS256', crit: ['b64'], b64: false }, goodClaims())],
    ['a key hint in the header', () => signed({ alg: 'HS256', kid: 'k1' }, goodClaims())],
    ['another typ', () => signed({ alg: 'HS256', typ: 'at+jwt' }, goodClaims())],
    ['a header that is not an object', () => signed(['HS256'] as never, goodClaims())],
    ['another issuer', () => signed({ alg: 'HS256' }, { ...goodClaims(), iss: 'someone' })],
    ['another audience', () => signed({ alg: 'HS256' }, { ...goodClaims(), aud: ['a', 'b'] })],
    ['no exp', () => signed({ alg: 'HS256' }, { ...goodClaims(), exp: undefined })],
    ['a string exp', () => signed({ alg: 'HS256' }, { ...goodClaims(), exp: String(Math.floor(Date.now() / 1000) + 600) })],
    ['a future nbf', () => signed({ alg: 'HS256' }, { ...goodClaims(), nbf: Math.floor(Date.now() / 1000) + 60 })],
    ['a string iat', () => signed({ alg: 'HS256' }, { ...goodClaims(), iat: 'now' })],
    ['no sid', () => signed({ alg: 'HS256' }, { ...goodClaims(), sid: undefined })],
    ['another key', () => signed({ alg: 'HS256' }, goodClaims(), new Uint8Array(randomBytes(32)))],
    ['a fourth part', () => `${signed({ alg: 'HS256' }, goodClaims())}.x`],
    ['an empty signature', () => signed({ alg: 'HS256' }, goodClaims()).replace(/[^.]+$/, '')],
    ['a signature with a character outside base64url', () => signed({ alg: 'HS256' }, goodClaims()).replace(/.$/, '=')],
    ['a signature of other bytes', () => signed({ alg: 'HS256' }, goodClaims()).replace(/[^.]+$/, Buffer.alloc(32).toString('base64url'))],
  ])('refuses %s (INVALID_TOKEN)', async (_name, make) => {
    expect(await codeOf(() => new TokenService(keys, 600).verifyAccess(make()))).toBe('INVALID_TOKEN');
  });

  it('answers TOKEN_EXPIRED once now reaches exp (in whole seconds, as jose)', async () => {
    const tokens = new TokenService(keys, 600, 0);
    const exp = Math.floor(Date.now() / 1000) + 5;
    const token = signed({ alg: 'HS256', typ: 'JWT' }, { ...goodClaims(), exp });
    expect(await codeOf(() => tokens.verifyAccess(token, exp * 1000 - 1))).toBe('none');
    expect(await codeOf(() => tokens.verifyAccess(token, exp * 1000))).toBe('TOKEN_EXPIRED');
  });
});

describe('the cache of verified access tokens', () => {
  it('remembers a verified token, and never an invalid one', async () => {
    const tokens = new TokenService(keys, 600, 8);
    const { token } = await tokens.signAccess(claims);
    await tokens.verifyAccess(token);
    await tokens.verifyAccess(token);
    expect(tokens.verifiedTokens).toBe(1);
    const forged = signed({ alg: 'HS256' }, goodClaims(), new Uint8Array(randomBytes(32)));
    expect(await codeOf(() => tokens.verifyAccess(forged))).toBe('INVALID_TOKEN');
    expect(await codeOf(() => tokens.verifyAccess(forged))).toBe('INVALID_TOKEN');
    expect(tokens.verifiedTokens).toBe(1);
  });

  it('holds at most its capacity, the oldest going first; a token pushed out still verifies in full', async () => {
    const tokens = new TokenService(keys, 600, 3);
    const issued = await Promise.all(Array.from({ length: 5 }, () => tokens.signAccess(claims)));
    for (const { token } of issued) await tokens.verifyAccess(token);
    expect(tokens.verifiedTokens).toBe(3);
    expect(await tokens.verifyAccess(issued[0]!.token)).toMatchObject(claims);
    expect(tokens.verifiedTokens).toBe(3);
  });

  it('never answers for a token at or past its exp, though it was verified while valid', async () => {
    const tokens = new TokenService(keys, 600, 8);
    const exp = Math.floor(Date.now() / 1000) + 5;
    const token = signed({ alg: 'HS256', typ: 'JWT' }, { ...goodClaims(), exp });
    expect(await codeOf(() => tokens.verifyAccess(token, exp * 1000 - 1000))).toBe('none');
    expect(tokens.verifiedTokens).toBe(1);
    expect(await codeOf(() => tokens.verifyAccess(token, exp * 1000))).toBe('TOKEN_EXPIRED');
    // The expired entry is dropped, not kept for later.
    expect(tokens.verifiedTokens).toBe(0);
  });

  it('keys on the whole token: the same claims under another signature are not a hit', async () => {
    const tokens = new TokenService(keys, 600, 8);
    const { token } = await tokens.signAccess(claims);
    await tokens.verifyAccess(token);
    const [header, body] = token.split('.');
    const other = `${header}.${body}.${Buffer.alloc(32, 7).toString('base64url')}`;
    expect(await codeOf(() => tokens.verifyAccess(other))).toBe('INVALID_TOKEN');
  });
});

describe('an upgrade with a token the server has verified before', () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer();
  });

  afterAll(async () => {
    await server?.close();
  });

  /** Upgrades once with `token` (101), then closes that socket and waits until the server has unregistered it. */
  async function connectedOnce(token: string): Promise<void> {
    const first = await rawUpgrade(server, token);
    expect(first.status).toBe(101);
    const closed = new Promise((r) => first.socket!.once('close', r));
    first.socket!.destroy();
    await closed;
    await eventually(async () => (await server.ask(SessionStore.Stats)).connections === 0, { intervalMs: 0 });
  }

  it('is refused (401 SESSION_REVOKED, no 101) once its session is revoked', async () => {
    const s = await issueSession(server);
    await connectedOnce(s.accessToken);
    const cached = internals(server).tokens.verifiedTokens;
    expect(cached).toBeGreaterThan(0);

    await server.ask(SessionStore.Revoke, { sid: s.sid });
    const again = await rawUpgrade(server, s.accessToken);

    expect(again.status).toBe(401);
    expect(again.body).toEqual({ error: { code: 'SESSION_REVOKED', message: expect.any(String) } });
    expect(again.socketClosed).toBe(true);
    expect((await server.ask(SessionStore.Stats)).connections).toBe(0);
  });

  it('is refused once its user is blocked', async () => {
    const s = await issueSession(server);
    await connectedOnce(s.accessToken);

    await server.ask(UserStore.Block, { uid: s.uid });
    const again = await rawUpgrade(server, s.accessToken);

    expect(again.status).toBe(401);
    expect(again.body).toEqual({ error: { code: 'SESSION_REVOKED', message: expect.any(String) } });
    expect((await server.ask(SessionStore.Stats)).connections).toBe(0);
  });

  it('is upgraded again while its session is live', async () => {
    const s = await issueSession(server);
    await connectedOnce(s.accessToken);
    await connectedOnce(s.accessToken);
  });
});
