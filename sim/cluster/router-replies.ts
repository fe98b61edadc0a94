/**
 * What both simulated routers answer alike: the in-process one (mongos.ts, over the replica-set objects of a
 * SimCluster) and the router process (remote-router.ts, over the wire): buildInfo, the shape of `getShardMap`, the
 * balancer's state read from `config.settings`, the admin-only check, and the refusal of the backup stages.
 */
import type { Document } from 'mongodb';
import { Long } from 'mongodb';
import { CommandError, ErrorCodes } from '../wire/index.ts';

/** mongos 7.0's `buildInfo` (a PSMDB build: `psmdbVersion`). */
export const ROUTER_BUILD_INFO: Readonly<Document> = {
  version: '7.0.14',
  psmdbVersion: '7.0.14-8',
  versionArray: [7, 0, 14, 0],
  bits: 64,
  maxBsonObjectSize: 16 * 1024 * 1024,
};

/** Commands mongos runs on `admin` only (listShards, getShardMap, balancer*, listDatabases). */
export function adminOnly(db: string, name: string): void {
  if (db !== 'admin') throw new CommandError(ErrorCodes.Unauthorized, `${name} may only be run against the admin database.`);
}

/** A shard (or the config server, id `config`) and its connection string `<rs>/<host>,...`. */
export interface ShardConnection {
  readonly id: string;
  readonly conn: string;
}

function hostsOf(conn: string): string[] {
  return conn.slice(conn.indexOf('/') + 1).split(',').filter(Boolean);
}

/**
 * `getShardMap` as mongos's ShardRegistry reports it: `map` from each shard id (sorted) and then `config` to its
 * connection string, `hosts` from every member host to its shard id, `connStrings` from each connection string to its
 * shard id. A tool finds the config server replica set through mongos this way (PBM does, and so does cutpoint:
 * activities/orchestrator/topology.ts).
 */
export function shardMapReply(configConn: string, shards: readonly ShardConnection[]): Document {
  const all = [...[...shards].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)), { id: 'config', conn: configConn }];
  const map: Document = {};
  const hosts: Document = {};
  const connStrings: Document = {};
  for (const s of all) {
    map[s.id] = s.conn;
    for (const h of hostsOf(s.conn)) hosts[h] = s.id;
    connStrings[s.conn] = s.id;
  }
  return { map, hosts, connStrings };
}

/** `balancerStatus` from the config server's `config.settings` document `{_id: 'balancer'}` (absent: on). */
export function balancerStatusReply(settings: Document | undefined | null, rounds: number): Document {
  const off = settings?.stopped === true || settings?.mode === 'off';
  return { mode: off ? 'off' : 'full', inBalancerRound: false, numBalancerRounds: Long.fromNumber(rounds) };
}

/** `$backupCursor` and `$backupCursorExtend` exist on mongod only: a mongos does not know the stage (40324). */
export function refuseBackupStages(pipeline: readonly Document[]): void {
  const backup = pipeline.map((s) => Object.keys(s ?? {})[0]).find((n) => n === '$backupCursor' || n === '$backupCursorExtend');
  if (backup) throw new CommandError(40324, `Unrecognized pipeline stage name: '${backup}'`);
}

/**
 * The router process (remote-router.ts) runs no transactions: refused, never run as plain commands (the in-process
 * mongos runs them, router-transactions.ts).
 */
export function refuseTransactions(command: Document): void {
  if (command.autocommit !== undefined || command.startTransaction !== undefined) {
    throw new CommandError(ErrorCodes.CommandNotSupported, "the simulator's mongos process does not support transactions");
  }
}
