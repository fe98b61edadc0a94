/**
 * Shapes shared by the backup workflows, activities, CLI and API: workflow input, the progress query
 * (docs/interfaces.md section 5) and the summary (section 3). Workflow-safe.
 */
import type { BackupKind } from './incremental.ts';
import type { BackupStatus } from './manifest.ts';
import type { CredentialsRef } from './target.ts';
import type { Ts } from './timestamp.ts';

/**
 * Input of `clusterBackup`. What the Temporal UI's Start Workflow form takes as JSON (README). The defaults and bounds
 * of the numeric options are defined in backup-options.ts, and the workflow applies them.
 */
export interface BackupInput {
  /** Connection string of a replica set, without credentials. */
  uri: string;
  /** Where workers find credentials; default `{kind: 'env'}` (CUTPOINT_MONGO_USERNAME / _PASSWORD). */
  credentials?: CredentialsRef;
  /** Repository path as the workers see it. */
  repo: string;
  /** Label of the cluster; default the replica set name. */
  cluster?: string;
  /** Whole-backup copy rate, bytes per second; 0 or absent = unlimited. */
  bytesPerSec?: number;
  /** Back up this member (host:port) instead of choosing one. */
  node?: string;
  /** Lag ceiling for choosing a secondary, seconds (default 30). */
  maxLagSecs?: number;
  /** getMore interval of the keep-alive, ms (default 60 000: well inside the 10-minute idle limit). */
  keepAliveIntervalMs?: number;
  /** Copy activities running at once per replica set (default 4). */
  copyParallelism?: number;
  /**
   * How many times a replica set whose backup cursor is lost (killed, session expired, node restarted) re-opens one
   * and copies again, the common timestamp moving forward for every replica set (default 2; 0 = fail with
   * CURSOR_LOST at once).
   */
  cursorReopens?: number;
  /**
   * Largest copy batch: files (default 500) and bytes (default 256 MiB). A list of more than 64 x `batchMaxFiles`
   * files gets larger batches (64 by file count, at most 5,000 files each), so that the history stays bounded.
   */
  batchMaxFiles?: number;
  batchMaxBytes?: number;
  /**
   * When another backup cursor holds a chosen node's single backup slot: `'fail'` (default) at once with
   * BACKUP_CURSOR_BUSY naming the holder, or `'wait'` until it is released.
   */
  ifBusy?: 'fail' | 'wait';
  /**
   * How soon an agent that died (SIGKILL, host lost) is noticed and its cursor and copy work handed to its restarted
   * agent: the heartbeat timeout of the agent's long activities, ms (default 20 000, at least 5 000: the agents beat
   * at most every 2 s).
   */
  agentHeartbeatTimeoutMs?: number;
  /**
   * How long the agent of a chosen member may take to pick up work, ms (default 120 000): past it the backup fails
   * with WORKER_UNAVAILABLE naming the member, instead of waiting for an agent that is not running.
   */
  agentTimeoutMs?: number;
  /**
   * Read only what changed since this cluster's previous backup (docs/incremental.md): each replica set continues its
   * chain, or takes a base and says why. Default false: a full backup, which keeps no incremental history.
   */
  incremental?: boolean;
  /** Start a new chain: a base on every replica set (implies `incremental`). */
  base?: boolean;
  /** Granularity of the changed ranges, MB (default 16); changing it starts a new chain. */
  blockSizeMB?: number;
  /** A new base every this many backups of a chain (default 0: only when a chain breaks). */
  baseEvery?: number;
}

export type BackupPhase =
  | 'starting'
  | 'discover'
  | 'balancer'
  | 'select'
  | 'open'
  | 'waiting'
  | 'extend'
  | 'copy'
  | 'verify'
  | 'close'
  | 'manifest'
  | 'commit'
  | 'cleanup'
  | 'done';

export interface ReplicaSetProgress {
  name: string;
  node: string | null;
  phase: BackupPhase;
  filesDone: number;
  filesTotal: number;
  bytesDone: number;
  bytesTotal: number;
}

/** The `progress` query. */
export interface BackupProgress {
  kind: 'backup';
  status: BackupStatus;
  phase: BackupPhase;
  bytesDone: number;
  bytesTotal: number;
  bytesPerSec: number;
  commonTimestamp?: Ts;
  replicaSets: ReplicaSetProgress[];
}

/** The summary `backup --json` prints and the workflow returns. */
export interface BackupSummary {
  id: string;
  cluster: string;
  status: 'complete' | 'failed' | 'cancelled';
  commonTimestamp: Ts | null;
  startedAt: string;
  finishedAt: string;
  /** The logical size: bytes of every file backed up. */
  bytes: number;
  /** The new bytes this backup added to the repository, after deduplication and compression. */
  bytesStored: number;
  /** `full`, or `base` / `incremental` (common/incremental.ts backupKindOf). */
  kind: BackupKind;
  /** The previous backup of the chain whose chunks an incremental replica set reused; null for a full or a base. */
  parent: string | null;
  /** Bytes read from the dbpaths. */
  bytesRead: number;
  replicaSets: Array<{
    name: string;
    configServer: boolean;
    node: string | null;
    files: number;
    bytes: number;
    bytesStored: number;
    kind: BackupKind;
    parent: string | null;
    bytesRead: number;
    /** Why this replica set took a base although an incremental was asked for. */
    chainBreak?: string;
  }>;
  error?: { code: string; message: string };
}

/** A contiguous range of the file list copied by one activity. */
export interface CopyBatch {
  no: number;
  from: number;
  to: number;
  bytes: number;
}
