/**
 * A named lease in Redis: at most one holder at a time across nodes, e.g. for the periodic cleanup, which then runs
 * on one node at a time. Taken with `SET key token NX PX ttl`; renewed while held; given back with a compare-and-delete
 * script, so a holder whose lease ran out (and went to another) never ends the new holder's. A holder that dies
 * gives it up when its TTL runs out.
 */
import { randomUUID } from 'node:crypto';
import type { RedisClient } from './redis.js';
import { LuaScript, shared } from './shared-redis.js';

/** KEYS: the lease. ARGV: the holder's token, the TTL (ms). 1 if still held by that token (and renewed), else 0. */
const RENEW = new LuaScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
`);

/** KEYS: the lease. ARGV: the holder's token. Deletes it only if that token still holds it. */
const RELEASE = new LuaScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`);

export class Lease {
  private readonly key: string;
  /** This holder's token while it holds the lease (as far as it knows). */
  private token: string | null = null;

  constructor(
    private readonly redis: RedisClient,
    prefix: string,
    readonly name: string,
    private readonly ttlMs: number,
  ) {
    this.key = `${prefix}lease:${name}`;
  }

  get held(): boolean {
    return this.token !== null;
  }

  /** Takes the lease if no one holds it (this holder included): true if taken. */
  async acquire(): Promise<boolean> {
    const token = randomUUID();
    const taken = await shared(`the ${this.name} lease`, () => this.redis.set(this.key, token, 'PX', this.ttlMs, 'NX'));
    if (taken !== 'OK') return false;
    this.token = token;
    return true;
  }

  /** Extends the lease by its TTL: false if it is no longer this holder's (it ran out, and maybe went to another). */
  async renew(): Promise<boolean> {
    const token = this.token;
    if (token === null) return false;
    const still = Number(await shared(`the ${this.name} lease`, () => RENEW.run(this.redis, [this.key], [token, this.ttlMs]))) === 1;
    if (!still && this.token === token) this.token = null;
    return still;
  }

  /** Gives the lease back, if this holder still holds it. */
  async release(): Promise<void> {
    const token = this.token;
    if (token === null) return;
    this.token = null;
    await shared(`the ${this.name} lease`, () => RELEASE.run(this.redis, [this.key], [token]));
  }

  /**
   * Runs `fn` holding the lease, renewed every third of its TTL, and gives it back after; undefined (and `fn` not run)
   * if someone holds it. A renewal that fails leaves `fn` running: what a lease guards must stay safe to run twice,
   * because a holder cut off from Redis cannot know that its lease has gone to another.
   */
  async run<T>(fn: () => Promise<T>): Promise<T | undefined> {
    if (!(await this.acquire())) return undefined;
    const renewer = setInterval(() => void this.renew().catch(() => false), Math.max(1, Math.floor(this.ttlMs / 3))).unref();
    try {
      return await fn();
    } finally {
      clearInterval(renewer);
      // If Redis cannot be reached now, the lease runs out by itself.
      await this.release().catch(() => undefined);
    }
  }
}
