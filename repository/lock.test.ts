import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CutpointError } from '../common/errors.ts';
import { acquireRepoLock, lockStaleReason } from './prune.ts';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'cutpoint-lock-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

const lockPath = () => join(dir, 'locks', 'prune.json');
async function plant(info: unknown): Promise<void> {
  await mkdir(join(dir, 'locks'), { recursive: true });
  await writeFile(lockPath(), typeof info === 'string' ? info : JSON.stringify(info));
}

describe('repository lock', () => {
  it('is exclusive while held, records host, pid and time, and is released', async () => {
    const release = await acquireRepoLock(dir, 'prune');
    const info = JSON.parse(await readFile(lockPath(), 'utf8')) as Record<string, unknown>;
    expect(info).toMatchObject({ host: hostname(), pid: process.pid, time: expect.any(String) });
    const err = await acquireRepoLock(dir, 'prune').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CutpointError);
    expect((err as CutpointError).code).toBe('REPO_LOCKED');
    expect((err as Error).message).toContain(`pid ${process.pid}`);
    await release();
    await release(); // idempotent
    expect(readdirSync(join(dir, 'locks'))).toEqual([]);
    const again = await acquireRepoLock(dir, 'prune');
    await again();
  });

  it('takes over a lock whose pid is gone, one that is too old, and an unreadable one', async () => {
    const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
    for (const stale of [
      { host: hostname(), pid: dead, time: new Date().toISOString() },
      { host: 'another-host', pid: 1, time: new Date(Date.now() - 7 * 3_600_000).toISOString() },
      'not json',
    ]) {
      await plant(stale);
      const release = await acquireRepoLock(dir, 'prune');
      expect(JSON.parse(await readFile(lockPath(), 'utf8'))).toMatchObject({ pid: process.pid });
      await release();
    }
    expect(readdirSync(join(dir, 'locks'))).toEqual([]);
  });

  it('does not take over a young lock of another host (its pid cannot be checked)', async () => {
    await plant({ host: 'another-host', pid: 1, time: new Date().toISOString() });
    await expect(acquireRepoLock(dir, 'prune')).rejects.toThrow(/host another-host, pid 1/);
    // A release by someone else's handle never removes a lock it does not own.
    expect(readdirSync(join(dir, 'locks'))).toEqual(['prune.json']);
  });

  it('lockStaleReason', () => {
    const now = new Date('2026-03-01T12:00:00Z');
    expect(lockStaleReason({ host: 'h', pid: 1, time: '2026-03-01T11:00:00Z' }, now, 3_600_000 * 2)).toBeUndefined();
    expect(lockStaleReason({ host: 'h', pid: 1, time: '2026-03-01T09:00:00Z' }, now, 3_600_000 * 2)).toBe('older than 120 minutes');
    expect(lockStaleReason({ host: 'h', pid: 1, time: 'garbage' }, now, 1000)).toMatch(/older than/);
    expect(lockStaleReason(undefined, now, 1000)).toBe('unreadable');
  });
});
