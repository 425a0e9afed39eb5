/**
 * backoffDelay: exponential backoff with full jitter — a uniform draw in [0, min(cap, base·2^attempt)) — bounded by
 * the cap however many attempts have failed.
 */
import { describe, expect, it } from '@jest/globals';
import { backoffDelay } from '@greenroom/client';

const opts = { baseMs: 100, capMs: 5_000 };
const ceilings: Array<[number, number]> = [
  [0, 100],
  [1, 200],
  [2, 400],
  [3, 800],
  [5, 3_200],
  [6, 5_000],
  [10, 5_000],
];

describe('backoffDelay', () => {
  it.each(ceilings)('attempt %i: draws span [0, %i) — 0 at random()=0, just under the ceiling at random()→1', (attempt, ceiling) => {
    expect(backoffDelay(attempt, opts, () => 0)).toBe(0);
    const top = backoffDelay(attempt, opts, () => 0.999_999);
    expect(top).toBeLessThan(ceiling);
    expect(top).toBeGreaterThanOrEqual(ceiling - 1);
    expect(backoffDelay(attempt, opts, () => 0.5)).toBe(Math.floor(ceiling / 2));
  });

  it('is full jitter: with Math.random, every draw is a whole number of ms within [0, ceiling), and draws differ', () => {
    const draws = Array.from({ length: 2_000 }, () => backoffDelay(4, opts));
    expect(draws.filter((d) => !Number.isInteger(d) || d < 0 || d >= 1_600)).toEqual([]);
    // Spread over the whole range, not clustered at the ceiling (as "equal jitter" or plain exponential would be).
    expect(new Set(draws).size).toBeGreaterThan(500);
    expect(Math.min(...draws)).toBeLessThan(400);
    expect(Math.max(...draws)).toBeGreaterThan(1_200);
  });

  it('never exceeds the cap, even after very many attempts (no overflow to Infinity or NaN)', () => {
    for (const attempt of [20, 30, 31, 100, 1_000, 1e9, Number.MAX_SAFE_INTEGER]) {
      const d = backoffDelay(attempt, opts, () => 0.999_999);
      expect(Number.isFinite(d)).toBe(true);
      expect(d).toBeLessThan(opts.capMs);
      expect(d).toBeGreaterThanOrEqual(opts.capMs - 1);
    }
  });

  it('the ceiling doubles per attempt until the cap', () => {
    const tops = Array.from({ length: 8 }, (_, a) => backoffDelay(a, { baseMs: 64, capMs: 4_096 }, () => 0.5));
    expect(tops).toEqual([32, 64, 128, 256, 512, 1_024, 2_048, 2_048]);
  });
});
