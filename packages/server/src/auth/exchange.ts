/**
 * POST /auth/exchange: a token from the app's identity provider for a Greenroom session, answered as a login is.
 *
 * Order, so that a refused token costs little and writes nothing: the client address's window (past it 429, before
 * any verifying or JWKS fetch) → the token verified (401 INVALID_TOKEN, or 403 FORBIDDEN for a role that is not
 * accepted) → UserStore maps (issuer, subject) to its uid, creating the user on its first exchange (403 BLOCKED for a
 * blocked user, with nothing written) → the device seen → SessionStore.Create (which re-checks the block and applies
 * the session cap). A success gives its counted attempt back, so only refused tokens use up an address's window.
 */
import type { IncomingMessage } from 'node:http';
import { z } from 'zod';
import { ErrorCode, type TokenPair } from '@greenroom/protocol';
import type { Logger } from 'pino';
import type { ActorRegistry } from '../actors/registry.js';
import type { UserView } from '../actors/records.js';
import { FingerprintStore } from '../actors/fingerprint-store.js';
import { UserStore } from '../actors/user-store.js';
import { GreenroomError } from '../errors.js';
import { logSecurityEvent } from '../security-events.js';
import type { AttemptCounter } from './attempt-windows.js';
import { limiterKey } from './client-address.js';
import type { Devices } from './fingerprint.js';
import { MAX_EXCHANGE_TOKEN_LENGTH, type IdentityVerifier } from './identity.js';
import type { LoginService } from './login.js';

export const exchangeBody = z.object({
  token: z.string().min(1).max(MAX_EXCHANGE_TOKEN_LENGTH),
  deviceId: z.string().min(1).max(128).optional(),
});

export class ExchangeService {
  constructor(
    private readonly registry: ActorRegistry,
    private readonly login: LoginService,
    private readonly devices: Devices,
    /** Refused exchanges per client address. */
    private readonly windows: AttemptCounter,
    /** null: exchange is not configured (no JWKS, no verify function). */
    private readonly verify: IdentityVerifier | null,
    private readonly log: Logger,
  ) {}

  get enabled(): boolean {
    return this.verify !== null;
  }

  async exchange(body: z.infer<typeof exchangeBody>, req: IncomingMessage): Promise<TokenPair> {
    if (!this.verify) throw new GreenroomError(ErrorCode.FORBIDDEN, 'identity exchange is not configured on this server');
    const from = this.login.clientAddress(req);
    const key = `x:${limiterKey(from)}`;
    // Counted before verifying, so exchanges in flight count too.
    const taken = await this.windows.take([key]);
    if (!taken.ok) throw new GreenroomError(ErrorCode.RATE_LIMITED, 'too many refused exchanges; try again later', { retryAfterSeconds: taken.retryAfter });
    const { counted } = taken;
    let identity;
    try {
      identity = await this.verify(body.token);
    } catch (err) {
      // Only a token refused as such is held against the caller; the provider or the app's verify function failing
      // (UNAVAILABLE, INTERNAL) is not. The limiter's part is best effort here: `err` is the answer either way.
      const refused = err instanceof GreenroomError && (err.code === ErrorCode.INVALID_TOKEN || err.code === ErrorCode.FORBIDDEN);
      if (!refused) await this.windows.refund(counted).catch(() => undefined);
      else if ((await this.windows.newlyAtLimit(counted).catch((): string[] => [])).length > 0) {
        logSecurityEvent(this.log, 'exchange.failure-burst', { by: 'anonymous', target: { uid: null }, from, maxFailures: this.windows.max }, 'warn');
      }
      throw err;
    }
    await this.windows.refund(counted);
    const { user, created } = await this.registry.ask(UserStore.Exchange, {
      issuer: identity.issuer,
      subject: identity.subject,
      role: identity.role,
      displayName: identity.displayName,
      usernameHint: identity.usernameHint,
    });
    if (created) logSecurityEvent(this.log, 'user.created-by-exchange', { by: 'system', target: { uid: user.uid }, from, role: user.role });
    const deviceId = this.devices.verify(body.deviceId) ?? this.devices.issue();
    const fingerprint = this.devices.fingerprint(deviceId, req.headers);
    await this.registry.ask(FingerprintStore.Seen, { fingerprint, uid: user.uid, device: this.devices.deviceKey(deviceId) });
    return { ...(await this.login.open(user.uid, fingerprint)), deviceId };
  }
}
