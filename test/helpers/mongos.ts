/**
 * A sharded cluster checked as an operator checks it: a router (sim/bin/mongos) started over its config server, and
 * reads through it with the driver. For a restored cluster (whose members are sim/bin/mongod processes the restore
 * started), `startMongosProcess(`cfg/${cfgHost}`)` then `readThroughMongos(uri)`.
 */
import type { Document } from 'mongodb';
import { MongoClient } from 'mongodb';
import { expect } from 'vitest';

export { startMongosProcess, type MongosProcess, type MongosProcessOptions } from '../../sim/testkit.ts';

/** What a router shows of a cluster. */
export interface RoutedView {
  /** `listShards`: shard id → its connection string `<rs>/<host>,...`. */
  shards: Record<string, string>;
  /** Documents of every collection of every user database (not admin, config, local, nor `system.*`), by namespace. */
  counts: Record<string, number>;
  /** `bank.accounts` read through the router: id → balance (a document on two shards shows as a count above the size). */
  accounts: Map<string, number>;
  /** The sum of the balances, computed by the router (`$group` over every shard). */
  bankTotal: number;
}

/** Reads {@link RoutedView} through the router at `uri` (e.g. {@link MongosProcess.uri}). */
export async function readThroughMongos(uri: string): Promise<RoutedView> {
  const client = new MongoClient(uri, { serverSelectionTimeoutMS: 10_000 });
  try {
    const admin = client.db('admin');
    const { shards } = await admin.command({ listShards: 1 });
    const counts: Record<string, number> = {};
    const { databases } = await admin.admin().listDatabases({ nameOnly: true });
    for (const { name } of databases) {
      if (['admin', 'config', 'local'].includes(name)) continue;
      for (const c of await client.db(name).listCollections({}, { nameOnly: true }).toArray()) {
        if (!c.name.startsWith('system.')) counts[`${name}.${c.name}`] = await client.db(name).collection(c.name).countDocuments();
      }
    }
    const bank = client.db('bank').collection('accounts');
    const docs = await bank.find().toArray();
    const [sum] = await bank.aggregate<Document>([{ $group: { _id: null, total: { $sum: '$balance' } } }]).toArray();
    return {
      shards: Object.fromEntries((shards as Document[]).map((s) => [String(s._id), String(s.host)])),
      counts,
      accounts: new Map(docs.map((d) => [String(d._id), Number(d.balance)])),
      bankTotal: Number(sum?.total ?? 0),
    };
  } finally {
    await client.close();
  }
}

/**
 * Checks what the router at `uri` shows against what it should: the shard map, every account once with its balance
 * (so `bank.accounts` counts exactly those), and the bank total the router computes.
 */
export async function expectRoutedView(uri: string, want: { shards: Record<string, string>; accounts: Map<string, number>; bankTotal: number }): Promise<void> {
  const routed = await readThroughMongos(uri);
  expect(routed.shards).toEqual(want.shards);
  expect(Object.fromEntries(routed.accounts)).toEqual(Object.fromEntries(want.accounts));
  expect(routed.counts).toEqual({ 'bank.accounts': want.accounts.size });
  expect(routed.bankTotal).toBe(want.bankTotal);
}
