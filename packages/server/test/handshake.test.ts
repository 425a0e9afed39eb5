/**
 * The green room (docs/protocol.md): the HTTP 101 is written only after SessionStore has registered the connection, so a
 * client's very first ask — sent in the same tick as its 'open' event — already resolves its own session; and a
 * socket's registration goes away when it closes.
 *
 * Everything here is real: a server on loopback, raw `ws` sockets, a store on disk (or a MemoryStore wrapped so a
 * test can hold its reads). Tests assert order and outcomes, never how long anything took.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { setImmediate as nextTurn } from 'node:timers/promises';
import WebSocket from 'ws';
import type { SessionView, UserView } from '../src/actors/records.js';
import type { Collection, ScanOptions, ScanPage, Store, StoredRecord, WriteOp } from '../src/store/store.js';
import { MemoryStore } from '../src/store/memory-store.js';
import { eventually, issueSession, startTestServer, TestClient, wsUrl, type TestServer } from '../src/testing/index.js';
import { SessionStore } from '../src/actors/session-store.js';

interface Stats {
  connections: number;
  sessions: number;
}
const stats = (server: TestServer) => server.ask(SessionStore.Stats);

/** Lets the event loop turn `n` times (I/O included): enough for anything already under way to move on. */
async function turns(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await nextTurn();
}

/** Runs `jobs` with at most `limit` in flight, keeping results in job order. */
async function pool<T>(count: number, limit: number, job: (i: number) => Promise<T>): Promise<T[]> {
  const results: T[] = new Array(count);
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const i = next++;
      results[i] = await job(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, count) }, worker));
  return results;
}

interface Replies {
  ws: WebSocket;
  sessions: { ok: boolean; result?: { items: Array<SessionView & { current: boolean }>; nextCursor: string | null }; error?: unknown };
  user: { ok: boolean; result?: UserView; error?: unknown };
}

/**
 * Opens a raw socket and, inside the 'open' handler itself (same tick, no await), sends its first two asks:
 * SessionStore.GetOwn and UserStore.GetOwn. Resolves once both are answered.
 */
function openAndAskAtOnce(url: string, token: string): Promise<Replies> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers: { Authorization: `Bearer ${token}` }, perMessageDeflate: false });
    const replies = new Map<unknown, any>();
    ws.once('open', () => {
      ws.send(JSON.stringify({ id: 1, to: 'SessionStore', type: 'GetOwn', payload: {} }));
      ws.send(JSON.stringify({ id: 2, to: 'UserStore', type: 'GetOwn' }));
    });
    ws.on('message', (data) => {
      const frame = JSON.parse(data.toString());
      replies.set(frame.id, frame);
      if (replies.has(1) && replies.has(2)) resolve({ ws, sessions: replies.get(1), user: replies.get(2) });
    });
    ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
    ws.once('error', reject);
    ws.once('close', (code) => reject(new Error(`socket closed (${code}) before both replies`)));
  });
}

function closeAll(sockets: WebSocket[]): Promise<void> {
  return Promise.all(
    sockets.map(
      (ws) =>
        new Promise<void>((resolve) => {
          if (ws.readyState === WebSocket.CLOSED) return resolve();
          ws.once('close', () => resolve());
          if (ws.readyState === WebSocket.OPEN) ws.close(1000);
          else ws.terminate();
        }),
    ),
  ).then(() => undefined);
}

