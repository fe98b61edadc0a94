/**
 * Sharded backup variants: a lagging secondary delays the backup (its extend waits for the common timestamp) but
 * neither fails nor is skipped; a 4-shard cluster, every replica set at one common timestamp; one shard's agent (a
 * separate `cutpoint agent` process, its only agent) SIGKILLed mid-copy and restarted, and the orchestrator (a
 * `cutpoint worker` process) SIGKILLed while the balancer is stopped: the backup still completes, recovering to the
 * workload's history at its common timestamp, and the balancer comes back as recorded.
 * Also: a shard backed up by itself while the cluster's backup holds its node fails BACKUP_CURSOR_BUSY naming it.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { activityInfo } from '@temporalio/activity';
import type { temporal } from '@temporalio/proto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { ClusterManifest, ReplicaSetManifest } from '../common/manifest.ts';
import { compareTs } from '../common/timestamp.ts';
import { backupProgress, backupResult, cancelBackup, startBackup } from '../api/backups.ts';
import { Oracle, recoverAt } from '../sim/cluster/oracle.ts';
import { direct, eventually, sleep } from '../sim/testkit.ts';
import { startCli } from './helpers/cli.ts';
import { restoreResult, startRestore, startVerify, verifyResult } from '../api/restores.ts';
import { materialize } from './helpers/recover.ts';
import { startSimStack, type SimStack } from './helpers/sim-stack.ts';
import { toBsonTimestamp } from '../lib/bson-timestamp.ts';
import { tempDir } from './helpers/temp.ts';
import { fsRepository } from '../repository/repository.ts';

const filesUnder = (dir: string): string[] =>
  readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name).slice(dir.length + 1))
    .sort();

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
      const [extend] = await activityDurations(stack, `${id}.shard1`, 'extendAndPlanCopy');
      expect(extend).toBeGreaterThan(2.5);
      const [other] = await activityDurations(stack, `${id}.shard0`, 'extendAndPlanCopy');
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
  /** Repository path → the password the in-process workers have for it (none: the repository stays in the clear). */
  const passwords = new Map<string, string>();
  /** Repository paths whose in-process agents have no password (the orchestrator still has it). */
  const agentsWithout = new Set<string>();
  const passwordFor = (path: string): string | undefined => {
    let queue: string | undefined;
    try {
      queue = activityInfo().taskQueue;
    } catch {
      queue = undefined;
    }
    return agentsWithout.has(path) && queue !== 'cutpoint' ? undefined : passwords.get(path);
  };
  let shard1: string[];
  const agents: Array<ReturnType<typeof startCli>> = [];
  const env = () => ({ TEMPORAL_ADDRESS: inject('temporalAddress'), TEMPORAL_NAMESPACE: inject('temporalNamespace') });
  const spawnAgent = (extraEnv: NodeJS.ProcessEnv = {}) => {
    const p = startCli(['agent', ...shard1.flatMap((h) => ['--mongod', h])], { ...env(), ...extraEnv });
    agents.push(p);
    return p;
  };
  /** The worker identity of a `cutpoint agent` process (the SDK's default: pid@host). */
  const identityOf = (p: ReturnType<typeof startCli>) => `${p.child.pid}@${hostname()}`;
  beforeAll(async () => {
    // shard1's members are served only by a `cutpoint agent` process the test kills; everything else runs in this one.
    stack = await startSimStack({
      shards: 2,
      members: 2,
      checkpointMs: 1000,
      bank: true,
      agents: (_host, replicaSet) => replicaSet !== 'shard1',
      repository: (path) => fsRepository(path, { password: () => passwordFor(path) }),
    });
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
  it('an encrypted backup: no readable byte stored, nothing of the password in logs or histories; an agent with a stale password fails the next backup before any cursor opens; the first still recovers to history', async () => {
    const PW = 'enc-test-Pw-9c41e7';
    const PW2 = 'enc-test-Pw2-5b08d2';
    // shard1's agent: a `cutpoint agent` process with the password in its own environment, logging at info.
    for (const p of agents) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
    const agent = spawnAgent({ CUTPOINT_REPO_PASSWORD: PW, CUTPOINT_LOG_LEVEL: 'info' });
    const dir = repo();
    passwords.set(dir, PW);
    const { id } = await startBackup(stack.h.client, { uri: stack.cluster.describe().mongos as string, repo: dir, keepAliveIntervalMs: 1000 });
    const summary = await backupResult(stack.h.client, id);
    expect(summary.status, JSON.stringify(summary.error)).toBe('complete');
    const workflows = [id, `${id}.cfg`, `${id}.shard0`, `${id}.shard1`];

    const r = fsRepository(dir, { password: () => PW });
    expect(await r.encrypted()).toBe(true);
    const manifests = await Promise.all(stack.cluster.shards.map(async (s) => (await r.readReplicaSetManifest(id, s.name))!));
    // What must not be readable: the collection, the dbpath's file names (and below, the documents' ids).
    const needles = ['accounts', ...manifests.flatMap((m) => m.files.map((f) => f.path.split('/').pop()!)).filter((n) => n.startsWith('collection-'))];
    expect(needles.length).toBeGreaterThan(2);
    const stored = filesUnder(dir).filter((p) => p !== 'cutpoint.json' && !p.startsWith('keys/'));
    expect(stored.some((p) => p.startsWith('data/'))).toBe(true);
    for (const p of stored) {
      const bytes = readFileSync(join(dir, p));
      for (const n of needles) expect(bytes.includes(n), `${p} holds ${n}`).toBe(false);
      expect(p.includes('collection-')).toBe(false);
    }
    // Control: the same backup's files, decrypted, hold every needle (so the scan above can find them).
    const plain = manifests.map((m) => materialize(dir, id, m, PW));
    const dbpaths = await Promise.all(plain);
    const restored = Buffer.concat(dbpaths.flatMap((d) => filesUnder(d).map((p) => readFileSync(join(d, p)))));
    for (const n of needles) expect(restored.includes(n), n).toBe(true);

    // A new password; shard1's agent still has the old one: the next backup fails naming that agent, and no replica
    // set opened a cursor (the others' agents were ready and waited).
    await r.changePassword(PW2);
    passwords.set(dir, PW2);
    const stale = await startBackup(stack.h.client, { uri: stack.cluster.describe().mongos as string, repo: dir, keepAliveIntervalMs: 1000 });
    const failed = await backupResult(stack.h.client, stale.id);
    expect(failed.status).toBe('failed');
    expect(failed.error?.code).toBe('REPO_PASSWORD_WRONG');
    expect(failed.error?.message).toMatch(new RegExp(`the agent of (${shard1.join('|')})`));
    for (const rs of ['cfg', 'shard0', 'shard1']) {
      const events = (await stack.h.client.workflow.getHandle(`${stale.id}.${rs}`).fetchHistory()).events ?? [];
      const types = events.map((e) => e.activityTaskScheduledEventAttributes?.activityType?.name).filter(Boolean);
      expect(types, rs).toContain('checkRepositoryAccess');
      expect(types, rs).not.toContain('openBackupCursor');
    }
    expect(await r.listKeys().then((k) => k.length)).toBe(1);
    await expect(fsRepository(dir, { password: () => PW }).listBackups()).rejects.toMatchObject({ code: 'REPO_PASSWORD_WRONG' });

    // With a wrong password on the workers, verify, restore and backup are refused and nothing is written.
    passwords.set(dir, 'wrong-password');
    const before = filesUnder(dir);
    const verifyId = (await startVerify(stack.h.client, { backupId: id, repo: dir })).id;
    const v = await verifyResult(stack.h.client, verifyId);
    expect(v.status).toBe('failed');
    expect(v.error?.code, JSON.stringify(v.error)).toBe('REPO_PASSWORD_WRONG');
    // A restore: refused while it plans, before any target is touched (these targets do not even exist).
    const target = (n: number) => [{ host: `127.0.0.1:${9 + n}`, dbpath: join(dir, `never-${n}`) }];
    const restoreId = (await startRestore(stack.h.client, { backupId: id, repo: dir, to: { cfg: target(0), shard0: target(1), shard1: target(2) } })).id;
    const rr = await restoreResult(stack.h.client, restoreId);
    expect(rr.status).toBe('failed');
    expect(rr.error?.code, JSON.stringify(rr.error)).toBe('REPO_PASSWORD_WRONG');
    // A backup whose orchestrator has the wrong password: refused before anything is written.
    const refused = await backupResult(stack.h.client, (await startBackup(stack.h.client, { uri: stack.cluster.describe().mongos as string, repo: dir, keepAliveIntervalMs: 1000 })).id);
    expect(refused.status).toBe('failed');
    expect(refused.error?.code, JSON.stringify(refused.error)).toBe('REPO_PASSWORD_WRONG');
    expect(filesUnder(dir)).toEqual(before);
    passwords.set(dir, PW2);

    // After the change, the first backup still recovers to history with the new password.
    const common = summary.commonTimestamp!;
    const ts = toBsonTimestamp(common);
    const states = [];
    for (const m of manifests) states.push({ name: m.name, accounts: recoverAt(await materialize(dir, id, m, PW2), ts) });
    expect(new Oracle(stack.workload!.history).verify(states, ts).mismatches).toEqual([]);
    const ids = [...states[0]!.accounts.keys()].slice(0, 5);
    expect(ids.length).toBe(5);
    for (const i of ids) expect(restored.includes(i), i).toBe(true);
    for (const p of stored) for (const i of ids) expect(readFileSync(join(dir, p)).includes(i), `${p} holds ${i}`).toBe(false);

    // Neither password in any workflow history, nor in what the agent process logged.
    for (const w of [...workflows, stale.id, `${stale.id}.cfg`, `${stale.id}.shard0`, `${stale.id}.shard1`, verifyId, restoreId, refused.id]) {
      const history = JSON.stringify(await stack.h.client.workflow.getHandle(w).fetchHistory());
      expect(history.includes(PW) || history.includes(PW2), w).toBe(false);
    }
    agent.child.kill('SIGTERM');
    const out = await agent.done;
    expect(out.stderr + out.stdout).toMatch(/checkRepositoryAccess|copyBatch/);
    expect((out.stderr + out.stdout).includes(PW)).toBe(false);
    expect((out.stderr + out.stdout).includes(PW2)).toBe(false);
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

