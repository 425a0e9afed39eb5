/**
 * Behind proxies and other origins (docs/embedding.md "Behind proxies"; docs/protocol.md "Cookies"; docs/security.md):
 * - GREENROOM_TRUST_PROXY (a hop count, addresses/CIDRs, presets): the client address is the nearest untrusted hop
 *   counted from the right, never a value the client wrote; X-Forwarded-Proto/-Host count only from a trusted hop
 *   (then cookies get Secure and the own origin is https://<forwarded host>), and change nothing from anyone else.
 * - CORS for the allowed origins only (the own origin and GREENROOM_ALLOWED_ORIGINS); any other origin gets no grant.
 * - The headers timeout closes a connection that never sent a byte without writing into it; a started request gets
 *   408 (or nothing), never 400.
 * Every test connects from 127.0.0.1; X-Forwarded-* carry documentation addresses (RFC 5737, 3849) and hosts.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { connect } from 'node:net';
import { limiterKey, parseTrustProxy, ProxyTrust, type TrustProxy } from '../src/auth/client-address.js';
import { loadConfig, type Config } from '../src/config.js';
import { ConfigError } from '../src/errors.js';
import { httpRequest, issueSession, loginWithPassword, post, startTestServer, TestClient, type TestServer } from '../src/testing/index.js';
import { UserStore } from '../src/actors/user-store.js';

const PASSWORD = 'correct horse battery';
const PROXY_HOST = 'app.example.test';
const HTTPS_ORIGIN = `https://${PROXY_HOST}`;
const THROUGH_TLS_PROXY = { 'X-Forwarded-Proto': 'https', 'X-Forwarded-Host': PROXY_HOST, 'X-Forwarded-For': '203.0.113.10' };

const servers: TestServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});
async function fresh(config: Partial<Config> = {}): Promise<TestServer> {
  const server = await startTestServer({ config });
  servers.push(server);
  return server;
}

/** A request as node:http hands it over: the socket's peer, and headers as the client (or its proxies) wrote them. */
function fakeRequest(peer: string, headers: Record<string, string> = {}, encrypted = false): IncomingMessage {
  const socket = { remoteAddress: peer, encrypted };
  return { socket, connection: socket, headers: { host: '127.0.0.1:8080', ...headers } } as unknown as IncomingMessage;
}

const addressOf = (trust: TrustProxy, peer: string, xff?: string) =>
  new ProxyTrust(trust).clientAddress(fakeRequest(peer, xff === undefined ? {} : { 'x-forwarded-for': xff }));

