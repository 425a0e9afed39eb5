/**
 * Access tokens (JWT, HS256: signed with jose, verified here) and refresh tokens (opaque).
 *
 * Verifying an access token was the largest cost of a WebSocket upgrade: jose verifies HS256 through WebCrypto, whose
 * every call is a job sent to libuv's thread pool and back. A bounded cache of tokens already verified lets a client
 * that reconnects with the same token (every reconnect within the token's lifetime) skip it.
 *
 * A refresh token is `<sid>.<generation>.<256 random bits>.<mac>`. The MAC (HMAC-SHA256 over the rest) lets the
 * server tell a token it once issued for this session — a reuse, which revokes the session — from junk, which
 * must revoke nothing (otherwise anyone who knows a sid could end that session). The session keeps only hashes.
 */
import crypto, { createHash, createHmac, randomBytes, timingSafeEqual, webcrypto } from 'node:crypto';
import { decodeProtectedHeader, errors as joseErrors, jwtVerify, SignJWT, type JWTPayload } from 'jose';
import { v4 as uuidv4 } from 'uuid';
import { ErrorCode } from '@greenroom/protocol';
import { GreenroomError } from '../errors.js';
import type { Keys } from './secret.js';

export const ISSUER = 'greenroom';
export const AUDIENCE = 'greenroom';

export interface AccessClaims {
  uid: string;
  sid: string;
  role: string;
  exp: number; // epoch seconds (JWT)
}

export interface ParsedRefreshToken {
  sid: string;
  generation: number;
}

const SID = /^[0-9a-f-]{36}$/;

const oneShotHash = (crypto as { hash?: (algorithm: string, data: string, encoding: 'base64') => string }).hash;

/** Access tokens remembered as verified, at most; about 200 bytes each. */
export const VERIFIED_TOKENS_CAPACITY = 4_096;

/** Longer than any token the server issues; a longer one is refused before any work. */
const MAX_ACCESS_TOKEN_LENGTH = 4096;

const invalidToken = () => new GreenroomError(ErrorCode.INVALID_TOKEN, 'invalid access token');

/**
 * Access tokens already verified, keyed on the SHA-256 of the whole token (a lookup compares digests, never the
 * secret itself). A hit stands in for the signature check only: an entry is never returned at or past its token's
 * `exp`, and holds at most `capacity` tokens (the oldest go first: tokens share one lifetime, so the oldest is the
 * soonest to expire). It says nothing about the session: SessionStore still checks the session and its user at
 * every upgrade.
 */
export class VerifiedTokens {
  private readonly entries = new Map<string, AccessClaims>();

  constructor(readonly capacity: number) {}

  get size(): number {
    return this.entries.size;
  }

  static keyOf(token: string): string {
    // crypto.hash (Node 20.12+) is the one-shot digest, several times cheaper than a Hash object per upgrade.
    return oneShotHash ? oneShotHash('sha256', token, 'base64') : createHash('sha256').update(token).digest('base64');
  }

  /** The claims of a token verified before, if it has not expired at `nowMs`. */
  get(key: string, nowMs: number): AccessClaims | undefined {
    const claims = this.entries.get(key);
    if (claims === undefined) return undefined;
    if (nowMs >= claims.exp * 1000) {
      this.entries.delete(key);
      return undefined;
    }
    return claims;
  }

  add(key: string, claims: AccessClaims): void {
    if (this.capacity <= 0) return;
    if (this.entries.size >= this.capacity) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(key, claims);
  }
}

export class TokenService {
  /**
   * The HS256 key as a WebCrypto key, imported once, for jose's signing and verifying (given the raw bytes, jose
   * imports them again on every call).
   */
  private jwtKey: Promise<webcrypto.CryptoKey> | null = null;
  private readonly verified: VerifiedTokens;

  constructor(
    private readonly keys: Keys,
    private readonly accessTtlS: number,
    verifiedCapacity = VERIFIED_TOKENS_CAPACITY,
  ) {
    this.verified = new VerifiedTokens(verifiedCapacity);
  }

