import { describe, expect, it } from 'vitest';
import { coreLogLevel } from './runtime.ts';

describe('Temporal core log level', () => {
  it('follows CUTPOINT_LOG_LEVEL but is never more verbose than INFO', () => {
    expect(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'].map(coreLogLevel)).toEqual([
      'INFO', 'INFO', 'INFO', 'WARN', 'ERROR', 'ERROR', 'ERROR',
    ]);
  });
});
