/**
 * How the `greenroom user …` commands reach the actors. Three ways, and the same actor messages run in each:
 *
 * - `socket`: a server runs on this data dir. Its admin socket (`<data>/greenroom.sock`, mode 0600) accepts the
 *   connection; asks go through it as an operator with the admin role. No password, no session.
 * - `local`: nothing listens on that socket, so no server runs on this data dir. The store is opened here, under the
 *   data dir's lock (which makes a second writer impossible), and the actors are asked in-process.
 * - `remote`: only when asked for (`--server URL` or GREENROOM_SERVER_URL), to administer a server on another
 *   machine. https is required unless the host is loopback; the GREENROOM_ADMIN credentials log in, asks go over the
 *   WebSocket, and `close()` logs the session out so none is left behind.
 *
 * The first two never send a credential anywhere and never probe a port: whatever answers GREENROOM_PORT is not
 * trusted with anything.
 *
 * `greenroom backup` goes the first two ways only (`backupStore`): through the socket the running server writes the
 * backup (an operation line, see gateway/admin-socket.ts); with none running, the store is opened here under the
 * lock. It has no remote way: the WebSocket never writes files on the server's machine.
 */
import { stat } from 'node:fs/promises';
import { BlockList, connect, isIP, type Socket } from 'node:net';
import { join } from 'node:path';
import WebSocket from 'ws';
import { parseServerFrame } from '@greenroom/protocol';
import type { Caller, MessageRef, PayloadArg } from '../actors/define.js';
import type { Config } from '../config.js';
import { ConfigError, GreenroomError, StoreError } from '../errors.js';
import { adminSocketPath, type BackupOperation } from '../gateway/admin-socket.js';
import { createLogger } from '../log.js';
import { createCore } from '../server.js';
import { BackupError, isBackupErrorCode } from '../store/backup.js';
import { DEFAULT_STORE_FILE, LowdbStore } from '../store/lowdb-store.js';
import type { BackupResult } from '../store/store.js';

export type AdminChannelMode = 'socket' | 'local' | 'remote';

export interface AdminChannel {
  readonly mode: AdminChannelMode;
  ask<P, R>(ref: MessageRef<P, R>, ...payload: PayloadArg<NoInfer<P>>): Promise<R>;
  /** Closes what the channel opened (the socket; the store and its lock; the session and the WebSocket). */
  close(): Promise<void>;
}

export interface AdminChannelOptions {
  /** Administer the server at this URL (remote mode) instead of the one on this data dir. */
  serverUrl?: string;
}

/** How long remote mode waits for the server (login, upgrade, logout). */
const REMOTE_TIMEOUT_MS = 15_000;

export async function openAdminChannel(config: Config, options: AdminChannelOptions = {}): Promise<AdminChannel> {
  if (options.serverUrl !== undefined) return openRemote(config, options.serverUrl);
  const path = adminSocketPath(config.dataDir);
  // A path too long for a socket: the server runs without one, and the lock below says whether it runs.
  const socket = path ? await connectAdminSocket(path) : null;
  if (socket) return openSocket(socket);
  return openLocal(config);
}

/** What `backupStore` did, and which way. */
export interface BackupReport extends BackupResult {
  mode: 'socket' | 'local';
}

/**
 * Writes a backup of the store of `config.dataDir` to `file` (absolute): by the running server, through its admin
 * socket, or, with no server on the data dir, from the store opened here under the data dir's lock.
 */
export async function backupStore(config: Config, file: string, options: { overwrite: boolean }): Promise<BackupReport> {
  const path = adminSocketPath(config.dataDir);
  const socket = path ? await connectAdminSocket(path) : null;
  if (socket) {
    const channel = openSocket(socket);
    try {
      const operation: BackupOperation = { op: 'backup', file, overwrite: options.overwrite };
      const result = await channel.operate<BackupResult>(operation).catch((err: unknown) => Promise.reject(operationFailure(err)));
      return { mode: 'socket', ...result };
    } finally {
      await channel.close();
    }
  }
  if (config.store !== 'lowdb') throw new ConfigError(`no server answers on the admin socket, and a ${config.store} store is backed up by its own tools`);
  // A mistyped GREENROOM_DATA must not give an empty backup of a data dir made for it.
  const isDir = await stat(config.dataDir).then((s) => s.isDirectory(), () => false);
  if (!isDir) throw new ConfigError(`there is no data dir ${config.dataDir} (GREENROOM_DATA): nothing to back up`);
  // Looked for before the open, which would make an empty store there.
  const hasStore = await stat(join(config.dataDir, DEFAULT_STORE_FILE)).then(() => true, () => false);
  if (!hasStore) throw new ConfigError(`the data dir ${config.dataDir} holds no store (${DEFAULT_STORE_FILE}): nothing to back up`);
  const store = await LowdbStore.open(config.dataDir);
  try {
    return { mode: 'local', ...(await store.backup(file, options)) };
  } finally {
    await store.close();
  }
}

