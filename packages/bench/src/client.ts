/**
 * A load-client process of the bench. It drives one server (Greenroom or the raw `ws` baseline) with exactly the
 * same code either way: the only difference is the bearer token it sends when it is given tokens. Methods (called
 * over IPC by run.ts): handshakes, load, idleOpen/idleClose, stormConnect/stormWait/stormClose, refreshStorm,
 * refreshLoad, askPace, guestLoad, authStorm, soakCycles, revokeLatency. Every method is bounded in time.
 */
import { Agent, request } from 'node:http';
import { io, type Socket as IoSocket } from 'socket.io-client';
import WebSocket from 'ws';
import { serve } from './ipc.js';
import { Histogram, jitter, sleep } from './stats.js';

interface Target {
  /** http://127.0.0.1:port */
  url: string;
  /** Bearer tokens, used round-robin (none: the raw baseline). */
  tokens?: string[];
  /** The wire: plain WebSocket frames on /ws (default), or Socket.IO's client (the Socket.IO peer). */
  peer?: 'ws' | 'socketio';
}

function wsUrl(url: string): string {
  return `${url.replace(/^http/, 'ws')}/ws`;
}

/** Opens one socket; resolves on open, rejects on a refused upgrade, an error, or after `timeoutMs`. */
function connect(url: string, token: string | undefined, timeoutMs = 15_000): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(wsUrl(url), {
      headers: token ? { Authorization: `Bearer ${token}` } : {},
      perMessageDeflate: false,
      handshakeTimeout: timeoutMs,
    });
    const fail = (err: Error) => {
      ws.removeAllListeners('open');
      ws.terminate();
      reject(err);
    };
    ws.once('open', () => {
      ws.off('error', fail);
      ws.on('error', () => undefined);
      resolve(ws);
    });
    ws.once('error', fail);
  });
}

/**
 * Opens one Socket.IO connection, WebSocket transport only, without Socket.IO's own reconnection (the storm uses the
 * same backoff for every peer); resolves once Socket.IO's CONNECT is answered (its handshake: upgrade, engine.io
 * open, namespace connect).
 */
function ioConnect(url: string, timeoutMs = 15_000): Promise<IoSocket> {
  return new Promise((resolve, reject) => {
    const socket = io(url, { transports: ['websocket'], forceNew: true, reconnection: false, timeout: timeoutMs });
    const fail = (err: Error) => {
      socket.off('connect');
      socket.disconnect();
      reject(err);
    };
    socket.once('connect', () => {
      socket.off('connect_error', fail);
      resolve(socket);
    });
    socket.once('connect_error', fail);
  });
}

/** Disconnects and waits until the underlying WebSocket has closed (at most `timeoutMs`). */
function ioCloseAndWait(socket: IoSocket, timeoutMs = 5_000): Promise<void> {
  return new Promise((resolve) => {
    const engine = socket.io.engine;
    if (!engine || engine.readyState === 'closed') {
      socket.disconnect();
      return resolve();
    }
    const timer = setTimeout(resolve, timeoutMs);
    engine.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
    socket.disconnect();
  });
}

function closeAndWait(ws: WebSocket, timeoutMs = 5_000): Promise<void> {
  return new Promise((resolve) => {
    if (ws.readyState === WebSocket.CLOSED) return resolve();
    const timer = setTimeout(() => {
      ws.terminate();
      resolve();
    }, timeoutMs);
    ws.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
    ws.close(1000);
  });
}

/** Runs `task(i)` for i in [0, n) with at most `concurrency` at a time. */
async function pool(n: number, concurrency: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < n) await task(next++);
  };
  await Promise.all(Array.from({ length: Math.min(n, concurrency) }, worker));
}

function tokenFor(target: Target, i: number): string | undefined {
  const t = target.tokens;
  return t && t.length > 0 ? t[i % t.length] : undefined;
}

export interface RateResult {
  count: number;
  errors: number;
  seconds: number;
  /** Per second; over several rounds, the median of the rounds. */
  rate: number;
  /** Each round's rate, when the figure combines rounds (in the order they ran). */
  rounds?: number[];
  latency: Array<[number, number]>;
  /** Pushes received in the measured window (a load whose sockets subscribe). */
  pushes?: number;
  /** The server's CPU time (user + system, µs) over the measured window, when it was read (see run.ts `withCpu`). */
  cpuUs?: number;
  firstError?: string;
}

// ---------------------------------------------------------------- handshakes

/** What one operation of a timed loop reports: when it started and finished, and its error if it failed. */
type Outcome = { start: number; end: number; error?: string } | 'skipped';

