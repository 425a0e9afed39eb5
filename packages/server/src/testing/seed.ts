/**
 * Users, fingerprints and live sessions written straight into the store in a few batched writes, for tests and
 * benchmarks at scale.
 *
 * Why not `issueSession` N times: it asks UserStore, FingerprintStore and SessionStore in turn, and each awaits its
 * own durable write, so N sessions cost about N store flushes, each rewriting the whole file (~250 sessions/s on a
 * small store). The records written here are the ones `SessionStore.Create` writes (same fields, the refresh token
 * made and hashed by the server's own TokenService), so the server cannot tell them apart.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { FingerprintRecord, SessionRecord, UserRecord } from '../actors/records.js';
import { internals, type Greenroom } from '../server.js';
import type { WriteOp } from '../store/store.js';

export interface SeedOptions {
  users: number;
  /** Live sessions per user, all on the user's one fingerprint (default 1). */
  sessionsPerUser?: number;
  role?: string;
  /** Sign an access token for each session (for WebSocket clients). */
  access?: boolean;
  /** Return the refresh tokens (for refresh clients). */
  refresh?: boolean;
}

/** One seeded session, with the tokens asked for. */
export interface SeededSession {
  uid: string;
  sid: string;
  username: string;
  fingerprint: string;
  accessToken?: string;
  refreshToken?: string;
}

const BATCH = 5_000;

/** Writes `users` new users, each with one fingerprint and `sessionsPerUser` live sessions, in batches of 5,000 records. */
export async function seedSessions(server: Greenroom, options: SeedOptions): Promise<SeededSession[]> {
  const { store, tokens, config } = internals(server);
  const sessionsPerUser = options.sessionsPerUser ?? 1;
  const t = Date.now();
  const run = randomBytes(4).toString('hex');
  const out: SeededSession[] = [];
  let ops: WriteOp[] = [];
  const flush = async () => {
    if (ops.length > 0) await store.write(ops);
    ops = [];
  };
  for (let u = 0; u < options.users; u++) {
    const username = `seed-${run}-${u}`;
    const user: UserRecord = {
      uid: randomUUID(),
      username,
      usernameKey: username.toLowerCase(),
      displayName: username,
      role: options.role ?? 'user',
      blocked: false,
      created: t,
      lastLogin: t,
      passwordHash: null,
    };
    ops.push({ op: 'put', collection: 'users', id: user.uid, value: user });
    const fp: FingerprintRecord = {
      fingerprint: `fp_${randomBytes(12).toString('base64url')}`,
      uid: user.uid,
      firstSeen: t,
      lastSeen: t,
      count: sessionsPerUser,
      blocked: false,
    };
    ops.push({ op: 'put', collection: 'fingerprints', id: fp.fingerprint, value: fp });
    for (let s = 0; s < sessionsPerUser; s++) {
      const sid = randomUUID();
      const refreshToken = tokens.newRefreshToken(sid, 0);
      const absoluteExpiresAt = t + config.refreshMaxTtlS * 1000;
      const session: SessionRecord = {
        sid,
        uid: user.uid,
        fingerprint: fp.fingerprint,
        created: t,
        lastUsed: t,
        expiresAt: Math.min(t + config.refreshTtlS * 1000, absoluteExpiresAt),
        absoluteExpiresAt,
        revokedAt: null,
        revokeReason: null,
        refreshHash: tokens.hash(refreshToken),
        generation: 0,
        previousHash: null,
        rotatedAt: null,
        graceSealed: null,
      };
      ops.push({ op: 'put', collection: 'sessions', id: sid, value: session });
      const seeded: SeededSession = { uid: user.uid, sid, username, fingerprint: fp.fingerprint };
      if (options.access) seeded.accessToken = (await tokens.signAccess({ uid: user.uid, sid, role: user.role }, t)).token;
      if (options.refresh) seeded.refreshToken = refreshToken;
      out.push(seeded);
    }
    if (ops.length >= BATCH) await flush();
  }
  await flush();
  return out;
}
