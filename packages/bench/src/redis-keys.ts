/**
 * The Redis of the several-nodes phase, as the orchestrator sees it: whether it answers, and the removal of what a
 * run wrote. A run writes only under its own key prefix and removes only that, with SCAN + UNLINK (never KEYS or
 * FLUSHDB): other runs and test suites may share this Redis at the same time.
 */
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';

async function withRedis<T>(url: string, use: (redis: Redis) => Promise<T>): Promise<T> {
  // One attempt, bounded: a bench that cannot reach Redis says so at once rather than retrying in the background.
  const redis = new Redis(url, { lazyConnect: true, connectTimeout: 2_000, commandTimeout: 30_000, maxRetriesPerRequest: 0, retryStrategy: () => null });
  redis.on('error', () => undefined); // the failed call below says what went wrong
  try {
    await redis.connect();
    return await use(redis);
  } finally {
    redis.disconnect();
  }
}

/** Redis's version, once it answers; rejects with what to do when it does not. */
export async function redisVersion(url: string): Promise<string> {
  try {
    return await withRedis(url, async (redis) => /^redis_version:(\S+)/m.exec(await redis.info('server'))?.[1] ?? 'unknown');
  } catch (err) {
    throw new Error(`Redis at ${url} cannot be reached (${(err as Error).message}); start one (redis-server --save '' --daemonize yes) or pass --redis=URL`);
  }
}

/** Removes every key that starts with `prefix`; answers how many there were. */
export function dropKeys(url: string, prefix: string): Promise<number> {
  const pattern = `${prefix.replace(/[*?[\]\\]/g, '\\$&')}*`;
  return withRedis(url, async (redis) => {
    let removed = 0;
    let cursor = '0';
    do {
      // Keys as bytes: the store writes some that are not UTF-8.
      const [next, keys] = await redis.scanBuffer(cursor, 'MATCH', pattern, 'COUNT', 1_000);
      if (keys.length > 0) removed += await redis.unlink(...keys);
      cursor = next.toString();
    } while (cursor !== '0');
    return removed;
  });
}

// `node --import ./register.mjs src/redis-keys.ts URL PREFIX`: the removal alone, for a run that must leave at once.
if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [url, prefix] = process.argv.slice(2);
  if (!url || !prefix) throw new Error('usage: redis-keys.ts URL PREFIX');
  console.log(`removed ${await dropKeys(url, prefix)} Redis keys under ${prefix}`);
}
