import type { StoredRecord } from './store.js';

type ValueIndex = Map<unknown, Set<string>>;

/**
 * Secondary indexes for the embedded stores: field value → ids, built on the first `findBy` of a field and kept
 * up to date by every write after that. Kept in memory only; the records are the truth.
 */
export class FieldIndex {
  private readonly indexes = new Map<string, Map<string, ValueIndex>>();

  /** The ids whose `field` equals `value`; `records` is read once, to build the index on first use. */
  find(collection: string, field: string, value: unknown, records: () => Iterable<[string, StoredRecord]>): string[] {
    let fields = this.indexes.get(collection);
    if (!fields) this.indexes.set(collection, (fields = new Map()));
    let index = fields.get(field);
    if (!index) {
      fields.set(field, (index = new Map()));
      for (const [id, record] of records()) add(index, record[field], id);
    }
    return [...(index.get(value) ?? [])];
  }

  /** Call for every put (with the record it replaces) and delete (with `next` undefined). */
  update(collection: string, id: string, previous: StoredRecord | undefined, next: StoredRecord | undefined): void {
    const fields = this.indexes.get(collection);
    if (!fields) return;
    for (const [field, index] of fields) {
      if (previous) remove(index, previous[field], id);
      if (next) add(index, next[field], id);
    }
  }
}

function add(index: ValueIndex, value: unknown, id: string): void {
  if (value === undefined) return;
  let ids = index.get(value);
  if (!ids) index.set(value, (ids = new Set()));
  ids.add(id);
}

function remove(index: ValueIndex, value: unknown, id: string): void {
  const ids = index.get(value);
  if (!ids) return;
  ids.delete(id);
  if (ids.size === 0) index.delete(value);
}
