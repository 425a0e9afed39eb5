/**
 * SessionStore: sessions (one login on one device, keyed by sid) and the live connections that belong to them.
 *
 * The gateway asks it to `Register` a connection and waits for the answer before writing the HTTP 101, so a
 * client's first ask always finds its session. Revoking a session closes its sockets before the revoke answers.
 * It never asks another actor (UserStore and the HTTP routes ask it), so no two actors can wait on each other.
 */
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { Close, ErrorCode, SESSION_END_REASONS, sessionEnds, type CloseSpec } from '@greenroom/protocol';
import { GreenroomError } from '../errors.js';
import type { Peers } from '../cluster/peers.js';
import type { Locks } from '../runtime/keyed-queue.js';
import type { Store, StoredRecord } from '../store/store.js';
import { actorOf, logSecurityEvent } from '../security-events.js';
import { defineActor, notifyLifecycle, type Caller, type Role } from './define.js';
import { allPages, page, pageRequest } from './paging.js';
import {
  deviceRows,
  endedSession,
  expiryOf,
  getSession,
  holdsTokenState,
  isLive,
  readSession,
  sessionsOfUser,
  sessionViewSchema,
  type EndedSessionRecord,
  type LiveSessionRecord,
  type SessionEndReason,
  type SessionRecord,
  type SessionView,
  type UserRecord,
} from './records.js';

/** What a caller on a socket is, as of now: the role is updated in place when an admin changes it. */
export class Principal implements Caller {
  readonly system = false;
  constructor(
    readonly connectionId: string,
    readonly uid: string,
    readonly sid: string,
    public role: Role,
    /** When the session expires unless refreshed; checked on every ask and heartbeat. */
    public expiresAt: number,
    /** The client's address (for the log's security events). */
    readonly address: string | null = null,
  ) {}
}

/** The gateway's side of a registered connection. */
export interface LiveConnection {
  readonly id: string;
  /** Closes the socket (or, before the 101, makes the upgrade fail). */
  close(spec: CloseSpec): void;
}

interface Registered {
  readonly connection: LiveConnection;
  readonly principal: Principal;
}

export interface SessionStoreDeps {
  /**
   * Per-key locks shared with refresh and UserStore: every write of a session record runs under its sid, the
   * creation of a user's session (its cap) under `u:<uid>`. Across nodes when there are several.
   */
  locks: Locks;
  /** The other nodes (cluster/peers.ts): effects reach their sockets, quotas count theirs. */
  peers: Peers;
  newRefreshToken(sid: string, generation: number): string;
  hashToken(token: string): string;
  refreshTtlMs: number;
  refreshMaxTtlMs: number;
  maxSessionsPerUser: number;
  /** Live connections of one session / one user, at most (an upgrade past either is refused with 429). */
  maxConnectionsPerSession: number;
  maxConnectionsPerUser: number;
  /** Asks per second over the last few seconds (for Stats). */
  askRate(): number;
  now?: () => number;
}

/** The live connections this server holds: by connection id, by session, and their count per user. */
function connectionRegistry() {
  return { connections: new Map<string, Registered>(), bySid: new Map<string, Set<Registered>>(), perUser: new Map<string, number>() };
}
type Live = ReturnType<typeof connectionRegistry>;

function initialState(deps: SessionStoreDeps) {
  const now = deps.now ?? Date.now;
  const state = { ...connectionRegistry(), deps, now, started: now() };
  // Other nodes' effects touch only this node's sockets: synchronous, so they need no turn of the mailbox (and a
  // mailbox waiting on another node's confirmation never waits on this one's).
  deps.peers.handle({
    closeSessions: (sids, close) => {
      for (const sid of sids) closeSockets(state, sid, close);
    },
    setRole: (uid, role) => setRole(state, uid, role),
  });
  return state;
}
type State = ReturnType<typeof initialState>;
/** What the helpers below need of a handler's context. */
type Ctx = { state: State; store: Store; publish: (event: 'SessionChanged', payload: z.output<typeof sessionChanged>) => void };

/** Closes every socket of one session on this server. */
function closeSockets(state: Live, sid: string, spec: CloseSpec): void {
  for (const r of state.bySid.get(sid) ?? []) r.connection.close(spec);
}

