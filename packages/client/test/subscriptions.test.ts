/**
 * Subscriptions per (actor, topic) and push listeners, against a real server on loopback: every topic of an actor
 * is sent again after a reconnect with its own payload (read from the frames the client sends) and delivers again,
 * one topic can be left alone, a resubscribe the server refuses is reported once and dropped, and `on` hears one
 * actor or one topic. Pushes the real server never sends (no topic, a client event's name) are scripted on a fake
 * server.
 *
 * Timing: outcomes and order only; every wait is on an event or a condition.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { defineActor, type MessageDef, UserStore } from '@greenroom/server';
import { deferred, eventually, expectError, internals, issueSession, startTestServer, type TestServer } from '@greenroom/server/testing';
import { GreenroomClient, type ClientOptions, type SubscriptionRefusal } from '@greenroom/client';
import { fakeTokens, instrumentedFactory, startFakeServer, waitForState, type Instrumented, type SocketRecord } from './helpers.js';

const FAST = { baseMs: 5, capMs: 20 };

/** The zod-free stand-in for a schema: these test actors take and push any value. */
const anything = { safeParse: (data: unknown) => ({ success: true, data }) } as unknown as MessageDef['payload'];

/**
 * An actor whose `Say` pushes `Said` with the payload it was given, to the payload's `topic` (default: its own);
 * any topic may be joined. Only `member`s may subscribe to Room.
 */
function talker<const N extends string>(name: N, subscribers: 'any' | readonly string[]) {
  return defineActor({
    name,
    state: () => ({}),
    events: { Said: anything },
    subscribers,
    mayJoin: () => true,
    messages: (message) => ({
      Say: message({
        allow: 'any',
        payload: anything,
        handle: (p, ctx) => {
          ctx.publish('Said', p, { topic: (p as { topic?: string }).topic });
          return null;
        },
      }),
    }),
  });
}
const Room = talker('Room', ['member']);
const Hall = talker('Hall', 'any');

let server: TestServer;
const clients: GreenroomClient[] = [];

beforeAll(async () => {
  server = await startTestServer({ actors: [Room, Hall] });
});
afterEach(() => {
  for (const c of clients.splice(0)) c.close();
});
afterAll(() => server.close());

async function connected(role: string, options: Partial<ClientOptions> = {}) {
  const session = await issueSession(server, { role });
  const inst = instrumentedFactory();
  const client = new GreenroomClient({ url: server.url, auth: { mode: 'tokens', tokens: session }, socket: inst.factory, backoff: FAST, ...options });
  clients.push(client);
  await client.connect();
  await waitForState(client, 'open');
  return { client, session, inst };
}

/** Drops this session's server-side sockets without a close frame, and waits for the client's next socket. */
async function reconnect(client: GreenroomClient, sid: string, inst: Instrumented): Promise<SocketRecord> {
  const n = inst.sockets.length;
  for (const c of [...internals(server).connections].filter((c) => c.caller.sid === sid)) c.terminate();
  await waitForState(client, 'reconnecting');
  await waitForState(client, 'open');
  // Asks on one socket are answered in order per actor; this one's answer comes after every re-sent Subscribe's.
  await client.ask('UserStore', 'GetOwn');
  expect(inst.sockets).toHaveLength(n + 1);
  return inst.sockets[n]!;
}

/** The Subscribe / Unsubscribe frames sent on one socket: actor and payload, in order. */
function subscriptionFrames(socket: SocketRecord): Array<{ to: string; type: string; payload: unknown }> {
  return socket.sent.filter((f) => f.type === 'Subscribe' || f.type === 'Unsubscribe').map(({ to, type, payload }) => ({ to, type, payload }));
}

