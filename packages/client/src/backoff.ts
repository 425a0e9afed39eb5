/**
 * Reconnect delays: exponential backoff with full jitter (a uniform draw in [0, min(cap, base·2^attempt)]), so a
 * fleet of clients that lost one server spreads out instead of coming back in waves.
 */
export interface BackoffOptions {
  baseMs: number;
  capMs: number;
}

export function backoffDelay(attempt: number, options: BackoffOptions, random: () => number = Math.random): number {
  const ceiling = Math.min(options.capMs, options.baseMs * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * ceiling);
}
