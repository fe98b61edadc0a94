import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERRORS, EXIT, exitCodeFor, nonRetryableCodes, toFailure } from './errors.ts';

describe('error registry', () => {
  it('is documented in the README, code by code, with its exit code', () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    for (const [code, spec] of Object.entries(ERRORS)) {
      expect(readme, code).toContain(`| \`${code}\` | ${spec.exit} | ${spec.retryable ? 'yes' : 'no'} |`);
    }
  });

  it('maps codes to failures and exit codes', () => {
    expect(toFailure('CURSOR_LOST', 'gone').nonRetryable).toBe(true);
    expect(toFailure('MONGO_UNREACHABLE', 'down').nonRetryable).toBe(false);
    expect(nonRetryableCodes()).toContain('BAD_USAGE');
    expect(exitCodeFor('BAD_USAGE')).toBe(EXIT.usage);
    expect(exitCodeFor('CANCELLED')).toBe(EXIT.cancelled);
    expect(exitCodeFor('SOMETHING_ELSE')).toBe(EXIT.failure);
  });
});
