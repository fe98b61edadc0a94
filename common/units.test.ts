import { describe, expect, it } from 'vitest';
import { formatBytes, formatDuration, formatRate, parseInteger, parseIntegerList, parseNumber, parseRate, parseSize } from './units.ts';

describe('parseSize', () => {
  it.each([
    ['0', 0],
    ['4096', 4096],
    ['800KB', 800_000],
    ['50 mb', 50_000_000],
    ['2GB', 2e9],
    ['1TB', 1e12],
    ['12KiB', 12 * 1024],
    ['512MiB', 512 * 1024 ** 2],
    ['4GiB', 4 * 1024 ** 3],
    ['1.5gib', 1.5 * 1024 ** 3],
    ['1TiB', 1024 ** 4],
    ['8k', 8 * 1024],
    ['10M', 10 * 1024 ** 2],
    ['3G', 3 * 1024 ** 3],
    ['2T', 2 * 1024 ** 4],
    ['100B', 100],
    [' 7 KiB ', 7 * 1024],
  ])('%j = %d bytes', (text, bytes) => expect(parseSize(text)).toBe(bytes));

  it.each(['', 'big', '-5MB', '5 parsecs', '1e9', '0x10', '.5GiB', '5MB/s', '4 GiB extra'])('refuses %j, quoting it', (text) => {
    expect(() => parseSize(text)).toThrow(`'${text}' is not a size`);
  });

  it('refuses less than the minimum and more than a safe integer', () => {
    expect(() => parseSize('0', 1)).toThrow("'0' is too small: at least 1 B");
    expect(parseSize('1', 1)).toBe(1);
    expect(() => parseSize('99999999TiB')).toThrow("'99999999TiB' is too large");
  });
});

describe('parseRate', () => {
  it.each([
    ['0', 0],
    ['50MB', 50_000_000],
    ['50 mb/s', 50_000_000],
    ['1.5GiB', 1.5 * 1024 ** 3],
    ['800KB', 800_000],
    ['4096', 4096],
    ['10M', 10 * 1024 ** 2],
    ['2k/s', 2048],
  ])('%s = %d B/s', (text, bytes) => expect(parseRate(text)).toBe(bytes));

  it.each(['fast', '-5MB', '5 parsecs', '', '1e9', '5MB/h'])('refuses %j, quoting it', (text) => {
    expect(() => parseRate(text)).toThrow(`'${text}' is not a rate`);
  });
});

describe('parseInteger', () => {
  it('takes whole decimal numbers of at least the minimum', () => {
    expect(parseInteger('0', '--keep-last')).toBe(0);
    expect(parseInteger(' 12 ', '--parallel', 1)).toBe(12);
    expect(parseInteger('1000', '--keep-alive-ms', 1000)).toBe(1000);
    expect(parseInteger('-3', 'x', -5)).toBe(-3);
  });

  it.each(['', ' ', '1.5', '1e3', '0x10', 'ten', '5 files', '99999999999999999999'])('refuses %j, naming the option and the text', (text) => {
    expect(() => parseInteger(text, '--parallel', 1)).toThrow(`--parallel must be an integer >= 1, got '${text}'`);
  });

  it('refuses less than the minimum', () => {
    expect(() => parseInteger('0', '--parallel', 1)).toThrow("--parallel must be an integer >= 1, got '0'");
    expect(() => parseInteger('-1', '--keep-last')).toThrow("--keep-last must be an integer >= 0, got '-1'");
  });
});

describe('parseNumber', () => {
  it('takes a number with an optional fraction, at least the minimum', () => {
    expect(parseNumber('24', '--clean-after-hours')).toBe(24);
    expect(parseNumber('0.5', '--clean-after-hours')).toBe(0.5);
    expect(parseNumber('0', '--clean-after-hours')).toBe(0);
  });

  it.each(['', 'soon', '-1', '1e3', '.5', 'Infinity', 'NaN'])('refuses %j, naming the option and the text', (text) => {
    expect(() => parseNumber(text, '--clean-after-hours')).toThrow(`--clean-after-hours must be a number >= 0, got '${text}'`);
  });
});

describe('parseIntegerList', () => {
  it('splits on commas', () => {
    expect(parseIntegerList('1,4,16', '--shards', 1)).toEqual([1, 4, 16]);
    expect(parseIntegerList(' 1000 , 10000', '--files', 1)).toEqual([1000, 10_000]);
    expect(parseIntegerList('7', '--files', 1)).toEqual([7]);
  });

  it.each(['', '1,,4', '1,0', '1;4', '1,4,', 'a,b'])('refuses %j, quoting the whole list', (text) => {
    expect(() => parseIntegerList(text, '--shards', 1)).toThrow(`--shards must be a comma-separated list of integers >= 1, got '${text}'`);
  });
});

describe('formatBytes and formatRate', () => {
  it('formats sizes in powers of 1024', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(1023)).toBe('1023 B');
    expect(formatBytes(12 * 1024)).toBe('12.0 KiB');
    expect(formatBytes(1.5 * 1024 ** 3)).toBe('1.5 GiB');
  });

  it('formats rates in powers of 1000, 0 as unlimited', () => {
    expect(formatRate(0)).toBe('unlimited');
    expect(formatRate(999)).toBe('999 B/s');
    expect(formatRate(52_400_000)).toBe('52.4 MB/s');
    expect(formatRate(150_000_000)).toBe('150 MB/s');
  });
});

describe('formatDuration', () => {
  it.each([
    [86_400_000, '1d'],
    [6 * 3_600_000, '6h'],
    [1_800_000, '30m'],
    [90_000, '90s'],
    [1500, '1500ms'],
  ])('exact: %d ms → %s (the largest unit that divides it)', (ms, text) => expect(formatDuration(ms)).toBe(text));

  it.each([
    [0, '0s'],
    [42_400, '42s'],
    [185_000, '3m05s'],
    [600_000, '10m00s'],
    [7_260_000, '2h01m'],
    [90_000_000, '25h00m'],
  ])('elapsed: %d ms → %s (to the second, two units at most)', (ms, text) => expect(formatDuration(ms, 'elapsed')).toBe(text));
});
