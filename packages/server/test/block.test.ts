/**
 * Block and unblock (docs/protocol.md, the heart of the product), against a real server on loopback with a real lowdb
 * store: what is durably on disk when the answer arrives, which sockets are closed by then, what the user can
 * still do afterwards, and how concurrent blocks and unblocks of one user end.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import WebSocket from 'ws';
import {
  eventually,
  expectOk,
  issueSession,
  loginWithPassword,
  refusedUpgrade,
  startTestServer,
  TestClient,
  type Closed,
  type TestServer,
} from '../src/testing/index.js';
import { UserStore } from '../src/actors/user-store.js';
import { storeOnDisk } from './helpers.js';

type Doc = Record<string, Record<string, any>>;

/** The store file as it is on disk at this instant (read synchronously, so nothing can run in between). */
function diskNow(server: TestServer): Doc {
  return storeOnDisk(server.dataDir) as Doc;
}

let askCounter = 0;

/**
 * Sends one ask and, synchronously in the 'message' event that carries its answer (before any other socket event
 * of this process can run), takes `snapshot()`. That is "the moment the answer arrives".
 */
function askWithSnapshot<T>(client: TestClient, to: string, type: string, payload: unknown, snapshot: () => T): Promise<{ reply: any; at: T }> {
  const id = `snap${++askCounter}`;
  return new Promise((resolve) => {
    const on = (data: WebSocket.RawData) => {
      const frame = JSON.parse(data.toString());
      if (frame.id !== id) return;
      const at = snapshot();
      client.ws.off('message', on);
      resolve({ reply: frame, at });
    };
    client.ws.on('message', on);
    client.ws.send(JSON.stringify({ id, to, type, payload }));
  });
}

// Several logins with real password hashing come from 127.0.0.1; the login limiter is tested elsewhere.
const config = { loginMaxFailures: 10_000 };

