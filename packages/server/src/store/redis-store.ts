/**
 * The Redis store (GREENROOM_STORE=redis): the store several nodes share, on Redis 7 standalone or a Redis Cluster
 * (SPEC §8). Connected through cluster/redis.ts; it opens at once and reconnects in the background, and while Redis
 * cannot be reached every call rejects with StoreError STORE_UNAVAILABLE (ping too, so /readyz goes red).
 *
 * Keys, each after the deployment's prefix (`gr:`), built for Cluster hash tags (`{...}` picks the slot):
 *
 *   <prefix>{<tag>}:r:<collection>:<id>                 a record's JSON
 *   <prefix>{o:<collection>:<id>}                        an owned record's tag (its owner pointer, below)
 *   <prefix>{c:<collection>}:ids                         ZSET of the collection's ids, all scores 0 (scan, count)
 *   <prefix>{<index tag>}:i:<collection>:<field>:<value> SET of the ids whose declared `field` is `value` (findBy)
 *   <prefix>{o:<collection>:<id>}:l, <prefix>{<tag>}:l:<collection>:<id>
 *                                                        a record's write lock, on a Cluster only (owned, other)
 *
 * A record's tag: `u:<id>` for a user; `u:<uid>` for a record that belongs to a user (OWNER_FIELD), so that every key
 * of one user — the user, its sessions, their index — sits in one slot; `<collection>:<id>` for the rest. A `get`
 * knows only the id, so an owned record is found through its pointer, which holds its tag. An index's tag is the
 * owner's (`u:<uid>`) for the owner field, else `i:<collection>:<field>:<value>`. Collection and field names, and the
 * parts of tags, escape `%`, `{`, `}` and `:` (as `%25` ...), so keys of different records never meet. Every string
 * in a key or a member is stored one UTF-8 sequence per UTF-16 code unit (encodeUnits), so Redis's bytewise order of
 * the ids ZSET is the code-unit order `scan` promises, and any id survives the trip.
 *
 * Writes. A batch is read (the current tag and JSON of each record it touches), then applied by Lua scripts that
 * first check those are unchanged (else they change nothing, and the batch is read and tried again): several nodes
 * write at once, and the indexes must follow what each record held. Writes of one record from one RedisStore apply
 * in the order they were issued.
 *
 *   - Standalone Redis: the whole batch is one script — all or nothing, records, pointers, ZSETs and indexes alike.
 *   - Redis Cluster: a script touches one slot, so a batch is applied tag by tag, in steps ordered so that a crash
 *     part-way leaves only extra entries, never missing ones: ids and index entries are added before a record is
 *     put and removed after it is deleted; a pointer is set before a new record is written and removed after it is
 *     deleted; a record that changes owner is written at its new place before its pointer moves, and the old copy
 *     deleted after. Readers skip what is stale (an id whose record is missing, an index entry whose record no
 *     longer holds the value). Writers of one record take turns: the batch holds a lock on each of its records
 *     (with a lease: a node that dies holding one delays that record's writers at most LOCK_LEASE_MS). **A batch is
 *     atomic when its records share a tag** (one user's records always do: the user and its sessions, fingerprints
 *     and identities); otherwise it is applied per tag, and a crash may leave some of its records written and others
 *     not. `count` may include ids a crash left behind until they are written again.
 *
 * Records handed out are frozen copies, as with the embedded stores. Not a StagedStore: a write resolves once Redis
 * has it (durable as far as Redis's persistence goes: `appendonly yes` + `appendfsync always` for every acknowledged
 * write). No `backup`: a paged read of a live Redis is not one moment's copy; Redis's own persistence is the backup.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { COMMAND_TIMEOUT_MS, connectRedis, type RedisClient, type RedisSettings } from '../cluster/redis.js';
import { StoreError } from '../errors.js';
import { deepFreeze } from './memory-store.js';
import { toStoredValue } from './stored-value.js';
import { checkScanOptions, DEFAULT_SCAN_LIMIT, prefixEnd } from './scan.js';
import type { Collection, ScanOptions, ScanPage, Store, StoredRecord, WriteOp } from './store.js';

/**
 * Collections whose records belong to a user, and the field that names the user. Such a record lives in its user's
 * slot, so that one user's records can change together atomically on a Cluster (a login writes a session and the
 * user; a revocation, a block or an eviction writes several sessions), and its uid index is in that slot too.
 * Users themselves are keyed by uid, so their tag comes from the id.
 */
const OWNER_FIELD: ReadonlyMap<string, string> = new Map([
  ['sessions', 'uid'],
  ['fingerprints', 'uid'],
  ['identities', 'uid'],
]);

/**
 * The fields `findBy` finds through an index, per collection: those the built-in actors look records up by. A
 * `findBy` of any other field (or of a value that is not a string) reads the whole collection and filters it: right,
 * but it costs a read of every record, so it suits small app collections only. Records are indexed as they are
 * written: a field added here later finds only records written since.
 */
