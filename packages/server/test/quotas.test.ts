/**
 * Quotas (docs/protocol.md): no caller can make an actor's queue grow without bound, keep it busy after giving up, or take
 * every connection slot. Each test performs the attack.
 *
 * - One guest floods UserStore.Update from 20 sockets: an admin's password login and a second user's asks are still
 *   answered while the flood's backlog is queued, and the mailbox never holds more than the quotas allow. Run on a
 *   store whose writes are awaited inside the mailbox (as a store that cannot stage them, e.g. a remote one, is): over
 *   the embedded store a handler does not wait for its fsync, and this flood never builds a backlog to be fair about.
 * - Asks whose deadline passed before their handler started are dropped: their handler never runs.
 * - Asks in flight per connection, and connections per session and per user, are bounded (RATE_LIMITED / 429).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { z } from 'zod';
import { defineActor, SYSTEM_CALLER } from '../src/actors/define.js';
import { internals } from '../src/server.js';
import {
  deferred,
  eventually,
  expectError,
  issueSession,
  loginWithPassword,
  refusedUpgrade,
  startTestServer,
  TestClient,
  type Reply,
  type TestServer,
} from '../src/testing/index.js';
import { UserStore } from '../src/actors/user-store.js';
import { LowdbStore } from '../src/store/lowdb-store.js';
import type { Store } from '../src/store/store.js';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The embedded store behind the plain Store seam only: every write is awaited, fsync included, where it is made. */
function unstaged(store: Store): Store {
  return {
    get: (c, id) => store.get(c, id),
    put: (c, id, v) => store.put(c, id, v),
    delete: (c, id) => store.delete(c, id),
    write: (ops) => store.write(ops),
    update: (c, id, change) => store.update(c, id, change),
    scan: (c, o) => store.scan(c, o),
    count: (c) => store.count(c),
    findBy: (c, f, v) => store.findBy(c, f, v),
    ping: () => store.ping(),
    close: () => store.close(),
  };
}

const ADMIN_PASSWORD = 'the admin has a long password';

