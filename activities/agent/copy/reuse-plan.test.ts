/**
 * reusePlan / clampRanges / readSpans: which chunks of a data file an incremental reads again. The cursor's ranges are
 * clamped to the file (a range at or past the end dropped, one running past it cut, `0, 0` = unchanged); a chunk is
 * reused only when no range touches it and it has the same extent in the parent's copy.
 */
import { describe, expect, it } from 'vitest';
import { clampRanges, readSpans, reusePlan } from './reuse-plan.ts';

const C = 100; // chunk size of these cases
const parentOf = (size: number) => ({ size, chunks: Array.from({ length: Math.ceil(size / C) }, (_, k) => `p${k}`) });
const show = (plan: ReturnType<typeof reusePlan>) => plan.map((c) => ('reuse' in c ? c.reuse : `read ${c.offset}+${c.length}`));

describe('clampRanges', () => {
  it('keeps ranges inside the file, cuts one past the end, drops one at or beyond it and the unchanged marker', () => {
    expect(clampRanges([{ offset: 0, length: 0 }], 500)).toEqual([]);
    expect(clampRanges([{ offset: 100, length: 100 }], 500)).toEqual([[100, 100]]);
    // WiredTiger's granularity-aligned range running past the end of a 250-byte file
    expect(clampRanges([{ offset: 200, length: 100 }], 250)).toEqual([[200, 50]]);
    // an offset at or beyond the end (the file shrank since the block was written)
    expect(clampRanges([{ offset: 300, length: 100 }, { offset: 250, length: 10 }], 250)).toEqual([]);
  });
  it('sorts and merges adjacent or overlapping ranges', () => {
    expect(clampRanges([{ offset: 300, length: 100 }, { offset: 0, length: 100 }, { offset: 100, length: 100 }, { offset: 350, length: 100 }], 1000)).toEqual([
      [0, 200],
      [300, 150],
    ]);
  });
});

describe('reusePlan', () => {
  it('an unchanged file of the same size: every chunk reused, nothing read', () => {
    expect(show(reusePlan({ size: 350, ranges: [], parent: parentOf(350), chunkBytes: C }))).toEqual(['p0', 'p1', 'p2', 'p3']);
  });
  it('a changed range: exactly the chunks it touches are read', () => {
    expect(show(reusePlan({ size: 400, ranges: [[150, 60]], parent: parentOf(400), chunkBytes: C }))).toEqual(['p0', 'read 100+100', 'read 200+100', 'p3']);
  });
  it('a file that grew: its old short last chunk and the new ones are read, even if unlisted', () => {
    expect(show(reusePlan({ size: 320, ranges: [], parent: parentOf(250), chunkBytes: C }))).toEqual(['p0', 'p1', 'read 200+100', 'read 300+20']);
  });
  it('a file that shrank: the cut last chunk is read, the chunks past the end are gone', () => {
    expect(show(reusePlan({ size: 150, ranges: [], parent: parentOf(400), chunkBytes: C }))).toEqual(['p0', 'read 100+50']);
  });
  it("a parent cut on another grid is not reused", () => {
    expect(show(reusePlan({ size: 200, ranges: [], parent: { size: 200, chunks: ['x'] }, chunkBytes: C }))).toEqual(['read 0+100', 'read 100+100']);
  });
  it('an empty file has no chunk', () => {
    expect(reusePlan({ size: 0, ranges: [], parent: parentOf(0), chunkBytes: C })).toEqual([]);
  });
});

describe('readSpans', () => {
  it('merges consecutive reads up to the limit, on the grid', () => {
    const plan = reusePlan({ size: 700, ranges: [[0, 300], [500, 200]], parent: parentOf(700), chunkBytes: C });
    expect(readSpans(plan, 200)).toEqual([
      { offset: 0, length: 200, first: 0, count: 2 },
      { offset: 200, length: 100, first: 2, count: 1 },
      { offset: 500, length: 200, first: 5, count: 2 },
    ]);
  });
});
