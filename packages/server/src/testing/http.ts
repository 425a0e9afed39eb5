/**
 * HTTP against a test server with node:http, so every header (Origin, Cookie, X-Forwarded-For) is exactly what the
 * test says and the answer is seen as sent: no fetch defaults, no cookie jar, no redirects followed.
 */
import http, { type Agent, type IncomingHttpHeaders } from 'node:http';
import https from 'node:https';

/** Where a request goes: a test server (its `url`, base path included) or a base URL such as an app's origin. */
export type Target = { url: string } | string;

/** An HTTP answer read whole. */
export interface HttpAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  /** The body as sent. */
  text: string;
  /** The body parsed as JSON (undefined when it is empty or not JSON). */
  body: any;
  /** The Set-Cookie headers (none: []). */
  cookies: string[];
}

export interface HttpRequestOptions {
  /** GET by default, POST when there is a body. */
  method?: string;
  /** Sent as JSON. */
  body?: unknown;
  /** Sent as is in place of `body`, still as application/json unless `headers` say otherwise (malformed or oversized bodies). */
  rawBody?: string | Buffer;
  headers?: Record<string, string>;
  /** The connection pool (default `false`: a fresh connection for this request, closed after it). */
  agent?: Agent | false;
  /** A certificate to trust, for https with a test certificate. */
  ca?: string | Buffer;
}

/** The base URL of a target, without a trailing slash. */
export function baseUrl(target: Target): string {
  return (typeof target === 'string' ? target : target.url).replace(/\/$/, '');
}

/** Sends one request to `${target}${path}` and reads the answer whole. */
export function httpRequest(target: Target, path: string, options: HttpRequestOptions = {}): Promise<HttpAnswer> {
  const url = `${baseUrl(target)}${path}`;
  const payload = options.rawBody ?? (options.body === undefined ? undefined : JSON.stringify(options.body));
  const method = options.method ?? (payload === undefined ? 'GET' : 'POST');
  const headers: Record<string, string> = {};
  if (payload !== undefined) headers['Content-Type'] = 'application/json';
  // A POST without a body still says Content-Length: 0, as browsers do, rather than sending a chunked empty body.
  if (payload !== undefined || !['GET', 'HEAD'].includes(method)) headers['Content-Length'] = String(payload === undefined ? 0 : Buffer.byteLength(payload));
  const lib = url.startsWith('https:') ? https : http;
  return new Promise((resolve, reject) => {
    const req = lib.request(
      url,
      { method, agent: options.agent ?? false, headers: { ...headers, ...options.headers }, ...(options.ca ? { ca: options.ca } : {}) },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, body: parseJson(text), cookies: res.headers['set-cookie'] ?? [] });
        });
        res.on('error', reject);
      },
    );
    req.on('upgrade', (res, socket) => {
      socket.destroy();
      reject(new Error(`${method} ${path} was upgraded (${res.statusCode}); use rawUpgrade for upgrades`));
    });
    req.on('error', reject);
    req.end(payload);
  });
}

/** POSTs `body` as JSON (no body when undefined). */
export function post(target: Target, path: string, body?: unknown, options: Omit<HttpRequestOptions, 'body' | 'method'> = {}): Promise<HttpAnswer> {
  return httpRequest(target, path, { ...options, method: 'POST', ...(body === undefined ? {} : { body }) });
}

/** POST /auth/login with a username and password (and a device id if given); the answer, whatever its status. */
export function loginWithPassword(
  target: Target,
  credentials: { username: string; password: string; deviceId?: string },
  options: Omit<HttpRequestOptions, 'body' | 'method'> = {},
): Promise<HttpAnswer> {
  return post(target, '/auth/login', credentials, options);
}

/** POST /auth/guest (with `{ deviceId }` if given); the answer, whatever its status. */
export function signInAsGuest(target: Target, body: { deviceId?: string } = {}, options: Omit<HttpRequestOptions, 'body' | 'method'> = {}): Promise<HttpAnswer> {
  return post(target, '/auth/guest', body, options);
}

/** `text` as JSON, or undefined when it is empty or not JSON. */
export function parseJson(text: string): any {
  if (text === '') return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
