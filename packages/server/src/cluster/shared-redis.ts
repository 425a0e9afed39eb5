/**
 * What the shared auth state (tickets, attempt windows, the cleanup lease) needs around a Redis connection: Lua
 * scripts sent by digest, and Redis failures turned into UNAVAILABLE.
 */
import { createHash } from 'node:crypto';
import { ErrorCode } from '@greenroom/protocol';
import { GreenroomError } from '../errors.js';
import type { RedisClient } from './redis.js';

/**
 * A script run with EVALSHA, loaded with EVAL where a server does not hold it yet (first use, a restart, another
 * cluster node). On a Redis Cluster every key of one run must share one hash tag.
 */
export class LuaScript {
  private readonly sha: string;

  constructor(private readonly lua: string) {
    this.sha = createHash('sha1').update(lua).digest('hex');
  }

  async run(redis: RedisClient, keys: readonly string[], args: ReadonlyArray<string | number>): Promise<unknown> {
    try {
      return await redis.evalsha(this.sha, keys.length, ...keys, ...args);
    } catch (err) {
      if (!(err instanceof Error && err.message.startsWith('NOSCRIPT'))) throw err;
      return redis.eval(this.lua, keys.length, ...keys, ...args);
    }
  }
}

/**
 * Runs `op` against Redis; a failure (unreachable, timed out, refused) becomes UNAVAILABLE with a Retry-After, so a
 * login, a ticket or an upgrade is answered 503, never INTERNAL. The message names no key, ticket or address.
 */
export async function shared<T>(what: string, op: () => Promise<T>): Promise<T> {
  try {
    return await op();
  } catch {
    throw new GreenroomError(ErrorCode.UNAVAILABLE, `${what} cannot be reached; try again`, { retryAfterSeconds: 1 });
  }
}

/** A secret's key: its SHA-256, so Redis never holds the secret itself. */
export function digest(secret: string): string {
  return createHash('sha256').update(secret).digest('base64url');
}
