/**
 * copyFileRanges: an incremental copy of a data file reads only the chunks its changed ranges touch (and a grown
 * tail), takes the others from the parent's copy, and ends with exactly the chunk list a full copy of the file now
 * would have: the file rebuilt from it is the file.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MemoryStorage } from '../../../repository/memory-storage.ts';
import { Repository } from '../../../repository/repository.ts';
import { ChunkIndex } from '../../../repository/v2/chunk-index.ts';
import { ChunkReader } from '../../../repository/v2/chunk-reader.ts';
import { FIXED_CHUNK_BYTES as C } from '../../../repository/v2/chunker.ts';
import { copyFileChunks } from './copy-chunks.ts';
import { copyFileRanges } from './copy-ranges.ts';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cutpoint-ranges-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function fullCopy(repo: Repository, src: string, length: number) {
  const writer = await repo.chunkWriter();
  const r = await copyFileChunks({ src, length, kind: 'data', writer });
  await writer.flush();
  return r;
}

describe('copyFileRanges', () => {
  it('reads only the changed chunks and a grown tail; the chunk list equals a full copy of the file now', async () => {
    const storage = new MemoryStorage();
    const repo = new Repository(storage);
    const src = join(dir, 'collection-7-1.wt');
    const before = randomBytes(6 * C + 1000);
    await writeFile(src, before);
    const parent = await fullCopy(repo, src, before.length);

    // Blocks rewritten in chunks 1 and 4, and the file grown by a chunk and a half.
    const after = Buffer.concat([before, randomBytes(C + C / 2)]);
    randomBytes(4096).copy(after, C + 10);
    randomBytes(4096).copy(after, 4 * C + C - 4096);
    await writeFile(src, after);
    const writer = await repo.chunkWriter();
    const r = await copyFileRanges({ src, size: after.length, ranges: [[C, C], [4 * C, C]], parent: { size: before.length, chunks: parent.chunks }, chunkBytes: C, writer });
    await writer.flush();

    // Chunks 1 and 4, the old short last chunk 6 (now whole) and the new tail 7.
    expect(r.bytesRead).toBe(3 * C + (after.length - 7 * C));
    expect(r.reused).toBe(4);
    const full = await fullCopy(repo, src, after.length);
    expect(r.chunks).toEqual(full.chunks);
    const reader = new ChunkReader(storage, await ChunkIndex.load(storage));
    const rebuilt = Buffer.concat(await Promise.all(r.chunks.map((id) => reader.read(id))));
    expect(rebuilt.equals(after)).toBe(true);
  });

  it('an unlisted change is not seen: the ranges are what the copy trusts (the server lists every changed block)', async () => {
    const storage = new MemoryStorage();
    const repo = new Repository(storage);
    const src = join(dir, 'collection-8-1.wt');
    const before = randomBytes(3 * C);
    await writeFile(src, before);
    const parent = await fullCopy(repo, src, before.length);
    const after = Buffer.from(before);
    after.writeUInt8(after.readUInt8(2 * C + 5) ^ 0xff, 2 * C + 5);
    await writeFile(src, after);
    const writer = await repo.chunkWriter();
    const r = await copyFileRanges({ src, size: after.length, ranges: [], parent: { size: before.length, chunks: parent.chunks }, chunkBytes: C, writer });
    expect(r.bytesRead).toBe(0);
    expect(r.chunks).toEqual(parent.chunks);
  });

  it('a source shorter than listed fails naming the file', async () => {
    const repo = new Repository(new MemoryStorage());
    const src = join(dir, 'collection-9-1.wt');
    await writeFile(src, randomBytes(C));
    await expect(
      copyFileRanges({ src, size: 2 * C, ranges: [[C, C]], parent: { size: C, chunks: ['a'.repeat(64)] }, chunkBytes: C, writer: await repo.chunkWriter() }),
    ).rejects.toMatchObject({ code: 'COPY_SOURCE_INVALID', message: expect.stringContaining('collection-9-1.wt') });
  });
});
