/**
 * A harness for testing Greenroom and the actors apps add to it: a real server on an ephemeral loopback port with
 * its store in a temp dir, sessions issued directly (no password hashing, for tests at scale), a small WebSocket
 * client that asks and records pushes and closes, HTTP and raw upgrade requests, and waits and assertions with
 * deadlines. Nothing here needs a test framework.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Server as HttpServer } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import WebSocket from 'ws';
import { parseServerFrame, type ErrorBody, type PushFrame, type TokenPair } from '@greenroom/protocol';
import { FingerprintStore } from '../actors/fingerprint-store.js';
import { UserStore } from '../actors/user-store.js';
import type { UserView } from '../actors/records.js';
import { createLogger } from '../log.js';
import { Greenroom, internals, type AttachOptions, type GreenroomOptions } from '../server.js';
import { DEFAULT_WAIT_MS } from './assert.js';
import { baseUrl, type Target } from './http.js';

export { DEFAULT_WAIT_MS, eventually, expectError, expectOk, type CodedError, type EventuallyOptions } from './assert.js';
export { httpRequest, loginWithPassword, post, signInAsGuest, type HttpAnswer, type HttpRequestOptions, type Target } from './http.js';
export { rawUpgrade, refusedUpgrade, type UpgradeAnswer, type UpgradeOptions } from './upgrade.js';
export { seedSessions, type SeedOptions, type SeededSession } from './seed.js';
/** A server's core and live connections, for tests and benchmarks that look inside: no stable API, may change in any version. */
export { internals, type Internals } from '../server.js';

export interface TestServer extends Greenroom {
  /** The temp data dir (removed by `close`). */
  readonly dataDir: string;
  /** Stops the server and removes its data dir. */
  close(): Promise<void>;
}

/** Starts a server on 127.0.0.1, an ephemeral port, a fresh temp data dir and a random secret. */
export function startTestServer(options: GreenroomOptions & { keepDataDir?: string } = {}): Promise<TestServer> {
  return testGreenroom(options, (o) => Greenroom.start(o));
}

/**
 * Attaches Greenroom to the app's own `http.Server` or `https.Server` (Greenroom.attach) with a fresh temp data dir
 * and a random secret. The app listens on and closes its server; `close` stops Greenroom's part only.
 */
export function attachTestServer(server: HttpServer | HttpsServer, options: AttachOptions & { keepDataDir?: string } = {}): Promise<TestServer> {
  return testGreenroom(options, (o) => Greenroom.attach(server, o));
}

async function testGreenroom<O extends GreenroomOptions & { keepDataDir?: string }>(options: O, open: (options: O) => Promise<Greenroom>): Promise<TestServer> {
  const dataDir = options.keepDataDir ?? (await mkdtemp(join(tmpdir(), 'greenroom-test-')));
  let server: Greenroom;
  try {
    server = await open({
      logger: createLogger({ level: process.env.GREENROOM_TEST_LOG ?? 'silent' }),
      env: {},
      ...options,
      config: { host: '127.0.0.1', port: 0, dataDir, secret: randomBytes(32).toString('hex'), ...options.config },
    });
  } catch (err) {
    if (!options.keepDataDir) await rm(dataDir, { recursive: true, force: true });
    throw err;
  }
  return Object.assign(server, {
    dataDir,
    close: async () => {
      await server.stop();
      if (!options.keepDataDir) await rm(dataDir, { recursive: true, force: true });
    },
  }) as TestServer;
}

let counter = 0;

/** Makes a user (no password) and a live session for it, as a login would, without the password hash. */
export async function issueSession(
  server: Greenroom,
  options: { role?: string; username?: string; uid?: string; fingerprint?: string } = {},
): Promise<TokenPair & { fingerprint: string; username: string }> {
  let uid = options.uid;
  let username = options.username ?? `user${process.pid}x${++counter}x${randomBytes(3).toString('hex')}`;
  if (!uid) {
    const user = await server.ask(UserStore.Provision, { username, role: options.role ?? 'user' });
    uid = user.uid;
  } else {
    username = (await server.ask(UserStore.Get, { uid })).username;
  }
  const fingerprint = options.fingerprint ?? `fp_${randomBytes(12).toString('base64url')}`;
  await server.ask(FingerprintStore.Seen, { fingerprint, uid });
  const session = await internals(server).login.open(uid, fingerprint);
  return { ...session, fingerprint, username };
}

/**
 * A promise and the function that settles it: for holding an actor's handler (or any step) until the test lets
 * it go, e.g. `const gate = deferred(); … handle: async () => { await gate.promise; … }; … gate.resolve();`.
 */
export function deferred<T = void>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

export interface Closed {
  code: number;
  reason: string;
}