/** Adds a registration to this server's maps. */
function add(state: Live, reg: Registered): void {
  const { uid, sid } = reg.principal;
  state.connections.set(reg.connection.id, reg);
  state.perUser.set(uid, (state.perUser.get(uid) ?? 0) + 1);
  let set = state.bySid.get(sid);
  if (!set) state.bySid.set(sid, (set = new Set()));
  set.add(reg);
}

/** Removes a registration from this server's maps (if it is there). */
function remove(state: Live, reg: Registered): void {
  const { uid, sid } = reg.principal;
  if (!state.connections.delete(reg.connection.id)) return;
  const left = (state.perUser.get(uid) ?? 1) - 1;
  if (left > 0) state.perUser.set(uid, left);
  else state.perUser.delete(uid);
  const set = state.bySid.get(sid);
  set?.delete(reg);
  if (set?.size === 0) state.bySid.delete(sid);
}

/** Closes the sessions' sockets here and on every other node (before the caller answers). */
async function closeEverywhere(state: State, sids: readonly string[], spec: CloseSpec): Promise<void> {
  for (const sid of sids) closeSockets(state, sid, spec);
  await state.deps.peers.closeSessions(sids, spec);
}

/** The user's open sockets on this server act with `role` from their next ask. */
function setRole(state: Live, uid: string, role: string): void {
  if (!state.perUser.has(uid)) return;
  for (const r of state.connections.values()) if (r.principal.uid === uid) r.principal.role = role;
}

/**
 * A session as admins and its user see it. `counts`: open connections by sid over every node (several nodes);
 * without it, this node's own.
 */
function view(state: State, s: SessionRecord, counts?: Map<string, number> | null): SessionView {
  return {
    sid: s.sid,
    uid: s.uid,
    fingerprint: s.fingerprint,
    created: s.created,
    lastUsed: s.lastUsed,
    expiresAt: s.expiresAt,
    revokedAt: s.revokedAt,
    revokeReason: s.revokeReason,
    connections: counts ? (counts.get(s.sid) ?? 0) : (state.bySid.get(s.sid)?.size ?? 0),
  };
}

/**
 * Ends sessions: each is re-read and written in its own session queue (so a refresh in flight cannot undo it),
 * then their sockets are closed, then subscribers are told. The write keeps only what an ended session needs (its
 * token state goes with it). Returns the sessions that this call ended.
 */
async function revoke(ctx: Ctx, sessions: SessionRecord[], reason: SessionEndReason): Promise<EndedSessionRecord[]> {
  const t = ctx.state.now();
  const ended = await Promise.all(
    sessions.map((s) =>
      ctx.state.deps.locks.run(s.sid, async () => {
        const current = await getSession(ctx.store, s.sid);
        // An expired session is revoked too (its record then says so); only one revoked already is left as it is.
        if (!current || current.revokedAt !== null) return null;
        const next = endedSession(current, { at: t, reason });
        await ctx.store.put('sessions', s.sid, next);
        return next;
      }),
    ),
  );
  // Sockets close even for a session that was already revoked: nothing of it may stay connected, on any node.
  await closeEverywhere(ctx.state, sessions.map((s) => s.sid), sessionEnds[reason].close);
  const done = ended.filter((s) => s !== null);
  for (const s of done) notifyLifecycle(ctx, 'sessionEnded', { uid: s.uid, sid: s.sid, reason });
  for (const s of done) ctx.publish('SessionChanged', { session: view(ctx.state, s), change: 'revoked' });
  return done;
}

/** The session and its user, if the session is live and the user unblocked; else the error that says why. */
async function liveSession(state: State, store: Store, uid: string, sid: string) {
  const session = await getSession(store, sid);
  if (!session || session.uid !== uid) throw new GreenroomError(ErrorCode.INVALID_TOKEN, 'unknown session');
  if (session.revokedAt !== null) throw new GreenroomError(ErrorCode.SESSION_REVOKED, 'session revoked');
  if (!isLive(session, state.now())) throw new GreenroomError(ErrorCode.SESSION_EXPIRED, 'session expired');
  const user = await store.get<UserRecord>('users', uid);
  if (!user) throw new GreenroomError(ErrorCode.INVALID_TOKEN, 'unknown user');
  if (user.blocked) throw new GreenroomError(ErrorCode.BLOCKED, 'this account is blocked');
  return { session, user };
}

