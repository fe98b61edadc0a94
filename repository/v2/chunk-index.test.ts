import { describe, expect, it } from 'vitest';
import { CorruptFileError, MissingChunkError } from '../errors.ts';
import { MemoryStorage } from '../memory-storage.ts';
import { type ChunkId, sha256Hasher } from './chunk-id.ts';
import { ChunkIndex } from './chunk-index.ts';
import { ChunkReader } from './chunk-reader.ts';
import { indexPath } from './index-file.ts';
import { PackWriter, packPath } from './pack.ts';
import { pseudoRandomBytes } from './testing.ts';

async function chunk(seed: number, bytes = 5000): Promise<{ id: ChunkId; plain: Buffer }> {
  const plain = pseudoRandomBytes(bytes, seed);
  return { id: await sha256Hasher(plain), plain };
}

describe('ChunkIndex', () => {
  it('loads every index file; a chunk two backups both stored is known once and reads from either pack', async () => {
    const storage = new MemoryStorage();
    const [a, b, shared, c] = await Promise.all([chunk(1), chunk(2), chunk(3), chunk(4)]);
    // Two backups running at once, each with its own writer: both store `shared`.
    const one = new PackWriter(storage);
    const two = new PackWriter(storage);
    for (const x of [a!, shared!]) await one.add(x.id, x.plain);
    for (const x of [shared!, b!, c!]) await two.add(x.id, x.plain);
    const p1 = (await one.flush())!;
    const p2 = (await two.flush())!;
    expect(p1.id).not.toBe(p2.id);

    const index = await ChunkIndex.load(storage);
    expect(index.size).toBe(4);
    expect(index.packCount).toBe(2);
    for (const x of [a!, b!, c!, shared!]) expect(index.has(x.id)).toBe(true);
    expect(index.has('00'.repeat(32))).toBe(false);
    expect(index.get('00'.repeat(32))).toBeUndefined();
    const where = index.get(shared!.id)!;
    // The first location in index-path order is kept, whatever order the files were read in; add() keeps it too.
    expect(where.pack).toBe([p1.id, p2.id].sort()[0]);
    index.add(where.pack === p1.id ? p2 : p1);
    expect(index.get(shared!.id)).toBe(where);
    // Either location serves: the one the index kept reads, and so does the other.
    expect((await new ChunkReader(storage, index).read(shared!.id)).equals(shared!.plain)).toBe(true);
    const other = new ChunkIndex();
    other.add(where.pack === p1.id ? p2 : p1);
    expect((await new ChunkReader(storage, other).read(shared!.id)).equals(shared!.plain)).toBe(true);
    expect(index.get(b!.id)).toEqual({ pack: p2.id, blob: p2.blobs[1] });
  });

  it('add() makes a just-written pack known without reloading; an empty repository has no chunks', async () => {
    const storage = new MemoryStorage();
    const index = await ChunkIndex.load(storage);
    expect(index.size).toBe(0);
    const writer = new PackWriter(storage);
    const x = await chunk(5);
    await writer.add(x.id, x.plain);
    index.add((await writer.flush())!);
    expect(index.has(x.id)).toBe(true);
    expect(index.size).toBe(1);
  });

  it('an invalid index file fails the load with REPO_CORRUPT naming the file and the field', async () => {
    const storage = new MemoryStorage();
    const writer = new PackWriter(storage);
    const x = await chunk(6);
    await writer.add(x.id, x.plain);
    const info = (await writer.flush())!;
    const path = indexPath(info.id);
    const good = JSON.parse((await storage.readFile(path)).toString());
    // Other files under index/ are not index files.
    await storage.writeFile('index/README', 'not an index');
    await expect(ChunkIndex.load(storage)).resolves.toMatchObject({ size: 1 });

    const cases: Array<[unknown, string]> = [
      [{ ...good, blobs: [{ ...good.blobs[0], id: 'XYZ' }] }, 'blobs[0].id'],
      [{ ...good, blobs: [{ ...good.blobs[0], offset: 7 }] }, 'blobs[0].offset'],
      [{ ...good, size: good.size + 1 }, 'size'],
      [{ ...good, pack: 'ab'.repeat(32) }, 'pack'],
      [{ ...good, format: 'cutpoint/v1' }, 'format'],
    ];
    for (const [doc, field] of cases) {
      await storage.writeFile(path, JSON.stringify(doc));
      const err = await ChunkIndex.load(storage).catch((e: unknown) => e);
      expect(err, field).toBeInstanceOf(CorruptFileError);
      expect(err).toMatchObject({ code: 'REPO_CORRUPT', field, file: `memory:test/${path}` });
      expect((err as Error).message).toContain(path);
    }
    await storage.writeFile(path, '{"format": "cutpoint/v2", ');
    await expect(ChunkIndex.load(storage)).rejects.toMatchObject({ code: 'REPO_CORRUPT', field: '(the document)' });
  });
});

describe('ChunkReader', () => {
  it('an index naming a pack that is gone: REPO_FILE_MISSING naming the chunk and the pack', async () => {
    const storage = new MemoryStorage();
    const writer = new PackWriter(storage);
    const x = await chunk(7);
    await writer.add(x.id, x.plain);
    const info = (await writer.flush())!;
    const index = await ChunkIndex.load(storage);
    await storage.remove(packPath(info.id));
    const err = await new ChunkReader(storage, index).read(x.id).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MissingChunkError);
    expect(err).toMatchObject({ code: 'REPO_FILE_MISSING', chunk: x.id, pack: packPath(info.id) });
    expect((err as Error).message).toContain(x.id);
    expect((err as Error).message).toContain(packPath(info.id));
  });

  it('a chunk no index names: REPO_FILE_MISSING naming the chunk', async () => {
    const storage = new MemoryStorage();
    const x = await chunk(8);
    const err = await new ChunkReader(storage, await ChunkIndex.load(storage)).read(x.id).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MissingChunkError);
    expect(err).toMatchObject({ code: 'REPO_FILE_MISSING', chunk: x.id, pack: undefined });
    expect((err as Error).message).toMatch(new RegExp(`chunk ${x.id} is not in any index file`));
  });

  it('reads with a ranged read of the pack, not the whole pack', async () => {
    const storage = new MemoryStorage();
    const writer = new PackWriter(storage);
    const xs = await Promise.all([9, 10, 11, 12].map((s) => chunk(s, 100_000)));
    for (const x of xs) await writer.add(x.id, x.plain);
    const info = (await writer.flush())!;
    const ranges: Array<{ start?: number; end?: number }> = [];
    const spy: typeof storage.openRead = async (path, options) => {
      ranges.push(options ?? {});
      return MemoryStorage.prototype.openRead.call(storage, path, options);
    };
    storage.openRead = spy;
    expect((await new ChunkReader(storage, await ChunkIndex.load(storage)).read(xs[2]!.id)).equals(xs[2]!.plain)).toBe(true);
    const blob = info.blobs[2]!;
    expect(ranges).toEqual([{ start: blob.offset, end: blob.offset + blob.length }]);
  });
});
