/**
 * Who is calling: one credential, chosen by a fixed order — `Authorization: Bearer`, then `?ticket=`, then the
 * `gr_access` cookie. The first credential present decides; an invalid, spent or expired one is 401 and never
 * falls through to the next. Authenticating only reads: it creates or changes no record and sets no cookie (a
 * ticket is spent, which is its purpose, but no record is written).
 *
 * Security: headers, cookies and the query string are client data. Cookie authentication requires an allowed
 * `Origin` (cross-site WebSocket hijacking, CSRF); bearer and ticket are not origin-bound. Nothing here is logged.
 */
import type { IncomingMessage } from 'node:http';
import { ErrorCode } from '@greenroom/protocol';
import { GreenroomError } from '../errors.js';
import { ProxyTrust } from './client-address.js';
import { ACCESS_COOKIE, originAllowed, readCookie } from './cookies.js';
import type { Tickets } from './tickets.js';
import type { TokenService } from './tokens.js';

export type Strategy = 'bearer' | 'ticket' | 'cookie';

export interface Identity {
  uid: string;
  sid: string;
  /** The role in the credential; the gateway uses the user's current role instead, read when it registers. */
  role: string;
  via: Strategy;
}

const BEARER = /^Bearer ([A-Za-z0-9_\-.=]{1,4096})$/i; // the scheme is case-insensitive (RFC 7235)

function ticketOf(req: IncomingMessage): string | null {
  const q = (req.url ?? '').indexOf('?');
  if (q < 0) return null;
  return new URLSearchParams((req.url ?? '').slice(q + 1)).get('ticket');
}

export class Authenticator {
  constructor(
    private readonly tokens: TokenService,
    private readonly tickets: Tickets,
    private readonly allowedOrigins: readonly string[],
    /** The trusted proxies: who the client is, and the scheme and host it used. */
    readonly proxies: ProxyTrust = new ProxyTrust(false),
  ) {}

  /** Which strategy applies to this request (the first whose credential is present), if any. */
  strategyOf(req: IncomingMessage): Strategy | null {
    if (req.headers.authorization !== undefined) return 'bearer';
    if (ticketOf(req) !== null) return 'ticket';
    if (readCookie(req, ACCESS_COOKIE) !== undefined) return 'cookie';
    return null;
  }

  async authenticate(req: IncomingMessage): Promise<Identity> {
    switch (this.strategyOf(req)) {
      case 'bearer': {
        const m = BEARER.exec(req.headers.authorization ?? '');
        if (!m) throw new GreenroomError(ErrorCode.INVALID_TOKEN, 'malformed Authorization header');
        const claims = await this.tokens.verifyAccess(m[1]!);
        return { uid: claims.uid, sid: claims.sid, role: claims.role, via: 'bearer' };
      }
      case 'ticket': {
        const entry = await this.tickets.spend(ticketOf(req) ?? '');
        if (!entry) throw new GreenroomError(ErrorCode.INVALID_TOKEN, 'invalid, spent or expired ticket');
        return { uid: entry.uid, sid: entry.sid, role: entry.role, via: 'ticket' };
      }
      case 'cookie': {
        this.checkOrigin(req);
        const claims = await this.tokens.verifyAccess(readCookie(req, ACCESS_COOKIE)!);
        return { uid: claims.uid, sid: claims.sid, role: claims.role, via: 'cookie' };
      }
      default:
        throw new GreenroomError(ErrorCode.UNAUTHENTICATED, 'authentication required');
    }
  }

  /** Cookie-authenticated requests must come from the server's own origin or the allow-list. */
  checkOrigin(req: IncomingMessage): void {
    if (!originAllowed(req, this.allowedOrigins, this.proxies)) throw new GreenroomError(ErrorCode.BAD_ORIGIN, 'origin not allowed');
  }

  /** A browser page of an allowed origin: the routes that open or rotate a session also set cookies for it. */
  isAllowedBrowser(req: IncomingMessage): boolean {
    return req.headers.origin !== undefined && originAllowed(req, this.allowedOrigins, this.proxies);
  }

  /** Whether the client reached us over https (directly or through a trusted TLS proxy): cookies get `Secure`. */
  isSecure(req: IncomingMessage): boolean {
    return this.proxies.source(req).secure;
  }

  /** The client address (the trusted-proxy walk). */
  clientAddress(req: IncomingMessage): string {
    return this.proxies.clientAddress(req);
  }

  /** An `Origin` that may use credentials here (the own origin or one of GREENROOM_ALLOWED_ORIGINS), or null. */
  allowedOrigin(req: IncomingMessage): string | null {
    return this.isAllowedBrowser(req) ? req.headers.origin! : null;
  }
}
