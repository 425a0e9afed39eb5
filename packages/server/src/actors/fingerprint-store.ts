/**
 * FingerprintStore: devices seen at login, one row per (fingerprint, uid), each row pointing at its user's uid.
 *
 * Block and Unblock act on one row and forward to UserStore by that row's uid: the fingerprint's mailbox is free at
 * once, and UserStore — the single place a user's blocked state changes — writes both the user and the row durably
 * before the answer. A device seen with several users must be named with the uid of the row meant. This actor never
 * asks another, so it can never wait on UserStore.
 */
import { z } from 'zod';
import { ErrorCode } from '@greenroom/protocol';
import { KeyedQueue, type Locks } from '../runtime/keyed-queue.js';
import { GreenroomError } from '../errors.js';
import type { Store } from '../store/store.js';
import { defineActor, type Forward } from './define.js';
import { allPages, limitSchema, page } from './paging.js';
import { deviceRows, fingerprintView, fingerprintViewSchema, type FingerprintRecord, type FingerprintView, type UserView } from './records.js';
import { UserStore } from './user-store.js';

const fingerprintSchema = z.string().regex(/^fp_[A-Za-z0-9_-]{1,60}$/, 'not a fingerprint');
const rowRef = z.object({ fingerprint: fingerprintSchema, uid: z.uuid().optional() });

