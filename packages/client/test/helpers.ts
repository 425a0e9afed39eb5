/**
 * Test helpers for @greenroom/client: an instrumented socket factory (every frame sent and every close() call
 * recorded, the latter with the readyState at the time; how many sockets are OPEN at once), a tiny fake WebSocket server built on `ws` whose
 * upgrades can be held back and whose sockets the test scripts, and waits that resolve on events rather than on
 * wall-clock bounds. Waiting on a condition and asserting an error code come from @greenroom/server/testing.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { WebSocket, WebSocketServer } from 'ws';
import type { ConnectionState, GreenroomClient, SocketFactory, SocketLike, TokenPair } from '@greenroom/client';

export const CONNECTING = 0;
export const OPEN = 1;
export const CLOSED = 3;

export interface SocketRecord {
  index: number;
  url: string;
  headers: Record<string, string> | undefined;
  ws: WebSocket;
  createdAt: number;
  openedAt?: number;
  closedAt?: number;
  closeCode?: number;
  closeReason?: string;
  /** Every frame the client sent on it, parsed. */
  sent: any[];
  /** Every close() the client called on it (not ws's own calls), with the readyState at that moment. */
  closeCalls: Array<{ readyState: number; code?: number }>;
  /** Resolves when the socket is CLOSED (whoever closed it, and whether or not it ever opened). */
  closed: Promise<void>;
}

/** A socket factory over ws's WebSocket that records everything the client does with its sockets. */
export function instrumentedFactory() {
  const sockets: SocketRecord[] = [];
  let maxOpenAtOnce = 0;
  const created: Array<() => void> = [];

  const countOpen = () => sockets.filter((s) => s.ws.readyState === OPEN).length;

  const factory: SocketFactory = (url, headers) => {
    const ws = new WebSocket(url, { headers });
    let markClosed!: () => void;
    const record: SocketRecord = {
      index: sockets.length,
      url,
      headers,
      ws,
      createdAt: performance.now(),
      sent: [],
      closeCalls: [],
      closed: new Promise<void>((r) => (markClosed = r)),
    };
    sockets.push(record);
    const send = ws.send.bind(ws);
    ws.send = ((data: string) => {
      record.sent.push(JSON.parse(data));
      send(data);
    }) as typeof ws.send;
    const close = ws.close.bind(ws);
    ws.close = (code?: number, reason?: string | Buffer) => {
      // ws calls close() on itself to answer a peer's close frame; only calls from outside ws (the client) count.
      const caller = new Error().stack?.split('\n')[2] ?? '';
      if (!/[\\/]ws[\\/]lib[\\/]/.test(caller)) record.closeCalls.push({ readyState: ws.readyState, code });
      close(code, reason);
    };
    // Registered before the client's handlers: counted after every listener of this 'open' has run (an abandoned
    // attempt is closed by the client's onopen, i.e. it is CLOSING by then and not counted as live).
    ws.on('open', () => {
      record.openedAt = performance.now();
      queueMicrotask(() => (maxOpenAtOnce = Math.max(maxOpenAtOnce, countOpen())));
    });
    ws.on('close', (code, reason) => {
      record.closedAt = performance.now();
      record.closeCode = code;
      record.closeReason = reason.toString();
      markClosed();
    });
    for (const w of created.splice(0)) w();
    return ws as unknown as SocketLike;
  };

  return {
    factory,
    sockets,
    get maxOpenAtOnce() {
      return maxOpenAtOnce;
    },
    openNow: countOpen,
    /** Every close() call made while the socket was CONNECTING (must stay empty). */
    closesWhileConnecting: () => sockets.flatMap((s) => s.closeCalls.filter((c) => c.readyState === CONNECTING).map(() => s.index)),
    /** Resolves once `n` sockets have been created in all. */
    async created(n: number): Promise<SocketRecord> {
      while (sockets.length < n) await new Promise<void>((r) => created.push(r));
      return sockets[n - 1]!;
    },
  };
}

export type Instrumented = ReturnType<typeof instrumentedFactory>;

/** Resolves when the client is in `state` (at once if it already is). */
export function waitForState(client: GreenroomClient, state: ConnectionState): Promise<void> {
  if (client.state === state) return Promise.resolve();
  return new Promise((resolve) => {
    const off = client.on(state, () => {
      off();
      resolve();
    });
  });
}

