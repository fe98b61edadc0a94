/**
 * `clusterBackup`: the parent workflow of a backup; its workflow id is the backup id. Its phases, in order
 * (docs/phases.md):
 *
 * 1. {@link resolveOptions}: every option checked and defaulted (common/options.ts), before anything starts;
 * 2. {@link discoverTopology}: a replica set, or through mongos the config server and every shard;
 * 3. {@link lockCluster}: one backup per cluster at a time (cluster-lock.ts; `ifBusy` says whether to wait);
 * 3b. {@link lockRepository}: the repository's shared `backup` lock (repository/lock.ts), so that no prune removes
 *    what this backup relies on; waits while a prune holds the exclusive one; refreshed until phase 10 releases it;
 * 4. {@link initBackup}: the `running` cluster manifest;
 * 5. {@link stopBalancer} of a sharded cluster (restored on every path), while
 * 6. {@link startReplicaSets}: one `replicaSetBackup` child per replica set, starts (both: {@link stopBalancerWhileReplicaSetsStart});
 * 7. {@link agreeCommonTimestamp}: once every cursor is open, the maximum `oplogEnd` ({@link commonTimestamp}),
 *    moved past any distributed transaction that would straddle it ({@link settleCommonTimestamp}), sent to every child;
 * 8. {@link copyThroughCommonTimestamp}: until every child has copied through it, moving it forward when a child
 *    re-opens a lost cursor (common/messages.ts describes the protocol);
 * 9. {@link finishReplicaSets}: the children prove and close their cursors and write their manifests;
 * 10. {@link commitOrRecord}, on every path: the children stopped, the balancer restored, the cluster manifest written
 *    `complete` (the commit point) or `failed` / `cancelled`, the repository lock and the cluster lock released.
 *
 * One child failing cancels the others; every cursor is closed by its child.
 */
import {
  CancellationScope,
  CancelledFailure,
  condition,
  isCancellation,
  log,
  proxyActivities,
  proxyLocalActivities,
  setCurrentDetails,
  setHandler,
  sleep,
  startChild,
  upsertSearchAttributes,
  workflowInfo,
  type ChildWorkflowHandle,
  type SignalDefinition,
} from '@temporalio/workflow';
import type { BalancerActivities } from '../../activities/orchestrator/balancer.ts';
import type { DistributedTransactionActivities } from '../../activities/orchestrator/distributed-transactions.ts';
import type { ClusterLockActivities } from '../../activities/orchestrator/cluster-lock.ts';
import type { RepositoryActivities } from '../../activities/orchestrator/repository.ts';
import type { SignalWorkflowActivities } from '../../activities/orchestrator/signal-workflows.ts';
import type { Topology, TopologyActivities } from '../../activities/orchestrator/topology.ts';
import type { BackupInput, BackupPhase, BackupProgress, BackupSummary, ReplicaSetProgress } from '../../common/backup-types.ts';
import type { BackupKind } from '../../common/incremental.ts';
import { BACKUP_OPTIONS, resolveBackupOptions, resolveNumber, type ResolvedBackupOptions } from '../../common/options.ts';
import { CutpointError, nonRetryableCodes, toFailure } from '../../common/errors.ts';
import { CutpointCluster, CutpointKind, CutpointStatus } from '../../common/search-attributes.ts';
import type { MongoTarget } from '../../common/target.ts';
import { compareTs, maxTs, type Ts } from '../../common/timestamp.ts';
import { acquireClusterLock, releaseClusterLock, type clusterLock } from './cluster-lock.ts';
import { type Cancellable, cancellableBySignal, publishStatus } from '../common/live-status.ts';
import { progressMarkdown } from '../common/progress-markdown.ts';
import { failureInfo, outcomeOf, settle } from '../common/outcome.ts';
import {
  cancelSignal,
  childThrottleSignal,
  agentReadySignal,
  cursorOpenedSignal,
  openCursorsSignal,
  extendToSignal,
  finishSignal,
  progressQuery,
  replicaSetCopiedSignal,
  replicaSetProgressSignal,
  setThrottleUpdate,
} from '../../common/messages.ts';
import { replicaSetChildOptions } from '../common/replica-set-child.ts';
import { backupKindOf } from '../../common/incremental.ts';
import { replicaSetBackup, type ReplicaSetBackupInput, type ReplicaSetBackupResult } from './replica-set-backup.ts';

