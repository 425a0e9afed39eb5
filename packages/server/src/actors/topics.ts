/**
 * One actor's topics on this server: who is subscribed to which topic (by connection, grouped by user for
 * presence). The registry keeps one per actor; everything here runs on the event loop between mailbox turns, so a
 * kick or an unsubscribe takes effect before the handler that caused it answers.
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

/** What a change of subscriptions did to presence: users who joined (first connection) or left (last one). */
export interface PresenceChange {
  topic: string;
  uid: string;
  change: 'joined' | 'left';
  connections: number;
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

  constructor(private readonly now: () => number = Date.now) {}

  /** Adds the connection to the topic; a closed connection is never added. */
  add(topic: string, sub: Subscriber): PresenceChange | null {
    if (sub.closed) return null;
    let t = this.topics.get(topic);
    if (!t) this.topics.set(topic, (t = { subscribers: new Map(), users: new Map() }));
    if (t.subscribers.has(sub.connectionId)) return null;
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
    return joined ? { topic, uid, change: 'joined', connections: user.connections.size } : null;
  }

  /** Removes one connection from one topic. */
  remove(topic: string, connectionId: string): PresenceChange | null {
    const t = this.topics.get(topic);
    const sub = t?.subscribers.get(connectionId);
    if (!t || !sub) return null;
    t.subscribers.delete(connectionId);
    this.byConnection.get(connectionId)?.delete(topic);
    if (this.byConnection.get(connectionId)?.size === 0) this.byConnection.delete(connectionId);
    let change: PresenceChange | null = null;
    const uid = sub.caller.uid;
    const user = uid !== null ? t.users.get(uid) : undefined;
    if (uid !== null && user) {
      user.connections.delete(connectionId);
      if (user.connections.size === 0) {
        t.users.delete(uid);
        change = { topic, uid, change: 'left', connections: 0 };
      }
    }
    if (t.subscribers.size === 0) this.topics.delete(topic);
    return change;
  }

  /** How many times `uid` has been kicked from `topic` (0 for a caller without a uid). */
  kicks(topic: string, uid: string | null): number {
    return uid === null ? 0 : (this.kicked.get(`${topic}\0${uid}`) ?? 0);
  }

  /** Removes every connection of `uid` from the topic (a kick). */
  removeUser(topic: string, uid: string): PresenceChange[] {
    this.kicked.set(`${topic}\0${uid}`, this.kicks(topic, uid) + 1);
    const connections = [...(this.topics.get(topic)?.users.get(uid)?.connections ?? [])];
    return connections.map((id) => this.remove(topic, id)).filter((c): c is PresenceChange => c !== null);
  }

  /** Removes a connection from all its topics (it closed). */
  removeConnection(connectionId: string): PresenceChange[] {
    const topics = [...(this.byConnection.get(connectionId) ?? [])];
    return topics.map((topic) => this.remove(topic, connectionId)).filter((c): c is PresenceChange => c !== null);
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

  presence(topic: string): PresenceEntry[] {
    const users = this.topics.get(topic)?.users ?? new Map<string, { connections: Set<string>; since: number }>();
    return [...users].map(([uid, u]) => ({ uid, connections: u.connections.size, since: u.since }));
  }
}