describe('GREENROOM_TRUST_PROXY', () => {
  it('reads false (the default), true (one hop), a hop count, and addresses, CIDRs and presets', () => {
    expect(loadConfig({}).trustProxy).toBe(false);
    expect(parseTrustProxy('false')).toBe(false);
    expect(parseTrustProxy('0')).toBe(false);
    expect(parseTrustProxy('true')).toBe(true);
    expect(parseTrustProxy('2')).toBe(2);
    expect(parseTrustProxy('loopback, 10.0.0.0/8,192.0.2.7')).toEqual(['loopback', '10.0.0.0/8', '192.0.2.7']);
    expect(loadConfig({ GREENROOM_TRUST_PROXY: 'uniquelocal,fd00::/8' }).trustProxy).toEqual(['uniquelocal', 'fd00::/8']);
    expect(() => loadConfig({ GREENROOM_TRUST_PROXY: 'proxy.example.test' })).toThrow(ConfigError);
    expect(() => loadConfig({ GREENROOM_TRUST_PROXY: '10.0.0.0/99' })).toThrow(/GREENROOM_TRUST_PROXY/);
  });

  it('without trust the socket peer is the client, whatever X-Forwarded-For says', () => {
    expect(addressOf(false, '198.51.100.1', '203.0.113.1')).toBe('198.51.100.1');
  });

  it('a hop count trusts that many hops from the right: the nearest untrusted one is the client', () => {
    const xff = '192.0.2.66, 203.0.113.7, 10.0.0.2'; // the client wrote 192.0.2.66 itself
    expect(addressOf(1, '10.0.0.1', xff)).toBe('10.0.0.2');
    expect(addressOf(true, '10.0.0.1', xff)).toBe('10.0.0.2');
    expect(addressOf(2, '10.0.0.1', xff)).toBe('203.0.113.7');
    // More hops trusted than there are: the leftmost there is (only by misconfiguration the client's own word).
    expect(addressOf(5, '10.0.0.1', '203.0.113.7')).toBe('203.0.113.7');
    expect(addressOf(1, '10.0.0.1')).toBe('10.0.0.1');
  });

  it('addresses and CIDRs trust exactly those hops, walking from the right until the first untrusted one', () => {
    const xff = '192.0.2.66, 203.0.113.7, 10.1.2.3';
    expect(addressOf(['10.0.0.0/8'], '10.0.0.1', xff)).toBe('203.0.113.7');
    expect(addressOf(['10.0.0.1'], '10.0.0.1', xff)).toBe('10.1.2.3');
    // A peer outside the list is the client itself: its X-Forwarded-For is its own word.
    expect(addressOf(['10.0.0.0/8'], '198.51.100.1', xff)).toBe('198.51.100.1');
    expect(addressOf(['loopback'], '127.0.0.1', '203.0.113.9')).toBe('203.0.113.9');
    expect(addressOf(['loopback'], '::ffff:127.0.0.1', '203.0.113.9')).toBe('203.0.113.9');
    expect(addressOf(['uniquelocal', 'fd00::/8'], 'fd00::1', '2001:db8:1:2::99, fd00::2')).toBe('2001:db8:1:2::99');
    // The limiters count the walked address by its /64, as they count a socket's.
    expect(limiterKey(addressOf(['fd00::/8'], 'fd00::1', '2001:db8:1:2::99'))).toBe('2001:db8:1:2::/64');
  });

  it('X-Forwarded-Proto and X-Forwarded-Host count from a trusted hop only (its own, last value)', () => {
    const headers = { 'x-forwarded-proto': 'https', 'x-forwarded-host': PROXY_HOST };
    const trusted = new ProxyTrust(['10.0.0.1']);
    expect(trusted.source(fakeRequest('10.0.0.1', headers))).toMatchObject({ secure: true, host: PROXY_HOST });
    expect(trusted.ownOrigin(fakeRequest('10.0.0.1', headers))).toBe(HTTPS_ORIGIN);
    expect(trusted.ownOrigin(fakeRequest('10.0.0.1', { 'x-forwarded-proto': 'http, https', 'x-forwarded-host': `evil.example.test, ${PROXY_HOST}` }))).toBe(HTTPS_ORIGIN);
    expect(trusted.ownOrigin(fakeRequest('10.0.0.1', { 'x-forwarded-proto': 'https, http' }))).toBe('http://127.0.0.1:8080');
    // A host with a path or userinfo smuggled in is not a host: the Host header stands.
    expect(trusted.ownOrigin(fakeRequest('10.0.0.1', { 'x-forwarded-host': 'evil.example.test/x' }))).toBe('http://127.0.0.1:8080');
    // From an untrusted peer the same headers change nothing.
    expect(trusted.source(fakeRequest('198.51.100.1', headers))).toMatchObject({ secure: false, host: '127.0.0.1:8080' });
    expect(new ProxyTrust(false).ownOrigin(fakeRequest('10.0.0.1', headers))).toBe('http://127.0.0.1:8080');
    // A TLS socket is https without any proxy.
    expect(new ProxyTrust(false).ownOrigin(fakeRequest('198.51.100.1', headers, true))).toBe('https://127.0.0.1:8080');
  });
});

describe('the login limiter behind a trusted proxy', () => {
  it.each<[string, TrustProxy]>([
    ['one hop', 1],
    ['the loopback preset', ['loopback']],
    ['a CIDR list', ['10.0.0.0/8', '127.0.0.0/8']],
  ])('with %s, forged leftmost X-Forwarded-For values do not reset it', async (_name, trustProxy) => {
    const server = await fresh({ trustProxy, loginMaxFailures: 3 });
    await server.ask(UserStore.Create, { username: 'carol', password: PASSWORD, role: 'user' });
    for (let i = 0; i < 3; i++) {
      const wrong = await loginWithPassword(server, { username: 'carol', password: 'nope' }, { headers: { 'X-Forwarded-For': `192.0.2.${i}, 203.0.113.50` } });
      expect(wrong.status).toBe(401);
    }
    const refused = await loginWithPassword(server, { username: 'carol', password: PASSWORD }, { headers: { 'X-Forwarded-For': '192.0.2.99, 203.0.113.50' } });
    expect(refused.status).toBe(429);
    expect(refused.body.error.code).toBe('RATE_LIMITED');
    // Another client behind the same proxy is someone else (another user: the username itself is now locked for new devices).
    await server.ask(UserStore.Create, { username: 'carl', password: PASSWORD, role: 'user' });
    expect((await loginWithPassword(server, { username: 'carl', password: PASSWORD }, { headers: { 'X-Forwarded-For': '203.0.113.51' } })).status).toBe(200);
    expect((await loginWithPassword(server, { username: 'carl', password: PASSWORD }, { headers: { 'X-Forwarded-For': '203.0.113.50' } })).status).toBe(429);
  });

  it('from an untrusted peer, X-Forwarded-For changes nothing: every attempt is the socket peer', async () => {
    const server = await fresh({ trustProxy: ['10.0.0.0/8'], loginMaxFailures: 3 });
    await server.ask(UserStore.Create, { username: 'dave', password: PASSWORD, role: 'user' });
    for (let i = 0; i < 3; i++) {
      expect((await loginWithPassword(server, { username: 'dave', password: 'nope' }, { headers: { 'X-Forwarded-For': `203.0.113.${i}` } })).status).toBe(401);
    }
    expect((await loginWithPassword(server, { username: 'dave', password: PASSWORD }, { headers: { 'X-Forwarded-For': '203.0.113.200' } })).status).toBe(429);
  });
});

