/**
 * This node among the others: what createCore wires into the actors according to the store. With the embedded
 * store there is one node (local per-key queues, no peers). With the Redis store the node joins the node bus
 * under its lease, its per-key locks hold across nodes, and its effects reach the other nodes' sockets.
 */
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { KeyedQueue, type Locks } from '../runtime/keyed-queue.js';
import { NodeBus } from './node-bus.js';
import { ClusterPeers, singleNode, type Peers } from './peers.js';
import { connectRedis, redisSettings } from './redis.js';
import { RedisLocks } from './redis-locks.js';

export interface ThisNode {
  locks: Locks;
  peers: Peers;
  /** The node bus, with the Redis store; null on one node. */
  bus: NodeBus | null;
  /** False while the node does not hold its lease (it cannot see the others' effects): not ready, sockets closed. */
  healthy(): boolean;
  close(): Promise<void>;
}

export async function joinNodes(config: Config, log: Logger): Promise<ThisNode> {
  if (config.store !== 'redis') {
    return { locks: new KeyedQueue(), peers: singleNode, bus: null, healthy: () => true, close: async () => undefined };
  }
  const settings = redisSettings(config);
  const redis = connectRedis(settings, 'node', { log });
  const bus = await NodeBus.start(redis, settings, { leaseMs: config.nodeLeaseS * 1000, log });
  return {
    locks: new RedisLocks(redis, settings.prefix, { waitMs: config.askTimeoutMs }),
    peers: new ClusterPeers(bus, redis, settings.prefix),
    bus,
    healthy: () => bus.healthy,
    close: async () => {
      await bus.stop();
      redis.disconnect();
    },
  };
}
