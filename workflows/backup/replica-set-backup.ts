/**
 * `replicaSetBackup`: one replica set of a backup, a child of `clusterBackup` (a replica set is a cluster of one).
 *
 * select node → open `$backupCursor` (agent) → keep-alive starts → report `oplogEnd` to the parent → wait for the
 * common timestamp → extend → copy in parallel batches → prove the cursor alive → close → replica-set manifest.
 * The keep-alive runs beside everything after the open; its failure (CURSOR_LOST) fails the replica set at once,
 * so a copy is never declared good over a released pin. Cleanup (close the cursor) runs on every path.
 */
import {
  ActivityCancellationType,
  ApplicationFailure,
  CancellationScope,
  condition,
  getExternalWorkflowHandle,
  isCancellation,
  log,
  proxyActivities,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { BackupCursorActivities, OpenedCursor } from '../../activities/agent/backup-cursor.ts';
import type { CopyActivities } from '../../activities/agent/copy-batch.ts';
import type { RepositoryActivities } from '../../activities/orchestrator/repository.ts';
import type { TopologyActivities } from '../../activities/orchestrator/topology.ts';
import type { BackupPhase, CopyBatch, ReplicaSetProgress } from '../../common/backup-types.ts';
import { nonRetryableCodes } from '../../common/errors.ts';
import { CutpointPhase } from '../../common/search-attributes.ts';
import type { MongoTarget } from '../../common/target.ts';
import { agentTaskQueue } from '../../common/task-queues.ts';
import type { Ts } from '../../common/timestamp.ts';
import {
  childThrottleSignal,
  cursorOpenedSignal,
  extendToSignal,
  progressQuery,
  replicaSetProgressSignal,
  throttleQuery,
} from './messages.ts';

export interface ReplicaSetBackupInput {
  parentId: string;
  backupId: string;
  replicaSet: string;
  configServer: boolean;
  target: MongoTarget;
  repo: string;
  bytesPerSec: number;
  node?: string;
  maxLagSecs: number;
  keepAliveIntervalMs: number;
  copyParallelism: number;
  batchMaxFiles: number;
  batchMaxBytes: number;
}

export interface ReplicaSetBackupResult {
  name: string;
  node: string;
  files: number;
  bytes: number;
  extendedTo: Ts;
}

const NON_RETRYABLE = nonRetryableCodes();

const control = proxyActivities<TopologyActivities & RepositoryActivities>({
  startToCloseTimeout: '2 minutes',
  retry: { maximumAttempts: 5, nonRetryableErrorTypes: NON_RETRYABLE },
});

function agent(node: string, keepAliveIntervalMs: number) {
  const taskQueue = agentTaskQueue(node);
  return {
    cursor: proxyActivities<BackupCursorActivities & CopyActivities>({
      taskQueue,
      startToCloseTimeout: '10 minutes',
      heartbeatTimeout: '1 minute',
      retry: { maximumAttempts: 5, nonRetryableErrorTypes: NON_RETRYABLE },
    }),
    keepAlive: proxyActivities<BackupCursorActivities>({
      taskQueue,
      startToCloseTimeout: '30 days',
      // One heartbeat per getMore round: a dead agent is noticed within a round plus a minute, then retried on the
      // same queue, where a restarted agent resumes the cursor through its recorded session id.
      heartbeatTimeout: keepAliveIntervalMs + 60_000,
      cancellationType: ActivityCancellationType.TRY_CANCEL,
      retry: { initialInterval: '1 second', maximumInterval: '10 seconds', nonRetryableErrorTypes: NON_RETRYABLE },
    }),
    extend: proxyActivities<BackupCursorActivities>({
      taskQueue,
      startToCloseTimeout: '1 hour',
      heartbeatTimeout: '1 minute',
      retry: { maximumAttempts: 5, nonRetryableErrorTypes: NON_RETRYABLE },
    }),
    copy: proxyActivities<CopyActivities>({
      taskQueue,
      startToCloseTimeout: '12 hours',
      heartbeatTimeout: '1 minute',
      cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
      retry: { initialInterval: '1 second', maximumInterval: '30 seconds', nonRetryableErrorTypes: NON_RETRYABLE },
    }),
  };
}

export async function replicaSetBackup(input: ReplicaSetBackupInput): Promise<ReplicaSetBackupResult> {
  const progress: ReplicaSetProgress = {
    name: input.replicaSet,
    node: null,
    phase: 'select',
    filesDone: 0,
    filesTotal: 0,
    bytesDone: 0,
    bytesTotal: 0,
  };
  let bytesPerSec = input.bytesPerSec;
  let extendTo: Ts | undefined;
  const parent = getExternalWorkflowHandle(input.parentId);

  setHandler(progressQuery, () => ({
    kind: 'backup',
    status: 'running',
    phase: progress.phase,
    bytesDone: progress.bytesDone,
    bytesTotal: progress.bytesTotal,
    bytesPerSec,
    replicaSets: [progress],
  }));
  setHandler(throttleQuery, () => bytesPerSec);
  setHandler(childThrottleSignal, ({ bytesPerSec: r }) => {
    bytesPerSec = r;
  });
  setHandler(extendToSignal, ({ to }) => {
    extendTo = to;
  });

  const report = async (phase: BackupPhase) => {
    progress.phase = phase;
    upsertSearchAttributes([{ key: CutpointPhase, value: phase }]);
    await parent.signal(replicaSetProgressSignal, { ...progress });
  };

  const { node } = await control.selectBackupNode({
    target: input.target,
    replicaSet: input.replicaSet,
    maxLagSecs: input.maxLagSecs,
    node: input.node,
  });
  progress.node = node;
  const a = agent(node, input.keepAliveIntervalMs);

  await report('open');
  const cursorInput = { target: input.target, backupId: input.backupId, replicaSet: input.replicaSet, repo: input.repo };
  const opened: OpenedCursor = await a.cursor.openBackupCursor(cursorInput);
  const ref = { target: input.target, backupId: input.backupId, replicaSet: input.replicaSet, cursorId: opened.cursorId, sessionId: opened.sessionId };

  // From here on the cursor pins the checkpoint: whatever happens, it is closed before this workflow ends.
  const keepAliveScope = new CancellationScope();
  let cursorLost: unknown;
  const keepAlive = keepAliveScope
    .run(() => a.keepAlive.keepBackupCursorAlive({ ...ref, intervalMs: input.keepAliveIntervalMs }))
    .catch((e: unknown) => {
      if (!isCancellation(e)) cursorLost = e;
    });
  const failIfLost = () => {
    if (cursorLost) throw cursorLost;
  };

  // Copies run in their own scope: whatever ends the replica set early (a lost cursor, a failed batch, a cancel),
  // every copy activity is cancelled and has stopped writing before the cursor is closed and the parent removes
  // the partial data (the activities wait for their cancellation to complete).
  const copyScope = new CancellationScope();
  let copying: Promise<unknown> | undefined;
  let copyWorkers: Array<Promise<void>> = [];

  try {
    await report('waiting');
    await parent.signal(cursorOpenedSignal, { replicaSet: input.replicaSet, node, oplogEnd: opened.oplogEnd });
    await condition(() => extendTo !== undefined || cursorLost !== undefined);
    failIfLost();

    await report('extend');
    await a.extend.extendBackupCursor({ ...cursorInput, serverBackupId: opened.serverBackupId, to: extendTo!, maxWaitMs: 30 * 60_000 });
    failIfLost();

    const plan: CopyBatch[] = await a.cursor.planCopyBatches({
      ...cursorInput,
      dbpath: opened.dbpath,
      maxFiles: input.batchMaxFiles,
      maxBytes: input.batchMaxBytes,
    });
    progress.filesTotal = plan.reduce((s, b) => s + b.to - b.from, 0);
    progress.bytesTotal = plan.reduce((s, b) => s + b.bytes, 0);
    await report('copy');

    // A sliding window of copy activities; a lost cursor stops the copy at once.
    const worker = async () => {
      for (let b = queue.shift(); b; b = queue.shift()) {
        failIfLost();
        const r = await a.copy.copyBatch({
          ...cursorInput,
          dbpath: opened.dbpath,
          batch: b,
          throttleWorkflowId: workflowInfo().workflowId,
        });
        progress.filesDone += r.files;
        progress.bytesDone += r.bytes;
        await parent.signal(replicaSetProgressSignal, { ...progress });
      }
    };
    const queue = [...plan];
    const lostWatch = condition(() => cursorLost !== undefined).then(failIfLost);
    copying = copyScope.run(() => {
      copyWorkers = Array.from({ length: Math.max(1, input.copyParallelism) }, worker);
      return Promise.all(copyWorkers);
    });
    await Promise.race([copying, lostWatch]);
    failIfLost();

    await report('verify');
    await a.cursor.proveBackupCursorAlive(ref);
    failIfLost();
  } catch (e) {
    if (cursorLost && !isCancellation(e)) {
      throw ApplicationFailure.nonRetryable(`replica set ${input.replicaSet}: backup cursor on ${node} lost`, 'CURSOR_LOST', String(cursorLost));
    }
    throw e;
  } finally {
    copyScope.cancel();
    keepAliveScope.cancel();
    await CancellationScope.nonCancellable(async () => {
      copying?.catch(() => undefined);
      await Promise.allSettled(copyWorkers);
      await keepAlive;
      await report('close').catch(() => undefined);
      // A close that fails leaves the cursor to the server's session timeout; the copy itself was already proven.
      await a.cursor.closeBackupCursor(ref).catch((e: unknown) => log.warn('closing the backup cursor failed', { node, error: String(e) }));
    });
  }

  await report('manifest');
  const manifest = await control.writeReplicaSetManifest({
    ...cursorInput,
    node,
    serverBackupId: opened.serverBackupId,
    dbpath: opened.dbpath,
    oplogStart: opened.oplogStart,
    oplogEnd: opened.oplogEnd,
    checkpointTimestamp: opened.checkpointTimestamp,
    extendedTo: extendTo!,
  });
  await report('done');
  return { name: input.replicaSet, node, files: manifest.files, bytes: manifest.bytes, extendedTo: extendTo! };
}
