/**
 * @greenroom/client in Node against a real Greenroom server on loopback (real store, real tokens, bearer auth):
 * asks and their typed errors, pushes, asks in flight when the server drops the socket, asks waiting through a
 * reconnect, subscriptions re-established, single-flight refresh counted at the server, and the session-ending
 * closes (4003 → blocked, 4001 after a revocation → signedOut). The server restart under 200 clients is in
 * restart.test.ts; scripted closes (4008/1013, held upgrades) in reconnect.test.ts.
 *
 * Timing: outcomes and order only. The "no further attempt" checks wait many backoff periods (the cap is 20 ms)
 * and then count sockets; they bound nothing.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { defineActor, type MessageDef, SessionStore, UserStore } from '@greenroom/server';
import { deferred, eventually, expectError, internals, issueSession, startTestServer, type TestServer } from '@greenroom/server/testing';
import { GreenroomClient, GreenroomClientError, type ClientOptions, type TokenPair } from '@greenroom/client';
import { instrumentedFactory, recordStates, settle, sleep, waitForState, type Instrumented } from './helpers.js';

const FAST = { baseMs: 5, capMs: 20 };

/** The zod-free stand-in for a payload schema: this test actor accepts any object. */
const anyPayload = { safeParse: (data: unknown) => ({ success: true, data }) } as unknown as MessageDef['payload'];

/** An app actor whose `Hold` answers only when the test lets it: for asks that are in flight for sure. */
const gate = { calls: 0, release: () => undefined as void, held: Promise.resolve() };
function armGate(): void {
  ({ promise: gate.held, resolve: gate.release } = deferred());
}
const Slow = defineActor({
  name: 'Slow',
  state: () => ({}),
  messages: (message) => ({
    Hold: message({
      allow: 'any',
      payload: anyPayload,
      handle: async () => {
        gate.calls += 1;
        await gate.held;
        return { held: true };
      },
    }),
  }),
});

let server: TestServer;
const clients: GreenroomClient[] = [];

beforeAll(async () => {
  server = await startTestServer({ actors: [Slow] });
});
afterEach(() => {
  for (const c of clients.splice(0)) c.close();
});
afterAll(() => server.close());

interface Made {
  client: GreenroomClient;
  inst: Instrumented;
  session: Awaited<ReturnType<typeof issueSession>>;
  tokens: TokenPair[];
}

/** A client with bearer tokens for a fresh session of `role`, sockets instrumented. */
async function make(role = 'user', options: Partial<ClientOptions> & { tokens?: Partial<TokenPair> } = {}): Promise<Made> {
  const session = await issueSession(server, { role });
  const inst = instrumentedFactory();
  const tokens: TokenPair[] = [];
  const { tokens: override, ...rest } = options;
  const client = new GreenroomClient({
    url: server.url,
    auth: { mode: 'tokens', tokens: { ...session, ...override }, onTokens: (t) => tokens.push(t) },
    socket: inst.factory,
    backoff: FAST,
    ...rest,
  });
  clients.push(client);
  return { client, inst, session, tokens };
}

async function connected(role = 'user', options: Parameters<typeof make>[1] = {}): Promise<Made> {
  const made = await make(role, options);
  await made.client.connect();
  await waitForState(made.client, 'open');
  return made;
}

/** Drops this session's server-side sockets without a close frame (as a crashed node or a cut network would). */
function dropSockets(sid: string): number {
  const mine = [...internals(server).connections].filter((c) => c.caller.sid === sid);
  for (const c of mine) c.terminate();
  return mine.length;
}

