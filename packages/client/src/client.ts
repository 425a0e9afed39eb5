/**
 * GreenroomClient: one client for browsers (native WebSocket) and Node (ws).
 *
 * Guarantees:
 * - at most one live socket; an abandoned attempt is never closed while CONNECTING — its handlers are detached
 *   and it is closed once it opens;
 * - after a close, does what the protocol's Close table says of it (closeSpecOf): reconnects with exponential backoff
 *   and full jitter, honouring `retry-after=N` on 4008 (and a 1013); 4001 → one refresh attempt, then reconnect or
 *   `signedOut`; 4003 → `blocked`, no reconnect; an unknown code → reconnect with backoff;
 * - asks made while disconnected wait (bounded queue) until their deadline, then reject UNAVAILABLE; asks in flight
 *   when the socket drops reject CONNECTION_LOST; no ask is silently lost or answered twice;
 * - subscriptions, one per (actor, topic), are re-established after every reconnect, each with its own payload; one
 *   the server refuses then is dropped and reported (`subscriptionRefused`), never re-sent in a loop;
 * - one refresh in flight at a time (see session.ts).
 */
import { ErrorCode, closeSpecOf, parseRetryAfter, parseServerFrame, refusalOf, type AppTypes, type AskId, type ClientEnd, type UntypedApp } from '@greenroom/protocol';
import { backoffDelay, type BackoffOptions } from './backoff.js';
import { GreenroomClientError, type ClientErrorCode } from './errors.js';
import { Session, type AuthOptions } from './session.js';
import type {
  ActorName,
  AskArgs,
  AskOptions,
  ClientEvent,
  EventName,
  EventSource,
  IsUntyped,
  ListenerFor,
  MessageName,
  PayloadArg,
  PayloadOf,
  PushFilter,
  PushListener,
  ResultOf,
  SubscribableActor,
  SubscriptionRefusal,
  UnsubscribeOptions,
} from './typed.js';

export type ConnectionState = 'idle' | 'connecting' | 'open' | 'reconnecting' | ClientEnd;
const STATES: ReadonlySet<string> = new Set<ConnectionState>(['connecting', 'open', 'reconnecting', 'closed', 'signedOut', 'blocked']);
/** Names only the client emits: a push that uses one is ignored, so no actor can fake a state or a refusal. */
const CLIENT_EVENTS: ReadonlySet<string> = new Set([...STATES, 'subscriptionRefused' satisfies ClientEvent]);
/**
 * A Subscribe that failed with one of these never got an answer on a live socket (it went away, or the client
 * stopped): the subscription is kept and sent again on the next socket. Any other failure drops it.
 */
const SOCKET_GONE: ReadonlySet<ClientErrorCode> = new Set<ClientErrorCode>(['CONNECTION_LOST', 'CLOSED', 'SIGNED_OUT', 'BLOCKED']);
/** A server too busy to answer now: a restored subscription tries again. */
const BUSY: ReadonlySet<ClientErrorCode> = new Set<ClientErrorCode>([ErrorCode.RATE_LIMITED, ErrorCode.UNAVAILABLE, ErrorCode.TIMEOUT]);
/** Subscriptions restored at once after a reconnect (the server allows 16 asks in flight per socket). */
const RESUBSCRIBE_AT_ONCE = 8;
/** Tries of a restored subscription the server was too busy to take, before it is reported refused. */
const RESUBSCRIBE_RETRIES = 5;

