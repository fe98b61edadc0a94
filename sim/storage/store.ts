import { randomInt } from 'node:crypto';
import { BSON, UUID } from 'mongodb';
import type { Document } from 'mongodb';
import type { BackupIds } from './backup-ids.ts';
import { OPLOG_NS, SystemIdents, catalogDoc, identFor, parseCatalogDoc, parseNs } from './catalog.ts';
import { DEFAULT_LAYOUT, type IdentLayout } from './dbfiles.ts';
import type { CollectionInfo } from './catalog.ts';
import { StorageCodes, StorageError } from './errors.ts';
import { idKey, tsKey } from './keys.ts';
import { VersionedTable } from './mvcc.ts';
import type { ReadAt } from './mvcc.ts';
import { BSON_READ } from './pages.ts';
import type { PageState } from './pages.ts';
import { formatTs } from './timestamps.ts';
import type { Ts } from './timestamps.ts';

/** One table ("ident"): its file, its versions in memory, and its pages as of the newest durable checkpoint. */
export interface Table {
  readonly ident: string;
  /** `<ident>.wt`. */
  readonly file: string;
  readonly fileId: number;
  /** Checkpointed with everything committed, whatever the stable timestamp (the oplog, as in WiredTiger). */
  readonly logged: boolean;
  /**
   * The table's versions. A table of a loaded checkpoint reads its pages on the first access (load.ts), as WiredTiger
   * reads a page when a cursor first needs it; a damaged page then fails that access with DataCorruptionDetected.
   */
  readonly data: VersionedTable;
  /** Whether {@link data} is in memory; a table never read is unchanged since the checkpoint it came from. */
  readonly loaded: boolean;
  /** Pages of the newest durable checkpoint; empty until the table is first checkpointed. */
  pages: PageState[];
}

/** Fills a table's versions and pages from its checkpoint; throws (and is called again next time) on a bad page. */
export type TableLoader = (data: VersionedTable, table: Table) => void;

class StoredTable implements Table {
  readonly file: string;
  pages: PageState[] = [];
  #data: VersionedTable | undefined;
  #load: TableLoader | undefined;

  constructor(
    readonly ident: string,
    readonly fileId: number,
    readonly logged: boolean,
    load: TableLoader | undefined,
  ) {
    this.file = `${ident}.wt`;
    if (load) this.#load = load;
    else this.#data = new VersionedTable();
  }

  get loaded(): boolean {
    return this.#data !== undefined;
  }

  get data(): VersionedTable {
    if (this.#data === undefined) {
      const data = new VersionedTable();
      this.#load!(data, this);
      this.#data = data;
      this.#load = undefined;
    }
    return this.#data;
  }
}

/**
 * The stored form of a document: a BSON round trip, so memory holds exactly what a restart would read back and the
 * caller keeps ownership of the object it passed in.
 */
export function canonical(doc: Document): Document {
  return BSON.deserialize(BSON.serialize(doc), BSON_READ);
}

/** How {@link Store.put} treats an existing or missing `_id`. */
export type PutMode = 'insert' | 'replace' | 'upsert';

/**
 * The engine's in-memory state: every table, the catalog on top of them, and the timestamps that bound reads and
 * writes. No I/O and no mode checks here; the engine decides who may call what.
 */
export class Store {
  readonly tables = new Map<string, Table>();
  /** Stable timestamp: what the next checkpoint captures. Null until first set (checkpoints are then unstable). */
  stable: Ts | null = null;
  /** Oldest timestamp: reads below it are refused and history below it is pruned. Trails the stable timestamp. */
  oldest: Ts | null = null;
  /** Newest oplog entry applied to the data tables. */
  lastApplied: Ts | null = null;
  nextFileId: number;
  nextIdent: number;
  /** Incremental backup ids (backup-ids.ts): written with every checkpoint, loaded with the durable one. */
  backupIds: BackupIds | null = null;
  /** Where new idents go (directoryPerDB / directoryForIndexes); set by storage startup from the node's options. */
  layout: IdentLayout = DEFAULT_LAYOUT;
  /**
   * Called for every table a collection or index creation adds: WiredTiger creates the table's file then (an empty
   * file with its descriptor), not at the next checkpoint. Set by the engine once the checkpointer exists.
   */
  onTableCreated: ((table: Table) => void) | undefined;
  /** Idents end in a number drawn once per run, like mongod's. */
  private readonly identSuffix = String(randomInt(1, 2 ** 47));

  constructor(nextFileId: number, nextIdent: number) {
    this.nextFileId = nextFileId;
    this.nextIdent = nextIdent;
  }

  /**
   * Registers a table with a known ident and file id (system tables and tables of a checkpoint); `load` fills it on
   * its first access, without it the table starts empty.
   */
  addTable(ident: string, fileId: number, logged: boolean, load?: TableLoader): Table {
    const table = new StoredTable(ident, fileId, logged, load);
    this.tables.set(ident, table);
    this.nextFileId = Math.max(this.nextFileId, fileId + 1);
    return table;
  }

  private newTable(ns: string, kind: 'collection' | 'index', logged: boolean): Table {
    const ident = identFor(this.layout, ns, kind, this.nextIdent++, this.identSuffix);
    const table = this.addTable(ident, this.nextFileId, logged);
    this.onTableCreated?.(table);
    return table;
  }

  private system(ident: string): Table {
    const table = this.tables.get(ident);
    if (!table) throw new Error(`system table ${ident} is missing`);
    return table;
  }

  /** `_mdb_catalog`. */
  get catalog(): Table {
    return this.system(SystemIdents.catalog);
  }

