/**
 * `applyOps` as a point-in-time restore replays oplog entries with it: on a standalone and on a primary, inserts
 * (an existing `_id` replaced), updates (replacement, operators, `$v: 2` deltas), deletes, commands, nested applyOps,
 * and mongod's answers to bad entries and to transaction fields.
 */
import type { Document, MongoClient, MongoServerError } from 'mongodb';
import { UUID } from 'mongodb';
import { afterEach, describe, expect, it } from 'vitest';
import type { SimCluster } from '../../cluster/cluster.ts';
import { direct, eventually, startStandalone, startTestCluster } from '../../testkit.ts';

let cluster: SimCluster | undefined;
let standalone: Awaited<ReturnType<typeof startStandalone>> | undefined;
const clients: MongoClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close();
  await cluster?.stop();
  cluster = undefined;
  await standalone?.stop();
  standalone = undefined;
});

async function standaloneClient(): Promise<MongoClient> {
  standalone = await startStandalone();
  return standalone.client;
}

async function failure(p: Promise<unknown>): Promise<MongoServerError> {
  return p.then(
    () => {
      throw new Error('expected the command to fail');
    },
    (e: unknown) => e as MongoServerError,
  );
}

const docs = async (c: MongoClient, coll = 't') => c.db('app').collection(coll).find({}).sort({ _id: 1 }).toArray();

