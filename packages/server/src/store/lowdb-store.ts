import { mkdir, open, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Low } from 'lowdb';
import { StoreError } from '../errors.js';
import { BackupError, BEFORE_RESTORE_SUFFIX, backupWriteError, checkBackupTarget } from './backup.js';
import { copyAll, removeStaleTempFiles, syncDir, writeFileDurably } from './durable-file.js';
import { encodeDelete, encodePut, Journal, journalLine, listJournals, replayJournals, truncateTorn, type JournalOp } from './journal.js';
import { DataDirLock } from './lock.js';
import { FieldIndex } from './field-index.js';
import { toStoredValue } from './stored-value.js';
import { deepFreeze } from './memory-store.js';
import { pageOf, SortedIds } from './scan.js';
import { checkSnapshot, readSnapshot, SnapshotFile, wholeSource, writeSnapshot, type SnapshotSource, type StoreData } from './snapshot.js';
import type { BackupOptions, BackupResult, Collection, ScanOptions, ScanPage, StagedStore, StoredRecord, WriteOp } from './store.js';

/** The store file's name in the data dir, unless `open` is told otherwise. */
export const DEFAULT_STORE_FILE = 'greenroom.json';

/** A backup being put in place: once a file of this name (after the store file's) exists, the restore is decided. */
export const RESTORING_SUFFIX = '.restoring';

/**
 * Under load (the last flush carried at least BUSY_BATCH writes) the next flush waits GATHER_MS first: the writers
 * the last flush answered are about to write again, and this lets them share one fsync instead of two. Measured on
 * the refresh benchmark (64 in flight, an 18 MB store): 26 → 41 writes per flush, 805 → 1,071 refreshes/s. A quiet
 * store never waits.
 */
const BUSY_BATCH = 8;
const GATHER_MS = 6;

/** The journal is compacted into a new snapshot once it is larger than this and than the snapshot. */
const COMPACT_AFTER_BYTES = 64 << 20;

/** One flush: the writes that joined it, and who waits for it. */
interface Flush {
  /** Writes that joined this flush. */
  count: number;
  /** One journal line per batch of writes. */
  lines: Buffer[];
  promise: Promise<void>;
  resolve: () => void;
  reject: (err: unknown) => void;
  /** The records and collections whose latest write this flush carries (forgotten once it is done). */
  records: Array<[Collection, string]>;
  collections: Set<Collection>;
}

function newFlush(): Flush {
  let resolve!: () => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<void>((res, rej) => ((resolve = res), (reject = rej)));
  return { count: 0, lines: [], promise, resolve, reject, records: [], collections: new Set() };
}

/** Test hooks: each is awaited at its point, so a test can hold the store there. */
export interface StoreFaults {
  /** Awaited just before each fsync of the journal (each flush) and of a new snapshot (each compaction). */
  beforeSync?: (what: 'journal' | 'snapshot') => Promise<void>;
}

export interface LowdbStoreOptions {
  /** The store file's name in the data dir (DEFAULT_STORE_FILE); its journals are named after it. */
  file?: string;
  /** Compact once the journal holds more than this many bytes (default: the larger of 64 MiB and the snapshot). */
  compactAfterBytes?: number;
  faults?: StoreFaults;
}

/** What `LowdbStore.restore` did. */
export interface RestoreResult {
  /** The store file now holding the backup. */
  store: string;
  bytes: number;
  /** Where the store it replaced is kept, or null when the data dir had no store. */
  previous: string | null;
}

/**
 * The store as it was at one moment, read while writes go on: records are frozen and replaced, never changed, so the
 * ids each collection had at the cut, plus the value each written record had before its first write after the
 * cut, give that moment's state exactly. A write calls `noteWrite` before it changes a record.
 */
class Cut implements SnapshotSource {
  private readonly ids: Array<[string, string[]]>;
  private readonly before = new Map<string, Map<string, StoredRecord | undefined>>();

  constructor(private readonly data: StoreData) {
    // Map keys list fast (about 20 ms for 1,000,000); the records are read later, a chunk at a time.
    this.ids = [...data].map(([name, records]) => [name, [...records.keys()]]);
  }