  private key(): Promise<webcrypto.CryptoKey> {
    this.jwtKey ??= webcrypto.subtle.importKey('raw', this.keys.jwt, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign', 'verify']);
    return this.jwtKey;
  }

  /** How many verified tokens are remembered (for tests of the cache's bounds). */
  get verifiedTokens(): number {
    return this.verified.size;
  }

  async signAccess(claims: { uid: string; sid: string; role: string }, now = Date.now()): Promise<{ token: string; expiresAt: number }> {
    const exp = Math.floor(now / 1000) + this.accessTtlS;
    const token = await new SignJWT({ sid: claims.sid, role: claims.role })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setSubject(claims.uid)
      .setJti(uuidv4())
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setIssuedAt(Math.floor(now / 1000))
      .setExpirationTime(exp)
      .sign(await this.key());
    return { token, expiresAt: exp * 1000 };
  }

  /**
   * Verifies signature, algorithm, issuer, audience and expiry (jose); any failure is INVALID_TOKEN or TOKEN_EXPIRED.
   * A token verified before and not yet expired is answered from the cache, without the signature check.
   */
  async verifyAccess(token: string, now = Date.now()): Promise<AccessClaims> {
    if (typeof token !== 'string' || token.length > MAX_ACCESS_TOKEN_LENGTH) throw invalidToken();
    const key = VerifiedTokens.keyOf(token);
    const known = this.verified.get(key, now);
    if (known) return known;
    const claims = await this.verifyJwt(token, now);
    this.verified.add(key, claims);
    return claims;
  }

  /**
   * The full check, by jose. Stricter than jose alone: only the header the server itself writes is accepted (HS256,
   * `typ` JWT or none, nothing else: no `crit`, no key hints), and the claims must have the types the server writes.
   */
  private async verifyJwt(token: string, now: number): Promise<AccessClaims> {
    let payload: JWTPayload;
    try {
      const header = decodeProtectedHeader(token);
      if (Object.keys(header).some((k) => k !== 'alg' && k !== 'typ') || (header.typ !== undefined && header.typ !== 'JWT')) throw invalidToken();
      ({ payload } = await jwtVerify(token, await this.key(), {
        algorithms: ['HS256'],
        issuer: ISSUER,
        audience: AUDIENCE,
        requiredClaims: ['exp'],
        currentDate: new Date(now),
      }));
    } catch (err) {
      if (err instanceof joseErrors.JWTExpired) throw new GreenroomError(ErrorCode.TOKEN_EXPIRED, 'access token expired');
      throw invalidToken();
    }
    const { sub, sid, role, jti, exp } = payload;
    if (typeof sub !== 'string' || typeof sid !== 'string' || typeof role !== 'string' || typeof jti !== 'string' || typeof exp !== 'number') throw invalidToken();
    // Frozen: one object is handed to every later upgrade with the same token. (`jti` is required, but kept nowhere.)
    return Object.freeze({ uid: sub, sid, role, exp });
  }

  newRefreshToken(sid: string, generation: number): string {
    const body = `${sid}.${generation}.${randomBytes(32).toString('base64url')}`;
    return `${body}.${this.mac(body)}`;
  }

  /** Reads a refresh token's session and generation if the server issued it; null for anything else. */
  parseRefreshToken(token: string): ParsedRefreshToken | null {
    if (typeof token !== 'string' || token.length > 256) return null;
    const parts = token.split('.');
    if (parts.length !== 4) return null;
    const [sid, gen, , mac] = parts as [string, string, string, string];
    if (!SID.test(sid) || !/^\d{1,9}$/.test(gen)) return null;
    const expected = Buffer.from(this.mac(parts.slice(0, 3).join('.')));
    const given = Buffer.from(mac);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return null;
    return { sid, generation: Number(gen) };
  }

  /** What is stored instead of a token. */
  hash(token: string): string {
    return createHmac('sha256', this.keys.tokens).update(token).digest('base64url');
  }

  /** Constant-time comparison of a presented token with a stored hash. */
  matches(token: string, storedHash: string | undefined): boolean {
    if (!storedHash) return false;
    const a = Buffer.from(this.hash(token));
    const b = Buffer.from(storedHash);
    return a.length === b.length && timingSafeEqual(a, b);
  }

  private mac(body: string): string {
    return createHmac('sha256', this.keys.tokens).update(`refresh:${body}`).digest('base64url');
  }
}
