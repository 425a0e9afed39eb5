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
  readonly caller: Caller;
  readonly store: Store;
  readonly log: Logger;
  /** Asks another actor as the server itself (no role checks; its own ask deadline). */
  ask<P, R>(ref: MessageRef<P, R>, ...payload: PayloadArg<NoInfer<P>>): Promise<R>;
  /**
   * Hands the ask on to another actor and frees this actor's mailbox at once; the original caller gets the
   * other actor's answer. Use it to avoid two actors waiting on each other.
   */
  forward<P, R>(ref: MessageRef<P, R>, ...payload: PayloadArg<NoInfer<P>>): Forward<R>;
  /** Pushes one of this actor's declared events to its subscribers (each re-authorized at delivery). */
  publish<K extends keyof E & string>(event: K, payload: z.output<E[K]>): void;
}

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
  readonly store: Store;
  readonly log: Logger;
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

/** The framework's own messages for an actor with events. */
type SubscriptionMessages<E extends EventSchemas, Sub extends RoleRule> = keyof E extends never
  ? {}
  : {
      Subscribe: MessageDef<unknown, E, z.ZodObject<{}>, { subscribed: true }, Sub, false>;
      Unsubscribe: MessageDef<unknown, E, z.ZodObject<{}>, { subscribed: false }, Sub, false>;
    };

/** An actor's handle: its name, a typed reference per message, and (types only) what a client may know of it. */
export type ActorHandle<N extends string = string, S = any, D = any, M extends AnyMessages = AnyMessages, E extends EventSchemas = EventSchemas, Sub extends RoleRule = RoleRule> = {
  readonly name: N;
  readonly [DEFINITION]: ActorDefinition<S, D>;
  readonly '~types'?: { messages: ClientMessages<M & SubscriptionMessages<E, Sub>>; events: { [K in keyof E]: z.output<E[K]> } };
} & { readonly [K in keyof (M & SubscriptionMessages<E, Sub>)]: MessageRef<z.input<(M & SubscriptionMessages<E, Sub>)[K]['payload']>, Answer<ReturnType<(M & SubscriptionMessages<E, Sub>)[K]['handle']>>> };

/** Any actor's handle, as the registry takes it: `D` is what its registration passes (`void`: nothing). */
export interface AnyActor<D = any> {
  readonly name: string;
  readonly [DEFINITION]: ActorDefinition<any, D>;
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
} & (keyof E extends never ? {} : { readonly Subscribe?: never; readonly Unsubscribe?: never });

/**
 * Defines an actor. `state(ctx, deps)` runs once when the actor is registered (`deps`: what the registration
 * passes, for actors that need the server's settings). An actor that declares `events` gets `Subscribe` and
 * `Unsubscribe` from the framework, allowed to `subscribers` (default: any authenticated caller).
 */
export function defineActor<const N extends string, S, M extends AnyMessages, const Sub extends RoleRule = 'any', E extends EventSchemas = {}, D = void>(def: {
  name: N;
  state: (ctx: StateContext, deps: D) => S | Promise<S>;
  events?: E;
  subscribers?: Sub;
  messages: (message: MessageBuilder<S, E>) => M & NoReservedNames<E>;
}): ActorHandle<N, S, D, M, E, Sub> {
  const events: EventSchemas = { ...(def.events ?? {}) };
  const subscribers: RoleRule = def.subscribers ?? 'any';
  const own = def.messages((m) => m);
  // A null prototype: a wire `type` such as `__proto__` or `constructor` can never find a message.
  const messages: Record<string, MessageDef<S, any, z.ZodType, unknown>> = Object.assign(Object.create(null), own);
  if (Object.keys(events).length > 0) {
    for (const type of ['Subscribe', 'Unsubscribe'] as const) {
      if (type in messages) throw new Error(`actor ${def.name}: ${type} comes from the framework for an actor with events; do not define it`);
    }
    messages.Subscribe = subscriptionMessage(subscribers, true);
    messages.Unsubscribe = subscriptionMessage(subscribers, false);
  }
  const handle: Record<string | symbol, unknown> = { name: def.name };
  for (const type of Object.keys(messages)) {
    if (RESERVED.has(type)) throw new Error(`actor ${def.name}: a message may not be called ${type}`);
    handle[type] = Object.freeze({ actor: def.name, type, [MESSAGE_REF]: true });
  }
  handle[DEFINITION] = Object.freeze({ name: def.name, state: def.state, messages, events, subscribers });
  return Object.freeze(handle) as ActorHandle<N, S, D, M, E, Sub>;
}

/** What the registry's context offers the framework's own messages (not part of the actors' API). */
export interface SubscriptionControl {
  subscribe(): void;
  unsubscribe(): void;
}

function subscriptionMessage(allow: RoleRule, on: boolean): MessageDef<any, any, z.ZodType, unknown> {
  return {
    allow,
    payload: z.object({}),
    handle: (_p, ctx) => {
      const control = ctx as unknown as SubscriptionControl;
      if (on) control.subscribe();
      else control.unsubscribe();
      return { subscribed: on };
    },
  };
}

/** What a client may know of one actor (types only). */
export type ActorTypesOf<H> = H extends { readonly '~types'?: infer T } ? Exclude<T, undefined> : never;
