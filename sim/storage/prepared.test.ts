/**
 * A prepared transaction's oplog entries in the storage engine (oplog.ts, mvcc.ts): the prepare entry changes nothing,
 * the commit entry makes the prepare entry's writes visible at its commitTimestamp and durable at its own timestamp,
 * so a checkpoint between the two does not hold them and recovery reapplies them from the commit entry.
 */
import type { Document } from 'mongodb';
import { Long } from 'mongodb';
import { afterEach, describe, expect, it } from 'vitest';
import { balances, cleanup, create, entry, openEngine, tmpDir, ts, write } from './testkit.ts';

const dirs: string[] = [];
afterEach(() => cleanup(dirs));
const NS = 'bank.accounts';
const txn = (prev: number): Document => ({ lsid: { id: 'x' }, txnNumber: Long.fromNumber(1), prevOpTime: { ts: ts(prev), t: Long.fromNumber(prev === 0 ? -1 : 1) } });

describe('prepared transactions in the storage engine', () => {
  it('commit at commitTimestamp, durable at the commit entry: a checkpoint between holds nothing of it, recovery applies it', () => {
    const dir = tmpDir();
    dirs.push(dir);
    const engine = openEngine(dir, 'replicaSet', { historyWindowSeconds: 0 });
    create(engine, 1, NS);
    write(engine, 2, 'i', NS, { _id: 'a', v: 100 });
    engine.logAndApply({ ...entry(3, 'c', 'admin.$cmd', { applyOps: [{ op: 'u', ns: NS, o: { _id: 'a', v: 50 }, o2: { _id: 'a' } }], prepare: true }), ...txn(0) });
    expect(balances(engine, NS)).toEqual({ a: 100 });
    // The stable timestamp passes the commitTimestamp before the commit: allowed, the commit is durable later.
    write(engine, 4, 'i', NS, { _id: 'b', v: 1 });
    engine.setStableTimestamp(ts(4));
    engine.logAndApply({ ...entry(5, 'c', 'admin.$cmd', { commitTransaction: 1, commitTimestamp: ts(3) }), ...txn(3) });
    // Visible at the stable timestamp (after the commitTimestamp), though committed after it moved there.
    expect(balances(engine, NS, ts(4))).toEqual({ a: 50, b: 1 });
    expect(engine.checkpoint().timestamp).toEqual(ts(4));
    engine.crash();

    // The checkpoint at 4 is before the commit entry (5): it holds the value before the transaction...
    const standalone = openEngine(dir, 'standalone');
    expect(balances(standalone, NS)).toEqual({ a: 100, b: 1 });
    standalone.close({ clean: false });
    // ...and recovery applies the commit entry, finding the prepare entry by its prevOpTime.
    const member = openEngine(dir, 'replicaSet');
    expect(member.recovery.replication.entriesApplied).toBe(1);
    expect(balances(member, NS)).toEqual({ a: 50, b: 1 });
    member.close();
  });

  it('an abort entry, or a prepare entry alone, changes nothing', () => {
    const dir = tmpDir();
    dirs.push(dir);
    const engine = openEngine(dir, 'replicaSet');
    create(engine, 1, NS);
    write(engine, 2, 'i', NS, { _id: 'a', v: 100 });
    engine.logAndApply({ ...entry(3, 'c', 'admin.$cmd', { applyOps: [{ op: 'd', ns: NS, o: { _id: 'a' } }], prepare: true }), ...txn(0) });
    engine.logAndApply({ ...entry(4, 'c', 'admin.$cmd', { abortTransaction: 1 }), ...txn(3) });
    expect(balances(engine, NS)).toEqual({ a: 100 });
    engine.close();
  });
});
