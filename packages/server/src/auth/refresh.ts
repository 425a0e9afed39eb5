/**
 * Refresh-token rotation, serialized per session: one session's refreshes queue in its own mailbox (a KeyedQueue
 * keyed by sid, shared with SessionStore's writes of that session); different sessions never wait on each other.
 *
 * Decision order (docs/security.md, Tokens): unknown token → INVALID_TOKEN (nothing revoked); session revoked → SESSION_REVOKED;
 * expired → SESSION_EXPIRED; user blocked → BLOCKED; the current token → rotate; the token just replaced, within
 * the grace period → the same pair that replaced it; anything else → REFRESH_REUSED, and the session is revoked.
 *
 * So N concurrent refreshes with one token make one rotation and all get the same pair, and a retry after a lost
 * response never bricks a session. The pair kept for the grace period is sealed with the server key and forgotten
 * when the grace period ends.
 */
import { ErrorCode, type TokenPair } from '@greenroom/protocol';
import type { ActorRegistry } from '../actors/registry.js';
import { endedSession, getSession, isLive, type LiveSessionRecord, type UserRecord } from '../actors/records.js';
import { SessionStore } from '../actors/session-store.js';
import { GreenroomError } from '../errors.js';
import type { Locks } from '../runtime/keyed-queue.js';
import type { Store } from '../store/store.js';
import { seal, unseal } from './seal.js';
import type { TokenService } from './tokens.js';

export interface RefreshOptions {
  refreshTtlMs: number;
  graceMs: number;
  now?: () => number;
}

type Outcome = { pair: TokenPair; rotated: boolean } | { reuse: true };

export class RefreshService {
  /** Sessions holding a sealed grace pair, and when it is due to be forgotten. */
  private readonly graceDue = new Map<string, number>();
  /** Grace pairs taken off `graceDue` whose erasure from the store has not finished yet. */
  private forgetting = 0;
  private sweeper: NodeJS.Timeout | null = null;
  private readonly now: () => number;
  /** Rotations performed (for tests and benchmarks: N concurrent refreshes of one token make one). */
  rotations = 0;
  /** Calls of refresh() — one per /auth/refresh request that presented a token (for tests of client single flight). */
  requests = 0;

  constructor(
    private readonly registry: ActorRegistry,
    private readonly store: Store,
    private readonly tokens: TokenService,
    private readonly locks: Locks,
    private readonly sealKey: Buffer,
    private readonly options: RefreshOptions,
  ) {
    this.now = options.now ?? Date.now;
  }

  async refresh(token: string): Promise<TokenPair> {
    this.requests += 1;
    const parsed = this.tokens.parseRefreshToken(token);
    if (!parsed) throw new GreenroomError(ErrorCode.INVALID_TOKEN, 'invalid refresh token');
    const outcome = await this.locks.run(parsed.sid, () => this.decide(parsed.sid, token));
    if ('reuse' in outcome) {
      // Outside the session's queue: SessionStore takes it again to revoke, then closes the sockets (4001 revoked).
      await this.registry.ask(SessionStore.End, { sid: parsed.sid, reason: 'revoked' });
      throw new GreenroomError(ErrorCode.REFRESH_REUSED, 'refresh token reuse: the session is revoked');
    }
    if (outcome.rotated) await this.registry.ask(SessionStore.Touch, { sid: parsed.sid, expiresAt: outcome.pair.refreshExpiresAt });
    return outcome.pair;
  }

  /** Queued per session and empty when idle (for tests that check nothing grows). */
  get pendingGrace(): number {
    // Counts a pair until it is erased from the store, not just until it is due: 0 means none is left on disk.
    return this.graceDue.size + this.forgetting;
  }

  private async decide(sid: string, token: string): Promise<Outcome> {
    const t = this.now();
    const s = await getSession(this.store, sid);
    if (!s) throw new GreenroomError(ErrorCode.INVALID_TOKEN, 'invalid refresh token');
    if (s.revokedAt !== null) throw new GreenroomError(ErrorCode.SESSION_REVOKED, 'session revoked');
    if (s.ended || !isLive(s, t)) {
      // Found expired: its tokens can never count again, so its token state goes now rather than at cleanup.
      if (!s.ended) await this.store.put('sessions', sid, endedSession(s));
      throw new GreenroomError(ErrorCode.SESSION_EXPIRED, 'session expired');
    }
    const user = await this.store.get<UserRecord>('users', s.uid);
    if (!user) throw new GreenroomError(ErrorCode.INVALID_TOKEN, 'invalid refresh token');
    if (user.blocked) throw new GreenroomError(ErrorCode.BLOCKED, 'this account is blocked');

    if (this.tokens.matches(token, s.refreshHash)) return { pair: await this.rotate(s, user, t), rotated: true };

    if (s.previousHash && s.rotatedAt !== null && s.graceSealed && t - s.rotatedAt <= this.options.graceMs && this.tokens.matches(token, s.previousHash)) {
      const plain = unseal(this.sealKey, s.graceSealed, s.sid);
      if (plain) return { pair: JSON.parse(plain) as TokenPair, rotated: false };
    }
    return { reuse: true };
  }

  private async rotate(s: LiveSessionRecord, user: UserRecord, t: number): Promise<TokenPair> {
    const generation = s.generation + 1;
    const refreshToken = this.tokens.newRefreshToken(s.sid, generation);
    const access = await this.tokens.signAccess({ uid: s.uid, sid: s.sid, role: user.role }, t);
    const expiresAt = Math.min(t + this.options.refreshTtlMs, s.absoluteExpiresAt);
    const pair: TokenPair = {
      uid: s.uid,
      role: user.role,
      sid: s.sid,
      accessToken: access.token,
      refreshToken,
      accessExpiresAt: access.expiresAt,
      refreshExpiresAt: expiresAt,
    };
    const next: LiveSessionRecord = {
      ...s,
      refreshHash: this.tokens.hash(refreshToken),
      generation,
      previousHash: s.refreshHash,
      rotatedAt: t,
      graceSealed: this.options.graceMs > 0 ? seal(this.sealKey, JSON.stringify(pair), s.sid) : null,
      lastUsed: t,
      expiresAt,
    };
    await this.store.put('sessions', s.sid, next);
    this.rotations += 1;
    if (next.graceSealed) this.forgetLater(s.sid, t + this.options.graceMs);
    return pair;
  }

  /** One timer for all sessions, running only while some grace pair is held. */
  private forgetLater(sid: string, due: number): void {
    this.graceDue.set(sid, due);
    this.sweeper ??= setInterval(() => void this.forgetDue(), Math.min(1000, Math.max(50, this.options.graceMs))).unref();
  }

  private async forgetDue(): Promise<void> {
    const t = this.now();
    const due = [...this.graceDue].filter(([, at]) => at < t).map(([sid]) => sid);
    for (const sid of due) this.graceDue.delete(sid);
    if (this.graceDue.size === 0 && this.sweeper) {
      clearInterval(this.sweeper);
      this.sweeper = null;
    }
    this.forgetting += due.length;
    await Promise.all(
      due.map((sid) =>
        this.locks
          .run(sid, async () => {
            const s = await getSession(this.store, sid);
            // Only if no newer rotation has replaced the pair since (an ended session holds none).
            if (s && !s.ended && s.graceSealed && s.rotatedAt !== null && t - s.rotatedAt > this.options.graceMs) {
              await this.store.put('sessions', sid, { ...s, graceSealed: null, previousHash: null });
            }
          })
          .finally(() => {
            this.forgetting -= 1;
          }),
      ),
    ).catch(() => undefined);
  }

  stop(): void {
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = null;
  }
}
