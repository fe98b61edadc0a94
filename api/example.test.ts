import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

describe('the README API example', () => {
  it('is api/example.ts, which npm run check type-checks', () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    const example = readFileSync(new URL('./example.ts', import.meta.url), 'utf8');
    expect(readme).toContain('```ts\n' + example + '```\n');
  });
});
