/**
 * Authorization of asks and pushes (docs/protocol.md): every ask is checked against the caller's current role at
 * the time it arrives, in the fixed order UNKNOWN_MESSAGE → FORBIDDEN → BAD_PAYLOAD; internal messages do not exist
 * from the wire; pushes are authorized again at delivery.
 *
 * A real server on loopback and real sockets; sessions are issued directly (no password hashing).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import type { SessionRecord, UserView } from '../src/actors/records.js';
import { internals } from '../src/server.js';
import { expectError, expectOk, issueSession, startTestServer, TestClient, type TestServer } from '../src/testing/index.js';
import { UserStore } from '../src/actors/user-store.js';

type Issued = Awaited<ReturnType<typeof issueSession>>;

let server: TestServer;
const open: TestClient[] = [];

beforeAll(async () => {
  server = await startTestServer();
});

afterEach(async () => {
  await Promise.all(open.splice(0).map((c) => c.close()));
});

afterAll(async () => {
  await server?.close();
});

/** A socket for a fresh session of a new user with this role (or of an existing session). */
async function connect(who: string | Issued): Promise<{ client: TestClient; session: Issued }> {
  const session = typeof who === 'string' ? await issueSession(server, { role: who }) : who;
  const client = await TestClient.connect(server, session.accessToken);
  open.push(client);
  return { client, session };
}

const storedUser = (uid: string) => server.ask(UserStore.Get, { uid });

describe('admin messages', () => {
  const adminOnly: Array<[actor: string, type: string, payload: () => Promise<unknown> | unknown]> = [
    ['UserStore', 'GetAll', () => ({})],
    ['UserStore', 'Block', async () => ({ uid: (await issueSession(server)).uid })],
    ['SessionStore', 'GetAll', () => ({})],
    ['FingerprintStore', 'GetMostRecent', () => ({ limit: 10 })],
    ['SessionStore', 'Stats', () => ({})],
  ];

  it.each(['user', 'guest'])('are FORBIDDEN to a %s', async (role) => {
    const { client } = await connect(role);
    for (const [actor, type, payload] of adminOnly) {
      await expectError(client.ask(actor, type, await payload()), 'FORBIDDEN');
    }
  });

  it('are answered for an admin', async () => {
    const { client } = await connect('admin');
    for (const [actor, type, payload] of adminOnly) await expectOk(client.ask(actor, type, await payload()));
  });

  it('answer FORBIDDEN before BAD_PAYLOAD, so a user never learns their schema', async () => {
    const { client: user } = await connect('user');
    const { client: admin } = await connect('admin');
    const invalid: Array<[string, string, unknown]> = [
      ['UserStore', 'Block', { uid: 'not-a-uuid' }],
      ['UserStore', 'Block', {}],
      ['UserStore', 'GetAll', { limit: 'many' }],
      ['UserStore', 'GetAll', { cursor: 42 }],
      ['SessionStore', 'GetAll', { limit: -1 }],
      ['FingerprintStore', 'GetMostRecent', { limit: 2.5 }],
    ];
    for (const [actor, type, payload] of invalid) {
      await expectError(user.ask(actor, type, payload), 'FORBIDDEN');
      // The same payload from an admin is indeed invalid.
      await expectError(admin.ask(actor, type, payload), 'BAD_PAYLOAD');
    }
  });
});

