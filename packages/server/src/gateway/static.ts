/**
 * Serves a directory of static files (the dashboard) for GET and HEAD requests that match no route.
 * Security: the request path is client data — it is decoded once, normalized, and must stay inside the root;
 * dotfiles are never served. Pages get a strict Content-Security-Policy.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname, join, normalize, resolve, sep } from 'node:path';
import { ErrorCode } from '@greenroom/protocol';
import { GreenroomError } from '../errors.js';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.map': 'application/json; charset=utf-8',
};

const CSP = "default-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

export function createStaticHandler(rootDir: string) {
  const root = resolve(rootDir);
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (req.method !== 'GET' && req.method !== 'HEAD') throw new GreenroomError(ErrorCode.NOT_FOUND, 'no such route');
    let path: string;
    try {
      path = decodeURIComponent((req.url ?? '/').split('?', 1)[0]!);
    } catch {
      throw new GreenroomError(ErrorCode.BAD_REQUEST, 'bad path');
    }
    if (path.includes('\0') || path.split('/').some((part) => part.startsWith('.'))) throw new GreenroomError(ErrorCode.NOT_FOUND, 'no such file');
    let file = normalize(join(root, path));
    if (file !== root && !file.startsWith(root + sep)) throw new GreenroomError(ErrorCode.NOT_FOUND, 'no such file');
    let info = await stat(file).catch(() => null);
    if (info?.isDirectory()) {
      file = join(file, 'index.html');
      info = await stat(file).catch(() => null);
    }
    if (!info?.isFile()) throw new GreenroomError(ErrorCode.NOT_FOUND, 'no such file');
    const type = TYPES[extname(file)] ?? 'application/octet-stream';
    res.writeHead(200, {
      'Content-Type': type,
      'Content-Length': info.size,
      'Cache-Control': 'no-cache',
      'X-Content-Type-Options': 'nosniff',
      ...(type.startsWith('text/html') ? { 'Content-Security-Policy': CSP, 'X-Frame-Options': 'DENY', 'Referrer-Policy': 'no-referrer' } : {}),
    });
    if (req.method === 'HEAD') return void res.end();
    await new Promise<void>((done, fail) => createReadStream(file).on('error', fail).on('end', done).pipe(res));
  };
}