/** Newest first by lastSeen; ties broken by fingerprint, then uid, so pages are stable. */
function newestFirst(a: FingerprintRecord, b: FingerprintRecord): number {
  return b.lastSeen - a.lastSeen || compare(a.fingerprint, b.fingerprint) || compare(a.uid, b.uid);
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function all(store: Store): Promise<FingerprintRecord[]> {
  return allPages(async (after) => {
    const res = await store.scan<FingerprintRecord>('fingerprints', { after: after ?? undefined, limit: 500 });
    return { items: res.items.map((i) => i.value), next: res.next };
  });
}

export interface FingerprintStoreOptions {
  now?: () => number;
  /**
   * Changes of one user's rows run under `f:<uid>` (on every node, with several): a login's `Seen` on one node
   * cannot write back a row another node's block has just changed.
   */
  locks?: Locks;
}

type State = { now: () => number; locks: Locks };

/** Runs a change of the user's device rows under that user's row lock. */
function underRows<T>(state: State, uid: string, task: () => Promise<T>): Promise<T> {
  return state.locks.run(`f:${uid}`, task);
}
/** What the helpers below need of a handler's context. */
type Ctx = { store: Store; publish: (event: 'FingerprintChanged', payload: { fingerprint: FingerprintView }) => void };

/**
 * The row an admin names: the one of `uid`, or — without a uid — the only row of the device (Get: the most
 * recently seen). A device seen with several users is never resolved by guessing whose row was meant.
 */
async function resolve(store: Store, ref: { fingerprint: string; uid?: string | undefined }, newest = false): Promise<FingerprintRecord> {
  const rows = (await deviceRows(store, ref.fingerprint)).map((r) => r.value);
  const row = ref.uid !== undefined ? rows.find((r) => r.uid === ref.uid) : rows.length === 1 || newest ? rows.sort(newestFirst)[0] : undefined;
  if (row) return row;
  if (rows.length === 0 || ref.uid !== undefined) throw new GreenroomError(ErrorCode.NOT_FOUND, 'no such fingerprint');
  throw new GreenroomError(ErrorCode.CONFLICT, 'this device was used by several users: name the uid of the row');
}

async function setBlocked(ctx: Ctx, rows: Array<{ id: string; value: FingerprintRecord }>, blocked: boolean): Promise<number> {
  const changed = rows.filter((r) => r.value.blocked !== blocked).map((r) => ({ id: r.id, value: { ...r.value, blocked } }));
  if (changed.length === 0) return 0;
  await ctx.store.write(changed.map((r) => ({ op: 'put', collection: 'fingerprints', id: r.id, value: r.value })));
  for (const r of changed) ctx.publish('FingerprintChanged', { fingerprint: fingerprintView(r.value) });
  return changed.length;
}

export const FingerprintStore = defineActor({
  name: 'FingerprintStore',
  state: (_ctx, options: FingerprintStoreOptions): State => ({ now: options.now ?? Date.now, locks: options.locks ?? new KeyedQueue() }),
  events: { FingerprintChanged: z.object({ fingerprint: fingerprintViewSchema }) },
  subscribers: ['admin'],
  messages: (message) => ({
    GetMostRecent: message({
      allow: ['admin'],
      payload: z.object({ limit: limitSchema, cursor: z.string().max(256).nullable().default(null) }),
      handle: async (p, ctx) => {
        const sorted = (await all(ctx.store)).sort(newestFirst);
        let start = 0;
        if (p.cursor) {
          const [lastSeen, fingerprint, uid, extra] = p.cursor.split(':');
          const pivot = { lastSeen: Number(lastSeen), fingerprint, uid } as FingerprintRecord;
          if (!fingerprint || !uid || extra !== undefined || !Number.isFinite(pivot.lastSeen)) throw new GreenroomError(ErrorCode.BAD_PAYLOAD, 'cursor: invalid');
          while (start < sorted.length && newestFirst(sorted[start]!, pivot) <= 0) start += 1;
        }
        const items = sorted.slice(start, start + p.limit);
        const last = items[items.length - 1];
        return page(items.map(fingerprintView), last && start + p.limit < sorted.length ? `${last.lastSeen}:${last.fingerprint}:${last.uid}` : null);
      },
    }),

    /** One row: the uid's, or the device's most recently seen. */
    Get: message({
      allow: ['admin'],
      payload: rowRef,
      handle: async (p, ctx) => fingerprintView(await resolve(ctx.store, p, true)),
    }),

    /** Blocks one row: that device for that user, and that user by uid (UserStore.Block). */
    Block: message({
      allow: ['admin'],
      payload: rowRef,
      handle: async (p, ctx): Promise<Forward<UserView>> => {
        const f = await resolve(ctx.store, p);
        return ctx.forward(UserStore.Block, { uid: f.uid, fingerprint: f.fingerprint });
      },
    }),

    Unblock: message({
      allow: ['admin'],
      payload: rowRef,
      handle: async (p, ctx): Promise<Forward<UserView>> => {
        const f = await resolve(ctx.store, p);
        return ctx.forward(UserStore.Unblock, { uid: f.uid });
      },
    }),

    // ---- internal ----

    /** Login: records the device's row for its user; a blocked row is refused and nothing is written. */
    Seen: message({
      allow: [],
      internal: true,
      payload: z.object({ fingerprint: z.string(), uid: z.string(), device: z.string().optional() }),
      handle: (p, ctx) => underRows(ctx.state, p.uid, async () => {
        const t = ctx.state.now();
        const row = (await deviceRows(ctx.store, p.fingerprint)).find((r) => r.value.uid === p.uid);
        const f = row?.value;
        if (f?.blocked) throw new GreenroomError(ErrorCode.BLOCKED, 'this device is blocked');
        const next: FingerprintRecord = f
          ? { ...f, lastSeen: t, count: f.count + 1, ...(p.device ? { device: p.device } : {}) }
          : { fingerprint: p.fingerprint, uid: p.uid, firstSeen: t, lastSeen: t, count: 1, blocked: false, ...(p.device ? { device: p.device } : {}) };
        await ctx.store.put('fingerprints', row?.id ?? `${p.fingerprint}/${p.uid}`, next);
        ctx.publish('FingerprintChanged', { fingerprint: fingerprintView(next) });
        return fingerprintView(next);
      }),
    }),

    /** Is any row of this device blocked? (guest sign-in asks before creating anything) */
    IsBlocked: message({
      allow: [],
      internal: true,
      payload: z.object({ fingerprint: z.string() }),
      handle: async (p, ctx) => (await deviceRows(ctx.store, p.fingerprint)).some((r) => r.value.blocked),
    }),

    /** Has this user logged in from this device (by its server-issued id) before? (the login limiter asks) */
    KnownDevice: message({
      allow: [],
      internal: true,
      payload: z.object({ device: z.string(), uid: z.string() }),
      handle: async (p, ctx) => (await ctx.store.findBy<FingerprintRecord>('fingerprints', 'device', p.device)).some((r) => r.value.uid === p.uid),
    }),

    /** Blocks or unblocks one user's row of one device. */
    SetBlocked: message({
      allow: [],
      internal: true,
      payload: z.object({ fingerprint: z.string(), uid: z.string(), blocked: z.boolean() }),
      handle: (p, ctx) =>
        underRows(ctx.state, p.uid, async () => {
          const rows = (await deviceRows(ctx.store, p.fingerprint)).filter((r) => r.value.uid === p.uid);
          return { changed: await setBlocked(ctx, rows, p.blocked) };
        }),
    }),

    /** A user's devices (guest cleanup keeps a guest whose device is blocked). */
    ForUser: message({
      allow: [],
      internal: true,
      payload: z.object({ uid: z.string() }),
      handle: async (p, ctx) => (await ctx.store.findBy<FingerprintRecord>('fingerprints', 'uid', p.uid)).map((r) => fingerprintView(r.value)),
    }),

    /** Forgets the devices of the users being deleted, in one write. */
    DeleteForUser: message({
      allow: [],
      internal: true,
      payload: z.object({ uids: z.array(z.string()) }),
      handle: async (p, ctx) => {
        const rows = (await Promise.all(p.uids.map((uid) => ctx.store.findBy<FingerprintRecord>('fingerprints', 'uid', uid)))).flat();
        await ctx.store.write(rows.map((r) => ({ op: 'delete', collection: 'fingerprints', id: r.id })));
        return { deleted: rows.length };
      },
    }),

    SetBlockedForUser: message({
      allow: [],
      internal: true,
      payload: z.object({ uid: z.string(), blocked: z.boolean() }),
      handle: (p, ctx) =>
        underRows(ctx.state, p.uid, async () => ({ changed: await setBlocked(ctx, await ctx.store.findBy<FingerprintRecord>('fingerprints', 'uid', p.uid), p.blocked) })),
    }),
  }),
});
