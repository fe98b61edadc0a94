import { createHash, randomBytes } from 'node:crypto';
import { appendFileSync, truncateSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CutpointError } from '../../../common/errors.ts';
import { FaultyStorage } from '../../../repository/faulty-storage.ts';
import { FsStorage } from '../../../repository/fs-storage.ts';
import { MemoryStorage } from '../../../repository/memory-storage.ts';
import type { Storage } from '../../../repository/storage.ts';
import { copyFile, copyToStorage } from './copy-file.ts';
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

const backends: Array<[string, () => Storage]> = [
  ['MemoryStorage', () => new MemoryStorage()],
  ['FsStorage', () => new FsStorage(join(dir, 'repo'))],
];

for (const [name, make] of backends) {
  describe(`copyFile into ${name}`, () => {
    it('copies exactly the listed length of a data file; the SHA-256 is that of the stored bytes', async () => {
      const s = make();
      const length = 2 * MiB + 777;
      const w = await s.createWriter('files/a.wt');
      const progress: number[] = [];
      const r = await copyFile({ src, length, writer: w, onProgress: (n) => progress.push(n), chunkBytes: 512 * 1024 });
      await w.commit();
      const stored = await s.readFile('files/a.wt');
      expect(stored.length).toBe(length);
      expect(stored.equals(data.subarray(0, length))).toBe(true);
      expect(r).toEqual({ size: length, sha256: sha(stored), resumedFrom: 0, bytesRead: length });
      expect(progress.at(-1)).toBe(length);
      expect(progress.length).toBe(5);
    });

    it('ignores growth of the source past the listed length during the copy', async () => {
      const s = make();
      const w = await s.createWriter('files/a.wt');
      let grown = false;
      const r = await copyFile({
        src,
        length: data.length,
        writer: w,
        chunkBytes: 256 * 1024,
        onProgress: () => {
          if (!grown) {
            grown = true;
            appendFileSync(src, randomBytes(2 * MiB));
          }
        },
      });
      await w.commit();
      expect(r.size).toBe(data.length);
      expect(r.sha256).toBe(sha(data));
      expect((await s.stat('files/a.wt'))?.size).toBe(data.length);
    });

    it("copies a whole file ('whole'): its size when the copy starts", async () => {
      const s = make();
      const r = await copyToStorage({ src, length: 'whole', storage: s, path: 'files/journal/WiredTigerLog.0000000001' });
      expect(r.size).toBe(data.length);
      expect(r.sha256).toBe(sha(data));
      expect(sha(await s.readFile('files/journal/WiredTigerLog.0000000001'))).toBe(sha(data));
    });

    it('resumes from a checkpoint after a crash with the same hash as an uninterrupted copy, reading only the rest from the source', async () => {
      const s = make();
      const path = 'files/a.wt';
      const ac = new AbortController();
      let persisted: number | undefined;
      const crash = new Error('agent killed');
      const first = copyToStorage({
        src,
        length: data.length,
        storage: s,
        path,
        signal: ac.signal,
        chunkBytes: 256 * 1024,
        checkpointBytes: 1 * MiB,
        onCheckpoint: (offset) => {
          persisted = offset;
        },
        onProgress: (n) => {
          if (n >= 2 * MiB + 256 * 1024) ac.abort(crash);
        },
      });
      await expect(first).rejects.toBe(crash);
      expect(persisted).toBe(2 * MiB);
      expect(await s.exists(path)).toBe(false);

      const resumed = await copyToStorage({ src, length: data.length, storage: s, path, resumeFrom: persisted, chunkBytes: 256 * 1024 });
      expect(resumed.resumedFrom).toBe(2 * MiB);
      expect(resumed.bytesRead).toBe(data.length - 2 * MiB);
      expect(resumed.sha256).toBe(sha(data));
      expect((await s.readFile(path)).equals(data)).toBe(true);

      const uninterrupted = await copyToStorage({ src, length: data.length, storage: s, path: 'files/b.wt' });
      expect(uninterrupted.sha256).toBe(resumed.sha256);
    });

    it('starts over when the pending file of the earlier attempt is gone', async () => {
      const s = make();
      const r = await copyToStorage({ src, length: 1000, storage: s, path: 'files/a.wt', resumeFrom: 500 });
      expect(r).toMatchObject({ resumedFrom: 0, bytesRead: 1000, size: 1000, sha256: sha(data.subarray(0, 1000)) });
    });
  });
}

