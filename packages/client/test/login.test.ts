/**
 * `login()` keeps the server-issued device id: in a browser (localStorage) it is stored from the first answer and
 * sent with every later login, so the server knows the device (a user locked out by guesses from elsewhere still
 * signs in here). Without storage it is returned for the app to keep. `signInAsGuest()` returns a pair that
 * connects. Real server, real password hashing.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { startTestServer, type TestServer } from '@greenroom/server/testing';
import { GreenroomClient, login, signInAsGuest } from '@greenroom/client';
import { UserStore } from '@greenroom/server';

const PASSWORD = 'a long enough password';

describe('login() and the device id', () => {
  let server: TestServer;
  const sent: Array<{ deviceId?: string }> = [];
  const recording: typeof fetch = async (input, init) => {
    sent.push(JSON.parse(String(init?.body)));
    return fetch(input, init);
  };

  beforeAll(async () => {
    server = await startTestServer();
    await server.ask(UserStore.Create, { username: 'kim', password: PASSWORD, role: 'user' });
  });
  afterEach(() => {
    delete (globalThis as { localStorage?: unknown }).localStorage;
    sent.length = 0;
  });
  afterAll(() => server?.close());

  it('in a browser: stores the issued id and sends it with the next login', async () => {
    const items = new Map<string, string>();
    (globalThis as { localStorage?: unknown }).localStorage = {
      getItem: (k: string) => items.get(k) ?? null,
      setItem: (k: string, v: string) => void items.set(k, v),
    };
    const first = await login(server.url, { username: 'kim', password: PASSWORD }, recording);
    expect(first.deviceId).toMatch(/^dv_/);
    expect(sent[0]!.deviceId).toBeUndefined();
    const second = await login(server.url, { username: 'kim', password: PASSWORD }, recording);
    expect(sent[1]!.deviceId).toBe(first.deviceId);
    expect(second.deviceId).toBe(first.deviceId);
    // Kept per server: another server's origin never receives this one's id.
    expect([...items.keys()]).toEqual([`greenroom:device:${new URL(server.url).origin}`]);
    const other = await startTestServer();
    try {
      await other.ask(UserStore.Create, { username: 'kim', password: PASSWORD, role: 'user' });
      await login(other.url, { username: 'kim', password: PASSWORD }, recording);
      expect(sent[2]!.deviceId).toBeUndefined();
    } finally {
      await other.close();
    }
  });

  it('without storage: returns the id, and an id passed back is kept by the server', async () => {
    const first = await login(server.url, { username: 'kim', password: PASSWORD }, recording);
    const again = await login(server.url, { username: 'kim', password: PASSWORD, deviceId: first.deviceId! }, recording);
    expect(again.deviceId).toBe(first.deviceId);
    const fresh = await login(server.url, { username: 'kim', password: PASSWORD }, recording);
    expect(fresh.deviceId).not.toBe(first.deviceId);
  });
});

describe('signInAsGuest()', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(() => server?.close());

  it('returns a pair for a new guest user that connects, with a device id that is kept when passed back', async () => {
    const pair = await signInAsGuest(server.url);
    expect(pair).toMatchObject({ role: 'guest', deviceId: expect.stringMatching(/^dv_/) });
    const client = new GreenroomClient({ url: server.url, auth: { mode: 'tokens', tokens: pair } });
    try {
      await client.connect();
      await expect(client.ask('UserStore', 'GetOwn')).resolves.toMatchObject({ uid: pair.uid, role: 'guest' });
    } finally {
      client.close();
    }
    const again = await signInAsGuest(server.url, { deviceId: pair.deviceId! });
    expect(again.deviceId).toBe(pair.deviceId);
    expect(again.uid).not.toBe(pair.uid);
  });
});