const control = proxyActivities<RepositoryActivities & BalancerActivities & DistributedTransactionActivities>({
  startToCloseTimeout: '2 minutes',
  retry: { maximumAttempts: 5, nonRetryableErrorTypes: nonRetryableCodes() },
});

/**
 * Short, read-only control steps (the topology, the cluster lock's holder) and the signals to the children, as local
 * activities: they run in the workflow's own task on the orchestrator, recorded as one marker, with no round trip
 * through a task queue. Each is safe to run again after a crash (a read; a signal the child takes as the same news).
 */
const localControl = proxyLocalActivities<TopologyActivities & ClusterLockActivities & SignalWorkflowActivities>({
  startToCloseTimeout: '2 minutes',
  retry: { maximumAttempts: 5, nonRetryableErrorTypes: nonRetryableCodes() },
});

/** The shortest interval between two settings of `CutpointBytes` within one phase (a phase change sets it at once). */
const BYTES_ATTRIBUTE_EVERY_MS = 10_000;

/** How long a backup waits for a prune's exclusive repository lock, and its first and longest pause between tries. */
export const REPO_LOCK_WAIT_MS = 60 * 60_000;
const REPO_LOCK_RETRY_MS = 5_000;
const REPO_LOCK_MAX_RETRY_MS = 60_000;

/**
 * The common timestamp: the maximum `oplogEnd` over the replica sets (the procedure Percona documents for physical backups). Every
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

/** A replica set of the backup, as discovered. */
interface ReplicaSetEntry {
  name: string;
  configServer: boolean;
  uri: string;
}

/** What the phases of one backup share. */
interface Backup {
  readonly id: string;
  readonly input: BackupInput;
  readonly options: ResolvedBackupOptions;
  readonly target: MongoTarget;
  readonly startedAt: string;
  readonly cancel: Cancellable;
  status: BackupProgress['status'];
  phase: BackupPhase;
  cluster: string;
  /** The whole-backup copy rate (bytes/s, 0 = unlimited); each child gets an equal share. */
  bytesPerSec: number;
  replicaSets: ReplicaSetEntry[];
  sharded: boolean;
  lock?: ChildWorkflowHandle<typeof clusterLock>;
  /** The backup's repository lock file, while held; its refreshing activity's scope, and that activity's end. */
  repoLock?: string;
  repoLockScope?: CancellationScope;
  repoLockHeld?: Promise<void>;
  /** Why the repository lock was lost (the refresh failed): the backup fails with it. */
  repoLockLost?: unknown;
  children: Array<ChildWorkflowHandle<typeof replicaSetBackup>>;
  /** Every child's result, once all are done (rejects when one fails). */
  done?: Promise<ReplicaSetBackupResult[]>;
  results: ReplicaSetBackupResult[];
  common?: Ts;
  readonly rsProgress: Map<string, ReplicaSetProgress>;
  /** Replica sets whose agent opened the repository (they wait for `openCursors`). */
  readonly ready: Set<string>;
  /** oplogEnd of each replica set's (latest) cursor. */
  readonly opened: Map<string, Ts | null>;
  /** Replica sets that re-opened a lost cursor since the common timestamp was last sent. */
  readonly reopened: string[];
  /** The extend each replica set has copied through. */
  readonly copied: Map<string, Ts>;
  /** The progress markdown last shown, and the search attributes last set (each setting is a history event). */
  shown?: string;
  shownAttributes?: string;
  /** `CutpointBytes` as last set, and when (workflow time). */
  shownBytes?: number;
  shownAttributesAt: number;
}

export async function clusterBackup(input: BackupInput): Promise<BackupSummary> {
  const b = startBackupRun(input, resolveOptions(input));
  let failure: unknown;
  try {
    await b.cancel.scope.run(async () => {
      const topology = await discoverTopology(b);
      await lockCluster(b, topology);
      await lockRepository(b);
      await initBackup(b, topology);
      await stopBalancerWhileReplicaSetsStart(b);
      await openCursorsWhenReady(b);
      await agreeCommonTimestamp(b);
      await copyThroughCommonTimestamp(b);
      await finishReplicaSets(b);
    });
  } catch (e) {
    failure = b.repoLockLost ?? e;
  }
  return commitOrRecord(b, failure);
}

