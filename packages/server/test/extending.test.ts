/**
 * Extending Greenroom (docs/extending.md): an app actor defined with `defineActor`, registered with one line, on a real
 * server with real sockets. The Notes example of docs/extending.md, and small inline actors for what the framework
 * does around any handler: check order, timeouts, errors, one message at a time.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { z } from 'zod';
import { defineActor, ErrorCode, GreenroomError, MemoryStore } from '@greenroom/server';
import { deferred, expectError, expectOk, issueSession, startTestServer, TestClient, type TestServer } from '@greenroom/server/testing';
import { internals } from '../src/server.js';
import { Notes, type Note } from '../examples/notes.js';

/** Opens sessions and sockets on one server and closes them all at the end. */
function sockets(server: () => TestServer) {
  const open: TestClient[] = [];
  return {
    async connect(role = 'user', uid?: string) {
      const session = await issueSession(server(), uid ? { uid } : { role });
      const client = await TestClient.connect(server(), session.accessToken);
      open.push(client);
      return { client, session };
    },
    async closeAll() {
      await Promise.all(open.splice(0).map((c) => c.close()));
    },
  };
}

type NotePage = { items: Note[]; nextCursor: string | null };

/** Every note, page by page (`limit` small, so the cursor is exercised). */
async function listAll(client: TestClient, limit: number): Promise<{ items: Note[]; pages: NotePage[] }> {
  const pages: NotePage[] = [];
  let cursor: string | null = null;
  do {
    const res: NotePage = await expectOk(client.ask('Notes', 'List', cursor === null ? { limit } : { cursor, limit }));
    pages.push(res);
    cursor = res.nextCursor;
  } while (cursor !== null);
  return { items: pages.flatMap((p) => p.items), pages };
}

