/**
 * `clusterBackup`: the parent workflow of a backup; its workflow id is the backup id (architecture.md phases 1, 3,
 * 6). It discovers the topology (a replica set, or through mongos the config server and every shard), takes the
 * cluster's lock (one backup per cluster at a time: cluster-lock.ts; `ifBusy` says whether to wait), stops the
 * balancer of a sharded cluster (restored on every path), writes the `running` cluster manifest, starts one
 * `replicaSetBackup` child per replica set, waits until every cursor is open, computes the common timestamp (the
 * maximum `oplogEnd`, see {@link commonTimestamp}) and sends it to every child, moves it forward if a child has to
 * re-open a lost cursor (messages.ts describes the protocol), tells the children to finish once all have copied
 * through it, then writes the cluster manifest `complete`: the commit point. One child failing cancels the others;
 * failure and cancellation end in a `failed` / `cancelled` manifest, every cursor closed by its child.
 */
import {
  ApplicationFailure,
  CancellationScope,
  CancelledFailure,
  ChildWorkflowCancellationType,
  ParentClosePolicy,
  condition,
  isCancellation,
  log,
  patched,
  proxyActivities,
  setHandler,
  startChild,
  upsertSearchAttributes,
  workflowInfo,
  type ChildWorkflowHandle,
} from '@temporalio/workflow';
import type { BalancerActivities } from '../../activities/orchestrator/balancer.ts';
import type { ClusterLockActivities } from '../../activities/orchestrator/cluster-lock.ts';
import type { RepositoryActivities } from '../../activities/orchestrator/repository.ts';
import type { TopologyActivities } from '../../activities/orchestrator/topology.ts';
import type { BackupInput, BackupPhase, BackupProgress, BackupSummary, ReplicaSetProgress } from '../../common/backup-types.ts';
import { nonRetryableCodes } from '../../common/errors.ts';
import { CutpointCluster, CutpointKind, CutpointStatus } from '../../common/search-attributes.ts';
import type { MongoTarget } from '../../common/target.ts';
import { compareTs, maxTs, type Ts } from '../../common/timestamp.ts';
import { acquireClusterLock, releaseClusterLock, type clusterLock } from './cluster-lock.ts';
import { cancellableBySignal, publishStatus } from '../common/live-status.ts';
import { failureInfo, progressMarkdown } from './format.ts';
import {
  cancelSignal,
  childThrottleSignal,
  cursorOpenedSignal,
  extendToSignal,
  finishSignal,
  progressQuery,
  replicaSetCopiedSignal,
  replicaSetProgressSignal,
  setThrottleUpdate,
} from './messages.ts';
import { replicaSetBackup, type ReplicaSetBackupInput, type ReplicaSetBackupResult } from './replica-set-backup.ts';


/**
 * Patch: the replica sets' children are started in one workflow task. Histories recorded before it started them
 * one after another, and replay that way.
 */
export const START_CHILDREN_TOGETHER = 'start-children-together';
const control = proxyActivities<TopologyActivities & RepositoryActivities & BalancerActivities & ClusterLockActivities>({
  startToCloseTimeout: '2 minutes',
  retry: { maximumAttempts: 5, nonRetryableErrorTypes: nonRetryableCodes() },
});

/**
 * The common timestamp: the maximum `oplogEnd` over the replica sets (the Percona procedure, seed 002). Every
 * replica set has applied its own `oplogEnd`, so the maximum is a time each can reach; extending to it makes each
 * node wait until its committed snapshot gets there, so every restored replica set stands at one cluster time that
 * the cluster really passed through. (PBM's alternative, the maximum majority last-write, is a bound chosen the
 * same way but read separately from the cursor; `oplogEnd` comes with the cursor itself, with no extra round trip.)
 */
export function commonTimestamp(oplogEnds: Ts[]): Ts {
  const [first, ...rest] = oplogEnds;
  if (!first) throw new Error('no replica set reported an oplogEnd');
  return maxTs(first, ...rest);
}

const sameTs = (a: Ts | undefined, b: Ts | undefined) => !!a && !!b && compareTs(a, b) === 0;

