/**
 * The /auth routes. Only a route's own effect writes: login, exchange and guest create a session, refresh rotates, logout
 * revokes. Cookies are set only for a browser page of an allowed origin (or a request that came with them).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import { ErrorCode, type TokenPair } from '@greenroom/protocol';
import type { Logger } from 'pino';
import { SessionStore } from '../actors/session-store.js';
import type { ActorRegistry } from '../actors/registry.js';
import { GreenroomError } from '../errors.js';
import { logSecurityEvent } from '../security-events.js';
import { parseBody, sendJson, type Route } from './http.js';
import type { Authenticator } from '../auth/authenticate.js';
import { clearedCookies, readCookie, REFRESH_COOKIE, sessionCookies } from '../auth/cookies.js';
import { exchangeBody, type ExchangeService } from '../auth/exchange.js';
import { guestBody, loginBody, type LoginService } from '../auth/login.js';
import type { RefreshService } from '../auth/refresh.js';
import type { Tickets } from '../auth/tickets.js';
import type { TokenService } from '../auth/tokens.js';

const refreshBody = z.object({ refreshToken: z.string().min(1).max(512).optional() });

export interface AuthRouteDeps {
  registry: ActorRegistry;
  auth: Authenticator;
  login: LoginService;
  refresh: RefreshService;
  tickets: Tickets;
  tokens: TokenService;
  log: Logger;
  /** The base path the routes are served under (the cookies' Paths follow it); default ''. */
  basePath?: string;
  /** POST /auth/exchange: a token of the app's identity provider for a session. */
  exchange: ExchangeService;
  /** false: built-in passwords are off (GREENROOM_PASSWORDS=false) and /auth/login answers 403 FORBIDDEN. */
  passwords: boolean;
}

/** A refresh token from the body, else from the `gr_refresh` cookie (which, being a cookie, is origin-bound). */
function refreshTokenOf(deps: AuthRouteDeps, req: IncomingMessage, body: { refreshToken?: string | undefined }): { token: string; viaCookie: boolean } | null {
  if (body.refreshToken !== undefined) return { token: body.refreshToken, viaCookie: false };
  const cookie = readCookie(req, REFRESH_COOKIE);
  if (cookie === undefined) return null;
  deps.auth.checkOrigin(req);
  return { token: cookie, viaCookie: true };
}

function sendSession(deps: AuthRouteDeps, req: IncomingMessage, res: ServerResponse, session: TokenPair, viaCookie = false): void {
  const browser = viaCookie || deps.auth.isAllowedBrowser(req);
  sendJson(res, 200, session, browser ? { 'Set-Cookie': sessionCookies(deps.auth.isSecure(req), session, deps.basePath) } : {});
}

export function authRoutes(deps: AuthRouteDeps): Route[] {
  return [
    {
      method: 'POST',
      path: '/auth/login',
      body: true,
      handle: async (req, res, body) => {
        // Refused before anything is counted: no password is checked, hashed or limited (the body is read, as for
        // every POST route, before the handler runs).
        if (!deps.passwords) throw new GreenroomError(ErrorCode.FORBIDDEN, 'password sign-in is turned off on this server; sign in through the identity provider (POST /auth/exchange)');
        sendSession(deps, req, res, await deps.login.login(parseBody(loginBody, body), req));
      },
    },
    {
      method: 'POST',
      path: '/auth/exchange',
      body: true,
      handle: async (req, res, body) => sendSession(deps, req, res, await deps.exchange.exchange(parseBody(exchangeBody, body), req)),
    },
    {
      method: 'POST',
      path: '/auth/guest',
      body: true,
      handle: async (req, res, body) => sendSession(deps, req, res, await deps.login.guest(parseBody(guestBody, body), req)),
    },
    {
      method: 'POST',
      path: '/auth/refresh',
      body: true,
      handle: async (req, res, body) => {
        const presented = refreshTokenOf(deps, req, parseBody(refreshBody, body));
        if (!presented) throw new GreenroomError(ErrorCode.UNAUTHENTICATED, 'a refresh token is required');
        sendSession(deps, req, res, await deps.refresh.refresh(presented.token), presented.viaCookie);
      },
    },
    {
      method: 'POST',
      path: '/auth/logout',
      body: true,
      handle: async (req, res, body) => {
        // An access credential (bearer → ticket → cookie) if one is present, else a refresh token.
        let sid: string;
        let viaCookie = false;
        let via: string = 'refresh';
        if (deps.auth.strategyOf(req)) {
          const identity = await deps.auth.authenticate(req);
          sid = identity.sid;
          via = identity.via;
          viaCookie = identity.via === 'cookie';
        } else {
          const presented = refreshTokenOf(deps, req, parseBody(refreshBody, body));
          const parsed = presented && deps.tokens.parseRefreshToken(presented.token);
          if (!parsed) throw new GreenroomError(presented ? ErrorCode.INVALID_TOKEN : ErrorCode.UNAUTHENTICATED, 'an access or refresh token is required');
          sid = parsed.sid;
          viaCookie = presented.viaCookie;
        }
        try {
          const { ended, uid } = await deps.registry.ask(SessionStore.End, { sid, reason: 'logout' });
          // The user ends their own session; a logout of a session already over changes nothing and logs nothing.
          if (ended > 0) logSecurityEvent(deps.log, 'session.logout', { by: uid, target: { uid, sid }, from: deps.login.clientAddress(req), via });
        } catch (err) {
          // A session already deleted by cleanup is as logged out as it gets.
          if (!(err instanceof GreenroomError && err.code === ErrorCode.NOT_FOUND)) throw err;
        }
        res.writeHead(204, { 'Cache-Control': 'no-store', ...(viaCookie ? { 'Set-Cookie': clearedCookies(deps.auth.isSecure(req), deps.basePath) } : {}) });
        res.end();
      },
    },
    {
      method: 'POST',
      path: '/auth/ticket',
      body: true,
      handle: async (req, res) => {
        const identity = await deps.auth.authenticate(req);
        // A ticket buys no ticket (else one renews itself forever), and only a live session gets one.
        if (identity.via === 'ticket') throw new GreenroomError(ErrorCode.FORBIDDEN, 'a ticket cannot be exchanged for another');
        const { role } = await deps.registry.ask(SessionStore.Check, { uid: identity.uid, sid: identity.sid });
        sendJson(res, 200, await deps.tickets.issue({ ...identity, role }));
      },
    },
  ];
}
