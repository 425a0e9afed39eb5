import type { IncomingMessage } from 'node:http';

/**
 * The client address of a request (what the limiters count and the log names): the socket's peer, or behind a
 * trusted proxy the address that proxy appended to X-Forwarded-For (its last entry: the ones before it are whatever
 * the client wrote).
 */
export function clientAddress(req: IncomingMessage, trustProxy: boolean): string {
  const forwarded = req.headers['x-forwarded-for'];
  if (trustProxy && typeof forwarded === 'string') {
    const last = forwarded.split(',').pop()!.trim();
    if (last) return last;
  }
  return req.socket.remoteAddress ?? 'unknown';
}
