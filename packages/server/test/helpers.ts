/**
 * Helpers shared by the server's test files that only they need: the store's contents, the `greenroom` command run
 * from the sources, and temp dirs. Everything else comes from the harness, `src/testing` (@greenroom/server/testing).
 */
import { spawn } from 'node:child_process';
import { afterAll, expect } from '@jest/globals';
import { StoreError } from '../src/errors.js';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { internals } from '../src/server.js';
import { listJournals } from '../src/store/journal.js';
import { DEFAULT_STORE_FILE } from '../src/store/lowdb-store.js';
import type { TestServer } from '../src/testing/index.js';

/** Every collection the server's store holds. */
export const STORE_COLLECTIONS = ['users', 'sessions', 'fingerprints', 'meta'] as const;

/** Every record (read page by page) and the count of each of `collections` in the server's store, keyed by collection. */
export async function storeContents(
  server: TestServer,
  collections: readonly string[] = STORE_COLLECTIONS,
): Promise<Record<string, { count: number; items: unknown[] }>> {
  const store = internals(server).store;
  const out: Record<string, { count: number; items: unknown[] }> = {};
  for (const collection of collections) {
    const items: unknown[] = [];
    let after: string | undefined;
    do {
      const page = await store.scan(collection, { after, limit: 500 });
      items.push(...page.items);
      after = page.next ?? undefined;
    } while (after);
    out[collection] = { count: await store.count(collection), items };
  }
  return out;
}

/** The store's files in a data dir, in the order start-up reads them: the snapshot, then its journals. */
function storeFilesIn(dataDir: string): string[] {
  const journals = readdirSync(dataDir)
    .map((name) => /^greenroom\.json\.journal\.([0-9]+)$/.exec(name))
    .filter((m): m is RegExpExecArray => m !== null)
    .sort((a, b) => Number(a[1]) - Number(b[1]))
    .map((m) => join(dataDir, m[0]));
  return [join(dataDir, DEFAULT_STORE_FILE), ...journals];
}

/** The text of the store's files on disk at this instant (read synchronously, so nothing runs in between). */
export function storeTextOnDisk(dataDir: string): string {
  return storeFilesIn(dataDir)
    .map((path) => readFileSync(path, 'utf8'))
    .join('\n');
}

/**
 * The store's durable state on disk at this instant, read synchronously: the snapshot with its journals' batches
 * applied (journal.ts's format: `<crc> [["p", collection, id, record] | ["d", collection, id], ...]` a line).
 */
export function storeOnDisk(dataDir: string): Record<string, Record<string, any>> {
  const [snapshot, ...journals] = storeFilesIn(dataDir);
  const doc = JSON.parse(readFileSync(snapshot!, 'utf8')) as Record<string, Record<string, any>>;
  for (const journal of journals) {
    for (const line of readFileSync(journal, 'utf8').split('\n')) {
      if (!line) continue;
      for (const [op, collection, id, value] of JSON.parse(line.slice(9)) as Array<[string, string, string, unknown]>) {
        const records = (doc[collection] ??= {});
        if (op === 'p') records[id] = value;
        else delete records[id];
      }
    }
  }
  return doc;
}

/** The store's bytes on disk at this moment: the snapshot, then its journals (a write changes one or the other). */
export async function storeFileBytes(server: TestServer): Promise<Buffer> {
  const journals = await listJournals(join(server.dataDir, DEFAULT_STORE_FILE));
  return Buffer.concat(await Promise.all([join(server.dataDir, DEFAULT_STORE_FILE), ...journals.map((j) => j.path)].map((path) => readFile(path))));
}

/** What a run of the `greenroom` command printed, and how it exited. */
export interface CommandRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `greenroom <args>` from the sources, with only the GREENROOM_* variables given here (none inherited). */
export function greenroom(args: string[], env: Record<string, string> = {}): Promise<CommandRun> {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('GREENROOM_') && k !== 'INIT_CWD'));
  const child = spawn(process.execPath, ['bin/greenroom-dev.mjs', ...args], {
    cwd: fileURLToPath(new URL('..', import.meta.url)),
    env: { ...base, GREENROOM_LOG_LEVEL: 'silent', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, stdout, stderr })));
}

/** Makes temp dirs for one test file, all removed after its tests (call at the top level of the file). */
export function tempDirs(): (prefix: string) => Promise<string> {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });
  return async (prefix) => {
    const dir = await mkdtemp(join(tmpdir(), prefix));
    dirs.push(dir);
    return dir;
  };
}

/**
 * A `faults.beforeSync` hook for LowdbStore: while held, every fsync (of `kind` only, if given) waits at the gate
 * until released; while failing, every fsync fails as a lost disk would.
 */
export function syncGate(kind?: 'journal' | 'snapshot') {
  let held: Promise<void> | null = null;
  let release = () => undefined as void;
  let reached = () => undefined as void;
  let reachedP = Promise.resolve();
  let failing = false;
  return {
    beforeSync: async (what: 'journal' | 'snapshot') => {
      if (kind !== undefined && what !== kind) return;
      if (failing) throw Object.assign(new Error('EIO: the disk went away'), { code: 'EIO' });
      if (!held) return;
      reached();
      await held;
    },
    hold() {
      held = new Promise<void>((r) => (release = r));
      reachedP = new Promise<void>((r) => (reached = r));
    },
    /** Resolves once a flush waits at the gate. */
    reached: () => reachedP,
    release() {
      held = null;
      release();
    },
    fail() {
      failing = true;
    },
  };
}

/** The StoreError a promise rejects with (fails the test if it resolves, or rejects with anything else). */
export async function rejection(promise: Promise<unknown>): Promise<StoreError> {
  const err = await promise.then(
    () => {
      throw new Error('expected a rejection');
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(StoreError);
  return err as StoreError;
}
