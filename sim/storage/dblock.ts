import fs from 'node:fs';
import path from 'node:path';
import { Files, syncDir } from './dbfiles.ts';
import { StorageCodes, StorageError } from './errors.ts';

/**
 * Who owns a dbpath: a process-wide registry (two engines on one dbpath would overwrite each other's blocks) and
 * `mongod.lock`, which holds the pid while an engine runs and is emptied by a clean shutdown, so a non-empty lock
 * at startup means the previous run crashed.
 */

const openDbpaths = new Set<string>();

/** A held dbpath. */
export interface DbpathLock {
  /** `mongod.lock` was non-empty: the previous run did not shut down cleanly. */
  readonly uncleanShutdown: boolean;
  /** Gives the dbpath back after a failed startup, restoring `mongod.lock` as it was. */
  abort(): void;
}

/** Claims `dbpath` for this process (DBPathInUse if an engine already has it) and writes the pid into `mongod.lock`. */
export function lockDbpath(dbpath: string): DbpathLock {
  const key = path.resolve(dbpath);
  if (openDbpaths.has(key)) {
    throw new StorageError(
      StorageCodes.DBPathInUse,
      `Unable to lock the lock file: ${path.join(dbpath, Files.mongodLock)}. ` +
        'Another mongod instance is already running on the dbpath',
    );
  }
  const lockFile = path.join(dbpath, Files.mongodLock);
  const previous = fs.existsSync(lockFile) ? fs.readFileSync(lockFile, 'utf8') : undefined;
  if (fs.existsSync(dbpath)) {
    fs.writeFileSync(lockFile, `${process.pid}\n`);
    fs.writeFileSync(path.join(dbpath, Files.wtLock), 'WiredTiger lock file\n');
  }
  openDbpaths.add(key);
  return {
    uncleanShutdown: (previous ?? '').trim() !== '',
    abort(): void {
      if (previous !== undefined) fs.writeFileSync(lockFile, previous);
      else fs.rmSync(lockFile, { force: true });
      openDbpaths.delete(key);
    },
  };
}

/** Releases `dbpath`; a clean shutdown also empties `mongod.lock` (a crash leaves the pid behind). */
export function unlockDbpath(dbpath: string, opts: { clean: boolean; fsync: boolean }): void {
  openDbpaths.delete(path.resolve(dbpath));
  if (opts.clean) {
    fs.writeFileSync(path.join(dbpath, Files.mongodLock), '');
    syncDir(dbpath, opts.fsync);
  }
}