/**
 * `inflight` loops each running `op` until the deadline. Operations finishing inside the measured window (after the
 * warm-up) count as done (with their latency) or as errors; the first error is kept whenever it happened.
 */
async function timedLoops(p: { inflight: number; warmupMs: number; durationMs: number }, op: () => Promise<Outcome>): Promise<RateResult> {
  const hist = new Histogram();
  const from = performance.now() + p.warmupMs;
  const end = from + p.durationMs;
  let count = 0;
  let errors = 0;
  let firstError: string | undefined;
  const loop = async () => {
    while (performance.now() < end) {
      const o = await op();
      if (o === 'skipped') continue;
      if (o.error !== undefined) firstError ??= o.error;
      if (o.end < from || o.end > end) continue;
      if (o.error !== undefined) errors += 1;
      else {
        count += 1;
        hist.record(o.end - o.start);
      }
    }
  };
  await Promise.all(Array.from({ length: p.inflight }, loop));
  const seconds = p.durationMs / 1000;
  return { count, errors, seconds, rate: count / seconds, latency: hist.toSparse(), ...(firstError ? { firstError } : {}) };
}

/** `inflight` loops, each: open a socket (upgrade), then close it and wait for the close; counts opens per second. */
function handshakes(p: Target & { inflight: number; warmupMs: number; durationMs: number }): Promise<RateResult> {
  let i = 0;
  return timedLoops(p, async () => {
    const start = performance.now();
    try {
      if (p.peer === 'socketio') {
        const socket = await ioConnect(p.url);
        const end = performance.now();
        await ioCloseAndWait(socket);
        return { start, end };
      }
      const ws = await connect(p.url, tokenFor(p, i++));
      const end = performance.now(); // the latency of the upgrade; the close is not part of it
      await closeAndWait(ws);
      return { start, end };
    } catch (err) {
      await sleep(5);
      return { start, end: performance.now(), error: String(err) };
    }
  });
}

// ---------------------------------------------------------------- request/response load

/** Rooms for `load`: each socket joins one room's topic and puts the room in every ask's payload. */
export interface LoadRooms {
  /** The actor whose `Subscribe { topic }` each socket asks before the load starts. */
  actor: string;
  /** Socket i is in room `room-<i mod count>`: one room for all, or the sockets spread over `count` rooms. */
  count: number;
  /** The payload's `text`, beside its `room`. */
  text: string;
}

/**
 * `sockets` sockets, each keeping `inflight` asks outstanding: a reply sends the next ask. Each ask is a Greenroom
 * frame `{"id", "to", "type", "payload"}`; every frame received is JSON-parsed (the raw echo server sends the frame
 * back, so its reply has the id too). Replies with `ok: false` count as errors, not messages. With `rooms`, each
 * socket first subscribes to its room's topic and asks with `{room, text}`; the pushes it then receives (frames with
 * an `event`) are counted, not timed. Without, the payload is `{}`.
 */
async function load(
  p: Target & { sockets: number; inflight: number; warmupMs: number; durationMs: number; to: string; type: string; rooms?: LoadRooms },
): Promise<RateResult> {
  if (p.peer === 'socketio') return ioLoad(p);
  const sockets = await Promise.all(Array.from({ length: p.sockets }, (_, i) => connect(p.url, tokenFor(p, i))));
  const rooms = p.rooms;
  const roomOf = (i: number) => `room-${i % (rooms?.count ?? 1)}`;
  if (rooms) await Promise.all(sockets.map((ws, i) => subscribe(ws, rooms.actor, roomOf(i))));
  const hist = new Histogram();
  const start = performance.now();
  const from = start + p.warmupMs;
  const end = from + p.durationMs;
  let count = 0;
  let errors = 0;
  let pushes = 0;
  let firstError: string | undefined;
  let outstanding = 0;
  for (const [i, ws] of sockets.entries()) {
    const payload = rooms ? { room: roomOf(i), text: rooms.text } : {};
    const pending = new Map<number | string, number>();
    let n = 0;
    const send = () => {
      const id = ++n;
      pending.set(id, performance.now());
      outstanding += 1;
      ws.send(JSON.stringify({ id, to: p.to, type: p.type, payload }));
    };
    ws.on('message', (data) => {
      const now = performance.now();
      const frame = JSON.parse(data.toString()) as { id?: number; ok?: boolean; error?: unknown; event?: string };
      if (frame.event !== undefined) {
        if (now >= from && now <= end) pushes += 1;
        return;
      }
      const sent = pending.get(frame.id!);
      if (sent === undefined) return;
      pending.delete(frame.id!);
      outstanding -= 1;
      if (now >= from && now <= end) {
        if (frame.ok === false) {
          errors += 1;
          firstError ??= JSON.stringify(frame.error);
        } else {
          count += 1;
          hist.record(now - sent);
        }
      }
      if (now < end) send();
    });
    for (let k = 0; k < p.inflight; k++) send();
  }
  await sleep(end - performance.now());
  const drainBy = performance.now() + 5_000;
  while (outstanding > 0 && performance.now() < drainBy) await sleep(10);
  await Promise.all(sockets.map((ws) => closeAndWait(ws)));
  const seconds = p.durationMs / 1000;
  return { count, errors, seconds, rate: count / seconds, latency: hist.toSparse(), ...(rooms ? { pushes } : {}), ...(firstError ? { firstError } : {}) };
}

