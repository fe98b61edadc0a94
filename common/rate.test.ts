import { describe, expect, it } from 'vitest';
import { formatRate, parseRate } from './rate.ts';

describe('rates', () => {
  it.each([
    ['0', 0],
    ['50MB', 50_000_000],
    ['50 mb/s', 50_000_000],
    ['1.5GiB', 1.5 * 1024 ** 3],
    ['800KB', 800_000],
    ['4096', 4096],
    ['10M', 10 * 1024 ** 2],
  ])('%s = %d B/s', (text, bytes) => expect(parseRate(text)).toBe(bytes));

  it.each(['fast', '-5MB', '5 parsecs', '', '1e9'])('refuses %j', (text) => {
    expect(() => parseRate(text)).toThrow(/is not a rate/);
  });

  it('formats', () => {
    expect(formatRate(0)).toBe('unlimited');
    expect(formatRate(52_400_000)).toBe('52.4 MB/s');
  });
});
