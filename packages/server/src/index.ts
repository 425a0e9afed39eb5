/** Greenroom's public API. */
export { createGreenroom, Greenroom, type AttachOptions, type GreenroomOptions } from './server.js';
export { defineActor, allows, SYSTEM_CALLER, type ActorContext, type ActorDefinition, type Caller, type MessageDef, type Role, type RoleRule } from './actors/define.js';
export { loadConfig, type Config } from './config.js';
export { GreenroomError } from './errors.js';
export type { ExternalIdentity, IdentityOptions } from './auth/identity.js';
// App actors answer lists and errors the way the built-ins do (SPEC §9).
export { ErrorCode } from '@greenroom/protocol';
export { page, pageRequest, cursorSchema, limitSchema, MAX_LIMIT } from './actors/paging.js';
export type { Store, WriteOp, ScanOptions, ScanPage } from './store/store.js';
export { LowdbStore } from './store/lowdb-store.js';
export { MemoryStore } from './store/memory-store.js';
