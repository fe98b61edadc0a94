/**
 * Multi-document transactions are not simulated: the driver's transaction commands are refused, never run as
 * separate writes (docs/simulator.md, "What is not simulated").
 */
import type { Document, MongoClient } from 'mongodb';
import { afterEach, describe, expect, it } from 'vitest';
import type { SimCluster } from '../cluster/cluster.ts';
import { direct, startTestCluster } from '../testkit.ts';

let cluster: SimCluster | undefined;
let client: MongoClient | undefined;
afterEach(async () => {
  await client?.close();
  client = undefined;
  await cluster?.stop();
  cluster = undefined;
});

describe('transactions', () => {
  it('are refused on a replica set, and nothing of the transaction is written', async () => {
    cluster = await startTestCluster({ replsetOnly: true, members: 1, noopMs: 0 });
    client = direct(cluster.shards[0]!.config.members[0]!.host);
    const t = client.db('app').collection<Document>('t');
    await t.insertOne({ _id: 1, v: 0 });
    const session = client.startSession();
    try {
      session.startTransaction();
      await expect(t.updateOne({ _id: 1 }, { $set: { v: 1 } }, { session })).rejects.toMatchObject({
        code: 115,
        message: 'the simulator does not support multi-document transactions',
      });
      await session.abortTransaction().catch(() => undefined);
    } finally {
      await session.endSession();
    }
    expect(await t.findOne({ _id: 1 })).toEqual({ _id: 1, v: 0 });
  });
});
