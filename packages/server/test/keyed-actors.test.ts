/**
 * Keyed actors (docs/extending.md): one instance, with its own state and mailbox, per key of the payload. Messages
 * to one key run one at a time; different keys run concurrently — shown by the order things happen, not by timing.
 * An idle instance stops and comes back with the state it stored. A real server on loopback; asks as the server
 * itself and from real sockets.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { z } from 'zod';
import { defineActor, type MessageRef } from '../src/index.js';
import { deferred, eventually, expectOk, internals, issueSession, startTestServer, TestClient, type TestServer } from '../src/testing/index.js';

/** What happened, in order, across every room. */
const log: string[] = [];
const gates = new Map<string, { promise: Promise<void>; resolve: () => void }>();
const starts: string[] = [];

const Room = defineActor({
  name: 'Room',
  key: (p: { room?: string }) => p.room,
  idleMs: 50,
  // Each instance loads its room's count: it survives the instance stopping.
  state: async (ctx) => {
    starts.push(ctx.key ?? '(keyless)');
    const saved = ctx.key ? await ctx.store.get<{ count: number }>('rooms', ctx.key) : undefined;
    return { count: saved?.count ?? 0 };
  },
  messages: (message) => ({
    /** Waits for the test to open this room's gate. */
    Hold: message({
      allow: 'any',
      payload: z.object({ room: z.string().max(64) }),
      handle: async (p, ctx) => {
        log.push(`hold ${p.room} start`);
        await gates.get(p.room)?.promise;
        log.push(`hold ${p.room} end`);
        return { key: ctx.key };
      },
    }),
    Add: message({
      allow: 'any',
      payload: z.object({ room: z.string().max(64) }),
      handle: async (p, ctx) => {
        log.push(`add ${p.room}`);
        ctx.state.count += 1;
        await ctx.store.put('rooms', p.room, { count: ctx.state.count });
        return { count: ctx.state.count, key: ctx.key };
      },
    }),
    Where: message({ allow: 'any', payload: z.object({}), handle: (_p, ctx) => ({ key: ctx.key }) }),
  }),
});

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer({ actors: [Room] });
});

afterAll(async () => {
  await server?.close();
});

function gate(room: string) {
  const g = deferred();
  gates.set(room, g);
  return g;
}

