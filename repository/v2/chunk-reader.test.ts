import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../../test/helpers/temp.ts';
import { MissingChunkError } from '../errors.ts';
import { FsStorage } from '../fs-storage.ts';
import type { RangeReader } from '../storage.ts';
import { sha256Hasher } from './chunk-id.ts';
import { ChunkIndex } from './chunk-index.ts';
import { ChunkReader } from './chunk-reader.ts';
import { PackWriter, packPath } from './pack.ts';
import { pseudoRandomBytes } from './testing.ts';

/** An FsStorage that counts the pack handles opened and those still open. */
class CountingStorage extends FsStorage {
  opened = 0;
  open = 0;
  override async openRanges(path: string): Promise<RangeReader> {
    const r = await super.openRanges(path);
    this.opened++;
    this.open++;
    return {
      read: (start, end) => r.read(start, end),
      close: async () => {
        this.open--;
        await r.close();
      },
    };
  }
}

/** Two packs of `perPack` chunks each (their bytes from `seed`), in that order; returns the chunks. */
async function twoPacks(storage: FsStorage, perPack: number, seed = 0) {
  const chunks: Array<{ id: string; plain: Buffer; pack: number }> = [];
  for (let p = 0; p < 2; p++) {
    const writer = new PackWriter(storage);
    for (let i = 0; i < perPack; i++) {
      const plain = pseudoRandomBytes(50_000 + i, seed + 100 * p + i + 1);
      const id = await sha256Hasher(plain);
      await writer.add(id, plain);
      chunks.push({ id, plain, pack: p });
    }
    await writer.flush();
  }
  return chunks;
}

describe('ChunkReader with packs kept open', () => {
  it('opens each pack once for all its chunks, read one ahead, and closes them all on close()', async () => {
    const storage = new CountingStorage(tempDir('cutpoint-chunk-reader-'));
    const chunks = await twoPacks(storage, 6);
    const reader = new ChunkReader(storage, await ChunkIndex.load(storage), sha256Hasher, { keepPacksOpen: true });
    // As Repository.openStoredFile reads: the next chunk's read starts while this one is awaited.
    let next = reader.read(chunks[0]!.id);
    for (let i = 0; i < chunks.length; i++) {
      const current = next;
      if (i + 1 < chunks.length) next = reader.read(chunks[i + 1]!.id);
      expect((await current).equals(chunks[i]!.plain)).toBe(true);
    }
    expect(storage.opened).toBe(2);
    await reader.close();
    expect(storage.open).toBe(0);
  });

  it('lets the oldest pack go when a third is read, and reopens a pack read again after close()', async () => {
    const storage = new CountingStorage(tempDir('cutpoint-chunk-reader-'));
    const ids = [...(await twoPacks(storage, 2, 0)), ...(await twoPacks(storage, 2, 1000))].map((c) => c.id);
    const index = await ChunkIndex.load(storage);
    const packs = new Set(ids.map((id) => index.get(id)!.pack));
    expect(packs.size).toBe(4);
    const reader = new ChunkReader(storage, index, sha256Hasher, { keepPacksOpen: true });
    for (const id of ids) await reader.read(id);
    expect(storage.opened).toBe(packs.size);
    expect(storage.open).toBeLessThanOrEqual(2);
    await reader.close();
    expect(storage.open).toBe(0);
    await reader.read(ids[0]!);
    expect(storage.opened).toBe(packs.size + 1);
    await reader.close();
    expect(storage.open).toBe(0);
  });

  it('a pack removed before it is opened is a MissingChunkError naming the chunk and the pack', async () => {
    const dir = tempDir('cutpoint-chunk-reader-');
    const storage = new CountingStorage(dir);
    const chunks = await twoPacks(storage, 1);
    const index = await ChunkIndex.load(storage);
    const pack = packPath(index.get(chunks[1]!.id)!.pack);
    rmSync(join(dir, pack));
    const reader = new ChunkReader(storage, index, sha256Hasher, { keepPacksOpen: true });
    expect((await reader.read(chunks[0]!.id)).equals(chunks[0]!.plain)).toBe(true);
    const err = await reader.read(chunks[1]!.id).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MissingChunkError);
    expect((err as Error).message).toContain(pack);
    await reader.close();
    expect(storage.open).toBe(0);
  });
});
