/**
 * The records the built-in actors keep, and the views of them that go on the wire. Every timestamp is epoch
 * milliseconds. Users are keyed by uid, sessions by sid, fingerprints by their hash; whatever refers to a user
 * holds its uid.
 */
import type { FingerprintView, SessionEnd, SessionView, UserView } from '@greenroom/protocol';
import type { Role } from './define.js';

export type { SessionView, UserView };

export interface UserRecord {
  [key: string]: unknown;
  uid: string;
  username: string;
  /** The username lowercased: usernames are unique regardless of case. */
  usernameKey: string;
  displayName: string;
  role: Role;
  blocked: boolean;
  created: number;
  lastLogin: number | null;
  /** scrypt hash; null for guests, who cannot log in with a password. */
  passwordHash: string | null;
}

/** What goes on the wire: never the password hash. */
export function userView(u: UserRecord): UserView {
  return { uid: u.uid, username: u.username, displayName: u.displayName, role: u.role, blocked: u.blocked, created: u.created, lastLogin: u.lastLogin };
}

/** Why a session ended; `blocked` closes its sockets with 4003, the others with 4001. */
export type SessionEndReason = SessionEnd;

export interface SessionRecord {
  [key: string]: unknown;
  sid: string;
  uid: string;
  fingerprint: string;
  created: number;
  lastUsed: number;
  /** Sliding expiry: pushed forward by each refresh, never past `absoluteExpiresAt`. */
  expiresAt: number;
  absoluteExpiresAt: number;
  revokedAt: number | null;
  revokeReason: SessionEndReason | null;
  /** Hash of the current refresh token, and its generation (the counter inside the token). */
  refreshHash: string;
  generation: number;
  /** The token just replaced, accepted during the grace period; the pair it yields is sealed (never plain). */
  previousHash: string | null;
  rotatedAt: number | null;
  graceSealed: string | null;
}

/** Stored as sent: a fingerprint record holds nothing secret. */
export interface FingerprintRecord extends FingerprintView {
  [key: string]: unknown;
}

export function isLive(s: SessionRecord, now: number): boolean {
  return s.revokedAt === null && s.expiresAt > now && s.absoluteExpiresAt > now;
}
