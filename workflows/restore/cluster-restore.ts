/**
 * `clusterRestore`: restores a `complete` backup — a replica set, or a whole sharded cluster — to new hosts and
 * dbpaths, every replica set at the backup's common timestamp, in one workflow (its id is the restore id).
 *
 * plan (manifests, target map) → check every target through its agent (dbpath empty unless `overwrite`, port free;
 * an agent that does not answer fails the restore here, before anything is written) → verify every file's SHA-256 in
 * the repository → one `replicaSetRestore` child per replica set (place, prepare, recover, reset, start) → commit
 * (data kept aside is removed). On failure or cancel every target is rolled back: mongods stopped, placed files
 * removed, data kept aside put back. The restored mongods keep running: the summary lists their pids and ports.
 */
import {
  ApplicationFailure,
  CancellationScope,
  CancelledFailure,
  ChildWorkflowCancellationType,
  ParentClosePolicy,
  isCancellation,
  log,
  proxyActivities,
  setHandler,
  startChild,
  upsertSearchAttributes,
  workflowInfo,
  type ChildWorkflowHandle,
} from '@temporalio/workflow';
import type { PlannedReplicaSet, RestoreControlActivities, RestorePlan } from '../../activities/orchestrator/restore-control.ts';
import { nonRetryableCodes } from '../../common/errors.ts';
import {
  replicaSetConnectionString,
  type RestoreInput,
  type RestorePhase,
  type RestoreProgress,
  type RestoreReplicaSetProgress,
  type RestoreSummary,
} from '../../common/restore-types.ts';
import { CutpointCluster, CutpointKind, CutpointStatus } from '../../common/search-attributes.ts';
import { cancellableBySignal, publishStatus } from '../common/live-status.ts';
import { failureInfo } from '../backup/format.ts';
import { agentSteps, DEFAULT_AGENT_TIMEOUT_MS } from './agent-steps.ts';
import { restoreMarkdown } from './format.ts';
import { restoreCancelSignal, restoreProgressQuery, restoreReplicaSetProgressSignal } from '../../common/messages.ts';
import { replicaSetRestore, type ReplicaSetRestoreResult } from './replica-set-restore.ts';
import { checkTargets, verifyAll } from './preflight.ts';

const control = proxyActivities<RestoreControlActivities>({
  startToCloseTimeout: '2 minutes',
  retry: { maximumAttempts: 5, nonRetryableErrorTypes: nonRetryableCodes() },
});

/** Child phases in the order they happen: the parent shows the least advanced one. */
const ORDER: RestorePhase[] = ['place', 'prepare', 'recover', 'reset', 'start', 'done'];

