import { randomBytes } from 'node:crypto';
import type { BigIntStats } from 'node:fs';
import { link, lstat, open, readdir, rename, rm, type FileHandle } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { StoreError } from '../errors.js';

/** The lock file's name in the data dir. It holds the decimal pid of its holder. */
export const LOCK_FILE = 'greenroom.lock';

/** Lock paths this process holds or is acquiring: another process's pid check cannot tell us apart from ourselves. */
const heldHere = new Set<string>();

/**
 * Why a second look at a lock file that is empty or garbage: an older Greenroom created the file first and wrote its
 * pid after, so such a file may be one it is still writing. (Ours appear with their content complete.)
 */
const GARBAGE_RECHECK_MS = 100;
const MAX_ATTEMPTS = 5;
/** How much of a lock file is read: a pid line is shorter, and anything longer is garbage anyway. */
const MAX_LOCK_BYTES = 64;
/**
 * Temp files of the lock (see privateName) older than this are leftovers of a killed process. A `.stale` file is not
 * removed by anyone but its maker: one left behind may be a live process's lock that could not be put back.
 */
const STRAY_AGE_MS = 60_000;
const PRIVATE_NAME = /^greenroom\.lock\.[0-9a-f]{16}\.tmp$/;

/** One lock file as it was seen: which file (an inode) and what it held. */
interface LockFileSeen {
  readonly dev: bigint;
  readonly ino: bigint;
  readonly text: string;
}

/**
 * The exclusive lock of a data dir (one writer per store). Staleness rule: the lock is held while the pid in the file
 * is alive (`kill(pid, 0)` succeeds or fails with EPERM). A lock holding a dead pid, our own pid (a previous
 * incarnation: e.g. pid 1 in a restarted container) or garbage is stale and taken over. A live unrelated process
 * that reused a dead holder's pid keeps the dir locked: that fails safe, with a message that names the lock file.
 *
 * Taking over is safe against other processes doing the same at the same instant:
 * - The lock file appears with its content complete: our pid is written to a private temp file, which is then
 *   hard-linked to the lock's name. The link fails if the name exists, so exactly one of the racers gets it.
 * - A stale lock is removed only if the name still holds the very file judged stale (compare-and-delete): it is
 *   renamed to a private name, and deleted only if that is the same inode (kept open since it was judged, so the
 *   inode cannot be reused meanwhile) with the same content. Otherwise another process has taken over in between
 *   and we moved its live lock: it is linked back, and the next look finds that live holder (STORE_LOCKED).
 *   Which file it is, not a nonce written into it, tells locks apart: the file holds only the pid, as it always did,
 *   so an older Greenroom on the same data dir still reads a live lock as live (to it, `pid nonce` would be garbage,
 *   hence stale). A released lock is likewise removed only if it is still the file we created, holding our pid.
 *
 * What remains: while a live lock is moved aside (between the rename and the link back, a few system calls), its
 * name is free. A third process creating the lock in that instant wins it, the link back fails, and the process
 * whose lock was moved goes on as if it still held it: two holders. This needs a takeover to complete between our
 * last look at the name and our rename of it, and a third process to link in the window that follows.
 */
export class DataDirLock {
  private held = true;

  private constructor(
    readonly dir: string,
    readonly path: string,
    private readonly own: LockFileSeen,
  ) {}

  static async acquire(dir: string): Promise<DataDirLock> {
    const path = resolve(dir, LOCK_FILE);
    if (heldHere.has(path)) throw lockedError(dir, path, process.pid);
    heldHere.add(path);
    try {
      for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
        const own = await tryCreate(path);
        if (own) {
          await removeStrays(path);
          return new DataDirLock(dir, path, own);
        }
        const file = await openIfExists(path);
        if (!file) continue; // gone already: race for it again
        try {
          let seen = await readLockFile(file, path);
          let holder = parsePid(seen.text);
          if (holder === undefined) {
            await sleep(GARBAGE_RECHECK_MS);
            seen = await readLockFile(file, path);
            holder = parsePid(seen.text);
          }
          if (holder !== undefined && holder !== process.pid && isAlive(holder)) throw lockedError(dir, path, holder);
          // Stale: remove it, but only if it is still the file just judged, and race for the name again.
          await removeIfStill(path, seen);
        } finally {
          await file.close();
        }
      }
      throw new StoreError('STORE_LOCKED', `could not take the lock ${path} of the data dir ${dir}: it keeps changing hands`);
    } catch (err) {
      heldHere.delete(path);
      throw err;
    }
  }

  /** Removes the lock file, but only if it is still the one we created (never someone else's lock). Idempotent. */
  async release(): Promise<void> {
    if (!this.held) return;
    this.held = false;
    try {
      // The first look spares moving aside a lock that is plainly not ours; removeIfStill makes sure.
      const now = await lookAt(this.path);
      if (now && sameFile(now, this.own) && now.text === this.own.text) await removeIfStill(this.path, this.own);
    } finally {
      heldHere.delete(this.path);
    }
  }
}

/** A private name next to the lock file, unique to this call: `greenroom.lock.<nonce>.<kind>`. */
function privateName(path: string, kind: 'tmp' | 'stale'): string {
  return `${path}.${randomBytes(8).toString('hex')}.${kind}`;
}