  noteWrite(collection: string, id: string, previous: StoredRecord | undefined): void {
    let before = this.before.get(collection);
    if (!before) this.before.set(collection, (before = new Map()));
    if (!before.has(id)) before.set(id, previous);
  }

  *collections() {
    for (const [name, ids] of this.ids) {
      // A collection is never removed from the data once there, so the live one is found.
      const live = this.data.get(name)!;
      const before = this.before.get(name);
      yield { name, ids, value: (id: string) => (before?.has(id) ? before.get(id) : live.get(id)) };
    }
  }
}

/**
 * The embedded store: lowdb's document in memory, and on disk a snapshot of it (snapshot.ts) plus a journal of the
 * writes since (journal.ts), both in the data dir, under the dir's lock.
 *
 * Group commit: a write changes memory at once (the `now` reads see it) and waits for a flush. Writes made while a
 * flush runs share the next one, and the first flush starts a microtask late so writes issued together share it:
 * 100 concurrent puts cost 1 or 2 flushes. A flush appends the writes' journal lines and fdatasyncs the journal;
 * a caller resolves only after that. The store's own reads (`get`, `scan`, ...) of a write still flushing answer
 * once it is durable, so nothing they show can be taken back by a crash.
 *
 * Compaction, off the request path: once the journal outgrows its bound, the state at one flush boundary is written
 * as a new snapshot, a chunk at a time, while writes go on into a new journal; then the old journal is dropped.
 * Start-up loads the snapshot and replays the journals (see `compact` for why every crash point reads back right).
 *
 * Failed flush (fail-stop): memory then holds writes whose callers were told STORE_WRITE_FAILED, so it is no longer
 * a view of what was acknowledged, and undoing them would also undo later writes built on them. So the store stops:
 * the writes of that flush and of any later one reject with STORE_WRITE_FAILED, reads and ping reject too (/readyz
 * goes red), and a restart reloads the disk. A rejected write's outcome is unknown, not "absent".
 */
export class LowdbStore implements StagedStore {
  private pending: Flush | null = null;
  /** The flush under way. */
  private flushing: Flush | null = null;
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
  private readonly unflushedRecords = new Map<Collection, Map<string, Flush>>();
  /** Per collection: the flush that carries the collection's latest write. */
  private readonly unflushedCollections = new Map<Collection, Flush>();
  /** Point-in-time views being written (a compaction, backups). */
  private readonly cuts = new Set<Cut>();
  /** The journal flushes go to from the next one on, while it is being created (a compaction started). */
  private nextJournal: Promise<Journal> | null = null;
  private compaction: Promise<void> | null = null;
  /** The journal is past its bound: the next flush boundary starts a compaction. */
  private compactWanted = false;
  private compactions = 0;

  readonly now: StagedStore['now'] = {
    get: <T extends StoredRecord>(collection: Collection, id: string): T | undefined => {
      this.assertUsable();
      return this.data.get(collection)?.get(id) as T | undefined;
    },
    scan: <T extends StoredRecord>(collection: Collection, options?: ScanOptions): ScanPage<T> => {
      this.assertUsable();
      const records = this.data.get(collection);
      if (!records) return pageOf([], () => undefined as never, options);
      // The collection's ids sorted once, then kept sorted by writes: no scan sorts the collection (about 50 ms at 100,000).
      return pageOf(this.sortedIds.get(collection, () => records.keys()), (id) => records.get(id) as T, options);
    },
    count: (collection: Collection): number => {
      this.assertUsable();
      return this.counts.get(collection) ?? 0;
    },
    findBy: <T extends StoredRecord>(collection: Collection, field: string, value: string): Array<{ id: string; value: T }> => {
      this.assertUsable();
      const records = this.data.get(collection) ?? new Map<string, StoredRecord>();
      return this.index.find(collection, field, value, () => records.entries()).map((id) => ({ id, value: records.get(id) as T }));
    },
  };

  private constructor(
    private readonly data: StoreData,
    private readonly snapshot: SnapshotFile,
    private journal: Journal,
    private readonly lock: DataDirLock,
    private readonly options: LowdbStoreOptions,
  ) {
    for (const [name, records] of data) this.counts.set(name, records.size);
  }

