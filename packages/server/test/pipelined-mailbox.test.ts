/**
 * Pipelined mailboxes (actors/registry.ts, actors/message-store.ts): an actor goes on to its next message while the
 * last one's writes flush, and what it answers or pushes leaves only once the writes it depends on are durable.
 *
 * Real server, real sockets, the real embedded store on disk with a hook that holds (or fails) its fsyncs.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import { z } from 'zod';
import { defineActor } from '@greenroom/server';
import { eventually, expectError, expectOk, issueSession, startTestServer, TestClient, type Reply, type TestServer } from '@greenroom/server/testing';
import { internals } from '../src/server.js';
import { LowdbStore } from '../src/store/lowdb-store.js';
import { syncGate, tempDirs } from './helpers.js';

const newDir = tempDirs();

/** What the test actor's handlers have done, in order (they run inside the server, in this process). */
const handled: string[] = [];

/** Notes on their own collection: Put writes one and pushes it, Get reads one. */
const Notes = defineActor({
  name: 'Notes',
  state: () => ({}),
  events: { NoteChanged: z.object({ id: z.string(), text: z.string() }) },
  messages: (message) => ({
    Put: message({
      allow: 'any',
      payload: z.object({ id: z.string(), text: z.string() }),
      handle: async (p, ctx) => {
        await ctx.store.put('notes', p.id, { text: p.text });
        handled.push(`put ${p.id}`);
        ctx.publish('NoteChanged', p);
        return { id: p.id };
      },
    }),
    Get: message({
      allow: 'any',
      payload: z.object({ id: z.string() }),
      handle: async (p, ctx) => {
        const note = await ctx.store.get<{ text: string }>('notes', p.id);
        handled.push(`get ${p.id}`);
        return note?.text ?? null;
      },
    }),
  }),
});

/** A keyed actor that stops an instance as soon as it is idle. */
const Rooms = defineActor({
  name: 'Rooms',
  state: () => ({}),
  key: (p: { room: string }) => p.room,
  idleMs: 1,
  messages: (message) => ({
    Put: message({
      allow: 'any',
      payload: z.object({ room: z.string() }),
      handle: async (p, ctx) => {
        await ctx.store.put('rooms', p.room, { at: 1 });
        handled.push(`room ${p.room}`);
        return null;
      },
    }),
  }),
});

let server: TestServer | null = null;
let gate = syncGate();
const clients: TestClient[] = [];

async function start(): Promise<TestServer> {
  gate = syncGate();
  handled.length = 0;
  const dir = await newDir('greenroom-pipe-');
  const store = await LowdbStore.open(dir, { faults: { beforeSync: (what) => gate.beforeSync(what) } });
  // Room for a long pipeline of asks on one socket.
  server = await startTestServer({ store, keepDataDir: dir, actors: [Notes, Rooms], config: { maxAsksInFlight: 128 } });
  return server;
}

async function connect(role = 'user'): Promise<TestClient> {
  const session = await issueSession(server!, { role });
  const client = await TestClient.connect(server!, session.accessToken);
  clients.push(client);
  return client;
}

afterEach(async () => {
  gate.release();
  await Promise.all(clients.splice(0).map((c) => c.close()));
  // A store that failed a flush refuses to close cleanly; the server is gone either way.
  await server?.close().catch(() => undefined);
  server = null;
});

