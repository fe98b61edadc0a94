/**
 * The demo deployment of `cutpoint up`: a simulated sharded cluster (PSMDB 7.0 on the wire, sim/: 2 shards and a
 * config server, 3 members each, and a mongos) with the bank workload, in this process, and which members of a
 * deployment get an agent here.
 */
import { mkdirSync, mkdtempSync } from 'node:fs';
import { hostname, networkInterfaces } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { topologyActivities } from '../../activities/orchestrator/topology.ts';
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

/** The names this host answers to: loopback, its host name, the addresses of its interfaces. */
function isThisHost(name: string): boolean {
  const bare = name.replace(/^\[|\]$/g, '').toLowerCase();
  if (LOOPBACK.test(name) || bare === '::1') return true;
  const names = new Set([hostname().toLowerCase(), hostname().split('.')[0]!.toLowerCase()]);
  for (const addrs of Object.values(networkInterfaces())) for (const a of addrs ?? []) names.add(a.address.toLowerCase());
  return names.has(bare);
}

/** Of `hosts` (host:port), those on this host: the agents `cutpoint up` runs itself. */
export function localMembers(hosts: string[]): AgentTarget[] {
  return [...new Set(hosts)].filter((h) => isThisHost(h.slice(0, h.lastIndexOf(':')))).map((mongod) => ({ mongod }));
}

/**
 * Every member of the deployment behind `uri` that runs on this host. A replica-set URI may list only some members
 * and a mongos URI none, so the members are discovered as a backup discovers them (through a mongos: the config
 * server and every shard), with the credentials of the environment.
 */
export async function discoverLocalMembers(uri: string): Promise<AgentTarget[]> {
  const topology = await topologyActivities.discoverTopology({ target: { uri, credentials: { kind: 'env' } } });
  return localMembers(topology.replicaSets.flatMap((rs) => rs.hosts));
}
