/**
 * Limits and shutdown (docs/operations.md and docs/protocol.md "Limits", "Close reasons"): the connection cap (503 UNAVAILABLE with
 * Retry-After), the per-connection ask rate limit (RATE_LIMITED, then 4008 `retry-after=N` for a client that keeps
 * sending), the heartbeat (a peer that stops answering pings is dropped), bounded send buffers (a slow reader is
 * closed, the server's memory for it stays bounded), slow HTTP headers (dropped, nothing registered), and the
 * graceful stop, in process and as the real `greenroom serve` process under SIGTERM / SIGINT.
 *
 * Timing: these tests assert order and outcomes. They wait past configured intervals where the behaviour needs it
 * (the 10 s rate-limit grace, heartbeats, the headers timeout) and never assert that something happened fast.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { setTimeout as delay } from 'node:timers/promises';
import WebSocket from 'ws';
import { z } from 'zod';
import { defineActor, ErrorCode } from '../src/index.js';
import { SessionStore } from '../src/actors/session-store.js';
import { internals } from '../src/server.js';
import { LOCK_FILE } from '../src/store/lock.js';
import { DEFAULT_STORE_FILE } from '../src/store/lowdb-store.js';
import {
  deferred,
  eventually,
  expectError,
  issueSession,
  loginWithPassword,
  refusedUpgrade,
  startTestServer,
  TestClient,
  type Reply,
  type TestServer,
} from '../src/testing/index.js';

// ---------------------------------------------------------------------------------------------------------------
// helpers

/** The error code of a reply (undefined for a success). */
function errorCode(reply: Reply): string | undefined {
  return reply.ok ? undefined : reply.error.code;
}

/** Live connections as SessionStore counts them (asked as the server itself). */
async function statsConnections(server: TestServer): Promise<number> {
  return (await server.ask(SessionStore.Stats)).connections;
}

