/**
 * Transactions across shards through the in-process mongos (two-phase commit), prepared transactions on a shard
 * (prepare conflicts, abort), their oplog entries on secondaries and in recovery, and the oracle's all-or-nothing
 * check of cross-shard transfers (docs/simulator.md, "Point-in-time recovery").
 */
import type { Document, MongoServerError } from 'mongodb';
import { MongoClient, Timestamp } from 'mongodb';
import { afterEach, describe, expect, it } from 'vitest';
import { compareTs } from '../node/clock.ts';
import { direct, eventually, sleep, startTestCluster } from '../testkit.ts';
import type { BankWorkload } from './bank.ts';
import type { SimCluster } from './cluster.ts';
import { Oracle, recoverAt } from './oracle.ts';
import { oneCrossShardTransfer } from './one-transfer.ts';
import { BANK_NS } from './topology.ts';

let cluster: SimCluster | undefined;
let workload: BankWorkload | undefined;
const clients: MongoClient[] = [];
afterEach(async () => {
  workload?.stop();
  workload = undefined;
  for (const c of clients.splice(0)) await c.close();
  await cluster?.stop();
  cluster = undefined;
});

const txnEntries = (c: MongoClient) => c.db('local').collection('oplog.rs').find({ txnNumber: { $exists: true } }).sort({ $natural: 1 }).toArray();

/** Two accounts on different shards, created through mongos. */
async function twoShards(members: number): Promise<{ m: MongoClient; a: string; b: string; primaries: MongoClient[] }> {
  cluster = await startTestCluster({ shards: 2, members, noopMs: 0 });
  const router = cluster.mongos!;
  const ids = Array.from({ length: 20 }, (_, n) => `acct-${n}`);
  const a = ids.find((id) => router.shardOfAccount(id) === cluster!.shards[0])!;
  const b = ids.find((id) => router.shardOfAccount(id) === cluster!.shards[1])!;
  const m = new MongoClient(`mongodb://${router.address}`, { serverSelectionTimeoutMS: 5000 });
  clients.push(m);
  await m.db('bank').collection('accounts').insertMany([{ _id: a, balance: 100 } as Document, { _id: b, balance: 100 } as Document]);
  const primaries = cluster.shards.map((rs) => direct(rs.primary()!.address));
  clients.push(...primaries);
  return { m, a, b, primaries };
}

describe('transactions across shards through mongos', () => {
  it('commit with two-phase commit: prepare entries, one commitTimestamp (the largest prepareTimestamp), commit entries after it; secondaries apply them', async () => {
    const { m, a, b, primaries } = await twoShards(2);
    const accounts = m.db('bank').collection<{ _id: string; balance: number }>('accounts');
    const session = m.startSession();
    try {
      await session.withTransaction(async () => {
        await accounts.updateOne({ _id: a }, { $inc: { balance: -30 } }, { session });
        await accounts.updateOne({ _id: b }, { $inc: { balance: 30 } }, { session });
      });
    } finally {
      await session.endSession();
    }
    const [e0, e1] = await Promise.all(primaries.map(txnEntries));
    const prepares = [e0!, e1!].map((es) => es.find((e) => e.o.prepare === true)!);
    const commits = [e0!, e1!].map((es) => es.find((e) => e.o.commitTransaction === 1)!);
    for (const [i, es] of [e0!, e1!].entries()) {
      expect(es.map((e) => Object.keys(e.o as Document)[0])).toEqual(['applyOps', 'commitTransaction']);
      expect(prepares[i]!.o.applyOps).toHaveLength(1);
      expect(commits[i]!.prevOpTime.ts).toEqual(prepares[i]!.ts);
      expect(compareTs(commits[i]!.ts as Timestamp, commits[i]!.o.commitTimestamp as Timestamp)).toBeGreaterThan(0);
    }
    const commitTs = prepares.map((p) => p.ts as Timestamp).reduce((x, y) => (compareTs(x, y) >= 0 ? x : y));
    expect(commits[0]!.o.commitTimestamp).toEqual(commitTs);
    expect(commits[1]!.o.commitTimestamp).toEqual(commitTs);
    // Visible on both shards at commitTimestamp, not just before it.
    const before = new Timestamp({ t: commitTs.high, i: commitTs.low - 1 });
    const at = async (c: MongoClient, id: string, ts: Timestamp) =>
      ((await c.db('bank').command({ find: 'accounts', filter: { _id: id }, readConcern: { level: 'snapshot', atClusterTime: ts } })).cursor.firstBatch as Document[])[0]!.balance as number;
    expect([await at(primaries[0]!, a, commitTs), await at(primaries[1]!, b, commitTs)]).toEqual([70, 130]);
    expect([await at(primaries[0]!, a, before), await at(primaries[1]!, b, before)]).toEqual([100, 100]);
    // The secondaries apply the prepare and commit entries: the same values.
    for (const [i, rs] of cluster!.shards.entries()) {
      const secondary = rs.localNodes.find((n) => n !== rs.primary())!;
      const id = i === 0 ? a : b;
      await eventually(() => secondary.engine.findById(BANK_NS, id)?.balance === (i === 0 ? 70 : 130), 10_000, 'the secondary applied the commit');
    }
  });

  it('a transaction that writes on one shard commits as on a replica set (one applyOps entry); an aborted one writes nothing', async () => {
    const { m, a, b, primaries } = await twoShards(1);
    const accounts = m.db('bank').collection<{ _id: string; balance: number }>('accounts');
    const session = m.startSession();
    try {
      await session.withTransaction(async () => {
        expect((await accounts.findOne({ _id: b }, { session }))?.balance).toBe(100);
        await accounts.updateOne({ _id: a }, { $inc: { balance: 5 } }, { session });
      });
      session.startTransaction();
      await accounts.updateOne({ _id: a }, { $inc: { balance: 1 } }, { session });
      await accounts.updateOne({ _id: b }, { $inc: { balance: -1 } }, { session });
      await session.abortTransaction();
    } finally {
      await session.endSession();
    }
    const [e0, e1] = await Promise.all(primaries.map(txnEntries));
    expect(e0!.map((e) => [Object.keys(e.o as Document)[0], e.o.prepare])).toEqual([['applyOps', undefined]]);
    expect(e1).toEqual([]);
    expect((await accounts.find({}).sort({ _id: 1 }).toArray()).map((d) => d.balance).sort()).toEqual([100, 105]);
  });
});

