/**
 * `clusterRestore`: restores a `complete` backup — a replica set, or a whole sharded cluster — to new hosts and
 * dbpaths, every replica set at the backup's common timestamp, in one workflow (its id is the restore id). Its
 * phases, in order (docs/phases.md):
 *
 * 0. {@link choosePointInTimeBase}, for a point-in-time restore (`at`) only: the base backup and the captured oplog's
 *    coverage of the replay, checked before any target is touched;
 * 1. {@link planRestore}: the manifests and the target map, checked against each other;
 * 2. {@link checkAllTargets}: every target through its agent (dbpath empty unless `overwrite`, port free); an agent
 *    that does not answer fails the restore here, before anything is written;
 * 3. {@link verifyRepository}, with `overwrite` only: every file's SHA-256 in the repository, before data is moved
 *    aside; an empty target needs no separate pass, its placement checks every chunk and file as it writes;
 * 4. {@link restoreReplicaSets}: one `replicaSetRestore` child per replica set (place, prepare, recover, replay for a
 *    point-in-time restore, reset, start);
 * 5. {@link commitTargets}: data kept aside is removed;
 * 6. {@link rollbackOrRecord}, on every path: on failure or cancel every target is rolled back (mongods stopped,
 *    placed files removed, data kept aside put back); the summary.
 *
 * The restored mongods keep running: the summary lists their pids and ports.
 */
import {
  CancellationScope,
  log,
  proxyActivities,
  setHandler,
  startChild,
  upsertSearchAttributes,
  workflowInfo,
  type ChildWorkflowHandle,
} from '@temporalio/workflow';
import type { PlannedReplicaSet, RestoreControlActivities, RestorePlan } from '../../activities/orchestrator/restore-control.ts';
import type { PitrRestoreActivities } from '../../activities/orchestrator/pitr-restore.ts';
import { restoreSource, type PitrBase } from '../../common/restore-at.ts';
import { nonRetryableCodes } from '../../common/errors.ts';
import { settleAll } from '../../common/settle-all.ts';
import {
  replicaSetConnectionString,
  type RestoreInput,
  type RestorePhase,
  type RestoreProgress,
  type RestoreReplicaSetProgress,
  type RestoreSummary,
} from '../../common/restore-types.ts';
import { CutpointCluster, CutpointKind, CutpointStatus } from '../../common/search-attributes.ts';
import { type Cancellable, cancellableBySignal, publishStatus } from '../common/live-status.ts';
import { outcomeOf, settle } from '../common/outcome.ts';
import { agentSteps } from './agent-steps.ts';
import { replicaSetChildOptions } from '../common/replica-set-child.ts';
import { restoreMarkdown } from './restore-markdown.ts';
import { restoreCancelSignal, restoreProgressQuery, restoreReplicaSetProgressSignal } from '../../common/messages.ts';
import { RESTORE_OPTIONS, resolveNumber } from '../../common/options.ts';
import { replicaSetRestore, type ReplicaSetRestoreResult } from './replica-set-restore.ts';
import { checkTargets, verifyAll } from './preflight.ts';

const pitrControl = proxyActivities<PitrRestoreActivities>({
  startToCloseTimeout: '10 minutes',
  heartbeatTimeout: '1 minute',
  retry: { maximumAttempts: 5, nonRetryableErrorTypes: nonRetryableCodes() },
});

const control = proxyActivities<RestoreControlActivities>({
  startToCloseTimeout: '2 minutes',
  retry: { maximumAttempts: 5, nonRetryableErrorTypes: nonRetryableCodes() },
});

/** Child phases in the order they happen: the parent shows the least advanced one. */
const ORDER: RestorePhase[] = ['place', 'prepare', 'recover', 'replay', 'reset', 'start', 'done'];

/** What the phases of one restore share. */
interface Restore {
  readonly id: string;
  readonly input: RestoreInput;
  /** The backup restored: the input's, or a point-in-time restore's base (set by {@link choosePointInTimeBase}). */
  backupId: string;
  /** A point-in-time restore's target (parsed from `input.at`) and, once chosen, its base. */
  readonly at?: PitrBase['at'];
  pitr?: PitrBase;
  readonly replayBatchOps: number;
  readonly agentTimeoutMs: number;
  readonly startedAt: string;
  readonly cancel: Cancellable;
  status: RestoreProgress['status'];
  phase: RestorePhase;
  plan?: RestorePlan;
  verifiedBytes: number;
  /** Whether any target was written to (then a failure rolls every target back). */
  touched: boolean;
  readonly rsProgress: Map<string, RestoreReplicaSetProgress>;
  readonly children: Array<ChildWorkflowHandle<typeof replicaSetRestore>>;
  results: ReplicaSetRestoreResult[];
}

export async function clusterRestore(input: RestoreInput): Promise<RestoreSummary> {
  const r = startRestoreRun(input);
  let failure: unknown;
  try {
    await r.cancel.scope.run(async () => {
      if (r.at) await choosePointInTimeBase(r, r.at);
      const plan = await planRestore(r);
      await checkAllTargets(r, plan);
      if (r.input.overwrite === true) await verifyRepository(r, plan);
      await restoreReplicaSets(r, plan);
      await commitTargets(r, plan);
    });
  } catch (e) {
    failure = e;
  }
  return rollbackOrRecord(r, failure);
}

