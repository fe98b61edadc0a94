/**
 * copyFileChunks: a file of the dbpath copied into a v2 repository as chunks: exactly the listed length, rebuilt
 * byte for byte from its chunks, a chunk the repository holds never stored again (a second copy of the same file
 * stores nothing, one changed block stores one chunk), errors naming the file, a prompt abort, the throttle.
 */
import { createHash, randomBytes } from 'node:crypto';
import { appendFileSync, truncateSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CutpointError } from '../../../common/errors.ts';
import { FaultyStorage } from '../../../repository/faulty-storage.ts';
import { FsStorage } from '../../../repository/fs-storage.ts';
import { MemoryStorage } from '../../../repository/memory-storage.ts';
import { Repository } from '../../../repository/repository.ts';
import type { Storage } from '../../../repository/storage.ts';
import { ChunkIndex } from '../../../repository/v2/chunk-index.ts';
import { ChunkReader } from '../../../repository/v2/chunk-reader.ts';
import { FIXED_CHUNK_BYTES } from '../../../repository/v2/chunker.ts';
import { CHUNKS_IN_FLIGHT, copyFileChunks, type CopyChunksOptions } from './copy-chunks.ts';
import { RateLimiter } from './rate-limiter.ts';

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const MiB = 1024 * 1024;

let dir: string;
let src: string;
let data: Buffer;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cutpoint-copy-'));
  src = join(dir, 'collection-0-123.wt');
  data = randomBytes(3 * MiB + 12345);
  await writeFile(src, data);
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function errorOf(p: Promise<unknown>): Promise<CutpointError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(CutpointError);
    return err as CutpointError;
  }
  throw new Error('expected a CutpointError');
}

/** Copies with a fresh writer over `storage` (as one copy batch does) and makes its chunks durable. */
async function copy(storage: Storage, o: Omit<CopyChunksOptions, 'writer'>) {
  const writer = await new Repository(storage).chunkWriter();
  const r = await copyFileChunks({ ...o, writer });
  await writer.flush();
  return r;
}

/** The file rebuilt from its chunks, each read from its pack and checked. */
async function rebuild(storage: Storage, chunks: string[]): Promise<Buffer> {
  const reader = new ChunkReader(storage, await ChunkIndex.load(storage));
  return Buffer.concat(await Promise.all(chunks.map((c) => reader.read(c))));
}

const backends: Array<[string, () => Storage]> = [
  ['MemoryStorage', () => new MemoryStorage()],
  ['FsStorage', () => new FsStorage(join(dir, 'repo'))],
];

for (const [name, make] of backends) {
  describe(`copyFileChunks into ${name}`, () => {
    it('copies exactly the listed length of a data file in fixed chunks; rebuilt from them it is the file', async () => {
      const s = make();
      const length = 2 * MiB + 777;
      const progress: number[] = [];
      const r = await copy(s, { src, length, kind: 'data', onProgress: (n) => progress.push(n), readBytes: 512 * 1024 });
      expect(r.size).toBe(length);
      expect(r).not.toHaveProperty('sha256'); // the chunk ids are the file's integrity
      expect(r.chunks).toHaveLength(3);
      expect(r.chunks[0]).toBe(sha(data.subarray(0, FIXED_CHUNK_BYTES)));
      expect((await rebuild(s, r.chunks)).equals(data.subarray(0, length))).toBe(true);
      expect(r.storedBytes).toBeGreaterThan(length * 0.9); // random bytes do not compress
      expect(progress.at(-1)).toBe(length);
      expect(progress.length).toBe(5);
    });

    it('a second copy of the same file stores nothing; one changed block stores one chunk', async () => {
      const s = make();
      const first = await copy(s, { src, length: 'whole', kind: 'data' });
      const again = await copy(s, { src, length: 'whole', kind: 'data' });
      expect(again.chunks).toEqual(first.chunks);
      expect(again.storedBytes).toBe(0);
      const changed = Buffer.from(data);
      randomBytes(4096).copy(changed, 2 * MiB + 8192);
      await writeFile(src, changed);
      const third = await copy(s, { src, length: 'whole', kind: 'data' });
      expect(third.chunks.filter((c, i) => c !== first.chunks[i])).toHaveLength(1);
      expect(third.chunks[2]).not.toBe(first.chunks[2]);
      expect(third.storedBytes).toBeGreaterThan(0);
      expect(third.storedBytes).toBeLessThan(1.1 * MiB);
      expect((await rebuild(s, third.chunks)).equals(changed)).toBe(true);
    });
  });
}

