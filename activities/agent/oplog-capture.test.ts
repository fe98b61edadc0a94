/**
 * `captureOplog` against a simulated replica set under the bank workload: consecutive captures, on a secondary and
 * then on the primary, seal every majority-committed entry exactly once (the segments' entries, byte for byte, are
 * the oplog's between the first and last captured timestamps), each segment chained to the previous one; and a
 * capture resumed after the capped oplog rolled past its last sealed point records the gap and goes on.
 */
import { MockActivityEnvironment } from '@temporalio/testing';
import type { MongoClient } from 'mongodb';
import { afterEach, describe, expect, it } from 'vitest';
import { BankWorkload } from '../../sim/cluster/bank.ts';
import type { SimCluster } from '../../sim/cluster/cluster.ts';
import { direct, eventually, quietLog, startTestCluster } from '../../sim/testkit.ts';
import { fsRepository } from '../../repository/repository.ts';
import { OplogSegments, summarizeChain } from '../../repository/oplog-segments.ts';
import { oplogBetween } from '../../test/helpers/oplog.ts';
import { compareTs } from '../../common/timestamp.ts';
import type { CaptureResult } from '../../common/pitr-types.ts';
import { tempDir } from '../../test/helpers/temp.ts';
import { entryTs, oplogCaptureActivities, type CaptureInput } from './oplog-capture.ts';

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

function input(repo: string, over: Partial<CaptureInput> = {}): CaptureInput {
  const rs = cluster!.shards[0]!;
  return {
    target: { uri: `mongodb://${rs.localNodes.map((n) => n.address).join(',')}/?replicaSet=${rs.name}`, credentials: { kind: 'none' } },
    repo,
    cluster: 'c1',
    replicaSet: rs.name,
    sealEveryMs: 300,
    leaseMs: 2000,
    ...over,
  };
}

async function capture(host: string, repo: string, over: Partial<CaptureInput> = {}): Promise<CaptureResult> {
  const acts = oplogCaptureActivities({ mongod: host, repository: (p) => fsRepository(p) });
  return (await new MockActivityEnvironment().run(acts.captureOplog, input(repo, over))) as CaptureResult;
}

describe('captureOplog', () => {
  it('under the bank workload seals every majority-committed entry exactly once, across members and leases', async () => {
    cluster = await startTestCluster({ replsetOnly: true, members: 3 });
    workload = await BankWorkload.start(cluster, { log: quietLog(), seed: 3 });
    const repo = tempDir('cutpoint-pitr-');
    const rs = cluster.shards[0]!;
    const primary = rs.primary()!.address;
    const secondary = rs.localNodes.find((n) => n.address !== primary)!.address;
    const first = await capture(secondary, repo);
    expect(first.entries).toBeGreaterThan(0);
    expect(first.gap).toBeUndefined();
    // Writes go on between the two leases: the second capture, on another member, resumes from the last seal.
    await eventually(async () => workload!.history.transfers.length > 0, 5000, 'transfers');
    const second = await capture(primary, repo);
    expect(second.entries).toBeGreaterThan(0);
    workload.stop();

    const segments = new OplogSegments(fsRepository(repo));
    const list = await segments.list('c1', rs.name);
    expect(list.length).toBeGreaterThan(4);
    const chain = summarizeChain(list);
    expect(chain.gaps).toEqual([]);
    expect(list[0]!.prev).toBeNull();
    for (let i = 1; i < list.length; i++) expect(list[i]!.prev).toEqual(list[i - 1]!.last);
    expect(new Set(list.map((s) => s.node))).toEqual(new Set([primary, secondary]));

    const captured: Buffer[] = [];
    for (const s of list) {
      const entries = await segments.entries(s);
      expect(entries.length).toBe(s.count);
      expect(entryTs(entries[0]!)).toEqual(s.first);
      expect(entryTs(entries.at(-1)!)).toEqual(s.last);
      captured.push(...entries);
    }
    // Every entry of the oplog from the first captured to the last captured one, once, in order, byte for byte.
    const pc = direct(primary);
    clients.push(pc);
    const oplog = await oplogBetween(pc, chain.from!, chain.to!);
    expect(captured.length).toBe(oplog.length);
    expect(captured.map((b) => entryTs(b))).toEqual(oplog.map((b) => entryTs(b)));
    expect(captured.every((b, i) => b.equals(oplog[i]!))).toBe(true);
    // Bank transfers are among them (not only no-ops), and everything captured was majority-committed.
    expect(captured.some((b) => b.includes(Buffer.from('accounts')))).toBe(true);
    const hello = await direct(primary).db('admin').command({ hello: 1 });
    expect(compareTs(chain.to!, { t: hello.lastWrite.majorityOpTime.ts.t, i: hello.lastWrite.majorityOpTime.ts.i })).toBeLessThanOrEqual(0);
  });

  it('records the gap when the oplog rolled past the last sealed point, and captures on from the oldest entry', async () => {
    // 16 KiB of oplog, checkpoints every 100 ms: the truncation reaches recent entries quickly.
    cluster = await startTestCluster({ replsetOnly: true, members: 1, oplogSizeMB: 1 / 64, checkpointMs: 100 });
    const repo = tempDir('cutpoint-pitr-');
    const host = cluster.shards[0]!.localNodes[0]!.address;
    const c = direct(host);
    clients.push(c);
    const t = c.db('app').collection<{ _id: number; pad?: string }>('t');
    await t.insertOne({ _id: 0 });
    const first = await capture(host, repo, { leaseMs: 800 });
    const sealed = first.capturedTo!;
    expect(sealed).not.toBeNull();
    // While no capture runs, the oplog rolls past the sealed point.
    const pad = 'x'.repeat(500);
    let next = 1;
    await eventually(async () => {
      await t.insertMany(Array.from({ length: 20 }, () => ({ _id: next++, pad })));
      const oldest = (await c.db('local').collection('oplog.rs').find({}).limit(1).toArray())[0]!.ts as { t: number; i: number };
      return compareTs({ t: oldest.t, i: oldest.i }, sealed) > 0;
    }, 20_000, 'the oplog to roll over');
    const resumed = await capture(host, repo, { leaseMs: 800 });
    expect(resumed.gap?.from).toEqual(sealed);
    expect(compareTs(resumed.gap!.to, sealed)).toBeGreaterThan(0);
    const list = await new OplogSegments(fsRepository(repo)).list('c1', 'rs0');
    const chain = summarizeChain(list);
    expect(chain.gaps).toEqual([resumed.gap]);
    expect(chain.contiguousFrom).toEqual(resumed.gap!.to);
    expect(compareTs(chain.to!, resumed.gap!.to)).toBeGreaterThanOrEqual(0);
  });
});
