/**
 * App actors on several nodes sharing one Redis (SPEC §8): a push reaches its topic's subscribers on every node, in the
 * order each node published it; presence counts the members of every node and forgets those of a node that stops or
 * loses its lease; a kick on one node stops delivery on every node before it answers; a keyed actor's
 * read-modify-write through ctx.store is atomic across nodes. Three servers in this process on loopback, each with
 * its Redis store, on the machine's Redis (a key prefix of their own, removed after) and on a three-master Cluster.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomBytes, randomUUID } from 'node:crypto';
import { z } from 'zod';
import { connectRedis, type RedisClient, type RedisSettings } from '../src/cluster/redis.js';
import { defineActor } from '../src/index.js';
import { RedisStore } from '../src/store/redis-store.js';
import { eventually, expectOk, internals, issueSession, startTestServer, TestClient, type TestServer } from '../src/testing/index.js';
import { dropPrefix, MACHINE_REDIS_URL, redisPrefix, startCluster, type RedisCluster } from './redis.js';

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

async function join(room: string, ...members: Array<{ client: TestClient }>): Promise<void> {
  for (const m of members) await expectOk(m.client.ask('Chat', 'Subscribe', { topic: room }));
}

type Posted = { seq: number; from: string };
const posted = (client: TestClient) => client.pushes.filter((p) => p.event === 'Posted');
const presenceChanges = (client: TestClient) => client.pushes.filter((p) => p.event === 'PresenceChanged').map((p) => p.payload as { uid: string; change: string; connections: number });
/** Who is in a room, as the actor sees it: uid → connections. */
const who = async (m: { client: TestClient }, room: string) =>
  Object.fromEntries((await expectOk<Array<{ uid: string; connections: number }>>(m.client.ask('Chat', 'Who', { room }))).map((e) => [e.uid, e.connections]));

describe.each([
  { on: 'one Redis', cluster: false },
  { on: 'a three-master Redis Cluster (sharded pub/sub)', cluster: true },
])('app actors over three nodes on $on', ({ cluster }) => {
  let started: RedisCluster | null = null;
  let settings: RedisSettings;
  /** The tests' own connection, to look at what the nodes keep in Redis. */
  let redis: RedisClient;
  const secret = randomBytes(32).toString('hex');
  let nodes: TestServer[] = [];
  const extra: TestServer[] = [];
  const open: TestClient[] = [];

  async function startNode(): Promise<TestServer> {
    const store = await RedisStore.open(settings);
    return startTestServer({
      store,
      actors: [Chat, Counter],
      config: { store: 'redis', secret, redisPrefix: settings.prefix, redisUrls: [...settings.urls], redisCluster: cluster, nodeLeaseS: 3 },
    });
  }

  beforeAll(async () => {
    started = cluster ? await startCluster() : null;
    settings = { urls: started?.urls ?? [MACHINE_REDIS_URL], cluster, prefix: redisPrefix() };
    redis = connectRedis(settings, 'test');
    nodes = [await startNode(), await startNode(), await startNode()];
  }, 60_000);

  afterAll(async () => {
    try {
      await Promise.all(open.map((c) => c.close()));
      for (const node of [...nodes, ...extra]) await node.close();
      if (!cluster) await dropPrefix(redis, settings.prefix);
    } finally {
      redis.disconnect();
      await started?.stop();
    }
  });

  async function member(node: TestServer, options: { role?: string; uid?: string } = {}): Promise<{ client: TestClient; uid: string }> {
    const s = await issueSession(node, options.uid ? { uid: options.uid } : { role: options.role ?? 'user' });
    const client = await TestClient.connect(node, s.accessToken);
    open.push(client);
    return { client, uid: s.uid };
  }

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
      const key = `${settings.prefix}{t:Chat:${room}}:presence`;
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
      expect(await internals(nodes[1]!).store.get('counters', 'shared-count')).toEqual({ n: 200 });
    });
  });
});
