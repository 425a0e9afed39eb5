import type { ErrorCode } from '@greenroom/protocol';

/** Codes only the client produces: the server never sends them. */
export type ClientOnlyCode = 'CONNECTION_LOST' | 'QUEUE_FULL' | 'CLOSED' | 'SIGNED_OUT';
export type ClientErrorCode = ErrorCode | ClientOnlyCode;

/** Every rejection of `ask` (and of the auth calls) is one of these, carrying a protocol or client code. */
export class GreenroomClientError extends Error {
  override readonly name = 'GreenroomClientError';
  constructor(
    readonly code: ClientErrorCode,
    message: string,
    readonly status?: number,
  ) {
    super(message);
  }
}
