/**
 * UserStore: users, keyed by their stable uid. It is the one place where a user's blocked flag changes, so
 * concurrent blocks and unblocks of one user are serialized here and end in the state of the last one answered.
 * Asks flow one way only — FingerprintStore forwards to it; it asks FingerprintStore and SessionStore, which never
 * ask back — so no two mailboxes can wait on each other.
 */
import { createHash, randomBytes } from 'node:crypto';
import { z } from 'zod';
import { ErrorCode } from '@greenroom/protocol';
import { v4 as uuidv4 } from 'uuid';
import { GreenroomError } from '../errors.js';
import { KeyedQueue, type Locks } from '../runtime/keyed-queue.js';
import type { Store } from '../store/store.js';
import { hashPassword } from '../auth/passwords.js';
import { actorOf, logSecurityEvent } from '../security-events.js';
import { defineActor, notifyLifecycle } from './define.js';
import { FingerprintStore } from './fingerprint-store.js';
import { whenDurable } from './message-store.js';
import { page, pageRequest } from './paging.js';
import { userView, userViewSchema, type UserRecord, type UserView } from './records.js';
import { SessionStore } from './session-store.js';

/**
 * What a name may not hold: control characters, line and paragraph separators, format characters (bidirectional
 * overrides, isolates and marks, zero-width spaces, byte-order marks, soft hyphens …) but the joiners that scripts and
 * emoji need (ZWNJ, ZWJ, emoji tags), private-use and unassigned code points, and the Hangul fillers that render as
 * nothing. Each can make one name look like another, or reorder what is shown around it.
 */
const UNREADABLE = /[\p{Cc}\p{Zl}\p{Zp}\p{Co}\p{Cn}\u115F\u1160\u3164\uFFA0]|(?![\u200C\u200D\u{E0020}-\u{E007F}])\p{Cf}/u;

/**
 * A name people read (username, displayName): refused when it holds control, bidirectional-formatting or unpaired
 * surrogate characters (they make one name look like another, or reorder what is shown around it), then
 * NFC-normalized and bounded, so one name has one stored form.
 */
function readableName(max: number) {
  return z
    .string()
    .max(max * 4)
    .refine((v) => !/\p{Cs}/u.test(v), 'holds an unpaired surrogate')
    .refine((v) => !UNREADABLE.test(v), 'holds control, formatting, invisible or unassigned characters')
    .transform((v) => v.normalize('NFC').trim())
    .pipe(z.string().min(1).max(max));
}

export const usernameSchema = readableName(64).pipe(z.string().regex(/^[A-Za-z0-9_.@-]+$/, 'may hold letters, digits and _ . @ - only'));
export const passwordSchema = z.string().min(8).max(256);
export const roleSchema = z.string().min(1).max(32).regex(/^[a-z][a-z0-9_-]*$/, 'must be a lowercase word');
export const displayNameSchema = readableName(100);

/** Usernames are unique regardless of case. */
export function usernameKey(username: string): string {
  return username.toLowerCase();
}

/**
 * The link from an identity provider's (issuer, subject) to the user it became: `identities/<identityKey>`. The key
 * is a hash of the pair, so any issuer and subject (lengths, characters) make one fixed-size id.
 */
export interface IdentityRecord {
  [key: string]: unknown;
  uid: string;
  issuer: string;
  subject: string;
  created: number;
}

export const IDENTITIES = 'identities';

export function identityKey(issuer: string, subject: string): string {
  return createHash('sha256').update(JSON.stringify([issuer, subject])).digest('base64url');
}

/** A username from a provider's hint: the characters usernames may hold, at most 40 of them; '' if none are left. */
function usernameBase(hint: string | null): string {
  return (hint ?? '').normalize('NFKC').replace(/[^A-Za-z0-9_.@-]/g, '').slice(0, 40);
}

const PASSWORDS_OFF = 'built-in passwords are turned off on this server (GREENROOM_PASSWORDS=false): users sign in through the identity provider';

export interface UserStoreOptions {
  now?: () => number;
  /**
   * Every read-modify-write of a user record runs under `u:<uid>` (across nodes, with several), so a login's
   * lastLogin update on one node cannot write back a user another node has just blocked; a new username runs
   * under `n:<name>`, so two nodes cannot both take it.
   */
  locks?: Locks;
  /** False: built-in passwords are turned off (GREENROOM_PASSWORDS=false). */
  passwords?: boolean;
}

