/**
 * Browser credentials: `gr_access` (Path=/) and `gr_refresh` (Path=/auth), both HttpOnly and SameSite=Strict,
 * Secure when served over https (directly or through a trusted TLS proxy). Cookie-authenticated requests must come from an allowed Origin.
 */
import type { IncomingMessage } from 'node:http';
import { ProxyTrust } from './client-address.js';

export const ACCESS_COOKIE = 'gr_access';
export const REFRESH_COOKIE = 'gr_refresh';

/** Reads one cookie's value from the Cookie header (first occurrence wins). */
export function readCookie(req: IncomingMessage, name: string): string | undefined {
  const header = req.headers.cookie;
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const i = part.indexOf('=');
    if (i < 0) continue;
    if (part.slice(0, i).trim() === name) {
      const value = part.slice(i + 1).trim();
      return value.length > 0 && value.length <= 4096 ? value : undefined;
    }
  }
  return undefined;
}

/** The trust that reads only the socket (no proxy trusted): for callers that pass none. */
const DIRECT = new ProxyTrust(false);

function cookie(name: string, value: string, path: string, maxAgeS: number, secure: boolean): string {
  return [`${name}=${value}`, `Path=${path}`, `Max-Age=${Math.max(0, Math.floor(maxAgeS))}`, 'HttpOnly', 'SameSite=Strict', ...(secure ? ['Secure'] : [])].join('; ');
}

/**
 * The session cookies. `secure`: the client reached us over https (directly, or through a trusted TLS proxy).
 * `basePath`: where Greenroom's routes are (`''` stand-alone): the access cookie is sent only under it (never with an
 * app's own requests when Greenroom is attached), the refresh cookie only to `<basePath>/auth`.
 */
export function sessionCookies(secure: boolean, pair: { accessToken: string; refreshToken: string; accessExpiresAt: number; refreshExpiresAt: number }, basePath = '', now = Date.now()): string[] {
  return [
    cookie(ACCESS_COOKIE, pair.accessToken, basePath || '/', (pair.accessExpiresAt - now) / 1000, secure),
    cookie(REFRESH_COOKIE, pair.refreshToken, `${basePath}/auth`, (pair.refreshExpiresAt - now) / 1000, secure),
  ];
}

export function clearedCookies(secure: boolean, basePath = ''): string[] {
  return [cookie(ACCESS_COOKIE, '', basePath || '/', 0, secure), cookie(REFRESH_COOKIE, '', `${basePath}/auth`, 0, secure)];
}

/** The request's own origin (`scheme://Host`, or what a trusted proxy says they are), the default allowed origin. */
export function ownOrigin(req: IncomingMessage, trust: ProxyTrust = DIRECT): string | null {
  return trust.ownOrigin(req);
}

/** Cross-site WebSocket hijacking and CSRF defence: cookie auth only from the own origin or the allow-list. */
export function originAllowed(req: IncomingMessage, allowed: readonly string[], trust: ProxyTrust = DIRECT): boolean {
  const origin = req.headers.origin;
  if (!origin) return false;
  return origin === ownOrigin(req, trust) || allowed.includes(origin);
}
