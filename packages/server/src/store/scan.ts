import { StoreError } from '../errors.js';
import type { ScanOptions, ScanPage } from './store.js';

/** The default page size of `scan`. */
export const DEFAULT_SCAN_LIMIT = 100;

const OPTION_TYPES: Record<keyof ScanOptions, 'string' | 'number' | 'boolean'> = {
  after: 'string',
  prefix: 'string',
  gte: 'string',
  lt: 'string',
  reverse: 'boolean',
  limit: 'number',
};

/**
 * Checks a scan's options: known names, each of its type (or undefined), a limit that is a positive integer.
 * Anything else is STORE_INVALID_OPTION: an unknown name (a misspelt `prefx`) would otherwise widen the scan silently.
 */
export function checkScanOptions(options: unknown): ScanOptions {
  if (options === undefined) return {};
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new StoreError('STORE_INVALID_OPTION', `scan options must be an object, got ${describeValue(options)}`);
  }
  for (const [name, value] of Object.entries(options)) {
    const type = Object.hasOwn(OPTION_TYPES, name) ? OPTION_TYPES[name as keyof ScanOptions] : undefined;
    if (type === undefined) throw new StoreError('STORE_INVALID_OPTION', `unknown scan option ${JSON.stringify(name)}`);
    if (value !== undefined && typeof value !== type) {
      throw new StoreError('STORE_INVALID_OPTION', `scan option ${name} must be a ${type}, got ${describeValue(value)}`);
    }
  }
  const { limit } = options as ScanOptions;
  if (limit !== undefined && (!Number.isInteger(limit) || limit < 1)) {
    throw new StoreError('STORE_INVALID_OPTION', `scan limit must be a positive integer, got ${limit}`);
  }
  return options as ScanOptions;
}

function describeValue(value: unknown): string {
  return value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value === 'string' ? JSON.stringify(value) : `${typeof value} ${String(value)}`;
}

/**
 * One page of a collection whose ids are `ids`, sorted ascending. Shared by the stores so they page identically:
 * ids compare by UTF-16 code units (plain `<`, not locale order); the range is found by binary search, so a page
 * costs O(log n + limit) whatever the collection's size. `next` is null when nothing follows the page.
 */
export function pageOf<T>(ids: readonly string[], lookup: (id: string) => T, raw?: ScanOptions): ScanPage<T> {
  const options = checkScanOptions(raw);
  const limit = options.limit ?? DEFAULT_SCAN_LIMIT;
  // The rows in the scan: [lo, hi) of `ids`, narrowed by the range, the prefix, then the cursor.
  let lo = 0;
  let hi = ids.length;
  if (options.gte !== undefined) lo = Math.max(lo, lowerBound(ids, options.gte));
  if (options.lt !== undefined) hi = Math.min(hi, lowerBound(ids, options.lt));
  if (options.prefix !== undefined) {
    lo = Math.max(lo, lowerBound(ids, options.prefix));
    const end = prefixEnd(options.prefix);
    if (end !== null) hi = Math.min(hi, lowerBound(ids, end));
  }
  const items: Array<{ id: string; value: T }> = [];
  if (options.reverse === true) {
    if (options.after !== undefined) hi = Math.min(hi, lowerBound(ids, options.after)); // ids < after
    const stop = Math.max(lo, hi - limit);
    for (let i = hi - 1; i >= stop; i--) items.push({ id: ids[i]!, value: lookup(ids[i]!) });
    // Only a page that leaves rows behind has a cursor: an exactly full last page ends the scan without an empty page.
    return { items, next: stop > lo ? ids[stop]! : null };
  }
  if (options.after !== undefined) lo = Math.max(lo, upperBound(ids, options.after)); // ids > after
  const stop = Math.min(hi, lo + limit);
  for (let i = lo; i < stop; i++) items.push({ id: ids[i]!, value: lookup(ids[i]!) });
  return { items, next: stop < hi ? ids[stop - 1]! : null };
}

/**
 * The least string above every string that starts with `prefix`, or null when there is none (the prefix is empty or
 * all U+FFFF code units): the prefix with its last code unit below 0xFFFF raised by one and what follows dropped.
 */
export function prefixEnd(prefix: string): string | null {
  for (let i = prefix.length - 1; i >= 0; i--) {
    const unit = prefix.charCodeAt(i);
    if (unit < 0xffff) return prefix.slice(0, i) + String.fromCharCode(unit + 1);
  }
  return null;
}

/** The first index whose id is >= `id`. */
function lowerBound(ids: readonly string[], id: string): number {
  return firstIndex(ids, (x) => x >= id);
}

/** The first index whose id is > `id`. */
function upperBound(ids: readonly string[], id: string): number {
  return firstIndex(ids, (x) => x > id);
}

/** Binary search: the first index where `past` holds (it holds from some index on, in sorted ids). */
function firstIndex(ids: readonly string[], past: (id: string) => boolean): number {
  let lo = 0;
  let hi = ids.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (past(ids[mid]!)) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

/**
 * The ids of each scanned collection in ascending order, for the embedded stores: built (one sort) on the first scan
 * of a collection and kept sorted by every write after that, so a scan never sorts. Memory only; the records are the
 * truth. An insert is a binary search and a splice: O(log n) to find, a memmove of the ids above it (an append, for
 * time-ordered ids, moves nothing).
 */
export class SortedIds {
  private readonly collections = new Map<string, string[]>();

  /** The collection's ids, ascending; `ids` is read once, to build the index on the first scan. */
  get(collection: string, ids: () => Iterable<string>): readonly string[] {
    let sorted = this.collections.get(collection);
    if (!sorted) {
      sorted = [...ids()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
      this.collections.set(collection, sorted);
    }
    return sorted;
  }

  /** Call for every write: `existed` whether the id was there before it, `exists` whether it is after it. */
  update(collection: string, id: string, existed: boolean, exists: boolean): void {
    if (existed === exists) return;
    const sorted = this.collections.get(collection);
    if (!sorted) return;
    if (exists) {
      // Time-ordered ids arrive last: check the end before searching.
      if (sorted.length === 0 || sorted[sorted.length - 1]! < id) sorted.push(id);
      else sorted.splice(lowerBound(sorted, id), 0, id);
    } else {
      const at = lowerBound(sorted, id);
      if (sorted[at] === id) sorted.splice(at, 1);
    }
  }
}
