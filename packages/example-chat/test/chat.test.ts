/**
 * The chat app, tested the way its own team would: the app's actors on a real Greenroom (`@greenroom/server/testing`),
 * real sockets, and the typed client the browser uses.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createClient, type GreenroomClient } from '@greenroom/client';
import { eventually, expectError, expectOk, issueSession, startTestServer, TestClient, type TestServer } from '@greenroom/server/testing';
import { actors, type App } from '../src/actors.js';
import type { ChatMessage } from '../src/chat-room.js';
import { chatClient, enterRoom, say } from '../src/client.js';

let server: TestServer;
const sockets: TestClient[] = [];
const clients: GreenroomClient<App>[] = [];

beforeAll(async () => {
  server = await startTestServer({ actors: [...actors] });
});

afterAll(async () => {
  for (const c of clients) c.close();
  await Promise.all(sockets.map((s) => s.close()));
  await server?.close();
});

async function person(role = 'user') {
  const session = await issueSession(server, { role });
  const socket = await TestClient.connect(server, session.accessToken);
  sockets.push(socket);
  return { socket, uid: session.uid, session };
}

/** Joins and subscribes to a room's topic. */
async function enter(p: { socket: TestClient }, room: string): Promise<void> {
  await expectOk(p.socket.ask('ChatRoom', 'Join', { room }));
  await expectOk(p.socket.ask('ChatRoom', 'Subscribe', { topic: room }));
}

/** The Posted pushes a socket has, once one more ask has been answered (a push sent before it has arrived). */
async function posted(socket: TestClient, room: string): Promise<string[]> {
  await expectOk(socket.ask('ChatRoom', 'History', { room, limit: 1 })).catch(() => undefined);
  return socket.pushes.filter((p) => p.event === 'Posted' && p.topic === room).map((p) => (p.payload as { message: ChatMessage }).message.text);
}

describe('chat rooms', () => {
  it('delivers a message to its room only (8 rooms, 2 members each)', async () => {
    const rooms = Array.from({ length: 8 }, (_, i) => `lobby-${i}`);
    const members = await Promise.all(rooms.flatMap((room) => [0, 1].map(async () => ({ room, ...(await person()) }))));
    for (const m of members) await enter(m, m.room);
    await Promise.all(members.map((m, i) => expectOk(m.socket.ask('ChatRoom', 'Post', { room: m.room, text: `hello ${i}` }))));
    for (const m of members) {
      expect(await posted(m.socket, m.room)).toHaveLength(2);
      expect(m.socket.pushes.filter((p) => p.event === 'Posted' && p.topic !== m.room)).toEqual([]);
    }
  });

  it('keeps non-members out: no subscribing, posting or reading history', async () => {
    const member = await person();
    await enter(member, 'private');
    const outsider = await person();
    await expectError(outsider.socket.ask('ChatRoom', 'Subscribe', { topic: 'private' }), 'FORBIDDEN');
    await expectError(outsider.socket.ask('ChatRoom', 'Post', { room: 'private', text: 'hi' }), 'FORBIDDEN');
    await expectError(outsider.socket.ask('ChatRoom', 'History', { room: 'private' }), 'FORBIDDEN');
  });

  it('answers history newest first, page by page, every message once', async () => {
    const p = await person();
    await enter(p, 'history');
    for (let i = 0; i < 7; i++) await expectOk(p.socket.ask('ChatRoom', 'Post', { room: 'history', text: `m${i}` }));
    const seen: string[] = [];
    let before: string | undefined;
    for (;;) {
      const page = await expectOk<{ items: ChatMessage[]; nextCursor: string | null }>(p.socket.ask('ChatRoom', 'History', { room: 'history', limit: 3, ...(before ? { before } : {}) }));
      seen.push(...page.items.map((m) => m.text));
      if (page.nextCursor === null) break;
      before = page.nextCursor;
    }
    expect(seen).toEqual(['m6', 'm5', 'm4', 'm3', 'm2', 'm1', 'm0']);
  });

  it('kicks: the member hears nothing more once the kick has answered, and cannot come back by subscribing', async () => {
    const mod = await person('moderator');
    const member = await person();
    await enter(mod, 'kick-me');
    await enter(member, 'kick-me');
    expect(await expectOk(mod.socket.ask('ChatRoom', 'Kick', { room: 'kick-me', uid: member.uid }))).toEqual({ room: 'kick-me', removed: 1 });
    await expectOk(mod.socket.ask('ChatRoom', 'Post', { room: 'kick-me', text: 'after the kick' }));
    expect(await posted(member.socket, 'kick-me')).not.toContain('after the kick');
    await expectError(member.socket.ask('ChatRoom', 'Subscribe', { topic: 'kick-me' }), 'FORBIDDEN');
    // Nor by joining again.
    await expectError(member.socket.ask('ChatRoom', 'Join', { room: 'kick-me' }), 'FORBIDDEN');
  });

  it('tells members who joined and left the room', async () => {
    const a = await person();
    await enter(a, 'presence');
    const b = await person();
    await enter(b, 'presence');
    await b.socket.close();
    await eventually(() => {
      const changes = a.socket.pushes.filter((p) => p.event === 'PresenceChanged').map((p) => p.payload as { uid: string; change: string });
      expect(changes.filter((c) => c.uid === b.uid).map((c) => c.change)).toEqual(['joined', 'left']);
    });
  });
});

describe('the typed client', () => {
  it('enters a room with its history and hears new messages (the app\'s client module)', async () => {
    const writer = await person();
    await enter(writer, 'client-room');
    await expectOk(writer.socket.ask('ChatRoom', 'Post', { room: 'client-room', text: 'earlier' }));
    const session = await issueSession(server);
    const client = chatClient({ url: server.url, auth: { mode: 'tokens', tokens: session } });
    clients.push(client);
    await client.connect();
    const heard: string[] = [];
    const history = await enterRoom(client, 'client-room', (m) => heard.push(m.text));
    expect(history.map((m) => m.text)).toEqual(['earlier']);
    await expectOk(writer.socket.ask('ChatRoom', 'Post', { room: 'client-room', text: 'later' }));
    expect((await say(client, 'client-room', 'mine')).text).toBe('mine');
    await eventually(() => expect(heard).toEqual(['later', 'mine']));
  });

  it('joins, subscribes to a room and hears what is posted there', async () => {
    const session = await issueSession(server);
    const client = createClient<App>({ url: server.url, auth: { mode: 'tokens', tokens: session } });
    clients.push(client);
    await client.connect();
    expect(await client.ask('ChatRoom', 'Join', { room: 'typed' })).toEqual({ room: 'typed', joined: true });
    await client.subscribe('ChatRoom', { topic: 'typed' });
    const heard: string[] = [];
    client.on('Posted', (payload) => heard.push(payload.message.text));
    const sent = await client.ask('ChatRoom', 'Post', { room: 'typed', text: 'typed hello' });
    expect(sent.text).toBe('typed hello');
    await eventually(() => expect(heard).toEqual(['typed hello']));
  });
});
