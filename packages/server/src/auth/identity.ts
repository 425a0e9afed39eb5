/**
 * Identity from elsewhere: the tokens POST /auth/exchange accepts, from the app's identity provider.
 *
 * Two ways to verify one, chosen at start (never both):
 * - a JWKS (`GREENROOM_JWKS_URL`): a JWT signed with an asymmetric algorithm (never `none`, never HS*), by a key of
 *   the set (found by `kid`), from one of `GREENROOM_JWT_ISSUER`, for `GREENROOM_JWT_AUDIENCE`, with `exp` and `sub`.
 *   The set is fetched on first use, cached, and fetched again for a `kid` it does not hold (keys rotate) — but not
 *   within `GREENROOM_JWKS_COOLDOWN_S` of the last fetch, so a stream of made-up kids cannot make it fetch constantly.
 * - an app-supplied `identity.verify(token)` (GreenroomOptions): the app's own code says who the token names.
 *
 * Either gives an (issuer, subject) pair, which UserStore maps to one stable uid.
 */
import { createRemoteJWKSet, errors as joseErrors, jwtVerify, type JWTPayload } from 'jose';
import { ErrorCode } from '@greenroom/protocol';
import type { Logger } from 'pino';
import { roleSchema } from '../actors/user-store.js';
import type { Config } from '../config.js';
import { ConfigError, GreenroomError } from '../errors.js';

/** What an app's verify function answers for a token it accepts. */
export interface ExternalIdentity {
  /** Who vouches for the subject (an OIDC `iss`); the same subject from another issuer is another user. */
  issuer: string;
  /** The user at that issuer (an OIDC `sub`): stable, never reassigned. */
  subject: string;
  /** The Greenroom role (a lowercase word; not `guest`). Absent: `user` for a new user, unchanged for a known one. */
  role?: string | null;
  /** Shown to people; kept only if readable by the usual name rules. */
  displayName?: string | null;
  /** A wish for the username (made safe and unique; never used to find an existing user). */
  username?: string | null;
}

/** `identity` in GreenroomOptions. */
export interface IdentityOptions {
  /**
   * Verifies a token from the app's identity provider. Throw to refuse it (any error but a GreenroomError answers
   * 401 INVALID_TOKEN; a GreenroomError is answered as it is, e.g. UNAVAILABLE when the provider is down).
   */
  verify(token: string): Promise<ExternalIdentity>;
}

/** A verified identity, its role already checked against the rules. */
export interface VerifiedIdentity {
  issuer: string;
  subject: string;
  /** null: no role given (a new user is a `user`; a known user keeps its role). */
  role: string | null;
  displayName: string | null;
  usernameHint: string | null;
}

export type IdentityVerifier = (token: string) => Promise<VerifiedIdentity>;

/** Asymmetric JWS algorithms only: an HMAC key would be a secret shared with every verifier; `none` is no signature. */
export const EXCHANGE_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'];

/** Longer than any real provider's token; a longer one is refused before any parsing. */
export const MAX_EXCHANGE_TOKEN_LENGTH = 8192;

const invalid = () => new GreenroomError(ErrorCode.INVALID_TOKEN, 'invalid identity token');

const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]']);

/** The exchange's settings, checked together at start; a ConfigError names what is wrong. */
export function checkIdentityConfig(config: Config, hook: IdentityOptions | undefined): void {
  const fail = (line: string) => {
    throw new ConfigError(`invalid configuration:\n  ${line}`);
  };
  if (config.jwksUrl !== undefined) {
    if (hook) fail('GREENROOM_JWKS_URL and an identity.verify function are both set: use one');
    let url: URL;
    try {
      url = new URL(config.jwksUrl);
    } catch {
      return fail('GREENROOM_JWKS_URL: must be a URL');
    }
    if (url.protocol !== 'https:' && !(url.protocol === 'http:' && LOOPBACK.has(url.hostname))) {
      fail('GREENROOM_JWKS_URL: must be https:// (http:// only for a loopback host)');
    }
    if (!config.jwtIssuer || config.jwtIssuer.length === 0) fail('GREENROOM_JWT_ISSUER: required with GREENROOM_JWKS_URL');
    if (!config.jwtAudience) fail('GREENROOM_JWT_AUDIENCE: required with GREENROOM_JWKS_URL');
  }
  for (const role of config.jwtRoles) {
    if (!roleSchema.safeParse(role).success) fail(`GREENROOM_JWT_ROLES: ${JSON.stringify(role.slice(0, 40))} is not a role (a lowercase word)`);
    if (role === 'guest') fail('GREENROOM_JWT_ROLES: guest is for guest sign-ins only');
  }
  if (!config.passwords && config.admin) {
    fail('GREENROOM_ADMIN: creates a password user, but GREENROOM_PASSWORDS=false turns built-in passwords off');
  }
}

/** A role given by a token or the app, checked: a lowercase word, never `guest` (guests are deleted when idle). */
function checkedRole(role: string): string {
  if (!roleSchema.safeParse(role).success || role === 'guest') {
    throw new GreenroomError(ErrorCode.FORBIDDEN, 'the identity token names a role that is not accepted');
  }
  return role;
}

const text = (v: unknown, max = 400): string | null => (typeof v === 'string' && v.length > 0 && v.length <= max ? v : null);

/**
 * The value of a claim: the whole name as one key first (`https://example.com/role`, a namespaced claim, holds dots),
 * else a dotted path into nested claims (`app.role`); undefined if neither is there.
 */
