import { describe, expect, it } from 'vitest';
import { FaultyStorage } from './faulty-storage.ts';
import { MemoryStorage } from './memory-storage.ts';
import { type RetryInfo, RetryStorage } from './retry-storage.ts';
import { storageErrorOf } from './storage.conformance.ts';

function setup(retries = 3) {
  const faulty = new FaultyStorage(new MemoryStorage());
  const retried: RetryInfo[] = [];
  const s = new RetryStorage(faulty, { retries, baseDelayMs: 1, maxDelayMs: 5, onRetry: (i) => retried.push(i) });
  return { faulty, s, retried };
}

describe('RetryStorage', () => {
  it('retries transient errors (REPO_IO) with backoff until they pass', async () => {
    const { faulty, s, retried } = setup();
    await faulty.writeFile('f', 'data');
    faulty.addFault({ ops: ['readFile'], errno: 'EIO', times: 2 });
    faulty.addFault({ ops: ['writeFile'], errno: 'EAGAIN', times: 1 });
    expect((await s.readFile('f')).toString()).toBe('data');
    await s.writeFile('g', 'more');
    expect(retried.map((r) => [r.op, r.attempt, r.error.code])).toEqual([
      ['readFile', 1, 'REPO_IO'],
      ['readFile', 2, 'REPO_IO'],
      ['writeFile', 1, 'REPO_IO'],
    ]);
  });

  it('gives up after its retries with the last error', async () => {
    const { faulty, s, retried } = setup(2);
    faulty.addFault({ ops: ['list'], errno: 'EIO' });
    const err = await storageErrorOf(s.list(''));
    expect(err.code).toBe('REPO_IO');
    expect(retried.length).toBe(2);
    expect(faulty.calls.filter((c) => c.op === 'list').length).toBe(3);
  });

  for (const [errno, code] of [
    ['ENOSPC', 'DISK_FULL'],
    ['ENOTDIR', 'REPO_UNUSABLE'],
    ['EROFS', 'REPO_UNUSABLE'],
    ['EACCES', 'REPO_UNUSABLE'],
  ] as const) {
    it(`never retries ${code} (${errno})`, async () => {
      const { faulty, s, retried } = setup();
      faulty.addFault({ ops: ['writeFile'], errno });
      expect((await storageErrorOf(s.writeFile('f', 'x'))).code).toBe(code);
      expect(retried).toEqual([]);
      expect(faulty.calls.length).toBe(1);
    });
  }

  it('does not retry missing files or bad paths', async () => {
    const { s, retried } = setup();
    expect((await storageErrorOf(s.readFile('missing'))).code).toBe('REPO_FILE_MISSING');
    expect((await storageErrorOf(s.readFile('../x'))).code).toBe('BAD_USAGE');
    expect(retried).toEqual([]);
  });

  it("does not retry a writer's write, sync or commit", async () => {
    const { faulty, s, retried } = setup();
    faulty.addFault({ ops: ['write'], errno: 'EIO', times: 1 });
    const w = await s.createWriter('f');
    expect((await storageErrorOf(w.write(Buffer.from('x')))).code).toBe('REPO_IO');
    expect(retried).toEqual([]);
    await w.abort();
  });
});
