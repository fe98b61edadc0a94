/**
 * Continuous oplog capture (`pitr-<cluster>`) of a sharded cluster under the bank workload, on the real Temporal dev
 * server: every replica set, config server included, captured exactly once (checked against the oplogs) through
 * continue-as-new, an agent SIGKILLed mid-capture and then the member the capture moved to crashed; `pitr status
 * --json` and `pitr stop` through the CLI.
 */
import type { MongoClient } from 'mongodb';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { pitrStatus, startPitr } from '../api/pitr.ts';
import { pitrStateQuery } from '../common/messages.ts';
import type { PitrState, PitrStatus } from '../common/pitr-types.ts';
import { CutpointKind, CutpointLagSecs } from '../common/search-attributes.ts';
import { compareTs, type Ts } from '../common/timestamp.ts';
import { fsRepository } from '../repository/repository.ts';
import { direct, eventually } from '../sim/testkit.ts';
import { runCli, startCli } from './helpers/cli.ts';
import { expectCapturedExactly } from './helpers/oplog.ts';
import { startSimStack, type SimStack } from './helpers/sim-stack.ts';
import { tempDir } from './helpers/temp.ts';

/** The shard whose agents run as processes of their own (the rest are served in this process). */
const VICTIM_RS = 'shard0';
let stack: SimStack;
const env = () => ({ TEMPORAL_ADDRESS: inject('temporalAddress'), TEMPORAL_NAMESPACE: inject('temporalNamespace') });
const agents = new Map<string, ReturnType<typeof startCli>>();
const clients: MongoClient[] = [];

function spawnAgent(host: string): void {
  agents.set(host, startCli(['agent', '--mongod', host], env()));
}

beforeAll(async () => {
  stack = await startSimStack({ bank: true, agents: (_host, rs) => rs !== VICTIM_RS });
  for (const n of stack.cluster.shards.find((s) => s.name === VICTIM_RS)!.localNodes) spawnAgent(n.address);
});
afterAll(async () => {
  for (const a of agents.values()) if (a.child.exitCode === null && a.child.signalCode === null) a.child.kill('SIGKILL');
  for (const c of clients) await c.close();
  await stack?.stop();
});

const CLUSTER = 'bank1';
const handle = () => stack.h.client.workflow.getHandle(`pitr-${CLUSTER}`);
const state = () => handle().query(pitrStateQuery) as Promise<PitrState>;
const captured = async (rs: string): Promise<{ node: string | null; capturedTo: Ts | null }> => (await state()).replicaSets.find((s) => s.replicaSet === rs)!;

describe('continuous oplog capture', () => {
  it('captures every replica set exactly once under the bank workload, through continue-as-new, an agent SIGKILLed and a member crashed', async () => {
    const repo = tempDir('cutpoint-pitr-');
    const mongos = stack.cluster.describe().mongos as string;
    const { id } = await startPitr(stack.h.client, { uri: mongos, cluster: CLUSTER, repo, sealEveryMs: 500, leaseMs: 2000, leasesPerRun: 2, agentHeartbeatTimeoutMs: 5000, agentTimeoutMs: 5000 });
    expect(id).toBe(`pitr-${CLUSTER}`);
    const firstRun = (await handle().describe()).runId;
    const names = stack.cluster.replicaSets.map((rs) => rs.name);
    expect(names).toContain('cfg');
    await eventually(async () => (await state()).replicaSets.length === names.length && (await state()).replicaSets.every((s) => s.capturedTo), 60_000, 'every replica set captured');

    // The member of the victim shard that captures now: its agent is SIGKILLed mid-capture.
    const before = (await eventually(async () => {
      const s = await captured(VICTIM_RS);
      return s.node && agents.has(s.node) ? s : undefined;
    }, 30_000, 'the victim shard captured by an agent process'))!;
    const killed = agents.get(before.node!)!;
    killed.child.kill('SIGKILL');
    expect((await killed.done).signal).toBe('SIGKILL');
    // The capture moves to another member and goes on from the last sealed point.
    const moved = (await eventually(async () => {
      const s = await captured(VICTIM_RS);
      return s.node && s.node !== before.node && s.capturedTo && compareTs(s.capturedTo, before.capturedTo!) > 0 ? s : undefined;
    }, 60_000, 'the capture of the victim shard moved to another member'))!;
    // That member fails in turn (a crash, kill -9): the capture moves again (the primary is never crashed).
    const primary = stack.cluster.shards.find((s) => s.name === VICTIM_RS)!.primary()!.address;
    spawnAgent(before.node!);
    if (moved.node !== primary) {
      await stack.cluster.crashMember(moved.node!);
      await eventually(async () => {
        const s = await captured(VICTIM_RS);
        return s.node && s.node !== moved.node && s.capturedTo && compareTs(s.capturedTo, moved.capturedTo!) > 0;
      }, 60_000, 'the capture moved off the crashed member');
      await stack.cluster.restartMember(moved.node!);
    }

    // Continue-as-new happened (several runs), and the capture went on in each.
    await eventually(async () => (await handle().describe()).runId !== firstRun, 60_000, 'a continue-as-new');
    const d = await handle().describe();
    expect(d.typedSearchAttributes.get(CutpointKind)).toBe('pitr');
    expect(d.typedSearchAttributes.get(CutpointLagSecs)).toBeGreaterThanOrEqual(0);
    let runs = 0;
    for await (const w of stack.h.client.workflow.list({ query: `WorkflowId = 'pitr-${CLUSTER}'` })) if (w.status.name === 'CONTINUED_AS_NEW') runs++;
    expect(runs).toBeGreaterThanOrEqual(1);

    // Status through the CLI, as docs/interfaces.md section 8 has it.
    const status = await runCli(['pitr', 'status', '--cluster', CLUSTER, '--json'], env());
    expect(status.code, status.stderr).toBe(0);
    const s = JSON.parse(status.stdout) as PitrStatus;
    expect(s).toMatchObject({ cluster: CLUSTER, status: 'running', gaps: [], restorableFrom: null });
    expect(s.replicaSets.map((r) => r.name).sort()).toEqual([...names].sort());
    for (const r of s.replicaSets) expect(r.lagSecs).not.toBeNull();
    expect(s.restorableTo).toEqual(s.replicaSets.map((r) => r.capturedTo!).reduce((m, x) => (compareTs(x, m) < 0 ? x : m)));

    const stop = await runCli(['pitr', 'stop', '--cluster', CLUSTER], env());
    expect(stop.code, stop.stderr).toBe(0);
    expect((await handle().describe()).status.name).toBe('COMPLETED');
    expect((await pitrStatus(stack.h.client, CLUSTER)).status).toBe('stopped');

    // Every replica set: no gap, no duplicate, every entry of its primary's oplog over the captured range.
    const repository = fsRepository(repo);
    for (const rs of stack.cluster.replicaSets) {
      const c = direct(rs.primary()!.address);
      clients.push(c);
      const { chain, entries } = await expectCapturedExactly(repository, CLUSTER, rs.name, c);
      expect(entries).toBeGreaterThan(10);
      expect(chain.segments).toBeGreaterThan(3);
    }
  });
});