const INDEXED_FIELDS: ReadonlyMap<string, readonly string[]> = new Map([
  ['users', ['usernameKey', 'role']],
  ['sessions', ['uid']],
  ['fingerprints', ['uid', 'fingerprint', 'device']],
  ['identities', ['uid']],
]);

/** Records read per script or per ZSET page. */
const READ_CHUNK = 256;

/** A batch whose checks keep failing (other nodes writing the same records) is tried this often, then refused. */
const MAX_ATTEMPTS = 50;

/** Cluster: how long a record's write lock lasts unless given back (a node that died holding it), and how long a write waits for locks. */
const LOCK_LEASE_MS = 5000;
const LOCK_WAIT_MS = LOCK_LEASE_MS + 1000;

/** Longest any one call to Redis may take, whatever the client does meanwhile (a Cluster queues while it has no slots). */
const CALL_DEADLINE_MS = COMMAND_TIMEOUT_MS + 500;

/**
 * Reads records: for each key, `r` (a record key: its JSON) or `o` (an owner pointer: its tag, then the record at
 * ARGV[1] .. tag .. suffix). Answers a tag (or nil) and a JSON (or nil) per key. Standalone only: the record keys it
 * builds are not declared, which a Cluster refuses.
 */
const READ = `
local out = {}
for i = 1, #KEYS do
  local tag, raw = false, false
  if ARGV[2 * i] == 'o' then
    tag = redis.call('GET', KEYS[i])
    if tag then raw = redis.call('GET', ARGV[1] .. tag .. ARGV[2 * i + 1]) end
  else
    raw = redis.call('GET', KEYS[i])
  end
  out[2 * i - 1] = tag
  out[2 * i] = raw
end
return out
`;

/**
 * Checks, then changes: ARGV[1] checks as (key index, expected value or '' for none); if any key holds something
 * else, nothing is changed and it answers 0. Then commands as (name, key index, argument count, arguments...).
 */
const APPLY = `
local a = 2
for _ = 1, tonumber(ARGV[1]) do
  local v = redis.call('GET', KEYS[tonumber(ARGV[a])])
  if (v or '') ~= ARGV[a + 1] then return 0 end
  a = a + 2
end
while a <= #ARGV do
  local n = tonumber(ARGV[a + 2])
  redis.call(ARGV[a], KEYS[tonumber(ARGV[a + 1])], unpack(ARGV, a + 3, a + 2 + n))
  a = a + 3 + n
end
return 1
`;

/**
 * Takes a record's write lock (KEYS[1]: ARGV[1] is the taker's token, ARGV[2] the lease in ms) and reads KEYS[2] (the
 * record, or an owned record's pointer) in the same slot. Answers {1, value} or {0} when another writer holds it.
 */
const LOCK = `
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return {0} end
return {1, redis.call('GET', KEYS[2])}
`;

/** Gives a lock back, if it is still the taker's (ARGV[1]). */
const UNLOCK = `
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
`;

class Script {
  readonly sha: string;
  constructor(readonly lua: string) {
    this.sha = createHash('sha1').update(lua).digest('hex');
  }
}

const READ_SCRIPT = new Script(READ);
const APPLY_SCRIPT = new Script(APPLY);
const LOCK_SCRIPT = new Script(LOCK);
const UNLOCK_SCRIPT = new Script(UNLOCK);

/**
 * A string as bytes, one UTF-8 sequence per UTF-16 code unit (surrogates too, as CESU-8 does). Bytewise order is then
 * code-unit order — plain UTF-8 would put U+E000..U+FFFF after astral characters — and a lone surrogate survives.
 * Identical to UTF-8 for text without astral characters.
 */
export function encodeUnits(s: string): Buffer {
  const out = Buffer.allocUnsafe(s.length * 3);
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const u = s.charCodeAt(i);
    if (u < 0x80) {
      out[n++] = u;
    } else if (u < 0x800) {
      out[n++] = 0xc0 | (u >> 6);
      out[n++] = 0x80 | (u & 0x3f);
    } else {
      out[n++] = 0xe0 | (u >> 12);
      out[n++] = 0x80 | ((u >> 6) & 0x3f);
      out[n++] = 0x80 | (u & 0x3f);
    }
  }
  return Buffer.from(out.subarray(0, n));
}

/** The string `encodeUnits` made these bytes from. */
export function decodeUnits(bytes: Buffer): string {
  const units: number[] = [];
  for (let i = 0; i < bytes.length; ) {
    const b = bytes[i]!;
    if (b < 0x80) {
      units.push(b);
      i += 1;
    } else if (b < 0xe0) {
      units.push(((b & 0x1f) << 6) | (bytes[i + 1]! & 0x3f));
      i += 2;
    } else {
      units.push(((b & 0x0f) << 12) | ((bytes[i + 1]! & 0x3f) << 6) | (bytes[i + 2]! & 0x3f));
      i += 3;
    }
  }
  let s = '';
  for (let i = 0; i < units.length; i += 4096) s += String.fromCharCode(...units.slice(i, i + 4096));
  return s;
}

