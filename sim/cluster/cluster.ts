/**
 * A simulated cluster in one process: a config-server replica set, N shard replica sets of M members and a mongos
 * (or, `replsetOnly`, one replica set). Every node has its own port and dbpath; one {@link ClusterClock} serves
 * them all, as `$clusterTime` gossip does in a real cluster.
 */
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Document } from 'mongodb';
import { ObjectId, Timestamp, UUID } from 'mongodb';
import type { Logger } from 'pino';
import { ClusterClock } from '../node/clock.ts';
import { MongodNode } from '../node/node.ts';
import { ReplicaSet } from '../node/replset.ts';
import { initialConfig } from '../node/replset-config.ts';
import type { SimNode } from '../node/types.ts';
import { ensureCollection, applyWrites } from '../node/writes.ts';
import { Mongos } from './mongos.ts';
import { BANK_NS, CONFIG_SHARD_ID, type ClusterTopology } from './topology.ts';
import { createLauncherUsers, type LauncherUsers } from './users.ts';
import { freePort } from '../../lib/ports.ts';

export interface ClusterOptions {
  shards?: number;
  members?: number;
  /** First port; 0 or absent = free ports chosen by the kernel. */
  basePort?: number;
  /** Parent directory of the dbpaths; a temp dir when absent. */
  dir?: string;
  lagMs?: number;
  checkpointMs?: number;
  cursorTimeoutMs?: number;
  /** Idle life of a logical session (`--session-timeout-ms`); mongod's 30 min when absent. */
  sessionTimeoutMs?: number;
  /**
   * Logical session cache refresh interval (reaps ended and expired sessions' cursors). Default: a quarter of
   * `sessionTimeoutMs` (100 ms to 5 min) when that is given, else mongod's 5 min.
   */
  sessionRefreshMs?: number;
  /** `--auth`: every node and the mongos require SCRAM authentication; the launcher's users are created (users.ts). */
  auth?: boolean;
  noopMs?: number;
  replsetOnly?: boolean;
  /**
   * `--config-shard`: the config server replica set is also a shard (MongoDB 8.0): `listShards` lists it as
   * `config`, and the bank collection has accounts on it too.
   */
  configShard?: boolean;
  /** Journal file size of every node (small in tests). */
  logFileSize?: number;
  /** Block size of every new dbpath (default 4096; benchmarks with GiBs of data use larger blocks). */
  blockSize?: number;
  flavor?: 'psmdb' | 'community';
  /** `--keyFile` of every node (internal authentication); implies `auth`. */
  keyFile?: string;
  /** `--directoryperdb` of every node. */
  directoryPerDB?: boolean;
  /** `--wiredTigerDirectoryForIndexes` of every node. */
  directoryForIndexes?: boolean;
  /** `--enableEncryption --encryptionKeyFile <this>` on every node (PSMDB's encryption at rest). */
  encryptionKeyFile?: string;
  /** `--oplogSize` of every node, in MB (a fraction allowed): the capped oplog truncates its oldest entries past it. */
  oplogSizeMB?: number;
  log: Logger;
}

/** A replica set as the launcher reports it (docs/interfaces.md section 1). */
export interface ReplicaSetInfo {
  name: string;
  uri: string;
  hosts: string[];
  members: Array<{ host: string; dbpath: string }>;
}

export class SimCluster implements ClusterTopology {
  readonly clock = new ClusterClock();
  readonly clusterId = new ObjectId();
  configRS: ReplicaSet | undefined;
  readonly shards: ReplicaSet[] = [];
  mongos: Mongos | undefined;
  /** The users created with `auth` (docs/interfaces.md section 1), with their passwords. */
  users: LauncherUsers | undefined;
  readonly dir: string;
  private readonly dbpaths = new Map<string, string>();

  private constructor(readonly options: ClusterOptions) {
    this.dir = options.dir ?? mkdtempSync(join(tmpdir(), 'cutpoint-sim-'));
    mkdirSync(this.dir, { recursive: true });
  }

  /** Starts every node, initiates the replica sets, registers the shards and (sharded) the bank collection. */
  static async start(options: ClusterOptions): Promise<SimCluster> {
    // A key file implies authorization, as in mongod.
    const c = new SimCluster(options.keyFile !== undefined ? { ...options, auth: true } : options);
    try {
      await c.boot();
    } catch (e) {
      await c.stop();
      throw e;
    }
    return c;
  }

  /** Every replica set, the config server's first. */
  get replicaSets(): ReplicaSet[] {
    return [...(this.configRS ? [this.configRS] : []), ...this.shards];
  }

