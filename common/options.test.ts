import { describe, expect, it } from 'vitest';
import type { CutpointError } from './errors.ts';
import { BACKUP_OPTIONS, resolveBackupOptions, resolveNumber } from './options.ts';

const usageOf = (fn: () => unknown): CutpointError => {
  try {
    fn();
  } catch (e) {
    return e as CutpointError;
  }
  throw new Error('expected BAD_USAGE');
};

describe('incremental options', () => {
  it('a base implies incremental; the chain options need incremental; flags must be booleans', () => {
    expect(resolveBackupOptions({})).toMatchObject({ incremental: false, base: false, blockSizeMB: 16, baseEvery: 0 });
    expect(resolveBackupOptions({ base: true })).toMatchObject({ incremental: true, base: true });
    expect(resolveBackupOptions({ incremental: true, blockSizeMB: 1, baseEvery: 7 })).toMatchObject({ incremental: true, blockSizeMB: 1, baseEvery: 7 });
    expect(usageOf(() => resolveBackupOptions({ blockSizeMB: 4 })).message).toBe('blockSizeMB applies to incremental backups only: add incremental (CLI: --incremental)');
    expect(usageOf(() => resolveBackupOptions({ incremental: 'yes' })).message).toBe('incremental must be true or false, got "yes"');
    expect(usageOf(() => resolveBackupOptions({ incremental: true, blockSizeMB: 4096 })).message).toMatch(/blockSizeMB must be at most 2048 \(WiredTiger's largest/);
  });
});

describe('backup options', () => {
  it('fills every default from the one table', () => {
    const r = resolveBackupOptions({});
    for (const [name, spec] of Object.entries(BACKUP_OPTIONS)) expect(r[name as keyof typeof BACKUP_OPTIONS], name).toBe(spec.default);
    expect(r.ifBusy).toBe('fail');
    expect(resolveBackupOptions({ copyParallelism: 8, ifBusy: 'wait' })).toMatchObject({ copyParallelism: 8, ifBusy: 'wait' });
  });

  it('refuses a value out of bounds, of the wrong type or fractional where whole, naming the option and the rule', () => {
    for (const [input, text] of [
      [{ copyParallelism: 0 }, 'copyParallelism must be at least 1, got 0'],
      [{ copyParallelism: 65 }, 'copyParallelism must be at most 64, got 65'],
      [{ copyParallelism: 1.5 }, 'copyParallelism must be a whole number, got 1.5'],
      [{ keepAliveIntervalMs: 600_000 }, 'keepAliveIntervalMs must be at most 300000'],
      [{ agentHeartbeatTimeoutMs: 1000 }, 'agentHeartbeatTimeoutMs must be at least 5000'],
      [{ bytesPerSec: '10MB' }, 'bytesPerSec must be a number, got "10MB"'],
      [{ maxLagSecs: Number.NaN }, 'maxLagSecs must be a number'],
      [{ ifBusy: 'later' }, `ifBusy must be 'fail' or 'wait', got "later"`],
    ] as const) {
      const e = usageOf(() => resolveBackupOptions(input));
      expect(e.code).toBe('BAD_USAGE');
      expect(e.message).toContain(text);
    }
  });

  it('names a CLI flag when given one', () => {
    expect(usageOf(() => resolveNumber('--parallel', BACKUP_OPTIONS.copyParallelism, 0)).message).toBe('--parallel must be at least 1, got 0');
    expect(resolveNumber('--parallel', BACKUP_OPTIONS.copyParallelism, undefined)).toBe(4);
  });
});
