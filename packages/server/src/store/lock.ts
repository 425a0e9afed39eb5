import { open, readFile, rm } from 'node:fs/promises';
import { resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { StoreError } from '../errors.js';

/** The lock file's name in the data dir. It holds the decimal pid of its holder. */
export const LOCK_FILE = 'greenroom.lock';

/** Lock paths this process holds or is acquiring: another process's pid check cannot tell us apart from ourselves. */
const heldHere = new Set<string>();

/** Why a second try: a lock file seen empty may be one another process has just created and not yet written. */
const GARBAGE_RECHECK_MS = 100;
const MAX_ATTEMPTS = 5;

/**
 * The exclusive lock of a data dir (one writer per store). Staleness rule: the lock is held while the pid in the file
 * is alive (`kill(pid, 0)` succeeds or fails with EPERM). A lock holding a dead pid, our own pid (a previous
 * incarnation: e.g. pid 1 in a restarted container) or garbage is stale and taken over. A live unrelated process
 * that reused a dead holder's pid keeps the dir locked: that fails safe, with a message that names the lock file.
 */
export class DataDirLock {
  private held = true;

  private constructor(
    readonly dir: string,
    readonly path: string,
  ) {}

  static async acquire(dir: string): Promise<DataDirLock> {
    const path = resolve(dir, LOCK_FILE);
    if (heldHere.has(path)) throw lockedError(dir, path, process.pid);
    heldHere.add(path);
    try {
      for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
        if (await tryCreate(path)) return new DataDirLock(dir, path);
        let holder = await readHolder(path);
        if (holder === 'garbage') {
          await sleep(GARBAGE_RECHECK_MS);
          holder = await readHolder(path);
        }
        if (typeof holder === 'number' && holder !== process.pid && isAlive(holder)) {
          throw lockedError(dir, path, holder);
        }
        // Stale (or already gone): remove it and race for 'wx' again. Two processes taking over the same stale lock
        // at the same instant could both win; starting two servers on one dir at once is not a case we defend.
        if (holder !== 'missing') await rm(path, { force: true });
      }
      throw new StoreError('STORE_LOCKED', `could not take the lock ${path} of the data dir ${dir}: it keeps changing hands`);
    } catch (err) {
      heldHere.delete(path);
      throw err;
    }
  }

  /** Removes the lock file, but only if it still holds our pid (never someone else's lock). Idempotent. */
  async release(): Promise<void> {
    if (!this.held) return;
    this.held = false;
    try {
      if ((await readHolder(this.path)) === process.pid) await rm(this.path, { force: true });
    } finally {
      heldHere.delete(this.path);
    }
  }
}

/** Creates the lock file with our pid; false if it exists. */
async function tryCreate(path: string): Promise<boolean> {
  let file;
  try {
    file = await open(path, 'wx', 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw new StoreError('STORE_UNREADABLE', `cannot create the lock file ${path}: ${String(err)}`, { cause: err });
  }
  try {
    await file.writeFile(`${process.pid}\n`, 'utf8');
    await file.sync();
  } catch (err) {
    await file.close().catch(() => undefined);
    await rm(path, { force: true });
    throw new StoreError('STORE_UNREADABLE', `cannot write the lock file ${path}: ${String(err)}`, { cause: err });
  }
  await file.close();
  return true;
}

async function readHolder(path: string): Promise<number | 'missing' | 'garbage'> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'missing';
    throw new StoreError('STORE_UNREADABLE', `cannot read the lock file ${path}: ${String(err)}`, { cause: err });
  }
  // Only a positive integer is a pid: kill(0 or negative) would signal whole process groups.
  return /^\s*[1-9]\d{0,9}\s*$/.test(text) ? Number(text) : 'garbage';
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to another user; only ESRCH means it is gone.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function lockedError(dir: string, path: string, pid: number): StoreError {
  return new StoreError(
    'STORE_LOCKED',
    `the data dir ${dir} is in use by another process (pid ${pid}${pid === process.pid ? ', this one' : ''}): ` +
      `stop that Greenroom server or command first; if none runs, delete the stale lock file ${path}`,
  );
}
