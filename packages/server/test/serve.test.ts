/**
 * Serving an app's actors, as the real process runs them:
 * - `greenroom serve --actors <module>` loads the module (TypeScript from the sources, JavaScript from the build; a
 *   path relative to where the command was typed) and serves its actors beside the built-ins, over a real socket;
 * - a module that is missing, fails to load or exports no actors stops the command with exit 1 and one line naming it;
 * - `serve({ actors })` from @greenroom/server (an app's own main module) handles signals as the command does:
 *   SIGTERM or SIGINT stops the server cleanly (exit 0), a second signal within a second is the same request, and a
 *   failed start rejects and leaves the signals alone.
 */
import { describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loginWithPassword, TestClient } from '../src/testing/index.js';
import { greenroom, tempDirs } from './helpers.js';

const serverDir = fileURLToPath(new URL('..', import.meta.url));
const admin = { username: 'serve-admin', password: 'serve-admin-password-1' };
const tempDir = tempDirs();

/** A long-running server process, once it listens: its URL, its output so far, and how it exits. */
interface Running {
  url: string;
  pid: number;
  exited: Promise<number | null>;
  output: () => string;
}

/** Spawns `node <args>` from packages/server with only these GREENROOM_* variables, and waits until it listens. */
async function listening(args: string[], env: Record<string, string> = {}): Promise<Running> {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('GREENROOM_') && k !== 'INIT_CWD'));
  const dataDir = await tempDir('greenroom-serve-');
  const child = spawn(process.execPath, args, {
    cwd: serverDir,
    env: { ...base, GREENROOM_PORT: '0', GREENROOM_DATA: dataDir, GREENROOM_LOG_LEVEL: 'info', GREENROOM_ADMIN: `${admin.username}:${admin.password}`, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout.on('data', () => {
      const m = /"url":"(http:\/\/127\.0\.0\.1:\d+)"/.exec(out);
      if (m) resolve(m[1]!);
    });
    void exited.then((code) => reject(new Error(`exited with ${code} before listening: ${out}`)));
  });
  return { url, pid: child.pid!, exited, output: () => out };
}

/** Logs in as the admin over HTTP and asks Greeter.Hello over a real WebSocket. */
async function askGreeter(url: string): Promise<unknown> {
  const login = await loginWithPassword(url, admin);
  expect(login.status).toBe(200);
  const client = await TestClient.connect(url, login.body.accessToken as string);
  try {
    const reply = await client.ask('Greeter', 'Hello', { name: 'ada' });
    expect(reply.ok).toBe(true);
    return reply.ok ? reply.result : undefined;
  } finally {
    client.ws.close();
  }
}

describe('greenroom serve --actors', () => {
  it('serves the actors of a TypeScript module from the sources, and stops on SIGTERM with exit 0', async () => {
    const run = await listening(['bin/greenroom-dev.mjs', 'serve', '--actors', 'test/fixtures/greeter-actors.ts']);
    expect(await askGreeter(run.url)).toEqual({ greeting: 'hello ada', from: 'ts', greeted: 1 });
    process.kill(run.pid, 'SIGTERM');
    expect(await run.exited).toBe(0);
    expect(run.output()).toContain('greenroom stopped');
  });

  it('serves the default export of a JavaScript module with the built command, the path taken from where it was typed', async () => {
    // The test command builds before jest runs (npm test); the built server is what an installed app runs.
    expect(existsSync(join(serverDir, 'dist/cli/main.js'))).toBe(true);
    const run = await listening(['bin/greenroom.mjs', 'serve', '--actors', './greeter-actors.mjs'], { INIT_CWD: join(serverDir, 'test/fixtures') });
    expect(await askGreeter(run.url)).toEqual({ greeting: 'hello ada', from: 'js', greeted: 1 });
    process.kill(run.pid, 'SIGTERM');
    expect(await run.exited).toBe(0);
  });

  it.each([
    ['exports no actors', 'test/fixtures/not-actors.mjs', /--actors test\/fixtures\/not-actors\.mjs: expected an `actors` export .* array of actors made with defineActor; found an object with keys Greeter/],
    ['is missing', './test/fixtures/no-such-actors.js', /--actors \.\/test\/fixtures\/no-such-actors\.js: no such file: .*test\/fixtures\/no-such-actors\.js/],
    ['names no installed package', 'no-such-package', /--actors no-such-package: no such file, and no such package installed/],
    ['fails while it loads', 'test/fixtures/broken-actors.mjs', /--actors test\/fixtures\/broken-actors\.mjs: the module could not be loaded: the app failed to start: DATABASE_URL is not set/],
  ])('exits 1 with one line naming a module that %s', async (_what, module, message) => {
    const dataDir = await tempDir('greenroom-serve-');
    const run = await greenroom(['serve', '--actors', module], { GREENROOM_DATA: dataDir, GREENROOM_PORT: '0' });
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(message);
    expect(run.stderr.trim().split('\n')).toHaveLength(1); // no stack
  });

  it('lists --actors in --help', async () => {
    const run = await greenroom(['--help']);
    expect(run.stdout).toContain('greenroom serve [--actors MODULE]');
  });
});

describe('serve() from @greenroom/server', () => {
  const app = ['--import', './register.mjs', 'test/fixtures/serve-app.ts'];

  it('serves the app actors it is given and stops on SIGTERM with exit 0', async () => {
    const run = await listening(app);
    expect(await askGreeter(run.url)).toEqual({ greeting: 'hello ada', from: 'ts', greeted: 1 });
    process.kill(run.pid, 'SIGTERM');
    expect(await run.exited).toBe(0);
    expect(run.output()).toContain('greenroom stopped');
  });

  it('takes a second SIGINT within a second as the same request to stop (exit 0)', async () => {
    const run = await listening(app);
    process.kill(run.pid, 'SIGINT');
    process.kill(run.pid, 'SIGINT');
    expect(await run.exited).toBe(0);
    expect(run.output()).toContain('greenroom stopped');
  });

  it('rejects when the server cannot start, and leaves no handler holding the process', async () => {
    // A second server on a data dir another one holds: start fails on the lock.
    const first = await listening(app);
    const dataDir = /"dataDir":"([^"]+)"/.exec(first.output())![1]!;
    const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('GREENROOM_')));
    const second = spawn(process.execPath, app, { cwd: serverDir, env: { ...base, GREENROOM_PORT: '0', GREENROOM_DATA: dataDir, GREENROOM_LOG_LEVEL: 'silent' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    second.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const code = await new Promise<number | null>((resolve) => second.once('exit', resolve));
    expect(out).toContain(`rejected: `);
    expect(out).toContain(dataDir); // the lock error names the data dir
    expect(code).toBe(0); // nothing left running once serve() rejected
    process.kill(first.pid, 'SIGTERM');
    expect(await first.exited).toBe(0);
  });
});
