/**
 * Backups of the store: the errors `greenroom backup` and `greenroom restore` report, and the checks both make on
 * a backup's path. The stores write backups (Store.backup); LowdbStore.restore puts one in place.
 */
import { realpath } from 'node:fs/promises';
import { basename, dirname, isAbsolute } from 'node:path';

/** The name the store replaced by a restore is kept under, after the store file's own name. */
export const BEFORE_RESTORE_SUFFIX = '.before-restore';

export type BackupErrorCode =
  /** The backup file exists and overwriting was not asked for. */
  | 'BACKUP_EXISTS'
  /** A path a backup may not be written to: not absolute, or one of the data dir's own files. */
  | 'BACKUP_BAD_TARGET'
  /** The file given to restore is not a store backup (not JSON, or not the store's document shape). */
  | 'BACKUP_INVALID'
  /** The file given to restore cannot be read. */
  | 'BACKUP_UNREADABLE'
  /** Writing the backup (or the restored store) failed; the target name holds what it held before. */
  | 'BACKUP_WRITE_FAILED'
  /** The store in use cannot make backups. */
  | 'BACKUP_UNSUPPORTED';

/** An operator-facing error of a backup or a restore (its message may name files: it is never sent to a client). */
export class BackupError extends Error {
  override readonly name = 'BackupError';
  constructor(
    readonly code: BackupErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export function isBackupErrorCode(code: string): code is BackupErrorCode {
  return /^BACKUP_(EXISTS|BAD_TARGET|INVALID|UNREADABLE|WRITE_FAILED|UNSUPPORTED)$/.test(code);
}

/**
 * Refuses a backup path that is relative, or that names one of the data dir's own files (`greenroom.*`, `secret`, and
 * the temp files beside them): written over the store file, a backup could put back a state older than writes
 * already acknowledged; over the lock or the socket, it would break them.
 */
export async function checkBackupTarget(file: string, dataDir: string | null): Promise<void> {
  if (!isAbsolute(file)) throw new BackupError('BACKUP_BAD_TARGET', `the backup path must be absolute (got ${JSON.stringify(file)})`);
  if (file.includes('\0')) throw new BackupError('BACKUP_BAD_TARGET', 'the backup path must not hold a NUL byte');
  if (dataDir === null) return;
  const name = basename(file);
  if (!(name === 'secret' || name.startsWith('greenroom.') || name.startsWith('.greenroom.'))) return;
  const [targetDir, ownDir] = await Promise.all([realpath(dirname(file)).catch(() => null), realpath(dataDir).catch(() => null)]);
  if (targetDir !== null && targetDir === ownDir) {
    throw new BackupError('BACKUP_BAD_TARGET', `refusing to write a backup over the data dir's own file ${file}: choose another name or directory`);
  }
}

/** The BackupError for a failed write of `file`: EEXIST is BACKUP_EXISTS, anything else BACKUP_WRITE_FAILED. */
export function backupWriteError(file: string, err: unknown): BackupError {
  if (err instanceof BackupError) return err;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'EEXIST') {
    return new BackupError('BACKUP_EXISTS', `${file} exists already: it was left as it is (use --force to replace it)`, { cause: err });
  }
  return new BackupError('BACKUP_WRITE_FAILED', `cannot write the backup ${file}: ${code ?? String(err)}`, { cause: err });
}