describe('a prepared transaction on a shard', () => {
  it('makes reads at or after its prepareTimestamp wait (local reads do not), commits only at or after it, and an abort writes an abort entry', async () => {
    const { a } = await twoShards(1);
    const p = direct(cluster!.shards[0]!.primary()!.address);
    clients.push(p);
    // Each transaction in its own session; the driver adds txnNumber, autocommit and startTransaction, and the test
    // sends prepareTransaction and commitTransaction with commitTimestamp by hand, as a router sends them.
    const sessions = [p.startSession(), p.startSession()];
    const run = (n: number, d: 'bank' | 'admin', command: Document) => p.db(d).command(command, { session: sessions[n]!, readPreference: 'primary' });
    const db = p.db('bank');
    sessions[0]!.startTransaction();
    await run(0, 'bank', { update: 'accounts', updates: [{ q: { _id: a }, u: { $set: { balance: 1 } } }] });
    const { prepareTimestamp } = (await run(0, 'admin', { prepareTransaction: 1 })) as { prepareTimestamp: Timestamp };
    const read = (rc: Document, maxTimeMS?: number) =>
      db.command({ find: 'accounts', filter: { _id: a }, readConcern: rc, ...(maxTimeMS ? { maxTimeMS } : {}) }).then((r) => (r.cursor.firstBatch as Document[])[0]!.balance as number);
    // A local read ignores the prepare conflict and sees the value before the transaction.
    expect(await read({ level: 'local' })).toBe(100);
    // A snapshot read at the prepareTimestamp waits: bounded by maxTimeMS, else until the commit.
    expect(((await read({ level: 'snapshot', atClusterTime: prepareTimestamp }, 100).catch((e: unknown) => e)) as MongoServerError).code).toBe(50);
    // So do count and aggregate; a majority read does once the prepare entry is majority committed (one member here).
    const bounded = { maxTimeMS: 100 };
    expect(((await db.command({ count: 'accounts', query: { _id: a }, readConcern: { level: 'majority' }, ...bounded }).catch((e: unknown) => e)) as MongoServerError).code).toBe(50);
    expect(((await db.command({ aggregate: 'accounts', pipeline: [], cursor: {}, readConcern: { level: 'snapshot', atClusterTime: prepareTimestamp }, ...bounded }).catch((e: unknown) => e)) as MongoServerError).code).toBe(50);
    expect((await db.command({ count: 'accounts', query: { _id: a } })).n).toBe(1);
    let settled = false;
    const waiting = read({ level: 'snapshot', atClusterTime: prepareTimestamp }).finally(() => (settled = true));
    await sleep(100);
    expect(settled).toBe(false);
    // Other statements are refused; commit needs a commitTimestamp at or after the prepareTimestamp.
    const refused = (await run(0, 'bank', { update: 'accounts', updates: [{ q: { _id: a }, u: { $set: { balance: 3 } } }] }).catch((e: unknown) => e)) as MongoServerError;
    expect(refused.code).toBe(267);
    expect(((await run(0, 'admin', { commitTransaction: 1 }).catch((e: unknown) => e)) as MongoServerError).code).toBe(72);
    const early = new Timestamp({ t: prepareTimestamp.high, i: prepareTimestamp.low - 1 });
    expect(((await run(0, 'admin', { commitTransaction: 1, commitTimestamp: early }).catch((e: unknown) => e)) as MongoServerError).message).toBe(
      "'commitTimestamp' must be greater than or equal to 'prepareTimestamp'",
    );
    await run(0, 'admin', { commitTransaction: 1, commitTimestamp: prepareTimestamp });
    expect(await waiting).toBe(1);

    // An unprepared transaction refuses a commitTimestamp; a prepared one that aborts leaves an abort entry.
    sessions[1]!.startTransaction();
    await run(1, 'bank', { update: 'accounts', updates: [{ q: { _id: a }, u: { $set: { balance: 2 } } }] });
    expect(((await run(1, 'admin', { commitTransaction: 1, commitTimestamp: prepareTimestamp }).catch((e: unknown) => e)) as MongoServerError).message).toBe(
      'commitTransaction cannot provide commitTimestamp to unprepared transaction.',
    );
    const second = (await run(1, 'admin', { prepareTransaction: 1 })) as { prepareTimestamp: Timestamp };
    await run(1, 'admin', { abortTransaction: 1 });
    const entries = await txnEntries(p);
    expect(entries.map((e) => Object.keys(e.o as Document)[0])).toEqual(['applyOps', 'commitTransaction', 'applyOps', 'abortTransaction']);
    expect(entries[3]!.prevOpTime.ts).toEqual(second.prepareTimestamp);
    expect(await read({ level: 'snapshot', atClusterTime: entries[3]!.ts as Timestamp })).toBe(1);
    for (const x of sessions) await x.endSession();
  });
});