describe('applyOps', () => {
  it('applies inserts, updates, deletes, commands and nested applyOps on a standalone', async () => {
    const c = await standaloneClient();
    const admin = c.db('admin');
    const r = await admin.command({
      applyOps: [
        { op: 'c', ns: 'app.$cmd', o: { create: 't' } },
        { op: 'i', ns: 'app.t', o: { _id: 1, v: 'a' } },
        { op: 'i', ns: 'app.t', o: { _id: 2, v: 'b', w: { x: 1, y: 2 } } },
        { op: 'n', ns: '', o: { msg: 'skipped, not counted' } },
        { op: 'u', ns: 'app.t', o: { $v: 2, diff: { u: { v: 'B' }, sw: { d: { y: false } } } }, o2: { _id: 2 } },
        { op: 'u', ns: 'app.t', o: { $set: { z: 3 } }, o2: { _id: 1 } },
        // An insert of an existing _id replaces the document (applyOps inserts are upserts).
        { op: 'i', ns: 'app.t', o: { _id: 1, v: 'again' } },
        { op: 'c', ns: 'admin.$cmd', o: { applyOps: [{ op: 'i', ns: 'app.t', o: { _id: 3 } }, { op: 'd', ns: 'app.t', o: { _id: 2 } }] } },
        // A delete of a missing document or collection is a success.
        { op: 'd', ns: 'app.none', o: { _id: 9 } },
      ],
    });
    expect(r).toMatchObject({ applied: 8, results: [true, true, true, true, true, true, true, true], ok: 1 });
    expect(await docs(c)).toEqual([{ _id: 1, v: 'again' }, { _id: 3 }]);
  });

  it('answers bad entries and transaction fields as mongod does', async () => {
    const c = await standaloneClient();
    const admin = c.db('admin');
    await c.db('app').collection('t').insertOne({ _id: 1 as never, v: 1 });

    expect(await failure(admin.command({ applyOps: [], prepare: true }))).toMatchObject({ code: 2, errmsg: "applyOps command can't have 'prepare' field" });
    expect(await failure(admin.command({ applyOps: [], partialTxn: true }))).toMatchObject({ code: 31056 });
    expect(await failure(admin.command({ applyOps: [], count: 1 }))).toMatchObject({ code: 31240 });
    expect(await failure(admin.command({ applyOps: 'x' }))).toMatchObject({ code: 14 });
    expect(await failure(admin.command({ applyOps: [{ op: 'i', ns: 'app', o: { _id: 5 } }] }))).toMatchObject({ code: 73, errmsg: 'invalid ns: app' });
    // Exceptions stop the command; `applied` counts the failed operation and `results` ends with false.
    const missing = await failure(admin.command({ applyOps: [{ op: 'i', ns: 'app.t', o: { _id: 2 } }, { op: 'i', ns: 'app.none', o: { _id: 1 } }, { op: 'i', ns: 'app.t', o: { _id: 3 } }] }));
    expect(missing).toMatchObject({ code: 26, codeName: 'NamespaceNotFound', applied: 2, results: [true, false] });
    expect(missing.errmsg).toMatch(/^cannot apply insert or update operation on a non-existent namespace app\.none: /);
    expect(await failure(admin.command({ applyOps: [{ op: 'x', ns: 'app.t', o: {} }] }))).toMatchObject({ code: 2, applied: 1, results: [false] });
    expect(await failure(admin.command({ applyOps: [{ op: 'i', ns: 'app.t' }] }))).toMatchObject({ code: 40414, errmsg: "BSON field 'OplogEntryBase.o' is missing but a required field" });
    expect(await failure(admin.command({ applyOps: [{ op: 'i', ns: 'app.t', o: { _id: 4 }, h: 0 }] }))).toMatchObject({ code: 40415, errmsg: "BSON field 'OplogEntryBase.h' is an unknown field." });
    expect(await failure(admin.command({ applyOps: [{ op: 'i', ns: 'app.t', o: { v: 1 } }] }))).toMatchObject({ code: 4 });
    // A returned error (an update of a missing document, a ui of another collection): result false, then 8.
    const uuid = ((await c.db('app').listCollections({ name: 't' }).toArray())[0] as Document).info.uuid as UUID;
    const returned = await failure(admin.command({
      applyOps: [
        { op: 'u', ns: 'app.t', o: { v: 2 }, o2: { _id: 99 } },
        { op: 'u', ns: 'app.t', o: { $set: { v: 3 } }, o2: { _id: 1 }, ui: uuid },
        { op: 'd', ns: 'app.t', o: { _id: 1 }, ui: new UUID() },
      ],
    }));
    expect(returned).toMatchObject({ code: 8, errmsg: 'applyOps had one or more errors applying ops', applied: 3, results: [false, true, false] });
    expect(await docs(c)).toEqual([{ _id: 1, v: 3 }, { _id: 2 }]);
    // `b: true` makes an update of a missing document an upsert.
    await admin.command({ applyOps: [{ op: 'u', ns: 'app.t', o: { v: 7 }, o2: { _id: 7 }, b: true }] });
    expect((await docs(c)).at(-1)).toEqual({ _id: 7, v: 7 });
  });

  it('on a replica set: the primary logs each operation and its secondaries follow; a secondary refuses', async () => {
    cluster = await startTestCluster({ replsetOnly: true, members: 2, noopMs: 0 });
    const [h0, h1] = cluster.shards[0]!.config.members.map((m) => m.host);
    const p = direct(h0!);
    const s = direct(h1!);
    clients.push(p, s);
    await p.db('app').collection('t').insertOne({ _id: 1 as never });
    const before = await p.db('local').collection('oplog.rs').countDocuments();
    const r = await p.db('admin').command({ applyOps: [{ op: 'i', ns: 'app.t', o: { _id: 2 } }, { op: 'u', ns: 'app.t', o: { $set: { v: 1 } }, o2: { _id: 1 } }] });
    expect(r).toMatchObject({ applied: 2, results: [true, true] });
    const logged = await p.db('local').collection('oplog.rs').find({ ns: 'app.t' }).sort({ $natural: 1 }).toArray();
    expect(logged.slice(-2).map((e: Document) => [e.op, e.o])).toEqual([['i', { _id: 2 }], ['u', { _id: 1, v: 1 }]]);
    expect(await p.db('local').collection('oplog.rs').countDocuments()).toBeGreaterThanOrEqual(before + 2);
    await eventually(async () => (await docs(s)).length === 2, 5000, 'the secondary to apply');
    expect(await docs(s)).toEqual([{ _id: 1, v: 1 }, { _id: 2 }]);
    expect(await failure(s.db('admin').command({ applyOps: [{ op: 'i', ns: 'app.t', o: { _id: 3 } }] }))).toMatchObject({
      code: 10107,
      errmsg: 'Not primary while applying ops to database admin',
    });
  });
});
