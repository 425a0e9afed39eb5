/**
 * Durability of the real server process: it acknowledges writes, is killed with SIGKILL mid-stream, restarts on
 * the same data dir, and every acknowledged write is there. And a corrupt store file stops start-up with an error
 * naming the file, leaving the file as it was.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { loginWithPassword, wsUrl } from '../src/testing/index.js';

const serverDir = fileURLToPath(new URL('..', import.meta.url));
const admin = { username: 'crash-admin', password: 'crash-password-1' };

function serve(dataDir: string): { child: ChildProcess; url: Promise<string>; exited: Promise<number | null>; stderr: () => string } {
  const child = spawn(process.execPath, ['bin/greenroom-dev.mjs', 'serve'], {
    cwd: serverDir,
    env: { ...process.env, GREENROOM_PORT: '0', GREENROOM_DATA: dataDir, GREENROOM_ADMIN: `${admin.username}:${admin.password}`, GREENROOM_LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const url = new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      try {
        const entry = JSON.parse(line) as { msg?: string; url?: string };
        if (entry.msg === 'greenroom listening' && entry.url) resolve(entry.url);
      } catch {
        /* not a log line */
      }
    });
    void exited.then((code) => reject(new Error(`server exited with ${code}: ${err}`)));
  });
  return { child, url, exited, stderr: () => err };
}

async function adminSocket(url: string): Promise<{ ws: WebSocket; uid: string }> {
  const session = (await loginWithPassword(url, admin)).body as { accessToken: string; uid: string };
  const ws = new WebSocket(wsUrl(url), { headers: { Authorization: `Bearer ${session.accessToken}` } });
  await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
  return { ws, uid: session.uid };
}

describe('a server process killed with SIGKILL', () => {
  let dataDir: string;
  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'greenroom-crash-'));
  });
  afterAll(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  it('keeps every write it acknowledged, across a restart on the same data dir', async () => {
    const first = serve(dataDir);
    const { ws, uid } = await adminSocket(await first.url);
    // Acks arrive in the order UserStore applied the updates (one socket, one mailbox). Eight asks are kept in
    // flight (within the per-connection quota), so writes are still arriving when the process is killed.
    let lastAcked = -1;
    let killed = false;
    let sent = 0;
    const update = () => ws.send(JSON.stringify({ id: sent, to: 'UserStore', type: 'Update', payload: { uid, displayName: `v${sent++}` } }));
    const acked = new Promise<void>((resolve) => {
      ws.on('message', (data) => {
        const reply = JSON.parse(data.toString()) as { id: number; ok: boolean };
        if (!reply.ok || killed) return;
        lastAcked = Math.max(lastAcked, reply.id);
        if (lastAcked >= 150) {
          killed = true;
          first.child.kill('SIGKILL');
          resolve();
        } else update();
      });
    });
    for (let i = 0; i < 8; i++) update();
    await acked;
    expect(await first.exited).toBeNull(); // killed by the signal, not exited
    ws.terminate();

    const second = serve(dataDir); // the dead process's lock must not block the restart
    const url = await second.url;
    const again = await adminSocket(url);
    const reply = await new Promise<{ result: { displayName: string } }>((resolve) => {
      again.ws.once('message', (d) => resolve(JSON.parse(d.toString())));
      again.ws.send(JSON.stringify({ id: 1, to: 'UserStore', type: 'GetOwn' }));
    });
    const stored = Number(reply.result.displayName.slice(1));
    expect(stored).toBeGreaterThanOrEqual(lastAcked);
    again.ws.close();
    second.child.kill('SIGTERM');
    expect(await second.exited).toBe(0);
  });

  it('refuses to start on a corrupt store file, naming it, and leaves the file unchanged', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'greenroom-corrupt-'));
    const file = join(dir, 'greenroom.json');
    const corrupt = '{"users": {"a": {"uid": "a"}}, "sessions": 5';
    await writeFile(file, corrupt);
    const run = serve(dir);
    await expect(run.url).rejects.toThrow();
    expect(await run.exited).toBe(1);
    expect(run.stderr()).toContain(file);
    expect(run.stderr()).not.toMatch(/\n\s+at /); // a message for the operator, not a stack trace
    expect(await readFile(file, 'utf8')).toBe(corrupt);
    await rm(dir, { recursive: true, force: true });
  });
});
