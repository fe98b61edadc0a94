import { describe, expect, it } from 'vitest';
import { validateBackupId } from '../../common/manifest.ts';
import { scheduledBackupId } from './ids.ts';

describe('scheduledBackupId', () => {
  it.each([
    ['nightly', 'nightly-2026-11-22T03:00:00Z', 'nightly-20261122T030000Z'],
    ['nightly', 'nightly-2026-11-22T03:00:00.250Z', 'nightly-20261122T030000Z'],
    ['a-b', 'a-b-2026-01-02T03:04:05Z', 'a-b-20260102T030405Z'],
  ])('%s run %s → %s', (schedule, wf, id) => {
    expect(scheduledBackupId(schedule, wf, new Date(0))).toBe(id);
    expect(() => validateBackupId(id)).not.toThrow();
  });

  it('falls back to the start time for a workflow not started by the schedule', () => {
    expect(scheduledBackupId('nightly', 'by-hand', new Date('2026-11-22T09:10:11.500Z'))).toBe('nightly-20261122T091011Z');
    // Another schedule's run is not mistaken for this one's.
    expect(scheduledBackupId('night', 'nightly-2026-11-22T03:00:00Z', new Date('2026-11-22T09:10:11Z'))).toBe('night-20261122T091011Z');
  });
});
