/**
 * Access tokens (JWT, HS256, via jose) and refresh tokens (opaque).
 *
 * A refresh token is `<sid>.<generation>.<256 random bits>.<mac>`. The MAC (HMAC-SHA256 over the rest) lets the
 * server tell a token it once issued for this session — a reuse, which revokes the session — from junk, which
 * must revoke nothing (otherwise anyone who knows a sid could end that session). The session keeps only hashes.
 */
import { createHmac, randomBytes, timingSafeEqual, webcrypto } from 'node:crypto';
import { errors as joseErrors, jwtVerify, SignJWT } from 'jose';
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
  jti: string;
  exp: number; // epoch seconds (JWT)
}

export interface ParsedRefreshToken {
  sid: string;
  generation: number;
}

const SID = /^[0-9a-f-]{36}$/;

export class TokenService {
  /**
   * The HS256 key as a WebCrypto key, imported once. Given the raw bytes, jose imports them again on every sign and
   * verify (importKey is about a quarter of a verify's cost, and verify is the largest cost of a WebSocket upgrade).
   */
  private jwtKey: Promise<webcrypto.CryptoKey> | null = null;

  constructor(
    private readonly keys: Keys,
    private readonly accessTtlS: number,
  ) {}

  private key(): Promise<webcrypto.CryptoKey> {
    this.jwtKey ??= webcrypto.subtle.importKey('raw', this.keys.jwt, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign', 'verify']);
    return this.jwtKey;
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

  /** Verifies signature, algorithm, issuer, audience and expiry; any failure is INVALID_TOKEN or TOKEN_EXPIRED. */
  async verifyAccess(token: string): Promise<AccessClaims> {
    if (token.length > 4096) throw new GreenroomError(ErrorCode.INVALID_TOKEN, 'invalid access token');
    try {
      const { payload } = await jwtVerify(token, await this.key(), { algorithms: ['HS256'], issuer: ISSUER, audience: AUDIENCE });
      const { sub, sid, role, jti, exp } = payload;
      if (typeof sub !== 'string' || typeof sid !== 'string' || typeof role !== 'string' || typeof jti !== 'string' || typeof exp !== 'number') {
        throw new GreenroomError(ErrorCode.INVALID_TOKEN, 'invalid access token');
      }
      return { uid: sub, sid, role, jti, exp };
    } catch (err) {
      if (err instanceof joseErrors.JWTExpired) throw new GreenroomError(ErrorCode.TOKEN_EXPIRED, 'access token expired');
      throw new GreenroomError(ErrorCode.INVALID_TOKEN, 'invalid access token');
    }
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