describe('asks', () => {
  it('ask resolves with the actor result', async () => {
    const { client, session } = await connected();
    const own = await client.ask<{ uid: string; username: string }>('UserStore', 'GetOwn');
    expect(own.uid).toBe(session.uid);
    expect(own.username).toBe(session.username);
  });

  it('ask rejects with a GreenroomClientError carrying FORBIDDEN (not an admin)', async () => {
    const { client } = await connected('user');
    const err = await expectError(client.ask('UserStore', 'GetAll'), 'FORBIDDEN');
    expect(err).toBeInstanceOf(GreenroomClientError);
    expect(err).toBeInstanceOf(Error);
    expect(err.name).toBe('GreenroomClientError');
    expect(typeof err.message).toBe('string');
    // The socket stays usable.
    await expect(client.ask('UserStore', 'GetOwn')).resolves.toBeDefined();
  });

  it('ask rejects with BAD_PAYLOAD for a payload the schema refuses, and UNKNOWN_ACTOR / UNKNOWN_MESSAGE as the server says', async () => {
    const { client } = await connected('admin');
    const bad = await expectError(client.ask('UserStore', 'Block', { uid: 'not-a-uuid' }), 'BAD_PAYLOAD');
    expect(bad).toBeInstanceOf(GreenroomClientError);
    await expectError(client.ask('NoSuchActor', 'X'), 'UNKNOWN_ACTOR');
    await expectError(client.ask('UserStore', 'NoSuchMessage'), 'UNKNOWN_MESSAGE');
  });

  it('pushes reach on(event) listeners with the sending actor', async () => {
    const { client } = await connected('admin');
    const target = await issueSession(server);
    const got: Array<{ payload: any; from: string }> = [];
    client.on('UserChanged', (payload, from) => got.push({ payload, from }));
    await client.subscribe('UserStore');
    await server.ask(UserStore.Update, { uid: target.uid, displayName: 'pushed' });
    await eventually(() => got.some((g) => g.payload.user.uid === target.uid), { intervalMs: 5 });
    expect(got.find((g) => g.payload.user.uid === target.uid)).toEqual({
      payload: { user: expect.objectContaining({ uid: target.uid, displayName: 'pushed' }) },
      from: 'UserStore',
    });
  });
});

describe('the connection drops', () => {
  it('an ask in flight when the server drops the socket rejects CONNECTION_LOST; it ran once and is never answered again', async () => {
    armGate();
    const calls = gate.calls;
    const { client, session, inst } = await connected();
    const settled: string[] = [];
    const inflight = client.ask('Slow', 'Hold').then(
      () => settled.push('resolved'),
      (err: GreenroomClientError) => (settled.push(err.code), err),
    );
    await eventually(() => gate.calls !== calls, { intervalMs: 2 }); // the handler is running: the ask is in flight for sure
    expect(dropSockets(session.sid)).toBe(1);

    const err = await inflight;
    expect(err).toBeInstanceOf(GreenroomClientError);
    expect((err as GreenroomClientError).code).toBe('CONNECTION_LOST');
    gate.release(); // the server now answers — to a socket that is gone

    await waitForState(client, 'open');
    await expect(client.ask('UserStore', 'GetOwn')).resolves.toMatchObject({ uid: session.uid });
    await expect(client.ask('Slow', 'Hold')).resolves.toEqual({ held: true });
    expect(settled).toEqual(['CONNECTION_LOST']);
    // The dropped ask was not resent on the new socket: the handler ran once for it (+1 for the ask just above).
    expect(gate.calls - calls).toBe(2);
    expect(inst.sockets).toHaveLength(2);
  });

  it('asks made while disconnected wait, and are answered after the reconnect, in the order they were made', async () => {
    const { client, session, inst } = await connected('user', { backoff: { baseMs: 50, capMs: 100 } });
    const queued: Array<Promise<unknown>> = [];
    const stateAtAsk: string[] = [];
    const answered: number[] = [];
    client.on('reconnecting', () => {
      if (queued.length) return;
      for (let i = 0; i < 5; i++) {
        stateAtAsk.push(client.state);
        queued.push(client.ask('UserStore', 'GetOwn').then((r) => (answered.push(i), r)));
      }
    });
    dropSockets(session.sid);
    await waitForState(client, 'reconnecting');
    const results = await Promise.all(queued);
    expect(stateAtAsk).toEqual(Array(5).fill('reconnecting'));
    expect(answered).toEqual([0, 1, 2, 3, 4]);
    for (const r of results) expect(r).toMatchObject({ uid: session.uid });
    expect(inst.sockets).toHaveLength(2);
    expect(inst.maxOpenAtOnce).toBe(1);
  });

  it('a subscription keeps delivering after a reconnect (re-established on the new socket)', async () => {
    const { client, session, inst } = await connected('admin');
    const target = await issueSession(server);
    const names: string[] = [];
    client.on('UserChanged', (p: any) => p.user.uid === target.uid && names.push(p.user.displayName));
    await client.subscribe('UserStore');
    await server.ask(UserStore.Update, { uid: target.uid, displayName: 'before' });
    await eventually(() => names.includes('before'), { intervalMs: 5 });

    dropSockets(session.sid);
    await waitForState(client, 'reconnecting');
    await waitForState(client, 'open');
    // One actor handles its messages in arrival order: once this answers, the re-sent Subscribe has been handled.
    await client.ask('UserStore', 'GetOwn');
    await server.ask(UserStore.Update, { uid: target.uid, displayName: 'after' });
    await eventually(() => names.includes('after'), { intervalMs: 5 });
    expect(names).toEqual(['before', 'after']);
    expect(inst.sockets).toHaveLength(2);
  });
});

