/**
 * The actor registry: starts each defined actor behind its own mailbox and routes asks to it.
 *
 * Checks from the wire run in the order docs/protocol.md gives — UNKNOWN_ACTOR → UNKNOWN_MESSAGE → FORBIDDEN →
 * BAD_PAYLOAD → handler — so a caller never learns the schema of a message it may not send. They run before the
 * message is queued; the handler then runs inside the actor's mailbox, one message at a time.
 *
 * Quotas (docs/security.md): an ask from a connection is queued in its user's lane of a bounded mailbox (full: UNAVAILABLE),
 * and if its deadline has passed before its handler starts — its caller has had TIMEOUT already — it is dropped, never
 * run. Nobody can make an actor's queue grow without bound, or keep it busy with work nobody waits for.
 */
import { ErrorCode, type PushFrame } from '@greenroom/protocol';
import type { Logger } from 'pino';
import { GreenroomError, toPublicError } from '../errors.js';
import type { ActorSystem, Mailbox } from '../runtime/actor-system.js';
import type { Store } from '../store/store.js';
import { catalog, type ActorCatalog } from './catalog.js';
import { allows, definitionOf, Forward, SYSTEM_CALLER, type ActorContext, type ActorDefinition, type AnyActor, type Caller, type MessageDef, type MessageRef, type PayloadArg, type SubscriptionControl } from './define.js';

/** A connection that can receive pushes; `caller` reflects its current role. */
export interface Subscriber {
  readonly connectionId: string;
  readonly caller: Caller;
  /** True once the connection has closed: a Subscribe still queued from before then must not add it back. */
  readonly closed?: boolean;
  push(frame: PushFrame): void;
}

export type Reply = (error: GreenroomError | null, result?: unknown) => void;

interface Envelope {
  readonly message: MessageDef<unknown, any>;
  readonly payload: unknown;
  readonly caller: Caller;
  readonly origin: Subscriber | undefined;
  readonly reply: Reply;
  /** Asks from a connection: when their caller stops waiting (epoch ms). The server's own asks always run. */
  readonly dropAfter: number;
}

/** The lane of the server's own asks (login, registration, asks between actors). */
const SYSTEM_LANE = '\0system';

interface Host {
  readonly definition: ActorDefinition<unknown>;
  readonly mailbox: Mailbox<Envelope>;
  readonly subscribers: Map<string, Subscriber>;
  state: unknown;
}

export interface RegistryOptions {
  askTimeoutMs: number;
  /** Asks from connections queued per actor, at most (the server's own asks are never refused). */
  mailboxCapacity: number;
}

export class ActorRegistry {
  private readonly hosts = new Map<string, Host>();

  constructor(
    private readonly system: ActorSystem,
    readonly store: Store,
    private readonly log: Logger,
    private readonly options: RegistryOptions,
  ) {}

  /** Builds the actor's state (with `deps`, for an actor that takes them) and starts its mailbox. */
  async add<D>(actor: AnyActor<D>, ...deps: [D] extends [void] ? [] : [deps: D]): Promise<void> {
    const definition: ActorDefinition<unknown, D> = definitionOf(actor);
    if (this.hosts.has(definition.name)) throw new Error(`actor ${definition.name} is already registered`);
    const log = this.log.child({ actor: definition.name });
    const state = await definition.state({ store: this.store, log }, deps[0] as D);
    const host: Host = {
      definition,
      state,
      subscribers: new Map(),
      // One user's lane holds at most a tenth of the capacity: it takes ten flooding users to fill a mailbox.
      mailbox: this.system.spawn<Envelope>(definition.name, (env) => this.handle(host, env, log), {
        capacity: this.options.mailboxCapacity,
        laneCapacity: Math.max(1, Math.floor(this.options.mailboxCapacity / 10)),
      }),
    };
    this.hosts.set(definition.name, host);
  }

  /** Messages queued in an actor's mailbox, not yet started (0 for an unknown actor). */
  queued(actor: string): number {
    return this.hosts.get(actor)?.mailbox.size ?? 0;
  }

