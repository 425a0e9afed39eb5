import { mkdir, open, readFile, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Low } from 'lowdb';
import { StoreError } from '../errors.js';
import { BackupError, BEFORE_RESTORE_SUFFIX, backupWriteError, checkBackupTarget } from './backup.js';
import { copyAll, DurableFile, parseStoreDocument, writeAll, writeFileDurably, type StoreDocument } from './durable-file.js';
import { DataDirLock } from './lock.js';
import { FieldIndex } from './field-index.js';
import { deepFreeze } from './memory-store.js';
import { pageOf, SortedIds } from './scan.js';
import type { BackupOptions, BackupResult, Collection, ScanOptions, ScanPage, StagedStore, StoredRecord, WriteOp } from './store.js';

/** The store file's name in the data dir, unless `open` is told otherwise. */
export const DEFAULT_STORE_FILE = 'greenroom.json';

/**
 * Under load (the last flush carried at least BUSY_BATCH writes) the next flush waits GATHER_MS first: the writers
 * the last flush answered are about to write again, and this lets them share one fsync instead of two. Measured on
 * the refresh benchmark (64 in flight, an 18 MB store): 26 → 41 writes per flush, 805 → 1,071 refreshes/s. A quiet
 * store never waits.
 */
const BUSY_BATCH = 8;
const GATHER_MS = 6;

interface Waiters {
  /** Writes that joined this flush. */
  count: number;
  promise: Promise<void>;
  resolve: () => void;
  reject: (err: unknown) => void;
  /** The records and collections whose latest write this flush carries (forgotten once it is done). */
  records: Array<[Collection, string]>;
  collections: Set<Collection>;
}

/** Test hooks: each is awaited at its point, so a test can hold the store there. */
export interface StoreFaults {
  /** Awaited just before each fsync of the store's files. */
  beforeSync?: (what: 'journal' | 'snapshot') => Promise<void>;
}

export interface LowdbStoreOptions {
  /** The store file's name in the data dir (DEFAULT_STORE_FILE). */
  file?: string;
  faults?: StoreFaults;
}

/** What `LowdbStore.restore` did. */
export interface RestoreResult {
  /** The store file now holding the backup. */
  store: string;
  bytes: number;
  /** Where the store it replaced is kept, or null when the data dir had no store file. */
  previous: string | null;
}

function waiters(): Waiters {
  let resolve!: () => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<void>((res, rej) => ((resolve = res), (reject = rej)));
  return { count: 0, promise, resolve, reject, records: [], collections: new Set() };
}

/**
 * The embedded store: one JSON file in the data dir, under the dir's lock, rewritten whole on every flush.
 *
 * Group commit: a write changes the in-memory document at once (reads see it) and waits for a flush. Writes made
 * while a flush runs share the next one, and the first flush starts a microtask late so writes issued together
 * share it: 100 concurrent puts cost 1 or 2 flushes. A caller resolves only after a flush that serialized its data.
 *
 * Failed flush (fail-stop): the in-memory document then holds writes whose callers were told STORE_WRITE_FAILED,
 * so it is no longer a view of what was acknowledged, and undoing them would also undo later writes built on them.
 * So the store stops: the writes of that flush and of any later one reject with STORE_WRITE_FAILED, reads and ping
 * reject too (/readyz goes red), and a restart reloads the disk. The disk holds the last successful flush, or, if
 * only the directory fsync failed, possibly the failed one: a rejected write's outcome is unknown, not "absent".
 */
export class LowdbStore implements StagedStore {
  private pending: Waiters | null = null;
  /** The writes of the flush under way (serialized, not yet renamed into place). */
  private flushing: Waiters | null = null;
  private draining: Promise<void> | null = null;
  private flushes = 0;
  /** Writes carried by the previous flush. */
  private lastBatch = 0;
  private failure: StoreError | null = null;
  private closed = false;
  private readonly index = new FieldIndex();
  private readonly sortedIds = new SortedIds();
  /** Records per collection, kept by every write: a count never walks a collection. */
  private readonly counts = new Map<Collection, number>();
  /** Per collection, per id: the flush (waiting or under way) that carries the record's latest write. */
  private readonly unflushedRecords = new Map<Collection, Map<string, Waiters>>();
  /** Per collection: the flush that carries the collection's latest write. */
  private readonly unflushedCollections = new Map<Collection, Waiters>();

