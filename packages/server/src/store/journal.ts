/**
 * The journal: an append-only file of the writes made since the snapshot, one line per `write(ops)` batch:
 *
 *     <crc32 of the JSON, 8 hex digits> <JSON: [["p", collection, id, record] | ["d", collection, id], ...]>\n
 *
 * A flush appends the lines of the batches it carries and fdatasyncs the file before any of them is acknowledged,
 * so a flush costs what it changed, not the size of the store. A line is one batch: after a crash a batch is
 * there whole (its line complete and its checksum right) or not at all (a torn last line, dropped at start-up).
 *
 * Journals are numbered `<store file>.journal.<n>`; compaction starts the next number, so at most two exist at a
 * time (the one a snapshot is being written from, and the one taking new writes).
 */
import { readdir, open, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { crc32 } from 'node:zlib';
import { StoreError } from '../errors.js';
import { syncDir } from './durable-file.js';
import { readLines } from './snapshot.js';
import type { StoredRecord } from './store.js';

export type JournalOp = ['p', string, string, StoredRecord] | ['d', string, string];

const NEWLINE = Buffer.from('\n');

/** The journal line of one batch; `ops` are pre-encoded op arrays (`["p","users","u1",{...}]`). */
export function journalLine(ops: readonly string[]): Buffer {
  const body = Buffer.from(`[${ops.join(',')}]`);
  const line = Buffer.allocUnsafeSlow(body.length + 10);
  line.write(crc32(body).toString(16).padStart(8, '0'), 0, 'latin1');
  line[8] = 0x20;
  body.copy(line, 9);
  NEWLINE.copy(line, body.length + 9);
  return line;
}

/** One op encoded for a journal line; `json` is the record's JSON (made once, when the write was checked). */
export function encodePut(collection: string, id: string, json: string): string {
  return `["p",${JSON.stringify(collection)},${JSON.stringify(id)},${json}]`;
}

export function encodeDelete(collection: string, id: string): string {
  return `["d",${JSON.stringify(collection)},${JSON.stringify(id)}]`;
}

/** The journal files of a store file, oldest first. */
export async function listJournals(storePath: string): Promise<Array<{ path: string; generation: number }>> {
  const prefix = `${basename(storePath)}.journal.`;
  const found: Array<{ path: string; generation: number }> = [];
  for (const name of await readdir(dirname(storePath))) {
    if (!name.startsWith(prefix)) continue;
    const rest = name.slice(prefix.length);
    if (/^[0-9]{1,15}$/.test(rest)) found.push({ path: join(dirname(storePath), name), generation: Number(rest) });
  }
  return found.sort((a, b) => a.generation - b.generation);
}

export function journalPath(storePath: string, generation: number): string {
  return `${storePath}.journal.${generation}`;
}

const HEX = /^[0-9a-f]{8}$/;

function isOp(op: unknown): op is JournalOp {
  if (!Array.isArray(op) || typeof op[1] !== 'string' || typeof op[2] !== 'string') return false;
  if (op[0] === 'd') return op.length === 3;
  return op[0] === 'p' && op.length === 4 && typeof op[3] === 'object' && op[3] !== null && !Array.isArray(op[3]);
}

/** A line's ops, or null if the line is not whole (wrong shape or checksum: a torn write). */
function decodeLine(line: Buffer, path: string, offset: number): JournalOp[] | null {
  if (line.length < 10 || line[8] !== 0x20) return null;
  const hex = line.toString('latin1', 0, 8);
  if (!HEX.test(hex)) return null;
  const body = line.subarray(9);
  if (crc32(body) !== parseInt(hex, 16)) return null;
  // The checksum holds, so this is a line the store wrote whole: if it does not decode, something else is wrong.
  let ops: unknown;
  try {
    ops = JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw corrupt(path, offset, 'holds a record that is not JSON', err);
  }
  if (!Array.isArray(ops) || !ops.every(isOp)) throw corrupt(path, offset, 'holds a record that is not a batch of writes');
  return ops;
}

function corrupt(path: string, offset: number, what: string, cause?: unknown): StoreError {
  return new StoreError(
    'STORE_CORRUPT',
    `the store journal ${path} ${what} at byte offset ${offset}; it was left untouched: restore the store from a backup or move the file aside`,
    { cause },
  );
}

/**
 * Replays journals in order, calling `apply` with each batch. A torn tail (the bytes from the first bad line on,
 * when no whole line follows them in this journal or a later one) is what a crash mid-append leaves: it is
 * reported, to be cut away. A bad line followed by a whole one is not a crash's doing: STORE_CORRUPT naming the file
 * and the byte offset, with nothing written to any file.
 */
export async function replayJournals(
  journals: ReadonlyArray<{ path: string }>,
  apply: (ops: JournalOp[]) => void,
): Promise<{ torn: Array<{ path: string; offset: number }>; sizes: number[] }> {
  let bad: { path: string; offset: number } | null = null;
  const torn: Array<{ path: string; offset: number }> = [];
  const sizes: number[] = [];
  for (const { path } of journals) {
    let file: FileHandle;
    try {
      file = await open(path, 'r');
    } catch (err) {
      throw new StoreError('STORE_UNREADABLE', `cannot read the store journal ${path}: ${String(err)}`, { cause: err });
    }
    let firstBad: number | null = null;
    try {
      const { size, tail, tailOffset } = await readLines(file, (line, offset) => {
        const ops = decodeLine(line, path, offset);
        if (ops === null) {
          bad ??= { path, offset };
          firstBad ??= offset;
          return;
        }
        if (bad) throw corrupt(bad.path, bad.offset, 'holds a damaged record followed by whole ones');
        apply(ops);
      });
      if (tail.length > 0) {
        bad ??= { path, offset: tailOffset };
        firstBad ??= tailOffset;
      }
      sizes.push(firstBad ?? size);
    } catch (err) {
      if (err instanceof StoreError) throw err;
      throw new StoreError('STORE_UNREADABLE', `cannot read the store journal ${path}: ${String(err)}`, { cause: err });
    } finally {
      await file.close();
    }
    if (firstBad !== null) torn.push({ path, offset: firstBad });
  }
  return { torn, sizes };
}

/** Cuts torn tails away, durably. */
export async function truncateTorn(torn: ReadonlyArray<{ path: string; offset: number }>): Promise<void> {
  for (const { path, offset } of torn) {
    const file = await open(path, 'r+');
    try {
      await file.truncate(offset);
      await file.sync();
    } finally {
      await file.close();
    }
  }
}

/** The journal taking appends. */
export class Journal {
  private constructor(
    readonly path: string,
    readonly generation: number,
    private readonly file: FileHandle,
    /** Bytes in the file. */
    public size: number,
    private readonly beforeSync?: () => Promise<void>,
  ) {}

  /** A new, empty journal; its creation is durable (directory fsync) before it is answered. */
  static async create(storePath: string, generation: number, beforeSync?: () => Promise<void>): Promise<Journal> {
    const path = journalPath(storePath, generation);
    const file = await open(path, 'wx', 0o600);
    try {
      await file.chmod(0o600); // exactly 0600, whatever the umask: it holds password hashes and sessions
      await syncDir(dirname(path));
    } catch (err) {
      await file.close();
      throw err;
    }
    return new Journal(path, generation, file, 0, beforeSync);
  }

  /** An existing journal (already replayed, its torn tail cut), appended to from `size` on. */
  static async reopen(path: string, generation: number, size: number, beforeSync?: () => Promise<void>): Promise<Journal> {
    return new Journal(path, generation, await open(path, 'a'), size, beforeSync);
  }

  /** Appends the lines and makes them durable (fdatasync) before answering. */
  async append(lines: readonly Buffer[]): Promise<void> {
    const bytes = lines.reduce((n, line) => n + line.length, 0);
    const { bytesWritten } = await this.file.writev(lines as Buffer[]);
    if (bytesWritten !== bytes) throw new Error(`short write to ${this.path}: ${bytesWritten} of ${bytes} bytes`);
    this.size += bytes;
    await this.beforeSync?.();
    await this.file.datasync();
  }

  async close(): Promise<void> {
    await this.file.close();
  }
}