/** Records every connection-state event, in order. */
export function recordStates(client: GreenroomClient): ConnectionState[] {
  const seen: ConnectionState[] = [];
  for (const s of ['connecting', 'open', 'reconnecting', 'closed', 'signedOut', 'blocked'] as const) client.on(s, () => seen.push(s));
  return seen;
}

/** Settles the promise into a record without ever rejecting (so an early rejection is never "unhandled"). */
export function settle<T>(p: Promise<T>): Promise<{ ok: true; value: T } | { ok: false; error: any }> {
  return p.then(
    (value) => ({ ok: true as const, value }),
    (error) => ({ ok: false as const, error }),
  );
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Bearer tokens that a fake server never checks. */
export function fakeTokens(accessExpiresAt = Date.now() + 15 * 60_000): TokenPair {
  return { uid: 'u1', role: 'user', sid: 's1', accessToken: 'access', refreshToken: 'refresh', accessExpiresAt, refreshExpiresAt: Date.now() + 86_400_000 };
}

export interface FakeConnection {
  n: number;
  ws: WebSocket;
  req: IncomingMessage;
  openedAt: number;
  frames: any[];
  closed: Promise<{ code: number; reason: string }>;
}

export interface FakeServerOptions {
  /** Holds upgrade number `n` (1-based) back this many ms before completing it (default 0). */
  holdUpgrade?: (n: number) => number;
  /** Refuses upgrade number `n` with this HTTP status instead of completing it (default: never). */
  refuseUpgrade?: (n: number) => number | undefined;
  /** Called once a socket is open. */
  onConnection?: (c: FakeConnection) => void;
  /** Called for every frame received (parsed JSON); default: answers every ask with `{ok: true, result: {echo}}`. */
  onFrame?: (c: FakeConnection, frame: any) => void;
}

/** A tiny WebSocket server on loopback for scripting what the client sees (closes, held upgrades, late replies). */
export async function startFakeServer(options: FakeServerOptions = {}) {
  const wss = new WebSocketServer({ noServer: true });
  const http: Server = createServer((_req, res) => res.writeHead(404).end());
  const connections: FakeConnection[] = [];
  const upgradeTimes: number[] = [];
  const rawSockets = new Set<Socket>();
  let upgrades = 0;
  const waiters: Array<() => void> = [];

  http.on('connection', (s) => {
    rawSockets.add(s);
    s.on('close', () => rawSockets.delete(s));
  });
  http.on('upgrade', (req, socket, head) => {
    const n = ++upgrades;
    upgradeTimes.push(performance.now());
    socket.on('error', () => socket.destroy());
    const refuse = options.refuseUpgrade?.(n);
    if (refuse !== undefined) {
      socket.end(`HTTP/1.1 ${refuse} Refused\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
      return;
    }
    const complete = () => {
      if (socket.destroyed) return;
      wss.handleUpgrade(req, socket, head, (ws) => {
        let done!: (v: { code: number; reason: string }) => void;
        const c: FakeConnection = { n, ws, req, openedAt: performance.now(), frames: [], closed: new Promise((r) => (done = r)) };
        ws.on('close', (code, reason) => done({ code, reason: reason.toString() }));
        ws.on('error', () => undefined);
        ws.on('message', (data) => {
          let frame: any;
          try {
            frame = JSON.parse(data.toString());
          } catch {
            return;
          }
          c.frames.push(frame);
          if (options.onFrame) options.onFrame(c, frame);
          else ws.send(JSON.stringify({ id: frame.id, ok: true, result: { echo: frame.type } }));
        });
        connections.push(c);
        options.onConnection?.(c);
        for (const w of waiters.splice(0)) w();
      });
    };
    const hold = options.holdUpgrade?.(n) ?? 0;
    if (hold > 0) setTimeout(complete, hold);
    else complete();
  });
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  const port = (http.address() as AddressInfo).port;

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    connections,
    upgradeTimes,
    get upgrades() {
      return upgrades;
    },
    /** Resolves once `n` sockets have opened in all. */
    async opened(n: number): Promise<FakeConnection> {
      while (connections.length < n) await new Promise<void>((r) => waiters.push(r));
      return connections[n - 1]!;
    },
    async close(): Promise<void> {
      for (const c of wss.clients) c.terminate();
      for (const s of rawSockets) s.destroy();
      wss.close();
      await new Promise<void>((r) => http.close(() => r()));
    },
  };
}

export type FakeServer = Awaited<ReturnType<typeof startFakeServer>>;

/** A loopback port nobody listens on (taken from the OS, then released). */
export async function deadPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}
