/**
 * The multi-node harness itself, so that a failing multi-node test points at Greenroom and not at its tools:
 * - TcpProxy forwards both ways, fails over to the next upstream, and cuts (blackhole or refuse) and restores;
 * - the generated nginx config proxies WebSockets round-robin (against two plain ws servers, no Greenroom);
 * - startNodes runs real processes, each on its own port, that signals end as docs/operations.md says; nodes started
 *   at once on an empty store, all with the same GREENROOM_ADMIN, all start and make one admin.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { createServer as createHttpServer } from 'node:http';
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';
import WebSocket, { WebSocketServer } from 'ws';
import { expectOk } from '@greenroom/server/testing';
import { adminSocket, describeIf, describeNodes, SETUP_TIMEOUT_MS, within } from './cluster.js';
import { nginxUnavailable, startNginx } from './nginx.js';
import { ADMIN, startNodes, type Nodes } from './nodes.js';
import { deleteKeys, testPrefix } from './redis.js';
import { TcpProxy } from './tcp-proxy.js';

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** An echo server on a free port. */
async function echoServer(): Promise<{ port: number; server: Server }> {
  const sockets = new Set<Socket>();
  const server = createServer((s) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
    s.on('error', () => undefined);
    s.pipe(s);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => new Promise<void>((resolve) => (sockets.forEach((s) => s.destroy()), server.close(() => resolve()))));
  return { port: (server.address() as AddressInfo).port, server };
}

/** A connection through `port`: what it reads, and how it ended. */
function dial(port: number) {
  const socket = connect(port, '127.0.0.1');
  let data = '';
  socket.on('data', (d: Buffer) => (data += d.toString()));
  const ended = new Promise<string>((resolve) => {
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    socket.once('close', () => resolve('closed'));
  });
  const connected = new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  return { socket, connected, ended, data: () => data };
}

/** Writes `text` and resolves once it has come back (the echo). */
async function roundTrip(c: ReturnType<typeof dial>, text: string): Promise<void> {
  const before = c.data().length;
  c.socket.write(text);
  while (c.data().length < before + text.length) await new Promise((r) => setTimeout(r, 5));
  expect(c.data().slice(before)).toBe(text);
}

describe('TcpProxy', () => {
  it('forwards both ways; a cut destroys live connections; restore forwards again', async () => {
    const echo = await echoServer();
    const proxy = await TcpProxy.start(echo.port);
    cleanups.push(() => proxy.close());
    const c = dial(proxy.port);
    await roundTrip(c, 'hello');
    proxy.cut();
    expect(await c.ended).toBe('closed');
    proxy.restore();
    const again = dial(proxy.port);
    await roundTrip(again, 'again');
    again.socket.destroy();
  });

  it('in blackhole mode holds new connections silent until restore, then closes them unanswered', async () => {
    const echo = await echoServer();
    const proxy = await TcpProxy.start(echo.port);
    cleanups.push(() => proxy.close());
    proxy.cut('blackhole');
    const held = dial(proxy.port);
    await held.connected;
    held.socket.write('anyone?');
    proxy.restore();
    // Destroyed with what it sent still unread: a reset, or a plain close.
    expect(['closed', 'ECONNRESET']).toContain(await held.ended);
    expect(held.data()).toBe('');
  });

  it('in refuse mode resets new connections at once', async () => {
    const echo = await echoServer();
    const proxy = await TcpProxy.start(echo.port);
    cleanups.push(() => proxy.close());
    proxy.cut('refuse');
    const refused = dial(proxy.port);
    expect(await refused.ended).toBe('ECONNRESET');
    expect(refused.data()).toBe('');
  });

  it('fails over: each connection goes to the first upstream that accepts it', async () => {
    const dead = await echoServer();
    await new Promise<void>((resolve) => dead.server.close(() => resolve()));
    const live = await echoServer();
    const proxy = await TcpProxy.start([dead.port, live.port]);
    cleanups.push(() => proxy.close());
    const c = dial(proxy.port);
    // Sent before any upstream accepted the connection: kept, not lost.
    await roundTrip(c, 'early bird');
    c.socket.destroy();
  });
});