/** Phase 1: every option checked against its bounds and defaulted; a bad one fails the backup with BAD_USAGE at once. */
function resolveOptions(input: BackupInput): ResolvedBackupOptions {
  if (typeof input?.uri !== 'string' || !input.uri) throw new CutpointError('BAD_USAGE', 'uri is required: the connection string of a replica set member or a mongos', { option: 'uri' });
  if (typeof input.repo !== 'string' || !input.repo) throw new CutpointError('BAD_USAGE', 'repo is required: the repository path as the workers see it', { option: 'repo' });
  return resolveBackupOptions(input);
}

/** The run's state, and the handlers of the public messages and of the children's reports. */
function startBackupRun(input: BackupInput, options: ResolvedBackupOptions): Backup {
  const b: Backup = {
    id: workflowInfo().workflowId,
    input,
    options,
    target: { uri: input.uri, credentials: input.credentials ?? { kind: 'env' } },
    startedAt: new Date().toISOString(),
    cancel: cancellableBySignal(cancelSignal, 'Cancel the backup ({"reason": "..."} optional): copies stop, cursors close, the manifest says cancelled'),
    status: 'running',
    phase: 'discover',
    cluster: input.cluster ?? '',
    bytesPerSec: options.bytesPerSec,
    replicaSets: [],
    sharded: false,
    children: [],
    results: [],
    rsProgress: new Map(),
    ready: new Set(),
    opened: new Map(),
    reopened: [],
    copied: new Map(),
    shownAttributesAt: 0,
  };
  setHandler(progressQuery, () => snapshot(b), { description: 'Live progress: phase, bytes copied of the total, rate, per replica set' });
  setHandler(
    setThrottleUpdate,
    async ({ bytesPerSec }) => {
      b.bytesPerSec = bytesPerSec;
      await shareRate(b);
      publish(b);
      return { bytesPerSec };
    },
    {
      validator: ({ bytesPerSec }) => {
        resolveNumber('bytesPerSec', BACKUP_OPTIONS.bytesPerSec, bytesPerSec);
      },
      description: 'Change the whole-backup copy rate (bytes per second, 0 = unlimited) while the backup runs',
    },
  );
  setHandler(agentReadySignal, ({ replicaSet, progress }) => {
    b.ready.add(replicaSet);
    childProgress(b, progress);
  }, { description: "Internal, from a child: its agent opened the repository; it waits to open its cursor" });
  setHandler(cursorOpenedSignal, ({ replicaSet, oplogEnd, progress }) => {
    b.opened.set(replicaSet, oplogEnd);
    // After the barrier this is a re-opened cursor (the first one was lost).
    if (b.common) b.reopened.push(replicaSet);
    childProgress(b, progress);
  }, { description: 'Internal, from a child: its backup cursor is open (oplogEnd)' });
  setHandler(replicaSetCopiedSignal, ({ replicaSet, extendedTo, progress }) => {
    b.copied.set(replicaSet, extendedTo);
    childProgress(b, progress);
  }, { description: 'Internal, from a child: copied through this extend' });
  setHandler(replicaSetProgressSignal, (p) => childProgress(b, p), { description: 'Internal, from a child: its progress' });
  upsertSearchAttributes([
    { key: CutpointKind, value: 'backup' },
    { key: CutpointStatus, value: 'running' },
    ...(b.cluster ? [{ key: CutpointCluster, value: b.cluster }] : []),
  ]);
  publish(b);
  return b;
}

function snapshot(b: Backup): BackupProgress {
  const rss = [...b.rsProgress.values()];
  return {
    kind: 'backup',
    status: b.status,
    phase: b.phase,
    bytesDone: rss.reduce((s, r) => s + r.bytesDone, 0),
    bytesTotal: rss.reduce((s, r) => s + r.bytesTotal, 0),
    bytesPerSec: b.bytesPerSec,
    ...(b.common ? { commonTimestamp: b.common } : {}),
    replicaSets: rss,
  };
}