  readonly now: StagedStore['now'] = {
    get: <T extends StoredRecord>(collection: Collection, id: string): T | undefined => {
      this.assertUsable();
      return this.db.data[collection]?.[id] as T | undefined;
    },
    scan: <T extends StoredRecord>(collection: Collection, options?: ScanOptions): ScanPage<T> => {
      this.assertUsable();
      const records = this.db.data[collection];
      if (!records) return pageOf([], () => undefined as never, options);
      // The collection's ids sorted once, then kept sorted by writes: no scan sorts the collection (about 50 ms at 100,000).
      return pageOf(this.sortedIds.get(collection, () => Object.keys(records)), (id) => records[id] as T, options);
    },
    count: (collection: Collection): number => {
      this.assertUsable();
      return this.counts.get(collection) ?? 0;
    },
    findBy: <T extends StoredRecord>(collection: Collection, field: string, value: string): Array<{ id: string; value: T }> => {
      this.assertUsable();
      const records = this.db.data[collection] ?? {};
      return this.index.find(collection, field, value, () => Object.entries(records)).map((id) => ({ id, value: records[id] as T }));
    },
  };

  private constructor(
    private readonly db: Low<StoreDocument>,
    private readonly file: DurableFile,
    private readonly lock: DataDirLock,
  ) {
    for (const [name, records] of Object.entries(db.data)) this.counts.set(name, Object.keys(records).length);
  }

  /** Opens (creating with mode 0700 if needed) the data dir, takes its lock, and reads the store file. */
  static async open(dir: string, options: LowdbStoreOptions = {}): Promise<LowdbStore> {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const lock = await DataDirLock.acquire(dir);
    try {
      const beforeSync = options.faults?.beforeSync;
      const file = new DurableFile(join(dir, options.file ?? DEFAULT_STORE_FILE), beforeSync && (() => beforeSync('snapshot')));
      await file.removeStaleTempFiles();
      // Not JSONFilePreset: under NODE_ENV=test it silently keeps the data in memory.
      const db = new Low<StoreDocument>(file, Object.create(null));
      await db.read();
      // Records read from the file are as immutable as those put later.
      for (const records of Object.values(db.data)) for (const record of Object.values(records)) deepFreeze(record);
      return new LowdbStore(db, file, lock);
    } catch (err) {
      await lock.release();
      throw err;
    }
  }

  /**
   * Puts a backup in place of the store file of a data dir, under the dir's lock (so never while a server or a
   * command has the store open: STORE_LOCKED, naming the dir). The backup is checked first as the store checks its
   * file at open; one that fails is BACKUP_INVALID and nothing in the data dir is touched. Then the store file is
   * copied to `<store file>.before-restore` (replacing an older one) and the backup takes its place, both written
   * durably: a crash at any point leaves the old store or the new one, never a mix, and the old one stays at hand.
   */
  static async restore(dir: string, backupFile: string, options: { file?: string } = {}): Promise<RestoreResult> {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const lock = await DataDirLock.acquire(dir);
    try {
      let bytes: Buffer;
      try {
        bytes = await readFile(backupFile);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code ?? String(err);
        throw new BackupError('BACKUP_UNREADABLE', `cannot read the backup ${backupFile}: ${code}; the store was left untouched`, { cause: err });
      }
      const parsed = parseStoreDocument(bytes.toString('utf8'));
      if (!parsed.ok) {
        throw new BackupError('BACKUP_INVALID', `${backupFile} is not a Greenroom store backup: it ${parsed.problem}; the store was left untouched`, {
          cause: parsed.cause,
        });
      }
      const storeFile = new DurableFile(join(dir, options.file ?? DEFAULT_STORE_FILE));
      await storeFile.removeStaleTempFiles();
      const previousPath = `${storeFile.path}${BEFORE_RESTORE_SUFFIX}`;
      let previous: string | null = null;
      const current = await openIfExists(storeFile.path);
      if (current) {
        try {
          await writeFileDurably(previousPath, (target) => copyAll(current, target), { overwrite: true });
        } catch (err) {
          throw new BackupError('BACKUP_WRITE_FAILED', `cannot keep the current store as ${previousPath}: ${errCode(err)}; the store was left untouched`, { cause: err });
        } finally {
          await current.close();
        }
        previous = previousPath;
      }
      try {
        await writeFileDurably(storeFile.path, (target) => writeAll(target, [bytes]), { overwrite: true });
      } catch (err) {
        throw new BackupError('BACKUP_WRITE_FAILED', `cannot write the store file ${storeFile.path}: ${errCode(err)}; it holds the store as it was`, { cause: err });
      }
      return { store: storeFile.path, bytes: bytes.length, previous };
    } finally {
      await lock.release();
    }
  }

