import { BSON } from 'mongodb';
import { describe, expect, it } from 'vitest';
import { create, openEngine, ts, useTmpDirs, write } from './testkit.ts';

const dbpath = useTmpDirs();

const payload = 'x'.repeat(200);
const oplogBytes = (docs: object[]): number => docs.reduce((n, d) => n + BSON.calculateObjectSize(d as BSON.Document), 0);
const firstI = (e: { readOplog(): { ts: { low: number } }[] }): number => e.readOplog()[0]!.ts.low;

describe('the capped oplog', () => {
  it('truncates its oldest entries past its size, never at or after the stable checkpoint, and survives a restart', () => {
    const dir = dbpath();
    const size = 4096;
    let engine = openEngine(dir, 'replicaSet', { oplogSizeBytes: size });
    create(engine, 1, 'app.c');
    for (let i = 2; i <= 60; i++) write(engine, i, 'i', 'app.c', { _id: i, payload });
    // No stable checkpoint yet: mongod truncates nothing (getPinnedOplog), whatever the size.
    expect(engine.readOplog()).toHaveLength(60);
    engine.setStableTimestamp(ts(30));
    engine.checkpoint();
    write(engine, 61, 'i', 'app.c', { _id: 61, payload });
    // Everything before the checkpoint's timestamp may go, and no more: still over the size.
    expect(firstI(engine)).toBe(30);
    expect(oplogBytes(engine.readOplog())).toBeGreaterThan(size);
    engine.setStableTimestamp(ts(61));
    engine.checkpoint();
    write(engine, 62, 'i', 'app.c', { _id: 62, payload });
    const kept = engine.readOplog();
    expect(oplogBytes(kept)).toBeLessThanOrEqual(size);
    // The newest entries stay: only the oldest were dropped, and as few as needed.
    expect(kept[kept.length - 1]!.ts.low).toBe(62);
    expect(oplogBytes(kept) + BSON.calculateObjectSize(engine.readOplog()[0] as unknown as BSON.Document)).toBeGreaterThan(size - 400);
    const first = firstI(engine);
    expect(first).toBeGreaterThan(30);
    // The data is untouched by the oplog's truncation.
    expect(engine.count('app.c')).toBe(61);
    engine.close();
    // The truncation is in the checkpointed oplog: a restart does not bring the entries back.
    engine = openEngine(dir, 'replicaSet', { oplogSizeBytes: size });
    expect(firstI(engine)).toBe(first);
    engine.close();
  });

  it('keeps what a backup cursor pinned', () => {
    const dir = dbpath();
    const engine = openEngine(dir, 'replicaSet', { oplogSizeBytes: 2048 });
    create(engine, 1, 'app.c');
    for (let i = 2; i <= 20; i++) write(engine, i, 'i', 'app.c', { _id: i, payload });
    engine.setStableTimestamp(ts(10));
    engine.checkpoint();
    engine.switchLog();
    const pin = engine.pinCheckpoint();
    engine.setStableTimestamp(ts(20));
    engine.checkpoint();
    for (let i = 21; i <= 40; i++) write(engine, i, 'i', 'app.c', { _id: i, payload });
    expect(firstI(engine)).toBe(10);
    pin.release();
    write(engine, 41, 'i', 'app.c', { _id: 41, payload });
    expect(firstI(engine)).toBe(20);
    engine.close();
  });

  it('is never truncated without a size', () => {
    const engine = openEngine(dbpath(), 'replicaSet');
    create(engine, 1, 'app.c');
    for (let i = 2; i <= 60; i++) write(engine, i, 'i', 'app.c', { _id: i, payload });
    engine.setStableTimestamp(ts(60));
    engine.checkpoint();
    write(engine, 61, 'i', 'app.c', { _id: 61, payload });
    expect(engine.readOplog()).toHaveLength(61);
    engine.close();
  });
});
