/**
 * Compile-time tests, end to end (checked by the root typecheck; jest does not run this file): actors defined with
 * `defineActor`, their app type from `GreenroomApp<typeof actors>`, and a client typed with it. Each
 * `@ts-expect-error` must fail to compile for the reason in its comment; the rest must compile as they stand.
 */
import { z } from 'zod';
import { createClient, type ClientOptions } from '@greenroom/client';
import { defineActor, UserStore, type Greenroom, type GreenroomApp } from '@greenroom/server';
import type { Page, UserView } from '@greenroom/protocol';

type Equal<X, Y> = (<T>() => T extends X ? 1 : 2) extends <T>() => T extends Y ? 1 : 2 ? true : false;
function expectType<T>(): <U>(value: U & (Equal<T, U> extends true ? unknown : never)) => void {
  return () => undefined;
}

const Counter = defineActor({
  name: 'Counter',
  state: () => ({ value: 0 }),
  events: { Changed: z.object({ value: z.number() }) },
  messages: (message) => ({
    Increment: message({ allow: 'any', payload: z.object({ by: z.number().int().min(1) }), handle: (p, ctx) => ({ value: (ctx.state.value += p.by) }) }),
    Reset: message({ allow: ['admin'], payload: z.object({}), handle: (_p, ctx) => ({ value: (ctx.state.value = 0) }) }),
    Peek: message({ allow: [], internal: true, payload: z.object({}), handle: (_p, ctx) => ctx.state.value }),
  }),
});

/** An actor whose answer is another actor's (forward): its result type is that actor's. */
const Directory = defineActor({
  name: 'Directory',
  state: () => ({}),
  messages: (message) => ({
    Lookup: message({ allow: 'any', payload: z.object({ uid: z.uuid() }), handle: (p, ctx) => ctx.forward(UserStore.Get, { uid: p.uid }) }),
    Count: message({ allow: 'any', payload: z.object({ prefix: z.string().default('') }), handle: async () => 3 }),
  }),
});

const actors = [Counter, Directory] as const;
type App = GreenroomApp<typeof actors>;

const options: ClientOptions = { url: 'http://127.0.0.1:8080', auth: { mode: 'cookie' } };

export async function asks(): Promise<void> {
  const client = createClient<App>(options);
  expectType<{ value: number }>()(await client.ask('Counter', 'Increment', { by: 1 }));
  expectType<UserView>()(await client.ask('Directory', 'Lookup', { uid: '00000000-0000-4000-8000-000000000000' }));
  // A field with a default may be left out; an empty payload may be left out altogether.
  expectType<number>()(await client.ask('Directory', 'Count', {}));
  expectType<number>()(await client.ask('Directory', 'Count'));
  // The built-ins come with every app.
  expectType<UserView>()(await client.ask('UserStore', 'GetOwn'));
  expectType<Page<UserView>>()(await client.ask('UserStore', 'GetAll', { limit: 10 }));

  // @ts-expect-error unknown actor
  await client.ask('Counterr', 'Increment', { by: 1 });
  // @ts-expect-error unknown message
  await client.ask('Counter', 'Incremnt', { by: 1 });
  // @ts-expect-error wrong payload: `by` is a number
  await client.ask('Counter', 'Increment', { by: 'x' });
  // @ts-expect-error an internal message is not the client's to send
  await client.ask('Counter', 'Peek');
  // @ts-expect-error an internal built-in message neither
  await client.ask('SessionStore', 'Register', {});
  // @ts-expect-error the result is { value: number }, not a string
  const wrong: string = await client.ask('Counter', 'Increment', { by: 1 });
  void wrong;
}

export function roles(): void {
  const user = createClient<App, 'user'>(options);
  void user.ask('Counter', 'Increment', { by: 1 });
  // @ts-expect-error Reset is for admins only
  void user.ask('Counter', 'Reset');
  // @ts-expect-error UserStore.Block is for admins only
  void user.ask('UserStore', 'Block', { uid: 'u' });
  // @ts-expect-error a user may not subscribe to UserStore's pushes (its subscribers are admins)
  void user.subscribe('UserStore');
  const admin = createClient<App, 'admin'>(options);
  void admin.ask('Counter', 'Reset');
  void admin.subscribe('UserStore');
}

export function events(): void {
  const client = createClient<App>(options);
  void client.subscribe('Counter');
  // @ts-expect-error Directory has no events to subscribe to
  void client.subscribe('Directory');
  client.on('Changed', (payload, from) => {
    expectType<{ value: number }>()(payload);
    expectType<'Counter'>()(from);
  });
  client.on('UserChanged', (payload) => expectType<{ user: UserView }>()(payload));
  // @ts-expect-error no actor pushes this event
  client.on('Chnaged', () => undefined);
  // @ts-expect-error Changed carries a number
  client.on('Changed', (payload: { value: string }) => void payload);
}

export function definitions(greenroom: Greenroom): void {
  // A reference comes from defineActor only: one made up (here, to reach an internal message) does not compile.
  // @ts-expect-error not a reference defineActor made
  void greenroom.ask({ actor: 'UserStore', type: 'FindForLogin' }, { username: 'x' });
  void greenroom.ask(UserStore.Get, { username: 'x' });

  defineActor({
    name: 'Named',
    state: () => ({}),
    // @ts-expect-error `name` is the handle's own: no message may take it
    messages: (message) => ({ name: message({ allow: 'any', payload: z.object({}), handle: () => 1 }) }),
  });
  defineActor({
    name: 'OwnSubscribe',
    state: () => ({}),
    events: { Ticked: z.object({}) },
    // @ts-expect-error an actor with events gets Subscribe from the framework
    messages: (message) => ({ Subscribe: message({ allow: 'any', payload: z.object({}), handle: () => 1 }) }),
  });

  // A handler that answers nothing answers null on the wire, and its type says so.
  const Quiet = defineActor({
    name: 'Quiet',
    state: () => ({}),
    events: { Said: z.object({ text: z.string(), at: z.number().default(0) }) },
    messages: (message) => ({
      Say: message({
        allow: 'any',
        payload: z.object({ text: z.string() }),
        handle: (p, ctx) => {
          // What is pushed is the event's output type: a field with a default must be given.
          ctx.publish('Said', { text: p.text, at: 1 });
          // @ts-expect-error `at` has a default in the schema, but a push is not parsed: it must be there
          ctx.publish('Said', { text: p.text });
        },
      }),
    }),
  });
  const client = createClient<GreenroomApp<[typeof Quiet]>>(options);
  void client.ask('Quiet', 'Say', { text: 'hi' }).then((r) => expectType<null>()(r));
  // @ts-expect-error a typed client has no untyped form: the actor and message are required
  void client.ask();
}
