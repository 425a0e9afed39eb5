/**
 * One actor's topics on this server: who is subscribed to which topic (by connection, grouped by user for
 * presence). The registry keeps one per actor; everything here runs on the event loop between mailbox turns, so a
 * kick or an unsubscribe takes effect before the handler that caused it answers.
 *
 * With several nodes (the Redis store) a `TopicRelay` carries what must cross them: pushes to the other nodes'
 * subscribers, presence counted over every node, kicks (cluster/topic-relay.ts). Subscriptions themselves stay here.
 */
import type { PushFrame } from '@greenroom/protocol';
import type { Caller, PresenceEntry } from './define.js';

/** A connection that can receive pushes; `caller` reflects its current role. */
export interface Subscriber {
  readonly connectionId: string;
  readonly caller: Caller;
  /** True once the connection has closed: a Subscribe still queued from before then must not add it back. */
  readonly closed?: boolean;
  push(frame: PushFrame): void;
}

export type { PresenceEntry };

/** What a change of subscriptions did to one user's presence on a topic, on this server. */
export interface MemberChange {
  topic: string;
  uid: string;
  /** Its connections subscribed to the topic here, after the change (0: none left). */
  connections: number;
  /** Its first connection here (joined), its last one gone (left), or neither (one more or one fewer). */
  change: 'joined' | 'left' | null;
}

/** Told when a topic gets its first subscriber here and when its last one leaves. */
export interface TopicWatch {
  opened?(topic: string): void;
  closed?(topic: string): void;
}

/**
 * What carries one actor's topics across nodes. Pushes are delivered here at once and handed to `publish` for the
 * other nodes' subscribers; presence lives in the store the nodes share, which announces joined and left to every
 * node (this one included); a kick reaches every node before the handler that made it answers.
 */
export interface TopicRelay {
  /** Where the other nodes' pushes, presence changes and kicks go on this node. */
  connect(node: RelayedNode): void;
  /** A topic's first subscriber here: listen for the other nodes' pushes to it. */
  open(actor: string, topic: string): void;
  /** Resolves once the other nodes' pushes to an open topic reach this node (rejects: UNAVAILABLE). */
  ready(actor: string, topic: string): Promise<void>;
  /** The topic's last subscriber here left. */
  close(actor: string, topic: string): void;
  /** Pushes delivered here, in the order delivered, for the other nodes' subscribers of their topics. */
  publish(actor: string, frames: readonly PushFrame[]): void;
  /**
   * A user's subscriptions to a topic changed here: writes what they are now, once the topic is listened to (a joined
   * it announces comes back to this node too); resolves once written. Never rejects: a write that fails is made
   * again from this node's members.
   */
  count(actor: string, topic: string, uid: string): Promise<void>;
  /** Who is subscribed to a topic on any node. */
  presence(actor: string, topic: string): Promise<PresenceEntry[]>;
  /** Makes every other node drop the user's subscriptions to the topic; resolves once they confirmed (rejects: UNAVAILABLE). */
  kick(actor: string, topic: string, uid: string): Promise<void>;
  /** Waits for the presence writes in flight (the node is stopping; its sockets have closed). */
  stop(): Promise<void>;
}

/** What a relay hands to this node's registry. */
export interface RelayedNode {
  /** Another node's push, or a presence change, for this node's subscribers of its topic. */
  deliver(actor: string, frame: PushFrame): void;
  /** Another node's kick. */
  kick(actor: string, topic: string, uid: string): void;
  /** This node's members of a topic. */
  members(actor: string, topic: string): PresenceEntry[];
  /** One user's subscriptions to a topic on this node (undefined: none). */
  member(actor: string, topic: string, uid: string): PresenceEntry | undefined;
  /** Whether the actor tells its subscribers who joined and left (`presence: true`). */
  announces(actor: string): boolean;
}

/** The push that tells a topic's subscribers a user joined it (first connection) or left it (last one). */
export function presenceFrame(actor: string, topic: string, uid: string, change: 'joined' | 'left', connections: number): PushFrame {
  return { event: 'PresenceChanged', from: actor, topic, payload: { topic, uid, change, connections } };
}

interface Topic {
  readonly subscribers: Map<string, Subscriber>;
  readonly users: Map<string, { connections: Set<string>; since: number }>;
}

