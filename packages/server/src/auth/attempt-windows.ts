/**
 * Attempts counted per key in a fixed window. An attempt is counted when it is let through, before its outcome is
 * known, so attempts in flight count too: a burst sent at once gets no more tries than the same attempts sent one
 * by one. The login limiter and the guest limiter are built on it.
 */
export class AttemptWindows {
  /** `reported`: this window has been named as having reached the limit (see `newlyAtLimit`). */
  private readonly windows = new Map<string, { count: number; resetAt: number; reported?: boolean }>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(
    readonly max: number,
    private readonly windowMs: number,
    private readonly now: () => number = Date.now,
  ) {
    // Expired windows are dropped so the map stays bounded by recent attempts.
    this.sweeper = setInterval(() => this.sweep(), Math.min(windowMs, 60_000)).unref();
  }

  /** Seconds until `key` may try again, or 0 if it may now. */
  retryAfter(key: string): number {
    const t = this.now();
    const w = this.windows.get(key);
    return w && w.resetAt > t && w.count >= this.max ? Math.ceil((w.resetAt - t) / 1000) : 0;
  }

  /** Counts one attempt for each key; returns what `refund` needs to take it back. */
  count(keys: readonly string[]): Array<{ key: string; resetAt: number }> {
    const t = this.now();
    return keys.map((key) => {
      let w = this.windows.get(key);
      if (!w || w.resetAt <= t) this.windows.set(key, (w = { count: 0, resetAt: t + this.windowMs }));
      w.count += 1;
      return { key, resetAt: w.resetAt };
    });
  }

  /**
   * Of the counted attempts' windows (if still current), those at the limit that have not been named so before: each
   * window is named once, however many attempts fail in it.
   */
  newlyAtLimit(counted: ReadonlyArray<{ key: string; resetAt: number }>): string[] {
    const keys: string[] = [];
    for (const { key, resetAt } of counted) {
      const w = this.windows.get(key);
      if (w && w.resetAt === resetAt && w.count >= this.max && !w.reported) {
        w.reported = true;
        keys.push(key);
      }
    }
    return keys;
  }

  /** Takes counted attempts back (a login that succeeded), unless their window has passed since. */
  refund(counted: ReadonlyArray<{ key: string; resetAt: number }>): void {
    for (const { key, resetAt } of counted) {
      const w = this.windows.get(key);
      if (w && w.resetAt === resetAt && w.count > 0) w.count -= 1;
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
