/**
 * `replicaSetBackup`: one replica set of a backup, a child of `clusterBackup` (a replica set is a cluster of one).
 * Its phases, in order (docs/phases.md):
 *
 * 0. {@link planChain}, for an incremental backup: the earlier backup whose chunks this one reuses and the member its
 *    chain is pinned to, or why this replica set takes a base (repository/chain.ts);
 * 1. {@link selectNode}: the member to back up (a healthy secondary under the lag ceiling, the one asked for, or the
 *    chain's pinned member);
 * 2. {@link backUpUnderCursor}, once per backup cursor: {@link openCursor} (and its keep-alive), {@link reportOpened}
 *    to the parent, {@link extendAndCopy} for every common timestamp the parent sends until it says `finish` (each
 *    round ends with {@link proveCursorAlive}), and {@link closeCursor} on every path;
 * 3. {@link resetCopy} and again 2 when the cursor was lost (at most `cursorReopens` times, only before `finish`);
 * 4. {@link writeManifest}: the replica-set manifest, written while the cursor closes.
 *
 * Round trips through Temporal are what a small replica set's backup costs, so the short read-only control steps
 * (the chain's plan, the member's choice) are local activities, the extend and the plan are one agent activity, and
 * the parent hears of progress with the protocol's own signals, which the agent activities that did the work send
 * (activities/agent/tell-workflow.ts), and while copying at most once a second from this workflow, which does not
 * wait for their delivery.
 *
 * The keep-alive runs beside everything after the open; its failure (a lost cursor) stops the copy at once, so a copy
 * is never declared good over a released pin: the replica set re-opens a cursor and copies anew, or fails with
 * CURSOR_LOST. The protocol with the parent is described in common/messages.ts.
 */
import {
  ActivityCancellationType,
  CancellationScope,
  CancelledFailure,
  condition,
  type ExternalWorkflowHandle,
  getExternalWorkflowHandle,
  isCancellation,
  log,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  type SignalDefinition,
  sleep,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { BackupCursorActivities, CursorRef, IfBusy, OpenedCursor } from '../../activities/agent/backup-cursor.ts';
import type { CopyActivities } from '../../activities/agent/copy-batch.ts';
import type { ExtendAndPlanActivities } from '../../activities/agent/extend-and-plan.ts';
import type { TellWorkflow } from '../../activities/agent/tell-workflow.ts';
import type { RepositoryActivities } from '../../activities/orchestrator/repository.ts';
import type { TopologyActivities } from '../../activities/orchestrator/topology.ts';
import type { BackupPhase, CopyBatch, ReplicaSetProgress } from '../../common/backup-types.ts';
import { nonRetryableCodes, toFailure } from '../../common/errors.ts';
import {
  agentReadySignal,
  childThrottleSignal,
  cursorOpenedSignal,
  extendToSignal,
  finishSignal,
  openCursorsSignal,
  progressQuery,
  replicaSetCopiedSignal,
  replicaSetProgressSignal,
  throttleQuery,
} from '../../common/messages.ts';
import { CutpointPhase } from '../../common/search-attributes.ts';
import type { MongoTarget } from '../../common/target.ts';
import { compareTs, type Ts } from '../../common/timestamp.ts';
import { agentActivities } from '../common/agent-activities.ts';
import type { BackupKind, IncrementalOptions, IncrementalRecord } from '../../common/incremental.ts';
import type { ChainParent } from '../../repository/chain.ts';

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
  /** When another backup cursor holds the chosen node: fail at once or wait for it to close. */
  ifBusy: IfBusy;
  /** Heartbeat timeout of the agent's long activities, ms. */
  agentHeartbeatTimeoutMs: number;
  /** Schedule-to-start timeout of agent activities, ms (then WORKER_UNAVAILABLE). */
  agentTimeoutMs: number;
  /** An incremental backup (docs/incremental.md): this cluster's chain options. Absent: a full backup. */
  incremental?: IncrementalOptions & { cluster: string };
}

export interface ReplicaSetBackupResult {
  name: string;
  node: string;
  files: number;
  bytes: number;
  /** Bytes this replica set's copy added to the repository (new chunks, compressed). */
  bytesStored: number;
  /** Bytes the copy read from the dbpath. */
  bytesRead: number;
  kind: BackupKind;
  /** The backup whose chunks the unchanged ranges reused (an incremental's). */
  parent: string | null;
  chainBreak?: string;
  extendedTo: Ts;
}

