export { createClient, GreenroomClient, type ClientOptions, type ConnectionState, type SocketFactory, type SocketLike } from './client.js';
export { GreenroomClientError, type ClientErrorCode } from './errors.js';
export { login, signInAsGuest, type AuthOptions, type TokenPair } from './session.js';
export { backoffDelay } from './backoff.js';
export type { AskOptions, ConnectionEvent, EventName, EventPayload, EventSource, ListenerFor, StateListener } from './typed.js';
export type { AppTypes, UntypedApp } from '@greenroom/protocol';
