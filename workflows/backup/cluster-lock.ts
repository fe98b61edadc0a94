/**
 * At most one cutpoint backup per cluster at a time, as a workflow: `clusterLock`, whose workflow id is the
 * cluster's lock id (activities/orchestrator/cluster-lock.ts). Temporal lets only one running workflow hold an id,
 * so starting it is an atomic test-and-set that needs no storage of our own; the backup starts it as a child with
 * parent-close policy TERMINATE, so a backup that ends in any way — completes, fails, is terminated from the UI —
 * never leaves the lock behind: there is no stale lock to detect.
 *
 * Why a lock at all: the backup cursor's own single slot catches two backups only when they pick the same member,
 * and two backups of a sharded cluster would each stop the balancer and restore the state they recorded — the
 * second records "stopped" (stopped by the first) and leaves the balancer off for good.
 */
import {
  CancellationScope,
  ChildWorkflowCancellationType,
  ParentClosePolicy,
  WorkflowIdReusePolicy,
  condition,
  setCurrentDetails,
  setHandler,
  sleep,
  startChild,
  type ChildWorkflowHandle,
} from '@temporalio/workflow';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import { toFailure } from '../../common/errors.ts';
import type { ClusterLockHolder } from '../../common/cluster-lock.ts';
import { clusterLockHolderQuery, clusterLockReleaseSignal } from '../../common/messages.ts';
import { CutpointCluster, CutpointKind } from '../../common/search-attributes.ts';

/** The lock: held while this workflow runs; `release` ends it. */
export async function clusterLock(holder: ClusterLockHolder): Promise<void> {
  let released = false;
  setHandler(clusterLockHolderQuery, () => holder, { description: 'Who holds the lock: the backup id, its cluster, since when' });
  setHandler(clusterLockReleaseSignal, () => void (released = true), { description: 'The holder is done: the lock ends' });
  setCurrentDetails(`**cutpoint cluster lock** of **${holder.cluster}**: held by backup \`${holder.backupId}\` since ${holder.since}`);
  await condition(() => released);
}

/** Options of {@link acquireClusterLock}. */
export interface AcquireOptions {
  lockId: string;
  holder: ClusterLockHolder;
  /** `'fail'`: CLUSTER_BUSY at once; `'wait'`: until the holder ends. */
  ifBusy: 'fail' | 'wait';
  /** Names the current holder (an activity: only a client can query another workflow). */
  lookupHolder: (lockId: string) => Promise<ClusterLockHolder | undefined>;
  /** Called each time the lock is found taken while waiting. */
  onWait?: (holder: ClusterLockHolder | undefined) => void;
}

/** First and longest pause between two attempts while waiting. */
const RETRY_FIRST_MS = 2_000;
const RETRY_MAX_MS = 30_000;
/** How often the holder is looked up again while waiting (it only feeds progress and logs). */
const LOOKUP_EVERY_MS = 5 * 60_000;

function busyMessage(holder: ClusterLockHolder | undefined, lockId: string, cluster: string): string {
  const who = holder ? `backup ${holder.backupId} (running since ${holder.since})` : `another backup (lock workflow ${lockId})`;
  return `cluster ${cluster} is already being backed up by ${who}: one backup per cluster at a time. Start this one with ifBusy 'wait' (CLI: --if-busy wait) to run it when that one ends`;
}

/**
 * Takes the cluster lock, or fails with CLUSTER_BUSY, or waits (with backoff; a cancel ends the wait). Returns the
 * lock's handle for {@link releaseClusterLock}. The child is started outside any cancellation scope and is never
 * cancelled with the backup: the lock must outlive the backup's cleanup (balancer restored, cursors closed).
 */
export async function acquireClusterLock(o: AcquireOptions): Promise<ChildWorkflowHandle<typeof clusterLock>> {
  let delay = RETRY_FIRST_MS;
  let lookedUpAt = -Infinity;
  let holder: ClusterLockHolder | undefined;
  for (;;) {
    try {
      return await CancellationScope.nonCancellable(() =>
        startChild(clusterLock, {
          workflowId: o.lockId,
          args: [o.holder],
          parentClosePolicy: ParentClosePolicy.TERMINATE,
          cancellationType: ChildWorkflowCancellationType.ABANDON,
          workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
          typedSearchAttributes: [
            { key: CutpointKind, value: 'lock' },
            { key: CutpointCluster, value: o.holder.cluster },
          ],
        }),
      );
    } catch (e) {
      if (!(e instanceof WorkflowExecutionAlreadyStartedError)) throw e;
    }
    if (Date.now() - lookedUpAt >= LOOKUP_EVERY_MS) {
      holder = await o.lookupHolder(o.lockId);
      lookedUpAt = Date.now();
    }
    if (o.ifBusy === 'fail') throw toFailure('CLUSTER_BUSY', busyMessage(holder, o.lockId, o.holder.cluster), { lockId: o.lockId, holder });
    o.onWait?.(holder);
    await sleep(delay);
    delay = Math.min(RETRY_MAX_MS, delay * 2);
  }
}

/** Ends the lock and waits until its workflow closed, so a waiting backup can take it at once. Never throws. */
export async function releaseClusterLock(lock: ChildWorkflowHandle<typeof clusterLock>): Promise<void> {
  await CancellationScope.nonCancellable(async () => {
    try {
      await lock.signal(clusterLockReleaseSignal);
      await lock.result();
    } catch {
      // Already ended (an operator cancelled or terminated the lock workflow): nothing is held.
    }
  });
}