  /**
   * Opens (creating with mode 0700 if needed) the data dir, takes its lock, finishes a restore a crash interrupted,
   * loads the snapshot and replays the journals. A torn journal tail (a crash mid-append) is cut away; anything
   * else wrong with the files is STORE_CORRUPT (or STORE_UNREADABLE) naming the file, which is left untouched.
   */
  static async open(dir: string, options: LowdbStoreOptions = {}): Promise<LowdbStore> {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const lock = await DataDirLock.acquire(dir);
    try {
      const path = join(dir, options.file ?? DEFAULT_STORE_FILE);
      await removeStaleTempFiles(path);
      await finishRestore(path);
      const hook = options.faults?.beforeSync;
      const snapshot = new SnapshotFile(path, hook && (() => hook('snapshot')));
      const db = new Low<StoreData>(snapshot, new Map());
      await db.read();
      const journals = await listJournals(path);
      // No snapshot yet: an empty one, so the store file always exists (and the journals always have a base).
      if (snapshot.size === 0 && !(await exists(path))) await db.write();
      const { torn, sizes } = await replayJournals(journals, (ops) => applyReplayed(db.data, ops));
      await truncateTorn(torn);
      const last = journals.at(-1);
      const journalHook = hook && (() => hook('journal'));
      const journal = last
        ? await Journal.reopen(last.path, last.generation, sizes.at(-1)!, journalHook)
        : await Journal.create(path, 1, journalHook);
      const store = new LowdbStore(db.data, snapshot, journal, lock, options);
      store.maybeCompact(); // a journal left long by the last run is compacted now
      return store;
    } catch (err) {
      await lock.release();
      throw err;
    }
  }

  /**
   * Puts a backup in place of the store of a data dir, under the dir's lock (so never while a server or a command
   * has the store open: STORE_LOCKED, naming the dir). The backup is checked first as the store checks its snapshot
   * at open; one that fails is BACKUP_INVALID and nothing in the data dir is touched. Then the store's state
   * (snapshot and journals) is written whole to `<store file>.before-restore` (replacing an older one), and the
   * backup is put in place so that no journal of the old store is ever replayed over it:
   *
   *   1. the backup is written durably as `<store file>.restoring` (temp file, fsync, rename, directory fsync): a
   *      crash before it has that name leaves the old store as it was; once it has it, the restore is decided and
   *      start-up finishes it (`finishRestore`);
   *   2. the journals are removed, and the directory fsynced: so none can outlive the rename of step 3;
   *   3. `.restoring` is renamed over the store file, and the directory fsynced.
   */
  static async restore(dir: string, backupFile: string, options: { file?: string } = {}): Promise<RestoreResult> {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const lock = await DataDirLock.acquire(dir);
    let backup: FileHandle | null = null;
    try {
      const path = join(dir, options.file ?? DEFAULT_STORE_FILE);
      await removeStaleTempFiles(path);
      await finishRestore(path);
      const unreadable = (err: unknown) =>
        new BackupError('BACKUP_UNREADABLE', `cannot read the backup ${backupFile}: ${errCode(err)}; the store was left untouched`, { cause: err });
      let checked: Awaited<ReturnType<typeof checkSnapshot>>;
      try {
        backup = await open(backupFile, 'r');
        checked = await checkSnapshot(backup);
      } catch (err) {
        throw unreadable(err);
      }
      if (!checked.ok) {
        throw new BackupError('BACKUP_INVALID', `${backupFile} is not a Greenroom store backup: it ${checked.problem}; the store was left untouched`, {
          cause: checked.cause,
        });
      }
      const previous = await keepPrevious(path);
      const source = backup;
      let bytes: number;
      try {
        // The backup's bytes as checked, read again through the same descriptor.
        bytes = await writeFileDurably(path + RESTORING_SUFFIX, (target) => copyAll(source, target), { overwrite: true });
      } catch (err) {
        throw new BackupError('BACKUP_WRITE_FAILED', `cannot write the backup into the data dir: ${errCode(err)}; the store was left untouched`, { cause: err });
      }
      try {
        await finishRestore(path);
      } catch (err) {
        throw new BackupError('BACKUP_WRITE_FAILED', `cannot put the backup in place of ${path}: ${errCode(err)}; the next start finishes it`, { cause: err });
      }
      return { store: path, bytes, previous };
    } finally {
      await backup?.close();
      await lock.release();
    }
  }