export type Reply = { id: string | number | null; ok: true; result: any } | { id: string | number | null; ok: false; error: ErrorBody };

/** The WebSocket URL of a target's `/ws` (with `query`, e.g. `?ticket=…`). */
export function wsUrl(target: Target, query = ''): string {
  return `${baseUrl(target).replace(/^http/, 'ws')}/ws${query}`;
}

export interface ConnectOptions {
  headers?: Record<string, string>;
  /** Appended to `/ws`, e.g. `?ticket=…`. */
  query?: string;
  /** Trusts a test certificate, for wss. */
  ca?: string | Buffer;
  /** More options for the `ws` client (e.g. `autoPong: false`, `perMessageDeflate: false`). */
  ws?: WebSocket.ClientOptions;
}

/** A bare WebSocket client for tests: `ask` resolves with the whole reply frame (ok or not). */
export class TestClient {
  readonly pushes: PushFrame[] = [];
  readonly closed: Promise<Closed>;
  private readonly pending = new Map<string | number, (reply: Reply) => void>();
  private next = 0;
  private pushWaiters: Array<() => void> = [];
  private closedWith: Closed | null = null;

  constructor(readonly ws: WebSocket) {
    this.closed = new Promise((resolve) =>
      ws.once('close', (code, reason) => {
        this.closedWith = { code, reason: reason.toString() };
        resolve(this.closedWith);
        for (const w of this.pushWaiters.splice(0)) w();
      }),
    );
    ws.on('message', (data) => {
      const frame = parseServerFrame(data.toString());
      if (!frame) return;
      if ('event' in frame) {
        this.pushes.push(frame);
        for (const w of this.pushWaiters.splice(0)) w();
        return;
      }
      if (frame.id === null) return this.pending.get(NULL_ID)?.(frame as Reply);
      const waiter = this.pending.get(frame.id);
      this.pending.delete(frame.id);
      waiter?.(frame as Reply);
    });
  }

  /**
   * Opens a socket to `${server.url}/ws` (bearer token if given; `ca` trusts a test certificate for wss); rejects
   * with the HTTP status on a refused upgrade.
   */
  static connect(server: Target, token?: string, options: ConnectOptions = {}): Promise<TestClient> {
    const headers = { ...(token ? { Authorization: `Bearer ${token}` } : {}), ...options.headers };
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(wsUrl(server, options.query), { ...options.ws, headers, ...(options.ca ? { ca: options.ca } : {}) });
      const client = new TestClient(ws);
      ws.once('open', () => resolve(client));
      ws.once('unexpected-response', (_req, res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => reject(Object.assign(new Error(`upgrade refused: ${res.statusCode}`), { status: res.statusCode, body })));
      });
      ws.once('error', reject);
    });
  }

  ask(to: string, type: string, payload: unknown = {}): Promise<Reply> {
    const id = `a${++this.next}`;
    return this.sendRaw(JSON.stringify({ id, to, type, payload }), id);
  }

  /** Sends any text and waits for the reply with this id (or, with `null`, for the next reply without an id). */
  sendRaw(text: string | Buffer, id: string | number | null, binary = false): Promise<Reply> {
    return new Promise((resolve) => {
      this.pending.set(id ?? NULL_ID, resolve);
      this.ws.send(text, { binary });
    });
  }

  /**
   * Waits until `count` pushes with this event name have arrived (counting those already received) and resolves
   * with them; rejects after `timeoutMs` (default 5 s), or once the socket has closed, without them.
   */
  async waitForPush(event: string, count = 1, options: { timeoutMs?: number } = {}): Promise<PushFrame[]> {
    const timeoutMs = options.timeoutMs ?? DEFAULT_WAIT_MS;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const got = this.pushes.filter((p) => p.event === event);
      if (got.length >= count) return got;
      const missing = `${got.length} of ${count} ${event} push(es)`;
      if (this.closedWith) throw new Error(`waitForPush: the socket closed (${this.closedWith.code} ${this.closedWith.reason}) with ${missing}`);
      const left = deadline - Date.now();
      if (left <= 0) {
        const seen = [...new Set(this.pushes.map((p) => p.event))].join(', ') || 'none';
        throw new Error(`waitForPush: ${missing} within ${timeoutMs} ms (events received: ${seen})`);
      }
      await new Promise<void>((resolve) => {
        const wake = () => {
          clearTimeout(timer);
          this.pushWaiters = this.pushWaiters.filter((w) => w !== wake);
          resolve();
        };
        const timer = setTimeout(wake, left);
        this.pushWaiters.push(wake);
      });
    }
  }

  close(): Promise<Closed> {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.close(1000);
    return this.closed;
  }
}

const NULL_ID = Symbol('no id') as unknown as string;
