/**
 * The other nodes, as SessionStore sees them. On one node there are none (`singleNode`); on several sharing a Redis
 * (`ClusterPeers`) an effect that must reach every socket — a session ended, a role changed — goes over the node bus
 * and answers once every node confirmed it (or 1 s passed, node-bus.ts), and connection registrations are kept in
 * Redis under the node's lease so that the per-user and per-session quotas count every node's sockets and a dead
 * node's registrations stop counting once its lease has run out.
 */
import type { CloseSpec } from '@greenroom/protocol';
import { ErrorCode } from '@greenroom/protocol';
import { GreenroomError } from '../errors.js';
import type { NodeBus } from './node-bus.js';
import type { RedisClient } from './redis.js';

/** What a node does when another node's effect arrives: applied synchronously to its own sockets. */
export interface PeerEffects {
  closeSessions(sids: readonly string[], close: CloseSpec): void;
  setRole(uid: string, role: string): void;
}

export interface Peers {
  /** Registers a connection across nodes, or throws RATE_LIMITED past the quotas counted over every node. */
  admit(connection: { id: string; uid: string; sid: string }, limits: { perUser: number; perSession: number }): Promise<void>;
  /** Removes a connection's registration (it closed). */
  release(connection: { id: string; uid: string }): Promise<void>;
  /** Closes the sessions' sockets on every other node; resolves once they confirmed (at most 1 s). */
  closeSessions(sids: readonly string[], close: CloseSpec): Promise<void>;
  /** Applies a role to the user's sockets on every other node; resolves once they confirmed (at most 1 s). */
  setRole(uid: string, role: string): Promise<void>;
  /** What this node does with the others' effects. */
  handle(effects: PeerEffects): void;
  /** Open connections of the user's sessions over every node, by sid; null on one node (its own maps know). */
  connections(uid: string): Promise<Map<string, number> | null>;
}

/** One node: nothing to tell anyone; the node's own maps hold every registration. */
export const singleNode: Peers = {
  admit: async () => undefined,
  release: async () => undefined,
  closeSessions: async () => undefined,
  setRole: async () => undefined,
  handle: () => undefined,
  connections: async () => null,
};

export class ClusterPeers implements Peers {
  constructor(
    private readonly bus: NodeBus,
    private readonly redis: RedisClient,
    private readonly prefix: string,
  ) {}

  async admit(connection: { id: string; uid: string; sid: string }, limits: { perUser: number; perSession: number }): Promise<void> {
    let refused: number;
    try {
      refused = Number(
        await this.redis.eval(ADMIT, 1, this.connectionsKey(connection.uid), connection.id, `${this.bus.nodeId} ${connection.sid}`, String(limits.perUser), String(limits.perSession), this.bus.departed.join(' ')),
      );
    } catch {
      throw new GreenroomError(ErrorCode.UNAVAILABLE, 'the store is not reachable', { retryAfterSeconds: 1 });
    }
    if (refused === 1) throw new GreenroomError(ErrorCode.RATE_LIMITED, 'too many connections for this user', { retryAfterSeconds: 5 });
    if (refused === 2) throw new GreenroomError(ErrorCode.RATE_LIMITED, 'too many connections for this session', { retryAfterSeconds: 5 });
  }

  async release(connection: { id: string; uid: string }): Promise<void> {
    // A registration that cannot be removed now stops counting when this node's lease runs out.
    await this.redis.hdel(this.connectionsKey(connection.uid), connection.id).catch(() => undefined);
  }

  closeSessions(sids: readonly string[], close: CloseSpec): Promise<void> {
    return sids.length === 0 ? Promise.resolve() : this.bus.broadcast('close-sessions', { sids, close });
  }

  setRole(uid: string, role: string): Promise<void> {
    return this.bus.broadcast('set-role', { uid, role });
  }

  handle(effects: PeerEffects): void {
    this.bus.onEffect('close-sessions', (p) => {
      const { sids, close } = p as { sids: string[]; close: CloseSpec };
      effects.closeSessions(sids, close);
    });
    this.bus.onEffect('set-role', (p) => {
      const { uid, role } = p as { uid: string; role: string };
      effects.setRole(uid, role);
    });
  }

  async connections(uid: string): Promise<Map<string, number>> {
    let all: Record<string, string>;
    try {
      all = await this.redis.hgetall(this.connectionsKey(uid));
    } catch {
      throw new GreenroomError(ErrorCode.UNAVAILABLE, 'the store is not reachable', { retryAfterSeconds: 1 });
    }
    const gone = new Set(this.bus.departed);
    const bySid = new Map<string, number>();
    for (const entry of Object.values(all)) {
      const space = entry.indexOf(' ');
      if (gone.has(entry.slice(0, space))) continue;
      const sid = entry.slice(space + 1);
      bySid.set(sid, (bySid.get(sid) ?? 0) + 1);
    }
    return bySid;
  }

  /** One hash per user, in the user's slot: connection id → "<node> <sid>". */
  private connectionsKey(uid: string): string {
    return `${this.prefix}{u:${uid}}:connections`;
  }
}

/**
 * KEYS[1]: the user's connections; ARGV: connection id, "<node> <sid>", max per user, max per session, the nodes
 * whose lease has run out (space-separated). Drops those nodes' registrations, counts the rest (a node this one has
 * not seen yet counts: it may have joined a moment ago), and registers the connection unless that would pass a
 * quota: 0 registered, 1 the user's quota, 2 the session's.
 */
const ADMIT = `
local gone = {}
for node in string.gmatch(ARGV[5], '%S+') do gone[node] = true end
local sid = string.match(ARGV[2], ' (.*)$')
local all = redis.call('HGETALL', KEYS[1])
local user, session = 0, 0
for i = 1, #all, 2 do
  local node, s = string.match(all[i + 1], '^(%S+) (.*)$')
  if not gone[node] then
    user = user + 1
    if s == sid then session = session + 1 end
  else
    redis.call('HDEL', KEYS[1], all[i])
  end
end
if user >= tonumber(ARGV[3]) then return 1 end
if session >= tonumber(ARGV[4]) then return 2 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 0
`;
