/**
 * Embedding (docs/embedding.md): Greenroom attached to an app's own server — an Express 5 app and a Fastify 5 app, each
 * with its own routes and its own WebSocket endpoint — answers only its own paths and leaves the rest to the app,
 * also after it stops; and the stand-alone server over TLS.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import express from 'express';
import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify';
import WebSocket, { WebSocketServer } from 'ws';
import { loadConfig } from '../src/config.js';
import { ConfigError } from '../src/errors.js';
import {
  attachTestServer,
  httpRequest,
  loginWithPassword,
  post,
  startTestServer,
  TestClient,
  type HttpAnswer,
  type TestServer,
} from '../src/testing/index.js';
import { UserStore } from '../src/actors/user-store.js';

const ADMIN = { username: 'embedder', password: 'correct horse battery' };

/** The app's own WebSocket endpoint: greets each socket with a text frame. Anything else it is given it destroys. */
function appSocketHandler(path: string) {
  const wss = new WebSocketServer({ noServer: true });
  const listener = (req: http.IncomingMessage, socket: Duplex, head: Buffer): void => {
    if ((req.url ?? '').split('?', 1)[0] === path) wss.handleUpgrade(req, socket, head, (ws) => ws.send('app hello'));
    else socket.destroy();
  };
  return { wss, listener };
}

/** Opens a socket and resolves with its first message; rejects if the upgrade fails. */
function firstMessage(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.once('message', (data) => {
      resolve(data.toString());
      ws.close();
    });
    ws.once('error', reject);
  });
}

/** Whether an upgrade to `url` fails (the socket refused or destroyed), rather than opening. */
function upgradeFails(url: string): Promise<boolean> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url);
    ws.once('open', () => {
      ws.terminate();
      resolve(false);
    });
    ws.once('error', () => resolve(true));
  });
}

function origin(server: http.Server): string {
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function listen(server: http.Server): Promise<void> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
}

