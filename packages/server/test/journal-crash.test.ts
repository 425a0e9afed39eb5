/**
 * kill -9 of a process writing to the embedded store, at random moments, many times over the same data dir: during
 * journal appends, and during compactions. After each kill the store opens (a torn journal tail never fails
 * start-up), every acknowledged batch is there, and every batch is there whole or not at all.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { LowdbStore } from '../src/store/lowdb-store.js';

const here = dirname(fileURLToPath(import.meta.url));
const serverDir = resolve(here, '..');
const ROUNDS = 20;

/** Runs the writer until `killAt` says so, SIGKILLs it, and answers the batch numbers it acknowledged. */
async function killedWriter(dir: string, prefix: string, compactAfter: number, killAt: (line: string, acked: number) => boolean): Promise<number[]> {
  const child = spawn(
    process.execPath,
    ['--import', resolve(serverDir, 'register.mjs'), resolve(here, 'fixtures/journal-writer.ts'), dir, prefix, String(compactAfter)],
    { cwd: serverDir, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = once(child, 'exit');
  const acked: number[] = [];
  let killed = false;
  // Only whole lines count: a partial line is not an acknowledgement (yet).
  for await (const line of createInterface({ input: child.stdout! })) {
    if (line.startsWith('ack ')) acked.push(Number(line.slice(4)));
    if (!killed && killAt(line, acked.length)) {
      child.kill('SIGKILL');
      killed = true;
    }
  }
  const [code, signal] = (await exited) as [number | null, string | null];
  if (signal !== 'SIGKILL') throw new Error(`writer exited on its own (${code}): ${stderr}`);
  return acked;
}

/** Opens the store (which must not fail), and checks the acknowledged batches and that every batch is whole. */
async function check(dir: string, prefix: string, acked: number[]): Promise<{ batches: number }> {
  const store = await LowdbStore.open(dir);
  try {
    const missing = acked.filter((n) => store.now.get('a', `${prefix}-${String(n).padStart(6, '0')}`) === undefined);
    expect(missing).toEqual([]);
    const a = new Set(store.now.scan('a', { limit: 1_000_000 }).items.map((i) => i.id));
    const b = new Set(store.now.scan('b', { limit: 1_000_000 }).items.map((i) => i.id));
    const halves = [...a].filter((id) => !b.has(id)).concat([...b].filter((id) => !a.has(id)));
    expect(halves).toEqual([]);
    return { batches: a.size };
  } finally {
    await store.close();
  }
}

const random = (below: number) => Math.floor(Math.random() * below);

describe('a writer killed with SIGKILL, over and over', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'greenroom-journal-crash-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it(`during journal appends (${ROUNDS} rounds): every acknowledged batch is there, each batch whole`, async () => {
    const data = join(dir, 'appends');
    let total = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const prefix = `r${round}`;
      // Killed after a random number of acknowledgements: with 8 writers in flight, mid-append more often than not.
      const killAfter = 1 + random(400);
      const acked = await killedWriter(data, prefix, 1 << 30, (_line, count) => count >= killAfter);
      expect(acked.length).toBeGreaterThanOrEqual(killAfter);
      total = (await check(data, prefix, acked)).batches;
    }
    expect(total).toBeGreaterThan(ROUNDS);
  }, 600_000);

  it(`during compactions (${ROUNDS} rounds): the same, with the snapshot being replaced all the time`, async () => {
    const data = join(dir, 'compactions');
    let sawSnapshot = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const prefix = `r${round}`;
      // Half the rounds die at a compaction's snapshot fsync (mid-compaction for sure), half at a random ack while
      // compactions run back to back (the journal bound is a few kilobytes).
      const atSnapshot = round % 2 === 0;
      const nth = 1 + random(3);
      let snapshots = 0;
      const killAfter = 1 + random(300);
      const acked = await killedWriter(data, prefix, 4096, (line, count) => {
        if (line === 'snapshot') snapshots++;
        return atSnapshot ? snapshots >= nth : count >= killAfter;
      });
      sawSnapshot += snapshots;
      await check(data, prefix, acked);
    }
    expect(sawSnapshot).toBeGreaterThanOrEqual(ROUNDS / 2);
  }, 600_000);
});