/** Opens sessions and sockets on one server and closes whatever is still open at the end. */
function sockets(server: () => TestServer) {
  const open: TestClient[] = [];
  return {
    async connect(role = 'user', options: { autoPong?: boolean } = {}): Promise<TestClient> {
      const session = await issueSession(server(), { role });
      const client = await TestClient.connect(server(), session.accessToken, { ws: { autoPong: options.autoPong ?? true } });
      // A socket the server tears down may report ECONNRESET: that is an outcome here, not a test failure.
      client.ws.on('error', () => undefined);
      open.push(client);
      return client;
    },
    async closeAll(): Promise<void> {
      await Promise.all(
        open.splice(0).map((c) => {
          if (c.ws.readyState === WebSocket.CLOSED) return undefined;
          // A paused socket never reads the close handshake: tear it down instead.
          if ((c.ws as any)._socket?.isPaused?.()) c.ws.terminate();
          return c.close();
        }),
      );
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------

describe('maxConnections', () => {
  let server: TestServer;
  const io = sockets(() => server);

  beforeAll(async () => {
    server = await startTestServer({ config: { maxConnections: 2 } });
  });
  afterEach(() => io.closeAll());
  afterAll(() => server.close());

  it('refuses the upgrade past the cap with 503 UNAVAILABLE and Retry-After, and accepts again once a socket closes', async () => {
    const first = await io.connect();
    const second = await io.connect();
    expect(internals(server).connections.size).toBe(2);

    const third = await issueSession(server);
    const refused = await refusedUpgrade(server, third.accessToken);
    expect(refused.status).toBe(503);
    expect(refused.headers['retry-after']).toMatch(/^\d+$/);
    expect(refused.body).toEqual({ error: { code: ErrorCode.UNAVAILABLE, message: expect.any(String) } });
    // Nothing was registered for it.
    expect(internals(server).connections.size).toBe(2);
    expect(await statsConnections(server)).toBe(2);

    // The same through the client: refused with the HTTP status.
    await expect(TestClient.connect(server, third.accessToken)).rejects.toMatchObject({ status: 503 });

    await first.close();
    await eventually(() => internals(server).connections.size < 2);
    const again = await TestClient.connect(server, third.accessToken);
    again.ws.on('error', () => undefined);
    expect((await again.ask(SessionStore.name, 'GetOwn')).ok).toBe(true);
    expect((await second.ask(SessionStore.name, 'GetOwn')).ok).toBe(true);
    await again.close();
  });
});

// ---------------------------------------------------------------------------------------------------------------

describe('ask rate limit', () => {
  let server: TestServer;
  const io = sockets(() => server);

  beforeAll(async () => {
    server = await startTestServer({ config: { askRate: 2, askBurst: 2 } });
  });
  afterEach(() => io.closeAll());
  afterAll(() => server.close());

  it('answers RATE_LIMITED, closes a client still sending after 10 s of that with 4008 retry-after=N, and spares one that backs off', async () => {
    // The flooder: a frame every ~100 ms (5× the rate), never backing off.
    const flooder = await io.connect();
    // Each reply with the time its ask was sent (before the server saw it).
    const sentAt = new Map<number, number>();
    const flooderReplies: Array<{ code: string; sentAt: number }> = [];
    flooder.ws.on('message', (data) => {
      const frame = JSON.parse(data.toString());
      if ('id' in frame) flooderReplies.push({ code: frame.ok ? 'ok' : frame.error.code, sentAt: sentAt.get(frame.id)! });
    });
    let n = 0;
    const timer = setInterval(() => {
      if (flooder.ws.readyState !== WebSocket.OPEN) return;
      sentAt.set(++n, Date.now());
      flooder.ws.send(JSON.stringify({ id: n, to: SessionStore.name, type: 'GetOwn' }));
    }, 100);

    // The polite client: a burst that runs into the limit, then it stops until the bucket has refilled, repeatedly,
    // for as long as the flooder runs (so for more than 10 s).
    const polite = await io.connect();
    const politeCodes: Array<string | undefined> = [];
    let flooderClosed = false;
    const politeRun = (async () => {
      while (!flooderClosed) {
        const burst = await Promise.all([1, 2, 3].map(() => polite.ask(SessionStore.name, 'GetOwn')));
        politeCodes.push(...burst.map(errorCode));
        // Limited: wait for the bucket to refill (burst / rate = 1 s) and a bit more.
        await delay(1500);
      }
    })();

    const closed = await flooder.closed;
    const closedAt = Date.now();
    flooderClosed = true;
    clearInterval(timer);
    await politeRun;

    expect(closed.code).toBe(4008);
    expect(closed.reason).toMatch(/^retry-after=\d+$/);
    expect(Number(closed.reason.split('=')[1])).toBeGreaterThanOrEqual(1);
    // It was answered (the burst) and then limited, and only closed after more than the 10 s grace of that.
    expect(flooderReplies[0]!.code).toBe('ok');
    const firstLimited = flooderReplies.find((r) => r.code === ErrorCode.RATE_LIMITED);
    expect(firstLimited).toBeDefined();
    expect(closedAt - firstLimited!.sentAt).toBeGreaterThan(10_000);
    expect(flooderReplies.filter((r) => r.code === ErrorCode.RATE_LIMITED).length).toBeGreaterThan(50);

    // The polite client was limited (every burst of 3 overshoots a bucket of 2) but recovered every time.
    expect(politeCodes.filter((c) => c === ErrorCode.RATE_LIMITED).length).toBeGreaterThan(0);
    for (let i = 0; i < politeCodes.length; i += 3) expect(politeCodes.slice(i, i + 2)).toEqual([undefined, undefined]);
    expect(polite.ws.readyState).toBe(WebSocket.OPEN);
    await delay(1100);
    const later = await polite.ask(SessionStore.name, 'GetOwn');
    expect(later.ok).toBe(true);
    expect(polite.ws.readyState).toBe(WebSocket.OPEN);
  });
});

// ---------------------------------------------------------------------------------------------------------------

describe('heartbeat', () => {
  let server: TestServer;
  const io = sockets(() => server);

  beforeAll(async () => {
    server = await startTestServer({ config: { heartbeatMs: 200 } });
  });
  afterEach(() => io.closeAll());
  afterAll(() => server.close());

  it('terminates a peer that does not answer pings and keeps one that does', async () => {
    const healthy = await io.connect();
    const silent = await io.connect('user', { autoPong: false });
    let silentPings = 0;
    silent.ws.on('ping', () => (silentPings += 1));
    let healthyPings = 0;
    healthy.ws.on('ping', () => (healthyPings += 1));

    // Terminated, not closed with a handshake: the client sees 1006.
    const closed = await silent.closed;
    expect(closed.code).toBe(1006);
    expect(silentPings).toBeGreaterThanOrEqual(1);
    await eventually(() => internals(server).connections.size === 1);
    await eventually(async () => (await statsConnections(server)) === 1);

    // The healthy client stays through several more intervals and keeps answering.
    const seen = healthyPings;
    await eventually(() => healthyPings >= seen + 5, { timeoutMs: 10_000 });
    expect(healthy.ws.readyState).toBe(WebSocket.OPEN);
    expect((await healthy.ask(SessionStore.name, 'GetOwn')).ok).toBe(true);
    expect(internals(server).connections.size).toBe(1);
  });
});

// ---------------------------------------------------------------------------------------------------------------

/** An app actor whose answer is ~1 KiB, to fill a send buffer quickly. */
const KIB = 'x'.repeat(1024);
const BlobActor = defineActor({
  name: 'Blob',
  state: () => ({}),
  messages: (message) => ({
    Get: message({ allow: 'any', payload: z.object({}), handle: () => KIB }),
  }),
});

describe('slow consumer', () => {
  const SEND_BUFFER = 16 * 1024;
  let server: TestServer;
  const io = sockets(() => server);

  beforeAll(async () => {
    // Asks are not limited here (rate, in flight, mailbox): the replies must pile up unread.
    server = await startTestServer({ actors: [BlobActor], config: { sendBufferBytes: SEND_BUFFER, askRate: 10_000_000, askBurst: 10_000_000, maxAsksInFlight: 10_000_000, mailboxCapacity: 10_000_000 } });
  });
  afterEach(() => io.closeAll());
  afterAll(() => server.close());

  it('closes a client that stops reading, with its buffer bounded, while another client keeps being answered', async () => {
    const slow = await io.connect();
    expect(internals(server).connections.size).toBe(1);
    const slowConnection = [...internals(server).connections][0]!;
    // The server side of the slow socket: record how much it ever holds buffered after a send.
    const serverWs = (slowConnection as any).ws as WebSocket;
    let maxBuffered = 0;
    const send = serverWs.send.bind(serverWs);
    (serverWs as any).send = (...args: Parameters<WebSocket['send']>) => {
      send(...args);
      maxBuffered = Math.max(maxBuffered, serverWs.bufferedAmount);
    };
    // And the close the server starts, with how many asks it had run by then (the normal client's included).
    let serverClose: { code: number; reason: string; asks: number; normalAsked: number } | undefined;
    const close = serverWs.close.bind(serverWs);
    (serverWs as any).close = (code: number, reason: string) => {
      serverClose ??= { code, reason, asks: internals(server).connections.asks, normalAsked };
      close(code, reason);
    };
    let normalAsked = 0;

    const normal = await io.connect();
    expect((await normal.ask('Blob', 'Get')).ok).toBe(true);

    // Stop reading: the TCP socket is paused, so the kernel buffers fill and then the server's own buffer grows.
    (slow.ws as any)._socket.pause();
    const gone = () => !internals(server).connections.has(slowConnection);
    let sent = 0;
    let sentAtClose = -1;
    const asksBefore = internals(server).connections.asks - normalAsked;
    const flood = (async () => {
      // Batches until the server lets go of the socket (an upper count only as a safety net), paced so that at most
      // a few thousand asks wait unread on the server's side: the replies, not the asks, are what must pile up.
      while (!gone() && slow.ws.readyState === WebSocket.OPEN && sent < 500_000) {
        if (serverClose && sentAtClose < 0) sentAtClose = sent;
        if (serverClose || sent - (internals(server).connections.asks - normalAsked - asksBefore) < 2000) {
          for (let i = 0; i < 500; i++) slow.ws.send(JSON.stringify({ id: ++sent, to: 'Blob', type: 'Get' }));
        }
        await delay(5);
      }
    })();

    // Meanwhile the normal client keeps being answered.
    let normalAnswers = 0;
    while (!gone()) {
      normalAsked += 1;
      const reply = await normal.ask('Blob', 'Get');
      expect(reply.ok).toBe(true);
      normalAnswers += 1;
    }
    await flood;
    expect(normalAnswers).toBeGreaterThan(0);
    expect(gone()).toBe(true);
    await eventually(async () => (await statsConnections(server)) === 1, { timeoutMs: 10_000 });

    // The server closed it as a slow consumer.
    expect(serverClose).toMatchObject({ code: 1008, reason: 'slow-consumer' });
    // Asks the slow client kept sending after that were dropped, not run: every ask the gateway ran since is the
    // normal client's (give or take its one ask in flight at that instant).
    const slowAsksAfterClose = internals(server).connections.asks - serverClose!.asks - (normalAsked - serverClose!.normalAsked);
    expect(slowAsksAfterClose).toBeLessThanOrEqual(1);
    // (It did keep sending: the socket stays open on its side until it reads again.)
    expect(sentAtClose).toBeGreaterThan(0);
    expect(sent - sentAtClose).toBeGreaterThanOrEqual(500);

    // Bounded: never more than the limit plus the one frame that crossed it.
    expect(maxBuffered).toBeGreaterThan(SEND_BUFFER);
    expect(maxBuffered).toBeLessThanOrEqual(SEND_BUFFER + 2 * 1024);

    for (let i = 0; i < 5; i++) expect((await normal.ask('Blob', 'Get')).ok).toBe(true);
    expect(normal.ws.readyState).toBe(WebSocket.OPEN);

    // What the slow client can observe once it reads again: the server closed with 1008 `slow-consumer` but the
    // close frame sits behind the full buffer, and 2 s later the server terminates the socket, dropping what it
    // had not yet handed to the kernel (the close frame with it, normally). So the client sees the replies that
    // made it into the kernel buffers and then 1006; 1008 `slow-consumer` only if the close frame got through.
    (slow.ws as any)._socket.resume();
    const closed = await slow.closed;
    expect([1006, 1008]).toContain(closed.code);
    if (closed.code === 1008) expect(closed.reason).toBe('slow-consumer');
  });
});

// ---------------------------------------------------------------------------------------------------------------

describe('slow HTTP headers', () => {
  const HEADERS_TIMEOUT = 500;
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer({ config: { headersTimeoutMs: HEADERS_TIMEOUT } });
  });
  afterAll(() => server.close());

  it('drops an upgrade whose headers do not arrive in time, and registers nothing', async () => {
    const socket = tcpConnect(server.port, '127.0.0.1');
    socket.on('error', () => undefined);
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    let answer = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (answer += chunk));
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    const started = Date.now();
    socket.write('GET /ws HTTP/1.1\r\nHost: x\r\n');

    await closed;
    // Dropped by the headers timeout (not refused at once), and whatever was written is not a 101.
    expect(Date.now() - started).toBeGreaterThanOrEqual(HEADERS_TIMEOUT);
    expect(answer).not.toMatch(/^HTTP\/1\.1 101/);
    expect(internals(server).connections.size).toBe(0);
    expect(await statsConnections(server)).toBe(0);
  });
});