/**
 * `load` against the Socket.IO peer: the same sockets × in-flight shape, each ask an `ask` event with the payload
 * `{}` and an acknowledgement (Socket.IO numbers acks itself), a reply sending the next.
 */
async function ioLoad(p: Target & { sockets: number; inflight: number; warmupMs: number; durationMs: number }): Promise<RateResult> {
  const sockets = await Promise.all(Array.from({ length: p.sockets }, () => ioConnect(p.url)));
  const hist = new Histogram();
  const from = performance.now() + p.warmupMs;
  const end = from + p.durationMs;
  let count = 0;
  let errors = 0;
  let firstError: string | undefined;
  let outstanding = 0;
  for (const socket of sockets) {
    const send = () => {
      const sent = performance.now();
      outstanding += 1;
      socket.emit('ask', {}, (reply: { ok?: boolean; error?: unknown }) => {
        const now = performance.now();
        outstanding -= 1;
        if (now >= from && now <= end) {
          if (reply?.ok === false) {
            errors += 1;
            firstError ??= JSON.stringify(reply.error);
          } else {
            count += 1;
            hist.record(now - sent);
          }
        }
        if (now < end) send();
      });
    };
    for (let k = 0; k < p.inflight; k++) send();
  }
  await sleep(end - performance.now());
  const drainBy = performance.now() + 5_000;
  while (outstanding > 0 && performance.now() < drainBy) await sleep(10);
  await Promise.all(sockets.map((socket) => ioCloseAndWait(socket)));
  const seconds = p.durationMs / 1000;
  return { count, errors, seconds, rate: count / seconds, latency: hist.toSparse(), ...(firstError ? { firstError } : {}) };
}

/** Asks `actor.Subscribe { topic }` on `ws`; rejects on an error answer, a close, or after `timeoutMs`. */
function subscribe(ws: WebSocket, actor: string, topic: string, timeoutMs = 15_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (err?: Error) => {
      clearTimeout(timer);
      ws.off('message', onMessage);
      ws.off('close', onClose);
      if (err) reject(err);
      else resolve();
    };
    const onMessage = (data: WebSocket.RawData) => {
      const frame = JSON.parse(data.toString()) as { id?: string; ok?: boolean; error?: unknown };
      if (frame.id !== 'subscribe') return;
      done(frame.ok === false ? new Error(`Subscribe ${topic}: ${JSON.stringify(frame.error)}`) : undefined);
    };
    const onClose = () => done(new Error(`Subscribe ${topic}: socket closed`));
    const timer = setTimeout(() => done(new Error(`Subscribe ${topic}: no answer within ${timeoutMs} ms`)), timeoutMs);
    ws.on('message', onMessage);
    ws.once('close', onClose);
    ws.send(JSON.stringify({ id: 'subscribe', to: actor, type: 'Subscribe', payload: { topic } }));
  });
}

// ---------------------------------------------------------------- idle connections (memory)

let idle: WebSocket[] = [];
let idleIo: IoSocket[] = [];

async function idleOpen(p: Target & { count: number; offset: number; concurrency: number }): Promise<{ opened: number; errors: number; ms: number; firstError?: string }> {
  const t = performance.now();
  let errors = 0;
  let firstError: string | undefined;
  await pool(p.count, p.concurrency, async (i) => {
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        if (p.peer === 'socketio') idleIo.push(await ioConnect(p.url));
        else idle.push(await connect(p.url, tokenFor(p, p.offset + i)));
        return;
      } catch (err) {
        errors += 1;
        firstError ??= String(err);
        await sleep(100);
      }
    }
  });
  return { opened: idle.length + idleIo.length, errors, ms: performance.now() - t, ...(firstError ? { firstError } : {}) };
}

