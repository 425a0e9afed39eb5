/**
 * The node bus: how Greenroom nodes sharing one Redis know of each other and tell each other things.
 *
 * - Membership under a lease: each node renews its entry in a sorted set (score: Redis's own clock + the lease,
 *   so the nodes' clocks never matter) every third of the lease. A node that stops renewing (killed, cut off) drops
 *   out of everyone's view once its lease has run out, and with it whatever it registered.
 * - Effects with confirmation: `broadcast` publishes an effect to every node and resolves once each node that got it
 *   has applied it and said so, or after `CONFIRM_MS` (a dead or cut-off node does not hold a caller back; it closes
 *   its own sockets when its lease runs out). Redis's PUBLISH answers how many subscribers received the message, so
 *   the sender knows how many confirmations to wait for without a membership read.
 * - Fail closed: a node that has not renewed its lease for a whole lease is `lost`: the server closes its sockets
 *   (1013) and turns unready, because it can no longer see revocations. A subscriber connection that dropped may
 *   have missed effects, so after it returns the node re-checks what it holds (`onResync`).
 *
 * - Channels of their own: `listen` hands a channel's messages to a handler while this node wants them (the topics
 *   of app actors, cluster/topic-relay.ts: one channel per topic, each under the topic's hash tag, so on a Cluster
 *   their traffic spreads over the shards).
 *
 * Standalone Redis uses classic pub/sub; a Redis Cluster uses sharded pub/sub (SPUBLISH/SSUBSCRIBE). The bus's own
 * channels all carry one hash tag so every node subscribes to them on the same shard.
 */
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { COMMAND_TIMEOUT_MS, connectRedis, type RedisClient, type RedisSettings } from './redis.js';

/** How long a broadcast waits for the nodes' confirmations (SPEC §8: 1 s). */
export const CONFIRM_MS = 1000;

/** Departed nodes remembered (a node restarted with a new id each time; old ones are dropped first). */
const MAX_GONE = 256;

type Handler = (payload: unknown) => void;

interface Envelope {
  /** The sending node. */
  n: string;
  /** The message id (confirmations name it); absent for messages that need none. */
  i?: string;
  k: string;
  p: unknown;
}

export interface NodeBusOptions {
  leaseMs: number;
  log: Logger;
}

/**
 * Events: `lost` (the lease ran out: the node cannot know what others did meanwhile; close every socket, stop
 * serving), `regained` (the lease is held again), `resync` (effects may have been missed while the subscriber was
 * away: re-check what is held), `departed` (nodes seen live are gone, stopped or past their lease: what they held is too).
 */
export class NodeBus extends EventEmitter<{ lost: []; regained: []; resync: []; departed: [nodes: string[]] }> {
  readonly nodeId = randomUUID();
  private readonly handlers = new Map<string, Handler>();
  /** Channels listened to (`listen`), and what each message of one is handed to. */
  private readonly channels = new Map<string, (text: string) => void>();
  /** Broadcasts awaiting confirmations: how many arrived, and (once PUBLISH answered) how many are due. */
  private readonly waiting = new Map<string, { confirmed: number; due: number; done: () => void }>();
  private readonly sub: RedisClient;
  private readonly membersKey: string;
  private readonly channel: string;
  private readonly ackChannel: string;
  private readonly renewer: NodeJS.Timeout;
  private lastRenewed = 0;
  private lost = false;
  private subscribedOnce = false;
  private stopped = false;
  /** The nodes whose leases were current at the last renewal (this one included). */
  private live: readonly string[] = [];
  /** Nodes seen live once and gone since (their leases ran out), most recent last; bounded. */
  private readonly gone = new Set<string>();

  private constructor(
    private readonly pub: RedisClient,
    private readonly settings: RedisSettings,
    private readonly options: NodeBusOptions,
  ) {
    super();
    const { prefix } = settings;
    this.membersKey = `${prefix}{nodes}:live`;
    this.channel = `${prefix}{bus}:effects`;
    this.ackChannel = `${prefix}{bus}:ack:${this.nodeId}`;
    this.sub = connectRedis(settings, 'bus', { subscriber: true, log: options.log });
    const onMessage = (channel: string, text: string) => this.receive(channel, text);
    this.sub.on(settings.cluster ? 'smessage' : 'message', onMessage);
    // ioredis re-subscribes by itself after a reconnect; what was published meanwhile is gone, hence the resync.
    this.sub.on('ready', () => {
      if (this.subscribedOnce && !this.stopped) this.emit('resync');
    });
    this.renewer = setInterval(() => void this.renew(), Math.max(100, Math.floor(options.leaseMs / 3))).unref();
  }

