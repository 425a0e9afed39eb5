/**
 * The test harness itself (`@greenroom/server/testing`): waits fail at their deadline with a message that says what
 * was missing instead of hanging the test, `expectError` reads every shape an error comes in, and the raw upgrade
 * sees a refusal as the server wrote it.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { GreenroomError } from '@greenroom/server';
import {
  eventually,
  expectError,
  expectOk,
  httpRequest,
  issueSession,
  loginWithPassword,
  post,
  rawUpgrade,
  refusedUpgrade,
  seedSessions,
  signInAsGuest,
  startTestServer,
  TestClient,
  type TestServer,
} from '@greenroom/server/testing';
import { Notes } from '../examples/notes.js';

let server: TestServer;
const clients: TestClient[] = [];

beforeAll(async () => {
  server = await startTestServer({ actors: [Notes], config: { admin: { username: 'root', password: 'harness-admin-password' } } });
});

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await server?.close();
});

async function connect(role = 'user'): Promise<TestClient> {
  const client = await TestClient.connect(server, (await issueSession(server, { role })).accessToken);
  clients.push(client);
  return client;
}

describe('eventually', () => {
  it('retries until the check passes and resolves with what it returned', async () => {
    let tries = 0;
    expect(await eventually(() => (++tries >= 3 ? 'done' : false), { intervalMs: 1 })).toBe('done');
    expect(tries).toBe(3);
    tries = 0;
    await eventually(
      () => {
        if (++tries < 3) throw new Error('not yet');
      },
      { intervalMs: 1 },
    );
    expect(tries).toBe(3);
  });

  it('fails at its deadline with the last assertion error, not at the test timeout', async () => {
    const started = Date.now();
    const failure = await eventually(
      () => {
        throw new Error('still 2 sockets');
      },
      { timeoutMs: 150, intervalMs: 10, what: 'the sockets to close' },
    ).catch((err: Error) => err);
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(failure).toBeInstanceOf(Error);
    expect((failure as Error).message).toMatch(/^the sockets to close: not met within 150 ms \(\d+ tries\); the last try failed: Error: still 2 sockets$/);
    expect(((failure as Error).cause as Error).message).toBe('still 2 sockets');
  });

  it('fails at its deadline when the check keeps answering false, or never settles', async () => {
    await expect(eventually(() => false, { timeoutMs: 50 })).rejects.toThrow(/not met within 50 ms .*answered false/);
    await expect(eventually(() => new Promise<boolean>(() => undefined), { timeoutMs: 50 })).rejects.toThrow(/did not settle before the deadline/);
  });
});

describe('TestClient.waitForPush', () => {
  it('resolves with the pushes once they have arrived, counting those already received', async () => {
    const watcher = await connect();
    await expectOk(watcher.ask('Notes', 'Subscribe'));
    const author = await connect();
    await expectOk(author.ask('Notes', 'Add', { text: 'one' }));
    await expectOk(author.ask('Notes', 'Add', { text: 'two' }));
    const pushes = await watcher.waitForPush('NoteAdded', 2);
    expect(pushes.map((p) => (p.payload as { note: { text: string } }).note.text)).toEqual(['one', 'two']);
  });

  it('rejects after its deadline when the push never comes, saying which events did', async () => {
    const watcher = await connect();
    await expectOk(watcher.ask('Notes', 'Subscribe'));
    await expectOk(watcher.ask('Notes', 'Add', { text: 'three' }));
    await watcher.waitForPush('NoteAdded');
    const started = Date.now();
    await expect(watcher.waitForPush('NoteDeleted', 1, { timeoutMs: 100 })).rejects.toThrow(
      'waitForPush: 0 of 1 NoteDeleted push(es) within 100 ms (events received: NoteAdded)',
    );
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it('rejects at once when the socket closes without the push', async () => {
    const watcher = await connect();
    const waiting = watcher.waitForPush('NoteAdded', 1, { timeoutMs: 30_000 });
    await watcher.close();
    await expect(waiting).rejects.toThrow(/the socket closed \(1000 \) with 0 of 1 NoteAdded/);
  });
});

describe('expectError', () => {
  it('reads a reply frame { ok: false, error } and returns its error', async () => {
    const client = await connect();
    const error = await expectError(client.ask('UserStore', 'GetAll'), 'FORBIDDEN');
    expect(error).toEqual({ code: 'FORBIDDEN', message: expect.any(String) });
    expect(await expectError(await client.ask('NoSuchActor', 'X'), 'UNKNOWN_ACTOR')).toMatchObject({ code: 'UNKNOWN_ACTOR' });
  });

  it('reads a promise rejected with an error carrying .code, and returns that error', async () => {
    const thrown = new GreenroomError('NOT_FOUND', 'no such note');
    expect(await expectError(Promise.reject(thrown), 'NOT_FOUND')).toBe(thrown);
    expect(await expectError(Promise.reject(Object.assign(new Error('gone'), { code: 'CLOSED' })), 'CLOSED')).toMatchObject({ message: 'gone' });
  });

  it('reads an HTTP answer { status, body: { error } }, checking the status when given', async () => {
    const answer = await loginWithPassword(server, { username: 'root', password: 'not the password' });
    await expectError(answer, 'INVALID_CREDENTIALS', { status: 401 });
    await expect(expectError(answer, 'INVALID_CREDENTIALS', { status: 403 })).rejects.toThrow(/expected HTTP 403 with INVALID_CREDENTIALS, but got 401/);
  });

  it('fails for another code, for a success, and for a rejection without that code', async () => {
    const client = await connect();
    await expect(expectError(client.ask('UserStore', 'GetAll'), 'NOT_FOUND')).rejects.toThrow(/expected an error NOT_FOUND, but got FORBIDDEN/);
    await expect(expectError(client.ask('UserStore', 'GetOwn'), 'FORBIDDEN')).rejects.toThrow(/expected an error FORBIDDEN, but got \{"id"/);
    await expect(expectError(Promise.reject(new Error('plain')), 'FORBIDDEN')).rejects.toThrow(/but it rejected with Error: plain/);
    await expect(expectError(Promise.resolve(42), 'FORBIDDEN')).rejects.toThrow(/expected an error FORBIDDEN, but got 42/);
  });
});

describe('HTTP helpers', () => {
  it('logs in with a password, signs in as a guest, and posts JSON, each answer read whole', async () => {
    const login = await loginWithPassword(server, { username: 'root', password: 'harness-admin-password' }, { headers: { Origin: server.url } });
    expect(login.status).toBe(200);
    expect(login.body).toMatchObject({ role: 'admin', accessToken: expect.any(String) });
    expect(login.cookies.length).toBeGreaterThan(0);
    expect(JSON.parse(login.text)).toEqual(login.body);

    const guest = await signInAsGuest(server);
    expect(guest.body).toMatchObject({ role: 'guest' });

    const ticket = await post(server, '/auth/ticket', undefined, { headers: { Authorization: `Bearer ${login.body.accessToken}` } });
    expect(ticket.body).toEqual({ ticket: expect.any(String), expiresAt: expect.any(Number) });
    expect((await httpRequest(server, '/healthz')).body).toEqual({ status: 'ok' });
  });
});

describe('raw upgrades', () => {
  it('sees a refusal as written, with the server closing the connection', async () => {
    const answer = await refusedUpgrade(server, 'not.a.jwt');
    expect(answer.status).toBe(401);
    expect(answer.headers['content-type']).toMatch(/^application\/json/);
    expect(answer.socketClosed).toBe(true);
    await expectError(answer, 'INVALID_TOKEN', { status: 401 });
  });

  it('hands over the upgraded connection after a 101; refusedUpgrade fails for one', async () => {
    const session = await issueSession(server);
    const answer = await rawUpgrade(server, session.accessToken);
    expect(answer.status).toBe(101);
    answer.socket!.destroy();
    await expect(refusedUpgrade(server, session.accessToken)).rejects.toThrow('the upgrade was accepted (101)');
  });
});

describe('seedSessions', () => {
  it('writes live sessions whose tokens the server accepts like any other', async () => {
    const seeded = await seedSessions(server, { users: 3, sessionsPerUser: 2, access: true, refresh: true });
    expect(seeded).toHaveLength(6);
    const client = await TestClient.connect(server, seeded[5]!.accessToken);
    clients.push(client);
    expect(await expectOk(client.ask('UserStore', 'GetOwn'))).toMatchObject({ uid: seeded[5]!.uid, username: seeded[5]!.username });
    const refreshed = await post(server, '/auth/refresh', { refreshToken: seeded[0]!.refreshToken });
    expect(refreshed.status).toBe(200);
  });
});