async function idleClose(): Promise<{ closed: number }> {
  const n = idle.length + idleIo.length;
  for (const ws of idle) ws.terminate();
  for (const socket of idleIo) socket.disconnect();
  idle = [];
  idleIo = [];
  return { closed: n };
}

// ---------------------------------------------------------------- reconnect storm

interface StormClient {
  token: string | undefined;
  ws: WebSocket | null;
  /** The Socket.IO peer's connection, in place of `ws`. */
  io: IoSocket | null;
  state: 'initial' | 'down' | 'done' | 'failed';
}

const storm = {
  clients: [] as StormClient[],
  url: '',
  peer: 'ws' as 'ws' | 'socketio',
  jitterMs: 0,
  maxBackoffMs: 0,
  to: '',
  type: '',
  done: 0,
  failed: 0,
  retries: 0,
  firstCloseAt: 0,
  lastDoneAt: 0,
  firstError: undefined as string | undefined,
  waiters: [] as Array<() => void>,
};

function stormSettled(): void {
  if (storm.done + storm.failed === storm.clients.length) for (const w of storm.waiters.splice(0)) w();
}

/** Backoff: a random wait in [0, min(max, base·2^attempt)] (full jitter). */
function reconnectLater(c: StormClient, attempt: number): void {
  const delay = jitter(Math.min(storm.maxBackoffMs, storm.jitterMs * 2 ** attempt));
  setTimeout(() => void reconnect(c, attempt), delay);
}

/** Once the server closed it: the client counts it down and reconnects after a backoff. */
function onStormClose(c: StormClient): void {
  storm.firstCloseAt ||= Date.now();
  c.state = 'down';
  c.ws = null;
  c.io = null;
  reconnectLater(c, 0);
}

/** The Socket.IO peer's reconnect: connect, then one `ask` acknowledged. */
async function ioReconnect(c: StormClient, attempt: number): Promise<void> {
  let socket: IoSocket;
  try {
    socket = await ioConnect(storm.url);
  } catch {
    storm.retries += 1;
    return reconnectLater(c, attempt + 1);
  }
  c.io = socket;
  const reply = await new Promise<{ ok?: boolean; error?: unknown } | null>((resolve) => {
    const timer = setTimeout(() => resolve(null), 10_000);
    socket.once('disconnect', () => {
      clearTimeout(timer);
      resolve(null);
    });
    socket.emit('ask', {}, (r: { ok?: boolean; error?: unknown }) => {
      clearTimeout(timer);
      resolve(r);
    });
  });
  socket.removeAllListeners('disconnect');
  if (reply === null) {
    storm.retries += 1;
    socket.disconnect();
    return reconnectLater(c, attempt + 1);
  }
  settle(c, reply);
}

function settle(c: StormClient, reply: { ok?: boolean; error?: unknown }): void {
  if (reply.ok === false) {
    c.state = 'failed';
    storm.failed += 1;
    storm.firstError ??= JSON.stringify(reply.error);
  } else {
    c.state = 'done';
    storm.done += 1;
  }
  storm.lastDoneAt = Date.now();
  stormSettled();
}

async function reconnect(c: StormClient, attempt: number): Promise<void> {
  if (storm.peer === 'socketio') return ioReconnect(c, attempt);
  let ws: WebSocket;
  try {
    ws = await connect(storm.url, c.token);
  } catch {
    storm.retries += 1;
    return reconnectLater(c, attempt + 1);
  }
  c.ws = ws;
  const reply = await new Promise<{ ok?: boolean; error?: unknown } | null>((resolve) => {
    const timer = setTimeout(() => resolve(null), 10_000);
    ws.once('message', (data) => {
      clearTimeout(timer);
      resolve(JSON.parse(data.toString()) as { ok?: boolean });
    });
    ws.once('close', () => {
      clearTimeout(timer);
      resolve(null);
    });
    ws.send(JSON.stringify({ id: 1, to: storm.to, type: storm.type, payload: {} }));
  });
  if (reply === null) {
    // Closed or silent before answering: try again.
    storm.retries += 1;
    ws.terminate();
    return reconnectLater(c, attempt + 1);
  }
  settle(c, reply);
}

