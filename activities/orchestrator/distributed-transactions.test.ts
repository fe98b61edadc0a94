/**
 * settleCommonTimestamp: a sharded backup's common timestamp is moved past the commit entries of every distributed
 * transaction that committed at or before it. The rule over the oplogs (straddlingAt), then the activity against the
 * simulator's two-phase commit: a cut at the first shard's commit entry (which restores the transfer on that shard
 * only: sim/cluster/two-phase.test.ts) is moved to the last shard's commit entry, and a restore there is whole.
 */
import { MockActivityEnvironment } from '@temporalio/testing';
import { afterAll, describe, expect, it } from 'vitest';
import type { BankWorkload } from '../../sim/cluster/bank.ts';
import { oneCrossShardTransfer } from '../../sim/cluster/one-transfer.ts';
import type { SimCluster } from '../../sim/cluster/cluster.ts';
import { Oracle, recoverAt } from '../../sim/cluster/oracle.ts';
import { compareTs } from '../../sim/node/clock.ts';
import { startTestCluster } from '../../sim/testkit.ts';
import { fromBsonTimestamp, toBsonTimestamp } from '../../lib/bson-timestamp.ts';
import type { Ts } from '../../common/timestamp.ts';
import { distributedTransactionActivities, straddlingAt, type OplogTransactions } from './distributed-transactions.ts';

const ts = (t: number, i = 1): Ts => ({ t, i });
const oplog = (prepares: Ts[], decisions: Array<[Ts, Ts | null, Ts]>): OplogTransactions => ({
  prepares,
  decisions: new Map(decisions.map(([prepare, commitTimestamp, entry]) => [`${prepare.t}:${prepare.i}`, { commitTimestamp, entry }])),
});

describe('straddlingAt', () => {
  it('a transaction committed at or before T with its commit entry after T straddles it; one committing after T, aborted, or entirely before does not; an undecided prepare is waited for', () => {
    const shards = new Map([
      ['s0', oplog([ts(10), ts(20), ts(30), ts(40)], [[ts(10), ts(11), ts(12)], [ts(20), ts(21), ts(26)], [ts(30), null, ts(31)]])],
      ['s1', oplog([ts(19)], [[ts(19), ts(21), ts(24)]])],
    ]);
    const at25 = straddlingAt(ts(25), shards);
    expect(at25.straddling.map((s) => [s.replicaSet, s.commitEntry.t])).toEqual([['s0', 26]]);
    expect(at25.undecided).toBe(0);
    // At 45 the prepare at 40 has no decision yet.
    expect(straddlingAt(ts(45), shards)).toMatchObject({ straddling: [], undecided: 1 });
    // Before the commitTimestamp (21) nobody shows it: nothing to move.
    expect(straddlingAt(ts(20), shards)).toMatchObject({ straddling: [], undecided: 0 });
  });
});

describe('settleCommonTimestamp against two-phase commit', () => {
  let cluster: SimCluster | undefined;
  let workload: BankWorkload | undefined;
  afterAll(async () => {
    workload?.stop();
    await cluster?.stop();
  });

  it('a cut between the shards\' commit entries moves to the last one; a restore there shows the transfer on both shards', async () => {
    cluster = await startTestCluster({ shards: 2, members: 1, checkpointMs: 0 });
    const one = await oneCrossShardTransfer(cluster);
    workload = one.workload;
    const { commits } = one;
    expect(compareTs(commits[0]!.ts, commits[1]!.ts)).toBeLessThan(0);

    const replicaSets = (cluster.describe().shards as Array<{ name: string; uri: string }>).map((s) => ({ name: s.name, target: { uri: s.uri, credentials: { kind: 'none' as const } } }));
    const settled = (await new MockActivityEnvironment().run(distributedTransactionActivities.settleCommonTimestamp, {
      replicaSets,
      common: fromBsonTimestamp(commits[0]!.ts)!,
    })) as { common: Ts; moved: unknown[] };
    expect(settled.common).toEqual(fromBsonTimestamp(commits[1]!.ts));
    expect(settled.moved.length).toBeGreaterThan(0);
    // Past every commit entry already: unchanged.
    const again = (await new MockActivityEnvironment().run(distributedTransactionActivities.settleCommonTimestamp, { replicaSets, common: settled.common })) as { common: Ts };
    expect(again.common).toEqual(settled.common);

    for (const rs of cluster.shards) rs.write(rs.primary()!, [{ op: 'n', ns: '', o: { msg: 'periodic noop' } }]);
    const dbpaths = cluster.shards.map((rs) => ({ name: rs.name, dbpath: rs.primary()!.dbpath }));
    for (const rs of cluster.shards) await rs.localNodes[0]!.crash();
    const at = toBsonTimestamp(settled.common);
    const verdict = new Oracle(workload.history).verify(dbpaths.map((d) => ({ name: d.name, accounts: recoverAt(d.dbpath, at) })), at);
    expect(verdict.mismatches).toEqual([]);
  });
});
