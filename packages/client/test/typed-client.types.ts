/**
 * Compile-time tests of the typed client (checked by the root typecheck; jest does not run this file). Each
 * `@ts-expect-error` must fail to compile for the reason in its comment; the rest must compile as they stand.
 */
import { createClient, GreenroomClient, type ClientOptions, type GreenroomClientError, type SubscriptionRefusal } from '@greenroom/client';

/** Exact type equality: `any` equals only `any`, so a result typed `any` fails `expectType<{ value: number }>`. */
type Equal<X, Y> = (<T>() => T extends X ? 1 : 2) extends <T>() => T extends Y ? 1 : 2 ? true : false;
function expectType<T>(): <U>(value: U & (Equal<T, U> extends true ? unknown : never)) => void {
  return () => undefined;
}

/** An app type shaped like `GreenroomApp<typeof actors>`: what the server derives from its actors. */
type App = {
  Counter: {
    messages: {
      Increment: { payload: { by: number }; result: { value: number }; allow: 'any' };
      Get: { payload: Record<string, never>; result: { value: number }; allow: 'any' };
      Reset: { payload: { to?: number }; result: { value: number }; allow: readonly ['admin'] };
      Subscribe: { payload: Record<string, never>; result: { subscribed: true }; allow: 'any' };
      Unsubscribe: { payload: Record<string, never>; result: { subscribed: false }; allow: 'any' };
    };
    events: { Changed: { value: number } };
  };
  Feed: {
    messages: {
      Post: { payload: { text: string }; result: { id: string }; allow: 'any' };
      Subscribe: { payload: { topic: string }; result: { subscribed: true }; allow: 'any' };
      Unsubscribe: { payload: Record<string, never>; result: { subscribed: false }; allow: 'any' };
    };
    events: { Posted: { id: string; text: string }; Changed: { topic: string } };
  };
  Audit: {
    messages: {
      Recent: { payload: { limit?: number }; result: { lines: string[] }; allow: readonly ['admin'] };
      Subscribe: { payload: Record<string, never>; result: { subscribed: true }; allow: readonly ['admin'] };
      Unsubscribe: { payload: Record<string, never>; result: { subscribed: false }; allow: readonly ['admin'] };
    };
    events: { Logged: { line: string } };
  };
  Clock: {
    messages: { Now: { payload: Record<string, never>; result: { at: number }; allow: 'any' } };
    events: Record<never, never>;
  };
};

const options: ClientOptions = { url: 'http://127.0.0.1:8080', auth: { mode: 'cookie' } };

export function helper(anything: any, value: { value: number }): void {
  expectType<{ value: number }>()(value);
  // @ts-expect-error the helper itself: `any` is not { value: number }
  expectType<{ value: number }>()(anything);
  // @ts-expect-error the helper itself: a wider type is not { value: number }
  expectType<{ value: number }>()(value as { value: number } | undefined);
}

export async function typedAsk(): Promise<void> {
  const client = createClient<App>(options);
  expectType<GreenroomClient<App, string>>()(client);
  // A typed client goes where an untyped one is expected (helpers that take a GreenroomClient), not the reverse.
  const plain: GreenroomClient = client;
  // @ts-expect-error an untyped client is no typed one
  const back: GreenroomClient<App> = plain;
  void back;

  // The result is the message's result, exactly (not `any`).
  expectType<{ value: number }>()(await client.ask('Counter', 'Increment', { by: 1 }));
  expectType<{ id: string }>()(await client.ask('Feed', 'Post', { text: 'hi' }, { timeoutMs: 500 }));
  // Any role (the default): admin-only messages too.
  expectType<{ lines: string[] }>()(await client.ask('Audit', 'Recent', { limit: 5 }));
  // A payload that accepts {} may be omitted.
  expectType<{ value: number }>()(await client.ask('Counter', 'Get'));
  expectType<{ value: number }>()(await client.ask('Counter', 'Reset'));
  expectType<{ lines: string[] }>()(await client.ask('Audit', 'Recent'));

  // @ts-expect-error unknown actor
  await client.ask('Nope', 'Increment', { by: 1 });
  // @ts-expect-error unknown message
  await client.ask('Counter', 'Decrement', { by: 1 });
  // @ts-expect-error a message of another actor
  await client.ask('Counter', 'Post', { text: 'hi' });
  // @ts-expect-error wrong payload: `by` is a number
  await client.ask('Counter', 'Increment', { by: '1' });
  // @ts-expect-error wrong payload: unknown property
  await client.ask('Counter', 'Increment', { by: 1, step: 2 });
  // @ts-expect-error missing payload: Increment needs `by`
  await client.ask('Counter', 'Increment');
  // @ts-expect-error wrong result type: Increment answers { value: number }
  const wrong: { value: string } = await client.ask('Counter', 'Increment', { by: 1 });
  void wrong;
  // @ts-expect-error a typed app takes no result type argument
  await client.ask<{ value: string }>('Counter', 'Increment', { by: 1 });
}