function closeServer(server: http.Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

/** Logs in through Greenroom's route and asks over its WebSocket: the round trip an app's page makes. */
async function loginAndAsk(greenroom: TestServer, base: string): Promise<{ login: HttpAnswer; client: TestClient }> {
  const login = await loginWithPassword(base, ADMIN, { headers: { Origin: new URL(base).origin } });
  expect(login.status).toBe(200);
  const client = await TestClient.connect(greenroom, login.body.accessToken);
  const own = await client.ask('UserStore', 'GetOwn');
  expect(own).toMatchObject({ ok: true, result: { username: ADMIN.username } });
  return { login, client };
}

describe('Greenroom attached to an Express 5 app (base path "")', () => {
  let app: ReturnType<typeof express>;
  let server: http.Server;
  let greenroom: TestServer;
  let appSocket: ReturnType<typeof appSocketHandler>;
  const seenByApp: string[] = [];

  beforeAll(async () => {
    app = express();
    app.use((req, _res, next) => {
      seenByApp.push(req.path);
      next();
    });
    app.get('/hello', (_req, res) => void res.json({ hello: 'express' }));
    // Paths that share a prefix with Greenroom's, and one under /auth that is not Greenroom's.
    app.get('/authors', (_req, res) => void res.json({ authors: [] }));
    app.get('/auth/callback', (_req, res) => void res.json({ callback: 'the app' }));
    app.use((_req, res) => void res.status(404).json({ app: 'not found' }));
    server = http.createServer(app);
    // The app's upgrade listener is added before Greenroom attaches.
    appSocket = appSocketHandler('/app-socket');
    server.on('upgrade', appSocket.listener);
    greenroom = await attachTestServer(server, { config: { admin: ADMIN } });
    await listen(server);
  });

  afterAll(async () => {
    await greenroom.close();
    appSocket.wss.close();
    await closeServer(server);
  });

  it('leaves the app its routes, its 404 and its own WebSocket endpoint', async () => {
    const base = origin(server);
    expect(await httpRequest(base, '/hello')).toMatchObject({ status: 200, body: { hello: 'express' } });
    expect(await httpRequest(base, '/authors')).toMatchObject({ status: 200, body: { authors: [] } });
    expect(await httpRequest(base, '/auth/callback')).toMatchObject({ status: 200, body: { callback: 'the app' } });
    expect(await httpRequest(base, '/nowhere')).toMatchObject({ status: 404, body: { app: 'not found' } });
    expect(await firstMessage(`ws://127.0.0.1:${greenroom.port}/app-socket`)).toBe('app hello');
  });

  it("answers its own routes, and the app's listeners never see them", async () => {
    const base = origin(server);
    expect(greenroom.url).toBe(base);
    seenByApp.length = 0;
    expect(await httpRequest(base, '/healthz')).toMatchObject({ status: 200, body: { status: 'ok' } });
    expect(await httpRequest(base, '/readyz')).toMatchObject({ status: 200, body: { status: 'ready' } });
    expect((await httpRequest(base, '/ws')).status).toBe(426);
    const { login, client } = await loginAndAsk(greenroom, base);
    expect(login.body).toMatchObject({ role: 'admin', refreshToken: expect.any(String) });
    await client.close();
    expect(seenByApp).toEqual([]);
  });
});

describe('Greenroom attached to a Fastify 5 app (base path "/gr")', () => {
  let app: ReturnType<typeof Fastify>;
  let greenroom: TestServer;
  let appSocket: ReturnType<typeof appSocketHandler>;

  beforeAll(async () => {
    app = Fastify();
    app.get('/hello', async () => ({ hello: 'fastify' }));
    app.get('/grapes', async () => ({ grapes: 3 }));
    app.get('/gr/other', async () => ({ other: 'the app' }));
    app.get('/healthz', async () => ({ app: 'healthy' }));
    app.setNotFoundHandler(async (_req: FastifyRequest, reply: FastifyReply) => reply.code(404).send({ app: 'not found' }));
    await app.ready();
    greenroom = await attachTestServer(app.server, { basePath: '/gr', config: { admin: ADMIN } });
    // The app's upgrade listener is added after Greenroom attached.
    appSocket = appSocketHandler('/app-socket');
    app.server.on('upgrade', appSocket.listener);
    await app.listen({ port: 0, host: '127.0.0.1' });
  });

  afterAll(async () => {
    await greenroom.close();
    appSocket.wss.close();
    await app.close();
  });

  it('answers under its base path only; the app keeps every other path, its own /healthz included', async () => {
    const base = origin(app.server);
    expect(greenroom.url).toBe(`${base}/gr`);
    expect(await httpRequest(base, '/gr/healthz')).toMatchObject({ status: 200, body: { status: 'ok' } });
    expect(await httpRequest(base, '/healthz')).toMatchObject({ status: 200, body: { app: 'healthy' } });
    expect(await httpRequest(base, '/hello')).toMatchObject({ status: 200, body: { hello: 'fastify' } });
    expect(await httpRequest(base, '/grapes')).toMatchObject({ status: 200, body: { grapes: 3 } });
    expect(await httpRequest(base, '/gr/other')).toMatchObject({ status: 200, body: { other: 'the app' } });
    expect(await httpRequest(base, '/gr/nowhere')).toMatchObject({ status: 404, body: { app: 'not found' } });
    expect(await loginWithPassword(base, ADMIN)).toMatchObject({ status: 404, body: { app: 'not found' } });
    expect(await firstMessage(`ws://127.0.0.1:${greenroom.port}/app-socket`)).toBe('app hello');
    // An upgrade on Greenroom's path without the base path is the app's (which destroys what it does not know).
    expect(await upgradeFails(`ws://127.0.0.1:${greenroom.port}/ws`)).toBe(true);
  });

  it('logs in and asks under the base path; the refresh cookie is scoped to it', async () => {
    const base = `${origin(app.server)}/gr`;
    const { login, client } = await loginAndAsk(greenroom, base);
    const cookies = login.headers['set-cookie'] ?? [];
    expect(cookies.find((c) => c.startsWith('gr_refresh='))).toMatch(/; Path=\/gr\/auth;/);
    // The access cookie goes only to Greenroom's paths, never with the app's own requests.
    expect(cookies.find((c) => c.startsWith('gr_access='))).toMatch(/; Path=\/gr;/);
    const refreshed = await post(base, '/auth/refresh', { refreshToken: login.body.refreshToken });
    expect(refreshed.status).toBe(200);
    await client.close();
  });

  it("stop() closes Greenroom's sockets with 1001 and leaves the app serving, its upgrades too", async () => {
    const login = await loginWithPassword(greenroom, ADMIN);
    const client = await TestClient.connect(greenroom, login.body.accessToken);
    const url = greenroom.url;
    const port = greenroom.port;
    await greenroom.close();
    expect(await client.closed).toEqual({ code: 1001, reason: 'shutdown' });
    expect(await httpRequest(origin(app.server), '/hello')).toMatchObject({ status: 200, body: { hello: 'fastify' } });
    expect(await httpRequest(url, '/healthz')).toMatchObject({ status: 404, body: { app: 'not found' } });
    expect(await firstMessage(`ws://127.0.0.1:${port}/app-socket`)).toBe('app hello');
    expect(await upgradeFails(`ws://127.0.0.1:${port}/gr/ws`)).toBe(true);
    expect(app.server.listening).toBe(true);
  });
});

describe('Greenroom attached to a plain http.Server', () => {
  it('answers the rest with 404 while it is the only listener, and leaves it to a request listener added later', async () => {
    const server = http.createServer();
    const greenroom = await attachTestServer(server);
    await listen(server);
    try {
      const base = origin(server);
      expect(await httpRequest(base, '/other')).toMatchObject({ status: 404, body: { error: { code: 'NOT_FOUND' } } });
      await expect(TestClient.connect({ url: `${base}/elsewhere` })).rejects.toMatchObject({ status: 404 });
      const seen: string[] = [];
      server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
        seen.push(req.url ?? '');
        res.writeHead(200, { 'Content-Type': 'text/plain' }).end('the app');
      });
      expect(await httpRequest(base, '/other')).toMatchObject({ status: 200, text: 'the app' });
      expect(await httpRequest(base, '/healthz')).toMatchObject({ status: 200, body: { status: 'ok' } });
      expect(seen).toEqual(['/other']);
    } finally {
      await greenroom.close();
    }
    // Stopped: its listeners are gone; the server still answers with the app's.
    expect(server.listenerCount('request')).toBe(1);
    expect(server.listenerCount('upgrade')).toBe(0);
    expect(await httpRequest(origin(server), '/healthz')).toMatchObject({ status: 200, text: 'the app' });
    await closeServer(server);
  });
});