describe('FingerprintStore.Block by a fingerprint (not the uid)', () => {
  let server: TestServer;
  const clients: TestClient[] = [];
  const track = (c: TestClient) => (clients.push(c), c);

  beforeAll(async () => {
    server = await startTestServer({ config });
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await server?.close();
  });

  it('blocks the owner durably before answering, closes its socket 4003, refuses login and upgrade; unblock lets it log in again and keeps old sessions revoked', async () => {
    const password = 'bob has a long password';
    const bob = await server.ask(UserStore.Create, { username: 'bob', password, role: 'user' });
    const first = await loginWithPassword(server, { username: 'bob', password });
    expect(first.status).toBe(200);
    // The device id the server issued to bob's laptop, sent with its later logins.
    const laptop: string = first.body.deviceId;
    expect(laptop).toMatch(/^dv_/);

    const adminSession = await issueSession(server, { role: 'admin' });
    const admin = track(await TestClient.connect(server, adminSession.accessToken));

    // The fingerprint the login recorded: a hash, not the uid, owned by bob's uid.
    const recent = await expectOk(admin.ask('FingerprintStore', 'GetMostRecent', { limit: 500 }));
    const bobs = recent.items.filter((f: any) => f.uid === bob.uid);
    expect(bobs).toHaveLength(1);
    const fp: string = bobs[0].fingerprint;
    expect(fp).toMatch(/^fp_/);
    expect(fp).not.toBe(bob.uid);
    expect(fp).not.toContain(bob.uid);
    expect(await expectOk(admin.ask('FingerprintStore', 'Get', { fingerprint: fp }))).toMatchObject({ fingerprint: fp, uid: bob.uid, blocked: false, count: 1 });
    expect(diskNow(server).sessions![first.body.sid].fingerprint).toBe(fp);

    const victim = track(await TestClient.connect(server, first.body.accessToken));
    expect((await victim.ask('UserStore', 'GetOwn')).ok).toBe(true);
    await expectOk(admin.ask('SessionStore', 'Subscribe'));

    const { reply, at } = await askWithSnapshot(admin, 'FingerprintStore', 'Block', { fingerprint: fp }, () => diskNow(server));
    expect(reply).toEqual({ id: reply.id, ok: true, result: expect.objectContaining({ uid: bob.uid, blocked: true }) });
    // At the moment the answer arrived, the file on disk already held both flags and the revoked session.
    expect(at.users![bob.uid].blocked).toBe(true);
    expect(row(at, fp).blocked).toBe(true);
    expect(at.sessions![first.body.sid]).toMatchObject({ revokedAt: expect.any(Number), revokeReason: 'blocked' });
    // The user was found by the fingerprint's uid: no other user changed.
    expect(Object.values(at.users!).filter((u: any) => u.blocked).map((u: any) => u.uid)).toEqual([bob.uid]);

    // The open socket got 4003 blocked.
    expect(await victim.closed).toEqual({ code: 4003, reason: 'blocked' });

    // Login is refused with 403 BLOCKED (the right password, the same device or another).
    for (const device of [laptop, 'bob-phone', undefined]) {
      const res = await loginWithPassword(server, { username: 'bob', password, deviceId: device });
      expect(res.status).toBe(403);
      expect(res.body).toEqual({ error: { code: 'BLOCKED', message: expect.any(String) } });
    }
    const before = diskNow(server);
    expect(Object.values(before.sessions!).filter((s: any) => s.uid === bob.uid)).toHaveLength(1);

    // The old access token opens no socket, and nothing is registered for it.
    await eventually(async () => (await expectOk(admin.ask('SessionStore', 'Stats'))).connections === 1);
    const pushesBefore = admin.pushes.length;
    const refused = await refusedUpgrade(server, first.body.accessToken);
    expect([401, 403]).toContain(refused.status);
    expect(['SESSION_REVOKED', 'BLOCKED']).toContain(refused.body.error.code);
    // Stats is answered by the SessionStore mailbox after any Register it would have handled, and its answer
    // travels on the same socket as the pushes: a registration would show as a `connected` push before it.
    expect((await expectOk(admin.ask('SessionStore', 'Stats'))).connections).toBe(1);
    const connectedPushes = admin.pushes.slice(pushesBefore).filter((p: any) => p.event === 'SessionChanged' && p.payload.change === 'connected');
    expect(connectedPushes).toEqual([]);
    expect(diskNow(server).sessions).toEqual(before.sessions);

    // Unblock (by the fingerprint): both flags clear on disk before the answer; login works again.
    const unblock = await askWithSnapshot(admin, 'FingerprintStore', 'Unblock', { fingerprint: fp }, () => diskNow(server));
    expect(unblock.reply.ok).toBe(true);
    expect(unblock.reply.result).toMatchObject({ uid: bob.uid, blocked: false });
    expect(unblock.at.users![bob.uid].blocked).toBe(false);
    expect(row(unblock.at, fp).blocked).toBe(false);
    // Sessions revoked by the block stay revoked.
    expect(unblock.at.sessions![first.body.sid]).toMatchObject({ revokedAt: at.sessions![first.body.sid].revokedAt, revokeReason: 'blocked' });

    const again = await loginWithPassword(server, { username: 'bob', password, deviceId: laptop });
    expect(again.status).toBe(200);
    expect(again.body.sid).not.toBe(first.body.sid);
    expect(row(diskNow(server), fp)).toMatchObject({ blocked: false, count: 2 });
    const refusedAgain = await refusedUpgrade(server, first.body.accessToken);
    expect(refusedAgain.status).toBe(401);
    expect(refusedAgain.body.error.code).toBe('SESSION_REVOKED');
    const fresh = track(await TestClient.connect(server, again.body.accessToken));
    expect((await fresh.ask('UserStore', 'GetOwn')).ok).toBe(true);

    // Block by fingerprint again, then unblock by uid (UserStore.Unblock): it clears the fingerprint too.
    const reblock = await askWithSnapshot(admin, 'FingerprintStore', 'Block', { fingerprint: fp }, () => diskNow(server));
    expect(reblock.reply.ok).toBe(true);
    expect(reblock.at.users![bob.uid].blocked).toBe(true);
    expect(row(reblock.at, fp).blocked).toBe(true);
    expect(reblock.at.sessions![again.body.sid].revokeReason).toBe('blocked');
    expect(await fresh.closed).toEqual({ code: 4003, reason: 'blocked' });
    expect((await loginWithPassword(server, { username: 'bob', password, deviceId: laptop })).status).toBe(403);

    const byUid = await askWithSnapshot(admin, 'UserStore', 'Unblock', { uid: bob.uid }, () => diskNow(server));
    expect(byUid.reply.ok).toBe(true);
    expect(byUid.at.users![bob.uid].blocked).toBe(false);
    expect(row(byUid.at, fp).blocked).toBe(false);
    for (const sid of [first.body.sid, again.body.sid]) expect(byUid.at.sessions![sid].revokedAt).toEqual(expect.any(Number));
    const third = await loginWithPassword(server, { username: 'bob', password, deviceId: laptop });
    expect(third.status).toBe(200);
    expect((await refusedUpgrade(server, again.body.accessToken)).status).toBe(401);
  });

  it('Block and Unblock of an unknown fingerprint answer NOT_FOUND and change nothing', async () => {
    const adminSession = await issueSession(server, { role: 'admin' });
    const admin = track(await TestClient.connect(server, adminSession.accessToken));
    const before = diskNow(server);
    for (const type of ['Block', 'Unblock']) {
      const reply = await admin.ask('FingerprintStore', type, { fingerprint: 'fp_doesnotexist' });
      expect(reply).toEqual({ id: expect.any(String), ok: false, error: { code: 'NOT_FOUND', message: expect.any(String) } });
    }
    const after = diskNow(server);
    expect(after.users).toEqual(before.users);
    expect(after.fingerprints).toEqual(before.fingerprints);
  });

  it('a user (not an admin) may not block: FORBIDDEN, nothing changes', async () => {
    const adminSession = await issueSession(server, { role: 'admin' });
    const plain = await issueSession(server, { role: 'user' });
    const c = track(await TestClient.connect(server, plain.accessToken));
    const fb = await c.ask('FingerprintStore', 'Block', { fingerprint: adminSession.fingerprint });
    const ub = await c.ask('UserStore', 'Block', { uid: adminSession.uid });
    for (const r of [fb, ub]) expect(r.ok || r.error.code).toBe('FORBIDDEN');
    expect(diskNow(server).users![adminSession.uid].blocked).toBe(false);
    expect(row(diskNow(server), adminSession.fingerprint).blocked).toBe(false);
  });
});

