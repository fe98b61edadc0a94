/**
 * The simulated mongos: answers `hello` as a router (`msg: "isdbgrid"`), lists shards (`listShards`, `getShardMap`),
 * starts/stops the balancer (its state lives in the config server's `config.settings`, so it is backed up and restored
 * with it), routes document commands to shard primaries, and refuses `$backupCursor` exactly as a real mongos does (40324).
 *
 * Multi-document transactions go to the shards they touch and commit with two-phase commit when several shards wrote
 * (router-transactions.ts, two-phase.ts); the bank workload runs its transfers as such transactions in process.
 */
import { createHash } from 'node:crypto';
import type { Document, Timestamp } from 'mongodb';
import { Long, ObjectId } from 'mongodb';
import type { LogicalSessionId } from '../node/session-cache.ts';
import { RouterTransactions } from './router-transactions.ts';
import type { Logger } from 'pino';
import { CursorManager } from '../node/cursors.ts';
import { matches } from '../node/matcher.ts';
import type { SimNode } from '../node/types.ts';
import type { ReplicaSet } from '../node/replset.ts';
import { TopologyVersion } from '../wire/topology.ts';
import { applyWrites, ensureCollection } from '../node/writes.ts';
import { runPipeline } from '../node/commands/aggregate.ts';
import { routerHello } from '../node/commands/hello.ts';
import { checkCommandAuth, type AuthHost } from '../node/auth/index.ts';
import { EngineUserStore } from '../node/auth/users.ts';
import { helloAuthFields, runAuthCommand } from '../node/commands/auth.ts';
import { sessionCommands } from '../node/commands/sessions.ts';
import { CommandError, ErrorCodes, WireServer, firstKey, type ConnectionContext, type ExhaustReply } from '../wire/index.ts';
import { BANK_NS, type ClusterTopology } from './topology.ts';
import { ROUTER_BUILD_INFO, adminOnly, balancerStatusReply, refuseBackupStages, shardMapReply } from './router-replies.ts';

/** The shard index of a document `_id` for a sharded namespace (a stable hash, as `{_id: 'hashed'}`). */
export function shardIndexFor(id: unknown, shardCount: number): number {
  const h = createHash('sha1').update(JSON.stringify(id)).digest();
  return h.readUInt32BE(0) % shardCount;
}

export class Mongos {
  private server: WireServer | undefined;
  private readonly cursors = new CursorManager();
  private readonly topology = new TopologyVersion();
  private balancerRounds = 0;
  readonly log: Logger;
  private readonly transactions = new RouterTransactions({
    shardsFor: (ns, id) => this.shardsFor(ns, id),
    primaryOf: (rs) => this.primaryOf(rs),
    clusterTime: () => this.cluster.clock.current(),
  });

  constructor(
    private readonly cluster: ClusterTopology,
    private readonly port: number,
    log: Logger,
  ) {
    this.log = log.child({ mongos: port });
  }

  get address(): string {
    return `127.0.0.1:${this.server?.port ?? this.port}`;
  }

  async start(): Promise<void> {
    this.server = new WireServer({ handler: this, port: this.port, logger: this.log });
    await this.server.listen();
  }

  async stop(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    this.cursors.closeWhere('shutdown');
    await s?.close();
  }

  private primaryOf(rs: ReplicaSet): SimNode {
    const p = rs.primary();
    if (!p) throw new CommandError(ErrorCodes.FailedToSatisfyReadPreference, `Could not find host matching read preference { mode: "primary" } for set ${rs.name}`);
    return p;
  }

  private configPrimary(): SimNode {
    return this.primaryOf(this.cluster.configRS!);
  }

  /** Shards that hold documents of `ns` (all for the sharded bank collection, the primary shard otherwise). */
  private shardsFor(ns: string, id?: unknown): readonly ReplicaSet[] {
    const shards = this.cluster.dataShards;
    if (ns !== BANK_NS) return [shards[0]!];
    return id === undefined ? shards : [shards[shardIndexFor(id, shards.length)]!];
  }

