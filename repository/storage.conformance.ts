/**
 * The conformance suite every {@link Storage} passes: backends and decorators (in pass-through mode) alike, as
 * restic's `backend/test`. Call it from a `*.test.ts` file:
 *
 * ```ts
 * storageConformance('FsStorage', async () => new FsStorage(await mkdtemp(...)));
 * ```
 *
 * It checks the contract written in `storage.ts`: atomic, invisible-until-commit writes; resume of a pending file;
 * ranges; sorted recursive and shallow listings; idempotent removal of files and trees; path validation on every
 * operation; errors as {@link StorageError} with registry codes naming the path.
 *
 * @module
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type Storage, StorageError } from './storage.ts';

/** Every byte of a stream. */
export async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(Buffer.isBuffer(c) ? c : Buffer.from(c as Uint8Array));
  return Buffer.concat(chunks);
}

/** Byte equality without vitest's slow element-by-element diff of large buffers. */
export function expectBytes(actual: Uint8Array, expected: Uint8Array): void {
  expect(actual.length).toBe(expected.length);
  expect(Buffer.from(actual.buffer, actual.byteOffset, actual.byteLength).equals(expected)).toBe(true);
}

/** The StorageError a promise rejects with (fails the test if it resolves or rejects with something else). */
export async function storageErrorOf(p: Promise<unknown>): Promise<StorageError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(StorageError);
    return err as StorageError;
  }
  throw new Error('expected a StorageError, but the operation succeeded');
}

