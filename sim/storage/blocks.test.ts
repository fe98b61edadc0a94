import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BlockFile } from './blocks.ts';
import { cleanup, tmpDir } from './testkit.ts';

const dirs: string[] = [];
afterEach(() => cleanup(dirs));

function fresh(): { dir: string; file: BlockFile } {
  const dir = tmpDir();
  dirs.push(dir);
  return { dir, file: BlockFile.create(dir, 'collection-1-1.wt', 5, 256) };
}

describe('BlockFile', () => {
  it('chains pages across blocks and reads them back verified', () => {
    const { file } = fresh();
    const payload = Buffer.alloc(1000, 7);
    const refs = file.writeChain(payload, 3);
    expect(refs.map((r) => r.block)).toEqual([1, 2, 3, 4, 5]);
    expect(file.readChain(refs)).toEqual(payload);
    file.close();
  });

  it('allocates the lowest free block first and grows only when none is free', () => {
    const { file } = fresh();
    file.writeChain(Buffer.alloc(10), 1);
    file.writeChain(Buffer.alloc(10), 1);
    file.writeChain(Buffer.alloc(10), 1);
    file.release([3, 1]);
    expect(file.writeChain(Buffer.alloc(300), 2).map((r) => r.block)).toEqual([1, 3]);
    expect(file.writeChain(Buffer.alloc(10), 2).map((r) => r.block)).toEqual([4]);
    file.close();
  });

  it('detects a reused block by its generation and a damaged one by its checksum', () => {
    const { dir, file } = fresh();
    const old = file.writeChain(Buffer.from('old page'), 4);
    file.release([1]);
    file.writeChain(Buffer.from('new page'), 9);
    expect(() => file.readChain(old)).toThrow(
      'collection-1-1.wt block 1: expected generation 4, found generation 9 (block reused by a later checkpoint)',
    );
    const live = file.writeChain(Buffer.from('live'), 10);
    file.close();
    const fd = fs.openSync(path.join(dir, 'collection-1-1.wt'), 'r+');
    fs.writeSync(fd, Buffer.from([0xff]), 0, 1, live[0]!.block * 256 + 200);
    fs.closeSync(fd);
    const reopened = BlockFile.open(dir, 'collection-1-1.wt', 5, 256, 10);
    expect(() => reopened.readChain(live)).toThrow('collection-1-1.wt block 2: checksum mismatch (expected generation 10)');
    reopened.close();
    expect(() => BlockFile.open(dir, 'collection-1-1.wt', 6, 256, 10)).toThrow(/descriptor names file id 5/);
    expect(() => BlockFile.open(dir, 'nope.wt', 6, 256, 10)).toThrow('nope.wt: file is missing');
  });

  it('names a referenced block beyond the end of a truncated copy', () => {
    const { dir, file } = fresh();
    const refs = file.writeChain(Buffer.alloc(600), 2);
    file.close();
    fs.truncateSync(path.join(dir, 'collection-1-1.wt'), 256 * 2);
    const short = BlockFile.open(dir, 'collection-1-1.wt', 5, 256, 2);
    expect(() => short.readChain(refs)).toThrow(/block 2: beyond the end of the file \(2 blocks\); expected generation 2/);
    short.close();
  });
});
