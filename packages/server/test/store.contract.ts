import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { StoreError } from '../src/errors.js';
import type { ScanOptions, Store, StoredRecord, WriteOp } from '../src/store/store.js';

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

      it('orders by UTF-16 code unit: astral characters (surrogate pairs) below U+E000, lone surrogates kept apart', async () => {
        const units = ['\u{1F600}', '\ue000', '\uffff', 'z', '\ud800', '\udc00', 'a\ud83d'];
        await putAll('meta', units);
        const sorted = [...units].sort();
        expect(ids(await store.scan('meta'))).toEqual(sorted);
        expect(ids(await store.scan('meta', { reverse: true, limit: 3 }))).toEqual([...sorted].reverse().slice(0, 3));
        expect(ids(await store.scan('meta', { gte: '\ud83d', lt: '\uffff' }))).toEqual(['\u{1F600}', '\udc00', '\ue000']);
        for (const id of units) expect(await store.get('meta', id)).toEqual({ id });
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

    describe('scan queries: prefix, range, reverse', () => {
      it('scans by prefix, and a prefix of U+FFFF code units still ends where it should', async () => {
        await putAll('messages', ['room-1', 'room-1/a', 'room-1/b', 'room-10/a', 'room-2/a', 'room-', 'a\uffff', 'a\uffff\uffffb', 'b']);
        expect(ids(await store.scan('messages', { prefix: 'room-1/' }))).toEqual(['room-1/a', 'room-1/b']);
        expect(ids(await store.scan('messages', { prefix: 'room-1' }))).toEqual(['room-1', 'room-1/a', 'room-1/b', 'room-10/a']);
        expect(ids(await store.scan('messages', { prefix: 'a\uffff' }))).toEqual(['a\uffff', 'a\uffff\uffffb']);
        expect(ids(await store.scan('messages', { prefix: 'room-1/', limit: 1, after: 'room-1/a' }))).toEqual(['room-1/b']);
        expect((await store.scan('messages', { prefix: '' })).items).toHaveLength(9);
      });

      it('scans a range: gte inclusive, lt exclusive, neither need exist, and it meets the prefix', async () => {
        await putAll('events', ['2024-01-31', '2024-02-01', '2024-02-15', '2024-02-29', '2024-03-01', 'x-2024-02-10']);
        expect(ids(await store.scan('events', { gte: '2024-02-01', lt: '2024-03-01' }))).toEqual(['2024-02-01', '2024-02-15', '2024-02-29']);
        expect(ids(await store.scan('events', { gte: '2024-02-02', lt: '2024-02-29' }))).toEqual(['2024-02-15']);
        expect(ids(await store.scan('events', { gte: '2024-02-29' }))).toEqual(['2024-02-29', '2024-03-01', 'x-2024-02-10']);
        expect(ids(await store.scan('events', { lt: '2024-02-01' }))).toEqual(['2024-01-31']);
        expect(ids(await store.scan('events', { prefix: '2024-02', gte: '2024-02-10' }))).toEqual(['2024-02-15', '2024-02-29']);
        expect(await store.scan('events', { gte: '2024-03', lt: '2024-02' })).toEqual({ items: [], next: null });
        const first = await store.scan('events', { gte: '2024-02-01', lt: '2024-03-01', limit: 2 });
        expect([ids(first), first.next]).toEqual([['2024-02-01', '2024-02-15'], '2024-02-15']);
        const rest = await store.scan('events', { gte: '2024-02-01', lt: '2024-03-01', limit: 2, after: first.next! });
        expect(rest).toEqual({ items: [{ id: '2024-02-29', value: { id: '2024-02-29' } }], next: null });
      });

      it('scans in reverse (descending by code unit), within a range, and keeps order through later writes', async () => {
        await putAll('messages', ['b', '10', 'a', 'B', '9', 'aa']);
        const page = await store.scan('messages', { reverse: true });
        expect(ids(page)).toEqual(['b', 'aa', 'a', 'B', '9', '10']);
        expect(page.items[0]).toEqual({ id: 'b', value: { id: 'b' } });
        expect(page.next).toBeNull();
        expect(ids(await store.scan('messages', { reverse: true, gte: '9', lt: 'aa' }))).toEqual(['a', 'B', '9']);
        await store.write([
          { op: 'put', collection: 'messages', id: 'ab', value: {} },
          { op: 'delete', collection: 'messages', id: 'a' },
          { op: 'put', collection: 'messages', id: 'gone', value: {} },
          { op: 'delete', collection: 'messages', id: 'gone' },
          { op: 'put', collection: 'messages', id: 'b', value: { again: true } },
        ]);
        expect(ids(await store.scan('messages', { reverse: true }))).toEqual(['b', 'ab', 'aa', 'B', '9', '10']);
        expect(ids(await store.scan('messages'))).toEqual(['10', '9', 'B', 'aa', 'ab', 'b']);
      });

      it('pages the newest first within a prefix: reverse with a limit, the cursor going on downwards', async () => {
        // Time-ordered ids under a per-room prefix, as uuid v7 or ULID ids behind `room/` would be.
        const room1 = Array.from({ length: 7 }, (_, i) => `room-1/${String(i).padStart(3, '0')}`);
        await putAll('messages', [...room1, 'room-0/999', 'room-2/000', 'room-1']);
        const latest = await store.scan('messages', { prefix: 'room-1/', reverse: true, limit: 3 });
        expect(ids(latest)).toEqual(['room-1/006', 'room-1/005', 'room-1/004']);
        expect(latest.next).toBe('room-1/004');
        const older = await store.scan('messages', { prefix: 'room-1/', reverse: true, limit: 3, after: latest.next! });
        expect(ids(older)).toEqual(['room-1/003', 'room-1/002', 'room-1/001']);
        const oldest = await store.scan('messages', { prefix: 'room-1/', reverse: true, limit: 3, after: older.next! });
        expect(oldest).toEqual({ items: [{ id: 'room-1/000', value: { id: 'room-1/000' } }], next: null });
        // An exactly full last page ends the scan.
        const exact = await store.scan('messages', { prefix: 'room-1/', reverse: true, limit: 4, after: 'room-1/004' });
        expect([ids(exact), exact.next]).toEqual([['room-1/003', 'room-1/002', 'room-1/001', 'room-1/000'], null]);
      });

      it('gives an empty last page for an empty collection, an emptied one, and a prefix or range that matches nothing', async () => {
        for (const options of [{}, { reverse: true }, { prefix: 'a', reverse: true, limit: 1 }, { gte: 'a', lt: 'z' }]) {
          expect(await store.scan('never-used', options)).toEqual({ items: [], next: null });
        }
        await putAll('emptied', ['a', 'b']);
        expect(ids(await store.scan('emptied', { reverse: true }))).toEqual(['b', 'a']);
        await store.write([
          { op: 'delete', collection: 'emptied', id: 'a' },
          { op: 'delete', collection: 'emptied', id: 'b' },
        ]);
        expect(await store.scan('emptied', { reverse: true })).toEqual({ items: [], next: null });
        expect(await store.scan('emptied')).toEqual({ items: [], next: null });
        await putAll('users', ['a', 'b']);
        expect(await store.scan('users', { prefix: 'c' })).toEqual({ items: [], next: null });
        expect(await store.scan('users', { prefix: 'ab', reverse: true })).toEqual({ items: [], next: null });
        expect(await store.scan('users', { gte: 'a0', lt: 'b' })).toEqual({ items: [], next: null });
        expect(await store.scan('users', { lt: 'a', reverse: true })).toEqual({ items: [], next: null });
      });

      it('a cursor past the end, in either direction, gives an empty last page', async () => {
        await putAll('users', ['b', 'c', 'd']);
        expect(await store.scan('users', { after: 'd' })).toEqual({ items: [], next: null });
        expect(await store.scan('users', { after: 'zzz' })).toEqual({ items: [], next: null });
        expect(await store.scan('users', { reverse: true, after: 'b' })).toEqual({ items: [], next: null });
        expect(await store.scan('users', { reverse: true, after: 'a' })).toEqual({ items: [], next: null });
        expect(await store.scan('users', { reverse: true, after: '' })).toEqual({ items: [], next: null });
        expect(await store.scan('users', { prefix: 'c', reverse: true, after: 'c' })).toEqual({ items: [], next: null });
        // Past the end of the range, though not of the collection.
        expect(await store.scan('users', { lt: 'c', after: 'b' })).toEqual({ items: [], next: null });
        expect(await store.scan('users', { gte: 'c', reverse: true, after: 'c' })).toEqual({ items: [], next: null });
        // A reverse cursor is "below": ids less than it, whether or not it exists.
        expect(ids(await store.scan('users', { reverse: true, after: 'cc' }))).toEqual(['c', 'b']);
        expect(ids(await store.scan('users', { reverse: true, after: 'zzz' }))).toEqual(['d', 'c', 'b']);
      });

      it('pages never skip nor repeat a row, either way, with inserts and deletes before and after the cursor', async () => {
        const random = seeded(20240229);
        const randomId = () => Array.from({ length: 1 + Math.floor(random() * 5) }, () => 'abcd'[Math.floor(random() * 4)]).join('');
        const queries = [{}, { reverse: true }, { prefix: 'b' }, { prefix: 'b', reverse: true }, { gte: 'ab', lt: 'cd' }, { gte: 'ab', lt: 'cd', reverse: true }];
        const inScan = (id: string, q: { prefix?: string; gte?: string; lt?: string }) =>
          (q.prefix === undefined || id.startsWith(q.prefix)) && (q.gte === undefined || id >= q.gte) && (q.lt === undefined || id < q.lt);
        for (let round = 0; round < 36; round++) {
          const query = queries[round % queries.length]!;
          const reverse = 'reverse' in query;
          const collection = `paging-${round}`;
          const live = new Set(Array.from({ length: 40 }, randomId));
          await store.write([...live].map((id) => ({ op: 'put' as const, collection, id, value: { id } })));
          const initial = new Set(live);
          const deleted = new Set<string>();
          const seen: string[] = [];
          let after: string | undefined;
          for (let pages = 0; ; pages++) {
            expect(pages).toBeLessThan(500);
            const page = await store.scan(collection, { ...query, after, limit: 1 + Math.floor(random() * 6) });
            for (const id of ids(page)) expect([round, id, live.has(id) && inScan(id, query)]).toEqual([round, id, true]);
            seen.push(...ids(page));
            if (page.next === null) break;
            after = page.next;
            // Between pages: new rows just before and just after the cursor and anywhere; deletes of the cursor's
            // own row, of rows on either side, and of any row.
            const cursor = after;
            const ops: WriteOp[] = [];
            const add = (id: string) => ops.push({ op: 'put', collection, id, value: { id } });
            const remove = (id: string) => ops.push({ op: 'delete', collection, id });
            add(`${cursor}a`); // just above the cursor
            if (cursor.length > 1) add(cursor.slice(0, -1)); // just below it
            for (let i = 0; i < 3; i++) add(randomId());
            const rows = [...live].sort();
            const at = rows.indexOf(cursor);
            if (random() < 0.3) remove(cursor);
            for (const id of [rows[at - 1], rows[at + 1], rows[Math.floor(random() * rows.length)]]) {
              if (id !== undefined && random() < 0.6) remove(id);
            }
            await store.write(ops);
            for (const op of ops) {
              if (op.op === 'put') live.add(op.id);
              else if (live.delete(op.id)) deleted.add(op.id);
            }
          }
          expect([round, new Set(seen).size]).toEqual([round, seen.length]); // nothing repeated
          const ordered = [...seen].sort();
          if (reverse) ordered.reverse();
          expect([round, seen]).toEqual([round, ordered]);
          const stayed = [...initial].filter((id) => !deleted.has(id) && inScan(id, query));
          expect([round, stayed.filter((id) => !seen.includes(id))]).toEqual([round, []]); // nothing skipped
        }
      });

      it('rejects bad options with StoreError STORE_INVALID_OPTION', async () => {
        await store.put('users', 'a', {});
        const bad: unknown[] = [
          { limit: 0 },
          { limit: -5 },
          { limit: 2.5 },
          { limit: Number.NaN },
          { limit: '10' },
          { prefix: 5 },
          { prefix: null },
          { gte: ['a'] },
          { lt: {} },
          { after: 7 },
          { reverse: 'yes' },
          { prefx: 'a' },
          'a',
          null,
        ];
        for (const options of bad) {
          const err = await store.scan('users', options as ScanOptions).then(
            () => undefined,
            (e: unknown) => e,
          );
          expect([options, err]).toEqual([options, expect.any(StoreError)]);
          expect(err).toMatchObject({ code: 'STORE_INVALID_OPTION' });
        }
        // Left out and explicitly undefined are the same.
        expect(ids(await store.scan('users', { after: undefined, prefix: undefined, reverse: undefined, limit: undefined }))).toEqual(['a']);
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

    describe('update (one record, atomically)', () => {
      it('creates from nothing, changes what is there, and deletes when the change answers undefined', async () => {
        const seen: unknown[] = [];
        expect(await store.update<{ n: number }>('counters', 'c', (current) => (seen.push(current), { n: (current?.n ?? 0) + 1 }))).toEqual({ n: 1 });
        expect(await store.update<{ n: number }>('counters', 'c', (current) => (seen.push(current), { n: current!.n + 1 }))).toEqual({ n: 2 });
        expect(seen).toEqual([undefined, { n: 1 }]);
        expect(await store.get('counters', 'c')).toEqual({ n: 2 });
        expect(await store.update('counters', 'c', () => undefined)).toBeUndefined();
        expect(await store.get('counters', 'c')).toBeUndefined();
        expect(await store.count('counters')).toBe(0);
      });

      it('loses none of 100 concurrent increments of one record', async () => {
        await Promise.all(Array.from({ length: 100 }, () => store.update<{ n: number }>('counters', 'c', (current) => ({ n: (current?.n ?? 0) + 1 }))));
        expect(await store.get('counters', 'c')).toEqual({ n: 100 });
      });

      it('keeps indexes and scans right through updates', async () => {
        await store.update('sessions', 's1', () => ({ uid: 'u1' }));
        await store.update<{ uid: string }>('sessions', 's1', (s) => ({ ...s!, uid: 'u2' }));
        expect(await store.findBy('sessions', 'uid', 'u1')).toEqual([]);
        expect((await store.findBy('sessions', 'uid', 'u2')).map((r) => r.id)).toEqual(['s1']);
        expect((await store.scan('sessions')).items.map((i) => i.id)).toEqual(['s1']);
      });

      it('rejects with the error of a change that throws, and leaves the record as it was', async () => {
        await store.put('counters', 'c', { n: 1 });
        await expect(
          store.update('counters', 'c', () => {
            throw new Error('no');
          }),
        ).rejects.toThrow('no');
        expect(await store.get('counters', 'c')).toEqual({ n: 1 });
      });

      it('hands out a record that cannot be changed', async () => {
        const stored = await store.update('counters', 'c', () => ({ n: 1, list: [1] }));
        expect(Object.isFrozen(stored)).toBe(true);
        expect(Object.isFrozen((stored as { list: number[] }).list)).toBe(true);
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

/** A small seeded PRNG (mulberry32): the random paging test is the same run after run. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
