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

/**
 * What a scan reads: the ids of one collection in code-unit order (ascending, or descending with `reverse`), those
 * within the range and the prefix, from just past the cursor, at most `limit` of them. The range and the prefix
 * choose the rows; `reverse` only changes the order they come in. Every option may be left out.
 */
export interface ScanOptions {
  /** Only ids that start with this (`'room-1/'`). */
  prefix?: string;
  /** Only ids greater than or equal to this (the range's inclusive lower bound). */
  gte?: string;
  /** Only ids less than this (the range's exclusive upper bound). */
  lt?: string;
  /** Descending id order: newest first for time-ordered ids (uuid v7, ULID). */
  reverse?: boolean;
  /**
   * The cursor: only ids past this one in the scan's direction (greater ascending, less with `reverse`). Pass the
   * `next` of the previous page with the same other options. It need not be an id that still exists.
   */
  after?: string;
  /** At most this many items: a positive integer, 100 if left out. */
  limit?: number;
}

export interface ScanPage<T> {
  /** In the scan's order. */
  items: Array<{ id: string; value: T }>;
  /**
   * The cursor for the next page (the last item's id), or null on the last page. A page continues exactly where
   * the last one ended, whatever was put or deleted in between: the cursor is an id, not an offset.
   */
  next: string | null;
}

export interface Store {
  get<T extends StoredRecord>(collection: Collection, id: string): Promise<T | undefined>;
  put(collection: Collection, id: string, value: StoredRecord): Promise<void>;
  delete(collection: Collection, id: string): Promise<void>;
  /** Applies all ops together: after a crash either all of them are there or none. */
  write(ops: readonly WriteOp[]): Promise<void>;
  /**
   * Changes one record atomically, whichever node writes it: `change` gets the record as it is (undefined if there
   * is none) and returns the record to store (undefined: delete it), and no other write of that record comes
   * between that read and this write. `change` must be synchronous and free of side effects: where other nodes
   * write too it may run more than once (it is called again on what they wrote). Resolves with what was stored,
   * once it is durable. This is how app actors keep shared state on several nodes (a counter, a room's roster).
   */
  update<T extends StoredRecord>(collection: Collection, id: string, change: (current: T | undefined) => T | undefined): Promise<T | undefined>;
  /** A page of records by id (ScanOptions); rejects bad options with StoreError STORE_INVALID_OPTION. */
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

/**
 * A store that holds its data in memory and makes writes durable behind them (the embedded store, and the memory
 * store for tests). The actor runtime uses it so that a mailbox goes on to its next message while a write flushes
 * (actors/message-store.ts): a handler stages its writes and reads through `now`, which never waits, and its answer
 * is held until every flush it depends on is done.
 *
 * Its `Store` reads never show a write that is not yet durable: a `get` of a record whose latest write is still
 * flushing resolves once that flush is done (with the value it read); `findBy`, `scan` and `count` of a collection
 * with a write still flushing wait likewise. Nothing that answers a caller can show data a crash could take back.
 */
export interface StagedStore extends Store {
  /**
   * Applies `ops` to what reads see, at once and all together, and answers a promise that resolves once they are
   * durable (rejects with STORE_WRITE_FAILED if their flush fails). Throws at once (a StoreError, nothing applied)
   * if they cannot be applied: a closed or failed store, a value that is not JSON.
   */
  stage(ops: readonly WriteOp[]): Promise<void>;
  /** Reads of what is in memory this moment, durable or not, answered synchronously. Pair each with `unflushed`. */
  readonly now: {
    get<T extends StoredRecord>(collection: Collection, id: string): T | undefined;
    scan<T extends StoredRecord>(collection: Collection, options?: ScanOptions): ScanPage<T>;
    count(collection: Collection): number;
    findBy<T extends StoredRecord>(collection: Collection, field: string, value: string): Array<{ id: string; value: T }>;
  };
  /**
   * The flush that will make durable what a read of the record (or, without `id`, of the whole collection) sees
   * this moment, or undefined if that is durable already. Rejects as the flush does.
   */
  unflushed(collection: Collection, id?: string): Promise<void> | undefined;
}

export function isStaged(store: Store): store is StagedStore {
  return typeof (store as Partial<StagedStore>).stage === 'function';
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