  /**
   * Writes the store as it is at the call once that state is durable: every write acknowledged before the call and
   * every write made before it (waited for), and nothing made after it. Written a chunk at a time from a
   * point-in-time view (see Cut), in the snapshot's line layout, so it is a store file `restore` puts back.
   */
  async backup(target: string, options: BackupOptions = {}): Promise<BackupResult> {
    this.assertUsable();
    await checkBackupTarget(target, dirname(this.snapshot.path));
    const cut = new Cut(this.data);
    this.cuts.add(cut);
    try {
      // The flush that will carry what is in memory now: the one waiting to start, else the one under way.
      const unflushed = this.pending ?? this.flushing;
      if (unflushed) await unflushed.promise; // rejects (STORE_WRITE_FAILED) if the store has failed
      try {
        const bytes = await writeFileDurably(target, (file) => writeSnapshot(file, cut), { overwrite: options.overwrite === true });
        return { file: target, bytes };
      } catch (err) {
        throw backupWriteError(target, err);
      }
    } finally {
      this.cuts.delete(cut);
    }
  }

  /** How many flushes have completed (for tests of group commit). */
  get flushCount(): number {
    return this.flushes;
  }

  /** How many compactions have completed (for tests). */
  get compactionCount(): number {
    return this.compactions;
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

  /** Read and staged in one synchronous step (nothing can come between); resolves once the write is durable. */
  async update<T extends StoredRecord>(collection: Collection, id: string, change: (current: T | undefined) => T | undefined): Promise<T | undefined> {
    const next = change(this.now.get<T>(collection, id));
    const flushed = this.stage([next === undefined ? { op: 'delete', collection, id } : { op: 'put', collection, id, value: next }]);
    const stored = this.now.get<T>(collection, id);
    await flushed;
    return stored;
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
    // A JSON round trip makes memory hold exactly what the journal will (no undefined, Dates as strings), and it
    // runs for every value before anything changes: a value that cannot be serialized fails the batch with nothing
    // applied. The JSON made here is the one the journal line carries.
    const encoded: string[] = [];
    const values = ops.map((op) => {
      if (op.op === 'delete') {
        encoded.push(encodeDelete(op.collection, op.id));
        return undefined;
      }
      const { value, json } = toStoredValue(op.collection, op.id, op.value);
      encoded.push(encodePut(op.collection, op.id, json));
      return value;
    });
    const line = journalLine(encoded);
    const batch = (this.pending ??= newFlush());
    batch.lines.push(line);
    ops.forEach((op, i) => {
      let records = this.data.get(op.collection);
      if (!records) this.data.set(op.collection, (records = new Map()));
      const previous = records.get(op.id);
      for (const cut of this.cuts) cut.noteWrite(op.collection, op.id, previous);
      this.index.update(op.collection, op.id, previous, values[i]);
      this.sortedIds.update(op.collection, op.id, previous !== undefined, op.op === 'put');
      if (op.op === 'put') records.set(op.id, values[i]!);
      else records.delete(op.id);
      const delta = (op.op === 'put' ? 1 : 0) - (previous !== undefined ? 1 : 0);
      if (delta !== 0) this.counts.set(op.collection, (this.counts.get(op.collection) ?? 0) + delta);
      let ids = this.unflushedRecords.get(op.collection);
      if (!ids) this.unflushedRecords.set(op.collection, (ids = new Map()));
      ids.set(op.id, batch);
      batch.records.push([op.collection, op.id]);
      this.unflushedCollections.set(op.collection, batch);
      batch.collections.add(op.collection);
    });
    // Applied synchronously, and one journal line: a flush carries all of the batch or none of it.
    return this.commit(batch);
  }

  unflushed(collection: Collection, id?: string): Promise<void> | undefined {
    const flush = id === undefined ? this.unflushedCollections.get(collection) : this.unflushedRecords.get(collection)?.get(id);
    return flush?.promise;
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

  /** Lets pending flushes and a compaction under way finish (callers still get their answers), then releases the lock. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.draining;
    await this.compaction;
    const next = await this.nextJournal?.catch(() => null);
    await next?.close().catch(() => undefined);
    await this.journal.close().catch(() => undefined);
    await this.lock.release();
  }

  /** Joins the next flush, starting the flush loop if it is idle. */
  private commit(next: Flush): Promise<void> {
    next.count += 1;
    // Started a microtask late: puts issued in the same tick all land in the first flush.
    this.draining ??= Promise.resolve().then(() => this.drain());
    return next.promise;
  }

  /** Flushes until no writer waits. Only this loop appends to the journal, so flushes never overlap. */
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
        if (this.nextJournal) {
          // A compaction cut the state before this batch: from this flush on, writes go to the new journal.
          const previous = this.journal;
          this.journal = await this.nextJournal;
          this.nextJournal = null;
          await previous.close().catch(() => undefined);
        }
        // Memory now holds exactly the writes up to this batch: a flush boundary, where a compaction may cut.
        if (this.compactWanted) this.startCompaction(batch.promise);
        await this.journal.append(batch.lines);
        this.flushes++;
        batch.resolve();
      } catch (err) {
        this.failure = new StoreError('STORE_WRITE_FAILED', `writing the store journal failed: ${String(err)}`, { cause: err });
        batch.reject(this.failure);
      } finally {
        this.flushing = null;
        this.forget(batch);
      }
      if (!this.failure) this.maybeCompact();
    }
    this.draining = null;
  }

  /** After a flush: a journal past its bound is compacted, from the next flush boundary. */
  private maybeCompact(): void {
    if (this.compaction || this.nextJournal || this.closed) return;
    const bound = this.options.compactAfterBytes ?? Math.max(COMPACT_AFTER_BYTES, this.snapshot.size);
    if (this.journal.size <= bound) return;
    if (this.pending) this.compactWanted = true;
    else this.startCompaction(null); // nothing in memory is unflushed: this moment is a boundary
  }

  /**
   * Cuts the state at this flush boundary (`boundary` the flush that carries the state's last writes, or null if
   * they are all durable) and compacts it in the background; the flushes after the boundary go to a new journal
   * (the flush loop switches to it before the first of them).
   */
  private startCompaction(boundary: Promise<void> | null): void {
    this.compactWanted = false;
    const cut = new Cut(this.data);
    this.cuts.add(cut);
    const next = Journal.create(this.snapshot.path, this.journal.generation + 1, this.journalSyncHook());
    next.catch(() => undefined); // its failure fails the next flush (and this compaction), not the process
    this.nextJournal = next;
    this.compaction = this.compact(cut, boundary, next).finally(() => {
      this.cuts.delete(cut);
      this.compaction = null;
    });
  }

  /**
   * Writes the cut state as the new snapshot and drops the journals it holds. Why a crash at each step reads back
   * every acknowledged write, each batch whole (start-up: the snapshot, then every journal in order):
   *
   *   1. The new journal is created and its creation made durable (directory fsync) before any write goes to it.
   *      Crash: old snapshot + old journal (+ an empty new one): as before.
   *   2. The boundary flush is durable in the old journal before anything else happens: a snapshot never holds a
   *      write that is not in a durable journal (a torn tail would otherwise come back half applied).
   *   3. The snapshot goes to a temp file, fsynced. Crash: the temp file is removed at start-up; nothing changed.
   *   4. It is renamed over the store file, the directory fsynced. Crash after the rename: new snapshot + old
   *      journal + new journal. Replaying the old journal over a snapshot that holds it changes nothing: every line
   *      puts whole records or deletes them, so a record ends as its last write in the old journal, which is what
   *      the snapshot holds; then the new journal applies what came after the boundary.
   *   5. The older journals are removed. Crash: the same as 4, or the snapshot + the new journal.
   * A failure leaves the journals as they are (the store goes on; the next bound crossed tries again).
   */
  private async compact(cut: Cut, boundary: Promise<void> | null, next: Promise<Journal>): Promise<void> {
    try {
      const journal = await next;
      await boundary;
      await this.snapshot.writeFrom(cut);
      for (const { path, generation } of await listJournals(this.snapshot.path)) {
        if (generation < journal.generation) await rm(path, { force: true });
      }
      await syncDir(dirname(this.snapshot.path));
      this.compactions++;
    } catch {
      // The journals are intact, so no write is lost; if the store itself failed, its writes say so.
    }
  }

  private journalSyncHook(): (() => Promise<void>) | undefined {
    const hook = this.options.faults?.beforeSync;
    return hook && (() => hook('journal'));
  }

  /** Drops a finished flush from the unflushed maps, where it still is the latest write's flush. */
  private forget(flush: Flush): void {
    for (const [collection, id] of flush.records) {
      const ids = this.unflushedRecords.get(collection);
      if (ids?.get(id) === flush) ids.delete(id);
      if (ids?.size === 0) this.unflushedRecords.delete(collection);
    }
    for (const collection of flush.collections) {
      if (this.unflushedCollections.get(collection) === flush) this.unflushedCollections.delete(collection);
    }
  }

  private assertUsable(): void {
    if (this.closed) throw new StoreError('STORE_CLOSED', 'the store is closed');
    if (this.failure) throw this.failure;
  }
}