describe('internal messages', () => {
  it('are UNKNOWN_MESSAGE from the wire, even for an admin, and do nothing', async () => {
    const { client: admin, session } = await connect('admin');
    const { client: user } = await connect('user');
    const internal: Array<[string, string, unknown]> = [
      ['SessionStore', 'Register', { connection: { id: 'x' }, uid: session.uid, sid: session.sid }],
      ['SessionStore', 'Unregister', { connectionId: 'x' }],
      ['SessionStore', 'Resolve', { connectionId: 'x' }],
      ['SessionStore', 'Create', { uid: session.uid, fingerprint: session.fingerprint }],
      ['SessionStore', 'End', { sid: session.sid, reason: 'revoked' }],
      ['SessionStore', 'UpdateRole', { uid: session.uid, role: 'superuser' }],
      ['UserStore', 'FindForLogin', { username: session.username }],
      ['UserStore', 'Provision', { username: 'provisioned-from-the-wire', role: 'admin' }],
      ['UserStore', 'Ensure', { username: 'ensured-from-the-wire', password: 'password123', role: 'admin' }],
      ['UserStore', 'CreateGuest', {}],
      ['FingerprintStore', 'Seen', { fingerprint: 'fp_fromthewire', uid: session.uid }],
      ['FingerprintStore', 'SetBlocked', { fingerprints: [session.fingerprint], blocked: true }],
    ];
    const sessionsBefore = await internals(server).store.count('sessions');
    const usersBefore = await internals(server).store.count('users');
    for (const [actor, type, payload] of internal) {
      await expectError(admin.ask(actor, type, payload), 'UNKNOWN_MESSAGE');
      await expectError(user.ask(actor, type, payload), 'UNKNOWN_MESSAGE');
    }
    expect(await internals(server).store.count('sessions')).toBe(sessionsBefore);
    expect(await internals(server).store.count('users')).toBe(usersBefore);
    expect((await internals(server).store.findBy<{ blocked: boolean }>('fingerprints', 'fingerprint', session.fingerprint)).map((r) => r.value.blocked)).toEqual([false]);
    // The admin's own session is untouched and the socket still answers as an admin.
    expect((await internals(server).store.get<SessionRecord>('sessions', session.sid))?.revokedAt).toBeNull();
    await expectOk(admin.ask('SessionStore', 'Stats'));
  });
});

describe('a role change', () => {
  it('applies to the very next ask on an already-open socket, both ways', async () => {
    const { client: admin } = await connect('admin');
    const { client: user, session } = await connect('user');

    await expectError(user.ask('SessionStore', 'Stats'), 'FORBIDDEN');

    await expectOk(admin.ask('UserStore', 'Update', { uid: session.uid, role: 'admin' }));
    await expectOk(user.ask('SessionStore', 'Stats'));
    expect((await expectOk(user.ask('UserStore', 'GetOwn'))).role).toBe('admin');

    await expectOk(admin.ask('UserStore', 'Update', { uid: session.uid, role: 'user' }));
    await expectError(user.ask('SessionStore', 'Stats'), 'FORBIDDEN');
    expect((await expectOk(user.ask('UserStore', 'GetOwn'))).role).toBe('user');
  });
});

describe('UserStore.Update by a user', () => {
  it('changes the user’s own displayName', async () => {
    const { client, session } = await connect('user');
    expect((await expectOk(client.ask('UserStore', 'Update', { uid: session.uid, displayName: 'New Name' }))).displayName).toBe('New Name');
    expect((await storedUser(session.uid)).displayName).toBe('New Name');
  });

  it('is FORBIDDEN for any other field of the user’s own record, and changes nothing', async () => {
    const { client, session } = await connect('user');
    const before = await storedUser(session.uid);
    const attempts = [
      { role: 'admin' },
      { username: 'renamed-by-self' },
      { password: 'a-new-password' },
      { displayName: 'Sneaky', role: 'admin' },
    ];
    for (const fields of attempts) {
      await expectError(client.ask('UserStore', 'Update', { uid: session.uid, ...fields }), 'FORBIDDEN');
    }
    expect(await storedUser(session.uid)).toEqual(before);
    await expectError(client.ask('SessionStore', 'Stats'), 'FORBIDDEN'); // still a plain user
  });

  it('never changes the blocked flag', async () => {
    const { client, session } = await connect('user');
    const reply = await client.ask('UserStore', 'Update', { uid: session.uid, blocked: true });
    if (!reply.ok) expect(['FORBIDDEN', 'BAD_PAYLOAD']).toContain(reply.error.code);
    expect((await storedUser(session.uid)).blocked).toBe(false);
    await expectOk(client.ask('UserStore', 'GetOwn')); // the socket was not closed 4003
  });

  it('is FORBIDDEN for another user, even for the displayName', async () => {
    const { client } = await connect('user');
    const other = await issueSession(server);
    const before = await storedUser(other.uid);
    await expectError(client.ask('UserStore', 'Update', { uid: other.uid, displayName: 'Hijacked' }), 'FORBIDDEN');
    expect(await storedUser(other.uid)).toEqual(before);
  });
});

