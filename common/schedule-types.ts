/**
 * Shapes of scheduled backups and retention runs, shared by the workflows, the API and the CLI. Workflow-safe.
 */
import type { BackupInput, BackupSummary } from './backup-types.ts';
import type { RetentionDecision, RetentionPolicy } from './retention.ts';

/** Input of `retention`: the keep policy applied to one repository (one cluster, or each cluster by itself). */
export interface RetentionInput {
  repo: string;
  /** Only this cluster; default every cluster of the repository. */
  cluster?: string;
  policy: RetentionPolicy;
  dryRun?: boolean;
}

/** What a retention run did (the workflow's result; `cutpoint prune --json` prints the same shape). */
export interface RetentionSummary {
  repo: string;
  dryRun: boolean;
  clusters: Array<{ cluster: string; keep: RetentionDecision[]; remove: RetentionDecision[] }>;
  removed: string[];
  /**
   * Format v2: the sweep of the chunks no remaining backup references (repository/v2/sweep.ts): packs removed whole,
   * packs rewritten with their referenced chunks only, bytes freed, chunks removed.
   */
  sweep?: { packsRemoved: number; packsRepacked: number; bytesFreed: number; chunksRemoved: number };
  /** Oplog segments of continuous capture removed (or, dry, to remove): they cover only time before every kept base. */
  oplogSegmentsRemoved?: number;
  /** Object storage: the paths of the unfinished multipart uploads (left by crashed writers) this prune aborted. */
  abortedUploads?: string[];
}

/** Input of `scheduledBackup`, the action of a cutpoint schedule: one backup, then retention. */
export interface ScheduledBackupInput {
  /** The schedule's name (also its id and the prefix of its backups' ids). */
  schedule: string;
  /** The backup to take; `ifBusy` defaults to `'wait'` here (a manual backup of the cluster delays this one). */
  backup: BackupInput;
  /** Applied to the backup's cluster after every scheduled backup, whatever its outcome. */
  retention: RetentionPolicy;
}

/** The result of `scheduledBackup`. */
export interface ScheduledBackupResult {
  backup: BackupSummary;
  /** Absent when the run was cancelled before retention. */
  retention?: RetentionSummary;
}

/** The workflow type every cutpoint schedule starts. */
export const SCHEDULED_BACKUP_WORKFLOW = 'scheduledBackup';
