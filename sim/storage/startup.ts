import fs from 'node:fs';
import path from 'node:path';
import { BSON } from 'mongodb';
import { BlockFile } from './blocks.ts';
import { SystemIdents } from './catalog.ts';
import { Checkpointer } from './checkpoint.ts';
import { DEFAULT_LAYOUT, Files, VERSION_TEXT, listIdentFiles, removeIfExists, storageBson, writeAtomic, type IdentLayout } from './dbfiles.ts';
import { StorageCodes, StorageError } from './errors.ts';
import { Journal, listLogNumbers, logFilePath, readJournal } from './journal.ts';
import { openKeyDb, type EncryptionOptions } from './keydb.ts';
import { loadCheckpoint, rebuildFromBackup, removeOrphanIdents } from './load.ts';
import type { CheckpointMeta } from './metadata.ts';
import type { OplogEntry } from './oplog.ts';
import { Store } from './store.ts';
import { isTimestamp, toTs } from './timestamps.ts';

/**
 * Storage-level startup, before replication recovery: prepare the dbpath (fresh engine, restored backup, or leftover
 * of a crash during a backup), load and verify the checkpoint, and replay the journal into the oplog table.
 */

/** Sizes that shape the files, and whether durability points fsync. */
export interface Geometry {
  readonly blockSize: number;
  readonly logFileSize: number;
  readonly pageTarget: number;
  readonly fsync: boolean;
}

/** The startup options that shape the dbpath and must match what it was created with. */
export interface LayoutOptions {
  /** `--directoryperdb`; undefined: as `storage.bson` records it (no check). */
  readonly directoryPerDB?: boolean;
  /** `--wiredTigerDirectoryForIndexes`; undefined: as `storage.bson` records it (no check). */
  readonly directoryForIndexes?: boolean;
  /** PSMDB's encryption at rest (keydb.ts); undefined: not encrypted. */
  readonly encryption?: EncryptionOptions;
}

/** The layout options `storage.bson` records (`storage.options`), or undefined when there is no such file. */
export function readStorageBson(dbpath: string): Partial<Record<keyof IdentLayout, unknown>> | undefined {
  const file = path.join(dbpath, Files.storageBson);
  if (!fs.existsSync(file)) return undefined;
  let doc: { storage?: { engine?: unknown; options?: Record<string, unknown> } };
  try {
    doc = BSON.deserialize(fs.readFileSync(file)) as typeof doc;
  } catch (e) {
    // mongod: fatal 28661 "Unable to read the storage engine metadata file".
    throw new StorageError(28661, `Unable to read the storage engine metadata file: ${(e as Error).message}`, { exitCode: 14 });
  }
  if (typeof doc.storage?.engine !== 'string') {
    throw new StorageError(28661, `Unable to read the storage engine metadata file: The 'storage.engine' field in metadata must be a string`, { exitCode: 14 });
  }
  return doc.storage.options ?? {};
}

/**
 * mongod's `StorageEngineMetadata::validateStorageEngineOption`, called by `WiredTigerFactory::validateMetadata` for
 * directoryPerDB then directoryForIndexes: a start whose option differs from the one `storage.bson` records is
 * refused (72 InvalidOptions, before WiredTiger opens anything). A field the file lacks is not checked.
 */
function validateLayout(recorded: Partial<Record<keyof IdentLayout, unknown>>, requested: LayoutOptions): void {
  for (const field of ['directoryPerDB', 'directoryForIndexes'] as const) {
    const want = requested[field];
    const have = recorded[field];
    if (want === undefined || have === undefined) continue;
    if (typeof have !== 'boolean') {
      throw new StorageError(9, `Expected boolean field ${field} but got ${typeof have} instead: ${field}: ${String(have)}`);
    }
    if (have !== want) {
      throw new StorageError(
        StorageCodes.InvalidOptions,
        `Requested option conflicts with current storage engine option for ${field}; you requested ${String(want)} ` +
          `but the current server storage is already set to ${String(have)} and cannot be changed`,
      );
    }
  }
}

/** The layout new idents get: the requested options, else what `storage.bson` records, else the defaults. */
function effectiveLayout(recorded: Partial<Record<keyof IdentLayout, unknown>> | undefined, requested: LayoutOptions): IdentLayout {
  const pick = (field: keyof IdentLayout): boolean => {
    const want = requested[field];
    if (want !== undefined) return want;
    const have = recorded?.[field];
    return typeof have === 'boolean' ? have : DEFAULT_LAYOUT[field];
  };
  return { directoryPerDB: pick('directoryPerDB'), directoryForIndexes: pick('directoryForIndexes') };
}

/** What storage startup did. */
export interface StartupReport {
  /** The dbpath was empty and a new engine was created. */
  readonly fresh: boolean;
  /** `WiredTiger.backup` was found and the metadata was rebuilt from it (a restored backup). */
  readonly restoredFromBackup: boolean;
  /** A crash during a backup left `ongoingBackup.lock`; its `WiredTiger.backup` was discarded. */
  readonly discardedBackupFile: boolean;
  /** Oplog entries journaled after the checkpoint's journal position, reinserted into the oplog. */
  readonly journalEntries: number;
  /** Ident files no checkpoint knew, removed. */
  readonly orphansRemoved: readonly string[];
}

/** The engine's parts after storage startup. */
export interface Started {
  readonly checkpointer: Checkpointer;
  readonly store: Store;
  readonly journal: Journal;
  /** The checkpoint recovery started from. */
  readonly meta: CheckpointMeta;
  readonly report: StartupReport;
}

/** A journal record for an oplog entry. */
export function oplogRecord(entry: OplogEntry): { oplog: OplogEntry } {
  return { oplog: entry };
}