/** The part of the WebSocket API the client uses: the browser's and ws's alike. */
export interface SocketLike {
  readonly readyState: number;
  onopen: ((ev: unknown) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}
export type SocketFactory = (url: string, headers?: Record<string, string>) => SocketLike;

const CONNECTING = 0;
const OPEN = 1;

export interface ClientOptions {
  /** The server's base URL, e.g. `http://127.0.0.1:8080`; the socket goes to `/ws`. */
  url: string;
  auth: AuthOptions;
  /** How to open a socket; default: the browser's WebSocket, or `ws` in Node (which can send the bearer header). */
  socket?: SocketFactory;
  fetch?: typeof fetch;
  /** Default deadline of an ask, queued time included (default 10 s). */
  askTimeoutMs?: number;
  /** Asks that may wait for a connection at once (default 1000). */
  maxQueue?: number;
  backoff?: BackoffOptions;
  /** Refresh this long before the access token expires (default: a quarter of its remaining life, at most 60 s). */
  refreshSkewMs?: number;
  /**
   * Before reconnecting, check `GET /readyz` and open a socket only once the server is ready (default: on in
   * browsers, which log every failed WebSocket attempt to the console; off in Node).
   */
  probe?: boolean;
  /**
   * How long one attempt may stay CONNECTING (an upgrade held in the green room, a silent network) before it is
   * abandoned — handlers detached, closed once it opens, never while CONNECTING — and the next one scheduled
   * (default 15 s).
   */
  connectTimeoutMs?: number;
}

interface Pending {
  id: AskId;
  frame: string;
  resolve(value: unknown): void;
  reject(err: GreenroomClientError): void;
  timer: ReturnType<typeof setTimeout>;
}

type Listener = (payload: unknown, from: string, topic: string) => void;

interface ListenerEntry {
  fn: Listener;
  from?: string;
  topic?: string;
}

/** One subscription the client restores after every reconnect. */
interface Subscription {
  actor: string;
  /** The topic named in the payload, else the actor's own (its name), as the server reads it. */
  topic: string;
  payload: unknown;
  /** The app's own `subscribe` for it is still queued or in flight: a reconnect does not send a second one. */
  waiting: boolean;
}

function isNode(): boolean {
  return typeof process !== 'undefined' && typeof (process as { versions?: { node?: string } }).versions?.node === 'string';
}

async function defaultSocketFactory(): Promise<{ factory: SocketFactory; headers: boolean }> {
  if (isNode()) {
    const { WebSocket } = await import('ws');
    return { factory: (url, headers) => new WebSocket(url, { headers }) as unknown as SocketLike, headers: true };
  }
  const Native = (globalThis as { WebSocket?: new (url: string) => SocketLike }).WebSocket;
  if (!Native) throw new Error('no WebSocket implementation: pass options.socket');
  return { factory: (url) => new Native(url), headers: false };
}

/**
 * A client typed by the app (`createClient<App>(…)`, `App` from `GreenroomApp<typeof actors>` on the server) and
 * optionally by the caller's role (`createClient<App, 'user'>(…)`): the same as `new GreenroomClient(options)`.
 */
export function createClient<A extends AppTypes = UntypedApp, Role extends string = string>(options: ClientOptions): GreenroomClient<A, Role> {
  return new GreenroomClient<A, Role>(options);
}

/**
 * `A`: the app's type (`GreenroomApp<typeof actors>` on the server), which types actors, messages, payloads, results
 * and events; the default `UntypedApp` takes any of them. `Role`: the caller's role, which narrows the messages to
 * those it may send (default: any role, so every message).
 */
export class GreenroomClient<A extends AppTypes = UntypedApp, Role extends string = string> {
  private socketFactory: SocketFactory | null = null;
  private session: Session | null = null;
  private ws: SocketLike | null = null;
  private currentState: ConnectionState = 'idle';
  private attempt = 0;
  private nextId = 0;
  private reconnectTimer: ReturnType<typeof setTimeout> | null = null;
  private refreshTimer: ReturnType<typeof setTimeout> | null = null;
  private connectTimer: ReturnType<typeof setTimeout> | null = null;
  /** Bumped by every open() and by close()/end(): an open() that finds a newer epoch after an await gives up. */
  private epoch = 0;
  private readonly queue: Pending[] = [];
  private readonly inflight = new Map<AskId, Pending>();
  private readonly listeners = new Map<string, Set<ListenerEntry>>();
  /** actor → topic → subscription. */
  private readonly subscriptions = new Map<string, Map<string, Subscription>>();
  /** A 4001 allows one refresh before giving up; reset once a socket opens. */
  private refreshedAfterEnd = false;
  private readonly ready: Promise<void>;
  private readonly options: Required<Omit<ClientOptions, 'socket' | 'fetch' | 'refreshSkewMs'>> & Pick<ClientOptions, 'refreshSkewMs'>;
  private readonly fetchImpl: typeof fetch;

