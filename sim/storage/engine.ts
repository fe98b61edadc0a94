import path from 'node:path';
import { BSON } from 'mongodb';
import type { Document, Timestamp, UUID } from 'mongodb';
import type { BackupIds } from './backup-ids.ts';
import { DEFAULT_BLOCK_SIZE } from './blocks.ts';
import type { CollectionInfo } from './catalog.ts';
import type { Checkpointer } from './checkpoint.ts';
import { checkpointInfo, replicationSummary } from './api.ts';
import type { CheckpointInfo, LogFileInfo, RecoveryReport, StorageEngineOptions } from './api.ts';
import { sizeOf } from './dbfiles.ts';
import { lockDbpath, unlockDbpath } from './dblock.ts';
import { StorageCodes, StorageError } from './errors.ts';
import { DEFAULT_LOG_FILE_SIZE, listLogNumbers, logFilePath } from './journal.ts';
import type { Journal } from './journal.ts';
import { idKey, tsKey } from './keys.ts';
import { applyEntry, validateEntry } from './oplog.ts';
import type { OplogEntry } from './oplog.ts';
import { recoverReplication } from './replication.ts';
import type { StartMode } from './replication.ts';
import { Pin } from './pin.ts';
import type { CheckpointPin } from './pin.ts';
import { oplogRecord, startStorage } from './startup.ts';
import type { Store } from './store.ts';
import { formatTs, fromTs, toTs } from './timestamps.ts';
import type { Ts } from './timestamps.ts';

function tsOf(ts: Timestamp | undefined): Ts | null {
  return ts === undefined ? null : toTs(ts);
}

/**
 * The simulator's storage engine for one mongod: versioned tables checkpointed into WiredTiger-named block files, a
 * journal of oplog entries, and MongoDB's startup recovery. Every method is synchronous, so no write interleaves with
 * a checkpoint. Documents returned by reads are shared with the engine and must not be mutated.
 */
export class StorageEngine {
  readonly dbpath: string;
  readonly mode: StartMode;
  readonly recovery: RecoveryReport;
  private readonly store: Store;
  private readonly journal: Journal;
  private readonly checkpointer: Checkpointer;
  private readonly takeUnstable: boolean;
  private readonly fsync: boolean;
  private readonly historyWindow: bigint;
  private pin: Pin | null = null;
  private open = true;
  private readonly oplogSizeBytes: number | undefined;
  /** Bytes of BSON the oplog holds; counted on the first append after the open. */
  private oplogBytes: number | undefined;

  private constructor(
    options: StorageEngineOptions,
    parts: { store: Store; journal: Journal; checkpointer: Checkpointer; recovery: RecoveryReport },
  ) {
    this.dbpath = options.dbpath;
    this.mode = options.mode;
    this.takeUnstable = options.takeUnstableCheckpointOnShutdown ?? false;
    this.fsync = options.fsync ?? true;
    this.historyWindow = BigInt(options.historyWindowSeconds ?? 300);
    this.oplogSizeBytes = options.oplogSizeBytes;
    this.store = parts.store;
    this.journal = parts.journal;
    this.checkpointer = parts.checkpointer;
    this.recovery = parts.recovery;
  }

  /**
   * Opens (or creates) the engine on `dbpath` and runs startup recovery: rebuild from `WiredTiger.backup` if present,
   * load and verify the checkpoint, replay the journal into the oplog, then replication recovery for the mode.
   * Throws {@link StorageError} when the node must not start.
   */
  static open(options: StorageEngineOptions): StorageEngine {
    const lock = lockDbpath(options.dbpath);
    try {
      const blockSize = options.blockSize ?? DEFAULT_BLOCK_SIZE;
      const geometry = {
        blockSize,
        logFileSize: options.logFileSize ?? DEFAULT_LOG_FILE_SIZE,
        pageTarget: options.pageTarget ?? blockSize * 2,
        fsync: options.fsync ?? true,
      };
      const started = startStorage(options.dbpath, geometry, {
        directoryPerDB: options.directoryPerDB,
        directoryForIndexes: options.directoryForIndexes,
        encryption: options.encryption,
      });
      const { store, journal, checkpointer, meta } = started;
      store.onTableCreated = (table) => checkpointer.createTableFile(table);
      try {
        const takeUnstable = options.takeUnstableCheckpointOnShutdown ?? false;
        const replication = recoverReplication(store, meta, options.mode, takeUnstable);
        // Truncation and the reset truncate point must not depend on the next crash being kind: make them durable.
        if (replication.truncateAfterPoint !== null) checkpointer.run(store, journal, false);
        const recovery: RecoveryReport = {
          ...started.report,
          mode: options.mode,
          uncleanShutdown: lock.uncleanShutdown,
          checkpoint: checkpointInfo(meta),
          replication: replicationSummary(replication),
        };
        return new StorageEngine(options, { store, journal, checkpointer, recovery });
      } catch (err) {
        journal.abandon();
        checkpointer.close();
        throw err;
      }
    } catch (err) {
      lock.abort();
      throw err;
    }
  }

