/**
 * Topics, kicks, presence and lifecycle hooks (docs/extending.md): a push reaches only its topic's subscribers, a
 * kicked member hears nothing once the kick has answered, a topic the actor's rule refuses is refused, presence
 * follows users across their connections, and each lifecycle hook fires once. A real server on loopback, real
 * sockets; sessions issued directly.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { z } from 'zod';
import { defineActor, SessionStore } from '../src/index.js';
import { eventually, expectError, expectOk, internals, issueSession, startTestServer, TestClient, type TestServer } from '../src/testing/index.js';

/** A chat: rooms are topics named `room-…`; `secret-…` rooms are refused; moderators kick. */
const Chat = defineActor({
  name: 'Chat',
  state: () => ({}),
  events: { Posted: z.object({ room: z.string(), text: z.string(), by: z.string().nullable() }) },
  presence: true,
  mayJoin: (topic) => topic.startsWith('room-'),
  messages: (message) => ({
    Post: message({
      allow: 'any',
      payload: z.object({ room: z.string().min(1).max(64), text: z.string().max(200) }),
      handle: (p, ctx) => {
        ctx.publish('Posted', { room: p.room, text: p.text, by: ctx.caller.uid }, { topic: p.room });
        return { posted: true };
      },
    }),
    Kick: message({
      allow: ['moderator'],
      payload: z.object({ room: z.string(), uid: z.uuid() }),
      handle: (p, ctx) => ({ removed: ctx.unsubscribe({ topic: p.room, uid: p.uid }) }),
    }),
    Who: message({ allow: ['moderator'], payload: z.object({ room: z.string() }), handle: (p, ctx) => ctx.presence(p.room) }),
  }),
});

/** Records what its lifecycle hooks hear (read back through an internal message). */
const heard: Array<{ kind: string; info: Record<string, unknown> }> = [];
const Recorder = defineActor({
  name: 'Recorder',
  state: () => ({}),
  hooks: {
    connectionClosed: (info) => void heard.push({ kind: 'connectionClosed', info }),
    sessionEnded: (info) => void heard.push({ kind: 'sessionEnded', info }),
    userDeleted: (info) => void heard.push({ kind: 'userDeleted', info }),
  },
  messages: (message) => ({ Ping: message({ allow: 'any', payload: z.object({}), handle: () => 'pong' }) }),
});

let server: TestServer;
const open: TestClient[] = [];

beforeAll(async () => {
  server = await startTestServer({ actors: [Chat, Recorder], config: { guestIdleS: 1 } });
});

afterAll(async () => {
  await Promise.all(open.map((c) => c.close()));
  await server?.close();
});

async function member(role = 'user', uid?: string): Promise<{ client: TestClient; uid: string; sid: string }> {
  const s = await issueSession(server, uid ? { uid } : { role });
  const client = await TestClient.connect(server, s.accessToken);
  open.push(client);
  return { client, uid: s.uid, sid: s.sid };
}

/** Every push this client has for an event, after one more answered ask (a push sent earlier has arrived by then). */
async function settled(client: TestClient, event: string) {
  await expectOk(client.ask('Recorder', 'Ping'));
  return client.pushes.filter((p) => p.event === event);
}

describe('topics', () => {
  it('delivers a push to its topic only: 12 rooms × 3 members, each hears its own room and no other', async () => {
    const rooms = Array.from({ length: 12 }, (_, i) => `room-${i}`);
    const members = await Promise.all(rooms.flatMap((room) => [0, 1, 2].map(async () => ({ room, ...(await member()) }))));
    for (const m of members) expect(await expectOk(m.client.ask('Chat', 'Subscribe', { topic: m.room }))).toEqual({ subscribed: true, topic: m.room });
    // Every member posts once in its own room.
    await Promise.all(members.map((m, i) => expectOk(m.client.ask('Chat', 'Post', { room: m.room, text: `m${i}` }))));
    for (const m of members) {
      const posted = await settled(m.client, 'Posted');
      expect(posted).toHaveLength(3);
      for (const p of posted) {
        expect(p.topic).toBe(m.room);
        expect((p.payload as { room: string }).room).toBe(m.room);
      }
    }
  });

  it("refuses a topic the actor's rule refuses, and any other topic of an actor without a rule", async () => {
    const { client } = await member();
    await expectError(client.ask('Chat', 'Subscribe', { topic: 'secret-1' }), 'FORBIDDEN');
    // The actor's own topic needs no rule.
    expect(await expectOk(client.ask('Chat', 'Subscribe'))).toEqual({ subscribed: true, topic: 'Chat' });
    // SessionStore has no mayJoin: only its own topic.
    const admin = await member('admin');
    await expectError(admin.client.ask('SessionStore', 'Subscribe', { topic: 'other' }), 'FORBIDDEN');
    expect(await expectOk(admin.client.ask('SessionStore', 'Subscribe', { topic: SessionStore.name }))).toMatchObject({ subscribed: true });
    // Nothing was pushed to the refused topic's would-be subscriber.
    await expectOk(client.ask('Chat', 'Post', { room: 'secret-1', text: 'psst' }));
    expect(await settled(client, 'Posted')).toEqual([]);
  });

  it('unsubscribes one topic and keeps the others', async () => {
    const { client } = await member();
    await expectOk(client.ask('Chat', 'Subscribe', { topic: 'room-a' }));
    await expectOk(client.ask('Chat', 'Subscribe', { topic: 'room-b' }));
    expect(await expectOk(client.ask('Chat', 'Unsubscribe', { topic: 'room-a' }))).toEqual({ subscribed: false, topic: 'room-a' });
    await expectOk(client.ask('Chat', 'Post', { room: 'room-a', text: 'to a' }));
    await expectOk(client.ask('Chat', 'Post', { room: 'room-b', text: 'to b' }));
    expect((await settled(client, 'Posted')).map((p) => p.topic)).toEqual(['room-b']);
  });
});