// ---- concurrent blocks and unblocks ----

type Op =
  | { kind: 'UserStore.Block' }
  | { kind: 'UserStore.Unblock' }
  | { kind: 'FingerprintStore.Block'; fp: string }
  | { kind: 'FingerprintStore.Unblock'; fp: string };

interface Flags {
  user: boolean;
  fps: Record<string, boolean>;
}

/**
 * What each op does to the stored flags (docs/protocol.md): a block sets the user's flag (a fingerprint block also the
 * fingerprint's); an unblock, by uid or by fingerprint, clears the user's flag and every fingerprint of the user.
 */
function apply(state: Flags, op: Op): Flags {
  switch (op.kind) {
    case 'UserStore.Block':
      return { user: true, fps: { ...state.fps } };
    case 'FingerprintStore.Block':
      return { user: true, fps: { ...state.fps, [op.fp]: true } };
    case 'UserStore.Unblock':
    case 'FingerprintStore.Unblock':
      return { user: false, fps: Object.fromEntries(Object.keys(state.fps).map((k) => [k, false])) };
  }
}

function toFrame(op: Op, id: string, uid: string): string {
  const [to, type] = op.kind.split('.') as [string, string];
  const payload = to === 'UserStore' ? { uid } : { fingerprint: (op as { fp: string }).fp };
  return JSON.stringify({ id, to, type, payload });
}

