/**
 * Bad input over real sockets (docs/protocol.md): every malformed or hostile frame gets the documented error, with the
 * id echoed when one could be read, and never closes the socket by itself — except the transport's own limits
 * (1009 too big, 1007 invalid UTF-8). Prototype keys never reach a prototype, and the ask rate limit counts
 * every frame, bad ones included.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import WebSocket from 'ws';
import { expectError, issueSession, startTestServer, TestClient, type TestServer } from '../src/testing/index.js';
import { storeOnDisk } from './helpers.js';

type Frame = { id?: unknown; ok?: boolean; result?: any; error?: { code: string; message: string }; event?: string };

/** Sends one frame and resolves with the next frame the server sends on that socket (sockets here get no pushes). */
function exchange(client: TestClient, data: string | Buffer, binary = false): Promise<Frame> {
  return new Promise((resolve) => {
    client.ws.once('message', (d) => resolve(JSON.parse(d.toString()) as Frame));
    client.ws.send(data, { binary });
  });
}

/** An error reply with this code (expectError) that echoes this id and says nothing internal in its message. */
async function expectRefusal(frame: Frame, code: string, id: unknown): Promise<void> {
  const error = await expectError(frame, code);
  expect(frame).toEqual({ id, ok: false, error: { code, message: expect.any(String) } });
  expect(error.message).not.toMatch(/\bat .*\.(ts|js):\d+|node_modules|\/work\//);
}

const raw = (o: Record<string, unknown>) => JSON.stringify(o);

/** The store file as it is on disk right now. */
async function disk(server: TestServer): Promise<Record<string, Record<string, any>>> {
  return storeOnDisk(server.dataDir);
}

describe('bad frames over a real socket', () => {
  let server: TestServer;
  let user: Awaited<ReturnType<typeof issueSession>>;
  let admin: Awaited<ReturnType<typeof issueSession>>;
  let other: Awaited<ReturnType<typeof issueSession>>;
  /** Opened first and used only at the very end: a bad frame elsewhere never disturbs it. */
  let healthy: TestClient;
  /** Gets only bad frames (and asks answered with errors). */
  let bad: TestClient;
  let adminClient: TestClient;
  const clients: TestClient[] = [];

  beforeAll(async () => {
    server = await startTestServer();
    user = await issueSession(server, { role: 'user' });
    admin = await issueSession(server, { role: 'admin' });
    other = await issueSession(server, { role: 'user' });
    healthy = await TestClient.connect(server, user.accessToken);
    bad = await TestClient.connect(server, user.accessToken);
    adminClient = await TestClient.connect(server, admin.accessToken);
    clients.push(healthy, bad, adminClient);
  });

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await server?.close();
  });

  describe('shape: BAD_FRAME', () => {
    it.each([
      ['not JSON', 'hello'],
      ['truncated JSON', '{"id":"1","to":"UserStore"'],
      ['an empty text frame', ''],
      ['a JSON array', '[{"id":"1","to":"UserStore","type":"GetOwn"}]'],
      ['a JSON number', '42'],
      ['a JSON string', '"GetOwn"'],
      ['JSON null', 'null'],
      ['JSON true', 'true'],
    ])('%s → BAD_FRAME with id null', async (_name, text) => {
      await expectRefusal(await exchange(bad, text), 'BAD_FRAME', null);
    });

    it.each([
      ['missing', raw({ to: 'UserStore', type: 'GetOwn' })],
      ['null', raw({ id: null, to: 'UserStore', type: 'GetOwn' })],
      ['empty', raw({ id: '', to: 'UserStore', type: 'GetOwn' })],
      ['a fraction', raw({ id: 1.5, to: 'UserStore', type: 'GetOwn' })],
      ['an object', raw({ id: { a: 1 }, to: 'UserStore', type: 'GetOwn' })],
      ['too long', raw({ id: 'i'.repeat(129), to: 'UserStore', type: 'GetOwn' })],
      ['only behind __proto__', '{"__proto__":{"id":"p1"},"to":"UserStore","type":"GetOwn"}'],
    ])('id %s → BAD_FRAME with id null', async (_name, text) => {
      await expectRefusal(await exchange(bad, text), 'BAD_FRAME', null);
    });

    it.each([
      ['to missing', raw({ id: 'k1', type: 'GetOwn' }), 'k1'],
      ['to a number', raw({ id: 'k2', to: 5, type: 'GetOwn' }), 'k2'],
      ['to empty', raw({ id: 'k3', to: '', type: 'GetOwn' }), 'k3'],
      ['to with a slash', raw({ id: 'k4', to: '../UserStore', type: 'GetOwn' }), 'k4'],
      ['to too long', raw({ id: 'k5', to: 'U'.repeat(65), type: 'GetOwn' }), 'k5'],
      ['type missing', raw({ id: 7, to: 'UserStore' }), 7],
      ['type an array', raw({ id: 8, to: 'UserStore', type: ['GetOwn'] }), 8],
      ['type with a space', raw({ id: 0, to: 'UserStore', type: 'Get Own' }), 0],
    ])('%s, with a readable id → BAD_FRAME with the id echoed', async (_name, text, id) => {
      await expectRefusal(await exchange(bad, text), 'BAD_FRAME', id);
    });

    it.each([
      ['an array', []],
      ['a string', 'x'],
      ['a number', 1],
      ['a boolean', true],
    ])('payload %s → BAD_FRAME with the id echoed', async (_name, payload) => {
      await expectRefusal(await exchange(bad, raw({ id: 'p', to: 'UserStore', type: 'GetOwn', payload })), 'BAD_FRAME', 'p');
    });

    it('a binary frame is BAD_FRAME (even one holding a valid ask)', async () => {
      await expectRefusal(await exchange(bad, Buffer.from(raw({ id: 'b', to: 'UserStore', type: 'GetOwn' })), true), 'BAD_FRAME', null);
      await expectRefusal(await exchange(bad, Buffer.from([0, 1, 2, 255]), true), 'BAD_FRAME', null);
    });
  });

  describe('routing: UNKNOWN_ACTOR, UNKNOWN_MESSAGE', () => {
    it('an unknown actor → UNKNOWN_ACTOR', async () => {
      await expectRefusal(await exchange(bad, raw({ id: 'u1', to: 'NoSuchActor', type: 'GetOwn' })), 'UNKNOWN_ACTOR', 'u1');
      await expectRefusal(await exchange(bad, raw({ id: 'u2', to: 'userstore', type: 'GetOwn' })), 'UNKNOWN_ACTOR', 'u2');
    });

    it('an unknown message → UNKNOWN_MESSAGE', async () => {
      await expectRefusal(await exchange(bad, raw({ id: 'm1', to: 'UserStore', type: 'Nope' })), 'UNKNOWN_MESSAGE', 'm1');
      await expectRefusal(await exchange(bad, raw({ id: 'm2', to: 'UserStore', type: 'getown' })), 'UNKNOWN_MESSAGE', 'm2');
    });

    it('an unknown message of an admin-only actor is UNKNOWN_MESSAGE, not FORBIDDEN (checks in docs/protocol.md order)', async () => {
      await expectRefusal(await exchange(bad, raw({ id: 'm3', to: 'FingerprintStore', type: 'Nope', payload: { bad: true } })), 'UNKNOWN_MESSAGE', 'm3');
    });

    it.each([
      ['SessionStore', 'Register'],
      ['SessionStore', 'Unregister'],
      ['SessionStore', 'Resolve'],
      ['SessionStore', 'Create'],
      ['SessionStore', 'End'],
      ['SessionStore', 'EndAllForUser'],
      ['SessionStore', 'UpdateRole'],
      ['UserStore', 'FindForLogin'],
      ['UserStore', 'RecordLogin'],
      ['UserStore', 'CreateGuest'],
      ['UserStore', 'Provision'],
      ['UserStore', 'Ensure'],
      ['FingerprintStore', 'Seen'],
      ['FingerprintStore', 'IsBlocked'],
      ['FingerprintStore', 'SetBlocked'],
      ['FingerprintStore', 'SetBlockedForUser'],
    ])('internal message %s.%s is UNKNOWN_MESSAGE from the wire, even for an admin', async (to, type) => {
      const payload = { uid: user.uid, sid: user.sid, connectionId: 'x', username: 'hacker', password: 'password123', role: 'admin', fingerprints: [], blocked: true };
      await expectRefusal(await exchange(bad, raw({ id: 'i', to, type, payload })), 'UNKNOWN_MESSAGE', 'i');
      await expectRefusal(await exchange(adminClient, raw({ id: 'j', to, type, payload })), 'UNKNOWN_MESSAGE', 'j');
    });

    it.each(['constructor', 'toString', 'hasOwnProperty', 'valueOf', 'isPrototypeOf', 'propertyIsEnumerable', 'toLocaleString'])(
      'type %s (an Object.prototype member) → UNKNOWN_MESSAGE, for a user and for an admin',
      async (type) => {
        for (const to of ['UserStore', 'SessionStore', 'FingerprintStore']) {
          await expectRefusal(await exchange(bad, raw({ id: 'pt', to, type })), 'UNKNOWN_MESSAGE', 'pt');
          await expectRefusal(await exchange(adminClient, raw({ id: 'pa', to, type })), 'UNKNOWN_MESSAGE', 'pa');
        }
      },
    );

    it.each(['__proto__', '__defineGetter__', '__lookupGetter__'])('type %s → refused by the name grammar (BAD_FRAME, id echoed)', async (type) => {
      // Names must start with a letter, so these never get past the shape check. If the grammar is ever
      // loosened, UNKNOWN_MESSAGE is the only other acceptable answer.
      for (const client of [bad, adminClient]) {
        const reply = await exchange(client, raw({ id: 'pp', to: 'UserStore', type }));
        expect(reply.ok).toBe(false);
        expect(reply.id).toBe('pp');
        expect(['BAD_FRAME', 'UNKNOWN_MESSAGE']).toContain(reply.error!.code);
        expect(reply.error!.code).toBe('BAD_FRAME');
      }
    });

    it.each(['constructor', 'toString', 'hasOwnProperty', 'valueOf'])('to %s → UNKNOWN_ACTOR', async (to) => {
      await expectRefusal(await exchange(bad, raw({ id: 'ta', to, type: 'GetOwn' })), 'UNKNOWN_ACTOR', 'ta');
      await expectRefusal(await exchange(adminClient, raw({ id: 'tb', to, type: 'constructor' })), 'UNKNOWN_ACTOR', 'tb');
    });

    it('to __proto__ → BAD_FRAME (the name grammar), id echoed', async () => {
      await expectRefusal(await exchange(bad, raw({ id: 'tp', to: '__proto__', type: 'GetOwn' })), 'BAD_FRAME', 'tp');
    });
  });

  describe('payloads: prototype keys, BAD_PAYLOAD, missing payload', () => {
    const pollutionKeys = ['role', 'admin', 'polluted', 'isAdmin', 'blocked', 'system'];

    function expectNoPollution(): void {
      const probe: Record<string, unknown> = {};
      for (const k of pollutionKeys) {
        expect(probe[k]).toBeUndefined();
        expect(Object.hasOwn(Object.prototype, k)).toBe(false);
      }
    }

    it('__proto__ / constructor keys in an Update payload neither pollute Object.prototype nor change a role', async () => {
      const texts = [
        `{"id":1,"to":"UserStore","type":"Update","payload":{"__proto__":{"role":"admin","polluted":true},"uid":"${user.uid}"}}`,
        `{"id":2,"to":"UserStore","type":"Update","payload":{"uid":"${user.uid}","constructor":{"prototype":{"role":"admin","polluted":true}}}}`,
        `{"id":3,"to":"UserStore","type":"Update","payload":{"uid":"${user.uid}","displayName":"Mallory","__proto__":{"role":"admin"},"constructor":{"prototype":{"isAdmin":true}}}}`,
        `{"id":4,"to":"UserStore","type":"Update","payload":{"__proto__":{"uid":"${user.uid}","role":"admin"}}}`,
      ];
      for (const [i, text] of texts.entries()) {
        const reply = await exchange(bad, text);
        expect(reply.id).toBe(i + 1);
        // Rejected, or accepted with the prototype keys ignored: either way the role is still 'user'.
        if (reply.ok) expect(reply.result.role).toBe('user');
        else expect(['BAD_PAYLOAD', 'FORBIDDEN']).toContain(reply.error!.code);
        expectNoPollution();
      }
      // The uid hidden behind __proto__ is not read: that ask had no uid.
      const own = await exchange(bad, raw({ id: 'own', to: 'UserStore', type: 'GetOwn' }));
      expect(own.ok).toBe(true);
      expect(own.result.role).toBe('user');
      // The next ask is authorized as a user still.
      await expectRefusal(await exchange(bad, raw({ id: 'all', to: 'UserStore', type: 'GetAll' })), 'FORBIDDEN', 'all');
      const stored = (await disk(server)).users![user.uid];
      expect(stored.role).toBe('user');
      expect(Object.keys(stored)).not.toContain('__proto__');
      expect(Object.keys(stored)).not.toContain('constructor');
      expect(Object.keys(stored)).not.toContain('polluted');
    });

    it('an admin Update with a __proto__ role changes no role either', async () => {
      const text = `{"id":"a1","to":"UserStore","type":"Update","payload":{"uid":"${other.uid}","__proto__":{"role":"admin"}}}`;
      const reply = await exchange(adminClient, text);
      if (reply.ok) expect(reply.result.role).toBe('user');
      expect((await disk(server)).users![other.uid].role).toBe('user');
      expectNoPollution();
    });

    it('a sid only behind __proto__ is not read: Revoke is BAD_PAYLOAD and the session stays live', async () => {
      const reply = await exchange(adminClient, `{"id":"r","to":"SessionStore","type":"Revoke","payload":{"__proto__":{"sid":"${other.sid}"}}}`);
      await expectRefusal(reply, 'BAD_PAYLOAD', 'r');
      expect((await disk(server)).sessions![other.sid].revokedAt).toBeNull();
    });

    it.each([
      ['UserStore.Update without uid', 'UserStore', 'Update', {}],
      ['UserStore.Update with a uid that is not a uuid', 'UserStore', 'Update', { uid: 'not-a-uuid' }],
      ['UserStore.Update with a numeric displayName', 'UserStore', 'Update', { uid: '00000000-0000-4000-8000-000000000000', displayName: 5 }],
      ['SessionStore.Revoke with a numeric sid', 'SessionStore', 'Revoke', { sid: 5 }],
      ['SessionStore.Revoke with a path as sid', 'SessionStore', 'Revoke', { sid: '../../etc/passwd' }],
    ])('%s → BAD_PAYLOAD (as a user)', async (_name, to, type, payload) => {
      await expectRefusal(await exchange(bad, raw({ id: 'bp', to, type, payload })), 'BAD_PAYLOAD', 'bp');
    });

    it.each([
      ['FingerprintStore.GetMostRecent with a string limit', 'FingerprintStore', 'GetMostRecent', { limit: 'ten' }],
      ['FingerprintStore.GetMostRecent with limit 0', 'FingerprintStore', 'GetMostRecent', { limit: 0 }],
      ['FingerprintStore.GetMostRecent with a fractional limit', 'FingerprintStore', 'GetMostRecent', { limit: 1.5 }],
      ['FingerprintStore.Get with a bad fingerprint', 'FingerprintStore', 'Get', { fingerprint: '../x' }],
      ['FingerprintStore.Block without fingerprint', 'FingerprintStore', 'Block', {}],
      ['UserStore.Block without uid', 'UserStore', 'Block', {}],
      ['UserStore.Create with a short password', 'UserStore', 'Create', { username: 'newbie', password: 'short', role: 'user' }],
      ['UserStore.Create with a bad role', 'UserStore', 'Create', { username: 'newbie', password: 'long enough!', role: 'Admin!' }],
      ['UserStore.GetAll with a numeric cursor', 'UserStore', 'GetAll', { cursor: 5 }],
    ])('%s → BAD_PAYLOAD (as an admin)', async (_name, to, type, payload) => {
      await expectRefusal(await exchange(adminClient, raw({ id: 'ap', to, type, payload })), 'BAD_PAYLOAD', 'ap');
    });

    it('an invalid payload to an admin-only message from a user is FORBIDDEN, not BAD_PAYLOAD (no schema leak)', async () => {
      await expectRefusal(await exchange(bad, raw({ id: 'f1', to: 'FingerprintStore', type: 'Get', payload: { fingerprint: 5 } })), 'FORBIDDEN', 'f1');
      await expectRefusal(await exchange(bad, raw({ id: 'f2', to: 'UserStore', type: 'Block', payload: {} })), 'FORBIDDEN', 'f2');
    });

    it('nothing was created by the bad Create asks', async () => {
      const users = Object.values((await disk(server)).users ?? {}) as Array<{ username: string }>;
      expect(users.map((u) => u.username)).not.toContain('newbie');
      expect(users.map((u) => u.username)).not.toContain('hacker');
    });

    it('a missing payload is treated as {}', async () => {
      const own = await exchange(bad, raw({ id: 'mp', to: 'UserStore', type: 'GetOwn' }));
      expect(own).toEqual({ id: 'mp', ok: true, result: expect.objectContaining({ uid: user.uid }) });
      const all = await exchange(adminClient, raw({ id: 'ma', to: 'UserStore', type: 'GetAll' }));
      expect(all.ok).toBe(true);
      expect(all.result).toEqual({ items: expect.any(Array), nextCursor: null });
      // {} is what the schema sees: a message that needs fields says so.
      await expectRefusal(await exchange(bad, raw({ id: 'mu', to: 'UserStore', type: 'Update' })), 'BAD_PAYLOAD', 'mu');
    });
  });

  describe('transport limits close the socket; nothing else does', () => {
    it('a 65 KiB text frame closes that socket with 1009', async () => {
      const big = await TestClient.connect(server, user.accessToken);
      clients.push(big);
      big.ws.send(raw({ id: 'big', to: 'UserStore', type: 'GetOwn', payload: { pad: 'x'.repeat(65 * 1024) } }));
      const closed = await big.closed;
      expect(closed.code).toBe(1009);
      expect(['', 'too-big']).toContain(closed.reason);
    });

    it('a text frame that is not valid UTF-8 closes that socket with 1007', async () => {
      const utf = await TestClient.connect(server, user.accessToken);
      clients.push(utf);
      utf.ws.send(Buffer.from([0x7b, 0x22, 0x69, 0xff, 0xfe, 0x22, 0x7d]), { binary: false });
      const closed = await utf.closed;
      expect(closed.code).toBe(1007);
    });

    it('a frame of exactly 64 KiB is still read (the limit is not below 64 KiB)', async () => {
      const base = raw({ id: 'edge', to: 'UserStore', type: 'GetOwn', payload: { pad: '' } });
      const text = raw({ id: 'edge', to: 'UserStore', type: 'GetOwn', payload: { pad: 'x'.repeat(64 * 1024 - Buffer.byteLength(base)) } });
      expect(Buffer.byteLength(text)).toBe(64 * 1024);
      // The payload has an unknown key `pad`, which the schema strips: the ask succeeds.
      const reply = await exchange(bad, text);
      expect(reply).toEqual({ id: 'edge', ok: true, result: expect.objectContaining({ uid: user.uid }) });
    });

    it('after all that, the socket that only got bad frames is still open and answers', async () => {
      expect(bad.ws.readyState).toBe(WebSocket.OPEN);
      const reply = await bad.ask('UserStore', 'GetOwn');
      expect(reply).toEqual({ id: expect.any(String), ok: true, result: expect.objectContaining({ uid: user.uid, role: 'user' }) });
      expect(adminClient.ws.readyState).toBe(WebSocket.OPEN);
      expect((await adminClient.ask('SessionStore', 'Stats')).ok).toBe(true);
    });

    it('and the healthy socket opened at the start still gets answers', async () => {
      expect(healthy.ws.readyState).toBe(WebSocket.OPEN);
      const replies = await Promise.all([healthy.ask('UserStore', 'GetOwn'), healthy.ask('SessionStore', 'GetOwn')]);
      expect(replies.map((r) => r.ok)).toEqual([true, true]);
      expect(replies[0]!.ok && replies[0]!.result.uid).toBe(user.uid);
    });

    it('new connections are still accepted', async () => {
      const late = await TestClient.connect(server, other.accessToken);
      clients.push(late);
      const reply = await late.ask('UserStore', 'GetOwn');
      expect(reply.ok && reply.result.uid).toBe(other.uid);
    });
  });
});

