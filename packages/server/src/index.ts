/** Greenroom's public API (docs/embedding.md, docs/extending.md). Internals are reached from server.ts, never from here. */
export { Greenroom, type AttachOptions, type GreenroomOptions } from './server.js';
// The stand-alone server with `greenroom serve`'s signal handling, for an app's own main module.
export { serve } from './serve.js';
export {
  defineActor,
  allows,
  SYSTEM_CALLER,
  type ActorContext,
  type ActorHandle,
  type AnyActor,
  type Caller,
  type Forward,
  type MessageDef,
  type MessageRef,
  type Role,
  type RoleRule,
} from './actors/define.js';
// The built-in actors: app actors ask them through their references (`ctx.ask(UserStore.Get, { uid })`).
export { SessionStore } from './actors/session-store.js';
export { UserStore } from './actors/user-store.js';
export { FingerprintStore } from './actors/fingerprint-store.js';
// The type a client takes: `createClient<GreenroomApp<typeof actors>>(…)`.
export type { BuiltInApp, GreenroomApp } from './app-types.js';
export type { ActorCatalog } from './actors/catalog.js';
export type { Config } from './config.js';
export { ConfigError, GreenroomError } from './errors.js';
export type { ExternalIdentity, IdentityOptions } from './auth/identity.js';
// App actors answer lists and errors the way the built-ins do (docs/protocol.md, Lists and Error codes).
export { ErrorCode } from '@greenroom/protocol';
export { page, pageRequest, cursorSchema, limitSchema, MAX_LIMIT } from './actors/paging.js';
export type { Store, StagedStore, WriteOp, ScanOptions, ScanPage } from './store/store.js';
// For a handler that must tell something outside its answer only once what it wrote is durable.
export { whenDurable } from './actors/message-store.js';
export { LowdbStore } from './store/lowdb-store.js';
export { MemoryStore } from './store/memory-store.js';
