import { describe, expect, it } from '@jest/globals';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '../src/log.js';
import { ActorSystem } from '../src/runtime/actor-system.js';
import { KeyedQueue } from '../src/runtime/keyed-queue.js';
import { LowdbStore, readStoreFiles } from '../src/store/lowdb-store.js';
import { eventually } from '../src/testing/index.js';

describe('ActorSystem mailboxes', () => {
  it('handle 500 queued messages (several turns) one at a time, in the order posted', async () => {
    const system = new ActorSystem(createLogger({ level: 'silent' }));
    const seen: number[] = [];
    let running = 0;
    let maxRunning = 0;
    let done!: () => void;
    const finished = new Promise<void>((r) => (done = r));
    const box = system.spawn<number>('Counter', async (n) => {
      running += 1;
      maxRunning = Math.max(maxRunning, running);
      // Alternate sync and async handlers: a turn must await each before the next.
      if (n % 3 === 0) await new Promise((r) => setImmediate(r));
      seen.push(n);
      running -= 1;
      if (seen.length === 500) done();
    });
    for (let i = 0; i < 500; i++) box.post(i, 'one');
    await finished;
    system.stop();
    expect(seen).toEqual([...Array(500).keys()]);
    expect(maxRunning).toBe(1);
  });

  it('keep serving after a handler throws', async () => {
    const system = new ActorSystem(createLogger({ level: 'silent' }));
    const seen: string[] = [];
    let done!: () => void;
    const finished = new Promise<void>((r) => (done = r));
    const box = system.spawn<string>('Fragile', async (m) => {
      if (m === 'boom') throw new Error('boom');
      seen.push(m);
      if (m === 'last') done();
    });
    for (const m of ['a', 'boom', 'b', 'boom', 'last']) box.post(m, 'one');
    await finished;
    system.stop();
    expect(seen).toEqual(['a', 'b', 'last']);
  });

  it('give lanes turns: a late sender waits one message per busy lane, not for the backlog', async () => {
    const system = new ActorSystem(createLogger({ level: 'silent' }));
    const seen: string[] = [];
    let done!: () => void;
    const finished = new Promise<void>((r) => (done = r));
    const box = system.spawn<string>('Busy', async (m) => {
      await new Promise((r) => setImmediate(r));
      seen.push(m);
      if (seen.length === 302) done();
    });
    for (let i = 0; i < 200; i++) box.post(`flood${i}`, 'flooder');
    for (let i = 0; i < 100; i++) box.post(`other${i}`, 'second');
    box.post('admin', 'admin');
    box.post('admin2', 'admin');
    await finished;
    system.stop();
    // In turn: flood0, other0, admin, flood1, other1, admin2, … and each lane keeps its own order.
    expect(seen.slice(0, 6)).toEqual(['flood0', 'other0', 'admin', 'flood1', 'other1', 'admin2']);
    expect(seen.filter((m) => m.startsWith('flood'))).toEqual([...Array(200).keys()].map((i) => `flood${i}`));
    expect(seen.filter((m) => m.startsWith('other'))).toEqual([...Array(100).keys()].map((i) => `other${i}`));
  });

  it('refuse bounded posts past their capacity, never the server’s own', async () => {
    const system = new ActorSystem(createLogger({ level: 'silent' }));
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const seen: string[] = [];
    const box = system.spawn<string>('Small', async (m) => {
      await gate;
      seen.push(m);
    }, { capacity: 3 });
    const accepted = ['a', 'b', 'c', 'd', 'e'].map((m) => box.post(m, 'user', true));
    // Three places: d and e are refused.
    expect(accepted).toEqual([true, true, true, false, false]);
    await new Promise((r) => setImmediate(r));
    // 'a' has started (it holds no place now); the server's own post queues even past the capacity.
    expect(box.post('f', 'user', true)).toBe(true);
    expect(box.post('server', 'system', false)).toBe(true);
    expect(box.size).toBe(4);
    release();
    await eventually(() => seen.length >= 5, { intervalMs: 0 });
    system.stop();
    expect(seen).toEqual(['a', 'b', 'server', 'c', 'f']);
  });
});