const NON_RETRYABLE = nonRetryableCodes();

const control = proxyActivities<RepositoryActivities>({
  startToCloseTimeout: '2 minutes',
  retry: { maximumAttempts: 5, nonRetryableErrorTypes: NON_RETRYABLE },
});

/**
 * Short, read-only control steps (the chain's plan, the member's choice), as local activities: they run in the
 * workflow's own task on the orchestrator, recorded as one marker, with no round trip through a task queue. A retry
 * after a crash runs them again, which reads again.
 */
const localControl = proxyLocalActivities<TopologyActivities & RepositoryActivities>({
  startToCloseTimeout: '2 minutes',
  retry: { maximumAttempts: 5, nonRetryableErrorTypes: NON_RETRYABLE },
});

/** At most one progress signal to the parent per this many ms of copying (the protocol's signals carry it too). */
const PROGRESS_EVERY_MS = 1000;

/** The activities of the chosen member's agent, each with the timeouts its work needs. */
function backupAgent(node: string, input: ReplicaSetBackupInput) {
  const on = <A extends object>(options: Parameters<typeof agentActivities>[3]) => agentActivities<A>(node, 'backup source', input.agentTimeoutMs, options);
  const heartbeatTimeout = input.agentHeartbeatTimeoutMs;
  return {
    cursor: on<BackupCursorActivities & CopyActivities>({
      startToCloseTimeout: '10 minutes',
      heartbeatTimeout: '1 minute',
      retry: { maximumAttempts: 5, nonRetryableErrorTypes: NON_RETRYABLE },
    }),
    // A cancelled open is waited for: the activity lets a command in flight finish and kills whatever it opened,
    // so no cursor is left pinned by a cancellation that raced the open. Waiting for a busy slot may take long.
    open: on<BackupCursorActivities>({
      startToCloseTimeout: input.ifBusy === 'wait' ? '7 days' : '10 minutes',
      heartbeatTimeout,
      cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
      retry: { maximumAttempts: 5, nonRetryableErrorTypes: NON_RETRYABLE },
    }),
    keepAlive: on<BackupCursorActivities>({
      startToCloseTimeout: '30 days',
      // Beats every second: a dead agent is noticed within the timeout, then the activity is retried on the same
      // queue, where a restarted agent resumes the cursor through its recorded session id.
      heartbeatTimeout,
      cancellationType: ActivityCancellationType.TRY_CANCEL,
      retry: { initialInterval: '1 second', maximumInterval: '10 seconds', nonRetryableErrorTypes: NON_RETRYABLE },
    }),
    // Waited for when cancelled (it stops at once), so it never appends to a file list being removed.
    extend: on<ExtendAndPlanActivities>({
      startToCloseTimeout: '1 hour',
      heartbeatTimeout,
      cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
      retry: { maximumAttempts: 5, nonRetryableErrorTypes: NON_RETRYABLE },
    }),
    copy: on<CopyActivities>({
      startToCloseTimeout: '12 hours',
      heartbeatTimeout,
      cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
      retry: { initialInterval: '1 second', maximumInterval: '30 seconds', nonRetryableErrorTypes: NON_RETRYABLE },
    }),
  };
}

/** What the phases of one replica set's backup share. */
interface Run {
  readonly input: ReplicaSetBackupInput;
  readonly parent: ExternalWorkflowHandle;
  readonly progress: ReplicaSetProgress;
  /** This replica set's share of the copy rate (the parent changes it). */
  bytesPerSec: number;
  /** The latest common timestamp the parent asked to extend to. */
  extendTo?: Ts;
  /** Set by the parent's `finish`: every replica set has copied through this common timestamp. */
  finishAt?: Ts;
  reopensLeft: number;
  node: string;
  agent: ReturnType<typeof backupAgent>;
  /** The parent said every replica set's agent is ready: the cursor may open. */
  mayOpen: boolean;
  /** Bytes the copy batches added to the repository so far, and read from the dbpath. */
  bytesStored: number;
  bytesRead: number;
  /** An incremental's chain: where it continues (null: a base), and why it broke. */
  chain?: { parent: ChainParent | null; chainBreak?: string };
  /** Workflow time of the last progress sent to the parent (ms). */
  progressSentAt: number;
}

