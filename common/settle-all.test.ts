import { describe, expect, it } from 'vitest';
import { settleAll } from './settle-all.ts';

/** A step that ends when the test says so, recording that it ended. */
function pending<T>(ended: string[], name: string) {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const p = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return {
    step: () => p.finally(() => ended.push(name)),
    resolve,
    reject,
  };
}

describe('settleAll', () => {
  it('gives every result in order when all steps succeed', async () => {
    expect(await settleAll([async () => 1, async () => 2, async () => 3])).toEqual([1, 2, 3]);
  });

  it('after a failure, settles only once every other step has ended, with the first failure, having asked the others to stop once', async () => {
    const ended: string[] = [];
    const a = pending<number>(ended, 'a');
    const b = pending<number>(ended, 'b');
    let stops = 0;
    let settled = false;
    const all = settleAll([a.step, b.step, async () => Promise.reject(new Error('disk full'))], () => stops++).finally(() => (settled = true));
    await new Promise((r) => setTimeout(r, 20));
    // Promise.all would have rejected by now, with a and b still running.
    expect(settled).toBe(false);
    expect(stops).toBe(1);
    a.reject(new Error('cancelled'));
    await new Promise((r) => setTimeout(r, 20));
    expect(settled).toBe(false);
    b.reject(new Error('cancelled'));
    await expect(all).rejects.toThrow('disk full');
    expect(ended).toEqual(['a', 'b']);
    expect(stops).toBe(1);
  });
});
