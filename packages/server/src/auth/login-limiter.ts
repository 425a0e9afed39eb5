/**
 * Failed logins counted per username and per client address in a fixed window. Once a key has used up its
 * failures, every attempt until the window passes gets 429 — the correct password included — and known and
 * unknown usernames count alike, so the limiter tells nothing about which usernames exist.
 */
export class LoginLimiter {
  private readonly windows = new Map<string, { failures: number; resetAt: number }>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(
    private readonly maxFailures: number,
    private readonly windowMs: number,
    private readonly now: () => number = Date.now,
  ) {
    // Expired windows are dropped so the map stays bounded by recent failures.
    this.sweeper = setInterval(() => this.sweep(), Math.min(windowMs, 60_000)).unref();
  }

  private keys(username: string, address: string): string[] {
    return [`u:${username.toLowerCase()}`, `a:${address}`];
  }

  /** Seconds to wait if this attempt is refused, else 0. */
  retryAfter(username: string, address: string): number {
    const t = this.now();
    let wait = 0;
    for (const key of this.keys(username, address)) {
      const w = this.windows.get(key);
      if (w && w.resetAt > t && w.failures >= this.maxFailures) wait = Math.max(wait, Math.ceil((w.resetAt - t) / 1000));
    }
    return wait;
  }

  fail(username: string, address: string): void {
    const t = this.now();
    for (const key of this.keys(username, address)) {
      const w = this.windows.get(key);
      if (!w || w.resetAt <= t) this.windows.set(key, { failures: 1, resetAt: t + this.windowMs });
      else w.failures += 1;
    }
  }

  get size(): number {
    return this.windows.size;
  }

  sweep(): void {
    const t = this.now();
    for (const [key, w] of this.windows) if (w.resetAt <= t) this.windows.delete(key);
  }

  stop(): void {
    clearInterval(this.sweeper);
  }
}
