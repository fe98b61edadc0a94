import fs from 'node:fs';
import path from 'node:path';
import type { Timestamp } from 'mongodb';
import { afterEach, describe, expect, it } from 'vitest';
import { TRUNCATE_POINT_ID, TRUNCATE_POINT_NS } from './catalog.ts';
import type { StorageEngine } from './engine.ts';
import { SMALL, balances, cleanup, copyFile, copyListed, create, openEngine, tmpDir, ts, write } from './testkit.ts';

const dirs: string[] = [];
afterEach(() => cleanup(dirs));

function dir(): string {
  const d = tmpDir();
  dirs.push(d);
  return d;
}

const NS = 'bank.accounts';
const PAD = 'x'.repeat(60);

/** A replica-set primary's bank workload with deterministic updates and a checkpoint after each round. */
class Workload {
  next = 1;
  private seed = 7;
  constructor(readonly engine: StorageEngine) {}

  setup(accounts: number): void {
    create(this.engine, this.next++, NS);
    for (let a = 0; a < accounts; a++) write(this.engine, this.next++, 'i', NS, { _id: a, v: 1000, pad: PAD });
    this.stableCheckpoint();
  }

  /** `rounds` rounds of `updates` updates; each round ends with stable = newest write and a checkpoint. */
  churn(rounds: number, updates: number, accounts = 40): void {
    for (let r = 0; r < rounds; r++) {
      for (let u = 0; u < updates; u++) {
        this.seed = (this.seed * 1103515245 + 12345) % 2 ** 31;
        const id = this.seed % accounts;
        write(this.engine, this.next, 'u', NS, { _id: id, v: this.next, pad: PAD });
        this.next++;
      }
      this.stableCheckpoint();
    }
  }

  stableCheckpoint(): void {
    this.engine.setStableTimestamp(ts(this.next - 1));
    this.engine.checkpoint();
  }

  /** The last write's timestamp. */
  get top(): Timestamp {
    return ts(this.next - 1);
  }
}

/** Generation written in each block's header, by block number (block 0 is the descriptor). */
function generations(file: string): number[] {
  const buf = fs.readFileSync(file);
  const gens: number[] = [];
  for (let b = 1; b * SMALL.blockSize < buf.length; b++) gens.push(Number(buf.readBigUInt64LE(b * SMALL.blockSize + 12)));
  return gens;
}

/** The record-store file of `ns` (the oplog, created first, is a collection too). */
function collectionFile(engine: StorageEngine, dbpath: string, ns = NS): string {
  return path.join(dbpath, `${engine.getCollection(ns)?.ident ?? 'missing'}.wt`);
}

function setTruncatePoint(engine: StorageEngine, point: Timestamp): void {
  if (!engine.getCollection(TRUNCATE_POINT_NS)) engine.createCollection(TRUNCATE_POINT_NS);
  engine.replace(TRUNCATE_POINT_NS, { _id: TRUNCATE_POINT_ID, oplogTruncateAfterPoint: point }, { upsert: true });
}

describe('checkpoints reuse blocks', () => {
  it('overwrites freed blocks with later generations, so the file stops growing', () => {
    const src = dir();
    const engine = openEngine(src);
    const w = new Workload(engine);
    w.setup(40);
    const file = collectionFile(engine, src);
    const sizes: number[] = [];
    const firstGens = generations(file);
    for (let round = 0; round < 30; round++) {
      w.churn(1, 6);
      sizes.push(fs.statSync(file).size);
    }
    expect(sizes[29]).toBe(sizes[14]);
    const lastGens = generations(file);
    const reused = firstGens.filter((g, b) => (lastGens[b] ?? 0) > g);
    expect(reused.length).toBeGreaterThan(0);
    engine.close();
  });
});