/** Creates the lock file holding our pid, complete from its first instant; undefined if the name is taken. */
async function tryCreate(path: string): Promise<LockFileSeen | undefined> {
  const temp = privateName(path, 'tmp');
  const text = `${process.pid}\n`;
  let file: FileHandle;
  try {
    file = await open(temp, 'wx', 0o600);
  } catch (err) {
    throw new StoreError('STORE_UNREADABLE', `cannot create the lock file ${path}: ${String(err)}`, { cause: err });
  }
  try {
    let stats: BigIntStats;
    try {
      await file.writeFile(text, 'utf8');
      await file.sync();
      stats = await file.stat({ bigint: true });
    } catch (err) {
      throw new StoreError('STORE_UNREADABLE', `cannot write the lock file ${path}: ${String(err)}`, { cause: err });
    }
    try {
      await link(temp, path);
    } catch (err) {
      if (errno(err) === 'EEXIST') return undefined;
      throw new StoreError('STORE_UNREADABLE', `cannot create the lock file ${path}: ${String(err)}`, { cause: err });
    }
    return { dev: stats.dev, ino: stats.ino, text };
  } finally {
    await file.close().catch(() => undefined);
    await rm(temp, { force: true });
  }
}

/**
 * Compare-and-delete: removes the lock file only if `path` still names the file `seen` (same inode, same content).
 * The rename takes the name atomically; what it took is checked after, and put back if it was not `seen`.
 */
async function removeIfStill(path: string, seen: LockFileSeen): Promise<void> {
  const now = await statIfExists(path);
  if (!now || !sameFile(now, seen)) return; // replaced (or gone) already: nothing of ours to remove
  const aside = privateName(path, 'stale');
  try {
    await rename(path, aside);
  } catch (err) {
    if (errno(err) === 'ENOENT') return;
    const message = `cannot remove the stale lock file ${path}: ${String(err)}`;
    throw new StoreError('STORE_UNREADABLE', message, { cause: err });
  }
  // When in doubt (the check failed), it is put back: deleting a live lock is the one thing not to do.
  if (await isStill(aside, seen).catch(() => false)) {
    await rm(aside, { force: true });
    return;
  }
  // Another process's lock (or rewritten since it was judged): put it back. EEXIST is the window described on
  // DataDirLock: a third process has just created the lock, and the holder of the moved one cannot be told.
  try {
    await link(aside, path);
  } catch (err) {
    if (errno(err) !== 'EEXIST') {
      // Kept, not deleted: it may be the lock of a live process, for the operator to move back.
      const message = `cannot put the lock file ${path} back from ${aside}: ${String(err)}`;
      throw new StoreError('STORE_UNREADABLE', message, { cause: err });
    }
  }
  await rm(aside, { force: true });
}

/** Whether `path` is the file `seen`: the cheap inode check first, so a live lock moved by mistake is back soon. */
async function isStill(path: string, seen: LockFileSeen): Promise<boolean> {
  if (!sameFile(await lstat(path, { bigint: true }), seen)) return false;
  return (await lookAt(path))?.text === seen.text;
}

/** Which file `path` names and what it holds, or undefined if there is none. */
async function lookAt(path: string): Promise<LockFileSeen | undefined> {
  const file = await openIfExists(path);
  if (!file) return undefined;
  try {
    return await readLockFile(file, path);
  } finally {
    await file.close();
  }
}

/** Removes private files of the lock that a process killed mid-way left behind (best effort; we hold the lock). */
async function removeStrays(path: string): Promise<void> {
  const dir = dirname(path);
  try {
    for (const name of await readdir(dir)) {
      if (!PRIVATE_NAME.test(name)) continue;
      const stray = resolve(dir, name);
      const stats = await lstat(stray).catch(() => undefined);
      if (stats && Date.now() - stats.ctimeMs > STRAY_AGE_MS) await rm(stray, { force: true });
    }
  } catch {
    /* leftovers are harmless: the next holder tries again */
  }
}

async function openIfExists(path: string): Promise<FileHandle | undefined> {
  try {
    return await open(path, 'r');
  } catch (err) {
    if (errno(err) === 'ENOENT') return undefined;
    throw new StoreError('STORE_UNREADABLE', `cannot read the lock file ${path}: ${String(err)}`, { cause: err });
  }
}

async function statIfExists(path: string): Promise<BigIntStats | undefined> {
  try {
    return await lstat(path, { bigint: true });
  } catch (err) {
    if (errno(err) === 'ENOENT') return undefined;
    throw new StoreError('STORE_UNREADABLE', `cannot read the lock file ${path}: ${String(err)}`, { cause: err });
  }
}

/** Which file `file` is and what it holds now (read from its start, so it can be read again). */
async function readLockFile(file: FileHandle, path: string): Promise<LockFileSeen> {
  try {
    const stats = await file.stat({ bigint: true });
    const buffer = Buffer.alloc(MAX_LOCK_BYTES + 1);
    const { bytesRead } = await file.read(buffer, 0, buffer.length, 0);
    return { dev: stats.dev, ino: stats.ino, text: buffer.toString('utf8', 0, bytesRead) };
  } catch (err) {
    throw new StoreError('STORE_UNREADABLE', `cannot read the lock file ${path}: ${String(err)}`, { cause: err });
  }
}

function sameFile(stats: { dev: bigint; ino: bigint }, seen: LockFileSeen): boolean {
  return stats.dev === seen.dev && stats.ino === seen.ino;
}

/**
 * The holder's pid, or undefined for garbage. Only a positive integer is a pid: kill(0 or negative) would signal
 * whole process groups.
 */
function parsePid(text: string): number | undefined {
  return /^\s*[1-9]\d{0,9}\s*$/.test(text) ? Number(text) : undefined;
}

function errno(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to another user; only ESRCH means it is gone.
    return errno(err) === 'EPERM';
  }
}

function lockedError(dir: string, path: string, pid: number): StoreError {
  return new StoreError(
    'STORE_LOCKED',
    `the data dir ${dir} is in use by another process (pid ${pid}${pid === process.pid ? ', this one' : ''}): ` +
      `stop that Greenroom server or command first; if none runs, delete the stale lock file ${path}`,
  );
}
