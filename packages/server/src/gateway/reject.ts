import type { Duplex } from 'node:stream';
import { STATUS_CODES } from 'node:http';
import type { GreenroomError } from '../errors.js';

/**
 * Refuses a WebSocket upgrade with a plain HTTP answer and destroys the socket. The body is the same JSON error
 * shape as every HTTP route; nothing was registered.
 */
export function rejectUpgrade(socket: Duplex, error: GreenroomError, headers: Record<string, string> = {}): void {
  if (socket.writable && !socket.destroyed) {
    const body = JSON.stringify({ error: error.toBody() });
    const status = error.status;
    const retry = error.details.retryAfterSeconds;
    const lines = [
      `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}`,
      'Connection: close',
      'Content-Type: application/json; charset=utf-8',
      `Content-Length: ${Buffer.byteLength(body)}`,
      ...(retry !== undefined ? [`Retry-After: ${retry}`] : []),
      ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
    ];
    // Like ws's own abortHandshake: end, then destroy once the answer is flushed.
    socket.once('finish', () => socket.destroy());
    socket.end(`${lines.join('\r\n')}\r\n\r\n${body}`);
    return;
  }
  socket.destroy();
}
