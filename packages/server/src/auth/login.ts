/**
 * Password login: the only place (with guest sign-in) that creates a session. The answer is the same for an
 * unknown user and a wrong password, and an unknown user still costs one password hash.
 */
import type { IncomingMessage } from 'node:http';
import { z } from 'zod';
import { ErrorCode, type TokenPair } from '@greenroom/protocol';
import type { ActorRegistry } from '../actors/registry.js';
import type { SessionRecord, UserRecord } from '../actors/records.js';
import { SESSION_STORE } from '../actors/session-store.js';
import { FINGERPRINT_STORE, USER_STORE } from '../actors/user-store.js';
import { GreenroomError } from '../errors.js';
import { deriveFingerprint } from './fingerprint.js';
import type { LoginLimiter } from './login-limiter.js';
import { DUMMY_HASH_PROMISE, verifyPassword } from './passwords.js';
import type { TokenService } from './tokens.js';

export const guestBody = z.object({ deviceId: z.string().min(1).max(128).optional() });

export const loginBody = z.object({
  username: z.string().min(1).max(256),
  password: z.string().min(1).max(1024),
  deviceId: z.string().min(1).max(128).optional(),
});

export class LoginService {
  constructor(
    private readonly registry: ActorRegistry,
    private readonly tokens: TokenService,
    private readonly fingerprintKey: Buffer,
    private readonly limiter: LoginLimiter,
    private readonly options: { trustProxy: boolean; guests: boolean },
  ) {}

  /** The client address the limiter counts: the socket's peer, or X-Forwarded-For only behind a trusted proxy. */
  clientAddress(req: IncomingMessage): string {
    const forwarded = req.headers['x-forwarded-for'];
    if (this.options.trustProxy && typeof forwarded === 'string' && forwarded.length > 0) return forwarded.split(',')[0]!.trim();
    return req.socket.remoteAddress ?? 'unknown';
  }

  async login(body: z.infer<typeof loginBody>, req: IncomingMessage): Promise<TokenPair> {
    const address = this.clientAddress(req);
    const wait = this.limiter.retryAfter(body.username, address);
    if (wait > 0) throw new GreenroomError(ErrorCode.RATE_LIMITED, 'too many failed logins; try again later', { retryAfterSeconds: wait });
    const user = await this.registry.ask<UserRecord | null>(USER_STORE, 'FindForLogin', { username: body.username });
    const hash = user?.passwordHash ?? (await DUMMY_HASH_PROMISE);
    const ok = await verifyPassword(body.password, hash);
    if (!user || !user.passwordHash || !ok) {
      this.limiter.fail(body.username, address);
      throw new GreenroomError(ErrorCode.INVALID_CREDENTIALS, 'invalid username or password');
    }
    if (user.blocked) throw new GreenroomError(ErrorCode.BLOCKED, 'this account is blocked');
    const fingerprint = deriveFingerprint(this.fingerprintKey, body.deviceId, req.headers);
    await this.registry.ask(FINGERPRINT_STORE, 'Seen', { fingerprint, uid: user.uid });
    await this.registry.ask(USER_STORE, 'RecordLogin', { uid: user.uid });
    return this.open(user.uid, fingerprint);
  }

  /** A session for a new guest user tied to this device; refused for a blocked device. */
  async guest(body: z.infer<typeof guestBody>, req: IncomingMessage): Promise<TokenPair> {
    if (!this.options.guests) throw new GreenroomError(ErrorCode.FORBIDDEN, 'guest sessions are disabled');
    const fingerprint = deriveFingerprint(this.fingerprintKey, body.deviceId, req.headers);
    if (await this.registry.ask<boolean>(FINGERPRINT_STORE, 'IsBlocked', { fingerprint })) {
      throw new GreenroomError(ErrorCode.BLOCKED, 'this device is blocked');
    }
    const user = await this.registry.ask<{ uid: string }>(USER_STORE, 'CreateGuest', {});
    await this.registry.ask(FINGERPRINT_STORE, 'Seen', { fingerprint, uid: user.uid });
    return this.open(user.uid, fingerprint);
  }

  /** Creates the session (SessionStore re-checks blocks inside its mailbox) and signs its first access token. */
  async open(uid: string, fingerprint: string): Promise<TokenPair> {
    const created = await this.registry.ask<{ session: SessionRecord; refreshToken: string; role: string }>(SESSION_STORE, 'Create', { uid, fingerprint });
    const access = await this.tokens.signAccess({ uid, sid: created.session.sid, role: created.role });
    return {
      uid,
      role: created.role,
      sid: created.session.sid,
      accessToken: access.token,
      refreshToken: created.refreshToken,
      accessExpiresAt: access.expiresAt,
      refreshExpiresAt: created.session.expiresAt,
    };
  }
}
