/**
 * GET /actors: the messages a caller's role may send and the events it may subscribe to, each payload as JSON
 * Schema generated from the server's own zod schemas. A user's and an admin's views differ exactly by role; internal
 * messages never appear. A real server on loopback; sessions issued directly.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { z } from 'zod';
import { defineActor, SessionStore, UserStore } from '../src/index.js';
import { expectError, expectOk, httpRequest, issueSession, post, startTestServer, TestClient, type TestServer } from '../src/testing/index.js';

interface Catalog {
  actors: Array<{ name: string; messages: Array<{ type: string; payload: any }>; events: Array<{ event: string; payload: any }> }>;
}

/** An app actor: one message for anyone, one for moderators, events only moderators may hear. */
const Room = defineActor({
  name: 'Room',
  state: () => ({}),
  events: { Posted: z.object({ text: z.string(), at: z.number().default(0) }) },
  subscribers: ['moderator', 'admin'],
  messages: (message) => ({
    Post: message({ allow: 'any', payload: z.object({ text: z.string().min(1).max(500) }), handle: (p) => ({ text: p.text }) }),
    Clear: message({ allow: ['moderator'], payload: z.object({ before: z.number().int().optional() }), handle: () => ({ cleared: 0 }) }),
    Audit: message({ allow: [], internal: true, payload: z.object({}), handle: () => null }),
  }),
});

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer({ actors: [Room] });
});

afterAll(async () => {
  await server?.close();
});

async function catalogAs(role: string): Promise<Catalog> {
  const { accessToken } = await issueSession(server, { role });
  const res = await httpRequest(server, '/actors', { headers: { Authorization: `Bearer ${accessToken}` } });
  expect(res.status).toBe(200);
  expect(res.headers['cache-control']).toBe('no-store');
  return res.body as Catalog;
}

function names(c: Catalog): Record<string, { messages: string[]; events: string[] }> {
  return Object.fromEntries(c.actors.map((a) => [a.name, { messages: a.messages.map((m) => m.type).sort(), events: a.events.map((e) => e.event) }]));
}

describe('GET /actors', () => {
  it("lists a user's messages and no admin message, internal message or admin event", async () => {
    expect(names(await catalogAs('user'))).toEqual({
      SessionStore: { messages: ['GetOwn', 'Revoke'], events: [] },
      UserStore: { messages: ['GetOwn', 'Update'], events: [] },
      Room: { messages: ['Post'], events: [] },
    });
  });

  it("lists an admin's messages and events: the user's, and the admin-only ones", async () => {
    expect(names(await catalogAs('admin'))).toEqual({
      SessionStore: { messages: ['GetAll', 'GetOwn', 'Revoke', 'RevokeAllForUser', 'Stats', 'Subscribe', 'Unsubscribe'], events: ['SessionChanged'] },
      UserStore: { messages: ['Block', 'Create', 'Get', 'GetAll', 'GetOwn', 'Subscribe', 'Unblock', 'Unsubscribe', 'Update'], events: ['UserChanged'] },
      FingerprintStore: { messages: ['Block', 'Get', 'GetMostRecent', 'Subscribe', 'Unblock', 'Unsubscribe'], events: ['FingerprintChanged'] },
      Room: { messages: ['Post', 'Subscribe', 'Unsubscribe'], events: ['Posted'] },
    });
  });

  it("follows an app's own roles: a moderator may clear and subscribe", async () => {
    expect(names(await catalogAs('moderator')).Room).toEqual({ messages: ['Clear', 'Post', 'Subscribe', 'Unsubscribe'], events: ['Posted'] });
  });

  it('gives each payload as the JSON Schema of what the server validates', async () => {
    const admin = await catalogAs('admin');
    const find = (actor: string, type: string) => admin.actors.find((a) => a.name === actor)!.messages.find((m) => m.type === type)!.payload;
    expect(find('Room', 'Post')).toMatchObject({ type: 'object', properties: { text: { type: 'string', minLength: 1, maxLength: 500 } }, required: ['text'] });
    expect(find('UserStore', 'Block')).toMatchObject({ type: 'object', properties: { uid: { type: 'string', format: 'uuid' } }, required: ['uid'] });
    // The payload as sent: a field with a default is optional.
    expect(find('UserStore', 'GetAll').required ?? []).not.toContain('limit');
    const posted = admin.actors.find((a) => a.name === 'Room')!.events[0]!.payload;
    expect(posted).toMatchObject({ type: 'object', properties: { text: { type: 'string' }, at: { type: 'number' } } });
    // An event as it is pushed: a field with a default is there all the same.
    expect(posted.required).toEqual(expect.arrayContaining(['text', 'at']));
    const changed = admin.actors.find((a) => a.name === 'UserStore')!.events[0]!.payload;
    expect(changed).toMatchObject({ properties: { user: { type: 'object', properties: { uid: { type: 'string' }, blocked: { type: 'boolean' } } } } });
  });

  it('answers the role as of now: a role change shows at the next request', async () => {
    const s = await issueSession(server, { role: 'user' });
    const get = async () => (await httpRequest(server, '/actors', { headers: { Authorization: `Bearer ${s.accessToken}` } })).body as Catalog;
    expect(names(await get()).UserStore!.messages).not.toContain('Block');
    await server.ask(UserStore.Update, { uid: s.uid, role: 'admin' });
    expect(names(await get()).UserStore!.messages).toContain('Block');
  });

  it('refuses a ticket (403) without spending it: a ticket opens the WebSocket only', async () => {
    const s = await issueSession(server);
    const issued = await post(server, '/auth/ticket', undefined, { headers: { Authorization: `Bearer ${s.accessToken}` } });
    expect(issued.status).toBe(200);
    const ticket = (issued.body as { ticket: string }).ticket;
    await expectError(httpRequest(server, `/actors?ticket=${encodeURIComponent(ticket)}`), 'FORBIDDEN', { status: 403 });
    const client = await TestClient.connect(server, undefined, { query: `?ticket=${encodeURIComponent(ticket)}` });
    expect(await expectOk(client.ask('UserStore', 'GetOwn'))).toMatchObject({ uid: s.uid });
    await client.close();
  });

  it('refuses a caller without credentials (401) and one whose session ended', async () => {
    expect((await httpRequest(server, '/actors')).status).toBe(401);
    const s = await issueSession(server);
    await server.ask(SessionStore.Revoke, { sid: s.sid });
    await expectError(httpRequest(server, '/actors', { headers: { Authorization: `Bearer ${s.accessToken}` } }), 'SESSION_REVOKED', { status: 401 });
  });
});