/** Opens `count` sockets that, once closed by the server, reconnect with jittered backoff and ask once. */
async function stormConnect(
  p: Target & { count: number; offset: number; concurrency: number; jitterMs: number; maxBackoffMs: number; to: string; type: string },
): Promise<{ opened: number; errors: number; ms: number; firstError?: string }> {
  Object.assign(storm, {
    clients: [],
    url: p.url,
    peer: p.peer ?? 'ws',
    jitterMs: p.jitterMs,
    maxBackoffMs: p.maxBackoffMs,
    to: p.to,
    type: p.type,
    done: 0,
    failed: 0,
    retries: 0,
    firstCloseAt: 0,
    lastDoneAt: 0,
    firstError: undefined,
    waiters: [],
  });
  const t = performance.now();
  let errors = 0;
  let firstError: string | undefined;
  await pool(p.count, p.concurrency, async (i) => {
    const c: StormClient = { token: tokenFor(p, p.offset + i), ws: null, io: null, state: 'initial' };
    for (let attempt = 0; attempt < 3 && !c.ws && !c.io; attempt++) {
      try {
        if (storm.peer === 'socketio') c.io = await ioConnect(p.url);
        else c.ws = await connect(p.url, c.token);
      } catch (err) {
        errors += 1;
        firstError ??= String(err);
        await sleep(100);
      }
    }
    if (c.io) {
      storm.clients.push(c);
      c.io.once('disconnect', () => onStormClose(c));
    } else if (c.ws) {
      storm.clients.push(c);
      c.ws.once('close', () => onStormClose(c));
    }
  });
  return { opened: storm.clients.length, errors, ms: performance.now() - t, ...(firstError ? { firstError } : {}) };
}

/** Waits until every client has reconnected and had its one ask answered (or `timeoutMs` passed). */
async function stormWait(p: { timeoutMs: number }): Promise<{ answered: number; failed: number; unanswered: number; retries: number; lastDoneAt: number; firstCloseAt: number; firstError?: string }> {
  await Promise.race([new Promise<void>((r) => (storm.waiters.push(r), stormSettled())), sleep(p.timeoutMs)]);
  const unanswered = storm.clients.length - storm.done - storm.failed;
  return {
    answered: storm.done,
    failed: storm.failed,
    unanswered,
    retries: storm.retries,
    lastDoneAt: storm.lastDoneAt,
    firstCloseAt: storm.firstCloseAt,
    ...(storm.firstError ? { firstError: storm.firstError } : {}),
  };
}

async function stormClose(): Promise<{ closed: number }> {
  const n = storm.clients.length;
  for (const c of storm.clients) {
    c.state = 'failed'; // no more reconnects
    c.ws?.removeAllListeners('close');
    c.ws?.terminate();
    c.io?.removeAllListeners('disconnect');
    c.io?.disconnect();
  }
  storm.clients = [];
  return { closed: n };
}

// ---------------------------------------------------------------- HTTP refresh

function post(agent: Agent, url: string, path: string, body: unknown): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const text = JSON.stringify(body);
    const req = request(`${url}${path}`, { method: 'POST', agent, headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) }, timeout: 30_000 }, (res) => {
      let data = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (data += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: data }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(text);
  });
}

/** `concurrency` POST /auth/refresh at once, all presenting the same refresh token. */
async function refreshStorm(p: { url: string; token: string; concurrency: number }): Promise<{ ms: number; statuses: Record<string, number>; distinctPairs: number }> {
  const agent = new Agent({ keepAlive: false, maxSockets: Infinity });
  const t = performance.now();
  const results = await Promise.all(
    Array.from({ length: p.concurrency }, () => post(agent, p.url, '/auth/refresh', { refreshToken: p.token }).catch((err: Error) => ({ status: 0, body: err.message }))),
  );
  const ms = performance.now() - t;
  const statuses: Record<string, number> = {};
  const pairs = new Set<string>();
  for (const r of results) {
    statuses[r.status] = (statuses[r.status] ?? 0) + 1;
    if (r.status === 200) pairs.add((JSON.parse(r.body) as { refreshToken: string }).refreshToken);
  }
  agent.destroy();
  return { ms, statuses, distinctPairs: pairs.size };
}