/** An operation's error answer as the error the same failure raises in-process (so both ways print alike). */
function operationFailure(err: unknown): unknown {
  if (!(err instanceof GreenroomError)) return err;
  const code: string = err.code;
  if (isBackupErrorCode(code)) return new BackupError(code, err.message);
  if (code === 'STORE_CLOSED' || code === 'STORE_WRITE_FAILED' || code === 'STORE_UNREADABLE') return new StoreError(code, err.message);
  if (code === 'BAD_FRAME') return new ConfigError(`the server on this data dir refused the backup request (is it an older version?): ${err.message}`);
  return err;
}

// ---- socket ----

/** Connects to the admin socket; null when no server listens there (no file, or a stale one). */
function connectAdminSocket(path: string): Promise<Socket | null> {
  return new Promise((resolve, reject) => {
    const socket = connect(path);
    const onError = (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED' || err.code === 'ENOTSOCK') return resolve(null);
      const hint = err.code === 'EACCES' ? ' (only the owner of the data dir administers its server)' : '';
      reject(new ConfigError(`cannot connect to the admin socket ${path}: ${err.code ?? err.message}${hint}`));
    };
    socket.once('error', onError);
    socket.once('connect', () => {
      socket.off('error', onError);
      resolve(socket);
    });
  });
}

function openSocket(socket: Socket): AdminChannel & { operate<R>(operation: BackupOperation): Promise<R> } {
  const pending = new Map<string, { resolve(v: unknown): void; reject(e: unknown): void }>();
  let closed = false;
  let buffered = '';
  socket.setEncoding('utf8');
  socket.on('data', (text: string) => {
    buffered += text;
    let nl: number;
    while ((nl = buffered.indexOf('\n')) !== -1) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      settle(pending, line);
    }
  });
  socket.on('error', () => undefined); // 'close' follows
  socket.on('close', () => {
    closed = true;
    for (const p of pending.values()) p.reject(new Error('the server closed the admin socket'));
    pending.clear();
  });
  let next = 0;
  const request = <R>(line: Record<string, unknown>) =>
    new Promise<R>((resolve, reject) => {
      if (closed) return reject(new Error('the server closed the admin socket'));
      const id = String(++next);
      pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      socket.write(`${JSON.stringify({ id, ...line })}\n`);
    });
  return {
    mode: 'socket',
    ask: <P, R>(ref: MessageRef<P, R>, ...payload: PayloadArg<NoInfer<P>>) => request<R>({ to: ref.actor, type: ref.type, payload: payload[0] ?? {} }),
    operate: <R>(operation: BackupOperation) => request<R>({ ...operation }),
    close: async () => {
      if (closed) return;
      await new Promise<void>((resolve) => {
        socket.once('close', () => resolve());
        socket.end();
        setTimeout(() => socket.destroy(), 2000).unref();
      });
    },
  };
}

// ---- local ----

async function openLocal(config: Config): Promise<AdminChannel> {
  const core = await createCore({ config, env: {}, logger: createLogger({ level: 'silent' }) });
  let closing: Promise<void> | null = null;
  return {
    mode: 'local',
    // As the operator (the admin role), like an ask through the admin socket, so the logs name who acted.
    ask: <P, R>(ref: MessageRef<P, R>, ...payload: PayloadArg<NoInfer<P>>) => core.registry.askAs(LOCAL_OPERATOR, ref, (payload[0] ?? {}) as P),
    close: () => (closing ??= core.close()),
  };
}

/** Who asks when the command works on the store itself: the data dir's owner, with the admin role. */
const LOCAL_OPERATOR: Caller = Object.freeze({ system: false, uid: null, sid: null, connectionId: 'greenroom-command', role: 'admin' });

// ---- remote ----

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

/** Whether a URL's host is this machine's loopback (where plain http exposes nothing on the network). */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.startsWith('[') && hostname.endsWith(']') ? hostname.slice(1, -1) : hostname;
  if (host.toLowerCase() === 'localhost') return true;
  const family = isIP(host);
  if (family === 4) return LOOPBACK.check(host, 'ipv4');
  if (family === 6) {
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(host);
    return mapped ? LOOPBACK.check(mapped[1]!, 'ipv4') : LOOPBACK.check(host, 'ipv6');
  }
  return false;
}

/**
 * Checks a `--server` URL before anything is sent: http(s) only, https unless the host is loopback, no credentials
 * or query in it. Answers the base URL (ending in `/`) that the /auth routes and /ws are resolved against.
 */