describe('the green room: the first ask after the 101 already finds its session', () => {
  const USERS = 10;
  const SESSIONS_PER_USER = 10; // 100 sessions in all (the per-user cap is 20)
  const CONNECTIONS_PER_SESSION = 20; // 2,000 connections
  const IN_FLIGHT = 200;

  let server: TestServer;
  const sockets: WebSocket[] = [];

  beforeAll(async () => {
    // Each user holds hundreds of these sockets: the per-user and per-session quotas are not what is tested here.
    server = await startTestServer({ config: { maxConnectionsPerUser: 10_000, maxConnectionsPerSession: 10_000 } });
  });

  afterAll(async () => {
    await closeAll(sockets);
    await server?.close();
  });

  it(
    'answers 2,000 first asks, each sent in the same tick as its open event, with the caller’s own session and user',
    async () => {
      // Sessions are issued directly (no password hashing); each user owns several of them.
      const sessions: Array<Awaited<ReturnType<typeof issueSession>>> = [];
      for (let u = 0; u < USERS; u++) {
        const first = await issueSession(server, { role: 'user' });
        sessions.push(first);
        for (let s = 1; s < SESSIONS_PER_USER; s++) sessions.push(await issueSession(server, { uid: first.uid }));
      }
      const sidsOf = new Map<string, string[]>();
      for (const s of sessions) sidsOf.set(s.uid, [...(sidsOf.get(s.uid) ?? []), s.sid]);

      const total = sessions.length * CONNECTIONS_PER_SESSION;
      const url = wsUrl(server);
      const results = await pool(total, IN_FLIGHT, async (i) => {
        const session = sessions[i % sessions.length]!;
        const replies = await openAndAskAtOnce(url, session.accessToken);
        sockets.push(replies.ws);
        return { session, replies };
      });

      expect(results).toHaveLength(2000);
      for (const { session, replies } of results) {
        // SessionStore.GetOwn: the caller's sessions, its own marked current and counting this very connection.
        expect(replies.sessions.ok).toBe(true);
        const items = replies.sessions.result!.items;
        expect(items.every((s) => s.uid === session.uid)).toBe(true);
        expect(items.map((s) => s.sid).sort()).toEqual([...sidsOf.get(session.uid)!].sort());
        const current = items.filter((s) => s.current);
        expect(current).toHaveLength(1);
        expect(current[0]!.sid).toBe(session.sid);
        expect(current[0]!.connections).toBeGreaterThanOrEqual(1);
        expect(current[0]!.connections).toBeLessThanOrEqual(CONNECTIONS_PER_SESSION);

        // UserStore.GetOwn: the caller's own user.
        expect(replies.user.ok).toBe(true);
        expect(replies.user.result!.uid).toBe(session.uid);
        expect(replies.user.result!.username).toBe(session.username);
      }

      // Every connection is registered to its session: 20 per session, 2,000 in all.
      expect((await stats(server)).connections).toBe(total);
      const all = await server.ask(SessionStore.GetAll, { limit: 500 });
      const bySid = new Map(all.items.map((s) => [s.sid, s]));
      for (const s of sessions) expect(bySid.get(s.sid)?.connections).toBe(CONNECTIONS_PER_SESSION);

      // And every registration is removed once its socket has closed.
      await closeAll(sockets.splice(0));
      await eventually(async () => (await stats(server)).connections === 0, { timeoutMs: 30_000 });
    },
    180_000,
  );
});

/**
 * A MemoryStore whose reads of the `sessions` collection can be held until the test releases them: the
 * registration in the green room reads the session, so holding that read holds the upgrade.
 */
class HoldableStore implements Store {
  private held: { reached: () => void; released: Promise<void> } | null = null;

  constructor(readonly inner: Store = new MemoryStore()) {}

  /** From now on every `get('sessions', …)` waits for `release()`; `reached` resolves when the first one starts. */
  holdSessionReads(): { reached: Promise<void>; release(): void } {
    let reached!: () => void;
    let release!: () => void;
    const reachedP = new Promise<void>((r) => (reached = r));
    const released = new Promise<void>((r) => (release = r));
    this.held = { reached, released };
    return {
      reached: reachedP,
      release: () => {
        this.held = null;
        release();
      },
    };
  }

