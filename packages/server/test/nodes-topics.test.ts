/**
 * App actors on several nodes sharing one Redis (SPEC §8): a push reaches its topic's subscribers on every node, in the
 * order each node published it; presence counts the members of every node and forgets those of a node that stops or
 * loses its lease; a kick on one node stops delivery on every node before it answers; a keyed actor's
 * read-modify-write through ctx.store is atomic across nodes. Three servers in this process on loopback, over the
 * machine's Redis (a key prefix of their own, removed after) and one shared store.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomBytes, randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { z } from 'zod';
import { defineActor, MemoryStore, type Store } from '../src/index.js';
import { eventually, expectOk, internals, issueSession, startTestServer, TestClient, type TestServer } from '../src/testing/index.js';

const REDIS_URL = 'redis://127.0.0.1:6379';
const prefix = `t:${randomBytes(6).toString('hex')}:`;
const secret = randomBytes(32).toString('hex');

const Chat = defineActor({
  name: 'Chat',
  state: () => ({}),
  events: { Posted: z.object({ seq: z.number(), from: z.string() }) },
  presence: true,
  mayJoin: (topic) => topic.startsWith('room-'),
  messages: (message) => ({
    Post: message({
      allow: 'any',
      payload: z.object({ room: z.string(), seq: z.number(), from: z.string() }),
      handle: (p, ctx) => ctx.publish('Posted', { seq: p.seq, from: p.from }, { topic: p.room }),
    }),
    Kick: message({
      allow: ['moderator'],
      payload: z.object({ room: z.string(), uid: z.string() }),
      handle: (p, ctx) => ({ removed: ctx.unsubscribe({ topic: p.room, uid: p.uid }) }),
    }),
    Who: message({ allow: 'any', payload: z.object({ room: z.string() }), handle: (p, ctx) => ctx.presence(p.room) }),
  }),
});

/** A count per name, read and written back through the store by each message: right only if one key's messages never overlap. */
const Counter = defineActor({
  name: 'Counter',
  key: (p: { name?: string }) => p.name,
  state: () => ({}),
  messages: (message) => ({
    Increment: message({
      allow: 'any',
      payload: z.object({ name: z.string() }),
      handle: async (p, ctx) => {
        const n = ((await ctx.store.get<{ n: number }>('counters', p.name))?.n ?? 0) + 1;
        // Another message for this key, on any node, would read the same count meanwhile.
        await new Promise((resolve) => setTimeout(resolve, 1));
        await ctx.store.put('counters', p.name, { n });
        return n;
      },
    }),
  }),
});