  private live(): void {
    if (!this.open) throw new StorageError(StorageCodes.IllegalOperation, `storage engine on ${this.dbpath} is closed`);
  }

  private writable(): void {
    this.live();
    if (this.mode === 'recoverFromOplogAsStandalone') {
      throw new StorageError(
        StorageCodes.IllegalOperation,
        'Cannot write: the node is read-only while started with recoverFromOplogAsStandalone',
      );
    }
  }

  private at(ts: Timestamp | undefined): Ts | undefined {
    this.live();
    const at = ts === undefined ? undefined : toTs(ts);
    this.store.checkRead(at);
    return at;
  }

  // ---- catalog -------------------------------------------------------------------------------------------------

  /** Creates a collection (and its `_id` index), at `ts` or untimestamped. NamespaceExists if it exists. */
  createCollection(ns: string, opts: { uuid?: UUID; options?: Document; ts?: Timestamp } = {}): CollectionInfo {
    this.writable();
    return this.store.createCollection(ns, opts.uuid, opts.options ?? {}, tsOf(opts.ts));
  }

  /** Drops a collection at `ts` or untimestamped; false if it did not exist. */
  dropCollection(ns: string, ts?: Timestamp): boolean {
    this.writable();
    return this.store.dropCollection(ns, tsOf(ts));
  }

  /** The collection `ns` at `at` (latest by default). */
  getCollection(ns: string, at?: Timestamp): CollectionInfo | undefined {
    return this.store.collection(ns, this.at(at));
  }

  /** Every collection at `at`, in namespace order. */
  listCollections(at?: Timestamp): CollectionInfo[] {
    return this.store.listCollections(this.at(at));
  }

  // ---- documents -----------------------------------------------------------------------------------------------

  /** Inserts a document; DuplicateKey if its `_id` exists. Not journaled (see README). */
  insert(ns: string, doc: Document, ts?: Timestamp): void {
    this.writable();
    this.store.put(ns, doc, tsOf(ts), 'insert');
  }

  /** Replaces the document with `doc._id`; with `upsert`, inserts it if missing. Returns whether one existed. */
  replace(ns: string, doc: Document, opts: { ts?: Timestamp; upsert?: boolean } = {}): boolean {
    this.writable();
    return this.store.put(ns, doc, tsOf(opts.ts), opts.upsert ? 'upsert' : 'replace');
  }

  /** Deletes the document with `_id` `id`; returns whether it existed. */
  delete(ns: string, id: unknown, ts?: Timestamp): boolean {
    this.writable();
    return this.store.remove(ns, id, tsOf(ts));
  }

  /** The document with `_id` `id` at `at` (latest by default). */
  findById(ns: string, id: unknown, at?: Timestamp): Document | undefined {
    const readAt = this.at(at);
    const info = this.store.collection(ns, readAt);
    if (!info) return undefined;
    return this.store.tables.get(info.ident)?.data.read(idKey(id), readAt);
  }

  /** Every document of `ns` at `at`, in `_id` key order; empty if the collection does not exist then. */
  scan(ns: string, at?: Timestamp): Document[] {
    const readAt = this.at(at);
    const info = this.store.collection(ns, readAt);
    const table = info && this.store.tables.get(info.ident);
    return table ? [...table.data.scan(readAt)].map(([, doc]) => doc) : [];
  }

  /** Number of documents of `ns` at `at`. */
  count(ns: string, at?: Timestamp): number {
    return this.scan(ns, at).length;
  }

  // ---- oplog ---------------------------------------------------------------------------------------------------