  async get<T extends StoredRecord>(collection: Collection, id: string): Promise<T | undefined> {
    const held = this.held;
    if (collection === 'sessions' && held) {
      held.reached();
      await held.released;
    }
    return this.inner.get<T>(collection, id);
  }
  put(collection: Collection, id: string, value: StoredRecord): Promise<void> {
    return this.inner.put(collection, id, value);
  }
  delete(collection: Collection, id: string): Promise<void> {
    return this.inner.delete(collection, id);
  }
  update<T extends StoredRecord>(collection: Collection, id: string, change: (current: T | undefined) => T | undefined): Promise<T | undefined> {
    return this.inner.update<T>(collection, id, change);
  }
  write(ops: readonly WriteOp[]): Promise<void> {
    return this.inner.write(ops);
  }
  scan<T extends StoredRecord>(collection: Collection, options?: ScanOptions): Promise<ScanPage<T>> {
    return this.inner.scan<T>(collection, options);
  }
  count(collection: Collection): Promise<number> {
    return this.inner.count(collection);
  }
  findBy<T extends StoredRecord>(collection: Collection, field: string, value: string): Promise<Array<{ id: string; value: T }>> {
    return this.inner.findBy<T>(collection, field, value);
  }
  ping(): Promise<void> {
    return this.inner.ping();
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

describe('a slow registration holds the 101', () => {
  let server: TestServer | undefined;
  let store: HoldableStore;
  const sockets: WebSocket[] = [];

  afterEach(async () => {
    await closeAll(sockets.splice(0));
    await server?.close();
    server = undefined;
  });

  it('writes no 101 until the registration’s store read is released, then the first ask finds the session', async () => {
    store = new HoldableStore();
    server = await startTestServer({ store });
    const session = await issueSession(server);

    const events: string[] = [];
    const hold = store.holdSessionReads();
    const ws = new WebSocket(wsUrl(server), { headers: { Authorization: `Bearer ${session.accessToken}` } });
    sockets.push(ws);
    const firstReply = new Promise<any>((resolve) => ws.once('message', (data) => resolve(JSON.parse(data.toString()))));
    ws.once('open', () => {
      events.push('open');
      ws.send(JSON.stringify({ id: 'first', to: 'SessionStore', type: 'GetOwn' }));
    });

    // The server is inside Register, reading the session; let the loop turn well past that point.
    await hold.reached;
    await turns(20);
    expect(events).toEqual([]);
    expect(ws.readyState).toBe(WebSocket.CONNECTING);

    events.push('released');
    hold.release();
    const reply = await firstReply;

    expect(events).toEqual(['released', 'open']);
    expect(reply.id).toBe('first');
    expect(reply.ok).toBe(true);
    const current = reply.result.items.find((s: SessionView & { current: boolean }) => s.current);
    expect(current).toMatchObject({ sid: session.sid, uid: session.uid, connections: 1 });
  });

  it('answers a plain 401 SESSION_REVOKED, never a 101, when the session is revoked while the upgrade waits', async () => {
    store = new HoldableStore();
    server = await startTestServer({ store });
    const session = await issueSession(server);

    const events: string[] = [];
    const hold = store.holdSessionReads();
    const ws = new WebSocket(wsUrl(server), { headers: { Authorization: `Bearer ${session.accessToken}` } });
    sockets.push(ws);
    ws.once('open', () => events.push('open'));
    const refused = new Promise<{ status: number; body: string }>((resolve) =>
      ws.once('unexpected-response', (_req, res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      }),
    );
    ws.on('error', () => undefined);

    await hold.reached;
    // Another node revokes the session in the shared store while this upgrade is in the green room.
    const record = (await store.inner.get<StoredRecord>('sessions', session.sid))!;
    await store.inner.put('sessions', session.sid, { ...record, revokedAt: Date.now(), revokeReason: 'revoked' });
    events.push('released');
    hold.release();

    const answer = await refused;
    events.push(`refused ${answer.status}`);
    expect(events).toEqual(['released', 'refused 401']);
    expect(JSON.parse(answer.body)).toEqual({ error: { code: 'SESSION_REVOKED', message: expect.any(String) } });
    expect((await stats(server)).connections).toBe(0);
  });

  it('answers 503 UNAVAILABLE and registers nothing when the registration does not answer in time', async () => {
    store = new HoldableStore();
    server = await startTestServer({ store, config: { askTimeoutMs: 200 } });
    const session = await issueSession(server);

    const hold = store.holdSessionReads();
    const events: string[] = [];
    const ws = new WebSocket(wsUrl(server), { headers: { Authorization: `Bearer ${session.accessToken}` } });
    sockets.push(ws);
    ws.once('open', () => events.push('open'));
    const refused = new Promise<{ status: number; retryAfter: string | undefined; body: string }>((resolve) =>
      ws.once('unexpected-response', (_req, res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'], body }));
      }),
    );
    ws.on('error', () => undefined);

    await hold.reached;
    const answer = await refused;
    events.push(`refused ${answer.status}`);
    // The held registration now completes — after its upgrade was already refused.
    hold.release();

    // Stats queues behind Register (and the Unregister that undoes it) in SessionStore's mailbox.
    expect((await stats(server)).connections).toBe(0);
    expect(events).toEqual(['refused 503']);
    expect(answer.retryAfter).toMatch(/^\d+$/);
    expect(JSON.parse(answer.body)).toEqual({ error: { code: 'UNAVAILABLE', message: expect.any(String) } });
  });
});

describe('a closed socket’s registration is removed', () => {
  let server: TestServer;
  const clients: TestClient[] = [];

  beforeAll(async () => {
    server = await startTestServer();
  });

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await server?.close();
  });

  it('shows connections back to 1 to the session’s other socket once one of its two sockets closes', async () => {
    const session = await issueSession(server);
    const stays = await TestClient.connect(server, session.accessToken);
    const leaves = await TestClient.connect(server, session.accessToken);
    clients.push(stays, leaves);

    const connectionsOfCurrent = async () => {
      const reply = await stays.ask('SessionStore', 'GetOwn');
      expect(reply.ok).toBe(true);
      return (reply as { result: { items: Array<SessionView & { current: boolean }> } }).result.items.find((s) => s.current)!.connections;
    };

    expect(await connectionsOfCurrent()).toBe(2);
    await leaves.close();
    await eventually(async () => (await connectionsOfCurrent()) === 1);
    expect((await stats(server)).connections).toBe(1);
  });
});