/** The store every node shares; each node's view of it leaves it open when the node stops. */
const shared = new MemoryStore();
function nodeView(store: MemoryStore): Store {
  return new Proxy(store, {
    get: (target, key) => {
      if (key === 'close') return async () => undefined;
      const value: unknown = Reflect.get(target, key, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

function startNode(): Promise<TestServer> {
  return startTestServer({
    store: nodeView(shared),
    actors: [Chat, Counter],
    config: { store: 'redis', secret, redisPrefix: prefix, redisUrls: [REDIS_URL], nodeLeaseS: 3 },
  });
}

let nodes: TestServer[] = [];
const extra: TestServer[] = [];
const open: TestClient[] = [];
/** The tests' own connection, to look at (and finally remove) what the nodes keep in Redis. */
const redis = new Redis(REDIS_URL, { lazyConnect: true });

beforeAll(async () => {
  nodes = [await startNode(), await startNode(), await startNode()];
});

afterAll(async () => {
  try {
    await Promise.all(open.map((c) => c.close()));
    for (const node of [...nodes, ...extra]) await node.close();
    await shared.close();
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await redis.unlink(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
});

async function member(node: TestServer, options: { role?: string; uid?: string } = {}): Promise<{ client: TestClient; uid: string }> {
  const s = await issueSession(node, options.uid ? { uid: options.uid } : { role: options.role ?? 'user' });
  const client = await TestClient.connect(node, s.accessToken);
  open.push(client);
  return { client, uid: s.uid };
}

async function join(room: string, ...members: Array<{ client: TestClient }>): Promise<void> {
  for (const m of members) await expectOk(m.client.ask('Chat', 'Subscribe', { topic: room }));
}

type Posted = { seq: number; from: string };
const posted = (client: TestClient) => client.pushes.filter((p) => p.event === 'Posted');
const presenceChanges = (client: TestClient) => client.pushes.filter((p) => p.event === 'PresenceChanged').map((p) => p.payload as { uid: string; change: string; connections: number });
const who = async (m: { client: TestClient }, room: string) =>
  Object.fromEntries((await expectOk<Array<{ uid: string; connections: number }>>(m.client.ask('Chat', 'Who', { room }))).map((e) => [e.uid, e.connections]));

describe('pushes across nodes', () => {
  it('reach the subscribers of their topic on every node, in the order each node published them, and nothing of other topics', async () => {
    const [a, b, c] = nodes as [TestServer, TestServer, TestServer];
    const onB = await member(b);
    const onA = await member(a);
    const elsewhere = await member(b);
    await join('room-order', onB, onA);
    await join('room-other', elsewhere);
    const N = 400;
    // Published on A and on C at once, each interleaved with pushes to another topic.
    const asks: Array<Promise<unknown>> = [];
    for (let seq = 1; seq <= N; seq++) {
      for (const [node, from] of [[a, 'A'], [c, 'C']] as const) {
        asks.push(node.ask(Chat.Post, { room: 'room-order', seq, from }));
        asks.push(node.ask(Chat.Post, { room: 'room-other', seq, from }));
      }
    }
    await Promise.all(asks);
    for (const sub of [onB, onA]) {
      const got = await sub.client.waitForPush('Posted', 2 * N, { timeoutMs: 20_000 });
      expect(new Set(got.map((p) => p.topic))).toEqual(new Set(['room-order']));
      for (const from of ['A', 'C']) {
        expect(got.map((p) => p.payload as Posted).filter((p) => p.from === from).map((p) => p.seq)).toEqual(Array.from({ length: N }, (_, i) => i + 1));
      }
    }
    expect(new Set((await elsewhere.client.waitForPush('Posted', 2 * N, { timeoutMs: 20_000 })).map((p) => p.topic))).toEqual(new Set(['room-other']));
    // One more from each publisher: by then anything else sent to these subscribers has arrived.
    await a.ask(Chat.Post, { room: 'room-order', seq: N + 1, from: 'A' });
    await c.ask(Chat.Post, { room: 'room-order', seq: N + 1, from: 'C' });
    await onB.client.waitForPush('Posted', 2 * N + 2);
    expect(posted(onB.client)).toHaveLength(2 * N + 2);
  });
});

describe('presence across nodes', () => {
  it('counts the members connected to every node and tells subscribers on every node who joined and left', async () => {
    const [a, b, c] = nodes as [TestServer, TestServer, TestServer];
    const room = 'room-presence';
    const watcher = await member(a);
    await join(room, watcher);
    const ann = await member(a);
    const bob = await member(b);
    const bobOnC = await member(c, { uid: bob.uid });
    await join(room, ann, bob, bobOnC);
    await eventually(() => expect(presenceChanges(watcher.client).filter((p) => p.change === 'joined').map((p) => p.uid).sort()).toEqual([watcher.uid, ann.uid, bob.uid].sort()));
    const everyone = { [watcher.uid]: 1, [ann.uid]: 1, [bob.uid]: 2 };
    expect(await who(watcher, room)).toEqual(everyone);
    expect(await who(bob, room)).toEqual(everyone);
    expect(Object.fromEntries((await expectOk<Array<{ uid: string; connections: number }>>(bobOnC.client.ask('Chat', 'Presence', { topic: room }))).map((e) => [e.uid, e.connections]))).toEqual(everyone);

    // Bob's socket on C goes: still present through B. Then he leaves on B: left, on every node.
    await bobOnC.client.close();
    await eventually(async () => expect((await who(watcher, room))[bob.uid]).toBe(1));
    await expectOk(bob.client.ask('Chat', 'Unsubscribe', { topic: room }));
    expect((await who(ann, room))[bob.uid]).toBeUndefined();
    for (const m of [watcher, ann]) {
      await eventually(() => expect(presenceChanges(m.client).filter((p) => p.uid === bob.uid).map((p) => p.change)).toEqual(['joined', 'left']));
    }
  });

  it('forgets the members of a node that stops, and of one cut off from Redis once its lease has run out', async () => {
    const [a] = nodes as [TestServer];
    const room = 'room-departures';
    const watcher = await member(a);
    await join(room, watcher);
    const stopping = await startNode();
    const cutOff = await startNode();
    extra.push(stopping, cutOff);
    const dan = await member(stopping);
    const eve = await member(cutOff);
    await join(room, dan, eve);
    await eventually(async () => expect(Object.keys(await who(watcher, room)).sort()).toEqual([watcher.uid, dan.uid, eve.uid].sort()));

    await stopping.close();
    await eventually(async () => expect(Object.keys(await who(watcher, room)).sort()).toEqual([watcher.uid, eve.uid].sort()));
    await eventually(() => expect(presenceChanges(watcher.client).filter((p) => p.uid === dan.uid).map((p) => p.change)).toEqual(['joined', 'left']));

    // Its commands fail from now on: its lease runs out (3 s), and the others remove what it wrote.
    internals(cutOff).node.bus!.redis.disconnect();
    await eventually(async () => expect(Object.keys(await who(watcher, room))).toEqual([watcher.uid]), { timeoutMs: 15_000 });
    await eventually(() => expect(presenceChanges(watcher.client).filter((p) => p.uid === eve.uid).map((p) => p.change)).toEqual(['joined', 'left']));
    // Until it stops, the others' effects wait for its confirmation (1 s) as for any node that stopped answering.
    await cutOff.close();
  });
});

describe('presence left behind', () => {
  it('skips the entries of a node that died before any live node saw it go, and removes them, keeping the others', async () => {
    const [a] = nodes as [TestServer];
    const room = 'room-ghosts';
    const watcher = await member(a);
    await join(room, watcher);
    // What a node that died unseen would have left: an entry for a user, under a node id that holds no lease.
    const ghost = randomUUID();
    const key = `${prefix}{t:Chat:${room}}:presence`;
    await redis.hset(key, ghost, JSON.stringify({ [randomUUID()]: [1, Date.now()] }));
    expect(await who(watcher, room)).toEqual({ [watcher.uid]: 1 });
    await eventually(async () => expect(await redis.hexists(key, ghost)).toBe(0));
    expect(await who(watcher, room)).toEqual({ [watcher.uid]: 1 });
    await eventually(() => expect(presenceChanges(watcher.client).filter((p) => p.uid === ghost).map((p) => p.change)).toEqual(['left']));
  });
});

describe('kicks across nodes', () => {
  it("stop delivery on every node before the kick answers, and take the user out of the topic's presence", async () => {
    const [a, b, c] = nodes as [TestServer, TestServer, TestServer];
    const room = 'room-kick';
    const moderator = await member(a, { role: 'moderator' });
    const victim = await member(b);
    const victimOnC = await member(c, { uid: victim.uid });
    const onB = await member(b);
    const onC = await member(c);
    await join(room, moderator, victim, victimOnC, onB, onC);
    await eventually(async () => expect(Object.keys(await who(moderator, room))).toHaveLength(4));

    expect(await expectOk(moderator.client.ask('Chat', 'Kick', { room, uid: victim.uid }))).toEqual({ removed: 0 });
    expect(Object.keys(await who(moderator, room))).not.toContain(victim.uid);
    await a.ask(Chat.Post, { room, seq: 1, from: 'after' });
    // Each bystander shares a node, and so the topic's channel, with one of the victim's sockets.
    await onB.client.waitForPush('Posted', 1);
    await onC.client.waitForPush('Posted', 1);
    await expectOk(victim.client.ask('Chat', 'Who', { room }));
    await expectOk(victimOnC.client.ask('Chat', 'Who', { room }));
    expect(posted(victim.client)).toEqual([]);
    expect(posted(victimOnC.client)).toEqual([]);
    await eventually(() => expect(presenceChanges(moderator.client).filter((p) => p.uid === victim.uid).map((p) => p.change)).toEqual(['joined', 'left']));
  });
});

describe('keyed actors across nodes', () => {
  it("run one key's messages one at a time over every node: 200 increments through three nodes at once count to 200", async () => {
    const answers = await Promise.all(Array.from({ length: 200 }, (_, i) => nodes[i % 3]!.ask(Counter.Increment, { name: 'shared-count' })));
    expect(answers.sort((x, y) => x - y)).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
    expect(await shared.get('counters', 'shared-count')).toEqual({ n: 200 });
  });
});
