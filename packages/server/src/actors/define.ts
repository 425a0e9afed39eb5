/**
 * `defineActor`: the one way to define an actor, used by the built-ins and by apps alike.
 *
 * An actor is a name, a state made once at start, messages and events. Each message declares who may send it, the
 * schema of its payload, and a handler. The framework routes, validates, authorizes, times out and answers, so a
 * handler never sees an unvalidated payload or an unauthorized caller. Messages to one actor are handled one at
 * a time, in arrival order.
 *
 * `defineActor` returns the actor's handle: its messages are typed references (`UserStore.Block`), and every ask
 * in server code goes through one, so the compiler checks the payload and knows the result (docs/extending.md).
 */
import { z } from 'zod';
import type { Logger } from 'pino';
import type { MessageTypes, RoleRuleType } from '@greenroom/protocol';
import type { Store } from '../store/store.js';

export type Role = 'admin' | 'user' | 'guest' | (string & {});

/** Who sent an ask: a connected client (its current role) or the server itself (another actor, the CLI). */
export interface Caller {
  readonly system: boolean;
  readonly uid: string | null;
  readonly sid: string | null;
  readonly connectionId: string | null;
  readonly role: Role;
  /** The client's address, for a caller on a socket that has one. */
  readonly address?: string | null;
  /** For an ask the server forwarded between actors: the caller it was forwarded for (who did it, in the log). */
  readonly via?: Caller;
}

export const SYSTEM_CALLER: Caller = Object.freeze({ system: true, uid: null, sid: null, connectionId: null, role: 'system' });

/** `any`: every authenticated caller; a list: callers with one of these roles. The server itself passes every rule. */
export type RoleRule = 'any' | readonly Role[];

export function allows(rule: RoleRule, caller: Caller): boolean {
  return caller.system || rule === 'any' || rule.includes(caller.role);
}

/** Set only on the references `defineActor` makes (not exported by the package): a reference cannot be made up. */
export const MESSAGE_REF: unique symbol = Symbol('greenroom.ref');

/** A typed reference to one message of one actor: what `ctx.ask`, `ctx.forward` and `Greenroom.ask` take. */
export interface MessageRef<P = any, R = any> {
  readonly actor: string;
  readonly type: string;
  readonly [MESSAGE_REF]: true;
  /** Types only (never set): the payload as sent and the result as answered. */
  readonly '~types'?: { readonly payload: P; readonly result: R };
}

/** The payload argument of an ask: optional when the message takes an empty payload. */
export type PayloadArg<P> = {} extends P ? [payload?: P] : [payload: P];

/** A handler's answer "let that actor answer instead" (see `ActorContext.forward`); `R` is that actor's result. */
export class Forward<R = unknown> {
  declare readonly '~result'?: R;
  constructor(
    readonly ref: MessageRef,
    readonly payload: unknown,
  ) {}
}

/** The events an actor pushes: event name → schema of its payload. */
export type EventSchemas = Record<string, z.ZodType>;

export interface ActorContext<S, E extends EventSchemas = EventSchemas> {
  readonly state: S;
  /** A keyed actor's key for this instance (null: the keyless one, and every unkeyed actor). */
  readonly key: string | null;
  readonly caller: Caller;
  /**
   * The store as this message sees it. Over the embedded store a write resolves once applied (later reads see it)
   * and the mailbox goes on while it flushes; this message's answer, pushes and lifecycle events leave only once
   * everything it wrote or read is durable. Before telling anything else something that must not run ahead of the
   * disk, await `whenDurable(ctx.store)` (actors/message-store.ts).
   */
  readonly store: Store;
  readonly log: Logger;
  /** Asks another actor as the server itself (no role checks; its own ask deadline). */
  ask<P, R>(ref: MessageRef<P, R>, ...payload: PayloadArg<NoInfer<P>>): Promise<R>;
  /**
   * Hands the ask on to another actor and frees this actor's mailbox at once; the original caller gets the
   * other actor's answer. Use it to avoid two actors waiting on each other.
   */
  forward<P, R>(ref: MessageRef<P, R>, ...payload: PayloadArg<NoInfer<P>>): Forward<R>;
  /**
   * Pushes one of this actor's declared events to the subscribers of one topic (default: the actor's own, its name),
   * each re-authorized at delivery against the actor's `subscribers` rule.
   */
  publish<K extends keyof E & string>(event: K, payload: z.output<E[K]>, options?: { topic?: string }): void;
  /**
   * A kick: every connection of `uid` leaves `topic` now. They receive nothing more from it, before this handler
   * answers (with several nodes, on every node: the answer waits for them). Returns how many subscriptions were
   * removed on this node.
   */
  unsubscribe(options: { topic: string; uid: string }): number;
  /** Who is subscribed to a topic (default: the actor's own), on every node: uid, connections, since. */
  presence(topic?: string): Promise<PresenceEntry[]>;
}