describe('a browser behind a TLS proxy', () => {
  it('gets Secure cookies, and its https Origin is the own origin for cookie auth (HTTP and WebSocket)', async () => {
    const server = await fresh({ trustProxy: ['loopback'] });
    await server.ask(UserStore.Create, { username: 'erin', password: PASSWORD, role: 'user' });
    const answer = await loginWithPassword(server, { username: 'erin', password: PASSWORD }, { headers: { ...THROUGH_TLS_PROXY, Origin: HTTPS_ORIGIN } });
    expect(answer.status).toBe(200);
    expect(answer.cookies).toHaveLength(2);
    for (const c of answer.cookies) expect(c.split('; ')).toEqual(expect.arrayContaining(['HttpOnly', 'SameSite=Strict', 'Secure']));
    const cookie = answer.cookies.map((c) => c.split(';', 1)[0]).join('; ');
    const ticket = await post(server, '/auth/ticket', undefined, { headers: { ...THROUGH_TLS_PROXY, Origin: HTTPS_ORIGIN, Cookie: cookie } });
    expect(ticket.status).toBe(200);
    const client = await TestClient.connect(server, undefined, { headers: { ...THROUGH_TLS_PROXY, Origin: HTTPS_ORIGIN, Cookie: cookie } });
    expect((await client.ask('UserStore', 'GetOwn')).ok).toBe(true);
    await client.close();
    // The same proxy over plain http: no Secure.
    const plain = await loginWithPassword(
      server,
      { username: 'erin', password: PASSWORD },
      { headers: { 'X-Forwarded-Proto': 'http', 'X-Forwarded-Host': PROXY_HOST, Origin: `http://${PROXY_HOST}` } },
    );
    expect(plain.cookies.length).toBe(2);
    for (const c of plain.cookies) expect(c.split('; ')).not.toContain('Secure');
  });

  it.each<[string, TrustProxy]>([
    ['trusts no proxy', false],
    ['trusts other proxies only', ['10.0.0.0/8']],
  ])('the same headers change nothing when the server %s', async (_name, trustProxy) => {
    const server = await fresh({ trustProxy });
    await server.ask(UserStore.Create, { username: 'frank', password: PASSWORD, role: 'user' });
    // The forged https Origin is not the own origin (http://127.0.0.1:port): no cookies are set for it.
    const answer = await loginWithPassword(server, { username: 'frank', password: PASSWORD }, { headers: { ...THROUGH_TLS_PROXY, Origin: HTTPS_ORIGIN } });
    expect(answer.status).toBe(200);
    expect(answer.cookies).toEqual([]);
    // A request from the own origin gets cookies, never Secure (this is plain http).
    const own = await loginWithPassword(
      server,
      { username: 'frank', password: PASSWORD },
      { headers: { ...THROUGH_TLS_PROXY, Origin: new URL(server.url).origin } },
    );
    expect(own.cookies).toHaveLength(2);
    for (const c of own.cookies) expect(c.split('; ')).not.toContain('Secure');
    const cookie = own.cookies.map((c) => c.split(';', 1)[0]).join('; ');
    const refused = await post(server, '/auth/ticket', undefined, { headers: { ...THROUGH_TLS_PROXY, Origin: HTTPS_ORIGIN, Cookie: cookie } });
    expect(refused.status).toBe(403);
    expect(refused.body.error.code).toBe('BAD_ORIGIN');
  });
});

const ALLOWED = 'http://app.example.test:5173';
const FOREIGN = 'http://evil.example.test';
const accessControl = (headers: IncomingHttpHeaders) => Object.keys(headers).filter((h) => h.startsWith('access-control-'));

