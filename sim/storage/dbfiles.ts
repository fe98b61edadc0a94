import fs from 'node:fs';
import path from 'node:path';
import { BSON } from 'mongodb';

/** File names in a dbpath, as WiredTiger and mongod spell them. */
export const Files = {
  version: 'WiredTiger',
  wtLock: 'WiredTiger.lock',
  mongodLock: 'mongod.lock',
  storageBson: 'storage.bson',
  turtle: 'WiredTiger.turtle',
  turtleSet: 'WiredTiger.turtle.set',
  metadata: 'WiredTiger.wt',
  backup: 'WiredTiger.backup',
  backupTmp: 'WiredTiger.backup.tmp',
  ongoingBackup: 'ongoingBackup.lock',
  historyStore: 'WiredTigerHS.wt',
  catalog: '_mdb_catalog.wt',
  sizeStorer: 'sizeStorer.wt',
  journalDir: 'journal',
} as const;

/** Content of the `WiredTiger` version file. */
export const VERSION_TEXT = 'WiredTiger\nWiredTiger 11.2.0 (sim)\n';

/** `storage.bson`, as mongod writes it for WiredTiger with default options. */
export function storageBson(): Uint8Array {
  return BSON.serialize({
    storage: { engine: 'wiredTiger', options: { directoryPerDB: false, directoryForIndexes: false } },
  });
}

/** True for `collection-*.wt` and `index-*.wt`, the per-collection idents. */
export function isIdentFile(name: string): boolean {
  return /^(collection|index)-.+\.wt$/.test(name);
}

/** fsync of a directory, so a rename or create in it survives a power loss. No-op when `fsync` is false. */
export function syncDir(dir: string, fsync = true): void {
  if (!fsync) return;
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Writes `data` to `dir/name` atomically: temporary file, fsync, rename, fsync of the directory. Without `fsync` the
 * rename still makes it atomic against a killed process, just not against power loss.
 */
export function writeAtomic(
  dir: string,
  name: string,
  data: string | Uint8Array,
  tmpName = `${name}.tmp`,
  fsync = true,
): void {
  const tmp = path.join(dir, tmpName);
  const fd = fs.openSync(tmp, 'w');
  try {
    fs.writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
    if (fsync) fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, path.join(dir, name));
  syncDir(dir, fsync);
}

/** Removes a file if present; reports whether it existed. */
export function removeIfExists(file: string): boolean {
  try {
    fs.unlinkSync(file);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

/** File size, or undefined when the file does not exist. */
export function sizeOf(file: string): number | undefined {
  try {
    return fs.statSync(file).size;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}
