/**
 * `npm start` as an operator (or a supervisor) runs it: the PID of `npm start` is what receives the signals. SIGTERM
 * to that PID, SIGINT to it, and SIGINT to its whole process group (a Ctrl-C in a terminal) each stop the server as
 * docs/operations.md says: exit 0, the port free, the data dir's lock and admin socket gone, no process of the tree left behind,
 * and no error text in the output.
 *
 * `npm start` installs and builds only what is out of date; the test command has built everything before jest runs.
 */
import { afterAll, describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

/** Every descendant PID of `pid`, read from /proc. */
function descendants(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)]);
    } catch {
      /* gone meanwhile */
    }
  }
  const out: number[] = [];
  const walk = (p: number) => {
    for (const c of children.get(p) ?? []) {
      out.push(c);
      walk(c);
    }
  };
  walk(pid);
  return out;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function portAnswers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });
}

async function npmStart() {
  const dataDir = await mkdtemp(join(tmpdir(), 'greenroom-start-'));
  dirs.push(dataDir);
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('GREENROOM_') && !k.startsWith('npm_') && k !== 'INIT_CWD'));
  // Its own process group, like a command typed in a terminal: the group is what a Ctrl-C reaches.
  const child = spawn('npm', ['start'], { cwd: root, detached: true, env: { ...env, GREENROOM_PORT: '0', GREENROOM_DATA: dataDir, GREENROOM_LOG_LEVEL: 'info' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      stdout += d.toString();
      const m = /"url":"http:\/\/127\.0\.0\.1:(\d+)"/.exec(stdout);
      if (m) resolve(Number(m[1]));
    });
    void exited.then((code) => reject(new Error(`npm start exited with ${code}: ${stderr}`)));
  });
  return { child, dataDir, port, exited, output: () => stdout + stderr };
}

describe('npm start', () => {
  it.each([
    ['SIGTERM to its PID', 'SIGTERM', false],
    ['SIGINT to its PID', 'SIGINT', false],
    ['SIGINT to its process group (Ctrl-C)', 'SIGINT', true],
  ] as const)('stops cleanly on %s: exit 0, port free, lock and socket gone, no process left, no error text', async (_what, signal, group) => {
    const run = await npmStart();
    expect(await (await fetch(`http://127.0.0.1:${run.port}/healthz`)).json()).toEqual({ status: 'ok' });
    expect(existsSync(join(run.dataDir, 'greenroom.lock'))).toBe(true);
    const tree = descendants(run.child.pid!);
    // npm runs the script without a shell left in between: the server is npm's own child.
    expect(tree.length).toBeGreaterThan(0);

    process.kill(group ? -run.child.pid! : run.child.pid!, signal);
    expect(await run.exited).toBe(0);

    expect(await portAnswers(run.port)).toBe(false);
    expect(existsSync(join(run.dataDir, 'greenroom.lock'))).toBe(false);
    expect(existsSync(join(run.dataDir, 'greenroom.sock'))).toBe(false);
    expect(tree.filter(alive)).toEqual([]);
    expect(run.output()).toContain('greenroom stopped');
    expect(run.output()).not.toMatch(/ERR|ELIFECYCLE|error|fail/i);
  });
});
