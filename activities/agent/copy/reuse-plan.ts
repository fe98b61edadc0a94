/**
 * {@link reusePlan}: which chunks of a data file an incremental backup reads again and which it takes from the parent
 * backup. Data files are cut on a fixed grid (repository/v2/chunker.ts: chunk k holds bytes `[k × C, (k+1) × C)`), so
 * chunk k of the file now and chunk k of the parent's copy cover the same bytes. Chunk k is reused when it has the
 * same extent in both (whole in both, or the same last chunk of an unchanged size) and no changed range the cursor
 * listed touches it; everything else is read. The chunk list that results is the one a full copy of the file would
 * produce, provided the cursor listed every changed byte (sim/node/backup/incremental.ts and docs/psmdb-behaviour.md
 * section 5: the ranges are a superset of the changed blocks, aligned to the granularity).
 */

/** One chunk of the new copy: reused from the parent, or read from the file at `offset`. */
export type ChunkSource = { reuse: string } | { offset: number; length: number };

export interface ReuseInput {
  /** The file's listed size now. */
  size: number;
  /** The cursor's changed ranges, `[offset, length]`, sorted and clamped to `size`. */
  ranges: ReadonlyArray<readonly [number, number]>;
  /** The parent backup's copy of the file. */
  parent: { size: number; chunks: readonly string[] };
  /** The fixed chunk size of data files (the repository's `chunkers.data.bytes`). */
  chunkBytes: number;
}

/**
 * The chunks of the file in order. The parent's chunk list must match its size on the grid; when it does not (a
 * parent cut differently) nothing is reused.
 */
export function reusePlan({ size, ranges, parent, chunkBytes }: ReuseInput): ChunkSource[] {
  const count = Math.ceil(size / chunkBytes);
  const parentFits = parent.chunks.length === Math.ceil(parent.size / chunkBytes);
  const out: ChunkSource[] = [];
  let r = 0;
  for (let k = 0; k < count; k++) {
    const offset = k * chunkBytes;
    const length = Math.min(chunkBytes, size - offset);
    const end = offset + length;
    while (r < ranges.length && ranges[r]![0] + ranges[r]![1] <= offset) r++;
    const touched = r < ranges.length && ranges[r]![0] < end;
    const sameExtent = Math.min(chunkBytes, parent.size - offset) === length;
    out.push(parentFits && !touched && sameExtent ? { reuse: parent.chunks[k]! } : { offset, length });
  }
  return out;
}

/** Consecutive chunks to read, merged into spans of at most `maxBytes` (each span starts and ends on the grid). */
export function readSpans(plan: readonly ChunkSource[], maxBytes: number): Array<{ offset: number; length: number; first: number; count: number }> {
  const spans: Array<{ offset: number; length: number; first: number; count: number }> = [];
  plan.forEach((c, k) => {
    if ('reuse' in c) return;
    const last = spans.at(-1);
    if (last && last.first + last.count === k && last.length + c.length <= maxBytes) {
      last.length += c.length;
      last.count++;
    } else spans.push({ offset: c.offset, length: c.length, first: k, count: 1 });
  });
  return spans;
}

/**
 * The cursor's listing of one file (offset/length documents) as sorted, merged ranges clamped to `size`. A range
 * starting at or past the end is dropped and one running past it is cut (WiredTiger lists granularity-aligned
 * ranges, which may pass the end of the file); `offset 0, length 0` (unchanged) adds nothing.
 */
export function clampRanges(listed: ReadonlyArray<{ offset: number; length: number }>, size: number): Array<[number, number]> {
  const cut = listed
    .map(({ offset, length }) => [offset, Math.min(offset + length, size)] as const)
    .filter(([from, to]) => to > from)
    .sort((a, b) => a[0] - b[0]);
  const out: Array<[number, number]> = [];
  for (const [from, to] of cut) {
    const last = out.at(-1);
    if (last && from <= last[0] + last[1]) last[1] = Math.max(last[1], to - last[0]);
    else out.push([from, to - from]);
  }
  return out;
}