/** The run's state, the progress query, the cancel signal and the children's reports. */
function startRestoreRun(input: RestoreInput): Restore {
  const source = restoreSource(input);
  const r: Restore = {
    id: workflowInfo().workflowId,
    input,
    backupId: 'backupId' in source ? source.backupId : '',
    ...('at' in source ? { at: source.at } : {}),
    replayBatchOps: resolveNumber('replayBatchOps', RESTORE_OPTIONS.replayBatchOps, input.replayBatchOps),
    agentTimeoutMs: resolveNumber('agentTimeoutMs', RESTORE_OPTIONS.agentTimeoutMs, input.agentTimeoutMs),
    startedAt: new Date().toISOString(),
    cancel: cancellableBySignal(restoreCancelSignal, 'Cancel the restore ({"reason": "..."} optional): every target is rolled back'),
    status: 'running',
    phase: 'plan',
    verifiedBytes: 0,
    touched: false,
    rsProgress: new Map(),
    children: [],
    results: [],
  };
  setHandler(restoreProgressQuery, () => snapshot(r), { description: 'Live progress: phase, bytes placed of the total, per replica set' });
  setHandler(restoreReplicaSetProgressSignal, (p) => {
    r.rsProgress.set(p.name, p);
    const least = [...r.rsProgress.values()].map((x) => ORDER.indexOf(x.phase)).reduce((a, b) => Math.min(a, b), ORDER.length - 1);
    if (ORDER.includes(r.phase)) r.phase = ORDER[least]!;
    publish(r);
  });
  upsertSearchAttributes([
    { key: CutpointKind, value: 'restore' },
    { key: CutpointStatus, value: 'running' },
  ]);
  publish(r);
  return r;
}

function snapshot(r: Restore): RestoreProgress {
  const rss = [...r.rsProgress.values()];
  const copying = ORDER.includes(r.phase);
  return {
    kind: 'restore',
    status: r.status,
    phase: r.phase,
    bytesDone: copying ? rss.reduce((s, x) => s + x.bytesDone, 0) : r.verifiedBytes,
    bytesTotal: copying ? rss.reduce((s, x) => s + x.bytesTotal, 0) : (r.plan?.replicaSets.reduce((s, x) => s + x.bytes, 0) ?? 0),
    bytesPerSec: 0,
    ...(r.plan ? { commonTimestamp: r.plan.commonTimestamp } : {}),
    replicaSets: rss,
  };
}

function publish(r: Restore): void {
  const p = snapshot(r);
  publishStatus(restoreMarkdown(r.id, r.backupId, p), p);
}

function enter(r: Restore, phase: RestorePhase): void {
  r.phase = phase;
  publish(r);
}

/**
 * Phase 0, point-in-time restores only: the base (the newest complete backup at or before the target) and the
 * captured oplog's coverage from it to the target on every replica set, or PITR_NOT_RESTORABLE naming the window,
 * before anything is touched (repository/pitr-base.ts).
 */
async function choosePointInTimeBase(r: Restore, at: PitrBase['at']): Promise<void> {
  const pitr = await pitrControl.choosePitrBase({ repo: r.input.repo, replicaSets: Object.keys(r.input.to), at });
  r.pitr = pitr;
  r.backupId = pitr.backupId;
}

/** Phase 1: the backup's manifests and the target map, checked against each other. */
async function planRestore(r: Restore): Promise<RestorePlan> {
  const plan = await control.loadRestorePlan({ repo: r.input.repo, backupId: r.backupId, to: r.input.to });
  r.plan = plan;
  upsertSearchAttributes([{ key: CutpointCluster, value: plan.cluster }]);
  for (const x of plan.replicaSets) {
    r.rsProgress.set(x.name, { name: x.name, node: x.members.map((m) => m.host).join(','), phase: 'place', filesDone: 0, filesTotal: x.files * x.members.length, bytesDone: 0, bytesTotal: x.bytes * x.members.length });
  }
  return plan;
}

/** Phase 2: every target through its agent, before anything is written. */
async function checkAllTargets(r: Restore, plan: RestorePlan): Promise<void> {
  enter(r, 'check');
  await checkTargets(r.id, plan.replicaSets.flatMap((x) => x.members), r.input.overwrite === true, r.agentTimeoutMs);
}

/**
 * Phase 3, for `overwrite` restores: every file of the backup read back and its SHA-256 checked before a target's data
 * is moved aside. Empty targets skip it: placement (activities/agent/restore/member-steps.ts) checks each chunk and
 * each file's size and SHA-256 while it writes, so every byte is read once, and a mismatch there fails the restore
 * and rolls the targets back to empty.
 */
