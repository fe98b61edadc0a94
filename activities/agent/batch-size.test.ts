import { describe, expect, it } from 'vitest';
import { batchFileLimit, MAX_BATCHES_BY_FILES, MAX_FILES_PER_BATCH } from './batch-size.ts';

describe('batchFileLimit', () => {
  it('keeps the configured size while the list is short', () => {
    expect(batchFileLimit(500, 1000)).toBe(500);
    expect(batchFileLimit(500, 500 * MAX_BATCHES_BY_FILES)).toBe(500);
  });
  it('grows with the list so that the number of batches stays bounded', () => {
    const files = 100_000;
    const limit = batchFileLimit(500, files);
    expect(limit).toBe(Math.ceil(files / MAX_BATCHES_BY_FILES));
    expect(Math.ceil(files / limit)).toBeLessThanOrEqual(MAX_BATCHES_BY_FILES);
  });
  it('never goes above the ceiling, nor below a larger configured size', () => {
    expect(batchFileLimit(500, 10_000_000)).toBe(MAX_FILES_PER_BATCH);
    expect(batchFileLimit(8000, 10_000_000)).toBe(8000);
    expect(batchFileLimit(500, -1)).toBe(500);
  });
});
