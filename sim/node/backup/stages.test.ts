/**
 * `$backupCursor` and `$backupCursorExtend` through the official driver over TCP, to the letter of
 * docs/psmdb-behaviour.md: option parsing (first bad field wins, int32-only blockSize), placement, namespace, read
 * concern and transactions; metadata field order and BSON types; files in WiredTiger's order with absolute paths and
 * no storage.bson; the tailable cursor; extend's validation, order of checks and cumulative results.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Document, MongoClient } from 'mongodb';
import { Binary, Double, Int32, Long, Timestamp, UUID } from 'mongodb';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { SimCluster } from '../../cluster/cluster.ts';
import { direct, eventually, startTestCluster } from '../../testkit.ts';
import { compareTs } from '../clock.ts';
import type { SimNode } from '../types.ts';
import {
  backupCursorCommand,
  expectError,
  extend,
  extendCommand,
  getMore,
  isLogFile,
  killCursor,
  openBackup,
  run,
  stableCheckpoint,
  TYPED,
} from './testkit.ts';

let cluster: SimCluster;
let node: SimNode;
let c: MongoClient;

beforeAll(async () => {
  cluster = await startTestCluster({ replsetOnly: true, members: 2 });
  node = cluster.shards[0]!.localNodes[0]!;
  c = direct(node.address);
  await c.db('app').collection('things').insertMany(Array.from({ length: 20 }, (_, i) => ({ _id: i as never, v: i })));
  await stableCheckpoint(node);
});

afterAll(async () => {
  await c?.close();
  await cluster?.stop();
});

afterEach(async () => {
  // A failed test must not leave the slot taken for the next one.
  const open = node.backup!.openBackup;
  if (open) node.backup!.closeBackupCursor(open.backupId);
  if (node.backup!.state === 'fsyncLocked') await node.backup!.fsyncUnlock();
  expect(node.backup!.state).toBe('inactive');
});

const aggregate = (spec: unknown, extra: Document = {}) => run(c, { ...backupCursorCommand(spec), ...extra });

describe('$backupCursor options (section 1.1)', () => {
  const prefix = "The '";
  it('rejects each bad field with its code and message', async () => {
    await expectError(aggregate(1), 9, '$backupCursor parameters must be specified in an object, but found: int');
    await expectError(aggregate('x'), 9, '$backupCursor parameters must be specified in an object, but found: string');
    await expectError(aggregate({ foo: true }), 9, "Unrecognized option 'foo' in $backupCursor stage");
    await expectError(
      aggregate({ disableIncrementalBackup: 1 }),
      14,
      `${prefix}disableIncrementalBackup' parameter of the $backupCursor stage must be a boolean value, but found: int`,
    );
    await expectError(
      aggregate({ incrementalBackup: 'yes' }),
      14,
      `${prefix}incrementalBackup' parameter of the $backupCursor stage must be a boolean value, but found: string`,
    );
    await expectError(
      aggregate({ blockSize: new Double(16) }),
      14,
      `${prefix}blockSize' parameter of the $backupCursor stage must be an integer value, but found: double`,
    );
    await expectError(
      aggregate({ blockSize: Long.fromNumber(16) }),
      14,
      `${prefix}blockSize' parameter of the $backupCursor stage must be an integer value, but found: long`,
    );
    await expectError(aggregate({ blockSize: 1.5 }), 14, /must be an integer value, but found: double$/);
    await expectError(
      aggregate({ thisBackupName: 5 }),
      14,
      `${prefix}thisBackupName' parameter of the $backupCursor stage must be a string value, but found: int`,
    );
    await expectError(
      aggregate({ srcBackupName: true }),
      14,
      `${prefix}srcBackupName' parameter of the $backupCursor stage must be a string value, but found: bool`,
    );
    await expectError(
      aggregate({ incrementalBackup: true, disableIncrementalBackup: true }),
      72,
      "'incrementalBackup' and 'disableIncrementalBackup' parameters are mutually exclusive. Cannot enable both",
    );
    await expectError(
      aggregate({ thisBackupName: 'a' }),
      72,
      "'thisBackupName' and 'srcBackupName' parameters are only allowed when 'incrementalBackup' is true",
    );
    await expectError(aggregate({ srcBackupName: 'a', incrementalBackup: false }), 72, /only allowed when 'incrementalBackup' is true$/);
    expect(node.backup!.state).toBe('inactive');
  });

  it('checks the fields in the order sent: the first bad field wins, type errors before the 72s', async () => {
    await expectError(aggregate({ foo: 1, blockSize: new Double(1) }), 9, "Unrecognized option 'foo' in $backupCursor stage");
    await expectError(aggregate({ blockSize: new Double(1), foo: 1 }), 14, /'blockSize'/);
    await expectError(aggregate({ incrementalBackup: true, disableIncrementalBackup: true, thisBackupName: 7 }), 14, /'thisBackupName'/);
    await expectError(aggregate({ thisBackupName: 'n', srcBackupName: 'm', blockSize: 'x' }), 14, /'blockSize'/);
  });

  it('does not validate blockSize unless incremental; WiredTiger then refuses a bad granularity (2 BadValue 22)', async () => {
    const b = await openBackup(c, { blockSize: new Int32(0) });
    expect(b.metadata.blockSize).toBe(0);
    await killCursor(c, b.id);
    await expectError(aggregate({ incrementalBackup: true, thisBackupName: 'g0', blockSize: new Int32(0) }), 2, '22: Invalid argument');
    await expectError(aggregate({ incrementalBackup: true, thisBackupName: 'g1', blockSize: new Int32(4096) }), 2, '22: Invalid argument');
    expect(node.backup!.incremental.names()).toEqual([]);
  });
});

describe('placement, namespace, read concern, transactions (section 1.2)', () => {
  it('must be the first stage of {aggregate: 1}', async () => {
    await expectError(
      run(c, { aggregate: 'things', pipeline: [{ $match: {} }, { $backupCursor: {} }], cursor: {} }, {}, 'app'),
      40602,
      '$backupCursor is only valid as the first stage in a pipeline.',
    );
    await expectError(
      run(c, { aggregate: 1, pipeline: [{ $match: {} }, { $backupCursor: {} }], cursor: {} }),
      73,
      "{aggregate: 1} is not valid for '$match'; a collection is required.",
    );
    await expectError(
      run(c, { aggregate: 'things', pipeline: [{ $backupCursor: {} }], cursor: {} }, {}, 'app'),
      73,
      "'$backupCursor' can only be run with {aggregate: 1}",
    );
    await expectError(
      run(c, { aggregate: 'things', pipeline: [{ $backupCursorExtend: { backupId: new UUID(), timestamp: new Timestamp({ t: 1, i: 1 }) } }], cursor: {} }, {}, 'app'),
      73,
      "'$backupCursorExtend' can only be run with {aggregate: 1}",
    );
    await expectError(
      run(c, { aggregate: 1, pipeline: [{ $backupCursor: {} }, { $backupCursorExtend: {} }], cursor: {} }),
      72, // createFromBson of every stage comes first: the extend's missing backupId
      'Required parameter missing: backupId',
    );
    await expectError(run(c, { aggregate: 1, pipeline: [{ $backupCursor: {} }, { $bogus: 1 }], cursor: {} }), 40324, "Unrecognized pipeline stage name: '$bogus'");
    // Option errors come before the pipeline's validation.
    await expectError(run(c, { aggregate: 'things', pipeline: [{ $match: {} }, { $backupCursor: { foo: 1 } }], cursor: {} }, {}, 'app'), 9);
    await expectError(run(c, { aggregate: 'things', pipeline: [{ $backupCursor: { foo: 1 } }], cursor: {} }, {}, 'app'), 9);
  });

  it('runs on any database: the cursor namespace follows it', async () => {
    const reply = await run(c, backupCursorCommand({}, { batchSize: 0 }), {}, 'test');
    expect(reply.cursor.ns).toBe('test.$cmd.aggregate');
    await run(c, { killCursors: '$cmd.aggregate', cursors: [reply.cursor.id] }, {}, 'test');
  });

  it("accepts readConcern 'local' and 'majority' only; refuses transactions (263)", async () => {
    for (const level of ['snapshot', 'available', 'linearizable']) {
      await expectError(
        aggregate({}, { readConcern: { level } }),
        72,
        `Aggregation stage $backupCursor cannot run with a readConcern other than 'local' or 'majority'. Current readConcern: ${level}`,
      );
    }
    await expectError(
      run(c, extendCommand(new UUID(), new Timestamp({ t: 1, i: 1 }), { readConcern: { level: 'snapshot' } })),
      72,
      /^Aggregation stage \$backupCursorExtend cannot run with a readConcern other than/,
    );
    for (const level of ['local', 'majority']) {
      const reply = await aggregate({}, { readConcern: { level } });
      await killCursor(c, reply.cursor.id);
    }
    await expectError(
      aggregate({}, { txnNumber: Long.fromNumber(1), autocommit: false, startTransaction: true }),
      263,
      'Operation not permitted in transaction :: caused by :: Aggregation stage $backupCursor cannot run within a multi-document transaction.',
    );
  });
});

describe('the result (section 2)', () => {
  it('metadata: fields in order with their BSON types, oplogEnd the last applied optime', async () => {
    const before = (await run(c, { hello: 1 })).lastWrite.opTime.ts as Timestamp;
    const b = await openBackup(c, {}, TYPED);
    const after = (await run(c, { hello: 1 })).lastWrite.opTime.ts as Timestamp;
    const m = b.metadata;
    expect(Object.keys(m)).toEqual([
      'backupId', 'dbpath', 'oplogStart', 'oplogEnd', 'checkpointTimestamp', 'disableIncrementalBackup', 'incrementalBackup', 'blockSize',
    ]);
    expect(m.backupId).toBeInstanceOf(Binary);
    expect((m.backupId as Binary).sub_type).toBe(4);
    expect((m.backupId as Binary).length()).toBe(16);
    expect(m.dbpath).toBe(node.dbpath);
    for (const k of ['oplogStart', 'oplogEnd']) {
      expect(Object.keys(m[k] as Document)).toEqual(['ts', 't']);
      expect((m[k] as Document).ts).toBeInstanceOf(Timestamp);
      expect((m[k] as Document).t).toBeInstanceOf(Long);
      expect((m[k] as Document).t).not.toBeInstanceOf(Timestamp);
    }
    const start = m.oplogStart.ts as Timestamp;
    const end = m.oplogEnd.ts as Timestamp;
    const ckpt = m.checkpointTimestamp as Timestamp;
    expect(ckpt).toBeInstanceOf(Timestamp);
    expect(compareTs(start, ckpt)).toBeLessThanOrEqual(0);
    expect(compareTs(ckpt, end)).toBeLessThanOrEqual(0);
    expect(compareTs(before, end)).toBeLessThanOrEqual(0);
    expect(compareTs(end, after)).toBeLessThanOrEqual(0);
    expect(m.disableIncrementalBackup).toBe(false);
    expect(m.incrementalBackup).toBe(false);
    expect(m.blockSize).toBeInstanceOf(Int32);
    expect((m.blockSize as Int32).value).toBe(16);
    await killCursor(c, b.id);
  });

  it('files: logs first (a new one), then .wt in metadata order, WiredTiger.backup, WiredTiger; absolute; no storage.bson', async () => {
    const journal = path.join(node.dbpath, 'journal');
    const newestBefore = Math.max(...fs.readdirSync(journal).map((n) => Number(n.split('.')[1])));
    const b = await openBackup(c, {}, TYPED);
    const names = b.files.map((f) => f.filename as string);
    for (const f of b.files) {
      expect(Object.keys(f)).toEqual(['filename', 'fileSize']);
      expect(f.fileSize).toBeInstanceOf(Long);
      expect((f.filename as string).startsWith(`${node.dbpath}/`)).toBe(true);
      const size = fs.statSync(f.filename as string).size;
      expect((f.fileSize as Long).toNumber()).toBeLessThanOrEqual(size);
    }
    const rel = names.map((n) => n.slice(node.dbpath.length + 1));
    const logs = rel.filter((n) => n.startsWith('journal/'));
    expect(logs.length).toBeGreaterThan(0);
    expect(rel.slice(0, logs.length)).toEqual(logs);
    expect(logs.every((n) => /^journal\/WiredTigerLog\.\d{10}$/.test(n))).toBe(true);
    // Opening switched to a new log file; the one before it is the last listed (complete), the new one is an extend's.
    expect(Number(logs.at(-1)!.split('.')[1])).toBe(newestBefore);
    expect(fs.existsSync(path.join(journal, `WiredTigerLog.${String(newestBefore + 1).padStart(10, '0')}`))).toBe(true);
    const wt = rel.slice(logs.length, -2);
    expect(wt[0]).toBe('WiredTigerHS.wt');
    expect(wt[1]).toBe('_mdb_catalog.wt');
    expect(wt.at(-1)).toBe('sizeStorer.wt');
    expect(wt.slice(2, -1).every((n) => /^(collection|index)-.*\.wt$/.test(n))).toBe(true);
    expect([...wt].sort()).toEqual(wt);
    expect(rel.slice(-2)).toEqual(['WiredTiger.backup', 'WiredTiger']);
    for (const never of ['storage.bson', 'WiredTiger.wt', 'WiredTiger.turtle', 'WiredTiger.lock', 'mongod.lock', 'ongoingBackup.lock']) {
      expect(rel).not.toContain(never);
    }
    expect(fs.existsSync(path.join(node.dbpath, 'WiredTiger.backup'))).toBe(true);
    await killCursor(c, b.id);
    expect(fs.existsSync(path.join(node.dbpath, 'WiredTiger.backup'))).toBe(false);
  });
});

describe('the cursor (section 3)', () => {
  it('is tailable: empty batches after the list, the same id; maxTimeMS on getMore refused; killCursors frees the slot', async () => {
    const first = await aggregate({}, { cursor: { batchSize: 0 } });
    const id = first.cursor.id as Long;
    expect(first.cursor.firstBatch).toEqual([]);
    expect(id.isZero()).toBe(false);
    expect((await run(c, { serverStatus: 1 })).storageEngine.backupCursorOpen).toBe(true);
    const two = (await getMore(c, id, {}, { batchSize: 2 })).cursor;
    expect(two.nextBatch).toHaveLength(2);
    expect(Object.keys(two.nextBatch[0])).toEqual(['metadata']);
    const rest = (await getMore(c, id)).cursor;
    expect(rest.nextBatch.length).toBeGreaterThan(3);
    expect(rest.nextBatch.at(-1).filename).toBe(`${node.dbpath}/WiredTiger`);
    for (let i = 0; i < 3; i++) {
      const empty = (await getMore(c, id)).cursor;
      expect(empty.nextBatch).toEqual([]);
      expect(Long.fromValue(empty.id).equals(id)).toBe(true);
      expect(empty.ns).toBe('admin.$cmd.aggregate');
    }
    await expectError(getMore(c, id, {}, { maxTimeMS: 1000 }), 2, 'cannot set maxTimeMS on getMore command for a non-awaitData cursor');
    expect((await getMore(c, id)).cursor.nextBatch).toEqual([]); // still open
    await expectError(aggregate({}), 50886, 'The existing backup cursor must be closed before $backupCursor can succeed.');
    const killed = await killCursor(c, id);
    expect(killed).toMatchObject({ cursorsKilled: [id], cursorsNotFound: [], cursorsAlive: [], cursorsUnknown: [] });
    expect((await run(c, { serverStatus: 1 })).storageEngine.backupCursorOpen).toBe(false);
    await expectError(getMore(c, id), 43);
    const again = await openBackup(c);
    await killCursor(c, again.id);
  });

  it('disableIncrementalBackup: metadata only, the slot held until the cursor closes', async () => {
    const b = await openBackup(c, { disableIncrementalBackup: true });
    expect(b.files).toEqual([]);
    expect(b.metadata.disableIncrementalBackup).toBe(true);
    expect((await run(c, { serverStatus: 1 })).storageEngine.backupCursorOpen).toBe(true);
    await expectError(aggregate({}), 50886);
    expect((await getMore(c, b.id)).cursor.nextBatch).toEqual([]);
    await killCursor(c, b.id);
    expect((await run(c, { serverStatus: 1 })).storageEngine.backupCursorOpen).toBe(false);
  });

  it('an idle cursor timed out (cursorTimeoutMillis) releases the backup', async () => {
    await run(c, { setParameter: 1, cursorTimeoutMillis: 500, enableTimeoutOfInactiveSessionCursors: true });
    try {
      const b = await openBackup(c);
      await eventually(async () => (await run(c, { serverStatus: 1 })).storageEngine.backupCursorOpen === false, 5000, 'the cursor to time out');
      expect(fs.existsSync(path.join(node.dbpath, 'WiredTiger.backup'))).toBe(false);
      await expectError(getMore(c, b.id), 43);
    } finally {
      await run(c, { setParameter: 1, cursorTimeoutMillis: 600_000, enableTimeoutOfInactiveSessionCursors: false });
    }
  });
});

describe('$backupCursorExtend (section 4.3)', () => {
  const ts = new Timestamp({ t: 1, i: 1 });
  it('validates its spec before anything else', async () => {
    const ext = (spec: unknown) => run(c, { aggregate: 1, pipeline: [{ $backupCursorExtend: spec }], cursor: {} });
    await expectError(ext(1), 9, '$backupCursorExtend parameters must be specified in an object, but found: int');
    await expectError(ext({ backupId: new UUID(), timestamp: ts, x: 1 }), 9, "Unrecognized option 'x' in $backupCursorExtend stage");
    await expectError(
      ext({ backupId: 'abc', timestamp: ts }),
      14,
      "The 'backupId' parameter of the $backupCursorExtend stage must be a UUID value, but found: string",
    );
    await expectError(
      ext({ backupId: new Binary(Buffer.alloc(16), 3), timestamp: ts }),
      14,
      "The 'backupId' parameter of the $backupCursorExtend stage must be a UUID value, but found: binData",
    );
    await expectError(
      ext({ backupId: new Binary(Buffer.alloc(5), 4), timestamp: ts }),
      14,
      "The 'backupId' parameter of the $backupCursorExtendstage failed to parse as UUID",
    );
    await expectError(
      ext({ backupId: new UUID(), timestamp: 5 }),
      14,
      "The 'timestamp' parameter of the $backupCursorExtend stage must be a Timestamp value, but found: int",
    );
    await expectError(ext({ timestamp: ts }), 72, 'Required parameter missing: backupId');
    await expectError(ext({ backupId: new UUID() }), 72, 'Required parameter missing: timestamp');
    // Then the state: nothing open.
    await expectError(ext({ backupId: new UUID(), timestamp: ts }), 50886, 'Cannot extend backup cursor because backup cursor is not open');
  });

  it('refuses another backupId (29094); returns the log files the stream did not, a new one each time, cumulatively, cursor id 0', async () => {
    const b = await openBackup(c);
    const streamLogs = b.files.map((f) => f.filename as string).filter(isLogFile);
    await expectError(extend(c, new UUID(), ts), 29094, 'backupId provided to $backupCursorExtend does not match active backup');
    await c.db('app').collection('things').updateOne({ _id: 1 as never }, { $set: { v: 'x' } });
    const t1 = (await run(c, { hello: 1 })).lastWrite.opTime.ts as Timestamp;
    const reply = await run(c, extendCommand(b.metadata.backupId, t1));
    expect(Long.fromValue(reply.cursor.id).isZero()).toBe(true);
    for (const d of reply.cursor.firstBatch as Document[]) expect(Object.keys(d)).toEqual(['filename']);
    const first = (reply.cursor.firstBatch as Document[]).map((d) => d.filename as string);
    expect(first.length).toBeGreaterThan(0);
    expect(first.every(isLogFile)).toBe(true);
    expect(first.filter((f) => streamLogs.includes(f))).toEqual([]);
    const newest = (names: string[]) => Math.max(...names.map((n) => Number(n.split('.').at(-1))));
    // The file the open switched to; the extend switched again, and that newest file is the next extend's.
    expect(newest(first)).toBe(newest(streamLogs) + 1);
    const journal = fs.readdirSync(path.join(node.dbpath, 'journal')).map((n) => Number(n.split('.')[1]));
    expect(Math.max(...journal)).toBe(newest(first) + 1);
    // A Date is read as its raw 64 bits: a tiny timestamp, already committed.
    const second = await extend(c, b.metadata.backupId, new Date(5) as unknown as Timestamp);
    expect(second.slice(0, first.length)).toEqual(first);
    expect(second).toHaveLength(first.length + 1);
    expect(newest(second)).toBe(newest(first) + 1);
    expect(second.filter((f) => streamLogs.includes(f))).toEqual([]);
    await killCursor(c, b.id);
    await expectError(extend(c, b.metadata.backupId, t1), 50886);
  });

  it('log files an extend returned before the stream reached them are not emitted by the stream', async () => {
    const reply = await aggregate({}, { cursor: { batchSize: 1 } });
    const id = reply.cursor.id as Long;
    const backupId = reply.cursor.firstBatch[0].metadata.backupId;
    const extended = await extend(c, backupId, ts);
    const rest = (await getMore(c, id)).cursor.nextBatch as Document[];
    const streamed = rest.map((d) => d.filename as string);
    expect(streamed.filter(isLogFile)).toEqual([]);
    expect(extended.length).toBeGreaterThanOrEqual(2);
    expect(streamed.at(-1)).toBe(`${node.dbpath}/WiredTiger`);
    await killCursor(c, id);
  });
});

describe('fault injection', () => {
  it('50915: the checkpoint raced the open; the slot is free again and a retry succeeds', async () => {
    expect((await run(c, { configureFailPoint: 'simBackupCursorCheckpointRace', mode: { times: 1 } })).count).toBe(0);
    const err = await aggregate({}).catch((e: unknown) => e as Document);
    expect(err).toMatchObject({ code: 50915, codeName: 'BackupCursorOpenConflictWithCheckpoint', message: 'A checkpoint took place while opening a backup cursor.' });
    expect((await run(c, { serverStatus: 1 })).storageEngine.backupCursorOpen).toBe(false);
    expect(fs.existsSync(path.join(node.dbpath, 'WiredTiger.backup'))).toBe(false);
    const b = await openBackup(c);
    await killCursor(c, b.id);
  });

  it('50915 consumes the thisBackupName: a retry under the same name is 2 BadValue 22', async () => {
    await run(c, { configureFailPoint: 'simBackupCursorCheckpointRace', mode: { times: 1 } });
    await expectError(aggregate({ incrementalBackup: true, thisBackupName: 'fp' }), 50915);
    await expectError(aggregate({ incrementalBackup: true, thisBackupName: 'fp' }), 2, '22: Invalid argument');
    const b = await openBackup(c, { incrementalBackup: true, thisBackupName: 'fp.1' });
    await killCursor(c, b.id);
    // Reset the incremental history for the tests after this one.
    await killCursor(c, (await openBackup(c, { disableIncrementalBackup: true })).id);
  });

  it('50917: the oplog rolled over while opening; 50919 and 50912 too', async () => {
    await run(c, { configureFailPoint: 'simBackupCursorOplogRollover', mode: 'alwaysOn' });
    await expectError(
      aggregate({}),
      50917,
      /^Oplog rolled over while establishing the backup cursor\. oplogStart: \{ ts: Timestamp\(\d+, \d+\), t: -?\d+ \} oplogEnd: \{ ts: Timestamp\(\d+, \d+\), t: -?\d+ \}$/,
    );
    await expectError(aggregate({}), 50917);
    expect((await run(c, { configureFailPoint: 'simBackupCursorOplogRollover', mode: 'off' })).count).toBe(2);
    await run(c, { configureFailPoint: 'backupCursorErrorAfterOpen', mode: { times: 1 } });
    await expectError(aggregate({}), 50919, 'Failpoint hit after opening the backup cursor.');
    await run(c, { configureFailPoint: 'simBackupCursorNoOplog', mode: { times: 1 } });
    await expectError(aggregate({}), 50912, 'No oplog records were found.');
    expect((await run(c, { serverStatus: 1 })).storageEngine.backupCursorOpen).toBe(false);
    await expect(run(c, { configureFailPoint: 'noSuchPoint', mode: 'alwaysOn' })).rejects.toThrow('noSuchPoint not found');
  });
});