/** `inflight` loops refreshing distinct sessions (never two refreshes of one session at once), for a bounded time. */
async function refreshLoad(p: { url: string; tokens: string[]; inflight: number; warmupMs: number; durationMs: number }): Promise<RateResult & { statuses: Record<string, number> }> {
  const agent = new Agent({ keepAlive: true, maxSockets: p.inflight });
  const sessions = p.tokens.map((token) => ({ token, busy: false }));
  const statuses: Record<string, number> = {};
  const measuredFrom = performance.now() + p.warmupMs;
  let next = 0;
  const result = await timedLoops(p, async () => {
    let s = sessions[next++ % sessions.length]!;
    for (let k = 0; s.busy && k < sessions.length; k++) s = sessions[next++ % sessions.length]!;
    if (s.busy) {
      await sleep(1);
      return 'skipped';
    }
    s.busy = true;
    const start = performance.now();
    const r = await post(agent, p.url, '/auth/refresh', { refreshToken: s.token }).catch((err: Error) => ({ status: 0, body: err.message }));
    const end = performance.now();
    s.busy = false;
    if (end >= measuredFrom && end <= measuredFrom + p.durationMs) statuses[r.status] = (statuses[r.status] ?? 0) + 1;
    if (r.status !== 200) return { start, end, error: `${r.status} ${r.body.slice(0, 200)}` };
    s.token = (JSON.parse(r.body) as { refreshToken: string }).refreshToken;
    return { start, end };
  });
  agent.destroy();
  return { ...result, statuses };
}

// ---------------------------------------------------------------- open-loop load (mailbox and soak phases)

/**
 * Starts `op(i)` at `rate` per second for `ms`, open loop: on schedule whether or not the earlier ones have
 * answered (a closed loop would slow down with the server and hide its queueing). Resolves once every started op
 * has finished; returns how many were started.
 */
async function openLoop(rate: number, ms: number, op: (i: number) => Promise<void>): Promise<number> {
  const start = performance.now();
  const running = new Set<Promise<void>>();
  let started = 0;
  for (;;) {
    const elapsed = performance.now() - start;
    if (elapsed >= ms) break;
    const due = Math.floor((elapsed / 1000) * rate) + 1;
    while (started < due) {
      const done: Promise<void> = op(started++)
        .catch(() => undefined)
        .finally(() => running.delete(done));
      running.add(done);
    }
    await sleep(2);
  }
  await Promise.all(running);
  return started;
}

/** Latencies kept per window of `bucketMs` from `from` (by when the operation started), and over all. */
class Windows {
  readonly all = new Histogram();
  private readonly parts = new Map<number, Array<[number, number]>>();
  private readonly pending = new Map<number, Histogram>();

  constructor(
    private readonly from: number,
    private readonly bucketMs: number,
  ) {}

  record(start: number, ms: number): void {
    this.all.record(ms);
    if (!Number.isFinite(this.bucketMs)) return;
    const k = Math.floor((start - this.from) / this.bucketMs);
    let h = this.pending.get(k);
    if (!h) this.pending.set(k, (h = new Histogram()));
    h.record(ms);
  }

  /** Each window's latencies, sparse, in window order (an empty window: []). */
  toSparse(): Array<Array<[number, number]>> {
    for (const [k, h] of this.pending) this.parts.set(k, h.toSparse());
    this.pending.clear();
    const last = Math.max(-1, ...this.parts.keys());
    return Array.from({ length: last + 1 }, (_, k) => this.parts.get(k) ?? []);
  }
}

type Frame = { id?: number | string; ok?: boolean; error?: unknown; event?: string };

/** Asks over one socket, any number in flight, each resolved with its answer (or `ok: false` once the socket closed). */
function askerOf(ws: WebSocket): (to: string, type: string, payload: unknown) => Promise<Frame> {
  let n = 0;
  const pending = new Map<number, (frame: Frame) => void>();
  ws.on('message', (data) => {
    const frame = JSON.parse(data.toString()) as Frame;
    const answer = typeof frame.id === 'number' ? pending.get(frame.id) : undefined;
    if (!answer) return;
    pending.delete(frame.id as number);
    answer(frame);
  });
  ws.on('close', () => {
    for (const answer of pending.values()) answer({ ok: false, error: 'socket closed' });
    pending.clear();
  });
  return (to, type, payload) =>
    new Promise((resolve) => {
      const id = ++n;
      pending.set(id, resolve);
      ws.send(JSON.stringify({ id, to, type, payload }));
    });
}

/**
 * Asks at a steady `rate` per second, open loop, spread round-robin over `sockets` sockets, for warm-up + duration;
 * the latency of every ask started in the measured window, also per window of `bucketMs` (for the soak's first and
 * last minute).
 */