describe('a guest flooding UserStore.Update from 20 sockets', () => {
  let server: TestServer;
  const clients: TestClient[] = [];
  const track = (c: TestClient) => (clients.push(c), c);

  let storeDir: string;

  beforeAll(async () => {
    storeDir = await mkdtemp(join(tmpdir(), 'greenroom-quotas-'));
    // A short ask timeout, so part of the flood times out; the rate limit is the default (100/s, burst 200).
    server = await startTestServer({ config: { askTimeoutMs: 1500 }, store: unstaged(await LowdbStore.open(storeDir)) });
    // Hashing the password takes longer than that short timeout on a busy machine: this one ask gets its own.
    await internals(server).registry.askAs(SYSTEM_CALLER, UserStore.Create, { username: 'root', password: ADMIN_PASSWORD, role: 'admin' }, 30_000);
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await server?.close();
    await rm(storeDir, { recursive: true, force: true });
  });

  it('does not keep an admin login or another user waiting for its backlog, and the mailbox stays bounded', async () => {
    const guest = await issueSession(server, { role: 'guest' });
    const sockets = await Promise.all(Array.from({ length: 20 }, async () => track(await TestClient.connect(server, guest.accessToken))));
    const other = await issueSession(server, { role: 'user' });
    const second = track(await TestClient.connect(server, other.accessToken));

    let stop = false;
    let pending = 0;
    const outcomes = new Map<string, number>();
    let maxQueued = 0;
    const userStoreQueue = () => internals(server).registry.queued('UserStore');
    // Each socket sends as fast as its rate limit allows (100 asks a second), never waiting for answers.
    const flood = sockets.map(async (ws, n) => {
      const sent: Array<Promise<void>> = [];
      for (let i = 0; !stop; i++) {
        for (let j = 0; j < 10; j++) {
          pending += 1;
          sent.push(
            ws.ask('UserStore', 'Update', { uid: guest.uid, displayName: `flood ${n}.${i}.${j}` }).then((r) => {
              pending -= 1;
              const key = r.ok ? 'ok' : r.error.code;
              outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
            }),
          );
        }
        maxQueued = Math.max(maxQueued, userStoreQueue());
        await new Promise((r) => setTimeout(r, 100));
      }
      await Promise.all(sent);
    });
    // Let the backlog build up.
    await eventually(() => userStoreQueue() >= 100, { intervalMs: 20, timeoutMs: 30_000 });

    // An admin logs in with a password (UserStore twice) and a second user asks UserStore, during the flood.
    const login = loginWithPassword(server, { username: 'root', password: ADMIN_PASSWORD }).then((res) => ({
      status: res.status,
      queuedThen: userStoreQueue(),
      floodPending: pending,
    }));
    const asks: Reply[] = [];
    for (let i = 0; i < 5; i++) asks.push(await second.ask('UserStore', 'GetOwn'));
    const queuedAfterAsks = userStoreQueue();
    const admin = await login;
    stop = true;
    await Promise.all(flood);

    // They were answered, and answered while the flood still had a backlog queued: they did not wait for it.
    expect(admin.status).toBe(200);
    expect(asks.map((r) => r.ok)).toEqual([true, true, true, true, true]);
    expect(admin.queuedThen).toBeGreaterThan(0);
    expect(queuedAfterAsks).toBeGreaterThan(0);
    expect(admin.floodPending).toBeGreaterThan(0);
    // The flood got answers of every kind the quotas give, and the queue never outgrew the mailbox's bound (asks that
    // timed out free their connection's in-flight slot but stay queued until dropped, so the in-flight quota alone
    // does not bound it on a slow machine).
    expect(outcomes.get('ok')).toBeGreaterThan(0);
    expect(outcomes.get('RATE_LIMITED') ?? 0).toBeGreaterThan(0);
    expect(maxQueued).toBeLessThanOrEqual(server.config.mailboxCapacity);
    // Once the guest stops, nothing of its flood is left queued behind the next caller.
    await Promise.all(sockets.map((s) => s.close()));
    expect((await second.ask('UserStore', 'GetOwn')).ok).toBe(true);
    expect(userStoreQueue()).toBe(0);
  });
});

describe('an ask whose deadline passed before its handler started', () => {
  let server: TestServer;
  let runs = 0;
  let gate = deferred();
  const Slow = defineActor({
    name: 'Slow',
    state: () => ({}),
    messages: (message) => ({
      Work: message({
        allow: 'any',
        payload: z.object({}),
        handle: async () => {
          runs += 1;
          await gate.promise;
          return { done: true };
        },
      }),
    }),
  });

  beforeAll(async () => {
    server = await startTestServer({ actors: [Slow], config: { askTimeoutMs: 300 } });
  });
  afterAll(() => server?.close());

  it('is dropped: its caller had TIMEOUT and its handler never runs (10 rounds)', async () => {
    const session = await issueSession(server);
    const client = await TestClient.connect(server, session.accessToken);
    for (let round = 0; round < 10; round++) {
      runs = 0;
      gate = deferred();
      // The first holds the mailbox past every deadline; the other nine wait behind it.
      const replies = await Promise.all(Array.from({ length: 10 }, () => client.ask('Slow', 'Work')));
      expect(replies.map((r) => (r.ok ? 'ok' : r.error.code))).toEqual(Array(10).fill('TIMEOUT'));
      gate.resolve();
      // Asked after the gate opens, so it queues behind the nine and runs once they are gone.
      expect((await client.ask('Slow', 'Work')).ok).toBe(true);
      expect(runs).toBe(2); // the first (started in time) and the last: none of the nine
    }
    await client.close();
  });
});

