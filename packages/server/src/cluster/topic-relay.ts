/**
 * App actors' topics across nodes sharing one Redis (SPEC §8): a push reaches the topic's subscribers on every node,
 * presence counts every node's members, a kick removes the user's subscriptions everywhere. Subscriptions stay in
 * each node's registry (actors/topics.ts); this carries what must cross nodes.
 *
 * Channels. Each topic of each actor has one, `<prefix>{t:<actor>:<topic>}:pushes`, which a node listens to while it
 * has a subscriber of that topic. A push is delivered at once to the subscribers of the node that published it, then
 * published on the topic's channel for the others, which deliver it to theirs (each checked against the actor's
 * `subscribers` rule, as on one node). The hash tag gives each topic its own slot: on a Redis Cluster (sharded
 * pub/sub) topics spread over the shards, and a node hears only the topics it serves.
 *
 * Order. Redis delivers one channel's messages in the order it took them, and a node publishes over one connection in
 * the order it delivered: every subscriber hears one node's pushes to a topic in the order they were published.
 * Pushes published at the same moment on two nodes reach every other node in one order (Redis's), but each publisher's
 * own subscribers hear its pushes first: subscribers on the two publishing nodes may see them interleaved otherwise.
 * There is no total order per topic across publishing nodes. (Positions per topic, SPEC §11, can give one: an offset
 * taken from a history kept under the same hash tag, in the script that publishes.)
 *
 * Presence. `<prefix>{t:<actor>:<topic>}:presence` is a hash, uid → JSON `{ <node>: [connections, since] }`. Each
 * node writes its own members' entries through one script, which also publishes on the topic's channel — atomically
 * with the change, so in the order of the changes — when a user's connections over all nodes go from none (joined) or
 * to none (left); every node, the writer included, delivers that from the channel. An entry counts while its node
 * holds its lease: reads skip the entries of nodes without one, and a node that sees another depart removes the
 * departed node's entries from the topics it serves, announcing the users who left with it (the script announces each
 * once, whichever node runs it first).
 *
 * Kicks go over the node bus as an effect every node applies and confirms (within 1 s), as a session's end does.
 */
import { ErrorCode, type PushFrame } from '@greenroom/protocol';
import type { Logger } from 'pino';
import type { PresenceEntry } from '../actors/define.js';
import { presenceFrame, type RelayedNode, type TopicRelay } from '../actors/topics.js';
import { GreenroomError } from '../errors.js';
import { withinCommandTime, type NodeBus } from './node-bus.js';
import type { RedisSettings } from './redis.js';

/** The node bus effect of a kick. */
const KICK = 'topic-kick';

/** A presence write that failed is made again (from this node's members) after this long, until it succeeds. */
const RETRY_MS = 1000;

/** What goes on a topic's channel: a push (`n`: the node that delivered it already) or a presence change (`j`). */
type ChannelMessage = { n: string; e: string; p: unknown } | { j: [uid: string, change: 'joined' | 'left', connections: number] };

interface ServedTopic {
  readonly actor: string;
  readonly topic: string;
  /** Resolves once the channel is listened to. */
  readonly ready: Promise<void>;
}

export class RedisTopicRelay implements TopicRelay {
  private node: RelayedNode | null = null;
  /** The topics with a subscriber here, by channel. */
  private readonly served = new Map<string, ServedTopic>();
  /** Topics whose presence write failed, by channel: written again whole. */
  private readonly dirty = new Map<string, { actor: string; topic: string }>();
  private retry: NodeJS.Timeout | null = null;
  private stopped = false;
  /** Whether Redis refused the last publish or presence write (one warning per outage, not one per command). */
  private failing = false;
  /** Presence writes in flight (a stop waits for them). */
  private readonly writing = new Set<Promise<void>>();
  private readonly script: string;

  constructor(
    private readonly bus: NodeBus,
    private readonly settings: RedisSettings,
    private readonly log: Logger,
  ) {
    this.script = presenceScript(settings.cluster ? 'SPUBLISH' : 'PUBLISH');
    bus.onEffect(KICK, (p) => {
      const { a, t, u } = (p ?? {}) as { a?: unknown; t?: unknown; u?: unknown };
      if (typeof a === 'string' && typeof t === 'string' && typeof u === 'string') this.node?.kick(a, t, u);
    });
    // A departed node's members leave; after a reconnect (or a lease regained) this node's entries are written again.
    bus.on('departed', (nodes) => this.rewrite(nodes));
    bus.on('resync', () => this.rewrite([]));
  }

  connect(node: RelayedNode): void {
    this.node = node;
  }

  open(actor: string, topic: string): void {
    const channel = this.channel(actor, topic);
    const listening = this.bus.listen(channel, (text) => this.receive(actor, topic, text)).catch(() => {
      throw unavailable();
    });
    // Once listening, a read clears the topic of entries left by nodes that are gone (announcing who left with them),
    // so this node's own writes count only live members.
    const ready = listening.then(() => this.presence(actor, topic).then(() => undefined, () => undefined));
    ready.catch(() => undefined);
    this.served.set(channel, { actor, topic, ready });
  }

