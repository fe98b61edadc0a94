/**
 * The proofs everything after depends on, each with a naive copier, under the bank workload with checkpoints
 * every second or two, through the official driver over TCP:
 *
 * 1. a correct copy (cursor kept alive with getMore, data files up to their listed fileSize, journal files whole after
 *    an extend, storage.bson) recovers through the mongod-compatible entry point to exactly the history at the
 *    extended timestamp;
 * 2. the same copy with the cursor expired (or killed) before the data files are copied, followed by checkpoints, is
 *    detected as broken, by the blocks: the recovery error names the reused block's file, number and generations;
 * 3. restoring each shard to its own checkpoint instead of one common timestamp breaks the bank invariant.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Document, Long, MongoClient, Timestamp } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BankWorkload } from '../../cluster/bank.ts';
import type { SimCluster } from '../../cluster/cluster.ts';
import { Oracle, recoverAt, recoverAtOwnCheckpoint } from '../../cluster/oracle.ts';
import { simLogger } from '../../log.ts';
import { direct, eventually, runMongod, sleep, startTestCluster, stopMongod } from '../../testkit.ts';
import { compareTs } from '../clock.ts';
import type { SimNode } from '../types.ts';
import { freePort } from '../../../lib/ports.ts';
import { checkpoints, copyInto, extend, getMore, isLogFile, killCursor, openBackup, run, stableCheckpoint, type OpenedBackup } from './testkit.ts';

const tmp: string[] = [];
function tmpDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'cutpoint-backup-proof-'));
  tmp.push(d);
  return d;
}

afterAll(() => {
  for (const d of tmp) fs.rmSync(d, { recursive: true, force: true });
});

/** The naive copier's file kinds: logs are copied whole, everything else up to its listed fileSize. */
function size(f: Document): number {
  return Number(f.fileSize as number | Long);
}

function toMap(docs: Document[]): Map<string, number> {
  return new Map(docs.map((d) => [String(d._id), Number(d.balance)]));
}

async function readAccounts(port: number): Promise<Map<string, number>> {
  const c = direct(`127.0.0.1:${port}`);
  try {
    return toMap(await c.db('bank').collection('accounts').find().toArray());
  } finally {
    await c.close();
  }
}

/** PBM's restore steps 2–4 through sim/bin/mongod: truncate point in a standalone start, then recover from the oplog. */
async function restoreThroughMongod(dbpath: string, target: Timestamp): Promise<Map<string, number>> {
  const port = await freePort();
  const step1 = await runMongod(['--dbpath', dbpath, '--port', String(port), '--setParameter', 'disableLogicalSessionCacheRefresh=true']);
  const c = direct(`127.0.0.1:${port}`);
  try {
    await c.db('local').collection<Document>('replset.oplogTruncateAfterPoint').replaceOne(
      { _id: 'oplogTruncateAfterPoint' as never },
      { _id: 'oplogTruncateAfterPoint', oplogTruncateAfterPoint: target },
      { upsert: true },
    );
  } finally {
    await c.close();
  }
  expect(await stopMongod(step1)).toBe(0);
  const step2 = await runMongod([
    '--dbpath', dbpath, '--port', String(port),
    '--setParameter', 'recoverFromOplogAsStandalone=true',
    '--setParameter', 'takeUnstableCheckpointOnShutdown=true',
  ]);
  expect(step2.child.exitCode, step2.output()).toBeNull();
  const accounts = await readAccounts(port);
  expect(await stopMongod(step2)).toBe(0);
  return accounts;
}

