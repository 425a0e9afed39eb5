/**
 * The HTTP routes. Bodies are JSON, errors are `{ "error": { "code", "message" } }`, and nothing internal (no
 * stack, no path, no secret) reaches the wire.
 *
 * Security: bodies are client data — size-limited, content-type checked, parsed, then validated by zod.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ErrorCode } from '@greenroom/protocol';
import type { Logger } from 'pino';
import type { z } from 'zod';
import { GreenroomError, toPublicError } from '../errors.js';

const MAX_BODY_BYTES = 16 * 1024;

export type RouteHandler = (req: IncomingMessage, res: ServerResponse, body: unknown) => Promise<void>;

export interface Route {
  /** A GET route answers HEAD too; OPTIONS routes answer CORS preflights (gateway/cors.ts). */
  method: 'GET' | 'POST' | 'OPTIONS';
  path: string;
  handle: RouteHandler;
  /** POST routes read a JSON body (an empty body is `{}`). */
  body?: boolean;
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string | string[]> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store', 'Content-Length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

export function sendError(res: ServerResponse, error: GreenroomError, extraHeaders: Record<string, string> = {}): void {
  const headers: Record<string, string> = { ...extraHeaders };
  if (error.details.retryAfterSeconds !== undefined) headers['Retry-After'] = String(error.details.retryAfterSeconds);
  sendJson(res, error.status, { error: error.toBody() }, headers);
}

export function parseBody<T>(schema: z.ZodType<T>, body: unknown): T {
  const parsed = schema.safeParse(body);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new GreenroomError(ErrorCode.BAD_REQUEST, `${issue?.path.join('.') || 'body'}: ${issue?.message ?? 'invalid'}`);
  }
  return parsed.data;
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const type = req.headers['content-type'];
  const length = Number(req.headers['content-length'] ?? 0);
  if (length > MAX_BODY_BYTES) throw new GreenroomError(ErrorCode.PAYLOAD_TOO_LARGE, 'request body too large');
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new GreenroomError(ErrorCode.PAYLOAD_TOO_LARGE, 'request body too large');
    chunks.push(chunk as Buffer);
  }
  if (size === 0) return {};
  if (!type || !/^application\/json\s*(;|$)/i.test(type)) throw new GreenroomError(ErrorCode.BAD_REQUEST, 'body must be application/json');
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new GreenroomError(ErrorCode.BAD_REQUEST, 'body is not valid JSON');
  }
}

/**
 * `GET /ws` (or HEAD) that is not a WebSocket upgrade — a browser tab, curl, a proxy that dropped the Upgrade
 * header: 426, saying what to send instead (docs/protocol.md, Connecting). Upgrades never reach the routes; the gateway
 * takes them.
 */
export function upgradeRequiredRoute(path: string): Route {
  return {
    method: 'GET',
    path,
    handle: async (_req, res) =>
      sendError(
        res,
        new GreenroomError(ErrorCode.UPGRADE_REQUIRED, `${path} is a WebSocket endpoint: send a WebSocket upgrade (GET with Upgrade: websocket) with a bearer token, ?ticket= or the session cookie`),
        { Upgrade: 'websocket', Connection: 'Upgrade' },
      ),
  };
}

export function createRequestListener(routes: Route[], log: Logger, fallback?: RouteHandler) {
  const table = new Map(routes.map((r) => [`${r.method} ${r.path}`, r]));
  const allowed = new Map<string, string[]>();
  for (const r of routes) allowed.set(r.path, [...(allowed.get(r.path) ?? []), r.method, ...(r.method === 'GET' ? ['HEAD'] : [])]);
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = (req.url ?? '/').split('?', 1)[0]!;
    try {
      // HEAD is answered as GET (node:http sends no body for it).
      const route = table.get(`${req.method} ${path}`) ?? (req.method === 'HEAD' ? table.get(`GET ${path}`) : undefined);
      if (!route) {
        const methods = allowed.get(path);
        if (methods) return sendError(res, new GreenroomError(ErrorCode.METHOD_NOT_ALLOWED, 'method not allowed'), { Allow: methods.join(', ') });
        if (fallback) return await fallback(req, res, undefined);
        throw new GreenroomError(ErrorCode.NOT_FOUND, 'no such route');
      }
      const body = route.body ? await readJson(req) : undefined;
      await route.handle(req, res, body);
    } catch (err) {
      const error = toPublicError(err);
      if (error.code === ErrorCode.INTERNAL) log.error({ err, path }, 'request failed');
      if (!res.headersSent) sendError(res, error);
      else res.destroy();
    }
  };
}