type State = { now: () => number; passwords: boolean; locks: Locks };

/** Runs a change of one user under its lock. */
function underUser<T>(state: State, uid: string, task: () => Promise<T>): Promise<T> {
  return state.locks.run(`u:${uid}`, task);
}
/** What the helpers below need of a handler's context. */
type Ctx = { state: State; store: Store; publish: (event: 'UserChanged', payload: { user: UserView }) => void };

function refusePasswords(state: State): void {
  if (!state.passwords) throw new GreenroomError(ErrorCode.FORBIDDEN, PASSWORDS_OFF);
}

async function mustGet(store: Store, uid: string): Promise<UserRecord> {
  const u = await store.get<UserRecord>('users', uid);
  if (!u) throw new GreenroomError(ErrorCode.NOT_FOUND, 'no such user');
  return u;
}

async function findByUsername(store: Store, username: string): Promise<UserRecord | undefined> {
  return (await store.findBy<UserRecord>('users', 'usernameKey', usernameKey(username)))[0]?.value;
}

async function create(ctx: Ctx, u: Pick<UserRecord, 'username' | 'displayName' | 'role' | 'passwordHash'> & { lastLogin?: number }): Promise<UserRecord> {
  return ctx.state.locks.run(`n:${usernameKey(u.username)}`, async () => {
    if (await findByUsername(ctx.store, u.username)) throw new GreenroomError(ErrorCode.CONFLICT, 'that username is taken');
    const user: UserRecord = { uid: uuidv4(), created: ctx.state.now(), lastLogin: null, blocked: false, ...u, usernameKey: usernameKey(u.username) };
    await ctx.store.put('users', user.uid, user);
    ctx.publish('UserChanged', { user: userView(user) });
    return user;
  });
}