function publish(b: Backup): void {
  const p = snapshot(b);
  const markdown = progressMarkdown(p, { title: `**cutpoint backup** \`${b.id}\` of **${b.cluster || '…'}**`, done: 'Copied', throttle: true, timestamp: 'Common timestamp', members: 'node' });
  if (markdown === b.shown) return;
  b.shown = markdown;
  // Each setting of the search attributes is a history event and an index write on the server: the bytes alone
  // change them at most every BYTES_ATTRIBUTE_EVERY_MS; the current details (no event) follow every report.
  const attributes = `${p.phase} ${p.status}`;
  const bytesOnly = attributes === b.shownAttributes;
  if (bytesOnly && (p.bytesDone === b.shownBytes || Date.now() - b.shownAttributesAt < BYTES_ATTRIBUTE_EVERY_MS)) return setCurrentDetails(markdown);
  b.shownAttributes = attributes;
  b.shownBytes = p.bytesDone;
  b.shownAttributesAt = Date.now();
  publishStatus(markdown, p);
}

/** A child's progress, as its signals carry it. */
function childProgress(b: Backup, p: ReplicaSetProgress | undefined): void {
  if (!p) return;
  b.rsProgress.set(p.name, p);
  publish(b);
}

/**
 * The phase the parent just moved every replica set still running into (its children report their copy's progress,
 * not every phase change: each report is a signal).
 */
function childrenEnter(b: Backup, phase: BackupPhase): void {
  for (const r of b.rsProgress.values()) if (r.phase !== 'done') r.phase = phase;
}

/**
 * Signals children from a local activity (activities/orchestrator/signal-workflows.ts): one marker in this history
 * instead of two events and a woken task per child. A child that has closed is skipped: it failed or was cancelled,
 * which `b.done` reports.
 */
async function tellChildren<A extends [] | [unknown]>(children: Array<ChildWorkflowHandle<typeof replicaSetBackup>>, signal: SignalDefinition<A>, ...args: A): Promise<void> {
  if (!children.length) return;
  await localControl.signalWorkflows({ workflowIds: children.map((c) => c.workflowId), signal: signal.name, ...(args.length ? { arg: args[0] } : {}) });
}

function enter(b: Backup, phase: BackupPhase): void {
  b.phase = phase;
  publish(b);
}

/** Each child's share of the whole-backup rate. */
function rateShare(b: Backup, children: number): number {
  return children ? Math.floor(b.bytesPerSec / children) : b.bytesPerSec;
}

async function shareRate(b: Backup): Promise<void> {
  const share = rateShare(b, b.children.length);
  await Promise.all(b.children.map((c) => c.signal(childThrottleSignal, { bytesPerSec: share })));
}

/** Phase 2: the replica sets to back up (through a mongos: the config server and every shard), and the cluster name. */
async function discoverTopology(b: Backup): Promise<Topology> {
  const topology = await localControl.discoverTopology({ target: b.target });
  b.cluster ||= (topology.replicaSets.find((r) => r.configServer) ?? topology.replicaSets[0]!).name;
  upsertSearchAttributes([{ key: CutpointCluster, value: b.cluster }]);
  return topology;
}

/** Phase 3: one backup per cluster, before anything touches the cluster or the repository. */
async function lockCluster(b: Backup, topology: Topology): Promise<void> {
  b.lock = await acquireClusterLock({
    lockId: topology.lockId,
    holder: { backupId: b.id, cluster: b.cluster, since: new Date().toISOString() },
    ifBusy: b.options.ifBusy,
    lookupHolder: (lockId) => localControl.clusterLockHolder({ lockId }),
    onWait: (holder) => {
      if (b.phase !== 'waiting') log.info('waiting for the running backup of this cluster to end', { cluster: b.cluster, holder: holder?.backupId ?? topology.lockId });
      enter(b, 'waiting');
    },
  });
  if (b.phase === 'waiting') enter(b, 'discover');
}

