/**
 * The store GREENROOM_STORE names, and start-up work that needs it. The embedded store is in the data dir; the
 * Redis store may be down when a node starts, which must not stop the node: it starts, answers /readyz 503, and
 * catches up once Redis is there (SPEC §8). It never falls back to another store.
 */
import { ErrorCode } from '@greenroom/protocol';
import { mkdir } from 'node:fs/promises';
import type { Logger } from 'pino';
import { redisSettings } from '../cluster/redis.js';
import type { Config } from '../config.js';
import { ConfigError, GreenroomError, StoreError } from '../errors.js';
import { LowdbStore } from './lowdb-store.js';
import { RedisStore } from './redis-store.js';
import type { Store } from './store.js';

/** Opens the configured store: lowdb in the data dir, or Redis (at once, connecting in the background). */
export async function openStore(config: Pick<Config, 'store' | 'dataDir' | 'redisUrls' | 'redisCluster' | 'redisPrefix'>, log: Logger): Promise<Store> {
  switch (config.store) {
    case 'lowdb':
      return LowdbStore.open(config.dataDir);
    case 'redis':
      // The data dir holds no store then, but the node's admin socket: made as the embedded store makes it, 0700.
      await mkdir(config.dataDir, { recursive: true, mode: 0o700 });
      return RedisStore.open(redisSettings(config), { log });
    default:
      // loadConfig admits only these; a config put together in code may hold anything.
      throw new ConfigError(`invalid configuration:\n  GREENROOM_STORE: must be lowdb or redis, got ${JSON.stringify(config.store satisfies never)}`);
  }
}

/** Start-up work that may still be waiting for the store. */
export interface StartupWork {
  /** Whether it is done (until then the node is not ready). */
  done(): boolean;
  /** Stops retrying it (the node is stopping). */
  stop(): void;
}

/** Retry delays in the background: quick at first, then every 5 s. */
const FIRST_RETRY_MS = 250;
const LAST_RETRY_MS = 5000;

/**
 * Runs `task` once; if it fails because the store cannot be reached (or did not answer in time), start-up goes on
 * and the task is retried in the background until it succeeds, with one warning per streak of failures. Any other
 * failure of the first try is thrown: start-up fails as it would have.
 */
export async function retryUntilReachable(what: string, task: () => Promise<unknown>, log: Logger): Promise<StartupWork> {
  try {
    await task();
    return { done: () => true, stop: () => undefined };
  } catch (err) {
    if (!unreachable(err)) throw err;
    log.warn({ code: codeOf(err) }, `${what}: the store cannot be reached yet; retrying in the background (not ready until then)`);
  }
  let done = false;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const retry = (delayMs: number) => {
    timer = setTimeout(() => {
      task().then(
        () => {
          done = true;
          log.info(`${what}: done, now that the store can be reached`);
        },
        () => {
          if (!stopped) retry(Math.min(delayMs * 2, LAST_RETRY_MS));
        },
      );
    }, delayMs);
    timer.unref();
  };
  retry(FIRST_RETRY_MS);
  return {
    done: () => done,
    stop: () => {
      stopped = true;
      clearTimeout(timer);
    },
  };
}

/** A failure that means the store is not there (yet), as a StoreError or as the answer of an ask. */
function unreachable(err: unknown): boolean {
  if (err instanceof StoreError) return err.code === 'STORE_UNAVAILABLE';
  return err instanceof GreenroomError && (err.code === ErrorCode.UNAVAILABLE || err.code === ErrorCode.TIMEOUT);
}

function codeOf(err: unknown): string {
  return err instanceof StoreError || err instanceof GreenroomError ? err.code : 'error';
}
