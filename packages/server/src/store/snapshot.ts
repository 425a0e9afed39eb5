/**
 * The snapshot file: lowdb's document `{ [collection]: { [id]: record } }` as JSON, written one record per line so
 * that a store of any size is written and read in chunks, never as one string (V8 strings stop at about 512 MB):
 *
 *     {
 *     "users":{
 *     "u1":{...}
 *     ,"u2":{...}
 *     }
 *     ,"sessions":{
 *     ...
 *     }
 *     }
 *
 * Names and ids are JSON-encoded, so no raw newline appears inside a line. Any other valid JSON layout of the same
 * document (a single-line file, a hand-made backup) is read too, by one JSON.parse of the whole text.
 */
import { readSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import type { Adapter } from 'lowdb';
import { StoreError } from '../errors.js';
import { parseStoreDocument, writeFileDurably } from './durable-file.js';
import { deepFreeze } from './memory-store.js';
import type { StoredRecord } from './store.js';

/** The store in memory: collection → id → frozen record. Maps, not objects: their keys list in milliseconds. */
export type StoreData = Map<string, Map<string, StoredRecord>>;

/** What a snapshot writes: each collection's ids (in order) and the value of each at the snapshot's moment. */
export interface SnapshotSource {
  collections(): Iterable<{ name: string; ids: Iterable<string>; value: (id: string) => StoredRecord | undefined }>;
}

/** The whole of `data` as it is while the writer reads it. */
export function wholeSource(data: StoreData): SnapshotSource {
  return {
    *collections() {
      for (const [name, records] of data) yield { name, ids: [...records.keys()], value: (id: string) => records.get(id) };
    },
  };
}

const READ_CHUNK = 4 << 20;
/** About this many bytes of records are encoded between two writes (each write yields to the event loop). */
const WRITE_CHUNK = 1 << 20;
/** Past this a file is not turned into one string (the whole-text fallback). */
const MAX_TEXT = 256 << 20;

/**
 * Calls `onLine` for every complete line (without its newline) of the file read through `file` from its start,
 * with the line's byte offset; a line is a view valid only during the call. Answers the file's size and the bytes
 * after the last newline (an incomplete last line) with their offset.
 */
export async function readLines(
  file: FileHandle,
  onLine: (line: Buffer, offset: number) => void,
): Promise<{ size: number; tail: Buffer; tailOffset: number }> {
  let carry = Buffer.alloc(0);
  let carryOffset = 0;
  let position = 0;
  const chunk = Buffer.allocUnsafe(READ_CHUNK);
  for (;;) {
    // Read synchronously: this runs at start-up (and in offline commands), where a round trip through the thread
    // pool per chunk cost half of a large store's load time on a busy machine.
    const bytesRead = readSync(file.fd, chunk, 0, chunk.length, position);
    if (bytesRead === 0) break;
    position += bytesRead;
    const data = carry.length === 0 ? chunk.subarray(0, bytesRead) : Buffer.concat([carry, chunk.subarray(0, bytesRead)]);
    let start = 0;
    for (let nl = data.indexOf(10, start); nl !== -1; nl = data.indexOf(10, start)) {
      onLine(data.subarray(start, nl), carryOffset + start);
      start = nl + 1;
    }
    // Copied: the read buffer is reused by the next read.
    carry = Buffer.from(data.subarray(start));
    carryOffset += start;
  }
  return { size: position, tail: carry, tailOffset: carryOffset };
}

/** Thrown inside the line reader when the file is not in the line layout; the whole-text reading then decides. */
class NotLineLayout extends Error {}

const OPEN = 0x7b; // {
const CLOSE = 0x7d; // }
const COMMA = 0x2c;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COLON = 0x3a;

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The index of the quote that ends the JSON string starting at `from` (a quote), or -1. */
function stringEnd(line: Buffer, from: number): number {
  for (let i = from + 1; i < line.length; i++) {
    const byte = line[i];
    if (byte === BACKSLASH) i++;
    else if (byte === QUOTE) return i;
  }
  return -1;
}

/** Reads a file in the line layout; throws NotLineLayout at the first line that does not fit it. */
async function readLineLayout(file: FileHandle): Promise<{ data: StoreData; size: number }> {
  const data: StoreData = new Map();
  let state: 'start' | 'collections' | 'records' | 'end' = 'start';
  let firstCollection = true;
  let firstRecord = true;
  let records: Map<string, StoredRecord> | null = null;
  const onLine = (line: Buffer) => {
    if (state === 'records') {
      if (line.length === 1 && line[0] === CLOSE) {
        state = 'collections';
        return;
      }
      const at = firstRecord ? 0 : 1;
      if (!firstRecord && line[0] !== COMMA) throw new NotLineLayout();
      if (line[at] !== QUOTE) throw new NotLineLayout();
      const end = stringEnd(line, at);
      if (end === -1 || line[end + 1] !== COLON) throw new NotLineLayout();
      let id: unknown;
      let value: unknown;
      try {
        // Most ids hold no escape: their text is the id.
        const plain = line.indexOf(BACKSLASH, at) === -1 || line.indexOf(BACKSLASH, at) > end;
        id = plain ? line.toString('utf8', at + 1, end) : JSON.parse(line.toString('utf8', at, end + 1));
        value = JSON.parse(line.toString('utf8', end + 2));
      } catch {
        throw new NotLineLayout();
      }
      if (typeof id !== 'string' || !isPlainObject(value)) throw new NotLineLayout();
      records!.set(id, deepFreeze(value));
      firstRecord = false;
    } else if (state === 'collections') {
      if (line.length === 1 && line[0] === CLOSE) {
        state = 'end';
        return;
      }
      const at = firstCollection ? 0 : 1;
      if (!firstCollection && line[0] !== COMMA) throw new NotLineLayout();
      if (line[at] !== QUOTE) throw new NotLineLayout();
      const end = stringEnd(line, at);
      if (end === -1 || end + 3 !== line.length || line[end + 1] !== COLON || line[end + 2] !== OPEN) throw new NotLineLayout();
      let name: unknown;
      try {
        name = JSON.parse(line.toString('utf8', at, end + 1));
      } catch {
        throw new NotLineLayout();
      }
      if (typeof name !== 'string') throw new NotLineLayout();
      // As JSON.parse does, a name given twice keeps the later one.
      data.set(name, (records = new Map()));
      firstCollection = false;
      firstRecord = true;
      state = 'records';
    } else if (state === 'start') {
      if (!(line.length === 1 && line[0] === OPEN)) throw new NotLineLayout();
      state = 'collections';
    } else if (line.toString('utf8').trim() !== '') {
      throw new NotLineLayout();
    }
  };
  const { size, tail } = await readLines(file, onLine);
  if (tail.length > 0) onLine(tail);
  if ((state as string) !== 'end') throw new NotLineLayout(); // set by the callback
  return { data, size };
}

/**
 * Reads a snapshot file: its records (frozen) and its size in bytes, or null if there is no such file. A file that
 * is not the store's document is STORE_CORRUPT naming the file, one that cannot be read STORE_UNREADABLE; either
 * way nothing is written to it.
 */
export async function readSnapshot(path: string): Promise<{ data: StoreData; size: number } | null> {
  let file: FileHandle;
  try {
    file = await open(path, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new StoreError('STORE_UNREADABLE', `cannot read the store file ${path}: ${String(err)}`, { cause: err });
  }
  try {
    const checked = await checkSnapshot(file);
    if (!checked.ok) {
      throw new StoreError('STORE_CORRUPT', `the store file ${path} ${checked.problem}; it was left untouched: restore it from a backup or move it aside`, {
        cause: checked.cause,
      });
    }
    return checked;
  } catch (err) {
    if (err instanceof StoreError) throw err;
    throw new StoreError('STORE_UNREADABLE', `cannot read the store file ${path}: ${String(err)}`, { cause: err });
  } finally {
    await file.close();
  }
}

/**
 * Reads a store document through an open file: the line layout first, else any JSON layout by one parse of the
 * whole text. Answers the records, or what is wrong with the file (worded to follow "the file …").
 */
export async function checkSnapshot(
  file: FileHandle,
): Promise<{ ok: true; data: StoreData; size: number } | { ok: false; problem: string; cause?: unknown }> {
  try {
    return { ok: true, ...(await readLineLayout(file)) };
  } catch (err) {
    if (!(err instanceof NotLineLayout)) throw err;
  }
  const { size } = await file.stat();
  if (size > MAX_TEXT) return { ok: false, problem: `is not a store document in the line layout, and at ${size} bytes is too large to read whole` };
  const text = (await readAllFrom(file)).toString('utf8');
  const parsed = parseStoreDocument(text);
  if (!parsed.ok) return parsed;
  const data: StoreData = new Map();
  for (const [name, records] of Object.entries(parsed.doc)) {
    const map = new Map<string, StoredRecord>();
    for (const [id, record] of Object.entries(records)) map.set(id, deepFreeze(record));
    data.set(name, map);
  }
  return { ok: true, data, size };
}

/** The whole file, read from its start through positioned reads (the handle's own position is never relied on). */
async function readAllFrom(file: FileHandle): Promise<Buffer> {
  const { size } = await file.stat();
  const buffer = Buffer.allocUnsafe(size);
  let done = 0;
  while (done < size) {
    const { bytesRead } = await file.read(buffer, done, size - done, done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return buffer.subarray(0, done);
}

/**
 * Writes `source` in the line layout at the file's current position, about WRITE_CHUNK bytes a write: between
 * chunks the event loop runs (a large store is never encoded in one synchronous pass). Answers the bytes written.
 */
export async function writeSnapshot(file: FileHandle, source: SnapshotSource): Promise<number> {
  let parts: string[] = ['{\n'];
  let pending = 2;
  let total = 0;
  const flush = async () => {
    const bytes = Buffer.from(parts.join(''));
    parts = [];
    pending = 0;
    let done = 0;
    while (done < bytes.length) done += (await file.write(bytes, done, bytes.length - done)).bytesWritten;
    total += bytes.length;
  };
  let firstCollection = true;
  for (const { name, ids, value } of source.collections()) {
    const header = `${firstCollection ? '' : ','}${JSON.stringify(name)}:{\n`;
    parts.push(header);
    pending += header.length;
    firstCollection = false;
    let firstRecord = true;
    for (const id of ids) {
      const record = value(id);
      if (record === undefined) continue;
      const line = `${firstRecord ? '' : ','}${JSON.stringify(id)}:${JSON.stringify(record)}\n`;
      parts.push(line);
      pending += line.length;
      firstRecord = false;
      if (pending >= WRITE_CHUNK) await flush();
    }
    parts.push('}\n');
    pending += 2;
  }
  parts.push('}\n');
  await flush();
  return total;
}

/**
 * The snapshot as a lowdb adapter: `read` loads it (line layout or any JSON layout), `write` replaces it durably
 * with the whole of the given data (temp file, fsync, rename, directory fsync).
 */
export class SnapshotFile implements Adapter<StoreData> {
  /** The size of the file as last read or written. */
  size = 0;

  constructor(
    readonly path: string,
    private readonly beforeSync?: () => Promise<void>,
  ) {}

  async read(): Promise<StoreData | null> {
    const read = await readSnapshot(this.path);
    this.size = read?.size ?? 0;
    return read?.data ?? null;
  }

  async write(data: StoreData): Promise<void> {
    await this.writeFrom(wholeSource(data));
  }

  /** Replaces the file durably with what `source` gives. */
  async writeFrom(source: SnapshotSource): Promise<void> {
    this.size = await writeFileDurably(this.path, (file) => writeSnapshot(file, source), { overwrite: true, beforeSync: this.beforeSync });
  }
}