  constructor(options: ClientOptions) {
    const given = options.socket;
    this.options = {
      url: options.url.replace(/\/$/, ''),
      auth: options.auth,
      askTimeoutMs: options.askTimeoutMs ?? 10_000,
      maxQueue: options.maxQueue ?? 1000,
      backoff: options.backoff ?? { baseMs: 250, capMs: 30_000 },
      refreshSkewMs: options.refreshSkewMs,
      probe: options.probe ?? !isNode(),
      connectTimeoutMs: options.connectTimeoutMs ?? 15_000,
    };
    const fetchImpl = options.fetch ?? ((...args: Parameters<typeof fetch>) => fetch(...args));
    this.fetchImpl = fetchImpl;
    this.ready = (async () => {
      const d = given ? { factory: given, headers: isNode() } : await defaultSocketFactory();
      this.socketFactory = d.factory;
      this.session = new Session(options.url.replace(/\/$/, ''), options.auth, fetchImpl, d.headers);
    })();
  }

  get state(): ConnectionState {
    return this.currentState;
  }

  /** `/auth/refresh` requests sent by this client. */
  get refreshRequests(): number {
    return this.session?.refreshRequests ?? 0;
  }

  /** Starts connecting (and keeps reconnecting until `close`, `signedOut` or `blocked`). */
  async connect(): Promise<void> {
    await this.ready;
    if (this.currentState !== 'idle' && this.currentState !== 'closed') return;
    this.attempt = 0;
    void this.open('connecting');
    // After open() has left 'closed': scheduleRefresh does nothing while closed (a reconnect after close()).
    this.scheduleRefresh();
  }

  /**
   * Resolves with the actor's result, or rejects with a GreenroomClientError carrying the code. With a typed app the
   * actor, the message (one `Role` may send) and the payload are checked, and the result is typed; a payload that
   * accepts `{}` may be omitted.
   */
  ask<K extends ActorName<A, Role>, T extends MessageName<A, Role, K>>(actor: K, type: T, ...args: AskArgs<PayloadOf<A, Role, K, T>>): Promise<ResultOf<A, Role, K, T>>;
  /** Untyped app (the default): any actor, message and payload; the result `unknown`, or `R` if given (`ask<R>(…)`). */
  ask<R = unknown>(...args: IsUntyped<A> extends true ? [actor: string, type: string, payload?: unknown, options?: AskOptions] : [typedAppsUseTheTypedForm: never]): Promise<R>;
  ask(actor?: string, type?: string, payload: unknown = {}, options: AskOptions = {}): Promise<unknown> {
    // Both overloads pass the actor and the message (the untyped one takes none that compile for a typed app).
    return this.send(actor!, type!, payload, options);
  }

