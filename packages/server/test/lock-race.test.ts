/**
 * Takeover of a stale data dir lock by processes racing for it: in every round a lock left by a dead process waits
 * in a fresh data dir, and several processes ask for it at the same instant. Exactly one may win; the others must
 * meet the winner as a live holder (STORE_LOCKED), and no file but the lock may be left in the dir.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { LOCK_FILE } from '../src/store/lock.js';

const here = dirname(fileURLToPath(import.meta.url));
const serverDir = resolve(here, '..');
const repoRoot = resolve(serverDir, '../..');

const ROUNDS = 40;
const CONTENDERS = 3;

/** A contender process and the lines it answers with, in order. */
class Contender {
  readonly child: ChildProcess;
  private readonly lines: string[] = [];
  private waiting: ((line: string) => void) | undefined;
  private failWaiting: ((err: Error) => void) | undefined;
  private stderr = '';

  constructor() {
    this.child = spawn(
      process.execPath,
      ['--import', resolve(serverDir, 'register.mjs'), resolve(here, 'fixtures/lock-contender.ts')],
      { cwd: repoRoot, stdio: ['pipe', 'pipe', 'pipe'] },
    );
    this.child.stderr!.on('data', (chunk: Buffer) => (this.stderr += chunk.toString()));
    // One listener for the process's life: a line awaited when it exits fails with its stderr.
    this.child.once('exit', (code) => this.failWaiting?.(new Error(`contender ${this.pid} exited (${code}): ${this.stderr}`)));
    createInterface({ input: this.child.stdout! }).on('line', (line) => {
      const waiting = this.waiting;
      this.waiting = undefined;
      if (waiting) waiting(line);
      else this.lines.push(line);
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  next(): Promise<string> {
    const line = this.lines.shift();
    if (line !== undefined) return Promise.resolve(line);
    return new Promise((resolveLine, fail) => {
      this.waiting = resolveLine;
      this.failWaiting = fail;
    });
  }

  send(line: string): void {
    this.child.stdin!.write(`${line}\n`);
  }
}

/** The pid of a process that has exited (and been reaped): surely no live holder. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
  await once(child, 'exit');
  return child.pid!;
}

/** What a losing contender reported: the StoreError's code and message. */
interface Failure {
  code: string;
  message: string;
}

interface Round {
  round: number;
  winners: number[];
  losers: ({ pid: number } & Failure)[];
  lockHolds: string;
  leftInDir: string[];
}

describe('processes taking over the same stale lock at the same instant', () => {
  const contenders: Contender[] = [];

  beforeAll(async () => {
    for (let i = 0; i < CONTENDERS; i++) contenders.push(new Contender());
    for (const contender of contenders) expect(await contender.next()).toBe('ready');
  });

  afterAll(async () => {
    await Promise.all(
      contenders.map(async ({ child }) => {
        if (child.exitCode !== null) return;
        const exited = once(child, 'exit');
        child.stdin!.end();
        await exited;
      }),
    );
  });

  it(`leave exactly one of them holding it, ${ROUNDS} rounds in a row`, async () => {
    const rounds: Round[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      const dir = await mkdtemp(join(tmpdir(), 'greenroom-lock-race-'));
      const lockFile = join(dir, LOCK_FILE);
      await writeFile(lockFile, `${await deadPid()}\n`);

      // All are ready and idle: the commands go out back to back, so the acquires overlap.
      for (const contender of contenders) contender.send(`acquire ${dir}`);
      const answers = await Promise.all(contenders.map((contender) => contender.next()));
      const result: Round = { round, winners: [], losers: [], lockHolds: '', leftInDir: [] };
      answers.forEach((answer, i) => {
        const pid = contenders[i]!.pid;
        if (answer === 'won') result.winners.push(pid);
        else if (answer.startsWith('lost ')) result.losers.push({ pid, ...(JSON.parse(answer.slice(5)) as Failure) });
        else throw new Error(`unexpected answer of ${pid}: ${answer}`);
      });
      // Every winner still holds its lock here, so the file names the one that really has it.
      result.lockHolds = (await readFile(lockFile, 'utf8')).trim();

      for (const contender of contenders) contender.send('release');
      for (const contender of contenders) expect(await contender.next()).toBe('released');
      result.leftInDir = await readdir(dir);
      await rm(dir, { recursive: true, force: true });
      rounds.push(result);
    }

    const doubleWins = rounds.filter((r) => r.winners.length > 1);
    if (doubleWins.length > 0) {
      process.stderr.write(`lock-race: ${doubleWins.length} of ${ROUNDS} rounds had more than one winner\n`);
    }
    expect(rounds.filter((r) => r.winners.length !== 1)).toEqual([]);
    for (const r of rounds) {
      expect(r.lockHolds).toBe(String(r.winners[0]));
      expect(r.losers).toHaveLength(CONTENDERS - 1);
      for (const loser of r.losers) {
        expect(loser.code).toBe('STORE_LOCKED');
        expect(loser.message).toContain(LOCK_FILE);
      }
      // The winner's release removed its lock, and no temp file of any contender is left.
      expect(r.leftInDir).toEqual([]);
    }
  });
});
