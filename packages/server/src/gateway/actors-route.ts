/**
 * `GET /actors`: the actors, messages and events the caller's role may use, each payload as JSON Schema
 * (actors/catalog.ts). Any strategy of the handshake authenticates it; the role is the session's current one.
 */
import type { ActorRegistry } from '../actors/registry.js';
import { SessionStore } from '../actors/session-store.js';
import type { Authenticator } from '../auth/authenticate.js';
import { sendJson, type Route } from './http.js';

export function actorsRoute(deps: { registry: ActorRegistry; auth: Authenticator }): Route {
  return {
    method: 'GET',
    path: '/actors',
    handle: async (req, res) => {
      const identity = await deps.auth.authenticate(req);
      const { role } = await deps.registry.ask(SessionStore.Check, { uid: identity.uid, sid: identity.sid });
      const caller = { system: false, uid: identity.uid, sid: identity.sid, connectionId: null, role };
      sendJson(res, 200, deps.registry.catalog(caller), { 'Cache-Control': 'no-store' });
    },
  };
}
