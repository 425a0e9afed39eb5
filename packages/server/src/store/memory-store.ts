import { StoreError } from '../errors.js';
import { backupWriteError, checkBackupTarget } from './backup.js';
import { writeAll, writeFileDurably } from './durable-file.js';
import { FieldIndex } from './field-index.js';
import type { BackupOptions, BackupResult, Collection, ScanOptions, ScanPage, Store, StoredRecord, WriteOp } from './store.js';

/** The default page size of `scan`. */
export const DEFAULT_SCAN_LIMIT = 100;

/** Freezes a value and everything reachable from it, so a record handed out can never change the stored one. */
export function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}

/**
 * One page of `ids` (any order) after the cursor. Shared by the stores so they page identically: ids compare by
 * UTF-16 code units (plain `<`, not locale order), and `next` is null when nothing follows the page.
 */
export function pageOf<T>(ids: Iterable<string>, lookup: (id: string) => T, options: ScanOptions = {}): ScanPage<T> {
  const limit = options.limit ?? DEFAULT_SCAN_LIMIT;
  if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`scan limit must be a positive integer, got ${limit}`);
  const after = options.after;
  const sorted = [...ids].filter((id) => after === undefined || id > after).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const items = sorted.slice(0, limit).map((id) => ({ id, value: lookup(id) }));
  // Only a page that leaves ids behind has a cursor: an exactly full last page ends the scan without an empty page.
  const next = sorted.length > limit ? items[items.length - 1]!.id : null;
  return { items, next };
}

/** The in-memory store: for tests, and the reference the contract test is written against. Not durable. */
export class MemoryStore implements Store {
  private readonly collections = new Map<string, Map<string, StoredRecord>>();
  private readonly index = new FieldIndex();
  private closed = false;

  async get<T extends StoredRecord>(collection: Collection, id: string): Promise<T | undefined> {
    this.assertOpen();
    return this.collections.get(collection)?.get(id) as T | undefined;
  }

  async put(collection: Collection, id: string, value: StoredRecord): Promise<void> {
    await this.write([{ op: 'put', collection, id, value }]);
  }

  async delete(collection: Collection, id: string): Promise<void> {
    await this.write([{ op: 'delete', collection, id }]);
  }

  async write(ops: readonly WriteOp[]): Promise<void> {
    this.assertOpen();
    // Clone everything before changing anything: a value that cannot be cloned fails the batch with nothing applied.
    const values = ops.map((op) => (op.op === 'put' ? deepFreeze(structuredClone(op.value)) : undefined));
    ops.forEach((op, i) => {
      const records = this.collection(op.collection);
      this.index.update(op.collection, op.id, records.get(op.id), values[i]);
      if (op.op === 'put') records.set(op.id, values[i]!);
      else records.delete(op.id);
    });
  }

  async scan<T extends StoredRecord>(collection: Collection, options?: ScanOptions): Promise<ScanPage<T>> {
    this.assertOpen();
    const records = this.collections.get(collection) ?? new Map<string, StoredRecord>();
    return pageOf(records.keys(), (id) => records.get(id) as T, options);
  }

  async count(collection: Collection): Promise<number> {
    this.assertOpen();
    return this.collections.get(collection)?.size ?? 0;
  }

  async findBy<T extends StoredRecord>(collection: Collection, field: string, value: string): Promise<Array<{ id: string; value: T }>> {
    this.assertOpen();
    const records = this.collection(collection);
    return this.index.find(collection, field, value, () => records.entries()).map((id) => ({ id, value: records.get(id) as T }));
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

  private collection(name: string): Map<string, StoredRecord> {
    let records = this.collections.get(name);
    if (!records) this.collections.set(name, (records = new Map()));
    return records;
  }

  private assertOpen(): void {
    if (this.closed) throw new StoreError('STORE_CLOSED', 'the store is closed');
  }
}
