import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { StoreError } from '../src/errors.js';
import { LOCK_FILE } from '../src/store/lock.js';
import { DEFAULT_STORE_FILE, LowdbStore, readStoreFiles, type LowdbStoreOptions } from '../src/store/lowdb-store.js';
import { MemoryStore } from '../src/store/memory-store.js';
import { storeContract } from './store.contract.js';
import { rejection, syncGate } from './helpers.js';

const here = dirname(fileURLToPath(import.meta.url));
const serverDir = resolve(here, '..');
const repoRoot = resolve(serverDir, '../..');

const newDir = () => mkdtemp(join(tmpdir(), 'greenroom-store-'));

/** The pid of a process that has exited (and been reaped), for stale-lock tests. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
  await once(child, 'exit');
  return child.pid!;
}

storeContract('MemoryStore', async () => {
  const store = new MemoryStore();
  return { store, cleanup: () => store.close() };
});

storeContract('LowdbStore', async () => {
  const dir = await newDir();
  const store = await LowdbStore.open(dir);
  return {
    store,
    cleanup: async () => {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});

describe('LowdbStore as a StagedStore', () => {
  let dir: string;
  const opened: LowdbStore[] = [];
  const gate = syncGate();
  const open = async () => {
    const store = await LowdbStore.open(dir, { faults: { beforeSync: gate.beforeSync } });
    opened.push(store);
    return store;
  };
  beforeEach(async () => {
    dir = join(await newDir(), 'data');
  });
  afterEach(async () => {
    gate.release();
    for (const store of opened.splice(0)) await store.close();
    await rm(dirname(dir), { recursive: true, force: true });
  });

  it('stages in memory at once and answers the flush that makes it durable', async () => {
    const store = await open();
    const durable = store.stage([
      { op: 'put', collection: 'users', id: 'u1', value: { v: 1 } },
      { op: 'put', collection: 'rooms', id: 'r1', value: { v: 2 } },
    ]);
    expect(store.now.get('users', 'u1')).toEqual({ v: 1 });
    expect(store.now.count('rooms')).toBe(1);
    expect(store.now.findBy('users', 'v', 1 as unknown as string)).toEqual([{ id: 'u1', value: { v: 1 } }]);
    expect(store.now.scan('rooms').items).toEqual([{ id: 'r1', value: { v: 2 } }]);
    expect(store.unflushed('users', 'u1')).toBe(durable);
    expect(store.unflushed('rooms')).toBe(durable);
    expect(store.unflushed('users', 'other')).toBeUndefined();
    expect(store.unflushed('other')).toBeUndefined();
    await durable;
    expect(store.unflushed('users', 'u1')).toBeUndefined();
    expect(store.unflushed('rooms')).toBeUndefined();
  });

  it('throws synchronously, with nothing applied, for a value that is not JSON and for a closed store', async () => {
    const store = await open();
    const cycle: Record<string, unknown> = {};
    cycle.self = cycle;
    expect(() =>
      store.stage([
        { op: 'put', collection: 'users', id: 'u1', value: { v: 1 } },
        { op: 'put', collection: 'users', id: 'u2', value: cycle },
      ]),
    ).toThrow(StoreError);
    expect(store.now.get('users', 'u1')).toBeUndefined();
    expect(store.unflushed('users')).toBeUndefined();
    await store.close();
    expect(() => store.stage([{ op: 'put', collection: 'users', id: 'u1', value: {} }])).toThrow(
      expect.objectContaining({ code: 'STORE_CLOSED' }) as unknown as Error,
    );
  });

  it('answers a read of a write only after the write is durable, and a read of untouched data at once', async () => {
    const store = await open();
    await store.put('users', 'old', { v: 0 });
    await store.put('rooms', 'r1', { v: 0 });
    gate.hold();
    const events: string[] = [];
    const put = store.put('users', 'new', { v: 1 });
    void put.then(() => events.push('put'));
    const reads = [
      store.get('users', 'new').then((v) => events.push(`get new ${JSON.stringify(v)}`)),
      store.count('users').then((n) => events.push(`count ${n}`)),
      store.scan('users').then((p) => events.push(`scan ${p.items.length}`)),
      store.findBy('users', 'v', 1 as unknown as string).then((r) => events.push(`findBy ${r.length}`)),
    ];
    await gate.reached();
    // The flush is held at its fsync: untouched records and collections answer, the written ones wait.
    expect(await store.get('users', 'old')).toEqual({ v: 0 });
    expect(await store.count('rooms')).toBe(1);
    expect(await store.scan('rooms')).toEqual({ items: [{ id: 'r1', value: { v: 0 } }], next: null });
    events.push('untouched');
    gate.release();
    await Promise.all([put, ...reads]);
    expect(events[0]).toBe('untouched');
    expect(events[1]).toBe('put');
    expect(events.slice(2).sort()).toEqual(['count 2', 'findBy 1', 'get new {"v":1}', 'scan 2']);
  });

  it('answers a read of a record deleted by a held flush only after it', async () => {
    const store = await open();
    await store.put('users', 'u1', { v: 1 });
    gate.hold();
    const events: string[] = [];
    const del = store.delete('users', 'u1');
    void del.then(() => events.push('delete'));
    const read = store.get('users', 'u1').then((v) => events.push(`get ${String(v)}`));
    await gate.reached();
    events.push('held');
    gate.release();
    await Promise.all([del, read]);
    expect(events).toEqual(['held', 'delete', 'get undefined']);
  });
});

// Compaction after every flush: each write of the suite goes on while a snapshot of the store is being written.
storeContract('LowdbStore, compacting all the time', async () => {
  const dir = await newDir();
  const store = await LowdbStore.open(dir, { compactAfterBytes: 1 });
  return {
    store,
    cleanup: async () => {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});

describe('LowdbStore on disk', () => {
  let dir: string;
  let file: string;
  const opened: LowdbStore[] = [];
  const open = async (options?: LowdbStoreOptions) => {
    const store = await LowdbStore.open(dir, options);
    opened.push(store);
    return store;
  };
  /** The durable state: what a start-up would read from the snapshot and the journal. */
  const onDisk = async (): Promise<Record<string, Record<string, unknown>>> => {
    const data = (await readStoreFiles(file)) ?? new Map();
    return Object.fromEntries([...data].map(([name, records]) => [name, Object.fromEntries(records)]));
  };
  const journalFile = () => `${file}.journal.1`;

  beforeEach(async () => {
    dir = join(await newDir(), 'data');
    file = join(dir, DEFAULT_STORE_FILE);
  });
  afterEach(async () => {
    for (const store of opened.splice(0)) await store.close();
    await rm(dirname(dir), { recursive: true, force: true });
  });

  it('creates the data dir with mode 0700, and the store file and its journal with mode 0600', async () => {
    const store = await open();
    await store.put('users', 'u1', { v: 1 });
    expect((await stat(dir)).mode & 0o777).toBe(0o700);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect((await stat(journalFile())).mode & 0o777).toBe(0o600);
  });

  it('has the data in the file when a put resolves', async () => {
    const store = await open();
    await store.put('users', 'u1', { name: 'ann' });
    expect((await onDisk()).users).toEqual({ u1: { name: 'ann' } });
    await store.delete('users', 'u1');
    expect((await onDisk()).users).toEqual({});
  });

  it('resolves each of many concurrent puts only once the file holds it', async () => {
    const store = await open();
    const missing: string[] = [];
    await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        store.put('sessions', `s${i}`, { i }).then(async () => {
          if (!(await onDisk()).sessions?.[`s${i}`]) missing.push(`s${i}`);
        }),
      ),
    );
    expect(missing).toEqual([]);
  });

  it('writes a batch in one flush', async () => {
    const store = await open();
    const before = store.flushCount;
    await store.write([
      { op: 'put', collection: 'users', id: 'u1', value: { v: 1 } },
      { op: 'put', collection: 'fingerprints', id: 'f1', value: { uid: 'u1' } },
    ]);
    expect(store.flushCount - before).toBe(1);
    expect(await onDisk()).toEqual({ users: { u1: { v: 1 } }, fingerprints: { f1: { uid: 'u1' } } });
  });

  it('group-commits: 100 concurrent puts cost at most 2 flushes', async () => {
    const store = await open();
    await store.put('warm', 'up', {});
    const before = store.flushCount;
    await Promise.all(Array.from({ length: 100 }, (_, i) => store.put('sessions', `s${i}`, { i })));
    const flushes = store.flushCount - before;
    expect(flushes).toBeGreaterThanOrEqual(1);
    expect(flushes).toBeLessThanOrEqual(2);
    expect(Object.keys((await onDisk()).sessions ?? {})).toHaveLength(100);
  });

  it('puts made while a flush runs share the next flush', async () => {
    const store = await open();
    const before = store.flushCount;
    const first = store.put('users', 'first', {});
    // Once the first flush is under way (it starts a microtask after the put), issue a wave of puts.
    await new Promise((r) => setImmediate(r));
    const wave = Array.from({ length: 50 }, (_, i) => store.put('users', `w${i}`, {}));
    await Promise.all([first, ...wave]);
    expect(store.flushCount - before).toBeLessThanOrEqual(2);
    expect(Object.keys((await onDisk()).users ?? {})).toHaveLength(51);
  });

  it('reads everything back after a reopen', async () => {
    const store = await open();
    await store.put('users', 'u1', { name: 'ann', tags: ['x'] });
    await store.put('users', '__proto__', { odd: true });
    await store.put('users', 'gone', {});
    await store.delete('users', 'gone');
    await store.write([{ op: 'put', collection: 'meta', id: 'schema', value: { version: 1 } }]);
    await store.close();

    const again = await open();
    expect(await again.get('users', 'u1')).toEqual({ name: 'ann', tags: ['x'] });
    expect(await again.get('users', '__proto__')).toEqual({ odd: true });
    expect(await again.get('users', 'gone')).toBeUndefined();
    expect(await again.count('users')).toBe(2);
    expect(await again.get('meta', 'schema')).toEqual({ version: 1 });
    // Records read from the file are as immutable as freshly put ones.
    const u1 = (await again.get('users', 'u1'))!;
    expect(Object.isFrozen(u1)).toBe(true);
  });

  it('scans in order after a reopen, and through writes made after it', async () => {
    const store = await open();
    await store.write(['m3', 'm1', 'm2'].map((id) => ({ op: 'put' as const, collection: 'messages', id, value: {} })));
    expect((await store.scan('messages', { reverse: true, limit: 2 })).items.map((i) => i.id)).toEqual(['m3', 'm2']);
    await store.close();

    const again = await open();
    await again.put('messages', 'm0', {}); // before the index exists
    expect((await again.scan('messages', { reverse: true })).items.map((i) => i.id)).toEqual(['m3', 'm2', 'm1', 'm0']);
    await again.put('messages', 'm4', {});
    await again.delete('messages', 'm2');
    expect((await again.scan('messages', { reverse: true, limit: 3 })).items.map((i) => i.id)).toEqual(['m4', 'm3', 'm1']);
  });

  it('uses the file named in options', async () => {
    const store = await open({ file: 'other.json' });
    await store.put('users', 'u1', {});
    expect(existsSync(join(dir, 'other.json'))).toBe(true);
    expect(existsSync(file)).toBe(false);
  });

  it('leaves no temp files behind, and removes those a killed writer left', async () => {
    const store = await open();
    await Promise.all(Array.from({ length: 30 }, (_, i) => store.put('users', `u${i}`, {})));
    for (let i = 0; i < 5; i++) await store.put('users', `seq${i}`, {});
    expect((await readdir(dir)).sort()).toEqual([DEFAULT_STORE_FILE, `${DEFAULT_STORE_FILE}.journal.1`, LOCK_FILE].sort());
    await store.close();

    const leftover = join(dir, `.${DEFAULT_STORE_FILE}.99999.3.tmp`);
    await writeFile(leftover, '{"torn');
    await open();
    expect(existsSync(leftover)).toBe(false);
  });

  describe('a corrupt or unreadable file', () => {
    it.each([
      ['truncated JSON', '{"users": 5'],
      ['a top-level array', '[1,2]'],
      ['a top-level number', '42'],
      ['a collection that is not an object', '{"users": 5}'],
      ['a collection that is an array', '{"users": [{"a": 1}]}'],
      ['a record that is not an object', '{"users": {"u1": 1}}'],
      ['a record that is null', '{"users": {"u1": null}}'],
      ['an empty file', ''],
    ])('rejects %s with STORE_CORRUPT naming the file, and leaves its bytes alone', async (_what, content) => {
      await mkdir(dir, { recursive: true });
      await writeFile(file, content);
      const err = await rejection(LowdbStore.open(dir));
      expect(err.code).toBe('STORE_CORRUPT');
      expect(err.message).toContain(file);
      expect(await readFile(file, 'utf8')).toBe(content);
      // The failed open released the lock.
      expect(existsSync(join(dir, LOCK_FILE))).toBe(false);
    });

    it('rejects a store file it cannot read with STORE_UNREADABLE naming the file', async () => {
      await mkdir(file, { recursive: true }); // a directory where the file should be: EISDIR
      const err = await rejection(LowdbStore.open(dir));
      expect(err.code).toBe('STORE_UNREADABLE');
      expect(err.message).toContain(file);
    });
  });

  describe('a failed flush', () => {
    it('rejects its writes with STORE_WRITE_FAILED, then stops the store (fail-stop)', async () => {
      let failing = false;
      const store = await open({
        faults: {
          beforeSync: async () => {
            if (failing) throw Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' });
          },
        },
      });
      await store.put('users', 'u1', { v: 1 });
      failing = true;

      const failed = await Promise.all([store.put('users', 'u2', {}), store.put('users', 'u3', {})].map(rejection));
      for (const err of failed) expect(err.code).toBe('STORE_WRITE_FAILED');
      expect((await rejection(store.get('users', 'u1'))).code).toBe('STORE_WRITE_FAILED');
      expect((await rejection(store.put('users', 'u4', {}))).code).toBe('STORE_WRITE_FAILED');
      expect((await rejection(store.ping())).code).toBe('STORE_WRITE_FAILED');
      // No temp file is left, and close still releases the lock.
      expect((await readdir(dir)).sort()).toEqual([DEFAULT_STORE_FILE, `${DEFAULT_STORE_FILE}.journal.1`, LOCK_FILE].sort());
      await store.close();
      expect(existsSync(join(dir, LOCK_FILE))).toBe(false);
    });
  });

  describe('the data dir lock', () => {
    const lockFile = () => join(dir, LOCK_FILE);

    it('holds our pid while open and is removed on close', async () => {
      const store = await open();
      expect(readFileSync(lockFile(), 'utf8').trim()).toBe(String(process.pid));
      await store.close();
      expect(existsSync(lockFile())).toBe(false);
    });

    it('makes a second open of the same dir fail with STORE_LOCKED naming the dir, until the first closes', async () => {
      const first = await open();
      const err = await rejection(LowdbStore.open(dir));
      expect(err.code).toBe('STORE_LOCKED');
      expect(err.message).toContain(dir);
      // The failed attempt did not disturb the holder's lock.
      expect(readFileSync(lockFile(), 'utf8').trim()).toBe(String(process.pid));
      await first.close();
      await expect(open()).resolves.toBeInstanceOf(LowdbStore);
    });

    it('refuses a dir whose lock is held by another live process', async () => {
      const holder: ChildProcess = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
      try {
        await mkdir(dir, { recursive: true });
        await writeFile(lockFile(), `${holder.pid}\n`);
        const err = await rejection(LowdbStore.open(dir));
        expect(err.code).toBe('STORE_LOCKED');
        expect(err.message).toContain(dir);
        expect(err.message).toContain(String(holder.pid));
        expect(readFileSync(lockFile(), 'utf8').trim()).toBe(String(holder.pid));
      } finally {
        holder.kill('SIGKILL');
        await once(holder, 'exit');
      }
      // The holder is dead now: its lock no longer blocks.
      await expect(open()).resolves.toBeInstanceOf(LowdbStore);
    });

    it('takes over a lock left by a dead process', async () => {
      await mkdir(dir, { recursive: true });
      await writeFile(lockFile(), `${await deadPid()}\n`);
      const store = await open();
      expect(readFileSync(lockFile(), 'utf8').trim()).toBe(String(process.pid));
      await store.put('users', 'u1', {});
    });

    it.each([
      ['garbage', 'not a pid'],
      ['empty', ''],
      ['pid 0 (would mean our process group)', '0'],
      ['a negative pid', '-1'],
    ])('takes over a lock file holding %s', async (_what, content) => {
      await mkdir(dir, { recursive: true });
      await writeFile(lockFile(), content);
      await open();
      expect(readFileSync(lockFile(), 'utf8').trim()).toBe(String(process.pid));
    });

    it('takes over a lock holding our own pid that this process does not hold (a previous incarnation)', async () => {
      await mkdir(dir, { recursive: true });
      await writeFile(lockFile(), `${process.pid}\n`);
      await expect(open()).resolves.toBeInstanceOf(LowdbStore);
    });

    it('on close, does not remove a lock file that no longer holds our pid', async () => {
      const store = await open();
      await writeFile(lockFile(), '12345\n');
      await store.close();
      expect(readFileSync(lockFile(), 'utf8')).toBe('12345\n');
    });
  });

  it('keeps every acknowledged write when the writing process is SIGKILLed', async () => {
    const child = spawn(
      process.execPath,
      ['--import', resolve(serverDir, 'register.mjs'), resolve(here, 'fixtures/store-writer.ts'), dir],
      { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = once(child, 'exit');

    let buffered = '';
    const acked: string[] = [];
    await new Promise<void>((done, fail) => {
      child.stdout!.on('data', (chunk: Buffer) => {
        buffered += chunk.toString();
        const lines = buffered.split('\n');
        buffered = lines.pop()!; // a partial line is not an acknowledgement (yet)
        acked.push(...lines.filter((line) => line.startsWith('ack-')));
        if (acked.length >= 300 && child.exitCode === null && !child.killed) {
          child.kill('SIGKILL');
          done();
        }
      });
      child.on('exit', (code, signal) => {
        if (signal !== 'SIGKILL') fail(new Error(`writer exited early (${code ?? signal}): ${stderr}`));
      });
    });
    const [, signal] = await exited;
    expect(signal).toBe('SIGKILL');
    expect(acked.length).toBeGreaterThanOrEqual(300);

    // The dead writer's lock does not block, and every acknowledged id is there.
    const store = await open();
    const missing: string[] = [];
    for (const id of acked) if ((await store.get('acks', id)) === undefined) missing.push(id);
    expect(missing).toEqual([]);
    expect(await store.count('acks')).toBeGreaterThanOrEqual(acked.length);
    expect((await readdir(dir)).filter((name) => name.endsWith('.tmp'))).toEqual([]);
  });
});