  /**
   * Copies the store file as it is on disk once every write made before the call is there. A write is acknowledged
   * only after its flush renamed the new file into place, so the file holds every acknowledged write; writes applied
   * in memory but not yet flushed (not yet acknowledged either) are waited for all the same, so the backup holds
   * everything written before the call. The file is only ever replaced whole (rename), never changed in place, so
   * what one open descriptor reads is one whole flush: flushes that rename a newer file meanwhile do not touch it.
   */
  async backup(target: string, options: BackupOptions = {}): Promise<BackupResult> {
    this.assertUsable();
    await checkBackupTarget(target, dirname(this.file.path));
    // The flush that will carry what is in memory now: the one waiting to start, else the one under way.
    const unflushed = this.pending ?? this.flushing;
    if (unflushed) await unflushed.promise; // rejects (STORE_WRITE_FAILED) if the store has failed
    const source = await openIfExists(this.file.path);
    try {
      // No file: nothing was ever flushed, so nothing was written (a later write is not ours to wait for).
      const fill = source ? (t: FileHandle) => copyAll(source, t) : (t: FileHandle) => writeAll(t, [Buffer.from('{}')]);
      const bytes = await writeFileDurably(target, fill, { overwrite: options.overwrite === true });
      return { file: target, bytes };
    } catch (err) {
      throw backupWriteError(target, err);
    } finally {
      await source?.close();
    }
  }

  /** How many flushes have completed (for tests of group commit). */
  get flushCount(): number {
    return this.flushes;
  }

  /** Reads at once; a record whose latest write is still flushing is answered once that flush is done. */
  async get<T extends StoredRecord>(collection: Collection, id: string): Promise<T | undefined> {
    const value = this.now.get<T>(collection, id);
    await this.unflushed(collection, id);
    return value;
  }

  put(collection: Collection, id: string, value: StoredRecord): Promise<void> {
    return this.write([{ op: 'put', collection, id, value }]);
  }

  delete(collection: Collection, id: string): Promise<void> {
    return this.write([{ op: 'delete', collection, id }]);
  }

