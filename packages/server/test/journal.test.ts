/**
 * The embedded store's files: the journal (torn tails dropped, damage in the middle refused), compaction into the
 * snapshot's line layout while writes go on, and restores interrupted at each step.
 */
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { existsSync } from 'node:fs';
import { appendFile, mkdir, mkdtemp, readdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { BEFORE_RESTORE_SUFFIX } from '../src/store/backup.js';
import { DEFAULT_STORE_FILE, LowdbStore, readStoreFiles, RESTORING_SUFFIX, type LowdbStoreOptions } from '../src/store/lowdb-store.js';
import { rejection, syncGate } from './helpers.js';

describe('the journal and the snapshot', () => {
  let dir: string;
  let file: string;
  const journal = (n = 1) => `${file}.journal.${n}`;
  const opened: LowdbStore[] = [];
  const open = async (options?: LowdbStoreOptions) => {
    const store = await LowdbStore.open(dir, options);
    opened.push(store);
    return store;
  };
  const reopen = async (store: LowdbStore, options?: LowdbStoreOptions) => {
    await store.close();
    return open(options);
  };
  const plain = async () => {
    const data = (await readStoreFiles(file)) ?? new Map();
    return Object.fromEntries([...data].map(([name, records]) => [name, Object.fromEntries(records)]));
  };

  beforeEach(async () => {
    dir = join(await mkdtemp(join(tmpdir(), 'greenroom-journal-')), 'data');
    file = join(dir, DEFAULT_STORE_FILE);
  });
  afterEach(async () => {
    for (const store of opened.splice(0)) await store.close();
    await rm(dirname(dir), { recursive: true, force: true });
  });

  describe('a flush', () => {
    it('appends one line per batch to the journal and leaves the snapshot alone', async () => {
      const store = await open();
      const snapshot = await readFile(file);
      await store.write([
        { op: 'put', collection: 'users', id: 'u1', value: { v: 1 } },
        { op: 'delete', collection: 'users', id: 'gone' },
      ]);
      await store.put('users', 'u2', { v: 2 });
      expect(await readFile(file)).toEqual(snapshot);
      const lines = (await readFile(journal(), 'utf8')).split('\n');
      expect(lines).toHaveLength(3); // two lines, and the empty string after the last newline
      expect(lines[0]).toMatch(/^[0-9a-f]{8} \[\["p","users","u1",\{"v":1\}\],\["d","users","gone"\]\]$/);
      expect(lines[1]).toMatch(/^[0-9a-f]{8} \[\["p","users","u2",\{"v":2\}\]\]$/);
    });

    it('costs the change, not the store: the bytes a put appends do not grow with the store', async () => {
      const store = await open();
      const appended = async () => {
        const before = (await stat(journal())).size;
        await store.put('sessions', 'probe', { v: 1 });
        return (await stat(journal())).size - before;
      };
      const small = await appended();
      await store.write(Array.from({ length: 5000 }, (_, i) => ({ op: 'put' as const, collection: 'sessions', id: `s${i}`, value: { i } })));
      expect(await appended()).toBe(small);
    });
  });

  describe('a torn tail', () => {
    async function storeWithTwoBatches() {
      const store = await open();
      await store.write([
        { op: 'put', collection: 'users', id: 'u1', value: { v: 1 } },
        { op: 'put', collection: 'users', id: 'u2', value: { v: 2 } },
      ]);
      await store.write([
        { op: 'put', collection: 'users', id: 'u3', value: { v: 3 } },
        { op: 'delete', collection: 'users', id: 'u1' },
      ]);
      await store.close();
      const text = await readFile(journal(), 'utf8');
      return { firstLine: text.indexOf('\n') + 1, size: Buffer.byteLength(text) };
    }

    it('cut mid-record: the store opens without the torn batch (none of it), and later writes persist', async () => {
      const { firstLine, size } = await storeWithTwoBatches();
      await truncate(journal(), firstLine + Math.floor((size - firstLine) / 2));
      const store = await open();
      expect(await store.get('users', 'u1')).toEqual({ v: 1 });
      expect(await store.get('users', 'u3')).toBeUndefined();
      expect(await store.count('users')).toBe(2);
      expect((await stat(journal())).size).toBe(firstLine);
      await store.put('users', 'u4', { v: 4 });
      const again = await reopen(store);
      expect(await again.scan('users')).toEqual({
        items: [
          { id: 'u1', value: { v: 1 } },
          { id: 'u2', value: { v: 2 } },
          { id: 'u4', value: { v: 4 } },
        ],
        next: null,
      });
    });

    it.each([
      ['garbage with newlines', 'garbage\nmore garbage\n'],
      ['zeros', '\0'.repeat(4096)],
      ['a line whose checksum is wrong', '00000000 [["p","users","evil",{}]]\n'],
      ['a record missing its newline', 'deadbeef [["p","us'],
    ])('%s appended: dropped at open, and the store goes on', async (_what, tail) => {
      const { size } = await storeWithTwoBatches();
      await appendFile(journal(), tail);
      const store = await open();
      expect((await stat(journal())).size).toBe(size);
      expect(await plain()).toEqual({ users: { u2: { v: 2 }, u3: { v: 3 } } });
      await store.put('users', 'u5', {});
      const again = await reopen(store);
      expect(await again.get('users', 'u5')).toEqual({});
      expect(await again.get('users', 'evil')).toBeUndefined();
    });
  });

  describe('a damaged record followed by whole ones', () => {
    it('stops start-up with STORE_CORRUPT naming the journal and the byte offset, and touches no file', async () => {
      const store = await open();
      await store.put('users', 'u1', { v: 1 });
      await store.put('users', 'u2', { v: 2 });
      await store.put('users', 'u3', { v: 3 });
      await store.close();
      const bytes = await readFile(journal());
      const second = bytes.indexOf('\n') + 1;
      bytes[second + 20] = bytes[second + 20]! ^ 0x01; // one flipped bit in the second of three records
      await writeFile(journal(), bytes);
      const snapshot = await readFile(file);

      const err = await rejection(LowdbStore.open(dir));
      expect(err.code).toBe('STORE_CORRUPT');
      expect(err.message).toContain(journal());
      expect(err.message).toContain(`byte offset ${second}`);
      expect(await readFile(journal())).toEqual(bytes);
      expect(await readFile(file)).toEqual(snapshot);
      expect((await readdir(dir)).sort()).toEqual([DEFAULT_STORE_FILE, `${DEFAULT_STORE_FILE}.journal.1`]);
    });
  });

  describe('compaction', () => {
    it('writes the snapshot in the line layout, one record a line, and drops the old journal', async () => {
      const store = await open({ compactAfterBytes: 1 });
      await store.write([
        { op: 'put', collection: 'users', id: 'u1', value: { name: 'ann' } },
        { op: 'put', collection: 'users', id: 'line\nbreak', value: { s: 'a\nb' } },
        { op: 'put', collection: 'empty', id: 'x', value: {} },
        { op: 'delete', collection: 'empty', id: 'x' },
        { op: 'put', collection: 'sessions', id: 's1', value: { uid: 'u1' } },
      ]);
      await store.close();
      expect(store.compactionCount).toBeGreaterThanOrEqual(1);
      expect(await readFile(file, 'utf8')).toBe(
        [
          '{',
          '"users":{',
          '"u1":{"name":"ann"}',
          ',"line\\nbreak":{"s":"a\\nb"}',
          '}',
          ',"empty":{',
          '}',
          ',"sessions":{',
          '"s1":{"uid":"u1"}',
          '}',
          '}',
          '',
        ].join('\n'),
      );
      const journals = (await readdir(dir)).filter((n) => n.includes('.journal.'));
      expect(journals).toEqual([`${DEFAULT_STORE_FILE}.journal.2`]);
      expect((await stat(join(dir, journals[0]!))).size).toBe(0);
    });

    it('goes on taking writes while the snapshot is written, and keeps every one of them', async () => {
      const snapshotSync = syncGate('snapshot');
      const store = await open({ compactAfterBytes: 2000, faults: { beforeSync: snapshotSync.beforeSync } });
      await store.write(Array.from({ length: 50 }, (_, i) => ({ op: 'put' as const, collection: 'c', id: `k${i}`, value: { i, v: 0 } })));
      snapshotSync.hold();
      // Past the bound: the next flush boundary starts a compaction, held at its snapshot's fsync.
      await store.put('c', 'k0', { i: 0, v: 1, pad: 'x'.repeat(2000) });
      await snapshotSync.reached();
      const events: string[] = [];
      // Writes during the compaction: new records, changed ones, deleted ones. They resolve while it is held.
      await store.write([
        { op: 'put', collection: 'c', id: 'k1', value: { i: 1, v: 2 } },
        { op: 'delete', collection: 'c', id: 'k2' },
        { op: 'put', collection: 'c', id: 'new', value: { v: 2 } },
        { op: 'put', collection: 'other', id: 'o', value: {} },
      ]);
      events.push('written during compaction');
      expect(store.compactionCount).toBe(0);
      snapshotSync.release();
      await store.close();
      events.push(`closed after ${store.compactionCount} compaction`);
      expect(events).toEqual(['written during compaction', 'closed after 1 compaction']);

      // The snapshot is the state at the boundary: the writes made during compaction are in the new journal only.
      const snapshot = JSON.parse(await readFile(file, 'utf8')) as Record<string, Record<string, { v: number }>>;
      expect(snapshot.c!.k0!.v).toBe(1);
      expect(snapshot.c!.k1!.v).toBe(0);
      expect(snapshot.c!.k2).toBeDefined();
      expect(snapshot.c!.new).toBeUndefined();
      expect(snapshot.other).toBeUndefined();
      const again = await open();
      expect(await again.get('c', 'k1')).toEqual({ i: 1, v: 2 });
      expect(await again.get('c', 'k2')).toBeUndefined();
      expect(await again.get('c', 'new')).toEqual({ v: 2 });
      expect(await again.get('other', 'o')).toEqual({});
      expect(await again.count('c')).toBe(50);
    });

    it('replaying a journal the snapshot already holds changes nothing (a crash between rename and delete)', async () => {
      const store = await open();
      await store.put('c', 'a', { v: 1 });
      await store.put('c', 'b', { v: 1 });
      await store.delete('c', 'a');
      await store.put('c', 'b', { v: 2 });
      await store.close();
      const oldJournal = await readFile(journal());
      // Compact on open, then put the old journal back as if its removal had not reached the disk.
      const compacted = await open({ compactAfterBytes: 1 });
      await compacted.close();
      expect(existsSync(journal())).toBe(false);
      await writeFile(journal(), oldJournal);
      const again = await open();
      expect(await again.scan('c')).toEqual({ items: [{ id: 'b', value: { v: 2 } }], next: null });
    });
  });

  describe('reading snapshots', () => {
    it.each([
      ['one line (the older format)', '{"users":{"u1":{"v":1},"__proto__":{"odd":true}},"meta":{}}'],
      ['pretty-printed', '{\n  "users": {\n    "u1": {\n      "v": 1\n    },\n    "__proto__": {\n      "odd": true\n    }\n  },\n  "meta": {}\n}\n'],
      ['the line layout', '{\n"users":{\n"u1":{"v":1}\n,"__proto__":{"odd":true}\n}\n,"meta":{\n}\n}\n'],
    ])('reads a snapshot written %s', async (_what, text) => {
      await mkdir(dir, { recursive: true });
      await writeFile(file, text);
      const store = await open();
      expect(await store.get('users', 'u1')).toEqual({ v: 1 });
      expect(await store.get('users', '__proto__')).toEqual({ odd: true });
      expect(await store.count('users')).toBe(2);
      expect(await store.count('meta')).toBe(0);
    });

    it('refuses a snapshot in the line layout with a damaged line, naming the file, and leaves it alone', async () => {
      await mkdir(dir, { recursive: true });
      const text = '{\n"users":{\n"u1":{"v":1}\n,"u2":{"v":\n}\n}\n';
      await writeFile(file, text);
      const err = await rejection(LowdbStore.open(dir));
      expect(err.code).toBe('STORE_CORRUPT');
      expect(err.message).toContain(file);
      expect(await readFile(file, 'utf8')).toBe(text);
    });
  });

  describe('a restore interrupted at each step', () => {
    /** An old store (snapshot and a journal) and a backup holding other data. */
    async function oldStoreAndBackup() {
      const store = await open({ compactAfterBytes: 1 });
      await store.put('users', 'old-snapshot', {});
      await store.close();
      const more = await open();
      await more.put('users', 'old-journal', {});
      await more.close();
      const backup = join(dirname(dir), 'backup.json');
      await writeFile(backup, '{"users":{"new":{"v":1}}}');
      return backup;
    }
    const journals = async () => (await readdir(dir)).filter((n) => n.includes('.journal.'));
    const OLD = { users: { 'old-snapshot': {}, 'old-journal': {} } };
    const NEW = { users: { new: { v: 1 } } };

    it('before the backup is whole under its .restoring name: the old store', async () => {
      const backup = await oldStoreAndBackup();
      expect((await journals()).length).toBeGreaterThan(0);
      // Step 0: .before-restore written; the backup's temp file half written.
      await writeFile(file + BEFORE_RESTORE_SUFFIX, JSON.stringify(OLD));
      await writeFile(join(dir, `.${DEFAULT_STORE_FILE}${RESTORING_SUFFIX}.123.abc.tmp`), (await readFile(backup)).subarray(0, 10));
      const store = await open();
      expect(await plain()).toEqual(OLD);
      expect(await store.count('users')).toBe(2);
      expect((await readdir(dir)).filter((n) => n.endsWith('.tmp'))).toEqual([]);
    });

    it('with .restoring whole and the old journals still there: the new store, the journals never replayed', async () => {
      const backup = await oldStoreAndBackup();
      await writeFile(file + RESTORING_SUFFIX, await readFile(backup));
      const store = await open();
      expect(await store.scan('users')).toEqual({ items: [{ id: 'new', value: { v: 1 } }], next: null });
      expect(existsSync(file + RESTORING_SUFFIX)).toBe(false);
      expect(await readFile(file)).toEqual(await readFile(backup));
    });

    it('with .restoring whole and the journals removed: the new store', async () => {
      const backup = await oldStoreAndBackup();
      await writeFile(file + RESTORING_SUFFIX, await readFile(backup));
      for (const name of await journals()) await rm(join(dir, name));
      await open();
      expect(await plain()).toEqual(NEW);
    });

    it('renamed into place: the new store', async () => {
      const backup = await oldStoreAndBackup();
      for (const name of await journals()) await rm(join(dir, name));
      await writeFile(file, await readFile(backup));
      await open();
      expect(await plain()).toEqual(NEW);
    });

    it('a whole restore keeps the old store, snapshot and journal together, as one document', async () => {
      const backup = await oldStoreAndBackup();
      const result = await LowdbStore.restore(dir, backup);
      expect(result.previous).toBe(file + BEFORE_RESTORE_SUFFIX);
      expect(JSON.parse(await readFile(file + BEFORE_RESTORE_SUFFIX, 'utf8'))).toEqual(OLD);
      expect(await journals()).toEqual([]);
      await open();
      expect(await plain()).toEqual(NEW);
    });
  });
});
