/**
 * Incremental `$backupCursor` rules (docs/psmdb-behaviour.md section 5) through the official driver, on a standalone
 * node whose checkpoints the test takes itself: granularity in MB with one chunk-aligned range per document, names
 * (empty, reserved, duplicate, unknown), the two slots, unchanged / dropped / new files, WiredTiger-owned files whole,
 * the metadata echo, and the history's persistence: a clean restart keeps it, a crash keeps the last checkpoint's (an
 * id registered after it is lost, one it replaced comes back), a base's close and `disableIncrementalBackup`'s close
 * are made durable by a checkpoint, and a restored copy starts with none.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Document, MongoClient , Long } from 'mongodb';
import { Int32 } from 'mongodb';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { backupCursorCommand, copyInto, expectError, killCursor, openBackup, run, startQuietNode, TYPED, type QuietNode } from './testkit.ts';

const MB = 1024 * 1024;
const tmp: string[] = [];
let current: QuietNode | undefined;

function tmpDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'cutpoint-incr-'));
  tmp.push(d);
  return d;
}

async function start(dbpath: string): Promise<QuietNode> {
  current = await startQuietNode(dbpath);
  return current;
}

/** Stops the running node (a crash with `crash`) and starts a new process on the same dbpath. */
async function restart(q: QuietNode, crash: boolean): Promise<QuietNode> {
  await q.halt(crash);
  current = undefined;
  return start(q.node.dbpath);
}

afterEach(async () => {
  await current?.halt();
  current = undefined;
});

afterAll(() => {
  for (const d of tmp) fs.rmSync(d, { recursive: true, force: true });
});

const n = (v: unknown): number => Number(v as number | Long);
const incr = (thisBackupName: string, srcBackupName?: string, blockSize = 1): Document => ({
  incrementalBackup: true,
  thisBackupName,
  ...(srcBackupName === undefined ? {} : { srcBackupName }),
  blockSize: new Int32(blockSize),
});

/** Opens, drains and closes a backup cursor; returns what it listed. */
async function backup(c: MongoClient, spec: Document): Promise<{ metadata: Document; files: Document[] }> {
  const b = await openBackup(c, spec, TYPED);
  await killCursor(c, b.id);
  return b;
}

function ident(q: QuietNode, ns: string): string {
  return `/${q.node.engine.getCollection(ns)!.ident}.wt`;
}

const docsOf = (files: Document[], suffix: string) => files.filter((f) => (f.filename as string).endsWith(suffix));

async function fill(c: MongoClient, coll: string, count: number, size: number, from = 0): Promise<void> {
  const docs = Array.from({ length: count }, (_, i) => ({ _id: (from + i) as never, pad: 'p'.repeat(size) }));
  await c.db('app').collection(coll).insertMany(docs);
}

