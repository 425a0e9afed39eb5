/**
 * One client socket after the green room: frames in, replies and pushes out, its limits and its heartbeat.
 *
 * Security: every frame is client data. It is size-limited by ws (1009), rate-limited here (every frame takes a
 * token, bad ones included), parsed by the protocol package, and routed through the registry's checks. A bad
 * frame is answered and never closes the socket by itself.
 */
import { Close, ErrorCode, parseAskFrame, rateLimitedClose, type AskId, type CloseSpec, type ErrorBody, type ServerFrame } from '@greenroom/protocol';
import type { Duplex } from 'node:stream';
import type { WebSocket, RawData } from 'ws';
import type { ActorRegistry, Subscriber } from '../actors/registry.js';
import type { LiveConnection, Principal } from '../actors/session-store.js';
import type { GreenroomError } from '../errors.js';
import { refill } from './token-bucket.js';

/** How long a client may keep sending into an empty bucket before it is closed with 4008. */
const RATE_LIMIT_GRACE_MS = 10_000;
/** A pause this long without a RATE_LIMITED answer ends a run of them: the client backed off. */
const RATE_LIMIT_PAUSE_MS = 1_000;
/** How long a slow consumer's close handshake may take before the socket is torn down. */
const SLOW_CLOSE_MS = 2_000;

export interface ConnectionHooks {
  registry: ActorRegistry;
  askRate: number;
  askBurst: number;
  /** Asks of one connection waiting for their answer, at most. */
  maxAsksInFlight: number;
  sendBufferBytes: number;
  /** False once the server is shutting down: new asks get UNAVAILABLE. */
  accepting(): boolean;
  onAsk(): void;
  onAskDone(): void;
  onClose(connection: Connection): void;
}

export class Connection implements LiveConnection, Subscriber {
  private ws: WebSocket | null = null;
  /** The socket under `ws`: corked while a tick's replies are written, so they leave in one write. */
  private socket: Duplex | null = null;
  private corked = false;
  private principal: Principal | null = null;
  /** A close requested before the 101 was written (the session ended while the upgrade was in the green room). */
  pendingClose: CloseSpec | null = null;
  /** The socket has closed (its registration and subscriptions are being removed). */
  closed = false;
  alive = true;
  /** The ask rate limit's token bucket, kept in the connection itself (no object of its own per socket). */
  private tokens: number;
  private tokensAt: number;
  /** When the current run of RATE_LIMITED answers began, and the latest of them. */
  private limitedSince = 0;
  private limitedLast = 0;
  /** Asks sent to an actor and not answered yet. */
  private inflight = 0;

  constructor(
    readonly id: string,
    private readonly hooks: ConnectionHooks,
  ) {
    this.tokens = hooks.askBurst;
    this.tokensAt = Date.now();
  }

  get connectionId(): string {
    return this.id;
  }

  get caller(): Principal {
    return this.principal!;
  }

  get attached(): boolean {
    return this.ws !== null;
  }

  /** Called right after the 101: from here on the socket is live. */
  attach(ws: WebSocket, socket: Duplex, principal: Principal): void {
    this.ws = ws;
    this.socket = socket;
    this.principal = principal;
    // Listeners shared by every connection (not four closures per socket: memory per idle connection); ws calls
    // them with the socket as `this`, which leads back here.
    byWebSocket.set(ws, this);
    ws.on('message', onMessage);
    ws.on('pong', onPong);
    ws.on('close', onClose);
    // ws closes the socket itself after a protocol error (1007, 1009); terminating here could cut its close frame.
    ws.on('error', ignore);
  }

  close(spec: CloseSpec): void {
    if (!this.ws) {
      this.pendingClose ??= spec;
      return;
    }
    if (this.ws.readyState === this.ws.OPEN) this.ws.close(spec.code, spec.reason);
  }

  terminate(): void {
    this.ws?.terminate();
  }

  push(frame: ServerFrame): void {
    this.send(frame);
  }

  /** Heartbeat tick: drop a peer that missed the last ping, end an expired session, then ping again. */
  heartbeat(now: number): void {
    if (!this.ws) return;
    if (!this.alive) return this.ws.terminate();
    if (this.principal && this.principal.expiresAt <= now) return this.close(Close.expired);
    this.alive = false;
    this.ws.ping();
  }