/** Applies a replayed journal line to the data read from the snapshot. */
function applyReplayed(data: StoreData, ops: readonly JournalOp[]): void {
  for (const op of ops) {
    let records = data.get(op[1]);
    if (!records) data.set(op[1], (records = new Map()));
    if (op[0] === 'p') records.set(op[2], deepFreeze(op[3]));
    else records.delete(op[2]);
  }
}

/**
 * The durable state of a store file as start-up would read it (the snapshot, then the journals; a torn tail is
 * left out but not cut away), or null when there is neither a snapshot nor a journal. Writes nothing.
 */
export async function readStoreFiles(path: string): Promise<StoreData | null> {
  const snapshot = await readSnapshot(path);
  const journals = await listJournals(path);
  if (!snapshot && journals.length === 0) return null;
  const data = snapshot?.data ?? new Map();
  await replayJournals(journals, (ops) => applyReplayed(data, ops));
  return data;
}

/**
 * Finishes a restore that reached `<store>.restoring` (see LowdbStore.restore): the old journals go (durably) before
 * the backup takes the store file's name, so none is ever replayed over it. Each step can be done again after a
 * crash. Does nothing if there is no such file.
 */
async function finishRestore(path: string): Promise<void> {
  const restoring = path + RESTORING_SUFFIX;
  if (!(await exists(restoring))) return;
  for (const { path: journal } of await listJournals(path)) await rm(journal, { force: true });
  await syncDir(dirname(path));
  await rename(restoring, path);
  await syncDir(dirname(path));
}

