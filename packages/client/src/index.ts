export { createClient, GreenroomClient, type ClientOptions, type ConnectionState, type SocketFactory, type SocketLike } from './client.js';
export { GreenroomClientError, type ClientErrorCode } from './errors.js';
export { login, signInAsGuest, type AuthOptions, type TokenPair } from './session.js';
export { backoffDelay } from './backoff.js';
export type {
  AskOptions,
  ClientEvent,
  ConnectionEvent,
  EventName,
  EventPayload,
  EventPayloadFrom,
  EventSource,
  ListenerFor,
  PushFilter,
  PushListener,
  RefusalListener,
  StateListener,
  SubscriptionRefusal,
  UnsubscribeOptions,
} from './typed.js';
export type { AppTypes, UntypedApp } from '@greenroom/protocol';