  /**
   * Joins the bus: subscribes and takes the first lease. Resolves once both are done — or, if Redis cannot be
   * reached now, at once: the node then starts unready and joins as soon as Redis answers.
   */
  static async start(pub: RedisClient, settings: RedisSettings, options: NodeBusOptions): Promise<NodeBus> {
    const bus = new NodeBus(pub, settings, options);
    await Promise.all([bus.subscribe(), bus.renew()]);
    return bus;
  }

  /** Registers what this node does when another node's effect of this kind arrives. */
  onEffect(kind: string, handler: Handler): void {
    this.handlers.set(kind, handler);
  }

  /** This node holds its lease (it has renewed it within the lease): it may serve. */
  get healthy(): boolean {
    return !this.lost && this.lastRenewed > 0 && Date.now() - this.lastRenewed < this.options.leaseMs;
  }

  /** The live nodes as of the last renewal. */
  get nodes(): readonly string[] {
    return this.live;
  }

  /** Nodes this one saw live and whose leases have run out since: what they registered no longer counts. */
  get departed(): string[] {
    return [...this.gone];
  }

  /** The node's command connection, shared by its parts (locks, peers, topics): one connection keeps their order. */
  get redis(): RedisClient {
    return this.pub;
  }

  /**
   * Which of these nodes hold their lease now, on Redis's clock: for names found in shared state that the last
   * renewal did not list (a node that joined since, or one that died before this node could see it).
   */
  async liveNow(nodes: readonly string[]): Promise<Set<string>> {
    if (nodes.length === 0) return new Set();
    return new Set((await withinCommandTime(this.pub.eval(LIVE, 1, this.membersKey, ...nodes))) as string[]);
  }

  /**
   * Applies an effect on every other node (the caller applies it here itself); resolves when every node that
   * received it confirmed (at most CONFIRM_MS). Rejects only if it could not be published at all (Redis unreachable).
   */
  async broadcast(kind: string, payload: unknown): Promise<void> {
    const id = randomUUID();
    let done!: () => void;
    const allConfirmed = new Promise<void>((resolve) => (done = resolve));
    // Confirmations may arrive before PUBLISH answers: they are counted until the number due is known.
    const entry = { confirmed: 0, due: Number.POSITIVE_INFINITY, done };
    this.waiting.set(id, entry);
    try {
      const received = await withinCommandTime(this.publish(this.channel, JSON.stringify({ n: this.nodeId, i: id, k: kind, p: payload } satisfies Envelope)));
      // This node's own subscriber is among those that received it; it does not confirm to itself.
      entry.due = received - 1;
      if (entry.confirmed >= entry.due) return;
      const timer = setTimeout(done, CONFIRM_MS);
      await allConfirmed;
      clearTimeout(timer);
    } finally {
      this.waiting.delete(id);
    }
  }

  /** Publishes on a channel of its own (one whose hash tag the caller chose); no confirmation. */
  async publish(channel: string, text: string): Promise<number> {
    // SPUBLISH answers the subscribers of the channel's shard, as PUBLISH answers those of the server.
    return Number(await (this.settings.cluster ? this.pub.spublish(channel, text) : this.pub.publish(channel, text)));
  }

  /**
   * Hands each message of `channel` (one whose hash tag the caller chose) to `handler` until `unlisten`; resolves
   * once Redis has confirmed the subscription, so whatever is published from then on arrives. After a reconnect
   * the subscription is renewed by itself; what was published meanwhile is gone (`resync`).
   */
  async listen(channel: string, handler: (text: string) => void): Promise<void> {
    this.channels.set(channel, handler);
    await withinCommandTime(this.settings.cluster ? this.sub.ssubscribe(channel) : this.sub.subscribe(channel));
  }

  /** Stops listening to a channel (its messages still in flight are dropped). */
  unlisten(channel: string): void {
    if (!this.channels.delete(channel)) return;
    // Sent in order after the channel's SUBSCRIBE on the same connection; if Redis is away, the reconnect drops it.
    (this.settings.cluster ? this.sub.sunsubscribe(channel) : this.sub.unsubscribe(channel)).catch(() => undefined);
  }

