/**
 * The store seam: named collections of flat JSON records keyed by a string id. Every actor persists through it.
 * Implementations: memory-store.ts (tests, and the contract's reference) and lowdb-store.ts (the embedded
 * default); a Redis one plugs in beside them. All pass store.contract.ts.
 *
 * Records are immutable once stored: `get` may return a frozen object; to change one, put a new object.
 * A write's promise resolves only after the data is durable (for lowdb: fsynced to disk).
 */

export type Collection = 'users' | 'sessions' | 'fingerprints' | 'meta' | (string & {});

export type StoredRecord = Readonly<Record<string, unknown>>;

export type WriteOp =
  | { op: 'put'; collection: Collection; id: string; value: StoredRecord }
  | { op: 'delete'; collection: Collection; id: string };

export interface ScanOptions {
  /** Return only ids strictly greater than this (the cursor of the previous page). */
  after?: string;
  /** At most this many items (default 100). */
  limit?: number;
}

export interface ScanPage<T> {
  items: Array<{ id: string; value: T }>;
  /** The cursor for the next page, or null on the last page. Pages are in ascending id order. */
  next: string | null;
}

export interface Store {
  get<T extends StoredRecord>(collection: Collection, id: string): Promise<T | undefined>;
  put(collection: Collection, id: string, value: StoredRecord): Promise<void>;
  delete(collection: Collection, id: string): Promise<void>;
  /** Applies all ops together: after a crash either all of them are there or none. */
  write(ops: readonly WriteOp[]): Promise<void>;
  scan<T extends StoredRecord>(collection: Collection, options?: ScanOptions): Promise<ScanPage<T>>;
  count(collection: Collection): Promise<number>;
  /** Records whose `field` equals `value` (an indexed lookup: sessions by uid, users by username, ...). */
  findBy<T extends StoredRecord>(collection: Collection, field: string, value: string): Promise<Array<{ id: string; value: T }>>;
  /** Resolves when the store can serve (for /readyz); rejects otherwise. */
  ping(): Promise<void>;
  /**
   * Writes a consistent copy of the store to `file` (an absolute path) while it serves: a snapshot holding every
   * write acknowledged before the call (and perhaps some that come later), in the embedded store's file format (the
   * document `{ [collection]: { [id]: record } }` as JSON), so `greenroom restore` puts it back. Written durably
   * (temp file in the target's directory, fsync, rename, directory fsync) with mode 0600: it holds password hashes
   * and sessions. An existing `file` is refused (BackupError BACKUP_EXISTS, the file untouched) unless `overwrite`.
   * Optional: a store that cannot make backups leaves it out, and `greenroom backup` says so.
   */
  backup?(file: string, options?: BackupOptions): Promise<BackupResult>;
  /** Waits for pending writes, then releases the store (and its lock). Later calls reject with STORE_CLOSED. */
  close(): Promise<void>;
}

export interface BackupOptions {
  /** Replace `file` if it exists. */
  overwrite?: boolean;
}

export interface BackupResult {
  /** The backup's absolute path. */
  file: string;
  bytes: number;
}
