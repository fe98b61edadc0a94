/**
 * The demo deployment of `cutpoint up`: a simulated sharded cluster (PSMDB 7.0 on the wire, sim/: 2 shards and a
 * config server, 3 members each, and a mongos) with the bank workload, in this process, and which members of a URI
 * get an agent here.
 */
import { mkdirSync, mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { parseMongoUri } from '../../common/target.ts';
import { BankWorkload } from '../../sim/cluster/bank.ts';
import { SimCluster } from '../../sim/cluster/cluster.ts';
import type { AgentTarget } from '../../workers/agent.ts';

export interface DemoCluster {
  /** The mongos URI: what a backup is given. */
  uri: string;
  dir: string;
  /** Every mongod of the cluster (config server and shards): each gets an agent. */
  members: AgentTarget[];
  stop(): Promise<void>;
}

/** Starts the simulated sharded cluster with the bank workload; dbpaths under `<state>/sim/`. */
export async function startDemoCluster(log: Logger, state: string): Promise<DemoCluster> {
  mkdirSync(join(state, 'sim'), { recursive: true });
  const dir = mkdtempSync(join(state, 'sim', 'cluster-'));
  const cluster = await SimCluster.start({ shards: 2, members: 3, dir, checkpointMs: 2000, noopMs: 1000, log: log.child({ component: 'sim' }) });
  const workload = await BankWorkload.start(cluster, { log });
  return {
    uri: cluster.describe().mongos as string,
    dir,
    members: cluster.replicaSets.flatMap((rs) => rs.localNodes.map((n) => ({ mongod: n.address }))),
    async stop() {
      workload.stop();
      await cluster.stop();
    },
  };
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|localhost|\[::1\])$/i;

/** Members of `uri` on this host (loopback names): the agents `cutpoint up` runs itself. */
export function localMembers(uri: string): AgentTarget[] {
  return parseMongoUri(uri)
    .hosts.filter((h) => LOOPBACK.test(h.slice(0, h.lastIndexOf(':'))))
    .map((mongod) => ({ mongod }));
}