// ---------------------------------------------------------------------------------------------------------------

describe('graceful stop', () => {
  /** An app actor whose handler waits until the test releases it. */
  const { promise: held, resolve: release } = deferred();
  const { promise: handlerEntered, resolve: entered } = deferred();
  const Hold = defineActor({
    name: 'Hold',
    state: () => ({}),
    messages: (message) => ({
      Wait: message({
        allow: 'any',
        payload: z.object({}),
        handle: async () => {
          entered();
          await held;
          return { released: true };
        },
      }),
    }),
  });

  let server: TestServer;
  afterAll(async () => {
    release();
    await server?.close();
  });

  it('stops accepting, answers the ask in flight, then closes 1001 shutdown, then closes the store', async () => {
    // The ask timeout far past the test: the in-flight ask is answered because it finished, not because it timed out.
    server = await startTestServer({ actors: [Hold], config: { askTimeoutMs: 60_000 } });
    const session = await issueSession(server);
    const client = await TestClient.connect(server, session.accessToken);
    client.ws.on('error', () => undefined);
    const events: string[] = [];
    client.ws.on('message', (data) => {
      const frame = JSON.parse(data.toString());
      if (frame.id === 'held') events.push('reply');
    });
    client.ws.on('close', (code, reason) => events.push(`close:${code}:${reason.toString()}`));
    expect(existsSync(join(server.dataDir, LOCK_FILE))).toBe(true);

    const heldReply = client.sendRaw(JSON.stringify({ id: 'held', to: 'Hold', type: 'Wait' }), 'held');
    await handlerEntered;

    // The address, taken while the server still listens.
    const url = server.url;
    const stopped = server.stop();
    let stopDone = false;
    void stopped.then(() => (stopDone = true));

    // New upgrades are refused (the listener is closed; a 503 would do too).
    const late = await issueSession(server);
    await expect(TestClient.connect({ url }, late.accessToken)).rejects.toBeDefined();
    // A new ask on the open socket gets UNAVAILABLE.
    const refused = await client.ask(SessionStore.name, 'GetOwn');
    await expectError(refused, ErrorCode.UNAVAILABLE);
    // Still waiting on the ask in flight: nothing closed yet.
    expect(events).toEqual([]);
    expect(stopDone).toBe(false);

    release();
    const reply = await heldReply;
    expect(reply).toEqual({ id: 'held', ok: true, result: { released: true } });
    const closed = await client.closed;
    expect(closed).toEqual({ code: 1001, reason: 'shutdown' });
    await stopped;
    expect(events).toEqual(['reply', 'close:1001:shutdown']);

    // The store was flushed and closed, and the data dir's lock released.
    expect(existsSync(join(server.dataDir, DEFAULT_STORE_FILE))).toBe(true);
    expect(existsSync(join(server.dataDir, LOCK_FILE))).toBe(false);
  });
});

