/**
 * `replicaSetBackup`: one replica set of a backup, a child of `clusterBackup` (a replica set is a cluster of one).
 *
 * select node → open `$backupCursor` (agent) → keep-alive starts → report `oplogEnd` to the parent → wait for the
 * common timestamp → extend → copy in parallel batches → report copied → (a later common timestamp: extend again,
 * copy the journal files again) → `finish` → prove the cursor alive → close → replica-set manifest.
 * The keep-alive runs beside everything after the open; its failure (a lost cursor) stops the copy at once, so a copy
 * is never declared good over a released pin: the replica set re-opens a cursor and copies anew (at most
 * `cursorReopens` times, and only before the parent said `finish`), or fails with CURSOR_LOST. Cleanup (copies
 * stopped, cursor closed) runs on every path. The protocol with the parent: messages.ts.
 */
import {
  ActivityCancellationType,
  ApplicationFailure,
  CancellationScope,
  CancelledFailure,
  condition,
  getExternalWorkflowHandle,
  isCancellation,
  log,
  patched,
  proxyActivities,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { BackupCursorActivities, CursorRef, IfBusy, OpenedCursor } from '../../activities/agent/backup-cursor.ts';
import type { CopyActivities } from '../../activities/agent/copy-batch.ts';
import type { RepositoryActivities } from '../../activities/orchestrator/repository.ts';
import type { TopologyActivities } from '../../activities/orchestrator/topology.ts';
import type { BackupPhase, CopyBatch, ReplicaSetProgress } from '../../common/backup-types.ts';
import { nonRetryableCodes } from '../../common/errors.ts';
import { CutpointPhase } from '../../common/search-attributes.ts';
import type { MongoTarget } from '../../common/target.ts';
import { agentTaskQueue } from '../../common/task-queues.ts';
import { compareTs, type Ts } from '../../common/timestamp.ts';
import {
  childThrottleSignal,
  cursorOpenedSignal,
  extendToSignal,
  finishSignal,
  progressQuery,
  replicaSetCopiedSignal,
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
  /** Re-opens allowed after a lost cursor before failing with CURSOR_LOST. */
  cursorReopens: number;
  /** When another backup cursor holds the chosen node: fail at once (default) or wait for it to close. */
  ifBusy?: IfBusy;
  /** Heartbeat timeout of the agent's long activities, ms (default {@link AGENT_HEARTBEAT_TIMEOUT_MS}). */
  agentHeartbeatTimeoutMs?: number;
}

export interface ReplicaSetBackupResult {
  name: string;
  node: string;
  files: number;
  bytes: number;
  extendedTo: Ts;
}


/**
 * Patch: progress signals to the parent are not waited for. Histories recorded before it waited for each one, and
 * replay that way.
 */
export const PROGRESS_WITHOUT_WAITING = 'progress-without-waiting';
const NON_RETRYABLE = nonRetryableCodes();

const control = proxyActivities<TopologyActivities & RepositoryActivities>({
  startToCloseTimeout: '2 minutes',
  retry: { maximumAttempts: 5, nonRetryableErrorTypes: NON_RETRYABLE },
});

/**
 * Default heartbeat timeout of the agent's long activities. They beat every second (throttled to one per two seconds
 * by the worker), so a SIGKILLed agent is noticed within this and its work retried on the restarted agent.
 */
export const AGENT_HEARTBEAT_TIMEOUT_MS = 20_000;

function agent(node: string, ifBusy: IfBusy, heartbeatTimeoutMs: number) {
  const taskQueue = agentTaskQueue(node);
  return {
    cursor: proxyActivities<BackupCursorActivities & CopyActivities>({
      taskQueue,
      startToCloseTimeout: '10 minutes',
      heartbeatTimeout: '1 minute',
      retry: { maximumAttempts: 5, nonRetryableErrorTypes: NON_RETRYABLE },
    }),
    // A cancelled open is waited for: the activity lets a command in flight finish and kills whatever it opened,
    // so no cursor is left pinned by a cancellation that raced the open. Waiting for a busy slot may take long.
    open: proxyActivities<BackupCursorActivities>({
      taskQueue,
      startToCloseTimeout: ifBusy === 'wait' ? '7 days' : '10 minutes',
      heartbeatTimeout: heartbeatTimeoutMs,
      cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
      retry: { maximumAttempts: 5, nonRetryableErrorTypes: NON_RETRYABLE },
    }),
    keepAlive: proxyActivities<BackupCursorActivities>({
      taskQueue,
      startToCloseTimeout: '30 days',
      // Beats every second: a dead agent is noticed within the timeout, then the activity is retried on the same
      // queue, where a restarted agent resumes the cursor through its recorded session id.
      heartbeatTimeout: heartbeatTimeoutMs,
      cancellationType: ActivityCancellationType.TRY_CANCEL,
      retry: { initialInterval: '1 second', maximumInterval: '10 seconds', nonRetryableErrorTypes: NON_RETRYABLE },
    }),
    // Waited for when cancelled (it stops at once), so it never appends to a file list being removed.
    extend: proxyActivities<BackupCursorActivities>({
      taskQueue,
      startToCloseTimeout: '1 hour',
      heartbeatTimeout: heartbeatTimeoutMs,
      cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
      retry: { maximumAttempts: 5, nonRetryableErrorTypes: NON_RETRYABLE },
    }),
    copy: proxyActivities<CopyActivities>({
      taskQueue,
      startToCloseTimeout: '12 hours',
      heartbeatTimeout: heartbeatTimeoutMs,
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
  }), { description: "Live progress of this replica set (the parent's progress aggregates every replica set)" });
  setHandler(throttleQuery, () => bytesPerSec, { description: "This replica set's share of the copy rate (bytes per second); the copies poll it" });
  setHandler(childThrottleSignal, ({ bytesPerSec: r }) => {
    bytesPerSec = r;
  }, { description: 'Internal, from the parent: a new share of the whole-backup rate' });
  setHandler(extendToSignal, ({ to }) => {
    extendTo = to;
  }, { description: 'Internal, from the parent: extend to this common timestamp' });

  // Progress is for display: once the patch is in, it is sent without waiting for the parent to receive it (each
  // wait costs a workflow task round trip on this replica set's critical path, nine or more per backup).
  const sendProgress = async () => {
    const sent = parent.signal(replicaSetProgressSignal, { ...progress });
    if (!patched(PROGRESS_WITHOUT_WAITING)) return sent;
    sent.catch((e: unknown) => {
      if (!isCancellation(e)) log.warn('progress signal to the parent failed', { error: String(e) });
    });
    // A report stays a cancellation point, as the awaited signal was: a cancel that arrived while a step ran
    // (a held close, a manifest write) ends this replica set cancelled rather than complete.
    if (CancellationScope.current().consideredCancelled) throw new CancelledFailure('cancelled');
  };
  const report = async (phase: BackupPhase) => {
    progress.phase = phase;
    upsertSearchAttributes([{ key: CutpointPhase, value: phase }]);
    await sendProgress();
  };

  const { node } = await control.selectBackupNode({
    target: input.target,
    replicaSet: input.replicaSet,
    maxLagSecs: input.maxLagSecs,
    node: input.node,
  });
  progress.node = node;
  const a = agent(node, input.ifBusy ?? 'fail', input.agentHeartbeatTimeoutMs ?? AGENT_HEARTBEAT_TIMEOUT_MS);

  const cursorInput = { target: input.target, backupId: input.backupId, replicaSet: input.replicaSet, repo: input.repo };
  let finishAt: Ts | undefined;
  setHandler(finishSignal, ({ commonTimestamp }) => {
    finishAt = commonTimestamp;
  }, { description: 'Internal, from the parent: every replica set has copied through the final common timestamp' });
  let reopensLeft = input.cursorReopens;

  /**
   * One backup cursor's life: open, report, then extend-and-copy for every common timestamp the parent sends until
   * it says `finish`; prove the cursor alive; close it on every path. Returns undefined when the cursor was lost
   * and may be re-opened (the caller resets the copy and calls again).
   */
  const withCursor = async (): Promise<{ opened: OpenedCursor; extendedTo: Ts } | undefined> => {
    // Once the cursor is open it pins the checkpoint: whatever happens, it is closed before this returns.
    let opened: OpenedCursor | undefined;
    let ref: CursorRef | undefined;
    const keepAliveScope = new CancellationScope();
    let cursorLost: unknown;
    let keepAlive: Promise<void> | undefined;
    const failIfLost = () => {
      if (cursorLost) throw cursorLost;
    };
    // Copies run in their own scope: whatever ends the cursor early (a lost cursor, a failed batch, a cancel), every
    // copy activity is cancelled and has stopped writing before the cursor is closed and the partial data removed
    // (the activities wait for their cancellation to complete).
    const copyScope = new CancellationScope();
    const copyWorkers: Array<Promise<void>> = [];

    const copyRound = async (o: OpenedCursor, batches: CopyBatch[]) => {
      const queue = [...batches];
      const worker = async () => {
        for (let b = queue.shift(); b; b = queue.shift()) {
          failIfLost();
          const r = await a.copy.copyBatch({ ...cursorInput, dbpath: o.dbpath, batch: b, throttleWorkflowId: workflowInfo().workflowId });
          progress.filesDone += r.files;
          progress.bytesDone += r.bytes;
          await sendProgress();
        }
      };
      // A lost cursor stops the copy at once.
      const lostWatch = condition(() => cursorLost !== undefined).then(failIfLost);
      lostWatch.catch(() => undefined); // observed by the race below, or moot once the round is over
      const round = copyScope.run(() => {
        const ws = Array.from({ length: Math.max(1, input.copyParallelism) }, worker);
        copyWorkers.push(...ws);
        return Promise.all(ws);
      });
      round.catch(() => undefined);
      await Promise.race([round, lostWatch]);
      failIfLost();
    };

    try {
      await report('open');
      opened = await a.open.openBackupCursor({ ...cursorInput, ...(input.ifBusy ? { ifBusy: input.ifBusy } : {}) });
      const o = opened;
      const cursorRef: CursorRef = { target: input.target, backupId: input.backupId, replicaSet: input.replicaSet, cursorId: o.cursorId, sessionId: o.sessionId };
      ref = cursorRef;
      keepAlive = keepAliveScope
        .run(() => a.keepAlive.keepBackupCursorAlive({ ...cursorRef, intervalMs: input.keepAliveIntervalMs }))
        .catch((e: unknown) => {
          if (!isCancellation(e)) cursorLost = e;
        });

      await report('waiting');
      await parent.signal(cursorOpenedSignal, { replicaSet: input.replicaSet, node, oplogEnd: o.oplogEnd });

      let extendedTo: Ts | undefined;
      let planned = 0;
      let nextBatch = 0;
      // A target this cursor can reach (not before its own oplogEnd) and has not yet copied through.
      const newTarget = () =>
        extendTo !== undefined && (!o.oplogEnd || compareTs(extendTo, o.oplogEnd) >= 0) && (!extendedTo || compareTs(extendTo, extendedTo) > 0);
      const finishing = () => finishAt !== undefined && extendedTo !== undefined && compareTs(finishAt, extendedTo) === 0;
      for (;;) {
        await condition(() => cursorLost !== undefined || newTarget() || finishing());
        failIfLost();
        if (!newTarget()) break; // finish: every replica set has copied through extendedTo

        const to = extendTo!;
        await report('extend');
        await a.extend.extendBackupCursor({ ...cursorInput, serverBackupId: o.serverBackupId, to, maxWaitMs: 30 * 60_000 });
        failIfLost();
        // After a later extend only journal files are copied again (whole: they grew) and any new ones; the data
        // files copied under this cursor are still what its checkpoint pins.
        const { batches, listed } = await a.cursor.planCopyBatches({
          ...cursorInput,
          dbpath: o.dbpath,
          maxFiles: input.batchMaxFiles,
          maxBytes: input.batchMaxBytes,
          journalOnlyBefore: planned,
          firstBatchNo: nextBatch,
        });
        planned = listed;
        nextBatch += batches.length;
        progress.filesTotal += batches.reduce((sum, b) => sum + b.to - b.from, 0);
        progress.bytesTotal += batches.reduce((sum, b) => sum + b.bytes, 0);
        await report('copy');
        await copyRound(o, batches);
        extendedTo = to;
        await parent.signal(replicaSetCopiedSignal, { replicaSet: input.replicaSet, extendedTo: to });
        await report('waiting');
      }

      await report('verify');
      await a.cursor.proveBackupCursorAlive(cursorRef);
      failIfLost();
      return { opened: o, extendedTo: extendedTo! };
    } catch (e) {
      // A failure of the copy (a listed file gone from the dbpath, a short read) is often the first sign of a cursor
      // that died between two keep-alives: its checkpoint was released and WiredTiger removed or reused the files.
      // Ask the cursor: if it is gone, that is the error to report (and to re-open for), not the symptom.
      if (!cursorLost && ref && !isCancellation(e)) {
        const asked = ref;
        await CancellationScope.nonCancellable(() => a.cursor.proveBackupCursorAlive(asked)).catch((lost: unknown) => {
          if ((lost as { cause?: { type?: string } }).cause?.type === 'CURSOR_LOST') cursorLost = lost;
        });
      }
      if (cursorLost && !isCancellation(e)) {
        // Re-open while the parent can still move the common timestamp (not once it told everyone to finish).
        if (reopensLeft > 0 && finishAt === undefined) {
          reopensLeft--;
          log.warn('backup cursor lost: re-opening it', { node, error: String(cursorLost), reopensLeft });
          return undefined;
        }
        throw ApplicationFailure.nonRetryable(`replica set ${input.replicaSet}: backup cursor on ${node} lost`, 'CURSOR_LOST', String(cursorLost));
      }
      throw e;
    } finally {
      copyScope.cancel();
      keepAliveScope.cancel();
      await CancellationScope.nonCancellable(async () => {
        await Promise.allSettled(copyWorkers);
        await keepAlive;
        if (!ref) return; // never opened (or the open cleaned up after itself)
        await report('close').catch(() => undefined);
        // A close that fails leaves the cursor to the server's session timeout; the copy itself was already proven.
        await a.cursor.closeBackupCursor(ref).catch((e: unknown) => log.warn('closing the backup cursor failed', { node, error: String(e) }));
      });
    }
  };

  let result = await withCursor();
  while (!result) {
    // The lost cursor's checkpoint is gone: its files must not mix with the next cursor's.
    await control.resetReplicaSetCopy({ repo: input.repo, backupId: input.backupId, replicaSet: input.replicaSet });
    Object.assign(progress, { filesDone: 0, filesTotal: 0, bytesDone: 0, bytesTotal: 0 });
    result = await withCursor();
  }
  const { opened: o, extendedTo } = result;

  await report('manifest');
  // Not cancellable once started: a cancel that lands during the write waits for it, so the parent's removal of the
  // data comes after it and no replica-set manifest reappears in a cancelled backup.
  const manifest = await CancellationScope.nonCancellable(() =>
    control.writeReplicaSetManifest({
      ...cursorInput,
      node,
      serverBackupId: o.serverBackupId,
      dbpath: o.dbpath,
      oplogStart: o.oplogStart,
      oplogEnd: o.oplogEnd,
      checkpointTimestamp: o.checkpointTimestamp,
      extendedTo,
    }),
  );
  await report('done');
  return { name: input.replicaSet, node, files: manifest.files, bytes: manifest.bytes, extendedTo };
}
