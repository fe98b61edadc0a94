import path from 'node:path';
import type { Timestamp } from 'mongodb';
import type { Checkpointer } from './checkpoint.ts';
import { Files, removeIfExists, sizeOf, syncDir, writeAtomic } from './dbfiles.ts';
import { listLogNumbers, logFilePath } from './journal.ts';
import { keyDbFiles } from './keydb.ts';
import { sortTables } from './metadata.ts';
import { fromTs } from './timestamps.ts';
import { writeBackupFile } from './turtle.ts';

/** One file a backup must copy, in WiredTiger's backup order. */
export interface BackupFile {
  /** Path relative to the dbpath (`journal/WiredTigerLog.…` for log files). */
  readonly path: string;
  /** Size when the checkpoint was pinned. Data files are copied up to it; log files are copied whole. */
  readonly size: number;
  /** `keydb`: PSMDB's key database (`key.db/…`, encryption at rest), copied whole. */
  readonly kind: 'keydb' | 'log' | 'data' | 'backup' | 'version';
}

/** A checkpoint held for a backup: its blocks are not reused and no log file is removed until {@link release}. */
export interface CheckpointPin {
  readonly generation: number;
  /** The checkpoint's stable timestamp (a backup cursor's `checkpointTimestamp`); null for an unstable one. */
  readonly timestamp: Timestamp | null;
  /**
   * The key database's files when encrypted, log files, then `.wt` files in metadata order (not `WiredTiger.wt`), then
   * `WiredTiger.backup`, `WiredTiger`.
   */
  readonly files: readonly BackupFile[];
  readonly released: boolean;
  /** Unpins (idempotent): removes `WiredTiger.backup`; the pinned blocks become reusable by the next checkpoint. */
  release(): void;
}

/** The engine's pin; `release` is a no-op once the engine is gone (a crashed process cannot clean up). */
export class Pin implements CheckpointPin {
  private done = false;

  private constructor(
    private readonly dbpath: string,
    readonly generation: number,
    readonly timestamp: Timestamp | null,
    readonly files: readonly BackupFile[],
    private readonly onRelease: () => boolean,
    private readonly fsync: boolean,
  ) {}

  /**
   * Pins the newest durable checkpoint. `ongoingBackup.lock` goes down before `WiredTiger.backup`, so after a crash
   * mid-backup the next startup knows that file is this node's own leftover, not a restored backup.
   */
  static create(dbpath: string, checkpointer: Checkpointer, onRelease: () => boolean, fsync: boolean, created: readonly string[] = []): Pin {
    writeAtomic(dbpath, Files.ongoingBackup, `${process.pid}\n`, undefined, fsync);
    const meta = checkpointer.pin();
    try {
      writeBackupFile(dbpath, meta, fsync);
    } catch (err) {
      // No pin object exists to release it later: undo here, or the blocks and log files would stay pinned for good.
      onRelease();
      removeIfExists(path.join(dbpath, Files.ongoingBackup));
      throw err;
    }
    const size = (rel: string): number => sizeOf(path.join(dbpath, rel)) ?? 0;
    const files: BackupFile[] = [
      // PSMDB lists the key database's files first (docs/psmdb-behaviour.md section 2.3).
      ...keyDbFiles(dbpath).map((rel): BackupFile => ({ path: rel, size: size(rel), kind: 'keydb' })),
      ...listLogNumbers(dbpath)
        .filter((n) => n >= meta.journal.file)
        .map((n): BackupFile => ({ path: logFilePath(n), size: size(logFilePath(n)), kind: 'log' })),
      // The checkpoint's tables and those created since (WiredTiger lists every table of its metadata, whose file it
      // made at creation: empty but for its descriptor until a checkpoint writes it), in metadata order.
      ...sortTables([...meta.tables.map((t) => ({ file: t.file })), ...created.map((file) => ({ file }))]).map(
        (t): BackupFile => ({ path: t.file, size: size(t.file), kind: 'data' }),
      ),
      { path: Files.backup, size: size(Files.backup), kind: 'backup' },
      { path: Files.version, size: size(Files.version), kind: 'version' },
    ];
    const timestamp = meta.timestamp === null ? null : fromTs(meta.timestamp);
    return new Pin(dbpath, meta.generation, timestamp, files, onRelease, fsync);
  }

  get released(): boolean {
    return this.done;
  }

  release(): void {
    if (this.done) return;
    this.done = true;
    const live = this.onRelease();
    if (!live) return;
    removeIfExists(path.join(this.dbpath, Files.backup));
    removeIfExists(path.join(this.dbpath, Files.ongoingBackup));
    syncDir(this.dbpath, this.fsync);
  }
}