/** One backup cursor's life within a {@link Run}. */
interface Cursor {
  opened?: OpenedCursor;
  ref?: CursorRef;
  /** Why the cursor was lost (the keep-alive failed, or it was found gone), once it is. */
  lost?: unknown;
  readonly keepAliveScope: CancellationScope;
  keepAlive?: Promise<void>;
  /**
   * Copies run in their own scope: whatever ends the cursor early (a lost cursor, a failed batch, a cancel), every
   * copy activity is cancelled and has stopped writing before the cursor is closed and the partial data removed (the
   * activities wait for their cancellation to complete).
   */
  readonly copyScope: CancellationScope;
  readonly copyWorkers: Array<Promise<void>>;
}

export async function replicaSetBackup(input: ReplicaSetBackupInput): Promise<ReplicaSetBackupResult> {
  const run = startRun(input);
  await planChain(run);
  await selectNode(run);
  await checkAgent(run);
  let result = await backUpUnderCursor(run);
  while (!result) {
    await resetCopy(run);
    result = await backUpUnderCursor(run);
  }
  // The manifest is written while the cursor closes (the copy was proven before the parent said `finish`); a failed
  // close only leaves the cursor to the server's session timeout (closeCursor).
  const [written, closed] = await Promise.allSettled([writeManifest(run, result.opened, result.extendedTo), result.closed]);
  if (written.status === 'rejected') throw written.reason;
  if (closed.status === 'rejected') throw closed.reason;
  // The last cancellation point: a cancel that came while the cursor closed ends this replica set cancelled.
  report(run, 'done');
  return written.value;
}

/** The run's state, and the handlers of the parent's messages and of the progress and throttle queries. */
function startRun(input: ReplicaSetBackupInput): Run {
  const run: Run = {
    input,
    parent: getExternalWorkflowHandle(input.parentId),
    progress: { name: input.replicaSet, node: null, phase: 'select', filesDone: 0, filesTotal: 0, bytesDone: 0, bytesTotal: 0 },
    bytesPerSec: input.bytesPerSec,
    reopensLeft: input.cursorReopens,
    bytesStored: 0,
    bytesRead: 0,
    node: '',
    agent: undefined as unknown as Run['agent'],
    mayOpen: false,
    progressSentAt: 0,
  };
  setHandler(
    progressQuery,
    () => ({
      kind: 'backup',
      status: 'running',
      phase: run.progress.phase,
      bytesDone: run.progress.bytesDone,
      bytesTotal: run.progress.bytesTotal,
      bytesPerSec: run.bytesPerSec,
      replicaSets: [run.progress],
    }),
    { description: "Live progress of this replica set (the parent's progress aggregates every replica set)" },
  );
  setHandler(throttleQuery, () => run.bytesPerSec, { description: "This replica set's share of the copy rate (bytes per second); the copies poll it" });
  setHandler(childThrottleSignal, ({ bytesPerSec }) => {
    run.bytesPerSec = bytesPerSec;
  }, { description: 'Internal, from the parent: a new share of the whole-backup rate' });
  setHandler(extendToSignal, ({ to }) => {
    run.extendTo = to;
  }, { description: 'Internal, from the parent: extend to this common timestamp' });
  setHandler(openCursorsSignal, () => {
    run.mayOpen = true;
  }, { description: "Internal, from the parent: every replica set's agent is ready; open the backup cursor" });
  setHandler(finishSignal, ({ commonTimestamp }) => {
    run.finishAt = commonTimestamp;
  }, { description: 'Internal, from the parent: every replica set has copied through the final common timestamp' });
  return run;
}

/**
 * Signals the parent without waiting for the signal to arrive (each wait would cost a workflow task round trip on this
 * replica set's critical path). A signal that cannot be delivered means the parent is gone, and its close policy
 * cancels this workflow.
 */
function tellParent<A extends unknown[]>(run: Run, signal: SignalDefinition<A>, ...args: A): void {
  run.progressSentAt = Date.now();
  run.parent.signal(signal, ...args).catch((e: unknown) => {
    if (!isCancellation(e)) log.warn('signal to the parent failed', { signal: signal.name, error: String(e) });
  });
}

