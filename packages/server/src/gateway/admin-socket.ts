/**
 * The admin socket: a Unix socket `greenroom.sock` in the data dir, through which the `greenroom` command on the
 * server's machine administers the running server without a password or a session.
 *
 * Who may use it: whoever may open the socket file, which is created with mode 0600 — the owner of the data dir (the
 * user the server runs as) is its administrator. Every connection asks as an operator with the `admin` role, and
 * its asks take the same path as a WebSocket frame's: the protocol package parses them and the registry applies
 * every check of the wire (internal messages stay UNKNOWN_MESSAGE).
 *
 * Protocol: newline-delimited JSON. Each line is an ask `{"id","to","type","payload"}`; each answer is a line
 * `{"id","ok":true,"result"}` or `{"id","ok":false,"error":{"code","message"}}`, as on the WebSocket. A connection
 * that subscribes receives pushes as lines too. A bad line is answered BAD_FRAME; lines are bounded in length,
 * asks in flight per connection and connections in number, so no client of the socket can grow the server's memory.
 *
 * A socket file found at start is stale when the server holds the data dir's lock (only the lock holder listens
 * there): it is removed and the socket made again. A path too long for a Unix socket means no admin socket (a
 * warning in the log); the server runs without it.
 */
import { randomUUID } from 'node:crypto';
import { chmodSync } from 'node:fs';
import { unlink } from 'node:fs/promises';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { resolve } from 'node:path';
import type { Logger } from 'pino';
import { ErrorCode, parseAskFrame, type AskId, type ErrorBody, type ServerFrame } from '@greenroom/protocol';
import type { Caller } from '../actors/define.js';
import type { ActorRegistry, Subscriber } from '../actors/registry.js';
import type { GreenroomError } from '../errors.js';

/** The socket's file name in the data dir. */
export const ADMIN_SOCKET_FILE = 'greenroom.sock';

/**
 * The longest socket path used, in bytes. `sun_path` holds 108 bytes on Linux and 104 on macOS (the terminating
 * NUL included); a longer path is truncated silently by some Node versions, so it is refused here instead.
 */
export const MAX_SOCKET_PATH_BYTES = 103;

/** Asks one admin connection may have in flight; past it, RATE_LIMITED. */
export const MAX_ADMIN_INFLIGHT = 64;

/** Admin connections open at once; past it, a new one is closed at once. */
export const MAX_ADMIN_CONNECTIONS = 32;

/** How long a closing connection may take to flush its last answers before it is torn down. */
const CLOSE_GRACE_MS = 500;

/** The admin socket's path for a data dir, or null when it is too long for a Unix socket. */
export function adminSocketPath(dataDir: string): string | null {
  const path = resolve(dataDir, ADMIN_SOCKET_FILE);
  return Buffer.byteLength(path) > MAX_SOCKET_PATH_BYTES ? null : path;
}

export interface AdminSocketOptions {
  registry: ActorRegistry;
  log: Logger;
  /** The longest line accepted (the WebSocket's largest frame). */
  maxLineBytes: number;
  /** A connection whose unread answers pass this is closed (a slow reader never grows the server's memory). */
  sendBufferBytes: number;
  /**
   * True when this process holds the data dir's lock: then no other server can be listening on the socket, and a
   * socket file found there is stale. When false (a store supplied by the app), a socket that still answers is left
   * to its owner and this server runs without one.
   */
  dataDirLocked: boolean;
}

export class AdminSocket {
  private accepting = true;
  private inflight = 0;
  private closing: Promise<void> | null = null;
  private readonly connections = new Set<AdminConnection>();

  private constructor(
    readonly path: string,
    private readonly server: Server,
    private readonly options: AdminSocketOptions,
  ) {}