  /** Any ask, untyped: what `ask`, `subscribe` and the re-subscriptions after a reconnect send. */
  private send(actor: string, type: string, payload: unknown, options: AskOptions = {}): Promise<unknown> {
    if (this.currentState === 'signedOut' || this.currentState === 'blocked') {
      return Promise.reject(new GreenroomClientError(this.currentState === 'blocked' ? 'BLOCKED' : 'SIGNED_OUT', `the client is ${this.currentState}`));
    }
    if (this.currentState === 'closed') return Promise.reject(new GreenroomClientError('CLOSED', 'the client is closed'));
    const id = ++this.nextId;
    return new Promise<unknown>((resolve, reject) => {
      const pending: Pending = {
        id,
        frame: JSON.stringify({ id, to: actor, type, payload }),
        resolve: (v) => {
          clearTimeout(pending.timer);
          resolve(v);
        },
        reject: (e) => {
          clearTimeout(pending.timer);
          reject(e);
        },
        timer: setTimeout(() => {
          // Still queued: it never reached a server. In flight: the server did not answer in time.
          const queued = this.queue.indexOf(pending);
          if (queued >= 0) {
            this.queue.splice(queued, 1);
            reject(new GreenroomClientError(ErrorCode.UNAVAILABLE, 'not connected before the ask deadline'));
          } else if (this.inflight.delete(id)) {
            reject(new GreenroomClientError(ErrorCode.TIMEOUT, 'no answer before the ask deadline'));
          }
        }, options.timeoutMs ?? this.options.askTimeoutMs),
      };
      if (this.ws?.readyState === OPEN && this.currentState === 'open') return this.transmit(pending);
      if (this.queue.length >= this.options.maxQueue) {
        clearTimeout(pending.timer);
        return reject(new GreenroomClientError('QUEUE_FULL', 'too many asks are waiting for a connection'));
      }
      this.queue.push(pending);
    });
  }

  /**
   * Subscribes to one topic of an actor (`payload.topic`; without one, the actor's own topic), now and after every
   * reconnect with this payload. Topics of one actor are separate subscriptions; subscribing to the same topic
   * again replaces its payload. Rejects as an ask does; the subscription is then forgotten, unless the socket went
   * away before the answer (`CONNECTION_LOST`): it is sent again on the next socket.
   */
  async subscribe<K extends SubscribableActor<A, Role>>(actor: K, ...args: PayloadArg<PayloadOf<A, Role, K, 'Subscribe'>>): Promise<void> {
    const [payload = {}] = args;
    const sub: Subscription = { actor, topic: topicOf(actor, payload), payload, waiting: true };
    let topics = this.subscriptions.get(actor);
    if (!topics) this.subscriptions.set(actor, (topics = new Map()));
    topics.set(sub.topic, sub);
    try {
      await this.send(actor, 'Subscribe', payload);
    } catch (err) {
      this.forgetUnlessGone(sub, err);
      throw err;
    } finally {
      sub.waiting = false;
    }
  }

  /** Leaves one topic of an actor (default: its own); its other topics stay subscribed. */
  async unsubscribe(actor: SubscribableActor<A, Role>, options: UnsubscribeOptions = {}): Promise<void> {
    const topics = this.subscriptions.get(actor);
    topics?.delete(options.topic ?? actor);
    if (topics?.size === 0) this.subscriptions.delete(actor);
    await this.send(actor, 'Unsubscribe', options.topic === undefined ? {} : { topic: options.topic });
  }

  /**
   * Listens to the client's own events — connection states (`connecting`, `open`, `reconnecting`, `closed`,
   * `signedOut`, `blocked`) and `subscriptionRefused` — or to pushes by event name (`UserChanged`, …), optionally
   * only those from one actor or on one topic. Returns a function that removes the listener.
   */
  on<E extends ClientEvent>(event: E, listener: ListenerFor<A, E, Role>): () => void;
  on<E extends EventName<A>, F extends EventSource<A, E> = EventSource<A, E>>(event: E, listener: PushListener<A, E, F>, filter?: PushFilter<F>): () => void;
  on(event: string, listener: unknown, filter: PushFilter = {}): () => void {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    const entry: ListenerEntry = { fn: listener as Listener, from: filter.from, topic: filter.topic };
    set.add(entry);
    return () => set.delete(entry);
  }

  /** Refreshes the credentials now (shared with any refresh already in flight). */
  async refresh(): Promise<void> {
    await this.ready;
    await this.session!.refresh();
    this.scheduleRefresh();
  }

  /** Closes for good: the socket (once open, if still connecting), timers, and every waiting ask. */
  close(): void {
    this.epoch += 1;
    this.setState('closed');
    this.clearTimers();
    this.retire();
    this.failAll(new GreenroomClientError('CLOSED', 'the client was closed'));
  }

  // ---- internals ----