/**
 * Phase 3b: the repository's shared `backup` lock, before the first manifest: a prune (exclusive lock) cannot start
 * while it is held, so it cannot remove a pack this backup skips a chunk for (docs/repository-format.md section 12).
 * While a prune holds the repository, the backup waits (phase `waiting`), trying again with backoff for up to
 * {@link REPO_LOCK_WAIT_MS}, then fails REPO_LOCKED naming the prune. Once taken, the lock is refreshed every few
 * minutes (a workflow timer and a short activity) until phase 10 cancels it; if a refresh finds the lock lost, the backup fails.
 */
async function lockRepository(b: Backup): Promise<void> {
  const deadline = Date.now() + REPO_LOCK_WAIT_MS;
  let pause = REPO_LOCK_RETRY_MS;
  let refreshMs = 0;
  for (;;) {
    try {
      const taken = await control.lockRepository({ repo: b.input.repo, backupId: b.id });
      b.repoLock = taken.lock;
      refreshMs = taken.refreshMs;
      break;
    } catch (e) {
      const info = failureInfo(e);
      if (info.code !== 'REPO_LOCKED' || Date.now() + pause > deadline) throw e;
      if (b.phase !== 'waiting') log.info('waiting for the repository lock (a prune holds it)', { repo: b.input.repo, holder: info.message });
      enter(b, 'waiting');
      await sleep(pause);
      pause = Math.min(pause * 2, REPO_LOCK_MAX_RETRY_MS);
    }
  }
  if (b.phase === 'waiting') enter(b, 'discover');
  const lock = b.repoLock;
  b.repoLockScope = new CancellationScope();
  // A durable timer, not a long activity: the refresh survives a worker crash and stops at once when cancelled.
  b.repoLockHeld = b.repoLockScope
    .run(async () => {
      for (;;) {
        await sleep(refreshMs);
        await control.refreshRepositoryLock({ repo: b.input.repo, lock });
      }
    })
    .catch((e: unknown) => {
      if (isCancellation(e)) return;
      log.error('the repository lock was lost: the backup stops', { error: String(e) });
      b.repoLockLost = e;
      b.cancel.scope.cancel();
    });
}

/** Phase 4: the `running` cluster manifest, naming every replica set. */
async function initBackup(b: Backup, topology: Topology): Promise<void> {
  b.replicaSets = topology.replicaSets.map((r) => ({ name: r.name, configServer: r.configServer, uri: r.uri }));
  b.sharded = topology.kind === 'sharded';
  for (const r of b.replicaSets) b.rsProgress.set(r.name, { name: r.name, node: null, phase: 'select', filesDone: 0, filesTotal: 0, bytesDone: 0, bytesTotal: 0 });
  await control.initBackup({
    repo: b.input.repo,
    backupId: b.id,
    cluster: b.cluster,
    startedAt: b.startedAt,
    replicaSets: b.replicaSets.map(({ name, configServer }) => ({ name, configServer })),
    // An incremental is recorded as such from the start: if it fails, the next one knows the nodes' history may have moved.
    ...(b.options.incremental ? { kind: 'base' as const } : {}),
  });
}

/**
 * Phase 5: a sharded cluster's balancer stopped (its prior state recorded in the manifest; restored in phase 10).
 * Not cancellable once started: a cancel waits for the stop to finish, so phase 10 reads the recorded state and
 * restarts the balancer after the stop, never before it.
 */
async function stopBalancer(b: Backup): Promise<void> {
  if (!b.sharded) return;
  enter(b, 'balancer');
  await CancellationScope.nonCancellable(() => control.stopBalancer({ target: b.target, repo: b.input.repo, backupId: b.id }));
  // The children started meanwhile (phase 6) wait for it: the phase says `balancer` until it has stopped.
  enter(b, 'open');
  // A cancel that came during the stop ends the backup here.
  if (b.cancel.scope.consideredCancelled) throw new CancelledFailure('cancelled');
}

/**
 * Phases 5 and 6 at once: the children choose their member and check their agent while the balancer stops; no
 * cursor opens before both are done (phase 6b). Both are let finish before a failure of either goes on, so phase 10
 * never restores the balancer while its stop still runs.
 */
