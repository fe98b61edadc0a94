/**
 * A test stack on the run's Temporal dev server: a simulated cluster in this process, an agent worker per member,
 * and the orchestrator worker — what `cutpoint up` runs, assembled for tests.
 */
import type { Worker } from '@temporalio/worker';
import type { Repository } from '../../repository/repository.ts';
import type { ClusterOptions, SimCluster } from '../../sim/cluster/cluster.ts';
import { BankWorkload } from '../../sim/cluster/bank.ts';
import { startTestCluster, quietLog } from '../../sim/testkit.ts';
import { createAgentWorkers } from '../../workers/agent.ts';
import { createLogger } from '../../lib/logger.ts';
import { createOrchestratorWorker } from '../../workers/orchestrator.ts';
import { connectHarness, type TemporalHarness } from './temporal.ts';

export interface SimStack {
  h: TemporalHarness;
  cluster: SimCluster;
  workload?: BankWorkload;
  workers: Worker[];
  stop(): Promise<void>;
}

/** What runs in the test process besides the cluster (all of it by default). */
export interface SimStackOptions {
  /** Run the bank workload. */
  bank?: boolean;
  /** Run an orchestrator worker in this process (default true); false when a test runs `cutpoint worker` itself. */
  orchestrator?: boolean;
  /**
   * Which members get an agent worker in this process: true (default) every member, false none, or a predicate on
   * a member's host:port and its replica set's name (asked once the cluster runs, so the ports are known). Members
   * without one are served by an agent process the test runs (`cutpoint agent`).
   */
  agents?: boolean | ((host: string, replicaSet: string) => boolean);
  /** The repository at a path for the in-process workers (default the filesystem; tests inject faults). */
  repository?: (path: string) => Repository;
}

export async function startSimStack(opts: Partial<ClusterOptions> & SimStackOptions = {}): Promise<SimStack> {
  const { bank, orchestrator = true, agents = true, repository, ...clusterOptions } = opts;
  const h = await connectHarness();
  const cluster = await startTestCluster(clusterOptions);
  const log = createLogger('warn');
  // Cross-shard transfers are distributed transactions with two-phase commit: the backup's common timestamp is moved
  // past their commit entries (activities/orchestrator/distributed-transactions.ts), or a restore would be half-applied.
  const workload = bank ? await BankWorkload.start(cluster, { log: quietLog(), seed: 42 }) : undefined;
  const served = (host: string, replicaSet: string) => (typeof agents === 'function' ? agents(host, replicaSet) : agents);
  const members = cluster.replicaSets.flatMap((rs) => rs.localNodes.filter((n) => served(n.address, rs.name)).map((n) => ({ mongod: n.address })));
  const workers = [
    ...(orchestrator ? [await createOrchestratorWorker({ connection: h.native, namespace: h.namespace, log, ...(repository ? { repository } : {}) })] : []),
    ...(members.length ? await createAgentWorkers({ connection: h.native, namespace: h.namespace, targets: members, log, ...(repository ? { repository } : {}) }) : []),
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
