import { Timestamp } from 'mongodb';
import { afterEach, describe, expect, it } from 'vitest';
import { TRUNCATE_POINT_ID, TRUNCATE_POINT_NS } from './catalog.ts';
import type { StorageEngine } from './engine.ts';
import { balances, cleanup, create, entry, openEngine, tmpDir, ts, write } from './testkit.ts';

const dirs: string[] = [];
afterEach(() => cleanup(dirs));

const NS = 'bank.accounts';

/**
 * A replica-set member's history: accounts a..e created at 1..6, checkpoint at stable 6, then updates at 7..16 that
 * only the journal holds. Returns the dbpath after a crash.
 */
function crashedMember(): string {
  const dir = tmpDir();
  dirs.push(dir);
  const engine = openEngine(dir);
  create(engine, 1, NS);
  for (const [n, id] of ['a', 'b', 'c', 'd', 'e'].entries()) write(engine, 2 + n, 'i', NS, { _id: id, v: 100 });
  engine.setStableTimestamp(ts(6));
  engine.checkpoint();
  for (let i = 7; i <= 16; i++) write(engine, i, 'u', NS, { _id: 'abcde'[i % 5] as string, v: i });
  engine.crash();
  return dir;
}

const AT_CHECKPOINT = { a: 100, b: 100, c: 100, d: 100, e: 100 };
const LATEST = { a: 15, b: 16, c: 12, d: 13, e: 14 };

function setTruncatePoint(engine: StorageEngine, point: Timestamp): void {
  if (!engine.getCollection(TRUNCATE_POINT_NS)) engine.createCollection(TRUNCATE_POINT_NS);
  engine.replace(TRUNCATE_POINT_NS, { _id: TRUNCATE_POINT_ID, oplogTruncateAfterPoint: point }, { upsert: true });
}

