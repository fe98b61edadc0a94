/**
 * The modified-block bitmaps an incremental cursor's ranges come from (sim/storage/backup-ids.ts `mods`, set by every
 * checkpoint in sim/storage/checkpoint.ts, persisted with the ids, completed at a start after a crash by
 * sim/storage/load.ts; listed by sim/node/backup/incremental.ts changedRanges). The oracle is the data files' own
 * block headers (sim/storage/blocks.ts): every block whose header names a generation after the id's, or is not a
 * data block's (torn), must lie in a marked chunk. A crash at each write of a checkpoint leaves blocks the durable
 * bitmaps do not know; the start must find them.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { BackupId } from '../../storage/index.ts';
import type { StorageEngine } from '../../storage/engine.ts';
import { cleanup, create, openEngine, SMALL, tmpDir, write } from '../../storage/testkit.ts';
import { changedRanges } from './incremental.ts';

const NS = 'app.big';
const GRANULARITY = 4 * 1024;
/** sim/storage/blocks.ts: a data block's magic ("SIMB") at 0, its generation at 12. */
const DATA_MAGIC = 0x53494d42;

const dirs: string[] = [];
afterEach(() => {
  vi.restoreAllMocks();
  cleanup(dirs);
});

function dataFiles(dir: string): string[] {
  return fs.readdirSync(dir).filter((f) => f.endsWith('.wt') && f !== 'WiredTiger.wt');
}

/** Registers one id at the engine's newest checkpoint, as an incremental `$backupCursor` does. */
function register(engine: StorageEngine, dir: string): void {
  const generation = engine.lastCheckpoint().generation;
  engine.backupIds = { granularity: GRANULARITY, slots: [{ name: 'a', generation, files: dataFiles(dir), mods: new Map() }] };
}

function id(engine: StorageEngine): BackupId {
  return engine.backupIds!.slots[0]!;
}

/** The chunks the headers say changed since `generation`: the oracle. */
function changedByHeaders(file: string, generation: number): Set<number> {
  const bytes = fs.readFileSync(file);
  const out = new Set<number>();
  for (let off = SMALL.blockSize; off < bytes.length; off += SMALL.blockSize) {
    const torn = off + 20 > bytes.length || bytes.readUInt32LE(off) !== DATA_MAGIC;
    if (torn || Number(bytes.readBigUInt64LE(off + 12)) > generation) out.add(Math.floor(off / GRANULARITY));
  }
  return out;
}

/** Every chunk the headers say changed is listed. Returns the listed and total chunk counts. */
function expectCovered(engine: StorageEngine, dir: string): { listed: number; total: number } {
  const source = id(engine);
  let listed = 0;
  let total = 0;
  for (const file of dataFiles(dir)) {
    const ranges = changedRanges(source, file, GRANULARITY);
    const marked = new Set(ranges.map((r) => r.offset / GRANULARITY));
    for (const chunk of changedByHeaders(path.join(dir, file), source.generation)) {
      expect(marked.has(chunk), `${file}: chunk ${chunk} changed but not listed`).toBe(true);
    }
    listed += marked.size;
    total += Math.ceil(fs.statSync(path.join(dir, file)).size / GRANULARITY);
  }
  return { listed, total };
}

/** A table of 400 documents (many chunks), checkpointed. */
function member(dir: string): StorageEngine {
  const engine = openEngine(dir);
  create(engine, 1, NS);
  for (let i = 0; i < 400; i++) write(engine, 2 + i, 'i', NS, { _id: i, pad: 'p'.repeat(200) });
  engine.checkpoint({ unstable: true });
  return engine;
}

/** A few updates spread over the table. */
function update(engine: StorageEngine, from: number, round: number): number {
  let i = from;
  for (const k of [3, 150, 390]) write(engine, i++, 'u', NS, { _id: k, pad: `r${round}`.repeat(100) });
  return i;
}

describe('modified-block bitmaps', () => {
  it('each checkpoint marks the chunks it wrote; a clean restart keeps them; only those are listed', () => {
    const dir = tmpDir();
    dirs.push(dir);
    let engine = member(dir);
    register(engine, dir);
    const next = update(engine, 1000, 1);
    engine.checkpoint({ unstable: true });
    const first = expectCovered(engine, dir);
    expect(first.listed).toBeGreaterThan(0);
    // A few updates change a few pages: most of the table's chunks stay unlisted.
    expect(first.listed).toBeLessThan(first.total / 2);
    const before = [...id(engine).mods].map(([f, c]) => [f, [...c].sort((a, b) => a - b)]);

    engine.close();
    engine = openEngine(dir);
    expect([...id(engine).mods].map(([f, c]) => [f, [...c].sort((a, b) => a - b)])).toEqual(before);
    update(engine, next, 2);
    engine.checkpoint({ unstable: true });
    expectCovered(engine, dir);
    engine.close();
  });

  it('a crash at any write of a checkpoint: the blocks it left are listed after the start', () => {
    /** A member with a durable id and updates its next checkpoint writes; `killAt` kills that checkpoint's k-th write. */
    const run = (killAt: number): { writes: number; strays: number } => {
      const dir = tmpDir();
      dirs.push(dir);
      const engine = member(dir);
      register(engine, dir);
      engine.checkpoint({ unstable: true }); // the id is durable
      update(engine, 1000, 1);
      let writes = 0;
      const writeSync = fs.writeSync.bind(fs) as (...args: unknown[]) => number;
      vi.spyOn(fs, 'writeSync').mockImplementation(((fd: number, buf: Uint8Array, off?: number, len?: number, pos?: number) => {
        if (++writes === killAt) {
          writeSync(fd, buf, off ?? 0, Math.floor((len ?? buf.length) / 2), pos); // torn
          throw new Error('killed');
        }
        return writeSync(fd, buf, off, len, pos);
      }) as typeof fs.writeSync);
      try {
        engine.checkpoint({ unstable: true });
      } catch (err) {
        if ((err as Error).message !== 'killed') throw err;
      } finally {
        vi.restoreAllMocks();
      }
      engine.crash();
      const reopened = openEngine(dir);
      const durable = reopened.lastCheckpoint().generation;
      let strays = 0;
      for (const file of dataFiles(dir)) strays += changedByHeaders(path.join(dir, file), durable).size;
      expectCovered(reopened, dir);
      reopened.close();
      cleanup(dirs);
      return { writes, strays };
    };
    const { writes } = run(0); // no kill: counts the checkpoint's writes
    expect(writes).toBeGreaterThan(8);
    // Eight kill points spread over the checkpoint's writes, the first and the last among them.
    const points = [...new Set(Array.from({ length: 8 }, (_, k) => 1 + Math.round((k * (writes - 1)) / 7)))];
    const strays = points.reduce((n, at) => n + run(at).strays, 0);
    // The crashes did leave blocks newer than the durable checkpoint: the case this test is about happened.
    expect(strays).toBeGreaterThan(0);
  });
});
