/** The records the built-in actors send (docs/protocol.md). Every timestamp is epoch milliseconds. */
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
  revokeReason: string | null;
  connections: number;
  /** Only in SessionStore.GetOwn: the session this page is using. */
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

export interface Stats {
  connections: number;
  sessions: number;
  asksPerSecond: number;
  uptime: number;
}

/** Who is signed in on this page (from the login or refresh answer). */
export interface Me {
  uid: string;
  role: string;
  sid: string;
  accessExpiresAt: number;
}

export function isLive(s: SessionView, now = Date.now()): boolean {
  return s.revokedAt === null && s.expiresAt > now;
}
