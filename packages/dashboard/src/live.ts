/**
 * The page's live picture of the server: users, sessions and fingerprints kept current by pushes (admins) or by
 * polling the caller's own sessions (everyone else), plus health and counts for the header.
 *
 * A list is loaded whole on every (re)connect. Pushes that arrive while a list is loading are held and applied
 * on top of the loaded list, in arrival order, so no change is lost between two pages of a load.
 */
import type { ConnectionState, GreenroomClient } from '@greenroom/client';
import type { Page } from '@greenroom/protocol';
import { isLive, type FingerprintView, type Me, type SessionView, type Stats, type UserView } from './types.js';

export type Collection = 'users' | 'sessions' | 'fingerprints';
export type Topic = Collection | 'stats' | 'health' | 'connection' | 'role';
export type LoadState = { state: 'loading' } | { state: 'ready' } | { state: 'error'; message: string };
export type Health = 'unknown' | 'ok' | 'not-ready' | 'down';

const STATS_EVERY_MS = 3000;
const HEALTH_EVERY_MS = 5000;
const OWN_EVERY_MS = 4000;
const MAX_PAGES = 20;
const PAGE = 500;

export const SESSION_STORE = 'SessionStore';
export const USER_STORE = 'UserStore';
export const FINGERPRINT_STORE = 'FingerprintStore';

type Push = { collection: Collection; apply: () => void };

export class Live {
  readonly users = new Map<string, UserView>();
  readonly sessions = new Map<string, SessionView>();
  /** One row per (device, user), keyed by `rowKey`. */
  readonly fingerprints = new Map<string, FingerprintView>();
  readonly loads: Record<Collection, LoadState> = { users: { state: 'loading' }, sessions: { state: 'loading' }, fingerprints: { state: 'loading' } };
  /** More fingerprints exist than the page loaded (the oldest are left out). */
  fingerprintsTruncated = false;
  stats: Stats | null = null;
  health: Health = 'unknown';
  connection: ConnectionState = 'idle';
  /** The signed-in user's own record, once known. */
  self: UserView | null = null;
  readonly admin: boolean;

  private readonly listeners = new Map<Topic, Set<() => void>>();
  private readonly held = new Map<Collection, Push[]>();
  private readonly asked = new Set<string>();
  /** How many times each user's record was applied (see userAnswer). */
  private readonly userNews = new Map<string, number>();
  private readonly disposers: Array<() => void> = [];
  private subscribed = false;
  private disposed = false;

  constructor(
    readonly client: GreenroomClient,
    readonly me: Me,
  ) {
    this.admin = me.role === 'admin';
  }

  on(topic: Topic, fn: () => void): () => void {
    let set = this.listeners.get(topic);
    if (!set) this.listeners.set(topic, (set = new Set()));
    set.add(fn);
    return () => set.delete(fn);
  }

  private emit(topic: Topic): void {
    for (const fn of [...(this.listeners.get(topic) ?? [])]) fn();
  }

  start(): void {
    const c = this.client;
    for (const state of ['connecting', 'open', 'reconnecting', 'closed', 'signedOut', 'blocked'] as const) {
      this.disposers.push(
        c.on(state, () => {
          this.connection = state;
          this.emit('connection');
          // After the client's own re-subscribe loop and queue flush, which run right after this event.
          if (state === 'open') queueMicrotask(() => void this.onOpen());
        }),
      );
    }
    this.disposers.push(
      c.on('UserChanged', (p) => this.push('users', () => this.applyUser((p as { user: UserView }).user))),
      c.on('SessionChanged', (p) => this.push('sessions', () => this.applySession((p as { session: SessionView }).session))),
      c.on('FingerprintChanged', (p) => this.push('fingerprints', () => this.applyFingerprint((p as { fingerprint: FingerprintView }).fingerprint))),
    );
    this.every(HEALTH_EVERY_MS, () => this.pollHealth());
    if (this.admin) this.every(STATS_EVERY_MS, () => this.pollStats());
    else this.every(OWN_EVERY_MS, () => this.pollOwn());
    void c.connect();
  }

  dispose(): void {
    this.disposed = true;
    for (const d of this.disposers.splice(0)) d();
    this.listeners.clear();
  }

