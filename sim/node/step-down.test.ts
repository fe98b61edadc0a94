/**
 * `replSetStepDown` and `replSetStepUp` (sim/node/election.ts) through the real driver: the errors of mongod, writes
 * refused by the old primary (10107), an election of a caught-up secondary with term + 1 that every member's `hello`
 * reports and the driver's SDAM follows, a majority read of the oplog that goes on across it on both members.
 */
import type { Document, MongoClient, Timestamp } from 'mongodb';
import { MongoClient as Client } from 'mongodb';
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

function open(host: string): MongoClient {
  const c = direct(host);
  clients.push(c);
  return c;
}

/** A majority tailable find on the oplog and its getMores, in one session (as a driver cursor would). */
async function tailMajority(c: MongoClient, from: Timestamp): Promise<{ first: Document[]; more: () => Promise<Document[]> }> {
  const session = c.startSession();
  const local = c.db('local');
  const reply = await local.command({ find: 'oplog.rs', filter: { ts: { $gte: from } }, tailable: true, awaitData: true, readConcern: { level: 'majority' } }, { session });
  return {
    first: reply.cursor.firstBatch as Document[],
    more: async () => (await local.command({ getMore: reply.cursor.id, collection: 'oplog.rs', maxTimeMS: 200 }, { session })).cursor.nextBatch as Document[],
  };
}

