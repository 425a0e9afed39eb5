/**
 * Attempts counted per key in a fixed window. An attempt is counted when it is let through, before its outcome is
 * known, so attempts in flight count too: a burst sent at once gets no more tries than the same attempts sent one
 * by one. The login limiter, the guest limiter and the exchange limiter are built on it.
 *
 * `AttemptCounter` is the shape they use; `AttemptWindows` keeps the windows in this process's memory (one node), and
 * cluster/shared-attempts.ts keeps them in Redis for several nodes with the same behaviour.
 */

/** An attempt counted on `key`, in the window `window` names (opaque: what `refund` and `newlyAtLimit` need). */
export interface Counted {
  readonly key: string;
  readonly window: number;
}

/** A `take`: counted on every key, or nothing counted and the seconds to wait. */
export type Taken = { ok: true; counted: Counted[] } | { ok: false; retryAfter: number };

export interface AttemptCounter {
  /** Attempts per key and window, at most. */
  readonly max: number;
  /** Seconds until every one of `keys` may try again, or 0 if they all may now. */
  retryAfter(keys: readonly string[]): Promise<number>;
  /**
   * In one step, so that parallel attempts cannot all pass: if none of `keys` is at the limit, counts one attempt on
   * each of them and on each of `unchecked` (counted whether or not they are at theirs); otherwise counts nothing.
   */
  take(keys: readonly string[], unchecked?: readonly string[]): Promise<Taken>;
  /**
   * Of the counted attempts' windows (if still current), those at the limit that have not been named so before: each
   * window is named once, however many attempts fail in it.
   */
  newlyAtLimit(counted: readonly Counted[]): Promise<string[]>;
  /** Takes counted attempts back (a login that succeeded), unless their window has passed since. */
  refund(counted: readonly Counted[]): Promise<void>;
  stop(): void;
}

/** One node's counter: the windows in this process's memory. */
export class AttemptWindows implements AttemptCounter {
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

  async retryAfter(keys: readonly string[]): Promise<number> {
    return this.wait(keys);
  }

  async take(keys: readonly string[], unchecked: readonly string[] = []): Promise<Taken> {
    // Synchronous from the check to the count: nothing else runs in between.
    const retryAfter = this.wait(keys);
    return retryAfter > 0 ? { ok: false, retryAfter } : { ok: true, counted: this.count([...keys, ...unchecked]) };
  }

  async newlyAtLimit(counted: readonly Counted[]): Promise<string[]> {
    const keys: string[] = [];
    for (const { key, window } of counted) {
      const w = this.windows.get(key);
      if (w && w.resetAt === window && w.count >= this.max && !w.reported) {
        w.reported = true;
        keys.push(key);
      }
    }
    return keys;
  }

  async refund(counted: readonly Counted[]): Promise<void> {
    for (const { key, window } of counted) {
      const w = this.windows.get(key);
      if (w && w.resetAt === window && w.count > 0) w.count -= 1;
    }
  }

  /** The longest wait of `keys`, in seconds (0: none is at the limit). */
  private wait(keys: readonly string[]): number {
    const t = this.now();
    let seconds = 0;
    for (const key of keys) {
      const w = this.windows.get(key);
      if (w && w.resetAt > t && w.count >= this.max) seconds = Math.max(seconds, Math.ceil((w.resetAt - t) / 1000));
    }
    return seconds;
  }

  /** Counts one attempt for each key; a window starts at its key's first attempt. */
  private count(keys: readonly string[]): Counted[] {
    const t = this.now();
    return keys.map((key) => {
      let w = this.windows.get(key);
      if (!w || w.resetAt <= t) this.windows.set(key, (w = { count: 0, resetAt: t + this.windowMs }));
      w.count += 1;
      return { key, window: w.resetAt };
    });
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