describe('SessionStore.Revoke by a user', () => {
  it('is FORBIDDEN for someone else’s session, which stays live and connected', async () => {
    const { client } = await connect('user');
    const { client: victim, session: victimSession } = await connect('user');
    await expectError(client.ask('SessionStore', 'Revoke', { sid: victimSession.sid }), 'FORBIDDEN');
    expect((await internals(server).store.get<SessionRecord>('sessions', victimSession.sid))?.revokedAt).toBeNull();
    expect((await expectOk(victim.ask('UserStore', 'GetOwn'))).uid).toBe(victimSession.uid);
  });

  it('revokes the user’s own other session, whose socket closes with 4001 revoked', async () => {
    const { client: here, session: hereSession } = await connect('user');
    const { client: there, session: thereSession } = await connect(await issueSession(server, { uid: hereSession.uid }));

    expect(await expectOk(here.ask('SessionStore', 'Revoke', { sid: thereSession.sid }))).toEqual({ revoked: 1 });
    expect(await there.closed).toEqual({ code: 4001, reason: 'revoked' });
    expect((await internals(server).store.get<SessionRecord>('sessions', thereSession.sid))?.revokedAt).toEqual(expect.any(Number));
    // The asking session is unaffected.
    expect((await expectOk(here.ask('UserStore', 'GetOwn'))).uid).toBe(hereSession.uid);
  });

  it('revokes the user’s current session, closing the asking socket with 4001 revoked', async () => {
    const { client, session } = await connect('user');
    void client.ask('SessionStore', 'Revoke', { sid: session.sid });
    expect(await client.closed).toEqual({ code: 4001, reason: 'revoked' });
    expect((await internals(server).store.get<SessionRecord>('sessions', session.sid))?.revokeReason).toBe('revoked');
  });
});

describe('pushes', () => {
  it('stop, silently, once the subscriber’s role no longer allows them', async () => {
    const { client: admin } = await connect('admin');
    const { client: subscriber, session: subscriberSession } = await connect('admin');
    const frames: any[] = [];
    subscriber.ws.on('message', (data) => frames.push(JSON.parse(data.toString())));
    const target = await issueSession(server);

    await expectOk(subscriber.ask('UserStore', 'Subscribe'));

    // As an admin, the subscriber receives UserChanged.
    await expectOk(admin.ask('UserStore', 'Update', { uid: target.uid, displayName: 'First' }));
    const [first] = await subscriber.waitForPush('UserChanged');
    expect(first).toMatchObject({ event: 'UserChanged', from: 'UserStore', payload: { user: { uid: target.uid, displayName: 'First' } } });

    // Demoted to user: neither the push about the demotion itself nor any later one is delivered.
    await expectOk(admin.ask('UserStore', 'Update', { uid: subscriberSession.uid, role: 'user' }));
    await expectOk(admin.ask('UserStore', 'Update', { uid: target.uid, displayName: 'Second' }));
    await expectOk(admin.ask('UserStore', 'Block', { uid: target.uid }));

    // A reply on the subscriber's own socket comes after any push sent before it.
    expect((await expectOk(subscriber.ask('UserStore', 'GetOwn'))).role).toBe('user');
    expect(subscriber.pushes).toHaveLength(1);
    // Nothing else either: only the one push and the replies to its own asks, none of them an error.
    expect(frames.filter((f) => 'event' in f)).toHaveLength(1);
    const replies = frames.filter((f) => !('event' in f));
    expect(replies.map((f) => f.id)).toEqual(['a1', 'a2']);
    expect(replies.every((f) => f.ok === true)).toBe(true);
  });
});
