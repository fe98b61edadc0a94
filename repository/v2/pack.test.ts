import { createHash } from 'node:crypto';
import { describe, expect, it, vi } from 'vitest';
import { CorruptChunkError, CorruptPackError } from '../errors.ts';
import { tempDir } from '../../test/helpers/temp.ts';
import { FaultyStorage } from '../faulty-storage.ts';
import { FsStorage } from '../fs-storage.ts';
import { MemoryStorage } from '../memory-storage.ts';
import type { Storage } from '../storage.ts';
import { type ChunkId, sha256Hasher } from './chunk-id.ts';
import { ChunkIndex } from './chunk-index.ts';
import { ChunkReader } from './chunk-reader.ts';
import { indexPath } from './index-file.ts';
import { HEADER_ENTRY_BYTES, TRAILER_BYTES } from './pack-format.ts';
import { checkPack, PackWriter, packPath, readPackHeader } from './pack.ts';
import { pseudoRandomBytes } from './testing.ts';

interface TestChunk {
  id: ChunkId;
  plain: Buffer;
}

/** `n` chunks of `bytes` each: incompressible when `random`, otherwise text-like. */
async function makeChunks(n: number, bytes: number, seed: number, random = true): Promise<TestChunk[]> {
  return Promise.all(
    Array.from({ length: n }, async (_, i) => {
      const plain = random ? pseudoRandomBytes(bytes, seed * 1000 + i) : Buffer.from(`chunk ${seed}/${i} `.repeat(bytes).slice(0, bytes));
      return { id: await sha256Hasher(plain), plain };
    }),
  );
}

async function tamper(storage: Storage, path: string, at: (bytes: Buffer) => number): Promise<void> {
  const bytes = await storage.readFile(path);
  bytes[at(bytes)]! ^= 0x01;
  await storage.writeFile(path, bytes);
}