/** Runs the suite against fresh storages from `makeStorage` (one per test; `cleanup` after each). */
export function storageConformance(
  name: string,
  makeStorage: () => Storage | Promise<Storage>,
  options: { cleanup?: (storage: Storage) => Promise<void> } = {},
): void {
  describe(`Storage conformance: ${name}`, () => {
    let s: Storage;
    beforeEach(async () => {
      s = await makeStorage();
    });
    afterEach(async () => {
      await options.cleanup?.(s);
    });

    it('writes and reads files: bytes, text and empty files, in nested directories it creates', async () => {
      const bin = randomBytes(1000);
      await s.writeFile('a/b/c/bin', bin);
      await s.writeFile('text.json', '{"é": 1}\n');
      await s.writeFile('empty', new Uint8Array(0));
      expectBytes(await s.readFile('a/b/c/bin'), bin);
      expect((await s.readFile('text.json')).toString('utf8')).toBe('{"é": 1}\n');
      expect((await s.readFile('empty')).length).toBe(0);
      expect(await s.stat('a/b/c/bin')).toEqual({ size: 1000 });
      expect(await s.stat('text.json')).toEqual({ size: Buffer.byteLength('{"é": 1}\n') });
      expect(await s.stat('empty')).toEqual({ size: 0 });
      expect(typeof s.location).toBe('string');
    });

    it('writeFile replaces an existing file whole', async () => {
      await s.writeFile('f', 'a much longer first version');
      await s.writeFile('f', 'short');
      expect((await s.readFile('f')).toString()).toBe('short');
    });

    it('does not keep references to the caller buffers', async () => {
      const buf = Buffer.from('original');
      await s.writeFile('f', buf);
      buf.fill(0x78);
      const w = await s.createWriter('g');
      const chunk = Buffer.from('chunk-one');
      await w.write(chunk);
      chunk.fill(0x79);
      await w.commit();
      expect((await s.readFile('f')).toString()).toBe('original');
      expect((await s.readFile('g')).toString()).toBe('chunk-one');
      const read = await s.readFile('f');
      read.fill(0x7a);
      expect((await s.readFile('f')).toString()).toBe('original');
    });

    it('stat and exists: undefined/false for missing files and for directories', async () => {
      await s.writeFile('dir/file', 'x');
      expect(await s.stat('missing')).toBeUndefined();
      expect(await s.stat('dir')).toBeUndefined();
      expect(await s.stat('dir/missing/deeper')).toBeUndefined();
      expect(await s.exists('dir/file')).toBe(true);
      expect(await s.exists('dir')).toBe(false);
      expect(await s.exists('nope')).toBe(false);
    });

    it('readFile and openRead of a missing file: REPO_FILE_MISSING naming the path', async () => {
      for (const p of [() => s.readFile('no/such/file'), () => s.openRead('no/such/file')]) {
        const err = await storageErrorOf(p());
        expect(err.code).toBe('REPO_FILE_MISSING');
        expect(err.path).toBe('no/such/file');
        expect(err.message).toContain('no/such/file');
        expect(err.message).toContain(s.location);
      }
    });

    it('openRead streams a file, or a range [start, end)', async () => {
      const data = randomBytes(300_000);
      await s.writeFile('big', data);
      expectBytes(await readAll(await s.openRead('big')), data);
      expectBytes(await readAll(await s.openRead('big', { start: 1234 })), data.subarray(1234));
      expectBytes(await readAll(await s.openRead('big', { start: 10, end: 200_010 })), data.subarray(10, 200_010));
      expect((await readAll(await s.openRead('big', { start: 5, end: 5 }))).length).toBe(0);
      expect((await readAll(await s.openRead('big', { start: 400_000 }))).length).toBe(0);
    });

    it('an early-destroyed read stream does not break later operations', async () => {
      await s.writeFile('big', randomBytes(500_000));
      const r = await s.openRead('big');
      for await (const _chunk of r) break;
      expect(r.destroyed).toBe(true);
      await s.remove('big');
      expect(await s.exists('big')).toBe(false);
    });

    it('list: recursive, sorted, full paths, only beneath the prefix directory', async () => {
      for (const p of ['b/2', 'b/1', 'a/z/y', 'a/x', 'ab/c', 'top', 'B/upper']) await s.writeFile(p, p);
      expect(await s.list('')).toEqual(['B/upper', 'a/x', 'a/z/y', 'ab/c', 'b/1', 'b/2', 'top']);
      expect(await s.list('a')).toEqual(['a/x', 'a/z/y']);
      expect(await s.list('a/z')).toEqual(['a/z/y']);
      expect(await s.list('missing')).toEqual([]);
      expect(await s.list('top')).toEqual([]);
    });

    it('listChildren: immediate children (files and directories), sorted', async () => {
      for (const p of ['backups/id2/manifest.json', 'backups/id1/rs0/manifest.json', 'backups/id1/manifest.json', 'cutpoint.json']) {
        await s.writeFile(p, '{}');
      }
      expect(await s.listChildren('')).toEqual(['backups', 'cutpoint.json']);
      expect(await s.listChildren('backups')).toEqual(['id1', 'id2']);
      expect(await s.listChildren('backups/id1')).toEqual(['manifest.json', 'rs0']);
      expect(await s.listChildren('nothing/here')).toEqual([]);
    });

    it('remove: a file, a whole tree, idempotently, leaving siblings', async () => {
      for (const p of ['t/a', 't/sub/b', 't/sub/deep/c', 'tt/keep', 'u']) await s.writeFile(p, 'x');
      await s.remove('u');
      expect(await s.exists('u')).toBe(false);
      await s.remove('t/sub');
      expect(await s.list('')).toEqual(['t/a', 'tt/keep']);
      await s.remove('t');
      await s.remove('t');
      await s.remove('never/existed');
      expect(await s.list('')).toEqual(['tt/keep']);
      await s.writeFile('t/again', 'y');
      expect(await s.list('t')).toEqual(['t/again']);
    });

    it('a writer streams chunks into a file that appears only on commit', async () => {
      const chunks = [randomBytes(100_000), randomBytes(1), randomBytes(70_000)];
      const w = await s.createWriter('files/data.wt');
      expect(w.path).toBe('files/data.wt');
      expect(w.bytesWritten).toBe(0);
      for (const c of chunks) await w.write(c);
      expect(w.bytesWritten).toBe(170_001);
      expect(await s.exists('files/data.wt')).toBe(false);
      expect(await s.stat('files/data.wt')).toBeUndefined();
      expect(await s.list('')).toEqual([]);
      expect(await s.listChildren('files')).toEqual([]);
      expectBytes(await readAll(await w.openRead()), Buffer.concat(chunks));
      await w.sync();
      await w.commit();
      expectBytes(await s.readFile('files/data.wt'), Buffer.concat(chunks));
      expect(await s.list('')).toEqual(['files/data.wt']);
      await w.abort(); // a no-op after commit
      expect(await s.exists('files/data.wt')).toBe(true);
    });

    it('commit replaces an existing file; abort leaves the old one and no pending file', async () => {
      await s.writeFile('f', 'old');
      const w1 = await s.createWriter('f');
      await w1.write(Buffer.from('new contents'));
      await w1.abort();
      await w1.abort();
      expect((await s.readFile('f')).toString()).toBe('old');
      expect(await s.list('')).toEqual(['f']);
      const w2 = await s.createWriter('f');
      await w2.write(Buffer.from('new contents'));
      await w2.commit();
      expect((await s.readFile('f')).toString()).toBe('new contents');
      await expect(w2.write(Buffer.from('more'))).rejects.toBeInstanceOf(StorageError);
      await expect(w2.commit()).rejects.toBeInstanceOf(StorageError);
    });

    it('a writer abandoned before commit (a crash) leaves no visible file', async () => {
      const w = await s.createWriter('crash/me');
      await w.write(randomBytes(10_000));
      await w.sync();
      await w.close();
      expect(await s.exists('crash/me')).toBe(false);
      expect(await s.list('')).toEqual([]);
      expect(await storageErrorOf(s.readFile('crash/me'))).toMatchObject({ code: 'REPO_FILE_MISSING' });
      await s.remove('crash');
    });

    it('resume: a new writer continues a closed pending file from resumeFrom', async () => {
      const data = randomBytes(50_000);
      const w1 = await s.createWriter('r/file');
      await w1.write(data.subarray(0, 30_000));
      await w1.sync();
      await w1.close();
      // Resume behind the end of the pending file (the bytes after the last recorded offset are discarded).
      const w2 = await s.createWriter('r/file', { resumeFrom: 20_000 });
      expect(w2.bytesWritten).toBe(20_000);
      expectBytes(await readAll(await w2.openRead()), data.subarray(0, 20_000));
      await w2.write(data.subarray(20_000));
      await w2.commit();
      expect(createHash('sha256').update(await s.readFile('r/file')).digest('hex')).toBe(createHash('sha256').update(data).digest('hex'));
    });

    it('resume: a missing or too short pending file starts empty; no resumeFrom discards the pending file', async () => {
      const fresh = await s.createWriter('r/none', { resumeFrom: 10 });
      expect(fresh.bytesWritten).toBe(0);
      await fresh.write(Buffer.from('abc'));
      await fresh.close();
      const short = await s.createWriter('r/none', { resumeFrom: 10 });
      expect(short.bytesWritten).toBe(0);
      await short.write(Buffer.from('abcdef'));
      await short.close();
      const discard = await s.createWriter('r/none');
      expect(discard.bytesWritten).toBe(0);
      await discard.write(Buffer.from('z'));
      await discard.commit();
      expect((await s.readFile('r/none')).toString()).toBe('z');
      const exact = await s.createWriter('r/exact');
      await exact.write(Buffer.from('12345'));
      await exact.close();
      const again = await s.createWriter('r/exact', { resumeFrom: 5 });
      expect(again.bytesWritten).toBe(5);
      await again.commit();
      expect((await s.readFile('r/exact')).toString()).toBe('12345');
    });

    it('remove of a directory also drops pending files beneath it', async () => {
      const w = await s.createWriter('gone/p');
      await w.write(Buffer.from('pending'));
      await w.close();
      await s.remove('gone');
      const again = await s.createWriter('gone/p', { resumeFrom: 7 });
      expect(again.bytesWritten).toBe(0);
      await again.abort();
    });

    it('concurrent writers and writeFiles on different paths', async () => {
      const payloads = Array.from({ length: 16 }, (_, i) => randomBytes(10_000 + i));
      await Promise.all(
        payloads.map(async (p, i) => {
          if (i % 2) return s.writeFile(`c/${i}`, p);
          const w = await s.createWriter(`c/${i}`);
          for (let off = 0; off < p.length; off += 1000) await w.write(p.subarray(off, off + 1000));
          await w.commit();
        }),
      );
      for (const [i, p] of payloads.entries()) expectBytes(await s.readFile(`c/${i}`), p);
      expect((await s.list('c')).length).toBe(16);
    });

    it('concurrent writeFiles on one path: one of them wins whole', async () => {
      const versions = Array.from({ length: 8 }, (_, i) => Buffer.alloc(50_000 + i, i));
      await Promise.all(versions.map((v) => s.writeFile('same', v)));
      const got = await s.readFile('same');
      expect(versions.some((v) => v.equals(got))).toBe(true);
    });

    it('a file cannot be created under another file: REPO_UNUSABLE naming the path', async () => {
      await s.writeFile('plain', 'x');
      for (const p of [() => s.writeFile('plain/child', 'y'), () => s.createWriter('plain/child/deeper')]) {
        const err = await storageErrorOf(p());
        expect(err.code).toBe('REPO_UNUSABLE');
        expect(err.message).toMatch(/plain\/child/);
        expect(err.errno).toBe('ENOTDIR');
      }
      // Reading there finds nothing, as on an object store.
      expect(await s.stat('plain/child')).toBeUndefined();
      expect(await s.exists('plain/child/deeper')).toBe(false);
      expect((await storageErrorOf(s.readFile('plain/child'))).code).toBe('REPO_FILE_MISSING');
      expect((await storageErrorOf(s.openRead('plain/child'))).code).toBe('REPO_FILE_MISSING');
      expect(await s.list('plain')).toEqual([]);
      expect(await s.listChildren('plain')).toEqual([]);
      await s.remove('plain/child');
      expect((await s.readFile('plain')).toString()).toBe('x');
    });

    it('rejects invalid paths on every operation, naming the path (BAD_USAGE)', async () => {
      const bad = ['', '/etc/passwd', '../up', 'a/../b', 'a//b', 'a/', './a', 'a/./b', 'nul\0byte', 'x.cutpoint-partial', 'd/y.cutpoint-tmp-1'];
      for (const p of bad) {
        const ops: Array<() => Promise<unknown>> = [
          () => s.writeFile(p, 'x'),
          () => s.createWriter(p),
          () => s.readFile(p),
          () => s.openRead(p),
          () => s.stat(p),
          () => s.exists(p),
          () => s.remove(p),
        ];
        if (p !== '') ops.push(() => s.list(p), () => s.listChildren(p));
        for (const op of ops) {
          const err = await storageErrorOf(op());
          expect(err.code).toBe('BAD_USAGE');
          expect(err.message).toContain(JSON.stringify(p));
        }
      }
      expect(await s.list('')).toEqual([]);
    });
  });
}
