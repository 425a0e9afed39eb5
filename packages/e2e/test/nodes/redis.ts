/**
 * The Redis the nodes share: the machine's own on 127.0.0.1:6379 (GREENROOM_TEST_REDIS_URL names another). Each test
 * file's nodes get a key prefix of their own, and the file deletes its keys afterwards. Talks to Redis through
 * `redis-cli`, which comes with the server; the package under test keeps its own client.
 */
import { execFile, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';

export const REDIS_URL = process.env.GREENROOM_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** Why the nodes' Redis cannot be used here, or null when it can. */
export function redisUnavailable(url: string = REDIS_URL): string | null {
  const ping = spawnSync('redis-cli', ['-u', url, 'PING'], { encoding: 'utf8', timeout: 5000 });
  if (ping.error) return `redis-cli cannot run (${ping.error.message}); the test command installs Redis`;
  if (ping.stdout.trim() !== 'PONG') return `Redis at ${url} does not answer PING (${(ping.stdout + ping.stderr).trim() || `exit ${ping.status}`})`;
  return null;
}

/** A key prefix no other run uses: `t:<random>:`. */
export function testPrefix(): string {
  return `t:${randomBytes(6).toString('hex')}:`;
}

// SCAN and UNLINK inside Redis: one round trip, and the keys never have to be quoted for a command line.
const DELETE_UNDER = `
local cursor, deleted = '0', 0
repeat
  local page = redis.call('SCAN', cursor, 'MATCH', ARGV[1], 'COUNT', 1000)
  cursor = page[1]
  for _, key in ipairs(page[2]) do redis.call('UNLINK', key); deleted = deleted + 1 end
until cursor == '0'
return deleted`;

/** Deletes every key that starts with `prefix` (letters, digits and `:_.-` only, as GREENROOM_REDIS_PREFIX); how many. */
export async function deleteKeys(prefix: string, url: string = REDIS_URL): Promise<number> {
  if (!/^[A-Za-z0-9:_.-]+$/.test(prefix)) throw new Error(`not a key prefix: ${JSON.stringify(prefix)}`);
  const { stdout } = await promisify(execFile)('redis-cli', ['-u', url, 'EVAL', DELETE_UNDER, '0', `${prefix}*`]);
  return Number(stdout.trim());
}