describe('copyFileChunks', () => {
  it('ignores growth of the source past the listed length during the copy', async () => {
    const s = new MemoryStorage();
    let grown = false;
    const r = await copy(s, {
      src,
      length: data.length,
      kind: 'data',
      readBytes: 256 * 1024,
      onProgress: () => {
        if (!grown) {
          grown = true;
          appendFileSync(src, randomBytes(2 * MiB));
        }
      },
    });
    expect(r.size).toBe(data.length);
    expect((await rebuild(s, r.chunks)).equals(data)).toBe(true);
  });

  it('keeps CHUNKS_IN_FLIGHT chunks hashing and storing at once, and lists their ids in file order whatever order they finish in', async () => {
    const storage = new MemoryStorage();
    const writer = await new Repository(storage).chunkWriter();
    const hash = writer.hash.bind(writer);
    let running = 0;
    let most = 0;
    let call = 0;
    // Earlier chunks take longer: they finish after later ones.
    writer.hash = async (plain) => {
      const delay = 40 - 10 * (call++ % CHUNKS_IN_FLIGHT);
      most = Math.max(most, ++running);
      await new Promise((r) => setTimeout(r, delay));
      running--;
      return hash(plain);
    };
    const length = 9 * FIXED_CHUNK_BYTES + 5;
    await writeFile(src, randomBytes(length));
    const file = await readFile(src);
    const r = await copyFileChunks({ src, length, kind: 'data', writer });
    await writer.flush();
    expect(most).toBe(CHUNKS_IN_FLIGHT);
    expect(r.chunks).toHaveLength(10);
    expect(r.chunks[0]).toBe(sha(file.subarray(0, FIXED_CHUNK_BYTES)));
    expect((await rebuild(storage, r.chunks)).equals(file)).toBe(true);
    expect(r.storedBytes).toBeGreaterThan(length * 0.9);
  });

  it('a journal file is cut by content: an append leaves every chunk before the end as it was', async () => {
    const s = new MemoryStorage();
    const journal = join(dir, 'WiredTigerLog.0000000001');
    const text = Buffer.from(Array.from({ length: 400_000 }, (_, i) => `record ${i} ${i * 7919}\n`).join(''));
    await writeFile(journal, text);
    const first = await copy(s, { src: journal, length: 'whole', kind: 'journal' });
    appendFileSync(journal, randomBytes(300_000));
    const second = await copy(s, { src: journal, length: 'whole', kind: 'journal' });
    expect(first.chunks.length).toBeGreaterThan(3);
    const kept = second.chunks.filter((c) => first.chunks.includes(c)).length;
    expect(kept).toBeGreaterThanOrEqual(first.chunks.length - 1);
    expect((await rebuild(s, second.chunks)).length).toBe(text.length + 300_000);
  });
});