describe('Notes (the example app actor)', () => {
  let server: TestServer;
  const io = sockets(() => server);

  beforeAll(async () => {
    server = await startTestServer({ actors: [Notes] });
  });
  afterEach(() => io.closeAll());
  afterAll(() => server.close());

  it('adds a note and lists it back', async () => {
    const { client, session } = await io.connect();
    const added = await expectOk<Note>(client.ask('Notes', 'Add', { text: 'hello board' }));
    expect(added).toEqual({ id: expect.any(String), uid: session.uid, text: 'hello board', created: expect.any(Number) });
    expect(added.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);

    const list = await expectOk(client.ask('Notes', 'List'));
    expect(Object.keys(list).sort()).toEqual(['items', 'nextCursor']);
    expect(list.nextCursor).toBeNull();
    expect(list.items).toContainEqual(added);
    // Stored as answered: the same record is what persists.
    expect(await internals(server).store.get('notes', added.id)).toEqual(added);
  });

  it('pages List as {items, nextCursor}, oldest first, nextCursor null on the last page', async () => {
    const { client } = await io.connect('guest');
    const mine: Note[] = [];
    for (let i = 0; i < 5; i++) mine.push(await expectOk(client.ask('Notes', 'Add', { text: `page note ${i}` })));

    const { items, pages } = await listAll(client, 2);
    for (const p of pages) expect(p.items.length).toBeLessThanOrEqual(2);
    expect(pages.at(-1)!.nextCursor).toBeNull();
    expect(items.length).toBe(await internals(server).store.count('notes'));
    expect(items.filter((n) => mine.some((m) => m.id === n.id))).toEqual(mine);

    await expectError(client.ask('Notes', 'List', { limit: 0 }), ErrorCode.BAD_PAYLOAD);
  });

  it('answers BAD_PAYLOAD before the handler runs: nothing is stored, nothing is pushed', async () => {
    const { client } = await io.connect();
    await expectOk(client.ask('Notes', 'Subscribe'));
    const before = await internals(server).store.count('notes');

    const bad: unknown[] = [{ text: 'x'.repeat(501) }, { text: '' }, { text: 42 }, { text: ['a'] }, { note: 'hi' }, {}, null];
    for (const payload of bad) {
      const reply = await client.sendRaw(JSON.stringify({ id: 'bad', to: 'Notes', type: 'Add', payload }), 'bad');
      await expectError(reply, ErrorCode.BAD_PAYLOAD);
    }
    await expectError(client.ask('Notes', 'Delete', { id: 'not-a-uuid' }), ErrorCode.BAD_PAYLOAD);

    expect(await internals(server).store.count('notes')).toBe(before);
    // The List answer comes after any push the bad asks could have caused on this socket.
    expect((await expectOk(client.ask('Notes', 'List', { limit: 500 }))).items).toHaveLength(before);
    expect(client.pushes).toEqual([]);
    // The longest text allowed is fine.
    expect((await expectOk(client.ask('Notes', 'Add', { text: 'x'.repeat(500) }))).text).toHaveLength(500);
  });

  it('answers UNKNOWN_ACTOR and UNKNOWN_MESSAGE before looking at the payload', async () => {
    const { client } = await io.connect();
    await expectError(client.ask('Noted', 'Add', { text: 42 }), ErrorCode.UNKNOWN_ACTOR);
    await expectError(client.ask('Notes', 'Edit', { text: 42 }), ErrorCode.UNKNOWN_MESSAGE);
    // Names an object inherits are not messages.
    for (const type of ['constructor', 'toString', 'hasOwnProperty']) {
      await expectError(client.ask('Notes', type), ErrorCode.UNKNOWN_MESSAGE);
    }
  });

  it('lets the author delete their note, answers FORBIDDEN to another user, and lets an admin delete any note', async () => {
    const { client: alice } = await io.connect('user');
    const { client: bob } = await io.connect('user');
    const { client: admin } = await io.connect('admin');

    const a1 = await expectOk<Note>(alice.ask('Notes', 'Add', { text: 'alice 1' }));
    const a2 = await expectOk<Note>(alice.ask('Notes', 'Add', { text: 'alice 2' }));

    await expectError(bob.ask('Notes', 'Delete', { id: a1.id }), ErrorCode.FORBIDDEN);
    expect(await internals(server).store.get('notes', a1.id)).toEqual(a1);

    expect(await expectOk(alice.ask('Notes', 'Delete', { id: a1.id }))).toEqual({ deleted: a1.id });
    expect(await expectOk(admin.ask('Notes', 'Delete', { id: a2.id }))).toEqual({ deleted: a2.id });
    expect(await internals(server).store.get('notes', a1.id)).toBeUndefined();
    expect(await internals(server).store.get('notes', a2.id)).toBeUndefined();
  });

  it('answers NOT_FOUND for a note that does not exist, whoever asks', async () => {
    const { client: user } = await io.connect('user');
    const { client: admin } = await io.connect('admin');
    const missing = '01890a5d-ac96-774b-bcce-b302099a8057';
    await expectError(user.ask('Notes', 'Delete', { id: missing }), ErrorCode.NOT_FOUND);
    await expectError(admin.ask('Notes', 'Delete', { id: missing }), ErrorCode.NOT_FOUND);

    const note = await expectOk<Note>(user.ask('Notes', 'Add', { text: 'short-lived' }));
    await expectOk(user.ask('Notes', 'Delete', { id: note.id }));
    await expectError(user.ask('Notes', 'Delete', { id: note.id }), ErrorCode.NOT_FOUND);
  });

  it('pushes NoteAdded to every subscriber and to no one else, until they unsubscribe', async () => {
    const { client: a } = await io.connect('user');
    const { client: b } = await io.connect('guest');
    const { client: outsider } = await io.connect('user');
    expect(await expectOk(a.ask('Notes', 'Subscribe'))).toEqual({ subscribed: true, topic: 'Notes' });
    expect(await expectOk(b.ask('Notes', 'Subscribe'))).toEqual({ subscribed: true, topic: 'Notes' });

    const note = await expectOk<Note>(a.ask('Notes', 'Add', { text: 'for everyone' }));
    const expected = { event: 'NoteAdded', from: 'Notes', topic: 'Notes', payload: { note } };
    expect(await a.waitForPush('NoteAdded')).toEqual([expected]);
    expect(await b.waitForPush('NoteAdded')).toEqual([expected]);
    // A push to the outsider would have been sent before this answer on the same socket.
    await expectOk(outsider.ask('Notes', 'List', { limit: 1 }));
    expect(outsider.pushes).toEqual([]);

    expect(await expectOk(b.ask('Notes', 'Unsubscribe'))).toEqual({ subscribed: false, topic: 'Notes' });
    const second = await expectOk<Note>(a.ask('Notes', 'Add', { text: 'after b left' }));
    expect((await a.waitForPush('NoteAdded', 2))[1]).toEqual({ event: 'NoteAdded', from: 'Notes', topic: 'Notes', payload: { note: second } });
    await expectOk(b.ask('Notes', 'List', { limit: 1 }));
    expect(b.pushes).toEqual([expected]);

    await expectOk(a.ask('Notes', 'Delete', { id: second.id }));
    expect(await a.waitForPush('NoteDeleted')).toEqual([{ event: 'NoteDeleted', from: 'Notes', topic: 'Notes', payload: { id: second.id } }]);
  });
});