  private send(frame: ServerFrame): void {
    const ws = this.ws;
    if (!ws || ws.readyState !== ws.OPEN) return;
    if (ws.bufferedAmount > this.hooks.sendBufferBytes) {
      // A slow reader is closed, never allowed to grow the server's memory.
      ws.close(Close.slowConsumer.code, Close.slowConsumer.reason);
      setTimeout(() => ws.terminate(), SLOW_CLOSE_MS).unref();
      return;
    }
    // Every reply written in this tick (an actor's turn answers many asks) leaves in one write, not one each.
    if (!this.corked && this.socket) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(uncork, this);
    }
    ws.send(JSON.stringify(frame));
  }

  /** The end of the tick that corked the socket. */
  flush(): void {
    this.corked = false;
    this.socket!.uncork();
  }

  private replyError(id: AskId | null, error: ErrorBody): void {
    this.send({ id, ok: false, error });
  }

  /** The socket has closed. */
  closedNow(): void {
    this.closed = true;
    this.hooks.onClose(this);
  }

  onFrame(data: RawData, isBinary: boolean): void {
    // Once the server has started closing (slow consumer, 4008, 4001, shutdown) no answer can be sent: frames still
    // arriving are dropped, not run (a slow reader that keeps sending would otherwise keep the actors busy until
    // it is torn down).
    const ws = this.ws!;
    if (ws.readyState !== ws.OPEN) return;
    const now = Date.now();
    this.tokens = refill(this.tokens, this.tokensAt, now, this.hooks.askRate, this.hooks.askBurst);
    if (now > this.tokensAt) this.tokensAt = now;
    if (this.tokens < 1) {
      // Only a pause ends a run: a client that keeps sending over the rate still earns a token now and then, and
      // those must not restart its 10 s (else it would never be closed).
      if (now - this.limitedLast > RATE_LIMIT_PAUSE_MS) this.limitedSince = now;
      this.limitedLast = now;
      // The hint: long enough for the bucket to fill again.
      if (now - this.limitedSince > RATE_LIMIT_GRACE_MS) return this.close(rateLimitedClose(this.hooks.askBurst / this.hooks.askRate));
      return this.replyError(isBinary ? null : idOf(data), { code: ErrorCode.RATE_LIMITED, message: 'too many asks; slow down' });
    }
    this.tokens -= 1;
    if (isBinary) return this.replyError(null, { code: ErrorCode.BAD_FRAME, message: 'binary frames are not accepted' });

    const parsed = parseAskFrame(data.toString());
    if (!parsed.ok) return this.replyError(parsed.id, parsed.error);
    const { id, to, type, payload } = parsed.frame;

    const principal = this.principal!;
    if (principal.expiresAt <= now) return this.close(Close.expired);
    if (!this.hooks.accepting()) return this.replyError(id, { code: ErrorCode.UNAVAILABLE, message: 'the server is shutting down' });

    // Pipelining is bounded: a client cannot park more than this many asks in the actors' mailboxes.
    if (this.inflight >= this.hooks.maxAsksInFlight) return this.replyError(id, { code: ErrorCode.RATE_LIMITED, message: 'too many asks in flight; wait for answers' });

    this.inflight += 1;
    this.hooks.onAsk();
    this.hooks.registry.dispatchFromClient(principal, this, to, type, payload, (err: GreenroomError | null, result?: unknown) => {
      this.inflight -= 1;
      this.hooks.onAskDone();
      if (err) this.replyError(id, err.toBody());
      else this.send({ id, ok: true, result });
    });
  }
}

/** The connection of each attached socket, for the shared listeners. */
const byWebSocket = new WeakMap<WebSocket, Connection>();

function onMessage(this: WebSocket, data: RawData, isBinary: boolean): void {
  byWebSocket.get(this)!.onFrame(data, isBinary);
}

function onPong(this: WebSocket): void {
  byWebSocket.get(this)!.alive = true;
}

function onClose(this: WebSocket): void {
  byWebSocket.get(this)!.closedNow();
}

function ignore(): void {}

function uncork(connection: Connection): void {
  connection.flush();
}

/** The id of a frame, if one can be read (for RATE_LIMITED answers). */
function idOf(data: RawData): AskId | null {
  const parsed = parseAskFrame(data.toString());
  return parsed.ok ? parsed.frame.id : parsed.id;
}
