/**
 * FingerprintStore: devices seen at login, keyed by their hash, each pointing at its owner's uid.
 *
 * Block and Unblock resolve the owner and forward to UserStore by uid: the fingerprint's mailbox is free at once,
 * and UserStore — the single place a user's blocked state changes — writes both the user and the fingerprint
 * durably before the answer. This actor never asks another, so it can never wait on UserStore.
 */
import { z } from 'zod';
import { ErrorCode } from '@greenroom/protocol';
import { GreenroomError } from '../errors.js';
import type { Store } from '../store/store.js';
import { defineActor } from './define.js';
import { limitSchema, page } from './paging.js';
import type { FingerprintRecord } from './records.js';
import { FINGERPRINT_STORE, USER_STORE } from './user-store.js';

const fingerprintSchema = z.string().regex(/^fp_[A-Za-z0-9_-]{1,60}$/, 'not a fingerprint');

/** Newest first by lastSeen; ties broken by fingerprint so pages are stable. The cursor is `<lastSeen>:<fingerprint>`. */
function newestFirst(a: FingerprintRecord, b: FingerprintRecord): number {
  return b.lastSeen - a.lastSeen || (a.fingerprint < b.fingerprint ? -1 : a.fingerprint > b.fingerprint ? 1 : 0);
}

async function all(store: Store): Promise<FingerprintRecord[]> {
  const out: FingerprintRecord[] = [];
  let after: string | undefined;
  do {
    const res = await store.scan<FingerprintRecord>('fingerprints', { after, limit: 500 });
    for (const i of res.items) out.push(i.value);
    after = res.next ?? undefined;
  } while (after);
  return out;
}

export function createFingerprintStore(options: { now?: () => number } = {}) {
  const now = options.now ?? Date.now;

  return defineActor({
    name: FINGERPRINT_STORE,
    state: () => ({}),
    messages: (message) => {
      const mustGet = async (store: Store, fingerprint: string) => {
        const f = await store.get<FingerprintRecord>('fingerprints', fingerprint);
        if (!f) throw new GreenroomError(ErrorCode.NOT_FOUND, 'no such fingerprint');
        return f;
      };
      const setBlocked = async (ctx: { store: Store; publish(e: string, p: unknown): void }, records: FingerprintRecord[], blocked: boolean) => {
        const changed = records.filter((f) => f.blocked !== blocked).map((f) => ({ ...f, blocked }));
        if (changed.length === 0) return 0;
        await ctx.store.write(changed.map((f) => ({ op: 'put', collection: 'fingerprints', id: f.fingerprint, value: f })));
        for (const f of changed) ctx.publish('FingerprintChanged', { fingerprint: f });
        return changed.length;
      };

      return {
        GetMostRecent: message({
          allow: ['admin'],
          payload: z.object({ limit: limitSchema, cursor: z.string().max(256).nullable().default(null) }),
          handle: async (p, ctx) => {
            const sorted = (await all(ctx.store)).sort(newestFirst);
            let start = 0;
            if (p.cursor) {
              const i = p.cursor.indexOf(':');
              const pivot = { lastSeen: Number(p.cursor.slice(0, i)), fingerprint: p.cursor.slice(i + 1) } as FingerprintRecord;
              if (i < 0 || !Number.isFinite(pivot.lastSeen)) throw new GreenroomError(ErrorCode.BAD_PAYLOAD, 'cursor: invalid');
              while (start < sorted.length && newestFirst(sorted[start]!, pivot) <= 0) start += 1;
            }
            const items = sorted.slice(start, start + p.limit);
            const last = items[items.length - 1];
            return page(items, last && start + p.limit < sorted.length ? `${last.lastSeen}:${last.fingerprint}` : null);
          },
        }),

        Get: message({
          allow: ['admin'],
          payload: z.object({ fingerprint: fingerprintSchema }),
          handle: (p, ctx) => mustGet(ctx.store, p.fingerprint),
        }),

        Block: message({
          allow: ['admin'],
          payload: z.object({ fingerprint: fingerprintSchema }),
          handle: async (p, ctx) => {
            const f = await mustGet(ctx.store, p.fingerprint);
            return ctx.forward(USER_STORE, 'Block', { uid: f.uid, fingerprint: f.fingerprint });
          },
        }),

        Unblock: message({
          allow: ['admin'],
          payload: z.object({ fingerprint: fingerprintSchema }),
          handle: async (p, ctx) => {
            const f = await mustGet(ctx.store, p.fingerprint);
            return ctx.forward(USER_STORE, 'Unblock', { uid: f.uid });
          },
        }),

        Subscribe: message({ allow: ['admin'], payload: z.object({}), handle: (_p, ctx) => (ctx.subscribe(), { subscribed: true }) }),
        Unsubscribe: message({ allow: ['admin'], payload: z.object({}), handle: (_p, ctx) => (ctx.unsubscribe(), { subscribed: false }) }),

        // ---- internal ----

        /** Login: records the device for its user; a blocked device is refused and nothing is written. */
        Seen: message({
          allow: [],
          internal: true,
          payload: z.object({ fingerprint: z.string(), uid: z.string() }),
          handle: async (p, ctx) => {
            const t = now();
            const f = await ctx.store.get<FingerprintRecord>('fingerprints', p.fingerprint);
            if (f?.blocked) throw new GreenroomError(ErrorCode.BLOCKED, 'this device is blocked');
            const next: FingerprintRecord = f
              ? { ...f, uid: p.uid, lastSeen: t, count: f.count + 1 }
              : { fingerprint: p.fingerprint, uid: p.uid, firstSeen: t, lastSeen: t, count: 1, blocked: false };
            await ctx.store.put('fingerprints', next.fingerprint, next);
            ctx.publish('FingerprintChanged', { fingerprint: next });
            return next;
          },
        }),

        /** Is this device blocked? (guest sign-in asks before creating anything) */
        IsBlocked: message({
          allow: [],
          internal: true,
          payload: z.object({ fingerprint: z.string() }),
          handle: async (p, ctx) => (await ctx.store.get<FingerprintRecord>('fingerprints', p.fingerprint))?.blocked === true,
        }),

        SetBlocked: message({
          allow: [],
          internal: true,
          payload: z.object({ fingerprints: z.array(z.string()), blocked: z.boolean() }),
          handle: async (p, ctx) => {
            const records = (await Promise.all(p.fingerprints.map((id) => ctx.store.get<FingerprintRecord>('fingerprints', id)))).filter(
              (f): f is FingerprintRecord => f !== undefined,
            );
            return { changed: await setBlocked(ctx, records, p.blocked) };
          },
        }),

        /** A user's devices (guest cleanup keeps a guest whose device is blocked). */
        ForUser: message({
          allow: [],
          internal: true,
          payload: z.object({ uid: z.string() }),
          handle: async (p, ctx) => (await ctx.store.findBy<FingerprintRecord>('fingerprints', 'uid', p.uid)).map((r) => r.value),
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
          handle: async (p, ctx) => {
            const records = (await ctx.store.findBy<FingerprintRecord>('fingerprints', 'uid', p.uid)).map((r) => r.value);
            return { changed: await setBlocked(ctx, records, p.blocked) };
          },
        }),
      };
    },
  });
}
