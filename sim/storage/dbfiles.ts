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
  /** PSMDB's key database (data-at-rest encryption): a directory of its own (keydb.ts). */
  keyDb: 'key.db',
} as const;

/** Content of the `WiredTiger` version file. */
export const VERSION_TEXT = 'WiredTiger\nWiredTiger 11.2.0 (sim)\n';

/** Where collection and index files go (`--directoryperdb`, `--wiredTigerDirectoryForIndexes`). */
export interface IdentLayout {
  readonly directoryPerDB: boolean;
  readonly directoryForIndexes: boolean;
}

export const DEFAULT_LAYOUT: IdentLayout = { directoryPerDB: false, directoryForIndexes: false };

/**
 * `storage.bson`, as mongod writes it for WiredTiger (`WiredTigerFactory::createMetadataOptions`): the layout options
 * the dbpath was created with, which every later start must repeat (startup.ts).
 */
export function storageBson(layout: IdentLayout = DEFAULT_LAYOUT): Uint8Array {
  return BSON.serialize({
    storage: {
      engine: 'wiredTiger',
      options: { directoryPerDB: layout.directoryPerDB, directoryForIndexes: layout.directoryForIndexes, groupCollections: false },
    },
  });
}

/**
 * True for the per-collection idents' files, by their path relative to the dbpath: `collection-*.wt` and `index-*.wt`,
 * `<db>/collection-*.wt` with directoryPerDB, `collection/*.wt` and `index/*.wt` with directoryForIndexes, and
 * `<db>/collection/*.wt`, `<db>/index/*.wt` with both (catalog.ts `identFor`).
 */
export function isIdentFile(relative: string): boolean {
  return /^(?:[^/]+\/)?(?:(?:collection|index)-[^/]+|(?:collection|index)\/[^/]+)\.wt$/.test(relative);
}

/** Directories of a dbpath that never hold idents: the journal and PSMDB's key database. */
const NOT_IDENT_DIRS: ReadonlySet<string> = new Set([Files.journalDir, Files.keyDb]);

/** Every ident file under `dbpath` (two directory levels at most), as paths relative to it with `/`. */
export function listIdentFiles(dbpath: string): string[] {
  const out: string[] = [];
  const walk = (rel: string, depth: number) => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(path.join(dbpath, rel), { withFileTypes: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    for (const e of entries) {
      const child = rel === '' ? e.name : `${rel}/${e.name}`;
      if (e.isDirectory()) {
        if (depth < 2 && !(rel === '' && NOT_IDENT_DIRS.has(e.name))) walk(child, depth + 1);
      } else if (isIdentFile(child)) out.push(child);
    }
  };
  walk('', 0);
  return out.sort();
}

/**
 * Removes the now empty directories of a deleted ident file, up to (not including) the dbpath, as mongod does after
 * dropping an ident with directoryPerDB / directoryForIndexes.
 */
export function removeEmptyParents(dbpath: string, relative: string): void {
  for (let dir = path.posix.dirname(relative); dir !== '.' && dir !== ''; dir = path.posix.dirname(dir)) {
    try {
      fs.rmdirSync(path.join(dbpath, dir));
    } catch {
      return; // not empty (or already gone)
    }
  }
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
