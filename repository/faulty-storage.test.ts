import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { exitCodeFor, nonRetryableCodes } from '../common/errors.ts';
import { FaultyStorage } from './faulty-storage.ts';
import { FsStorage } from './fs-storage.ts';
import { MemoryStorage } from './memory-storage.ts';
import { readAll, storageErrorOf } from './storage.conformance.ts';

describe('FaultyStorage', () => {
  it('ENOSPC after N bytes surfaces as DISK_FULL naming the path; the part that fits is written', async () => {
    const s = new FaultyStorage(new MemoryStorage(), { failAfterBytes: { bytes: 2500 } });
    const w = await s.createWriter('backups/b1/rs0/files/collection-7.wt');
    await w.write(Buffer.alloc(1000));
    await w.write(Buffer.alloc(1000));
    const err = await storageErrorOf(w.write(Buffer.alloc(1000)));
    expect(err.code).toBe('DISK_FULL');
    expect(err.errno).toBe('ENOSPC');
    expect(err.path).toBe('backups/b1/rs0/files/collection-7.wt');
    expect(err.message).toContain('backups/b1/rs0/files/collection-7.wt');
    expect(err.message).toMatch(/disk is full/);
    expect(nonRetryableCodes()).toContain('DISK_FULL');
    expect(exitCodeFor('DISK_FULL')).toBe(1);
    expect(s.bytesWritten).toBe(2500);
    expect((await readAll(await w.openRead())).length).toBe(2500);
    // The disk stays full.
    expect((await storageErrorOf(s.writeFile('other', 'x'))).code).toBe('DISK_FULL');
    await w.abort();
    expect(await s.list('')).toEqual([]);
  });

  it('DISK_FULL on a real filesystem leaves no visible file after abort', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cutpoint-faulty-'));
    try {
      const s = new FaultyStorage(new FsStorage(dir), { failAfterBytes: { bytes: 10_000 } });
      const w = await s.createWriter('files/big.wt');
      let err;
      try {
        for (;;) await w.write(Buffer.alloc(4096, 7));
      } catch (e) {
        err = e;
      }
      expect(err).toMatchObject({ code: 'DISK_FULL' });
      await w.abort();
      expect(await s.list('')).toEqual([]);
      expect(await readdir(join(dir, 'files'))).toEqual([]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('rules fail chosen operations on chosen paths, a given number of times', async () => {
    const s = new FaultyStorage(new MemoryStorage());
    await s.writeFile('a/manifest.json', '{}');
    s.addFault({ ops: ['readFile'], path: /manifest\.json$/, errno: 'EIO', times: 1 });
    s.addFault({ ops: ['writeFile'], path: 'locked', errno: 'EACCES' });
    expect((await storageErrorOf(s.readFile('a/manifest.json'))).code).toBe('REPO_IO');
    expect((await s.readFile('a/manifest.json')).toString()).toBe('{}');
    const denied = await storageErrorOf(s.writeFile('locked', 'x'));
    expect(denied.code).toBe('REPO_UNUSABLE');
    expect(denied.message).toContain('locked');
    await s.writeFile('unlocked', 'x');
    s.clearFaults();
    await s.writeFile('locked', 'x');
    expect(s.calls.filter((c) => c.op === 'writeFile').map((c) => c.path)).toEqual(['a/manifest.json', 'locked', 'unlocked', 'locked']);
  });

  it('counts bytes read through streams, including early-stopped ones', async () => {
    const s = new FaultyStorage(new MemoryStorage());
    await s.writeFile('f', Buffer.alloc(1_000_000));
    const r = await s.openRead('f', { start: 900_000 });
    expect((await readAll(r)).length).toBe(100_000);
    expect(s.bytesRead).toBe(100_000);
  });

  it('pause holds matching operations until released; others pass', async () => {
    const s = new FaultyStorage(new MemoryStorage());
    const p = s.pause({ ops: ['writeFile'], path: /manifest\.json$/ });
    let done = false;
    const held = s.writeFile('backups/b1/rs0/manifest.json', '{}').then(() => (done = true));
    await s.writeFile('backups/b1/rs0/other.json', '{}');
    await new Promise((r) => setTimeout(r, 50));
    expect(done).toBe(false);
    expect(p.held()).toBe(1);
    expect(await s.exists('backups/b1/rs0/manifest.json')).toBe(false);
    p.release();
    await held;
    expect(await s.exists('backups/b1/rs0/manifest.json')).toBe(true);
  });

  it('pause with `after` lets that many matching operations pass first', async () => {
    const s = new FaultyStorage(new MemoryStorage());
    const p = s.pause({ ops: ['writeFile'], path: 'm.json', after: 1 });
    await s.writeFile('m.json', 'first');
    let done = false;
    const held = s.writeFile('m.json', 'second').then(() => (done = true));
    await new Promise((r) => setTimeout(r, 50));
    expect(done).toBe(false);
    expect((await s.readFile('m.json')).toString()).toBe('first');
    p.release();
    await held;
    expect((await s.readFile('m.json')).toString()).toBe('second');
  });
});
