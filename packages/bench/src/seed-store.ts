/**
 * Seeds a store at scale, for the store-at-scale measurements: a million sessions seeded through logins (or even
 * through `seedSessions`, which awaits one batch after another) would take far longer than the measurement.
 *
 * The records go to a store file written straight to disk (the embedded store's, opened later by a server), to a
 * running server's own store through its write API in large batches several at a time (the Redis store, which the
 * measured nodes then share), or to both: the same records and tokens in each, so two stores are measured on the
 * same data. The file is the store's snapshot layout: one valid JSON document with one record per line —
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
 * the server writes (packages/server/src/actors/records.ts, as `seedSessions` makes them), and every token is
 * minted (and a refresh token hashed) by the server's own TokenService: this runs in the bench's Greenroom process,
 * given that server's `tokens`, and the stores are then opened by servers with the same secret.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import type { Store, WriteOp } from '@greenroom/server';

export interface SeedStoreOptions {
  /** A store file to write (its directory must exist). */
  file?: string;
  /** Put the records into the writing server's own store too. */
  store?: boolean;
  users: number;
  sessionsPerUser: number;
  /** Sessions whose tokens are handed back, spread evenly over the store (a sample: a million would not fit an IPC message). */
  sample: number;
  /** Hand back an access token of each sampled session too (for handshakes). */
  access?: boolean;
}

export interface SeedStoreResult {
  sessions: number;
  /** The store file's size; 0 without a file. */
  bytes: number;
  ms: number;
  /** Refresh tokens of `sample` distinct sessions, in store order. */
  refreshTokens: string[];
  /** Access tokens of the same sessions, in the same order, when asked for. */
  accessTokens?: string[];
}

/** The parts of the server's TokenService and config the records need. */
export interface SeedMinting {
  newRefreshToken(sid: string, generation: number): string;
  hash(token: string): string;
  signAccess(claims: { uid: string; sid: string; role: string }, now: number): Promise<string>;
  refreshTtlS: number;
  refreshMaxTtlS: number;
}

/** Where seeded records go, one collection after another (all of a collection's records together). */
interface SeedSink {
  put(collection: string, id: string, value: Record<string, unknown>): Promise<void>;
  end(): Promise<void>;
}

export async function writeSeedStore(o: SeedStoreOptions, mint: SeedMinting, store?: Store): Promise<SeedStoreResult> {
  const started = performance.now();
  const t = Date.now();
  const file = o.file === undefined ? null : fileSink(o.file);
  const sinks: SeedSink[] = [...(file ? [file] : []), ...(store ? [storeSink(store)] : [])];
  const put = async (collection: string, id: string, value: Record<string, unknown>) => {
    for (const sink of sinks) await sink.put(collection, id, value);
  };

  // The users and their fingerprints first (uids are needed by the sessions), then the sessions.
  const run = randomBytes(4).toString('hex');
  const uids: string[] = new Array(o.users);
  const fingerprints: string[] = new Array(o.users);
  for (let u = 0; u < o.users; u++) {
    const uid = randomUUID();
    uids[u] = uid;
    const username = `seed-${run}-${u}`;
    await put('users', uid, { uid, username, usernameKey: username.toLowerCase(), displayName: username, role: 'user', blocked: false, created: t, lastLogin: t, passwordHash: null });
  }
  for (let u = 0; u < o.users; u++) {
    const fingerprint = `fp_${randomBytes(12).toString('base64url')}`;
    fingerprints[u] = fingerprint;
    // Rows are keyed `<fingerprint>/<uid>`, as FingerprintStore keys the rows it makes.
    await put('fingerprints', `${fingerprint}/${uids[u]}`, { fingerprint, uid: uids[u], firstSeen: t, lastSeen: t, count: o.sessionsPerUser, blocked: false });
  }
  const sessions = o.users * o.sessionsPerUser;
  const every = Math.max(1, Math.floor(sessions / Math.max(1, o.sample)));
  const refreshTokens: string[] = [];
  const accessTokens: string[] = [];
  const absoluteExpiresAt = t + mint.refreshMaxTtlS * 1000;
  const expiresAt = Math.min(t + mint.refreshTtlS * 1000, absoluteExpiresAt);
  let n = 0;
  for (let u = 0; u < o.users; u++) {
    for (let s = 0; s < o.sessionsPerUser; s++, n++) {
      const sid = randomUUID();
      const refreshToken = mint.newRefreshToken(sid, 0);
      if (n % every === 0 && refreshTokens.length < o.sample) {
        refreshTokens.push(refreshToken);
        if (o.access) accessTokens.push(await mint.signAccess({ uid: uids[u]!, sid, role: 'user' }, t));
      }
      await put('sessions', sid, {
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
      });
    }
  }
  for (const sink of sinks) await sink.end();
  return { sessions, bytes: file?.bytes() ?? 0, ms: performance.now() - started, refreshTokens, ...(o.access ? { accessTokens } : {}) };
}

/** Lines are gathered into chunks of about this size before each write. */
const CHUNK = 1 << 20;

/** The store file, line by line in the layout above. */
function fileSink(path: string): SeedSink & { bytes(): number } {
  const out = createWriteStream(path, { mode: 0o600 });
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
  let collection: string | null = null;
  let first = true;
  return {
    put: async (name, id, value) => {
      if (name !== collection) {
        if (collection === null) await line('{');
        else await line('}');
        await line(`${collection === null ? '' : ','}${JSON.stringify(name)}:{`);
        collection = name;
        first = true;
      }
      await line(`${first ? '' : ','}${JSON.stringify(id)}:${JSON.stringify(value)}`);
      first = false;
    },
    end: async () => {
      await line(collection === null ? '{' : '}');
      pending.push('}\n');
      const last = pending.join('');
      bytes += Buffer.byteLength(last);
      out.end(last);
      await Promise.race([once(out, 'finish'), failed]);
      // Written once, before any server opens it: a plain close is enough (no fsync; the bench does not survive a crash).
      await Promise.race([once(out, 'close'), failed]);
    },
    bytes: () => bytes,
  };
}

/**
 * Records per write, and writes in flight: each batch is one write of the store (one script on a standalone Redis),
 * large enough that round trips do not count, small enough not to hold Redis up for long (others may share it).
 */
const STORE_BATCH = 2_000;
const STORE_PARALLEL = 4;

/** A running server's store, through its own write API. */
function storeSink(store: Store): SeedSink {
  let ops: WriteOp[] = [];
  const writing = new Set<Promise<void>>();
  let failure: Error | undefined;
  const flush = async () => {
    const write: Promise<void> = store.write(ops).then(
      () => void writing.delete(write),
      (err: Error) => {
        failure ??= err;
        writing.delete(write);
      },
    );
    ops = [];
    writing.add(write);
    while (writing.size >= STORE_PARALLEL) await Promise.race(writing);
    if (failure) throw failure;
  };
  return {
    put: async (collection, id, value) => {
      ops.push({ op: 'put', collection, id, value });
      if (ops.length >= STORE_BATCH) await flush();
    },
    end: async () => {
      if (ops.length > 0) await flush();
      await Promise.all(writing);
      if (failure) throw failure;
    },
  };
}