async function stopBalancerWhileReplicaSetsStart(b: Backup): Promise<void> {
  const [stopped, started] = await Promise.allSettled([stopBalancer(b), startReplicaSets(b)]);
  if (stopped.status === 'rejected') throw stopped.reason;
  if (started.status === 'rejected') throw started.reason;
}

/**
 * Phase 6: one `replicaSetBackup` child per replica set, all started in one workflow task. A start that fails (a
 * leftover workflow with the id) fails the backup; the children that did start are cancelled in phase 10.
 */
async function startReplicaSets(b: Backup): Promise<void> {
  const o = b.options;
  const share = rateShare(b, b.replicaSets.length);
  const childOptions = (r: ReplicaSetEntry) => ({
    ...replicaSetChildOptions(b.id, r.name, 'backup', b.cluster),
    args: [
      {
        parentId: b.id,
        backupId: b.id,
        replicaSet: r.name,
        configServer: r.configServer,
        target: { uri: r.uri, credentials: b.target.credentials },
        repo: b.input.repo,
        bytesPerSec: share,
        ...(b.input.node !== undefined ? { node: b.input.node } : {}),
        maxLagSecs: o.maxLagSecs,
        keepAliveIntervalMs: o.keepAliveIntervalMs,
        copyParallelism: o.copyParallelism,
        cursorReopens: o.cursorReopens,
        ifBusy: o.ifBusy,
        agentHeartbeatTimeoutMs: o.agentHeartbeatTimeoutMs,
        agentTimeoutMs: o.agentTimeoutMs,
        batchMaxFiles: o.batchMaxFiles,
        batchMaxBytes: o.batchMaxBytes,
        ...(o.incremental ? { incremental: { cluster: b.cluster, forceBase: o.base, blockSizeMB: o.blockSizeMB, baseEvery: o.baseEvery } } : {}),
      } satisfies ReplicaSetBackupInput,
    ] as [ReplicaSetBackupInput],
  });
  const started = await Promise.allSettled(b.replicaSets.map((r) => startChild(replicaSetBackup, childOptions(r))));
  for (const st of started) if (st.status === 'fulfilled') b.children.push(st.value);
  const failed = started.find((st): st is PromiseRejectedResult => st.status === 'rejected');
  if (failed) throw failed.reason;
  if (b.phase !== 'balancer') enter(b, 'open');
  b.done = Promise.all(
    b.children.map(async (c) => {
      const r = await c.result();
      const p = b.rsProgress.get(r.name);
      if (p) p.phase = 'done';
      return r;
    }),
  );
  // Awaited from phase 6b on; when the balancer's stop fails or is cancelled first, phase 10 stops the children and
  // reports that instead, and this rejection must not fail the workflow task as an unhandled one.
  b.done.catch(() => undefined);
}

/**
 * Phase 6b: every replica set's agent opened the repository with its own password (or a child failed: the backup
 * fails with its error, naming the agent), then every child may open its backup cursor. So no cursor opens when
 * one agent cannot write the repository.
 */
async function openCursorsWhenReady(b: Backup): Promise<void> {
  await Promise.race([condition(() => b.ready.size === b.replicaSets.length), b.done!]);
  // The phase first: a child acts on the signal at once, and a query must not see the phase before it.
  childrenEnter(b, 'open');
  await tellChildren(b.children, openCursorsSignal);
  publish(b);
}

/** Phase 7, the barrier: every cursor open (or a child failed), then the common timestamp to every child. */
async function agreeCommonTimestamp(b: Backup): Promise<void> {
  await Promise.race([condition(() => b.opened.size === b.replicaSets.length), b.done!]);
  // A cursor re-opened while the settle runs (an open retried after its agent crashed) reports a new oplogEnd
  // before there is a common timestamp to compare it with: settle again until no oplogEnd changed meanwhile.
  for (;;) {
    const seen = new Map(b.opened);
    const ends = [...seen.values()].filter((t): t is Ts => t !== null);
    if (ends.length !== b.replicaSets.length) throw toFailure('NOT_SUPPORTED', 'a replica set reported no oplogEnd (not a replica-set member?)');
    const settled = await settleCommonTimestamp(b, commonTimestamp(ends));
    if ([...b.opened].every(([name, end]) => sameTs(end ?? undefined, seen.get(name) ?? undefined))) {
      b.common = settled;
      break;
    }
  }
  b.reopened.length = 0;
  childrenEnter(b, 'extend');
  await tellChildren(b.children, extendToSignal, { to: b.common });
  enter(b, 'copy');
}