  private every(ms: number, fn: () => Promise<void>): void {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const tick = async () => {
      await fn().catch(() => undefined);
      if (!this.disposed) timer = setTimeout(tick, ms);
    };
    void tick();
    this.disposers.push(() => clearTimeout(timer));
  }

  private async onOpen(): Promise<void> {
    if (this.disposed) return;
    if (this.admin && !this.subscribed) {
      this.subscribed = true;
      // Subscribed before loading: nothing that changes after the load can be missed.
      for (const actor of [SESSION_STORE, USER_STORE, FINGERPRINT_STORE]) void this.client.subscribe(actor).catch(() => undefined);
    }
    if (this.admin) void this.pollStats();
    await this.reload();
  }

  /** Loads everything this user may see, from scratch. */
  async reload(): Promise<void> {
    const self = this.client.ask<UserView>(USER_STORE, 'GetOwn', {}).then((u) => {
      this.self = u;
      this.emit('role');
    });
    if (!this.admin) {
      await Promise.all([self, this.load('sessions', async () => (await this.client.ask<Page<SessionView>>(SESSION_STORE, 'GetOwn', {})).items)]);
      return;
    }
    await Promise.all([
      self,
      this.load('users', () => this.all<UserView>(USER_STORE, 'GetAll')),
      this.load('sessions', () => this.all<SessionView>(SESSION_STORE, 'GetAll')),
      this.load('fingerprints', async () => {
        const page = await this.client.ask<Page<FingerprintView>>(FINGERPRINT_STORE, 'GetMostRecent', { limit: PAGE });
        this.fingerprintsTruncated = page.nextCursor !== null;
        return page.items;
      }),
    ]).catch(() => undefined);
  }

  private async all<T>(actor: string, type: string): Promise<T[]> {
    const out: T[] = [];
    let cursor: string | null = null;
    for (let i = 0; i < MAX_PAGES; i += 1) {
      const page: Page<T> = await this.client.ask<Page<T>>(actor, type, { cursor, limit: PAGE });
      out.push(...page.items);
      cursor = page.nextCursor;
      if (cursor === null) break;
    }
    return out;
  }

  private async load(collection: Collection, fetchAll: () => Promise<Array<UserView | SessionView | FingerprintView>>): Promise<void> {
    this.held.set(collection, []);
    if (this.loads[collection].state === 'error') {
      this.loads[collection] = { state: 'loading' };
      this.emit(collection);
    }
    try {
      const items = await fetchAll();
      this.mapOf(collection).clear();
      for (const item of items) this.applyAny(collection, item);
      for (const p of this.held.get(collection) ?? []) p.apply();
      this.loads[collection] = { state: 'ready' };
    } catch (err) {
      this.loads[collection] = { state: 'error', message: (err as Error).message || 'the list could not be loaded' };
    } finally {
      this.held.delete(collection);
      this.emit(collection);
    }
  }

  private mapOf(collection: Collection): Map<string, unknown> {
    return collection === 'users' ? this.users : collection === 'sessions' ? this.sessions : this.fingerprints;
  }

  private applyAny(collection: Collection, item: UserView | SessionView | FingerprintView): void {
    if (collection === 'users') this.applyUser(item as UserView);
    else if (collection === 'sessions') this.applySession(item as SessionView);
    else this.applyFingerprint(item as FingerprintView);
  }

  private push(collection: Collection, apply: () => void): void {
    const held = this.held.get(collection);
    if (held) return void held.push({ collection, apply });
    apply();
    this.emit(collection);
  }

  private applyUser(u: UserView | undefined): void {
    if (!u?.uid) return;
    this.userNews.set(u.uid, (this.userNews.get(u.uid) ?? 0) + 1);
    this.users.set(u.uid, u);
    if (u.uid === this.me.uid) this.self = u;
  }

  private applySession(s: SessionView | undefined): void {
    if (!s?.sid) return;
    const prev = this.sessions.get(s.sid);
    if (isLive(s)) this.sessions.set(s.sid, prev?.current !== undefined && s.current === undefined ? { ...s, current: prev.current } : s);
    else this.sessions.delete(s.sid);
  }

