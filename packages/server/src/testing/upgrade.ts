/**
 * WebSocket upgrades sent with node:http rather than a WebSocket client, so a refusal's status, headers and body are
 * seen exactly as the server wrote them, and so is whether it closed the connection afterwards.
 */
import http, { type IncomingHttpHeaders } from 'node:http';
import https from 'node:https';
import { randomBytes } from 'node:crypto';
import type { Duplex } from 'node:stream';
import { baseUrl, parseJson, type Target } from './http.js';

/** How long a refused upgrade waits for the server to close the connection before it reports that it did not. */
const CLOSE_WAIT_MS = 2_000;

/** The answer to an upgrade request. */
export interface UpgradeAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  /** The body as sent (empty after a 101). */
  text: string;
  /** The body parsed as JSON (undefined when it is empty or not JSON). */
  body: any;
  /** After a 101: the upgraded connection, open (the caller destroys it). */
  socket?: Duplex;
  /** After a refusal: the server closed the connection once it had answered. */
  socketClosed: boolean;
}

export interface UpgradeOptions {
  /** The path under the target (default `/ws`). */
  path?: string;
  /** Appended to the path, e.g. `?ticket=…`. */
  query?: string;
  /** Sent as given, after the upgrade headers and the bearer token (so they can replace them). */
  headers?: Record<string, string>;
  /** A certificate to trust, for wss with a test certificate. */
  ca?: string | Buffer;
}

/**
 * Sends a WebSocket upgrade request (with `Authorization: Bearer token` if given). After a 101 `socket` is the
 * upgraded connection; after a refusal it resolves once the server has closed the connection (`socketClosed`), or
 * after 2 s without it.
 */
export function rawUpgrade(target: Target, token?: string, options: UpgradeOptions = {}): Promise<UpgradeAnswer> {
  const url = `${baseUrl(target)}${options.path ?? '/ws'}${options.query ?? ''}`;
  const lib = url.startsWith('https:') ? https : http;
  return new Promise((resolve, reject) => {
    const req = lib.request(url, {
      agent: false,
      ...(options.ca ? { ca: options.ca } : {}),
      headers: {
        Connection: 'Upgrade',
        Upgrade: 'websocket',
        'Sec-WebSocket-Version': '13',
        'Sec-WebSocket-Key': randomBytes(16).toString('base64'),
        ...(token ? { Authorization: `Bearer ${token}` } : {}),
        ...options.headers,
      },
    });
    req.on('upgrade', (res, socket) =>
      resolve({ status: res.statusCode ?? 0, headers: res.headers, text: '', body: undefined, socket, socketClosed: false }),
    );
    req.on('response', (res) => {
      const socket = res.socket;
      let text = '';
      let bodyRead = false;
      let socketClosed = false;
      let gaveUp = false;
      const settle = () => {
        if (!bodyRead || !(socketClosed || gaveUp)) return;
        clearTimeout(timer);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, body: parseJson(text), socketClosed });
      };
      const timer = setTimeout(() => {
        gaveUp = true;
        settle();
        socket.destroy();
      }, CLOSE_WAIT_MS);
      socket.once('close', () => {
        socketClosed = !gaveUp;
        settle();
      });
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      // 'close' also comes after a body cut short.
      for (const event of ['end', 'close'] as const) {
        res.once(event, () => {
          bodyRead = true;
          settle();
        });
      }
    });
    req.on('error', reject);
    req.end();
  });
}

/** An upgrade that must be refused: its answer (rejects, after closing it, if the connection was upgraded). */
export async function refusedUpgrade(target: Target, token?: string, options: UpgradeOptions = {}): Promise<UpgradeAnswer> {
  const answer = await rawUpgrade(target, token, options);
  if (answer.socket) {
    answer.socket.destroy();
    throw new Error(`the upgrade was accepted (${answer.status})`);
  }
  return answer;
}