describe('cross-shard transfers of the bank in recovery, and the oracle', () => {
  it('a cut between the two commit entries restores one side only, and the oracle reports the half-applied transfer; a cut past both restores it whole', async () => {
    cluster = await startTestCluster({ shards: 2, members: 1, checkpointMs: 0 });
    // One transfer after a stable checkpoint on each shard, as a backup's recovery starts from; each shard's commit
    // entry of it, oldest first.
    const one = await oneCrossShardTransfer(cluster);
    workload = one.workload;
    const { transfer, commits } = one;
    expect(commits.map((c) => c.ts)).not.toContainEqual(transfer.ts);
    expect(compareTs(commits[0]!.ts, transfer.ts)).toBeGreaterThan(0);
    for (const rs of cluster.shards) rs.write(rs.primary()!, [{ op: 'n', ns: '', o: { msg: 'periodic noop' } }]);
    const dbpaths = cluster.shards.map((rs) => ({ name: rs.name, dbpath: rs.primary()!.dbpath }));
    for (const rs of cluster.shards) await rs.localNodes[0]!.crash();
    const oracle = new Oracle(workload.history);
    const restoreAt = (ts: Timestamp) => oracle.verify(dbpaths.map((d) => ({ name: d.name, accounts: recoverAt(d.dbpath, ts) })), ts);

    const past = commits[1]!.ts;
    expect(restoreAt(past).mismatches).toEqual([]);
    // The negative control: at the first commit entry, its shard has committed and the other has only prepared.
    const half = restoreAt(commits[0]!.ts);
    expect(half.mismatches.filter((m) => m.startsWith('half-applied'))).toHaveLength(1);
    expect(half.mismatches.join('\n')).toMatch(new RegExp(`half-applied cross-shard transfer of ${transfer.amount} committed at ${transfer.ts.toString()}: applied on \\S+@${commits[0]!.rs.name}, not on \\S+@${commits[1]!.rs.name}`));
    // At the commitTimestamp itself neither commit entry is in the oplog: nothing of the transfer, on either side.
    const none = restoreAt(transfer.ts);
    expect(none.ok).toBe(false);
    expect(none.mismatches.filter((m) => m.startsWith('half-applied'))).toEqual([]);
    expect(none.mismatches).toHaveLength(2);
  });
});