describe('kicks', () => {
  it('a kicked member receives nothing from the room once the kick has answered (10 rounds)', async () => {
    const mod = await member('moderator');
    for (let round = 0; round < 10; round++) {
      const room = `room-kick-${round}`;
      const victim = await member();
      const second = await member('user', victim.uid); // the same user on another socket
      const bystander = await member();
      for (const m of [victim, second, bystander, mod]) await expectOk(m.client.ask('Chat', 'Subscribe', { topic: room }));
      // A post in flight while the kick runs: whatever reached the victim did so before the kick answered.
      const racing = mod.client.ask('Chat', 'Post', { room, text: 'before' });
      expect(await expectOk(mod.client.ask('Chat', 'Kick', { room, uid: victim.uid }))).toEqual({ removed: 2 });
      await racing;
      const beforeKick = [...victim.client.pushes, ...second.client.pushes].filter((p) => p.event === 'Posted').length;
      await expectOk(mod.client.ask('Chat', 'Post', { room, text: 'after' }));
      for (const kicked of [victim, second]) {
        const texts = (await settled(kicked.client, 'Posted')).map((p) => (p.payload as { text: string }).text);
        expect(texts).not.toContain('after');
      }
      expect([...victim.client.pushes, ...second.client.pushes].filter((p) => p.event === 'Posted').length).toBe(beforeKick);
      expect((await settled(bystander.client, 'Posted')).map((p) => (p.payload as { text: string }).text)).toContain('after');
    }
  });
});

describe('presence', () => {
  it('pushes joined once per user, counts connections, and left when the last one goes (a closed socket too)', async () => {
    const room = 'room-presence';
    const watcher = await member('moderator');
    await expectOk(watcher.client.ask('Chat', 'Subscribe', { topic: room }));
    const ann = await member();
    const annAgain = await member('user', ann.uid);
    await expectOk(ann.client.ask('Chat', 'Subscribe', { topic: room }));
    await expectOk(annAgain.client.ask('Chat', 'Subscribe', { topic: room }));

    const changes = async () => (await settled(watcher.client, 'PresenceChanged')).map((p) => p.payload as { uid: string; change: string });
    expect((await changes()).filter((c) => c.uid === ann.uid)).toEqual([{ topic: room, uid: ann.uid, change: 'joined', connections: 1 }]);
    const who = await expectOk<Array<{ uid: string; connections: number; since: number }>>(watcher.client.ask('Chat', 'Presence', { topic: room }));
    expect(who.find((e) => e.uid === ann.uid)).toMatchObject({ connections: 2 });
    expect(await expectOk(watcher.client.ask('Chat', 'Who', { room }))).toEqual(who);

    // One of two sockets closes: still present. The other unsubscribes: left.
    await annAgain.client.close();
    await eventually(async () => expect((await expectOk<Array<{ uid: string; connections: number }>>(watcher.client.ask('Chat', 'Presence', { topic: room }))).find((e) => e.uid === ann.uid)).toMatchObject({ connections: 1 }));
    expect((await changes()).filter((c) => c.uid === ann.uid && c.change === 'left')).toEqual([]);
    await ann.client.close();
    await eventually(async () => expect((await changes()).filter((c) => c.uid === ann.uid)).toEqual([
      { topic: room, uid: ann.uid, change: 'joined', connections: 1 },
      { topic: room, uid: ann.uid, change: 'left', connections: 0 },
    ]));
  });

  it('answers Presence only to subscribers of that topic', async () => {
    const { client } = await member();
    await expectError(client.ask('Chat', 'Presence', { topic: 'room-presence' }), 'FORBIDDEN');
  });
});

describe('lifecycle hooks', () => {
  it('hear a closed connection, an ended session and a deleted user, once each', async () => {
    const kinds = (uid: string) => heard.filter((h) => h.info.uid === uid).map((h) => h.kind).sort();

    const closing = await member();
    await closing.client.close();
    await eventually(() => expect(kinds(closing.uid)).toEqual(['connectionClosed']));

    const ending = await member();
    await server.ask(SessionStore.Revoke, { sid: ending.sid });
    await eventually(() => expect(kinds(ending.uid)).toEqual(['connectionClosed', 'sessionEnded']));
    expect(heard.find((h) => h.kind === 'sessionEnded' && h.info.sid === ending.sid)!.info).toEqual({ uid: ending.uid, sid: ending.sid, reason: 'revoked' });

    // A guest whose session is over and who has been idle past the guest idle time is deleted by cleanup.
    const guest = await issueSession(server, { role: 'guest' });
    await server.ask(SessionStore.Revoke, { sid: guest.sid });
    await new Promise((r) => setTimeout(r, 1100));
    await server.cleanup();
    await server.cleanup(); // a second run deletes nothing more and announces nothing twice
    await eventually(() => expect(kinds(guest.uid)).toEqual(['sessionEnded', 'userDeleted']));
  });

  it('hear a guest session that expired (never revoked) end when cleanup deletes the guest', async () => {
    const guest = await issueSession(server, { role: 'guest' });
    const store = internals(server).store;
    const record = (await store.get<Record<string, unknown>>('sessions', guest.sid))!;
    await store.put('sessions', guest.sid, { ...record, expiresAt: Date.now() - 1, lastUsed: Date.now() - 2000 });
    await new Promise((r) => setTimeout(r, 1100));
    await server.cleanup();
    await eventually(() => expect(heard.filter((h) => h.info.uid === guest.uid).map((h) => `${h.kind}:${h.info.reason ?? ''}`).sort()).toEqual(['sessionEnded:expired', 'userDeleted:']));
  });
});
