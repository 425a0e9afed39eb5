import type { ErrorCode } from './codes.js';

/** Client-chosen ask id, echoed in the reply. */
export type AskId = string | number;

/** Client → server: a request to one named actor. Subscriptions are ordinary asks. */
export interface AskFrame {
  id: AskId;
  to: string;
  type: string;
  payload: unknown;
}

export interface ErrorBody {
  code: ErrorCode;
  message: string;
}

/** Server → client: the answer to one ask. */
export type ReplyFrame =
  | { id: AskId; ok: true; result: unknown }
  | { id: AskId | null; ok: false; error: ErrorBody };

/** Server → client: a push from an actor the client subscribed to, on one of its topics (default: the actor's name). */
export interface PushFrame {
  event: string;
  from: string;
  topic: string;
  payload: unknown;
}

export type ServerFrame = ReplyFrame | PushFrame;

/** Every list answer has this shape; `nextCursor` is null on the last page (docs/protocol.md, Lists). */
export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

export const MAX_ID_LENGTH = 128;
export const MAX_NAME_LENGTH = 64;