describe('connection and in-flight quotas', () => {
  let server: TestServer;
  const clients: TestClient[] = [];
  const gate = deferred();
  const Hold = defineActor({
    name: 'Hold',
    state: () => ({}),
    messages: (message) => ({
      Wait: message({ allow: 'any', payload: z.object({}), handle: async () => (await gate.promise, { waited: true }) }),
    }),
  });

  beforeAll(async () => {
    server = await startTestServer({
      actors: [Hold],
      config: { maxConnectionsPerSession: 3, maxConnectionsPerUser: 5, maxAsksInFlight: 4, askTimeoutMs: 30_000 },
    });
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
  });
  afterAll(() => server?.close());

  const connect = async (token: string) => {
    const c = await TestClient.connect(server, token);
    clients.push(c);
    return c;
  };

  it('refuses an upgrade past the sessions’s quota with 429, and takes one again once a socket closes', async () => {
    const s = await issueSession(server);
    const open = [await connect(s.accessToken), await connect(s.accessToken), await connect(s.accessToken)];
    await expectError(refusedUpgrade(server, s.accessToken), 'RATE_LIMITED', { status: 429 });
    // Another user is not affected.
    await connect((await issueSession(server)).accessToken);
    await open[0]!.close();
    await expect(connect(s.accessToken)).resolves.toBeInstanceOf(TestClient);
  });

  it('refuses an upgrade past the user’s quota across its sessions with 429', async () => {
    const a = await issueSession(server);
    const b = await issueSession(server, { uid: a.uid });
    for (let i = 0; i < 3; i++) await connect(a.accessToken);
    for (let i = 0; i < 2; i++) await connect(b.accessToken);
    expect((await refusedUpgrade(server, b.accessToken)).status).toBe(429);
    const c = await issueSession(server, { uid: a.uid });
    expect((await refusedUpgrade(server, c.accessToken)).status).toBe(429);
  });

  it('answers RATE_LIMITED to asks past the in-flight quota of a connection, and takes asks again as answers go out', async () => {
    const s = await issueSession(server);
    const client = await connect(s.accessToken);
    const held = Array.from({ length: 4 }, () => client.ask('Hold', 'Wait'));
    const past = await client.ask('Hold', 'Wait');
    expect(past).toMatchObject({ ok: false, error: { code: 'RATE_LIMITED' } });
    // Another connection of the same user has its own quota: its ask is taken (and waits in the mailbox).
    const other = await connect(s.accessToken);
    const otherAsk = other.ask('Hold', 'Wait');
    gate.resolve();
    expect((await Promise.all([...held, otherAsk])).every((r) => r.ok)).toBe(true);
    expect((await client.ask('Hold', 'Wait')).ok).toBe(true);
  });
});

describe('a Subscribe still queued when its connection closes', () => {
  let server: TestServer;
  const gate = { open: deferred() };
  const Busy = defineActor({
    name: 'Busy',
    state: () => ({}),
    events: { Ticked: z.object({}) },
    messages: (message) => ({
      Hold: message({ allow: 'any', payload: z.object({}), handle: async () => (await gate.open.promise, { held: true }) }),
    }),
  });

  beforeAll(async () => {
    server = await startTestServer({ actors: [Busy] });
  });
  afterAll(() => server?.close());

  it('does not subscribe the closed connection (no subscriber is left behind), 20 rounds', async () => {
    const s = await issueSession(server);
    const holder = await TestClient.connect(server, s.accessToken);
    for (let round = 0; round < 20; round++) {
      gate.open = deferred();
      const held = holder.ask('Busy', 'Hold');
      const leaving = await TestClient.connect(server, s.accessToken);
      leaving.ws.send(JSON.stringify({ id: 1, to: 'Busy', type: 'Subscribe' }));
      await leaving.close();
      // Its close is handled (subscriptions removed) before the queued Subscribe gets its turn.
      await eventually(() => internals(server).connections.size <= 1, { intervalMs: 5 });
      gate.open.resolve();
      await held;
      expect((await holder.ask('Busy', 'Hold')).ok).toBe(true); // runs after the queued Subscribe
      expect(internals(server).registry.subscribers('Busy')).toBe(0);
    }
    await holder.close();
  });
});