  private setState(state: ConnectionState): void {
    if (this.currentState === state) return;
    this.currentState = state;
    this.emit(state, undefined, 'client', 'client');
  }

  private emit(event: string, payload: unknown, from: string, topic: string): void {
    for (const l of [...(this.listeners.get(event) ?? [])]) {
      if ((l.from !== undefined && l.from !== from) || (l.topic !== undefined && l.topic !== topic)) continue;
      try {
        l.fn(payload, from, topic);
      } catch {
        /* a listener's error is its own */
      }
    }
  }

  /**
   * Sends every subscription again on a new socket, a few at a time (the server bounds asks in flight per socket). A
   * busy server's answer (RATE_LIMITED, UNAVAILABLE, TIMEOUT) is retried after a backoff; a refusal drops the
   * subscription and is reported.
   */
  private resubscribe(): void {
    const epoch = this.epoch;
    const queue = [...this.subscriptions.values()].flatMap((topics) => [...topics.values()]).filter((sub) => !sub.waiting); // a waiting one is in the ask queue
    const next = (): void => {
      const sub = queue.shift();
      if (sub) void this.restore(sub, epoch, 0).finally(next);
    };
    for (let i = 0; i < RESUBSCRIBE_AT_ONCE; i++) next();
  }

  private async restore(sub: Subscription, epoch: number, attempt: number): Promise<void> {
    try {
      await this.send(sub.actor, 'Subscribe', sub.payload);
    } catch (err) {
      // A newer socket restores everything again; an unsubscribed or replaced subscription is not ours to restore.
      if (epoch !== this.epoch || this.subscriptions.get(sub.actor)?.get(sub.topic) !== sub) return;
      if (err instanceof GreenroomClientError && BUSY.has(err.code) && attempt < RESUBSCRIBE_RETRIES) {
        await new Promise((r) => setTimeout(r, backoffDelay(attempt, this.options.backoff)));
        return this.restore(sub, epoch, attempt + 1);
      }
      if (!this.forgetUnlessGone(sub, err)) return;
      const refusal: SubscriptionRefusal = { actor: sub.actor, topic: sub.topic, error: err as GreenroomClientError };
      this.emit('subscriptionRefused', refusal, 'client', 'client');
    }
  }

  /**
   * Drops a subscription whose Subscribe failed on a live socket (refused, or not answered in time), if it is still
   * the current one for its topic (not unsubscribed or replaced meanwhile). Whether it dropped it.
   */
  private forgetUnlessGone(sub: Subscription, err: unknown): boolean {
    if (err instanceof GreenroomClientError && SOCKET_GONE.has(err.code)) return false;
    const topics = this.subscriptions.get(sub.actor);
    if (topics?.get(sub.topic) !== sub) return false;
    topics.delete(sub.topic);
    if (topics.size === 0) this.subscriptions.delete(sub.actor);
    return true;
  }

  private async open(state: 'connecting' | 'reconnecting'): Promise<void> {
    const epoch = ++this.epoch;
    this.setState(state);
    if (state === 'reconnecting' && this.options.probe && !(await this.serverUp())) {
      if (epoch !== this.epoch) return;
      return this.scheduleReconnect(backoffDelay(this.attempt++, this.options.backoff));
    }
    let target;
    try {
      target = await this.session!.connectTarget();
    } catch (err) {
      if (epoch !== this.epoch) return;
      return this.onAuthFailure(err);
    }
    // Closed, ended, or superseded by a newer open() while we waited.
    if (epoch !== this.epoch || this.currentState !== state) return;
    this.retire();
    const ws = this.socketFactory!(target.url, target.headers);
    this.ws = ws;
    let opened = false;
    this.connectTimer = setTimeout(() => {
      this.connectTimer = null;
      if (this.ws !== ws || ws.readyState !== CONNECTING) return;
      // Abandon the attempt (never close() while CONNECTING: retire closes it once it opens) and try again.
      this.retire();
      this.onClosed(1006, 'connect timeout', false);
    }, this.options.connectTimeoutMs);
    ws.onopen = () => {
      opened = true;
      this.clearConnectTimer();
      this.attempt = 0;
      this.refreshedAfterEnd = false;
      this.setState('open');
      this.resubscribe();
      for (const p of this.queue.splice(0)) this.transmit(p);
    };
    ws.onmessage = (ev) => this.onFrame(ev.data);
    ws.onerror = () => undefined;
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.clearConnectTimer();
      this.ws = null;
      this.onClosed(ev.code, ev.reason, opened);
    };
  }