describeIf(nginxUnavailable())('startNginx', () => {
  it('proxies WebSockets round-robin over its upstreams and logs which one served each', async () => {
    const upstreams: number[] = [];
    for (const name of ['one', 'two']) {
      const http = createHttpServer((_req, res) => res.writeHead(404).end());
      const wss = new WebSocketServer({ server: http, path: '/ws' });
      wss.on('connection', (ws) => ws.on('message', (m) => ws.send(`${name}:${m.toString()}`)));
      await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
      upstreams.push((http.address() as AddressInfo).port);
      cleanups.push(() => new Promise<void>((resolve) => (wss.clients.forEach((c) => c.terminate()), wss.close(), http.close(() => resolve()))));
    }
    const nginx = await startNginx(upstreams);
    cleanups.push(() => nginx.stop());

    const served: string[] = [];
    for (let i = 0; i < 4; i++) {
      const ws = new WebSocket(`${nginx.url.replace('http', 'ws')}/ws`);
      const reply = await within(10_000, 'an echo through nginx', new Promise<string>((resolve, reject) => {
        ws.once('open', () => ws.send('ping'));
        ws.once('message', (m) => resolve(m.toString()));
        ws.once('error', reject);
      }));
      served.push(reply.split(':')[0]!);
      expect(reply).toMatch(/^(one|two):ping$/);
      ws.close();
      await new Promise((resolve) => ws.once('close', resolve));
    }
    expect(new Set(served)).toEqual(new Set(['one', 'two']));

    const log = await nginx.accessLog();
    const sockets = log.filter((e) => e.path === '/ws');
    expect(sockets.map((e) => e.status)).toEqual([101, 101, 101, 101]);
    expect(new Set(sockets.map((e) => e.upstream))).toEqual(new Set(upstreams.map((p) => `127.0.0.1:${p}`)));
  });
});

describeNodes('startNodes', () => {
  it('runs each node as its own process, ready on its own port; SIGKILL ends one, stop() the rest', async () => {
    const prefix = testPrefix();
    cleanups.push(() => deleteKeys(prefix));
    const nodes = await startNodes(2, { prefix });
    cleanups.push(() => nodes.stop());
    expect(nodes.port(0)).not.toBe(nodes.port(1));
    expect(nodes.pid(0)).not.toBe(nodes.pid(1));
    for (const i of [0, 1]) expect((await fetch(`${nodes.url(i)}/readyz`)).status).toBe(200);

    expect(await nodes.kill(1, 'SIGKILL')).toEqual({ code: null, signal: 'SIGKILL' });
    await expect(fetch(`${nodes.url(1)}/healthz`)).rejects.toThrow();
    expect(await nodes.kill(0, 'SIGTERM')).toEqual({ code: 0, signal: null });
    expect(nodes.output(0)).toContain('greenroom stopped');
  }, SETUP_TIMEOUT_MS);

  it('three nodes started at once on an empty store, each with the same GREENROOM_ADMIN, all start and make one admin', async () => {
    const prefix = testPrefix();
    cleanups.push(() => deleteKeys(prefix));
    const env = { GREENROOM_SECRET: randomBytes(32).toString('hex') };
    const started = await Promise.allSettled([0, 1, 2].map(() => startNodes(1, { prefix, env })));
    for (const s of started) if (s.status === 'fulfilled') cleanups.push(() => s.value.stop());
    expect(started.map((s) => (s.status === 'fulfilled' ? 'ready' : String(s.reason)))).toEqual(['ready', 'ready', 'ready']);

    const urls = started.map((s) => (s as PromiseFulfilledResult<Nodes>).value.url(0));
    const admins = await Promise.all(urls.map((url) => adminSocket(url)));
    cleanups.push(() => Promise.all(admins.map((a) => a.close())));
    for (const admin of admins) {
      const all = await expectOk(admin.ask('UserStore', 'GetAll'));
      expect(all.items.filter((u: { username: string }) => u.username === ADMIN.username)).toHaveLength(1);
    }
  }, SETUP_TIMEOUT_MS);
});