function claimAt(payload: JWTPayload, path: string): unknown {
  if (Object.prototype.hasOwnProperty.call(payload, path)) return payload[path];
  let v: unknown = payload;
  for (const part of path.split('.')) {
    if (v === null || typeof v !== 'object' || !Object.prototype.hasOwnProperty.call(v, part)) return undefined;
    v = (v as Record<string, unknown>)[part];
  }
  return v;
}

/** The verifier the config and options name, or null when exchange is not configured. */
export function createIdentityVerifier(config: Config, hook: IdentityOptions | undefined, log: Logger): IdentityVerifier | null {
  checkIdentityConfig(config, hook);
  if (hook) return hookVerifier(hook, log, config.askTimeoutMs);
  if (config.jwksUrl) return jwksVerifier(config, log);
  return null;
}

/** After the key set could not be fetched, exchanges answer UNAVAILABLE this long without trying again. */
const FETCH_BACKOFF_MS = 5_000;

/** The app's verify function, given at most the ask timeout: past it the exchange answers UNAVAILABLE. */
function hookVerifier(hook: IdentityOptions, log: Logger, timeoutMs: number): IdentityVerifier {
  return async (token) => {
    let found: ExternalIdentity;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new GreenroomError(ErrorCode.UNAVAILABLE, 'identity verification did not answer in time', { retryAfterSeconds: 5 })), timeoutMs);
    });
    try {
      found = await Promise.race([hook.verify(token), timedOut]);
    } catch (err) {
      if (err instanceof GreenroomError) throw err;
      throw invalid();
    } finally {
      clearTimeout(timer);
    }
    const issuer = text(found?.issuer, 1024);
    const subject = text(found?.subject, 1024);
    if (!issuer || !subject) {
      // The app's function answered something that names nobody: a bug in the app, not the caller's fault.
      log.error('identity.verify answered without a non-empty issuer and subject');
      throw new GreenroomError(ErrorCode.INTERNAL, 'internal error');
    }
    const role = found.role === undefined || found.role === null ? null : checkedRole(String(found.role));
    return { issuer, subject, role, displayName: text(found.displayName), usernameHint: text(found.username) };
  };
}

function jwksVerifier(config: Config, log: Logger): IdentityVerifier {
  const jwks = createRemoteJWKSet(new URL(config.jwksUrl!), {
    cooldownDuration: config.jwksCooldownS * 1000,
    cacheMaxAge: 10 * 60 * 1000,
    timeoutDuration: 5000,
  });
  const accepted = new Set(config.jwtRoles);
  // Set when a fetch of the key set failed: until then no exchange makes the server fetch again, so callers (whose
  // attempts are not counted while the provider is down) cannot make it fetch without end.
  let downUntil = 0;
  const down = () => new GreenroomError(ErrorCode.UNAVAILABLE, 'the identity provider cannot be reached; try again later', { retryAfterSeconds: 5 });
  return async (token) => {
    if (typeof token !== 'string' || token.length > MAX_EXCHANGE_TOKEN_LENGTH) throw invalid();
    if (Date.now() < downUntil) throw down();
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, jwks, {
        algorithms: EXCHANGE_ALGORITHMS,
        issuer: config.jwtIssuer!,
        audience: config.jwtAudience!,
        requiredClaims: ['exp', 'sub', 'iss', ...(config.jwtMaxAgeS !== undefined ? ['iat'] : [])],
        clockTolerance: config.jwtClockToleranceS,
        ...(config.jwtTyp !== undefined ? { typ: config.jwtTyp } : {}),
        ...(config.jwtMaxAgeS !== undefined ? { maxTokenAge: config.jwtMaxAgeS } : {}),
      }));
    } catch (err) {
      if (unreachable(err)) {
        downUntil = Date.now() + FETCH_BACKOFF_MS;
        log.warn({ err: err instanceof Error ? err.message : String(err) }, 'the identity provider key set could not be fetched');
        throw down();
      }
      throw invalid();
    }
    const issuer = text(payload.iss, 1024);
    const subject = text(payload.sub, 1024);
    if (!issuer || !subject) throw invalid();
    let role: string | null = null;
    if (config.jwtRoleClaim) {
      // The provider is the source of truth for roles: an absent claim is `user`, any value must be accepted.
      const claimed = claimAt(payload, config.jwtRoleClaim);
      if (claimed === undefined || claimed === null) role = 'user';
      else if (typeof claimed !== 'string' || !accepted.has(claimed)) {
        throw new GreenroomError(ErrorCode.FORBIDDEN, 'the identity token names a role that is not accepted');
      } else role = checkedRole(claimed);
    }
    const email = text(payload.email);
    return {
      issuer,
      subject,
      role,
      displayName: text(payload.name) ?? text(payload.preferred_username),
      usernameHint: text(payload.preferred_username) ?? (email ? email.split('@')[0]! : null),
    };
  };
}

/** The key set could not be had (network, timeout, not a 200, not a key set): not the token's fault. */
function unreachable(err: unknown): boolean {
  if (!(err instanceof joseErrors.JOSEError)) return true;
  if (err instanceof joseErrors.JWKSTimeout || err instanceof joseErrors.JWKSInvalid) return true;
  return err.code === 'ERR_JOSE_GENERIC' && /JSON Web Key Set/i.test(err.message);
}
