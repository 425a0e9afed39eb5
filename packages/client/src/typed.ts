/**
 * The client's view of an app's type (`AppTypes` in @greenroom/protocol): which actors, messages and events a
 * caller with `Role` may use, and their payloads and results. Types only; nothing here exists at run time.
 */
import type { AppTypes, MessagesFor } from '@greenroom/protocol';
import type { GreenroomClientError } from './errors.js';

/** The connection states `on` reports (`idle` is never reported). */
export type ConnectionEvent = 'connecting' | 'open' | 'reconnecting' | 'closed' | 'signedOut' | 'blocked';

/** What the client itself reports through `on`, from `'client'`: its states, and a subscription it had to drop. */
export type ClientEvent = ConnectionEvent | 'subscriptionRefused';

/** A listener of a connection state: called with no payload, from `'client'`. */
export type StateListener = (payload: undefined, from: 'client') => void;

/** A subscription the server refused when the client re-sent it after a reconnect; the client has dropped it. */
export interface SubscriptionRefusal<K extends string = string> {
  actor: K;
  /** The subscription's topic: the one it was made with, or the actor's name. */
  topic: string;
  /** The server's answer (`FORBIDDEN` when the caller's role no longer passes the actor's rule), or `TIMEOUT`. */
  error: GreenroomClientError;
}

/** A listener of `subscriptionRefused`. */
export type RefusalListener<K extends string = string> = (refusal: SubscriptionRefusal<K>, from: 'client') => void;

/** Which pushes an `on` listener hears: from one actor, on one topic, or both (default: every push of the event). */
export interface PushFilter<F extends string = string> {
  from?: F;
  topic?: string;
}

/** What `unsubscribe` takes: the topic to leave (default: the actor's own). */
export interface UnsubscribeOptions {
  topic?: string;
}

export interface AskOptions {
  /** This ask's deadline, queued time included (default: the client's `askTimeoutMs`). */
  timeoutMs?: number;
}

/** Whether `A` names no actors (`UntypedApp`, or `AppTypes` itself): any actor, message and payload then. */
export type IsUntyped<A extends AppTypes> = string extends keyof A ? true : false;

/** The messages of actor `K` that `Role` may send. */
type Sendable<A extends AppTypes, Role extends string, K extends keyof A> = MessagesFor<A[K], Role>;

/** The actors `Role` may send at least one message to. */
export type ActorName<A extends AppTypes, Role extends string> = {
  [K in keyof A & string]: [keyof Sendable<A, Role, K>] extends [never] ? never : K;
}[keyof A & string];

/** The messages of actor `K` that `Role` may send. */
export type MessageName<A extends AppTypes, Role extends string, K extends keyof A> = keyof Sendable<A, Role, K> & string;

type Message<A extends AppTypes, Role extends string, K, T> = K extends keyof A
  ? T extends keyof Sendable<A, Role, K>
    ? Sendable<A, Role, K>[T]
    : never
  : never;

/** What message `T` of actor `K` takes. */
export type PayloadOf<A extends AppTypes, Role extends string, K, T> = Message<A, Role, K, T> extends { payload: infer P } ? P : never;

/** What message `T` of actor `K` answers. */
export type ResultOf<A extends AppTypes, Role extends string, K, T> = Message<A, Role, K, T> extends { result: infer R } ? R : never;

/** The payload argument: optional when the payload type accepts `{}` (what an omitted payload sends). */
export type PayloadArg<P> = {} extends P ? [payload?: P] : [payload: P];

/** The arguments of `ask` after the actor and message: the payload (see PayloadArg), then the options. */
export type AskArgs<P> = {} extends P ? [payload?: P, options?: AskOptions] : [payload: P, options?: AskOptions];

/** The actors that push events and whose `Subscribe` message `Role` may send. */
export type SubscribableActor<A extends AppTypes, Role extends string> = {
  [K in keyof A & string]: [keyof A[K]['events']] extends [never] ? never : 'Subscribe' extends MessageName<A, Role, K> ? K : never;
}[keyof A & string];

/** The names of the events the app's actors push. */
export type EventName<A extends AppTypes> = { [K in keyof A]: keyof A[K]['events'] & string }[keyof A];

/** The payload of event `E`: the union over the actors that declare it. */
export type EventPayload<A extends AppTypes, E> = { [K in keyof A]: E extends keyof A[K]['events'] ? A[K]['events'][E] : never }[keyof A];

/** The actors that declare event `E` (a push's `from`). */
export type EventSource<A extends AppTypes, E> = { [K in keyof A & string]: E extends keyof A[K]['events'] ? K : never }[keyof A & string];

/** The payload of event `E` as pushed by the actors `F` (some of those that declare it). */
export type EventPayloadFrom<A extends AppTypes, E, F> = { [K in keyof A]: K extends F ? (E extends keyof A[K]['events'] ? A[K]['events'][E] : never) : never }[keyof A];

/** A push's listener: its payload, the actor that pushed it (one of `F`) and the topic it was published to. */
export type PushListener<A extends AppTypes, E, F = EventSource<A, E>> = (payload: EventPayloadFrom<A, E, F>, from: F, topic: string) => void;

/** The listener of `on(E, …)`: a connection state's, a refusal's, or a push's with its payload and sender typed. */
export type ListenerFor<A extends AppTypes, E, Role extends string = string> = [E] extends [ConnectionEvent]
  ? StateListener
  : [E] extends ['subscriptionRefused']
    ? RefusalListener<IsUntyped<A> extends true ? string : SubscribableActor<A, Role>>
    : PushListener<A, E>;