describe('incremental listings', () => {
  it('a base lists every file whole; an incremental lists one granularity-sized, aligned chunk per document', async () => {
    const q = await start(tmpDir());
    await fill(q.client, 'big', 300, 8000); // ~2.4 MB: several 1 MB chunks
    q.node.engine.checkpoint();
    const base = await backup(q.client, incr('A'));
    expect(base.files.length).toBeGreaterThan(0);
    for (const f of base.files) {
      if (n(f.fileSize) === 0) expect(Object.keys(f)).toEqual(['filename', 'fileSize']);
      else expect([n(f.offset), n(f.length)]).toEqual([0, n(f.fileSize)]);
    }
    // Rewrite every document: every page moves to new blocks, over several chunks.
    await q.client.db('app').collection('big').updateMany({}, { $set: { pad: 'q'.repeat(8000) } });
    q.node.engine.checkpoint();
    const b = await backup(q.client, incr('B', 'A', 8)); // a later blockSize is echoed but ignored: 1 MB stays
    expect((b.metadata.blockSize as Int32).value).toBe(8);
    const ranges = docsOf(b.files, ident(q, 'app.big'));
    expect(ranges.length).toBeGreaterThan(1);
    const size = n(ranges[0]!.fileSize);
    expect(size).toBeGreaterThan(2 * MB);
    let last = -1;
    for (const r of ranges) {
      expect(Object.keys(r)).toEqual(['filename', 'offset', 'length', 'fileSize']);
      expect(n(r.offset) % MB).toBe(0);
      expect(n(r.length)).toBe(MB);
      expect(n(r.offset)).toBeGreaterThan(last);
      expect(n(r.offset)).toBeLessThan(size);
      last = n(r.offset);
    }
    // The file's last chunk is only partly inside it: its range runs past the end.
    const tail = ranges.find((r) => n(r.offset) + MB > size);
    expect(tail, 'the chunk holding the end of the file').toBeDefined();
  });

  it('unchanged files in the two-field form, dropped files absent, new files whole, WiredTiger-owned files whole', async () => {
    const q = await start(tmpDir());
    const c = q.client;
    for (const coll of ['kept', 'changed', 'dropped']) await fill(c, coll, 20, 100);
    q.node.engine.checkpoint();
    await backup(c, incr('A'));
    const files = { kept: ident(q, 'app.kept'), changed: ident(q, 'app.changed'), dropped: ident(q, 'app.dropped') };
    await c.db('app').collection('changed').updateOne({ _id: 3 as never }, { $set: { pad: 'changed' } });
    await c.db('app').collection('dropped').drop();
    await fill(c, 'created', 20, 100);
    q.node.engine.checkpoint();
    const b = await backup(c, incr('B', 'A'));
    const kept = docsOf(b.files, files.kept);
    expect(kept).toHaveLength(1);
    expect(Object.keys(kept[0]!)).toEqual(['filename', 'fileSize']); // offset 0, length 0: unchanged
    expect(n(kept[0]!.fileSize)).toBeGreaterThan(0);
    expect(docsOf(b.files, files.changed).map((r) => [n(r.offset), n(r.length)])).toEqual([[0, MB]]);
    expect(docsOf(b.files, files.dropped)).toEqual([]);
    const created = docsOf(b.files, ident(q, 'app.created'));
    expect(created.map((r) => [n(r.offset), n(r.length)])).toEqual([[0, n(created[0]!.fileSize)]]);
    const owned = b.files.filter((f) => /\/(journal\/WiredTigerLog\.\d+|WiredTiger\.backup|WiredTiger)$/.test(f.filename as string));
    expect(owned.filter((f) => (f.filename as string).includes('/journal/')).length).toBeGreaterThan(0);
    expect(owned.filter((f) => !(f.filename as string).includes('/journal/'))).toHaveLength(2);
    for (const f of owned) expect([n(f.offset ?? 0), n(f.length ?? 0)]).toEqual([0, n(f.fileSize)]);
  });

  it('names: empty registers nothing, an empty source fails the first batch, reserved and grouping names, duplicates, unknown sources', async () => {
    const q = await start(tmpDir());
    const c = q.client;
    const open = (spec: Document) => run(c, backupCursorCommand(spec));
    const names = () => q.node.backup!.incremental.names();
    // PSMDB does not check for an empty name (MongoDB Enterprise does): WiredTiger reads `this_id=""` as no id.
    const empty = await backup(c, incr(''));
    expect(empty.metadata.thisBackupName).toBe('');
    expect(empty.files.every((f) => n(f.offset ?? 0) === 0 && n(f.length ?? 0) === n(f.fileSize))).toBe(true);
    expect(names()).toEqual([]);
    await backup(c, incr('A'));
    expect(names()).toEqual(['A']);
    // `src_id=""` is no source to WiredTiger, yet PSMDB asks for each file's ranges: EINVAL at the first file.
    await expectError(open(incr('B', '')), 2, '22: Invalid argument');
    expect(q.node.backup!.state).toBe('inactive');
    // The open registered B, in the first slot not in use as a source: A's (`__backup_add_id`).
    expect(names()).toEqual(['B']);
    for (const bad of ['WiredTigerX', 'a:b', 'a,b', 'a"b', "a'b", 'a{b', 'a]b', 'a\\b']) {
      await expectError(open(incr(bad)), 2, '22: Invalid argument');
      await expectError(open(incr('fresh', bad)), 2, '22: Invalid argument'); // the source is checked first
    }
    await expectError(open(incr('B')), 2, '22: Invalid argument'); // "Incremental identifier already exists"
    await expectError(open(incr('B', 'B')), 2, '22: Invalid argument'); // the source, in use
    await expectError(open(incr('X', 'A')), 8, '2: No such file or directory'); // replaced
    await expectError(open(incr('X', 'nope')), 8, '2: No such file or directory');
    await expectError(open(incr('X', 'B', 0)), 2, '22: Invalid argument'); // granularity below 4KB
    await expectError(open(incr('X', 'B', 2049)), 2, '22: Invalid argument'); // above 2GB
    expect(names()).toEqual(['B']);
  });

  it('the metadata document echoes the options, in order', async () => {
    const q = await start(tmpDir());
    const base = await backup(q.client, incr('A', undefined, 4));
    const m = base.metadata;
    expect(Object.keys(m).slice(-4)).toEqual(['disableIncrementalBackup', 'incrementalBackup', 'blockSize', 'thisBackupName']);
    expect([m.disableIncrementalBackup, m.incrementalBackup, (m.blockSize as Int32).value, m.thisBackupName]).toEqual([false, true, 4, 'A']);
    const next = await backup(q.client, incr('B', 'A', 4));
    expect(Object.keys(next.metadata).slice(-2)).toEqual(['thisBackupName', 'srcBackupName']);
    expect([next.metadata.thisBackupName, next.metadata.srcBackupName]).toEqual(['B', 'A']);
  });
});

