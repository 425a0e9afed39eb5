/**
 * Password login and guest sign-in: the only places that create a session. The answer is the same for an unknown
 * user and a wrong password, an unknown user still costs one password hash, and every attempt is counted by the
 * limiter before its password is checked.
 */
import type { IncomingMessage } from 'node:http';
import { z } from 'zod';
import { ErrorCode, type TokenPair } from '@greenroom/protocol';
import type { Logger } from 'pino';
import type { ActorRegistry } from '../actors/registry.js';
import type { SessionRecord, UserRecord } from '../actors/records.js';
import { SessionStore } from '../actors/session-store.js';
import { FingerprintStore } from '../actors/fingerprint-store.js';
import { UserStore } from '../actors/user-store.js';
import { GreenroomError } from '../errors.js';
import { logSecurityEvent } from '../security-events.js';
import type { AttemptCounter } from './attempt-windows.js';
import { limiterKey, type ProxyTrust } from './client-address.js';
import type { Devices } from './fingerprint.js';
import type { LoginLimit, LoginLimiter } from './login-limiter.js';
import { DUMMY_HASH_PROMISE, hashPassword, needsRehash, verifyPassword } from './passwords.js';
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
    private readonly devices: Devices,
    private readonly limiter: LoginLimiter,
    /** Guest sign-ins per client address. */
    private readonly guestWindows: AttemptCounter,
    private readonly options: { proxies: ProxyTrust; guests: boolean; log: Logger },
  ) {}

  /** The client address the limiters count (see `clientAddress`). */
  clientAddress(req: IncomingMessage): string {
    return this.options.proxies.clientAddress(req);
  }

  async login(body: z.infer<typeof loginBody>, req: IncomingMessage): Promise<TokenPair> {
    const device = this.devices.verify(body.deviceId);
    let lookup: Promise<UserRecord | null> | undefined;
    const findUser = () => (lookup ??= this.registry.ask(UserStore.FindForLogin, { username: body.username }));
    const address = this.clientAddress(req);
    const deviceKey = device === null ? undefined : this.devices.deviceKey(device);
    const attempt = await this.limiter.begin(
      body.username,
      limiterKey(address),
      async () => {
        const user = await findUser();
        return !!user && deviceKey !== undefined && this.registry.ask(FingerprintStore.KnownDevice, { device: deviceKey, uid: user.uid });
      },
      deviceKey,
    );
    let user: UserRecord | null;
    try {
      user = await findUser();
      // Verified in every case: an unknown user (or one without a password) costs one hash too, so timing tells nothing.
      const ok = await verifyPassword(body.password, user?.passwordHash ?? (await DUMMY_HASH_PROMISE));
      if (!user || !user.passwordHash || !ok) user = null;
    } catch (err) {
      // Not a wrong password (the store, a timeout): the attempt is not held against the caller. Taking it back is
      // best effort: `err` is the answer either way.
      await attempt.succeeded().catch(() => undefined);
      throw err;
    }
    if (!user) {
      // One line when a limit is first reached in its window, not one per failure. The username is not logged (it
      // may be a password typed into the wrong field); the uid is, when it names a user. The answer stays
      // INVALID_CREDENTIALS even if the limiter cannot say (the attempt was counted when it began).
      const limits = await attempt.failed().catch((): LoginLimit[] => []);
      if (limits.length > 0) {
        const known = await findUser().catch(() => null);
        logSecurityEvent(this.options.log, 'login.failure-burst', { by: 'anonymous', target: { uid: known?.uid ?? null }, from: address, limits, maxFailures: this.limiter.maxFailures }, 'warn');
      }
      throw new GreenroomError(ErrorCode.INVALID_CREDENTIALS, 'invalid username or password');
    }
    await attempt.succeeded();
    if (user.blocked) throw new GreenroomError(ErrorCode.BLOCKED, 'this account is blocked');
    if (needsRehash(user.passwordHash!)) {
      // Hashed here, not in UserStore's mailbox; stored only if the password has not changed meanwhile.
      await this.registry.ask(UserStore.ReplaceHash, { uid: user.uid, from: user.passwordHash!, to: await hashPassword(body.password) });
    }
    const deviceId = device ?? this.devices.issue();
    const fingerprint = this.devices.fingerprint(deviceId, req.headers);
    await this.registry.ask(FingerprintStore.Seen, { fingerprint, uid: user.uid, device: this.devices.deviceKey(deviceId) });
    await this.registry.ask(UserStore.RecordLogin, { uid: user.uid });
    // SessionStore refuses the session if the password changed since it was checked here (a login racing a reset).
    return { ...(await this.open(user.uid, fingerprint, user.passwordChangedAt ?? null)), deviceId };
  }

  /** A session for a new guest user tied to this device; refused for a blocked device, limited per address. */
  async guest(body: z.infer<typeof guestBody>, req: IncomingMessage): Promise<TokenPair> {
    if (!this.options.guests) throw new GreenroomError(ErrorCode.FORBIDDEN, 'guest sessions are disabled');
    const address = `a:${limiterKey(this.clientAddress(req))}`;
    const taken = await this.guestWindows.take([address]);
    if (!taken.ok) throw new GreenroomError(ErrorCode.RATE_LIMITED, 'too many guest sign-ins; try again later', { retryAfterSeconds: taken.retryAfter });
    const deviceId = this.devices.verify(body.deviceId) ?? this.devices.issue();
    const fingerprint = this.devices.fingerprint(deviceId, req.headers);
    if (await this.registry.ask(FingerprintStore.IsBlocked, { fingerprint })) {
      throw new GreenroomError(ErrorCode.BLOCKED, 'this device is blocked');
    }
    const user = await this.registry.ask(UserStore.CreateGuest, {});
    await this.registry.ask(FingerprintStore.Seen, { fingerprint, uid: user.uid, device: this.devices.deviceKey(deviceId) });
    return { ...(await this.open(user.uid, fingerprint)), deviceId };
  }

  /** Creates the session (SessionStore re-checks blocks inside its mailbox) and signs its first access token. */
  async open(uid: string, fingerprint: string, passwordChangedAt?: number | null): Promise<TokenPair> {
    const created = await this.registry.ask(SessionStore.Create, {
      uid,
      fingerprint,
      ...(passwordChangedAt !== undefined ? { passwordChangedAt } : {}),
    });
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
