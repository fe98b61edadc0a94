/**
 * The property cutpoint's incremental copy relies on (docs/psmdb-behaviour.md section 5): a base lists every data file
 * whole, and an incremental's ranges cover every byte that changed since its source. Random writes, drops, creations
 * and checkpoints on a standalone node, a base copied while later checkpoints write, then a chain of incrementals
 * (through a crash and a clean restart): each data file is rebuilt from the previous copy plus the listed ranges read
 * from the file, and must equal, byte for byte, the file up to its listed size as the new cursor pins it. The copy at
 * the end of the chain, with the rest of the last listing, restores to the documents the node held.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Document, MongoClient , Long } from 'mongodb';
import { Int32 } from 'mongodb';
import { afterAll, describe, expect, it } from 'vitest';
import { prng } from '../../cluster/bank.ts';
import { relativeTo } from './paths.ts';
import { copyInto, killCursor, openBackup, startQuietNode, TYPED, type QuietNode } from './testkit.ts';

const MB = 1024 * 1024;
const tmp: string[] = [];
afterAll(() => {
  for (const d of tmp) fs.rmSync(d, { recursive: true, force: true });
});

const n = (v: unknown): number => Number(v as number | Long);

class Writer {
  private readonly live = new Map<string, number>(); // collection -> next _id
  private created = 0;
  private bigCreated = false;

  constructor(private readonly random: () => number) {}

  private int(max: number): number {
    return Math.floor(this.random() * max);
  }

  private pad(): string {
    return 'x'.repeat(50 + this.int(3000)) + String(this.int(1e9));
  }

  /**
   * A random batch: a few updates in one multi-megabyte collection (so most of its chunks stay unchanged), inserts,
   * updates and deletes in the others, sometimes a new or a dropped one.
   */
  async write(c: MongoClient): Promise<void> {
    const db = c.db('app');
    const big = db.collection('big');
    if (!this.bigCreated) {
      this.bigCreated = true;
      await big.insertMany(Array.from({ length: 600 }, (_, i) => ({ _id: i as never, pad: 'b'.repeat(8000) })));
    }
    for (let i = 1 + this.int(4); i > 0; i--) await big.updateOne({ _id: this.int(600) as never }, { $set: { pad: this.pad() } });
    if (this.live.size === 0 || this.random() < 0.2) {
      const name = `c${this.created++}`;
      const count = 20 + this.int(200);
      await db.collection(name).insertMany(Array.from({ length: count }, (_, i) => ({ _id: i as never, pad: this.pad() })));
      this.live.set(name, count);
    }
    if (this.live.size > 2 && this.random() < 0.15) {
      const victim = [...this.live.keys()][this.int(this.live.size)]!;
      await db.collection(victim).drop();
      this.live.delete(victim);
    }
    for (const [name, next] of this.live) {
      const coll = db.collection(name);
      for (let i = this.int(8); i > 0; i--) await coll.updateOne({ _id: this.int(next) as never }, { $set: { pad: this.pad() } });
      if (this.random() < 0.3) await coll.deleteMany({ _id: { $gte: this.int(next), $lt: this.int(next) + 5 } as never });
      const more = this.int(30);
      if (more > 0) await coll.insertMany(Array.from({ length: more }, (_, i) => ({ _id: (next + i) as never, pad: this.pad() })));
      this.live.set(name, next + more);
    }
  }
}

/** The data files of a listing, by relative path, with their documents. */
function dataFiles(dbpath: string, files: Document[]): Map<string, Document[]> {
  const out = new Map<string, Document[]>();
  for (const f of files) {
    const name = f.filename as string;
    if (!name.endsWith('.wt')) continue;
    const rel = relativeTo(dbpath, name);
    out.set(rel, [...(out.get(rel) ?? []), f]);
  }
  return out;
}

/** The first byte where two buffers differ, for a readable failure. */
function firstDifference(a: Buffer, b: Buffer): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return i;
  return Math.min(a.length, b.length);
}

interface Figures {
  listed: number;
  total: number;
  unchanged: number;
  ranged: number;
  whole: number;
}

/**
 * Rebuilds each listed data file from `copy` plus the listed ranges read from the live file and compares it with the
 * live file up to its listed size. Returns the new copy (files absent from the listing are dropped from it).
 */
function rebuild(dbpath: string, docs: Map<string, Document[]>, copy: Map<string, Buffer>, granularity: number, figures: Figures): Map<string, Buffer> {
  const next = new Map<string, Buffer>();
  for (const [rel, list] of docs) {
    const size = n(list[0]!.fileSize);
    const live = fs.readFileSync(path.join(dbpath, rel)).subarray(0, size);
    expect(live.length, rel).toBe(size);
    figures.total += size;
    const base = copy.get(rel);
    let rebuilt: Buffer;
    if (list.length === 1 && list[0]!.offset === undefined) {
      // Unchanged since the source: the copy as it is.
      expect(base, `${rel}: listed as unchanged but not in the previous copy`).toBeDefined();
      rebuilt = base!;
      figures.unchanged++;
    } else if (list.length === 1 && n(list[0]!.offset) === 0 && n(list[0]!.length) === size && !base) {
      rebuilt = Buffer.from(live); // new since the source: whole
      figures.whole++;
      figures.listed += size;
    } else {
      expect(base, `${rel}: ranges for a file the previous copy lacks`).toBeDefined();
      rebuilt = Buffer.alloc(size);
      base!.copy(rebuilt, 0, 0, Math.min(base!.length, size));
      for (const r of list) {
        const offset = n(r.offset);
        expect(offset % granularity, rel).toBe(0);
        expect(n(r.length), rel).toBe(granularity);
        const end = Math.min(offset + granularity, size);
        if (offset < size) live.copy(rebuilt, offset, offset, end);
        figures.listed += Math.max(0, end - offset);
      }
      figures.ranged++;
    }
    if (!rebuilt.equals(live)) {
      expect.fail(`${rel}: rebuilt copy differs from the file at byte ${firstDifference(rebuilt, live)} (size ${size})`);
    }
    next.set(rel, Buffer.from(live));
  }
  return next;
}

