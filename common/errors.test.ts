import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ApplicationFailure } from '@temporalio/common';
import { CutpointError, ERRORS, EXIT, exitCodeFor, nonRetryableCodes, toFailure } from './errors.ts';

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

  it('a CutpointError is an ApplicationFailure typed with its code, retryable as the registry says', () => {
    const cause = new Error('ENOSPC');
    const e = new CutpointError('DISK_FULL', 'the disk is full', { path: 'x' }, { cause });
    expect(e).toBeInstanceOf(ApplicationFailure);
    expect({ type: e.type, nonRetryable: e.nonRetryable, code: e.code, name: e.name, cause: e.cause }).toEqual({
      type: 'DISK_FULL',
      nonRetryable: true,
      code: 'DISK_FULL',
      name: 'CutpointError',
      cause,
    });
    expect(e.details).toEqual([{ path: 'x' }]);
    expect(new CutpointError('MONGO_UNREACHABLE', 'down').nonRetryable).toBe(false);
    expect(new CutpointError('MONGO_UNREACHABLE', 'down', undefined, { nonRetryable: true }).nonRetryable).toBe(true);
  });
});
