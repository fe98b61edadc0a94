import { mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { exitCodeFor } from '../common/errors.ts';
import { FsStorage, type KillPoint, SimulatedCrash } from './fs-storage.ts';
import { storageErrorOf } from './storage.conformance.ts';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cutpoint-fs-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Every name on disk under `root`, hidden temporaries included. */
async function onDisk(root: string): Promise<string[]> {
  return (await readdir(root, { recursive: true })).map(String).sort();
}

function crashAt(point: KillPoint) {
  return (p: KillPoint) => {
    if (p === point) throw new SimulatedCrash(`crash at ${p}`);
  };
}

describe('FsStorage atomicity (kill points)', () => {
  for (const point of ['writeFile:afterWrite', 'writeFile:beforeRename'] as const) {
    it(`a crash at ${point} leaves the old file, and no visible new one`, async () => {
      const root = join(dir, 'repo');
      await new FsStorage(root).writeFile('m/manifest.json', 'old');
      const crashing = new FsStorage(root, { killPoint: crashAt(point) });
      await expect(crashing.writeFile('m/manifest.json', 'new')).rejects.toBeInstanceOf(SimulatedCrash);
      await expect(crashing.writeFile('m/other.json', 'new')).rejects.toBeInstanceOf(SimulatedCrash);
      // What a restarted process sees:
      const after = new FsStorage(root);
      expect((await after.readFile('m/manifest.json')).toString()).toBe('old');
      expect(await after.exists('m/other.json')).toBe(false);
      expect(await after.list('')).toEqual(['m/manifest.json']);
      // The temporary file is still on disk (a crash cleans nothing), but hidden.
      expect((await onDisk(root)).some((n) => n.includes('.cutpoint-tmp-'))).toBe(true);
    });
  }

  it('a crash right after the rename leaves the new file complete', async () => {
    const root = join(dir, 'repo');
    const crashing = new FsStorage(root, { killPoint: crashAt('writeFile:afterRename') });
    await expect(crashing.writeFile('f', 'complete')).rejects.toBeInstanceOf(SimulatedCrash);
    expect((await new FsStorage(root).readFile('f')).toString()).toBe('complete');
  });

  it('a writer crashing before its rename leaves no visible file, and its bytes resumable', async () => {
    const root = join(dir, 'repo');
    const crashing = new FsStorage(root, { killPoint: crashAt('commit:beforeRename') });
    const w = await crashing.createWriter('files/collection-1.wt');
    await w.write(Buffer.alloc(4096, 1));
    await expect(w.commit()).rejects.toBeInstanceOf(SimulatedCrash);
    const after = new FsStorage(root);
    expect(await after.exists('files/collection-1.wt')).toBe(false);
    expect(await after.list('')).toEqual([]);
    const resumed = await after.createWriter('files/collection-1.wt', { resumeFrom: 4096 });
    expect(resumed.bytesWritten).toBe(4096);
    await resumed.commit();
    expect((await after.stat('files/collection-1.wt'))?.size).toBe(4096);
    expect(await onDisk(root)).toEqual(['files', 'files/collection-1.wt']);
  });

  it('an ordinary failure removes its temporary file', async () => {
    const root = join(dir, 'repo');
    const failing = new FsStorage(root, {
      killPoint: (p) => {
        if (p === 'writeFile:beforeRename') throw Object.assign(new Error('EIO: i/o error, write'), { code: 'EIO' });
      },
    });
    const err = await storageErrorOf(failing.writeFile('a/b', 'x'));
    expect(err.code).toBe('REPO_IO');
    expect(await onDisk(root)).toEqual(['a']);
  });
});

describe('FsStorage errors', () => {
  it('a repository path under a regular file: REPO_UNUSABLE naming the path, exit code 2', async () => {
    await writeFile(join(dir, 'plain'), 'I am a file');
    const root = join(dir, 'plain', 'repo');
    const s = new FsStorage(root);
    for (const op of [() => s.writeFile('cutpoint.json', '{}'), () => s.createWriter('x/y'), () => s.readFile('cutpoint.json'), () => s.stat('cutpoint.json'), () => s.list(''), () => s.listChildren(''), () => s.list('backups')]) {
      const err = await storageErrorOf(op());
      expect(err.code).toBe('REPO_UNUSABLE');
      expect(err.errno).toBe('ENOTDIR');
      expect(err.message).toContain(root);
      expect(err.message).toMatch(/not a directory/);
      expect(exitCodeFor(err.code)).toBe(2);
    }
  });

  it('a repository path that is itself a regular file is unusable, not empty', async () => {
    await writeFile(join(dir, 'plain'), 'I am a file');
    const s = new FsStorage(join(dir, 'plain'));
    expect((await storageErrorOf(s.list(''))).code).toBe('REPO_UNUSABLE');
    expect((await storageErrorOf(s.listChildren(''))).code).toBe('REPO_UNUSABLE');
    expect((await storageErrorOf(s.writeFile('a', 'x'))).code).toBe('REPO_UNUSABLE');
  });

  it('a missing repository directory lists nothing and is created by the first write', async () => {
    const s = new FsStorage(join(dir, 'new', 'deeper', 'repo'));
    expect(await s.list('')).toEqual([]);
    expect(await s.listChildren('')).toEqual([]);
    await s.writeFile('backups/b1/manifest.json', '{}');
    expect(await s.list('')).toEqual(['backups/b1/manifest.json']);
  });

  it('new files are not world-readable', async () => {
    const s = new FsStorage(join(dir, 'repo'));
    await s.writeFile('f', 'secret data');
    const w = await s.createWriter('g');
    await w.commit();
    for (const f of ['f', 'g']) expect((await stat(join(dir, 'repo', f))).mode & 0o007).toBe(0);
  });

  it('paths map below the root only', () => {
    const s = new FsStorage(join(dir, 'repo'));
    expect(s.absolutePath('a/b')).toBe(join(dir, 'repo', 'a', 'b'));
    expect(() => s.absolutePath('../escape')).toThrow(/'\.\.' segments are not allowed/);
  });
});

describe('FsStorage range reads', () => {
  it('reads a bounded range (a chunk in a pack) in one piece, an open-ended read in pieces', async () => {
    const s = new FsStorage(join(dir, 'repo'));
    const bytes = Buffer.alloc(3 * 1024 * 1024, 7);
    for (let i = 0; i < bytes.length; i += 4096) bytes[i] = i % 251;
    await s.writeFile('pack', bytes);
    const pieces = async (start: number, end?: number) => {
      const out: Buffer[] = [];
      for await (const b of await s.openRead('pack', { start, end })) out.push(b as Buffer);
      return out;
    };
    const range = await pieces(1000, 1000 + 1024 * 1024 + 5);
    expect(range.map((b) => b.length)).toEqual([1024 * 1024 + 5]);
    expect(range[0]!.equals(bytes.subarray(1000, 1000 + 1024 * 1024 + 5))).toBe(true);
    const whole = await pieces(0);
    expect(whole.length).toBe(48);
    expect(Buffer.concat(whole).equals(bytes)).toBe(true);
  });
});