async function askPace(
  p: Target & { sockets: number; rate: number; to: string; type: string; warmupMs: number; durationMs: number; bucketMs?: number },
): Promise<RateResult & { windows?: Array<Array<[number, number]>> }> {
  const sockets = await Promise.all(Array.from({ length: p.sockets }, (_, i) => connect(p.url, tokenFor(p, i))));
  const ask = sockets.map(askerOf);
  const from = performance.now() + p.warmupMs;
  const end = from + p.durationMs;
  const windows = new Windows(from, p.bucketMs ?? Infinity);
  let count = 0;
  let errors = 0;
  let firstError: string | undefined;
  await openLoop(p.rate, p.warmupMs + p.durationMs, async (i) => {
    const start = performance.now();
    const frame = await ask[i % ask.length]!(p.to, p.type, {});
    if (start < from || start > end) return;
    if (frame.ok === false) {
      errors += 1;
      firstError ??= JSON.stringify(frame.error);
    } else {
      count += 1;
      windows.record(start, performance.now() - start);
    }
  });
  await Promise.all(sockets.map((ws) => closeAndWait(ws)));
  const seconds = p.durationMs / 1000;
  return {
    count,
    errors,
    seconds,
    rate: count / seconds,
    latency: windows.all.toSparse(),
    ...(p.bucketMs ? { windows: windows.toSparse() } : {}),
    ...(firstError ? { firstError } : {}),
  };
}

/** `inflight` loops of `POST /auth/guest` (each a new guest user, device and session), for a bounded time. */
async function guestLoad(p: { url: string; inflight: number; warmupMs: number; durationMs: number }): Promise<RateResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: p.inflight });
  const result = await timedLoops(p, async () => {
    const start = performance.now();
    const r = await post(agent, p.url, '/auth/guest', {}).catch((err: Error) => ({ status: 0, body: err.message }));
    const end = performance.now();
    return r.status === 200 ? { start, end } : { start, end, error: `${r.status} ${r.body.slice(0, 200)}` };
  });
  agent.destroy();
  return result;
}

interface AuthKind {
  count: number;
  errors: number;
  latency: Array<[number, number]>;
  statuses: Record<string, number>;
  firstError?: string;
}

function authKind(): AuthKind & { hist: Histogram } {
  return { count: 0, errors: 0, latency: [], statuses: {}, hist: new Histogram() };
}

function settleKind(k: AuthKind & { hist: Histogram }): AuthKind {
  const { hist, ...rest } = k;
  return { ...rest, latency: hist.toSparse() };
}

/**
 * An open-loop storm of `rate` auth requests per second for warm-up + duration: a share `refreshShare` of them
 * refreshes (each of a different session, each token presented once), the rest guest sign-ins.
 */
async function authStorm(p: { url: string; refreshTokens: string[]; rate: number; refreshShare: number; warmupMs: number; durationMs: number }): Promise<{ guest: AuthKind; refresh: AuthKind; started: number }> {
  const agent = new Agent({ keepAlive: true, maxSockets: 256 });
  const kinds = { guest: authKind(), refresh: authKind() };
  const from = performance.now() + p.warmupMs;
  const end = from + p.durationMs;
  let nextToken = 0;
  const started = await openLoop(p.rate, p.warmupMs + p.durationMs, async (i) => {
    const refresh = Math.floor((i + 1) * p.refreshShare) > Math.floor(i * p.refreshShare) && nextToken < p.refreshTokens.length;
    const kind = refresh ? kinds.refresh : kinds.guest;
    const start = performance.now();
    const r = await (refresh ? post(agent, p.url, '/auth/refresh', { refreshToken: p.refreshTokens[nextToken++] }) : post(agent, p.url, '/auth/guest', {})).catch(
      (err: Error) => ({ status: 0, body: err.message }),
    );
    if (start < from || start > end) return;
    kind.statuses[r.status] = (kind.statuses[r.status] ?? 0) + 1;
    if (r.status === 200) {
      kind.count += 1;
      kind.hist.record(performance.now() - start);
    } else {
      kind.errors += 1;
      kind.firstError ??= `${r.status} ${r.body.slice(0, 200)}`;
    }
  });
  agent.destroy();
  return { guest: settleKind(kinds.guest), refresh: settleKind(kinds.refresh), started };
}

/**
 * The soak: `rate` cycles per second, open loop, for `durationMs`; a cycle is a guest sign-in, a refresh of the
 * session it opened, and a logout with the refreshed token, one after the other. Every request's latency is kept
 * per window of `bucketMs` (by when it started).
 */