/** One user present on a topic: their connections subscribed to it, and since when (epoch ms). */
export interface PresenceEntry {
  uid: string;
  connections: number;
  since: number;
}

/** What a lifecycle hook hears. */
export interface LifecycleEvents {
  /** A connection closed (whatever the reason). */
  connectionClosed: { connectionId: string; uid: string; sid: string };
  /** A session ended (revoked, expired and cleaned up, evicted, logged out, blocked). */
  sessionEnded: { uid: string; sid: string; reason: string };
  /** A user was deleted (an idle guest, by cleanup). */
  userDeleted: { uid: string };
}

/** Lifecycle hooks run in the actor's mailbox like a message from the server itself, once per event. */
export type LifecycleHooks<S, E extends EventSchemas> = {
  readonly [K in keyof LifecycleEvents]?: (info: LifecycleEvents[K], ctx: ActorContext<S, E>) => unknown;
};

export interface MessageDef<S = any, E extends EventSchemas = any, Z extends z.ZodType = z.ZodType, R = unknown, A extends RoleRule = RoleRule, I extends boolean = boolean> {
  readonly allow: A;
  readonly payload: Z;
  /** Internal messages are for the server only: from the wire they are UNKNOWN_MESSAGE. */
  readonly internal?: I;
  handle(payload: z.output<Z>, ctx: ActorContext<S, E>): R;
}

/** What an answer becomes: the value a handler returns (nothing: null), or the answer of the actor it forwarded to. */
export type Answer<R> = Awaited<R> extends infer V ? (V extends Forward<infer F> ? F : V extends undefined | void ? null : V) : never;

export interface StateContext {
  /** A state may keep it: during a message it is that message's store (ActorContext.store). */
  readonly store: Store;
  readonly log: Logger;
  /** A keyed actor's key for this instance (null: the keyless one, and every unkeyed actor). */
  readonly key: string | null;
}

/** What the registry runs: the actor as defined, with the framework's Subscribe/Unsubscribe added. */
export interface ActorDefinition<S = unknown, D = any> {
  readonly name: string;
  readonly state: (ctx: StateContext, deps: D) => S | Promise<S>;
  readonly messages: Readonly<Record<string, MessageDef<S, any, z.ZodType, unknown>>>;
  /** Event name → payload schema (for `GET /actors`); empty for an actor that pushes nothing. */
  readonly events: Readonly<EventSchemas>;
  /** Who may subscribe to the events; pushes are re-authorized against it at each delivery. */
  readonly subscribers: RoleRule;
  /** Whether a caller may subscribe to a topic other than the actor's own (runs in the mailbox); none: never. */
  readonly mayJoin: ((topic: string, ctx: ActorContext<any, any>) => boolean | Promise<boolean>) | null;
  /** Whether subscribers hear `PresenceChanged` and may ask `Presence`. */
  readonly presence: boolean;
  readonly hooks: LifecycleHooks<any, any>;
  /** A keyed actor: the key of a message's payload (none: the keyless instance). */
  readonly key: ((payload: any) => string | undefined) | null;
  /** How long a keyed instance with nothing to do lives on. */
  readonly idleMs: number;
  /** Keyed instances running at once, at most (a message for a new key past it: UNAVAILABLE). */
  readonly maxInstances: number;
}

export const DEFINITION: unique symbol = Symbol('greenroom.actor');

type AnyMessages = Record<string, MessageDef<any, any, z.ZodType, unknown, RoleRule, boolean>>;

/** The message table a client may see: internal messages left out. */
type ClientMessages<M extends AnyMessages> = {
  [K in keyof M as true extends M[K]['internal'] ? never : K]: MessageTypes & {
    payload: z.input<M[K]['payload']>;
    result: Answer<ReturnType<M[K]['handle']>>;
    allow: M[K]['allow'] extends RoleRuleType ? M[K]['allow'] : RoleRuleType;
  };
};

const topicSchema = z.string().min(1).max(128);
const topicPayload = z.object({ topic: topicSchema.optional() });

/** Pushed to a topic's subscribers when a user joins it (first connection) or leaves it (last one), for `presence: true`. */
export const presenceChanged = z.object({ topic: z.string(), uid: z.string(), change: z.enum(['joined', 'left']), connections: z.number() });

