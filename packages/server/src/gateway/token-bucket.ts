/**
 * A token bucket: `rate` tokens per second up to `burst`; every frame takes one. Kept as two numbers in its owner
 * (a connection) rather than an object of its own: one per idle socket adds up.
 */

/** The tokens in a bucket that held `tokens` at `since` (epoch ms), at `now`. */
export function refill(tokens: number, since: number, now: number, rate: number, burst: number): number {
  return now > since ? Math.min(burst, tokens + ((now - since) / 1000) * rate) : tokens;
}
