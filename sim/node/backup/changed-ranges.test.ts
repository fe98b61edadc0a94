/**
 * The ranges an incremental backup cursor lists for a data file (sim/node/backup/incremental.ts changedRanges): the
 * granularity-aligned chunks holding a block written after the source's checkpoint generation, read from the blocks'
 * headers (sim/storage/blocks.ts), one document per chunk (PSMDB never asks WiredTiger to consolidate), for files of
 * any size.
 */
import { closeSync, ftruncateSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../../../test/helpers/temp.ts';
import { changedRanges } from './incremental.ts';

const KiB = 1024;
const MiB = 1024 * KiB;
const BLOCK = 64 * KiB;
/** sim/storage/blocks.ts: a data block's magic ("SIMB") at 0, its generation at 12. */
const DATA_MAGIC = 0x53494d42;

/** Writes a data file of `size` bytes with 64 KiB blocks: the file header, then `blocks` (block number → generation). */
function dataFile(size: number, blocks: Map<number, number>): string {
  const file = join(tempDir('cutpoint-sim-ranges-'), 'collection-1.wt');
  const fd = openSync(file, 'w');
  try {
    ftruncateSync(fd, size);
    const header = Buffer.alloc(12);
    header.writeUInt32LE(BLOCK, 8);
    writeSync(fd, header, 0, header.length, 0);
    for (const [n, gen] of blocks) {
      const b = Buffer.alloc(20);
      b.writeUInt32LE(DATA_MAGIC, 0);
      b.writeBigUInt64LE(BigInt(gen), 12);
      writeSync(fd, b, 0, b.length, n * BLOCK);
    }
  } finally {
    closeSync(fd);
  }
  return file;
}

describe('changedRanges', () => {
  it('lists each chunk holding a block newer than the source or not a data block, one range per chunk', () => {
    // 40 blocks (2.5 MiB): all written by generation 1 but block 3 (generation 5), block 35 (5) and block 36 (zeros).
    const blocks = new Map(Array.from({ length: 39 }, (_, i) => [i + 1, 1]));
    blocks.set(3, 5);
    blocks.set(35, 5);
    blocks.delete(36);
    const file = dataFile(40 * BLOCK, blocks);
    expect(changedRanges(file, 4, MiB)).toEqual([
      { offset: 0, length: MiB },
      { offset: 2 * MiB, length: MiB },
    ]);
    expect(changedRanges(file, 5, MiB)).toEqual([{ offset: 2 * MiB, length: MiB }]);
    expect(changedRanges(file, 0, MiB)).toEqual([
      { offset: 0, length: MiB },
      { offset: MiB, length: MiB },
      { offset: 2 * MiB, length: MiB },
    ]);
  });

  it('reads a file larger than 2 GiB (a Buffer cannot hold it whole)', () => {
    // Sparse: every block but the header and the last reads as zeros (not a data block: changed); the last block, of
    // generation 1, is in a chunk of its own past 2 GiB.
    const size = 2 * 1024 * MiB + 2 * MiB;
    const last = size / BLOCK - 1;
    const file = dataFile(size, new Map(Array.from({ length: MiB / BLOCK }, (_, i) => [last - i, 1])));
    const ranges = changedRanges(file, 1, MiB);
    expect(ranges).toHaveLength(2049);
    expect(ranges.every((r, k) => r.offset === k * MiB && r.length === MiB)).toBe(true);
  }, 60_000);
});