  /** The flush's own promise (not a wrapper), so a caller's `then` runs before a read of the same write answers. */
  write(ops: readonly WriteOp[]): Promise<void> {
    try {
      return this.stage(ops);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  stage(ops: readonly WriteOp[]): Promise<void> {
    this.assertUsable();
    if (ops.length === 0) return Promise.resolve();
    // A JSON round trip makes memory hold exactly what the file will (no undefined, Dates as strings), and it runs
    // for every value before anything changes: a value that cannot be serialized fails the batch with nothing applied.
    const values = ops.map((op) => (op.op === 'put' ? toStoredValue(op.collection, op.id, op.value) : undefined));
    const batch = (this.pending ??= waiters());
    const doc = this.db.data;
    ops.forEach((op, i) => {
      // Null-prototype collections: an id like `__proto__` is an ordinary key.
      const records = (doc[op.collection] ??= Object.create(null) as Record<string, StoredRecord>);
      const previous = records[op.id];
      this.index.update(op.collection, op.id, previous, values[i]);
      this.sortedIds.update(op.collection, op.id, previous !== undefined, op.op === 'put');
      if (op.op === 'put') records[op.id] = values[i]!;
      else delete records[op.id];
      const delta = (op.op === 'put' ? 1 : 0) - (previous !== undefined ? 1 : 0);
      if (delta !== 0) this.counts.set(op.collection, (this.counts.get(op.collection) ?? 0) + delta);
      let ids = this.unflushedRecords.get(op.collection);
      if (!ids) this.unflushedRecords.set(op.collection, (ids = new Map()));
      ids.set(op.id, batch);
      batch.records.push([op.collection, op.id]);
      this.unflushedCollections.set(op.collection, batch);
      batch.collections.add(op.collection);
    });
    // Applied synchronously, so any flush sees all of the batch or none of it: one file rename makes it atomic on disk.
    return this.commit(batch);
  }

  unflushed(collection: Collection, id?: string): Promise<void> | undefined {
    const batch = id === undefined ? this.unflushedCollections.get(collection) : this.unflushedRecords.get(collection)?.get(id);
    return batch?.promise;
  }

  /** Reads at once, then waits for the flush of the collection's latest write, if it is still under way. */
  async scan<T extends StoredRecord>(collection: Collection, options?: ScanOptions): Promise<ScanPage<T>> {
    const page = this.now.scan<T>(collection, options);
    await this.unflushed(collection);
    return page;
  }

  async count(collection: Collection): Promise<number> {
    const count = this.now.count(collection);
    await this.unflushed(collection);
    return count;
  }

  async findBy<T extends StoredRecord>(collection: Collection, field: string, value: string): Promise<Array<{ id: string; value: T }>> {
    const found = this.now.findBy<T>(collection, field, value);
    await this.unflushed(collection);
    return found;
  }

  async ping(): Promise<void> {
    this.assertUsable();
  }

  /** Lets pending flushes finish (their callers still get their answers), then releases the lock. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.draining;
    await this.lock.release();
  }

  /** Joins the next flush, starting the flush loop if it is idle. */
  private commit(next: Waiters): Promise<void> {
    next.count += 1;
    // Started a microtask late: puts issued in the same tick all land in the first flush.
    this.draining ??= Promise.resolve().then(() => this.drain());
    return next.promise;
  }

  /** Flushes until no writer waits. Only this loop writes the file, so flushes never overlap. */
  private async drain(): Promise<void> {
    while (this.pending) {
      if (this.lastBatch >= BUSY_BATCH) await new Promise((r) => setTimeout(r, GATHER_MS));
      const batch = this.pending;
      this.pending = null; // writes from here on wait for the next flush
      this.lastBatch = batch.count;
      if (this.failure) {
        batch.reject(this.failure);
        this.forget(batch);
        continue;
      }
      this.flushing = batch;
      try {
        // DurableFile serializes the document before its first await, i.e. now: the snapshot holds every write
        // that joined `batch` (and maybe newer ones, which is harmless: they are durable a flush early).
        await this.db.write();
        this.flushes++;
        batch.resolve();
      } catch (err) {
        this.failure = new StoreError('STORE_WRITE_FAILED', `writing the store file failed: ${String(err)}`, { cause: err });
        batch.reject(this.failure);
      } finally {
        this.flushing = null;
        this.forget(batch);
      }
    }
    this.draining = null;
  }

  /** Drops a finished flush from the unflushed maps, where it still is the latest write's flush. */
  private forget(batch: Waiters): void {
    for (const [collection, id] of batch.records) {
      const ids = this.unflushedRecords.get(collection);
      if (ids?.get(id) === batch) ids.delete(id);
      if (ids?.size === 0) this.unflushedRecords.delete(collection);
    }
    for (const collection of batch.collections) {
      if (this.unflushedCollections.get(collection) === batch) this.unflushedCollections.delete(collection);
    }
  }

  private assertUsable(): void {
    if (this.closed) throw new StoreError('STORE_CLOSED', 'the store is closed');
    if (this.failure) throw this.failure;
  }
}

/**
 * A frozen copy of a value to store, exactly what its JSON says. A value JSON cannot hold (a BigInt, a cycle, a getter
 * that throws) is STORE_INVALID_OPTION, a bug of the caller.
 */
function toStoredValue(collection: Collection, id: string, value: StoredRecord): StoredRecord {
  let json: string | undefined;
  try {
    json = JSON.stringify(value);
  } catch (err) {
    throw new StoreError('STORE_INVALID_OPTION', `the value put at ${collection}/${id} is not JSON: ${(err as Error).message}`, { cause: err });
  }
  const parsed: unknown = json === undefined ? undefined : JSON.parse(json);
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new StoreError('STORE_INVALID_OPTION', `the value put at ${collection}/${id} is not a JSON object`);
  }
  return deepFreeze(parsed as StoredRecord);
}

async function openIfExists(path: string): Promise<FileHandle | null> {
  try {
    return await open(path, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new StoreError('STORE_UNREADABLE', `cannot read the store file ${path}: ${String(err)}`, { cause: err });
  }
}

function errCode(err: unknown): string {
  return (err as NodeJS.ErrnoException | undefined)?.code ?? String(err);
}
