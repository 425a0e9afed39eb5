/**
 * Waiting and asserting without a test framework: each helper throws a plain Error with a message that says what
 * was expected and what came, so it works the same under jest, vitest or node:test.
 */

/** How long `eventually` and `TestClient.waitForPush` wait by default before they fail. */
export const DEFAULT_WAIT_MS = 5_000;

export interface EventuallyOptions {
  /** Fails once this much time has passed (default 5 s). */
  timeoutMs?: number;
  /** The pause between tries (default 10 ms; 0 lets the event loop turn once). */
  intervalMs?: number;
  /** What is awaited, for the failure message. */
  what?: string;
}

/**
 * Runs `check` until it passes — returns without throwing, and with anything but `false` — and resolves with what it
 * returned. Fails at the deadline with the last assertion error as the cause; a try that never settles counts too.
 */
export async function eventually<T>(check: () => T | Promise<T>, options: EventuallyOptions = {}): Promise<Exclude<T, false>> {
  const { timeoutMs = DEFAULT_WAIT_MS, intervalMs = 10 } = options;
  const deadline = Date.now() + timeoutMs;
  let tries = 0;
  let last: { error: unknown } | null = null;
  for (;;) {
    tries += 1;
    try {
      const value = await withDeadline(Promise.resolve().then(check), deadline);
      if (value !== false) return value as Exclude<T, false>;
      last = null;
    } catch (error) {
      last = { error };
    }
    if (Date.now() >= deadline) break;
    await pause(Math.min(intervalMs, Math.max(0, deadline - Date.now())));
  }
  const why = last ? `the last try failed: ${show(last.error)}` : 'the last try answered false';
  throw new Error(`${options.what ?? 'eventually'}: not met within ${timeoutMs} ms (${tries} tries); ${why}`, last ? { cause: last.error } : undefined);
}

/** An error as a test sees it: the `{ code, message }` of a reply or HTTP answer, or the thrown error itself. */
export interface CodedError {
  code: string;
  message: string;
  [key: string]: unknown;
}

/**
 * Asserts that `outcome` is the error `code` and returns that error. `outcome` may be a promise that rejects with
 * an error carrying `.code` (a `GreenroomError`, a client's `GreenroomClientError`), a reply frame
 * `{ ok: false, error: { code, message } }` (`TestClient.ask`), an HTTP answer `{ status, body: { error } }`
 * (`httpRequest`, `post`, `rawUpgrade`), or a promise of either. `status` also checks the HTTP status.
 */
export async function expectError(outcome: unknown, code: string, options: { status?: number } = {}): Promise<CodedError> {
  let value = outcome;
  if (isThenable(outcome)) {
    try {
      value = await outcome;
    } catch (err) {
      const thrown = err as { code?: unknown } | null;
      if (thrown?.code !== code) throw new Error(`expected an error ${code}, but it rejected with ${show(err)}`, { cause: err });
      return err as CodedError;
    }
  }
  const body = wireError(value);
  if (!body) throw new Error(`expected an error ${code}, but got ${show(value)}`);
  if (body.code !== code) throw new Error(`expected an error ${code}, but got ${body.code}: ${show(value)}`);
  if (typeof body.message !== 'string' || body.message.length === 0) throw new Error(`error ${code} has no message: ${show(value)}`);
  if (options.status !== undefined) {
    const status = (value as { status?: unknown }).status;
    if (status !== options.status) throw new Error(`expected HTTP ${options.status} with ${code}, but got ${String(status)}: ${show(value)}`);
  }
  return body;
}

/** A reply frame, or the admin socket's answer line: `{ ok: true, result }` or `{ ok: false, error }`. */
type ReplyLike = { ok: boolean; result?: unknown; error?: unknown };

/** Asserts that `reply` (a reply frame, or a promise of one) is `{ ok: true }` and returns its `result`. */
export async function expectOk<T = any>(reply: ReplyLike | Promise<ReplyLike>): Promise<T> {
  const value = await reply;
  if (value.ok !== true) throw new Error(`expected ok, but got ${show(value)}`);
  return value.result as T;
}

/** The `{ code, message }` of a reply frame or an HTTP answer, if it is an error. */
function wireError(value: unknown): CodedError | null {
  if (typeof value !== 'object' || value === null) return null;
  const v = value as { ok?: unknown; error?: unknown; status?: unknown; body?: unknown };
  const error = v.ok === false ? v.error : typeof v.status === 'number' ? (v.body as { error?: unknown } | undefined)?.error : undefined;
  if (typeof error !== 'object' || error === null || typeof (error as { code?: unknown }).code !== 'string') return null;
  return error as CodedError;
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as { then?: unknown } | null)?.then === 'function';
}

/** Rejects once `deadline` (a Date.now() time) has passed without `promise` settling. */
function withDeadline<T>(promise: Promise<T>, deadline: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('the try did not settle before the deadline')), Math.max(0, deadline - Date.now()));
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

function pause(ms: number): Promise<void> {
  return new Promise((resolve) => (ms > 0 ? setTimeout(resolve, ms) : setImmediate(resolve)));
}

function show(value: unknown): string {
  if (value instanceof Error) return `${value.name}${'code' in value ? ` ${String(value.code)}` : ''}: ${value.message}`;
  try {
    const text = JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v));
    if (text === undefined) return String(value);
    return text.length > 500 ? `${text.slice(0, 500)}…` : text;
  } catch {
    return String(value);
  }
}