/**
 * A sharded cluster's common timestamp moved forward past the commit entries of every distributed transaction that
 * committed at or before it (activities/orchestrator/distributed-transactions.ts): a restore to it shows each such
 * transaction on all its shards, never on some. A replica set has no distributed transactions.
 */
async function settleCommonTimestamp(b: Backup, t: Ts): Promise<Ts> {
  if (!b.sharded) return t;
  const replicaSets = b.replicaSets.map((r) => ({ name: r.name, target: { uri: r.uri, credentials: b.target.credentials } }));
  const { common, moved } = await control.settleCommonTimestamp({ replicaSets, common: t });
  if (moved.length) log.info('the common timestamp moved past distributed transactions committing across it', { from: t, to: common, transactions: moved.length });
  return common;
}

/** Phase 8: until every replica set has copied through one common timestamp; a re-opened cursor may move it forward. */
async function copyThroughCommonTimestamp(b: Backup): Promise<void> {
  for (;;) {
    await Promise.race([condition(() => b.reopened.length > 0 || b.replicaSets.every((r) => sameTs(b.copied.get(r.name), b.common))), b.done!]);
    if (b.reopened.length === 0) return;
    const names = b.reopened.splice(0);
    const next = await settleCommonTimestamp(b, commonTimestamp([b.common!, ...names.map((n) => b.opened.get(n)).filter((t): t is Ts => !!t)]));
    const moved = compareTs(next, b.common!) > 0;
    b.common = next;
    log.info(moved ? 'a re-opened cursor moved the common timestamp forward' : 'a re-opened cursor joins at the common timestamp', { replicaSets: names, common: next });
    const to = moved ? b.children : b.children.filter((c) => names.some((n) => c.workflowId === `${b.id}.${n}`));
    await tellChildren(to, extendToSignal, { to: next });
    publish(b);
  }
}

/** Phase 9: every child proves its cursor alive, closes it and writes its replica-set manifest. */
async function finishReplicaSets(b: Backup): Promise<void> {
  // Before the signal: a child closes its cursor as soon as it has it, and a query must not say `copy` after that.
  childrenEnter(b, 'manifest');
  await tellChildren(b.children, finishSignal, { commonTimestamp: b.common! });
  publish(b);
  b.results = await b.done!;
}

/**
 * Phase 10, on every path and not cancellable: the children stopped (one failing stops the others), the balancer
 * restored, the cluster manifest written `complete` (the commit point) or `failed` / `cancelled`, the cluster lock
 * released. Returns the summary, or throws it as the failure's details.
 */
async function commitOrRecord(b: Backup, failure: unknown): Promise<BackupSummary> {
  return CancellationScope.nonCancellable(async () => {
    await stopChildren(b, failure);
    await restoreBalancer(b);
    const finishedAt = new Date().toISOString();
    const bytes = b.results.reduce((s, r) => s + r.bytes, 0);
    const chain = chainOf(b);
    const outcome = outcomeOf(failure, b.cancel.reason());
    b.status = outcome.status;
    enter(b, failure === undefined ? 'commit' : 'cleanup');
    if (b.replicaSets.length) {
      try {
        await control.finishBackup({
          repo: b.input.repo,
          backupId: b.id,
          status: b.status,
          finishedAt,
          commonTimestamp: failure === undefined ? (b.common ?? null) : null,
          bytes,
          nodes: Object.fromEntries(b.results.map((r) => [r.name, r.node])),
          bytesRead: b.results.reduce((s, r) => s + (r.bytesRead ?? 0), 0),
          ...(b.options.incremental ? chain : {}),
          ...(outcome.error ? { error: outcome.error } : {}),
        });
      } catch (e) {
        // The repository could not take the outcome: a backup that was to be committed is not (the manifest is not
        // `complete`); a failure keeps its first cause. Either way the caller still gets the summary.
        log.error('writing the final cluster manifest failed', { error: String(e) });
        if (outcome.status === 'complete') {
          outcome.status = b.status = 'failed';
          outcome.error = failureInfo(e);
        }
      }
    }
    await releaseRepositoryLock(b);
    // Last: the next backup of this cluster may start once everything above is done.
    if (b.lock) await releaseClusterLock(b.lock);
    enter(b, 'done');
    return settle(outcome, summaryOf(b, finishedAt, bytes, chain, outcome.error));
  });
}