  /** Whether the server is ready (`/readyz`, probed before a browser reconnects; a stopping server is not). */
  private async serverUp(): Promise<boolean> {
    try {
      return (await this.fetchImpl(`${this.options.url}/readyz`, { cache: 'no-store' })).ok;
    } catch {
      return false;
    }
  }

  /** Ids are unique per client and never reused, so a reply can only settle the ask it answers, and only once. */
  private transmit(pending: Pending): void {
    this.inflight.set(pending.id, pending);
    this.ws!.send(pending.frame);
  }

  private onFrame(data: unknown): void {
    const frame = parseServerFrame(typeof data === 'string' ? data : String(data));
    if (!frame) return;
    if ('event' in frame) return CLIENT_EVENTS.has(frame.event) ? undefined : this.emit(frame.event, frame.payload, frame.from, frame.topic);
    if (frame.id === null) return;
    const pending = this.inflight.get(frame.id);
    if (!pending) return;
    this.inflight.delete(frame.id);
    if (frame.ok) pending.resolve(frame.result);
    else pending.reject(new GreenroomClientError(frame.error.code, frame.error.message));
  }

  private onClosed(code: number, reason: string, opened: boolean): void {
    for (const p of this.inflight.values()) p.reject(new GreenroomClientError('CONNECTION_LOST', 'the connection dropped before the answer'));
    this.inflight.clear();
    if (this.currentState === 'closed') return;
    const spec = closeSpecOf(code, reason);
    let delay: number;
    switch (spec.reconnect) {
      case 'no':
        return this.stop(spec.endsIn);
      case 'after-refresh':
        return void this.afterSessionEnded(spec.endsIn);
      case 'after-delay':
        delay = Math.max(backoffDelay(this.attempt++, this.options.backoff), (parseRetryAfter(reason) ?? 1) * 1000);
        break;
      case 'yes':
        delay = backoffDelay(this.attempt++, this.options.backoff);
        break;
    }
    // Refused before the 101 (the browser shows only 1006): the credential may be stale — refresh once.
    if (!opened && this.attempt >= 2 && !this.refreshedAfterEnd) {
      this.refreshedAfterEnd = true;
      this.session!.refresh().then(
        () => this.scheduleReconnect(0),
        (err) => this.afterRefreshFailed(err),
      );
      return;
    }
    this.scheduleReconnect(delay);
  }

  /**
   * A close whose policy is `after-refresh` (4001: the session is over). One refresh attempt (the server refuses it
   * for an ended session), then reconnect; a second such close ends in `endsIn`.
   */
  private async afterSessionEnded(endsIn: ClientEnd): Promise<void> {
    if (this.refreshedAfterEnd) return this.stop(endsIn);
    this.refreshedAfterEnd = true;
    this.setState('reconnecting');
    try {
      await this.session!.refresh();
    } catch (err) {
      return this.afterRefreshFailed(err);
    }
    this.scheduleReconnect(0);
  }

  /**
   * The one refresh allowed after a 4001 or refused upgrades failed. Refused: signedOut/blocked. Not refused (the
   * server was unreachable or busy): that refresh never really happened, so it is still owed — otherwise a client
   * whose session ended while the network was down would retry refused upgrades forever instead of signing out.
   */
  private afterRefreshFailed(err: unknown): void {
    if (!isAuthRefusal(err)) this.refreshedAfterEnd = false;
    this.onAuthFailure(err);
  }

