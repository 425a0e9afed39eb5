/**
 * The `greenroom user …` commands, run as the real command (a child process), and the admin socket they use.
 *
 * - With no server on the data dir, the command works on the store itself and talks to nobody: a listener on
 *   GREENROOM_PORT receives no request and no byte of GREENROOM_ADMIN's password.
 * - With a server running, it goes through `<data>/greenroom.sock` (mode 0600): no password, no session left.
 * - A socket file left by a crash never blocks a start; a bad line gets BAD_FRAME and the socket keeps answering;
 *   internal messages stay UNKNOWN_MESSAGE; asks in flight are bounded; stop answers them, then closes.
 * - `--server URL` refuses plain http to a host that is not loopback before connecting anywhere, and against a
 *   loopback server logs in, runs the command and logs out (no live session left).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { lstat, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { connect, type Socket } from 'node:net';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { defineActor } from '../src/actors/define.js';
import type { SessionRecord, UserView } from '../src/actors/records.js';
import { UserStore } from '../src/actors/user-store.js';
import { ADMIN_SOCKET_FILE, MAX_ADMIN_INFLIGHT } from '../src/gateway/admin-socket.js';
import { internals } from '../src/server.js';
import { deferred, issueSession, startTestServer, TestClient, type TestServer } from '../src/testing/index.js';
import { greenroom, type CommandRun, tempDirs } from './helpers.js';

const serverDir = fileURLToPath(new URL('..', import.meta.url));
const admin = { username: 'cli-admin', password: 'cli-admin-password-1' };

type Run = CommandRun;

/** The last line of stdout, as JSON (the command prints its result there). */
function result<T>(run: Run): T {
  if (run.code !== 0) throw new Error(`greenroom exited with ${run.code}: ${run.stderr}`);
  const lines = run.stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]!) as T;
}

/** A plain HTTP server that records every connection, every byte and every request it gets. */
async function fakeListener(host = '127.0.0.1'): Promise<{ port: number; connections: number; bytes: () => Buffer; requests: string[]; close(): Promise<void> }> {
  const chunks: Buffer[] = [];
  const requests: string[] = [];
  const state = { connections: 0 };
  const server = http.createServer((req, res) => {
    requests.push(`${req.method} ${req.url}`);
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end('{"status":"ok","accessToken":"fake"}');
  });
  server.on('connection', (socket) => {
    state.connections++;
    socket.on('data', (d: Buffer) => chunks.push(d));
  });
  await new Promise<void>((resolve) => server.listen(0, host, () => resolve()));
  return {
    port: (server.address() as { port: number }).port,
    get connections() {
      return state.connections;
    },
    bytes: () => Buffer.concat(chunks),
    requests,
    close: () => new Promise<void>((resolve) => (server.closeAllConnections(), server.close(() => resolve()))),
  };
}

/** A raw client of the admin socket: send lines, read answer lines in order. */
class LineClient {
  private buffered = '';
  private readonly lines: string[] = [];
  private waiters: Array<() => void> = [];
  readonly closed: Promise<void>;

  private constructor(readonly socket: Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (text: string) => {
      this.buffered += text;
      let nl: number;
      while ((nl = this.buffered.indexOf('\n')) !== -1) {
        this.lines.push(this.buffered.slice(0, nl));
        this.buffered = this.buffered.slice(nl + 1);
      }
      for (const w of this.waiters.splice(0)) w();
    });
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    void this.closed.then(() => {
      for (const w of this.waiters.splice(0)) w();
    });
  }

  static open(path: string): Promise<LineClient> {
    return new Promise((resolve, reject) => {
      const socket = connect(path);
      socket.once('connect', () => resolve(new LineClient(socket)));
      socket.once('error', reject);
    });
  }

  send(data: string | Buffer): void {
    this.socket.write(data);
  }

  /** The next answer line, parsed. */
  async next(): Promise<any> {
    while (this.lines.length === 0) {
      if (this.socket.destroyed) throw new Error('the admin socket closed');
      await new Promise<void>((r) => this.waiters.push(r));
    }
    return JSON.parse(this.lines.shift()!);
  }

  async ask(id: string, to: string, type: string, payload: unknown = {}): Promise<any> {
    this.send(`${JSON.stringify({ id, to, type, payload })}\n`);
    return this.next();
  }

  close(): Promise<void> {
    this.socket.end();
    return this.closed;
  }
}