describe('keyed actors', () => {
  it('runs messages to one key one at a time: an Add queued behind a held message waits for it', async () => {
    log.length = 0;
    const g = gate('r1');
    const held = server.ask(Room.Hold, { room: 'r1' });
    const added = server.ask(Room.Add, { room: 'r1' });
    await eventually(() => expect(log).toContain('hold r1 start'));
    // Let the event loop turn many times: the Add must still be queued.
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
    expect(log).toEqual(['hold r1 start']);
    g.resolve();
    await Promise.all([held, added]);
    expect(log).toEqual(['hold r1 start', 'hold r1 end', 'add r1']);
  });

  it('runs different keys concurrently: another room answers while one is held (20 rooms)', async () => {
    log.length = 0;
    const g = gate('blocked');
    const held = server.ask(Room.Hold, { room: 'blocked' });
    await eventually(() => expect(log).toContain('hold blocked start'));
    const others = await Promise.all(Array.from({ length: 20 }, (_, i) => server.ask(Room.Add, { room: `free-${i}` })));
    expect(others.map((o) => o.key)).toEqual(Array.from({ length: 20 }, (_, i) => `free-${i}`));
    // Every other room was served while the first was still held.
    expect(log).not.toContain('hold blocked end');
    g.resolve();
    await held;
  });

  it('serializes one key across many sockets: 10 clients × 10 Adds to one room count to 100, none lost', async () => {
    const clients = await Promise.all(Array.from({ length: 10 }, async () => TestClient.connect(server, (await issueSession(server)).accessToken)));
    const answers = await Promise.all(clients.flatMap((c) => Array.from({ length: 10 }, () => expectOk<{ count: number }>(c.ask('Room', 'Add', { room: 'busy' })))));
    expect(answers.map((a) => a.count).sort((a, b) => a - b)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
    await Promise.all(clients.map((c) => c.close()));
  });

  it('sends a message without a key to the keyless instance', async () => {
    expect(await server.ask(Room.Where)).toEqual({ key: null });
  });

  it('stops an idle instance and brings it back with its stored state', async () => {
    const reg = internals(server).registry;
    expect((await server.ask(Room.Add, { room: 'sleepy' })).count).toBe(1);
    expect((await server.ask(Room.Add, { room: 'sleepy' })).count).toBe(2);
    const startedBefore = starts.filter((k) => k === 'sleepy').length;
    expect(startedBefore).toBe(1);
    // Idle for longer than idleMs: it stops (and so does every other idle room).
    await eventually(() => expect(reg.instances('Room')).toBe(0));
    expect((await server.ask(Room.Add, { room: 'sleepy' })).count).toBe(3);
    expect(starts.filter((k) => k === 'sleepy')).toHaveLength(2);
  });

  it('keeps an instance that is busy: a held message outlives the idle time without the instance stopping', async () => {
    const reg = internals(server).registry;
    const g = gate('long');
    const held = server.ask(Room.Hold as MessageRef<{ room: string }, { key: string | null }>, { room: 'long' });
    await new Promise((r) => setTimeout(r, 150));
    expect(reg.instances('Room')).toBeGreaterThanOrEqual(1);
    const queued = server.ask(Room.Add, { room: 'long' });
    g.resolve();
    await held;
    const before = starts.filter((k) => k === 'long').length;
    expect((await queued).count).toBeGreaterThanOrEqual(1);
    expect(starts.filter((k) => k === 'long').length).toBe(before);
  });

  it('caps the instances running: an idle one makes room for a new key; with all busy, a new key is UNAVAILABLE', async () => {
    const held = new Map<string, { promise: Promise<void>; resolve: () => void }>();
    const Capped = defineActor({
      name: 'Capped',
      key: (p: { k?: string }) => p.k,
      maxInstances: 3,
      idleMs: 60_000,
      state: () => ({}),
      messages: (message) => ({
        Touch: message({
          allow: 'any',
          payload: z.object({ k: z.string().max(16), hold: z.boolean().default(false) }),
          handle: async (p, ctx) => {
            if (p.hold) await held.get(p.k)?.promise;
            return ctx.key;
          },
        }),
      }),
    });
    await server.register(Capped);
    const reg = internals(server).registry;
    // Three idle instances: a fourth key evicts the oldest idle one.
    for (const k of ['a', 'b', 'c']) expect(await server.ask(Capped.Touch, { k })).toBe(k);
    expect(await server.ask(Capped.Touch, { k: 'd' })).toBe('d');
    expect(reg.instances('Capped')).toBe(3);
    // An instance counts as busy until its handler has wound up, just after its answer went out.
    await new Promise((r) => setImmediate(r));
    // Three busy instances: a fourth key waits (UNAVAILABLE), and the busy ones keep serving.
    const busy = ['x', 'y', 'z'].map((k) => {
      held.set(k, deferred());
      return server.ask(Capped.Touch, { k, hold: true });
    });
    await expect(server.ask(Capped.Touch, { k: 'w' })).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    for (const k of ['x', 'y', 'z']) held.get(k)!.resolve();
    expect(await Promise.all(busy)).toEqual(['x', 'y', 'z']);
    expect(await server.ask(Capped.Touch, { k: 'w' })).toBe('w');
  });

  it('answers an error when an instance cannot build its state, keeps serving, and tries again on the next message', async () => {
    let failures = 1;
    const Fragile = defineActor({
      name: 'Fragile',
      key: (p: { k?: string }) => p.k,
      state: async (ctx) => {
        if (ctx.key === 'bad' && failures-- > 0) throw new Error('the store is away');
        return { ok: true };
      },
      messages: (message) => ({ Get: message({ allow: 'any', payload: z.object({ k: z.string().max(16) }), handle: (_p, ctx) => ctx.state.ok }) }),
    });
    await server.register(Fragile);
    await expect(server.ask(Fragile.Get, { k: 'bad' })).rejects.toMatchObject({ code: 'INTERNAL' });
    expect(await server.ask(Fragile.Get, { k: 'good' })).toBe(true);
    expect(await server.ask(Fragile.Get, { k: 'bad' })).toBe(true);
  });

  it('refuses a subscribe that was deciding while its user was kicked (the kick runs in another instance)', async () => {
    const deciding = deferred();
    let asked = 0;
    const Gated = defineActor({
      name: 'Gated',
      key: (p: { room?: string }) => p.room,
      state: () => ({}),
      events: { Said: z.object({ text: z.string() }) },
      mayJoin: async () => {
        asked += 1;
        await deciding.promise;
        return true;
      },
      messages: (message) => ({
        Kick: message({ allow: 'any', payload: z.object({ room: z.string().max(16), uid: z.uuid() }), handle: (p, ctx) => ctx.unsubscribe({ topic: p.room, uid: p.uid }) }),
      }),
    });
    await server.register(Gated);
    const s = await issueSession(server);
    const client = await TestClient.connect(server, s.accessToken);
    const subscribing = client.ask('Gated', 'Subscribe', { topic: 'lobby' });
    await eventually(() => expect(asked).toBe(1));
    expect(await server.ask(Gated.Kick, { room: 'lobby', uid: s.uid })).toBe(0);
    deciding.resolve();
    expect(await subscribing).toMatchObject({ ok: false, error: { code: 'FORBIDDEN' } });
    expect(internals(server).registry.subscribers('Gated')).toBe(0);
    await client.close();
  });
});
