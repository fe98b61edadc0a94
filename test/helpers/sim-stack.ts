/**
 * A test stack on the run's Temporal dev server: a simulated cluster in this process, an agent worker per member,
 * and the orchestrator worker — what `cutpoint up` runs, assembled for tests.
 */
import type { Worker } from '@temporalio/worker';
import type { ClusterOptions, SimCluster } from '../../sim/cluster/cluster.ts';
import { BankWorkload } from '../../sim/cluster/bank.ts';
import { startTestCluster, quietLog } from '../../sim/testkit.ts';
import { createAgentWorkers } from '../../workers/agent.ts';
import { createLogger } from '../../workers/logger.ts';
import { createOrchestratorWorker } from '../../workers/orchestrator.ts';
import { connectHarness, type TemporalHarness } from './temporal.ts';

export interface SimStack {
  h: TemporalHarness;
  cluster: SimCluster;
  workload?: BankWorkload;
  workers: Worker[];
  stop(): Promise<void>;
}

export async function startSimStack(opts: Partial<ClusterOptions> & { bank?: boolean } = {}): Promise<SimStack> {
  const h = await connectHarness();
  const cluster = await startTestCluster(opts);
  const log = createLogger('warn');
  const workload = opts.bank ? await BankWorkload.start(cluster, { log: quietLog(), seed: 42 }) : undefined;
  const members = cluster.replicaSets.flatMap((rs) => rs.localNodes.map((n) => ({ mongod: n.address })));
  const workers = [
    await createOrchestratorWorker({ connection: h.native, namespace: h.namespace, log }),
    ...(await createAgentWorkers({ connection: h.native, namespace: h.namespace, targets: members, log } as Parameters<typeof createAgentWorkers>[0])),
  ];
  const running = Promise.allSettled(workers.map((w) => w.run()));
  return {
    h,
    cluster,
    workload,
    workers,
    async stop() {
      workload?.stop();
      for (const w of workers) if (w.getState() === 'RUNNING') w.shutdown();
      await running;
      await cluster.stop();
      await h.close();
    },
  };
}