export const UserStore = defineActor({
  name: 'UserStore',
  state: (_ctx, options: UserStoreOptions): State => ({ now: options.now ?? Date.now, passwords: options.passwords ?? true, locks: options.locks ?? new KeyedQueue() }),
  events: { UserChanged: z.object({ user: userViewSchema }) },
  subscribers: ['admin'],
  messages: (message) => ({
    GetOwn: message({
      allow: 'any',
      payload: z.object({}),
      handle: async (_p, ctx) => userView(await mustGet(ctx.store, ctx.caller.uid ?? '')),
    }),

    GetAll: message({
      allow: ['admin'],
      payload: pageRequest,
      handle: async (p, ctx) => {
        const res = await ctx.store.scan<UserRecord>('users', { after: p.cursor ?? undefined, limit: p.limit });
        return page(res.items.map((i) => userView(i.value)), res.next);
      },
    }),

    /** One user, by uid or by username. */
    Get: message({
      allow: ['admin'],
      payload: z.union([z.object({ uid: z.uuid() }), z.object({ username: z.string().min(1).max(64) })]),
      handle: async (p, ctx) => {
        if ('uid' in p) return userView(await mustGet(ctx.store, p.uid));
        const u = await findByUsername(ctx.store, p.username);
        if (!u) throw new GreenroomError(ErrorCode.NOT_FOUND, 'no such user');
        return userView(u);
      },
    }),

    Create: message({
      allow: ['admin'],
      payload: z.object({ username: usernameSchema, password: passwordSchema, role: roleSchema.default('user'), displayName: displayNameSchema.optional() }),
      handle: async (p, ctx) => {
        refusePasswords(ctx.state);
        const passwordHash = await hashPassword(p.password);
        return userView(await create(ctx, { username: p.username, displayName: p.displayName ?? p.username, role: p.role, passwordHash }));
      },
    }),

    /** Admins change anything; a user changes only their own displayName (docs/protocol.md, Built-in actors). */
    Update: message({
      allow: 'any',
      payload: z.object({
        uid: z.uuid(),
        displayName: displayNameSchema.optional(),
        role: roleSchema.optional(),
        username: usernameSchema.optional(),
        password: passwordSchema.optional(),
      }),
      handle: (p, ctx) =>
        underUser(ctx.state, p.uid, async () => {
          const admin = ctx.caller.system || ctx.caller.role === 'admin';
          if (!admin && (p.uid !== ctx.caller.uid || p.role !== undefined || p.username !== undefined || p.password !== undefined)) {
            throw new GreenroomError(ErrorCode.FORBIDDEN, 'you may change only your own displayName');
          }
          if (p.password !== undefined) refusePasswords(ctx.state);
          const u = await mustGet(ctx.store, p.uid);
          // Idle guests are deleted by cleanup: a user an identity provider signs in must keep its uid, so it is
          // never made a guest.
          if (p.role === 'guest' && u.role !== 'guest' && (await ctx.store.findBy(IDENTITIES, 'uid', u.uid)).length > 0) {
            throw new GreenroomError(ErrorCode.CONFLICT, 'a user signed in through an identity provider cannot be made a guest');
          }
          if (p.username !== undefined && usernameKey(p.username) !== u.usernameKey && (await findByUsername(ctx.store, p.username))) {
            throw new GreenroomError(ErrorCode.CONFLICT, 'that username is taken');
          }
          const next: UserRecord = {
            ...u,
            displayName: p.displayName ?? u.displayName,
            role: p.role ?? u.role,
            username: p.username ?? u.username,
            usernameKey: usernameKey(p.username ?? u.username),
            passwordHash: p.password !== undefined ? await hashPassword(p.password) : u.passwordHash,
            ...(p.password !== undefined ? { passwordChangedAt: ctx.state.now() } : {}),
          };
          await ctx.store.put('users', u.uid, next);
          if (next.role !== u.role) {
            // Open sockets act with the new role from their next ask: not before the role is on disk.
            await whenDurable(ctx.store);
            await ctx.ask(SessionStore.UpdateRole, { uid: u.uid, role: next.role });
            logSecurityEvent(ctx.log, 'user.role-changed', { ...actorOf(ctx.caller), target: { uid: u.uid }, role: { from: u.role, to: next.role } });
          }
          // A new password ends every other session of the user (whoever knew the old one is out), before the answer.
          if (p.password !== undefined) {
            const except = ctx.caller.uid === u.uid ? ctx.caller.sid : null;
            const { ended } = await ctx.ask(SessionStore.EndAllForUser, { uid: u.uid, reason: 'revoked', except });
            logSecurityEvent(ctx.log, 'user.password-changed', { ...actorOf(ctx.caller), target: { uid: u.uid }, sessionsEnded: ended });
          }
          ctx.publish('UserChanged', { user: userView(next) });
          return userView(next);
        }),
    }),

    /**
     * Blocks a user by uid: the user record (and the fingerprint that led here, if any) durably, then every
     * session revoked and every socket closed with 4003 — all before the answer.
     */
    Block: message({
      allow: ['admin'],
      payload: z.object({ uid: z.uuid(), fingerprint: z.string().max(64).optional() }),
      handle: (p, ctx) =>
        underUser(ctx.state, p.uid, async () => {
          const u = await mustGet(ctx.store, p.uid);
          if (p.fingerprint) await ctx.ask(FingerprintStore.SetBlocked, { fingerprint: p.fingerprint, uid: u.uid, blocked: true });
          const next: UserRecord = { ...u, blocked: true };
          await ctx.store.put('users', u.uid, next);
          const { ended } = await ctx.ask(SessionStore.EndAllForUser, { uid: u.uid, reason: 'blocked' });
          logSecurityEvent(ctx.log, 'user.blocked', {
            ...actorOf(ctx.caller),
            target: { uid: u.uid },
            ...(p.fingerprint ? { fingerprint: p.fingerprint } : {}),
            sessionsEnded: ended,
          });
          ctx.publish('UserChanged', { user: userView(next) });
          return userView(next);
        }),
    }),

    /** Clears the blocked flags of the user and of its fingerprints; sessions revoked by the block stay revoked. */
    Unblock: message({
      allow: ['admin'],
      payload: z.object({ uid: z.uuid() }),
      handle: (p, ctx) =>
        underUser(ctx.state, p.uid, async () => {
          const u = await mustGet(ctx.store, p.uid);
          await ctx.ask(FingerprintStore.SetBlockedForUser, { uid: u.uid, blocked: false });
          const next: UserRecord = { ...u, blocked: false };
          await ctx.store.put('users', u.uid, next);
          logSecurityEvent(ctx.log, 'user.unblocked', { ...actorOf(ctx.caller), target: { uid: u.uid } });
          ctx.publish('UserChanged', { user: userView(next) });
          return userView(next);
        }),
    }),

    // ---- internal ----

    /** The full record, password hash included, for the login route only. */
    FindForLogin: message({
      allow: [],
      internal: true,
      payload: z.object({ username: z.string().max(256) }),
      handle: async (p, ctx) => (await findByUsername(ctx.store, p.username)) ?? null,
    }),

    /** Login upgrades an old, cheaper hash: stored only if the hash is still the one that was verified. */
    ReplaceHash: message({
      allow: [],
      internal: true,
      payload: z.object({ uid: z.string(), from: z.string(), to: z.string() }),
      handle: (p, ctx) =>
        underUser(ctx.state, p.uid, async () => {
          const u = await mustGet(ctx.store, p.uid);
          if (u.passwordHash !== p.from) return { replaced: false };
          await ctx.store.put('users', u.uid, { ...u, passwordHash: p.to });
          return { replaced: true };
        }),
    }),

    RecordLogin: message({
      allow: [],
      internal: true,
      payload: z.object({ uid: z.string() }),
      handle: (p, ctx) =>
        underUser(ctx.state, p.uid, async () => {
          const u = await mustGet(ctx.store, p.uid);
          if (u.blocked) throw new GreenroomError(ErrorCode.BLOCKED, 'this account is blocked');
          const next = { ...u, lastLogin: ctx.state.now() };
          await ctx.store.put('users', u.uid, next);
          return userView(next);
        }),
    }),

    CreateGuest: message({
      allow: [],
      internal: true,
      payload: z.object({}),
      handle: async (_p, ctx) => {
        const name = `guest-${uuidv4().slice(0, 8)}`;
        // A guest signs in as it is made: one write, lastLogin included.
        return userView(await create(ctx, { username: name, displayName: 'Guest', role: 'guest', passwordHash: null, lastLogin: ctx.state.now() }));
      },
    }),

    /**
     * Cleanup, one batch per ask (so the mailbox is given back between batches): looks at the next `batchSize`
     * guests after `after` (by uid) and deletes those unused for `idleMs` (no session used since, none live),
     * with their sessions and devices. A blocked guest, or one whose device is blocked, is kept: the block must
     * outlive it. Returns the cursor of the next batch, or null.
     */
    CleanupGuests: message({
      allow: [],
      internal: true,
      payload: z.object({ idleMs: z.number().int().min(0), batchSize: z.number().int().min(1).default(500), after: z.string().nullable().default(null) }),
      handle: async (p, ctx) => {
        const cutoff = ctx.state.now() - p.idleMs;
        const guests = (await ctx.store.findBy<UserRecord>('users', 'role', 'guest'))
          .map((r) => r.value)
          .filter((g) => p.after === null || g.uid > p.after)
          .sort((x, y) => (x.uid < y.uid ? -1 : 1));
        const batch = guests.slice(0, p.batchSize);
        const stale: UserRecord[] = [];
        for (const g of batch) {
          if (g.blocked || Math.max(g.lastLogin ?? 0, g.created) >= cutoff) continue;
          const activity = await ctx.ask(SessionStore.LastActivity, { uid: g.uid });
          if (activity.live || activity.lastUsed >= cutoff) continue;
          const devices = await ctx.ask(FingerprintStore.ForUser, { uid: g.uid });
          if (devices.some((f) => f.blocked)) continue;
          stale.push(g);
        }
        // One ask (and one flush) per batch, not per guest.
        const uids = stale.map((g) => g.uid);
        if (uids.length > 0) {
          await ctx.ask(SessionStore.DeleteForUser, { uids });
          await ctx.ask(FingerprintStore.DeleteForUser, { uids });
          await ctx.store.write(stale.map((g) => ({ op: 'delete', collection: 'users', id: g.uid })));
          for (const uid of uids) notifyLifecycle(ctx, 'userDeleted', { uid });
        }
        return { deleted: stale.length, next: guests.length > batch.length ? batch[batch.length - 1]!.uid : null };
      },
    }),

    /**
     * The user an identity provider's (issuer, subject) maps to, made on its first exchange: one stable uid per
     * pair, whatever the username or email says (an exchange never takes over an existing user by name). A
     * `role` (from the provider) replaces the user's role; null keeps it (`user` for a new user). Refused with
     * BLOCKED, writing nothing, for a blocked user. Made or found, the user's lastLogin is now.
     */
    Exchange: message({
      allow: [],
      internal: true,
      payload: z.object({
        issuer: z.string().min(1).max(1024),
        subject: z.string().min(1).max(1024),
        role: roleSchema.nullable(),
        displayName: z.string().max(400).nullable(),
        usernameHint: z.string().max(400).nullable(),
      }),
      handle: async (p, ctx) => {
        const key = identityKey(p.issuer, p.subject);
        const link = await ctx.store.get<IdentityRecord>(IDENTITIES, key);
        const u = link ? await ctx.store.get<UserRecord>('users', link.uid) : undefined;
        if (u) {
          return underUser(ctx.state, u.uid, async () => {
            const u = await mustGet(ctx.store, link!.uid); // again, under the user's lock
            if (u.blocked) throw new GreenroomError(ErrorCode.BLOCKED, 'this account is blocked');
            const next: UserRecord = { ...u, role: p.role ?? u.role, lastLogin: ctx.state.now() };
            await ctx.store.put('users', u.uid, next);
            if (next.role !== u.role) {
              await whenDurable(ctx.store);
              await ctx.ask(SessionStore.UpdateRole, { uid: u.uid, role: next.role });
              logSecurityEvent(ctx.log, 'user.role-changed', { ...actorOf(ctx.caller), target: { uid: u.uid }, role: { from: u.role, to: next.role }, via: 'exchange' });
              ctx.publish('UserChanged', { user: userView(next) });
            }
            return { user: userView(next), created: false };
          });
        }
        // A new user (or one whose record is gone): a username made safe and unique, a readable displayName. The
        // username always carries a mark of this identity: a hint (an email's local part, a preferred username)
        // is the provider's user's to choose, so the bare hint would let the first to exchange take a name
        // someone else is known by here.
        const base = usernameBase(p.usernameHint) || 'user';
        let username = '';
        for (const candidate of [`${base}-${key.slice(0, 8)}`, `${base}-${key.slice(0, 16)}`, `${base}-${randomBytes(6).toString('hex')}`]) {
          const parsed = usernameSchema.safeParse(candidate);
          if (parsed.success && !(await findByUsername(ctx.store, parsed.data))) {
            username = parsed.data;
            break;
          }
        }
        if (!username) username = `user-${randomBytes(8).toString('hex')}`;
        const shown = p.displayName === null ? null : displayNameSchema.safeParse(p.displayName);
        const t = ctx.state.now();
        const user: UserRecord = {
          uid: uuidv4(),
          username,
          usernameKey: usernameKey(username),
          displayName: shown?.success ? shown.data : username,
          role: p.role ?? 'user',
          blocked: false,
          created: t,
          lastLogin: t,
          passwordHash: null,
        };
        const identity: IdentityRecord = { uid: user.uid, issuer: p.issuer, subject: p.subject, created: t };
        // One write: the user and its link exist together or not at all.
        await ctx.store.write([
          { op: 'put', collection: 'users', id: user.uid, value: user },
          { op: 'put', collection: IDENTITIES, id: key, value: identity },
        ]);
        ctx.publish('UserChanged', { user: userView(user) });
        return { user: userView(user), created: true };
      },
    }),

    /** A user without a password (test harness and load tools: sessions are then issued directly). */
    Provision: message({
      allow: [],
      internal: true,
      payload: z.object({ username: usernameSchema, role: roleSchema }),
      handle: async (p, ctx) => userView(await create(ctx, { username: p.username, displayName: p.username, role: p.role, passwordHash: null })),
    }),

    /** GREENROOM_ADMIN bootstrap: creates the user unless the username exists (or, with onlyIfEmpty, any user does). */
    Ensure: message({
      allow: [],
      internal: true,
      payload: z.object({ username: usernameSchema, password: passwordSchema, role: roleSchema, onlyIfEmpty: z.boolean().default(false) }),
      handle: async (p, ctx) => {
        const existing = await findByUsername(ctx.store, p.username);
        if (existing) return { user: userView(existing), created: false };
        if (p.onlyIfEmpty && (await ctx.store.count('users')) > 0) return { user: null, created: false };
        const passwordHash = await hashPassword(p.password);
        try {
          return { user: userView(await create(ctx, { username: p.username, displayName: p.username, role: p.role, passwordHash })), created: true };
        } catch (err) {
          // Another node starting with the same GREENROOM_ADMIN made it meanwhile: it is there, as asked.
          const made = err instanceof GreenroomError && err.code === ErrorCode.CONFLICT ? await findByUsername(ctx.store, p.username) : undefined;
          if (!made) throw err;
          return { user: userView(made), created: false };
        }
      },
    }),
  }),
});