export function remoteBase(serverUrl: string): URL {
  let url: URL;
  try {
    url = new URL(serverUrl);
  } catch {
    throw new ConfigError(`--server must be a URL such as https://greenroom.example.com (got ${JSON.stringify(serverUrl)})`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new ConfigError('--server must be an https:// URL');
  if (url.protocol === 'http:' && !isLoopbackHost(url.hostname)) {
    throw new ConfigError(`refusing to send admin credentials over plain http to ${url.host}: use https:// (http is allowed only for a loopback host)`);
  }
  if (url.username || url.password) throw new ConfigError('--server must not hold credentials (they come from GREENROOM_ADMIN)');
  if (url.search || url.hash) throw new ConfigError('--server must not have a query or fragment');
  if (!url.pathname.endsWith('/')) url.pathname += '/';
  return url;
}

async function openRemote(config: Config, serverUrl: string): Promise<AdminChannel> {
  const base = remoteBase(serverUrl); // refused before any connection
  if (!config.admin) throw new ConfigError('--server needs the admin credentials in GREENROOM_ADMIN=name:password');

  // Redirects are not followed: the body holds the password, and only the URL the operator named may receive it.
  const res = await post(new URL('auth/login', base), {
    headers: { 'Content-Type': 'application/json' },
    // No device id: the server issues its own (a made-up one would be ignored). Each run is a new device to it.
    body: JSON.stringify({ username: config.admin.username, password: config.admin.password }),
  });
  const body = (await res.json().catch(() => ({}))) as { accessToken?: string; role?: string; error?: { code: string; message: string } };
  if (!res.ok || typeof body.accessToken !== 'string') throw new Error(`admin login to ${base.origin} failed: ${body.error?.code ?? `HTTP ${res.status}`}`);
  const accessToken = body.accessToken;
  const logout = async () => {
    const out = await post(new URL('auth/logout', base), {
      headers: { Authorization: `Bearer ${accessToken}`, 'Content-Type': 'application/json' },
      body: '{}',
    });
    await out.arrayBuffer().catch(() => undefined);
    if (!out.ok && out.status !== 401) throw new Error(`logging out the command's session on ${base.origin} failed: HTTP ${out.status}`);
  };

  let ws: WebSocket;
  try {
    if (body.role !== undefined && body.role !== 'admin') throw new Error(`${config.admin.username} is not an admin on ${base.origin}`);
    const wsUrl = new URL('ws', base);
    wsUrl.protocol = base.protocol === 'https:' ? 'wss:' : 'ws:';
    ws = new WebSocket(wsUrl, { headers: { Authorization: `Bearer ${accessToken}` }, handshakeTimeout: REMOTE_TIMEOUT_MS });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('unexpected-response', (_req, r) => reject(new Error(`the WebSocket upgrade at ${wsUrl.origin} was refused: HTTP ${r.statusCode}`)));
      ws.once('error', (err: NodeJS.ErrnoException) => reject(new Error(`cannot open the WebSocket at ${wsUrl.origin}: ${err.code ?? err.message}`)));
    });
  } catch (err) {
    await logout().catch(() => undefined);
    throw err;
  }
  ws.on('error', () => undefined); // 'close' follows

  const pending = new Map<string, { resolve(v: unknown): void; reject(e: unknown): void }>();
  ws.on('message', (data) => settle(pending, data.toString()));
  ws.on('close', () => {
    for (const p of pending.values()) p.reject(new Error('the server closed the connection'));
    pending.clear();
  });
  let next = 0;
  let closing: Promise<void> | null = null;
  return {
    mode: 'remote',
    ask: <P, R>(ref: MessageRef<P, R>, ...payload: PayloadArg<NoInfer<P>>) =>
      new Promise<R>((resolve, reject) => {
        if (ws.readyState !== WebSocket.OPEN) return reject(new Error('the server closed the connection'));
        const id = String(++next);
        pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
        ws.send(JSON.stringify({ id, to: ref.actor, type: ref.type, payload: payload[0] ?? {} }));
      }),
    // The session is ended first (it closes this socket too, 4001 `logout`), then the socket is closed for sure.
    close: () =>
      (closing ??= (async () => {
        try {
          await logout();
        } finally {
          await closeWebSocket(ws);
        }
      })()),
  };
}

/** A POST that follows no redirect and gives up in time; a network failure is an operator-facing message. */
async function post(url: URL, init: { headers: Record<string, string>; body: string }): Promise<Response> {
  try {
    return await fetch(url, { ...init, method: 'POST', redirect: 'error', signal: AbortSignal.timeout(REMOTE_TIMEOUT_MS) });
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    const why = cause?.code ?? cause?.message ?? (err instanceof Error ? err.message : String(err));
    throw new Error(`cannot reach ${url.origin}${url.pathname}: ${why}`);
  }
}

function closeWebSocket(ws: WebSocket): Promise<void> {
  if (ws.readyState === WebSocket.CLOSED) return Promise.resolve();
  return new Promise((resolve) => {
    ws.once('close', () => resolve());
    if (ws.readyState === WebSocket.OPEN) ws.close(1000);
    setTimeout(() => ws.terminate(), 2000).unref();
  });
}

/** Settles the pending ask a reply line answers (pushes and unknown ids are ignored). */
function settle(pending: Map<string, { resolve(v: unknown): void; reject(e: unknown): void }>, text: string): void {
  const frame = parseServerFrame(text);
  if (!frame || 'event' in frame) return;
  if (frame.id === null) {
    // An ask the server could not read (it never is one of ours, unless too long): nothing else will answer it.
    if (!frame.ok) for (const p of pending.values()) p.reject(new GreenroomError(frame.error.code, frame.error.message));
    pending.clear();
    return;
  }
  const p = pending.get(String(frame.id));
  if (!p) return;
  pending.delete(String(frame.id));
  if (frame.ok) p.resolve(frame.result);
  else p.reject(new GreenroomError(frame.error.code, frame.error.message));
}