async function soakCycles(p: { url: string; rate: number; durationMs: number; bucketMs: number }): Promise<{
  cycles: number;
  completed: number;
  errors: number;
  statuses: Record<string, number>;
  windows: Array<Array<[number, number]>>;
  firstError?: string;
}> {
  const agent = new Agent({ keepAlive: true, maxSockets: 256 });
  const windows = new Windows(performance.now(), p.bucketMs);
  const statuses: Record<string, number> = {};
  let completed = 0;
  let errors = 0;
  let firstError: string | undefined;
  const step = async (path: string, body: unknown, want: number): Promise<string | null> => {
    const start = performance.now();
    const r = await post(agent, p.url, path, body).catch((err: Error) => ({ status: 0, body: err.message }));
    windows.record(start, performance.now() - start);
    statuses[`${path} ${r.status}`] = (statuses[`${path} ${r.status}`] ?? 0) + 1;
    if (r.status !== want) {
      errors += 1;
      firstError ??= `${path}: ${r.status} ${r.body.slice(0, 200)}`;
      return null;
    }
    return r.body;
  };
  const cycles = await openLoop(p.rate, p.durationMs, async () => {
    const signedIn = await step('/auth/guest', {}, 200);
    if (signedIn === null) return;
    const refreshed = await step('/auth/refresh', { refreshToken: (JSON.parse(signedIn) as { refreshToken: string }).refreshToken }, 200);
    if (refreshed === null) return;
    if ((await step('/auth/logout', { refreshToken: (JSON.parse(refreshed) as { refreshToken: string }).refreshToken }, 204)) !== null) completed += 1;
  });
  agent.destroy();
  return { cycles, completed, errors, statuses, windows: windows.toSparse(), ...(firstError ? { firstError } : {}) };
}

// ---------------------------------------------------------------- revocation latency (several nodes)

export interface RevocationResult {
  /** Revocations timed (the warm-up left out). */
  samples: number;
  /** Revoke sent → the revoked session's socket's `close` event. */
  close: Array<[number, number]>;
  /** Revoke sent → its answer. */
  answer: Array<[number, number]>;
  /** Timed revocations whose socket's close event came after the answer (two sockets: the client sees no order between them). */
  closedAfterAnswer: number;
  /** The close codes seen, with their counts. */
  codes: Record<string, number>;
  errors: number;
  firstError?: string;
}

/**
 * Revocation latency: one socket per session held on `holderUrl` and an admin's socket on `adminUrl` (the same server
 * or another node), all in this process so that one clock times both; the sessions are revoked one at a time
 * (`SessionStore.Revoke` on the admin's socket), each timed from the ask to its socket's `close` event and to the
 * answer. The first `warmup` revocations are not counted.
 */
async function revokeLatency(p: {
  adminUrl: string;
  adminToken: string;
  holderUrl: string;
  sessions: Array<{ sid: string; token: string }>;
  warmup: number;
  concurrency: number;
  timeoutMs: number;
}): Promise<RevocationResult> {
  const admin = await connect(p.adminUrl, p.adminToken);
  const ask = askerOf(admin);
  const held: WebSocket[] = [];
  await pool(p.sessions.length, p.concurrency, async (i) => {
    held[i] = await connect(p.holderUrl, p.sessions[i]!.token);
  });
  const close = new Histogram();
  const answer = new Histogram();
  const codes: Record<string, number> = {};
  let closedAfterAnswer = 0;
  let errors = 0;
  let firstError: string | undefined;
  for (const [i, { sid }] of p.sessions.entries()) {
    let timer: NodeJS.Timeout | undefined;
    const closed = new Promise<{ at: number; code: number } | null>((resolve) => {
      held[i]!.once('close', (code) => resolve({ at: performance.now(), code }));
      timer = setTimeout(() => resolve(null), p.timeoutMs);
    });
    const start = performance.now();
    const frame = await ask('SessionStore', 'Revoke', { sid });
    const answeredAt = performance.now();
    const seen = await closed;
    clearTimeout(timer);
    if (i < p.warmup) continue;
    if (frame.ok === false || seen === null) {
      errors += 1;
      firstError ??= frame.ok === false ? JSON.stringify(frame.error) : `a revoked session's socket was still open ${p.timeoutMs} ms after the Revoke`;
      continue;
    }
    codes[seen.code] = (codes[seen.code] ?? 0) + 1;
    close.record(seen.at - start);
    answer.record(answeredAt - start);
    if (seen.at > answeredAt) closedAfterAnswer += 1;
  }
  for (const ws of held) ws.terminate();
  await closeAndWait(admin);
  return { samples: p.sessions.length - p.warmup, close: close.toSparse(), answer: answer.toSparse(), closedAfterAnswer, codes, errors, ...(firstError ? { firstError } : {}) };
}

serve({ handshakes, load, idleOpen, idleClose, stormConnect, stormWait, stormClose, refreshStorm, refreshLoad, askPace, guestLoad, authStorm, soakCycles, revokeLatency });
process.send?.({ event: 'ready', data: null });
