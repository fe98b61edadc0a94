/**
 * `extendAndPlanCopy`: `$backupCursorExtend` to the common timestamp, then the copy batches planned over the file list
 * it completed, in one activity (one round trip through Temporal instead of two, on every replica set's critical
 * path). Each half is the activity of that name (backup-cursor.ts `extendBackupCursor`, copy-batch.ts
 * `planCopyBatches`), run in this activity's context: its heartbeats and cancellation. A retry runs both again; both
 * are idempotent (an extend's results are cumulative and the file list skips paths it holds; the plan only reads).
 * A cancel that lands during the extend lets the extend finish and plans nothing.
 */
import { cancellationSignal } from '@temporalio/activity';
import type { CopyBatch } from '../../common/backup-types.ts';
import type { Ts } from '../../common/timestamp.ts';
import type { BackupCursorActivities, CursorInput } from './backup-cursor.ts';
import type { CopyActivities } from './copy-batch.ts';

export interface ExtendAndPlanInput extends CursorInput {
  serverBackupId: string;
  to: Ts;
  maxWaitMs: number;
  dbpath: string;
  maxFiles: number;
  maxBytes: number;
  /** Files before this index were copied in an earlier round: only their journal files (grown since) again. */
  journalOnlyBefore?: number;
  /** Number of the first batch (batch results of earlier rounds keep theirs). */
  firstBatchNo?: number;
}

export interface ExtendAndPlanResult {
  /** Journal files the extend added to the list, and the list's length after it. */
  added: number;
  files: number;
  batches: CopyBatch[];
  listed: number;
}

export function extendAndPlanActivities(cursor: Pick<BackupCursorActivities, 'extendBackupCursor'>, copy: Pick<CopyActivities, 'planCopyBatches'>) {
  return {
    async extendAndPlanCopy(input: ExtendAndPlanInput): Promise<ExtendAndPlanResult> {
      const { to, maxWaitMs, serverBackupId, dbpath, maxFiles, maxBytes, journalOnlyBefore, firstBatchNo, ...cursorInput } = input;
      const { added, files } = await cursor.extendBackupCursor({ ...cursorInput, serverBackupId, to, maxWaitMs });
      cancellationSignal().throwIfAborted();
      const { batches, listed } = await copy.planCopyBatches({ ...cursorInput, dbpath, maxFiles, maxBytes, journalOnlyBefore, firstBatchNo });
      return { added, files, batches, listed };
    },
  };
}

export type ExtendAndPlanActivities = ReturnType<typeof extendAndPlanActivities>;
