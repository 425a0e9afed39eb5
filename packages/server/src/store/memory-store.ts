import { StoreError } from '../errors.js';
import { backupWriteError, checkBackupTarget } from './backup.js';
import { writeAll, writeFileDurably } from './durable-file.js';
import { FieldIndex } from './field-index.js';
import { pageOf, SortedIds } from './scan.js';
import type { BackupOptions, BackupResult, Collection, ScanOptions, ScanPage, StagedStore, StoredRecord, WriteOp } from './store.js';

/** Freezes a value and everything reachable from it, so a record handed out can never change the stored one. */
export function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}

/**
 * The in-memory store: for tests, and the reference the contract test is written against. Not durable. Staged
 * (store.ts): a write applies at once and has no flush behind it.
 */
export class MemoryStore implements StagedStore {
  private readonly collections = new Map<string, Map<string, StoredRecord>>();
  private readonly index = new FieldIndex();
  private readonly sortedIds = new SortedIds();
  private closed = false;

  /** Reads of the document as it is; all of it is as durable as this store gets, so nothing is ever unflushed. */
  readonly now: StagedStore['now'] = {
    get: <T extends StoredRecord>(collection: Collection, id: string): T | undefined => {
      this.assertOpen();
      return this.collections.get(collection)?.get(id) as T | undefined;
    },
    scan: <T extends StoredRecord>(collection: Collection, options?: ScanOptions): ScanPage<T> => {
      this.assertOpen();
      const records = this.collections.get(collection);
      if (!records) return pageOf([], () => undefined as never, options);
      return pageOf(this.sortedIds.get(collection, () => records.keys()), (id) => records.get(id) as T, options);
    },
    count: (collection: Collection): number => {
      this.assertOpen();
      return this.collections.get(collection)?.size ?? 0;
    },
    findBy: <T extends StoredRecord>(collection: Collection, field: string, value: string): Array<{ id: string; value: T }> => {
      this.assertOpen();
      const records = this.collection(collection);
      return this.index.find(collection, field, value, () => records.entries()).map((id) => ({ id, value: records.get(id) as T }));
    },
  };

  async get<T extends StoredRecord>(collection: Collection, id: string): Promise<T | undefined> {
    return this.now.get<T>(collection, id);
  }

  async put(collection: Collection, id: string, value: StoredRecord): Promise<void> {
    await this.write([{ op: 'put', collection, id, value }]);
  }

  async delete(collection: Collection, id: string): Promise<void> {
    await this.write([{ op: 'delete', collection, id }]);
  }

  async write(ops: readonly WriteOp[]): Promise<void> {
    this.apply(ops);
  }

  /** One process, one record: read and written in one synchronous step, so nothing can come between. */
  async update<T extends StoredRecord>(collection: Collection, id: string, change: (current: T | undefined) => T | undefined): Promise<T | undefined> {
    const next = change(this.now.get<T>(collection, id));
    this.apply([next === undefined ? { op: 'delete', collection, id } : { op: 'put', collection, id, value: next }]);
    return this.now.get<T>(collection, id);
  }

  /** Applies at once (or throws, nothing applied); there is no flush to wait for. */
  stage(ops: readonly WriteOp[]): Promise<void> {
    this.apply(ops);
    return Promise.resolve();
  }

  unflushed(): Promise<void> | undefined {
    return undefined;
  }

  async scan<T extends StoredRecord>(collection: Collection, options?: ScanOptions): Promise<ScanPage<T>> {
    return this.now.scan<T>(collection, options);
  }

  async count(collection: Collection): Promise<number> {
    return this.now.count(collection);
  }

  async findBy<T extends StoredRecord>(collection: Collection, field: string, value: string): Promise<Array<{ id: string; value: T }>> {
    return this.now.findBy<T>(collection, field, value);
  }

  async ping(): Promise<void> {
    this.assertOpen();
  }

  /**
   * Writes the document (every write whose promise resolved before the call, and any made since), in the embedded
   * store's file format, durably and with mode 0600, like the lowdb store's backups.
   */
  async backup(file: string, options: BackupOptions = {}): Promise<BackupResult> {
    this.assertOpen();
    await checkBackupTarget(file, null);
    const doc: Record<string, Record<string, StoredRecord>> = Object.create(null); // `__proto__` is a plain name
    for (const [name, records] of this.collections) {
      const out: Record<string, StoredRecord> = Object.create(null);
      for (const [id, record] of records) out[id] = record;
      doc[name] = out;
    }
    const bytes = Buffer.from(JSON.stringify(doc)); // taken before the first await: one moment's document
    try {
      await writeFileDurably(file, (target) => writeAll(target, [bytes]), { overwrite: options.overwrite === true });
    } catch (err) {
      throw backupWriteError(file, err);
    }
    return { file, bytes: bytes.length };
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  private apply(ops: readonly WriteOp[]): void {
    this.assertOpen();
    // Clone everything before changing anything: a value that cannot be cloned fails the batch with nothing applied.
    const values = ops.map((op) => (op.op === 'put' ? deepFreeze(structuredClone(op.value)) : undefined));
    ops.forEach((op, i) => {
      const records = this.collection(op.collection);
      const previous = records.get(op.id);
      this.index.update(op.collection, op.id, previous, values[i]);
      this.sortedIds.update(op.collection, op.id, previous !== undefined, op.op === 'put');
      if (op.op === 'put') records.set(op.id, values[i]!);
      else records.delete(op.id);
    });
  }

  private collection(name: string): Map<string, StoredRecord> {
    let records = this.collections.get(name);
    if (!records) this.collections.set(name, (records = new Map()));
    return records;
  }

  private assertOpen(): void {
    if (this.closed) throw new StoreError('STORE_CLOSED', 'the store is closed');
  }
}
