/**
 * Sharded backup on the real Temporal dev server and a simulated cluster (2 shards x 3 members + a 3-member config
 * server, bank workload moving money across shards): one parent workflow over a child per replica set, one common
 * timestamp, the balancer stopped during and restored after on every path. The copies recovered at the common
 * timestamp equal history and keep the bank invariant; each shard at its own checkpoint (the negative control) does
 * not.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClusterManifest, ReplicaSetManifest } from '../common/manifest.ts';
import { compareTs, maxTs, type Ts } from '../common/timestamp.ts';
import { backupProgress, backupResult, cancelBackup, setBackupThrottle, startBackup } from '../api/backups.ts';
import { Oracle, recoverAt } from '../sim/cluster/oracle.ts';
import { direct, eventually, sleep } from '../sim/testkit.ts';
import { materialize, recoverBankAt } from './helpers/recover.ts';
import { recordHistories } from './helpers/record-histories.ts';
import { startSimStack, type SimStack } from './helpers/sim-stack.ts';
import { toBsonTimestamp } from '../lib/bson-timestamp.ts';
import { tempDir } from './helpers/temp.ts';

let stack: SimStack;
const repo = () => tempDir('cutpoint-sharded-');
const readJson = <T>(path: string): T => JSON.parse(readFileSync(path, 'utf8')) as T;
const mongosUri = () => stack.cluster.describe().mongos as string;

beforeAll(async () => {
  stack = await startSimStack({
    shards: 2,
    members: 3,
    checkpointMs: 1000,
    bank: true,
  });
});
afterAll(async () => {
  await stack?.stop();
});

async function balancerMode(): Promise<string> {
  const c = direct(mongosUri().slice('mongodb://'.length));
  try {
    return String((await c.db('admin').command({ balancerStatus: 1 })).mode);
  } finally {
    await c.close();
  }
}

async function setBalancer(on: boolean): Promise<void> {
  const c = direct(mongosUri().slice('mongodb://'.length));
  try {
    await c.db('admin').command({ [on ? 'balancerStart' : 'balancerStop']: 1 });
  } finally {
    await c.close();
  }
}

/** Members with a backup cursor open, over every replica set. */
async function openCursors(): Promise<string[]> {
  const open: string[] = [];
  for (const rs of stack.cluster.replicaSets) {
    for (const node of rs.localNodes) {
      const c = direct(node.address);
      try {
        if ((await c.db('admin').command({ serverStatus: 1 })).storageEngine.backupCursorOpen) open.push(node.address);
      } finally {
        await c.close();
      }
    }
  }
  return open;
}

const filesUnder = (dir: string): string[] =>
  readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name).slice(dir.length + 1))
    .sort();

/**
 * The `settleCommonTimestamp` calls of backup `id` (activities/orchestrator/distributed-transactions.ts), in order:
 * the timestamp each was asked to settle and the one it returned.
 */
async function settles(id: string): Promise<Array<{ asked: Ts; settled: Ts }>> {
  const converter = stack.h.client.options.loadedDataConverter.payloadConverter;
  const events = (await stack.h.client.workflow.getHandle(id).fetchHistory()).events ?? [];
  return events
    .filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'settleCommonTimestamp')
    .map((scheduled) => {
      const done = events.find((e) => Number(e.activityTaskCompletedEventAttributes?.scheduledEventId) === Number(scheduled.eventId))!;
      return {
        asked: converter.fromPayload<{ common: Ts }>(scheduled.activityTaskScheduledEventAttributes!.input!.payloads![0]!).common,
        settled: converter.fromPayload<{ common: Ts }>(done.activityTaskCompletedEventAttributes!.result!.payloads![0]!).common,
      };
    });
}