describe('backups', () => {
  it('a copy taken while the checkpoint is pinned restores exactly, at the checkpoint and at a later point', () => {
    const src = dir();
    const engine = openEngine(src);
    const w = new Workload(engine);
    w.setup(40);
    w.churn(3, 10);
    const pinnedAt = w.top;
    const atCheckpoint = balances(engine, NS);
    engine.switchLog();
    const pin = engine.pinCheckpoint();
    expect(pin.timestamp).toEqual(pinnedAt);
    // The checkpoint's journal position is in the file before the switch, so both are listed.
    expect(pin.files.map((f) => f.kind)).toEqual([
      'log', 'log', 'data', 'data', 'data', 'data', 'data', 'data', 'backup', 'version',
    ]);
    expect(pin.files.filter((f) => f.kind === 'data').map((f) => f.path)).toEqual([
      'WiredTigerHS.wt', '_mdb_catalog.wt', expect.stringMatching(/^collection-/), expect.stringMatching(/^collection-/),
      expect.stringMatching(/^index-/), 'sizeStorer.wt',
    ]);
    expect(fs.existsSync(path.join(src, 'WiredTiger.backup'))).toBe(true);

    // The node keeps working while the copy runs: files change and grow under the copier.
    w.churn(8, 10);
    const target = w.top;
    const atTarget = balances(engine, NS);
    w.churn(2, 10);
    const sizeNow = fs.statSync(path.join(src, pin.files.find((f) => f.path.startsWith('collection-'))?.path ?? '')).size;
    expect(sizeNow).toBeGreaterThan(pin.files.find((f) => f.path.startsWith('collection-'))?.size ?? Infinity);

    const dest = dir();
    copyListed(src, dest, pin);
    for (const log of engine.listLogFiles()) copyFile(src, dest, log.path); // $backupCursorExtend's files
    fs.copyFileSync(path.join(src, 'storage.bson'), path.join(dest, 'storage.bson'));
    const dest2 = dir();
    fs.cpSync(dest, dest2, { recursive: true });
    pin.release();
    expect(fs.existsSync(path.join(src, 'WiredTiger.backup'))).toBe(false);
    engine.close();

    const restored = openEngine(dest, 'standalone');
    expect(restored.recovery.restoredFromBackup).toBe(true);
    expect(restored.recovery.checkpoint.generation).toBe(pin.generation);
    expect(balances(restored, NS)).toEqual(atCheckpoint);
    expect(fs.existsSync(path.join(dest, 'WiredTiger.backup'))).toBe(false);
    restored.close();

    // PBM's sequence: truncate point = the common timestamp, recoverFromOplogAsStandalone, unstable shutdown.
    const step3 = openEngine(dest2, 'standalone');
    setTruncatePoint(step3, target);
    step3.close();
    const step4 = openEngine(dest2, 'recoverFromOplogAsStandalone', { takeUnstableCheckpointOnShutdown: true });
    expect(balances(step4, NS)).toEqual(atTarget);
    step4.close();
    const step5 = openEngine(dest2, 'standalone');
    expect(balances(step5, NS)).toEqual(atTarget);
    expect(step5.oplogLast()?.ts).toEqual(target);
    step5.close();
  });

  it('a copy of the data files taken after release and later checkpoints fails to open, naming file, block and generation', () => {
    const src = dir();
    const engine = openEngine(src);
    const w = new Workload(engine);
    w.setup(40);
    w.churn(3, 10);
    engine.switchLog();
    const pin = engine.pinCheckpoint();
    const dest = dir();
    // The metadata and the journal were copied in time; the cursor then expired before the data files were.
    copyListed(src, dest, pin, ['backup', 'version', 'log']);
    w.churn(2, 10);
    pin.release();
    w.churn(6, 10);
    copyListed(src, dest, pin, ['data']);
    for (const log of engine.listLogFiles()) copyFile(src, dest, log.path);
    engine.close();

    expect(() => openEngine(dest, 'standalone')).toThrow(
      /^collection-\d+-\d+\.wt block \d+: expected generation \d+, found generation \d+ \(block reused by a later checkpoint\)$/,
    );
    try {
      openEngine(dest, 'standalone');
    } catch (err) {
      expect(err).toMatchObject({ name: 'StorageError', code: 301, codeName: 'DataCorruptionDetected' });
    }
  });

  it('a copy that skips the extended journal cannot reach the common timestamp', () => {
    const src = dir();
    const engine = openEngine(src);
    const w = new Workload(engine);
    w.setup(20);
    engine.switchLog();
    const pin = engine.pinCheckpoint();
    const dest = dir();
    copyListed(src, dest, pin);
    w.churn(4, 10, 20);
    engine.switchLog(); // $backupCursorExtend: its log files are the ones this copy skips
    const common = w.top;
    pin.release();
    engine.close();
    const step3 = openEngine(dest, 'standalone');
    setTruncatePoint(step3, common);
    step3.close();
    expect(() => openEngine(dest, 'recoverFromOplogAsStandalone', { takeUnstableCheckpointOnShutdown: true })).toThrow(
      /^journal does not reach the truncate point: the oplog ends at Timestamp\(100, \d+\) but oplogTruncateAfterPoint is Timestamp\(100, \d+\)/,
    );
  });

  it('a restore without WiredTiger.backup refuses to start instead of starting empty', () => {
    const src = dir();
    const engine = openEngine(src);
    new Workload(engine).setup(10);
    engine.switchLog();
    const pin = engine.pinCheckpoint();
    const dest = dir();
    copyListed(src, dest, pin, ['log', 'data', 'version']);
    pin.release();
    engine.close();
    expect(() => openEngine(dest, 'standalone')).toThrow(/WiredTiger\.turtle is missing and there is no WiredTiger\.backup/);
  });

  it('a flipped byte in a referenced block fails the first read of its table naming the file and block, not the start', () => {
    const src = dir();
    const engine = openEngine(src, 'standalone');
    engine.createCollection('test.c');
    engine.createCollection('test.other');
    for (let i = 0; i < 30; i++) engine.insert('test.c', { _id: i, pad: PAD });
    engine.insert('test.other', { _id: 1 });
    const file = collectionFile(engine, src, 'test.c');
    engine.close();
    const fd = fs.openSync(file, 'r+');
    const byte = Buffer.alloc(1);
    fs.readSync(fd, byte, 0, 1, SMALL.blockSize + 100);
    byte[0] = (byte[0] as number) ^ 0xff;
    fs.writeSync(fd, byte, 0, 1, SMALL.blockSize + 100);
    fs.closeSync(fd);
    // The start reads the block headers only (intact here); the page is checksummed when it is first read.
    const reopened = openEngine(src, 'standalone');
    expect(reopened.count('test.other')).toBe(1);
    const message = new RegExp(`^${path.basename(file)} block 1: checksum mismatch \\(expected generation \\d+\\)$`);
    expect(() => reopened.count('test.c')).toThrow(message);
    expect(() => reopened.findById('test.c', 1)).toThrow(expect.objectContaining({ code: 301, codeName: 'DataCorruptionDetected' }));
    // A checkpoint of the unread, damaged table keeps its pages as they are: the damage is still there to find.
    reopened.checkpoint();
    reopened.close();
    const again = openEngine(src, 'standalone');
    expect(() => again.count('test.c')).toThrow(message);
    again.close();
  });

  it('a missing data file fails startup naming it', () => {
    const src = dir();
    const engine = openEngine(src, 'standalone');
    engine.createCollection('test.c');
    engine.insert('test.c', { _id: 1 });
    engine.close();
    const file = fs.readdirSync(src).find((n) => n.startsWith('index-')) as string;
    fs.rmSync(path.join(src, file));
    expect(() => openEngine(src, 'standalone')).toThrow(`${file}: file is missing (referenced by checkpoint generation`);
  });

  it('a crash while pinned discards WiredTiger.backup at the next start instead of restoring from it', () => {
    const src = dir();
    const engine = openEngine(src);
    const w = new Workload(engine);
    w.setup(10);
    engine.pinCheckpoint();
    w.churn(2, 5, 10);
    const latest = balances(engine, NS);
    engine.crash();
    expect(fs.existsSync(path.join(src, 'WiredTiger.backup'))).toBe(true);
    const again = openEngine(src);
    expect(again.recovery.discardedBackupFile).toBe(true);
    expect(again.recovery.restoredFromBackup).toBe(false);
    expect(balances(again, NS)).toEqual(latest);
    expect(fs.existsSync(path.join(src, 'WiredTiger.backup'))).toBe(false);
    expect(fs.existsSync(path.join(src, 'ongoingBackup.lock'))).toBe(false);
    again.close();
  });

  it('allows one pin at a time', () => {
    const engine = openEngine(dir());
    const pin = engine.pinCheckpoint();
    expect(() => engine.pinCheckpoint()).toThrow(expect.objectContaining({ code: 314 }));
    pin.release();
    engine.pinCheckpoint().release();
    engine.close();
  });
});