/**
 * What an agent activity tells the parent once it has done its work (activities/agent/tell-workflow.ts): `signal`
 * with this replica set's name, its progress (then `waiting` for the parent) and `arg`. The parent hears of it as the
 * activity completes, with no workflow task of this workflow in between.
 */
function tellOnDone(run: Run, signal: SignalDefinition<[{ replicaSet: string }]> | SignalDefinition<[{ replicaSet: string; node: string }]>, arg: Record<string, unknown>): TellWorkflow {
  run.progressSentAt = Date.now();
  return { workflowId: run.input.parentId, signal: signal.name, arg: { replicaSet: run.input.replicaSet, ...arg, progress: { ...run.progress, phase: 'waiting' } } };
}

/**
 * The copy's progress to the parent, at most once every {@link PROGRESS_EVERY_MS} of workflow time (the protocol's
 * signals carry it too); `force` sends it anyway. The parent's query and UI show it; this workflow's own `progress`
 * query is always current.
 */
function sendProgress(run: Run, force = false): void {
  if (!force && Date.now() - run.progressSentAt < PROGRESS_EVERY_MS) return;
  tellParent(run, replicaSetProgressSignal, { ...run.progress });
}

/**
 * Enters `phase`: this workflow's progress and search attribute (the parent learns the phase from the protocol's
 * signals). A phase change stays a cancellation point: a cancel that arrived while a step ran (a held close, a
 * manifest write) ends this replica set cancelled rather than complete.
 */
function report(run: Run, phase: BackupPhase): void {
  run.progress.phase = phase;
  upsertSearchAttributes([{ key: CutpointPhase, value: phase }]);
  if (CancellationScope.current().consideredCancelled) throw new CancelledFailure('cancelled');
}

/** Phase 0: an incremental's chain (where it continues, or why this replica set takes a base). */
async function planChain(run: Run): Promise<void> {
  const { input } = run;
  if (!input.incremental) return;
  const { cluster, ...options } = input.incremental;
  const decision = await localControl.planIncrementalChain({ repo: input.repo, cluster, backupId: input.backupId, replicaSet: input.replicaSet, ...options });
  run.chain = decision.parent ? { parent: decision.parent } : { parent: null, chainBreak: decision.chainBreak };
}

/** The chain breaks here: this replica set takes a base, and says why. */
function breakChain(run: Run, reason: string): void {
  log.warn('incremental chain broken: taking a base', { replicaSet: run.input.replicaSet, reason });
  run.chain = { parent: null, chainBreak: reason };
}

/** Phase 1: the member to back up (the chain's pinned member when it can be), and its agent. */
async function selectNode(run: Run): Promise<void> {
  const { input } = run;
  const pinned = run.chain?.parent?.node;
  const { node, pinnedRefused } = await localControl.selectBackupNode({
    target: input.target,
    replicaSet: input.replicaSet,
    maxLagSecs: input.maxLagSecs,
    node: input.node,
    ...(pinned ? { pinned } : {}),
  });
  if (pinned && pinnedRefused) breakChain(run, `the chain's member ${pinned} cannot be backed up: ${pinnedRefused}`);
  else if (pinned && node !== pinned) breakChain(run, `${node} was asked for, but the chain is on ${pinned}`);
  run.node = node;
  run.progress.node = node;
  run.agent = backupAgent(node, input);
}

/**
 * Phase 1b: the chosen agent opens the repository with its own password (an encrypted repository needs one on every
 * agent), then this replica set waits for the parent, which lets cursors open only once every agent is ready: a
 * missing or wrong password fails the backup, naming the agent, before any cursor pins a checkpoint.
 */
async function checkAgent(run: Run): Promise<void> {
  await run.agent.cursor.checkRepositoryAccess({ repo: run.input.repo, tell: tellOnDone(run, agentReadySignal, { node: run.node }) });
  report(run, 'waiting');
  await condition(() => run.mayOpen);
}

function cursorInput(run: Run) {
  const { input } = run;
  return { target: input.target, backupId: input.backupId, replicaSet: input.replicaSet, repo: input.repo };
}

/**
 * Phase 2: one backup cursor's life. Returns undefined when the cursor was lost and may be re-opened (the caller
 * resets the copy and calls again). Once the cursor is open it pins the checkpoint: whatever happens, it is closed:
 * before this returns on failure, and on success in `closed`, which the caller waits for beside the manifest.
 */
