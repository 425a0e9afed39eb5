/**
 * Locks per key across nodes: what one node's KeyedQueue does for a session or a user, for every node sharing a
 * Redis. A task runs once its node's queue for the key reaches it (so a node's own tasks never race each other for
 * Redis) and it holds the key's Redis lock: `SET key token NX PX ttl`, renewed while the task runs, released by a
 * compare-and-delete so a lock that expired and was taken by another node is never released by the old holder.
 *
 * The lock key carries the key as its hash tag (`{u:<uid>}` for a user), so on a Redis Cluster it lives in the slot
 * of the records it guards. A holder that stalls past the TTL without renewing (a process frozen for seconds)
 * loses the lock; its renewal then fails and it is told so by the task's rejection only if it tries to renew — the
 * usual limit of leases, bounded by the TTL.
 */
import { randomBytes } from 'node:crypto';
import { ErrorCode } from '@greenroom/protocol';
import { GreenroomError } from '../errors.js';
import { KeyedQueue, type Locks } from '../runtime/keyed-queue.js';
import type { RedisClient } from './redis.js';

export interface RedisLocksOptions {
  /** A held lock expires this long after its last renewal (renewed every third of it). */
  ttlMs?: number;
  /** Longest a task waits for the lock before it fails with UNAVAILABLE. */
  waitMs?: number;
}

export class RedisLocks implements Locks {
  private readonly local = new KeyedQueue();
  private readonly ttlMs: number;
  private readonly waitMs: number;

  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
    options: RedisLocksOptions = {},
  ) {
    this.ttlMs = options.ttlMs ?? 5000;
    this.waitMs = options.waitMs ?? 5000;
  }

  run<T>(key: string, task: () => Promise<T>): Promise<T> {
    return this.local.run(key, () => this.hold(key, task));
  }

  /** Keys with a task queued or running on this node. */
  get size(): number {
    return this.local.size;
  }

  private async hold<T>(key: string, task: () => Promise<T>): Promise<T> {
    const lockKey = `${this.prefix}{${key}}:lock`;
    const token = randomBytes(12).toString('base64url');
    await this.acquire(lockKey, token);
    const renewer = setInterval(() => {
      this.redis.eval(RENEW, 1, lockKey, token, String(this.ttlMs)).catch(() => undefined);
    }, Math.floor(this.ttlMs / 3));
    try {
      return await task();
    } finally {
      clearInterval(renewer);
      // If Redis is unreachable now the lock simply expires with its TTL.
      await this.redis.eval(RELEASE, 1, lockKey, token).catch(() => undefined);
    }
  }

  /** Tries at once, then again after short, growing pauses (another node's task on one key takes milliseconds). */
  private async acquire(lockKey: string, token: string): Promise<void> {
    const deadline = Date.now() + this.waitMs;
    let pause = 2;
    for (;;) {
      let taken: string | null;
      try {
        taken = await this.redis.set(lockKey, token, 'PX', this.ttlMs, 'NX');
      } catch {
        throw new GreenroomError(ErrorCode.UNAVAILABLE, 'the store is not reachable', { retryAfterSeconds: 1 });
      }
      if (taken === 'OK') return;
      if (Date.now() + pause > deadline) throw new GreenroomError(ErrorCode.UNAVAILABLE, 'the server is busy; try again', { retryAfterSeconds: 1 });
      await new Promise((resolve) => setTimeout(resolve, pause));
      pause = Math.min(pause * 2, 50);
    }
  }
}

const RENEW = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0`;
const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;