describe('incremental history across restarts', () => {
  it('a clean restart keeps the ids, their granularity and their changed ranges', async () => {
    let q = await start(tmpDir());
    await fill(q.client, 'things', 50, 200);
    q.node.engine.checkpoint();
    await backup(q.client, incr('A', undefined, 2));
    await backup(q.client, incr('B', 'A'));
    q = await restart(q, false);
    expect(q.node.backup!.incremental.names()).toEqual(['A', 'B']);
    const unchanged = await backup(q.client, incr('C', 'B', 1));
    const things = docsOf(unchanged.files, ident(q, 'app.things'));
    expect(things.map((f) => Object.keys(f))).toEqual([['filename', 'fileSize']]);
    await q.client.db('app').collection('things').updateOne({ _id: 1 as never }, { $set: { v: 1 } });
    q.node.engine.checkpoint();
    const changed = await backup(q.client, incr('D', 'C', 1));
    // The granularity came back with the ids: 2 MB, whatever this cursor asked for.
    expect(docsOf(changed.files, ident(q, 'app.things')).map((r) => [n(r.offset), n(r.length)])).toEqual([[0, 2 * MB]]);
  });

  it('a crash keeps the ids of the last checkpoint: one registered after it is lost, one it replaced comes back', async () => {
    let q = await start(tmpDir());
    await fill(q.client, 'things', 20, 100);
    q.node.engine.checkpoint();
    await backup(q.client, incr('A')); // a base's close takes a checkpoint: A is durable at once
    q = await restart(q, true);
    expect(q.node.backup!.incremental.names()).toEqual(['A']);
    await backup(q.client, incr('B', 'A'));
    q.node.engine.checkpoint(); // A and B durable
    await backup(q.client, incr('C', 'B')); // C takes A's slot, in memory only
    expect(q.node.backup!.incremental.names()).toEqual(['C', 'B']);
    await expectError(run(q.client, backupCursorCommand(incr('X', 'A'))), 8, '2: No such file or directory');
    q = await restart(q, true);
    expect(q.node.backup!.incremental.names()).toEqual(['A', 'B']);
    await expectError(run(q.client, backupCursorCommand(incr('D', 'C'))), 8, '2: No such file or directory');
    await backup(q.client, incr('D', 'A')); // A is a valid source again (in use, so D takes B's slot)
    expect(q.node.backup!.incremental.names()).toEqual(['A', 'D']);
  });

  it('disableIncrementalBackup drops the history when its cursor closes, durably', async () => {
    let q = await start(tmpDir());
    await backup(q.client, incr('A'));
    await backup(q.client, incr('B', 'A'));
    q.node.engine.checkpoint();
    const stop = await openBackup(q.client, { disableIncrementalBackup: true });
    expect(stop.files).toEqual([]);
    expect(q.node.backup!.incremental.names()).toEqual(['A', 'B']);
    await killCursor(q.client, stop.id);
    expect(q.node.backup!.incremental.names()).toEqual([]);
    q = await restart(q, true); // no checkpoint but the close's own
    expect(q.node.backup!.incremental.names()).toEqual([]);
    await expectError(run(q.client, backupCursorCommand(incr('C', 'B'))), 8, '2: No such file or directory');
  });

  it('a dbpath restored from a backup starts without ids', async () => {
    const q = await start(tmpDir());
    await fill(q.client, 'things', 20, 100);
    q.node.engine.checkpoint();
    await backup(q.client, incr('A'));
    const copy = tmpDir();
    const b = await openBackup(q.client, incr('B', 'A'), TYPED);
    for (const f of b.files) copyInto(q.node.dbpath, f.filename as string, copy);
    fs.copyFileSync(path.join(q.node.dbpath, 'storage.bson'), path.join(copy, 'storage.bson'));
    await killCursor(q.client, b.id);
    expect(q.node.backup!.incremental.names()).toEqual(['A', 'B']);
    await q.halt();
    current = undefined;
    const restored = await start(copy);
    expect(restored.node.backup!.incremental.names()).toEqual([]);
    expect(await restored.client.db('app').collection('things').countDocuments()).toBe(20);
  });
});