describe('one replica set under the bank workload', () => {
  let cluster: SimCluster;
  let workload: BankWorkload;
  let node: SimNode;
  let c: MongoClient;

  beforeAll(async () => {
    cluster = await startTestCluster({ replsetOnly: true, members: 2, checkpointMs: 1000 });
    workload = await BankWorkload.start(cluster, { log: simLogger(), seed: 41 });
    node = cluster.shards[0]!.localNodes[1]!; // back up from the secondary, as PBM prefers
    c = direct(node.address);
    await stableCheckpoint(node);
    await sleep(1000);
  });

  afterAll(async () => {
    workload?.stop();
    await c?.close();
    await cluster?.stop();
  });

  it('a correct copy recovers through sim/bin/mongod to exactly the history at the extended timestamp', async () => {
    const dest = tmpDir();
    const b = await openBackup(c);
    const checkpointTs = b.metadata.checkpointTimestamp as Timestamp;
    expect(b.files.some((f) => (f.filename as string).endsWith('/storage.bson'))).toBe(false);
    // Slowly, while the workload runs and checkpoints come and go; getMore keeps the cursor alive.
    for (const f of b.files) {
      copyInto(node.dbpath, f.filename as string, dest, isLogFile(f.filename as string) ? undefined : size(f));
      await getMore(c, b.id);
      await sleep(150);
    }
    await checkpoints(node, 2);
    expect((await getMore(c, b.id)).cursor.nextBatch).toEqual([]);
    const target = workload.lastTimestamp();
    expect(compareTs(target, checkpointTs)).toBeGreaterThan(0);
    for (const f of await extend(c, b.metadata.backupId, target)) copyInto(node.dbpath, f, dest);
    fs.copyFileSync(path.join(node.dbpath, 'storage.bson'), path.join(dest, 'storage.bson'));
    await killCursor(c, b.id);
    await checkpoints(node, 2); // the source moves on; the copy must not care

    const restored = await restoreThroughMongod(dest, target);
    const oracle = new Oracle(workload.history);
    const verdict = oracle.verify([{ name: 'rs0', accounts: restored }], target);
    expect(verdict.mismatches).toEqual([]);
    expect(verdict.ok).toBe(true);
    // Not trivially so: the checkpoint alone holds an older state, the journal brought it to the target.
    expect(Object.fromEntries(workload.history.stateAt('rs0', checkpointTs))).not.toEqual(Object.fromEntries(restored));
  });

  /** The same copy, but the data files are copied only after the cursor went away and checkpoints followed. */
  async function lateCopy(loseCursor: (b: OpenedBackup) => Promise<void>): Promise<void> {
    const dest = tmpDir();
    const b = await openBackup(c);
    const data = b.files.filter((f) => !isLogFile(f.filename as string));
    for (const f of b.files.filter((x) => isLogFile(x.filename as string))) copyInto(node.dbpath, f.filename as string, dest);
    const target = workload.lastTimestamp();
    for (const f of await extend(c, b.metadata.backupId, target)) copyInto(node.dbpath, f, dest);
    for (const f of data.filter((x) => /\/WiredTiger(\.backup)?$/.test(x.filename as string))) copyInto(node.dbpath, f.filename as string, dest, size(f));
    await loseCursor(b);
    await eventually(async () => (await run(c, { serverStatus: 1 })).storageEngine.backupCursorOpen === false, 10_000, 'the backup to be released');
    await checkpoints(node, 3);
    for (const f of data.filter((x) => (x.filename as string).endsWith('.wt'))) copyInto(node.dbpath, f.filename as string, dest, size(f));
    fs.copyFileSync(path.join(node.dbpath, 'storage.bson'), path.join(dest, 'storage.bson'));

    const p = await runMongod(['--dbpath', dest, '--port', String(await freePort())]);
    expect(await p.exited).toBe(100);
    const m = /([\w.-]+\.wt) block (\d+): expected generation (\d+), found generation (\d+) \(block reused by a later checkpoint\)/.exec(p.output());
    expect(m, p.output()).not.toBeNull();
    const [, file, block, expected, found] = m!;
    expect(Number(found)).toBeGreaterThan(Number(expected));
    expect(data.map((f) => path.basename(f.filename as string))).toContain(file);
    // The verdict is in the bytes: the block's header in the copy carries the later generation.
    const copied = fs.readFileSync(path.join(dest, file!));
    const blockSize = copied.readUInt32LE(8);
    expect(Number(copied.readBigUInt64LE(Number(block) * blockSize + 12))).toBe(Number(found));
  }

  it('the same copy with the cursor left to expire before the data files is detected as broken, by reused blocks', async () => {
    await run(c, { setParameter: 1, cursorTimeoutMillis: 500, enableTimeoutOfInactiveSessionCursors: true });
    try {
      // No getMore any more: the idle cursor times out.
      await lateCopy(async () => undefined);
    } finally {
      await run(c, { setParameter: 1, cursorTimeoutMillis: 600_000, enableTimeoutOfInactiveSessionCursors: false });
    }
  });

  it('and with the cursor killed mid-copy', async () => {
    await lateCopy(async (b) => {
      await killCursor(c, b.id);
    });
  });
});