/** Every document of every collection of `app`, by collection, in `_id` order. */
async function contents(c: MongoClient): Promise<Record<string, Document[]>> {
  const out: Record<string, Document[]> = {};
  const names = (await c.db('app').listCollections().toArray()).map((x) => x.name as string).sort();
  for (const name of names) out[name] = await c.db('app').collection(name).find().sort({ _id: 1 }).toArray();
  return out;
}

async function checkpointAfterWrites(q: QuietNode, w: Writer, times: number): Promise<void> {
  for (let i = 0; i < times; i++) {
    await w.write(q.client);
    q.node.engine.checkpoint();
  }
}

describe('incremental ranges cover every changed byte', () => {
  for (const seed of [2, 3]) {
    it(`seed ${seed}: a base and five incrementals, through a crash and a clean restart, rebuild every data file exactly`, async () => {
      const random = prng(seed);
      const w = new Writer(random);
      const dbpath = fs.mkdtempSync(path.join(os.tmpdir(), 'cutpoint-incr-prop-'));
      tmp.push(dbpath);
      let q = await startQuietNode(dbpath);
      const figures: Figures = { listed: 0, total: 0, unchanged: 0, ranged: 0, whole: 0 };
      try {
        await checkpointAfterWrites(q, w, 2);
        const granularity = MB;
        const base = await openBackup(q.client, { incrementalBackup: true, thisBackupName: 'R0', blockSize: new Int32(1) }, TYPED);
        const listed = dataFiles(dbpath, base.files);
        for (const [rel, [f]] of listed) {
          const size = n(f!.fileSize);
          if (size === 0) expect(Object.keys(f!)).toEqual(['filename', 'fileSize']);
          else expect([n(f!.offset), n(f!.length)], rel).toEqual([0, size]);
        }
        // Checkpoints keep writing (into blocks the pin does not hold) while the base is copied.
        await checkpointAfterWrites(q, w, 2);
        let copy = new Map<string, Buffer>([...listed].map(([rel, [f]]) => [rel, fs.readFileSync(path.join(dbpath, rel)).subarray(0, n(f!.fileSize))]));
        await killCursor(q.client, base.id);

        for (let round = 1; round <= 5; round++) {
          await checkpointAfterWrites(q, w, 1 + Math.floor(random() * 2));
          if (round === 3) {
            await w.write(q.client); // lost with the crash, as are its blocks
            await q.halt(true);
            q = await startQuietNode(dbpath);
          }
          if (round === 4) {
            await w.write(q.client); // kept by the final checkpoint of the clean shutdown
            await q.halt(false);
            q = await startQuietNode(dbpath);
          }
          await w.write(q.client);
          q.node.engine.checkpoint();
          const spec = { incrementalBackup: true, thisBackupName: `R${round}`, srcBackupName: `R${round - 1}`, blockSize: new Int32(1) };
          const expected = round === 5 ? await contents(q.client) : undefined; // nothing written since the checkpoint
          const b = await openBackup(q.client, spec, TYPED);
          copy = rebuild(dbpath, dataFiles(dbpath, b.files), copy, granularity, figures);
          if (expected) {
            // The end of the chain restores: the rebuilt data files, the rest of the listing whole, storage.bson.
            const restored = fs.mkdtempSync(path.join(os.tmpdir(), 'cutpoint-incr-restore-'));
            tmp.push(restored);
            for (const f of b.files) if (!(f.filename as string).endsWith('.wt')) copyInto(dbpath, f.filename as string, restored);
            for (const [rel, bytes] of copy) {
              fs.mkdirSync(path.dirname(path.join(restored, rel)), { recursive: true });
              fs.writeFileSync(path.join(restored, rel), bytes);
            }
            fs.copyFileSync(path.join(dbpath, 'storage.bson'), path.join(restored, 'storage.bson'));
            const r = await startQuietNode(restored);
            try {
              expect(await contents(r.client)).toEqual(expected);
            } finally {
              await r.halt();
            }
          }
          await killCursor(q.client, b.id);
        }
      } finally {
        await q.halt();
      }
      // Not vacuous: files were unchanged, ranged and new, and the ranges were a fraction of the data.
      expect(figures.unchanged).toBeGreaterThan(0);
      expect(figures.ranged).toBeGreaterThan(0);
      expect(figures.whole).toBeGreaterThan(0);
      expect(figures.listed).toBeLessThan(figures.total);
      console.log(`seed ${seed}: listed ${figures.listed} of ${figures.total} bytes; files unchanged ${figures.unchanged}, ranged ${figures.ranged}, new ${figures.whole}`);
    });
  }
});