  private applyFingerprint(f: FingerprintView | undefined): void {
    if (f?.fingerprint) this.fingerprints.set(rowKey(f), f);
  }

  /** A user's name for display; asks for users the page has not seen (admins only). */
  userName(uid: string): string | null {
    const u = this.users.get(uid) ?? (uid === this.me.uid ? this.self : null);
    if (u) return u.username;
    if (this.admin && this.loads.users.state === 'ready' && !this.asked.has(uid)) {
      this.asked.add(uid);
      this.client.ask<UserView>(USER_STORE, 'Get', { uid }).then(
        (user) => this.push('users', () => this.applyUser(user)),
        () => undefined,
      );
    }
    return null;
  }

  // ---- polling ----

  private async pollHealth(): Promise<void> {
    let health: Health;
    try {
      const up = await fetch('/healthz', { cache: 'no-store' });
      health = !up.ok ? 'down' : (await fetch('/readyz', { cache: 'no-store' })).ok ? 'ok' : 'not-ready';
    } catch {
      health = 'down';
    }
    if (health !== this.health) {
      this.health = health;
      this.emit('health');
    }
  }

  private async pollStats(): Promise<void> {
    if (this.connection !== 'open') return;
    try {
      this.stats = await this.client.ask<Stats>(SESSION_STORE, 'Stats', {});
      this.emit('stats');
    } catch (err) {
      // The admin role was taken away: the page reloads as what the user now is.
      if ((err as { code?: string }).code === 'FORBIDDEN') {
        this.self = await this.client.ask<UserView>(USER_STORE, 'GetOwn', {});
        this.emit('role');
      }
    }
  }

  private async pollOwn(): Promise<void> {
    if (this.connection !== 'open' || this.loads.sessions.state === 'loading') return;
    await this.reload();
  }

  /** Whether the signed-in user's role is no longer the one this page was built for. */
  roleChanged(): boolean {
    return this.self !== null && (this.self.role === 'admin') !== this.admin;
  }

  // ---- actions (each resolves when the server has answered) ----

  revoke(sid: string): Promise<unknown> {
    return this.client.ask(SESSION_STORE, 'Revoke', { sid }).then(async (r) => {
      if (!this.admin) await this.reload();
      return r;
    });
  }

  revokeAllForUser(uid: string): Promise<{ revoked: number }> {
    return this.client.ask<{ revoked: number }>(SESSION_STORE, 'RevokeAllForUser', { uid });
  }

  createUser(input: { username: string; password: string; role: string; displayName?: string }): Promise<UserView> {
    return this.client.ask<UserView>(USER_STORE, 'Create', input);
  }

  setRole(uid: string, role: string): Promise<UserView> {
    return this.userAnswer(uid, () => this.client.ask<UserView>(USER_STORE, 'Update', { uid, role }));
  }

  blockUser(uid: string, blocked: boolean): Promise<UserView> {
    return this.userAnswer(uid, () => this.client.ask<UserView>(USER_STORE, blocked ? 'Block' : 'Unblock', { uid }));
  }

  /** Blocks or unblocks a device and, by its uid, the user who owns it; answers with that user. */
  /** Blocks (or unblocks) exactly the row shown: that device for that user. */
  blockFingerprint(row: FingerprintView, blocked: boolean): Promise<UserView> {
    const { fingerprint, uid } = row;
    return this.userAnswer(uid, () => this.client.ask<UserView>(FINGERPRINT_STORE, blocked ? 'Block' : 'Unblock', { fingerprint, uid }));
  }

  /**
   * The answer is the user as stored when the server answered. The server pushes the change before it answers,
   * so the answer is applied only when no news of this user arrived meanwhile (it never overwrites a newer push).
   */
  private async userAnswer(uid: string, ask: () => Promise<UserView>): Promise<UserView> {
    const seen = this.userNews.get(uid) ?? 0;
    const user = await ask();
    if ((this.userNews.get(user.uid) ?? 0) === seen) this.push('users', () => this.applyUser(user));
    return user;
  }
}

/** A device seen with several users has a row for each. */
export function rowKey(f: FingerprintView): string {
  return `${f.fingerprint}/${f.uid}`;
}