  /** Shard replica set of a bank account. */
  shardOfAccount(id: unknown): ReplicaSet {
    return this.shardsFor(BANK_NS, id)[0]!;
  }

  /**
   * The bank's transfer (bank.ts): the documents replaced in one transaction of `session` over the shards that hold
   * them, committed as the router commits (two-phase commit across shards). Returns the timestamp it is visible at.
   */
  transact(session: LogicalSessionId, lsid: Document, txnNumber: Long, docs: Document[]): Timestamp {
    return this.transactions.runInProcess(session, lsid, txnNumber, BANK_NS, docs);
  }

  /**
   * The bank's idealised distributed transaction (`BankOptions.distributedTransactions: false`): the updates committed
   * at one cluster timestamp, one applyOps entry per shard touched, all with the same `ts`, so no cut falls between
   * its shards' entries. Both primaries are checked before anything is written, so a transfer is never half-applied.
   */
  commitAtOneTimestamp(docs: Document[]): Timestamp {
    const byShard = new Map<ReplicaSet, Document[]>();
    for (const d of docs) {
      const rs = this.shardOfAccount(d._id);
      byShard.set(rs, [...(byShard.get(rs) ?? []), d]);
    }
    const primaries = [...byShard.keys()].map((rs) => [rs, this.primaryOf(rs)] as const);
    const ts = this.cluster.clock.next();
    for (const [rs, p] of primaries) {
      rs.write(p, byShard.get(rs)!.map((o) => ({ op: 'u' as const, ns: BANK_NS, o, o2: { _id: o._id } })), ts);
    }
    return ts;
  }

  /** With `--auth`, clients authenticate against the config servers' users, as with a real mongos. */
  private authHost(): AuthHost {
    return { authEnabled: this.cluster.options.auth === true, users: new EngineUserStore(() => this.configPrimary()) };
  }

  /** killSessions / killAllSessions reach every member of every replica set, as mongos broadcasts them. */
  private broadcastSessionKill(db: string, command: Document, ctx: ConnectionContext, name: 'killSessions' | 'killAllSessions'): Document {
    for (const rs of this.cluster.replicaSets) {
      for (const node of rs.localNodes) if (node.up) void sessionCommands[name]!({ node, db, command, conn: ctx, name });
    }
    return {};
  }

  async handle(db: string, command: Document, ctx: ConnectionContext): Promise<Document | ExhaustReply> {
    const name = firstKey(command);
    const auth = this.authHost();
    checkCommandAuth(auth, name, db, command, ctx, { backupStages: false });
    const authReply = runAuthCommand(auth, name, db, command, ctx);
    if (authReply) return authReply;
    // A transaction's getMore and killCursors are on the router's own cursors.
    if (RouterTransactions.applies(command) && name !== 'getMore' && name !== 'killCursors') {
      const reply = await this.transactions.run(db, name, command, ctx);
      if (name !== 'find') return reply;
      const docs = reply.docs as Document[];
      let i = 0;
      return this.cursors.open({ ns: `${db}.${String(command.find)}`, source: () => docs[i++] }, command.batchSize);
    }
    switch (name) {
      case 'hello':
      case 'isMaster':
      case 'ismaster':
        return this.topology.hello(command, ctx, () => ({ ...routerHello(name, command, ctx), ...helloAuthFields(auth, command, ctx) }));
      case 'killSessions':
      case 'killAllSessions':
        return this.broadcastSessionKill(db, command, ctx, name);
      case 'ping':
      case 'endSessions':
        return {};
      case 'buildInfo':
      case 'buildinfo':
        return { ...ROUTER_BUILD_INFO };
      case 'serverStatus':
        return { host: this.address, version: '7.0.14', process: 'mongos', pid: Long.fromNumber(process.pid), localTime: new Date() };
      case 'listShards':
        adminOnly(db, name);
        return { shards: this.configPrimary().engine.scan('config.shards') };
      case 'getShardMap':
        adminOnly(db, name);
        return this.shardMap();
      case 'balancerStatus':
        adminOnly(db, name);
        return this.balancerStatus();
      case 'balancerStart':
      case 'balancerStop':
        adminOnly(db, name);
        this.setBalancer(name === 'balancerStart');
        return {};
      case 'find':
        return this.find(db, command);
      case 'getMore':
        return this.cursors.getMore(this.cursors.get(command.getMore as Long), command.batchSize);
      case 'killCursors':
        return this.cursors.kill(command.cursors as Long[]);
      case 'insert':
        return this.insert(db, command);
      case 'aggregate':
        return this.aggregate(db, command);
      default:
        throw new CommandError(ErrorCodes.CommandNotFound, `no such command: '${name}'`);
    }
  }

