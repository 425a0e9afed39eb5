import { ErrorCode } from './codes.js';
import { MAX_ID_LENGTH, MAX_NAME_LENGTH, type AskFrame, type AskId, type ErrorBody, type ServerFrame } from './frames.js';

export type ParseResult<T> = { ok: true; frame: T } | { ok: false; id: AskId | null; error: ErrorBody };

const NAME = /^[A-Za-z][A-Za-z0-9_.-]*$/;

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

function readId(v: unknown): AskId | null {
  if (typeof v === 'string' && v.length > 0 && v.length <= MAX_ID_LENGTH) return v;
  if (typeof v === 'number' && Number.isSafeInteger(v)) return v;
  return null;
}

function bad(id: AskId | null, message: string): ParseResult<never> {
  return { ok: false, id, error: { code: ErrorCode.BAD_FRAME, message } };
}

/**
 * Untrusted text from a socket → an ask frame, or BAD_FRAME with the id echoed when one could be read.
 * Security: this is where client data enters. Only own properties are read, so keys such as `__proto__` or
 * `constructor` cannot reach a prototype; the payload is checked by the target message's schema later.
 */
export function parseAskFrame(text: string): ParseResult<AskFrame> {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return bad(null, 'frame is not valid JSON');
  }
  if (!isPlainObject(raw)) return bad(null, 'frame must be a JSON object');
  const id = Object.hasOwn(raw, 'id') ? readId(raw.id) : null;
  if (id === null) return bad(null, 'id must be a non-empty string (at most 128 characters) or a safe integer');
  const to = Object.hasOwn(raw, 'to') ? raw.to : undefined;
  if (typeof to !== 'string' || to.length > MAX_NAME_LENGTH || !NAME.test(to)) return bad(id, 'to must be an actor name');
  const type = Object.hasOwn(raw, 'type') ? raw.type : undefined;
  if (typeof type !== 'string' || type.length > MAX_NAME_LENGTH || !NAME.test(type)) return bad(id, 'type must be a message name');
  const payload = Object.hasOwn(raw, 'payload') ? raw.payload : undefined;
  if (payload !== undefined && payload !== null && !isPlainObject(payload)) return bad(id, 'payload must be a JSON object');
  return { ok: true, frame: { id, to, type, payload: payload ?? {} } };
}

/** Server text → a reply or push frame (used by clients; the server is trusted but still checked). */
export function parseServerFrame(text: string): ServerFrame | null {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return null;
  }
  if (!isPlainObject(raw)) return null;
  if (typeof raw.event === 'string' && typeof raw.from === 'string') {
    // A server before topics sent none: its one topic was the actor's own.
    return { event: raw.event, from: raw.from, topic: typeof raw.topic === 'string' ? raw.topic : raw.from, payload: raw.payload };
  }
  if (raw.ok === true && readId(raw.id) !== null) return { id: raw.id as AskId, ok: true, result: raw.result };
  if (raw.ok === false && isPlainObject(raw.error) && typeof raw.error.code === 'string') {
    const id = readId(raw.id);
    return { id, ok: false, error: { code: raw.error.code as ErrorCode, message: String(raw.error.message ?? '') } };
  }
  return null;
}