  ready(actor: string, topic: string): Promise<void> {
    return this.served.get(this.channel(actor, topic))?.ready ?? Promise.resolve();
  }

  close(actor: string, topic: string): void {
    const channel = this.channel(actor, topic);
    this.served.delete(channel);
    this.bus.unlisten(channel);
  }

  publish(actor: string, frames: readonly PushFrame[]): void {
    for (const frame of frames) {
      const text = JSON.stringify({ n: this.bus.nodeId, e: frame.event, p: frame.payload } satisfies ChannelMessage);
      this.bus.publish(this.channel(actor, frame.topic), text).then(
        () => void (this.failing = false),
        (err: unknown) => this.failed(err, 'pushes cannot reach the other nodes'),
      );
    }
  }

  count(actor: string, topic: string, uid: string): Promise<void> {
    const write = () => {
      const now = this.node?.member(actor, topic, uid);
      return this.write(actor, topic, false, [], [uid, now?.connections ?? 0, now?.since ?? 0]);
    };
    return this.track(this.ready(actor, topic).then(write, write));
  }

  async presence(actor: string, topic: string): Promise<PresenceEntry[]> {
    let stored: Record<string, string>;
    try {
      stored = await withinCommandTime(this.bus.redis.hgetall(this.key(actor, topic)));
    } catch {
      throw unavailable();
    }
    const users: Array<{ uid: string; entries: Array<[node: string, connections: number, since: number]> }> = [];
    const named = new Set<string>();
    for (const [uid, text] of Object.entries(stored)) {
      const entries = parseEntries(text);
      for (const [node] of entries) named.add(node);
      users.push({ uid, entries });
    }
    // A node the last renewal did not list may have joined since, or died before this node could see it go.
    const listed = new Set(this.bus.nodes);
    const unlisted = [...named].filter((node) => node !== this.bus.nodeId && !listed.has(node));
    let gone: string[] = [];
    if (unlisted.length > 0) {
      try {
        const live = await this.bus.liveNow(unlisted);
        gone = unlisted.filter((node) => !live.has(node));
      } catch {
        throw unavailable();
      }
    }
    if (gone.length > 0) void this.rewriteTopic(actor, topic, gone);
    const skip = new Set(gone);
    const present: PresenceEntry[] = [];
    for (const { uid, entries } of users) {
      let connections = 0;
      let since = Infinity;
      for (const [node, n, s] of entries) {
        if (skip.has(node)) continue;
        connections += n;
        since = Math.min(since, s);
      }
      if (connections > 0) present.push({ uid, connections, since });
    }
    return present.sort((a, b) => a.since - b.since || (a.uid < b.uid ? -1 : a.uid > b.uid ? 1 : 0));
  }

  async kick(actor: string, topic: string, uid: string): Promise<void> {
    try {
      await this.bus.broadcast(KICK, { a: actor, t: topic, u: uid });
    } catch {
      throw unavailable();
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.retry) clearTimeout(this.retry);
    this.retry = null;
    // Each write is bounded: what could not be written is left to this node's lease.
    await Promise.allSettled([...this.writing]);
  }

  /**
   * Runs the presence script: this node's entries for `members` (`whole`: they are all it has in the topic, and the
   * entries of `gone` nodes go too). A write that fails marks the topic to be written again whole.
   */
  private async write(actor: string, topic: string, whole: boolean, gone: readonly string[], ...members: Array<[uid: string, connections: number, since: number]>): Promise<void> {
    const args = members.flatMap(([uid, n, since]) => [uid, String(n), String(since)]);
    const announce = this.node?.announces(actor) ? '1' : '0';
    try {
      await withinCommandTime(this.bus.redis.eval(this.script, 1, this.key(actor, topic), this.channel(actor, topic), this.bus.nodeId, whole ? '1' : '0', announce, gone.join(' '), ...args));
      this.failing = false;
    } catch (err) {
      this.failed(err, 'presence cannot be written; trying again');
      this.dirty.set(this.channel(actor, topic), { actor, topic });
      // A node that stops leaves what it could not remove to its lease.
      if (this.stopped) return;
      this.retry ??= setTimeout(() => {
        this.retry = null;
        this.rewriteDirty([]);
      }, RETRY_MS).unref();
    }
  }

  /** Writes again, whole, every topic this node serves and every one whose write failed. */
  private rewrite(gone: readonly string[]): void {
    for (const { actor, topic } of this.served.values()) this.dirty.set(this.channel(actor, topic), { actor, topic });
    this.rewriteDirty(gone);
  }

  private rewriteDirty(gone: readonly string[]): void {
    const topics = [...this.dirty.values()];
    this.dirty.clear();
    for (const { actor, topic } of topics) void this.rewriteTopic(actor, topic, gone);
  }

  /** Writes this node's members of a topic whole, removing the entries of `gone` nodes. */
  private rewriteTopic(actor: string, topic: string, gone: readonly string[]): Promise<void> {
    const mine = (this.node?.members(actor, topic) ?? []).map((m): [string, number, number] => [m.uid, m.connections, m.since]);
    return this.track(this.write(actor, topic, true, gone, ...mine));
  }

