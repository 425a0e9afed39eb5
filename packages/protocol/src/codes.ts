/**
 * Every code Greenroom speaks, defined once. Error codes answer one ask (or one HTTP request) and keep the
 * socket; close codes end the socket and tell the client whether reconnecting can help.
 */

export const ErrorCode = {
  BAD_FRAME: 'BAD_FRAME',
  UNKNOWN_ACTOR: 'UNKNOWN_ACTOR',
  UNKNOWN_MESSAGE: 'UNKNOWN_MESSAGE',
  BAD_PAYLOAD: 'BAD_PAYLOAD',
  FORBIDDEN: 'FORBIDDEN',
  NOT_FOUND: 'NOT_FOUND',
  CONFLICT: 'CONFLICT',
  TIMEOUT: 'TIMEOUT',
  RATE_LIMITED: 'RATE_LIMITED',
  UNAVAILABLE: 'UNAVAILABLE',
  INTERNAL: 'INTERNAL',
  // HTTP and handshake
  BAD_REQUEST: 'BAD_REQUEST',
  UNAUTHENTICATED: 'UNAUTHENTICATED',
  INVALID_CREDENTIALS: 'INVALID_CREDENTIALS',
  INVALID_TOKEN: 'INVALID_TOKEN',
  TOKEN_EXPIRED: 'TOKEN_EXPIRED',
  REFRESH_REUSED: 'REFRESH_REUSED',
  SESSION_REVOKED: 'SESSION_REVOKED',
  SESSION_EXPIRED: 'SESSION_EXPIRED',
  BLOCKED: 'BLOCKED',
  BAD_ORIGIN: 'BAD_ORIGIN',
  METHOD_NOT_ALLOWED: 'METHOD_NOT_ALLOWED',
  PAYLOAD_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  UPGRADE_REQUIRED: 'UPGRADE_REQUIRED',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** The HTTP status each code maps to when it answers a request (typed so that a missing entry fails to compile). */
export const httpStatus: Record<ErrorCode, number> = {
  BAD_FRAME: 400,
  UNKNOWN_ACTOR: 404,
  UNKNOWN_MESSAGE: 404,
  BAD_PAYLOAD: 400,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  CONFLICT: 409,
  TIMEOUT: 504,
  RATE_LIMITED: 429,
  UNAVAILABLE: 503,
  INTERNAL: 500,
  BAD_REQUEST: 400,
  UNAUTHENTICATED: 401,
  INVALID_CREDENTIALS: 401,
  INVALID_TOKEN: 401,
  TOKEN_EXPIRED: 401,
  REFRESH_REUSED: 401,
  SESSION_REVOKED: 401,
  SESSION_EXPIRED: 401,
  BLOCKED: 403,
  BAD_ORIGIN: 403,
  METHOD_NOT_ALLOWED: 405,
  PAYLOAD_TOO_LARGE: 413,
  UPGRADE_REQUIRED: 426,
};

const errorCodes = new Set<string>(Object.values(ErrorCode));
export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && errorCodes.has(value);
}

/** Where a client ends when it stops for good: closed by the app (or told to), signed out, or blocked. */
export type ClientEnd = 'closed' | 'signedOut' | 'blocked';

/**
 * What each code says of the credentials an auth call (refresh, ticket, login, upgrade) was made with: refused for
 * good, and the client ends `signedOut` (or `blocked`); or null, they may still be good (a bad request, a busy or
 * unreachable server), and the client keeps trying. Typed so that a missing entry fails to compile.
 */
export const credentialRefusal: Record<ErrorCode, Exclude<ClientEnd, 'closed'> | null> = {
  BAD_FRAME: null,
  UNKNOWN_ACTOR: null,
  UNKNOWN_MESSAGE: null,
  BAD_PAYLOAD: null,
  FORBIDDEN: null,
  NOT_FOUND: null,
  CONFLICT: null,
  TIMEOUT: null,
  RATE_LIMITED: null,
  UNAVAILABLE: null,
  INTERNAL: null,
  BAD_REQUEST: null,
  UNAUTHENTICATED: 'signedOut',
  INVALID_CREDENTIALS: null,
  INVALID_TOKEN: 'signedOut',
  TOKEN_EXPIRED: 'signedOut',
  REFRESH_REUSED: 'signedOut',
  SESSION_REVOKED: 'signedOut',
  SESSION_EXPIRED: 'signedOut',
  BLOCKED: 'blocked',
  BAD_ORIGIN: null,
  METHOD_NOT_ALLOWED: null,
  PAYLOAD_TOO_LARGE: null,
  UPGRADE_REQUIRED: null,
};

/** credentialRefusal for any code a client holds (its own codes, such as CONNECTION_LOST, refuse nothing). */
export function refusalOf(code: string): Exclude<ClientEnd, 'closed'> | null {
  return isErrorCode(code) ? credentialRefusal[code] : null;
}

/**
 * What a client does after a close:
 * - `yes`: reconnect, after its backoff delay;
 * - `after-delay`: reconnect no sooner than the reason's `retry-after=N` hint (1 s without one), backoff included;
 * - `after-refresh`: the session is over; one refresh attempt (which the server refuses for an ended session),
 *   reconnecting only if it succeeds, else end in `endsIn`;
 * - `no`: never; end in `endsIn`.
 */
export type Reconnect = 'yes' | 'after-delay' | 'after-refresh' | 'no';

