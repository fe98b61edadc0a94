import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CutpointError } from '../common/errors.ts';
import { FsStorage } from './fs-storage.ts';
import { acquireLock, LOCK_DIR, lockPath, lockStaleReason } from './lock.ts';
import { MemoryStorage } from './memory-storage.ts';
import type { Storage } from './storage.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const backends: Array<[string, () => Storage]> = [
  ['memory', () => new MemoryStorage('locks')],
  [
    'directory',
    () => {
      const d = mkdtempSync(join(tmpdir(), 'cutpoint-lock-'));
      dirs.push(d);
      return new FsStorage(d);
    },
  ],
];

const plant = (s: Storage, token: string, info: unknown) => s.writeFile(lockPath('prune', token), typeof info === 'string' ? info : JSON.stringify(info));
const locks = (s: Storage) => s.list(LOCK_DIR);

describe.each(backends)('repository lock on %s storage', (_, make) => {
  it('is exclusive while held, records name, host, pid and time, and is released', async () => {
    const s = make();
    const release = await acquireLock(s, 'prune');
    const [held] = await locks(s);
    expect(JSON.parse((await s.readFile(held!)).toString())).toMatchObject({ name: 'prune', host: hostname(), pid: process.pid, time: expect.any(String) });
    const err = await acquireLock(s, 'prune').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CutpointError);
    expect((err as CutpointError).code).toBe('REPO_LOCKED');
    expect((err as Error).message).toContain(`pid ${process.pid}`);
    expect((err as Error).message).toContain(held);
    // The refused taker left nothing behind; a lock of another name is independent.
    expect(await locks(s)).toEqual([held]);
    const other = await acquireLock(s, 'check');
    await other();
    await release();
    await release(); // idempotent
    expect(await locks(s)).toEqual([]);
    const again = await acquireLock(s, 'prune');
    await again();
  });

  it('takes over a lock whose pid is gone, one that is too old, and an unreadable one', async () => {
    const s = make();
    const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
    await plant(s, 'dead', { host: hostname(), pid: dead, time: new Date().toISOString() });
    await plant(s, 'old', { host: 'another-host', pid: 1, time: new Date(Date.now() - 7 * 3_600_000).toISOString() });
    await plant(s, 'garbled', 'not json');
    const release = await acquireLock(s, 'prune');
    const [mine, ...rest] = await locks(s);
    expect(rest).toEqual([]);
    expect(JSON.parse((await s.readFile(mine!)).toString())).toMatchObject({ pid: process.pid });
    await release();
    expect(await locks(s)).toEqual([]);
  });

  it('does not take over a young lock of another host (its pid cannot be checked)', async () => {
    const s = make();
    await plant(s, 'elsewhere', { host: 'another-host', pid: 1, time: new Date().toISOString() });
    await expect(acquireLock(s, 'prune')).rejects.toThrow(/host another-host, pid 1/);
    expect(await locks(s)).toEqual([lockPath('prune', 'elsewhere')]);
  });

  it('never lets two concurrent takers both hold it', async () => {
    const s = make();
    for (let round = 0; round < 20; round++) {
      const tries = await Promise.allSettled([acquireLock(s, 'prune'), acquireLock(s, 'prune'), acquireLock(s, 'prune')]);
      const held = tries.filter((t) => t.status === 'fulfilled');
      expect(held.length).toBeLessThanOrEqual(1);
      for (const t of tries) if (t.status === 'rejected') expect((t.reason as CutpointError).code).toBe('REPO_LOCKED');
      expect((await locks(s)).length).toBe(held.length);
      for (const t of held) await t.value();
    }
  });
});

describe('lockStaleReason', () => {
  it('names why a lock is stale, or nothing while its owner may hold it', () => {
    const now = new Date('2026-03-01T12:00:00Z');
    expect(lockStaleReason({ host: 'h', pid: 1, time: '2026-03-01T11:00:00Z' }, now, 3_600_000 * 2)).toBeUndefined();
    expect(lockStaleReason({ host: 'h', pid: 1, time: '2026-03-01T09:00:00Z' }, now, 3_600_000 * 2)).toBe('older than 120 minutes');
    expect(lockStaleReason({ host: 'h', pid: 1, time: 'garbage' }, now, 1000)).toMatch(/older than/);
    expect(lockStaleReason(undefined, now, 1000)).toBe('unreadable');
  });
});
