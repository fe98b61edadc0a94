import type { Timestamp } from 'mongodb';
import type { EncryptionOptions } from './keydb.ts';
import type { CheckpointMeta, LogPosition } from './metadata.ts';
import type { ReplicationReport, StartMode } from './replication.ts';
import type { StartupReport } from './startup.ts';
import { fromTs } from './timestamps.ts';

/** The engine's public option and report types. */

/** Options of {@link StorageEngine.open}. */
export interface StorageEngineOptions {
  readonly dbpath: string;
  /** Decides replication recovery at startup (see README). */
  readonly mode: StartMode;
  /** The startup parameter: makes re-running recoverFromOplogAsStandalone a no-op and is the default for close(). */
  readonly takeUnstableCheckpointOnShutdown?: boolean;
  /** Block size of a new dbpath (an existing one keeps its own). Default 4096. */
  readonly blockSize?: number;
  /** Preallocated size of new log files. Default 1 MiB (PSMDB: 100 MiB). */
  readonly logFileSize?: number;
  /** Pages are split beyond twice this many serialized bytes. Default: two blocks. */
  readonly pageTarget?: number;
  /**
   * fsync at every durability point (default true). False keeps every ordering (temp + rename, copy-on-write, turtle
   * last), so the files survive a killed process at any instant, but not a power loss: for tests and demos.
   */
  readonly fsync?: boolean;
  /**
   * Seconds of history kept below the stable timestamp for reads at a timestamp (MongoDB's
   * `minSnapshotHistoryWindowInSeconds`, default 300). History is only pruned at checkpoints.
   */
  readonly historyWindowSeconds?: number;
  /**
   * `--directoryperdb`: new idents go to `<db>/` (catalog.ts `identFor`). Checked against `storage.bson` (72
   * InvalidOptions on a mismatch). Undefined: as `storage.bson` records it, unchecked (tools that open a dbpath).
   */
  readonly directoryPerDB?: boolean;
  /** `--wiredTigerDirectoryForIndexes`: new idents go to `collection/` and `index/`. Checked like directoryPerDB. */
  readonly directoryForIndexes?: boolean;
  /** PSMDB's encryption at rest (keydb.ts): the master key file and cipher mode. Undefined: not encrypted. */
  readonly encryption?: EncryptionOptions;
  /**
   * The capped oplog's size in bytes (mongod's `--oplogSize`, in MB there): past it the oldest entries are truncated,
   * never at or after the newest stable checkpoint's timestamp nor a backup's pinned one. Undefined: never truncated.
   */
  readonly oplogSizeBytes?: number;
}

/** A checkpoint as callers see it. */
export interface CheckpointInfo {
  readonly generation: number;
  /** Stable timestamp of the checkpoint; null for an unstable one. */
  readonly timestamp: Timestamp | null;
  /** Newest oplog entry applied to the data the checkpoint holds, when known. */
  readonly appliedThrough: Timestamp | null;
  /** Where journal replay starts for this checkpoint. */
  readonly journal: LogPosition;
  readonly wallTime: Date;
}

/** What {@link StorageEngine.open} found and did. */
export interface RecoveryReport extends StartupReport {
  readonly mode: StartMode;
  /** `mongod.lock` was non-empty: the previous run did not shut down cleanly. */
  readonly uncleanShutdown: boolean;
  /** The checkpoint recovery started from. */
  readonly checkpoint: CheckpointInfo;
  readonly replication: ReplicationSummary;
}

/** What replication recovery did at startup. */
export interface ReplicationSummary {
  /** `oplogTruncateAfterPoint` found at startup (null when unset or zero). */
  readonly truncateAfterPoint: Timestamp | null;
  /** The oplog was truncated after this timestamp (null: not truncated). */
  readonly truncatedAfter: Timestamp | null;
  /** Oplog entries removed by truncation. */
  readonly entriesTruncated: number;
  /** Oplog entries applied to the data tables. */
  readonly entriesApplied: number;
  /** Newest oplog entry applied (or the checkpoint's point when none was). */
  readonly appliedThrough: Timestamp | null;
}

function tsOrNull(ts: bigint | null): Timestamp | null {
  return ts === null ? null : fromTs(ts);
}

/** The public form of a {@link ReplicationReport}. */
export function replicationSummary(report: ReplicationReport): ReplicationSummary {
  return {
    truncateAfterPoint: tsOrNull(report.truncateAfterPoint),
    truncatedAfter: tsOrNull(report.truncatedAfter),
    entriesTruncated: report.entriesTruncated,
    entriesApplied: report.entriesApplied,
    appliedThrough: tsOrNull(report.appliedThrough),
  };
}

/** A log file present in the journal directory. */
export interface LogFileInfo {
  /** Path relative to the dbpath, e.g. `journal/WiredTigerLog.0000000003`. */
  readonly path: string;
  readonly number: number;
  readonly size: number;
}

/** Info about a checkpoint metadata, for callers. */
export function checkpointInfo(meta: CheckpointMeta): CheckpointInfo {
  return {
    generation: meta.generation,
    timestamp: tsOrNull(meta.timestamp),
    appliedThrough: tsOrNull(meta.appliedThrough),
    journal: meta.journal,
    wallTime: meta.wallTime,
  };
}