// ---------------------------------------------------------------------------------------------------------------

describe('greenroom serve under signals', () => {
  const serverDir = fileURLToPath(new URL('..', import.meta.url));
  const admin = { username: 'limits-admin', password: 'limits-password-1' };
  const children: ChildProcess[] = [];
  const dirs: string[] = [];

  afterAll(async () => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });

  interface Running {
    child: ChildProcess;
    url: string;
    exited: Promise<number | null>;
    /** Resolves when a log line with this message has been printed. */
    logged(msg: string): Promise<void>;
  }

  async function serve(): Promise<Running> {
    const dataDir = await mkdtemp(join(tmpdir(), 'greenroom-limits-'));
    dirs.push(dataDir);
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('GREENROOM_')));
    const child = spawn(process.execPath, ['bin/greenroom-dev.mjs', 'serve'], {
      cwd: serverDir,
      env: { ...env, GREENROOM_PORT: '0', GREENROOM_DATA: dataDir, GREENROOM_ADMIN: `${admin.username}:${admin.password}`, GREENROOM_LOG_LEVEL: 'info' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    let stderr = '';
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (chunk: string) => (stderr += chunk));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const messages: string[] = [];
    const waiters: Array<() => void> = [];
    let url: string | undefined;
    createInterface({ input: child.stdout! }).on('line', (line) => {
      try {
        const entry = JSON.parse(line) as { msg?: string; url?: string };
        if (entry.msg === 'greenroom listening' && entry.url) url = entry.url;
        if (entry.msg) messages.push(entry.msg);
        for (const w of waiters.splice(0)) w();
      } catch {
        /* not a log line */
      }
    });
    const logged = async (msg: string) => {
      while (!messages.includes(msg)) {
        if (child.exitCode !== null) throw new Error(`server exited (${child.exitCode}) before logging "${msg}": ${stderr}`);
        await Promise.race([new Promise<void>((r) => waiters.push(r)), exited]);
      }
    };
    await logged('greenroom listening');
    return { child, url: url!, exited, logged };
  }

  async function adminSocket(url: string): Promise<TestClient> {
    const login = await loginWithPassword(url, admin);
    expect(login.status).toBe(200);
    const client = await TestClient.connect(url, login.body.accessToken);
    client.ws.on('error', () => undefined);
    expect((await client.ask(SessionStore.name, 'Stats')).ok).toBe(true);
    return client;
  }

  it('SIGTERM: closes the socket with 1001 shutdown and exits 0', async () => {
    const run = await serve();
    const client = await adminSocket(run.url);
    const order: string[] = [];
    void client.closed.then((c) => order.push(`close:${c.code}:${c.reason}`));
    void run.exited.then((code) => order.push(`exit:${code}`));

    run.child.kill('SIGTERM');
    const closed = await client.closed;
    const code = await run.exited;
    expect(closed).toEqual({ code: 1001, reason: 'shutdown' });
    expect(code).toBe(0);
    expect(order).toEqual(['close:1001:shutdown', 'exit:0']);
  });

  it('a second signal during the graceful stop exits at once, with code 1', async () => {
    const run = await serve();
    const client = await adminSocket(run.url);
    // Stop reading: the client never answers the server's close frame, so the graceful stop waits on this socket
    // (up to its close timeout) and the second signal surely arrives while it is still stopping.
    (client.ws as any)._socket.pause();

    run.child.kill('SIGINT');
    await run.logged('shutting down');
    // Past the second within which a repeat counts as the same request (the graceful stop still waits here).
    await new Promise((r) => setTimeout(r, 1100));
    run.child.kill('SIGINT');
    const code = await run.exited;
    expect(code).toBe(1);
    client.ws.terminate();
  });

  it('a SIGTERM during start-up (the store already locked, not yet listening) stops it gracefully once up: exit 0, no lock left (3 rounds)', async () => {
    for (let round = 0; round < 3; round++) {
      const dataDir = await mkdtemp(join(tmpdir(), 'greenroom-early-'));
      dirs.push(dataDir);
      const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('GREENROOM_')));
      // GREENROOM_ADMIN makes start-up hash a password after the store is locked: a window of a few hundred ms.
      const child = spawn(process.execPath, ['bin/greenroom-dev.mjs', 'serve'], {
        cwd: serverDir,
        env: { ...env, GREENROOM_PORT: '0', GREENROOM_DATA: dataDir, GREENROOM_ADMIN: `${admin.username}:${admin.password}`, GREENROOM_LOG_LEVEL: 'silent' },
        stdio: 'ignore',
      });
      children.push(child);
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      // Start-up compiles the sources first: bounded generously.
      await eventually(() => existsSync(join(dataDir, LOCK_FILE)), { intervalMs: 1, timeoutMs: 30_000 });
      child.kill('SIGTERM');
      expect({ round, code: await exited }).toEqual({ round, code: 0 });
      expect(existsSync(join(dataDir, LOCK_FILE))).toBe(false);
    }
  });

  it('the same signal twice at once (a Ctrl-C from the terminal and from npm) is one graceful stop: exit 0', async () => {
    const run = await serve();
    const client = await adminSocket(run.url);
    run.child.kill('SIGINT');
    run.child.kill('SIGINT');
    expect(await client.closed).toEqual({ code: 1001, reason: 'shutdown' });
    expect(await run.exited).toBe(0);
  });
});