function initialize(dbpath: string, geometry: Geometry, layout: IdentLayout): Omit<Started, 'report' | 'meta'> {
  // Leftovers of an interrupted initialization: no turtle was written, so nothing here was ever durable.
  for (const name of [Files.metadata, Files.catalog, Files.sizeStorer, Files.historyStore]) {
    removeIfExists(path.join(dbpath, name));
  }
  for (const n of listLogNumbers(dbpath)) removeIfExists(path.join(dbpath, logFilePath(n)));
  const { fsync } = geometry;
  if (!fs.existsSync(path.join(dbpath, Files.storageBson))) {
    writeAtomic(dbpath, Files.storageBson, storageBson(layout), undefined, fsync);
  }
  const metaFile = BlockFile.create(dbpath, Files.metadata, 0, geometry.blockSize, fsync);
  const store = new Store(1, 1);
  store.layout = layout;
  store.addTable(SystemIdents.catalog, 1, false);
  store.addTable(SystemIdents.sizeStorer, 2, false);
  store.addTable(SystemIdents.historyStore, 3, false);
  const empty: CheckpointMeta = {
    generation: 0,
    timestamp: null,
    appliedThrough: null,
    journal: { file: 0, offset: 0 },
    blockSize: geometry.blockSize,
    nextFileId: store.nextFileId,
    nextIdent: store.nextIdent,
    wallTime: new Date(),
    tables: [],
  };
  const durable = { meta: empty, metaBlocks: [] };
  const checkpointer = new Checkpointer(dbpath, metaFile, durable, [], geometry.pageTarget, fsync);
  const journal = Journal.open(dbpath, geometry.logFileSize, fsync);
  checkpointer.run(store, journal, false);
  // Written last: its presence is what tells a finished database from an interrupted initialization.
  writeAtomic(dbpath, Files.version, VERSION_TEXT, undefined, fsync);
  return { checkpointer, store, journal };
}

/** Runs storage startup on `dbpath`. Throws StorageError for anything that must stop a mongod from starting. */
export function startStorage(dbpath: string, geometry: Geometry, options: LayoutOptions = {}): Started {
  if (!fs.statSync(dbpath, { throwIfNoEntry: false })?.isDirectory()) {
    throw new StorageError(StorageCodes.NonExistentPath, `Data directory ${dbpath} not found.`);
  }
  // mongod checks storage.bson before the storage engine opens anything, then WiredTigerKVEngine opens the key
  // database (PSMDB) before the data files.
  const recorded = readStorageBson(dbpath);
  if (recorded) validateLayout(recorded, options);
  const layout = effectiveLayout(recorded, options);
  const hasData = [Files.turtle, Files.backup, Files.version].some((n) => fs.existsSync(path.join(dbpath, n)));
  openKeyDb(dbpath, options.encryption, hasData, geometry.fsync);
  removeIfExists(path.join(dbpath, Files.turtleSet));
  removeIfExists(path.join(dbpath, Files.backupTmp));
  let discardedBackupFile = false;
  if (removeIfExists(path.join(dbpath, Files.ongoingBackup))) {
    // mongod crashed with a backup cursor open: that WiredTiger.backup describes an old checkpoint of this very node.
    discardedBackupFile = removeIfExists(path.join(dbpath, Files.backup));
  }
  let restoredFromBackup = false;
  if (fs.existsSync(path.join(dbpath, Files.backup))) {
    rebuildFromBackup(dbpath, geometry.fsync);
    restoredFromBackup = true;
  }
  const report = { restoredFromBackup, discardedBackupFile };
  if (!fs.existsSync(path.join(dbpath, Files.turtle))) {
    const leftovers = [...(fs.existsSync(path.join(dbpath, Files.version)) ? [Files.version] : []), ...listIdentFiles(dbpath)];
    if (leftovers.length > 0) {
      throw new StorageError(
        StorageCodes.NonExistentPath,
        `${Files.turtle} is missing and there is no ${Files.backup} to rebuild it from, but the dbpath holds ` +
          `${leftovers.slice(0, 3).join(', ')}${leftovers.length > 3 ? ', …' : ''}`,
      );
    }
    const parts = initialize(dbpath, geometry, layout);
    const meta = parts.checkpointer.durable;
    return { ...parts, meta, report: { ...report, fresh: true, journalEntries: 0, orphansRemoved: [] } };
  }
  if (!recorded) {
    // mongod records the options of this start when the file is missing (a restore that did not copy it).
    writeAtomic(dbpath, Files.storageBson, storageBson(layout), undefined, geometry.fsync);
  }
  if (!fs.existsSync(path.join(dbpath, Files.version))) {
    writeAtomic(dbpath, Files.version, VERSION_TEXT, undefined, geometry.fsync);
  }
  const { checkpointer, store, meta } = loadCheckpoint(dbpath, geometry.pageTarget, geometry.fsync);
  store.layout = layout;
  try {
    const orphansRemoved = removeOrphanIdents(dbpath, meta);
    const replay = readJournal(dbpath, meta.journal, meta.generation);
    let journalEntries = 0;
    for (const record of replay.records) {
      const entry = record.oplog as OplogEntry | undefined;
      if (!entry || !isTimestamp(entry.ts)) {
        throw new StorageError(StorageCodes.DataCorruptionDetected, `journal record is not an oplog entry`);
      }
      // The oplog is checkpointed whole, so everything journaled after the checkpoint's position is missing from it.
      store.oplogInsert(entry, toTs(entry.ts));
      journalEntries++;
    }
    const journal = Journal.open(dbpath, geometry.logFileSize, geometry.fsync);
    return { checkpointer, store, journal, meta, report: { ...report, fresh: false, journalEntries, orphansRemoved } };
  } catch (err) {
    checkpointer.close();
    throw err;
  }
}
