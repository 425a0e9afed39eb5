/**
 * The login limiter (docs/security.md): failures are counted per username and per client address in a
 * window. The attempt after the last allowed failure, and every attempt until the window passes, gets 429
 * RATE_LIMITED with Retry-After — the correct password included. Known and unknown usernames count alike and trip
 * on the same attempt with the same body. Every test here connects from 127.0.0.1, so each gets a fresh server
 * (loginMaxFailures: 3, loginWindowS: 8). Password hashing is real.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import { LoginLimiter } from '../src/auth/login-limiter.js';
import { internals } from '../src/server.js';
import { loginWithPassword, startTestServer, type HttpAnswer, type TestServer } from '../src/testing/index.js';
import { UserStore } from '../src/actors/user-store.js';

const MAX_FAILURES = 3;
// Long enough for a few real password checks (scrypt at N=2^17) on a busy machine to stay inside one window.
const WINDOW_S = 8;
const PASSWORD = 'the right password';

const servers: TestServer[] = [];

afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

/** A fresh server with the limiter configured and one known user, `alice`. */
async function fresh(): Promise<TestServer> {
  const server = await startTestServer({ config: { loginMaxFailures: MAX_FAILURES, loginWindowS: WINDOW_S } });
  servers.push(server);
  await server.ask(UserStore.Create, { username: 'alice', password: PASSWORD, role: 'user' });
  await server.ask(UserStore.Create, { username: 'bob', password: PASSWORD, role: 'user' });
  return server;
}

function expectRateLimited(a: HttpAnswer): void {
  expect(a.status).toBe(429);
  expect(a.body).toEqual({ error: { code: 'RATE_LIMITED', message: expect.any(String) } });
  expect(a.headers['retry-after']).toMatch(/^[1-9][0-9]*$/);
  expect(Number(a.headers['retry-after'])).toBeLessThanOrEqual(WINDOW_S);
  expect(a.cookies).toEqual([]);
}

function expectInvalid(a: HttpAnswer): void {
  expect(a.status).toBe(401);
  expect(a.body).toEqual({ error: { code: 'INVALID_CREDENTIALS', message: expect.any(String) } });
  expect(a.headers['retry-after']).toBeUndefined();
}

/** The whole answer minus what may legitimately differ between two moments (Retry-After counts down). */
const shape = (a: HttpAnswer) => ({
  status: a.status,
  contentType: a.headers['content-type'],
  text: a.text,
  setCookie: a.cookies,
  hasRetryAfter: a.headers['retry-after'] !== undefined,
});

