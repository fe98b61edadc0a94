/**
 * Retention of the captured oplog and the restorable window: after a prune that keeps only the newer of two backups,
 * the oplog segments that end at or before its common timestamp are gone and their chunks swept, the segments after
 * it and their chunks stay readable, and the window still starts at the kept backup (the oldest kept segment proves
 * contiguity through its `prev`); a segment that records a gap starts the window again after it. In an encrypted
 * repository the segments and their chunks are sealed like every other object, and read back.
 */
import { BSON, Timestamp } from 'mongodb';
import { describe, expect, it } from 'vitest';
import type { Ts } from '../common/timestamp.ts';
import { MemoryStorage } from './memory-storage.ts';
import { OplogSegments, summarizeChain } from './oplog-segments.ts';
import { pitrWindow } from './pitr-window.ts';
import { prune } from './prune.ts';
import { Repository } from './repository.ts';
import { ChunkIndex } from './v2/chunk-index.ts';

const entry = (t: number, i: number) => Buffer.from(BSON.serialize({ ts: new Timestamp({ t, i }), op: 'n', o: { msg: `entry ${t}.${i}` } }));

async function completeBackup(repo: Repository, id: string, minute: number, common: Ts): Promise<void> {
  const at = new Date(Date.UTC(2026, 0, 1, 0, minute)).toISOString();
  await repo.writeClusterManifest({ format: 'cutpoint/v2', id, cluster: 'rs0', status: 'running', startedAt: at, finishedAt: null, commonTimestamp: null, balancerWasEnabled: null, bytes: 0, replicaSets: [{ name: 'rs0', configServer: false, node: 'h:1' }] });
  await repo.writeReplicaSetManifest(id, { format: 'cutpoint/v2', name: 'rs0', node: 'h:1', backupId: 'u', dbpath: '/d', oplogStart: null, oplogEnd: null, checkpointTimestamp: null, extendedTo: common, files: [] });
  await repo.writeClusterManifest({ format: 'cutpoint/v2', id, cluster: 'rs0', status: 'complete', startedAt: at, finishedAt: at, commonTimestamp: common, balancerWasEnabled: null, bytes: 0, replicaSets: [{ name: 'rs0', configServer: false, node: 'h:1' }] });
}

/** Seals segments of entries at seconds `from`..`to` (one per second, `per` seconds per segment), chained. */
async function capture(segments: OplogSegments, from: number, to: number, per: number, prev: Ts | null, gap?: { from: Ts; to: Ts }): Promise<Ts> {
  let last = prev;
  for (let t = from; t <= to; t += per) {
    const docs = Array.from({ length: Math.min(per, to - t + 1) }, (_, k) => entry(t + k, 1));
    const first = { t, i: 1 };
    const end = { t: t + docs.length - 1, i: 1 };
    await segments.seal({ cluster: 'rs0', replicaSet: 'rs0', docs, first, last: end, prev: last, ...(gap && t === from ? { gap } : {}), node: 'h:1' });
    last = end;
  }
  return last!;
}

describe('oplog segments under retention', () => {
  it('a prune keeps the segments the kept backups need, sweeps the rest, and the window still starts at the kept base', async () => {
    const repo = new Repository(new MemoryStorage());
    await repo.init();
    const segments = new OplogSegments(repo);
    const end = await capture(segments, 100, 159, 10, null);
    await completeBackup(repo, 'b-old', 1, { t: 105, i: 1 });
    await completeBackup(repo, 'b-new', 2, { t: 130, i: 1 });
    const before = await pitrWindow(repo, 'rs0');
    expect(before).toMatchObject({ restorableFrom: { t: 105, i: 1 }, restorableTo: end, gaps: [] });

    const result = await prune(repo, { policy: { keepLast: 1 }, ifLocked: 'fail' });
    expect(result.removed).toEqual(['b-old']);
    // Segments 100-109 .. 120-129 end at or before 130.1: removed; 130-139 onwards are kept.
    expect(result.oplogSegmentsRemoved).toBe(3);
    const kept = await segments.list('rs0', 'rs0');
    expect(kept.map((s) => s.first.t)).toEqual([130, 140, 150]);
    expect(kept[0]!.prev).toEqual({ t: 129, i: 1 });
    // The sweep removed the removed segments' chunks and kept the others, which read back.
    const index = await ChunkIndex.load(repo.storage);
    expect(index.size).toBe(3);
    for (const s of kept) expect((await segments.entries(s, index)).length).toBe(10);
    const after = await pitrWindow(repo, 'rs0');
    expect(after).toMatchObject({ restorableFrom: { t: 130, i: 1 }, restorableTo: end, gaps: [] });
    expect(after.replicaSets[0]!.contiguousFrom).toEqual({ t: 129, i: 1 });
  });

  it('a gap is reported and the window starts again after it; a chain that restarts without prev is a gap too', async () => {
    const repo = new Repository(new MemoryStorage());
    await repo.init();
    const segments = new OplogSegments(repo);
    const first = await capture(segments, 100, 119, 10, null);
    const gap = { from: first, to: { t: 140, i: 1 } };
    await capture(segments, 140, 159, 10, first, gap);
    await completeBackup(repo, 'b1', 1, { t: 110, i: 1 });
    await completeBackup(repo, 'b2', 2, { t: 145, i: 1 });
    const w = await pitrWindow(repo, 'rs0');
    expect(w.gaps).toEqual([{ replicaSet: 'rs0', ...gap }]);
    expect(w.restorableFrom).toEqual({ t: 145, i: 1 });
    // A later chain that does not name its predecessor: a gap from the last entry before it.
    await capture(segments, 170, 179, 10, null);
    expect(summarizeChain(await segments.list('rs0', 'rs0')).gaps).toEqual([gap, { from: { t: 159, i: 1 }, to: { t: 170, i: 1 } }]);
    expect((await pitrWindow(repo, 'rs0')).restorableFrom).toBeNull();
  });

  it('in an encrypted repository, segment records and chunks are ciphertext at rest and read back with the password', async () => {
    const storage = new MemoryStorage();
    const repo = new Repository(storage, { password: () => 'pitr-secret', scrypt: { N: 1024, r: 8, p: 1 } });
    await repo.init();
    expect(await repo.encrypted()).toBe(true);
    const segments = new OplogSegments(repo);
    await capture(segments, 100, 109, 10, null);
    const [path] = await segments.paths('rs0', 'rs0');
    // At rest: neither the record nor an entry's text is readable.
    expect((await storage.readFile(path!)).toString('latin1')).not.toContain('oplog-segment');
    for (const p of await storage.list('data')) expect((await storage.readFile(p)).includes(Buffer.from('entry 100.1'))).toBe(false);
    const [seg] = await segments.list('rs0', 'rs0');
    const entries = await segments.entries(seg!);
    expect(entries.map((e) => e.equals(entry(100 + entries.indexOf(e), 1)))).toEqual(Array(10).fill(true));
    // Another process with the wrong password reads nothing.
    const wrong = new OplogSegments(new Repository(storage, { password: () => 'wrong', scrypt: { N: 1024, r: 8, p: 1 } }));
    await expect(wrong.list('rs0', 'rs0')).rejects.toMatchObject({ code: 'REPO_PASSWORD_WRONG' });
  });
});
