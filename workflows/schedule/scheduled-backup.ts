/**
 * `scheduledBackup`: what a cutpoint schedule starts each time (a Temporal Schedule's action). It takes one backup as
 * a child `clusterBackup` whose workflow id is a proper backup id (ids.ts), so `cutpoint status/cancel <id>` and the
 * catalogue work on scheduled backups exactly as on manual ones; then it runs `retention` over the backup's cluster,
 * whatever the backup's outcome (a failed backup still leaves old failures to clean). The run ends as the backup did
 * (failed with the backup's code, or cancelled), so the schedule's recent actions in the UI tell the truth.
 *
 * Overlap of two runs of one schedule is the schedule's business (policy SKIP); a collision with a manual backup or
 * another schedule of the same cluster is the cluster lock's (the child waits by default: `ifBusy: 'wait'`).
 */
import {
  CancellationScope,
  CancelledFailure,
  ChildWorkflowCancellationType,
  ParentClosePolicy,
  executeChild,
  isCancellation,
  setCurrentDetails,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { BackupSummary } from '../../common/backup-types.ts';
import type { ScheduledBackupInput, ScheduledBackupResult } from '../../common/schedule-types.ts';
import { CutpointCluster, CutpointKind, CutpointStatus } from '../../common/search-attributes.ts';
import { clusterBackup } from '../backup/cluster-backup.ts';
import { failureInfo, failWith } from '../common/outcome.ts';
import { scheduledBackupId } from './ids.ts';
import { retention } from './retention.ts';

/** The summary a failed or cancelled `clusterBackup` carries as its failure's details. */
function summaryOf(e: unknown): BackupSummary | undefined {
  for (let cur = e as { details?: unknown[]; cause?: unknown } | undefined, i = 0; cur && i < 5; cur = cur.cause as typeof cur, i++) {
    const d = cur.details?.[0] as BackupSummary | undefined;
    if (d && typeof d === 'object' && typeof d.id === 'string' && typeof d.status === 'string') return d;
  }
  return undefined;
}

export async function scheduledBackup(input: ScheduledBackupInput): Promise<ScheduledBackupResult> {
  const info = workflowInfo();
  const backupId = scheduledBackupId(input.schedule, info.workflowId, info.startTime);
  const backup = { ...input.backup, ifBusy: input.backup.ifBusy ?? 'wait' };
  upsertSearchAttributes([
    { key: CutpointKind, value: 'scheduled-backup' },
    { key: CutpointStatus, value: 'running' },
    ...(backup.cluster ? [{ key: CutpointCluster, value: backup.cluster }] : []),
  ]);
  setCurrentDetails(`**cutpoint schedule** \`${input.schedule}\`: backup \`${backupId}\` running (its own workflow shows the progress)`);

  let summary: BackupSummary;
  let failure: unknown;
  try {
    summary = await executeChild(clusterBackup, {
      workflowId: backupId,
      args: [backup],
      cancellationType: ChildWorkflowCancellationType.WAIT_CANCELLATION_COMPLETED,
      parentClosePolicy: ParentClosePolicy.REQUEST_CANCEL,
      typedSearchAttributes: [
        { key: CutpointKind, value: 'backup' },
        { key: CutpointStatus, value: 'running' },
        ...(backup.cluster ? [{ key: CutpointCluster, value: backup.cluster }] : []),
      ],
      staticSummary: `cutpoint backup of ${backup.cluster ?? backup.uri} to ${backup.repo} (schedule ${input.schedule})`,
    });
  } catch (e) {
    failure = e;
    const { code, message } = failureInfo(e);
    summary = summaryOf(e) ?? {
      id: backupId,
      cluster: backup.cluster ?? '',
      status: isCancellation(e) ? 'cancelled' : 'failed',
      commonTimestamp: null,
      startedAt: info.startTime.toISOString(),
      finishedAt: new Date().toISOString(),
      bytes: 0,
      bytesStored: 0,
      kind: backup.incremental || backup.base ? 'base' : 'full',
      parent: null,
      bytesRead: 0,
      replicaSets: [],
      error: { code, message },
    };
  }
  if (summary.cluster) upsertSearchAttributes([{ key: CutpointCluster, value: summary.cluster }]);

  // A cancelled run stops here: cancelling it means "stop", not "clean up now".
  let result: ScheduledBackupResult = { backup: summary };
  if (!(failure !== undefined && CancellationScope.current().consideredCancelled)) {
    setCurrentDetails(`**cutpoint schedule** \`${input.schedule}\`: backup \`${backupId}\` ${summary.status}; retention running`);
    const r = await executeChild(retention, {
      workflowId: `${backupId}.retention`,
      args: [{ repo: backup.repo, ...(summary.cluster ? { cluster: summary.cluster } : {}), policy: input.retention }],
      parentClosePolicy: ParentClosePolicy.REQUEST_CANCEL,
    }).catch((e: unknown) => {
      // Retention failing must not hide the backup's own outcome; the run still fails below if the backup did.
      const { code, message } = failureInfo(e);
      if (summary.status === 'complete') throw failWith({ code, message: `backup ${backupId} is complete, but retention failed: ${message}` }, { backup: summary });
      return undefined;
    });
    result = { backup: summary, ...(r ? { retention: r } : {}) };
  }
  upsertSearchAttributes([{ key: CutpointStatus, value: summary.status }]);
  setCurrentDetails(
    `**cutpoint schedule** \`${input.schedule}\`: backup \`${backupId}\` ${summary.status}` +
      (result.retention ? `; retention removed ${result.retention.removed.length} (${result.retention.removed.join(', ') || 'none'})` : ''),
  );
  if (summary.status === 'cancelled') throw new CancelledFailure(summary.error?.message ?? 'cancelled', [result]);
  if (summary.status === 'failed') throw failWith(summary.error ?? { code: 'INTERNAL', message: 'backup failed' }, result);
  return result;
}