  /** The replica sets holding sharded data: the shards, then the config server when it is a config shard. */
  get dataShards(): ReplicaSet[] {
    return this.options.configShard && this.configRS ? [...this.shards, this.configRS] : this.shards;
  }

  /** The shard id `listShards` gives a data-holding replica set. */
  shardIdOf(rs: ReplicaSet): string {
    return rs === this.configRS ? CONFIG_SHARD_ID : rs.name;
  }

  private async boot(): Promise<void> {
    const o = this.options;
    const members = o.members ?? 3;
    const nShards = o.replsetOnly ? 1 : (o.shards ?? 2);
    let next = o.basePort ?? 0;
    const port = async () => (next ? next++ : freePort());
    const mongosPort = o.replsetOnly ? 0 : await port();
    const plan: Array<{ name: string; role?: 'configsvr' | 'shardsvr'; ports: number[] }> = [];
    if (!o.replsetOnly) plan.push({ name: 'cfg', role: 'configsvr', ports: [] });
    for (let s = 0; s < nShards; s++) plan.push({ name: o.replsetOnly ? 'rs0' : `shard${s}`, role: o.replsetOnly ? undefined : 'shardsvr', ports: [] });
    for (const p of plan) for (let m = 0; m < members; m++) p.ports.push(await port());

    const checkpointMs = o.checkpointMs ?? 60_000;
    const sessionRefreshMs =
      o.sessionRefreshMs ?? (o.sessionTimeoutMs !== undefined ? Math.min(300_000, Math.max(100, Math.round(o.sessionTimeoutMs / 4))) : undefined);
    for (const [r, p] of plan.entries()) {
      const config = initialConfig(p.name, p.ports.map((pt, i) => ({ _id: i, host: `127.0.0.1:${pt}` })), p.role === 'configsvr');
      const rs = new ReplicaSet(p.name, config, o.log.child({ rs: p.name }), this.clock);
      for (const [m, pt] of p.ports.entries()) {
        const dbpath = join(this.dir, `${p.name}-${m}`);
        mkdirSync(dbpath, { recursive: true });
        this.dbpaths.set(`127.0.0.1:${pt}`, dbpath);
        const node = new MongodNode({
          port: pt,
          dbpath,
          replSet: p.name,
          clusterRole: p.role,
          flavor: o.flavor,
          auth: o.auth,
          ...(o.keyFile !== undefined ? { keyFile: o.keyFile } : {}),
          ...(o.directoryPerDB ? { directoryPerDB: true } : {}),
          ...(o.directoryForIndexes ? { directoryForIndexes: true } : {}),
          ...(o.encryptionKeyFile !== undefined ? { enableEncryption: true, encryptionKeyFile: o.encryptionKeyFile } : {}),
          ...(o.oplogSizeMB !== undefined ? { oplogSizeMB: o.oplogSizeMB } : {}),
          log: o.log,
          setParameters: {
            simCheckpointIntervalMs: checkpointMs,
            // A simulated crash kills a process, never the machine: page cache is durable enough, and fsync is slow.
            simFsync: false,
            // Staggered: replica sets (and members) never checkpoint in step.
            simCheckpointOffsetMs: checkpointMs > 0 ? Math.floor(((r * members + m) * 0.37 * checkpointMs) % checkpointMs) : 0,
            ...(m > 0 && o.lagMs ? { simReplicationLagMs: o.lagMs } : {}),
            ...(o.noopMs !== undefined ? { simNoopIntervalMs: o.noopMs } : {}),
            ...(o.cursorTimeoutMs !== undefined ? { cursorTimeoutMillis: o.cursorTimeoutMs } : {}),
            ...(o.sessionTimeoutMs !== undefined ? { simLogicalSessionTimeoutMs: o.sessionTimeoutMs } : {}),
            ...(sessionRefreshMs !== undefined ? { logicalSessionRefreshMillis: sessionRefreshMs } : {}),
            ...(o.logFileSize !== undefined ? { simLogFileSize: o.logFileSize } : {}),
            ...(o.blockSize !== undefined ? { simBlockSize: o.blockSize } : {}),
          },
        });
        await node.start();
        rs.attach(node);
      }
      rs.start();
      if (p.role === 'configsvr') this.configRS = rs;
      else this.shards.push(rs);
    }
    if (o.auth) this.users = createLauncherUsers(this.replicaSets);
    if (!o.replsetOnly) {
      this.initShardingMetadata();
      this.mongos = new Mongos(this, mongosPort, o.log);
      await this.mongos.start();
    }
  }