async function backUpUnderCursor(run: Run): Promise<{ opened: OpenedCursor; extendedTo: Ts; closed: Promise<void> } | undefined> {
  const c: Cursor = { keepAliveScope: new CancellationScope(), copyScope: new CancellationScope(), copyWorkers: [] };
  let closed: Promise<void> | undefined;
  try {
    const opened = await openCursor(run, c);
    reportOpened(run);
    const extendedTo = await extendAndCopy(run, c, opened);
    closed = closeCursor(run, c);
    return { opened, extendedTo, closed };
  } catch (e) {
    if (isCancellation(e)) throw e;
    await diagnoseFailure(run, c);
    if (!c.lost) throw e;
    // Re-open while the parent can still move the common timestamp (not once it told everyone to finish).
    if (run.reopensLeft > 0 && run.finishAt === undefined) {
      run.reopensLeft--;
      log.warn('backup cursor lost: re-opening it', { node: run.node, error: String(c.lost), reopensLeft: run.reopensLeft });
      return undefined;
    }
    throw toFailure('CURSOR_LOST', `replica set ${run.input.replicaSet}: backup cursor on ${run.node} lost`, { node: run.node, reason: String(c.lost) });
  } finally {
    if (!closed) await closeCursor(run, c);
  }
}

/** Throws the reason the cursor was lost, once it is. */
function failIfLost(c: Cursor): void {
  if (c.lost) throw c.lost as Error;
}

/** Opens `$backupCursor` on the agent and starts its keep-alive beside everything that follows. */
async function openCursor(run: Run, c: Cursor): Promise<OpenedCursor> {
  report(run, 'open');
  const chain = run.chain;
  const o = await run.agent.open.openBackupCursor({
    ...cursorInput(run),
    ifBusy: run.input.ifBusy,
    // The parent hears of the open cursor (and its oplogEnd, which the activity adds) from the agent.
    tell: tellOnDone(run, cursorOpenedSignal, { node: run.node }),
    ...(run.input.incremental
      ? { incremental: { blockSizeMB: run.input.incremental.blockSizeMB, ...(chain?.parent ? { srcBackupName: chain.parent.name } : {}) } }
      : {}),
  });
  if (o.incremental?.chainBreak) breakChain(run, o.incremental.chainBreak);
  c.opened = o;
  const ref: CursorRef = { target: run.input.target, backupId: run.input.backupId, replicaSet: run.input.replicaSet, cursorId: o.cursorId, sessionId: o.sessionId };
  c.ref = ref;
  c.keepAlive = c.keepAliveScope
    .run(() => run.agent.keepAlive.keepBackupCursorAlive({ ...ref, intervalMs: run.input.keepAliveIntervalMs }))
    .catch((e: unknown) => {
      if (!isCancellation(e)) c.lost = e;
    });
  return o;
}

/**
 * The cursor is open and the parent knows where its oplog ends (the open activity told it: the parent's barrier waits
 * for every replica set): this replica set waits for the common timestamp.
 */
function reportOpened(run: Run): void {
  report(run, 'waiting');
}

/**
 * For every common timestamp the parent sends: extend the cursor to it and plan the batches (one agent activity),
 * copy them, prove the cursor alive, report `copied`; until the parent says `finish` at the timestamp copied last.
 * Returns that timestamp.
 */
