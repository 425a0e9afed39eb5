/**
 * The records the built-in actors keep, and the views of them that go on the wire. Every timestamp is epoch
 * milliseconds. Users are keyed by uid, sessions by sid, fingerprints by their hash; whatever refers to a user
 * holds its uid.
 */
import { z } from 'zod';
import { SESSION_END_REASONS, type FingerprintView, type SessionEndReason, type SessionView, type UserView } from '@greenroom/protocol';
import type { Store, StoredRecord } from '../store/store.js';
import type { Role } from './define.js';

export type { FingerprintView, SessionEndReason, SessionView, UserView };

/** A stored user: its wire view plus what never goes on the wire. */
export interface UserRecord extends UserView {
  [key: string]: unknown;
  role: Role;
  /** The username lowercased: usernames are unique regardless of case. */
  usernameKey: string;
  /** scrypt hash; null for guests, who cannot log in with a password. */
  passwordHash: string | null;
  /** When the password was last changed (absent: never since creation). A login racing a change is refused by it. */
  passwordChangedAt?: number | null;
}

/** What goes on the wire: never the password hash. */
export function userView(u: UserRecord): UserView {
  return { uid: u.uid, username: u.username, displayName: u.displayName, role: u.role, blocked: u.blocked, created: u.created, lastLogin: u.lastLogin };
}

/** What every stored session keeps, live or ended: its wire view, less the live counts. */
type SessionBase = Omit<SessionView, 'connections' | 'current'>;

/**
 * A session that has not ended: its refresh tokens still count until it expires (isLive says whether it has), so it
 * holds the token state that never goes on the wire.
 */
export type LiveSessionRecord = SessionBase & {
  ended?: undefined;
  revokedAt: null;
  revokeReason: null;
  /** `expiresAt` slides forward with each refresh, never past this. */
  absoluteExpiresAt: number;
  /** Hash of the current refresh token, and its generation (the counter inside the token). */
  refreshHash: string;
  generation: number;
  /** The token just replaced, accepted during the grace period; the pair it yields is sealed (never plain). */
  previousHash: string | null;
  rotatedAt: number | null;
  graceSealed: string | null;
};

/**
 * A session that is over (revoked, evicted, logged out, blocked, or found expired), kept until cleanup for the lists
 * and for the answer its tokens get (SESSION_REVOKED / SESSION_EXPIRED, decided by `revokedAt` and the expiry alone).
 * It holds no token state: that is dropped in the write that ends it.
 */
export type EndedSessionRecord = SessionBase & {
  ended: true;
  /** When it expired, or would have: sliding and absolute expiry folded into one, as nothing slides any more. */
  expiresAt: number;
};

export type SessionRecord = LiveSessionRecord | EndedSessionRecord;

/** An ended session's record: the fields it keeps, and `revokedAt`/`revokeReason` if `end` says it was revoked. */
export function endedSession(s: SessionRecord, end?: { at: number; reason: SessionEndReason }): EndedSessionRecord {
  return {
    ended: true,
    sid: s.sid,
    uid: s.uid,
    fingerprint: s.fingerprint,
    created: s.created,
    lastUsed: s.lastUsed,
    expiresAt: expiryOf(s),
    revokedAt: end ? end.at : s.revokedAt,
    revokeReason: end ? end.reason : s.revokeReason,
  };
}

/**
 * A stored session as this version reads it. Stores written before ended sessions were slimmed hold revoked
 * sessions with their token state: read as ended, that state is dropped here, so no code can act on it.
 */
export function readSession(raw: StoredRecord | undefined): SessionRecord | undefined {
  if (!raw) return undefined;
  const s = raw as SessionRecord;
  return s.ended !== true && s.revokedAt !== null ? endedSession(s) : s;
}

/** Whether a stored session still holds token state (a live one, or an ended one written by an older version). */
export function holdsTokenState(raw: StoredRecord): boolean {
  return raw.ended !== true;
}

export async function getSession(store: Store, sid: string): Promise<SessionRecord | undefined> {
  return readSession(await store.get('sessions', sid));
}

export async function sessionsOfUser(store: Store, uid: string): Promise<SessionRecord[]> {
  return (await store.findBy('sessions', 'uid', uid)).map((r) => readSession(r.value)!);
}

/**
 * One row per (fingerprint, uid): a device seen with several users keeps a row for each, so blocking a row blocks
 * exactly its user. Stored under `<fingerprint>/<uid>`; rows are found by their fields, not by the key's shape.
 */
export interface FingerprintRecord extends FingerprintView {
  [key: string]: unknown;
  /** The keyed hash of the server-issued device id (recognises a device the user logged in from before). */
  device?: string;
}

export function fingerprintView(f: FingerprintRecord): FingerprintView {
  return { fingerprint: f.fingerprint, uid: f.uid, firstSeen: f.firstSeen, lastSeen: f.lastSeen, count: f.count, blocked: f.blocked };
}

/** The rows of one device (every user seen on it), with their store ids. */
export async function deviceRows(store: Store, fingerprint: string): Promise<Array<{ id: string; value: FingerprintRecord }>> {
  return store.findBy<FingerprintRecord>('fingerprints', 'fingerprint', fingerprint);
}

export function isLive(s: SessionRecord, now: number): boolean {
  return !s.ended && s.revokedAt === null && expiryOf(s) > now;
}

/** When a session expires (or expired, or would have but for its end): the earlier of its sliding and absolute expiry. */
export function expiryOf(s: SessionRecord): number {
  return s.ended ? s.expiresAt : Math.min(s.expiresAt, s.absoluteExpiresAt);
}

// The views as schemas, for the events' JSON Schema (GET /actors); typed against the protocol's views.
export const userViewSchema: z.ZodType<UserView> = z.object({
  uid: z.string(),
  username: z.string(),
  displayName: z.string(),
  role: z.string(),
  blocked: z.boolean(),
  created: z.number(),
  lastLogin: z.number().nullable(),
});

export const sessionViewSchema: z.ZodType<SessionView> = z.object({
  sid: z.string(),
  uid: z.string(),
  fingerprint: z.string(),
  created: z.number(),
  lastUsed: z.number(),
  expiresAt: z.number(),
  revokedAt: z.number().nullable(),
  revokeReason: z.enum(SESSION_END_REASONS).nullable(),
  connections: z.number(),
  current: z.boolean().optional(),
});

export const fingerprintViewSchema: z.ZodType<FingerprintView> = z.object({
  fingerprint: z.string(),
  uid: z.string(),
  firstSeen: z.number(),
  lastSeen: z.number(),
  count: z.number(),
  blocked: z.boolean(),
});
