/**
 * `GET /actors`: the actors, messages and events the caller's role may use, each payload as JSON Schema
 * (actors/catalog.ts). A bearer token or the access cookie (Origin checked) authenticates it; the role is the
 * session's current one. A ticket is refused: it is single-use and meant for the WebSocket upgrade only.
 */
import type { ActorRegistry } from '../actors/registry.js';
import { SessionStore } from '../actors/session-store.js';
import type { Authenticator } from '../auth/authenticate.js';
import { ErrorCode } from '@greenroom/protocol';
import { GreenroomError } from '../errors.js';
import { sendJson, type Route } from './http.js';

export function actorsRoute(deps: { registry: ActorRegistry; auth: Authenticator }): Route {
  return {
    method: 'GET',
    path: '/actors',
    handle: async (req, res) => {
      // Asked before authenticating: authenticating a ticket spends it.
      if (deps.auth.strategyOf(req) === 'ticket') throw new GreenroomError(ErrorCode.FORBIDDEN, 'a ticket opens a WebSocket only; use the access token');
      const identity = await deps.auth.authenticate(req);
      const { role } = await deps.registry.ask(SessionStore.Check, { uid: identity.uid, sid: identity.sid });
      const caller = { system: false, uid: identity.uid, sid: identity.sid, connectionId: null, role };
      sendJson(res, 200, deps.registry.catalog(caller), { 'Cache-Control': 'no-store' });
    },
  };
}
