/**
 * Two writers in one process writing the same pack at once (the same chunks in the same order: replica sets of
 * identical small files copied at the same moment) both succeed, and the pack is whole: a pack's path is its hash, so
 * the writers would otherwise share its pending file and the second commit would find it renamed away.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FsStorage } from '../fs-storage.ts';
import { sha256Hasher } from './chunk-id.ts';
import { checkPack, PackWriter, packPath } from './pack.ts';
import { pseudoRandomBytes } from './testing.ts';

const dir = mkdtempSync(join(tmpdir(), 'cutpoint-pack-same-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('PackWriter: the same pack twice at once', () => {
  it('both flushes succeed and the pack reads back whole', async () => {
    const storage = new FsStorage(dir);
    const chunks = await Promise.all([1, 2, 3].map(async (seed) => {
      const plain = pseudoRandomBytes(200_000, seed);
      return { id: await sha256Hasher(plain), plain };
    }));
    for (let round = 0; round < 5; round++) {
      const writers = [new PackWriter(storage), new PackWriter(storage), new PackWriter(storage)];
      for (const w of writers) for (const c of chunks) await w.add(c.id, c.plain);
      const infos = await Promise.all(writers.map((w) => w.flush()));
      expect(new Set(infos.map((i) => i!.id)).size).toBe(1);
      await checkPack(storage, infos[0]!.id);
      expect((await storage.stat(packPath(infos[0]!.id)))?.size).toBe(infos[0]!.size);
    }
  });
});
