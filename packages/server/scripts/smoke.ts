/**
 * Smoke run of the real server process, as an operator starts it: start `greenroom serve` on a fresh data dir,
 * log in over HTTP, open a WebSocket, ask UserStore.GetOwn, send SIGTERM, and expect exit code 0.
 * Exits non-zero (with the reason) if any step fails.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { loginWithPassword, TestClient } from '../src/testing/index.js';

const serverDir = new URL('..', import.meta.url).pathname;
const dataDir = mkdtempSync(join(tmpdir(), 'greenroom-smoke-'));
const admin = { username: 'smoke-admin', password: 'smoke-password-1' };

function fail(message: string): never {
  console.error(`smoke: FAILED: ${message}`);
  rmSync(dataDir, { recursive: true, force: true });
  process.exit(1);
}

const child = spawn(process.execPath, ['bin/greenroom.mjs', 'serve'], {
  cwd: serverDir,
  env: { ...process.env, GREENROOM_PORT: '0', GREENROOM_DATA: dataDir, GREENROOM_ADMIN: `${admin.username}:${admin.password}` },
  stdio: ['ignore', 'pipe', 'inherit'],
});
let stopping = false;
const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
const timer = setTimeout(() => {
  child.kill('SIGKILL');
  fail('timed out after 60 s');
}, 60_000);

const url = await new Promise<string>((resolve) => {
  createInterface({ input: child.stdout! }).on('line', (line) => {
    try {
      const entry = JSON.parse(line) as { msg?: string; url?: string };
      if (entry.msg === 'greenroom listening' && entry.url) resolve(entry.url);
    } catch {
      /* not a log line */
    }
  });
  void exited.then((code) => stopping || fail(`server exited early with ${code}`));
});
console.log(`smoke: server up at ${url}`);

const login = await loginWithPassword(url, admin).catch((err: Error) => fail(`login: ${err.message}`));
const session = (login.body ?? {}) as { uid?: string; accessToken?: string };
if (login.status !== 200 || !session.accessToken) fail(`login answered ${login.status}`);
console.log('smoke: logged in');

const client = await TestClient.connect(url, session.accessToken).catch((err: Error) => fail(`websocket: ${err.message}`));
const reply = await client.ask('UserStore', 'GetOwn');
if (!reply.ok || reply.result?.uid !== session.uid) fail(`UserStore.GetOwn answered ${JSON.stringify(reply)}`);
console.log('smoke: UserStore.GetOwn answered with the own user');

stopping = true;
child.kill('SIGTERM');
const code = await exited;
const { code: closeCode } = await client.closed;
clearTimeout(timer);
if (code !== 0) fail(`server exited with ${code} after SIGTERM`);
if (closeCode !== 1001) fail(`socket closed with ${closeCode}, expected 1001`);
console.log('smoke: SIGTERM closed the socket with 1001 and the server exited 0');
rmSync(dataDir, { recursive: true, force: true });
console.log('smoke: 1 passed, 0 failed');
