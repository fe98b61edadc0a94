/**
 * Multi-document transactions on a replica set through the driver: snapshot reads with the transaction's own writes,
 * one `applyOps` oplog entry with `lsid`, `txnNumber` and `prevOpTime` at commit (applied by secondaries), nothing at
 * abort, write conflicts as transient errors, and mongod's refusals.
 */
import type { Document , MongoClient } from 'mongodb';
import type { Binary, MongoServerError } from 'mongodb';
import { Long } from 'mongodb';
import { afterEach, describe, expect, it } from 'vitest';
import type { SimCluster } from '../cluster/cluster.ts';
import { direct, eventually, startTestCluster } from '../testkit.ts';

let cluster: SimCluster | undefined;
const clients: MongoClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close();
  await cluster?.stop();
  cluster = undefined;
});

type Account = { _id: number; v: number };

async function replicaSet(): Promise<{ p: MongoClient; s: MongoClient }> {
  cluster = await startTestCluster({ replsetOnly: true, members: 2, noopMs: 0 });
  const [h0, h1] = cluster.shards[0]!.config.members.map((m) => m.host);
  const p = direct(h0!);
  const s = direct(h1!);
  clients.push(p, s);
  return { p, s };
}

const txnEntries = (c: MongoClient) => c.db('local').collection('oplog.rs').find({ txnNumber: { $exists: true } }).toArray();

describe('transactions on a replica set', () => {
  it('commit as one applyOps entry with lsid, txnNumber and prevOpTime; reads see the snapshot and their own writes', async () => {
    const { p, s } = await replicaSet();
    const t = p.db('app').collection<Account>('t');
    await t.insertMany([{ _id: 1, v: 100 }, { _id: 2, v: 100 }]);
    const session = p.startSession();
    try {
      session.startTransaction({ readPreference: 'primary' });
      await t.updateOne({ _id: 1 }, { $inc: { v: -30 } }, { session });
      await t.updateOne({ _id: 2 }, { $inc: { v: 30 } }, { session });
      await t.insertOne({ _id: 3, v: 0 }, { session });
      expect(await t.find({}, { session }).sort({ _id: 1 }).toArray()).toEqual([{ _id: 1, v: 70 }, { _id: 2, v: 130 }, { _id: 3, v: 0 }]);
      // Outside the transaction nothing has happened yet.
      expect(await t.find({}).sort({ _id: 1 }).toArray()).toEqual([{ _id: 1, v: 100 }, { _id: 2, v: 100 }]);
      await session.commitTransaction();
    } finally {
      await session.endSession();
    }
    expect(await t.find({}).sort({ _id: 1 }).toArray()).toEqual([{ _id: 1, v: 70 }, { _id: 2, v: 130 }, { _id: 3, v: 0 }]);
    const entries = await txnEntries(p);
    expect(entries).toHaveLength(1);
    const e = entries[0]!;
    expect(e).toMatchObject({ op: 'c', ns: 'admin.$cmd', prevOpTime: { t: -1 } });
    expect(Number(e.txnNumber)).toBeGreaterThan(0);
    expect(e.prevOpTime.ts.isZero()).toBe(true);
    expect(Buffer.from((e.lsid.id as Binary).buffer).toString('hex')).toBe(Buffer.from(session.id!.id.buffer).toString('hex'));
    expect(e.o.applyOps.map((o: Document) => [o.op, o.o])).toEqual([
      ['u', { _id: 1, v: 70 }],
      ['u', { _id: 2, v: 130 }],
      ['i', { _id: 3, v: 0 }],
    ]);
    await eventually(async () => (await s.db('app').collection('t').countDocuments()) === 3, 5000, 'the secondary to apply the transaction');
    expect(await s.db('app').collection('t').find({}).sort({ _id: 1 }).toArray()).toEqual([{ _id: 1, v: 70 }, { _id: 2, v: 130 }, { _id: 3, v: 0 }]);
  });

  it('abort writes nothing; a conflicting write is a transient WriteConflict; what mongod refuses is refused', async () => {
    const { p } = await replicaSet();
    const t = p.db('app').collection<Account>('t');
    await t.insertMany([{ _id: 1, v: 100 }, { _id: 2, v: 100 }]);
    const a = p.startSession();
    const b = p.startSession();
    try {
      a.startTransaction({ readPreference: 'primary' });
      await t.updateOne({ _id: 1 }, { $set: { v: 1 } }, { session: a });
      await a.abortTransaction();
      expect(await t.findOne({ _id: 1 })).toEqual({ _id: 1, v: 100 });
      expect(await txnEntries(p)).toEqual([]);

      // A document written by another transaction in progress.
      a.startTransaction({ readPreference: 'primary' });
      await t.updateOne({ _id: 1 }, { $set: { v: 2 } }, { session: a });
      b.startTransaction({ readPreference: 'primary' });
      const conflict = (await t.updateOne({ _id: 1 }, { $set: { v: 3 } }, { session: b }).catch((e: unknown) => e)) as MongoServerError;
      expect(conflict.code).toBe(112);
      expect(conflict.hasErrorLabel('TransientTransactionError')).toBe(true);
      await b.abortTransaction().catch(() => undefined);
      // A document changed outside since the transaction's snapshot.
      await t.updateOne({ _id: 2 }, { $set: { v: 5 } });
      await expect(t.updateOne({ _id: 2 }, { $set: { v: 6 } }, { session: a })).rejects.toMatchObject({ code: 112 });
      await a.abortTransaction().catch(() => undefined);
      expect(await t.find({}).sort({ _id: 1 }).toArray()).toEqual([{ _id: 1, v: 100 }, { _id: 2, v: 5 }]);

      a.startTransaction({ readPreference: 'primary' });
      await expect(t.countDocuments({}, { session: a })).rejects.toMatchObject({ code: 263 });
      await a.abortTransaction().catch(() => undefined);
    } finally {
      await a.endSession();
      await b.endSession();
    }
    const lsid = { id: p.startSession().id!.id };
    const none = (await p.db('admin').command({ commitTransaction: 1, lsid, txnNumber: Long.fromNumber(7), autocommit: false }).catch((e: unknown) => e)) as MongoServerError;
    expect(none.code).toBe(251);
    expect(none.hasErrorLabel('TransientTransactionError')).toBe(true);
    expect(await txnEntries(p)).toEqual([]);
  });
});
