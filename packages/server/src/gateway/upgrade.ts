/**
 * The green room: every WebSocket upgrade waits here until its session is registered.
 *
 *   1. refuse past the connection cap (503) or on a path other than `<basePath>/ws` (404)
 *   2. authenticate (bearer → ticket → cookie; reading only)
 *   3. ASK SessionStore to Register the connection, and await the answer: it re-checks that the session is live
 *      and the user unblocked, inside its mailbox
 *   4. only then write the HTTP 101 — so the client's very first ask finds its session
 * A failure at any step writes a plain HTTP answer (401/403/429/503), destroys the socket and registers nothing.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { randomUUID } from 'node:crypto';
import { WebSocketServer } from 'ws';
import { Close, ErrorCode, sessionEndOf, sessionEnds, type CloseSpec } from '@greenroom/protocol';
import type { Logger } from 'pino';
import type { ActorRegistry } from '../actors/registry.js';
import { SessionStore, type Principal } from '../actors/session-store.js';
import type { Authenticator } from '../auth/authenticate.js';
import { GreenroomError, toPublicError } from '../errors.js';
import { Connection, type ConnectionHooks } from './connection.js';
import type { Connections } from './connections.js';
import { rejectUpgrade } from './reject.js';

export interface GreenRoomOptions {
  maxConnections: number;
  maxFrameBytes: number;
  askRate: number;
  askBurst: number;
  maxAsksInFlight: number;
  sendBufferBytes: number;
  /** The WebSocket endpoint is `<basePath>/ws` (default ''). */
  basePath?: string;
}

export class GreenRoom {
  private readonly wss: WebSocketServer;
  /** Upgrades in the green room: counted against the cap so a burst cannot overshoot it. */
  private waiting = 0;
  /** One hooks object shared by every connection (not four closures per socket: memory per idle connection). */
  private readonly hooks: ConnectionHooks;

  constructor(
    private readonly registry: ActorRegistry,
    private readonly auth: Authenticator,
    private readonly connections: Connections,
    private readonly options: GreenRoomOptions,
    private readonly log: Logger,
  ) {
    this.hooks = {
      registry,
      askRate: options.askRate,
      askBurst: options.askBurst,
      maxAsksInFlight: options.maxAsksInFlight,
      sendBufferBytes: options.sendBufferBytes,
      accepting: () => connections.accepting,
      onAsk: () => connections.askStarted(),
      onAskDone: () => connections.askDone(),
      onClose: (c) => this.onClose(c),
    };
    // The transport's own size limit is never turned off: a frame past it closes 1009 unbuffered.
    this.wss = new WebSocketServer({ noServer: true, maxPayload: options.maxFrameBytes, perMessageDeflate: false, clientTracking: false });
  }

  async handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    socket.on('error', destroySocket);
    let connection: Connection | null = null;
    try {
      if (!this.connections.accepting) throw new GreenroomError(ErrorCode.UNAVAILABLE, 'the server is shutting down', { retryAfterSeconds: 5 });
      const path = (req.url ?? '').split('?', 1)[0];
      if (path !== `${this.options.basePath ?? ''}/ws`) throw new GreenroomError(ErrorCode.NOT_FOUND, 'no such endpoint');
      if (this.connections.size + this.waiting >= this.options.maxConnections) {
        throw new GreenroomError(ErrorCode.UNAVAILABLE, 'too many connections', { retryAfterSeconds: 5 });
      }
      this.waiting += 1;
      try {
        const identity = await this.auth.authenticate(req);
        connection = new Connection(connectionId(), this.hooks);
        const address = this.auth.clientAddress(req);
        const principal = await this.registry.ask(SessionStore.Register, { connection, uid: identity.uid, sid: identity.sid, address });
        // The session may have ended, or the client gone, while we waited: then no 101.
        if (connection.pendingClose) throw closeToError(connection.pendingClose);
        if (socket.destroyed || !this.connections.accepting) throw new GreenroomError(ErrorCode.UNAVAILABLE, 'the connection went away');
        const c = connection;
        this.wss.handleUpgrade(req, socket, head, (ws) => {
          c.attach(ws, socket, principal);
          this.connections.add(c);
        });
        // ws completes a valid upgrade synchronously; if it refused the handshake, undo the registration.
        if (!connection.attached) throw new GreenroomError(ErrorCode.BAD_REQUEST, 'invalid WebSocket handshake');
      } finally {
        this.waiting -= 1;
      }
    } catch (err) {
      let error = toPublicError(err);
      // An upgrade is refused with 401/403/429/503 (docs/protocol.md, Connecting): a Register that timed out is a 503.
      if (error.code === ErrorCode.TIMEOUT) error = new GreenroomError(ErrorCode.UNAVAILABLE, 'the server is busy; try again', { retryAfterSeconds: 1 });
      if (error.code === ErrorCode.INTERNAL) this.log.error({ err }, 'upgrade failed');
      // A Register that timed out may still complete inside the mailbox: the Unregister queued behind it undoes it
      // (and is a no-op for a connection never registered).
      if (connection) this.unregister(connection.id);
      rejectUpgrade(socket, error);
    }
  }

  /** After the stop has closed every socket. */
  close(): void {
    this.wss.close();
  }

  private onClose(c: Connection): void {
    this.connections.remove(c);
    this.registry.connectionClosed(c.id, c.attached ? c.caller : null);
    this.unregister(c.id);
  }

  private unregister(connectionId: string): void {
    this.registry.ask(SessionStore.Unregister, { connectionId }).catch((err) => this.log.warn({ err }, 'unregister failed'));
  }
}

/**
 * A new connection id, as a flat string. `randomUUID()` builds its result by concatenation, and V8 keeps such a
 * string as a tree of about ten pieces (~480 bytes on the heap instead of 56) for as long as it lives: here, as long
 * as the socket is open, in the Connection, its Principal and SessionStore's map.
 */
function connectionId(): string {
  return Buffer.from(randomUUID(), 'latin1').toString('latin1');
}

/** One function for every socket: a closure here would keep this upgrade's whole scope alive with the socket. */
function destroySocket(this: Duplex): void {
  this.destroy();
}

/** SessionStore closes a socket still in the green room only because its session ended (a block included). */
function closeToError(spec: CloseSpec): GreenroomError {
  const end = sessionEndOf(spec) ?? 'revoked';
  return new GreenroomError(sessionEnds[end].error, `the session has ended (${end})`);
}