describe('subscriptions per topic', () => {
  it('two topics of one actor are both sent again after a reconnect, each with its own payload', async () => {
    const { client, session, inst } = await connected('member');
    const heard: Array<[unknown, string]> = [];
    client.on('Said', (payload, _from, topic) => heard.push([payload, topic]));
    await client.subscribe('Room', { topic: 'a' });
    await client.subscribe('Room', { topic: 'b', since: 7 });
    await client.subscribe('Hall');

    const second = await reconnect(client, session.sid, inst);
    expect(subscriptionFrames(second)).toEqual([
      { to: 'Room', type: 'Subscribe', payload: { topic: 'a' } },
      { to: 'Room', type: 'Subscribe', payload: { topic: 'b', since: 7 } },
      { to: 'Hall', type: 'Subscribe', payload: {} },
    ]);
    // And again after the next one: restored every time, not once.
    const third = await reconnect(client, session.sid, inst);
    expect(subscriptionFrames(third)).toEqual(subscriptionFrames(second));
    // Both topics deliver on the new socket.
    await server.ask(Room.Say, { topic: 'a', n: 1 });
    await server.ask(Room.Say, { topic: 'b', n: 2 });
    await eventually(() => heard.length === 2, { intervalMs: 5 });
    expect(heard).toEqual([
      [{ topic: 'a', n: 1 }, 'a'],
      [{ topic: 'b', n: 2 }, 'b'],
    ]);
  });

  it('subscribing to a topic again replaces its payload, not the other topics', async () => {
    const { client, session, inst } = await connected('member');
    await client.subscribe('Room', { topic: 'a', since: 1 });
    await client.subscribe('Room', { topic: 'b' });
    await client.subscribe('Room', { topic: 'a', since: 2 });
    const second = await reconnect(client, session.sid, inst);
    expect(subscriptionFrames(second)).toEqual([
      { to: 'Room', type: 'Subscribe', payload: { topic: 'a', since: 2 } },
      { to: 'Room', type: 'Subscribe', payload: { topic: 'b' } },
    ]);
  });

  it('unsubscribe names one topic: the others stay and are sent again after a reconnect', async () => {
    const { client, session, inst } = await connected('member');
    await client.subscribe('Room', { topic: 'a' });
    await client.subscribe('Room', { topic: 'b' });
    await client.subscribe('Hall');
    const heard: string[] = [];
    client.on('Said', (_payload, _from, topic) => heard.push(topic), { from: 'Room' });
    await client.unsubscribe('Room', { topic: 'a' });
    expect(subscriptionFrames(inst.sockets[0]!).at(-1)).toEqual({ to: 'Room', type: 'Unsubscribe', payload: { topic: 'a' } });
    // At the server too: b still delivers, a no more (one actor's pushes arrive in order, so b's comes after a's).
    await server.ask(Room.Say, { topic: 'a' });
    await server.ask(Room.Say, { topic: 'b' });
    await eventually(() => heard.length > 0, { intervalMs: 5 });
    expect(heard).toEqual(['b']);

    const second = await reconnect(client, session.sid, inst);
    expect(subscriptionFrames(second)).toEqual([
      { to: 'Room', type: 'Subscribe', payload: { topic: 'b' } },
      { to: 'Hall', type: 'Subscribe', payload: {} },
    ]);
    // Without a topic: the actor's own, which leaves Room's topics alone.
    await client.unsubscribe('Hall');
    expect(subscriptionFrames(second).at(-1)).toEqual({ to: 'Hall', type: 'Unsubscribe', payload: {} });
    const third = await reconnect(client, session.sid, inst);
    expect(subscriptionFrames(third)).toEqual([{ to: 'Room', type: 'Subscribe', payload: { topic: 'b' } }]);
  });
});

describe('a refused subscription', () => {
  it('a resubscribe refused after a reconnect is reported once, dropped, and never sent again; the others stay', async () => {
    // The client probes /readyz before it reconnects: holding that answer keeps it disconnected for as long as the
    // test needs to take the role away.
    let hold = deferred();
    const gated: typeof fetch = async (input, init) => {
      if (String(input).endsWith('/readyz')) await hold.promise;
      return fetch(input, init);
    };
    const { client, session, inst } = await connected('member', { probe: true, fetch: gated });
    const refusals: SubscriptionRefusal[] = [];
    client.on('subscriptionRefused', (refusal, from) => {
      expect(from).toBe('client');
      refusals.push(refusal);
    });
    const heard: Array<{ from: string; payload: unknown }> = [];
    client.on('Said', (payload, from) => heard.push({ from, payload }));
    await client.subscribe('Room', { topic: 'a' });
    await client.subscribe('Room', { topic: 'b' });
    await client.subscribe('Hall');

    for (const c of [...internals(server).connections].filter((c) => c.caller.sid === session.sid)) c.terminate();
    await waitForState(client, 'reconnecting');
    await server.ask(UserStore.Update, { uid: session.uid, role: 'user' }); // no longer passes Room's rule
    hold.resolve();
    await waitForState(client, 'open');

    await eventually(() => refusals.length === 2, { intervalMs: 5 });
    expect(refusals.map(({ actor, topic, error }) => ({ actor, topic, code: error.code }))).toEqual([
      { actor: 'Room', topic: 'a', code: 'FORBIDDEN' },
      { actor: 'Room', topic: 'b', code: 'FORBIDDEN' },
    ]);
    // Hall's subscription was restored and delivers.
    await server.ask(Hall.Say, { n: 1 });
    await eventually(() => heard.length === 1, { intervalMs: 5 });
    expect(heard).toEqual([{ from: 'Hall', payload: { n: 1 } }]);

    // The next reconnect sends only Hall's: Room's topics were dropped, not retried.
    hold = deferred();
    hold.resolve();
    const third = await reconnect(client, session.sid, inst);
    expect(subscriptionFrames(third)).toEqual([{ to: 'Hall', type: 'Subscribe', payload: {} }]);
    expect(refusals).toHaveLength(2);
  });

  it('subscribe rejects as an ask does, and the refused subscription is not sent after a reconnect', async () => {
    const { client, session, inst } = await connected('user');
    const refusals: SubscriptionRefusal[] = [];
    client.on('subscriptionRefused', (refusal) => refusals.push(refusal));
    await expectError(client.subscribe('Room', { topic: 'a' }), 'FORBIDDEN');
    await client.subscribe('Hall');
    const second = await reconnect(client, session.sid, inst);
    expect(subscriptionFrames(second)).toEqual([{ to: 'Hall', type: 'Subscribe', payload: {} }]);
    // Its promise told the app: no refusal event on top.
    expect(refusals).toEqual([]);
  });
});

