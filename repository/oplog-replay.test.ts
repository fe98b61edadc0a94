/**
 * The replay plan of a point-in-time restore over synthetic oplogs (repository/oplog-replay.ts): plain entries and
 * unprepared transactions at or before the target are applied, nothing after it; a prepared transaction is applied
 * iff its commitTimestamp is at or before the target (its commit entry may lie after the target: looked for past it),
 * never when aborted; an undecided one refuses the target; partialTxn chains are applied whole at their last entry;
 * no-ops and skipped namespaces are left out; a commit whose prepare is in the base comes from the base's oplog.
 */
import type { Document } from 'mongodb';
import { Long, Timestamp } from 'mongodb';
import { describe, expect, it } from 'vitest';
import type { Ts } from '../common/timestamp.ts';
import { assertDecided, DecisionScan, ReplayPlan, skippedNamespace } from './oplog-replay.ts';

const T = (t: number, i = 1) => new Timestamp({ t, i });
const lsid = (n: number) => ({ id: `session-${n}` });
const ins = (t: number, id: number, ns = 'bank.accounts'): Document => ({ ts: T(t), op: 'i', ns, o: { _id: id, v: t } });
const inner = (id: number, v: number) => ({ op: 'u', ns: 'bank.accounts', o: { _id: id, v }, o2: { _id: id } });
const prepare = (t: number, s: number, ops: Document[]) => ({ ts: T(t), op: 'c', ns: 'admin.$cmd', o: { applyOps: ops, prepare: true }, lsid: lsid(s), txnNumber: Long.fromNumber(1), prevOpTime: { ts: T(0, 0), t: -1 } });
const commit = (t: number, s: number, prepTs: number, commitTs: number) => ({ ts: T(t), op: 'c', ns: 'admin.$cmd', o: { commitTransaction: 1, commitTimestamp: T(commitTs) }, lsid: lsid(s), txnNumber: Long.fromNumber(1), prevOpTime: { ts: T(prepTs), t: 1 } });
const abort = (t: number, s: number, prepTs: number) => ({ ts: T(t), op: 'c', ns: 'admin.$cmd', o: { abortTransaction: 1 }, lsid: lsid(s), txnNumber: Long.fromNumber(1), prevOpTime: { ts: T(prepTs), t: 1 } });

/** Both passes over `oplog` from `from` to `to`; the applied operations in order. */
function replay(oplog: Document[], from: number, to: number, opts: { pending?: Ts[]; earlier?: Record<string, Document[]> } = {}): Document[] {
  const scan = new DecisionScan({ t: from, i: 1 }, { t: to, i: 1 }, opts.pending);
  for (const e of oplog) {
    scan.add(e);
    if (scan.done()) break;
  }
  assertDecided('rs', { t: to, i: 1 }, scan.undecided());
  const plan = new ReplayPlan({ t: from, i: 1 }, { t: to, i: 1 }, scan.decisions, (ts) => opts.earlier?.[`${ts.t}:${ts.i}`]);
  const out: Document[] = [];
  for (const e of oplog) out.push(...plan.add(e));
  for (const late of plan.finish()) out.push(...late);
  return out;
}
const ids = (ops: Document[]) => ops.map((o) => `${o.op}${(o.o as Document)._id}${o.op === 'u' ? `=${(o.o as Document).v}` : ''}`);