describe('sharded backup through mongos', () => {
  it('backs up every shard and the config server to one common timestamp that recovers to history', async () => {
    expect(await balancerMode()).toBe('full');
    const dir = repo();
    const { id } = await startBackup(stack.h.client, { uri: mongosUri(), repo: dir, keepAliveIntervalMs: 1000, bytesPerSec: 4_000_000 });
    // The balancer is off while the backup runs.
    await eventually(async () => (await backupProgress(stack.h.client, id)).phase === 'copy', 60_000, 'copy phase');
    expect(await balancerMode()).toBe('off');
    const summary = await backupResult(stack.h.client, id);
    expect(summary.status, JSON.stringify(summary.error)).toBe('complete');
    expect(await balancerMode()).toBe('full');
    expect(await openCursors()).toEqual([]);
    await recordHistories(stack.h.client, 'backup', [id, `${id}.cfg`, `${id}.shard0`, `${id}.shard1`]);

    expect(summary.cluster).toBe('cfg');
    expect(summary.replicaSets.map((r) => [r.name, r.configServer])).toEqual([
      ['cfg', true],
      ['shard0', false],
      ['shard1', false],
    ]);
    const cm = readJson<ClusterManifest>(join(dir, 'backups', id, 'manifest.json'));
    expect(cm).toMatchObject({ status: 'complete', balancerWasEnabled: true, commonTimestamp: summary.commonTimestamp });
    const common = summary.commonTimestamp!;
    const manifests = cm.replicaSets.map((r) => readJson<ReplicaSetManifest>(join(dir, 'backups', id, r.name, 'manifest.json')));
    // The common timestamp is the newest oplogEnd of the cursors, moved past any distributed transaction committing
    // across it, and every cursor was extended to it.
    const [firstEnd, ...otherEnds] = manifests.map((m) => m.oplogEnd!);
    expect(await settles(id)).toEqual([{ asked: maxTs(firstEnd!, ...otherEnds), settled: common }]);
    expect(compareTs(common, maxTs(firstEnd!, ...otherEnds))).toBeGreaterThanOrEqual(0);
    for (const m of manifests) {
      expect(compareTs(m.extendedTo!, common), m.name).toBe(0);
      expect(m.node, m.name).toBe(summary.replicaSets.find((r) => r.name === m.name)!.node);
    }
    // The parent's progress aggregates the children.
    const p = await backupProgress(stack.h.client, id);
    expect(p.replicaSets.map((r) => r.name).sort()).toEqual(['cfg', 'shard0', 'shard1']);
    expect(p.bytesDone).toBe(p.replicaSets.reduce((s, r) => s + r.bytesDone, 0));
    expect(p.bytesDone).toBe(summary.bytes);

    // Each shard's copy, recovered through the mongod entry point at the common timestamp: exactly history.
    const ts = toBsonTimestamp(common);
    const oracle = new Oracle(stack.workload!.history);
    const shards = manifests.filter((m) => m.name !== 'cfg');
    const dbpaths = await Promise.all(shards.map(async (m) => ({ name: m.name, dbpath: await materialize(dir, id, m) })));
    const states = [];
    for (const d of dbpaths) states.push({ name: d.name, accounts: await recoverBankAt(d.dbpath, common) });
    expect(oracle.verify(states, ts).mismatches).toEqual([]);
    // Negative control, same copies: each shard recovered at its own checkpoint (what a restore without the common
    // timestamp gives) is not the cluster at any one time.
    const own = await Promise.all(shards.map(async (m) => ({ name: m.name, accounts: recoverAt(await materialize(dir, id, m), toBsonTimestamp(m.checkpointTimestamp!)) })));
    expect(compareTs(shards[0]!.checkpointTimestamp!, common)).toBeLessThan(0);
    const mixed = oracle.verify(own, ts);
    expect(mixed.ok).toBe(false);
  });

  it('leaves a stopped balancer stopped and records it', async () => {
    await setBalancer(false);
    try {
      const dir = repo();
      const { id } = await startBackup(stack.h.client, { uri: mongosUri(), repo: dir, keepAliveIntervalMs: 1000 });
      expect((await backupResult(stack.h.client, id)).status).toBe('complete');
      expect(readJson<ClusterManifest>(join(dir, 'backups', id, 'manifest.json')).balancerWasEnabled).toBe(false);
      expect(await balancerMode()).toBe('off');
    } finally {
      await setBalancer(true);
    }
  });

  it('cancel mid-copy: every cursor closed, the balancer restored, partial data removed', async () => {
    const dir = repo();
    const { id } = await startBackup(stack.h.client, { uri: mongosUri(), repo: dir, keepAliveIntervalMs: 1000, bytesPerSec: 150_000, batchMaxFiles: 2 });
    await eventually(async () => {
      const p = await backupProgress(stack.h.client, id);
      return p.phase === 'copy' && p.bytesDone > 0;
    }, 60_000, 'copy to start');
    expect(await balancerMode()).toBe('off');
    expect((await openCursors()).length).toBe(3);
    // setThrottle on the parent reaches every child: each gets its share of the whole-backup rate.
    expect((await setBackupThrottle(stack.h.client, id, 300_000)).bytesPerSec).toBe(300_000);
    for (const rs of ['cfg', 'shard0', 'shard1']) {
      expect(await stack.h.client.workflow.getHandle(`${id}.${rs}`).query<number>('throttle'), rs).toBe(100_000);
    }
    await cancelBackup(stack.h.client, id, 'test');
    const summary = await backupResult(stack.h.client, id);
    expect(summary.status).toBe('cancelled');
    expect(await openCursors()).toEqual([]);
    expect(await balancerMode()).toBe('full');
    await sleep(2000);
    expect(filesUnder(join(dir, 'backups', id))).toEqual(['manifest.json']);
  });

  it('a shard whose cursor is killed mid-copy re-opens; the common timestamp moves forward; the others keep their data files', async () => {
    const dir = repo();
    // Slow until the kill, so that shard1 is surely mid-copy (a batch's bytes in flight, from its heartbeats); then fast.
    const { id } = await startBackup(stack.h.client, { uri: mongosUri(), repo: dir, keepAliveIntervalMs: 1000, bytesPerSec: 150_000, batchMaxFiles: 3 });
    await eventually(async () => {
      const p = await backupProgress(stack.h.client, id, { inFlight: true });
      const s1 = p.replicaSets.find((r) => r.name === 'shard1');
      return p.phase === 'copy' && s1?.phase === 'copy' && s1.bytesDone > 0 && s1.bytesDone < s1.bytesTotal;
    }, 60_000, 'shard1 to copy');
    const victim = (await backupProgress(stack.h.client, id)).replicaSets.find((r) => r.name === 'shard1')!.node!;
    const c = direct(victim);
    await c.db('admin').command({ killAllSessions: [] });
    await c.close();
    await setBackupThrottle(stack.h.client, id, 1_800_000);
    const summary = await backupResult(stack.h.client, id);
    expect(summary.status, JSON.stringify(summary.error)).toBe('complete');
    expect(await openCursors()).toEqual([]);
    await recordHistories(stack.h.client, 'backup-reopened', [id, `${id}.shard1`]);

    const common = summary.commonTimestamp!;
    const manifests = Object.fromEntries(['cfg', 'shard0', 'shard1'].map((n) => [n, readJson<ReplicaSetManifest>(join(dir, 'backups', id, n, 'manifest.json'))]));
    // The re-opened cursor started after the first common timestamp (the others' newest oplogEnd) and set the new one:
    // its oplogEnd, moved past any distributed transaction committing across it (the last settleCommonTimestamp).
    const moves = await settles(id);
    expect(moves).toHaveLength(2);
    expect(moves[1]).toEqual({ asked: manifests.shard1!.oplogEnd, settled: common });
    expect(compareTs(common, manifests.shard1!.oplogEnd!)).toBeGreaterThanOrEqual(0);
    expect(compareTs(common, maxTs(manifests.cfg!.oplogEnd!, manifests.shard0!.oplogEnd!))).toBeGreaterThan(0);
    for (const m of Object.values(manifests)) expect(compareTs(m.extendedTo!, common), m.name).toBe(0);

    // shard0 extended (and planned, one activity) twice, first and moved common timestamp, and read each of its data
    // files exactly once.
    const converter = stack.h.client.options.loadedDataConverter.payloadConverter;
    const events = (await stack.h.client.workflow.getHandle(`${id}.shard0`).fetchHistory()).events ?? [];
    const types = new Map(events.filter((e) => e.activityTaskScheduledEventAttributes).map((e) => [Number(e.eventId), e.activityTaskScheduledEventAttributes!.activityType!.name]));
    const completed = (type: string) => events.filter((e) => types.get(Number(e.activityTaskCompletedEventAttributes?.scheduledEventId)) === type);
    expect(completed('extendAndPlanCopy')).toHaveLength(2);
    const dataBytesRead = completed('copyBatch')
      .map((e) => converter.fromPayload<{ dataBytesRead: number }>(e.activityTaskCompletedEventAttributes!.result!.payloads![0]!).dataBytesRead)
      .reduce((a, b) => a + b, 0);
    const dataBytes = manifests.shard0!.files.filter((f) => f.kind === 'data').reduce((a, f) => a + f.size, 0);
    expect(dataBytes).toBeGreaterThan(0);
    expect(dataBytesRead).toBe(dataBytes);

    // And the result is still the cluster at one time.
    const ts = toBsonTimestamp(common);
    const states = await Promise.all(['shard0', 'shard1'].map(async (n) => ({ name: n, accounts: recoverAt(await materialize(dir, id, manifests[n]!), ts) })));
    expect(new Oracle(stack.workload!.history).verify(states, ts).mismatches).toEqual([]);
  });

  it('one replica set failing stops the others within seconds, cursors closed and the balancer restored', async () => {
    const dir = repo();
    const { id } = await startBackup(stack.h.client, { uri: mongosUri(), repo: dir, keepAliveIntervalMs: 1000, bytesPerSec: 150_000, batchMaxFiles: 2, cursorReopens: 0 });
    await eventually(async () => {
      const p = await backupProgress(stack.h.client, id);
      return p.phase === 'copy' && p.bytesDone > 0 && p.replicaSets.every((r) => r.node !== null);
    }, 60_000, 'copy to start');
    // Someone kills every session on shard1's backup node: its cursor is gone.
    const victim = (await backupProgress(stack.h.client, id)).replicaSets.find((r) => r.name === 'shard1')!.node!;
    const c = direct(victim);
    await c.db('admin').command({ killAllSessions: [] });
    await c.close();
    const killedAt = Date.now();
    const summary = await backupResult(stack.h.client, id);
    const stoppedAfterMs = Date.now() - killedAt;
    expect(summary.status).toBe('failed');
    expect(summary.error?.code).toBe('CURSOR_LOST');
    expect(summary.error?.message).toContain('shard1');
    // The other shard was still copying (throttled far below its size): it was stopped, not finished. (The config
    // server's copy is small enough to finish first.)
    expect(stoppedAfterMs).toBeLessThan(15_000);
    expect(summary.replicaSets.find((r) => r.name === 'shard0')!.files).toBe(0);
    expect(await openCursors()).toEqual([]);
    expect(await balancerMode()).toBe('full');
    expect(readJson<ClusterManifest>(join(dir, 'backups', id, 'manifest.json')).status).toBe('failed');
  });
});
