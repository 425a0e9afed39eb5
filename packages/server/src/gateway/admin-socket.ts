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
 * Operations: a line whose object has an `op` member is an operation of the server itself, which only this socket
 * offers (never the WebSocket, whose frames must name an actor: such a frame there is BAD_FRAME). One exists:
 *
 *   {"id", "op": "backup", "file": "/absolute/path", "overwrite"?: boolean}
 *
 * writes a consistent copy of the store to `file` on the server's machine (Store.backup: every write acknowledged
 * before the line arrived is in it; mode 0600), refusing an existing file unless `overwrite` is true, and a path
 * that is relative or names one of the data dir's own files. The answer is `{"id","ok":true,"result":{"file","bytes"}}`,
 * or an error whose code says why: BACKUP_EXISTS, BACKUP_BAD_TARGET, BACKUP_WRITE_FAILED, BACKUP_UNSUPPORTED (the
 * store cannot make backups), a store error (STORE_CLOSED, STORE_WRITE_FAILED), or BAD_FRAME for a malformed line.
 * Backups run one at a time, in the order asked; each counts as an ask in flight. `greenroom backup` sends it, with
 * the path resolved where the command was typed.
 *
 * A socket file found at start is stale when the server holds the data dir's lock (only the lock holder listens
 * there): it is removed and the socket made again. A path too long for a Unix socket means no admin socket (a
 * warning in the log); the server runs without it.
 */
import { randomUUID } from 'node:crypto';
import { chmodSync } from 'node:fs';
import { unlink } from 'node:fs/promises';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { isAbsolute, resolve } from 'node:path';
import type { Logger } from 'pino';
import { ErrorCode, MAX_ID_LENGTH, parseAskFrame, type AskId, type ErrorBody, type ServerFrame } from '@greenroom/protocol';
import type { Caller } from '../actors/define.js';
import type { ActorRegistry, Subscriber } from '../actors/registry.js';
import { StoreError, type GreenroomError } from '../errors.js';
import { BackupError } from '../store/backup.js';

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

/** The longest backup path accepted (PATH_MAX on Linux). */
const MAX_PATH_LENGTH = 4096;

/** An operation line, read (see the header). */
export interface BackupOperation {
  op: 'backup';
  file: string;
  overwrite: boolean;
}

type OperationParse = { ok: true; id: AskId; operation: BackupOperation } | { ok: false; id: AskId | null; error: ErrorBody };

/** An error answer whose code is not one of the wire's (a store's or a backup's: the socket's user is the operator). */
interface OperationErrorBody {
  code: string;
  message: string;
}

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
  /** The last backup asked for: the next one starts when it is done. */
  private backups: Promise<unknown> = Promise.resolve();

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
      operate: (operation) => this.operate(operation),
      onAsk: () => void this.inflight++,
      onAskDone: () => void this.inflight--,
      onClose: (c) => {
        this.connections.delete(c);
        this.options.registry.connectionClosed(c.connectionId, null);
      },
    });
    this.connections.add(connection);
  }

  /** Runs an operation line's operation; backups one at a time. */
  private operate(operation: BackupOperation): Promise<unknown> {
    const run = this.backups.then(() => this.backup(operation));
    this.backups = run.catch(() => undefined);
    return run;
  }

  private async backup({ file, overwrite }: BackupOperation): Promise<unknown> {
    const { log, registry } = this.options;
    const store = registry.store;
    if (!store.backup) throw new BackupError('BACKUP_UNSUPPORTED', 'the store this server uses cannot make backups');
    const started = Date.now();
    try {
      const result = await store.backup(file, { overwrite });
      log.info({ file, bytes: result.bytes, ms: Date.now() - started }, 'backup written');
      return result;
    } catch (err) {
      log.warn({ file, code: (err as { code?: unknown }).code, err }, 'backup failed');
      throw err;
    }
  }
}

interface ConnectionHooks {
  accepting(): boolean;
  operate(operation: BackupOperation): Promise<unknown>;
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

    const operation = parseOperation(text);
    if (operation) {
      if (!operation.ok) return this.replyError(operation.id, operation.error);
      return this.runOperation(operation.id, operation.operation);
    }

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

  private runOperation(id: AskId, operation: BackupOperation): void {
    if (!this.hooks.accepting()) return this.replyError(id, { code: ErrorCode.UNAVAILABLE, message: 'the server is shutting down' });
    if (this.inflight >= MAX_ADMIN_INFLIGHT) {
      return this.replyError(id, { code: ErrorCode.RATE_LIMITED, message: `at most ${MAX_ADMIN_INFLIGHT} asks in flight per connection` });
    }
    this.inflight++;
    this.hooks.onAsk();
    this.hooks.operate(operation).then(
      (result) => this.sendLine({ id, ok: true, result }),
      (err: unknown) => this.sendLine({ id, ok: false, error: operationError(err, this.options.log) }),
    ).finally(() => {
      this.inflight--;
      this.hooks.onAskDone();
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
    this.sendLine(frame);
  }

  private sendLine(value: ServerFrame | { id: AskId; ok: false; error: OperationErrorBody }): void {
    const socket = this.socket;
    if (socket.destroyed || !socket.writable) return;
    if (socket.writableLength > this.options.sendBufferBytes) {
      // A reader this slow is dropped, never allowed to grow the server's memory.
      this.options.log.warn({ connectionId: this.connectionId }, 'admin socket reader too slow: connection closed');
      socket.destroy();
      return;
    }
    socket.write(`${JSON.stringify(value)}\n`);
  }
}

/**
 * Reads a line as an operation if its object has an `op` member; undefined for any other line (an ask, or a line
 * that is no JSON object: parseAskFrame answers those). Only own members are read, as parseAskFrame does.
 */
export function parseOperation(text: string): OperationParse | undefined {
  if (!text.includes('"op"')) return undefined; // the cheap look: asks are parsed once
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw) || !Object.hasOwn(raw, 'op')) return undefined;
  const line = raw as Record<string, unknown>;
  const id = readId(line.id);
  const bad = (message: string): OperationParse => ({ ok: false, id, error: { code: ErrorCode.BAD_FRAME, message } });
  if (id === null) return bad('id must be a non-empty string (at most 128 characters) or a safe integer');
  if (line.op !== 'backup') return bad('op must be "backup"');
  for (const key of Object.keys(line)) {
    if (!['id', 'op', 'file', 'overwrite'].includes(key)) return bad(`a backup line has no member "${key}"`);
  }
  const { file, overwrite } = line;
  if (typeof file !== 'string' || !isAbsolute(file) || file.length > MAX_PATH_LENGTH || file.includes('\0')) {
    return bad('file must be an absolute path on the server\'s machine');
  }
  if (overwrite !== undefined && typeof overwrite !== 'boolean') return bad('overwrite must be true or false');
  return { ok: true, id, operation: { op: 'backup', file, overwrite: overwrite === true } };
}

function readId(value: unknown): AskId | null {
  if (typeof value === 'string' && value.length > 0 && value.length <= MAX_ID_LENGTH) return value;
  if (typeof value === 'number' && Number.isSafeInteger(value)) return value;
  return null;
}

/** An operation's failure as an answer: its own code for a backup's or a store's error; anything else is a bug. */
function operationError(err: unknown, log: Logger): OperationErrorBody {
  if (err instanceof BackupError || err instanceof StoreError) return { code: err.code, message: err.message };
  log.error({ err }, 'admin socket operation failed');
  return { code: ErrorCode.INTERNAL, message: 'internal error (the server log has the details)' };
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
