/**
 * Sharded backup variants: a lagging secondary delays the backup (its extend waits for the common timestamp) but
 * neither fails nor is skipped; a 4-shard cluster, every replica set at one common timestamp; one shard's agent (a
 * separate `cutpoint agent` process, its only agent) SIGKILLed mid-copy and restarted, and the orchestrator (a
 * `cutpoint worker` process) SIGKILLed while the balancer is stopped: the backup still completes, recovering to the
 * workload's history at its common timestamp, and the balancer comes back as recorded.
 * Also: a shard backed up by itself while the cluster's backup holds its node fails BACKUP_CURSOR_BUSY naming it.
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { temporal } from '@temporalio/proto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { ClusterManifest, ReplicaSetManifest } from '../common/manifest.ts';
import { compareTs } from '../common/timestamp.ts';
import { backupProgress, backupResult, cancelBackup, startBackup } from '../api/backups.ts';
import { Oracle, recoverAt } from '../sim/cluster/oracle.ts';
import { direct, eventually, sleep } from '../sim/testkit.ts';
import { startCli } from './helpers/cli.ts';
import { materialize } from './helpers/recover.ts';
import { startSimStack, type SimStack } from './helpers/sim-stack.ts';
import { toBsonTimestamp } from '../lib/bson-timestamp.ts';
import { tempDir } from './helpers/temp.ts';

const repo = () => tempDir('cutpoint-sharded-');
const readJson = <T>(path: string): T => JSON.parse(readFileSync(path, 'utf8')) as T;

const seconds = (t: temporal.api.history.v1.IHistoryEvent['eventTime']) => Number(t?.seconds ?? 0) + (t?.nanos ?? 0) / 1e9;

/** How long each run of an activity type took in a workflow's history (started → completed), seconds. */
async function activityDurations(stack: SimStack, workflowId: string, type: string): Promise<number[]> {
  const events = (await stack.h.client.workflow.getHandle(workflowId).fetchHistory()).events ?? [];
  const scheduled = new Set(events.filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === type).map((e) => Number(e.eventId)));
  const started = new Map(events.filter((e) => scheduled.has(Number(e.activityTaskStartedEventAttributes?.scheduledEventId))).map((e) => [Number(e.activityTaskStartedEventAttributes!.scheduledEventId), seconds(e.eventTime)]));
  return events
    .filter((e) => scheduled.has(Number(e.activityTaskCompletedEventAttributes?.scheduledEventId)))
    .map((e) => seconds(e.eventTime) - started.get(Number(e.activityTaskCompletedEventAttributes!.scheduledEventId))!);
}

/** Backs up through mongos and checks every shard's copy at the common timestamp against history. */
async function backUpAndVerify(
  stack: SimStack,
  during: (id: string) => Promise<void> = async () => undefined,
  options: { bytesPerSec?: number; batchMaxFiles?: number } = {},
): Promise<{ id: string; summary: Awaited<ReturnType<typeof backupResult>> }> {
  const dir = repo();
  const { id } = await startBackup(stack.h.client, { uri: stack.cluster.describe().mongos as string, repo: dir, keepAliveIntervalMs: 1000, ...options });
  await during(id);
  const summary = await backupResult(stack.h.client, id);
  expect(summary.status, JSON.stringify(summary.error)).toBe('complete');
  const cm = readJson<ClusterManifest>(join(dir, 'backups', id, 'manifest.json'));
  expect(cm.replicaSets.map((r) => r.name)).toEqual(['cfg', ...stack.cluster.shards.map((s) => s.name)]);
  const common = summary.commonTimestamp!;
  const ts = toBsonTimestamp(common);
  const states = [];
  for (const s of stack.cluster.shards) {
    const m = readJson<ReplicaSetManifest>(join(dir, 'backups', id, s.name, 'manifest.json'));
    expect(compareTs(m.extendedTo!, common), s.name).toBe(0);
    states.push({ name: s.name, accounts: recoverAt(await materialize(dir, id, m), ts) });
  }
  expect(new Oracle(stack.workload!.history).verify(states, ts).mismatches).toEqual([]);
  return { id, summary };
}