describe('crash recovery', () => {
  it('standalone leaves data at the checkpoint; the journaled oplog is in the oplog but not applied', () => {
    const dir = crashedMember();
    const engine = openEngine(dir, 'standalone');
    expect(engine.recovery.uncleanShutdown).toBe(true);
    expect(engine.recovery.checkpoint.timestamp).toEqual(ts(6));
    expect(engine.recovery.journalEntries).toBe(10);
    expect(engine.recovery.replication.entriesApplied).toBe(0);
    expect(balances(engine, NS)).toEqual(AT_CHECKPOINT);
    expect(engine.oplogLast()?.ts).toEqual(ts(16));
    engine.close();
    // The standalone's shutdown checkpoint keeps the stable timestamp, so a later replica-set start still recovers.
    const member = openEngine(dir, 'replicaSet');
    expect(member.lastCheckpoint().timestamp).toEqual(ts(6));
    expect(balances(member, NS)).toEqual(LATEST);
    member.close();
  });

  it.each(['replicaSet', 'recoverFromOplogAsStandalone'] as const)('%s applies the journaled oplog', (mode) => {
    const dir = crashedMember();
    const engine = openEngine(dir, mode);
    expect(engine.recovery.replication.entriesApplied).toBe(10);
    expect(balances(engine, NS)).toEqual(LATEST);
    expect(balances(engine, NS, ts(10))).toEqual({ ...AT_CHECKPOINT, a: 10, b: 100, c: 7, d: 8, e: 9 });
    expect(engine.lastApplied).toEqual(ts(16));
    if (mode === 'recoverFromOplogAsStandalone') {
      expect(() => engine.insert(NS, { _id: 'z', v: 1 })).toThrow(expect.objectContaining({ code: 20 }));
    }
    engine.close();
  });

  it('oplogTruncateAfterPoint cuts exactly: the entry at the point stays, everything after is gone', () => {
    const dir = crashedMember();
    const standalone = openEngine(dir, 'standalone');
    setTruncatePoint(standalone, ts(11));
    standalone.close();

    const engine = openEngine(dir, 'recoverFromOplogAsStandalone', { takeUnstableCheckpointOnShutdown: true });
    const rep = engine.recovery.replication;
    expect(rep.truncateAfterPoint).toEqual(ts(11));
    expect(rep.entriesTruncated).toBe(5);
    expect(rep.entriesApplied).toBe(5);
    expect(engine.oplogLast()?.ts).toEqual(ts(11));
    expect(engine.readOplog({ after: ts(9) }).map((e) => e.ts)).toEqual([ts(10), ts(11)]);
    expect(balances(engine, NS)).toEqual({ a: 10, b: 11, c: 7, d: 8, e: 9 });
    const point = engine.findById(TRUNCATE_POINT_NS, TRUNCATE_POINT_ID)?.oplogTruncateAfterPoint as Timestamp;
    expect(point.equals(new Timestamp({ t: 0, i: 0 }))).toBe(true);
    engine.close();

    // takeUnstableCheckpointOnShutdown kept everything applied: a plain standalone sees it.
    const after = openEngine(dir, 'standalone');
    expect(after.lastCheckpoint().timestamp).toBeNull();
    expect(after.lastCheckpoint().appliedThrough).toEqual(ts(11));
    expect(balances(after, NS)).toEqual({ a: 10, b: 11, c: 7, d: 8, e: 9 });
    after.close();

    // Re-running recoverFromOplogAsStandalone is a no-op with the flag, fatal 31229 without it.
    const rerun = openEngine(dir, 'recoverFromOplogAsStandalone', { takeUnstableCheckpointOnShutdown: true });
    expect(rerun.recovery.replication.entriesApplied).toBe(0);
    rerun.close({ takeUnstableCheckpointOnShutdown: true });
    expect(() => openEngine(dir, 'recoverFromOplogAsStandalone')).toThrow(
      expect.objectContaining({ code: 31229, message: "Cannot use 'recoverFromOplogAsStandalone' without a stable checkpoint" }),
    );

    // A truncate point on an unstable checkpoint means recovery would be needed: fatal, as in MongoDB.
    const standalone2 = openEngine(dir, 'standalone');
    setTruncatePoint(standalone2, ts(9));
    standalone2.close();
    expect(() => openEngine(dir, 'recoverFromOplogAsStandalone', { takeUnstableCheckpointOnShutdown: true })).toThrow(
      expect.objectContaining({ code: 31363 }),
    );
    const standalone3 = openEngine(dir, 'standalone');
    setTruncatePoint(standalone3, new Timestamp({ t: 0, i: 0 }));
    standalone3.close();

    // A replica-set start from the unstable checkpoint resumes after appliedThrough and accepts new writes.
    const member = openEngine(dir, 'replicaSet');
    expect(member.recovery.replication.entriesApplied).toBe(0);
    write(member, 40, 'u', NS, { _id: 'a', v: 40 });
    member.crash();
    const recovered = openEngine(dir, 'replicaSet');
    expect(balances(recovered, NS)).toEqual({ a: 40, b: 11, c: 7, d: 8, e: 9 });
    recovered.close();
  });

  it('a truncate point at or before the checkpoint truncates after the checkpoint timestamp', () => {
    const dir = crashedMember();
    const standalone = openEngine(dir, 'standalone');
    setTruncatePoint(standalone, ts(3));
    standalone.close();
    const engine = openEngine(dir, 'replicaSet');
    expect(engine.recovery.replication.truncatedAfter).toEqual(ts(6));
    expect(engine.oplogLast()?.ts).toEqual(ts(6));
    expect(balances(engine, NS)).toEqual(AT_CHECKPOINT);
    engine.close();
  });

  it('a truncate point beyond the journal fails startup naming the top of the oplog and the point', () => {
    const dir = crashedMember();
    const standalone = openEngine(dir, 'standalone');
    setTruncatePoint(standalone, ts(30));
    standalone.close();
    expect(() => openEngine(dir, 'recoverFromOplogAsStandalone')).toThrow(
      /journal does not reach the truncate point: the oplog ends at Timestamp\(100, 16\) but oplogTruncateAfterPoint is Timestamp\(100, 30\)/,
    );
    // The failed start changed nothing: a standalone still opens.
    const again = openEngine(dir, 'standalone');
    expect(balances(again, NS)).toEqual(AT_CHECKPOINT);
    again.close();
  });

  it('survives a crash right after recovery truncated the oplog', () => {
    const dir = crashedMember();
    const standalone = openEngine(dir, 'standalone');
    setTruncatePoint(standalone, ts(11));
    standalone.close();
    const member = openEngine(dir, 'replicaSet');
    // New history after the truncation reuses timestamps the truncated entries had.
    write(member, 12, 'u', NS, { _id: 'a', v: 1200 });
    member.crash();
    const recovered = openEngine(dir, 'replicaSet');
    expect(recovered.recovery.replication.truncateAfterPoint).toBeNull();
    expect(balances(recovered, NS)).toEqual({ a: 1200, b: 11, c: 7, d: 8, e: 9 });
    expect(recovered.oplogLast()?.ts).toEqual(ts(12));
    recovered.close();
  });

  it('keeps a dropped collection reachable for a later stable checkpoint behind the drop', () => {
    const dir = tmpDir();
    dirs.push(dir);
    const engine = openEngine(dir);
    create(engine, 2, 'db.gone');
    write(engine, 3, 'i', 'db.gone', { _id: 1, v: 1 });
    engine.logAndApply(entry(5, 'c', 'db.$cmd', { drop: 'gone' }));
    engine.checkpoint(); // no stable timestamp yet: unstable, of everything
    engine.setStableTimestamp(ts(4));
    expect(engine.checkpoint().timestamp).toEqual(ts(4));
    engine.crash();
    const recovered = openEngine(dir, 'standalone');
    expect(balances(recovered, 'db.gone')).toEqual({ 1: 1 });
    recovered.close();
    const member = openEngine(dir);
    expect(member.getCollection('db.gone')).toBeUndefined();
    member.close();
  });

  it('replays collection creation and drops from the oplog', () => {
    const dir = tmpDir();
    dirs.push(dir);
    const engine = openEngine(dir);
    engine.setStableTimestamp(ts(1));
    engine.checkpoint();
    create(engine, 2, 'db.one');
    write(engine, 3, 'i', 'db.one', { _id: 1, v: 1 });
    create(engine, 4, 'db.two');
    engine.logAndApply(entry(5, 'c', 'db.$cmd', { drop: 'one' }));
    engine.crash();
    const recovered = openEngine(dir);
    expect(recovered.listCollections().map((c) => c.ns)).toEqual(['db.two', 'local.oplog.rs']);
    expect(recovered.getCollection('db.one', ts(3))?.ns).toBe('db.one');
    expect(balances(recovered, 'db.one', ts(3))).toEqual({ 1: 1 });
    recovered.setStableTimestamp(ts(5));
    recovered.checkpoint();
    recovered.close();
    const files = openEngine(dir);
    expect(files.lastCheckpoint().timestamp).toEqual(ts(5));
    expect(files.listCollections().map((c) => c.ns)).toEqual(['db.two', 'local.oplog.rs']);
    files.close();
  });
});