describe('requests with Expect: 100-continue', () => {
  it("reach Greenroom for its paths even when the app listens for checkContinue, and the app's for the others", async () => {
    const server = http.createServer();
    const seen: string[] = [];
    server.on('checkContinue', (req: http.IncomingMessage, res: http.ServerResponse) => {
      seen.push(req.url ?? '');
      res.writeContinue();
      res.writeHead(200, { 'Content-Type': 'text/plain' }).end('the app');
    });
    server.on('request', (_req: http.IncomingMessage, res: http.ServerResponse) => res.writeHead(200).end('the app'));
    const greenroom = await attachTestServer(server);
    await listen(server);
    try {
      await greenroom.ask(UserStore.Create, { username: 'cont', password: 'cont-password-1', role: 'user' });
      const login = await loginWithPassword(origin(server), { username: 'cont', password: 'cont-password-1' }, { headers: { Expect: '100-continue' } });
      expect(login.status).toBe(200);
      expect(await post(origin(server), '/mine', {}, { headers: { Expect: '100-continue' } })).toMatchObject({ status: 200, text: 'the app' });
      expect(seen).toEqual(['/mine']);
    } finally {
      await greenroom.close();
      await closeServer(server);
    }
  });
});

describe('stopping an attached Greenroom', () => {
  it('answers the HTTP requests in flight first: a login halfway through its password check still gets its session (3 rounds)', async () => {
    for (let round = 0; round < 3; round++) {
      const server = http.createServer();
      const greenroom = await attachTestServer(server);
      await listen(server);
      try {
        await greenroom.ask(UserStore.Create, { username: 'late', password: 'late-password-1', role: 'user' });
        const login = loginWithPassword(origin(server), { username: 'late', password: 'late-password-1' });
        // The password check takes a few hundred ms: stop while it runs.
        await new Promise((r) => setTimeout(r, 50));
        await greenroom.close();
        expect({ round, status: (await login).status }).toEqual({ round, status: 200 });
      } finally {
        await closeServer(server);
      }
    }
  });
});

