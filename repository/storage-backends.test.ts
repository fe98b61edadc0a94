import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FaultyStorage } from './faulty-storage.ts';
import { FsStorage } from './fs-storage.ts';
import { MemoryStorage } from './memory-storage.ts';
import { RetryStorage } from './retry-storage.ts';
import type { Storage } from './storage.ts';
import { storageConformance } from './storage.conformance.ts';

// Every backend and every decorator (in pass-through mode) passes the same suite.
const roots = new Map<Storage, string>();
async function fs(): Promise<FsStorage> {
  const dir = await mkdtemp(join(tmpdir(), 'cutpoint-storage-'));
  const s = new FsStorage(join(dir, 'repo'));
  roots.set(s, dir);
  return s;
}
const cleanup = async (s: Storage): Promise<void> => {
  let inner: Storage = s;
  while (inner instanceof RetryStorage || inner instanceof FaultyStorage) inner = inner.inner;
  const dir = roots.get(inner);
  roots.delete(inner);
  if (dir) await rm(dir, { recursive: true, force: true });
};

storageConformance('FsStorage', fs, { cleanup });
storageConformance('MemoryStorage', () => new MemoryStorage());
storageConformance('FaultyStorage(FsStorage), pass-through', async () => new FaultyStorage(await fs()), { cleanup });
storageConformance('FaultyStorage(MemoryStorage), pass-through', () => new FaultyStorage(new MemoryStorage()));
storageConformance('RetryStorage(FsStorage)', async () => new RetryStorage(await fs()), { cleanup });
storageConformance('RetryStorage(FaultyStorage(MemoryStorage))', () => new RetryStorage(new FaultyStorage(new MemoryStorage())));