/** Pushed to admins: a session was created, revoked, or gained or lost a connection. */
const sessionChanged = z.object({ session: sessionViewSchema, change: z.enum(['created', 'revoked', 'connected', 'disconnected']) });

export const SessionStore = defineActor({
  name: 'SessionStore',
  state: (_ctx, deps: SessionStoreDeps) => initialState(deps),
  events: { SessionChanged: sessionChanged },
  subscribers: ['admin'],
  messages: (message) => ({
    GetOwn: message({
      allow: 'any',
      payload: z.object({}),
      handle: async (_p, ctx) => {
        const mine = (await sessionsOfUser(ctx.store, ctx.caller.uid ?? '')).filter((s) => isLive(s, ctx.state.now()));
        mine.sort((a, b) => b.lastUsed - a.lastUsed || a.sid.localeCompare(b.sid));
        const counts = await ctx.state.deps.peers.connections(ctx.caller.uid ?? '');
        return page(mine.map((s) => ({ ...view(ctx.state, s, counts), current: s.sid === ctx.caller.sid })), null);
      },
    }),

    GetAll: message({
      allow: ['admin'],
      payload: pageRequest,
      handle: async (p, ctx) => {
        const res = await ctx.store.scan('sessions', { after: p.cursor ?? undefined, limit: p.limit });
        const sessions = res.items.map((i) => readSession(i.value)!);
        // Over every node: one read per user of the page (nothing to read on one node).
        const counts = new Map<string, Map<string, number> | null>();
        for (const uid of new Set(sessions.map((s) => s.uid))) counts.set(uid, await ctx.state.deps.peers.connections(uid));
        return page(sessions.map((s) => view(ctx.state, s, counts.get(s.uid))), res.next);
      },
    }),

    Revoke: message({
      allow: 'any',
      payload: z.object({ sid: z.uuid() }),
      handle: async (p, ctx) => {
        const s = await getSession(ctx.store, p.sid);
        if (!s) throw new GreenroomError(ErrorCode.NOT_FOUND, 'no such session');
        if (ctx.caller.role !== 'admin' && !ctx.caller.system && s.uid !== ctx.caller.uid) {
          throw new GreenroomError(ErrorCode.FORBIDDEN, 'you may revoke only your own sessions');
        }
        const ended = await revoke(ctx, [s], 'revoked');
        logSecurityEvent(ctx.log, 'session.revoked', { ...actorOf(ctx.caller), target: { uid: s.uid, sid: s.sid }, ended: ended.length });
        return { revoked: 1 };
      },
    }),

    RevokeAllForUser: message({
      allow: ['admin'],
      payload: z.object({ uid: z.uuid() }),
      handle: async (p, ctx) => {
        if (!(await ctx.store.get('users', p.uid))) throw new GreenroomError(ErrorCode.NOT_FOUND, 'no such user');
        const ended = await revoke(ctx, await sessionsOfUser(ctx.store, p.uid), 'revoked');
        logSecurityEvent(ctx.log, 'user.sessions-revoked', { ...actorOf(ctx.caller), target: { uid: p.uid }, ended: ended.length });
        return { revoked: ended.length };
      },
    }),

    Stats: message({
      allow: ['admin'],
      payload: z.object({}),
      handle: async (_p, ctx) => {
        const t = ctx.state.now();
        let live = 0;
        await allPages(async (after) => {
          const res = await ctx.store.scan('sessions', { after: after ?? undefined, limit: 500 });
          for (const i of res.items) if (isLive(readSession(i.value)!, t)) live += 1;
          return { items: [], next: res.next };
        });
        return { connections: ctx.state.connections.size, sessions: live, asksPerSecond: ctx.state.deps.askRate(), uptime: t - ctx.state.started };
      },
    }),

    // ---- internal: asked by the server itself, never from the wire ----

    /** Login and guest: a new session, evicting the least recently used beyond the per-user cap. */
    Create: message({
      allow: [],
      internal: true,
      payload: z.object({ uid: z.string(), fingerprint: z.string(), passwordChangedAt: z.number().nullable().optional() }),
      // Under the user's creation lock (on every node): the cap counts sessions no other node is creating. Not the
      // user's own lock: UserStore holds that while it asks this mailbox to end the user's sessions.
      handle: (p, ctx) => ctx.state.deps.locks.run(`c:${p.uid}`, async () => {
        const t = ctx.state.now();
        // Re-checked inside the mailbox: a block that committed before this message wins.
        const user = await ctx.store.get<UserRecord>('users', p.uid);
        if (!user) throw new GreenroomError(ErrorCode.INVALID_CREDENTIALS, 'invalid username or password');
        // A password login checked a password that has been changed since: that password ended with its change.
        if (p.passwordChangedAt !== undefined && (user.passwordChangedAt ?? null) !== p.passwordChangedAt) {
          throw new GreenroomError(ErrorCode.INVALID_CREDENTIALS, 'invalid username or password');
        }
        // The user's own row of this device; for a guest (a new identity on this device), any row of it.
        const rows = (await deviceRows(ctx.store, p.fingerprint)).filter((r) => user.role === 'guest' || r.value.uid === p.uid);
        if (user.blocked || rows.some((r) => r.value.blocked)) throw new GreenroomError(ErrorCode.BLOCKED, 'this account is blocked');

        // Past the cap, the least recently used sessions are evicted first (4001 evicted).
        const live = (await sessionsOfUser(ctx.store, p.uid)).filter((s) => isLive(s, t));
        live.sort((a, b) => a.lastUsed - b.lastUsed || a.created - b.created);
        await revoke(ctx, live.slice(0, Math.max(0, live.length - ctx.state.deps.maxSessionsPerUser + 1)), 'evicted');

        const sid = randomUUID();
        const refreshToken = ctx.state.deps.newRefreshToken(sid, 0);
        const absoluteExpiresAt = t + ctx.state.deps.refreshMaxTtlMs;
        const session: LiveSessionRecord = {
          sid,
          uid: p.uid,
          fingerprint: p.fingerprint,
          created: t,
          lastUsed: t,
          expiresAt: Math.min(t + ctx.state.deps.refreshTtlMs, absoluteExpiresAt),
          absoluteExpiresAt,
          revokedAt: null,
          revokeReason: null,
          refreshHash: ctx.state.deps.hashToken(refreshToken),
          generation: 0,
          previousHash: null,
          rotatedAt: null,
          graceSealed: null,
        };
        await ctx.state.deps.locks.run(sid, () => ctx.store.put('sessions', sid, session));
        // A block on another node writes the user, then reads its sessions: it saw this one, or this read sees it.
        if ((await ctx.store.get<UserRecord>('users', p.uid))?.blocked) {
          await revoke(ctx, [session], 'blocked');
          throw new GreenroomError(ErrorCode.BLOCKED, 'this account is blocked');
        }
        ctx.publish('SessionChanged', { session: view(ctx.state, session), change: 'created' });
        return { session, refreshToken, role: user.role };
      }),
    }),

    /** The green room: binds a connection to its session once the session is live and its user unblocked. */
    Register: message({
      allow: [],
      internal: true,
      payload: z.object({
        connection: z.custom<LiveConnection>((v) => typeof v === 'object' && v !== null),
        uid: z.string(),
        sid: z.string(),
        address: z.string().nullable().default(null),
      }),
      handle: async (p, ctx) => {
        // Quotas: one stolen or shared token cannot take every connection slot of the server.
        if ((ctx.state.bySid.get(p.sid)?.size ?? 0) >= ctx.state.deps.maxConnectionsPerSession) {
          throw new GreenroomError(ErrorCode.RATE_LIMITED, 'too many connections for this session', { retryAfterSeconds: 5 });
        }
        if ((ctx.state.perUser.get(p.uid) ?? 0) >= ctx.state.deps.maxConnectionsPerUser) {
          throw new GreenroomError(ErrorCode.RATE_LIMITED, 'too many connections for this user', { retryAfterSeconds: 5 });
        }
        // Registered before the session is read, then taken back if it is not live: a revocation on another node
        // either wrote before that read (refused here) or finds the registration when its close arrives.
        // Its role is filled in from the user read below, unless a role change from another node got here first.
        const principal = new Principal(p.connection.id, p.uid, p.sid, '', 0, p.address);
        const reg: Registered = { connection: p.connection, principal };
        add(ctx.state, reg);
        try {
          await ctx.state.deps.peers.admit({ id: p.connection.id, uid: p.uid, sid: p.sid }, { perUser: ctx.state.deps.maxConnectionsPerUser, perSession: ctx.state.deps.maxConnectionsPerSession });
          const { session: s, user } = await liveSession(ctx.state, ctx.store, p.uid, p.sid).catch(async (err: unknown) => {
            await ctx.state.deps.peers.release({ id: p.connection.id, uid: p.uid });
            throw err;
          });
          if (principal.role === '') principal.role = user.role;
          principal.expiresAt = expiryOf(s);
          ctx.publish('SessionChanged', { session: view(ctx.state, s), change: 'connected' });
          return principal;
        } catch (err) {
          remove(ctx.state, reg);
          throw err;
        }
      },
    }),

    /** Is this session live and its user unblocked, right now? Answers the user's current role. */
    Check: message({
      allow: [],
      internal: true,
      payload: z.object({ uid: z.string(), sid: z.string() }),
      handle: async (p, ctx) => ({ role: (await liveSession(ctx.state, ctx.store, p.uid, p.sid)).user.role }),
    }),

    Unregister: message({
      allow: [],
      internal: true,
      payload: z.object({ connectionId: z.string() }),
      handle: async (p, ctx) => {
        const reg = ctx.state.connections.get(p.connectionId);
        if (!reg) return { unregistered: false };
        remove(ctx.state, reg);
        await ctx.state.deps.peers.release({ id: p.connectionId, uid: reg.principal.uid });
        const s = await getSession(ctx.store, reg.principal.sid);
        if (s) ctx.publish('SessionChanged', { session: view(ctx.state, s), change: 'disconnected' });
        return { unregistered: true };
      },
    }),

    /** Which session a connection belongs to, as of now (null once it is gone). */
    Resolve: message({
      allow: [],
      internal: true,
      payload: z.object({ connectionId: z.string() }),
      handle: (p, ctx) => ctx.state.connections.get(p.connectionId)?.principal ?? null,
    }),

    /** Ends one session for a reason (logout, reuse); its sockets close with 4001 and that reason. Answers whose it was. */
    End: message({
      allow: [],
      internal: true,
      payload: z.object({ sid: z.string(), reason: z.enum(SESSION_END_REASONS) }),
      handle: async (p, ctx) => {
        const s = await getSession(ctx.store, p.sid);
        if (!s) throw new GreenroomError(ErrorCode.NOT_FOUND, 'no such session');
        return { ended: (await revoke(ctx, [s], p.reason)).length, uid: s.uid };
      },
    }),

    /** Ends every session of a user but `except` (a block closes them with 4003; a new password keeps its own). */
    EndAllForUser: message({
      allow: [],
      internal: true,
      payload: z.object({ uid: z.string(), reason: z.enum(['revoked', 'blocked']), except: z.string().nullable().default(null) }),
      handle: async (p, ctx) => {
        const sessions = (await sessionsOfUser(ctx.store, p.uid)).filter((s) => s.sid !== p.except);
        return { ended: (await revoke(ctx, sessions, p.reason)).length };
      },
    }),

    /** After a refresh: the session's sockets now expire later. */
    Touch: message({
      allow: [],
      internal: true,
      payload: z.object({ sid: z.string(), expiresAt: z.number() }),
      handle: (p, ctx) => {
        for (const r of ctx.state.bySid.get(p.sid) ?? []) r.principal.expiresAt = p.expiresAt;
        return { touched: true };
      },
    }),

    /**
     * Cleanup, one page per ask (the mailbox is given back between pages): deletes the sessions of the page
     * after `after` that have been over (revoked or expired) for longer than the retention, and slims those over
     * for less that still hold token state (found expired, or ended by an older version). Live sessions are never
     * touched. Returns the cursor of the next page, or null.
     */
    Cleanup: message({
      allow: [],
      internal: true,
      payload: z.object({ retentionMs: z.number().int().min(0), batchSize: z.number().int().min(1).default(500), after: z.string().nullable().default(null) }),
      handle: async (p, ctx) => {
        const cutoff = ctx.state.now() - p.retentionMs;
        const overSince = (s: SessionRecord) => s.revokedAt ?? expiryOf(s);
        const fate = (raw: StoredRecord | undefined): 'delete' | 'slim' | null => {
          const s = readSession(raw);
          if (!raw || !s || isLive(s, ctx.state.now())) return null;
          if (overSince(s) < cutoff) return 'delete';
          return holdsTokenState(raw) ? 'slim' : null;
        };
        const res = await ctx.store.scan('sessions', { after: p.after ?? undefined, limit: p.batchSize });
        const due = res.items.filter((i) => fate(i.value) !== null).map((i) => i.id);
        // Re-checked in each session's queue: a session refreshed meanwhile is neither deleted nor slimmed.
        const done = await Promise.all(
          due.map((sid) =>
            ctx.state.deps.locks.run(sid, async () => {
              const raw = await ctx.store.get('sessions', sid);
              const what = fate(raw);
              const s = readSession(raw);
              if (!what || !s) return null;
              if (what === 'slim') {
                await ctx.store.put('sessions', sid, endedSession(s));
                return what;
              }
              await ctx.store.delete('sessions', sid);
              closeSockets(ctx.state, sid, sessionEnds[s.revokedAt ? (s.revokeReason ?? 'revoked') : 'expired'].close);
              // A revoked session was announced when it was revoked; an expired one ends here, for the hooks.
              if (!s.revokedAt) notifyLifecycle(ctx, 'sessionEnded', { uid: s.uid, sid: s.sid, reason: 'expired' });
              return what;
            }),
          ),
        );
        return { deleted: done.filter((d) => d === 'delete').length, slimmed: done.filter((d) => d === 'slim').length, next: res.next };
      },
    }),

    /** When a user last used any session (guest cleanup asks before deleting a guest). */
    LastActivity: message({
      allow: [],
      internal: true,
      payload: z.object({ uid: z.string() }),
      handle: async (p, ctx) => {
        const sessions = await sessionsOfUser(ctx.store, p.uid);
        return { lastUsed: sessions.reduce((m, s) => Math.max(m, s.lastUsed), 0), live: sessions.some((s) => isLive(s, ctx.state.now())) };
      },
    }),

    /** Removes every session of the users being deleted (after closing any socket); one flush for many users. */
    DeleteForUser: message({
      allow: [],
      internal: true,
      payload: z.object({ uids: z.array(z.string()) }),
      handle: async (p, ctx) => {
        const sessions = (await Promise.all(p.uids.map((uid) => sessionsOfUser(ctx.store, uid)))).flat();
        await closeEverywhere(ctx.state, sessions.map((s) => s.sid), Close.revoked);
        await Promise.all(sessions.map((s) => ctx.state.deps.locks.run(s.sid, () => ctx.store.delete('sessions', s.sid))));
        // A revoked session was announced when it was revoked; the others end here, with their user.
        for (const s of sessions) {
          if (s.revokedAt === null) notifyLifecycle(ctx, 'sessionEnded', { uid: s.uid, sid: s.sid, reason: isLive(s, ctx.state.now()) ? 'revoked' : 'expired' });
        }
        return { deleted: sessions.length };
      },
    }),

    /**
     * After this node may have missed other nodes' effects (its bus subscriber was away): every session it holds
     * sockets of is read again; the sockets of one no longer live, or of a blocked user, close as the effect would
     * have closed them, and roles are brought up to date.
     */
    Revalidate: message({
      allow: [],
      internal: true,
      payload: z.object({}),
      handle: async (_p, ctx) => {
        let closed = 0;
        for (const [sid, regs] of [...ctx.state.bySid]) {
          const uid = regs.values().next().value?.principal.uid;
          if (uid === undefined) continue;
          try {
            const { user } = await liveSession(ctx.state, ctx.store, uid, sid);
            setRole(ctx.state, uid, user.role);
          } catch (err) {
            if (!(err instanceof GreenroomError)) throw err;
            const s = await getSession(ctx.store, sid);
            const reason: SessionEndReason = err.code === ErrorCode.BLOCKED ? 'blocked' : err.code === ErrorCode.SESSION_EXPIRED ? 'expired' : (s?.revokeReason ?? 'revoked');
            closeSockets(ctx.state, sid, sessionEnds[reason].close);
            closed += 1;
          }
        }
        return { closed };
      },
    }),

    /** A role change applies to the next ask on every open socket of the user. */
    UpdateRole: message({
      allow: [],
      internal: true,
      payload: z.object({ uid: z.string(), role: z.string() }),
      handle: async (p, ctx) => {
        setRole(ctx.state, p.uid, p.role);
        await ctx.state.deps.peers.setRole(p.uid, p.role);
        return { updated: true };
      },
    }),
  }),
});
