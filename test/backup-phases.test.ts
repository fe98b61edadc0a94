/**
 * Cancel in every phase of a backup, and each kind of failure, at the workflow level: the real `clusterBackup` and
 * `replicaSetBackup` workflows on the run's Temporal server, with every activity replaced by a stand-in that records
 * when it starts and ends, can be held in place (as a server command in flight or a slow repository write holds it),
 * or fails as the real one would.
 *
 * Cancel: it lands while the phase is held; then the hold is released and the order of what followed is checked:
 * every cursor opened is closed, and only after the activity in flight returned (open, extend, copy wait for their
 * cancellation to complete); the outcome is written once, after every close and every copy; a stopped balancer is
 * restored after the stop finished; the cluster lock is released.
 *
 * Failures: the error reaches the summary with its code, a non-retryable one is not retried, nothing after the failed
 * phase starts, and the same cleanup runs.
 *
 * The activities' own behaviour against a server is tested beside them (activities/*), and one end-to-end case per
 * topology runs against the simulator (test/backup-cancel.test.ts, test/backup-sharded.test.ts,
 * test/backup-bad-input.test.ts).
 */
import { randomUUID } from 'node:crypto';
import { CancelledFailure, cancellationSignal, heartbeat } from '@temporalio/activity';
import { WorkflowFailedError } from '@temporalio/client';
import type { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { describeCursorHolder } from '../activities/agent/cursor-holder.ts';
import { tellWorkflow, type TellWorkflow } from '../activities/agent/tell-workflow.ts';
import { clusterLockActivities } from '../activities/orchestrator/cluster-lock.ts';
import { signalWorkflowActivities } from '../activities/orchestrator/signal-workflows.ts';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { OpenedCursor } from '../activities/agent/backup-cursor.ts';
import type { Topology } from '../activities/orchestrator/topology.ts';
import type { BackupInput, BackupSummary } from '../common/backup-types.ts';
import { CutpointError } from '../common/errors.ts';
import { cancelSignal, cursorOpenedSignal, progressQuery } from '../common/messages.ts';
import { agentTaskQueue } from '../common/task-queues.ts';
import { createLogger } from '../lib/logger.ts';
import { eventually, sleep } from '../sim/testkit.ts';
import { workflowBundle } from '../workers/bundle.ts';
import { connectHarness, type TemporalHarness } from './helpers/temporal.ts';

let h: TemporalHarness;
const run = randomUUID().slice(0, 8);
const TASK_QUEUE = `backup-phases-${run}`;
const NODE = `mock-${run}:27017`;
const workers: Worker[] = [];
const running: Array<Promise<void>> = [];

/** What the stand-in activities did, in order: `<activity>:start`, `<activity>:end`, `<activity>:cancelled`. */
let events: string[] = [];
/** Backup cursors the stand-in agent has open (by replica set). */
const cursors = new Set<string>();
let balancer: 'enabled' | 'stopped' = 'enabled';
/** Held activities: the test releases them. */
const holds = new Map<string, { arrived: boolean; release: () => void; released: Promise<void> }>();

function hold(activity: string): void {
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  holds.set(activity, { arrived: false, release, released });
}

/** Activities that fail instead of doing their work: the error they throw. */
const failures = new Map<string, () => Error>();

/** Runs `body` as activity `name`: recorded, held first when the test asked for it, failed when it asked for that. */
async function act<T>(name: string, body: () => Promise<T> | T): Promise<T> {
  events.push(`${name}:start`);
  const fail = failures.get(name);
  if (fail) {
    events.push(`${name}:failed`);
    throw fail();
  }
  const held = holds.get(name);
  if (held) {
    held.arrived = true;
    // A command in flight is not interrupted by a cancel: it returns when the server answers. Heartbeats meanwhile
    // (as the real activities do) let the cancel reach the activity.
    let released = false;
    void held.released.then(() => (released = true));
    while (!released) {
      heartbeat();
      await sleep(50);
    }
  }
  try {
    const r = await body();
    events.push(`${name}:end`);
    return r;
  } catch (e) {
    events.push(`${name}:${e instanceof CancelledFailure ? 'cancelled' : 'failed'}`);
    throw e;
  }
}

/** Heartbeats until cancelled (a keep-alive, a throttled copy that never finishes). */
async function untilCancelled(): Promise<never> {
  for (;;) {
    heartbeat();
    if (cancellationSignal().aborted) throw new CancelledFailure('cancelled');
    await sleep(50);
  }
}

const ts = { t: 1_800_000_000, i: 1 };

const orchestratorActivities = {
  async discoverTopology({ target }: { target: { uri: string } }): Promise<Topology> {
    const sharded = target.uri.includes('mongos');
    const rs = (name: string, configServer = false) => ({ name, configServer, hosts: [NODE], uri: `mongodb://${NODE}/?replicaSet=${name}` });
    return act('discoverTopology', () => ({
      kind: sharded ? 'sharded' : 'replicaSet',
      replicaSets: sharded ? [rs('cfg', true), rs('rs0'), rs('rs1')] : [rs('rs0')],
      lockId: new URL(target.uri).searchParams.get('lock')!,
    }));
  },
  clusterLockHolder: ({ lockId }: { lockId: string }) => act('clusterLockHolder', () => (lockId.includes('holder') ? { backupId: 'backup-holding', cluster: 'rs0', since: '2026-12-07T00:00:00.000Z' } : undefined)),
  lockRepository: () => act('lockRepository', () => ({ lock: 'locks/backup-mock.json', refreshMs: 300_000 })),
  refreshRepositoryLock: () => act('refreshRepositoryLock', () => undefined),
  releaseRepositoryLock: () => act('releaseRepositoryLock', () => undefined),
  initBackup: () => act('initBackup', () => undefined),
  stopBalancer: () => act('stopBalancer', () => ((balancer = 'stopped'), { wasEnabled: true })),
  restoreBalancer: () => act('restoreBalancer', () => ((balancer = 'enabled'), { started: true })),
  selectBackupNode: () => act('selectBackupNode', () => ({ node: chosenNode, reason: 'mock' })),
  settleCommonTimestamp: ({ common }: { common: typeof ts }) => act('settleCommonTimestamp', () => ({ common, moved: [] })),
  resetReplicaSetCopy: () => act('resetReplicaSetCopy', () => undefined),
  writeReplicaSetManifest: () => act('writeReplicaSetManifest', () => ({ files: 2, bytes: 2048 })),
  finishBackup: ({ status }: { status: string }) => act('finishBackup', () => void events.push(`outcome:${status}`)),
  // The real one: the parent's signals to its children go through it.
  signalWorkflows: (input: { workflowIds: string[]; signal: string; arg?: unknown }) => signalWorkflowActivities(h.client).signalWorkflows(input),
};

/** As the real agent activities do once their work is done (activities/agent/tell-workflow.ts): signal the parent. */
const tell = (t: TellWorkflow | undefined, learnt: Record<string, unknown> = {}) => tellWorkflow(h.client, t, learnt);

const agentActivities = {
  checkRepositoryAccess: (input: { tell?: TellWorkflow }) => act('checkRepositoryAccess', async () => (await tell(input.tell), { encrypted: false })),
  openBackupCursor: ({ replicaSet, tell: told }: { replicaSet: string; tell?: TellWorkflow }) =>
    act('openBackupCursor', async (): Promise<OpenedCursor> => {
      // As the real activity: a cancel that raced the open kills what it opened and ends cancelled.
      if (cancellationSignal().aborted) throw new CancelledFailure('cancelled');
      cursors.add(replicaSet);
      await tell(told, { oplogEnd: ts });
      return { node: NODE, cursorId: `c-${replicaSet}`, sessionId: `s-${replicaSet}`, serverBackupId: `b-${replicaSet}`, dbpath: '/mock', oplogStart: ts, oplogEnd: ts, checkpointTimestamp: ts, files: 2, bytes: 2048, startupOptions: {} };
    }),
  keepBackupCursorAlive: () =>
    act('keepBackupCursorAlive', async () => {
      while (!cursorGone) {
        heartbeat();
        if (cancellationSignal().aborted) throw new CancelledFailure('cancelled');
        await sleep(50);
      }
      throw new CutpointError('CURSOR_LOST', 'the backup cursor is gone');
    }),
  extendBackupCursor: () => act('extendBackupCursor', () => ({ added: 0, files: 2 })),
  planCopyBatches: () => act('planCopyBatches', () => ({ batches: planned, listed: planned.reduce((n, b) => Math.max(n, b.to), 0) })),
  // As the real one (activities/agent/extend-and-plan.ts): the extend, then (unless cancelled meanwhile) the plan.
  async extendAndPlanCopy(input: { replicaSet: string }) {
    const extended = await agentActivities.extendBackupCursor();
    if (cancellationSignal().aborted) throw new CancelledFailure('cancelled');
    const planned = await agentActivities.planCopyBatches();
    void input;
    return { ...extended, ...planned };
  },
  copyBatch: ({ batch }: { batch: Batch }) =>
    act('copyBatch', async () => {
      if (copyForever) return untilCancelled();
      if (heldBatch?.no === batch.no) {
        let released = false;
        void heldBatch.released.then(() => (released = true));
        while (!released) {
          heartbeat();
          if (cancellationSignal().aborted) throw new CancelledFailure('cancelled');
          await sleep(50);
        }
      }
      return { files: batch.to - batch.from, bytes: batch.bytes, bytesRead: batch.bytes, dataBytesRead: batch.bytes };
    }),
  proveBackupCursorAlive: (input: { tell?: TellWorkflow }) =>
    act('proveBackupCursorAlive', async () => {
      await tell(input.tell);
      if (!loseCursorAfterProof) return;
      // The parent, told, says `finish`; the keep-alive finds the cursor gone; only then does this activity complete.
      await sleep(500);
      cursorGone = true;
      await sleep(500);
    }),
  closeBackupCursor: ({ replicaSet }: { replicaSet: string }) => act('closeBackupCursor', () => ({ killed: cursors.delete(replicaSet) })),
};
/** The copy runs until cancelled (a copy in progress), or finishes at once. */
let copyForever = false;
type Batch = { no: number; from: number; to: number; bytes: number };
/** The batches each replica set's plan returns. */
let planned: Batch[] = [{ no: 0, from: 0, to: 2, bytes: 2048 }];
/** The cursor is lost right after the copy was proven (the keep-alive then fails with CURSOR_LOST). */
let loseCursorAfterProof = false;
let cursorGone = false;
/** A batch whose copy runs until the test releases it. */
let heldBatch: { no: number; released: Promise<void> } | undefined;
/** The member selectBackupNode picks: the stand-in agent's, or one no agent serves. */
let chosenNode = NODE;

beforeAll(async () => {
  h = await connectHarness();
  const log = createLogger('warn');
  const common = { connection: h.native, namespace: h.namespace, maxHeartbeatThrottleInterval: '100 milliseconds', defaultHeartbeatThrottleInterval: '100 milliseconds' } as const;
  workers.push(
    await Worker.create({ ...common, taskQueue: TASK_QUEUE, workflowBundle: await workflowBundle(log), activities: orchestratorActivities }),
    await Worker.create({ ...common, taskQueue: agentTaskQueue(NODE), activities: agentActivities }),
  );
  running.push(...workers.map((w) => w.run()));
});
beforeEach(() => {
  events = [];
  cursors.clear();
  balancer = 'enabled';
  holds.clear();
  failures.clear();
  copyForever = false;
  planned = [{ no: 0, from: 0, to: 2, bytes: 2048 }];
  heldBatch = undefined;
  loseCursorAfterProof = false;
  cursorGone = false;
  chosenNode = NODE;
});
afterAll(async () => {
  for (const w of workers) w.shutdown();
  await Promise.all(running);
  await h?.close();
});

/** Starts a backup of the stand-in cluster; `sharded` adds a config server and a second shard behind a mongos. */
async function start(sharded: boolean, extra: Partial<BackupInput> = {}, lockId?: string): Promise<{ id: string; lockId: string }> {
  const id = `phases-${randomUUID().slice(0, 8)}`;
  lockId ??= `lock-${id}`;
  const uri = `mongodb://${sharded ? 'mongos' : 'rs'}.mock:27017/?lock=${lockId}`;
  await h.client.workflow.start('clusterBackup', {
    taskQueue: TASK_QUEUE,
    workflowId: id,
    args: [{ uri, repo: '/mock', keepAliveIntervalMs: 1000, agentHeartbeatTimeoutMs: 5000, ...extra } satisfies BackupInput],
  });
  return { id, lockId };
}

/** Waits until `activity` is held, cancels, releases it a moment later; returns the summary. */
async function cancelDuring(id: string, activity: string): Promise<BackupSummary> {
  await eventually(() => holds.get(activity)?.arrived, 30_000, `${activity} to be held`);
  await h.client.workflow.getHandle(id).signal(cancelSignal, { reason: `cancel during ${activity}` });
  await sleep(300);
  holds.get(activity)!.release();
  return summaryOf(id);
}

async function summaryOf(id: string): Promise<BackupSummary> {
  try {
    return (await h.client.workflow.getHandle(id).result()) as BackupSummary;
  } catch (e) {
    // A failed or cancelled backup throws its summary as the failure's details.
    const details = (e as { cause?: { details?: unknown[] } }).cause?.details;
    if (details?.[0]) return details[0] as BackupSummary;
    throw e;
  }
}

const at = (event: string) => {
  const i = events.indexOf(event);
  expect(i, `${event} in ${events.join(' ')}`).toBeGreaterThanOrEqual(0);
  return i;
};
const lastAt = (event: string) => events.lastIndexOf(event);
const count = (event: string) => events.filter((e) => e === event).length;

/** What every cancel ends with: cancelled, no cursor open, the outcome written once after every close and copy. */
function expectCancelledCleanly(s: BackupSummary, activity: string): void {
  expect(s.status, events.join(' ')).toBe('cancelled');
  expect(s.error).toEqual({ code: 'CANCELLED', message: `cancelled: cancel during ${activity}` });
  expect([...cursors]).toEqual([]);
  expect(count('closeBackupCursor:start')).toBe(count('openBackupCursor:end'));
  expect(count('outcome:cancelled')).toBe(1);
  expect(events.filter((e) => e.startsWith('outcome:'))).toEqual(['outcome:cancelled']);
  const outcome = at('finishBackup:start');
  for (const e of ['closeBackupCursor:end', 'copyBatch:end', 'copyBatch:cancelled', 'openBackupCursor:end', 'openBackupCursor:cancelled', 'extendBackupCursor:end']) {
    expect(lastAt(e), `${e} before the outcome: ${events.join(' ')}`).toBeLessThan(outcome);
  }
  expect(lastAt('writeReplicaSetManifest:start')).toBeLessThan(outcome);
}

async function expectLockReleased(lockId: string): Promise<void> {
  await eventually(async () => (await h.client.workflow.getHandle(lockId).describe()).status.name === 'COMPLETED', 10_000, 'the cluster lock released');
  // The repository lock, once taken, is released once, after the outcome is written.
  if (count('lockRepository:end')) {
    expect(count('releaseRepositoryLock:end'), events.join(' ')).toBe(1);
    expect(at('releaseRepositoryLock:start')).toBeGreaterThan(lastAt('finishBackup:start'));
  } else expect(count('releaseRepositoryLock:start')).toBe(0);
}

describe('cancel in every phase of a replica-set backup (workflows on Temporal, activities stood in)', () => {
  it('node selection: nothing opened; the outcome written', async () => {
    const { id, lockId } = await start(false);
    hold('selectBackupNode');
    const s = await cancelDuring(id, 'selectBackupNode');
    expectCancelledCleanly(s, 'selectBackupNode');
    expect(count('openBackupCursor:start')).toBe(0);
    await expectLockReleased(lockId);
  });

  it('open: waits for the open to return (which kills what it opened), then writes the outcome', async () => {
    const { id, lockId } = await start(false);
    hold('openBackupCursor');
    const s = await cancelDuring(id, 'openBackupCursor');
    expectCancelledCleanly(s, 'openBackupCursor');
    expect(count('openBackupCursor:cancelled')).toBe(1);
    expect(at('openBackupCursor:cancelled')).toBeLessThan(at('finishBackup:start'));
    await expectLockReleased(lockId);
  });

  it('extend: waits for the extend to return, then closes the cursor', async () => {
    const { id, lockId } = await start(false);
    hold('extendBackupCursor');
    const s = await cancelDuring(id, 'extendBackupCursor');
    expectCancelledCleanly(s, 'extendBackupCursor');
    expect(at('extendBackupCursor:end')).toBeLessThan(at('closeBackupCursor:start'));
    expect(count('planCopyBatches:start')).toBe(0);
    await expectLockReleased(lockId);
  });

  it('copy: the copy is cancelled and has stopped before the cursor closes', async () => {
    const { id, lockId } = await start(false);
    copyForever = true;
    await eventually(() => events.includes('copyBatch:start'), 30_000, 'the copy to run');
    await h.client.workflow.getHandle(id).signal(cancelSignal, { reason: 'cancel during copyBatch' });
    const s = await summaryOf(id);
    expectCancelledCleanly(s, 'copyBatch');
    expect(at('copyBatch:cancelled')).toBeLessThan(at('closeBackupCursor:start'));
    // The keep-alive is cancelled without waiting (TRY_CANCEL): the agent's close stops it in its own process
    // (activities/agent/backup-cursor.ts), so its end may come after the close starts; it does end.
    await eventually(() => events.includes('keepBackupCursorAlive:cancelled'), 10_000, 'the keep-alive to stop');
    await expectLockReleased(lockId);
  });

  it('close: the close finishes, then the outcome', async () => {
    const { id, lockId } = await start(false);
    hold('closeBackupCursor');
    const s = await cancelDuring(id, 'closeBackupCursor');
    expectCancelledCleanly(s, 'closeBackupCursor');
    await expectLockReleased(lockId);
  });

  it('replica-set manifest: the write finishes before the outcome (so the data removal comes after it)', async () => {
    const { id, lockId } = await start(false);
    hold('writeReplicaSetManifest');
    const s = await cancelDuring(id, 'writeReplicaSetManifest');
    expectCancelledCleanly(s, 'writeReplicaSetManifest');
    expect(at('writeReplicaSetManifest:end')).toBeLessThan(at('finishBackup:start'));
    await expectLockReleased(lockId);
  });

  it('waiting for the cluster lock: ends cancelled without touching the cluster or the repository; the holder keeps the lock', async () => {
    const lockId = `lock-holder-${run}`;
    await h.client.workflow.start('clusterLock', { taskQueue: TASK_QUEUE, workflowId: lockId, args: [{ backupId: 'holder', cluster: 'rs0', since: new Date().toISOString() }] });
    const id = `cancel-wait-${run}`;
    await h.client.workflow.start('clusterBackup', {
      taskQueue: TASK_QUEUE,
      workflowId: id,
      args: [{ uri: `mongodb://rs.mock:27017/?lock=${lockId}`, repo: '/mock', ifBusy: 'wait' } satisfies BackupInput],
    });
    await eventually(async () => (await h.client.workflow.getHandle(id).query(progressQuery)).phase === 'waiting', 30_000, 'the backup to wait for the lock');
    await h.client.workflow.getHandle(id).signal(cancelSignal, { reason: 'cancel during the wait' });
    const s = await summaryOf(id);
    expect(s.status).toBe('cancelled');
    expect(s.error).toEqual({ code: 'CANCELLED', message: 'cancelled: cancel during the wait' });
    expect(events.filter((e) => e.endsWith(':start')).map((e) => e.split(':')[0])).toEqual(['discoverTopology', 'clusterLockHolder']);
    expect((await h.client.workflow.getHandle(lockId).describe()).status.name).toBe('RUNNING');
    await h.client.workflow.getHandle(lockId).terminate('test done');
  });
});

describe('cancel in the phases of a sharded backup', () => {
  it('during the balancer stop: the stop finishes, then the balancer is restored; no cursor opened', async () => {
    const { id, lockId } = await start(true);
    hold('stopBalancer');
    const s = await cancelDuring(id, 'stopBalancer');
    expectCancelledCleanly(s, 'stopBalancer');
    expect(at('stopBalancer:end')).toBeLessThan(at('restoreBalancer:start'));
    expect(balancer).toBe('enabled');
    expect(count('openBackupCursor:start')).toBe(0);
    await expectLockReleased(lockId);
  });

  it('mid-copy: every replica set stops its copy and closes its cursor, then the balancer is restored', async () => {
    const { id, lockId } = await start(true);
    copyForever = true;
    await eventually(() => count('copyBatch:start') === 3, 30_000, 'every replica set to copy');
    await h.client.workflow.getHandle(id).signal(cancelSignal, { reason: 'cancel during copyBatch' });
    const s = await summaryOf(id);
    expectCancelledCleanly(s, 'copyBatch');
    expect(count('closeBackupCursor:end')).toBe(3);
    expect(lastAt('closeBackupCursor:end')).toBeLessThan(at('restoreBalancer:start'));
    expect(balancer).toBe('enabled');
    await expectLockReleased(lockId);
  });

  it('during the commit write: too late, the backup is complete (one atomic write); cursors closed, balancer restored', async () => {
    const { id, lockId } = await start(true);
    hold('finishBackup');
    await eventually(() => holds.get('finishBackup')?.arrived, 30_000, 'the commit to be held');
    await h.client.workflow.getHandle(id).signal(cancelSignal, { reason: 'too late' });
    await sleep(300);
    holds.get('finishBackup')!.release();
    const s = await summaryOf(id);
    expect(s.status, events.join(' ')).toBe('complete');
    expect(events.filter((e) => e.startsWith('outcome:'))).toEqual(['outcome:complete']);
    expect([...cursors]).toEqual([]);
    expect(balancer).toBe('enabled');
    await expectLockReleased(lockId);
  });
});

describe('the balancer stop of a sharded backup', () => {
  it('runs while the replica sets choose their member and check their agent; no cursor opens before it has ended', async () => {
    const { id } = await start(true);
    hold('stopBalancer');
    await eventually(() => holds.get('stopBalancer')?.arrived, 30_000, 'the balancer stop to be held');
    try {
      // Every replica set (config server and two shards) gets as far as its agent's check while the stop is held.
      await eventually(() => count('checkRepositoryAccess:end') === 3, 10_000, 'every agent checked during the stop');
      expect((await h.client.workflow.getHandle(id).query(progressQuery)).phase).toBe('balancer');
      await sleep(300);
      expect(count('openBackupCursor:start'), events.join(' ')).toBe(0);
    } finally {
      holds.get('stopBalancer')!.release();
    }
    const s = await summaryOf(id);
    expect(s.status, events.join(' ')).toBe('complete');
    expect(at('stopBalancer:end')).toBeLessThan(at('openBackupCursor:start'));
    expect(balancer).toBe('enabled');
    // The search attributes (a history event and an index write each) change with the phase or the status; every
    // replica set's report changed the bytes within the copy phase, which alone does not set them again.
    const upserts = ((await h.client.workflow.getHandle(id).fetchHistory()).events ?? [])
      .map((e) => e.upsertWorkflowSearchAttributesEventAttributes?.searchAttributes?.indexedFields)
      .filter((f) => f?.CutpointBytes)
      .map((f) => ['CutpointPhase', 'CutpointStatus'].map((k) => Buffer.from(f![k]!.data!).toString()).join(' '));
    expect(upserts.length).toBeGreaterThan(2);
    expect(new Set(upserts).size, upserts.join(', ')).toBe(upserts.length);
  });
});

describe('the common timestamp of a sharded backup', () => {
  it('a cursor re-opened while the first agreement is being settled moves the agreement past its oplogEnd', async () => {
    const { id, lockId } = await start(true);
    hold('settleCommonTimestamp');
    await eventually(() => holds.get('settleCommonTimestamp')?.arrived, 30_000, 'the settle to be held');
    // As an open retried after its agent crashed right after telling the parent: a new cursor, a later oplogEnd.
    const later = { t: ts.t + 5, i: 1 };
    await h.client.workflow.getHandle(id).signal(cursorOpenedSignal, { replicaSet: 'rs1', node: NODE, oplogEnd: later });
    await sleep(300);
    holds.get('settleCommonTimestamp')!.release();
    const s = await summaryOf(id);
    expect(s.status, events.join(' ')).toBe('complete');
    // Every cursor's data is restorable to the common timestamp only if it is at or after each cursor's oplogEnd.
    expect(s.commonTimestamp).toEqual(later);
    await expectLockReleased(lockId);
  });
});

describe("the copy's progress and its proof, at the workflow level", () => {
  it("a batch that ends while another still copies reaches the parent's progress within a second, not with the round's end", async () => {
    planned = [
      { no: 0, from: 0, to: 1, bytes: 1000 },
      { no: 1, from: 1, to: 2, bytes: 5000 },
    ];
    let release!: () => void;
    heldBatch = { no: 1, released: new Promise<void>((r) => (release = r)) };
    const { id, lockId } = await start(false, { copyParallelism: 2 });
    const rs0 = async () => (await h.client.workflow.getHandle(id).query(progressQuery)).replicaSets.find((r) => r.name === 'rs0');
    // Batch 0 ends at once, well within a second of the copy's start (which the parent heard of): a deferred report.
    await eventually(async () => (await rs0())?.bytesDone === 1000, 10_000, "batch 0's bytes in the parent's progress");
    expect(await rs0()).toMatchObject({ phase: 'copy', filesDone: 1, filesTotal: 2, bytesTotal: 6000 });
    release();
    const s = await summaryOf(id);
    expect(s.status, events.join(' ')).toBe('complete');
    await expectLockReleased(lockId);
  });

  it('a cursor lost after its copy was proven, as the parent says finish: the backup completes (the copy stands)', async () => {
    loseCursorAfterProof = true;
    const { id, lockId } = await start(false);
    const s = await summaryOf(id);
    expect(cursorGone).toBe(true);
    expect(s.status, `${JSON.stringify(s.error)} ${events.join(' ')}`).toBe('complete');
    expect(count('openBackupCursor:end')).toBe(1);
    expect(at('keepBackupCursorAlive:failed')).toBeLessThan(at('proveBackupCursorAlive:end'));
    await expectLockReleased(lockId);
  });
});

describe('failures, at the workflow level', () => {
  it('a repository that cannot be written (REPO_UNUSABLE at the first manifest): failed with its message, before any cursor', async () => {
    failures.set('initBackup', () => new CutpointError('REPO_UNUSABLE', '/mock is a regular file, not a directory'));
    const { id, lockId } = await start(false);
    const s = await summaryOf(id);
    expect(s.status).toBe('failed');
    expect(s.error).toEqual({ code: 'REPO_UNUSABLE', message: '/mock is a regular file, not a directory' });
    expect(count('initBackup:start')).toBe(1);
    expect(count('selectBackupNode:start')).toBe(0);
    await expectLockReleased(lockId);
  });

  it('an agent that cannot open the repository (no password): every replica set fails before any cursor opens, naming the agent', async () => {
    const message = `the agent of ${NODE} cannot open repository /mock: repository /mock is encrypted and no password was given`;
    failures.set('checkRepositoryAccess', () => new CutpointError('REPO_PASSWORD_MISSING', message));
    const { id, lockId } = await start(true);
    const s = await summaryOf(id);
    expect(s.status).toBe('failed');
    expect(s.error).toEqual({ code: 'REPO_PASSWORD_MISSING', message });
    expect(count('checkRepositoryAccess:start')).toBeGreaterThanOrEqual(1);
    expect(count('checkRepositoryAccess:start')).toBe(count('checkRepositoryAccess:failed'));
    expect(count('openBackupCursor:start')).toBe(0);
    expect(balancer).toBe('enabled');
    await expectLockReleased(lockId);
  });

  it('a prune holds the repository (REPO_LOCKED at the repository lock): the backup waits, tries again, and goes on', async () => {
    failures.set('lockRepository', () => {
      failures.delete('lockRepository');
      return new CutpointError('REPO_LOCKED', 'another prune holds the repository /mock (host h, pid 1, since then)');
    });
    const { id, lockId } = await start(false);
    await eventually(async () => (await h.client.workflow.getHandle(id).query(progressQuery)).phase === 'waiting', 10_000, 'the backup to wait');
    const s = await summaryOf(id);
    expect(s.status, events.join(' ')).toBe('complete');
    expect(count('lockRepository:start')).toBe(2);
    expect(at('lockRepository:end')).toBeLessThan(at('initBackup:start'));
    await expectLockReleased(lockId);
  });

  it('disk full during the copy (DISK_FULL): not retried, the cursor closed after the copy stopped, the outcome failed', async () => {
    failures.set('copyBatch', () => new CutpointError('DISK_FULL', 'writing backups/x/files/a.wt: the disk is full (ENOSPC)'));
    const { id, lockId } = await start(false);
    const s = await summaryOf(id);
    expect(s.status).toBe('failed');
    expect(s.error?.code).toBe('DISK_FULL');
    expect(s.error?.message).toContain('the disk is full');
    expect(count('copyBatch:start')).toBe(1);
    expect([...cursors]).toEqual([]);
    expect(at('copyBatch:failed')).toBeLessThan(at('closeBackupCursor:start'));
    expect(events.filter((e) => e.startsWith('outcome:'))).toEqual(['outcome:failed']);
    expect(lastAt('closeBackupCursor:end')).toBeLessThan(at('finishBackup:start'));
    await expectLockReleased(lockId);
  });

  it('a retryable failure (MONGO_UNREACHABLE while selecting the member) is retried, and the backup goes on', async () => {
    // Fails once (the error's own retryability, from the registry), then answers.
    failures.set('selectBackupNode', () => {
      failures.delete('selectBackupNode');
      return new CutpointError('MONGO_UNREACHABLE', 'cannot connect to rs0: an election is in progress');
    });
    const { id } = await start(false);
    const s = await summaryOf(id);
    expect(s.status, events.join(' ')).toBe('complete');
    expect(count('selectBackupNode:failed')).toBe(1);
    expect(count('selectBackupNode:end')).toBe(1);
  });

  it('a second backup of a cluster one of ours is backing up: CLUSTER_BUSY naming the holder, nothing touched', async () => {
    const lockId = `lock-holder-busy-${run}`;
    await h.client.workflow.start('clusterLock', { taskQueue: TASK_QUEUE, workflowId: lockId, args: [{ backupId: 'backup-holding', cluster: 'rs0', since: new Date().toISOString() }] });
    try {
      const { id } = await start(false, {}, lockId);
      const s = await summaryOf(id);
      expect(s.status).toBe('failed');
      expect(s.error?.code).toBe('CLUSTER_BUSY');
      expect(s.error?.message).toContain('backup backup-holding (running since 2026-12-07T00:00:00.000Z)');
      expect(s.error?.message).toContain('--if-busy wait');
      expect(events.filter((e) => e.endsWith(':start')).map((e) => e.split(':')[0])).toEqual(['discoverTopology', 'clusterLockHolder']);
    } finally {
      await h.client.workflow.getHandle(lockId).terminate('test done');
    }
  });

  it('a chosen member without a running agent: WORKER_UNAVAILABLE naming it and the command to start, not a hang', async () => {
    const { id, lockId } = await start(false, { agentTimeoutMs: 1000 });
    chosenNode = `nobody-${run}:27017`;
    const s = await summaryOf(id);
    expect(s.status).toBe('failed');
    expect(s.error?.code).toBe('WORKER_UNAVAILABLE');
    expect(s.error?.message).toContain(`the agent of backup source ${chosenNode} did not pick up 'checkRepositoryAccess' within 1000 ms`);
    expect(s.error?.message).toContain(`cutpoint agent --mongod ${chosenNode}`);
    expect(events.filter((e) => e.startsWith('outcome:'))).toEqual(['outcome:failed']);
    await expectLockReleased(lockId);
  });

  it('started the way the Temporal UI starts it, with a bad option: BAD_USAGE naming the option, no activity run', async () => {
    for (const [option, value, rule] of [
      ['copyParallelism', 0, 'at least 1'],
      ['keepAliveIntervalMs', 900_000, 'at most 300000 (well inside the 10-minute idle cursor limit of the server'],
      ['bytesPerSec', 'fast', 'a number'],
    ] as const) {
      events = [];
      const handle = await h.client.workflow.start('clusterBackup', {
        taskQueue: TASK_QUEUE,
        workflowId: `bad-option-${option}-${run}`,
        args: [{ uri: 'mongodb://rs.mock:27017/?lock=unused', repo: '/mock', [option]: value }],
      });
      const err = await handle.result().then(
        () => undefined,
        (e: unknown) => e as WorkflowFailedError,
      );
      expect(err).toBeInstanceOf(WorkflowFailedError);
      const cause = err!.cause as ApplicationFailure;
      expect(cause.type).toBe('BAD_USAGE');
      expect(cause.message).toContain(`${option} must be ${rule}`);
      expect(events).toEqual([]);
    }
  });
});

describe('the lookups that name a holder in those errors (the real activities, on Temporal)', () => {
  it('clusterLockHolder names the running lock\'s backup; nobody when there is no lock', async () => {
    const lockId = `lock-holder-lookup-${run}`;
    const holder = { backupId: 'backup-holding', cluster: 'rs0', since: '2026-12-07T00:00:00.000Z' };
    await h.client.workflow.start('clusterLock', { taskQueue: TASK_QUEUE, workflowId: lockId, args: [holder] });
    try {
      const lookup = clusterLockActivities(h.client).clusterLockHolder;
      expect(await new MockActivityEnvironment().run(lookup, { lockId })).toEqual(holder);
      expect(await new MockActivityEnvironment().run(lookup, { lockId: `${lockId}-none` })).toBeUndefined();
    } finally {
      await h.client.workflow.getHandle(lockId).terminate('test done');
    }
  });

  it("describeCursorHolder names our running backup of a node (BACKUP_CURSOR_BUSY's message), or says none of ours holds it", async () => {
    const { id } = await start(false);
    copyForever = true;
    await eventually(() => events.includes('copyBatch:start'), 30_000, 'the copy to run');
    expect(await describeCursorHolder(h.client, NODE, 'another-workflow')).toBe(`cutpoint backup ${id} (workflow ${id}.rs0), which is running`);
    // Asked by the backup itself, or about another node: none of ours.
    expect(await describeCursorHolder(h.client, NODE, `${id}.rs0`)).toMatch(/^no running cutpoint backup in this Temporal namespace/);
    expect(await describeCursorHolder(h.client, `other-${run}:1`, 'another-workflow')).toMatch(/^no running cutpoint backup/);
    await h.client.workflow.getHandle(id).signal(cancelSignal, { reason: 'test done' });
    expect((await summaryOf(id)).status).toBe('cancelled');
  });
});
