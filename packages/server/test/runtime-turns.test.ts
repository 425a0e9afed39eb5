/**
 * A mailbox's turn (runtime/actor-system.ts): it handles what is queued until none is left or its budget is spent,
 * then yields to the event loop. Asserted by order against a setImmediate posted beside the messages (never by time:
 * the budget's clock is the test's own).
 */
import { describe, expect, it } from '@jest/globals';
import { createLogger } from '../src/log.js';
import { ActorSystem, type ActorSystemOptions } from '../src/runtime/actor-system.js';

/**
 * Posts `count` messages and, at once, a setImmediate; resolves with what ran, in order: the messages' numbers and
 * `'loop'` where the event loop had its go.
 */
async function run(count: number, options: ActorSystemOptions, handle: (n: number) => void | Promise<void> = () => undefined): Promise<Array<number | 'loop'>> {
  const system = new ActorSystem(createLogger({ level: 'silent' }), options);
  const seen: Array<number | 'loop'> = [];
  let done!: () => void;
  const finished = new Promise<void>((r) => (done = r));
  const box = system.spawn<number>('Turns', async (n) => {
    await handle(n);
    seen.push(n);
    if (n === count - 1) done();
  });
  for (let i = 0; i < count; i++) box.post(i, 'one');
  // Queued after the first turn's own setImmediate (nact's), so it runs once that turn yields.
  setImmediate(() => setImmediate(() => seen.push('loop')));
  await finished;
  system.stop();
  return seen;
}

describe('a mailbox turn', () => {
  it('handles everything queued in one turn while the budget lasts', async () => {
    const seen = await run(300, { turnMessages: 10_000, turnBudgetMs: 1e9 });
    expect(seen.indexOf('loop')).toBe(-1);
    expect(seen).toEqual([...Array(300).keys()]);
  });

  it('yields to the event loop after its message cap, and then goes on in order', async () => {
    const seen = await run(300, { turnMessages: 100, turnBudgetMs: 1e9 });
    const loop = seen.indexOf('loop');
    expect(loop).toBeGreaterThan(0);
    expect(loop).toBeLessThanOrEqual(200);
    expect(seen.filter((s) => s !== 'loop')).toEqual([...Array(300).keys()]);
  });

  it('yields to the event loop once its time budget is spent', async () => {
    // A clock that moves 1 ms each time it is read: a 5 ms budget is spent after a few messages.
    let t = 0;
    const seen = await run(50, { turnMessages: 10_000, turnBudgetMs: 5, clock: () => (t += 1) });
    const loop = seen.indexOf('loop');
    expect(loop).toBeGreaterThan(0);
    expect(loop).toBeLessThanOrEqual(10);
    expect(seen.filter((s) => s !== 'loop')).toEqual([...Array(50).keys()]);
  });
});