export async function roleRestricted(): Promise<void> {
  const user = createClient<App, 'user'>(options);
  expectType<{ value: number }>()(await user.ask('Counter', 'Increment', { by: 1 }));
  // @ts-expect-error Reset is admin-only
  await user.ask('Counter', 'Reset', {});
  // @ts-expect-error every message of Audit is admin-only
  await user.ask('Audit', 'Recent', {});

  const admin = createClient<App, 'admin'>(options);
  expectType<{ value: number }>()(await admin.ask('Counter', 'Reset', { to: 0 }));
  expectType<{ lines: string[] }>()(await admin.ask('Audit', 'Recent'));
  await admin.subscribe('Audit');

  // @ts-expect-error Audit's Subscribe is admin-only
  await user.subscribe('Audit');
  // @ts-expect-error Audit's Subscribe is admin-only
  await user.unsubscribe('Audit');
}

export async function subscriptions(): Promise<void> {
  const client = createClient<App>(options);
  await client.subscribe('Counter');
  await client.subscribe('Counter', {});
  await client.subscribe('Feed', { topic: 'news' });
  await client.subscribe('Feed', { topic: 'sports' });
  await client.unsubscribe('Feed');
  // One topic of the actor; the others stay subscribed.
  await client.unsubscribe('Feed', { topic: 'news' });
  await client.unsubscribe('Counter', {});
  // @ts-expect-error a topic is a string
  await client.unsubscribe('Feed', { topic: 1 });
  // @ts-expect-error unsubscribe takes only a topic
  await client.unsubscribe('Feed', { room: 'news' });
  // @ts-expect-error Feed's Subscribe needs a topic
  await client.subscribe('Feed');
  // @ts-expect-error wrong Subscribe payload
  await client.subscribe('Feed', { topic: 1 });
  // @ts-expect-error Clock pushes no events
  await client.subscribe('Clock');
  // @ts-expect-error unknown actor
  await client.subscribe('Nope');
  // @ts-expect-error unknown actor
  await client.unsubscribe('Nope');
}

export function events(): void {
  const client = createClient<App>(options);
  // Declared by one actor: its payload, from that actor.
  client.on('Posted', (payload, from) => {
    expectType<{ id: string; text: string }>()(payload);
    expectType<'Feed'>()(from);
  });
  // Declared by two actors: the union of their payloads, from either.
  client.on('Changed', (payload, from) => {
    expectType<{ value: number } | { topic: string }>()(payload);
    expectType<'Counter' | 'Feed'>()(from);
  });
  // Connection states keep their listener shape.
  for (const state of ['connecting', 'open', 'reconnecting', 'closed', 'signedOut', 'blocked'] as const) {
    client.on(state, (payload, from) => {
      expectType<undefined>()(payload);
      expectType<'client'>()(from);
    });
  }
  const off: () => void = client.on('open', () => undefined);
  off();

  // @ts-expect-error unknown event
  client.on('Removed', () => undefined);
  // @ts-expect-error wrong payload type: Posted carries { id, text }
  client.on('Posted', (payload: { value: number }) => void payload);
  // @ts-expect-error wrong sender: only Feed pushes Posted
  client.on('Posted', (_payload, from: 'Counter') => void from);
  client.on('Logged', (_payload, from) => {
    // @ts-expect-error from is 'Audit', never 'Counter'
    const counter: 'Counter' = from;
    void counter;
  });
  // @ts-expect-error idle is a state, never reported
  client.on('idle', () => undefined);
}