describe('on(event, fn, { from, topic })', () => {
  it('with `from`: ignores another actor’s event of the same name', async () => {
    const { client } = await connected('member');
    const all: string[] = [];
    const fromHall: Array<{ payload: unknown; from: string; topic: string }> = [];
    client.on('Said', (_payload, from) => all.push(from));
    client.on('Said', (payload, from, topic) => fromHall.push({ payload, from, topic }), { from: 'Hall' });
    await client.subscribe('Room');
    await client.subscribe('Hall');
    await server.ask(Room.Say, { n: 1 });
    await server.ask(Hall.Say, { n: 2 });
    await server.ask(Room.Say, { n: 3 });
    await eventually(() => all.length === 3, { intervalMs: 5 });
    expect(fromHall).toEqual([{ payload: { n: 2 }, from: 'Hall', topic: 'Hall' }]);
  });

  it('with `topic`: hears that topic only, of whichever actor', async () => {
    const { client } = await connected('member');
    const all: string[] = [];
    const onB: Array<[unknown, string]> = [];
    client.on('Said', (_payload, from, topic) => all.push(`${from}/${topic}`));
    client.on('Said', (payload, from) => onB.push([payload, from]), { topic: 'b' });
    await client.subscribe('Room', { topic: 'a' });
    await client.subscribe('Room', { topic: 'b' });
    await client.subscribe('Hall', { topic: 'b' });
    await server.ask(Room.Say, { topic: 'a' });
    await server.ask(Room.Say, { topic: 'b' });
    await server.ask(Hall.Say, { topic: 'b' });
    await eventually(() => all.length === 3, { intervalMs: 5 });
    expect(all.sort()).toEqual(['Hall/b', 'Room/a', 'Room/b']);
    expect(onB.sort()).toEqual([
      [{ topic: 'b' }, 'Hall'],
      [{ topic: 'b' }, 'Room'],
    ]);
  });

  it('pushes without a topic are on the actor’s own; listeners get the topic; client event names cannot be pushed', async () => {
    const fake = await startFakeServer();
    try {
      const client = new GreenroomClient({ url: fake.url, auth: { mode: 'tokens', tokens: fakeTokens() }, backoff: FAST });
      clients.push(client);
      const opens: number[] = [];
      client.on('open', () => opens.push(1));
      const refusals: unknown[] = [];
      client.on('subscriptionRefused', (r) => refusals.push(r));
      const all: Array<[unknown, string, string]> = [];
      const onB: unknown[] = [];
      const roomOwn: unknown[] = [];
      client.on('Said', (payload, from, topic) => all.push([payload, from, topic]));
      client.on('Said', (payload) => onB.push(payload), { topic: 'b' });
      client.on('Said', (payload) => roomOwn.push(payload), { from: 'Room', topic: 'Room' });
      let done = false;
      client.on('Done', () => (done = true));
      await client.connect();
      const c = await fake.opened(1);
      for (const frame of [
        { event: 'Said', from: 'Room', topic: 'a', payload: 1 },
        { event: 'Said', from: 'Room', topic: 'b', payload: 2 },
        { event: 'Said', from: 'Hall', topic: 'b', payload: 3 },
        { event: 'Said', from: 'Room', payload: 4 }, // no topic: the actor's own
        { event: 'open', from: 'Room', payload: 5 },
        { event: 'subscriptionRefused', from: 'Room', payload: { actor: 'Room' } },
        { event: 'Done', from: 'Room', payload: null },
      ]) {
        c.ws.send(JSON.stringify(frame));
      }
      await eventually(() => done, { intervalMs: 5 });
      expect(all).toEqual([
        [1, 'Room', 'a'],
        [2, 'Room', 'b'],
        [3, 'Hall', 'b'],
        [4, 'Room', 'Room'],
      ]);
      expect(onB).toEqual([2, 3]);
      expect(roomOwn).toEqual([4]);
      expect(opens).toEqual([1]);
      expect(refusals).toEqual([]);
    } finally {
      await fake.close();
    }
  });
});

describe('many subscriptions after a reconnect', () => {
  it('restores 40 topics of one actor (more than a socket may have asks in flight), none reported refused', async () => {
    const { client, session, inst } = await connected('user');
    const refused: SubscriptionRefusal[] = [];
    client.on('subscriptionRefused', (r) => refused.push(r));
    const topics = Array.from({ length: 40 }, (_, i) => `t${i}`);
    for (const topic of topics) await client.subscribe('Hall', { topic });
    await reconnect(client, session.sid, inst);
    await eventually(() => expect(internals(server).registry.subscribers('Hall')).toBeGreaterThanOrEqual(40));
    expect(refused).toEqual([]);
    const heard = new Set<string>();
    client.on('Said', (_p, _from, topic) => heard.add(topic), { from: 'Hall' });
    for (const topic of topics) await client.ask('Hall', 'Say', { topic });
    await eventually(() => expect(heard.size).toBe(40));
  });
});
