/**
 * The demo deployment of `cutpoint up`: a simulated replica set (PSMDB 7.0 on the wire, sim/) with the bank
 * workload, in this process, and which members of a URI get an agent here.
 */
import { mkdirSync, mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { parseMongoUri } from '../common/target.ts';
import { BankWorkload } from '../sim/cluster/bank.ts';
import { SimCluster } from '../sim/cluster/cluster.ts';
import type { AgentTarget } from '../workers/agent.ts';

export interface DemoCluster {
  uri: string;
  dir: string;
  stop(): Promise<void>;
}

/** Starts a 3-member simulated replica set with the bank workload; dbpaths under `<state>/sim/`. */
export async function startDemoCluster(log: Logger, state: string): Promise<DemoCluster> {
  mkdirSync(join(state, 'sim'), { recursive: true });
  const dir = mkdtempSync(join(state, 'sim', 'rs-'));
  const cluster = await SimCluster.start({ replsetOnly: true, members: 3, dir, checkpointMs: 2000, noopMs: 1000, log: log.child({ component: 'sim' }) });
  const workload = await BankWorkload.start(cluster, { log });
  return {
    uri: cluster.describe().shards[0].uri as string,
    dir,
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