describe('CORS', () => {
  it('answers a preflight from an allowed origin with the grant, and from any other origin with none', async () => {
    const server = await fresh({ allowedOrigins: [ALLOWED] });
    for (const path of ['/auth/login', '/auth/refresh', '/auth/ticket', '/auth/logout', '/readyz']) {
      const preflight = await httpRequest(server, path, {
        method: 'OPTIONS',
        headers: { Origin: ALLOWED, 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'content-type, authorization' },
      });
      expect(preflight.status).toBe(204);
      expect(preflight.headers['access-control-allow-origin']).toBe(ALLOWED);
      expect(preflight.headers['access-control-allow-credentials']).toBe('true');
      expect(preflight.headers.vary).toMatch(/Origin/);
      expect(preflight.headers['access-control-allow-headers']).toMatch(/Content-Type/);
      expect(preflight.headers['access-control-allow-headers']).toMatch(/Authorization/);
      expect(preflight.headers['access-control-allow-methods']).toMatch(path === '/readyz' ? /GET/ : /POST/);
      expect(Number(preflight.headers['access-control-max-age'])).toBeGreaterThan(0);

      const foreign = await httpRequest(server, path, {
        method: 'OPTIONS',
        headers: { Origin: FOREIGN, 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'content-type' },
      });
      expect(accessControl(foreign.headers)).toEqual([]);
    }
  });

  it('grants actual answers (errors included) to an allowed origin and to the own origin, and nothing to another', async () => {
    const server = await fresh({ allowedOrigins: [ALLOWED] });
    await server.ask(UserStore.Create, { username: 'gina', password: PASSWORD, role: 'user' });
    const ok = await loginWithPassword(server, { username: 'gina', password: PASSWORD }, { headers: { Origin: ALLOWED } });
    expect(ok.status).toBe(200);
    expect(ok.headers['access-control-allow-origin']).toBe(ALLOWED);
    expect(ok.headers['access-control-allow-credentials']).toBe('true');
    const wrong = await loginWithPassword(server, { username: 'gina', password: 'nope' }, { headers: { Origin: ALLOWED } });
    expect(wrong.status).toBe(401);
    expect(wrong.headers['access-control-allow-origin']).toBe(ALLOWED);
    const ready = await httpRequest(server, '/readyz', { headers: { Origin: ALLOWED } });
    expect(ready.status).toBe(200);
    expect(ready.headers['access-control-allow-origin']).toBe(ALLOWED);
    const own = new URL(server.url).origin;
    expect((await httpRequest(server, '/readyz', { headers: { Origin: own } })).headers['access-control-allow-origin']).toBe(own);

    const foreign = await loginWithPassword(server, { username: 'gina', password: PASSWORD }, { headers: { Origin: FOREIGN } });
    expect(accessControl(foreign.headers)).toEqual([]);
    expect(foreign.cookies).toEqual([]);
    expect(accessControl((await httpRequest(server, '/readyz', { headers: { Origin: FOREIGN } })).headers)).toEqual([]);
    // No Origin (not a browser's cross-origin call): no grant either.
    expect(accessControl((await httpRequest(server, '/readyz')).headers)).toEqual([]);
  });

  it('a page of an allowed origin holding tokens gets a ticket (bearer, no cookie)', async () => {
    const server = await fresh({ allowedOrigins: [ALLOWED] });
    const session = await issueSession(server);
    const ticket = await post(server, '/auth/ticket', undefined, { headers: { Origin: ALLOWED, Authorization: `Bearer ${session.accessToken}` } });
    expect(ticket.status).toBe(200);
    expect(ticket.headers['access-control-allow-origin']).toBe(ALLOWED);
  });
});

/** Opens a raw TCP connection, optionally sends `text`, and collects every byte until the server closes it. */
function rawConnection(server: TestServer, text?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(server.port, '127.0.0.1', () => {
      if (text) socket.write(text);
    });
    const chunks: Buffer[] = [];
    socket.on('data', (c) => chunks.push(c));
    socket.on('error', reject);
    socket.on('close', () => resolve(Buffer.concat(chunks).toString('latin1')));
  });
}

describe('the headers timeout', () => {
  it('closes a connection that never sent a byte without writing a byte into it', async () => {
    const server = await fresh({ headersTimeoutMs: 300 });
    expect(await rawConnection(server)).toBe('');
  });

  it('answers a request that had started arriving with 408 (or nothing), never 400', async () => {
    const server = await fresh({ headersTimeoutMs: 300 });
    const got = await rawConnection(server, 'POST /auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Ty');
    expect(got === '' || got.startsWith('HTTP/1.1 408 ')).toBe(true);
    expect(got).not.toContain('400');
  });

  it('still answers a malformed request 400, and oversized headers 431', async () => {
    const server = await fresh({ headersTimeoutMs: 300 });
    expect(await rawConnection(server, 'NOT HTTP AT ALL\r\n\r\n')).toMatch(/^HTTP\/1\.1 400 /);
    expect(await rawConnection(server, `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`)).toMatch(/^HTTP\/1\.1 431 /);
  });
});
