import { open, readFile, readdir, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Adapter } from 'lowdb';
import { StoreError } from '../errors.js';
import type { StoredRecord } from './store.js';

/** The whole store as it is on disk: `{ [collection]: { [id]: record } }`. */
export type StoreDocument = Record<string, Record<string, StoredRecord>>;

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * A lowdb adapter that writes durably. lowdb's own JSONFile renames a temp file but never fsyncs, so a power loss
 * can lose acknowledged writes; here each write is: temp file in the same directory (rename is atomic only within
 * one file system), fsync it, rename it over the store file, fsync the directory (which makes the rename durable).
 *
 * The document it reads is rebuilt from null-prototype objects so that an id such as `__proto__` is a plain key.
 */
export class DurableFile implements Adapter<StoreDocument> {
  private readonly dir: string;
  private readonly tempPrefix: string;
  private tempCounter = 0;
  /** Set when a read found the file corrupt: such a file is evidence for the operator and is never overwritten. */
  private corrupt = false;
  /** Each frozen record's encoding, `,"<id>":<json>` in UTF-8, kept from one flush to the next (see `serialize`). */
  private readonly encoded = new WeakMap<object, { id: string; bytes: Buffer }>();

  constructor(readonly path: string) {
    this.dir = dirname(path);
    this.tempPrefix = `.${basename(path)}.`;
  }

  async read(): Promise<StoreDocument | null> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw new StoreError('STORE_UNREADABLE', `cannot read the store file ${this.path}: ${String(err)}`, { cause: err });
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      throw this.corruption(`is not valid JSON (${(err as Error).message})`, err);
    }
    if (!isPlainObject(parsed)) throw this.corruption('is not a JSON object of collections');
    const doc: StoreDocument = Object.create(null);
    for (const [name, records] of Object.entries(parsed)) {
      if (!isPlainObject(records)) throw this.corruption(`has a collection "${name}" that is not an object of records`);
      const collection: Record<string, StoredRecord> = Object.create(null);
      for (const [id, record] of Object.entries(records)) {
        if (!isPlainObject(record)) throw this.corruption(`has a record "${name}/${id}" that is not an object`);
        collection[id] = record;
      }
      doc[name] = collection;
    }
    return doc;
  }

  async write(data: StoreDocument): Promise<void> {
    if (this.corrupt) throw new StoreError('STORE_CORRUPT', `refusing to overwrite the corrupt store file ${this.path}`);
    // Serialize before the first await: the snapshot is then exactly the document at the moment of the call.
    const { chunks, bytes } = this.serialize(data);
    const temp = join(this.dir, `${this.tempPrefix}${process.pid}.${++this.tempCounter}.tmp`);
    try {
      const file = await open(temp, 'wx', 0o600);
      try {
        // One writev (libuv writes every chunk, in IOV_MAX batches, or fails); a short count is an error all the same.
        const { bytesWritten } = await file.writev(chunks);
        if (bytesWritten !== bytes) throw new Error(`short write: ${bytesWritten} of ${bytes} bytes`);
        await file.sync();
      } finally {
        await file.close();
      }
      await rename(temp, this.path);
    } catch (err) {
      await rm(temp, { force: true }).catch(() => undefined);
      throw err;
    }
    const dir = await open(this.dir, 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  }

  /**
   * The document as UTF-8 chunks, byte for byte what `JSON.stringify(data)` gives. Stored records are frozen and a
   * put replaces a record instead of changing it, so a frozen record's JSON never changes: its encoding is made once
   * and reused by every later flush. Only the records put since the last flush are stringified. Stringifying the
   * whole document was most of a flush on a large store (about 70 ms at 20 MB, during which the event loop stood
   * still); this takes about 15 ms at that size, and no 20 MB string is built and converted on the way to the file.
   * The cost is memory: the encoded records (about the file's size) are kept beside the document.
   */
  private serialize(data: StoreDocument): { chunks: Buffer[]; bytes: number } {
    const chunks: Buffer[] = [];
    let bytes = 0;
    const push = (b: Buffer) => {
      chunks.push(b);
      bytes += b.length;
    };
    let firstCollection = true;
    push(Buffer.from('{'));
    for (const name of Object.keys(data)) {
      const records = data[name]!;
      push(Buffer.from(`${firstCollection ? '' : ','}${JSON.stringify(name)}:{`));
      firstCollection = false;
      let first = true;
      for (const id of Object.keys(records)) {
        const record = records[id];
        let entry = typeof record === 'object' && record !== null ? this.encoded.get(record) : undefined;
        if (entry === undefined || entry.id !== id) {
          const json = JSON.stringify(record) as string | undefined;
          if (json === undefined) continue; // as JSON.stringify does with an undefined member
          const text = `,${JSON.stringify(id)}:${json}`;
          const encoded = Buffer.allocUnsafeSlow(Buffer.byteLength(text)); // unpooled: no shared slab kept alive
          encoded.write(text);
          entry = { id, bytes: encoded };
          if (Object.isFrozen(record)) this.encoded.set(record as object, entry);
        }
        push(first ? entry.bytes.subarray(1) : entry.bytes);
        first = false;
      }
      push(Buffer.from('}'));
    }
    push(Buffer.from('}'));
    return { chunks, bytes };
  }

  /** Removes temp files left by a process killed mid-write. Call only while holding the data dir's lock. */
  async removeStaleTempFiles(): Promise<void> {
    for (const name of await readdir(this.dir)) {
      if (name.startsWith(this.tempPrefix) && name.endsWith('.tmp')) await rm(join(this.dir, name), { force: true });
    }
  }

  private corruption(what: string, cause?: unknown): StoreError {
    this.corrupt = true;
    return new StoreError(
      'STORE_CORRUPT',
      `the store file ${this.path} ${what}; it was left untouched: restore it from a backup or move it aside`,
      { cause },
    );
  }
}
