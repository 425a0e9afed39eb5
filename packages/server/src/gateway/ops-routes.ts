/**
 * The routes for operators and their tools (docs/operations.md, docs/configuration.md): `GET /healthz` (the process
 * is up), `GET /readyz` (accepting, the store answers, and start-up work that needs it is done), `GET /metrics`
 * (Prometheus text, per GREENROOM_METRICS).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ErrorCode } from '@greenroom/protocol';
import type { ActorRegistry } from '../actors/registry.js';
import { SessionStore } from '../actors/session-store.js';
import type { Authenticator } from '../auth/authenticate.js';
import type { Config } from '../config.js';
import { GreenroomError } from '../errors.js';
import { createMetrics } from '../metrics.js';
import type { Store } from '../store/store.js';
import type { Connections } from './connections.js';
import { sendJson, type Route } from './http.js';

export interface OpsRouteDeps {
  metrics: Config['metrics'];
  registry: ActorRegistry;
  auth: Authenticator;
  store: Store;
  connections: Connections;
  /** False while start-up work still waits for the store, or the node has lost touch with the others (Core.ready). */
  ready?: () => boolean;
}

/** The operators' routes, at their paths without the base path. */
export function opsRoutes({ metrics: access, registry, auth, store, connections, ready: started = () => true }: OpsRouteDeps): Route[] {
  const health: Route = { method: 'GET', path: '/healthz', handle: async (_req, res) => sendJson(res, 200, { status: 'ok' }) };
  const ready: Route = {
    method: 'GET',
    path: '/readyz',
    handle: async (_req, res) => {
      // Not ready while stopping, so clients that probe before reconnecting wait for the next server.
      if (!connections.accepting) throw new GreenroomError(ErrorCode.UNAVAILABLE, 'the server is shutting down', { retryAfterSeconds: 1 });
      try {
        await store.ping();
      } catch {
        throw new GreenroomError(ErrorCode.UNAVAILABLE, 'the store is not reachable', { retryAfterSeconds: 1 });
      }
      if (!started()) throw new GreenroomError(ErrorCode.UNAVAILABLE, 'the server is not ready', { retryAfterSeconds: 1 });
      sendJson(res, 200, { status: 'ready' });
    },
  };
  if (access === 'off') return [health, ready];

  const metrics = createMetrics({
    connections: () => connections.size,
    asks: () => connections.asks,
    queued: () => registry.names().map((name) => [name, registry.queued(name)]),
  });
  const scrape: Route = {
    method: 'GET',
    path: '/metrics',
    handle: async (req: IncomingMessage, res: ServerResponse) => {
      // 'admin': a live admin session, by any strategy (a scraper sends a bearer token).
      if (access === 'admin') {
        const identity = await auth.authenticate(req);
        const { role } = await registry.ask(SessionStore.Check, { uid: identity.uid, sid: identity.sid });
        if (role !== 'admin') throw new GreenroomError(ErrorCode.FORBIDDEN, 'metrics are for admins');
      }
      const text = await metrics.metrics();
      res.writeHead(200, { 'Content-Type': metrics.contentType, 'Cache-Control': 'no-store' });
      res.end(text);
    },
  };
  return [health, ready, scrape];
}