/** A name or a tag's part with the characters that structure keys escaped, so that keys never run into each other. */
function esc(s: string): string {
  return s.replace(/[%{}:]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** An index entry of a record: the SET that lists its id, and that SET's tag. */
interface IndexEntry {
  tag: string;
  key: Buffer;
  /** The key as a string, to compare entries. */
  name: string;
}

/** The key layout (see the file's comment), for one prefix. Exported for tests that look at where keys land. */
export class RedisKeys {
  constructor(readonly prefix: string) {}

  /** The tag of a record with this value. */
  tagOf(collection: Collection, id: string, value: StoredRecord): string {
    if (collection === 'users') return `u:${esc(id)}`;
    const owner = OWNER_FIELD.get(collection);
    const uid = owner === undefined ? undefined : value[owner];
    return typeof uid === 'string' ? `u:${esc(uid)}` : `${esc(collection)}:${esc(id)}`;
  }

  /**
   * A record's write lock (Cluster), and the key its reads start from, in one slot: an owned record's pointer, or
   * the record itself.
   */
  lock(collection: Collection, id: string): { key: Buffer; read: Buffer } {
    if (this.owned(collection)) {
      return { key: encodeUnits(`${this.prefix}${this.pointerTag(collection, id, true)}:l`), read: this.pointer(collection, id) };
    }
    const tag = this.tagOf(collection, id, {});
    return { key: encodeUnits(`${this.prefix}{${tag}}:l:${esc(collection)}:${id}`), read: this.record(collection, id, tag) };
  }

  /** Whether a record's tag depends on its value (then it is found through its pointer). */
  owned(collection: Collection): boolean {
    return OWNER_FIELD.has(collection);
  }

  record(collection: Collection, id: string, tag: string): Buffer {
    return encodeUnits(`${this.prefix}{${tag}${this.recordSuffix(collection, id)}`);
  }

  /** What follows the tag in a record's key. */
  recordSuffix(collection: Collection, id: string): string {
    return `}:r:${esc(collection)}:${id}`;
  }

  pointer(collection: Collection, id: string): Buffer {
    return encodeUnits(`${this.prefix}${this.pointerTag(collection, id, true)}`);
  }

  pointerTag(collection: Collection, id: string, braces = false): string {
    const tag = `o:${esc(collection)}:${esc(id)}`;
    return braces ? `{${tag}}` : tag;
  }

  idsTag(collection: Collection): string {
    return `c:${esc(collection)}`;
  }

  ids(collection: Collection): Buffer {
    return encodeUnits(`${this.prefix}{${this.idsTag(collection)}}:ids`);
  }

  index(collection: Collection, field: string, value: string): IndexEntry {
    const tag = OWNER_FIELD.get(collection) === field ? `u:${esc(value)}` : `i:${esc(collection)}:${esc(field)}:${esc(value)}`;
    const name = `${this.prefix}{${tag}}:i:${esc(collection)}:${esc(field)}:${value}`;
    return { tag, key: encodeUnits(name), name };
  }

  /** The index entries a record with this value has: one per declared field holding a string. */
  indexEntries(collection: Collection, value: StoredRecord): IndexEntry[] {
    const entries: IndexEntry[] = [];
    for (const field of INDEXED_FIELDS.get(collection) ?? []) {
      const v = value[field];
      if (typeof v === 'string') entries.push(this.index(collection, field, v));
    }
    return entries;
  }
}

/** A record's last write in a batch: its JSON and value, or null for a delete. */
interface Written {
  collection: Collection;
  id: string;
  json: Buffer | null;
  value: StoredRecord | null;
}

/** What Redis holds for a record: its tag (null: an owned record without a pointer) and its JSON (null: none). */
interface Held {
  tag: string | null;
  raw: Buffer | null;
}

/** Commands a step may run (ZADD with score 0: the ids are ordered by the bytes alone). */
type Command = ['SET', Buffer, Buffer] | ['DEL', Buffer] | ['ZADD', Buffer, '0', Buffer] | ['ZREM' | 'SADD' | 'SREM', Buffer, Buffer];

/** Part of a batch for one tag (one slot): checks of what was read, then changes. */
interface Step {
  tag: string;
  checks: Array<[key: Buffer, expected: Buffer | null]>;
  commands: Command[];
}

/** The steps of a batch, in the order a Cluster applies them (see the file's comment). */
const PHASES = ['add', 'claim', 'write', 'repoint', 'vacate', 'remove'] as const;
type Phase = (typeof PHASES)[number];

export interface RedisStoreOptions {
  /** The connection's name in `CLIENT LIST` (`greenroom:<name>`); default `store`. */
  name?: string;
  /** Where losing and regaining Redis is reported (once each). */
  log?: Logger;
}

/** Runs tasks in issue order per key (a task may hold several), different keys concurrently. */
class IssueOrder {
  private readonly tails = new Map<string, Promise<void>>();

  run<T>(keys: readonly string[], task: () => Promise<T>): Promise<T> {
    const before = keys.flatMap((k) => this.tails.get(k) ?? []);
    const result = before.length === 0 ? task() : Promise.all(before).then(task);
    const tail = result.then(
      () => undefined,
      () => undefined,
    );
    for (const k of keys) this.tails.set(k, tail);
    void tail.then(() => {
      for (const k of keys) if (this.tails.get(k) === tail) this.tails.delete(k);
    });
    return result;
  }
}

export class RedisStore implements Store {
  private closed = false;
  private closing: Promise<void> | null = null;
  private readonly inflight = new Set<Promise<unknown>>();
  private readonly order = new IssueOrder();
  readonly keys: RedisKeys;

  private constructor(
    private readonly client: RedisClient,
    private readonly cluster: boolean,
    prefix: string,
  ) {
    this.keys = new RedisKeys(prefix);
  }

  /**
   * Opens the store without waiting for Redis: the connection is made (and remade, for as long as it takes) in the
   * background, and calls made before it is up wait for it up to the command timeout, then reject STORE_UNAVAILABLE.
   */
  static async open(settings: RedisSettings, options: RedisStoreOptions = {}): Promise<RedisStore> {
    // An outage is logged once by the connection; the calls themselves report unavailability.
    const client = connectRedis(settings, options.name ?? 'store', { log: options.log });
    return new RedisStore(client, settings.cluster, settings.prefix);
  }

  get<T extends StoredRecord>(collection: Collection, id: string): Promise<T | undefined> {
    return this.track(async () => {
      const [held] = await this.read(collection, [id]);
      return held!.raw === null ? undefined : (parseRecord(held!.raw) as T);
    });
  }

  put(collection: Collection, id: string, value: StoredRecord): Promise<void> {
    return this.write([{ op: 'put', collection, id, value }]);
  }

  delete(collection: Collection, id: string): Promise<void> {
    return this.write([{ op: 'delete', collection, id }]);
  }

  write(ops: readonly WriteOp[]): Promise<void> {
    return this.track(async () => {
      // Every value is checked before anything is sent: one that is not JSON fails the batch with nothing applied.
      const last = new Map<string, Written>();
      for (const op of ops) {
        const name = JSON.stringify([op.collection, op.id]);
        last.delete(name); // a record's place in the batch is its last write's
        if (op.op === 'delete') last.set(name, { collection: op.collection, id: op.id, json: null, value: null });
        else last.set(name, { collection: op.collection, id: op.id, ...toStoredJson(op.collection, op.id, op.value) });
      }
      if (last.size === 0) return;
      // A batch applies whole, so only each record's last write matters.
      const records = [...last.values()];
      await this.order.run([...last.keys()], () => this.writeAs(records, () => records));
    });
  }

  /**
   * Reads the record and writes what `change` makes of it, unless another writer (on any node) wrote it in between:
   * then it reads again and calls `change` again (so `change` must be synchronous and free of side effects).
   */
  update<T extends StoredRecord>(collection: Collection, id: string, change: (current: T | undefined) => T | undefined): Promise<T | undefined> {
    return this.track(async () => {
      let written: StoredRecord | undefined;
      await this.order.run([JSON.stringify([collection, id])], () =>
        this.writeAs([{ collection, id }], ([held]) => {
          const next = change(held!.raw === null ? undefined : (parseRecord(held!.raw) as T));
          if (next === undefined) {
            written = undefined;
            return [{ collection, id, json: null, value: null }];
          }
          const stored = toStoredJson(collection, id, next);
          written = stored.value;
          return [{ collection, id, ...stored }];
        }),
      );
      return written === undefined ? undefined : (deepFreeze(written) as T);
    });
  }

  /** Writes what `decide` makes of the records as they are now (`targets`, in the order `decide` answers them). */
  private writeAs(targets: ReadonlyArray<{ collection: Collection; id: string }>, decide: (held: readonly Held[]) => readonly Written[]): Promise<void> {
    return this.cluster ? this.writeLocked(targets, decide) : this.writeChecked(targets, decide);
  }

  /** Standalone: read, then one script that applies the batch if nothing it read has changed meanwhile. */
  private async writeChecked(targets: ReadonlyArray<{ collection: Collection; id: string }>, decide: (held: readonly Held[]) => readonly Written[]): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const held = await this.readMany(targets);
      if (await this.apply(this.plan(decide(held), held))) return;
      if (attempt === MAX_ATTEMPTS) throw new StoreError('STORE_WRITE_FAILED', `a write kept meeting concurrent writes of the same records (${attempt} attempts); it was not applied`);
      await pause(attempt);
    }
  }

  /**
   * Cluster: the batch's steps touch several slots one after another, so writers of one record must not interleave
   * (a delete's late ZREM would drop the id a racing create just added). Each record is locked for the batch (a key
   * in the slot its reads start from, with a lease, so a node that dies holding it blocks no one for long), read
   * under the lock, then written; the scripts still check what was read, in case a lease ran out.
   */
  private async writeLocked(targets: ReadonlyArray<{ collection: Collection; id: string }>, decide: (held: readonly Held[]) => readonly Written[]): Promise<void> {
    const deadline = Date.now() + LOCK_WAIT_MS;
    for (let attempt = 1; ; attempt++) {
      const token = randomBytes(9).toString('base64');
      const locks = targets.map(({ collection, id }) => this.keys.lock(collection, id));
      const taken = await Promise.allSettled(
        locks.map(async ({ key, read }) => (await this.script(LOCK_SCRIPT, [key, read], [token, String(LOCK_LEASE_MS)], 'write')) as [number, Buffer | null]),
      );
      const replies = taken.map((t) => (t.status === 'fulfilled' ? t.value : null));
      const mine = locks.filter((_, i) => replies[i]?.[0] === 1);
      try {
        const failed = taken.find((t): t is PromiseRejectedResult => t.status === 'rejected');
        if (failed) throw failed.reason;
        if (mine.length === locks.length) {
          const held = await Promise.all(targets.map(({ collection, id }, i) => this.readLocked(collection, id, replies[i]![1])));
          if (await this.apply(this.plan(decide(held), held))) return;
        }
      } finally {
        // A lock that cannot be given back (Redis just went away) frees itself when its lease runs out.
        await Promise.all(mine.map(({ key }) => this.script(UNLOCK_SCRIPT, [key], [token], 'write').catch(() => undefined)));
      }
      if (Date.now() > deadline) {
        throw new StoreError('STORE_UNAVAILABLE', `records of this write stayed locked by other writers for ${LOCK_WAIT_MS} ms; it was not applied`);
      }
      await pause(attempt);
    }
  }

  /** A record as the lock script read it: its JSON, or an owned record's pointer, then the record it points to. */
  private async readLocked(collection: Collection, id: string, read: Buffer | null): Promise<Held> {
    if (!this.keys.owned(collection)) return { tag: this.keys.tagOf(collection, id, {}), raw: read };
    if (read === null) return { tag: null, raw: null };
    const tag = decodeUnits(read);
    return { tag, raw: await this.call('read', () => this.client.getBuffer(this.keys.record(collection, id, tag))) };
  }

  scan<T extends StoredRecord>(collection: Collection, raw?: ScanOptions): Promise<ScanPage<T>> {
    return this.track(async () => {
      const options = checkScanOptions(raw);
      const limit = options.limit ?? DEFAULT_SCAN_LIMIT;
      const reverse = options.reverse === true;
      // The range as bounds: [lower, upper), narrowed by gte, lt, the prefix and the cursor.
      let lower: Bound | null = null;
      let upper: Bound | null = null;
      const raise = (id: string, inclusive: boolean) => (lower = tighter(lower, { id, inclusive }, 1));
      const drop = (id: string) => (upper = tighter(upper, { id, inclusive: false }, -1));
      if (options.gte !== undefined) raise(options.gte, true);
      if (options.lt !== undefined) drop(options.lt);
      if (options.prefix !== undefined) {
        raise(options.prefix, true);
        const end = prefixEnd(options.prefix);
        if (end !== null) drop(end);
      }
      if (options.after !== undefined) {
        if (reverse) drop(options.after);
        else raise(options.after, false);
      }
      // One live row past the page tells whether another page follows; ids whose record is gone are skipped.
      const items: Array<{ id: string; value: T }> = [];
      for (;;) {
        const asked = Math.max(limit + 1 - items.length, 8);
        const ids = await this.range(collection, lower, upper, reverse, asked);
        const held = await this.read(collection, ids);
        ids.forEach((id, i) => {
          const found = held[i]!.raw;
          if (found !== null && items.length <= limit) items.push({ id, value: parseRecord(found) as T });
        });
        if (items.length > limit || ids.length < asked) break;
        const lastId = ids[ids.length - 1]!;
        if (reverse) upper = { id: lastId, inclusive: false };
        else lower = { id: lastId, inclusive: false };
      }
      const page = items.slice(0, limit);
      return { items: page, next: items.length > limit ? page[page.length - 1]!.id : null };
    });
  }

  count(collection: Collection): Promise<number> {
    return this.track(() => this.call('read', () => this.client.zcard(this.keys.ids(collection))));
  }

  findBy<T extends StoredRecord>(collection: Collection, field: string, value: string): Promise<Array<{ id: string; value: T }>> {
    return this.track(async () => {
      const matches = (record: StoredRecord) => record[field] === value;
      if (typeof value !== 'string' || !INDEXED_FIELDS.get(collection)?.includes(field)) return this.filter<T>(collection, matches);
      const { key } = this.keys.index(collection, field, value);
      const members = await this.call('read', () => this.client.smembersBuffer(key));
      const ids = members.map(decodeUnits).sort(byCodeUnit);
      const found: Array<{ id: string; value: T }> = [];
      for (let i = 0; i < ids.length; i += READ_CHUNK) {
        // An entry a crash or a racing write left behind no longer matches its record: skipped.
        found.push(...(await this.matching<T>(collection, ids.slice(i, i + READ_CHUNK), matches)));
      }
      return found;
    });
  }

  ping(): Promise<void> {
    return this.track(async () => {
      await this.call('read', () => this.client.ping());
    });
  }

  /** Lets the calls under way finish, then closes the connection. */
  close(): Promise<void> {
    if (this.closing) return this.closing;
    this.closed = true;
    this.closing = (async () => {
      await Promise.allSettled([...this.inflight]);
      if (this.client.status === 'ready') {
        await withDeadline(this.client.quit(), CALL_DEADLINE_MS).catch(() => undefined);
      }
      this.client.disconnect();
    })();
    return this.closing;
  }

  /** Runs a call of the Store interface: refused once closed, waited for by close. */
  private track<T>(call: () => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new StoreError('STORE_CLOSED', 'the store is closed'));
    const running = call();
    this.inflight.add(running);
    void running.then(
      () => this.inflight.delete(running),
      () => this.inflight.delete(running),
    );
    return running;
  }

  /** One exchange with Redis, bounded in time; its failures become StoreErrors. */
  private async call<T>(kind: 'read' | 'write', run: () => Promise<T>): Promise<T> {
    try {
      return await withDeadline(run(), CALL_DEADLINE_MS);
    } catch (err) {
      throw storeFailure(err, kind);
    }
  }

  /** Runs a script by its hash, sending its text the first time a server lacks it. */
  private async script(script: Script, keys: Buffer[], args: Array<Buffer | string>, kind: 'read' | 'write'): Promise<unknown> {
    return this.call(kind, async () => {
      try {
        return await this.client.callBuffer('EVALSHA', script.sha, keys.length, ...keys, ...args);
      } catch (err) {
        if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
        return await this.client.callBuffer('EVAL', script.lua, keys.length, ...keys, ...args);
      }
    });
  }

  /** Ids of a collection within the bounds, in order, at most `limit`. */
  private async range(collection: Collection, lower: Bound | null, upper: Bound | null, reverse: boolean, limit: number): Promise<string[]> {
    const key = this.keys.ids(collection);
    const min = lower ? Buffer.concat([Buffer.from(lower.inclusive ? '[' : '('), encodeUnits(lower.id)]) : '-';
    const max = upper ? Buffer.concat([Buffer.from(upper.inclusive ? '[' : '('), encodeUnits(upper.id)]) : '+';
    const members = await this.call('read', () =>
      reverse ? this.client.zrevrangebylexBuffer(key, max, min, 'LIMIT', 0, limit) : this.client.zrangebylexBuffer(key, min, max, 'LIMIT', 0, limit),
    );
    return members.map(decodeUnits);
  }

  /** The records of `matches`, reading the whole collection (findBy of a field without an index). */
  /** The records of `ids` (in that order) that exist and match. */
  private async matching<T extends StoredRecord>(collection: Collection, ids: readonly string[], matches: (record: StoredRecord) => boolean): Promise<Array<{ id: string; value: T }>> {
    const held = await this.read(collection, ids);
    const found: Array<{ id: string; value: T }> = [];
    ids.forEach((id, i) => {
      const raw = held[i]!.raw;
      if (raw === null) return;
      const record = parseRecord(raw);
      if (matches(record)) found.push({ id, value: record as T });
    });
    return found;
  }

  private async filter<T extends StoredRecord>(collection: Collection, matches: (record: StoredRecord) => boolean): Promise<Array<{ id: string; value: T }>> {
    const found: Array<{ id: string; value: T }> = [];
    let lower: Bound | null = null;
    for (;;) {
      const ids = await this.range(collection, lower, null, false, READ_CHUNK);
      found.push(...(await this.matching<T>(collection, ids, matches)));
      if (ids.length < READ_CHUNK) return found;
      lower = { id: ids[ids.length - 1]!, inclusive: false };
    }
  }

  private read(collection: Collection, ids: readonly string[]): Promise<Held[]> {
    return this.readMany(ids.map((id) => ({ collection, id })));
  }

  /**
   * What Redis holds for each record: standalone, one script per chunk (an owned record's pointer and the record
   * in one round trip); on a Cluster, the pointer then the record, each on its own slot.
   */
  private async readMany(records: ReadonlyArray<{ collection: Collection; id: string }>): Promise<Held[]> {
    const keys = this.keys;
    const fixedTag = (collection: Collection, id: string) => keys.tagOf(collection, id, {});
    if (this.cluster) {
      return Promise.all(
        records.map(async ({ collection, id }): Promise<Held> => {
          if (!keys.owned(collection)) {
            const tag = fixedTag(collection, id);
            return { tag, raw: await this.call('read', () => this.client.getBuffer(keys.record(collection, id, tag))) };
          }
          const pointer = await this.call('read', () => this.client.getBuffer(keys.pointer(collection, id)));
          if (pointer === null) return { tag: null, raw: null };
          const tag = decodeUnits(pointer);
          return { tag, raw: await this.call('read', () => this.client.getBuffer(keys.record(collection, id, tag))) };
        }),
      );
    }
    const held: Held[] = [];
    for (let i = 0; i < records.length; i += READ_CHUNK) {
      const chunk = records.slice(i, i + READ_CHUNK);
      const scriptKeys: Buffer[] = [];
      const args: Array<Buffer | string> = [encodeUnits(`${keys.prefix}{`)];
      for (const { collection, id } of chunk) {
        if (keys.owned(collection)) {
          scriptKeys.push(keys.pointer(collection, id));
          args.push('o', encodeUnits(keys.recordSuffix(collection, id)));
        } else {
          scriptKeys.push(keys.record(collection, id, fixedTag(collection, id)));
          args.push('r', '');
        }
      }
      const reply = (await this.script(READ_SCRIPT, scriptKeys, args, 'read')) as Array<Buffer | null>;
      chunk.forEach(({ collection, id }, j) => {
        const tag = keys.owned(collection) ? (reply[2 * j] ? decodeUnits(reply[2 * j]!) : null) : fixedTag(collection, id);
        held.push({ tag, raw: reply[2 * j + 1] ?? null });
      });
    }
    return held;
  }

  /** The steps that take each record from what Redis held (`held`) to its last write in the batch. */
  private plan(records: readonly Written[], held: readonly Held[]): Map<Phase, Map<string, Step>> {
    const keys = this.keys;
    const phases = new Map<Phase, Map<string, Step>>(PHASES.map((p) => [p, new Map()]));
    const step = (phase: Phase, tag: string): Step => {
      const steps = phases.get(phase)!;
      let found = steps.get(tag);
      if (!found) steps.set(tag, (found = { tag, checks: [], commands: [] }));
      return found;
    };
    records.forEach(({ collection, id, json, value }, i) => {
      const { tag: before, raw } = held[i]!;
      const owned = keys.owned(collection);
      const member = encodeUnits(id);
      const idsTag = keys.idsTag(collection);
      const ids = keys.ids(collection);
      const was = raw === null || !INDEXED_FIELDS.has(collection) ? [] : keys.indexEntries(collection, JSON.parse(raw.toString('utf8')) as StoredRecord);
      const will = value === null ? [] : keys.indexEntries(collection, value);
      const kept = new Set(will.map((e) => e.name));
      const gone = was.filter((e) => !kept.has(e.name));
      const pointer = owned ? keys.pointer(collection, id) : null;
      const pointerTag = keys.pointerTag(collection, id);
      const oldKey = before === null ? null : keys.record(collection, id, before);

      if (value !== null) {
        const tag = keys.tagOf(collection, id, value);
        const key = keys.record(collection, id, tag);
        // Added first: the id and the index entries in other slots.
        step('add', idsTag).commands.push(['ZADD', ids, '0', member]);
        for (const e of will) if (e.tag !== tag) step('add', e.tag).commands.push(['SADD', e.key, member]);
        // A new owned record: its pointer first (a pointer to nothing reads as no record).
        if (owned && before === null) {
          const claim = step('claim', pointerTag);
          claim.checks.push([pointer!, null]);
          claim.commands.push(['SET', pointer!, encodeUnits(tag)]);
        }
        const write = step('write', tag);
        if (before === tag) write.checks.push([key, raw]);
        write.commands.push(['SET', key, json!]);
        for (const e of will) if (e.tag === tag) write.commands.push(['SADD', e.key, member]);
        if (before === tag) for (const e of gone) if (e.tag === tag) write.commands.push(['SREM', e.key, member]);
        if (owned && before !== null && before !== tag) {
          // A change of owner: the record is at its new place, then the pointer moves, then the old copy goes.
          const repoint = step('repoint', pointerTag);
          repoint.checks.push([pointer!, encodeUnits(before)]);
          repoint.commands.push(['SET', pointer!, encodeUnits(tag)]);
          if (raw !== null) {
            const vacate = step('vacate', before);
            vacate.checks.push([oldKey!, raw]);
            vacate.commands.push(['DEL', oldKey!]);
            for (const e of gone) if (e.tag === before) vacate.commands.push(['SREM', e.key, member]);
          }
        }
      } else {
        if (before !== null && raw !== null) {
          const write = step('write', before);
          write.checks.push([oldKey!, raw]);
          write.commands.push(['DEL', oldKey!]);
          for (const e of gone) if (e.tag === before) write.commands.push(['SREM', e.key, member]);
        }
        if (owned && before !== null) {
          const repoint = step('repoint', pointerTag);
          repoint.checks.push([pointer!, encodeUnits(before)]);
          repoint.commands.push(['DEL', pointer!]);
        }
        // Removed last: the id (also one a crash left behind).
        step('remove', idsTag).commands.push(['ZREM', ids, member]);
      }
      for (const e of gone) if (e.tag !== before) step('remove', e.tag).commands.push(['SREM', e.key, member]);
    });
    return phases;
  }

  /**
   * Applies a plan: standalone, as one script; on a Cluster, phase by phase, one script per tag. False if a check
   * failed (something changed since the batch was read): then that script changed nothing.
   */
  private async apply(phases: Map<Phase, Map<string, Step>>): Promise<boolean> {
    if (!this.cluster) return this.runSteps([...phases.values()].flatMap((steps) => [...steps.values()]));
    for (const steps of phases.values()) {
      const applied = await Promise.all([...steps.values()].map((s) => this.runSteps([s])));
      if (applied.includes(false)) return false;
    }
    return true;
  }

  private async runSteps(steps: readonly Step[]): Promise<boolean> {
    const keys: Buffer[] = [];
    const positions = new Map<string, number>();
    const at = (key: Buffer) => {
      const name = key.toString('latin1');
      let n = positions.get(name);
      if (n === undefined) {
        keys.push(key);
        positions.set(name, (n = keys.length));
      }
      return String(n);
    };
    const checks = steps.flatMap((s) => s.checks);
    const args: Array<Buffer | string> = [String(checks.length)];
    for (const [key, expected] of checks) args.push(at(key), expected ?? '');
    for (const s of steps) {
      for (const [name, key, ...rest] of s.commands) args.push(name, at(key), String(rest.length), ...rest);
    }
    if (args.length === 1) return true;
    return (await this.script(APPLY_SCRIPT, keys, args, 'write')) === 1;
  }
}