describe('the replay plan', () => {
  it('applies plain entries after the base and up to the target, no later one', () => {
    const oplog = [ins(10, 1), ins(11, 2), { ts: T(12), op: 'n', ns: '', o: { msg: 'periodic noop' } }, ins(13, 3), ins(14, 4)];
    expect(ids(replay(oplog, 10, 13))).toEqual(['i2', 'i3']);
  });

  it('a prepared transaction committed at or before the target is applied even when its commit entry lies after the target', () => {
    // Prepared at 11, commitTimestamp 12 (another participant's prepare), this shard's commit entry at 14.
    const oplog = [prepare(11, 1, [inner(1, 60)]), ins(13, 5), commit(14, 1, 11, 12), ins(15, 6)];
    expect(ids(replay(oplog, 10, 13))).toEqual(['i5', 'u1=60']);
    // At exactly the commitTimestamp too; one before it: not applied.
    expect(ids(replay(oplog, 10, 12))).toEqual(['u1=60']);
    expect(ids(replay(oplog, 10, 11))).toEqual([]);
    // A target past the commit entry applies it at the commit entry, in oplog order.
    expect(ids(replay(oplog, 10, 15))).toEqual(['i5', 'u1=60', 'i6']);
  });

  it('a prepared transaction whose commitTimestamp is after the target, or that aborted, is not applied', () => {
    const oplog = [prepare(11, 1, [inner(1, 60)]), prepare(12, 2, [inner(2, 70)]), ins(13, 5), abort(14, 2, 12), commit(16, 1, 11, 15)];
    expect(ids(replay(oplog, 10, 14))).toEqual(['i5']);
    expect(ids(replay(oplog, 10, 16))).toEqual(['i5', 'u1=60']);
  });

  it('refuses a target while a transaction prepared at or before it is undecided in the capture', () => {
    const oplog = [prepare(11, 1, [inner(1, 60)]), ins(13, 5)];
    expect(() => replay(oplog, 10, 13)).toThrow(expect.objectContaining({ code: 'PITR_NOT_RESTORABLE', message: expect.stringMatching(/prepared at Timestamp\(11, 1\) is not yet committed or aborted/) }));
    // Prepared after the target: no matter.
    expect(ids(replay(oplog, 10, 10))).toEqual([]);
    // Prepared in the base, undecided there and in the capture: refused too.
    expect(() => replay([ins(13, 5)], 10, 13, { pending: [{ t: 9, i: 1 }] })).toThrow(expect.objectContaining({ code: 'PITR_NOT_RESTORABLE' }));
  });

  it('a commit whose prepare entry is in the base takes its operations from the base oplog', () => {
    const oplog = [ins(11, 5), commit(13, 1, 9, 12)];
    expect(ids(replay(oplog, 10, 13, { pending: [{ t: 9, i: 1 }], earlier: { '9:1': [inner(1, 60)] } }))).toEqual(['i5', 'u1=60']);
    expect(() => replay(oplog, 10, 13, { pending: [{ t: 9, i: 1 }] })).toThrow(expect.objectContaining({ code: 'REPO_CORRUPT' }));
  });

  it('an unprepared transaction is applied at its applyOps entry; a partialTxn chain whole at its last entry', () => {
    const plain = { ts: T(11), op: 'c', ns: 'admin.$cmd', o: { applyOps: [inner(1, 60), inner(2, 140)] }, lsid: lsid(1), txnNumber: Long.fromNumber(1) };
    const part1 = { ts: T(12), op: 'c', ns: 'admin.$cmd', o: { applyOps: [inner(3, 1)], partialTxn: true }, lsid: lsid(2), txnNumber: Long.fromNumber(4) };
    const part2 = { ts: T(14), op: 'c', ns: 'admin.$cmd', o: { applyOps: [inner(4, 2)], count: 2 }, lsid: lsid(2), txnNumber: Long.fromNumber(4) };
    const oplog = [plain, part1, ins(13, 9), part2];
    expect(ids(replay(oplog, 10, 13))).toEqual(['u1=60', 'u2=140', 'i9']);
    expect(ids(replay(oplog, 10, 14))).toEqual(['u1=60', 'u2=140', 'i9', 'u3=1', 'u4=2']);
    // A prepared transaction's partial chain is applied with its prepare entry's operations at the commit.
    const prepared = [{ ...part1, ts: T(11) }, { ...prepare(12, 2, [inner(4, 2)]), txnNumber: Long.fromNumber(4) }, commit(14, 2, 12, 13)];
    expect(ids(replay(prepared, 10, 13))).toEqual(['u3=1', 'u4=2']);
  });

  it('skips the session and transaction tables, routing caches, local and the bookkeeping the reset step rewrites', () => {
    for (const ns of ['config.system.sessions', 'config.transactions', 'config.cache.collections', 'config.cache.chunks.bank.accounts', 'local.oplog.rs', 'config.shards', 'admin.system.version', 'config.image_collection']) expect(skippedNamespace(ns), ns).toBe(true);
    for (const ns of ['bank.accounts', 'config.chunks', 'config.collections', 'admin.system.users']) expect(skippedNamespace(ns), ns).toBe(false);
    const oplog = [ins(11, 1, 'config.transactions'), ins(12, 2), { ts: T(13), op: 'c', ns: 'config.$cmd', o: { create: 'cache.x' } }, { ts: T(14), op: 'c', ns: 'bank.$cmd', o: { create: 'other' } }];
    expect(replay(oplog, 10, 14).map((o) => o.ns)).toEqual(['bank.accounts', 'bank.$cmd']);
    // Operations go to applyOps without their session fields.
    expect(Object.keys(replay([{ ...ins(11, 1), lsid: lsid(1), txnNumber: 1, stmtId: 0 }], 10, 11)[0]!)).toEqual(['op', 'ns', 'o']);
  });
});