export async function clusterRestore(input: RestoreInput): Promise<RestoreSummary> {
  const restoreId = workflowInfo().workflowId;
  const startedAt = new Date().toISOString();
  const agentTimeoutMs = input.agentTimeoutMs ?? DEFAULT_AGENT_TIMEOUT_MS;
  let status: RestoreProgress['status'] = 'running';
  let phase: RestorePhase = 'plan';
  let plan: RestorePlan | undefined;
  let verifiedBytes = 0;
  let touched = false;
  const rsProgress = new Map<string, RestoreReplicaSetProgress>();
  const children: Array<ChildWorkflowHandle<typeof replicaSetRestore>> = [];

  const snapshot = (): RestoreProgress => {
    const rss = [...rsProgress.values()];
    const copying = ORDER.includes(phase);
    return {
      kind: 'restore',
      status,
      phase,
      bytesDone: copying ? rss.reduce((s, r) => s + r.bytesDone, 0) : verifiedBytes,
      bytesTotal: copying ? rss.reduce((s, r) => s + r.bytesTotal, 0) : (plan?.replicaSets.reduce((s, r) => s + r.bytes, 0) ?? 0),
      bytesPerSec: 0,
      ...(plan ? { commonTimestamp: plan.commonTimestamp } : {}),
      replicaSets: rss,
    };
  };
  const publish = () => {
    const p = snapshot();
    publishStatus(restoreMarkdown(restoreId, input.backupId, p), p);
  };
  const enter = (p: RestorePhase) => {
    phase = p;
    publish();
  };

  setHandler(restoreProgressQuery, snapshot, { description: 'Live progress: phase, bytes placed of the total, per replica set' });
  const cancel = cancellableBySignal(restoreCancelSignal, 'Cancel the restore ({"reason": "..."} optional): every target is rolled back');
  const mainScope = cancel.scope;
  setHandler(restoreReplicaSetProgressSignal, (p) => {
    rsProgress.set(p.name, p);
    const least = [...rsProgress.values()].map((r) => ORDER.indexOf(r.phase)).reduce((a, b) => Math.min(a, b), ORDER.length - 1);
    if (ORDER.includes(phase)) phase = ORDER[least]!;
    publish();
  });
  upsertSearchAttributes([
    { key: CutpointKind, value: 'restore' },
    { key: CutpointStatus, value: 'running' },
  ]);
  publish();

  let results: ReplicaSetRestoreResult[] = [];
  let failure: unknown;
  try {
    await mainScope.run(async () => {
      plan = await control.loadRestorePlan({ repo: input.repo, backupId: input.backupId, to: input.to });
      const p = plan;
      upsertSearchAttributes([{ key: CutpointCluster, value: p.cluster }]);
      for (const r of p.replicaSets) {
        rsProgress.set(r.name, { name: r.name, node: r.members.map((m) => m.host).join(','), phase: 'place', filesDone: 0, filesTotal: r.files * r.members.length, bytesDone: 0, bytesTotal: r.bytes * r.members.length });
      }

      enter('check');
      await checkTargets(restoreId, p.replicaSets.flatMap((r) => r.members), input.overwrite === true, agentTimeoutMs);

      enter('verify');
      await verifyAll(input.repo, input.backupId, p.replicaSets, (bytes) => {
        verifiedBytes = bytes;
        publish();
      });

      enter('place');
      touched = true;
      const cfg = p.replicaSets.find((r) => r.configServer);
      const hostsOf = (r: PlannedReplicaSet) => r.members.map((m) => m.host);
      for (const r of p.replicaSets) {
        children.push(
          await startChild(replicaSetRestore, {
            workflowId: `${restoreId}.${r.name}`,
            cancellationType: ChildWorkflowCancellationType.WAIT_CANCELLATION_COMPLETED,
            parentClosePolicy: ParentClosePolicy.REQUEST_CANCEL,
            typedSearchAttributes: [
              { key: CutpointKind, value: 'restore' },
              { key: CutpointCluster, value: p.cluster },
            ],
            args: [
              {
                parentId: restoreId,
                restoreId,
                backupId: input.backupId,
                repo: input.repo,
                replicaSet: r.name,
                configServer: r.configServer,
                sharded: p.sharded,
                members: r.members,
                files: r.files,
                bytes: r.bytes,
                truncateAfter: p.commonTimestamp,
                overwrite: input.overwrite === true,
                agentTimeoutMs,
                ...(r.configServer
                  ? { shardHosts: Object.fromEntries(p.replicaSets.filter((x) => !x.configServer).map((x) => [x.name, hostsOf(x)])), balancerEnabled: p.balancerWasEnabled }
                  : {}),
                ...(p.sharded && !r.configServer && cfg ? { configConnectionString: replicaSetConnectionString(cfg.name, hostsOf(cfg)) } : {}),
              },
            ],
          }),
        );
      }
      results = await Promise.all(children.map((c) => c.result()));

      enter('commit');
      await Promise.all(p.replicaSets.flatMap((r) => r.members.map((m) => agentSteps(m.host, agentTimeoutMs).commitRestoreTarget({ restoreId, dbpath: m.dbpath }))));
    });
  } catch (e) {
    failure = e;
  }

  return CancellationScope.nonCancellable(async () => {
    if (failure !== undefined) {
      if (children.length) {
        mainScope.cancel();
        await Promise.allSettled(children.map((c) => c.result()));
      }
      if (touched && plan) {
        enter('rollback');
        const undo = await Promise.allSettled(
          plan.replicaSets.flatMap((r) => r.members.map((m) => agentSteps(m.host, agentTimeoutMs).rollbackRestoreTarget({ restoreId, dbpath: m.dbpath }))),
        );
        for (const u of undo) if (u.status === 'rejected') log.warn('rolling back a restore target failed', { error: String(u.reason) });
      }
    }
    const cancelReason = cancel.reason();
    const cancelled = failure !== undefined && (isCancellation(failure) || cancelReason !== undefined);
    status = failure === undefined ? 'complete' : cancelled ? 'cancelled' : 'failed';
    const error = failure === undefined ? undefined : cancelled ? { code: 'CANCELLED', message: `cancelled: ${cancelReason ?? 'workflow cancellation'}` } : failureInfo(failure);
    enter('done');
    const summary: RestoreSummary = {
      id: restoreId,
      backupId: input.backupId,
      cluster: plan?.cluster ?? '',
      status: status as RestoreSummary['status'],
      commonTimestamp: plan?.commonTimestamp ?? null,
      balancerWasEnabled: plan?.balancerWasEnabled ?? null,
      startedAt,
      finishedAt: new Date().toISOString(),
      bytes: failure === undefined ? (plan?.replicaSets.reduce((s, r) => s + r.bytes * r.members.length, 0) ?? 0) : 0,
      replicaSets: (plan?.replicaSets ?? []).map((r) => ({
        name: r.name,
        configServer: r.configServer,
        members: failure === undefined ? (results.find((x) => x.name === r.name)?.members ?? []) : [],
      })),
      ...(error ? { error } : {}),
    };
    if (status === 'cancelled') throw new CancelledFailure(error!.message, [summary]);
    if (status === 'failed') throw ApplicationFailure.nonRetryable(error!.message, error!.code, summary);
    return summary;
  });
}