describe('a sharded cluster under the bank workload', () => {
  it('restoring each shard to its own checkpoint breaks the invariant; one common timestamp keeps it', async () => {
    const cluster = await startTestCluster({ shards: 2, members: 1, checkpointMs: 2000 });
    // Transfers at one timestamp: the common timestamp below is the newest transfer's, which for a two-phase commit is
    // its commitTimestamp, before its commit entries (docs/simulator.md, "A cut between the commit entries ...").
    const workload = await BankWorkload.start(cluster, { log: simLogger(), seed: 7, distributedTransactions: false });
    const clients = cluster.shards.map((rs) => direct(rs.localNodes[0]!.address));
    try {
      const nodes = cluster.shards.map((rs) => rs.localNodes[0]!);
      for (const n of nodes) await stableCheckpoint(n);
      await sleep(1500);
      const history = workload.history;
      const names = cluster.shards.map((rs) => rs.name);
      const total = history.total();
      const sumOf = (m: Map<string, number>) => [...m.values()].reduce((a, v) => a + v, 0);

      // Correct copies of both shards (a precondition of the negative control: the two checkpoints must straddle
      // cross-shard transfers, which the staggered checkpoints under load make all but certain; a few tries at most).
      let backups: Array<{ dest: string; b: OpenedBackup }> = [];
      for (let attempt = 0; ; attempt++) {
        backups = [];
        for (const [i, n] of nodes.entries()) {
          const dest = tmpDir();
          const b = await openBackup(clients[i]!);
          for (const f of b.files) copyInto(n.dbpath, f.filename as string, dest, isLogFile(f.filename as string) ? undefined : size(f));
          backups.push({ dest, b });
        }
        const own = backups.map(({ b }, i) => history.stateAt(names[i]!, b.metadata.checkpointTimestamp as Timestamp));
        if (own.reduce((a, m) => a + sumOf(m), 0) !== total || attempt === 4) break;
        for (const [i, { b }] of backups.entries()) await killCursor(clients[i]!, b.id);
        await sleep(1000);
      }
      const common = workload.lastTimestamp();
      for (const [i, { dest, b }] of backups.entries()) {
        for (const f of await extend(clients[i]!, b.metadata.backupId, common)) copyInto(nodes[i]!.dbpath, f, dest);
        fs.copyFileSync(path.join(nodes[i]!.dbpath, 'storage.bson'), path.join(dest, 'storage.bson'));
        await killCursor(clients[i]!, b.id);
      }
      workload.stop();
      const oracle = new Oracle(history);

      // Each shard at its own checkpoint: each one is a faithful restore of itself...
      const own = backups.map(({ dest, b }, i) => {
        const r = recoverAtOwnCheckpoint(dest);
        expect(compareTs(r.ts!, b.metadata.checkpointTimestamp as Timestamp)).toBe(0);
        expect(oracle.verify([{ name: names[i]!, accounts: r.accounts }], r.ts!).ok).toBe(true);
        return { ts: r.ts!, accounts: r.accounts };
      });
      expect(compareTs(own[0]!.ts, own[1]!.ts)).not.toBe(0);
      // ...but together they are no cluster state at all: the invariant is broken.
      const mixed = oracle.verify(own.map((o, i) => ({ name: names[i]!, accounts: o.accounts })), common);
      expect(mixed.ok).toBe(false);
      expect(mixed.total).not.toBe(total);
      expect(mixed.mismatches).toContain(`invariant broken: balances sum to ${mixed.total}, not ${total}`);

      // The same copies restored to one common timestamp keep it.
      const together = oracle.verify(backups.map(({ dest }, i) => ({ name: names[i]!, accounts: recoverAt(dest, common) })), common);
      expect(together.mismatches).toEqual([]);
      expect(together.total).toBe(total);
    } finally {
      workload.stop();
      await Promise.all(clients.map((x) => x.close()));
      await cluster.stop();
    }
  });
});
