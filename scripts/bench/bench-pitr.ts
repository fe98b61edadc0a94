/**
 * `bench pitr`: the RPO of continuous oplog capture under the bank workload. A sharded simulated cluster (config
 * server and shards, three members each) runs the bank workload while `pitr-<cluster>` captures it (orchestrator and
 * agent as processes, as users run them). Every few hundred ms the newest majority-committed write over the replica
 * sets is sampled; its RPO is how long it takes until the repository makes it restorable (the minimum over the
 * replica sets of the newest sealed entry reaches it). Reported: median, p95 and maximum, against the target of
 * 2 x the seal interval + 1 s.
 */
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { MongoClient } from 'mongodb';
import { pitrStatus, startPitr, stopPitr } from '../../api/pitr.ts';
import { compareTs, type Ts } from '../../common/timestamp.ts';
import { fromBsonTimestamp } from '../../lib/bson-timestamp.ts';
import { sleep } from '../../lib/process.ts';
import { OplogSegments } from '../../repository/oplog-segments.ts';
import { fsRepository } from '../../repository/repository.ts';
import { BankWorkload } from '../../sim/cluster/bank.ts';
import { SimCluster } from '../../sim/cluster/cluster.ts';
import { direct } from '../../sim/testkit.ts';
import { printTable } from './report.ts';
import { membersOf, startAgent, startBenchTemporal, startOrchestrator, targetUri } from './stack.ts';

export interface PitrBenchOptions {
  dir: string;
  log: Logger;
  /** Seal interval, ms. */
  sealEveryMs: number;
  /** How long RPO is sampled, seconds. */
  seconds: number;
  /** The members' periodic no-op interval, ms (an idle replica set's commit point moves only with it). */
  noopMs: number;
  temporal?: { address: string; namespace: string };
}

const SAMPLE_MS = 250;
const CLUSTER = 'bench';

function quantile(sorted: number[], q: number): number {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

export async function benchPitr(o: PitrBenchOptions): Promise<Record<string, unknown>> {
  const temporal = await startBenchTemporal(o.log, o.temporal);
  const orchestrator = await startOrchestrator(temporal);
  const cluster = await SimCluster.start({ shards: 2, members: 3, checkpointMs: 1000, noopMs: o.noopMs, log: o.log, dir: join(o.dir, 'sim') });
  const clients: MongoClient[] = [];
  let workload: BankWorkload | undefined;
  const agent = await startAgent(temporal, membersOf(cluster));
  try {
    workload = await BankWorkload.start(cluster, { log: o.log, seed: 7 });
    const repo = join(o.dir, 'repo');
    await startPitr(temporal.client, { uri: targetUri(cluster), repo, cluster: CLUSTER, sealEveryMs: o.sealEveryMs });
    const primaries = cluster.replicaSets.map((rs) => {
      const c = direct(rs.primary()!.address);
      clients.push(c);
      return { name: rs.name, client: c };
    });
    const segments = new OplogSegments(fsRepository(repo));
    const restorableTo = async (): Promise<Ts | null> => {
      let min: Ts | null = null;
      for (const p of primaries) {
        const last = (await segments.last(CLUSTER, p.name))?.last;
        if (!last) return null;
        if (!min || compareTs(last, min) < 0) min = last;
      }
      return min;
    };
    const newestMajority = async (): Promise<Ts> => {
      let max: Ts = { t: 0, i: 0 };
      for (const p of primaries) {
        const ts = fromBsonTimestamp((await p.client.db('admin').command({ hello: 1 })).lastWrite?.majorityOpTime?.ts);
        if (ts && compareTs(ts, max) > 0) max = ts;
      }
      return max;
    };
    // Warm-up: every replica set has sealed once.
    const warm = Date.now() + 120_000;
    while (!(await restorableTo())) {
      if (Date.now() > warm) throw new Error('no seal on every replica set within 2 minutes');
      await sleep(200);
    }
    const pending: Array<{ ts: Ts; at: number }> = [];
    const rpoMs: number[] = [];
    const lagSecs: number[] = [];
    const end = Date.now() + o.seconds * 1000;
    while (Date.now() < end || (pending.length && Date.now() < end + 60_000)) {
      const now = Date.now();
      if (now < end) pending.push({ ts: await newestMajority(), at: now });
      const r = await restorableTo();
      if (r) {
        while (pending.length && compareTs(pending[0]!.ts, r) <= 0) rpoMs.push(Date.now() - pending.shift()!.at);
        if (now < end) lagSecs.push(Math.max(0, (await newestMajority()).t - r.t));
      }
      await sleep(SAMPLE_MS);
    }
    const status = await pitrStatus(temporal.client, CLUSTER);
    await stopPitr(temporal.client, CLUSTER);
    const sorted = [...rpoMs].sort((a, b) => a - b);
    const targetMs = 2 * o.sealEveryMs + 1000;
    const result = {
      sealEveryMs: o.sealEveryMs,
      sampledSeconds: o.seconds,
      noopMs: o.noopMs,
      replicaSets: cluster.replicaSets.length,
      membersPerReplicaSet: 3,
      samples: rpoMs.length,
      unresolved: pending.length,
      rpoMedianMs: quantile(sorted, 0.5),
      rpoP95Ms: quantile(sorted, 0.95),
      rpoMaxMs: sorted.at(-1) ?? NaN,
      rpoTargetMs: targetMs,
      withinTarget: sorted.length > 0 && (sorted.at(-1) ?? Infinity) <= targetMs && pending.length === 0,
      lagSecsMax: Math.max(0, ...lagSecs),
      transfers: workload.history.transfers.length,
      gaps: status.gaps.length,
    };
    printTable(`pitr: RPO under the bank workload, seal every ${o.sealEveryMs} ms, ${o.seconds} s sampled`, [
      { samples: result.samples, 'median ms': result.rpoMedianMs, 'p95 ms': result.rpoP95Ms, 'max ms': result.rpoMaxMs, 'target ms': targetMs, gaps: result.gaps },
    ]);
    return result;
  } finally {
    workload?.stop();
    for (const c of clients) await c.close();
    await agent.stop();
    await orchestrator.stop();
    await cluster.stop();
    await temporal.close();
  }
}