/** The framework's own messages for an actor with events (and presence). */
type SubscriptionMessages<E extends EventSchemas, Sub extends RoleRule, Pr extends boolean> = keyof E extends never
  ? {}
  : {
      Subscribe: MessageDef<unknown, E, typeof topicPayload, { subscribed: true; topic: string }, Sub, false>;
      Unsubscribe: MessageDef<unknown, E, typeof topicPayload, { subscribed: false; topic: string }, Sub, false>;
    } & (Pr extends true ? { Presence: MessageDef<unknown, E, typeof topicPayload, PresenceEntry[], Sub, false> } : {});

/** The events a client hears: the declared ones, and PresenceChanged for an actor with presence. */
type ClientEvents<E extends EventSchemas, Pr extends boolean> = { [K in keyof E]: z.output<E[K]> } & (Pr extends true ? { PresenceChanged: z.output<typeof presenceChanged> } : {});

/** An actor's handle: its name, a typed reference per message, and (types only) what a client may know of it. */
export type ActorHandle<
  N extends string = string,
  S = any,
  D = any,
  M extends AnyMessages = AnyMessages,
  E extends EventSchemas = EventSchemas,
  Sub extends RoleRule = RoleRule,
  Pr extends boolean = boolean,
> = {
  readonly name: N;
  readonly [DEFINITION]: ActorDefinition<S, D>;
  readonly '~types'?: { messages: ClientMessages<M & SubscriptionMessages<E, Sub, Pr>>; events: ClientEvents<E, Pr> };
} & { readonly [K in keyof (M & SubscriptionMessages<E, Sub, Pr>)]: MessageRef<z.input<(M & SubscriptionMessages<E, Sub, Pr>)[K]['payload']>, Answer<ReturnType<(M & SubscriptionMessages<E, Sub, Pr>)[K]['handle']>>> };

/** Any actor's handle, as the registry takes it: `D` is what its registration passes (`void`: nothing). */
export interface AnyActor<D = any> {
  readonly name: string;
  readonly [DEFINITION]: ActorDefinition<any, D>;
}

/** Whether a value is an actor's handle, as `defineActor` returns it (from this copy of the framework). */
export function isActor(value: unknown): value is AnyActor {
  return (typeof value === 'object' || typeof value === 'function') && value !== null && DEFINITION in value;
}

/** The actor a handle stands for. */
export function definitionOf<D>(actor: AnyActor<D>): ActorDefinition<unknown, D> {
  return actor[DEFINITION];
}

/** Builds one message definition; its payload type is inferred from the schema, its result from the handler. */
export type MessageBuilder<S, E extends EventSchemas> = <Z extends z.ZodType, R, const A extends RoleRule, const I extends boolean = false>(
  def: MessageDef<S, E, Z, R, A, I>,
) => MessageDef<S, E, Z, NoInfer<R>, NoInfer<A>, NoInfer<I>>;

/** Names a handle already uses for itself (or that would make it look like a promise): no message may take them. */
const RESERVED = new Set(['name', 'then', 'constructor', '__proto__', 'prototype', 'toJSON']);

/** The same at compile time; and an actor with events gets Subscribe and Unsubscribe from the framework. */
type NoReservedNames<E extends EventSchemas> = {
  readonly name?: never;
  readonly then?: never;
  readonly prototype?: never;
  readonly toJSON?: never;
} & (keyof E extends never ? {} : { readonly Subscribe?: never; readonly Unsubscribe?: never; readonly Presence?: never });

/**
 * Defines an actor. `state(ctx, deps)` runs once when the actor is registered (`deps`: what the registration
 * passes, for actors that need the server's settings). An actor that declares `events` gets `Subscribe {topic?}` and
 * `Unsubscribe {topic?}` from the framework, allowed to `subscribers` (default: any authenticated caller):
 * the actor's own topic (its name) always, another topic only if `mayJoin(topic, ctx)` says so. With
 * `presence: true` it also gets `Presence {topic?}` (for subscribers of that topic) and pushes `PresenceChanged`.
 */
export function defineActor<
  const N extends string,
  S,
  M extends AnyMessages,
  const Sub extends RoleRule = 'any',
  E extends EventSchemas = {},
  D = void,
  const Pr extends boolean = false,