interface Bound {
  id: string;
  inclusive: boolean;
}

/** The tighter of two bounds: the higher lower bound (`side` 1) or the lower upper bound (-1); exclusive wins a tie. */
function tighter(current: Bound | null, next: Bound, side: 1 | -1): Bound {
  if (current === null) return next;
  const c = byCodeUnit(next.id, current.id) * side;
  if (c > 0) return next;
  if (c < 0) return current;
  return current.inclusive ? next : current;
}

/** A short random wait before trying again, longer with each attempt. */
function pause(attempt: number): Promise<void> {
  return new Promise((r) => setTimeout(r, Math.random() * Math.min(2 ** attempt, 50)));
}

function byCodeUnit(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** A stored record as handed out: a frozen copy. */
function parseRecord(raw: Buffer): StoredRecord {
  return deepFreeze(JSON.parse(raw.toString('utf8')) as StoredRecord);
}

/** A value's JSON as Redis keeps it, and what that JSON says (stored-value.ts: JSON objects only). */
function toStoredJson(collection: Collection, id: string, value: StoredRecord): { json: Buffer; value: StoredRecord } {
  const stored = toStoredValue(collection, id, value);
  return { json: Buffer.from(stored.json, 'utf8'), value: stored.value };
}

class DeadlineError extends Error {
  override readonly name = 'DeadlineError';
}

function withDeadline<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DeadlineError(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

/** Replies that mean Redis cannot serve now (loading, failing over, refusing writes), not that the call is wrong. */
const UNAVAILABLE_REPLIES = new Set(['LOADING', 'BUSY', 'CLUSTERDOWN', 'TRYAGAIN', 'MASTERDOWN', 'READONLY', 'NOREPLICAS', 'MISCONF']);

/**
 * A failed call as a StoreError. Its message names the kind of failure only (an error code such as ECONNREFUSED or
 * WRONGTYPE): never a URL, a key or a value.
 */
function storeFailure(err: unknown, kind: 'read' | 'write'): StoreError {
  if (err instanceof StoreError) return err;
  const e = err as Partial<NodeJS.ErrnoException> | undefined;
  if (e?.name === 'ReplyError') {
    const code = /^[A-Z]+/.exec(e.message ?? '')?.[0] ?? 'ERR';
    if (UNAVAILABLE_REPLIES.has(code)) return new StoreError('STORE_UNAVAILABLE', `Redis cannot serve now (${code})`, { cause: err });
    return new StoreError(kind === 'write' ? 'STORE_WRITE_FAILED' : 'STORE_UNREADABLE', `Redis refused a ${kind} (${code})`, { cause: err });
  }
  const reason = typeof e?.code === 'string' && /^[A-Z_]+$/.test(e.code) ? e.code : e instanceof DeadlineError || e?.message === 'Command timed out' ? 'no answer in time' : 'not connected';
  const outcome = kind === 'write' ? '; the write may or may not have been applied' : '';
  return new StoreError('STORE_UNAVAILABLE', `the store cannot reach Redis (${reason})${outcome}`, { cause: err });
}