describe('copyFile errors', () => {
  it('a source shorter than the listed length is an error naming the file and both sizes', async () => {
    const s = new MemoryStorage();
    const w = await s.createWriter('files/a.wt');
    const err = await errorOf(copyFile({ src, length: data.length + 10, writer: w }));
    expect(err.code).toBe('COPY_SOURCE_INVALID');
    expect(err.message).toContain(src);
    expect(err.message).toContain(`${data.length} bytes, shorter than the ${data.length + 10} bytes`);
    expect(w.bytesWritten).toBe(0);
  });

  it('a source that shrinks during the copy is an error', async () => {
    const s = new MemoryStorage();
    const w = await s.createWriter('files/a.wt');
    let cut = false;
    const err = await errorOf(
      copyFile({
        src,
        length: data.length,
        writer: w,
        chunkBytes: 256 * 1024,
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

  it('a missing source is COPY_SOURCE_INVALID naming it', async () => {
    const w = await new MemoryStorage().createWriter('f');
    const err = await errorOf(copyFile({ src: join(dir, 'gone.wt'), length: 10, writer: w }));
    expect(err.code).toBe('COPY_SOURCE_INVALID');
    expect(err.message).toContain(join(dir, 'gone.wt'));
  });

  it('refuses a relative source and a writer that does not match the resume offset', async () => {
    const s = new MemoryStorage();
    const w = await s.createWriter('f');
    await expect(copyFile({ src: 'relative.wt', length: 1, writer: w })).rejects.toMatchObject({ code: 'INTERNAL' });
    await expect(copyFile({ src, length: 10, writer: w, resume: { offset: 5 } })).rejects.toThrow(/holds 0 bytes but the copy resumes at 5/);
  });

  it('a full disk surfaces as DISK_FULL naming the stored path', async () => {
    const s = new FaultyStorage(new FsStorage(join(dir, 'repo')), { failAfterBytes: { bytes: MiB } });
    const err = await errorOf(copyToStorage({ src, length: 'whole', storage: s, path: 'backups/b1/rs0/files/collection-0-123.wt' }));
    expect(err.code).toBe('DISK_FULL');
    expect(err.message).toContain('backups/b1/rs0/files/collection-0-123.wt');
    expect(await s.list('')).toEqual([]);
  });

  it('aborts promptly while throttled', async () => {
    const s = new MemoryStorage();
    const w = await s.createWriter('f');
    const ac = new AbortController();
    const t0 = performance.now();
    setTimeout(() => ac.abort(new Error('cancelled')), 150);
    await expect(copyFile({ src, length: 'whole', writer: w, limiter: new RateLimiter(200_000), signal: ac.signal, chunkBytes: 64 * 1024 })).rejects.toThrow('cancelled');
    expect(performance.now() - t0).toBeLessThan(3000); // the whole file (3 MiB) would take about 16 s at this rate
  });

  it('a read ahead that fails while a write is still running fails the copy, not the process', async () => {
    const s = new MemoryStorage();
    const w = await s.createWriter('f');
    // Every write takes 100 ms; the throttle makes the read ahead wait for tokens, and the abort lands meanwhile.
    const slow = Object.assign(Object.create(w) as typeof w, {
      write: async (chunk: Uint8Array) => {
        await new Promise((r) => setTimeout(r, 100));
        return w.write(chunk);
      },
    });
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown) => unhandled.push(e);
    process.on('unhandledRejection', onUnhandled);
    try {
      const ac = new AbortController();
      setTimeout(() => ac.abort(new Error('cancelled mid-write')), 150);
      await expect(copyFile({ src, length: 'whole', writer: slow, limiter: new RateLimiter(2 * MiB), signal: ac.signal, chunkBytes: 256 * 1024 })).rejects.toThrow('cancelled mid-write');
      await new Promise((r) => setTimeout(r, 50));
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
});

describe('copyFile throttling', () => {
  it('follows the limiter, and a rate change mid-copy takes effect within a second', async () => {
    const big = join(dir, 'big.wt');
    await writeFile(big, Buffer.alloc(40 * MiB, 3));
    const s = new MemoryStorage();
    const limiter = new RateLimiter(2_000_000);
    const samples: Array<{ at: number; n: number }> = [];
    const t0 = performance.now();
    let changedAt = 0;
    const copy = copyToStorage({
      src: big,
      length: 'whole',
      storage: s,
      path: 'big',
      limiter,
      chunkBytes: 256 * 1024,
      onProgress: (n) => samples.push({ at: performance.now(), n }),
    });
    setTimeout(() => {
      changedAt = performance.now();
      limiter.setRate(20_000_000);
    }, 1000);
    await copy;
    const at = (t: number) => samples.filter((x) => x.at <= t).at(-1)?.n ?? 0;
    const before = at(t0 + 1000); // bytes in the first second
    // Never above the first rate; after the change, several times faster (ten times nominally; a starved second
    // on 2 busy cores only slows it, hence the ratio of 4).
    expect(before).toBeLessThan(2_000_000 * 1.25);
    const after = at(changedAt + 1000) - at(changedAt);
    expect(after / Math.max(before, 1)).toBeGreaterThan(4);
  });
});