describe('configuration of the base path and TLS', () => {
  it('normalizes the base path and refuses a bad one', () => {
    expect(loadConfig({}).basePath).toBe('');
    expect(loadConfig({ GREENROOM_BASE_PATH: '/' }).basePath).toBe('');
    expect(loadConfig({ GREENROOM_BASE_PATH: '/gr/' }).basePath).toBe('/gr');
    expect(loadConfig({ GREENROOM_BASE_PATH: '/api/live' }).basePath).toBe('/api/live');
    for (const bad of ['gr', '/gr//x', '/a/../b', '/a b', '/gr?x', '//']) {
      expect(() => loadConfig({ GREENROOM_BASE_PATH: bad })).toThrow(ConfigError);
      expect(() => loadConfig({ GREENROOM_BASE_PATH: bad })).toThrow(/GREENROOM_BASE_PATH/);
    }
    expect(() => loadConfig({}, { basePath: 'no-slash' })).toThrow(/GREENROOM_BASE_PATH/);
  });

  it('wants both TLS files or neither', () => {
    expect(() => loadConfig({ GREENROOM_TLS_CERT: '/tmp/cert.pem' })).toThrow(/GREENROOM_TLS_CERT and GREENROOM_TLS_KEY/);
    expect(() => loadConfig({ GREENROOM_TLS_KEY: '/tmp/key.pem' })).toThrow(ConfigError);
    expect(loadConfig({ GREENROOM_TLS_CERT: '/c.pem', GREENROOM_TLS_KEY: '/k.pem' })).toMatchObject({ tlsCert: '/c.pem', tlsKey: '/k.pem' });
  });

  it('refuses to start on a TLS file it cannot read, naming the variable', async () => {
    await expect(startTestServer({ config: { tlsCert: '/nonexistent/cert.pem', tlsKey: '/nonexistent/key.pem' } })).rejects.toThrow(/GREENROOM_TLS_CERT: cannot read/);
  });
});

/** A self-signed certificate for localhost and 127.0.0.1, made by openssl in a temp dir; null without openssl. */
function selfSigned(dir: string): { cert: string; key: string } | null {
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  try {
    // prettier-ignore
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-subj', '/CN=localhost',
      '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1', '-days', '1', '-keyout', key, '-out', cert], { stdio: 'ignore' });
  } catch {
    return null;
  }
  return { cert, key };
}

describe('stand-alone over TLS (GREENROOM_TLS_CERT / GREENROOM_TLS_KEY)', () => {
  let dir: string;
  let files: { cert: string; key: string } | null;
  let server: TestServer | undefined;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'greenroom-tls-'));
    files = selfSigned(dir);
    // Skipped with its reason when the machine has no openssl to make the test certificate.
    if (!files) console.warn('skipping the TLS test: openssl is not available to make a test certificate');
    else server = await startTestServer({ config: { tlsCert: files.cert, tlsKey: files.key, admin: ADMIN } });
  });

  afterAll(async () => {
    await server?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('serves https and wss; cookies are Secure', async () => {
    if (!server || !files) return;
    const ca = await readFile(files.cert);
    expect(server.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(await httpRequest(server, '/healthz', { ca })).toMatchObject({ status: 200, body: { status: 'ok' } });
    // Without the certificate as CA, the client refuses the server.
    await expect(httpRequest(server, '/healthz')).rejects.toThrow();
    const login = await loginWithPassword(server, ADMIN, { headers: { Origin: server.url }, ca });
    expect(login.status).toBe(200);
    const cookies = login.headers['set-cookie'] ?? [];
    expect(cookies).toHaveLength(2);
    for (const c of cookies) expect(c).toMatch(/; Secure(;|$)/);
    const client = await TestClient.connect(server, login.body.accessToken, { ca });
    expect(client.ws.url).toMatch(/^wss:\/\//);
    expect(await client.ask('UserStore', 'GetOwn')).toMatchObject({ ok: true, result: { username: ADMIN.username } });
    await client.close();
  });
});
