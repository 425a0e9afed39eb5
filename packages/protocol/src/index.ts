export type { TokenPair } from './auth.js';
export {
  Close,
  ErrorCode,
  SESSION_END_REASONS,
  closeSpecOf,
  credentialRefusal,
  httpStatus,
  isErrorCode,
  isSessionEndReason,
  parseRetryAfter,
  rateLimitedClose,
  refusalOf,
  sessionEndOf,
  sessionEnds,
} from './codes.js';
export type { ClientEnd, CloseName, CloseSpec, Reconnect, SessionEndReason } from './codes.js';
export { MAX_ID_LENGTH, MAX_NAME_LENGTH } from './frames.js';
export type { AskFrame, AskId, ErrorBody, Page, PushFrame, ReplyFrame, ServerFrame } from './frames.js';
export { parseAskFrame, parseServerFrame } from './parse.js';
export type { ParseResult } from './parse.js';
export type { FingerprintView, ServerStats, SessionView, UserView } from './views.js';
export type { ActorTypes, Allows, AppTypes, MessageTypes, MessagesFor, RoleRuleType, UntypedApp } from './actor-types.js';
