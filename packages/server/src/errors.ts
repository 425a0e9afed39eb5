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

/** Maps anything thrown to what may be shown to a client: a GreenroomError as is, all else as INTERNAL. */
export function toPublicError(err: unknown): GreenroomError {
  if (err instanceof GreenroomError) return err;
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
