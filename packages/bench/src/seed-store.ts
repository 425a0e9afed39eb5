/**
 * Writes a seeded store file straight to disk, for the store at scale: a million sessions seeded through logins (or
 * even through `seedSessions`, which holds the whole store in memory and flushes it in batches) would take far
 * longer than the measurement.
 *
 * The file is the store's snapshot layout: one valid JSON document with one record per line —
 *
 *   {
 *   "users":{
 *   "<uid>":{...}
 *   ,"<uid>":{...}
 *   }
 *   ,"fingerprints":{
 *   ...
 *   }
 *   }
 *
 * so a store that parses the whole file and one that reads it line by line both read it. The records are the ones
 * the server writes (packages/server/src/actors/records.ts, as `seedSessions` makes them), and every refresh token is
 * minted and hashed by the server's own TokenService: it runs in the bench's Greenroom process, given that
 * server's `tokens`, and the store is then opened by a server with the same secret.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';

export interface SeedStoreOptions {
  /** The store file to write (its directory must exist). */
  file: string;
  users: number;
  sessionsPerUser: number;
  /** Refresh tokens to hand back, spread evenly over the sessions (a sample: a million would not fit an IPC message). */
  sample: number;
}

export interface SeedStoreResult {
  sessions: number;
  bytes: number;
  ms: number;
  /** Refresh tokens of `sample` distinct sessions, in store order. */
  refreshTokens: string[];
}

/** The parts of the server's TokenService and config the records need. */
export interface SeedMinting {
  newRefreshToken(sid: string, generation: number): string;
  hash(token: string): string;
  refreshTtlS: number;
  refreshMaxTtlS: number;
}

/** Lines are gathered into chunks of about this size before each write. */
const CHUNK = 1 << 20;

export async function writeSeedStore(o: SeedStoreOptions, mint: SeedMinting): Promise<SeedStoreResult> {
  const started = performance.now();
  const t = Date.now();
  const out = createWriteStream(o.file, { mode: 0o600 });
  const failed = once(out, 'error').then(([err]) => Promise.reject(err as Error));
  failed.catch(() => undefined);
  let bytes = 0;
  let pending: string[] = [];
  let pendingLength = 0;
  const line = async (text: string) => {
    pending.push(text, '\n');
    pendingLength += text.length + 1;
    if (pendingLength < CHUNK) return;
    const chunk = pending.join('');
    pending = [];
    pendingLength = 0;
    bytes += Buffer.byteLength(chunk);
    if (!out.write(chunk)) await Promise.race([once(out, 'drain'), failed]);
  };

  // The users and their fingerprints first (uids are needed by the sessions), then the sessions.
  const run = randomBytes(4).toString('hex');
  const uids: string[] = new Array(o.users);
  const fingerprints: string[] = new Array(o.users);
  await line('{');
  await line('"users":{');
  for (let u = 0; u < o.users; u++) {
    const uid = randomUUID();
    uids[u] = uid;
    const username = `seed-${run}-${u}`;
    const user = { uid, username, usernameKey: username.toLowerCase(), displayName: username, role: 'user', blocked: false, created: t, lastLogin: t, passwordHash: null };
    await line(`${u === 0 ? '' : ','}${JSON.stringify(uid)}:${JSON.stringify(user)}`);
  }
  await line('}');
  await line(',"fingerprints":{');
  for (let u = 0; u < o.users; u++) {
    const fingerprint = `fp_${randomBytes(12).toString('base64url')}`;
    fingerprints[u] = fingerprint;
    const row = { fingerprint, uid: uids[u], firstSeen: t, lastSeen: t, count: o.sessionsPerUser, blocked: false };
    // Rows are keyed `<fingerprint>/<uid>`, as FingerprintStore keys the rows it makes.
    await line(`${u === 0 ? '' : ','}${JSON.stringify(`${fingerprint}/${uids[u]}`)}:${JSON.stringify(row)}`);
  }
  await line('}');
  await line(',"sessions":{');
  const sessions = o.users * o.sessionsPerUser;
  const every = Math.max(1, Math.floor(sessions / Math.max(1, o.sample)));
  const refreshTokens: string[] = [];
  const absoluteExpiresAt = t + mint.refreshMaxTtlS * 1000;
  const expiresAt = Math.min(t + mint.refreshTtlS * 1000, absoluteExpiresAt);
  let n = 0;
  for (let u = 0; u < o.users; u++) {
    for (let s = 0; s < o.sessionsPerUser; s++, n++) {
      const sid = randomUUID();
      const refreshToken = mint.newRefreshToken(sid, 0);
      if (n % every === 0 && refreshTokens.length < o.sample) refreshTokens.push(refreshToken);
      const session = {
        sid,
        uid: uids[u],
        fingerprint: fingerprints[u],
        created: t,
        lastUsed: t,
        expiresAt,
        absoluteExpiresAt,
        revokedAt: null,
        revokeReason: null,
        refreshHash: mint.hash(refreshToken),
        generation: 0,
        previousHash: null,
        rotatedAt: null,
        graceSealed: null,
      };
      await line(`${n === 0 ? '' : ','}${JSON.stringify(sid)}:${JSON.stringify(session)}`);
    }
  }
  await line('}');
  pending.push('}\n');
  const last = pending.join('');
  bytes += Buffer.byteLength(last);
  out.end(last);
  await Promise.race([once(out, 'finish'), failed]);
  // Written once, before any server opens it: a plain close is enough (no fsync; the bench does not survive a crash).
  await Promise.race([once(out, 'close'), failed]);
  return { sessions, bytes, ms: performance.now() - started, refreshTokens };
}
