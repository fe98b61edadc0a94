import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CutpointError } from '../common/errors.ts';
import { FsStorage } from './fs-storage.ts';
import { acquireLock, acquireLockWaiting, LOCK_DIR, lockPath, lockStaleReason, refreshLock } from './lock.ts';
import { raceForLock } from './lock-race.ts';
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
    // The refused taker left nothing behind; an exclusive lock keeps out every other lock, of any name or kind.
    expect(await locks(s)).toEqual([held]);
    await expect(acquireLock(s, 'check')).rejects.toThrow(/held by prune \(exclusive; host .*, pid \d+/);
    await expect(acquireLock(s, 'backup', { kind: 'shared' })).rejects.toThrow(/the shared lock backup .* is refused: held by prune \(exclusive/);
    expect(await locks(s)).toEqual([held]);
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

describe.each(backends)('shared and exclusive locks on %s storage', (_, make) => {
  it('shared locks coexist; they keep out an exclusive one, named in the refusal, until the last is released', async () => {
    const s = make();
    const a = await acquireLock(s, 'backup', { kind: 'shared' });
    const b = await acquireLock(s, 'backup', { kind: 'shared' });
    expect(a.info).toMatchObject({ name: 'backup', kind: 'shared', pid: process.pid });
    expect((await locks(s)).sort()).toEqual([a.path, b.path].sort());
    const err = (await acquireLock(s, 'prune').catch((e: unknown) => e)) as CutpointError;
    expect(err.code).toBe('REPO_LOCKED');
    expect(err.message).toMatch(/the exclusive lock prune of .* is refused: held by backup \(shared; host .*\), backup \(shared; .*\); wait for them/);
    expect(err.message).toContain(a.path);
    expect(err.message).toContain(b.path);
    await a();
    await expect(acquireLock(s, 'prune')).rejects.toThrow(b.path);
    await b();
    const p = await acquireLock(s, 'prune');
    await p();
    expect(await locks(s)).toEqual([]);
  });

  it('takes over stale shared locks: by time, and by a dead pid on this host', async () => {
    const s = make();
    const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
    await s.writeFile(lockPath('backup', 'dead'), JSON.stringify({ name: 'backup', kind: 'shared', host: hostname(), pid: dead, time: new Date().toISOString(), token: 'dead' }));
    await s.writeFile(lockPath('backup', 'old'), JSON.stringify({ name: 'backup', kind: 'shared', host: 'another-host', pid: 1, time: new Date(Date.now() - 31 * 60_000).toISOString(), token: 'old' }));
    const p = await acquireLock(s, 'prune');
    expect(await locks(s)).toEqual([p.path]);
    await p();
  });

  it('a refreshed lock stays alive past staleMs; one not refreshed is taken over, and its refresh then fails', async () => {
    const s = make();
    const t0 = Date.now();
    const at = (min: number) => new Date(t0 + min * 60_000);
    const staleMs = 30 * 60_000;
    const kept = await acquireLock(s, 'backup', { kind: 'shared', now: at(0) });
    const dropped = await acquireLock(s, 'backup', { kind: 'shared', now: at(0) });
    for (const m of [10, 20, 30, 40]) await kept.refresh(at(m));
    expect(JSON.parse((await s.readFile(kept.path)).toString())).toMatchObject({ kind: 'shared', time: at(40).toISOString(), token: kept.info.token });
    // At minute 45 the refreshed one is 5 minutes old, the other 45: only the other is stale.
    await expect(acquireLock(s, 'prune', { now: at(45), staleMs })).rejects.toThrow(kept.path);
    expect(await locks(s)).toEqual([kept.path]);
    await expect(dropped.refresh(at(46))).rejects.toMatchObject({ code: 'REPO_LOCKED', message: expect.stringContaining('was lost') });
    await expect(refreshLock(s, dropped.path)).rejects.toThrow(/was lost/);
    await kept();
  });

  it('a waiting taker gets the lock once the holder releases it, and reports each refusal', async () => {
    const s = make();
    const backup = await acquireLock(s, 'backup', { kind: 'shared' });
    const refusals: string[] = [];
    const waiting = acquireLockWaiting(s, 'prune', { retryMs: 10, maxRetryMs: 20, onWait: (e) => refusals.push(e.message) });
    await new Promise((r) => setTimeout(r, 100));
    expect(refusals.length).toBeGreaterThan(0);
    expect(refusals[0]).toContain(backup.path);
    await backup();
    const prune = await waiting;
    expect(await locks(s)).toEqual([prune.path]);
    await prune();
    // With a bound: the last refusal, naming the holder.
    const again = await acquireLock(s, 'backup', { kind: 'shared' });
    await expect(acquireLockWaiting(s, 'prune', { waitMs: 50, retryMs: 10 })).rejects.toThrow(again.path);
    await again();
  });
});

describe('two processes racing for the exclusive lock on one directory', () => {
  it('never both hold it: at each common start one holds and the other waits', async () => {
    const d = mkdtempSync(join(tmpdir(), 'cutpoint-lock-race-'));
    dirs.push(d);
    const rounds = 25;
    const [a, b] = await raceForLock(d, d, { rounds, periodMs: 80 });
    expect(a.overlaps + b.overlaps).toBe(0);
    expect(a.held).toBe(rounds);
    expect(b.held).toBe(rounds);
    // They did meet: in most rounds one of them found the other's lock and waited.
    expect(a.waited + b.waited).toBeGreaterThanOrEqual(rounds / 2);
    expect(await new FsStorage(d).list(LOCK_DIR)).toEqual([]);
  }, 20_000);
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