describe('the login limiter (loginMaxFailures: 3, loginWindowS: 8)', () => {
  it('the attempt after the 3rd failure gets 429 RATE_LIMITED with Retry-After, even with the correct password, and so does every attempt after it', async () => {
    const server = await fresh();
    for (let i = 0; i < MAX_FAILURES; i += 1) expectInvalid(await loginWithPassword(server, { username: 'alice', password: `wrong ${i}` }));
    const correct = await loginWithPassword(server, { username: 'alice', password: PASSWORD });
    expectRateLimited(correct);
    expectRateLimited(await loginWithPassword(server, { username: 'alice', password: 'wrong again' }));
    expectRateLimited(await loginWithPassword(server, { username: 'alice', password: PASSWORD }));
    // No session was opened by a refused attempt.
    expect(await internals(server).store.count('sessions')).toBe(0);
  });

  it('below the limit (2 failures) the correct password still logs in', async () => {
    const server = await fresh();
    for (let i = 0; i < MAX_FAILURES - 1; i += 1) expectInvalid(await loginWithPassword(server, { username: 'alice', password: `wrong ${i}` }));
    const ok = await loginWithPassword(server, { username: 'alice', password: PASSWORD });
    expect(ok.status).toBe(200);
    expect(ok.body.uid).toEqual(expect.any(String));
  });

  it('a known and an unknown username trip on the same attempt with the same body', async () => {
    const runs: HttpAnswer[][] = [];
    for (const username of ['alice', 'nobody-here']) {
      const server = await fresh();
      const seq: HttpAnswer[] = [];
      for (let i = 0; i < MAX_FAILURES + 2; i += 1) seq.push(await loginWithPassword(server, { username, password: `wrong ${i}` }));
      runs.push(seq);
    }
    const [known, unknown] = runs as [HttpAnswer[], HttpAnswer[]];
    expect(known.map((a) => a.status)).toEqual([401, 401, 401, 429, 429]);
    expect(unknown.map((a) => a.status)).toEqual(known.map((a) => a.status));
    expect(unknown.map(shape)).toEqual(known.map(shape));
    for (const a of [...known, ...unknown].slice(0, MAX_FAILURES)) expectInvalid(a);
    expectRateLimited(known[MAX_FAILURES]!);
    expectRateLimited(unknown[MAX_FAILURES]!);
  });

  it('counts per address: failures for different usernames from the same address trip it for everyone, correct passwords included', async () => {
    const server = await fresh();
    expectInvalid(await loginWithPassword(server, { username: 'alice', password: 'wrong' }));
    expectInvalid(await loginWithPassword(server, { username: 'bob', password: 'wrong' }));
    expectInvalid(await loginWithPassword(server, { username: 'carol-unknown', password: 'wrong' }));
    // Neither alice nor bob has used up its own per-username failures; the address has.
    expectRateLimited(await loginWithPassword(server, { username: 'alice', password: PASSWORD }));
    expectRateLimited(await loginWithPassword(server, { username: 'bob', password: PASSWORD }));
    expectRateLimited(await loginWithPassword(server, { username: 'dave-unknown', password: 'anything' }));
  });

  it('after the window passes, login works again', async () => {
    const server = await fresh();
    for (let i = 0; i < MAX_FAILURES; i += 1) expectInvalid(await loginWithPassword(server, { username: 'alice', password: `wrong ${i}` }));
    const limited = await loginWithPassword(server, { username: 'alice', password: PASSWORD });
    expectRateLimited(limited);
    // Wait past the whole window (it started at the first failure, before the Retry-After was computed).
    await new Promise((r) => setTimeout(r, WINDOW_S * 1000 + 250));
    const ok = await loginWithPassword(server, { username: 'alice', password: PASSWORD });
    expect(ok.status).toBe(200);
    expect(ok.body.uid).toEqual(expect.any(String));
    // And the count starts over: a new window with all its failures.
    for (let i = 0; i < MAX_FAILURES; i += 1) expectInvalid(await loginWithPassword(server, { username: 'alice', password: `wrong ${i}` }));
    expectRateLimited(await loginWithPassword(server, { username: 'alice', password: PASSWORD }));
  });

  it('an unknown user and a wrong password get an identical answer (status, headers that matter, body byte for byte)', async () => {
    const server = await fresh();
    const unknown = await loginWithPassword(server, { username: 'nobody-here', password: 'wrong password' });
    const wrong = await loginWithPassword(server, { username: 'alice', password: 'wrong password' });
    expectInvalid(unknown);
    expect(shape(unknown)).toEqual(shape(wrong));
    expect(unknown.headers['retry-after']).toBe(wrong.headers['retry-after']);
  });
});

describe('a failure burst is named once per limit and window (the log line of a burst)', () => {
  const known = async () => false;

  it('names each limit on the failure that reaches it, never again in that window, and again in the next', async () => {
    let t = 1_000_000;
    const limiter = new LoginLimiter(MAX_FAILURES, WINDOW_S * 1000, () => t);
    try {
      // In flight at once: all counted before any fails; only the first failure names the limits.
      const attempts = await Promise.all(Array.from({ length: MAX_FAILURES }, () => limiter.begin('alice', '10.0.0.1', known)));
      expect(await Promise.all(attempts.map((a) => a.failed()))).toEqual([['address', 'username-address', 'username'], [], []]);
      await expect(limiter.begin('alice', '10.0.0.1', known)).rejects.toMatchObject({ code: 'RATE_LIMITED' });

      // The username's limit across addresses was reached already: another address reaching its own names only it.
      for (let i = 0; i < MAX_FAILURES - 1; i += 1) expect(await (await limiter.begin(`user${i}`, '10.0.0.2', known)).failed()).toEqual([]);
      expect(await (await limiter.begin('bob', '10.0.0.2', known)).failed()).toEqual(['address']);

      // Below the limit nothing is named, and a success takes its attempt back.
      const success = await limiter.begin('carol', '10.0.0.3', known);
      await success.succeeded();
      expect(await (await limiter.begin('carol', '10.0.0.3', known)).failed()).toEqual([]);

      // A new window: the same burst is named again.
      t += WINDOW_S * 1000;
      const again = [];
      for (let i = 0; i < MAX_FAILURES; i += 1) again.push(await (await limiter.begin('alice', '10.0.0.1', known)).failed());
      expect(again).toEqual([[], [], ['address', 'username-address', 'username']]);
    } finally {
      limiter.stop();
    }
  });
});