async function extendAndCopy(run: Run, c: Cursor, o: OpenedCursor): Promise<Ts> {
  let extendedTo: Ts | undefined;
  let planned = 0;
  let nextBatch = 0;
  // A target this cursor can reach (not before its own oplogEnd) and has not yet copied through.
  const newTarget = () =>
    run.extendTo !== undefined && (!o.oplogEnd || compareTs(run.extendTo, o.oplogEnd) >= 0) && (!extendedTo || compareTs(run.extendTo, extendedTo) > 0);
  const finishing = () => run.finishAt !== undefined && extendedTo !== undefined && compareTs(run.finishAt, extendedTo) === 0;
  for (;;) {
    await condition(() => c.lost !== undefined || newTarget() || finishing());
    // finish: every replica set has copied through extendedTo. This replica set's copy was proven under a live cursor
    // before it said `copied`, so a loss noticed at the same moment does not undo it.
    if (finishing() && !newTarget()) return extendedTo!;
    failIfLost(c);

    const to = run.extendTo!;
    report(run, 'extend');
    // After a later extend only journal files are copied again (whole: they grew) and any new ones; the data files
    // copied under this cursor are still what its checkpoint pins.
    const { batches, listed } = await run.agent.extend.extendAndPlanCopy({
      ...cursorInput(run),
      serverBackupId: o.serverBackupId,
      to,
      maxWaitMs: 30 * 60_000,
      dbpath: o.dbpath,
      maxFiles: run.input.batchMaxFiles,
      maxBytes: run.input.batchMaxBytes,
      journalOnlyBefore: planned,
      firstBatchNo: nextBatch,
    });
    failIfLost(c);
    planned = listed;
    nextBatch += batches.length;
    run.progress.filesTotal += batches.reduce((sum, b) => sum + b.to - b.from, 0);
    run.progress.bytesTotal += batches.reduce((sum, b) => sum + b.bytes, 0);
    report(run, 'copy');
    // The parent shows the copy and its total at once (and `backupProgress` adds the copies in flight to it).
    sendProgress(run, true);
    await copyBatches(run, c, o, batches);
    await proveCursorAlive(run, c, to);
    extendedTo = to;
    report(run, 'waiting');
  }
}

/**
 * Copies `batches` with `copyParallelism` workers; a lost cursor stops the copy at once. Every finished batch reaches
 * the parent's progress: at once, or within {@link PROGRESS_EVERY_MS} of the last report (a timer; never dropped), and
 * the round's last batch with `copied`, moments later.
 */
async function copyBatches(run: Run, c: Cursor, o: OpenedCursor, batches: CopyBatch[]): Promise<void> {
  const queue = [...batches];
  let copying = 0;
  const pending = new CancellationScope();
  let due = false;
  let over = false;
  const batchDone = () => {
    if (!queue.length && !copying) return; // the round is over: `copied` carries it
    const wait = PROGRESS_EVERY_MS - (Date.now() - run.progressSentAt);
    if (wait <= 0) return sendProgress(run, true);
    if (due) return;
    due = true;
    pending
      .run(() => sleep(wait))
      .then(() => {
        if (!over) sendProgress(run, true);
      })
      .catch(() => undefined) // the round ended first
      .finally(() => (due = false));
  };
  const worker = async () => {
    for (let b = queue.shift(); b; b = queue.shift()) {
      failIfLost(c);
      const parent = o.incremental?.kind === 'incremental' ? run.chain?.parent?.backupId : undefined;
      copying++;
      const r = await run.agent.copy
        .copyBatch({ ...cursorInput(run), dbpath: o.dbpath, batch: b, throttleWorkflowId: workflowInfo().workflowId, ...(parent ? { parent } : {}) })
        .finally(() => copying--);
      run.progress.filesDone += r.files;
      run.progress.bytesDone += r.bytes;
      run.bytesStored += r.bytesStored ?? 0;
      run.bytesRead += r.bytesRead ?? 0;
      batchDone();
    }
  };
  const lostWatch = condition(() => c.lost !== undefined).then(() => failIfLost(c));
  lostWatch.catch(() => undefined); // observed by the race below, or moot once the round is over
  const round = c.copyScope.run(() => {
    const workers = Array.from({ length: Math.max(1, run.input.copyParallelism) }, worker);
    c.copyWorkers.push(...workers);
    return Promise.all(workers);
  });
  round.catch(() => undefined);
  try {
    await Promise.race([round, lostWatch]);
  } finally {
    over = true;
    pending.cancel();
  }
  failIfLost(c);
}

/**
 * The copy is only as good as the cursor's pin: ask the server that the cursor is still open, after each round's copy
 * (before `copied`: the cursor stays open, and its keep-alive watched, until `finish`).
 */
async function proveCursorAlive(run: Run, c: Cursor, extendedTo: Ts): Promise<void> {
  report(run, 'verify');
  // The agent tells the parent this round is copied through `extendedTo` once the cursor is proven.
  await run.agent.cursor.proveBackupCursorAlive({ ...c.ref!, tell: tellOnDone(run, replicaSetCopiedSignal, { extendedTo }) });
  // Proven: a loss noticed from here on (even before this activity's completion reached this workflow, with the
  // parent's `finish`) re-opens only if the parent asks for a later timestamp (extendAndCopy).
}

