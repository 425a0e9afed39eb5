/**
 * The records the built-in actors send on the wire (docs/protocol.md). Every timestamp is epoch milliseconds.
 * The server's stored records hold more (password hashes, token hashes); these are what a client may see.
 */
import type { SessionEndReason } from './codes.js';

export interface UserView {
  uid: string;
  username: string;
  displayName: string;
  role: string;
  blocked: boolean;
  created: number;
  lastLogin: number | null;
}

export interface SessionView {
  sid: string;
  uid: string;
  fingerprint: string;
  created: number;
  lastUsed: number;
  expiresAt: number;
  revokedAt: number | null;
  revokeReason: SessionEndReason | null;
  /** Live sockets of this session on this server. */
  connections: number;
  /** Only in SessionStore.GetOwn: the session the asking socket belongs to. */
  current?: boolean;
}

export interface FingerprintView {
  fingerprint: string;
  uid: string;
  firstSeen: number;
  lastSeen: number;
  count: number;
  blocked: boolean;
}

/** SessionStore.Stats. */
export interface ServerStats {
  connections: number;
  sessions: number;
  asksPerSecond: number;
  uptime: number;
}