  names(): string[] {
    return [...this.hosts.keys()];
  }

  /** What `caller` may send and subscribe to, for `GET /actors`. */
  catalog(caller: Caller): ActorCatalog {
    return catalog([...this.hosts.values()].map((h) => h.definition), caller);
  }

  /** An ask from a client frame: every check, in order, then the handler. Always answers through `reply`. */
  dispatchFromClient(caller: Caller, origin: Subscriber, to: string, type: string, payload: unknown, reply: Reply): void {
    const host = this.hosts.get(to);
    if (!host) return reply(new GreenroomError(ErrorCode.UNKNOWN_ACTOR, `no actor named ${to}`));
    const message = host.definition.messages[type];
    if (!message || message.internal) return reply(new GreenroomError(ErrorCode.UNKNOWN_MESSAGE, `${to} has no message ${type}`));
    if (!allows(message.allow, caller)) return reply(new GreenroomError(ErrorCode.FORBIDDEN, `${to}.${type} is not allowed for your role`));
    const timeoutMs = this.options.askTimeoutMs;
    this.enqueue(host, message, payload, caller, origin, this.withDeadline(reply, timeoutMs), Date.now() + timeoutMs);
  }

  /** An ask from the server itself. */
  ask<P, R>(ref: MessageRef<P, R>, ...payload: PayloadArg<NoInfer<P>>): Promise<R> {
    return this.askAs(SYSTEM_CALLER, ref, (payload[0] ?? {}) as P);
  }