async function verifyRepository(r: Restore, plan: RestorePlan): Promise<void> {
  enter(r, 'verify');
  await verifyAll(r.input.repo, r.backupId, plan.replicaSets, (bytes) => {
    r.verifiedBytes = bytes;
    publish(r);
  });
}

/** Phase 4: one `replicaSetRestore` child per replica set; the config server's learns the shards' new hosts. */
async function restoreReplicaSets(r: Restore, plan: RestorePlan): Promise<void> {
  enter(r, 'place');
  r.touched = true;
  const cfg = plan.replicaSets.find((x) => x.configServer);
  const hostsOf = (x: PlannedReplicaSet) => x.members.map((m) => m.host);
  for (const x of plan.replicaSets) {
    r.children.push(
      await startChild(replicaSetRestore, {
        ...replicaSetChildOptions(r.id, x.name, 'restore', plan.cluster),
        args: [
          {
            parentId: r.id,
            restoreId: r.id,
            backupId: r.backupId,
            repo: r.input.repo,
            replicaSet: x.name,
            configServer: x.configServer,
            sharded: plan.sharded,
            members: x.members,
            startupOptions: x.startupOptions,
            files: x.files,
            bytes: x.bytes,
            truncateAfter: plan.commonTimestamp,
            overwrite: r.input.overwrite === true,
            agentTimeoutMs: r.agentTimeoutMs,
            ...(r.pitr ? { replay: { cluster: r.pitr.cluster, from: r.pitr.base, to: r.pitr.at, batchOps: r.replayBatchOps } } : {}),
            // Every replica set's new hosts, the config server's own included: a MongoDB 8.0 config shard is in
            // config.shards too (as `config`).
            ...(x.configServer ? { shardHosts: Object.fromEntries(plan.replicaSets.map((y) => [y.name, hostsOf(y)])), balancerEnabled: plan.balancerWasEnabled } : {}),
            // Every shard identity names the new config server, a config shard's own identity included.
            ...(plan.sharded && cfg ? { configConnectionString: replicaSetConnectionString(cfg.name, hostsOf(cfg)) } : {}),
          },
        ],
      }),
    );
  }
  r.results = await Promise.all(r.children.map((c) => c.result()));
}

/** Phase 5: every target keeps the restored data; what was kept aside (`overwrite`) is removed. */
async function commitTargets(r: Restore, plan: RestorePlan): Promise<void> {
  enter(r, 'commit');
  // Every target's commit ends before a failure moves on to the rollback (common/settle-all.ts).
  await settleAll(plan.replicaSets.flatMap((x) => x.members.map((m) => () => agentSteps(m.host, r.agentTimeoutMs).commitRestoreTarget({ restoreId: r.id, dbpath: m.dbpath }))));
}

/**
 * Phase 6, on every path and not cancellable: after a failure or cancel the children are stopped and every target
 * rolled back; then the summary (thrown as the failure's details when the restore did not complete).
 */
async function rollbackOrRecord(r: Restore, failure: unknown): Promise<RestoreSummary> {
  return CancellationScope.nonCancellable(async () => {
    if (failure !== undefined) await rollbackTargets(r);
    const outcome = outcomeOf(failure, r.cancel.reason());
    r.status = outcome.status;
    enter(r, 'done');
    const plan = r.plan;
    const summary: RestoreSummary = {
      id: r.id,
      backupId: r.backupId,
      cluster: plan?.cluster ?? '',
      status: r.status as RestoreSummary['status'],
      commonTimestamp: plan?.commonTimestamp ?? null,
      balancerWasEnabled: plan?.balancerWasEnabled ?? null,
      startedAt: r.startedAt,
      finishedAt: new Date().toISOString(),
      bytes: failure === undefined ? (plan?.replicaSets.reduce((s, x) => s + x.bytes * x.members.length, 0) ?? 0) : 0,
      replicaSets: (plan?.replicaSets ?? []).map((x) => ({
        name: x.name,
        configServer: x.configServer,
        members: failure === undefined ? (r.results.find((y) => y.name === x.name)?.members ?? []) : [],
        ...(r.pitr && failure === undefined ? { replayedEntries: r.results.find((y) => y.name === x.name)?.replayedEntries ?? 0 } : {}),
      })),
      ...(r.at ? { at: r.at } : {}),
      ...(outcome.error ? { error: outcome.error } : {}),
    };
    return settle(outcome, summary);
  });
}

/** The children stopped (their steps cancelled), then every target that may have been written put back. */
async function rollbackTargets(r: Restore): Promise<void> {
  if (r.children.length) {
    r.cancel.scope.cancel();
    await Promise.allSettled(r.children.map((c) => c.result()));
  }
  if (!r.touched || !r.plan) return;
  enter(r, 'rollback');
  const undo = await Promise.allSettled(
    r.plan.replicaSets.flatMap((x) => x.members.map((m) => agentSteps(m.host, r.agentTimeoutMs).rollbackRestoreTarget({ restoreId: r.id, dbpath: m.dbpath }))),
  );
  for (const u of undo) if (u.status === 'rejected') log.warn('rolling back a restore target failed', { error: String(u.reason) });
}