describe('ask rate limit: every frame takes a token', () => {
  let server: TestServer;
  const clients: TestClient[] = [];

  beforeAll(async () => {
    server = await startTestServer({ config: { askRate: 5, askBurst: 5 } });
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await server?.close();
  });

  /** Collects the next `n` frames on a socket. */
  function collect(client: TestClient, n: number): Promise<Frame[]> {
    return new Promise((resolve) => {
      const got: Frame[] = [];
      const on = (d: WebSocket.RawData) => {
        got.push(JSON.parse(d.toString()) as Frame);
        if (got.length === n) {
          client.ws.off('message', on);
          resolve(got);
        }
      };
      client.ws.on('message', on);
    });
  }

  it('20 frames at once with a burst of 5: the frames past the burst get RATE_LIMITED, bad frames included', async () => {
    const s = await issueSession(server, { role: 'user' });
    const client = await TestClient.connect(server, s.accessToken);
    clients.push(client);
    const frames: string[] = [
      // Three bad frames take three of the five tokens.
      'not json',
      raw({ id: 'b2', to: 7, type: 'GetOwn' }),
      raw({ id: 'b3', to: 'NoSuchActor', type: 'GetOwn' }),
    ];
    for (let i = 4; i <= 20; i++) frames.push(raw({ id: `g${i}`, to: 'UserStore', type: 'GetOwn' }));
    const replies = collect(client, frames.length);
    for (const f of frames) client.ws.send(f);
    const got = await replies;

    const byId = new Map(got.filter((f) => f.id !== null).map((f) => [f.id, f]));
    expect(got.filter((f) => f.id === null)).toEqual([{ id: null, ok: false, error: { code: 'BAD_FRAME', message: expect.any(String) } }]);
    expect(byId.get('b2')!.error!.code).toBe('BAD_FRAME');
    expect(byId.get('b3')!.error!.code).toBe('UNKNOWN_ACTOR');
    // Only two tokens were left for the good asks.
    expect(byId.get('g4')).toEqual({ id: 'g4', ok: true, result: expect.objectContaining({ uid: s.uid }) });
    expect(byId.get('g5')).toEqual({ id: 'g5', ok: true, result: expect.objectContaining({ uid: s.uid }) });
    for (let i = 6; i <= 20; i++) {
      expect(byId.get(`g${i}`)).toEqual({ id: `g${i}`, ok: false, error: { code: 'RATE_LIMITED', message: expect.any(String) } });
    }
    // RATE_LIMITED answers an ask; it does not close the socket.
    expect(client.ws.readyState).toBe(WebSocket.OPEN);
  });

  it('bad frames alone drain the bucket: after 5 garbage frames a good ask is RATE_LIMITED; another socket has its own bucket', async () => {
    const s = await issueSession(server, { role: 'user' });
    const a = await TestClient.connect(server, s.accessToken);
    const b = await TestClient.connect(server, s.accessToken);
    clients.push(a, b);
    const replies = collect(a, 7);
    for (let i = 0; i < 5; i++) a.ws.send(`garbage ${i}`);
    a.ws.send(raw({ id: 'late', to: 'UserStore', type: 'GetOwn' }));
    a.ws.send(Buffer.from('binary'), { binary: true });
    const got = await replies;
    expect(got.slice(0, 5).map((f) => [f.id, f.error?.code])).toEqual(Array(5).fill([null, 'BAD_FRAME']));
    expect(got[5]).toEqual({ id: 'late', ok: false, error: { code: 'RATE_LIMITED', message: expect.any(String) } });
    expect(got[6]).toEqual({ id: null, ok: false, error: { code: 'RATE_LIMITED', message: expect.any(String) } });
    expect(a.ws.readyState).toBe(WebSocket.OPEN);

    const fresh = await b.ask('UserStore', 'GetOwn');
    expect(fresh.ok).toBe(true);
  });
});