  /** What a config server and shards hold after `addShard` and `shardCollection` (simplified, but real data). */
  private initShardingMetadata(): void {
    const cfg = this.configRS!.primary()!;
    const shardHost = (rs: ReplicaSet) => `${rs.name}/${rs.config.members.map((m) => m.host).join(',')}`;
    const w = (ns: string, doc: Document) => {
      ensureCollection(cfg, ns);
      applyWrites(cfg, [{ op: 'i', ns, o: doc }]);
    };
    w('config.version', { _id: 1, clusterId: this.clusterId });
    // A config shard is listed under the id `config` with the config server's connection string (MongoDB 8.0).
    for (const s of this.dataShards) w('config.shards', { _id: this.shardIdOf(s), host: shardHost(s), state: 1 });
    w('config.settings', { _id: 'balancer', mode: 'full', stopped: false });
    // bank.accounts is sharded on _id; the sim routes by a hash of _id over the shards, in shard order.
    w('config.collections', { _id: BANK_NS, key: { _id: 'hashed' }, unique: false, shards: this.dataShards.map((s) => this.shardIdOf(s)) });
    // The bank database's primary shard (where its unsharded collections live): the first, as mongos.ts routes them.
    const dbVersion = { uuid: new UUID(), lastMod: 1 };
    w('config.databases', { _id: 'bank', primary: this.shardIdOf(this.dataShards[0]!), partitioned: true, version: dbVersion });
    const cfgConn = shardHost(this.configRS!);
    const epoch = new ObjectId();
    for (const [i, s] of this.dataShards.entries()) {
      const p = s.primary()!;
      const put = (ns: string, docs: Document[]) => {
        ensureCollection(p, ns);
        applyWrites(
          p,
          docs.map((o) => ({ op: 'i' as const, ns, o })),
        );
      };
      put('admin.system.version', [{ _id: 'shardIdentity', shardName: this.shardIdOf(s), clusterId: this.clusterId, configsvrConnectionString: cfgConn }]);
      // The shard's routing cache, as a shard's catalog cache loader persists it, and (on the first shard, which owns
      // its one chunk) the logical sessions collection: what a restore must empty but keep (their collection UUIDs
      // are what the shard's filtering metadata knows them by).
      put('config.cache.databases', [{ _id: 'bank', primary: this.shardIdOf(this.dataShards[0]!), partitioned: true, version: dbVersion }]);
      put('config.cache.collections', [{ _id: BANK_NS, epoch, key: { _id: 'hashed' }, unique: false, refreshing: false }]);
      put(
        `config.cache.chunks.${BANK_NS}`,
        this.dataShards.map((owner, n) => ({ _id: { _id: n }, min: { _id: n }, max: { _id: n + 1 }, shard: this.shardIdOf(owner), lastmod: new Timestamp({ t: 1, i: n }) })),
      );
      if (i === 0) put('config.system.sessions', [{ _id: { id: new UUID() }, lastUse: new Date() }]);
    }
  }

  /** The member with this host:port, with its replica set. */
  find(host: string): { rs: ReplicaSet; node: SimNode } {
    for (const rs of this.replicaSets) for (const node of rs.localNodes) if (node.address === host) return { rs, node };
    throw new Error(`no member ${host} in this cluster`);
  }

  /** Crashes a member: memory gone, no checkpoint, port closed (kill -9). */
  async crashMember(host: string): Promise<void> {
    await this.find(host).node.crash();
  }

  /** Restarts a crashed or stopped member from its dbpath (recovery) and lets it catch up. */
  async restartMember(host: string): Promise<SimNode> {
    const { rs, node } = this.find(host);
    const fresh = new MongodNode(node.options);
    await fresh.start();
    rs.replaceNode(node, fresh);
    return fresh;
  }

  /** The launcher's JSON line (docs/interfaces.md section 1); `users` only with `auth`. */
  describe(): Document {
    const info = (rs: ReplicaSet): ReplicaSetInfo => {
      const hosts = rs.config.members.map((m) => m.host);
      return {
        name: rs.name,
        uri: `mongodb://${hosts.join(',')}/?replicaSet=${rs.name}`,
        hosts,
        members: hosts.map((host) => ({ host, dbpath: this.dbpaths.get(host)! })),
      };
    };
    return {
      mongos: this.mongos ? `mongodb://${this.mongos.address}` : null,
      configRS: this.configRS ? info(this.configRS) : null,
      shards: this.shards.map(info),
      ...(this.users ? { users: this.users } : {}),
    };
  }

  /** Clean shutdown of every node (final checkpoints), mongos first. */
  async stop(): Promise<void> {
    await this.mongos?.stop();
    for (const rs of this.replicaSets) await rs.shutdown();
  }
}