/**
 * A failure of the copy (a listed file gone from the dbpath, a short read) is often the first sign of a cursor that
 * died between two keep-alives: its checkpoint was released and WiredTiger removed or reused the files. Ask the
 * cursor: if it is gone, that is the error to report (and to re-open for), not the symptom.
 */
async function diagnoseFailure(run: Run, c: Cursor): Promise<void> {
  if (c.lost || !c.ref) return;
  const ref = c.ref;
  await CancellationScope.nonCancellable(() => run.agent.cursor.proveBackupCursorAlive(ref)).catch((lost: unknown) => {
    if ((lost as { cause?: { type?: string } }).cause?.type === 'CURSOR_LOST') c.lost = lost;
  });
}

/** Stops the copies and the keep-alive and closes the cursor, on every path (not cancellable). */
async function closeCursor(run: Run, c: Cursor): Promise<void> {
  c.copyScope.cancel();
  c.keepAliveScope.cancel();
  await CancellationScope.nonCancellable(async () => {
    await Promise.allSettled(c.copyWorkers);
    await c.keepAlive;
    if (!c.ref) return; // never opened (or the open cleaned up after itself)
    // The manifest's write runs beside a successful close and names the phase; a failure path shows `close`.
    if (run.progress.phase !== 'manifest') run.progress.phase = 'close';
    // A close that fails leaves the cursor to the server's session timeout; the copy itself was already proven.
    const ref = c.ref;
    await run.agent.cursor.closeBackupCursor(ref).catch((e: unknown) => log.warn('closing the backup cursor failed', { node: run.node, error: String(e) }));
  });
}

/** Phase 3: the lost cursor's checkpoint is gone, so its files must not mix with the next cursor's. */
async function resetCopy(run: Run): Promise<void> {
  await control.resetReplicaSetCopy({ repo: run.input.repo, backupId: run.input.backupId, replicaSet: run.input.replicaSet });
  Object.assign(run.progress, { filesDone: 0, filesTotal: 0, bytesDone: 0, bytesTotal: 0 });
}

/** The manifest's record of the incremental cursor the files were copied under. */
function incrementalRecord(run: Run, o: OpenedCursor): IncrementalRecord | undefined {
  if (!o.incremental) return undefined;
  const parent = o.incremental.kind === 'incremental' ? (run.chain?.parent ?? null) : null;
  return {
    kind: o.incremental.kind,
    name: o.incremental.name,
    parent: parent?.backupId ?? null,
    blockSizeMB: o.incremental.blockSizeMB,
    depth: parent?.depth ?? 0,
    listedBytes: o.incremental.listedBytes,
    ...(run.chain?.chainBreak ? { chainBreak: run.chain.chainBreak } : {}),
  };
}

/**
 * Phase 4: the replica-set manifest. Not cancellable once started: a cancel that lands during the write waits for
 * it, so the parent's removal of the data comes after it and no replica-set manifest reappears in a cancelled backup.
 */
async function writeManifest(run: Run, o: OpenedCursor, extendedTo: Ts): Promise<ReplicaSetBackupResult> {
  report(run, 'manifest');
  const incremental = incrementalRecord(run, o);
  const manifest = await CancellationScope.nonCancellable(() =>
    control.writeReplicaSetManifest({
      ...cursorInput(run),
      node: run.node,
      serverBackupId: o.serverBackupId,
      dbpath: o.dbpath,
      oplogStart: o.oplogStart,
      oplogEnd: o.oplogEnd,
      checkpointTimestamp: o.checkpointTimestamp,
      extendedTo,
      startupOptions: o.startupOptions,
      bytesRead: run.bytesRead,
      ...(incremental ? { incremental } : {}),
    }),
  );
  return {
    name: run.input.replicaSet,
    node: run.node,
    files: manifest.files,
    bytes: manifest.bytes,
    bytesStored: run.bytesStored,
    bytesRead: run.bytesRead,
    kind: incremental?.kind ?? 'full',
    parent: incremental?.parent ?? null,
    ...(incremental?.chainBreak ? { chainBreak: incremental.chainBreak } : {}),
    extendedTo,
  };
}
