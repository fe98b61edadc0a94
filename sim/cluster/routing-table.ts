/**
 * The routing table of the router process (remote-router.ts), read from the config server over the wire: the shards
 * (`config.shards`, `host` = `<rs>/<host>,...`), the sharded collections and which shards own their data
 * (`config.collections`: the simulator's `shards` field, else the shards of `config.chunks`), and each database's
 * primary shard (`config.databases`), where its unsharded collections live.
 */
import type { Db, Document } from 'mongodb';
import { CommandError, ErrorCodes } from '../wire/index.ts';

/** A shard as `config.shards` names it. */
export interface ShardEntry {
  readonly id: string;
  /** Its connection string `<rs>/<host>,...`. */
  readonly conn: string;
}

export class RoutingTable {
  private readonly byId: ReadonlyMap<string, ShardEntry>;

  /**
   * @param shardDocs - `config.shards` as stored (what `listShards` answers)
   * @param owners - sharded namespace → ids of the shards that own its data
   * @param primaries - database → id of its primary shard
   */
  constructor(
    readonly shardDocs: readonly Document[],
    private readonly owners: ReadonlyMap<string, readonly string[]>,
    private readonly primaries: ReadonlyMap<string, string>,
  ) {
    this.byId = new Map(shardDocs.map((d) => [String(d._id), { id: String(d._id), conn: String(d.host) }]));
  }

  get shards(): ShardEntry[] {
    return [...this.byId.values()];
  }

  shard(id: string): ShardEntry {
    const s = this.byId.get(id);
    if (!s) throw new CommandError(ErrorCodes.ShardNotFound, `Shard ${id} not found`);
    return s;
  }

  isSharded(ns: string): boolean {
    return this.owners.has(ns);
  }

  /** Names of the sharded collections of `db`. */
  shardedIn(db: string): string[] {
    return [...this.owners.keys()].filter((ns) => ns.startsWith(`${db}.`)).map((ns) => ns.slice(db.length + 1));
  }

  /** The shards holding data of a sharded namespace. */
  owning(ns: string): ShardEntry[] {
    return (this.owners.get(ns) ?? []).map((id) => this.shard(id));
  }

  /**
   * The primary shard of `db`: `config.databases`' `primary`, else (a database the config server does not list, as
   * the in-process router creates them) the first shard by id, where sim/cluster/mongos.ts puts unsharded data.
   */
  primaryShard(db: string): ShardEntry {
    const id = this.primaries.get(db);
    if (id !== undefined) return this.shard(id);
    const first = [...this.byId.keys()].sort()[0];
    if (first === undefined) throw new CommandError(ErrorCodes.ShardNotFound, 'no shards in config.shards');
    return this.shard(first);
  }
}

/** Reads the routing table from the config server's `config` database (`config` opened with its read preference). */
export async function readRoutingTable(config: Db): Promise<RoutingTable> {
  const [shards, collections, databases] = await Promise.all([
    config.collection('shards').find().toArray(),
    config.collection('collections').find().toArray(),
    config.collection('databases').find().toArray(),
  ]);
  const owners = new Map<string, readonly string[]>();
  for (const c of collections) {
    if (c.dropped === true) continue;
    const ns = String(c._id);
    if (Array.isArray(c.shards)) {
      owners.set(ns, (c.shards as unknown[]).map(String));
      continue;
    }
    // A real config server keeps the owners in config.chunks (by collection uuid since 5.0, by ns before).
    const chunks = await config
      .collection('chunks')
      .find(c.uuid !== undefined ? { $or: [{ uuid: c.uuid }, { ns }] } : { ns })
      .toArray();
    const ids = [...new Set(chunks.map((k) => String(k.shard)))];
    owners.set(ns, ids.length > 0 ? ids : shards.map((s) => String(s._id)));
  }
  const primaries = new Map(databases.filter((d) => d.primary !== undefined).map((d) => [String(d._id), String(d.primary)] as const));
  return new RoutingTable(shards, owners, primaries);
}
