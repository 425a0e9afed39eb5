/**
 * The store as one message's handler sees it, over a store whose writes reach memory at once and the disk behind
 * them (StagedStore). Reads answer from memory at once and writes resolve as soon as they are applied, so the
 * actor's mailbox never waits on a flush; instead the message remembers every flush its answer depends on — those
 * of its own writes and those of the not-yet-durable records it read — and the registry holds the answer (and the
 * message's pushes) until they are done. Nothing that answers a caller shows data a crash could take back.
 */
import type { Collection, ScanOptions, ScanPage, StagedStore, Store, StoredRecord, WriteOp } from '../store/store.js';

export class MessageStore implements Store {
  /** The flushes this message's answer waits for. */
  private readonly waits = new Set<Promise<void>>();
  /** Once the message has answered, later calls (work it left running) behave as the store itself: they wait. */
  private sealed = false;

  constructor(private readonly base: StagedStore) {}

  async get<T extends StoredRecord>(collection: Collection, id: string): Promise<T | undefined> {
    if (this.sealed) return this.base.get<T>(collection, id);
    const value = this.base.now.get<T>(collection, id);
    this.depend(this.base.unflushed(collection, id));
    return value;
  }

  async scan<T extends StoredRecord>(collection: Collection, options?: ScanOptions): Promise<ScanPage<T>> {
    if (this.sealed) return this.base.scan<T>(collection, options);
    const page = this.base.now.scan<T>(collection, options);
    this.depend(this.base.unflushed(collection));
    return page;
  }

  async count(collection: Collection): Promise<number> {
    if (this.sealed) return this.base.count(collection);
    const n = this.base.now.count(collection);
    this.depend(this.base.unflushed(collection));
    return n;
  }

  async findBy<T extends StoredRecord>(collection: Collection, field: string, value: string): Promise<Array<{ id: string; value: T }>> {
    if (this.sealed) return this.base.findBy<T>(collection, field, value);
    const found = this.base.now.findBy<T>(collection, field, value);
    this.depend(this.base.unflushed(collection));
    return found;
  }

  put(collection: Collection, id: string, value: StoredRecord): Promise<void> {
    return this.write([{ op: 'put', collection, id, value }]);
  }

  delete(collection: Collection, id: string): Promise<void> {
    return this.write([{ op: 'delete', collection, id }]);
  }

  /** Resolves once applied (what later reads see); a batch that cannot be applied rejects at once, nothing applied. */
  async write(ops: readonly WriteOp[]): Promise<void> {
    if (this.sealed) return this.base.write(ops);
    this.depend(this.base.stage(ops));
  }

  /** Read and staged at once, like a write (the answer waits for the flush, and for the one of what it read). */
  async update<T extends StoredRecord>(collection: Collection, id: string, change: (current: T | undefined) => T | undefined): Promise<T | undefined> {
    if (this.sealed) return this.base.update(collection, id, change);
    this.depend(this.base.unflushed(collection, id));
    const next = change(this.base.now.get<T>(collection, id));
    this.depend(this.base.stage([next === undefined ? { op: 'delete', collection, id } : { op: 'put', collection, id, value: next }]));
    return this.base.now.get<T>(collection, id);
  }

  ping(): Promise<void> {
    return this.base.ping();
  }

  close(): Promise<void> {
    return this.base.close();
  }

  /** Everything read or written so far is durable (rejects as a flush does). */
  durable(): Promise<void> {
    return this.waits.size === 0 ? Promise.resolve() : Promise.all(this.waits).then(() => undefined);
  }

  /**
   * The message is done: what its answer waits for (undefined: nothing, it can leave at once). Later calls on this
   * store wait for durability themselves.
   */
  seal(): Promise<void> | undefined {
    this.sealed = true;
    if (this.waits.size === 0) return undefined;
    return this.durable();
  }

  private depend(flush: Promise<void> | undefined): void {
    if (!flush || this.waits.has(flush)) return;
    this.waits.add(flush);
    // Its failure is the answer's (seal); until then it must not count as unhandled.
    flush.catch(() => undefined);
  }
}

/**
 * The store an actor's state is built with (and may keep): during a message, that message's MessageStore, so
 * state that holds the store still reads and writes as the message does; between messages, the store itself.
 */
export class ActorStore implements Store {
  /** The message being handled, if its store is staged. */
  current: MessageStore | null = null;

  constructor(readonly base: Store) {}

  private get target(): Store {
    return this.current ?? this.base;
  }

  get<T extends StoredRecord>(collection: Collection, id: string): Promise<T | undefined> {
    return this.target.get<T>(collection, id);
  }
  put(collection: Collection, id: string, value: StoredRecord): Promise<void> {
    return this.target.put(collection, id, value);
  }
  delete(collection: Collection, id: string): Promise<void> {
    return this.target.delete(collection, id);
  }
  write(ops: readonly WriteOp[]): Promise<void> {
    return this.target.write(ops);
  }
  scan<T extends StoredRecord>(collection: Collection, options?: ScanOptions): Promise<ScanPage<T>> {
    return this.target.scan<T>(collection, options);
  }
  count(collection: Collection): Promise<number> {
    return this.target.count(collection);
  }
  findBy<T extends StoredRecord>(collection: Collection, field: string, value: string): Promise<Array<{ id: string; value: T }>> {
    return this.target.findBy<T>(collection, field, value);
  }
  update<T extends StoredRecord>(collection: Collection, id: string, change: (current: T | undefined) => T | undefined): Promise<T | undefined> {
    return this.target.update<T>(collection, id, change);
  }
  ping(): Promise<void> {
    return this.base.ping();
  }
  close(): Promise<void> {
    return this.base.close();
  }
}

/**
 * Waits until what the handler has read and written so far is durable: for a handler about to tell another actor
 * or the outside world something that must not run ahead of the disk (a role change that grants rights). With a
 * store whose writes are durable when they resolve, there is nothing to wait for.
 */
export function whenDurable(store: Store): Promise<void> {
  const message = store instanceof ActorStore ? store.current : store;
  return message instanceof MessageStore ? message.durable() : Promise.resolve();
}