describe('ActorSystem mailbox bounds', () => {
  it('give each lane its own bound within the mailbox, and do not count the server’s own messages against either', async () => {
    const system = new ActorSystem(createLogger({ level: 'silent' }));
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const box = system.spawn<string>('Lanes', async () => gate, { capacity: 4, laneCapacity: 2 });
    box.post('start', 'system', false); // holds the mailbox
    await new Promise((r) => setImmediate(r));
    for (let i = 0; i < 10; i++) expect(box.post(`server${i}`, 'system', false)).toBe(true);
    // One user gets two places, however many it asks for; others still get theirs, up to the capacity.
    expect(['a1', 'a2', 'a3'].map((m) => box.post(m, 'alice', true))).toEqual([true, true, false]);
    expect(['b1', 'b2'].map((m) => box.post(m, 'bob', true))).toEqual([true, true]);
    expect(box.post('c1', 'carol', true)).toBe(false);
    release();
    system.stop();
  });
});

describe('KeyedQueue', () => {
  it('runs one task at a time per key, keys concurrently, and is empty when idle', async () => {
    const q = new KeyedQueue();
    const log: string[] = [];
    let releaseA!: () => void;
    const heldA = new Promise<void>((r) => (releaseA = r));
    const a1 = q.run('a', async () => {
      await heldA;
      log.push('a1');
    });
    const a2 = q.run('a', async () => log.push('a2'));
    await q.run('b', async () => log.push('b1'));
    await new Promise((r) => setImmediate(r));
    expect(log).toEqual(['b1']);
    expect(q.size).toBe(1); // only 'a' is busy: 'b' was dropped when it emptied
    releaseA();
    await Promise.all([a1, a2]);
    expect(log).toEqual(['b1', 'a1', 'a2']);
    await new Promise((r) => setImmediate(r));
    expect(q.size).toBe(0);
  });

  it('a failing task does not stop the next one of its key', async () => {
    const q = new KeyedQueue();
    await expect(q.run('k', async () => Promise.reject(new Error('no')))).rejects.toThrow('no');
    await expect(q.run('k', async () => 'yes')).resolves.toBe('yes');
  });
});

describe('the lowdb store files', () => {
  it('hold exactly the document after many random puts, replaces and deletes', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'greenroom-serialize-'));
    const store = await LowdbStore.open(dir);
    const model: Record<string, Record<string, unknown>> = {};
    let seed = 42;
    const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
    try {
      for (let round = 0; round < 20; round++) {
        const writes: Array<Promise<void>> = [];
        for (let i = 0; i < 50; i++) {
          const collection = ['users', 'sessions', 'fingerprints'][rand(3)]!;
          const id = `id-${rand(40)}-ü"\\`;
          if (rand(4) === 0) {
            writes.push(store.delete(collection, id));
            delete (model[collection] ??= {})[id];
          } else {
            const value = { n: rand(1000), text: `v${round}-${i} ✓ \u2028`, nested: { list: [rand(9), null, true] } };
            writes.push(store.put(collection, id, value));
            (model[collection] ??= {})[id] = value;
          }
        }
        await Promise.all(writes);
        // The durable state (the snapshot with the journal replayed, as start-up reads it) is the model.
        const onDisk = (await readStoreFiles(join(dir, 'greenroom.json')))!;
        expect(Object.fromEntries([...onDisk].map(([name, records]) => [name, Object.fromEntries(records)]))).toEqual(model);
      }
      // Compacted, the snapshot alone is the model, as JSON.
      await store.close();
      const compacted = await LowdbStore.open(dir, { compactAfterBytes: 1 });
      await compacted.close();
      expect(JSON.parse(await readFile(join(dir, 'greenroom.json'), 'utf8'))).toEqual(model);
    } finally {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