describe('copyFileChunks errors', () => {
  it('a source shorter than the listed length is an error naming the file and both sizes; nothing is stored', async () => {
    const s = new MemoryStorage();
    const err = await errorOf(copy(s, { src, length: data.length + 10, kind: 'data' }));
    expect(err.code).toBe('COPY_SOURCE_INVALID');
    expect(err.message).toContain(src);
    expect(err.message).toContain(`${data.length} bytes, shorter than the ${data.length + 10} bytes`);
    expect(await s.list('')).toEqual([]);
  });

  it('a source that shrinks during the copy is an error', async () => {
    let cut = false;
    const err = await errorOf(
      copy(new MemoryStorage(), {
        src,
        length: data.length,
        kind: 'data',
        readBytes: 256 * 1024,
        onProgress: () => {
          if (!cut) {
            cut = true;
            truncateSync(src, 1000);
          }
        },
      }),
    );
    expect(err.code).toBe('COPY_SOURCE_INVALID');
    expect(err.message).toMatch(/shorter than the \d+ bytes listed/);
  });

  it('a missing source is COPY_SOURCE_INVALID naming it; a relative one is refused', async () => {
    const err = await errorOf(copy(new MemoryStorage(), { src: join(dir, 'gone.wt'), length: 10, kind: 'data' }));
    expect(err.code).toBe('COPY_SOURCE_INVALID');
    expect(err.message).toContain(join(dir, 'gone.wt'));
    await expect(copy(new MemoryStorage(), { src: 'relative.wt', length: 1, kind: 'data' })).rejects.toMatchObject({ code: 'INTERNAL' });
  });

  it('a full disk surfaces as DISK_FULL naming the pack; no index names a pack that is not there', async () => {
    const s = new FaultyStorage(new FsStorage(join(dir, 'repo')), { failAfterBytes: { bytes: MiB } });
    const err = await errorOf(copy(s, { src, length: 'whole', kind: 'data' }));
    expect(err.code).toBe('DISK_FULL');
    expect(err.message).toMatch(/data\/[0-9a-f]{2}\/[0-9a-f]{64}/);
    expect(await s.list('')).toEqual([]);
  });

  it('aborts promptly while throttled', async () => {
    const ac = new AbortController();
    const t0 = performance.now();
    setTimeout(() => ac.abort(new Error('cancelled')), 150);
    await expect(copy(new MemoryStorage(), { src, length: 'whole', kind: 'data', limiter: new RateLimiter(200_000), signal: ac.signal, readBytes: 64 * 1024 })).rejects.toThrow('cancelled');
    expect(performance.now() - t0).toBeLessThan(3000); // the whole file (3 MiB) would take about 16 s at this rate
  });

  it('a read ahead that fails while a chunk is being stored fails the copy, not the process', async () => {
    const storage = new MemoryStorage();
    const writer = await new Repository(storage).chunkWriter();
    // Every store takes 100 ms; the throttle makes the read ahead wait for tokens, and the abort lands meanwhile.
    const store = writer.store.bind(writer);
    writer.store = async (id, plain) => {
      await new Promise((r) => setTimeout(r, 100));
      return store(id, plain);
    };
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown) => unhandled.push(e);
    process.on('unhandledRejection', onUnhandled);
    try {
      const ac = new AbortController();
      setTimeout(() => ac.abort(new Error('cancelled mid-store')), 150);
      await expect(copyFileChunks({ src, length: 'whole', kind: 'data', writer, limiter: new RateLimiter(2 * MiB), signal: ac.signal, readBytes: 256 * 1024 })).rejects.toThrow('cancelled mid-store');
      await new Promise((r) => setTimeout(r, 50));
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
});

describe('copyFileChunks throttling', () => {
  it('follows the limiter, and a rate change mid-copy takes effect within a second', async () => {
    const big = join(dir, 'big.wt');
    await writeFile(big, Buffer.alloc(40 * MiB, 3));
    const limiter = new RateLimiter(2_000_000);
    const samples: Array<{ at: number; n: number }> = [];
    const t0 = performance.now();
    let changedAt = 0;
    const running = copy(new MemoryStorage(), { src: big, length: 'whole', kind: 'data', limiter, readBytes: 256 * 1024, onProgress: (n) => samples.push({ at: performance.now(), n }) });
    setTimeout(() => {
      changedAt = performance.now();
      limiter.setRate(20_000_000);
    }, 1000);
    await running;
    const at = (t: number) => samples.filter((x) => x.at <= t).at(-1)?.n ?? 0;
    const before = at(t0 + 1000); // bytes in the first second
    // Never above the first rate; after the change, several times faster (ten times nominally; a starved second
    // on 2 busy cores only slows it, hence the ratio of 4).
    expect(before).toBeLessThan(2_000_000 * 1.25);
    const after = at(changedAt + 1000) - at(changedAt);
    expect(after / Math.max(before, 1)).toBeGreaterThan(4);
  });
});
