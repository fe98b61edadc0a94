/**
 * The pieces a point-in-time restore puts together, end to end through the driver: tail a replica set's oplog from its
 * start (tailable awaitData, small batches, maxTimeMS) while it takes writes and transactions, and replay every entry
 * with `applyOps` onto a standalone, which then holds exactly the replica set's data.
 */
import type { Document, Long, MongoClient } from 'mongodb';
import { Timestamp } from 'mongodb';
import { afterEach, describe, expect, it } from 'vitest';
import type { SimCluster } from '../cluster/cluster.ts';
import { direct, startStandalone, startTestCluster } from '../testkit.ts';

let cluster: SimCluster | undefined;
let target: Awaited<ReturnType<typeof startStandalone>> | undefined;
const clients: MongoClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close();
  await cluster?.stop();
  cluster = undefined;
  await target?.stop();
  target = undefined;
});

type Account = { _id: number; v: number };

describe('a point-in-time replay', () => {
  it('tails the oplog, transactions included, and replays it with applyOps to the same data', async () => {
    cluster = await startTestCluster({ replsetOnly: true, members: 1, noopMs: 0 });
    const src = direct(cluster.shards[0]!.config.members[0]!.host);
    target = await startStandalone();
    const dst = target.client;
    clients.push(src);

    const t = src.db('app').collection<Account>('t');
    await t.insertMany([{ _id: 1, v: 100 }, { _id: 2, v: 100 }, { _id: 3, v: 100 }]);
    const local = src.db('local');
    const opened = await local.command({ find: 'oplog.rs', filter: { ts: { $gte: new Timestamp({ t: 0, i: 0 }) } }, tailable: true, awaitData: true, batchSize: 2 });
    const id = opened.cursor.id as Long;
    const entries: Document[] = [...(opened.cursor.firstBatch as Document[])];

    const session = src.startSession();
    try {
      session.startTransaction({ readPreference: 'primary' });
      await t.updateOne({ _id: 1 }, { $inc: { v: -40 } }, { session });
      await t.updateOne({ _id: 2 }, { $inc: { v: 40 } }, { session });
      await t.insertOne({ _id: 4, v: 0 }, { session });
      await session.commitTransaction();
    } finally {
      await session.endSession();
    }
    await t.deleteOne({ _id: 3 });
    await t.updateOne({ _id: 4 }, { $set: { v: 1 } });

    // Tail until an empty batch at the deadline: everything written so far has been read.
    for (;;) {
      const more = await local.command({ getMore: id, collection: 'oplog.rs', batchSize: 2, maxTimeMS: 200 });
      const batch = more.cursor.nextBatch as Document[];
      if (batch.length === 0) break;
      entries.push(...batch);
    }
    await local.command({ killCursors: 'oplog.rs', cursors: [id] });
    expect(entries.filter((e) => e.txnNumber !== undefined)).toHaveLength(1);

    for (const e of entries) {
      const r = await dst.db('admin').command({ applyOps: [e] });
      expect(r.ok).toBe(1);
    }
    const expected = await t.find({}).sort({ _id: 1 }).toArray();
    expect(expected).toEqual([{ _id: 1, v: 60 }, { _id: 2, v: 140 }, { _id: 4, v: 1 }]);
    expect(await dst.db('app').collection('t').find({}).sort({ _id: 1 }).toArray()).toEqual(expected);
  });
});
