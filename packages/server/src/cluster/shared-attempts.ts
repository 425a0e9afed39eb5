/**
 * Attempt windows in Redis (auth/attempt-windows.ts, for several nodes): the login, guest and exchange limiters
 * count across nodes exactly as on one. Each window is a hash `{ n: count, w: when it opened, r: named at the limit }`
 * that expires with its window, so Redis holds only recent attempts. Checking and counting is one Lua script, so
 * parallel attempts on any nodes cannot all pass; naming a burst sets `r` once (HSETNX), so it is named once per
 * window across nodes. A window opens at its key's first attempt, by Redis's clock: the nodes' clocks play no part.
 *
 * Keys are `<prefix>{<limiter>}:<SHA-256 of the window's name>`. The name holds a username (perhaps a password typed
 * into the wrong field) and an address: Redis holds neither. All the keys of one limiter share the hash tag
 * `{<limiter>}` (one Redis Cluster slot): one login attempt checks and counts the windows of its address, its
 * (username, address), its device and its username in one script, and a script may touch keys of one slot only. The
 * cost is that a limiter's counting is served by one cluster node; an attempt is a few hash operations, and a login
 * costs a password hash anyway.
 */
import type { AttemptCounter, Counted, Taken } from '../auth/attempt-windows.js';
import type { RedisClient } from './redis.js';
import { digest, LuaScript, shared } from './shared-redis.js';

/** ARGV: max, window (ms), how many of KEYS (the first ones) are checked. Returns {0, wait ms} or {1, window...}. */
const TAKE = new LuaScript(`
local max, window, checked = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local wait = 0
for i = 1, checked do
  if tonumber(redis.call('HGET', KEYS[i], 'n') or 0) >= max then wait = math.max(wait, redis.call('PTTL', KEYS[i])) end
end
if wait > 0 then return {0, wait} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local opened = {1}
for i = 1, #KEYS do
  local w = redis.call('HGET', KEYS[i], 'w')
  if not w then
    w = now
    redis.call('HSET', KEYS[i], 'w', w)
    redis.call('PEXPIRE', KEYS[i], window)
  end
  redis.call('HINCRBY', KEYS[i], 'n', 1)
  opened[#opened + 1] = tonumber(w)
end
return opened
`);

/** ARGV: max. Returns the longest wait (ms) of KEYS at the limit, or 0. */
const WAIT = new LuaScript(`
local max, wait = tonumber(ARGV[1]), 0
for i = 1, #KEYS do
  if tonumber(redis.call('HGET', KEYS[i], 'n') or 0) >= max then wait = math.max(wait, redis.call('PTTL', KEYS[i])) end
end
return wait
`);

/** ARGV: max, then each key's window. Returns the (1-based) indexes of the windows named now. */
const NEWLY_AT_LIMIT = new LuaScript(`
local max, named = tonumber(ARGV[1]), {}
for i = 1, #KEYS do
  local f = redis.call('HMGET', KEYS[i], 'n', 'w')
  if f[2] and tonumber(f[2]) == tonumber(ARGV[i + 1]) and tonumber(f[1] or 0) >= max
    and redis.call('HSETNX', KEYS[i], 'r', 1) == 1 then
    named[#named + 1] = i
  end
end
return named
`);

/** ARGV: each key's window. Takes one attempt back from each window still current. */
const REFUND = new LuaScript(`
for i = 1, #KEYS do
  local f = redis.call('HMGET', KEYS[i], 'n', 'w')
  if f[2] and tonumber(f[2]) == tonumber(ARGV[i]) and tonumber(f[1] or 0) > 0 then redis.call('HINCRBY', KEYS[i], 'n', -1) end
end
return 0
`);

export class SharedAttempts implements AttemptCounter {
  private readonly tag: string;
  private readonly what: string;

  /** `name` names the limiter (`login`, `guest`, `exchange`): its keys' hash tag. */
  constructor(
    private readonly redis: RedisClient,
    prefix: string,
    name: string,
    readonly max: number,
    private readonly windowMs: number,
  ) {
    this.tag = `${prefix}{${name}}:`;
    this.what = `the ${name} limiter`;
  }

  async retryAfter(keys: readonly string[]): Promise<number> {
    if (keys.length === 0) return 0;
    const ms = await shared(this.what, () => WAIT.run(this.redis, keys.map((k) => this.keyOf(k)), [this.max]));
    return Math.ceil(Number(ms) / 1000);
  }

  async take(keys: readonly string[], unchecked: readonly string[] = []): Promise<Taken> {
    const all = [...keys, ...unchecked];
    if (all.length === 0) return { ok: true, counted: [] };
    const reply = (await shared(this.what, () =>
      TAKE.run(this.redis, all.map((k) => this.keyOf(k)), [this.max, this.windowMs, keys.length]),
    )) as number[];
    if (Number(reply[0]) === 0) return { ok: false, retryAfter: Math.ceil(Number(reply[1]) / 1000) };
    return { ok: true, counted: all.map((key, i) => ({ key, window: Number(reply[i + 1]) })) };
  }

  async newlyAtLimit(counted: readonly Counted[]): Promise<string[]> {
    if (counted.length === 0) return [];
    const named = (await shared(this.what, () =>
      NEWLY_AT_LIMIT.run(this.redis, counted.map((c) => this.keyOf(c.key)), [this.max, ...counted.map((c) => c.window)]),
    )) as number[];
    return named.map((i) => counted[Number(i) - 1]!.key);
  }

  async refund(counted: readonly Counted[]): Promise<void> {
    if (counted.length === 0) return;
    await shared(this.what, () => REFUND.run(this.redis, counted.map((c) => this.keyOf(c.key)), counted.map((c) => c.window)));
  }

  /** Nothing to stop: Redis expires the windows, and the connection belongs to whoever opened it. */
  stop(): void {}

  private keyOf(key: string): string {
    return this.tag + digest(key);
  }
}