export async function clusterBackup(input: BackupInput): Promise<BackupSummary> {
  const backupId = workflowInfo().workflowId;
  const startedAt = new Date().toISOString();
  const target: MongoTarget = { uri: input.uri, credentials: input.credentials ?? { kind: 'env' } };
  let status: BackupProgress['status'] = 'running';
  let phase: BackupPhase = 'discover';
  let cluster = input.cluster ?? '';
  let bytesPerSec = Math.max(0, input.bytesPerSec ?? 0);
  let common: Ts | undefined;
  const rsProgress = new Map<string, ReplicaSetProgress>();
  const opened = new Map<string, Ts | null>();
  const reopened: string[] = [];
  const copied = new Map<string, Ts>();
  const children: Array<ChildWorkflowHandle<typeof replicaSetBackup>> = [];
  let lock: ChildWorkflowHandle<typeof clusterLock> | undefined;

  const snapshot = (): BackupProgress => {
    const rss = [...rsProgress.values()];
    return {
      kind: 'backup',
      status,
      phase,
      bytesDone: rss.reduce((s, r) => s + r.bytesDone, 0),
      bytesTotal: rss.reduce((s, r) => s + r.bytesTotal, 0),
      bytesPerSec,
      ...(common ? { commonTimestamp: common } : {}),
      replicaSets: rss,
    };
  };
  const publish = () => {
    const p = snapshot();
    publishStatus(progressMarkdown(backupId, cluster, p), p);
  };
  const enter = (p: BackupPhase) => {
    phase = p;
    publish();
  };

  setHandler(progressQuery, snapshot, { description: 'Live progress: phase, bytes copied of the total, rate, per replica set' });
  const cancel = cancellableBySignal(cancelSignal, 'Cancel the backup ({"reason": "..."} optional): copies stop, cursors close, the manifest says cancelled');
  const mainScope = cancel.scope;
  const shareRate = async () => {
    const share = children.length ? Math.floor(bytesPerSec / children.length) : bytesPerSec;
    await Promise.all(children.map((c) => c.signal(childThrottleSignal, { bytesPerSec: share })));
  };
  setHandler(
    setThrottleUpdate,
    async ({ bytesPerSec: rate }) => {
      bytesPerSec = rate;
      await shareRate();
      publish();
      return { bytesPerSec };
    },
    {
      validator: ({ bytesPerSec: rate }) => {
        if (!Number.isInteger(rate) || rate < 0) throw new Error(`bytesPerSec must be a non-negative integer, got ${rate}`);
      },
      description: 'Change the whole-backup copy rate (bytes per second, 0 = unlimited) while the backup runs',
    },
  );
  setHandler(cursorOpenedSignal, ({ replicaSet, oplogEnd }) => {
    opened.set(replicaSet, oplogEnd);
    // After the barrier this is a re-opened cursor (the first one was lost).
    if (common) reopened.push(replicaSet);
  }, { description: 'Internal, from a child: its backup cursor is open (oplogEnd)' });
  setHandler(replicaSetCopiedSignal, ({ replicaSet, extendedTo }) => {
    copied.set(replicaSet, extendedTo);
  }, { description: 'Internal, from a child: copied through this extend' });
  setHandler(replicaSetProgressSignal, (p) => {
    rsProgress.set(p.name, p);
    publish();
  }, { description: 'Internal, from a child: its progress' });

  upsertSearchAttributes([
    { key: CutpointKind, value: 'backup' },
    { key: CutpointStatus, value: 'running' },
    ...(cluster ? [{ key: CutpointCluster, value: cluster }] : []),
  ]);
  publish();

  let results: ReplicaSetBackupResult[] = [];
  let replicaSets: Array<{ name: string; configServer: boolean; uri: string }> = [];
  let sharded = false;
  let failure: unknown;
  try {
    await mainScope.run(async () => {
      const topology = await control.discoverTopology({ target });
      cluster ||= (topology.replicaSets.find((r) => r.configServer) ?? topology.replicaSets[0]!).name;
      upsertSearchAttributes([{ key: CutpointCluster, value: cluster }]);
      // One backup per cluster: before anything touches the cluster or the repository.
      lock = await acquireClusterLock({
        lockId: topology.lockId,
        holder: { backupId, cluster, since: new Date().toISOString() },
        ifBusy: input.ifBusy ?? 'fail',
        lookupHolder: (lockId) => control.clusterLockHolder({ lockId }),
        onWait: (holder) => {
          if (phase !== 'waiting') log.info('waiting for the running backup of this cluster to end', { cluster, holder: holder?.backupId ?? topology.lockId });
          enter('waiting');
        },
      });
      if (phase === 'waiting') enter('discover');
      replicaSets = topology.replicaSets.map((r) => ({ name: r.name, configServer: r.configServer, uri: r.uri }));
      for (const r of replicaSets) rsProgress.set(r.name, { name: r.name, node: null, phase: 'select', filesDone: 0, filesTotal: 0, bytesDone: 0, bytesTotal: 0 });
      await control.initBackup({ repo: input.repo, backupId, cluster, startedAt, replicaSets: replicaSets.map(({ name, configServer }) => ({ name, configServer })) });
      if (topology.kind === 'sharded') {
        sharded = true;
        enter('balancer');
        await control.stopBalancer({ target, repo: input.repo, backupId });
      }

      const share = replicaSets.length ? Math.floor(bytesPerSec / replicaSets.length) : bytesPerSec;
      const childOptions = (r: (typeof replicaSets)[number]) => ({
        workflowId: `${backupId}.${r.name}`,
        cancellationType: ChildWorkflowCancellationType.WAIT_CANCELLATION_COMPLETED,
        parentClosePolicy: ParentClosePolicy.REQUEST_CANCEL,
        typedSearchAttributes: [
          { key: CutpointKind, value: 'backup' },
          { key: CutpointCluster, value: cluster },
        ],
        args: [
          {
            parentId: backupId,
            backupId,
            replicaSet: r.name,
            configServer: r.configServer,
            target: { uri: r.uri, credentials: target.credentials },
            repo: input.repo,
            bytesPerSec: share,
            node: input.node,
            maxLagSecs: input.maxLagSecs ?? 30,
            keepAliveIntervalMs: input.keepAliveIntervalMs ?? 60_000,
            copyParallelism: input.copyParallelism ?? 4,
            cursorReopens: input.cursorReopens ?? 2,
            ...(input.ifBusy ? { ifBusy: input.ifBusy } : {}),
            ...(input.agentHeartbeatTimeoutMs ? { agentHeartbeatTimeoutMs: input.agentHeartbeatTimeoutMs } : {}),
            batchMaxFiles: input.batchMaxFiles ?? 500,
            batchMaxBytes: input.batchMaxBytes ?? 256 * 1024 * 1024,
          } satisfies ReplicaSetBackupInput,
        ] as [ReplicaSetBackupInput],
      });
      if (patched(START_CHILDREN_TOGETHER)) {
        // One workflow task starts every replica set's child (one round trip, not one per replica set). A start
        // that fails (a leftover workflow with the id) fails the backup; the children that did start are cancelled
        // with the others in the cleanup below.
        const started = await Promise.allSettled(replicaSets.map((r) => startChild(replicaSetBackup, childOptions(r))));
        for (const st of started) if (st.status === 'fulfilled') children.push(st.value);
        const failed = started.find((st): st is PromiseRejectedResult => st.status === 'rejected');
        if (failed) throw failed.reason;
      } else {
        for (const r of replicaSets) children.push(await startChild(replicaSetBackup, childOptions(r)));
      }
      enter('open');
      const done = Promise.all(children.map((c) => c.result()));
      // The barrier: every cursor open (or a child failed, which rejects `done`).
      await Promise.race([condition(() => opened.size === replicaSets.length), done]);
      const ends = [...opened.values()].filter((t): t is Ts => t !== null);
      if (ends.length !== replicaSets.length) throw ApplicationFailure.nonRetryable('a replica set reported no oplogEnd (not a replica-set member?)', 'NOT_SUPPORTED');
      common = commonTimestamp(ends);
      reopened.length = 0;
      await Promise.all(children.map((c) => c.signal(extendToSignal, { to: common! })));
      enter('copy');
      // Until every replica set has copied through one common timestamp; a re-opened cursor may move it forward.
      for (;;) {
        await Promise.race([condition(() => reopened.length > 0 || replicaSets.every((r) => sameTs(copied.get(r.name), common))), done]);
        if (reopened.length === 0) break;
        const names = reopened.splice(0);
        const next = commonTimestamp([common, ...names.map((n) => opened.get(n)).filter((t): t is Ts => !!t)]);
        const moved = compareTs(next, common) > 0;
        common = next;
        log.info(moved ? 'a re-opened cursor moved the common timestamp forward' : 'a re-opened cursor joins at the common timestamp', { replicaSets: names, common });
        const to = moved ? children : children.filter((c) => names.some((n) => c.workflowId === `${backupId}.${n}`));
        await Promise.all(to.map((c) => c.signal(extendToSignal, { to: common! })));
        publish();
      }
      await Promise.all(children.map((c) => c.signal(finishSignal, { commonTimestamp: common! })));
      results = await done;
    });
  } catch (e) {
    failure = e;
  }

  // Commit or record the failure; this must happen whatever cancelled the main scope.
  return CancellationScope.nonCancellable(async () => {
    if (failure !== undefined && children.length) {
      // One replica set failing stops the others at once (their copies cancelled, cursors closed); a cancel has
      // already reached them. Either way every child has finished its cleanup before the manifest says so.
      mainScope.cancel();
      const settled = await Promise.allSettled(children.map((c) => c.result()));
      for (const s of settled) if (s.status === 'fulfilled' && !results.some((r) => r.name === s.value.name)) results.push(s.value);
    }
    // The balancer goes back to its recorded state on every path (the manifest knows it, even after a crash).
    let balancerError: unknown;
    if (sharded) await control.restoreBalancer({ target, repo: input.repo, backupId }).catch((e: unknown) => (balancerError = e));
    if (balancerError) log.error('the balancer could not be restarted: start it by hand (sh.startBalancer())', { error: String(balancerError) });
    const finishedAt = new Date().toISOString();
    const bytes = results.reduce((s, r) => s + r.bytes, 0);
    const cancelReason = cancel.reason();
    const cancelled = failure !== undefined && (isCancellation(failure) || cancelReason !== undefined);
    status = failure === undefined ? 'complete' : cancelled ? 'cancelled' : 'failed';
    let error = failure === undefined ? undefined : cancelled ? { code: 'CANCELLED', message: `cancelled: ${cancelReason ?? 'workflow cancellation'}` } : failureInfo(failure);
    enter(failure === undefined ? 'commit' : 'cleanup');
    if (replicaSets.length) {
      try {
        await control.finishBackup({
          repo: input.repo,
          backupId,
          status,
          finishedAt,
          commonTimestamp: failure === undefined ? (common ?? null) : null,
          bytes,
          nodes: Object.fromEntries(results.map((r) => [r.name, r.node])),
          ...(error ? { error } : {}),
        });
      } catch (e) {
        // The repository could not take the outcome: a backup that was to be committed is not (the manifest is not
        // `complete`); a failure keeps its first cause. Either way the caller still gets the summary.
        log.error('writing the final cluster manifest failed', { error: String(e) });
        if (status === 'complete') {
          status = 'failed';
          error = failureInfo(e);
        }
      }
    }
    // Last: the next backup of this cluster may start once everything above is done.
    if (lock) await releaseClusterLock(lock);
    enter('done');
    const summary: BackupSummary = {
      id: backupId,
      cluster,
      status: status as BackupSummary['status'],
      commonTimestamp: status === 'complete' ? (common ?? null) : null,
      startedAt,
      finishedAt,
      bytes,
      replicaSets: replicaSets.map((r) => {
        const res = results.find((x) => x.name === r.name);
        return { name: r.name, configServer: r.configServer, node: res?.node ?? rsProgress.get(r.name)?.node ?? null, files: res?.files ?? 0, bytes: res?.bytes ?? 0 };
      }),
      ...(error ? { error } : {}),
    };
    // Temporal shows the workflow as Failed / Canceled too; the summary rides along as the failure's details.
    if (status === 'cancelled') throw new CancelledFailure(error!.message, [summary]);
    if (status === 'failed') throw ApplicationFailure.nonRetryable(error!.message, error!.code, summary);
    return summary;
  });
}