export class Topics {
  private readonly topics = new Map<string, Topic>();
  /** connection id → the topics it is subscribed to (to clean up when it closes). */
  private readonly byConnection = new Map<string, Set<string>>();
  /** How many times each user was kicked from each topic: `topic\0uid` → count (a subscribe racing a kick loses). */
  private readonly kicked = new Map<string, number>();

  constructor(
    private readonly watch: TopicWatch = {},
    private readonly now: () => number = Date.now,
  ) {}

  /** Adds the connection to the topic; a closed connection is never added. */
  add(topic: string, sub: Subscriber): MemberChange | null {
    if (sub.closed || this.has(topic, sub.connectionId)) return null;
    let t = this.topics.get(topic);
    if (!t) {
      this.topics.set(topic, (t = { subscribers: new Map(), users: new Map() }));
      this.watch.opened?.(topic);
    }
    t.subscribers.set(sub.connectionId, sub);
    let mine = this.byConnection.get(sub.connectionId);
    if (!mine) this.byConnection.set(sub.connectionId, (mine = new Set()));
    mine.add(topic);
    const uid = sub.caller.uid;
    if (uid === null) return null;
    let user = t.users.get(uid);
    const joined = !user;
    if (!user) t.users.set(uid, (user = { connections: new Set(), since: this.now() }));
    user.connections.add(sub.connectionId);
    return { topic, uid, connections: user.connections.size, change: joined ? 'joined' : null };
  }

  /** Removes one connection from one topic. */
  remove(topic: string, connectionId: string): MemberChange | null {
    const t = this.topics.get(topic);
    const sub = t?.subscribers.get(connectionId);
    if (!t || !sub) return null;
    t.subscribers.delete(connectionId);
    this.byConnection.get(connectionId)?.delete(topic);
    if (this.byConnection.get(connectionId)?.size === 0) this.byConnection.delete(connectionId);
    let change: MemberChange | null = null;
    const uid = sub.caller.uid;
    const user = uid !== null ? t.users.get(uid) : undefined;
    if (uid !== null && user) {
      user.connections.delete(connectionId);
      const left = user.connections.size === 0;
      if (left) t.users.delete(uid);
      change = { topic, uid, connections: user.connections.size, change: left ? 'left' : null };
    }
    if (t.subscribers.size === 0) {
      this.topics.delete(topic);
      this.watch.closed?.(topic);
    }
    return change;
  }

  /** How many times `uid` has been kicked from `topic` (0 for a caller without a uid). */
  kicks(topic: string, uid: string | null): number {
    return uid === null ? 0 : (this.kicked.get(`${topic}\0${uid}`) ?? 0);
  }

  /** Removes every connection of `uid` from the topic (a kick). */
  removeUser(topic: string, uid: string): MemberChange[] {
    this.kicked.set(`${topic}\0${uid}`, this.kicks(topic, uid) + 1);
    const connections = [...(this.topics.get(topic)?.users.get(uid)?.connections ?? [])];
    return connections.map((id) => this.remove(topic, id)).filter((c): c is MemberChange => c !== null);
  }

  /** Removes a connection from all its topics (it closed). */
  removeConnection(connectionId: string): MemberChange[] {
    const topics = [...(this.byConnection.get(connectionId) ?? [])];
    return topics.map((topic) => this.remove(topic, connectionId)).filter((c): c is MemberChange => c !== null);
  }

  has(topic: string, connectionId: string): boolean {
    return this.topics.get(topic)?.subscribers.has(connectionId) ?? false;
  }

  subscribers(topic: string): Iterable<Subscriber> {
    return this.topics.get(topic)?.subscribers.values() ?? [];
  }

  /** Subscriptions, over every topic. */
  get size(): number {
    let n = 0;
    for (const t of this.topics.values()) n += t.subscribers.size;
    return n;
  }

  /** One user's subscriptions to the topic here (undefined: none). */
  member(topic: string, uid: string): PresenceEntry | undefined {
    const user = this.topics.get(topic)?.users.get(uid);
    return user && { uid, connections: user.connections.size, since: user.since };
  }

  /** Who is subscribed to the topic here. */
  presence(topic: string): PresenceEntry[] {
    const users = this.topics.get(topic)?.users ?? new Map<string, { connections: Set<string>; since: number }>();
    return [...users].map(([uid, u]) => ({ uid, connections: u.connections.size, since: u.since }));
  }
}