describe('PackWriter and pack files', () => {
  it('round trip: a pack named by its SHA-256 under data/, its index, its header, every chunk read back', async () => {
    const storage = new MemoryStorage();
    const writer = new PackWriter(storage);
    const chunks = [...(await makeChunks(5, 100_000, 1)), ...(await makeChunks(5, 300_000, 2, false)), ...(await makeChunks(1, 0, 3))];
    for (const c of chunks) expect(await writer.add(c.id, c.plain)).toBeGreaterThan(0);
    expect(await writer.add(chunks[3]!.id, chunks[3]!.plain)).toBe(0);
    expect(writer.count).toBe(chunks.length);
    expect(writer.has(chunks[0]!.id)).toBe(true);
    // Text compresses, random bytes do not (much).
    const info = (await writer.flush())!;
    expect(writer.count).toBe(0);
    expect(writer.bytes).toBe(0);
    expect(info.blobs.map((b) => b.id)).toEqual(chunks.map((c) => c.id));
    const textBlob = info.blobs[5]!;
    expect(textBlob.length).toBeLessThan(textBlob.rawLength / 10);

    const path = packPath(info.id);
    expect(path).toBe(`data/${info.id.slice(0, 2)}/${info.id}`);
    const bytes = await storage.readFile(path);
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(info.id);
    const blobBytes = info.blobs.reduce((n, b) => n + b.length, 0);
    expect(info.size).toBe(bytes.length);
    expect(bytes.length).toBe(blobBytes + chunks.length * HEADER_ENTRY_BYTES + TRAILER_BYTES);
    expect(bytes.subarray(-8).toString('latin1')).toBe('cutpack\x01');

    expect(JSON.parse((await storage.readFile(indexPath(info.id))).toString())).toEqual({ format: 'cutpoint/v2', pack: info.id, size: info.size, blobs: info.blobs });
    expect(await readPackHeader(storage, info.id)).toEqual(info);
    expect(await checkPack(storage, info.id)).toEqual(info);

    const reader = new ChunkReader(storage, await ChunkIndex.load(storage));
    for (const c of chunks) expect((await reader.read(c.id)).equals(c.plain)).toBe(true);
    expect(await storage.list('')).toEqual([path, indexPath(info.id)].sort());
  });

  it('round trip on a directory (FsStorage): ranged reads of a pack on disk, sha256sum of the file is its name', async () => {
    const storage = new FsStorage(tempDir('v2-pack-'));
    const writer = new PackWriter(storage, { targetBytes: 200_000 });
    const chunks = [...(await makeChunks(6, 70_000, 20)), ...(await makeChunks(3, 90_000, 21, false))];
    const packs = [];
    for (const c of chunks) {
      await writer.add(c.id, c.plain);
      if (writer.full) packs.push((await writer.flush())!);
    }
    packs.push((await writer.flush())!);
    expect(packs.length).toBeGreaterThan(1);
    for (const p of packs) {
      expect(createHash('sha256').update(await storage.readFile(packPath(p.id))).digest('hex')).toBe(p.id);
      expect(await readPackHeader(storage, p.id)).toEqual(p);
    }
    const reader = new ChunkReader(storage, await ChunkIndex.load(storage));
    for (const c of chunks.reverse()) expect((await reader.read(c.id)).equals(c.plain)).toBe(true);
  });

  it('a byte changed in a blob: that chunk fails with CorruptChunkError naming it and the pack; the others still read', async () => {
    const storage = new MemoryStorage();
    const writer = new PackWriter(storage);
    const chunks = await makeChunks(3, 50_000, 4);
    for (const c of chunks) await writer.add(c.id, c.plain);
    const info = (await writer.flush())!;
    const victim = info.blobs[1]!;
    await tamper(storage, packPath(info.id), () => victim.offset + Math.floor(victim.length / 2));

    const reader = new ChunkReader(storage, await ChunkIndex.load(storage));
    const err = await reader.read(victim.id).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CorruptChunkError);
    expect(err).toMatchObject({ code: 'CHECKSUM_MISMATCH', chunk: victim.id, pack: packPath(info.id), type: 'CHECKSUM_MISMATCH', nonRetryable: true });
    expect((err as Error).message).toContain(victim.id);
    expect((err as Error).message).toContain(packPath(info.id));
    expect((await reader.read(chunks[0]!.id)).equals(chunks[0]!.plain)).toBe(true);
    expect((await reader.read(chunks[2]!.id)).equals(chunks[2]!.plain)).toBe(true);
    // The header is intact, so only a whole-pack check notices at the pack level.
    await expect(readPackHeader(storage, info.id)).resolves.toEqual(info);
    await expect(checkPack(storage, info.id)).rejects.toMatchObject({ name: 'CorruptPackError', code: 'REPO_CORRUPT', field: '(the file)' });
  });

  it('a plaintext of another length or hash than the index records: CorruptChunkError', async () => {
    const storage = new MemoryStorage();
    const writer = new PackWriter(storage, { compressionLevel: 1 });
    // Text compresses into literals that can be flipped without breaking the frame.
    const [a] = await makeChunks(1, 20_000, 5, false);
    await writer.add(a!.id, a!.plain);
    const info = (await writer.flush())!;
    const reader = new ChunkReader(storage, await ChunkIndex.load(storage));
    // Swap the index's id for another chunk's id: the blob decompresses fine, but to a plaintext of another hash.
    const other = createHash('sha256').update('not this chunk').digest('hex');
    const index = new ChunkIndex();
    index.add({ ...info, blobs: [{ ...info.blobs[0]!, id: other }] });
    const err = await new ChunkReader(storage, index).read(other).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CorruptChunkError);
    expect((err as Error).message).toMatch(/hashes to [0-9a-f]{64}/);
    const wrongLength = new ChunkIndex();
    wrongLength.add({ ...info, blobs: [{ ...info.blobs[0]!, rawLength: 19_999 }] });
    await expect(new ChunkReader(storage, wrongLength).read(a!.id)).rejects.toThrow(/decompresses to 20000 bytes, the index records 19999/);
    expect((await reader.read(a!.id)).equals(a!.plain)).toBe(true);
  });

  it('a truncated pack, a changed header or trailer: CorruptPackError naming the pack and the part', async () => {
    const storage = new MemoryStorage();
    const writer = new PackWriter(storage);
    for (const c of await makeChunks(4, 10_000, 6)) await writer.add(c.id, c.plain);
    const info = (await writer.flush())!;
    const path = packPath(info.id);
    const good = await storage.readFile(path);
    const expectCorrupt = async (bytes: Buffer, field: string, why: RegExp) => {
      await storage.writeFile(path, bytes);
      const err = await readPackHeader(storage, info.id).catch((e: unknown) => e);
      expect(err, field).toBeInstanceOf(CorruptPackError);
      expect(err).toMatchObject({ code: 'REPO_CORRUPT', field, file: `memory:test/${path}` });
      expect((err as Error).message).toContain(path);
      expect((err as Error).message).toMatch(why);
    };
    await expectCorrupt(good.subarray(0, good.length - 1), 'trailer.magic', /truncated, or not a pack/);
    await expectCorrupt(good.subarray(0, good.length / 2), 'trailer.magic', /truncated/);
    await expectCorrupt(good.subarray(0, 20), 'trailer', /shorter than its 48-byte trailer/);
    const headerAt = good.length - TRAILER_BYTES - 4 * HEADER_ENTRY_BYTES;
    const flip = (at: number) => {
      const b = Buffer.from(good);
      b[at]! ^= 0x01;
      return b;
    };
    await expectCorrupt(flip(headerAt + 33), 'header', /SHA-256 differs/);
    await expectCorrupt(flip(good.length - 1), 'trailer.version', /version 0/);
    await expectCorrupt(flip(good.length - TRAILER_BYTES), 'trailer.headerLength', /does not fit/);
    // Blobs removed from the front: the header no longer matches the bytes before it.
    await expectCorrupt(good.subarray(100), 'header', /add up to/);
    await expectCorrupt(Buffer.concat([Buffer.alloc(10), good]), 'header', /add up to \d+ bytes, but \d+ bytes precede/);
    await storage.writeFile(path, good);
    await expect(readPackHeader(storage, info.id)).resolves.toEqual(info);
    await expect(readPackHeader(storage, 'ab'.repeat(32))).rejects.toMatchObject({ code: 'REPO_FILE_MISSING' });
  });

  it('writes the pack (created, written, committed) before its index file', async () => {
    const storage = new FaultyStorage(new MemoryStorage());
    const writer = new PackWriter(storage);
    for (const c of await makeChunks(3, 1000, 7)) await writer.add(c.id, c.plain);
    const info = (await writer.flush())!;
    const calls = storage.calls.map((c) => `${c.op} ${c.path.split('/')[0]}`);
    expect(calls).toEqual(['createWriter data', 'write data', 'write data', 'write data', 'write data', 'write data', 'commit data', 'writeFile index']);
    expect(storage.calls.at(-1)!.path).toBe(indexPath(info.id));
  });

  it('a failed pack write leaves no index and no pack; the writer keeps the pack and a later flush writes it', async () => {
    const inner = new MemoryStorage();
    const storage = new FaultyStorage(inner, { rules: [{ ops: ['commit'], path: /^data\//, errno: 'ENOSPC', times: 1 }] });
    const writer = new PackWriter(storage);
    const chunks = await makeChunks(3, 1000, 8);
    for (const c of chunks) await writer.add(c.id, c.plain);
    await expect(writer.flush()).rejects.toMatchObject({ code: 'DISK_FULL' });
    expect(await inner.list('')).toEqual([]);
    expect(inner.pending.size).toBe(0);
    expect(writer.count).toBe(3);

    const info = (await writer.flush())!;
    expect(info.blobs.map((b) => b.id)).toEqual(chunks.map((c) => c.id));
    expect(await inner.list('')).toEqual([packPath(info.id), indexPath(info.id)].sort());
  });

  it('a failed index write leaves the pack without index (garbage); a later flush writes the index for the same pack', async () => {
    const inner = new MemoryStorage();
    const storage = new FaultyStorage(inner, { rules: [{ ops: ['writeFile'], path: /^index\//, errno: 'EIO', times: 1 }] });
    const writer = new PackWriter(storage);
    for (const c of await makeChunks(2, 1000, 9)) await writer.add(c.id, c.plain);
    await expect(writer.flush()).rejects.toMatchObject({ code: 'REPO_IO' });
    const [pack] = await inner.list('data');
    expect(await inner.list('index')).toEqual([]);
    expect((await ChunkIndex.load(inner)).size).toBe(0);
    const info = (await writer.flush())!;
    expect(packPath(info.id)).toBe(pack);
    expect(await inner.list('index')).toEqual([indexPath(info.id)]);
  });

  it('holds one pack at a time: full at the target size, and an add during a flush waits for it', async () => {
    const storage = new FaultyStorage(new MemoryStorage());
    const target = 64 * 1024;
    const chunkBytes = 10_000;
    const writer = new PackWriter(storage, { targetBytes: target });
    const chunks = await makeChunks(30, chunkBytes, 10);
    const packs = [];
    let maxBuffered = 0;
    for (const c of chunks) {
      const added = await writer.add(c.id, c.plain);
      maxBuffered = Math.max(maxBuffered, writer.bytes);
      expect(writer.full).toBe(writer.bytes >= target);
      if (writer.full) {
        expect(writer.bytes).toBeLessThan(target + added);
        packs.push(await writer.flush());
      }
    }
    packs.push(await writer.flush());
    expect(maxBuffered).toBeLessThan(target + chunkBytes + 100);
    // Every pack but the last reached the target with its last blob, not before.
    for (const p of packs.slice(0, -1)) {
      const blobBytes = p!.blobs.reduce((n, b) => n + b.length, 0);
      expect(blobBytes).toBeGreaterThanOrEqual(target);
      expect(blobBytes - p!.blobs.at(-1)!.length).toBeLessThan(target);
    }
    expect(packs.length).toBeGreaterThanOrEqual(4);
    expect(packs.flatMap((p) => p!.blobs.map((b) => b.id))).toEqual(chunks.map((c) => c.id));

    // An add while a flush is held: it neither joins the pack being written nor resolves before the flush ends.
    const [x, y] = await makeChunks(2, chunkBytes, 11);
    await writer.add(x!.id, x!.plain);
    const hold = storage.pause({ ops: ['createWriter'] });
    const flushing = writer.flush();
    await vi.waitFor(() => expect(hold.held()).toBe(1));
    let addDone = false;
    const adding = writer.add(y!.id, y!.plain).then(() => (addDone = true));
    await new Promise((r) => setTimeout(r, 20));
    expect(addDone).toBe(false);
    expect(writer.count).toBe(1);
    hold.release();
    const info = (await flushing)!;
    await adding;
    expect(info.blobs.map((b) => b.id)).toEqual([x!.id]);
    expect(writer.count).toBe(1);
    expect(writer.has(y!.id)).toBe(true);
  });

  it('concurrent adds: each chunk once, the flush waits for adds under way', async () => {
    const storage = new MemoryStorage();
    const writer = new PackWriter(storage);
    const chunks = await makeChunks(8, 200_000, 12);
    const sizes = await Promise.all([...chunks, ...chunks].map((c) => writer.add(c.id, c.plain)));
    expect(sizes.filter((n) => n === 0)).toHaveLength(8);
    const more = await makeChunks(4, 200_000, 13);
    const adds = more.map((c) => writer.add(c.id, c.plain));
    const info = (await writer.flush())!;
    await Promise.all(adds);
    expect(new Set(info.blobs.map((b) => b.id))).toEqual(new Set([...chunks, ...more].map((c) => c.id)));
    expect(await writer.flush()).toBeUndefined();
    expect(await storage.list('')).toHaveLength(2);
    // A chunk of a pack the writer already wrote is not stored again.
    expect(writer.has(chunks[0]!.id)).toBe(true);
    expect(await writer.add(chunks[0]!.id, chunks[0]!.plain)).toBe(0);
    expect(writer.count).toBe(0);
    expect(await writer.flush()).toBeUndefined();
  });
});