  /** An ask on behalf of a caller the server has already authenticated (the admin socket's operator). */
  askAs<P, R>(caller: Caller, ref: MessageRef<P, R>, payload: NoInfer<P>, timeoutMs?: number): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.dispatch(ref.actor, ref.type, payload, caller, (err, result) => (err ? reject(err) : resolve(result as R)), timeoutMs);
    });
  }

  private dispatch(to: string, type: string, payload: unknown, caller: Caller, reply: Reply, timeoutMs = this.options.askTimeoutMs): void {
    const host = this.hosts.get(to);
    if (!host) return reply(new GreenroomError(ErrorCode.UNKNOWN_ACTOR, `no actor named ${to}`));
    const message = host.definition.messages[type];
    if (!message) return reply(new GreenroomError(ErrorCode.UNKNOWN_MESSAGE, `${to} has no message ${type}`));
    this.enqueue(host, message, payload, caller, undefined, this.withDeadline(reply, timeoutMs), Infinity);
  }

  private enqueue(
    host: Host,
    message: MessageDef<unknown, any>,
    payload: unknown,
    caller: Caller,
    origin: Subscriber | undefined,
    reply: Reply,
    dropAfter: number,
  ): void {
    const parsed = message.payload.safeParse(payload);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const where = issue && issue.path.length > 0 ? `${issue.path.join('.')}: ` : '';
      return reply(new GreenroomError(ErrorCode.BAD_PAYLOAD, `${where}${issue?.message ?? 'invalid payload'}`));
    }
    // Connections queue in their user's lane (so one user's backlog delays others by one message per turn, not
    // by its length), bounded; the server's own asks share one lane and are never refused.
    const fromClient = origin !== undefined;
    const lane = fromClient ? (caller.uid ?? caller.connectionId ?? SYSTEM_LANE) : SYSTEM_LANE;
    if (!host.mailbox.post({ message, payload: parsed.data, caller, origin, reply, dropAfter }, lane, fromClient)) {
      reply(new GreenroomError(ErrorCode.UNAVAILABLE, `${host.definition.name} is busy; try again`, { retryAfterSeconds: 1 }));
    }
  }

  /** Answers TIMEOUT when the handler has not answered in time; whichever answer comes first wins. */
  private withDeadline(reply: Reply, timeoutMs: number): Reply {
    let done = false;
    const timer = setTimeout(() => {
      done = true;
      reply(new GreenroomError(ErrorCode.TIMEOUT, 'the actor did not answer in time'));
    }, timeoutMs);
    return (err, result) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      reply(err, result);
    };
  }

  private async handle(host: Host, env: Envelope, log: Logger): Promise<void> {
    // Its caller has been told TIMEOUT (or is about to be): the work is dropped, not done late.
    if (Date.now() >= env.dropAfter) return env.reply(new GreenroomError(ErrorCode.TIMEOUT, 'the actor did not answer in time'));
    const ctx = new Context(this, host, env, log);
    try {
      const result = await env.message.handle(env.payload, ctx);
      if (result instanceof Forward) {
        // The mailbox is freed now; the other actor answers the original caller. It runs as the server itself,
        // remembering whom for.
        this.dispatch(result.ref.actor, result.ref.type, result.payload, forwardedFor(env.caller), env.reply);
      } else {
        env.reply(null, result === undefined ? null : result);
      }
    } catch (err) {
      if (!(err instanceof GreenroomError)) log.error({ err }, 'handler failed');
      env.reply(toPublicError(err));
    }
  }

  /** Delivers a push to every subscriber still allowed to receive it; one who lost the right is dropped silently. */
  publish(actor: string, event: string, payload: unknown): void {
    const host = this.hosts.get(actor);
    if (!host || host.subscribers.size === 0) return;
    const rule = host.definition.subscribers;
    const frame: PushFrame = { event, from: actor, topic: actor, payload };
    for (const [id, sub] of host.subscribers) {
      if (allows(rule, sub.caller)) sub.push(frame);
      else host.subscribers.delete(id);
    }
  }

  subscribe(actor: string, subscriber: Subscriber): void {
    // A connection's subscriptions are removed when it closes; an ask queued before that may still run after it.
    if (subscriber.closed) return;
    this.hosts.get(actor)?.subscribers.set(subscriber.connectionId, subscriber);
  }

  /** Connections subscribed to an actor's pushes. */
  subscribers(actor: string): number {
    return this.hosts.get(actor)?.subscribers.size ?? 0;
  }

  unsubscribe(actor: string, connectionId: string): void {
    this.hosts.get(actor)?.subscribers.delete(connectionId);
  }

  /** Called when a connection closes. */
  unsubscribeAll(connectionId: string): void {
    for (const host of this.hosts.values()) host.subscribers.delete(connectionId);
  }
}

/** The server's own caller, on behalf of `caller` (kept for attribution only: it grants nothing). */
function forwardedFor(caller: Caller): Caller {
  return caller.system ? caller : Object.freeze({ ...SYSTEM_CALLER, via: caller.via ?? caller });
}

class Context implements ActorContext<unknown>, SubscriptionControl {
  constructor(
    private readonly registry: ActorRegistry,
    private readonly host: Host,
    private readonly env: Envelope,
    readonly log: Logger,
  ) {}

  get state(): unknown {
    return this.host.state;
  }
  get caller(): Caller {
    return this.env.caller;
  }
  get store(): Store {
    return this.registry.store;
  }
  ask<P, R>(ref: MessageRef<P, R>, ...payload: PayloadArg<NoInfer<P>>): Promise<R> {
    return this.registry.ask(ref, ...payload);
  }
  forward<P, R>(ref: MessageRef<P, R>, ...payload: PayloadArg<NoInfer<P>>): Forward<R> {
    return new Forward<R>(ref, payload[0] ?? {});
  }
  publish(event: string, payload: unknown): void {
    this.registry.publish(this.host.definition.name, event, payload);
  }
  subscribe(): void {
    if (!this.env.origin) throw new GreenroomError(ErrorCode.BAD_REQUEST, 'only a connection can subscribe');
    this.registry.subscribe(this.host.definition.name, this.env.origin);
  }
  unsubscribe(): void {
    if (this.env.origin) this.registry.unsubscribe(this.host.definition.name, this.env.origin.connectionId);
  }
}
