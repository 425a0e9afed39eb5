/** The records the built-in actors send are the protocol's views (docs/protocol.md); these are the page's own. */
import type { SessionView } from '@greenroom/protocol';

export type { FingerprintView, ServerStats as Stats, SessionView, UserView } from '@greenroom/protocol';

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
