/**
 * Continuous oplog capture of a replica set whose tailed member steps down mid-capture while its agent is SIGKILLed
 * (on the real Temporal dev server, agents as processes): every majority-committed entry of both terms captured once,
 * checked against the new primary's oplog. And the lag shown by the workflow stays seconds old within one long lease
 * (the capture's progress signals): its state and current details move several times before the lease could end.
 */
import type { MongoClient } from 'mongodb';
import { MongoClient as Client, type Timestamp } from 'mongodb';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startPitr, stopPitr } from '../api/pitr.ts';
import { pitrStateQuery } from '../common/messages.ts';
import type { PitrState } from '../common/pitr-types.ts';
import { CutpointLagSecs } from '../common/search-attributes.ts';
import { compareTs, formatTs, type Ts } from '../common/timestamp.ts';
import { fromBsonTimestamp } from '../lib/bson-timestamp.ts';
import { fsRepository } from '../repository/repository.ts';
import { direct, eventually, sleep } from '../sim/testkit.ts';
import { startCli } from './helpers/cli.ts';
import { expectCapturedExactly } from './helpers/oplog.ts';
import { startSimStack, type SimStack } from './helpers/sim-stack.ts';
import { tempDir } from './helpers/temp.ts';

let stack: SimStack;
const env = () => ({ TEMPORAL_ADDRESS: inject('temporalAddress'), TEMPORAL_NAMESPACE: inject('temporalNamespace') });
const agents = new Map<string, ReturnType<typeof startCli>>();
const clients: MongoClient[] = [];
const open = (c: MongoClient): MongoClient => (clients.push(c), c);

beforeAll(async () => {
  stack = await startSimStack({ replsetOnly: true, members: 3, agents: false });
  for (const n of stack.cluster.shards[0]!.localNodes) agents.set(n.address, startCli(['agent', '--mongod', n.address], env()));
});
afterAll(async () => {
  for (const a of agents.values()) if (a.child.exitCode === null && a.child.signalCode === null) a.child.kill('SIGKILL');
  for (const c of clients) await c.close();
  await stack?.stop();
});

/** A lease longer than the whole test: the state can move within it only through the captures' progress signals. */
const LEASE_MS = 120_000;

describe('capture across a step-down', () => {
  it('captures every majority-committed entry of both terms once when the tailed member steps down and its agent is killed; the lag stays fresh within a lease', async () => {
    const repo = tempDir('cutpoint-pitr-stepdown-');
    const rs = stack.cluster.shards[0]!;
    const uri = stack.cluster.describe().shards[0].uri as string;
    // A writer through the replica set's URI: the driver follows the primary across the election.
    const writer = open(new Client(uri, { serverSelectionTimeoutMS: 15_000 }));
    let writing = true;
    let written = 0;
    const writes = (async () => {
      for (let i = 0; writing; i++) {
        await writer.db('app').collection('t').insertOne({ _id: i as never }).then(() => written++, () => undefined);
        await sleep(10);
      }
    })();

    const { cluster } = await startPitr(stack.h.client, { uri, repo, sealEveryMs: 300, leaseMs: LEASE_MS, agentHeartbeatTimeoutMs: 5000, agentTimeoutMs: 5000 });
    const handle = stack.h.client.workflow.getHandle(`pitr-${cluster}`);
    const state = async () => ((await handle.query(pitrStateQuery)) as PitrState).replicaSets[0]!;
    // Fresh lag: the first captured point, and the next one seconds later, come far within the first lease (whose
    // result comes after LEASE_MS), by the progress signals: shown by the query, the current details and the search
    // attribute.
    const first = (await eventually(async () => ((await handle.query(pitrStateQuery)) as PitrState).replicaSets[0]?.capturedTo, 60_000, 'a first seal')) as Ts;
    const since = Date.now();
    const points = new Set<string>([formatTs(first)]);
    await eventually(async () => {
      points.add(formatTs((await state()).capturedTo!));
      return points.size >= 2;
    }, 15_000, 'the captured point moving within one lease');
    expect(Date.now() - since).toBeLessThan(LEASE_MS);
    // The current details (the UI's, from the metadata query) show a captured point at least as new as the query did.
    const shown = (await state()).capturedTo!;
    await eventually(async () => {
      const meta = (await handle.query('__temporal_workflow_metadata')) as { currentDetails?: string };
      const m = /Timestamp\((\d+), (\d+)\)/.exec(meta.currentDetails ?? '');
      return m && compareTs({ t: Number(m[1]), i: Number(m[2]) }, shown) >= 0;
    }, 10_000, 'the current details showing the newest captured point');
    await eventually(async () => typeof (await handle.describe()).typedSearchAttributes.get(CutpointLagSecs) === 'number', 10_000, 'CutpointLagSecs set');

    // The member the capture tails (a secondary, as chosen) is stepped up, captured as primary a while, then stepped
    // down mid-capture and its agent SIGKILLed.
    const tailedHost = (await state()).node!;
    expect(agents.has(tailedHost)).toBe(true);
    const member = open(direct(tailedHost));
    await eventually(async () => (await member.db('admin').command({ replSetStepUp: 1 }).catch(() => ({ ok: 0 }))).ok === 1, 10_000, 'the tailed member stepped up');
    const asPrimary = (await state()).capturedTo!;
    await eventually(async () => compareTs((await state()).capturedTo!, asPrimary) > 0, 10_000, 'capture from the member as primary');
    await member.db('admin').command({ replSetStepDown: 60, secondaryCatchUpPeriodSecs: 10 });
    const killed = agents.get(tailedHost)!;
    killed.child.kill('SIGKILL');
    expect((await killed.done).signal).toBe('SIGKILL');
    const newPrimary = await eventually(() => rs.primary()?.address, 10_000, 'a new primary');
    expect(newPrimary).not.toBe(tailedHost);
    const np = open(direct(newPrimary!));
    const termStart = fromBsonTimestamp(((await np.db('admin').command({ hello: 1 })).lastWrite.opTime.ts as Timestamp))!;

    // The capture moves to another member and goes past the new term's first entries.
    await eventually(async () => compareTs((await state()).capturedTo!, termStart) > 0, 60_000, 'capture past the election');
    writing = false;
    await writes;
    await stopPitr(stack.h.client, cluster);
    await eventually(async () => (await handle.describe()).status.name === 'COMPLETED', 30_000, 'the capture stopped');
    expect(written).toBeGreaterThan(50);

    const { chain } = await expectCapturedExactly(fsRepository(repo), cluster, rs.name, np);
    expect(compareTs(chain.from!, asPrimary)).toBeLessThan(0);
    expect(compareTs(chain.to!, termStart)).toBeGreaterThan(0);
  });
});