/**
 * One replica set failing stops the others at once (their copies cancelled, cursors closed); a cancel has already
 * reached them. Either way every child has finished its cleanup before the manifest says so.
 */
async function stopChildren(b: Backup, failure: unknown): Promise<void> {
  if (failure === undefined || !b.children.length) return;
  b.cancel.scope.cancel();
  const settled = await Promise.allSettled(b.children.map((c) => c.result()));
  for (const s of settled) if (s.status === 'fulfilled' && !b.results.some((r) => r.name === s.value.name)) b.results.push(s.value);
}

/**
 * After the manifest is final: the refresh stopped and the repository lock file removed. A release that fails leaves
 * the file to go stale (repository/lock.ts DEFAULT_LOCK_STALE_MS), when a prune takes it over.
 */
async function releaseRepositoryLock(b: Backup): Promise<void> {
  if (b.repoLock === undefined) return;
  b.repoLockScope?.cancel();
  await b.repoLockHeld;
  await control.releaseRepositoryLock({ repo: b.input.repo, lock: b.repoLock }).catch((e: unknown) => {
    log.error('the repository lock could not be released: it goes stale and a prune takes it over', { error: String(e), lock: b.repoLock });
  });
  b.repoLock = undefined;
}

/** The balancer goes back to its recorded state on every path (the manifest knows it, even after a crash). */
async function restoreBalancer(b: Backup): Promise<void> {
  if (!b.sharded) return;
  await control.restoreBalancer({ target: b.target, repo: b.input.repo, backupId: b.id }).catch((e: unknown) => {
    log.error('the balancer could not be restarted: start it by hand (sh.startBalancer())', { error: String(e) });
  });
}

/** The backup's kind and its parent (the previous backup of the chain that an incremental replica set reused). */
function chainOf(b: Backup): { kind: BackupKind; parent: string | null } {
  const kind = b.results.length === b.replicaSets.length ? backupKindOf(b.results.map((r) => ({ kind: r.kind ?? 'full' }))) : b.options.incremental ? 'base' : 'full';
  return { kind, parent: b.results.find((r) => r.kind === 'incremental')?.parent ?? null };
}

function summaryOf(b: Backup, finishedAt: string, bytes: number, chain: { kind: BackupKind; parent: string | null }, error: { code: string; message: string } | undefined): BackupSummary {
  return {
    id: b.id,
    cluster: b.cluster,
    status: b.status as BackupSummary['status'],
    commonTimestamp: b.status === 'complete' ? (b.common ?? null) : null,
    startedAt: b.startedAt,
    finishedAt,
    bytes,
    bytesStored: b.results.reduce((sum, r) => sum + (r.bytesStored ?? 0), 0),
    ...chain,
    bytesRead: b.results.reduce((sum, r) => sum + (r.bytesRead ?? 0), 0),
    replicaSets: b.replicaSets.map((r) => {
      const res = b.results.find((x) => x.name === r.name);
      return {
        name: r.name,
        configServer: r.configServer,
        node: res?.node ?? b.rsProgress.get(r.name)?.node ?? null,
        files: res?.files ?? 0,
        bytes: res?.bytes ?? 0,
        bytesStored: res?.bytesStored ?? 0,
        kind: res?.kind ?? (b.options.incremental ? 'base' : 'full'),
        parent: res?.parent ?? null,
        bytesRead: res?.bytesRead ?? 0,
        ...(res?.chainBreak ? { chainBreak: res.chainBreak } : {}),
      };
    }),
    ...(error ? { error } : {}),
  };
}
