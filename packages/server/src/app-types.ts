/**
 * The type a client takes (`createClient<App>(…)`): what a client may know of the built-in actors and of the app's
 * own, derived from their definitions. Types only: nothing of the server reaches a client bundle.
 *
 *   export const actors = [Counter, ChatRoom] as const;
 *   export type App = GreenroomApp<typeof actors>;
 */
import type { ActorTypesOf, AnyActor } from './actors/define.js';
import type { FingerprintStore } from './actors/fingerprint-store.js';
import type { SessionStore } from './actors/session-store.js';
import type { UserStore } from './actors/user-store.js';

type TypesOf<A extends readonly AnyActor[]> = { readonly [H in A[number] as H['name']]: ActorTypesOf<H> };

/** The built-in actors, as a client sees them. */
export type BuiltInApp = TypesOf<[typeof SessionStore, typeof UserStore, typeof FingerprintStore]>;

/** The built-ins and the app's actors, as a client sees them. */
export type GreenroomApp<A extends readonly AnyActor[] = []> = BuiltInApp & TypesOf<A>;