  /**
   * Listens on `<dataDir>/greenroom.sock` with mode 0600. Never fails the server's start: when the socket cannot be
   * made, it logs a warning and answers null.
   */
  static async open(dataDir: string, options: AdminSocketOptions): Promise<AdminSocket | null> {
    const { log } = options;
    const path = adminSocketPath(dataDir);
    if (!path) {
      const full = resolve(dataDir, ADMIN_SOCKET_FILE);
      log.warn(
        { path: full, bytes: Buffer.byteLength(full), maxBytes: MAX_SOCKET_PATH_BYTES },
        'admin socket path too long for a Unix socket: running without it (use a shorter GREENROOM_DATA, or greenroom user … --server URL)',
      );
      return null;
    }
    try {
      if (!options.dataDirLocked && (await answers(path))) {
        log.warn({ path }, 'another process listens on the admin socket: running without it');
        return null;
      }
      await unlink(path).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') throw err;
      });
      const server = createServer({ allowHalfOpen: true });
      const admin = new AdminSocket(path, server, options);
      server.on('connection', (socket) => admin.accept(socket));
      await listenPrivately(server, path);
      server.on('error', (err) => log.warn({ err, path }, 'admin socket error'));
      log.info({ path }, 'admin socket listening');
      return admin;
    } catch (err) {
      log.warn({ err, path }, 'cannot open the admin socket: running without it');
      return null;
    }
  }

  /**
   * Stops the socket, in the server's shutdown order: no new connections (the socket file is removed) and new asks
   * answered UNAVAILABLE; the asks in flight answered (at most `drainMs`); then every connection closed.
   */
  close(drainMs: number): Promise<void> {
    this.closing ??= (async () => {
      this.accepting = false;
      const stopped = new Promise<void>((done) => this.server.close(() => done()));
      const deadline = Date.now() + drainMs;
      while (this.inflight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      for (const c of this.connections) c.end();
      const graceEnd = Date.now() + CLOSE_GRACE_MS;
      while (this.connections.size > 0 && Date.now() < graceEnd) await new Promise((r) => setTimeout(r, 10));
      for (const c of this.connections) c.destroy();
      await stopped;
    })();
    return this.closing;
  }

  private accept(socket: Socket): void {
    if (!this.accepting || this.connections.size >= MAX_ADMIN_CONNECTIONS) {
      if (this.accepting) this.options.log.warn({ max: MAX_ADMIN_CONNECTIONS }, 'too many admin socket connections: one refused');
      socket.destroy();
      return;
    }
    const connection = new AdminConnection(socket, this.options, {
      accepting: () => this.accepting,
      onAsk: () => void this.inflight++,
      onAskDone: () => void this.inflight--,
      onClose: (c) => {
        this.connections.delete(c);
        this.options.registry.unsubscribeAll(c.connectionId);
      },
    });
    this.connections.add(connection);
  }
}

interface ConnectionHooks {
  accepting(): boolean;
  onAsk(): void;
  onAskDone(): void;
  onClose(connection: AdminConnection): void;
}

/** One client of the admin socket: lines in, answers and pushes out. */
class AdminConnection implements Subscriber {
  readonly connectionId = `admin-socket:${randomUUID()}`;
  readonly caller: Caller;
  /** The start of a line whose newline has not arrived yet. */
  private partial: Buffer[] = [];
  private partialBytes = 0;
  /** Inside a line that was too long: its bytes are dropped up to its newline. */
  private skipping = false;
  private inflight = 0;
  /** The peer has sent its last byte: end our side once every ask it sent is answered. */
  private peerEnded = false;
  /** The socket has closed: a Subscribe still queued must not add it back. */
  closed = false;
  private readonly decoder = new TextDecoder('utf-8', { fatal: true });

  constructor(
    private readonly socket: Socket,
    private readonly options: AdminSocketOptions,
    private readonly hooks: ConnectionHooks,
  ) {
    this.caller = Object.freeze({ system: false, uid: null, sid: null, connectionId: this.connectionId, role: 'admin' });
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('end', () => {
      this.peerEnded = true;
      // A last line without its newline is still a line.
      if (!this.skipping && this.partialBytes > 0) this.onLine(Buffer.concat(this.partial));
      this.partial = [];
      this.partialBytes = 0;
      this.endIfDone();
    });
    socket.on('close', () => {
      this.closed = true;
      hooks.onClose(this);
    });
    socket.on('error', () => undefined); // 'close' follows
  }

  push(frame: ServerFrame): void {
    this.send(frame);
  }

  end(): void {
    this.socket.end();
  }

