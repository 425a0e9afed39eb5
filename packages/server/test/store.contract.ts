import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { StoreError } from '../src/errors.js';
import type { Store, StoredRecord } from '../src/store/store.js';

/**
 * The behaviour every Store must have (memory, lowdb, redis). `open` gives a fresh, empty store and a cleanup that
 * must work whether or not the test closed the store.
 */
export function storeContract(name: string, open: () => Promise<{ store: Store; cleanup: () => Promise<void> }>): void {
  describe(`Store contract: ${name}`, () => {
    let store: Store;
    let cleanup: () => Promise<void>;

    beforeEach(async () => {
      ({ store, cleanup } = await open());
    });
    afterEach(async () => {
      await cleanup();
    });

    const ids = (page: { items: Array<{ id: string }> }) => page.items.map((item) => item.id);
    const putAll = (collection: string, keys: string[]) =>
      Promise.all(keys.map((id) => store.put(collection, id, { id })));

    describe('put / get / delete', () => {
      it('gets undefined for a missing id and a missing collection', async () => {
        expect(await store.get('users', 'nobody')).toBeUndefined();
        expect(await store.get('never-used', 'x')).toBeUndefined();
      });

      it('gets back what was put, JSON types intact', async () => {
        const value = { s: 'text', n: 1.5, t: true, f: false, z: null, list: [1, 'two', { three: 3 }], nested: { a: { b: 'c' } } };
        await store.put('users', 'u1', value);
        expect(await store.get('users', 'u1')).toEqual(value);
      });

      it('keeps a copy: changing the object after put changes nothing', async () => {
        const value = { name: 'ann', tags: ['a'] };
        await store.put('users', 'u1', value);
        value.name = 'bob';
        value.tags.push('b');
        expect(await store.get('users', 'u1')).toEqual({ name: 'ann', tags: ['a'] });
      });

      it('replaces on a second put', async () => {
        await store.put('users', 'u1', { v: 1, old: true });
        await store.put('users', 'u1', { v: 2 });
        expect(await store.get('users', 'u1')).toEqual({ v: 2 });
        expect(await store.count('users')).toBe(1);
      });

      it('deletes, and deleting a missing id is a no-op', async () => {
        await store.put('users', 'u1', { v: 1 });
        await store.delete('users', 'u1');
        expect(await store.get('users', 'u1')).toBeUndefined();
        await expect(store.delete('users', 'u1')).resolves.toBeUndefined();
        await expect(store.delete('never-used', 'x')).resolves.toBeUndefined();
      });

      it('keeps collections apart', async () => {
        await store.put('users', 'same', { from: 'users' });
        await store.put('sessions', 'same', { from: 'sessions' });
        await store.delete('users', 'same');
        expect(await store.get('users', 'same')).toBeUndefined();
        expect(await store.get('sessions', 'same')).toEqual({ from: 'sessions' });
      });

      it('treats awkward ids as plain keys', async () => {
        const awkward = ['__proto__', 'constructor', 'toString', 'hasOwnProperty', '', 'a/b:c', 'ünï €', '0'];
        for (const id of awkward) await store.put('meta', id, { id });
        for (const id of awkward) expect(await store.get('meta', id)).toEqual({ id });
        expect(await store.get('meta', 'valueOf')).toBeUndefined();
        expect(await store.count('meta')).toBe(awkward.length);
        expect(ids(await store.scan('meta'))).toEqual([...awkward].sort());
      });
    });

    describe('records are immutable once stored', () => {
      it('a returned record cannot be changed, nor can the stored one through it', async () => {
        await store.put('users', 'u1', { name: 'ann', tags: ['a'], deep: { x: 1 } });
        const got = (await store.get<StoredRecord & { tags: string[]; deep: { x: number } }>('users', 'u1'))!;
        const attempts = [
          () => ((got as Record<string, unknown>).name = 'bob'),
          () => ((got as Record<string, unknown>).extra = 1),
          () => delete (got as Record<string, unknown>).name,
          () => got.tags.push('b'),
          () => (got.deep.x = 2),
        ];
        for (const attempt of attempts) {
          try {
            attempt();
          } catch {
            // Throwing (a frozen record in strict code) is one of the two allowed outcomes.
          }
        }
        expect(await store.get('users', 'u1')).toEqual({ name: 'ann', tags: ['a'], deep: { x: 1 } });
      });

      it('records in scan pages cannot change the stored ones either', async () => {
        await store.put('users', 'u1', { name: 'ann' });
        const [item] = (await store.scan('users')).items;
        try {
          (item!.value as Record<string, unknown>).name = 'bob';
        } catch {
          // allowed
        }
        expect(await store.get('users', 'u1')).toEqual({ name: 'ann' });
      });
    });

    describe('scan', () => {
      it('gives an empty last page for an empty or missing collection', async () => {
        await expect(store.scan('never-used')).resolves.toEqual({ items: [], next: null });
      });

      it('returns ids ascending by code unit, whatever the insertion order, with their values', async () => {
        await putAll('users', ['b', '10', 'a', 'B', '9', 'aa']);
        const page = await store.scan('users');
        expect(ids(page)).toEqual(['10', '9', 'B', 'a', 'aa', 'b']);
        expect(page.items[0]).toEqual({ id: '10', value: { id: '10' } });
        expect(page.next).toBeNull();
      });

      it('pages with limit and the cursor, and the last page has next null', async () => {
        await putAll('users', ['e', 'a', 'c', 'b', 'd']);
        const first = await store.scan('users', { limit: 2 });
        expect(ids(first)).toEqual(['a', 'b']);
        expect(first.next).toBe('b');
        const second = await store.scan('users', { limit: 2, after: first.next! });
        expect(ids(second)).toEqual(['c', 'd']);
        expect(second.next).toBe('d');
        const third = await store.scan('users', { limit: 2, after: second.next! });
        expect(third).toEqual({ items: [{ id: 'e', value: { id: 'e' } }], next: null });
      });

      it('an exactly full last page has next null (no empty page follows)', async () => {
        await putAll('users', ['a', 'b', 'c', 'd']);
        const first = await store.scan('users', { limit: 2 });
        expect(first.next).toBe('b');
        const last = await store.scan('users', { limit: 2, after: 'b' });
        expect(ids(last)).toEqual(['c', 'd']);
        expect(last.next).toBeNull();
        const exact = await store.scan('users', { limit: 4 });
        expect(exact.items).toHaveLength(4);
        expect(exact.next).toBeNull();
      });

      it('"after" is strictly-greater and need not be an existing id', async () => {
        await putAll('users', ['a', 'c', 'e']);
        expect(ids(await store.scan('users', { after: 'c' }))).toEqual(['e']);
        expect(ids(await store.scan('users', { after: 'b' }))).toEqual(['c', 'e']);
        expect(await store.scan('users', { after: 'e' })).toEqual({ items: [], next: null });
        expect(await store.scan('users', { after: 'zzz' })).toEqual({ items: [], next: null });
        expect(ids(await store.scan('users', { after: '' }))).toEqual(['a', 'c', 'e']);
      });

      it('a cursor survives the deletion of the id it names', async () => {
        await putAll('users', ['a', 'b', 'c']);
        const first = await store.scan('users', { limit: 2 });
        await store.delete('users', first.next!);
        expect(ids(await store.scan('users', { after: first.next! }))).toEqual(['c']);
      });

      it('defaults to 100 items a page, and walks every item exactly once', async () => {
        const all = Array.from({ length: 250 }, (_, i) => `id-${String(i).padStart(4, '0')}`);
        await putAll('sessions', all);
        const first = await store.scan('sessions');
        expect(first.items).toHaveLength(100);
        const seen: string[] = [];
        let after: string | undefined;
        for (;;) {
          const page = await store.scan('sessions', after === undefined ? {} : { after });
          seen.push(...ids(page));
          if (page.next === null) break;
          after = page.next;
        }
        expect(seen).toEqual(all);
      });

      it('rejects a limit that is not a positive integer', async () => {
        await store.put('users', 'a', {});
        await expect(store.scan('users', { limit: 0 })).rejects.toThrow();
        await expect(store.scan('users', { limit: -1 })).rejects.toThrow();
        await expect(store.scan('users', { limit: 1.5 })).rejects.toThrow();
      });
    });

    describe('findBy', () => {
      const sorted = (rows: Array<{ id: string }>) => rows.map((r) => r.id).sort();

      it('finds records by a field, before and after the index exists, through puts, moves and deletes', async () => {
        await store.put('sessions', 's1', { uid: 'u1' });
        await store.put('sessions', 's2', { uid: 'u1' });
        await store.put('sessions', 's3', { uid: 'u2' });
        expect(sorted(await store.findBy('sessions', 'uid', 'u1'))).toEqual(['s1', 's2']);
        await store.put('sessions', 's4', { uid: 'u1' });
        await store.put('sessions', 's2', { uid: 'u2' }); // moves from u1 to u2
        await store.delete('sessions', 's1');
        expect(sorted(await store.findBy('sessions', 'uid', 'u1'))).toEqual(['s4']);
        expect(sorted(await store.findBy('sessions', 'uid', 'u2'))).toEqual(['s2', 's3']);
        expect(await store.findBy('sessions', 'uid', 'nobody')).toEqual([]);
        expect((await store.findBy<{ uid: string }>('sessions', 'uid', 'u1'))[0]!.value.uid).toBe('u1');
      });

      it('sees batches and keeps collections and fields apart', async () => {
        await store.write([
          { op: 'put', collection: 'users', id: 'a', value: { name: 'x', team: 't' } },
          { op: 'put', collection: 'fingerprints', id: 'f', value: { name: 'x' } },
        ]);
        expect(sorted(await store.findBy('users', 'name', 'x'))).toEqual(['a']);
        expect(sorted(await store.findBy('users', 'team', 't'))).toEqual(['a']);
        expect(sorted(await store.findBy('users', 'team', 'x'))).toEqual([]);
      });
    });

    describe('count', () => {
      it('counts the records of one collection', async () => {
        expect(await store.count('users')).toBe(0);
        await putAll('users', ['a', 'b', 'c']);
        await store.put('sessions', 'a', {});
        await store.put('users', 'a', { again: true });
        expect(await store.count('users')).toBe(3);
        await store.delete('users', 'b');
        expect(await store.count('users')).toBe(2);
        expect(await store.count('sessions')).toBe(1);
      });
    });

    describe('write (batches)', () => {
      it('applies puts and deletes across collections, in order', async () => {
        await store.put('users', 'old', { v: 0 });
        await store.write([
          { op: 'put', collection: 'users', id: 'u1', value: { v: 1 } },
          { op: 'put', collection: 'fingerprints', id: 'f1', value: { uid: 'u1' } },
          { op: 'delete', collection: 'users', id: 'old' },
          { op: 'put', collection: 'users', id: 'gone', value: { v: 2 } },
          { op: 'delete', collection: 'users', id: 'gone' },
          { op: 'delete', collection: 'users', id: 'back' },
          { op: 'put', collection: 'users', id: 'back', value: { v: 3 } },
        ]);
        expect(ids(await store.scan('users'))).toEqual(['back', 'u1']);
        expect(await store.get('users', 'back')).toEqual({ v: 3 });
        expect(await store.get('fingerprints', 'f1')).toEqual({ uid: 'u1' });
      });

      it('an empty batch is fine', async () => {
        await expect(store.write([])).resolves.toBeUndefined();
      });

      it('is all or nothing: a value that cannot be stored fails the batch with nothing applied', async () => {
        await store.put('users', 'keep', { v: 1 });
        const poisoned = {
          get boom(): never {
            throw new Error('cannot read this value');
          },
        };
        await expect(
          store.write([
            { op: 'put', collection: 'users', id: 'u1', value: { v: 1 } },
            { op: 'delete', collection: 'users', id: 'keep' },
            { op: 'put', collection: 'users', id: 'u2', value: poisoned },
          ]),
        ).rejects.toThrow();
        expect(await store.get('users', 'u1')).toBeUndefined();
        expect(await store.get('users', 'keep')).toEqual({ v: 1 });
        expect(await store.count('users')).toBe(1);
        // The store is still usable afterwards.
        await store.put('users', 'u3', { v: 3 });
        expect(await store.count('users')).toBe(2);
      });
    });

    describe('concurrency', () => {
      it('makes every one of 100 concurrent puts visible', async () => {
        const keys = Array.from({ length: 100 }, (_, i) => `c${String(i).padStart(3, '0')}`);
        await Promise.all(keys.map((id, n) => store.put('sessions', id, { n })));
        expect(await store.count('sessions')).toBe(100);
        for (const [n, id] of keys.entries()) expect(await store.get('sessions', id)).toEqual({ n });
      });

      it('concurrent writes to one id end in the last one issued', async () => {
        await Promise.all(Array.from({ length: 20 }, (_, v) => store.put('users', 'u1', { v })));
        expect(await store.get('users', 'u1')).toEqual({ v: 19 });
      });
    });

    describe('ping and close', () => {
      it('pings while open', async () => {
        await expect(store.ping()).resolves.toBeUndefined();
      });

      it('lets a write issued before close finish', async () => {
        const put = store.put('users', 'u1', { v: 1 });
        await store.close();
        await expect(put).resolves.toBeUndefined();
      });

      it('rejects every later call with STORE_CLOSED, and a second close is harmless', async () => {
        await store.put('users', 'u1', { v: 1 });
        await store.close();
        const calls: Array<() => Promise<unknown>> = [
          () => store.get('users', 'u1'),
          () => store.put('users', 'u2', {}),
          () => store.delete('users', 'u1'),
          () => store.write([{ op: 'put', collection: 'users', id: 'u3', value: {} }]),
          () => store.scan('users'),
          () => store.count('users'),
          () => store.ping(),
        ];
        for (const call of calls) {
          const err = await call().then(
            () => undefined,
            (e: unknown) => e,
          );
          expect(err).toBeInstanceOf(StoreError);
          expect(err).toMatchObject({ code: 'STORE_CLOSED' });
        }
        await expect(store.close()).resolves.toBeUndefined();
      });
    });
  });
}