  private failed(err: unknown, what: string): void {
    if (!this.failing) this.log.warn({ err: (err as Error).message }, what);
    this.failing = true;
  }

  private track(write: Promise<void>): Promise<void> {
    this.writing.add(write);
    void write.finally(() => this.writing.delete(write));
    return write;
  }

  private receive(actor: string, topic: string, text: string): void {
    let msg: Partial<{ n: unknown; e: unknown; p: unknown; j: unknown }>;
    try {
      msg = JSON.parse(text) as typeof msg;
    } catch {
      return;
    }
    if (Array.isArray(msg.j)) {
      const [uid, change, connections] = msg.j as unknown[];
      if (typeof uid === 'string' && (change === 'joined' || change === 'left') && typeof connections === 'number') {
        this.node?.deliver(actor, presenceFrame(actor, topic, uid, change, connections));
      }
      return;
    }
    // This node delivered its own pushes when it made them.
    if (msg.n === this.bus.nodeId || typeof msg.e !== 'string') return;
    this.node?.deliver(actor, { event: msg.e, from: actor, topic, payload: msg.p });
  }

  private channel(actor: string, topic: string): string {
    return `${this.tagged(actor, topic)}:pushes`;
  }

  private key(actor: string, topic: string): string {
    return `${this.tagged(actor, topic)}:presence`;
  }

  /** The prefix and the topic's hash tag: its channel and its presence share a slot (the script publishes). */
  private tagged(actor: string, topic: string): string {
    return `${this.settings.prefix}{t:${keyPart(actor)}:${keyPart(topic)}}`;
  }
}

function unavailable(): GreenroomError {
  return new GreenroomError(ErrorCode.UNAVAILABLE, 'the store is not reachable', { retryAfterSeconds: 1 });
}

/**
 * A name as part of a key or channel: one to one, ASCII, without `{`, `}` or `:` — every other UTF-16 code unit as
 * `%xxxx` (a lone surrogate too, which would not survive the trip to Redis as UTF-8).
 */
function keyPart(name: string): string {
  return name.replace(/[^A-Za-z0-9._~-]/g, (c) => `%${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** One user's entries, as the script writes them: node → [connections, since]; anything else reads as none. */
function parseEntries(text: string): Array<[string, number, number]> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return [];
  }
  if (typeof value !== 'object' || value === null) return [];
  const entries: Array<[string, number, number]> = [];
  for (const [node, entry] of Object.entries(value)) {
    if (Array.isArray(entry) && typeof entry[0] === 'number' && typeof entry[1] === 'number' && entry[0] > 0) entries.push([node, entry[0], entry[1]]);
  }
  return entries;
}

/**
 * KEYS[1]: a topic's presence. ARGV[1]: its channel; [2] this node; [3] '1' if the members given are all this node
 * has in the topic ('0': only these changed); [4] '1' if the actor announces joined and left; [5] nodes whose entries
 * go (space-separated, only with [3] '1'); then per member: uid, connections here (0: none), since. Sets this node's
 * entries; with [3] '1', visits every user, removing this node's entries not given and the gone nodes'. Announces
 * joined when a user's connections over all nodes go from 0, left when they go to 0.
 */
function presenceScript(publish: 'PUBLISH' | 'SPUBLISH'): string {
  return `
local node, whole, announce = ARGV[2], ARGV[3] == '1', ARGV[4] == '1'
local gone = {}
for n in string.gmatch(ARGV[5], '%S+') do gone[n] = true end
local mine, uids = {}, {}
for i = 6, #ARGV, 3 do
  mine[ARGV[i]] = { tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2]) }
  uids[#uids + 1] = ARGV[i]
end
if whole then
  for _, uid in ipairs(redis.call('HKEYS', KEYS[1])) do
    if not mine[uid] then uids[#uids + 1] = uid end
  end
end
for _, uid in ipairs(uids) do
  local raw = redis.call('HGET', KEYS[1], uid)
  local entries = raw and cjson.decode(raw) or {}
  local before, after, kept, changed = 0, 0, {}, false
  for n, e in pairs(entries) do
    before = before + e[1]
    if n == node or gone[n] then
      changed = true
    else
      kept[n] = e
      after = after + e[1]
    end
  end
  local m = mine[uid]
  if m and m[1] > 0 then
    kept[node] = m
    after = after + m[1]
    changed = true
  end
  if changed then
    if after > 0 then redis.call('HSET', KEYS[1], uid, cjson.encode(kept)) else redis.call('HDEL', KEYS[1], uid) end
  end
  if announce and before == 0 and after > 0 then
    redis.call('${publish}', ARGV[1], cjson.encode({ j = { uid, 'joined', after } }))
  elseif announce and before > 0 and after == 0 then
    redis.call('${publish}', ARGV[1], cjson.encode({ j = { uid, 'left', 0 } }))
  end
end
return 1
`;
}
