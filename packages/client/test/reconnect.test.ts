/**
 * @greenroom/client against a scripted fake server (a few lines over ws's WebSocketServer), for what a real
 * server never does on cue: retry-after closes (4008, a proxy's 1013), upgrades held while the client gives up,
 * late and duplicate replies, and a flurry of reconnects. Sockets come from an instrumented factory that records
 * every close() the client calls with the readyState at that moment, and how many sockets are OPEN at once.
 *
 * Timing: outcomes and order only, except the retry-after checks, which compare two timestamps against the lower
 * bound the client was told to respect (a delay the client chose, never an upper bound on anything).
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import { GreenroomClient, GreenroomClientError, type ClientOptions } from '@greenroom/client';
import { eventually, expectError } from '@greenroom/server/testing';
import {
  CLOSED,
  CONNECTING,
  OPEN,
  deadPort,
  fakeTokens,
  instrumentedFactory,
  recordStates,
  settle,
  sleep,
  startFakeServer,
  waitForState,
  type FakeServer,
  type Instrumented,
} from './helpers.js';

const FAST = { baseMs: 5, capMs: 20 };

const servers: FakeServer[] = [];
const clients: GreenroomClient[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function fake(options: Parameters<typeof startFakeServer>[0] = {}): Promise<FakeServer> {
  const s = await startFakeServer(options);
  servers.push(s);
  return s;
}

function client(url: string, inst: Instrumented, options: Partial<ClientOptions> = {}): GreenroomClient {
  const c = new GreenroomClient({ url, auth: { mode: 'tokens', tokens: fakeTokens() }, socket: inst.factory, backoff: FAST, ...options });
  clients.push(c);
  return c;
}

function jsonResponse(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });
}

describe('retry-after hints', () => {
  // Lower bound with a small allowance for timer/clock granularity; without the hint the delay would be < 20 ms.
  const SLACK_MS = 15;

  it.each([
    [4008, 'retry-after=1', 1000],
    [1013, 'retry-after=2', 2000],
    [1013, '', 1000],
  ])('close %i %j: the next attempt comes no sooner than %i ms after the close', async (code, reason, minGapMs) => {
    const server = await fake({ onConnection: (c) => c.n === 1 && c.ws.close(code, reason) });
    const inst = instrumentedFactory();
    const c = client(server.url, inst);
    const states = recordStates(c);
    await c.connect();
    await server.opened(2);
    await waitForState(c, 'open');

    const first = inst.sockets[0]!;
    expect(first.closeCode).toBe(code);
    expect(first.closeReason).toBe(reason);
    const second = inst.sockets[1]!;
    expect(second.createdAt - first.closedAt!).toBeGreaterThanOrEqual(minGapMs - SLACK_MS);
    // Nothing in between: one scheduled retry, not a burst of attempts.
    expect(inst.sockets).toHaveLength(2);
    expect(server.upgrades).toBe(2);
    expect(states).toEqual(['connecting', 'open', 'reconnecting', 'open']);
    await expect(c.ask('Echo', 'Ping')).resolves.toEqual({ echo: 'Ping' });
  });
});

describe('abandoned attempts and the one live socket', () => {
  it('an attempt superseded while CONNECTING is never closed in that state: handlers detached, closed once it opens', async () => {
    // Upgrade #1 is held well past the client's connect timeout; #2 completes at once.
    const held = await fake({ holdUpgrade: (n) => (n === 1 ? 400 : 0) });
    const inst = instrumentedFactory();
    const c = client(held.url, inst, { connectTimeoutMs: 60 });
    const states = recordStates(c);
    await c.connect();

    // The client gives up on #1 (still CONNECTING), opens #2 and uses it.
    await waitForState(c, 'open');
    const [first, second] = inst.sockets;
    expect(first!.ws.readyState).toBe(CONNECTING);
    expect(first!.closeCalls).toEqual([]);
    expect(second!.ws.readyState).toBe(OPEN);
    await expect(c.ask('Echo', 'Ping')).resolves.toEqual({ echo: 'Ping' });

    // #1 opens later: the client closes it then (1000), and nothing it receives reaches the client.
    await first!.closed;
    expect(first!.closeCalls).toEqual([{ readyState: OPEN, code: 1000 }]);
    const late = held.connections.find((x) => x.n === 1)!;
    await expect(late.closed).resolves.toMatchObject({ code: 1000 });
    expect(late.frames).toEqual([]);
    expect(inst.closesWhileConnecting()).toEqual([]);
    expect(inst.maxOpenAtOnce).toBe(1);
    expect(c.state).toBe('open');
    expect(states).toEqual(['connecting', 'reconnecting', 'open']);
    // The ask went over #2 only.
    expect(held.connections.find((x) => x.n === 2)!.frames.map((f) => f.type)).toEqual(['Ping']);
  });

  it('close() while CONNECTING does not call close() on the connecting socket; it is closed once it opens', async () => {
    const server = await fake({ holdUpgrade: () => 150 });
    const inst = instrumentedFactory();
    const c = client(server.url, inst);
    const pending = settle(c.ask('Echo', 'Ping'));
    await c.connect();
    const socket = await inst.created(1);
    expect(socket.ws.readyState).toBe(CONNECTING);

    c.close();
    expect(c.state).toBe('closed');
    expect(socket.closeCalls).toEqual([]);
    const outcome = await pending;
    expect(outcome.ok).toBe(false);
    expect(outcome.ok || (outcome.error as GreenroomClientError).code).toBe('CLOSED');

    await socket.closed;
    expect(socket.closeCalls).toEqual([{ readyState: OPEN, code: 1000 }]);
    expect(socket.ws.readyState).toBe(CLOSED);
    await expect(server.connections[0]!.closed).resolves.toMatchObject({ code: 1000 });
    expect(server.connections[0]!.frames).toEqual([]);
    expect(inst.sockets).toHaveLength(1);
    await expectError(c.ask('Echo', 'Ping'), 'CLOSED');
  });

  it('only one live socket at any time across a flurry of reconnects, connect timeouts and close()/connect()', async () => {
    // Deterministic pseudo-random script: some upgrades held past the connect timeout, sockets dropped soon after
    // opening with assorted codes (or cut without a close frame).
    let seed = 7;
    const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const codes = [1001, 1011, 1012, 4000];
    const server = await fake({
      holdUpgrade: () => (rand() < 0.3 ? 40 + Math.floor(rand() * 60) : Math.floor(rand() * 10)),
      onConnection: (conn) => {
        const r = rand();
        setTimeout(
          () => {
            if (conn.ws.readyState !== OPEN) return;
            if (r < 0.2) conn.ws.terminate();
            else conn.ws.close(codes[Math.floor(r * 10) % codes.length]!, 'flurry');
          },
          Math.floor(r * 15),
        );
      },
    });
    const inst = instrumentedFactory();
    const c = client(server.url, inst, { connectTimeoutMs: 30, backoff: { baseMs: 2, capMs: 10 } });
    await c.connect();
    let cycles = 0;
    while (inst.sockets.length < 80) {
      await sleep(5);
      if (++cycles % 20 === 0) {
        c.close();
        await c.connect();
      }
    }
    c.close();
    await Promise.all(inst.sockets.map((s) => s.closed));

    expect(inst.sockets.length).toBeGreaterThanOrEqual(80);
    expect(inst.maxOpenAtOnce).toBe(1);
    expect(inst.closesWhileConnecting()).toEqual([]);
    expect(inst.sockets.every((s) => s.ws.readyState === CLOSED)).toBe(true);
    // Some attempts really were abandoned while CONNECTING (otherwise this test proves little).
    const abandonedThenOpened = inst.sockets.filter((s) => s.openedAt !== undefined && s.closeCalls.length > 0 && s.closeCalls[0]!.readyState === OPEN);
    expect(abandonedThenOpened.length).toBeGreaterThan(0);
  });
});

describe('asks and the connection', () => {
  it('an ask in flight when the socket drops rejects CONNECTION_LOST, is not resent, and a late reply with its id is ignored', async () => {
    let lostId: unknown;
    const server = await fake({
      onFrame: (conn, frame) => {
        if (conn.n === 1) {
          lostId = frame.id;
          conn.ws.terminate(); // dropped with the ask unanswered
          return;
        }
        // On the next socket: a stale reply for the lost ask, the real answer, then a duplicate (error) answer.
        conn.ws.send(JSON.stringify({ id: lostId, ok: true, result: 'stale' }));
        conn.ws.send(JSON.stringify({ id: frame.id, ok: true, result: { echo: frame.type } }));
        conn.ws.send(JSON.stringify({ id: frame.id, ok: false, error: { code: 'INTERNAL', message: 'duplicate' } }));
      },
    });
    const inst = instrumentedFactory();
    const c = client(server.url, inst);
    await c.connect();
    await waitForState(c, 'open');

    const lost = await expectError(c.ask('Echo', 'First'), 'CONNECTION_LOST');
    expect(lost).toBeInstanceOf(GreenroomClientError);

    await waitForState(c, 'open');
    const settled: string[] = [];
    const second = c.ask('Echo', 'Second').then((v) => (settled.push('second'), v));
    const third = c.ask('Echo', 'Third').then((v) => (settled.push('third'), v));
    await expect(second).resolves.toEqual({ echo: 'Second' });
    await expect(third).resolves.toEqual({ echo: 'Third' });
    expect(settled).toEqual(['second', 'third']);
    // The lost ask was never sent again; every ask reached a server exactly once.
    const sent = server.connections.flatMap((x) => x.frames.map((f) => f.type));
    expect(sent).toEqual(['First', 'Second', 'Third']);
    expect(new Set(server.connections.flatMap((x) => x.frames.map((f) => f.id))).size).toBe(3);
  });

  it('asks made before the socket opens are queued and sent once it opens, each exactly once', async () => {
    const server = await fake({ holdUpgrade: () => 50 });
    const inst = instrumentedFactory();
    const c = client(server.url, inst);
    const asks = ['A', 'B', 'C'].map((t) => c.ask('Echo', t));
    await c.connect();
    expect(c.state).toBe('connecting');
    await expect(Promise.all(asks)).resolves.toEqual([{ echo: 'A' }, { echo: 'B' }, { echo: 'C' }]);
    expect(server.connections).toHaveLength(1);
    expect(server.connections[0]!.frames.map((f) => f.type)).toEqual(['A', 'B', 'C']);
  });

  it('asks waiting for a connection that never comes reject UNAVAILABLE at their deadline', async () => {
    const inst = instrumentedFactory();
    const c = client(`http://127.0.0.1:${await deadPort()}`, inst);
    const before = settle(c.ask('Echo', 'Before', {}, { timeoutMs: 80 }));
    await c.connect();
    const during = await expectError(c.ask('Echo', 'During', {}, { timeoutMs: 80 }), 'UNAVAILABLE');
    expect(during).toBeInstanceOf(GreenroomClientError);
    const b = await before;
    expect(b.ok || b.error.code).toBe('UNAVAILABLE');
    // The client kept trying meanwhile, and never had a socket open.
    expect(inst.sockets.length).toBeGreaterThan(0);
    expect(inst.sockets.every((s) => s.openedAt === undefined)).toBe(true);
    expect(['connecting', 'reconnecting']).toContain(c.state);
  });

  it('the wait queue is bounded: past maxQueue an ask rejects QUEUE_FULL at once; a freed slot is usable again', async () => {
    const c = client(`http://127.0.0.1:${await deadPort()}`, instrumentedFactory(), { maxQueue: 2 });
    await c.connect();
    const order: string[] = [];
    const a = settle(c.ask('Echo', 'A', {}, { timeoutMs: 60 })).then((r) => (order.push('A'), r));
    const b = settle(c.ask('Echo', 'B', {}, { timeoutMs: 60_000 })).then((r) => (order.push('B'), r));
    const full = await expectError(c.ask('Echo', 'C'), 'QUEUE_FULL');
    order.push('C');
    expect(full).toBeInstanceOf(GreenroomClientError);

    const ra = await a;
    expect(ra.ok || ra.error.code).toBe('UNAVAILABLE');
    const d = settle(c.ask('Echo', 'D', {}, { timeoutMs: 60_000 }));
    c.close();
    const [rb, rd] = await Promise.all([b, d]);
    expect(rb.ok || rb.error.code).toBe('CLOSED');
    expect(rd.ok || rd.error.code).toBe('CLOSED');
    expect(order).toEqual(['C', 'A', 'B']);
  });
});

describe('session-ending closes (with a stub /auth/refresh)', () => {
  it('4001: one refresh, then a reconnect with the new token; a second 4001 whose refresh is refused ends in signedOut', async () => {
    const server = await fake({ onConnection: (conn) => conn.ws.close(4001, 'revoked') });
    let refreshes = 0;
    const stub = (async (input: string | URL | Request) => {
      expect(String(input)).toBe(`${server.url}/auth/refresh`);
      refreshes += 1;
      if (refreshes === 1) return jsonResponse(200, { ...fakeTokens(), accessToken: 'access2', refreshToken: 'refresh2' });
      return jsonResponse(401, { error: { code: 'SESSION_REVOKED', message: 'session revoked' } });
    }) as typeof fetch;
    const inst = instrumentedFactory();
    const c = client(server.url, inst, { fetch: stub });
    const states = recordStates(c);
    await c.connect();
    await waitForState(c, 'signedOut');

    expect(refreshes).toBe(2);
    expect(server.connections.map((x) => x.req.headers.authorization)).toEqual(['Bearer access', 'Bearer access2']);
    expect(states).toEqual(['connecting', 'open', 'reconnecting', 'open', 'reconnecting', 'signedOut']);
    await sleep(100); // many backoff periods (cap 20 ms): nothing more may happen
    expect(inst.sockets).toHaveLength(2);
    expect(refreshes).toBe(2);
    await expectError(c.ask('Echo', 'Ping'), 'SIGNED_OUT');
  });

  it('4001 whose refresh fails for network reasons: the refresh is tried again later, and its refusal ends in signedOut', async () => {
    // After the 4001 the server refuses every upgrade (the session is over); the first refresh never reaches it.
    const server = await fake({ onConnection: (conn) => conn.ws.close(4001, 'revoked'), refuseUpgrade: (n) => (n > 1 ? 401 : undefined) });
    const outcomes: string[] = [];
    const stub = (async () => {
      if (outcomes.length === 0) {
        outcomes.push('network');
        throw new TypeError('fetch failed');
      }
      outcomes.push('refused');
      return jsonResponse(401, { error: { code: 'SESSION_REVOKED', message: 'session revoked' } });
    }) as typeof fetch;
    const inst = instrumentedFactory();
    const c = client(server.url, inst, { fetch: stub });
    await c.connect();
    await waitForState(c, 'signedOut');
    expect(outcomes).toEqual(['network', 'refused']);
    const attempts = inst.sockets.length;
    expect(attempts).toBeGreaterThanOrEqual(2);
    await sleep(100);
    expect(inst.sockets).toHaveLength(attempts);
  });

  it('4003: blocked at once — no refresh, no further connection attempt, asks reject BLOCKED', async () => {
    const server = await fake({ onConnection: (conn) => conn.ws.close(4003, 'blocked') });
    let refreshes = 0;
    const stub = (async () => (refreshes++, jsonResponse(500, {}))) as typeof fetch;
    const inst = instrumentedFactory();
    const c = client(server.url, inst, { fetch: stub });
    const states = recordStates(c);
    await c.connect();
    await waitForState(c, 'blocked');
    await sleep(100);
    expect(states).toEqual(['connecting', 'open', 'blocked']);
    expect(inst.sockets).toHaveLength(1);
    expect(server.upgrades).toBe(1);
    expect(refreshes).toBe(0);
    await expectError(c.ask('Echo', 'Ping'), 'BLOCKED');
  });
});

describe('the refresh timer (with a stub /auth/refresh)', () => {
  it('a timer refresh that fails for network reasons keeps the healthy socket and is retried', async () => {
    const server = await fake();
    let calls = 0;
    const stub = (async () => {
      calls += 1;
      if (calls === 1) throw new TypeError('fetch failed');
      return jsonResponse(200, { ...fakeTokens(), accessToken: 'access2', refreshToken: 'refresh2' });
    }) as typeof fetch;
    const inst = instrumentedFactory();
    const c = client(server.url, inst, { fetch: stub, auth: { mode: 'tokens', tokens: fakeTokens(Date.now() + 50) }, refreshSkewMs: 0 });
    const states = recordStates(c);
    await c.connect();
    await eventually(() => calls >= 2, { intervalMs: 10 });
    await expect(c.ask('Echo', 'Ping')).resolves.toEqual({ echo: 'Ping' });
    expect(states).toEqual(['connecting', 'open']);
    expect(inst.sockets).toHaveLength(1);
    expect(inst.sockets[0]!.closeCalls).toEqual([]);
    expect(server.upgrades).toBe(1);
  });

  it('a timer refresh the server refuses ends in signedOut, and the client closes its open socket', async () => {
    const server = await fake();
    let calls = 0;
    const stub = (async () => (calls++, jsonResponse(401, { error: { code: 'SESSION_EXPIRED', message: 'session expired' } }))) as typeof fetch;
    const inst = instrumentedFactory();
    const c = client(server.url, inst, { fetch: stub, auth: { mode: 'tokens', tokens: fakeTokens(Date.now() + 50) }, refreshSkewMs: 0 });
    const states = recordStates(c);
    await c.connect();
    await waitForState(c, 'signedOut');
    await inst.sockets[0]!.closed;
    expect(states).toEqual(['connecting', 'open', 'signedOut']);
    expect(calls).toBe(1);
    expect(inst.sockets).toHaveLength(1);
    expect(inst.sockets[0]!.closeCalls).toEqual([{ readyState: OPEN, code: 1000 }]);
  });
});
