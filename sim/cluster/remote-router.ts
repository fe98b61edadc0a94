/**
 * The router of the mongos-compatible process (sim/bin/mongos, sim/mongos.ts): a mongos over a config server replica
 * set and shards that run in other processes (a restored cluster's sim/bin/mongod processes, or a SimCluster), reached
 * only over the wire with the real driver (routing-table.ts, router-connections.ts).
 *
 * Every command that needs routing reads the routing table afresh from the config server (the data sets are small),
 * so the router never serves stale metadata. Reads of a sharded collection fan out to the primary of every shard that
 * the collection's metadata says owns data, and are merged here: find's sort, skip, limit and projection, and the
 * aggregation pipeline (run by the simulator's own engine, sim/node/commands/aggregate.ts runPipeline, over the
 * documents each shard returns for the pipeline's first `$match`). Reads of an unsharded collection go to its
 * database's primary shard, reads of `config` and `admin` to the config server. The results are read whole and served
 * from the router's own cursors, in the batches the client asks for.
 *
 * A real mongos also filters out orphans (documents a shard holds for chunks it does not own) with its shards'
 * filtering metadata. This router does not: it returns everything every owning shard holds, so a restore that put a
 * document on two shards shows it twice. It never reads a shard that the metadata does not name.
 *
 * Writes are refused (CommandNotSupported, naming the simulator); client authentication is not checked.
 */
import type { Document, ReadPreferenceMode } from 'mongodb';
import { Long } from 'mongodb';
import type { Logger } from 'pino';
import { CursorManager } from '../node/cursors.ts';
import { matches } from '../node/matcher.ts';
import { runPipeline } from '../node/commands/aggregate.ts';
import { project, sortDocs } from '../node/commands/crud.ts';
import { routerHello } from '../node/commands/hello.ts';
import { CommandError, ErrorCodes, TopologyVersion, WireServer, firstKey, type CommandHandler, type ConnectionContext, type ExhaustReply } from '../wire/index.ts';
import { DEFAULT_FIND_HOST_TIMEOUT_MS, RouterConnections, parseReplicaSetConnection } from './router-connections.ts';
import { ROUTER_BUILD_INFO, adminOnly, balancerStatusReply, refuseBackupStages, refuseTransactions, shardMapReply } from './router-replies.ts';
import { readRoutingTable, type RoutingTable, type ShardEntry } from './routing-table.ts';

export interface RemoteRouterOptions {
  /** `--configdb`: the config server replica set, `<rs>/<host>,...`. */
  readonly configdb: string;
  /** `--bind_ip` (127.0.0.1). */
  readonly host?: string;
  /** `--port`; 0 picks a free one. */
  readonly port: number;
  /** `defaultFindReplicaSetHostTimeoutMS` (mongos's 20000). */
  readonly findHostTimeoutMs?: number;
  /** `cursorTimeoutMillis`: idle life of the router's cursors (mongos's 600000). */
  readonly cursorTimeoutMs?: number;
  /** `--keyFile`, kept for internal authentication (router-connections.ts routerClientOptions). */
  readonly keyFile?: string;
  /** The command line, for `getCmdLineOpts`. */
  readonly argv?: readonly string[];
  readonly log: Logger;
}

/** Where a read goes: the config server, one shard, or every shard owning a sharded collection. */
type Target = { kind: 'config' } | { kind: 'shard'; shard: ShardEntry } | { kind: 'sharded'; shards: ShardEntry[] };

/** Command fields a client's driver adds for itself; the router's own driver adds its own when forwarding. */
const GENERIC_FIELDS = new Set([
  '$db', 'lsid', 'txnNumber', 'autocommit', 'startTransaction', '$clusterTime', '$readPreference', '$audit', '$client',
  'apiVersion', 'apiStrict', 'apiDeprecationErrors', 'batchSize', 'singleBatch', 'cursor',
]);

const READ_MODES = new Set<string>(['primary', 'primaryPreferred', 'secondary', 'secondaryPreferred', 'nearest']);

/** The writes a mongos routes, which this router refuses. */
const WRITES = new Set(['insert', 'update', 'delete', 'findAndModify', 'findandmodify', 'create', 'drop', 'dropDatabase', 'createIndexes', 'dropIndexes', 'renameCollection']);

function num(v: unknown): number {
  return Long.isLong(v) ? v.toNumber() : Number(v ?? 0);
}

/** The command without the fields its client's driver added (and without the cursor options the router serves). */
function forwardable(command: Document): Document {
  return Object.fromEntries(Object.entries(command).filter(([k]) => !GENERIC_FIELDS.has(k)));
}

/** The client's read preference mode (primary when it sent none), used for the shards' members as mongos does. */
function readMode(command: Document): ReadPreferenceMode {
  const mode = (command.$readPreference as Document | undefined)?.mode;
  return typeof mode === 'string' && READ_MODES.has(mode) ? (mode as ReadPreferenceMode) : 'primary';
}

