/**
 * Connections to Redis (ioredis), one way for the store and the node bus: standalone or Cluster, the deployment's
 * key prefix, and failure behaviour that fails closed. A command sent while Redis is unreachable rejects within
 * `COMMAND_TIMEOUT_MS` instead of queuing forever, so callers answer UNAVAILABLE; the connection itself retries
 * for as long as the process runs, so everything recovers when Redis returns.
 */
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';

export type RedisClient = Redis | Cluster;

export interface RedisSettings {
  /** The server, or the cluster's seed nodes. */
  urls: readonly string[];
  cluster: boolean;
  /** Prepended to every key (a deployment or a test run's namespace), e.g. `gr:`. */
  prefix: string;
}

/** Longest a command waits for its answer: past it, it rejects (the caller answers UNAVAILABLE). */
export const COMMAND_TIMEOUT_MS = 2000;

/** Reconnect delays: quick at first, then every 2 s for as long as it takes. */
function retryDelay(attempt: number): number {
  return Math.min(50 * 2 ** Math.min(attempt, 6), 2000);
}

const common: RedisOptions = {
  connectTimeout: 2000,
  commandTimeout: COMMAND_TIMEOUT_MS,
  // A command made while disconnected waits for the reconnect (bounded by commandTimeout), but is not retried on
  // another connection after it was sent: a write is never applied twice behind the caller's back.
  maxRetriesPerRequest: 0,
  retryStrategy: retryDelay,
  enableReadyCheck: true,
};

/**
 * Opens a connection (it connects in the background: the first commands wait for it, up to the command timeout).
 * `name` shows in `CLIENT LIST` (`greenroom:<name>`), to tell a node's connections apart. With `log`, an outage is
 * logged once (the error's code only: a message could hold the URL) and its end likewise.
 */
export function connectRedis(settings: RedisSettings, name: string, use: { subscriber?: boolean; log?: Logger } = {}): RedisClient {
  const client = open(settings, name, use.subscriber === true);
  // Without an 'error' listener ioredis prints every failed reconnect to stderr.
  let down = false;
  client.on('error', (err: NodeJS.ErrnoException) => {
    if (down) return;
    down = true;
    use.log?.warn({ connection: name, code: err.code ?? null }, 'redis cannot be reached; retrying');
  });
  client.on('ready', () => {
    if (!down) return;
    down = false;
    use.log?.info({ connection: name }, 'redis reachable again');
  });
  return client;
}

function open(settings: RedisSettings, name: string, subscriber: boolean): RedisClient {
  const urls = settings.urls.map((u) => new URL(u));
  const auth = (u: URL): RedisOptions => ({
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    ...(u.protocol === 'rediss:' ? { tls: {} } : {}),
  });
  const connectionName = `greenroom:${name}`;
  if (settings.cluster) {
    const options: ClusterOptions = {
      redisOptions: { ...common, ...auth(urls[0]!), connectionName },
      clusterRetryStrategy: retryDelay,
      enableOfflineQueue: true,
      slotsRefreshTimeout: 2000,
      // A subscriber on a cluster subscribes per shard (SSUBSCRIBE), never to classic pub/sub every node relays.
      shardedSubscribers: subscriber,
    };
    return new Cluster(
      urls.map((u) => ({ host: u.hostname, port: Number(u.port || 6379) })),
      options,
    );
  }
  const u = urls[0]!;
  const db = u.pathname.length > 1 ? Number(u.pathname.slice(1)) : 0;
  return new Redis({ ...common, ...auth(u), host: u.hostname, port: Number(u.port || 6379), db, connectionName });
}

/** Settings from the server's config. */
export function redisSettings(config: { redisUrls: string[]; redisCluster: boolean; redisPrefix: string }): RedisSettings {
  return { urls: config.redisUrls, cluster: config.redisCluster, prefix: config.redisPrefix };
}
