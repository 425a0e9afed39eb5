/**
 * Backups of the store: `greenroom backup FILE [--force]` and `greenroom restore FILE`, run as the real command (a
 * child process) against real data dirs.
 *
 * - A backup taken while a server takes a steady stream of acknowledged writes holds every write acknowledged before
 *   the command started, and is one whole snapshot (no writer's sequence has a hole); restored into a fresh data
 *   dir, a server starts on it and finds them all.
 * - Restore refuses while a server runs (STORE_LOCKED, naming the data dir), refuses a file that is not a store
 *   backup leaving the store byte for byte as it was, and keeps the store it replaces as `.before-restore`.
 * - Backup refuses an existing file unless --force, writes mode 0600, resolves a relative path where the command
 *   was typed, never writes over the data dir's own files, and is offered by the admin socket only.
 * - With no server running, the command reads the store itself under the data dir's lock.
 */
import { describe, expect, it } from '@jest/globals';
import { existsSync } from 'node:fs';
import { chmod, lstat, mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import type { UserView } from '../src/actors/records.js';
import { UserStore } from '../src/actors/user-store.js';
import { ADMIN_SOCKET_FILE } from '../src/gateway/admin-socket.js';
import { internals } from '../src/server.js';
import { BackupError, BEFORE_RESTORE_SUFFIX } from '../src/store/backup.js';
import { parseStoreDocument } from '../src/store/durable-file.js';
import { DEFAULT_STORE_FILE, LowdbStore, readStoreFiles } from '../src/store/lowdb-store.js';
import { MemoryStore } from '../src/store/memory-store.js';
import { eventually, issueSession, startTestServer, TestClient, type TestServer } from '../src/testing/index.js';
import { greenroom, type CommandRun, tempDirs } from './helpers.js';


type Run = CommandRun;

function ok(run: Run): Run {
  if (run.code !== 0) throw new Error(`greenroom exited with ${run.code}: ${run.stderr}`);
  return run;
}

const tempDir = tempDirs();

const storeFileOf = (dataDir: string) => join(dataDir, DEFAULT_STORE_FILE);

const isJournal = (name: string) => /^greenroom\.json\.journal\.[0-9]+$/.test(name);

/** The data dir's entries other than the store file and its journal, the secret and (while a server runs) the socket. */
async function strays(dataDir: string): Promise<string[]> {
  return (await readdir(dataDir)).filter((n) => ![DEFAULT_STORE_FILE, 'secret', ADMIN_SOCKET_FILE].includes(n) && !isJournal(n)).sort();
}

/** The store's files byte for byte: the snapshot, then each journal by name. */
async function storeBytes(dataDir: string): Promise<Record<string, Buffer>> {
  const names = (await readdir(dataDir)).filter((n) => n === DEFAULT_STORE_FILE || isJournal(n)).sort();
  return Object.fromEntries(await Promise.all(names.map(async (n) => [n, await readFile(join(dataDir, n))] as const)));
}

/** The durable state a store file (with its journals) holds, as a plain document. */
async function documentOf(storeFile: string): Promise<Record<string, Record<string, unknown>>> {
  const data = (await readStoreFiles(storeFile)) ?? new Map();
  return Object.fromEntries([...data].map(([name, records]) => [name, Object.fromEntries(records)]));
}

/** A running server whose data dir outlives it (closed by the test, the dir removed at the end). */
async function serverOn(dataDir?: string): Promise<TestServer> {
  return startTestServer({ keepDataDir: dataDir ?? (await tempDir('greenroom-backup-data-')) });
}

/** A raw line client of the admin socket. */
async function adminLine(dataDir: string, line: unknown): Promise<any> {
  const socket: Socket = await new Promise((resolve, reject) => {
    const s = connect(join(dataDir, ADMIN_SOCKET_FILE));
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
  socket.setEncoding('utf8');
  let text = '';
  const answer = new Promise<any>((resolve) => {
    socket.on('data', (chunk: string) => {
      text += chunk;
      const nl = text.indexOf('\n');
      if (nl !== -1) resolve(JSON.parse(text.slice(0, nl)));
    });
  });
  socket.write(`${typeof line === 'string' ? line : JSON.stringify(line)}\n`);
  try {
    return await answer;
  } finally {
    socket.destroy();
  }
}

describe('greenroom backup under a steady stream of writes', () => {
  it('holds every write acknowledged before the command started, as one whole snapshot that restores and opens', async () => {
    const server = await serverOn();
    const backupFile = join(await tempDir('greenroom-backup-out-'), 'store.backup.json');

    // Acknowledged writes, recorded as their promises resolve: raw store puts (sequential per writer, several
    // writers at once, so flushes are always pending or under way) and UserStore asks (Provision, then Update).
    const probes = new Map<number, number>(); // writer → highest i acknowledged (puts 0..i are acknowledged)
    const users = new Map<string, number>(); // uid → highest displayName version acknowledged
    let acks = 0;
    let running = true;
    const probeWriter = async (w: number) => {
      for (let i = 0; running; i++) {
        await internals(server).store.put('backup-probe', `${w}:${String(i).padStart(8, '0')}`, { w, i, at: Date.now() });
        probes.set(w, i);
        acks++;
      }
    };
    const userWriter = async (w: number) => {
      for (let n = 0; running; n++) {
        const user = await server.ask(UserStore.Provision, { username: `bk${w}n${n}`, role: 'user' });
        users.set(user.uid, 0);
        acks++;
        for (let v = 1; v <= 3 && running; v++) {
          await server.ask(UserStore.Update, { uid: user.uid, displayName: `v${v}` });
          users.set(user.uid, v);
          acks++;
        }
      }
    };
    const writers = [0, 1, 2, 3].map(probeWriter).concat([0, 1].map(userWriter));
    try {
      await eventually(() => acks >= 200, { timeoutMs: 30_000 });

      // What was acknowledged when the command was started (taken in the same tick as the spawn).
      const probesBefore = new Map(probes);
      const usersBefore = new Map(users);
      const acksBefore = acks;
      const run = await greenroom(['backup', backupFile], { GREENROOM_DATA: server.dataDir });
      const acksDuring = acks - acksBefore;
      running = false;
      await Promise.all(writers);

      ok(run);
      expect(run.stdout).toContain('written by the server running on');
      expect(acksDuring).toBeGreaterThan(0); // the writes went on while the backup was taken
      expect((await stat(backupFile)).mode & 0o777).toBe(0o600);

      // One whole snapshot: each sequential writer's puts form a prefix, with nothing missing in between.
      const parsed = parseStoreDocument(await readFile(backupFile, 'utf8'));
      expect(parsed.ok).toBe(true);
      const doc = (parsed as { ok: true; doc: Record<string, Record<string, { w: number; i: number }>> }).doc;
      const seen = new Map<number, number[]>();
      for (const { w, i } of Object.values(doc['backup-probe'] ?? {})) seen.set(w, [...(seen.get(w) ?? []), i]);
      for (const [w, is] of seen) {
        is.sort((a, b) => a - b);
        expect(is).toEqual(is.map((_, k) => k));
        expect(is.length - 1).toBeGreaterThanOrEqual(probesBefore.get(w) ?? -1);
      }

      await server.close();

      // Restored into a fresh data dir, the store opens and holds every write acknowledged before the backup began.
      const fresh = join(await tempDir('greenroom-backup-fresh-'), 'data');
      const restored = ok(await greenroom(['restore', backupFile], { GREENROOM_DATA: fresh }));
      expect(restored.stdout).toContain('nothing was replaced');
      const again = await serverOn(fresh);
      try {
        for (const [w, last] of probesBefore) {
          for (let i = 0; i <= last; i++) {
            expect(await internals(again).store.get('backup-probe', `${w}:${String(i).padStart(8, '0')}`)).toMatchObject({ w, i });
          }
        }
        expect(usersBefore.size).toBeGreaterThan(0);
        for (const [uid, version] of usersBefore) {
          const user = await again.ask(UserStore.Get, { uid });
          const got = user.displayName.startsWith('v') ? Number(user.displayName.slice(1)) : 0;
          expect(got).toBeGreaterThanOrEqual(version);
        }
      } finally {
        await again.close();
      }
    } finally {
      running = false;
      await Promise.allSettled(writers);
      await server.close();
    }
  }, 120_000);
});

describe('greenroom restore', () => {
  it('refuses while a server runs on the data dir (STORE_LOCKED, naming the dir), leaving the store as it was', async () => {
    const server = await serverOn();
    try {
      await server.ask(UserStore.Provision, { username: 'kept', role: 'user' });
      const backupFile = join(await tempDir('greenroom-backup-out-'), 'b.json');
      await internals(server).store.backup!(backupFile);
      const before = await storeBytes(server.dataDir);

      const run = await greenroom(['restore', backupFile], { GREENROOM_DATA: server.dataDir });
      expect(run.code).toBe(1);
      expect(run.stderr).toContain(`the data dir ${server.dataDir} is in use by another process`);
      expect(await storeBytes(server.dataDir)).toEqual(before);
      expect(existsSync(storeFileOf(server.dataDir) + BEFORE_RESTORE_SUFFIX)).toBe(false);
      // The server is untouched: it still answers through its socket.
      expect((await adminLine(server.dataDir, { id: 1, to: UserStore.name, type: 'Get', payload: { username: 'kept' } })).ok).toBe(true);
    } finally {
      await server.close();
    }
  });

  it('refuses a file that is not a store backup, leaving the store byte for byte as it was', async () => {
    const dataDir = await tempDir('greenroom-backup-data-');
    const server = await serverOn(dataDir);
    await server.ask(UserStore.Provision, { username: 'kept', role: 'user' });
    await server.close();
    const before = await storeBytes(dataDir);
    const inputs = await tempDir('greenroom-backup-bad-');
    const cases: Array<[string, string | null, string]> = [
      ['not-json.json', '{"users": {"u1": {"uid": "u1"}', 'BACKUP_INVALID'],
      ['empty.json', '', 'BACKUP_INVALID'],
      ['array.json', '[{"users": {}}]', 'BACKUP_INVALID'],
      ['package.json', '{"name": "some-app", "version": "1.0.0", "dependencies": {}}', 'BACKUP_INVALID'],
      ['bad-record.json', '{"users": {"u1": "not a record"}}', 'BACKUP_INVALID'],
      ['missing.json', null, 'BACKUP_UNREADABLE'],
    ];
    for (const [name, content, code] of cases) {
      const file = join(inputs, name);
      if (content !== null) await writeFile(file, content);
      const run = await greenroom(['restore', file], { GREENROOM_DATA: dataDir });
      expect({ name, code: run.code }).toEqual({ name, code: 1 });
      expect(run.stderr).toContain(`greenroom: ${code}: `);
      expect(run.stderr).toContain('the store was left untouched');
      expect(await storeBytes(dataDir)).toEqual(before);
      expect(await strays(dataDir)).toEqual([]); // no .before-restore, no temp file, no lock left
    }
  });

  it('puts a backup in place, keeps the store it replaced as .before-restore, and that undoes it', async () => {
    const dataDir = await tempDir('greenroom-backup-data-');
    const backupFile = join(await tempDir('greenroom-backup-out-'), 'b.json');
    let server = await serverOn(dataDir);
    const early = await server.ask(UserStore.Provision, { username: 'early', role: 'user' });
    ok(await greenroom(['backup', backupFile], { GREENROOM_DATA: dataDir }));
    const late = await server.ask(UserStore.Provision, { username: 'late', role: 'user' });
    await server.close();
    const current = await documentOf(storeFileOf(dataDir));
    expect(Object.keys(current.users ?? {})).toContain(late.uid);

    const run = ok(await greenroom(['restore', backupFile], { GREENROOM_DATA: dataDir }));
    const kept = storeFileOf(dataDir) + BEFORE_RESTORE_SUFFIX;
    expect(run.stdout).toContain(`the store it replaced is kept as ${kept}`);
    // The store it replaced, snapshot and journal together, as one document.
    expect(parseStoreDocument(await readFile(kept, 'utf8'))).toEqual({ ok: true, doc: current });
    expect((await stat(kept)).mode & 0o777).toBe(0o600);
    expect(await readFile(storeFileOf(dataDir))).toEqual(await readFile(backupFile));
    expect((await stat(storeFileOf(dataDir))).mode & 0o777).toBe(0o600);
    expect(await strays(dataDir)).toEqual([DEFAULT_STORE_FILE + BEFORE_RESTORE_SUFFIX]);

    server = await serverOn(dataDir);
    try {
      expect(await server.ask(UserStore.Get, { uid: early.uid })).toMatchObject({ username: 'early' });
      await expect(server.ask(UserStore.Get, { uid: late.uid })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    } finally {
      await server.close();
    }

    // The mistaken restore undone: the kept store comes back (and the restored one is kept in turn).
    const restored = await documentOf(storeFileOf(dataDir));
    ok(await greenroom(['restore', kept], { GREENROOM_DATA: dataDir }));
    expect(await documentOf(storeFileOf(dataDir))).toEqual(current);
    expect(await documentOf(kept)).toEqual(restored);
  });
});

describe('greenroom backup', () => {
  it('refuses an existing file unless --force, writes mode 0600, and takes a relative path where it was typed', async () => {
    const server = await serverOn();
    try {
      const env = { GREENROOM_DATA: server.dataDir };
      const out = await tempDir('greenroom-backup-out-');
      const file = join(out, 'existing.json');
      await writeFile(file, 'keep me');
      await chmod(file, 0o644);

      const refused = await greenroom(['backup', file], env);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain('greenroom: BACKUP_EXISTS: ');
      expect(refused.stderr).toContain('--force');
      expect(await readFile(file, 'utf8')).toBe('keep me');
      expect(await readdir(out)).toEqual(['existing.json']); // no temp file left beside it

      ok(await greenroom(['backup', file, '--force'], env));
      expect(parseStoreDocument(await readFile(file, 'utf8')).ok).toBe(true);
      expect((await stat(file)).mode & 0o777).toBe(0o600);

      // Relative to where the command was typed (npm and pnpm scripts say where in INIT_CWD).
      ok(await greenroom(['backup', 'relative.json'], { ...env, INIT_CWD: out }));
      expect((await stat(join(out, 'relative.json'))).mode & 0o777).toBe(0o600);
    } finally {
      await server.close();
    }
  });

  it("never writes over the data dir's own files, even with --force", async () => {
    const server = await serverOn();
    try {
      await server.ask(UserStore.Provision, { username: 'kept', role: 'user' });
      const before = await readFile(storeFileOf(server.dataDir));
      for (const name of [DEFAULT_STORE_FILE, 'greenroom.lock', 'secret']) {
        const run = await greenroom(['backup', join(server.dataDir, name), '--force'], { GREENROOM_DATA: server.dataDir });
        expect(run.code).toBe(1);
        expect(run.stderr).toContain('BACKUP_BAD_TARGET');
      }
      expect(await readFile(storeFileOf(server.dataDir))).toEqual(before);
      expect(await server.ask(UserStore.Get, { username: 'kept' })).toMatchObject({ username: 'kept' });
    } finally {
      await server.close();
    }
  });

  it('is an operation of the admin socket only: the WebSocket answers such a frame BAD_FRAME and writes nothing', async () => {
    const server = await serverOn();
    try {
      const out = await tempDir('greenroom-backup-out-');
      const file = join(out, 'ws.json');
      const session = await issueSession(server, { role: 'admin' });
      const client = await TestClient.connect(server, session.accessToken);
      try {
        const reply = await client.sendRaw(JSON.stringify({ id: 'b1', op: 'backup', file }), 'b1');
        expect(reply).toMatchObject({ id: 'b1', ok: false, error: { code: 'BAD_FRAME' } });
      } finally {
        client.close();
      }
      expect(existsSync(file)).toBe(false);

      // Through the socket: a relative path and unknown members are BAD_FRAME; a good line writes the file.
      expect(await adminLine(server.dataDir, { id: 1, op: 'backup', file: 'relative.json' })).toMatchObject({ id: 1, ok: false, error: { code: 'BAD_FRAME' } });
      expect(await adminLine(server.dataDir, { id: 2, op: 'backup', file, mode: 0o644 })).toMatchObject({ id: 2, ok: false, error: { code: 'BAD_FRAME' } });
      expect(await adminLine(server.dataDir, { id: 3, op: 'restore', file })).toMatchObject({ id: 3, ok: false, error: { code: 'BAD_FRAME' } });
      expect(existsSync(file)).toBe(false);
      const done = await adminLine(server.dataDir, { id: 4, op: 'backup', file });
      expect(done).toMatchObject({ id: 4, ok: true, result: { file } });
      expect(done.result.bytes).toBe((await stat(file)).size);
      expect(await adminLine(server.dataDir, { id: 5, op: 'backup', file })).toMatchObject({ id: 5, ok: false, error: { code: 'BACKUP_EXISTS' } });
    } finally {
      await server.close();
    }
  });

  it('with no server running, reads the store itself under the data dir lock', async () => {
    const dataDir = await tempDir('greenroom-backup-data-');
    const server = await serverOn(dataDir);
    await server.ask(UserStore.Provision, { username: 'offline', role: 'user' });
    await server.close();
    expect(existsSync(join(dataDir, ADMIN_SOCKET_FILE))).toBe(false);

    const file = join(await tempDir('greenroom-backup-out-'), 'offline.json');
    const run = ok(await greenroom(['backup', file], { GREENROOM_DATA: dataDir }));
    expect(run.stdout).toContain(`read under the lock of ${dataDir}`);
    expect(await documentOf(file)).toEqual(await documentOf(storeFileOf(dataDir)));
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(await strays(dataDir)).toEqual([]); // the lock released, no socket made

    // A data dir that does not exist (a mistyped GREENROOM_DATA) is an error, not an empty backup.
    const nowhere = join(dataDir, 'nowhere');
    const missing = await greenroom(['backup', join(dataDir, '..', 'empty.json')], { GREENROOM_DATA: nowhere });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('nothing to back up');
    expect(existsSync(nowhere)).toBe(false);
  });
});

describe('Store.backup', () => {
  it('lowdb: waits for writes made before the call that are not yet on disk', async () => {
    const dataDir = await tempDir('greenroom-backup-store-');
    const store = await LowdbStore.open(dataDir);
    try {
      await store.put('c', 'first', { n: 1 });
      const pending = store.put('c', 'second', { n: 2 }); // applied in memory, its flush not yet done
      const file = join(dataDir, 'snapshot.json');
      const result = await store.backup(file);
      await pending;
      const parsed = parseStoreDocument(await readFile(file, 'utf8'));
      expect(parsed.ok && Object.keys(parsed.doc.c ?? {}).sort()).toEqual(['first', 'second']);
      expect(result).toEqual({ file, bytes: (await stat(file)).size });
    } finally {
      await store.close();
    }
  });

  it('lowdb: waits for the flush under way when the call comes during it', async () => {
    const dataDir = await tempDir('greenroom-backup-store-');
    const store = await LowdbStore.open(dataDir);
    try {
      const pending = store.put('c', 'only', { n: 1 });
      // The flush starts a microtask after the put and serializes the document at once; its file work is under way.
      for (let i = 0; i < 3; i++) await Promise.resolve();
      const state = store as unknown as { pending: unknown; flushing: unknown };
      expect({ pending: state.pending, flushing: state.flushing !== null }).toEqual({ pending: null, flushing: true });
      const file = join(dataDir, 'snapshot.json');
      await store.backup(file);
      await pending;
      const parsed = parseStoreDocument(await readFile(file, 'utf8'));
      expect(parsed.ok && Object.keys(parsed.doc.c ?? {})).toEqual(['only']);
    } finally {
      await store.close();
    }
  });

  it('lowdb: a store never written backs up as an empty document, which restores', async () => {
    const dataDir = await tempDir('greenroom-backup-store-');
    const store = await LowdbStore.open(join(dataDir, 'data'));
    const file = join(dataDir, 'empty.json');
    try {
      await store.backup(file);
    } finally {
      await store.close();
    }
    expect(JSON.parse(await readFile(file, 'utf8'))).toEqual({});
    const restored = await LowdbStore.restore(join(dataDir, 'other'), file);
    expect(restored.previous).toBeNull();
    const reopened = await LowdbStore.open(join(dataDir, 'other'));
    await reopened.close();
  });

  it('memory: writes its document durably in the store file format, mode 0600, refusing an existing file', async () => {
    const dir = await tempDir('greenroom-backup-memory-');
    const store = new MemoryStore();
    await store.put('users', 'u1', { uid: 'u1', username: 'ann' });
    await store.put('__proto__', '__proto__', { odd: true });
    const file = join(dir, 'memory.json');
    await store.backup(file);
    expect((await lstat(file)).mode & 0o777).toBe(0o600);
    const parsed = parseStoreDocument(await readFile(file, 'utf8'));
    expect(parsed.ok).toBe(true);
    if (parsed.ok) {
      expect(parsed.doc.users?.u1).toEqual({ uid: 'u1', username: 'ann' });
      expect(Object.hasOwn(parsed.doc, '__proto__')).toBe(true);
    }
    await store.put('users', 'u2', { uid: 'u2' });
    await expect(store.backup(file)).rejects.toMatchObject({ code: 'BACKUP_EXISTS' });
    await expect(store.backup(file)).rejects.toBeInstanceOf(BackupError);
    await store.backup(file, { overwrite: true });
    expect(JSON.parse(await readFile(file, 'utf8')).users.u2).toEqual({ uid: 'u2' });
    await expect(store.backup('relative.json')).rejects.toMatchObject({ code: 'BACKUP_BAD_TARGET' });
    await mkdir(join(dir, 'sub'));
    expect(await readdir(dir)).toEqual(['memory.json', 'sub']); // no temp file left
  });
});