  /** `getShardMap` (router-replies.ts): each shard's and the config server's connection string `<rs>/<host>,...`. */
  private shardMap(): Document {
    const conn = (rs: { name: string; config: { members: Array<{ host: string }> } }) => `${rs.name}/${rs.config.members.map((m) => m.host).join(',')}`;
    return shardMapReply(conn(this.cluster.configRS!), this.cluster.shards.map((s) => ({ id: s.name, conn: conn(s) })));
  }

  private balancerStatus(): Document {
    return balancerStatusReply(this.configPrimary().engine.findById('config.settings', 'balancer'), this.balancerRounds);
  }

  private setBalancer(on: boolean): void {
    const cfg = this.configPrimary();
    ensureCollection(cfg, 'config.settings');
    applyWrites(cfg, [{ op: 'u', ns: 'config.settings', o: { _id: 'balancer', mode: on ? 'full' : 'off', stopped: !on }, o2: { _id: 'balancer' } }]);
    this.balancerRounds++;
  }

  private find(db: string, command: Document): Document {
    const ns = `${db}.${String(command.find)}`;
    const filter = command.filter as Document | undefined;
    const id = filter && filter._id !== undefined && (typeof filter._id !== 'object' || filter._id === null) ? filter._id : undefined;
    const sources = db === 'config' ? [this.configPrimary()] : this.shardsFor(ns, id).map((rs) => this.primaryOf(rs));
    let docs = sources.flatMap((n) => n.engine.scan(ns)).filter((d) => matches(d, filter));
    const limit = Math.abs(Number(command.limit ?? 0));
    if (limit) docs = docs.slice(0, limit);
    let i = 0;
    return this.cursors.open({ ns, source: () => docs[i++] }, command.singleBatch ? Number.MAX_SAFE_INTEGER : command.batchSize);
  }

  /** Merges the shards' documents, then runs the pipeline; `$backupCursor` exists only on mongod (40324 here). */
  private aggregate(db: string, command: Document): Document {
    const pipeline = (command.pipeline ?? []) as Document[];
    refuseBackupStages(pipeline);
    const ns = `${db}.${String(command.aggregate)}`;
    const sources = db === 'config' ? [this.configPrimary()] : this.shardsFor(ns).map((rs) => this.primaryOf(rs));
    const docs = runPipeline(sources.flatMap((n) => n.engine.scan(ns)), pipeline);
    let i = 0;
    return this.cursors.open({ ns, source: () => docs[i++] }, (command.cursor as Document | undefined)?.batchSize);
  }

  private insert(db: string, command: Document): Document {
    const ns = `${db}.${String(command.insert)}`;
    const docs = (command.documents ?? []) as Document[];
    for (const raw of docs) {
      const doc = raw._id === undefined ? { _id: new ObjectId(), ...raw } : raw;
      const target = db === 'config' ? this.configPrimary() : this.primaryOf(this.shardsFor(ns, doc._id)[0]!);
      ensureCollection(target, ns);
      if (target.engine.findById(ns, doc._id) !== undefined) {
        throw new CommandError(ErrorCodes.DuplicateKey, `E11000 duplicate key error collection: ${ns} index: _id_`);
      }
      applyWrites(target, [{ op: 'i', ns, o: doc }]);
    }
    return { n: docs.length };
  }
}
