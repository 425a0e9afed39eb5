export { GreenroomClient, type ClientOptions, type ConnectionState, type SocketFactory, type SocketLike } from './client.js';
export { GreenroomClientError, type ClientErrorCode } from './errors.js';
export { login, type AuthOptions, type TokenPair } from './session.js';
export { backoffDelay } from './backoff.js';