  /** Journals an oplog entry and inserts it into `local.oplog.rs`. Timestamps must strictly increase. */
  appendOplog(entry: OplogEntry): void {
    this.writable();
    const ts = validateEntry(entry);
    const top = this.oplogLast();
    if (top && toTs(top.ts) >= ts) {
      throw new StorageError(
        StorageCodes.OplogOutOfOrder,
        `oplog entry ${formatTs(ts)} is not after the top of the oplog ${formatTs(toTs(top.ts))}`,
      );
    }
    this.journal.append(oplogRecord(entry));
    this.store.oplogInsert(entry, ts);
    this.reclaimOplog(entry);
  }

  /**
   * The capped oplog: while it holds more than its size, its oldest entries go, as WiredTiger's oplog truncation
   * does, but never up to the timestamp mongod pins (WiredTigerKVEngine::getPinnedOplog): the newest stable
   * checkpoint's (nothing without one) and a backup cursor's pinned checkpoint's.
   */
  private reclaimOplog(added: OplogEntry): void {
    if (this.oplogSizeBytes === undefined) return;
    const table = this.store.oplog(false);
    if (!table) return;
    if (this.oplogBytes === undefined) {
      this.oplogBytes = 0;
      for (const [, doc] of table.data.scan(undefined)) this.oplogBytes += BSON.calculateObjectSize(doc);
    } else {
      this.oplogBytes += BSON.calculateObjectSize(added as unknown as Document);
    }
    if (this.oplogBytes <= this.oplogSizeBytes) return;
    const limits = [this.checkpointer.durable.timestamp];
    if (this.pin && !this.pin.released) limits.push(this.pin.timestamp === null ? null : toTs(this.pin.timestamp));
    if (limits.some((l) => l === null)) return;
    const pinned = limits.reduce((a, b) => (a! < b! ? a : b)) as Ts;
    let cut: string | undefined;
    let bytes = this.oplogBytes;
    for (const [key, doc] of table.data.scan(undefined)) {
      if (bytes <= this.oplogSizeBytes || toTs((doc as OplogEntry).ts) >= pinned) {
        cut = key;
        break;
      }
      bytes -= BSON.calculateObjectSize(doc);
    }
    if (cut === undefined) return;
    table.data.removeBefore(cut);
    this.oplogBytes = bytes;
  }

  /** Applies an oplog entry to the data tables at its timestamp (primaries after appending, secondaries). */
  applyOplog(entry: OplogEntry): void {
    this.writable();
    applyEntry(this.store, entry);
  }

  /** {@link appendOplog} then {@link applyOplog}: a primary's replicated write. */
  logAndApply(entry: OplogEntry): void {
    this.appendOplog(entry);
    applyEntry(this.store, entry);
  }

  /** Oplog entries with `ts > after` or `ts >= from` (all when both are omitted), oldest first, at most `limit`. */
  readOplog(opts: { after?: Timestamp; from?: Timestamp; limit?: number } = {}): OplogEntry[] {
    this.live();
    const table = this.store.oplog(false);
    if (!table) return [];
    const from = opts.after !== undefined ? tsKey(toTs(opts.after) + 1n) : opts.from !== undefined ? tsKey(toTs(opts.from)) : '';
    const out: OplogEntry[] = [];
    for (const [, doc] of table.data.scan(undefined, from)) {
      if (opts.limit !== undefined && out.length >= opts.limit) break;
      out.push(doc as OplogEntry);
    }
    return out;
  }

  /** The oldest oplog entry. */
  oplogFirst(): OplogEntry | undefined {
    return this.readOplog({ limit: 1 })[0];
  }

  /** The newest oplog entry. */
  oplogLast(): OplogEntry | undefined {
    this.live();
    const table = this.store.oplog(false);
    if (!table) return undefined;
    for (const [, doc] of table.data.scanBackward(undefined)) return doc as OplogEntry;
    return undefined;
  }

  // ---- time and checkpoints ------------------------------------------------------------------------------------

  /**
   * Moves the stable timestamp forward; a value not after the current one, or below the oldest timestamp, is ignored
   * (checkpoints cannot go back in time). The oldest timestamp follows it, `historyWindowSeconds` behind.
   */
  setStableTimestamp(ts: Timestamp): void {
    this.live();
    const value = toTs(ts);
    if (this.store.stable !== null && value <= this.store.stable) return;
    if (this.store.oldest !== null && value < this.store.oldest) return;
    this.store.stable = value;
    const seconds = value >> 32n;
    const windowed =
      this.historyWindow === 0n ? value : seconds > this.historyWindow ? (seconds - this.historyWindow) << 32n : 0n;
    if (this.store.oldest === null || windowed > this.store.oldest) this.store.oldest = windowed;
  }