  private onAuthFailure(err: unknown): void {
    if (this.currentState === 'closed' || this.currentState === 'signedOut' || this.currentState === 'blocked') return;
    const refused = err instanceof GreenroomClientError ? refusalOf(err.code) : null;
    if (refused) return this.end(refused);
    // The server or network is down: keep trying.
    this.scheduleReconnect(backoffDelay(this.attempt++, this.options.backoff));
  }

  private scheduleReconnect(delayMs: number): void {
    if (this.currentState === 'closed' || this.currentState === 'signedOut' || this.currentState === 'blocked') return;
    this.setState('reconnecting');
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      void this.open('reconnecting');
    }, delayMs);
  }

  private scheduleRefresh(): void {
    if (this.refreshTimer) clearTimeout(this.refreshTimer);
    const expiresAt = this.session?.expiresAt;
    if (expiresAt === undefined || this.currentState === 'closed') return;
    const left = expiresAt - Date.now();
    const skew = this.options.refreshSkewMs ?? Math.min(60_000, Math.max(0, left / 4));
    this.armRefreshTimer(Math.max(0, Math.min(left - skew, 2_147_483_647)), 0);
  }

  private armRefreshTimer(delayMs: number, failures: number): void {
    if (this.refreshTimer) clearTimeout(this.refreshTimer);
    this.refreshTimer = setTimeout(() => {
      this.refreshTimer = null;
      this.refresh().catch((err) => {
        // Refused (revoked, blocked, …): the session is over. Otherwise (network down, server restarting) the
        // socket may be fine: keep it, and try the refresh again after a backoff delay.
        if (isAuthRefusal(err)) return this.onAuthFailure(err);
        if (this.currentState === 'closed' || this.currentState === 'signedOut' || this.currentState === 'blocked') return;
        this.armRefreshTimer(Math.max(1000, backoffDelay(failures, this.options.backoff)), failures + 1);
      });
    }, delayMs);
    (this.refreshTimer as { unref?: () => void }).unref?.();
  }

  /** Stops for good in the state a close names: `closed` as if the app had called close(), else end(). */
  private stop(state: ClientEnd): void {
    if (state === 'closed') this.close();
    else this.end(state);
  }

  private end(state: 'signedOut' | 'blocked'): void {
    this.epoch += 1;
    this.setState(state);
    this.clearTimers();
    this.retire();
    this.failAll(new GreenroomClientError(state === 'blocked' ? 'BLOCKED' : 'SIGNED_OUT', `the client is ${state}`));
  }

  /** Lets go of the current socket without ever calling close() on it while it is CONNECTING. */
  private retire(): void {
    const ws = this.ws;
    this.ws = null;
    if (!ws) return;
    ws.onmessage = null;
    ws.onclose = null;
    ws.onerror = () => undefined;
    if (ws.readyState === CONNECTING) ws.onopen = () => ws.close(1000);
    else {
      ws.onopen = null;
      if (ws.readyState === OPEN) ws.close(1000);
    }
  }

  private clearTimers(): void {
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    if (this.refreshTimer) clearTimeout(this.refreshTimer);
    this.reconnectTimer = this.refreshTimer = null;
    this.clearConnectTimer();
  }

  private clearConnectTimer(): void {
    if (this.connectTimer) clearTimeout(this.connectTimer);
    this.connectTimer = null;
  }

  private failAll(err: GreenroomClientError): void {
    for (const p of this.queue.splice(0)) {
      clearTimeout(p.timer);
      p.reject(err);
    }
    for (const p of this.inflight.values()) p.reject(err);
    this.inflight.clear();
  }
}

/** The topic a Subscribe payload names, else the actor's own. */
function topicOf(actor: string, payload: unknown): string {
  const topic = (payload as { topic?: unknown } | null)?.topic;
  return typeof topic === 'string' ? topic : actor;
}

/** The server refused the credentials for good (as opposed to being unreachable or busy): credentialRefusal. */
function isAuthRefusal(err: unknown): boolean {
  return err instanceof GreenroomClientError && refusalOf(err.code) !== null;
}

export { STATES };
