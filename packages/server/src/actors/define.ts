/**
 * `defineActor`: the one way to define an actor, used by the built-ins and by apps alike.
 *
 * An actor is a name, a state made once at start, and messages. Each message declares who may send it, the
 * schema of its payload, and a handler. The framework routes, validates, authorizes, times out and answers, so a
 * handler never sees an unvalidated payload or an unauthorized caller. Messages to one actor are handled one at
 * a time, in arrival order.
 */
import type { z } from 'zod';
import type { Logger } from 'pino';
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

export interface ActorContext<S> {
  readonly state: S;
  readonly caller: Caller;
  readonly store: Store;
  readonly log: Logger;
  /** Asks another actor as the server itself (no role checks; its own ask deadline). */
  ask<R = unknown>(actor: string, type: string, payload?: unknown): Promise<R>;
  /**
   * Hands the ask on to another actor and frees this actor's mailbox at once; the original caller gets the
   * other actor's answer. Use it to avoid two actors waiting on each other.
   */
  forward(actor: string, type: string, payload?: unknown): Forward;
  /** Pushes an event to this actor's subscribers (each re-authorized at delivery). */
  publish(event: string, payload: unknown): void;
  /** Subscribes / unsubscribes the calling connection to this actor's pushes. */
  subscribe(): void;
  unsubscribe(): void;
}

export class Forward {
  constructor(
    readonly actor: string,
    readonly type: string,
    readonly payload: unknown,
  ) {}
}

export interface MessageDef<S, P> {
  readonly allow: RoleRule;
  readonly payload: z.ZodType<P>;
  /** Internal messages are for the server only: from the wire they are UNKNOWN_MESSAGE. */
  readonly internal?: boolean;
  handle(payload: P, ctx: ActorContext<S>): unknown;
}

export interface StateContext {
  readonly store: Store;
  readonly log: Logger;
}

export interface ActorDefinition<S = unknown> {
  readonly name: string;
  readonly state: (ctx: StateContext) => S | Promise<S>;
  readonly messages: Readonly<Record<string, MessageDef<S, any>>>;
  /** Which message's role rule a push is re-authorized against at delivery (default: `Subscribe`). */
  readonly subscribeMessage?: string;
}

/** Builds one message definition; its payload type is inferred from the schema. */
export type MessageBuilder<S> = <P>(def: MessageDef<S, P>) => MessageDef<S, P>;

export function defineActor<S, M extends Record<string, MessageDef<S, any>>>(def: {
  name: string;
  state: (ctx: StateContext) => S | Promise<S>;
  messages: (message: MessageBuilder<S>) => M;
  subscribeMessage?: string;
}): ActorDefinition<S> {
  const messages = def.messages((m) => m);
  // A null prototype: a wire `type` such as `__proto__` or `constructor` can never find a message.
  const table = Object.assign(Object.create(null) as Record<string, MessageDef<S, any>>, messages);
  return { name: def.name, state: def.state, messages: table, subscribeMessage: def.subscribeMessage ?? 'Subscribe' };
}
