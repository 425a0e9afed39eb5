/**
 * Seeds users, fingerprints and live sessions straight into the store, in a few batched writes.
 *
 * Why not `testing.issueSession`: it asks UserStore, FingerprintStore and SessionStore in turn, and each of those
 * actors awaits its own durable write inside its mailbox, so issuing N sessions costs about N store flushes, each
 * of which rewrites the whole file. That is right for a login, and ~250 sessions/s on a small store, but 20,000
 * sessions would take minutes. The records written here are the ones `SessionStore.Create` writes (same fields,
 * refresh token made and hashed by the server's own TokenService), so the server cannot tell them apart.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { Greenroom } from '@greenroom/server';
import type { WriteOp } from '@greenroom/server';
import type { FingerprintRecord, SessionRecord, UserRecord } from '../../../server/src/actors/records.js';
import { internals } from '../../../server/src/server.js';

export interface SeedRequest {
  users: number;
  sessionsPerUser: number;
  /** Sign an access token for each session (for WebSocket clients). */
  access: boolean;
  /** Return the refresh tokens (for refresh clients). */
  refresh: boolean;
  role?: string;
}

export interface SeededSession {
  uid: string;
  sid: string;
  accessToken?: string;
  refreshToken?: string;
}

const BATCH = 5_000;

export async function seed(server: Greenroom, req: SeedRequest): Promise<SeededSession[]> {
  const { store, tokens, config } = internals(server);
  const t = Date.now();
  const run = randomBytes(4).toString('hex');
  const out: SeededSession[] = [];
  let ops: WriteOp[] = [];
  const flush = async () => {
    if (ops.length > 0) await store.write(ops);
    ops = [];
  };
  for (let u = 0; u < req.users; u++) {
    const username = `bench-${run}-${u}`;
    const user: UserRecord = {
      uid: randomUUID(),
      username,
      usernameKey: username.toLowerCase(),
      displayName: username,
      role: req.role ?? 'user',
      blocked: false,
      created: t,
      lastLogin: t,
      passwordHash: null,
    };
    ops.push({ op: 'put', collection: 'users', id: user.uid, value: user });
    const fp: FingerprintRecord = { fingerprint: `fp_${randomBytes(12).toString('base64url')}`, uid: user.uid, firstSeen: t, lastSeen: t, count: req.sessionsPerUser, blocked: false };
    ops.push({ op: 'put', collection: 'fingerprints', id: fp.fingerprint, value: fp });
    for (let s = 0; s < req.sessionsPerUser; s++) {
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
      const seeded: SeededSession = { uid: user.uid, sid };
      if (req.access) seeded.accessToken = (await tokens.signAccess({ uid: user.uid, sid, role: user.role }, t)).token;
      if (req.refresh) seeded.refreshToken = refreshToken;
      out.push(seeded);
    }
    if (ops.length >= BATCH) await flush();
  }
  await flush();
  return out;
}
