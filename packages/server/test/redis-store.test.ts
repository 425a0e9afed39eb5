/**
 * The Redis store against real Redis servers: the store contract on the machine's Redis (a key prefix per test) and
 * on a three-master cluster this file starts; one user's keys in one slot; batches that cannot be stored leave
 * nothing; two stores ("nodes") on one Redis see each other's writes and keep the ids and indexes right when they
 * write at once; and a store whose Redis is not there yet reports STORE_UNAVAILABLE, then serves once it is.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Cluster, Redis } from 'ioredis';
import { StoreError } from '../src/errors.js';
import { RedisStore } from '../src/store/redis-store.js';
import { storeContract } from './store.contract.js';
import { rejection } from './helpers.js';
import { dropPrefix, MACHINE_REDIS_URL, redisAvailable, redisPrefix, redisServerFound, startCluster, startRedis, type RedisCluster, type RedisServer } from './redis.js';

const found = redisServerFound();
const describeRedis = found ? describe : describe.skip;
const skipped = found ? '' : ' (skipped: redis-server is not installed; scripts/ensure-redis.mjs installs it)';

/** The machine's Redis, or (if it is not running) one this file starts. */
let standalone: { url: string; server: RedisServer | null } = { url: MACHINE_REDIS_URL, server: null };

beforeAll(async () => {
  if (found && !(await redisAvailable())) {
    const server = await startRedis();
    standalone = { url: server.url, server };
  }
}, 30_000);
afterAll(async () => {
  await standalone.server?.stop();
});

/** A store on `urls` under a fresh prefix; cleanup closes it and drops the prefix's keys. */
async function openStore(urls: string[], cluster = false) {
  const prefix = redisPrefix();
  const settings = { urls, cluster, prefix };
  const store = await RedisStore.open(settings);
  return {
    store,
    prefix,
    settings,
    cleanup: async () => {
      await store.close();
      const admin = cluster ? new Cluster(urls.map((u) => new URL(u)).map((u) => ({ host: u.hostname, port: Number(u.port) }))) : new Redis(urls[0]!);
      try {
        await dropPrefix(admin, prefix);
      } finally {
        admin.disconnect();
      }
    },
  };
}

describeRedis(`RedisStore on standalone Redis${skipped}`, () => {
  storeContract('RedisStore (standalone)', () => openStore([standalone.url]));
});