describe('refresh', () => {
  it('two asks, the refresh timer and the reconnect all needing a refresh at once make exactly one /auth/refresh request', async () => {
    // The client believes its access token has expired (the token itself is still valid at the server): the
    // connect attempt must refresh first, the refresh timer is due now, two asks are waiting for that connection,
    // and the app calls refresh() twice on top.
    const { client, session, tokens, inst } = await make('user', { tokens: { accessExpiresAt: Date.now() - 1 } });
    const requestsBefore = internals(server).refresh.requests;
    const rotationsBefore = internals(server).refresh.rotations;
    const asks = [client.ask('UserStore', 'GetOwn'), client.ask('UserStore', 'GetOwn')];
    await client.connect();
    const explicit = [client.refresh(), client.refresh()];
    const [a, b] = await Promise.all(asks);
    await Promise.all(explicit);
    await waitForState(client, 'open');

    expect(a).toMatchObject({ uid: session.uid });
    expect(b).toMatchObject({ uid: session.uid });
    expect(internals(server).refresh.requests - requestsBefore).toBe(1);
    expect(internals(server).refresh.rotations - rotationsBefore).toBe(1);
    expect(client.refreshRequests).toBe(1);
    expect(tokens).toHaveLength(1);
    expect(tokens[0]!.refreshToken).not.toBe(session.refreshToken);
    // The refresh came before the socket, which was opened with the new access token.
    expect(inst.sockets).toHaveLength(1);
    expect(inst.sockets[0]!.headers).toEqual({ Authorization: `Bearer ${tokens[0]!.accessToken}` });
  });

  it('a later refresh() is a new request (single flight shares only what is in flight)', async () => {
    const { client } = await connected();
    const before = internals(server).refresh.requests;
    await Promise.all([client.refresh(), client.refresh(), client.refresh()]);
    await client.refresh();
    expect(internals(server).refresh.requests - before).toBe(2);
    expect(client.refreshRequests).toBe(2);
  });
});

describe('session-ending closes', () => {
  it('4003 (the user is blocked): state blocked, no refresh, no further connection attempt, asks reject BLOCKED', async () => {
    const { client, session, inst } = await connected();
    const states = recordStates(client);
    const requestsBefore = internals(server).refresh.requests;
    armGate();
    const calls = gate.calls;
    const inflight = settle(client.ask('Slow', 'Hold'));
    await eventually(() => gate.calls !== calls, { intervalMs: 2 });
    await server.ask(UserStore.Block, { uid: session.uid });
    await waitForState(client, 'blocked');
    gate.release();

    expect(inst.sockets[0]!.closeCode).toBe(4003);
    expect(inst.sockets[0]!.closeReason).toBe('blocked');
    await sleep(150); // many backoff periods: nothing more may happen
    expect(states).toEqual(['blocked']);
    expect(inst.sockets).toHaveLength(1);
    expect(internals(server).refresh.requests).toBe(requestsBefore);
    // The ask in flight when the socket closed: CONNECTION_LOST (the socket went; the app decides what next).
    const outcome = await inflight;
    expect(outcome.ok || outcome.error.code).toBe('CONNECTION_LOST');
    await expectError(client.ask('UserStore', 'GetOwn'), 'BLOCKED');
  });

  it('4001 after the session is revoked: one refresh attempt (refused), then signedOut and no reconnect', async () => {
    const { client, session, inst } = await connected();
    const states = recordStates(client);
    const requestsBefore = internals(server).refresh.requests;
    await server.ask(SessionStore.Revoke, { sid: session.sid });
    await waitForState(client, 'signedOut');

    expect(inst.sockets[0]!.closeCode).toBe(4001);
    expect(inst.sockets[0]!.closeReason).toBe('revoked');
    await sleep(150);
    expect(internals(server).refresh.requests - requestsBefore).toBe(1);
    expect(client.refreshRequests).toBe(1);
    expect(states).toEqual(['reconnecting', 'signedOut']);
    expect(inst.sockets).toHaveLength(1);
    await expectError(client.ask('UserStore', 'GetOwn'), 'SIGNED_OUT');
  });
});