function collectionName(command: Document, name: string): string {
  const v = command[name];
  if (typeof v !== 'string' || v === '') throw new CommandError(ErrorCodes.InvalidNamespace, `collection name has invalid type ${typeof v}`);
  return v;
}

export class RemoteRouter implements CommandHandler {
  private server: WireServer | undefined;
  private readonly cursors = new CursorManager();
  private readonly topology = new TopologyVersion();
  private readonly connections: RouterConnections;
  private readonly startedAt = new Date();
  private reaper: NodeJS.Timeout | undefined;
  private balancerRounds = 0;
  readonly log: Logger;

  /** @throws CommandError BadValue when `configdb` is not a replica-set connection string */
  constructor(private readonly options: RemoteRouterOptions) {
    parseReplicaSetConnection(options.configdb);
    this.connections = new RouterConnections({ findHostTimeoutMs: options.findHostTimeoutMs ?? DEFAULT_FIND_HOST_TIMEOUT_MS, keyFile: options.keyFile });
    this.log = options.log.child({ mongos: options.port });
  }

  get port(): number {
    return this.server?.port ?? this.options.port;
  }

  get address(): string {
    return `${this.options.host ?? '127.0.0.1'}:${this.port}`;
  }

  async start(): Promise<void> {
    this.server = new WireServer({ handler: this, host: this.options.host, port: this.options.port, logger: this.log });
    await this.server.listen();
    const timeout = this.options.cursorTimeoutMs ?? 600_000;
    this.reaper = setInterval(() => this.cursors.reapIdle(timeout), Math.max(1000, Math.min(60_000, timeout)));
    this.reaper.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.reaper);
    const s = this.server;
    this.server = undefined;
    this.cursors.closeWhere('shutdown');
    await s?.close();
    await this.connections.close();
  }

  async handle(db: string, command: Document, ctx: ConnectionContext): Promise<Document | ExhaustReply> {
    const name = firstKey(command);
    refuseTransactions(command);
    switch (name) {
      case 'hello':
      case 'isMaster':
      case 'ismaster':
        return this.topology.hello(command, ctx, () => routerHello(name, command, ctx));
      case 'ping':
      case 'endSessions':
        return {};
      case 'buildInfo':
      case 'buildinfo':
        return { ...ROUTER_BUILD_INFO };
      case 'serverStatus':
        return this.serverStatus();
      case 'getCmdLineOpts':
        adminOnly(db, name);
        return this.cmdLineOpts();
      case 'listShards':
        adminOnly(db, name);
        return { shards: (await this.routing()).shardDocs };
      case 'getShardMap':
        adminOnly(db, name);
        return shardMapReply(this.options.configdb, (await this.routing()).shards);
      case 'balancerStatus':
        adminOnly(db, name);
        return balancerStatusReply(await this.balancerSettings(), this.balancerRounds);
      case 'balancerStart':
      case 'balancerStop':
        adminOnly(db, name);
        await this.setBalancer(name === 'balancerStart');
        return {};
      case 'find':
        return this.find(db, command);
      case 'getMore':
        return this.getMore(command);
      case 'killCursors':
        if (!Array.isArray(command.cursors)) throw new CommandError(ErrorCodes.FailedToParse, "BSON field 'killCursors.cursors' is missing but a required field");
        return this.cursors.kill(command.cursors as Long[]);
      case 'count':
        return this.count(db, command);
      case 'aggregate':
        return this.aggregate(db, command);
      case 'listCollections':
        return this.listCollections(db, command);
      case 'listDatabases':
        adminOnly(db, name);
        return this.listDatabases(command);
      default:
        if (WRITES.has(name)) {
          throw new CommandError(ErrorCodes.CommandNotSupported, `${name} is not supported by the simulator's router process (sim/bin/mongos routes reads only)`);
        }
        throw new CommandError(ErrorCodes.CommandNotFound, `no such command: '${name}'`);
    }
  }

  private serverStatus(): Document {
    return {
      host: this.address,
      version: ROUTER_BUILD_INFO.version,
      process: 'mongos',
      pid: Long.fromNumber(process.pid),
      uptime: (Date.now() - this.startedAt.getTime()) / 1000,
      localTime: new Date(),
      metrics: { cursor: { open: { total: Long.fromNumber(this.cursors.size) } } },
    };
  }

  private cmdLineOpts(): Document {
    const o = this.options;
    const bindIp = o.host ?? '127.0.0.1';
    return {
      argv: o.argv ?? ['mongos', '--configdb', o.configdb, '--port', String(this.port), '--bind_ip', bindIp],
      parsed: {
        net: { bindIp, port: this.port },
        sharding: { configDB: o.configdb },
        ...(o.keyFile !== undefined ? { security: { keyFile: o.keyFile } } : {}),
      },
    };
  }

  /** The routing table, read afresh from the config server (primaryPreferred, so a lone secondary still answers). */
  private routing(): Promise<RoutingTable> {
    return this.connections.run(this.options.configdb, 'primaryPreferred', (c) => readRoutingTable(c.db('config', { readPreference: 'primaryPreferred' })));
  }

  private balancerSettings(): Promise<Document | null> {
    return this.connections.run(this.options.configdb, 'primaryPreferred', (c) =>
      c.db('config', { readPreference: 'primaryPreferred' }).collection('settings').findOne({ _id: 'balancer' as never }),
    );
  }

  /** balancerStart/balancerStop: the state lives in the config server's `config.settings`, as sim/cluster/mongos.ts keeps it. */
  private async setBalancer(on: boolean): Promise<void> {
    await this.connections.run(this.options.configdb, 'primary', (c) =>
      c
        .db('config')
        .collection('settings')
        .updateOne({ _id: 'balancer' as never }, { $set: { mode: on ? 'full' : 'off', stopped: !on } }, { upsert: true }),
    );
    this.balancerRounds++;
  }

  private async targetOf(db: string, ns: string): Promise<Target> {
    if (db === 'config' || db === 'admin') return { kind: 'config' };
    const routing = await this.routing();
    return routing.isSharded(ns) ? { kind: 'sharded', shards: routing.owning(ns) } : { kind: 'shard', shard: routing.primaryShard(db) };
  }

  /** Runs a cursor command on one replica set and reads its cursor to the end (getMores in the command's session). */
  private drain(target: { kind: 'config' } | { kind: 'shard'; shard: ShardEntry }, db: string, command: Document, mode: ReadPreferenceMode): Promise<Document[]> {
    const conn = target.kind === 'config' ? this.options.configdb : target.shard.conn;
    return this.connections.run(conn, mode, (c) => c.db(db).runCursorCommand(command, { readPreference: mode }).toArray());
  }

  /** Runs a command that is not a cursor on one replica set. */
  private command(target: { kind: 'config' } | { kind: 'shard'; shard: ShardEntry }, db: string, command: Document, mode: ReadPreferenceMode): Promise<Document> {
    const conn = target.kind === 'config' ? this.options.configdb : target.shard.conn;
    return this.connections.run(conn, mode, (c) => c.db(db).command(command, { readPreference: mode }));
  }

  /** The documents of `coll` matching `filter` on every shard in `shards`, concatenated in shard order. */
  private async fanOut(shards: ShardEntry[], db: string, coll: string, filter: Document | undefined, command: Document, mode: ReadPreferenceMode): Promise<Document[]> {
    const find: Document = { find: coll, ...(filter !== undefined ? { filter } : {}), ...(command.readConcern !== undefined ? { readConcern: command.readConcern } : {}) };
    const perShard = await Promise.all(shards.map((shard) => this.drain({ kind: 'shard', shard }, db, find, mode)));
    return perShard.flat();
  }

  private serve(ns: string, docs: Document[], batchSize: unknown): Document {
    let i = 0;
    return this.cursors.open({ ns, source: () => docs[i++] }, batchSize);
  }

  private async find(db: string, command: Document): Promise<Document> {
    const coll = collectionName(command, 'find');
    const ns = `${db}.${coll}`;
    const mode = readMode(command);
    const target = await this.targetOf(db, ns);
    let docs: Document[];
    if (target.kind !== 'sharded') {
      docs = await this.drain(target, db, forwardable(command), mode);
    } else {
      docs = sortDocs(await this.fanOut(target.shards, db, coll, command.filter as Document | undefined, command, mode), command.sort as Document | undefined);
      const skip = num(command.skip);
      if (skip) docs = docs.slice(skip);
      const limit = Math.abs(num(command.limit));
      if (limit) docs = docs.slice(0, limit);
      docs = docs.map((d) => project(d, command.projection as Document | undefined));
    }
    const single = command.singleBatch === true || num(command.limit) < 0;
    return this.serve(ns, docs, single ? Number.MAX_SAFE_INTEGER : command.batchSize);
  }

  private getMore(command: Document): Document {
    const id = command.getMore;
    if (!Long.isLong(id)) throw new CommandError(ErrorCodes.TypeMismatch, "Field 'getMore' must be of type long");
    return this.cursors.getMore(this.cursors.get(id), command.batchSize);
  }

  /** count: the shards' counts summed; with skip/limit, each shard counts skip+limit and the sum is cut, as mongos does. */
  private async count(db: string, command: Document): Promise<Document> {
    const coll = collectionName(command, 'count');
    const mode = readMode(command);
    const target = await this.targetOf(db, `${db}.${coll}`);
    if (target.kind !== 'sharded') return { n: num((await this.command(target, db, forwardable(command), mode)).n) };
    const skip = num(command.skip);
    const limit = Math.abs(num(command.limit));
    const perShard: Document = {
      count: coll,
      ...(command.query !== undefined ? { query: command.query } : {}),
      ...(limit ? { limit: skip + limit } : {}),
      ...(command.readConcern !== undefined ? { readConcern: command.readConcern } : {}),
    };
    const replies = await Promise.all(target.shards.map((shard) => this.command({ kind: 'shard', shard }, db, perShard, mode)));
    const total = replies.reduce((sum, r) => sum + num(r.n), 0);
    const n = Math.max(0, total - skip);
    return { n: limit ? Math.min(n, limit) : n };
  }

  private async aggregate(db: string, command: Document): Promise<Document> {
    const pipeline = command.pipeline;
    if (!Array.isArray(pipeline)) throw new CommandError(ErrorCodes.TypeMismatch, "'pipeline' option must be specified as an array");
    refuseBackupStages(pipeline as Document[]);
    const first = (pipeline[0] ?? {}) as Document;
    if (typeof command.aggregate !== 'string') {
      throw new CommandError(ErrorCodes.InvalidNamespace, `{aggregate: 1} is not valid for '${Object.keys(first)[0] ?? ''}'; a collection name is required`);
    }
    const coll = command.aggregate;
    const ns = `${db}.${coll}`;
    const mode = readMode(command);
    const target = await this.targetOf(db, ns);
    const docs =
      target.kind !== 'sharded'
        ? await this.drain(target, db, { ...forwardable(command), cursor: {} }, mode)
        : runPipeline(await this.fanOut(target.shards, db, coll, first.$match as Document | undefined, command, mode), pipeline as Document[]);
    return this.serve(ns, docs, (command.cursor as Document | undefined)?.batchSize);
  }

  /**
   * listCollections: the database's primary shard answers (the config server for `config` and `admin`), plus any
   * sharded collection of the database that the primary shard does not hold, as its first owning shard lists it.
   */
  private async listCollections(db: string, command: Document): Promise<Document> {
    const mode = readMode(command);
    const forward = { ...forwardable(command), cursor: {} };
    let listed: Document[];
    if (db === 'config' || db === 'admin') {
      listed = await this.drain({ kind: 'config' }, db, forward, mode);
    } else {
      const routing = await this.routing();
      listed = await this.drain({ kind: 'shard', shard: routing.primaryShard(db) }, db, forward, mode);
      for (const name of routing.shardedIn(db)) {
        const owner = routing.owning(`${db}.${name}`)[0];
        if (!owner || listed.some((c) => c.name === name)) continue;
        const filter = { $and: [(command.filter as Document | undefined) ?? {}, { name }] };
        listed.push(...(await this.drain({ kind: 'shard', shard: owner }, db, { ...forward, filter }, mode)));
      }
    }
    return this.serve(`${db}.$cmd.listCollections`, listed, (command.cursor as Document | undefined)?.batchSize);
  }

  /**
   * listDatabases as mongos merges it: every shard's databases and the config server's `admin` and `config` (only
   * the config server's `admin`), sizes summed with each shard's own in `shards`, `local` left out, sorted by name.
   */
  private async listDatabases(command: Document): Promise<Document> {
    const routing = await this.routing();
    const sources = [...routing.shards, { id: 'config', conn: this.options.configdb }];
    const replies = await Promise.all(
      sources.map((s) => this.connections.run(s.conn, 'primaryPreferred', (c) => c.db('admin').command({ listDatabases: 1 }, { readPreference: 'primaryPreferred' }))),
    );
    const merged = new Map<string, { size: number; empty: boolean; shards: Document }>();
    for (const [i, reply] of replies.entries()) {
      const id = sources[i]!.id;
      for (const d of (reply.databases ?? []) as Document[]) {
        const name = String(d.name);
        if (name === 'admin' && id !== 'config') continue;
        if (id === 'config' && name !== 'admin' && name !== 'config') continue;
        const size = num(d.sizeOnDisk);
        const entry = merged.get(name) ?? { size: 0, empty: true, shards: {} };
        entry.size += size;
        entry.empty &&= d.empty === true;
        entry.shards[id] = size;
        merged.set(name, entry);
      }
    }
    const databases = [...merged.entries()]
      .filter(([name]) => name !== 'local')
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([name, e]) => ({ name, sizeOnDisk: e.size, empty: e.empty, shards: e.shards }))
      .filter((d) => matches(d, command.filter as Document | undefined));
    if (command.nameOnly === true) return { databases: databases.map((d) => ({ name: d.name })) };
    const totalSize = databases.reduce((sum, d) => sum + d.sizeOnDisk, 0);
    return { databases, totalSize, totalSizeMb: Math.floor(totalSize / (1024 * 1024)) };
  }
}