/** Every session record of a user (live or ended), by sid. */
async function sessionsOf(server: TestServer, uid: string): Promise<SessionRecord[]> {
  const rows = await internals(server).store.findBy<SessionRecord>('sessions', 'uid', uid);
  return rows.map((r) => r.value).sort((a, b) => a.sid.localeCompare(b.sid));
}

const live = (sessions: SessionRecord[]) => sessions.filter((s) => s.revokedAt === null && s.expiresAt > Date.now());

/** Leaves a socket file behind the way a crash does: a process listens on it and is killed. */
async function crashLeftSocket(path: string): Promise<void> {
  const code = `require('net').createServer().listen(${JSON.stringify(path)}, () => process.kill(process.pid, 'SIGKILL'))`;
  await new Promise<void>((resolve) => spawn(process.execPath, ['-e', code], { stdio: 'ignore' }).once('exit', () => resolve()));
}

function refused(path: string): Promise<string | null> {
  return new Promise((resolve) => {
    const s = connect(path);
    s.once('connect', () => (s.destroy(), resolve(null)));
    s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
  });
}

const tempDir = tempDirs();

describe('greenroom user … with no server on the data dir', () => {
  it('works on the store itself and sends nothing to whatever listens on GREENROOM_PORT', async () => {
    const fake = await fakeListener();
    const dataDir = await tempDir('greenroom-cli-local-');
    const env = {
      GREENROOM_HOST: '127.0.0.1',
      GREENROOM_PORT: String(fake.port),
      GREENROOM_ADMIN: `${admin.username}:${admin.password}`,
      GREENROOM_DATA: dataDir,
    };
    try {
      const added = result<UserView>(await greenroom(['user', 'add', 'bob'], { ...env, GREENROOM_USER_PASSWORD: 'bob-password-123' }));
      expect(added).toMatchObject({ username: 'bob', role: 'user', blocked: false });
      const users = result<UserView[]>(await greenroom(['user', 'list', '--json'], env));
      expect(users.map((u) => u.username).sort()).toEqual(['bob', admin.username].sort());
      const blocked = result<UserView>(await greenroom(['user', 'block', 'bob'], env));
      expect(blocked.blocked).toBe(true);

      expect(fake.connections).toBe(0);
      expect(fake.requests).toEqual([]);
      expect(fake.bytes().includes(admin.password)).toBe(false);
      // The lock is released and no socket was made by a command.
      expect(existsSync(join(dataDir, 'greenroom.lock'))).toBe(false);
      expect(existsSync(join(dataDir, ADMIN_SOCKET_FILE))).toBe(false);
    } finally {
      await fake.close();
    }
  });

  it('takes a stale socket file for what it is: no server, so the store is opened locally', async () => {
    const dataDir = await tempDir('greenroom-cli-stale-');
    await crashLeftSocket(join(dataDir, ADMIN_SOCKET_FILE));
    expect(await refused(join(dataDir, ADMIN_SOCKET_FILE))).toBe('ECONNREFUSED');
    const users = result<UserView[]>(await greenroom(['user', 'list', '--json'], { GREENROOM_DATA: dataDir, GREENROOM_ADMIN: `${admin.username}:${admin.password}` }));
    expect(users.map((u) => u.username)).toEqual([admin.username]);
  });

  it('lists how the commands reach a server in --help', async () => {
    const run = await greenroom(['--help']);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('greenroom.sock');
    expect(run.stdout).toContain('--server URL');
  });
});

