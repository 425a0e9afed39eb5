/**
 * Values on their way into a store, checked the same way by every store that writes JSON (lowdb, Redis).
 */
import { StoreError } from '../errors.js';
import { deepFreeze } from './memory-store.js';
import type { Collection, StoredRecord } from './store.js';

/**
 * A frozen copy of a value to store, exactly what its JSON says, and that JSON. A value JSON cannot hold (a BigInt,
 * a cycle, a getter that throws) or that is not an object is STORE_INVALID_OPTION, a bug of the caller.
 */
export function toStoredValue(collection: Collection, id: string, value: StoredRecord): { value: StoredRecord; json: string } {
  let json: string | undefined;
  try {
    json = JSON.stringify(value);
  } catch (err) {
    throw new StoreError('STORE_INVALID_OPTION', `the value put at ${collection}/${id} is not JSON: ${(err as Error).message}`, { cause: err });
  }
  const parsed: unknown = json === undefined ? undefined : JSON.parse(json);
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new StoreError('STORE_INVALID_OPTION', `the value put at ${collection}/${id} is not a JSON object`);
  }
  return { value: deepFreeze(parsed as StoredRecord), json: json! };
}
