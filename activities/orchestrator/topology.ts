/**
 * Control-plane activities that need only a network path to the cluster: what the deployment is, and which member
 * of a replica set to back up.
 */
import { log } from '@temporalio/activity';
import type { Document, MongoClient } from 'mongodb';
import { Timestamp } from 'mongodb';
import { CutpointError } from '../../common/errors.ts';
import { selectNode, type MemberView } from '../../common/node-selection.ts';
import { parseShardHost, replicaSetUri, type MongoTarget } from '../../common/target.ts';
import { withClient } from '../../lib/mongo/client.ts';
import { clusterLockId } from './cluster-lock.ts';
import { normalizeHostPort } from '../../common/task-queues.ts';
import { replicaSetMembers } from '../../lib/metrics.ts';

export interface ReplicaSetTopology {
  name: string;
  configServer: boolean;
  hosts: string[];
  /** How workers reach this replica set: its members, with the options of the URI given. */
  uri: string;
}

export interface Topology {
  kind: 'replicaSet' | 'sharded';
  replicaSets: ReplicaSetTopology[];
  /** The id of this cluster's backup lock workflow (cluster-lock.ts): the same whichever member or mongos was asked. */
  lockId: string;
}

const seconds = (ts: unknown) => (ts instanceof Timestamp ? ts.high + ts.low / 1e6 : 0);

/** Reads the members' states, health, hidden/delay settings and lag behind the primary. */
export function memberViews(status: Document, config: Document): MemberView[] {
  const members = status.members as Document[];
  const primary = members.find((m) => m.stateStr === 'PRIMARY');
  const top = primary ? seconds((primary.optime as Document).ts) : Math.max(...members.map((m) => seconds((m.optime as Document | undefined)?.ts)));
  return members.map((m) => {
    const cfg = (config.members as Document[]).find((c) => c.host === m.name) ?? {};
    return {
      host: String(m.name),
      state: String(m.stateStr),
      healthy: m.health === 1,
      hidden: cfg.hidden === true,
      delaySecs: Number(cfg.secondaryDelaySecs ?? cfg.slaveDelay ?? 0),
      lagSecs: Math.max(0, Math.round((top - seconds((m.optime as Document | undefined)?.ts)) * 10) / 10),
    };
  });
}

/** The shard id `listShards` gives a config server replica set that is also a shard (MongoDB 8.0 "config shard"). */
export const CONFIG_SHARD_ID = 'config';

/**
 * The replica sets behind a mongos: the config server from `getShardMap` (as PBM finds it), the shards from
 * `listShards`. The config server comes first; a draining shard is still backed up (it still owns data).
 */
async function shardedTopology(client: MongoClient, uri: string): Promise<Topology> {
  const admin = client.db('admin');
  const [{ map }, { shards }] = await Promise.all([admin.command({ getShardMap: 1 }), admin.command({ listShards: 1 })]);
  const config = typeof (map as Document | undefined)?.config === 'string' ? String((map as Document).config) : undefined;
  if (!config || !config.includes('/')) {
    throw new CutpointError('NOT_SUPPORTED', `the mongos at ${uri} reports no config server replica set (getShardMap: ${JSON.stringify(map)})`);
  }
  const rs = (conn: string, configServer: boolean): ReplicaSetTopology => {
    const { name, hosts } = parseShardHost(conn);
    return { name, configServer, hosts, uri: replicaSetUri(uri, name, hosts) };
  };
  const cfg = rs(config, true);
  // A MongoDB 8.0 config shard is listed too (shard id `config`, the config server's connection string): it is one
  // replica set, backed up and restored once, as the config server.
  const list = (shards as Document[]).filter((s) => s._id !== CONFIG_SHARD_ID && parseShardHost(String(s.host)).name !== cfg.name).map((s) => rs(String(s.host), false));
  if (list.length === 0 && !(shards as Document[]).some((s) => s._id === CONFIG_SHARD_ID)) throw new CutpointError('NOT_SUPPORTED', `the cluster behind ${uri} has no shards`);
  return { kind: 'sharded', replicaSets: [cfg, ...list], lockId: clusterLockId('sharded', cfg.name, cfg.hosts) };
}

/** {@link topologyActivities.discoverTopology} without its metrics. */
async function discover(input: { target: MongoTarget }): Promise<Topology> {
  return withClient(input.target, {}, async (client) => {
    const hello = await client.db('admin').command({ hello: 1 });
    if (hello.msg === 'isdbgrid') return shardedTopology(client, input.target.uri);
    if (!hello.setName) {
      throw new CutpointError('NOT_SUPPORTED', `${input.target.uri} is a standalone mongod: backups need a replica set member (its oplog)`);
    }
    const config = (await client.db('admin').command({ replSetGetConfig: 1 })).config as Document;
    const name = String(hello.setName);
    const hosts = (config.members as Document[]).map((m) => String(m.host));
    return {
      kind: 'replicaSet',
      replicaSets: [{ name, configServer: config.configsvr === true, hosts, uri: input.target.uri }],
      lockId: clusterLockId('replicaSet', name, hosts),
    };
  });
}

/** A member's host:port as its agent names it (`cutpoint agent --mongod`, normalized). */
function agentName(host: string): string {
  try {
    return normalizeHostPort(host);
  } catch {
    return host;
  }
}

export const topologyActivities = {
  /** What the URI points at: a replica set (a cluster of one) or, through mongos, a sharded cluster. */
  async discoverTopology(input: { target: MongoTarget }): Promise<Topology> {
    const topology = await discover(input);
    // For the metrics: every member needs an agent (the CutpointAgentMissing alert, monitoring/cutpoint-rules.yml).
    for (const rs of topology.replicaSets) replicaSetMembers(rs.name, rs.hosts.map(agentName));
    return topology;
  },

  /** Picks the member to back up (node-selection rules), or fails naming why each member was excluded. */
  /**
   * The member to back up: `node` when asked for, else the chain's `pinned` member when it qualifies, else the best
   * one (common/node-selection.ts). `pinnedRefused` says why the pinned member could not be used.
   */
  async selectBackupNode(input: {
    target: MongoTarget;
    replicaSet: string;
    maxLagSecs: number;
    node?: string;
    pinned?: string;
  }): Promise<{ node: string; reason: string; pinnedRefused?: string }> {
    return withClient(input.target, {}, async (client) => {
      const admin = client.db('admin');
      const [status, { config }] = await Promise.all([admin.command({ replSetGetStatus: 1 }), admin.command({ replSetGetConfig: 1 })]);
      const members = memberViews(status, config as Document);
      let pinnedRefused: string | undefined;
      if (input.pinned && !input.node) {
        const pinned = selectNode(members, { maxLagSecs: input.maxLagSecs, node: input.pinned });
        if (pinned.node) {
          log.info('backup node chosen', { replicaSet: input.replicaSet, node: pinned.node, reason: 'pinned by the incremental chain' });
          return { node: pinned.node, reason: 'pinned by the incremental chain' };
        }
        pinnedRefused = pinned.reason;
      }
      const choice = selectNode(members, { maxLagSecs: input.maxLagSecs, node: input.node });
      if (!choice.node) throw new CutpointError('NO_ELIGIBLE_NODE', `replica set ${input.replicaSet}: no member can be backed up: ${choice.reason}`);
      log.info('backup node chosen', { replicaSet: input.replicaSet, node: choice.node, reason: choice.reason, ...(pinnedRefused ? { pinnedRefused } : {}) });
      return { node: choice.node, reason: choice.reason, ...(pinnedRefused ? { pinnedRefused } : {}) };
    });
  },
};

export type TopologyActivities = typeof topologyActivities;