export function filteredEvents(): void {
  const client = createClient<App>(options);
  // A push's listener also gets the topic; listeners that take fewer arguments still fit.
  client.on('Posted', (payload, from, topic) => {
    expectType<{ id: string; text: string }>()(payload);
    expectType<'Feed'>()(from);
    expectType<string>()(topic);
  });
  // `from` narrows the sender, and so the payload, to that actor's event.
  client.on(
    'Changed',
    (payload, from) => {
      expectType<{ value: number }>()(payload);
      expectType<'Counter'>()(from);
    },
    { from: 'Counter' },
  );
  // `topic` alone keeps every actor that declares the event.
  client.on(
    'Changed',
    (payload, from, topic) => {
      expectType<{ value: number } | { topic: string }>()(payload);
      expectType<'Counter' | 'Feed'>()(from);
      expectType<string>()(topic);
    },
    { topic: 'news' },
  );
  client.on('Posted', () => undefined, { from: 'Feed', topic: 'news' });

  // @ts-expect-error Counter never pushes Posted
  client.on('Posted', () => undefined, { from: 'Counter' });
  // @ts-expect-error unknown actor
  client.on('Changed', () => undefined, { from: 'Nope' });
  // @ts-expect-error a topic is a string
  client.on('Changed', () => undefined, { topic: 1 });
  // @ts-expect-error filters are for pushes, not connection states
  client.on('open', () => undefined, { from: 'Counter' });
  client.on(
    'Changed',
    // @ts-expect-error from Counter only: the payload is Counter's
    (payload: { topic: string }) => void payload,
    { from: 'Counter' },
  );
}

export function refusals(): void {
  const client = createClient<App>(options);
  client.on('subscriptionRefused', (refusal, from) => {
    expectType<SubscriptionRefusal<'Counter' | 'Feed' | 'Audit'>>()(refusal);
    expectType<'Counter' | 'Feed' | 'Audit'>()(refusal.actor);
    expectType<string>()(refusal.topic);
    expectType<GreenroomClientError>()(refusal.error);
    expectType<'client'>()(from);
  });
  // A role names only the actors it may subscribe to.
  createClient<App, 'user'>(options).on('subscriptionRefused', ({ actor }) => {
    expectType<'Counter' | 'Feed'>()(actor);
  });
  // @ts-expect-error a refusal carries no push payload
  client.on('subscriptionRefused', (refusal: { value: number }) => void refusal);
}

export async function untyped(): Promise<void> {
  // The default app: any actor, message and payload; results and pushes `unknown` unless given.
  const client = new GreenroomClient(options);
  expectType<GreenroomClient>()(createClient(options));
  expectType<unknown>()(await client.ask('UserStore', 'GetOwn'));
  expectType<{ uid: string }>()(await client.ask<{ uid: string }>('UserStore', 'Get', { uid: 'u' }, { timeoutMs: 100 }));
  const actor: string = 'Any' + 'Actor';
  expectType<unknown>()(await client.ask(actor, 'Anything', 42));
  await client.subscribe('UserStore');
  await client.subscribe(actor, { topic: 'x' });
  await client.unsubscribe(actor);
  await client.unsubscribe(actor, { topic: 'x' });
  client.on('UserChanged', (payload, from) => {
    expectType<unknown>()(payload);
    expectType<string>()(from);
  });
  client.on(
    'Said',
    (payload, from, topic) => {
      expectType<unknown>()(payload);
      expectType<'Room'>()(from);
      expectType<string>()(topic);
    },
    { from: 'Room', topic: 'a' },
  );
  client.on('subscriptionRefused', ({ actor, topic, error }) => {
    expectType<string>()(actor);
    expectType<string>()(topic);
    expectType<GreenroomClientError>()(error);
  });
  client.on('open', (payload, from) => {
    expectType<undefined>()(payload);
    expectType<'client'>()(from);
  });
  const name: string = 'Any' + 'Event';
  client.on(name, () => undefined);
}
