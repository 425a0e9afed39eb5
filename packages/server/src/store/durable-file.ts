import { randomBytes } from 'node:crypto';
import { link, lstat, open, readdir, rename, rm, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { StoredRecord } from './store.js';

/** The whole store as it is on disk: `{ [collection]: { [id]: record } }`. */
export type StoreDocument = Record<string, Record<string, StoredRecord>>;

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Reads the text of a store file: the document (rebuilt from null-prototype objects, so that an id such as
 * `__proto__` is a plain key), or what is wrong with it, worded to follow "the file …". The store checks its file
 * with it at open, and `greenroom restore` checks a backup with it before putting it in place.
 */
export function parseStoreDocument(text: string): { ok: true; doc: StoreDocument } | { ok: false; problem: string; cause?: unknown } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    return { ok: false, problem: `is not valid JSON (${(err as Error).message})`, cause: err };
  }
  if (!isPlainObject(parsed)) return { ok: false, problem: 'is not a JSON object of collections' };
  const doc: StoreDocument = Object.create(null);
  for (const [name, records] of Object.entries(parsed)) {
    if (!isPlainObject(records)) return { ok: false, problem: `has a collection "${name}" that is not an object of records` };
    const collection: Record<string, StoredRecord> = Object.create(null);
    for (const [id, record] of Object.entries(records)) {
      if (!isPlainObject(record)) return { ok: false, problem: `has a record "${name}/${id}" that is not an object` };
      collection[id] = record;
    }
    doc[name] = collection;
  }
  return { ok: true, doc };
}

/** Removes temp files `.<name>.*.tmp` that a process killed mid-write left beside `path`. Only under the dir's lock. */
export async function removeStaleTempFiles(path: string): Promise<void> {
  const prefix = `.${basename(path)}.`;
  for (const name of await readdir(dirname(path))) {
    if (name.startsWith(prefix) && name.endsWith('.tmp')) await rm(join(dirname(path), name), { force: true });
  }
}

/** Fsyncs a directory, which makes the renames and links made in it durable. */
export async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Errors of a file system that has no hard links: there a new file takes its name by rename, after a look. */
const NO_LINKS = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS', 'EMLINK']);

/**
 * Writes a whole file durably, for backups and restores: `fill` writes the content into a temp file in the same
 * directory (mode 0600: a store holds password hashes and sessions), which is fsynced and then takes the name, and
 * the directory is fsynced. A crash leaves the old file or the new one under the name, never part of one (and at
 * most a temp file `.<name>.<pid>.<random>.tmp` beside it).
 *
 * With `overwrite` the name is taken by rename, replacing what was there. Without it, by a hard link, which fails
 * with EEXIST if the name exists (the existing file is then untouched): no window between a look and the write.
 * Answers the number of bytes written.
 */
export async function writeFileDurably(
  path: string,
  fill: (file: FileHandle) => Promise<number>,
  options: { overwrite: boolean; beforeSync?: () => Promise<void> },
): Promise<number> {
  const dir = dirname(path);
  const temp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  let bytes: number;
  const file = await open(temp, 'wx', 0o600);
  try {
    try {
      await file.chmod(0o600); // exactly 0600, whatever the umask
      bytes = await fill(file);
      await options.beforeSync?.();
      await file.sync();
    } finally {
      await file.close();
    }
    if (options.overwrite) await rename(temp, path);
    else await linkNew(temp, path);
  } finally {
    await rm(temp, { force: true }).catch(() => undefined);
  }
  await syncDir(dir);
  return bytes;
}

/** Gives the file `temp` the name `path` only if that name is free (EEXIST otherwise). */
async function linkNew(temp: string, path: string): Promise<void> {
  try {
    await link(temp, path);
  } catch (err) {
    if (!NO_LINKS.has((err as NodeJS.ErrnoException).code ?? '')) throw err;
    // No hard links here: the look and the rename are two steps, which is the best such a file system allows.
    const there = await lstat(path).then(
      () => true,
      (e: NodeJS.ErrnoException) => (e.code === 'ENOENT' ? false : Promise.reject(e)),
    );
    if (there) throw Object.assign(new Error(`EEXIST: file already exists, ${path}`), { code: 'EEXIST', path });
    await rename(temp, path);
  }
}

/** Writes buffers at the file's current position, all of them; answers the bytes written. */
export async function writeAll(file: FileHandle, chunks: readonly Buffer[]): Promise<number> {
  let total = 0;
  for (const chunk of chunks) {
    let done = 0;
    while (done < chunk.length) {
      const { bytesWritten } = await file.write(chunk, done, chunk.length - done);
      done += bytesWritten;
    }
    total += chunk.length;
  }
  return total;
}

/** Copies everything `source` holds, read through that one descriptor from its start, into `target`. */
export async function copyAll(source: FileHandle, target: FileHandle): Promise<number> {
  const buffer = Buffer.allocUnsafe(1 << 20);
  let position = 0;
  for (;;) {
    const { bytesRead } = await source.read(buffer, 0, buffer.length, position);
    if (bytesRead === 0) return position;
    await writeAll(target, [buffer.subarray(0, bytesRead)]);
    position += bytesRead;
  }
}
