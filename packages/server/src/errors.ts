import { ErrorCode, httpStatus } from '@greenroom/protocol';

/**
 * The one error type the server throws on purpose. Its code goes on the wire; its message must be safe to show
 * (no secrets, tokens, paths of other users or stack traces). Anything else that is thrown becomes INTERNAL.
 */
export class GreenroomError extends Error {
  override readonly name = 'GreenroomError';
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details: { retryAfterSeconds?: number } = {},
  ) {
    super(message);
  }

  get status(): number {
    return httpStatus[this.code];
  }

  toBody(): { code: ErrorCode; message: string } {
    return { code: this.code, message: this.message };
  }
}

/**
 * Maps anything thrown to what may be shown to a client: a GreenroomError as is; a store that cannot be reached as
 * UNAVAILABLE with a retry hint (the client comes back, nothing is wrong with its request); all else as INTERNAL.
 */
export function toPublicError(err: unknown): GreenroomError {
  if (err instanceof GreenroomError) return err;
  if (err instanceof StoreError && err.code === 'STORE_UNAVAILABLE') {
    return new GreenroomError(ErrorCode.UNAVAILABLE, 'the store is not reachable', { retryAfterSeconds: 1 });
  }
  return new GreenroomError(ErrorCode.INTERNAL, 'internal error');
}

/** Errors of the store and of start-up: not for the wire, but for the operator (they may name files). */
export class StoreError extends Error {
  override readonly name = 'StoreError';
  constructor(
    readonly code:
      | 'STORE_CORRUPT'
      | 'STORE_UNREADABLE'
      | 'STORE_LOCKED'
      | 'STORE_CLOSED'
      | 'STORE_WRITE_FAILED'
      /**
       * A networked store (Redis) did not answer: unreachable, or no answer in time. Transient: the connection
       * retries in the background. A write that fails so may or may not have been applied.
       */
      | 'STORE_UNAVAILABLE'
      /** A call's options are wrong (a scan's limit of 0, a prefix that is not a string): a bug of the caller. */
      | 'STORE_INVALID_OPTION',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  readonly code = 'CONFIG_INVALID';
}
