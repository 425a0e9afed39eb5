/**
 * Browser credentials: `gr_access` (Path=/) and `gr_refresh` (Path=/auth), both HttpOnly and SameSite=Strict,
 * Secure when served over https. Cookie-authenticated requests must come from an allowed Origin.
 */
import type { IncomingMessage } from 'node:http';

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

function isSecure(req: IncomingMessage): boolean {
  return Boolean((req.socket as { encrypted?: boolean }).encrypted);
}

function cookie(req: IncomingMessage, name: string, value: string, path: string, maxAgeS: number): string {
  return [`${name}=${value}`, `Path=${path}`, `Max-Age=${Math.max(0, Math.floor(maxAgeS))}`, 'HttpOnly', 'SameSite=Strict', ...(isSecure(req) ? ['Secure'] : [])].join('; ');
}

export function sessionCookies(req: IncomingMessage, pair: { accessToken: string; refreshToken: string; accessExpiresAt: number; refreshExpiresAt: number }, now = Date.now()): string[] {
  return [
    cookie(req, ACCESS_COOKIE, pair.accessToken, '/', (pair.accessExpiresAt - now) / 1000),
    cookie(req, REFRESH_COOKIE, pair.refreshToken, '/auth', (pair.refreshExpiresAt - now) / 1000),
  ];
}

export function clearedCookies(req: IncomingMessage): string[] {
  return [cookie(req, ACCESS_COOKIE, '', '/', 0), cookie(req, REFRESH_COOKIE, '', '/auth', 0)];
}

/** The request's own origin (`scheme://Host`), the default allowed origin. */
export function ownOrigin(req: IncomingMessage): string | null {
  const host = req.headers.host;
  if (!host) return null;
  try {
    return new URL(`${isSecure(req) ? 'https' : 'http'}://${host}`).origin;
  } catch {
    return null;
  }
}

/** Cross-site WebSocket hijacking and CSRF defence: cookie auth only from the own origin or the allow-list. */
export function originAllowed(req: IncomingMessage, allowed: readonly string[]): boolean {
  const origin = req.headers.origin;
  if (!origin) return false;
  return origin === ownOrigin(req) || allowed.includes(origin);
}