export type CloseSpec = {
  readonly code: number;
  /** The exact reason text; `retry-after=N` stands for a hint of N whole seconds (rateLimitedClose, parseRetryAfter). */
  readonly reason: string;
} & ({ readonly reconnect: 'yes' | 'after-delay' } | { readonly reconnect: 'after-refresh' | 'no'; readonly endsIn: ClientEnd });

/**
 * Every close a client can see (docs/protocol.md, Close codes): the server's, those ws sends by itself (1007; 1009 with an empty
 * reason) and a proxy's 1013. Only 1008 is told apart by its reason; any other code decides alone (see closeSpecOf).
 */
export const Close = {
  shutdown: { code: 1001, reason: 'shutdown', reconnect: 'yes' },
  invalidUtf8: { code: 1007, reason: '', reconnect: 'yes' },
  policy: { code: 1008, reason: 'policy', reconnect: 'no', endsIn: 'closed' },
  slowConsumer: { code: 1008, reason: 'slow-consumer', reconnect: 'yes' },
  tooBig: { code: 1009, reason: 'too-big', reconnect: 'yes' },
  tryAgainLater: { code: 1013, reason: 'retry-after=N', reconnect: 'after-delay' },
  revoked: { code: 4001, reason: 'revoked', reconnect: 'after-refresh', endsIn: 'signedOut' },
  expired: { code: 4001, reason: 'expired', reconnect: 'after-refresh', endsIn: 'signedOut' },
  evicted: { code: 4001, reason: 'evicted', reconnect: 'after-refresh', endsIn: 'signedOut' },
  logout: { code: 4001, reason: 'logout', reconnect: 'after-refresh', endsIn: 'signedOut' },
  blocked: { code: 4003, reason: 'blocked', reconnect: 'no', endsIn: 'blocked' },
  rateLimited: { code: 4008, reason: 'retry-after=N', reconnect: 'after-delay' },
} as const satisfies Record<string, CloseSpec>;
export type CloseName = keyof typeof Close;

const closes: readonly CloseSpec[] = Object.values(Close);
/** Per code, the one entry that decides it whatever the reason; absent where entries of that code disagree (1008). */
const byCode = new Map<number, CloseSpec>();
for (const spec of closes) {
  const agree = closes.filter((c) => c.code === spec.code).every((c) => samePolicy(c, spec));
  if (agree && !byCode.has(spec.code)) byCode.set(spec.code, spec);
}

function samePolicy(a: CloseSpec, b: CloseSpec): boolean {
  return a.reconnect === b.reconnect && ('endsIn' in a ? a.endsIn : null) === ('endsIn' in b ? b.endsIn : null);
}

/**
 * What a close means to a client: its table entry (code and reason); else the entry its code alone decides, with
 * the reason as received (a 4008 `retry-after=5`, ws's 1009 with no reason); else, for a code not in the table
 * (1006 abnormal, 1011, a 1008 with another reason), reconnect with backoff.
 */
export function closeSpecOf(code: number, reason: string): CloseSpec {
  const exact = closes.find((c) => c.code === code && c.reason === reason);
  if (exact) return exact;
  const spec = byCode.get(code);
  return spec ? { ...spec, reason } : { code, reason, reconnect: 'yes' };
}

/** A 4008 close; its reason carries the hint `retry-after=N` in whole seconds. */
export function rateLimitedClose(retryAfterSeconds: number): CloseSpec {
  // Clamped to what parseRetryAfter reads back: 1 to 999,999 whole seconds.
  const seconds = Number.isFinite(retryAfterSeconds) ? Math.min(999_999, Math.max(1, Math.ceil(retryAfterSeconds))) : 1;
  return { ...Close.rateLimited, reason: `retry-after=${seconds}` };
}

/** Reads the retry-after hint of a 4008 (or a 1013) close reason, in seconds, if present. */
export function parseRetryAfter(reason: string): number | undefined {
  const m = /^retry-after=(\d{1,6})$/.exec(reason);
  return m ? Number(m[1]) : undefined;
}

/** Why a session ended: the reason text of its sockets' close (4001, or 4003 for a block). */
export const SESSION_END_REASONS = ['revoked', 'expired', 'evicted', 'logout', 'blocked'] as const;
export type SessionEndReason = (typeof SESSION_END_REASONS)[number];

const sessionEndReasons = new Set<string>(SESSION_END_REASONS);
export function isSessionEndReason(value: unknown): value is SessionEndReason {
  return typeof value === 'string' && sessionEndReasons.has(value);
}

/**
 * Each way a session ends: the close its sockets get, and the error an upgrade still waiting in the green room gets.
 * Typed so that a missing entry fails to compile.
 */
export const sessionEnds: Record<SessionEndReason, { readonly close: CloseSpec; readonly error: ErrorCode }> = {
  revoked: { close: Close.revoked, error: ErrorCode.SESSION_REVOKED },
  expired: { close: Close.expired, error: ErrorCode.SESSION_EXPIRED },
  evicted: { close: Close.evicted, error: ErrorCode.SESSION_REVOKED },
  logout: { close: Close.logout, error: ErrorCode.SESSION_REVOKED },
  blocked: { close: Close.blocked, error: ErrorCode.BLOCKED },
};

/** The session end a close says (its code and reason both those of a sessionEnds entry), if it says one. */
export function sessionEndOf(spec: { readonly code: number; readonly reason: string }): SessionEndReason | undefined {
  return isSessionEndReason(spec.reason) && sessionEnds[spec.reason].close.code === spec.code ? spec.reason : undefined;
}
