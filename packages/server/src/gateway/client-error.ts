/**
 * What the server writes when node:http gives up on a connection before a request was read (its `clientError`).
 *
 * A connection that never sent a byte — a browser's pre-opened (speculative or keep-alive) socket left idle past the
 * headers timeout — is closed without a word: anything written into it would sit there until the browser sends its
 * next request on that socket and reads the stale answer as the reply (Chromium takes a 400 at face value). A request
 * that had started arriving and ran out of time gets 408 (which browsers retry), headers too large 431, anything
 * else malformed 400. Nothing is written once an answer has begun on the socket.
 */
import type { Duplex } from 'node:stream';

const REQUEST_TIMEOUT = 'HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n';
const TOO_LARGE = 'HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\nContent-Length: 0\r\n\r\n';
const BAD_REQUEST = 'HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n';

/** The answer for a client error, or null to close silently. */
export function clientErrorAnswer(err: { code?: string }, socket: Duplex): string | null {
  const s = socket as Duplex & { bytesRead?: number; _httpMessage?: { headersSent?: boolean } | null };
  // An answer already begun on this socket: nothing more can be written that the client could tell apart.
  if (s._httpMessage?.headersSent) return null;
  // Not a byte of a request arrived (bytesRead counts the bytes after TLS, so a bare handshake is nothing too).
  if (!s.bytesRead) return null;
  switch (err.code) {
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return REQUEST_TIMEOUT;
    case 'HPE_HEADER_OVERFLOW':
      return TOO_LARGE;
    case 'ECONNRESET':
    case 'EPIPE':
      return null;
    default:
      return BAD_REQUEST;
  }
}

/** A `clientError` listener for node:http and node:https servers. */
export function onClientError(err: Error & { code?: string }, socket: Duplex): void {
  const answer = clientErrorAnswer(err, socket);
  if (answer && socket.writable) socket.end(answer);
  socket.destroy();
}