describe('journal files', () => {
  it('are removed after checkpoints, but not while a checkpoint is pinned', () => {
    const src = dir();
    const engine = openEngine(src);
    const w = new Workload(engine);
    w.setup(10);
    engine.switchLog();
    engine.switchLog();
    w.churn(1, 3, 10);
    expect(engine.listLogFiles().map((f) => f.number)).toEqual([3]);

    const pin = engine.pinCheckpoint();
    expect(pin.files.filter((f) => f.kind === 'log').map((f) => f.path)).toEqual(['journal/WiredTigerLog.0000000003']);
    engine.switchLog();
    w.churn(1, 3, 10);
    engine.switchLog();
    w.churn(1, 3, 10);
    expect(engine.listLogFiles().map((f) => f.number)).toEqual([3, 4, 5]);
    pin.release();
    w.churn(1, 3, 10);
    expect(engine.listLogFiles().map((f) => f.number)).toEqual([5]);
    expect(engine.listLogFiles()[0]?.size).toBe(SMALL.logFileSize);
    engine.close();
  });

  it('a missing log file (at the checkpoint position, or a gap) fails startup naming it', () => {
    const src = dir();
    const engine = openEngine(src);
    const w = new Workload(engine);
    w.setup(5);
    write(engine, w.next++, 'u', NS, { _id: 1, v: 1 });
    engine.switchLog();
    write(engine, w.next++, 'u', NS, { _id: 2, v: 2 });
    engine.switchLog();
    write(engine, w.next++, 'u', NS, { _id: 3, v: 3 });
    const first = engine.lastCheckpoint().journal.file;
    engine.crash();
    const gap = dir();
    fs.cpSync(src, gap, { recursive: true });

    fs.rmSync(path.join(src, 'journal', `WiredTigerLog.${String(first).padStart(10, '0')}`));
    expect(() => openEngine(src)).toThrow(
      `journal/WiredTigerLog.${String(first).padStart(10, '0')} is missing: recovery from checkpoint generation`,
    );
    fs.rmSync(path.join(gap, 'journal', `WiredTigerLog.${String(first + 1).padStart(10, '0')}`));
    expect(() => openEngine(gap)).toThrow(`journal/WiredTigerLog.${String(first + 1).padStart(10, '0')} is missing`);
  });
});