describe('a lagging secondary', () => {
  let stack: SimStack;
  beforeAll(async () => {
    stack = await startSimStack({ shards: 2, members: 3, checkpointMs: 1000, bank: true });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('delays the backup (its extend waits for the common timestamp) but does not break it', async () => {
    const shard1 = stack.cluster.shards[1]!;
    const primary = shard1.primary()!.address;
    const secondaries = shard1.localNodes.filter((n) => n.address !== primary);
    for (const n of secondaries) {
      const c = direct(n.address);
      await c.db('admin').command({ setParameter: 1, simReplicationLagMs: 5000 });
      await c.close();
    }
    try {
      const { id, summary } = await backUpAndVerify(stack);
      const node = summary.replicaSets.find((r) => r.name === 'shard1')!.node!;
      // A secondary was still chosen (lag under the ceiling), and its extend waited for the others' timestamp.
      expect(secondaries.map((n) => n.address)).toContain(node);
      const [extend] = await activityDurations(stack, `${id}.shard1`, 'extendBackupCursor');
      expect(extend).toBeGreaterThan(2.5);
      const [other] = await activityDurations(stack, `${id}.shard0`, 'extendBackupCursor');
      expect(other).toBeLessThan(extend! - 1);
    } finally {
      for (const n of secondaries) {
        const c = direct(n.address);
        await c.db('admin').command({ setParameter: 1, simReplicationLagMs: 0 });
        await c.close();
      }
    }
  });
});

describe('four shards', () => {
  let stack: SimStack;
  beforeAll(async () => {
    stack = await startSimStack({ shards: 4, members: 2, checkpointMs: 1000, bank: true });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('backs up all five replica sets to one common timestamp that recovers to history', async () => {
    const { summary } = await backUpAndVerify(stack);
    expect(summary.replicaSets.map((r) => r.name)).toEqual(['cfg', 'shard0', 'shard1', 'shard2', 'shard3']);
  });

  it("a backup of one shard on a node the cluster's backup holds: BACKUP_CURSOR_BUSY naming that backup", async () => {
    // A shard backed up by itself is another lock (another cluster identity) than the whole cluster: the node's
    // single backup-cursor slot is what stops it, and the error names the cutpoint backup that holds it.
    const cluster = await startBackup(stack.h.client, { uri: stack.cluster.describe().mongos as string, repo: repo(), bytesPerSec: 20_000, keepAliveIntervalMs: 1000 });
    try {
      const node = await eventually(async () => {
        const p = await backupProgress(stack.h.client, cluster.id);
        return p.phase === 'copy' ? p.replicaSets.find((r) => r.name === 'shard0')?.node : undefined;
      }, 60_000, 'the cluster backup to copy');
      const { id } = await startBackup(stack.h.client, { uri: stack.cluster.describe().shards[0].uri as string, repo: repo(), node: node!, maxLagSecs: 3600 });
      const r = await backupResult(stack.h.client, id);
      expect(r.status).toBe('failed');
      expect(r.error?.code).toBe('BACKUP_CURSOR_BUSY');
      expect(r.error?.message).toContain(`cutpoint backup ${cluster.id}`);
    } finally {
      await cancelBackup(stack.h.client, cluster.id, 'test done');
    }
    expect((await backupResult(stack.h.client, cluster.id)).status).toBe('cancelled');
  });
});

describe("one shard's agent killed mid-copy", () => {
  let stack: SimStack;
  let shard1: string[];
  const agents: Array<ReturnType<typeof startCli>> = [];
  const env = () => ({ TEMPORAL_ADDRESS: inject('temporalAddress'), TEMPORAL_NAMESPACE: inject('temporalNamespace') });
  const spawnAgent = () => {
    const p = startCli(['agent', ...shard1.flatMap((h) => ['--mongod', h])], env());
    agents.push(p);
    return p;
  };
  /** The worker identity of a `cutpoint agent` process (the SDK's default: pid@host). */
  const identityOf = (p: ReturnType<typeof startCli>) => `${p.child.pid}@${hostname()}`;
  beforeAll(async () => {
    // shard1's members are served only by a `cutpoint agent` process the test kills; everything else runs in this one.
    stack = await startSimStack({ shards: 2, members: 2, checkpointMs: 1000, bank: true, agents: (_host, replicaSet) => replicaSet !== 'shard1' });
    shard1 = stack.cluster.shards[1]!.localNodes.map((n) => n.address);
  });
  afterAll(async () => {
    for (const p of agents) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
    await stack?.stop();
  });

  it('the copy is retried on the restarted agent, and the backup recovers to history at its common timestamp', async () => {
    const first = spawnAgent();
    let second: ReturnType<typeof startCli> | undefined;
    const { id, summary } = await backUpAndVerify(
      stack,
      async (id) => {
        // Kill while the first agent process is the one running a copy of shard1 (its identity on the pending activity).
        await eventually(async () => {
          const d = await stack.h.client.workflow.getHandle(`${id}.shard1`).describe().catch(() => undefined);
          return d?.raw.pendingActivities?.some((a) => a.activityType?.name === 'copyBatch' && a.lastWorkerIdentity === identityOf(first));
        }, 60_000, "the agent process to run one of shard1's copies");
        first.child.kill('SIGKILL');
        expect((await first.done).signal).toBe('SIGKILL');
        second = spawnAgent();
      },
      { bytesPerSec: 300_000, batchMaxFiles: 2 },
    );
    expect(shard1).toContain(summary.replicaSets.find((r) => r.name === 'shard1')!.node);
    // A copy the killed process had started was started again, as a retry, by the restarted process.
    const events = (await stack.h.client.workflow.getHandle(`${id}.shard1`).fetchHistory()).events ?? [];
    const copies = new Set(events.filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'copyBatch').map((e) => Number(e.eventId)));
    const starts = events.flatMap((e) => {
      const a = e.activityTaskStartedEventAttributes;
      return a && copies.has(Number(a.scheduledEventId)) ? [{ identity: a.identity, attempt: a.attempt ?? 1 }] : [];
    });
    expect(starts.some((s) => s.identity === identityOf(second!) && s.attempt >= 2), JSON.stringify(starts)).toBe(true);
    expect(starts.every((s) => s.identity === identityOf(first) || s.identity === identityOf(second!)), 'only the agent processes ran copies of shard1').toBe(true);
  });
});

describe('the orchestrator killed while the balancer is stopped', () => {
  let stack: SimStack;
  const workers: Array<ReturnType<typeof startCli>> = [];
  const env = () => ({ TEMPORAL_ADDRESS: inject('temporalAddress'), TEMPORAL_NAMESPACE: inject('temporalNamespace') });
  const spawnWorker = () => {
    const p = startCli(['worker'], env());
    workers.push(p);
    return p;
  };
  const balancerMode = async () => {
    const c = direct((stack.cluster.describe().mongos as string).slice('mongodb://'.length));
    try {
      return String((await c.db('admin').command({ balancerStatus: 1 })).mode);
    } finally {
      await c.close();
    }
  };
  beforeAll(async () => {
    // The orchestrator is a `cutpoint worker` process the test kills; the agents run in this process.
    stack = await startSimStack({ shards: 2, members: 2, checkpointMs: 1000, bank: true, orchestrator: false });
  });
  afterAll(async () => {
    for (const p of workers) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
    await stack?.stop();
  });

  it('the backup completes at one common timestamp that recovers to history, and the balancer comes back as recorded', async () => {
    expect(await balancerMode()).toBe('full');
    const first = spawnWorker();
    await backUpAndVerify(
      stack,
      async (id) => {
        await eventually(async () => {
          const p = await backupProgress(stack.h.client, id).catch(() => undefined);
          return p?.phase === 'copy' && p.bytesDone > 0 && p.bytesDone < p.bytesTotal / 2;
        }, 60_000, 'the copy to be under way');
        // The balancer is off while the backup runs, and stays off while no orchestrator runs.
        expect(await balancerMode()).toBe('off');
        first.child.kill('SIGKILL');
        expect((await first.done).signal).toBe('SIGKILL');
        await sleep(2000);
        expect(await balancerMode()).toBe('off');
        spawnWorker();
      },
      { bytesPerSec: 300_000, batchMaxFiles: 2 },
    );
    expect(await balancerMode()).toBe('full');
  });
});