describe('Notes persistence', () => {
  const servers: TestServer[] = [];
  let dataDir = '';
  const clients: TestClient[] = [];

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'greenroom-notes-'));
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    for (const s of servers) await s.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('keeps notes across a restart on the same data dir, with their authors', async () => {
    const first = await startTestServer({ actors: [Notes], keepDataDir: dataDir });
    servers.push(first);
    const session = await issueSession(first, { role: 'user' });
    const c1 = await TestClient.connect(first, session.accessToken);
    clients.push(c1);
    const kept = await expectOk<Note>(c1.ask('Notes', 'Add', { text: 'survives a restart' }));
    const gone = await expectOk<Note>(c1.ask('Notes', 'Add', { text: 'deleted before the restart' }));
    await expectOk(c1.ask('Notes', 'Delete', { id: gone.id }));
    await first.close();

    const second = await startTestServer({ actors: [Notes], keepDataDir: dataDir });
    servers.push(second);
    // The same user (by uid), a new session: the note still knows its author.
    const again = await issueSession(second, { uid: session.uid });
    const c2 = await TestClient.connect(second, again.accessToken);
    clients.push(c2);
    expect(await expectOk(c2.ask('Notes', 'List'))).toEqual({ items: [kept], nextCursor: null });
    expect(await expectOk(c2.ask('Notes', 'Delete', { id: kept.id }))).toEqual({ deleted: kept.id });
  });
});

describe('the framework around an app actor', () => {
  let server: TestServer;
  const io = sockets(() => server);

  // Rules before schemas: a caller never learns the schema of a message it may not send.
  let guardedCalls = 0;
  const Guarded = defineActor({
    name: 'Guarded',
    state: () => ({}),
    messages: (message) => ({
      AdminOnly: message({
        allow: ['admin'],
        payload: z.object({ n: z.number().int() }),
        handle: (p) => (guardedCalls++, { n: p.n }),
      }),
    }),
  });

  // Crash policy: a handler that throws answers INTERNAL; the actor and its state carry on.
  const Flaky = defineActor({
    name: 'Flaky',
    state: () => ({ handled: 0 }),
    messages: (message) => ({
      Throw: message({
        allow: 'any',
        payload: z.object({}),
        handle: () => {
          throw new Error('db password hunter2 failed at /srv/app/notes.ts:42');
        },
      }),
      Reject: message({
        allow: 'any',
        payload: z.object({}),
        handle: async () => {
          await delay(1);
          return Promise.reject('hunter2');
        },
      }),
      Refuse: message({
        allow: 'any',
        payload: z.object({}),
        handle: () => {
          throw new GreenroomError(ErrorCode.CONFLICT, 'already done');
        },
      }),
      Count: message({ allow: 'any', payload: z.object({}), handle: (_p, ctx) => ({ handled: ++ctx.state.handled }) }),
    }),
  });

  // One message at a time, in arrival order: the handler yields at a random point, and nothing overlaps.
  const Sequencer = defineActor({
    name: 'Sequencer',
    state: () => ({ seen: [] as number[], active: 0, maxActive: 0 }),
    messages: (message) => ({
      Append: message({
        allow: 'any',
        payload: z.object({ n: z.number().int() }),
        handle: async ({ n }, ctx) => {
          const s = ctx.state;
          s.active++;
          s.maxActive = Math.max(s.maxActive, s.active);
          await delay(Math.floor(Math.random() * 4));
          s.seen.push(n);
          s.active--;
          return { n, position: s.seen.length - 1 };
        },
      }),
      Report: message({ allow: 'any', payload: z.object({}), handle: (_p, ctx) => ({ seen: ctx.state.seen, maxActive: ctx.state.maxActive }) }),
    }),
  });

  beforeAll(async () => {
    server = await startTestServer();
    // One line per actor, also after start.
    await server.register(Guarded);
    await server.register(Flaky);
    await server.register(Sequencer);
  });
  afterEach(() => io.closeAll());
  afterAll(() => server.close());

  it('checks UNKNOWN_ACTOR → UNKNOWN_MESSAGE → FORBIDDEN → BAD_PAYLOAD → handler', async () => {
    const { client: user } = await io.connect('user');
    const { client: admin } = await io.connect('admin');
    await expectError(user.ask('Guardian', 'AdminOnly', { n: 'x' }), ErrorCode.UNKNOWN_ACTOR);
    await expectError(user.ask('Guarded', 'UserOnly', { n: 'x' }), ErrorCode.UNKNOWN_MESSAGE);
    await expectError(user.ask('Guarded', 'AdminOnly', { n: 'x' }), ErrorCode.FORBIDDEN);
    await expectError(user.ask('Guarded', 'AdminOnly', { n: 1 }), ErrorCode.FORBIDDEN);
    await expectError(admin.ask('Guarded', 'AdminOnly', { n: 'x' }), ErrorCode.BAD_PAYLOAD);
    expect(guardedCalls).toBe(0);
    expect(await expectOk(admin.ask('Guarded', 'AdminOnly', { n: 7 }))).toEqual({ n: 7 });
    expect(guardedCalls).toBe(1);
  });

  it('answers INTERNAL with no internals for a handler that throws, and the actor keeps serving', async () => {
    const { client } = await io.connect();
    const raw: string[] = [];
    client.ws.on('message', (data) => raw.push(data.toString()));

    expect(await expectOk(client.ask('Flaky', 'Count'))).toEqual({ handled: 1 });
    for (const type of ['Throw', 'Reject']) {
      const error = await expectError(client.ask('Flaky', type), ErrorCode.INTERNAL);
      expect(error.message).not.toMatch(/hunter2|\/srv|notes\.ts|\bat\b|Error|\n/);
    }
    expect(raw.join('\n')).not.toMatch(/hunter2|\/srv|stack/);
    // The state survived the throws, and the next message is served.
    expect(await expectOk(client.ask('Flaky', 'Count'))).toEqual({ handled: 2 });
    // A GreenroomError is the handler's own answer: its code and message go on the wire as thrown.
    expect(await expectError(client.ask('Flaky', 'Refuse'), ErrorCode.CONFLICT)).toEqual({ code: ErrorCode.CONFLICT, message: 'already done' });
    expect(await expectOk(client.ask('Flaky', 'Count'))).toEqual({ handled: 3 });
  });

  it('handles the messages to one actor one at a time, in arrival order', async () => {
    const { client } = await io.connect();
    // As many at once as a connection may have in flight.
    const count = server.config.maxAsksInFlight;
    const replies = await Promise.all(Array.from({ length: count }, (_, n) => client.ask('Sequencer', 'Append', { n })));
    expect(await Promise.all(replies.map((r) => expectOk(r)))).toEqual(Array.from({ length: count }, (_, n) => ({ n, position: n })));
    expect(await expectOk(client.ask('Sequencer', 'Report'))).toEqual({ seen: Array.from({ length: count }, (_, n) => n), maxActive: 1 });
  });
});