describe('greenroom user … with a server running on the data dir', () => {
  let server: TestServer;
  let fake: Awaited<ReturnType<typeof fakeListener>>;
  let adminUid: string;
  let env: Record<string, string>;

  beforeAll(async () => {
    server = await startTestServer({ config: { admin } });
    adminUid = (await server.ask(UserStore.Get, { username: admin.username })).uid;
    fake = await fakeListener();
    // The port points at a listener that records everything, and the admin credentials are set: neither may be used.
    env = { GREENROOM_DATA: server.dataDir, GREENROOM_PORT: String(fake.port), GREENROOM_ADMIN: `${admin.username}:${admin.password}` };
  });
  afterAll(async () => {
    await server.close();
    await fake.close();
  });

  it('listens on <data>/greenroom.sock with mode 0600', async () => {
    const st = await lstat(join(server.dataDir, ADMIN_SOCKET_FILE));
    expect(st.isSocket()).toBe(true);
    expect(st.mode & 0o777).toBe(0o600);
  });

  it('runs add, list, role, block and unblock through the socket, leaving no session behind', async () => {
    await issueSession(server, { uid: adminUid }); // the admin's own browser session
    const before = await sessionsOf(server, adminUid);

    const added = result<UserView>(await greenroom(['user', 'add', 'carol', '--role', 'user'], { ...env, GREENROOM_USER_PASSWORD: 'carol-password-1' }));
    expect(added).toMatchObject({ username: 'carol', role: 'user', blocked: false });
    expect(await server.ask(UserStore.Get, { username: 'carol' })).toMatchObject({ uid: added.uid });

    const users = result<UserView[]>(await greenroom(['user', 'list', '--json'], env));
    expect(users.map((u) => u.username).sort()).toEqual(['carol', admin.username].sort());

    const promoted = result<UserView>(await greenroom(['user', 'role', 'carol', 'editor'], env));
    expect(promoted.role).toBe('editor');

    // Block closes carol's live socket with 4003 before the command answers.
    const session = await issueSession(server, { uid: added.uid });
    const client = await TestClient.connect(server, session.accessToken);
    const blocked = result<UserView>(await greenroom(['user', 'block', 'carol'], env));
    expect(blocked.blocked).toBe(true);
    expect(await client.closed).toEqual({ code: 4003, reason: 'blocked' });

    const unblocked = result<UserView>(await greenroom(['user', 'unblock', 'carol'], env));
    expect(unblocked.blocked).toBe(false);

    // A command's error is the server's answer, through the socket too.
    const missing = await greenroom(['user', 'block', 'nobody'], env);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('NOT_FOUND');

    expect(await sessionsOf(server, adminUid)).toEqual(before);
    expect(fake.connections).toBe(0);
  });

  // Names people read are checked by UserStore whichever way they arrive. (An unpaired surrogate cannot travel in a
  // command line: argv is UTF-8. The wire tests in security.test.ts cover it.)
  it.each([
    ['a control character', ['--display-name', 'Dan\u0007']],
    ['a right-to-left override', ['--display-name', 'Dan\u202Egnp.exe']],
    ['a bidirectional isolate', ['--display-name', '\u2066Dan\u2069']],
    ['a right-to-left mark', ['--display-name', 'Dan\u200F']],
    ['a line separator', ['--display-name', 'Dan\u2028']],
  ])('refuses a display name with %s (BAD_PAYLOAD), creating nothing', async (_what, args) => {
    const run = await greenroom(['user', 'add', 'dan', ...args], { ...env, GREENROOM_USER_PASSWORD: 'dan-password-1' });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('BAD_PAYLOAD');
    await expect(server.ask(UserStore.Get, { username: 'dan' })).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('refuses a username with bidirectional formatting, and stores a display name NFC-normalized', async () => {
    const bad = await greenroom(['user', 'add', 'dan\u202E'], { ...env, GREENROOM_USER_PASSWORD: 'dan-password-1' });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('BAD_PAYLOAD');
    const ok = result<UserView>(await greenroom(['user', 'add', 'dan', '--display-name', 'Dane\u0301'], { ...env, GREENROOM_USER_PASSWORD: 'dan-password-1' }));
    expect(ok.displayName).toBe('Dan\u00e9');
  });
});

describe('the admin socket', () => {
  let server: TestServer;
  const gate = deferred();
  const Slow = defineActor({
    name: 'Slow',
    state: () => ({}),
    messages: (message) => ({
      Wait: message({ allow: ['admin'], payload: z.object({}), handle: async () => (await gate.promise, { waited: true }) }),
      Member: message({ allow: ['user'], payload: z.object({}), handle: () => 'member' }),
    }),
  });
  let client: LineClient;

  beforeAll(async () => {
    // The ask timeout leaves room for UserStore.Create's password hashing on a busy machine.
    server = await startTestServer({ actors: [Slow], config: { maxFrameBytes: 1024, askTimeoutMs: 10_000 } });
  });
  afterEach(async () => {
    await client?.close();
  });
  afterAll(async () => {
    gate.resolve();
    await server.close();
  });

  it('answers a bad line with BAD_FRAME and keeps answering; the wire checks all apply', async () => {
    client = await LineClient.open(join(server.dataDir, ADMIN_SOCKET_FILE));
    client.send('not json\n');
    expect(await client.next()).toMatchObject({ id: null, ok: false, error: { code: 'BAD_FRAME' } });
    client.send('{"id":"x","to":"UserStore"}\n');
    expect(await client.next()).toMatchObject({ id: 'x', ok: false, error: { code: 'BAD_FRAME' } });
    client.send(Buffer.from([0xff, 0xfe, 0x0a])); // not UTF-8
    expect(await client.next()).toMatchObject({ id: null, ok: false, error: { code: 'BAD_FRAME' } });
    client.send(`{"id":"big","to":"UserStore","type":"GetAll","payload":{"pad":"${'x'.repeat(4000)}"}}\n`);
    expect(await client.next()).toMatchObject({ id: null, ok: false, error: { code: 'BAD_FRAME' } });
    // A line too long, arriving in pieces, is answered once and dropped up to its newline.
    client.send('{"id":"big2","pad":"');
    for (let i = 0; i < 4; i++) client.send('y'.repeat(600));
    expect(await client.next()).toMatchObject({ id: null, ok: false, error: { code: 'BAD_FRAME' } });
    client.send('"}\n');

    expect(await client.ask('1', 'UserStore', 'GetAll')).toEqual({ id: '1', ok: true, result: { items: [], nextCursor: null } });
    expect(await client.ask('2', 'UserStore', 'FindForLogin', { username: 'x' })).toMatchObject({ id: '2', ok: false, error: { code: 'UNKNOWN_MESSAGE' } });
    expect(await client.ask('3', 'Nobody', 'Get')).toMatchObject({ id: '3', ok: false, error: { code: 'UNKNOWN_ACTOR' } });
    expect(await client.ask('4', 'Slow', 'Member')).toMatchObject({ id: '4', ok: false, error: { code: 'FORBIDDEN' } });
    expect(await client.ask('5', 'UserStore', 'GetAll', { limit: 'many' })).toMatchObject({ id: '5', ok: false, error: { code: 'BAD_PAYLOAD' } });
    expect(await client.ask('6', 'UserStore', 'Create', { username: 'dave', password: 'dave-password-1' })).toMatchObject({
      id: '6',
      ok: true,
      result: { username: 'dave', role: 'user' },
    });
    // Several asks on one line-stream, the last line without its newline answered when the client half-closes.
    client.send('{"id":7,"to":"UserStore","type":"Get","payload":{"username":"dave"}}\n{"id":8,"to":"UserStore","type":"Get","payload":{"username":"nobody"}}');
    client.socket.end();
    const answers = [await client.next(), await client.next()];
    expect(answers).toEqual([
      { id: 7, ok: true, result: expect.objectContaining({ username: 'dave' }) },
      { id: 8, ok: false, error: { code: 'NOT_FOUND', message: expect.any(String) } },
    ]);
    await client.closed;
  });

  it('bounds the asks in flight of a connection', async () => {
    client = await LineClient.open(join(server.dataDir, ADMIN_SOCKET_FILE));
    let lines = '';
    for (let i = 0; i <= MAX_ADMIN_INFLIGHT; i++) lines += `${JSON.stringify({ id: i, to: 'Slow', type: 'Wait' })}\n`;
    client.send(lines);
    // The one past the bound is answered at once; the others wait for the handler (or, past the actor's mailbox
    // bound, if it has one, get UNAVAILABLE), none of them RATE_LIMITED.
    const early: any[] = [];
    do early.push(await client.next());
    while (early[early.length - 1].id !== MAX_ADMIN_INFLIGHT);
    expect(early.pop()).toMatchObject({ id: MAX_ADMIN_INFLIGHT, ok: false, error: { code: 'RATE_LIMITED' } });
    for (const answer of early) expect(answer.error?.code).not.toBe('RATE_LIMITED');
  });
});

describe('the admin socket across start and stop', () => {
  it('replaces a socket file left by a crash, or any file in its place, and removes it at stop', async () => {
    for (const leave of ['socket', 'file'] as const) {
      const dataDir = await tempDir('greenroom-cli-restart-');
      const path = join(dataDir, ADMIN_SOCKET_FILE);
      if (leave === 'socket') await crashLeftSocket(path);
      else await writeFile(path, 'junk');
      expect(await refused(path)).toBe('ECONNREFUSED');

      const server = await startTestServer({ keepDataDir: dataDir, config: { admin } });
      const st = await lstat(path);
      expect(st.isSocket()).toBe(true);
      expect(st.mode & 0o777).toBe(0o600);
      const client = await LineClient.open(path);
      expect(await client.ask('1', 'UserStore', 'Get', { username: admin.username })).toMatchObject({ ok: true, result: { username: admin.username } });
      await client.close();
      await server.close();
      expect(existsSync(path)).toBe(false);
    }
  });

  it('on stop answers the asks in flight, refuses new ones and new connections, then closes its connections', async () => {
    const gate = deferred();
    const started = deferred();
    const Slow = defineActor({
      name: 'Slow',
      state: () => ({}),
      messages: (message) => ({
        Wait: message({
          allow: ['admin'],
          payload: z.object({}),
          handle: async () => {
            started.resolve();
            await gate.promise;
            return { waited: true };
          },
        }),
      }),
    });
    const server = await startTestServer({ actors: [Slow] });
    const path = join(server.dataDir, ADMIN_SOCKET_FILE);
    const client = await LineClient.open(path);
    client.send('{"id":"slow","to":"Slow","type":"Wait"}\n');
    await started.promise;
    const stopped = server.close();
    expect(existsSync(path)).toBe(false); // no new connections
    expect(await client.ask('late', 'UserStore', 'GetAll')).toMatchObject({ id: 'late', ok: false, error: { code: 'UNAVAILABLE' } });
    gate.resolve();
    expect(await client.next()).toEqual({ id: 'slow', ok: true, result: { waited: true } });
    await client.closed;
    await stopped;
  });

  it('a real server process: the command reaches it through the socket, and SIGTERM removes the socket', async () => {
    const dataDir = await tempDir('greenroom-cli-serve-');
    const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('GREENROOM_')));
    const child = spawn(process.execPath, ['bin/greenroom-dev.mjs', 'serve'], {
      cwd: serverDir,
      env: { ...base, GREENROOM_PORT: '0', GREENROOM_DATA: dataDir, GREENROOM_ADMIN: `${admin.username}:${admin.password}`, GREENROOM_LOG_LEVEL: 'info' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const logged: Array<{ msg?: string; path?: string }> = [];
    await new Promise<void>((resolve, reject) => {
      createInterface({ input: child.stdout! }).on('line', (line) => {
        try {
          logged.push(JSON.parse(line) as { msg?: string });
        } catch {
          return;
        }
        if (logged.some((e) => e.msg === 'greenroom listening')) resolve();
      });
      void exited.then((code) => reject(new Error(`server exited with ${code}: ${stderr}`)));
    });
    const path = join(dataDir, ADMIN_SOCKET_FILE);
    expect(logged.find((e) => e.msg === 'admin socket listening')?.path).toBe(path);

    const users = result<UserView[]>(await greenroom(['user', 'list', '--json'], { GREENROOM_DATA: dataDir }));
    expect(users.map((u) => u.username)).toEqual([admin.username]);

    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(stderr).toBe('');
    expect(existsSync(path)).toBe(false);
  });

  it('runs without the socket, with a warning, when its path is too long', async () => {
    const base = await tempDir('greenroom-cli-long-');
    const dataDir = join(base, 'd'.repeat(100));
    const lines: string[] = [];
    const { createLogger } = await import('../src/log.js');
    const logger = createLogger({ level: 'warn', destination: { write: (l: string) => (lines.push(l), true) } as unknown as NodeJS.WritableStream });
    const server = await startTestServer({ keepDataDir: dataDir, logger });
    try {
      expect(existsSync(join(dataDir, ADMIN_SOCKET_FILE))).toBe(false);
      expect(lines.some((l) => l.includes('admin socket path too long'))).toBe(true);
      // The command then finds the data dir locked, and says so.
      const run = await greenroom(['user', 'list'], { GREENROOM_DATA: dataDir });
      expect(run.code).toBe(1);
      expect(run.stderr).toContain('in use by another process');
    } finally {
      await server.close();
    }
  });
});

describe('greenroom user … --server URL', () => {
  it('refuses plain http to a host that is not loopback, before connecting anywhere', async () => {
    const env = { GREENROOM_ADMIN: `${admin.username}:${admin.password}`, GREENROOM_DATA: await tempDir('greenroom-cli-remote-') };
    const run = await greenroom(['user', 'list', '--server', 'http://example.invalid:1'], env);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('https://');
    expect(run.stderr).not.toContain(admin.password);

    // This machine's own non-loopback address, where a listener records any connection.
    const external = Object.values(networkInterfaces())
      .flat()
      .find((a) => a && a.family === 'IPv4' && !a.internal)?.address;
    if (external) {
      const fake = await fakeListener('0.0.0.0');
      try {
        const viaEnv = await greenroom(['user', 'list'], { ...env, GREENROOM_SERVER_URL: `http://${external}:${fake.port}` });
        expect(viaEnv.code).toBe(1);
        expect(viaEnv.stderr).toContain('https://');
        expect(fake.connections).toBe(0);
      } finally {
        await fake.close();
      }
    }
  });

  it('logs in to a loopback server, runs the command over the WebSocket and logs out', async () => {
    const server = await startTestServer({ config: { admin } });
    try {
      const adminUid = (await server.ask(UserStore.Get, { username: admin.username })).uid;
      await issueSession(server, { uid: adminUid });
      const liveBefore = live(await sessionsOf(server, adminUid));
      const env = { GREENROOM_ADMIN: `${admin.username}:${admin.password}`, GREENROOM_DATA: await tempDir('greenroom-cli-remote-') };

      const added = result<UserView>(await greenroom(['user', 'add', 'erin', '--server', server.url], { ...env, GREENROOM_USER_PASSWORD: 'erin-password-1' }));
      expect(added).toMatchObject({ username: 'erin', role: 'user' });
      const users = result<UserView[]>(await greenroom(['user', 'list', '--json'], { ...env, GREENROOM_SERVER_URL: server.url }));
      expect(users.map((u) => u.username).sort()).toEqual(['erin', admin.username].sort());
      // A failing command logs out too.
      const missing = await greenroom(['user', 'block', 'nobody', '--server', server.url], env);
      expect(missing.code).toBe(1);
      expect(missing.stderr).toContain('NOT_FOUND');

      const after = await sessionsOf(server, adminUid);
      expect(live(after)).toEqual(liveBefore);
      const made = after.filter((s) => !liveBefore.some((b) => b.sid === s.sid));
      expect(made).toHaveLength(3);
      for (const s of made) expect(s.revokeReason).toBe('logout');
      // The command's data dir was never opened.
      expect(existsSync(join(env.GREENROOM_DATA, 'greenroom.json'))).toBe(false);
    } finally {
      await server.close();
    }
  });

  it('fails cleanly on wrong credentials', async () => {
    const server = await startTestServer({ config: { admin } });
    try {
      const run = await greenroom(['user', 'list', '--server', server.url], { GREENROOM_ADMIN: `${admin.username}:not-the-password`, GREENROOM_DATA: await tempDir('greenroom-cli-remote-') });
      expect(run.code).toBe(1);
      expect(run.stderr).toContain('admin login');
      expect(run.stderr).not.toContain('not-the-password');
    } finally {
      await server.close();
    }
  });
});
