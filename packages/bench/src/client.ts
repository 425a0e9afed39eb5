/**
 * A load-client process of the bench. It drives one server (Greenroom or the raw `ws` baseline) with exactly the
 * same code either way: the only difference is the bearer token it sends when it is given tokens. Methods (called
 * over IPC by run.ts): handshakes, load, idleOpen/idleClose, stormConnect/stormWait/stormClose, refreshStorm,
 * refreshLoad. Every method is bounded in time.
 */
import { Agent, request } from 'node:http';
import WebSocket from 'ws';
import { serve } from './ipc.js';
import { Histogram, jitter, sleep } from './stats.js';

interface Target {
  /** http://127.0.0.1:port */
  url: string;
  /** Bearer tokens, used round-robin (none: the raw baseline). */
  tokens?: string[];
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

async function idleOpen(p: Target & { count: number; offset: number; concurrency: number }): Promise<{ opened: number; errors: number; ms: number; firstError?: string }> {
  const t = performance.now();
  let errors = 0;
  let firstError: string | undefined;
  await pool(p.count, p.concurrency, async (i) => {
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        idle.push(await connect(p.url, tokenFor(p, p.offset + i)));
        return;
      } catch (err) {
        errors += 1;
        firstError ??= String(err);
        await sleep(100);
      }
    }
  });
  return { opened: idle.length, errors, ms: performance.now() - t, ...(firstError ? { firstError } : {}) };
}

async function idleClose(): Promise<{ closed: number }> {
  const n = idle.length;
  for (const ws of idle) ws.terminate();
  idle = [];
  return { closed: n };
}

// ---------------------------------------------------------------- reconnect storm

interface StormClient {
  token: string | undefined;
  ws: WebSocket | null;
  state: 'initial' | 'down' | 'done' | 'failed';
}

const storm = {
  clients: [] as StormClient[],
  url: '',
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

async function reconnect(c: StormClient, attempt: number): Promise<void> {
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

/** Opens `count` sockets that, once closed by the server, reconnect with jittered backoff and ask once. */
async function stormConnect(
  p: Target & { count: number; offset: number; concurrency: number; jitterMs: number; maxBackoffMs: number; to: string; type: string },
): Promise<{ opened: number; errors: number; ms: number; firstError?: string }> {
  Object.assign(storm, {
    clients: [],
    url: p.url,
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
    const c: StormClient = { token: tokenFor(p, p.offset + i), ws: null, state: 'initial' };
    for (let attempt = 0; attempt < 3 && !c.ws; attempt++) {
      try {
        c.ws = await connect(p.url, c.token);
      } catch (err) {
        errors += 1;
        firstError ??= String(err);
        await sleep(100);
      }
    }
    if (!c.ws) return;
    storm.clients.push(c);
    c.ws.once('close', () => {
      storm.firstCloseAt ||= Date.now();
      c.state = 'down';
      c.ws = null;
      reconnectLater(c, 0);
    });
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

serve({ handshakes, load, idleOpen, idleClose, stormConnect, stormWait, stormClose, refreshStorm, refreshLoad });
process.send?.({ event: 'ready', data: null });