/**
 * Keeps the store a restore replaces as `<store>.before-restore`: its whole state as one document, which `restore`
 * puts back. A store that cannot be read whole (corrupt) is kept as its files are, byte for byte: the snapshot as
 * `.before-restore` and each journal beside it under the same numbering. Answers the path, or null if there is no store.
 */
async function keepPrevious(path: string): Promise<string | null> {
  const previous = path + BEFORE_RESTORE_SUFFIX;
  const fail = (err: unknown) =>
    new BackupError('BACKUP_WRITE_FAILED', `cannot keep the current store as ${previous}: ${errCode(err)}; the store was left untouched`, { cause: err });
  let state: StoreData | null | undefined;
  try {
    state = await readStoreFiles(path);
  } catch (err) {
    if (!(err instanceof StoreError)) throw fail(err);
    state = undefined; // unreadable as a whole: kept as files
  }
  if (state === null) return null;
  try {
    for (const { path: stale } of await listJournals(previous)) await rm(stale, { force: true });
    if (state) {
      const whole = state;
      await writeFileDurably(previous, (file) => writeSnapshot(file, wholeSource(whole)), { overwrite: true });
      return previous;
    }
    for (const [from, to] of [[path, previous], ...(await listJournals(path)).map((j) => [j.path, `${previous}.journal.${j.generation}`])] as Array<
      [string, string]
    >) {
      const source = await open(from, 'r').catch((err: NodeJS.ErrnoException) => (err.code === 'ENOENT' ? null : Promise.reject(err)));
      if (!source) continue;
      try {
        await writeFileDurably(to, (file) => copyAll(source, file), { overwrite: true });
      } finally {
        await source.close();
      }
    }
    return previous;
  } catch (err) {
    throw fail(err);
  }
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    (err: NodeJS.ErrnoException) => (err.code === 'ENOENT' ? false : Promise.reject(err)),
  );
}

function errCode(err: unknown): string {
  return (err as NodeJS.ErrnoException | undefined)?.code ?? String(err);
}
