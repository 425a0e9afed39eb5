/**
 * Work serialized per key (a session, a user): on one node a KeyedQueue; on several nodes sharing Redis, a lock per
 * key across them (cluster/redis-locks.ts). Keys name what they guard: a session id, or `u:<uid>` for a user.
 */
export interface Locks {
  run<T>(key: string, task: () => Promise<T>): Promise<T>;
  /** Keys with a task queued or running on this node. */
  readonly size: number;
}

/**
 * Runs tasks one at a time per key, and different keys concurrently: a mailbox per key, made on demand and
 * dropped as soon as it is empty, so its size returns to zero when nothing is running.
 */
export class KeyedQueue implements Locks {
  private readonly tails = new Map<string, Promise<unknown>>();

  run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    const result = previous.then(task, task);
    const tail = result.then(
      () => undefined,
      () => undefined,
    );
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return result;
  }

  /** Keys with a task queued or running. */
  get size(): number {
    return this.tails.size;
  }
}
