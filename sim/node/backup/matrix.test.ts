/**
 * The single backup slot through the official driver (docs/psmdb-behaviour.md section 4.1): every row of the error
 * matrix (`$backupCursor`, `$backupCursorExtend`, `fsync {lock}`, `fsyncUnlock`, `createBackup` against an open
 * cursor, an fsync lock and a running hot backup), `createBackup`'s copy, the standalone case (no oplog fields,
 * 29144), incremental ids (section 5: names, two-slot rotation, unknown source, changed ranges from the blocks) and
 * the abort on `incrementalBackup` without a name.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { MongoClient } from 'mongodb';
import { Int32, Long, Timestamp, UUID } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SimCluster } from '../../cluster/cluster.ts';
import { StorageEngine } from '../../storage/index.ts';
import { simLogger } from '../../log.ts';
import { direct, eventually, startTestCluster } from '../../testkit.ts';
import { MongodNode } from '../node.ts';
import type { SimNode } from '../types.ts';
import { freePort } from '../../../lib/ports.ts';
import { backupCursorCommand, checkpoints, expectError, extend, killCursor, openBackup, run, stableCheckpoint, TYPED } from './testkit.ts';

let cluster: SimCluster;
let node: SimNode;
let c: MongoClient;
const tmp: string[] = [];

function tmpDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'cutpoint-backup-test-'));
  tmp.push(d);
  return d;
}

beforeAll(async () => {
  cluster = await startTestCluster({ replsetOnly: true, members: 2 });
  node = cluster.shards[0]!.localNodes[0]!;
  c = direct(node.address);
  await c.db('app').collection('things').insertMany(Array.from({ length: 50 }, (_, i) => ({ _id: i as never, v: i, pad: 'x'.repeat(200) })));
  await stableCheckpoint(node);
});

afterAll(async () => {
  await c?.close();
  await cluster?.stop();
  for (const d of tmp) fs.rmSync(d, { recursive: true, force: true });
});

const ts = new Timestamp({ t: 1, i: 1 });
const open = (spec: unknown = {}) => run(c, backupCursorCommand(spec));
const lock = () => run(c, { fsync: 1, lock: true });
const unlock = () => run(c, { fsyncUnlock: 1 });
const hot = (dir: string) => run(c, { createBackup: 1, backupDir: dir });
const backupOpen = async () => (await run(c, { serverStatus: 1 })).storageEngine.backupCursorOpen as boolean;

describe('the error matrix (section 4.1)', () => {
  it('with a backup cursor open', async () => {
    const b = await openBackup(c);
    await expectError(open(), 50886, 'The existing backup cursor must be closed before $backupCursor can succeed.');
    await expectError(lock(), 50884, 'The existing backup cursor must be closed before fsyncLock can succeed.');
    await expectError(hot(tmpDir()), 29102, 'The existing backup cursor must be closed before hot backup can be started.');
    await expectError(unlock(), 50888, 'The node is not fsyncLocked.');
    expect(await extend(c, b.metadata.backupId, ts)).not.toEqual([]); // proceeds
    await killCursor(c, b.id);
    expect(node.backup!.state).toBe('inactive');
  });

  it('fsyncLocked', async () => {
    const reply = await run(c, { fsync: 1, lock: true }, TYPED);
    expect(reply).toMatchObject({ info: 'now locked against writes, use db.fsyncUnlock() to unlock', seeAlso: 'http://dochub.mongodb.org/core/fsynccommand' });
    expect(reply.lockCount).toBeInstanceOf(Long);
    expect((reply.lockCount as Long).toNumber()).toBe(1);
    expect(await backupOpen()).toBe(false); // isBackupCursorOpen() is false while fsyncLocked
    expect(fs.existsSync(path.join(node.dbpath, 'WiredTiger.backup'))).toBe(true); // WiredTiger's beginBackup
    await expectError(open(), 50887, 'The node is currently fsyncLocked.');
    await expectError(extend(c, new UUID(), ts), 50887, 'The node is currently fsyncLocked.');
    await expectError(lock(), 50885, 'The node is already fsyncLocked.');
    await expectError(hot(tmpDir()), 29101, 'The node is fsyncLocked. fsyncUnlock must be called before hot backup can be started.');
    expect(await run(c, { fsyncUnlock: 1 }, TYPED)).toMatchObject({ info: 'fsyncUnlock completed', lockCount: Long.ZERO });
    expect(fs.existsSync(path.join(node.dbpath, 'WiredTiger.backup'))).toBe(false);
    await expectError(unlock(), 50888, 'The node is not fsyncLocked.');
    expect(await run(c, { fsync: 1 })).toMatchObject({ numFiles: 1 });
    await expectError(run(c, { fsync: 1, lock: true }, {}, 'app'), 13, 'fsync may only be run against the admin database.');
  });

  it('during a hot backup (createBackup held by a fail point)', async () => {
    const dest = tmpDir();
    await run(c, { configureFailPoint: 'simHangDuringCreateBackup', mode: 'alwaysOn' });
    const running = hot(dest);
    try {
      await eventually(() => node.backup!.state === 'hotBackup', 5000, 'createBackup to start');
      expect(await backupOpen()).toBe(false);
      await expectError(open(), 29098, "The running hot backup ('createBackup' command) must be completed before $backupCursor can succeed.");
      await expectError(extend(c, new UUID(), ts), 29099, "Hot backup ('createBackup' command) is currently in progress.");
      await expectError(lock(), 29097, "The running hot backup ('createBackup' command) must be completed before fsyncLock can succeed.");
      await expectError(hot(tmpDir()), 29103, "The running hot backup ('createBackup' command) must be completed before another hot backup can be started.");
    } finally {
      await run(c, { configureFailPoint: 'simHangDuringCreateBackup', mode: 'off' });
    }
    expect(await running).toMatchObject({ ok: 1 });
    expect(node.backup!.state).toBe('inactive');
    const copied = fs.readdirSync(dest);
    expect(copied).toEqual(expect.arrayContaining(['storage.bson', 'WiredTiger', 'WiredTiger.backup', 'journal', '_mdb_catalog.wt', 'sizeStorer.wt']));
    expect(copied).not.toContain('WiredTiger.turtle');
    // The copy is a dbpath: it opens (rebuilt from WiredTiger.backup) with the data of the pinned checkpoint.
    const engine = StorageEngine.open({ dbpath: dest, mode: 'standalone', fsync: false });
    try {
      expect(engine.recovery.restoredFromBackup).toBe(true);
      expect(engine.count('app.things')).toBe(50);
    } finally {
      engine.close();
    }
  });

  it("createBackup's own refusals", async () => {
    await expect(hot('relative/dir')).rejects.toThrow('Destination path must be absolute');
    await expect(run(c, { createBackup: 1 })).rejects.toThrow("one of 'backupDir', 'archive' or 's3' parameters must be specified");
    await expectError(run(c, { createBackup: 1, backupDir: tmpDir() }, {}, 'app'), 13, 'createBackup may only be run against the admin database.');
    expect(node.backup!.state).toBe('inactive');
  });
});

describe('a standalone (no replication)', () => {
  it('reports no oplog fields nor checkpointTimestamp, and refuses to extend (29144, after 29094)', async () => {
    const dbpath = tmpDir();
    const standalone = new MongodNode({ port: await freePort(), dbpath, log: simLogger(), setParameters: { simFsync: false, simLogFileSize: 64 * 1024 } });
    await standalone.start();
    const s = direct(standalone.address);
    try {
      await s.db('app').collection('t').insertOne({ _id: 1 as never });
      const b = await openBackup(s, {}, TYPED);
      expect(Object.keys(b.metadata)).toEqual(['backupId', 'dbpath', 'disableIncrementalBackup', 'incrementalBackup', 'blockSize']);
      expect(b.files.map((f) => f.filename as string).at(-1)).toBe(`${dbpath}/WiredTiger`);
      await expectError(extend(s, new UUID(), ts), 29094);
      await expectError(extend(s, b.metadata.backupId, ts), 29144, 'Cannot extend backup cursor when replication is not enabled');
      await killCursor(s, b.id);
    } finally {
      await s.close();
      await standalone.stop();
    }
  });
});

describe('incremental backups (section 5)', () => {
  const MB = 1024 * 1024;

  it('base and incremental listings, granularity fixed by the first, names, unknown source, two-slot rotation, force_stop', async () => {
    const base = await openBackup(c, { incrementalBackup: true, thisBackupName: 'A', blockSize: new Int32(1) }, TYPED);
    expect(Object.keys(base.metadata).slice(-4)).toEqual(['disableIncrementalBackup', 'incrementalBackup', 'blockSize', 'thisBackupName']);
    expect(base.metadata.thisBackupName).toBe('A');
    for (const f of base.files) {
      expect(Object.keys(f)).toEqual(['filename', 'offset', 'length', 'fileSize']);
      expect((f.offset as Long).toNumber()).toBe(0);
      expect((f.length as Long).toNumber()).toBe((f.fileSize as Long).toNumber());
    }
    await killCursor(c, base.id);
    await expectError(open({ incrementalBackup: true, thisBackupName: 'A' }), 2, '22: Invalid argument');
    await expectError(open({ incrementalBackup: true, thisBackupName: 'X', srcBackupName: 'Z' }), 8, '2: No such file or directory');

    // Change some documents (not their _ids): the collection's file changes, its _id index does not.
    const coll = c.db('app').collection('things');
    for (let i = 0; i < 10; i++) await coll.updateOne({ _id: i as never }, { $set: { v: `changed ${i}` } });
    await checkpoints(node, 2);
    const ident = node.engine.getCollection('app.things')!.ident;
    const incr = await openBackup(c, { incrementalBackup: true, thisBackupName: 'B', srcBackupName: 'A', blockSize: new Int32(8) }, TYPED);
    expect(Object.keys(incr.metadata).slice(-2)).toEqual(['thisBackupName', 'srcBackupName']);
    expect((incr.metadata.blockSize as Int32).value).toBe(8); // echoed, though the granularity stays 1 MB
    const byName = (suffix: string) => incr.files.filter((f) => (f.filename as string).endsWith(suffix));
    const collection = byName(`/${ident}.wt`);
    expect(collection.length).toBeGreaterThan(0);
    for (const r of collection) {
      expect(Object.keys(r)).toEqual(['filename', 'offset', 'length', 'fileSize']);
      expect((r.offset as Long).toNumber() % MB).toBe(0);
      expect((r.length as Long).toNumber() % MB).toBe(0);
      // Aligned to the granularity: past the end of this small file.
      expect((r.offset as Long).toNumber() + (r.length as Long).toNumber()).toBeGreaterThan((r.fileSize as Long).toNumber());
    }
    const index = byName(`/${node.engine.getCollection('app.things')!.idIndexIdent!}.wt`);
    expect(index).toHaveLength(1);
    expect(Object.keys(index[0]!)).toEqual(['filename', 'fileSize']); // unchanged
    for (const log of incr.files.filter((f) => (f.filename as string).includes('/journal/'))) {
      expect((log.length as Long).toNumber()).toBe((log.fileSize as Long).toNumber()); // logs come back whole
    }
    await expectError(extend(c, new UUID(), ts), 29094);
    await killCursor(c, incr.id);
    expect(node.backup!.incremental.names()).toEqual(['A', 'B']);

    // Two slots: C from B takes A's slot, so A can no longer be a source.
    await killCursor(c, (await openBackup(c, { incrementalBackup: true, thisBackupName: 'C', srcBackupName: 'B' })).id);
    expect(node.backup!.incremental.names()).toEqual(['C', 'B']);
    await expectError(open({ incrementalBackup: true, thisBackupName: 'D', srcBackupName: 'A' }), 8, '2: No such file or directory');
    await killCursor(c, (await openBackup(c, { incrementalBackup: true, thisBackupName: 'D', srcBackupName: 'C' })).id);
    expect(node.backup!.incremental.names()).toEqual(['C', 'D']);

    // disableIncrementalBackup forgets everything when its cursor closes.
    const stop = await openBackup(c, { disableIncrementalBackup: true });
    expect(node.backup!.incremental.names()).toEqual(['C', 'D']);
    await killCursor(c, stop.id);
    expect(node.backup!.incremental.names()).toEqual([]);
    await expectError(open({ incrementalBackup: true, thisBackupName: 'E', srcBackupName: 'D' }), 8, '2: No such file or directory');
  });

  it('incrementalBackup without thisBackupName aborts the node (invariant): no reply, the connection drops', async () => {
    const secondary = cluster.shards[0]!.localNodes[1]!;
    const s = direct(secondary.address);
    try {
      await expect(run(s, backupCursorCommand({ incrementalBackup: true }))).rejects.toThrow();
      await eventually(() => !secondary.up, 5000, 'the node to abort');
    } finally {
      await s.close();
    }
    const restarted = await cluster.restartMember(secondary.address);
    expect(restarted.up).toBe(true);
  });
});