  /** Stops renewing, leaves the member set (so others stop waiting for this node), and closes the subscriber. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.renewer);
    await withinCommandTime(this.pub.zrem(this.membersKey, this.nodeId)).catch(() => undefined);
    this.sub.disconnect();
  }

  private async subscribe(): Promise<void> {
    try {
      if (this.settings.cluster) {
        await this.sub.ssubscribe(this.channel, this.ackChannel);
      } else {
        await this.sub.subscribe(this.channel, this.ackChannel);
      }
      this.subscribedOnce = true;
    } catch (err) {
      // Not reachable yet: ioredis subscribes once it connects (its offline queue keeps the command).
      this.options.log.warn({ err: (err as Error).message }, 'node bus: cannot subscribe yet; retrying');
      setTimeout(() => void (this.stopped ? undefined : this.subscribe()), 1000).unref();
    }
  }

  /**
   * Renews the lease and reads who else is live, in one script on Redis's clock; drops members whose lease ran out.
   * Notices a lost lease (no renewal for a whole lease) and its return.
   */
  private async renew(): Promise<void> {
    if (this.stopped) return;
    try {
      const live = (await this.pub.eval(RENEW, 1, this.membersKey, this.nodeId, String(this.options.leaseMs))) as string[];
      const now = new Set(live);
      const departed = this.live.filter((node) => !now.has(node));
      for (const node of departed) this.gone.add(node);
      for (const node of live) this.gone.delete(node); // back after its lease ran out
      while (this.gone.size > MAX_GONE) this.gone.delete(this.gone.values().next().value!);
      this.live = live;
      this.lastRenewed = Date.now();
      if (this.lost) {
        this.lost = false;
        this.options.log.info({ node: this.nodeId }, 'node lease regained');
        this.emit('resync');
        this.emit('regained');
      }
      if (departed.length > 0) this.emit('departed', departed);
    } catch (err) {
      if (!this.lost && this.lastRenewed > 0 && Date.now() - this.lastRenewed >= this.options.leaseMs) {
        this.lost = true;
        this.options.log.error({ node: this.nodeId, err: (err as Error).message }, 'node lease lost: closing sockets');
        this.emit('lost');
      }
    }
  }

  private receive(channel: string, text: string): void {
    const listener = this.channels.get(channel);
    if (listener) return listener(text);
    let msg: Envelope & { ack?: string };
    try {
      msg = JSON.parse(text) as Envelope & { ack?: string };
    } catch {
      return;
    }
    if (channel === this.ackChannel) {
      const entry = msg.ack === undefined ? undefined : this.waiting.get(msg.ack);
      if (entry && ++entry.confirmed >= entry.due) entry.done();
      return;
    }
    if (msg.n === this.nodeId) return; // its sender applied it itself
    this.apply(msg.k, msg.p);
    if (msg.i !== undefined) {
      const ack = `${this.settings.prefix}{bus}:ack:${msg.n}`;
      this.publish(ack, JSON.stringify({ ack: msg.i, n: this.nodeId })).catch(() => undefined);
    }
  }

  private apply(kind: string, payload: unknown): void {
    const handler = this.handlers.get(kind);
    if (!handler) return;
    try {
      handler(payload);
    } catch (err) {
      this.options.log.error({ err, kind }, 'node bus: an effect failed');
    }
  }
}

/**
 * Rejects once a command's time has passed without an answer. A standalone client times its commands out by itself;
 * a Cluster client that has lost its connections queues them without a deadline until it reconnects, and the bus
 * never waits on Redis longer than a command would (a stop, a broadcast, a listen).
 */
export function withinCommandTime<T>(work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('Redis did not answer in time')), COMMAND_TIMEOUT_MS);
  });
  return Promise.race([work, late]).finally(() => clearTimeout(timer));
}

/**
 * KEYS[1]: the member set; ARGV: this node, the lease in ms. Renews this node's lease on Redis's clock, drops
 * members past theirs, and answers the live members.
 */
const RENEW = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
return redis.call('ZRANGE', KEYS[1], 0, -1)
`;

/** KEYS[1]: the member set; ARGV: nodes. Answers those whose lease has not run out, on Redis's clock. */
const LIVE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local live = {}
for _, node in ipairs(ARGV) do
  local score = redis.call('ZSCORE', KEYS[1], node)
  if score and tonumber(score) > now then live[#live + 1] = node end
end
return live
`;
