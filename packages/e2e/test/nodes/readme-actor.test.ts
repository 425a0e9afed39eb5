/**
 * The README's example actor (Counter, "Add an actor") served by one node and by three (`greenroom serve --actors`):
 * the same asks give the same answers. Its count lives in the store (`ctx.store.update`), so three nodes count as
 * one: asks spread over them in turn, one after another, answer exactly as one node does, and concurrent
 * increments through every node lose none.
 */
import { describe, expect, it } from '@jest/globals';
import { fileURLToPath } from 'node:url';
import { expectError, expectOk, TestClient } from '@greenroom/server/testing';
import { adminSocket, createUser, describeNodes, login, nodesFor } from './cluster.js';
import type { Nodes } from './nodes.js';

const COUNTER = fileURLToPath(new URL('../../../server/test/fixtures/readme-counter.mjs', import.meta.url));

/** Everything a client sees of the actor through `nodes`: the answers, in the order asked. */
async function session(nodes: Nodes): Promise<unknown[]> {
  const sockets: TestClient[] = [];
  try {
    const admin = await adminSocket(nodes.url(0));
    sockets.push(admin);
    const user = await createUser(admin);
    const tokens = await login(nodes.url(0), user);
    // Three sockets, each on the next node (all on one, with one node).
    for (let i = 0; i < 3; i++) sockets.push(await TestClient.connect(nodes.url(i % nodes.size), tokens.accessToken));
    const on = (k: number) => sockets[1 + (k % 3)]!;
    const seen: unknown[] = [];
    // One after another, each through the next node.
    for (let k = 0; k < 12; k++) seen.push(await expectOk(on(k).ask('Counter', 'Increment', { by: (k % 5) + 1 })));
    seen.push((await expectError(on(0).ask('Counter', 'Increment', { by: 0 }), 'BAD_PAYLOAD')).code);
    seen.push((await expectError(on(1).ask('Counter', 'Reset', {}), 'FORBIDDEN')).code);
    // 150 more, 45 at a time (15 in flight per socket, under its limit of 16), spread over every node: none lost,
    // each count answered once.
    const counts: number[] = [];
    for (let wave = 0; wave < 150; wave += 45) {
      const size = Math.min(45, 150 - wave);
      const answers = await Promise.all(Array.from({ length: size }, (_, k) => expectOk<{ count: number }>(on(k).ask('Counter', 'Increment', { by: 1 }))));
      counts.push(...answers.map((r) => r.count));
    }
    seen.push([...counts].sort((a, b) => a - b));
    seen.push(await expectOk(on(2).ask('Counter', 'Increment', { by: 1 })));
    seen.push(await expectOk(admin.ask('Counter', 'Reset', {})));
    seen.push(await expectOk(on(1).ask('Counter', 'Increment', { by: 3 })));
    return seen;
  } finally {
    await Promise.all(sockets.map((s) => s.close()));
  }
}

describeNodes("the README's example actor", () => {
  const one = nodesFor(1, undefined, ['--actors', COUNTER]);
  const three = nodesFor(3, undefined, ['--actors', COUNTER]);

  it('answers the same through one node and through three', async () => {
    const single = await session(one());
    expect(await session(three())).toEqual(single);
    // And what one node answers is what the README's counter should: 1+2+3+4+5+1+2+3+4+5+1+2 = 33, then 150 more.
    expect(single[11]).toEqual({ count: 33 });
    expect(single[14]).toEqual(Array.from({ length: 150 }, (_, k) => 34 + k));
    expect(single.slice(15)).toEqual([{ count: 184 }, { count: 0 }, { count: 3 }]);
  });
});