/** A small seeded PRNG, so that a failing round can be replayed. */
function mulberry32(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The one stored row of a device (each device here is used by one user; rows are kept per device and user). */
function row(doc: Doc, fingerprint: string): any {
  const rows = Object.values(doc.fingerprints ?? {}).filter((f: any) => f.fingerprint === fingerprint);
  expect(rows).toHaveLength(1);
  return rows[0];
}

function storedFlags(doc: Doc, uid: string, fps: string[]): Flags {
  return { user: doc.users![uid].blocked, fps: Object.fromEntries(fps.map((f) => [f, row(doc, f).blocked])) };
}

describe('concurrent Block/Unblock of one user', () => {
  let server: TestServer;
  const clients: TestClient[] = [];
  const ROUNDS = 30;
  const OPS_PER_ROUND = 8;

  beforeAll(async () => {
    // Hundreds of asks in a second over one socket: lift the per-connection ask limit (tested in bad-input.test.ts).
    server = await startTestServer({ config: { ...config, askRate: 100_000, askBurst: 100_000 } });
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await server?.close();
  });

  /** A target user with two fingerprints (two devices), and the op mix for one round. */
  async function target() {
    const a = await issueSession(server, { role: 'user' });
    const b = await issueSession(server, { uid: a.uid });
    const fps = [a.fingerprint, b.fingerprint];
    const ops = (rand: () => number): Op[] => {
      const all: Op[] = [
        { kind: 'UserStore.Block' },
        { kind: 'UserStore.Unblock' },
        ...fps.flatMap((fp): Op[] => [
          { kind: 'FingerprintStore.Block', fp },
          { kind: 'FingerprintStore.Unblock', fp },
        ]),
      ];
      return Array.from({ length: OPS_PER_ROUND }, () => all[Math.floor(rand() * all.length)]!);
    };
    return { uid: a.uid, fps, ops, sessions: [a, b] };
  }

  it(`over one admin socket (${ROUNDS} rounds): the stored state is that of the ops replayed in answer order, i.e. of the last one answered`, async () => {
    // Why one socket: answers sent by the server to different sockets may be read by this process in an order
    // that differs from the order the server sent them in (two TCP connections, no ordering between them), so
    // "the last op answered" across sockets is not well defined. On one socket, frames arrive in the order they
    // were sent, and UserStore answers each block/unblock when it finishes it, one at a time in its mailbox — so
    // the arrival order on one socket IS the order in which the server applied them. The ops still race inside
    // the server: FingerprintStore ops take an extra hop (FingerprintStore → UserStore) and so interleave with
    // UserStore ops sent before or after them.
    const t = await target();
    const adminSession = await issueSession(server, { role: 'admin' });
    const admin = await TestClient.connect(server, adminSession.accessToken);
    clients.push(admin);
    let reordered = 0;

    for (let round = 0; round < ROUNDS; round++) {
      const rand = mulberry32(1000 + round);
      const ops = t.ops(rand);
      const start = storedFlags(diskNow(server), t.uid, t.fps);

      const arrived: string[] = [];
      const replies = new Map<string, any>();
      const done = new Promise<void>((resolve) => {
        const on = (data: WebSocket.RawData) => {
          const frame = JSON.parse(data.toString());
          if (typeof frame.id !== 'string' || !frame.id.startsWith(`r${round}-`)) return;
          arrived.push(frame.id);
          replies.set(frame.id, frame);
          if (arrived.length === ops.length) {
            admin.ws.off('message', on);
            resolve();
          }
        };
        admin.ws.on('message', on);
      });
      ops.forEach((op, i) => admin.ws.send(toFrame(op, `r${round}-${i}`, t.uid)));
      await done;

      const context = `round ${round}: sent ${ops.map((o, i) => `${i}:${o.kind}${'fp' in o ? `(${t.fps.indexOf(o.fp)})` : ''}`).join(' ')}; answered ${arrived.join(' ')}`;
      for (const [id, frame] of replies) expect({ context, id, ok: frame.ok, error: frame.error }).toEqual({ context, id, ok: true, error: undefined });
      if (arrived.some((id, i) => id !== `r${round}-${i}`)) reordered += 1;

      const inAnswerOrder = arrived.map((id) => ops[Number(id.split('-')[1])]!);
      const expected = inAnswerOrder.reduce(apply, start);
      const last = inAnswerOrder[inAnswerOrder.length - 1]!;
      // The user's flag is that of the last op answered.
      expect({ context, user: expected.user }).toEqual({ context, user: last.kind.endsWith('.Block') });
      expect({ context, stored: storedFlags(diskNow(server), t.uid, t.fps) }).toEqual({ context, stored: expected });
      // The server's own view agrees with the disk.
      const view = await expectOk(admin.ask('UserStore', 'Get', { uid: t.uid }));
      expect({ context, blocked: view.blocked }).toEqual({ context, blocked: expected.user });
      // The last op's answer carries the final user state.
      expect({ context, answered: replies.get(arrived[arrived.length - 1]!).result.blocked }).toEqual({ context, answered: expected.user });
    }
    // The race is real: FingerprintStore ops reach UserStore one hop later than UserStore ops sent beside them,
    // so in some rounds the server applied the ops in an order other than the send order.
    expect(reordered).toBeGreaterThan(0);
  });

  it('from several admin sockets at once (10 rounds): every op is answered and the stored state is that of the last op the server applied', async () => {
    // Answers on different sockets have no common order on arrival, so the reference order here is the server's
    // own: each UserStore block/unblock publishes one UserChanged as it is applied, and those pushes arrive on one
    // subscriber socket in the order they were sent. The final stored user flag must be that of the last push.
    const t = await target();
    const admins: TestClient[] = [];
    for (let i = 0; i < 4; i++) admins.push(await TestClient.connect(server, (await issueSession(server, { role: 'admin' })).accessToken));
    const watcher = await TestClient.connect(server, (await issueSession(server, { role: 'admin' })).accessToken);
    clients.push(...admins, watcher);
    await expectOk(watcher.ask('UserStore', 'Subscribe'));

    for (let round = 0; round < 10; round++) {
      const ops = t.ops(mulberry32(5000 + round));
      const pushesBefore = watcher.pushes.filter((p: any) => p.event === 'UserChanged' && p.payload.user.uid === t.uid).length;
      const replies = await Promise.all(
        ops.map((op, i) => {
          const client = admins[i % admins.length]!;
          const id = `m${round}-${i}`;
          return client.sendRaw(toFrame(op, id, t.uid), id);
        }),
      );
      for (const r of replies) expect(r.ok ? 'ok' : r.error.code).toBe('ok');
      // Wait until the watcher has all of this round's pushes (each op publishes exactly one UserChanged).
      const all = await pushesFor(watcher, t.uid, pushesBefore + ops.length);
      expect(all.length - pushesBefore).toBe(ops.length);
      const lastPushed = all[all.length - 1]!.payload.user.blocked;
      const stored = diskNow(server).users![t.uid].blocked;
      expect({ round, stored }).toEqual({ round, stored: lastPushed });
      // Blocks and unblocks pushed match the ops sent, one for one.
      const pushedBlocks = all.slice(pushesBefore).filter((p: any) => p.payload.user.blocked).length;
      expect(pushedBlocks).toBe(ops.filter((o) => o.kind.endsWith('.Block')).length);
      // And the fingerprints agree with the user: if the user ends unblocked, so do all its fingerprints.
      if (!stored) for (const fp of t.fps) expect(row(diskNow(server), fp).blocked).toBe(false);
    }
  });

  /** The UserChanged pushes about `uid`, once there are at least `count` of them. */
  async function pushesFor(watcher: TestClient, uid: string, count: number): Promise<any[]> {
    for (;;) {
      const mine = watcher.pushes.filter((p: any) => p.event === 'UserChanged' && p.payload.user.uid === uid);
      if (mine.length >= count) return mine;
      await watcher.waitForPush('UserChanged', watcher.pushes.filter((p) => p.event === 'UserChanged').length + 1);
    }
  }
});

describe('blocking a user with several sessions and sockets', () => {
  let server: TestServer;
  let clients: TestClient[] = [];

  beforeAll(async () => {
    server = await startTestServer({ config });
  });
  afterEach(async () => {
    await Promise.all(clients.map((c) => c.close()));
    clients = [];
  });
  afterAll(async () => {
    await server?.close();
  });

  async function setup() {
    const s1 = await issueSession(server, { role: 'user' });
    const s2 = await issueSession(server, { uid: s1.uid });
    const s3 = await issueSession(server, { uid: s1.uid });
    const sessions = [s1, s2, s3];
    const victims: TestClient[] = [];
    for (const s of sessions) for (let i = 0; i < 2; i++) victims.push(await TestClient.connect(server, s.accessToken));
    // A bystander: another user's socket, which must stay open.
    const bystanderSession = await issueSession(server, { role: 'user' });
    const bystander = await TestClient.connect(server, bystanderSession.accessToken);
    const admin = await TestClient.connect(server, (await issueSession(server, { role: 'admin' })).accessToken);
    clients.push(...victims, bystander, admin);
    // Every victim is registered and answering before the block.
    for (const v of victims) expect((await v.ask('UserStore', 'GetOwn')).ok).toBe(true);
    const closes: Array<{ index: number; closed: Closed }> = [];
    victims.forEach((v, index) => void v.closed.then((closed) => closes.push({ index, closed })));
    return { uid: s1.uid, sessions, victims, bystander, admin, closes };
  }

  for (const via of ['UserStore.Block', 'FingerprintStore.Block'] as const) {
    it(`${via}: every socket of every session is closed 4003 before the answer arrives; the sessions are revoked on disk by then`, async () => {
      const { uid, sessions, victims, bystander, admin, closes } = await setup();
      const [to, type] = via.split('.') as [string, string];
      const payload = to === 'UserStore' ? { uid } : { fingerprint: sessions[1]!.fingerprint };

      const { reply, at } = await askWithSnapshot(admin, to, type, payload, () => ({
        // A socket that has read the server's close frame is no longer OPEN (ws starts its closing handshake
        // synchronously on reading it). The server wrote every close frame before it wrote this answer, and
        // this process reads ready sockets in the order their data arrived, so all are read by now.
        notOpen: victims.map((v) => v.ws.readyState !== WebSocket.OPEN),
        closesSeen: closes.length,
        doc: diskNow(server),
      }));
      expect(reply.ok).toBe(true);
      expect(reply.result).toMatchObject({ uid, blocked: true });

      // The durable part, which holds regardless of socket scheduling: at answer time the user is blocked and
      // every session revoked (reason blocked) in the file on disk.
      expect(at.doc.users![uid].blocked).toBe(true);
      for (const s of sessions) expect(at.doc.sessions![s.sid]).toMatchObject({ revokedAt: expect.any(Number), revokeReason: 'blocked' });
      if (via === 'FingerprintStore.Block') expect(row(at.doc, sessions[1]!.fingerprint).blocked).toBe(true);

      // Every close frame had been received when the answer was read.
      expect(at.notOpen).toEqual(victims.map(() => true));

      // And every socket ends with 4003 blocked.
      const closed = await Promise.all(victims.map((v) => v.closed));
      expect(closed).toEqual(victims.map(() => ({ code: 4003, reason: 'blocked' })));
      expect(closes).toHaveLength(victims.length);

      // Other users are not touched.
      expect(bystander.ws.readyState).toBe(WebSocket.OPEN);
      expect((await bystander.ask('UserStore', 'GetOwn')).ok).toBe(true);

      // No session of the user can open a socket now.
      for (const s of sessions) expect([401, 403]).toContain((await refusedUpgrade(server, s.accessToken)).status);
      await eventually(async () => (await expectOk(admin.ask('SessionStore', 'Stats'))).connections === 2);
    });
  }

  it('a block racing a new upgrade of the same user: the upgrade is either refused or closed 4003, never left open', async () => {
    const s = await issueSession(server, { role: 'user' });
    const admin = await TestClient.connect(server, (await issueSession(server, { role: 'admin' })).accessToken);
    clients.push(admin);
    const attempts = Array.from({ length: 5 }, () =>
      TestClient.connect(server, s.accessToken).then(
        async (c) => {
          clients.push(c);
          return { opened: true as const, closed: await c.closed };
        },
        (err: { status?: number }) => ({ opened: false as const, status: err.status }),
      ),
    );
    const block = admin.ask('UserStore', 'Block', { uid: s.uid });
    const [answer, ...outcomes] = await Promise.all([block, ...attempts]);
    expect(answer.ok).toBe(true);
    for (const o of outcomes) {
      if (o.opened) expect(o.closed).toEqual({ code: 4003, reason: 'blocked' });
      else expect([401, 403]).toContain(o.status);
    }
    await eventually(async () => (await expectOk(admin.ask('SessionStore', 'Stats'))).connections === 1);
  });
});
