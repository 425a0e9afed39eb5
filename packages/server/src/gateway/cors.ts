/**
 * CORS for Greenroom's own routes, granted to the allowed origins only: the server's own origin and
 * GREENROOM_ALLOWED_ORIGINS. A page of such an origin may call the routes with credentials (cookies) and read the
 * answers; a preflight (`OPTIONS`) is answered 204 with what may be sent. Any other origin is granted nothing: its
 * answers carry no CORS header, so its browser keeps them from the page.
 *
 * Security: the grant echoes an Origin only after checking it against the list (never `*`, which cannot go with
 * credentials anyway). Cookie-authenticated requests are still checked for their Origin by the Authenticator.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Authenticator } from '../auth/authenticate.js';
import type { Route } from './http.js';

/** How long a browser may keep a preflight's answer, in seconds. */
export const PREFLIGHT_MAX_AGE_S = 600;
export const ALLOWED_HEADERS = 'Content-Type, Authorization';

/** Sets the grant on `res` for a request from an allowed origin; returns whether it did. */
export function grantCors(auth: Authenticator, req: IncomingMessage, res: ServerResponse): boolean {
  if (req.headers.origin === undefined) return false;
  // The answer depends on the Origin: caches must not hand one origin's answer to another.
  res.setHeader('Vary', 'Origin');
  const origin = auth.allowedOrigin(req);
  if (!origin) return false;
  res.setHeader('Access-Control-Allow-Origin', origin);
  res.setHeader('Access-Control-Allow-Credentials', 'true');
  return true;
}

/**
 * The routes with CORS: each handler first sets the grant for an allowed Origin (kept on error answers too, so the
 * page can read the error), and each path answers `OPTIONS` (the preflight, or a plain OPTIONS) with 204.
 */
export function withCors(auth: Authenticator, routes: Route[]): Route[] {
  const methods = new Map<string, string[]>();
  for (const r of routes) methods.set(r.path, [...(methods.get(r.path) ?? []), r.method, ...(r.method === 'GET' ? ['HEAD'] : [])]);
  const wrapped = routes.map((route): Route => ({
    ...route,
    handle: (req, res, body) => {
      grantCors(auth, req, res);
      return route.handle(req, res, body);
    },
  }));
  const preflights = [...methods].map(([path, list]): Route => ({
    method: 'OPTIONS',
    path,
    handle: async (req, res) => {
      const allow = [...list, 'OPTIONS'].join(', ');
      const headers: Record<string, string> = { Allow: allow, 'Cache-Control': 'no-store' };
      if (grantCors(auth, req, res)) {
        headers['Access-Control-Allow-Methods'] = allow;
        headers['Access-Control-Allow-Headers'] = ALLOWED_HEADERS;
        headers['Access-Control-Max-Age'] = String(PREFLIGHT_MAX_AGE_S);
      }
      res.writeHead(204, headers);
      res.end();
    },
  }));
  return [...wrapped, ...preflights];
}
