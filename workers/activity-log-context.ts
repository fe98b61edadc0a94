/**
 * Every activity log line names its backup and phase (`backupId`, `phase`), so an operator can follow one backup
 * through the logs of every agent and orchestrator, as PBM's `pbm logs --event=backup/<name>` does.
 */
import type { ActivityInterceptorsFactory } from '@temporalio/worker';

/** The backup phase an activity belongs to, by activity type. */
const PHASE_OF: Record<string, string> = {
  discoverTopology: 'discover',
  lockRepository: 'discover',
  refreshRepositoryLock: 'discover',
  releaseRepositoryLock: 'commit',
  initBackup: 'discover',
  clusterLockHolder: 'waiting',
  applyRetention: 'retention',
  stopBalancer: 'balancer',
  restoreBalancer: 'balancer',
  selectBackupNode: 'select',
  openBackupCursor: 'open',
  keepBackupCursorAlive: 'keepalive',
  extendBackupCursor: 'extend',
  extendAndPlanCopy: 'extend',
  planCopyBatches: 'copy',
  copyBatch: 'copy',
  proveBackupCursorAlive: 'verify',
  closeBackupCursor: 'close',
  writeReplicaSetManifest: 'manifest',
  resetReplicaSetCopy: 'open',
  finishBackup: 'commit',
};

/**
 * The backup id: the `backupId` argument when the activity takes one; otherwise the workflow's own id for the
 * parent (whose workflow id is the backup id) or the id the child was started with (`<backupId>.<replicaSet>`).
 */
function backupIdOf(args: readonly unknown[], workflowType: string | undefined, workflowId: string | undefined): string | undefined {
  const first = args[0] as { backupId?: unknown; replicaSet?: unknown } | undefined;
  if (typeof first?.backupId === 'string') return first.backupId;
  if (!workflowId) return undefined;
  if (workflowType === 'clusterBackup') return workflowId;
  if (workflowType === 'replicaSetBackup' && typeof first?.replicaSet === 'string' && workflowId.endsWith(`.${first.replicaSet}`)) {
    return workflowId.slice(0, -first.replicaSet.length - 1);
  }
  return undefined;
}

/** Interceptor factory for `Worker.create({ interceptors: { activity: [activityLogContext] } })`. */
export const activityLogContext: ActivityInterceptorsFactory = (ctx) => {
  let backupId: string | undefined;
  const phase = PHASE_OF[ctx.info.activityType];
  return {
    inbound: {
      async execute(input, next) {
        backupId = backupIdOf(input.args, ctx.info.workflowType, ctx.info.workflowExecution?.workflowId);
        return next(input);
      },
    },
    outbound: {
      getLogAttributes(input, next) {
        return next({ ...input, ...(backupId ? { backupId } : {}), ...(phase ? { phase } : {}) });
      },
    },
  };
};