describe('a pipelined mailbox', () => {
  it('answers a read of another record while the last write is held in its fsync, before that write answers', async () => {
    await start();
    const [writer, reader] = [await connect(), await connect()];
    await expectOk(writer.ask('Notes', 'Put', { id: 'b', text: 'durable' }));
    const answered: string[] = [];
    gate.hold();
    const put = writer.ask('Notes', 'Put', { id: 'a', text: 'held' }).then((r) => (answered.push('put a'), r));
    await gate.reached();
    // The actor is free: the read is handled and answered while the write above is still in its fsync.
    expect(await expectOk(reader.ask('Notes', 'Get', { id: 'b' }))).toBe('durable');
    answered.push('get b');
    gate.release();
    await expectOk(put);
    expect(answered).toEqual(['get b', 'put a']);
  });

  it('answers a read of a record only once the write it sees is durable', async () => {
    await start();
    const [writer, reader] = [await connect(), await connect()];
    await expectOk(writer.ask('Notes', 'Put', { id: 'x', text: 'v1' }));
    const events: string[] = [];
    gate.hold();
    const put = writer.ask('Notes', 'Put', { id: 'x', text: 'v2' }).then((r) => (events.push('put answered'), r));
    await gate.reached();
    const get = reader.ask('Notes', 'Get', { id: 'x' }).then((r) => (events.push('get answered'), r));
    // The read has run (and seen v2) while v2 is still in its fsync; its answer waits for that fsync.
    await eventually(() => handled.includes('get x'), { what: 'the read handled' });
    events.push('released');
    gate.release();
    expect(await expectOk(get)).toBe('v2');
    await expectOk(put);
    expect(events.indexOf('released')).toBe(0);
    expect(events.slice(1).sort()).toEqual(['get answered', 'put answered']);
  });

  it('keeps one connection’s answers in the order of its asks, writes and reads interleaved', async () => {
    await start();
    const client = await connect();
    await expectOk(client.ask('Notes', 'Put', { id: 'fixed', text: 'f' }));
    const order: string[] = [];
    const asks: Array<Promise<Reply>> = [];
    const expected: string[] = [];
    // Without waiting for answers: each write flushes (a real fsync) while the read after it needs none.
    for (let i = 0; i < 40; i++) {
      asks.push(client.ask('Notes', 'Put', { id: `n${i}`, text: `t${i}` }).then((r) => (order.push(`put ${i}`), r)));
      asks.push(client.ask('Notes', 'Get', { id: 'fixed' }).then((r) => (order.push(`get ${i}`), r)));
      expected.push(`put ${i}`, `get ${i}`);
    }
    for (const reply of await Promise.all(asks)) expect(reply.ok).toBe(true);
    expect(order).toEqual(expected);
  });

  it('answers an error, never success, when the flush of the write fails', async () => {
    await start();
    const client = await connect();
    await expectOk(client.ask('Notes', 'Put', { id: 'ok', text: 'first' }));
    gate.fail();
    await expectError(client.ask('Notes', 'Put', { id: 'lost', text: 'never on disk' }), 'INTERNAL');
  });

  it('pushes a write to subscribers only once it is durable, never before its answer could leave', async () => {
    await start();
    const [subscriber, writer] = [await connect('user'), await connect()];
    await expectOk(subscriber.ask('Notes', 'Subscribe'));
    const events: string[] = [];
    subscriber.ws.on('message', (data) => {
      if (String(data).includes('NoteChanged')) events.push('pushed');
    });
    gate.hold();
    const put = writer.ask('Notes', 'Put', { id: 'p', text: 'news' }).then((r) => (events.push('put answered'), r));
    await gate.reached();
    await eventually(() => handled.includes('put p'), { what: 'the write handled' });
    // The handler has published; the push waits with the answer for the fsync.
    // A round trip on the subscriber's own socket: a push sent before its answer would have arrived first.
    expect(await expectOk(subscriber.ask('Notes', 'Get', { id: 'other' }))).toBe(null);
    events.push('released');
    gate.release();
    await expectOk(put);
    const [push] = await subscriber.waitForPush('NoteChanged');
    expect(push?.payload).toEqual({ id: 'p', text: 'news' });
    expect(events[0]).toBe('released');
    expect(events.slice(1).sort()).toEqual(['pushed', 'put answered']);
  });

  it('gives open sockets a new role only once the role is durable', async () => {
    await start();
    const admin = await connect('admin');
    const session = await issueSession(server!, { role: 'user' });
    const promoted = await TestClient.connect(server!, session.accessToken);
    clients.push(promoted);
    gate.hold();
    const update = admin.ask('UserStore', 'Update', { uid: session.uid, role: 'admin' });
    await gate.reached();
    // The role is written but still in its fsync: the user's socket has no admin rights yet.
    await expectError(promoted.ask('SessionStore', 'GetAll', {}), 'FORBIDDEN');
    gate.release();
    expect((await expectOk(update)).role).toBe('admin');
    await expectOk(promoted.ask('SessionStore', 'GetAll', {}));
  });

  it('keeps a keyed instance running while its answer waits for a flush', async () => {
    await start();
    const client = await connect();
    gate.hold();
    const put = client.ask('Rooms', 'Put', { room: 'r1' });
    await gate.reached();
    await eventually(() => handled.includes('room r1'), { what: 'the write handled' });
    // Past its idle time with nothing queued, it still holds an answer: it is not idle.
    await new Promise((r) => setTimeout(r, 20));
    expect(internals(server!).registry.instances('Rooms')).toBe(1);
    gate.release();
    await expectOk(put);
    await eventually(() => internals(server!).registry.instances('Rooms') === 0, { what: 'the idle instance stopped' });
  });
});