  destroy(): void {
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(0x0a, start);
      if (nl === -1) break;
      const piece = chunk.subarray(start, nl);
      start = nl + 1;
      if (this.skipping) {
        this.skipping = false; // the too-long line ends here; it was answered when it passed the bound
        continue;
      }
      const line = this.partialBytes > 0 ? Buffer.concat([...this.partial, piece]) : piece;
      this.partial = [];
      this.partialBytes = 0;
      if (line.length > this.options.maxLineBytes) this.replyError(null, tooLong(this.options.maxLineBytes));
      else this.onLine(line);
    }
    if (start >= chunk.length || this.skipping) return;
    const rest = chunk.subarray(start);
    this.partialBytes += rest.length;
    if (this.partialBytes > this.options.maxLineBytes) {
      this.partial = [];
      this.partialBytes = 0;
      this.skipping = true;
      this.replyError(null, tooLong(this.options.maxLineBytes));
      return;
    }
    this.partial.push(Buffer.from(rest)); // a copy: the chunk is not kept alive by a few bytes of it
  }

  private onLine(bytes: Buffer): void {
    let text: string;
    try {
      text = this.decoder.decode(bytes);
    } catch {
      return this.replyError(null, { code: ErrorCode.BAD_FRAME, message: 'a line must be valid UTF-8' });
    }
    if (text.endsWith('\r')) text = text.slice(0, -1);
    if (text.trim() === '') return;

    const parsed = parseAskFrame(text);
    if (!parsed.ok) return this.replyError(parsed.id, parsed.error);
    const { id, to, type, payload } = parsed.frame;
    if (!this.hooks.accepting()) return this.replyError(id, { code: ErrorCode.UNAVAILABLE, message: 'the server is shutting down' });
    if (this.inflight >= MAX_ADMIN_INFLIGHT) {
      return this.replyError(id, { code: ErrorCode.RATE_LIMITED, message: `at most ${MAX_ADMIN_INFLIGHT} asks in flight per connection` });
    }

    this.inflight++;
    this.hooks.onAsk();
    this.options.registry.dispatchFromClient(this.caller, this, to, type, payload, (err: GreenroomError | null, result?: unknown) => {
      this.inflight--;
      this.hooks.onAskDone();
      if (err) this.replyError(id, err.toBody());
      else this.send({ id, ok: true, result });
      this.endIfDone();
    });
  }

  private endIfDone(): void {
    if (this.peerEnded && this.inflight === 0) this.socket.end();
  }

  private replyError(id: AskId | null, error: ErrorBody): void {
    this.send({ id, ok: false, error });
  }

  private send(frame: ServerFrame): void {
    const socket = this.socket;
    if (socket.destroyed || !socket.writable) return;
    if (socket.writableLength > this.options.sendBufferBytes) {
      // A reader this slow is dropped, never allowed to grow the server's memory.
      this.options.log.warn({ connectionId: this.connectionId }, 'admin socket reader too slow: connection closed');
      socket.destroy();
      return;
    }
    socket.write(`${JSON.stringify(frame)}\n`);
  }
}

function tooLong(max: number): ErrorBody {
  return { code: ErrorCode.BAD_FRAME, message: `a line may hold at most ${max} bytes` };
}

/**
 * Listens with the file created 0600 from the start: the umask is narrowed around `listen`, which creates the
 * socket file synchronously, and the mode is set again at once (where the umask cannot be changed, e.g. in a worker
 * thread, the chmod in the same tick is what closes the window; the data dir itself is 0700).
 */
async function listenPrivately(server: Server, path: string): Promise<void> {
  await new Promise<void>((done, fail) => {
    server.once('error', fail);
    server.once('listening', () => {
      server.off('error', fail);
      done();
    });
    let previous: number | undefined;
    try {
      previous = process.umask(0o177);
    } catch {
      previous = undefined;
    }
    try {
      server.listen({ path, exclusive: true });
    } finally {
      if (previous !== undefined) process.umask(previous);
    }
    // `listening` is true here only if the file was made by this call (a failure is reported on the next tick).
    if (server.listening) {
      try {
        chmodSync(path, 0o600);
      } catch (err) {
        server.off('error', fail);
        server.close();
        fail(err);
      }
    }
  });
}

/** Whether something accepts connections on this socket path. */
function answers(path: string): Promise<boolean> {
  return new Promise((done) => {
    const socket = connect(path);
    socket.once('connect', () => {
      socket.destroy();
      done(true);
    });
    // Only these mean nothing listens; any other error (EACCES: another user's socket) leaves the file alone.
    socket.once('error', (err: NodeJS.ErrnoException) => done(!['ECONNREFUSED', 'ENOENT', 'ENOTSOCK'].includes(err.code ?? '')));
  });
}