  /** Reads below this timestamp fail with SnapshotTooOld; history below it may be gone. */
  get oldestTimestamp(): Timestamp | null {
    return this.store.oldest === null ? null : fromTs(this.store.oldest);
  }

  /** The stable timestamp, or null when none is set (checkpoints are then unstable). */
  get stableTimestamp(): Timestamp | null {
    return this.store.stable === null ? null : fromTs(this.store.stable);
  }

  /** Newest oplog entry applied to the data tables. */
  get lastApplied(): Timestamp | null {
    return this.store.lastApplied === null ? null : fromTs(this.store.lastApplied);
  }

  /** Takes a checkpoint at the stable timestamp, or of everything applied when `unstable`. */
  checkpoint(opts: { unstable?: boolean } = {}): CheckpointInfo {
    this.live();
    return checkpointInfo(this.checkpointer.run(this.store, this.journal, opts.unstable ?? false));
  }

  /** The newest durable checkpoint. */
  lastCheckpoint(): CheckpointInfo {
    return checkpointInfo(this.checkpointer.durable);
  }

  /**
   * Pins the newest durable checkpoint for a backup and writes `WiredTiger.backup`. Call {@link switchLog} first, as
   * a backup cursor does. One pin at a time (ObjectIsBusy otherwise).
   */
  pinCheckpoint(): CheckpointPin {
    this.live();
    if (this.pin && !this.pin.released) {
      throw new StorageError(StorageCodes.ObjectIsBusy, 'a checkpoint is already pinned for a backup');
    }
    this.pin = Pin.create(this.dbpath, this.checkpointer, () => {
      // After a crash the process is gone: a released pin must not touch the files any more.
      if (this.open) this.checkpointer.unpin(this.store);
      return this.open;
    }, this.fsync, this.checkpointer.uncheckpointedFiles(this.store));
    return this.pin;
  }

  /**
   * The registered incremental backup ids (backup-ids.ts). Setting them changes memory only: the next checkpoint
   * (or the final one of a clean shutdown) makes them durable, as WiredTiger's metadata does.
   */
  get backupIds(): BackupIds | null {
    return this.store.backupIds;
  }

  set backupIds(ids: BackupIds | null) {
    this.live();
    this.store.backupIds = ids;
  }

  /** True while a checkpoint is pinned. */
  get backupPinned(): boolean {
    return this.pin !== null && !this.pin.released;
  }

  /** Starts a new journal file; returns its path relative to the dbpath. */
  switchLog(): string {
    this.live();
    return logFilePath(this.journal.switchLog());
  }

  /** Every log file present, oldest first (what `$backupCursorExtend` lists). */
  listLogFiles(): LogFileInfo[] {
    this.live();
    return listLogNumbers(this.dbpath).map((n) => ({
      path: logFilePath(n),
      number: n,
      size: sizeOf(path.join(this.dbpath, logFilePath(n))) ?? 0,
    }));
  }

  /**
   * Clean shutdown: releases a pin, takes the final checkpoint (at the stable timestamp, or of everything applied
   * with takeUnstableCheckpointOnShutdown), then empties `mongod.lock`. `clean: false` is {@link crash}.
   */
  close(opts: { clean?: boolean; takeUnstableCheckpointOnShutdown?: boolean } = {}): void {
    if (!this.open) return;
    if (opts.clean === false) return this.crash();
    this.pin?.release();
    this.checkpointer.run(this.store, this.journal, opts.takeUnstableCheckpointOnShutdown ?? this.takeUnstable);
    this.journal.close();
    this.checkpointer.close();
    this.shutdown(true);
  }

  /** Simulated crash: drops memory and file handles, no checkpoint, `mongod.lock` left as is. */
  crash(): void {
    if (!this.open) return;
    this.journal.abandon();
    this.checkpointer.close();
    this.shutdown(false);
  }

  private shutdown(clean: boolean): void {
    this.open = false;
    this.pin = null;
    unlockDbpath(this.dbpath, { clean, fsync: this.fsync });
  }

  /** True until {@link close} or {@link crash}. */
  get isOpen(): boolean {
    return this.open;
  }
}