  /** `sizeStorer`. */
  get sizeStorer(): Table {
    return this.system(SystemIdents.sizeStorer);
  }

  /** Refuses reads below the oldest timestamp, whose history may be gone. */
  checkRead(at: ReadAt): void {
    if (at !== undefined && this.oldest !== null && at < this.oldest) {
      throw new StorageError(
        StorageCodes.SnapshotTooOld,
        `Read timestamp ${formatTs(at)} is older than the oldest available timestamp ${formatTs(this.oldest)}`,
      );
    }
  }

  /** Refuses timestamped writes at or before the stable timestamp, as WiredTiger does. */
  checkWriteTs(ts: Ts | null): void {
    if (ts !== null && this.stable !== null && ts <= this.stable) {
      throw new StorageError(
        StorageCodes.BadValue,
        `commit timestamp ${formatTs(ts)} must be after the stable timestamp ${formatTs(this.stable)}`,
      );
    }
  }

  /** The catalog entry of `ns` at `at`. */
  collection(ns: string, at: ReadAt): CollectionInfo | undefined {
    const doc = this.catalog.data.read(ns, at);
    return doc ? parseCatalogDoc(doc) : undefined;
  }

  /** Every collection at `at`, in namespace order. */
  listCollections(at: ReadAt): CollectionInfo[] {
    return [...this.catalog.data.scan(at)].map(([, doc]) => parseCatalogDoc(doc));
  }

  /** The record-store table of `ns` at `at`; throws NamespaceNotFound when it does not exist then. */
  table(ns: string, at: ReadAt): { info: CollectionInfo; table: Table } {
    const info = this.collection(ns, at);
    const table = info && this.tables.get(info.ident);
    if (!info || !table) throw new StorageError(StorageCodes.NamespaceNotFound, `ns not found: ${ns}`);
    return { info, table };
  }

  /** Creates a collection: catalog entry plus record store (and `_id` index, except for the oplog). */
  createCollection(ns: string, uuid: UUID | undefined, options: Document, ts: Ts | null): CollectionInfo {
    parseNs(ns);
    this.checkWriteTs(ts);
    if (this.collection(ns, undefined)) {
      throw new StorageError(StorageCodes.NamespaceExists, `Collection ${ns} already exists.`);
    }
    const isOplog = ns === OPLOG_NS;
    const record = this.newTable(ns, 'collection', isOplog);
    const base = { ns, ident: record.ident, uuid: uuid ?? new UUID(), options };
    const info: CollectionInfo = isOplog ? base : { ...base, idIndexIdent: this.newTable(ns, 'index', false).ident };
    this.catalog.data.write(ns, catalogDoc(info), ts);
    return info;
  }

  /** Drops a collection at `ts`: a catalog tombstone; the idents go when no checkpoint needs them. */
  dropCollection(ns: string, ts: Ts | null): boolean {
    this.checkWriteTs(ts);
    if (!this.collection(ns, undefined)) return false;
    this.catalog.data.write(ns, null, ts);
    return true;
  }

  /**
   * Writes a document by `_id`. Returns whether a document with that `_id` existed. `durable`: a prepared
   * transaction's commit, visible at `ts` (its commitTimestamp, which may be at or before the stable timestamp) and
   * durable at the commit entry's timestamp, which must be after it (WiredTiger's rule for prepared commits).
   */
  put(ns: string, doc: Document, ts: Ts | null, mode: PutMode, durable?: Ts): boolean {
    this.checkWriteTs(durable ?? ts);
    const { info, table } = this.table(ns, undefined);
    if (table.logged) throw new StorageError(StorageCodes.IllegalOperation, `cannot write to ${ns} by _id`);
    const key = idKey(doc._id);
    const existed = table.data.read(key, undefined) !== undefined;
    if (existed && mode === 'insert') {
      throw new StorageError(
        StorageCodes.DuplicateKey,
        `E11000 duplicate key error collection: ${ns} index: _id_ dup key: { _id: ${BSON.EJSON.stringify(doc._id as BSON.Document)} }`,
      );
    }
    if (!existed && mode === 'replace') return false;
    const stored = canonical(doc);
    table.data.write(key, stored, ts, durable);
    if (!existed && info.idIndexIdent) this.tables.get(info.idIndexIdent)?.data.write(key, { _id: stored._id }, ts, durable);
    return existed;
  }

  /** Deletes a document by `_id`. Returns whether it existed. `durable`: as for {@link put}. */
  remove(ns: string, id: unknown, ts: Ts | null, durable?: Ts): boolean {
    this.checkWriteTs(durable ?? ts);
    const { info, table } = this.table(ns, undefined);
    const key = idKey(id);
    if (table.data.read(key, undefined) === undefined) return false;
    table.data.write(key, null, ts, durable);
    if (info.idIndexIdent) this.tables.get(info.idIndexIdent)?.data.write(key, null, ts, durable);
    return true;
  }

  /** The oplog's table, created untimestamped on first use when `create` is set. */
  oplog(create: boolean): Table | undefined {
    let info = this.collection(OPLOG_NS, undefined);
    if (!info && create) info = this.createCollection(OPLOG_NS, undefined, { capped: true }, null);
    return info && this.tables.get(info.ident);
  }

  /** Inserts an oplog entry under its timestamp (no stable-timestamp check: the oplog is a logged table). */
  oplogInsert(entry: Document, ts: Ts): void {
    (this.oplog(true) as Table).data.write(tsKey(ts), canonical(entry), ts);
  }
}