describe('replica-set step-down and step-up', () => {
  it('elects a caught-up secondary with term + 1; the old primary refuses writes; hello, SDAM and a majority oplog tail follow', async () => {
    cluster = await startTestCluster({ replsetOnly: true, members: 3 });
    const rs = cluster.shards[0]!;
    const [h0, h1, h2] = rs.config.members.map((m) => m.host) as [string, string, string];
    const [c0, c1, c2] = [open(h0), open(h1), open(h2)];
    const before = await c0.db('admin').command({ hello: 1 });
    expect(before).toMatchObject({ isWritablePrimary: true, primary: h0 });
    const setClient = new Client(`mongodb://${h0},${h1},${h2}/?replicaSet=${rs.name}&serverSelectionTimeoutMS=10000`);
    clients.push(setClient);
    await setClient.db('app').collection('t').insertOne({ _id: 'before' as never }, { writeConcern: { w: 'majority' } });
    const status0 = await c0.db('admin').command({ replSetGetStatus: 1 });

    // On a secondary; a catch-up period longer than the step-down period.
    await expect(c1.db('admin').command({ replSetStepDown: 60 })).rejects.toMatchObject({ code: 10107, message: "not primary so can't step down" });
    await expect(c0.db('admin').command({ replSetStepDown: 5, secondaryCatchUpPeriodSecs: 10 })).rejects.toMatchObject({ code: 2 });

    // No electable secondary catches up in time (both lag 3 s): ExceededTimeLimit, and the primary stays primary.
    for (const c of [c1, c2]) await c.db('admin').command({ setParameter: 1, simReplicationLagMs: 3000 });
    await c0.db('app').collection('t').insertOne({ _id: 'lagging' as never });
    await expect(c0.db('admin').command({ replSetStepDown: 60, secondaryCatchUpPeriodSecs: 0.5 })).rejects.toMatchObject({ code: 262, message: expect.stringContaining('No electable secondaries caught up') });
    expect((await c0.db('admin').command({ hello: 1 })).isWritablePrimary).toBe(true);
    for (const c of [c1, c2]) await c.db('admin').command({ setParameter: 1, simReplicationLagMs: 0 });

    // A majority tail of the oplog on the primary, open across the step-down.
    const from = (await c0.db('admin').command({ hello: 1 })).lastWrite.majorityOpTime.ts as Timestamp;
    const tail0 = await tailMajority(c0, from);

    // Step-down: a caught-up secondary is elected, term + 1.
    await c0.db('admin').command({ replSetStepDown: 60, secondaryCatchUpPeriodSecs: 10 });
    const hellos = await Promise.all([c0, c1, c2].map((c) => c.db('admin').command({ hello: 1 })));
    const newPrimary = hellos.find((h) => h.isWritablePrimary)!.me as string;
    expect(newPrimary).not.toBe(h0);
    for (const h of hellos) expect(h).toMatchObject({ setName: rs.name, primary: newPrimary, setVersion: before.setVersion });
    expect(hellos[0]).toMatchObject({ isWritablePrimary: false, secondary: true });
    const elected = hellos.find((h) => h.isWritablePrimary)!;
    expect(elected.electionId.toHexString() > before.electionId.toHexString()).toBe(true);
    expect(Number(hellos[0]!.topologyVersion.counter)).toBeGreaterThan(Number(before.topologyVersion.counter));
    const status1 = await open(newPrimary).db('admin').command({ replSetGetStatus: 1 });
    expect(Number(status1.term)).toBe(Number(status0.term) + 1);

    // The old primary refuses writes; the set's client (SDAM) writes to the new primary.
    await expect(c0.db('app').collection('t').insertOne({ _id: 'old' as never })).rejects.toMatchObject({ code: 10107 });
    await setClient.db('app').collection('t').insertOne({ _id: 'after' as never }, { writeConcern: { w: 'majority' } });
    // The old primary cannot be elected for stepDownSecs.
    await expect(c0.db('admin').command({ replSetStepUp: 1 })).rejects.toMatchObject({ code: 125 });

    // The majority tail opened on the old primary goes on there (its cursor survives; it now reads as a secondary),
    // and one opened on the new primary from the same point returns the same entries: the new term's are included.
    const onNew = await tailMajority(open(newPrimary), from);
    const seen = async (tail: Awaited<ReturnType<typeof tailMajority>>): Promise<Document[]> => {
      const docs: Document[] = [...tail.first];
      await eventually(async () => {
        docs.push(...(await tail.more()));
        return docs.some((d) => d.o?._id === 'after');
      }, 10_000, 'the write after the election in the majority tail');
      return docs;
    };
    const a = await seen(tail0);
    const b = await seen(onNew);
    const upTo = (docs: Document[]) => docs.slice(0, docs.findIndex((d) => d.o?._id === 'after') + 1).map((d) => (d.ts as Timestamp).toString());
    expect(upTo(a)).toEqual(upTo(b));
    const newTerm = b.filter((d) => d.o?.msg === 'new primary');
    expect(newTerm).toHaveLength(1);
    expect(Number(newTerm[0]!.t)).toBe(Number(status0.term) + 1);
    expect(a.some((d) => d.o?._id === 'old')).toBe(false);

    // replSetStepUp on the remaining secondary (caught up): it takes over; on the primary it is a no-op.
    const third = [h1, h2].find((h) => h !== newPrimary)!;
    await open(newPrimary).db('admin').command({ replSetStepUp: 1 });
    await eventually(async () => (await open(third).db('admin').command({ replSetStepUp: 1 })).ok === 1, 5_000, 'the caught-up secondary stepped up');
    expect(await open(third).db('admin').command({ hello: 1 })).toMatchObject({ isWritablePrimary: true, primary: third });
    expect(Number((await open(third).db("admin").command({ replSetGetStatus: 1 })).term)).toBe(Number(status0.term) + 2);
    await setClient.db('app').collection('t').insertOne({ _id: 'third' as never }, { writeConcern: { w: 'majority' } });
  });

  it('with force steps down without a caught-up secondary; the set elects one once it caught up from the old primary, losing no write', async () => {
    cluster = await startTestCluster({ replsetOnly: true, members: 3 });
    const rs = cluster.shards[0]!;
    const [h0, h1, h2] = rs.config.members.map((m) => m.host) as [string, string, string];
    const [c0, c1, c2] = [open(h0), open(h1), open(h2)];
    for (const c of [c1, c2]) await c.db('admin').command({ setParameter: 1, simReplicationLagMs: 1500 });
    await c0.db('app').collection('t').insertOne({ _id: 'unreplicated' as never });
    const started = Date.now();
    await c0.db('admin').command({ replSetStepDown: 60, secondaryCatchUpPeriodSecs: 0.3, force: true });
    expect(Date.now() - started).toBeLessThan(1500);
    // No member can win yet (each is behind the old primary, which is frozen): no primary, writes refused.
    expect((await Promise.all([c0, c1, c2].map((c) => c.db('admin').command({ hello: 1 })))).some((h) => h.isWritablePrimary)).toBe(false);
    await expect(c0.db('app').collection('t').insertOne({ _id: 'refused' as never })).rejects.toMatchObject({ code: 10107 });
    const elected = await eventually(async () => {
      for (const c of [c1, c2]) {
        const h = await c.db('admin').command({ hello: 1 });
        if (h.isWritablePrimary) return c;
      }
      return undefined;
    }, 10_000, 'an election once a secondary caught up');
    expect(await elected!.db('app').collection('t').findOne({ _id: 'unreplicated' as never })).not.toBeNull();
  });
});