describe('ask timeouts', () => {
  let server: TestServer;
  const io = sockets(() => server);
  const { promise: gate, resolve: release } = deferred();
  let finished = 0;

  // Waits until the test opens the gate: longer than the ask timeout, however slow the machine.
  const Slow = defineActor({
    name: 'Slow',
    state: () => ({}),
    messages: (message) => ({
      Wait: message({
        allow: 'any',
        payload: z.object({}),
        handle: async () => {
          await gate;
          finished++;
          return { late: true };
        },
      }),
      Ping: message({ allow: 'any', payload: z.object({}), handle: () => ({ pong: true }) }),
    }),
  });

  beforeAll(async () => {
    // A memory store, so no fsync of the harness's own set-up comes near the short ask timeout.
    server = await startTestServer({ actors: [Slow], store: new MemoryStore(), config: { askTimeoutMs: 200 } });
  });
  afterEach(() => io.closeAll());
  afterAll(async () => {
    release();
    await server.close();
  });

  it('answers TIMEOUT when the handler is too slow, drops the late answer, and the socket keeps working', async () => {
    const { client } = await io.connect();
    const ids: unknown[] = [];
    client.ws.on('message', (data) => ids.push(JSON.parse(data.toString()).id));

    const reply = await client.sendRaw(JSON.stringify({ id: 'slow-1', to: 'Slow', type: 'Wait' }), 'slow-1');
    await expectError(reply, ErrorCode.TIMEOUT);
    expect(finished).toBe(0);

    // The socket still serves asks to other actors while Slow is busy.
    expect((await expectOk(client.ask('UserStore', 'GetOwn'))).role).toBe('user');

    release();
    // Ping waits in Slow's mailbox behind Wait, so its answer comes after Wait's handler has finished.
    expect(await expectOk(client.ask('Slow', 'Ping'))).toEqual({ pong: true });
    expect(finished).toBe(1);
    expect(ids.filter((id) => id === 'slow-1')).toHaveLength(1);
  });
});
