import { describe, expect, it } from 'vitest';
import { markdownTable } from './markdown.ts';

describe('markdownTable', () => {
  it('writes a header, a rule and one line per row, escaping pipes', () => {
    expect(markdownTable(['a', 'b'], [[1, 'x|y'], ['', 2]])).toBe('| a | b |\n|---|---|\n| 1 | x\\|y |\n|  | 2 |');
  });
});