>(def: {
  name: N;
  state: (ctx: StateContext, deps: D) => S | Promise<S>;
  events?: E;
  subscribers?: Sub;
  mayJoin?: (topic: string, ctx: ActorContext<S, E>) => boolean | Promise<boolean>;
  presence?: Pr;
  hooks?: LifecycleHooks<S, E>;
  /**
   * A keyed actor: one instance (state and mailbox) per key of the payload, started by its first message and stopped
   * after `idleMs` (default 60 s) with nothing to do; what must outlive it goes through `ctx.store`. A message whose
   * payload has no key goes to the keyless instance (the framework's Subscribe, Unsubscribe, Presence and hooks too).
   */
  key?: (payload: any) => string | undefined;
  idleMs?: number;
  /** Keyed instances running at once, at most (default 10,000): keys come from clients. */
  maxInstances?: number;
  messages: (message: MessageBuilder<S, E>) => M & NoReservedNames<E>;
}): ActorHandle<N, S, D, M, E, Sub, Pr> {
  const events: EventSchemas = { ...(def.events ?? {}) };
  const subscribers: RoleRule = def.subscribers ?? 'any';
  const presence = def.presence === true;
  const own = def.messages((m) => m);
  // A null prototype: a wire `type` such as `__proto__` or `constructor` can never find a message.
  const messages: Record<string, MessageDef<S, any, z.ZodType, unknown>> = Object.assign(Object.create(null), own);
  if (presence && Object.keys(events).length === 0) throw new Error(`actor ${def.name}: presence needs events to subscribe to`);
  if (Object.keys(events).length > 0) {
    for (const type of ['Subscribe', 'Unsubscribe', ...(presence ? ['Presence'] : [])]) {
      if (type in messages) throw new Error(`actor ${def.name}: ${type} comes from the framework for an actor with events; do not define it`);
    }
    messages.Subscribe = subscriptionMessage(subscribers, 'subscribe');
    messages.Unsubscribe = subscriptionMessage(subscribers, 'unsubscribe');
    if (presence) {
      messages.Presence = subscriptionMessage(subscribers, 'presence');
      events.PresenceChanged = presenceChanged;
    }
  }
  const handle: Record<string | symbol, unknown> = { name: def.name };
  for (const type of Object.keys(messages)) {
    if (RESERVED.has(type)) throw new Error(`actor ${def.name}: a message may not be called ${type}`);
    handle[type] = Object.freeze({ actor: def.name, type, [MESSAGE_REF]: true });
  }
  handle[DEFINITION] = Object.freeze({
    name: def.name,
    state: def.state,
    messages,
    events,
    subscribers,
    mayJoin: (def.mayJoin ?? null) as ActorDefinition['mayJoin'],
    presence,
    hooks: { ...(def.hooks ?? {}) } as LifecycleHooks<any, any>,
    key: def.key ?? null,
    idleMs: def.idleMs ?? 60_000,
    maxInstances: def.maxInstances ?? 10_000,
  });
  return Object.freeze(handle) as ActorHandle<N, S, D, M, E, Sub, Pr>;
}

/**
 * Tells every actor with a hook for it that something happened (the built-ins call it when a session ends or a user
 * is deleted). Not part of the actors' API: `ctx` must be the one the registry handed the handler.
 */
export function notifyLifecycle<K extends keyof LifecycleEvents>(ctx: object, kind: K, info: LifecycleEvents[K]): void {
  (ctx as { lifecycle(kind: K, info: LifecycleEvents[K]): void }).lifecycle(kind, info);
}

/** What the registry's context offers the framework's own messages (not part of the actors' API). */
export interface SubscriptionControl {
  /** Subscribes the calling connection to a topic it may join; answers the topic. */
  subscribeCaller(topic: string | undefined): Promise<string>;
  unsubscribeCaller(topic: string | undefined): Promise<string>;
  /** Presence of a topic the calling connection is subscribed to. */
  presenceFor(topic: string | undefined): Promise<PresenceEntry[]>;
}

function subscriptionMessage(allow: RoleRule, what: 'subscribe' | 'unsubscribe' | 'presence'): MessageDef<any, any, z.ZodType, unknown> {
  return {
    allow,
    payload: topicPayload,
    handle: async (p: z.output<typeof topicPayload>, ctx) => {
      const control = ctx as unknown as SubscriptionControl;
      if (what === 'subscribe') return { subscribed: true, topic: await control.subscribeCaller(p.topic) };
      if (what === 'unsubscribe') return { subscribed: false, topic: await control.unsubscribeCaller(p.topic) };
      return control.presenceFor(p.topic);
    },
  };
}

/** What a client may know of one actor (types only). */
export type ActorTypesOf<H> = H extends { readonly '~types'?: infer T } ? Exclude<T, undefined> : never;
