/**
 * Tailing `local.oplog.rs` through the driver as point-in-time recovery does: tailable awaitData find with `ts` bounds,
 * getMore's wait bounded by maxTimeMS, batchSize, the option errors of mongod, and CappedPositionLost once the capped
 * oplog truncated the entry the cursor stood on.
 */
import type { Document, MongoClient } from 'mongodb';
import { Long, Timestamp } from 'mongodb';
import { afterEach, describe, expect, it } from 'vitest';
import type { SimCluster } from '../cluster/cluster.ts';
import { direct, eventually, startTestCluster } from '../testkit.ts';

let cluster: SimCluster | undefined;
let client: MongoClient | undefined;
afterEach(async () => {
  await client?.close();
  client = undefined;
  await cluster?.stop();
  cluster = undefined;
});

async function primary(opts: Parameters<typeof startTestCluster>[0] = {}): Promise<MongoClient> {
  cluster = await startTestCluster({ replsetOnly: true, members: 1, noopMs: 0, ...opts });
  client = direct(cluster.shards[0]!.config.members[0]!.host);
  return client;
}

const local = (c: MongoClient) => c.db('local');

describe('tailing the oplog', () => {
  it('refuses what mongod refuses and closes a cursor on a missing collection', async () => {
    const c = await primary();
    await c.db('app').collection('t').insertOne({ _id: 1 as never });
    await expect(local(c).command({ find: 'oplog.rs', awaitData: true })).rejects.toMatchObject({
      code: 9,
      message: "Cannot set 'awaitData' without also setting 'tailable'",
    });
    await expect(c.db('app').command({ find: 't', tailable: true })).rejects.toMatchObject({
      code: 2,
      message: expect.stringContaining('tailable cursor requested on non capped collection'),
    });
    await expect(local(c).command({ find: 'oplog.rs', tailable: true, sort: { ts: -1 } })).rejects.toMatchObject({
      code: 2,
      message: 'cannot use tailable option with a sort other than {$natural: 1}',
    });
    await expect(local(c).command({ find: 'oplog.rs', tailable: true, singleBatch: true })).rejects.toMatchObject({ code: 2 });
    const missing = await c.db('app').command({ find: 'none', tailable: true, awaitData: true });
    expect(String(missing.cursor.id)).toBe('0');
    // maxTimeMS on the getMore of a cursor that is not awaitData.
    const plain = await local(c).command({ find: 'oplog.rs', tailable: true, batchSize: 1 });
    expect(String(plain.cursor.id)).not.toBe('0');
    await expect(local(c).command({ getMore: plain.cursor.id, collection: 'oplog.rs', maxTimeMS: 100 })).rejects.toMatchObject({
      code: 2,
      message: 'cannot set maxTimeMS on getMore command for a non-awaitData cursor',
    });
  });

  it('returns entries after ts in batches, waits for new ones up to maxTimeMS, and stops at a $lte bound', async () => {
    const c = await primary();
    const t = c.db('app').collection<{ _id: number; pad?: string }>('t');
    await t.insertOne({ _id: 0 });
    const start = (await c.db('admin').command({ hello: 1 })).lastWrite.opTime.ts as Timestamp;
    for (let i = 1; i <= 5; i++) await t.insertOne({ _id: i });
    const first = await local(c).command({ find: 'oplog.rs', filter: { ts: { $gt: start } }, tailable: true, awaitData: true, batchSize: 2 });
    const id = first.cursor.id as Long;
    expect(String(id)).not.toBe('0');
    expect(first.cursor.firstBatch.map((e: Document) => e.o._id)).toEqual([1, 2]);
    const more = await local(c).command({ getMore: id, collection: 'oplog.rs', batchSize: 2, maxTimeMS: 5000 });
    expect(more.cursor.nextBatch.map((e: Document) => e.o._id)).toEqual([3, 4]);
    const rest = await local(c).command({ getMore: id, collection: 'oplog.rs', maxTimeMS: 5000 });
    expect(rest.cursor.nextBatch.map((e: Document) => e.o._id)).toEqual([5]);
    // Caught up: the getMore waits its maxTimeMS, then answers an empty batch on the same cursor.
    let began = Date.now();
    const empty = await local(c).command({ getMore: id, collection: 'oplog.rs', maxTimeMS: 400 });
    expect(Date.now() - began).toBeGreaterThanOrEqual(380);
    expect(empty.cursor.nextBatch).toEqual([]);
    expect(String(empty.cursor.id)).toBe(String(id));
    // A write while it waits wakes it long before its deadline.
    began = Date.now();
    const waiting = local(c).command({ getMore: id, collection: 'oplog.rs', maxTimeMS: 10_000 });
    setTimeout(() => void t.insertOne({ _id: 6 }), 200);
    const woken = await waiting;
    expect(woken.cursor.nextBatch.map((e: Document) => e.o._id)).toEqual([6]);
    expect(Date.now() - began).toBeLessThan(5000);
    // hello.lastWrite names the newest entry, with dates from the timestamps' seconds as mongod fills them.
    const { lastWrite } = await c.db('admin').command({ hello: 1 });
    const newest = woken.cursor.nextBatch[0].ts as Timestamp;
    expect((lastWrite.opTime.ts as Timestamp).equals(newest)).toBe(true);
    expect(lastWrite.lastWriteDate).toEqual(new Date(newest.high * 1000));
    expect((lastWrite.majorityOpTime.ts as Timestamp).lessThanOrEqual(newest)).toBe(true);
    expect(lastWrite.majorityWriteDate).toEqual(new Date((lastWrite.majorityOpTime.ts as Timestamp).high * 1000));

    // $gte includes the bound; $lte ends the scan there.
    const upTo = (await c.db('admin').command({ hello: 1 })).lastWrite.opTime.ts as Timestamp;
    await t.insertOne({ _id: 7 });
    const bounded = await local(c).command({ find: 'oplog.rs', filter: { ts: { $gte: start, $lte: upTo } }, tailable: true, awaitData: true });
    expect(bounded.cursor.firstBatch.map((e: Document) => e.o._id)).toEqual([0, 1, 2, 3, 4, 5, 6]);
    const after = await local(c).command({ getMore: bounded.cursor.id, collection: 'oplog.rs', maxTimeMS: 200 });
    expect(after.cursor.nextBatch).toEqual([]);
  });

  it('ends with CappedPositionLost when the capped oplog truncated the entry the cursor stood on', async () => {
    // 16 KiB of oplog; checkpoints every 100 ms let the truncation reach the newest entries quickly.
    const c = await primary({ oplogSizeMB: 1 / 64, checkpointMs: 100 });
    const t = c.db('app').collection<{ _id: number; pad?: string }>('t');
    await t.insertOne({ _id: 0 });
    const cursor = await local(c).command({ find: 'oplog.rs', filter: { ts: { $gte: new Timestamp({ t: 0, i: 0 }) } }, tailable: true, awaitData: true, batchSize: 1 });
    const id = cursor.cursor.id as Long;
    const seen = cursor.cursor.firstBatch[0].ts as Timestamp;
    const pad = 'x'.repeat(500);
    let next = 1;
    // Fall behind: the oplog rolls over past the cursor's position.
    await eventually(async () => {
      await t.insertMany(Array.from({ length: 20 }, () => ({ _id: next++, pad })));
      const oldest = (await local(c).collection('oplog.rs').find({}).limit(1).toArray())[0]!.ts as Timestamp;
      return oldest.greaterThan(seen);
    }, 20_000, 'the oplog to roll over');
    const lost = await local(c).command({ getMore: id, collection: 'oplog.rs', maxTimeMS: 100 }).catch((e: unknown) => e);
    expect(lost).toMatchObject({
      code: 136,
      codeName: 'CappedPositionLost',
      message: `CollectionScan died due to failure to restore tailable cursor position. Last seen record id: RecordId(${Long.fromBits(seen.low, seen.high, true).toString()})`,
    });
    await expect(local(c).command({ getMore: id, collection: 'oplog.rs' })).rejects.toMatchObject({ code: 43 });
    // getCmdLineOpts reports the size as mongod's replication.oplogSizeMB.
    const opts = await c.db('admin').command({ getCmdLineOpts: 1 });
    expect(opts.parsed.replication.oplogSizeMB).toBe(1 / 64);
  });

  it('with readConcern majority returns an entry only once the majority has it', async () => {
    // The secondary applies 600 ms late, so the commit point trails every write by as much.
    const c = await primary({ members: 2, lagMs: 600 });
    const t = c.db('app').collection<{ _id: number }>('t');
    await t.insertOne({ _id: 0 });
    const start = (await c.db('admin').command({ hello: 1 })).lastWrite.opTime.ts as Timestamp;
    const opened = await local(c).command({
      find: 'oplog.rs',
      filter: { ts: { $gt: start } },
      tailable: true,
      awaitData: true,
      readConcern: { level: 'majority' },
    });
    const id = opened.cursor.id as Long;
    await t.insertOne({ _id: 1 });
    const early = await local(c).command({ getMore: id, collection: 'oplog.rs', maxTimeMS: 100 });
    expect(early.cursor.nextBatch).toEqual([]);
    const began = Date.now();
    const committed = await local(c).command({ getMore: id, collection: 'oplog.rs', maxTimeMS: 5000 });
    expect(committed.cursor.nextBatch.map((e: Document) => e.o._id)).toEqual([1]);
    expect(Date.now() - began).toBeLessThan(4000);
    const { lastWrite } = await c.db('admin').command({ hello: 1 });
    expect((lastWrite.majorityOpTime.ts as Timestamp).greaterThanOrEqual(committed.cursor.nextBatch[0].ts as Timestamp)).toBe(true);
  });
});
