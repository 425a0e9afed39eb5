/** Latency histogram: 10 µs buckets up to 10 s (one overflow bucket past that); merging and percentiles. */
const BUCKET_US = 10;
const BUCKETS = 1_000_000;

export class Histogram {
  readonly counts = new Uint32Array(BUCKETS + 1);
  total = 0;

  /** Records one latency in milliseconds. */
  record(ms: number): void {
    const b = Math.min(BUCKETS, Math.max(0, Math.floor((ms * 1000) / BUCKET_US)));
    this.counts[b]! += 1;
    this.total += 1;
  }

  /** A compact form for IPC: [bucket, count] pairs of the non-empty buckets. */
  toSparse(): Array<[number, number]> {
    const out: Array<[number, number]> = [];
    for (let i = 0; i < this.counts.length; i++) if (this.counts[i]) out.push([i, this.counts[i]!]);
    return out;
  }

  static fromSparse(...parts: Array<Array<[number, number]>>): Histogram {
    const h = new Histogram();
    for (const part of parts) {
      for (const [b, c] of part) {
        h.counts[b]! += c;
        h.total += c;
      }
    }
    return h;
  }

  /** The q-quantile (0..1) in milliseconds (the upper edge of its bucket); NaN when empty. */
  quantile(q: number): number {
    if (this.total === 0) return NaN;
    const rank = Math.max(1, Math.ceil(q * this.total));
    let seen = 0;
    for (let i = 0; i < this.counts.length; i++) {
      seen += this.counts[i]!;
      if (seen >= rank) return ((i + 1) * BUCKET_US) / 1000;
    }
    return NaN;
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** A uniformly random whole number of ms in [0, max]. */
export function jitter(max: number): number {
  return Math.floor(Math.random() * (max + 1));
}

export function median(xs: number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}
